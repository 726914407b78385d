"""End to end: wall time of the README's main command from a fresh process.

Run::

    python -m benchmarks.bench_e2e [--quick]

Runs ``python -m experiments.camerapose --workdir=<fresh tmp dir>`` (the default config: the
embedded synthetic demo, all three stages, evaluation, figures) in a new process and reports its
wall time -- imports, data generation, compilation, training and evaluation included -- with
the per-stage wall times, throughput and first-block (compile-dominated) times the experiment
records in ``results.json`` / ``metrics.jsonl``. ``--quick`` runs the ``smoke`` preset instead.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import tempfile
import time
from typing import Any

from benchmarks.common import main_for

DEFAULT_COMMAND = [sys.executable, "-m", "experiments.camerapose"]


def _first_block_seconds(workdir: pathlib.Path) -> dict[str, float]:
    """Wall time of the first logged block of each stage (includes its compilation), if logged."""
    out: dict[str, float] = {}
    for path in workdir.rglob("*.jsonl"):
        try:
            lines = path.read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            stage = rec.get("stage")
            for key in ("block_wall_s", "wall_s", "elapsed_s"):
                if stage and key in rec and stage not in out:
                    out[stage] = float(rec[key])
    return out


def run(quick: bool = False) -> dict[str, Any]:
    """One fresh-process run of the main command."""
    with tempfile.TemporaryDirectory(prefix="jpose_e2e_") as tmp:
        workdir = pathlib.Path(tmp) / "run"
        cmd = [*DEFAULT_COMMAND, f"--workdir={workdir}"]
        if quick:
            cmd.insert(3, "--config=experiments/configs/camerapose.py:smoke")
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
        wall = time.perf_counter() - t0
        results: dict[str, Any] = {}
        res_path = workdir / "results.json"
        if res_path.exists():
            results = json.loads(res_path.read_text())
        figures = sorted(p.name for p in workdir.rglob("*.png"))
        first = _first_block_seconds(workdir)
    rows = [{"stage": "total (fresh process)", "wall s": wall, "steps": None,
             "samples/s": None, "first block s": None}]  # fmt: skip
    for stage, info in (results.get("stages") or {}).items():
        if isinstance(info, dict):
            rows.append({"stage": stage, "wall s": info.get("wall_s"), "steps": info.get("steps"),
                         "samples/s": info.get("samples_per_s"),
                         "first block s": first.get(stage)})  # fmt: skip
    notes = [
        f"Command: `{' '.join(['python', *cmd[1:]])}` (exit code {proc.returncode}).",
        "The total includes Python start-up and imports, synthetic data generation, compilation "
        "of every stage's fused block and of the evaluation, training, evaluation and figures.",
        f"Figures written: {len(figures)}.",
    ]
    metrics = {k: v for k, v in results.items() if isinstance(v, int | float)}
    if metrics:
        notes.append("Scalar results: " + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
    if proc.returncode:
        notes.append("stderr tail: " + proc.stderr[-500:].replace("\n", " "))
    return {
        "title": "End to end: README main command, fresh process" + (" (smoke)" if quick else ""),
        "columns": ["stage", "wall s", "steps", "samples/s", "first block s"],
        "rows": rows,
        "notes": notes,
        "targets": [],
        "wall_s": wall,
    }


def main() -> None:
    """Command line entry point."""
    main_for(run, __doc__)


if __name__ == "__main__":
    main()
