"""Training on Lightning: the LightningModule, schedules, staged runs and the Trainer set-up."""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint, Timer
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.trainer.states import TrainerStatus
from torch.utils.data import DataLoader, Dataset, WeightedRandomSampler

from handpose.atomic import atomic_write, check_writable
from handpose.bundle import FORMAT, ModelBundle, load_model
from handpose.codecs import codec_to_dict, make_codec
from handpose.config import TrainConfig
from handpose.data.bottomup import BottomUpDataset, place
from handpose.data.coco import load_coco, read_coco_json, skeleton_from_coco
from handpose.data.composite import CompositeSource, wrists_labelled
from handpose.data.dataset import KeypointDataset, channel_stats
from handpose.data.freihand import load_freihand
from handpose.data.keying import BackgroundCompositor
from handpose.data.records import Record
from handpose.data.sets import load_set, sampling_weights, sets_skeleton
from handpose.errors import HandposeError
from handpose.losses import LOSSES, LOSSES_FOR, masked_l2
from handpose.models.pretrained import NORMALIZATIONS, load_pretrained_into, source_of
from handpose.models.zoo import create_model, output_kind
from handpose.plots import plot_training_curves
from handpose.progress import TrainProgressBar
from handpose.runtime import tune_malloc
from handpose.skeleton import Skeleton, get_skeleton


class CyclicOneCycleLR(torch.optim.lr_scheduler.OneCycleLR):
    """torch's ``OneCycleLR`` repeated: after ``total_steps`` steps the cycle starts again (the small-data
    tutorial calls ``fit_one_cycle`` 40 times in a row)."""

    def get_lr(self):
        step = self.last_epoch
        self.last_epoch = step % self.total_steps
        try:
            return super().get_lr()
        finally:
            self.last_epoch = step


class KeypointModule(L.LightningModule):
    """Network, codec, loss, optimiser and plateau schedule, with validation EPE (heatmap or regression models).

    Args:
        bundle: model metadata as in :meth:`handpose.bundle.ModelBundle.to_dict` without ``state_dict``
            (saved in the checkpoint, so a ``.ckpt`` loads with :func:`handpose.load_model`).
        config: the resolved :class:`TrainConfig` as a dict.
    """

    def __init__(self, bundle: dict, config: dict):
        super().__init__()
        self.save_hyperparameters()
        self.cfg = TrainConfig(**config)
        skeleton = Skeleton.from_dict(bundle["skeleton"])
        self.network = create_model(bundle["arch"], skeleton.num_keypoints, bundle["input_size"],
                                    num_limbs=len(skeleton.limbs), **bundle["arch_kwargs"])
        self.codec = make_codec(input_size=bundle["input_size"], skeleton=skeleton, **bundle["codec"])
        self.loss_fn = LOSSES.get(self.cfg.loss)
        if self.cfg.pretrained:
            report = load_pretrained_into(self.network, self.cfg.pretrained)
            print(report.summary(), flush=True)
        if self.cfg.init_weights:
            init = load_model(self.cfg.init_weights).network.state_dict()
            own = self.network.state_dict()
            wrong = [f"{k} {tuple(v.shape)} (here {tuple(own[k].shape)})" for k, v in init.items()
                     if k in own and v.shape != own[k].shape]
            if wrong:
                raise HandposeError(f"init_weights {self.cfg.init_weights}: tensors of another size than in "
                                    f"{bundle['arch']!r} with {skeleton.num_keypoints} keypoints: {wrong[:3]}")
            missing, unexpected = self.network.load_state_dict(init, strict=False)
            if missing or unexpected:
                raise HandposeError(f"init_weights {self.cfg.init_weights}: weights do not fit {bundle['arch']!r} "
                                    f"(missing {missing[:5]}, unexpected {unexpected[:5]})")
        if self.cfg.freeze_bn:
            self.train()  # Lightning never calls train(): it keeps each module's mode as built (and after validation)
        if self.cfg.freeze_backbone:
            backbone = getattr(self.network, "backbone", None)
            if backbone is None:
                raise HandposeError(f"freeze_backbone: model {bundle['arch']!r} has no backbone")
            for p in backbone.parameters():
                p.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)

    def train(self, mode: bool = True) -> KeypointModule:
        """As ``nn.Module.train``; with ``freeze_bn`` the BatchNorm layers stay in eval mode (running statistics)."""
        super().train(mode)
        if mode and self.cfg.freeze_bn:
            for m in self.network.modules():
                if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    def _step(self, batch: dict, stage: str, set_index: int = 0) -> torch.Tensor:
        pred = self.network(batch["image"])
        bs = batch["image"].shape[0]
        if self.codec.kind == "paf":
            loss = masked_l2(pred, batch["heatmaps"], batch["pafs"], batch["mask"])
        else:
            loss = self.loss_fn(pred, batch["target"], batch["weights"])
        values = {f"{stage}_loss": loss}
        if stage == "val" and self.codec.kind != "paf":
            xy, _ = self.codec.decode(pred)
            err = (xy - batch["keypoints"]).norm(dim=-1)
            mask = batch["visible"] > 0
            values["val_epe_px"] = (err * mask).sum() / mask.sum().clamp(min=1)
        for name, value in values.items():
            # with val_sets, every set under its own name; the first one also plainly (it picks the checkpoints)
            names = [name] if stage == "train" or not self.val_names else [f"{name}/{self.val_names[set_index]}"]
            if stage == "val" and set_index == 0:
                names += [name] if self.val_names else []
            for n in names:
                self.log(n, value, on_step=False, on_epoch=True, prog_bar="/" not in n, batch_size=bs,
                         sync_dist=True, add_dataloader_idx=False)
        return loss

    @property
    def val_names(self) -> list[str]:
        """The ``val_sets`` names (empty without ``val_sets``)."""
        return [entry["name"] for entry in self.cfg.val_sets]

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> torch.Tensor:
        return self._step(batch, "val", dataloader_idx)

    def configure_optimizers(self):
        cfg = self.cfg
        params = [p for p in self.parameters() if p.requires_grad]
        if cfg.optimizer == "adam":
            opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        else:
            opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
        if cfg.schedule == "onecycle":
            steps_per_epoch = max(1, int(self.trainer.estimated_stepping_batches) // max(1, self.trainer.max_epochs))
            sched = CyclicOneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.cycle_epochs * steps_per_epoch)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=cfg.lr_factor,
                                                           patience=cfg.lr_patience)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": cfg.lr_monitor, "interval": "epoch"}}


