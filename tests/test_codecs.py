import numpy as np
import pytest
import torch

from handpose.codecs.heatmap import HeatmapCodec


@pytest.mark.parametrize("stride, sigma", [(1, 2.5), (4, 1.5)])
def test_encode_decode_round_trip(stride, sigma):
    codec = HeatmapCodec((128, 128), stride=stride, sigma=sigma)
    rng = np.random.default_rng(0)
    kp = rng.uniform(10, 118, size=(21, 2)).astype(np.float32)
    hm, w = codec.encode(kp, np.full(21, 2))
    assert hm.shape == (21, 128 // stride, 128 // stride) and w.tolist() == [1.0] * 21
    assert hm.max() <= 1.0 and hm.max() > 0.6
    x = torch.from_numpy(hm)[None]
    sub, scores = codec.decode(x, "subpixel")
    # the log-parabola fit is exact for a Gaussian peak: within 0.01 heatmap cells
    assert np.abs(sub[0].numpy() - kp).max() < 0.01 * stride
    arg, _ = codec.decode(x, "argmax")
    assert np.abs(arg[0].numpy() - kp).max() <= 0.5 * stride + 1e-4
    avg, _ = codec.decode(x, "average")
    # the global weighted average is unbiased only where the Gaussian is not cut by the border (3 sigma inside)
    hm_xy = codec.to_heatmap_coords(kp)
    inner = ((hm_xy > 3 * sigma) & (hm_xy < 128 // stride - 1 - 3 * sigma)).all(axis=1)
    assert inner.sum() >= 5
    assert np.abs(avg[0].numpy()[inner] - kp[inner]).max() < 0.05 * stride
    outer = ~((hm_xy > 1) & (hm_xy < 128 // stride - 2)).all(axis=1)
    if outer.any():  # near the border it is pulled inwards
        assert np.abs(avg[0].numpy()[outer] - kp[outer]).max() > 0.05 * stride
    assert torch.all(scores > 0.6)


def test_unlabelled_keypoint_has_zero_map_and_weight():
    codec = HeatmapCodec((64, 64), stride=2, sigma=1.0)
    hm, w = codec.encode(np.array([[10.0, 10.0], [30.0, 20.0]]), np.array([2, 0]))
    assert w.tolist() == [1.0, 0.0]
    assert hm[1].max() == 0.0 and hm[0].max() > 0.5


def test_coordinate_convention():
    codec = HeatmapCodec((16, 16), stride=4, sigma=1.0)
    # heatmap cell 0 is centred on input pixel 1.5 (pixels 0..3)
    assert codec.to_input_coords(np.array([0.0])) == pytest.approx(1.5)
    assert codec.to_heatmap_coords(np.array([1.5])) == pytest.approx(0.0)


def test_decode_rejects_bad_input():
    codec = HeatmapCodec((16, 16))
    with pytest.raises(ValueError):
        codec.decode(torch.zeros(1, 16, 16))
    with pytest.raises(ValueError, match="method"):
        codec.decode(torch.zeros(1, 1, 16, 16), "median")


def test_regression_round_trip_and_range():
    from handpose.codecs import RegressionCodec

    codec = RegressionCodec((384, 288))
    kp = np.array([[-0.5, -0.5], [383.5, 287.5], [191.5, 143.5], [10.0, 200.0]], np.float32)
    target, w = codec.encode(kp, np.array([2, 2, 2, 0]))
    np.testing.assert_allclose(target[:3], [[-1, -1], [1, 1], [0, 0]], atol=1e-6)
    assert w.tolist() == [1, 1, 1, 0] and target[3].tolist() == [0, 0]
    xy, scores = codec.decode(torch.from_numpy(target[None, :3]))
    np.testing.assert_allclose(xy[0].numpy(), kp[:3], atol=1e-4)
    assert scores.shape == (1, 3) and torch.all(scores == 1)
    with pytest.raises(ValueError):
        codec.decode(torch.zeros(1, 6))
