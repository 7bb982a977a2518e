"""Progress bars with an ETA: a plain one for predicting and evaluating files, and the training display.

The plain bar (:func:`progress_bar`, :func:`track`) draws on standard error and only on a terminal (rich turns the
live display off when the output is a file or a pipe), so results printed or piped on standard output stay clean.
The training display, ``TrainProgressBar`` (Lightning's ``RichProgressBar`` made for this project, see
:func:`train_progress_bar_class`), is built when first imported, so that this module imports without Lightning.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import TypeVar

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

T = TypeVar("T")


@contextmanager
def progress_bar(total: int | None, description: str, enabled: bool = True,
                 console: Console | None = None) -> Iterator[Callable[[int], None]]:
    """A rich progress bar (count, elapsed time, ETA) that disappears when done.

    Args:
        total: number of items (None: unknown, no ETA).
        description: the label on the left (plain text, not markup).
        enabled: False gives a no-op ``advance``.
        console: where to draw (default: standard error). Text printed through it, or to standard output, while
            the bar runs is shown above the bar.

    Yields:
        ``advance(n=1)``: count ``n`` more items done.
    """
    if not enabled:
        yield lambda n=1: None
        return
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TextColumn("ETA"), TimeRemainingColumn(), console=console or Console(stderr=True),
                   transient=True)
    task = bar.add_task(escape(description), total=total)
    with bar:
        yield lambda n=1: bar.advance(task, n)


def track(items: Iterable[T], total: int | None, description: str, enabled: bool = True) -> Iterator[T]:
    """Yield ``items`` while a :func:`progress_bar` counts them (one step per item)."""
    with progress_bar(total, description, enabled) as advance:
        for item in items:
            yield item
            advance()


def format_duration(seconds: float) -> str:
    """``H:MM:SS`` (``"-:--:--"`` for a negative or non-finite value)."""
    if not seconds >= 0 or seconds == float("inf"):
        return "-:--:--"
    return str(timedelta(seconds=int(round(seconds))))


#: The training display's names for the logged metrics (the rest are shown as logged).
METRIC_LABELS = {"train_loss": "train loss", "val_loss": "val loss", "val_epe_px": "val EPE (input px)"}


def train_progress_bar_class() -> type:
    """Build ``TrainProgressBar``, a subclass of Lightning's ``RichProgressBar`` (imported here, not with the module).

    ``TrainProgressBar`` shows epochs counted from 1 (``Epoch 1/10``), the metrics named with their units
    (``val EPE (input px)`` for ``val_epe_px``, the mean keypoint error in model-input pixels), no ``v_num``, and
    ``run ETA``: the time left for the whole fit. The run ETA is the time per epoch measured in this process
    (validation included) times the epochs left; with ``max_time`` it is capped by the time left under that limit.
    Early stopping can end the run sooner, so it is an upper bound.
    """
    from lightning.pytorch.callbacks import RichProgressBar, Timer

    class TrainProgressBar(RichProgressBar):
        """Lightning's rich progress bar: epochs from 1, metrics with their units, no ``v_num``, a run ETA."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._t0: float | None = None
            self._done0 = 0.0

        def on_train_start(self, trainer, pl_module) -> None:
            super().on_train_start(trainer, pl_module)
            self._t0 = time.monotonic()
            self._done0 = float(trainer.current_epoch)  # a resumed run starts past 0

        def _get_train_description(self, current_epoch: int) -> str:
            text = f"Epoch {current_epoch + 1}"
            if self.trainer.max_epochs is not None and self.trainer.max_epochs > 0:
                text += f"/{self.trainer.max_epochs}"
            return f"{text:{len(self.validation_description)}}"  # as long as "Validation": no flicker

        def run_eta(self, trainer) -> float | None:
            """Seconds left in the fit, or None before anything was measured (and with neither an epoch count nor a
            time limit)."""
            if self._t0 is None:
                return None
            batches = self.total_train_batches
            batch = trainer.fit_loop.epoch_loop.batch_progress.current.completed
            into_epoch = batch / batches if trainer.training and batches and batches != float("inf") else 0.0
            done = trainer.current_epoch + min(1.0, into_epoch) - self._done0
            left = float("inf")
            if done > 0 and trainer.max_epochs is not None and trainer.max_epochs > 0:
                elapsed = time.monotonic() - self._t0
                left = elapsed / done * max(0.0, trainer.max_epochs - self._done0 - done)
            timer = next((c for c in trainer.callbacks if isinstance(c, Timer)), None)
            remaining = timer.time_remaining("train") if timer is not None else None
            if remaining is not None:
                left = min(left, max(0.0, remaining))
            return None if left == float("inf") else left

        def get_metrics(self, trainer, pl_module) -> dict:
            items = super().get_metrics(trainer, pl_module)
            items.pop("v_num", None)
            order = [k for k in METRIC_LABELS if k in items] + [k for k in items if k not in METRIC_LABELS]
            shown = {METRIC_LABELS.get(k, k): items[k] for k in order}
            eta = self.run_eta(trainer)
            if eta is not None:
                shown["run ETA"] = format_duration(eta)
            return shown

    TrainProgressBar.__qualname__ = "TrainProgressBar"  # pickled by reference as handpose.progress.TrainProgressBar
    return TrainProgressBar


def __getattr__(name: str):
    if name == "TrainProgressBar":  # ``from handpose.progress import TrainProgressBar``
        globals()[name] = train_progress_bar_class()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
