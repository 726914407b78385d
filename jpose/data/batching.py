"""Batches drawn on device from device-resident datasets, and a host-side iterator.

All jpose datasets fit in device memory (Human3.6M at 50 fps x 4 cameras: 1.56M examples x
~200 floats ~ 1.2 GB; usually subsampled). They are put on device once
(:func:`device_put_dataset`) and every batch is gathered **inside the jitted step** from
``jax.random`` indices (:class:`BatchSampler`), so no host work or transfer happens per step.

Determinism and resume: the indices of step ``s`` are a pure function of ``(key, s)``:

* ``mode="random"``: ``randint(fold_in(k, s), B)`` -- i.i.d. with replacement;
* ``mode="epoch"``: epoch ``e = s // steps_per_epoch`` and a keyed bijection ``perm_e`` of
  ``[0, N)`` (:func:`keyed_permutation`, keyed by ``fold_in(k, e)``); step ``s`` takes
  ``perm_e(i)`` for ``i`` in ``[(s mod steps_per_epoch) B, ... + B)``: every example exactly once
  per epoch (the last ``N mod B`` positions of each epoch are skipped), at O(B) per step.

with ``k = fold_in(key, SAMPLER_SALT)`` so the sampler's randomness is independent of the step's
own ``fold_in(key, step)``. Restarting at step ``s`` therefore replays exactly the batches of an
uninterrupted run, with no sampler state to checkpoint.

Data parallelism (``pmap`` over a named axis): give the sampler ``axis_name``; device ``d`` (the
*global* index over all processes) computes only its contiguous slice ``[d * B/D, (d+1) * B/D)`` of
the step's global indices, so the concatenation of the device batches equals the single-device
batch of the same step, and in a multi-process run each process feeds its own shard. Put the data
on the devices with ``device_put_dataset(..., replicate=True)`` (leading device axis).

The sampler matches ``jpose.training.steps.make_multi_step``'s ``sampler(data, step, key)``.

For data that does not fit on device, :class:`HostBatchIterator` yields numpy batches (optionally
with a leading device axis) with the same resume-by-step property (numpy generators seeded with
``(seed, epoch)`` / ``(seed, step)``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "SAMPLER_SALT",
    "BatchSampler",
    "device_put_dataset",
    "gather",
    "HostBatchIterator",
    "keyed_permutation",
]

SAMPLER_SALT = 0x5A3D
"""Constant folded into the key before sampling (decorrelates batches from the step's noise)."""

_MODES = ("random", "epoch")
_FEISTEL_ROUNDS = 4


def _mix32(x: jax.Array) -> jax.Array:
    """A 32-bit integer hash (the finaliser of MurmurHash3), on uint32."""
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x85EBCA6B)
    x = x ^ (x >> 13)
    x = x * jnp.uint32(0xC2B2AE35)
    return x ^ (x >> 16)


def keyed_permutation(key: jax.Array, positions: jax.Array, *, num_items: int) -> jax.Array:
    """Image of ``positions`` under a pseudo-random permutation of ``[0, num_items)``.

    A balanced Feistel network (4 rounds, MurmurHash3-finaliser round function with round keys
    drawn from ``key``) is a bijection of ``[0, 2^bits)``, ``bits`` the smallest even number with
    ``2^bits >= num_items``; cycle walking (re-applying it while the value is ``>= num_items``)
    restricts it to a bijection of ``[0, num_items)`` (Black & Rogaway, CT-RSA 2002). The domain is
    below ``4 num_items``, so a position needs fewer than 4 applications on average.

    Args:
      key: typed PRNG key selecting the permutation.
      positions: integer array of positions in ``[0, num_items)``.
      num_items: size of the permuted set (at most 2^31).

    Returns:
      ``int32`` array shaped like ``positions``: distinct positions map to distinct items.
    """
    if not 1 <= num_items <= 2**31:
        raise ValueError(f"num_items must be in [1, 2^31], got {num_items}")
    bits = max(2, int(np.ceil(np.log2(max(num_items, 2)))))
    bits += bits % 2
    half = bits // 2
    mask = jnp.uint32((1 << half) - 1)
    round_keys = jax.random.bits(key, (_FEISTEL_ROUNDS,), jnp.uint32)

    def encrypt(x: jax.Array) -> jax.Array:
        left, right = x >> half, x & mask
        for r in range(_FEISTEL_ROUNDS):
            left, right = right, left ^ (_mix32(right ^ round_keys[r]) & mask)
        return (left << half) | right

    n = jnp.uint32(num_items)
    x = encrypt(jnp.asarray(positions).astype(jnp.uint32))
    x = jax.lax.while_loop(lambda v: jnp.any(v >= n), lambda v: jnp.where(v >= n, encrypt(v), v), x)
    return x.astype(jnp.int32)


