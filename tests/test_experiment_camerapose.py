"""Smoke and player-isolation tests of the CameraPose experiment (experiments/camerapose.py).

One tiny config (``:smoke``: 32-wide networks, 16-sample batches, 2 steps per stage, 4 in stage
3 with a checkpoint every 2 steps) is shared; ``run`` is called in-process (no subprocess JAX
start-up). The module fixture trains all three stages once, then simulates a run killed in stage
3 after its step-2 checkpoint (the step-4 checkpoint and the results are deleted) and calls
``run`` again: the second invocation must restore the finished stages 1-2 without training and
continue stage 3 from step 2. XLA's optimisations are switched off for this module (compilation
dominates; the numerics are unchanged up to rounding).
"""

import json
import math
import shutil

import jax
import numpy as np
import pytest
from _helpers import assert_run_timings

from experiments import camerapose as cp
from experiments.configs import camerapose as cp_configs
from jpose import evaluation as jeval
from jpose import training as T


def _smoke_config():
    cfg = cp_configs.get_config("smoke")
    cfg.stages.stage3.steps = 4
    cfg.train.checkpoint_every = 2
    cfg.loss.lambda_rd = 0.5  # WSP's relative-depth auxiliary loss in the 2D-only phase
    return cfg


pytestmark = pytest.mark.usefixtures("fast_compile")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    wd = tmp_path_factory.mktemp("camerapose")
    first = cp.run(_smoke_config(), str(wd))
    shutil.rmtree(wd / "checkpoints" / "end2end" / "4")  # "killed" after the step-2 checkpoint
    (wd / "results.json").unlink()
    second = cp.run(_smoke_config(), str(wd))
    return wd, first, second


