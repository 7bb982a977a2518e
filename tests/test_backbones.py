"""Backbones keep torchvision's parameter names and shapes.

``tests/data/torchvision_state_dict_keys.json`` lists ``[name, shape]`` of every state_dict entry of torchvision
0.29.2's ``resnet18/34/50`` and ``mobilenet_v2`` (classifiers included), read from the models built by torchvision
itself (its import patched to skip the CUDA operator registrations).
"""

import json
from pathlib import Path

import pytest
import torch

from handpose import HandposeError
from handpose.models.backbones import BACKBONES, create_backbone, load_pretrained

KEYS = json.loads((Path(__file__).parent / "data" / "torchvision_state_dict_keys.json").read_text())


def _torchvision_like_state_dict(name: str) -> dict:
    """A state_dict with torchvision's names and shapes and random values (as a user's checkpoint file)."""
    g = torch.Generator().manual_seed(0)
    return {k: (torch.randint(0, 10, shape, generator=g) if k.endswith("num_batches_tracked")
                else torch.randn(shape, generator=g)) for k, shape in KEYS[name]}


@pytest.mark.parametrize("name", sorted(BACKBONES))
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
                                            ("mobilenet_v2", [24, 32, 96, 1280])])
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
