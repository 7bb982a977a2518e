"""The disk cache of decoded training inputs: built once, reused, rebuilt when an image changes."""

import numpy as np
import pytest

from handpose import HAND21
from handpose.codecs.heatmap import HeatmapCodec
from handpose.data import load_freihand
from handpose.data.cache import cache_key, cached_inputs
from handpose.data.dataset import KeypointDataset
from handpose.errors import HandposeError


def _never():
    raise AssertionError("the cache should have been used")


def test_disk_cache_matches_memory_and_is_reused(small_freihand, tmp_path):
    records = load_freihand(small_freihand, "train")
    codec = HeatmapCodec((64, 64), stride=4, sigma=1.0)
    memory = KeypointDataset(records, HAND21, codec, cache=True)
    disk = KeypointDataset(records, HAND21, codec, cache=tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 2
    assert isinstance(disk._images, np.memmap)
    for i in range(len(records)):
        for a, b in zip(memory.raw(i)[:2], disk.raw(i)[:2], strict=True):
            np.testing.assert_array_equal(a, b)
    # a second run finds the entry and does not decode anything
    images, keypoints = cached_inputs(records, (64, 64), "constant", tmp_path / "cache", _never)
    np.testing.assert_array_equal(images, disk._images)
    # other input size or pad mode: another key
    assert cache_key(records, (64, 64), "constant") != cache_key(records, (96, 96), "constant")
    assert cache_key(records, (64, 64), "constant") != cache_key(records, (64, 64), "border")


def test_changed_image_is_not_served_stale(small_freihand, tmp_path):
    records = load_freihand(small_freihand, "train")
    before = cache_key(records, (64, 64), "constant")
    path = records[0].image_path
    path.write_bytes(records[1].image_path.read_bytes())  # same name, other content and size
    assert cache_key(records, (64, 64), "constant") != before
    path.unlink()
    with pytest.raises(HandposeError, match=path.name):
        cache_key(records, (64, 64), "constant")
