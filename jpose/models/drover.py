"""The forward pass of Drover et al. (ECCV-W 2018): 2D in, the generator's depth offsets, the
back-projected 3D out.

The generator sees the 2D of a joint subset (all 17 Human3.6M joints, or the paper's 14 without
pelvis, spine and neck/nose), normalised so that the average head-root distance of the source is
``1 / d`` (Sec. 3.1, :func:`jpose.losses.drover_normalize_2d`). Its offsets give depths
``z = max(0, d + o) + 1`` (eq. 2) and the 3D is ``[z x, z y, z]`` (the back-projection layer),
centred on the subset's root. The method is scale-free: the 3D is in generator units, converted
to metres by a nominal factor.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jpose import losses, skeleton

__all__ = ["DROVER14_DROPPED", "DroverJoints", "drover_pose", "normalize_source"]

DROVER14_DROPPED = ("Hip", "Spine", "Neck/Nose")
"""Human3.6M-17 joints absent from Drover et al.'s 14-joint skeleton."""


@dataclasses.dataclass(frozen=True)
class DroverJoints:
    """Which Human3.6M-17 joints the generator sees and how its poses are centred.

    Attributes:
      joints: indices into H36M-17 of the generator's ``J`` joints.
      centre: indices *within* ``joints`` whose mean is the root (the pelvis for 17 joints, the
        hip midpoint for 14).
      head: index of the head joint in H36M-17 (input normalisation).
    """

    joints: tuple[int, ...]
    centre: tuple[int, ...]
    head: int

    @classmethod
    def of(cls, num_joints: int) -> DroverJoints:
        """The 17-joint (every H36M-17 joint) or 14-joint (:data:`DROVER14_DROPPED` removed)
        variant, derived from the layout's joint names."""
        lay = skeleton.H36M17
        if num_joints == 17:
            joints = list(range(lay.num_joints))
        elif num_joints == 14:
            drop = set(lay.indices(DROVER14_DROPPED).tolist())
            joints = [j for j in range(lay.num_joints) if j not in drop]
        else:
            raise ValueError(f"Drover: num_joints must be 14 or 17, got {num_joints}")
        names = [lay.joint_names[j] for j in joints]
        centre = ("Hip",) if num_joints == 17 else ("RHip", "LHip")
        return cls(tuple(joints), tuple(names.index(n) for n in centre), lay.index("Head"))

    @property
    def num_joints(self) -> int:
        """J."""
        return len(self.joints)

    def root(self, pose: jax.Array) -> jax.Array:
        """``[..., 1, D]`` centring point of a ``[..., J, D]`` pose of the generator's joints."""
        return jnp.mean(pose[..., np.asarray(self.centre), :], axis=-2, keepdims=True)

    def to_layout(self, pose: jax.Array) -> jax.Array:
        """Scatter a ``[..., J, 3]`` pose into H36M-17 (absent joints = the root point)."""
        n = skeleton.H36M17.num_joints
        if self.num_joints == n:
            return pose
        out = jnp.broadcast_to(self.root(pose), (*pose.shape[:-2], n, pose.shape[-1]))
        return out.at[..., np.asarray(self.joints), :].set(pose)


def normalize_source(
    pose2d: jax.Array, *, joints: DroverJoints, distance: float, head_root_distance: float
) -> jax.Array:
    """Drover Sec. 3.1 input normalisation of H36M-17 2D, then the generator's joint subset.

    Args:
      pose2d: ``[..., 17, 2]`` 2D (any isotropic unit, e.g. VideoPose3D-normalised).
      joints: the joint subset.
      distance: ``d``.
      head_root_distance: average head-root distance of this source (same unit).

    Returns:
      ``[..., J, 2]`` root-centred 2D with average head-root distance ``1 / d``.
    """
    x = losses.drover_normalize_2d(
        pose2d, root=skeleton.H36M17.root, head=joints.head, distance=distance,
        head_root_distance=head_root_distance,
    )  # fmt: skip
    return x[..., np.asarray(joints.joints), :]


def drover_pose(
    apply: Callable[[jax.Array], jax.Array] | None,
    pose2d: jax.Array,
    *,
    joints: DroverJoints,
    distance: float,
    head_root_distance: float,
) -> jax.Array:
    """The generator's 3D (eq. 2 and the back-projection layer), in generator units, centred on
    ``joints``' root; ``apply=None`` gives the trivial baseline (zero offsets: constant depth
    ``d + 1``, a flat skeleton).

    Args:
      apply: the generator ``[..., J, 2] -> [..., J]`` offsets.
      pose2d: ``[..., 17, 2]`` 2D.
      joints: the joint subset.
      distance: ``d``.
      head_root_distance: average head-root distance of the training inputs.

    Returns:
      ``[..., J, 3]``.
    """
    x = normalize_source(pose2d, joints=joints, distance=distance,
                         head_root_distance=head_root_distance)  # fmt: skip
    offsets = jnp.zeros(x.shape[:-1], x.dtype) if apply is None else apply(x)
    points = losses.drover_back_project(x, losses.drover_depth(offsets, distance=distance))
    return points - joints.root(points)
