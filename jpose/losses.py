"""Losses and differentiable layers of the five papers jpose reproduces.

Conventions (every function in this module):

* Arrays are positional, options keyword-only. Inputs take arbitrary leading batch axes ``[...]``:
  3D poses ``[..., J, 3]`` (metres, camera frame, OpenCV axes: x right, y down, z forward), 2D
  keypoints ``[..., J, 2]`` (pixels unless a docstring says normalised), confidences and
  visibilities ``[..., J]``, heatmaps ``[..., J, H, W]`` or ``[..., J, D, H, W]``.
* Losses return **per-example** values ``[...]`` (or per-joint ``[..., J]`` where stated); the
  caller reduces over the batch (the ``1 / N`` of the papers' equations). Weighted or masked
  means are explicit arguments.
* Numerics: norms use :func:`jpose.geometry.safe_norm`, perspective divisions clamp depth to
  ``min_depth`` (see :mod:`jpose.camera`), divisions by data-dependent sums are guarded, logits
  go through ``log_sigmoid`` / ``softmax``; values and gradients stay finite at zero-length
  bones, coincident joints, depth at the clamp, all-zero confidences and logits of ``+-1e4``.
* Each function cites its paper and equation. Where a formula is ambiguous the reading taken is
  stated in a ``Notes:`` section of the docstring.

Papers: CameraPose (Yang et al. WACV 2023), Zhou et al. (ICCV 2017, "Towards 3D human pose
estimation in the wild"), Drover et al. (ECCV-W 2018, "Can 3D pose be learned from 2D projections
alone?"), Li et al. (AAAI 2020, "Geometry-driven self-supervised method for 3D human pose
estimation"), WSP (Qiu et al., "Weakly-supervised pre-training for 3D human pose estimation via
perspective knowledge"). Adversarial losses are in :mod:`jpose.adversarial`, PoseAug generator
operations in :mod:`jpose.augment`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.typing import ArrayLike

from jpose.camera import (
    intrinsics_matrix,
    invert_transform,
    project_pinhole,
    project_unit_focal,
    transform_points,
)
from jpose.geometry import _check_joints, _check_last, random_rotation, rotate_points, safe_norm
from jpose.kinematics import bone_length_ratios, rescale_to_sum_of_bone_lengths
from jpose.skeleton import ZHOU_GROUPS, Layout, check_points, get_layout

__all__ = [
    # Martinez et al. (the supervised reference)
    "martinez_loss",
    # CameraPose
    "camerapose_normalize_confidence",
    "camerapose_refinement_loss",
    "camerapose_intrinsics",
    "camerapose_project",
    "camerapose_reprojection_loss",
    "camerapose_camera_loss",
    "camerapose_pose_loss",
    "camerapose_loss_3d",
    "camerapose_loss_2d",
    # Zhou et al.
    "render_gaussian_heatmaps",
    "zhou_heatmap_loss",
    "zhou_geometric_loss",
    "zhou_depth_loss",
    "zhou_skeleton_rescale",
    "ZHOU_ABLATIONS",
    "zhou_loss_weights",
    # Drover et al.
    "DROVER_AZIMUTH_RANGE",
    "DROVER_ELEVATION_RANGE",
    "drover_depth",
    "drover_back_project",
    "drover_random_rotation",
    "drover_rotate",
    "drover_random_projection",
    "drover_normalize_2d",
    # Li et al.
    "li_reprojection_loss",
    "li_transform_reprojection_loss",
    "li_pretrain_loss",
    "li_total_loss",
    # WSP
    "wsp_relative_depth_labels",
    "wsp_person_scale",
    "wsp_scale_gap_ratio",
    "wsp_relative_depth_loss",
    "wsp_relative_depth_aux_loss",
    "wsp_heatmap_loss",
    "soft_argmax_3d",
    "wsp_coordinate_loss",
]


# ------------------------------------------------------------------------------------ Helpers


def _safe_div(num: Array, den: Array, *, fill: float = 0.0) -> Array:
    """``num / den`` where ``den > 0``, else ``fill``; gradients stay finite (double where)."""
    ok = den > 0
    return jnp.where(ok, num / jnp.where(ok, den, 1.0), fill)


def _masked_mean(x: Array, mask: ArrayLike | None, axis: int | tuple[int, ...] = -1) -> Array:
    if mask is None:
        return jnp.mean(x, axis=axis)
    m = jnp.broadcast_to(jnp.asarray(mask, x.dtype), x.shape)
    return _safe_div(jnp.sum(x * m, axis=axis), jnp.sum(m, axis=axis))


def _sq_dist(a: Array, b: Array) -> Array:
    return jnp.sum(jnp.square(a - b), axis=-1)


# --------------------------------------------------------- CameraPose (Yang et al. WACV 2023)


def martinez_loss(pred: ArrayLike, target: ArrayLike, *, std: ArrayLike | None = None) -> Array:
    """Martinez et al. (ICCV 2017) Sec. 3.1-3.2: L2 loss on standardised 3D, per example.

    ``1/(3J) sum_{j,d} ((pred_jd - target_jd) / std_jd)^2``: the squared error of the z-scored
    outputs the network predicts (Sec. 3.2, "standard normalization to the 2d inputs and 3d
    outputs"), so every coordinate counts by its spread in the training set, not by its size in
    metres.

    Notes:
      The loss is applied to the network's raw output for every joint, the root (target 0)
      included, not to ``pred - pred[root]``: subtracting the predicted root inside the loss
      adds the root's error to every joint and sends the sum of all joints' gradients into the
      root output (jpose issue 17). Evaluation makes the prediction root-relative afterwards.

    Args:
      pred: ``[..., J, 3]`` predicted pose (metres).
      target: ``[..., J, 3]`` target pose (metres).
      std: per-coordinate spread, ``[J, 3]`` or ``[3 J]`` (``coordinate_stats(...)[1]``);
        ``None``: plain mean squared error in metres^2.

    Returns:
      ``[...]`` per-example loss (standardised units, or metres^2 without ``std``).
    """
    pred = _check_last(pred, 3, "pred", min_ndim=2)
    target = _check_last(target, 3, "target", min_ndim=2)
    err = pred - target
    if std is not None:
        s = jnp.asarray(std, err.dtype)
        if s.size != math.prod(err.shape[-2:]):
            raise ValueError(f"std must have {math.prod(err.shape[-2:])} values, got {s.size}")
        err = err / s.reshape(err.shape[-2:])
    return jnp.mean(jnp.square(err), axis=(-2, -1))


def camerapose_normalize_confidence(confidence: ArrayLike) -> Array:
    """Confidence normalisation of CameraPose eq. 3: ``c'_ij = c_ij / ||C_i||_1``.

    Notes:
      Reading: ``c_ij`` is the maximum of joint j's heatmap and ``||C_i||_1`` the L1 norm of the
      sample's vector of these maxima (so the normalised confidences of a sample sum to 1); the
      paper's wording ("all the heatmaps in the i-th sample") could also mean the L1 norm of the
      full heatmap tensor, which is not computable from keypoints and confidences alone. A sample
      whose confidences are all zero gets zeros (finite gradient).

    Args:
      confidence: ``[..., J]`` non-negative confidence scores (any unit / scale).

    Returns:
      ``[..., J]`` normalised confidences, invariant to rescaling ``confidence``.
    """
    c = jnp.asarray(confidence)
    if c.ndim < 1:
        raise ValueError(f"confidence must have shape [..., J], got {c.shape}")
    total = jnp.sum(jnp.abs(c), axis=-1, keepdims=True)
    return _safe_div(c, total)


def camerapose_refinement_loss(
    refined: ArrayLike, keypoints_2d: ArrayLike, confidence: ArrayLike, *, normalize: bool = True
) -> Array:
    """Confidence-weighted refinement loss of CameraPose eq. 4, per example.

    ``L_ref,i = 1/J sum_j c'_ij ||x_ij - x^_ij||^2``; the batch mean gives eq. 4's
    ``1 / (N_S N_J) sum_i sum_j``.

    Notes:
      ``(x_ij - x^_ij)^2`` for a 2D point is read as the squared Euclidean distance (sum over u, v).

    Args:
      refined: ``[..., J, 2]`` refined keypoints ``x^`` (normalised to (-1, 1) in the paper).
      keypoints_2d: ``[..., J, 2]`` target keypoints ``x``, same units.
      confidence: ``[..., J]`` heatmap maxima ``c`` (or already normalised ``c'``).
      normalize: apply eq. 3 (:func:`camerapose_normalize_confidence`) to ``confidence``.

    Returns:
      ``[...]`` per-example loss, squared units of the keypoints.
    """
    refined = _check_last(refined, 2, "refined", min_ndim=2)
    keypoints_2d = _check_last(keypoints_2d, 2, "keypoints_2d", min_ndim=2)
    c = _check_joints(confidence, refined.shape[-2], "confidence")
    if normalize:
        c = camerapose_normalize_confidence(c)
    return jnp.mean(c * _sq_dist(refined, keypoints_2d), axis=-1)


def camerapose_intrinsics(camera_params: ArrayLike) -> Array:
    """Intrinsics matrix of CameraPose eq. 5 from the predicted ``(fx, fy, cx, cy)``.

    Args:
      camera_params: ``[..., 4]`` ``(fx, fy, cx, cy)`` in the units of the 2D keypoints.

    Returns:
      ``[..., 3, 3]`` ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]``.
    """
    p = _check_last(camera_params, 4, "camera_params")
    return intrinsics_matrix(p[..., :2], p[..., 2:])


def camerapose_project(
    points_3d: ArrayLike,
    *,
    focal: ArrayLike,
    center: ArrayLike,
    offset: ArrayLike,
    min_depth: float = 1e-3,
) -> Array:
    """Re-projection ``pi(M (X + t_3D))`` of CameraPose eqs. 5-7 with perspective division.

    Notes:
      Eq. 7 writes ``M^int (X + t_3D)`` without the division by depth; the product is a
      homogeneous 3-vector, so it is read as the pinhole projection
      ``u = fx (X + t)_x / (X + t)_z + cx`` (likewise v), with the depth clamped to ``min_depth``.

    Args:
      points_3d: ``[..., J, 3]`` predicted (root-relative) pose ``X^`` (metres).
      focal: ``[..., 2]`` predicted ``(fx, fy)``.
      center: ``[..., 2]`` predicted ``(cx, cy)``.
      offset: ``[..., 3]`` predicted 3D offset ``t_3D`` (eq. 6, metres).
      min_depth: depth clamp of the division (metres).

    Returns:
      ``[..., J, 2]`` keypoints in the units of ``focal`` / ``center``.
    """
    points_3d = _check_last(points_3d, 3, "points_3d", min_ndim=2)
    offset = _check_last(offset, 3, "offset")
    return project_pinhole(
        points_3d + offset[..., None, :], focal=focal, center=center, min_depth=min_depth
    )


def camerapose_reprojection_loss(
    points_3d: ArrayLike,
    keypoints_2d: ArrayLike,
    *,
    focal: ArrayLike,
    center: ArrayLike,
    offset: ArrayLike,
    weights: ArrayLike | None = None,
    min_depth: float = 1e-3,
) -> Array:
    """2D re-projection loss of CameraPose eq. 7, per example.

    ``L_2D,i = sum_j w_ij ||pi(M_i (X^_ij + t_i)) - x_ij||^2``; the batch mean gives eq. 7's
    ``1/N sum_i``. Used with ground-truth 2D for 2D-3D batches (``L_2D,phi``) and 2D-only batches
    (``L_2D,phi'``). See :func:`camerapose_project` for the perspective-division reading.

    Args:
      points_3d: ``[..., J, 3]`` predicted pose (metres).
      keypoints_2d: ``[..., J, 2]`` ground-truth keypoints ``x``.
      focal: ``[..., 2]`` predicted focal lengths.
      center: ``[..., 2]`` predicted principal point.
      offset: ``[..., 3]`` predicted offset ``t_3D`` (metres).
      weights: optional ``[..., J]`` joint weights (e.g. visibility of 2D annotations); ones if
        omitted (the paper's unweighted sum).
      min_depth: depth clamp (metres).

    Returns:
      ``[...]`` per-example loss, squared keypoint units.
    """
    keypoints_2d = _check_last(keypoints_2d, 2, "keypoints_2d", min_ndim=2)
    proj = camerapose_project(
        points_3d, focal=focal, center=center, offset=offset, min_depth=min_depth
    )
    err = _sq_dist(proj, keypoints_2d)
    if weights is not None:
        err = err * _check_joints(weights, err.shape[-1], "weights")
    return jnp.sum(err, axis=-1)


def camerapose_camera_loss(
    pred_intrinsics: ArrayLike,
    target_intrinsics: ArrayLike,
    pred_offset: ArrayLike,
    target_offset: ArrayLike,
) -> Array:
    """Camera loss of CameraPose eq. 8: ``||M - M^||_F^2 + ||t_3D - t^_3D||^2``, per example.

    Args:
      pred_intrinsics: ``[..., 3, 3]`` predicted ``M^`` (:func:`camerapose_intrinsics`).
      target_intrinsics: ``[..., 3, 3]`` ground-truth ``M``.
      pred_offset: ``[..., 3]`` predicted ``t^_3D`` (metres).
      target_offset: ``[..., 3]`` ground-truth ``t_3D`` (metres).

    Returns:
      ``[...]`` per-example loss (mixed units: pixels^2 + metres^2, as in the paper).
    """
    pm, tm = jnp.asarray(pred_intrinsics), jnp.asarray(target_intrinsics)
    if pm.shape[-2:] != (3, 3) or tm.shape[-2:] != (3, 3):
        raise ValueError(f"intrinsics must be [..., 3, 3], got {pm.shape} and {tm.shape}")
    po = _check_last(pred_offset, 3, "pred_offset")
    to = _check_last(target_offset, 3, "target_offset")
    return jnp.sum(jnp.square(pm - tm), axis=(-2, -1)) + _sq_dist(po, to)


def camerapose_pose_loss(pred: ArrayLike, target: ArrayLike) -> Array:
    """3D loss of CameraPose eq. 9: ``1/J sum_j ||X_ij - X^_ij||^2``, per example.

    Notes:
      ``(X - X^)^2`` of a 3D joint is read as its squared Euclidean distance, averaged over joints
      (eq. 9's ``1 / (N_S N_J)``); an element-wise MSE over ``3 J`` values is this divided by 3.

    Args:
      pred: ``[..., J, 3]`` predicted pose (metres).
      target: ``[..., J, 3]`` ground truth (metres).

    Returns:
      ``[...]`` per-example loss in metres^2.
    """
    pred = _check_last(pred, 3, "pred", min_ndim=2)
    target = _check_last(target, 3, "target", min_ndim=2)
    return jnp.mean(_sq_dist(pred, target), axis=-1)


def camerapose_loss_3d(
    camera: ArrayLike,
    reprojection: ArrayLike,
    pose: ArrayLike,
    refinement: ArrayLike = 0.0,
    *,
    lambda_cam: float = 0.01,
    lambda_2d: float = 0.5,
    lambda_3d: float = 1.0,
    lambda_ref: float = 0.0,
) -> Array:
    """Total loss for 2D-3D batches, CameraPose eq. 10 (``lambda_ref = 0``) and eq. 16.

    ``L_phi = lambda_ref L_ref + lambda_cam L_cam + lambda_2D,phi L_2D,phi + lambda_3D L_3D``.
    Defaults are the paper's sec. 4.3 weights; ``lambda_ref`` is not reported (0 gives eq. 10).

    Args:
      camera: ``[...]`` :func:`camerapose_camera_loss`.
      reprojection: ``[...]`` :func:`camerapose_reprojection_loss`.
      pose: ``[...]`` :func:`camerapose_pose_loss`.
      refinement: ``[...]`` :func:`camerapose_refinement_loss` (eq. 16 only).
      lambda_cam: weight of the camera loss.
      lambda_2d: weight of the 2D re-projection loss (``lambda_2D,phi``).
      lambda_3d: weight of the 3D loss.
      lambda_ref: weight of the refinement loss (``lambda_ref,phi``).

    Returns:
      ``[...]`` weighted sum.
    """
    return (
        lambda_ref * jnp.asarray(refinement)
        + lambda_cam * jnp.asarray(camera)
        + lambda_2d * jnp.asarray(reprojection)
        + lambda_3d * jnp.asarray(pose)
    )


def camerapose_loss_2d(
    reprojection: ArrayLike,
    refinement: ArrayLike = 0.0,
    *,
    lambda_2d: float = 0.2,
    lambda_ref: float = 0.0,
) -> Array:
    """Total loss for 2D-only batches, CameraPose eq. 11 (``lambda_ref = 0``) and eq. 17.

    ``L_phi' = lambda_ref,phi' L_ref + lambda_2D,phi' L_2D,phi'`` (paper: ``lambda_2D,phi' = 0.2``).

    Args:
      reprojection: ``[...]`` :func:`camerapose_reprojection_loss` on 2D-only samples.
      refinement: ``[...]`` :func:`camerapose_refinement_loss` (eq. 17 only).
      lambda_2d: weight ``lambda_2D,phi'``.
      lambda_ref: weight ``lambda_ref,phi'`` (not reported in the paper).

    Returns:
      ``[...]`` weighted sum.
    """
    return lambda_ref * jnp.asarray(refinement) + lambda_2d * jnp.asarray(reprojection)


# ---------------------------------------------------------------------- Zhou et al. ICCV 2017


def render_gaussian_heatmaps(
    keypoints_2d: ArrayLike, *, height: int, width: int, sigma: float = 1.0
) -> Array:
    """Gaussian heatmaps ``G(Y_2D)`` of Zhou et al. eq. 1 (Newell et al.'s rendering).

    ``G_j(h, w) = exp(-((w - u_j)^2 + (h - v_j)^2) / (2 sigma^2))``, peak 1 at the joint; pixel
    ``(h, w)`` has its centre at integer coordinates ``(u, v) = (w, h)``.

    Notes:
      Newell et al.'s code truncates the kernel to a ``6 sigma + 1`` window and rounds the centre
      to an integer pixel; here the Gaussian is untruncated and sub-pixel (differentiable in the
      keypoints; the two differ by less than ``exp(-4.5) = 0.011`` per pixel).

    Args:
      keypoints_2d: ``[..., J, 2]`` ``(u, v)`` in heatmap pixels.
      height: heatmap height H (static).
      width: heatmap width W (static).
      sigma: standard deviation in heatmap pixels (Newell et al.: 1 at 64 x 64).

    Returns:
      ``[..., J, H, W]`` heatmaps in ``[0, 1]``.
    """
    kp = _check_last(keypoints_2d, 2, "keypoints_2d", min_ndim=2)
    dtype = jnp.result_type(kp, jnp.float32)
    xs = jnp.arange(width, dtype=dtype)
    ys = jnp.arange(height, dtype=dtype)
    dx = jnp.square(xs - kp[..., 0:1])[..., None, :]  # [..., J, 1, W]
    dy = jnp.square(ys - kp[..., 1:2])[..., :, None]  # [..., J, H, 1]
    return jnp.exp(-(dx + dy) / (2.0 * sigma**2))


def zhou_heatmap_loss(
    pred_heatmaps: ArrayLike,
    keypoints_2d: ArrayLike,
    *,
    sigma: float = 1.0,
    visibility: ArrayLike | None = None,
) -> Array:
    """2D heatmap loss of Zhou et al. eq. 1, per joint.

    ``L_2D = sum_h sum_w (Y^_HM(h, w) - G(Y_2D)(h, w))^2`` for each joint's map, with ``G``
    from :func:`render_gaussian_heatmaps`. Sum over joints (or average, as Newell et al.'s MSE
    does) for the per-example loss.

    Args:
      pred_heatmaps: ``[..., J, H, W]`` predicted heatmaps.
      keypoints_2d: ``[..., J, 2]`` ground-truth joints in heatmap pixels.
      sigma: Gaussian standard deviation (heatmap pixels).
      visibility: optional ``[..., J]`` mask (bool or {0, 1}); invisible joints give 0.

    Returns:
      ``[..., J]`` per-joint loss.
    """
    hm = jnp.asarray(pred_heatmaps)
    if hm.ndim < 3:
        raise ValueError(f"pred_heatmaps must have shape [..., J, H, W], got {hm.shape}")
    kp = _check_last(keypoints_2d, 2, "keypoints_2d", min_ndim=2)
    if kp.shape[-2] != hm.shape[-3]:
        raise ValueError(f"keypoints_2d has {kp.shape[-2]} joints, heatmaps {hm.shape[-3]}")
    target = render_gaussian_heatmaps(kp, height=hm.shape[-2], width=hm.shape[-1], sigma=sigma)
    loss = jnp.sum(jnp.square(hm - target), axis=(-2, -1))
    if visibility is not None:
        loss = loss * jnp.asarray(
            _check_joints(visibility, loss.shape[-1], "visibility"), loss.dtype
        )
    return loss


def zhou_geometric_loss(
    pose: ArrayLike,
    canonical_lengths: ArrayLike,
    *,
    layout: str | Layout,
    visibility: ArrayLike | None = None,
    groups: Sequence[str] = ZHOU_GROUPS,
    threshold: float = 0.5,
) -> Array:
    """Bone-length-ratio variance loss ``L_geo`` of Zhou et al. eq. 3, per example.

    ``L_geo = sum_i 1/|R_i| sum_{e in R_i} (l_e / lbar_e - rbar_i)^2`` with
    ``rbar_i = 1/|R_i| sum_{e in R_i} l_e / lbar_e`` over the four groups (arms, legs, shoulders,
    hips: ``layout.bone_set(g)``). Only visible bones (both end joints visible) enter a group's
    mean and variance and ``|R_i|`` counts them; a group with no visible bone contributes 0. The
    loss is zero for any uniformly scaled canonical skeleton and invariant to translation.

    Notes:
      Zhou et al. build the bone lengths from the ground-truth 2D ``(x, y)`` and the predicted
      depth, in one unit (heatmap pixels with depth normalised to the same scale in their code);
      pass such a pose (see :func:`zhou_depth_loss`). The public code's weights ``c_j`` equal
      ``1 / lbar_e`` up to a per-group constant, so dividing by canonical lengths is equivalent.

    Args:
      pose: ``[..., J, 3]`` joints (2D + depth, consistent units).
      canonical_lengths: ``[B]`` or ``[..., B]`` canonical bone lengths ``lbar`` (e.g. the mean
        over the Human3.6M training subjects), any unit (ratios are scale-free).
      layout: joint layout of ``pose`` (must define the ``groups`` bone sets).
      visibility: optional ``[..., J]`` joint visibility (bool, or float compared with
        ``threshold``).
      groups: bone-set names of the groups (default the four of Zhou et al.).
      threshold: visibility threshold for float visibilities (the public code uses 0.5).

    Returns:
      ``[...]`` per-example loss (unitless).
    """
    lay = get_layout(layout)
    check_points(pose, lay, name="pose")
    ratios = bone_length_ratios(pose, canonical_lengths, layout=lay)
    bone_vis = None  # [..., B]: both end joints visible
    if visibility is not None:
        v = _check_joints(visibility, lay.num_joints, "visibility")
        vis = (v > threshold) if v.dtype != jnp.bool_ else v
        bone_vis = vis[..., lay.bones[:, 0]] & vis[..., lay.bones[:, 1]]
    total = jnp.zeros(ratios.shape[:-1], ratios.dtype)
    for group in groups:
        idx = lay.bone_set(group)
        r = ratios[..., idx]
        if bone_vis is None:
            m = jnp.ones_like(r)
        else:
            m = jnp.broadcast_to(bone_vis[..., idx].astype(r.dtype), r.shape)
        n = jnp.sum(m, axis=-1)
        mean = _safe_div(jnp.sum(m * r, axis=-1), n)
        total = total + _safe_div(jnp.sum(m * jnp.square(r - mean[..., None]), axis=-1), n)
    return total


def zhou_depth_loss(
    pred_depth: ArrayLike,
    target_depth: ArrayLike,
    keypoints_2d: ArrayLike,
    has_depth: ArrayLike,
    canonical_lengths: ArrayLike,
    *,
    layout: str | Layout,
    lambda_reg: float = 0.1,
    lambda_geo: float = 0.01,
    visibility: ArrayLike | None = None,
    threshold: float = 0.5,
) -> Array:
    """Depth loss of Zhou et al. eq. 2: regression for 3D-labelled samples, geometry otherwise.

    ``L_dep = lambda_reg ||Y^_dep - Y_dep||^2`` where ``has_depth``, else
    ``lambda_geo L_geo(Y^_dep | Y_2D)`` (:func:`zhou_geometric_loss` on the pose
    ``[Y_2D, Y^_dep]``). Defaults ``lambda_reg = 0.1``, ``lambda_geo = 0.01`` (sec. 4.1.1; stage 2
    of their schedule uses ``lambda_geo = 0``). ``target_depth`` of 2D-only samples is ignored
    (it may hold NaN: it is masked before use, so gradients stay finite).

    Notes:
      ``||.||^2`` is read as the sum of squared depth errors over joints.

    Args:
      pred_depth: ``[..., J]`` predicted depths (same unit as ``keypoints_2d``).
      target_depth: ``[..., J]`` ground-truth depths (used where ``has_depth``).
      keypoints_2d: ``[..., J, 2]`` ground-truth 2D joints.
      has_depth: ``[...]`` bool, True for samples of the 3D-labelled set ``I_3D``.
      canonical_lengths: ``[B]`` canonical bone lengths for ``L_geo``.
      layout: joint layout.
      lambda_reg: weight of the regression term.
      lambda_geo: weight of the geometric term.
      visibility: optional ``[..., J]`` 2D visibility for ``L_geo``.
      threshold: a joint is visible when ``visibility > threshold`` (``zhou_geometric_loss``).

    Returns:
      ``[...]`` per-example loss.
    """
    lay = get_layout(layout)
    pred_depth = _check_joints(pred_depth, lay.num_joints, "pred_depth")
    target_depth = _check_joints(target_depth, lay.num_joints, "target_depth")
    keypoints_2d = _check_last(keypoints_2d, 2, "keypoints_2d", min_ndim=2)
    has_depth = jnp.asarray(has_depth, bool)
    target = jnp.where(has_depth[..., None], target_depth, 0.0)
    reg = jnp.sum(jnp.square(pred_depth - target), axis=-1)
    pose = jnp.concatenate([keypoints_2d.astype(pred_depth.dtype), pred_depth[..., None]], -1)
    geo = zhou_geometric_loss(
        pose, canonical_lengths, layout=lay, visibility=visibility, threshold=threshold
    )
    return jnp.where(has_depth, lambda_reg * reg, lambda_geo * geo)


def zhou_skeleton_rescale(
    pose: ArrayLike,
    *,
    layout: str | Layout,
    avg_sum_length: ArrayLike,
    root_position: ArrayLike | None = None,
) -> Array:
    """Evaluation rescale of Zhou et al. sec. 4.1.2 to the canonical sum of bone lengths.

    ``Y^ = (Y_out - Y_out^root) * AvgSumLen / SumLen_out + Y_GT^root`` (via
    :func:`jpose.kinematics.rescale_to_sum_of_bone_lengths`). A pose with all joints coincident
    is returned unscaled.

    Args:
      pose: ``[..., J, 3]`` network output (2D + depth).
      layout: joint layout (all its bones enter the sum).
      avg_sum_length: scalar or ``[...]`` average sum of bone lengths of the training skeletons.
      root_position: ``[..., 3]`` ground-truth root ``Y_GT^root``; ``None`` returns the pose
        root-relative.

    Returns:
      ``[..., J, 3]`` rescaled pose.
    """
    lay = get_layout(layout)
    check_points(pose, lay, name="pose")
    scaled = rescale_to_sum_of_bone_lengths(pose, avg_sum_length, layout=lay)
    scaled = scaled - scaled[..., lay.root : lay.root + 1, :]
    if root_position is None:
        return scaled
    return scaled + _check_last(root_position, 3, "root_position")[..., None, :]


ZHOU_ABLATIONS = ("3d", "3d+geo", "3d+2d", "3d+2d+geo")
"""Zhou et al.'s ablations (sec. 4.1.3, Table 2): 3D-labelled data only, with or without the
geometric loss on it ("3D/w geo"), and 3D plus 2D-only data, with or without the geometric loss
on the 2D-only samples."""


def zhou_loss_weights(
    ablation: str, *, stage: int, lambda_reg: float, lambda_geo: float
) -> dict[str, float]:
    """Weights of the depth-loss terms for an ablation and a training stage, Zhou et al. eq. 2
    with the schedule of sec. 3.4 and the ablations of sec. 4.1.3 (Table 2).

    Stage 2 trains without the geometric loss; stage 3 adds ``lambda_geo`` for the ``*+geo``
    ablations: on the 2D-only samples (``geo_2d``) when the ablation uses 2D-only data, else on
    the 3D-labelled samples (``geo_3d``, "3D/w geo"). The regression term always has
    ``lambda_reg``.

    Args:
      ablation: one of :data:`ZHOU_ABLATIONS` (``3d | 3d+geo | 3d+2d | 3d+2d+geo``).
      stage: 2 (no geometric loss) or 3.
      lambda_reg: eq. 2 weight of the depth regression.
      lambda_geo: eq. 2 weight of the geometric loss ``L_geo`` (eq. 3).

    Returns:
      ``{"reg", "geo_2d", "geo_3d"}`` weights (0 = inactive).
    """
    if stage not in (2, 3):
        raise ValueError(f"stage must be 2 or 3, got {stage}")
    if ablation not in ZHOU_ABLATIONS:
        raise ValueError(f"unknown Zhou ablation {ablation!r}; expected one of {ZHOU_ABLATIONS}")
    use_2d, use_geo = "2d" in ablation, "geo" in ablation
    geo = lambda_geo if (stage == 3 and use_geo) else 0.0
    return {
        "reg": float(lambda_reg),
        "geo_2d": float(geo) if use_2d else 0.0,
        "geo_3d": 0.0 if use_2d else float(geo),
    }


# ------------------------------------------------------------------ Drover et al. ECCV-W 2018

DROVER_ELEVATION_RANGE = (0.0, math.radians(20.0))
"""Elevation range of Drover et al.'s random projections (sec. 3.1: 0-20 degrees), radians."""
DROVER_AZIMUTH_RANGE = (0.0, 2.0 * math.pi)
"""Azimuth range of Drover et al.'s random projections (sec. 3.1: 0-360 degrees), radians."""


def drover_depth(offsets: ArrayLike, *, distance: float = 10.0) -> Array:
    """Depth from generator offsets, Drover et al. eq. 2: ``z_i = max(0, d + o_i) + 1``.

    ``z >= 1`` keeps every point in front of the unit-focal camera; ``d = 10`` (sec. 3). The
    gradient is 1 for ``d + o > 0``, 0 below and finite (1/2) at the kink.

    Args:
      offsets: ``[..., J]`` depth offsets ``o`` (units: Drover's normalised units).
      distance: skeleton distance ``d`` (> 1).

    Returns:
      ``[..., J]`` depths ``z >= 1``.
    """
    o = jnp.asarray(offsets)
    return jnp.maximum(0.0, distance + o) + 1.0


def drover_back_project(keypoints_2d: ArrayLike, depth: ArrayLike) -> Array:
    """Back projection layer of Drover et al. (sec. 3): ``X_i = [z_i x_i, z_i y_i, z_i]``.

    Exact inverse of the unit-focal perspective projection
    (:func:`jpose.camera.back_project` with ``f = 1``, ``c = 0``).

    Args:
      keypoints_2d: ``[..., J, 2]`` normalised, root-centred 2D pose (:func:`drover_normalize_2d`).
      depth: ``[..., J]`` depths (:func:`drover_depth`).

    Returns:
      ``[..., J, 3]`` 3D skeleton.
    """
    kp = _check_last(keypoints_2d, 2, "keypoints_2d", min_ndim=2)
    z = _check_joints(depth, kp.shape[-2], "depth")
    return jnp.concatenate([kp * z[..., None], z[..., None]], axis=-1)


def drover_random_rotation(
    key: Array,
    shape: Sequence[int] = (),
    *,
    azimuth_range: tuple[float, float] = DROVER_AZIMUTH_RANGE,
    elevation_range: tuple[float, float] = DROVER_ELEVATION_RANGE,
) -> Array:
    """Random camera rotation of Drover et al. sec. 3.1: azimuth in [0, 360], elevation in [0, 20]
    degrees (uniform).

    Notes:
      Axes: the azimuth turns about the camera's vertical y axis, the elevation then tilts about
      the x axis (:func:`jpose.geometry.random_rotation` with ``up_axis="y"``); the paper does not
      state the composition order or the sign of the elevation.

    Args:
      key: PRNG key.
      shape: batch shape.
      azimuth_range: radians.
      elevation_range: radians.

    Returns:
      ``[*shape, 3, 3]`` rotation matrices.
    """
    return random_rotation(
        key, shape, azimuth_range=azimuth_range, elevation_range=elevation_range, up_axis="y"
    )


def drover_rotate(points_3d: ArrayLike, rotation: ArrayLike, *, distance: float = 10.0) -> Array:
    """In-place rotation of the random projection layer: ``P = R (X - T) + T``, ``T = [0, 0, d]``.

    Args:
      points_3d: ``[..., J, 3]`` generated skeleton.
      rotation: ``[..., 3, 3]`` rotation ``R``.
      distance: ``d``.

    Returns:
      ``[..., J, 3]`` rotated points ``P``.
    """
    x = _check_last(points_3d, 3, "points_3d", min_ndim=2)
    t = jnp.asarray([0.0, 0.0, distance], x.dtype)
    return rotate_points(x - t, jnp.asarray(rotation)) + t


def drover_random_projection(
    points_3d: ArrayLike, rotation: ArrayLike, *, distance: float = 10.0, min_depth: float = 1.0
) -> Array:
    """Random projection layer of Drover et al. (sec. 3): rotate about ``[0, 0, d]``, project.

    ``P = R (X - T) + T``, ``P_z >= 1`` enforced, ``p = [P_x / P_z, P_y / P_z]``.

    Notes:
      "We force ``P_z >= 1``" is implemented as the clamp ``max(P_z, 1)`` in the division (the
      gradient with respect to a clamped depth is 0); ``P_x``, ``P_y`` are not modified.

    Args:
      points_3d: ``[..., J, 3]`` generated skeleton ``X``.
      rotation: ``[..., 3, 3]`` random rotation (:func:`drover_random_rotation`).
      distance: ``d``.
      min_depth: lower bound on ``P_z`` (1 in the paper).

    Returns:
      ``[..., J, 2]`` fake 2D pose ``p`` for the discriminator.
    """
    rotated = drover_rotate(points_3d, rotation, distance=distance)
    return project_unit_focal(rotated, min_depth=min_depth)


def drover_normalize_2d(
    keypoints_2d: ArrayLike,
    *,
    root: int,
    head: int,
    distance: float = 10.0,
    head_root_distance: ArrayLike | None = None,
) -> Array:
    """Input normalisation of Drover et al. sec. 3.1: root-centre, head-root distance ``1 / d``.

    The paper scales so the *average* head-root distance over the training data is ``1 / d``;
    pass that dataset average (pixels) as ``head_root_distance``. With ``None`` every pose is
    scaled by its own head-root distance (per-sample variant; a zero distance leaves the pose
    unscaled). With ``z ~ d`` the back-projected skeleton has a head-root distance of about 1.

    Args:
      keypoints_2d: ``[..., J, 2]`` pixels.
      root: root joint index (pelvis).
      head: head joint index.
      distance: ``d``.
      head_root_distance: dataset-average head-root distance (pixels), scalar or ``[...]``.

    Returns:
      ``[..., J, 2]`` normalised keypoints.
    """
    kp = _check_last(keypoints_2d, 2, "keypoints_2d", min_ndim=2)
    centred = kp - kp[..., root : root + 1, :]
    if head_root_distance is None:
        scale = safe_norm(centred[..., head, :])
    else:
        scale = jnp.broadcast_to(jnp.asarray(head_root_distance, kp.dtype), kp.shape[:-2])
    factor = _safe_div(jnp.asarray(1.0 / distance, kp.dtype), scale, fill=1.0)
    return centred * factor[..., None, None]


# ------------------------------------------------------------------------ Li et al. AAAI 2020


def li_reprojection_loss(
    points_3d: ArrayLike,
    keypoints_2d: ArrayLike,
    confidence: ArrayLike,
    *,
    focal: ArrayLike,
    center: ArrayLike,
    min_depth: float = 1e-3,
) -> Array:
    """Confidence-weighted re-projection loss of Li et al. eqs. 1-2, per example and view.

    ``sum_i w_i ||X_i - rho(Y~_i)||^2`` with the perspective projection
    ``rho(Y) = (fx Y_x / Y_z + cx, fy Y_y / Y_z + cy)`` (eq. 1, depth clamped to ``min_depth``).
    Eq. 2 is the sum of this over the two views: stack the views on an axis and sum it.

    Args:
      points_3d: ``[..., J, 3]`` global pose ``Y~ = Y + r`` in the view's camera frame (metres).
      keypoints_2d: ``[..., J, 2]`` detected 2D pose ``X`` (pixels).
      confidence: ``[..., J]`` detection confidences ``w`` (heatmap maxima).
      focal: ``[..., 2]`` the view's ``(fx, fy)`` (pixels).
      center: ``[..., 2]`` the view's ``(cx, cy)`` (pixels).
      min_depth: depth clamp (metres).

    Returns:
      ``[...]`` loss in confidence x pixels^2.
    """
    keypoints_2d = _check_last(keypoints_2d, 2, "keypoints_2d", min_ndim=2)
    w = _check_joints(confidence, keypoints_2d.shape[-2], "confidence")
    proj = project_pinhole(points_3d, focal=focal, center=center, min_depth=min_depth)
    return jnp.sum(w * _sq_dist(keypoints_2d, proj), axis=-1)


def li_transform_reprojection_loss(
    points_3d: ArrayLike,
    keypoints_2d: ArrayLike,
    confidence: ArrayLike,
    *,
    rotation: ArrayLike,
    translation: ArrayLike,
    focal: ArrayLike,
    center: ArrayLike,
    confidence_view: str = "source",
    min_depth: float = 1e-3,
) -> Array:
    """Transform re-projection loss of Li et al. eqs. 3-5, per example.

    ``sum_i w^v1_i ||X^v2_i - rho_v2(tau_12(Y~^v1_i))||^2``
    ``+ w^v2_i ||X^v1_i - rho_v1(tau_21(Y~^v2_i))||^2``
    with ``tau_12(Y) = R_12 Y + t_12`` the rigid transform from view 1's to view 2's camera frame
    (eqs. 3-4; build it with :func:`jpose.camera.relative_transform`, which is eq. 4 for
    world->camera extrinsics) and ``tau_21`` its inverse. Zero for a pose consistent across two
    calibrated views.

    Notes:
      Eq. 5 weights the v1->v2 term by the *source* view's confidences ``w^v1`` although the
      compared detection is ``X^v2``; that literal reading is the default,
      ``confidence_view="target"`` weights by the detection's own view instead. Eq. 3's form
      ``R (Y - t)`` with camera centres equals ``R Y + t'`` with ``t' = -R t``
      (see :func:`jpose.camera.relative_transform`).

    Args:
      points_3d: ``[..., 2, J, 3]`` global poses ``Y~`` of views 1 and 2, each in its camera frame.
      keypoints_2d: ``[..., 2, J, 2]`` detections ``X`` (pixels).
      confidence: ``[..., 2, J]`` confidences ``w``.
      rotation: ``[..., 3, 3]`` ``R_12`` (view 1 -> view 2).
      translation: ``[..., 3]`` ``t_12`` (metres).
      focal: ``[..., 2, 2]`` per-view ``(fx, fy)``.
      center: ``[..., 2, 2]`` per-view ``(cx, cy)``.
      confidence_view: ``"source"`` (literal eq. 5) or ``"target"``.
      min_depth: depth clamp (metres).

    Returns:
      ``[...]`` per-example loss.
    """
    if confidence_view not in ("source", "target"):
        raise ValueError(f"confidence_view must be 'source' or 'target', got {confidence_view!r}")
    pts = _check_last(points_3d, 3, "points_3d", min_ndim=3)
    kp = _check_last(keypoints_2d, 2, "keypoints_2d", min_ndim=3)
    w = jnp.asarray(confidence)
    if pts.ndim < 3 or kp.ndim < 3 or pts.shape[-3] != 2 or kp.shape[-3] != 2:
        raise ValueError(
            "expected two views stacked on axis -3: points [..., 2, J, 3], keypoints "
            f"[..., 2, J, 2]; got {pts.shape} and {kp.shape}"
        )
    if w.shape[-2:] != kp.shape[-3:-1]:
        raise ValueError(f"confidence must be [..., 2, J], got {w.shape}")
    focal, center = jnp.asarray(focal), jnp.asarray(center)
    for name, x in (("focal", focal), ("center", center)):
        if x.ndim < 2 or x.shape[-2:] != (2, 2):
            raise ValueError(
                f"{name} must have shape [..., 2, 2] (one row per view), got {x.shape}"
            )
    r12 = jnp.asarray(rotation)
    t12 = _check_last(translation, 3, "translation")
    r21, t21 = invert_transform(r12, t12)
    y1_in_2 = transform_points(pts[..., 0, :, :], r12, t12)
    y2_in_1 = transform_points(pts[..., 1, :, :], r21, t21)
    p12 = project_pinhole(
        y1_in_2, focal=focal[..., 1, :], center=center[..., 1, :], min_depth=min_depth
    )
    p21 = project_pinhole(
        y2_in_1, focal=focal[..., 0, :], center=center[..., 0, :], min_depth=min_depth
    )
    w12, w21 = w[..., 0, :], w[..., 1, :]
    if confidence_view == "target":
        w12, w21 = w21, w12
    return jnp.sum(w12 * _sq_dist(kp[..., 1, :, :], p12), axis=-1) + jnp.sum(
        w21 * _sq_dist(kp[..., 0, :, :], p21), axis=-1
    )


def li_pretrain_loss(points_3d: ArrayLike, *, rotation: ArrayLike, translation: ArrayLike) -> Array:
    """Pre-training loss of Li et al. eq. 6, per example.

    ``sum_i ||tau_12(Y~^v1_i) - Y~^v2_i||^2 + ||tau_21(Y~^v2_i) - Y~^v1_i||^2``.

    Args:
      points_3d: ``[..., 2, J, 3]`` global poses of views 1 and 2 (metres).
      rotation: ``[..., 3, 3]`` ``R_12``.
      translation: ``[..., 3]`` ``t_12`` (metres).

    Returns:
      ``[...]`` per-example loss (metres^2).
    """
    pts = _check_last(points_3d, 3, "points_3d", min_ndim=3)
    if pts.shape[-3] != 2:
        raise ValueError(f"points_3d must be [..., 2, J, 3] (two views), got {pts.shape}")
    r12 = jnp.asarray(rotation)
    t12 = _check_last(translation, 3, "translation")
    r21, t21 = invert_transform(r12, t12)
    a = _sq_dist(transform_points(pts[..., 0, :, :], r12, t12), pts[..., 1, :, :])
    b = _sq_dist(transform_points(pts[..., 1, :, :], r21, t21), pts[..., 0, :, :])
    return jnp.sum(a + b, axis=-1)


def li_total_loss(
    reprojection: ArrayLike, transform_reprojection: ArrayLike, *, weight: float
) -> Array:
    """Training loss of Li et al. eq. 7: ``L_T = L_reproj + lambda L_t-reproj``.

    Args:
      reprojection: ``[...]`` eq. 2 (:func:`li_reprojection_loss` summed over both views).
      transform_reprojection: ``[...]`` eq. 5 (:func:`li_transform_reprojection_loss`).
      weight: ``lambda`` (dataset dependent, not reported).

    Returns:
      ``[...]`` total loss.
    """
    return jnp.asarray(reprojection) + weight * jnp.asarray(transform_reprojection)


# --------------------------------------------------------------------------- WSP (Qiu et al.)


def wsp_relative_depth_labels(
    keypoints_2d: ArrayLike,
    visibility: ArrayLike | None = None,
    *,
    ankles: Sequence[int],
    reduce: str = "mean",
    threshold: float = 0.5,
) -> tuple[Array, Array]:
    """Relative-depth labels from the 2D poses of several people, WSP eqs. 1-4 and 7.

    The ankles are taken as ground points; the person whose ankles are lower in the image (larger
    image y, eq. 2) is nearer to the camera (eq. 1, 3), and every joint inherits the person order
    (eq. 4). Eq. 7's label for the pair (A, B) and joint j is 1 when ``Z(P_A^j) <= Z(P_B^j)``,
    i.e. when ``y_A >= y_B``.

    Notes:
      A person's ankle height is the ``reduce`` (``"mean"`` or ``"max"``, i.e. lowest point) of
      the image y of its visible ankles (the paper does not say how two ankles combine). Equal
      heights give label 1 (eq. 7's ``<=``). A pair is valid when both persons have a visible
      ankle and A != B; invalid pairs get label 0 and ``valid = False``.

    Args:
      keypoints_2d: ``[..., K, J, 2]`` 2D poses of K people in one image (pixels, y down).
      visibility: optional ``[..., K, J]`` (bool, or float compared with ``threshold``).
      ankles: joint indices of the ankles (e.g. ``layout.indices(["left_ankle", "right_ankle"])``).
      reduce: how the ankles of one person combine.
      threshold: visibility threshold for float visibilities.

    Returns:
      ``(labels [..., K, K, J] float {0, 1}, valid [..., K, K] bool)``; ``labels[..., a, b, j]``
      is eq. 7's ``R^j_AB`` for persons ``a`` (A) and ``b`` (B).
    """
    kp = _check_last(keypoints_2d, 2, "keypoints_2d", min_ndim=3)
    if reduce not in ("mean", "max"):
        raise ValueError(f"reduce must be 'mean' or 'max', got {reduce!r}")
    ankles = np.asarray(ankles, dtype=np.int32)
    if ankles.ndim != 1 or ankles.size == 0:
        raise ValueError(f"ankles must be a non-empty sequence of joint indices, got {ankles}")
    num_k, num_j = kp.shape[-3], kp.shape[-2]
    y = kp[..., ankles, 1]  # [..., K, A]
    if visibility is None:
        vis = jnp.ones(y.shape, bool)
    else:
        v = jnp.asarray(visibility)
        if v.shape[-2:] != (num_k, num_j):
            raise ValueError(
                f"visibility must be [..., K, J] = [..., {num_k}, {num_j}], got {v.shape}"
            )
        vis = (v if v.dtype == jnp.bool_ else v > threshold)[..., ankles]
        vis = jnp.broadcast_to(vis, y.shape)
    has = jnp.any(vis, axis=-1)  # [..., K]
    if reduce == "mean":
        height = _safe_div(jnp.sum(jnp.where(vis, y, 0.0), -1), jnp.sum(vis, -1).astype(y.dtype))
    else:
        height = jnp.max(jnp.where(vis, y, -jnp.inf), axis=-1)
        height = jnp.where(has, height, 0.0)
    nearer = height[..., :, None] >= height[..., None, :]  # [..., K, K]: A (row) nearer than B
    valid = has[..., :, None] & has[..., None, :] & ~jnp.eye(num_k, dtype=bool)
    labels = (nearer & valid).astype(kp.dtype)
    return jnp.broadcast_to(labels[..., None], labels.shape + (num_j,)), valid


def wsp_person_scale(keypoints_2d: ArrayLike, *, head_top: int, head_down: int) -> Array:
    """Person scale of WSP eq. 13: ``S = ||P_ht - P_hd||_2`` (head top to head bottom / neck).

    Args:
      keypoints_2d: ``[..., J, 2]`` pixels.
      head_top: index of the head-top joint.
      head_down: index of the head-bottom joint (e.g. MPII ``upper_neck``).

    Returns:
      ``[...]`` scale in pixels.
    """
    kp = _check_last(keypoints_2d, 2, "keypoints_2d", min_ndim=2)
    return safe_norm(kp[..., head_top, :] - kp[..., head_down, :])


def wsp_scale_gap_ratio(scale_a: ArrayLike, scale_b: ArrayLike) -> Array:
    """Normalised scale gap ratio of WSP eq. 14: ``|S_A - S_B| / max(S_A, S_B)`` in [0, 1].

    Used to filter evaluation pairs (RD protocol 1: ``ΔS <= 1, 0.5, 0.3, 0.1``). Two zero scales
    give 0.

    Args:
      scale_a: ``[...]`` scale of person A (:func:`wsp_person_scale`).
      scale_b: ``[...]`` scale of person B.

    Returns:
      ``[...]`` ΔS.
    """
    a, b = jnp.asarray(scale_a), jnp.asarray(scale_b)
    return _safe_div(jnp.abs(a - b), jnp.maximum(a, b))


def wsp_relative_depth_loss(
    logits: ArrayLike, labels: ArrayLike, *, mask: ArrayLike | None = None
) -> Array:
    """Binary cross-entropy on relative-depth logits, WSP eq. 9, per example.

    ``1/J sum_j -[R^j log sigma(l_j) + (1 - R^j) log(1 - sigma(l_j))]`` computed with
    ``log_sigmoid`` (stable for ``|l| = 1e4``); ``sigma(l_j)`` is the predicted probability that
    person A's joint j is nearer (eq. 7 label 1).

    Args:
      logits: ``[..., J]`` logits of ``R^j_AB``.
      labels: ``[..., J]`` labels in {0, 1} (:func:`wsp_relative_depth_labels`).
      mask: optional ``[..., J]`` joints to average over (e.g. the N randomly selected
        keypoints); an all-zero mask gives 0.

    Returns:
      ``[...]`` per-example loss (nats).
    """
    l = jnp.asarray(logits)
    y = jnp.asarray(labels, l.dtype)
    bce = -(y * jax.nn.log_sigmoid(l) + (1.0 - y) * jax.nn.log_sigmoid(-l))
    return _masked_mean(bce, mask)


def wsp_relative_depth_aux_loss(
    depth_a: ArrayLike,
    depth_b: ArrayLike,
    labels: ArrayLike,
    *,
    mask: ArrayLike | None = None,
    temperature: float = 0.1,
) -> Array:
    """WSP eq. 9 on *predicted absolute depths*: a relative-depth auxiliary loss for any model
    that predicts the camera-frame depths of two people of one image.

    The logit of "A's joint j is nearer" is ``(Z_B^j - Z_A^j) / temperature`` and the loss is
    :func:`wsp_relative_depth_loss` (eq. 9's BCE) against the perspective labels (eq. 7). For
    example CameraPose's lifter plus camera-branch translation, behind its
    ``loss.lambda_rd > 0`` (pairs from :func:`jpose.data.relative_depth.load_pair_splits`)::

        rd = batch["rd"]  # RelativeDepthPairs.pair_arrays() fields
        z_a = predicted_depth(rd["pose_a"], rd["conf_a"])  # [B, J] metres, camera frame
        z_b = predicted_depth(rd["pose_b"], rd["conf_b"])
        labels = rd["label"][:, None] * jnp.ones_like(z_a)
        loss += lambda_rd * jnp.mean(
            wsp_relative_depth_aux_loss(z_a, z_b, labels, mask=rd["joint_mask"])
        )

    Args:
      depth_a, depth_b: ``[..., J]`` predicted depths (metres).
      labels: ``[..., J]`` eq. 7 labels (1 = A nearer).
      mask: optional ``[..., J]`` joints to average over.
      temperature: metres per logit unit.

    Returns:
      ``[...]`` per-pair loss (nats).
    """
    logits = (jnp.asarray(depth_b) - jnp.asarray(depth_a)) / temperature
    return wsp_relative_depth_loss(logits, labels, mask=mask)


def wsp_heatmap_loss(
    pred_heatmaps: ArrayLike, target_heatmaps: ArrayLike, *, squared: bool = False
) -> Array:
    """Heatmap loss of WSP eq. 10, per example (per person).

    ``1/J sum_j ||M^j - M^^j||_2`` (eq. 10's ``1/(JK) sum_k`` is the mean over a persons axis
    among the leading axes).

    Notes:
      Eq. 10 writes the (non-squared) L2 norm of each heatmap difference, which is the default;
      most heatmap code uses the mean squared error, available as ``squared=True`` (sum of squares
      per map). The norm has a finite (zero) gradient at an exact match.

    Args:
      pred_heatmaps: ``[..., J, H, W]``.
      target_heatmaps: ``[..., J, H, W]`` (e.g. :func:`render_gaussian_heatmaps`).
      squared: use the squared norm.

    Returns:
      ``[...]`` per-example loss.
    """
    p, t = jnp.asarray(pred_heatmaps), jnp.asarray(target_heatmaps)
    if p.ndim < 3 or p.shape[-3:] != t.shape[-3:]:
        raise ValueError(f"heatmaps must both be [..., J, H, W], got {p.shape} and {t.shape}")
    diff = (p - t).reshape(*jnp.broadcast_shapes(p.shape, t.shape)[:-2], -1)
    per_joint = jnp.sum(jnp.square(diff), -1) if squared else safe_norm(diff, axis=-1)
    return jnp.mean(per_joint, axis=-1)


def soft_argmax_3d(heatmaps: ArrayLike) -> Array:
    """Integral regression over 3D heatmaps, WSP eq. 11 (Sun et al. ECCV 2018), per joint.

    ``C_x = sum_{x, y, z} x * softmax(M)(x, y, z)`` and likewise ``C_y``, ``C_z``.

    Notes:
      Eq. 11 prints ``sum_x sum_z sum_y M^(p)`` without the coordinate factor and without the
      normalisation; it is read as Sun et al.'s integral regression (coordinate-weighted sum of the
      softmax-normalised heatmap), which the paper follows ("as [10, 13, 11]").

    Args:
      heatmaps: ``[..., J, D, H, W]`` unnormalised 3D heatmaps (logits); voxel ``(z, y, x)``.

    Returns:
      ``[..., J, 3]`` ``(x, y, z)`` in voxel units (``x`` in ``[0, W - 1]``, ``y`` in
      ``[0, H - 1]``, ``z`` in ``[0, D - 1]``).
    """
    hm = jnp.asarray(heatmaps)
    if hm.ndim < 4:
        raise ValueError(f"heatmaps must have shape [..., J, D, H, W], got {hm.shape}")
    d, h, w = hm.shape[-3:]
    prob = jax.nn.softmax(hm.reshape(*hm.shape[:-3], -1), axis=-1).reshape(hm.shape)
    dtype = prob.dtype
    px = jnp.sum(prob, axis=(-3, -2))  # [..., J, W]
    py = jnp.sum(prob, axis=(-3, -1))  # [..., J, H]
    pz = jnp.sum(prob, axis=(-2, -1))  # [..., J, D]
    cx = jnp.sum(px * jnp.arange(w, dtype=dtype), axis=-1)
    cy = jnp.sum(py * jnp.arange(h, dtype=dtype), axis=-1)
    cz = jnp.sum(pz * jnp.arange(d, dtype=dtype), axis=-1)
    return jnp.stack([cx, cy, cz], axis=-1)


def wsp_coordinate_loss(
    pred: ArrayLike, target: ArrayLike, *, mask: ArrayLike | None = None
) -> Array:
    """L1 coordinate loss of WSP eq. 12: ``1/J sum_j ||C^j - C^^j||_1``, per example.

    Args:
      pred: ``[..., J, 3]`` coordinates from :func:`soft_argmax_3d` (voxel or metric units).
      target: ``[..., J, 3]`` ground truth, same units.
      mask: optional ``[..., J]`` joint mask (all-zero gives 0).

    Returns:
      ``[...]`` per-example loss, units of the coordinates.
    """
    p = _check_last(pred, 3, "pred", min_ndim=2)
    t = _check_last(target, 3, "target", min_ndim=2)
    return _masked_mean(jnp.sum(jnp.abs(p - t), axis=-1), mask)
