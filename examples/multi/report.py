"""Evaluate the two bottom-up example models (body: COCO val; hands: the held-out coco-wholebody-hands images and
2x2 mosaics of the hgcnn-freihand val photos), draw the hand model's grouped predictions on the held-out images
with two or more hands and on a val mosaic (out/multi/grouped/), and print one JSON line of the figures.

    python examples/multi/report.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from handpose import HAND21, Predictor, load_model
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


def write_val_mosaics(out: Path, size: int = 512) -> tuple[Path, Path]:
    """A COCO keypoints file of 2x2 mosaics of the hgcnn-freihand val photos (73 photos -> 18 mosaics of 4 hands;
    none of them used in training): real multi-hand images whose every hand is labelled."""
    records = load_freihand(DATA / "hgcnn-freihand", "val")
    images_dir = out / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    skeleton = HAND21
    data = {"images": [], "annotations": [],
            "categories": [{"id": 1, "name": "hand", "keypoints": list(skeleton.keypoints),
                            "skeleton": [[a + 1, b + 1] for a, b in skeleton.limbs]}]}
    for m in range(len(records) // 4):
        image, keypoints, _, _ = mosaic(records[4 * m:4 * m + 4], (size, size))
        name = f"val_mosaic_{m:02d}.jpg"
        save_image(images_dir / name, image)
        data["images"].append({"id": m + 1, "file_name": name, "width": size, "height": size})
        for kp in keypoints:
            x0, y0 = kp.min(axis=0)
            x1, y1 = kp.max(axis=0)
            flat = np.concatenate([kp, np.full((len(kp), 1), 2.0)], axis=1).reshape(-1)
            data["annotations"].append({
                "id": len(data["annotations"]) + 1, "image_id": m + 1, "category_id": 1, "iscrowd": 0,
                "keypoints": [round(float(v), 2) for v in flat], "num_keypoints": len(kp),
                "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
                "area": float((x1 - x0) * (y1 - y0))})
    ann = out / "val_mosaics.json"
    ann.write_text(json.dumps(data))
    return ann, images_dir


def main() -> None:
    body = evaluate_bottom_up("runs/body_openpose/model.pt",
                              DATA / "coco-person-mini/annotations/person_keypoints_val2017.json",
                              DATA / "coco-person-mini/val2017")
    hands = evaluate_bottom_up("runs/hands_openpose/model.pt", "out/multi/hands_heldout.json",
                               DATA / "coco-wholebody-hands/images")
    ann, images = write_val_mosaics(Path("out/multi/val_mosaics"))
    mosaics = evaluate_bottom_up("runs/hands_openpose/model.pt", ann, images)
    drawn = draw_multi_hand_images("runs/hands_openpose/model.pt", "out/multi/hands_heldout.json",
                                   DATA / "coco-wholebody-hands/images", Path("out/multi/grouped"))
    drawn.append(draw_val_mosaic("runs/hands_openpose/model.pt", Path("out/multi/grouped")))
    print(f"grouped hand predictions drawn: {', '.join(drawn)}")
    minutes = sum(load_model(f"runs/{n}/model.pt").card.get("train_minutes", 0.0)
                  for n in ("body_openpose", "hands_openpose"))
    print(json.dumps({"body_ap": round(body["AP"], 4), "hand_ap": round(hands["AP"], 4),
                      "hand_epe_px": round(hands["error_px"]["mean"], 2), "hand_matched": hands["matched"],
                      "hand_instances": hands["n_instances"], "val_mosaic_hand_ap": round(mosaics["AP"], 4),
                      "val_mosaic_hand_epe_px": round(mosaics["error_px"]["mean"], 2),
                      "val_mosaic_matched": mosaics["matched"], "val_mosaic_instances": mosaics["n_instances"],
                      "train_minutes": round(minutes, 1)}))


if __name__ == "__main__":
    main()