def test_smoke_outputs(runs):
    wd, first, _ = runs
    records = [json.loads(line) for line in (wd / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["split"] == "train"]
    assert {r["stage"] for r in train} == {0.0, 1.0, 2.0}
    for r in train:
        for k, v in r.items():
            if k != "split":
                assert isinstance(v, int | float) and math.isfinite(v), (k, v)
    keys = set().union(*train)
    for k in ("refine/loss", "discriminator/d2d_acc", "generator/aug_bone_len_ratio_abs",
              "lifter/l3d_real", "lifter/lcam_real", "weak2d/l2d", "weak2d/rd_loss",
              "weak2d/rd_acc"):  # fmt: skip
        assert k in keys, k
    for stage in ("refine", "warmup", "end2end"):
        assert (wd / "checkpoints" / stage / "2").is_dir(), stage
    assert (wd / "config.json").exists() and (wd / "results.md").exists()
    assert not list(wd.glob("config.*.json"))  # same config on resume
    assert first["stages"]["end2end"]["trained_steps"] == 4


def test_results_table_has_every_action(runs):
    wd, _, second = runs
    cfg = _smoke_config()
    from experiments import common

    test = common.load_datasets(cfg.data)["test"]
    actions = set(jeval.action_labels(test))
    result = json.loads((wd / "results.json").read_text())
    assert result["evaluations"] == second["evaluations"]
    assert_run_timings(result, ["refine", "warmup", "end2end"])
    for split in ("test", "test+noise", "test_2d_mix"):
        metrics = result["evaluations"][split]["metrics"]
        for name in ("mpjpe", "p_mpjpe", "n_mpjpe"):
            if split.startswith("test_2d"):
                continue
            assert set(metrics[name]["per_action"]) == actions
            assert math.isfinite(metrics[name]["action_wise"])
            assert math.isfinite(metrics[name]["frame_wise"])
    md = (wd / "results.md").read_text()
    for a in actions:
        assert f"| {a} " in md or f" {a} |" in md
    assert "Model selection" in md and "2D re-projection error" in md


def test_second_invocation_resumes(runs):
    wd, first, second = runs
    st = second["stages"]
    assert st["refine"]["trained_steps"] == 0 and st["refine"]["resumed_from"] == 2
    assert st["warmup"]["trained_steps"] == 0 and st["warmup"]["resumed_from"] == 2
    assert st["end2end"]["resumed_from"] == 2 and st["end2end"]["trained_steps"] == 2
    assert (wd / "checkpoints" / "end2end" / "4").is_dir()
    assert second["header"]["checkpoint"]["end2end"] == 4
    # the resumed run replays the same batches and keys: same final numbers as the first run
    for split, e in first["evaluations"].items():
        a = e["metrics"]["mpjpe"]["frame_wise"]
        b = second["evaluations"][split]["metrics"]["mpjpe"]["frame_wise"]
        assert abs(a - b) < 1e-3 * max(1.0, abs(a)), split


def test_evaluate_command_reproduces_the_training_numbers(runs):
    """``python -m experiments.evaluate`` on the trained work directory: same numbers as the
    run's own results.json, the checkpoint steps in the header, figures written."""
    from jpose.inference import evaluate

    wd, _, second = runs
    record = evaluate.main(["--workdir", str(wd), "--figures"])
    assert record["header"]["checkpoint"] == second["header"]["checkpoint"]
    assert record["header"]["model_selection"] == second["header"]["model_selection"]
    for split in ("test", "test_2d_mix"):
        for metric in ("mpjpe", "p_mpjpe", "n_mpjpe"):
            got = record["evaluations"][split]["metrics"][metric]
            want = second["evaluations"][split]["metrics"][metric]
            for key in ("action_wise", "frame_wise"):
                assert abs(got[key] - want[key]) < 1e-3, (split, metric, key)
    out = wd / "eval" / "config"
    assert (out / "results.md").is_file()
    names = {p.name for p in (out / "figures").iterdir()}
    for name in ("test_samples.png", "test_pred_vs_gt.png", "test_reprojection.png",
                 "training_curves.png", "test_sequence.gif"):  # fmt: skip
        assert name in names, (name, names)
        assert (out / "figures" / name).stat().st_size > 1000


def test_restores_as_an_older_run(runs, tmp_path):
    """``load_predictor`` (``common.declared_predictor``) on a copy without the pipeline entry
    and the camera priors (then read from results.json) predicts what the declared pipeline
    does."""
    from _helpers import assert_restores_as_an_older_run

    from experiments import common

    test = common.load_datasets(_smoke_config().data)["test"]
    assert_restores_as_an_older_run(runs[0], tmp_path, test.pose2d_norm[:4], test.confidence[:4],
                                    drop=("pipeline", "camera_priors"))  # fmt: skip


def _changed(before, after):
    leaves_b = jax.tree_util.tree_leaves(before)
    leaves_a = jax.tree_util.tree_leaves(after)
    return any(not np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(leaves_a, leaves_b))


@pytest.fixture(scope="module")
def stage3(runs):
    """The trained stage-3 state of the smoke run (restored: no initialiser is compiled)."""
    wd = runs[0]
    setup = cp.prepare(_smoke_config())
    variables = cp.init_players(setup, jax.random.key(0), abstract=True)
    template = cp.stage_state(setup, "end2end", variables, steps_per_epoch=4)
    with T.Checkpointer(wd / "checkpoints" / "end2end") as ckpt:
        state = ckpt.restore(template, key=jax.random.key(0)).state
    phases = {p.name: p for p in cp.make_phases(setup, "end2end")}
    arrays = setup.train_arrays
    batch = {name: {k: v[:16] for k, v in a.items()} for name, a in arrays.items()}
    return state, phases, batch


def test_weak2d_step_changes_lifter_and_camera_only(stage3):
    state, phases, batch = stage3
    assert phases["weak2d"].players == ("lifter", "camera")  # refine frozen by default
    step = jax.jit(T.make_train_step([phases["weak2d"]]))
    new, metrics = step(state, batch, jax.random.key(1))
    assert np.isfinite(float(metrics["weak2d/loss"]))
    for name in ("lifter", "camera"):
        assert _changed(state.players[name].params, new.players[name].params), name
    for name in ("d2d", "d3d", "generator", "refine"):
        assert not _changed(state.players[name].params, new.players[name].params), name
    # the 2D-only batch moves the lifter's batch-norm running statistics (the default) ...
    assert _changed(state.players["lifter"].batch_stats, new.players["lifter"].batch_stats)
    # ... unless train.weak2d_bn_stats=False
    cfg = _smoke_config()
    cfg.train.weak2d_bn_stats = False
    setup = cp.prepare(cfg)
    weak2d = {p.name: p for p in cp.make_phases(setup, "end2end")}["weak2d"]
    new2, _ = jax.jit(T.make_train_step([weak2d]))(state, batch, jax.random.key(1))
    assert _changed(state.players["lifter"].params, new2.players["lifter"].params)
    assert not _changed(state.players["lifter"].batch_stats, new2.players["lifter"].batch_stats)


def test_discriminator_step_changes_discriminators_only(stage3):
    state, phases, batch = stage3
    step = jax.jit(T.make_train_step([phases["discriminator"]]))
    new, metrics = step(state, batch, jax.random.key(2))
    assert np.isfinite(float(metrics["discriminator/loss"]))
    for name in ("d2d", "d3d"):
        assert _changed(state.players[name].params, new.players[name].params), name
    for name in ("lifter", "camera", "refine", "generator"):
        assert not _changed(state.players[name].params, new.players[name].params), name
        assert not _changed(state.players[name].batch_stats, new.players[name].batch_stats), name


def test_relative_depth_pairs_for_the_auxiliary_loss():
    cfg = _smoke_config()
    arrays = cp.relative_depth_arrays(cfg, "vp", use_2d=True)  # synthetic square scenes
    m = len(arrays["label"])
    assert m > 0 and arrays["pose_a"].shape == (m, 17, 2) and arrays["joint_mask"].shape == (m, 17)
    assert 0.2 < arrays["label"].mean() < 0.8  # orientation balanced by the seeded swap
    with pytest.raises(ValueError, match="needs the camera branch"):
        cp.relative_depth_arrays(cfg, "vp", use_2d=False)
    cfg.rd.source = "coco"
    with pytest.raises(ValueError, match="'image'-normalised"):
        cp.relative_depth_arrays(cfg, "vp", use_2d=True)


def test_stage_state_names_an_unknown_stage():
    with pytest.raises(ValueError, match=r"unknown CameraPose stage 'stage4'; known: \('refine'"):
        cp.stage_state(None, "stage4", {}, steps_per_epoch=1)  # checked before the setup is read
