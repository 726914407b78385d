"""Real images for the image experiments: crop geometry, image files and the documented layouts.

The image experiments (``experiments/zhou_image.py``, ``experiments/wsp_image.py``) train on
:class:`jpose.data.render.RenderedImages`. The loaders here read Human3.6M frames and MPII / COCO
photographs from the file layout documented in ``experiments/configs/zhou_image.py`` and
``experiments/configs/wsp_image.py``. They crop every person and return the same container, so the
training-target builders (:mod:`jpose.data.image_targets`) work on real and rendered images
alike.

Conventions:

* **Pixels.** Pixel ``(row h, column w)`` has its centre at ``(u, v) = (w, h)``, as in
  :mod:`jpose.data.render`. Pixel ``(h, w)`` covers ``[w - 0.5, w + 0.5] x [h - 0.5, h + 0.5]``.
  An image of width ``W`` spans ``u`` in ``[-0.5, W - 0.5]``.
* **Crop** (:func:`crop_affine`). A person is described by ``box_center`` (px, in the frame) and
  ``box_scale`` (the MPII convention: person height / 200 px). The crop is the square of side
  ``L = 200 * box_scale * padding`` px centred at ``box_center``. It is resized to ``S x S`` by
  bilinear interpolation. The square's edges map to the crop's edges ``-0.5`` and ``S - 0.5``, and
  ``box_center`` maps to ``((S - 1) / 2, (S - 1) / 2)``. The map from frame px to crop px is
  ``x' = s x + t`` with ``s = S / L`` and ``t = (S - 1) / 2 - s c``. 2D labels, boxes and the
  principal point go through the same map, and the crop focal length is ``s f``. Crop pixels
  that fall outside the frame are 0 (black). Near the frame border, pixels blend towards 0 over
  one frame pixel. Downscaling is not anti-aliased: this is plain bilinear sampling, like the
  ``cv2.warpAffine`` crops of the usual pose code.
* **Affine matrices** are ``[..., 2, 3]`` arrays ``A`` with ``x' = A[:, :2] x + A[:, 2]``.
* **Joints** are Human3.6M-17 (:data:`jpose.skeleton.H36M17`). MPII-16 and COCO-17 inputs are
  converted with :func:`jpose.skeleton.convert_layout`. A derived joint is labelled only when all
  of its source joints are. **Visibility** means the joint is labelled and its crop pixel is
  inside the crop (``-0.5 <= u', v' < S - 0.5``, as the renderer's "inside the image").
* **3D** is in metres, in the camera frame (OpenCV: x right, y down, z forward), and absolute,
  not root-relative. The experiments subtract the root themselves. The crop camera has identity
  extrinsics, so ``pose3d_world`` equals ``pose3d_cam``. Sources without 3D (MPII, the pair
  photographs) get NaN 3D and NaN intrinsics.
* Images are read by Pillow as RGB ``uint8`` and are not EXIF-rotated: the annotations of
  MPII / COCO refer to the stored pixel grid.

File layout (``root`` = ``data.image_root``; every ``image_path`` is relative to ``root``):

* ``h36m_train.npz``, ``h36m_test.npz``: ``image_path [N] str``, ``keypoints_2d [N, 17, 2]`` px
  in the frame (H36M-17), ``pose3d_cam [N, 17, 3]`` m (camera frame, absolute),
  ``focal [N, 2]`` px, ``center [N, 2]`` px (principal point), ``box_center [N, 2]`` px,
  ``box_scale [N]``, ``action [N] str``. Every joint is labelled.
* ``mpii_train.npz``, ``mpii_val.npz``: ``image_path [N] str``, ``keypoints_2d [N, 16, 2]`` px
  (MPII order), ``visibility [N, 16]`` (> 0: labelled), ``box_center [N, 2]`` px,
  ``box_scale [N]``. These images have no 3D.
* ``pairs_train.npz``, ``pairs_val.npz`` (two people per row, for WSP relative depth):
  ``image_path [N] str``, ``boxes [N, 2, 4]`` px ``(u0, v0, u1, v1)``,
  ``keypoints_2d [N, 2, J, 2]`` px, ``visibility [N, 2, J]``, ``labels [N, 2, 2, 17]`` (WSP eq. 7,
  per H36M-17 joint: ``labels[n, a, b, j] = 1`` when person ``a``'s joint ``j`` is nearer than
  person ``b``'s), ``delta_s [N]`` (eq. 14, in ``[0, 1]``), and an optional 0-d str ``layout``
  naming the keypoint layout: ``"h36m17"`` (the default), ``"coco17"`` or ``"mpii16"``. The crop
  is the square around the union of the two boxes: centre at the union's centre, side =
  the union's longer side times ``padding`` (``box_scale = side / 200``).
* ``images/...``: the frames and photographs (any format Pillow reads: jpg, png).

Every key's presence, shape and values are checked. An error names the file, the key and the
expected shape (:class:`jpose.data.common.DataFormatError`). A missing file or image raises
``FileNotFoundError`` naming the path and the expected layout.

Memory: the loaders hold every crop in memory, ``S * S * 3`` bytes each (192 KiB at 256 x 256).
``max_examples`` keeps an evenly spaced subset of a file's rows.

For rendered images, :func:`pose_pool` gives the 3D poses to render (:class:`PosePool`: z up,
metres, from the synthetic generator or the CMU mocap file), and :func:`normalize_images` maps
``uint8`` images to the network input range of both image experiments.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from jpose import skeleton
from jpose.data.common import (
    LOGGER,
    DataFormatError,
    _fmt,
    check_array,
    check_finite,
    load_npz,
)
from jpose.data.h36m import normalize_action_name
from jpose.data.render import RenderedImages
from jpose.data.synthetic import generate_poses
from jpose.data.virtual_cameras import pinhole_cameras

__all__ = [
    "BOX_SCALE_PX",
    "H36M_KEYS",
    "MPII_KEYS",
    "PAIR_KEYS",
    "PairLabels",
    "crop_affine",
    "invert_affine",
    "apply_affine",
    "crop_image",
    "load_image",
    "load_h36m_crops",
    "load_mpii_crops",
    "load_pair_crops",
    "pair_label_arrays",
    "POSE_POOL_OPTIONS",
    "PosePool",
    "pose_pool",
    "normalize_images",
]

BOX_SCALE_PX = 200.0
"""Frame pixels per unit of ``box_scale`` (MPII: ``box_scale`` = person height / 200 px)."""

_J = skeleton.H36M17.num_joints

H36M_KEYS: dict[str, tuple[str, ...]] = {
    "image_path": ("N",),
    "keypoints_2d": ("N", "17", "2"),
    "pose3d_cam": ("N", "17", "3"),
    "focal": ("N", "2"),
    "center": ("N", "2"),
    "box_center": ("N", "2"),
    "box_scale": ("N",),
    "action": ("N",),
}
"""Keys and shapes of ``h36m_{train,test}.npz``."""

MPII_KEYS: dict[str, tuple[str, ...]] = {
    "image_path": ("N",),
    "keypoints_2d": ("N", "16", "2"),
    "visibility": ("N", "16"),
    "box_center": ("N", "2"),
    "box_scale": ("N",),
}
"""Keys and shapes of ``mpii_{train,val}.npz``."""

PAIR_KEYS: dict[str, tuple[str, ...]] = {
    "image_path": ("N",),
    "boxes": ("N", "2", "4"),
    "keypoints_2d": ("N", "2", "J", "2"),
    "visibility": ("N", "2", "J"),
    "labels": ("N", "2", "2", "17"),
    "delta_s": ("N",),
}
"""Keys and shapes of ``pairs_{train,val}.npz`` (``J`` = joints of the optional ``layout`` key:
17 for ``h36m17`` / ``coco17``, 16 for ``mpii16``)."""

_PAIR_LAYOUTS = {"h36m17": skeleton.H36M17, "coco17": skeleton.COCO17, "mpii16": skeleton.MPII16}

_LAYOUT_HINT = {
    "h36m": (
        "expected <root>/h36m_{train,test}.npz with keys image_path [N] str (relative to <root>), "
        "keypoints_2d [N, 17, 2] px (H36M-17), pose3d_cam [N, 17, 3] m (camera frame), "
        "focal [N, 2] px, center [N, 2] px, box_center [N, 2] px, box_scale [N], action [N] str, "
        "and the images under <root>/images/ (layout: experiments/configs/zhou_image.py)"
    ),
    "mpii": (
        "expected <root>/mpii_{train,val}.npz with keys image_path [N] str (relative to <root>), "
        "keypoints_2d [N, 16, 2] px (MPII order), visibility [N, 16], box_center [N, 2] px, "
        "box_scale [N], and the images under <root>/images/ "
        "(layout: experiments/configs/zhou_image.py)"
    ),
    "pairs": (
        "expected <root>/pairs_{train,val}.npz with keys image_path [N] str (relative to <root>), "
        "boxes [N, 2, 4] px, keypoints_2d [N, 2, J, 2] px, visibility [N, 2, J], "
        "labels [N, 2, 2, 17], delta_s [N], optional layout (h36m17 | coco17 | mpii16), and the "
        "images under <root>/images/ (layout: experiments/configs/wsp_image.py)"
    ),
}

_SPLITS = {"h36m": ("train", "test"), "mpii": ("train", "val"), "pairs": ("train", "val")}


# ------------------------------------------------------------------------------------------------
# Crop geometry
# ------------------------------------------------------------------------------------------------


def _check_affine(affine: ArrayLike, name: str = "affine") -> np.ndarray:
    a = np.asarray(affine, dtype=np.float64)
    if a.ndim < 2 or a.shape[-2:] != (2, 3):
        raise ValueError(f"{name} must have shape [..., 2, 3], got {a.shape}")
    return a


def crop_affine(
    box_center: ArrayLike, box_scale: ArrayLike, *, out_size: int, padding: float = 1.0
) -> np.ndarray:
    """The affine map from frame pixels to the pixels of an ``out_size`` square crop.

    The crop is the square of side ``L = 200 * box_scale * padding`` px centred at ``box_center``,
    resized to ``out_size x out_size``. See the module docstring for the pixel convention.

    Args:
      box_center: ``[..., 2]`` square centre ``(u, v)`` in frame pixels.
      box_scale: ``[...]`` person height / 200 px (the MPII convention); must be positive.
      out_size: ``S``, the crop side in pixels.
      padding: extra margin factor on the square's side (1 = none); must be positive.

    Returns:
      ``float64 [..., 2, 3]`` matrices ``A`` with ``x_crop = A[..., :2] x_frame + A[..., 2]``.

    Raises:
      ValueError: bad shapes, a non-positive scale or padding, or ``out_size < 1``.
    """
    c = np.asarray(box_center, dtype=np.float64)
    scale = np.asarray(box_scale, dtype=np.float64)
    if c.ndim < 1 or c.shape[-1] != 2:
        raise ValueError(f"box_center must have shape [..., 2], got {c.shape}")
    if scale.shape != c.shape[:-1]:
        raise ValueError(
            f"box_scale must have shape {c.shape[:-1]} (box_center's leading axes), "
            f"got {scale.shape}"
        )
    if int(out_size) != out_size or int(out_size) < 1:
        raise ValueError(f"out_size must be a positive integer, got {out_size!r}")
    if not np.all(np.isfinite(c)):
        raise ValueError("box_center must be finite")
    if not np.all(np.isfinite(scale) & (scale > 0)):
        raise ValueError(f"box_scale must be finite and positive, got min {np.min(scale)}")
    if not (np.isfinite(padding) and padding > 0):
        raise ValueError(f"padding must be positive, got {padding!r}")
    size = int(out_size)
    s = size / (BOX_SCALE_PX * scale * float(padding))  # crop px per frame px
    half = (size - 1) / 2.0
    a = np.zeros(scale.shape + (2, 3), np.float64)
    a[..., 0, 0] = a[..., 1, 1] = s
    a[..., :, 2] = half - s[..., None] * c
    return a


def invert_affine(affine: ArrayLike) -> np.ndarray:
    """Inverse of ``[..., 2, 3]`` affine maps (crop px -> frame px for a :func:`crop_affine`).

    Args:
      affine: ``[..., 2, 3]`` invertible affine matrices.

    Returns:
      ``float64 [..., 2, 3]``.

    Raises:
      ValueError: bad shape or a singular linear part.
    """
    a = _check_affine(affine)
    m = a[..., :2]
    det = m[..., 0, 0] * m[..., 1, 1] - m[..., 0, 1] * m[..., 1, 0]
    if np.any(np.abs(det) < 1e-12):
        raise ValueError("affine is singular (determinant of its 2 x 2 part ~ 0)")
    inv = np.linalg.inv(m)
    return np.concatenate([inv, -np.einsum("...ij,...j->...i", inv, a[..., 2])[..., None]], -1)


def apply_affine(points: ArrayLike, affine: ArrayLike) -> np.ndarray:
    """Map ``[..., 2]`` points by affine matrices: ``x' = A[:, :2] x + A[:, 2]``.

    The batch axes of ``affine`` line up with the leading axes of ``points`` from the left, and
    any trailing point axes share one matrix. For example ``[N, 2, 3]`` maps ``[N, 2]``,
    ``[N, J, 2]`` or ``[N, K, J, 2]`` points (one matrix per image). Size-1 axes broadcast.

    Args:
      points: ``[..., 2]`` pixel coordinates ``(u, v)``.
      affine: ``[B..., 2, 3]`` with ``B...`` a prefix of ``points.shape[:-1]`` (up to broadcasting).

    Returns:
      ``[..., 2]`` mapped points (float64 for integer or float64 input, else float32).

    Raises:
      ValueError: bad shapes or batch axes that do not line up.
    """
    p = np.asarray(points)
    if p.ndim < 1 or p.shape[-1] != 2:
        raise ValueError(f"points must have shape [..., 2], got {p.shape}")
    a = _check_affine(affine)
    batch = a.shape[:-2]
    lead = p.shape[:-1]
    if len(batch) > len(lead) or any(
        b != 1 and q != 1 and b != q for b, q in zip(batch, lead[: len(batch)])
    ):
        raise ValueError(
            f"affine batch axes {batch} do not line up with the leading axes {lead} of points "
            "(they must match a prefix, from the left)"
        )
    a = a.reshape(batch + (1,) * (len(lead) - len(batch)) + (2, 3))
    dtype = np.float32 if p.dtype in (np.float32, np.float16) else np.float64
    pf = p.astype(np.float64)
    out = pf[..., 0:1] * a[..., :, 0] + pf[..., 1:2] * a[..., :, 1] + a[..., :, 2]
    return out.astype(dtype)


def crop_image(image: ArrayLike, affine: ArrayLike, out_size: int) -> np.ndarray:
    """Crop and resize one image by an affine map (bilinear; outside the image = 0).

    Crop pixel ``(i, j)`` samples the image at ``A^-1 (j, i)`` by bilinear interpolation. The
    image is extended by zeros, so samples more than one pixel outside the image are 0 and samples
    within one pixel of the border blend towards 0. There is no anti-aliasing when downscaling.

    Args:
      image: ``[H, W, C]`` or ``[H, W]`` array (uint8 or float).
      affine: ``[2, 3]`` map from image pixels to crop pixels (e.g. from :func:`crop_affine`).
      out_size: ``S``, the crop side in pixels.

    Returns:
      ``[S, S, C]`` (or ``[S, S]``): uint8 rounded for uint8 input, float32 otherwise.

    Raises:
      ValueError: bad shapes, an empty image or a singular affine.
    """
    img = np.asarray(image)
    if img.ndim not in (2, 3) or img.shape[0] < 1 or img.shape[1] < 1:
        raise ValueError(f"image must have shape [H, W, C] or [H, W], got {img.shape}")
    a = _check_affine(affine)
    if a.shape != (2, 3):
        raise ValueError(f"affine must have shape [2, 3] (one image), got {a.shape}")
    if int(out_size) != out_size or int(out_size) < 1:
        raise ValueError(f"out_size must be a positive integer, got {out_size!r}")
    size = int(out_size)
    gray = img.ndim == 2
    src = img[..., None] if gray else img
    h, w = src.shape[:2]
    inv = invert_affine(a)
    jj, ii = np.meshgrid(np.arange(size, dtype=np.float64), np.arange(size, dtype=np.float64))
    u = inv[0, 0] * jj + inv[0, 1] * ii + inv[0, 2]
    v = inv[1, 0] * jj + inv[1, 1] * ii + inv[1, 2]
    padded = np.zeros((h + 2, w + 2, src.shape[2]), src.dtype)  # one pixel of zeros around
    padded[1:-1, 1:-1] = src
    x0, y0 = np.floor(u), np.floor(v)
    fx, fy = (u - x0)[..., None], (v - y0)[..., None]
    # padded index of image column x is x + 1; clip to the zero border
    cx0 = np.clip(x0, -1, w).astype(np.intp) + 1
    cx1 = np.clip(x0 + 1, -1, w).astype(np.intp) + 1
    cy0 = np.clip(y0, -1, h).astype(np.intp) + 1
    cy1 = np.clip(y0 + 1, -1, h).astype(np.intp) + 1
    out = (
        padded[cy0, cx0] * ((1 - fx) * (1 - fy))
        + padded[cy0, cx1] * (fx * (1 - fy))
        + padded[cy1, cx0] * ((1 - fx) * fy)
        + padded[cy1, cx1] * (fx * fy)
    )
    if img.dtype == np.uint8:
        out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    else:
        out = out.astype(np.float32)
    return out[..., 0] if gray else out


# ------------------------------------------------------------------------------------------------
# Image files
# ------------------------------------------------------------------------------------------------


def load_image(path: str | os.PathLike, *, hint: str = "") -> np.ndarray:
    """Read an image file as RGB (Pillow; grey / palette / RGBA converted, no EXIF rotation).

    Args:
      path: image file (jpg, png, or anything else Pillow reads).
      hint: the expected layout, added to a ``FileNotFoundError`` message.

    Returns:
      ``uint8 [H, W, 3]``.

    Raises:
      ImportError: Pillow is not installed.
      FileNotFoundError: no such file (the message names the path and ``hint``).
      DataFormatError: the file cannot be decoded as an image.
    """
    try:
        from PIL import Image
    except ImportError as err:  # pragma: no cover - Pillow comes with matplotlib
        raise ImportError(
            "jpose.data.images.load_image needs Pillow to read images: pip install pillow"
        ) from err
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: image not found" + (f"; {hint}" if hint else ""))
    try:
        with Image.open(path) as im:
            return np.array(im.convert("RGB"), dtype=np.uint8)
    except (OSError, ValueError) as err:  # PIL.UnidentifiedImageError is an OSError
        raise DataFormatError(f"{path}: cannot decode as an image: {err}") from err


# ------------------------------------------------------------------------------------------------
# npz layouts
# ------------------------------------------------------------------------------------------------


class _NpzReader:
    """Reads and checks the keys of one layout file; every error names the file and the key."""

    def __init__(self, root: str | os.PathLike, kind: str, split: str):
        if not os.fspath(root):
            raise ValueError(
                "image root is empty: set data.image_root to the folder of the npz files and images"
            )
        if split not in _SPLITS[kind]:
            raise ValueError(f"{kind} split must be one of {_SPLITS[kind]}, got {split!r}")
        self.root = pathlib.Path(root)
        self.path, self.kind = self.root / f"{kind}_{split}.npz", kind
        self.hint = _LAYOUT_HINT[kind]
        self.npz = load_npz(self.path, what=f"a {kind} image-label file", hint=self.hint)
        self.files = set(self.npz.files)

    def raw(self, key: str, shape: Sequence[int | None]) -> np.ndarray:
        if key not in self.files:
            raise DataFormatError(
                f"{self.path}: missing key {key!r} (expected shape {_fmt(shape)}); "
                f"keys present: {sorted(self.files)}; {self.hint}"
            )
        try:
            return self.npz[key]
        except ValueError as err:  # object arrays need allow_pickle
            raise DataFormatError(
                f"{self.path}: key {key!r}: cannot read ({err}); store strings as a fixed-width "
                "unicode array, e.g. np.asarray(paths, dtype=str)"
            ) from err

    def _typed(self, key: str, shape, kinds: str, what: str, dtype) -> np.ndarray:
        raw = self.raw(key, shape)
        if raw.dtype.kind not in kinds:
            raise self.error(
                key, f"expected {what} array of shape {_fmt(shape)}, got dtype {raw.dtype}"
            )
        return check_array(raw, source=self.path, key=key, shape=shape, dtype=dtype)

    def strings(self, key: str, n: int | None) -> np.ndarray:
        return self._typed(key, (n,), "US", "a string", None).astype(str)

    def numbers(self, key: str, shape: Sequence[int | None], *, finite: bool = True) -> np.ndarray:
        arr = self._typed(key, shape, "biuf", "a numeric", np.float64)
        return check_finite(arr, source=self.path, key=key) if finite else arr

    def error(self, key: str, message: str) -> DataFormatError:
        return DataFormatError(f"{self.path}: key {key!r}: {message}")


def _subsample(n: int, max_examples: int) -> np.ndarray:
    """Evenly spaced rows (all of them when ``max_examples`` is 0 or >= n)."""
    if max_examples < 0:
        raise ValueError(f"max_examples must be >= 0, got {max_examples}")
    if max_examples == 0 or max_examples >= n:
        return np.arange(n)
    return (np.arange(max_examples) * n) // max_examples


def _positive(reader: _NpzReader, key: str, arr: np.ndarray) -> None:
    if np.any(arr <= 0):
        bad = int(np.argmax(arr.reshape(len(arr), -1).min(-1) <= 0))
        raise reader.error(key, f"expected positive values, row {bad} has {arr[bad]}")


def _check_pose3d(reader: _NpzReader, pose3d: np.ndarray) -> None:
    root_z = pose3d[:, skeleton.H36M17.root, 2]
    if np.any(root_z <= 0):
        bad = int(np.argmax(root_z <= 0))
        raise reader.error(
            "pose3d_cam",
            f"expected absolute camera-frame coordinates (root depth z > 0 m); row {bad} has "
            f"root z = {root_z[bad]:.3g} (root-relative poses cannot be used: the crop depth "
            "and the evaluation need the root depth)",
        )
    med = float(np.median(root_z))
    if med > 100.0:
        raise reader.error(
            "pose3d_cam", f"median root depth {med:.4g}: expected metres, these look like mm"
        )


def _check_reprojection(
    reader: _NpzReader, kp: np.ndarray, pose3d: np.ndarray, focal: np.ndarray, center: np.ndarray
) -> None:
    """Warn when the 2D labels are far from the projection of the 3D (wrong camera or order)."""
    z = np.maximum(pose3d[..., 2:], 1e-3)
    proj = pose3d[..., :2] / z * focal[:, None] + center[:, None]
    err = np.median(np.linalg.norm(proj - kp, axis=-1))
    size = np.median(np.ptp(kp, axis=1).max(-1))
    if err > 0.05 * max(size, 1.0):
        LOGGER.warning(
            "%s: the projection of pose3d_cam with focal / center is %.1f px (median) from "
            "keypoints_2d (median person size %.0f px); check the camera and the joint order",
            reader.path,
            err,
            size,
        )


# ------------------------------------------------------------------------------------------------
# Cropping many rows
# ------------------------------------------------------------------------------------------------


def _crop_rows(
    root: pathlib.Path,
    paths: np.ndarray,
    affines: np.ndarray,
    *,
    size: int,
    hint: str,
    source: pathlib.Path,
    num_workers: int | None,
) -> np.ndarray:
    """``uint8 [N, S, S, 3]`` crops; each image file is decoded once for all its rows."""
    groups: dict[str, list[int]] = {}
    for i, p in enumerate(paths):
        groups.setdefault(str(p), []).append(i)
    missing = [p for p in groups if not (root / p).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{root / missing[0]}: image not found (image_path of row {groups[missing[0]][0]} in "
            f"{source}; {len(missing)} of {len(groups)} images missing); {hint}"
        )
    out = np.zeros((len(paths), size, size, 3), np.uint8)

    def work(item: tuple[str, list[int]]) -> None:
        image = load_image(root / item[0], hint=hint)
        for i in item[1]:
            out[i] = crop_image(image, affines[i], size)

    workers = min(8, os.cpu_count() or 1) if num_workers is None else int(num_workers)
    if workers <= 1 or len(groups) <= 1:
        for item in groups.items():
            work(item)
    else:
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            list(pool.map(work, groups.items()))
    return out


def _crop_set(
    r: _NpzReader,
    paths: np.ndarray,
    *,
    box_center: np.ndarray,
    box_scale: np.ndarray,
    keypoints: np.ndarray,
    labelled: np.ndarray,
    image_size: int,
    padding: float,
    max_examples: int,
    num_workers: int | None,
    pose3d: np.ndarray | None = None,
    focal: np.ndarray | None = None,
    center: np.ndarray | None = None,
    boxes: np.ndarray | None = None,
    depth_order: np.ndarray | None = None,
    what: str = "rows",
) -> tuple[RenderedImages, np.ndarray]:
    """Crop an evenly spaced subset of the file's rows and map every label into the crop.

    Per-row arrays hold all ``N`` rows of the file (per person: ``[N, K, ...]``). Returns the
    renderer's container and the rows kept.
    """
    n, k = keypoints.shape[:2]
    rows = _subsample(n, int(max_examples))
    affine = crop_affine(box_center[rows], box_scale[rows], out_size=image_size, padding=padding)
    size = int(image_size)
    image = _crop_rows(r.root, paths[rows], affine, size=size, hint=r.hint,
                       source=r.path, num_workers=num_workers)  # fmt: skip
    labelled = labelled[rows]
    kp = apply_affine(np.where(labelled[..., None], keypoints[rows], 0.0), affine)
    inside = np.all((kp >= -0.5) & (kp < size - 0.5), axis=-1)
    visibility = labelled & inside
    if boxes is None:  # box of the labelled joints
        lo = np.where(labelled[..., None], kp, np.inf).min(-2)
        hi = np.where(labelled[..., None], kp, -np.inf).max(-2)
        crop_boxes = np.concatenate([lo, hi], -1)
        crop_boxes = np.where(labelled.any(-1)[..., None], crop_boxes, 0.0)
    else:
        crop_boxes = np.concatenate([apply_affine(boxes[rows, ..., :2], affine),
                                     apply_affine(boxes[rows, ..., 2:], affine)], -1)  # fmt: skip
    crop_boxes = np.clip(crop_boxes, 0, size - 1)
    m = len(rows)
    if pose3d is None:
        pose3d = np.full((m, k, _J, 3), np.nan)
        cam_focal = cam_center = np.full((m, 2), np.nan)
    else:
        pose3d = pose3d[rows]
        cam_focal = focal[rows] * affine[:, 0, 0, None]
        cam_center = apply_affine(center[rows], affine)
    f32 = np.float32
    eye = np.broadcast_to(np.eye(3), (m, 3, 3))
    camera = pinhole_cameras(eye, np.zeros((m, 3)), cam_focal, cam_center, size)
    LOGGER.info("%s: %d of %d %s cropped to %d x %d", r.path, m, n, what, size, size)
    crops = RenderedImages(
        image=image,
        keypoints_2d=kp.astype(f32),
        visibility=visibility,
        pose3d_cam=pose3d.astype(f32),
        pose3d_world=pose3d.astype(f32),
        camera=camera,
        person_valid=np.ones((m, k), bool),
        depth_order=np.zeros((m, k), np.int32) if depth_order is None else depth_order[rows],
        boxes=crop_boxes.astype(f32),
        segmentation=np.broadcast_to(np.int8(-1), (m, size, size)),
        pose_index=np.broadcast_to(rows[:, None], (m, k)).astype(np.int32),
    )
    return crops, rows


# ------------------------------------------------------------------------------------------------
# Loaders of the documented layouts
# ------------------------------------------------------------------------------------------------


def load_h36m_crops(
    root: str | os.PathLike,
    split: str,
    *,
    image_size: int,
    padding: float = 1.0,
    max_examples: int = 0,
    num_workers: int | None = None,
) -> tuple[RenderedImages, np.ndarray]:
    """Human3.6M frames with 3D labels (``<root>/h36m_<split>.npz``), cropped per row.

    Args:
      root: folder of the layout (module docstring).
      split: ``"train"`` or ``"test"``.
      image_size: ``S``, crop side in pixels.
      padding: crop margin factor (:func:`crop_affine`).
      max_examples: keep this many evenly spaced rows (0: all).
      num_workers: image-decoding threads (default ``min(8, cpu_count)``; 0 or 1: none).

    Returns:
      ``(crops, actions)``: :class:`~jpose.data.render.RenderedImages` with one person per
      image (``K = 1``; 2D in crop px, crop intrinsics, absolute camera-frame 3D in m,
      ``pose_index`` = row of the npz file) and ``actions [N]`` str, normalised by
      :func:`jpose.data.h36m.normalize_action_name`.

    Raises:
      FileNotFoundError: the npz file or an image is missing.
      DataFormatError: a key is missing, has the wrong shape or bad values.
    """
    r = _NpzReader(root, "h36m", split)
    paths = r.strings("image_path", None)
    n = len(paths)
    kp = r.numbers("keypoints_2d", (n, 17, 2))
    pose3d = r.numbers("pose3d_cam", (n, 17, 3))
    focal = r.numbers("focal", (n, 2))
    center = r.numbers("center", (n, 2))
    box_center = r.numbers("box_center", (n, 2))
    box_scale = r.numbers("box_scale", (n,))
    actions = r.strings("action", n)
    _positive(r, "focal", focal)
    _positive(r, "box_scale", box_scale)
    _check_pose3d(r, pose3d)
    _check_reprojection(r, kp, pose3d, focal, center)
    crops, rows = _crop_set(
        r, paths, box_center=box_center, box_scale=box_scale, keypoints=kp[:, None],
        labelled=np.ones((n, 1, _J), bool), pose3d=pose3d[:, None], focal=focal, center=center,
        image_size=image_size, padding=padding, max_examples=max_examples, num_workers=num_workers,
    )  # fmt: skip
    return crops, np.array([normalize_action_name(a) for a in actions[rows]], dtype=str)


def load_mpii_crops(
    root: str | os.PathLike,
    split: str,
    *,
    image_size: int,
    padding: float = 1.0,
    max_examples: int = 0,
    num_workers: int | None = None,
) -> tuple[RenderedImages, np.ndarray]:
    """MPII photographs with 2D labels only (``<root>/mpii_<split>.npz``), cropped per person.

    Args as :func:`load_h36m_crops`; ``split`` is ``"train"`` or ``"val"``.

    Returns:
      ``(crops, labels)``: :class:`~jpose.data.render.RenderedImages` with ``K = 1``, MPII-16
      converted to H36M-17 (a derived joint is labelled when all its sources are), NaN 3D and
      intrinsics; ``labels [N]`` = ``"mpii"``.

    Raises:
      FileNotFoundError: the npz file or an image is missing.
      DataFormatError: a key is missing, has the wrong shape or bad values.
    """
    r = _NpzReader(root, "mpii", split)
    paths = r.strings("image_path", None)
    n = len(paths)
    vis = r.numbers("visibility", (n, 16)) > 0
    kp = r.numbers("keypoints_2d", (n, 16, 2), finite=False)
    check_finite(kp[vis], source=r.path, key="keypoints_2d (labelled joints)")
    box_center = r.numbers("box_center", (n, 2))
    box_scale = r.numbers("box_scale", (n,))
    _positive(r, "box_scale", box_scale)
    kp17, vis17 = skeleton.mpii16_to_h36m17(np.where(vis[..., None], kp, 0.0), vis.astype(float))
    crops, rows = _crop_set(
        r, paths, box_center=box_center, box_scale=box_scale, keypoints=kp17[:, None],
        labelled=vis17[:, None] > 0, image_size=image_size, padding=padding,
        max_examples=max_examples, num_workers=num_workers,
    )  # fmt: skip
    return crops, np.full(len(rows), "mpii")


@dataclasses.dataclass(frozen=True)
class PairLabels:
    """Relative-depth labels of two-person crops (``pairs_<split>.npz``).

    Attributes:
      labels: ``float32 [N, 2, 2, 17]`` WSP eq. 7: ``labels[n, a, b, j] = 1`` when person ``a``'s
        joint ``j`` is nearer than person ``b``'s (the diagonal ``a == b`` is not used).
      delta_s: ``float32 [N]`` WSP eq. 14 scale gap ratio of the pair, in ``[0, 1]``.
    """

    labels: np.ndarray
    delta_s: np.ndarray


def load_pair_crops(
    root: str | os.PathLike,
    split: str,
    *,
    image_size: int,
    padding: float = 1.0,
    max_examples: int = 0,
    num_workers: int | None = None,
) -> tuple[RenderedImages, PairLabels]:
    """Two-person photographs with relative-depth labels (``<root>/pairs_<split>.npz``).

    The crop is the square around the union of the two person boxes (module docstring). Args
    as :func:`load_h36m_crops`; ``split`` is ``"train"`` or ``"val"``, ``padding`` is the margin
    factor on the side of the union square.

    Returns:
      ``(crops, labels)``: :class:`~jpose.data.render.RenderedImages` with ``K = 2`` people per
      image (H36M-17 2D in crop px, boxes in crop px, ``depth_order`` from the root joint's
      label, NaN 3D and intrinsics) and their :class:`PairLabels`.

    Raises:
      FileNotFoundError: the npz file or an image is missing.
      DataFormatError: a key is missing, has the wrong shape or bad values.
    """
    r = _NpzReader(root, "pairs", split)
    name = "h36m17"
    if "layout" in r.files:
        raw = r.raw("layout", ())
        if raw.shape != () or raw.dtype.kind not in "US" or str(raw) not in _PAIR_LAYOUTS:
            raise r.error(
                "layout", f"expected a 0-d string in {sorted(_PAIR_LAYOUTS)}, got {raw!r}"
            )
        name = str(raw)
    layout = _PAIR_LAYOUTS[name]
    nj = layout.num_joints
    paths = r.strings("image_path", None)
    n = len(paths)
    boxes = r.numbers("boxes", (n, 2, 4))
    vis = r.numbers("visibility", (n, 2, nj)) > 0
    kp = r.numbers("keypoints_2d", (n, 2, nj, 2), finite=False)
    check_finite(kp[vis], source=r.path, key="keypoints_2d (labelled joints)")
    labels = r.numbers("labels", (n, 2, 2, _J))
    delta_s = r.numbers("delta_s", (n,))
    if np.any((labels != 0) & (labels != 1)):
        raise r.error("labels", "expected values in {0, 1} (eq. 7: 1 = person a nearer)")
    if np.any((delta_s < 0) | (delta_s > 1)):
        raise r.error("delta_s", "expected values in [0, 1] (eq. 14 scale gap ratio)")
    if np.any((boxes[..., 2] <= boxes[..., 0]) | (boxes[..., 3] <= boxes[..., 1])):
        raise r.error("boxes", "expected (u0, v0, u1, v1) with u1 > u0 and v1 > v0")
    kp17, vis17 = skeleton.convert_layout(
        np.where(vis[..., None], kp, 0.0), vis.astype(float), source=layout, target=skeleton.H36M17
    )
    lo, hi = boxes[..., :2].min(1), boxes[..., 2:].max(1)  # union of the two boxes
    a_nearer = labels[:, 0, 1, skeleton.H36M17.root] > 0.5
    crops, rows = _crop_set(
        r, paths, box_center=(lo + hi) / 2.0, box_scale=(hi - lo).max(-1) / BOX_SCALE_PX,
        keypoints=kp17, labelled=vis17 > 0, boxes=boxes,
        depth_order=np.stack([~a_nearer, a_nearer], -1).astype(np.int32),  # 0 = nearest
        image_size=image_size, padding=padding, max_examples=max_examples,
        num_workers=num_workers, what=f"pairs ({name})",
    )  # fmt: skip
    return crops, PairLabels(labels[rows].astype(np.float32), delta_s[rows].astype(np.float32))


def pair_label_arrays(pair_labels: PairLabels, pairs: ArrayLike) -> dict[str, np.ndarray]:
    """The file's relative-depth labels ordered by the experiment's pairs.

    The result overrides the label fields of :func:`jpose.data.image_targets.wsp_pretrain_arrays`
    on real pairs. ``labels`` and ``labels_depth`` both hold the file's labels: the reference
    order, since real photographs have no depth. ``labels_ankle`` (the ankle rule on the 2D) stays
    as ``wsp_pretrain_arrays`` computes it.

    Args:
      pair_labels: :class:`PairLabels` of N two-person images.
      pairs: ``[P, 2]`` or ``[N, P, 2]`` ordered person indices ``(A, B)`` in ``{0, 1}``.

    Returns:
      ``{"labels", "labels_depth": float32 [N, P, 17], "label_valid", "pair_valid": bool [N, P],
      "delta_s": float32 [N, P]}``.

    Raises:
      ValueError: bad pair indices or shapes.
    """
    lab = np.asarray(pair_labels.labels)
    n = lab.shape[0]
    p = np.asarray(pairs)
    if p.ndim == 3:
        if p.shape[0] != n or np.any(p != p[:1]):
            raise ValueError("pairs [N, P, 2] must hold the same pairs for every image")
        p = p[0]
    if p.ndim != 2 or p.shape[1] != 2 or np.any((p < 0) | (p > 1)) or np.any(p[:, 0] == p[:, 1]):
        raise ValueError(
            f"pairs must be [P, 2] indices of two different persons in {{0, 1}}, got {p.tolist()}"
        )
    a, b = p[:, 0], p[:, 1]
    ordered = lab[:, a, b].astype(np.float32)  # [N, P, J]
    valid = np.ones(ordered.shape[:2], bool)
    delta = np.broadcast_to(np.asarray(pair_labels.delta_s, np.float32)[:, None], valid.shape)
    return {
        "labels": ordered,
        "labels_depth": ordered.copy(),
        "label_valid": valid,
        "pair_valid": valid.copy(),
        "delta_s": delta.copy(),
    }


# ------------------------------------------------------------------------------------------------
# Pose pools for rendered images, and the network input range
# ------------------------------------------------------------------------------------------------

POSE_POOL_OPTIONS = ("poses", "num_people_pool", "cmu_subsample", "data_dir")
"""The keyword options of :func:`pose_pool` an experiment passes from its data config
(``**{k: cfg[k] for k in POSE_POOL_OPTIONS}``)."""


@dataclasses.dataclass(frozen=True)
class PosePool:
    """3D poses (z up, metres) to render, with a label per pose (pose class / action).

    Attributes:
      poses: ``[N, J, 3]`` Human3.6M-17 poses, metres, z up.
      labels: ``[N]`` str pose class (synthetic) or action (CMU).
    """

    poses: np.ndarray
    labels: np.ndarray


def pose_pool(
    *,
    split: str,
    mix: Mapping[str, float],
    seed: int,
    poses: str,
    num_people_pool: int,
    cmu_subsample: int,
    data_dir: str | os.PathLike | None = None,
) -> PosePool:
    """Poses to render: the synthetic generator (``mix`` of pose classes, fresh people per seed)
    or the CMU mocap split (``train`` / ``test``; ``mix`` ignored).

    Args:
      split: a split name; CMU uses its ``test`` sequences for names starting with ``test``,
        else its ``train`` sequences.
      mix: ``{pose class: weight}`` of :func:`jpose.data.synthetic.generate_poses`.
      seed: numpy seed of the synthetic people.
      poses: ``"synthetic"`` or ``"cmu"``.
      num_people_pool: synthetic people in the pool (about 4000 poses in all).
      cmu_subsample: keep every n-th CMU frame.
      data_dir: folder of ``cmu_mocap_h36m17.npz`` (empty or None:
        :func:`jpose.data.shared_data_dir`).

    Returns:
      :class:`PosePool`.
    """
    if poses == "synthetic":
        g = generate_poses(
            np.random.default_rng(seed), num_people=int(num_people_pool),
            poses_per_person=max(1, 4000 // int(num_people_pool)), mix=dict(mix),
        )  # fmt: skip
        return PosePool(g["pose"], np.asarray(g["pose_class"]).astype(str))
    if poses == "cmu":
        from jpose.data import load_cmu_mocap, shared_data_dir  # jax-importing; used rarely

        root = data_dir or shared_data_dir()
        if root is None:
            raise FileNotFoundError("CMU mocap: set data.data_dir (folder of cmu_mocap_h36m17.npz)")
        mocap = load_cmu_mocap(pathlib.Path(root) / "cmu_mocap_h36m17.npz")
        frames, labels = mocap.frames("test" if split.startswith("test") else "train",
                                      subsample=int(cmu_subsample))  # fmt: skip
        return PosePool(frames.astype(np.float32), labels["action"].astype(str))
    raise ValueError(f"data.poses must be 'synthetic' or 'cmu', got {poses!r}")


def normalize_images(images: Any) -> Any:
    """uint8 ``[..., S, S, 3]`` -> float32 in ``[-0.5, 0.5]`` (numpy or jax arrays; the input
    of both image networks)."""
    return images.astype(np.float32) / 255.0 - 0.5
