"""The pure boundary between Flax Linen modules and the training engine.

Training code never touches Linen directly: it sees a :class:`Model` with

* ``init(key, *example_inputs) -> variables`` (a dict with ``"params"`` and, for models with batch
  norm, ``"batch_stats"``), and
* ``apply(variables, *inputs, train, key=None, axis_name=None) -> (output, new_batch_stats)``.

``train=True`` uses batch statistics in batch norm (and returns the updated running averages) and
enables dropout; ``train=False`` uses the running averages and returns the batch statistics
unchanged. ``key`` feeds the ``"dropout"`` and ``"noise"`` RNG streams (generators need ``key`` even
at evaluation, because their noise input is part of the model). ``axis_name`` names a mapped axis
(``jax.pmap(..., axis_name=...)``) over which batch norm averages its batch statistics, so that a
data-parallel step normalises with the statistics of the global batch.

Every module in ``jpose.models`` has an ``axis_name: str | None`` field and a ``train`` keyword in
``__call__``; :meth:`Model.apply` clones the module with the requested ``axis_name``.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "Model",
    "param_count",
    "leaky_relu",
    "kaiming_normal",
    "flatten_features",
    "ByteDropout",
    "ordered_pmean",
    "BatchNorm",
]

PyTree = Any

#: He (Kaiming) normal initialisation (fan-in, gain sqrt(2)), as PyTorch's ``kaiming_normal_``.
kaiming_normal = nn.initializers.variance_scaling(2.0, "fan_in", "normal")


def leaky_relu(x: jax.Array, *, negative_slope: float = 0.01) -> jax.Array:
    """LeakyReLU with PyTorch's default slope 0.01 (PoseAug's ``nn.LeakyReLU()``)."""
    return jnp.where(x >= 0, x, negative_slope * x)


class ByteDropout(nn.Module):
    """Inverted dropout drawing several Bernoulli decisions from every 32-bit random word.

    Same semantics as ``flax.linen.Dropout`` (RNG stream ``"dropout"``, ``deterministic`` merged
    from the attribute and the call, kept units scaled by ``1 / keep``), but each decision uses
    only ``k`` random bits: the fewest (1, 2, 4 or 8) that represent the keep probability
    exactly, else 8 with the keep probability quantised to a multiple of 1/256 (0.5 -> 1 bit,
    0.75 -> 2 bits, 0.9 -> 8 bits with keep 230/256). ``nn.Dropout`` draws a whole 32-bit word
    per unit; on CPU the threefry bits of a 1024-wide lifter's five dropout layers were ~8 % of a
    training step (benchmarks/FINDINGS.md). The scaling uses the (quantised) keep probability, so
    the layer is unbiased.

    Attributes:
      rate: drop probability in [0, 1].
      deterministic: if True the layer is the identity (evaluation mode).
    """

    rate: float
    deterministic: bool | None = None

    @nn.compact
    def __call__(self, x: jax.Array, deterministic: bool | None = None) -> jax.Array:
        """Apply dropout to ``x`` (any shape)."""
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"dropout rate must be in [0, 1], got {self.rate}")
        det = nn.merge_param("deterministic", self.deterministic, deterministic)
        if det or self.rate == 0.0:
            return x
        bits, keep_q = _dropout_bits(1.0 - self.rate)
        if keep_q <= 0:
            return jnp.zeros_like(x)
        per_word = 32 // bits
        n = int(np.prod(x.shape))
        words = jax.random.bits(self.make_rng("dropout"), (-(-n // per_word),), jnp.uint32)
        shifts = jnp.arange(0, 32, bits, dtype=jnp.uint32)
        draws = (words[:, None] >> shifts) & jnp.uint32((1 << bits) - 1)
        keep = draws.reshape(-1)[:n].reshape(x.shape) < jnp.uint32(keep_q)
        scale = jnp.asarray((1 << bits) / keep_q, x.dtype)
        return jnp.where(keep, x * scale, jnp.zeros_like(x))


def _dropout_bits(keep: float) -> tuple[int, int]:
    """``(k, q)``: decisions of ``k`` random bits kept when below ``q`` (``q / 2^k`` ~ keep)."""
    for bits in (1, 2, 4):
        q = keep * (1 << bits)
        if abs(q - round(q)) < 1e-9:
            return bits, int(round(q))
    return 8, int(round(keep * 256))


def flatten_features(x: jax.Array, *, num_feature_axes: int) -> jax.Array:
    """Flatten the trailing ``num_feature_axes`` axes: ``[..., J, C] -> [..., J*C]``."""
    if x.ndim < num_feature_axes:
        raise ValueError(
            f"expected an input with at least {num_feature_axes} axes, got shape {x.shape}"
        )
    lead = x.shape[: x.ndim - num_feature_axes]
    return x.reshape(*lead, -1)


def param_count(tree: PyTree) -> int:
    """Number of scalar entries in a pytree (e.g. ``variables["params"]``)."""
    return int(sum(np.prod(np.shape(x)) for x in jax.tree_util.tree_leaves(tree)))


@dataclasses.dataclass(frozen=True, eq=False)
class Model:
    """A Linen module behind a pure ``(init, apply)`` boundary.

    ``eq=False``: models compare and hash by identity, so a ``Model`` stored as a static field of a
    pytree (``PlayerState``) keeps jit caches valid as long as the same object is reused.

    Attributes:
      module: a Linen module whose ``__call__`` takes the inputs positionally and ``train`` as a
        keyword; it must have an ``axis_name`` field when ``apply(..., axis_name=...)`` is used.
      name: a human-readable name (used in logs / reprs only).
    """

    module: nn.Module
    name: str = ""

    def init(self, key: jax.Array, *example_inputs: Any) -> dict[str, PyTree]:
        """Initialise variables from example inputs (any batch size; 2 or more for batch norm).

        Args:
          key: typed PRNG key (``jax.random.key``).
          *example_inputs: arrays shaped like the real inputs.

        Returns:
          ``{"params": ..., "batch_stats": ...}`` (``batch_stats`` is ``{}`` without batch norm).
        """
        k_params, k_dropout, k_noise = jax.random.split(key, 3)
        # jit: one compilation instead of op-by-op dispatch of every initialiser
        init = jax.jit(functools.partial(self.module.init, train=False))
        variables = init(
            {"params": k_params, "dropout": k_dropout, "noise": k_noise}, *example_inputs
        )
        variables = dict(variables)
        variables.setdefault("batch_stats", {})
        return variables

    def apply(
        self,
        variables: dict[str, PyTree],
        *inputs: Any,
        train: bool,
        key: jax.Array | None = None,
        axis_name: str | None = None,
    ) -> tuple[Any, PyTree]:
        """Run the model.

        Args:
          variables: ``{"params": ..., "batch_stats": ...}``.
          *inputs: model inputs.
          train: training mode (batch statistics, dropout) or evaluation mode.
          key: typed PRNG key for dropout and noise; required when the model draws random numbers.
          axis_name: mapped axis over which batch norm averages batch statistics (or None).

        Returns:
          ``(output, batch_stats)``: the new running batch statistics in training mode, the given
          ones otherwise.
        """
        module = self.module
        if axis_name is not None:
            if not hasattr(module, "axis_name"):
                raise ValueError(f"module {type(module).__name__} has no axis_name field")
            module = module.clone(axis_name=axis_name)
        rngs = None if key is None else dict(zip(("dropout", "noise"), jax.random.split(key)))
        batch_stats = variables.get("batch_stats", {})
        full = {"params": variables["params"]}
        if batch_stats:
            full["batch_stats"] = batch_stats
        if train and batch_stats:
            out, updates = module.apply(
                full, *inputs, train=True, rngs=rngs, mutable=["batch_stats"]
            )
            return out, updates["batch_stats"]
        out = module.apply(full, *inputs, train=train, rngs=rngs)
        return out, batch_stats

    def bind_eval(self, variables: dict[str, PyTree]) -> Callable[..., Any]:
        """``f(*inputs, key=None) -> output`` in evaluation mode (convenience for inference)."""

        def f(*inputs: Any, key: jax.Array | None = None) -> Any:
            return self.apply(variables, *inputs, train=False, key=key)[0]

        return f


def ordered_pmean(tree: PyTree, axis_name: str) -> PyTree:
    """``lax.pmean`` over ``axis_name`` with the sum taken in device-index order.

    ``lax.pmean`` leaves the order of its additions to the collective's implementation: one
    process with four devices (XLA's in-process all-reduce) and two processes with two devices
    each (gloo) add the same four numbers in different orders, so the same data-parallel training
    drifts apart by float32 rounding at every step. Gathering every device's value (exact) and
    reducing the stacked ``[num_devices, ...]`` array on each device makes the result depend only
    on the values, not on the topology (issue 21). Costs ``num_devices`` times the memory of the
    reduced tree, which is small for gradients of keypoint models.

    Args:
      tree: arrays to average.
      axis_name: the mapped axis (``jax.pmap(..., axis_name=...)``).
    """
    return jax.tree.map(lambda x: jnp.mean(jax.lax.all_gather(x, axis_name), axis=0), tree)


class BatchNorm(nn.Module):
    """Batch norm over the leading axes whose cross-device statistics use :func:`ordered_pmean`.

    The same variables (``params`` ``scale`` / ``bias``, ``batch_stats`` ``mean`` / ``var``) and
    arithmetic as ``flax.linen.BatchNorm`` with its defaults (E[x^2] - E[x]^2 variance in float32,
    clipped at 0; running averages ``momentum * old + (1 - momentum) * new``), so the two are
    interchangeable in a checkpoint; modules use this one only under data parallelism
    (``axis_name`` set) and ``flax.linen.BatchNorm`` otherwise.
    """

    use_running_average: bool
    axis_name: str | None = None
    momentum: float = 0.99
    epsilon: float = 1e-5
    dtype: Any = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        feat = (x.shape[-1],)
        ra_mean = self.variable("batch_stats", "mean", lambda: jnp.zeros(feat, jnp.float32))
        ra_var = self.variable("batch_stats", "var", lambda: jnp.ones(feat, jnp.float32))
        scale = self.param("scale", nn.initializers.ones, feat, jnp.float32)
        bias = self.param("bias", nn.initializers.zeros, feat, jnp.float32)
        if self.use_running_average:
            mean, var = ra_mean.value, ra_var.value
        else:
            xf = x.astype(jnp.promote_types(x.dtype, jnp.float32))
            axes = tuple(range(x.ndim - 1))
            moments = jnp.stack([xf.mean(axes), jnp.square(xf).mean(axes)])
            if self.axis_name is not None and not self.is_initializing():  # flax: no axis at init
                moments = ordered_pmean(moments, self.axis_name)
            mean, var = moments[0], jnp.maximum(0.0, moments[1] - jnp.square(moments[0]))
            if not self.is_initializing():
                ra_mean.value = self.momentum * ra_mean.value + (1.0 - self.momentum) * mean
                ra_var.value = self.momentum * ra_var.value + (1.0 - self.momentum) * var
        dtype = self.dtype or jnp.result_type(x, jnp.float32)
        y = (x - mean) * (jax.lax.rsqrt(var + self.epsilon) * scale) + bias
        return jnp.asarray(y, dtype)


def batch_norm(*, axis_name: str | None, **kwargs: Any) -> nn.Module:
    """``flax.linen.BatchNorm`` on one device, :class:`BatchNorm` (device-order statistics) under
    data parallelism; the same variables either way."""
    return (nn.BatchNorm if axis_name is None else BatchNorm)(axis_name=axis_name, **kwargs)
