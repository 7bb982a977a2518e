"""The top-down pipeline on whole photos: palm detection -> upright hand crops -> keypoints -> original pixels.

Measured here (shipped palm_detection_full + mediapipe_hand_full weights, PyTorch, one thread):

- the 29 coco-wholebody-hands photos (65 labelled hands, many small): 23 hands detected, 18 of them match a label
  (a detected hand matches a label when its mean keypoint distance over the labelled keypoints is below half the
  label box's long side; one to one, closest pairs first); mean error of the matched hands 7.94 px (median 6.0).
  Of the 5 others, 3 are false detections that the landmark network rejects (presence < 0.001), one is a real hand
  without a label, one a crop over two hands holding a bat. Bounds: at least 16 matched, mean error below 10 px;
- back-mapping: a hgcnn-freihand photo warped into a 900 x 700 canvas at 1.7x and 35 / -120 / 180 degrees, the crop
  region given exactly: keypoints within 0.36 / 0.40 / 0.47 px (max) of the upright crop's mapped through the known
  affine (interpolation only: one bilinear warp makes the canvas, another crops it); bound MAX_PX = 1 px. The whole
  pipeline on those canvases (its own palm detection and crop): 11.6-12.5 px from the labels (moved by the same
  affine, so 1.7x the photo's pixels); bound 16 px;
- handedness: the hgcnn-freihand hand (a left hand) gets p(right) < 0.5 in the canvas, its mirror image > 0.5;
- onnxruntime backend against PyTorch, on the 29 coco-wholebody-hands photos: the same 23 hands; on the same crops
  the keypoints agree within 6e-5 px (bound ONNX_SAME_CROP_PX = 1e-3), presence / handedness within 4e-4. The whole
  pipeline agrees within 0.067 px (000000199055.jpg; bound ONNX_PIPELINE_PX = 0.2): the palm detector's outputs
  differ by 1e-4 between runtimes, which moves a hand crop by about 2e-5 px, and the crop's warp
  (``cv2.warpAffine``, bilinear on a 1/32-pixel grid) turns that into a different crop. PyTorch alone moves as much:
  its keypoints on that photo shift 0.048 px when the crop moves 1e-4 px, 0.18 px at 1e-3 px.
"""

from __future__ import annotations

import json
import math
import shutil
from collections import defaultdict

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from handpose.data.freihand import load_freihand
from handpose.data.image import read_image
from handpose.data.transforms import apply_affine, box_to_input_affine
from handpose.detect import RotatedRect
from handpose.detect.topdown import OnnxPalmDetector, TopDownPipeline, rect_bounds, rect_to_input_affine
from handpose.errors import HandposeError
from handpose.export import OnnxNetwork
from tests.conftest import DATA

NO_HAND_PHOTO = DATA / "coco-person-mini" / "train2017" / "000000214704.jpg"  # a man in a kitchen, no hand in sight
FREIHAND_ID = 120


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def pipeline() -> TopDownPipeline:
    return TopDownPipeline("full", "mediapipe_hand_full")


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("onnx")


@pytest.fixture(scope="module")
def onnx_pipeline(onnx_dir) -> TopDownPipeline:
    pytest.importorskip("onnxruntime")
    return TopDownPipeline("full", "mediapipe_hand_full", backend="onnxruntime", onnx_dir=onnx_dir, threads=1)


def match_hands(result, annotations: list[dict]) -> list[float]:
    """Mean keypoint errors (px) of the detected hands matched to labels: a pair matches when the mean distance
    over the label's labelled keypoints is below half its box's long side; one to one, closest pairs first."""
    pairs = []
    for li, a in enumerate(annotations):
        kv = np.asarray(a["keypoints"], np.float32).reshape(-1, 3)
        vis = kv[:, 2] > 0
        if not vis.any():
            continue
        for hi, kp in enumerate(result.keypoints):
            err = float(np.linalg.norm(kp[vis] - kv[vis, :2], axis=1).mean())
            pairs.append((err, li, hi, 0.5 * max(a["bbox"][2:])))
    used_l, used_h, errors = set(), set(), []
    for err, li, hi, limit in sorted(pairs):
        if li not in used_l and hi not in used_h and err < limit:
            used_l.add(li)
            used_h.add(hi)
            errors.append(err)
    return errors


