"""Keypoint-set metadata: one :class:`Skeleton` drives targets, channel counts, flipping, metrics and drawing.

Built-in sets:

- ``HAND21``: wrist plus four joints per finger in FreiHAND / OpenPose order (0 wrist; 1-4 thumb, 5-8 index,
  9-12 middle, 13-16 ring, 17-20 little, each from the palm to the tip). OKS sigmas are those of the
  COCO-WholeBody hand (Jin et al., ECCV 2020; as listed in MMPose ``coco_wholebody_hand.py``).
- ``HAND12``: the small-data tutorial's set (seed 001): root (MCP) and tip of the index, middle, ring and little
  fingers, then 4 points equally spaced on the palm's centre line from the wrist (``palm_0``) to the middle finger's
  root (``palm_3``, which coincides with ``middle_root``). Derive it from 21-point labels with
  :func:`handpose.data.convert.hand21_to_hand12`.
- ``COCO17``: the COCO person keypoints with the COCO sigmas (``cocoeval.py``).
- ``COCO18``: OpenPose's COCO body set (Cao et al., CVPR 2017; Lightweight OpenPose), COCO's 17 plus a neck
  (the shoulders' midpoint) in OpenPose order, with OpenPose's 19 limbs (``BODY_PARTS_KPT_IDS`` of Osokin's
  ``modules/keypoints.py``, in that order: the PAF channel order of imported OpenPose networks after
  :func:`handpose.models.openpose.import_lightweight_openpose`). Keypoint names are COCO17's, so results map to
  COCO17 by name (:func:`keypoint_index_map`) for COCO evaluation, which drops the neck as Osokin's ``val.py`` does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

from handpose.errors import HandposeError

RGB = tuple[int, int, int]

#: One colour per finger (thumb, index, middle, ring, little) and grey for the palm/other parts; RGB 0-255.
FINGER_COLOURS: dict[str, RGB] = {
    "thumb": (230, 25, 75),
    "index": (245, 130, 48),
    "middle": (60, 180, 75),
    "ring": (0, 130, 200),
    "little": (145, 30, 180),
    "wrist": (200, 200, 200),
    "other": (200, 200, 200),
}


@dataclass(frozen=True)
class Skeleton:
    """Names, limbs and per-keypoint constants of one keypoint set.

    Args:
        name: short identifier, e.g. ``"hand21"``.
        keypoints: K keypoint names, in channel order.
        limbs: pairs ``(i, j)`` of keypoint indices joined when drawing (and, for bottom-up models, the limbs
            that part affinity fields are built for).
        flip_perm: length-K permutation: after a horizontal flip keypoint ``k`` becomes ``flip_perm[k]``.
            Identity for a single hand (a flipped right hand is a left hand with the same indices).
        sigmas: K OKS sigmas (COCO definition: per-keypoint standard deviation relative to object scale).
        groups: K group names used for colours and per-group metrics (for hands: the finger of each keypoint).

    Raises:
        HandposeError: when a limb names an index outside ``[0, K)``, ``flip_perm`` is not a permutation of
            ``range(K)``, or ``sigmas``/``groups`` do not have K entries.
    """

    name: str
    keypoints: tuple[str, ...]
    limbs: tuple[tuple[int, int], ...]
    flip_perm: tuple[int, ...] = ()
    sigmas: tuple[float, ...] = ()
    groups: tuple[str, ...] = ()
    colours: dict[str, RGB] = field(default_factory=lambda: dict(FINGER_COLOURS))

    def __post_init__(self) -> None:
        k = len(self.keypoints)
        if k == 0:
            raise HandposeError(f"skeleton {self.name!r}: no keypoints")
        object.__setattr__(self, "keypoints", tuple(str(n) for n in self.keypoints))
        object.__setattr__(self, "limbs", tuple((int(a), int(b)) for a, b in self.limbs))
        for a, b in self.limbs:
            if not (0 <= a < k and 0 <= b < k) or a == b:
                raise HandposeError(
                    f"skeleton {self.name!r}: limb ({a}, {b}) must join two different keypoints in [0, {k})"
                )
        perm = tuple(int(i) for i in self.flip_perm) if self.flip_perm else tuple(range(k))
        if sorted(perm) != list(range(k)):
            raise HandposeError(f"skeleton {self.name!r}: flip_perm {list(perm)} is not a permutation of 0..{k - 1}")
        object.__setattr__(self, "flip_perm", perm)
        sig = tuple(float(s) for s in self.sigmas) if self.sigmas else (0.025,) * k
        if len(sig) != k:
            raise HandposeError(f"skeleton {self.name!r}: {len(sig)} sigmas for {k} keypoints")
        object.__setattr__(self, "sigmas", sig)
        grp = tuple(str(g) for g in self.groups) if self.groups else ("other",) * k
        if len(grp) != k:
            raise HandposeError(f"skeleton {self.name!r}: {len(grp)} groups for {k} keypoints")
        object.__setattr__(self, "groups", grp)

    @property
    def num_keypoints(self) -> int:
        """K, the number of keypoints (and of heatmap channels)."""
        return len(self.keypoints)

    def colour_of(self, keypoint: int) -> RGB:
        """RGB colour (0-255) of a keypoint's group."""
        return self.colours.get(self.groups[keypoint], self.colours.get("other", (200, 200, 200)))

    def limb_colour(self, limb: tuple[int, int]) -> RGB:
        """Colour of a limb: the group of its distal keypoint (the second index)."""
        return self.colour_of(limb[1])

    def with_flip_pairs(self, pairs) -> Skeleton:
        """A copy whose ``flip_perm`` swaps each ``(left, right)`` pair of keypoint indices (others stay).

        Raises:
            HandposeError: an index outside ``[0, K)`` or used twice (the result would not be a permutation).
        """
        k = self.num_keypoints
        perm = list(range(k))
        seen: set[int] = set()
        for pair in pairs:
            a, b = (int(i) for i in pair)
            for i in (a, b):
                if not 0 <= i < k:
                    raise HandposeError(f"skeleton {self.name!r}: flip pair {list(pair)} names keypoint {i}, "
                                        f"expected 0..{k - 1}")
                if i in seen:
                    raise HandposeError(f"skeleton {self.name!r}: flip pairs are not a permutation: keypoint {i} "
                                        "appears twice")
                seen.add(i)
            perm[a], perm[b] = b, a
        return dataclasses.replace(self, flip_perm=tuple(perm))

    def to_dict(self) -> dict:
        """Plain-Python form (lists, strings, floats), safe for ``torch.load(weights_only=True)`` and JSON."""
        return {
            "name": self.name,
            "keypoints": list(self.keypoints),
            "limbs": [list(limb) for limb in self.limbs],
            "flip_perm": list(self.flip_perm),
            "sigmas": list(self.sigmas),
            "groups": list(self.groups),
        }

    @classmethod
    def from_dict(cls, d: dict) -> Skeleton:
        """Inverse of :meth:`to_dict`."""
        return cls(
            name=d["name"],
            keypoints=tuple(d["keypoints"]),
            limbs=tuple(tuple(x) for x in d["limbs"]),
            flip_perm=tuple(d.get("flip_perm") or ()),
            sigmas=tuple(d.get("sigmas") or ()),
            groups=tuple(d.get("groups") or ()),
        )

    @classmethod
    def from_coco_category(
        cls,
        category: dict,
        flip_perm: Sequence[int] = (),
        sigmas: Sequence[float] = (),
        one_based: bool | None = None,
    ) -> Skeleton:
        """Build a Skeleton from a COCO ``categories`` entry (``keypoints`` names and ``skeleton`` pairs).

        COCO person files number skeleton pairs from 1; other tools write 0-based pairs. With
        ``one_based=None`` pairs are taken as 1-based when no pair contains 0 and the largest index equals K.
        A category whose keypoint names are those of a built-in Skeleton returns that Skeleton; a hand category
        with 21 keypoints keeps HAND21's sigmas and finger groups.

        Raises:
            HandposeError: when the category has no keypoint names or a pair names an unknown keypoint.
        """
        names = category.get("keypoints") or []
        if not names:
            raise HandposeError(f"COCO category {category.get('name')!r} (id {category.get('id')}) has no keypoints")
        pairs = [tuple(int(i) for i in p) for p in category.get("skeleton") or []]
        k = len(names)
        if one_based is None:
            flat = [i for p in pairs for i in p]
            one_based = bool(flat) and min(flat) >= 1 and max(flat) == k
        if one_based:
            pairs = [(a - 1, b - 1) for a, b in pairs]
        name = str(category.get("name", "custom"))
        for builtin in BUILTIN.values():
            if [n.lower() for n in names] == list(builtin.keypoints) and not sigmas and not flip_perm:
                return builtin  # a built-in set under its own names: keep its constants and colours
        if len(names) == HAND21.num_keypoints and "hand" in name.lower() and not sigmas and not flip_perm:
            # A hand category with HAND21's keypoint count (FreiHAND order): keep the hand's sigmas and fingers.
            return cls(
                name=name,
                keypoints=tuple(names),
                limbs=tuple(pairs) or HAND21.limbs,
                sigmas=HAND21.sigmas,
                groups=HAND21.groups,
            )
        return cls(
            name=name,
            keypoints=tuple(names),
            limbs=tuple(pairs),
            flip_perm=tuple(flip_perm),
            sigmas=tuple(sigmas),
        )


