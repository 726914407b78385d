"""PoseAug-style augmentation generator and discriminators (Gong et al., "PoseAug", CVPR 2021;
used by CameraPose, Yang et al. WACV 2023 Sec. 3.3).

Axes: ``...`` leading batch axes, ``J`` joints, ``B`` bones (one per non-root joint), ``K`` bone
classes (symmetric bones share a class), ``P`` KCS body parts. Poses in metres.

This module only *predicts* augmentation parameters; applying them to a pose (bone-angle offsets
renormalised, ratio limits such as ``0.2 tanh``, axis-angle ``pi tanh``, ``t_z^2`` depth) is done by
``jpose.augment``. Outputs are therefore unbounded raw values.

Architecture facts (PoseAug ``models_poseaug/*.py``):

* generator MLP (one per operation): ``[x_flat || extras || z]`` with ``z ~ N(0, I_noise_dim)``
  fresh per call -> Dense 256, BN, LeakyReLU(0.01) -> 2 stages x 2 x [Dense 256, BN, LeakyReLU]
  (no residual) -> Dense out; Kaiming-normal init. Bone angle (BA): ``[x, z] -> [B, 3]``; bone
  length (BL): ``[x, l, z] -> [K]`` per-class ratios; rotation/translation (RT): two MLPs on
  ``[x, z]`` -> axis-angle ``[3]`` and translation ``[3]``.
* 2D discriminator: flatten -> 100 LReLU -> 100 LReLU -> d3 = LReLU(Dense(d2) + d1) -> Dense 100
  -> LReLU(Dense 100) -> Dense 1.
* part-aware KCS 3D discriminator: one path per part on the flattened KCS matrix ``Psi_P [B*B]``:
  ``h1 = LReLU(Dense 256)``, ``h2 = LReLU(Dense 256)``, ``h3 = Dense 256 (h2) + h1``,
  ``h4 = LReLU(Dense 100 (h3))``, ``out = Dense 1`` -> logits ``[..., P]`` (no sigmoid).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from jpose import kinematics, skeleton
from jpose.models.core import Model, batch_norm, kaiming_normal, leaky_relu

__all__ = [
    "GeneratorMLP",
    "PoseAugGenerator",
    "PoseAugDiscriminator2D",
    "KCSPath",
    "PartKCSDiscriminator",
    "poseaug_generator",
    "poseaug_discriminator_2d",
    "part_kcs_discriminator",
    "poseaug_players",
]


class GeneratorMLP(nn.Module):
    """PoseAug generator block.

    Dense(w), BN, LReLU, then ``num_stages x 2 x`` [Dense(w), BN, LReLU], then Dense(out).
    """

    out_dim: int
    width: int = 256
    num_stages: int = 2
    negative_slope: float = 0.01
    bn_momentum: float = 0.9
    axis_name: str | None = None

    @nn.compact
    def __call__(self, h: jax.Array, *, train: bool) -> jax.Array:
        """``h [..., F] -> [..., out_dim]``."""
        for i in range(1 + 2 * self.num_stages):
            # no bias before batch norm (cancelled by it; PoseAug's PyTorch layers keep one)
            h = nn.Dense(self.width, use_bias=False, kernel_init=kaiming_normal, name=f"dense{i}")(
                h
            )
            h = batch_norm(
                use_running_average=not train,
                momentum=self.bn_momentum,
                axis_name=self.axis_name,
                name=f"bn{i}",
            )(h)
            h = leaky_relu(h, negative_slope=self.negative_slope)
        return nn.Dense(self.out_dim, kernel_init=kaiming_normal, name="output")(h)


class PoseAugGenerator(nn.Module):
    """Predicts PoseAug augmentation parameters from a 3D pose ``[..., J, 3]``.

    Attributes:
      bones: ``(parent, child)`` joint pairs, one per bone (``layout.bones``), used for the bone
        lengths fed to the BL MLP.
      num_bone_classes: K, number of symmetric bone classes (``layout.num_bone_classes``).
      root: root joint index; the input is root-centred before the MLPs.
      noise_dim: dimension of each MLP's Gaussian noise input (PoseAug: 48).
      width, num_stages: MLP width / stages (256 / 2).
      axis_name: batch-norm axis name for data parallelism.

    Needs the ``"noise"`` RNG stream (``Model.apply(..., key=...)``) in training and evaluation.
    """

    bones: tuple[tuple[int, int], ...]
    num_bone_classes: int
    root: int = 0
    noise_dim: int = 48
    width: int = 256
    num_stages: int = 2
    axis_name: str | None = None

    @nn.compact
    def __call__(self, pose: jax.Array, *, train: bool) -> dict[str, jax.Array]:
        """Predict raw parameters.

        Args:
          pose: ``[..., J, 3]`` 3D poses (metres).
          train: training mode (batch norm).

        Returns:
          dict of raw (unbounded) values: ``bone_angle [..., B, 3]`` direction offsets,
          ``bone_length [..., K]`` per-class length ratios, ``rotation [..., 3]`` axis-angle,
          ``translation [..., 3]``.
        """
        if pose.ndim < 2 or pose.shape[-1] != 3:
            raise ValueError(f"PoseAugGenerator expects poses [..., J, 3], got {pose.shape}")
        num_bones = len(self.bones)
        x = pose - pose[..., self.root : self.root + 1, :]
        lead = x.shape[:-2]
        x_flat = x.reshape(*lead, -1)
        parents = jnp.asarray([p for p, _ in self.bones])
        children = jnp.asarray([c for _, c in self.bones])
        vec = x[..., children, :] - x[..., parents, :]
        lengths = jnp.sqrt(jnp.sum(vec * vec, axis=-1) + 1e-12)

        def mlp(out_dim: int, name: str, *extra: jax.Array) -> jax.Array:
            """``[x_flat || extra || z]`` through a fresh :class:`GeneratorMLP`."""
            z = jax.random.normal(self.make_rng("noise"), (*lead, self.noise_dim), x.dtype)
            net = GeneratorMLP(
                out_dim,
                width=self.width,
                num_stages=self.num_stages,
                axis_name=self.axis_name,
                name=name,
            )
            return net(jnp.concatenate([x_flat, *extra, z], -1), train=train)

        return {
            "bone_angle": mlp(num_bones * 3, "bone_angle").reshape(*lead, num_bones, 3),
            "bone_length": mlp(self.num_bone_classes, "bone_length", lengths),
            "rotation": mlp(3, "rotation"),
            "translation": mlp(3, "translation"),
        }


class PoseAugDiscriminator2D(nn.Module):
    """PoseAug 2D pose discriminator: ``[..., J, 2] -> logits [..., 1]`` (no sigmoid)."""

    width: int = 100
    negative_slope: float = 0.01
    axis_name: str | None = None  # no batch norm; kept for the Model.apply contract

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        """Score 2D poses ``x [..., J, 2]`` (any per-joint channel count) -> ``[..., 1]``."""
        del train
        act = lambda v: leaky_relu(v, negative_slope=self.negative_slope)  # noqa: E731
        h = x.reshape(*x.shape[:-2], -1)
        d1 = act(nn.Dense(self.width, name="dense0")(h))
        d2 = act(nn.Dense(self.width, name="dense1")(d1))
        d3 = act(nn.Dense(self.width, name="dense2")(d2) + d1)
        d4 = nn.Dense(self.width, name="dense3")(d3)
        d5 = act(nn.Dense(self.width, name="dense4")(d4))
        return nn.Dense(1, name="output")(d5)


class KCSPath(nn.Module):
    """One part's KCS path: ``[..., B*B] -> [..., 1]`` (PoseAug ``KCSpath``)."""

    width: int = 256
    bottleneck: int = 100
    negative_slope: float = 0.01

    @nn.compact
    def __call__(self, psi: jax.Array) -> jax.Array:
        """Score flattened KCS matrices ``psi [..., B*B]``."""
        act = lambda v: leaky_relu(v, negative_slope=self.negative_slope)  # noqa: E731
        h1 = act(nn.Dense(self.width, name="dense0")(psi))
        h2 = act(nn.Dense(self.width, name="dense1")(h1))
        h3 = nn.Dense(self.width, name="dense2")(h2) + h1
        h4 = act(nn.Dense(self.bottleneck, name="dense3")(h3))
        return nn.Dense(1, name="output")(h4)


