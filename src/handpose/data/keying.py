"""Green-screen keying: cut a hand photographed on a green screen out of its photo and paste it onto a real one.

FreiHAND's photos were taken on a green screen; its authors keyed the screen out and composited the hands onto
random backgrounds for their augmented copies (Zimmermann et al., "FreiHAND", ICCV 2019, section 4). This does the
same at training time, on the model-input crop, so keypoints stay where they are (only pixels change).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from handpose.data.image import read_image
from handpose.errors import HandposeError

#: OpenCV hue (0-180) range, minimum saturation and value (0-255) of a green-screen pixel; FreiHAND's screen has a
#: median hue of 42-45 on the photos of ../shared/data/freihand-teacher (measured here).
GREEN_HUE = (35, 90)
GREEN_MIN_SATURATION = 50
GREEN_MIN_VALUE = 30
#: A photo counts as shot on the green screen when at least this share of its pixels is screen green (FreiHAND's
#: own augmented copies, already on other backgrounds, have less).
MIN_GREEN_SHARE = 0.3
#: Letterbox padding and FreiHAND's warped black corners: pixels whose channels are all at most this are background.
BLACK_LEVEL = 8


def screen_mask(image: np.ndarray) -> np.ndarray:
    """``(H, W)`` bool: pixels of an ``(H, W, 3)`` uint8 RGB image in the screen's colour range (:data:`GREEN_HUE`,
    :data:`GREEN_MIN_SATURATION`, :data:`GREEN_MIN_VALUE`)."""
    hsv = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2HSV)
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    return (h >= GREEN_HUE[0]) & (h <= GREEN_HUE[1]) & (s >= GREEN_MIN_SATURATION) & (v >= GREEN_MIN_VALUE)


def green_alpha(image: np.ndarray) -> np.ndarray:
    """Foreground (hand, arm, held object) opacity of a photo on a green screen.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.

    Returns:
        ``(H, W)`` float32 in ``[0, 1]``: 0 on the screen (:data:`GREEN_HUE`, :data:`GREEN_MIN_SATURATION`,
        :data:`GREEN_MIN_VALUE`) and on black padding (:data:`BLACK_LEVEL`), 1 on the rest, with a 3x3 opening of
        the screen mask (specks of green on the hand stay foreground) and a 3x3 blur at the edges.
    """
    screen = cv2.morphologyEx(screen_mask(image).astype(np.uint8), cv2.MORPH_OPEN,
                              np.ones((3, 3), np.uint8)).astype(bool)
    background = screen | (image.max(axis=2) <= BLACK_LEVEL)
    return cv2.blur((~background).astype(np.float32), (3, 3))


def green_share(image: np.ndarray) -> float:
    """Share of an ``(H, W, 3)`` uint8 RGB image's pixels that are screen green (:func:`screen_mask`)."""
    return float(screen_mask(image).mean())


def despill(image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Remove the screen's green cast from the foreground: green limited to ``max(red, blue)`` where
    ``alpha > 0`` (the usual green-spill suppression; skin has more red than green, so it is unchanged)."""
    out = image.copy()
    limit = np.maximum(image[..., 0], image[..., 2])
    spill = (alpha > 0) & (image[..., 1] > limit)
    out[..., 1][spill] = limit[spill]
    return out


def photo_files(folder: str | Path, what: str = "photos") -> list[Path]:
    """The ``.jpg`` / ``.jpeg`` / ``.png`` files of ``folder``, sorted.

    Raises:
        HandposeError: a missing folder or one without such files (``what`` names the setting in the message).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise HandposeError(f"{what}: folder {folder} not found")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not paths:
        raise HandposeError(f"{what}: no .jpg / .png photos in {folder}")
    return paths


class BackgroundCompositor:
    """Pastes the foreground of green-screen crops onto random crops of real background photos.

    Args:
        backgrounds: image files (e.g. the COCO photos of ../shared/data/coco-person-mini/train2017), read once per
            process, shrunk to at most ``max_side`` pixels.
        max_side: longest side a background is kept at.

    Raises:
        HandposeError: no background files, or one that cannot be read (named).
    """

    def __init__(self, backgrounds: Sequence[str | Path], max_side: int = 480):
        self.paths = [Path(p) for p in backgrounds]
        if not self.paths:
            raise HandposeError("green-screen compositing needs at least one background photo")
        self.max_side = max_side
        self._images: list[np.ndarray] | None = None

    @classmethod
    def from_folder(cls, folder: str | Path, max_side: int = 480) -> BackgroundCompositor:
        """All ``.jpg`` / ``.jpeg`` / ``.png`` files of ``folder`` (sorted).

        Raises:
            HandposeError: a missing folder or one without images.
        """
        return cls(photo_files(folder, "backgrounds"), max_side)

    def _load(self) -> list[np.ndarray]:
        if self._images is None:
            images = []
            for p in self.paths:
                img = read_image(p)
                scale = self.max_side / max(img.shape[:2])
                if scale < 1:
                    img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
                images.append(img)
            self._images = images
        return self._images

    def background(self, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        """A random crop (side 30-100 % of the photo's shorter side, random place, mirrored half the time) of a
        random background photo, resized to ``size`` = ``(width, height)``; ``(height, width, 3)`` uint8."""
        images = self._load()
        img = images[int(rng.integers(len(images)))]
        h, w = img.shape[:2]
        side = max(8, int(min(h, w) * rng.uniform(0.3, 1.0)))
        x0, y0 = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
        crop = cv2.resize(img[y0:y0 + side, x0:x0 + side], tuple(size), interpolation=cv2.INTER_LINEAR)
        return crop[:, ::-1] if rng.random() < 0.5 else crop

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``image`` ``(H, W, 3)`` uint8 RGB with its green screen (and black padding) replaced by a background;
        returned unchanged when it is not a green-screen photo (:data:`MIN_GREEN_SHARE`). Keypoints do not move."""
        if green_share(image) < MIN_GREEN_SHARE:
            return image
        alpha = green_alpha(image)[..., None]
        fg = despill(image, alpha[..., 0]).astype(np.float32)
        bg = self.background((image.shape[1], image.shape[0]), rng).astype(np.float32)
        return (alpha * fg + (1.0 - alpha) * bg).round().astype(np.uint8)
