"""Evaluate the two bottom-up example models, draw the hand model's grouped predictions on the held-out images
with two or more hands (out/multi/grouped/), and print one JSON line of the figures.

    python examples/multi/report.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from handpose import Predictor, load_model
from handpose.data import load_freihand
from handpose.data.bottomup import mosaic
from handpose.data.image import read_image
from handpose.evaluate import evaluate_bottom_up
from handpose.visualize import draw_skeleton, save_image

DATA = Path("../shared/data")


def draw_multi_hand_images(model: str, ann: str, images: Path, out: Path) -> list[str]:
    """Draw every predicted instance on the held-out images that have at least two labelled hands."""
    data = json.loads(Path(ann).read_text())
    count: dict[int, int] = {}
    for a in data["annotations"]:
        count[a["image_id"]] = count.get(a["image_id"], 0) + 1
    predictor = Predictor(model)
    written = []
    for im in data["images"]:
        if count.get(im["id"], 0) < 2:
            continue
        img = read_image(images / im["file_name"])
        res = predictor.predict_arrays([img], names=[im["file_name"]])[0]
        path = out / f"{Path(im['file_name']).stem}_{count[im['id']]}labelled_{len(res.keypoints)}found.jpg"
        save_image(path, draw_skeleton(img, res.keypoints, predictor.skeleton))
        written.append(str(path))
    return written


def draw_val_mosaic(model: str, out: Path) -> str:
    """Draw the predictions on a 2x2 mosaic of four hgcnn-freihand val photos (the training mosaics use the
    train split only); the labels are drawn in the left half, the predictions in the right half."""
    predictor = Predictor(model)
    records = load_freihand(DATA / "hgcnn-freihand", "val")[::18][:4]
    image, keypoints, _, _ = mosaic(records, (512, 512))
    res = predictor.predict_arrays([image])[0]
    both = np.concatenate([draw_skeleton(image, keypoints, predictor.skeleton),
                           draw_skeleton(image, res.keypoints, predictor.skeleton)], axis=1)
    path = out / f"val_mosaic_4labelled_{len(res.keypoints)}found.jpg"
    save_image(path, both)
    return str(path)


def main() -> None:
    body = evaluate_bottom_up("runs/body_openpose/model.pt",
                              DATA / "coco-person-mini/annotations/person_keypoints_val2017.json",
                              DATA / "coco-person-mini/val2017")
    hands = evaluate_bottom_up("runs/hands_openpose/model.pt", "out/multi/hands_heldout.json",
                               DATA / "coco-wholebody-hands/images")
    drawn = draw_multi_hand_images("runs/hands_openpose/model.pt", "out/multi/hands_heldout.json",
                                   DATA / "coco-wholebody-hands/images", Path("out/multi/grouped"))
    drawn.append(draw_val_mosaic("runs/hands_openpose/model.pt", Path("out/multi/grouped")))
    print(f"grouped hand predictions drawn: {', '.join(drawn)}")
    minutes = sum(load_model(f"runs/{n}/model.pt").card.get("train_minutes", 0.0)
                  for n in ("body_openpose", "hands_openpose"))
    print(json.dumps({"body_ap": round(body["AP"], 4), "hand_ap": round(hands["AP"], 4),
                      "hand_epe_px": round(hands["error_px"]["mean"], 2), "hand_matched": hands["matched"],
                      "hand_instances": hands["n_instances"], "train_minutes": round(minutes, 1)}))


if __name__ == "__main__":
    main()
