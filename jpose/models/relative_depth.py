"""Pairwise relative-depth model on keypoints (WSP, Qiu et al., Sec. 3.4.1, eq. 6).

Axes: ``B...`` arbitrary leading batch axes, ``J`` joints (Human3.6M-17), ``D`` per-joint feature
channels. Inputs per person: ``pose [..., J, 2]`` normalised image coordinates (the ``"image"``
convention, (-1, 1); *not* person-centred: the position in the image is the cue), ``confidence
[..., J]`` in [0, 1] (0 = missing joint) and ``scale [...]`` the person's box scale in the same
units (:func:`box_scale`: the larger side of the tight box of the labelled joints).

Architecture (the keypoint analogue of WSP Fig. 2, where an image backbone + heatmap pooling give
``F(P) [J, D]``)::

    person x = [pose * (conf > 0), conf]  [..., J, 3]
    F(P) = encoder(x) [..., J, D]          ResidualMLP(out_shape=(J, D)): the Martinez lifter's
                                           trunk (input layer + residual blocks) + a per-joint
                                           feature layer named "output"
    g_j(A, B) = f([F^j(A), F^j(B), log s_A, log s_B])      eq. 6 (f: FC network, 2D+2 -> 1)
    logit_j = g_j(A, B) - g_j(B, A)        (symmetric=True: swapping A and B flips the sign)

``sigmoid(logit_j)`` is the probability that A's joint j is nearer to the camera (eq. 7 label 1);
train with :func:`jpose.losses.wsp_relative_depth_loss` (eq. 9). The paper's random choice of
N < J joints per pair is a joint mask in the loss (all J logits are computed; the unselected ones
get no gradient). Encoder and the two persons share weights; the encoder runs once on the stacked
``[2, ...]`` persons so batch norm sees both.

Weight reuse: the encoder has exactly the parameter names and shapes of
``martinez_lifter(J, in_channels=3, width, num_blocks)`` except its ``output`` layer (``D``
channels instead of 3), so :func:`init_lifter_from_encoder` copies the trunk (and its batch-norm
statistics) into a lifter.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jpose.models.core import Model, kaiming_normal
from jpose.models.lifter import ResidualMLP

__all__ = [
    "PairwiseRelativeDepth",
    "pairwise_relative_depth",
    "person_input",
    "box_scale",
    "encoder_variables",
    "init_lifter_from_encoder",
]


def person_input(pose: jax.Array, confidence: jax.Array) -> jax.Array:
    """Per-person encoder / lifter input ``[..., J, 3] = [pose * (conf > 0), conf]``.

    Args:
      pose: ``[..., J, 2]`` normalised image coordinates.
      confidence: ``[..., J]``.

    Returns:
      ``[..., J, 3]`` float32.
    """
    pose, confidence = jnp.asarray(pose, jnp.float32), jnp.asarray(confidence, jnp.float32)
    if pose.shape[-1] != 2 or pose.shape[:-1] != confidence.shape:
        raise ValueError(
            f"expected pose [..., J, 2] and confidence [..., J], got {pose.shape}, "
            f"{confidence.shape}"
        )
    pose = jnp.where(confidence[..., None] > 0, pose, 0.0)
    return jnp.concatenate([pose, confidence[..., None]], axis=-1)


def box_scale(pose: jax.Array, confidence: jax.Array, *, min_scale: float = 1e-3) -> jax.Array:
    """Person box scale: the larger side of the tight box of the joints with confidence > 0.

    Args:
      pose: ``[..., J, 2]`` (normalised image units).
      confidence: ``[..., J]``.
      min_scale: lower bound (fewer than two labelled joints give ``min_scale``).

    Returns:
      ``[...]`` scale, units of ``pose``.
    """
    pose, confidence = jnp.asarray(pose), jnp.asarray(confidence)
    ok = (confidence > 0)[..., None]
    hi = jnp.max(jnp.where(ok, pose, -jnp.inf), axis=-2)
    lo = jnp.min(jnp.where(ok, pose, jnp.inf), axis=-2)
    ext = jnp.where(jnp.isfinite(hi - lo), hi - lo, 0.0)
    return jnp.maximum(jnp.max(ext, axis=-1), min_scale)


class _PairHead(nn.Module):
    """Eq. 6's ``f``: per-joint FC network on ``[F^j(A), F^j(B), log s_A, log s_B]``."""

    width: int
    num_layers: int = 2

    @nn.compact
    def __call__(self, fa: jax.Array, fb: jax.Array, la: jax.Array, lb: jax.Array) -> jax.Array:
        j = fa.shape[-2]
        scales = jnp.broadcast_to(jnp.stack([la, lb], -1)[..., None, :], fa.shape[:-1] + (2,))
        h = jnp.concatenate([fa, fb, scales], axis=-1)
        for i in range(self.num_layers):
            h = nn.relu(nn.Dense(self.width, kernel_init=kaiming_normal, name=f"dense{i}")(h))
        out = nn.Dense(1, name="logit")(h)[..., 0]
        assert out.shape[-1] == j
        return out


