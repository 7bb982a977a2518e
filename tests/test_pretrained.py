"""Pretrained weights: loading what fits by prefix alignment, reading weight files, config wiring."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from handpose.config import load_config
from handpose.errors import HandposeError
from handpose.models import create_model
from handpose.models.backbones import MobileNetV2
from handpose.models.pretrained import (
    NORMALIZATIONS,
    SOURCES,
    load_pretrained_into,
    load_weights_strict,
    read_weights,
    shipped_weights,
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
    assert "left as built: 17 (head.deconv, head.final)" in report.summary()


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


SHARED_WEIGHTS = Path(__file__).resolve().parents[2] / "shared" / "weights"
PHOTO = Path(__file__).resolve().parents[2] / "shared" / "data" / "hgcnn-freihand" / "training" / "rgb" / "00000010.jpg"


# Relative L2 difference of the outputs on a real photo between the shipped float16 weights and the original file
# imported in float32, measured here: MobileNetV2 0.016 (its int8 weights times a scale do not fit float16's 11-bit
# mantissa exactly: 2.4e-4 per tensor, grown through 17 blocks; the int8 runtime itself is at cosine 0.86 from
# float), MobileNetV3-Small 0.0043, MediaPipe landmark 1.3e-5 (float16 in the file already: only the BatchNorm
# folding rounds), palm detector 0, Lightweight OpenPose 3.2e-4 (heatmaps).
@pytest.mark.parametrize("name, tolerance", [("mobilenet_v2_imagenet", 0.03), ("mobilenet_v3_small_imagenet", 0.01),
                                             ("mediapipe_hand_full", 1e-4), ("mediapipe_hand_lite", 1e-4),
                                             ("palm_detection_full", 1e-6), ("palm_detection_lite", 1e-6),
                                             ("lightweight_openpose_coco", 0.01)])
def test_shipped_weights_equal_the_imported_original(name, tolerance):
    spec = SOURCES[name]
    if not (SHARED_WEIGHTS / spec.file).is_file() or not PHOTO.is_file():
        pytest.skip("../shared/weights or the photo is not present")
    assert name in shipped_weights()
    imported = spec.convert(SHARED_WEIGHTS / spec.file)
    shipped = spec.build()
    load_weights_strict(shipped, name)
    shipped.eval()
    image = np.asarray(Image.open(PHOTO).convert("RGB").resize((224, 224)), np.float32) / 255
    x = torch.from_numpy(image).permute(2, 0, 1)[None]
    with torch.no_grad():
        a, b = imported(x), shipped(x)
    while isinstance(a, (list, tuple)):  # feature lists, detector (boxes, scores): the last / first tensor
        a, b = (a[-1], b[-1]) if isinstance(a, list) else (a[0], b[0])
    assert float((a - b).norm() / a.norm()) <= tolerance


def test_import_weights_cli_converts_and_training_loads_it(tmp_path):
    from typer.testing import CliRunner

    from handpose.cli import app

    src = SHARED_WEIGHTS / "hand_landmark_lite.tflite"
    if not src.is_file():
        pytest.skip("../shared/weights is not present")
    out = tmp_path / "lite.pt"
    result = CliRunner().invoke(app, ["import-weights", str(src), str(out)])
    assert result.exit_code == 0, result.output
    assert "mediapipe_hand_lite" in result.output
    assert source_of(out) is SOURCES["mediapipe_hand_lite"]  # the converted file names its source
    # its trunk under a heatmap head for 12 keypoints: the trunk is loaded, the head stays random
    net = create_model("mediapipe_hand_lite_heatmap", 12, (128, 128))
    report = load_pretrained_into(net, out)
    trunk = [k for k in net.state_dict() if k.startswith("backbone.") and not k.endswith("num_batches_tracked")]
    assert report.loaded == sorted(trunk)
    assert all(k.startswith("head.") for k in report.random) and report.random
    assert sorted(report.unused) == sorted(f"{h}_head.{p}" for h in ("keypoint", "presence", "handedness", "world")
                                           for p in ("weight", "bias"))  # MediaPipe's own heads
    bad = tmp_path / "cut.tflite"
    bad.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    result = CliRunner().invoke(app, ["import-weights", str(bad), str(tmp_path / "x.pt"), "--source",
                                      "mediapipe_hand_lite"])
    assert result.exit_code == 2 and "cut.tflite" in result.output and not (tmp_path / "x.pt").exists()


def test_freeze_bn_keeps_running_statistics_in_training():
    from handpose.codecs import codec_to_dict, make_codec
    from handpose.skeleton import HAND21
    from handpose.train import KeypointModule

    codec = make_codec("regression", (64, 64))
    meta = {"arch": "mobilenet_v2_regression", "arch_kwargs": {}, "skeleton": HAND21.to_dict(),
            "input_size": [64, 64], "codec": codec_to_dict(codec)}
    for freeze in (True, False):
        module = KeypointModule(meta, load_config(None, ["input_size=64", "loss=l1", f"freeze_bn={freeze}"]).to_dict())
        bn = module.network.backbone.features[0][1]
        assert bn.training is not freeze  # as built: Lightning keeps the modes it finds
        module.eval()
        module.train()
        before = bn.running_mean.clone()
        module(torch.rand(2, 3, 64, 64))
        assert bn.training is not freeze and module.network.head.fc.training
        assert torch.equal(bn.running_mean, before) is freeze


def test_a_model_file_with_a_head_of_another_size_is_a_named_error(tmp_path):
    from handpose import load_model

    bundle = load_model()
    d = bundle.to_dict()
    key = next(k for k, v in d["state_dict"].items() if v.ndim == 4)
    d["state_dict"][key] = torch.zeros(1, 1, 1, 1)
    path = tmp_path / "odd.pt"
    torch.save(d, path)
    with pytest.raises(HandposeError, match=rf"odd.pt: weights do not fit .*shape differs \['{key}: file \(1, 1"):
        load_model(path)


@pytest.mark.parametrize("name", ["palm_detection_lite", "mediapipe_hand_lite"])
def test_imported_networks_export_to_onnx(name, tmp_path):
    from typer.testing import CliRunner

    from handpose.cli import app
    from handpose.export import OnnxNetwork

    out = tmp_path / f"{name}.onnx"
    result = CliRunner().invoke(app, ["export", str(out), "--model", name])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())  # Rich wraps long lines at the terminal width
    diff = float(text.split("on a test batch:")[1].split()[0])
    assert diff < 1e-3  # measured: palm 1.2e-4 (regressors in 192-px units), landmark 6e-7
    meta = OnnxNetwork(out).metadata()
    assert meta.get("kind") == "palm_detector" if name.startswith("palm") else meta["arch"] == name


def test_a_renamed_original_is_recognised_by_importing_it(tmp_path):
    from handpose.models.pretrained import import_original

    src = SHARED_WEIGHTS / "hand_landmark_lite.tflite"
    if not src.is_file():
        pytest.skip("../shared/weights is not present")
    renamed = tmp_path / "my_hand_model.tflite"
    renamed.write_bytes(src.read_bytes())
    spec, module = import_original(renamed)  # V3-Small and the full landmark network are tried first and refused
    assert spec.name == "mediapipe_hand_lite" and not module.training
    other = tmp_path / "other.tflite"
    other.write_bytes((SHARED_WEIGHTS / "palm_detection_lite.tflite").read_bytes()[:5000] + b"\0" * 10)
    with pytest.raises(HandposeError, match="other.tflite: not one of the known pretrained networks"):
        import_original(other)
