"""Pretrained weights: loading what fits by prefix alignment, reading weight files, config wiring."""

import pytest
import torch

from handpose.config import load_config
from handpose.errors import HandposeError
from handpose.models import create_model
from handpose.models.backbones import MobileNetV2
from handpose.models.pretrained import (
    NORMALIZATIONS,
    SOURCES,
    load_pretrained_into,
    read_weights,
    source_of,
)
from handpose.train import input_normalization


def _random_state(module: torch.nn.Module, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {k: (torch.randn(v.shape, generator=g) if v.is_floating_point() else v)
            for k, v in module.state_dict().items()}


def test_backbone_lands_under_a_new_head():
    trunk = _random_state(MobileNetV2())
    net = create_model("mobilenet_v2_heatmap", 21, (128, 128))
    head_before = {k: v.clone() for k, v in net.state_dict().items() if k.startswith("head.")}
    report = load_pretrained_into(net, trunk, "trunk")
    own = net.state_dict()
    assert report.mapping == ("", "backbone.")
    assert all(torch.equal(own["backbone." + k], v) for k, v in trunk.items() if not k.endswith("batches_tracked"))
    assert all(torch.equal(own[k], v) for k, v in head_before.items())  # the head stays as it was
    assert report.random and all(k.startswith("head.") for k in report.random)
    assert not report.unused and not report.shape_mismatch
    assert "random: 17 (head.deconv, head.final)" in report.summary()


def test_a_head_for_other_keypoints_stays_random_and_is_reported():
    src = create_model("mobilenet_v2_heatmap", 21, (128, 128))
    dst = create_model("mobilenet_v2_heatmap", 12, (128, 128))
    before = dst.head.final.weight.clone()
    report = load_pretrained_into(dst, src.state_dict(), "21-keypoint model")
    assert sorted(report.shape_mismatch) == ["head.final.bias", "head.final.weight"]
    assert torch.equal(dst.head.final.weight, before)
    assert torch.equal(dst.backbone.features[5].conv[0][0].weight, src.backbone.features[5].conv[0][0].weight)


def test_unrelated_weights_raise_instead_of_loading_a_stray_layer():
    net = create_model("resnet18_heatmap", 21, (128, 128))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with pytest.raises(HandposeError, match="none of its 260 tensors fits TopDownModel"):
        load_pretrained_into(net, MobileNetV2().state_dict(), "mobilenet trunk")
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())


def test_read_weights_of_a_torchvision_style_file_and_bad_files(tmp_path):
    state = _random_state(MobileNetV2())
    path = tmp_path / "mnv2.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
    read, label = read_weights(path)
    assert label == str(path) and set(read) == set(state)
    truncated = tmp_path / "cut.pt"
    truncated.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(HandposeError, match="cut.pt: cannot be read as pretrained weights"):
        read_weights(truncated)
    with pytest.raises(HandposeError, match="no such file and not a shipped name"):
        read_weights(tmp_path / "missing.pt")


def test_normalisation_follows_the_pretrained_source_unless_set():
    cfg = load_config(None, ["pretrained=mediapipe_hand_full"])
    assert input_normalization(cfg) == NORMALIZATIONS["unit"]
    cfg = load_config(None, ["pretrained=../shared/weights/mobilenetv2-12-int8.onnx"])
    assert source_of(cfg.pretrained) is SOURCES["mobilenet_v2_imagenet"]
    assert input_normalization(cfg) == NORMALIZATIONS["imagenet"]
    assert input_normalization(load_config(None, ["pretrained=mobilenet_v2_imagenet", "normalize=dataset"])) is None
    assert input_normalization(load_config(None, [])) is None
    with pytest.raises(HandposeError, match="normalize must be"):
        load_config(None, ["normalize=bgr"])
