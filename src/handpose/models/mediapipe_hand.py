"""MediaPipe Hands' landmark network ("full" and "lite"), rebuilt as a readable PyTorch module, and its importer.

The network (``hand_landmark_full.tflite`` / ``hand_landmark_lite.tflite`` of the mediapipe 0.10.21 wheel, Apache-2.0;
Zhang et al., "MediaPipe Hands: On-device Real-time Hand Tracking", 2020) maps a 224x224 RGB hand crop in ``[0, 1]``
to 21 keypoints. Its trunk is an EfficientNet-lite-like stack of inverted-residual blocks (Sandler et al., CVPR 2018:
1x1 expansion + ReLU6, depthwise kxk + ReLU6, linear 1x1 projection, identity shortcut when the shape is kept), no
squeeze-excitation, ReLU6 everywhere; the last layer is an expansion + depthwise without projection. A global average
pool feeds four fully connected heads. The layer tables below were read off the files' operators (``read_graph``);
:func:`import_mediapipe_hand` checks every operator of a file against the module before loading anything.

Outputs, as MediaPipe's graph ``mediapipe/modules/hand_landmark/hand_landmark_cpu.pbtxt`` decodes them:

- ``Identity`` (63) -> ``keypoints (B, 21, 3)``: x, y in input pixels, z relative depth (scaled like x; MediaPipe
  divides z by 224 and multiplies by ``normalize_z: 0.4``). MediaPipe normalises x, y by the input size
  (``TensorsToLandmarksCalculator``: ``x / 224``) and later multiplies by the image size, so its coordinates are
  continuous with the image edge at 0 and pixel ``i`` spanning ``[i, i + 1]``. This project puts pixel centres at
  integer coordinates (:mod:`handpose.data.transforms`), so ``x_handpose = x_mediapipe - 0.5``
  (:class:`handpose.codecs.pixels.PixelCodec` does that conversion).
- ``Identity_1`` (1) -> ``presence (B,)``: sigmoid, probability that the crop holds a hand (MediaPipe thresholds 0.5).
- ``Identity_2`` (1) -> ``handedness (B,)``: sigmoid, probability of a **right hand in the image as given** (not
  mirrored). MediaPipe's ``TensorsToClassificationCalculator`` (``binary_classification``) gives this score to label
  0 of ``handedness.txt`` ("Left") and documents labels for a mirrored selfie image, so unmirrored the hand is a right
  hand; checked on photos here (see ``tests/test_import_mediapipe_hand.py``).
- ``Identity_3`` (63) -> ``world (B, 21, 3)``: metric 3D keypoints in metres, origin near the hand's centre.

BatchNorm: the files hold every BatchNorm folded into its convolution (their op names still list
``batch_normalization_N``). The module keeps a BatchNorm after every convolution, set to the folded bias with
:func:`~handpose.importers.graph.fold_bn_entries` (identity scale; eval outputs are exact). That restores the
network's training-time layout, so the trunk fine-tunes under new heads like the other BatchNorm backbones here;
note that in train mode BatchNorm normalises with batch statistics, which at first differs from the folded network.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from handpose.errors import HandposeError
from handpose.importers.graph import SourceGraph, SourceOp, fold_bn_entries, load_mapped_state, read_graph
from handpose.models.backbones import tf_same_pad

#: Side of the square input the MediaPipe network was trained on (``hand_landmark_cpu.pbtxt``: 224x224).
NATIVE_SIZE = 224
NUM_LANDMARKS = 21
#: Keras' BatchNormalization epsilon (the source's framework); only matters once BatchNorm is trained.
BN_EPS = 1e-3

# One row per block: (expanded channels, output channels, depthwise kernel, stride). A block whose expanded width
# equals its input width has no 1x1 expansion; output None means no projection (the last layer). Stages end where the
# stride reaches 2, 4, 8, 16 and 32. Read from the two files' operators.
VARIANTS: dict[str, dict] = {
    "full": {
        "stem": 24,
        "stages": (
            ((24, 16, 3, 1),),
            ((64, 24, 3, 2), (144, 24, 3, 1)),
            ((144, 40, 5, 2), (240, 40, 5, 1)),
            ((240, 80, 3, 2), (480, 80, 3, 1), (480, 80, 3, 1), (480, 112, 5, 1), (672, 112, 5, 1),
             (672, 112, 5, 1)),
            ((672, 192, 5, 2), (1152, 192, 5, 1), (1152, 192, 5, 1), (1152, 192, 5, 1), (1152, None, 3, 1)),
        ),
    },
    "lite": {
        "stem": 24,
        "stages": (
            ((24, 16, 3, 1),),
            ((64, 16, 3, 2), (96, 16, 3, 1)),
            ((96, 24, 5, 2), (144, 24, 5, 1)),
            ((144, 48, 3, 2), (288, 48, 3, 1), (288, 48, 3, 1), (288, 64, 5, 1), (384, 64, 5, 1), (384, 64, 5, 1)),
            ((384, 112, 5, 2), (672, 112, 5, 1), (672, 112, 5, 1), (672, 112, 5, 1), (672, None, 3, 1)),
        ),
    },
}


class ConvBN(nn.Module):
    """Convolution (TF ``SAME`` padding, no bias), BatchNorm, optional ReLU6: one fused ``CONV_2D`` or
    ``DEPTHWISE_CONV_2D`` operator of the file.

    Shapes:
        ``(B, in_ch, H, W)`` -> ``(B, out_ch, ceil(H / stride), ceil(W / stride))``.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 1, stride: int = 1, groups: int = 1, act: bool = True):
        super().__init__()
        # stride 1 with an odd kernel: SAME is symmetric, PyTorch's padding does it; stride 2 is padded in forward
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2 if stride == 1 else 0, groups=groups,
                              bias=False)
        self.bn = nn.BatchNorm2d(out_ch, eps=BN_EPS)
        self.act = nn.ReLU6(inplace=True) if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.conv.stride[0] > 1:
            x = tf_same_pad(x, self.conv.kernel_size[0], self.conv.stride[0])
        return self.act(self.bn(self.conv(x)))


