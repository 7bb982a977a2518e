"""Hands tracked from frame to frame: the previous frame's keypoints give the next crop, the palm detector runs only
when a hand is lost or missing.

After MediaPipe Hands in video mode (``mediapipe/modules/hand_landmark/hand_landmark_tracking_cpu.pbtxt``):

- each tracked hand's crop for the next frame comes from its keypoints (``hand_landmark_landmarks_to_roi.pbtxt``,
  :func:`roi_from_landmarks`): the keypoints of the wrist, the thumb's CMC / MCP / IP and the MCP and PIP of the
  four fingers (``SplitNormalizedLandmarkListCalculator``), a rectangle turned so that the wrist -> finger-base
  direction points up (``HandLandmarksToRectCalculator``: the finger base is the mean of the middle MCP and the
  midpoint of the index and ring MCPs) around those keypoints, then squared, scaled by 2 and shifted 0.1 of its
  height towards the fingers (``RectTransformationCalculator``, the arithmetic of
  :func:`handpose.detect.roi.transform_rect` that the palm crop uses too);
- a hand whose presence (the landmark network's hand probability) falls below 0.5 is lost;
- a palm detection whose hand crop overlaps a tracked hand's (IoU >= 0.5, ``AssociationNormRectCalculator``
  ``min_similarity_threshold``) is that hand: it starts no track.

Where this differs: MediaPipe runs the palm detector on every frame with fewer than ``max_num_hands`` hands, before
the landmarks; here the landmarks of the tracked hands come first, and the detector runs in the same frame as soon as
a tracked hand is lost (so it is found again at once), on every frame while no hand is tracked, and otherwise, while
fewer than ``max_hands`` are tracked, every ``redetect_every`` frames (1: MediaPipe's every frame). Added: a track
id per hand (a hand lost and found again in the same frame, its next crop overlapping the lost one by IoU >= 0.2,
keeps its id and filter; otherwise a new id), two tracks whose crops overlap merged into the older, and One-Euro
smoothing (:class:`handpose.filters.OneEuroFilter`) of each track's keypoints with its own filter. Crops come from
the raw keypoints, never the smoothed ones (smoothing lags). Crop overlap is the IoU of the crops' axis-aligned
bounds (:func:`handpose.detect.topdown.rect_bounds`, :func:`handpose.detect.decode.box_iou`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from handpose.detect.decode import box_iou
from handpose.detect.roi import RotatedRect, rotation_towards, transform_rect
from handpose.detect.topdown import TopDownPipeline, rect_bounds, rgb_image
from handpose.errors import HandposeError
from handpose.filters import OneEuroFilter
from handpose.result import Result

#: hand_landmark_landmarks_to_roi.pbtxt ``RectTransformationCalculator`` values.
LANDMARK_ROI_SCALE = 2.0
LANDMARK_ROI_SHIFT_Y = -0.1
#: HAND21 keypoints the next crop is measured on (more stable from frame to frame than the finger tips): wrist, thumb
#: CMC / MCP / IP, MCP and PIP of the index, middle, ring and little fingers.
ROI_KEYPOINTS = (0, 1, 2, 3, 5, 6, 9, 10, 13, 14, 17, 18)
#: A tracked hand whose presence falls below this is lost (MediaPipe's hand presence threshold).
MIN_PRESENCE = 0.5
#: Crops overlapping at least this much hold the same hand (``AssociationNormRectCalculator``).
MATCH_IOU = 0.5
#: A hand found by the detector whose next crop overlaps a track lost in the same frame at least this much is that
#: track's hand (lower than :data:`MATCH_IOU`: the lost track's crop is a frame behind; crops of ~80 px moved by
#: 28 px overlap 0.45).
REFIND_IOU = 0.2
#: While some but fewer than ``max_hands`` hands are tracked, the detector looks for the others every this many
#: frames (a third of a second at 30 frames/s).
REDETECT_EVERY = 10


def roi_from_landmarks(keypoints: np.ndarray, scale: float = LANDMARK_ROI_SCALE,
                       shift_y: float = LANDMARK_ROI_SHIFT_Y) -> RotatedRect:
    """The crop MediaPipe takes for a hand in the next frame from its keypoints in this one.

    Args:
        keypoints: ``(21, 2)`` HAND21 ``(x, y)`` in image pixels.
        scale, shift_y: ``RectTransformationCalculator`` (2.0 and -0.1 in MediaPipe).

    Returns:
        The square :class:`~handpose.detect.roi.RotatedRect`: turned so that the wrist -> finger-base direction
        points up, side ``scale`` times the long side of the rotated box around :data:`ROI_KEYPOINTS`, pixels.

    Raises:
        HandposeError: ``keypoints`` is not ``(21, 2)`` finite values.
    """
    kp = np.asarray(keypoints, np.float64)
    if kp.shape != (21, 2) or not np.isfinite(kp).all():
        raise HandposeError(f"roi_from_landmarks: expected (21, 2) finite HAND21 keypoints, got shape {kp.shape}")
    rotation = rotation_towards(kp[0], ((kp[5] + kp[13]) / 2 + kp[9]) / 2)
    c, s = math.cos(rotation), math.sin(rotation)
    axes = np.array([[c, s], [-s, c]])  # the rectangle's x and y axes in the image (RotatedRect.corners)
    local = kp[list(ROI_KEYPOINTS)] @ axes.T
    lo, hi = local.min(axis=0), local.max(axis=0)
    cx, cy = ((lo + hi) / 2) @ axes
    return transform_rect(RotatedRect((float(cx), float(cy)), float(hi[0] - lo[0]), float(hi[1] - lo[1]), rotation),
                          scale, shift_y)


def crop_iou(rect: RotatedRect, others: list[RotatedRect]) -> np.ndarray:
    """``(M,)`` IoU of ``rect``'s axis-aligned bounds with each of ``others``' (0 for none)."""
    def xyxy(r: RotatedRect) -> np.ndarray:
        x, y, w, h = rect_bounds(r)
        return np.array([x, y, x + w, y + h], np.float32)

    if not others:
        return np.zeros(0, np.float32)
    return box_iou(xyxy(rect), np.stack([xyxy(r) for r in others]))


@dataclass
class TrackedResult(Result):
    """A :class:`~handpose.result.Result` of :class:`HandTracker`, with ``track_ids``: ``(N,)`` int64, the id of
    each hand's track (kept from frame to frame while the hand is tracked; new ids count up from 0).

    ``detection_scores`` is the palm detector's score when the track started (the detector does not run on tracked
    hands), so ``instance_scores`` is that score times this frame's presence. ``boxes`` / ``regions`` are the crops
    the keypoint model looked at in this frame."""

    track_ids: np.ndarray | None = None

    def select(self, keep: np.ndarray) -> TrackedResult:
        """As :meth:`Result.select`, ``track_ids`` filtered alike."""
        out = super().select(keep)
        if self.track_ids is not None:
            out.track_ids = np.asarray(self.track_ids)[np.asarray(keep, bool)]
        return out

    def to_coco(self, *args, **kwargs) -> list[dict]:
        """As :meth:`Result.to_coco` (same arguments), with ``"track_id"`` in each entry."""
        entries = super().to_coco(*args, **kwargs)
        if self.track_ids is not None:
            for e, tid in zip(entries, self.track_ids, strict=True):
                e["track_id"] = int(tid)
        return entries


@dataclass
class _Track:
    id: int
    crop: RotatedRect  # where the keypoint model looks in the next frame
    detection_score: float
    smoother: OneEuroFilter | None


class HandTracker:
    """Hands from frame to frame of a video: ``tracker(frame, t) -> TrackedResult``.

    Per frame:

    1. the keypoint model runs on every track's crop, in one batch
       (:meth:`~handpose.detect.topdown.TopDownPipeline.keypoints`); tracks whose presence is below ``min_presence``
       are lost;
    2. the palm detector runs when a track was just lost, when no hand is tracked, or, while fewer than
       ``max_hands`` are tracked, once ``redetect_every`` frames have passed since it last ran. Its detections that
       overlap a tracked hand are dropped; the others, strongest first, up to ``max_hands`` hands in all, go through
       the keypoint model (a second batch) and start tracks when their presence reaches ``min_presence``;
    3. every hand's keypoints give its crop for the next frame (:func:`roi_from_landmarks`).

    See the module docstring for the MediaPipe calculators this follows and where it differs.

    Args:
        pipeline: the :class:`~handpose.detect.topdown.TopDownPipeline` whose palm detector and keypoint model are
            used (default: ``TopDownPipeline()``, palm_detection_full + mediapipe_hand_full). Its keypoint model
            must give the 21 HAND21 keypoints.
        max_hands: hands tracked at most (MediaPipe's ``max_num_hands``, default 2).
        min_presence: a hand below this presence is lost (and a detection below it starts no track). For keypoint
            models without a presence output, the mean keypoint score stands in for it.
        redetect_every: while some but fewer than ``max_hands`` hands are tracked, look for the others every this
            many frames (1: every frame, as MediaPipe; a new hand then waits at most this many frames).
        match_iou: crops overlapping at least this much hold the same hand.
        refind_iou: a hand the detector finds continues a track lost in the same frame when their next crops
            overlap at least this much.
        smoother: a :class:`~handpose.filters.OneEuroFilter` whose parameters each track's own filter copies; None:
            raw keypoints.
        scale, shift_y: the next crop from the keypoints (:func:`roi_from_landmarks`).

    Attributes:
        frames: frames seen since :meth:`reset`. detector_runs: of them, frames on which the palm detector ran.

    Raises:
        HandposeError: a keypoint model that does not give 21 keypoints, ``max_hands < 1`` or
            ``redetect_every < 1``.
    """

    def __init__(self, pipeline: TopDownPipeline | None = None, max_hands: int = 2,
                 min_presence: float = MIN_PRESENCE, redetect_every: int = REDETECT_EVERY,
                 match_iou: float = MATCH_IOU, refind_iou: float = REFIND_IOU, smoother: OneEuroFilter | None = None,
                 scale: float = LANDMARK_ROI_SCALE, shift_y: float = LANDMARK_ROI_SHIFT_Y):
        self.pipeline = pipeline if pipeline is not None else TopDownPipeline()
        if len(self.skeleton.keypoints) != 21:
            raise HandposeError(f"hand tracking needs a 21-keypoint hand model (its crop follows HAND21 joints); "
                                f"{self.pipeline.bundle.arch} gives {len(self.skeleton.keypoints)}")
        if max_hands < 1 or redetect_every < 1:
            raise HandposeError(f"hand tracking: max_hands and redetect_every must be >= 1, got {max_hands} and "
                                f"{redetect_every}")
        self.max_hands, self.min_presence, self.redetect_every = int(max_hands), float(min_presence), redetect_every
        self.match_iou, self.refind_iou, self.smoother = match_iou, refind_iou, smoother
        self.scale, self.shift_y = scale, shift_y
        self.reset()

    @property
    def skeleton(self):
        return self.pipeline.skeleton

    def reset(self) -> None:
        """Forget every track and the counters (e.g. before another video)."""
        self.tracks: list[_Track] = []
        self.frames = 0
        self.detector_runs = 0
        self._since_detection = 0
        self._next_id = 0

    def _landmarks(self, image: np.ndarray, crops: list[RotatedRect]) -> tuple[dict, np.ndarray]:
        """The keypoint model on ``crops``: its outputs and the presence ``(N,)`` (mean keypoint score without a
        presence output)."""
        out = self.pipeline.keypoints(image, crops)
        return out, out["presence"] if out["presence"] is not None else out["scores"].mean(axis=1)

    def __call__(self, image: np.ndarray, t: float | None = None, name: str = "") -> TrackedResult:
        """Track the hands into one RGB ``(H, W, 3)`` uint8 frame.

        Args:
            image: the frame. t: its time in seconds, increasing (default: frame count / 30), for the smoothing.
            name: the Result's ``file_name``.

        Returns:
            A :class:`TrackedResult` with the hands of this frame (presence >= ``min_presence``): those tracked
            from the previous frame first, then those the detector found; no hand: ``N = 0``.

        Raises:
            HandposeError: ``image`` is not ``(H, W, 3)``.
        """
        image = rgb_image(image, name or "frame")
        t = self.frames / 30.0 if t is None else float(t)
        self.frames += 1
        self._since_detection += 1
        hands: list[tuple[_Track, RotatedRect, dict, int]] = []  # track, crop looked at, keypoint outputs, row
        lost: list[_Track] = []
        if self.tracks:
            out, presence = self._landmarks(image, [tr.crop for tr in self.tracks])
            for i, tr in enumerate(self.tracks):
                if presence[i] >= self.min_presence:
                    hands.append((tr, tr.crop, out, i))
                else:
                    lost.append(tr)
        hands = self._next_crops(hands)
        if len(hands) < self.max_hands and (lost or not hands or self._since_detection >= self.redetect_every):
            hands += self._detect(image, hands, lost)
        self.tracks = [h[0] for h in hands]
        empty = None if hands else self.pipeline.keypoints(image, [])  # no hand: the model's empty outputs

        def field(key: str) -> np.ndarray | None:
            if empty is not None or hands[0][2][key] is None:
                return None if empty is None or empty[key] is None else np.asarray(empty[key], np.float32)
            return np.stack([h[2][key][h[3]] for h in hands]).astype(np.float32)

        kp = [h[2]["keypoints"][h[3]] if h[0].smoother is None else h[0].smoother(h[2]["keypoints"][h[3]], t)
              for h in hands]
        k = len(self.skeleton.keypoints)
        return TrackedResult(
            name, np.asarray(kp, np.float32).reshape(-1, k, 2), field("scores"),
            np.array([rect_bounds(h[1]) for h in hands], np.float32).reshape(-1, 4), (image.shape[1], image.shape[0]),
            self.skeleton, detection_scores=np.array([h[0].detection_score for h in hands], np.float32),
            presence=field("presence"), handedness=field("handedness"),
            regions=np.array([[*h[1].center, h[1].width, h[1].height, h[1].rotation] for h in hands],
                             np.float32).reshape(-1, 5),
            track_ids=np.array([h[0].id for h in hands], np.int64))

    def _next_crops(self, hands: list, held: list[RotatedRect] | None = None) -> list:
        """Set each hand's crop for the next frame from its keypoints; a hand whose next crop overlaps an earlier
        hand's or one of ``held`` (two crops on one hand) is dropped."""
        kept: list = []
        for hand in hands:
            tr, _, out, i = hand
            crop = roi_from_landmarks(out["keypoints"][i], self.scale, self.shift_y)
            iou = crop_iou(crop, [*(held or []), *(h[0].crop for h in kept)])
            if iou.size and iou.max() >= self.match_iou:
                continue
            tr.crop = crop
            kept.append(hand)
        return kept

    def _detect(self, image: np.ndarray, hands: list, lost: list[_Track]) -> list:
        """Run the palm detector; its ``max_hands`` strongest detections that no tracked hand holds through the
        keypoint model; of those with a hand (presence), strongest first, as many as there is room for. A new hand
        whose next crop overlaps the crop of a track lost in this frame continues that track (id and filter)."""
        self.detector_runs += 1
        self._since_detection = 0
        scores, rects = self.pipeline.regions(image)
        held = [h[0].crop for h in hands]
        new = [(float(s), r) for s, r in zip(scores, rects, strict=True)
               if not (crop_iou(r, held) >= self.match_iou).any()][:self.max_hands]
        if not new:
            return []
        out, presence = self._landmarks(image, [r for _, r in new])
        found = [(_Track(-1, rect, score, None), rect, out, i) for i, (score, rect) in enumerate(new)
                 if presence[i] >= self.min_presence]
        found = self._next_crops(found, held)[:self.max_hands - len(hands)]
        for n, (tr, *rest) in enumerate(found):
            iou = crop_iou(tr.crop, [old.crop for old in lost])  # next crops: both from keypoints, alike in size
            if iou.size and iou.max() >= self.refind_iou:
                old = lost.pop(int(iou.argmax()))
                old.crop, old.detection_score = tr.crop, tr.detection_score
                found[n] = (old, *rest)
            else:
                tr.id, tr.smoother = self._next_id, self._new_smoother()
                self._next_id += 1
        return found

    def _new_smoother(self) -> OneEuroFilter | None:
        s = self.smoother
        return None if s is None else OneEuroFilter(s.min_cutoff, s.beta, s.d_cutoff)


__all__ = ["LANDMARK_ROI_SCALE", "LANDMARK_ROI_SHIFT_Y", "MATCH_IOU", "MIN_PRESENCE", "REDETECT_EVERY",
           "REFIND_IOU", "ROI_KEYPOINTS", "HandTracker", "TrackedResult", "crop_iou", "roi_from_landmarks"]
