"""OpenVINO IR (``.xml`` + ``.bin``) -> :class:`~handpose.importers.graph.SourceGraph`, read with ``openvino``.

The model is read with ``openvino.Core().read_model`` and walked in ``get_ordered_ops()`` order. What the walk folds:

- **Constant subgraphs** (Constant -> Convert -> Subtract / Multiply -> FakeQuantize -> Reshape, as written by
  OpenVINO's post-training quantisation and by FP16 compression) are evaluated in numpy into float32 arrays.
  FakeQuantize follows the opset1 specification
  (https://docs.openvino.ai/2024/documentation/openvino-ir-format/operation-sets/operation-specs/quantization/fake-quantize-1.html):
  ``x <= min(il, ih) -> ol``, ``x > max(il, ih) -> oh``, else
  ``round((x - il) / (ih - il) * (levels - 1)) / (levels - 1) * (oh - ol) + ol``.
- **FakeQuantize and Convert on activations** (int8 simulation of the feature maps, precision casts) are dropped:
  the graph describes the float network; a float re-implementation therefore differs from OpenVINO's int8 run by
  the activation rounding.
- **A bias Add right after a convolution** (``(1, C, 1, 1)`` constant; BatchNorm folded by the converter lands
  here too) becomes the convolution's second weight ``(C,)``, and a ReLU / ELU / Sigmoid right after that becomes
  its ``attrs["activation"]`` (as TFLite's fused activations), when the convolution's output has no other consumer.

Layouts: Convolution weights stay ``(O, I, kh, kw)``; GroupConvolution ``(G, O/G, I/G, kh, kw)`` becomes
``(O, I/G, kh, kw)`` with ``attrs["groups"] = G`` (depthwise: ``(C, 1, kh, kw)``). Convolution ``attrs``:
``stride``, ``dilation``, ``pads_begin``, ``pads_end``, ``padding`` (``(ph, pw)`` when symmetric, else
``"explicit"``), ``auto_pad``, ``groups``, ``activation`` (``"none"`` when no activation was fused). Other operators
keep OpenVINO's type name and attributes, their constant inputs in ``weights`` (e.g. the input scaling
``Multiply`` / ``Add`` that the Model Optimizer bakes in front of the network).

Operator and tensor names are OpenVINO's friendly names; a fused convolution is named after its convolution node
without the ``/WithoutBiases`` suffix the converter appends (``conv4_4_CPM``).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from handpose.errors import HandposeError
from handpose.importers.graph import SourceGraph, SourceOp, require

#: IR element types -> bytes per element (for checking that the .bin holds every constant).
_ELEMENT_BYTES = {"f64": 8, "f32": 4, "f16": 2, "bf16": 2, "i64": 8, "i32": 4, "i16": 2, "i8": 1, "u64": 8,
                  "u32": 4, "u16": 2, "u8": 1, "boolean": 1}
_ACTIVATIONS = {"Relu": "relu", "Elu": "elu", "Sigmoid": "sigmoid", "Clamp": "clamp", "Swish": "swish",
                "HSwish": "hswish", "Tanh": "tanh"}
_CONVOLUTIONS = ("Convolution", "GroupConvolution")


def fake_quantize(x: np.ndarray, in_low, in_high, out_low, out_high, levels: int) -> np.ndarray:
    """OpenVINO's FakeQuantize (opset1) in float64; all arguments broadcast numpy-style.

    Returns:
        The quantised-dequantised values, float64, of the broadcast shape.
    """
    x, il, ih, ol, oh = (np.asarray(a, np.float64) for a in (x, in_low, in_high, out_low, out_high))
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.round((x - il) / (ih - il) * (levels - 1)) / (levels - 1) * (oh - ol) + ol
    return np.where(x <= np.minimum(il, ih), ol, np.where(x > np.maximum(il, ih), oh, q))


def _reshape(x: np.ndarray, shape: np.ndarray, special_zero: bool) -> np.ndarray:
    target = [int(s) for s in np.asarray(shape).reshape(-1)]
    if special_zero:
        target = [x.shape[i] if s == 0 else s for i, s in enumerate(target)]
    return x.reshape(target)


def _eval_constant(kind: str, node, args: list[np.ndarray]) -> np.ndarray:
    """Evaluate one operator whose inputs are all constant (the weight-decompression subgraphs)."""
    attrs = node.get_attributes()
    if kind == "Convert":
        dtype = node.get_output_element_type(0).to_dtype()
        return args[0].astype(dtype)
    if kind == "FakeQuantize":
        return fake_quantize(*args[:5], int(attrs["levels"])).astype(np.float32)
    if kind == "Reshape":
        return _reshape(args[0], args[1], bool(attrs.get("special_zero", False)))
    if kind in ("Squeeze", "Unsqueeze"):
        return args[0].reshape(tuple(node.get_output_shape(0)))
    if kind == "Transpose":
        return np.transpose(args[0], [int(a) for a in args[1]])
    binary = {"Multiply": np.multiply, "Add": np.add, "Subtract": np.subtract, "Divide": np.divide}
    if kind in binary:
        out = binary[kind](args[0], args[1])
        return out.astype(np.result_type(args[0], args[1]))
    raise NotImplementedError(kind)


def _check_bin(xml_path: Path, bin_path: Path) -> None:
    """Raise a :class:`HandposeError` naming the first constant layer whose bytes lie beyond the ``.bin``'s end."""
    if not bin_path.is_file():
        raise HandposeError(f"{bin_path}: the weights file of {xml_path.name} is missing")
    size = bin_path.stat().st_size
    try:
        root = ET.parse(xml_path).getroot()
    except ET.ParseError as e:
        raise HandposeError(f"{xml_path}: not a valid OpenVINO IR xml ({e})") from e
    for layer in root.iter("layer"):
        if layer.get("type") != "Const":
            continue
        data = layer.find("data")
        if data is None or data.get("offset") is None:
            continue
        offset, nbytes = int(data.get("offset")), int(data.get("size", 0))
        if offset + nbytes > size:
            raise HandposeError(f"{bin_path}: constant layer {layer.get('name')!r} needs bytes "
                                f"{offset}..{offset + nbytes}, but the file has {size} (truncated?)")


