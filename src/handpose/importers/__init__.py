"""Readers of pretrained-weight files, one module per file format.

A reader turns a model file into a :class:`~handpose.importers.graph.SourceGraph`: the file's operators in execution
order, each with its constant inputs dequantised to float32 arrays in PyTorch's layout. Readers know formats, not
architectures: which array goes into which parameter of a handpose module is decided by a mapping that lives next to
the module it fills (for example :func:`handpose.models.backbones.import_mobilenet_v2`).

- :mod:`handpose.importers.onnx_reader`: ONNX initialisers (``onnx``), QLinear int8 dequantised.
- :mod:`handpose.importers.tflite_reader`: TFLite flatbuffers (``tflite`` schema package), float16 / uint8 / int8.
- :mod:`handpose.importers.openvino_reader`: OpenVINO IR (``openvino``), FakeQuantize / Convert constants folded.

The format libraries are optional extras (``pip install handpose[import]``); a reader raises
:class:`~handpose.errors.HandposeError` naming the missing package when it is absent.
"""

from handpose.importers.graph import SourceGraph, SourceOp, load_mapped_state, read_graph

__all__ = ["SourceGraph", "SourceOp", "load_mapped_state", "read_graph"]
