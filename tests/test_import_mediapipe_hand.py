"""MediaPipe's hand landmark networks imported into PyTorch, checked against the TFLite runtime on real photos.

Measured here (12 photos: 8 hgcnn-freihand 256x256 resized to 224, 4 hagrid-teacher crops letterboxed to 224;
PyTorch float32 vs ``ai_edge_litert`` with XNNPACK, the float16 weights widened to float32 in both):

- keypoints: max abs difference 1.7e-4 px (full), 1.5e-4 px (lite); tolerance 2e-3 px;
- presence 6e-8, handedness 1.0e-6 / 6.6e-7, world keypoints 3.6e-7 / 3.2e-7 m; tolerance 1e-5 for all three;
- keypoints vs the hgcnn-freihand labels at 224x224 (MediaPipe's pixels - 0.5): mean 5.5 px (full), 5.7 px (lite)
  on these 8 photos (6.6 / 7.7 px on every 8th of the 483); bound 15 px;
- handedness (probability of a right hand): the hgcnn-freihand photos show a left hand (palm to the camera, thumb
  on the image's left): mean 0.077 (full) / 0.029 (lite); their mirror images
  (right hands): 0.987 / 0.934;
- presence: at least 0.98 on all 12 photos.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from handpose import HandposeError
from handpose.codecs import PixelCodec, RegressionCodec, codec_to_dict, make_codec
from handpose.data.freihand import load_freihand
from handpose.data.image import read_image
from handpose.data.transforms import apply_affine, region_affine, warp_to_input
from handpose.importers import read_graph
from handpose.models import create_model
from handpose.models.mediapipe_hand import (
    MediaPipeHandLandmark,
    MediaPipeHandRegression,
    MediaPipeHandTrunk,
    import_mediapipe_hand,
    mediapipe_hand_bundle,
)

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = REPO.parent / "shared" / "weights"
DATA = REPO.parent / "shared" / "data"
HGCNN_IDS = [0, 60, 120, 180, 240, 300, 360, 420]
VARIANTS = ("full", "lite")


def weights_file(variant: str) -> Path:
    path = WEIGHTS / f"hand_landmark_{variant}.tflite"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    return path


def letterbox(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """RGB uint8 photo -> (224, 224, 3) float32 in [0, 1] (the whole photo letterboxed, edge replicated) and M."""
    _, M = region_affine(None, image.shape[1], image.shape[0], (224, 224))
    return warp_to_input(image, M, (224, 224), "border").astype(np.float32) / 255.0, M


@pytest.fixture(scope="module")
def photos() -> dict:
    """``inputs`` (12, 224, 224, 3): 8 hgcnn-freihand photos then 4 hagrid-teacher crops; ``labels`` (8, 21, 2)
    hgcnn-freihand keypoints in input pixels."""
    fh = DATA / "hgcnn-freihand"
    hagrid = DATA / "hagrid-teacher"
    if not fh.is_dir() or not hagrid.is_dir():
        pytest.skip("../shared/data/hgcnn-freihand or hagrid-teacher not present")
    records = load_freihand(fh, "all")
    inputs, labels = [], []
    for i in HGCNN_IDS:
        x, M = letterbox(read_image(records[i].image_path))
        inputs.append(x)
        labels.append(apply_affine(M, records[i].keypoints[0]))
    images = json.loads((hagrid / "annotations" / "val.json").read_text())["images"]
    for im in [im for im in images if max(im["width"], im["height"]) >= 96][:4]:
        inputs.append(letterbox(read_image(hagrid / "images" / im["file_name"]))[0])
    return {"inputs": np.stack(inputs), "labels": np.stack(labels)}


def nchw(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


@pytest.fixture(scope="module")
def imported() -> dict:
    """variant -> MediaPipeHandLandmark with the file's weights, in eval mode."""
    out = {}
    for v in VARIANTS:
        model = MediaPipeHandLandmark(v).eval()
        import_mediapipe_hand(model, weights_file(v))
        out[v] = model
    return out


