"""Accuracy at equal budget: jpose's supervised lifters against an independent plain JAX lifter.

Run::

    python -m benchmarks.bench_accuracy [--quick] [--h36m_dir=DIR] [--json PATH]
    python -m benchmarks.run --only accuracy [--h36m_dir=DIR]

Data: CMU mocap through virtual cameras from ``../shared/data`` (``experiments`` ``cmu`` data
preset: 30,808 training / 6,548 test pairs), or Human3.6M in VideoPose3D's format with
``--h36m_dir`` (GT 2D, S1/5/6/7/8 -> S9/S11). Every row trains on the same data with the same
batch (1024) and width (1024, 2 blocks, dropout 0.5) and is scored by the same numpy metrics
(``benchmarks.reference_lifter``: frame-wise mean MPJPE = P1 and P-MPJPE = P2, mm) at 500 /
1,000 / 2,000 / 3,000 steps:

* ``plain reference``: :func:`benchmarks.reference_lifter.train_reference` (no jpose code; Adam
  1e-3, global-norm clip 1, z-scored inputs and targets).
* ``jpose baseline``: ``experiments.baseline`` (``:cmu`` / ``:h36m`` preset at this batch and
  width), checkpoints every 500 steps, each restored with ``inference.load_predictor``.
* ``CameraPose, switches off``: ``experiments.camerapose`` with ``method.refine / camera / gan``
  and its detection-noise input corruption (``noise.enabled``) off: the same lifter trained by
  CameraPose's code (500 warm-up + 2,500 end-to-end steps at a constant 1e-3). With the noise
  on, the lifter trains on corrupted 2D and is tested on clean 2D (see benchmarks/FINDINGS.md).

Wall times are whole training runs (compilation included) on this machine; the machine may be
shared (load average in the section header).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from typing import Any

import numpy as np

from benchmarks.common import load_average
from benchmarks.reference_lifter import mpjpe_mm, p_mpjpe_mm, train_reference
from jpose import inference

STEPS = (500, 1000, 2000, 3000)
QUICK_STEPS = (20, 40)
BATCH = 1024
WIDTH = 1024


def _data_overrides(h36m_dir: str) -> dict[str, Any]:
    if h36m_dir:
        return {"data": {"preset": "h36m", "h36m": {"dir": h36m_dir}}}
    return {}


def _score(predictor: Any, x: np.ndarray, c: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    preds = []
    for i in range(0, len(x), 4096):
        out = predictor.predict(x[i : i + 4096], c[i : i + 4096])
        preds.append(np.asarray(out["pose3d"]))
    pred = np.concatenate(preds)
    pred = pred - pred[:, :1]
    return float(mpjpe_mm(pred, y).mean()), float(p_mpjpe_mm(pred, y).mean())


def _train(run: Any, cfg: Any, steps: tuple[int, ...], h36m_dir: str, wd: str) -> float:
    """Shared budget fields, then ``run(cfg, wd)``; returns its wall time (s)."""
    cfg.train.batch_size = BATCH
    cfg.train.checkpoint_every = min(steps) if len(steps) == 2 else 500
    cfg.train.keep_checkpoints = 10
    cfg.eval.figures = False
    if h36m_dir:
        cfg.data.h36m.dir = h36m_dir
    t0 = time.perf_counter()
    run(cfg, wd)
    return time.perf_counter() - t0


def _jpose_baseline(preset: str, steps: tuple[int, ...], h36m_dir: str, tmp: str, test: Any):
    from experiments import baseline
    from experiments.configs import baseline as cfg_mod
    from jpose import inference

    cfg = cfg_mod.get_config(preset)
    cfg.model.width = WIDTH
    cfg.stages.lifter.steps = max(steps)
    cfg.train.steps_per_block = min(100, min(steps))
    wd = f"{tmp}/baseline"
    wall = _train(baseline.run, cfg, steps, h36m_dir, wd)
    out = {}
    for s in steps:
        out[s] = _score(inference.load_predictor(wd, step=s), *test)
    return out, wall


def _jpose_camerapose_off(preset: str, steps: tuple[int, ...], h36m_dir: str, tmp: str, test: Any):
    from experiments import camerapose
    from experiments.configs import camerapose as cfg_mod

    cfg = cfg_mod.get_config(preset)
    cfg.method.refine = cfg.method.camera = cfg.method.gan = False
    cfg.noise.enabled = False  # the noise simulates detections for the refinement network
    cfg.model.lifter.update(width=WIDTH, num_blocks=2, dropout=0.5)
    warm = min(steps)
    cfg.train.steps_per_block = min(50, warm)
    cfg.stages.stage2.update(steps=warm, lr=1e-3, kind="constant", boundaries=())
    cfg.stages.stage3.update(steps=max(steps) - warm, lr=1e-3, kind="constant", boundaries=())
    wd = f"{tmp}/camerapose_off"
    wall = _train(camerapose.run, cfg, steps, h36m_dir, wd)
    out = {}
    for s in steps:
        if s == warm:  # the end of the warm-up stage: evaluate its checkpoint directly
            pred = _stage_predictor(wd, "warmup", s)
        else:
            pred = inference.load_predictor(wd, step=s - warm)
        out[s] = _score(pred, *test)
    return out, wall


def _stage_predictor(workdir: str, stage: str, step: int) -> Any:
    """CameraPose's lifter at a checkpoint of an earlier stage (switches off: lifter only)."""
    import ml_collections

    from experiments import camerapose as cp
    from jpose.evaluation import apply_fn

    config = ml_collections.ConfigDict(inference.read_config(workdir))
    info = inference.read_model_info(workdir)
    models = cp.build_models(config, info.get("camera_priors") or {})
    variables, _ = inference.restore_variables(workdir, (stage,), ["lifter"], step=step)
    predict = apply_fn(models["lifter"], variables["lifter"], lambda a, x, c: {"pose3d": a(x)})
    return inference.Predictor(
        experiment="camerapose", predict=predict, normalization=info["normalization"],
        checkpoint={stage: step}, config=config, layout="h36m17", description="warm-up lifter",
    )  # fmt: skip


