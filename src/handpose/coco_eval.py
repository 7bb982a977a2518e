"""COCO keypoint AP/AR through pycocotools, with the Skeleton's OKS sigmas."""

from __future__ import annotations

import contextlib
import copy
import io
import json
from pathlib import Path

import numpy as np

from handpose.errors import HandposeError
from handpose.skeleton import Skeleton

STAT_NAMES = ("AP", "AP50", "AP75", "AP_medium", "AP_large", "AR", "AR50", "AR75", "AR_medium", "AR_large")


def coco_keypoint_ap(ground_truth: dict | str | Path, detections: list[dict], skeleton: Skeleton,
                     category_id: int | None = None) -> dict[str, float]:
    """Object keypoint similarity AP/AR of detections against a COCO keypoints file (pycocotools ``COCOeval``).

    Args:
        ground_truth: a COCO dict or json path (``images``, ``annotations`` with ``keypoints``, ``area``, ``bbox``,
            ``iscrowd``; ``categories``).
        detections: COCO results: ``{"image_id", "category_id", "keypoints": [x, y, s] * K, "score"}``.
        skeleton: supplies the OKS sigmas (``kpt_oks_sigmas``): a built-in set's (COCO-WholeBody's for hands), or
            a COCO category's ``sigmas`` (:func:`handpose.data.coco.skeleton_from_coco`); 0.025 each otherwise.
        category_id: evaluate this category (default: the first with keypoints).

    Returns:
        ``{"AP", "AP50", "AP75", "AP_medium", "AP_large", "AR", ...}`` in ``[0, 1]``; -1 where COCOeval has nothing
        to average (e.g. no large objects).

    Raises:
        HandposeError: pycocotools missing, no detections (COCOeval cannot load an empty result list), or a
            Skeleton whose sigma count differs from the category's keypoint count.
    """
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError as e:
        raise HandposeError("COCO AP needs pycocotools: pip install 'handpose[coco]'") from e
    if isinstance(ground_truth, (str, Path)):
        ground_truth = json.loads(Path(ground_truth).read_text())
    gt_dict = copy.deepcopy(ground_truth)
    for i, ann in enumerate(gt_dict["annotations"]):
        ann.setdefault("id", i + 1)
        ann.setdefault("iscrowd", 0)
        if "area" not in ann:
            x, y, w, h = ann["bbox"]
            ann["area"] = float(w * h)
    if category_id is None:
        category_id = next(c["id"] for c in gt_dict["categories"] if c.get("keypoints"))
    k = len(next((c.get("keypoints") or [] for c in gt_dict["categories"] if c.get("id") == category_id), []))
    if k and k != len(skeleton.sigmas):
        raise HandposeError(f"COCO AP: category {category_id} has {k} keypoints but skeleton {skeleton.name!r} "
                            f"gives {len(skeleton.sigmas)} OKS sigmas")
    dets = [d for d in detections if d.get("category_id", category_id) == category_id]
    if not dets:
        raise HandposeError("COCO AP: no detections to evaluate")
    dets = [{**d, "category_id": category_id} for d in dets]
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt_dict
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(dets)
        ev = COCOeval(coco_gt, coco_dt, "keypoints")
        ev.params.kpt_oks_sigmas = np.asarray(skeleton.sigmas, dtype=np.float64)
        ev.params.catIds = [category_id]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {name: float(v) for name, v in zip(STAT_NAMES, ev.stats, strict=True)}
