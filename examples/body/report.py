"""The released Lightweight OpenPose (Open Model Zoo ``human-pose-estimation-0001``, OpenVINO IR, FP16-INT8), imported
into handpose's network and shipped converted (``handpose.load_model("lightweight_openpose_coco")``): score its COCO
keypoint AP on coco-person-mini's val2017 photos through handpose's bottom-up path (Predictor -> PafCodec grouping
-> pycocotools), draw the grouped people on two photos (out/body/), and print one JSON line of the figures.

    python examples/body/report.py [--height 368] [--upsample 4]

The network sees each photo letterboxed to ``--height`` rows keeping its aspect (height fixed, width padded, as in
Osokin's ``val.py`` and the Open Model Zoo demo), at most ``--max-aspect`` times as wide (the widest val photo,
640x304); ``--upsample`` enlarges the heatmaps and PAFs bicubically before peak finding and grouping (``val.py``
upsamples by the stride, 8, then to the photo's size); the codec's ``upsample`` does it. The default height is
``val.py``'s 368, the setting of the reported 40% AP; the IR's own input is 256 rows (the Open Model Zoo demo's).

Measured here (26 photos, 50 labelled people; AP / AP50): height 368 with maps x4: 0.409 / 0.664 (x1: 0.392, x8:
0.397); height 256 with maps x4: 0.336 / 0.571 (x1 at 456 px wide: 0.301, x4: 0.306). Ranking instances by the sum
instead of the mean of their keypoint scores: 0.337 at 256 (no change worth making)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from pathlib import Path

from handpose.bundle import ModelBundle, load_model
from handpose.data.image import read_image
from handpose.evaluate import evaluate_bottom_up
from handpose.predict import Predictor
from handpose.skeleton import COCO18
from handpose.visualize import draw_skeleton, save_image

DATA = Path("../shared/data/coco-person-mini")
#: Osokin's paper and repository: 40% AP on COCO val2017 at one scale.
ORIGINAL_REPORTED_AP = 0.40
#: Two val photos with several labelled people, drawn into out/body/.
DRAWN = ("000000217285.jpg", "000000183709.jpg")


def build_bundle(height: int, width: int, upsample: int) -> ModelBundle:
    """The shipped imported network (``handpose.load_model("lightweight_openpose_coco")``) for ``width x height``
    input with its maps enlarged ``upsample`` times for decoding."""
    bundle = load_model("lightweight_openpose_coco")
    bundle.codec = dataclasses.replace(bundle.codec, input_size=(width, height), upsample=upsample)
    return bundle


def draw(bundle: ModelBundle, names: tuple[str, ...], out: Path) -> list[str]:
    """Draw the grouped instances on the named val photos."""
    predictor = Predictor(bundle)
    written = []
    for name in names:
        image = read_image(DATA / "val2017" / name)
        res = predictor.predict_arrays([image], names=[name])[0]
        path = out / f"{Path(name).stem}_{len(res.keypoints)}found.jpg"
        save_image(path, draw_skeleton(image, res.keypoints, COCO18))
        written.append(str(path))
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--height", type=int, default=368, help="network input height in pixels")
    parser.add_argument("--max-aspect", type=float, default=2.125, help="input width / height (widest photo)")
    parser.add_argument("--upsample", type=int, default=4, choices=(1, 2, 4, 8), help="map enlargement")
    parser.add_argument("--out", type=Path, default=Path("out/body"))
    args = parser.parse_args()
    width = 8 * math.ceil(args.height * args.max_aspect / 8)
    bundle = build_bundle(args.height, width, args.upsample)
    scores = evaluate_bottom_up(bundle, DATA / "annotations/person_keypoints_val2017.json", DATA / "val2017",
                                batch_size=1)
    drawn = draw(bundle, DRAWN, args.out)
    print(f"input {width}x{args.height}, maps x{args.upsample}; grouped people drawn: {', '.join(drawn)}")
    print(json.dumps({"body_ap": round(scores["AP"], 4), "body_ap50": round(scores["AP50"], 4),
                      "matched": scores["matched"], "instances": scores["n_instances"],
                      "original_reported_ap": ORIGINAL_REPORTED_AP, "input": f"{width}x{args.height}",
                      "upsample": args.upsample}))


if __name__ == "__main__":
    main()
