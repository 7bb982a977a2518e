"""The evaluation report page (``index.html``): built from a real evaluation of the bundled model on FreiHAND photos,
its links and figures, the gallery's and the worst panel's choice of pictures, and a render in headless Chromium
(skipped, with the reason, where Chromium is not installed)."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import numpy as np
import pytest

from handpose.bundle import load_model
from handpose.data.freihand import load_freihand
from handpose.data.image import read_image
from handpose.data.transforms import apply_affine
from handpose.evaluate import evaluate, write_report
from handpose.report import find_chromium, run_chromium, screenshot
from handpose.visualize import crop_view, spread_indices

PICTURES = ["pck_curve.png", "per_keypoint_error.png", "gallery.png", "worst_images.png"]
WINDOW = (1280, 4800)  # CSS px: the whole page of 12 records fits, so the screenshot holds every picture


class _Page(HTMLParser):
    """Links (``src``/``href``) and tables (rows of cell texts, keyed by the heading before them) of a page."""

    def __init__(self):
        super().__init__()
        self.links, self.tables, self.images = [], {}, []
        self._heading, self._in_h2, self._row, self._cell = None, False, None, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.links += [a[k] for k in ("src", "href") if k in a]
        if tag == "img":
            self.images.append(a)
        elif tag == "h2":
            self._in_h2, self._heading = True, ""
        elif tag == "table":
            self.tables[self._heading] = []
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = ""

    def handle_endtag(self, tag):
        if tag == "h2":
            self._in_h2 = False
        elif tag in ("td", "th"):
            self._row.append(self._cell)
            self._cell = None
        elif tag == "tr":
            self.tables[self._heading].append(self._row)

    def handle_data(self, data):
        if self._in_h2:
            self._heading += data
        elif self._cell is not None:
            self._cell += data


@pytest.fixture(scope="module")
def report(freihand_root, tmp_path_factory):
    """The bundled model evaluated on the first 12 photos of FreiHAND's val split; its report folder."""
    bundle = load_model("hand21_resunet")  # the report, not the model, is tested (its 128 px input)
    records = load_freihand(freihand_root, "val", skeleton=bundle.skeleton, limit=12)
    ev = evaluate(bundle, records, batch_size=12)
    summary = ev.summary()
    out = write_report(ev, summary, tmp_path_factory.mktemp("report"), skeleton=bundle.skeleton)
    page = _Page()
    page.feed((out / "index.html").read_text(encoding="utf-8"))
    return ev, summary, out, page


def test_page_links_only_files_of_its_folder(report):
    _, _, out, page = report
    assert [i["src"] for i in page.images] == PICTURES
    assert "metrics.json" in page.links
    for link in page.links:
        assert not re.match(r"\w+:", link) and "/" not in link, link  # relative, in the folder, nothing fetched
        assert (out / link).is_file(), link
    for img in page.images:  # the declared size is the file's
        assert read_image(out / img["src"]).shape[:2] == (int(img["height"]), int(img["width"]))


def test_page_shows_the_metrics(report):
    ev, summary, out, page = report
    assert json.loads((out / "metrics.json").read_text()) == summary
    t = page.tables
    stats = ["mean", "median", "p90", "p95", "max"]
    for key, row in zip(("error_px", "error_input_px", "error_pct_of_image"), t["Keypoint error"][1:], strict=True):
        assert row[1:] == [f"{summary[key][s]:.2f}" for s in stats]
    # FreiHAND photos are the crop: 256 px images at the bundled model's 128 px input, so image px = 2 x input px
    assert float(t["Keypoint error"][1][1]) == pytest.approx(2 * float(t["Keypoint error"][2][1]), abs=0.02)
    e = np.linalg.norm(ev.pred - ev.gt, axis=2)  # all 21 keypoints labelled in FreiHAND
    assert t["Keypoint error"][1][1] == f"{e.mean():.2f}"
    acc = dict(t["Accuracy"][1:])
    assert acc["PCK@0.2 (share of the hand box)"] == f"{summary['pck@0.2']:.3f}"
    assert acc["AUC of PCK, 0-30 px"] == f"{summary['auc_0_30px']:.3f}"
    assert dict(t["Per finger (group), mean error"][1:]) == {
        g: f"{v:.2f}" for g, v in summary["per_group_px"].items()}
    assert dict(t["Per finger (group), mean error"][1:])["thumb"] == f"{e[:, 1:5].mean():.2f}"
    assert len(t["Per keypoint, mean error"]) == 1 + 21
    worst = t["Worst records"][1:]
    assert [r[1] for r in worst] == [ev.record_ids[i] for i in np.argsort(-e.mean(axis=1))[:5]]
    assert worst[0][3] == f"{e.mean(axis=1).max():.2f}"
    assert f"{summary['n_images']} records, {summary['n_keypoints']} labelled keypoints" in \
        (out / "index.html").read_text()