_FINGERS = ("thumb", "index", "middle", "ring", "little")

HAND21 = Skeleton(
    name="hand21",
    keypoints=("wrist",)
    + tuple(f"{f}_{j}" for f in _FINGERS
            for j in (("cmc", "mcp", "ip", "tip") if f == "thumb" else ("mcp", "pip", "dip", "tip"))),
    limbs=tuple((0 if j == 0 else 1 + 4 * f + j - 1, 1 + 4 * f + j) for f in range(5) for j in range(4)),
    sigmas=(
        0.029, 0.022, 0.035, 0.037, 0.047, 0.026, 0.025, 0.024, 0.035, 0.018,
        0.024, 0.022, 0.026, 0.017, 0.021, 0.021, 0.032, 0.02, 0.019, 0.022, 0.031,
    ),
    groups=("wrist",) + tuple(f for f in _FINGERS for _ in range(4)),
)

#: HAND21 indices of HAND12's 8 finger points (index, middle, ring, little: MCP then tip).
HAND12_FINGER_SOURCES = (5, 8, 9, 12, 13, 16, 17, 20)
#: Positions of HAND12's palm points on the wrist -> middle-MCP segment.
HAND12_PALM_STEPS = (0.0, 1 / 3, 2 / 3, 1.0)

HAND12 = Skeleton(
    name="hand12",
    keypoints=("index_root", "index_tip", "middle_root", "middle_tip", "ring_root", "ring_tip", "little_root",
               "little_tip", "palm_0", "palm_1", "palm_2", "palm_3"),
    limbs=((0, 1), (2, 3), (4, 5), (6, 7), (8, 9), (9, 10), (10, 11), (11, 0), (11, 4), (4, 6)),
    # sigmas of the matching HAND21 keypoints; the palm line takes the wrist's and the middle MCP's
    sigmas=tuple(HAND21.sigmas[i] for i in HAND12_FINGER_SOURCES + (0, 0, 9, 9)),
    groups=("index", "index", "middle", "middle", "ring", "ring", "little", "little", "wrist", "wrist", "wrist",
            "wrist"),
)

