"""Build the small-data tutorial's 12-keypoint set (HAND12) from 60 hgcnn-freihand photos, as COCO keypoint files.

    python examples/hand12/build_dataset.py --freihand ../shared/data/hgcnn-freihand --out out/hand12

Writes ``train.json`` (51 photos: every 7th id from 0 to 350) and ``val.json`` (9 photos: every 9th id from 400
to 472, a stretch of ids the training photos do not come from), with ``file_name`` relative to
``<freihand>/training/rgb``. The 12 keypoints come from the 21-point labels through
``handpose.data.convert.hand21_to_hand12``; the box is the whole 256x256 photo, as the tutorial uses whole photos.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from handpose.data.convert import hand21_to_hand12
from handpose.data.freihand import load_freihand
from handpose.skeleton import HAND12

TRAIN_IDS = list(range(0, 351, 7))  # 51 ids
VAL_IDS = list(range(400, 473, 9))  # 9 ids


def coco_file(records, ids: list[int]) -> dict:
    category = {"id": 1, "name": "hand12", "supercategory": "hand", "keypoints": list(HAND12.keypoints),
                "skeleton": [[a + 1, b + 1] for a, b in HAND12.limbs]}  # COCO numbers skeleton pairs from 1
    images, annotations = [], []
    for n, i in enumerate(ids):
        r = records[i]
        kp, vis = hand21_to_hand12(r.keypoints[0], r.visible[0])
        images.append({"id": n + 1, "file_name": r.image_path.name, "width": 256, "height": 256})
        flat = np.concatenate([kp, vis[:, None].astype(np.float32)], axis=1).reshape(-1)
        annotations.append({"id": n + 1, "image_id": n + 1, "category_id": 1, "iscrowd": 0,
                            "keypoints": [round(float(v), 2) for v in flat], "num_keypoints": int((vis > 0).sum()),
                            "bbox": [0, 0, 256, 256], "area": 256 * 256})
    return {"images": images, "annotations": annotations, "categories": [category]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--freihand", type=Path, default=Path("../shared/data/hgcnn-freihand"))
    ap.add_argument("--out", type=Path, default=Path("out/hand12"))
    args = ap.parse_args()
    records = load_freihand(args.freihand, "all")
    args.out.mkdir(parents=True, exist_ok=True)
    for name, ids in (("train", TRAIN_IDS), ("val", VAL_IDS)):
        (args.out / f"{name}.json").write_text(json.dumps(coco_file(records, ids)))
        print(f"{args.out / f'{name}.json'}: {len(ids)} images")


if __name__ == "__main__":
    main()
