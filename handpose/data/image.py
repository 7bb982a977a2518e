"""Reading images from disk into RGB uint8 arrays, with errors that name the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from handpose.errors import HandposeError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def read_image(path: str | Path, exif_transpose: bool = False) -> np.ndarray:
    """Read an image file of any colour mode (grey, palette, RGBA, 16-bit, CMYK) as RGB.

    Args:
        path: image file.
        exif_transpose: rotate by the EXIF orientation tag, as a photo viewer shows it (for user photos;
            keep False for labelled data sets whose labels refer to the stored pixel grid).

    Returns:
        ``(H, W, 3)`` uint8 array, RGB.

    Raises:
        HandposeError: the file is missing, not an image, truncated or corrupt.
    """
    path = Path(path)
    if not path.is_file():
        raise HandposeError(f"{path}: image file not found")
    try:
        with Image.open(path) as im:
            im.load()
            if exif_transpose:
                im = ImageOps.exif_transpose(im)
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(im, dtype=np.float32)
                arr = (255.0 * (arr - arr.min()) / max(float(arr.max() - arr.min()), 1.0)).astype(np.uint8)
                im = Image.fromarray(arr)
            rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise HandposeError(f"{path}: not a readable image ({type(e).__name__}: {e})") from e
    if rgb.ndim != 3 or rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise HandposeError(f"{path}: image has no pixels (shape {rgb.shape})")
    return np.ascontiguousarray(rgb)


def image_size(path: str | Path) -> tuple[int, int]:
    """``(width, height)`` of an image file without decoding its pixels.

    Raises:
        HandposeError: the file is missing or not an image.
    """
    path = Path(path)
    if not path.is_file():
        raise HandposeError(f"{path}: image file not found")
    try:
        with Image.open(path) as im:
            return int(im.width), int(im.height)
    except (UnidentifiedImageError, OSError) as e:
        raise HandposeError(f"{path}: not a readable image ({e})") from e
