"""What prediction returns: keypoints in original-image pixels with raw scores, no hidden thresholds."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from handpose.errors import HandposeError
from handpose.skeleton import Skeleton


@dataclass
class Result:
    """Prediction for one image.

    Attributes:
        file_name: the image's path as given (empty for in-memory arrays).
        keypoints: ``(N, K, 2)`` float32 ``(x, y)`` in pixels of the original image (N instances). Bottom-up
            models give NaN for a keypoint they did not find in an instance (score 0).
        scores: ``(N, K)`` float32 raw per-keypoint confidence (heatmap peak, in ``[0, 1]`` for sigmoid
            heatmaps); nothing is zeroed or dropped, apply any threshold yourself.
        boxes: ``(N, 4)`` ``[x, y, w, h]`` regions the model looked at, in original pixels (for a rotated crop of
            :class:`handpose.detect.topdown.TopDownPipeline`: the crop's axis-aligned bounds).
        image_size: ``(width, height)`` of the original image.
        skeleton: the keypoint set.
        detection_scores: ``(N,)`` float32 detector confidence of each instance (the palm detector's score in
            ``[0, 1]``), or None when no detector ran.
        presence: ``(N,)`` float32 probability that each crop holds a hand (MediaPipe's landmark network), or None.
        handedness: ``(N,)`` float32 probability that each instance is a **right** hand in the image as given (not
            mirrored; MediaPipe's landmark network), or None. See :attr:`handedness_labels`.
        regions: ``(N, 5)`` float32 rotated crops ``(cx, cy, width, height, rotation)`` (pixels, radians; as
            :class:`handpose.detect.roi.RotatedRect`), or None when the crops were axis-aligned ``boxes``.
    """

    file_name: str
    keypoints: np.ndarray
    scores: np.ndarray
    boxes: np.ndarray
    image_size: tuple[int, int]
    skeleton: Skeleton
    detection_scores: np.ndarray | None = None
    presence: np.ndarray | None = None
    handedness: np.ndarray | None = None
    regions: np.ndarray | None = None

    @property
    def instance_scores(self) -> np.ndarray:
        """``(N,)`` confidence of each instance: the detector's score (times ``presence`` when given) when a
        detector ran, else the mean score of the instance's found keypoints."""
        if self.detection_scores is not None:
            s = np.asarray(self.detection_scores, np.float32)
            return s * np.asarray(self.presence, np.float32) if self.presence is not None else s
        found = np.isfinite(self.keypoints).all(axis=-1)
        with np.errstate(invalid="ignore"):
            return np.nan_to_num((self.scores * found).sum(axis=1) / found.sum(axis=1)).astype(np.float32)

    def select(self, keep: np.ndarray) -> Result:
        """A Result with only the instances where the boolean ``keep`` ``(N,)`` is true (every per-instance array
        filtered alike)."""
        keep = np.asarray(keep, bool)
        per_instance = {f.name: (None if getattr(self, f.name) is None else np.asarray(getattr(self, f.name))[keep])
                        for f in dataclasses.fields(self)
                        if f.name in ("keypoints", "scores", "boxes", "detection_scores", "presence", "handedness",
                                      "regions")}
        return dataclasses.replace(self, **per_instance)

    def above(self, min_score: float) -> Result:
        """The instances whose :attr:`instance_scores` are at least ``min_score`` (nothing is dropped otherwise:
        thresholds are the caller's choice)."""
        return self.select(self.instance_scores >= min_score)

    @property
    def handedness_labels(self) -> list[str] | None:
        """``"right"`` or ``"left"`` per instance (right when :attr:`handedness` >= 0.5), or None."""
        if self.handedness is None:
            return None
        return ["right" if p >= 0.5 else "left" for p in np.asarray(self.handedness)]

    def to_coco(self, image_id: int | None = None, category_id: int | None = None) -> list[dict]:
        """COCO results form plus the file name: one dict per instance with
        ``{"file_name", "keypoints": [x1, y1, s1, ..., xK, yK, sK], "score"}``; a keypoint that was not found
        is written as ``0, 0, 0``. Results of a detector add ``"bbox"`` (``boxes``), ``"detection_score"``,
        ``"presence"``, ``"handedness"`` (``"left"`` / ``"right"``) with ``"handedness_score"`` (the probability of
        that label) and ``"region"`` (``regions``), each only when present.

        Args:
            image_id, category_id: written as ``"image_id"`` / ``"category_id"`` when given: with them the list is
                COCO keypoint results that pycocotools' ``COCO.loadRes`` reads (see :class:`CocoImages`).
        """
        out = []
        ids = {k: v for k, v in (("image_id", image_id), ("category_id", category_id)) if v is not None}
        labels = self.handedness_labels
        for n, (kp, sc, s) in enumerate(zip(self.keypoints, self.scores, self.instance_scores, strict=True)):
            found = np.isfinite(kp).all(axis=1)
            flat = np.concatenate([np.where(found[:, None], kp, 0.0), np.where(found, sc, 0.0)[:, None]],
                                  axis=1).reshape(-1)
            entry = {**ids, "file_name": self.file_name, "keypoints": [round(float(v), 3) for v in flat],
                     "score": round(float(s), 5)}
            if self.detection_scores is not None:
                entry["bbox"] = [round(float(v), 2) for v in self.boxes[n]]
                entry["detection_score"] = round(float(self.detection_scores[n]), 5)
            if self.presence is not None:
                entry["presence"] = round(float(self.presence[n]), 5)
            if labels is not None:
                p = float(self.handedness[n])
                entry["handedness"] = labels[n]
                entry["handedness_score"] = round(p if labels[n] == "right" else 1.0 - p, 5)
            if self.regions is not None:
                entry["region"] = [round(float(v), 4) for v in self.regions[n]]
            out.append(entry)
        return out


@dataclass
class CocoImages:
    """The ``images`` and keypoint category of a COCO json, to give predictions their ``image_id`` and
    ``category_id`` (COCO results, read by pycocotools' ``COCO.loadRes`` against that json).

    A file is matched to the image whose ``file_name`` is the end of the file's path: ``photos/000123.jpg``
    matches ``000123.jpg`` and ``photos/000123.jpg``, not ``other/000123.jpg`` (the longest match wins).

    Attributes:
        path: the json.
        category_id: the first category with ``keypoints`` (else the first category).
        keypoints: that category's keypoint names.
        by_parts: ``file_name`` split into path parts -> image id.
    """

    path: Path
    category_id: int
    keypoints: list[str]
    by_parts: dict[tuple[str, ...], int]

    @classmethod
    def read(cls, path: str | Path) -> CocoImages:
        """Read a COCO json (:func:`handpose.data.coco.read_coco_json`).

        Raises:
            HandposeError: the reader's errors, a json without categories, or an image without ``id`` /
                ``file_name``.
        """
        from handpose.data.coco import read_coco_json

        path = Path(path)
        data = read_coco_json(path)
        if not data["categories"]:
            raise HandposeError(f"{path}: no categories (COCO results need a category_id)")
        category = next((c for c in data["categories"] if c.get("keypoints")), data["categories"][0])
        by_parts = {}
        for i, im in enumerate(data["images"]):
            if "id" not in im or not im.get("file_name"):
                raise HandposeError(f"{path}: images[{i}] lacks an id or a file_name")
            by_parts[Path(im["file_name"]).parts] = im["id"]
        return cls(path, category["id"], list(category.get("keypoints") or []), by_parts)

    def image_id(self, file: str | Path) -> int | None:
        """The id of the image ``file`` is (the longest ``file_name`` that ends its path), or None."""
        parts = Path(file).resolve().parts if Path(file).exists() else Path(file).parts
        for n in range(len(parts), 0, -1):
            if (found := self.by_parts.get(parts[-n:])) is not None:
                return found
        return None

    def image_ids(self, files: Sequence[str | Path]) -> dict[str, int]:
        """``{str(file): image id}`` for every file.

        Raises:
            HandposeError: files that match no image of the json (the first few named).
        """
        ids, missing = {}, []
        for f in files:
            found = self.image_id(f)
            if found is None:
                missing.append(str(f))
            else:
                ids[str(f)] = found
        if missing:
            raise HandposeError(f"{self.path}: {len(missing)} file(s) match no image file_name (the end of the path): "
                                + ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else ""))
        return ids
