"""Inference speed of every single-instance model in the zoo with each runtime, and training throughput.

    python benchmarks/bench_speed.py [--freihand ../shared/data/hgcnn-freihand] [--runs 50]

Inference: for each model (the bundled one trained; the others untrained, same 128x128 pipeline; the imported
pretrained networks at their own input sizes, the ImageNet trunks under a heatmap head at 128x128) and runtime
(PyTorch eager, PyTorch channels-last, onnxruntime): parameters, GFLOPs per image (torch's FLOP counter,
multiply-add = 2 FLOPs), median and 90th-percentile latency at batch 1 for one 256x256 photo to keypoints
(letterbox, normalise, network, decode, map back; the image already decoded), throughput at batch 32, and the
achieved GFLOP/s at batch 32 as a share of this machine's float32 peak, measured in the same run as a 2048^3
matrix product. Training: images/s of one optimisation step at batch 32 on real augmented crops, each model in a
fresh process with and without the glibc allocator tuning of ``handpose.runtime.tune_malloc``, and the loader's
images/s (one process producing augmented, encoded samples), and the seconds to get the train split's inputs by
decoding every photo vs from the disk cache (``cache_dir``). The imported palm detector: a whole photo to hand boxes
in PyTorch. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

REPO = Path(__file__).resolve().parents[1]
INFER_MODELS = ("bundled", "shallow_unet", "resnet18_heatmap", "resnet18_regression", "mobilenet_v2_heatmap")
#: Imported pretrained networks (handpose.models.pretrained): keypoint models as they are, and the ImageNet trunks
#: under a heatmap head at 128x128 (their pretrained weights loaded; speed does not depend on the values).
IMPORTED_MODELS = ("mediapipe_hand_full", "mediapipe_hand_lite", "lightweight_openpose_coco",
                   "mobilenet_v2_imagenet", "mobilenet_v3_small_imagenet")
PALM_DETECTORS = ("full", "lite")
TRAIN_MODELS = ("resunet", "shallow_unet")


def peak_gflops(n: int = 2048, reps: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return 2 * n**3 / min(times) / 1e9


def bundle_for(name: str):
    from handpose import load_model
    from handpose.codecs import make_codec
    from handpose.models import create_model
    from handpose.models.pretrained import SOURCES, load_pretrained_into, pretrained_bundle
    from handpose.models.zoo import output_kind

    imported = pretrained_bundle(name)
    if imported is not None:
        return imported, f"{name} (imported)"
    bundle = load_model()
    if name == "bundled":
        return bundle, f"bundled ({bundle.arch})"
    if name in SOURCES:  # an ImageNet trunk under the heatmap head
        arch = {"mobilenet_v2_imagenet": "mobilenet_v2_heatmap"}.get(name, "mobilenet_v3_small_heatmap")
        kwargs = {"backbone_kwargs": {"same_padding": True}} if "v3" in name else {}
        net = create_model(arch, bundle.skeleton.num_keypoints, (128, 128), **kwargs).eval()
        load_pretrained_into(net, name)
        bundle.network, bundle.arch = net, arch
        bundle.codec = make_codec(output_kind(net), (128, 128), net.stride, 2.0)
        return bundle, f"{arch} ({name})"
    net = create_model(name, bundle.skeleton.num_keypoints, (128, 128)).eval()
    bundle.network, bundle.arch = net, name
    bundle.codec = make_codec(output_kind(net), (128, 128), getattr(net, "stride", 1) or 1, 2.0)
    return bundle, name


def gflops(net, size=(128, 128)) -> float:
    """GFLOPs of one forward pass at ``size`` (width, height)."""
    with FlopCounterMode(display=False) as fc, torch.inference_mode():
        net(torch.zeros(1, 3, size[1], size[0]))
    return fc.get_total_flops() / 1e9


def palm_rows(image: np.ndarray, runs: int, peak: float) -> list[dict]:
    """MediaPipe's palm detector imported (PyTorch): one 640x480 photo to hand boxes (letterbox to 192, network,
    anchor decoding, weighted NMS, back to pixels) at batch 1; the network alone at batch 32."""
    from handpose.detect import PalmDetector

    rows = []
    for variant in PALM_DETECTORS:
        det = PalmDetector(variant)
        gf = gflops(det.net, (192, 192))
        for _ in range(3):
            det.detect(image)
        t1 = []
        for _ in range(runs):
            t = time.perf_counter()
            det.detect(image)
            t1.append(1000 * (time.perf_counter() - t))
        x = torch.rand(32, 3, 192, 192)
        tb = []
        with torch.inference_mode():
            for _ in range(max(2, runs // 10)):
                t = time.perf_counter()
                det.net(x)
                tb.append(time.perf_counter() - t)
        thr = 32 / float(np.median(tb))
        rows.append({"model": f"palm_detection_{variant} (imported)", "runtime": "torch eager",
                     "params_m": sum(p.numel() for p in det.net.parameters()) / 1e6, "gflops": gf,
                     "median_ms": float(np.median(t1)), "p90_ms": float(np.percentile(t1, 90)),
                     "batch32_img_s": thr, "peak_share": gf * thr / peak})
    return rows


def time_predictor(pred, image: np.ndarray, runs: int) -> tuple[float, float, float]:
    """(median ms, p90 ms) at batch 1 and images/s at batch 32."""
    for _ in range(3):
        pred.predict_arrays([image])
    t1 = []
    for _ in range(runs):
        t = time.perf_counter()
        pred.predict_arrays([image])
        t1.append(1000 * (time.perf_counter() - t))
    batch = [image] * 32
    pred.batch_size = 32
    pred.predict_arrays(batch)
    tb = []
    for _ in range(max(2, runs // 10)):
        t = time.perf_counter()
        pred.predict_arrays(batch)
        tb.append(time.perf_counter() - t)
    pred.batch_size = 1
    return float(np.median(t1)), float(np.percentile(t1, 90)), 32 / float(np.median(tb))


def inference_rows(image: np.ndarray, runs: int, peak: float, calibration: list[np.ndarray],
                   names: tuple[str, ...] = INFER_MODELS + IMPORTED_MODELS) -> list[dict]:
    from handpose import Predictor
    from handpose.export import export_onnx, load_onnx, quantize_int8

    rows = []
    tmp = Path(tempfile.mkdtemp())
    for name in names:
        bundle, label = bundle_for(name)
        params = sum(p.numel() for p in bundle.network.parameters()) / 1e6
        gf = gflops(bundle.network, bundle.input_size)
        onnx_path = tmp / f"{name}.onnx"
        export_onnx(bundle, onnx_path)
        cl_bundle, _ = bundle_for(name)
        runners = {"torch eager": Predictor(bundle, 1),
                   "torch channels-last": Predictor(cl_bundle, 1, channels_last=True),
                   "onnxruntime": Predictor(load_onnx(onnx_path), 1)}
        if name == "bundled":
            quantize_int8(onnx_path, tmp / "bundled_int8.onnx", calibration)
            runners["onnxruntime int8"] = Predictor(load_onnx(tmp / "bundled_int8.onnx"), 1)
        for runtime, pred in runners.items():
            med, p90, thr = time_predictor(pred, image, runs)
            rows.append({"model": label, "runtime": runtime, "params_m": params, "gflops": gf, "median_ms": med,
                         "p90_ms": p90, "batch32_img_s": thr, "peak_share": gf * thr / peak})
    return rows, tmp


def int8_accuracy(tmp: Path, freihand: Path) -> dict:
    """Mean keypoint error (px) on the hgcnn-freihand val split: float32 onnxruntime vs the int8 model."""
    from handpose.data import load_freihand
    from handpose.evaluate import evaluate

    val = load_freihand(freihand, "val")
    return {name: round(evaluate(tmp / f"{f}.onnx", val).summary()["error_px"]["mean"], 3)
            for name, f in (("float32", "bundled"), ("int8", "bundled_int8"))}


def train_rate(root: Path, model_name: str, tune: bool, batch: int = 32, steps: int = 6) -> dict:
    """Images/s of training steps (run in a fresh process: the allocator setting is process-wide)."""
    from handpose import HAND21
    from handpose.codecs.heatmap import HeatmapCodec
    from handpose.data import load_freihand
    from handpose.data.dataset import KeypointDataset
    from handpose.data.transforms import AugmentConfig
    from handpose.losses import iou_loss
    from handpose.models import create_model
    from handpose.runtime import tune_malloc

    tuned = tune_malloc(tune)
    model = create_model(model_name, 21)
    codec = HeatmapCodec((128, 128), model.stride, 1.5 if model.stride > 1 else 2.5)
    ds = KeypointDataset(load_freihand(root, "train", limit=64), HAND21, codec, augment=AugmentConfig(rotate=180))
    t = time.perf_counter()
    samples = [ds[i % len(ds)] for i in range(batch)]
    loader_rate = batch / (time.perf_counter() - t)
    b = torch.utils.data.default_collate(samples)
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


def cache_startup(root: Path) -> dict:
    """Seconds to get the train split's 128x128 inputs: decoding every JPEG vs the disk cache (built, then hit)."""
    from handpose.data import load_freihand
    from handpose.data.cache import cached_inputs
    from handpose.data.dataset import load_input

    records = load_freihand(root, "train")

    def build():
        loaded = [load_input(r, (128, 128)) for r in records]
        return np.stack([x[0] for x in loaded]), np.stack([x[1] for x in loaded])

    folder = Path(tempfile.mkdtemp())
    t = time.perf_counter()
    build()
    decode = time.perf_counter() - t
    cached_inputs(records, (128, 128), "constant", folder, build)  # builds the entry
    t = time.perf_counter()
    images, _ = cached_inputs(records, (128, 128), "constant", folder, build)
    np.asarray(images).sum()  # touch every page
    return {"images": len(records), "decode_s": decode, "cache_hit_s": time.perf_counter() - t}


