"""Conversions between keypoint sets."""

from __future__ import annotations

import numpy as np

from handpose.errors import HandposeError
from handpose.skeleton import HAND12_FINGER_SOURCES, HAND12_PALM_STEPS, HAND21


def hand21_to_hand12(keypoints: np.ndarray, visible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Derive the small-data tutorial's 12 keypoints (:data:`handpose.skeleton.HAND12`) from HAND21 labels.

    The 8 finger points are copied (index, middle, ring, little: MCP "root", then tip). The palm's centre line is
    taken as the segment from the wrist (HAND21 0) to the middle finger's root (HAND21 9, the middle MCP); its 4
    points sit at 0, 1/3, 2/3 and 1 of it, so the first is the wrist and the last the middle MCP.

    Args:
        keypoints: ``(..., 21, 2)`` pixels.
        visible: ``(..., 21)`` COCO visibility.

    Returns:
        ``(..., 12, 2)`` float32 keypoints and ``(..., 12)`` uint8 visibility (palm points: the lower visibility
        of the wrist and the middle MCP).

    Raises:
        HandposeError: arrays that are not 21-point.
    """
    kp = np.asarray(keypoints, np.float32)
    vis = np.asarray(visible, np.uint8)
    if kp.shape[-2:] != (HAND21.num_keypoints, 2) or vis.shape != kp.shape[:-1]:
        raise HandposeError(f"hand21_to_hand12: expected (..., 21, 2) keypoints and (..., 21) visibility, got "
                            f"{kp.shape} and {vis.shape}")
    src = list(HAND12_FINGER_SOURCES)
    wrist, mid = kp[..., 0, :], kp[..., 9, :]
    palm = np.stack([wrist + t * (mid - wrist) for t in HAND12_PALM_STEPS], axis=-2)
    palm_vis = np.minimum(vis[..., 0], vis[..., 9])[..., None].repeat(len(HAND12_PALM_STEPS), axis=-1)
    return (np.concatenate([kp[..., src, :], palm], axis=-2).astype(np.float32),
            np.concatenate([vis[..., src], palm_vis], axis=-1).astype(np.uint8))


def linear_keypoint_map(convert, num_in: int) -> np.ndarray:
    """The matrix ``A`` ``(K_out, K_in)`` of a linear keypoint conversion (``out = A @ in`` for x and for y alike),
    read off by converting each unit keypoint.

    Args:
        convert: ``(keypoints (..., K_in, 2), visible (..., K_in)) -> (keypoints (..., K_out, 2), visible)``, linear
            in the keypoints (as :func:`hand21_to_hand12`).
        num_in: K_in.
    """
    basis = np.zeros((num_in, num_in, 2), np.float32)
    basis[np.arange(num_in), np.arange(num_in), 0] = 1.0
    out, _ = convert(basis, np.full((num_in, num_in), 2, np.uint8))
    return np.ascontiguousarray(out[..., 0].T)


#: Keypoint sets that are linear functions of HAND21 (MediaPipe's 21 landmarks): name -> ``(K, 21)`` matrix, rows
#: summing to 1. A model that outputs HAND21 can start a head for such a set from this map.
HAND21_KEYPOINT_MAPS: dict[str, np.ndarray] = {
    "hand21": np.eye(HAND21.num_keypoints, dtype=np.float32),
    "hand12": linear_keypoint_map(hand21_to_hand12, HAND21.num_keypoints),
}
