"""Detection: whole images -> boxes and keypoints that a top-down keypoint model can crop around.

- :mod:`handpose.detect.palm`: MediaPipe's palm detection network (BlazePalm, full / lite) and its TFLite import;
- :mod:`handpose.detect.anchors`: SSD anchor grids (MediaPipe's ``SsdAnchorsCalculator``);
- :mod:`handpose.detect.decode`: anchor-relative boxes and keypoints, sigmoid scores, weighted NMS;
- :mod:`handpose.detect.detector`: letterbox -> network -> decode -> NMS -> image pixels (:class:`PalmDetector`);
- :mod:`handpose.detect.roi`: a palm detection -> the rotated square crop of the whole hand (:func:`roi_from_palm`);
- :mod:`handpose.detect.topdown`: whole photo -> every hand's keypoints (:class:`TopDownPipeline`).
"""

from handpose.detect.anchors import PALM_ANCHORS, SsdAnchorOptions, ssd_anchors
from handpose.detect.decode import decode_boxes, decode_detections, weighted_nms
from handpose.detect.detector import (
    PALM_KEYPOINTS,
    PALM_TO_HAND21,
    PalmDetection,
    PalmDetector,
    detections_from_outputs,
)
from handpose.detect.palm import PalmDetectorNet, import_palm_detector, load_palm_weights
from handpose.detect.roi import RotatedRect, roi_from_palm
from handpose.detect.topdown import TopDownPipeline

__all__ = ["PALM_ANCHORS", "PALM_KEYPOINTS", "PALM_TO_HAND21", "PalmDetection", "PalmDetector", "PalmDetectorNet",
           "RotatedRect", "SsdAnchorOptions", "TopDownPipeline", "decode_boxes", "decode_detections",
           "detections_from_outputs", "import_palm_detector", "load_palm_weights", "roi_from_palm", "ssd_anchors",
           "weighted_nms"]
