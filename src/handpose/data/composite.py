"""Multi-hand photos made from single-hand photos: labelled hands pasted into real background photos.

A hand photo (e.g. an hgcnn-freihand crop with people's labels) is cut out around its keypoints (their convex hull
grown by a margin, edges feathered), scaled to a chosen hand size, turned, optionally mirrored, and pasted into a
background photo (e.g. ``coco-person-mini``) at a place where it overlaps no other pasted hand and no hand of the
background's people; its keypoints move with it through the same affine. The background's people are not labelled
as hands, so their hands are kept as ignore regions (:func:`person_hand_regions`, from the COCO wrist and elbow
keypoints, plus unlabelled and crowd people's boxes): a detection there is neither a hit nor a false alarm
(:func:`to_coco` writes them as COCO crowd annotations, which ``COCOeval`` ignores).

Used by ``benchmarks/bench_photos.py`` (composites with 1, 2, 4, 8 hands) and, through :class:`CompositeSource`, by
bottom-up training (``composite_sets`` in a config; :func:`compose` draws everything from the ``rng`` it is given).

Coordinates follow :mod:`handpose.data.transforms` (pixel centres at integer ``(x, y)``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from handpose.data.image import read_image
from handpose.data.records import Record
from handpose.data.transforms import apply_affine, box_to_input_affine, warp_to_input
from handpose.errors import HandposeError
from handpose.skeleton import Skeleton

#: COCO person keypoint indices (COCO17 order) of the (wrist, elbow) pairs: left, right.
COCO_WRIST_ELBOW = ((9, 7), (10, 8))
#: Canvas of the benchmark composites: ``(width, height)``, a webcam frame.
CANVAS_SIZE = (640, 480)


@dataclass
class HandCrop:
    """One labelled hand to paste.

    Attributes:
        image: ``(H, W, 3)`` uint8 RGB photo holding the hand.
        keypoints: ``(K, 2)`` float32 pixels of ``image``.
        visible: ``(K,)`` uint8 COCO visibility (0: unlabelled).
        name: where it came from, for reports.
    """

    image: np.ndarray
    keypoints: np.ndarray
    visible: np.ndarray
    name: str = ""

    @classmethod
    def from_record(cls, record: Record, instance: int = 0) -> HandCrop:
        """The ``instance``-th hand of a :class:`~handpose.data.records.Record` (its whole image).

        Raises:
            HandposeError: unreadable image, or a hand with fewer than 3 labelled keypoints (no outline to cut).
        """
        kp, vis = record.keypoints[instance], record.visible[instance]
        if int((vis > 0).sum()) < 3:
            raise HandposeError(f"{record.record_id or record.image_path}: hand {instance} has fewer than 3 labelled "
                                "keypoints; it cannot be cut out")
        return cls(read_image(record.image_path), kp.astype(np.float32), vis.astype(np.uint8),
                   record.record_id or str(record.image_path))


@dataclass
class Composite:
    """A composed photo and its labels.

    Attributes:
        image: ``(H, W, 3)`` uint8 RGB.
        keypoints: ``(N, K, 2)`` float32 pixels of ``image``, one row per pasted hand.
        visible: ``(N, K)`` uint8 COCO visibility (the sources', unchanged).
        boxes: ``(N, 4)`` float32 ``[x, y, w, h]`` of each hand's labelled keypoints.
        ignore_boxes: ``(M, 4)`` float32 ``[x, y, w, h]``: the background's people's hands and unlabelled people.
        sources: ``N`` names of the pasted hands, and ``background`` the background photo's.
    """

    image: np.ndarray
    keypoints: np.ndarray
    visible: np.ndarray
    boxes: np.ndarray
    ignore_boxes: np.ndarray
    sources: list[str] = field(default_factory=list)
    background: str = ""


def keypoint_box(keypoints: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """``(4,)`` float32 ``[x, y, w, h]`` around the labelled (``visible > 0``) keypoints ``(K, 2)``."""
    pts = np.asarray(keypoints, np.float32)[np.asarray(visible) > 0]
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    return np.array([lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]], np.float32)


def hand_mask(shape: tuple[int, int], keypoints: np.ndarray, visible: np.ndarray, margin: float = 0.15,
              feather: float = 0.06) -> np.ndarray:
    """Alpha mask of a hand in its photo: the convex hull of its labelled keypoints grown by ``margin`` x the hand
    size (the longer side of its keypoint box) on every side, edges blurred over ``feather`` x that size.

    Args:
        shape: ``(H, W)`` of the photo.
        keypoints: ``(K, 2)`` pixels. visible: ``(K,)``, > 0 where labelled.

    Returns:
        ``(H, W)`` uint8, 255 inside the hand, 0 outside.
    """
    h, w = shape
    pts = np.asarray(keypoints, np.float32)[np.asarray(visible) > 0]
    size = float(max(np.ptp(pts, axis=0).max(), 1.0))
    mask = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(mask, np.round(cv2.convexHull(pts)).astype(np.int32), 255)
    grow = max(1, round(margin * size))
    mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
    sigma = feather * size
    if sigma > 0.3:
        mask = cv2.GaussianBlur(mask, (0, 0), sigma)
    return mask


def fill_affine(width: int, height: int, canvas_size: tuple[int, int] = CANVAS_SIZE) -> np.ndarray:
    """``(2, 3)`` affine that scales a ``width x height`` photo to cover ``canvas_size`` and crops its centre
    (aspect kept, nothing letterboxed)."""
    cw, ch = canvas_size
    s = max(cw / width, ch / height)
    bw, bh = cw / s, ch / s
    return box_to_input_affine(np.array([(width - bw) / 2 - 0.5, (height - bh) / 2 - 0.5, bw, bh]), canvas_size)


def map_boxes(M: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """``[x, y, w, h]`` boxes ``(M, 4)`` through an axis-aligned affine (scale and shift) ``M``."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    lo = apply_affine(M, boxes[:, :2])
    hi = apply_affine(M, boxes[:, :2] + boxes[:, 2:])
    return np.concatenate([np.minimum(lo, hi), np.abs(hi - lo)], axis=1)


def person_hand_regions(keypoints: np.ndarray, visible: np.ndarray, person_boxes: np.ndarray | None = None,
                        extent: float = 0.7, min_size: float = 12.0) -> np.ndarray:
    """Where the hands of labelled COCO people are: a square per labelled wrist, centred a third of the forearm
    beyond the wrist (elbow -> wrist direction), of side ``2 * extent`` x the forearm length (the wrist alone,
    without a labelled elbow: side ``extent`` x the person box's longer side / 2.5, at the wrist).

    Args:
        keypoints: ``(N, 17, 2)`` COCO person keypoints. visible: ``(N, 17)``.
        person_boxes: ``(N, 4)`` ``[x, y, w, h]`` of the same people (for wrists without an elbow); default: their
            keypoint boxes.
        min_size: smallest side, pixels.

    Returns:
        ``(M, 4)`` float32 ``[x, y, w, h]``.
    """
    keypoints = np.asarray(keypoints, np.float32).reshape(-1, 17, 2)
    visible = np.asarray(visible).reshape(-1, 17)
    out = []
    for i in range(len(keypoints)):
        if person_boxes is not None:
            body = float(max(np.asarray(person_boxes, np.float32).reshape(-1, 4)[i, 2:]))
        else:
            body = float(max(keypoint_box(keypoints[i], visible[i])[2:])) if (visible[i] > 0).sum() >= 2 else 0.0
        for wrist, elbow in COCO_WRIST_ELBOW:
            if visible[i, wrist] <= 0:
                continue
            w = keypoints[i, wrist]
            if visible[i, elbow] > 0:
                forearm = w - keypoints[i, elbow]
                centre, side = w + forearm / 3.0, 2.0 * extent * float(np.hypot(*forearm))
            else:
                centre, side = w, extent * body / 2.5
            side = max(side, min_size)
            out.append([centre[0] - side / 2, centre[1] - side / 2, side, side])
    return np.asarray(out, np.float32).reshape(-1, 4)


def background_regions(record: Record) -> np.ndarray:
    """Ignore regions of a COCO person photo (a :func:`handpose.data.coco.load_coco` record with
    ``per_instance=False``): its labelled people's hands (:func:`person_hand_regions`) and the boxes of its
    unlabelled and crowd people (``record.ignore_boxes``). Returns ``(M, 4)`` float32 ``[x, y, w, h]``."""
    hands = person_hand_regions(record.keypoints, record.visible) if record.keypoints.shape[1] == 17 else None
    if hands is None:
        raise HandposeError(f"{record.record_id or record.image_path}: background regions need COCO person "
                            f"keypoints (17), got {record.keypoints.shape[1]}")
    other = np.zeros((0, 4), np.float32) if record.ignore_boxes is None else record.ignore_boxes
    return np.concatenate([hands, other]).astype(np.float32)


def wrists_labelled(record: Record) -> bool:
    """True when every labelled person of a COCO person record has both wrists labelled: then
    :func:`background_regions` knows where all its people's hands are (a photo with an unlabelled wrist may show a
    hand that no region covers, which a benchmark would count as a false detection)."""
    if record.keypoints.shape[1] != 17:
        return False
    return bool(all(v[w] > 0 for v in record.visible for w, _ in COCO_WRIST_ELBOW))


def _overlaps(box: np.ndarray, others: Sequence[np.ndarray]) -> bool:
    x, y, w, h = box
    return any(x < ox + ow and ox < x + w and y < oy + oh and oy < y + h for ox, oy, ow, oh in others)


def paste_affine(centre: tuple[float, float], size: float, angle: float, mirror: bool, crop: HandCrop
                 ) -> np.ndarray:
    """``(2, 3)`` crop -> canvas affine: the hand's keypoint-box centre to ``centre``, its longer side to ``size``
    pixels, turned by ``angle`` radians (image axes: clockwise on screen), mirrored left-right first when
    ``mirror``."""
    box = keypoint_box(crop.keypoints, crop.visible)
    s = size / float(max(box[2:].max(), 1.0))
    c, si = math.cos(angle), math.sin(angle)
    A = s * np.array([[c, -si], [si, c]]) @ np.diag([-1.0 if mirror else 1.0, 1.0])
    t = np.asarray(centre, np.float64) - A @ (box[:2] + box[2:] / 2).astype(np.float64)
    return np.concatenate([A, t[:, None]], axis=1)


def compose(background: np.ndarray, crops: Sequence[HandCrop], rng: np.random.Generator,
            ignore_boxes: np.ndarray | None = None, canvas_size: tuple[int, int] = CANVAS_SIZE,
            hand_sizes: tuple[float, float] = (48.0, 160.0), max_rotation: float = 45.0, mirror_prob: float = 0.5,
            margin: float = 0.15, tries: int = 200, background_name: str = "") -> Composite:
    """Paste ``crops`` into ``background`` (scaled to cover ``canvas_size``, centre cropped).

    Each hand gets a size (longer side of its keypoint box) drawn from ``hand_sizes`` (pixels, uniform), a turn
    from ``[-max_rotation, max_rotation]`` degrees and a mirror flip with ``mirror_prob`` (a left hand becomes a
    right one; keypoint order kept), and a place where its pasted cut-out lies inside the canvas and overlaps
    neither an earlier hand's cut-out nor an ignore region. A hand that finds no place in ``tries`` draws is
    shrunk by 20% and tried again.

    Args:
        background: ``(H, W, 3)`` uint8 RGB photo.
        crops: the hands, pasted in order (later ones on top; they never overlap).
        rng: all random draws.
        ignore_boxes: ``(M, 4)`` ``[x, y, w, h]`` in ``background`` pixels (:func:`background_regions`).
        margin: the cut-out around the keypoints (:func:`hand_mask`).

    Returns:
        The :class:`Composite`, hands in the order of ``crops``.

    Raises:
        HandposeError: ``background`` is not ``(H, W, 3)``, or a hand finds no place even at 8 pixels.
    """
    background = np.asarray(background)
    if background.ndim != 3 or background.shape[2] != 3 or 0 in background.shape:
        raise HandposeError(f"{background_name or 'background'}: expected (H, W, 3) RGB, got {background.shape}")
    cw, ch = canvas_size
    M_bg = fill_affine(background.shape[1], background.shape[0], canvas_size)
    canvas = warp_to_input(background, M_bg, canvas_size).astype(np.float32)
    ignore = map_boxes(M_bg, ignore_boxes if ignore_boxes is not None else np.zeros((0, 4)))
    taken: list[np.ndarray] = []
    kps, vis, boxes = [], [], []
    for crop in crops:
        alpha_src = hand_mask(crop.image.shape[:2], crop.keypoints, crop.visible, margin)
        ys, xs = np.nonzero(alpha_src)
        cut = np.array([[xs.min() - 0.5, ys.min() - 0.5], [xs.max() + 0.5, ys.min() - 0.5],
                        [xs.max() + 0.5, ys.max() + 0.5], [xs.min() - 0.5, ys.max() + 0.5]], np.float32)
        size = float(rng.uniform(*hand_sizes))
        placed = None
        while placed is None:
            for _ in range(tries):
                angle = math.radians(float(rng.uniform(-max_rotation, max_rotation)))
                mirror = bool(rng.random() < mirror_prob)
                M = paste_affine((0.0, 0.0), size, angle, mirror, crop)
                corners = apply_affine(M, cut)
                lo, hi = corners.min(axis=0), corners.max(axis=0)
                if hi[0] - lo[0] > cw - 2 or hi[1] - lo[1] > ch - 2:
                    break
                shift = np.array([rng.uniform(-lo[0], cw - 1 - hi[0]), rng.uniform(-lo[1], ch - 1 - hi[1])])
                footprint = np.array([*(lo + shift), *(hi - lo)], np.float32)
                if not _overlaps(footprint, taken) and not _overlaps(footprint, ignore):
                    M[:, 2] += shift
                    placed = M, footprint
                    break
            if placed is None:
                size *= 0.8
                if size < 8:
                    raise HandposeError(f"{crop.name}: no place for a hand in {background_name or 'the background'}"
                                        f" ({len(taken)} hands placed, {len(ignore)} ignore regions)")
        M, footprint = placed
        taken.append(footprint)
        rgba = np.dstack([crop.image, alpha_src])
        warped = warp_to_input(rgba, M, canvas_size).astype(np.float32)
        a = warped[..., 3:] / 255.0
        canvas = canvas * (1.0 - a) + warped[..., :3] * a
        kp = apply_affine(M, crop.keypoints)
        kps.append(kp)
        vis.append(crop.visible)
        boxes.append(keypoint_box(kp, crop.visible))
    k = crops[0].keypoints.shape[0] if crops else 0
    return Composite(np.clip(np.round(canvas), 0, 255).astype(np.uint8),
                     np.asarray(kps, np.float32).reshape(-1, k, 2), np.asarray(vis, np.uint8).reshape(-1, k),
                     np.asarray(boxes, np.float32).reshape(-1, 4), ignore, [c.name for c in crops], background_name)


def to_coco(composites: Sequence[Composite], file_names: Sequence[str], skeleton: Skeleton) -> dict:
    """COCO keypoints dict of composites (category 1 ``hand``): one annotation per pasted hand (``bbox`` and
    ``area`` from its labelled keypoints) and one crowd annotation without keypoints per ignore region, which
    ``COCOeval`` and :func:`handpose.coco_eval.coco_keypoint_ap` ignore.

    Args:
        file_names: the image file of each composite (as it will be written, relative to its images folder).
    """
    images, anns = [], []
    k = skeleton.num_keypoints
    for i, (c, name) in enumerate(zip(composites, file_names, strict=True)):
        h, w = c.image.shape[:2]
        images.append({"id": i + 1, "file_name": name, "width": w, "height": h})
        for kp, v, box in zip(c.keypoints, c.visible, c.boxes, strict=True):
            trip = np.concatenate([kp, v[:, None].astype(np.float32)], axis=1)
            trip[v == 0] = 0
            anns.append({"image_id": i + 1, "category_id": 1, "keypoints": trip.reshape(-1).tolist(),
                         "num_keypoints": int((v > 0).sum()), "bbox": box.tolist(),
                         "area": float(box[2] * box[3]), "iscrowd": 0})
        for box in c.ignore_boxes:
            anns.append({"image_id": i + 1, "category_id": 1, "keypoints": [0.0] * (3 * k), "num_keypoints": 0,
                         "bbox": box.tolist(), "area": float(box[2] * box[3]), "iscrowd": 1})
    for j, a in enumerate(anns):
        a["id"] = j + 1
    category = {"id": 1, "name": "hand", "supercategory": "person", "keypoints": list(skeleton.keypoints),
                "skeleton": [[a + 1, b + 1] for a, b in skeleton.limbs]}
    return {"images": images, "annotations": anns, "categories": [category]}


def write_composites(composites: Sequence[Composite], folder: str | Path, skeleton: Skeleton,
                     prefix: str = "composite") -> Path:
    """Write composites as lossless PNG files ``{prefix}_{i:04d}.png`` and their COCO labels
    ``{prefix}.json`` (:func:`to_coco`) into ``folder``. Returns the json path.

    Raises:
        HandposeError: a file cannot be written.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i, c in enumerate(composites):
        name = f"{prefix}_{i:04d}.png"
        if not cv2.imwrite(str(folder / name), cv2.cvtColor(c.image, cv2.COLOR_RGB2BGR)):
            raise HandposeError(f"{folder / name}: could not write the composite image")
        names.append(name)
    path = folder / f"{prefix}.json"
    path.write_text(json.dumps(to_coco(composites, names, skeleton)))
    return path


class CompositeSource:
    """Draws training composites: a random background photo with a random number of random labelled hands pasted
    in (:func:`compose`), the hands of one composite of similar size (as in a photo).

    The hand size of a composite is drawn log-uniformly from ``hand_sizes`` (so small hands, the hard case in whole
    photos, are as common per octave as large ones), each of its hands within 0.8-1.25 x of it. Hand photos are read
    when drawn (nothing is held in memory but the records).

    Args:
        hands: labelled hand records, one hand each (instance 0 is pasted), e.g. a FreiHAND-layout train split or
            teacher-labelled crops.
        backgrounds: COCO person photos (:func:`handpose.data.coco.load_coco` with ``per_instance=False``); their
            people's hands become ignore regions (:func:`background_regions`).
        hand_weights: per-record probabilities of drawing each hand (``(len(hands),)``, summing to 1), e.g.
            :func:`handpose.data.sets.sampling_weights` of several sets; default uniform.
        count: ``(min, max)`` hands per composite, inclusive.
        hand_sizes: ``(min, max)`` longer side of a hand's keypoint box, pixels of the canvas.
        max_rotation: turn of each hand, degrees either way. mirror_prob: probability of a mirrored hand.

    Raises:
        HandposeError: no hands or no backgrounds, a count or size range that is empty or below 1, or weights of
            another length than ``hands``.
    """

    def __init__(self, hands: Sequence[Record], backgrounds: Sequence[Record], hand_weights: np.ndarray | None = None,
                 count: tuple[int, int] = (1, 8), hand_sizes: tuple[float, float] = (12.0, 200.0),
                 max_rotation: float = 45.0, mirror_prob: float = 0.5):
        if not hands or not backgrounds:
            raise HandposeError(f"composites need hands and backgrounds (got {len(hands)} hands, "
                                f"{len(backgrounds)} backgrounds)")
        if not 1 <= count[0] <= count[1] or not 1 <= hand_sizes[0] <= hand_sizes[1]:
            raise HandposeError(f"composites: count {tuple(count)} and hand_sizes {tuple(hand_sizes)} must be "
                                "(min, max) ranges >= 1")
        if hand_weights is not None and len(hand_weights) != len(hands):
            raise HandposeError(f"composites: {len(hand_weights)} hand weights for {len(hands)} hands")
        self.hands, self.backgrounds = list(hands), list(backgrounds)
        self.regions = [background_regions(b) for b in self.backgrounds]
        self.hand_weights = hand_weights
        self.count, self.hand_sizes = (int(count[0]), int(count[1])), (float(hand_sizes[0]), float(hand_sizes[1]))
        self.max_rotation, self.mirror_prob = max_rotation, mirror_prob

    def draw(self, rng: np.random.Generator, canvas_size: tuple[int, int]) -> Composite:
        """One composite of ``canvas_size`` ``(width, height)`` pixels. When the hands find no place (many ignore
        regions), another background is drawn with half as many hands.

        Raises:
            HandposeError: an unreadable image (named), or no place even for one hand on 10 backgrounds.
        """
        n = int(rng.integers(self.count[0], self.count[1] + 1))
        size = float(np.exp(rng.uniform(np.log(self.hand_sizes[0]), np.log(self.hand_sizes[1]))))
        for _ in range(10):
            b = int(rng.integers(len(self.backgrounds)))
            pick = rng.choice(len(self.hands), size=n, replace=len(self.hands) < n, p=self.hand_weights)
            crops = [HandCrop.from_record(self.hands[i]) for i in pick]
            try:
                return compose(read_image(self.backgrounds[b].image_path), crops, rng, self.regions[b], canvas_size,
                               (0.8 * size, 1.25 * size), self.max_rotation, self.mirror_prob,
                               background_name=self.backgrounds[b].record_id)
            except HandposeError as e:
                if "no place" not in str(e):
                    raise
                n = max(1, n // 2)
        raise HandposeError(f"composites: no place for {n} hand(s) of {size:.0f} px on 10 backgrounds of "
                            f"{canvas_size}")
