"""How bottom-up inference and grouping time grow with the number of instances in the image.

    python benchmarks/bench_grouping.py

For n = 1, 2, 4, 8, 16 hands: real hgcnn-freihand photos tiled into one 256x256 image (a 1x1, 2x1, 2x2, 4x2 or
4x4 grid), their exact heatmap + PAF targets at stride 8 (what a perfect network would output) grouped by
``handpose.grouping.group`` (median of 20 runs), and the untrained Lightweight OpenPose forward pass on the image
(median of 10), which does not depend on n. Also counts the instances grouping returns. Ends with one JSON line.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from handpose import HAND21
from handpose.codecs.paf import PafCodec
from handpose.data import load_freihand
from handpose.data.bottomup import place
from handpose.grouping import group
from handpose.models import create_model

REPO = Path(__file__).resolve().parents[1]
GRIDS = {1: (1, 1), 2: (2, 1), 4: (2, 2), 8: (4, 2), 16: (4, 4)}


def tiled(records, n: int, size: int = 256):
    cols, rows = GRIDS[n]
    cw, ch = size // cols, size // rows
    kps = []
    for i, r in enumerate(records[:n]):
        _, kp, _ = place(r, (cw, ch))
        kps.append(kp[0] + np.float32(((i % cols) * cw, (i // cols) * ch)))
    return np.stack(kps)


def main() -> None:
    recs = load_freihand(REPO.parent / "shared" / "data" / "hgcnn-freihand", "val")
    codec = PafCodec(HAND21, (256, 256), stride=8, sigma=1.0)
    net = create_model("lightweight_openpose", 21, num_limbs=len(HAND21.limbs)).eval()
    x = torch.randn(1, 3, 256, 256)
    with torch.inference_mode():
        for _ in range(2):
            net(x)
        fwd = []
        for _ in range(10):
            t = time.perf_counter()
            net(x)
            fwd.append(time.perf_counter() - t)
    forward_ms = 1000 * float(np.median(fwd))
    rows = []
    for n in GRIDS:
        kp = tiled(recs, n)
        heat, pafs = codec.encode(kp, np.full(kp.shape[:2], 2))
        times = []
        for _ in range(20):
            t = time.perf_counter()
            inst = group(heat, pafs, HAND21)
            times.append(time.perf_counter() - t)
        rows.append({"instances": n, "found": len(inst.keypoints), "grouping_ms": 1000 * float(np.median(times)),
                     "total_ms": forward_ms + 1000 * float(np.median(times))})
    print(f"Lightweight OpenPose forward, 256x256, 1 refinement stage: {forward_ms:.1f} ms (independent of n)")
    print(f"{'instances':>9s} {'found':>6s} {'grouping ms':>12s} {'total ms':>9s}")
    for r in rows:
        print(f"{r['instances']:9d} {r['found']:6d} {r['grouping_ms']:12.2f} {r['total_ms']:9.1f}")
    print(json.dumps({"forward_ms": round(forward_ms, 2),
                      "grouping_ms": {r["instances"]: round(r["grouping_ms"], 2) for r in rows},
                      "found": {r["instances"]: r["found"] for r in rows}}))


if __name__ == "__main__":
    main()
