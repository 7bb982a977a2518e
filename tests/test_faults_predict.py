"""predict under hostile input and faults (issue 13): pixel bombs, results written as they come, overlays that never
overwrite an input, broken links and videos in folders, undecodable video tails, Rich markup in file names."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from handpose.data.image import read_image
from handpose.errors import HandposeError
from handpose.predict import overlay_names
from handpose.video import MAX_FRAME_FAILURES, read_frames
from tests.conftest import REPO

runner = CliRunner()
PHOTOS = sorted((REPO / "examples" / "hands").glob("*.jpg"))


def _app():
    from handpose.cli import app

    return app


def _photos(folder, n=2):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        shutil.copy(PHOTOS[i % len(PHOTOS)], folder / f"p{i:03d}.jpg")
    return folder


def test_pixel_bombs_are_reported_unread_and_the_batch_goes_on(tmp_path):
    d = _photos(tmp_path / "d")
    Image.new("1", (20000, 20000)).save(d / "big.png")  # over twice PIL's limit: DecompressionBombError in PIL
    Image.new("1", (13000, 13000)).save(d / "mid.png")  # under it: PIL would decode 2.3 GB as RGB
    assert (d / "mid.png").stat().st_size < 100_000
    out = tmp_path / "o.json"
    r = runner.invoke(_app(), ["predict", str(d), "--json", str(out), "-q"])
    assert r.exit_code == 1, r.output
    assert "big.png" in r.output and "mid.png" in r.output and "Mpx limit" in r.output
    assert sorted(e["file_name"].split("/")[-1] for e in json.loads(out.read_text())) == ["p000.jpg", "p001.jpg"]
    with pytest.raises(HandposeError, match="169.0 Mpx is over the 100 Mpx limit"):
        read_image(d / "mid.png")
    small = tmp_path / "s.png"
    Image.new("RGB", (300, 200)).save(small)
    with pytest.raises(HandposeError, match="over the 0.05 Mpx"):
        read_image(small, max_pixels=50_000)
    assert read_image(small, max_pixels=None).shape == (200, 300, 3)


def test_unwritable_json_fails_before_any_work(tmp_path):
    d = _photos(tmp_path / "d", 1)
    (tmp_path / "file").write_text("x")
    r = runner.invoke(_app(), ["predict", str(d), "--json", str(tmp_path / "file" / "o.json")])
    assert r.exit_code == 2 and "not writable" in r.output and "wrist=" not in r.output
    r = runner.invoke(_app(), ["predict", str(d), "--json", str(tmp_path)])
    assert r.exit_code == 2 and "is a folder" in r.output


def test_interrupt_writes_the_results_done_so_far(tmp_path, monkeypatch):
    from handpose.predict import Predictor

    d = _photos(tmp_path / "d", 4)
    original = Predictor.predict_paths

    def two_then_ctrl_c(self, *a, **k):
        for i, res in enumerate(original(self, *a, **k)):
            if i == 2:
                raise KeyboardInterrupt
            yield res

    monkeypatch.setattr(Predictor, "predict_paths", two_then_ctrl_c)
    out = tmp_path / "o.json"
    r = runner.invoke(_app(), ["predict", str(d), "--json", str(out), "-q", "--batch-size", "1"])
    assert r.exit_code == 130, r.output
    assert [e["file_name"].split("/")[-1] for e in json.loads(out.read_text())] == ["p000.jpg", "p001.jpg"]
    assert not list(tmp_path.glob(".o.json.*"))  # no temporary file left


@pytest.mark.slow
def test_sigterm_during_predict_exits_143_with_valid_json(tmp_path):
    d = _photos(tmp_path / "d", 300)
    out = tmp_path / "o.json"
    proc = subprocess.Popen([sys.executable, "-m", "handpose.cli", "predict", str(d), "--json", str(out), "-q",
                             "--batch-size", "2", "--workers", "0"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.time() + 60
    while time.time() < deadline:  # results are flushed as they come: wait for a few in the temporary file
        part = list(tmp_path.glob(".o.json.*.tmp"))
        if part and part[0].read_text().count("file_name") >= 4:
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    output = proc.communicate(timeout=60)[0].decode()
    assert proc.returncode == 143, output
    entries = json.loads(out.read_text())
    assert 4 <= len(entries) < 300 and "stopped" in output


def test_overlay_never_overwrites_an_input_and_names_are_unique(tmp_path):
    dup = tmp_path / "dup"
    (dup / "a").mkdir(parents=True)
    (dup / "b").mkdir()
    shutil.copy(PHOTOS[0], dup / "a" / "photo.jpg")
    Image.open(PHOTOS[1]).save(dup / "a" / "photo.png")
    shutil.copy(PHOTOS[2], dup / "b" / "photo.jpg")
    shutil.copy(PHOTOS[3], dup / "scan.png")
    scan = (dup / "scan.png").read_bytes()
    r = runner.invoke(_app(), ["predict", str(dup / "a"), str(dup / "b"), str(dup / "scan.png"),
                               "--overlay", str(dup), "-q"])
    assert r.exit_code == 0, r.output
    assert (dup / "scan.png").read_bytes() == scan  # the input is untouched
    made = sorted(p.name for p in dup.glob("*.png") if p.name != "scan.png")
    assert made == ["a_photo_jpg.png", "b_photo_jpg.png", "photo_png.png", "scan_overlay.png"]
    assert overlay_names([dup / "a" / "photo.jpg"] * 2, tmp_path) == [tmp_path / "photo.png"] * 2


def test_image_and_video_overlay_are_kept_apart(tmp_path):
    clip = tmp_path / "clip.mp4"
    w = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (256, 256))
    for i in range(3):
        w.write(cv2.cvtColor(read_image(PHOTOS[i]), cv2.COLOR_RGB2BGR))
    w.release()
    r = runner.invoke(_app(), ["predict", str(PHOTOS[0]), str(clip), "--overlay", str(tmp_path / "out.mp4"), "-q"])
    assert r.exit_code == 2 and "give a folder" in r.output and not (tmp_path / "out.mp4").exists()
    r = runner.invoke(_app(), ["predict", str(clip), "--overlay", str(clip), "-q"])
    assert r.exit_code == 2 and "input video itself" in r.output
    out = tmp_path / "o.json"
    r = runner.invoke(_app(), ["predict", str(PHOTOS[0]), str(clip), "--overlay", str(tmp_path / "ov"),
                               "--json", str(out), "-q"])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "ov").iterdir()) == ["clip.mp4", "hgcnn_460.png"]
    assert [e.get("frame") for e in json.loads(out.read_text())] == [None, 0, 1, 2]


def test_broken_link_and_video_in_a_folder_are_reported(tmp_path):
    d = _photos(tmp_path / "d", 1)
    (d / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")
    (d / "clip.mp4").write_bytes(b"")
    r = runner.invoke(_app(), ["predict", str(d), "-q"])
    assert r.exit_code == 1, r.output
    assert "gone.jpg: broken link" in r.output and "clip.mp4: a video inside a folder" in r.output
    assert "1 images/frames predicted, 2 failed" in r.output


class _Capture:
    """Stands in for cv2.VideoCapture: ``total`` frames counted, those in ``bad`` undecodable."""

    def __init__(self, total, bad):
        self.total, self.bad, self.i = total, set(bad), 0

    def get(self, prop):
        return self.total if prop == cv2.CAP_PROP_FRAME_COUNT else 0

    def read(self):
        self.i += 1
        if self.i > self.total or self.i - 1 in self.bad:
            return False, None
        return True, np.zeros((4, 4, 3), np.uint8)


def test_undecodable_last_frames_and_giving_up_are_reported():
    errors = []
    assert [i for i, _ in read_frames(_Capture(5, {4}), lambda i, m: errors.append(m))] == [0, 1, 2, 3]
    assert errors == ["frame 4 could not be decoded"]
    errors.clear()
    frames = [i for i, _ in read_frames(_Capture(100, range(10, 100)), lambda i, m: errors.append(m))]
    assert frames == list(range(10)) and len(errors) == MAX_FRAME_FAILURES + 1
    assert errors[-1] == f"video given up after {MAX_FRAME_FAILURES} undecodable frames in a row; frames 35 to 99 " \
                         "not read"


def test_square_brackets_in_file_names_are_printed_as_they_are(tmp_path):
    d = tmp_path / "[" / "b]x"  # the path holds "[/b]", Rich's closing tag
    d.mkdir(parents=True)
    shutil.copy(PHOTOS[0], d / "photo [edited].jpg")
    (d / "bad [red].jpg").write_bytes(b"not an image")
    r = runner.invoke(_app(), ["predict", str(d)])
    assert r.exit_code == 1, r.output
    assert "photo [edited].jpg #0" in r.output and "bad [red].jpg" in r.output and "[/b]x" in r.output
