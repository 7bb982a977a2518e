"""ONNX export and the onnxruntime runner (optional dependencies: ``pip install handpose[onnx]``).

The exported file holds the network with a dynamic batch size and, in its metadata under ``"handpose"``, the
preprocessing and decoding constants (input size, mean, std, pad mode, Skeleton, codec) as JSON, so
:func:`load_onnx` rebuilds a :class:`~handpose.bundle.ModelBundle` that the ordinary :class:`~handpose.Predictor`
runs: the same pre- and post-processing, the same JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from handpose.bundle import ModelBundle, load_model
from handpose.codecs import make_codec
from handpose.errors import HandposeError
from handpose.skeleton import Skeleton

METADATA_KEY = "handpose"
#: Version of the exported graph's form (2: constants folded, zero padding folded into the convolutions, see
#: :func:`fold_pads_into_convs`); caches of exported files (:mod:`handpose.detect.topdown`) key on it.
GRAPH_VERSION = 2


def fold_pads_into_convs(path: str | Path) -> int:
    """Rewrite the ONNX file ``path`` with its constants folded and every zero ``Pad`` that feeds only a ``Conv``
    moved into that convolution's own ``pads``; returns how many were moved.

    TensorFlow's "SAME" padding of strided convolutions (:func:`handpose.models.backbones.tf_same_pad`, MediaPipe's
    networks) is asymmetric, which ``nn.Conv2d`` cannot express, so the export writes a ``Pad`` before each; ONNX's
    ``Conv`` can (``pads = [top, left, bottom, right]``), and onnxruntime 1.32 leaves those ``Pad`` nodes in place,
    each between two reorders of its NCHWc layout. Measured here: the default model (160 px, one thread,
    interleaved runs) 6.16 -> 4.66 ms median. The constants are folded by onnxruntime's basic graph optimisations
    (hardware-independent, standard operators only), saved and read back with ``onnx``.

    Raises:
        HandposeError: onnx / onnxruntime are not installed.
    """
    try:
        import onnx
        import onnxruntime as ort
        from onnx import helper, numpy_helper
    except ImportError as e:
        raise HandposeError("ONNX export needs the onnx and onnxruntime packages: pip install 'handpose[onnx]'") from e
    path = Path(path)
    folded = path.with_name(path.stem + ".basic.onnx")
    try:
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        opts.log_severity_level = 3  # not its notes on the initializers it drops
        opts.optimized_model_filepath = str(folded)
        ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        model = onnx.load(str(folded))
    finally:
        folded.unlink(missing_ok=True)
    constants = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    readers: dict[str, list] = {}
    for node in model.graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    moved = []
    for pad in model.graph.node:
        if pad.op_type != "Pad" or pad.input[1] not in constants:
            continue
        mode = next((helper.get_attribute_value(a) for a in pad.attribute if a.name == "mode"), b"constant")
        value = constants.get(pad.input[2]) if len(pad.input) > 2 and pad.input[2] else None
        pads = constants[pad.input[1]].astype(np.int64)
        conv = readers.get(pad.output[0], [])
        if (mode != b"constant" or (value is not None and np.any(value != 0)) or len(conv) != 1
                or conv[0].op_type != "Conv" or len(pads) != 8 or np.any(pads[[0, 1, 4, 5]] != 0) or np.any(pads < 0)
                or pad.output[0] in {o.name for o in model.graph.output}):
            continue
        conv = conv[0]
        attrs = {a.name: a for a in conv.attribute}
        if "auto_pad" in attrs and helper.get_attribute_value(attrs["auto_pad"]) not in (b"NOTSET", b""):
            continue
        own = list(helper.get_attribute_value(attrs["pads"])) if "pads" in attrs else [0, 0, 0, 0]
        if "pads" in attrs:
            conv.attribute.remove(attrs["pads"])
        # ONNX pads: [x1_begin (top), x2_begin (left), x1_end (bottom), x2_end (right)]
        conv.attribute.append(helper.make_attribute("pads", [own[0] + int(pads[2]), own[1] + int(pads[3]),
                                                              own[2] + int(pads[6]), own[3] + int(pads[7])]))
        conv.input[0] = pad.input[0]
        moved.append(pad)
    for pad in moved:
        model.graph.node.remove(pad)
    # onnxruntime's saved model imports its own operator domains; keep only those a node uses (other runtimes)
    used = {node.domain for node in model.graph.node} | {""}
    kept = [o for o in model.opset_import if o.domain in used]
    del model.opset_import[:]
    model.opset_import.extend(kept)
    onnx.save(model, str(path))
    return len(moved)


class _LastStage(torch.nn.Module):
    """A bottom-up network's last stage only, as two tensors ``(heatmaps, pafs)``: what decoding uses."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        heatmaps, pafs = self.net(x)[-1]
        return heatmaps, pafs


