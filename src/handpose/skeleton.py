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

Any other set comes from a COCO category (:meth:`Skeleton.from_coco_category`): its ``keypoints`` and ``skeleton``,
and optionally ``sigmas``, ``groups``, ``colours``, ``flip_pairs``, ``root`` and ``skeleton_base``
(docs/custom_keypoints.md); a training config can replace them (:meth:`Skeleton.customised`).
"""

from __future__ import annotations

import dataclasses
import re
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
        colours: RGB 0-255 colour of each group (``[r, g, b]`` or ``"#rrggbb"``); ``"other"`` colours groups it
            does not name. Default: one per finger (:data:`FINGER_COLOURS`), grey for anything else.
        root: the keypoint (index, or name) that bottom-up grouping starts from (:func:`handpose.grouping.group`):
            its limb tree keeps the limbs nearest to it when the skeleton has cycles.

    Raises:
        HandposeError: when a limb names an index outside ``[0, K)``, ``flip_perm`` is not a permutation of
            ``range(K)``, ``sigmas``/``groups`` do not have K entries, a sigma is not positive, a colour is not
            RGB 0-255, or ``root`` is not a keypoint.
    """

    name: str
    keypoints: tuple[str, ...]
    limbs: tuple[tuple[int, int], ...]
    flip_perm: tuple[int, ...] = ()
    sigmas: tuple[float, ...] = ()
    groups: tuple[str, ...] = ()
    colours: dict[str, RGB] = field(default_factory=lambda: dict(FINGER_COLOURS))
    root: int | str = 0

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
        sig = tuple(float(s) for s in self.sigmas) if self.sigmas else (DEFAULT_SIGMA,) * k
        if len(sig) != k:
            raise HandposeError(f"skeleton {self.name!r}: {len(sig)} sigmas for {k} keypoints")
        if not all(s > 0 for s in sig):
            raise HandposeError(f"skeleton {self.name!r}: OKS sigmas must be > 0, got {list(sig)}")
        object.__setattr__(self, "sigmas", sig)
        grp = tuple(str(g) for g in self.groups) if self.groups else ("other",) * k
        if len(grp) != k:
            raise HandposeError(f"skeleton {self.name!r}: {len(grp)} groups for {k} keypoints")
        object.__setattr__(self, "groups", grp)
        object.__setattr__(self, "colours", {str(g): parse_colour(c, f"skeleton {self.name!r} group {g!r}")
                                             for g, c in dict(self.colours).items()})
        object.__setattr__(self, "root", keypoint_index(self.keypoints, self.root, 0, f"skeleton {self.name!r} root"))

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

    def customised(self, *, sigmas: Sequence[float] = (), groups: Sequence[str] = (), colours=None,
                   flip_pairs=None, root: int | str | None = None, base: int | None = 0, where: str = "",
                   keys: dict[str, str] | None = None) -> Skeleton:
        """A copy with the given per-keypoint constants replaced; empty or None arguments keep this Skeleton's.

        Args:
            sigmas: K OKS sigmas.
            groups: K group names (drawing colours, per-group errors).
            colours: ``{group: colour}`` (merged over this Skeleton's), or K colours, one per keypoint; a colour
                is ``[r, g, b]`` 0-255 or ``"#rrggbb"``. With K colours and no ``groups``, keypoints keep their
                groups when every group has one colour, else each keypoint becomes its own group (named after it).
            flip_pairs: ``[[left, right], ...]`` keypoints (indices or names) swapped by a horizontal flip; they
                replace ``flip_perm`` (an empty list keeps it).
            root: the grouping root, an index or a name.
            base: 0 or 1, the numbering of the indices in ``flip_pairs`` and ``root`` (COCO categories number
                from 1 when their ``skeleton`` does); None when it is unknown (indices are refused, names work).
            where: prefix of error messages (a file and category, ``config``).
            keys: the names the caller gives these arguments, for error messages (``{"sigmas": "oks_sigmas"}``).

        Raises:
            HandposeError: a count other than K, an unknown keypoint or group name, an index out of range, a
                colour that is not RGB, or one group given two colours; the message starts with ``where``.
        """
        where = where or f"skeleton {self.name!r}"
        key = {n: n for n in ("sigmas", "groups", "colours", "flip_pairs", "root")} | dict(keys or {})
        k = self.num_keypoints
        changes: dict = {}
        if sigmas:
            sigmas = _list_of(sigmas, key["sigmas"], where)
            if len(sigmas) != k or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0
                                           for v in sigmas):
                raise HandposeError(f"{where}: {key['sigmas']} must be {k} numbers > 0 (one per keypoint), "
                                    f"got {sigmas}")
            changes["sigmas"] = tuple(float(v) for v in sigmas)
        grp = self.groups
        if groups:
            groups = _list_of(groups, key["groups"], where)
            if len(groups) != k:
                raise HandposeError(f"{where}: {key['groups']} has {len(groups)} names for {k} keypoints (one name "
                                    "per keypoint)")
            grp = changes["groups"] = tuple(str(g) for g in groups)
        if colours:
            ck = key["colours"]
            palette = dict(self.colours)
            if isinstance(colours, dict):
                unknown = [g for g in colours if str(g) not in grp and g != "other"]
                if unknown:
                    raise HandposeError(f"{where}: {ck} name groups {unknown} that no keypoint has (groups: "
                                        f"{sorted(set(grp))}); give groups, or one colour per keypoint")
                palette.update({str(g): parse_colour(c, f"{where}: {ck} of group {g!r}") for g, c in colours.items()})
            else:
                colours = _list_of(colours, ck, where)
                if len(colours) != k:
                    raise HandposeError(f"{where}: {ck} has {len(colours)} colours for {k} keypoints (give one per "
                                        "keypoint, or a mapping group -> colour)")
                rgb = [parse_colour(c, f"{where}: {ck} of keypoint {i} ({self.keypoints[i]!r})")
                       for i, c in enumerate(colours)]
                mixed = sorted({g for g, c in zip(grp, rgb, strict=True)
                                if any(c2 != c for g2, c2 in zip(grp, rgb, strict=True) if g2 == g)})
                if mixed and groups:
                    raise HandposeError(f"{where}: {ck} gives the keypoints of group(s) {mixed} different "
                                        "colours; a group has one colour")
                if mixed:
                    grp = changes["groups"] = self.keypoints
                palette.update(zip(grp, rgb, strict=True))
            changes["colours"] = palette
        if root is not None and root != "":
            changes["root"] = keypoint_index(self.keypoints, root, base, f"{where}: {key['root']}")
        out = dataclasses.replace(self, **changes) if changes else self
        if flip_pairs:
            pairs = _list_of(flip_pairs, key["flip_pairs"], where)
            if not all(isinstance(p, (list, tuple)) and len(p) == 2 for p in pairs):
                raise HandposeError(f"{where}: {key['flip_pairs']} must be [[left, right], ...], got {pairs}")
            out = out.with_flip_pairs([[keypoint_index(self.keypoints, i, base, f"{where}: flip pair {list(p)}")
                                        for i in p] for p in pairs])
        return out

    def side_pairs(self) -> tuple[list[tuple[int, int]], list[str]]:
        """Left/right keypoints told by their names (``left_eye``/``right_eye``, ``l_eye``, ``eye_l``, ``LEye``,
        ``eyeLeft``, ... case-insensitively: a name token ``left``/``l`` or ``right``/``r``).

        Returns:
            ``(pairs, unmatched)``: ``(left, right)`` index pairs whose names differ only in the side, and the
            names with a side but no counterpart.
        """
        keys = [_side_key(n) for n in self.keypoints]
        by_key = {key: i for i, (key, side) in enumerate(keys) if side}
        pairs, unmatched = [], []
        for i, (key, side) in enumerate(keys):
            if not side:
                continue
            mirror = tuple({"<L>": "<R>", "<R>": "<L>"}.get(t, t) for t in key)
            j = by_key.get(mirror)
            if j is None:
                unmatched.append(self.keypoints[i])
            elif side == "<L>":
                pairs.append((i, j))
        return pairs, unmatched

    def check_flip(self, aug_flip: float, where: str = "") -> None:
        """Refuse horizontal flips of a keypoint set whose names say left and right but that has no flip pairs
        (``flip_perm`` is the identity): a mirrored image would keep its left labels on what now looks right.

        Raises:
            HandposeError: with ``aug_flip > 0``, left and right keypoint names and no flip pairs; the message
                gives the pairs found by name (:meth:`side_pairs`) to add, or ``aug_flip: 0``.
        """
        if aug_flip <= 0 or self.flip_perm != tuple(range(self.num_keypoints)):
            return
        pairs, unmatched = self.side_pairs()
        sides = {side for _, side in map(_side_key, self.keypoints) if side}
        if len(sides) < 2:
            return
        named = ", ".join(f"{self.keypoints[a]}/{self.keypoints[b]}" for a, b in pairs[:4])
        extra = f"; no counterpart found for {unmatched}" if unmatched else ""
        raise HandposeError(
            f"{(where + ': ') if where else ''}skeleton {self.name!r}: keypoint names say left and right ({named}"
            f"{', ...' if len(pairs) > 4 else ''}) but no flip pairs are given, so aug_flip {aug_flip} would mirror "
            f"images without swapping their left and right labels. Add flip_pairs: {[list(p) for p in pairs]} "
            f"(0-based; config key flip_pairs, or \"flip_pairs\" in the COCO category, where names work too){extra}, "
            f"or set aug_flip: 0")

    def to_dict(self) -> dict:
        """Plain-Python form (lists, strings, floats), safe for ``torch.load(weights_only=True)`` and JSON."""
        return {
            "name": self.name,
            "keypoints": list(self.keypoints),
            "limbs": [list(limb) for limb in self.limbs],
            "flip_perm": list(self.flip_perm),
            "sigmas": list(self.sigmas),
            "groups": list(self.groups),
            "colours": {g: list(c) for g, c in self.colours.items()},
            "root": self.root,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Skeleton:
        """Inverse of :meth:`to_dict`. Dicts written before colours and root were saved get the colours of the
        built-in set of the same name (else :data:`FINGER_COLOURS`) and root 0."""
        builtin = BUILTIN.get(str(d["name"]).lower())
        colours = d.get("colours") or (builtin.colours if builtin is not None else FINGER_COLOURS)
        return cls(
            name=d["name"],
            keypoints=tuple(d["keypoints"]),
            limbs=tuple(tuple(x) for x in d["limbs"]),
            flip_perm=tuple(d.get("flip_perm") or ()),
            sigmas=tuple(d.get("sigmas") or ()),
            groups=tuple(d.get("groups") or ()),
            colours=dict(colours),
            root=d.get("root", 0),
        )

    @classmethod
    def from_coco_category(
        cls,
        category: dict,
        flip_perm: Sequence[int] = (),
        sigmas: Sequence[float] = (),
        one_based: bool | None = None,
        source: str = "",
    ) -> Skeleton:
        """Build a Skeleton from a COCO ``categories`` entry: ``keypoints`` names and ``skeleton`` pairs, plus the
        optional keys of a custom set (docs/custom_keypoints.md):

        - ``sigmas``: K OKS sigmas (default :data:`DEFAULT_SIGMA` each);
        - ``groups``: K group names; ``colours`` (or ``colors``): ``{group: [r, g, b] or "#rrggbb"}`` or K colours;
        - ``flip_pairs``: ``[[left, right], ...]`` keypoint names or indices swapped by a horizontal flip;
        - ``root``: the keypoint name or index bottom-up grouping starts from (default the first keypoint);
        - ``skeleton_base``: 0 or 1, how ``skeleton`` pairs (and indices in ``flip_pairs`` and ``root``) are
          numbered.

        COCO person files number skeleton pairs from 1; other tools write 0-based pairs. Without ``skeleton_base``
        (and ``one_based``) pairs naming keypoint 0 are 0-based and pairs naming K are 1-based; pairs that name
        neither could be either and are refused, as are indices in ``flip_pairs`` and ``root`` when there are no
        pairs to tell the base (names always work). A category whose keypoint names are those of a built-in Skeleton
        gives that Skeleton (its limbs; the category's optional keys replace its constants); a hand category with
        21 keypoints keeps HAND21's sigmas and finger groups unless it gives its own.

        Args:
            flip_perm, sigmas: replace the category's (Python callers).
            one_based: the numbering of ``skeleton`` when known (overrides ``skeleton_base``).
            source: the file, for error messages.

        Raises:
            HandposeError: no keypoint names, a pair naming an unknown keypoint, 1-based-or-0-based pairs without
                ``skeleton_base``, a ``skeleton_base`` the pairs contradict, or an invalid optional key; the
                message names the file and the category.
        """
        where = f"{source + ': ' if source else ''}COCO category {category.get('name')!r} (id {category.get('id')})"
        names = category.get("keypoints") or []
        if not names:
            raise HandposeError(f"{where} has no keypoints")
        k = len(names)
        raw = category.get("skeleton") or []
        if not isinstance(raw, list) or not all(isinstance(p, (list, tuple)) and len(p) == 2 and
                                                all(isinstance(i, int) and not isinstance(i, bool) for i in p)
                                                for p in raw):
            raise HandposeError(f"{where}: skeleton must be a list of [i, j] keypoint index pairs, got {raw!r}")
        pairs = [(int(a), int(b)) for a, b in raw]
        base = _skeleton_base(category, pairs, k, one_based, where)
        name = str(category.get("name", "custom"))
        lowered = [str(n).lower() for n in names]
        builtin = next((b for b in BUILTIN.values() if lowered == list(b.keypoints)), None)
        if builtin is None:
            if base is None and pairs:
                raise HandposeError(_ambiguous_base(where, pairs, k))
            limbs = tuple((a - (base or 0), b - (base or 0)) for a, b in pairs)
            for a, b in limbs:
                if not (0 <= a < k and 0 <= b < k):
                    raise HandposeError(f"{where}: skeleton pair [{a + base}, {b + base}] names a keypoint outside "
                                        f"{base}..{k - 1 + base} ({base}-based pairs, {k} keypoints)")
            if k == HAND21.num_keypoints and "hand" in name.lower():
                # a hand category with HAND21's keypoint count (FreiHAND order): the hand's sigmas and fingers
                builtin = cls(name=name, keypoints=tuple(names), limbs=limbs or HAND21.limbs, sigmas=HAND21.sigmas,
                              groups=HAND21.groups)
            else:
                builtin = cls(name=name, keypoints=tuple(names), limbs=limbs)
        colours = category.get("colours", category.get("colors"))
        out = builtin.customised(sigmas=sigmas or category.get("sigmas") or (), groups=category.get("groups") or (),
                                 colours=colours, flip_pairs=category.get("flip_pairs"), root=category.get("root"),
                                 base=base, where=where)
        if flip_perm:
            out = dataclasses.replace(out, flip_perm=tuple(flip_perm))
        return out


#: OKS sigma of a keypoint whose set gives none (that of COCO's eyes and of many hand joints).
DEFAULT_SIGMA = 0.025


def parse_colour(value, where: str = "colour") -> RGB:
    """An RGB colour from ``[r, g, b]`` (0-255) or ``"#rrggbb"`` (the form of label colours in CVAT and Label Studio).

    Raises:
        HandposeError: anything else; the message starts with ``where``.
    """
    if isinstance(value, str):
        m = re.fullmatch(r"#?([0-9a-fA-F]{6})", value.strip())
        if m:
            return tuple(int(m.group(1)[i:i + 2], 16) for i in (0, 2, 4))
    elif (isinstance(value, (list, tuple)) and len(value) == 3
          and all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 255 for v in value)):
        return tuple(int(round(v)) for v in value)
    raise HandposeError(f"{where}: {value!r} is not a colour ([r, g, b] with values 0-255, or \"#rrggbb\")")


