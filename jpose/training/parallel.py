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

Multi-host (N hosts, each with its local devices): call :func:`initialize_distributed` first on
every host, e.g. ::

    # host i of N (same command everywhere, only the process id differs)
    JPOSE_COORDINATOR=10.0.0.1:1234 JPOSE_NUM_PROCESSES=N JPOSE_PROCESS_ID=i \\
        python -m experiments.camerapose --config=... --config.distributed=True

On SLURM / Cloud TPU / GKE the arguments can be omitted (``jax.distributed`` auto-detects them).
``pmap`` then runs over the local devices of each host and ``pmean`` reduces over all devices of
all hosts; each host feeds its own shard of the global batch (``jax.process_index()``-based data
split, done by the data pipeline) and only process 0 should write checkpoints and logs.
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
    "initialize_distributed",
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
    """Copy a pytree onto every local device (leading device axis)."""
    devices = jax.local_devices() if devices is None else devices
    n = len(devices)
    sharding = jax.sharding.NamedSharding(
        jax.sharding.Mesh(np.asarray(devices), ("_replica",)),
        jax.sharding.PartitionSpec("_replica"),
    )
    return jax.tree_util.tree_map(
        lambda x: jax.device_put(jnp.broadcast_to(x, (n, *np.shape(x))), sharding), tree
    )


def unreplicate(tree: Any) -> Any:
    """Take device 0's copy of a replicated pytree (leaves ``x[0]``)."""
    return jax.tree_util.tree_map(lambda x: x[0], tree)


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


def initialize_distributed(config: Mapping[str, Any] | None = None) -> bool:
    """Initialise ``jax.distributed`` for multi-host runs when asked.

    Enabled by ``config["distributed"]`` or the environment variable ``JPOSE_DISTRIBUTED=1``;
    arguments come from ``config`` (``coordinator_address``, ``num_processes``, ``process_id``) or
    the environment (``JPOSE_COORDINATOR``, ``JPOSE_NUM_PROCESSES``, ``JPOSE_PROCESS_ID``); missing
    ones are auto-detected by JAX (SLURM, Cloud TPU, ...). Call before any other JAX use.

    Args:
      config: mapping (e.g. an ``ml_collections.ConfigDict``) or None.

    Returns:
      True if ``jax.distributed.initialize`` was called.
    """
    config = {} if config is None else config
    enabled = bool(config.get("distributed", False)) or os.environ.get(
        "JPOSE_DISTRIBUTED", ""
    ) not in ("", "0", "false", "False")
    if not enabled:
        return False

    def pick(name: str, env: str, cast: Callable[[str], Any]) -> Any:
        value = config.get(name)
        if value is None and os.environ.get(env):
            value = cast(os.environ[env])
        return value

    jax.distributed.initialize(
        coordinator_address=pick("coordinator_address", "JPOSE_COORDINATOR", str),
        num_processes=pick("num_processes", "JPOSE_NUM_PROCESSES", int),
        process_id=pick("process_id", "JPOSE_PROCESS_ID", int),
    )
    return True
