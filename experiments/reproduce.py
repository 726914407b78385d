r"""Each paper's central claim, measured at equal budget over seeds: ``REPRODUCTION.md``.

::

    python -m experiments.reproduce [--papers=camerapose,drover,li,zhou,wsp] [--seeds=3] \
        [--budget=cpu|quick] [--workdir=reproduce_runs] [--output=REPRODUCTION.md]

Every run is an ordinary work directory (``<workdir>/<paper>/<run>/seed<k>``) trained by the
method's own command (``python -m experiments.<method> --config=... --config.seed=<k>``), so
``python -m experiments.evaluate --workdir=...`` reopens it; a finished run (its
``reproduce.json`` records the same commands) is reused, an interrupted one resumes from its last
checkpoint. The command writes ``REPRODUCTION.md`` (per comparison: commands, the paper's
number, the mean +- std over seeds, wall time, verdict) and ``reproduction.json`` beside it
(every seed's numbers, for comparing a later run).

Budgets: ``cpu`` (the table; all comparisons with 3 seeds in well under 2 hours on a 2-core CPU)
and ``quick`` (one seed, each method's ``smoke`` preset on synthetic data, tiny steps: a smoke
test of this command, its numbers mean nothing). Errors are frame-wise means in mm on the test
split of each comparison (CMU mocap seen by virtual cameras, GT 2D).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import pathlib
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from absl import flags

from jpose import cli_flags
from jpose.training import sweep

__all__ = ["RUNS", "COMPARISONS", "run_all", "summarize", "write_report", "main"]

CROSS_ACTIONS = "basketball,basketball_signal,directing_traffic,soccer"  # 3D supervision
REFERENCE = "reference"  # the supervised lifter (experiments.baseline), shared by comparisons
SUPERVISED = f"{REFERENCE}/supervised"
Results = Mapping[str, Any]  # {run key: {"experiment", "runs": [per-seed record]}}
Row = tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Run:
    """One training configuration, trained once per seed."""

    paper: str  # the comparison it belongs to (``reference`` runs are shared)
    name: str  # run name within the paper
    experiment: str  # experiments.<experiment> trains it
    overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # of every budget
    budget: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)  # per budget
    preset: str = "cmu"  # config argument of experiments/configs/<experiment>.py, cpu budget
    quick_preset: str = "smoke"  # config argument for the quick budget
    # also score on the supervised reference's CMU test set (experiments.evaluate --dataset=cmu)
    # when the method builds its own test cameras
    rescore_cmu: bool = False
    cpu_only: bool = False  # a longer-budget repeat of another run: skipped by the quick budget

    @property
    def key(self) -> str:
        """``<paper>/<name>``: the run's key in the results and its work directory's path."""
        return f"{self.paper}/{self.name}"

    def command(self, *, budget: str, seed: int, workdir: pathlib.Path) -> list[str]:
        """The training command line (``--config.<key>=<value>`` per override)."""
        preset = self.quick_preset if budget == "quick" else self.preset
        cfg = f"experiments/configs/{self.experiment}.py" + (f":{preset}" if preset else "")
        items = {**self.overrides, **self.budget.get(budget, {}), "seed": seed}
        overrides = [f"--config.{k}={_flag(v)}" for k, v in items.items()]
        program = [sys.executable, "-m", f"experiments.{self.experiment}"]
        return [*program, f"--config={cfg}", f"--workdir={workdir}", *overrides]


def _flag(value: Any) -> str:
    return "(" + ",".join(map(str, value)) + ",)" if isinstance(value, tuple) else str(value)


# Drover's GAN is still far from converged at 1,500 steps: it and the supervised reference also
# run at its cmu preset's 4,000 (run-name suffix: steps)
_STEPS = {"": 1500, "_4000": 4000}


def _with_repeat(run: Run, field: str, quick: int) -> list[Run]:
    """``run`` at each of ``_STEPS`` (``field``: the config field of the steps)."""
    cpu = run.budget.get("cpu", {})
    budgets = {s: {"cpu": {field: n, **cpu}, "quick": {field: quick}} for s, n in _STEPS.items()}
    return [
        dataclasses.replace(run, name=run.name + s, budget=b, cpu_only=bool(s))
        for s, b in budgets.items()
    ]


_LIFTER, _BATCH_256 = "stages.lifter.steps", {"cpu": {"train.batch_size": 256}}
_CP_OFF = {"method.refine": False, "method.camera": False, "method.gan": False}
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
_CP = {"data.cmu_actions_3d": CROSS_ACTIONS}
_FRACTIONS = "stages.finetune.fractions"  # WSP's label fractions
_WSP_BUDGET = {"quick": {_FRACTIONS: (0.1, 1.0)}}
_LI_BUDGET = {"cpu": {"stages.pretrain.steps": 150, "stages.train.steps": 600}}
# Li's variants: run name -> (cmu preset's variant, quick preset)
_LI_RUNS = {
    "reproj": ("reproj", "smoke,reproj"),
    "trans": ("trans", "smoke,trans"),
    "trans_da": ("trans_da", "smoke"),
    "trans_uncalibrated": ("trans,uncalibrated", "smoke,trans,uncalibrated"),
}

RUNS: tuple[Run, ...] = (
    *_with_repeat(Run(REFERENCE, "supervised", "baseline", budget=_BATCH_256), _LIFTER, 20),
    *(
        Run("camerapose", n, "camerapose", {**_CP, **o}, _CP_BUDGET, cpu_only="_bn_" in n)
        for n, o in _CP_RUNS.items()
    ),
    *_with_repeat(Run("drover", "learned", "drover"), "stages.gan.steps", 4),
    *(
        Run("li", n, "li", {}, _LI_BUDGET, f"cmu,{v}", quick_preset=q, rescore_cmu=True)
        for n, (v, q) in _LI_RUNS.items()
    ),
    # Li at its cmu preset's schedule (pre-train 300, train 2,400 steps), beside the reference
    # at 4,000 steps
    Run("li", "trans_da_2400", "li", preset="cmu,trans_da", rescore_cmu=True, cpu_only=True),
    Run("zhou", "with_geo", "zhou", {"method.ablation": "3d+2d+geo"}),
    Run("zhou", "without_geo", "zhou", {"method.ablation": "3d+2d"}),
    Run("wsp", "pretrain_vs_scratch", "wsp", {_FRACTIONS: (0.01, 0.1, 1.0)}, _WSP_BUDGET),
)


def _metrics(evaluation: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    m = evaluation["metrics"]
    p1, p2 = m["mpjpe"]["frame_wise"], m["p_mpjpe"]["frame_wise"]
    return {f"{prefix}p1": float(p1), f"{prefix}p2": float(p2)}


def scores(run: Run, workdir: pathlib.Path) -> dict[str, float]:
    """The numbers a comparison reads from a finished run's ``results.json``."""
    res = json.loads((workdir / "results.json").read_text())
    ev = res["evaluations"]
    out: dict[str, float] = {}
    if run.experiment == "wsp":
        for name, e in ev.items():  # "010pct (N examples), pretrained" / "..., random"
            frac, init = name.split(" ")[0], name.rsplit(", ", 1)[-1]
            out.update(_metrics(e, f"{frac}_{init}_"))
        return out
    out.update(_metrics(ev["test"]))
    if "test (trivial baseline)" in ev:
        out.update(_metrics(ev["test (trivial baseline)"], "trivial_"))
    noisy = [k for k in ev if k.startswith("test") and "noise" in k]
    if noisy:
        out.update(_metrics(ev[noisy[0]], "noisy_"))
    for title, table in res.get("tables", {}).items():
        if title.startswith("Left/right bone-length difference"):
            for row, cols in table.items():
                if "held-out 2D-only people" in row:  # COCO val (cmu) / held-out train_2d
                    out["symmetry_heldout"] = float(cols["mean"])
    if run.rescore_cmu:  # on the supervised reference's test set ("quick": the run's own)
        rescored = workdir / "eval" / "cmu" / "results.json"
        ev2 = json.loads(rescored.read_text())["evaluations"] if rescored.is_file() else ev
        out.update(_metrics(next(iter(ev2.values())), "ref_"))
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
    """Train (or reuse) every run the chosen comparisons need over ``seeds`` seeds
    (:func:`jpose.training.sweep.run_seed`; a failed run is recorded, the others go on) and
    return ``{run key: {"experiment", "runs": [per-seed record]}}``; ``on_update(results)`` after
    every run, e.g. to rewrite the report as runs finish."""
    reference = any(c.needs_reference for c in COMPARISONS if c.paper in papers)
    needed = [r for r in RUNS if r.paper in papers or (r.paper == REFERENCE and reference)]
    order = [REFERENCE, *papers]
    out: dict[str, Any] = {}
    for run in sorted(needed, key=lambda r: order.index(r.paper)):
        if run.cpu_only and budget == "quick":
            continue
        log(f"{run.key} ({seeds} seed{'s' * (seeds > 1)})")
        out[run.key] = {"experiment": run.experiment, "runs": []}
        train = functools.partial(sweep.run_seed, score=functools.partial(scores, run), log=log)
        for seed in range(seeds):
            wd = root / run.paper / run.name / f"seed{seed}"
            ev = [sys.executable, "-m", "experiments.evaluate", f"--workdir={wd}", "--dataset=cmu"]
            then = [ev] if run.rescore_cmu and budget != "quick" else []
            cmd = run.command(budget=budget, seed=seed, workdir=wd)
            rec = train(cmd, workdir=wd, label=f"{run.key} seed {seed}", then=then)
            out[run.key]["runs"].append(rec)
            if on_update is not None:
                on_update(out)
    return out


