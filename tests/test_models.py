import pytest
import torch

from handpose import HandposeError
from handpose.models import MODELS, create_model
from handpose.models.zoo import output_kind


@pytest.mark.parametrize("name", sorted(MODELS))
def test_shape_range_and_backward(name):
    torch.manual_seed(0)
    original = name in ("mediapipe_hand_full", "mediapipe_hand_lite")  # MediaPipe's own heads: its 21 keypoints
    k = 21 if original else 5
    model = create_model(name, k, input_size=(96, 64), num_limbs=4)
    x = torch.randn(2, 3, 64, 96)
    y = model(x)
    if output_kind(model) == "paf":
        assert len(y) == 2  # initial + 1 refinement stage
        for hm, paf in y:
            assert hm.shape == (2, 6, 8, 12) and paf.shape == (2, 8, 8, 12)
        y = torch.cat([y[-1][0], y[-1][1]], dim=1)
    elif output_kind(model) == "regression":
        assert y.shape == (2, k, 2) and (y.abs().max() <= 1 or original)
    else:
        s = model.stride
        assert y.shape == (2, 5, 64 // s, 96 // s) and y.min() >= 0 and y.max() <= 1
    assert torch.isfinite(y).all()
    y.mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_resunet_strides():
    for s in (2, 4, 8):
        assert create_model("resunet", 3, stride=s)(torch.zeros(1, 3, 64, 64)).shape[-1] == 64 // s


def test_unknown_model_lists_close_names():
    with pytest.raises(HandposeError, match="resunet"):
        create_model("resunett", 21)
