"""MediaPipe's palm detector rebuilt in PyTorch: import, anchors, decoding, weighted NMS, hand ROI, real photos.

Measured here (mediapipe 0.10.21 .tflite files, ai_edge_litert as the reference runtime, same letterboxed inputs):
network outputs differ from TFLite's by at most 1.4e-3 input px (regressors, which reach 180 px) and 3.0e-4 (score
logits) for "full", 1.6e-4 px and 2.5e-5 for "lite"; the full pipelines (same decode + NMS on either runtime's outputs)
give the same detections (boxes within 1.3e-4 px). On the 29 coco-wholebody-hands photos (65 labelled hands, many
small) "full" finds 20 hands and "lite" 18, exactly as the litert-run pipeline does.
"""

from __future__ import annotations

import json
import math
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import torch

from handpose.data.image import read_image
from handpose.detect import (
    PALM_ANCHORS,
    PALM_KEYPOINTS,
    PALM_TO_HAND21,
    PalmDetector,
    PalmDetectorNet,
    SsdAnchorOptions,
    decode_boxes,
    decode_detections,
    detections_from_outputs,
    import_palm_detector,
    roi_from_palm,
    ssd_anchors,
    weighted_nms,
)
from handpose.detect.decode import scores_from_logits
from handpose.detect.detector import fitted_input_size, letterbox_input, palm_anchors
from handpose.errors import HandposeError

SHARED = Path(__file__).resolve().parents[2] / "shared"  # as tests/conftest.py: ../shared beside the checkout
WEIGHTS = SHARED / "weights"
# a man in a kitchen, no wrist labelled and no hand in sight
NO_HAND_PHOTO = SHARED / "data" / "coco-person-mini" / "train2017" / "000000214704.jpg"
FREIHAND_IDS = [0, 80, 160, 240, 320, 400]


def _weights(variant: str) -> Path:
    path = WEIGHTS / f"palm_detection_{variant}.tflite"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    return path


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def detectors() -> dict[str, PalmDetector]:
    return {v: PalmDetector(v, _weights(v)) for v in ("full", "lite")}


@pytest.fixture(scope="module")
def interpreters() -> dict:
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    out = {}
    for v in ("full", "lite"):
        it = litert.Interpreter(model_path=str(_weights(v)))
        it.allocate_tensors()
        out[v] = it
    return out