def config_skeleton(cfg: TrainConfig) -> Skeleton:
    """The keypoint set a config trains: its ``skeleton``, or the train json's category (COCO sets).

    Raises:
        HandposeError: a COCO config without ``train_ann``, or an unreadable json.
    """
    if cfg.skeleton or (cfg.dataset == "freihand" and not cfg.train_sets):
        return get_skeleton(cfg.skeleton or "hand21")
    if cfg.train_sets:
        return sets_skeleton(cfg.train_sets)
    if not cfg.train_ann:
        raise HandposeError("config: dataset 'coco' needs train_ann")
    return skeleton_from_coco(read_coco_json(cfg.train_ann), cfg.train_ann)


def load_records(cfg: TrainConfig, split: str, per_instance: bool = True) -> tuple[list[Record], Skeleton]:
    """Records of the ``train`` or ``val`` split named by the config, and their Skeleton (COCO: one record per
    annotation, or per image with ``per_instance=False`` for bottom-up models). The train split also gets the
    records of every ``extra_train`` set, read with the main set's Skeleton.

    Raises:
        HandposeError: missing data paths, an extra set whose keypoints differ from the main set's, or any reader
            error.
    """
    if cfg.train_sets:
        groups, skeleton = load_groups(cfg, split, per_instance)
        return [r for _, records in groups for r in records], skeleton
    limit = cfg.limit_records or None
    if cfg.dataset == "freihand":
        if not cfg.data_root:
            raise HandposeError("config: dataset 'freihand' needs data_root")
        skeleton = get_skeleton(cfg.skeleton or "hand21")
        records = load_freihand(cfg.data_root, split, cfg.split, skeleton, limit)
    else:
        ann, images = (cfg.train_ann, cfg.train_images) if split == "train" else (cfg.val_ann, cfg.val_images)
        if not ann or not images:
            raise HandposeError(f"config: dataset 'coco' needs {split}_ann and {split}_images")
        skeleton = get_skeleton(cfg.skeleton) if cfg.skeleton else None
        records, skeleton = load_coco(ann, images, skeleton, margin=cfg.box_margin, per_instance=per_instance,
                                      allow_outside=cfg.allow_outside_images)
        records = records[:limit] if limit else records
    if split == "train":
        for extra in cfg.extra_train:
            more, _ = load_coco(extra["ann"], extra["images"], skeleton, margin=cfg.box_margin,
                                per_instance=per_instance, allow_outside=cfg.allow_outside_images)
            records = records + (more[:limit] if limit else more)
    return records, skeleton


