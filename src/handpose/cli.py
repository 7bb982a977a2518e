"""The ``handpose`` command: train, predict, evaluate, models."""

from __future__ import annotations

import itertools
import json
import re
import signal
import time
from pathlib import Path

import numpy as np
import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from handpose.data.image import MAX_PIXELS
from handpose.errors import HandposeError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="2D hand pose estimation: train, evaluate, predict.")
console = Console()
err_console = Console(stderr=True)


def _fail(e: Exception) -> None:
    err_console.print(f"[red]error:[/red] {escape(str(e))}", soft_wrap=True)
    raise typer.Exit(2)


@app.command()
def train(
    config: Path = typer.Argument(None, help="flat YAML config (see configs/); defaults are used without one"),
    set_: list[str] = typer.Option(None, "--set", help="override a config key: --set lr=0.01 (repeatable)"),
    progress: bool = typer.Option(True, help="show a progress bar"),
) -> None:
    """Train a model; writes checkpoints, CSV logs, the resolved config and model.pt under out_dir/name."""
    from handpose.api import train as run_train
    from handpose.config import load_config

    try:
        cfg = load_config(config, set_)
        console.print(f"run folder: {escape(str(cfg.run_dir))}  (glibc allocator tuning: "
                      f"{'on' if cfg.tune_malloc else 'off'}; turn off with --set tune_malloc=false)")
        result = run_train(cfg, progress=progress)
    except HandposeError as e:
        _fail(e)
    console.print_json(json.dumps(result))


def _plain(text: str) -> str:
    """RST roles and literals of a help line as plain terminal text (``x`` -> x, :func:`f` -> f)."""
    return re.sub(r":\w+:`([^`]*)`", r"\1", text).replace("``", "")


def _yaml_value(value) -> str:
    """One value as inline YAML (``''`` for an empty string, ``null`` for None)."""
    return yaml.safe_dump(value, default_flow_style=True, width=1000).removesuffix("\n...\n").strip()


@app.command("config")
def config_(
    keys: list[str] = typer.Argument(None, help="only these keys (default: all)"),
    as_yaml: bool = typer.Option(False, "--yaml", help="print a config file of the defaults, each key with its type "
                                 "and help as a comment (a starting point: handpose config --yaml > my.yaml)"),
) -> None:
    """List every training config key with its default, type and one line of help (set them in a YAML config or
    with train --set key=value)."""
    from handpose.config import _check_keys, config_fields

    try:
        _check_keys(keys or [], "handpose config")
    except HandposeError as e:
        _fail(e)
    fields = [f for f in config_fields() if not keys or f["name"] in keys]
    if as_yaml:
        section = None
        for f in fields:
            if f["section"] != section:
                print(f"{'' if section is None else chr(10)}# {f['section']}")
                section = f["section"]
            print(f"{f['name']}: {_yaml_value(f['default'])}  # {f['type']}: {_plain(f['help'])}")
        return
    table = Table("key", "type", "default", "help", show_lines=False)
    section = None
    for f in fields:
        if f["section"] != section:
            section = f["section"]
            table.add_section()
            table.add_row(f"[bold]{escape(section)}[/bold]")
        table.add_row(f["name"], escape(f["type"]), escape(_yaml_value(f["default"])), escape(_plain(f["help"])))
    console.print(table)


def _plan_overlays(overlay: Path, images: list[Path], videos: list[str]) -> tuple[list[Path], list[Path]]:
    """Overlay files for the images (PNG) and the videos (MP4), checked before any work.

    ``overlay`` is a folder, or with a video suffix the file for a single video given alone. Names are made
    unique and never one of the inputs (see :func:`handpose.predict.overlay_names`).

    Raises:
        HandposeError: a video-suffixed ``overlay`` with images or several videos, or an unwritable folder.
    """
    from handpose.atomic import check_writable
    from handpose.predict import overlay_names
    from handpose.video import VIDEO_SUFFIXES

    inputs = [*images, *(Path(v) for v in videos if not v.isdigit())]
    if overlay.suffix.lower() in VIDEO_SUFFIXES and not overlay.is_dir():
        if images or len(videos) != 1:
            raise HandposeError(f"--overlay {overlay} names one video file, but the inputs are {len(images)} "
                                f"images and {len(videos)} videos: give a folder for them")
        if not videos[0].isdigit() and overlay.resolve() == Path(videos[0]).resolve():
            raise HandposeError(f"--overlay {overlay} is the input video itself")
        check_writable(overlay.parent, "--overlay folder")
        return [], [overlay]
    if overlay.exists() and not overlay.is_dir():
        raise HandposeError(f"--overlay {overlay} is a file; give a folder (or OUT.mp4 for a single video)")
    check_writable(overlay, "--overlay folder")
    return overlay_names(images, overlay, ".png", inputs), overlay_names(videos, overlay, ".mp4", inputs)