class InvertedResidual(nn.Module):
    """Inverted-residual block: ``expand`` 1x1 + ReLU6, ``depthwise`` kxk + ReLU6, ``project`` 1x1 (linear), plus a
    shortcut when input and output widths agree: the identity at stride 1, a 2x2 max pool at stride 2 (the lite
    file's first stride-2 block adds ``MAX_POOL_2D`` of its input).

    Args:
        in_ch: input channels. hidden: expanded channels (equal to ``in_ch``: no expansion layer).
        out_ch: output channels, or None for no projection (and no shortcut): expansion + depthwise only.
        kernel: depthwise kernel size. stride: depthwise stride (1 or 2).
    """

    def __init__(self, in_ch: int, hidden: int, out_ch: int | None, kernel: int, stride: int):
        super().__init__()
        self.expand = ConvBN(in_ch, hidden, 1) if hidden != in_ch else nn.Identity()
        self.depthwise = ConvBN(hidden, hidden, kernel, stride, groups=hidden)
        self.project = ConvBN(hidden, out_ch, 1, act=False) if out_ch is not None else nn.Identity()
        self.out_channels = hidden if out_ch is None else out_ch
        self.shortcut: nn.Module | None = None
        if out_ch == in_ch:
            self.shortcut = nn.Identity() if stride == 1 else nn.MaxPool2d(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.depthwise(self.expand(x)))
        return y if self.shortcut is None else y + self.shortcut(x)


