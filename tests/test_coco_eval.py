"""COCO keypoint AP through pycocotools on the real hand annotations."""

import json

import numpy as np
import pytest

from handpose.coco_eval import coco_keypoint_ap
from handpose.data.coco import skeleton_from_coco

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
