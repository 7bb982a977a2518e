"""Pretrained weights: the known source networks, converting them once, and loading what fits into any network.

A *source* is a real pretrained network in its original file format (``../shared/weights`` has them) together with
the handpose module it fills and the mapping that fills it (which lives next to that module). Converting a source
gives a *weights file*: ``{"format": "handpose-weights/1", "source": name, "state_dict": float16 tensors, ...}``
under the filled module's own parameter names. The package ships converted weights in
``handpose/weights/pretrained/<name>.pt`` where the licence allows, so training from them needs no network and no
``../shared``.

:func:`load_pretrained_into` puts every tensor that fits into a network whose layout differs (a backbone under a new
head, a trunk under heatmap heads, a model with another keypoint count) by aligning parameter-name prefixes, and
reports what was loaded and what stayed random.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import torch
from torch import nn

from handpose.atomic import atomic_write
from handpose.errors import HandposeError

WEIGHTS_FORMAT = "handpose-weights/1"

#: Input normalisations ``(mean, std)`` of RGB in ``[0, 1]``: ImageNet's (torchvision / the ONNX model zoo),
#: ``unit`` = the image in [0, 1] (MediaPipe's landmark network and palm detector), ``symmetric`` = [-1, 1]
#: (TF-slim's MobileNetV3).
NORMALIZATIONS: dict[str, tuple[list[float], list[float]]] = {
    "imagenet": ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    "unit": ([0.0, 0.0, 0.0], [1.0, 1.0, 1.0]),
    "symmetric": ([0.5, 0.5, 0.5], [0.5, 0.5, 0.5]),
    # Lightweight OpenPose as Open Model Zoo's IR scales its input: x / 255 - 128 / 255 (Osokin's code divides by
    # 256 instead of 255: 0.4 % apart)
    "openpose": ([128 / 255] * 3, [1.0, 1.0, 1.0]),
}
#: Share of the tensors under an aligned prefix that must fit for the alignment to count.
MIN_FIT = 0.5


@dataclass(frozen=True)
class PretrainedSource:
    """One importable pretrained network.

    Attributes:
        name: short name, also the shipped file's stem (``mobilenet_v2_imagenet``).
        file: the original file's name (as in ``../shared/weights``), used to recognise it.
        module: ``"package.module:Class"`` of the handpose module the weights fill, built with ``module_kwargs``.
        importer: ``"package.module:function"`` ``(module, SourceGraph) -> None`` that fills it.
        licence: the licence of the weights (the notice files ship beside them).
        about: one line on what the network is and what it was trained on.
        normalize: the input normalisation the network was trained with, a key of :data:`NORMALIZATIONS`.
        module_kwargs: arguments of the module's constructor.
        bundle: ``"package.module:function"`` ``(weights) -> ModelBundle`` for networks that are keypoint models as
            they are (``handpose.load_model(name)`` runs them); empty for trunks and detectors.
    """

    name: str
    file: str
    module: str
    importer: str
    licence: str
    about: str
    normalize: str
    module_kwargs: dict = field(default_factory=dict)
    bundle: str = ""

    def build(self) -> nn.Module:
        """A fresh, randomly initialised instance of the module these weights fill."""
        return _resolve(self.module)(**self.module_kwargs)

    def convert(self, path: str | Path) -> nn.Module:
        """Read the original file and return the filled module (in eval mode).

        Raises:
            HandposeError: the file cannot be read, or does not fit (the message names the file and layer).
        """
        from handpose.importers import read_graph

        module = self.build()
        _resolve(self.importer)(module, read_graph(path))
        return module.eval()


def _resolve(dotted: str) -> Callable:
    mod, _, attr = dotted.partition(":")
    return getattr(importlib.import_module(mod), attr)


#: The known sources, by name (see ``../shared/weights/README.md`` for provenance and measured facts).
SOURCES: dict[str, PretrainedSource] = {s.name: s for s in (
    PretrainedSource("mobilenet_v2_imagenet", "mobilenetv2-12-int8.onnx",
                     "handpose.models.backbones:MobileNetV2", "handpose.models.backbones:import_mobilenet_v2",
                     "Apache-2.0 (ONNX model zoo)", "MobileNetV2 1.0 ImageNet-1k classifier trunk (ONNX int8)",
                     "imagenet"),
    PretrainedSource("mobilenet_v3_small_imagenet", "mobilenet_v3_small_224_1.0_uint8.tflite",
                     "handpose.models.backbones:MobileNetV3Small",
                     "handpose.models.backbones:import_mobilenet_v3_small",
                     "Apache-2.0 (TensorFlow models)", "MobileNetV3-Small 1.0 ImageNet-1k trunk (TFLite uint8)",
                     "symmetric", {"same_padding": True}),
    PretrainedSource("mediapipe_hand_full", "hand_landmark_full.tflite",
                     "handpose.models.mediapipe_hand:MediaPipeHandRegression",
                     "handpose.models.mediapipe_hand:import_mediapipe_hand",
                     "Apache-2.0 (MediaPipe)", "MediaPipe Hands landmark network, full (TFLite float16)", "unit",
                     {"variant": "full"}, "handpose.models.mediapipe_hand:mediapipe_hand_bundle"),
    PretrainedSource("mediapipe_hand_lite", "hand_landmark_lite.tflite",
                     "handpose.models.mediapipe_hand:MediaPipeHandRegression",
                     "handpose.models.mediapipe_hand:import_mediapipe_hand",
                     "Apache-2.0 (MediaPipe)", "MediaPipe Hands landmark network, lite (TFLite float16)", "unit",
                     {"variant": "lite"}, "handpose.models.mediapipe_hand:mediapipe_hand_bundle"),
    PretrainedSource("palm_detection_full", "palm_detection_full.tflite",
                     "handpose.detect.palm:PalmDetectorNet", "handpose.detect.palm:import_palm_detector",
                     "Apache-2.0 (MediaPipe)", "MediaPipe palm detector, full (TFLite float16)", "unit",
                     {"variant": "full"}),
    PretrainedSource("palm_detection_lite", "palm_detection_lite.tflite",
                     "handpose.detect.palm:PalmDetectorNet", "handpose.detect.palm:import_palm_detector",
                     "Apache-2.0 (MediaPipe)", "MediaPipe palm detector, lite (TFLite float16)", "unit",
                     {"variant": "lite"}),
    PretrainedSource("lightweight_openpose_coco", "human-pose-estimation-0001.xml",
                     "handpose.models.openpose:LightweightOpenPose",
                     "handpose.models.openpose:import_lightweight_openpose",
                     "Apache-2.0 (Open Model Zoo)", "Lightweight OpenPose, COCO person keypoints (OpenVINO IR int8)",
                     "openpose", {"num_keypoints": 18, "num_limbs": 19},
                     "handpose.models.openpose:lightweight_openpose_bundle"),
)}

#: Where converted weights ship inside the package.
SHIPPED = "handpose.weights.pretrained"


def shipped_weights() -> list[str]:
    """Names of the converted weights shipped in the package."""
    try:
        folder = resources.files(SHIPPED)
    except ModuleNotFoundError:
        return []
    return sorted(p.name[:-3] for p in folder.iterdir() if p.name.endswith(".pt"))


def source_of(spec: str | Path) -> PretrainedSource | None:
    """The known source behind a ``pretrained`` value (a source or shipped name, an original file by its name, or a
    converted weights file by the source it records), or None (a handpose model, a torchvision state_dict, ...)."""
    if str(spec) in SOURCES:
        return SOURCES[str(spec)]
    p = Path(spec)
    by_file = next((s for s in SOURCES.values() if s.file == p.name), None)
    if by_file is not None or p.suffix.lower() != ".pt" or not p.is_file():
        return by_file
    try:
        d = torch.load(p, map_location="cpu", weights_only=True)
    except Exception:
        return None
    return SOURCES.get(d.get("source")) if isinstance(d, dict) and d.get("format") == WEIGHTS_FORMAT else None


def import_original(path: str | Path, source: str | None = None) -> tuple[PretrainedSource, nn.Module]:
    """Import an original file: as the named ``source``, else as the source its file name says, else as the first
    source of the same format that imports without error.

    Returns:
        ``(source, filled module in eval mode)``.

    Raises:
        HandposeError: an unknown source name, or no known source fits the file (the message gives each candidate's
            error).
    """
    path = Path(path)
    if source is not None:
        if source not in SOURCES:
            raise HandposeError(f"unknown pretrained source {source!r}; known: {sorted(SOURCES)}")
        return SOURCES[source], SOURCES[source].convert(path)
    by_name = next((s for s in SOURCES.values() if s.file == path.name), None)
    if by_name is not None:
        return by_name, by_name.convert(path)
    errors = []
    for s in SOURCES.values():
        if Path(s.file).suffix.lower() != path.suffix.lower():
            continue
        try:
            return s, s.convert(path)
        except HandposeError as e:
            errors.append(f"{s.name}: {e}")
    raise HandposeError(f"{path}: not one of the known pretrained networks ({', '.join(SOURCES)}); "
                        + ("; ".join(errors) if errors else "no source of this file type"))


def convert_source(src: str | Path, out: str | Path, source: str | None = None) -> dict:
    """Convert an original file once into a handpose weights file (float16 tensors).

    Args:
        src: the original file (``.onnx``, ``.tflite``, ``.xml``).
        out: the ``.pt`` to write.
        source: a name of :data:`SOURCES`; default: recognised from the file.

    Returns:
        The written dict without its state_dict (name, file, sha256, licence, tensors).

    Raises:
        HandposeError: unknown source name, or a file that does not import.
    """
    src = Path(src)
    spec, module = import_original(src, source)
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in module.state_dict().items()}
    meta = {"format": WEIGHTS_FORMAT, "source": spec.name, "file": src.name,
            "sha256": hashlib.sha256(src.read_bytes()).hexdigest(), "licence": spec.licence, "about": spec.about,
            "module": spec.module, "module_kwargs": dict(spec.module_kwargs)}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, lambda f: torch.save({**meta, "state_dict": state}, f))
    return {**meta, "tensors": len(state)}


def read_weights(spec: str | Path) -> tuple[dict[str, torch.Tensor], str]:
    """A state_dict (float32) from a shipped name, a converted ``.pt``, a handpose model/checkpoint, a torchvision
    state_dict, or an original ``.onnx`` / ``.tflite`` / ``.xml`` file.

    Returns:
        ``(state_dict, label)``: the label names where it came from, for messages.

    Raises:
        HandposeError: neither a shipped name nor a readable file.
    """
    p = Path(spec)
    if not p.is_file():
        shipped = resources.files(SHIPPED) / f"{spec}.pt" if str(spec) in shipped_weights() else None
        if shipped is None:
            raise HandposeError(f"pretrained {str(spec)!r}: no such file and not a shipped name "
                                f"(shipped: {shipped_weights()}; sources: {sorted(SOURCES)})")
        p = Path(str(shipped))
    if p.suffix.lower() in (".onnx", ".tflite", ".xml"):
        module = import_original(p)[1]
        return {k: v.float() if v.is_floating_point() else v for k, v in module.state_dict().items()}, str(p)
    try:
        d = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:
        raise HandposeError(f"{p}: cannot be read as pretrained weights ({type(e).__name__}: {e})") from e
    if isinstance(d, dict) and "hyper_parameters" in d and isinstance(d.get("state_dict"), dict):  # Lightning ckpt
        d = {k[len("network."):]: v for k, v in d["state_dict"].items() if k.startswith("network.")}
    for key in ("state_dict", "model"):
        if isinstance(d, dict) and isinstance(d.get(key), dict):
            d = d[key]
    if not isinstance(d, dict) or not d or not all(isinstance(v, torch.Tensor) for v in d.values()):
        raise HandposeError(f"{p}: expected a state_dict (a dict of tensors), a handpose weights or model file")
    d = {k.removeprefix("module."): v for k, v in d.items()}
    return {k: v.float() if v.is_floating_point() else v for k, v in d.items()}, str(p)


def load_weights_strict(module: nn.Module, weights: str | Path, importer: Callable | None = None) -> None:
    """Fill every entry of ``module`` from ``weights``: an original file (``.onnx`` / ``.tflite`` / ``.xml``) through
    ``importer`` (its errors name the source layer), else anything :func:`read_weights` takes (a shipped name, a
    converted ``.pt``, a state dict), all or nothing.

    Raises:
        HandposeError: the weights cannot be read or do not fit (nothing is loaded in part).
    """
    from handpose.importers import load_mapped_state, read_graph

    if importer is not None and Path(weights).suffix.lower() in (".onnx", ".tflite", ".xml"):
        importer(module, read_graph(weights))
        return
    state, label = read_weights(weights)
    load_mapped_state(module, {k: v.numpy() for k, v in state.items()}, label)


def pretrained_bundle(name: str):
    """The :class:`~handpose.bundle.ModelBundle` of a source that is a keypoint model as it is, from its shipped
    weights (``handpose.load_model("mediapipe_hand_full")``), or None when ``name`` is no such source."""
    spec = SOURCES.get(str(name))
    if spec is None or not spec.bundle or spec.name not in shipped_weights():
        return None
    return _resolve(spec.bundle)(spec.name, **spec.module_kwargs)


@dataclass
class LoadReport:
    """What :func:`load_pretrained_into` did.

    Attributes:
        source: where the weights came from. mapping: ``(source prefix, target prefix)`` used.
        loaded: target entries filled. random: target entries left as they were (grouped in :meth:`summary`).
        shape_mismatch: target entries whose source tensor had another shape (e.g. a head for other keypoints).
        unused: source entries that went nowhere.
    """

    source: str
    mapping: tuple[str, str]
    loaded: list[str]
    random: list[str]
    shape_mismatch: list[str]
    unused: list[str]

    def summary(self) -> str:
        """One paragraph for the log: counts and the top-level modules that stayed random."""
        def groups(keys: list[str]) -> str:
            heads = sorted({".".join(k.split(".")[:2]) for k in keys})
            return ", ".join(heads[:8]) + (" ..." if len(heads) > 8 else "")

        src, dst = self.mapping
        text = (f"pretrained {self.source}: loaded {len(self.loaded)} tensors "
                f"({src or '<root>'}* -> {dst or '<root>'}*); not in the file, left as built: {len(self.random)}")
        if self.random:
            text += f" ({groups(self.random)})"
        if self.shape_mismatch:
            text += f"; shape differs, kept random: {len(self.shape_mismatch)} ({groups(self.shape_mismatch)})"
        if self.unused:
            text += f"; unused from the file: {len(self.unused)} ({groups(self.unused)})"
        return text


def _prefixes(keys: list[str], depth: int = 2) -> set[str]:
    """``""`` and the module-path prefixes of ``keys`` up to ``depth`` components (``"backbone."``, ...)."""
    out = {""}
    for k in keys:
        parts = k.split(".")
        out.update(".".join(parts[:i]) + "." for i in range(1, min(len(parts), depth + 1)))
    return out


def load_pretrained_into(network: nn.Module, weights: Mapping[str, torch.Tensor] | str | Path,
                         label: str = "") -> LoadReport:
    """Load every tensor that fits into ``network``, aligning parameter-name prefixes.

    Tries every pair (a prefix stripped from the source names, a prefix added for the target names) and keeps the
    one that fills the most target entries with equal shapes: a MobileNetV2 trunk (``features.*``) lands in
    ``backbone.features.*`` of a heatmap model, a whole MediaPipe landmark network's trunk in a model that uses it as
    a backbone. Entries of other shapes (a head for another keypoint count) stay random and are reported.

    Args:
        network: the target (changed in place).
        weights: a state_dict, or anything :func:`read_weights` takes.
        label: for messages (default: the file).

    Raises:
        HandposeError: nothing at all fits (a file for another architecture).
    """
    if not isinstance(weights, Mapping):
        weights, label = read_weights(weights)[0], label or str(weights)
    weights = {k: v for k, v in weights.items() if not k.endswith("num_batches_tracked")}
    own = network.state_dict()
    src_keys = list(weights)
    best: tuple[int, str, str] = (0, "", "")
    own_prefixes = _prefixes(list(own))
    for strip in sorted(_prefixes(src_keys), key=len):
        stripped = {k[len(strip):]: v for k, v in weights.items() if k.startswith(strip)}
        for add in sorted(own_prefixes, key=len):
            n = sum(1 for k, v in stripped.items() if (t := own.get(add + k)) is not None and t.shape == v.shape)
            # an alignment counts only if most of what it takes from the file fits (not a stray BatchNorm)
            if n > best[0] and n >= MIN_FIT * len(stripped):
                best = (n, strip, add)
    n, strip, add = best
    if n == 0:
        raise HandposeError(f"pretrained {label}: none of its {len(weights)} tensors fits {type(network).__name__} "
                            f"(first names: {src_keys[:3]} vs {list(own)[:3]})")
    update, mismatch, used = {}, [], set()
    for k, v in weights.items():
        if not k.startswith(strip) or (add + k[len(strip):]) not in own:
            continue
        target = add + k[len(strip):]
        if own[target].shape == v.shape:
            update[target] = v.to(own[target].dtype)
            used.add(k)
        else:
            mismatch.append(target)
    network.load_state_dict(update, strict=False)
    random = [k for k in own if k not in update and k not in mismatch and not k.endswith("num_batches_tracked")]
    return LoadReport(label, (strip, add), sorted(update), random, mismatch, [k for k in src_keys if k not in used])
