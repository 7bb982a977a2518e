"""The evaluation report as a web page: ``index.html`` beside ``metrics.json`` and the plots, and a headless-browser
screenshot of it (to check it renders).

The page is plain HTML with inline CSS and relative links to the files of its own folder (nothing fetched, no
script), so the folder can be copied or served as it is.
"""

from __future__ import annotations

import html
import math
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from handpose.errors import HandposeError

#: The plots of :func:`handpose.evaluate.write_report`, in page order, with their captions.
PICTURES = (
    ("pck_curve.png", "PCK against an absolute threshold in original pixels."),
    ("per_keypoint_error.png", "Mean error per keypoint, original pixels."),
    ("gallery.png", "Records spread from the best to the worst mean error, on the crop the model saw: labels green, "
                    "predictions red."),
    ("worst_images.png", "The records with the largest mean error, on the crop the model saw: labels (left) beside "
                         "predictions (right)."),
)
#: Executable names of Chromium tried by :func:`find_chromium` (Debian's package installs ``chromium``).
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

_CSS = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; background: #fff; max-width: 1200px; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; }
table { border-collapse: collapse; margin: 8px 0; font-size: 14px; }
th, td { border: 1px solid #ccc; padding: 3px 9px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead th { background: #eef2f7; }
.tables { display: flex; flex-wrap: wrap; gap: 28px; align-items: flex-start; }
figure { margin: 12px 0 24px; } figcaption { font-size: 13px; color: #555; }
img { max-width: 100%; height: auto; border: 1px solid #ddd; }
"""


def fmt(value, digits: int = 2) -> str:
    """A figure as the page prints it: ``digits`` decimals, ``n/a`` for None or NaN (e.g. a keypoint never
    labelled)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, int | bool):
        return str(value)
    return f"{float(value):.{digits}f}"


def _table(head: list[str], rows: list[list[str]], caption: str) -> str:
    """An HTML table with a heading; cells are escaped."""
    h = "".join(f"<th>{html.escape(c)}</th>" for c in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>\n" for r in rows)
    return (f"<div><h2>{html.escape(caption)}</h2><table><thead><tr>{h}</tr></thead><tbody>\n{body}</tbody>"
            "</table></div>")


def _png_size(path: Path) -> tuple[int, int] | None:
    """``(width, height)`` from a PNG header, or None for another file."""
    head = path.read_bytes()[:24]
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def render_html(summary: dict, folder: str | Path, title: str, pictures=None) -> str:
    """The page for an evaluation summary and the pictures written beside it.

    Args:
        summary: :meth:`handpose.evaluate.Evaluation.summary` (with ``box_margin`` for COCO crops): errors in
            original pixels, model-input pixels and % of the region's side (mean, median, p90, p95, max); PCK at
            shares of the hand box; AUC; within-shares; per group (finger) and per keypoint mean errors; the worst
            records.
        folder: the report folder (the page links only files found there).
        title: the page heading.
        pictures: file names in ``folder`` to show (those of :data:`PICTURES` get their caption, in its order);
            None: the :data:`PICTURES` found in ``folder``.

    Returns:
        The HTML text.
    """
    from handpose.evaluate import PCK_THRESHOLDS

    folder = Path(folder)
    stats = ("mean", "median", "p90", "p95", "max")
    errors = [[label, *(fmt(summary[key].get(s)) for s in stats)]
              for key, label in (("error_px", "original image, px"), ("error_input_px", "model input, px"),
                                 ("error_pct_of_image", "% of the crop side"))]
    accuracy = [*([f"PCK@{t} (share of the hand box)", fmt(summary[f"pck@{t}"], 3)] for t in PCK_THRESHOLDS),
                ["AUC of PCK, 0-30 px", fmt(summary["auc_0_30px"], 3)],
                ["within 0.1 ([-1, 1] input units)", fmt(summary["within_0.1"], 3)],
                ["within 0.01 ([-1, 1] input units)", fmt(summary["within_0.01"], 3)]]
    facts = [f"{summary['n_images']} records", f"{summary['n_keypoints']} labelled keypoints"]
    if summary.get("box_margin") is not None:
        facts.append(f"COCO crop margin {summary['box_margin']:g} per side")
    parts = [
        f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1><p>{html.escape(', '.join(facts))}. All figures: "
        f"<a href=\"metrics.json\">metrics.json</a>.</p>",
        "<div class=\"tables\">",
        _table(["keypoint error", *stats], errors, "Keypoint error"),
        _table(["metric", "value"], accuracy, "Accuracy"),
        _table(["group", "mean px"], [[g, fmt(v)] for g, v in summary["per_group_px"].items()],
               "Per finger (group), mean error"),
        "</div><div class=\"tables\">",
        _table(["keypoint", "mean px"], [[k, fmt(v)] for k, v in summary["per_keypoint_px"].items()],
               "Per keypoint, mean error"),
        _table(["rank", "record", "image", "mean px"],
               [[str(r + 1), w["record"], Path(w["file"]).name, fmt(w["error_px"])]
                for r, w in enumerate(summary["worst_images"])], "Worst records"),
        "</div>",
    ]
    captions = dict(PICTURES)
    pictures = list(captions) if pictures is None else list(pictures)
    names = [n for n in captions if n in pictures] + [n for n in pictures if n not in captions]
    for name in names:
        path, caption = folder / name, captions.get(name, "")
        if not path.is_file():
            continue
        size = _png_size(path)
        wh = f" width=\"{size[0]}\" height=\"{size[1]}\"" if size else ""
        parts.append(f"<figure><img src=\"{html.escape(name)}\" alt=\"{html.escape(name)}\"{wh}>"
                     f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_html(summary: dict, folder: str | Path, title: str | None = None, pictures=None) -> Path:
    """Write ``index.html`` (:func:`render_html`) into the report folder, after the plots ``pictures`` (file names
    in the folder; None: the :data:`PICTURES` found there).

    Returns:
        The page's path.

    Raises:
        HandposeError: the file cannot be written (names it).
    """
    folder = Path(folder)
    page = folder / "index.html"
    text = render_html(summary, folder, title or f"handpose evaluation: {summary['n_images']} records", pictures)
    try:
        page.write_text(text, encoding="utf-8")
    except OSError as e:
        raise HandposeError(f"{page}: cannot write the report page ({e})") from e
    return page


def find_chromium() -> str | None:
    """The path of a Chromium executable on ``PATH`` (:data:`CHROMIUM_NAMES`), or None."""
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def chromium_command(exe: str, url: str, profile: str | Path, *extra: str) -> list[str]:
    """A headless Chromium command line for ``url``: its own profile folder, no GPU, and no sandbox when run as
    root (Chromium refuses to start as root with it, e.g. in a CI container)."""
    cmd = [exe, "--headless", "--disable-gpu", "--hide-scrollbars", "--no-first-run", "--mute-audio",
           f"--user-data-dir={profile}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--no-sandbox")
    return [*cmd, *extra, url]


def run_chromium(page: str | Path, *extra: str, timeout: float = 120.0) -> subprocess.CompletedProcess:
    """Open a local page in headless Chromium with extra switches (e.g. ``--screenshot=...``, ``--dump-dom``).

    Returns:
        The finished process (stdout holds the DOM with ``--dump-dom``).

    Raises:
        HandposeError: no Chromium on PATH, the page is missing, Chromium failed or took longer than ``timeout``
            seconds (the message has its exit code and the end of its stderr).
    """
    exe = find_chromium()
    if exe is None:
        raise HandposeError(f"no Chromium found on PATH (tried {', '.join(CHROMIUM_NAMES)}); on Debian: "
                            "apt-get install chromium")
    page = Path(page)
    if not page.is_file():
        raise HandposeError(f"{page}: no such page")
    with tempfile.TemporaryDirectory(prefix="handpose-chromium-") as profile:
        cmd = chromium_command(exe, page.resolve().as_uri(), profile, *extra)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            raise HandposeError(f"{page}: Chromium did not finish within {timeout:g} s") from e
    if proc.returncode != 0:
        raise HandposeError(f"{page}: Chromium exited with {proc.returncode}: {proc.stderr[-600:]}")
    return proc


def screenshot(page: str | Path, png: str | Path, size: tuple[int, int] = (1280, 4800),
               timeout: float = 120.0) -> Path:
    """Render a local page in headless Chromium and save the top ``size`` (``(width, height)`` CSS pixels) of it
    as a PNG.

    Returns:
        ``png``.

    Raises:
        HandposeError: as :func:`run_chromium`, or no screenshot written.
    """
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    png.unlink(missing_ok=True)
    run_chromium(page, f"--window-size={size[0]},{size[1]}", f"--screenshot={png.resolve()}",
                 "--virtual-time-budget=10000", timeout=timeout)
    if not png.is_file():
        raise HandposeError(f"{page}: Chromium wrote no screenshot to {png}")
    return png


def main(argv: list[str] | None = None) -> None:
    """``python -m handpose.report FOLDER [PNG]``: screenshot ``FOLDER/index.html`` (default
    ``FOLDER/screenshot.png``) and print its path."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if not args:
        raise SystemExit("usage: python -m handpose.report REPORT_FOLDER [SCREENSHOT.png]")
    folder = Path(args[0])
    try:
        png = screenshot(folder / "index.html", args[1] if len(args) > 1 else folder / "screenshot.png")
    except HandposeError as e:
        raise SystemExit(f"error: {e}") from e
    print(png)


if __name__ == "__main__":
    main()