def keypoint_index(keypoints: Sequence[str], value, base: int | None = 0, where: str = "keypoint") -> int:
    """The 0-based index of a keypoint given by name (case-insensitive) or by an index numbered from ``base``.

    Raises:
        HandposeError: an unknown name, an index out of range, or an index while ``base`` is None (unknown).
    """
    k = len(keypoints)
    if isinstance(value, str):
        names = [n.lower() for n in keypoints]
        if value.lower() in names:
            return names.index(value.lower())
        if not value.strip().isdigit():
            raise HandposeError(f"{where}: no keypoint named {value!r}; keypoints: {list(keypoints)}")
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise HandposeError(f"{where}: expected a keypoint name or index, got {value!r}")
    if base is None:
        raise HandposeError(f"{where}: index {value} is ambiguous (the category does not say whether indices start "
                            "at 0 or 1): give the keypoint's name, or skeleton_base")
    if not base <= value < k + base:
        raise HandposeError(f"{where}: keypoint index {value} is not in {base}..{k - 1 + base} ({base}-based)")
    return value - base


def _list_of(value, key: str, where: str) -> list:
    if not isinstance(value, (list, tuple)):
        raise HandposeError(f"{where}: {key} must be a list, got {value!r}")
    return list(value)


def _skeleton_base(category: dict, pairs: list[tuple[int, int]], k: int, one_based: bool | None,
                   where: str) -> int | None:
    """0 or 1, how a category numbers its keypoints; None when its pairs cannot tell and nothing says."""
    flat = [i for p in pairs for i in p]
    if one_based is not None:
        return int(bool(one_based))
    given = category.get("skeleton_base")
    if given is not None:
        if isinstance(given, bool) or given not in (0, 1):
            raise HandposeError(f"{where}: skeleton_base must be 0 or 1, got {given!r}")
        if given == 1 and 0 in flat:
            raise HandposeError(f"{where}: skeleton_base is 1 but a skeleton pair names keypoint 0")
        if given == 0 and k in flat:
            raise HandposeError(f"{where}: skeleton_base is 0 but a skeleton pair names keypoint {k} ({k} keypoints "
                                f"are 0..{k - 1})")
        return int(given)
    if 0 in flat:
        return 0
    if k in flat:
        return 1
    return None  # ambiguous pairs, or none (then only indices in flip_pairs / root need the base)


def _ambiguous_base(where: str, pairs: list[tuple[int, int]], k: int) -> str:
    return (f"{where}: skeleton pairs {[list(p) for p in pairs[:6]]}{' ...' if len(pairs) > 6 else ''} name neither "
            f"keypoint 0 nor keypoint {k}, so they could be 0-based or 1-based (COCO's). Add \"skeleton_base\": 1 "
            "(COCO numbering, first keypoint is 1) or \"skeleton_base\": 0 to the category")


#: Name tokens that say a side.
_SIDES = {"left": "<L>", "l": "<L>", "right": "<R>", "r": "<R>"}


def _side_key(name: str) -> tuple[tuple[str, ...], str]:
    """``(tokens with the side replaced by <L>/<R>, side or "")`` of a keypoint name. Tokens: split at non-letters
    and at camel case (``LShoulder`` -> ``L``, ``Shoulder``; ``eyeLeft`` -> ``eye``, ``Left``), compared lower-case."""
    tokens = re.findall(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+", name)
    key = tuple(_SIDES.get(t.lower(), t.lower()) for t in tokens)
    sides = [t for t in key if t in ("<L>", "<R>")]
    return key, sides[0] if len(sides) == 1 else ""


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
