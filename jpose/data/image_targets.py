"""Training targets of the image networks from :class:`jpose.data.render.RenderedImages`.

Rendered images and the real-image loaders of :mod:`jpose.data.images` return the same container,
so these builders serve both. Joints are Human3.6M-17 (:data:`jpose.skeleton.H36M17`).

Units: image pixels ``(u, v)`` have their centres at integers (:mod:`jpose.data.render`); a
network with output stride ``s`` (input pixels per heatmap pixel) sees the point ``u`` at heatmap
pixel ``(u + 0.5) / s - 0.5`` (:func:`heatmap_px`), so heatmap pixel ``i`` is centred at image
pixel ``(i + 0.5) s - 0.5``.

* :func:`zhou_targets` -- Zhou et al. (ICCV 2017): 2D joints and weak-perspective depths, both in
  heatmap pixels (the paper's "depth normalised by the same scale").
* :func:`wsp_pretrain_arrays` -- WSP (Qiu et al.) pre-training on multi-person images: heatmap
  joints and boxes, ordered person pairs, relative-depth labels (eqs. 1-4, 7) and the scale gap
  ratio of eq. 14.
* :func:`wsp_finetune_arrays` -- WSP fine-tuning on single-person crops: the voxel coordinates
  of integral regression (eq. 12).
"""

from __future__ import annotations

import itertools

import numpy as np
from numpy.typing import ArrayLike

from jpose import losses, skeleton
from jpose.data.render import RenderedImages

__all__ = ["heatmap_px", "zhou_targets", "wsp_pretrain_arrays", "wsp_finetune_arrays"]

_LAYOUT = skeleton.H36M17
_ROOT = _LAYOUT.root
_HEAD, _NECK = _LAYOUT.index("Head"), _LAYOUT.index("Neck/Nose")
_ANKLES = _LAYOUT.indices(["RFoot", "LFoot"])


def heatmap_px(px: ArrayLike, stride: float) -> np.ndarray:
    """Image pixels -> heatmap pixels of a network with output stride ``stride``
    (``(px + 0.5) / stride - 0.5``; pixel centres at integers on both grids)."""
    return (np.asarray(px) + 0.5) / stride - 0.5


def zhou_targets(r: RenderedImages, *, heatmap_size: int) -> dict[str, np.ndarray]:
    """Zhou et al.'s training arrays of single-person images (first person of each image).

    Depth is weak-perspective and root-relative in heatmap pixels,
    ``d_j = f (Z_j - Z_root) / Z_root / stride`` with ``stride = S / heatmap_size``, so
    ``[u, v, d]`` is a scaled 3D pose (Zhou et al.'s depth "normalised by the same scale" as
    the 2D).

    Args:
      r: ``N`` images of side ``S`` (rendered or loaded).
      heatmap_size: side of the network's heatmaps.

    Returns:
      ``{"image": uint8 [N, S, S, 3], "kp": float32 [N, J, 2] and "depth": float32 [N, J]``
      (heatmap pixels), ``"vis": float32 [N, J]}``.
    """
    size = r.image.shape[1]
    stride = size / heatmap_size
    kp = heatmap_px(r.keypoints_2d[:, 0], stride)
    z = r.pose3d_cam[:, 0, :, 2].astype(np.float64)
    zr = z[:, _ROOT : _ROOT + 1]
    f = np.asarray(r.camera.focal)[:, :1].astype(np.float64)
    depth = f * (z - zr) / zr / stride
    return {
        "image": r.image,
        "kp": kp.astype(np.float32),
        "depth": depth.astype(np.float32),
        "vis": r.visibility[:, 0].astype(np.float32),
    }


