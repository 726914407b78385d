"""The keypoint form of Zhou et al. (ICCV 2017)'s depth regression: a network that reads
scale-normalised, pelvis-centred 2D and predicts each joint's depth relative to the pelvis.

``u = (x - x_root) / s`` with ``s`` the RMS distance of the visible joints to the pelvis (the 2D
scale the network never sees), missing joints entered at the pelvis; the depth comes back in 2D
units (``out * s``). The evaluated 3D is ``[x, y, depth]`` rescaled to the training skeletons'
average sum of bone lengths (Zhou et al. Sec. 4.1.2, :func:`jpose.losses.zhou_skeleton_rescale`).

Training pieces: the 2D frame the bone-ratio loss needs (:func:`aspect_preserving_2d`), the depth
targets and batch arrays (:func:`depth_targets`, :func:`depth_batch_arrays`) and the loss terms
of Zhou et al. eq. 2 and 3 (:func:`depth_loss_terms`); evaluation variants
(:func:`perspective_pose`, :func:`normalized_pose`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from jpose import kinematics, losses, skeleton
from jpose.data.common import PoseDataset, normalize_2d, normalized_intrinsics

__all__ = [
    "aspect_preserving_2d",
    "average_sum_bone_length",
    "depth_batch_arrays",
    "depth_loss_terms",
    "depth_targets",
    "normalized_pose",
    "perspective_inputs",
    "perspective_pose",
    "pose_scale_2d",
    "predict_depth",
    "rescaled_pose",
]


def pose_scale_2d(
    pose2d: jax.Array, confidence: jax.Array, *, threshold: float = 0.5,
    layout: str | skeleton.Layout = "h36m17",
) -> jax.Array:  # fmt: skip
    """``[...]`` RMS distance of the joints with confidence above ``threshold`` to the root (2D
    units; at least 1e-6)."""
    root = skeleton.get_layout(layout).root
    vis = (confidence > threshold).astype(pose2d.dtype)
    d2 = jnp.sum(jnp.square(pose2d - pose2d[..., root : root + 1, :]), axis=-1)
    n = jnp.maximum(jnp.sum(vis, axis=-1), 1.0)
    return jnp.sqrt(jnp.maximum(jnp.sum(vis * d2, axis=-1) / n, 1e-12)) + 1e-6


def predict_depth(
    apply: Callable[[jax.Array], jax.Array],
    pose2d: jax.Array,
    confidence: jax.Array,
    *,
    threshold: float = 0.5,
    layout: str | skeleton.Layout = "h36m17",
) -> tuple[jax.Array, jax.Array]:
    """Root-relative depth ``[..., J]`` in 2D units, and the 2D scale ``s [...]``.

    Args:
      apply: the depth network ``u [..., J, 2] -> [..., J, 1]``.
      pose2d: ``[..., J, 2]`` normalised 2D.
      confidence: ``[..., J]`` (0 = missing: entered at the root).
      threshold: visibility threshold of the scale ``s`` (:func:`pose_scale_2d`); the training
        targets' ``s`` (:func:`depth_batch_arrays`) must use the same.
      layout: the joint layout.
    """
    root = skeleton.get_layout(layout).root
    s = pose_scale_2d(pose2d, confidence, threshold=threshold, layout=layout)
    u = (pose2d - pose2d[..., root : root + 1, :]) / s[..., None, None]
    u = u * (confidence[..., None] > 0)
    out = apply(u)[..., 0]
    return (out - out[..., root : root + 1]) * s[..., None], s


def rescaled_pose(
    apply: Callable[[jax.Array], jax.Array],
    pose2d: jax.Array,
    confidence: jax.Array,
    *,
    avg_sum_length: float,
    threshold: float = 0.5,
    layout: str | skeleton.Layout = "h36m17",
) -> jax.Array:
    """The evaluated 3D of Zhou et al. (Sec. 4.1.2): ``[x, y, depth]`` rescaled to the training
    average sum of bone lengths, root at the origin.

    Args:
      apply: the depth network.
      pose2d: ``[B, J, 2]`` normalised 2D.
      confidence: ``[B, J]``.
      avg_sum_length: average sum of bone lengths of the training skeletons (metres).
      threshold: visibility threshold of the 2D scale (:func:`predict_depth`).
      layout: the joint layout.

    Returns:
      ``[B, J, 3]`` metres, root at the origin.
    """
    depth, _ = predict_depth(apply, pose2d, confidence, threshold=threshold, layout=layout)
    pose = jnp.concatenate([pose2d, depth[..., None]], -1)
    return losses.zhou_skeleton_rescale(pose, layout=layout, avg_sum_length=avg_sum_length)


def perspective_inputs(ds: PoseDataset, *, layout: str | skeleton.Layout = "h36m17") -> np.ndarray:
    """``[N, J, 7]`` inputs of :func:`perspective_pose`: the 2D ``pose2d_norm``, then the
    ground-truth normalised focal (2), centre (2) and root depth (1) repeated on every joint (so
    a per-example ``predict(pose2d, confidence)`` function receives the camera)."""
    root = skeleton.get_layout(layout).root
    f, c = normalized_intrinsics(ds)
    zr = ds.pose3d_cam[:, root, 2:3].astype(np.float32)
    cam = np.concatenate([f, c, zr], -1)[:, None, :].repeat(ds.pose2d_norm.shape[1], 1)
    return np.concatenate([ds.pose2d_norm.astype(np.float32), cam], -1)


def perspective_pose(
    apply: Callable[[jax.Array], jax.Array],
    packed: jax.Array,
    confidence: jax.Array,
    *,
    threshold: float = 0.5,
    layout: str | skeleton.Layout = "h36m17",
) -> jax.Array:
    """Camera-frame 3D ``[B, J, 3]`` (metres) by perspective back-projection of the predicted
    depth with the ground-truth intrinsics and root depth ``Z_r`` (:func:`perspective_inputs`):
    ``Z = Z_r (1 + depth / f_n)``, ``[X, Y] = (x - c_n) / f_n Z`` (the inverse of
    :func:`depth_targets`)."""
    x, f, ctr, zr = packed[..., :2], packed[..., 2:4], packed[..., 4:6], packed[..., 6:7]
    depth, _ = predict_depth(apply, x, confidence, threshold=threshold, layout=layout)
    z = zr * (1.0 + depth[..., None] / f[..., :1])
    return jnp.concatenate([(x - ctr) / f * z, z], -1)


def normalized_pose(
    apply: Callable[[jax.Array], jax.Array],
    pose2d: jax.Array,
    confidence: jax.Array,
    *,
    threshold: float = 0.5,
    layout: str | skeleton.Layout = "h36m17",
) -> jax.Array:
    """``[B, J, 3]`` root-relative ``[x, y, depth]`` in units of the 2D scale ``s``
    (:func:`pose_scale_2d`): the prediction of a person without 3D or camera (2D-only data)."""
    root = skeleton.get_layout(layout).root
    depth, s = predict_depth(apply, pose2d, confidence, threshold=threshold, layout=layout)
    pose = jnp.concatenate([pose2d - pose2d[..., root : root + 1, :], depth[..., None]], -1)
    return pose / s[..., None, None]


# ------------------------------------------------------------------------------------------------
# Training data and loss terms
# ------------------------------------------------------------------------------------------------


def aspect_preserving_2d(
    datasets: Mapping[str, PoseDataset], *, mode: str = "vp"
) -> dict[str, PoseDataset]:
    """Every split's ``pose2d_norm`` re-made from its pixels with one aspect-preserving scale.

    The bone-length-ratio loss (Zhou et al. eq. 3) compares lengths of bones pointing in any
    direction of ``[x, y, depth]``; with ``x / width`` and ``y / height`` (``"image"``
    normalisation of non-square images) vertical and horizontal limbs are scaled differently and
    the loss sees distorted people. ``"vp"`` (``uv / w * 2 - [1, h / w]``) divides both axes by
    the width, so 2D length ratios are those of the pixels. Splits already in ``mode`` (or
    without 2D) are returned as they are.

    Args:
      datasets: ``{split: PoseDataset}``.
      mode: an aspect-preserving normalisation (``"vp"``).

    Returns:
      ``{split: PoseDataset}`` with ``normalization == mode``.

    Raises:
      ValueError: a split to convert without pixels or image sizes (e.g. COCO train from
        ``wild2d_coco_train_norm.npz``: use the pixel file ``wild2d_coco_train.npz``).
    """
    if mode != "vp":
        raise ValueError(f"aspect_preserving_2d: mode must be 'vp', got {mode!r}")
    out = {}
    for name, ds in datasets.items():
        if ds.normalization == mode or ds.pose2d_norm is None:
            out[name] = ds
            continue
        sizes = ds.image_size_px
        if ds.pose2d_px is None or sizes is None or np.any(np.asarray(sizes) <= 0):
            raise ValueError(
                f"{name} ({ds.name}): {ds.normalization!r}-normalised 2D without pixels and "
                "image sizes cannot be made aspect-preserving for the bone-ratio loss (use "
                "wild2d_coco_train.npz, the pixel file, not the _train_norm file)"
            )
        norm = normalize_2d(ds.pose2d_px, mode=mode, image_size=sizes)
        out[name] = dataclasses.replace(ds, pose2d_norm=norm, normalization=mode)
    return out


def depth_targets(ds: PoseDataset, *, layout: str | skeleton.Layout = "h36m17") -> np.ndarray:
    """``[N, J]`` ground-truth root-relative depth in the units of ``ds.pose2d_norm``:
    ``f_n (Z - Z_root) / Z_root`` (``f_n`` the normalised focal length, the weak-perspective
    scale of the 2D), Zhou et al.'s depth "normalised by the same scale" as the 2D."""
    root = skeleton.get_layout(layout).root
    focal, _ = normalized_intrinsics(ds)
    z = ds.pose3d_cam[..., 2].astype(np.float64)
    zr = z[:, root : root + 1]
    return (focal[:, :1] * (z - zr) / zr).astype(np.float32)


