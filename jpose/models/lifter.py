"""Residual fully connected networks: the Martinez et al. lifter and its relatives.

Axes: ``B...`` arbitrary leading batch axes, ``J`` joints, ``C`` per-joint channels. Inputs are
flattened over their trailing ``num_input_axes`` axes (``[..., J, C] -> [..., J*C]``), outputs are
reshaped to ``out_shape``. Batch norm reduces over all leading axes.

Architecture (Martinez et al., "A simple yet effective baseline for 3d human pose estimation",
ICCV 2017, Fig. 1)::

    x -> Dense(width) -> [BN] -> ReLU -> Dropout
      -> num_blocks x ( h + Dropout(ReLU([BN](Dense(Dropout(ReLU([BN](Dense(h)))))))) )
      -> Dense(prod(out_shape)) -> reshape

Used as the Martinez lifter (2 blocks, width 1024, dropout 0.5), Li et al.'s lifting and root
branches (AAAI 2020: 4 blocks, separate weights), Drover et al.'s generator and discriminator
(ECCV-W 2018 Fig. 3: residual blocks of 1024-wide dense + batch norm + ReLU, no dropout) and the
CameraPose refinement network / camera branch (WACV 2023 Sec. 3.1-3.2: hidden 512).

Martinez's max-norm weight constraint is off by default (as in the common PyTorch ports);
:func:`max_norm_constraint` implements it for use as a post-update projection
(``PlayerState.constraint``).

Standardisation (Martinez et al. Sec. 3.2, "we apply standard normalization to the 2d inputs and
3d outputs by subtracting the mean and dividing by the standard deviation"): ``input_stats`` and
``output_stats`` (from :func:`coordinate_stats` on the training set) make the network read
z-scored inputs and predict z-scored outputs, while its interface stays in the caller's units
(``[..., J, 2]`` normalised 2D in, metres out). Without them a freshly initialised network
predicts poses metres away from the data and spends hundreds of steps shrinking its output layer
(jpose issue 17: P1 165 mm vs 63 mm after 500 steps on CMU).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jpose.models.core import ByteDropout, Model, batch_norm, flatten_features, kaiming_normal

__all__ = [
    "ResidualMLP",
    "coordinate_stats",
    "lifter_stats",
    "martinez_lifter",
    "li_lifter",
    "li_root_branch",
    "drover_generator",
    "drover_discriminator",
    "max_norm_constraint",
]


class ResidualMLP(nn.Module):
    """Residual fully connected network (Martinez et al. 2017).

    Attributes:
      out_shape: trailing output shape, e.g. ``(17, 3)``.
      width: hidden width (1024 in Martinez et al.).
      num_blocks: number of residual blocks (2 in Martinez et al.; 4 in Li et al. and Drover's G).
      dropout: dropout rate after every ReLU (0 disables it).
      use_batch_norm: batch norm after every hidden dense layer.
      num_input_axes: how many trailing input axes are features (2 for ``[..., J, C]``).
      bn_momentum: running-average decay (0.9 = PyTorch ``momentum=0.1``).
      zero_init_output: initialise the output layer to zero (residual predictors start at 0).
      in_shape: optional expected trailing input shape (checked; ValueError otherwise).
      axis_name: mapped axis over which batch norm averages batch statistics.
      input_stats: ``(mean, std)`` of the flattened input features (tuples of floats, from
        :func:`coordinate_stats`); inputs are z-scored with them. ``None``: used as given.
      output_stats: ``(mean, std)`` of the flattened outputs; the last dense layer predicts
        z-scores and the module returns ``z * std + mean``. ``None``: raw output.
      dtype: compute dtype of the hidden layers (e.g. ``jnp.bfloat16`` for mixed precision);
        parameters stay float32, batch-norm statistics are reduced in float32 and the output
        layer runs in float32. ``None``: float32.
      output_scale: a fixed multiplier of the output (a readout multiplier; no parameters).
    """

    out_shape: tuple[int, ...]
    in_shape: tuple[int, ...] | None = None
    width: int = 1024
    num_blocks: int = 2
    dropout: float = 0.5
    use_batch_norm: bool = True
    num_input_axes: int = 2
    bn_momentum: float = 0.9
    zero_init_output: bool = False
    axis_name: str | None = None
    input_stats: tuple[tuple[float, ...], tuple[float, ...]] | None = None
    output_stats: tuple[tuple[float, ...], tuple[float, ...]] | None = None
    dtype: Any = None
    output_scale: float = 1.0

    def _dense_bn_relu(self, h: jax.Array, *, train: bool, name: str) -> jax.Array:
        # A bias right before batch norm is exactly cancelled by the normalisation (its gradient
        # is zero up to rounding, which Adam would amplify into a random walk), so it is omitted.
        h = nn.Dense(
            self.width,
            use_bias=not self.use_batch_norm,
            kernel_init=kaiming_normal,
            dtype=self.dtype,
            name=f"{name}_dense",
        )(h)
        if self.use_batch_norm:
            h = batch_norm(
                use_running_average=not train,
                momentum=self.bn_momentum,
                axis_name=self.axis_name,
                dtype=self.dtype,
                name=f"{name}_bn",
            )(h)
        h = nn.relu(h)
        if self.dropout > 0:
            h = ByteDropout(self.dropout, deterministic=not train)(h)
        return h

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        """Map ``x [..., *in]`` to ``[..., *out_shape]``."""
        want = self.in_shape
        if want is not None and tuple(x.shape[x.ndim - len(want) :]) != tuple(want):
            raise ValueError(
                f"expected input [..., {', '.join(map(str, want))}], got shape {x.shape}"
            )
        h = flatten_features(x, num_feature_axes=self.num_input_axes)
        lead = h.shape[:-1]
        if self.input_stats is not None:
            mean, std = _stats_arrays(self.input_stats, h.shape[-1], "input_stats", h.dtype)
            h = (h - mean) / std
        h = self._dense_bn_relu(h, train=train, name="input")
        for i in range(self.num_blocks):
            r = self._dense_bn_relu(h, train=train, name=f"block{i}_a")
            r = self._dense_bn_relu(r, train=train, name=f"block{i}_b")
            h = h + r
        init = nn.initializers.zeros if self.zero_init_output else kaiming_normal
        h = h.astype(jnp.promote_types(h.dtype, jnp.float32))  # output layer in float32
        out = nn.Dense(math.prod(self.out_shape), kernel_init=init, name="output")(h)
        if self.output_stats is not None:
            mean, std = _stats_arrays(self.output_stats, out.shape[-1], "output_stats", out.dtype)
            out = out * std + mean
        if self.output_scale != 1.0:
            out = out * self.output_scale
        return out.reshape(*lead, *self.out_shape)


def _stats_arrays(
    stats: tuple[tuple[float, ...], tuple[float, ...]], size: int, name: str, dtype: Any
) -> tuple[jax.Array, jax.Array]:
    mean, std = (jnp.asarray(v, dtype) for v in stats)
    if mean.shape != (size,) or std.shape != (size,):
        raise ValueError(
            f"{name}: expected mean and std of {size} flattened features, got shapes "
            f"{mean.shape} and {std.shape}"
        )
    return mean, std


def lifter_stats(pose2d: Any, pose3d: Any) -> dict[str, tuple[tuple[float, ...], ...]]:
    """Martinez's standardisation statistics of a training split (Sec. 3.2).

    Args:
      pose2d: ``[N, J, 2]`` training inputs (normalised 2D).
      pose3d: ``[N, J, 3]`` root-relative training targets (metres).

    Returns:
      ``{"input_stats", "output_stats"}``: :func:`coordinate_stats` of each, the keyword
      arguments of :func:`martinez_lifter` (JSON-serialisable for ``model.json``).
    """
    return {"input_stats": coordinate_stats(pose2d), "output_stats": coordinate_stats(pose3d)}


def coordinate_stats(
    x: Any, *, num_feature_axes: int = 2, min_std: float = 1e-6
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-feature mean and standard deviation of a training set (Martinez et al. Sec. 3.2).

    Args:
      x: ``[N, *F]`` training inputs or targets (e.g. ``[N, J, 2]`` 2D or ``[N, J, 3]`` 3D).
      num_feature_axes: trailing axes flattened into features.
      min_std: a feature whose spread is below this (the root joint of root-relative targets,
        identically 0) gets std 1, so it is predicted as is instead of divided by ~0.

    Returns:
      ``(mean, std)`` as tuples of Python floats (hashable: usable as module attributes and
      JSON-serialisable for ``model.json``).

    Raises:
      ValueError: for an empty or non-finite ``x``.
    """
    a = np.asarray(x, np.float64)
    if a.ndim <= num_feature_axes or a.shape[0] == 0:
        raise ValueError(f"coordinate_stats: need [N, ...] with N > 0, got shape {a.shape}")
    a = a.reshape(-1, math.prod(a.shape[a.ndim - num_feature_axes :]))
    if not np.all(np.isfinite(a)):
        raise ValueError("coordinate_stats: the training data holds NaN or inf values")
    mean, std = a.mean(0), a.std(0)
    std = np.where(std > min_std, std, 1.0)
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)


