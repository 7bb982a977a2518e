"""Left hands by mirroring: the bundled model on the left and right hands of coco-wholebody-hands, each hand run as
given and mirrored into the model with its keypoints mirrored back (``Predictor(hand=...)``).

    python benchmarks/bench_mirror.py [--model MODEL] [--coco ANN.json --images DIR] [--no-train-share]

Handedness is not labelled in coco-wholebody-hands. The rule used here: MediaPipe's landmark network
(``mediapipe_hand_full``, shipped) on each hand turned upright from its labelled keypoints (the rotated square of
MediaPipe's landmarks-to-ROI step: wrist -> middle-finger MCP pointing up, the keypoint box grown 2x and moved 0.1
of its height towards the fingers), its handedness output (probability of a right hand in the image as given) >= 0.5
-> right. Each hand is cropped for the keypoint model from its box grown by the model's margin (as ``handpose
evaluate --coco``). Rows:

- ``as given``: no mirroring;
- ``model_hand=right``: the left hands (by the rule above) mirrored, the right ones as given (the tutorial's
  recipe for a model trained on right hands);
- ``model_hand=left``: the right hands mirrored: the bundled model's training photos (hgcnn-freihand) are left
  hands, though it was trained with random flips (``aug_flip: 0.5``);
- ``hand=auto, model_hand=left``: the Predictor's own choice (MediaPipe's handedness on the axis-aligned crop, not
  turned upright);
- ``all mirrored``: every hand mirrored.

Errors: mean Euclidean distance over the labelled keypoints, pixels of the original photos. With
``--train-share`` (default on) the same handedness rule without turning (the photos are hand crops) is applied to
the hgcnn-freihand train split, the bundled model's training photos. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from handpose import load_model
from handpose.data.coco import load_coco
from handpose.data.freihand import load_freihand
from handpose.data.image import read_image
from handpose.detect.roi import roi_from_palm
from handpose.detect.topdown import TopDownPipeline
from handpose.evaluate import DEFAULT_BOX_MARGIN, model_box_margin
from handpose.metrics import keypoint_errors
from handpose.predict import HANDEDNESS_MODEL, Predictor

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
#: MediaPipe's hand_landmark_landmarks_to_roi.pbtxt: RectTransformationCalculator scale 2.0, shift_y -0.1;
#: rotation from landmark 0 (wrist) to 9 (middle-finger MCP).
LANDMARK_ROI_SCALE, LANDMARK_ROI_SHIFT_Y = 2.0, -0.1


def handedness_of_records(records, pipeline: TopDownPipeline) -> np.ndarray:
    """``(N,)`` probability of a right hand for each single-hand record, by the module docstring's rule."""
    probs = []
    for r in records:
        kp, vis = r.keypoints[0], r.visible[0] > 0
        lo, hi = kp[vis].min(axis=0), kp[vis].max(axis=0)
        rect = roi_from_palm(np.r_[lo, hi], kp, LANDMARK_ROI_SCALE, LANDMARK_ROI_SHIFT_Y, start=0, end=9)
        out = pipeline.keypoints(read_image(r.image_path, exif_transpose=False), [rect])
        probs.append(float(out["handedness"][0]))
    return np.asarray(probs)


def mean_errors(predictor: Predictor, records, hands) -> np.ndarray:
    """``(N,)`` mean keypoint error (px) per record with the per-record ``hands``."""
    results = list(predictor.predict_paths([r.image_path for r in records], [r.box for r in records],
                                           exif_transpose=False, hands=hands))
    pred = np.stack([res.keypoints[0] for res in results])
    gt = np.stack([r.keypoints[0] for r in records])
    mask = np.stack([r.visible[0] > 0 for r in records])
    return keypoint_errors(pred, gt, mask)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="keypoint model (default: the bundled model)")
    ap.add_argument("--coco", type=Path, default=DATA / "coco-wholebody-hands" / "annotations" / "hands_val.json")
    ap.add_argument("--images", type=Path, default=DATA / "coco-wholebody-hands" / "images")
    ap.add_argument("--freihand", type=Path, default=DATA / "hgcnn-freihand")
    ap.add_argument("--no-train-share", dest="train_share", action="store_false")
    args = ap.parse_args()

    bundle = load_model(args.model)
    margin = model_box_margin(bundle)
    margin = DEFAULT_BOX_MARGIN if margin is None else margin
    records, _ = load_coco(args.coco, args.images, bundle.skeleton, margin=margin)
    pipeline = TopDownPipeline("full", HANDEDNESS_MODEL)
    p_right = handedness_of_records(records, pipeline)
    left = p_right < 0.5
    labels = ["left" if x else "right" for x in left]

    right_model, left_model = Predictor(bundle), Predictor(bundle, model_hand="left")
    n = len(records)
    rows = {
        "as given": (right_model, [None] * n),
        "model_hand=right (left hands mirrored)": (right_model, labels),
        "model_hand=left (right hands mirrored)": (left_model, labels),
        "hand=auto, model_hand=left": (left_model, ["auto"] * n),
        "all mirrored": (right_model, ["left"] * n),
    }
    auto_left = np.array([right_model.is_left(read_image(r.image_path, exif_transpose=False), r.box)
                          for r in records])
    table, per_hand = {}, {}
    for name, (predictor, hands) in rows.items():
        e = mean_errors(predictor, records, hands)
        per_hand[name] = np.nanmean(e, axis=1)
        table[name] = {"left_px": float(np.nanmean(e[left])), "right_px": float(np.nanmean(e[~left])),
                       "all_px": float(np.nanmean(e))}

    n_l, n_r = int(left.sum()), int((~left).sum())
    print(f"model {bundle.arch} ({args.model or 'bundled'}), crop margin {margin}; {len(records)} hands of "
          f"{args.coco.name}: {n_l} left, {n_r} right by MediaPipe's handedness on upright crops "
          f"({int(np.sum(np.abs(p_right - 0.5) < 0.3))} with p(right) in 0.2-0.8)")
    print(f"hand=auto (axis-aligned crop) agrees with that label on {int(np.sum(auto_left == left))}/{len(records)}")
    print(f"\n| run | left hands ({n_l}), px | right hands ({n_r}), px | all ({len(records)}), px |")
    print("|---|---|---|---|")
    for name, row in table.items():
        print(f"| {name} | {row['left_px']:.2f} | {row['right_px']:.2f} | {row['all_px']:.2f} |")
    print("\nPaired, per hand (mean keypoint error mirrored minus as given; +- standard error):")
    paired = {}
    for side, sel in (("left", left), ("right", ~left)):
        d = per_hand["all mirrored"][sel] - per_hand["as given"][sel]
        se = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")
        paired[side] = {"mean_change_px": float(d.mean()), "se_px": se, "better": int(np.sum(d < 0)), "n": len(d)}
        print(f"  {side} hands: {d.mean():+.2f} +- {se:.2f} px, better on {int(np.sum(d < 0))} of {len(d)}")
    share = None
    if args.train_share:
        train = load_freihand(args.freihand, "train")
        share = float(np.mean([right_model.is_left(read_image(r.image_path)) for r in train]))
        print(f"\nhgcnn-freihand train split ({len(train)} photos): {100 * share:.0f}% left hands by the same network")
    print(json.dumps({"model": args.model or "bundled", "n_left": n_l, "n_right": n_r, "table": table, "paired": paired,
                      "train_left_share": share}))


if __name__ == "__main__":
    main()
