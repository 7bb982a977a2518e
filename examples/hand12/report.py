"""Evaluate the HAND12 example model on its 9 validation photos and print one JSON line of its figures, with the
small-data article's own figures beside them (seed 001).

    python examples/hand12/report.py [--run runs/hand12_mediapipe_regression] [--data out/hand12]

The article (ImageNet ResNet-34, 384x288 input, 4000 epochs in 25.5 h on a GPU) reports a mean L1 coordinate error of
1.90 px on its validation photos and 0.46 px on its (augmented) training photos, in its 384x288 input pixels; its
within-0.1 / 0.01 accuracy is shown only as a plot. Ours: the share of coordinates within 0.1 and 0.01 of the label
in the model input's [-1, 1] units, the mean keypoint error (EPE) in original pixels, and the mean L1 coordinate error
in model-input pixels (the article's measure, at our input size).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from handpose import load_model
from handpose.data.coco import load_coco
from handpose.evaluate import evaluate, write_report

#: The small-data article's reported figures (seed 001): mean L1 coordinate error in its 384x288 input pixels.
ARTICLE = {"val_l1_input_px": 1.90, "train_l1_input_px": 0.46, "input_size": [384, 288], "epochs": 4000,
           "train_hours": 25.5, "backbone": "ImageNet ResNet-34"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", type=Path, default=Path("runs/hand12_mediapipe_regression"))
    ap.add_argument("--data", type=Path, default=Path("out/hand12"))
    ap.add_argument("--images", type=Path, default=Path("../shared/data/hgcnn-freihand/training/rgb"))
    args = ap.parse_args()
    bundle = load_model(args.run / "model.pt")
    records, _ = load_coco(args.data / "val.json", args.images, bundle.skeleton, margin=0.0)
    ev = evaluate(bundle, records)
    summary = ev.summary()
    write_report(ev, summary, args.run / "report", skeleton=bundle.skeleton)
    minutes = sum(load_model(p).card.get("train_minutes", 0.0) for p in sorted(args.run.glob("stage*/model.pt")))
    l1_input = float(np.abs(ev.pred_input - ev.gt_input)[ev.mask].mean())
    print(json.dumps({"within_0.1": round(summary["within_0.1"], 4), "within_0.01": round(summary["within_0.01"], 4),
                      "epe_px": round(summary["error_px"]["mean"], 2), "l1_input_px": round(l1_input, 2),
                      "input_size": list(bundle.input_size), "train_minutes": round(minutes, 1),
                      "n_val_images": summary["n_images"], "article": ARTICLE}))


if __name__ == "__main__":
    main()