def martinez_lifter(
    num_joints_in: int,
    num_joints_out: int | None = None,
    *,
    in_channels: int = 2,
    out_channels: int = 3,
    width: int = 1024,
    num_blocks: int = 2,
    dropout: float = 0.5,
    use_batch_norm: bool = True,
    zero_init_output: bool = False,
    input_stats: tuple[tuple[float, ...], tuple[float, ...]] | None = None,
    output_stats: tuple[tuple[float, ...], tuple[float, ...]] | None = None,
    dtype: Any = None,
) -> Model:
    """Martinez et al. (ICCV 2017) lifter: ``[..., J, 2] -> [..., J_out, 3]``.

    Args:
      num_joints_in: input joints J.
      num_joints_out: output joints (default J).
      in_channels: per-joint input channels (2 for 2D keypoints, 3 with confidence).
      out_channels: per-joint output channels.
      width, num_blocks, dropout, use_batch_norm, zero_init_output: see :class:`ResidualMLP`
        (``zero_init_output`` starts the prediction at 0, i.e. the mean pose of root-relative
        targets; not in the paper, it shortens the first few hundred steps of short runs).
      dtype: compute dtype of the hidden layers (``jnp.bfloat16``: mixed precision; parameters
        and optimiser stay float32); ``None``: float32.

    Returns:
      A :class:`Model`. Parameter count with batch norm (L = num_blocks, w = width; dense layers
      feeding batch norm have no bias, batch norm has scale and offset):
      ``J_in*C_in*w + 2w + L * 2 (w^2 + 2w) + (w + 1) J_out*C_out``
      (4,291,635 for 17 joints in and out, 2 blocks, width 1024; PyTorch ports that keep the
      redundant pre-BN biases have 5w = 5,120 more).
    """
    num_joints_out = num_joints_in if num_joints_out is None else num_joints_out
    module = ResidualMLP(
        out_shape=(num_joints_out, out_channels),
        in_shape=(num_joints_in, in_channels),
        width=width,
        num_blocks=num_blocks,
        dropout=dropout,
        use_batch_norm=use_batch_norm,
        zero_init_output=zero_init_output,
        input_stats=input_stats,
        output_stats=output_stats,
        dtype=dtype,
    )
    return Model(module, name="martinez_lifter")