class MediaPipeHandTrunk(nn.Module):
    """The convolutional trunk of MediaPipe's hand landmark network, as a backbone.

    ``stem`` (3x3 conv, stride 2, ReLU6), then ``stage1`` .. ``stage5`` of :class:`InvertedResidual` blocks ending at
    strides 2, 4, 8, 16 and 32 (``stage5`` ends with the expansion + depthwise layer the heads pool).

    Args:
        variant: ``"full"`` or ``"lite"``.

    Shapes:
        ``(B, 3, H, W)`` RGB in ``[0, 1]`` (H, W multiples of 32; 224 for the MediaPipe weights) -> a list of 4
        feature maps at strides 4, 8, 16, 32 with ``out_channels`` channels: full ``[24, 40, 112, 1152]``,
        lite ``[16, 24, 64, 672]`` (56, 28, 14 and 7 cells for a 224 input).

    Raises:
        HandposeError: unknown variant.
    """

    def __init__(self, variant: str = "full"):
        super().__init__()
        if variant not in VARIANTS:
            raise HandposeError(f"unknown MediaPipe hand variant {variant!r}; expected one of {sorted(VARIANTS)}")
        self.variant = variant
        spec = VARIANTS[variant]
        self.stem = ConvBN(3, spec["stem"], 3, 2)
        in_ch = spec["stem"]
        self.out_channels: list[int] = []
        for i, rows in enumerate(spec["stages"]):
            blocks = []
            for hidden, out_ch, kernel, stride in rows:
                blocks.append(InvertedResidual(in_ch, hidden, out_ch, kernel, stride))
                in_ch = blocks[-1].out_channels
            setattr(self, f"stage{i + 1}", nn.Sequential(*blocks))
            if i > 0:
                self.out_channels.append(in_ch)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stage1(self.stem(x))
        feats = []
        for stage in (self.stage2, self.stage3, self.stage4, self.stage5):
            x = stage(x)
            feats.append(x)
        return feats


class HandLandmarks(NamedTuple):
    """What :class:`MediaPipeHandLandmark` returns (see the module doc for units and conventions).

    Attributes:
        keypoints: ``(B, 21, 3)`` x, y in MediaPipe's input pixels (edge at 0), z relative depth.
        presence: ``(B,)`` probability that the input holds a hand.
        handedness: ``(B,)`` probability of a right hand (image as given, not mirrored).
        world: ``(B, 21, 3)`` metric keypoints in metres.
    """

    keypoints: torch.Tensor
    presence: torch.Tensor
    handedness: torch.Tensor
    world: torch.Tensor


