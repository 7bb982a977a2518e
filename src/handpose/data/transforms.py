"""Geometry between images and model input, and training augmentation.

Coordinates follow OpenCV: pixel centres at integer ``(x, y)``, so pixel ``i`` covers ``[i - 0.5, i + 0.5]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import albumentations as A
import cv2
import numpy as np

from handpose.errors import HandposeError
from handpose.skeleton import Skeleton


def full_image_box(width: int, height: int) -> np.ndarray:
    """The ``[x, y, w, h]`` box that covers a whole ``width x height`` image edge to edge."""
    return np.array([-0.5, -0.5, width, height], dtype=np.float32)


def box_to_input_affine(box: np.ndarray, input_size: tuple[int, int], rotation: float = 0.0) -> np.ndarray:
    """Affine map from image pixels to model-input pixels that fits ``box`` into the input (letterbox).

    The box keeps its aspect ratio: it is scaled by ``min(in_w / w, in_h / h)`` and centred, so a box of
    another shape gets a border (filled by the caller's border mode). With ``rotation``, the box is a rectangle
    turned by that angle about its centre (its own x axis at ``rotation`` from the image's), and it is turned
    upright: its axes become the input's.

    Args:
        box: ``[x, y, w, h]`` in image pixels (continuous extent, e.g. :func:`full_image_box`); for a rotated
            rectangle, the box it is before turning (same centre and size).
        input_size: ``(width, height)`` of the model input.
        rotation: radians, as :class:`handpose.detect.roi.RotatedRect`.

    Returns:
        ``(2, 3)`` float64 matrix ``M`` with ``[u, v] = M @ [x, y, 1]``.
    """
    x, y, w, h = (float(v) for v in box)
    in_w, in_h = input_size
    s = min(in_w / max(w, 1e-6), in_h / max(h, 1e-6))
    c, si = math.cos(rotation), math.sin(rotation)
    # image -> the box's frame is R^T (p - centre), R the rotation; then scale and centre in the input
    lin = s * np.array([[c, si], [-si, c]], dtype=np.float64)
    t = np.array([(in_w - 1) / 2.0, (in_h - 1) / 2.0]) - lin @ np.array([x + w / 2.0, y + h / 2.0])
    return np.concatenate([lin, t[:, None]], axis=1)


def region_affine(box: np.ndarray | None, width: int, height: int, input_size: tuple[int, int]
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The region a model looks at (``box``, or the whole ``width x height`` image when None) and its
    image -> input affine (:func:`box_to_input_affine`). Returns ``(box (4,) float32, M (2, 3))``."""
    box = np.asarray(box, np.float32) if box is not None else full_image_box(width, height)
    return box, box_to_input_affine(box, input_size)


def invert_affine(M: np.ndarray) -> np.ndarray:
    """Inverse of a ``(2, 3)`` affine matrix (or of a batch ``(B, 2, 3)``)."""
    M = np.asarray(M, dtype=np.float64)
    if M.shape == (2, 3):  # OpenCV's closed form: a tenth of np.linalg.inv's time for one matrix
        return cv2.invertAffineTransform(M)
    A_, t = M[..., :2], M[..., 2:]
    Ai = np.linalg.inv(A_)
    return np.concatenate([Ai, -Ai @ t], axis=-1)


def apply_affine(M: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply ``(2, 3)`` affine ``M`` to points ``(..., 2)``; returns float32 ``(..., 2)``."""
    pts = np.asarray(points, dtype=np.float64)
    out = pts @ M[:, :2].T + M[:, 2]
    return out.astype(np.float32)


PAD_MODES = {"constant": cv2.BORDER_CONSTANT, "border": cv2.BORDER_REPLICATE}


def _from_resized(fx: float, fy: float) -> np.ndarray:
    """``(3, 3)`` map from pixels of an image resized by ``fx, fy`` to pixels of the original (pixel centres:
    ``x = (x_small + 0.5) / fx - 0.5``): ``M @ _from_resized(fx, fy)`` warps the resized image as ``M`` the original."""
    return np.array([[1 / fx, 0, 0.5 / fx - 0.5], [0, 1 / fy, 0.5 / fy - 0.5], [0, 0, 1]])


def _shrink_by_area(M: np.ndarray, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For a warp ``M`` that shrinks the image below half size: the image shrunk by area averaging to twice the
    warp's scale, and the warp from that image (then at scale 0.5, whose bilinear sampling averages 2 x 2 pixels),
    so the warp does not alias. Below a scale of 0.25 the image is first halved (a bilinear resize to exactly half
    size averages 2 x 2 blocks; an odd side gets its last row or column repeated) until the scale is 0.25-0.5: the
    same box filter as one area resize, in a fraction of its time on large photos (to 192 px: 4000 x 3000 in 6.3 ms
    against 30.4, 1920 x 1080 in 2.6 against 4.5; mean difference 1-1.5 grey levels). Pixel centres throughout:
    ``x_small = (x + 0.5) * f - 0.5``.

    (Halving further and area-resizing by the rest found one palm fewer of the 65 coco-wholebody-hands hands with
    either palm detector, 19 against 20 and 17 against 18: kept as it was for photos up to ~770 px.)"""
    while float(np.hypot(M[0, 0], M[0, 1])) < 0.25 and min(image.shape[:2]) > 1:
        h, w = image.shape[:2]
        if h % 2 or w % 2:
            image = cv2.copyMakeBorder(image, 0, h % 2, 0, w % 2, cv2.BORDER_REPLICATE)
        image = cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2), interpolation=cv2.INTER_LINEAR)
        M = M @ _from_resized(0.5, 0.5)
    scale = float(np.hypot(M[0, 0], M[0, 1]))
    h, w = image.shape[:2]
    sw, sh = max(1, round(w * 2 * scale)), max(1, round(h * 2 * scale))
    if (sw, sh) != (w, h):
        image = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
        M = M @ _from_resized(sw / w, sh / h)
    return M, image


def warp_to_input(image: np.ndarray, M: np.ndarray, input_size: tuple[int, int], pad_mode: str = "constant"
                  ) -> np.ndarray:
    """Warp ``(H, W, 3)`` uint8 image with ``M`` to ``(in_h, in_w, 3)``.

    Args:
        pad_mode: what fills the area outside the image: ``constant`` (black) or ``border`` (the edge pixels
            repeated, fastai's ``padding_mode='border'`` used by the small-data tutorial).
    """
    M = np.asarray(M, np.float64)
    if float(np.hypot(M[0, 0], M[0, 1])) < 0.5:
        M, image = _shrink_by_area(M, image)
    return cv2.warpAffine(image, M, input_size, flags=cv2.INTER_LINEAR, borderMode=PAD_MODES[pad_mode],
                          borderValue=(0, 0, 0))


@dataclass
class AugmentConfig:
    """Strength of training augmentation (each 0 turns that part off).

    Attributes:
        rotate: maximum rotation in degrees (uniform in ``[-rotate, rotate]``).
        scale: maximum relative zoom (uniform in ``[1 - scale, 1 + scale]``).
        translate: maximum shift as a share of the input size.
        flip: probability of a horizontal flip (keypoints re-indexed by the Skeleton's ``flip_perm``).
        colour: strength of brightness / contrast / saturation jitter (hue gets a tenth of it).
        brightness, contrast: their own maxima when set (``None``: ``colour``).
        grey: probability of turning the image grey (so grey-scale photos work too).
        perspective: maximum perspective warp (corner shift as a share of the size; fastai's ``max_warp``).
        blur: probability of a Gaussian (sigma 0.5-2 px) or motion blur (3-7 px), as from a moving hand or a
            cheap camera.
        occlusion: probability of synthetic occlusion: 1-3 rectangles of 10-35 % of the side filled with random
            colours over the crop (the keypoints under them stay labelled: the model learns to infer them).
        lowres: probability of a low-resolution crop: shrunk to 10-50 % of its side and enlarged back (bilinear;
            albumentations' ``Downscale``), as a small hand of a whole photo enlarged into the input (the held-out
            coco-wholebody-hands hands are 15-40 px across with their margin, enlarged 4-10x into 160 px).
        upright: ``(a, b)`` keypoint indices: before the rest, each crop is turned about its centre so that the
            direction from keypoint ``a`` to ``b`` points up (``rotate`` then draws the deviation from upright), as
            the crops of a top-down pipeline are (MediaPipe turns each hand so that wrist -> middle-finger base
            points up: ``(0, 9)`` in HAND21). None: crops are taken as they are. A crop without both keypoints
            labelled is not turned.
    """

    rotate: float = 30.0
    scale: float = 0.2
    translate: float = 0.1
    flip: float = 0.5
    colour: float = 0.3
    grey: float = 0.0
    perspective: float = 0.0
    brightness: float | None = None
    contrast: float | None = None
    blur: float = 0.0
    occlusion: float = 0.0
    lowres: float = 0.0
    upright: tuple[int, int] | None = None


def upright_affine(keypoints: np.ndarray, visible: np.ndarray, pair: tuple[int, int], size: tuple[int, int]
                   ) -> np.ndarray | None:
    """The ``(2, 3)`` rotation about the centre of a ``size = (width, height)`` crop that turns the direction from
    keypoint ``pair[0]`` to ``pair[1]`` of the first instance of ``keypoints`` ``(N, K, 2)`` upwards (to -y); None
    when either is unlabelled or they coincide."""
    a, b = pair
    if not (visible[0, a] > 0 and visible[0, b] > 0):
        return None
    d = keypoints[0, b] - keypoints[0, a]
    if not np.isfinite(d).all() or np.hypot(*d) < 1e-6:
        return None
    # angle of d from "up" (0, -1), counter-clockwise positive in OpenCV's image convention
    degrees = float(np.degrees(np.arctan2(d[0], -d[1])))
    w, h = size
    return cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), degrees, 1.0)


