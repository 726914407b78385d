"""The keypoint form of Zhou et al. (ICCV 2017)'s depth regression: a network that reads
scale-normalised, pelvis-centred 2D and predicts each joint's depth relative to the pelvis.

``u = (x - x_root) / s`` with ``s`` the RMS distance of the visible joints to the pelvis (the 2D
scale the network never sees), missing joints entered at the pelvis; the depth comes back in 2D
units (``out * s``). The evaluated 3D is ``[x, y, depth]`` rescaled to the training skeletons'
average sum of bone lengths (Zhou et al. Sec. 4.1.2, :func:`jpose.losses.zhou_skeleton_rescale`).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from jpose import losses, skeleton

__all__ = ["pose_scale_2d", "predict_depth", "rescaled_pose"]


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
    layout: str | skeleton.Layout = "h36m17",
) -> tuple[jax.Array, jax.Array]:
    """Root-relative depth ``[..., J]`` in 2D units, and the 2D scale ``s [...]``.

    Args:
      apply: the depth network ``u [..., J, 2] -> [..., J, 1]``.
      pose2d: ``[..., J, 2]`` normalised 2D.
      confidence: ``[..., J]`` (0 = missing: entered at the root).
      layout: the joint layout.
    """
    root = skeleton.get_layout(layout).root
    s = pose_scale_2d(pose2d, confidence, layout=layout)
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
    layout: str | skeleton.Layout = "h36m17",
) -> jax.Array:
    """The evaluated 3D of Zhou et al. (Sec. 4.1.2): ``[x, y, depth]`` rescaled to the training
    average sum of bone lengths, root at the origin.

    Args:
      apply: the depth network.
      pose2d: ``[B, J, 2]`` normalised 2D.
      confidence: ``[B, J]``.
      avg_sum_length: average sum of bone lengths of the training skeletons (metres).
      layout: the joint layout.

    Returns:
      ``[B, J, 3]`` metres, root at the origin.
    """
    depth, _ = predict_depth(apply, pose2d, confidence, layout=layout)
    pose = jnp.concatenate([pose2d, depth[..., None]], -1)
    return losses.zhou_skeleton_rescale(pose, layout=layout, avg_sum_length=avg_sum_length)
