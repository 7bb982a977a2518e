"""Green-screen keying on real FreiHAND photos (freihand-teacher): the keyed-out hand keeps its keypoints, the screen
becomes a real photo, other photos are left alone; and the new augmentations keep keypoints on the hand."""

import json

import cv2
import numpy as np
import pytest

from handpose import HAND21
from handpose.data.image import read_image
from handpose.data.keying import BackgroundCompositor, green_alpha, green_share
from handpose.data.transforms import AugmentConfig, Augmenter
from tests.conftest import DATA

FREIHAND = DATA / "freihand-teacher"
BACKGROUNDS = DATA / "coco-person-mini" / "train2017"


@pytest.fixture(scope="module")
def green_photos():
    if not FREIHAND.is_dir() or not BACKGROUNDS.is_dir():
        pytest.skip("freihand-teacher or coco-person-mini not present")
    data = json.loads((FREIHAND / "annotations" / "val.json").read_text())
    files = {im["id"]: im["file_name"] for im in data["images"]}
    out = []
    for ann in data["annotations"][::10]:
        kpv = np.asarray(ann["keypoints"], np.float32).reshape(21, 3)
        out.append((read_image(FREIHAND / "images" / files[ann["image_id"]]), kpv[:, :2], kpv[:, 2] > 0))
    return out


def _at(image_or_map, xy):
    x, y = np.clip(np.round(xy).astype(int), 0, np.array(image_or_map.shape[1::-1]) - 1).T
    return image_or_map[y, x]


def test_keyed_hand_keeps_its_keypoints(green_photos):
    on_hand, screen = [], []
    for image, kp, vis in green_photos:
        if green_share(image) < 0.3:
            continue
        alpha = green_alpha(image)
        on_hand += list(_at(alpha, kp[vis]) > 0.5)
        screen.append((alpha < 0.5).mean())
    assert len(screen) >= 15
    # keypoints lie on the hand (a few fingertips sit on the outline, whose blurred alpha is about 0.5)
    assert np.mean(on_hand) > 0.97
    assert np.median(screen) > 0.5  # most of a FreiHAND photo is screen


def test_compositor_replaces_the_screen_with_a_real_photo(green_photos):
    comp = BackgroundCompositor.from_folder(BACKGROUNDS)
    rng = np.random.default_rng(0)
    changed_screen, kept_hand = [], []
    for image, _, _ in green_photos:
        if green_share(image) < 0.3:
            continue
        out = comp(image, rng)
        assert out.shape == image.shape and out.dtype == np.uint8
        alpha = green_alpha(image)
        diff = np.abs(out.astype(int) - image.astype(int)).sum(-1)
        changed_screen.append((diff[alpha == 0] > 30).mean())
        hand = alpha == 1
        kept_hand.append(np.median(np.abs(out[hand].astype(int) - image[hand].astype(int))[:, [0, 2]]))
    assert np.median(changed_screen) > 0.8
    assert max(kept_hand) == 0  # red and blue of the hand untouched (green only loses the screen's spill)


def test_photo_not_on_a_green_screen_is_unchanged():
    photo = read_image(next(BACKGROUNDS.glob("*.jpg")))
    comp = BackgroundCompositor.from_folder(BACKGROUNDS)
    assert green_share(photo) < 0.3
    assert np.array_equal(comp(photo, np.random.default_rng(0)), photo)


def test_background_folder_errors(tmp_path):
    from handpose.errors import HandposeError

    with pytest.raises(HandposeError, match="not found"):
        BackgroundCompositor.from_folder(tmp_path / "none")
    with pytest.raises(HandposeError, match="no .jpg"):
        BackgroundCompositor.from_folder(tmp_path)


@pytest.mark.parametrize("kind", ["blur", "occlusion", "lowres", "rotate"])
def test_augmentations_move_keypoints_with_the_image(green_photos, kind):
    image, kp, vis = next(p for p in green_photos if green_share(p[0]) >= 0.3 and p[2].all())
    opts = {"blur": {"blur": 1.0}, "occlusion": {"occlusion": 1.0}, "lowres": {"lowres": 1.0},
            "rotate": {"rotate": 180}}[kind]
    aug = Augmenter(AugmentConfig(**{"rotate": 0, "scale": 0, "translate": 0, "flip": 0, "colour": 0, **opts}),
                    HAND21)
    np.random.seed(1)
    aug.pipeline.set_random_seed(1)  # albumentations draws from its own generator, not numpy's
    out, kp2, vis2, _ = aug(image, kp[None], np.full((1, 21), 2, np.uint8))
    if kind == "rotate":  # a rotation about the centre keeps distances to the centre and between keypoints
        c = (np.array(image.shape[1::-1]) - 1) / 2
        inside = vis2[0] > 0
        assert np.allclose(np.linalg.norm(kp2[0][inside] - c, axis=1), np.linalg.norm(kp[inside] - c, axis=1),
                           atol=0.5)
        alpha = green_alpha(out)
        assert (_at(alpha, kp2[0][inside]) > 0.5).mean() > 0.9  # and the hand turned with them
    else:
        assert np.array_equal(kp2[0], kp) and (vis2 == 2).all()  # pixels change, keypoints stay labelled
        assert np.abs(out.astype(int) - image.astype(int)).mean() > 1
    if kind == "lowres":  # detail is lost: less high-frequency energy (Laplacian), same size and mean colour
        detail = [np.abs(cv2.Laplacian(cv2.cvtColor(im, cv2.COLOR_RGB2GRAY), cv2.CV_32F)).mean() for im in (image, out)]
        assert out.shape == image.shape and detail[1] < 0.7 * detail[0]
        assert np.abs(out.mean((0, 1)) - image.mean((0, 1))).max() < 3
