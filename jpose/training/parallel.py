"""Data parallelism over all local devices (``jax.pmap`` over the named axis ``"batch"``).

Usage::

    step = make_train_step(phases, axis_name=parallel.AXIS)  # pmean of grads / BN stats
    p_step = parallel.pmap_step(step)  # state replicated, batch sharded, key broadcast
    state_r = parallel.replicate(state)
    state_r, metrics = p_step(state_r, parallel.shard(global_batch), key)
    metrics = parallel.unreplicate(metrics); state = parallel.unreplicate(state_r)

``shard`` splits the leading (global batch) axis into ``[devices, per_device, ...]``; the key is
broadcast (not sharded): the step folds in the step and, by default, the device index. Fused
multi-step functions (``make_multi_step``) are pmapped the same way; with stacked batches shard
with ``shard(batches, axis=1)`` (-> ``[devices, K, per_device, ...]``).

Multi-process (N processes, each with its local devices; one per host, or several on one host):
call :func:`initialize_distributed` first in every process (``common.cli`` does it when the
config has ``distributed=True`` or ``JPOSE_DISTRIBUTED=1``), e.g. ::

    # process i of N (same command everywhere, only the process id differs)
    JPOSE_COORDINATOR=10.0.0.1:1234 JPOSE_NUM_PROCESSES=N JPOSE_PROCESS_ID=i \\
        python -m experiments.camerapose --config=... --config.distributed=True

On SLURM (``srun``), Open MPI (``mpirun``), Cloud TPU and GKE the three variables can be omitted:
``jax.distributed`` reads the launcher's own environment. ``pmap`` then maps over the local
devices of each process while the named axis spans all devices of all processes
(``lax.axis_index`` is the *global* device index, ``pmean`` / ``psum`` reduce over every device):
each process feeds its local devices their own shard of the global batch
(``BatchSampler(num_shards=global_device_count())`` slices by the global index), and only
process 0 writes logs and reports (:func:`is_main_process`); checkpoints are written through
orbax by all processes together. On CPU the cross-process collectives use gloo
(``jax_cpu_collectives_implementation``), which :func:`initialize_distributed` selects.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "AXIS",
    "barrier",
    "distributed_requested",
    "global_device_count",
    "initialize_distributed",
    "is_main_process",
    "pmap_step",
    "replicate",
    "shard",
    "unreplicate",
]

#: The data-parallel axis name used by jpose's steps.
AXIS = "batch"


def pmap_step(
    step: Callable[..., Any], *, axis_name: str = AXIS, donate_state: bool | None = None
) -> Callable[..., Any]:
    """``pmap`` a ``(state, batch, key)`` step: state replicated, batch sharded, key broadcast.

    Args:
      step: built with ``axis_name=axis_name`` (e.g. ``make_train_step(..., axis_name=AXIS)``).
      axis_name: the mapped axis name.
      donate_state: donate the replicated state's buffers; ``None`` (default): on accelerators
        only (on CPU donation slows the step down, see ``steps.jit_step``).

    Returns:
      The pmapped step; outputs (state, metrics) carry a leading device axis.
    """
    if donate_state is None:
        donate_state = jax.default_backend() != "cpu"
    return jax.pmap(
        step,
        axis_name=axis_name,
        in_axes=(0, 0, None),
        donate_argnums=(0,) if donate_state else (),
    )


def replicate(tree: Any, *, devices: list[jax.Device] | None = None) -> Any:
    """Copy a pytree onto every local device (leading device axis).

    Built from one host-to-device copy per device (no cross-device computation), so it is safe
    in multi-process runs, where a resharding computation would need a CPU collective.
    """
    devices = jax.local_devices() if devices is None else devices
    n = len(devices)
    sharding = jax.sharding.NamedSharding(
        jax.sharding.Mesh(np.asarray(devices), ("_replica",)),
        jax.sharding.PartitionSpec("_replica"),
    )

    def put(x: Any) -> jax.Array:
        x = jnp.expand_dims(jnp.asarray(x), 0)
        shards = [jax.device_put(x, d) for d in devices]
        return jax.make_array_from_single_device_arrays((n, *x.shape[1:]), sharding, shards)

    return jax.tree_util.tree_map(put, tree)


def unreplicate(tree: Any) -> Any:
    """Take the first local device's copy of a replicated pytree (leaves ``x[0]``).

    Reads that device's shard directly: indexing the device-sharded array would compile a
    gather across the local devices, a collective that can deadlock the gloo CPU collectives
    of a multi-process run.
    """

    def first(x: Any) -> Any:
        if isinstance(x, jax.Array) and len(x.sharding.device_set) > 1:
            return x.addressable_data(0).reshape(x.shape[1:])
        return x[0]

    return jax.tree_util.tree_map(first, tree)


def shard(tree: Any, *, num_devices: int | None = None, axis: int = 0) -> Any:
    """Split axis ``axis`` of every leaf into ``[num_devices, size / num_devices]`` at the front.

    Args:
      tree: pytree of arrays, e.g. a global batch ``[N, ...]`` or stacked batches ``[K, N, ...]``
        with ``axis=1``.
      num_devices: default ``jax.local_device_count()``.
      axis: the global batch axis.

    Returns:
      Pytree with leaves ``[num_devices, ..., N / num_devices, ...]`` (device axis first).

    Raises:
      ValueError: if the batch size is not divisible by the device count.
    """
    n = jax.local_device_count() if num_devices is None else num_devices

    def split(x: Any) -> Any:
        x = jnp.asarray(x) if not isinstance(x, np.ndarray | jax.Array) else x
        size = x.shape[axis]
        if size % n:
            raise ValueError(f"batch axis {axis} of size {size} is not divisible by {n} devices")
        shape = (*x.shape[:axis], n, size // n, *x.shape[axis + 1 :])
        return jnp.moveaxis(x.reshape(shape), axis, 0)

    return jax.tree_util.tree_map(split, tree)


def is_main_process() -> bool:
    """True on process 0 (the only one that writes logs, figures and reports); always True in a
    single-process run."""
    return jax.process_index() == 0


def barrier(name: str) -> None:
    """Wait until every process reaches ``barrier(name)`` (no-op in a single process); e.g. after
    process 0 wrote a file the others read."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def global_device_count(num_local: int | None = None) -> int:
    """Size of the ``pmap`` axis: ``num_local`` (default all local devices) times the number of
    processes (every process maps over the same number of local devices)."""
    local = jax.local_device_count() if num_local is None else int(num_local)
    return local * jax.process_count()


