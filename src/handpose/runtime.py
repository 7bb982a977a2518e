"""Process-level speed settings: glibc's allocator and CPU threads."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
from collections.abc import Iterator

import torch

# mallopt parameter numbers from glibc's <malloc.h>.
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3


def tune_malloc(enable: bool = True) -> bool:
    """Stop glibc from returning freed memory to the OS after every training step.

    PyTorch's CPU allocator frees and re-allocates large activation buffers every step. With glibc's default
    thresholds each of them is an ``mmap``/``munmap`` pair plus page faults; raising ``M_MMAP_THRESHOLD``,
    ``M_TRIM_THRESHOLD`` and ``M_TOP_PAD`` keeps them in the heap. Measured here (2 cores, batch 32, 128 px):
    ShallowUNet training 9.5 -> 22 images/s, ResUNet 64 -> 86 images/s. Costs resident memory that is not
    given back until the process ends. Turned off by ``HANDPOSE_TUNE_MALLOC=0`` or ``enable=False``.

    Returns:
        True when the settings were applied (glibc found and the variable not set to 0).
    """
    if not enable or os.environ.get("HANDPOSE_TUNE_MALLOC", "1") == "0":
        return False
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        ok = [libc.mallopt(p, v) for p, v in ((M_MMAP_THRESHOLD, 1 << 30), (M_TRIM_THRESHOLD, 1 << 30),
                                              (M_TOP_PAD, 1 << 28))]
    except (OSError, AttributeError):
        return False
    return all(r == 1 for r in ok)


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with torch's intra-op thread count set to ``n`` (``None``: unchanged), then restore it.

    The predictor uses ``n = 1`` around its small torch operations when onnxruntime runs the network: torch's
    and onnxruntime's thread pools otherwise compete for the same cores. Measured here (2 cores, the bundled
    model, one 256x256 photo to keypoints): 8.0 ms median with both pools at 2 threads, 3.3 ms with torch at 1
    (``benchmarks/bench_speed.py`` measures the predictor as shipped).
    """
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
