"""TFLite flatbuffers -> :class:`~handpose.importers.graph.SourceGraph`, read with the ``tflite`` schema package.

Handles the weight encodings of the files in ``../shared/weights``: float32, float16 constants behind DEQUANTIZE
operators (MediaPipe's models), and uint8 / int8 constants with per-tensor or per-channel scale and zero point
(post-training quantised classifiers): ``real = (q - zero_point) * scale`` (TFLite's quantization spec,
https://ai.google.dev/edge/litert/models/quantization_spec). Layouts are converted to PyTorch's:
CONV_2D ``(O, kh, kw, I)`` -> ``(O, I, kh, kw)``; DEPTHWISE_CONV_2D ``(1, kh, kw, C)`` -> ``(C, 1, kh, kw)``;
FULLY_CONNECTED stays ``(out, in)``; PRELU slopes ``(1, 1, C)`` -> ``(C,)``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from handpose.errors import HandposeError
from handpose.importers.graph import SourceGraph, SourceOp, require

# tflite.TensorType values (schema.fbs) -> numpy dtypes
_DTYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 7: np.int16, 9: np.int8}
_ACTIVATIONS = {0: "none", 1: "relu", 2: "relu_n1_to_1", 3: "relu6", 4: "tanh", 5: "sign_bit"}
_PADDING = {0: "same", 1: "valid"}


def _op_names(tflite) -> dict[int, str]:
    return {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}


def _tensor_array(model, graph, index: int, path: Path) -> np.ndarray | None:
    """The constant behind tensor ``index`` as float32 (dequantised), or None if it is an activation."""
    t = graph.Tensors(index)
    buf = model.Buffers(t.Buffer())
    if buf is None or buf.DataLength() == 0:
        if buf is not None and buf.Offset() > 1:  # large models keep buffers after the flatbuffer
            raise HandposeError(f"{path}: tensor {t.Name().decode()!r} uses external buffers, not supported")
        return None
    dtype = _DTYPES.get(t.Type())
    if dtype is None:
        raise HandposeError(f"{path}: tensor {t.Name().decode()!r} has unsupported type {t.Type()}")
    shape = tuple(int(s) for s in t.ShapeAsNumpy()) if t.ShapeLength() else ()
    raw = buf.DataAsNumpy().tobytes()
    want = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    if len(raw) != want:
        raise HandposeError(f"{path}: tensor {t.Name().decode()!r} holds {len(raw)} bytes, its shape {shape} "
                            f"needs {want}")
    arr = np.frombuffer(raw, dtype=dtype).reshape(shape)
    q = t.Quantization()
    if q is not None and q.ScaleLength() and dtype in (np.uint8, np.int8, np.int16, np.int32):
        scale = q.ScaleAsNumpy().astype(np.float64)
        zero = q.ZeroPointAsNumpy().astype(np.float64) if q.ZeroPointLength() else np.zeros_like(scale)
        if scale.size > 1:  # per channel along quantized_dimension
            bshape = [1] * arr.ndim
            bshape[q.QuantizedDimension()] = -1
            scale, zero = scale.reshape(bshape), zero.reshape(bshape)
        return ((arr.astype(np.float64) - zero) * scale).astype(np.float32)
    return arr.astype(np.float32)


def _options(tflite, op, name: str) -> dict:
    """Stride, padding, dilation and fused activation of convolutions, pools, FC and element-wise ops."""
    table = op.BuiltinOptions()
    if table is None:
        return {}
    classes = {
        "CONV_2D": tflite.Conv2DOptions, "DEPTHWISE_CONV_2D": tflite.DepthwiseConv2DOptions,
        "MAX_POOL_2D": tflite.Pool2DOptions, "AVERAGE_POOL_2D": tflite.Pool2DOptions,
        "FULLY_CONNECTED": tflite.FullyConnectedOptions, "ADD": tflite.AddOptions, "MUL": tflite.MulOptions,
        "CONCATENATION": tflite.ConcatenationOptions, "RESIZE_BILINEAR": tflite.ResizeBilinearOptions,
    }
    cls = classes.get(name)
    if cls is None:
        return {}
    o = cls()
    o.Init(table.Bytes, table.Pos)
    attrs: dict = {}
    if hasattr(o, "StrideH"):
        attrs["stride"] = (o.StrideH(), o.StrideW())
    if hasattr(o, "Padding"):
        attrs["padding"] = _PADDING.get(o.Padding(), o.Padding())
    if hasattr(o, "DilationHFactor"):
        attrs["dilation"] = (o.DilationHFactor(), o.DilationWFactor())
    if hasattr(o, "FilterHeight"):
        attrs["kernel"] = (o.FilterHeight(), o.FilterWidth())
    if hasattr(o, "DepthMultiplier"):
        attrs["depth_multiplier"] = o.DepthMultiplier()
    if hasattr(o, "FusedActivationFunction"):
        attrs["activation"] = _ACTIVATIONS.get(o.FusedActivationFunction(), o.FusedActivationFunction())
    if hasattr(o, "Axis"):
        attrs["axis"] = o.Axis()
    if hasattr(o, "AlignCorners"):
        attrs["align_corners"] = bool(o.AlignCorners())
        attrs["half_pixel_centers"] = bool(o.HalfPixelCenters())
    return attrs


def _to_torch_layout(op: str, k: int, arr: np.ndarray) -> np.ndarray:
    if k == 0:
        if op == "CONV_2D" and arr.ndim == 4:
            return arr.transpose(0, 3, 1, 2)
        if op == "DEPTHWISE_CONV_2D" and arr.ndim == 4:
            return arr.transpose(3, 0, 1, 2)
        if op == "PRELU":
            return arr.reshape(-1)
    return arr


def read_tflite(path: str | Path) -> SourceGraph:
    """Read the first subgraph of a ``.tflite`` file.

    Raises:
        HandposeError: the ``tflite`` package is missing, the file is not a TFLite flatbuffer (or is truncated), or a
            tensor's bytes do not match its shape.
    """
    path = Path(path)
    tflite = require("tflite", path)
    data = path.read_bytes()
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise HandposeError(f"{path}: not a TFLite flatbuffer (no 'TFL3' identifier)")
    names = _op_names(tflite)
    try:
        model = tflite.Model.GetRootAsModel(data, 0)
        graph = model.Subgraphs(0)
        n_ops = graph.OperatorsLength()
        tensor_name = lambda i: graph.Tensors(i).Name().decode()  # noqa: E731
        consts: dict[int, np.ndarray | None] = {}

        def const(i: int) -> np.ndarray | None:
            if i not in consts:
                consts[i] = _tensor_array(model, graph, i, path)
            return consts[i]

        ops: list[SourceOp] = []
        for i in range(n_ops):
            op = graph.Operators(i)
            code = model.OperatorCodes(op.OpcodeIndex())
            name = names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "CUSTOM")
            ins = [int(j) for j in op.InputsAsNumpy()] if op.InputsLength() else []
            outs = [int(j) for j in op.OutputsAsNumpy()] if op.OutputsLength() else []
            if name == "DEQUANTIZE" and ins and const(ins[0]) is not None:
                consts[outs[0]] = const(ins[0])  # float16 constant: fold the operator away
                continue
            weights, inputs = [], []
            for j in ins:
                if j < 0:
                    continue
                arr = const(j)
                if arr is None:
                    inputs.append(tensor_name(j))
                else:
                    weights.append(_to_torch_layout(name, len(weights), arr))
            ops.append(SourceOp(len(ops), name, tensor_name(outs[0]) if outs else f"op{i}", inputs,
                                [tensor_name(j) for j in outs], weights, _options(tflite, op, name)))
        shape = lambda i: tuple(int(s) for s in graph.Tensors(i).ShapeAsNumpy())  # noqa: E731
        g_in = [(tensor_name(int(j)), shape(int(j))) for j in graph.InputsAsNumpy()]
        g_out = [(tensor_name(int(j)), shape(int(j))) for j in graph.OutputsAsNumpy()]
    except HandposeError:
        raise
    except Exception as e:  # flatbuffers raises IndexError / struct.error on truncated or corrupt files
        raise HandposeError(f"{path}: cannot be read as a TFLite model ({type(e).__name__}: {e})") from e
    return SourceGraph(path, ops, g_in, g_out)
