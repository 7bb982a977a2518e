"""ShallowUNet vs ResNet-18 heatmap vs ResNet-18 regression, trained the same number of steps on the
hgcnn-freihand train split and measured on its val split: keypoint error and inference latency in one table.

    python benchmarks/bench_models.py [--steps 300] [--freihand ../shared/data/hgcnn-freihand]

Each model: 128x128 input, batch 16, Adam 1e-3, the default augmentation, ``--steps`` optimisation steps
(10 per epoch), no pretrained weights. Latency: batch 1, one 256x256 photo to keypoints (pre- and post-processing
included), median of 30 runs. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from handpose import Predictor, load_model
from handpose.config import load_config
from handpose.data import load_freihand
from handpose.data.image import read_image
from handpose.evaluate import evaluate
from handpose.train import train

REPO = Path(__file__).resolve().parents[1]
MODELS = (("shallow_unet", "iou", 2.5), ("resnet18_heatmap", "iou", 1.5), ("resnet18_regression", "l1", 0.0))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--freihand", type=Path, default=REPO.parent / "shared" / "data" / "hgcnn-freihand")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--out", type=Path, default=Path(tempfile.mkdtemp(prefix="bench_models_")))
    args = ap.parse_args()
    val = load_freihand(args.freihand, "val")
    image = read_image(REPO / "examples" / "hands" / "hgcnn_460.jpg")
    rows = []
    for name, loss, sigma in MODELS:
        cfg = load_config(None, [
            "dataset=freihand", f"data_root={args.freihand}", f"model={name}", f"loss={loss}", f"sigma={sigma or 1.0}",
            "input_size=128", "batch_size=16", "limit_train_batches=10", f"max_epochs={args.steps // 10}",
            "early_stop_patience=0", "lr_patience=1000", f"out_dir={args.out}", f"name={name}", "num_workers=1"])
        t = time.time()
        result = train(cfg, progress=False)
        minutes = (time.time() - t) / 60
        bundle = load_model(result["model"])
        s = evaluate(bundle, val).summary()
        pred = Predictor(bundle, batch_size=1)
        times = []
        for i in range(35):
            t0 = time.perf_counter()
            pred.predict_arrays([image])
            if i >= 5:
                times.append(time.perf_counter() - t0)
        params = sum(p.numel() for p in bundle.network.parameters()) / 1e6
        rows.append({"model": name, "params_m": round(params, 2), "steps": args.steps,
                     "train_minutes": round(minutes, 1), "epe_px": round(s["error_px"]["mean"], 2),
                     "median_px": round(s["error_px"]["median"], 2),
                     "pck@0.1": round(s["pck@0.1"], 3), "latency_ms": round(1000 * float(np.median(times)), 2)})
    print(f"\nhgcnn-freihand val split ({len(val)} photos, 256x256), {args.steps} steps of batch 16 each")
    head = f"{'model':22s} {'params M':>9s} {'train min':>10s} {'mean px':>8s} {'median px':>10s} {'PCK@0.1':>8s} " \
           f"{'latency ms':>11s}"
    print(head)
    for r in rows:
        print(f"{r['model']:22s} {r['params_m']:9.2f} {r['train_minutes']:10.1f} {r['epe_px']:8.2f} "
              f"{r['median_px']:10.2f} {r['pck@0.1']:8.3f} {r['latency_ms']:11.2f}")
    print(json.dumps({r["model"]: {k: v for k, v in r.items() if k != "model"} for r in rows}))


if __name__ == "__main__":
    main()