def average_sum_bone_length(
    pose3d: np.ndarray, *, layout: str | skeleton.Layout = "h36m17"
) -> float:
    """Mean over ``[N, J, 3]`` skeletons of their sum of bone lengths: the scale of the evaluated
    3D (Zhou et al. Sec. 4.1.2, :func:`rescaled_pose`)."""
    return float(np.asarray(kinematics.sum_bone_lengths(pose3d, layout=layout)).mean())


def depth_batch_arrays(
    ds: PoseDataset, *, with_depth: bool, threshold: float = 0.5
) -> dict[str, np.ndarray]:
    """The host arrays of one data stream for :func:`depth_loss_terms`: ``x`` 2D ``[N, J, 2]``,
    ``c`` confidences ``[N, J]``, ``s`` the 2D scale ``[N]`` (:func:`pose_scale_2d`) and, with
    ``with_depth``, ``depth`` ``[N, J]`` (:func:`depth_targets`); float32."""
    x = ds.pose2d_norm.astype(np.float32)
    c = ds.confidence.astype(np.float32)
    s = pose_scale_2d(jnp.asarray(x), jnp.asarray(c), threshold=threshold)
    out = {"x": x, "c": c, "s": np.asarray(s)}
    if with_depth:
        out["depth"] = depth_targets(ds)
    return out


