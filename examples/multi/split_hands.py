"""Split the coco-wholebody-hands annotations by image into a training and a held-out file.

    python examples/multi/split_hands.py [--src ../shared/data/coco-wholebody-hands/annotations/hands_val.json]

Images sorted by id; every third one (1, 4, 7, ...) is held out (10 of 29 images), the rest train. Writes
``out/multi/hands_train.json`` and ``out/multi/hands_heldout.json`` (file names relative to the set's images/).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", type=Path,
                    default=Path("../shared/data/coco-wholebody-hands/annotations/hands_val.json"))
    ap.add_argument("--out", type=Path, default=Path("out/multi"))
    args = ap.parse_args()
    data = json.loads(args.src.read_text())
    ids = sorted(im["id"] for im in data["images"])
    held = set(ids[1::3])
    args.out.mkdir(parents=True, exist_ok=True)
    for name, keep in (("hands_train", lambda i: i not in held), ("hands_heldout", lambda i: i in held)):
        part = {**data, "images": [im for im in data["images"] if keep(im["id"])],
                "annotations": [a for a in data["annotations"] if keep(a["image_id"])]}
        (args.out / f"{name}.json").write_text(json.dumps(part))
        print(f"{args.out / f'{name}.json'}: {len(part['images'])} images, {len(part['annotations'])} hands")


if __name__ == "__main__":
    main()
