"""The forward pass of Drover et al. (ECCV-W 2018): 2D in, the generator's depth offsets, the
back-projected 3D out.

The generator sees the 2D of a joint subset (all 17 Human3.6M joints, or the paper's 14 without
pelvis, spine and neck/nose), normalised so that the average head-root distance of the source is
``1 / d`` (Sec. 3.1, :func:`jpose.losses.drover_normalize_2d`). Its offsets give depths
``z = max(0, d + o) + 1`` (eq. 2) and the 3D is ``[z x, z y, z]`` (the back-projection layer),
centred on the subset's root. The method is scale-free: the 3D is in generator units, converted
to metres by a nominal factor.

Training pieces: the real 2D pool (:func:`virtual_views`, :func:`real_pool`), the random
projection of generated skeletons (:func:`random_projection`) and the adversarial objectives of
eq. 4 (:func:`discriminator_objective`, :func:`generator_objective`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jpose import adversarial, losses, skeleton

__all__ = [
    "DROVER14_DROPPED",
    "GENERATOR_LOSSES",
    "DroverJoints",
    "discriminator_objective",
    "drover_pose",
    "drover_pose3d",
    "generator_loss_fn",
    "generator_objective",
    "head_root_distance",
    "normalize_source",
    "random_projection",
    "real_logit",
    "real_pool",
    "virtual_views",
]

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

    @property
    def layout_centre(self) -> tuple[int, ...]:
        """H36M-17 indices of the :attr:`centre` joints."""
        return tuple(self.joints[i] for i in self.centre)

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


def drover_pose3d(
    apply: Callable[[jax.Array], jax.Array] | None,
    pose2d: jax.Array,
    confidence: jax.Array,
    *,
    joints: DroverJoints,
    distance: float,
    head_root_distance: float,
    unit_m: float,
) -> jax.Array:
    """The evaluated 3D ``[..., 17, 3]``: :func:`drover_pose` times the nominal ``unit_m`` metres
    per generator unit, scattered into H36M-17 (:meth:`DroverJoints.to_layout`: joints the
    generator does not see are its root point). ``confidence`` is not used (the generator sees 2D
    only); ``apply=None`` is the trivial baseline."""
    del confidence
    pose = drover_pose(apply, pose2d, joints=joints, distance=distance,
                       head_root_distance=head_root_distance)  # fmt: skip
    return joints.to_layout(pose * unit_m)


# ------------------------------------------------------------------------------------------------
# Training: the real 2D pool, the random projection layer, the adversarial objectives
# ------------------------------------------------------------------------------------------------


def head_root_distance(pose2d: np.ndarray, joints: DroverJoints) -> float:
    """Average head-root (pelvis) distance of ``[N, 17, 2]`` 2D: the normaliser of Drover et al.
    Sec. 3.1 (:func:`normalize_source`)."""
    root = skeleton.H36M17.root
    return float(np.mean(np.linalg.norm(pose2d[:, joints.head] - pose2d[:, root], axis=-1)))


def real_pool(
    sources: Sequence[np.ndarray], *, joints: DroverJoints, distance: float
) -> np.ndarray:
    """The discriminator's real 2D ``[M, J, 2]`` (float32): every ``[N_i, 17, 2]`` source
    normalised with its *own* average head-root distance (:func:`normalize_source`), concatenated.
    """
    out = []
    for pose2d in sources:
        hr = head_root_distance(pose2d, joints)
        out.append(np.asarray(normalize_source(pose2d, joints=joints, distance=distance,
                                               head_root_distance=hr)))  # fmt: skip
    return np.concatenate(out).astype(np.float32)


def virtual_views(
    pose3d_cam: np.ndarray,
    key: jax.Array,
    *,
    num_views: int,
    azimuth_deg: Sequence[float] = (0.0, 360.0),
    elevation_deg: Sequence[float] = (0.0, 20.0),
) -> np.ndarray:
    """``[V * N, 17, 2]`` unit-focal projections of camera-frame skeletons through ``V`` random
    virtual cameras (Drover et al. Sec. 4.1: 8 cameras, azimuth 0-360, elevation 0-20 degrees).

    Each ``[N, 17, 3]`` skeleton (metres, in front of the camera) is rotated about its pelvis
    (:func:`jpose.losses.drover_random_rotation`), kept at its pelvis depth and projected
    (``x = X / Z``, ``Z`` clamped at 0.1); view ``v`` of every skeleton comes before view ``v + 1``.
    """
    root = skeleton.H36M17.root
    pose = jnp.asarray(pose3d_cam, jnp.float32)
    centre = pose[:, root : root + 1]
    rot = losses.drover_random_rotation(
        key,
        (num_views, len(pose3d_cam)),
        azimuth_range=tuple(math.radians(a) for a in azimuth_deg),
        elevation_range=tuple(math.radians(e) for e in elevation_deg),
    )

    @jax.jit
    def views(rot: jax.Array) -> jax.Array:
        rotated = jnp.einsum("nij,nkj->nki", rot, pose - centre) + centre
        z = jnp.maximum(rotated[..., 2:], 0.1)  # clamp: poses are metres in front of the camera
        return rotated[..., :2] / z

    out = jnp.concatenate([views(rot[v]) for v in range(num_views)], axis=0)
    return np.asarray(out, np.float32)


def random_projection(
    points_3d: jax.Array,
    key: jax.Array,
    *,
    joints: DroverJoints,
    distance: float,
    azimuth_deg: Sequence[float] = (0.0, 360.0),
    elevation_deg: Sequence[float] = (0.0, 20.0),
    recentre: bool = True,
) -> jax.Array:
    """The random projection layer (Drover et al. Sec. 3) of generated skeletons
    ``[B, J, 3] -> [B, J, 2]``: a random rotation about ``[0, 0, d]`` per example
    (:func:`jpose.losses.drover_random_projection`), then, with ``recentre`` (ours: the paper does
    not say), re-centred on ``joints``' root like the real 2D."""
    rot = losses.drover_random_rotation(
        key,
        points_3d.shape[:-2],
        azimuth_range=tuple(math.radians(a) for a in azimuth_deg),
        elevation_range=tuple(math.radians(e) for e in elevation_deg),
    )
    p = losses.drover_random_projection(points_3d, rot, distance=distance)
    return p - joints.root(p) if recentre else p


