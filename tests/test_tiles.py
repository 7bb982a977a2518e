"""Palm detection on overlapping tiles (:mod:`handpose.detect.tiles`), on real photos.

Measured with the shipped palm_detection_full (PyTorch, one thread) on 8 composites of 640 x 480 coco-person-mini
train photos with one hgcnn-freihand train hand of 40-56 px pasted in each (seed 0): one pass over the whole photo
finds 2 of the 8 hands, the 3 x 3 tiles (plus that pass) 7 (bounds: at most 3 and at least 5, 3 more), a hand
found when a palm lies in its keypoint box grown by half its side; one palm (score 0.80) lies neither there nor in
a background person's hand region (bound 1). Through the whole pipeline
(``benchmarks``-style scoring on the 10 held-out coco-wholebody-hands photos, full networks through onnxruntime):
hands found 4 / 6 / 11 of 28 with tiles 1 / 2 / 3 (MediaPipe Hands: 3), see docs/benchmarks.md.
"""

from __future__ import annotations

import numpy as np
import pytest

from handpose.data.coco import load_coco
from handpose.data.composite import HandCrop, background_regions, compose, wrists_labelled
from handpose.data.freihand import load_freihand
from handpose.data.image import read_image
from handpose.detect.detector import PalmDetector
from handpose.detect.tiles import detect_tiled, tile_boxes
from handpose.detect.topdown import TopDownPipeline
from handpose.errors import HandposeError
from tests.conftest import DATA

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_tile_boxes_cover_the_image_with_the_overlap_asked():
    assert tile_boxes(640, 480, 1) == [(0, 0, 640, 480)]
    boxes = tile_boxes(640, 480, 3, overlap=0.25)
    assert len(boxes) == 9
    covered = np.zeros((480, 640), bool)
    for x0, y0, x1, y1 in boxes:
        covered[y0:y1, x0:x1] = True
        assert 0 <= x0 < x1 <= 640 and 0 <= y0 < y1 <= 480
    assert covered.all()
    (ax0, _, ax1, _), (bx0, _, _, _) = boxes[0], boxes[1]  # neighbours overlap by a quarter of a tile
    assert abs((ax1 - bx0) - 0.25 * (ax1 - ax0)) <= 1
    for bad in ((0, 0.25), (2, 1.0), (2, -0.1)):
        with pytest.raises(HandposeError, match="grid"):
            tile_boxes(640, 480, *bad)
    with pytest.raises(HandposeError, match="grid"):
        TopDownPipeline("full", "mediapipe_hand_full", tiles=0)


@pytest.fixture(scope="module")
def small_hands():
    """8 composites (640 x 480) with one hgcnn-freihand train hand of 40-56 px each."""
    hands = load_freihand(DATA / "hgcnn-freihand", "train")[::40]
    people = DATA / "coco-person-mini"
    backgrounds, _ = load_coco(people / "annotations" / "person_keypoints_train2017.json", people / "train2017",
                               per_instance=False)
    backgrounds = [b for b in backgrounds if wrists_labelled(b)]
    rng = np.random.default_rng(0)
    made = []
    for i in range(8):
        b = backgrounds[i % len(backgrounds)]
        made.append(compose(read_image(b.image_path), [HandCrop.from_record(hands[i])], rng, background_regions(b),
                            (640, 480), hand_sizes=(40.0, 56.0)))
    return made


def _inside(box: np.ndarray, hand_box: np.ndarray) -> bool:
    x, y, w, h = hand_box
    g = 0.5 * max(w, h)
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return x - g <= cx <= x + w + g and y - g <= cy <= y + h + g


def test_tiles_find_small_hands_the_whole_photo_misses(small_hands):
    detector = PalmDetector("full")
    whole = tiled = elsewhere = 0
    for c in small_hands:
        whole += min(1, sum(_inside(d.box, c.boxes[0]) for d in detector.detect(c.image)))
        found = detect_tiled(detector, c.image, grid=3)
        hits = [_inside(d.box, c.boxes[0]) for d in found]
        tiled += min(1, sum(hits))
        # coordinates mapped back to the photo: the palms are the pasted hand's or a background person's hands
        elsewhere += sum(not h and not any(_inside(d.box, g) for g in c.ignore_boxes)
                         for h, d in zip(hits, found, strict=True))
        for d in found:  # the 7 palm keypoints lie in and around the palm box, in photo pixels
            side = max(d.box[2:] - d.box[:2])
            assert (d.keypoints >= d.box[:2] - side).all() and (d.keypoints <= d.box[2:] + side).all()
    assert whole <= 3 and tiled >= 5 and tiled >= whole + 3 and elsewhere <= 1


def test_predict_detect_tiles_on_a_coco_photo(tmp_path):
    """The CLI option reaches the pipeline: a held-out-size COCO photo with small hands gives at least the hands of
    the plain pass; a grid below 1 is refused with the option's message."""
    import json

    from typer.testing import CliRunner

    from handpose.cli import app

    photo = DATA / "coco-wholebody-hands" / "images" / "000000199055.jpg"
    counts = {}
    for tiles in (1, 2):
        out = tmp_path / f"t{tiles}.json"
        r = CliRunner().invoke(app, ["predict", str(photo), "--detect", "--tiles", str(tiles), "--json", str(out),
                                     "--quiet"])
        assert r.exit_code == 0, r.output
        counts[tiles] = len(json.loads(out.read_text()))
    assert counts[1] >= 1 and counts[2] >= counts[1]
    r = CliRunner().invoke(app, ["predict", str(photo), "--detect", "--tiles", "0", "--quiet"])
    assert r.exit_code != 0 and "grid" in r.output