class MediaPipeHandLandmark(nn.Module):
    """MediaPipe's hand landmark network: :class:`MediaPipeHandTrunk` as ``backbone``, a global average pool, and the
    four fully connected heads ``keypoint_head``, ``presence_head``, ``handedness_head`` and ``world_head``.

    Args:
        variant: ``"full"`` (2.72 M weights in the file, 2.74 M parameters with the BatchNorm scales) or
            ``"lite"`` (1.01 M, 1.02 M).

    Shapes:
        ``(B, 3, 224, 224)`` RGB in ``[0, 1]`` -> :class:`HandLandmarks`.
    """

    def __init__(self, variant: str = "full"):
        super().__init__()
        self.backbone = MediaPipeHandTrunk(variant)
        c = self.backbone.out_channels[-1]
        self.keypoint_head = nn.Linear(c, NUM_LANDMARKS * 3)
        self.presence_head = nn.Linear(c, 1)
        self.handedness_head = nn.Linear(c, 1)
        self.world_head = nn.Linear(c, NUM_LANDMARKS * 3)
        # untrained: keypoints start near the centre of the input (the imported weights replace this)
        with torch.no_grad():
            self.keypoint_head.bias.view(NUM_LANDMARKS, 3)[:, :2] = NATIVE_SIZE / 2

    @property
    def variant(self) -> str:
        return self.backbone.variant

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` -> ``(B, C)``: the trunk's stride-32 features averaged over space."""
        return self.backbone(x)[-1].mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> HandLandmarks:
        f = self.pooled(x)
        return HandLandmarks(self.keypoint_head(f).view(-1, NUM_LANDMARKS, 3),
                             torch.sigmoid(self.presence_head(f))[:, 0],
                             torch.sigmoid(self.handedness_head(f))[:, 0],
                             self.world_head(f).view(-1, NUM_LANDMARKS, 3))


class MediaPipeHandRegression(MediaPipeHandLandmark):
    """The landmark network as a handpose regression model (zoo names ``mediapipe_hand_full``/``_lite``).

    ``forward`` returns what :class:`~handpose.codecs.regression.RegressionCodec` and the regression losses expect:
    ``(B, 21, 2)`` in ``[-1, 1]`` of the input, ``u = 2 x / 224 - 1`` with x MediaPipe's pixel output (edge at 0),
    which the codec decodes to ``x - 0.5`` in this project's pixel-centre convention. The network pools globally, so
    its outputs are relative to the input whatever its size: a ``[-1, 1]`` value means the same place at any input
    size (the MediaPipe weights were trained at 224). Presence, handedness and world keypoints: :meth:`landmarks`
    (the Predictor's scores of a regression model are 1). The state dict is that of :class:`MediaPipeHandLandmark`.

    Args:
        num_keypoints: 21, or the K of ``keypoint_map``.
        variant: ``"full"`` or ``"lite"``.
        input_size: ``(width, height)``, multiples of 32.
        pretrained: optional MediaPipe ``.tflite`` file to import (:func:`import_mediapipe_hand`).
        keypoint_map: for another keypoint set that is a linear function of the 21 landmarks, its name in
            :data:`handpose.data.convert.HAND21_KEYPOINT_MAPS` (``"hand12"``): the 21 outputs go through a learnable
            ``(K, 21)`` matrix ``adapter`` started at that map, so the model starts at MediaPipe's accuracy on the
            new set and fine-tunes from there.

    Attributes:
        output_kind: ``"regression"``; stride: 0.

    Raises:
        HandposeError: ``num_keypoints`` other than 21 (or the map's K), an unknown ``keypoint_map``, an input size
            that is not a multiple of 32, or a ``pretrained`` file that does not fit.
    """

    output_kind = "regression"
    stride = 0

    def __init__(self, num_keypoints: int = NUM_LANDMARKS, variant: str = "full",
                 input_size: Sequence[int] = (NATIVE_SIZE, NATIVE_SIZE), pretrained: str | Path | None = None,
                 keypoint_map: str = ""):
        from handpose.data.convert import HAND21_KEYPOINT_MAPS

        if keypoint_map and keypoint_map not in HAND21_KEYPOINT_MAPS:
            raise HandposeError(f"mediapipe_hand_{variant}: unknown keypoint_map {keypoint_map!r}; known: "
                                f"{sorted(HAND21_KEYPOINT_MAPS)}")
        mapping = HAND21_KEYPOINT_MAPS[keypoint_map] if keypoint_map else None
        if num_keypoints != (NUM_LANDMARKS if mapping is None else len(mapping)):
            raise HandposeError(f"mediapipe_hand_{variant}: MediaPipe's heads output {NUM_LANDMARKS} keypoints, "
                                f"got num_keypoints={num_keypoints}" + (
                                    f" (keypoint_map {keypoint_map!r} gives {len(mapping)})" if mapping is not None
                                    else "; give a keypoint_map, or use a backbone with a new head for other sets"))
        w, h = (int(v) for v in input_size)
        if w % 32 or h % 32:
            raise HandposeError(f"mediapipe_hand_{variant}: input_size {(w, h)} must be multiples of 32")
        super().__init__(variant)
        # the training loop gives no target to these heads: frozen, so every trainable parameter gets a gradient
        # (DDP needs that); after fine-tuning the trunk their outputs are no longer calibrated
        for head in (self.presence_head, self.handedness_head, self.world_head):
            head.requires_grad_(False)
        self.adapter = None if mapping is None else nn.Parameter(torch.from_numpy(mapping.copy()))
        if pretrained:
            import_mediapipe_hand(self, pretrained)

    def landmarks(self, x: torch.Tensor) -> HandLandmarks:
        """The network's four outputs (:class:`HandLandmarks`) for ``(B, 3, H, W)`` RGB in ``[0, 1]``."""
        return super().forward(x)

    def to_unit(self, landmark_xyz: torch.Tensor) -> torch.Tensor:
        """MediaPipe's keypoint output ``(B, 21, 3)`` (pixels of a 224 input) -> this model's output ``(B, K, 2)`` in
        ``[-1, 1]`` (through ``adapter`` for another keypoint set)."""
        xy = landmark_xyz[..., :2]
        if self.adapter is not None:
            xy = torch.einsum("kj,bjc->bkc", self.adapter, xy)
        return xy * (2.0 / NATIVE_SIZE) - 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.to_unit(self.keypoint_head(self.pooled(x)).view(-1, NUM_LANDMARKS, 3))


# ----------------------------------------------------------------------------------------------------------------
# Import: the file's operators -> the module's parameters
# ----------------------------------------------------------------------------------------------------------------

@dataclass
class _Walk:
    """Follows the file's data flow from tensor to tensor, collecting state entries in execution order."""

    graph: SourceGraph
    state: dict
    origin: dict
    used: set

    def __post_init__(self):
        self.consumers: dict[str, list[SourceOp]] = {}
        for op in self.graph.ops:
            for t in op.inputs:
                self.consumers.setdefault(t, []).append(op)

    def fail(self, what: str) -> HandposeError:
        return HandposeError(f"{self.graph.path}: {what}; is it the right MediaPipe hand landmark file "
                             "(full or lite) for this module?")

    def next_op(self, tensor: str, types: tuple[str, ...], want: str) -> SourceOp:
        """The operator of one of ``types`` that reads ``tensor``."""
        found = [o for o in self.consumers.get(tensor, []) if o.op in types]
        if not found:
            after = [f"{o.op} {_label(o)}" for o in self.consumers.get(tensor, [])] or ["nothing"]
            raise self.fail(f"{want} expects a {'/'.join(types)} next, the file has {', '.join(after)} after "
                            f"tensor {_short(tensor)!r}")
        return found[0]

    def check(self, op: SourceOp, key: str, shape: tuple, attrs: dict) -> None:
        """Raise naming ``op`` when its weight shape or options differ from the module's layer ``key``."""
        w = op.weights[0] if op.weights else np.zeros(0)
        if tuple(w.shape) != tuple(shape):
            raise self.fail(f"layer {_label(op)} has weights {tuple(w.shape)}, but {key!r} needs {tuple(shape)}")
        for name, value in attrs.items():
            if op.attrs.get(name) != value:
                raise self.fail(f"layer {_label(op)} has {name}={op.attrs.get(name)!r}, {key!r} needs {value!r}")
        if len(op.weights) != 2:
            raise self.fail(f"layer {_label(op)} has {len(op.weights)} constants, expected weight and bias")

    def conv(self, x: str, prefix: str, layer: ConvBN) -> str:
        """Map the fused conv operator reading ``x`` onto ``layer`` (named ``prefix``); returns its output."""
        c = layer.conv
        depthwise = c.groups > 1
        op = self.next_op(x, ("DEPTHWISE_CONV_2D",) if depthwise else ("CONV_2D",), f"layer {prefix!r}")
        act = "relu6" if isinstance(layer.act, nn.ReLU6) else "none"
        self.check(op, f"{prefix}.conv.weight", tuple(c.weight.shape), {"stride": c.stride, "activation": act})
        if op.attrs.get("padding") != "same":
            raise self.fail(f"layer {_label(op)} has padding {op.attrs.get('padding')!r}, {prefix!r} needs 'same'")
        entries = fold_bn_entries(f"{prefix}.conv", f"{prefix}.bn", op.weights[0], op.weights[1], layer.bn.eps)
        self.add(op, entries)
        return op.outputs[0]

    def add(self, op: SourceOp, entries: dict) -> None:
        self.used.add(op.index)
        for k, v in entries.items():
            self.state[k] = v
            self.origin[k] = _label(op)


def _short(name: str) -> str:
    """A fused TFLite tensor name lists every merged layer, separated by ';': the last is the operator's own."""
    return name.split(";")[-1]


def _label(op: SourceOp) -> str:
    return f"#{op.index} {op.op} {_short(op.name)!r}"


def _walk_trunk(walk: _Walk, trunk: MediaPipeHandTrunk, prefix: str) -> str:
    """Map the trunk's layers, following the file's tensors from its input; returns the trunk's output tensor."""
    x = walk.graph.inputs[0][0] if walk.graph.inputs else ""
    x = walk.conv(x, f"{prefix}stem", trunk.stem)
    for s in range(1, 6):
        for b, block in enumerate(getattr(trunk, f"stage{s}")):
            name = f"{prefix}stage{s}.{b}"
            block_in = x
            if isinstance(block.expand, ConvBN):
                x = walk.conv(x, f"{name}.expand", block.expand)
            x = walk.conv(x, f"{name}.depthwise", block.depthwise)
            if isinstance(block.project, ConvBN):
                x = walk.conv(x, f"{name}.project", block.project)
            if block.shortcut is not None:
                skip = block_in
                if isinstance(block.shortcut, nn.MaxPool2d):
                    pool = walk.next_op(block_in, ("MAX_POOL_2D",), f"the shortcut of {name!r}")
                    if pool.attrs.get("kernel") != (2, 2) or pool.attrs.get("stride") != (2, 2):
                        raise walk.fail(f"layer {_label(pool)} is not a 2x2 stride-2 max pool ({name!r})")
                    skip = pool.outputs[0]
                add = walk.next_op(x, ("ADD",), f"the shortcut of {name!r}")
                if set(add.inputs) != {x, skip}:
                    raise walk.fail(f"layer {_label(add)} does not add the input of block {name!r} to its output")
                x = add.outputs[0]
    return x


def _walk_heads(walk: _Walk, model: MediaPipeHandLandmark, x: str, prefix: str) -> None:
    """Map the four fully connected heads; each is identified by the graph output it produces (MediaPipe's order:
    landmarks, hand flag, handedness, world landmarks; the middle two through a LOGISTIC)."""
    graph = walk.graph
    mean = walk.next_op(x, ("MEAN",), "the global average pool")
    fcs = [o for o in walk.consumers.get(mean.outputs[0], []) if o.op == "FULLY_CONNECTED"]
    produces = {}
    for fc in fcs:
        after = [o for o in walk.consumers.get(fc.outputs[0], []) if o.op == "LOGISTIC"]
        produces[(after[0] if after else fc).outputs[0]] = fc
    outputs = [name for name, _ in graph.outputs]
    heads = (("keypoint_head", model.keypoint_head), ("presence_head", model.presence_head),
             ("handedness_head", model.handedness_head), ("world_head", model.world_head))
    if len(outputs) != len(heads):
        raise walk.fail(f"the file has {len(outputs)} outputs, the network has {len(heads)} heads")
    for out, (name, head) in zip(outputs, heads, strict=True):
        fc = produces.get(out)
        if fc is None:
            raise walk.fail(f"no fully connected layer after the average pool produces output {out!r} ({name})")
        walk.check(fc, f"{prefix}{name}.weight", tuple(head.weight.shape), {"activation": "none"})
        walk.add(fc, {f"{prefix}{name}.weight": fc.weights[0], f"{prefix}{name}.bias": fc.weights[1]})


def import_mediapipe_hand(module: nn.Module, graph: SourceGraph | str | Path, prefix: str = "") -> None:
    """Load MediaPipe's hand landmark weights (a ``.tflite`` file, or its :class:`SourceGraph`) into a module.

    The target is ``module`` itself or its submodule at ``prefix`` (e.g. ``"backbone."`` of a
    :class:`~handpose.models.heads.TopDownModel` built on :class:`MediaPipeHandTrunk`):

    - a :class:`MediaPipeHandLandmark` (or :class:`MediaPipeHandRegression`) gets every layer of the file;
    - a :class:`MediaPipeHandTrunk` gets the convolutional layers only (the file's four heads are left out), for
      training from the trunk under a new head.

    The mapping follows the file's tensors from its input in execution order: each fused convolution must have the
    module's operator type, weight shape, stride, ``SAME`` padding and activation, and every shortcut must add the
    block's input (or its 2x2 max pool) to its output. Every weighted operator of the file must be used (a trunk
    leaves out only the heads). Nothing is loaded unless all of it fits.

    Raises:
        HandposeError: unreadable file (from :func:`~handpose.importers.graph.read_graph`), a target that is not one
            of the classes above, or the first layer of the file that does not fit (named with its index, type and
            name), and the file.
    """
    if not isinstance(graph, SourceGraph):
        graph = read_graph(graph)
    target = module.get_submodule(prefix.rstrip(".")) if prefix else module
    if isinstance(target, MediaPipeHandLandmark):
        trunk, trunk_prefix = target.backbone, f"{prefix}backbone."
    elif isinstance(target, MediaPipeHandTrunk):
        trunk, trunk_prefix = target, prefix
    else:
        raise HandposeError(f"{graph.path}: import_mediapipe_hand fills a MediaPipeHandLandmark or a "
                            f"MediaPipeHandTrunk, got {type(target).__name__} at prefix {prefix!r}")
    walk = _Walk(graph, {}, {}, set())
    x = _walk_trunk(walk, trunk, trunk_prefix)
    weighted = graph.with_weights()
    if isinstance(target, MediaPipeHandLandmark):
        _walk_heads(walk, target, x, prefix)
    else:
        heads = {o.index for o in graph.of_type("FULLY_CONNECTED")}
        weighted = [o for o in weighted if o.index not in heads and o.op != "MEAN"]
    unused = [o for o in weighted if o.index not in walk.used and o.op != "MEAN"]
    if unused:
        raise walk.fail(f"layer {_label(unused[0])} (and {len(unused) - 1} more) has no place in the module")
    # the adapter of a model for another keypoint set is not in the file: it keeps its map
    load_mapped_state(module, walk.state, graph.path, walk.origin, prefix, ignore=("num_batches_tracked", "adapter"))


def mediapipe_hand_bundle(path: str | Path, variant: str):
    """A :class:`~handpose.bundle.ModelBundle` of MediaPipe's landmark network read from ``path`` (the ``.tflite``,
    a converted ``.pt`` or the shipped name ``mediapipe_hand_full`` / ``mediapipe_hand_lite``), ready for
    :class:`~handpose.predict.Predictor` (HAND21, 224x224 input, ``[0, 1]`` input: mean 0, std 1; letterbox border
    ``border``, as MediaPipe's ``ImageToTensorCalculator`` replicates the edge by default). The network's weights
    are in the bundle, so a saved bundle loads without the ``.tflite`` file.

    Raises:
        HandposeError: as :func:`import_mediapipe_hand`.
    """
    from handpose.bundle import ModelBundle
    from handpose.codecs import RegressionCodec
    from handpose.models.pretrained import load_weights_strict
    from handpose.skeleton import HAND21

    net = MediaPipeHandRegression(NUM_LANDMARKS, variant)
    load_weights_strict(net, path, import_mediapipe_hand)
    net.eval()
    card = {"source": f"MediaPipe Hands hand_landmark_{variant}.tflite (mediapipe 0.10.21, Apache-2.0)",
            "imported_from": Path(path).name}
    return ModelBundle(net, HAND21, RegressionCodec((NATIVE_SIZE, NATIVE_SIZE)), [0.0, 0.0, 0.0], [1.0, 1.0, 1.0],
                       f"mediapipe_hand_{variant}", {}, card, "border")
