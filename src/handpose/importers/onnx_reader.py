"""ONNX files -> :class:`~handpose.importers.graph.SourceGraph`, read with the ``onnx`` package.

Nodes are taken in the graph's order (the ONNX spec requires it to be topologically sorted). Constants are the
graph's initialisers and the outputs of ``Constant`` nodes; a ``DequantizeLinear`` of a constant (QDQ-format
models) is folded into a float constant, as TFLite's DEQUANTIZE is in the TFLite reader.

Quantised operators (the QLinear family of the ONNX operator set, e.g. ``QLinearConv``, ``QLinearMatMul``, and
onnxruntime's ``com.microsoft`` ``QLinearAdd`` / ``QLinearMul`` / ``QLinearGlobalAveragePool``) carry each quantised
value as an ``(x, x_scale, x_zero_point)`` triple. A constant ``x`` becomes one float32 array of ``weights``,
``(x - x_zero_point) * x_scale`` with a per-tensor scale or a per-channel one (axis 0 for convolution weights, the
last axis for a MatMul right operand, else the node's ``axis`` attribute, default 1, as ``DequantizeLinear``);
the scale and zero-point constants themselves are not listed. ``QLinearConv``'s int32 bias ``B`` is dequantised as
``B * x_scale * w_scale`` (zero point 0), as the operator's definition states
(https://onnx.ai/onnx/operators/onnx__QLinearConv.html). The activation quantisation is kept in
``attrs["quant_inputs"]`` (``(scale, zero_point)`` of each non-constant quantised input, in input order) and
``attrs["quant_output"]``; a fused ReLU / ReLU6 shows only there, as the range the output can hold.

Layouts are PyTorch's already (Conv weights ``(O, I / groups, kh, kw)``), except that a constant right operand of
``MatMul`` / ``QLinearMatMul`` ``(K, N)`` and a ``Gemm`` ``B`` with ``transB = 0`` are transposed to ``(N, K)``, the
``(out, in)`` of a fully connected layer. Attributes of convolutions and pools are given under the names the
mappings use (``kernel``, ``stride``, ``padding`` = ONNX ``pads`` ``(top, left, bottom, right)`` or the ``auto_pad``
string, ``dilation``, ``groups``); every other attribute keeps its ONNX name.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from handpose.errors import HandposeError
from handpose.importers.graph import SourceGraph, SourceOp, require

#: For each quantised operator: input positions of its ``(value, scale, zero_point)`` triples and of its output's
#: ``(scale, zero_point)``. Sources: the ONNX operator docs (QLinearConv, QLinearMatMul, QuantizeLinear,
#: DequantizeLinear) and onnxruntime's contrib operator docs (com.microsoft QLinearAdd, QLinearMul,
#: QLinearGlobalAveragePool, QLinearAveragePool, QLinearSigmoid, QLinearLeakyRelu).
_QUANT = {
    "QLinearConv": (((0, 1, 2), (3, 4, 5)), (6, 7)),
    "QLinearMatMul": (((0, 1, 2), (3, 4, 5)), (6, 7)),
    "QLinearAdd": (((0, 1, 2), (3, 4, 5)), (6, 7)),
    "QLinearMul": (((0, 1, 2), (3, 4, 5)), (6, 7)),
    "QLinearGlobalAveragePool": (((0, 1, 2),), (3, 4)),
    "QLinearAveragePool": (((0, 1, 2),), (3, 4)),
    "QLinearSigmoid": (((0, 1, 2),), (3, 4)),
    "QLinearLeakyRelu": (((0, 1, 2),), (3, 4)),
    "QuantizeLinear": ((), (1, 2)),
    "DequantizeLinear": (((0, 1, 2),), None),
}
#: ONNX attribute -> the SourceOp attrs name the mappings read.
_RENAME = {"kernel_shape": "kernel", "strides": "stride", "pads": "padding", "dilations": "dilation",
           "group": "groups"}


def _dequantize(q: np.ndarray, scale: np.ndarray, zero: np.ndarray | None, axis: int) -> np.ndarray:
    """``(q - zero) * scale`` in float64, then float32; ``scale``/``zero`` per tensor or per channel of ``axis``."""
    scale = np.asarray(scale, np.float64)
    zero = np.zeros_like(scale) if zero is None else np.asarray(zero, np.float64)
    if scale.size > 1:
        shape = [1] * q.ndim
        shape[axis % q.ndim] = -1
        scale, zero = scale.reshape(shape), zero.reshape(shape)
    return ((q.astype(np.float64) - zero) * scale).astype(np.float32)


def _dequant_axis(op: str, position: int, arr: np.ndarray, attrs: dict) -> int:
    if op == "QLinearConv" and position == 3:
        return 0
    if op == "QLinearMatMul" and position == 3:
        return arr.ndim - 1
    return int(attrs.get("axis", 1))


def _attributes(onnx, node) -> dict:
    attrs = {}
    for a in node.attribute:
        value = onnx.helper.get_attribute_value(a)
        if isinstance(value, bytes):
            value = value.decode()
        elif isinstance(value, list):
            value = tuple(value)
        attrs[_RENAME.get(a.name, a.name)] = value
    return attrs


def _shape(value_info) -> tuple:
    dims = value_info.type.tensor_type.shape.dim
    return tuple(int(d.dim_value) if d.HasField("dim_value") else -1 for d in dims)


class _Reader:
    """Walks the nodes once, keeping the constants known so far (initialisers, folded nodes)."""

    def __init__(self, onnx, model, path: Path):
        self.onnx, self.path = onnx, path
        self.graph = model.graph
        self.consts: dict[str, np.ndarray] = {}
        for init in self.graph.initializer:
            try:
                self.consts[init.name] = onnx.numpy_helper.to_array(init)
            except Exception as e:
                raise HandposeError(f"{path}: initialiser {init.name!r} cannot be read ({type(e).__name__}: {e}); "
                                    "truncated or corrupt file?") from e
        init_names = set(self.consts)
        self.inputs = [(i.name, _shape(i)) for i in self.graph.input if i.name not in init_names]
        self.outputs = [(o.name, _shape(o)) for o in self.graph.output]
        self.defined = set(init_names) | {name for name, _ in self.inputs}

    def const(self, name: str) -> np.ndarray | None:
        return self.consts.get(name)

    def read(self) -> SourceGraph:
        ops: list[SourceOp] = []
        for k, node in enumerate(self.graph.node):
            name = node.name or (node.output[0] if node.output else f"node{k}")
            for inp in node.input:
                if inp and inp not in self.defined:
                    raise HandposeError(f"{self.path}: node {name!r} ({node.op_type}) reads {inp!r}, which no earlier "
                                        "node, initialiser or graph input defines; truncated or corrupt file?")
            self.defined.update(o for o in node.output if o)
            attrs = _attributes(self.onnx, node)
            if node.op_type == "Constant":  # one attribute: a tensor ("value") or a number / list
                a = node.attribute[0]
                self.consts[node.output[0]] = (self.onnx.numpy_helper.to_array(a.t) if a.name == "value"
                                               else np.asarray(self.onnx.helper.get_attribute_value(a)))
                continue
            if node.op_type == "DequantizeLinear" and all(self.const(i) is not None for i in node.input[:2]):
                zero = self.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
                self.consts[node.output[0]] = _dequantize(self.const(node.input[0]), self.const(node.input[1]), zero,
                                                          int(attrs.get("axis", 1)))
                continue
            inputs, weights = self._inputs_and_weights(node, attrs)
            ops.append(SourceOp(len(ops), node.op_type, name, inputs, [o for o in node.output if o], weights, attrs))
        return SourceGraph(self.path, ops, self.inputs, self.outputs)

    def _inputs_and_weights(self, node, attrs: dict) -> tuple[list[str], list[np.ndarray]]:
        op, names = node.op_type, list(node.input)
        triples, out = _QUANT.get(op, ((), None))
        taken: set[int] = set()
        inputs: list[str] = []
        weights: list[np.ndarray] = []
        quant_in: list[tuple[float, float]] = []
        for v, s, z in triples:
            taken.update((v, s, z))
            if v >= len(names) or not names[v]:
                continue
            scale = self.const(names[s])
            zero = self.const(names[z]) if z < len(names) and names[z] else None
            if scale is None:
                raise HandposeError(f"{self.path}: node {node.name!r} ({op}) has a non-constant scale {names[s]!r}")
            arr = self.const(names[v])
            if arr is None:
                inputs.append(names[v])
                quant_in.append((float(np.ravel(scale)[0]), float(np.ravel(zero)[0]) if zero is not None else 0.0))
            else:
                weights.append(self._layout(op, v, _dequantize(arr, scale, zero, _dequant_axis(op, v, arr, attrs)),
                                            attrs))
        if out is not None:
            taken.update(out)
            zero = self.const(names[out[1]]) if out[1] < len(names) and names[out[1]] else None
            attrs["quant_output"] = (float(np.ravel(self.const(names[out[0]]))[0]),
                                     float(np.ravel(zero)[0]) if zero is not None else 0.0)
        if triples:
            attrs["quant_inputs"] = quant_in
        for i, n in enumerate(names):
            if i in taken or not n:
                continue
            arr = self.const(n)
            if arr is None:
                inputs.append(n)
            elif op == "QLinearConv" and i == 8:  # int32 bias: scale x_scale * w_scale (per output channel)
                scale = self.const(names[1]).astype(np.float64) * self.const(names[4]).astype(np.float64)
                weights.append((arr.astype(np.float64) * scale).astype(np.float32))
            else:
                weights.append(self._layout(op, i, np.asarray(arr).astype(np.float32), attrs))
        return inputs, weights

    @staticmethod
    def _layout(op: str, position: int, arr: np.ndarray, attrs: dict) -> np.ndarray:
        """Right operands of MatMul (``(K, N)``) and of Gemm without ``transB`` -> ``(N, K)``."""
        right = {"MatMul": 1, "QLinearMatMul": 3, "Gemm": 1}.get(op)
        if arr.ndim == 2 and position == right and not (op == "Gemm" and attrs.get("transB", 0)):
            return np.ascontiguousarray(arr.T)
        return arr


def read_onnx(path: str | Path) -> SourceGraph:
    """Read the main graph of an ``.onnx`` file.

    Args:
        path: the model file (weights inside the file; external-data files are not read).

    Returns:
        The nodes in graph order; see the module doc for the conventions of ``weights`` and ``attrs``.

    Raises:
        HandposeError: the ``onnx`` package is missing; the file is not an ONNX model or is truncated (protobuf
            cannot parse it, it has no nodes, an initialiser's bytes do not fit its shape, or a node reads a tensor
            nothing defines); a quantised node has a non-constant scale. The message names the file (and the node).
    """
    path = Path(path)
    onnx = require("onnx", path)  # its __init__ imports onnx.helper and onnx.numpy_helper

    try:
        model = onnx.load_model_from_string(path.read_bytes())
    except Exception as e:  # google.protobuf.message.DecodeError on truncated or foreign files
        raise HandposeError(f"{path}: cannot be read as an ONNX model ({type(e).__name__}: {e})") from e
    if not model.graph.node:
        raise HandposeError(f"{path}: not an ONNX model (no graph nodes); truncated or a different file type?")
    return _Reader(onnx, model, path).read()
