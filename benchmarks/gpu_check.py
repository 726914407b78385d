"""A short check for a lent GPU machine (issue 21): run through ``benchmarks/gpu_check.sh``.

Prints, one JSON line per measurement (``GPUCHECK {...}``) and a summary at the end:

1. ``pmap``: the Martinez lifter step (width 1024, 2 blocks, batch norm, Adam) pmapped over all
   local devices at global batch 1024 x devices and 8192 x devices (``bench_parallel.child``);
2. ``camerapose_stage3``: one CameraPose stage-3 iteration at batch 1024 with the paper's widths
   (``bench_engine.bench_camerapose``);
3. ``p_mpjpe``: P-MPJPE throughput over 1M pose pairs (``jpose.metrics.p_mpjpe``);
4. ``procrustes``: Horn/QCP closed form (jpose's float32 path) against the batched SVD on the
   same pairs: which is faster on this device, and their largest difference.

Each part is timed after a warm-up (compile time reported separately) and guarded: a failing part
prints its error and the rest still run. ``--quick`` shrinks everything (a CPU sanity run).
"""

from __future__ import annotations

import argparse
import json
import time
import traceback
from collections.abc import Callable
from typing import Any


def _emit(name: str, **values: Any) -> dict[str, Any]:
    record = {"check": name, **values}
    print("GPUCHECK " + json.dumps(record, default=str), flush=True)
    return record


def check_pmap(quick: bool) -> dict[str, Any]:
    """Lifter step pmapped over every local device."""
    import jax

    from benchmarks.bench_parallel import child

    d = jax.local_device_count()
    batches = (256 * d,) if quick else (1024 * d, 8192 * d)
    rows = child(batches, 2 if quick else 5, 1 if quick else 5)
    for r in rows:
        _emit("pmap", **r)
    return {"pmap_steps_per_s": {r["global batch"]: r["steps/s median"] for r in rows}}


def check_camerapose(quick: bool) -> dict[str, Any]:
    """One CameraPose stage-3 iteration at batch 1024 (paper widths)."""
    from benchmarks import bench_engine

    row = bench_engine.bench_camerapose(
        repeats=2 if quick else 5, number=1 if quick else 5, poseaug_subset=False
    )
    _emit("camerapose_stage3", **row)
    return {"camerapose_stage3_ms": 1e3 / row["steps/s median"]}


def _rate(fn: Callable[[], Any], repeats: int) -> tuple[float, float]:
    """``(compile + first call s, best seconds per call)``."""
    import jax

    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    first = time.perf_counter() - t0
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        best = min(best, time.perf_counter() - t0)
    return first, best


def check_procrustes(quick: bool) -> dict[str, Any]:
    """P-MPJPE throughput and the Horn-vs-SVD rotation fit on this device."""
    import jax
    import numpy as np

    from benchmarks.bench_metrics import pose_pairs, svd_p_mpjpe
    from jpose import geometry, metrics

    n = 20_000 if quick else 1_000_000
    pred, target = (jax.device_put(a) for a in pose_pairs(n))
    impls = {
        "p_mpjpe (public metric)": jax.jit(metrics.p_mpjpe),
        "horn (procrustes_residuals)": jax.jit(
            lambda p, t: geometry.procrustes_residuals(p, t).mean(-1)
        ),
        "svd (batched jnp.linalg.svd)": jax.jit(svd_p_mpjpe),
    }
    out, values = {}, {}
    for name, f in impls.items():
        first, best = _rate(lambda f=f: f(pred, target), 3 if quick else 10)
        values[name] = np.asarray(f(pred, target))
        out[name] = n / best / 1e6
        _emit("procrustes", implementation=name, poses=n, m_poses_per_s=out[name],
              compile_s=first - best, platform=jax.devices()[0].platform)  # fmt: skip
    h_name, s_name = "horn (procrustes_residuals)", "svd (batched jnp.linalg.svd)"
    horn, svd = out[h_name], out[s_name]
    diff_mm = 1e3 * float(np.max(np.abs(values[h_name] - values[s_name])))
    choice = "horn" if horn >= svd else "svd"
    _emit("procrustes_choice", faster=choice, horn_over_svd=horn / svd, max_diff_mm=diff_mm)
    return {"p_mpjpe_M_poses_per_s": out["p_mpjpe (public metric)"], "procrustes_faster": choice,
            "horn_over_svd": horn / svd}  # fmt: skip


CHECKS = {"pmap": check_pmap, "camerapose": check_camerapose, "procrustes": check_procrustes}


def main() -> None:
    """Command line: ``[--quick] [--only pmap,camerapose,procrustes]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (CPU sanity run)")
    parser.add_argument("--only", default=",".join(CHECKS), help="comma-separated checks")
    args = parser.parse_args()

    import jax

    devices = jax.devices()
    _emit("devices", backend=jax.default_backend(), count=len(devices),
          kinds=sorted({d.device_kind for d in devices}), jax=jax.__version__)  # fmt: skip
    summary: dict[str, Any] = {"backend": jax.default_backend(), "devices": len(devices)}
    for name in [s.strip() for s in args.only.split(",") if s.strip()]:
        t0 = time.perf_counter()
        try:
            summary.update(CHECKS[name](args.quick))
        except Exception as err:  # noqa: BLE001 - report and go on with the other checks
            traceback.print_exc()
            summary[f"{name}_error"] = f"{type(err).__name__}: {err}"
        summary[f"{name}_wall_s"] = round(time.perf_counter() - t0, 1)
    print("GPUCHECK SUMMARY " + json.dumps(summary, default=str), flush=True)
    if "procrustes_faster" in summary and summary["procrustes_faster"] == "svd":
        print("NOTE: the batched SVD beats Horn/QCP on this device; jpose.geometry._use_horn "
              "chooses Horn for every float32 input (see BUILD_NOTES 'Scale-out').")  # fmt: skip


if __name__ == "__main__":
    main()
