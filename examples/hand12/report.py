"""Evaluate the HAND12 example model on its 9 validation photos and print one JSON line of its figures.

    python examples/hand12/report.py [--run runs/hand12_resnet18_regression] [--data out/hand12]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from handpose import load_model
from handpose.data.coco import load_coco
from handpose.evaluate import evaluate, write_report


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", type=Path, default=Path("runs/hand12_resnet18_regression"))
    ap.add_argument("--data", type=Path, default=Path("out/hand12"))
    ap.add_argument("--images", type=Path, default=Path("../shared/data/hgcnn-freihand/training/rgb"))
    args = ap.parse_args()
    bundle = load_model(args.run / "model.pt")
    records, _ = load_coco(args.data / "val.json", args.images, bundle.skeleton, margin=0.0)
    ev = evaluate(bundle, records)
    summary = ev.summary()
    write_report(ev, summary, args.run / "report", skeleton=bundle.skeleton)
    minutes = sum(load_model(p).card.get("train_minutes", 0.0) for p in sorted(args.run.glob("stage*/model.pt")))
    print(json.dumps({"within_0.1": round(summary["within_0.1"], 4), "within_0.01": round(summary["within_0.01"], 4),
                      "epe_px": round(summary["error_px"]["mean"], 2), "train_minutes": round(minutes, 1),
                      "n_val_images": summary["n_images"]}))


if __name__ == "__main__":
    main()