def run(quick: bool, h36m_dir: str = "") -> dict[str, Any]:
    from experiments import common
    from experiments.configs.data import data_config

    steps = QUICK_STEPS if quick else STEPS
    preset = "h36m" if h36m_dir else "cmu"
    dcfg = data_config(preset)
    if h36m_dir:
        dcfg.h36m.dir = h36m_dir
    datasets = common.load_datasets(dcfg)
    train, test_ds = datasets["train_3d"], datasets["test"]
    x, y = train.pose2d_norm, train.pose3d_root_relative
    test = (test_ds.pose2d_norm.astype(np.float32), test_ds.confidence.astype(np.float32),
            test_ds.pose3d_root_relative.astype(np.float64))  # fmt: skip
    rows: dict[int, dict[str, Any]] = {s: {"step": s} for s in steps}
    walls = {}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        ref = train_reference(x, y, test[0], test[2], checkpoints=steps, batch_size=BATCH,
                              width=WIDTH)  # fmt: skip
        walls["reference"] = time.perf_counter() - t0
        for r in ref:
            rows[r["step"]].update(ref_p1=r["p1_mm"], ref_p2=r["p2_mm"])
        base, walls["baseline"] = _jpose_baseline(preset, steps, h36m_dir, tmp, test)
        for s, (p1, p2) in base.items():
            rows[s].update(base_p1=p1, base_p2=p2, base_vs_ref=p1 / rows[s]["ref_p1"])
        cp, walls["camerapose_off"] = _jpose_camerapose_off(preset, steps, h36m_dir, tmp, test)
        for s, (p1, p2) in cp.items():
            rows[s].update(cp_p1=p1, cp_p2=p2, cp_vs_base=p1 / rows[s]["base_p1"])
    table = [rows[s] for s in steps]
    worst = max(r["base_vs_ref"] for r in table)
    cp_dev = max(abs(r["cp_vs_base"] - 1.0) for r in table)
    target_steps = steps[-1] // 2
    ref_final = table[-1]["ref_p1"]
    reach = [r["step"] for r in table if r["base_p1"] <= ref_final]
    return {
        "title": f"Accuracy at equal budget ({'Human3.6M' if h36m_dir else 'CMU'} test, "
        f"batch {BATCH}, width {WIDTH})",
        "columns": [
            "step",
            "ref_p1",
            "ref_p2",
            "base_p1",
            "base_p2",
            "base_vs_ref",
            "cp_p1",
            "cp_p2",
            "cp_vs_base",
        ],  # fmt: skip
        "rows": table,
        "targets": [
            {
                "name": "jpose baseline P1 / plain reference P1, worst checkpoint",
                "target": "<= 1.05",
                "value": worst,
                "met": worst <= 1.05,
            },
            {
                "name": "CameraPose switches off vs baseline, worst |P1 ratio - 1|",
                "target": "<= 0.05",
                "value": cp_dev,
                "met": cp_dev <= 0.05,
            },
            {
                "name": f"baseline step reaching the reference's {steps[-1]}-step P1 "
                f"({ref_final:.1f} mm)",
                "target": f"<= {target_steps}",
                "value": float(min(reach)) if reach else float("nan"),
                "met": bool(reach) and min(reach) <= target_steps,
            },
        ],  # fmt: skip
        "notes": [
            "P1 = MPJPE, P2 = P-MPJPE (similarity Procrustes), mm, frame-wise means over the "
            f"{len(test_ds)} test pairs; all three scored by the same numpy code.",
            "Wall time of each whole training run (compilation and evaluation included): "
            + ", ".join(f"{k} {v:.0f} s" for k, v in walls.items())
            + ".",
            "`ref` = independent plain JAX/Flax/optax lifter (benchmarks/reference_lifter.py); "
            "`base` = experiments.baseline; `cp` = experiments.camerapose with refine, camera "
            "GAN and input noise off.",
        ],
        "walls": walls,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", default="")
    parser.add_argument("--h36m_dir", default="", help="Human3.6M in VideoPose3D's npz format")
    args = parser.parse_args()
    from benchmarks.common import section_markdown

    start = load_average()
    section = run(args.quick, args.h36m_dir)
    section["load"] = (start, load_average())
    if args.json:
        with open(args.json, "w") as f:
            json.dump(section, f, indent=1, default=float)
    print(section_markdown(section))


if __name__ == "__main__":
    main()