def _coco_image_ids(ann: Path, paths: list[Path], videos: list[str], skeleton) -> tuple[dict[str, int], int]:
    """``({file: image_id}, category_id)`` for ``predict --coco-images`` (:class:`handpose.result.CocoImages`).

    Raises:
        HandposeError: videos among the inputs, a category with another keypoint count than the model's, files
            that match no image of the json.
    """
    from handpose.result import CocoImages

    if videos:
        raise HandposeError("--coco-images gives image files their COCO image_id; predict videos without it")
    index = CocoImages.read(ann)
    if index.keypoints and len(index.keypoints) != skeleton.num_keypoints:
        raise HandposeError(f"--coco-images {ann}: category {index.category_id} has {len(index.keypoints)} "
                            f"keypoints, the model {skeleton.num_keypoints} ({skeleton.name})")
    return index.image_ids(paths), index.category_id


@app.command()
def predict(
    inputs: list[str] = typer.Argument(..., help="image files, folders, glob patterns, videos or a camera index"),
    model: str = typer.Option(None, "--model", "-m", help="bundled model name or model file (default: bundled)"),
    runtime: str = typer.Option("torch", help="torch, or onnx (onnxruntime; a .onnx model, or exported on the fly)"),
    json_out: Path = typer.Option(None, "--json", help="write results as they come: a list of {file_name, "
                                  "keypoints, score} (complete with what was done if the run is stopped)"),
    overlay: Path = typer.Option(None, "--overlay", help="folder for drawn images/videos (OUT.mp4: one video); "
                                 "names are made unique and never overwrite an input"),
    batch_size: int = typer.Option(32, help="images per forward pass"),
    workers: int = typer.Option(-1, help="processes reading images ahead of the network (-1: 1 when there is more "
                                "than one batch, else 0)"),
    max_pixels: int = typer.Option(MAX_PIXELS, help="skip (and report) images with more pixels than this, read "
                                   "from the file header before decoding (0: no limit)"),
    smooth: bool = typer.Option(False, help="videos: steady keypoints over time with the One-Euro filter"),
    min_cutoff: float = typer.Option(1.0, help="One-Euro cutoff at rest, Hz (lower: steadier)"),
    beta: float = typer.Option(0.01, help="One-Euro speed coefficient (higher: less lag)"),
    flip_test: bool = typer.Option(False, help="average with the mirrored image (twice the compute)"),
    hand: str = typer.Option(None, help="the photos' hand, left, right or auto (MediaPipe's handedness): a hand "
                             "that is not --model-hand is mirrored into the model and its keypoints back; not with "
                             "--detect"),
    model_hand: str = typer.Option("right", help="--hand: the hand the model was trained on (right or left)"),
    detect: bool = typer.Option(None, "--detect/--crop", help="--detect: find every hand with the palm detector, "
                                "crop each upright into the keypoint model (default then: mediapipe_hand_full) and "
                                "map back (videos: hands tracked from frame to frame, the detector only when hands "
                                "are missing); --crop: each image or frame is one hand crop. Neither (images, hand "
                                "models): an image up to 320 px on its longer side is a crop, a larger one a photo "
                                "whose hands are found; video frames are crops"),
    max_hands: int = typer.Option(2, help="--detect on videos: hands tracked at most"),
    redetect_every: int = typer.Option(10, help="--detect on videos: while some but fewer than --max-hands hands are "
                                       "tracked, look for the others every N frames (1: every frame, as MediaPipe; "
                                       "a lost hand is looked for at once)"),
    detector: str = typer.Option("full", help="--detect: MediaPipe's palm detector, full or lite"),
    tiles: int = typer.Option(1, help="--detect: also look for palms on an N x N grid of overlapping tiles "
                              "(small hands; 1 + N*N detector passes); 1: the whole photo only"),
    fit_input: bool = typer.Option(False, "--fit-input", help="--detect: letterbox photos for the palm detector "
                                   "into 192 px by the smallest multiple of 32 that holds them (192 x 160 for "
                                   "640 x 480) instead of MediaPipe's 192 x 192: faster, palms not quite the same"),
    detector_side: int = typer.Option(192, help="--detect: the palm detector's input side (the longer one with "
                                      "--fit-input), a multiple of 32; smaller is faster and misses more small "
                                      "hands (160: about as many found as 192; 128: far fewer)"),
    min_score: float = typer.Option(0.0, help="drop instances whose score is below this (with --detect: detector "
                                    "score x presence; MediaPipe drops hands below 0.5 presence); 0 keeps all"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="do not print keypoints"),
    coco_images: Path = typer.Option(None, "--coco-images", help="a COCO json: every --json entry gets the "
                                     "image_id of its file (the image whose file_name ends the file's path) and "
                                     "the json's keypoint category_id: COCO results that pycocotools' loadRes "
                                     "reads (file_name kept)"),
    progress: bool = typer.Option(True, help="progress bar with ETA over several image files (on a terminal)"),
) -> None:
    """Predict keypoints; bad files and frames are reported and skipped, and the exit code is 1 if any failed
    (130 after Ctrl-C, 143 after SIGTERM, the results so far written)."""
    from handpose.atomic import JsonListWriter
    from handpose.data.image import read_image
    from handpose.filters import OneEuroFilter
    from handpose.predict import Predictor, expand_inputs
    from handpose.progress import track
    from handpose.video import is_video_source, predict_video
    from handpose.visualize import draw_skeleton, save_image

    videos = [i for i in inputs if is_video_source(i)]
    paths, problems = expand_inputs([i for i in inputs if not is_video_source(i)])
    writer = None
    try:
        if runtime not in ("torch", "onnx"):
            raise HandposeError(f"--runtime must be torch or onnx, got {runtime!r}")
        if hand and detect:
            raise HandposeError("--hand mirrors whole-image crops; with --detect it is not applied")
        image_overlays, video_overlays = _plan_overlays(overlay, paths, videos) if overlay else ([], [])
        crop_model = model or ("mediapipe_hand_full" if detect else None)
        bundle = crop_model
        if runtime == "onnx" or str(crop_model or "").lower().endswith(".onnx"):
            import tempfile

            from handpose.export import export_onnx, load_onnx

            onnx_path = crop_model
            if not str(crop_model or "").lower().endswith(".onnx"):
                onnx_path = Path(tempfile.mkdtemp()) / "model.onnx"
                export_onnx(crop_model, onnx_path)
            # with --detect the palm detector's session takes turns with this one: no spinning threads (OnnxNetwork)
            bundle = load_onnx(onnx_path, spin=not detect)
        predictor = Predictor(bundle, batch_size, flip_test=flip_test, hand=hand, model_hand=model_hand)
        photos = _photos(paths, detect, predictor, hand)
        pipeline = None
        if photos or (detect and videos):
            from handpose.detect.topdown import TopDownPipeline

            keypoints = (predictor if detect else
                         Predictor(model or "mediapipe_hand_full", batch_size, flip_test=flip_test))
            pipeline = TopDownPipeline(detector, keypoints, backend="onnxruntime" if runtime == "onnx" else "torch",
                                       tiles=tiles, fit_input=fit_input, detector_side=detector_side)
        tracker = None
        if detect and videos:
            from handpose.detect.track import HandTracker

            tracker = HandTracker(pipeline, max_hands, redetect_every=redetect_every)
        coco_ids = _coco_image_ids(coco_images, paths, videos, predictor.skeleton) if coco_images else None
        writer = JsonListWriter(json_out) if json_out is not None else None  # checked before any work
    except HandposeError as e:
        _fail(e)
    failures: list[str] = []

    def report(message: str) -> None:
        failures.append(message)
        err_console.print(f"[red]skipped:[/red] {escape(message)}", soft_wrap=True)

    for _, m in problems:
        report(m)
    names = predictor.skeleton.keypoints

    def show(res, label: str) -> None:
        if quiet:
            return
        for n, (kp, sc) in enumerate(zip(res.keypoints, res.scores, strict=True)):
            pts = "  ".join(f"{names[k]}=({x:.1f}, {y:.1f})" for k, (x, y) in enumerate(kp))
            console.print(f"[bold]{escape(label)}[/bold] #{n} score {sc.mean():.3f}: {pts}", soft_wrap=True)

    n_images = 0
    stopped = None
    workers = (1 if len(paths) > batch_size else 0) if workers < 0 else workers
    overlay_of = dict(zip(map(str, paths), image_overlays, strict=False))
    previous = _on_sigterm(_raise_stop)
    try:
        def in_order():  # consecutive crops through the keypoint model, photos through the detector pipeline
            for is_photo, group in itertools.groupby(paths, key=lambda p: p in photos):
                run = list(group)
                yield from (pipeline.predict_paths(run, on_error=lambda path, err: report(str(err)),
                                                   max_pixels=max_pixels or None) if is_photo else
                            predictor.predict_paths(run, on_error=lambda path, err: report(str(err)),
                                                    workers=workers, max_pixels=max_pixels or None))

        results = in_order()
        for res in track(results, len(paths), "predict", progress and len(paths) > 1):
            n_images += 1
            res = res.above(min_score) if min_score > 0 else res
            if writer is not None:
                writer.write(res.to_coco(coco_ids[0][res.file_name], coco_ids[1]) if coco_ids else res.to_coco())
            show(res, res.file_name)
            if overlay is not None:
                try:
                    img = read_image(res.file_name, exif_transpose=True, max_pixels=max_pixels or None)
                    save_image(overlay_of[res.file_name], draw_skeleton(img, res.keypoints, predictor.skeleton))
                except HandposeError as e:
                    report(f"overlay: {e}")
        for source, out in zip(videos, video_overlays or [None] * len(videos), strict=True):
            smoother = OneEuroFilter(min_cutoff, beta) if smooth else None
            start, n_frames = time.perf_counter(), 0
            try:
                for fr in predict_video(tracker or predictor, source, out, smoother,
                                        lambda i, m, s=source: report(f"{s}: {m}"),
                                        progress=not quiet, batch_size=min(batch_size, 16)):
                    n_images += 1
                    n_frames += 1
                    fr.result = fr.result.above(min_score) if min_score > 0 else fr.result
                    if writer is not None:
                        writer.write(fr.to_json())
                    show(fr.result, f"{source} frame {fr.index}")
            except HandposeError as e:
                report(str(e))
            seconds = time.perf_counter() - start
            console.print(f"{escape(str(source))}: {n_frames} frames in {seconds:.1f} s, "
                          f"{n_frames / max(seconds, 1e-9):.1f} frames/s"
                          + (f", palm detector on {tracker.detector_runs}" if tracker else ""), soft_wrap=True)
    except KeyboardInterrupt:
        stopped = 130
    except _Stopped:
        stopped = 143
    finally:
        _on_sigterm(previous)
        if writer is not None:
            writer.close()
    console.print(f"{n_images} images/frames predicted" + (f", {len(failures)} failed" if failures else "")
                  + (f"; results in {escape(str(json_out))}" if json_out else "")
                  + (f"; overlays in {escape(str(overlay))}" if overlay else ""), soft_wrap=True)
    if stopped:
        err_console.print(f"[red]stopped[/red] by {'Ctrl-C' if stopped == 130 else 'SIGTERM'} after {n_images} "
                          "images/frames" + ("; their results are written" if json_out else ""))
        raise typer.Exit(stopped)
    if failures:
        raise typer.Exit(1)


