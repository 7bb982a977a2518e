"""The format-neutral form of an imported model file, and loading mapped arrays into a module.

Every reader returns a :class:`SourceGraph`. Conventions of its arrays (whatever the file's own layout):

- convolution weights ``(out, in / groups, kh, kw)`` (PyTorch's), depthwise ones ``(C, 1, kh, kw)``;
- fully connected weights ``(out, in)``; biases ``(out,)``;
- every constant float32, dequantised as ``(q - zero_point) * scale`` (per tensor or per channel), float16 widened.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from handpose.errors import HandposeError


@dataclass
class SourceOp:
    """One operator of a source file.

    Attributes:
        index: position in execution order.
        op: the format's own operator type (``"CONV_2D"``, ``"QLinearConv"``, ``"Convolution"``, ...).
        name: the operator's (or its first output tensor's) name in the file, used in error messages.
        inputs: names of the non-constant input tensors (other operators' outputs or graph inputs).
        outputs: names of the output tensors.
        weights: constant inputs in the operator's input order, float32, PyTorch layout (see the module doc).
        attrs: options the mapping may check (``stride``, ``padding``, ``dilation``, ``groups``, ``activation``, ...).
    """

    index: int
    op: str
    name: str
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    weights: list[np.ndarray] = field(default_factory=list)
    attrs: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        shapes = [tuple(w.shape) for w in self.weights]
        return f"SourceOp({self.index}, {self.op}, {self.name!r}, weights={shapes})"


@dataclass
class SourceGraph:
    """The operators of one model file in execution order.

    Attributes:
        path: the file read.
        ops: its operators (format-specific no-op plumbing such as TFLite's DEQUANTIZE is already folded away).
        inputs, outputs: ``(name, shape)`` of the graph's inputs and outputs.
    """

    path: Path
    ops: list[SourceOp]
    inputs: list[tuple[str, tuple]] = field(default_factory=list)
    outputs: list[tuple[str, tuple]] = field(default_factory=list)

    def of_type(self, *types: str) -> list[SourceOp]:
        """The operators whose ``op`` is one of ``types``, in execution order."""
        return [o for o in self.ops if o.op in types]

    def with_weights(self) -> list[SourceOp]:
        """The operators that carry at least one constant (convolutions, fully connected layers, PReLU, ...)."""
        return [o for o in self.ops if o.weights]


def read_graph(path: str | Path) -> SourceGraph:
    """Read a model file by its suffix: ``.onnx``, ``.tflite`` or ``.xml`` (OpenVINO IR, with its ``.bin``).

    Raises:
        HandposeError: missing file, unknown suffix, a file the format library cannot parse, or the library missing.
    """
    path = Path(path)
    if not path.is_file():
        raise HandposeError(f"{path}: pretrained model file not found")
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        from handpose.importers.onnx_reader import read_onnx

        return read_onnx(path)
    if suffix == ".tflite":
        from handpose.importers.tflite_reader import read_tflite

        return read_tflite(path)
    if suffix == ".xml":
        from handpose.importers.openvino_reader import read_openvino

        return read_openvino(path)
    raise HandposeError(f"{path}: unknown model file type {suffix!r}; expected .onnx, .tflite or .xml (OpenVINO IR)")


def require(module: str, path: Path, extra: str = "import"):
    """Import an optional format library or raise a :class:`HandposeError` that says how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise HandposeError(f"{path}: reading this file needs the '{module}' package "
                            f"(pip install 'handpose[{extra}]')") from e


def fold_bn_entries(conv: str, bn: str, weight: np.ndarray, bias: np.ndarray, eps: float) -> dict[str, np.ndarray]:
    """State entries that make ``conv`` followed by BatchNorm ``bn`` compute ``conv(x, weight) + bias``.

    The source files hold BatchNorm already folded into the convolution. It is kept as a BatchNorm layer here (so
    fine-tuning can use it) set to an affine map: ``running_mean = 0``, ``running_var = 1 - eps``, ``weight = 1``,
    ``bias = bias``; in eval mode this is exactly ``x + bias``.

    Args:
        conv, bn: parameter-name prefixes of the convolution and its BatchNorm, e.g. ``"features.0.0"``.
        weight: folded convolution weight, PyTorch layout. bias: folded bias ``(out,)``.
        eps: the BatchNorm's epsilon.
    """
    n = weight.shape[0]
    return {f"{conv}.weight": weight, f"{bn}.weight": np.ones(n, np.float32), f"{bn}.bias": bias,
            f"{bn}.running_mean": np.zeros(n, np.float32), f"{bn}.running_var": np.full(n, 1.0 - eps, np.float32)}


def load_mapped_state(module: nn.Module, state: Mapping[str, np.ndarray], source: Path | str,
                      origin: Mapping[str, str] | None = None, prefix: str = "",
                      ignore: Iterable[str] = ("num_batches_tracked",)) -> None:
    """Load mapped arrays into ``module``: every parameter and buffer under ``prefix`` must be given, with its shape.

    Nothing is loaded unless everything fits (no partial loads).

    Args:
        module: the target.
        state: our parameter name -> array (PyTorch layout).
        source: the file the arrays came from (for messages).
        origin: our parameter name -> the source layer it came from (for messages).
        prefix: only the module's entries starting with this are required (e.g. ``"backbone."``).
        ignore: entry-name suffixes not required (BatchNorm's step counter).

    Raises:
        HandposeError: names the file and the first source layer that does not fit (a shape differs, or a parameter
            of the module was given no array, or an array names no parameter).
    """
    origin = origin or {}
    own = {k: v for k, v in module.state_dict().items() if k.startswith(prefix)}
    for key, arr in state.items():
        if key not in own:
            raise HandposeError(f"{source}: layer {origin.get(key, key)!r} maps to {key!r}, which "
                                f"{type(module).__name__} does not have")
        if tuple(own[key].shape) != tuple(np.shape(arr)):
            raise HandposeError(f"{source}: layer {origin.get(key, key)!r} has shape {tuple(np.shape(arr))}, but "
                                f"{key!r} of {type(module).__name__} needs {tuple(own[key].shape)}")
        if not np.all(np.isfinite(arr)):
            raise HandposeError(f"{source}: layer {origin.get(key, key)!r} holds NaN or infinite values")
    missing = [k for k in own if k not in state and not k.endswith(tuple(ignore))]
    if missing:
        raise HandposeError(f"{source}: the file gives no weights for {len(missing)} entries of "
                            f"{type(module).__name__}, first {missing[:3]}")
    tensors = {k: torch.as_tensor(np.ascontiguousarray(v), dtype=own[k].dtype) for k, v in state.items()}
    module.load_state_dict(tensors, strict=False)


def expect_ops(graph: SourceGraph, ops: list[SourceOp], count: int, what: str) -> None:
    """Raise a :class:`HandposeError` naming the file when it has not ``count`` operators of the kind the mapping
    needs (e.g. a different model given to an importer)."""
    if len(ops) != count:
        first = ops[min(len(ops), count) - 1].name if ops else "(none)"
        raise HandposeError(f"{graph.path}: expected {count} {what} layers, the file has {len(ops)} "
                            f"(last compared: {first!r}); is it the right model?")