def test_gallery_spreads_over_the_errors(report):
    ev, _, _, _ = report
    errors = np.linalg.norm(ev.pred - ev.gt, axis=2).mean(axis=1)
    picks = spread_indices(ev.image_errors_px, ev.files, 9)
    assert len(picks) == len(set(picks)) == 9
    assert picks[0] == np.argmin(errors) and picks[-1] == np.argmax(errors)  # best and worst both shown
    assert np.all(np.diff(errors[picks]) >= 0)
    assert list(picks) != list(range(9))  # not the first nine files
    # a photo with several hands: the next picks come from other photos while there are any
    files = ["a.jpg", "a.jpg", "b.jpg", "b.jpg", "c.jpg", "c.jpg"]
    assert list(spread_indices(np.array([1.0, 2, 3, 4, 5, 6]), files, 3)) == [0, 2, 5]
    assert list(spread_indices(np.array([1.0, np.nan, 3]), files[:3], 9)) == [0, 2]  # unlabelled never picked


def test_worst_panel_shows_the_hand_crop(hands_coco):
    """On a 640-px COCO photo, a picture of the worst panel is the record's box with its margin, not the photo."""
    from handpose.data.coco import load_coco

    ann, images = hands_coco
    bundle = load_model("hand21_resunet")  # the report, not the model, is tested (its 128 px input)
    records, _ = load_coco(ann, images, bundle.skeleton, margin=0.25)
    ev = evaluate(bundle, records[:3], batch_size=3)
    i = int(ev.worst_indices(1)[0])
    photo = read_image(ev.files[i])
    crop, M = crop_view(ev, i, size=256)
    assert crop.shape == (256, 256, 3) and max(photo.shape[:2]) >= 480
    x, y, w, h = ev.boxes[i]
    assert w == pytest.approx(h) and w < 0.5 * max(photo.shape[:2])  # a square box, much smaller than the photo
    assert np.allclose(apply_affine(M, [[x + w / 2, y + h / 2]]), [[127.5, 127.5]], atol=1e-3)
    assert np.allclose(apply_affine(M, [[x, y], [x + w, y + h]]), [[-0.5, -0.5], [255.5, 255.5]], atol=1e-3)
    # the crop's pixels are the photo's at the box centre
    cx, cy = int(round(x + w / 2)), int(round(y + h / 2))
    assert np.abs(crop[120:136, 120:136].astype(float).mean((0, 1)) -
                  photo[cy - round(w / 32):cy + round(w / 32) + 1, cx - round(w / 32):cx + round(w / 32) + 1]
                  .astype(float).mean((0, 1))).max() < 12
    # the labelled keypoints spread over the crop (they are a speck of the photo)
    gt = apply_affine(M, ev.gt[i][ev.mask[i]])
    assert (gt.max(0) - gt.min(0)).max() > 0.3 * 256


_PROBE = """<script>window.addEventListener("load", () => {
  const r = e => e.getBoundingClientRect();
  document.body.dataset.layout = JSON.stringify({
    width: document.documentElement.scrollWidth, height: document.documentElement.scrollHeight,
    images: [...document.images].map(i => ({src: i.getAttribute("src"), natural: [i.naturalWidth, i.naturalHeight],
      left: r(i).left + 1, top: r(i).top + 1, width: i.clientWidth, height: i.clientHeight}))});
});</script></body>"""


@pytest.mark.slow
@pytest.mark.skipif(find_chromium() is None, reason="no Chromium on PATH (Debian: apt-get install chromium; "
                    ".ci/run installs it where apt works)")
def test_page_renders_in_chromium(report, tmp_path):
    _, _, out, page = report
    # the layout, as Chromium lays the page out: the same page with a script that records it after loading
    probe = out / "probe.html"
    probe.write_text((out / "index.html").read_text(encoding="utf-8").replace("</body>", _PROBE))
    dom = run_chromium(probe, f"--window-size={WINDOW[0]},{WINDOW[1]}", "--force-device-scale-factor=1",
                       "--dump-dom").stdout
    layout = json.loads(re.search(r'data-layout="([^"]*)"', dom).group(1).replace("&quot;", '"'))
    assert layout["width"] <= WINDOW[0] and 1500 < layout["height"] <= WINDOW[1]  # no sideways scroll; all in
    assert [i["src"] for i in layout["images"]] == PICTURES
    png = screenshot(out / "index.html", tmp_path / "shot.png", WINDOW)
    shot = read_image(png)
    assert shot.shape == (WINDOW[1], WINDOW[0], 3)
    grey = shot.mean(axis=2)
    assert grey.std() > 20  # not blank
    assert (grey[layout["height"]:] > 250).all()  # white below the page's end
    for img in layout["images"]:
        # every picture decoded and shown at its own size, and the screenshot there is that picture
        picture = read_image(out / img["src"])
        assert img["natural"] == [picture.shape[1], picture.shape[0]] == [img["width"], img["height"]], img
        left, top = round(img["left"]), round(img["top"])
        shown = shot[top:top + img["height"], left:left + img["width"]].astype(float)
        assert np.abs(shown - picture).mean() < 2, img["src"]  # 0 here; 3 px off: 6-14
