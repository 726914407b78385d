"""One config schema (issue 16): every preset of every method builds, validates, and has a
``stages`` block whose stages say how long they run and an ``eval`` block; every preset resolves
to the fields and values pinned in ``tests/data/config_presets.json``."""

from __future__ import annotations

import importlib
import json
import pathlib

import pytest

from experiments import common
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
CASES = [(m, p) for m, ps in PRESETS.items() for p in ps]


@pytest.mark.parametrize("method, preset", CASES, ids=[f"{m}:{p}" for m, p in CASES])
def test_every_preset_follows_the_schema(method, preset):
    config = importlib.import_module(f"experiments.configs.{method}").get_config(preset)
    assert config.experiment == method
    rundir.validate_config(config)
    options = common.train_options(config.train)
    assert options.steps_per_block >= 1
    assert config.stages and all("steps" in st for st in config.stages.values())
    assert "batch_size" in config.eval
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


# {"<module>:<preset>" ("<module>" alone: preset None): the config as json}, dumped at commit
# 1dee11b (each config written out field by field) with to_json_best_effort(sort_keys=True);
# regenerate an entry only for an intended change of that preset
PINNED = json.loads((pathlib.Path(__file__).parent / "data" / "config_presets.json").read_text())


def _differences(pinned, now, path=""):
    """``path: pinned -> now`` of every json leaf that differs in value or type (int vs float)."""
    if isinstance(pinned, dict) and isinstance(now, dict):
        return [
            d
            for k in sorted(set(pinned) | set(now))
            for d in _differences(pinned.get(k, "<absent>"), now.get(k, "<absent>"), f"{path}.{k}")
        ]
    if isinstance(pinned, list) and isinstance(now, list) and len(pinned) == len(now):
        return [
            d
            for i, (a, b) in enumerate(zip(pinned, now))
            for d in _differences(a, b, f"{path}[{i}]")
        ]
    if pinned != now or type(pinned) is not type(now):
        return [f"{path or '<root>'}: {pinned!r} -> {now!r}"]
    return []


def test_the_pinned_presets_cover_every_method():
    assert {key.split(":")[0] for key in PINNED} == set(PRESETS) and len(PINNED) >= 40
    assert _differences({"a": [1, 2.0]}, {"a": [1, 2], "b": 0}) == [
        ".a[1]: 2.0 -> 2",
        ".b: '<absent>' -> 0",
    ]


@pytest.mark.parametrize("key", sorted(PINNED))
def test_every_preset_resolves_as_pinned(key):
    method, colon, preset = key.partition(":")
    config = importlib.import_module(f"experiments.configs.{method}").get_config(
        preset if colon else None
    )
    now = json.loads(config.to_json_best_effort(sort_keys=True))
    differences = _differences(PINNED[key], now)
    assert not differences, f"preset {key} resolves differently: " + "; ".join(differences)