@pytest.fixture(scope="module")
def outputs(photos, imported) -> dict:
    """variant -> (PyTorch HandLandmarks, LiteRT outputs as numpy arrays) for the photos, and PyTorch's
    HandLandmarks for the mirrored hgcnn-freihand photos."""
    from ai_edge_litert.interpreter import Interpreter

    x = photos["inputs"]
    out = {}
    for v in VARIANTS:
        with torch.inference_mode():
            ours = imported[v](nchw(x))
            mirrored = imported[v](nchw(x[: len(HGCNN_IDS), :, ::-1]))
        it = Interpreter(model_path=str(weights_file(v)))
        it.allocate_tensors()
        index = {d["name"]: d["index"] for d in it.get_output_details()}
        ref = {k: [] for k in ("Identity", "Identity_1", "Identity_2", "Identity_3")}
        for img in x:
            it.set_tensor(it.get_input_details()[0]["index"], img[None])
            it.invoke()
            for k in ref:
                ref[k].append(it.get_tensor(index[k])[0])
        out[v] = (ours, {k: np.stack(a) for k, a in ref.items()}, mirrored)
    return out


@pytest.mark.parametrize("variant", VARIANTS)
def test_matches_litert_on_photos(outputs, variant):
    ours, ref, _ = outputs[variant]
    n = len(ref["Identity"])
    assert n >= 8
    assert np.abs(ours.keypoints.numpy() - ref["Identity"].reshape(n, 21, 3)).max() < 2e-3
    assert np.abs(ours.presence.numpy() - ref["Identity_1"][:, 0]).max() < 1e-5
    assert np.abs(ours.handedness.numpy() - ref["Identity_2"][:, 0]).max() < 1e-5
    assert np.abs(ours.world.numpy() - ref["Identity_3"].reshape(n, 21, 3)).max() < 1e-5
    assert ours.presence.min() > 0.5  # every photo holds a hand


@pytest.mark.parametrize("variant", VARIANTS)
def test_keypoints_near_people_labels(outputs, photos, variant):
    ours, _, _ = outputs[variant]
    xy, scores = PixelCodec((224, 224)).decode(ours)
    labels = photos["labels"]
    err = np.linalg.norm(xy[: len(labels)].numpy() - labels, axis=-1)
    assert err.mean() < 15.0
    assert np.allclose(scores.numpy(), ours.presence.numpy()[:, None])


@pytest.mark.parametrize("variant", VARIANTS)
def test_handedness_is_probability_of_a_right_hand(outputs, variant):
    ours, _, mirrored = outputs[variant]
    n = len(HGCNN_IDS)
    assert ours.handedness[:n].mean() < 0.2  # hgcnn-freihand: a left hand
    assert mirrored.handedness[:n].mean() > 0.8  # mirrored: a right hand


def test_truncated_file_names_it_and_loads_nothing(tmp_path):
    src = weights_file("lite").read_bytes()
    model = MediaPipeHandLandmark("lite")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for frac in (0.001, 0.3, 0.7, 0.999):
        bad = tmp_path / f"cut_{frac}.tflite"
        bad.write_bytes(src[: int(len(src) * frac)])
        with pytest.raises(HandposeError, match=bad.name):
            import_mediapipe_hand(model, bad)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("src, dst, layer", [("lite", "full", "#6 CONV_2D"), ("full", "lite", "#5 CONV_2D")])
def test_mismatched_file_names_first_layer_and_loads_nothing(src, dst, layer):
    model = MediaPipeHandLandmark(dst)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(HandposeError) as e:
        import_mediapipe_hand(model, weights_file(src))
    assert f"hand_landmark_{src}.tflite" in str(e.value) and layer in str(e.value)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_other_model_file_is_refused():
    path = WEIGHTS / "palm_detection_lite.tflite"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    with pytest.raises(HandposeError, match="palm_detection_lite.tflite"):
        import_mediapipe_hand(MediaPipeHandLandmark("lite"), path)