def load_groups(cfg: TrainConfig, split: str, per_instance: bool = True
                ) -> tuple[list[tuple[dict, list[Record]]], Skeleton]:
    """The records of each set of the config's ``train_sets`` (``split="train"``) or ``val_sets`` (``"val"``) as
    ``[(entry, records), ...]``, or of the one train / val split of a config without them (entry ``{"name": ""}``).

    Raises:
        HandposeError: as :func:`load_records`, naming the set.
    """
    if not cfg.train_sets:
        records, skeleton = load_records(cfg, split, per_instance)
        return [({"name": ""}, records)], skeleton
    skeleton = config_skeleton(cfg)
    entries = cfg.train_sets if split == "train" else cfg.val_sets
    groups = [(entry, load_set(entry, skeleton, cfg.split, cfg.box_margin, per_instance, cfg.allow_outside_images,
                               cfg.limit_records or None)) for entry in entries]
    return groups, skeleton


def normalization_name(cfg: TrainConfig) -> str:
    """``normalize``, or when empty the pretrained network's own (a known source), else ``dataset``."""
    if cfg.normalize:
        return cfg.normalize
    source = source_of(cfg.pretrained) if cfg.pretrained else None
    return source.normalize if source is not None else "dataset"


def input_normalization(cfg: TrainConfig) -> tuple[list[float], list[float]] | None:
    """``(mean, std)`` fixed by :func:`normalization_name`, or None for the train split's channel statistics."""
    name = normalization_name(cfg)
    return None if name == "dataset" else NORMALIZATIONS[name]


def composite_source(cfg: TrainConfig, skeleton: Skeleton) -> CompositeSource | None:
    """The :class:`CompositeSource` of the config's ``composite_sets`` (drawn by their ``weight``,
    :func:`handpose.data.sets.sampling_weights`) on ``composite_backgrounds`` photos whose people all have both
    wrists labelled (:func:`handpose.data.composite.wrists_labelled`), or None without ``composite_sets``.

    Raises:
        HandposeError: as :func:`handpose.data.sets.load_set` and :func:`handpose.data.coco.load_coco`, or no
            background photo with every wrist labelled.
    """
    if not cfg.composite_sets:
        return None
    groups = [load_set(entry, skeleton, cfg.split, cfg.box_margin, True, cfg.allow_outside_images,
                       cfg.limit_records or None) for entry in cfg.composite_sets]
    weights = sampling_weights([len(g) for g in groups], [float(e.get("weight", 1.0)) for e in cfg.composite_sets])
    bg = cfg.composite_backgrounds
    backgrounds, _ = load_coco(bg["ann"], bg["images"], per_instance=False, allow_outside=cfg.allow_outside_images)
    backgrounds = [b for b in backgrounds if wrists_labelled(b)]
    if not backgrounds:
        raise HandposeError(f"composite_backgrounds {bg['ann']}: no photo whose people all have both wrists labelled")
    hands = [r for g in groups for r in g]
    return CompositeSource(hands, backgrounds, weights, tuple(cfg.composite_hands), tuple(cfg.composite_hand_sizes))


