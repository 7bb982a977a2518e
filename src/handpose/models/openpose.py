"""Lightweight OpenPose (Osokin, "Real-time 2D Multi-Person Pose Estimation on CPU: Lightweight OpenPose", 2018).

A MobileNet-v1 backbone cut at stride 8 (its conv5_1 block dilated by 2 instead of strided), the CPM block, an
initial stage and ``refinement_stages`` refinement stages. Every stage emits keypoint heatmaps (K + 1 channels,
the last the background) and part affinity fields (2 per limb); the channel counts come from the Skeleton.
Outputs are raw (no sigmoid), trained with the masked L2 loss summed over stages.

The layout, parameter names inside each block and biases follow Osokin's PyTorch code
(Daniil-Osokin/lightweight-human-pose-estimation.pytorch, ``models/with_mobilenet.py`` and ``modules/conv.py``:
``conv``, ``conv_dw``, ``conv_dw_no_bn``, ``Cpm``, ``InitialStage``, ``RefinementStageBlock``,
``RefinementStage``), with the backbone under ``backbone`` instead of ``model``. The CPM block comes in two
variants (``cpm``):

- ``"caffe"`` (default): the released Caffe network, Intel Open Model Zoo ``human-pose-estimation-0001``, read
  from its OpenVINO IR: the 1x1 ``align`` convolution is followed by ELU, and the residual trunk starts with one
  more 1x1 convolution + ELU (``conv4_3_CPM/red``) before the three depthwise-separable blocks.
- ``"pytorch"``: ``with_mobilenet.py``'s Cpm: ``align`` + ReLU, trunk of the three depthwise-separable blocks.

:func:`import_lightweight_openpose` fills the network from that IR.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from handpose.errors import HandposeError
from handpose.importers.graph import SourceGraph, SourceOp, expect_ops, fold_bn_entries, load_mapped_state

#: PAF channels ``(x, y)`` of each limb of :data:`handpose.skeleton.COCO18` (in its limb order) in the outputs of
#: the released network: ``BODY_PARTS_PAF_IDS`` of Osokin's ``modules/keypoints.py`` (the Open Model Zoo demo's
#: decoder uses the same table). The import reorders the PAF channels so that limb ``i`` is channels
#: ``2 i, 2 i + 1``, handpose's convention (:class:`handpose.codecs.paf.PafCodec`).
OPENPOSE_PAF_CHANNELS = ((12, 13), (20, 21), (14, 15), (16, 17), (22, 23), (24, 25), (0, 1), (2, 3), (4, 5),
                         (6, 7), (8, 9), (10, 11), (28, 29), (30, 31), (34, 35), (32, 33), (36, 37), (18, 19),
                         (26, 27))


def conv(in_ch: int, out_ch: int, k: int = 3, stride: int = 1, dilation: int = 1, bn: bool = True,
         act: str = "relu", bias: bool | None = None) -> nn.Sequential:
    """Convolution (+ BatchNorm) + activation (``relu``, ``elu`` or ``none``); padding keeps the size at stride 1.

    ``bias`` defaults to ``not bn``; Osokin's refinement blocks keep a bias before their BatchNorm (``bias=True``).
    """
    bias = (not bn) if bias is None else bias
    layers: list[nn.Module] = [nn.Conv2d(in_ch, out_ch, k, stride, dilation * (k // 2), dilation, bias=bias)]
    if bn:
        layers.append(nn.BatchNorm2d(out_ch))
    if act == "relu":
        layers.append(nn.ReLU(inplace=True))
    elif act == "elu":
        layers.append(nn.ELU(inplace=True))
    return nn.Sequential(*layers)


def conv_dw(in_ch: int, out_ch: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    """MobileNet v1 block: depthwise 3x3 + BatchNorm + ReLU, pointwise 1x1 + BatchNorm + ReLU (no biases)."""
    return nn.Sequential(
        nn.Conv2d(in_ch, in_ch, 3, stride, dilation, dilation, groups=in_ch, bias=False), nn.BatchNorm2d(in_ch),
        nn.ReLU(inplace=True),
        nn.Conv2d(in_ch, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True),
    )


def conv_dw_no_bn(in_ch: int, out_ch: int, pointwise_bias: bool = False) -> nn.Sequential:
    """Depthwise 3x3 + ELU, pointwise 1x1 + ELU, no BatchNorm (the CPM's blocks). The Caffe network's pointwise
    convolutions have a bias (``pointwise_bias=True``), Osokin's PyTorch ones do not."""
    return nn.Sequential(
        nn.Conv2d(in_ch, in_ch, 3, 1, 1, groups=in_ch, bias=False), nn.ELU(inplace=True),
        nn.Conv2d(in_ch, out_ch, 1, bias=pointwise_bias), nn.ELU(inplace=True),
    )


CPM_VARIANTS = ("caffe", "pytorch")


class Cpm(nn.Module):
    """Lightweight OpenPose's CPM block: 1x1 ``align`` to ``out_ch``, a residual trunk of depthwise-separable
    blocks, then a 3x3 convolution + ReLU.

    Args:
        variant: ``"caffe"`` (align + ELU; trunk: 1x1 + ELU, then three blocks with pointwise biases) or
            ``"pytorch"`` (align + ReLU; trunk: three blocks without biases). See the module doc.

    Raises:
        HandposeError: an unknown variant.
    """

    def __init__(self, in_ch: int, out_ch: int, variant: str = "caffe"):
        super().__init__()
        if variant not in CPM_VARIANTS:
            raise HandposeError(f"unknown Cpm variant {variant!r}; expected one of {CPM_VARIANTS}")
        caffe = variant == "caffe"
        self.align = conv(in_ch, out_ch, k=1, bn=False, act="elu" if caffe else "relu")
        reduce = [conv(out_ch, out_ch, k=1, bn=False, act="elu")] if caffe else []
        self.trunk = nn.Sequential(*reduce, *[conv_dw_no_bn(out_ch, out_ch, pointwise_bias=caffe) for _ in range(3)])
        self.conv = conv(out_ch, out_ch, bn=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.align(x)
        return self.conv(x + self.trunk(x))


def _heads(ch: int, hidden: int, num_heatmaps: int, num_pafs: int) -> tuple[nn.Module, nn.Module]:
    def head(out: int) -> nn.Sequential:
        return nn.Sequential(conv(ch, hidden, k=1, bn=False), conv(hidden, out, k=1, bn=False, act="none"))

    return head(num_heatmaps), head(num_pafs)


class InitialStage(nn.Module):
    """Three 3x3 convolutions, then a heatmap head and a PAF head (1x1, 512 hidden)."""

    def __init__(self, ch: int, num_heatmaps: int, num_pafs: int):
        super().__init__()
        self.trunk = nn.Sequential(*[conv(ch, ch, bn=False) for _ in range(3)])
        self.heatmaps, self.pafs = _heads(ch, 512, num_heatmaps, num_pafs)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t = self.trunk(x)
        return self.heatmaps(t), self.pafs(t)


class RefinementBlock(nn.Module):
    """1x1 to ``out_ch``, then two 3x3 convolutions (the second dilated by 2) with bias + BatchNorm, and a residual
    (Osokin's ``RefinementStageBlock``)."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.initial = conv(in_ch, out_ch, k=1, bn=False)
        self.trunk = nn.Sequential(conv(out_ch, out_ch, bias=True), conv(out_ch, out_ch, dilation=2, bias=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.initial(x)
        return x + self.trunk(x)


class RefinementStage(nn.Module):
    """Five refinement blocks on ``[features, heatmaps, pafs]``, then the two heads (1x1, ``ch`` hidden)."""

    def __init__(self, in_ch: int, ch: int, num_heatmaps: int, num_pafs: int):
        super().__init__()
        self.trunk = nn.Sequential(RefinementBlock(in_ch, ch), *[RefinementBlock(ch, ch) for _ in range(4)])
        self.heatmaps, self.pafs = _heads(ch, ch, num_heatmaps, num_pafs)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t = self.trunk(x)
        return self.heatmaps(t), self.pafs(t)


class LightweightOpenPose(nn.Module):
    """Bottom-up network: ``(B, 3, H, W)`` -> per stage ``(heatmaps (B, K + 1, H/8, W/8), pafs (B, 2 L, H/8, W/8))``.

    Args:
        num_keypoints: K (the background channel is added).
        num_limbs: L, the Skeleton's limbs.
        refinement_stages: stages after the initial one (Lightweight OpenPose: 1).
        width: channels after the CPM block (128).
        cpm: the CPM variant, ``"caffe"`` (the released network's) or ``"pytorch"`` (Osokin's re-implementation).

    Attributes:
        stride: 8. output_kind: ``"paf"``.
    """

    stride = 8
    output_kind = "paf"

    def __init__(self, num_keypoints: int, num_limbs: int, refinement_stages: int = 1, width: int = 128,
                 cpm: str = "caffe"):
        super().__init__()
        self.num_heatmaps, self.num_pafs = num_keypoints + 1, 2 * num_limbs
        self.backbone = nn.Sequential(
            conv(3, 32, stride=2), conv_dw(32, 64), conv_dw(64, 128, stride=2), conv_dw(128, 128),
            conv_dw(128, 256, stride=2), conv_dw(256, 256), conv_dw(256, 512),  # conv4_2
            conv_dw(512, 512, dilation=2), *[conv_dw(512, 512) for _ in range(4)],  # conv5_1 .. conv5_5
        )
        self.cpm = Cpm(512, width, cpm)
        self.initial_stage = InitialStage(width, self.num_heatmaps, self.num_pafs)
        self.refinement_stages = nn.ModuleList(
            RefinementStage(width + self.num_heatmaps + self.num_pafs, width, self.num_heatmaps, self.num_pafs)
            for _ in range(refinement_stages))

    def forward(self, x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        features = self.cpm(self.backbone(x))
        outputs = [self.initial_stage(features)]
        for stage in self.refinement_stages:
            outputs.append(stage(torch.cat([features, *outputs[-1]], dim=1)))
        return outputs


# ----------------------------------------------------------------------------------------------------------------
# Import of the OpenVINO IR (Open Model Zoo human-pose-estimation-0001)


def _conv_layers(model: nn.Module) -> list[tuple[str, nn.Conv2d, str | None, str]]:
    """Every convolution in registration order: ``(prefix, module, BatchNorm prefix or None, activation)``."""
    acts = {nn.ReLU: "relu", nn.ELU: "elu"}
    out = []
    for name, seq in model.named_modules():
        if not isinstance(seq, nn.Sequential):
            continue
        kids = list(seq.named_children())
        for i, (n, c) in enumerate(kids):
            if not isinstance(c, nn.Conv2d):
                continue
            j, bn = i + 1, None
            if j < len(kids) and isinstance(kids[j][1], nn.BatchNorm2d):
                bn, j = f"{name}.{kids[j][0]}", j + 1
            act = acts.get(type(kids[j][1]), "none") if j < len(kids) else "none"
            out.append((f"{name}.{n}", c, bn, act))
    return out


def _is_head(prefix: str) -> bool:
    return ".heatmaps." in prefix or ".pafs." in prefix


def _order_heads(graph: SourceGraph, ops: list[SourceOp]) -> list[SourceOp]:
    """The four head convolutions of one stage as ``[heatmap hidden, heatmap out, PAF hidden, PAF out]``.

    The branch is told by OpenPose's Caffe names (``_L1``: PAFs, ``_L2``: heatmaps; CMU's prototxts and the Open
    Model Zoo model description), hidden vs out by the data flow."""
    branches: dict[str, list[SourceOp]] = {"heatmaps": [], "pafs": []}
    for op in ops:
        kind = "pafs" if "_L1" in op.name else "heatmaps" if "_L2" in op.name else None
        if kind is None:
            raise HandposeError(f"{graph.path}: layer {op.name!r} should be a head convolution of an OpenPose "
                                "branch (_L1 PAFs / _L2 heatmaps); is it the right model?")
        branches[kind].append(op)
    ordered = []
    for kind, pair in branches.items():
        if len(pair) != 2:
            raise HandposeError(f"{graph.path}: expected 2 {kind} head layers here, found "
                                f"{[o.name for o in pair]}; is it the right model?")
        a, b = pair
        ordered += [b, a] if a.inputs and a.inputs[0] in b.outputs else [a, b]
    return ordered


def _check_layer(graph: SourceGraph, op: SourceOp, prefix: str, conv: nn.Conv2d, act: str) -> None:
    """The source layer has our convolution's kind, shape, stride, dilation, padding and activation."""
    groups = op.attrs.get("groups", 1)
    want = {"weight shape": tuple(conv.weight.shape), "groups": conv.groups, "stride": tuple(conv.stride),
            "dilation": tuple(conv.dilation), "padding": tuple(conv.padding), "activation": act}
    got = {"weight shape": tuple(op.weights[0].shape), "groups": groups, "stride": op.attrs.get("stride"),
           "dilation": op.attrs.get("dilation"), "padding": op.attrs.get("padding"),
           "activation": op.attrs.get("activation")}
    if act == "elu" and float(op.attrs.get("activation_attrs", {}).get("alpha", 1.0)) != 1.0:
        got["activation"] = f"elu(alpha={op.attrs['activation_attrs']['alpha']})"
    for key, value in want.items():
        if got[key] != value:
            raise HandposeError(f"{graph.path}: layer {op.name!r} has {key} {got[key]}, but {prefix!r} of "
                                f"LightweightOpenPose needs {value}; is it the right model?")


def _input_normalisation(graph: SourceGraph, first: SourceOp) -> tuple[list[float], list[float]]:
    """``(mean, std)`` in RGB ``[0, 1]`` units equal to the scaling the IR applies to its 0-255 BGR input before
    the first convolution (``x * scale + shift`` per channel, from its Multiply / Add / Subtract constants)."""
    scale, shift = np.ones(3), np.zeros(3)
    for op in graph.ops[:first.index]:
        value = np.broadcast_to(op.weights[0].reshape(-1), (3,)) if op.weights else None
        if op.op == "Multiply" and value is not None:
            scale, shift = scale * value, shift * value
        elif op.op in ("Add", "Subtract") and value is not None:
            shift = shift + (value if op.op == "Add" else -value)
        else:
            raise HandposeError(f"{graph.path}: layer {op.name!r} ({op.op}) before the first convolution is not an "
                                "input scaling this import understands")
    std = 1.0 / (255.0 * scale)
    mean = -shift * std
    return [float(v) for v in mean[::-1]], [float(v) for v in std[::-1]]  # BGR -> RGB


def _refinement_input_order(graph: SourceGraph, stage_first: SourceOp, features: SourceOp,
                            heads: list[SourceOp], num_heatmaps: int, num_pafs: int) -> np.ndarray:
    """Source input channel of each of our refinement-stage input channels ``[features, heatmaps, pafs]``."""
    concat = next((o for o in graph.ops if stage_first.inputs and stage_first.inputs[0] in o.outputs), None)
    if concat is None or concat.op != "Concat" or len(concat.inputs) != 3:
        raise HandposeError(f"{graph.path}: layer {stage_first.name!r} should read the concatenation of the "
                            "features, heatmaps and PAFs of the previous stage; is it the right model?")
    pieces = {features.outputs[0]: "features", heads[1].outputs[0]: "heatmaps", heads[3].outputs[0]: "pafs"}
    sizes = {"features": features.weights[0].shape[0], "heatmaps": heads[1].weights[0].shape[0],
             "pafs": heads[3].weights[0].shape[0]}
    start, offsets = 0, {}
    for name in concat.inputs:
        if name not in pieces:
            raise HandposeError(f"{graph.path}: concatenation {concat.name!r} takes {name!r}, which is not a "
                                "previous stage's output; is it the right model?")
        offsets[pieces[name]] = start
        start += sizes[pieces[name]]
    paf_order = offsets["pafs"] + _paf_permutation(num_pafs)
    return np.concatenate([offsets["features"] + np.arange(sizes["features"]),
                           offsets["heatmaps"] + np.arange(num_heatmaps), paf_order])


def _paf_permutation(num_pafs: int) -> np.ndarray:
    """Source PAF channel of each of our PAF channels (identity unless the COCO18 layout of 38 channels)."""
    if num_pafs != 2 * len(OPENPOSE_PAF_CHANNELS):
        return np.arange(num_pafs)
    return np.asarray([c for pair in OPENPOSE_PAF_CHANNELS for c in pair])


def import_lightweight_openpose(model: LightweightOpenPose, graph: SourceGraph) -> tuple[list[float], list[float]]:
    """Fill ``model`` from the OpenVINO IR of Open Model Zoo ``human-pose-estimation-0001`` (read by
    :func:`handpose.importers.read_graph`), all or nothing.

    What the mapping does besides copying: BatchNorm folded into the IR's biases is kept as identity-affine
    BatchNorm layers (:func:`~handpose.importers.graph.fold_bn_entries`); the first convolution's input channels
    are reversed (the IR takes BGR, the imported network RGB); the PAF output channels of every stage (and the
    matching input channels of the refinement stages) are reordered to :data:`handpose.skeleton.COCO18`'s limb
    order (:data:`OPENPOSE_PAF_CHANNELS`), and the refinement stages' input, ``[PAFs, heatmaps, features]`` in the
    IR, to ours ``[features, heatmaps, PAFs]``. Build the model as ``LightweightOpenPose(18, 19)`` (COCO18) with
    ``cpm="caffe"``.

    Args:
        model: the network to fill (unchanged unless everything fits).
        graph: the IR's :class:`~handpose.importers.graph.SourceGraph`.

    Returns:
        ``(mean, std)``: the RGB normalisation in ``[0, 1]`` units equal to the IR's own input scaling (its
        Multiply / Add in front of the first convolution; ``x / 255 - 0.502`` for this file), for a
        :class:`~handpose.bundle.ModelBundle`.

    Raises:
        HandposeError: a layer count, kind, shape, stride, dilation, padding or activation that differs from the
            model's (another network, another number of refinement stages or keypoints, the other CPM variant),
            naming the file and the first source layer that does not fit.
    """
    convs = graph.of_type("Convolution", "GroupConvolution")
    ours = _conv_layers(model)
    expect_ops(graph, convs, len(ours), "convolution")
    pairs: list[tuple[tuple, SourceOp]] = []
    heads_of_stage: list[list[SourceOp]] = []
    stage_first: list[SourceOp] = []
    features: SourceOp | None = None
    i = 0
    while i < len(ours):
        if _is_head(ours[i][0]):
            heads = _order_heads(graph, convs[i:i + 4])
            heads_of_stage.append(heads)
            pairs += list(zip(ours[i:i + 4], heads, strict=True))
            i += 4
            continue
        if ours[i][0].startswith("refinement_stages.") and ours[i][0].endswith("trunk.0.initial.0"):
            stage_first.append(convs[i])
        if ours[i][0] == "cpm.conv.0":
            features = convs[i]
        pairs.append((ours[i], convs[i]))
        i += 1
    for (prefix, conv_module, _, act), op in pairs:
        _check_layer(graph, op, prefix, conv_module, act)

    state: dict[str, np.ndarray] = {}
    origin: dict[str, str] = {}
    paf_outs = {id(h[3]) for h in heads_of_stage}
    for (prefix, conv_module, bn, _), op in pairs:
        w = op.weights[0]
        b = op.weights[1] if len(op.weights) > 1 else np.zeros(w.shape[0], np.float32)
        if prefix == "backbone.0.0" and w.shape[1] == 3:
            w = w[:, ::-1]  # BGR -> RGB
        if id(op) in paf_outs:
            perm = _paf_permutation(w.shape[0])
            w, b = w[perm], b[perm]
        if prefix.startswith("refinement_stages.") and prefix.endswith("trunk.0.initial.0"):
            s = int(prefix.split(".")[1])
            w = w[:, _refinement_input_order(graph, op, features, heads_of_stage[s], model.num_heatmaps,
                                             model.num_pafs)]
        entries = {f"{prefix}.weight": w}
        if bn is not None:
            bn_module = model.get_submodule(bn)
            entries = fold_bn_entries(prefix, bn, w, b, bn_module.eps)
            if conv_module.bias is not None:
                entries[f"{prefix}.bias"] = np.zeros_like(b)
        elif conv_module.bias is not None:
            entries[f"{prefix}.bias"] = b
        elif np.any(b != 0):
            raise HandposeError(f"{graph.path}: layer {op.name!r} has a non-zero bias, but {prefix!r} of "
                                "LightweightOpenPose has none; is it the right model (or the other cpm variant)?")
        state.update(entries)
        origin.update({k: op.name for k in entries})
    mean_std = _input_normalisation(graph, convs[0])
    load_mapped_state(model, state, graph.path, origin)
    return mean_std


#: Input of the shipped COCO body model: 368 rows as Osokin's ``val.py`` (the setting of the reported 40% AP),
#: 784 columns (the widest coco-person-mini val photo, 640x304, at 368 rows); maps enlarged 4x for decoding.
COCO_INPUT_SIZE = (784, 368)
COCO_UPSAMPLE = 4


def lightweight_openpose_bundle(weights: str | Path = "lightweight_openpose_coco", **_):
    """The released Lightweight OpenPose (Open Model Zoo ``human-pose-estimation-0001``) as a
    :class:`~handpose.bundle.ModelBundle`: COCO18 keypoints, PAF codec with maps enlarged
    :data:`COCO_UPSAMPLE` times, :data:`COCO_INPUT_SIZE` input, the IR's input scaling. Measured with
    ``make example-body`` on coco-person-mini val2017 (26 photos, 50 people): AP 0.409, AP50 0.664 (the paper: 0.40
    on COCO val).

    Args:
        weights: the shipped name, a converted ``.pt`` or the IR's ``.xml``.

    Raises:
        HandposeError: weights that cannot be read or do not fit.
    """
    from handpose.bundle import ModelBundle
    from handpose.codecs import PafCodec
    from handpose.models.pretrained import NORMALIZATIONS, load_weights_strict
    from handpose.skeleton import COCO18

    network = LightweightOpenPose(COCO18.num_keypoints, len(COCO18.limbs))
    load_weights_strict(network, weights, import_lightweight_openpose)
    codec = PafCodec(COCO18, COCO_INPUT_SIZE, stride=network.stride, upsample=COCO_UPSAMPLE)
    mean, std = NORMALIZATIONS["openpose"]
    return ModelBundle(network.eval(), COCO18, codec, list(mean), list(std), "lightweight_openpose",
                       {"refinement_stages": 1}, {"source": "Open Model Zoo human-pose-estimation-0001 (Apache-2.0), "
                                                           "imported", "coco_person_mini_val_ap": 0.409})
