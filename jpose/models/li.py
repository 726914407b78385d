"""The forward pass and training objectives of Li et al. (AAAI 2020), self-supervised 2D-to-3D
lifting from synchronised views.

Two branches see a view's 2D: the lifting branch (:func:`jpose.models.li_lifter`) gives the
pose ``Y`` made root-relative, the root branch (:func:`jpose.models.li_root_branch`) the root
``r``; the global pose ``Y~ = Y + r`` is in the view's camera frame (:func:`global_pose`). The
objectives average the paper's per-pair losses (:mod:`jpose.losses`) over every view pair of an
instant (:func:`jpose.multiview.view_pairs`), with the relative transforms of eq. 4
(:func:`jpose.multiview.pair_transforms`): eq. 6 (:func:`pretrain_objective`) and eq. 7 =
eqs. 2 + lambda eq. 5 (:func:`train_objective`).

Axes: ``B`` instants, ``V`` views, ``P`` view pairs, ``J`` joints. The 2D and the intrinsics are
in the same units (pixels or normalised image units); 3D in metres.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jpose import losses
from jpose import multiview as mv

__all__ = ["global_pose", "output_scale", "pretrain_objective", "train_objective"]


def global_pose(
    relative: jax.Array, root: jax.Array, *, root_index: int = 0, root_depth_offset: float = 0.0
) -> jax.Array:
    """Li et al.'s global pose ``Y~ = Y + r`` (Sec. 3.1).

    Args:
      relative: ``[..., J, 3]`` the lifting branch's output; made root-relative here.
      root: ``[..., 3]`` the root branch's output (metres, camera frame).
      root_index: the root joint of ``relative``.
      root_depth_offset: metres added to the root's depth (``r_z = out_z + offset``), so that a
        freshly initialised root branch (outputs ~ 0) starts in front of the camera instead of
        at the projection's depth clamp (not in the paper).

    Returns:
      ``[..., J, 3]`` metres, the view's camera frame.
    """
    rel = relative - relative[..., root_index : root_index + 1, :]
    root = root + jnp.asarray([0.0, 0.0, root_depth_offset], root.dtype)
    return rel + root[..., None, :]


def output_scale(width: int, *, scale: float = 0.0, reference_width: int = 128) -> float:
    """The branches' readout multiplier (``ResidualMLP.output_scale``; not in the paper):
    ``scale``, or when 0 ``min(1, reference_width / width)``.

    Adam moves every output weight by about its learning rate on the first steps, so a
    zero-initialised output layer over ``width`` hidden units moves the metre-valued output by
    about ``lr * width * mean|h|``; the multiplier keeps that step at ``reference_width``'s size
    for every width (as a maximal-update parametrisation's readout multiplier).
    """
    return float(scale) if float(scale) > 0 else min(1.0, reference_width / max(int(width), 1))


def _stack_pairs(x: jax.Array, pairs: np.ndarray) -> jax.Array:
    """``[B, V, ...] -> [B, P, 2, ...]``."""
    return jnp.stack([x[:, pairs[:, 0]], x[:, pairs[:, 1]]], axis=2)


def pretrain_objective(
    pose3d: jax.Array, *, rotation: jax.Array, translation: jax.Array, root_index: int = 0
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Li et al. eq. 6 (:func:`jpose.losses.li_pretrain_loss`) averaged over the batch and every
    view pair.

    Args:
      pose3d: ``[B, V, J, 3]`` global poses (:func:`global_pose`), each view's camera frame.
      rotation: ``[B, V, 3, 3]`` world -> camera extrinsics.
      translation: ``[B, V, 3]`` metres.
      root_index: the root joint (for the ``root_depth`` metric).

    Returns:
      ``(loss in metres^2 per pair, {"eq6": loss, "root_depth": mean root depth in metres})``.
    """
    pairs = mv.view_pairs(pose3d.shape[-3])
    r_ab, t_ab = mv.pair_transforms(rotation, translation, pairs=pairs)
    loss = jnp.mean(
        losses.li_pretrain_loss(_stack_pairs(pose3d, pairs), rotation=r_ab, translation=t_ab)
    )
    return loss, {"eq6": loss, "root_depth": jnp.mean(pose3d[..., root_index, 2])}


def train_objective(
    pose3d: jax.Array,
    pose2d: jax.Array,
    confidence: jax.Array,
    *,
    focal: jax.Array,
    center: jax.Array,
    rotation: jax.Array,
    translation: jax.Array,
    transform_weight: float,
    confidence_view: str = "source",
    root_index: int = 0,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Li et al. eq. 7, ``L_reproj + lambda L_t-reproj``, averaged over the batch and every view
    pair: eq. 2 (:func:`jpose.losses.li_reprojection_loss` of both views of a pair) and eq. 5
    (:func:`jpose.losses.li_transform_reprojection_loss`).

    Args:
      pose3d: ``[B, V, J, 3]`` global poses (:func:`global_pose`).
      pose2d: ``[B, V, J, 2]`` the views' 2D (re-projection targets).
      confidence: ``[B, V, J]`` the weights w of eqs. 2 and 5.
      focal, center: ``[B, V, 2]`` intrinsics in the units of ``pose2d``.
      rotation: ``[B, V, 3, 3]`` world -> camera extrinsics.
      translation: ``[B, V, 3]`` metres.
      transform_weight: lambda of eq. 7.
      confidence_view: eq. 5's weights (``"source"``: as written; ``"target"``).
      root_index: the root joint (for the ``root_depth`` metric).

    Returns:
      ``(loss, {"reproj", "t_reproj", "root_depth", "mean_confidence"})``: eqs. 2 and 5 per
      pair, the mean root depth (metres) and the mean confidence of the present joints.
    """
    pairs = mv.view_pairs(pose3d.shape[-3])
    per_view = losses.li_reprojection_loss(
        pose3d, pose2d, confidence, focal=focal, center=center
    )  # [B, V]
    reproj = jnp.mean(per_view[:, pairs[:, 0]] + per_view[:, pairs[:, 1]])  # eq. 2 per pair
    r_ab, t_ab = mv.pair_transforms(rotation, translation, pairs=pairs)
    trans = jnp.mean(
        losses.li_transform_reprojection_loss(
            _stack_pairs(pose3d, pairs),
            _stack_pairs(pose2d, pairs),
            _stack_pairs(confidence, pairs),
            rotation=r_ab,
            translation=t_ab,
            focal=_stack_pairs(focal, pairs),
            center=_stack_pairs(center, pairs),
            confidence_view=confidence_view,
        )
    )
    loss = losses.li_total_loss(reproj, trans, weight=transform_weight)
    present = confidence > 0
    mean_conf = jnp.sum(jnp.where(present, confidence, 0.0)) / jnp.maximum(jnp.sum(present), 1)
    return loss, {"reproj": reproj, "t_reproj": trans,
                  "root_depth": jnp.mean(pose3d[..., root_index, 2]),
                  "mean_confidence": mean_conf}  # fmt: skip
