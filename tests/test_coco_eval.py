"""COCO keypoint AP through pycocotools on the real hand annotations."""

import json

import numpy as np
import pytest

from handpose.coco_eval import coco_keypoint_ap
from handpose.data.coco import load_coco, skeleton_from_coco
from handpose.evaluate import score_bottom_up
from handpose.result import Result

pytest.importorskip("pycocotools")


def _detections(gt: dict, shift: float = 0.0) -> list[dict]:
    dets = []
    for a in gt["annotations"]:
        kp = np.asarray(a["keypoints"], float).reshape(-1, 3)
        kp[:, 0] += shift
        kp[:, 2] = 1.0
        dets.append({"image_id": a["image_id"], "category_id": a["category_id"],
                     "keypoints": kp.reshape(-1).tolist(), "score": 1.0})
    return dets


def test_perfect_prediction_scores_ap_one(hands_coco):
    gt = json.loads(hands_coco[0].read_text())
    skeleton = skeleton_from_coco(gt)
    stats = coco_keypoint_ap(gt, _detections(gt), skeleton)
    assert stats["AP"] == pytest.approx(1.0) and stats["AR"] == pytest.approx(1.0)


def test_shifted_prediction_scores_lower(hands_coco):
    gt = json.loads(hands_coco[0].read_text())
    skeleton = skeleton_from_coco(gt)
    ap = [coco_keypoint_ap(gt, _detections(gt, s), skeleton)["AP"] for s in (0.0, 2.0, 8.0)]
    assert ap[0] > ap[1] > ap[2]
    # dropping half the detections halves recall
    half = _detections(gt)[::2]
    assert coco_keypoint_ap(gt, half, skeleton)["AR"] == pytest.approx(len(half) / len(gt["annotations"]), abs=0.02)


def _results(records, skeleton, shift=(0.0, 0.0), drop_first_of=None):
    """Predictions made from the labels: instances in reverse order (matching must not rely on order),
    unlabelled keypoints NaN (not found), every keypoint moved by ``shift``."""
    out = []
    for i, r in enumerate(records):
        kp = np.where((r.visible > 0)[..., None], r.keypoints + np.float32(shift), np.nan)[::-1].astype(np.float32)
        if i == drop_first_of:
            kp = kp[1:]
        sc = np.where(np.isfinite(kp).all(-1), 0.9, 0.0).astype(np.float32)
        out.append(Result(str(r.image_path), kp, sc, np.zeros((len(kp), 4), np.float32), (640, 480), skeleton))
    return out


def test_score_bottom_up_known_answers(hands_coco):
    ann, images = hands_coco
    gt = json.loads(ann.read_text())
    records, skeleton = load_coco(ann, images, per_instance=False)
    n = len(gt["annotations"])
    perfect = score_bottom_up(gt, images, records, _results(records, skeleton), skeleton)
    assert perfect["AP"] == pytest.approx(1.0) and perfect["n_instances"] == n == perfect["matched"]
    assert perfect["error_px"]["mean"] == pytest.approx(0.0, abs=1e-4)
    shifted = score_bottom_up(gt, images, records, _results(records, skeleton, shift=(3.0, 4.0)), skeleton)
    assert shifted["error_px"]["mean"] == pytest.approx(5.0, abs=1e-3) and shifted["matched"] == n
    assert shifted["AP"] < perfect["AP"]
    two = next(i for i, r in enumerate(records) if len(r.keypoints) >= 2)
    missing = score_bottom_up(gt, images, records, _results(records, skeleton, drop_first_of=two), skeleton)
    assert missing["matched"] == n - 1 and missing["error_px"]["mean"] == pytest.approx(0.0, abs=1e-4)
    assert missing["AR"] == pytest.approx((n - 1) / n, abs=0.02)