class _Walker:
    """One pass over the ordered operators; see the module doc for what is folded."""

    def __init__(self, path: Path):
        self.path = path
        self.consts: dict[str, np.ndarray] = {}
        self.alias: dict[str, str] = {}  # folded node -> the tensor name that carries its value
        self.fusable: dict[str, tuple[SourceOp, object]] = {}  # tensor -> (conv op, last OV node fused into it)
        self.ops: list[SourceOp] = []
        self.inputs: list[tuple[str, tuple]] = []

    @staticmethod
    def key(output) -> str:
        node = output.get_node()
        port = output.get_index()
        return node.get_friendly_name() + (f":{port}" if port else "")

    def link(self, name: str, target: str) -> None:
        """Let tensor ``name`` stand for ``target`` (a node folded into another keeps its name reachable)."""
        if name != target:
            self.alias[name] = target

    def resolve(self, output) -> str:
        k = self.key(output)
        while k in self.alias:
            k = self.alias[k]
        return k

    def visit(self, node) -> None:
        kind = node.get_type_name()
        name = node.get_friendly_name()
        srcs = [i.get_source_output() for i in node.inputs()]
        is_const = [self.key(s) in self.consts for s in srcs]
        if kind == "Constant":
            self.consts[name] = np.asarray(node.get_data())
        elif kind == "Parameter":
            self.inputs.append((name, tuple(node.get_output_partial_shape(0).get_min_shape())))
        elif kind == "Result":
            return
        elif srcs and all(is_const):
            try:
                self.consts[name] = _eval_constant(kind, node, [self.consts[self.key(s)] for s in srcs])
            except NotImplementedError:
                raise HandposeError(f"{self.path}: constant operator {name!r} of type {kind} cannot be folded "
                                    "(not supported by this reader)") from None
        elif kind in ("Convert", "FakeQuantize") and not is_const[0] and all(is_const[1:]):
            self.link(name, self.resolve(srcs[0]))  # precision cast / activation quantisation: dropped
        elif kind in _CONVOLUTIONS and not is_const[0] and is_const[1]:
            self.convolution(node, kind, name, srcs)
        elif kind == "Add" and len(srcs) == 2 and is_const[1] and self.fuse_bias(node, name, srcs):
            return
        elif kind in _ACTIVATIONS and self.fuse_activation(node, kind, name, srcs):
            return
        else:
            self.generic(node, kind, name, srcs, is_const)

    def convolution(self, node, kind: str, name: str, srcs) -> None:
        w = self.consts[self.key(srcs[1])].astype(np.float32)
        groups = 1
        if kind == "GroupConvolution":
            groups = w.shape[0]
            w = w.reshape(w.shape[0] * w.shape[1], *w.shape[2:])
        a = node.get_attributes()
        pb, pe = tuple(a["pads_begin"]), tuple(a["pads_end"])
        attrs = {"stride": tuple(a["strides"]), "dilation": tuple(a["dilations"]), "pads_begin": pb,
                 "pads_end": pe, "padding": pb if pb == pe else "explicit", "auto_pad": a.get("auto_pad", "explicit"),
                 "groups": groups, "activation": "none"}
        op_name = name[: -len("/WithoutBiases")] if name.endswith("/WithoutBiases") else name
        op = SourceOp(len(self.ops), kind, op_name, [self.resolve(srcs[0])], [op_name], [w], attrs)
        self.ops.append(op)
        self.link(name, op_name)
        self.fusable[op_name] = (op, node)

    def _fusable_input(self, srcs) -> tuple[SourceOp, object] | None:
        entry = self.fusable.get(self.resolve(srcs[0]))
        if entry is None:
            return None
        _, last = entry
        return entry if len(last.output(0).get_target_inputs()) == 1 else None

    def fuse_bias(self, node, name: str, srcs) -> bool:
        entry = self._fusable_input(srcs)
        if entry is None or len(entry[0].weights) != 1 or entry[0].attrs["activation"] != "none":
            return False
        op, _ = entry
        bias = self.consts[self.key(srcs[1])]
        channels = op.weights[0].shape[0]
        if bias.size != channels or (bias.ndim == 4 and bias.shape[1] != channels):
            return False
        op.weights.append(bias.reshape(-1).astype(np.float32))
        self.link(name, op.name)
        self.fusable[op.name] = (op, node)
        return True

    def fuse_activation(self, node, kind: str, name: str, srcs) -> bool:
        entry = self._fusable_input(srcs)
        if entry is None or entry[0].attrs["activation"] != "none" or len(srcs) != 1:
            return False
        op, _ = entry
        op.attrs["activation"] = _ACTIVATIONS[kind]
        extra = {k: v for k, v in node.get_attributes().items()}
        if extra:
            op.attrs["activation_attrs"] = extra
        self.link(name, op.name)
        del self.fusable[op.name]
        return True

    def generic(self, node, kind: str, name: str, srcs, is_const: list[bool]) -> None:
        weights = [self.consts[self.key(s)].astype(np.float32) for s, c in zip(srcs, is_const, strict=True) if c]
        inputs = [self.resolve(s) for s, c in zip(srcs, is_const, strict=True) if not c]
        outputs = [name] + [f"{name}:{i}" for i in range(1, node.get_output_size())]
        self.ops.append(SourceOp(len(self.ops), kind, name, inputs, outputs, weights, dict(node.get_attributes())))


