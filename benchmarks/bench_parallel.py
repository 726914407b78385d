"""Data-parallel scaling of the pmap step over simulated CPU devices.

Run::

    python -m benchmarks.bench_parallel [--quick]

For D in 1, 2, 4 a fresh process is started with
``XLA_FLAGS=--xla_force_host_platform_device_count=D`` (set before jax is imported) and times the
Martinez lifter step built with ``make_train_step(..., axis_name=parallel.AXIS)`` and compiled
with ``parallel.pmap_step`` at global batch 1024 and 4096 (state replicated, batch sharded).
Simulated devices share the same CPU cores, so this checks the harness and the cost of the
cross-device reductions, not real speed-up; on a GPU machine the same script measures the GPU.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from benchmarks.common import main_for

DEVICES = (1, 2, 4)
BATCHES = (1024, 4096)


def child(batches: tuple[int, ...], repeats: int, number: int) -> list[dict[str, Any]]:
    """Runs inside the subprocess (jax imported after XLA_FLAGS is set)."""
    import jax
    import jax.numpy as jnp
    import optax

    from benchmarks.common import time_chain
    from jpose import models as M
    from jpose import training as T
    from jpose.training import parallel

    j = 17

    def loss(ctx, batch):
        pred = ctx.apply("lifter", batch["x2d"])
        return jnp.mean((pred - batch["x3d"]) ** 2), {}

    step = parallel.pmap_step(
        T.make_train_step([T.Phase("lifter", ("lifter",), loss)], axis_name=parallel.AXIS)
    )
    model = M.martinez_lifter(j, width=1024, num_blocks=2, dropout=0.5)
    rows = []
    for b in batches:
        key = jax.random.key(0)
        state = T.create_train_state(
            {"lifter": T.create_player(model, optax.adam(1e-3), key, jnp.zeros((2, j, 2)))}
        )
        state = parallel.replicate(state)
        data = parallel.shard(
            {"x2d": jax.random.normal(key, (b, j, 2)), "x3d": jax.random.normal(key, (b, j, 3))}
        )
        timing, state = time_chain(lambda s, d=data, k=key: step(s, d, k), state, repeats=repeats,
                                   number=number)  # fmt: skip
        loss_value = float(parallel.unreplicate(step(state, data, key)[1])["lifter/loss"])
        med, lo, hi = timing.rate(1.0)
        rows.append({"devices": jax.local_device_count(), "global batch": b,
                     "per-device batch": b // jax.local_device_count(), "steps/s median": med,
                     "min": lo, "max": hi, "samples/s": b * med,
                     "GFLOP/s (6PB)": 6 * 4_291_635 * b * med / 1e9,
                     "compile s": timing.compile_s, "loss finite": bool(loss_value == loss_value),
                     "platform": jax.devices()[0].platform})  # fmt: skip
    return rows


def run(quick: bool = False) -> dict[str, Any]:
    """One subprocess per device count."""
    repeats, number = (2, 1) if quick else (5, 3)
    batches = (1024,) if quick else BATCHES
    rows = []
    for d in DEVICES:
        env = dict(os.environ)
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={d}"
        env.setdefault("JAX_PLATFORMS", "cpu")
        code = (
            "import json, sys; from benchmarks.bench_parallel import child; "
            f"print('RESULT' + json.dumps(child({batches!r}, {repeats}, {number})))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=1800
        )
        line = [x for x in out.stdout.splitlines() if x.startswith("RESULT")]
        if out.returncode or not line:
            rows.append({"devices": d, "error": out.stderr[-300:]})
            continue
        rows += json.loads(line[-1][len("RESULT") :])
    base = {r["global batch"]: r["steps/s median"] for r in rows if r.get("devices") == 1}
    for r in rows:
        if "steps/s median" in r and r["global batch"] in base:
            r["vs 1 device"] = r["steps/s median"] / base[r["global batch"]]
    return {
        "title": "Data parallelism: pmap step over simulated CPU devices (Martinez lifter)",
        "columns": [
            "devices",
            "global batch",
            "per-device batch",
            "steps/s median",
            "min",
            "max",
            "samples/s",
            "GFLOP/s (6PB)",
            "vs 1 device",
            "compile s",
            "loss finite",
            "platform",
        ],  # fmt: skip
        "rows": rows,
        "notes": [
            "Simulated devices (xla_force_host_platform_device_count) share the 2 CPU cores: "
            "a ratio near 1 means the pmap harness (sharding, pmean of gradients and batch-norm "
            "statistics) adds little; it cannot show real scaling.",
            "No GPU was lent to this task, so the GPU rows of the issue (step time vs batch up "
            "to 32,768 and fraction of peak) are not measured; run this script on a GPU machine.",
        ],
        "targets": [],
    }


def main() -> None:
    """Command line entry point."""
    main_for(run, __doc__)


if __name__ == "__main__":
    main()