COCO17 = Skeleton(
    name="coco17",
    keypoints=(
        "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
        "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
        "left_knee", "right_knee", "left_ankle", "right_ankle",
    ),
    limbs=(
        (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7),
        (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
    ),
    flip_perm=(0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15),
    sigmas=(0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062,
            0.107, 0.107, 0.087, 0.087, 0.089, 0.089),
)

_COCO17_SIGMA = dict(zip(COCO17.keypoints, COCO17.sigmas, strict=True))
_COCO18_NAMES = (
    "nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow", "left_wrist",
    "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle", "right_eye", "left_eye",
    "right_ear", "left_ear",
)

COCO18 = Skeleton(
    name="coco18",
    keypoints=_COCO18_NAMES,
    limbs=(
        (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11),
        (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17), (2, 16), (5, 17),
    ),
    flip_perm=(0, 1, 5, 6, 7, 2, 3, 4, 11, 12, 13, 8, 9, 10, 15, 14, 17, 16),
    # COCO's sigmas by name; the neck (not a COCO keypoint) takes the shoulders' 0.079
    sigmas=tuple(_COCO17_SIGMA.get(n, _COCO17_SIGMA["left_shoulder"]) for n in _COCO18_NAMES),
    groups=tuple("torso" if n == "neck" else n.split("_")[0] if "_" in n else "head" for n in _COCO18_NAMES),
    colours={"head": (230, 25, 75), "torso": (60, 180, 75), "right": (245, 130, 48), "left": (0, 130, 200),
             "other": (200, 200, 200)},
)

BUILTIN: dict[str, Skeleton] = {s.name: s for s in (HAND21, HAND12, COCO17, COCO18)}


def keypoint_index_map(source: Skeleton, target: Skeleton) -> list[int]:
    """For each keypoint of ``target``, the index of the keypoint of the same name in ``source``
    (e.g. COCO18 -> COCO17: drop the neck and reorder; Osokin's ``val.py`` ``to_coco_map`` by names).

    Returns:
        ``target.num_keypoints`` indices into ``source``'s keypoints: ``keypoints[:, idx]`` re-indexes
        ``(N, K_source, 2)`` predictions to ``target``.

    Raises:
        HandposeError: a ``target`` keypoint name that ``source`` does not have (names compared case-insensitively).
    """
    names = {n.lower(): i for i, n in enumerate(source.keypoints)}
    missing = [n for n in target.keypoints if n.lower() not in names]
    if missing:
        raise HandposeError(f"skeleton {source.name!r} has no keypoints named {missing} (needed by "
                            f"{target.name!r}); cannot map one onto the other")
    return [names[n.lower()] for n in target.keypoints]


def get_skeleton(name_or_skeleton: str | Skeleton) -> Skeleton:
    """Return a built-in Skeleton by name (``"hand21"``, ``"hand12"``, ``"coco17"``, ``"coco18"``), or pass a
    Skeleton through.

    Raises:
        HandposeError: for an unknown name; the message lists the known ones.
    """
    if isinstance(name_or_skeleton, Skeleton):
        return name_or_skeleton
    key = str(name_or_skeleton).lower()
    if key not in BUILTIN:
        raise HandposeError(f"unknown skeleton {name_or_skeleton!r}; built-in: {sorted(BUILTIN)}")
    return BUILTIN[key]