def _values(r: Results, key: str, metric: str) -> list[float]:
    """``metric`` of each seed of run ``key`` that has it."""
    return [x["scores"][metric] for x in r.get(key, {"runs": []})["runs"] if metric in x["scores"]]


def _mean(r: Results, key: str, metric: str) -> float:
    return sweep.mean_std(_values(r, key, metric))[0]


def _fmt(r: Results, key: str, metric: str) -> str:
    digits = 4 if metric == "symmetry_heldout" else 1  # units of the 2D scale s, not mm
    return sweep.format_mean_std(_values(r, key, metric), digits=digits)


def _row(r: Results, key: str, label: str, metrics: Sequence[str]) -> Row:
    """A table row: the label, each metric's mean ± std over seeds, wall time per seed."""
    return (label, *(_fmt(r, key, m) for m in metrics), sweep.format_wall(r[key]["runs"]))


def _rows(r: Results, paper: str, names: Sequence[str], metrics: Sequence[str]) -> list[Row]:
    """:func:`_row` of every run of ``paper`` in ``names`` that ``r`` holds."""
    return [_row(r, f"{paper}/{n}", n, metrics) for n in names if f"{paper}/{n}" in r]


def _lower(r: Results, a: str, b: str, metric: str, ma: str | None = None) -> str:
    """:func:`jpose.training.sweep.lower_verdict` of run ``a``'s ``ma`` (default ``metric``) and
    run ``b``'s ``metric``, with its qualifiers."""
    va = _values(r, a, ma or metric)
    word = sweep.lower_verdict(va, _values(r, b, metric))
    if word == "direction only" and len(va) > 1:
        return f"{word} (within the seeds' spread)"
    return f"{word} at this budget" if word == "does not reproduce" else word


