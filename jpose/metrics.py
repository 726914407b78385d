"""Evaluation metrics for 3D human pose estimation.

Conventions for every pose metric in this module:

* Poses are ``[..., J, 3]`` arrays in **metres** (any leading batch axes ``...``); a metric returns
  one value per example, shape ``[...]``, in the same length unit (metres), or a fraction in
  ``[0, 1]`` for PCK/AUC. The caller reduces (and converts: :func:`to_mm`, :data:`M_TO_MM`).
* ``mask`` (optional) is a joint mask or non-negative joint weights broadcastable to ``[..., J]``;
  a masked mean is ``sum(w * e) / sum(w)`` and is 0 where every weight is 0.
* Joint distances use :func:`jpose.geometry.safe_norm` (finite gradient at zero error; distances
  below 1e-6 m read as 0, i.e. below 1e-3 mm).
* Options are keyword-only. Shape errors raise ``ValueError`` (static, so fine under ``jit``).

Relative-depth classification metrics (WSP) are *batch statistics*: they take scores and binary
labels of any shape ``[...]`` and return a scalar over all (unmasked) elements.

Host-side aggregation helpers (:func:`frame_wise_mean`, :func:`action_wise_mean`,
:func:`per_group`, :func:`per_action`, :func:`per_subject`, :func:`symmetry_table`,
:func:`format_table`) run on numpy arrays of per-example values after evaluation; they do no I/O.

References:
  [Martinez17] J. Martinez et al., "A simple yet effective baseline for 3d human pose estimation",
    ICCV 2017 (Human3.6M protocol #1 = MPJPE, protocol #2 = MPJPE after Procrustes alignment).
  [Pavllo19] D. Pavllo et al., "3D human pose estimation in video with temporal convolutions and
    semi-supervised training" (VideoPose3D), CVPR 2019, Sec. 5.1 and ``common/loss.py``
    (``mpjpe``, ``p_mpjpe``, ``n_mpjpe``, ``mean_velocity_error``).
  [Rhodin18] H. Rhodin et al., "Learning monocular 3D human pose estimation from multi-view
    images", CVPR 2018 (N-MPJPE: MPJPE after least-squares scale alignment).
  [Mehta17] D. Mehta et al., "Monocular 3D human pose estimation in the wild using improved CNN
    supervision", 3DV 2017 (MPI-INF-3DHP 3DPCK at 150 mm and AUC over 0-150 mm, as in the
    dataset's ``mpii_compute_3d_pck.m``).
  [Zhou17] X. Zhou et al., "Towards 3D human pose estimation in the wild: a weakly-supervised
    approach", ICCV 2017, Sec. 4.1.2 and Table 4 (left/right symmetric bone-length difference).
  [Qiu] WSP, "Weakly-supervised pre-training for 3D human pose estimation via perspective
    knowledge" (Qiu et al.), Sec. 4 (relative-depth AUC, accuracy, precision, recall, F1 at
    threshold 0.5).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jpose import geometry, kinematics, skeleton

__all__ = [
    "M_TO_MM",
    "MM_TO_M",
    "FRACTION_TO_PERCENT",
    "to_mm",
    "mpjpe",
    "pckh",
    "p_mpjpe",
    "n_mpjpe",
    "mpjve",
    "pck3d",
    "MPI3DHP_EVAL14_JOINTS",
    "PW3D_COMMON14_JOINTS",
    "joint_indices",
    "move_hips_towards_neck",
    "limb_length_scale",
    "auc3d",
    "symmetric_bone_length_difference",
    "symmetry_table",
    "binary_confusion_counts",
    "binary_accuracy",
    "roc_auc",
    "relative_depth_metrics",
    "frame_wise_mean",
    "per_group",
    "per_action",
    "per_subject",
    "action_wise_mean",
    "format_table",
]

# -------------------------------------------------------------------------------------- Units

M_TO_MM: float = 1000.0
"""Multiply a length in metres by this to get millimetres (the unit papers report)."""

MM_TO_M: float = 1.0 / M_TO_MM
"""Multiply a length in millimetres by this to get metres."""

FRACTION_TO_PERCENT: float = 100.0
"""Multiply a fraction (PCK, AUC, accuracy, ...) by this to report it in percent."""


def to_mm(value_m: Any) -> Any:
    """Converts a length (or lengths) from metres to millimetres.

    Args:
      value_m: a Python float, a numpy/jax array, or a (nested) mapping of those, in metres.

    Returns:
      The same structure in millimetres (mappings become dicts).
    """
    if isinstance(value_m, Mapping):
        return {k: to_mm(v) for k, v in value_m.items()}
    return value_m * M_TO_MM


# ------------------------------------------------------ Shape checks (static: fine under jit)


def _check_poses(pred: Any, target: Any, *, name: str) -> tuple[jax.Array, jax.Array]:
    pred, target = jnp.asarray(pred), jnp.asarray(target)
    if pred.ndim < 2 or pred.shape[-1] != 3:
        raise ValueError(f"{name}: expected pred of shape [..., J, 3], got {pred.shape}")
    if target.shape != pred.shape:
        raise ValueError(
            f"{name}: expected target of the same shape as pred {pred.shape}, got {target.shape}"
        )
    return pred, target


def _joint_weights(mask: Any, joint_shape: tuple[int, ...], *, name: str) -> jax.Array:
    """Broadcasts an optional joint mask/weights to ``joint_shape`` ([..., J]) as float."""
    if mask is None:
        return jnp.ones(joint_shape, dtype=jnp.float32)
    shape = f"[..., J] = {tuple(joint_shape)}"
    return _broadcast_mask(mask, joint_shape, name=name, shape=shape).astype(jnp.float32)


def _broadcast_mask(mask: Any, to: tuple[int, ...], *, name: str, shape: str) -> jax.Array:
    mask = jnp.asarray(mask)
    try:
        ok = np.broadcast_shapes(mask.shape, to) == tuple(to)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"{name}: expected mask broadcastable to {shape}, got {mask.shape}")
    return jnp.broadcast_to(mask, to)


def _weighted_joint_mean(values: jax.Array, weights: jax.Array) -> jax.Array:
    """sum(w * v) / sum(w) over the last axis; 0 where all weights are 0."""
    weights = weights.astype(values.dtype)
    total = jnp.sum(weights, axis=-1)
    safe_total = jnp.where(total > 0, total, 1.0)
    return jnp.where(total > 0, jnp.sum(weights * values, axis=-1) / safe_total, 0.0)


# ---------------------------------------------------------------------------- Position errors


def mpjpe(pred: jax.Array, target: jax.Array, *, mask: jax.Array | None = None) -> jax.Array:
    """Mean per-joint position error (Human3.6M protocol #1).

    ``MPJPE = (1/J) sum_j ||pred_j - target_j||_2`` [Martinez17, Sec. 4.1], as in VideoPose3D's
    ``common/loss.py: mpjpe`` [Pavllo19]. No alignment is applied; pass root-relative poses for
    the usual protocol #1.

    Args:
      pred: predicted joints ``[..., J, 3]`` in metres.
      target: ground-truth joints ``[..., J, 3]`` in metres.
      mask: optional joint mask or non-negative weights broadcastable to ``[..., J]``.

    Returns:
      ``[...]`` per-example (weighted) mean joint distance in metres (0 where the mask is empty).
    """
    pred, target = _check_poses(pred, target, name="mpjpe")
    weights = _joint_weights(mask, pred.shape[:-1], name="mpjpe")
    return _weighted_joint_mean(geometry.safe_norm(pred - target, axis=-1), weights)


def pckh(
    pred: Any,
    target: Any,
    visibility: Any,
    *,
    threshold: float = 0.5,
    layout: str | skeleton.Layout = "h36m17",
    head: tuple[str, str] = ("Head", "Neck/Nose"),
) -> dict[str, float]:
    """PCKh (Andriluka et al., CVPR 2014, Sec. 4): the fraction of visible 2D joints within
    ``threshold`` times the ground-truth head segment of the truth.

    Args:
      pred: ``[N, J, 2]`` predicted 2D (any unit; the same as ``target``).
      target: ``[N, J, 2]`` ground-truth 2D.
      visibility: ``[N, J]``; joints with visibility > 0.5 are scored.
      threshold: fraction of the head segment (PCKh@0.5 by default).
      layout: the joint layout of ``pred`` / ``target``.
      head: the two joints whose distance is the head segment (MPII: head top - upper neck;
        Human3.6M-17 has ``Head`` and ``Neck/Nose``).

    Returns:
      ``{"pckh": overall, <joint name>: per joint}`` fractions (``nan`` overall when nothing is
      visible; joints never visible are left out).
    """
    lay = skeleton.get_layout(layout)
    pred, target = np.asarray(pred, np.float64), np.asarray(target, np.float64)
    vis = np.asarray(visibility) > 0.5
    if pred.shape != target.shape or pred.shape[-2:] != (lay.num_joints, 2):
        raise ValueError(f"pckh: pred {pred.shape} and target {target.shape} must both be "
                         f"[N, {lay.num_joints}, 2] ({lay.name})")  # fmt: skip
    h, n = (lay.index(name) for name in head)
    segment = np.linalg.norm(target[:, h] - target[:, n], axis=-1)[:, None]
    ok = np.linalg.norm(pred - target, axis=-1) <= threshold * segment
    out = {"pckh": float(ok[vis].mean()) if vis.any() else float("nan")}
    for j, name in enumerate(lay.joint_names):
        if vis[:, j].any():
            out[name] = float(ok[:, j][vis[:, j]].mean())
    return out


def p_mpjpe(pred: jax.Array, target: jax.Array, *, mask: jax.Array | None = None) -> jax.Array:
    """MPJPE after similarity (Procrustes) alignment of ``pred`` to ``target`` (protocol #2).

    The prediction is aligned by the rotation, isotropic scale and translation minimising the
    squared joint error (Umeyama / orthogonal Procrustes), with improper rotations excluded
    (the reflection fix of VideoPose3D's ``p_mpjpe``: sign flip of the last singular vector and
    singular value when ``det(R) < 0``) [Martinez17, protocol #2; Pavllo19, ``common/loss.py``].
    The alignment is that of :func:`jpose.geometry.procrustes_align` (``scale=True,
    reflection=False``), evaluated by the fused :func:`jpose.geometry.procrustes_residuals`
    (closed-form rotation, no aligned pose materialised; float64 and J > 64 fall back to the
    SVD path); with a mask the alignment is the weighted Procrustes fit on the same weights.

    Args:
      pred: predicted joints ``[..., J, 3]`` in metres.
      target: ground-truth joints ``[..., J, 3]`` in metres.
      mask: optional joint mask or non-negative weights broadcastable to ``[..., J]``, used both
        for the alignment and for the mean.

    Returns:
      ``[...]`` per-example P-MPJPE in metres.
    """
    pred, target = _check_poses(pred, target, name="p_mpjpe")
    weights = None if mask is None else _joint_weights(mask, pred.shape[:-1], name="p_mpjpe")
    if geometry.fused_procrustes_supported(pred.shape[-2], jnp.result_type(pred, target)):
        # the fused path shifts and scales each pose itself (overflow-safe at any scale)
        residuals = geometry.procrustes_residuals(pred, target, scale=True, weights=weights)
    else:
        # Centre and scale before any square (poses far from the origin or at 1e19 m would lose
        # every digit or overflow in float32): the alignment is invariant to a translation of
        # either pose and to the scale of ``pred``, and the error is linear in the scale of
        # ``target``.
        pred = pred - jnp.mean(pred, axis=-2, keepdims=True)
        target = target - jnp.mean(target, axis=-2, keepdims=True)
        pred = pred / _pose_scale(pred)
        t_scale = _pose_scale(target)
        residuals = geometry.procrustes_residuals(pred, target / t_scale, weights=weights)
        residuals = residuals * t_scale[..., 0]
    if weights is None:
        return jnp.mean(residuals, axis=-1)
    return _weighted_joint_mean(residuals, weights)


def _pose_scale(x: jax.Array) -> jax.Array:
    """``[..., 1, 1]`` power of two at or above the largest absolute coordinate (1 where that is
    0 or non-finite): dividing by it is exact. No gradient: the metrics are homogeneous in it,
    so treating it as a constant gives their exact gradient."""
    s = jax.lax.stop_gradient(jnp.max(jnp.abs(x), axis=(-2, -1), keepdims=True))
    ok = jnp.isfinite(s) & (s > 0)
    s = jnp.exp2(jnp.ceil(jnp.log2(jnp.where(ok, s, jnp.ones_like(s)))))
    return jnp.where(jnp.isfinite(s) & (s > 0), s, jnp.ones_like(s))


def n_mpjpe(pred: jax.Array, target: jax.Array, *, mask: jax.Array | None = None) -> jax.Array:
    """MPJPE after least-squares scale alignment (N-MPJPE).

    ``s* = argmin_s sum_j w_j ||s pred_j - target_j||^2 = sum_j w_j <pred_j, target_j> /
    sum_j w_j ||pred_j||^2``, then ``MPJPE(s* pred, target)`` [Rhodin18, Sec. 5 "N-MPJPE"; as in
    VideoPose3D's ``n_mpjpe``, Pavllo19]. No centring or rotation: pass root-relative poses.
    The scale is :func:`jpose.geometry.optimal_scale`; with a mask the joints are weighted by
    ``w`` in the least-squares fit (inputs multiplied by ``sqrt(w)``).

    Args:
      pred: predicted joints ``[..., J, 3]`` in metres (root-relative).
      target: ground-truth joints ``[..., J, 3]`` in metres (root-relative).
      mask: optional joint mask or non-negative weights broadcastable to ``[..., J]``.

    Returns:
      ``[...]`` per-example N-MPJPE in metres.
    """
    pred, target = _check_poses(pred, target, name="n_mpjpe")
    # scale before any square (1e19 m would overflow float32): the error does not depend on the
    # scale of ``pred`` (it is fitted) and is linear in the scale of ``target``
    t_scale = _pose_scale(target)
    pred, target = pred / _pose_scale(pred), target / t_scale
    if mask is None:
        weights = jnp.ones(pred.shape[:-1], dtype=jnp.float32)
        scale = geometry.optimal_scale(pred, target)
    else:
        weights = _joint_weights(mask, pred.shape[:-1], name="n_mpjpe")
        root_w = jnp.sqrt(jax.lax.stop_gradient(weights)).astype(pred.dtype)[..., None]
        scale = geometry.optimal_scale(pred * root_w, target * root_w)
    diff = scale[..., None, None] * pred - target
    d_scale = _pose_scale(diff)  # per-example power of two: no underflow in the squares
    error = geometry.safe_norm(diff / d_scale, axis=-1) * d_scale[..., 0]
    return t_scale[..., 0, 0] * _weighted_joint_mean(error, weights)


def mpjve(
    pred: jax.Array, target: jax.Array, *, axis: int = -3, mask: jax.Array | None = None
) -> jax.Array:
    """Mean per-joint velocity error (MPJVE).

    ``MPJVE_t = (1/J) sum_j ||(pred_{t+1,j} - pred_{t,j}) - (target_{t+1,j} - target_{t,j})||``,
    the first finite difference along the time axis, as VideoPose3D's ``mean_velocity_error``
    [Pavllo19, Sec. 5.1 "MPJVE"; ``common/loss.py``], but not reduced over time.

    Args:
      pred: predicted joints ``[..., T, ..., J, 3]`` in metres.
      target: ground-truth joints, same shape.
      axis: the time axis; must be one of the leading axes (not J or the coordinate axis).
        Default -3, i.e. ``[..., T, J, 3]``.
      mask: optional joint mask or weights broadcastable to ``pred.shape[:-1]``; a velocity
        sample's weight is the product of its two frames' weights.

    Returns:
      Per-example, per-step errors in metres per frame: ``pred.shape[:-2]`` with the time axis
      shortened to ``T - 1``.
    """
    pred, target = _check_poses(pred, target, name="mpjve")
    ndim = pred.ndim
    if not -ndim <= axis < ndim:
        raise ValueError(f"mpjve: expected a time axis in [-{ndim}, {ndim}), got axis={axis}")
    time_axis = axis % ndim
    if time_axis >= ndim - 2:
        raise ValueError(
            f"mpjve: the time axis must be a leading axis of [..., T, J, 3] (axis <= -3), "
            f"got axis={axis} for shape {pred.shape}"
        )
    if pred.shape[time_axis] < 2:
        raise ValueError(f"mpjve: expected at least 2 frames on axis {axis}, got {pred.shape}")
    weights = _joint_weights(mask, pred.shape[:-1], name="mpjve")
    vel_pred = jnp.diff(pred, axis=time_axis)
    vel_target = jnp.diff(target, axis=time_axis)
    n = pred.shape[time_axis]
    w_vel = jax.lax.slice_in_dim(weights, 0, n - 1, axis=time_axis) * jax.lax.slice_in_dim(
        weights, 1, n, axis=time_axis
    )
    return _weighted_joint_mean(geometry.safe_norm(vel_pred - vel_target, axis=-1), w_vel)


# ------------------------------------------------------------------- PCK / AUC (MPI-INF-3DHP)


def _pck_curve(
    pred: jax.Array,
    target: jax.Array,
    thresholds: np.ndarray,
    *,
    joints: Sequence[int] | np.ndarray | None,
    mask: jax.Array | None,
    name: str,
) -> jax.Array:
    """Fraction of joints with error < each threshold: [..., len(thresholds)]."""
    pred, target = _check_poses(pred, target, name=name)
    err = jnp.linalg.norm(pred - target, axis=-1)  # not differentiated: step function
    weights = _joint_weights(mask, pred.shape[:-1], name=name)
    if joints is not None:
        idx, num_joints = np.asarray(joints), pred.shape[-2]
        if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer) or idx.size == 0:
            raise ValueError(
                f"{name}: expected joints as a non-empty 1-D sequence of ints, got {joints}"
            )
        if np.any(idx < -num_joints) or np.any(idx >= num_joints):
            raise ValueError(
                f"{name}: joint indices must lie in [0, {num_joints}), got {idx.tolist()}"
            )
        err = jnp.take(err, idx, axis=-1)
        weights = jnp.take(weights, idx, axis=-1)
    thr = jnp.asarray(thresholds, dtype=err.dtype)
    correct = (err[..., None, :] < thr[:, None]).astype(err.dtype)  # [..., T, J]
    return _weighted_joint_mean(correct, weights[..., None, :])


def pck3d(
    pred: jax.Array,
    target: jax.Array,
    *,
    threshold: float = 0.15,
    joints: Sequence[int] | np.ndarray | None = None,
    mask: jax.Array | None = None,
) -> jax.Array:
    """3D percentage of correct keypoints (3DPCK) of MPI-INF-3DHP.

    A joint is correct when its Euclidean error is strictly below ``threshold`` (150 mm by
    default) [Mehta17, Sec. 5; ``err < t`` as in the dataset's ``mpii_compute_3d_pck.m``].

    Args:
      pred: predicted joints ``[..., J, 3]`` in metres.
      target: ground-truth joints ``[..., J, 3]`` in metres.
      threshold: distance threshold in metres.
      joints: optional subset of joint indices to evaluate (e.g. the 14 3DHP evaluation joints).
      mask: optional joint mask or weights broadcastable to ``[..., J]``.

    Returns:
      ``[...]`` fraction of correct joints in ``[0, 1]`` (multiply by
      :data:`FRACTION_TO_PERCENT` to report percent).
    """
    curve = _pck_curve(
        pred, target, np.asarray([threshold]), joints=joints, mask=mask, name="pck3d"
    )
    return curve[..., 0]


def auc3d(
    pred: jax.Array,
    target: jax.Array,
    *,
    max_threshold: float = 0.15,
    num_thresholds: int = 31,
    joints: Sequence[int] | np.ndarray | None = None,
    mask: jax.Array | None = None,
) -> jax.Array:
    """Area under the 3DPCK curve (AUC) of MPI-INF-3DHP.

    Mean of :func:`pck3d` over ``num_thresholds`` evenly spaced thresholds ``linspace(0,
    max_threshold)`` (0-150 mm in 31 steps of 5 mm by default) [Mehta17, Sec. 5; as in
    ``mpii_compute_3d_pck.m`` and PoseAug's ``compute_AUC``].

    Args:
      pred: predicted joints ``[..., J, 3]`` in metres.
      target: ground-truth joints ``[..., J, 3]`` in metres.
      max_threshold: largest threshold in metres.
      num_thresholds: number of thresholds (including 0 and ``max_threshold``).
      joints: optional subset of joint indices.
      mask: optional joint mask or weights broadcastable to ``[..., J]``.

    Returns:
      ``[...]`` AUC as a fraction in ``[0, 1]``.
    """
    if num_thresholds < 1:
        raise ValueError(f"auc3d: expected num_thresholds >= 1, got {num_thresholds}")
    thresholds = np.linspace(0.0, max_threshold, num_thresholds)
    curve = _pck_curve(pred, target, thresholds, joints=joints, mask=mask, name="auc3d")
    return jnp.mean(curve, axis=-1)


# ---- Dataset protocols: joint subsets, Zhou et al.'s 3DHP post-processing, known global scale

MPI3DHP_EVAL14_JOINTS = (
    "Head", "Thorax", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist",
    "RHip", "RKnee", "RFoot", "LHip", "LKnee", "LFoot",
)  # fmt: skip
"""Human3.6M-17 names of the 14 MPI-INF-3DHP evaluation joints (head top, neck, limbs): the
test set's 17 joints less pelvis, spine and head centre [Mehta17, Sec. 5; Zhou17, Sec. 4.1]."""

PW3D_COMMON14_JOINTS = (
    "Thorax", "Neck/Nose", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist",
    "RHip", "RKnee", "RFoot", "LHip", "LKnee", "LFoot",
)  # fmt: skip
"""Human3.6M-17 names of the 14 joints SMPL-24 and Human3.6M-17 share (limbs, SMPL neck =
Thorax, SMPL head = Neck/Nose). Left out: Spine (interpolated) and Head (extrapolated) -- no SMPL
joint -- and the pelvis, whose SMPL definition (below the hip line) differs from Human3.6M's."""


def joint_indices(names: Sequence[str], *, layout: str | skeleton.Layout = "h36m17") -> np.ndarray:
    """Indices ``[K]`` of the named joints in ``layout`` (e.g. :data:`MPI3DHP_EVAL14_JOINTS`,
    the 14 joints of [Mehta17, Sec. 5])."""
    return skeleton.get_layout(layout).indices(names)


def move_hips_towards_neck(
    pose: jax.Array, *, ratio: float = 0.2, layout: str | skeleton.Layout = "h36m17"
) -> jax.Array:
    """Zhou et al.'s MPI-INF-3DHP post-processing: pelvis and hips moved towards the neck.

    ``X_j <- X_j + ratio (X_neck - X_j)`` for the pelvis and both hips, ``ratio = 0.2``
    [Zhou17, Sec. 4.1 "MPI-INF-3DHP": "we moved the pelvis and hips towards neck in a fixed
    ratio (0.2) as post processing"]; the neck is Human3.6M's ``Thorax`` (3DHP ``neck``).

    Args:
      pose: ``[..., J, D]`` joints (any unit).
      ratio: fraction of the joint-to-neck vector to move by.
      layout: Human3.6M-17 (joint names ``Hip``, ``LHip``, ``RHip``, ``Thorax``).

    Returns:
      ``[..., J, D]`` with the three joints moved.
    """
    lay = skeleton.get_layout(layout)
    pose = jnp.asarray(pose)
    moved = lay.indices(("Hip", "LHip", "RHip"))
    neck = pose[..., lay.index("Thorax"), None, :]
    return pose.at[..., moved, :].add(ratio * (neck - pose[..., moved, :]))


def limb_length_scale(
    pred: jax.Array, target: jax.Array, *, layout: str | skeleton.Layout = "h36m17"
) -> jax.Array:
    """Known global scale: the factor ``s`` giving ``s * pred`` the target's limb lengths.

    ``s = sum_b ||target bone b|| / sum_b ||pred bone b||`` over the eight limb bones (upper and
    lower arms and legs: Zhou et al.'s ``zhou_arms`` and ``zhou_legs`` groups), whose
    definitions agree between skeletons. Uses the subject's size only, not the pose, which is
    what "we assume the global scale is known" [Zhou17, Sec. 4.1] needs; a pose-fitted scale
    (N-MPJPE's least squares) would also absorb pose errors.

    Args:
      pred: predicted joints ``[..., J, 3]`` (any unit).
      target: ground-truth joints ``[..., J, 3]`` (metres).
      layout: a layout with the ``zhou_arms`` / ``zhou_legs`` bone sets.

    Returns:
      ``[...]`` scale factors (1 where the prediction has zero-length limbs).
    """
    lay = skeleton.get_layout(layout)
    pred, target = _check_poses(pred, target, name="limb_length_scale")
    bones = np.concatenate([lay.bone_set("zhou_arms"), lay.bone_set("zhou_legs")])
    pred_len = jnp.take(kinematics.bone_lengths(pred, layout=lay), bones, axis=-1).sum(-1)
    tgt_len = jnp.take(kinematics.bone_lengths(target, layout=lay), bones, axis=-1).sum(-1)
    ok = pred_len > 1e-9
    return jnp.where(ok, tgt_len / jnp.where(ok, pred_len, 1.0), 1.0)


# ------------------------------------------------------ Geometric validity (Zhou et al. 2017)


def symmetric_bone_length_difference(
    pred: jax.Array, *, layout: str | skeleton.Layout
) -> jax.Array:
    """Left/right symmetric bone-length difference (geometric validity).

    ``| ||left bone|| - ||right bone|| |`` for every symmetric bone pair of the layout
    [Zhou17, Sec. 4.1.2 and Table 4, "average L1 distance between left and right bone"].
    Zhou et al. report it per bone (upper arm, lower arm, upper leg, lower leg) averaged over
    examples; average the output over the leading axes to reproduce that.

    Args:
      pred: predicted joints ``[..., J, 3]`` (metres, or any length unit: same unit out).
      layout: a :class:`jpose.skeleton.Layout` (or its name); pairs are
        ``layout.symmetric_bone_pairs`` ``(P, 2)`` (left bone, right bone) indices into
        ``layout.bones``.

    Returns:
      ``[..., P]`` absolute length differences, in the unit of ``pred``.
    """
    layout = skeleton.get_layout(layout)
    pred = jnp.asarray(pred)
    if pred.ndim < 2 or pred.shape[-1] != 3 or pred.shape[-2] != layout.num_joints:
        raise ValueError(
            f"symmetric_bone_length_difference: expected pred of shape [..., "
            f"{layout.num_joints}, 3] for layout {layout.name!r}, got {pred.shape}"
        )
    pairs = np.asarray(layout.symmetric_bone_pairs, dtype=np.int32).reshape(-1, 2)
    lengths = kinematics.bone_lengths(pred, layout=layout)  # [..., B]
    left = jnp.take(lengths, pairs[:, 0], axis=-1)
    right = jnp.take(lengths, pairs[:, 1], axis=-1)
    return jnp.abs(left - right)


_SYMMETRIC_BONE_NAMES = {
    "Hip": "hip",
    "Knee": "upper leg",
    "Foot": "lower leg",
    "Shoulder": "shoulder",
    "Elbow": "upper arm",
    "Wrist": "lower arm",
}


def symmetry_table(
    poses: Any, *, layout: str | skeleton.Layout = "h36m17", scale: float = 1.0
) -> dict[str, float]:
    """Zhou et al. Table 4: mean ``| |left bone| - |right bone| |`` per symmetric bone pair.

    The mean over examples of :func:`symmetric_bone_length_difference`, one row of the table.

    Args:
      poses: ``[N, J, 3]`` poses (any length unit).
      layout: their joint layout (pairs ``layout.symmetric_bone_pairs``).
      scale: multiplier of the result (e.g. 1000 for metres -> mm).

    Returns:
      ``{bone pair: mean difference}`` plus ``"mean"`` over pairs, as Python floats.
    """
    layout = skeleton.get_layout(layout)
    diff = np.asarray(symmetric_bone_length_difference(jnp.asarray(poses), layout=layout))
    # a pair is named by Zhou et al.'s bone names for Human3.6M-17's limbs (child joint without
    # its L/R prefix), else by the left bone's child joint
    lefts = [layout.bone_names[left] for left, _ in layout.symmetric_bone_pairs]
    names = [_SYMMETRIC_BONE_NAMES.get(child[1:], child) for child in lefts]
    row = {n: float(v) * scale for n, v in zip(names, diff.mean(0))}
    row["mean"] = float(diff.mean()) * scale
    return row


# -------------------- Relative-depth classification (WSP) -- batch statistics, scalar outputs


def _classification_inputs(
    scores: jax.Array, labels: jax.Array, mask: jax.Array | None, *, name: str
) -> tuple[jax.Array, jax.Array, jax.Array]:
    scores = jnp.asarray(scores)
    labels = jnp.asarray(labels)
    if scores.shape != labels.shape:
        raise ValueError(
            f"{name}: expected labels of the same shape as scores {scores.shape}, "
            f"got {labels.shape}"
        )
    if mask is None:
        valid = jnp.ones(scores.shape, dtype=bool)
    else:
        valid = _broadcast_mask(mask, scores.shape, name=name, shape=str(scores.shape)).astype(bool)
    return scores, labels.astype(bool), valid


def binary_confusion_counts(
    scores: jax.Array,
    labels: jax.Array,
    *,
    mask: jax.Array | None = None,
    from_logits: bool = False,
    threshold: float = 0.5,
) -> dict[str, jax.Array]:
    """Confusion counts of a thresholded binary classifier (batch statistic).

    An element is predicted positive when its probability is strictly above ``threshold``
    (0.5 in WSP, [Qiu], Sec. 4). Sum the counts over batches to aggregate exactly.

    Args:
      scores: probabilities in ``[0, 1]``, or logits if ``from_logits``; any shape ``[...]``.
      labels: binary labels ``[...]`` (1 / True = positive class).
      mask: optional boolean mask broadcastable to ``[...]``; False elements are ignored.
      from_logits: whether ``scores`` are logits (compared with ``logit(threshold)``).
      threshold: probability threshold.

    Returns:
      dict with scalar float32 counts ``tp``, ``fp``, ``tn``, ``fn``.
    """
    scores, labels, valid = _classification_inputs(scores, labels, mask, name="confusion")
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"expected a probability threshold in (0, 1), got {threshold}")
    # sigmoid(x) > t  <=>  x > logit(t); avoids rounding of sigmoid for large |x|.
    pos = scores > (math.log(threshold) - math.log1p(-threshold) if from_logits else threshold)

    def count(x: jax.Array) -> jax.Array:
        return jnp.sum(x & valid, dtype=jnp.float32)

    return {
        "tp": count(pos & labels),
        "fp": count(pos & ~labels),
        "tn": count(~pos & ~labels),
        "fn": count(~pos & labels),
    }


def _ratio(num: jax.Array, den: jax.Array) -> jax.Array:
    """num / den, 0 where den == 0 (scikit-learn's zero_division=0 convention)."""
    return jnp.where(den > 0, num / jnp.where(den > 0, den, 1.0), 0.0)


def binary_accuracy(
    scores: jax.Array,
    labels: jax.Array,
    *,
    mask: jax.Array | None = None,
    from_logits: bool = False,
    threshold: float = 0.5,
) -> jax.Array:
    """Accuracy ``(TP + TN) / N`` at a probability threshold (WSP relative depth, [Qiu] Sec. 4).

    Batch statistic: returns a scalar over all unmasked elements (0 if there are none). Arguments
    as in :func:`binary_confusion_counts`.
    """
    c = binary_confusion_counts(
        scores, labels, mask=mask, from_logits=from_logits, threshold=threshold
    )
    return _ratio(c["tp"] + c["tn"], c["tp"] + c["tn"] + c["fp"] + c["fn"])


def roc_auc(scores: jax.Array, labels: jax.Array, *, mask: jax.Array | None = None) -> jax.Array:
    """Area under the ROC curve as the Mann-Whitney rank statistic (WSP, [Qiu] Sec. 4).

    ``AUC = (#{(p, n): s_p > s_n} + 0.5 #{(p, n): s_p == s_n}) / (N_pos N_neg)`` over all pairs of
    a positive and a negative element (ties count one half), which equals the trapezoidal area
    under the ROC curve (Hanley & McNeil 1982). Computed in ``O(N log N)`` with a sort and
    ``searchsorted``. The statistic depends only on the order of the scores, so pass logits
    rather than probabilities when available: ``sigmoid`` rounds large logits to equal values in
    float32 and so creates ties.

    Batch statistic: returns a scalar over all unmasked elements. AUC is not additive over
    batches; compute it on the concatenated scores of the whole evaluation set.

    Args:
      scores: real-valued scores (logits or probabilities) of any shape ``[...]``.
      labels: binary labels ``[...]`` (1 / True = positive class).
      mask: optional boolean mask broadcastable to ``[...]``; False elements are ignored.

    Returns:
      Scalar AUC in ``[0, 1]``; NaN when there is no positive or no negative element.
    """
    scores, labels, valid = _classification_inputs(scores, labels, mask, name="roc_auc")
    scores = scores.reshape(-1).astype(jnp.promote_types(scores.dtype, jnp.float32))
    labels, valid = labels.reshape(-1), valid.reshape(-1)
    is_pos = labels & valid
    is_neg = ~labels & valid
    n_pos = jnp.sum(is_pos, dtype=jnp.float32)
    n_neg = jnp.sum(is_neg)
    # Non-negatives are pushed to +inf: they never count as "< s", and the "<= s" count is capped
    # at n_neg, which is exact because every valid negative is <= +inf.
    neg_sorted = jnp.sort(jnp.where(is_neg, scores, jnp.inf))
    below = jnp.searchsorted(neg_sorted, scores, side="left")
    below_or_tied = jnp.minimum(jnp.searchsorted(neg_sorted, scores, side="right"), n_neg)
    wins = below.astype(jnp.float32) + 0.5 * (below_or_tied - below).astype(jnp.float32)
    total = jnp.sum(jnp.where(is_pos, wins, 0.0))
    pairs = n_pos * n_neg.astype(jnp.float32)
    return jnp.where(pairs > 0, total / jnp.where(pairs > 0, pairs, 1.0), jnp.nan)


def relative_depth_metrics(
    scores: jax.Array,
    labels: jax.Array,
    *,
    mask: jax.Array | None = None,
    from_logits: bool = False,
    threshold: float = 0.5,
) -> dict[str, jax.Array]:
    """The five relative-depth classification metrics of WSP ([Qiu], Sec. 4, Tables 2-3).

    AUC, accuracy, precision, recall and F1 (the last four at probability ``threshold`` 0.5) of
    pairwise "joint of person A is closer than joint of person B" predictions.

    Batch statistics: every value is a scalar over all unmasked elements.

    Args:
      scores: probabilities, or logits if ``from_logits``; any shape ``[...]``.
      labels: binary labels ``[...]``.
      mask: optional boolean mask broadcastable to ``[...]``.
      from_logits: whether ``scores`` are logits.
      threshold: probability threshold for the thresholded metrics.

    Returns:
      dict with scalar ``auc``, ``accuracy``, ``precision``, ``recall``, ``f1`` (fractions).
    """
    c = binary_confusion_counts(
        scores, labels, mask=mask, from_logits=from_logits, threshold=threshold
    )
    tp, fp, tn, fn = c["tp"], c["fp"], c["tn"], c["fn"]
    return {
        "auc": roc_auc(scores, labels, mask=mask),
        "accuracy": _ratio(tp + tn, tp + tn + fp + fn),
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "f1": _ratio(2.0 * tp, 2.0 * tp + fp + fn),
    }


# -------------------------------------------------------------- Host-side aggregation (numpy)


def frame_wise_mean(values: Any) -> float:
    """Mean over all frames (examples) -- VideoPose3D's "frame-wise" average.

    Args:
      values: per-example metric values, any shape (flattened).

    Returns:
      The mean as a Python float (NaN for no values).
    """
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    return float(np.mean(values)) if values.size else float("nan")


def per_group(values: Any, groups: Any) -> dict[Hashable, float]:
    """Mean of the per-example values within each group.

    Args:
      values: per-example values ``[N]``.
      groups: one hashable label per example ``[N]`` (action names, subject ids, ...).

    Returns:
      ``{group: mean}`` with groups in order of first appearance; Python scalars as keys.
    """
    values, groups = np.asarray(values, dtype=np.float64), np.asarray(groups)
    if values.ndim != 1:
        raise ValueError(
            f"per_group: expected 1-D per-example values [N], got shape {values.shape}"
        )
    if groups.shape != values.shape:
        raise ValueError(
            f"per_group: expected one group label per value, shape {values.shape}, "
            f"got {groups.shape}"
        )
    keys, first, inverse = np.unique(groups, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    sums = np.bincount(inverse, weights=values, minlength=len(keys))
    counts = np.bincount(inverse, minlength=len(keys))
    order = np.argsort(first, kind="stable")
    return {keys[i].item(): float(sums[i] / counts[i]) for i in order}


def per_action(values: Any, actions: Any) -> dict[Hashable, float]:
    """Per-action mean of per-frame values (Human3.6M tables list one column per action).

    Args:
      values: per-example values ``[N]``.
      actions: action label per example ``[N]``. Group sub-sequences as the protocol requires
        before calling (VideoPose3D merges ``"Walking 1"`` into ``"Walking"``).

    Returns:
      ``{action: mean}``.
    """
    return per_group(values, actions)


def per_subject(values: Any, subjects: Any) -> dict[Hashable, float]:
    """Per-subject mean of per-frame values (e.g. S9 vs S11 breakdown).

    Args:
      values: per-example values ``[N]``.
      subjects: subject label per example ``[N]``.

    Returns:
      ``{subject: mean}``.
    """
    return per_group(values, subjects)


def action_wise_mean(values: Any, actions: Any) -> float:
    """Mean of per-action means -- the "action-wise" average that papers quote for Human3.6M.

    Every action counts equally regardless of its number of frames [Martinez17; Pavllo19,
    ``run.py`` evaluation]; it differs from :func:`frame_wise_mean` unless all actions have the
    same number of frames.

    Args:
      values: per-example values ``[N]``.
      actions: action label per example ``[N]``.

    Returns:
      The average over actions of the per-action means (Python float).
    """
    means = per_action(values, actions)
    return float(np.mean(list(means.values()))) if means else float("nan")


def format_table(
    rows: Mapping[str, Mapping[str, float]],
    *,
    columns: Sequence[str] | None = None,
    title: str | Sequence[str] | None = None,
    row_header: str = "",
    digits: int = 1,
    missing: str = "-",
) -> str:
    """Formats ``{row: {column: value}}`` as a markdown table.

    Args:
      rows: mapping from row name (e.g. method) to ``{column: value}`` (e.g. action -> mm).
      columns: column order; default: the union of the rows' keys in order of first appearance.
      title: optional line(s) written above the table (e.g. protocol, units, data split),
        followed by a blank line.
      row_header: header of the first (row-name) column.
      digits: digits after the decimal point.
      missing: text for a missing or NaN cell.

    Returns:
      The table as a string ending in a newline.
    """
    if digits < 0:
        raise ValueError(f"format_table: expected digits >= 0, got {digits}")
    if columns is None:
        columns = list(dict.fromkeys(col for row in rows.values() for col in row))
    columns = [str(c) for c in columns]

    def cell(row: Mapping[str, float], col: str) -> str:
        if col not in row:
            return missing
        value = float(row[col])
        return missing if math.isnan(value) else f"{value:.{digits}f}"

    lines: list[str] = []
    if title is not None:
        lines.extend([title] if isinstance(title, str) else list(title))
        lines.append("")
    lines.append("| " + " | ".join([row_header, *columns]) + " |")
    lines.append("|" + "---|" + "".join("---:|" for _ in columns))
    for name, row in rows.items():
        row = {str(k): v for k, v in row.items()}
        lines.append("| " + " | ".join([str(name), *(cell(row, c) for c in columns)]) + " |")
    return "\n".join(lines) + "\n"
