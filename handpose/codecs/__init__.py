"""Codecs turn keypoints into training targets and network output back into keypoints (no nn.Module here)."""

from handpose.codecs.heatmap import HeatmapCodec

__all__ = ["HeatmapCodec"]
