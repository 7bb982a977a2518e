"""MediaPipe's palm detection network (BlazePalm, "full" and "lite"), rebuilt in PyTorch, and its weight import.

The layout was read from ``palm_detection_full.tflite`` / ``palm_detection_lite.tflite`` (the mediapipe 0.10.21
wheel; ``read_graph`` lists the operators, their wiring and their weights). It is the BlazePalm detector of
Zhang et al., "MediaPipe Hands: On-device Real-time Hand Tracking" (arXiv:2006.10214), a BlazeFace-style single-shot
detector (Bazarevsky et al., arXiv:1907.05047):

- a 5x5 convolution with stride 2 (192 -> 96 px) and PReLU;
- five stages at 96, 48, 24, 12 and 6 px of :class:`BlazeBlock` residual blocks (depthwise 5x5, pointwise 1x1, add,
  PReLU); each stage after the first opens with a stride-2 block whose shortcut is a 2x2 max pool with its channels
  zero-padded (``PAD`` in the file). Blocks per stage after the opening one: 4 ("full") or 3 ("lite");
- a feature pyramid: the 6 px map is upsampled (bilinear, half-pixel centres), projected by 1x1 conv + PReLU and
  added to the 12 px stage output, then 2 blocks; the same again from 12 to 24 px;
- two SSD heads: at 24 px, 2 anchors per cell (128 channels in); at 12 px, 6 anchors per cell (256 channels in).
  Each anchor has 1 score logit and 18 regressors (box x, y, w, h offsets and 7 keypoints x, y, in input pixels).
  Outputs are concatenated 24 px first, cell-major (row, column, anchor), as the file's RESHAPE / CONCATENATION do:
  2 * 24 * 24 + 6 * 12 * 12 = 2016 anchors, matching :func:`handpose.detect.anchors.ssd_anchors`.

TensorFlow SAME padding: the stride-2 5x5 convolutions of the file pad 1 pixel before and 2 after (the even input
needs 3 in total); PyTorch's symmetric ``padding=2`` would shift every feature by one pixel, so those layers pad
explicitly (:func:`handpose.models.backbones.tf_same_pad`). BatchNorm is folded into the convolution biases in the
file, so the convolutions here carry biases and no BatchNorm.

Input: ``(B, 3, 192, 192)`` RGB in [0, 1] (MediaPipe's ``palm_detection_cpu.pbtxt``: ImageToTensorCalculator
``output_tensor_float_range { min: 0.0 max: 1.0 }``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from handpose.errors import HandposeError
from handpose.importers.graph import SourceGraph, load_mapped_state, read_graph
from handpose.models.backbones import tf_same_pad

INPUT_SIZE = 192
NUM_COORDS = 18  # box (4) + 7 keypoints x 2
VARIANTS = {"full": 4, "lite": 3}  # residual blocks per stage after its opening block


class BlazeBlock(nn.Module):
    """BlazePalm's residual block: depthwise 5x5 (stride 1 or 2) -> pointwise 1x1, plus the shortcut, then PReLU.

    With stride 2 the shortcut is a 2x2 max pool (TF SAME) and, when ``out_ch > in_ch``, zeros appended to its
    channels (the file's ``PAD`` op). No activation between the depthwise and pointwise convolutions.

    Shapes:
        ``(B, in_ch, H, W)`` -> ``(B, out_ch, ceil(H / stride), ceil(W / stride))``.
    """

    def __init__(self, in_ch: int, out_ch: int | None = None, stride: int = 1):
        super().__init__()
        out_ch = out_ch or in_ch
        if out_ch < in_ch or stride not in (1, 2) or (stride == 1 and out_ch != in_ch):
            raise ValueError(f"BlazeBlock({in_ch}, {out_ch}, stride={stride}) has no shortcut")
        self.stride, self.extra_channels = stride, out_ch - in_ch
        self.depthwise = nn.Conv2d(in_ch, in_ch, 5, stride, padding=2 if stride == 1 else 0, groups=in_ch)
        self.pointwise = nn.Conv2d(in_ch, out_ch, 1)
        self.act = nn.PReLU(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return self.act(self.pointwise(self.depthwise(x)) + x)
        h = self.pointwise(self.depthwise(tf_same_pad(x, 5, 2)))
        shortcut = F.max_pool2d(x, 2, 2, ceil_mode=True)
        if self.extra_channels:
            shortcut = F.pad(shortcut, (0, 0, 0, 0, 0, self.extra_channels))
        return self.act(h + shortcut)


class ConvPReLU(nn.Module):
    """Convolution then PReLU; a stride-2 convolution pads TensorFlow-SAME (the stem), a 1x1 one not at all."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 1, stride: int = 1):
        super().__init__()
        self.kernel, self.stride = kernel, stride
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride)
        self.act = nn.PReLU(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(tf_same_pad(x, self.kernel, self.stride)))


