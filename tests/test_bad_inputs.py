"""Bad inputs through the real command lines (issue 22: no silent garbage).

One table (:data:`CASES`) of what a new user may get wrong -- 2D detections given to ``jpose``
(``experiments.inference_cli.main``), options and work directories given to ``jpose-evaluate``
(``evaluate.main``), configs, data files and work directories given to a training command
(``experiments.common.run_experiment``, what ``python -m experiments.<method>`` runs after
parsing its flags) -- with the outcome each must have:

* ``error``: exit status 2, exactly one ``<prog>: error: ...`` line matching the pattern, no
  traceback;
* ``flagged``: exit status 0, the people that cannot be lifted come back with ``valid`` False
  and NaN poses, the others finite, and one warning line;
* ``accepted``: exit status 0 (by design; e.g. ``--allow_unfinished`` says so in its output).

The command lines are called in-process (no JAX start-up per case) on one tiny trained baseline
work directory (module fixture, smoke config, checkpoints at steps 2 and 4) and copies of it in
the states a ``kill -9`` leaves. Two cases run as real subprocesses to check what the shell
sees. Library-level checks (numerics, checkpoint mismatch, metrics trimming on resume) follow.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import pytest
from _helpers import STANDING_H36M17, procrustes_error_np

from experiments import baseline, common
from experiments.configs import baseline as baseline_config
from jpose import camera, inference
from jpose import metrics as jm
from jpose.inference import cli as inference_cli
from jpose.inference import evaluate
from jpose.training import Checkpointer, rundir
from jpose.training.checkpoint import CheckpointMismatchError
from jpose.training.logging import trim_metrics

pytestmark = pytest.mark.usefixtures("fast_compile")

REPO = pathlib.Path(__file__).resolve().parents[1]
FOCAL_PX, SIZE_PX = 1000.0, 1000.0


def _config(**overrides: Any):
    """The baseline smoke config (4 steps, checkpoints at 2 and 4) with dotted overrides."""
    cfg = baseline_config.get_config("smoke")
    cfg.train.checkpoint_every = 2
    cfg.update_from_flattened_dict(overrides)
    return cfg


def _people(n: int, seed: int = 0) -> np.ndarray:
    """``[n, 17, 2]`` pixels of plausible people 4-5 m in front of a 1000 x 1000 px camera."""
    rng = np.random.default_rng(seed)
    pose = STANDING_H36M17[None] + rng.normal(0, 0.02, (n, 17, 3))
    pose = (
        pose + np.stack([rng.uniform(-0.5, 0.5, n), np.zeros(n), rng.uniform(4, 5, n)], -1)[:, None]
    )
    return (pose[..., :2] / pose[..., 2:] * FOCAL_PX + SIZE_PX / 2).astype(np.float32)


# ------------------------------------------------------------------------------------ work dirs


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> pathlib.Path:
    """A finished baseline smoke run."""
    wd = tmp_path_factory.mktemp("bad_inputs") / "run"
    baseline.run(_config(), str(wd))
    return wd


def _copy(src: pathlib.Path, dst: pathlib.Path) -> pathlib.Path:
    shutil.copytree(src, dst)
    (dst / rundir.LOCK_FILE).unlink(missing_ok=True)
    return dst


def _kill_after_step_2(wd: pathlib.Path) -> pathlib.Path:
    """What ``kill -9`` after the step-2 checkpoint (and the step-4 log record) leaves."""
    shutil.rmtree(wd / "checkpoints" / "lifter" / "4")
    for name in ("results.json", "results.md"):
        (wd / name).unlink()
    rundir.start_run(wd)
    rundir.mark_stage(wd, "lifter", index=0, num_steps=4, finished=False)
    return wd


@dataclasses.dataclass
class Ctx:
    """Paths of the work directories and a folder for input files."""

    trained: pathlib.Path
    killed: pathlib.Path
    no_results: pathlib.Path
    tmp: pathlib.Path

    def npz(self, name: str, **arrays: Any) -> str:
        path = self.tmp / f"{name}.npz"
        np.savez(path, **{"layout": "h36m17", **arrays})
        return str(path)

    def file(self, name: str, data: bytes) -> str:
        path = self.tmp / name
        path.write_bytes(data)
        return str(path)

    def h36m_dir(self, name: str, *, scale: float = 1.0, truncate: bool = False) -> str:
        """A folder with a VideoPose3D ``data_3d_h36m.npz`` (metres x ``scale``) and gt 2D."""
        d = self.tmp / name
        d.mkdir(exist_ok=True)
        world = (STANDING_H36M17[None] + np.array([0.0, 0.0, 1.0])) * np.ones((6, 1, 1)) * scale
        pos3d = {s: {"Walking": world.astype(np.float32)} for s in ("S1", "S9", "S11")}
        np.savez_compressed(d / "data_3d_h36m.npz", positions_3d=np.array(pos3d, dtype=object))
        if truncate:
            data = (d / "data_3d_h36m.npz").read_bytes()
            (d / "data_3d_h36m.npz").write_bytes(data[: len(data) // 2])
        return str(d)

    def killed_run(self, name: str, experiment: str, stages: dict[str, tuple[int, int]]) -> str:
        """A work directory as ``kill -9`` leaves it: ``stages`` = ``{stage: (checkpoint step,
        num_steps)}`` in order, the last one unfinished (a checkpoint step of 0: none yet).
        Only what is read before any checkpoint is restored (config, status, step folders)."""
        wd = self.tmp / name
        wd.mkdir()
        (wd / "config.json").write_text(
            json.dumps({"experiment": experiment, "seed": 0, "ensemble_seeds": []})
        )
        rundir.start_run(wd)
        for i, (stage, (step, total)) in enumerate(stages.items()):
            if step:
                (wd / "checkpoints" / stage / str(step)).mkdir(parents=True)
            rundir.mark_stage(wd, stage, index=i, num_steps=total, finished=step == total)
        return str(wd)

    def jpose(self, inp: str, *extra: str, workdir: str | None = None) -> list[str]:
        out = str(self.tmp / "out.npz")
        wd = str(self.trained) if workdir is None else workdir
        return ["--workdir", wd, "--input", inp, "--output", out, *extra]


@pytest.fixture(scope="module")
def ctx(trained, tmp_path_factory) -> Ctx:
    root = tmp_path_factory.mktemp("bad_inputs_copies")
    killed = _kill_after_step_2(_copy(trained, root / "killed"))
    no_results = _copy(trained, root / "no_results")
    rundir.start_run(no_results)  # every stage finished, killed before the results were written
    (root / "inputs").mkdir()
    return Ctx(trained=trained, killed=killed, no_results=no_results, tmp=root / "inputs")


# ------------------------------------------------------------------------------------ the table

ERROR, FLAGGED, ACCEPTED = "error", "flagged", "accepted"
P3 = _people(3)
SIZE = np.array([SIZE_PX, SIZE_PX])


def _one_pixel() -> np.ndarray:
    return np.full((1, 17, 2), 500.0, np.float32)


def _with_person(person: np.ndarray, index: int = 1) -> np.ndarray:
    kp = P3.copy()
    kp[index] = person
    return kp


def _zero_conf_middle() -> np.ndarray:
    s = np.ones((3, 17), np.float32)
    s[1] = 0.0
    return s


def _nan_with_score() -> np.ndarray:
    kp = P3.copy()
    kp[0, 3] = np.nan
    return kp


def _truncated(path: str) -> bytes:
    data = pathlib.Path(path).read_bytes()
    return data[: len(data) // 2]


def _two_per_frame(c: Ctx) -> list[str]:
    path = c.npz("two_per_frame", keypoints=P3[:2], image_size=SIZE, image_id=np.array([0, 0]))
    return c.jpose(path, "--smooth_sigma", "2")


# (id, command, arguments from the context, outcome, pattern of the message / warning)
CASES: list[tuple[str, str, Callable[[Ctx], Any], str, str]] = [
    # --- jpose: degenerate 2D (issue: "a fixed mean pose 4.90 m from the camera") -------------
    ("jpose/conf0-every-joint", "jpose",
     lambda c: c.jpose(c.npz("zero", keypoints=P3, scores=np.zeros((3, 17)), image_size=SIZE)),
     ERROR, r"none of the 3 people can be lifted; person 0: 0 joints with confidence > 0"),
    ("jpose/all-nan-score0", "jpose",
     lambda c: c.jpose(c.npz("nan", keypoints=np.full((1, 17, 2), np.nan),
                             scores=np.zeros((1, 17)), image_size=SIZE)),
     ERROR, r"the person cannot be lifted: 0 joints with confidence > 0"),
    ("jpose/min-score-above-all", "jpose",
     lambda c: c.jpose(c.npz("ok", keypoints=P3, image_size=SIZE), "--min_score", "1.5"),
     ERROR, r"none of the 3 people .* fewer than 8 \(--min_joints / --min_score\)"),
    ("jpose/one-pixel", "jpose",
     lambda c: c.jpose(c.npz("pix", keypoints=_one_pixel(), image_size=SIZE)),
     ERROR, r"cannot be lifted: degenerate 2D: the confident joints span 0 px"),
    ("jpose/image-size-1e-9", "jpose",
     lambda c: c.jpose(c.npz("ok", keypoints=P3), "--image_size", "1e-9,1e-9"),
     ERROR, r"implausible image size 1e-09 x 1e-09 px"),
    ("jpose/coords-x1e6", "jpose",
     lambda c: c.jpose(c.npz("big", keypoints=P3 * 1e6, image_size=SIZE)),
     ERROR, r"keypoint coordinates up to .* px \(beyond 100000 px: not pixels\?\)"),
    ("jpose/coords-outside-image", "jpose",
     lambda c: c.jpose(c.npz("out", keypoints=P3 * 40, image_size=SIZE)),
     ERROR, r"keypoints far outside the 1000 x 1000 px image"),
    ("jpose/batch-one-pixel-person", "jpose",
     lambda c: c.jpose(c.npz("mix1", keypoints=_with_person(_one_pixel()[0]), image_size=SIZE)),
     FLAGGED, r"1 of 3 people cannot be lifted .*indices 1\).*degenerate 2D"),
    ("jpose/batch-conf0-person", "jpose",
     lambda c: c.jpose(c.npz("mix2", keypoints=P3, scores=_zero_conf_middle(), image_size=SIZE)),
     FLAGGED, r"1 of 3 people cannot be lifted .*0 joints with confidence > 0"),
    ("jpose/batch-x1e6-person", "jpose",
     lambda c: c.jpose(c.npz("mix3", keypoints=_with_person(P3[1] * 1e6), image_size=SIZE)),
     FLAGGED, r"1 of 3 people cannot be lifted .*not pixels"),
    # --- jpose: files, options, work directories ------------------------------------------------
    ("jpose/empty-npz", "jpose", lambda c: c.jpose(c.file("empty.npz", b"")),
     ERROR, r"empty\.npz: not a readable \.npz archive"),
    ("jpose/truncated-npz", "jpose",
     lambda c: c.jpose(c.file("trunc.npz", _truncated(c.npz("t", keypoints=P3)))),
     ERROR, r"trunc\.npz: not a readable \.npz archive .*truncated"),
    ("jpose/truncated-json", "jpose", lambda c: c.jpose(c.file("t.json", b'[{"keypoints": [1,')),
     ERROR, r"t\.json: not valid JSON"),
    ("jpose/nan-with-score", "jpose",
     lambda c: c.jpose(c.npz("nanpos", keypoints=_nan_with_score(), image_size=SIZE)),
     ERROR, r"non-finite values .* with a positive score"),
    ("jpose/ambiguous-layout", "jpose",
     lambda c: c.jpose(c.npz("amb", keypoints=P3, image_size=SIZE, layout=""), "--layout", ""),
     ERROR, r"17 joints is ambiguous"),
    ("jpose/no-image-size", "jpose", lambda c: c.jpose(c.npz("nosize", keypoints=P3)),
     ERROR, r"needs each image's size"),
    ("jpose/smoothing-without-tracks", "jpose", _two_per_frame,
     ERROR, r"needs a track_id per detection"),
    ("jpose/batch-size-0", "jpose",
     lambda c: c.jpose(c.npz("ok", keypoints=P3, image_size=SIZE), "--batch_size", "0"),
     ERROR, r"batch_size must be >= 1"),
    ("jpose/min-joints-0", "jpose",
     lambda c: c.jpose(c.npz("ok", keypoints=P3, image_size=SIZE), "--min_joints", "0"),
     ERROR, r"min_joints must be in 1\.\.17"),
    ("jpose/output-suffix", "jpose",
     lambda c: [*c.jpose(c.npz("ok", keypoints=P3, image_size=SIZE))[:4], "--output",
                str(c.tmp / "o.txt")],
     ERROR, r"unsupported output format '\.txt'"),
    ("jpose/empty-workdir", "jpose",
     lambda c: c.jpose(c.npz("ok", keypoints=P3, image_size=SIZE), workdir=""),
     ERROR, r"--workdir is empty"),
    ("jpose/not-a-workdir", "jpose",
     lambda c: c.jpose(c.npz("ok", keypoints=P3, image_size=SIZE), workdir=str(c.tmp)),
     ERROR, r"is not a jpose work directory: no config\.json"),
    ("jpose/missing-step", "jpose",
     lambda c: c.jpose(c.npz("ok", keypoints=P3, image_size=SIZE), "--step", "99"),
     ERROR, r"no checkpoint at step 99"),
    ("jpose/killed-run", "jpose",
     lambda c: c.jpose(c.npz("ok", keypoints=P3, image_size=SIZE), workdir=str(c.killed)),
     ERROR, r"unfinished training run: stage 'lifter' did not finish \(stopped at checkpoint "
            r"step 2 of 4 steps\).*--allow_unfinished"),
    ("jpose/run-without-results", "jpose",
     lambda c: c.jpose(c.npz("ok", keypoints=P3, image_size=SIZE), workdir=str(c.no_results)),
     ERROR, r"unfinished training run: its stages finished \(lifter\) but the run stopped "
            r"before writing its results"),
    ("jpose/camerapose-killed-in-stage-2", "jpose",
     lambda c: c.jpose(c.npz("ok", keypoints=P3, image_size=SIZE),
                       workdir=c.killed_run("cp2", "camerapose", {"refine": (40, 40),
                                                                  "warmup": (20, 40)})),
     ERROR, r"stage 'warmup' did not finish \(stopped at checkpoint step 20 of 40 steps\)"),
    ("jpose/camerapose-killed-between-stages", "jpose",
     lambda c: c.jpose(c.npz("ok", keypoints=P3, image_size=SIZE),
                       workdir=c.killed_run("cp12", "camerapose", {"refine": (40, 40)})),
     ERROR, r"stage 'warmup' never started \(finished: refine\)"),
    ("jpose/drover-killed-at-10-of-40", "jpose",
     lambda c: c.jpose(c.npz("ok", keypoints=P3, image_size=SIZE),
                       workdir=c.killed_run("dr", "drover", {"seed0": (10, 40)})),
     ERROR, r"stage 'seed0' did not finish \(stopped at checkpoint step 10 of 40 steps\)"),
    ("jpose/killed-run-allowed", "jpose",
     lambda c: c.jpose(c.npz("ok", keypoints=P3, image_size=SIZE), "--allow_unfinished",
                       workdir=str(c.killed)),
     ACCEPTED, r"warning: UNFINISHED training run \(--allow_unfinished\): stage 'lifter'"),
    ("jpose/plausible-people", "jpose",
     lambda c: c.jpose(c.npz("ok", keypoints=P3, image_size=SIZE)), ACCEPTED, r""),
    # --- evaluate --------------------------------------------------------------------------------
    ("evaluate/killed-run", "evaluate", lambda c: ["--workdir", str(c.killed)],
     ERROR, r"stage 'lifter' did not finish \(stopped at checkpoint step 2 of 4 steps\)"),
    ("evaluate/camerapose-killed-in-stage-2", "evaluate",
     lambda c: ["--workdir", c.killed_run("cp2e", "camerapose", {"refine": (40, 40),
                                                                 "warmup": (0, 40)})],
     ERROR, r"stage 'warmup' did not finish \(stopped before its first checkpoint of 40 steps\)"),
    ("evaluate/drover-killed-at-10-of-40", "evaluate",
     lambda c: ["--workdir", c.killed_run("dre", "drover", {"seed0": (10, 40)})],
     ERROR, r"stage 'seed0' did not finish"),
    ("evaluate/run-without-results", "evaluate", lambda c: ["--workdir", str(c.no_results)],
     ERROR, r"stopped before writing its results"),
    ("evaluate/killed-run-allowed", "evaluate",
     lambda c: ["--workdir", str(c.killed), "--allow_unfinished", "--output_dir",
                str(c.tmp / "eval_unfinished")],
     ACCEPTED, r""),
    ("evaluate/empty-workdir", "evaluate", lambda c: ["--workdir", ""],
     ERROR, r"--workdir is empty"),
    ("evaluate/not-a-workdir", "evaluate", lambda c: ["--workdir", str(c.tmp)],
     ERROR, r"not a jpose work directory"),
    ("evaluate/missing-step", "evaluate", lambda c: ["--workdir", str(c.trained), "--step", "99"],
     ERROR, r"no checkpoint at step 99"),
    ("evaluate/batch-size-0", "evaluate",
     lambda c: ["--workdir", str(c.trained), "--batch_size", "0"],
     ERROR, r"--batch_size must be >= 1"),
    ("evaluate/h36m-without-dir", "evaluate",
     lambda c: ["--workdir", str(c.trained), "--dataset", "h36m"],
     ERROR, r"loading the evaluation data: --dataset=h36m needs --h36m_dir"),
    ("evaluate/h36m-missing-dir", "evaluate",
     lambda c: ["--workdir", str(c.trained), "--dataset", "h36m", "--h36m_dir",
                str(c.tmp / "nowhere")],
     ERROR, r"loading the evaluation data: .*nowhere"),
    ("evaluate/h36m-millimetres", "evaluate",
     lambda c: ["--workdir", str(c.trained), "--dataset", "h36m", "--h36m_dir",
                c.h36m_dir("h36m_mm", scale=1000.0)],
     ERROR, r"expected metres .* millimetres\? divide by 1000"),
    ("evaluate/h36m-truncated", "evaluate",
     lambda c: ["--workdir", str(c.trained), "--dataset", "h36m", "--h36m_dir",
                c.h36m_dir("h36m_trunc", truncate=True)],
     ERROR, r"data_3d_h36m\.npz: cannot read as \.npz"),
    ("evaluate/finished-run", "evaluate",
     lambda c: ["--workdir", str(c.trained), "--output_dir", str(c.tmp / "eval_ok")],
     ACCEPTED, r""),
    # --- training command: configs and work directories ------------------------------------------
    ("train/empty-workdir", "train", lambda c: (_config(), ""),
     ERROR, r"the work directory path is empty \(--workdir=\)"),
    ("train/workdir-is-a-file", "train", lambda c: (_config(), c.file("a_file", b"x")),
     ERROR, r"is a file, not a directory"),
    ("train/batch-size-0", "train",
     lambda c: (_config(**{"train.batch_size": 0}), str(c.tmp / "w1")),
     ERROR, r"invalid config: train\.batch_size=0: a batch size must be finite and > 0"),
    ("train/width-0", "train", lambda c: (_config(**{"model.width": 0}), str(c.tmp / "w2")),
     ERROR, r"model\.width=0: a network width"),
    ("train/negative-lr", "train",
     lambda c: (_config(**{"stages.lifter.lr": -1e-3}), str(c.tmp / "w3")),
     ERROR, r"stages\.lifter\.lr=-0\.001: a learning rate must be finite and > 0"),
    ("train/steps-minus-2", "train",
     lambda c: (_config(**{"stages.lifter.steps": -2}), str(c.tmp / "w4")),
     ERROR, r"stages\.lifter\.steps=-2: a number of steps must be finite and >= 0"),
    ("train/eval-batch-0", "train",
     lambda c: (_config(**{"eval.batch_size": 0}), str(c.tmp / "w5")),
     ERROR, r"eval\.batch_size=0"),
    ("train/steps-per-block-0", "train",
     lambda c: (_config(**{"train.steps_per_block": 0}), str(c.tmp / "w6")),
     ERROR, r"train\.steps_per_block=0"),
    ("train/changed-architecture", "train",
     lambda c: (_config(**{"model.width": 64, "model.num_blocks": 2}),
                str(_copy(c.trained, c.tmp / "arch"))),
     ERROR, r"checkpoints of other networks .*model\.num_blocks: 1 \(config\.json\) -> 2 \(new\); "
            r"model\.width: 32 \(config\.json\) -> 64 \(new\)"),
    ("train/unknown-data-preset", "train",
     lambda c: (_config(**{"data.preset": "foo"}), str(c.tmp / "w7")),
     ERROR, r"loading data: unknown data preset 'foo'"),
    ("train/h36m-missing-dir", "train",
     lambda c: (_config(**{"data.preset": "h36m", "data.h36m.dir": str(c.tmp / "nowhere")}),
                str(c.tmp / "w8")),
     ERROR, r"loading data: .*nowhere"),
    ("train/h36m-millimetres", "train",
     lambda c: (_config(**{"data.preset": "h36m", "data.h36m.dir": c.h36m_dir("h36m_mm2",
                                                                              scale=1000.0)}),
                str(c.tmp / "w9")),
     ERROR, r"loading data: .*millimetres\? divide by 1000"),
]  # fmt: skip


def _invoke(command: str, args: Any) -> int:
    try:
        if command == "jpose":
            return inference_cli.main([str(a) for a in args])
        if command == "evaluate":
            evaluate.main([str(a) for a in args])
            return 0
        config, workdir = args
        common.run_experiment(baseline.run, config, workdir, prog="experiments.baseline")
        return 0
    except SystemExit as exc:
        return int(exc.code or 0)


_PROG = {"jpose": "jpose", "evaluate": "jpose-evaluate",
         "train": "experiments.baseline"}  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_table(case, ctx, capsys):
    name, command, make_args, outcome, pattern = case
    args = make_args(ctx)
    capsys.readouterr()
    code = _invoke(command, args)
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith(f"{_PROG[command]}: error:")]
    if outcome == ERROR:
        assert code == 2, (name, code, err)
        assert len(errors) == 1, err
        assert re.search(pattern, errors[0]), errors[0]
        return
    assert code == 0 and not errors, (name, code, err)
    if command == "jpose":
        with np.load(args[args.index("--output") + 1]) as out:
            valid, pose = out["valid"], out["pose3d_root_relative"]
        warnings = [line for line in err.splitlines() if "jpose: warning:" in line]
        if outcome == FLAGGED:
            assert not valid.all() and valid.any()
            assert np.isnan(pose[~valid]).all() and np.isfinite(pose[valid]).all()
            assert np.abs(pose[valid]).max() < inference.MAX_POSE_M
            assert len(warnings) == 1 and re.search(pattern, warnings[0]), err
        else:
            assert valid.all() and np.isfinite(pose).all()
            if pattern:
                assert any(re.search(pattern, w) for w in warnings), err
    if name == "evaluate/killed-run-allowed":
        md = (ctx.tmp / "eval_unfinished" / "results.md").read_text()
        assert "UNFINISHED RUN (--allow_unfinished): stage 'lifter' did not finish" in md
        assert "`allow_unfinished=True`" in md
    if name == "evaluate/finished-run":
        md = (ctx.tmp / "eval_ok" / "results.md").read_text()
        assert "UNFINISHED" not in md and "final checkpoint" in md


def test_table_covers_every_outcome():
    counts = {o: sum(c[3] == o for c in CASES) for o in (ERROR, FLAGGED, ACCEPTED)}
    assert counts[ERROR] >= 40 and counts[FLAGGED] >= 3 and counts[ACCEPTED] >= 4, counts


# ------------------------------------------------------------------------------ lock, resume


def _train_code(workdir: pathlib.Path, capsys) -> tuple[int, str]:
    capsys.readouterr()
    code = _invoke("train", (_config(), str(workdir)))
    return code, capsys.readouterr().err


def test_lock_refuses_a_second_run_and_takes_over_a_stale_one(ctx, capsys, caplog):
    wd = _copy(ctx.trained, ctx.tmp / "locked")
    lock = wd / rundir.LOCK_FILE
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock.write_text(json.dumps({"pid": live.pid, "host": socket.gethostname()}))
        code, err = _train_code(wd, capsys)
        assert code == 2 and "Traceback" not in err
        assert f"is in use by another run (process {live.pid} on host" in err
        lock.write_text(json.dumps({"pid": 1, "host": "another-host"}))
        code, err = _train_code(wd, capsys)
        assert code == 2 and "host another-host" in err and "delete" in err
    finally:
        live.kill()
        live.wait()
    lock.write_text(json.dumps({"pid": live.pid, "host": socket.gethostname()}))
    before = (wd / "metrics.jsonl").read_text()
    with caplog.at_level("WARNING", logger="jpose"):
        code, err = _train_code(wd, capsys)  # the dead process's lock: taken over, run finishes
    assert code == 0, err
    assert any("stale lock" in r.getMessage() for r in caplog.records)
    assert not lock.exists()  # released when the run finished
    assert (wd / "metrics.jsonl").read_text() == before  # nothing trained again or re-logged
    assert rundir.read_status(wd)["finished"] is True


def test_resume_after_kill_trims_metrics_and_matches_the_uninterrupted_run(ctx):
    wd = _kill_after_step_2(_copy(ctx.trained, ctx.tmp / "resumed"))
    steps = [json.loads(x)["step"] for x in (wd / "metrics.jsonl").read_text().splitlines()]
    assert steps.count(4) >= 1  # logged before the kill, after the last checkpoint
    baseline.run(_config(), str(wd))
    records = [json.loads(x) for x in (wd / "metrics.jsonl").read_text().splitlines()]
    keys = [(r["step"], r["split"]) for r in records]
    assert len(keys) == len(set(keys)), keys  # no record twice
    want = json.loads((ctx.trained / "results.json").read_text())["evaluations"]
    got = json.loads((wd / "results.json").read_text())["evaluations"]
    assert got == want  # bitwise: the resumed run replays the batches of the uninterrupted one
    assert rundir.unfinished_reason(wd) is None


def test_trim_metrics_keeps_other_stages_and_unparsable_lines(tmp_path):
    path = tmp_path / "metrics.jsonl"
    rows = [{"step": s, "stage": st, "split": "train"} for st, s in
            [(0, 2), (0, 4), (1, 6), (1, 8), (1, 10)]]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "not json\n")
    assert trim_metrics(path, after_step=6, until_step=10, stage=1.0) == 2
    left = path.read_text().splitlines()
    assert [json.loads(x)["step"] for x in left[:-1]] == [2, 4, 6] and left[-1] == "not json"


# --------------------------------------------------------------------------- library checks


def test_checkpoint_of_other_networks_is_named_not_an_orbax_traceback(ctx):
    import optax

    from jpose import models
    from jpose.training.state import create_player, create_train_state

    def state(width):
        model = models.martinez_lifter(17, width=width, num_blocks=1)
        player = create_player(model, optax.adam(1e-3), jax.random.key(0), np.zeros((2, 17, 2)))
        return create_train_state({"lifter": player})

    with Checkpointer(ctx.tmp / "ckpt") as ck:
        ck.save(state(8), key=jax.random.key(0))
    with (
        Checkpointer(ctx.tmp / "ckpt") as ck,
        pytest.raises(
            CheckpointMismatchError, match=r"does not fit the networks .*\(8,\) saved, \(16,\) now"
        ),
    ):
        ck.restore(state(16), key=jax.random.key(0))


def test_normalize_screen_refuses_a_zero_image_size():
    uv = np.ones((2, 17, 2), np.float32)
    for w, h in ((0.0, 10.0), (10.0, 0.0), (-5.0, 10.0), (np.nan, 10.0)):
        with pytest.raises(ValueError, match="must be finite and positive"):
            camera.normalize_screen(uv, width=w, height=h)
        with pytest.raises(ValueError, match="must be finite and positive"):
            camera.image_coordinates(uv, width=w, height=h)
    out = jax.jit(lambda x: camera.normalize_screen(x, width=10.0, height=10.0))(uv)
    assert np.isfinite(out).all()


@pytest.mark.parametrize("scale,offset", [(1.0, 0.0), (1e19, 0.0), (1e19, 1e19), (1e-20, 0.0)])
def test_aligned_metrics_far_away_and_at_extreme_scales(scale, offset):
    rng = np.random.default_rng(0)
    pred = STANDING_H36M17 + rng.normal(0, 0.03, STANDING_H36M17.shape)
    tgt = STANDING_H36M17.astype(np.float64)

    def ref_n(p, t):
        return np.linalg.norm((p * t).sum() / (p * p).sum() * p - t, axis=-1).mean()

    p32 = (pred * scale + offset).astype(np.float32)
    t32 = (tgt * scale + offset).astype(np.float32)
    p64, t64 = p32.astype(np.float64), t32.astype(np.float64)
    want = procrustes_error_np(p64, t64) / scale
    np.testing.assert_allclose(float(jm.p_mpjpe(p32, t32)) / scale, want, rtol=1e-4)
    np.testing.assert_allclose(float(jm.n_mpjpe(p32, t32)) / scale, ref_n(p64, t64) / scale,
                               rtol=1e-4)  # fmt: skip


# ------------------------------------------------------------------------ real subprocesses


def _shell(*argv: str, cwd: pathlib.Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(REPO)}
    env.pop("JPOSE_TRACEBACK", None)
    return subprocess.run([sys.executable, "-m", *argv], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip


def test_shell_sees_status_2_and_one_line(ctx):
    cwd = ctx.tmp / "shell"
    cwd.mkdir()
    r = _shell("experiments.baseline", "--workdir=",
               f"--config={REPO / 'experiments/configs/baseline.py'}:smoke", cwd=cwd)  # fmt: skip
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("experiments.baseline: error: the work")
    assert not any(cwd.iterdir())  # nothing written into the current directory
    bad = ctx.file("shell_trunc.npz", b"PK\x03\x04 truncated")
    r = _shell("experiments.infer", "--workdir", str(ctx.trained), "--input", bad, "--output",
               str(cwd / "o.npz"), cwd=cwd)  # fmt: skip
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("jpose: error:"), r.stderr
    assert "not a readable .npz" in lines[0]
