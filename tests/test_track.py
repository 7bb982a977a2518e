"""Hands tracked from frame to frame (handpose.detect.track) on a real clip.

The clip: the coco-wholebody-hands photo 000000199055.jpg (480 x 640, a man with both hands in view, 53 and 49 px
label boxes) moved across the frame by :data:`SHIFTS` (black border), written by OpenCV as an MJPG AVI at 30
frames/s; the JPEG data of frame :data:`CORRUPT` is zeroed, so that the decoder fails on that frame ("No JPEG data
found in image"). Frames 0-5 pan slowly (4 px left, 2 px down per frame); frames 6-13 pan right 28 px
per frame (840 px/s) until both hands are out of the frame, 14-15 stay there, 16-21 pan back.

Measured here (palm_detection_full + mediapipe_hand_full, PyTorch, one thread):

- the palm detector ran on 14 of the 21 decoded frames: frame 0, then not while both hands were tracked (1-5), on
  every frame of the fast pan (one hand or both lost on most frames and found again in the same frame, keeping their
  ids), of the frames without hands and until both hands were back (6-18); not on 19-21;
- tracked keypoints in frames 1-5 and 20-21: mean error to the shifted labels 2.0-5.5 px per hand (per-frame
  detection on the same frames: 2.2-6.3 px); mean distance to per-frame detection at most 3.3 px. The frame after a
  fast move is worse: frame 19 (30 px since frame 18, the crop a frame behind) 8.0 and 6.6 px from the labels, 9.0
  px from per-frame detection;
- hands leave: one hand left at frame 12, none in 13-15 (empty results); found again from frame 16 with new ids.
"""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from handpose.data.image import read_image
from handpose.detect.roi import RotatedRect
from handpose.detect.topdown import TopDownPipeline
from handpose.detect.track import ROI_KEYPOINTS, HandTracker, roi_from_landmarks
from handpose.errors import HandposeError
from handpose.filters import OneEuroFilter
from handpose.video import open_video, predict_video, read_frames

PHOTO = "000000199055.jpg"
FPS = 30.0
#: (dx, dy) pixels the photo is moved by in each frame.
SHIFTS = ([(-4 * i, 2 * i) for i in range(6)] + [(-20 + 28 * k, 10) for k in range(1, 9)] + [(260, 10)] * 2
          + [(160, 10), (100, 10), (40, 10), (10, 10), (10, 10), (10, 10)])
CORRUPT = 3
#: Frames where both hands are in view and tracked, the photo moved by at most 8 px since the last decoded frame.
TRACKED = [1, 2, 4, 5, 20, 21]
OUT = [13, 14, 15]  # frames without a hand in view
SHORT = 10  # frames of the clip given to the command line
#: Bounds: mean keypoint error of a tracked hand to the shifted labels (measured at most 5.5 px; per-frame detection
#: 6.3 px), and mean distance to per-frame detection on the same frame (measured at most 3.3 px).
TOL_LABELS = 8.0
TOL_DETECTION = 5.0

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_pan_clip(path, photo: np.ndarray, shifts, fps: float = FPS, corrupt: tuple[int, ...] = ()):
    """Write ``photo`` moved by each ``(dx, dy)`` of ``shifts`` (pixels, black border) as an MJPG AVI at ``path``;
    the JPEG data of each frame in ``corrupt`` (not the last) is zeroed, the AVI chunk around it left as it was
    (OpenCV's FFmpeg decoder then finds no JPEG in it and the read fails)."""
    h, w = photo.shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    for dx, dy in shifts:
        frame = cv2.warpAffine(photo, np.float32([[1, 0, dx], [0, 1, dy]]), (w, h), borderMode=cv2.BORDER_CONSTANT)
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    if corrupt:
        data = bytearray(path.read_bytes())
        starts = [i for i in range(len(data) - 2) if data[i:i + 3] == b"\xff\xd8\xff"]  # JPEG start-of-image
        assert len(starts) == len(shifts)
        for i in corrupt:
            end = starts[i + 1] - 8  # the next frame's chunk header: 4-byte id, 4-byte size
            data[starts[i]:end] = bytes(end - starts[i])
        path.write_bytes(bytes(data))
    return path


@pytest.fixture(scope="module")
def labels(hands_coco) -> np.ndarray:
    """``(2, 21, 2)`` the photo's two labelled hands."""
    ann, _ = hands_coco
    data = json.loads(ann.read_text())
    image_id = next(im["id"] for im in data["images"] if im["file_name"] == PHOTO)
    return np.array([np.reshape(a["keypoints"], (21, 3))[:, :2] for a in data["annotations"]
                     if a["image_id"] == image_id], np.float32)


@pytest.fixture(scope="module")
def clip(hands_coco, tmp_path_factory):
    photo = read_image(hands_coco[1] / PHOTO, exif_transpose=False)
    return make_pan_clip(tmp_path_factory.mktemp("track") / "pan.avi", photo, SHIFTS, corrupt=(CORRUPT,))