class SSDHead(nn.Module):
    """Score and regressor 1x1 convolutions of one feature map, flattened cell-major like the file's RESHAPE.

    Shapes:
        ``(B, C, H, W)`` -> regressors ``(B, H * W * anchors, 18)``, logits ``(B, H * W * anchors, 1)``.
    """

    def __init__(self, in_ch: int, anchors: int):
        super().__init__()
        self.classifier = nn.Conv2d(in_ch, anchors, 1)
        self.regressor = nn.Conv2d(in_ch, anchors * NUM_COORDS, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b = x.shape[0]
        reg = self.regressor(x).permute(0, 2, 3, 1).reshape(b, -1, NUM_COORDS)
        cls = self.classifier(x).permute(0, 2, 3, 1).reshape(b, -1, 1)
        return reg, cls


def _stage(in_ch: int, out_ch: int, blocks: int, downsample: bool = True) -> nn.Sequential:
    first = [BlazeBlock(in_ch, out_ch, 2)] if downsample else []
    return nn.Sequential(*first, *[BlazeBlock(out_ch) for _ in range(blocks)])


class PalmDetectorNet(nn.Module):
    """BlazePalm: ``(B, 3, 192, 192)`` RGB in [0, 1] -> SSD regressors and score logits for 2016 anchors.

    Args:
        variant: ``"full"`` (4 blocks per stage) or ``"lite"`` (3), as ``palm_detection_{variant}.tflite``.

    Returns (forward):
        ``(regressors (B, 2016, 18), logits (B, 2016, 1))``; regressors in 192-px input pixels relative to each
        anchor (decode with :func:`handpose.detect.decode.decode_boxes`), anchors ordered as
        :func:`handpose.detect.anchors.ssd_anchors` (24 px map first, then 12 px).

    Raises:
        HandposeError: unknown variant.
    """

    def __init__(self, variant: str = "full"):
        super().__init__()
        if variant not in VARIANTS:
            raise HandposeError(f"unknown palm detector variant {variant!r}; expected one of {sorted(VARIANTS)}")
        self.variant = variant
        n = VARIANTS[variant]
        self.stem = ConvPReLU(3, 32, kernel=5, stride=2)                # 96 px
        self.stage96 = _stage(32, 32, n, downsample=False)
        self.stage48 = _stage(32, 64, n)
        self.stage24 = _stage(64, 128, n)
        self.stage12 = _stage(128, 256, n)
        self.stage6 = _stage(256, 256, n)
        self.up12 = ConvPReLU(256, 256)                                 # after 2x bilinear upsampling
        self.fpn12 = _stage(256, 256, 2, downsample=False)
        self.head12 = SSDHead(256, anchors=6)
        self.up24 = ConvPReLU(256, 128)
        self.fpn24 = _stage(128, 128, 2, downsample=False)
        self.head24 = SSDHead(128, anchors=2)

    @staticmethod
    def _upsample(x: torch.Tensor) -> torch.Tensor:
        # RESIZE_BILINEAR with half_pixel_centers=True, align_corners=False == PyTorch's align_corners=False.
        return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.stage96(self.stem(x))
        x = self.stage48(x)
        c24 = self.stage24(x)
        c12 = self.stage12(c24)
        c6 = self.stage6(c12)
        p12 = self.fpn12(c12 + self.up12(self._upsample(c6)))
        p24 = self.fpn24(c24 + self.up24(self._upsample(p12)))
        reg24, cls24 = self.head24(p24)
        reg12, cls12 = self.head12(p12)
        return torch.cat([reg24, reg12], 1), torch.cat([cls24, cls12], 1)

    def source_layers(self) -> list[tuple[str, str, int]]:
        """Our layers in the TFLite file's execution order: ``(module path, TFLite op, stride)``.

        This is the mapping table of :func:`import_palm_detector`: the file's k-th CONV_2D / DEPTHWISE_CONV_2D /
        PRELU operator fills the k-th entry.
        """
        out = [("stem.conv", "CONV_2D", 2), ("stem.act", "PRELU", 1)]

        def blocks(name: str, seq: nn.Sequential) -> None:
            for i, b in enumerate(seq):
                out.extend([(f"{name}.{i}.depthwise", "DEPTHWISE_CONV_2D", b.stride),
                            (f"{name}.{i}.pointwise", "CONV_2D", 1), (f"{name}.{i}.act", "PRELU", 1)])

        for name in ("stage96", "stage48", "stage24", "stage12", "stage6"):
            blocks(name, getattr(self, name))
        out += [("up12.conv", "CONV_2D", 1), ("up12.act", "PRELU", 1)]
        blocks("fpn12", self.fpn12)
        out += [("head12.classifier", "CONV_2D", 1), ("head12.regressor", "CONV_2D", 1),
                ("up24.conv", "CONV_2D", 1), ("up24.act", "PRELU", 1)]
        blocks("fpn24", self.fpn24)
        out += [("head24.classifier", "CONV_2D", 1), ("head24.regressor", "CONV_2D", 1)]
        return out


def import_palm_detector(module: PalmDetectorNet, graph: SourceGraph | str | Path) -> None:
    """Fill ``module`` from MediaPipe's ``palm_detection_{full,lite}.tflite`` (or its :class:`SourceGraph`).

    The file's CONV_2D, DEPTHWISE_CONV_2D and PRELU operators are matched in execution order to
    :meth:`PalmDetectorNet.source_layers`; each must have the expected operator type, stride, weight shapes and
    finite values. Nothing is loaded unless every layer fits.

    Raises:
        HandposeError: the file is unreadable or truncated, or a layer does not fit (the message names the file and
            the first source layer that does not: e.g. a "lite" file given to a "full" network).
    """
    if not isinstance(graph, SourceGraph):
        graph = read_graph(graph)
    ops = graph.of_type("CONV_2D", "DEPTHWISE_CONV_2D", "PRELU")
    own = module.state_dict()
    state: dict[str, np.ndarray] = {}
    origin: dict[str, str] = {}
    table = module.source_layers()
    for k, (path, kind, stride) in enumerate(table):
        if k >= len(ops):
            raise HandposeError(f"{graph.path}: the file ends after {len(ops)} weighted layers; {path!r} "
                                f"({kind}) and {len(table) - k - 1} more get nothing (a truncated or other model?)")
        op = ops[k]
        where = f"{graph.path}: layer {k} {op.name!r} ({op.op})"
        if op.op != kind:
            raise HandposeError(f"{where} does not fit {path!r}, which needs a {kind} (is it the "
                                f"{module.variant!r} palm detector?)")
        if kind != "PRELU" and tuple(op.attrs.get("stride", (1, 1))) != (stride, stride):
            raise HandposeError(f"{where} has stride {op.attrs.get('stride')}, {path!r} needs {stride} (is it the "
                                f"{module.variant!r} palm detector?)")
        names = [f"{path}.weight"] + ([f"{path}.bias"] if kind != "PRELU" else [])
        if len(op.weights) != len(names):
            raise HandposeError(f"{where} has {len(op.weights)} constant inputs, {path!r} needs {len(names)}")
        for name, arr in zip(names, op.weights, strict=True):
            if tuple(arr.shape) != tuple(own[name].shape):
                raise HandposeError(f"{where} has shape {tuple(arr.shape)}, but {name!r} of the "
                                    f"{module.variant!r} PalmDetectorNet needs {tuple(own[name].shape)}")
            state[name], origin[name] = arr, op.name
    if len(ops) != len(table):
        raise HandposeError(f"{graph.path}: {len(ops)} weighted layers, the {module.variant!r} palm detector has "
                            f"{len(table)}; first extra layer {ops[len(table)].name!r}")
    load_mapped_state(module, state, graph.path, origin)


def load_palm_weights(module: PalmDetectorNet, weights: str | Path) -> None:
    """Load ``module`` from a MediaPipe ``.tflite`` file (imported layer by layer), a shipped name
    (``palm_detection_full``), a converted ``.pt`` (``handpose import-weights``) or a torch state dict of it.

    Raises:
        HandposeError: missing, unreadable or mismatched file (nothing is loaded in part).
    """
    from handpose.models.pretrained import load_weights_strict

    load_weights_strict(module, weights, import_palm_detector)
