import numpy as np
import pytest

from handpose import HandposeError
from handpose.data.convert import hand21_to_hand12
from handpose.skeleton import HAND12


def test_hand12_from_hand_computed_points():
    kp = np.zeros((21, 2), np.float32)
    kp[:, 0] = np.arange(21) * 10  # x = 10 * index
    kp[0] = (0, 0)      # wrist
    kp[9] = (30, 90)    # middle MCP
    vis = np.full(21, 2, np.uint8)
    vis[0] = 1
    out, v = hand21_to_hand12(kp, vis)
    assert out.shape == (12, 2) and HAND12.num_keypoints == 12
    # finger points: index MCP (5), index tip (8), middle MCP, middle tip (12), ... little tip (20)
    assert out[:8, 0].tolist() == [50, 80, 30, 120, 130, 160, 170, 200]
    # palm line from the wrist (0, 0) to the middle MCP (30, 90) in thirds
    np.testing.assert_allclose(out[8:], [[0, 0], [10, 30], [20, 60], [30, 90]], atol=1e-5)
    assert v.tolist() == [2] * 8 + [1] * 4
    batch, vb = hand21_to_hand12(np.stack([kp, kp]), np.stack([vis, vis]))
    assert batch.shape == (2, 12, 2) and vb.shape == (2, 12)


def test_hand12_rejects_other_counts():
    with pytest.raises(HandposeError, match="21"):
        hand21_to_hand12(np.zeros((12, 2)), np.zeros(12))
