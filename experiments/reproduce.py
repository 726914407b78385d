r"""Each paper's central claim, measured at equal budget over seeds: ``REPRODUCTION.md``.

::

    python -m experiments.reproduce [--papers=camerapose,drover,li,zhou,wsp] [--seeds=3] \
        [--budget=cpu|quick] [--workdir=reproduce_runs] [--output=REPRODUCTION.md]

Every run is an ordinary work directory (``<workdir>/<paper>/<run>/seed<k>``) trained by the
method's own command (``python -m experiments.<method> --config=... --config.seed=<k>``), so
``python -m experiments.evaluate --workdir=...`` reopens it; a finished run (its
``reproduce.json`` records the same command) is reused, an interrupted one resumes from its last
checkpoint. The command writes ``REPRODUCTION.md`` (per comparison: commands, the
paper's number, the mean +- std over seeds, wall time, verdict) and ``reproduction.json`` beside
it (every seed's numbers, for comparing a later run).

Budgets: ``cpu`` (the table; all comparisons with 3 seeds in well under 2 hours on a 2-core CPU)
and ``quick`` (one seed, each method's ``smoke`` preset on synthetic data, tiny steps: a smoke
test of this command, its numbers mean nothing). Errors are frame-wise means in mm on the test
split of each comparison (CMU mocap seen by virtual cameras, GT 2D).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pathlib
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from absl import flags

from jpose import cli_flags
from jpose.inference.export import git_output

__all__ = ["RUNS", "COMPARISONS", "run_all", "summarize", "write_report", "main"]

CROSS_ACTIONS = "basketball,basketball_signal,directing_traffic,soccer"  # 3D supervision
REFERENCE = "reference"  # the supervised lifter (experiments.baseline), shared by comparisons


@dataclasses.dataclass(frozen=True)
class Run:
    """One training configuration (trained once per seed).

    Attributes:
      paper: comparison it belongs to (``reference`` runs are shared).
      name: run name within the paper.
      experiment: ``experiments.<experiment>`` trains it.
      preset: config argument of ``experiments/configs/<experiment>.py`` for the ``cpu`` budget
        (the ``quick`` budget uses ``quick_preset``).
      overrides: ``--config.<key>=<value>`` of every budget.
      budget: overrides per budget (``{"cpu": {...}, "quick": {...}}``).
      quick_preset: config argument for the ``quick`` budget.
      cpu_only: a longer-budget repeat of another run, not run by the ``quick`` budget.
      rescore_cmu: also score on the supervised reference's CMU test set
        (``experiments.evaluate --dataset=cmu``) when the method builds its own test cameras.
    """

    paper: str
    name: str
    experiment: str
    preset: str
    overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    budget: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    quick_preset: str = "smoke"
    rescore_cmu: bool = False
    cpu_only: bool = False  # a longer-budget repeat: skipped by the quick smoke test

    @property
    def key(self) -> str:
        return f"{self.paper}/{self.name}"

    def command(self, *, budget: str, seed: int, workdir: pathlib.Path) -> list[str]:
        """The training command line."""
        preset = self.quick_preset if budget == "quick" else self.preset
        cfg = f"experiments/configs/{self.experiment}.py" + (f":{preset}" if preset else "")
        items = {**self.overrides, **self.budget.get(budget, {}), "seed": seed}
        return [
            sys.executable,
            "-m",
            f"experiments.{self.experiment}",
            f"--config={cfg}",
            f"--workdir={workdir}",
            *(f"--config.{k}={_flag(v)}" for k, v in items.items()),
        ]


def _flag(value: Any) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, tuple):
        return "(" + ",".join(str(v) for v in value) + ",)"
    return str(value)


_QUICK_LIFTER = {"stages.lifter.steps": 20}
# Drover's GAN is still far from converged at 1,500 steps: it and the supervised reference also
# run at its cmu preset's 4,000 (run-name suffix: steps)
_STEPS = {"": 1500, "_4000": 4000}
_CP_OFF = {"method.refine": False, "method.camera": False, "method.gan": False}
_CP = {"data.cmu_actions_3d": CROSS_ACTIONS}
_CP_BUDGET = {
    "cpu": {
        "stages.stage1.steps": 200,
        "stages.stage2.steps": 100,
        "stages.stage3.steps": 400,
        "train.batch_size": 256,
        "train.batch_size_2d": 256,
        "train.steps_per_block": 50,
    },
    "quick": {"stages.stage1.steps": 2, "stages.stage2.steps": 2, "stages.stage3.steps": 4},
}
# CameraPose on the cross-domain split: full method, every switch off, each component alone;
# diagnosis (*_bn_3d_only, cpu only): the 2D-only (COCO) batches also update batch norm's running
# statistics (PyTorch's train mode); these two rows keep them to the 2D-3D batches
_CP_RUNS = {
    "full": {},
    "switches_off": _CP_OFF,
    "refine_only": {**_CP_OFF, "method.refine": True},
    "camera_only": {**_CP_OFF, "method.camera": True},
    "gan_only": {**_CP_OFF, "method.gan": True},
    "full_bn_3d_only": {"train.weak2d_bn_stats": False},
    "camera_only_bn_3d_only": {**_CP_OFF, "method.camera": True, "train.weak2d_bn_stats": False},
}
_LI_BUDGET = {"cpu": {"stages.pretrain.steps": 150, "stages.train.steps": 600}, "quick": {}}
# Li's variants: run name -> (cmu preset's variant, quick preset)
_LI_RUNS = {
    "reproj": ("reproj", "smoke,reproj"),
    "trans": ("trans", "smoke,trans"),
    "trans_da": ("trans_da", "smoke"),
    "trans_uncalibrated": ("trans,uncalibrated", "smoke,trans,uncalibrated"),
}
_LI = (*_LI_RUNS, "trans_da_2400")

RUNS: tuple[Run, ...] = (
    *(
        Run(
            REFERENCE,
            f"supervised{suffix}",
            "baseline",
            "cmu",
            budget={
                "cpu": {"stages.lifter.steps": steps, "train.batch_size": 256},
                "quick": _QUICK_LIFTER,
            },
            cpu_only=bool(suffix),
        )
        for suffix, steps in _STEPS.items()
    ),
    *(
        Run(
            "camerapose",
            name,
            "camerapose",
            "cmu",
            {**_CP, **overrides},
            _CP_BUDGET,
            cpu_only=name.endswith("_bn_3d_only"),
        )
        for name, overrides in _CP_RUNS.items()
    ),
    *(
        Run(
            "drover",
            f"learned{suffix}",
            "drover",
            "cmu",
            budget={"cpu": {"stages.gan.steps": steps}, "quick": {"stages.gan.steps": 4}},
            cpu_only=bool(suffix),
        )
        for suffix, steps in _STEPS.items()
    ),
    *(
        Run(
            "li",
            name,
            "li",
            f"cmu,{variant}",
            budget=_LI_BUDGET,
            quick_preset=quick,
            rescore_cmu=True,
        )
        for name, (variant, quick) in _LI_RUNS.items()
    ),
    # Li at its cmu preset's schedule (pre-train 300, train 2,400 steps), beside the reference
    # at 4,000 steps
    Run(
        "li",
        "trans_da_2400",
        "li",
        "cmu,trans_da",
        budget={"quick": {}},
        quick_preset="smoke",
        rescore_cmu=True,
        cpu_only=True,
    ),
    Run("zhou", "with_geo", "zhou", "cmu", {"method.ablation": "3d+2d+geo"}),
    Run("zhou", "without_geo", "zhou", "cmu", {"method.ablation": "3d+2d"}),
    Run(
        "wsp",
        "pretrain_vs_scratch",
        "wsp",
        "cmu",
        {"stages.finetune.fractions": (0.01, 0.1, 1.0)},
        budget={"quick": {"stages.finetune.fractions": (0.1, 1.0)}},
    ),
)


# ------------------------------------------------------------------------------------------------
# Running
# ------------------------------------------------------------------------------------------------


def _code() -> str:
    """The checkout's commit, ``-dirty`` with uncommitted changes to tracked files."""
    commit = git_output(".", "rev-parse", "--short", "HEAD") or "unknown"
    return commit + (
        "-dirty" if git_output(".", "status", "--porcelain", "--untracked-files=no") else ""
    )