class _LandmarkOutputs(torch.nn.Module):
    """MediaPipe's landmark network as three tensors (``LANDMARK_OUTPUTS`` of :mod:`handpose.predict`): keypoints in
    the regression codec's units, presence and handedness."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        lm = self.net.landmarks(x)
        return self.net.to_unit(lm.keypoints), lm.presence, lm.handedness


def _dynamic_axes(output_names: list[str], spatial: bool) -> dict:
    if not spatial:
        return {n: {0: "batch"} for n in ["image", *output_names]}
    return {"image": {0: "batch", 2: "height", 3: "width"}, **{n: {0: "batch", 1: f"{n}_n"} for n in output_names}}


def export_network_onnx(net: torch.nn.Module, path: str | Path, example: torch.Tensor, output_names: list[str],
                        metadata: dict, opset: int = 17, spatial: bool = False) -> float:
    """Export any network with one image input to ONNX (dynamic batch, ``metadata`` stored as JSON under
    :data:`METADATA_KEY`) and check it against PyTorch on ``example``.

    Args:
        net: maps ``(B, 3, H, W)`` to one tensor or a tuple of tensors named ``output_names``.
        example: a ``(B, 3, H, W)`` batch fixing the traced input size.
        spatial: H and W dynamic too (and each output's axis 1): for fully convolutional networks whose traced
            constants (e.g. TensorFlow-SAME pads) hold at other sizes; the caller keeps to such sizes.

    Returns:
        The largest absolute difference between the PyTorch and onnxruntime outputs.

    Raises:
        HandposeError: onnx / onnxruntime are not installed.
    """
    try:
        import onnx
    except ImportError as e:
        raise HandposeError("ONNX export needs the onnx and onnxruntime packages: pip install 'handpose[onnx]'") from e
    net = net.eval()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(net, (example,), str(path), input_names=["image"], output_names=output_names,
                      opset_version=opset, dynamic_axes=_dynamic_axes(output_names, spatial),
                      dynamo=False)
    fold_pads_into_convs(path)
    proto = onnx.load(str(path))
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(metadata)
    onnx.save(proto, str(path))
    with torch.inference_mode():
        ref = net(example)
    ref = ref if isinstance(ref, (tuple, list)) else (ref,)
    runner = OnnxNetwork(path)
    out = runner.session.run(None, {runner.input_name: example.numpy()})
    return max(float(np.abs(o - r.numpy()).max()) for o, r in zip(out, ref, strict=True))


def export_onnx(model: ModelBundle | str | Path | None, path: str | Path, opset: int = 17) -> float:
    """Export a model to ONNX and check it against PyTorch on a random batch of 2.

    A single-instance model has one output ``output`` (heatmaps or coordinates); MediaPipe's landmark network (with
    its own 21 keypoints) three, ``output``, ``presence`` and ``handedness`` (what
    :meth:`handpose.predict.Predictor.keypoints` reads); a bottom-up model two, ``heatmaps`` and ``pafs``, of its
    last stage (the earlier stages only serve training). The bundle's preprocessing and decoding constants are the
    metadata (:func:`load_onnx` rebuilds the bundle).

    Returns:
        The largest absolute difference between the PyTorch and onnxruntime outputs.

    Raises:
        HandposeError: onnx / onnxruntime are not installed, or the model cannot be loaded.
    """
    from handpose.predict import LANDMARK_OUTPUTS, is_landmark_network

    bundle = model if isinstance(model, ModelBundle) else load_model(model)
    if bundle.codec.kind == "paf":
        net, names = _LastStage(bundle.network), ["heatmaps", "pafs"]
    elif is_landmark_network(bundle):
        net, names = _LandmarkOutputs(bundle.network), list(LANDMARK_OUTPUTS)
    else:
        net, names = bundle.network, ["output"]
    w, h = bundle.input_size
    x = torch.randn(2, 3, h, w, generator=torch.Generator().manual_seed(0))
    meta = {k: v for k, v in bundle.to_dict().items() if k != "state_dict"}
    return export_network_onnx(net, path, x, names, meta, opset)


def quantize_int8(onnx_path: str | Path, out_path: str | Path, calibration_images: list[np.ndarray],
                  bundle: ModelBundle | None = None) -> Path:
    """Static int8 quantisation with onnxruntime's tools (QDQ format, per-channel weights, min-max calibration).

    Args:
        onnx_path: a model written by :func:`export_onnx` (its metadata is kept).
        out_path: the quantised ``.onnx`` file.
        calibration_images: RGB ``(H, W, 3)`` uint8 images, prepared exactly as for prediction; a few dozen
            typical images are enough.
        bundle: the model's metadata (default: read from ``onnx_path``).

    Raises:
        HandposeError: no calibration images, or onnxruntime missing.
    """
    try:
        from onnxruntime import quantization as q
    except ImportError as e:
        raise HandposeError("int8 quantisation needs onnxruntime: pip install 'handpose[onnx]'") from e
    if not calibration_images:
        raise HandposeError("int8 quantisation needs calibration images")
    from handpose.predict import Predictor

    predictor = Predictor(bundle or load_onnx(onnx_path))
    batches = [{"image": predictor.prepare(img).tensor[None].numpy()} for img in calibration_images]

    class Reader(q.CalibrationDataReader):
        def __init__(self):
            self.it = iter(batches)

        def get_next(self):
            return next(self.it, None)

    q.quantize_static(str(onnx_path), str(out_path), Reader(), quant_format=q.QuantFormat.QDQ, per_channel=True,
                      activation_type=q.QuantType.QUInt8, weight_type=q.QuantType.QInt8)
    import onnx

    src, dst = onnx.load(str(onnx_path)), onnx.load(str(out_path))
    for prop in src.metadata_props:
        if prop.key == METADATA_KEY and not any(p.key == METADATA_KEY for p in dst.metadata_props):
            entry = dst.metadata_props.add()
            entry.key, entry.value = prop.key, prop.value
    onnx.save(dst, str(out_path))
    return Path(out_path)


class OnnxNetwork:
    """An onnxruntime session behind the network interface: ``(B, 3, H, W)`` tensor in, and out the output
    tensor, or for a bottom-up model (two outputs) ``[(heatmaps, pafs)]``: the one-stage form of its output.

    Args:
        path: the ``.onnx`` file. threads: onnxruntime intra-op threads (0: its default, one per physical core).
        spin: let idle intra-op threads spin between runs (onnxruntime's default ``session.intra_op.allow_spinning``
            1: lowest latency for one session run back to back). False where sessions take turns (the top-down
            pipeline's detector and keypoint network): each session has its own pool, and one pool's spinning
            threads take the cores the other needs (measured here, 2 cores, one hand in a 640 x 480 photo, medians
            of 4 rounds of ``benchmarks/bench_threads.py``: 30.5 ms at 2 spinning threads per session, 16.8 without
            spinning, 19.3 at 1 thread).

    Raises:
        HandposeError: onnxruntime missing or a file it cannot load.
    """

    def __init__(self, path: str | Path, threads: int = 0, spin: bool = True):
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise HandposeError("running ONNX models needs onnxruntime: pip install 'handpose[onnx]'") from e
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        if not spin:
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types for invalid files
            raise HandposeError(f"{path}: not a loadable ONNX model ({type(e).__name__}: {e})") from e
        self.path = Path(path)
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = tuple(o.name for o in self.session.get_outputs())

    def eval(self) -> OnnxNetwork:
        return self

    def metadata(self) -> dict:
        """The handpose metadata stored at export.

        Raises:
            HandposeError: the file has no handpose metadata (not exported by handpose), or metadata that is not
                a JSON object.
        """
        raw = self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        if not raw:
            raise HandposeError(f"{self.path}: ONNX file lacks the handpose preprocessing metadata "
                                "(export it with `handpose export`)")
        try:
            meta = json.loads(raw)
        except json.JSONDecodeError as e:
            raise HandposeError(f"{self.path}: the handpose metadata is not valid JSON ({e})") from e
        if not isinstance(meta, dict):
            raise HandposeError(f"{self.path}: the handpose metadata is not a JSON object")
        return meta

    def __call__(self, x: torch.Tensor) -> torch.Tensor | list[tuple[torch.Tensor, torch.Tensor]]:
        outs = [torch.from_numpy(o) for o in self.session.run(None, {self.input_name: x.detach().cpu().numpy()})]
        return [tuple(outs)] if len(outs) == 2 else outs[0]


def load_onnx(path: str | Path, threads: int = 0, spin: bool = True) -> ModelBundle:
    """Load an exported ``.onnx`` file as a :class:`ModelBundle` run by onnxruntime (``threads``, ``spin``: as
    :class:`OnnxNetwork`'s).

    Raises:
        HandposeError: missing file, not ONNX, or no handpose metadata.
    """
    path = Path(path)
    if not path.is_file():
        raise HandposeError(f"{path}: ONNX model file not found")
    net = OnnxNetwork(path, threads, spin)
    d = net.metadata()
    try:
        skeleton = Skeleton.from_dict(d["skeleton"])
        codec = make_codec(input_size=d["input_size"], skeleton=skeleton, **{"kind": "heatmap", **d["codec"]})
        d["mean"], d["std"], d["arch"]  # noqa: B018 -- present before the bundle is built
    except (KeyError, TypeError, ValueError) as e:
        raise HandposeError(f"{path}: the handpose metadata lacks or garbles a field ({type(e).__name__}: {e})") from e
    return ModelBundle(net, skeleton, codec, d["mean"], d["std"], d["arch"],
                       d.get("arch_kwargs", {}), {**d.get("card", {}), "runtime": "onnxruntime"},
                       d.get("pad_mode", "constant"))
