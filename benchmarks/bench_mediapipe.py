"""handpose's default model side by side with MediaPipe Hands on the same real images, in one run.

    python benchmarks/bench_mediapipe.py [--mediapipe-python .venv-mediapipe/bin/python] [--model NAME_OR_FILE]
        [--coco-ann out/multi/hands_heldout.json]

Images: the hgcnn-freihand val split (73 photos, 256x256) and square crops of the coco-wholebody-hands hands
(bbox grown by 25% of its longer side on each side, resized to 256x256). MediaPipe 0.10.21 runs in its own
environment (``make bench`` creates it), with ``static_image_mode=True`` and ``max_num_hands=1``, at
``model_complexity`` 0 and 1: per image it runs the palm detector and then the landmark model on the detected
region; when the detector finds no palm, no hand is returned. handpose runs its default single-hand model on the
whole crop (one network, no detector; through onnxruntime and through PyTorch eager): it always returns a hand.
Latency: one image at a time, image already decoded, pre- and post-processing included. The JSON line pairs
handpose (onnxruntime) with the faster MediaPipe run for latency and the more accurate one for error.
Metrics over images where the pipeline returned a hand: mean and median keypoint error (px of the 256x256 image)
and PCK@0.2 of the hand's keypoint box. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from handpose import Predictor, load_model
from handpose import metrics as M
from handpose.data import load_coco, load_freihand
from handpose.data.dataset import load_input
from handpose.data.image import read_image
from handpose.export import export_onnx, load_onnx

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"


def build_sets(tmp: Path, coco_ann: Path) -> dict[str, tuple[list[Path], np.ndarray, np.ndarray]]:
    sets = {}
    val = load_freihand(DATA / "hgcnn-freihand", "val")
    sets["hgcnn-freihand val"] = ([r.image_path for r in val], np.stack([r.keypoints[0] for r in val]),
                                  np.stack([r.visible[0] > 0 for r in val]))
    recs, _ = load_coco(coco_ann,
                        DATA / "coco-wholebody-hands" / "images", margin=0.25)
    paths, kps = [], []
    for i, r in enumerate(recs):
        img, kp, _ = load_input(r, (256, 256))
        p = tmp / f"coco_hand_{i:03d}.png"
        cv2.imwrite(str(p), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        paths.append(p)
        kps.append(kp[0])
    sets["coco-wholebody-hands crops"] = (paths, np.stack(kps), np.stack([r.visible[0] > 0 for r in recs]))
    return sets


def run_handpose(paths: list[Path], model) -> tuple[np.ndarray, list[float]]:
    pred = Predictor(model, batch_size=1)
    images = [read_image(p) for p in paths]
    for _ in range(3):
        pred.predict_arrays(images[:1])
    kps, ms = [], []
    for img in images:
        t = time.perf_counter()
        r = pred.predict_arrays([img])[0]
        ms.append(1000 * (time.perf_counter() - t))
        kps.append(r.keypoints[0])
    return np.stack(kps), ms


def run_mediapipe(python: str, paths: list[Path], complexity: int) -> tuple[list, list[float]]:
    env = {**os.environ, "GLOG_minloglevel": "2", "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run([python, str(REPO / "benchmarks" / "_mediapipe_worker.py"), str(complexity)],
                         input=json.dumps([str(p) for p in paths]), capture_output=True, text=True, check=True, env=env)
    rows = json.loads(out.stdout.strip().splitlines()[-1])
    return [r["keypoints"] for r in rows], [r["ms"] for r in rows]


def score(pred: list, gt: np.ndarray, mask: np.ndarray) -> dict:
    found = np.array([p is not None for p in pred])
    if not found.any():
        return {"epe_px": float("nan"), "median_px": float("nan"), "pck@0.2": float("nan"), "missing": len(pred),
                "per_image": np.full(len(pred), np.nan)}
    p = np.stack([np.asarray(x, np.float64) for x, f in zip(pred, found, strict=True) if f])
    e = M.keypoint_errors(p, gt[found], mask[found])
    per_image = np.full(len(pred), np.nan)
    per_image[found] = np.nanmean(e, axis=1)
    return {"epe_px": float(np.nanmean(e)), "median_px": float(np.nanmedian(e)),
            "pck@0.2": M.pck(p, gt[found], mask[found], 0.2, M.keypoint_box_size(gt[found], mask[found])),
            "missing": int((~found).sum()), "per_image": per_image}


def head_to_head(rows: list, paths: dict) -> None:
    """Per image: where handpose (onnxruntime) has the lower mean error than each MediaPipe run, and the photos
    that cost handpose most."""
    for name in paths:
        hp = next(r[3]["per_image"] for r in rows if r[0] == name and r[1] == "handpose onnx")
        for label, s in ((r[1], r[3]) for r in rows if r[0] == name and r[1].startswith("mediapipe")):
            both = ~np.isnan(s["per_image"])
            wins = int((hp[both] < s["per_image"][both]).sum())
            print(f"{name}: handpose onnx has the lower error on {wins} of {int(both.sum())} images "
                  f"that {label} returned a hand for")
        worst = np.argsort(-np.nan_to_num(hp, nan=-1))[:8]
        print(f"{name}: handpose's worst images: "
              + ", ".join(f"{paths[name][i].name} {hp[i]:.1f} px" for i in worst))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mediapipe-python", default=str(REPO / ".venv-mediapipe" / "bin" / "python"))
    ap.add_argument("--complexity", type=int, nargs="+", default=[0, 1],
                    help="MediaPipe model_complexity values to run (0: faster, 1: more accurate)")
    ap.add_argument("--coco-ann", type=Path, default=DATA / "coco-wholebody-hands" / "annotations" / "hands_val.json",
                    help="the COCO hands to crop (for a model trained on some of them: the held-out part only)")
    ap.add_argument("--model", default=None, help="handpose model name or file (default: the bundled default)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_mp_"))
    sets = build_sets(tmp, args.coco_ann)
    export_onnx(load_model(args.model), tmp / "default.onnx")
    handpose_runs = {"handpose onnx": load_onnx(tmp / "default.onnx"), "handpose torch": load_model(args.model)}
    rows = []
    for name, (paths, gt, mask) in sets.items():
        runs = [(label, *run_handpose(paths, model)) for label, model in handpose_runs.items()]
        runs += [(f"mediapipe c{c}", *run_mediapipe(args.mediapipe_python, paths, c)) for c in args.complexity]
        for label, kp, ms in runs:
            rows.append((name, label, len(paths), score(list(kp), gt, mask), float(np.median(ms))))
    print(f"machine: {os.cpu_count()} cores; MediaPipe static_image_mode=True, max_num_hands=1")
    print(f"{'images':28s} {'pipeline':14s} {'n':>4s} {'mean px':>8s} {'median px':>10s} {'PCK@0.2':>8s} "
          f"{'missing':>8s} {'ms/image':>9s}")
    for name, label, n, s, ms in rows:
        print(f"{name:28s} {label:14s} {n:4d} {s['epe_px']:8.2f} {s['median_px']:10.2f} {s['pck@0.2']:8.3f} "
              f"{s['missing']:8d} {ms:9.2f}")
    head_to_head(rows, {name: v[0] for name, v in sets.items()})
    fh = {r[1]: r for r in rows if r[0] == "hgcnn-freihand val"}
    mp = [r for label, r in fh.items() if label.startswith("mediapipe")]
    hp = fh["handpose onnx"]
    line = {"n_images": sum(len(v[0]) for v in sets.values()),
            # the strictest pairing: handpose (onnxruntime) against MediaPipe's fastest and its most accurate run
            "handpose_latency_ms": round(hp[4], 2), "mediapipe_latency_ms": round(min(r[4] for r in mp), 2),
            "handpose_epe_px": round(hp[3]["epe_px"], 2),
            "mediapipe_epe_px": round(min(r[3]["epe_px"] for r in mp), 2),
            "handpose_missing": sum(r[3]["missing"] for r in rows if r[1] == "handpose onnx"),
            "mediapipe_missing": min(sum(r[3]["missing"] for r in rows if r[1] == f"mediapipe c{c}")
                                     for c in args.complexity),
            "per_set": {f"{r[0]} / {r[1]}": {**{k: round(v, 3) for k, v in r[3].items() if k != "per_image"},
                                              "ms": round(r[4], 2)}
                        for r in rows}}
    print(json.dumps(line))


if __name__ == "__main__":
    main()
