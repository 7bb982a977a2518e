"""ResNet-18/34/50 and MobileNetV2 feature extractors with torchvision's module and parameter names.

torchvision cannot be a dependency here (its PyPI wheels need CUDA libraries), so the architectures are rebuilt
with the same names and shapes: a torchvision ImageNet checkpoint saved to a local file loads with
:func:`load_pretrained` (``strict=True`` on every backbone parameter; the classifier is dropped). Architectures:
ResNet v1.5 (He et al., CVPR 2016; stride on the 3x3 convolution of the bottleneck, as torchvision),
MobileNetV2 (Sandler et al., CVPR 2018; torchvision's ``features`` layout).

Every backbone maps ``(B, 3, H, W)`` to a list of feature maps at strides 4, 8, 16 and 32, with channels
``out_channels``. Optional: ``timm:<name>`` uses any timm model with ``features_only=True`` where timm imports.

Getting ImageNet weights on a machine with internet (nothing is downloaded by handpose)::

    import torch, torchvision
    torch.save(torchvision.models.resnet18(weights="IMAGENET1K_V1").state_dict(), "resnet18.pth")
    # then: model_kwargs: {pretrained: resnet18.pth} in the training config
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from handpose.errors import HandposeError
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


def conv_bn_act(in_ch: int, out_ch: int, k: int = 3, stride: int = 1, groups: int = 1, act: bool = True):
    """torchvision's ``Conv2dNormActivation`` layout: ``[conv, bn, relu6]`` as ``.0``, ``.1``, ``.2``."""
    layers = [nn.Conv2d(in_ch, out_ch, k, stride, (k - 1) // 2, groups=groups, bias=False), nn.BatchNorm2d(out_ch)]
    if act:
        layers.append(nn.ReLU6(inplace=True))
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


class MobileNetV2(nn.Module):
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

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.taps:
                feats.append(x)
        return feats


class TimmBackbone(nn.Module):
    """Any timm model with ``features_only=True`` (optional; timm must import, which needs torchvision)."""

    def __init__(self, name: str):
        super().__init__()
        try:
            import timm
        except Exception as e:  # ImportError, or torchvision failing inside timm's import
            raise HandposeError(f"backbone 'timm:{name}' needs timm, which does not import here ({e})") from e
        self.body = timm.create_model(name, pretrained=False, features_only=True, out_indices=(1, 2, 3, 4))
        self.out_channels = list(self.body.feature_info.channels())

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return list(self.body(x))


BACKBONES: dict[str, Callable[[], nn.Module]] = {
    "resnet18": lambda: ResNet("basic", (2, 2, 2, 2)),
    "resnet34": lambda: ResNet("basic", (3, 4, 6, 3)),
    "resnet50": lambda: ResNet("bottleneck", (3, 4, 6, 3)),
    "mobilenet_v2": MobileNetV2,
}

#: Classifier parameters of torchvision checkpoints, dropped on loading (the backbones have no classifier).
CLASSIFIER_PREFIXES = ("fc.", "classifier.")


def create_backbone(name: str) -> nn.Module:
    """Build a backbone by name (``resnet18``, ``resnet34``, ``resnet50``, ``mobilenet_v2`` or ``timm:<name>``).

    Raises:
        HandposeError: unknown name (the message lists close names), or timm missing for ``timm:``.
    """
    if name.startswith("timm:"):
        return TimmBackbone(name[len("timm:"):])
    if name not in BACKBONES:
        close = difflib.get_close_matches(name, BACKBONES, n=3, cutoff=0.4)
        raise HandposeError(f"unknown backbone {name!r}; did you mean {close}? known: {sorted(BACKBONES)} "
                            "or timm:<name>")
    return BACKBONES[name]()


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
