"""Every hand in whole photos: handpose top-down (torch and onnxruntime), bottom-up and MediaPipe Hands, in one run.

    python benchmarks/bench_photos.py [--mediapipe-python .venv-mediapipe/bin/python] [--per-count 10]
        [--counts 1 2 4 8] [--hgcnn 73] [--threads 0] [--bottom-up runs/hands_openpose_coco/model.pt]
        [--bottom-up-size 960 960] [--bottom-up-upsample 4] [--tiles 3] [--no-fast]

Photo sets (people's labels throughout):

- ``coco held-out``: the 10 held-out coco-wholebody-hands photos (``out/multi/hands_heldout.json``, written by
  ``examples/multi/split_hands.py``, run here when missing): 28 hands, many small;
- ``hgcnn``: hgcnn-freihand val photos (256 x 256, one hand each);
- ``composite N``: for N in 1, 2, 4, 8, ``--per-count`` 640 x 480 photos with N hgcnn-freihand *train* hands
  (48-160 px, turned up to 45 degrees, half of them mirrored) pasted into coco-person-mini train2017 photos
  (:mod:`handpose.data.composite`; only backgrounds whose people all have both wrists labelled; their hands are
  ignore regions).

Pipelines: ``handpose torch`` and ``handpose onnx``: :class:`handpose.detect.topdown.TopDownPipeline`
(palm_detection_full + mediapipe_hand_full) in PyTorch and in onnxruntime (the two files exported once into the
cache folder), both with ``--threads`` threads; ``handpose onnx tN``: the onnxruntime pipeline with palm detection
also on N x N tiles (``--tiles``, default 3; :mod:`handpose.detect.tiles`); ``handpose onnx fit``: the onnxruntime
pipeline with the palm detector's letterbox fitted to the photo (``fit_input=True``: 192 x 160 for 640 x 480);
``handpose onnx fast``: the fastest configuration, palm_detection_lite on a fitted letterbox of 160 px
(``detector_side=160``: 160 x 128 for 640 x 480) and the bundled ``hand21_mediapipe_lite_upright`` keypoint model
(the default's network trained on upright crops, as the pipeline gives it; both rows unless ``--no-fast``);
``mediapipe``: MediaPipe Hands 0.10.21
(``static_image_mode=True``, ``max_num_hands=20``, ``model_complexity`` 1) in its own environment
(``benchmarks/_mediapipe_worker.py``). A hand counts when its
presence is at least 0.5, MediaPipe's own rule for dropping landmarks (handpose: ``Result.presence``; MediaPipe
applies it inside). ``handpose bottom-up``: a bottom-up hand model (``--bottom-up``, default the one
``configs/hands_openpose_coco.yaml`` fine-tunes from the imported ``lightweight_openpose_coco`` body model; skipped
when the file is missing), whole photos letterboxed into its ``predict_size`` (or ``--bottom-up-size``), with
``--threads`` threads; every grouped hand counts (no presence), ranked by its mean keypoint score.

Per set and pipeline: ``found`` = labelled hands matched by a kept hand (one to one, closest first; a pair matches
when the mean distance over the label's keypoints is below half the longer side of its keypoint box; a bottom-up
hand that misses keypoints is measured on those it has, and needs at least half the label's), ``extra`` =
kept hands matched to no label and outside the ignore regions (on coco photos these include real hands without a
label), ``err px`` = mean keypoint error of the found hands (pixels of the photo), ``AP`` = COCO keypoint AP
(pycocotools, hand OKS sigmas of COCO-WholeBody, :func:`handpose.coco_eval.coco_keypoint_ap`; ranked by handpose's
``detection score x presence`` and by MediaPipe's handedness confidence, the only per-hand score its API gives;
the OKS scale is each label's ``area``, its hand box), ``AP50`` = the same at OKS 0.5 only, ``OKS`` = median OKS
of the found hands with their labels (:func:`handpose.metrics.oks`: how close a found hand is in COCO's terms),
``ms`` = median milliseconds per photo (one photo at a time, decoded beforehand; detector, crops, keypoints and
back-mapping included). Then the composites' hands found by hand size; the cost against the number of hands,
measured on a 640 x 480 composite as the palm detector plus n crops of its one hand through the keypoint network
(n = 1, 2, 4, 8; handpose only: MediaPipe cannot be given crops; the pipelines taking turns call by call,
``--reps`` rounds), with a straight-line fit; the composites' ms by
the number of hands each pipeline actually ran on (detections: how many pasted hands it finds sets its cost); and
one JSON line (with `one_hand_640x480_at_most_15ms`, issue 12's speed target, per onnxruntime pipeline).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from handpose import metrics as M
from handpose.coco_eval import coco_keypoint_ap
from handpose.data import load_coco, load_freihand
from handpose.data.composite import (
    CANVAS_SIZE,
    HandCrop,
    background_regions,
    compose,
    keypoint_box,
    wrists_labelled,
    write_composites,
)
from handpose.data.image import read_image
from handpose.detect.topdown import TopDownPipeline
from handpose.skeleton import HAND21

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
HELDOUT = REPO / "out" / "multi" / "hands_heldout.json"
MIN_PRESENCE = 0.5
#: Hand size bins (px, longer side of the keypoint box) of the found-by-size table.
SIZE_BINS = ((0, 64), (64, 96), (96, 128), (128, 1000))


@dataclass
class PhotoSet:
    """Photos and their COCO labels (``gt``: images in ``paths`` order, ``ids`` their image ids)."""

    name: str
    paths: list[Path]
    gt: dict
    ids: list[int]
    hands: int = 0  # pasted hands per photo (composites)


@dataclass
class Run:
    """One pipeline on one set: per photo the kept hands ``(n, 21, 2)``, their scores ``(n,)`` and milliseconds."""

    keypoints: list[np.ndarray] = field(default_factory=list)
    scores: list[np.ndarray] = field(default_factory=list)
    ms: list[float] = field(default_factory=list)
    crops: list[int] = field(default_factory=list)  # hands the keypoint network ran on (MediaPipe: returned)


def coco_set() -> PhotoSet:
    if not HELDOUT.is_file():
        subprocess.run([sys.executable, str(REPO / "examples" / "multi" / "split_hands.py")], cwd=REPO, check=True)
    gt = json.loads(HELDOUT.read_text())
    images = DATA / "coco-wholebody-hands" / "images"
    return PhotoSet("coco held-out", [images / im["file_name"] for im in gt["images"]], gt,
                    [im["id"] for im in gt["images"]])


def hgcnn_set(limit: int | None) -> PhotoSet:
    records = load_freihand(DATA / "hgcnn-freihand", "val", limit=limit)
    images, anns = [], []
    for i, r in enumerate(records):
        images.append({"id": i + 1, "file_name": r.image_path.name, "width": 256, "height": 256})
        box = keypoint_box(r.keypoints[0], r.visible[0])
        trip = np.concatenate([r.keypoints[0], r.visible[0][:, None].astype(np.float32)], axis=1)
        anns.append({"id": i + 1, "image_id": i + 1, "category_id": 1, "keypoints": trip.reshape(-1).tolist(),
                     "num_keypoints": int((r.visible[0] > 0).sum()), "bbox": box.tolist(),
                     "area": float(box[2] * box[3]), "iscrowd": 0})
    gt = {"images": images, "annotations": anns,
          "categories": [{"id": 1, "name": "hand", "keypoints": list(HAND21.keypoints)}]}
    return PhotoSet("hgcnn", [r.image_path for r in records], gt, [im["id"] for im in images])


def composite_sets(counts: list[int], per_count: int, seed: int, folder: Path) -> list[PhotoSet]:
    crops = [HandCrop.from_record(r) for r in load_freihand(DATA / "hgcnn-freihand", "train")]
    people = DATA / "coco-person-mini"
    backgrounds, _ = load_coco(people / "annotations" / "person_keypoints_train2017.json", people / "train2017",
                               per_instance=False)
    backgrounds = [b for b in backgrounds if wrists_labelled(b)]
    rng = np.random.default_rng(seed)
    sets = []
    for n in counts:
        made = []
        for _ in range(per_count):
            b = backgrounds[int(rng.integers(len(backgrounds)))]
            pick = rng.choice(len(crops), size=n, replace=False)
            made.append(compose(read_image(b.image_path), [crops[i] for i in pick], rng, background_regions(b),
                                CANVAS_SIZE, background_name=b.record_id))
        ann = write_composites(made, folder, HAND21, prefix=f"hands{n}")
        gt = json.loads(ann.read_text())
        sets.append(PhotoSet(f"composite {n}", [folder / im["file_name"] for im in gt["images"]], gt,
                             [im["id"] for im in gt["images"]], n))
    return sets


def run_topdown(pipeline: TopDownPipeline, images: list[np.ndarray]) -> Run:
    for _ in range(2):
        pipeline(images[0])
    run = Run()
    for image in images:
        t = time.perf_counter()
        res = pipeline(image)
        run.ms.append(1000 * (time.perf_counter() - t))
        keep = res.presence >= MIN_PRESENCE
        run.crops.append(len(keep))
        run.keypoints.append(res.keypoints[keep])
        run.scores.append(res.instance_scores[keep])
    return run


def run_bottom_up(predictor, images: list[np.ndarray]) -> Run:
    predictor.predict_arrays(images[:1])
    run = Run()
    for image in images:
        t = time.perf_counter()
        res = predictor.predict_arrays([image])[0]
        run.ms.append(1000 * (time.perf_counter() - t))
        run.keypoints.append(res.keypoints)
        run.scores.append(res.instance_scores)
        run.crops.append(len(res.keypoints))
    return run


def run_mediapipe(python: str, paths: list[Path], complexity: int, max_hands: int) -> Run:
    env = {**os.environ, "GLOG_minloglevel": "2", "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run([python, str(REPO / "benchmarks" / "_mediapipe_worker.py"), str(complexity),
                          str(max_hands)], input=json.dumps([str(p) for p in paths]), capture_output=True, text=True,
                         check=True, env=env)
    run = Run()
    for row in json.loads(out.stdout.strip().splitlines()[-1]):
        run.keypoints.append(np.asarray(row["hands"], np.float32).reshape(-1, 21, 2))
        run.scores.append(np.asarray(row["handedness"], np.float32))
        run.ms.append(row["ms"])
        run.crops.append(len(row["hands"]))
    return run


def scaling(pipelines: dict[str, TopDownPipeline], image: np.ndarray, rect, counts: list[int], reps: int
            ) -> dict[str, dict[int, float]]:
    """Per pipeline, the median ms of the detector on ``image`` plus ``n`` hand crops through the keypoint network,
    for each ``n`` in ``counts``: the hand crop ``rect`` (one real hand of the photo, as the reference pipeline found
    it: every pipeline crops the same hand, whatever its own detector finds) repeated ``n`` times (what
    ``pipeline(image)`` does for ``n`` palms). The pipelines take turns call by call, ``reps`` rounds, so that the
    machine's drift (up to 30 % from minute to minute on the 2-core VM) falls on all of them alike."""
    ms: dict[str, dict[int, list[float]]] = {name: {n: [] for n in counts} for name in pipelines}
    for pipeline in pipelines.values():  # warm-up
        for n in counts:
            pipeline.regions(image)
            pipeline.keypoints(image, [rect] * n)
    for _ in range(reps):
        for name, pipeline in pipelines.items():
            for n in counts:
                t = time.perf_counter()
                pipeline.regions(image)
                pipeline.keypoints(image, [rect] * n)
                ms[name][n].append(1000 * (time.perf_counter() - t))
    return {name: {n: float(np.median(v)) for n, v in by_n.items()} for name, by_n in ms.items()}


