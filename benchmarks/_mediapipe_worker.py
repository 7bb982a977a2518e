"""Runs MediaPipe Hands on a list of images; called by the benchmarks inside MediaPipe's own environment.

    python _mediapipe_worker.py [COMPLEXITY [MAX_NUM_HANDS]]  < paths.json

stdin: JSON list of image paths. stdout (last line): a JSON list, one row per image, with ``ms`` the time of
``hands.process`` on the decoded RGB image:

- without MAX_NUM_HANDS (bench_mediapipe.py): ``max_num_hands=1``, rows ``{"keypoints": [[x, y], ...21] | null,
  "ms": t}``;
- with MAX_NUM_HANDS (bench_photos.py): rows ``{"hands": [[[x, y], ...21], ...], "handedness": [p, ...],
  "ms": t}``, one entry per hand MediaPipe returns; ``handedness`` is MediaPipe's confidence in its handedness
  label (the only per-hand score the ``solutions.hands`` API gives).

Both: ``static_image_mode=True`` (palm detection on every image), ``min_detection_confidence=0.5``; pixels of the
image (MediaPipe's landmarks are normalised to its width and height).
"""

import json
import sys
import time

import cv2
import mediapipe as mp


def main() -> None:
    paths = json.loads(sys.stdin.read())
    complexity = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    multi = len(sys.argv) > 2
    hands = mp.solutions.hands.Hands(static_image_mode=True, max_num_hands=int(sys.argv[2]) if multi else 1,
                                     model_complexity=complexity, min_detection_confidence=0.5)
    first = cv2.cvtColor(cv2.imread(paths[0]), cv2.COLOR_BGR2RGB)
    for _ in range(3):  # warm-up
        hands.process(first)
    out = []
    for p in paths:
        img = cv2.cvtColor(cv2.imread(p), cv2.COLOR_BGR2RGB)
        t = time.perf_counter()
        res = hands.process(img)
        ms = 1000 * (time.perf_counter() - t)
        h, w = img.shape[:2]
        # landmark x, y are normalised to the image width and height
        found = [[[lm.x * w, lm.y * h] for lm in hand.landmark] for hand in (res.multi_hand_landmarks or [])]
        if multi:
            scores = [c.classification[0].score for c in (res.multi_handedness or [])]
            out.append({"hands": found, "handedness": scores, "ms": ms})
        else:
            out.append({"keypoints": found[0] if found else None, "ms": ms})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
