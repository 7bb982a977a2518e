import pytest
import torch

from handpose.losses import iou_loss, l1_loss, masked_l2, mse_loss


def test_iou_zero_for_perfect_prediction():
    y = torch.rand(2, 3, 8, 8)
    assert iou_loss(y, y).item() == pytest.approx(0.0, abs=1e-6)
    assert mse_loss(y, y).item() == 0.0


def test_iou_hand_computed():
    y = torch.zeros(1, 1, 2, 2)
    y[0, 0, 0, 0] = 1.0
    p = torch.zeros(1, 1, 2, 2)
    p[0, 0, 0, 0] = 0.5
    p[0, 0, 1, 1] = 0.5
    # inter = 0.5, sum y^2 = 1, sum p^2 = 0.5, union = 1 + 0.5 - 0.5 = 1 -> loss = 1 - 0.5
    assert iou_loss(p, y, eps=0.0).item() == pytest.approx(0.5)
    # mse = (0.25 + 0.25) / 4
    assert mse_loss(p, y).item() == pytest.approx(0.125)


def test_weights_ignore_unlabelled_channels():
    y = torch.rand(1, 2, 4, 4)
    p = y.clone()
    p[0, 1] = 0.0  # wrong channel
    w = torch.tensor([[1.0, 0.0]])
    assert iou_loss(p, y, w).item() == pytest.approx(0.0, abs=1e-6)
    assert iou_loss(p, y).item() > 0.4


def test_l1_on_coordinates_hand_computed():
    target = torch.zeros(1, 2, 2)
    pred = torch.tensor([[[0.5, -0.5], [1.0, 1.0]]])
    assert l1_loss(pred, target).item() == pytest.approx((0.5 + 1.0) / 2)
    assert l1_loss(pred, target, torch.tensor([[1.0, 0.0]])).item() == pytest.approx(0.5)
    assert mse_loss(pred, target).item() == pytest.approx((0.25 + 1.0) / 2)


def test_masked_l2_sums_stages_and_ignores_masked_cells():
    hm_t, paf_t = torch.zeros(2, 3, 4, 4), torch.zeros(2, 4, 4, 4)
    hm_p = hm_t.clone()
    hm_p[:, 0, 0, 0] = 1.0   # error 1 in one cell per image
    paf_p = paf_t.clone()
    paf_p[0, 1, 3, 3] = 2.0  # error 2 in a masked-out cell
    mask = torch.ones(2, 1, 4, 4)
    mask[0, 0, 3, 3] = 0
    one_stage = masked_l2([(hm_p, paf_p)], hm_t, paf_t, mask)
    assert one_stage.item() == pytest.approx((1 + 1) / 2 / 2)  # two images x 1^2, /2, /B
    assert masked_l2([(hm_p, paf_p)] * 3, hm_t, paf_t, mask).item() == pytest.approx(3 * one_stage.item())
    assert masked_l2([(hm_t, paf_t)], hm_t, paf_t, mask).item() == 0.0
