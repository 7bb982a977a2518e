"""Training curves from a run's CSV log: ``results.png`` (loss, learning rate, validation keypoint error)."""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

import numpy as np

from handpose.errors import HandposeError
from handpose.visualize import _plt

#: Per-epoch metrics read from the log (as :class:`handpose.train.KeypointModule` logs them); with ``val_sets`` also
#: each set's ``val_loss/<name>`` and ``val_epe_px/<name>``.
EPOCH_METRICS = ("train_loss", "val_loss", "val_epe_px")


def _epoch_metric(column: str) -> bool:
    return column in EPOCH_METRICS or ("/" in column and column.split("/", 1)[0] in ("val_loss", "val_epe_px"))


def _number(text: str | None) -> float | None:
    try:
        value = float(text) if text not in (None, "") else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def log_files(run_dir: str | Path) -> list[Path]:
    """The ``metrics.csv`` files of a run (``logs/version_N/``, one per start of ``handpose train``: a resumed run
    adds one), oldest first."""
    found = Path(run_dir).glob("logs/version_*/metrics.csv")
    return sorted(found, key=lambda p: int(m.group(1)) if (m := re.fullmatch(r"version_(\d+)", p.parent.name))
                  else -1)


def read_training_log(run_dir: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The curves of a run, from every CSV log it wrote (a later log wins for an epoch or step logged twice, as
    after a resume).

    Args:
        run_dir: the run folder (``out_dir/name``; a stage's folder for a staged config).

    Returns:
        ``{name: (x, values)}``: ``train_loss``, ``val_loss`` and ``val_epe_px`` (mean keypoint error in
        model-input pixels; with ``val_sets`` also ``val_loss/<set>`` and ``val_epe_px/<set>``) at ``x`` = the
        1-based epoch that ended, and ``lr`` (the first optimiser's learning
        rate as Lightning's ``LearningRateMonitor`` logs it, column ``lr-Adam`` / ``lr-SGD``) at ``x`` = epochs
        elapsed when it was logged (fractional for a per-step schedule). Metrics the log lacks are left out.

    Raises:
        HandposeError: the run folder has no ``logs/version_*/metrics.csv``.
    """
    files = log_files(run_dir)
    if not files:
        raise HandposeError(f"{run_dir}: no training log (logs/version_*/metrics.csv)")
    per_epoch: dict[str, dict[int, float]] = {}
    lr_by_step: dict[int, float] = {}
    epoch_end_step: dict[int, int] = {}
    for path in files:
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                step, epoch = _number(row.get("step")), _number(row.get("epoch"))
                lr_key = next((k for k in row if k.startswith("lr-")), None)
                lr = _number(row.get(lr_key)) if lr_key else None
                if lr is not None and step is not None:
                    lr_by_step[int(step)] = lr
                if epoch is None:
                    continue
                if step is not None:
                    epoch_end_step[int(epoch)] = int(step)
                for k in filter(_epoch_metric, row):
                    if (v := _number(row.get(k))) is not None:
                        per_epoch.setdefault(k, {})[int(epoch)] = v
    out = {k: (np.array([e + 1 for e in sorted(v)], float), np.array([v[e] for e in sorted(v)], float))
           for k, v in per_epoch.items() if v}
    if lr_by_step:
        steps = sorted(lr_by_step)
        ends = sorted(epoch_end_step.items())
        # step -> epochs elapsed: step 0 starts epoch 0; (0-based) epoch e logs at its last step s, so s + 1 is
        # where e + 1 epochs have elapsed
        xp, fp = [0.0, *(float(s + 1) for _, s in ends)], [0.0, *(float(e + 1) for e, _ in ends)]
        x = np.interp(steps, xp, fp) if len(xp) > 1 else np.zeros(len(steps))
        out["lr"] = (x, np.array([lr_by_step[s] for s in steps], float))
    return out


def plot_training_curves(run_dir: str | Path, path: str | Path | None = None) -> Path:
    """Draw ``results.png``: three panels against the epoch, loss (train and validation), learning rate and the
    validation keypoint error in model-input pixels (one curve per set with ``val_sets``; a panel whose metric was
    not logged says so: a bottom-up model logs no keypoint error).

    Args:
        run_dir: the run folder, read by :func:`read_training_log`.
        path: the PNG to write (default: ``run_dir/results.png``).

    Returns:
        The written file (1500 x 400 px).

    Raises:
        HandposeError: no log in ``run_dir``.
    """
    curves = read_training_log(run_dir)
    path = Path(path) if path is not None else Path(run_dir) / "results.png"
    plt = _plt()
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    panels = [
        (axes[0], "loss", [("train_loss", "train"), ("val_loss", "validation")], "loss"),
        (axes[1], "learning rate", [("lr", "learning rate")], "learning rate"),
        (axes[2], "validation keypoint error", [(k, k.split("/", 1)[1]) for k in curves if k.startswith("val_epe_px/")]
         or [("val_epe_px", "mean error")], "px (model input)"),
    ]
    for ax, title, series, ylabel in panels:
        drawn = False
        for key, label in series:
            if key not in curves:
                continue
            x, y = curves[key]
            if key == "lr":  # the last rate holds until the last logged epoch ends
                end = max((float(v[0][-1]) for k, v in curves.items() if k != "lr"), default=float(x[-1]))
                x, y = np.append(x, max(end, float(x[-1]))), np.append(y, y[-1])
            style = {"drawstyle": "steps-post"} if key == "lr" else {"marker": "o" if len(x) < 30 else None}
            ax.plot(x, y, label=label, **style)
            drawn = True
        if not drawn:
            ax.text(0.5, 0.5, f"not logged: {', '.join(k for k, _ in series)}", ha="center", va="center",
                    transform=ax.transAxes)
        elif title == "learning rate" and np.ptp(np.log10(curves["lr"][1])) > 1:
            ax.set_yscale("log")
        ax.set(title=title, xlabel="epoch", ylabel=ylabel)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if len(series) > 1 and drawn:
            ax.legend()
    fig.suptitle(str(Path(run_dir).name), fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
