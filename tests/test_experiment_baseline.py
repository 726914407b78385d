"""Smoke test of ``experiments.baseline``: trains, writes results, resumes (tiny config)."""

import json

import numpy as np
import pytest
from _helpers import assert_run_timings

from experiments import baseline
from experiments.configs import baseline as baseline_config
from jpose import evaluation as jeval
from jpose import inference


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("baseline")
    config = baseline_config.get_config("smoke")
    first = baseline.run(config, str(workdir))
    second = baseline.run(config, str(workdir))  # same command again: resumes
    return workdir, config, first, second


def test_trains_and_writes_outputs(runs):
    workdir, config, first, _ = runs
    assert first["stages"]["lifter"].trained_steps == config.stages.lifter.steps
    assert first["stages"]["lifter"].resumed_from is None
    for name in ("config.json", "metrics.jsonl", "results.json", "results.md"):
        assert (workdir / name).is_file(), name
    assert (workdir / "checkpoints" / "lifter" / str(config.stages.lifter.steps)).is_dir()
    records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert records and all(np.isfinite(r["lifter/loss"]) for r in records if "lifter/loss" in r)
    results = json.loads((workdir / "results.json").read_text())
    assert set(results["evaluations"]) == {"test", "test_2d_mix"}
    assert_run_timings(results, ["lifter"])
    for ev in results["evaluations"].values():
        for metric in ("mpjpe", "p_mpjpe", "n_mpjpe"):
            assert np.isfinite(ev["metrics"][metric]["action_wise"])
    # Every action of the test split appears in the per-action table.
    md = (workdir / "results.md").read_text()
    actions = set(results["evaluations"]["test"]["metrics"]["mpjpe"]["per_action"])
    assert actions and all(a in md for a in actions)


def test_second_invocation_resumes(runs):
    _, config, first, second = runs
    assert second["stages"]["lifter"].resumed_from == config.stages.lifter.steps
    assert second["stages"]["lifter"].trained_steps == 0
    a = first["evaluations"]["test"]["metrics"]["mpjpe"]["frame_wise"]
    b = second["evaluations"]["test"]["metrics"]["mpjpe"]["frame_wise"]
    np.testing.assert_allclose(a, b, rtol=1e-5)


def test_load_predictor_reproduces_results(runs):
    workdir, config, _, _ = runs
    from experiments import common

    predictor = inference.load_predictor(workdir)
    assert predictor.experiment == "baseline" and predictor.metric_scale
    assert dict(predictor.checkpoint) == {"lifter": config.stages.lifter.steps}
    assert predictor.normalization == "vp" and predictor.layout == "h36m17"
    test = common.load_datasets(config.data)["test"]
    ev = jeval.evaluate_3d(lambda x, c: predictor.predict(x, c)["pose3d"], test)
    want = json.loads((workdir / "results.json").read_text())["evaluations"]["test"]["metrics"]
    for metric in ("mpjpe", "p_mpjpe"):
        np.testing.assert_allclose(
            ev["metrics"][metric]["action_wise"], want[metric]["action_wise"], atol=1e-3
        )