class _Stopped(Exception):
    """SIGTERM turned into an exception, so that results so far are written before the exit."""


def _photos(paths: list[Path], detect: bool | None, predictor, hand: str | None) -> set[Path]:
    """The images ``predict`` sends through the palm detector: all with ``--detect``, none with ``--crop``, and
    without either, for a single-hand 21-keypoint model and no ``--hand``, those that are not hand crops by
    :func:`handpose.detect.topdown.is_hand_crop` (unreadable files go the crop way, which reports them)."""
    if detect is not None:
        return set(paths) if detect else set()
    bundle = predictor.bundle
    if hand or bundle.codec.kind == "paf" or bundle.skeleton.num_keypoints != 21:
        return set()
    from handpose.data.image import image_size
    from handpose.detect.topdown import is_hand_crop

    photos = set()
    for p in paths:
        try:
            if not is_hand_crop(*image_size(p)):
                photos.add(p)
        except HandposeError:
            pass
    return photos


def _raise_stop(signum, frame) -> None:
    raise _Stopped()


def _on_sigterm(handler):
    """Install a SIGTERM handler, returning the previous one (None off the main thread, where none can be set)."""
    try:
        return signal.signal(signal.SIGTERM, handler) if handler is not None else None
    except ValueError:
        return None


def _labelled_records(freihand: Path | None, split: str, coco: Path | None, images: Path | None, margin: float,
                      skeleton=None, allow_outside: bool = False):
    """Records of a FreiHAND split or of a COCO json (one crop per annotation), and their Skeleton
    (:func:`handpose.api.labelled_records`)."""
    from handpose.api import labelled_records

    if freihand is None and coco is None:
        raise HandposeError("give --freihand FOLDER or --coco JSON --images FOLDER")
    if freihand is None and images is None:
        raise HandposeError("--coco needs --images (the image folder)")
    return labelled_records(freihand, split, None, margin, skeleton, allow_outside) if freihand is not None else \
        labelled_records(coco, split, images, margin, skeleton, allow_outside)


