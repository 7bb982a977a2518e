"""The model registry: a plain dict from a name to an ordinary builder function (as timm's ``create_model``)."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Sequence
from functools import partial

from torch import nn

from handpose.errors import HandposeError
from handpose.models.backbones import BACKBONES
from handpose.models.heads import TopDownModel
from handpose.models.mediapipe_hand import MediaPipeHandRegression
from handpose.models.openpose import LightweightOpenPose
from handpose.models.unet import ResUNet, ShallowUNet

MODELS: dict[str, Callable[..., nn.Module]] = {
    "shallow_unet": ShallowUNet,
    "resunet": ResUNet,
    **{f"{b}_{h}": partial(TopDownModel, backbone=b, head=h) for b in BACKBONES for h in ("heatmap", "regression")},
    "lightweight_openpose": LightweightOpenPose,
    # MediaPipe's hand landmark network (21 keypoints; weights: model_kwargs pretrained=<hand_landmark_*.tflite>)
    "mediapipe_hand_full": partial(MediaPipeHandRegression, variant="full"),
    "mediapipe_hand_lite": partial(MediaPipeHandRegression, variant="lite"),
}


def output_kind(model: nn.Module) -> str:
    """``"heatmap"``, ``"regression"`` or ``"paf"`` (bottom-up: per stage heatmaps and PAFs): what the network
    outputs (models without the attribute: heatmaps)."""
    return getattr(model, "output_kind", "heatmap")


def create_model(name: str, num_keypoints: int, input_size: Sequence[int] | None = None, num_limbs: int | None = None,
                 **kwargs) -> nn.Module:
    """Build a registered model.

    Args:
        name: a key of :data:`MODELS`.
        num_keypoints: K, the number of output channels.
        input_size: ``(width, height)``, passed on only to builders that take it (regression heads need it).
        num_limbs: the Skeleton's limb count, passed on only to builders that take it (bottom-up models).
        **kwargs: passed to the builder.

    Raises:
        HandposeError: unknown name (the message lists close names).
    """
    if name not in MODELS:
        close = difflib.get_close_matches(name, MODELS, n=3, cutoff=0.4)
        raise HandposeError(f"unknown model {name!r}; did you mean {close}? known: {sorted(MODELS)}")
    builder = MODELS[name]
    params = inspect.signature(builder).parameters
    if input_size is not None and "input_size" in params:
        kwargs["input_size"] = tuple(input_size)
    if "num_limbs" in params:
        if num_limbs is None:
            raise HandposeError(f"model {name!r} is bottom-up and needs the Skeleton's limb count (num_limbs)")
        kwargs["num_limbs"] = num_limbs
    return builder(num_keypoints, **kwargs)
