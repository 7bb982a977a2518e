"""Training on Lightning: the LightningModule for heatmap models and the Trainer set-up."""

from __future__ import annotations

import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint, RichProgressBar
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader

from handpose.bundle import FORMAT, ModelBundle
from handpose.codecs import codec_to_dict, make_codec
from handpose.config import TrainConfig
from handpose.data.coco import load_coco
from handpose.data.dataset import KeypointDataset, channel_stats
from handpose.data.freihand import load_freihand
from handpose.data.records import Record
from handpose.data.transforms import AugmentConfig
from handpose.errors import HandposeError
from handpose.losses import LOSSES, LOSSES_FOR
from handpose.models.zoo import create_model, output_kind
from handpose.runtime import tune_malloc
from handpose.skeleton import Skeleton, get_skeleton


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
                                    **bundle["arch_kwargs"])
        self.codec = make_codec(input_size=bundle["input_size"], **bundle["codec"])
        self.loss_fn = LOSSES[self.cfg.loss]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)

    def _step(self, batch: dict, stage: str) -> torch.Tensor:
        pred = self.network(batch["image"])
        loss = self.loss_fn(pred, batch["target"], batch["weights"])
        bs = batch["image"].shape[0]
        self.log(f"{stage}_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=bs, sync_dist=True)
        if stage == "val":
            xy, _ = self.codec.decode(pred)
            err = (xy - batch["keypoints"]).norm(dim=-1)
            mask = batch["visible"] > 0
            epe = (err * mask).sum() / mask.sum().clamp(min=1)
            self.log("val_epe_px", epe, on_step=False, on_epoch=True, prog_bar=True, batch_size=bs, sync_dist=True)
        return loss

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "val")

    def configure_optimizers(self):
        cfg = self.cfg
        if cfg.optimizer == "adam":
            opt = torch.optim.Adam(self.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        else:
            opt = torch.optim.SGD(self.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=cfg.lr_factor,
                                                           patience=cfg.lr_patience)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": cfg.lr_monitor, "interval": "epoch"}}


def load_records(cfg: TrainConfig, split: str) -> tuple[list[Record], Skeleton]:
    """Records of the ``train`` or ``val`` split named by the config, and their Skeleton.

    Raises:
        HandposeError: missing data paths or any reader error.
    """
    limit = cfg.limit_records or None
    if cfg.dataset == "freihand":
        if not cfg.data_root:
            raise HandposeError("config: dataset 'freihand' needs data_root")
        skeleton = get_skeleton(cfg.skeleton or "hand21")
        return load_freihand(cfg.data_root, split, cfg.split, skeleton, limit), skeleton
    ann, images = (cfg.train_ann, cfg.train_images) if split == "train" else (cfg.val_ann, cfg.val_images)
    if not ann or not images:
        raise HandposeError(f"config: dataset 'coco' needs {split}_ann and {split}_images")
    skeleton = get_skeleton(cfg.skeleton) if cfg.skeleton else None
    records, skeleton = load_coco(ann, images, skeleton, margin=cfg.box_margin, per_instance=True)
    return records[:limit] if limit else records, skeleton


def build_datasets(cfg: TrainConfig, codec_kind: str, network_stride: int
                   ) -> tuple[KeypointDataset, KeypointDataset, dict]:
    """Train and val datasets plus the bundle metadata (mean/std computed on the train split).

    Raises:
        HandposeError: data errors, or train and val splits with different keypoint sets.
    """
    train_records, skeleton = load_records(cfg, "train")
    val_records, val_skeleton = load_records(cfg, "val")
    if val_skeleton.num_keypoints != skeleton.num_keypoints:
        raise HandposeError(f"train data has {skeleton.num_keypoints} keypoints but val data "
                            f"{val_skeleton.num_keypoints}")
    codec = make_codec(codec_kind, cfg.input_size, network_stride, cfg.sigma, cfg.decode)
    aug = AugmentConfig(cfg.aug_rotate, cfg.aug_scale, cfg.aug_translate, cfg.aug_flip, cfg.aug_colour, cfg.aug_grey)
    train_ds = KeypointDataset(train_records, skeleton, codec, augment=aug, cache=cfg.cache)
    mean, std = channel_stats(KeypointDataset(train_records, skeleton, codec, cache=cfg.cache)
                              if not cfg.cache else train_ds)
    train_ds.mean, train_ds.std = mean, std
    val_ds = KeypointDataset(val_records, skeleton, codec, mean, std, augment=None, cache=cfg.cache)
    meta = {
        "format": FORMAT,
        "arch": cfg.model,
        "arch_kwargs": dict(cfg.model_kwargs),
        "skeleton": skeleton.to_dict(),
        "input_size": list(cfg.input_size),
        "codec": codec_to_dict(codec),
        "mean": mean,
        "std": std,
        "card": {"train_records": len(train_records), "val_records": len(val_records)},
    }
    return train_ds, val_ds, meta


def resolve_resume(cfg: TrainConfig) -> str | None:
    """The checkpoint to resume from: ``resume`` as a path, or ``last`` for the run's ``last.ckpt``.

    Raises:
        HandposeError: the named checkpoint does not exist.
    """
    if not cfg.resume:
        return None
    path = cfg.run_dir / "checkpoints" / "last.ckpt" if cfg.resume == "last" else Path(cfg.resume)
    if not path.is_file():
        raise HandposeError(f"resume: checkpoint {path} not found")
    return str(path)


def train(cfg: TrainConfig, progress: bool = True) -> dict:
    """Run a training: data checks, Lightning fit with checkpoints, then export ``model.pt`` from the best one.

    Writes into ``cfg.run_dir``: ``config.yaml`` (resolved), ``checkpoints/{best,last}.ckpt``, CSV logs under
    ``logs/``, and ``model.pt`` (a :class:`~handpose.bundle.ModelBundle`).

    Returns:
        ``{"model": path, "best_checkpoint": path, "best_val_loss": float, "epochs": int, "minutes": float}``.

    Raises:
        HandposeError: for configuration and data errors, before training starts.
    """
    resume = resolve_resume(cfg)
    malloc_tuned = tune_malloc(cfg.tune_malloc)
    L.seed_everything(cfg.seed, workers=True)
    try:
        probe = create_model(cfg.model, 1, cfg.input_size, **cfg.model_kwargs)
    except (TypeError, ValueError) as e:
        raise HandposeError(f"config: model {cfg.model!r} with model_kwargs {cfg.model_kwargs}: {e}") from e
    kind = output_kind(probe)
    if cfg.loss not in LOSSES_FOR[kind]:
        raise HandposeError(f"config: loss {cfg.loss!r} does not fit a {kind} model; use one of {LOSSES_FOR[kind]}")
    train_ds, val_ds, meta = build_datasets(cfg, kind, int(getattr(probe, "stride", 1)))
    meta["card"]["config"] = cfg.to_dict()
    run_dir = cfg.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg.save(run_dir / "config.yaml")
    module = KeypointModule(meta, cfg.to_dict())
    loader_kw = {"num_workers": cfg.num_workers, "persistent_workers": cfg.num_workers > 0}
    train_dl = DataLoader(train_ds, batch_size=cfg.batch_size, shuffle=True, drop_last=len(train_ds) > cfg.batch_size,
                          **loader_kw)
    val_dl = DataLoader(val_ds, batch_size=cfg.batch_size, shuffle=False, **loader_kw)
    ckpt = ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="best", monitor="val_loss", mode="min",
                           save_last=True)
    callbacks = [ckpt, LearningRateMonitor("epoch")]
    if cfg.early_stop_patience:
        callbacks.append(EarlyStopping("val_loss", patience=cfg.early_stop_patience, mode="min"))
    if progress:
        callbacks.append(RichProgressBar())
    trainer = L.Trainer(
        accelerator=cfg.accelerator, devices=cfg.devices, strategy=cfg.strategy, precision=cfg.precision,
        max_epochs=cfg.max_epochs, max_time={"minutes": cfg.max_minutes} if cfg.max_minutes else None,
        limit_train_batches=cfg.limit_train_batches or None, callbacks=callbacks,
        logger=CSVLogger(run_dir, name="logs"), default_root_dir=run_dir, enable_progress_bar=progress,
        log_every_n_steps=1, deterministic=False,
    )
    t0 = time.time()
    trainer.fit(module, train_dl, val_dl, ckpt_path=resume)
    minutes = (time.time() - t0) / 60.0
    best = ckpt.best_model_path or ckpt.last_model_path
    result = {"best_checkpoint": best, "epochs": int(trainer.current_epoch), "minutes": round(minutes, 2),
              "malloc_tuned": malloc_tuned,
              "best_val_loss": float(ckpt.best_model_score) if ckpt.best_model_score is not None else float("nan")}
    if trainer.is_global_zero and best:
        state = torch.load(best, map_location="cpu", weights_only=True)
        module.load_state_dict(state["state_dict"])
        bundle = ModelBundle(module.network, Skeleton.from_dict(meta["skeleton"]), module.codec, meta["mean"],
                             meta["std"], cfg.model, dict(cfg.model_kwargs),
                             {**meta["card"], "train_minutes": round(minutes, 2), "epochs": result["epochs"],
                              "best_val_loss": result["best_val_loss"]})
        bundle.save(run_dir / "model.pt")
        result["model"] = str(run_dir / "model.pt")
    return result

