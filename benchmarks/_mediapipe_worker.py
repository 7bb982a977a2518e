"""Runs MediaPipe Hands on a list of images; called by bench_mediapipe.py inside MediaPipe's own environment.

stdin: JSON list of image paths. stdout (last line): JSON list of {"keypoints": [[x, y], ...21] | null, "ms": t}.
"""

import json
import sys
import time

import cv2
import mediapipe as mp


def main() -> None:
    paths = json.loads(sys.stdin.read())
    complexity = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    hands = mp.solutions.hands.Hands(static_image_mode=True, max_num_hands=1, model_complexity=complexity,
                                     min_detection_confidence=0.5)
    first = cv2.cvtColor(cv2.imread(paths[0]), cv2.COLOR_BGR2RGB)
    for _ in range(3):  # warm-up
        hands.process(first)
    out = []
    for p in paths:
        img = cv2.cvtColor(cv2.imread(p), cv2.COLOR_BGR2RGB)
        t = time.perf_counter()
        res = hands.process(img)
        ms = 1000 * (time.perf_counter() - t)
        kp = None
        if res.multi_hand_landmarks:
            h, w = img.shape[:2]
            # landmark x, y are normalised to the image width and height
            kp = [[lm.x * w, lm.y * h] for lm in res.multi_hand_landmarks[0].landmark]
        out.append({"keypoints": kp, "ms": ms})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