def distributed_requested(config: Mapping[str, Any] | None = None) -> bool:
    """Whether ``config["distributed"]`` or ``JPOSE_DISTRIBUTED`` asks for a multi-process run."""
    config = {} if config is None else config
    return bool(config.get("distributed", False)) or os.environ.get(
        "JPOSE_DISTRIBUTED", ""
    ) not in ("", "0", "false", "False")


def initialize_distributed(config: Mapping[str, Any] | None = None) -> bool:
    """Initialise ``jax.distributed`` for multi-process runs when asked.

    Enabled by ``config["distributed"]`` or the environment variable ``JPOSE_DISTRIBUTED=1``;
    arguments come from ``config`` (``coordinator_address``, ``num_processes``, ``process_id``,
    when the config has them) or the environment (``JPOSE_COORDINATOR``,
    ``JPOSE_NUM_PROCESSES``, ``JPOSE_PROCESS_ID``); missing ones are auto-detected by JAX from the
    launcher (SLURM, Open MPI, Cloud TPU, GKE). On CPU the cross-process collectives are set to
    gloo. Call before any other JAX use; calling it again in an initialised process is a no-op.

    Args:
      config: mapping (e.g. an ``ml_collections.ConfigDict``) or None.

    Returns:
      True if the process is part of an initialised multi-process run.
    """
    config = {} if config is None else config
    if not distributed_requested(config):
        return False
    if jax.distributed.is_initialized():
        return True

    def pick(name: str, env: str, cast: Callable[[str], Any]) -> Any:
        value = config.get(name)
        if value is None and os.environ.get(env):
            value = cast(os.environ[env])
        return value

    # CPU collectives across processes (no-op for GPU / TPU backends); must precede the backend.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=pick("coordinator_address", "JPOSE_COORDINATOR", str),
        num_processes=pick("num_processes", "JPOSE_NUM_PROCESSES", int),
        process_id=pick("process_id", "JPOSE_PROCESS_ID", int),
    )
    return True