def real_logit(logits: jax.Array) -> jax.Array:
    """``[...]`` logit of "real" from the 2-class discriminator's ``[..., 2]`` softmax logits
    (class 0 = real): ``P(real) = sigmoid(l_real - l_fake)``."""
    return logits[..., 0] - logits[..., 1]


def discriminator_objective(
    real_logits: jax.Array, fake_logits: jax.Array
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Drover et al. eq. 4, discriminator side: ``mean(-log D(r)) + mean(-log(1 - D(p)))``.

    Args:
      real_logits: ``[B_r]`` :func:`real_logit` of real 2D poses ``r``.
      fake_logits: ``[B_p]`` the same of random projections ``p``.

    Returns:
      ``(loss, {"accuracy", "p_real_on_fake"})``.
    """
    loss = jnp.mean(adversarial.gan_real_loss(real_logits)) + jnp.mean(
        adversarial.gan_fake_loss(fake_logits)
    )
    acc = 0.5 * (jnp.mean(real_logits > 0) + jnp.mean(fake_logits < 0))
    return loss, {"accuracy": acc, "p_real_on_fake": jnp.mean(jax.nn.sigmoid(fake_logits))}


GENERATOR_LOSSES = ("non_saturating", "minimax")


def generator_loss_fn(name: str) -> Callable[[jax.Array], jax.Array]:
    """The generator's per-example loss of its fakes' logits: ``"minimax"`` is Drover et al.
    eq. 4 as written, ``log(1 - D(p))``; ``"non_saturating"`` is ``-log D(p)`` (Goodfellow et al.
    2014), with gradients while D rejects the fakes."""
    if name == "non_saturating":
        return adversarial.gan_generator_loss_non_saturating
    if name == "minimax":
        return adversarial.gan_generator_loss
    raise ValueError(f"generator_loss must be non_saturating|minimax, got {name!r}")


def generator_objective(
    fake_logits: jax.Array, offsets: jax.Array, *, distance: float, loss: str = "non_saturating"
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Drover et al. eq. 4, generator side (:func:`generator_loss_fn` ``loss``), batch mean.

    Args:
      fake_logits: ``[B]`` :func:`real_logit` of the generator's random projections.
      offsets: ``[B, J]`` the generator's depth offsets ``o`` (for the logged depth statistics).
      distance: ``d`` of eq. 2.
      loss: ``"non_saturating"`` or ``"minimax"``.

    Returns:
      ``(loss, {"fooled", "depth_std", "depth_clamped"})``: the share of fakes D takes for real,
      the mean per-pose std of the depths ``z`` and the share of depths at the ``max(0, .)`` kink.
    """
    value = jnp.mean(generator_loss_fn(loss)(fake_logits))
    depth = losses.drover_depth(offsets, distance=distance)
    return value, {
        "fooled": jnp.mean(fake_logits > 0),
        "depth_std": jnp.mean(jnp.std(depth, axis=-1)),
        "depth_clamped": jnp.mean(distance + offsets < 0),
    }