def test_coco_photos_hands_found_and_keypoint_error(pipeline, hands_coco):
    ann, images = hands_coco
    data = json.loads(ann.read_text())
    labels = defaultdict(list)
    for a in data["annotations"]:
        labels[a["image_id"]].append(a)
    errors, detected = [], 0
    for im in data["images"]:
        res = pipeline(read_image(images / im["file_name"], exif_transpose=False), im["file_name"])
        n = len(res.keypoints)
        detected += n
        assert res.keypoints.shape == (n, 21, 2) and res.scores.shape == (n, 21) and res.boxes.shape == (n, 4)
        assert res.regions.shape == (n, 5) and res.detection_scores.shape == (n,)
        assert res.presence.shape == (n,) and res.handedness.shape == (n,)
        assert (res.detection_scores >= 0.5).all()  # MediaPipe's min_score_thresh
        assert np.allclose(res.instance_scores, res.detection_scores * res.presence)
        # per-keypoint scores of MediaPipe's landmark network: its presence probability (PixelCodec)
        assert np.allclose(res.scores, res.presence[:, None])
        errors += match_hands(res, labels[im["id"]])
    print(f"coco-wholebody-hands: {detected} detected, {len(errors)} of 65 matched, "
          f"mean error {np.mean(errors):.2f} px")
    assert len(errors) >= 16
    assert np.mean(errors) < 10.0


def test_rect_affine_is_the_box_letterbox_without_rotation():
    rect = RotatedRect((120.0, 80.0), 64.0, 48.0, 0.0)
    box = rect_bounds(rect)
    assert np.allclose(box, [88, 56, 64, 48])
    assert np.allclose(rect_to_input_affine(rect, (192, 256)), box_to_input_affine(box, (192, 256)))
    # the corners land on the input's corners (pixel edges at -0.5 and size - 0.5), top edge first
    turned = RotatedRect((300.0, 200.0), 100.0, 100.0, math.radians(35))
    M = rect_to_input_affine(turned, (224, 224))
    assert np.allclose(apply_affine(M, turned.corners()), [[-0.5, -0.5], [223.5, -0.5], [223.5, 223.5],
                                                           [-0.5, 223.5]], atol=1e-3)


def canvas_affine(size: int, scale: float, angle: float, centre: tuple[float, float]) -> np.ndarray:
    """crop pixels -> canvas pixels: rotate by ``angle`` (RotatedRect's sense) and scale about the crop's centre,
    which lands on ``centre``."""
    c, s = math.cos(angle), math.sin(angle)
    A = scale * np.array([[c, -s], [s, c]])
    t = np.asarray(centre) - A @ np.array([(size - 1) / 2, (size - 1) / 2])
    return np.concatenate([A, t[:, None]], axis=1)


MAX_PX = 1.0


