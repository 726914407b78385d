"""Bones, forward kinematics and the kinematic chain space (KCS).

Shapes: poses are ``[..., J, 3]`` (any leading batch axes), bones ``[..., B, 3]`` with
``B = J - 1`` ordered as :attr:`jpose.skeleton.Layout.bones` (bone vector = child − parent).
Units: whatever the pose uses (jpose: metres); lengths and KCS entries carry that unit (KCS:
unit squared). Every function is pure ``jax.numpy`` and safe to ``jit``/``vmap``/``grad``:
lengths and directions use :func:`jpose.geometry.safe_norm`, so zero-length bones give finite
values and gradients.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.typing import ArrayLike

from jpose.geometry import safe_norm
from jpose.skeleton import KCS_PARTS, Layout, check_points, get_layout

__all__ = [
    "bone_vectors",
    "bone_lengths",
    "bone_directions",
    "pose_from_bones",
    "kcs_matrix",
    "part_kcs_matrices",
    "bone_length_ratios",
    "sum_bone_lengths",
    "rescale_to_sum_of_bone_lengths",
]


def bone_vectors(pose: ArrayLike, *, layout: str | Layout) -> Array:
    """Bone vectors ``X[child] - X[parent]``.

    Args:
      pose: ``[..., J, 3]`` (or ``[..., J, 2]``) joint positions.
      layout: joint layout (or its name) of ``pose``.

    Returns:
      ``[..., B, D]`` bone vectors in the unit of ``pose``.
    """
    lay = get_layout(layout)
    check_points(pose, lay, dims=(2, 3), name="pose")
    pose = jnp.asarray(pose)
    return pose[..., lay.bones[:, 1], :] - pose[..., lay.bones[:, 0], :]


def bone_lengths(pose: ArrayLike, *, layout: str | Layout) -> Array:
    """Bone lengths ``||X[child] - X[parent]||`` (``[..., B]``, unit of ``pose``).

    The norm has a finite (zero) gradient at zero-length bones.
    """
    return safe_norm(bone_vectors(pose, layout=layout), axis=-1)


def bone_directions(pose: ArrayLike, *, layout: str | Layout, eps: float = 1e-8) -> Array:
    """Unit bone directions ``[..., B, D]``; a zero-length bone gives the zero vector.

    Args:
      pose: ``[..., J, D]`` joint positions.
      layout: joint layout of ``pose``.
      eps: lengths below ``eps`` are treated as zero (direction set to zero).
    """
    b = bone_vectors(pose, layout=layout)
    n = safe_norm(b, axis=-1, keepdims=True)
    return jnp.where(n > eps, b / jnp.where(n > eps, n, 1.0), 0.0)


def pose_from_bones(
    bones: ArrayLike, *, layout: str | Layout, root: ArrayLike | None = None
) -> Array:
    """Forward kinematics: joints from bone vectors.

    Args:
      bones: ``[..., B, D]`` bone vectors (child − parent).
      layout: joint layout the bones belong to.
      root: optional ``[..., D]`` root position; the result is root-relative when ``None``.

    Returns:
      ``[..., J, D]`` joints with ``joints[root] = root`` (or zero).
    """
    lay = get_layout(layout)
    bones = jnp.asarray(bones)
    if bones.ndim < 2 or bones.shape[-2] != lay.num_bones:
        raise ValueError(
            f"bones: expected shape [..., {lay.num_bones}, D] for layout {lay.name}, "
            f"got {bones.shape}"
        )
    joints = jnp.einsum("jb,...bd->...jd", jnp.asarray(lay.fk_matrix, bones.dtype), bones)
    if root is not None:
        joints = joints + jnp.asarray(root)[..., None, :]
    return joints


def kcs_matrix(
    pose: ArrayLike, *, layout: str | Layout, bone_set: str | None = None, unit_bones: bool = False
) -> Array:
    """Kinematic chain space matrix Ψ = BᵀB (Wandt & Rosenhahn, CVPR 2019, eq. 3).

    With the bone matrix ``B`` of shape ``3 × num_bones`` (one column per bone), ``Ψ[k, l]`` is
    the dot product of bones ``k`` and ``l``: bone lengths squared on the diagonal, angles off it.
    PoseAug's part-aware discriminator (Gong et al. CVPR 2021, sec. 3.3) zeroes the bones outside
    one part before forming Ψ; ``bone_set`` does that (e.g. ``"kcs_torso"``).

    Args:
      pose: ``[..., J, 3]`` joint positions. Ψ is invariant to translating the pose.
      layout: joint layout of ``pose``.
      bone_set: optional bone-set name on ``layout``; bones outside it are zeroed.
      unit_bones: normalise every bone to unit length first (PoseAug's D_3D judges angles only).

    Returns:
      ``[..., B, B]`` symmetric matrix, in the pose unit squared (unitless with ``unit_bones``).
    """
    lay = get_layout(layout)
    b = bone_directions(pose, layout=lay) if unit_bones else bone_vectors(pose, layout=lay)
    if bone_set is not None:
        b = b * jnp.asarray(lay.bone_set_mask(bone_set), b.dtype)[:, None]
    return jnp.einsum("...kd,...ld->...kl", b, b)


def part_kcs_matrices(
    pose: ArrayLike,
    *,
    layout: str | Layout,
    parts: Sequence[str] = KCS_PARTS,
    unit_bones: bool = True,
) -> Array:
    """Part-aware KCS matrices of PoseAug's 3D discriminator (Gong et al. CVPR 2021, sec. 3.3).

    One :func:`kcs_matrix` per bone set, stacked on a parts axis, with the bone vectors computed
    once. With ``unit_bones`` (PoseAug's default) every bone is scaled to unit length first, so
    the matrices hold cosines between the bones of each part.

    Args:
      pose: ``[..., J, 3]`` joint positions.
      layout: joint layout of ``pose``.
      parts: bone-set names, default :data:`jpose.skeleton.KCS_PARTS`.
      unit_bones: normalise bones to unit length first.

    Returns:
      ``[..., P, B, B]`` matrices (unitless with ``unit_bones``, else pose unit squared).
    """
    lay = get_layout(layout)
    b = bone_directions(pose, layout=lay) if unit_bones else bone_vectors(pose, layout=lay)
    masks = jnp.asarray(np.stack([lay.bone_set_mask(p) for p in parts]), b.dtype)  # [P, B]
    bp = b[..., None, :, :] * masks[:, :, None]  # [..., P, B, D]
    return jnp.einsum("...pkd,...pld->...pkl", bp, bp)


def bone_length_ratios(
    pose: ArrayLike, canonical_lengths: ArrayLike, *, layout: str | Layout, eps: float = 1e-8
) -> Array:
    """Bone lengths divided by canonical lengths (Zhou et al. ICCV 2017, eq. 3: l_e / l̄_e).

    Args:
      pose: ``[..., J, 3]`` joint positions.
      canonical_lengths: ``[B]`` (or broadcastable ``[..., B]``) reference lengths, same unit.
      layout: joint layout of ``pose``.
      eps: floor on the canonical lengths so a zero reference gives a finite ratio.

    Returns:
      ``[..., B]`` unitless ratios.
    """
    lay = get_layout(layout)
    canonical = jnp.asarray(canonical_lengths)
    if canonical.shape[-1:] != (lay.num_bones,):
        raise ValueError(
            f"canonical_lengths: expected [..., {lay.num_bones}] for layout {lay.name}, "
            f"got {canonical.shape}"
        )
    return bone_lengths(pose, layout=lay) / jnp.maximum(canonical, eps)


def sum_bone_lengths(pose: ArrayLike, *, layout: str | Layout) -> Array:
    """Total skeleton length Σ_k ||b_k|| (``[...]``, unit of ``pose``)."""
    return jnp.sum(bone_lengths(pose, layout=layout), axis=-1)


def rescale_to_sum_of_bone_lengths(
    pose: ArrayLike, reference_sum: ArrayLike, *, layout: str | Layout, eps: float = 1e-8
) -> Array:
    """Scale a pose about its root so its total bone length equals ``reference_sum``.

    This is the skeleton-length rescale of Zhou et al. ICCV 2017, sec. 4.1.2 (with
    ``reference_sum`` the average sum of bone lengths of the training skeletons).

    Args:
      pose: ``[..., J, 3]`` joint positions.
      reference_sum: scalar or ``[...]`` target sum of bone lengths, unit of ``pose``.
      layout: joint layout of ``pose``.
      eps: floor on the current sum (all joints coincident leaves the pose unchanged).

    Returns:
      ``[..., J, 3]`` root-relative pose scaled about the root, plus the original root.
    """
    lay = get_layout(layout)
    pose = jnp.asarray(pose)
    root = pose[..., lay.root : lay.root + 1, :]
    total = sum_bone_lengths(pose, layout=lay)
    scale = jnp.where(total > eps, jnp.asarray(reference_sum) / jnp.maximum(total, eps), 1.0)
    return (pose - root) * scale[..., None, None] + root
