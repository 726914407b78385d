"""Validation during training (issue 21): a split held out of the training data is evaluated every
N steps; the curves go to metrics.jsonl, TensorBoard and the training-curve figure; "best on
validation" selects the evaluated checkpoint and the results header says so."""

from __future__ import annotations

import json

import numpy as np
import pytest

from experiments import common, zhou
from experiments.configs import zhou as zhou_config
from jpose import viz
from jpose.data import SyntheticConfig, make_synthetic


def test_holdout_split_keeps_groups_together():
    sizes = {"train_3d": 10, "train_2d": 1, "test": 1, "test_2d_mix": 1}
    ds = make_synthetic(seed=0, config=SyntheticConfig(num_people=sizes, poses_per_person=6))
    train, val = common.holdout_split(ds["train_3d"], 0.2, seed=0, group_keys=("person",))
    assert len(train) + len(val) == len(ds["train_3d"]) and len(val) >= 0.2 * len(ds["train_3d"])
    if "person" in ds["train_3d"].labels:
        assert not set(val.labels["person"]) & set(train.labels["person"])
    # without a group label: a random fraction of examples
    train2, val2 = common.holdout_split(ds["train_3d"], 0.25, seed=0, group_keys=("nothing",))
    assert len(val2) == round(0.25 * len(ds["train_3d"])) and len(train2) + len(val2) == 60
    with pytest.raises(ValueError, match="fraction"):
        common.holdout_split(ds["train_3d"], 1.0, seed=0)


def test_zhou_validation_curves_and_best_checkpoint(tmp_path):
    pytest.importorskip("tensorboardX")
    from test_tensorboard import read_scalars

    config = zhou_config.get_config("smoke")
    config.train.val_fraction = 0.25
    config.train.eval_every = 2
    config.train.select = "best"
    config.stages.stage2.steps = 6
    out = zhou.run(config, str(tmp_path))

    records = [json.loads(r) for r in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    val = [r for r in records if r["split"] == "val"]
    assert [r["step"] for r in val] == [2, 4, 6, 8]  # every 2 steps of stage 2, end of stage 3
    assert all(np.isfinite(r["mpjpe_mm"]) and np.isfinite(r["p_mpjpe_mm"]) for r in val)
    best = min((r for r in val if r["stage"] == 0), key=lambda r: r["mpjpe_mm"])["step"]
    assert out["stages"]["stage2"].selected_step == best

    header = json.loads((tmp_path / "results.json").read_text())["header"]
    assert header["checkpoint"]["stage2"] == best
    assert "best validation" in header["model_selection"]
    assert "never used" in header["model_selection"]

    tb = read_scalars(tmp_path / "tensorboard")
    assert [s for s, _ in tb["val/mpjpe_mm"]] == [2, 4, 6, 8]
    groups = viz.default_curve_groups(viz.read_metrics(tmp_path / "metrics.jsonl"))
    assert set(groups["validation"]) == {"mpjpe_mm", "p_mpjpe_mm"}

    with pytest.raises(ValueError, match="validation"):
        config.train.val_fraction = 0.0
        zhou.run(config, str(tmp_path / "no_val"))


def test_baseline_validation_and_best_checkpoint(tmp_path):
    from experiments import baseline
    from experiments.configs import baseline as baseline_config

    config = baseline_config.get_config("smoke")
    config.train.update(val_fraction=0.25, eval_every=2, select="best", steps_per_block=2)
    config.stages.lifter.steps = 6
    out = baseline.run(config, str(tmp_path))
    records = [json.loads(r) for r in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    val = [r for r in records if r["split"] == "val"]
    assert [r["step"] for r in val] == [2, 4, 6]
    best = min(val, key=lambda r: r["mpjpe_mm"])["step"]
    assert out["stages"]["lifter"].selected_step == best
    header = json.loads((tmp_path / "results.json").read_text())["header"]
    assert header["checkpoint"]["lifter"] == best and "never used" in header["model_selection"]