class Augmenter:
    """Albumentations pipeline that moves keypoints with the image and re-indexes them on flips.

    Args:
        cfg: augmentation strengths.
        skeleton: supplies ``flip_perm`` for flips.
    """

    def __init__(self, cfg: AugmentConfig, skeleton: Skeleton):
        self.cfg = cfg
        self.flip_perm = np.asarray(skeleton.flip_perm)
        k = len(skeleton.keypoints)
        if cfg.upright is not None and (len(cfg.upright) != 2 or not all(0 <= i < k for i in cfg.upright)):
            raise HandposeError(f"augmentation upright must be two keypoint indices of {skeleton.name} (0..{k - 1}), "
                                f"got {cfg.upright}")
        ops: list = []
        if cfg.rotate or cfg.scale or cfg.translate:
            ops.append(A.Affine(scale=(1 - cfg.scale, 1 + cfg.scale), rotate=(-cfg.rotate, cfg.rotate),
                                translate_percent=(-cfg.translate, cfg.translate), border_mode=cv2.BORDER_CONSTANT,
                                fill=0, fill_mask=1, p=1.0))
        if cfg.perspective:
            ops.append(A.Perspective(scale=(0.0, cfg.perspective), keep_size=True, fit_output=False,
                                     border_mode=cv2.BORDER_CONSTANT, fill=0, fill_mask=1, p=1.0))
        if cfg.flip:
            ops.append(A.HorizontalFlip(p=cfg.flip))
        b = cfg.colour if cfg.brightness is None else cfg.brightness
        c = cfg.colour if cfg.contrast is None else cfg.contrast
        if cfg.colour or b or c:
            ops.append(A.ColorJitter(brightness=b, contrast=c, saturation=cfg.colour, hue=min(0.5, cfg.colour / 10),
                                     p=0.8))
        if cfg.grey:
            ops.append(A.ToGray(num_output_channels=3, p=cfg.grey))
        if cfg.blur:
            ops.append(A.OneOf([A.GaussianBlur(blur_limit=(3, 7), sigma_limit=(0.5, 2.0)),
                                A.MotionBlur(blur_limit=(3, 7))], p=cfg.blur))
        if cfg.occlusion:
            ops.append(A.CoarseDropout(num_holes_range=(1, 3), hole_height_range=(0.1, 0.35),
                                       hole_width_range=(0.1, 0.35), fill="random_uniform", p=cfg.occlusion))
        if cfg.lowres:
            linear = {"downscale": cv2.INTER_AREA, "upscale": cv2.INTER_LINEAR}
            ops.append(A.Downscale(scale_range=(0.1, 0.5), interpolation_pair=linear, p=cfg.lowres))
        self.pipeline = A.Compose(ops, keypoint_params=A.KeypointParams(format="xy", remove_invisible=False),
                                  save_applied_params=True)

    def __call__(self, image: np.ndarray, keypoints: np.ndarray, visible: np.ndarray,
                 mask: np.ndarray | None = None):
        """Augment one input-size image, its ``(N, K, 2)`` keypoints and optionally a ``(H, W)`` uint8 loss mask
        (1 = counts; area moved in from outside counts).

        Returns:
            ``(image, keypoints, visible, mask)``; keypoints that leave the image get visibility 0; ``mask`` is
            None when none was given.
        """
        n, k = keypoints.shape[:2]
        if self.cfg.upright is not None:
            image, keypoints, mask = self._turn_upright(image, keypoints, visible, mask)
        extra = {"mask": mask} if mask is not None else {}
        out = self.pipeline(image=image, keypoints=keypoints.reshape(-1, 2), **extra)
        kp = np.asarray(out["keypoints"], dtype=np.float32).reshape(n, k, 2)
        vis = visible.copy()
        if any(name == "HorizontalFlip" for name, _ in out.get("applied_transforms", [])):
            kp, vis = kp[:, self.flip_perm], vis[:, self.flip_perm]
        h, w = out["image"].shape[:2]
        inside = (kp[..., 0] >= -0.5) & (kp[..., 0] <= w - 0.5) & (kp[..., 1] >= -0.5) & (kp[..., 1] <= h - 0.5)
        vis[~inside] = 0
        return out["image"], kp, vis, out.get("mask")

    def _turn_upright(self, image: np.ndarray, keypoints: np.ndarray, visible: np.ndarray, mask: np.ndarray | None):
        h, w = image.shape[:2]
        M = upright_affine(keypoints, visible, self.cfg.upright, (w, h))
        if M is None:
            return image, keypoints, mask
        image = cv2.warpAffine(image, M, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                               borderValue=(0, 0, 0))
        if mask is not None:  # area turned in from outside the crop counts, as with the other warps
            mask = cv2.warpAffine(mask, M, (w, h), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT,
                                  borderValue=1)
        return image, apply_affine(M, keypoints), mask
