"""Training configuration: one flat dataclass, loaded from flat YAML and overridable with ``key=value``."""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import os
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from handpose.errors import HandposeError

#: One line of help per :class:`TrainConfig` field, by section, in field order: the class docstring and
#: ``handpose config`` are both made from it (the one place to edit).
FIELD_HELP: dict[str, dict[str, str]] = {
    "Data": {
        "dataset": "``freihand`` (a FreiHAND-layout folder) or ``coco`` (COCO keypoints json + image folder).",
        "data_root": "the FreiHAND folder.",
        "split": "train / val / test shares of the FreiHAND ids (80/15/5 as in the tutorial).",
        "train_ann": "COCO json of the train split.",
        "train_images": "image folder of ``train_ann``.",
        "val_ann": "COCO json of the validation split.",
        "val_images": "image folder of ``val_ann``.",
        "extra_train": "more labelled sets added to the train split, each ``{ann: COCO json, images: folder}`` with "
                       "the same keypoints as the main set (e.g. in-the-wild COCO hands beside FreiHAND photos); "
                       "validation stays on the main set.",
        "train_sets": "several labelled sets mixed in one training, instead of ``dataset`` / ``train_ann`` / "
                      "``extra_train``: a list of ``{name, ann, images}`` (COCO) or ``{name, freihand, split}`` (a "
                      "FreiHAND-layout folder and its ``train`` / ``val`` / ``test`` part of ``split``), each with "
                      "optional ``weight`` (its share of every epoch's samples, relative to the other sets'; default "
                      "1: all sets equally often, drawn with replacement), ``loss_weight`` (default 1; e.g. 0.5 for "
                      "teacher labels), ``teacher: true`` (each annotation's loss weight also falls linearly with its "
                      "``teacher_disagreement``, to 0 at the 6 % the labels were accepted at) and ``green_screen`` "
                      "(probability of keying the green screen out onto a ``backgrounds`` photo).",
        "val_sets": "with ``train_sets``: the validation sets, same form (no weights); each is reported as "
                    "``val_epe_px/<name>``, and the first one also as ``val_epe_px`` / ``val_loss``, which pick the "
                    "best checkpoint.",
        "backgrounds": "a folder of real photos that ``green_screen`` sets are pasted onto.",
        "presence_negatives": "a folder of photos: after training, the presence head of a MediaPipe landmark network "
                              "is refitted on training hand crops against random crops of these photos "
                              "(:mod:`handpose.presence`; fine-tuning the trunk leaves that head uncalibrated).",
        "handedness_teacher": "a model name or file (e.g. ``mediapipe_hand_full``): after training, the handedness "
                              "head of a MediaPipe landmark network is refitted on training crops that this unchanged "
                              "network is sure are right or left hands.",
        "box_margin": "COCO crops: bbox grown by this share of its longer side on each side (kept in the model "
                      "card: ``handpose evaluate`` crops with it by default).",
        "allow_outside_images": "COCO: accept image ``file_name`` entries that leave the images folder (absolute, "
                                "or with ``..``); refused by default.",
        "skeleton": "built-in Skeleton name; empty for COCO means the json's category.",
        "flip_pairs": "``[[left, right], ...]`` keypoints (0-based indices or names) swapped by a horizontal flip "
                      "(for sets with left and right parts; a single hand has none). Replaces the COCO category's "
                      "``flip_pairs``; a set whose names say left and right is refused without them when "
                      "``aug_flip`` > 0.",
        "oks_sigmas": "K per-keypoint OKS sigmas for COCO AP (replaces the category's ``sigmas``; default the "
                      "built-in set's, else 0.025 each).",
        "keypoint_groups": "K group names, for drawing colours and per-group errors (replaces the category's "
                           "``groups``).",
        "keypoint_colours": "``{group: [r, g, b] or '#rrggbb'}``, or K colours (one per keypoint), for drawing "
                            "(replaces the category's ``colours``).",
        "grouping_root": "bottom-up models: the keypoint (name or 0-based index) grouping starts from (replaces the "
                         "category's ``root``; default keypoint 0).",
        "limit_records": "read at most this many records per split (0: all), for quick runs.",
    },
    "Model and targets": {
        "model": "a name from ``handpose.models.MODELS``.",
        "model_kwargs": "the model builder's arguments.",
        "input_size": "model input ``[width, height]`` in pixels (an int means square); images and crops are "
                      "letterboxed into it.",
        "pad_mode": "letterbox border: ``constant`` (black) or ``border`` (edge pixels repeated).",
        "sigma": "heatmap Gaussian sigma, in heatmap cells.",
        "decode": "heatmap decoding: ``subpixel``, ``average`` or ``argmax``.",
        "loss": "heatmap models ``iou`` (the hand tutorial's) or ``mse``; regression models ``l1`` (the small-data "
                "tutorial's) or ``mse``; bottom-up models ``l2`` (masked, summed over stages).",
        "paf_width": "bottom-up models: half-width of a limb's part affinity field (PAF), in cells.",
        "mosaic_root": "bottom-up models: a FreiHAND-layout folder whose train-split photos are composed into 2x2 "
                       "mosaics.",
        "mosaic_prob": "bottom-up models: probability of a mosaic instead of a data set image.",
        "composite_sets": "bottom-up models: hand sets (entries as ``train_sets``': ``{name, ann, images}`` or "
                          "``{name, freihand, split}``, with ``weight``; train splits only) whose hands are pasted "
                          "into ``composite_backgrounds`` photos (:class:`handpose.data.composite.CompositeSource`).",
        "composite_backgrounds": "bottom-up models: ``{ann, images}`` of COCO person photos the composites are made "
                                 "on (only those whose people all have both wrists labelled; their hands are masked "
                                 "out of the loss).",
        "composite_prob": "bottom-up models: probability of a composite instead of a data set image.",
        "composite_hands": "bottom-up models: ``[min, max]`` hands per composite.",
        "composite_hand_sizes": "bottom-up models: ``[min, max]`` hand size in a composite (longer side of the "
                                "keypoint box, input pixels), drawn log-uniformly per composite.",
        "crop_scale": "bottom-up models: ``[min, max]`` input pixels per photo pixel: data set images are cut into "
                      "``input_size`` windows at a scale drawn from this range instead of letterboxed whole (empty: "
                      "letterboxed).",
        "predict_size": "bottom-up models: the input ``[width, height]`` written into the model file, into which "
                        "whole photos are letterboxed at prediction (the network is fully convolutional; training "
                        "uses ``input_size``); empty: ``input_size``.",
        "predict_upsample": "bottom-up models: the maps are enlarged this many times before grouping at prediction "
                            "(written into the model file; :class:`handpose.codecs.PafCodec`).",
    },
    "Optimisation": {
        "optimizer": "``adam`` or ``sgd``.",
        "lr": "learning rate (the peak of a one-cycle schedule).",
        "momentum": "SGD momentum.",
        "weight_decay": "L2 weight decay.",
        "batch_size": "images per training step.",
        "max_epochs": "epochs to train (per stage).",
        "max_minutes": "stop after this many minutes of training (0: no limit).",
        "limit_train_batches": "a cap on batches per epoch (0: all).",
        "batches_per_epoch": "batches drawn with replacement per epoch, whatever the data size (0: one pass over the "
                             "train split; the hand tutorial trains 50 batches per epoch). ``train_sets`` with "
                             "weights draw their epochs this way too (one pass's worth when 0).",
        "val_every": "validate every N epochs (for tiny sets whose epochs are a few steps).",
        "lr_factor": "plateau schedule: learning rate multiplied by this when ``lr_monitor`` stops falling.",
        "lr_patience": "plateau schedule: epochs without a lower ``lr_monitor`` before the rate drops.",
        "lr_monitor": "plateau schedule: the logged value watched (``train_loss``, ``val_loss``, ``val_epe_px``).",
        "early_stop_patience": "stop after this many epochs without a lower ``val_loss`` (0: off).",
        "checkpoint_monitor": "``val_epe_px``: ``best.ckpt`` and ``model.pt`` hold the epoch with the lowest "
                              "validation keypoint error; ``val_loss``: the lowest loss; ``last``: the last epoch, "
                              "for runs whose validation set does not track what is wanted (such as the bottom-up "
                              "hand run whose held-out loss stayed flat while its keypoints improved).",
        "schedule": "``plateau`` (``lr_factor`` / ``lr_patience`` / ``lr_monitor``) or ``onecycle``: the one-cycle "
                    "policy (Smith, 2018; torch ``OneCycleLR``: learning rate up to ``lr`` and down, Adam's beta1 / "
                    "SGD momentum 0.95 -> 0.85 -> 0.95).",
        "cycle_epochs": "onecycle: length of one cycle in epochs, repeated as the small-data tutorial does.",
        "freeze_backbone": "train only the head of a backbone model.",
        "freeze_bn": "BatchNorm layers normalise with their running statistics during training too and keep them "
                     "(for pretrained networks whose BatchNorm was folded into the convolutions and is imported as "
                     "an identity, and for small batches).",
        "init_weights": "start from the network weights of a model file, checkpoint or bundled model name (all "
                        "must fit).",
        "pretrained": "start from pretrained weights, loading every tensor that fits (the log says what was loaded "
                      "and what stayed random): a shipped name (``handpose import-weights --list``), a converted "
                      "``.pt``, an original ``.onnx`` / ``.tflite`` / OpenVINO ``.xml``, a handpose model or a "
                      "torchvision state_dict.",
        "normalize": "input normalisation: ``dataset`` (the train split's channel statistics, as the hand "
                     "tutorial), ``imagenet``, ``unit`` ([0, 1]), ``symmetric`` ([-1, 1]), ``openpose``; empty: the "
                     "pretrained network's own when ``pretrained`` is a known source, else ``dataset``.",
    },
    "Augmentation": {
        "aug_rotate": "maximum rotation, degrees.",
        "aug_scale": "maximum scale change, share of the size.",
        "aug_translate": "maximum shift, share of the size.",
        "aug_flip": "probability of a horizontal flip.",
        "aug_colour": "colour jitter strength.",
        "aug_grey": "probability of a greyscale image.",
        "aug_perspective": "maximum corner shift of a perspective warp, share of the size.",
        "aug_brightness": "maximum brightness change (unset: ``aug_colour``).",
        "aug_contrast": "maximum contrast change (unset: ``aug_colour``).",
        "aug_blur": "probability of a Gaussian or motion blur.",
        "aug_occlusion": "probability of 1-3 random-colour rectangles over the crop (synthetic occlusion; the "
                         "keypoints under them stay labelled).",
        "aug_lowres": "probability of a low-resolution crop: shrunk to 10-50 % of its side and enlarged back, as a "
                      "small hand of a whole photo enlarged into the input.",
        "aug_upright": "``[a, b]`` keypoint indices: each crop is first turned so that a -> b points up "
                       "(``aug_rotate`` then draws the deviation), as a top-down pipeline's crops are (HAND21: "
                       "``[0, 9]``, wrist -> middle-finger base, MediaPipe's rule); empty: no turning.",
    },
    "Run": {
        "seed": "random seed.",
        "accelerator": "passed to Lightning (``cpu``, ``gpu``, ``auto``).",
        "devices": "passed to Lightning.",
        "strategy": "passed to Lightning.",
        "precision": "passed to Lightning (``32-true``, ``bf16-mixed``, ...).",
        "num_workers": "data loader processes.",
        "cache": "decode all crops once into memory.",
        "cache_dir": "instead of ``cache``, decode the crops into this folder, reused by later runs.",
        "tune_malloc": "tune the glibc allocator (see :func:`handpose.runtime.tune_malloc`).",
        "out_dir": "the folder of runs (relative to the current folder, also in a config file, whose other paths are "
                   "relative to its own folder).",
        "name": "the run's folder name under ``out_dir``.",
        "resume": "a checkpoint path (relative to the current folder), ``last`` for the run's last checkpoint, or "
                  "``auto``: that one if it exists.",
        "stages": "a list of mappings of overrides (e.g. ``{max_epochs: 50, freeze_backbone: true}``), run one after "
                  "the other in ``<name>/stage<i>``, each starting from the previous stage's best weights (fresh "
                  "optimiser); the last stage's ``model.pt`` is copied to ``<name>/model.pt``. A ``--set key=value`` "
                  "applies to every stage (a stage's own value included); to change one stage, give ``stages`` whole.",
    },
}


