"""FreiHAND reader: ``training/rgb/%08d.jpg``, ``training_xyz.json`` (metres) and ``training_K.json``.

2D labels come from the pinhole projection given in the FreiHAND repository (``utils/fh_utils.py``,
``projectPoints``) and in the hand pose tutorial: ``uv = (K @ xyz.T).T; uv = uv[:, :2] / uv[:, 2:]``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from handpose.data.image import image_size
from handpose.data.records import Record, check_keypoints, check_not_empty
from handpose.errors import HandposeError
from handpose.skeleton import HAND21, Skeleton

SPLITS = ("train", "val", "test")


def project_points(xyz: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Project camera-space 3D points to pixels with a pinhole camera.

    Args:
        xyz: ``(K, 3)`` points in camera coordinates (any length unit; z > 0 in front of the camera).
        K: ``(3, 3)`` intrinsic matrix.

    Returns:
        ``(K, 2)`` float64 ``(x, y)`` pixel coordinates.

    Raises:
        HandposeError: a point has z <= 0 (behind the camera), so it has no image.
    """
    xyz = np.asarray(xyz, dtype=np.float64)
    K = np.asarray(K, dtype=np.float64)
    uv = (K @ xyz.T).T
    if np.any(uv[:, 2] <= 0):
        raise HandposeError(f"cannot project points with z <= 0: z = {uv[:, 2].min():.4g}")
    return uv[:, :2] / uv[:, 2:]


def split_ids(n: int, fractions: Sequence[float] = (0.8, 0.15, 0.05)) -> dict[str, range]:
    """Split ids ``0..n-1`` into consecutive train / val / test ranges (the tutorial splits by image id).

    Raises:
        HandposeError: fractions are negative or do not sum to 1.
    """
    f = [float(x) for x in fractions]
    if len(f) != 3 or min(f) < 0 or abs(sum(f) - 1.0) > 1e-6:
        raise HandposeError(f"split fractions must be three non-negative numbers summing to 1, got {list(fractions)}")
    a = int(round(n * f[0]))
    b = int(round(n * (f[0] + f[1])))
    return {"train": range(0, a), "val": range(a, b), "test": range(b, n)}


def _read_json(path: Path) -> list:
    if not path.is_file():
        raise HandposeError(f"{path}: file not found (expected FreiHAND layout: training/rgb/, training_xyz.json, "
                            "training_K.json)")
    try:
        with open(path) as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise HandposeError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(data, list):
        raise HandposeError(f"{path}: expected a JSON list with one entry per image, got a {type(data).__name__}")
    return data


def load_freihand(
    root: str | Path,
    split: str = "train",
    fractions: Sequence[float] = (0.8, 0.15, 0.05),
    skeleton: Skeleton = HAND21,
    limit: int | None = None,
) -> list[Record]:
    """Read one split of a FreiHAND-layout data set.

    Args:
        root: folder holding ``training/rgb/``, ``training_xyz.json`` and ``training_K.json``.
        split: ``"train"``, ``"val"``, ``"test"`` or ``"all"``.
        fractions: train / val / test shares of the ids, in id order (default 80/15/5 as in the tutorial).
        skeleton: must have as many keypoints as the files (21 for FreiHAND).
        limit: read only the first ``limit`` ids of the split (for quick runs).

    Returns:
        One :class:`Record` per image: ``keypoints`` ``(1, K, 2)`` in pixels of the stored image, all visible,
        ``box`` ``None`` (the whole image is the hand crop).

    Raises:
        HandposeError: missing files, unequal label counts, a wrong keypoint count, ragged or non-finite values,
            a keypoint projecting outside its image (by more than 1 px), an image file missing, or an empty split.
    """
    root = Path(root)
    xyz_path, k_path = root / "training_xyz.json", root / "training_K.json"
    xyz_all, k_all = _read_json(xyz_path), _read_json(k_path)
    if len(xyz_all) != len(k_all):
        raise HandposeError(f"{root}: training_xyz.json has {len(xyz_all)} entries but training_K.json {len(k_all)}")
    n = len(xyz_all)
    if split == "all":
        ids: Sequence[int] = range(n)
    elif split in SPLITS:
        ids = split_ids(n, fractions)[split]
    else:
        raise HandposeError(f"unknown split {split!r}; expected one of {SPLITS + ('all',)}")
    if limit is not None:
        ids = ids[:limit]
    records = []
    for i in ids:
        where = f"{xyz_path}[{i}]"
        xyz = check_keypoints(xyz_all[i], skeleton.num_keypoints, where)
        try:
            K = np.asarray(k_all[i], dtype=np.float64)
        except (TypeError, ValueError):
            K = np.zeros(0)
        if K.shape != (3, 3) or not np.all(np.isfinite(K)):
            raise HandposeError(f"{k_path}[{i}]: expected a finite 3x3 camera matrix, got {str(k_all[i])[:80]}")
        try:
            uv = project_points(xyz, K)
        except HandposeError as e:
            raise HandposeError(f"{where}: {e}") from e
        image_path = root / "training" / "rgb" / f"{i:08d}.jpg"
        if not image_path.is_file():
            raise HandposeError(f"{image_path}: image of record {i} not found")
        w, h = image_size(image_path)
        out = (uv[:, 0] < -1) | (uv[:, 1] < -1) | (uv[:, 0] > w + 1) | (uv[:, 1] > h + 1)
        if out.any():
            j = int(np.argmax(out))
            raise HandposeError(f"{where}: keypoint {j} projects to ({uv[j, 0]:.1f}, {uv[j, 1]:.1f}), outside its "
                                f"{w}x{h} image {image_path.name} (wrong camera matrix or points?)")
        records.append(Record(image_path, uv[None].astype(np.float32), np.full((1, len(uv)), 2), None,
                              f"{root.name}/{i:08d}"))
    return check_not_empty(records, f"{root} split {split!r}")
