"""onnxruntime thread settings of the top-down pipeline: one hand in a 640 x 480 photo, each setting in its own process.

    python benchmarks/bench_threads.py [--rounds 3] [--calls 300] [--detector lite] [--detector-side 160]
        [--model hand21_mediapipe_lite_upright] [--no-fit-input]

The pipeline (:class:`handpose.detect.topdown.TopDownPipeline`, backend onnxruntime) runs its palm detector and its
keypoint network in two onnxruntime sessions, one after the other. Settings:

- ``1 thread``: one intra-op thread per session (no worker threads);
- ``2 threads, spinning``: two per session with onnxruntime's default ``session.intra_op.allow_spinning`` = 1 (what
  the pipeline did before session 8): each session's idle worker keeps spinning on a core after its run, the core
  the other session then needs;
- ``default (no spinning)``: ``threads=0`` (onnxruntime's default, one per core) with spinning off, what the pipeline
  does now.

Each process times ``pipeline.regions(photo)`` + ``pipeline.keypoints(photo, [the first hand's crop])`` (the
detector and one crop, as ``bench_photos.py``'s cost table) ``--calls`` times after a warm-up; the settings take
turns, ``--rounds`` times, so that the machine's drift (up to 30 % here from minute to minute) falls on all of them.
Prints the median, 10th and 90th percentile ms per process and the median of the medians per setting, then one JSON
line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PHOTO = REPO.parent / "shared" / "data" / "coco-wholebody-hands" / "images" / "000000109313.jpg"
SETTINGS = {"1 thread": (1, True), "2 threads, spinning": (2, True), "default (no spinning)": (0, False)}


def worker(args: argparse.Namespace) -> None:
    """One setting in this process: print a JSON list of per-call milliseconds."""
    import importlib

    import cv2

    from handpose.data.image import read_image
    from handpose.detect.topdown import TopDownPipeline

    threads, spin = SETTINGS[args.worker]
    if spin:  # the sessions as before session 8: onnxruntime's default spinning
        export = importlib.import_module("handpose.export")  # the module (the package's ``export`` is a function)
        plain = export.OnnxNetwork.__init__
        export.OnnxNetwork.__init__ = lambda self, path, threads=0, spin=True: plain(self, path, threads, True)
    pipeline = TopDownPipeline(args.detector, args.model, backend="onnxruntime", threads=threads,
                               fit_input=args.fit_input, detector_side=args.detector_side)
    photo = cv2.resize(read_image(PHOTO), (640, 480), interpolation=cv2.INTER_AREA)
    _, rects = pipeline.regions(photo)
    if not rects:
        raise SystemExit(f"{PHOTO}: no palm found at 640 x 480")
    ms = []
    for i in range(args.calls + 20):
        t = time.perf_counter()
        pipeline.regions(photo)
        pipeline.keypoints(photo, rects[:1])
        if i >= 20:  # warm-up
            ms.append(1000 * (time.perf_counter() - t))
    print(json.dumps(ms))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--detector", default="lite")
    ap.add_argument("--detector-side", type=int, default=160)
    ap.add_argument("--model", default="hand21_mediapipe_lite_upright")
    ap.add_argument("--fit-input", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--worker", choices=sorted(SETTINGS), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return
    flags = ["--calls", str(args.calls), "--detector", args.detector, "--detector-side", str(args.detector_side),
             "--model", args.model, "--fit-input" if args.fit_input else "--no-fit-input"]
    medians: dict[str, list[float]] = {name: [] for name in SETTINGS}
    print(f"{'setting':24s} {'round':>5s} {'median':>7s} {'p10':>6s} {'p90':>6s}  (ms, detector + one hand's crop)")
    for r in range(args.rounds):
        for name in SETTINGS:
            out = subprocess.run([sys.executable, __file__, "--worker", name, *flags], capture_output=True, text=True,
                                 check=True)
            ms = np.asarray(json.loads(out.stdout.strip().splitlines()[-1]))
            medians[name].append(float(np.median(ms)))
            print(f"{name:24s} {r + 1:5d} {np.median(ms):7.2f} {np.percentile(ms, 10):6.2f} "
                  f"{np.percentile(ms, 90):6.2f}", flush=True)
    load = os.getloadavg()
    print("median of the medians: " + ", ".join(f"{k} {np.median(v):.2f}" for k, v in medians.items())
          + f" ms; {os.cpu_count()} cores, load average {load[0]:.1f}")
    print(json.dumps({"photo": PHOTO.name, "size": [640, 480], "detector": args.detector,
                      "detector_side": args.detector_side, "fit_input": args.fit_input, "model": args.model,
                      "medians_ms": medians, "cores": os.cpu_count(), "load_avg_1min": load[0]}))


if __name__ == "__main__":
    main()
