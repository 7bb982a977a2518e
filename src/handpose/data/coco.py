"""COCO keypoints reader (``images``, ``annotations`` with ``keypoints`` and ``bbox``, ``categories``)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from handpose.data.image import image_size
from handpose.data.records import Record, check_keypoints, check_not_empty
from handpose.errors import HandposeError
from handpose.skeleton import Skeleton


def read_coco_json(path: str | Path) -> dict:
    """Load a COCO json and check its top-level fields.

    Raises:
        HandposeError: missing file, invalid JSON, not a JSON object, no ``images`` / ``annotations`` /
            ``categories`` lists, entries that are not objects, or duplicate image or annotation ids (naming both
            records: a second image with the same id would silently replace the first).
    """
    path = Path(path)
    if not path.is_file():
        raise HandposeError(f"{path}: COCO annotation file not found")
    try:
        with open(path) as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise HandposeError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(data, dict):
        raise HandposeError(f"{path}: expected a JSON object with images, annotations and categories, got "
                            f"a {type(data).__name__}")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise HandposeError(f"{path}: expected a list under {key!r} (COCO keypoints format)")
        bad = next((i for i, e in enumerate(data[key]) if not isinstance(e, dict)), None)
        if bad is not None:
            raise HandposeError(f"{path}: {key}[{bad}] is not an object: {str(data[key][bad])[:80]}")
    for key in ("images", "annotations"):
        seen: dict = {}
        for i, e in enumerate(data[key]):
            if key == "images" and ("id" not in e or not isinstance(e.get("file_name"), str) or not e["file_name"]):
                raise HandposeError(f"{path}: images[{i}] needs an 'id' and a 'file_name', got {str(e)[:120]}")
            if "id" not in e:
                continue
            try:
                first = seen.setdefault(e["id"], i)
            except TypeError as err:
                raise HandposeError(f"{path}: {key}[{i}] has an id that is not a number or string: "
                                    f"{e['id']!r}") from err
            if first != i:
                a, b = data[key][first], e
                names = f" ({a.get('file_name')} and {b.get('file_name')})" if key == "images" else ""
                raise HandposeError(f"{path}: {key}[{first}] and {key}[{i}] have the same id {e['id']!r}{names}")
    return data


def skeleton_from_coco(data: dict, path: str | Path = "", category_id: int | None = None,
                       one_based: bool | None = None) -> Skeleton:
    """The Skeleton of the (first, or given) keypoint category of a COCO dict, with the category's optional
    ``sigmas``, ``groups``, ``colours``, ``flip_pairs``, ``root`` and ``skeleton_base``
    (:meth:`handpose.skeleton.Skeleton.from_coco_category`, docs/custom_keypoints.md).

    Args:
        one_based: how the ``skeleton`` pairs are numbered when the caller knows (default: the category's
            ``skeleton_base``, else told from the pairs).

    Raises:
        HandposeError: no category with keypoints, the given id is absent, skeleton pairs that could be 0- or
            1-based without ``skeleton_base``, or an invalid optional key; the message names ``path``.
    """
    cats = [c for c in data["categories"] if c.get("keypoints")]
    if category_id is not None:
        cats = [c for c in cats if c.get("id") == category_id]
    if not cats:
        raise HandposeError(f"{path}: no category with keypoint names" +
                            (f" and id {category_id}" if category_id is not None else ""))
    return Skeleton.from_coco_category(cats[0], one_based=one_based, source=str(path))


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
    """Raise if a labelled keypoint lies outside the image (its width and height from the json, else read from the
    image file's header by :func:`load_coco` into ``image``)."""
    w, h = image.get("width"), image.get("height")
    labelled = kpv[:, 2] > 0
    x, y = kpv[:, 0], kpv[:, 1]
    out = labelled & ((x < -tolerance) | (y < -tolerance) | (x > w + tolerance) | (y > h + tolerance))
    if out.any():
        j = int(np.argmax(out))
        raise HandposeError(f"{where}: keypoint {j} at ({x[j]:.1f}, {y[j]:.1f}) lies outside its "
                            f"{w}x{h} image {image.get('file_name')}")


def _outside(file_name: str) -> bool:
    """True for a ``file_name`` that leaves its images folder: absolute, or climbing out with ``..`` (checked on the
    name itself, so an images folder of symbolic links to elsewhere is still fine)."""
    norm = os.path.normpath(file_name)
    return os.path.isabs(norm) or norm == ".." or norm.startswith(".." + os.sep)


def _box(value) -> np.ndarray | None:
    """``[x, y, w, h]`` of four finite numbers as float32, else None."""
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        return None
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in value):
        return None
    box = np.asarray(value, dtype=np.float32)
    return box if np.all(np.isfinite(box)) else None


def _ignore(ignored: dict, image_id, bbox, where: str) -> None:
    """Keep the box of an unused (crowd / unlabelled) annotation as a region to mask out."""
    if bbox is None:
        return
    box = _box(bbox)
    if box is None:
        raise HandposeError(f"{where}: expected a bbox [x, y, w, h] of four numbers, got {bbox}")
    ignored.setdefault(image_id, []).append(box.tolist())


#: A teacher-labelled annotation was kept only when its two mirrored passes disagreed by less than this share of the
#: hand's keypoint box side (../shared/data/README.md, "Teacher labels").
TEACHER_MAX_DISAGREEMENT = 0.06