FREIHAND_OPT = typer.Option(None, "--freihand", help="a FreiHAND-layout folder")
SPLIT_OPT = typer.Option("val", "--split", help="FreiHAND split: train, val, test or all")
COCO_OPT = typer.Option(None, "--coco", help="a COCO keypoints json (one crop per annotation)")
IMAGES_OPT = typer.Option(None, "--images", help="the COCO image folder")
MARGIN_OPT = typer.Option(0.25, "--margin", help="COCO crops: bbox margin per side, share of the longer side")
OUTSIDE_OPT = typer.Option(False, "--allow-outside-images", help="COCO: accept file_name entries outside --images "
                           "(absolute or with ..)")


@app.command()
def evaluate(
    model: str = typer.Option(None, "--model", "-m", help="bundled model name or model file"),
    freihand: Path = FREIHAND_OPT,
    split: str = SPLIT_OPT,
    coco: Path = COCO_OPT,
    images: Path = IMAGES_OPT,
    margin: float = typer.Option(None, "--margin", help="COCO crops: bbox margin per side, share of the longer side "
                                 "(default: the model's training box_margin, else 0.25)"),
    allow_outside: bool = OUTSIDE_OPT,
    json_out: Path = typer.Option(None, "--json", help="write the metrics as JSON"),
    report: Path = typer.Option(None, help="folder for metrics.json and plots"),
    batch_size: int = typer.Option(32),
    flip_test: bool = typer.Option(False, help="average with the mirrored image (twice the compute)"),
    limit: int = typer.Option(0, help="evaluate the first N records only (0: all)"),
    progress: bool = typer.Option(True, help="progress bar with ETA (on a terminal)"),
) -> None:
    """Mean/median/percentile keypoint error (px and %), per finger, PCK, AUC, within-0.1/0.01 shares."""
    import warnings

    from handpose.api import evaluate as run_evaluation
    from handpose.bundle import load_model
    from handpose.evaluate import format_table

    try:
        bundle = load_model(model)
        if freihand is None and coco is None:
            raise HandposeError("give --freihand FOLDER or --coco JSON --images FOLDER")
        if freihand is None and images is None:
            raise HandposeError("--coco needs --images (the image folder)")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            summary = run_evaluation(bundle, freihand if freihand is not None else coco, split=split,
                                     images=images, margin=margin, allow_outside=allow_outside,
                                     batch_size=batch_size, flip_test=flip_test, limit=limit, report=report,
                                     json_path=json_out, progress=progress)
    except HandposeError as e:
        _fail(e)
    for w in caught:
        err_console.print(f"[yellow]warning:[/yellow] {escape(str(w.message))}", soft_wrap=True)
    if bundle.codec.kind == "paf":  # bottom-up: COCO AP
        console.print_json(json.dumps(summary))
        return
    source = summary.get("box_margin_source")
    if source in ("model", "default"):
        console.print(f"COCO crops: margin {summary['box_margin']:g} per side " + (
            "(the model's training box_margin)" if source == "model" else
            "(the default: the model records no training box_margin)"))
    table = Table(title=escape(f"{summary['n_images']} images, model {model or 'default'}"))
    table.add_column("metric")
    table.add_column("value")
    for row in format_table(summary):
        table.add_row(*row)
    console.print(table)
    if report is not None:
        console.print(f"report in {escape(str(report))}")


