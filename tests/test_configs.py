"""One config schema (issue 16): every preset of every method builds, validates, and has the
shared ``train`` run options, a ``stages`` block whose stages say how long they run, and an
``eval`` block."""

from __future__ import annotations

import importlib

import pytest

from experiments import common
from experiments.configs.data import eval_config, train_config
from jpose.training import rundir

PRESETS = {
    "baseline": ["", "smoke", "cmu", "h36m"],
    "camerapose": [None, "smoke", "cmu", "h36m"],
    "drover": ["", "smoke", "cmu", "h36m"],
    "li": ["", "smoke", "cmu", "h36m", "cmu,reproj", "cmu,trans", "cmu,no_pretrain",
           "cmu,uncalibrated", "cmu,trans_da", "cmu,trans,uncalibrated", "smoke,reproj"],
    "wsp": [None, "smoke", "cmu", "h36m"],
    "zhou": ["", "smoke", "cmu", "h36m"],
    "wsp_image": ["", "smoke", "real"],
    "zhou_image": ["", "smoke", "h36m"],
}  # fmt: skip
KEYPOINT_3D = ("baseline", "camerapose", "drover", "li", "zhou")
CASES = [(m, p) for m, ps in PRESETS.items() for p in ps]


@pytest.mark.parametrize("method, preset", CASES, ids=[f"{m}:{p}" for m, p in CASES])
def test_every_preset_follows_the_schema(method, preset):
    config = importlib.import_module(f"experiments.configs.{method}").get_config(preset)
    assert config.experiment == method
    rundir.validate_config(config)
    # the shared run options (a method with per-stage batch sizes deletes train.batch_size)
    shared = set(train_config()) - {"batch_size"}
    assert shared <= set(config.train), sorted(shared - set(config.train))
    options = common.train_options(config.train)
    assert options.steps_per_block >= 1
    assert config.stages and all("steps" in st for st in config.stages.values())
    assert "batch_size" in config.eval
    if method in KEYPOINT_3D:  # evaluated on 3D splits: the shared eval options
        assert set(eval_config()) <= set(config.eval), sorted(set(eval_config()) - set(config.eval))
    assert "parallel" not in config and "figures" not in config  # moved into train / eval
    common.check_known_fields(config)  # a preset only sets fields the method defines


def test_a_field_the_method_does_not_define_is_refused():
    """A ConfigDict takes new keys silently: ``train.steps`` on the baseline (whose length is
    ``stages.lifter.steps``) would train the default length without this check."""
    config = importlib.import_module("experiments.configs.baseline").get_config("smoke")
    config.train.steps = 6
    with pytest.raises(rundir.UserError, match=r"unknown field\(s\) train\.steps .*baseline"):
        common.check_known_fields(config)
    config = importlib.import_module("experiments.configs.baseline").get_config("smoke")
    config.stages.lifter.steps = 6  # a defined field: accepted
    common.check_known_fields(config)