def build_datasets(cfg: TrainConfig, codec_kind: str, network_stride: int
                   ) -> tuple[Dataset, Dataset | list[Dataset], dict, np.ndarray | None]:
    """Train and val datasets (a list with one per ``val_sets`` entry when there are several), the bundle metadata
    (mean/std computed on the train split), and the per-record probabilities an epoch is drawn with (``train_sets``
    weights, :func:`handpose.data.sets.sampling_weights`; uniform with ``batches_per_epoch``; else None: one pass).

    Raises:
        HandposeError: data errors, or train and val splits with different keypoint sets.
    """
    bottom_up = codec_kind == "paf"
    train_groups, skeleton = load_groups(cfg, "train", per_instance=not bottom_up)
    val_groups, val_skeleton = load_groups(cfg, "val", per_instance=not bottom_up)
    train_records = [r for _, records in train_groups for r in records]
    val_records = [r for _, records in val_groups for r in records]
    skeleton = cfg.customise_skeleton(skeleton)  # flip_pairs, oks_sigmas, ...; refuses unswapped left/right flips
    if val_skeleton.num_keypoints != skeleton.num_keypoints:
        raise HandposeError(f"train data has {skeleton.num_keypoints} keypoints but val data "
                            f"{val_skeleton.num_keypoints}")
    codec = make_codec(codec_kind, cfg.input_size, network_stride, cfg.sigma, cfg.decode, skeleton, cfg.paf_width)
    aug = cfg.augment()
    fixed = input_normalization(cfg)
    if bottom_up:
        mosaic = load_freihand(cfg.mosaic_root, "train", cfg.split, skeleton) if cfg.mosaic_root else []
        mean, std = fixed or channel_stats(place(r, tuple(cfg.input_size), cfg.pad_mode)[0]
                                           for r in train_records + mosaic)
        train_ds = BottomUpDataset(train_records, skeleton, codec, mean, std, aug, mosaic, cfg.mosaic_prob,
                                   cfg.pad_mode, composite_source(cfg, skeleton), cfg.composite_prob,
                                   tuple(cfg.crop_scale) if cfg.crop_scale else None)
        val_ds = BottomUpDataset(val_records, skeleton, codec, mean, std, None, pad_mode=cfg.pad_mode)
    else:
        cache = cfg.cache_dir or cfg.cache
        green = [float(entry.get("green_screen", 0.0)) for entry, records in train_groups for _ in records]
        compositor = BackgroundCompositor.from_folder(cfg.backgrounds) if cfg.backgrounds else None
        train_ds = KeypointDataset(train_records, skeleton, codec, augment=aug, cache=cache, pad_mode=cfg.pad_mode,
                                   compositor=compositor, green_screen=green)
        mean, std = fixed or channel_stats(train_ds.raw(i)[0] for i in range(len(train_ds)))
        train_ds.mean, train_ds.std = mean, std
        val_ds = [KeypointDataset(records, skeleton, codec, mean, std, augment=None, cache=cache,
                                  pad_mode=cfg.pad_mode) for _, records in val_groups]
        val_ds = val_ds[0] if len(val_ds) == 1 else val_ds
    meta = {
        "format": FORMAT,
        "arch": cfg.model,
        "arch_kwargs": dict(cfg.model_kwargs),
        "skeleton": skeleton.to_dict(),
        "input_size": list(cfg.predict_size or cfg.input_size) if bottom_up else list(cfg.input_size),
        "codec": {**codec_to_dict(codec), "upsample": cfg.predict_upsample} if bottom_up else codec_to_dict(codec),
        "mean": mean,
        "std": std,
        "pad_mode": cfg.pad_mode,
        "card": {"train_records": len(train_records), "val_records": len(val_records)},
    }
    sampling = None
    if cfg.train_sets:
        sampling = sampling_weights([len(r) for _, r in train_groups],
                                    [float(e.get("weight", 1.0)) for e, _ in train_groups])
    elif cfg.batches_per_epoch:
        sampling = np.full(len(train_records), 1.0 / len(train_records))
    if cfg.train_sets:
        meta["card"]["val_sets"] = [entry["name"] for entry, _ in val_groups]
        meta["card"]["train_sets"] = {entry["name"]: len(records) for entry, records in train_groups}
    return train_ds, val_ds, meta, sampling


#: The last checkpoint before the newest, kept beside ``last.ckpt`` (a hard link) for when that one cannot be read.
PREVIOUS_LAST = "last-previous.ckpt"


