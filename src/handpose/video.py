"""Video files and cameras -> keypoints per frame, an annotated video, optional One-Euro smoothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from handpose.detect.track import HandTracker
from handpose.errors import HandposeError
from handpose.filters import OneEuroFilter
from handpose.predict import Predictor
from handpose.result import Result
from handpose.visualize import draw_skeleton

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
#: Consecutive unreadable frames after which a video is given up (a camera: after the first).
MAX_FRAME_FAILURES = 25


def is_video_source(item: str | Path) -> bool:
    """True for a camera index (``"0"``) or a path with a video suffix."""
    return str(item).isdigit() or Path(str(item)).suffix.lower() in VIDEO_SUFFIXES


def open_video(source: str | Path | int):
    """Open a video file or a camera index with OpenCV.

    Raises:
        HandposeError: a missing file, a file OpenCV cannot decode, or a camera that is not there.
    """
    if isinstance(source, int) or str(source).isdigit():
        cap = cv2.VideoCapture(int(source))
        if not cap.isOpened():
            raise HandposeError(f"camera {int(source)} is not there (cannot be opened)")
        return cap
    path = Path(source)
    if not path.is_file():
        raise HandposeError(f"{path}: video file not found")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened() or cap.get(cv2.CAP_PROP_FRAME_WIDTH) <= 0:
        raise HandposeError(f"{path}: video cannot be opened (not a video, or a codec OpenCV lacks)")
    return cap


@dataclass
class FrameResult:
    """One frame's prediction: ``index`` from 0, ``time_s`` from the video's frame rate, and the Result."""

    index: int
    time_s: float
    result: Result

    def to_json(self) -> list[dict]:
        """The Result's COCO-style entries with ``frame`` and ``time_s`` added."""
        return [{**e, "frame": self.index, "time_s": round(self.time_s, 4)} for e in self.result.to_coco()]


def read_frames(cap, on_error: Callable[[int, str], None]) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(index, RGB frame)``; every frame the container counts but that cannot be decoded is reported to
    ``on_error(index, message)`` and skipped, and after :data:`MAX_FRAME_FAILURES` failures in a row the video is
    given up, saying which frames were not read."""
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    index, failures = 0, 0
    while True:
        ok, frame = cap.read()
        if ok and frame is not None:
            failures = 0
            yield index, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        elif total and index < total:
            failures += 1
            on_error(index, f"frame {index} could not be decoded")
            if failures >= MAX_FRAME_FAILURES:
                rest = f"; frames {index + 1} to {total - 1} not read" if index + 1 < total else ""
                on_error(index, f"video given up after {failures} undecodable frames in a row{rest}")
                return
        else:
            return
        index += 1


def _predictions(predictor: Predictor | HandTracker, frames: Iterator[tuple[int, np.ndarray]], name: str, fps: float,
                 smoother: OneEuroFilter | None, batch_size: int) -> Iterator[tuple[int, np.ndarray, Result]]:
    """``(index, frame, Result)`` per frame: a tracker one frame after the other, a Predictor in batches of
    ``batch_size`` frames (then ``smoother`` runs over the whole frame's keypoints)."""
    if isinstance(predictor, HandTracker):
        for i, frame in frames:
            yield i, frame, predictor(frame, i / fps, name)
        return
    batch: list[tuple[int, np.ndarray]] = []
    while True:
        item = next(frames, None)
        if item is not None:
            batch.append(item)
        if batch and (item is None or len(batch) >= batch_size):
            results = predictor.predict_arrays([f for _, f in batch], names=[name] * len(batch))
            for (i, frame), res in zip(batch, results, strict=True):
                if smoother is not None:
                    res.keypoints = smoother(res.keypoints, i / fps).astype(np.float32)
                yield i, frame, res
            batch = []
        if item is None:
            return


def draw_frame(frame: np.ndarray, res: Result, skeleton) -> np.ndarray:
    """The frame with its hands drawn (:func:`handpose.visualize.draw_skeleton`) and, for tracked hands, each
    track id (``#id``) beside the wrist. RGB ``(H, W, 3)`` uint8."""
    drawn = draw_skeleton(frame, res.keypoints, skeleton)
    ids = getattr(res, "track_ids", None)  # a TrackedResult's
    for tid, kp in zip(ids if ids is not None else [], res.keypoints, strict=False):
        x, y = (int(round(v)) for v in kp[0])
        cv2.putText(drawn, f"#{tid}", (x + 4, y + 12), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1,
                    cv2.LINE_AA)
    return drawn


def predict_video(predictor: Predictor | HandTracker, source: str | Path | int, overlay: str | Path | None = None,
                  smoother: OneEuroFilter | None = None, on_error: Callable[[int, str], None] | None = None,
                  progress: bool = False, batch_size: int = 8) -> Iterator[FrameResult]:
    """Predict every frame of a video file or camera.

    Args:
        predictor: the model runner: a :class:`~handpose.predict.Predictor` (each frame is one hand crop), or a
            :class:`~handpose.detect.track.HandTracker` (every hand, tracked from frame to frame; it is
            :meth:`~handpose.detect.track.HandTracker.reset` first, so that no track comes from another video).
        source: a video path or a camera index.
        overlay: write an annotated copy (``.mp4``, same size and frame rate) here.
        smoother: a :class:`OneEuroFilter` applied to the keypoints over time (frame times from the frame rate); with
            a tracker it becomes the tracker's ``smoother`` (one filter per track, with these parameters).
        on_error: called with ``(frame_index, message)`` for undecodable frames (default: ignore); the video goes on.
        progress: show a progress bar (rich).
        batch_size: frames per forward pass (a Predictor; a tracker takes one frame at a time).

    Yields:
        A :class:`FrameResult` per decoded frame, in order (a frame without hands: a Result with ``N = 0``).

    Raises:
        HandposeError: the source cannot be opened, or the overlay cannot be written.
    """
    cap = open_video(source)
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    fps = fps if 0 < fps < 1000 else 30.0
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    if isinstance(predictor, HandTracker):
        predictor.reset()
        if smoother is not None:
            predictor.smoother = smoother
    writer = None
    bar = None
    if progress:
        from rich.markup import escape
        from rich.progress import Progress

        bar = Progress(transient=True)
        bar.start()
        task = bar.add_task(escape(str(source)), total=total or None)  # a description is Rich markup
    try:
        frames = read_frames(cap, on_error or (lambda i, m: None))
        for i, frame, res in _predictions(predictor, frames, str(source), fps, smoother, batch_size):
            if overlay is not None:
                if writer is None:
                    Path(overlay).parent.mkdir(parents=True, exist_ok=True)
                    writer = cv2.VideoWriter(str(overlay), cv2.VideoWriter_fourcc(*"mp4v"), fps,
                                             (frame.shape[1], frame.shape[0]))
                    if not writer.isOpened():
                        raise HandposeError(f"{overlay}: cannot write the annotated video")
                writer.write(cv2.cvtColor(draw_frame(frame, res, predictor.skeleton), cv2.COLOR_RGB2BGR))
            yield FrameResult(i, i / fps, res)
            if bar is not None:
                bar.update(task, advance=1)
    finally:
        cap.release()
        if writer is not None:
            writer.release()
        if bar is not None:
            bar.stop()
