"""The whole job from Python: :func:`train`, :func:`evaluate` and :func:`export`, with the options of the
``handpose train``, ``evaluate`` and ``export`` commands (the commands call these functions).

Example::

    import handpose

    run = handpose.train("configs/hand21_resunet.yaml", max_epochs=5, name="try1")
    metrics = handpose.evaluate(run["model"], "../shared/data/hgcnn-freihand", split="val")
    metrics["error_px"]["mean"]                        # mean keypoint error, original-image pixels
    handpose.export(run["model"], "out/hand.onnx")     # then handpose.predict(..., model="out/hand.onnx")
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from handpose.bundle import ModelBundle, load_model
from handpose.errors import HandposeError
from handpose.skeleton import Skeleton

#: Values of ``box_margin_source`` in :func:`evaluate`'s metrics.
MARGIN_SOURCES = ("model", "default", "argument")


def train_config(config=None, **overrides):
    """A :class:`~handpose.config.TrainConfig` from a config file, a dict or a config, with ``overrides``.

    Args:
        config: a flat YAML file (its paths relative to its folder), a dict of config keys (paths relative to the
            current folder), a ``TrainConfig``, or None for the defaults.
        **overrides: config keys with Python values (``max_epochs=5``, ``input_size=[128, 128]``), applied as
            ``handpose train --set`` applies them: to the top level and to every stage that sets the key
            (:func:`handpose.config.apply_overrides`).

    Returns:
        The resolved ``TrainConfig`` (``handpose config`` lists its keys).

    Raises:
        HandposeError: a missing or invalid file, an unknown key (with the closest names), or an invalid value.
    """
    from handpose.config import TrainConfig, _check_keys, apply_overrides, load_config

    _check_keys(overrides, "override")
    if isinstance(config, TrainConfig):
        if not overrides:
            return config
        values = config.to_dict()
    elif isinstance(config, dict):
        _check_keys(config, "config")
        values = dict(config)
    else:
        values = load_config(config).to_dict()
    return TrainConfig(**apply_overrides(values, overrides))


def train(config=None, *, progress: bool = True, **overrides) -> dict:
    """Train a model, as ``handpose train CONFIG --set key=value ...``.

    Writes into ``out_dir/name`` (the config's run folder): the resolved ``config.yaml``, checkpoints
    (``checkpoints/best.ckpt``, ``last.ckpt``), CSV logs, ``results.png`` (loss, learning rate and validation error
    curves) and ``model.pt``; a config with ``stages`` runs them one after the other (a folder each).

    Args:
        config: a YAML file, a dict of config keys, a ``TrainConfig`` or None (the defaults); see
            :func:`train_config`.
        progress: show the progress bar (epochs, metrics, the whole run's ETA).
        **overrides: config keys, e.g. ``max_epochs=5, lr=1e-3, name="try1"``.

    Returns:
        ``{"model": model.pt path, "best_checkpoint", "monitor", "best_score", "epochs", "minutes",
        "results_png", ...}`` (:func:`handpose.train.train`); load the model with :func:`handpose.load_model` or
        give its path to :func:`handpose.predict`.

    Raises:
        HandposeError: configuration and data errors, before training starts.
    """
    from handpose.train import train as run_train

    return run_train(train_config(config, **overrides), progress=progress)


def labelled_records(data, split: str = "val", images: str | Path | None = None, margin: float = 0.25,
                     skeleton: Skeleton | None = None, allow_outside: bool = False) -> tuple[list, Skeleton]:
    """The labelled records of a FreiHAND-layout folder's split or of a COCO keypoints json (one crop each).

    Args:
        data: a COCO keypoints ``.json``, or else a FreiHAND-layout folder (``training/rgb``,
            ``training_xyz.json``, ``training_K.json``).
        split: FreiHAND split: ``train``, ``val``, ``test`` or ``all``.
        images: the COCO image folder (needed with a json).
        margin: COCO crops: the box grown by this share of its longer side on each side.
        skeleton: the keypoint set (FreiHAND: default HAND21; COCO: default the json's category).
        allow_outside: COCO: accept ``file_name`` entries outside ``images``.

    Returns:
        ``(records, skeleton)``.

    Raises:
        HandposeError: no data, a json without ``images``, or any reader error (naming the file and record).
    """
    from handpose.data.coco import load_coco
    from handpose.data.freihand import load_freihand
    from handpose.skeleton import HAND21

    if data is None:
        raise HandposeError("give the data: a FreiHAND-layout folder, or a COCO json with its image folder")
    data = Path(data)
    if data.suffix.lower() != ".json":
        skeleton = skeleton or HAND21
        return load_freihand(data, split, skeleton=skeleton), skeleton
    if images is None:
        raise HandposeError(f"{data}: a COCO json needs its image folder (images= / --images)")
    return load_coco(data, images, skeleton, margin=margin, allow_outside=allow_outside)


def evaluate(model: ModelBundle | str | Path | None = None, data=None, *, split: str = "val",
             images: str | Path | None = None, margin: float | None = None, allow_outside: bool = False,
             batch_size: int = 32, flip_test: bool = False, limit: int = 0, report: str | Path | None = None,
             json_path: str | Path | None = None, progress: bool = False) -> dict:
    """Measure a model on labelled data, as ``handpose evaluate``.

    Args:
        model: a :class:`~handpose.ModelBundle`, a bundled model name or a model file (``.pt``, ``.ckpt``,
            ``.onnx``); None: the bundled default.
        data: a FreiHAND-layout folder, a COCO keypoints ``.json`` (with ``images``), or a list of
            :class:`~handpose.data.records.Record` (single-instance, the model's keypoints).
        split: FreiHAND split: ``train``, ``val``, ``test`` or ``all``.
        images: the COCO image folder.
        margin: COCO crops: box margin per side, share of the box's longer side; None: the model's training
            ``box_margin`` (its card), else 0.25. Another value than the model's gives a ``UserWarning``.
        allow_outside: COCO: accept ``file_name`` entries outside ``images``.
        batch_size: images per forward pass.
        flip_test: average with the mirrored image (twice the compute).
        limit: evaluate the first ``limit`` records only (0: all).
        report: folder for the report (``metrics.json``, plots, ``index.html``).
        json_path: write the metrics here as JSON.
        progress: show a progress bar with ETA (on a terminal).

    Returns:
        The metrics (:meth:`handpose.evaluate.Evaluation.summary`): ``n_images``, ``error_px`` / ``error_input_px``
        / ``error_pct_of_image`` (``mean``, ``median``, ``p90``, ``p95``, ...), ``pck@0.05`` / ``0.1`` / ``0.2``,
        ``auc_0_30px``, ``within_0.1``, ``within_0.01``, ``per_group_px``, ``per_keypoint_px``, ``worst_images``;
        for COCO crops also ``box_margin`` and ``box_margin_source`` (one of :data:`MARGIN_SOURCES`). A bottom-up
        model gives COCO keypoint AP/AR instead (:func:`handpose.evaluate.evaluate_bottom_up`).

    Raises:
        HandposeError: no data, unreadable files or records, keypoints that disagree with the model's Skeleton.
    """
    import json

    from handpose.evaluate import DEFAULT_BOX_MARGIN, model_box_margin, write_report
    from handpose.evaluate import evaluate as run_evaluation

    bundle = model if isinstance(model, ModelBundle) else load_model(model)
    if bundle.codec.kind == "paf":  # bottom-up: whole images, COCO AP
        from handpose.evaluate import evaluate_bottom_up

        if data is None or isinstance(data, (list, tuple)) or Path(data).suffix.lower() != ".json" or images is None:
            raise HandposeError("a bottom-up model is evaluated on a COCO json with its image folder (--coco JSON "
                                "--images FOLDER)")
        if limit:
            raise HandposeError("limit: not supported for bottom-up models (they are scored on a whole COCO file)")
        summary = evaluate_bottom_up(bundle, data, images, batch_size)
    else:
        summary = {}
        if data is not None and not isinstance(data, (list, tuple)) and Path(data).suffix.lower() == ".json":
            own = model_box_margin(bundle)
            if margin is None:
                margin, source = (DEFAULT_BOX_MARGIN, "default") if own is None else (own, "model")
            else:
                source = "argument"
                if own is not None and margin != own:
                    warnings.warn(f"margin {margin:g}, but the model was trained on crops with box_margin {own:g}: "
                                  "its errors here are not those of its training crops", stacklevel=2)
            summary = {"box_margin": margin, "box_margin_source": source}
        if isinstance(data, (list, tuple)):
            records = list(data)
        else:
            records, _ = labelled_records(data, split, images, margin if margin is not None else DEFAULT_BOX_MARGIN,
                                          bundle.skeleton, allow_outside)
        records = records[:limit] if limit else records
        ev = run_evaluation(bundle, records, batch_size, flip_test, progress=progress)
        summary = {**ev.summary(), **summary}
        if report is not None:
            write_report(ev, summary, report, plots=True, skeleton=bundle.skeleton)
    if json_path is not None:
        json_path = Path(json_path)
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(summary, indent=2))
    return summary


def export(model: ModelBundle | str | Path | None, path: str | Path, *, format: str = "onnx", opset: int = 17,
           int8: str | Path | None = None, calibration: Sequence[str | Path | np.ndarray] | str | Path | None = None
           ) -> dict:
    """Export a model to ONNX, as ``handpose export``: dynamic batch, the preprocessing and decoding constants in
    the metadata, checked against PyTorch on a test batch.

    Args:
        model: a bundle, a bundled or imported model name, a model file, or ``palm_detection_full`` /
            ``palm_detection_lite`` (MediaPipe's palm detector); None: the bundled default.
        path: the ``.onnx`` file to write (runs with :func:`handpose.predict` / ``handpose predict --model``).
        format: ``onnx`` (the only format so far).
        opset: the ONNX opset.
        int8: also write a static int8 model here (onnxruntime's quantisation; needs ``calibration``).
        calibration: int8 calibration images: files, folders, glob patterns or RGB ``(H, W, 3)`` uint8 arrays (a
            few dozen typical images).

    Returns:
        ``{"path", "max_abs_diff" (largest |PyTorch - onnxruntime| output difference on the test batch),
        "int8" (path or None), "calibration_images" (count)}``.

    Raises:
        HandposeError: another format, onnx / onnxruntime missing, a model that cannot be loaded, ``int8`` without
            readable calibration images.
    """
    from handpose.data.image import read_image
    from handpose.export import export_onnx, quantize_int8
    from handpose.predict import expand_inputs

    if format != "onnx":
        raise HandposeError(f"format {format!r}: only onnx is supported")
    path = Path(path)
    out = {"path": str(path), "int8": None, "calibration_images": 0}
    if isinstance(model, str) and model in ("palm_detection_full", "palm_detection_lite"):  # a detector
        from handpose.detect import PalmDetector

        if int8 is not None:
            raise HandposeError("int8: not supported for the palm detector")
        return {**out, "max_abs_diff": PalmDetector(model.rsplit("_", 1)[1]).export_onnx(path, opset)}
    out["max_abs_diff"] = export_onnx(model, path, opset)
    if int8 is not None:
        items = [calibration] if isinstance(calibration, (str, Path, np.ndarray)) else list(calibration or [])
        arrays = [x for x in items if isinstance(x, np.ndarray)]
        paths, problems = expand_inputs([x for x in items if not isinstance(x, np.ndarray)])
        if problems or not (paths or arrays):
            raise HandposeError("int8 needs calibration images" + "".join(f"; {m}" for _, m in problems))
        quantize_int8(path, int8, arrays + [read_image(p) for p in paths])
        out.update(int8=str(int8), calibration_images=len(arrays) + len(paths))
    return out