@pytest.mark.parametrize("degrees", [35.0, -120.0, 180.0])
def test_back_mapping_through_a_known_rotation(pipeline, freihand_root, degrees):
    record = load_freihand(freihand_root, "all")[FREIHAND_ID]
    photo = read_image(record.image_path)
    size = photo.shape[0]
    upright = pipeline.keypoints(photo, [RotatedRect(((size - 1) / 2, (size - 1) / 2), size, size, 0.0)])
    angle, scale, centre = math.radians(degrees), 1.7, (520.0, 310.0)
    T = canvas_affine(size, scale, angle, centre)
    canvas = cv2.warpAffine(photo, T, (900, 700), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    rect = RotatedRect(centre, scale * size, scale * size, angle)
    turned = pipeline.keypoints(canvas, [rect])
    expected = apply_affine(T, upright["keypoints"][0])
    err = np.linalg.norm(turned["keypoints"][0] - expected, axis=1)
    print(f"{degrees} degrees: back-mapping mean {err.mean():.3f} px, max {err.max():.3f} px")
    assert err.max() < MAX_PX
    assert turned["handedness"][0] < 0.5  # hgcnn-freihand: a left hand
    mirrored = pipeline.keypoints(canvas[:, ::-1].copy(), [RotatedRect((899 - centre[0], centre[1]), scale * size,
                                                                       scale * size, -angle)])
    assert mirrored["handedness"][0] > 0.5
    # the whole pipeline on the canvas: the detector's own crop, keypoints near the people's labels moved by T
    found = pipeline(canvas)
    label_err = np.linalg.norm(found.keypoints - apply_affine(T, record.keypoints[0]), axis=-1).mean(axis=-1)
    print(f"{degrees} degrees: {len(found.keypoints)} hands, error to labels {label_err.min():.2f} px")
    assert label_err.min() < 16.0  # measured 11.6-12.5 px (labels scaled 1.7x)


def test_photo_without_hand_gives_empty_result(pipeline):
    if not NO_HAND_PHOTO.is_file():
        pytest.skip(f"{NO_HAND_PHOTO} not present")
    res = pipeline(read_image(NO_HAND_PHOTO), str(NO_HAND_PHOTO))
    assert res.keypoints.shape == (0, 21, 2) and res.scores.shape == (0, 21) and res.boxes.shape == (0, 4)
    assert res.handedness.shape == (0,) and res.instance_scores.shape == (0,)
    assert res.to_coco() == []


def test_bad_image_raises(pipeline):
    with pytest.raises(HandposeError):
        pipeline(np.zeros((10, 10), np.uint8))


def test_predict_detect_writes_every_hand(pipeline, hands_coco, tmp_path):
    from handpose.cli import app

    _, images = hands_coco
    names = ["000000117425.jpg", "000000199055.jpg", "000000241668.jpg"]
    for n in names:
        shutil.copy(images / n, tmp_path / n)
    if NO_HAND_PHOTO.is_file():
        shutil.copy(NO_HAND_PHOTO, tmp_path / "no_hand.jpg")
    out = tmp_path / "pred.json"
    r = CliRunner().invoke(app, ["predict", str(tmp_path), "--detect", "--json", str(out), "-q"])
    assert r.exit_code == 0, r.output
    entries = json.loads(out.read_text())
    expected = {n: pipeline(read_image(tmp_path / n), n) for n in names}
    assert len(entries) == sum(len(res.keypoints) for res in expected.values()) >= 5
    for e in entries:
        name = e["file_name"].split("/")[-1]
        assert name in names
        assert len(e["keypoints"]) == 63 and len(e["bbox"]) == 4 and e["handedness"] in ("left", "right")
        assert 0.5 <= e["detection_score"] <= 1 and 0 <= e["presence"] <= 1 and 0.5 <= e["handedness_score"] <= 1
    # the same hands as the pipeline called directly
    first = [e for e in entries if e["file_name"].endswith(names[0])]
    kp = np.asarray([e["keypoints"] for e in first]).reshape(len(first), 21, 3)[..., :2]
    assert np.abs(kp - expected[names[0]].keypoints).max() < 0.01
    # --min-score keeps the instances at or above it, with every field filtered alike
    scores = sorted(s for res in expected.values() for s in res.instance_scores)
    cut = float(np.median(scores))
    r = CliRunner().invoke(app, ["predict", str(tmp_path), "--detect", "--json", str(out), "-q", "--min-score",
                                 str(cut)])
    assert r.exit_code == 0, r.output
    kept = json.loads(out.read_text())
    assert len(kept) == sum(s >= cut for s in scores) < len(entries)
    assert all(e["score"] >= cut - 1e-5 for e in kept)
    res = expected[names[0]]
    sub = res.above(cut)
    keep = res.instance_scores >= cut
    assert np.array_equal(sub.keypoints, res.keypoints[keep]) and np.array_equal(sub.presence, res.presence[keep])
    assert np.array_equal(sub.regions, res.regions[keep]) and len(sub.handedness_labels) == int(keep.sum())


ONNX_SAME_CROP_PX = 1e-3
ONNX_PIPELINE_PX = 0.2


def test_onnxruntime_backend_matches_pytorch_on_coco_photos(pipeline, onnx_pipeline, hands_coco):
    _, images = hands_coco
    assert isinstance(onnx_pipeline.detector, OnnxPalmDetector)
    same_crop, whole, hands = 0.0, 0.0, 0
    for path in sorted(images.glob("*.jpg")):
        image = read_image(path)
        a, b = pipeline(image, path.name), onnx_pipeline(image, path.name)
        assert len(a.keypoints) == len(b.keypoints), path.name
        hands += len(a.keypoints)
        if not len(a.keypoints):
            continue
        whole = max(whole, float(np.abs(a.keypoints - b.keypoints).max()))
        assert np.abs(a.regions[:, :2] - b.regions[:, :2]).max() < 1e-3  # the same crops, up to float noise
        assert np.abs(a.detection_scores - b.detection_scores).max() < 1e-4
        # the keypoint network alone: the PyTorch crops given to both
        rects = [RotatedRect((r[0], r[1]), r[2], r[3], r[4]) for r in a.regions.astype(np.float64)]
        ka, kb = pipeline.keypoints(image, rects), onnx_pipeline.keypoints(image, rects)
        same_crop = max(same_crop, float(np.abs(ka["keypoints"] - kb["keypoints"]).max()))
        assert np.abs(ka["presence"] - kb["presence"]).max() < 1e-3
        assert np.abs(ka["handedness"] - kb["handedness"]).max() < 1e-3
    print(f"onnxruntime vs PyTorch: {hands} hands, same crops {same_crop:.2g} px, whole pipeline {whole:.3f} px")
    assert hands >= 20
    assert same_crop < ONNX_SAME_CROP_PX
    assert whole < ONNX_PIPELINE_PX


def test_onnx_palm_detector_runs_a_fitted_input(onnx_pipeline, hands_coco):
    """The exported palm detector has dynamic height and width: letterboxed into 192 x 160, onnxruntime gives
    PyTorch's palms."""
    from handpose.detect.detector import PalmDetector

    photo = read_image(hands_coco[1] / "000000296222.jpg")  # 480 x 640, two palms
    onnx = OnnxPalmDetector(onnx_pipeline.detector.path, threads=1, fit_input=True)
    torch_fit = PalmDetector("full", fit_input=True)
    assert onnx.input_size(photo) == torch_fit.input_size(photo) == (192, 160)
    a, b = torch_fit.detect(photo), onnx.detect(photo)
    assert len(a) == len(b) == 2
    for d, e in zip(a, b, strict=True):
        np.testing.assert_allclose(d.box, e.box, atol=0.01)
        assert d.score == pytest.approx(e.score, abs=1e-4)
    # and at 160 x 128 (the `handpose onnx fast` benchmark row's detector input)
    a = PalmDetector("full", fit_input=True, input_side=160).detect(photo)
    b = OnnxPalmDetector(onnx_pipeline.detector.path, threads=1, fit_input=True, input_side=160).detect(photo)
    assert len(a) == len(b) == 2 and np.allclose([d.box for d in a], [e.box for e in b], atol=0.01)


def test_onnx_palm_detector_of_an_older_export_refuses_other_sizes(onnx_pipeline, tmp_path):
    """A file exported before dynamic height / width (metadata without "spatial") runs 192 x 192 only."""
    import onnx

    from handpose.export import METADATA_KEY

    proto = onnx.load(str(onnx_pipeline.detector.path))
    entry = next(p for p in proto.metadata_props if p.key == METADATA_KEY)
    meta = json.loads(entry.value)
    meta.pop("spatial")
    entry.value = json.dumps(meta)
    old = tmp_path / "old_palm.onnx"
    onnx.save(proto, str(old))
    assert OnnxPalmDetector(old, threads=1).input_side == 192
    for kwargs in ({"fit_input": True}, {"input_side": 160}):
        with pytest.raises(HandposeError, match="192 x 192 input only"):
            OnnxPalmDetector(old, threads=1, **kwargs)


def test_onnx_files_are_cached_and_can_be_given(onnx_pipeline, onnx_dir, hands_coco):
    palm, keypoints = onnx_pipeline.detector.path, onnx_pipeline.bundle.network.path
    assert palm.parent == keypoints.parent == onnx_dir
    assert palm.name.startswith("palm_detection_full-") and keypoints.name.startswith("mediapipe_hand_full-")
    stamps = {p: p.stat().st_mtime_ns for p in onnx_dir.iterdir()}
    again = TopDownPipeline("full", "mediapipe_hand_full", backend="onnxruntime", onnx_dir=onnx_dir, threads=1)
    assert {p: p.stat().st_mtime_ns for p in onnx_dir.iterdir()} == stamps  # reused, not exported again
    given = TopDownPipeline(palm, keypoints, threads=1)  # .onnx files run by onnxruntime on either backend
    assert given.bundle.network.path == keypoints and given.detector.path == palm
    _, images = hands_coco
    image = read_image(images / "000000117425.jpg")
    a, b = again(image), given(image)
    assert len(a.keypoints) == 3 and np.array_equal(a.keypoints, b.keypoints)
    assert np.array_equal(a.handedness, b.handedness) and np.array_equal(a.presence, b.presence)
    with pytest.raises(HandposeError, match="not a 192 x 192 palm detector"):
        TopDownPipeline(keypoints, keypoints)
    # the two sessions take turns: neither keeps spinning threads (exported, or given as files, at any thread
    # count); a lone session keeps onnxruntime's default (the config entry is then absent)
    two = TopDownPipeline(palm, keypoints, threads=2)
    for pipe in (onnx_pipeline, given, two):
        for session in (pipe.detector.runner.session, pipe.bundle.network.session):
            options = session.get_session_options()
            assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert two.detector.runner.session.get_session_options().intra_op_num_threads == 2
    with pytest.raises(Exception, match="allow_spinning"):
        OnnxNetwork(keypoints).session.get_session_options().get_session_config_entry(
            "session.intra_op.allow_spinning")
    with pytest.raises(HandposeError, match="backend"):
        TopDownPipeline("full", "mediapipe_hand_full", backend="tflite")


def test_predict_without_flags_finds_hands_in_photos_and_keeps_crops(pipeline, hands_coco, freihand_root, tmp_path):
    """Neither --detect nor --crop: the 256-px hgcnn crop stays one hand crop (the bundled model, one instance),
    the 640-px COCO photo goes through the palm detector (every hand); --crop takes the photo as one crop."""
    from handpose import predict as predict_crop
    from handpose.cli import app
    from handpose.detect.topdown import is_hand_crop

    assert is_hand_crop(256, 256) and is_hand_crop(320, 200) and not is_hand_crop(640, 427)
    _, images = hands_coco
    photo, crop = tmp_path / "b_photo.jpg", tmp_path / "a_crop.jpg"
    shutil.copy(images / "000000199055.jpg", photo)
    shutil.copy(freihand_root / "training" / "rgb" / f"{FREIHAND_ID:08d}.jpg", crop)
    out = tmp_path / "auto.json"
    r = CliRunner().invoke(app, ["predict", str(tmp_path), "--json", str(out), "-q"])
    assert r.exit_code == 0, r.output
    entries = json.loads(out.read_text())
    on_photo = [e for e in entries if e["file_name"].endswith("b_photo.jpg")]
    on_crop = [e for e in entries if e["file_name"].endswith("a_crop.jpg")]
    hands = pipeline(read_image(photo), str(photo))
    assert len(on_photo) == len(hands.keypoints) >= 2 and all("detection_score" in e for e in on_photo)
    assert len(on_crop) == 1 and "detection_score" not in on_crop[0]
    expect = predict_crop(crop)[0].keypoints[0]
    assert np.abs(np.asarray(on_crop[0]["keypoints"]).reshape(21, 3)[:, :2] - expect).max() < 0.01
    assert entries[0]["file_name"].endswith("a_crop.jpg")  # input order kept
    r = CliRunner().invoke(app, ["predict", str(photo), "--crop", "--json", str(out), "-q"])
    assert r.exit_code == 0, r.output
    assert len(json.loads(out.read_text())) == 1


def test_plain_prediction_with_the_landmark_network_has_presence(freihand_root):
    """A whole-image crop through MediaPipe's landmark network: presence and handedness come from the same pass
    (high on a hand crop, low on a photo without a hand), the keypoints equal the network's plain output, and
    --min-score's instance score is the presence."""
    from handpose import Predictor

    hand = read_image(freihand_root / "training" / "rgb" / f"{FREIHAND_ID:08d}.jpg")
    empty = read_image(NO_HAND_PHOTO)[:300, :300]
    pred = Predictor("mediapipe_hand_full")
    on_hand, on_empty = pred.predict_arrays([hand, empty])
    assert on_hand.presence[0] > 0.9 and on_empty.presence[0] < 0.2
    assert on_hand.handedness is not None and np.allclose(on_hand.scores, on_hand.presence[0])
    assert on_hand.instance_scores[0] == pytest.approx(on_hand.presence[0])
    assert len(on_empty.above(0.5).keypoints) == 0 and len(on_hand.above(0.5).keypoints) == 1
    plain = Predictor("mediapipe_hand_full", flip_test=True)  # no landmark path: keypoints only
    flipped = plain.predict_arrays([hand])[0]
    assert flipped.presence is None
    assert np.abs(flipped.keypoints - on_hand.keypoints).max() < 6.0  # the flip test moves them a little


def test_predict_detect_fit_input_and_detector_side(hands_coco, tmp_path):
    """The CLI options reach the detector: the photo's two clear palms are found on a fitted 160-px letterbox
    (``handpose onnx fast``'s detector input); a side that is not a multiple of 32 is refused with its message."""
    from handpose.cli import app

    photo = hands_coco[1] / "000000296222.jpg"
    out = tmp_path / "hands.json"
    r = CliRunner().invoke(app, ["predict", str(photo), "--detect", "--fit-input", "--detector-side", "160",
                                 "--detector", "lite", "--json", str(out), "--quiet"])
    assert r.exit_code == 0, r.output
    assert len(json.loads(out.read_text())) == 2
    r = CliRunner().invoke(app, ["predict", str(photo), "--detect", "--detector-side", "100", "--quiet"])
    assert r.exit_code != 0 and "multiple of 32" in r.output
