"""Inference latency and training throughput on this machine; prints a table and one JSON line.

    python benchmarks/bench_speed.py [--freihand ../shared/data/hgcnn-freihand]

Latency: batch 1, one 256x256 real photo to keypoints in original pixels (read excluded; warp, normalise, forward,
decode, map back included), median of 50 runs after 5 warm-up runs; also the network forward alone.
Training: images/s of one optimisation step (forward, IoU loss, backward, Adam) at batch 32 on real augmented
crops, median of 8 steps, each model in a fresh process with and without the glibc allocator tuning of
``handpose.runtime.tune_malloc``. The loader column is the rate at which one process produces augmented,
encoded samples.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
MODELS = ("resunet", "shallow_unet")


def _batch(root: Path, model_name: str, batch: int):
    from handpose import HAND21
    from handpose.codecs.heatmap import HeatmapCodec
    from handpose.data import load_freihand
    from handpose.data.dataset import KeypointDataset
    from handpose.data.transforms import AugmentConfig
    from handpose.models import create_model

    model = create_model(model_name, 21)
    codec = HeatmapCodec((128, 128), model.stride, 1.5 if model.stride > 1 else 2.5)
    ds = KeypointDataset(load_freihand(root, "train", limit=64), HAND21, codec, augment=AugmentConfig())
    t = time.perf_counter()
    samples = [ds[i % len(ds)] for i in range(batch)]
    loader_rate = batch / (time.perf_counter() - t)
    return model, torch.utils.data.default_collate(samples), loader_rate


def train_rate(root: Path, model_name: str, tune: bool, batch: int = 32, steps: int = 8) -> dict:
    """Images/s of training steps (run in a fresh process: the allocator setting is process-wide)."""
    from handpose.losses import iou_loss
    from handpose.runtime import tune_malloc

    tuned = tune_malloc(tune)
    model, b, loader_rate = _batch(root, model_name, batch)
    opt = torch.optim.Adam(model.parameters())
    model.train()
    times = []
    for _ in range(steps + 2):
        t = time.perf_counter()
        loss = iou_loss(model(b["image"]), b["target"], b["weights"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t)
    return {"model": model_name, "malloc_tuned": tuned, "train_img_s": batch / float(np.median(times[2:])),
            "loader_img_s": loader_rate}


def latency(model_name: str | None, image: np.ndarray, runs: int = 50) -> dict:
    from handpose import Predictor, load_model
    from handpose.models import create_model

    if model_name is None:
        bundle = load_model()
        label = f"bundled ({bundle.arch})"
    else:  # same pipeline with an untrained network of another architecture (speed only)
        bundle = load_model()
        bundle.network = create_model(model_name, 21).eval()
        from handpose.codecs.heatmap import HeatmapCodec

        bundle.codec = HeatmapCodec((128, 128), bundle.network.stride, 2.5)
        label = model_name
    pred = Predictor(bundle, batch_size=1)
    x = torch.randn(1, 3, 128, 128)
    full, net = [], []
    with torch.inference_mode():
        for i in range(runs + 5):
            t = time.perf_counter()
            pred.predict_arrays([image])
            t1 = time.perf_counter()
            bundle.network(x)
            t2 = time.perf_counter()
            if i >= 5:
                full.append(t1 - t)
                net.append(t2 - t1)
    return {"model": label, "latency_ms": 1000 * float(np.median(full)), "forward_ms": 1000 * float(np.median(net))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--freihand", type=Path, default=REPO.parent / "shared" / "data" / "hgcnn-freihand")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(train_rate(args.freihand, args.child[0], args.child[1] == "1")))
        return
    from handpose.data.image import read_image

    image = read_image(REPO / "examples" / "hands" / "hgcnn_460.jpg")
    lat = [latency(None, image)] + [latency(m, image) for m in MODELS]
    rates = []
    for m in MODELS:
        for tune in ("0", "1"):
            out = subprocess.run([sys.executable, __file__, "--freihand", str(args.freihand), "--child", m, tune],
                                 capture_output=True, text=True, check=True, env={**os.environ})
            rates.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    print(f"\n{'inference (batch 1, 256x256 photo)':40s} {'median ms':>10s} {'forward ms':>11s}")
    for r in lat:
        print(f"{r['model']:40s} {r['latency_ms']:10.2f} {r['forward_ms']:11.2f}")
    print(f"\n{'training (batch 32, 128x128)':30s} {'malloc tuned':>12s} {'step img/s':>11s} {'loader img/s':>13s}")
    for r in rates:
        print(f"{r['model']:30s} {str(r['malloc_tuned']):>12s} {r['train_img_s']:11.1f} {r['loader_img_s']:13.1f}")
    train = {f"{r['model']}{'+malloc' if r['malloc_tuned'] else ''}": round(r["train_img_s"], 1) for r in rates}
    print(json.dumps({"latency_ms": {r["model"]: round(r["latency_ms"], 3) for r in lat}, "train_img_s": train}))


if __name__ == "__main__":
    main()
