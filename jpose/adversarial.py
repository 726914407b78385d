"""Adversarial losses and a functional fake-sample history buffer.

Conventions (every function in this module):

* Discriminator outputs are raw scores ("logits", no sigmoid) of shape ``[...]`` or, for
  part-aware discriminators (PoseAug's five KCS parts, used by CameraPose), ``[..., P]`` with the
  parts on the last axis (pass ``part_axis=-1`` to the LS-GAN losses to average them).
* Losses are returned **per example** (the leading ``[...]`` axes); the caller averages over the
  batch. Real and fake outputs passed to one discriminator loss must broadcast against each other
  (pair them sample by sample); for real and fake batches of different sizes, evaluate the real
  and fake halves with the elementwise terms (:func:`lsgan_loss`, :func:`gan_real_loss`,
  :func:`gan_fake_loss`) and average each half separately, which is exactly the expectation
  ``E_real[.] + E_fake[.]`` of the papers.
* Every loss is finite, with finite gradients, for logits as large as ``+-1e4`` in float32.
* Units: scores and losses are unitless; the history buffer stores whatever pytree it is given
  (jpose stores poses in metres and 2D in normalised image units).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from jax import Array
from jax.typing import ArrayLike

__all__ = [
    "lsgan_loss",
    "lsgan_discriminator_loss",
    "lsgan_generator_loss",
    "gan_real_loss",
    "gan_fake_loss",
    "gan_discriminator_loss",
    "gan_generator_loss",
    "gan_generator_loss_non_saturating",
    "FakeHistory",
    "history_init",
    "history_push",
    "history_sample",
    "history_query",
]


# ------------------------------------------------------------------------------------- LS-GAN


def lsgan_loss(outputs: ArrayLike, *, target: float, part_axis: int | None = None) -> Array:
    """Least-squares GAN term ``1/2 (D(x) - target)^2``, averaged over discriminator parts.

    The building block of Mao et al. (ICCV 2017) LS-GAN and of CameraPose (Yang et al. WACV
    2023, eqs. 12-15) and PoseAug (Gong et al. CVPR 2021), whose ``nn.MSELoss`` averages over the
    part logits of its part-aware KCS discriminator.

    Args:
      outputs: ``[..., P]`` discriminator outputs (``[...]`` with ``part_axis=None``).
      target: label the outputs are pulled towards (1 = real, 0 = fake by convention).
      part_axis: axis of the discriminator parts to average (``-1`` for ``[..., P]`` part
        logits); ``None`` (default) keeps every output, which never averages over a batch axis by
        accident and gives the same batch mean.

    Returns:
      ``[...]`` per-example loss (unitless), without ``part_axis`` when one is given.
    """
    loss = 0.5 * jnp.square(jnp.asarray(outputs) - target)
    return loss if part_axis is None else jnp.mean(loss, axis=part_axis)


def lsgan_discriminator_loss(
    real_outputs: ArrayLike,
    fake_outputs: ArrayLike,
    *,
    real_target: float = 1.0,
    fake_target: float = 0.0,
    part_axis: int | None = None,
) -> Array:
    """LS-GAN discriminator loss ``1/2 (D(real) - a)^2 + 1/2 (D(fake) - b)^2`` per example.

    CameraPose (Yang et al. WACV 2023) eqs. 12-13 (2D discriminator) and 14-15 (3D
    discriminator); both are printed with target 1 for the fake term as well, which cannot train a
    discriminator. The targets are therefore arguments, defaulting to the LS-GAN / PoseAug values
    ``a = 1`` (real) and ``b = 0`` (fake). The loss is minimal (zero) at ``D(real) = a`` and
    ``D(fake) = b``.

    Notes:
      Reading of CameraPose eqs. 13 and 15: the printed ``(D(KCS(x*)) - 1)^2`` is taken as a typo
      for ``(D(KCS(x*)) - 0)^2`` (Mao et al.; PoseAug code, which CameraPose builds on).

    Args:
      real_outputs: ``[..., P]`` discriminator outputs on real samples.
      fake_outputs: ``[..., P]`` outputs on generated samples (broadcastable with real).
      real_target: LS-GAN target ``a`` for real samples.
      fake_target: LS-GAN target ``b`` for fake samples.
      part_axis: parts axis to average (``-1`` for PoseAug's five KCS part logits), ``None``
        (default) for elementwise losses.

    Returns:
      ``[...]`` per-example loss; average over the batch for the expectation.
    """
    return lsgan_loss(real_outputs, target=real_target, part_axis=part_axis) + lsgan_loss(
        fake_outputs, target=fake_target, part_axis=part_axis
    )


def lsgan_generator_loss(
    fake_outputs: ArrayLike, *, target: float = 1.0, part_axis: int | None = None
) -> Array:
    """LS-GAN generator loss ``1/2 (D(G(x)) - c)^2`` per example (``c = 1`` by default).

    Mao et al. ICCV 2017, eq. 2 (generator term); used by CameraPose (Yang et al. WACV 2023,
    sec. 3.3) and PoseAug. PoseAug's generator loss adds ``1/2 (D(real) - 0)^2``, which does not
    depend on the generator and is omitted here.

    Args:
      fake_outputs: ``[..., P]`` discriminator outputs on generated samples.
      target: value the generator wants the discriminator to output (``c``).
      part_axis: parts axis to average, ``None`` (default) for elementwise losses.

    Returns:
      ``[...]`` per-example loss.
    """
    return lsgan_loss(fake_outputs, target=target, part_axis=part_axis)


# ------------------------------------------------------------------- Standard GAN from logits


def gan_real_loss(logits: ArrayLike) -> Array:
    """``-log D(r) = -log sigmoid(logit) = softplus(-logit)`` elementwise (stable).

    Args:
      logits: ``[...]`` discriminator logits on real samples.

    Returns:
      ``[...]`` non-negative loss, finite for ``|logit|`` up to float max.
    """
    return -jax.nn.log_sigmoid(jnp.asarray(logits))


def gan_fake_loss(logits: ArrayLike) -> Array:
    """``-log(1 - D(p)) = -log sigmoid(-logit) = softplus(logit)`` elementwise (stable).

    Args:
      logits: ``[...]`` discriminator logits on generated samples.

    Returns:
      ``[...]`` non-negative loss.
    """
    return -jax.nn.log_sigmoid(-jnp.asarray(logits))


def gan_discriminator_loss(real_logits: ArrayLike, fake_logits: ArrayLike) -> Array:
    """Standard GAN discriminator loss ``-log D(r) - log(1 - D(p))`` per example.

    Drover et al. (ECCV-W 2018) eq. 4: ``min_G max_D E log D(r) + E log(1 - D(p))``; the
    discriminator maximises V, i.e. minimises this loss (the binary cross-entropy with label 1 for
    real and 0 for fake), computed from logits with ``log_sigmoid`` so that logits of ``+-1e4``
    give finite values and gradients. Drover's discriminator ends in a 2-class softmax; pass the
    logit difference ``l_real - l_fake`` (the softmax's real probability is its sigmoid).

    Args:
      real_logits: ``[...]`` logits on real 2D poses ``r``.
      fake_logits: ``[...]`` logits on randomly projected generated poses ``p`` (broadcastable).

    Returns:
      ``[...]`` per-example loss.
    """
    return gan_real_loss(real_logits) + gan_fake_loss(fake_logits)


def gan_generator_loss(fake_logits: ArrayLike) -> Array:
    """Saturating (literal minimax) generator loss ``log(1 - D(p))`` of Drover et al. eq. 4.

    Equal to ``-softplus(logit)``; it is bounded above by 0 and its gradient vanishes when the
    discriminator confidently rejects fakes (the saturation Goodfellow et al. warn about). Prefer
    :func:`gan_generator_loss_non_saturating` for training.

    Args:
      fake_logits: ``[...]`` discriminator logits on generated samples.

    Returns:
      ``[...]`` per-example loss (non-positive), minimised by the generator.
    """
    return -gan_fake_loss(fake_logits)


def gan_generator_loss_non_saturating(fake_logits: ArrayLike) -> Array:
    """Non-saturating generator loss ``-log D(p) = softplus(-logit)`` (Goodfellow et al. 2014).

    Same fixed point as the minimax loss of Drover et al. eq. 4, strong gradients early in
    training; also what the closest public code (3dpose_gan) uses.

    Args:
      fake_logits: ``[...]`` discriminator logits on generated samples.

    Returns:
      ``[...]`` per-example non-negative loss.
    """
    return gan_real_loss(fake_logits)


# ----------------------------------------------------------------- Fake-sample history buffer


@struct.dataclass
class FakeHistory:
    """A fixed-capacity pool of generated samples (Shrivastava et al. CVPR 2017, sec. 2.3).

    Attributes:
      items: pytree of arrays, each ``[capacity, ...]``; slots ``>= size`` hold zeros.
      size: ``int32`` scalar, number of filled slots (``0 <= size <= capacity``).
    """

    items: Any
    size: Array

    @property
    def capacity(self) -> int:
        """Number of slots (static)."""
        return int(jax.tree.leaves(self.items)[0].shape[0])


def history_init(example: Any, *, capacity: int) -> FakeHistory:
    """An empty history able to hold ``capacity`` samples shaped like one ``example``.

    Args:
      example: pytree of arrays for **one** sample (e.g. ``(pose3d [J, 3], pose2d [J, 2])``);
        only shapes and dtypes are used.
      capacity: number of slots (PoseAug uses 4096).

    Returns:
      A :class:`FakeHistory` with zero-filled items and ``size = 0``.
    """
    if capacity < 1:
        raise ValueError(f"capacity must be >= 1, got {capacity}")
    items = jax.tree.map(
        lambda x: jnp.zeros((capacity, *jnp.shape(x)), jnp.result_type(x)), example
    )
    return FakeHistory(items=items, size=jnp.zeros((), jnp.int32))


def _check_compatible(history: FakeHistory, items: Any) -> int:
    """The leading batch size of ``items``, checked against the history's item shapes."""
    leaves = jax.tree.leaves(items)
    if not leaves:
        raise ValueError("items must contain at least one array")
    n = leaves[0].shape[0] if leaves[0].ndim else None
    if n is None or any(x.ndim == 0 or x.shape[0] != n for x in leaves):
        raise ValueError(
            "every array of items must have the same leading batch size, got shapes "
            f"{[x.shape for x in leaves]}"
        )
    h_def, i_def = jax.tree.structure(history.items), jax.tree.structure(items)
    if h_def != i_def:
        raise ValueError(f"items structure {i_def} differs from the history's {h_def}")
    for h, x in zip(jax.tree.leaves(history.items), jax.tree.leaves(items)):
        if h.shape[1:] != x.shape[1:]:
            raise ValueError(f"item shape {x.shape[1:]} differs from the history's {h.shape[1:]}")
    return int(n)


def _scan_items(history: FakeHistory, items: Any, key: Array, swap_probability: float | None):
    """Insert items one by one (PoseAug's ``Sample_from_Pool`` order); returns (history, out)."""
    n = _check_compatible(history, items)
    cap = history.capacity
    keys = jax.random.split(key, n)

    def step(carry, inp):
        pool, size = carry
        item, k = inp
        k_swap, k_idx = jax.random.split(k)
        not_full = size < cap
        if swap_probability is None:  # push: always store, random slot once full
            store = jnp.asarray(True)
        else:
            store = not_full | (jax.random.uniform(k_swap) < swap_probability)
        slot = jnp.where(not_full, size, jax.random.randint(k_idx, (), 0, cap))
        old = jax.tree.map(lambda p: p[slot], pool)
        # Return the old pooled sample when it is swapped out, else the incoming one.
        out = jax.tree.map(lambda o, x: jnp.where(store & ~not_full, o, x), old, item)
        pool = jax.tree.map(
            lambda p, x, o: p.at[slot].set(jnp.where(store, x, o).astype(p.dtype)), pool, item, old
        )
        return (pool, jnp.minimum(size + 1, cap)), out

    (pool, size), out = jax.lax.scan(step, (history.items, history.size), (items, keys))
    return FakeHistory(items=pool, size=size.astype(jnp.int32)), out


def history_push(history: FakeHistory, items: Any, key: Array) -> FakeHistory:
    """Add a batch of samples: empty slots fill in order, then each new sample overwrites a
    uniformly random slot.

    Args:
      history: current pool.
      items: pytree of ``[N, ...]`` arrays matching the pool's item shapes.
      key: PRNG key (used once the pool is full).

    Returns:
      The new pool (the input is not modified).
    """
    return _scan_items(history, items, key, None)[0]


def history_sample(history: FakeHistory, key: Array, *, num: int) -> Any:
    """Draw ``num`` samples uniformly, with replacement, from the filled slots.

    Args:
      history: pool (must hold at least one sample; from an empty pool the zero-filled slot 0 is
        returned).
      key: PRNG key.
      num: number of samples (static).

    Returns:
      Pytree of ``[num, ...]`` arrays.
    """
    idx = jax.random.randint(key, (num,), 0, jnp.maximum(history.size, 1))
    return jax.tree.map(lambda p: p[idx], history.items)


def history_query(
    history: FakeHistory, items: Any, key: Array, *, swap_probability: float = 0.5
) -> tuple[FakeHistory, Any]:
    """Shrivastava et al.'s image-pool query, sample by sample as in PoseAug's ``Sample_from_Pool``.

    For each incoming sample, in order: while the pool is not full it is stored and returned
    unchanged; once full, with probability ``swap_probability`` a uniformly chosen pooled sample
    is returned in its place and the incoming sample takes its slot, otherwise the incoming sample
    is returned and the pool is unchanged. The discriminator is then trained on the returned batch.

    Args:
      history: current pool.
      items: pytree of ``[N, ...]`` generated samples.
      key: PRNG key.
      swap_probability: probability of swapping once the pool is full (PoseAug: 0.5).

    Returns:
      ``(new_history, returned_items)`` with ``returned_items`` shaped like ``items``.
    """
    return _scan_items(history, items, key, float(swap_probability))
