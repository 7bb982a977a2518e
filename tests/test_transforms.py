import cv2
import numpy as np
import pytest

from handpose import COCO17, Skeleton
from handpose.data.transforms import (
    AugmentConfig,
    Augmenter,
    apply_affine,
    box_to_input_affine,
    full_image_box,
    invert_affine,
    warp_to_input,
)
from handpose.errors import HandposeError


def _dot_image(w, h, points, radius=2):
    img = np.zeros((h, w, 3), np.uint8)
    for x, y in points:
        cv2.circle(img, (int(round(x)), int(round(y))), radius, (255, 255, 255), -1)
    return img


def _centroid(img, around, r=8):
    x0, y0 = int(around[0]), int(around[1])
    g = img[..., 0].astype(float)
    ys, xs = np.mgrid[0:g.shape[0], 0:g.shape[1]]
    win = (abs(xs - x0) <= r) & (abs(ys - y0) <= r)
    wts = g * win
    return np.array([(wts * xs).sum(), (wts * ys).sum()]) / wts.sum()


def test_full_image_affine_is_resize_convention():
    M = box_to_input_affine(full_image_box(256, 256), (128, 128))
    # pixel edges map to edges: u + 0.5 = (x + 0.5) / 2
    np.testing.assert_allclose(apply_affine(M, np.array([[-0.5, -0.5], [255.5, 255.5], [127.5, 127.5]])),
                               [[-0.5, -0.5], [127.5, 127.5], [63.5, 63.5]], atol=1e-5)


def test_letterbox_and_back_within_half_pixel():
    # a 300x150 image letterboxed into 128x128: scale 128/300, centred vertically
    pts = np.array([[10.0, 20.0], [290.0, 140.0], [150.0, 75.0]])
    img = _dot_image(300, 150, pts, radius=3)
    M = box_to_input_affine(full_image_box(300, 150), (128, 128))
    warped = warp_to_input(img, M, (128, 128))
    mapped = apply_affine(M, pts)
    for p in mapped:
        assert np.abs(_centroid(warped, p) - p).max() < 0.5
    back = apply_affine(invert_affine(M), mapped)
    assert np.abs(back - pts).max() < 1e-3


def test_large_shrink_keeps_points_aligned():
    pts = np.array([[400.0, 300.0], [1500.0, 900.0]])
    img = _dot_image(2000, 1200, pts, radius=20)
    M = box_to_input_affine(full_image_box(2000, 1200), (128, 128))
    warped = warp_to_input(img, M, (128, 128))
    for p in apply_affine(M, pts):
        assert np.abs(_centroid(warped, p, r=4) - p).max() < 0.5


