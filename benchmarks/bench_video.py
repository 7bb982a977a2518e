"""Video: hands tracked from frame to frame (HandTracker) against the top-down pipeline on every frame, on real clips
made from a shared photo.

    python benchmarks/bench_video.py [--frames 90] [--backend torch onnxruntime] [--threads 0]
        [--model mediapipe_hand_full] [--detector full] [--fit-input] [--detector-side 192]

Clips (``tests/test_track.make_pan_clip``: the coco-wholebody-hands photo 000000199055.jpg, 480 x 640, a man with both
hands in view, moved across the frame; MJPG AVI at 30 frames/s):

- ``pan``: ``--frames`` frames moved slowly (at most 4 px per frame: sines of 40 px horizontally and 20 px vertically
  over 2 s), both hands in view throughout;
- ``leave``: the test clip (``tests/test_track.SHIFTS``, 22 frames: a slow pan, a fast pan of 28 px per frame until
  both hands leave the frame, back in; frame 3 corrupt and skipped).

Per clip, backend and mode (the top-down pipeline on every frame; :class:`handpose.detect.track.HandTracker` with
``max_hands`` 2 and 1, default ``redetect_every``): frames/s end to end (decoding, both networks, tracking; nothing
drawn or written), median ms per frame, frames the palm detector ran on, hands per frame, the mean keypoint error of
the hands found to the photo's labels moved with it (each hand matched to the nearest label), and for tracking the
mean distance of its hands to per-frame detection's on the same frames. One warm-up frame per mode is not counted.
The machine's load average is printed: other work on it slows every figure alike. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from handpose.data.image import read_image  # noqa: E402
from handpose.detect.topdown import TopDownPipeline  # noqa: E402
from handpose.detect.track import HandTracker  # noqa: E402
from handpose.video import open_video, read_frames  # noqa: E402
from tests.test_track import FPS, PHOTO, SHIFTS, make_pan_clip, nearest  # noqa: E402

HANDS_COCO = REPO.parent / "shared" / "data" / "coco-wholebody-hands"


def pan_shifts(n: int) -> list[tuple[int, int]]:
    """``n`` slow moves: sines of 40 px (x) and 20 px (y) over 2 s at 30 frames/s (at most 4.2 px per frame)."""
    return [(round(40 * math.sin(2 * math.pi * i / 60)), round(20 * math.sin(2 * math.pi * i / 60 + 1)))
            for i in range(n)]


def labels() -> np.ndarray:
    """``(2, 21, 2)`` the photo's labelled hands."""
    data = json.loads((HANDS_COCO / "annotations" / "hands_val.json").read_text())
    image_id = next(im["id"] for im in data["images"] if im["file_name"] == PHOTO)
    return np.array([np.reshape(a["keypoints"], (21, 3))[:, :2] for a in data["annotations"]
                     if a["image_id"] == image_id], np.float32)


def run(runner, clip: Path) -> tuple[dict, dict]:
    """Every decoded frame of ``clip`` through ``runner`` (a pipeline or a tracker): ``(results by frame, timing)``."""
    frames = read_frames(open_video(clip), lambda i, m: None)
    tracker = isinstance(runner, HandTracker)
    if tracker:
        runner.reset()
    _, first = next(frames)
    warm = runner(first, 0.0) if tracker else runner(first)
    results, times = {0: warm}, []
    start = time.perf_counter()
    while True:
        t = time.perf_counter()
        item = next(frames, None)  # decoding counts
        if item is None:
            break
        i, frame = item
        results[i] = runner(frame, i / FPS) if tracker else runner(frame)
        times.append(time.perf_counter() - t)
    total = time.perf_counter() - start
    runs = runner.detector_runs - 1 if tracker else len(times)  # the warm-up frame not counted
    return results, {"frames": len(times), "fps": len(times) / total, "ms_median": 1000 * float(np.median(times)),
                     "detector_runs": runs}