def device_put_dataset(
    arrays: Mapping[str, Any],
    *,
    replicate: bool = False,
    devices: Sequence[jax.Device] | None = None,
) -> dict[str, jax.Array]:
    """Put a dict of host arrays on device once.

    Args:
      arrays: ``{name: [N, ...]}`` numeric arrays (e.g. :meth:`PoseDataset.arrays`).
      replicate: ``True`` for ``pmap``: every leaf gets a leading device axis ``[D, N, ...]`` and
        device ``d`` holds replica ``d``.
      devices: devices to use (default ``jax.local_devices()``; the first one if not replicating).

    Returns:
      ``{name: jax.Array}``.
    """
    devices = list(jax.local_devices() if devices is None else devices)
    lengths = {np.shape(v)[0] for v in arrays.values()}
    if len(lengths) > 1:
        raise ValueError(f"device_put_dataset: arrays have different lengths {sorted(lengths)}")
    if not replicate:
        return {k: jax.device_put(np.asarray(v), devices[0]) for k, v in arrays.items()}
    n = len(devices)
    sharding = jax.sharding.NamedSharding(
        jax.sharding.Mesh(np.asarray(devices), ("replica",)), jax.sharding.PartitionSpec("replica")
    )
    out = {}
    for k, v in arrays.items():
        v = np.asarray(v)
        shards = [jax.device_put(v[None], d) for d in devices]
        out[k] = jax.make_array_from_single_device_arrays((n, *v.shape), sharding, shards)
    return out


def gather(data: Mapping[str, jax.Array], indices: jax.Array) -> dict[str, jax.Array]:
    """``{name: data[name][indices]}`` (works under ``jit``; indices ``[B]`` int)."""
    return {k: jnp.take(v, indices, axis=0) for k, v in data.items()}


