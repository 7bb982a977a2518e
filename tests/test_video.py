"""Video prediction on a short real clip made from the shared photos."""

import json

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from handpose import HandposeError, Predictor
from handpose.cli import app
from handpose.data.image import read_image
from handpose.video import open_video, predict_video, read_frames
from tests.conftest import REPO

EXAMPLES = sorted((REPO / "examples" / "hands").glob("*.jpg"))


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (256, 256))
    for i in range(12):
        w.write(cv2.cvtColor(read_image(EXAMPLES[i % 4]), cv2.COLOR_RGB2BGR))
    w.release()
    return path


def test_video_frames_json_and_overlay(clip, tmp_path):
    out_json, out_video = tmp_path / "v.json", tmp_path / "v.mp4"
    r = CliRunner().invoke(app, ["predict", str(clip), "--json", str(out_json), "--overlay", str(out_video), "-q"])
    assert r.exit_code == 0, r.output
    entries = json.loads(out_json.read_text())
    assert [e["frame"] for e in entries] == list(range(12))
    assert entries[3]["time_s"] == pytest.approx(0.3)
    cap = cv2.VideoCapture(str(out_video))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 12
    # the clip repeats the 4 photos: frame 4 shows the same photo as frame 0 (compressed as another frame type)
    k0, k4 = (np.asarray(entries[i]["keypoints"]).reshape(-1, 3)[:, :2] for i in (0, 4))
    assert np.median(np.linalg.norm(k0 - k4, axis=1)) < 2.0
    # and close to the prediction on the photo itself (mp4 compression changes the pixels a little)
    ref = Predictor().predict_arrays([read_image(EXAMPLES[0])])[0].keypoints[0]
    assert np.median(np.linalg.norm(k0 - ref, axis=1)) < 4.0


def test_smoothing_steadies_keypoints(clip):
    pred = Predictor()
    raw = [f.result.keypoints for f in predict_video(pred, clip)]
    from handpose.filters import OneEuroFilter

    smooth = [f.result.keypoints for f in predict_video(pred, clip, smoother=OneEuroFilter(0.5, 0.0))]
    jitter = lambda seq: float(np.mean([np.abs(b - a).mean() for a, b in zip(seq, seq[1:], strict=False)]))  # noqa: E731
    assert jitter(smooth) < 0.6 * jitter(raw)


def test_bad_sources(tmp_path):
    fake = tmp_path / "fake.mp4"
    fake.write_text("not a video")
    with pytest.raises(HandposeError, match="fake.mp4: video cannot be opened"):
        open_video(fake)
    with pytest.raises(HandposeError, match="not found"):
        open_video(tmp_path / "none.mp4")
    with pytest.raises(HandposeError, match="camera 7 is not there"):
        open_video(7)
    r = CliRunner().invoke(app, ["predict", str(fake), str(EXAMPLES[0]), "-q"])
    assert r.exit_code == 1 and "fake.mp4" in r.output and "1 images/frames predicted" in r.output


class _BrokenCapture:
    """Stands in for cv2.VideoCapture: 6 frames, frame 2 cannot be decoded."""

    def __init__(self):
        self.i = 0

    def get(self, prop):
        return 6 if prop == cv2.CAP_PROP_FRAME_COUNT else 0

    def read(self):
        self.i += 1
        if self.i > 6:
            return False, None
        return (False, None) if self.i == 3 else (True, np.zeros((4, 4, 3), np.uint8))


def test_undecodable_frame_is_reported_and_the_rest_read():
    errors = []
    frames = [i for i, _ in read_frames(_BrokenCapture(), lambda i, m: errors.append((i, m)))]
    assert frames == [0, 1, 3, 4, 5]
    assert errors == [(2, "frame 2 could not be decoded")]
