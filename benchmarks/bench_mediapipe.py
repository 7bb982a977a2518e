"""handpose's models side by side with MediaPipe Hands on the same real images, in one run.

    python benchmarks/bench_mediapipe.py [--mediapipe-python .venv-mediapipe/bin/python]
        [--model NAME_OR_FILE ...] [--coco-ann out/multi/hands_heldout.json] [--teacher-limit 200] [--no-baselines]

Images, all as 256x256 crops (pixels of that crop are the unit of every error):

- ``hgcnn-freihand val``: the 73 val photos (people's labels; 256x256 already);
- ``coco-wholebody-hands crops``: square crops of the COCO hands of ``--coco-ann`` (people's labels; bbox grown by
  25 % of its longer side on each side; by default all 65, for a model trained on some of them the held-out file
  that ``examples/multi/split_hands.py`` writes);
- with ``--teacher-limit N``: the first N hands of the ``hagrid-teacher`` and ``freihand-teacher`` val splits, cropped
  the same way. Their labels are MediaPipe's own (the teacher), so MediaPipe scores well there by construction.

Pipelines: each handpose ``--model`` (default: the bundled default) on the whole crop through onnxruntime (one
network, no detector: it always returns a hand), plus as baselines ``MediaPipe landmark alone``: MediaPipe's hand
landmark networks (full and lite, imported: within 2e-4 px of LiteRT, see docs/pretrained.md) unchanged on the same
crops, and MediaPipe Hands 0.10.21 in its own environment (``make bench`` creates it) with
``static_image_mode=True``, ``max_num_hands=1``, ``model_complexity`` 0 and 1: per image its palm detector, then its
landmark model on the detected region; when the detector finds no palm, no hand is returned.

Per set: mean and median keypoint error (px of the 256 crop), PCK@0.05 and PCK@0.2 of the hand's keypoint box, over
images where the pipeline returned a hand, and how many it missed. Per pipeline: latency of one crop at batch 1 (image
decoded; pre- and post-processing included), images/s at batch 32, parameters, GFLOPs and training minutes (from
the model card). On the COCO crops, the first ``--model`` against each baseline on the same crops: those the
baseline returned a hand for (``coco_crops_same_crops``; the target compares these). Ends with one JSON line with the
issue-11 targets checked for the first ``--model``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
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
sys.path.insert(0, str(REPO / "benchmarks"))
from bench_speed import gflops, time_predictor  # noqa: E402

CROP = (256, 256)
HGCNN, COCO = "hgcnn-freihand val", "coco-wholebody-hands crops"


def crop_set(tmp: Path, name: str, records) -> tuple[list[Path], np.ndarray, np.ndarray]:
    """Records -> 256x256 crops written to ``tmp`` (PNG), their keypoints in crop pixels and label masks."""
    paths, kps = [], []
    for i, r in enumerate(records):
        img, kp, _ = load_input(r, CROP)
        p = tmp / f"{name.replace(' ', '_')}_{i:04d}.png"
        cv2.imwrite(str(p), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        paths.append(p)
        kps.append(kp[0])
    return paths, np.stack(kps), np.stack([r.visible[0] > 0 for r in records])


def build_sets(tmp: Path, coco_ann: Path, teacher_limit: int = 0) -> dict[str, tuple[list[Path], np.ndarray,
                                                                                       np.ndarray]]:
    val = load_freihand(DATA / "hgcnn-freihand", "val")
    sets = {HGCNN: ([r.image_path for r in val], np.stack([r.keypoints[0] for r in val]),
                    np.stack([r.visible[0] > 0 for r in val]))}
    recs, _ = load_coco(coco_ann, DATA / "coco-wholebody-hands" / "images", margin=0.25)
    sets[COCO] = crop_set(tmp, "coco", recs)
    for name in ("hagrid", "freihand") if teacher_limit else ():
        root = DATA / f"{name}-teacher"
        recs, _ = load_coco(root / "annotations" / "val.json", root / "images", margin=0.25)
        sets[f"{name}-teacher val (teacher labels)"] = crop_set(tmp, name, recs[:teacher_limit])
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
        return {"epe_px": float("nan"), "median_px": float("nan"), "pck@0.05": float("nan"),
                "pck@0.2": float("nan"), "missing": len(pred), "per_image": np.full(len(pred), np.nan)}
    p = np.stack([np.asarray(x, np.float64) for x, f in zip(pred, found, strict=True) if f])
    e = M.keypoint_errors(p, gt[found], mask[found])
    per_image = np.full(len(pred), np.nan)
    per_image[found] = np.nanmean(e, axis=1)
    box = M.keypoint_box_size(gt[found], mask[found])
    return {"epe_px": float(np.nanmean(e)), "median_px": float(np.nanmedian(e)),
            "pck@0.05": M.pck(p, gt[found], mask[found], 0.05, box),
            "pck@0.2": M.pck(p, gt[found], mask[found], 0.2, box),
            "missing": int((~found).sum()), "per_image": per_image}


def model_facts(bundle, onnx_model, image: np.ndarray, runs: int) -> dict:
    """Parameters (M), GFLOPs at the model's input, onnxruntime ms at batch 1 (median) and images/s at batch 32,
    training minutes from the card."""
    med, _, thr = time_predictor(Predictor(onnx_model, 1), image, runs)
    return {"params_m": sum(p.numel() for p in bundle.network.parameters()) / 1e6,
            "gflops": gflops(bundle.network, bundle.input_size), "input": "x".join(map(str, bundle.input_size)),
            "onnx_ms_b1": med, "onnx_img_s_b32": thr, "train_minutes": bundle.card.get("train_minutes")}


def head_to_head(rows: list, paths: dict, label: str) -> None:
    """Per image: where ``label`` has the lower mean error than each MediaPipe run, and the photos that cost it most."""
    for name in paths:
        hp = next(r[3]["per_image"] for r in rows if r[0] == name and r[1] == label)
        for other, s in ((r[1], r[3]) for r in rows if r[0] == name and r[1].startswith("mediapipe")):
            both = ~np.isnan(s["per_image"])
            wins = int((hp[both] < s["per_image"][both]).sum())
            print(f"{name}: {label} has the lower error on {wins} of {int(both.sum())} images that {other} "
                  "returned a hand for")
        worst = np.argsort(-np.nan_to_num(hp, nan=-1))[:6]
        print(f"{name}: {label}'s worst images: " + ", ".join(f"{paths[name][i].name} {hp[i]:.1f} px" for i in worst))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mediapipe-python", default=str(REPO / ".venv-mediapipe" / "bin" / "python"))
    ap.add_argument("--complexity", type=int, nargs="+", default=[0, 1],
                    help="MediaPipe model_complexity values to run (0: faster, 1: more accurate)")
    ap.add_argument("--coco-ann", type=Path, default=DATA / "coco-wholebody-hands" / "annotations" / "hands_val.json",
                    help="the COCO hands to crop (for a model trained on some of them: the held-out part only)")
    ap.add_argument("--model", action="append", default=None,
                    help="handpose model name or file (repeatable; default: the bundled default)")
    ap.add_argument("--teacher-limit", type=int, default=0, help="also N hands of two teacher-labelled val splits")
    ap.add_argument("--no-baselines", action="store_true", help="skip MediaPipe's landmark networks alone")
    ap.add_argument("--runs", type=int, default=50, help="timed runs for the batch-1 latency")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_mp_"))
    sets = build_sets(tmp, args.coco_ann, args.teacher_limit)
    names = args.model or [None]
    models = {}
    for i, name in enumerate(names):
        bundle = load_model(name)
        label = "handpose " + (Path(name).parent.name if name and Path(name).suffix else (name or "default"))
        export_onnx(bundle, tmp / f"m{i}.onnx")
        models[label] = (bundle, load_onnx(tmp / f"m{i}.onnx"))
    if not args.no_baselines:
        for variant in ("full", "lite"):
            bundle = load_model(f"mediapipe_hand_{variant}")
            export_onnx(bundle, tmp / f"mp_{variant}.onnx")
            models[f"MediaPipe landmark {variant} alone"] = (bundle, load_onnx(tmp / f"mp_{variant}.onnx"))
    first = read_image(sets[HGCNN][0][0])
    facts = {label: model_facts(bundle, onnx, first, args.runs) for label, (bundle, onnx) in models.items()}
    rows, mp_ms, preds = [], {}, {}
    for name, (paths, gt, mask) in sets.items():
        runs = [(label, *run_handpose(paths, onnx)) for label, (_, onnx) in models.items()]
        runs += [(f"mediapipe c{c}", *run_mediapipe(args.mediapipe_python, paths, c)) for c in args.complexity]
        for label, kp, ms in runs:
            preds[(name, label)] = list(kp)
            rows.append((name, label, len(paths), score(list(kp), gt, mask), float(np.median(ms))))
            if label.startswith("mediapipe"):
                mp_ms.setdefault(label, []).extend(ms)
    print(f"machine: {os.cpu_count()} cores; MediaPipe static_image_mode=True, max_num_hands=1; errors in px of "
          "256x256 crops")
    print(f"{'images':40s} {'pipeline':36s} {'n':>4s} {'mean px':>8s} {'median':>7s} {'PCK.05':>7s} {'PCK.2':>6s} "
          f"{'missing':>8s}")
    for name, label, n, s, _ in rows:
        print(f"{name:40s} {label:36s} {n:4d} {s['epe_px']:8.2f} {s['median_px']:7.2f} {s['pck@0.05']:7.3f} "
              f"{s['pck@0.2']:6.3f} {s['missing']:8d}")
    print(f"\n{'pipeline':36s} {'input':>8s} {'params M':>9s} {'GFLOPs':>7s} {'ORT ms b1':>10s} {'ORT img/s b32':>14s} "
          f"{'train min':>10s}")
    for label, f in facts.items():
        tm = f"{f['train_minutes']:.0f}" if f["train_minutes"] else "-"
        print(f"{label:36s} {f['input']:>8s} {f['params_m']:9.2f} {f['gflops']:7.3f} {f['onnx_ms_b1']:10.2f} "
              f"{f['onnx_img_s_b32']:14.1f} {tm:>10s}")
    mp_median = {label: float(np.median(ms)) for label, ms in mp_ms.items()}
    for label, ms in mp_median.items():
        print(f"{label:36s} {'':>8s} {'':>9s} {'':>7s} {ms:10.2f}   (MediaPipe's own runtime, palm detector included)")
    main_label = next(iter(models))
    head_to_head(rows, {name: v[0] for name, v in sets.items() if "teacher" not in name}, main_label)
    by = {(r[0], r[1]): r for r in rows}
    hp_coco, hp_fh = by[(COCO, main_label)][3], by[(HGCNN, main_label)][3]
    baselines = [lab for lab in {r[1] for r in rows} if lab.startswith("mediapipe") or "alone" in lab]
    # each baseline against the default on the same crops: those the baseline returned a hand for (all of them for
    # the landmark networks alone; MediaPipe Hands' palm detector misses some)
    _, coco_gt, coco_mask = sets[COCO]
    same_crops = {}
    for lab in sorted(baselines):
        answered = [k is not None for k in preds[(COCO, lab)]]
        mine = score([k if a else None for k, a in zip(preds[(COCO, main_label)], answered, strict=True)], coco_gt,
                     coco_mask)
        same_crops[lab] = {"crops": int(sum(answered)), "baseline_mean_px": round(by[(COCO, lab)][3]["epe_px"], 2),
                           "handpose_mean_px": round(mine["epe_px"], 2)}
        print(f"{COCO}: on the {sum(answered)} crops {lab} returned a hand for: {main_label} "
              f"{mine['epe_px']:.2f} px, {lab} {by[(COCO, lab)][3]['epe_px']:.2f} px")
    c0 = mp_median.get("mediapipe c0", float("nan"))
    line = {
        "model": main_label, "n_images": sum(len(v[0]) for v in sets.values()),
        "coco_crops_mean_px": round(hp_coco["epe_px"], 2), "coco_crops_missing": hp_coco["missing"],
        "coco_crops_baselines_mean_px": {lab: round(by[(COCO, lab)][3]["epe_px"], 2) for lab in sorted(baselines)},
        "coco_crops_same_crops": same_crops,
        "hgcnn_val_mean_px": round(hp_fh["epe_px"], 2),
        "onnx_ms_b1": round(facts[main_label]["onnx_ms_b1"], 2), "mediapipe_c0_ms": round(c0, 2),
        "targets": {
            "coco_crops_below_every_baseline": bool(hp_coco["missing"] == 0 and all(
                v["handpose_mean_px"] < v["baseline_mean_px"] for v in same_crops.values())),
            "hgcnn_val_at_most_8px": bool(hp_fh["epe_px"] <= 8.0),
            "onnx_at_most_6ms": bool(facts[main_label]["onnx_ms_b1"] <= 6.0),
            "at_least_3x_faster_than_mediapipe_c0": bool(c0 >= 3 * facts[main_label]["onnx_ms_b1"])},
        "per_set": {f"{r[0]} / {r[1]}": {**{k: round(v, 3) for k, v in r[3].items() if k != "per_image"},
                                          "ms": round(r[4], 2)} for r in rows}}
    print(json.dumps(line))


if __name__ == "__main__":
    main()
