"""A presence score that means something after fine-tuning: MediaPipe's landmark network has a presence head (is
there a hand in this crop?), but fine-tuning its trunk for keypoints leaves that head reading features it was not
trained on (on random photo crops without hands, a fine-tuned lite network here gave presence 0.39 median, 0.85 at
most, against 0.002 / 0.012 before). This refits the head alone, by logistic regression on the network's pooled
features, from hand crops (positives) and random crops of photos (negatives), and reports how well it separates
crops it did not fit on (ROC AUC).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from handpose.bundle import ModelBundle
from handpose.data.dataset import normalise
from handpose.data.image import read_image
from handpose.data.transforms import region_affine, warp_to_input
from handpose.errors import HandposeError


def negative_crops(photos: Sequence[str | Path], count: int, input_size: tuple[int, int], pad_mode: str = "constant",
                   seed: int = 0) -> np.ndarray:
    """``count`` random square crops (side 15-60 % of the photo's shorter side, anywhere) of the photos, letterboxed
    to ``input_size`` = ``(width, height)``: ``(count, h, w, 3)`` uint8. Photos of scenes and people, whose random
    crops rarely hold a whole hand (some will: the fit tolerates a few).

    Raises:
        HandposeError: no photos, or one that cannot be read (named).
    """
    if not photos:
        raise HandposeError("presence: no photos to take negative crops from")
    rng = np.random.default_rng(seed)
    images = [read_image(p) for p in photos]
    out = np.zeros((count, input_size[1], input_size[0], 3), np.uint8)
    for i in range(count):
        img = images[int(rng.integers(len(images)))]
        h, w = img.shape[:2]
        side = max(16, int(min(h, w) * rng.uniform(0.15, 0.6)))
        box = np.array([rng.integers(0, w - side + 1), rng.integers(0, h - side + 1), side, side], np.float32)
        _, M = region_affine(box, w, h, input_size)
        out[i] = warp_to_input(img, M, input_size, pad_mode)
    return out


def roc_auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """Probability that a random positive scores above a random negative (ties count half): the area under the ROC
    curve (Mann-Whitney U / (n_pos n_neg))."""
    pos, neg = np.asarray(positive, np.float64)[:, None], np.asarray(negative, np.float64)[None, :]
    return float(((pos > neg).sum() + 0.5 * (pos == neg).sum()) / (pos.size * neg.size))


@torch.inference_mode()
def _pooled(bundle: ModelBundle, crops: np.ndarray, batch: int = 64) -> torch.Tensor:
    net = bundle.network.eval()
    feats = [net.pooled(torch.stack([normalise(c, bundle.mean, bundle.std) for c in crops[i:i + batch]]))
             for i in range(0, len(crops), batch)]
    return torch.cat(feats)


def fit_logistic_head(bundle: ModelBundle, positives: np.ndarray, negatives: np.ndarray, held_out: float = 0.25,
                      l2: float = 1e-3, seed: int = 0, head: str = "presence_head") -> dict:
    """Refit one ``Linear(C, 1)`` head before a sigmoid (``bundle.network.<head>``) by L2-regularised logistic
    regression (L-BFGS) on the pooled trunk features of ``positives`` (label 1) and ``negatives`` (label 0), the rest
    of the network unchanged: the presence head (positives: hand crops, negatives: crops without a hand) or the
    handedness head (``head="handedness_head"``; positives: right hands, negatives: left hands).

    Args:
        bundle: a model whose network has ``pooled`` and the ``head`` (MediaPipe's landmark network).
        positives, negatives: ``(N, h, w, 3)`` uint8 crops at the model's input size.
        held_out: share of each kind kept out of the fit to measure it.
        l2: weight of the squared weight norm in the loss.
        head: the ``Linear(C, 1)`` to refit.

    Returns:
        ``{"auc_held_out", "auc_before", "positives_median", "negatives_median", "negatives_p95", "fit",
        "held_out"}``: ROC AUC of the output on the held-out crops after and before the fit, the new output's median
        on held-out positives and negatives and its 95th percentile on negatives, and the crop counts.

    Raises:
        HandposeError: a network without that head, or fewer than 4 crops of a kind.
    """
    net = bundle.network
    if not hasattr(net, head) or not hasattr(net, "pooled"):
        raise HandposeError(f"{bundle.arch}: no {head.replace('_head', '')} head to fit (MediaPipe's landmark "
                            "network has one)")
    if len(positives) < 4 or len(negatives) < 4:
        raise HandposeError(f"{head}: need at least 4 crops of each kind, got {len(positives)} and {len(negatives)}")
    x = torch.cat([_pooled(bundle, positives), _pooled(bundle, negatives)])
    y = torch.cat([torch.ones(len(positives)), torch.zeros(len(negatives))])
    gen = torch.Generator().manual_seed(seed)
    test = torch.zeros(len(y), dtype=torch.bool)
    for lo, n in ((0, len(positives)), (len(positives), len(negatives))):
        test[lo + torch.randperm(n, generator=gen)[:max(1, int(n * held_out))]] = True
    head = getattr(net, head)
    with torch.no_grad():
        before = torch.sigmoid(head(x[test]))[:, 0].numpy()
    mean, std = x[~test].mean(0), x[~test].std(0).clamp(min=1e-6)  # standardised features: a better-posed fit
    z = (x - mean) / std
    with torch.no_grad():  # the current head, in standardised units, as the starting point
        w_z = (head.weight * std).clone().requires_grad_(True)
        b_z = (head.bias + (head.weight * mean).sum(1)).clone().requires_grad_(True)
    opt = torch.optim.LBFGS([w_z, b_z], max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        logits = z[~test] @ w_z[0] + b_z[0]
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y[~test]) + l2 * (w_z ** 2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    with torch.no_grad():  # back to the raw features: w = w_z / std, b = b_z - w . mean
        head.weight.copy_(w_z / std)
        head.bias.copy_(b_z - (w_z / std * mean).sum(1))
        after = torch.sigmoid(head(x[test]))[:, 0].numpy()
    yt = y[test].numpy() > 0.5
    return {"auc_held_out": roc_auc(after[yt], after[~yt]), "auc_before": roc_auc(before[yt], before[~yt]),
            "positives_median": float(np.median(after[yt])), "negatives_median": float(np.median(after[~yt])),
            "negatives_p95": float(np.percentile(after[~yt], 95)), "fit": int((~test).sum()),
            "held_out": int(test.sum())}