@dataclasses.dataclass(frozen=True)
class BatchSampler:
    """Draws batch indices from ``(key, step)`` inside jitted code.

    Attributes:
      num_examples: N, size of the dataset.
      batch_size: global batch size B (all devices together).
      mode: ``"random"`` (i.i.d. with replacement) or ``"epoch"`` (per-epoch permutation).
      axis_name: ``pmap`` axis name; when set, calling the sampler inside ``pmap`` returns this
        device's slice ``[B / D]`` of the global batch.
      num_shards: number of devices D along ``axis_name`` (default: the axis size at trace time).
    """

    num_examples: int
    batch_size: int
    mode: str = "epoch"
    axis_name: str | None = None
    num_shards: int | None = None

    def __post_init__(self):
        if self.mode not in _MODES:
            raise ValueError(f"BatchSampler mode must be one of {_MODES}, got {self.mode!r}")
        if self.num_examples < 1 or self.batch_size < 1:
            raise ValueError(
                f"BatchSampler needs num_examples >= 1 and batch_size >= 1, got "
                f"{self.num_examples}, {self.batch_size}"
            )
        if self.mode == "epoch" and self.batch_size > self.num_examples:
            raise ValueError(
                f"epoch mode needs batch_size ({self.batch_size}) <= num_examples "
                f"({self.num_examples}); use mode='random'"
            )

    @property
    def steps_per_epoch(self) -> int:
        """Steps per pass over the data (``N // B``; epoch mode skips the remainder)."""
        return max(1, self.num_examples // self.batch_size)

    def epoch(self, step: int | jax.Array) -> int | jax.Array:
        """Epoch index of ``step``."""
        return step // self.steps_per_epoch

    def indices(self, key: jax.Array, step: int | jax.Array) -> jax.Array:
        """Global batch indices ``int32 [B]`` of ``step`` (pure function of key and step).

        Args:
          key: typed PRNG key (the run's base key).
          step: integer step (Python int or traced scalar).

        Returns:
          ``[B]`` indices into the dataset.
        """
        if self.mode == "random":
            k = jax.random.fold_in(
                jax.random.fold_in(key, SAMPLER_SALT), jnp.asarray(step, jnp.int32)
            )
            return jax.random.randint(k, (self.batch_size,), 0, self.num_examples, jnp.int32)
        return self._epoch_indices(key, step, 0, self.batch_size)

    def _epoch_indices(self, key: jax.Array, step, offset, count: int) -> jax.Array:
        """Positions ``[offset, offset + count)`` of ``step``'s part of the epoch permutation."""
        step = jnp.asarray(step, jnp.int32)
        spe = self.steps_per_epoch
        start = (step % spe) * self.batch_size + offset
        epoch_key = jax.random.fold_in(jax.random.fold_in(key, SAMPLER_SALT), step // spe)
        positions = start + jnp.arange(count, dtype=jnp.int32)
        return keyed_permutation(epoch_key, positions, num_items=self.num_examples)

    def shard_indices(
        self, key: jax.Array, step: int | jax.Array, *, shard: int | jax.Array, num_shards: int
    ) -> jax.Array:
        """Indices ``[B / D]`` of device ``shard`` (contiguous slice of :meth:`indices`).

        In ``epoch`` mode only this shard's positions of the epoch permutation are computed
        (O(B / D) per device); ``shard`` is the global device index, so under multi-process
        ``pmap`` every process feeds its own part of each global batch.
        """
        if self.batch_size % num_shards:
            raise ValueError(
                f"batch_size {self.batch_size} is not divisible by {num_shards} devices"
            )
        per = self.batch_size // num_shards
        if self.mode == "epoch":
            return self._epoch_indices(key, step, jnp.asarray(shard, jnp.int32) * per, per)
        return jax.lax.dynamic_slice(self.indices(key, step), (shard * per,), (per,))

    def batch(
        self, data: Mapping[str, jax.Array], key: jax.Array, step: int | jax.Array
    ) -> dict[str, jax.Array]:
        """The global batch ``{name: [B, ...]}`` of ``step`` gathered from ``data``."""
        return gather(data, self.indices(key, step))

    def __call__(
        self, data: Mapping[str, jax.Array], step: int | jax.Array, key: jax.Array
    ) -> dict[str, jax.Array]:
        """``sampler(data, step, key)`` as used by ``make_multi_step``.

        Without ``axis_name``: the global batch. With it (inside ``pmap``): this device's slice.
        """
        if self.axis_name is None:
            return self.batch(data, key, step)
        d = self.num_shards
        if d is None:
            d = jax.lax.psum(1, self.axis_name)  # static under pmap
        shard = jax.lax.axis_index(self.axis_name)
        return gather(data, self.shard_indices(key, step, shard=shard, num_shards=int(d)))

    def sharded_batch(
        self,
        data: Mapping[str, jax.Array],
        key: jax.Array,
        step: int | jax.Array,
        *,
        num_shards: int,
    ) -> dict[str, jax.Array]:
        """The global batch reshaped to ``[D, B / D, ...]`` (host-side equivalent of pmap)."""
        b = self.batch(data, key, step)
        return {k: v.reshape((num_shards, -1) + v.shape[1:]) for k, v in b.items()}


class HostBatchIterator(Iterator[dict[str, np.ndarray]]):
    """Numpy batches from host (or memory-mapped) arrays, resumable at any step.

    Same index rules as :class:`BatchSampler` but with numpy generators:
    ``epoch`` mode permutes with ``default_rng([seed, epoch])``, ``random`` mode draws with
    ``default_rng([seed, step])``. The batch of step ``s`` does not depend on where iteration
    started.

    Args:
      arrays: ``{name: [N, ...]}`` arrays (numpy or ``np.memmap``).
      batch_size: global batch size B.
      seed: integer seed.
      start_step: first step to yield (resume from a checkpoint's step).
      mode: ``"epoch"`` or ``"random"``.
      num_devices: if set, leaves get a leading device axis ``[D, B / D, ...]``.
      num_steps: stop after this step (exclusive); ``None`` iterates forever.
    """

    def __init__(
        self,
        arrays: Mapping[str, Any],
        *,
        batch_size: int,
        seed: int,
        start_step: int = 0,
        mode: str = "epoch",
        num_devices: int | None = None,
        num_steps: int | None = None,
    ):
        lengths = {len(v) for v in arrays.values()}
        if len(lengths) != 1:
            raise ValueError(f"HostBatchIterator: arrays have different lengths {sorted(lengths)}")
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
        self.arrays = dict(arrays)
        self.num_examples = lengths.pop()
        if mode == "epoch" and batch_size > self.num_examples:
            raise ValueError(f"epoch mode needs batch_size <= {self.num_examples}")
        if num_devices is not None and batch_size % num_devices:
            raise ValueError(f"batch_size {batch_size} not divisible by {num_devices} devices")
        self.batch_size = batch_size
        self.seed = seed
        self.step = start_step
        self.mode = mode
        self.num_devices = num_devices
        self.num_steps = num_steps
        self._perm: tuple[int, np.ndarray] | None = None

    @property
    def steps_per_epoch(self) -> int:
        """``N // B``."""
        return max(1, self.num_examples // self.batch_size)

    def indices(self, step: int) -> np.ndarray:
        """Indices ``[B]`` of ``step``."""
        if self.mode == "random":
            rng = np.random.default_rng([self.seed, step])
            return rng.integers(0, self.num_examples, self.batch_size)
        epoch, pos = divmod(step, self.steps_per_epoch)
        if self._perm is None or self._perm[0] != epoch:
            self._perm = (
                epoch,
                np.random.default_rng([self.seed, epoch]).permutation(self.num_examples),
            )
        return self._perm[1][pos * self.batch_size : (pos + 1) * self.batch_size]

    def __next__(self) -> dict[str, np.ndarray]:
        if self.num_steps is not None and self.step >= self.num_steps:
            raise StopIteration
        idx = self.indices(self.step)
        order = np.argsort(idx, kind="stable")  # sorted reads are faster for memmaps
        batch = {}
        for k, v in self.arrays.items():
            rows = np.empty((len(idx),) + np.shape(v)[1:], dtype=np.asarray(v[:0]).dtype)
            rows[order] = np.asarray(v[idx[order]])
            if self.num_devices is not None:
                rows = rows.reshape((self.num_devices, -1) + rows.shape[1:])
            batch[k] = rows
        self.step += 1
        return batch