def read_checkpoint(path: str | Path) -> dict:
    """Load a Lightning checkpoint with ``weights_only=True`` (tensors and plain types only, whatever
    ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` says: an explicit argument wins over it), so a crafted file cannot run code.

    Raises:
        HandposeError: naming the file, when it is truncated, empty, not a checkpoint or holds other objects.
    """
    path = Path(path)
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for truncated, foreign or hostile files
        raise HandposeError(f"checkpoint {path} cannot be read ({type(e).__name__}: {str(e)[:300]})") from e
    if not isinstance(ck, dict) or "state_dict" not in ck or "epoch" not in ck:
        raise HandposeError(f"checkpoint {path} is not a handpose training checkpoint (no state_dict / epoch)")
    return ck


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint files, written atomically in their own folder (see :mod:`handpose.atomic`; Lightning's
    own save goes through a temporary file that may sit on another filesystem, and it swallows a
    ``PermissionError``), with the newest-but-one ``last.ckpt`` kept as :data:`PREVIOUS_LAST`, and read with
    ``weights_only=True`` (:func:`read_checkpoint`)."""

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        path = Path(path)
        keep = path.with_name(PREVIOUS_LAST) if path.name == "last.ckpt" else None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, lambda f: torch.save(checkpoint, f), keep_previous=keep)
        except OSError as e:
            raise HandposeError(f"checkpoint {path} could not be written ({e.strerror or e}); training stops here "
                                "(the checkpoints written before are whole)") from e

    def load_checkpoint(self, path, map_location=None, weights_only=None) -> dict:
        return read_checkpoint(path)


def _stale_temporaries(folder: Path) -> None:
    """Remove the temporary files of saves a killed process did not finish (hidden ``.NAME.PID.tmp``)."""
    for p in folder.glob(".*.tmp") if folder.is_dir() else []:
        p.unlink(missing_ok=True)


def resolve_resume(cfg: TrainConfig) -> str | None:
    """The checkpoint to resume from: ``resume`` as a path, ``last`` for the run's ``last.ckpt``, or ``auto`` for
    that checkpoint when it exists and a fresh start when it does not (what ``make`` targets use).

    Every checkpoint is read first (:func:`read_checkpoint`, ``weights_only=True``). With ``last`` / ``auto``, an
    unreadable ``last.ckpt`` is skipped, with a message, for the one before it (:data:`PREVIOUS_LAST`).

    Raises:
        HandposeError: the named checkpoint does not exist (``auto`` does not raise for that), or no checkpoint
            there can be read (truncated, empty, hostile).
    """
    if not cfg.resume:
        return None
    if cfg.resume not in ("last", "auto"):
        path = Path(cfg.resume)
        if not path.is_file():
            raise HandposeError(f"resume: checkpoint {path} not found")
        read_checkpoint(path)
        return str(path)
    folder = cfg.run_dir / "checkpoints"
    present = [p for p in (folder / "last.ckpt", folder / PREVIOUS_LAST) if p.is_file()]
    if not present:
        if cfg.resume == "auto":
            return None
        raise HandposeError(f"resume: checkpoint {folder / 'last.ckpt'} not found")
    problems = []
    for path in present:
        try:
            ck = read_checkpoint(path)
        except HandposeError as e:
            problems.append(str(e))
            continue
        if problems:  # the unreadable last.ckpt is set aside, so it never becomes the "previous" one
            present[0].replace(present[0].with_name("last.ckpt.unreadable"))
            print(f"resume: skipped {'; '.join(problems)} (kept as last.ckpt.unreadable); going on from {path} "
                  f"(epoch {ck['epoch'] + 1})", file=sys.stderr, flush=True)
        return str(path)
    raise HandposeError(f"resume: no readable checkpoint in {folder}: {'; '.join(problems)}; delete them to start "
                        "afresh")


def _save_bundle(bundle: ModelBundle, path: Path) -> None:
    """Write ``model.pt`` atomically (a half-written file would count as a finished stage)."""
    try:
        atomic_write(path, lambda f: torch.save(bundle.to_dict(), f))
    except OSError as e:
        raise HandposeError(f"{path} could not be written ({e.strerror or e})") from e


def _finished(model: Path) -> bool:
    """True when a stage's ``model.pt`` exists and loads; an unreadable one is reported and its stage run again."""
    if not model.is_file():
        return False
    try:
        load_model(model)
    except HandposeError as e:
        print(f"resume: {e}; training that stage again", file=sys.stderr, flush=True)
        return False
    return True


