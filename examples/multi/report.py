"""Evaluate the two bottom-up example models and print one JSON line of their figures.

    python examples/multi/report.py
"""

from __future__ import annotations

import json
from pathlib import Path

from handpose import load_model
from handpose.evaluate import evaluate_bottom_up

DATA = Path("../shared/data")


def main() -> None:
    body = evaluate_bottom_up("runs/body_openpose/model.pt",
                              DATA / "coco-person-mini/annotations/person_keypoints_val2017.json",
                              DATA / "coco-person-mini/val2017")
    hands = evaluate_bottom_up("runs/hands_openpose/model.pt", "out/multi/hands_heldout.json",
                               DATA / "coco-wholebody-hands/images")
    minutes = sum(load_model(f"runs/{n}/model.pt").card.get("train_minutes", 0.0)
                  for n in ("body_openpose", "hands_openpose"))
    print(json.dumps({"body_ap": round(body["AP"], 4), "hand_ap": round(hands["AP"], 4),
                      "hand_epe_px": round(hands["error_px"]["mean"], 2), "hand_matched": hands["matched"],
                      "hand_instances": hands["n_instances"], "train_minutes": round(minutes, 1)}))


if __name__ == "__main__":
    main()
