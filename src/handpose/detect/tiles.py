"""Palm detection on overlapping tiles of a photo, for hands too small for one pass over the whole frame.

MediaPipe's palm detector sees the whole photo letterboxed to 192 x 192: in a 640 x 480 photo a 64 px hand becomes a
19 px hand with a palm of about 8 px, below what the detector finds (``docs/benchmarks.md``, "Whole photos"). With
``grid = n`` the detector also runs on an ``n x n`` grid of tiles that overlap by ``overlap`` of a tile's side, each
letterboxed on its own (n times the scale), and all detections, the whole photo's included, are merged by the same
weighted non-maximum suppression as one pass's (:func:`handpose.detect.decode.weighted_nms`); a tile's detection
whose palm box touches a cut between tiles is dropped (:data:`EDGE_MARGIN`), as tiled detectors do: a palm cut in
half by one tile lies whole in its neighbour when it is smaller than the overlap; so is one that is large for its
tile (:data:`MAX_PALM`): large hands are the whole image's. Cost: ``1 + n * n`` detector passes.
"""

from __future__ import annotations

import math

import numpy as np

from handpose.detect.decode import weighted_nms
from handpose.detect.detector import PALM_MIN_SCORE, PALM_NMS_IOU, PalmDetection, PalmDetector
from handpose.errors import HandposeError

#: A tile's palm detection within this share of the tile's side of an edge inside the image is dropped.
EDGE_MARGIN = 0.02
#: A tile's palm detection longer than this share of the tile's longer side is dropped: large palms are the whole
#: image's pass's (a tile shows only part of such a hand, and parts of it were found as palms of their own).
MAX_PALM = 0.25


def tile_boxes(width: int, height: int, grid: int, overlap: float = 0.25) -> list[tuple[int, int, int, int]]:
    """``grid x grid`` tiles ``(x0, y0, x1, y1)`` (pixels, ``x1`` / ``y1`` exclusive) covering a ``width x height``
    image, neighbours overlapping by ``overlap`` of a tile's side, edges flush with the image's.

    Raises:
        HandposeError: ``grid`` < 1, ``overlap`` outside ``[0, 1)`` or an empty image.
    """
    if grid < 1 or not 0 <= overlap < 1 or width < 1 or height < 1:
        raise HandposeError(f"tiles: need grid >= 1, 0 <= overlap < 1 and a non-empty image, got grid {grid}, "
                            f"overlap {overlap}, image {width} x {height}")
    boxes = []
    # a tile's side t with grid tiles stepping by t * (1 - overlap): t + (grid - 1) * t * (1 - overlap) = side
    tw = math.ceil(width / (1 + (grid - 1) * (1 - overlap)))
    th = math.ceil(height / (1 + (grid - 1) * (1 - overlap)))
    for j in range(grid):
        for i in range(grid):
            x0 = 0 if grid == 1 else round(i * (width - tw) / (grid - 1))
            y0 = 0 if grid == 1 else round(j * (height - th) / (grid - 1))
            boxes.append((x0, y0, min(width, x0 + tw), min(height, y0 + th)))
    return boxes


def detect_tiled(detector: PalmDetector, image: np.ndarray, grid: int = 2, overlap: float = 0.25,
                 min_score: float = PALM_MIN_SCORE, iou_threshold: float = PALM_NMS_IOU) -> list[PalmDetection]:
    """Palms of ``image`` (``(H, W, 3)`` uint8 RGB) from one pass over the whole image plus one per tile
    (:func:`tile_boxes`), merged by weighted NMS; ``grid = 1`` is the plain :meth:`PalmDetector.detect`.

    Returns:
        :class:`PalmDetection` list by decreasing score, in pixels of ``image``.

    Raises:
        HandposeError: ``image`` is not ``(H, W, 3)``, or a bad ``grid`` / ``overlap``.
    """
    whole = detector.detect(image, min_score, iou_threshold)
    if grid == 1:
        return whole
    found = list(whole)
    h, w = image.shape[:2]
    for x0, y0, x1, y1 in tile_boxes(w, h, grid, overlap):
        # a palm box touching a tile edge inside the image may be a cut palm: the neighbouring tile (or the whole
        # image's pass) sees it whole
        near = EDGE_MARGIN * max(x1 - x0, y1 - y0)
        inner = np.array([x0 > 0, y0 > 0, x1 < w, y1 < h])
        for d in detector.detect(np.ascontiguousarray(image[y0:y1, x0:x1]), min_score, iou_threshold):
            gaps = np.array([d.box[0], d.box[1], (x1 - x0 - 1) - d.box[2], (y1 - y0 - 1) - d.box[3]])
            if np.any(inner & (gaps < near)) or max(d.box[2:] - d.box[:2]) > MAX_PALM * max(x1 - x0, y1 - y0):
                continue
            shift = np.array([x0, y0], np.float32)
            found.append(PalmDetection(d.box + np.tile(shift, 2), d.score, d.keypoints + shift))
    if not found:
        return []
    boxes, scores, keypoints = weighted_nms(np.stack([d.box for d in found]), np.array([d.score for d in found]),
                                            np.stack([d.keypoints for d in found]), iou_threshold)
    return [PalmDetection(boxes[i], float(scores[i]), keypoints[i]) for i in range(len(scores))]
