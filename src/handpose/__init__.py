"""handpose: 2D hand pose estimation in PyTorch.

Public API::

    import handpose
    results = handpose.predict("photo.jpg")          # the bundled model
    results[0].keypoints                               # (N, K, 2) pixels of the original image
    run = handpose.train("configs/hand21_resunet.yaml", max_epochs=5)   # as `handpose train`
    metrics = handpose.evaluate(run["model"], "hands.json", images="images/")
    handpose.export(run["model"], "hand.onnx")

``handpose.train``, ``handpose.evaluate``, ``handpose.export`` and ``handpose.predict`` are these functions, not the
submodules of the same names: reach a submodule with ``from handpose.train import ...`` (``import handpose.train as
m`` gives the function).
"""

import sys
import types

from handpose.api import evaluate, export, train
from handpose.bundle import DEFAULT_MODEL, ModelBundle, load_model
from handpose.errors import HandposeError
from handpose.predict import Predictor, predict
from handpose.result import Result
from handpose.skeleton import COCO17, COCO18, HAND12, HAND21, Skeleton, get_skeleton
from handpose.visualize import draw_skeleton

__version__ = "0.1.0"

#: Public functions named as submodules (``handpose/train.py``, ...).
_FUNCTIONS = ("evaluate", "export", "predict", "train")


class _Package(types.ModuleType):
    """This package, keeping its public functions when a submodule of the same name is first imported (Python's
    import binds a submodule as an attribute of its package; the submodule stays in ``sys.modules``)."""

    def __setattr__(self, name: str, value) -> None:
        if name in _FUNCTIONS and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

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
    "evaluate",
    "export",
    "get_skeleton",
    "load_model",
    "predict",
    "train",
]