def _ratio(r: Results, a: str, ma: str, b: str, mb: str, target: float) -> tuple[float, str]:
    """Run ``a``'s mean ``ma`` over run ``b``'s mean ``mb``, and "met" when at most ``target``."""
    ratio = _mean(r, a, ma) / _mean(r, b, mb)
    return ratio, "met" if ratio <= target else "not met"


# Each comparison's table rows and verdict, from {run key: {"runs": [per-seed record]}}


def _camerapose(r: Results) -> tuple[list[Row], str]:
    rows = _rows(r, "camerapose", list(_CP_RUNS), ("p1", "p2", "noisy_p2"))
    claims = [(f"full vs switches off, {m}", "full", m) for m in ("p2", "noisy_p2")]
    if "camerapose/full_bn_3d_only" in r:
        text = "with batch-norm statistics from the 2D-3D batches only, full vs switches off, p2"
        claims.append((text, "full_bn_3d_only", "p2"))
    off = "camerapose/switches_off"
    return rows, "; ".join(f"{t}: {_lower(r, f'camerapose/{a}', off, m)}" for t, a, m in claims)


def _drover(r: Results) -> tuple[list[Row], str]:
    rows, parts = [], []
    for s, n in _STEPS.items():
        learned, ref, steps = f"drover/learned{s}", f"{SUPERVISED}{s}", f"{n:,}"
        if learned not in r:
            continue
        rows += [
            _row(r, learned, f"learned (Drover), {steps} steps", ["p2"]),
            ("trivial (constant depth)", _fmt(r, learned, "trivial_p2"), "-"),
            _row(r, ref, f"supervised reference, {steps} steps", ["p2"]),
        ]
        ratio, met = _ratio(r, learned, "p2", ref, "p2", 1.3)
        trivial = _lower(r, learned, learned, "trivial_p2", "p2")
        parts.append(
            f"{steps} steps: P2 ratio learned / supervised = {ratio:.2f} (target ≤ 1.3): {met}; "
            f"learned below trivial: {trivial}"
        )
    return rows, "; ".join(parts) + " (paper: 38.2 / 37.1 = 1.03)"