def score(photos: PhotoSet, run: Run) -> dict:
    """found / extra / mean error of found hands / COCO AP / median ms (see the module doc)."""
    by_image: dict[int, list[dict]] = {}
    for a in photos.gt["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    found, extra, labelled, errors, detections, sizes, oks = 0, 0, 0, [], [], [], []
    for image_id, kps, scores in zip(photos.ids, run.keypoints, run.scores, strict=True):
        anns = by_image.get(image_id, [])
        labels = [a for a in anns if not a.get("iscrowd") and a["num_keypoints"] > 0]
        ignore = [a["bbox"] for a in anns if a.get("iscrowd") or a["num_keypoints"] == 0]
        labelled += len(labels)
        pairs = []
        for li, a in enumerate(labels):
            kv = np.asarray(a["keypoints"], np.float32).reshape(-1, 3)
            vis = kv[:, 2] > 0
            limit = 0.5 * max(keypoint_box(kv[:, :2], vis)[2:])
            for pi, kp in enumerate(kps):
                both = vis & np.isfinite(kp).all(axis=1)  # bottom-up instances may miss keypoints (NaN)
                if 2 * both.sum() < vis.sum():
                    continue  # a fragment with under half the labelled keypoints is not a found hand
                err = float(np.linalg.norm(kp[both] - kv[both, :2], axis=1).mean())
                if err < limit:
                    pairs.append((err, li, pi))
        used_l, used_p = set(), set()
        for err, li, pi in sorted(pairs):
            if li not in used_l and pi not in used_p:
                used_l.add(li)
                used_p.add(pi)
                errors.append(err)
                kv = np.asarray(labels[li]["keypoints"], np.float32).reshape(1, -1, 3)
                oks.append(float(M.oks(np.nan_to_num(kps[pi][None], nan=-1e6), kv[..., :2], kv[..., 2] > 0,
                                       labels[li]["area"], HAND21.sigmas)[0]))
        found += len(used_l)
        sizes += [(float(max(a["bbox"][2:])), li in used_l) for li, a in enumerate(labels)]
        for pi, kp in enumerate(kps):
            if not np.isfinite(kp).any():
                continue
            cx, cy = np.nanmean(kp, axis=0)
            if pi not in used_p and not any(x <= cx <= x + w and y <= cy <= y + h for x, y, w, h in ignore):
                extra += 1
        for kp, s in zip(kps, scores, strict=True):
            has = np.isfinite(kp).all(axis=1, keepdims=True)  # a missing keypoint is written 0, 0 (as to_coco)
            flat = np.concatenate([np.where(has, kp, 0.0), has], axis=1).astype(np.float32).reshape(-1)
            detections.append({"image_id": image_id, "category_id": 1, "keypoints": flat.tolist(),
                               "score": float(s)})
    ap = coco_keypoint_ap(photos.gt, detections, HAND21) if detections else {"AP": 0.0, "AP50": 0.0}
    return {"photos": len(photos.paths), "labelled": labelled, "found": found, "extra": extra,
            "err_px": float(np.mean(errors)) if errors else float("nan"), "AP": ap["AP"], "AP50": ap["AP50"],
            "oks_found": float(np.median(oks)) if oks else float("nan"),
            "ms": float(np.median(run.ms)), "ms_mean": float(np.mean(run.ms)), "sizes": sizes}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mediapipe-python", default=str(REPO / ".venv-mediapipe" / "bin" / "python"))
    ap.add_argument("--complexity", type=int, default=1, help="MediaPipe model_complexity")
    ap.add_argument("--max-num-hands", type=int, default=20, help="MediaPipe max_num_hands")
    ap.add_argument("--counts", type=int, nargs="+", default=[1, 2, 4, 8], help="hands per composite")
    ap.add_argument("--per-count", type=int, default=10, help="composites per hand count")
    ap.add_argument("--hgcnn", type=int, default=None, help="first N hgcnn-freihand val photos (default: all 73)")
    ap.add_argument("--threads", type=int, default=0,
                    help="onnxruntime threads per network of the handpose runs (0: its default, one per core; the "
                         "pipeline's two sessions do not spin) and PyTorch threads when above 0")
    ap.add_argument("--onnx-dir", type=Path, default=None, help="exported ONNX files (default: the handpose cache)")
    ap.add_argument("--bottom-up", type=Path, default=REPO / "runs" / "hands_openpose_coco" / "model.pt",
                    help="a bottom-up hand model to run beside (skipped when the file is missing)")
    ap.add_argument("--bottom-up-size", type=int, nargs=2, default=None, metavar=("W", "H"),
                    help="letterbox whole photos into this input for the bottom-up model (default: its own)")
    ap.add_argument("--bottom-up-upsample", type=int, default=None,
                    help="enlarge the bottom-up maps this many times before grouping (default: the model's)")
    ap.add_argument("--reps", type=int, default=30,
                    help="rounds of the cost-against-hands timing (the pipelines take turns in each)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fast", action=argparse.BooleanOptionalAction, default=True,
                    help="also the rows 'handpose onnx fit' (fit_input=True) and 'handpose onnx fast' (lite palm "
                         "detector on a fitted 160-px letterbox, hand21_mediapipe_lite_upright)")
    ap.add_argument("--tiles", type=int, nargs="*", default=[3],
                    help="also the onnxruntime pipeline with palm detection on N x N tiles, for each N > 1")
    args = ap.parse_args()
    start = time.perf_counter()
    if args.threads:
        torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="bench_photos_"))
    sets = [coco_set(), hgcnn_set(args.hgcnn), *composite_sets(args.counts, args.per_count, args.seed, tmp)]
    pipelines = {"handpose torch": TopDownPipeline("full", "mediapipe_hand_full"),
                 "handpose onnx": TopDownPipeline("full", "mediapipe_hand_full", backend="onnxruntime",
                                                  onnx_dir=args.onnx_dir, threads=args.threads)}
    if args.fast:  # the fastest configuration: lite palm detector on a fitted letterbox, the bundled default model
        for name, detector, model, side in (("handpose onnx fit", "full", "mediapipe_hand_full", 192),
                                            ("handpose onnx fast", "lite", "hand21_mediapipe_lite_upright", 160)):
            pipelines[name] = TopDownPipeline(detector, model, backend="onnxruntime", onnx_dir=args.onnx_dir,
                                              threads=args.threads, fit_input=True, detector_side=side)
    for n in args.tiles:  # palm detection on tiles too (handpose.detect.tiles): small hands
        if n > 1:
            pipelines[f"handpose onnx t{n}"] = TopDownPipeline("full", "mediapipe_hand_full", backend="onnxruntime",
                                                               onnx_dir=args.onnx_dir, threads=args.threads, tiles=n)
    bottom_up = None
    if args.bottom_up and Path(args.bottom_up).is_file():
        from handpose import Predictor, load_model

        bundle = load_model(args.bottom_up)
        if args.bottom_up_size or args.bottom_up_upsample:
            bundle = bundle.at_input_size(args.bottom_up_size or bundle.input_size, args.bottom_up_upsample)
        bottom_up = Predictor(bundle, batch_size=1)
    has_mp = Path(args.mediapipe_python).is_file()
    rows: dict[str, dict[str, dict]] = {}
    scaled: dict[str, dict[int, float]] = {}
    by_crops: dict[str, dict[int, list[float]]] = {}
    for photos in sets:
        images = [read_image(p) for p in photos.paths]
        runs = {name: run_topdown(p, images) for name, p in pipelines.items()}
        if bottom_up is not None:
            runs["handpose bottom-up"] = run_bottom_up(bottom_up, images)
        if has_mp:
            runs[f"mediapipe c{args.complexity}"] = run_mediapipe(args.mediapipe_python, photos.paths,
                                                                 args.complexity, args.max_num_hands)
        rows[photos.name] = {name: score(photos, run) for name, run in runs.items()}
        for name, run in runs.items():
            if photos.hands:
                for n, ms in zip(run.crops, run.ms, strict=True):
                    by_crops.setdefault(name, {}).setdefault(min(n, 4), []).append(ms)
        if photos.hands == 1:  # controlled cost against the number of hands, on the first 1-hand composite found
            found = next((im for im in images if len(pipelines["handpose onnx"].regions(im)[1])), None)
            if found is not None:
                rect = pipelines["handpose onnx"].regions(found)[1][0]
                scaled = scaling(pipelines, found, rect, args.counts, args.reps)
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} cores, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} "
          f"(1 / 5 / 15 min); handpose at {args.threads or 'onnxruntime default'} thread(s); MediaPipe "
          f"static_image_mode=True, max_num_hands={args.max_num_hands}, model_complexity={args.complexity}"
          + ("" if has_mp else f"; MediaPipe not found at {args.mediapipe_python}: not run"))
    print(f"bottom-up: hand model {args.bottom_up}, input {bottom_up.bundle.input_size[0]} x "
          f"{bottom_up.bundle.input_size[1]}, maps enlarged {bottom_up.bundle.codec.upsample} x"
          if bottom_up is not None else f"bottom-up: no hand model at {args.bottom_up}: not run")
    print(f"{'photos':15s} {'pipeline':18s} {'n':>4s} {'hands':>6s} {'found':>6s} {'extra':>6s} {'err px':>7s} "
          f"{'AP':>6s} {'AP50':>6s} {'OKS':>5s} {'ms':>8s}")
    for set_name, by_pipe in rows.items():
        for name, s in by_pipe.items():
            print(f"{set_name:15s} {name:18s} {s['photos']:4d} {s['labelled']:6d} {s['found']:6d} {s['extra']:6d} "
                  f"{s['err_px']:7.2f} {s['AP']:6.3f} {s['AP50']:6.3f} {s['oks_found']:5.2f} {s['ms']:8.1f}")
    pipes = list(next(iter(rows.values())))
    print("composites: labelled hands found, by hand size (longer side of the keypoint box, px):")
    print(f"{'pipeline':18s} " + " ".join(f"{f'{lo}-{hi}':>10s}" for lo, hi in SIZE_BINS))
    by_size = {}
    for name in pipes:
        pairs = [sz for p in sets if p.hands for sz in rows[p.name][name]["sizes"]]
        cells = [[hit for size, hit in pairs if lo <= size < hi] for lo, hi in SIZE_BINS]
        by_size[name] = {f"{lo}-{hi}": [sum(c), len(c)] for (lo, hi), c in zip(SIZE_BINS, cells, strict=True)}
        print(f"{name:18s} " + " ".join(f"{f'{sum(c)}/{len(c)}':>10s}" for c in cells))
    print(f"ms per 640 x 480 photo against the hands in it: detector + n crops of one real hand (median of "
          f"{args.reps}), and a straight-line fit:")
    print(f"{'pipeline':18s} " + " ".join(f"{n:>7d}" for n in args.counts) + "   ms per hand + ms at 0 hands")
    fits = {}
    for name, ms in scaled.items():
        slope, base = np.polyfit(list(ms), list(ms.values()), 1)
        fits[name] = {"per_hand_ms": round(float(slope), 2), "base_ms": round(float(base), 2)}
        print(f"{name:18s} " + " ".join(f"{v:7.1f}" for v in ms.values()) + f"   {slope:.1f} + {base:.1f}")
    print("composites: median ms per photo by the hands each pipeline ran its keypoint network on (MediaPipe: "
          "returned), photos in brackets:")
    print(f"{'pipeline':18s} " + " ".join(f"{(str(n) if n < 4 else '4+'):>12s}" for n in range(5)))
    for name, groups in by_crops.items():
        cells = [f"{np.median(groups[n]):.1f} ({len(groups[n])})" if n in groups else "-" for n in range(5)]
        print(f"{name:18s} " + " ".join(f"{c:>12s}" for c in cells))
    line = {"seconds": round(time.perf_counter() - start, 1), "cores": os.cpu_count(),
            "load_avg_1min": round(load[0], 2), "threads": args.threads,
            "results": {f"{s} / {p}": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()
                                       if k != "sizes"}
                        for s, by_pipe in rows.items() for p, r in by_pipe.items()},
            "ms_by_hands": {name: {str(k): round(v, 2) for k, v in ms.items()} for name, ms in scaled.items()},
            "ms_fit": fits, "composites_found_by_size": by_size,
            # issue 12's speed target: one hand in a 640 x 480 photo through onnxruntime in at most 15 ms
            "one_hand_640x480_at_most_15ms": {name: bool(ms[1] <= 15.0) for name, ms in scaled.items()
                                              if "onnx" in name and 1 in ms},
            "composites_ms_by_hands_run": {name: {str(n): round(float(np.median(v)), 2) for n, v in sorted(g.items())}
                                           for name, g in by_crops.items()}}
    print(json.dumps(line))


if __name__ == "__main__":
    main()
