"""ResNet-18/34/50, MobileNetV2 and MobileNetV3-Small feature extractors with torchvision's module and parameter names.

torchvision cannot be a dependency here (its PyPI wheels need CUDA libraries), so the architectures are rebuilt
with the same names and shapes: a torchvision ImageNet checkpoint saved to a local file loads with
:func:`load_pretrained` (``strict=True`` on every backbone parameter; the classifier is dropped). Architectures:
ResNet v1.5 (He et al., CVPR 2016; stride on the 3x3 convolution of the bottleneck, as torchvision),
MobileNetV2 (Sandler et al., CVPR 2018; torchvision's ``features`` layout), MobileNetV3-Small (Howard et al.,
ICCV 2019, Table 2; torchvision's ``mobilenet_v3_small`` layout).

ImageNet weights in other formats are mapped onto these modules by :func:`import_mobilenet_v2` (the ONNX model
zoo's int8 MobileNetV2) and :func:`import_mobilenet_v3_small` (TF-slim's uint8 TFLite MobileNetV3-Small), from a
:class:`~handpose.importers.graph.SourceGraph` read by :func:`handpose.importers.read_graph`.

Every backbone maps ``(B, 3, H, W)`` to a list of feature maps at strides 4, 8, 16 and 32, with channels
``out_channels``. Optional: ``timm:<name>`` uses any timm model with ``features_only=True`` where timm imports.

Getting ImageNet weights on a machine with internet (nothing is downloaded by handpose)::

    import torch, torchvision
    torch.save(torchvision.models.resnet18(weights="IMAGENET1K_V1").state_dict(), "resnet18.pth")
    # then: model_kwargs: {pretrained: resnet18.pth} in the training config
"""

from __future__ import annotations

import difflib
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from handpose.errors import HandposeError
from handpose.importers.graph import SourceGraph, SourceOp, expect_ops, fold_bn_entries, load_mapped_state
from handpose.models.unet import BasicBlock


class Bottleneck(nn.Module):
    """ResNet bottleneck (1x1, 3x3 with the stride, 1x1 to 4x channels), torchvision's names."""

    expansion = 4

    def __init__(self, in_ch: int, width: int, stride: int = 1):
        super().__init__()
        out_ch = width * self.expansion
        self.conv1 = nn.Conv2d(in_ch, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_ch, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


class ResNet(nn.Module):
    """ResNet trunk without its classifier: ``conv1 bn1 relu maxpool layer1..layer4`` (torchvision names).

    Args:
        block: ``"basic"`` or ``"bottleneck"``.
        layers: blocks per stage, e.g. ``(2, 2, 2, 2)`` for ResNet-18.

    Shapes:
        ``(B, 3, H, W)`` -> features at strides 4, 8, 16, 32 with ``out_channels`` channels.
    """

    def __init__(self, block: str, layers: tuple[int, int, int, int]):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        expansion = Bottleneck.expansion if block == "bottleneck" else 1
        in_ch = 64
        self.out_channels = []
        for i, (width, n) in enumerate(zip((64, 128, 256, 512), layers, strict=True)):
            blocks = []
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(Bottleneck(in_ch, width, stride) if block == "bottleneck"
                              else BasicBlock(in_ch, width, stride))
                in_ch = width * expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            self.out_channels.append(in_ch)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        feats = []
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)
            feats.append(x)
        return feats


