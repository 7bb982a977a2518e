"""Several labelled sets in one training: reading the entries of a config's ``train_sets`` / ``val_sets`` and drawing
each epoch's samples by the sets' weights.

An entry is ``{name, ann, images}`` (COCO keypoints json + image folder) or ``{name, freihand, split}`` (a
FreiHAND-layout folder and one part of its id split), with the training options ``weight``, ``loss_weight``,
``teacher`` and ``green_screen`` (see :data:`handpose.config.FIELD_HELP` and :func:`handpose.config.check_set_entry`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from handpose.data.coco import load_coco, read_coco_json, skeleton_from_coco, teacher_weight
from handpose.data.freihand import load_freihand
from handpose.data.records import Record
from handpose.errors import HandposeError
from handpose.skeleton import Skeleton


def sets_skeleton(entries: Sequence[dict]) -> Skeleton:
    """The keypoint set of the first COCO entry's category (for configs without ``skeleton``).

    Raises:
        HandposeError: no COCO entry (FreiHAND folders do not name their keypoints: set ``skeleton``).
    """
    for entry in entries:
        if "ann" in entry:
            return skeleton_from_coco(read_coco_json(entry["ann"]), entry["ann"])
    raise HandposeError("train_sets has no COCO set to take the keypoint names from; set skeleton (e.g. hand21)")


def load_set(entry: dict, skeleton: Skeleton, fractions: Sequence[float] = (0.8, 0.15, 0.05), margin: float = 0.25,
             per_instance: bool = True, allow_outside: bool = False, limit: int | None = None) -> list[Record]:
    """The records of one set entry, with their loss weights (:attr:`Record.weight`): ``loss_weight`` times, for
    ``teacher: true``, :func:`handpose.data.coco.teacher_weight` of each annotation.

    Args:
        entry: a checked ``train_sets`` / ``val_sets`` entry.
        skeleton: the keypoints every set must have.
        fractions: train / val / test shares of a FreiHAND folder's ids.
        margin, per_instance, allow_outside: as :func:`handpose.data.coco.load_coco`.
        limit: at most this many records (the first ones).

    Raises:
        HandposeError: any reader error, prefixed with the set's name.
    """
    try:
        if "freihand" in entry:
            records = load_freihand(entry["freihand"], entry["split"], fractions, skeleton, limit)
        else:
            records, _ = load_coco(entry["ann"], entry["images"], skeleton, margin=margin, per_instance=per_instance,
                                   allow_outside=allow_outside,
                                   weight_of=teacher_weight if entry.get("teacher") else None)
            records = records[:limit] if limit else records
    except HandposeError as e:
        raise HandposeError(f"set {entry['name']!r}: {e}") from e
    loss_weight = float(entry.get("loss_weight", 1.0))
    for r in records:
        r.weight *= loss_weight
    return records


def sampling_weights(sizes: Sequence[int], weights: Sequence[float]) -> np.ndarray:
    """Per-record probabilities that draw set ``i`` with probability ``weights[i] / sum(weights)`` and its records
    uniformly.

    Args:
        sizes: record count of each set, in the order the records are concatenated.
        weights: each set's relative share of the samples (>= 0, not all 0).

    Returns:
        ``(sum(sizes),)`` float64 summing to 1 (over sets with records).

    Raises:
        HandposeError: lengths that differ, or no set with both records and a positive weight.
    """
    if len(sizes) != len(weights):
        raise HandposeError(f"{len(sizes)} sets but {len(weights)} weights")
    share = np.asarray([w if n else 0.0 for n, w in zip(sizes, weights, strict=True)], np.float64)
    if share.sum() <= 0:
        raise HandposeError("no training set has both records and a weight above 0")
    share /= share.sum()
    return np.concatenate([np.full(n, s / n) for n, s in zip(sizes, share, strict=True) if n])
