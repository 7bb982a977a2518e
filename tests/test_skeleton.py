import pytest

from handpose import COCO17, HAND21, HandposeError, Skeleton
from handpose.skeleton import get_skeleton


def test_hand21_layout():
    assert HAND21.num_keypoints == 21
    assert len(HAND21.limbs) == 20
    # every finger is a chain from the wrist: wrist-1-2-3-4, wrist-5-6-7-8, ...
    for f in range(5):
        base = 1 + 4 * f
        assert (0, base) in HAND21.limbs
        for j in range(3):
            assert (base + j, base + j + 1) in HAND21.limbs
    assert HAND21.flip_perm == tuple(range(21))
    assert HAND21.groups[0] == "wrist" and HAND21.groups[1:5] == ("thumb",) * 4 and HAND21.groups[20] == "little"
    assert HAND21.sigmas[0] == pytest.approx(0.029) and HAND21.sigmas[20] == pytest.approx(0.031)
    assert HAND21.colour_of(8) != HAND21.colour_of(4)  # index and thumb differ


def test_coco17_flip_is_involution():
    perm = COCO17.flip_perm
    assert all(perm[perm[i]] == i for i in range(17))
    assert perm[5] == 6 and perm[0] == 0


def test_from_coco_category_one_based():
    cat = {"id": 1, "name": "thing", "keypoints": ["a", "b", "c"], "skeleton": [[1, 2], [2, 3]]}
    s = Skeleton.from_coco_category(cat)
    assert s.limbs == ((0, 1), (1, 2))
    s0 = Skeleton.from_coco_category({**cat, "skeleton": [[0, 1], [1, 2]]})
    assert s0.limbs == ((0, 1), (1, 2))


def test_round_trip_dict():
    assert Skeleton.from_dict(COCO17.to_dict()) == COCO17


@pytest.mark.parametrize("kwargs, match", [
    ({"limbs": ((0, 3),)}, "limb"),
    ({"limbs": (), "flip_perm": (0, 0, 1)}, "permutation"),
    ({"limbs": (), "sigmas": (0.1,)}, "sigmas"),
])
def test_invalid_definitions(kwargs, match):
    with pytest.raises(HandposeError, match=match):
        Skeleton(name="bad", keypoints=("a", "b", "c"), **kwargs)


def test_get_skeleton_unknown_lists_known():
    with pytest.raises(HandposeError, match="hand21"):
        get_skeleton("hand22")


def test_builtin_names_give_the_builtin():
    from handpose import HAND12

    cat = {"id": 1, "name": "x", "keypoints": list(HAND12.keypoints), "skeleton": [[1, 2]]}
    assert Skeleton.from_coco_category(cat) is HAND12


def test_flip_pairs():
    s = Skeleton(name="s", keypoints=("nose", "l_eye", "r_eye", "l_ear", "r_ear"), limbs=())
    assert s.with_flip_pairs([[1, 2], [3, 4]]).flip_perm == (0, 2, 1, 4, 3)
    with pytest.raises(HandposeError, match="not a permutation: keypoint 2 appears twice"):
        s.with_flip_pairs([[1, 2], [2, 3]])
    with pytest.raises(HandposeError, match="names keypoint 7"):
        s.with_flip_pairs([[1, 7]])