def _finished(workdir: pathlib.Path, command: Sequence[str]) -> bool:
    done = workdir / "reproduce.json"
    return done.is_file() and json.loads(done.read_text()).get("command") == list(command[1:])


def train(
    run: Run, *, budget: str, seed: int, root: pathlib.Path, log: Callable[[str], None]
) -> dict[str, Any]:
    """Train (or reuse) one run and return ``{"workdir", "command", "wall_s", "results"}``."""
    workdir = root / run.paper / run.name / f"seed{seed}"
    cmd = run.command(budget=budget, seed=seed, workdir=workdir)
    record = workdir / "reproduce.json"
    if _finished(workdir, cmd):
        log(f"  {run.key} seed {seed}: reusing {workdir}")
        return json.loads(record.read_text())
    workdir.mkdir(parents=True, exist_ok=True)
    log(f"  {run.key} seed {seed}: {' '.join(cmd[1:])}")
    t0 = time.perf_counter()
    log_file = workdir.parent / f"seed{seed}.log"
    with open(log_file, "w") as out:
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{run.key} seed {seed} failed (exit {proc.returncode}); see {log_file}")
    if run.rescore_cmu and budget != "quick":
        ev = [sys.executable, "-m", "experiments.evaluate", f"--workdir={workdir}", "--dataset=cmu"]
        with open(log_file, "a") as out:
            subprocess.run(ev, stdout=out, stderr=subprocess.STDOUT, check=True)
    wall = time.perf_counter() - t0
    out = {"command": list(cmd[1:]), "workdir": str(workdir), "wall_s": wall, "code": _code()}
    record.write_text(json.dumps(out, indent=2) + "\n")
    log(f"    done in {wall:.0f} s")
    return out


