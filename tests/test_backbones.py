"""Backbones keep torchvision's parameter names and shapes.

``tests/data/torchvision_state_dict_keys.json`` lists ``[name, shape]`` of every state_dict entry of torchvision
0.29.2's ``resnet18/34/50``, ``mobilenet_v2`` and ``mobilenet_v3_small`` (classifiers included), read from the models
built by torchvision itself (its import patched to skip the CUDA operator registrations).
"""

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from handpose import HandposeError
from handpose.models.backbones import BACKBONES, Conv2dSame, create_backbone, load_pretrained, make_divisible

KEYS = json.loads((Path(__file__).parent / "data" / "torchvision_state_dict_keys.json").read_text())


def _torchvision_like_state_dict(name: str) -> dict:
    """A state_dict with torchvision's names and shapes and random values (as a user's checkpoint file)."""
    g = torch.Generator().manual_seed(0)
    return {k: (torch.randint(0, 10, shape, generator=g) if k.endswith("num_batches_tracked")
                else torch.randn(shape, generator=g)) for k, shape in KEYS[name]}


@pytest.mark.parametrize("name", sorted(n for n in BACKBONES if not n.startswith("mediapipe")))  # torchvision's
def test_torchvision_checkpoint_loads_strict(name, tmp_path):
    sd = _torchvision_like_state_dict(name)
    path = tmp_path / f"{name}.pth"
    torch.save(sd, path)
    backbone = create_backbone(name)
    load_pretrained(backbone, path)
    own = backbone.state_dict()
    assert set(own) == {k for k in sd if not k.startswith(("fc.", "classifier."))}
    assert all(torch.equal(own[k], sd[k]) for k in own)


@pytest.mark.parametrize("name, channels", [("resnet18", [64, 128, 256, 512]), ("resnet50", [256, 512, 1024, 2048]),
                                            ("mobilenet_v2", [24, 32, 96, 1280]),
                                            ("mobilenet_v3_small", [16, 24, 48, 576])])
def test_feature_strides_and_channels(name, channels):
    feats = create_backbone(name).eval()(torch.zeros(1, 3, 64, 96))
    assert [f.shape[1] for f in feats] == channels
    assert [tuple(f.shape[2:]) for f in feats] == [(16, 24), (8, 12), (4, 6), (2, 3)]


def test_wrong_weights_name_the_layers(tmp_path):
    sd = _torchvision_like_state_dict("resnet18")
    path = tmp_path / "r18.pth"
    torch.save({"state_dict": sd}, path)
    with pytest.raises(HandposeError, match=r"r18.pth: weights do not fit.*missing \(96\): \['layer1.2.bn1.bias'"):
        load_pretrained(create_backbone("resnet34"), path)
    sd["conv1.weight"] = torch.zeros(64, 1, 7, 7)
    torch.save(sd, path)
    with pytest.raises(HandposeError, match=r"shape differs \(1\): \['conv1.weight: file \(64, 1, 7, 7\)"):
        load_pretrained(create_backbone("resnet18"), path)
    with pytest.raises(HandposeError, match="not found"):
        load_pretrained(create_backbone("resnet18"), tmp_path / "none.pth")


def test_unknown_backbone_lists_close_names():
    with pytest.raises(HandposeError, match="resnet18"):
        create_backbone("resnet19")


def test_timm_is_optional():
    try:
        import timm  # noqa: F401
    except Exception:
        with pytest.raises(HandposeError, match="timm"):
            create_backbone("timm:resnet18")
        return
    assert create_backbone("timm:resnet18").out_channels[-1] == 512


def test_backbone_options_pass_through():
    backbone = create_backbone("mobilenet_v3_small", same_padding=True)
    assert isinstance(backbone.features[0][0], Conv2dSame) and isinstance(backbone.features[4].block[1][0], Conv2dSame)
    assert not isinstance(create_backbone("mobilenet_v3_small").features[0][0], Conv2dSame)
    with pytest.raises(HandposeError, match=r"'resnet18' does not take the options \['same_padding'\]"):
        create_backbone("resnet18", same_padding=True)


@pytest.mark.parametrize("k, size, pads", [(3, (224, 225), (0, 1, 1, 1)), (5, (28, 28), (1, 2, 1, 2)),
                                           (3, (7, 8), (1, 1, 0, 1))])
def test_same_padding_is_tensorflows(k, size, pads):
    """TensorFlow SAME with stride 2: total ``max((ceil(n / 2) - 1) * 2 + k - n, 0)``, the odd pixel after.
    ``pads`` = (top, bottom, left, right) for an input of ``size`` = (H, W)."""
    torch.manual_seed(0)
    conv = Conv2dSame(2, 3, k, stride=2)
    x = torch.randn(1, 2, *size)
    expected = F.conv2d(F.pad(x, (pads[2], pads[3], pads[0], pads[1])), conv.weight, stride=2)
    assert torch.equal(conv(x), expected)
    assert conv(x).shape[-2:] == tuple(-(-n // 2) for n in size)


def test_make_divisible_gives_torchvisions_squeeze_channels():
    # MobileNetV3-Small's squeeze-excitation widths (expanded // 4 rounded to 8) in torchvision and TF-slim
    assert [make_divisible(c // 4, 8) for c in (16, 96, 240, 120, 144, 288, 576)] == [8, 24, 64, 32, 40, 72, 144]
