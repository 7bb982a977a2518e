"""COCO keypoints reader (``images``, ``annotations`` with ``keypoints`` and ``bbox``, ``categories``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from handpose.data.records import Record, check_keypoints, check_not_empty
from handpose.errors import HandposeError
from handpose.skeleton import Skeleton


def read_coco_json(path: str | Path) -> dict:
    """Load a COCO json and check its top-level fields.

    Raises:
        HandposeError: missing file, invalid JSON, or no ``images`` / ``annotations`` / ``categories``.
    """
    path = Path(path)
    if not path.is_file():
        raise HandposeError(f"{path}: COCO annotation file not found")
    try:
        with open(path) as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise HandposeError(f"{path}: not valid JSON ({e})") from e
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise HandposeError(f"{path}: expected a list under {key!r} (COCO keypoints format)")
    return data


def skeleton_from_coco(data: dict, path: str | Path = "", category_id: int | None = None) -> Skeleton:
    """The Skeleton of the (first, or given) keypoint category of a COCO dict.

    Raises:
        HandposeError: no category with keypoints, or the given id is absent.
    """
    cats = [c for c in data["categories"] if c.get("keypoints")]
    if category_id is not None:
        cats = [c for c in cats if c.get("id") == category_id]
    if not cats:
        raise HandposeError(f"{path}: no category with keypoint names" +
                            (f" and id {category_id}" if category_id is not None else ""))
    return Skeleton.from_coco_category(cats[0])


def expand_box(box: np.ndarray, margin: float) -> np.ndarray:
    """Grow an ``[x, y, w, h]`` box by ``margin`` of its longer side on every side and make it square.

    Returns:
        ``(4,)`` float32 square box with the same centre.
    """
    x, y, w, h = (float(v) for v in box)
    side = max(w, h) * (1.0 + 2.0 * margin)
    cx, cy = x + w / 2.0, y + h / 2.0
    return np.array([cx - side / 2.0, cy - side / 2.0, side, side], dtype=np.float32)


def _check_inside(kpv: np.ndarray, image: dict, where: str, tolerance: float = 1.0) -> None:
    """Raise if a labelled keypoint lies outside the image (when the json gives its width and height)."""
    w, h = image.get("width"), image.get("height")
    if not w or not h:
        return
    labelled = kpv[:, 2] > 0
    x, y = kpv[:, 0], kpv[:, 1]
    out = labelled & ((x < -tolerance) | (y < -tolerance) | (x > w + tolerance) | (y > h + tolerance))
    if out.any():
        j = int(np.argmax(out))
        raise HandposeError(f"{where}: keypoint {j} at ({x[j]:.1f}, {y[j]:.1f}) lies outside its "
                            f"{w}x{h} image {image.get('file_name')}")


def load_coco(
    json_path: str | Path,
    image_dir: str | Path,
    skeleton: Skeleton | None = None,
    category_id: int | None = None,
    margin: float = 0.25,
    per_instance: bool = True,
    min_keypoints: int = 1,
) -> tuple[list[Record], Skeleton]:
    """Read a COCO keypoints file.

    Args:
        json_path: the annotation json.
        image_dir: folder that ``images[].file_name`` is relative to.
        skeleton: the keypoint set; by default built from the json's category (its names and skeleton).
        category_id: use only this category's annotations (default: the first category with keypoints).
        margin: for ``per_instance``, the crop box is the annotation ``bbox`` grown by this share of its longer
            side on each side and made square.
        per_instance: one record per annotation with its crop box (single-instance models), or one record per
            image with all its instances (bottom-up models; an image whose annotations are all crowd or unlabelled
            gives a record with no instances, and those annotations' boxes become ``ignore_boxes``).
        min_keypoints: skip annotations with fewer labelled keypoints (and crowd annotations).

    Returns:
        ``(records, skeleton)``; keypoints ``(N, K, 2)`` pixels, visibility ``(N, K)`` COCO 0/1/2.

    Raises:
        HandposeError: a keypoint count that disagrees with the Skeleton, NaN coordinates, a labelled keypoint
            outside its image, an empty or missing ``bbox``, an annotation naming an unknown image, a missing image
            file, or no usable records.
    """
    json_path, image_dir = Path(json_path), Path(image_dir)
    data = read_coco_json(json_path)
    cat_skeleton = skeleton_from_coco(data, json_path, category_id)
    skeleton = skeleton or cat_skeleton
    if category_id is None:
        category_id = next(c["id"] for c in data["categories"] if c.get("keypoints"))
    k = skeleton.num_keypoints
    images = {im["id"]: im for im in data["images"]}
    by_image: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
    ignored: dict[int, list[list[float]]] = {}
    records: list[Record] = []
    checked: set[int] = set()
    for idx, ann in enumerate(data["annotations"]):
        if ann.get("category_id", category_id) != category_id:
            continue
        where = f"{json_path} annotation {ann.get('id', idx)} (index {idx})"
        image = images.get(ann.get("image_id"))
        if image is None:
            raise HandposeError(f"{where}: image_id {ann.get('image_id')} is not in 'images'")
        path = image_dir / image["file_name"]
        if image["id"] not in checked:
            if not path.is_file():
                raise HandposeError(f"{where}: image file {path} not found")
            checked.add(image["id"])
        by_image.setdefault(image["id"], [])
        if ann.get("iscrowd", 0) or int(ann.get("num_keypoints", 1)) < min_keypoints:
            if ann.get("bbox") is not None:
                ignored.setdefault(image["id"], []).append([float(v) for v in ann["bbox"]])
            continue
        flat = ann.get("keypoints")
        if flat is None or len(flat) != 3 * k:
            n = None if flat is None else len(flat)
            raise HandposeError(f"{where}: expected {3 * k} keypoint values ({k} keypoints x [x, y, v]) "
                                f"for skeleton {skeleton.name!r}, got {n}")
        kpv = check_keypoints(np.asarray(flat, dtype=np.float32).reshape(k, 3), k, where)
        vis = kpv[:, 2].astype(np.uint8)
        if int((vis > 0).sum()) < min_keypoints:
            if ann.get("bbox") is not None:
                ignored.setdefault(image["id"], []).append([float(v) for v in ann["bbox"]])
            continue
        _check_inside(kpv, image, where)
        kp = kpv[:, :2]
        if per_instance:
            bbox = ann.get("bbox")
            if bbox is None or len(bbox) != 4 or not np.all(np.isfinite(bbox)) or bbox[2] <= 0 or bbox[3] <= 0:
                raise HandposeError(f"{where}: expected a non-empty bbox [x, y, w, h], got {bbox}")
            records.append(Record(path, kp[None], vis[None], expand_box(np.asarray(bbox), margin),
                                  f"{json_path.name}#{ann.get('id', idx)}"))
        else:
            by_image[image["id"]].append((kp, vis))
    if not per_instance:
        for image_id, insts in by_image.items():
            path = image_dir / images[image_id]["file_name"]
            kps = np.stack([i[0] for i in insts]) if insts else np.zeros((0, k, 2), np.float32)
            vis = np.stack([i[1] for i in insts]) if insts else np.zeros((0, k), np.uint8)
            boxes = np.asarray(ignored.get(image_id, []), np.float32).reshape(-1, 4)
            records.append(Record(path, kps, vis, None, f"{json_path.name}@image{image_id}", boxes))
    return check_not_empty(records, str(json_path)), skeleton