@dataclass
class TrainConfig:
    """Everything a training run needs. Every field can be set in YAML or with ``--set key=value``.

    The field list below is made from :data:`FIELD_HELP` (also shown by ``handpose config``).

    Paths in a config file are relative to the file's folder, as data paths in an Ultralytics data yaml: those of
    :data:`FILE_PATHS`, ``extra_train``'s ``ann`` and ``images``, and ``init_weights``, ``pretrained`` and
    ``model_kwargs.pretrained`` when they are paths rather than names (see :func:`resolve_paths`); ``out_dir`` and
    ``resume`` stay relative to the current folder (where runs are written), as do all ``--set`` values.

    A plain override (``--set max_epochs=5``) applies to every stage: it replaces the key in each of the file's
    ``stages`` that sets it (:func:`apply_overrides`). To change one stage, override ``stages`` whole.
    """

    dataset: str = "freihand"
    data_root: str = ""
    split: list = field(default_factory=lambda: [0.8, 0.15, 0.05])
    train_ann: str = ""
    train_images: str = ""
    val_ann: str = ""
    val_images: str = ""
    extra_train: list = field(default_factory=list)
    train_sets: list = field(default_factory=list)
    val_sets: list = field(default_factory=list)
    backgrounds: str = ""
    presence_negatives: str = ""
    handedness_teacher: str = ""
    box_margin: float = 0.25
    allow_outside_images: bool = False
    skeleton: str = "hand21"
    flip_pairs: list = field(default_factory=list)
    oks_sigmas: list = field(default_factory=list)
    keypoint_groups: list = field(default_factory=list)
    keypoint_colours: dict | list = field(default_factory=dict)
    grouping_root: str | int = ""
    limit_records: int = 0

    model: str = "resunet"
    model_kwargs: dict = field(default_factory=dict)
    input_size: list = field(default_factory=lambda: [128, 128])
    pad_mode: str = "constant"
    sigma: float = 1.5
    decode: str = "subpixel"
    loss: str = "iou"
    paf_width: float = 1.0
    mosaic_root: str = ""
    mosaic_prob: float = 0.0
    composite_sets: list = field(default_factory=list)
    composite_backgrounds: dict = field(default_factory=dict)
    composite_prob: float = 0.0
    composite_hands: list = field(default_factory=lambda: [1, 8])
    composite_hand_sizes: list = field(default_factory=lambda: [12.0, 200.0])
    crop_scale: list = field(default_factory=list)
    predict_size: list = field(default_factory=list)
    predict_upsample: int = 1

    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch_size: int = 32
    max_epochs: int = 1000
    max_minutes: float = 0.0
    limit_train_batches: int = 0
    batches_per_epoch: int = 0
    val_every: int = 1
    lr_factor: float = 0.5
    lr_patience: int = 10
    lr_monitor: str = "train_loss"
    early_stop_patience: int = 40
    checkpoint_monitor: str = "val_epe_px"
    schedule: str = "plateau"
    cycle_epochs: int = 100
    freeze_backbone: bool = False
    freeze_bn: bool = False
    init_weights: str = ""
    pretrained: str = ""
    normalize: str = ""

    aug_rotate: float = 30.0
    aug_scale: float = 0.2
    aug_translate: float = 0.1
    aug_flip: float = 0.5
    aug_colour: float = 0.3
    aug_grey: float = 0.0
    aug_perspective: float = 0.0
    aug_brightness: float | None = None
    aug_contrast: float | None = None
    aug_blur: float = 0.0
    aug_occlusion: float = 0.0
    aug_lowres: float = 0.0
    aug_upright: list | None = None

    seed: int = 42
    accelerator: str = "cpu"
    devices: int = 1
    strategy: str = "auto"
    precision: str = "32-true"
    num_workers: int = 1
    cache: bool = True
    cache_dir: str = ""
    tune_malloc: bool = True
    out_dir: str = "runs"
    name: str = "run"
    resume: str = ""
    stages: list = field(default_factory=list)

    def __post_init__(self) -> None:
        if isinstance(self.input_size, int):
            self.input_size = [self.input_size, self.input_size]
        self.input_size = [int(v) for v in self.input_size]
        if len(self.input_size) != 2 or min(self.input_size) <= 0:
            raise HandposeError(f"input_size must be [width, height] > 0, got {self.input_size}")
        if self.dataset not in ("freihand", "coco"):
            raise HandposeError(f"dataset must be 'freihand' or 'coco', got {self.dataset!r}")
        if self.loss not in ("iou", "mse", "l1", "l2"):
            raise HandposeError(f"loss must be 'iou', 'mse' (heatmaps), 'l1', 'mse' (regression) or 'l2' (bottom-up), "
                                f"got {self.loss!r}")
        if self.checkpoint_monitor not in ("val_epe_px", "val_loss", "last"):
            raise HandposeError(f"checkpoint_monitor must be 'val_epe_px', 'val_loss' or 'last', "
                                f"got {self.checkpoint_monitor!r}")
        if self.pad_mode not in ("constant", "border"):
            raise HandposeError(f"pad_mode must be 'constant' or 'border', got {self.pad_mode!r}")
        if self.schedule not in ("plateau", "onecycle"):
            raise HandposeError(f"schedule must be 'plateau' or 'onecycle', got {self.schedule!r}")
        for i, extra in enumerate(self.extra_train):
            if not isinstance(extra, dict) or set(extra) != {"ann", "images"}:
                raise HandposeError(f"extra_train[{i}]: expected {{ann: COCO json, images: folder}}, got {extra!r}")
        for key in ("train_sets", "val_sets", "composite_sets"):
            for i, entry in enumerate(getattr(self, key)):
                check_set_entry(entry, f"{key}[{i}]", weights=key != "val_sets")
        if self.composite_sets and set(self.composite_backgrounds) != {"ann", "images"}:
            raise HandposeError(f"composite_sets need composite_backgrounds {{ann: COCO person json, images: folder}}, "
                                f"got {self.composite_backgrounds!r}")
        for key in ("composite_hands", "composite_hand_sizes", "crop_scale", "predict_size"):
            value = getattr(self, key)
            if value and (len(value) != 2 or not all(isinstance(v, (int, float)) and v > 0 for v in value)
                          or (key != "predict_size" and value[0] > value[1])):
                raise HandposeError(f"{key} must be [min, max] > 0 (predict_size: [width, height]), got {value!r}")
        if self.predict_upsample < 1:
            raise HandposeError(f"predict_upsample must be >= 1, got {self.predict_upsample}")
        if self.val_sets and not self.train_sets:
            raise HandposeError("val_sets goes with train_sets (without them, validation is the val split of the "
                                "main set)")
        if self.train_sets and not self.val_sets:
            raise HandposeError("train_sets needs val_sets (the sets the checkpoints are chosen on)")
        if self.train_sets and self.extra_train:
            raise HandposeError("give the extra sets as train_sets entries, not extra_train, when train_sets is set")
        for i, stage in enumerate(self.stages):
            if not isinstance(stage, dict):
                raise HandposeError(f"stages[{i}]: expected a mapping of config overrides, got {stage!r}")
            _check_keys(stage, f"stages[{i}]")
            if "stages" in stage:
                raise HandposeError(f"stages[{i}]: stages cannot be nested")
        if self.normalize not in ("", "dataset", "imagenet", "unit", "symmetric", "openpose"):
            raise HandposeError(f"normalize must be 'dataset', 'imagenet', 'unit', 'symmetric' or 'openpose' (or "
                                f"empty), got {self.normalize!r}")
        if self.optimizer not in ("adam", "sgd"):
            raise HandposeError(f"optimizer must be 'adam' or 'sgd', got {self.optimizer!r}")

    @property
    def run_dir(self) -> Path:
        """``out_dir / name``: checkpoints, logs, the resolved config and the exported model."""
        return Path(self.out_dir) / self.name

    def customise_skeleton(self, skeleton):
        """``skeleton`` with this config's ``flip_pairs``, ``oks_sigmas``, ``keypoint_groups``, ``keypoint_colours``
        and ``grouping_root`` (:meth:`handpose.skeleton.Skeleton.customised`), checked for flips
        (:meth:`~handpose.skeleton.Skeleton.check_flip`).

        Raises:
            HandposeError: an invalid value, or left/right keypoint names without flip pairs while ``aug_flip`` > 0.
        """
        out = skeleton.customised(sigmas=self.oks_sigmas, groups=self.keypoint_groups, colours=self.keypoint_colours,
                                  flip_pairs=self.flip_pairs, root=self.grouping_root, where="config",
                                  keys={"sigmas": "oks_sigmas", "groups": "keypoint_groups",
                                        "colours": "keypoint_colours", "root": "grouping_root"})
        out.check_flip(self.aug_flip, "config")
        return out

    def augment(self):
        """The ``AugmentConfig`` of the ``aug_*`` fields (``aug_rotate`` -> ``rotate``, ...)."""
        from handpose.data.transforms import AugmentConfig

        values = {f.name: getattr(self, f"aug_{f.name}") for f in dataclasses.fields(AugmentConfig)}
        values["upright"] = tuple(int(i) for i in values["upright"]) if values["upright"] else None
        return AugmentConfig(**values)

    def to_dict(self) -> dict:
        """Plain dict of all fields."""
        return dataclasses.asdict(self)

    def save(self, path: str | Path) -> None:
        """Write the resolved config as flat YAML."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w") as f:
            yaml.safe_dump(self.to_dict(), f, sort_keys=False)

#: Keys a ``train_sets`` entry may have besides its source (``ann`` + ``images``, or ``freihand`` + ``split``).
SET_OPTIONS = ("weight", "loss_weight", "teacher", "green_screen")


def check_set_entry(entry, where: str, weights: bool) -> None:
    """Check one ``train_sets`` / ``val_sets`` entry (see :data:`FIELD_HELP`).

    Raises:
        HandposeError: not a mapping, no ``name``, not exactly one source, an unknown key (or a training option in a
            validation set), or a weight that is not a number >= 0 (``green_screen``: a probability or a bool).
    """
    if not isinstance(entry, dict):
        raise HandposeError(f"{where}: expected a mapping {{name, ann, images}} or {{name, freihand, split}}, got "
                            f"{entry!r}")
    if not isinstance(entry.get("name"), str) or not entry["name"]:
        raise HandposeError(f"{where}: needs a name (used in the logs as val_epe_px/<name>)")
    coco, freihand = {"ann", "images"} & set(entry), {"freihand", "split"} & set(entry)
    if not ((coco == {"ann", "images"} and not freihand) or (freihand == {"freihand", "split"} and not coco)):
        raise HandposeError(f"{where} ({entry['name']}): give either ann + images (COCO) or freihand + split")
    if freihand and entry["split"] not in ("train", "val", "test", "all"):
        raise HandposeError(f"{where} ({entry['name']}): split must be train, val, test or all, got {entry['split']!r}")
    allowed = {"name", "ann", "images", "freihand", "split", *(SET_OPTIONS if weights else ())}
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise HandposeError(f"{where} ({entry['name']}): unknown keys {unknown}; allowed {sorted(allowed)}")
    for key in ("weight", "loss_weight"):
        value = entry.get(key, 1.0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise HandposeError(f"{where} ({entry['name']}): {key} must be a number >= 0, got {value!r}")
    g = entry.get("green_screen", 0.0)
    if not isinstance(g, (bool, int, float)) or not 0 <= float(g) <= 1:
        raise HandposeError(f"{where} ({entry['name']}): green_screen must be a probability or true/false, got {g!r}")


#: Fields that are paths: in a config file, relative to the file's folder.
FILE_PATHS = ("data_root", "train_ann", "train_images", "val_ann", "val_images", "mosaic_root", "cache_dir",
              "backgrounds", "presence_negatives")
#: Keys of ``extra_train`` / ``train_sets`` / ``val_sets`` entries that are paths.
SET_PATHS = ("ann", "images", "freihand")
#: Fields that are a path or a name (a bundled model, a shipped pretrained network): resolved when they are a path.
NAME_OR_PATHS = ("init_weights", "pretrained", "handedness_teacher")


def _is_path(value: str, base: Path) -> bool:
    """A path rather than a name: it has a folder separator or a suffix (names have neither), or exists in base."""
    return "/" in value or "\\" in value or bool(Path(value).suffix) or (base / value).exists()


def _absolute(value: str, base: Path) -> str:
    """``value`` (``~`` expanded) joined to ``base`` and normalised (``..`` removed); absolute values are kept."""
    return os.path.abspath(os.path.join(base, os.path.expanduser(value))) if value else value


def resolve_paths(values: dict, base: str | Path) -> dict:
    """The config values of a file in ``base`` with their paths made absolute (a copy; ``stages`` too).

    Resolved: :data:`FILE_PATHS`, ``extra_train``, ``train_sets``, ``val_sets`` and ``composite_sets`` entries' and
    ``composite_backgrounds``' ``ann``, ``images`` and ``freihand``, and :data:`NAME_OR_PATHS` and
    ``model_kwargs.pretrained`` when :func:`_is_path` says they are paths. Left as they are: empty and absolute
    values, ``out_dir`` and ``resume`` (relative to the current folder, where runs live), values of the wrong type
    (refused later by :class:`TrainConfig`).

    Args:
        values: a config mapping as read from the file.
        base: the config file's folder.
    """
    base = Path(base)
    out = dict(values)
    for key in FILE_PATHS:
        if isinstance(out.get(key), str):
            out[key] = _absolute(out[key], base)
    for key in NAME_OR_PATHS:
        if isinstance(out.get(key), str) and out[key] and _is_path(out[key], base):
            out[key] = _absolute(out[key], base)
    kwargs = out.get("model_kwargs")
    if isinstance(kwargs, dict) and isinstance(kwargs.get("pretrained"), str):
        out["model_kwargs"] = {**kwargs, "pretrained": _absolute(kwargs["pretrained"], base)}
    if isinstance(out.get("composite_backgrounds"), dict):
        out["composite_backgrounds"] = {k: _absolute(v, base) if k in SET_PATHS and isinstance(v, str) else v
                                        for k, v in out["composite_backgrounds"].items()}
    for key in ("extra_train", "train_sets", "val_sets", "composite_sets"):
        if isinstance(out.get(key), list):
            out[key] = [{k: _absolute(v, base) if k in SET_PATHS and isinstance(v, str) else v
                         for k, v in e.items()} if isinstance(e, dict) else e for e in out[key]]
    if isinstance(out.get("stages"), list):
        out["stages"] = [resolve_paths(st, base) if isinstance(st, dict) else st for st in out["stages"]]
    return out


def _docstring(intro: str) -> str:
    """``intro`` followed by one wrapped line per field under its section, from :data:`FIELD_HELP`."""
    lines = [inspect.cleandoc(intro), ""]
    for section, helps in FIELD_HELP.items():
        lines.append(f"{section}:")
        for name, text in helps.items():
            lines += textwrap.wrap(f"{name}: {text}", 116, initial_indent="    ", subsequent_indent="        ")
    return "\n".join(lines)


TrainConfig.__doc__ = _docstring(TrainConfig.__doc__)


def config_fields() -> list[dict]:
    """Every :class:`TrainConfig` field in order: ``{"name", "type", "default", "help", "section"}``.

    ``type`` is the annotation as written (``"float | None"``), ``default`` the default value (a fresh copy for
    lists and dicts), ``help`` its line of :data:`FIELD_HELP`.
    """
    section_of = {name: section for section, helps in FIELD_HELP.items() for name in helps}
    helps = {name: text for section in FIELD_HELP.values() for name, text in section.items()}
    out = []
    for f in dataclasses.fields(TrainConfig):
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        out.append({"name": f.name, "type": str(f.type), "default": default, "help": helps.get(f.name, ""),
                    "section": section_of.get(f.name, "")})
    return out


def _check_keys(keys, where: str) -> None:
    names = [f.name for f in dataclasses.fields(TrainConfig)]
    for key in keys:
        if key not in names:
            close = difflib.get_close_matches(key, names, n=3)
            raise HandposeError(f"{where}: unknown config key {key!r}" + (f"; did you mean {close}?" if close else ""))


def parse_overrides(items: list[str] | None) -> dict:
    """``["lr=0.01", "split=[0.7,0.2,0.1]"]`` -> dict, values parsed as YAML.

    Raises:
        HandposeError: an item without ``=``, a value that is not YAML (``lr=[1, 2``) or an unknown key.
    """
    out = {}
    for item in items or []:
        if "=" not in item:
            raise HandposeError(f"override {item!r}: expected key=value")
        key, value = item.split("=", 1)
        try:
            out[key.strip()] = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError as e:
            problem = getattr(e, "problem", None) or str(e).splitlines()[0]
            raise HandposeError(f"override {item!r}: the value is not valid YAML ({problem})") from e
    _check_keys(out, "override")
    return out


def apply_overrides(values: dict, overrides: dict) -> dict:
    """Config ``values`` with ``overrides`` applied, to every stage too (a copy).

    A plain override replaces the key at the top level and in each of ``values["stages"]`` that sets it, so that
    ``--set max_epochs=5`` shortens every stage of a staged config instead of being ignored by stages with their
    own ``max_epochs``. Stages given in ``overrides`` are taken as written (they come from the same command line).

    Args:
        values: config values (from a file).
        overrides: ``{key: value}``, as from :func:`parse_overrides`.
    """
    out = {**values, **overrides}
    if "stages" not in overrides and isinstance(values.get("stages"), list):
        out["stages"] = [{k: overrides.get(k, v) for k, v in st.items()} if isinstance(st, dict) else st
                         for st in values["stages"]]
    return out


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> TrainConfig:
    """Load a flat YAML config (or the defaults) and apply ``key=value`` overrides.

    The file's paths are relative to its folder (:func:`resolve_paths`), the overrides' to the current folder;
    overrides apply to every stage (:func:`apply_overrides`).

    Raises:
        HandposeError: missing file, invalid YAML, a nested or unknown key, or an invalid value.
    """
    values: dict = {}
    if path:
        path = Path(path)
        if not path.is_file():
            raise HandposeError(f"{path}: config file not found")
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise HandposeError(f"{path}: invalid YAML ({e})") from e
        if not isinstance(values, dict):
            raise HandposeError(f"{path}: expected a mapping of config keys")
        _check_keys(values, str(path))
        values = resolve_paths(values, path.parent)
    return TrainConfig(**apply_overrides(values, parse_overrides(overrides)))