def wsp_pretrain_arrays(r: RenderedImages, *, stride: int, rd_labels: str
                        ) -> dict[str, np.ndarray]:  # fmt: skip
    """WSP's pre-training arrays of multi-person images (Qiu et al. sec. 3.1-3.4).

    Every ordered pair ``(A, B)`` of the ``K`` person slots is listed. Two label sets are built:
    the ankle rule of eqs. 1-4, 7 on the 2D joints
    (:func:`jpose.losses.wsp_relative_depth_labels`: lower ankles = nearer) and the true
    per-joint depth order (eq. 7 with the true depths, ``Z_A <= Z_B``); ``rd_labels`` picks the
    training ones. ``delta_s`` is the scale gap ratio of eq. 14 on head-top / neck.

    Args:
      r: ``N`` images with up to ``K`` people (``person_valid``).
      stride: the network's output stride (input pixels per heatmap pixel).
      rd_labels: ``"ankle"`` or ``"depth"``.

    Returns:
      ``image``, ``kp`` [N, K, J, 2] heatmap px, ``vis`` [N, K, J], ``boxes`` [N, K, 4]
      heatmap px, ``pairs`` [N, P, 2], ``pair_valid`` [N, P], ``labels`` (training labels) /
      ``labels_ankle`` / ``labels_depth`` [N, P, J], ``label_valid`` / ``ankle_valid`` [N, P]
      and ``delta_s`` [N, P].
    """
    n, k = r.person_valid.shape
    pairs = np.array(list(itertools.permutations(range(k), 2)), np.int32).reshape(-1, 2)
    vis = r.visibility & r.person_valid[..., None]
    lab, val = losses.wsp_relative_depth_labels(r.keypoints_2d, vis, ankles=_ANKLES)
    lab, val = np.asarray(lab), np.asarray(val)
    a, b = pairs[:, 0], pairs[:, 1]
    ankle = lab[:, a, b]  # [N, P, J]
    ankle_valid = val[:, a, b]
    z = r.pose3d_cam[..., 2]
    depth = (z[:, a] <= z[:, b]).astype(np.float32)  # eq. 7 with the true depths
    pair_valid = r.person_valid[:, a] & r.person_valid[:, b]
    scale = np.asarray(losses.wsp_person_scale(r.keypoints_2d, head_top=_HEAD, head_down=_NECK))
    delta_s = np.asarray(losses.wsp_scale_gap_ratio(scale[:, a], scale[:, b]))
    if rd_labels == "ankle":
        labels, label_valid = ankle, ankle_valid & pair_valid
    elif rd_labels == "depth":
        labels, label_valid = depth, pair_valid
    else:
        raise ValueError(f"rd_labels must be 'ankle' or 'depth', got {rd_labels!r}")
    return {
        "image": r.image,
        "kp": heatmap_px(r.keypoints_2d, stride).astype(np.float32),
        "vis": vis.astype(np.float32),
        "boxes": heatmap_px(r.boxes, stride).astype(np.float32),
        "pairs": np.broadcast_to(pairs, (n,) + pairs.shape).copy(),
        "pair_valid": pair_valid,
        "labels": labels.astype(np.float32),
        "label_valid": label_valid,
        "labels_ankle": ankle.astype(np.float32),
        "ankle_valid": ankle_valid & pair_valid,
        "labels_depth": depth,
        "delta_s": delta_s.astype(np.float32),
    }


def wsp_finetune_arrays(r: RenderedImages, *, stride: int, depth_bins: int,
                        depth_range_m: float) -> dict[str, np.ndarray]:  # fmt: skip
    """WSP's fine-tuning arrays of single-person crops (first person of each image).

    The voxel targets of integral regression (Qiu et al. eq. 12): ``(u, v)`` in heatmap pixels
    and ``z = ((Z - Z_root) / depth_range_m + 1/2) (depth_bins - 1)`` in depth bins.

    Args:
      r: ``N`` images.
      stride: the network's output stride.
      depth_bins: depth bins of the 3D heatmaps.
      depth_range_m: metres spanned by the bins, centred on the root.

    Returns:
      ``image``, ``coords`` [N, J, 3] voxel targets, ``pose3d`` [N, J, 3] m (camera frame),
      ``focal`` / ``center`` [N, 2] px, ``vis`` [N, J].
    """
    p = r.pose3d_cam[:, 0]
    dz = p[..., 2] - p[:, _ROOT : _ROOT + 1, 2]
    zbin = (dz / depth_range_m + 0.5) * (depth_bins - 1)
    uv = heatmap_px(r.keypoints_2d[:, 0], stride)
    return {
        "image": r.image,
        "coords": np.concatenate([uv, zbin[..., None]], -1).astype(np.float32),
        "pose3d": p.astype(np.float32),
        "focal": np.asarray(r.camera.focal, np.float32),
        "center": np.asarray(r.camera.center, np.float32),
        "vis": r.visibility[:, 0].astype(np.float32),
    }
