"""Left hands by mirroring (``Predictor(hand=..., model_hand=...)``) on real photos (examples/hands)."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from handpose import HandposeError
from handpose.data.image import read_image
from handpose.predict import Predictor

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = [ROOT / "examples" / "hands" / f"hgcnn_{i}.jpg" for i in (460, 466, 472, 478)]


def mirror_x(keypoints: np.ndarray, width: int) -> np.ndarray:
    """Keypoints of an image -> those of its mirror image (pixel centres at integers: x -> width - 1 - x)."""
    out = np.array(keypoints, np.float64)
    out[..., 0] = width - 1 - out[..., 0]
    return out


@pytest.fixture(scope="module")
def photos():
    return [read_image(p) for p in PHOTOS]


@pytest.fixture(scope="module")
def predictor():
    return Predictor("hand21_resunet")  # the first bundled model (heatmaps)


def test_left_hand_of_a_mirrored_photo_is_the_mirrored_prediction(photos, predictor):
    mirrored = [np.ascontiguousarray(im[:, ::-1]) for im in photos]
    as_given = predictor.predict_arrays(photos)
    as_left = predictor.predict_arrays(mirrored, hands=["left"] * len(photos))
    for im, a, b in zip(photos, as_given, as_left, strict=True):
        assert np.abs(mirror_x(a.keypoints, im.shape[1]) - b.keypoints).max() < 1e-3
        assert np.abs(a.scores - b.scores).max() < 1e-5
    # and mirroring changes the answer: the bundled model is not mirror-symmetric
    plain = predictor.predict_arrays(mirrored)
    moved = [np.linalg.norm(p.keypoints - b.keypoints, axis=-1).mean() for p, b in zip(plain, as_left, strict=True)]
    assert max(moved) > 1.0


def test_right_hand_and_model_hand(photos, predictor):
    im = photos[0]
    plain = predictor.predict_arrays([im])[0].keypoints
    assert np.array_equal(predictor.predict_arrays([im], hands=["right"])[0].keypoints, plain)
    left_model = Predictor(predictor.bundle, hand="left", model_hand="left")  # a left hand into a left-hand model
    assert np.array_equal(left_model.predict_arrays([im])[0].keypoints, plain)
    mirrored = Predictor(predictor.bundle, hand="right", model_hand="left").predict_arrays([im])[0].keypoints
    assert np.array_equal(mirrored, predictor.predict_arrays([im], hands=["left"])[0].keypoints)


def test_regression_model_mirrors_back_exactly(photos):
    predictor = Predictor("mediapipe_hand_full")  # regression output in [-1, 1] units: x negated
    # at the network's 224x224 the letterbox is the identity; at other scales the warp of the mirror image is not
    # bit-identical to the mirrored warp (OpenCV's bilinear warp works in fixed point): 0.014 px at 256 -> 224 here
    im = cv2.resize(photos[3], (224, 224), interpolation=cv2.INTER_AREA)
    a = predictor.predict_arrays([im])[0].keypoints
    b = predictor.predict_arrays([np.ascontiguousarray(im[:, ::-1])], hands=["left"])[0].keypoints
    assert np.abs(mirror_x(a, im.shape[1]) - b).max() < 1e-3


def test_auto_uses_mediapipe_handedness(photos, predictor):
    # hgcnn-freihand photos show left hands (palm to the camera, thumb on the image's left): MediaPipe's handedness
    # says so for 3 of these 4 and calls all 4 mirror images right hands
    lefts = [predictor.is_left(im) for im in photos]
    assert sum(lefts) >= 3
    assert not any(predictor.is_left(np.ascontiguousarray(im[:, ::-1])) for im in photos)
    auto = predictor.predict_arrays(photos, hands=["auto"] * len(photos))
    given = predictor.predict_arrays(photos, hands=["left" if x else "right" for x in lefts])
    for a, g in zip(auto, given, strict=True):
        assert np.array_equal(a.keypoints, g.keypoints)


def test_paths_take_per_file_hands(predictor):
    results = list(predictor.predict_paths(PHOTOS[:2], hands=["left", None]))
    arrays = predictor.predict_arrays([read_image(p) for p in PHOTOS[:2]], hands=["left", None])
    for r, a in zip(results, arrays, strict=True):
        assert np.allclose(r.keypoints, a.keypoints, atol=1e-4)


def test_unknown_hand_is_refused(predictor):
    with pytest.raises(HandposeError, match="hand must be one of right, left, auto"):
        Predictor(predictor.bundle, hand="both")
    with pytest.raises(HandposeError, match="photo.jpg: hand"):
        predictor.prepare(np.zeros((8, 8, 3), np.uint8), name="photo.jpg", hand="up")
    with pytest.raises(HandposeError, match="model_hand must be right or left"):
        Predictor(predictor.bundle, model_hand="auto")