class PairwiseRelativeDepth(nn.Module):
    """Per-person encoder (lifter trunk) + symmetric pairwise head (see module docstring).

    Attributes:
      num_joints: J.
      feature_dim: D, per-joint feature channels of the encoder output.
      width, num_blocks, dropout, use_batch_norm: encoder trunk (:class:`ResidualMLP`).
      head_width, head_layers: pairwise head.
      symmetric: ``logit = g(A, B) - g(B, A)`` (exact sign flip under swapping A and B);
        False uses ``g(A, B)`` only (then only the label flip can be learned).
      axis_name: mapped axis for batch norm.
    """

    num_joints: int = 17
    feature_dim: int = 16
    width: int = 512
    num_blocks: int = 2
    dropout: float = 0.25
    use_batch_norm: bool = True
    head_width: int = 64
    head_layers: int = 2
    symmetric: bool = True
    axis_name: str | None = None

    def setup(self) -> None:
        self.encoder = ResidualMLP(
            out_shape=(self.num_joints, self.feature_dim),
            in_shape=(self.num_joints, 3),
            width=self.width,
            num_blocks=self.num_blocks,
            dropout=self.dropout,
            use_batch_norm=self.use_batch_norm,
            axis_name=self.axis_name,
        )
        self.pair_head = _PairHead(width=self.head_width, num_layers=self.head_layers)

    def encode(self, pose: jax.Array, confidence: jax.Array, *, train: bool) -> jax.Array:
        """``F(P) [..., J, D]`` of persons ``pose [..., J, 2]``, ``confidence [..., J]``."""
        return self.encoder(person_input(pose, confidence), train=train)

    def __call__(
        self,
        pose_a: jax.Array,
        conf_a: jax.Array,
        scale_a: jax.Array,
        pose_b: jax.Array,
        conf_b: jax.Array,
        scale_b: jax.Array,
        *,
        train: bool,
    ) -> jax.Array:
        """Logits ``[..., J]`` of "A's joint j is nearer than B's" (eq. 7 label 1).

        Args:
          pose_a, pose_b: ``[..., J, 2]`` normalised image coordinates.
          conf_a, conf_b: ``[..., J]`` confidences.
          scale_a, scale_b: ``[...]`` box scales (:func:`box_scale`).
          train: batch statistics and dropout.
        """
        j = self.num_joints
        for name, x, shape in (("pose_a", pose_a, (j, 2)), ("pose_b", pose_b, (j, 2))):
            if tuple(x.shape[-2:]) != shape:
                raise ValueError(f"{name}: expected [..., {j}, 2], got {x.shape}")
        pose = jnp.stack([jnp.asarray(pose_a), jnp.asarray(pose_b)])
        conf = jnp.stack([jnp.asarray(conf_a), jnp.asarray(conf_b)])
        f = self.encode(pose, conf, train=train)  # [2, ..., J, D]
        ls = jnp.log(jnp.maximum(jnp.stack([jnp.asarray(scale_a), jnp.asarray(scale_b)]), 1e-3))
        g_ab = self.pair_head(f[0], f[1], ls[0], ls[1])
        if not self.symmetric:
            return g_ab
        return g_ab - self.pair_head(f[1], f[0], ls[1], ls[0])


def pairwise_relative_depth(
    num_joints: int = 17,
    *,
    feature_dim: int = 16,
    width: int = 512,
    num_blocks: int = 2,
    dropout: float = 0.25,
    use_batch_norm: bool = True,
    head_width: int = 64,
    head_layers: int = 2,
    symmetric: bool = True,
) -> Model:
    """The pairwise relative-depth :class:`Model`; ``apply(v, pose_a, conf_a, scale_a, pose_b,
    conf_b, scale_b, train=...) -> logits [..., J]`` (see :class:`PairwiseRelativeDepth`)."""
    return Model(
        PairwiseRelativeDepth(
            num_joints=num_joints,
            feature_dim=feature_dim,
            width=width,
            num_blocks=num_blocks,
            dropout=dropout,
            use_batch_norm=use_batch_norm,
            head_width=head_width,
            head_layers=head_layers,
            symmetric=symmetric,
        ),
        name="wsp_pairwise_relative_depth",
    )


def encoder_variables(variables: dict[str, Any]) -> dict[str, Any]:
    """``{"params", "batch_stats"}`` of the encoder sub-network of a pairwise model."""
    return {
        "params": variables["params"]["encoder"],
        "batch_stats": dict(variables.get("batch_stats", {})).get("encoder", {}),
    }


def init_lifter_from_encoder(
    lifter_variables: dict[str, Any],
    rd_variables: dict[str, Any],
    *,
    skip: tuple[str, ...] = ("output",),
) -> dict[str, Any]:
    """Copy the pre-trained encoder trunk into lifter variables (WSP Sec. 3.5: fine-tuning).

    Every top-level parameter / batch-statistics collection of the lifter (a
    :class:`ResidualMLP`, e.g. ``martinez_lifter(J, in_channels=3)``) except ``skip`` is replaced
    by the encoder's entry of the same name; shapes must match.

    Args:
      lifter_variables: ``{"params", "batch_stats"}`` of a freshly initialised lifter.
      rd_variables: variables of a :class:`PairwiseRelativeDepth` model.
      skip: top-level names kept from the lifter (its output layer).

    Returns:
      New lifter variables (``{"params", "batch_stats"}``).

    Raises:
      ValueError: a layer missing in the encoder or of a different shape.
    """
    enc = encoder_variables(rd_variables)
    out = {}
    for coll in ("params", "batch_stats"):
        src, dst = enc.get(coll, {}), dict(lifter_variables.get(coll, {}))
        for name in list(dst):
            if name in skip:
                continue
            if name not in src:
                raise ValueError(f"encoder has no {coll} {name!r}; has {sorted(src)}")
            a = jax.tree_util.tree_map(jnp.shape, dst[name])
            b = jax.tree_util.tree_map(jnp.shape, src[name])
            if a != b:
                raise ValueError(f"{coll} {name!r}: lifter shapes {a} != encoder shapes {b}")
            dst[name] = src[name]
        out[coll] = dst
    return out