def _metrics(evaluation: Mapping[str, Any]) -> dict[str, float]:
    m = evaluation["metrics"]
    return {"p1": float(m["mpjpe"]["frame_wise"]), "p2": float(m["p_mpjpe"]["frame_wise"])}


def scores(run: Run, workdir: pathlib.Path) -> dict[str, float]:
    """The numbers a comparison reads from a finished run's ``results.json``."""
    res = json.loads((workdir / "results.json").read_text())
    ev = res["evaluations"]
    out: dict[str, float] = {}
    if run.experiment == "wsp":
        for name, e in ev.items():  # "010pct (N examples), pretrained" / "..., random"
            frac, init = name.split(" ")[0], name.rsplit(", ", 1)[-1]
            for k, v in _metrics(e).items():
                out[f"{frac}_{init}_{k}"] = v
        return out
    out.update(_metrics(ev["test"]))
    if "test (trivial baseline)" in ev:
        out.update({f"trivial_{k}": v for k, v in _metrics(ev["test (trivial baseline)"]).items()})
    noisy = [k for k in ev if k.startswith("test") and "noise" in k]
    if noisy:
        out.update({f"noisy_{k}": v for k, v in _metrics(ev[noisy[0]]).items()})
    for title, table in res.get("tables", {}).items():
        if title.startswith("Left/right bone-length difference"):
            for row, cols in table.items():
                if "held-out 2D-only people" in row:  # COCO val (cmu) / held-out train_2d
                    out["symmetry_heldout"] = float(cols["mean"])
    if run.rescore_cmu:  # on the supervised reference's test set ("quick": the run's own)
        rescored = workdir / "eval" / "cmu" / "results.json"
        ev2 = json.loads(rescored.read_text())["evaluations"] if rescored.is_file() else ev
        out.update({f"ref_{k}": v for k, v in _metrics(next(iter(ev2.values()))).items()})
    return out


