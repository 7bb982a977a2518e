"""The model registry: a plain dict from a name to an ordinary builder function (as timm's ``create_model``)."""

from __future__ import annotations

import difflib
from collections.abc import Callable

from torch import nn

from handpose.errors import HandposeError
from handpose.models.unet import ResUNet, ShallowUNet

MODELS: dict[str, Callable[..., nn.Module]] = {
    "shallow_unet": ShallowUNet,
    "resunet": ResUNet,
}


def create_model(name: str, num_keypoints: int, **kwargs) -> nn.Module:
    """Build a registered model.

    Args:
        name: a key of :data:`MODELS`.
        num_keypoints: K, the number of output channels.
        **kwargs: passed to the builder.

    Raises:
        HandposeError: unknown name (the message lists close names).
    """
    if name not in MODELS:
        close = difflib.get_close_matches(name, MODELS, n=3, cutoff=0.4)
        raise HandposeError(f"unknown model {name!r}; did you mean {close}? known: {sorted(MODELS)}")
    return MODELS[name](num_keypoints, **kwargs)
