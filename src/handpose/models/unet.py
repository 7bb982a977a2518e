"""Encoder-decoder heatmap networks: the tutorial's ShallowUNet and a deeper residual U-Net.

Both map ``(B, 3, H, W)`` normalised images to ``(B, K, H / stride, W / stride)`` heatmaps in ``[0, 1]``
(sigmoid), and expose ``stride``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F


class ConvBlock(nn.Sequential):
    """Two BN-conv3x3-ReLU layers, the tutorial's ``ConvBlock`` (BatchNorm before each convolution)."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__(
            nn.BatchNorm2d(in_ch), nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False), nn.ReLU(inplace=True),
            nn.BatchNorm2d(out_ch), nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False), nn.ReLU(inplace=True),
        )


class ShallowUNet(nn.Module):
    """The hand pose tutorial's U-Net (seed 003): encoder 16/32/64, bottleneck 128, output at full resolution.

    Args:
        num_keypoints: K output heatmaps.
        width: channels of the first level (16 in the tutorial); levels double it.

    Shapes:
        ``(B, 3, H, W)`` -> ``(B, K, H, W)``, H and W divisible by 8. Receptive field ~ 70 px.
    """

    stride = 1

    def __init__(self, num_keypoints: int, width: int = 16):
        super().__init__()
        c = width
        self.conv_down1 = ConvBlock(3, c)
        self.conv_down2 = ConvBlock(c, 2 * c)
        self.conv_down3 = ConvBlock(2 * c, 4 * c)
        self.conv_bottleneck = ConvBlock(4 * c, 8 * c)
        self.conv_up1 = ConvBlock(8 * c + 4 * c, 4 * c)
        self.conv_up2 = ConvBlock(4 * c + 2 * c, 2 * c)
        self.conv_up3 = ConvBlock(2 * c + c, c)
        self.conv_out = nn.Conv2d(c, num_keypoints, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        def up(t):
            return F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)

        d1 = self.conv_down1(x)
        d2 = self.conv_down2(F.max_pool2d(d1, 2))
        d3 = self.conv_down3(F.max_pool2d(d2, 2))
        b = self.conv_bottleneck(F.max_pool2d(d3, 2))
        u1 = self.conv_up1(torch.cat([up(b), d3], dim=1))
        u2 = self.conv_up2(torch.cat([up(u1), d2], dim=1))
        u3 = self.conv_up3(torch.cat([up(u2), d1], dim=1))
        return torch.sigmoid(self.conv_out(u3))


def conv_bn_relu(in_ch: int, out_ch: int, k: int = 3, stride: int = 1) -> nn.Sequential:
    """Conv-BN-ReLU, the building unit of :class:`ResUNet`."""
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, k, stride, k // 2, bias=False), nn.BatchNorm2d(out_ch),
                         nn.ReLU(inplace=True))


class BasicBlock(nn.Module):
    """ResNet basic block (He et al., CVPR 2016): two 3x3 convolutions with an identity or 1x1 shortcut."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.downsample = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        return F.relu(self.bn2(self.conv2(out)) + identity, inplace=True)


class ResUNet(nn.Module):
    """A residual encoder down to stride 32 with a light top-down decoder (U-Net skips added, FPN style).

    The encoder's receptive field covers the whole 128 px input (the ShallowUNet sees about half of it), and
    the heatmaps come out at ``stride`` (4 by default), which keeps the cost low: about 0.3 GFLOPs per
    128x128 image with the default widths.

    Args:
        num_keypoints: K output heatmaps.
        widths: channels of the stages at strides 4, 8, 16, 32 (the stem has ``widths[0]``).
        blocks: basic blocks per stage.
        stride: output stride, a power of two from 1 to 16.
        decoder_width: channels of the decoder.

    Shapes:
        ``(B, 3, H, W)`` -> ``(B, K, H / stride, W / stride)``, H and W divisible by 32.
    """

    def __init__(self, num_keypoints: int, widths: Sequence[int] = (32, 64, 96, 128), blocks: int = 2,
                 stride: int = 4, decoder_width: int = 64):
        super().__init__()
        if stride not in (1, 2, 4, 8, 16):
            raise ValueError(f"stride must be 1, 2, 4, 8 or 16, got {stride}")
        self.stride = stride
        self.stem = nn.Sequential(conv_bn_relu(3, widths[0] // 2, stride=2), conv_bn_relu(widths[0] // 2, widths[0]))
        stages, ch = [], widths[0]
        for w in widths:
            stages.append(nn.Sequential(BasicBlock(ch, w, 2), *[BasicBlock(w, w) for _ in range(blocks - 1)]))
            ch = w
        self.stages = nn.ModuleList(stages)
        # Skips: stem (stride 2) and each stage (strides 4..32). The decoder climbs from stride 32 to `stride`.
        skip_channels = {2: widths[0], 4: widths[0], 8: widths[1], 16: widths[2], 32: widths[3]}
        self.lateral = nn.ModuleDict()
        self.smooth = nn.ModuleDict()
        s = 32
        self.top = conv_bn_relu(widths[3], decoder_width, k=1)
        while s > stride:
            s //= 2
            src = skip_channels.get(s, 0) if s >= 2 else 0
            if src:
                self.lateral[str(s)] = conv_bn_relu(src, decoder_width, k=1)
            self.smooth[str(s)] = conv_bn_relu(decoder_width, decoder_width)
        self.head = nn.Conv2d(decoder_width, num_keypoints, 1)
        nn.init.constant_(self.head.bias, -4.0)  # start near zero heatmaps (sigmoid(-4) ~ 0.018)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = {2: self.stem(x)}
        t = feats[2]
        for i, stage in enumerate(self.stages):
            t = stage(t)
            feats[4 * 2**i] = t
        y = self.top(feats[32])
        s = 32
        while s > self.stride:
            s //= 2
            y = F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False)
            if str(s) in self.lateral:
                y = y + self.lateral[str(s)](feats[s])
            y = self.smooth[str(s)](y)
        return torch.sigmoid(self.head(y))