def _li(r: Results) -> tuple[list[Row], str]:
    rows = _rows(r, "li", [*_LI_RUNS, "trans_da_2400"], ("ref_p1", "ref_p2"))
    rows.append(_row(r, SUPERVISED, "supervised reference", ("p1", "p2")))
    repeat, label = "li/trans_da_2400" in r, "supervised reference, 4,000 steps"
    if repeat:
        rows.append(_row(r, f"{SUPERVISED}_4000", label, ("p1", "p2")))
    ratio, met = _ratio(r, "li/trans_da", "ref_p2", SUPERVISED, "p2", 1.5)
    order = [_mean(r, f"li/{n}", "ref_p2") for n in ("reproj", "trans", "trans_da")]
    text = (
        f"P2 ratio Trans_Reproj+DA / supervised = {ratio:.2f} (target ≤ 1.5): {met}; Table 1 "
        "ordering Reproj > Trans_Reproj > +DA: "
        f"{'reproduces' if order[0] > order[1] > order[2] else 'does not reproduce'} "
        f"({' > '.join(f'{v:.1f}' for v in order)} mm P2); uncalibrated vs calibrated "
        f"(Trans_Reproj): {_fmt(r, 'li/trans_uncalibrated', 'ref_p2')} vs "
        f"{_fmt(r, 'li/trans', 'ref_p2')} mm P2"
    )
    if repeat:
        ratio, met = _ratio(r, "li/trans_da_2400", "ref_p2", f"{SUPERVISED}_4000", "p2", 1.5)
        text += (
            f"; at the preset's schedule (2,400 steps) vs the reference at 4,000: P2 ratio "
            f"{ratio:.2f} ({met})"
        )
    return rows, text


def _zhou(r: Results) -> tuple[list[Row], str]:
    rows = _rows(r, "zhou", ("with_geo", "without_geo"), ("symmetry_heldout", "p1", "p2"))
    sym = _lower(r, "zhou/with_geo", "zhou/without_geo", "symmetry_heldout")
    p1 = _lower(r, "zhou/with_geo", "zhou/without_geo", "p1")
    return rows, f"geometric loss lowers held-out symmetry error: {sym}; lowers MPJPE: {p1}"


def _wsp(r: Results) -> tuple[list[Row], str]:
    run = "wsp/pretrain_vs_scratch"
    rows, words = [], []
    for f in sorted({k.split("_")[0] for x in r[run]["runs"] for k in x["scores"]}):  # "001pct"
        label, (pre, scratch) = f"{int(f.rstrip('pct'))} %", (f"{f}_pretrained", f"{f}_random")
        metrics = (f"{pre}_p1", f"{scratch}_p1", f"{pre}_p2", f"{scratch}_p2")
        rows.append((label, *(_fmt(r, run, m) for m in metrics)))
        pre_p1, scratch_p1 = _values(r, run, f"{pre}_p1"), _values(r, run, f"{scratch}_p1")
        words.append(f"{label}: {sweep.lower_verdict(pre_p1, scratch_p1)}")
    return rows, "pre-training beats scratch (P1) — " + "; ".join(words)


@dataclasses.dataclass(frozen=True)
class Comparison:
    """One paper's claim: the runs it compares and how its table and verdict are made."""

    paper: str
    title: str
    claim: str
    header: tuple[str, ...]
    measure: Callable[[Results], tuple[list[Row], str]]  # results -> (table rows, verdict)
    needs_reference: bool = False


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
        ("run", "P1 (GT 2D)", "P2 (GT 2D)", "P2 (noisy 2D)", "wall / seed"),
        _camerapose,
    ),
    Comparison(
        "drover",
        "Drover et al. (ECCV-W 2018): 3D from 2D projections only",
        "Table 6 (Human3.6M, GT 2D, Protocol 2): 38.2 mm learned vs 37.1 mm supervised "
        "(Martinez et al.); trivial constant-depth baseline 127.3 mm (Sec. 4). Here: CMU train "
        "split 2D only (no 3D), CMU test split, P2 (frame-wise).",
        ("run", "P2", "wall / seed"),
        _drover,
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
        ("run", "P1", "P2", "wall / seed"),
        _li,
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
        ("run", "symmetry (held-out 2D)", "P1", "P2", "wall / seed"),
        _zhou,
    ),
    Comparison(
        "wsp",
        "WSP (Qiu et al.): relative-depth pre-training vs training from scratch",
        "Table 4 (Human3.6M, 100 % of the labels, ResNet-50 images): 54.3 mm with relative-depth "
        "pre-training vs 67.5 mm without (PoseNet). The paper reports no label fractions; the "
        "issue asks for 1 %, 10 % and 100 %. Here: keypoint lifter, pairs from COCO train2017, "
        "fine-tuned on that fraction of the CMU train split, CMU test split.",
        ("3D labels", "P1 pre-trained", "P1 scratch", "P2 pre-trained", "P2 scratch"),
        _wsp,
    ),
)