@app.command()
def draw(
    out: Path = typer.Argument(..., help="folder for the drawn images"),
    freihand: Path = FREIHAND_OPT,
    split: str = SPLIT_OPT,
    coco: Path = COCO_OPT,
    images: Path = IMAGES_OPT,
    margin: float = MARGIN_OPT,
    allow_outside: bool = OUTSIDE_OPT,
    limit: int = typer.Option(20, help="draw at most this many records (0: all)"),
) -> None:
    """Draw a data set's labels (one colour per finger) to check them by eye; COCO records as their crops."""
    from handpose.data.image import read_image
    from handpose.data.transforms import apply_affine, box_to_input_affine, warp_to_input
    from handpose.visualize import draw_skeleton, save_image

    try:
        records, skeleton = _labelled_records(freihand, split, coco, images, margin, allow_outside=allow_outside)
        for r in records[: limit or None]:
            img, kp = read_image(r.image_path), r.keypoints
            if r.box is not None:  # show the crop the model sees, at 256 px
                M = box_to_input_affine(r.box, (256, 256))
                img, kp = warp_to_input(img, M, (256, 256)), apply_affine(M, kp)
            kp = np.where(r.visible[..., None] > 0, kp, np.nan)
            name = r.record_id.replace("/", "_").replace("#", "_") + ".png"
            save_image(out / name, draw_skeleton(img, kp, skeleton))
    except HandposeError as e:
        _fail(e)
    console.print(f"{min(len(records), limit or len(records))} images drawn in {escape(str(out))}")


