"""Heads on a backbone's features, and the top-down model that joins them.

- :class:`RegressionHead`: the small-data tutorial's head (seed 001): 1x1 conv to 64 channels, BatchNorm, ReLU,
  flatten, FC, ReLU, FC to K x 2, tanh: coordinates in ``[-1, 1]`` of the input. The article's hidden FC has 6144
  units (:data:`ARTICLE_HIDDEN`, ``configs/hand12_article.yaml``); the default here is 256 (a 6144-wide layer
  after a 384x288 input holds 42.5 M weights, a 256x192 input's 18.9 M).
- :class:`DeconvHeatmapHead`: Simple Baselines (Xiao et al., ECCV 2018): transposed 4x4 convolutions with stride 2
  from stride 32 up to stride 4, then a 1x1 convolution to K heatmaps (sigmoid, as the other heatmap models here).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from handpose.models.backbones import create_backbone, load_pretrained

#: The small-data article's head (seed 001): ``Conv2d(512, 64, 1)``, ..., ``Linear(64 * 12 * 9, 6144)``.
ARTICLE_CHANNELS = 64
ARTICLE_HIDDEN = 6144


class RegressionHead(nn.Module):
    """``(B, C, h, w)`` stride-32 features -> ``(B, K, 2)`` in ``[-1, 1]``.

    Args:
        in_channels: C.
        feature_size: ``(w, h)`` of the feature map (input size / 32), fixed by the first FC layer.
        num_keypoints: K.
        hidden: width of the hidden FC layer (the article: 6144).
        channels: output channels of the 1x1 convolution (the article: 64). It has no bias: the BatchNorm after
            it has one (the article's ``Conv2d`` keeps PyTorch's default bias, which that BatchNorm cancels).
    """

    def __init__(self, in_channels: int, feature_size: tuple[int, int], num_keypoints: int, hidden: int = 256,
                 channels: int = ARTICLE_CHANNELS):
        super().__init__()
        self.num_keypoints = num_keypoints
        self.reduce = nn.Sequential(nn.Conv2d(in_channels, channels, 1, bias=False), nn.BatchNorm2d(channels),
                                    nn.ReLU(inplace=True))
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(channels * feature_size[0] * feature_size[1], hidden),
                                nn.ReLU(inplace=True), nn.Linear(hidden, num_keypoints * 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.fc(self.reduce(x))).view(-1, self.num_keypoints, 2)


class DeconvHeatmapHead(nn.Module):
    """``(B, C, h, w)`` stride-32 features -> ``(B, K, 8h, 8w)`` heatmaps in ``[0, 1]`` (stride 4)."""

    def __init__(self, in_channels: int, num_keypoints: int, channels: int = 256, layers: int = 3):
        super().__init__()
        mods: list[nn.Module] = []
        c = in_channels
        for _ in range(layers):
            mods += [nn.ConvTranspose2d(c, channels, 4, 2, 1, bias=False), nn.BatchNorm2d(channels),
                     nn.ReLU(inplace=True)]
            c = channels
        self.deconv = nn.Sequential(*mods)
        self.final = nn.Conv2d(channels, num_keypoints, 1)
        nn.init.constant_(self.final.bias, -4.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.final(self.deconv(x)))


class TopDownModel(nn.Module):
    """A backbone with a regression or heatmap head for one instance per input.

    Args:
        num_keypoints: K.
        backbone: a name for :func:`handpose.models.backbones.create_backbone`.
        head: ``"heatmap"`` or ``"regression"``.
        input_size: ``(width, height)``, multiples of 32 (the regression head's FC depends on it).
        pretrained: optional local torchvision-format checkpoint for the backbone (see ``load_pretrained``); for
            any other pretrained weights use the training config's ``pretrained`` key.
        head_channels: deconvolution channels of the heatmap head.
        regression_hidden: width of the regression head's hidden FC layer (the small-data article: 6144).
        regression_channels: channels of the regression head's 1x1 convolution (the article: 64).
        backbone_kwargs: options of the backbone, e.g. ``{same_padding: true}`` for ``mobilenet_v3_small``.

    Attributes:
        output_kind: ``"heatmap"`` or ``"regression"``; ``stride``: heatmap stride (4), 0 for regression.
    """

    def __init__(self, num_keypoints: int, backbone: str = "resnet18", head: str = "heatmap",
                 input_size: Sequence[int] = (128, 128), pretrained: str | None = None, head_channels: int = 256,
                 regression_hidden: int = 256, backbone_kwargs: dict | None = None,
                 regression_channels: int = ARTICLE_CHANNELS):
        super().__init__()
        if head not in ("heatmap", "regression"):
            raise ValueError(f"head must be 'heatmap' or 'regression', got {head!r}")
        w, h = (int(v) for v in input_size)
        if w % 32 or h % 32:
            raise ValueError(f"input_size {tuple(input_size)} must be multiples of 32 for a backbone at stride 32")
        self.backbone = create_backbone(backbone, **(backbone_kwargs or {}))
        if pretrained:
            load_pretrained(self.backbone, pretrained)
        c = self.backbone.out_channels[-1]
        self.output_kind = head
        if head == "regression":
            self.head = RegressionHead(c, (w // 32, h // 32), num_keypoints, regression_hidden, regression_channels)
            self.stride = 0
        else:
            self.head = DeconvHeatmapHead(c, num_keypoints, head_channels)
            self.stride = 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x)[-1])