@pytest.fixture(scope="module")
def short_clip(hands_coco, tmp_path_factory):
    """The clip's first :data:`SHORT` frames (tracking is causal: their results are the whole clip's)."""
    photo = read_image(hands_coco[1] / PHOTO, exif_transpose=False)
    return make_pan_clip(tmp_path_factory.mktemp("track") / "short.avi", photo, SHIFTS[:SHORT], corrupt=(CORRUPT,))


@pytest.fixture(scope="module")
def pipeline() -> TopDownPipeline:
    return TopDownPipeline("full", "mediapipe_hand_full")


@pytest.fixture(scope="module")
def tracked(pipeline, clip):
    """The clip through a HandTracker: ``{"frames": FrameResults, "errors": [(index, message)], "runs": frame
    indices where the palm detector ran, "tracker"}``."""
    tracker = HandTracker(pipeline)
    errors, ordinals = [], []
    regions = pipeline.regions
    pipeline.regions = lambda image: (ordinals.append(tracker.frames - 1), regions(image))[1]  # count the runs
    try:
        frames = list(predict_video(tracker, clip, on_error=lambda i, m: errors.append((i, m))))
    finally:
        del pipeline.regions
    runs = [frames[o].index for o in ordinals]  # the n-th decoded frame -> its index in the video
    return {"frames": {f.index: f.result for f in frames}, "errors": errors, "runs": runs, "tracker": tracker}


def nearest(kp: np.ndarray, candidates: np.ndarray) -> tuple[int, float]:
    """Index of the hand in ``candidates (M, 21, 2)`` nearest to ``kp (21, 2)`` and their mean keypoint distance."""
    d = [float(np.linalg.norm(kp - c, axis=1).mean()) for c in candidates]
    return int(np.argmin(d)), min(d)


def test_corrupt_frame_is_reported_and_the_video_goes_on(tracked):
    assert tracked["errors"] == [(CORRUPT, f"frame {CORRUPT} could not be decoded")]
    assert sorted(tracked["frames"]) == [i for i in range(len(SHIFTS)) if i != CORRUPT]


def test_detector_runs_only_when_hands_are_lost_or_missing(tracked):
    runs, n = tracked["runs"], len(tracked["frames"])
    print(f"palm detector on frames {runs}: {len(runs)} of {n}")
    assert tracked["tracker"].detector_runs == len(runs) < n
    assert runs[0] == 0
    assert not set(runs) & set(TRACKED)  # both hands tracked: no detection
    assert set(OUT) <= set(runs)  # no hand tracked: the detector looks on every frame


def test_tracked_keypoints_follow_the_hands(tracked, labels, pipeline, clip):
    frames = tracked["frames"]
    decoded = dict(read_frames(open_video(clip), lambda i, m: None))
    first = frames[0]
    assert sorted(first.track_ids.tolist()) == [0, 1]
    label_of = {int(t): nearest(kp, labels)[0] for t, kp in zip(first.track_ids, first.keypoints, strict=True)}
    assert sorted(label_of.values()) == [0, 1]
    worst_label, worst_detection = 0.0, 0.0
    for i in TRACKED:
        res = frames[i]
        ref = pipeline(decoded[i])
        assert len(res.keypoints) == 2 and len(ref.keypoints) == 2, i
        shifted = labels + np.float32(SHIFTS[i])
        for tid, kp in zip(res.track_ids, res.keypoints, strict=True):
            j, err = nearest(kp, shifted)
            if i < CORRUPT + 3:  # the slow pan: the tracks of frame 0, each on its own hand
                assert int(tid) in label_of and label_of[int(tid)] == j, (i, tid)
            worst_label = max(worst_label, err)
            worst_detection = max(worst_detection, nearest(kp, ref.keypoints)[1])
    print(f"tracked hands: error to the labels up to {worst_label:.2f} px, to per-frame detection up to "
          f"{worst_detection:.2f} px")
    assert worst_label < TOL_LABELS
    assert worst_detection < TOL_DETECTION


def test_hands_leaving_the_frame_are_lost_and_found_again(tracked):
    frames = tracked["frames"]
    for i in OUT:
        res = frames[i]
        assert res.keypoints.shape == (0, 21, 2) and res.scores.shape == (0, 21) and res.presence.shape == (0,)
        assert res.track_ids.shape == (0,) and res.to_coco() == []
    back = frames[max(TRACKED)]
    assert len(back.keypoints) == 2 and min(back.track_ids) > 1  # found again: new tracks
    assert (back.presence >= 0.5).all()