def teacher_weight(annotation: dict, scale: float = TEACHER_MAX_DISAGREEMENT) -> float:
    """Loss weight of a teacher-labelled annotation from its ``teacher_disagreement`` ``d`` (a share of the hand
    box side): ``max(0, 1 - d / scale)``, 1 for two passes that agree exactly and 0 at ``scale`` (by default the
    threshold the labels were accepted at). An annotation without the field (a person's label) weighs 1.

    Raises:
        HandposeError: a disagreement that is not a finite number.
    """
    d = annotation.get("teacher_disagreement")
    if d is None:
        return 1.0
    if isinstance(d, bool) or not isinstance(d, (int, float)) or not np.isfinite(d):
        raise HandposeError(f"annotation {annotation.get('id')}: teacher_disagreement {d!r} is not a number")
    return float(max(0.0, 1.0 - d / scale))


def load_coco(
    json_path: str | Path,
    image_dir: str | Path,
    skeleton: Skeleton | None = None,
    category_id: int | None = None,
    margin: float = 0.25,
    per_instance: bool = True,
    min_keypoints: int = 1,
    allow_outside: bool = False,
    weight_of: Callable[[dict], float] | None = None,
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
        allow_outside: let ``file_name`` point outside ``image_dir`` (an absolute path or ``..``).
        weight_of: for ``per_instance``, the loss weight of an annotation (:attr:`Record.weight`), e.g.
            :func:`teacher_weight`; default 1.

    Returns:
        ``(records, skeleton)``; keypoints ``(N, K, 2)`` pixels, visibility ``(N, K)`` COCO 0/1/2.

    Raises:
        HandposeError: a keypoint count that disagrees with the Skeleton, NaN or non-numeric coordinates, a
            visibility other than 0/1/2, a labelled keypoint outside its image, an empty or missing ``bbox``, an
            annotation naming an unknown image, a ``file_name`` outside ``image_dir`` (absolute or with ``..``;
            allowed with ``allow_outside``), a missing image file, duplicate ids, or no usable records.
    """
    json_path, image_dir = Path(json_path), Path(image_dir)
    data = read_coco_json(json_path)
    cat_skeleton = skeleton_from_coco(data, json_path, category_id)
    skeleton = skeleton or cat_skeleton
    if category_id is None:
        category_id = next(c["id"] for c in data["categories"] if c.get("keypoints"))
    k = skeleton.num_keypoints
    images = {im["id"]: dict(im) for im in data["images"]}
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
            if not allow_outside and _outside(image["file_name"]):
                raise HandposeError(f"{where}: file_name {image['file_name']!r} of image {image['id']} lies outside "
                                    f"the images folder {image_dir} (allow it explicitly)")
            if not path.is_file():
                raise HandposeError(f"{where}: image file {path} not found")
            if not image.get("width") or not image.get("height"):
                image["width"], image["height"] = image_size(path)
            checked.add(image["id"])
        by_image.setdefault(image["id"], [])
        try:
            skip = bool(ann.get("iscrowd", 0)) or int(ann.get("num_keypoints", 1)) < min_keypoints
        except (TypeError, ValueError) as e:
            raise HandposeError(f"{where}: num_keypoints {ann.get('num_keypoints')!r} is not a number") from e
        if skip:
            _ignore(ignored, image["id"], ann.get("bbox"), where)
            continue
        flat = ann.get("keypoints")
        if not isinstance(flat, list) or len(flat) != 3 * k:
            n = len(flat) if isinstance(flat, list) else type(flat).__name__
            raise HandposeError(f"{where}: expected {3 * k} keypoint values ({k} keypoints x [x, y, v]) "
                                f"for skeleton {skeleton.name!r}, got {n}")
        bad = next((j for j, v in enumerate(flat) if isinstance(v, bool) or not isinstance(v, (int, float))), None)
        if bad is not None:
            raise HandposeError(f"{where}: keypoint value {bad} (keypoint {bad // 3}) is {flat[bad]!r}, not a number")
        kpv = check_keypoints(np.asarray(flat, dtype=np.float32).reshape(k, 3), k, where)
        odd = ~np.isin(kpv[:, 2], (0, 1, 2))
        if odd.any():
            j = int(np.argmax(odd))
            raise HandposeError(f"{where}: keypoint {j} has visibility {kpv[j, 2]:g}; COCO allows 0 (unlabelled), "
                                "1 (labelled, hidden) and 2 (visible)")
        vis = kpv[:, 2].astype(np.uint8)
        if int((vis > 0).sum()) < min_keypoints:
            _ignore(ignored, image["id"], ann.get("bbox"), where)
            continue
        _check_inside(kpv, image, where)
        kp = kpv[:, :2]
        if per_instance:
            bbox = _box(ann.get("bbox"))
            if bbox is None or bbox[2] <= 0 or bbox[3] <= 0:
                raise HandposeError(f"{where}: expected a non-empty bbox [x, y, w, h], got {ann.get('bbox')}")
            records.append(Record(path, kp[None], vis[None], expand_box(np.asarray(bbox), margin),
                                  f"{json_path.name}#{ann.get('id', idx)}",
                                  weight=float(weight_of(ann)) if weight_of is not None else 1.0))
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
