"""Shared fixtures: paths to the team's real data (``../shared/data`` beside the checkout)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
FREIHAND = DATA / "hgcnn-freihand"
HANDS_COCO = DATA / "coco-wholebody-hands"


@pytest.fixture(scope="session")
def freihand_root() -> Path:
    if not FREIHAND.is_dir():
        pytest.skip(f"{FREIHAND} not present")
    return FREIHAND


@pytest.fixture(scope="session")
def hands_coco() -> tuple[Path, Path]:
    if not HANDS_COCO.is_dir():
        pytest.skip(f"{HANDS_COCO} not present")
    return HANDS_COCO / "annotations" / "hands_val.json", HANDS_COCO / "images"


def make_freihand_copy(src: Path, dst: Path, ids: list[int]) -> Path:
    """A small FreiHAND-layout folder with the given ids of ``src`` renumbered 0..n-1."""
    xyz = json.loads((src / "training_xyz.json").read_text())
    K = json.loads((src / "training_K.json").read_text())
    (dst / "training" / "rgb").mkdir(parents=True)
    for new, old in enumerate(ids):
        shutil.copy(src / "training" / "rgb" / f"{old:08d}.jpg", dst / "training" / "rgb" / f"{new:08d}.jpg")
    (dst / "training_xyz.json").write_text(json.dumps([xyz[i] for i in ids]))
    (dst / "training_K.json").write_text(json.dumps([K[i] for i in ids]))
    return dst


@pytest.fixture()
def small_freihand(freihand_root, tmp_path) -> Path:
    """20 real images in FreiHAND layout (16 train / 3 val / 1 test at 80/15/5)."""
    return make_freihand_copy(freihand_root, tmp_path / "fh", list(range(0, 400, 20)))


@pytest.fixture(scope="module")
def one_torch_thread():
    """One PyTorch thread for a test module, restored after (the palm detector under load ran 10x slower with the
    machine's two cores as two threads than with one). Use: ``pytestmark = pytest.mark.usefixtures(...)``."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