def test_cli_tracks_the_video_with_one_filter_per_track(tracked, short_clip, tmp_path):
    from handpose.cli import app

    out = tmp_path / "track.json"
    r = CliRunner().invoke(app, ["predict", str(short_clip), "--detect", "--smooth", "--min-cutoff", "1.0", "--beta",
                                 "0.01", "--json", str(out), "-q"])
    assert r.exit_code == 1, r.output  # the corrupt frame counts as a failure; every other frame is written
    assert f"frame {CORRUPT} could not be decoded" in r.output and "frames/s" in r.output
    assert f"palm detector on {sum(i < SHORT for i in tracked['runs'])}" in r.output
    entries = json.loads(out.read_text())
    frames = {i: res for i, res in tracked["frames"].items() if i < SHORT}
    assert len(entries) == sum(len(res.keypoints) for res in frames.values())
    assert CORRUPT not in {e["frame"] for e in entries}
    # the smoothed keypoints are each track's raw keypoints through its own One-Euro filter (frame times)
    for tid in {e["track_id"] for e in entries}:
        f = OneEuroFilter(1.0, 0.01)
        for e in sorted((e for e in entries if e["track_id"] == tid), key=lambda e: e["frame"]):
            res = frames[e["frame"]]
            raw = res.keypoints[list(res.track_ids).index(tid)]
            expected = f(raw, e["frame"] / FPS)
            got = np.reshape(e["keypoints"], (21, 3))[:, :2]
            np.testing.assert_allclose(got, expected, atol=0.01)
            assert e["time_s"] == pytest.approx(e["frame"] / FPS, abs=1e-4) and len(e["bbox"]) == 4


def test_roi_from_landmarks_turns_with_the_hand(labels):
    kp = labels[0]
    rect = roi_from_landmarks(kp)
    assert rect.width == rect.height
    poly = rect.corners().reshape(-1, 1, 2)
    assert all(cv2.pointPolygonTest(poly, (float(x), float(y)), False) > 0 for x, y in kp[list(ROI_KEYPOINTS)])
    # the same hand turned by 50 degrees about (300, 200): the crop turns with it, its size unchanged
    a = math.radians(50)
    R = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    turned = roi_from_landmarks((kp - [300, 200]) @ R.T + [300, 200])
    assert turned.width == pytest.approx(rect.width, rel=1e-5)
    assert math.remainder(turned.rotation - rect.rotation - a, 2 * math.pi) == pytest.approx(0, abs=1e-6)
    np.testing.assert_allclose(turned.center, (np.asarray(rect.center) - [300, 200]) @ R.T + [300, 200], atol=1e-3)
    # an upright hand: wrist below the finger bases -> no rotation; the crop is twice the long side of the box
    # around the ROI keypoints, moved up by 0.1 of its height
    up = np.zeros((21, 2))
    up[list(ROI_KEYPOINTS)] = [[100, 200]] * len(ROI_KEYPOINTS)
    up[[5, 9, 13]] = [[80, 120], [100, 120], [120, 120]]
    up[[17, 18]] = [[130, 125], [140, 100]]
    r = roi_from_landmarks(up)
    assert r.rotation == pytest.approx(0.0)
    assert r.width == pytest.approx(2 * 100)  # box x 80..140, y 100..200
    assert r.center == pytest.approx((110.0, 150.0 - 0.1 * 100))
    assert isinstance(r, RotatedRect)


def test_bad_input(pipeline):
    tracker = HandTracker(pipeline)
    with pytest.raises(HandposeError, match="expected \\(H, W, 3\\)"):
        tracker(np.zeros((10, 10), np.uint8))
    with pytest.raises(HandposeError, match="max_hands"):
        HandTracker(pipeline, max_hands=0)
    # a frame without hands: an empty result, and the detector ran on it
    res = tracker(np.zeros((120, 160, 3), np.uint8))
    assert res.keypoints.shape == (0, 21, 2) and res.track_ids.shape == (0,) and tracker.detector_runs == 1


def test_overlay_draws_each_track_id_beside_its_wrist(tracked, clip):
    from handpose.video import draw_frame
    from handpose.visualize import draw_skeleton

    frame = dict(read_frames(open_video(clip), lambda i, m: None))[0]
    res = tracked["frames"][0]
    drawn, plain = draw_frame(frame, res, res.skeleton), draw_skeleton(frame, res.keypoints, res.skeleton)
    changed = np.argwhere((drawn != plain).any(axis=2))  # (row, col) of the id labels' pixels
    assert len(changed) > 20
    wrists = res.keypoints[:, 0]
    # every changed pixel lies in the label box right of and below a wrist; each wrist has its label
    near = [(changed[:, 1] >= x) & (changed[:, 1] <= x + 40) & (changed[:, 0] >= y) & (changed[:, 0] <= y + 20)
            for x, y in wrists]
    assert np.logical_or.reduce(near).all() and all(n.any() for n in near)


def test_detector_looks_for_more_hands_every_n_frames(pipeline, clip):
    tracker = HandTracker(pipeline, max_hands=3, redetect_every=3)  # two hands in view: always fewer than 3
    decoded = [f for _, f in zip(range(5), read_frames(open_video(clip), lambda i, m: None), strict=False)]
    ids = [tracker(frame, i / FPS).track_ids.tolist() for i, (_, frame) in enumerate(decoded)]
    assert tracker.detector_runs == 2  # the first frame, then the 3rd frame after it
    assert all(sorted(t) == [0, 1] for t in ids)  # its detections of the tracked hands start no track
