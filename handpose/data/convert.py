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
