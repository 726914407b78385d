"""Data path: batches per second of the device-resident sampler vs the host-side iterator.

Run::

    python -m benchmarks.bench_data [--quick]

Dataset: 200,000 examples of a 17-joint 2D pose, confidence and 3D pose (~0.1 KB each) in
device memory (``device_put_dataset``). Rows:

* ``BatchSampler`` (``mode="random"`` and ``"epoch"``) inside a jitted ``lax.scan`` over K steps
  (how the engine draws batches: indices from ``(key, step)``, gather on device);
* the same sampler called as one jitted call per batch;
* ``HostBatchIterator`` (numpy gather on the host) + ``jax.device_put`` per batch.

Each batch is reduced to a scalar so the gathered values are used.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.common import main_for, time_calls
from jpose.data.batching import BatchSampler, HostBatchIterator, device_put_dataset

J = 17
N = 200_000


def _arrays(n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "pose2d": rng.normal(size=(n, J, 2)).astype(np.float32),
        "confidence": rng.uniform(size=(n, J)).astype(np.float32),
        "pose3d": rng.normal(size=(n, J, 3)).astype(np.float32),
    }


def _use(batch: dict[str, jax.Array]) -> jax.Array:
    return sum(jnp.sum(v) for v in batch.values())


def run(quick: bool = False) -> dict[str, Any]:
    """Batches/s of each data path at batch 1024."""
    n = 20_000 if quick else N
    batch = 1024
    k = 10 if quick else 100
    repeats = 2 if quick else 5
    host = _arrays(n)
    data = device_put_dataset(host)
    key = jax.random.key(0)
    rows = []
    for mode in ("random", "epoch"):
        sampler = BatchSampler(n, batch, mode=mode)

        @jax.jit
        def scanned(data, key, start, sampler=sampler):
            def body(acc, i):
                return acc + _use(sampler(data, start + i, key)), None

            return jax.lax.scan(body, jnp.zeros(()), jnp.arange(k))[0]

        t = time_calls(lambda f=scanned: f(data, key, 0), repeats=repeats)
        rows.append(_row(f"BatchSampler {mode}, scan of {k} in one call", t, k, batch))
        single = jax.jit(lambda data, key, step, sampler=sampler: _use(sampler(data, step, key)))
        steps = iter(range(10**9))
        t = time_calls(lambda f=single, s=steps: f(data, key, next(s)), repeats=repeats, number=k)
        rows.append(_row(f"BatchSampler {mode}, 1 jitted call per batch", t, 1, batch))
    for mode in ("random", "epoch"):
        it = HostBatchIterator(host, batch_size=batch, seed=0, mode=mode)
        use = jax.jit(_use)
        t = time_calls(lambda it=it, u=use: u(jax.device_put(next(it))), repeats=repeats, number=k)
        rows.append(_row(f"HostBatchIterator {mode} + device_put", t, 1, batch))
    sampler_best = max(r["batches/s median"] for r in rows[:4])
    host_best = max(r["batches/s median"] for r in rows[4:])
    return {
        "title": f"Data path: batches of {batch} from {n:,} examples",
        "columns": [
            "path",
            "batches/s median",
            "min",
            "max",
            "us/batch",
            "MB/s gathered",
            "compile s",
        ],  # fmt: skip
        "rows": rows,
        "notes": [
            f"Best device sampler / best host iterator: {sampler_best / host_best:.1f}x.",
            "Epoch mode draws a full permutation of the dataset every step (pure function of "
            "(key, epoch)), so its cost grows with N; random mode is O(batch).",
        ],
        "targets": [],
    }


def _row(name: str, t, batches_per_call: int, batch: int) -> dict[str, Any]:
    med, lo, hi = t.rate(batches_per_call)
    bytes_per_batch = batch * (J * 2 + J + J * 3) * 4
    return {"path": name, "batches/s median": med, "min": lo, "max": hi,
            "us/batch": 1e6 / med, "MB/s gathered": med * bytes_per_batch / 1e6,
            "compile s": t.compile_s}  # fmt: skip


def main() -> None:
    """Command line entry point."""
    main_for(run, __doc__)


if __name__ == "__main__":
    main()
