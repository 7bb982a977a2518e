"""handpose: 2D hand pose estimation in PyTorch.

Public API::

    import handpose
    results = handpose.predict("photo.jpg")          # the bundled model
    results[0].keypoints                               # (N, K, 2) pixels of the original image
"""

from handpose.bundle import DEFAULT_MODEL, ModelBundle, load_model
from handpose.errors import HandposeError
from handpose.predict import Predictor, predict
from handpose.result import Result
from handpose.skeleton import COCO17, COCO18, HAND12, HAND21, Skeleton, get_skeleton
from handpose.visualize import draw_skeleton

__version__ = "0.1.0"

__all__ = [
    "COCO17",
    "COCO18",
    "DEFAULT_MODEL",
    "HAND12",
    "HAND21",
    "HandposeError",
    "ModelBundle",
    "Predictor",
    "Result",
    "Skeleton",
    "draw_skeleton",
    "get_skeleton",
    "load_model",
    "predict",
]