@pytest.mark.parametrize("variant, channels", [("full", [24, 40, 112, 1152]), ("lite", [16, 24, 64, 672])])
def test_trunk_alone_under_a_new_head(imported, variant, channels):
    class WithHead(nn.Module):  # as TopDownModel: a backbone and a new head
        def __init__(self):
            super().__init__()
            self.backbone = MediaPipeHandTrunk(variant)
            self.head = nn.Conv2d(channels[-1], 5, 1)

    model = WithHead().eval()
    head_before = model.head.weight.clone()
    import_mediapipe_hand(model, read_graph(weights_file(variant)), prefix="backbone.")
    assert torch.equal(model.head.weight, head_before)
    full = imported[variant].backbone.state_dict()
    assert all(torch.equal(v, full[k]) for k, v in model.backbone.state_dict().items())
    assert model.backbone.out_channels == channels
    with torch.inference_mode():
        feats = model.backbone(torch.zeros(1, 3, 224, 224))
    want = [(1, c, 224 // s, 224 // s) for c, s in zip(channels, (4, 8, 16, 32), strict=True)]
    assert [tuple(f.shape) for f in feats] == want


@pytest.mark.parametrize("variant", VARIANTS)
def test_zoo_model_trains_as_regression_and_decodes_like_the_landmarks(variant, photos):
    model = create_model(f"mediapipe_hand_{variant}", 21, (224, 224), pretrained=str(weights_file(variant))).eval()
    assert model.output_kind == "regression" and isinstance(model, MediaPipeHandRegression)
    x = nchw(photos["inputs"][:1])
    with torch.inference_mode():
        out, lm = model(x), model.landmarks(x)
    assert out.shape == (1, 21, 2)
    via_regression, _ = RegressionCodec((224, 224)).decode(out)
    via_pixels, _ = make_codec("pixels", (224, 224)).decode(lm)
    assert torch.allclose(via_regression, via_pixels, atol=1e-4)
    model.train()
    model(torch.rand(2, 3, 64, 64)).pow(2).mean().backward()  # any multiple of 32 runs (global pooling)
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    with pytest.raises(HandposeError, match="21"):
        create_model(f"mediapipe_hand_{variant}", 5, (224, 224))


def test_bundle_predicts_photos_and_round_trips(tmp_path, photos):
    from handpose.bundle import load_model
    from handpose.predict import Predictor

    bundle = mediapipe_hand_bundle(weights_file("lite"), "lite")
    path = tmp_path / "mediapipe_lite.pt"
    bundle.save(path)
    loaded = load_model(path)
    records = load_freihand(DATA / "hgcnn-freihand", "all")
    image = read_image(records[HGCNN_IDS[1]].image_path)  # 256x256: the Predictor letterboxes it to 224
    saved = bundle.network.state_dict()
    assert all(torch.equal(v, saved[k]) for k, v in loaded.network.state_dict().items())
    predictor = Predictor(loaded)
    result = predictor.run([predictor.prepare(image)])[0]
    err = np.linalg.norm(result.keypoints[0] - records[HGCNN_IDS[1]].keypoints[0], axis=-1).mean()
    assert err < 15.0 * 256 / 224  # original 256x256 pixels
    assert codec_to_dict(loaded.codec) == {"kind": "regression"} and loaded.mean == [0.0, 0.0, 0.0]


def test_pixel_codec_round_trip():
    codec = make_codec("pixels", (224, 224))
    kp = np.array([[0.0, 0.0], [223.0, 10.5], [5.0, 7.0]], np.float32)
    target, weights = codec.encode(kp, np.array([2, 1, 0]))
    assert np.allclose(target[:2], kp[:2] + 0.5) and np.all(target[2] == 0) and list(weights) == [1, 1, 0]
    xy, scores = codec.decode(torch.from_numpy(target)[None])
    assert torch.allclose(xy[0, :2], torch.from_numpy(kp[:2])) and torch.all(scores == 1)
    assert codec_to_dict(codec) == {"kind": "pixels"}


def test_keypoint_map_starts_another_set_at_mediapipes_output(photos, imported):
    from handpose.data.convert import HAND21_KEYPOINT_MAPS, hand21_to_hand12

    model12 = create_model("mediapipe_hand_full", 12, (224, 224), keypoint_map="hand12").eval()
    model21 = create_model("mediapipe_hand_full", 21, (224, 224)).eval()
    for m in (model12, model21):
        import_mediapipe_hand(m, weights_file("full"))
    assert torch.equal(model12.adapter.detach(), torch.from_numpy(HAND21_KEYPOINT_MAPS["hand12"]))
    assert model12.adapter.requires_grad  # learnable: fine-tuning moves it
    x = nchw(photos["inputs"][:4])
    with torch.no_grad():
        u12, u21 = model12(x).numpy(), model21(x).numpy()
    expected, _ = hand21_to_hand12(u21, np.full(u21.shape[:2], 2))
    # rows of the map sum to 1, so it commutes with the [-1, 1] scaling: float rounding only
    assert np.abs(u12 - expected).max() < 1e-5
    with pytest.raises(HandposeError, match="keypoint_map 'hand12' gives 12"):
        create_model("mediapipe_hand_full", 11, (224, 224), keypoint_map="hand12")
    with pytest.raises(HandposeError, match="unknown keypoint_map 'foot'"):
        create_model("mediapipe_hand_full", 12, (224, 224), keypoint_map="foot")