class PartKCSDiscriminator(nn.Module):
    """Part-aware KCS 3D discriminator: per-part logits ``[..., P]``.

    Input either precomputed KCS matrices ``[..., P, B, B]`` (``kcs_fn=None``) or anything
    ``kcs_fn`` maps to them (e.g. a pose ``[..., J, 3]`` with
    ``kcs_fn = functools.partial(jpose.kinematics.part_kcs_matrices, layout=...)``).

    Attributes:
      num_parts: P (5 in PoseAug: torso, two legs, two arms).
      kcs_fn: optional ``f(x) -> [..., P, B, B]`` applied to the input first.
      width, bottleneck, negative_slope: KCS path sizes (256, 100, 0.01).
    """

    num_parts: int = 5
    kcs_fn: Callable[[jax.Array], jax.Array] | None = None
    width: int = 256
    bottleneck: int = 100
    negative_slope: float = 0.01
    axis_name: str | None = None  # no batch norm; kept for the Model.apply contract

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        """Score poses / KCS matrices -> logits ``[..., P]``."""
        del train
        psi = self.kcs_fn(x) if self.kcs_fn is not None else x
        if psi.ndim < 3 or psi.shape[-3] != self.num_parts or psi.shape[-1] != psi.shape[-2]:
            raise ValueError(
                f"expected KCS matrices [..., {self.num_parts}, B, B], got shape {psi.shape}"
            )
        flat = psi.reshape(*psi.shape[:-2], -1)
        paths = [
            KCSPath(self.width, self.bottleneck, self.negative_slope, name=f"part{p}")
            for p in range(self.num_parts)
        ]
        return jnp.concatenate([path(flat[..., p, :]) for p, path in enumerate(paths)], axis=-1)