def accuracy(results: dict, shifts, lab: np.ndarray, reference: dict | None) -> dict:
    """Hands per frame, mean error to the shifted labels (hands within 50 px of one), mean distance to
    ``reference``'s nearest hand."""
    errs, dists, hands = [], [], []
    for i, res in results.items():
        if i == 0:
            continue
        hands.append(len(res.keypoints))
        for kp in res.keypoints:
            e = nearest(kp, lab + np.float32(shifts[i]))[1]
            if e < 50:
                errs.append(e)
            if reference is not None and len(reference[i].keypoints):
                dists.append(nearest(kp, reference[i].keypoints)[1])
    return {"hands_per_frame": float(np.mean(hands)), "err_px": float(np.mean(errs)) if errs else float("nan"),
            "to_detection_px": float(np.mean(dists)) if dists else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=90, help="frames of the slow-pan clip")
    ap.add_argument("--backend", nargs="+", default=["torch", "onnxruntime"])
    ap.add_argument("--threads", type=int, default=0,
                    help="onnxruntime threads per network (0: its default, one per core; the pipeline's two sessions "
                         "do not spin) and PyTorch threads when above 0")
    ap.add_argument("--model", default="mediapipe_hand_full",
                    help="keypoint model of the pipeline (e.g. hand21_mediapipe_lite_mixed, the bundled default)")
    ap.add_argument("--detector", default="full", choices=["full", "lite"], help="palm detector")
    ap.add_argument("--fit-input", action="store_true", help="palm detector on a fitted letterbox (192 x 160 here)")
    ap.add_argument("--detector-side", type=int, default=192, help="palm detector input side (longer side if fitted)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    photo = read_image(HANDS_COCO / "images" / PHOTO, exif_transpose=False)
    lab = labels()
    folder = Path(tempfile.mkdtemp())
    clips = {"pan": (make_pan_clip(folder / "pan.avi", photo, pan_shifts(args.frames)), pan_shifts(args.frames)),
             "leave": (make_pan_clip(folder / "leave.avi", photo, SHIFTS, corrupt=(3,)), SHIFTS)}
    rows = []
    for backend in args.backend:
        pipeline = TopDownPipeline(args.detector, args.model, backend=backend, threads=args.threads,
                                   fit_input=args.fit_input, detector_side=args.detector_side)
        for clip_name, (clip, shifts) in clips.items():
            ref, timing = run(pipeline, clip)
            rows.append({"clip": clip_name, "backend": backend, "mode": "detect every frame", **timing,
                         **accuracy(ref, shifts, lab, None)})
            for max_hands in (2, 1):
                res, timing = run(HandTracker(pipeline, max_hands), clip)
                rows.append({"clip": clip_name, "backend": backend, "mode": f"track, max_hands {max_hands}", **timing,
                             **accuracy(res, shifts, lab, ref)})
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} cores, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1 / 5 / 15 "
          f"min); {args.threads or 'default'} thread(s); frames 480 x 640; palm detector {args.detector}"
          f" at {args.detector_side} px{' (fitted letterbox)' if args.fit_input else ''}, keypoint model {args.model}")
    print(f"{'clip':6s} {'backend':12s} {'mode':20s} {'frames':>6s} {'fps':>6s} {'ms med':>7s} {'detector':>8s} "
          f"{'hands':>6s} {'err px':>7s} {'to det px':>9s}")
    for r in rows:
        to_det = "" if r["to_detection_px"] is None else f"{r['to_detection_px']:.2f}"
        print(f"{r['clip']:6s} {r['backend']:12s} {r['mode']:20s} {r['frames']:6d} {r['fps']:6.1f} "
              f"{r['ms_median']:7.1f} {r['detector_runs']:8d} {r['hands_per_frame']:6.2f} {r['err_px']:7.2f} "
              f"{to_det:>9s}")
    print(json.dumps({"load_1min": round(load[0], 1), "rows": [{k: (round(v, 2) if isinstance(v, float) else v)
                                                               for k, v in r.items()} for r in rows]}))


if __name__ == "__main__":
    main()