def print_rows(rows: list[dict], peak: float) -> None:
    """The inference table."""
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads); float32 matmul peak {peak:.0f} GFLOP/s")
    print(f"\n{'model':52s} {'runtime':20s} {'params M':>8s} {'GFLOPs':>7s} {'median ms':>9s} {'p90 ms':>7s} "
          f"{'b32 img/s':>9s} {'% peak':>7s}")
    for r in rows:
        print(f"{r['model']:52s} {r['runtime']:20s} {r['params_m']:8.2f} {r['gflops']:7.3f} {r['median_ms']:9.2f} "
              f"{r['p90_ms']:7.2f} {r['batch32_img_s']:9.1f} {100 * r['peak_share']:7.1f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--freihand", type=Path, default=REPO.parent / "shared" / "data" / "hgcnn-freihand")
    ap.add_argument("--runs", type=int, default=50, help="batch-1 runs per model and runtime")
    ap.add_argument("--coco-photo", type=Path, help="a whole photo for the palm detector rows",
                    default=REPO.parent / "shared" / "data" / "coco-wholebody-hands" / "images" / "000000109313.jpg")
    ap.add_argument("--imported-only", action="store_true", help="only the imported pretrained networks' rows")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(train_rate(args.freihand, args.child[0], args.child[1] == "1")))
        return
    from handpose.data.image import read_image
    from handpose.runtime import tune_malloc

    tune_malloc()
    peak = peak_gflops()
    image = read_image(REPO / "examples" / "hands" / "hgcnn_460.jpg")
    from handpose.data import load_freihand

    calibration = [read_image(r.image_path) for r in load_freihand(args.freihand, "train", limit=32)]
    if args.imported_only:
        rows, _ = inference_rows(image, args.runs, peak, calibration, IMPORTED_MODELS)
        rows += palm_rows(read_image(args.coco_photo), args.runs, peak)
        print_rows(rows, peak)
        print(json.dumps({"peak_gflops": round(peak, 1), "inference": [
            {k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()} for r in rows]}))
        return
    rows, tmp = inference_rows(image, args.runs, peak, calibration)
    rows += palm_rows(read_image(args.coco_photo), args.runs, peak)
    int8 = int8_accuracy(tmp, args.freihand)
    startup = cache_startup(args.freihand)
    rates = []
    for m in TRAIN_MODELS:
        for tune in ("0", "1"):
            out = subprocess.run([sys.executable, __file__, "--freihand", str(args.freihand), "--child", m, tune],
                                 capture_output=True, text=True, check=True)
            rates.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print_rows(rows, peak)
    print(f"\nint8 (static, calibrated on 32 train photos) vs float32, val split mean error: {int8['int8']:.2f} px vs "
          f"{int8['float32']:.2f} px")
    from handpose import load_model

    card = load_model().card
    print(f"\nbundled model's full training (from its card): {card.get('train_minutes_total', '?')} min")
    print(f"\n{'training (batch 32, 128x128)':30s} {'malloc tuned':>12s} {'step img/s':>11s} {'loader img/s':>13s}")
    for r in rates:
        print(f"{r['model']:30s} {str(r['malloc_tuned']):>12s} {r['train_img_s']:11.1f} {r['loader_img_s']:13.1f}")
    print(f"\ntraining inputs of {startup['images']} train photos: decoding {startup['decode_s']:.2f} s, "
          f"from the disk cache (cache_dir) {startup['cache_hit_s']:.3f} s")
    train = {f"{r['model']}{'+malloc' if r['malloc_tuned'] else ''}": round(r["train_img_s"], 1) for r in rates}
    print(json.dumps({"peak_gflops": round(peak, 1),
                      "inference": [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()}
                                    for r in rows],
                      "train_img_s": train, "int8_val_epe_px": int8,
                      "startup_s": {k: round(v, 3) for k, v in startup.items() if k != "images"},
                      "loader_img_s": round(float(np.mean([r["loader_img_s"] for r in rates])), 1)}))


if __name__ == "__main__":
    main()
