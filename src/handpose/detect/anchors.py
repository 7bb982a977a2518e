"""SSD anchor grids as MediaPipe's ``SsdAnchorsCalculator`` builds them (``mediapipe/calculators/tflite/
ssd_anchors_calculator.cc``, non-multiscale path).

For each group of consecutive layers with the same stride, every cell of the ``ceil(input / stride)`` grid gets, per
layer of the group, one anchor per aspect ratio plus one "interpolated scale" anchor
(``interpolated_scale_aspect_ratio``, default 1.0 in ``ssd_anchors_calculator.proto``). Anchors are ordered by group,
then row, column, anchor, which is the order of the network's flattened outputs. Centres are
``((col + anchor_offset_x) / grid_w, (row + anchor_offset_y) / grid_h)``, normalised to the input; with
``fixed_anchor_size`` every anchor has width = height = 1 (the network then regresses sizes in input pixels, divided
by ``w_scale`` / ``h_scale`` when decoding).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SsdAnchorOptions:
    """The ``SsdAnchorsCalculatorOptions`` fields this generator uses (defaults: the proto's).

    Attributes:
        input_size_width, input_size_height: model input in pixels.
        min_scale, max_scale: anchor scales of the first and last layer (relative to the input).
        strides: one stride per layer, in input pixels.
        aspect_ratios: width / height ratios of the anchors of every layer.
        anchor_offset_x, anchor_offset_y: anchor centre within its cell, in cells.
        interpolated_scale_aspect_ratio: aspect ratio of the extra anchor per layer (0: none).
        fixed_anchor_size: every anchor 1 x 1 instead of its scale and ratio.
        reduce_boxes_in_lowest_layer: the first layer uses 3 predefined anchors (scale 0.1, ratios 1, 2, 0.5).
    """

    input_size_width: int
    input_size_height: int
    min_scale: float
    max_scale: float
    strides: tuple[int, ...]
    aspect_ratios: tuple[float, ...] = (1.0,)
    anchor_offset_x: float = 0.5
    anchor_offset_y: float = 0.5
    interpolated_scale_aspect_ratio: float = 1.0
    fixed_anchor_size: bool = False
    reduce_boxes_in_lowest_layer: bool = False


#: The palm detector's options: MediaPipe ``mediapipe/modules/palm_detection/palm_detection_cpu.pbtxt``,
#: ``SsdAnchorsCalculator`` node (num_layers 4, min_scale 0.1484375, max_scale 0.75, input 192 x 192, anchor offset
#: 0.5, strides 8, 16, 16, 16, aspect_ratios 1.0, fixed_anchor_size true). 2 anchors per cell on the 24 x 24 grid
#: and 6 on the 12 x 12 grid: 2016 anchors.
PALM_ANCHORS = SsdAnchorOptions(input_size_width=192, input_size_height=192, min_scale=0.1484375, max_scale=0.75,
                                strides=(8, 16, 16, 16), aspect_ratios=(1.0,), fixed_anchor_size=True)


def _scale(opts: SsdAnchorOptions, index: int) -> float:
    n = len(opts.strides)
    if n == 1:
        return (opts.min_scale + opts.max_scale) * 0.5
    return opts.min_scale + (opts.max_scale - opts.min_scale) * index / (n - 1.0)


def ssd_anchors(opts: SsdAnchorOptions = PALM_ANCHORS) -> np.ndarray:
    """The anchors of ``opts`` as MediaPipe generates them.

    Returns:
        ``(N, 4)`` float32 ``[x_center, y_center, w, h]``, all normalised to the input (0..1); N = 2016 for
        :data:`PALM_ANCHORS`.
    """
    anchors: list[np.ndarray] = []
    layer = 0
    n_layers = len(opts.strides)
    while layer < n_layers:
        ratios: list[float] = []
        scales: list[float] = []
        last = layer
        while last < n_layers and opts.strides[last] == opts.strides[layer]:
            scale = _scale(opts, last)
            if last == 0 and opts.reduce_boxes_in_lowest_layer:
                ratios += [1.0, 2.0, 0.5]
                scales += [0.1, scale, scale]
            else:
                ratios += list(opts.aspect_ratios)
                scales += [scale] * len(opts.aspect_ratios)
                if opts.interpolated_scale_aspect_ratio > 0.0:
                    nxt = 1.0 if last == n_layers - 1 else _scale(opts, last + 1)
                    scales.append(math.sqrt(scale * nxt))
                    ratios.append(opts.interpolated_scale_aspect_ratio)
            last += 1
        stride = opts.strides[layer]
        grid_h = math.ceil(opts.input_size_height / stride)
        grid_w = math.ceil(opts.input_size_width / stride)
        ratio_sqrt = np.sqrt(np.asarray(ratios, np.float64))
        if opts.fixed_anchor_size:
            w = h = np.ones(len(ratios))
        else:
            w, h = np.asarray(scales) * ratio_sqrt, np.asarray(scales) / ratio_sqrt
        rows, cols, k = np.meshgrid(np.arange(grid_h), np.arange(grid_w), np.arange(len(ratios)), indexing="ij")
        group = np.stack([(cols + opts.anchor_offset_x) / grid_w, (rows + opts.anchor_offset_y) / grid_h,
                          w[k], h[k]], axis=-1)
        anchors.append(group.reshape(-1, 4))
        layer = last
    return np.concatenate(anchors).astype(np.float32)