@app.command()
def export(
    out: Path = typer.Argument(..., help="the .onnx file to write"),
    model: str = typer.Option(None, "--model", "-m", help="bundled or imported model name (also palm_detection_full"
                              " / _lite), or model file"),
    format: str = typer.Option("onnx", "--format", help="onnx (the only format so far)"),
    opset: int = typer.Option(17, help="ONNX opset"),
    int8: Path = typer.Option(None, help="also write a static int8 model here (needs --calibration)"),
    calibration: list[str] = typer.Option(None, help="images for int8 calibration (files, folders, globs)"),
) -> None:
    """Export a model to ONNX (dynamic batch, preprocessing in the metadata) and check it against PyTorch."""
    from handpose.api import export as run_export

    try:
        done = run_export(model, out, format=format, opset=opset, int8=int8, calibration=calibration)
    except HandposeError as e:
        _fail(e)
    console.print(f"wrote {escape(str(out))}; max |PyTorch - onnxruntime| on a test batch: {done['max_abs_diff']:.3g}")
    if done["int8"]:
        console.print(escape(f"wrote {int8} (int8, calibrated on {done['calibration_images']} images); measure its "
                             f"accuracy with `handpose evaluate --model {int8}`"))


@app.command("import-weights")
def import_weights(
    src: Path = typer.Argument(None, help="the original file: .onnx, .tflite or OpenVINO .xml (with its .bin)"),
    out: Path = typer.Argument(None, help="the converted weights file to write (.pt, float16)"),
    source: str = typer.Option(None, help="which known network the file holds (default: recognised)"),
    list_: bool = typer.Option(False, "--list", help="list the known networks and the shipped converted weights"),
) -> None:
    """Convert a pretrained network once into handpose weights (use it as `pretrained:` in a training config)."""
    from handpose.models.pretrained import SOURCES, convert_source, shipped_weights

    if list_:
        table = Table("name", "original file", "input", "licence", "shipped")
        shipped = set(shipped_weights())
        for s in SOURCES.values():
            table.add_row(s.name, s.file, s.normalize, s.licence, "yes" if s.name in shipped else "")
        console.print(table)
        return
    if src is None or out is None:
        _fail(HandposeError("import-weights needs SRC and OUT (or --list)"))
    try:
        meta = convert_source(src, out, source)
    except HandposeError as e:
        _fail(e)
    console.print(f"wrote {out}: {meta['source']} ({meta['tensors']} tensors, float16) from {src} "
                  f"sha256 {meta['sha256'][:12]}...; licence {meta['licence']}")


@app.command()
def models() -> None:
    """List the bundled models with their cards."""
    from handpose.bundle import DEFAULT_MODEL, bundled_models, load_model

    for name in bundled_models():
        b = load_model(name)
        card = {k: v for k, v in b.card.items() if k != "config"}
        console.print(f"[bold]{name}[/bold]{' (default)' if name == DEFAULT_MODEL else ''}: {b.arch}, "
                      f"{b.skeleton.name}, input {b.input_size}; {card}")


if __name__ == "__main__":
    app()
