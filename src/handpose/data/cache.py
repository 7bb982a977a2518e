"""A disk cache of decoded, letterboxed training inputs: built once, then memory-mapped by every run and worker.

Each cache entry is two ``.npy`` files in the cache folder, named by a SHA-1 key of everything that determines
their content (each record's image path, file size and modification time, its box and keypoints, the input size
and the pad mode), so a changed image or label makes a new entry instead of reusing a stale one.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from handpose.data.records import Record
from handpose.errors import HandposeError


def cache_key(records: list[Record], input_size: tuple[int, int], pad_mode: str) -> str:
    """SHA-1 (hex) of the records' image files (path, size, mtime), boxes and keypoints, the input size and pad mode.

    Raises:
        HandposeError: an image file that does not exist (named with its record).
    """
    h = hashlib.sha1(json.dumps([list(input_size), pad_mode]).encode())
    for r in records:
        try:
            st = os.stat(r.image_path)
        except OSError as e:
            raise HandposeError(f"record {r.record_id}: {r.image_path}: {e.strerror}") from e
        h.update(f"{Path(r.image_path).resolve()}|{st.st_size}|{st.st_mtime_ns}|".encode())
        h.update(np.asarray(r.box if r.box is not None else [], np.float32).tobytes())
        h.update(np.ascontiguousarray(r.keypoints, np.float32).tobytes())
    return h.hexdigest()


def cached_inputs(records: list[Record], input_size: tuple[int, int], pad_mode: str, folder: str | Path,
                  build) -> tuple[np.ndarray, np.ndarray]:
    """The stacked inputs of ``records`` from the cache in ``folder``, built with ``build()`` on a miss.

    Args:
        build: called on a miss; returns ``(images (N, in_h, in_w, 3) uint8, keypoints (N, 1, K, 2) float32)``.

    Returns:
        ``(images, keypoints)``; ``images`` is a read-only memory map of the cached file.

    Raises:
        HandposeError: as :func:`cache_key`, or a cache folder that cannot be written.
    """
    folder = Path(folder)
    key = cache_key(records, input_size, pad_mode)
    img_path, kp_path = folder / f"{key}.images.npy", folder / f"{key}.keypoints.npy"
    if not (img_path.is_file() and kp_path.is_file()):
        images, keypoints = build()
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for path, arr in ((kp_path, keypoints), (img_path, images)):  # images last: their file marks "complete"
                tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npy")
                np.save(tmp, arr)
                os.replace(tmp, path)
        except OSError as e:
            raise HandposeError(f"cache folder {folder}: {e.strerror or e}") from e
    return np.load(img_path, mmap_mode="r"), np.load(kp_path)
