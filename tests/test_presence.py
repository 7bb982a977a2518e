"""Refitting the presence head of MediaPipe's landmark network on real hand crops against random photo crops."""

import numpy as np
import pytest
import torch

from handpose import load_model
from handpose.config import load_config
from handpose.data import load_freihand
from handpose.data.dataset import load_input
from handpose.data.keying import photo_files
from handpose.errors import HandposeError
from handpose.presence import fit_logistic_head, negative_crops, roc_auc
from handpose.train import train
from tests.conftest import DATA

PHOTOS = DATA / "coco-person-mini" / "train2017"


def test_roc_auc_by_hand():
    assert roc_auc(np.array([0.9, 0.4]), np.array([0.5, 0.1])) == pytest.approx(0.75)  # 3 of 4 pairs ordered
    assert roc_auc(np.array([0.5]), np.array([0.5])) == pytest.approx(0.5)  # a tie counts half
    assert roc_auc(np.array([1.0, 0.8]), np.array([0.2])) == 1.0


@pytest.fixture(scope="module")
def crops(freihand_root):
    if not PHOTOS.is_dir():
        pytest.skip(f"{PHOTOS} not present")
    bundle = load_model("mediapipe_hand_lite")
    hands = np.stack([load_input(r, bundle.input_size, bundle.pad_mode)[0]
                      for r in load_freihand(freihand_root, "all")[::12]])
    others = negative_crops(photo_files(PHOTOS), len(hands), bundle.input_size, bundle.pad_mode)
    return hands, others


def test_refit_restores_a_scrambled_presence_head(crops):
    hands, others = crops
    bundle = load_model("mediapipe_hand_lite")
    with torch.no_grad():  # a head reading features it was not trained on, as after fine-tuning the trunk
        bundle.network.presence_head.weight.copy_(torch.randn_like(bundle.network.presence_head.weight,
                                                                   generator=torch.Generator().manual_seed(0)) * 0.05)
    trunk = {k: v.clone() for k, v in bundle.network.state_dict().items() if not k.startswith("presence_head")}
    report = fit_logistic_head(bundle, hands, others)
    assert report["fit"] + report["held_out"] == len(hands) + len(others) and report["held_out"] >= 20
    assert report["auc_before"] < 0.9 and report["auc_held_out"] > 0.97
    assert report["positives_median"] > 0.9 and report["negatives_median"] < 0.1
    after = bundle.network.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in trunk.items())  # only the head changed
    with torch.inference_mode():  # the module now gives the fitted presence
        x = torch.stack([torch.from_numpy(hands[0]).permute(2, 0, 1).float() / 255])
        assert bundle.network.landmarks(x).presence[0] > 0.5


def test_refit_of_the_handedness_head_tells_mirrored_hands_apart(crops):
    """hgcnn-freihand shows one person's left hand: the photos and their mirror images are two hands; a scrambled
    handedness head refitted on them separates held-out ones."""
    hands, _ = crops
    mirrored = np.ascontiguousarray(hands[:, :, ::-1])
    bundle = load_model("mediapipe_hand_lite")
    with torch.no_grad():
        bundle.network.handedness_head.weight.mul_(0.0)
    report = fit_logistic_head(bundle, mirrored, hands, head="handedness_head")  # right = the mirrored left hands
    assert report["auc_before"] == pytest.approx(0.5, abs=0.2) and report["auc_held_out"] > 0.95
    assert report["positives_median"] > 0.5 > report["negatives_median"]


def test_refit_refuses_networks_without_a_presence_head(crops):
    hands, others = crops
    with pytest.raises(HandposeError, match="no presence head"):
        fit_logistic_head(load_model("hand21_resunet"), hands, others)
    with pytest.raises(HandposeError, match="at least 4"):
        fit_logistic_head(load_model("mediapipe_hand_lite"), hands[:3], others)


def test_training_refits_presence_with_presence_negatives(small_freihand, tmp_path):
    if not PHOTOS.is_dir():
        pytest.skip(f"{PHOTOS} not present")
    cfg = load_config(None, [
        "dataset=freihand", f"data_root={small_freihand}", "model=mediapipe_hand_lite",
        "pretrained=mediapipe_hand_lite", "freeze_bn=true", "loss=l1", "input_size=96", "batch_size=4",
        "max_epochs=1", "limit_train_batches=1", "num_workers=0", f"out_dir={tmp_path}", "name=p", "lr=0.00001",
        "early_stop_patience=0", f"presence_negatives={PHOTOS}", "handedness_teacher=mediapipe_hand_full"])
    out = train(cfg, progress=False)
    card = load_model(out["model"]).card["presence"]
    assert card == out["presence"] and card["fit"] + card["held_out"] == 2 * 16  # 16 train crops, 16 others
    assert 0.0 <= card["auc_held_out"] <= 1.0 and card["positives_median"] > card["negatives_median"]
    hand = load_model(out["model"]).card["handedness"]  # hgcnn-freihand: one person's left hand, few sure rights
    assert hand == out["handedness"] and hand["teacher"] == "mediapipe_hand_full" and 0 < hand["sure"] <= 1