def poseaug_generator(
    layout_or_bones: object,
    *,
    num_bone_classes: int | None = None,
    root: int | None = None,
    noise_dim: int = 48,
    width: int = 256,
    num_stages: int = 2,
) -> Model:
    """PoseAug generator as a :class:`Model`.

    Args:
      layout_or_bones: a ``jpose.skeleton.Layout`` (uses ``.bones``, ``.num_bone_classes``,
        ``.root``) or a sequence of ``(parent, child)`` pairs.
      num_bone_classes: K (required when a bone list is given).
      root: root joint (default ``layout.root`` or 0).
      noise_dim, width, num_stages: see :class:`PoseAugGenerator`.

    Returns:
      Model mapping ``[..., J, 3]`` to the raw parameter dict; needs ``key`` in ``apply``.
    """
    bones = getattr(layout_or_bones, "bones", layout_or_bones)
    bones = tuple((int(p), int(c)) for p, c in bones)  # type: ignore[union-attr]
    if num_bone_classes is None:
        num_bone_classes = getattr(layout_or_bones, "num_bone_classes", None)
        if num_bone_classes is None:
            raise ValueError("num_bone_classes is required when passing a bone list")
    if root is None:
        root = int(getattr(layout_or_bones, "root", 0))
    module = PoseAugGenerator(
        bones=bones,
        num_bone_classes=int(num_bone_classes),
        root=root,
        noise_dim=noise_dim,
        width=width,
        num_stages=num_stages,
    )
    return Model(module, name="poseaug_generator")


def poseaug_discriminator_2d(*, width: int = 100) -> Model:
    """PoseAug 2D discriminator as a :class:`Model` (``[..., J, 2] -> [..., 1]``)."""
    return Model(PoseAugDiscriminator2D(width=width), name="poseaug_d2d")


def part_kcs_discriminator(
    *,
    num_parts: int = 5,
    kcs_fn: Callable[[jax.Array], jax.Array] | None = None,
    width: int = 256,
    bottleneck: int = 100,
) -> Model:
    """Part-aware KCS 3D discriminator as a :class:`Model` (see :class:`PartKCSDiscriminator`)."""
    return Model(
        PartKCSDiscriminator(
            num_parts=num_parts, kcs_fn=kcs_fn, width=width, bottleneck=bottleneck
        ),
        name="part_kcs_d3d",
    )


def poseaug_players(
    layout: str | skeleton.Layout,
    *,
    noise_dim: int = 48,
    generator_width: int = 256,
    num_stages: int = 2,
    d2d_width: int = 100,
    d3d_width: int = 256,
    d3d_bottleneck: int = 100,
) -> dict[str, Model]:
    """PoseAug's three networks for ``layout`` (Gong et al. CVPR 2021; CameraPose Sec. 3.3):
    ``generator`` (:func:`poseaug_generator`), ``d2d`` (:func:`poseaug_discriminator_2d`) and
    ``d3d`` (:func:`part_kcs_discriminator` on the part-aware KCS of unit bones of a 3D pose,
    :func:`jpose.kinematics.part_kcs_matrices`); defaults are PoseAug's sizes."""
    lay = skeleton.get_layout(layout)
    kcs = functools.partial(kinematics.part_kcs_matrices, layout=lay, unit_bones=True)
    generator = poseaug_generator(
        lay, noise_dim=noise_dim, width=generator_width, num_stages=num_stages
    )
    d3d = part_kcs_discriminator(
        num_parts=len(skeleton.KCS_PARTS), kcs_fn=kcs, width=d3d_width, bottleneck=d3d_bottleneck
    )
    return {"generator": generator, "d2d": poseaug_discriminator_2d(width=d2d_width), "d3d": d3d}
