import numpy as np
import pytest

from handpose import metrics


def _setup():
    gt = np.zeros((2, 3, 2))
    pred = gt.copy()
    pred[0, :, 0] = [1.0, 3.0, 0.0]   # errors 1, 3, 0
    pred[1, :, 1] = [4.0, 0.0, 10.0]  # errors 4, 0, 10 (last unlabelled)
    mask = np.array([[True, True, True], [True, True, False]])
    return pred, gt, mask


def test_epe_and_summary():
    pred, gt, mask = _setup()
    assert metrics.epe(pred, gt, mask) == pytest.approx((1 + 3 + 0 + 4 + 0) / 5)
    s = metrics.error_summary(metrics.keypoint_errors(pred, gt, mask))
    assert s["median"] == pytest.approx(1.0) and s["max"] == 4.0


def test_pck_per_keypoint_then_mean():
    pred, gt, mask = _setup()
    # norm 10, thr 0.2 -> correct if d < 2: kp0: [1 ok, 4 no] = .5; kp1: [3 no, 0 ok] = .5; kp2: [0 ok] = 1
    acc = metrics.pck_per_keypoint(pred, gt, mask, 0.2, 10.0)
    assert acc.tolist() == [0.5, 0.5, 1.0]
    assert metrics.pck(pred, gt, mask, 0.2, 10.0) == pytest.approx(2.0 / 3.0)
    # strict inequality: d == thr * norm is not correct
    assert metrics.pck_per_keypoint(pred, gt, mask, 0.1, 10.0)[0] == 0.0


def test_auc_hand_computed():
    pred, gt, mask = _setup()
    # norm 5, 2 thresholds: 0 (nothing < 0 -> 0) and 0.5 (d < 2.5): kp0 .5, kp1 .5, kp2 1 -> 2/3
    assert metrics.auc(pred, gt, mask, norm_factor=5.0, num_thrs=2) == pytest.approx((0 + 2 / 3) / 2)


def test_within_share_counts_coordinates():
    gt = np.zeros((1, 2, 2))
    pred = np.array([[[0.05, 0.2], [0.005, 0.0]]])
    mask = np.ones((1, 2), bool)
    assert metrics.within_share(pred, gt, mask, 0.1) == pytest.approx(3 / 4)
    assert metrics.within_share(pred, gt, mask, 0.01) == pytest.approx(2 / 4)


def test_unit_coords_edges():
    assert metrics.to_unit_coords(np.array([-0.5, 127.5]), (128, 128))[0] == pytest.approx(-1.0)
    assert metrics.to_unit_coords(np.array([63.5, 63.5]), (128, 128)).tolist() == pytest.approx([0.0, 0.0])


def test_group_errors_and_box_size():
    errors = np.array([[1.0, 2.0, np.nan], [3.0, 4.0, 6.0]])
    assert metrics.group_errors(errors, ("a", "b", "b")) == {"a": 2.0, "b": 4.0}
    gt = np.array([[[0, 0], [4, 1], [9, 9]]], float)
    assert metrics.keypoint_box_size(gt, np.array([[True, True, False]]))[0] == 4.0