def depth_loss_terms(
    depth_3d: jax.Array,
    batch_3d: Mapping[str, jax.Array],
    depth_2d: jax.Array | None,
    batch_2d: Mapping[str, jax.Array] | None,
    *,
    canonical_lengths: jax.Array,
    scale_px: float,
    threshold: float = 0.5,
    layout: str | skeleton.Layout = "h36m17",
) -> dict[str, jax.Array]:
    """The loss terms of Zhou et al. (batch means), all computed whatever the weights:

    * ``reg``: eq. 2 depth regression of the 2D-3D samples (:func:`jpose.losses.zhou_depth_loss`
      with depth), squared errors in heatmap pixels (``scale_px`` per unit of the 2D scale ``s``);
    * ``geo_3d``: eq. 3 bone-ratio variance :func:`jpose.losses.zhou_geometric_loss` of the 2D-3D
      samples' ``[x, y, predicted depth]`` (visibility = confidence above ``threshold``);
    * ``geo_2d``: eq. 3 on the 2D-only samples (``zhou_depth_loss`` without depth, the same
      ``threshold``); 0 without.

    Args:
      depth_3d: ``[B3, J]`` predicted depth of the 2D-3D samples (2D units, :func:`predict_depth`).
      batch_3d: ``{"x" [B3, J, 2], "c" [B3, J], "depth" [B3, J], "s" [B3]}``
        (:func:`depth_batch_arrays`).
      depth_2d, batch_2d: the same for 2D-only samples (no ``depth``), or None.
      canonical_lengths: ``[E]`` mean training bone lengths (eq. 3's ``l-bar``).
      scale_px: heatmap pixels per unit of ``s`` (the regression unit).
      threshold: visibility threshold on confidences.
      layout: the joint layout.

    Returns:
      ``{"reg", "geo_3d", "geo_2d"}`` scalars.
    """
    unit = scale_px / batch_3d["s"][:, None]
    ones = jnp.ones(depth_3d.shape[:-1], bool)
    reg = losses.zhou_depth_loss(
        depth_3d * unit, batch_3d["depth"] * unit, batch_3d["x"], ones, canonical_lengths,
        layout=layout, lambda_reg=1.0, lambda_geo=0.0,
    )  # fmt: skip
    pose_3d = jnp.concatenate([batch_3d["x"], depth_3d[..., None]], -1)
    geo_3d = losses.zhou_geometric_loss(
        pose_3d, canonical_lengths, layout=layout, visibility=batch_3d["c"], threshold=threshold
    )
    terms = {"reg": jnp.mean(reg), "geo_3d": jnp.mean(geo_3d), "geo_2d": jnp.zeros(())}
    if depth_2d is not None and batch_2d is not None:
        geo_2d = losses.zhou_depth_loss(
            depth_2d, jnp.zeros_like(depth_2d), batch_2d["x"],
            jnp.zeros(depth_2d.shape[:-1], bool), canonical_lengths, layout=layout,
            lambda_reg=0.0, lambda_geo=1.0, visibility=batch_2d["c"], threshold=threshold,
        )  # fmt: skip
        terms["geo_2d"] = jnp.mean(geo_2d)
    return terms