def read_openvino(path: str | Path) -> SourceGraph:
    """Read an OpenVINO IR ``.xml`` and the ``.bin`` beside it (same stem).

    Returns:
        The operators in execution order with float32 weights (see the module doc); ``inputs`` and ``outputs``
        are ``(name, shape)`` of the model's parameters and results.

    Raises:
        HandposeError: ``openvino`` missing; the ``.bin`` missing or shorter than a constant layer needs (names the
            layer); an xml OpenVINO cannot parse; a constant subgraph with an operator this reader cannot fold.
    """
    path = Path(path)
    ov = require("openvino", path)
    bin_path = path.with_suffix(".bin")
    _check_bin(path, bin_path)
    try:
        model = ov.Core().read_model(str(path), str(bin_path))
    except Exception as e:  # openvino raises RuntimeError with its own check text
        first = str(e).strip().splitlines()
        raise HandposeError(f"{path}: cannot be read as an OpenVINO IR ({first[-1] if first else e})") from e
    walker = _Walker(path)
    try:
        for node in model.get_ordered_ops():
            walker.visit(node)
        outputs = [(out.get_any_name(), tuple(out.get_partial_shape().get_min_shape())) for out in model.outputs]
    except HandposeError:
        raise
    except Exception as e:  # unexpected structure: name the file rather than fail deep in numpy
        raise HandposeError(f"{path}: cannot be read as an OpenVINO IR ({type(e).__name__}: {e})") from e
    return SourceGraph(path, walker.ops, walker.inputs, outputs)