class Conv2dSame(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow's ``"SAME"`` padding, computed from each input's size.

    TensorFlow pads ``total = max((ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0)`` pixels along a side of length
    ``n``, ``total // 2`` before and the rest after (https://www.tensorflow.org/api_docs/python/tf/nn#notes_on_padding_2):
    a stride-2 3x3 convolution on an even size pads 0 top/left and 1 bottom/right, a stride-2 5x5 one 1 and 2.
    PyTorch's symmetric padding shifts such layers' outputs by a pixel against the TensorFlow original. The
    parameters are those of ``nn.Conv2d`` (same names, so checkpoints load either way).
    """

    def __init__(self, in_ch: int, out_ch: int, k: int, stride: int = 1, groups: int = 1, bias: bool = False):
        super().__init__(in_ch, out_ch, k, stride, 0, groups=groups, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(tf_same_pad(x, self.kernel_size[0], self.stride[0], self.dilation[0]))


def tf_same_pad(x: torch.Tensor, kernel: int, stride: int, dilation: int = 1) -> torch.Tensor:
    """Pad ``(B, C, H, W)`` as TensorFlow's ``"SAME"`` padding does before an unpadded convolution or pooling:
    ``total = max((ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0)`` per side length ``n``, ``total // 2`` before
    (top / left) and the rest after (https://www.tensorflow.org/api_docs/python/tf/nn#notes_on_padding_2). Square
    kernels, strides and dilations."""
    pads = []
    for n in (int(x.shape[-1]), int(x.shape[-2])):  # F.pad order: width first
        # int(): an ONNX export traces the sizes as constants, so the pads are constants that onnxruntime folds into
        # the convolution (traced as tensors they became a Shape/Gather/Sub chain and a separate Pad node, which
        # also broke onnxruntime's NCHWc layout into reorders around it)
        total = max((math.ceil(n / stride) - 1) * stride + (kernel - 1) * dilation + 1 - n, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


def conv_bn_act(in_ch: int, out_ch: int, k: int = 3, stride: int = 1, groups: int = 1,
                act: type[nn.Module] | None = nn.ReLU6, norm: Callable[[int], nn.Module] = nn.BatchNorm2d,
                same_padding: bool = False) -> nn.Sequential:
    """torchvision's ``Conv2dNormActivation`` layout: ``[conv, bn, act]`` as ``.0``, ``.1``, ``.2``.

    Args:
        act: activation class (``nn.ReLU6``, ``nn.ReLU``, ``nn.Hardswish``) or None for a linear layer.
        norm: BatchNorm class (torchvision's MobileNetV3 uses ``eps=0.001, momentum=0.01``).
        same_padding: TensorFlow "SAME" padding (:class:`Conv2dSame`) on strided convolutions; with stride 1 and an
            odd kernel it equals the symmetric ``(k - 1) // 2``, which is kept.
    """
    conv = (Conv2dSame(in_ch, out_ch, k, stride, groups) if same_padding and stride > 1
            else nn.Conv2d(in_ch, out_ch, k, stride, (k - 1) // 2, groups=groups, bias=False))
    layers = [conv, norm(out_ch)]
    if act is not None:
        layers.append(act(inplace=True))
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: optional 1x1 expansion, 3x3 depthwise, 1x1 linear projection (torchvision names)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, expand_ratio: int):
        super().__init__()
        hidden = int(round(in_ch * expand_ratio))
        self.use_res_connect = stride == 1 and in_ch == out_ch
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(conv_bn_act(in_ch, hidden, k=1))
        layers += [conv_bn_act(hidden, hidden, stride=stride, groups=hidden),
                   nn.Conv2d(hidden, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class TappedFeatures(nn.Module):
    """A ``features`` sequence whose outputs after the layers in ``taps`` are the feature maps (MobileNets)."""

    features: nn.Sequential
    taps: tuple[int, ...]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.taps:
                feats.append(x)
        return feats


class MobileNetV2(TappedFeatures):
    """MobileNetV2 (width 1.0) ``features`` trunk with torchvision's indices ``features.0`` .. ``features.18``.

    Shapes:
        ``(B, 3, H, W)`` -> features at strides 4, 8, 16, 32 with 24, 32, 96 and 1280 channels.
    """

    # (expand ratio t, channels c, repeats n, first stride s): the table of the MobileNetV2 paper.
    SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                (6, 320, 1, 1))

    def __init__(self):
        super().__init__()
        layers: list[nn.Module] = [conv_bn_act(3, 32, stride=2)]
        in_ch = 32
        for t, c, n, s in self.SETTINGS:
            for i in range(n):
                layers.append(InvertedResidual(in_ch, c, s if i == 0 else 1, t))
                in_ch = c
        layers.append(conv_bn_act(in_ch, 1280, k=1))
        self.features = nn.Sequential(*layers)
        # indices after which the stride reaches 4, 8, 16, 32
        self.taps = (3, 6, 13, 18)
        self.out_channels = [24, 32, 96, 1280]



def make_divisible(v: float, divisor: int = 8) -> int:
    """Round ``v`` to the nearest multiple of ``divisor``, not below 90% of ``v`` (the MobileNet papers' rule, as
    torchvision's ``_make_divisible`` and TF-slim's ``_make_divisible``)."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


class SqueezeExcitation(nn.Module):
    """Squeeze-and-excitation with MobileNetV3's hard sigmoid (torchvision's ``SqueezeExcitation`` names).

    ``x * hardsigmoid(fc2(relu(fc1(mean_hw(x)))))`` with ``hardsigmoid(z) = relu6(z + 3) / 6`` (Howard et al. 2019,
    section 5.2; TF-slim computes it as ``relu6(z + 3) * (1 / 6)``). ``fc1``/``fc2`` are 1x1 convolutions with bias.
    """

    def __init__(self, channels: int, squeeze: int):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.activation = nn.ReLU()
        self.scale_activation = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))


class InvertedResidualV3(nn.Module):
    """MobileNetV3 block ``block``: [1x1 expansion], kxk depthwise, [squeeze-excitation], 1x1 linear projection.

    Args:
        in_ch, kernel, expanded, out_ch, use_se, hard_swish, stride: a row of :attr:`MobileNetV3Small.SETTINGS`.
        same_padding: TensorFlow "SAME" padding on the strided depthwise convolution.
    """

    def __init__(self, in_ch: int, kernel: int, expanded: int, out_ch: int, use_se: bool, hard_swish: bool,
                 stride: int, same_padding: bool = False):
        super().__init__()
        act = nn.Hardswish if hard_swish else nn.ReLU
        norm = partial(nn.BatchNorm2d, eps=0.001, momentum=0.01)
        self.use_res_connect = stride == 1 and in_ch == out_ch
        layers: list[nn.Module] = []
        if expanded != in_ch:
            layers.append(conv_bn_act(in_ch, expanded, k=1, act=act, norm=norm))
        layers.append(conv_bn_act(expanded, expanded, kernel, stride, groups=expanded, act=act, norm=norm,
                                  same_padding=same_padding))
        if use_se:
            layers.append(SqueezeExcitation(expanded, make_divisible(expanded // 4, 8)))
        layers.append(conv_bn_act(expanded, out_ch, k=1, act=None, norm=norm))
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x) if self.use_res_connect else self.block(x)


class MobileNetV3Small(TappedFeatures):
    """MobileNetV3-Small (width 1.0) ``features`` trunk with torchvision's indices ``features.0`` .. ``features.12``.

    ``features.0`` 3x3 stride-2 convolution to 16 channels with hard-swish, ``features.1`` .. ``features.11`` the
    blocks of :attr:`SETTINGS`, ``features.12`` a 1x1 convolution to 576 channels with hard-swish. BatchNorm
    ``eps=0.001`` (torchvision's and TF-slim's).

    Args:
        same_padding: TensorFlow "SAME" padding on the stride-2 convolutions (see :class:`Conv2dSame`), needed to
            reproduce a TensorFlow-trained original exactly; False gives torchvision's symmetric padding.

    Shapes:
        ``(B, 3, H, W)`` -> features at strides 4, 8, 16, 32 with 16, 24, 48 and 576 channels.
    """

    #: (in, kernel, expanded, out, squeeze-excitation, hard-swish, stride): Table 2 of Howard et al. (ICCV 2019),
    #: as torchvision's ``_mobilenet_v3_conf("mobilenet_v3_small")`` and TF-slim's ``V3_SMALL``.
    SETTINGS = ((16, 3, 16, 16, True, False, 2), (16, 3, 72, 24, False, False, 2), (24, 3, 88, 24, False, False, 1),
                (24, 5, 96, 40, True, True, 2), (40, 5, 240, 40, True, True, 1), (40, 5, 240, 40, True, True, 1),
                (40, 5, 120, 48, True, True, 1), (48, 5, 144, 48, True, True, 1), (48, 5, 288, 96, True, True, 2),
                (96, 5, 576, 96, True, True, 1), (96, 5, 576, 96, True, True, 1))

    def __init__(self, same_padding: bool = False):
        super().__init__()
        norm = partial(nn.BatchNorm2d, eps=0.001, momentum=0.01)
        layers: list[nn.Module] = [conv_bn_act(3, 16, stride=2, act=nn.Hardswish, norm=norm,
                                               same_padding=same_padding)]
        layers += [InvertedResidualV3(*row, same_padding=same_padding) for row in self.SETTINGS]
        layers.append(conv_bn_act(96, 576, k=1, act=nn.Hardswish, norm=norm))
        self.features = nn.Sequential(*layers)
        self.same_padding = same_padding
        # indices after which the stride reaches 4, 8, 16, 32
        self.taps = (1, 3, 8, 12)
        self.out_channels = [16, 24, 48, 576]



class TimmBackbone(nn.Module):
    """Any timm model with ``features_only=True`` (optional; timm must import, which needs torchvision).

    Args:
        name: timm's model name. **kwargs: passed to ``timm.create_model``.
    """

    def __init__(self, name: str, **kwargs):
        super().__init__()
        try:
            import timm
        except Exception as e:  # ImportError, or torchvision failing inside timm's import
            raise HandposeError(f"backbone 'timm:{name}' needs timm, which does not import here ({e})") from e
        self.body = timm.create_model(name, pretrained=False, features_only=True, out_indices=(1, 2, 3, 4), **kwargs)
        self.out_channels = list(self.body.feature_info.channels())

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return list(self.body(x))


BACKBONES: dict[str, Callable[..., nn.Module]] = {
    "resnet18": lambda: ResNet("basic", (2, 2, 2, 2)),
    "resnet34": lambda: ResNet("basic", (3, 4, 6, 3)),
    "resnet50": lambda: ResNet("bottleneck", (3, 4, 6, 3)),
    "mobilenet_v2": MobileNetV2,
    "mobilenet_v3_small": MobileNetV3Small,
    # MediaPipe's hand landmark trunk (handpose.models.mediapipe_hand): a hand prior, not an ImageNet classifier
    "mediapipe_hand_full": lambda: _mediapipe_trunk("full"),
    "mediapipe_hand_lite": lambda: _mediapipe_trunk("lite"),
}


def _mediapipe_trunk(variant: str) -> nn.Module:
    from handpose.models.mediapipe_hand import MediaPipeHandTrunk

    return MediaPipeHandTrunk(variant)

#: Classifier parameters of torchvision checkpoints, dropped on loading (the backbones have no classifier).
CLASSIFIER_PREFIXES = ("fc.", "classifier.")


def create_backbone(name: str, **kwargs) -> nn.Module:
    """Build a backbone by name (a key of :data:`BACKBONES` or ``timm:<name>``).

    Args:
        name: ``resnet18``, ``resnet34``, ``resnet50``, ``mobilenet_v2``, ``mobilenet_v3_small`` or ``timm:<name>``.
        **kwargs: options of the builder, e.g. ``same_padding=True`` for ``mobilenet_v3_small``.

    Raises:
        HandposeError: unknown name (the message lists close names), an option the builder does not take, or timm
            missing for ``timm:``.
    """
    if name.startswith("timm:"):
        return TimmBackbone(name[len("timm:"):], **kwargs)
    if name not in BACKBONES:
        close = difflib.get_close_matches(name, BACKBONES, n=3, cutoff=0.4)
        raise HandposeError(f"unknown backbone {name!r}; did you mean {close}? known: {sorted(BACKBONES)} "
                            "or timm:<name>")
    builder = BACKBONES[name]
    try:
        inspect.signature(builder).bind(**kwargs)
    except TypeError as e:
        raise HandposeError(f"backbone {name!r} does not take the options {sorted(kwargs)} ({e})") from e
    return builder(**kwargs)


def load_pretrained(backbone: nn.Module, path: str | Path) -> None:
    """Load a torchvision-format state_dict from a local file into a backbone, ``strict=True``.

    The file may hold a state_dict or ``{"state_dict": ...}`` / ``{"model": ...}``; keys may carry a
    ``module.`` prefix (DataParallel). Classifier keys (``fc.*``, ``classifier.*``) are dropped.

    Raises:
        HandposeError: the file is missing or not a state_dict, or its layers disagree with the backbone (the
            message lists missing, unexpected and differently shaped layers).
    """
    path = Path(path)
    if not path.is_file():
        raise HandposeError(f"{path}: pretrained weights file not found")
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise HandposeError(f"{path}: cannot be read as a PyTorch state_dict ({type(e).__name__}: {e})") from e
    for key in ("state_dict", "model"):
        if isinstance(sd, dict) and isinstance(sd.get(key), dict):
            sd = sd[key]
    if not isinstance(sd, dict):
        raise HandposeError(f"{path}: expected a state_dict (a dict of tensors)")
    sd = {k.removeprefix("module."): v for k, v in sd.items() if not k.removeprefix("module.").startswith(
        CLASSIFIER_PREFIXES)}
    own = backbone.state_dict()
    missing = sorted(set(own) - set(sd))
    unexpected = sorted(set(sd) - set(own))
    shape = sorted(f"{k}: file {tuple(sd[k].shape)} vs backbone {tuple(own[k].shape)}"
                   for k in set(sd) & set(own) if tuple(sd[k].shape) != tuple(own[k].shape))
    if missing or unexpected or shape:
        parts = [f"{label} ({len(v)}): {v[:6]}{' ...' if len(v) > 6 else ''}"
                 for label, v in (("missing", missing), ("unexpected", unexpected), ("shape differs", shape)) if v]
        raise HandposeError(f"{path}: weights do not fit the backbone; " + "; ".join(parts))
    backbone.load_state_dict(sd, strict=True)


class ImageNetClassifier(nn.Module):
    """A backbone with torchvision's classification tail: global average pooling of its last feature map, then
    ``classifier``. Serves to check an imported backbone against its source file's logits end to end; handpose's
    keypoint models use only the backbone.

    Args:
        backbone: a backbone of this module (its last feature map is pooled).
        classifier: torchvision's ``classifier`` Sequential, on the pooled ``(B, C)`` features.

    Shapes:
        ``(B, 3, H, W)`` -> ``(B, num_classes)`` logits.
    """

    def __init__(self, backbone: nn.Module, classifier: nn.Sequential):
        super().__init__()
        self.backbone = backbone
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(self.backbone(x)[-1], 1), 1))


def mobilenet_v2_classifier(num_classes: int = 1000) -> ImageNetClassifier:
    """MobileNetV2 with torchvision's classifier ``[Dropout(0.2), Linear(1280, num_classes)]`` (``classifier.1``)."""
    return ImageNetClassifier(MobileNetV2(), nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes)))


def mobilenet_v3_small_classifier(num_classes: int = 1001, same_padding: bool = True) -> ImageNetClassifier:
    """MobileNetV3-Small with torchvision's classifier ``[Linear(576, 1024), Hardswish, Dropout(0.2),
    Linear(1024, num_classes)]`` (``classifier.0``, ``classifier.3``). TF-slim's has 1001 classes (0 = background)."""
    return ImageNetClassifier(MobileNetV3Small(same_padding),
                              nn.Sequential(nn.Linear(576, 1024), nn.Hardswish(inplace=True), nn.Dropout(0.2),
                                            nn.Linear(1024, num_classes)))


@dataclass
class _Layer:
    """A weighted layer of a module, the BatchNorm right after it and the activation applied to its output."""

    name: str
    module: nn.Conv2d | nn.Linear
    bn: nn.BatchNorm2d | None
    bn_name: str | None
    act: nn.Module | None


def _weighted_layers(model: nn.Module) -> list[_Layer]:
    """The convolutions and fully connected layers of ``model`` in registration order (torchvision's execution order
    for these architectures), each with its following sibling BatchNorm and activation in the same Sequential."""
    mods = dict(model.named_modules())
    layers = []
    for name, m in mods.items():
        if not isinstance(m, (nn.Conv2d, nn.Linear)):
            continue
        parent, _, last = name.rpartition(".")
        following: list[tuple[str, nn.Module | None]] = []
        if last.isdigit():  # a member of a Sequential: look at its next two siblings
            prefix = f"{parent}." if parent else ""
            following = [(f"{prefix}{j}", mods.get(f"{prefix}{j}")) for j in (int(last) + 1, int(last) + 2)]
        bn_name, bn = following[0] if following and isinstance(following[0][1], nn.BatchNorm2d) else (None, None)
        act = (following[1:] if bn is not None else following[:1]) or [(None, None)]
        act = act[0][1] if isinstance(act[0][1], (nn.ReLU, nn.ReLU6, nn.Hardswish)) else None
        layers.append(_Layer(name, m, bn, bn_name, act))
    return layers


def _mapped_state(model: nn.Module, layers: list[_Layer], sources: list[tuple[SourceOp, np.ndarray, np.ndarray]],
                  graph: SourceGraph) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """State entries and their source layer names for ``layers`` filled from ``(op, weight, bias)`` in order.

    A convolution followed by BatchNorm gets the folded weight and an identity-affine BatchNorm holding the bias
    (:func:`~handpose.importers.graph.fold_bn_entries`, with that BatchNorm's eps). A 1x1 convolution of the source
    may fill a Linear layer. The source's stride must equal the layer's (a layer order that differs in strides only
    would otherwise load silently).

    Raises:
        HandposeError: a stride differs (names the file and the source layer).
    """
    state, origin = {}, {}
    for layer, (op, w, b) in zip(layers, sources, strict=True):
        stride = op.attrs.get("stride")
        if isinstance(layer.module, nn.Conv2d) and stride is not None and tuple(stride) != layer.module.stride:
            raise HandposeError(f"{graph.path}: layer {op.name!r} has stride {tuple(stride)}, but {layer.name!r} of "
                                f"{type(model).__name__} has {layer.module.stride}; is it the right model?")
        if isinstance(layer.module, nn.Linear):
            w = w.reshape(w.shape[0], -1)
        entries = (fold_bn_entries(layer.name, layer.bn_name, w, b, layer.bn.eps) if layer.bn is not None
                   else {f"{layer.name}.weight": w, f"{layer.name}.bias": b})
        state.update(entries)
        origin.update(dict.fromkeys(entries, op.name))
    return state, origin


def _backbone_of(model: nn.Module, cls: type) -> nn.Module:
    backbone = model.backbone if isinstance(model, ImageNetClassifier) else model
    if not isinstance(backbone, cls):
        raise TypeError(f"expected a {cls.__name__} or an ImageNetClassifier around one, got {type(model).__name__}")
    return backbone


def _weight_and_bias(op: SourceOp) -> tuple[SourceOp, np.ndarray, np.ndarray]:
    w = op.weights[0]
    return op, w, op.weights[1] if len(op.weights) > 1 else np.zeros(w.shape[0], np.float32)


def import_mobilenet_v2(model: nn.Module, graph: SourceGraph) -> None:
    """Load the ONNX model zoo's int8 MobileNetV2 (``mobilenetv2-12-int8.onnx``, from GluonCV) into ``model``.

    The file's 52 ``QLinearConv`` nodes, in graph order, are torchvision's ``features`` convolutions in module
    order: ``features.0``, then per block [1x1 expansion], 3x3 depthwise, 1x1 projection, then ``features.18``;
    their weights (int8, per output channel) and int32 biases are dequantised by the reader. BatchNorm is folded in
    the file and kept here as an identity-affine BatchNorm holding the bias (eps 1e-5), so the module can be
    fine-tuned. Its ``QLinearMatMul`` and the ``QLinearAdd`` of its bias fill ``classifier.1`` when ``model`` is an
    :class:`ImageNetClassifier` (:func:`mobilenet_v2_classifier`); a bare backbone ignores them. The ReLU6 layers
    of the file show only as their output quantisation range ``[0, 6]``. Input: RGB, ``(x / 255 - mean) / std``
    with ImageNet's mean ``(0.485, 0.456, 0.406)`` and std ``(0.229, 0.224, 0.225)``, NCHW, 224x224.

    Args:
        model: a :class:`MobileNetV2`, or an :class:`ImageNetClassifier` with one and a 1000-class classifier.
        graph: the file read by :func:`handpose.importers.read_graph`.

    Raises:
        HandposeError: the file has not 52 QLinearConv and 1 QLinearMatMul nodes, a layer's shape or stride does not
            fit (the message names the file and the first source layer that does not); nothing is loaded then.
        TypeError: ``model`` is neither of the above.
    """
    _backbone_of(model, MobileNetV2)
    convs = graph.of_type("QLinearConv")
    expect_ops(graph, convs, 52, "QLinearConv")
    sources = [_weight_and_bias(op) for op in convs]
    layers = _weighted_layers(model)
    if isinstance(model, ImageNetClassifier):
        matmul = graph.of_type("QLinearMatMul")
        expect_ops(graph, matmul, 1, "QLinearMatMul (classifier)")
        bias = [op for op in graph.of_type("QLinearAdd", "Add") if matmul[0].outputs[0] in op.inputs and op.weights]
        if not bias or not matmul[0].weights:
            raise HandposeError(f"{graph.path}: classifier {matmul[0].name!r} has no constant weight and bias")
        sources.append((matmul[0], matmul[0].weights[0], bias[0].weights[0]))
    if len(layers) != len(sources):
        raise HandposeError(f"{graph.path}: {len(sources)} weighted layers for the {len(layers)} of "
                            f"{type(model).__name__}")
    state, origin = _mapped_state(model, layers, sources, graph)
    load_mapped_state(model, state, graph.path, origin)


def import_mobilenet_v3_small(model: nn.Module, graph: SourceGraph) -> None:
    """Load TF-slim's MobileNetV3-Small 1.0 224 (``mobilenet_v3_small_224_1.0_uint8.tflite``) into ``model``.

    The file's 54 convolutions (``CONV_2D``, ``DEPTHWISE_CONV_2D``), in execution order, are torchvision's
    ``features`` convolutions in module order (``features.0``; per block [expand], depthwise, [squeeze-excitation
    ``fc1``, ``fc2``], project; ``features.12``), then TF-slim's ``Conv_2`` and ``Logits/Conv2d_1c_1x1`` (1x1
    convolutions on the pooled features) = torchvision's ``classifier.0`` and ``classifier.3``, loaded when ``model``
    is an :class:`ImageNetClassifier` (:func:`mobilenet_v3_small_classifier`, 1001 classes). The layouts agree:
    squeeze-excitation after the depthwise convolution's activation, reduce channels ``make_divisible(C / 4, 8)``,
    hard sigmoid ``relu6(x + 3) / 6``, ReLU in the first three blocks and hard-swish elsewhere; the import checks
    that each source convolution feeds a ``HARD_SWISH`` exactly where the module applies one (the ReLUs are fused
    into the uint8 activation ranges and cannot be checked). BatchNorm is folded in the file and kept here as an
    identity-affine BatchNorm holding the bias (eps 0.001). Input: RGB in ``[-1, 1]`` (``x / 127.5 - 1``), 224x224.
    The file pads as TensorFlow's "SAME": build the backbone with ``same_padding=True`` to reproduce its outputs
    (symmetric padding shifts strided layers by a pixel; fine-tuning absorbs that).

    Args:
        model: a :class:`MobileNetV3Small`, or an :class:`ImageNetClassifier` with one and a 1001-class classifier.
        graph: the file read by :func:`handpose.importers.read_graph`.

    Raises:
        HandposeError: the file has not 54 convolutions, a layer's shape, stride or hard-swish placement does not fit
            (the message names the file and the first source layer that does not); nothing is loaded then.
        TypeError: ``model`` is neither of the above.
    """
    _backbone_of(model, MobileNetV3Small)
    convs = graph.of_type("CONV_2D", "DEPTHWISE_CONV_2D")
    expect_ops(graph, convs, 54, "CONV_2D / DEPTHWISE_CONV_2D")
    layers = _weighted_layers(model)
    if not isinstance(model, ImageNetClassifier):
        convs = convs[:52]
    readers = {}
    for op in graph.ops:
        for name in op.inputs:
            readers.setdefault(name, []).append(op.op)
    for layer, op in zip(layers, convs, strict=False):
        src_hs = "HARD_SWISH" in readers.get(op.outputs[0], [])
        if src_hs != isinstance(layer.act, nn.Hardswish):
            raise HandposeError(f"{graph.path}: layer {op.name!r} {'feeds' if src_hs else 'does not feed'} a "
                                f"HARD_SWISH, but {layer.name!r} of {type(model).__name__} "
                                f"{'is not' if src_hs else 'is'} followed by nn.Hardswish; is it the right model?")
    if len(layers) != len(convs):
        raise HandposeError(f"{graph.path}: {len(convs)} weighted layers for the {len(layers)} of "
                            f"{type(model).__name__}")
    state, origin = _mapped_state(model, layers, [_weight_and_bias(op) for op in convs], graph)
    load_mapped_state(model, state, graph.path, origin)