def train(cfg: TrainConfig, progress: bool = True) -> dict:
    """Run a training, or its ``stages`` one after the other (see :class:`TrainConfig`).

    With ``resume=last`` (or ``auto``), stages that finished (their ``model.pt`` exists) are skipped and the one
    in progress goes on from its last checkpoint.

    Returns:
        As :func:`train_single`, for the last stage, plus ``"stages"``: the result of each stage.

    Raises:
        HandposeError: for configuration and data errors, before training starts.
    """
    if not cfg.stages:
        return train_single(cfg, progress)
    results = []
    init = cfg.init_weights
    for i, overrides in enumerate(cfg.stages, start=1):
        # later stages start from the previous stage's weights, not again from the pretrained ones
        later = {"pretrained": "", "normalize": normalization_name(cfg)} if i > 1 else {}
        stage_cfg = dataclasses.replace(cfg, **{**overrides, "stages": [], "name": f"{cfg.name}/stage{i}",
                                                "init_weights": init, "resume": "", **later})
        done = stage_cfg.run_dir / "model.pt"
        if cfg.resume in ("last", "auto") and _finished(done):
            results.append({"model": str(done), "skipped": True})
        else:
            saved = [stage_cfg.run_dir / "checkpoints" / n for n in ("last.ckpt", PREVIOUS_LAST)]
            if cfg.resume in ("last", "auto") and any(p.is_file() for p in saved):
                stage_cfg.resume = "last"
            results.append(train_single(stage_cfg, progress))
        init = results[-1]["model"]
    check_writable(cfg.run_dir, "run folder")
    cfg.save(cfg.run_dir / "config.yaml")
    # the run's model is the last stage's, its card counting the minutes of every stage (finished ones included)
    bundles = [load_model(r["model"]) for r in results]  # the last one is ``init``
    stage_minutes = [float(b.card.get("train_minutes", 0.0)) for b in bundles]
    bundle = bundles[-1]
    bundle.card = {**bundle.card, "train_minutes": round(sum(stage_minutes), 2), "stage_minutes": stage_minutes}
    _save_bundle(bundle, cfg.run_dir / "model.pt")
    return {**results[-1], "model": str(cfg.run_dir / "model.pt"), "stages": results,
            "minutes": round(sum(stage_minutes), 2)}


#: Crops of each kind the presence head is refitted on (a quarter held out to measure it).
PRESENCE_CROPS = 1000


def _pick_records(train_ds: Dataset, seed: int) -> np.ndarray:
    """Up to :data:`PRESENCE_CROPS` distinct record indices of ``train_ds``, drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    return rng.choice(len(train_ds), min(PRESENCE_CROPS, len(train_ds)), replace=False)


def refit_presence(bundle: ModelBundle, train_ds: Dataset, cfg: TrainConfig) -> dict:
    """Refit the presence head of a trained landmark network (:func:`handpose.presence.fit_logistic_head`) on up to
    :data:`PRESENCE_CROPS` un-augmented training crops and as many random crops of the ``presence_negatives``
    photos; prints and returns its report.

    Raises:
        HandposeError: a network without a presence head, or no photos in ``presence_negatives``.
    """
    from handpose.data.keying import photo_files
    from handpose.presence import fit_logistic_head, negative_crops

    picked = _pick_records(train_ds, cfg.seed)
    hands = np.stack([train_ds.raw(int(i))[0] for i in picked])
    photos = photo_files(cfg.presence_negatives, "presence_negatives")
    others = negative_crops(photos, len(hands), tuple(cfg.input_size), cfg.pad_mode, cfg.seed)
    report = fit_logistic_head(bundle, hands, others, seed=cfg.seed)
    print(f"presence head refitted on {report['fit']} crops: held-out ROC AUC {report['auc_before']:.4f} -> "
          f"{report['auc_held_out']:.4f}, median presence on hands {report['positives_median']:.3f}, on other crops "
          f"{report['negatives_median']:.4f}", flush=True)
    return report


#: A training crop's handedness label is the teacher's when the teacher is at least this sure (p < 0.2 or > 0.8).
HANDEDNESS_SURE = 0.3


def refit_handedness(bundle: ModelBundle, train_ds: Dataset, cfg: TrainConfig) -> dict:
    """Refit the handedness head of a trained landmark network on up to :data:`PRESENCE_CROPS` training crops,
    labelled right or left by the unchanged ``handedness_teacher`` network on the same records (those it is sure of,
    :data:`HANDEDNESS_SURE`), each also mirrored with the other label; prints and returns the report of
    :func:`handpose.presence.fit_logistic_head` (positives: right, negatives: left) with ``"teacher"`` and
    ``"sure"`` (the share of crops labelled).

    Raises:
        HandposeError: a teacher or student without a handedness head, or too few sure crops of a side.
    """
    from handpose.data.dataset import load_input, normalise
    from handpose.presence import fit_logistic_head

    teacher = load_model(cfg.handedness_teacher)
    if not hasattr(teacher.network, "landmarks"):
        raise HandposeError(f"handedness_teacher {cfg.handedness_teacher!r} has no handedness output")
    picked = _pick_records(train_ds, cfg.seed + 1)
    p_right = []
    with torch.inference_mode():  # the teacher on its own crops of the same records, 64 at a time
        for chunk in np.array_split(picked, max(1, len(picked) // 64)):
            x = torch.stack([normalise(load_input(train_ds.records[int(i)], teacher.input_size, teacher.pad_mode)[0],
                                       teacher.mean, teacher.std) for i in chunk])
            p_right += teacher.network.landmarks(x).handedness.tolist()
    p_right = np.asarray(p_right)
    right, left = picked[p_right > 0.5 + HANDEDNESS_SURE], picked[p_right < 0.5 - HANDEDNESS_SURE]
    shape = (0, *train_ds.raw(0)[0].shape)
    crops = {side: np.stack([train_ds.raw(int(i))[0] for i in ids]) if len(ids) else np.zeros(shape, np.uint8)
             for side, ids in (("right", right), ("left", left))}
    # a mirrored right hand is a left hand: both sides get every sure crop
    rights = np.concatenate([crops["right"], crops["left"][:, :, ::-1]])
    lefts = np.concatenate([crops["left"], crops["right"][:, :, ::-1]])
    report = fit_logistic_head(bundle, rights, lefts, seed=cfg.seed, head="handedness_head")
    report = {**report, "teacher": cfg.handedness_teacher, "sure": round((len(right) + len(left)) / len(picked), 4)}
    print(f"handedness head refitted on {report['fit']} crops the teacher was sure of ({len(right)} right, "
          f"{len(left)} left): held-out agreement ROC AUC {report['auc_before']:.4f} -> {report['auc_held_out']:.4f}",
          flush=True)
    return report


def _fit_minutes(trainer: L.Trainer, t0: float) -> float:
    """Minutes of fitting, counting the earlier parts of a resumed run: Lightning's ``Timer`` (present when
    ``max_minutes`` is set) keeps the elapsed time in its checkpoints; without it, this process's wall clock."""
    timer = next((c for c in trainer.callbacks if isinstance(c, Timer)), None)
    return (timer.time_elapsed("train") if timer is not None else time.time() - t0) / 60.0


