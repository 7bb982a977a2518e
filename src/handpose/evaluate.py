"""Runs a model over labelled records, computes the metrics of :mod:`handpose.metrics`, writes the report."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from handpose import metrics
from handpose.bundle import ModelBundle
from handpose.data.records import Record
from handpose.data.transforms import apply_affine, box_to_input_affine
from handpose.errors import HandposeError
from handpose.predict import Predictor
from handpose.progress import track
from handpose.result import Result
from handpose.skeleton import Skeleton, keypoint_index_map

PCK_THRESHOLDS = (0.05, 0.1, 0.2)
#: COCO crop margin (share of the box's longer side, per side) for a model that records none: the bundled and the
#: imported networks; :func:`handpose.data.coco.load_coco`'s default.
DEFAULT_BOX_MARGIN = 0.25


def model_box_margin(model: ModelBundle) -> float | None:
    """The crop margin ``model`` was trained on: ``box_margin`` of the training config in its card.

    ``handpose train`` records the config in the card (of ``model.pt``, and of exported ``.onnx`` files). A model
    trained on FreiHAND photos alone (``dataset: freihand`` without ``extra_train``) never saw a COCO crop, and a
    bundled or imported network has no config: both give ``None``.

    Returns:
        The margin (share of the box's longer side added on each side), or ``None`` when not known.
    """
    config = model.card.get("config")
    if not isinstance(config, dict) or config.get("box_margin") is None:
        return None
    if config.get("dataset", "coco") == "freihand" and not config.get("extra_train"):
        return None
    return float(config["box_margin"])


@dataclass
class Evaluation:
    """Predictions beside labels for a set of single-instance records.

    Attributes:
        pred, gt: ``(N, K, 2)`` original-image pixels.
        pred_input, gt_input: ``(N, K, 2)`` model-input pixels.
        mask: ``(N, K)`` labelled keypoints.
        scores: ``(N, K)`` raw scores.
        box_sizes: ``(N,)`` side of the region the model saw, in original pixels (the "image size" of the
            percentage errors; the whole image for FreiHAND crops).
        files, record_ids: per record.
        input_size: ``(width, height)`` of the model input.
        keypoint_names, groups: from the Skeleton.
        boxes: ``(N, 4)`` ``[x, y, w, h]`` region each record's prediction looked at (its box with the crop
            margin, or the whole image), original pixels; the report draws these crops. ``None`` when not known.
    """

    pred: np.ndarray
    gt: np.ndarray
    pred_input: np.ndarray
    gt_input: np.ndarray
    mask: np.ndarray
    scores: np.ndarray
    box_sizes: np.ndarray
    files: list[str]
    record_ids: list[str]
    input_size: tuple[int, int]
    keypoint_names: tuple[str, ...]
    groups: tuple[str, ...]
    boxes: np.ndarray | None = None

    @property
    def errors_px(self) -> np.ndarray:
        """``(N, K)`` errors in original pixels (NaN where unlabelled)."""
        return metrics.keypoint_errors(self.pred, self.gt, self.mask)

    @property
    def image_errors_px(self) -> np.ndarray:
        """``(N,)`` mean keypoint error of each record in original pixels (NaN for a record with no label)."""
        e = self.errors_px
        with np.errstate(invalid="ignore", divide="ignore"):  # 0 / 0 -> NaN, without nanmean's warning
            return np.nansum(e, axis=1) / (~np.isnan(e)).sum(axis=1)

    def worst_indices(self, count: int) -> np.ndarray:
        """Indices of the ``count`` records with the largest mean error, worst first (unlabelled ones last)."""
        return np.argsort(-np.nan_to_num(self.image_errors_px, nan=-1), kind="stable")[:count]

    def summary(self) -> dict:
        """All figures as a JSON-ready dict (errors in px and %, PCK, AUC, within-shares, per keypoint/finger)."""
        e_px = self.errors_px
        e_in = metrics.keypoint_errors(self.pred_input, self.gt_input, self.mask)
        e_pct = 100.0 * e_px / self.box_sizes[:, None]
        hand_size = metrics.keypoint_box_size(self.gt, self.mask)
        pred_u = metrics.to_unit_coords(self.pred_input, self.input_size)
        gt_u = metrics.to_unit_coords(self.gt_input, self.input_size)
        per_image = self.image_errors_px
        return {
            "n_images": int(len(self.pred)),
            "n_keypoints": int(self.mask.sum()),
            "error_px": metrics.error_summary(e_px),
            "error_input_px": metrics.error_summary(e_in),
            "error_pct_of_image": metrics.error_summary(e_pct),
            **{f"pck@{t}": metrics.pck(self.pred, self.gt, self.mask, t, hand_size) for t in PCK_THRESHOLDS},
            "auc_0_30px": metrics.auc(self.pred, self.gt, self.mask, 30.0),
            "within_0.1": metrics.within_share(pred_u, gt_u, self.mask, 0.1),
            "within_0.01": metrics.within_share(pred_u, gt_u, self.mask, 0.01),
            "per_group_px": metrics.group_errors(e_px, self.groups),
            "per_keypoint_px": {n: float(np.nanmean(e_px[:, k])) if np.any(self.mask[:, k]) else float("nan")
                                for k, n in enumerate(self.keypoint_names)},
            "worst_images": [{"file": self.files[i], "record": self.record_ids[i], "error_px": float(per_image[i])}
                             for i in self.worst_indices(5)],
        }


def evaluate(model: ModelBundle | str | Path | None, records: list[Record], batch_size: int = 32,
             flip_test: bool = False, progress: bool = False) -> Evaluation:
    """Predict every record (its box, or the whole image) and pair the predictions with the labels.

    Args:
        progress: show a progress bar with ETA (:func:`handpose.progress.track`; on a terminal only).

    Raises:
        HandposeError: no records, a record with several instances, a keypoint count that disagrees with the
            model's Skeleton, or an unreadable image (the message names the record).
    """
    if not records:
        raise HandposeError("evaluate: no records")
    predictor = Predictor(model, batch_size, flip_test=flip_test)
    skel = predictor.skeleton
    for r in records:
        if r.keypoints.shape[0] != 1 or r.keypoints.shape[1] != skel.num_keypoints:
            raise HandposeError(f"record {r.record_id}: expected 1 instance of {skel.num_keypoints} keypoints "
                                f"(model skeleton {skel.name!r}), got {r.keypoints.shape[:2]}")

    def fail(path, err):
        raise HandposeError(f"evaluate: {err}")

    results = list(track(predictor.predict_paths([r.image_path for r in records], [r.box for r in records], fail,
                                                 exif_transpose=False), len(records), "evaluate", progress))
    size = predictor.bundle.input_size
    pred, gt, pin, gin, sizes, boxes = [], [], [], [], [], []
    for r, res in zip(records, results, strict=True):
        box = res.boxes[0]
        M = box_to_input_affine(box, size)
        pred.append(res.keypoints[0])
        gt.append(r.keypoints[0])
        pin.append(apply_affine(M, res.keypoints[0]))
        gin.append(apply_affine(M, r.keypoints[0]))
        sizes.append(float(max(box[2], box[3])))
        boxes.append(np.asarray(box, np.float32))
    return Evaluation(np.stack(pred), np.stack(gt), np.stack(pin), np.stack(gin),
                      np.stack([r.visible[0] > 0 for r in records]), np.stack([r.scores[0] for r in results]),
                      np.asarray(sizes), [str(r.image_path) for r in records], [r.record_id for r in records],
                      size, skel.keypoints, skel.groups, np.stack(boxes))


def format_table(summary: dict) -> list[tuple[str, str]]:
    """Rows ``(metric, value)`` for the on-screen table."""
    rows = []
    for key, unit in (("error_px", "px"), ("error_input_px", "px (model input)"), ("error_pct_of_image", "%")):
        s = summary[key]
        rows.append((f"keypoint error, {unit}",
                     f"mean {s['mean']:.2f}  median {s['median']:.2f}  p90 {s['p90']:.2f}  p95 {s['p95']:.2f}"))
    rows.append(("PCK@0.05 / 0.1 / 0.2 (hand box)",
                 " / ".join(f"{summary[f'pck@{t}']:.3f}" for t in PCK_THRESHOLDS)))
    rows.append(("AUC 0-30 px", f"{summary['auc_0_30px']:.3f}"))
    rows.append(("within 0.1 / 0.01 ([-1, 1] units)", f"{summary['within_0.1']:.3f} / {summary['within_0.01']:.3f}"))
    rows.append(("per group, px", "  ".join(f"{g} {v:.2f}" for g, v in summary["per_group_px"].items())))
    return rows


def write_report(evaluation: Evaluation, summary: dict, out: str | Path, plots: bool = True,
                 skeleton=None, title: str | None = None) -> Path:
    """Write the evaluation report into folder ``out``.

    ``metrics.json`` (``summary``); with ``plots``, ``pck_curve.png``, ``per_keypoint_error.png``, ``gallery.png``
    (records spread over the error distribution, on their crops) and, with ``skeleton``, ``worst_images.png`` (the
    worst records' crops); last ``index.html``, a page of the tables and those pictures
    (:func:`handpose.report.write_html`, heading ``title``).

    Returns:
        The folder.

    Raises:
        HandposeError: an image cannot be read or the page cannot be written.
    """
    from handpose.report import write_html

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(summary, indent=2))
    pictures = []
    if plots:
        from handpose import visualize

        pictures = ["pck_curve.png", "per_keypoint_error.png", "gallery.png"]
        visualize.plot_pck_curve(evaluation, out / pictures[0])
        visualize.plot_per_keypoint_error(summary, out / pictures[1])
        visualize.plot_gallery(evaluation, out / pictures[2])
        if skeleton is not None:
            pictures.append("worst_images.png")
            visualize.plot_worst_images(evaluation, skeleton, out / pictures[3])
    write_html(summary, out, title, pictures)
    return out


def evaluate_bottom_up(model: ModelBundle | str | Path | None, ann_file: str | Path, image_dir: str | Path,
                       batch_size: int = 8) -> dict:
    """COCO keypoint AP/AR of a bottom-up model on a COCO file, and the keypoint error of matched instances.

    Every image is predicted whole, then scored by :func:`score_bottom_up`. A model whose Skeleton has another
    keypoint count than the file's category (COCO18 with a neck on a COCO17 file) is scored on the file's
    keypoints, picked by name (:func:`handpose.skeleton.keypoint_index_map`: the neck dropped, as in Osokin's
    ``val.py``), with the file's OKS sigmas.

    Returns:
        As :func:`score_bottom_up`.

    Raises:
        HandposeError: reader errors, a model that is not bottom-up, keypoints of the file the model lacks, or
            pycocotools missing.
    """
    from handpose.data.coco import load_coco, read_coco_json, skeleton_from_coco

    predictor = Predictor(model, batch_size)
    if predictor.bundle.codec.kind != "paf":
        raise HandposeError("evaluate_bottom_up needs a bottom-up model (paf codec)")
    data = read_coco_json(ann_file)
    skeleton, index = predictor.skeleton, None
    file_skeleton = skeleton_from_coco(data, ann_file)
    if file_skeleton.num_keypoints != skeleton.num_keypoints:
        index = keypoint_index_map(skeleton, file_skeleton)
        skeleton = file_skeleton
    records, _ = load_coco(ann_file, image_dir, skeleton, per_instance=False)
    results = predictor.predict_paths([r.image_path for r in records], exif_transpose=False)
    if index is not None:
        results = (dataclasses.replace(r, keypoints=r.keypoints[:, index], scores=r.scores[:, index],
                                       skeleton=skeleton) for r in results)
    return score_bottom_up(data, image_dir, records, results, skeleton)


def score_bottom_up(data: dict, image_dir: str | Path, records: list[Record], results: Iterable[Result],
                    skeleton: Skeleton) -> dict:
    """Score multi-instance predictions against a COCO keypoints file.

    Each labelled instance is matched (greedily, lowest distance first, one-to-one) to the predicted instance of
    its image with the lowest mean distance over the keypoints both have; ``error_px`` summarises the distances of
    the matched keypoints (original-image pixels) and ``matched`` counts the matched instances. AP/AR are COCO's
    OKS-based figures (:func:`handpose.coco_eval.coco_keypoint_ap`, pycocotools) over all predicted instances.

    Args:
        data: the COCO dict the records were read from (``images`` give the ids by ``file_name``).
        image_dir: the folder the file names are relative to.
        records: per-image :class:`~handpose.data.records.Record` with ``(N, K, 2)`` keypoints and visibility.
        results: one :class:`~handpose.result.Result` per record, in the same order (any iterable).

    Returns:
        ``{"AP", "AP50", ..., "AR", ..., "n_images", "n_instances", "matched", "error_px": {...}}``; AP and AR are
        0 when nothing was predicted.

    Raises:
        HandposeError: pycocotools missing.
    """
    from handpose.coco_eval import coco_keypoint_ap

    by_name = {im["file_name"]: im["id"] for im in data["images"]}
    image_dir = Path(image_dir)
    detections, distances, matched, n_inst = [], [], 0, 0
    for r, res in zip(records, results, strict=True):
        image_id = by_name[str(Path(r.image_path).relative_to(image_dir))]
        for entry in res.to_coco():
            detections.append({"image_id": image_id, "keypoints": entry["keypoints"], "score": entry["score"]})
        n_inst += len(r.keypoints)
        pairs = []
        for g, (gt, vis) in enumerate(zip(r.keypoints, r.visible, strict=True)):
            for p, pred in enumerate(res.keypoints):
                both = (vis > 0) & np.isfinite(pred).all(axis=1)
                if both.any():
                    pairs.append((float(np.linalg.norm(pred[both] - gt[both], axis=1).mean()), g, p))
        used_g, used_p = set(), set()
        for _, g, p in sorted(pairs):
            if g in used_g or p in used_p:
                continue
            used_g.add(g)
            used_p.add(p)
            both = (r.visible[g] > 0) & np.isfinite(res.keypoints[p]).all(axis=1)
            distances.extend(np.linalg.norm(res.keypoints[p][both] - r.keypoints[g][both], axis=1).tolist())
            matched += 1
    stats = coco_keypoint_ap(data, detections, skeleton) if detections else {"AP": 0.0, "AR": 0.0}
    return {**stats, "n_images": len(records), "n_instances": n_inst, "matched": matched,
            "error_px": metrics.error_summary(np.asarray(distances))}
