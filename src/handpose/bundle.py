"""A trained model with everything needed to use it: network, Skeleton, codec, input size, normalisation.

Saved as one ``.pt`` file of plain types and tensors, loaded with ``torch.load(..., weights_only=True)``.
Lightning ``.ckpt`` files written by :mod:`handpose.train` load the same way.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import torch
from torch import nn

from handpose.codecs import codec_to_dict, make_codec
from handpose.errors import HandposeError
from handpose.models.zoo import create_model
from handpose.skeleton import Skeleton

FORMAT = "handpose-model/1"
#: The bundled default model (``handpose/weights/<name>.pt``).
DEFAULT_MODEL = "hand21_mediapipe_lite_mixed"


@dataclass
class ModelBundle:
    """A network and its metadata.

    Attributes:
        network: maps ``(B, 3, H, W)`` normalised input to heatmaps ``(B, K, h, w)`` or coordinates ``(B, K, 2)``.
        skeleton: the keypoint set of the K channels.
        codec: decodes the network output to input pixels (:mod:`handpose.codecs`).
        mean, std: RGB normalisation in ``[0, 1]`` units, computed on the training split.
        arch: the registry name of the network and ``arch_kwargs`` its builder arguments.
        card: free-form facts (data, command, metrics).
        pad_mode: letterbox fill used in training and prediction (``constant`` or ``border``).
    """

    network: nn.Module
    skeleton: Skeleton
    codec: object
    mean: list[float]
    std: list[float]
    arch: str
    arch_kwargs: dict = field(default_factory=dict)
    card: dict = field(default_factory=dict)
    pad_mode: str = "constant"

    @property
    def input_size(self) -> tuple[int, int]:
        """``(width, height)`` of the model input."""
        return tuple(self.codec.input_size)

    def at_input_size(self, input_size: tuple[int, int], upsample: int | None = None) -> ModelBundle:
        """The same network (shared, not copied) predicting whole images letterboxed into ``input_size``
        ``(width, height)`` pixels, with the maps enlarged ``upsample`` times before grouping (default: as saved).
        Only for bottom-up (PAF) models, whose network is fully convolutional.

        Raises:
            HandposeError: not a bottom-up model, or a size or upsample below 1.
        """
        if getattr(self.codec, "kind", "") != "paf":
            raise HandposeError(f"at_input_size is for bottom-up (PAF) models; this one's codec is "
                                f"{getattr(self.codec, 'kind', type(self.codec).__name__)!r}")
        upsample = self.codec.upsample if upsample is None else int(upsample)
        if len(input_size) != 2 or min(input_size) < 1 or upsample < 1:
            raise HandposeError(f"input_size must be (width, height) >= 1 and upsample >= 1, got {input_size}, "
                                f"{upsample}")
        codec = dataclasses.replace(self.codec, input_size=(int(input_size[0]), int(input_size[1])),
                                    upsample=upsample)
        return dataclasses.replace(self, codec=codec)

    def to_dict(self) -> dict:
        """The saved form (plain types and tensors)."""
        return {
            "format": FORMAT,
            "arch": self.arch,
            "arch_kwargs": dict(self.arch_kwargs),
            "skeleton": self.skeleton.to_dict(),
            "input_size": list(self.codec.input_size),
            "codec": codec_to_dict(self.codec),
            "mean": list(self.mean),
            "std": list(self.std),
            "card": dict(self.card),
            "pad_mode": self.pad_mode,
            "state_dict": {k: v.detach().cpu() for k, v in self.network.state_dict().items()},
        }

    def save(self, path: str | Path) -> None:
        """Write the bundle to ``path`` (``.pt``) atomically (a temporary file in the same folder, then renamed)."""
        from handpose.atomic import atomic_write

        Path(path).parent.mkdir(parents=True, exist_ok=True)
        d = self.to_dict()
        atomic_write(path, lambda f: torch.save(d, f))

    @classmethod
    def from_dict(cls, d: dict, source: str = "") -> ModelBundle:
        """Rebuild from :meth:`to_dict` output.

        Raises:
            HandposeError: missing fields or weights that do not fit the architecture.
        """
        try:
            skeleton = Skeleton.from_dict(d["skeleton"])
            net = create_model(d["arch"], skeleton.num_keypoints, d["input_size"], num_limbs=len(skeleton.limbs),
                               **d.get("arch_kwargs", {}))
            codec = make_codec(input_size=d["input_size"], skeleton=skeleton, **{"kind": "heatmap", **d["codec"]})
            mean, std = list(d["mean"]), list(d["std"])
        except KeyError as e:
            raise HandposeError(f"{source}: not a handpose model file (missing {e})") from e
        own = net.state_dict()
        shapes = [f"{k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}" for k, v in d["state_dict"].items()
                  if k in own and tuple(v.shape) != tuple(own[k].shape)]
        missing, unexpected = net.load_state_dict(
            {k: v for k, v in d["state_dict"].items() if k not in own or tuple(v.shape) == tuple(own[k].shape)},
            strict=False)
        if missing or unexpected or shapes:
            raise HandposeError(f"{source}: weights do not fit {d['arch']!r}: missing {missing[:5]}, "
                                f"unexpected {unexpected[:5]}, shape differs {shapes[:3]}")
        net.eval()
        return cls(net, skeleton, codec, mean, std, d["arch"], dict(d.get("arch_kwargs", {})), dict(d.get("card", {})),
                   d.get("pad_mode", "constant"))


def bundled_models() -> list[str]:
    """Names of the models shipped in ``handpose/weights/``."""
    return sorted(p.name[:-3] for p in resources.files("handpose.weights").iterdir() if p.name.endswith(".pt"))


def resolve_model_path(name_or_path: str | Path | None) -> Path:
    """A bundled model name (default :data:`DEFAULT_MODEL`) or a file path -> the file.

    Raises:
        HandposeError: neither a bundled name nor an existing file.
    """
    if name_or_path is None or str(name_or_path) == "":
        name_or_path = DEFAULT_MODEL
    p = Path(name_or_path)
    if p.is_file():
        return p
    shipped = resources.files("handpose.weights") / f"{name_or_path}.pt"
    if shipped.is_file():
        return Path(str(shipped))
    raise HandposeError(f"model {str(name_or_path)!r}: no such file and not a bundled model "
                        f"(bundled: {bundled_models()})")


def load_model(name_or_path: str | Path | None = None) -> ModelBundle:
    """Load a bundled model by name, an imported pretrained keypoint network by name (``mediapipe_hand_full``,
    ``mediapipe_hand_lite``, ...: see ``handpose import-weights --list``), a ``.pt`` bundle, a Lightning ``.ckpt``
    from ``handpose train``, or an ``.onnx`` file from ``handpose export`` (run by onnxruntime).

    Raises:
        HandposeError: unknown name, a file that is not a handpose model, or weights that do not fit.
    """
    if name_or_path is not None and not Path(name_or_path).is_file():
        from handpose.models.pretrained import pretrained_bundle

        imported = pretrained_bundle(str(name_or_path))  # e.g. "mediapipe_hand_full": an imported network as it is
        if imported is not None:
            return imported
    path = resolve_model_path(name_or_path)
    if path.suffix.lower() == ".onnx":
        from handpose.export import load_onnx

        return load_onnx(path)
    try:
        d = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for foreign or corrupt files
        raise HandposeError(f"{path}: cannot be loaded as a handpose model ({type(e).__name__}: {e})") from e
    if isinstance(d, dict) and "hyper_parameters" in d and "bundle" in d.get("hyper_parameters", {}):
        meta = dict(d["hyper_parameters"]["bundle"])
        meta["state_dict"] = {k[len("network."):]: v for k, v in d["state_dict"].items() if k.startswith("network.")}
        d = meta
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise HandposeError(f"{path}: not a handpose model file (expected format {FORMAT!r})")
    return ModelBundle.from_dict(d, str(path))
