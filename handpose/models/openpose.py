"""Lightweight OpenPose (Osokin, "Real-time 2D Multi-Person Pose Estimation on CPU: Lightweight OpenPose", 2018).

A MobileNet-v1-style backbone cut at stride 8 (its last blocks dilated instead of strided), the CPM block, an
initial stage and ``refinement_stages`` refinement stages. Every stage emits keypoint heatmaps (K + 1 channels,
the last the background) and part affinity fields (2 per limb); the channel counts come from the Skeleton.
Outputs are raw (no sigmoid), trained with the masked L2 loss summed over stages.
"""

from __future__ import annotations

import torch
from torch import nn


def conv(in_ch: int, out_ch: int, k: int = 3, stride: int = 1, dilation: int = 1, bn: bool = True,
         act: str = "relu") -> nn.Sequential:
    """Convolution (+ BatchNorm) + activation (``relu``, ``elu`` or ``none``)."""
    layers: list[nn.Module] = [nn.Conv2d(in_ch, out_ch, k, stride, dilation * (k // 2), dilation, bias=not bn)]
    if bn:
        layers.append(nn.BatchNorm2d(out_ch))
    if act == "relu":
        layers.append(nn.ReLU(inplace=True))
    elif act == "elu":
        layers.append(nn.ELU(inplace=True))
    return nn.Sequential(*layers)


def conv_dw(in_ch: int, out_ch: int, stride: int = 1, dilation: int = 1, bn: bool = True,
            act: str = "relu") -> nn.Sequential:
    """Depthwise 3x3 then pointwise 1x1 (MobileNet v1), each with BatchNorm and activation."""
    pad = dilation
    dw: list[nn.Module] = [nn.Conv2d(in_ch, in_ch, 3, stride, pad, dilation, groups=in_ch, bias=not bn)]
    pw: list[nn.Module] = [nn.Conv2d(in_ch, out_ch, 1, bias=not bn)]
    if bn:
        dw.append(nn.BatchNorm2d(in_ch))
        pw.append(nn.BatchNorm2d(out_ch))
    activation = nn.ELU if act == "elu" else nn.ReLU
    return nn.Sequential(*dw, activation(inplace=True), *pw, activation(inplace=True))


class Cpm(nn.Module):
    """Lightweight OpenPose's CPM block: 1x1 down to ``out_ch``, three depthwise blocks with a residual, 3x3."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.align = conv(in_ch, out_ch, k=1, bn=False)
        self.trunk = nn.Sequential(*[conv_dw(out_ch, out_ch, bn=False, act="elu") for _ in range(3)])
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
    """1x1 to ``out_ch``, then two 3x3 convolutions (the second dilated by 2) with BatchNorm and a residual."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.initial = conv(in_ch, out_ch, k=1, bn=False)
        self.trunk = nn.Sequential(conv(out_ch, out_ch), conv(out_ch, out_ch, dilation=2))

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

    Attributes:
        stride: 8. output_kind: ``"paf"``.
    """

    stride = 8
    output_kind = "paf"

    def __init__(self, num_keypoints: int, num_limbs: int, refinement_stages: int = 1, width: int = 128):
        super().__init__()
        self.num_heatmaps, self.num_pafs = num_keypoints + 1, 2 * num_limbs
        self.backbone = nn.Sequential(
            conv(3, 32, stride=2, bn=True), conv_dw(32, 64), conv_dw(64, 128, stride=2), conv_dw(128, 128),
            conv_dw(128, 256, stride=2), conv_dw(256, 256), conv_dw(256, 512),
            *[conv_dw(512, 512, dilation=2) for _ in range(5)],
        )
        self.cpm = Cpm(512, width)
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