@pytest.mark.parametrize("size", [(2001, 1199), (640, 480)])
def test_large_shrink_odd_sides_aligned_and_without_aliasing(size):
    w, h = size
    pts = np.array([[w * 0.2, h * 0.25], [w * 0.75, h * 0.75]])
    img = _dot_image(w, h, pts, radius=max(3, w // 100))
    M = box_to_input_affine(full_image_box(w, h), (96, 96))
    warped = warp_to_input(img, M, (96, 96))
    for p in apply_affine(M, pts):
        assert np.abs(_centroid(warped, p, r=4) - p).max() < 0.5
    # a one-pixel checkerboard must come out an even grey (a plain bilinear warp at this scale gives stripes)
    board = np.broadcast_to((((np.indices((h, w)).sum(0)) % 2) * 255).astype(np.uint8)[..., None], (h, w, 3))
    grey = warp_to_input(np.ascontiguousarray(board), M, (96, 96))
    inside = grey[30:66, 20:76, 0].astype(float)
    plain = cv2.warpAffine(np.ascontiguousarray(board), M, (96, 96), flags=cv2.INTER_LINEAR)[30:66, 20:76, 0]
    print(f"{size}: checkerboard std {inside.std():.1f} (plain bilinear warp {plain.std():.1f})")
    assert abs(inside.mean() - 127.5) < 3 and inside.std() < 8 < plain.std()


@pytest.mark.parametrize("seed", range(5))
def test_augmentation_moves_keypoints_with_image(seed):
    np.random.seed(seed)
    import random

    random.seed(seed)
    pts = np.array([[[40.0, 40.0], [90.0, 50.0], [64.0, 100.0]]])
    img = _dot_image(128, 128, pts[0], radius=3)
    three = Skeleton("three", ("a", "b", "c"), ((0, 1), (1, 2)))
    aug = Augmenter(AugmentConfig(rotate=40, scale=0.2, translate=0.05, flip=0.5, colour=0.0,
                                  perspective=0.08 if seed % 2 else 0.0), three)
    mask = np.zeros((128, 128), np.uint8)
    mask[30:50, 30:50] = 1  # an ignore region around keypoint 0 must move with it
    out, kp, vis, mask_out = aug(img, pts, np.full((1, 3), 2), 1 - mask)
    if vis[0, 0] and 5 < kp[0, 0, 0] < 123 and 5 < kp[0, 0, 1] < 123:
        x, y = (int(round(v)) for v in kp[0, 0])
        assert mask_out[y, x] == 0
    assert mask_out.max() == 1  # borders brought in count
    for p, v in zip(kp[0], vis[0], strict=True):
        if v and 5 < p[0] < 123 and 5 < p[1] < 123:
            assert np.abs(_centroid(out, p) - p).max() < 1.0


def test_flip_swaps_left_and_right():
    kp = np.zeros((1, 17, 2), np.float32)
    kp[0, :, 0] = np.arange(17) * 5 + 10  # distinct x per keypoint
    kp[0, :, 1] = 60
    aug = Augmenter(AugmentConfig(rotate=0, scale=0, translate=0, flip=1.0, colour=0), COCO17)
    vis = np.full((1, 17), 2, np.uint8)
    vis[0, 5] = 1
    _, out, v, _ = aug(np.zeros((128, 128, 3), np.uint8), kp, vis)
    # the new left shoulder (5) is the old right shoulder (6) mirrored: x' = 127 - x
    assert out[0, 5, 0] == pytest.approx(127 - kp[0, 6, 0])
    assert out[0, 6, 0] == pytest.approx(127 - kp[0, 5, 0])
    assert v[0, 6] == 1 and v[0, 5] == 2


def test_border_padding_repeats_edge_pixels():
    img = np.zeros((50, 100, 3), np.uint8)
    img[0] = (10, 20, 30)    # top row
    img[-1] = (200, 100, 50)  # bottom row
    M = box_to_input_affine(full_image_box(100, 50), (64, 64))  # letterbox: bands above and below
    border = warp_to_input(img, M, (64, 64), "border")
    black = warp_to_input(img, M, (64, 64), "constant")
    assert border[0, 32].tolist() == [10, 20, 30] and border[63, 32].tolist() == [200, 100, 50]
    assert black[0, 32].tolist() == [0, 0, 0]


def test_brightness_maximum_is_its_own():
    import random

    img = np.full((32, 32, 3), 100, np.uint8)
    kp = np.zeros((1, 1, 2), np.float32) + 16
    vis = np.full((1, 1), 2)
    random.seed(0)
    np.random.seed(0)
    none = Augmenter(AugmentConfig(rotate=0, scale=0, translate=0, flip=0, colour=0.0, brightness=0.0,
                                   contrast=0.0), Skeleton("one", ("a",), ()))
    strong = Augmenter(AugmentConfig(rotate=0, scale=0, translate=0, flip=0, colour=0.0, brightness=0.5,
                                     contrast=0.0), Skeleton("one", ("a",), ()))
    assert none(img, kp, vis)[0].tolist() == img.tolist()
    means = [strong(img, kp, vis)[0].mean() for _ in range(20)]
    assert max(means) - min(means) > 20  # brightness varies, up to +-50%


def test_normalise_and_invert_affine_match_their_formulas_on_a_real_photo():
    """The fast paths (OpenCV's blob, its affine inverse) give what the plain formulas give."""
    from pathlib import Path

    from handpose.data.dataset import normalise
    from handpose.data.image import read_image

    image = read_image(Path(__file__).resolve().parents[1] / "examples" / "hands" / "hgcnn_460.jpg")
    M = box_to_input_affine(np.array([20.0, 30.0, 180.0, 150.0]), (160, 160), rotation=0.7)
    crop = warp_to_input(image, M, (160, 160))
    for mean, std in (((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)), ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))):
        x = normalise(crop, mean, std).numpy()
        expected = ((crop.astype(np.float64) / 255 - mean) / std).transpose(2, 0, 1)
        assert x.shape == (3, 160, 160) and x.dtype == np.float32
        assert np.abs(x - expected).max() < 1e-5
    inverse = invert_affine(M)
    A = np.linalg.inv(M[:, :2])
    np.testing.assert_allclose(inverse, np.concatenate([A, -A @ M[:, 2:]], axis=1), atol=1e-12)
    batch = invert_affine(np.stack([M, M]))  # the batched path
    np.testing.assert_allclose(batch[1], inverse, atol=1e-12)


@pytest.mark.parametrize("direction", [(30.0, 0.0), (0.0, 30.0), (-21.0, -21.0), (10.0, -40.0)])
def test_upright_turns_a_to_b_upwards_with_the_image(direction):
    """``upright=(0, 1)``: the crop is turned about its centre so that keypoint 0 -> 1 points up, and the dots drawn
    at the keypoints are found where the turned keypoints say."""
    three = Skeleton("three", ("a", "b", "c"), ((0, 1), (1, 2)))
    a = np.array([64.0, 64.0])
    pts = np.array([[a, a + np.array(direction), a + np.array([-20.0, 15.0])]])
    img = _dot_image(128, 128, pts[0], radius=3)
    aug = Augmenter(AugmentConfig(rotate=0, scale=0, translate=0, flip=0, colour=0, upright=(0, 1)), three)
    out, kp, vis, _ = aug(img, pts, np.ones((1, 3), np.float32))
    d = kp[0, 1] - kp[0, 0]
    assert abs(d[0]) < 1e-3 and d[1] < 0 and np.hypot(*d) == pytest.approx(np.hypot(*direction), abs=1e-3)
    for p in kp[0]:
        assert np.abs(_centroid(out, p, r=6) - p).max() < 0.5
    # an unlabelled end: the crop is left as it is; indices outside the skeleton are refused
    same, kp2, _, _ = aug(img, pts, np.array([[1.0, 0.0, 1.0]], np.float32))
    assert np.array_equal(same, img) and np.allclose(kp2, pts)
    with pytest.raises(HandposeError, match="upright"):
        Augmenter(AugmentConfig(upright=(0, 3)), three)