def li_lifter(
    num_joints: int,
    *,
    width: int = 1024,
    num_blocks: int = 4,
    dropout: float = 0.5,
    zero_init_output: bool = False,
    output_scale: float = 1.0,
) -> Model:
    """Li et al. (AAAI 2020) lifting branch: Martinez-style, 4 residual blocks.

    Maps ``[..., J, 2]`` to ``[..., J, 3]``. ``zero_init_output``, ``output_scale``: see
    :class:`ResidualMLP`.
    """
    return Model(
        ResidualMLP(
            out_shape=(num_joints, 3),
            width=width,
            num_blocks=num_blocks,
            dropout=dropout,
            zero_init_output=zero_init_output,
            output_scale=output_scale,
        ),
        name="li_lifter",
    )


def li_root_branch(
    *,
    width: int = 1024,
    num_blocks: int = 4,
    dropout: float = 0.5,
    zero_init_output: bool = False,
    output_scale: float = 1.0,
) -> Model:
    """Li et al. (AAAI 2020) root branch: same architecture, separate weights.

    Maps ``[..., J, 2]`` to the root position ``[..., 3]``.

    The predicted root r is added to the root-relative lifting output (Li et al. Sec. 3.1).
    """
    return Model(
        ResidualMLP(
            out_shape=(3,),
            width=width,
            num_blocks=num_blocks,
            dropout=dropout,
            zero_init_output=zero_init_output,
            output_scale=output_scale,
        ),
        name="li_root_branch",
    )


def drover_generator(
    num_joints: int, *, width: int = 1024, num_blocks: int = 4, zero_init_output: bool = False
) -> Model:
    """Drover et al. (ECCV-W 2018 Sec. 3.3) generator: ``[..., J, 2] -> [..., J]`` depth offsets.

    Dense(1024), then 4 residual blocks of two (1024-wide dense, batch norm, ReLU), then a dense
    layer to one depth offset per joint (the depth is formed from the offsets by ``jpose.losses``).
    """
    return Model(
        ResidualMLP(
            out_shape=(num_joints,),
            width=width,
            num_blocks=num_blocks,
            dropout=0.0,
            zero_init_output=zero_init_output,
        ),
        name="drover_generator",
    )


def drover_discriminator(*, width: int = 1024, num_blocks: int = 3) -> Model:
    """Drover et al. (ECCV-W 2018 Sec. 3.3) discriminator: ``[..., J, 2] -> [..., 2]`` class logits.

    Dense(1024), 3 residual blocks, then 2-class logits (softmax real / fake; apply the softmax or
    a log-softmax cross-entropy in the loss).
    """
    return Model(
        ResidualMLP(out_shape=(2,), width=width, num_blocks=num_blocks, dropout=0.0),
        name="drover_discriminator",
    )


def max_norm_constraint(
    params: Any, *, max_norm: float = 1.0, names: Sequence[str] = ("kernel",)
) -> Any:
    """Project every dense kernel's columns onto the ball of radius ``max_norm`` (Martinez et al.).

    Args:
      params: parameter pytree.
      max_norm: maximum L2 norm of each output unit's incoming weight vector.
      names: leaf names to constrain.

    Returns:
      Parameters with ``kernel[:, k] *= min(1, max_norm / ||kernel[:, k]||)``.
    """

    def project(path: tuple[Any, ...], x: jax.Array) -> jax.Array:
        last = path[-1]
        key = getattr(last, "key", getattr(last, "name", None))
        if key not in names or x.ndim < 2:
            return x
        norm = jnp.sqrt(jnp.sum(jnp.square(x), axis=tuple(range(x.ndim - 1)), keepdims=True))
        return x * jnp.minimum(1.0, max_norm / jnp.maximum(norm, 1e-12))

    return jax.tree_util.tree_map_with_path(project, params)
