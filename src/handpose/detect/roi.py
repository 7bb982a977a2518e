"""Palm detection -> the rotated square crop of the whole hand, as MediaPipe Hands builds it.

MediaPipe's ``mediapipe/modules/hand_landmark/palm_detection_detection_to_roi.pbtxt``:

- ``DetectionsToRectsCalculator`` (``rotation_vector_start_keypoint_index: 0`` centre of wrist,
  ``rotation_vector_end_keypoint_index: 2`` MCP of middle finger, ``rotation_vector_target_angle_degrees: 90``): the
  rectangle is the palm box (its centre and size) rotated by ``normalize(pi / 2 - atan2(-(y2 - y0), x2 - x0))``
  (``detections_to_rects_calculator.cc``, ``ComputeRotation``; computed in pixels, y down);
- ``RectTransformationCalculator`` (``scale_x: 2.6, scale_y: 2.6, shift_y: -0.5, square_long: true``): the centre
  moves by ``shift_y * height`` along the rectangle's own y axis (towards the fingers), the rectangle becomes a
  square of its long side, scaled by 2.6 (``rect_transformation_calculator.cc``, ``TransformNormalizedRect``).

Both calculators work on image-normalised rectangles and multiply back by the image size; done in pixels here, which
is the same arithmetic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: palm_detection_detection_to_roi.pbtxt values.
ROI_SCALE = 2.6
ROI_SHIFT_Y = -0.5
ROI_TARGET_ANGLE = math.pi / 2


def normalize_radians(angle: float) -> float:
    """Wrap ``angle`` to ``[-pi, pi)`` (MediaPipe's ``NormalizeRadians``)."""
    return angle - 2 * math.pi * math.floor((angle + math.pi) / (2 * math.pi))


@dataclass(frozen=True)
class RotatedRect:
    """A rectangle in image pixels rotated about its centre.

    Attributes:
        center: ``(x, y)`` pixels. width, height: pixels, along the rectangle's own x and y axes.
        rotation: radians; the rectangle's x axis is ``(cos r, sin r)`` in image coordinates (x right, y down), so a
            positive rotation turns it clockwise on screen (MediaPipe's ``Rect.rotation``). Cropping with this
            rotation undone gives an upright hand (wrist at the bottom, fingers up).
    """

    center: tuple[float, float]
    width: float
    height: float
    rotation: float

    def corners(self) -> np.ndarray:
        """``(4, 2)`` float32 corners (x, y) in pixels: top-left, top-right, bottom-right, bottom-left of the
        upright crop (so ``corners()[0] -> corners()[1]`` is the crop's top edge, left to right)."""
        c, s = math.cos(self.rotation), math.sin(self.rotation)
        local = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]]) * [self.width, self.height]
        rot = np.array([[c, -s], [s, c]])
        return (local @ rot.T + np.asarray(self.center)).astype(np.float32)


def rotation_towards(start: np.ndarray, end: np.ndarray, target_angle: float = ROI_TARGET_ANGLE) -> float:
    """The rotation (radians, :class:`RotatedRect`'s sense) that turns the direction ``start -> end`` (``(x, y)``
    pixels, y down) to ``target_angle`` (MediaPipe's ``ComputeRotation``)."""
    (ax, ay), (bx, by) = np.asarray(start, np.float64), np.asarray(end, np.float64)
    return normalize_radians(target_angle - math.atan2(-(by - ay), bx - ax))


def transform_rect(rect: RotatedRect, scale: float, shift_y: float) -> RotatedRect:
    """``RectTransformationCalculator`` with ``square_long: true`` and ``shift_x: 0``: the centre moves by
    ``shift_y * height`` along the rectangle's own y axis, then the rectangle becomes a square of its long side times
    ``scale``. Pixels in and out."""
    c, s = math.cos(rect.rotation), math.sin(rect.rotation)
    cx = rect.center[0] - rect.height * shift_y * s
    cy = rect.center[1] + rect.height * shift_y * c
    side = max(rect.width, rect.height) * scale
    return RotatedRect((cx, cy), side, side, rect.rotation)


def roi_from_palm(box: np.ndarray, keypoints: np.ndarray, scale: float = ROI_SCALE, shift_y: float = ROI_SHIFT_Y,
                  start: int = 0, end: int = 2, target_angle: float = ROI_TARGET_ANGLE) -> RotatedRect:
    """The hand crop MediaPipe derives from one palm detection.

    Args:
        box: ``(4,)`` palm box ``[x0, y0, x1, y1]``, pixels. keypoints: ``(7, 2)`` palm keypoints ``(x, y)``, pixels.
        scale, shift_y: ``RectTransformationCalculator`` ``scale_x = scale_y`` and ``shift_y`` (shift_x is 0).
        start, end: keypoints whose direction is turned to ``target_angle`` (0 wrist centre -> 2 middle MCP).
        target_angle: radians, measured counter-clockwise on screen from the x axis (pi / 2: pointing up).

    Returns:
        The square :class:`RotatedRect` (side = ``scale * max(box width, box height)``), pixels.
    """
    x0, y0, x1, y1 = (float(v) for v in box)
    kp = np.asarray(keypoints, np.float64)
    rotation = rotation_towards(kp[start], kp[end], target_angle)
    return transform_rect(RotatedRect(((x0 + x1) / 2, (y0 + y1) / 2), x1 - x0, y1 - y0, rotation), scale, shift_y)
