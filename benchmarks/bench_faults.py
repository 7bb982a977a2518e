"""Faults, measured: kill/resume cycles of a real training, and predict over a folder seeded with every bad-file kind.

    python benchmarks/bench_faults.py                          # 5 kills, 200 good images (a few minutes)
    python benchmarks/bench_faults.py --cycles 20 --images 2000  # the figures issue 13 asks for

Training: ``handpose train`` (ResUNet, 64 px input, 2 steps per epoch on 40 real hgcnn-freihand photos,
``resume=auto``) is started ``--cycles`` times and SIGKILLed each time, on odd cycles at a random moment up to
``--max-wait`` seconds after its first checkpoint of the cycle, on even cycles the moment a checkpoint is being
written (its hidden temporary file is seen). After each kill every ``*.ckpt`` left is read (``weights_only=True``);
the next cycle must go on from the last whole checkpoint. A last run then finishes two more epochs and must exit 0
with a loadable ``model.pt``. Epochs lost per kill count whole epochs: the finished epoch whose checkpoint was in
flight at the kill (a partly run epoch is not counted).

Predict: ``handpose predict FOLDER --json`` over ``--images`` copies of real photos plus one file of each bad kind
(truncated JPEG, text named .jpg, empty file, corrupt PNG header, pixel bombs of 169 and 400 Mpx, a broken link, a
video inside the folder, a bad file with Rich markup in its name); counts the bad files reported and the good files
in the JSON, and the child's peak RSS (``ru_maxrss`` of the largest child). Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FREIHAND = REPO.parent / "shared" / "data" / "hgcnn-freihand"
sys.path.insert(0, str(REPO))

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
STEPS_PER_EPOCH = 2


def _freihand_copy(dst: Path, n: int) -> Path:
    xyz = json.loads((FREIHAND / "training_xyz.json").read_text())
    K = json.loads((FREIHAND / "training_K.json").read_text())
    (dst / "training" / "rgb").mkdir(parents=True)
    for i in range(n):
        shutil.copy(FREIHAND / "training" / "rgb" / f"{i:08d}.jpg", dst / "training" / "rgb" / f"{i:08d}.jpg")
    (dst / "training_xyz.json").write_text(json.dumps(xyz[:n]))
    (dst / "training_K.json").write_text(json.dumps(K[:n]))
    return dst


def _train_cmd(data: Path, out: Path, max_epochs: int) -> list[str]:
    sets = ["dataset=freihand", f"data_root={data}", "model=resunet", "input_size=64", "batch_size=4",
            f"limit_train_batches={STEPS_PER_EPOCH}", "num_workers=0", f"out_dir={out}", "name=run",
            "early_stop_patience=0", f"max_epochs={max_epochs}", "resume=auto"]
    return [sys.executable, "-m", "handpose.cli", "train", *[a for s in sets for a in ("--set", s)], "--no-progress"]


def _steps(path: Path) -> int | None:
    from handpose.errors import HandposeError
    from handpose.train import read_checkpoint

    try:
        return int(read_checkpoint(path)["global_step"])
    except HandposeError:
        return None


def kill_cycles(work: Path, cycles: int, max_wait: float, seed: int) -> dict:
    from handpose.train import PREVIOUS_LAST

    rng = random.Random(seed)
    data = _freihand_copy(work / "fh", 40)
    folder = work / "out" / "run" / "checkpoints"
    last = folder / "last.ckpt"
    survived, lost, corrupt, in_write, unfinished = 0, [], 0, 0, []
    resumed_from = 0
    for cycle in range(cycles):
        log = open(work / f"cycle{cycle}.log", "w")
        proc = subprocess.Popen(_train_cmd(data, work / "out", 100000), cwd=REPO, env=ENV, stdout=log,
                                stderr=subprocess.STDOUT)
        start_mtime = last.stat().st_mtime_ns if last.exists() else 0
        during_write = cycle % 2 == 1
        # wait for this run's first checkpoint: proof that it went on from the previous one
        while proc.poll() is None and (not last.exists() or last.stat().st_mtime_ns == start_mtime):
            time.sleep(0.01)
        if proc.poll() is not None:
            unfinished.append(f"cycle {cycle}: exited {proc.returncode} before its first checkpoint")
            continue
        first_steps = _steps(last)
        went_on = first_steps is not None and first_steps == resumed_from + STEPS_PER_EPOCH
        if during_write:
            deadline = time.time() + 60
            while time.time() < deadline and not any(n.endswith(".tmp") for n in os.listdir(folder)):
                time.sleep(0.0005)
        else:
            time.sleep(rng.uniform(0.0, max_wait))
        writing = any(n.endswith(".tmp") for n in os.listdir(folder))
        alive = proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        log.close()
        in_write += writing
        survived += alive and went_on
        if not went_on:
            unfinished.append(f"cycle {cycle}: first checkpoint at step {first_steps}, expected "
                              f"{resumed_from + STEPS_PER_EPOCH}")
        bad = [p.name for p in folder.glob("*.ckpt") if _steps(p) is None]
        corrupt += len(bad)
        saved = _steps(last) if last.exists() else _steps(folder / PREVIOUS_LAST)
        lost.append(1 if writing else 0)  # the epoch finished but not yet in last.ckpt
        resumed_from = saved or 0
    # a last run to the end: two more epochs, exit 0, a loadable model
    final_epochs = resumed_from // STEPS_PER_EPOCH + 2
    p = subprocess.run(_train_cmd(data, work / "out", final_epochs), cwd=REPO, env=ENV, capture_output=True)
    from handpose.bundle import load_model

    finished = p.returncode == 0 and load_model(work / "out" / "run" / "model.pt") is not None
    return {"cycles": cycles, "survived": survived, "kills_during_checkpoint_write": in_write,
            "epochs_lost_mean": sum(lost) / max(1, len(lost)), "epochs_lost_max": max(lost, default=0),
            "corrupt_checkpoints_left": corrupt, "final_run_exit": p.returncode, "final_model_loads": finished,
            "problems": unfinished}


def _bad_files(folder: Path, clip_source: Path) -> list[str]:
    from PIL import Image

    good = clip_source.read_bytes()
    (folder / "truncated.jpg").write_bytes(good[: len(good) // 3])
    (folder / "text.jpg").write_text("not an image")
    (folder / "empty.png").write_bytes(b"")
    (folder / "header.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(200))
    Image.new("1", (13000, 13000)).save(folder / "bomb169mpx.png")
    Image.new("1", (20000, 20000)).save(folder / "bomb400mpx.png")
    (folder / "gone.jpg").symlink_to(folder / "nowhere.jpg")
    (folder / "clip.mp4").write_bytes(b"")
    (folder / "bad [b] name.jpg").write_bytes(good[:100])
    return ["truncated.jpg", "text.jpg", "empty.png", "header.png", "bomb169mpx.png", "bomb400mpx.png", "gone.jpg",
            "clip.mp4", "bad [b] name.jpg"]


def predict_folder(work: Path, n_images: int) -> dict:
    folder = work / "images"
    folder.mkdir()
    photos = sorted((FREIHAND / "training" / "rgb").glob("*.jpg"))
    for i in range(n_images):
        shutil.copy(photos[i % len(photos)], folder / f"good{i:05d}.jpg")
    bad = _bad_files(folder, photos[0])
    out = work / "pred.json"
    t0 = time.time()
    p = subprocess.run([sys.executable, "-m", "handpose.cli", "predict", str(folder), "--json", str(out), "-q"],
                       cwd=REPO, env={**ENV, "COLUMNS": "400"}, capture_output=True, text=True)
    seconds = time.time() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    skipped = [line for line in (p.stdout + p.stderr).splitlines() if line.startswith("skipped:")]
    reported = sum(any(name in line for line in skipped) for name in bad)
    entries = json.loads(out.read_text()) if out.exists() else []
    predicted = len({e["file_name"] for e in entries if Path(e["file_name"]).name.startswith("good")})
    return {"bad_present": len(bad), "bad_reported": reported, "good_present": n_images, "good_predicted": predicted,
            "exit_code": p.returncode, "seconds": round(seconds, 1), "images_per_s": round(n_images / seconds, 1),
            "peak_rss_mb": round(peak_mb)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cycles", type=int, default=5, help="SIGKILL/resume cycles (issue 13: 20)")
    ap.add_argument("--images", type=int, default=200, help="good images to predict (issue 13: 2000)")
    ap.add_argument("--max-wait", type=float, default=3.0, help="random kills: seconds after the first checkpoint")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-train", action="store_true")
    ap.add_argument("--skip-predict", action="store_true")
    args = ap.parse_args()
    if not FREIHAND.is_dir():
        sys.exit(f"{FREIHAND} not present")
    summary = {}
    with tempfile.TemporaryDirectory(prefix="bench_faults_") as tmp:
        work = Path(tmp)
        if not args.skip_predict:  # first: the peak RSS of children is then predict's alone
            pr = predict_folder(work, args.images)
            summary["predict"] = pr
            print(f"predict: bad files reported {pr['bad_reported']} of {pr['bad_present']}; good files predicted "
                  f"{pr['good_predicted']} of {pr['good_present']}; exit {pr['exit_code']}; {pr['seconds']} s "
                  f"({pr['images_per_s']} images/s); peak RSS {pr['peak_rss_mb']} MB", flush=True)
        if not args.skip_train:
            tr = kill_cycles(work, args.cycles, args.max_wait, args.seed)
            summary["train"] = tr
            print(f"train: cycles survived {tr['survived']} of {tr['cycles']} ({tr['kills_during_checkpoint_write']} "
                  f"kills during a checkpoint write); epochs lost per kill mean {tr['epochs_lost_mean']:.2f} max "
                  f"{tr['epochs_lost_max']}; corrupt checkpoints left {tr['corrupt_checkpoints_left']}; final run "
                  f"exit {tr['final_run_exit']}, model.pt loads: {tr['final_model_loads']}", flush=True)
            for problem in tr["problems"]:
                print(f"  {problem}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
