"""Reading images from disk into RGB uint8 arrays, with errors that name the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from handpose.errors import HandposeError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
#: Largest image decoded, in pixels (width x height): 100 Mpx, a 108 Mpx phone photo needs a raised cap. A file's
#: header states its size before any pixel is decoded, so a 20 KB PNG that claims 13000 x 13000 (decoded: 2.3 GB)
#: is refused unread. PIL's own guard (``Image.MAX_IMAGE_PIXELS``, 89 Mpx) only warns below twice its value.
MAX_PIXELS = 100_000_000


def _check_pixels(path: Path, width: int, height: int, max_pixels: int | None) -> None:
    if max_pixels and width * height > max_pixels:
        raise HandposeError(f"{path}: image of {width} x {height} = {width * height / 1e6:.1f} Mpx is over the "
                            f"{max_pixels / 1e6:g} Mpx limit (raise it with --max-pixels)")


def _open(path: Path, max_pixels: int | None) -> Image.Image:
    """``Image.open`` with PIL's decompression-bomb guard replaced by ``max_pixels`` (None or 0: no limit)."""
    limit = Image.MAX_IMAGE_PIXELS
    try:
        # PIL raises DecompressionBombError (not an OSError) above twice its limit: the cap here decides instead
        Image.MAX_IMAGE_PIXELS = None
        im = Image.open(path)
    finally:
        Image.MAX_IMAGE_PIXELS = limit
    try:
        _check_pixels(path, im.width, im.height, max_pixels)
    except HandposeError:
        im.close()
        raise
    return im


def read_image(path: str | Path, exif_transpose: bool = False, max_pixels: int | None = MAX_PIXELS) -> np.ndarray:
    """Read an image file of any colour mode (grey, palette, RGBA, 16-bit, CMYK) as RGB.

    Args:
        path: image file.
        exif_transpose: rotate by the EXIF orientation tag, as a photo viewer shows it (for user photos;
            keep False for labelled data sets whose labels refer to the stored pixel grid).
        max_pixels: refuse images with more pixels than this (from the file header, before decoding); None or 0:
            no limit.

    Returns:
        ``(H, W, 3)`` uint8 array, RGB.

    Raises:
        HandposeError: the file is missing, not an image, truncated or corrupt, or over ``max_pixels``.
    """
    path = Path(path)
    if not path.is_file():
        raise HandposeError(f"{path}: image file not found" + (" (broken link)" if path.is_symlink() else ""))
    try:
        with _open(path, max_pixels) as im:
            im.load()
            if exif_transpose:
                im = ImageOps.exif_transpose(im)
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(im, dtype=np.float32)
                arr = (255.0 * (arr - arr.min()) / max(float(arr.max() - arr.min()), 1.0)).astype(np.uint8)
                im = Image.fromarray(arr)
            rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except HandposeError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError, MemoryError) as e:
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
        with _open(path, None) as im:
            return int(im.width), int(im.height)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise HandposeError(f"{path}: not a readable image ({e})") from e
