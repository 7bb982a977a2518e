"""The small-data article's regression head (seed 001) built from configs/hand12_article.yaml."""

from pathlib import Path

import numpy as np
import torch
from torch import nn

from handpose.config import load_config
from handpose.data.dataset import normalise
from handpose.data.image import read_image
from handpose.data.transforms import region_affine, warp_to_input
from handpose.models import create_model
from handpose.models.heads import RegressionHead

ROOT = Path(__file__).resolve().parents[1]


def article_model():
    cfg = load_config(ROOT / "configs" / "hand12_article.yaml")
    return cfg, create_model(cfg.model, 12, cfg.input_size, **cfg.model_kwargs)


def test_article_head_has_the_article_layer_sizes():
    cfg, model = article_model()
    assert tuple(cfg.input_size) == (288, 384)  # [width, height]: fastai's size=(384, 288) is (height, width)
    assert all("input_size" not in s for s in cfg.stages)  # no stage goes back to another size
    head = model.head
    assert isinstance(head, RegressionHead)
    layers = [m for m in head.modules() if isinstance(m, (nn.Conv2d, nn.BatchNorm2d, nn.Linear))]
    conv, bn, fc1, fc2 = layers
    # the article: Conv2d(512, 64, 1), BatchNorm2d(64), Linear(64 * 12 * 9, 6144), Linear(6144, 24)
    assert (conv.in_channels, conv.out_channels, conv.kernel_size) == (512, 64, (1, 1))
    assert bn.num_features == 64
    assert (fc1.in_features, fc1.out_features) == (64 * 12 * 9, 6144)
    assert (fc2.in_features, fc2.out_features) == (6144, 24)
    kinds = [type(m) for m in head.reduce] + [type(m) for m in head.fc]
    assert kinds == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.Flatten, nn.Linear, nn.ReLU, nn.Linear]


@torch.inference_mode()
def test_article_model_runs_a_portrait_photo_into_tanh_range():
    cfg, model = article_model()
    model.eval()
    image = read_image(ROOT / "examples" / "hands" / "hgcnn_478.jpg")  # 256x256: letterboxed into 288x384
    _, M = region_affine(None, image.shape[1], image.shape[0], tuple(cfg.input_size))
    x = normalise(warp_to_input(image, M, tuple(cfg.input_size), cfg.pad_mode), (0.5,) * 3, (0.25,) * 3)
    assert x.shape == (3, 384, 288)
    features = model.backbone(x[None])[-1]
    assert features.shape == (1, 512, 12, 9)  # the article's 12 x 9 feature map
    out = model(x[None])
    assert out.shape == (1, 12, 2)
    assert torch.isfinite(out).all() and out.abs().max() < 1  # tanh


def test_default_head_width_is_unchanged():
    model = create_model("resnet18_regression", 12, (256, 192))
    fc1 = model.head.fc[1]
    assert (fc1.in_features, fc1.out_features) == (64 * 8 * 6, 256)
    narrow = create_model("resnet18_regression", 12, (256, 192), regression_channels=32, regression_hidden=128)
    assert (narrow.head.fc[1].in_features, narrow.head.fc[1].out_features) == (32 * 8 * 6, 128)
    assert np.prod(narrow.head(torch.zeros(2, 512, 6, 8)).shape) == 2 * 12 * 2