def train_single(cfg: TrainConfig, progress: bool = True) -> dict:
    """Run one training: data checks, Lightning fit with checkpoints, then export ``model.pt`` from the best one.

    Writes into ``cfg.run_dir``: ``config.yaml`` (resolved), ``checkpoints/{best,last}.ckpt``, CSV logs under
    ``logs/`` with their curves in ``results.png`` (:mod:`handpose.plots`), and ``model.pt`` (a
    :class:`~handpose.bundle.ModelBundle`).

    Returns:
        ``{"model": path, "best_checkpoint": path, "monitor": name, "best_score": float, "epochs": int,
        "minutes": float}``; the best checkpoint has the lowest ``val_epe_px`` (top-down models, unless
        ``checkpoint_monitor: val_loss``) or ``val_loss`` (bottom-up); with ``checkpoint_monitor: last``,
        ``model.pt`` is exported from the last epoch instead.

    Raises:
        HandposeError: for configuration and data errors, before training starts.
    """
    resume = resolve_resume(cfg)
    # a read-only run folder fails here, not after the training (Lightning would go on without checkpoints)
    check_writable(cfg.run_dir, "run folder")
    _stale_temporaries(check_writable(cfg.run_dir / "checkpoints", "checkpoint folder"))
    malloc_tuned = tune_malloc(cfg.tune_malloc)
    L.seed_everything(cfg.seed, workers=True)
    try:
        probe = create_model(cfg.model, config_skeleton(cfg).num_keypoints, cfg.input_size, num_limbs=1,
                             **cfg.model_kwargs)
    except (TypeError, ValueError) as e:
        raise HandposeError(f"config: model {cfg.model!r} with model_kwargs {cfg.model_kwargs}: {e}") from e
    kind = output_kind(probe)
    if cfg.loss not in LOSSES_FOR[kind]:
        raise HandposeError(f"config: loss {cfg.loss!r} does not fit a {kind} model; use one of {LOSSES_FOR[kind]}")
    train_ds, val_ds, meta, sampling = build_datasets(cfg, kind, int(getattr(probe, "stride", 1)))
    meta["card"]["config"] = cfg.to_dict()
    run_dir = cfg.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg.save(run_dir / "config.yaml")
    module = KeypointModule(meta, cfg.to_dict())
    loader_kw = {"num_workers": cfg.num_workers, "persistent_workers": cfg.num_workers > 0}
    if sampling is None:
        order = {"shuffle": True}
    else:  # drawn with replacement: batches_per_epoch batches, or one pass's worth
        samples = cfg.batches_per_epoch * cfg.batch_size or len(train_ds)
        order = {"sampler": WeightedRandomSampler(torch.from_numpy(sampling), samples, replacement=True)}
    train_dl = DataLoader(train_ds, batch_size=cfg.batch_size, drop_last=len(train_ds) > cfg.batch_size, **order,
                          **loader_kw)
    val_dl = ([DataLoader(ds, batch_size=cfg.batch_size, shuffle=False, **loader_kw) for ds in val_ds]
              if isinstance(val_ds, list) else DataLoader(val_ds, batch_size=cfg.batch_size, shuffle=False,
                                                          **loader_kw))
    # "best" is the lowest validation keypoint error where the model reports it (top-down), else the lowest loss
    monitor = "val_loss" if kind == "paf" or cfg.checkpoint_monitor == "val_loss" else "val_epe_px"
    ckpt = ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="best", monitor=monitor, mode="min")
    # Lightning's save_last only writes when a better checkpoint was saved; this one writes every epoch (and on
    # an exception), so a stopped run resumes from where it stopped.
    last = ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="last", monitor=None, save_top_k=1,
                           enable_version_counter=False, save_on_exception=True)
    callbacks = [ckpt, last, LearningRateMonitor()]
    if cfg.early_stop_patience:
        callbacks.append(EarlyStopping("val_loss", patience=cfg.early_stop_patience, mode="min"))
    if progress:
        callbacks.append(TrainProgressBar())  # epochs from 1, metrics with their units, whole-run ETA
    trainer = L.Trainer(
        accelerator=cfg.accelerator, devices=cfg.devices, strategy=cfg.strategy, precision=cfg.precision,
        max_epochs=cfg.max_epochs, max_time={"minutes": cfg.max_minutes} if cfg.max_minutes else None,
        limit_train_batches=cfg.limit_train_batches or None, check_val_every_n_epoch=max(1, cfg.val_every),
        callbacks=callbacks, plugins=[AtomicCheckpointIO()],
        logger=CSVLogger(run_dir, name="logs"), default_root_dir=run_dir, enable_progress_bar=progress,
        log_every_n_steps=1, deterministic=False,
    )
    t0 = time.time()
    try:
        trainer.fit(module, train_dl, val_dl, ckpt_path=resume, weights_only=True)
    except SystemExit as e:  # Lightning ends a run stopped by SIGTERM with SystemExit(0), by Ctrl-C with exit(1)
        if trainer.state.status != TrainerStatus.INTERRUPTED:
            raise
        code = 143 if trainer.received_sigterm else 130
        print(f"training stopped by {'SIGTERM' if code == 143 else 'Ctrl-C'}; go on from "
              f"{run_dir / 'checkpoints' / 'last.ckpt'} with resume=last", file=sys.stderr, flush=True)
        raise SystemExit(code) from e
    minutes = _fit_minutes(trainer, t0)
    best = last.best_model_path if cfg.checkpoint_monitor == "last" else ckpt.best_model_path or last.best_model_path
    score = ckpt.best_model_score if cfg.checkpoint_monitor != "last" else None
    result = {"best_checkpoint": best, "epochs": int(trainer.current_epoch), "minutes": round(minutes, 2),
              "malloc_tuned": malloc_tuned, "monitor": "last" if cfg.checkpoint_monitor == "last" else monitor,
              "best_score": float(score) if score is not None else float("nan")}
    if trainer.is_global_zero and best:
        state = read_checkpoint(best)
        module.load_state_dict(state["state_dict"])
        bundle = ModelBundle(module.network, Skeleton.from_dict(meta["skeleton"]), module.codec, meta["mean"],
                             meta["std"], cfg.model, dict(cfg.model_kwargs),
                             {**meta["card"], "train_minutes": round(minutes, 2), "epochs": result["epochs"],
                              f"best_{result['monitor']}": result["best_score"]}, cfg.pad_mode)
        if cfg.presence_negatives:
            result["presence"] = bundle.card["presence"] = refit_presence(bundle, train_ds, cfg)
        if cfg.handedness_teacher:
            result["handedness"] = bundle.card["handedness"] = refit_handedness(bundle, train_ds, cfg)
        _save_bundle(bundle, run_dir / "model.pt")
        result["model"] = str(run_dir / "model.pt")
    if trainer.is_global_zero:  # loss, learning rate and validation error curves from the CSV log
        result["results_png"] = str(plot_training_curves(run_dir))
    return result

