"""Networks that map images to raw output tensors."""

from handpose.models.unet import ResUNet, ShallowUNet
from handpose.models.zoo import MODELS, create_model

__all__ = ["MODELS", "ResUNet", "ShallowUNet", "create_model"]