def run_all(
    papers: Sequence[str],
    *,
    seeds: int,
    budget: str,
    root: pathlib.Path,
    log: Callable[[str], None] = print,
    on_update: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train every run the chosen comparisons need, over ``seeds`` seeds (a failed run is
    recorded with its error and the others go on; ``on_update(results)`` after every run, e.g. to
    rewrite the report as runs finish).

    Returns:
      ``{run key: {"runs": [per-seed record with "scores"], ...}}``.
    """
    needed = [
        r
        for r in RUNS
        if r.paper in papers
        or (
            r.paper == REFERENCE
            and any(c.needs_reference for c in COMPARISONS if c.paper in papers)
        )
    ]
    needed = [r for r in needed if not (r.cpu_only and budget == "quick")]
    order = {name: i for i, name in enumerate([REFERENCE, *papers])}
    needed.sort(key=lambda r: order[r.paper])
    out: dict[str, Any] = {}
    for run in needed:
        log(f"{run.key} ({seeds} seed{'s' * (seeds > 1)})")
        out[run.key] = {"experiment": run.experiment, "runs": []}
        for seed in range(seeds):
            try:
                rec = train(run, budget=budget, seed=seed, root=root, log=log)
                rec["scores"] = scores(run, pathlib.Path(rec["workdir"]))
            except (RuntimeError, OSError, KeyError, subprocess.CalledProcessError) as err:
                log(f"    FAILED: {err}")  # reported in the table, the other runs go on
                cmd = run.command(budget=budget, seed=seed, workdir=root / "failed")
                rec = {"failed": str(err), "wall_s": 0.0, "scores": {}, "command": cmd[1:]}
            out[run.key]["runs"].append(rec)
            if on_update is not None:
                on_update(out)
    return out


# ------------------------------------------------------------------------------------------------
# Comparisons
# ------------------------------------------------------------------------------------------------


def _stat(results: Mapping[str, Any], key: str, metric: str) -> tuple[float, float, list[float]]:
    runs = results[key]["runs"] if key in results else []
    vals = [r["scores"][metric] for r in runs if metric in r["scores"]]
    if not vals:
        return math.nan, math.nan, []
    mean = sum(vals) / len(vals)
    std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else 0.0
    return mean, std, vals


_DIGITS = {"symmetry_heldout": 4}  # units of the 2D scale s, not mm


def _fmt(results: Mapping[str, Any], key: str, metric: str) -> str:
    digits = _DIGITS.get(metric, 1)
    mean, std, vals = _stat(results, key, metric)
    if not vals:
        return "n/a"
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if len(vals) > 1 else f"{mean:.{digits}f}"


def _wall(results: Mapping[str, Any], key: str) -> str:
    walls = [r["wall_s"] for r in results[key]["runs"] if "failed" not in r]
    failed = len(results[key]["runs"]) - len(walls)
    if not walls:
        return f"failed ({failed} of {failed})"
    if failed:
        return f"{sum(walls) / len(walls) / 60:.1f} min ({failed} failed)"
    return f"{sum(walls) / len(walls) / 60:.1f} min"


def _lower(results: Mapping[str, Any], a: str, b: str, metric: str, ma: str | None = None) -> str:
    """Verdict on "a has a lower ``metric`` than b": beyond the seeds' spread, direction only, or
    not (means and standard deviations over seeds)."""
    (m1, s1, v1), (m2, s2, v2) = _stat(results, a, ma or metric), _stat(results, b, metric)
    if not v1 or not v2:
        return "not measured"
    if m1 < m2 - max(s1, s2, 1e-9) and len(v1) > 1:
        return "reproduces"
    if m1 < m2:
        return "direction only (within the seeds' spread)" if len(v1) > 1 else "direction only"
    return "does not reproduce at this budget"


def _row(r: Mapping[str, Any], key: str, label: str, metrics: Sequence[str]) -> tuple[str, ...]:
    """A table row: the label, each metric's mean ± std over seeds, wall time per seed."""
    return (label, *(_fmt(r, key, m) for m in metrics), _wall(r, key))


def _rows(
    r: Mapping[str, Any], paper: str, names: Sequence[str], metrics: Sequence[str]
) -> list[tuple[str, ...]]:
    """:func:`_row` of every run of ``paper`` in ``names`` that ``r`` holds."""
    return [_row(r, f"{paper}/{n}", n, metrics) for n in names if f"{paper}/{n}" in r]


def _met(ratio: float, target: float) -> str:
    return "met" if ratio <= target else "not met"


@dataclasses.dataclass(frozen=True)
class Comparison:
    """One paper's claim: the runs it compares and how its table and verdict are made."""

    paper: str
    title: str
    claim: str
    rows: Callable[[Mapping[str, Any]], list[tuple[str, ...]]]
    header: tuple[str, ...]
    verdict: Callable[[Mapping[str, Any]], str]
    needs_reference: bool = False


def _cp_rows(r: Mapping[str, Any]) -> list[tuple[str, ...]]:
    return _rows(r, "camerapose", list(_CP_RUNS), ("p1", "p2", "noisy_p2"))


def _cp_verdict(r: Mapping[str, Any]) -> str:
    parts = [
        f"full vs switches off, {m}: " + _lower(r, "camerapose/full", "camerapose/switches_off", m)
        for m in ("p2", "noisy_p2")
    ]
    if "camerapose/full_bn_3d_only" in r:
        parts.append(
            "with batch-norm statistics from the 2D-3D batches only, full vs switches off, p2: "
            + _lower(r, "camerapose/full_bn_3d_only", "camerapose/switches_off", "p2")
        )
    return "; ".join(parts)


def _ratio(r: Mapping[str, Any], a: str, ma: str, b: str, mb: str) -> float:
    return _stat(r, a, ma)[0] / _stat(r, b, mb)[0]


def _drover_runs(r: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """``(steps, learned run, supervised reference run)`` of the Drover runs ``r`` holds."""
    return [
        (f"{steps:,}", f"drover/learned{suffix}", f"{REFERENCE}/supervised{suffix}")
        for suffix, steps in _STEPS.items()
        if f"drover/learned{suffix}" in r
    ]


def _drover_rows(r: Mapping[str, Any]) -> list[tuple[str, ...]]:
    rows = []
    for steps, learned, ref in _drover_runs(r):
        rows += [
            _row(r, learned, f"learned (Drover), {steps} steps", ["p2"]),
            ("trivial (constant depth)", _fmt(r, learned, "trivial_p2"), "-"),
            _row(r, ref, f"supervised reference, {steps} steps", ["p2"]),
        ]
    return rows


def _drover_verdict(r: Mapping[str, Any]) -> str:
    parts = []
    for steps, learned, ref in _drover_runs(r):
        ratio = _ratio(r, learned, "p2", ref, "p2")
        trivial = _lower(r, learned, learned, "trivial_p2", "p2")
        parts.append(
            f"{steps} steps: P2 ratio learned / supervised = {ratio:.2f} (target ≤ 1.3): "
            f"{_met(ratio, 1.3)}; learned below trivial: {trivial}"
        )
    return "; ".join(parts) + " (paper: 38.2 / 37.1 = 1.03)"


def _li_rows(r: Mapping[str, Any]) -> list[tuple[str, ...]]:
    rows = _rows(r, "li", _LI, ("ref_p1", "ref_p2"))
    rows.append(_row(r, f"{REFERENCE}/supervised", "supervised reference", ("p1", "p2")))
    if "li/trans_da_2400" in r:
        rows.append(
            _row(
                r, f"{REFERENCE}/supervised_4000", "supervised reference, 4,000 steps", ("p1", "p2")
            )
        )
    return rows


def _li_verdict(r: Mapping[str, Any]) -> str:
    ratio = _ratio(r, "li/trans_da", "ref_p2", f"{REFERENCE}/supervised", "p2")
    order = [_stat(r, f"li/{n}", "ref_p2")[0] for n in ("reproj", "trans", "trans_da")]
    ordered = order[0] > order[1] > order[2]
    text = (
        f"P2 ratio Trans_Reproj+DA / supervised = {ratio:.2f} (target ≤ 1.5): "
        f"{_met(ratio, 1.5)}; Table 1 ordering Reproj > Trans_Reproj > "
        f"+DA: {'reproduces' if ordered else 'does not reproduce'} "
        f"({' > '.join(f'{v:.1f}' for v in order)} mm P2); uncalibrated vs calibrated "
        f"(Trans_Reproj): {_fmt(r, 'li/trans_uncalibrated', 'ref_p2')} vs "
        f"{_fmt(r, 'li/trans', 'ref_p2')} mm P2"
    )
    if "li/trans_da_2400" in r:
        ratio = _ratio(r, "li/trans_da_2400", "ref_p2", f"{REFERENCE}/supervised_4000", "p2")
        text += (
            f"; at the preset's schedule (2,400 steps) vs the reference at 4,000: P2 ratio "
            f"{ratio:.2f} ({_met(ratio, 1.5)})"
        )
    return text


def _zhou_rows(r: Mapping[str, Any]) -> list[tuple[str, ...]]:
    return _rows(r, "zhou", ("with_geo", "without_geo"), ("symmetry_heldout", "p1", "p2"))


def _zhou_verdict(r: Mapping[str, Any]) -> str:
    sym = _lower(r, "zhou/with_geo", "zhou/without_geo", "symmetry_heldout")
    p1 = _lower(r, "zhou/with_geo", "zhou/without_geo", "p1")
    return f"geometric loss lowers held-out symmetry error: {sym}; lowers MPJPE: {p1}"


_WSP = "wsp/pretrain_vs_scratch"


def _fractions(r: Mapping[str, Any]) -> list[str]:
    """The label fractions of the WSP run (``"001pct"``, ...)."""
    return sorted({k.split("_")[0] for k in r[_WSP]["runs"][0]["scores"]})


def _wsp_rows(r: Mapping[str, Any]) -> list[tuple[str, ...]]:
    if _WSP not in r:
        return []
    metrics = ("pretrained_p1", "random_p1", "pretrained_p2", "random_p2")
    return [
        (f"{int(f.rstrip('pct'))} %", *(_fmt(r, _WSP, f"{f}_{m}") for m in metrics))
        for f in _fractions(r)
    ]


def _wsp_verdict(r: Mapping[str, Any]) -> str:
    parts = []
    for f in _fractions(r):
        pre, scr = _stat(r, _WSP, f"{f}_pretrained_p1"), _stat(r, _WSP, f"{f}_random_p1")
        spread = max(pre[1], scr[1])
        word = (
            "reproduces"
            if pre[0] < scr[0] - spread and len(pre[2]) > 1
            else "direction only"
            if pre[0] < scr[0]
            else "does not reproduce"
        )
        parts.append(f"{int(f.rstrip('pct'))} %: {word}")
    return "pre-training beats scratch (P1) — " + "; ".join(parts)


COMPARISONS: tuple[Comparison, ...] = (
    Comparison(
        "camerapose",
        "CameraPose (Yang et al. WACV 2023): cross-domain gain of the full method",
        "Table 4: trained on Human3.6M (+ MPII 2D), the full method is 3 mm PA-MPJPE better than "
        "the baseline on 3DPW (63.26 vs 66.27 mm, Gong et al. as baseline), i.e. a cross-dataset "
        "gain. Here: 3D supervision from the CMU actions "
        + CROSS_ACTIONS.replace(",", ", ")
        + "; test on the held-out actions (jumping, running, walking, washwindow); COCO train2017 "
        "2D-only in pixels. The lifter is trained and tested on the same inputs in every row "
        "(CameraPose's detection-noise model on; test with GT 2D and with simulated detections). "
        "Diagnosis rows `*_bn_3d_only`: batch norm's running statistics from the 2D-3D batches "
        "only (`train.weak2d_bn_stats=False`; by default the COCO 2D-only batches update them "
        "too, as PyTorch's train mode does).",
        _cp_rows,
        ("run", "P1 (GT 2D)", "P2 (GT 2D)", "P2 (noisy 2D)", "wall / seed"),
        _cp_verdict,
    ),
    Comparison(
        "drover",
        "Drover et al. (ECCV-W 2018): 3D from 2D projections only",
        "Table 6 (Human3.6M, GT 2D, Protocol 2): 38.2 mm learned vs 37.1 mm supervised "
        "(Martinez et al.); trivial constant-depth baseline 127.3 mm (Sec. 4). Here: CMU train "
        "split 2D only (no 3D), CMU test split, P2 (frame-wise).",
        _drover_rows,
        ("run", "P2", "wall / seed"),
        _drover_verdict,
        needs_reference=True,
    ),
    Comparison(
        "li",
        "Li et al. (AAAI 2020): self-supervised multi-view lifting",
        "Table 1 (Human3.6M, CPN 2D): P1 / P2 Reproj 468.5 / 163.7, Trans_Reproj 59.0 / 45.7, "
        "Trans_Reproj+DA 57.0 / 44.1 mm; the paper gives the uncalibrated variant (estimated "
        "extrinsics, Sec. 3.3) no number. Here: CMU train split seen by a static 4-camera rig per "
        "sequence (+8 virtual cameras for +DA), 2D only; every run is scored on the supervised "
        "reference's CMU test set (`experiments.evaluate --dataset=cmu`).",
        _li_rows,
        ("run", "P1", "P2", "wall / seed"),
        _li_verdict,
        needs_reference=True,
    ),
    Comparison(
        "zhou",
        "Zhou et al. (ICCV 2017): the geometric (bone-length ratio) loss",
        "Table 4 (bottom, MPII validation): left/right bone-length difference without / with the "
        "geometric loss 6.27 / 4.80 px (upper arm), 10.11 / 6.64 (lower arm), 6.89 / 4.93 (upper "
        "leg), 8.03 / 6.22 (lower leg); mean 7.83 / 5.65 px. Here: CMU 3D + COCO train2017 2D; "
        "symmetry error on held-out COCO people (mean over bone pairs, units of the 2D scale s); "
        "MPJPE on the CMU test split.",
        _zhou_rows,
        ("run", "symmetry (held-out 2D)", "P1", "P2", "wall / seed"),
        _zhou_verdict,
    ),
    Comparison(
        "wsp",
        "WSP (Qiu et al.): relative-depth pre-training vs training from scratch",
        "Table 4 (Human3.6M, 100 % of the labels, ResNet-50 images): 54.3 mm with relative-depth "
        "pre-training vs 67.5 mm without (PoseNet). The paper reports no label fractions; the "
        "issue asks for 1 %, 10 % and 100 %. Here: keypoint lifter, pairs from COCO train2017, "
        "fine-tuned on that fraction of the CMU train split, CMU test split.",
        _wsp_rows,
        ("3D labels", "P1 pre-trained", "P1 scratch", "P2 pre-trained", "P2 scratch"),
        _wsp_verdict,
    ),
)


def summarize(results: Mapping[str, Any], papers: Sequence[str]) -> list[dict[str, Any]]:
    """Per comparison: title, claim, table rows and verdict."""
    out = []
    for c in COMPARISONS:
        if c.paper not in papers:
            continue
        try:
            rows, verdict = c.rows(results), c.verdict(results)
        except (KeyError, ZeroDivisionError, ValueError) as err:
            rows, verdict = [], f"not measured ({type(err).__name__}: {err})"
        out.append(
            {
                "paper": c.paper,
                "title": c.title,
                "claim": c.claim,
                "header": c.header,
                "rows": rows,
                "verdict": verdict,
                "needs_reference": c.needs_reference,
            }
        )
    return out


def write_report(
    results: Mapping[str, Any],
    papers: Sequence[str],
    *,
    budget: str,
    seeds: int,
    output: pathlib.Path,
    wall_s: float,
) -> tuple[pathlib.Path, pathlib.Path]:
    """Write ``output`` (markdown) and ``<output stem lower-cased>.json`` beside it."""
    summary = summarize(results, papers)
    commit = _code()
    trained = sorted({r.get("code", "unrecorded") for e in results.values() for r in e["runs"]})
    lines = [
        "# Reproduction: each paper's claim at equal budget, over seeds",
        "",
        f"Produced by `python -m experiments.reproduce --budget={budget} --seeds={seeds} "
        f"--papers={','.join(papers)}` on commit {commit} (runs trained by "
        f"{', '.join(trained)}), {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPU cores; "
        f"total training wall time {wall_s / 60:.0f} min (a run reused from an earlier invocation "
        "counts with its original wall time). Numbers: mean ± std over "
        f"{seeds} seed(s) (training seed; same data), frame-wise means in mm; per-seed numbers in "
        f"`{output.with_suffix('.json').name.lower()}`. Every run is a work directory that "
        "`python -m experiments.evaluate --workdir=...` reopens.",
        "",
    ]
    if budget == "quick":
        lines += [
            "**Quick budget: smoke presets on synthetic data; the numbers mean nothing.**",
            "",
        ]
    for s in summary:
        lines += [
            f"## {s['title']}",
            "",
            f"**Paper's claim.** {s['claim']}",
            "",
            "| " + " | ".join(s["header"]) + " |",
            "|" + "---|" * len(s["header"]),
        ]
        lines += ["| " + " | ".join(row) + " |" for row in s["rows"]]
        lines += ["", f"**Verdict.** {s['verdict']}", "", "Commands (seed 0):", ""]
        for key, entry in results.items():
            if key.split("/")[0] == s["paper"] or (
                key.split("/")[0] == REFERENCE and s["needs_reference"]
            ):
                lines.append(f"    python {' '.join(entry['runs'][0]['command'])}")
        lines.append("")
    output.write_text("\n".join(lines))
    js = output.with_name(output.stem.lower() + ".json")
    js.write_text(
        json.dumps(
            {
                "budget": budget,
                "seeds": seeds,
                "commit": commit,
                "wall_s": wall_s,
                "runs": results,
                "comparisons": summary,
            },
            indent=1,
        )
        + "\n"
    )
    return output, js


PROG = "python -m experiments.reproduce"


def _define(fv: flags.FlagValues) -> None:
    papers = ",".join(c.paper for c in COMPARISONS)
    flags.DEFINE_string("papers", papers, f"comma-separated subset of {papers}", flag_values=fv)
    flags.DEFINE_integer("seeds", 3, "training seeds per run", flag_values=fv)
    flags.DEFINE_enum("budget", "cpu", ("cpu", "quick"), "run budget", flag_values=fv)
    flags.DEFINE_bool("quick", False, "= --budget=quick --seeds=1", flag_values=fv)
    flags.DEFINE_string("workdir", "reproduce_runs", "root of the runs' work directories",
                        flag_values=fv)  # fmt: skip
    flags.DEFINE_string("output", "REPRODUCTION.md", "the report (and reproduction.json beside it)",
                        flag_values=fv)  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    args = cli_flags.parse(PROG, _define, argv, description=__doc__ or "")
    budget, seeds = ("quick", 1) if args.quick else (args.budget, args.seeds)
    papers = [x.strip() for x in args.papers.split(",") if x.strip()]
    known = [c.paper for c in COMPARISONS]
    bad = [x for x in papers if x not in known]
    if bad or not papers:
        cli_flags.usage_error(PROG, f"unknown paper(s) {bad}; expected a subset of {known}")
    if seeds < 1:
        cli_flags.usage_error(PROG, "--seeds must be >= 1")
    t0 = time.perf_counter()
    root, output = pathlib.Path(args.workdir), pathlib.Path(args.output)

    def report(results: dict[str, Any]) -> tuple[pathlib.Path, pathlib.Path]:
        wall = sum(r["wall_s"] for e in results.values() for r in e["runs"])
        return write_report(results, papers, budget=budget, seeds=seeds, output=output, wall_s=wall)

    results = run_all(papers, seeds=seeds, budget=budget, root=root, on_update=report)
    md, js = report(results)
    print(f"wrote {md} and {js} ({(time.perf_counter() - t0) / 60:.1f} min this invocation)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