def _litert(it, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    it.set_tensor(it.get_input_details()[0]["index"], x[None])
    it.invoke()
    out = {d["name"]: it.get_tensor(d["index"]) for d in it.get_output_details()}
    return out["Identity"][0], out["Identity_1"][0]


def _freihand(freihand_root: Path, i: int) -> tuple[np.ndarray, np.ndarray]:
    """Photo ``i`` centred on a 512 x 512 black canvas (the 256 px crops are too tight for a palm detector) and its
    21 labelled keypoints in canvas pixels."""
    xyz = np.asarray(json.loads((freihand_root / "training_xyz.json").read_text())[i])
    K = np.asarray(json.loads((freihand_root / "training_K.json").read_text())[i])
    uv = (K @ xyz.T).T
    canvas = np.zeros((512, 512, 3), np.uint8)
    canvas[128:384, 128:384] = read_image(freihand_root / "training" / "rgb" / f"{i:08d}.jpg")
    return canvas, uv[:, :2] / uv[:, 2:] + 128


# --- anchors ---------------------------------------------------------------------------------------------------------

def test_palm_anchors_count_and_centres():
    a = ssd_anchors(PALM_ANCHORS)
    assert a.shape == (2016, 4)
    assert np.all(a[:, 2:] == 1.0)  # fixed_anchor_size
    # 24 x 24 grid (stride 8), 2 anchors per cell, row-major
    np.testing.assert_allclose(a[0], [0.5 / 24, 0.5 / 24, 1, 1])
    np.testing.assert_allclose(a[1], a[0])
    np.testing.assert_allclose(a[2], [1.5 / 24, 0.5 / 24, 1, 1])
    np.testing.assert_allclose(a[2 * 24], [0.5 / 24, 1.5 / 24, 1, 1])
    np.testing.assert_allclose(a[1151], [23.5 / 24, 23.5 / 24, 1, 1])
    # then the 12 x 12 grid (three stride-16 layers merged), 6 anchors per cell
    np.testing.assert_allclose(a[1152:1158], np.tile([0.5 / 12, 0.5 / 12, 1, 1], (6, 1)))
    np.testing.assert_allclose(a[1158], [1.5 / 12, 0.5 / 12, 1, 1])
    np.testing.assert_allclose(a[-1], [11.5 / 12, 11.5 / 12, 1, 1])


def test_anchor_scales_and_blazeface_count():
    # MediaPipe's face detector (128 px, same strides) has 896 anchors
    face = SsdAnchorOptions(128, 128, 0.1484375, 0.75, (8, 16, 16, 16), fixed_anchor_size=True)
    assert len(ssd_anchors(face)) == 896
    # sized anchors: scale of layer i = min + (max - min) * i / (n - 1), plus sqrt(scale_i * scale_{i+1}) (1 at the end)
    opts = SsdAnchorOptions(64, 64, 0.2, 0.8, (8, 16), aspect_ratios=(1.0, 4.0))
    a = ssd_anchors(opts)
    assert a.shape == (8 * 8 * 3 + 4 * 4 * 3, 4)
    np.testing.assert_allclose(a[:3, 2:], [[0.2, 0.2], [0.4, 0.1], [0.4, 0.4]], rtol=1e-6)  # ratio 4: w = 2s, h = s/2
    np.testing.assert_allclose(a[192:195, 2:], [[0.8, 0.8], [1.6, 0.4], [math.sqrt(0.8)] * 2], rtol=1e-6)
    np.testing.assert_allclose(a[192, :2], [0.5 / 4, 0.5 / 4])


# --- decoding and NMS (known answers) ---------------------------------------------------------------------------------

def test_decode_known_answer():
    anchors = np.array([[0.5, 0.5, 1.0, 1.0], [0.25, 0.75, 1.0, 1.0]], np.float32)
    raw = np.zeros((2, 18), np.float32)
    raw[0, :4] = [19.2, -9.6, 38.4, 57.6]     # x, y, w, h in 192-px input pixels
    raw[0, 4:6] = [19.2, 19.2]                # keypoint 0
    raw[0, 16:18] = [-96.0, 0.0]              # keypoint 6
    boxes, kps = decode_boxes(raw, anchors)
    # centre (0.5 + 0.1, 0.5 - 0.05), size (0.2, 0.3)
    np.testing.assert_allclose(boxes[0], [0.5, 0.3, 0.7, 0.6], atol=1e-6)
    np.testing.assert_allclose(kps[0, 0], [0.6, 0.6], atol=1e-6)
    np.testing.assert_allclose(kps[0, 6], [0.0, 0.5], atol=1e-6)
    np.testing.assert_allclose(kps[1], np.tile([0.25, 0.75], (7, 1)))  # zero offsets: the anchor centre
    np.testing.assert_allclose(boxes[1], [0.25, 0.75, 0.25, 0.75])


def test_scores_are_sigmoid_of_clipped_logits():
    s = scores_from_logits(np.array([[0.0], [math.log(3)], [1e4], [-1e4]], np.float32))
    np.testing.assert_allclose(s, [0.5, 0.75, 1.0, 1 / (1 + math.exp(100))], rtol=1e-6, atol=1e-30)


def test_decode_detections_threshold_and_negative_size():
    anchors = np.tile([0.5, 0.5, 1.0, 1.0], (3, 1)).astype(np.float32)
    raw = np.zeros((3, 18), np.float32)
    raw[:, 2:4] = [[19.2, 19.2], [19.2, 19.2], [-19.2, 19.2]]  # the third has a negative width
    logits = np.array([[0.0], [-0.01], [5.0]], np.float32)     # 0.5 is kept (>=), 0.4975 is not
    boxes, scores, kps = decode_detections(raw, logits, anchors, min_score=0.5)
    assert len(boxes) == 1 and scores[0] == pytest.approx(0.5)
    np.testing.assert_allclose(boxes[0], [0.45, 0.45, 0.55, 0.55], atol=1e-6)


def test_weighted_nms_known_answer():
    boxes = np.array([[0, 0, 1, 1],          # A 0.9
                      [0.1, 0, 1.1, 1],      # B 0.6: IoU with A 0.9 / 1.1 = 0.82 -> merged into A
                      [2, 2, 3, 3],          # C 0.8: apart
                      [0, 0.6, 1, 1.6]],     # D 0.5: IoU with A 0.4 / 1.6 = 0.25, with B 0.22 -> its own
                     np.float32)
    scores = np.array([0.9, 0.6, 0.8, 0.5], np.float32)
    kps = np.zeros((4, 7, 2), np.float32)
    kps[0], kps[1] = 1.0, 2.5
    b, s, k = weighted_nms(boxes, scores, kps, 0.3)
    np.testing.assert_allclose(s, [0.9, 0.8, 0.5])
    np.testing.assert_allclose(b[0], [0.04, 0, 1.04, 1], atol=1e-6)     # (0.9 A + 0.6 B) / 1.5
    np.testing.assert_allclose(k[0], np.full((7, 2), 1.6), atol=1e-6)   # (0.9 * 1 + 0.6 * 2.5) / 1.5
    np.testing.assert_allclose(b[1:], boxes[[2, 3]])
    assert weighted_nms(boxes[:0], scores[:0], kps[:0])[0].shape == (0, 4)


def test_one_anchor_gives_this_box_in_image_pixels():
    # a 400 x 200 image letterboxed to 192: scale 0.48, 48-px black bands above and below
    _, M = letterbox_input(np.zeros((200, 400, 3), np.uint8))
    anchors = ssd_anchors()
    i = 1152 + (6 * 12 + 6) * 6   # first anchor of cell (row 6, col 6) of the 12 x 12 grid: centre 104 / 192
    np.testing.assert_allclose(anchors[i, :2], [6.5 / 12, 6.5 / 12])
    raw = np.zeros((2016, 18), np.float32)
    logits = np.full((2016, 1), -20.0, np.float32)
    raw[i, :4] = [0, 0, 48, 24]
    raw[i, 4:6] = [-24, 12]
    logits[i] = 3.0
    (det,) = detections_from_outputs(raw, logits, M)
    # input box (edges) x 80..128, y 92..116 -> pixel-centre coords minus 0.5 -> image: x = (u + 0.26) / 0.48,
    # y = (v - 47.74) / 0.48 (the letterbox maps the image edges -0.5, 399.5 to -0.5, 191.5 and -0.5 to 47.5)
    np.testing.assert_allclose(det.box, [(79.5 + 0.26) / 0.48, (91.5 - 47.74) / 0.48,
                                         (127.5 + 0.26) / 0.48, (115.5 - 47.74) / 0.48], atol=1e-3)
    assert det.box[2] - det.box[0] == pytest.approx(100.0, abs=1e-3)
    np.testing.assert_allclose(det.keypoints[0], [(79.5 + 0.26) / 0.48, (115.5 - 47.74) / 0.48], atol=1e-3)
    assert det.score == pytest.approx(1 / (1 + math.exp(-3)))


# --- hand ROI -------------------------------------------------------------------------------------------------------

def test_roi_from_palm_upright_and_pointing_right():
    box = np.array([100, 100, 200, 180], np.float32)        # 100 x 80 palm box, centre (150, 140)
    up = np.tile([150.0, 140.0], (7, 1))
    up[0], up[2] = [150, 180], [150, 100]                    # wrist below the middle MCP: already upright
    r = roi_from_palm(box, up)
    assert r.rotation == pytest.approx(0.0)
    assert r.center == pytest.approx((150.0, 100.0))         # shifted 0.5 * 80 px towards the fingers
    assert r.width == r.height == pytest.approx(260.0)       # 2.6 * long side
    right = up.copy()
    right[0], right[2] = [100, 140], [200, 140]              # fingers point right
    r = roi_from_palm(box, right)
    assert r.rotation == pytest.approx(math.pi / 2)
    assert r.center == pytest.approx((190.0, 140.0))
    top_left, top_right = r.corners()[:2]                     # the crop's top edge lies on the fingers' side
    np.testing.assert_allclose([top_left, top_right], [[320, 10], [320, 270]], atol=1e-4)


# --- real photos, against the reference runtime ----------------------------------------------------------------------

@pytest.mark.parametrize("variant", ["full", "lite"])
def test_network_matches_litert(variant, detectors, interpreters, freihand_root, hands_coco):
    _, images = hands_coco
    photos = [_freihand(freihand_root, 40)[0], read_image(sorted(images.glob("*.jpg"))[0])]
    worst_reg = worst_logit = 0.0
    for photo in photos:
        reg, logit, M = detectors[variant].raw(photo)
        ref_reg, ref_logit = _litert(interpreters[variant], letterbox_input(photo)[0])
        worst_reg = max(worst_reg, float(np.abs(reg - ref_reg).max()))
        worst_logit = max(worst_logit, float(np.abs(logit - ref_logit).max()))
    # measured (one torch thread): full 1.4e-3 px / 3.0e-4 (regressors up to 180 px: float32 summation order),
    # lite 1.6e-4 px / 2.5e-5
    assert worst_reg < 5e-3, f"regressors differ by {worst_reg} input px"
    assert worst_logit < 2e-3, f"score logits differ by {worst_logit}"


def _hand_found(dets, bbox) -> bool:
    x, y, w, h = bbox
    for d in dets:
        b = d.box
        inter = max(0.0, min(b[2], x + w) - max(b[0], x)) * max(0.0, min(b[3], y + h) - max(b[1], y))
        iou = inter / ((b[2] - b[0]) * (b[3] - b[1]) + w * h - inter)
        cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
        if iou >= 0.3 or (x <= cx <= x + w and y <= cy <= y + h):
            return True
    return False


def test_coco_hands_found_as_by_the_reference(detectors, interpreters, hands_coco):
    """Each labelled hand counts as found when a palm box overlaps it (IoU >= 0.3) or has its centre inside."""
    ann_file, images = hands_coco
    coco = json.loads(ann_file.read_text())
    hands = defaultdict(list)
    for a in coco["annotations"]:
        hands[a["image_id"]].append(a["bbox"])
    total = found = found_ref = 0
    for im in coco["images"]:
        photo = read_image(images / im["file_name"])
        dets = detectors["full"].detect(photo)
        x, M = letterbox_input(photo)
        ref = detections_from_outputs(*_litert(interpreters["full"], x), M)
        assert len(dets) == len(ref), im["file_name"]
        for d, r in zip(dets, ref, strict=True):
            np.testing.assert_allclose(d.box, r.box, atol=0.01)
            np.testing.assert_allclose(d.keypoints, r.keypoints, atol=0.01)
            assert d.score == pytest.approx(r.score, abs=1e-4)
        for bbox in hands[im["id"]]:
            total += 1
            found += _hand_found(dets, bbox)
            found_ref += _hand_found(ref, bbox)
    assert total == 65
    assert found == found_ref == 20  # many COCO hands are a few pixels wide once the photo is 192 px


def test_fitted_input_size_and_its_anchors(detectors):
    assert fitted_input_size(640, 480) == (192, 160)
    assert fitted_input_size(480, 640) == (160, 192)
    assert fitted_input_size(500, 500) == (192, 192)
    assert fitted_input_size(1280, 720) == (192, 128)
    assert fitted_input_size(1000, 10) == (192, 32)
    assert np.array_equal(palm_anchors(), ssd_anchors(PALM_ANCHORS))
    with torch.no_grad():
        reg, logit = detectors["lite"].net(torch.zeros(1, 3, 160, 192))
    anchors = palm_anchors(192, 160)
    assert reg.shape == (1, len(anchors), 18) and len(anchors) == 2 * 24 * 20 + 6 * 12 * 10
    np.testing.assert_allclose(anchors[-1], [11.5 / 12, 9.5 / 10, 1, 1])  # last cell of the 12 x 10 grid


def test_fitted_input_finds_the_same_palms_on_a_real_photo(detectors, hands_coco):
    """A 480 x 640 photo with two clear palms (scores 0.94 and 0.92 at 192 x 192): letterboxed into 192 x 160, the
    same two palms come back in the photo's pixels (measured: boxes within 3 px, scores within 0.02)."""
    photo = read_image(hands_coco[1] / "000000296222.jpg")
    fit = PalmDetector("full", _weights("full"), fit_input=True)
    assert fit.input_size(photo) == (192, 160)
    square, fitted = detectors["full"].detect(photo), fit.detect(photo)
    assert len(square) == len(fitted) == 2
    for a, b in zip(square, fitted, strict=True):
        np.testing.assert_allclose(a.box, b.box, atol=4.0)
        np.testing.assert_allclose(a.keypoints, b.keypoints, atol=6.0)
        assert a.score == pytest.approx(b.score, abs=0.05)
    # a smaller input (160 x 128): the same palms, a little further off (palms ~45 px wide in the photo)
    small = PalmDetector("full", _weights("full"), fit_input=True, input_side=160)
    assert small.input_size(photo) == (160, 128)
    smaller = small.detect(photo)
    print("160 px:", [(round(d.score, 2), d.box.round(1).tolist()) for d in smaller])
    assert len(smaller) == 2
    for a in square:  # by place: the two scores may swap order
        np.testing.assert_allclose(a.box, min(smaller, key=lambda b: np.abs(b.box - a.box).sum()).box, atol=8.0)
    for bad in (100, 32, 191.5):
        with pytest.raises(HandposeError, match="multiple of 32"):
            PalmDetector("lite", _weights("lite"), input_side=bad)


def test_palm_keypoints_and_hand_roi_on_freihand(detectors, freihand_root):
    """The 7 keypoints land on the labelled joints of PALM_KEYPOINTS; the ROI holds the whole hand, upright."""
    assert PALM_KEYPOINTS == ("wrist", "index_mcp", "middle_mcp", "ring_mcp", "little_mcp", "thumb_cmc", "thumb_mcp")
    dist = []  # (photos, 7 palm keypoints, 7 candidate joints) pixels
    for i in FREIHAND_IDS:
        canvas, uv = _freihand(freihand_root, i)
        dets = detectors["full"].detect(canvas)
        assert len(dets) == 1, f"photo {i}: {len(dets)} palms"
        kp = dets[0].keypoints
        dist.append(np.linalg.norm(kp[:, None] - uv[None, list(PALM_TO_HAND21)], axis=-1))
        roi = roi_from_palm(dets[0].box, kp)
        c, s = math.cos(roi.rotation), math.sin(roi.rotation)
        local = (uv - np.asarray(roi.center)) @ np.array([[c, -s], [s, c]])  # into the crop's own axes
        assert np.all(np.abs(local) <= roi.width / 2), f"photo {i}: a labelled joint is outside the hand ROI"
        assert local[9, 1] < local[0, 1], f"photo {i}: middle MCP not above the wrist in the upright crop"
    # single photos vary (in a fist the PIP joints lie next to the MCPs, a thumb tip may cover the palm); over the
    # photos, each palm keypoint is closest to its own joint among the seven
    median = np.median(dist, axis=0)
    assert np.all(median.argmin(1) == np.arange(7)), np.round(median, 1)
    assert np.median(np.diagonal(median)) < 16  # px on 256-px hand crops (measured 10 px over 41 photos)


def test_no_hand_gives_no_palm(detectors):
    grey = np.full((480, 640, 3), 128, np.uint8)
    yy, xx = np.mgrid[0:480, 0:640]
    gradient = np.stack([xx * 255 // 639, yy * 255 // 479, np.full_like(xx, 90)], -1).astype(np.uint8)
    images = [grey, gradient]
    if NO_HAND_PHOTO.is_file():
        images.append(read_image(NO_HAND_PHOTO))
    for image in images:
        assert detectors["full"].detect(image) == []
        assert len(detectors["lite"].detect(image)) <= 1


# --- weights: formats and errors ------------------------------------------------------------------------------------

def _state(net) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in net.state_dict().items()}


def test_truncated_file_raises_and_loads_nothing(tmp_path):
    src = _weights("full")
    net = PalmDetectorNet("full")
    before = _state(net)
    for fraction in (0.1, 0.6):
        bad = tmp_path / f"cut_{fraction}.tflite"
        bad.write_bytes(src.read_bytes()[: int(src.stat().st_size * fraction)])
        with pytest.raises(HandposeError, match=bad.name):
            import_palm_detector(net, bad)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_lite_file_into_full_network_names_the_layer(tmp_path):
    net = PalmDetectorNet("full")
    before = _state(net)
    lite = tmp_path / "palm_detection_lite.tflite"
    shutil.copy(_weights("lite"), lite)
    with pytest.raises(HandposeError, match=r"palm_detection_lite\.tflite: layer \d+ 'model_1/model/") as e:
        import_palm_detector(net, lite)
    assert "stride" in str(e.value) or "shape" in str(e.value)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    with pytest.raises(HandposeError, match="palm_detection_full.tflite"):
        import_palm_detector(PalmDetectorNet("lite"), _weights("full"))


def test_state_dict_round_trip_and_mismatch(tmp_path, detectors):
    full_pt, lite_pt = tmp_path / "palm_full.pt", tmp_path / "palm_lite.pt"
    torch.save(detectors["full"].net.state_dict(), full_pt)
    torch.save(detectors["lite"].net.state_dict(), lite_pt)
    again = PalmDetector("full", full_pt)
    x = torch.rand(1, 3, 192, 192, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(again.net(x), detectors["full"].net(x), strict=True))
    with pytest.raises(HandposeError, match="palm_lite.pt"):
        PalmDetector("full", lite_pt)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(HandposeError, match="junk.pt"):
        PalmDetector("full", tmp_path / "junk.pt")


@pytest.mark.parametrize("variant", ["full", "lite"])
def test_shipped_weights_equal_the_import(variant, detectors):
    # the package's converted weights are the .tflite's float16 values, so the outputs are identical
    shipped = PalmDetector(variant)
    x = torch.rand(1, 3, 192, 192, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(shipped.net(x), detectors[variant].net(x), strict=True))


def test_bad_arguments(detectors):
    with pytest.raises(HandposeError, match="palm_detection_huge"):
        PalmDetector("full", "palm_detection_huge")
    with pytest.raises(HandposeError, match="variant"):
        PalmDetectorNet("huge")
    with pytest.raises(HandposeError, match=r"\(H, W, 3\)"):
        detectors["full"].detect(np.zeros((64, 64), np.uint8))
