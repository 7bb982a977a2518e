"""Codecs turn keypoints into training targets and network output back into keypoints (no nn.Module here).

Every codec has ``input_size``, ``kind``, ``encode(keypoints (K, 2), visible (K,)) -> (target, weights (K,))`` and
``decode(output (B, ...)) -> (keypoints (B, K, 2) input pixels, scores (B, K))``.
"""

from __future__ import annotations

from handpose.codecs.heatmap import HeatmapCodec
from handpose.codecs.paf import PafCodec
from handpose.codecs.pixels import PixelCodec
from handpose.codecs.regression import RegressionCodec


def make_codec(kind: str, input_size, stride: int = 1, sigma: float = 2.5, decode: str = "subpixel", skeleton=None,
               paf_width: float = 1.0, upsample: int = 1):
    """The codec for a network's output kind (``heatmap``, ``regression``, ``pixels`` or ``paf``; ``paf`` needs the
    Skeleton). ``pixels``: edge-origin input pixels, as MediaPipe's landmark networks output them.

    Raises:
        ValueError: unknown kind, or ``paf`` without a Skeleton.
    """
    if kind == "heatmap":
        return HeatmapCodec(tuple(input_size), int(stride), float(sigma), decode)
    if kind == "regression":
        return RegressionCodec(tuple(input_size))
    if kind == "pixels":
        return PixelCodec(tuple(input_size))
    if kind == "paf":
        if skeleton is None:
            raise ValueError("the paf codec needs the Skeleton")
        return PafCodec(skeleton, tuple(input_size), int(stride), float(sigma), float(paf_width), int(upsample))
    raise ValueError(f"unknown codec kind {kind!r}; expected 'heatmap', 'regression', 'pixels' or 'paf'")


def codec_to_dict(codec) -> dict:
    """Plain-dict form of a codec, for model files (inverse: ``make_codec(**d, input_size=...)``)."""
    if codec.kind == "heatmap":
        return {"kind": "heatmap", "stride": codec.stride, "sigma": codec.sigma, "decode": codec.decode_method}
    if codec.kind == "paf":
        return {"kind": "paf", "stride": codec.stride, "sigma": codec.sigma, "paf_width": codec.paf_width,
                "upsample": codec.upsample}
    return {"kind": codec.kind}


__all__ = ["HeatmapCodec", "PafCodec", "PixelCodec", "RegressionCodec", "codec_to_dict", "make_codec"]