def summarize(results: Results, papers: Sequence[str]) -> list[dict[str, Any]]:
    """Per comparison: title, claim, table rows and verdict."""
    out = []
    for c in (c for c in COMPARISONS if c.paper in papers):
        try:
            rows, verdict = c.measure(results)
        except (KeyError, ZeroDivisionError, ValueError) as err:
            rows, verdict = [], f"not measured ({type(err).__name__}: {err})"
        text = {"paper": c.paper, "title": c.title, "claim": c.claim, "header": c.header}
        out.append({**text, "rows": rows, "verdict": verdict, "needs_reference": c.needs_reference})
    return out


def write_report(
    results: Results,
    papers: Sequence[str],
    *,
    budget: str,
    seeds: int,
    output: pathlib.Path,
    wall_s: float,
) -> tuple[pathlib.Path, pathlib.Path]:
    """Write ``output`` (markdown) and ``<output stem lower-cased>.json`` beside it
    (:func:`jpose.training.sweep.write_report`)."""
    summary = summarize(results, papers)
    commit = sweep.checkout_label()
    trained = sorted({r.get("code", "unrecorded") for e in results.values() for r in e["runs"]})
    paragraphs = [
        f"Produced by `python -m experiments.reproduce --budget={budget} --seeds={seeds} "
        f"--papers={','.join(papers)}` on commit {commit} (runs trained by "
        f"{', '.join(trained)}), {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPU cores; "
        f"total training wall time {wall_s / 60:.0f} min (a run reused from an earlier invocation "
        "counts with its original wall time). Numbers: mean ± std over "
        f"{seeds} seed(s) (training seed; same data), frame-wise means in mm; per-seed numbers in "
        f"`{output.stem.lower()}.json`. Every run is a work directory that "
        "`python -m experiments.evaluate --workdir=...` reopens."
    ]
    if budget == "quick":
        paragraphs.append(
            "**Quick budget: smoke presets on synthetic data; the numbers mean nothing.**"
        )
    sections = []
    for s in summary:  # commands of the comparison's runs (and of the reference's, if it needs it)
        shown = (s["paper"], REFERENCE) if s["needs_reference"] else (s["paper"],)
        commands = [
            f"python {' '.join(e['runs'][0]['command'])}"
            for k, e in results.items()
            if k.split("/")[0] in shown
        ]
        sections.append({**s, "commands": commands})
    meta = {"budget": budget, "seeds": seeds, "commit": commit, "wall_s": wall_s}
    data = {**meta, "runs": results, "comparisons": summary}
    labels = {"claim_label": "Paper's claim", "commands_label": "Commands (seed 0)"}
    return sweep.write_report(
        output, title=TITLE, paragraphs=paragraphs, sections=sections, data=data, **labels
    )


PROG = "python -m experiments.reproduce"
TITLE = "Reproduction: each paper's claim at equal budget, over seeds"


def _define(fv: flags.FlagValues) -> None:
    papers = ",".join(c.paper for c in COMPARISONS)
    kw = {"flag_values": fv}
    flags.DEFINE_string("papers", papers, f"comma-separated subset of {papers}", **kw)
    flags.DEFINE_integer("seeds", 3, "training seeds per run", lower_bound=1, **kw)
    flags.DEFINE_enum("budget", "cpu", ("cpu", "quick"), "run budget", **kw)
    flags.DEFINE_bool("quick", False, "= --budget=quick --seeds=1", **kw)
    flags.DEFINE_string("workdir", "reproduce_runs", "root of the runs' work directories", **kw)
    flags.DEFINE_string("output", "REPRODUCTION.md", "the report (+ reproduction.json)", **kw)


def main(argv: Sequence[str] | None = None) -> int:
    """The command line (module doc); the report is rewritten as each run finishes; returns 0."""
    args = cli_flags.parse(PROG, _define, argv, description=__doc__ or "")
    budget, seeds = ("quick", 1) if args.quick else (args.budget, args.seeds)
    papers = [x.strip() for x in args.papers.split(",") if x.strip()]
    known = [c.paper for c in COMPARISONS]
    bad = [x for x in papers if x not in known]
    if bad or not papers:
        cli_flags.usage_error(PROG, f"unknown paper(s) {bad}; expected a subset of {known}")
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
