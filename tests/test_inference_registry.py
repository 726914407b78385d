"""The method registry of ``jpose.inference.load_predictor`` (issue 16 item 4)."""

import json
import pathlib
import types

import numpy as np
import pytest

from jpose import inference


def _workdir(tmp_path, experiment):
    (tmp_path / "config.json").write_text(json.dumps({"experiment": experiment, "scale": 2.0}))
    (tmp_path / "results.json").write_text("{}")  # no status.json: finished when results exist
    return tmp_path


def test_a_registered_method_restores_its_work_directories(tmp_path, monkeypatch):
    calls = []

    def load_predictor(config, workdir, *, step=None):
        calls.append((config, step))
        return inference.Predictor(
            experiment="toy", predict=lambda x, c: {"pose3d": np.zeros((*x.shape[:-1], 3))},
            normalization="vp", checkpoint={}, config=config,
        )  # fmt: skip

    toy = types.SimpleNamespace(STAGES=("train",), load_predictor=load_predictor)
    monkeypatch.setattr(inference.predictor, "_REGISTERED", {})
    wd = _workdir(tmp_path, "toy")
    with pytest.raises(ValueError, match="unknown experiment 'toy'.*baseline"):
        inference.load_predictor(wd)
    inference.register_method("toy", toy)
    assert "toy" in inference.registered_methods()
    p = inference.load_predictor(wd, step=7)
    assert p.experiment == "toy" and calls == [({"experiment": "toy", "scale": 2.0}, 7)]
    assert p.predict(np.zeros((2, 17, 2)), None)["pose3d"].shape == (2, 17, 3)


def test_a_registered_import_path_that_fails_names_the_module(tmp_path, monkeypatch):
    monkeypatch.setattr(inference.predictor, "_REGISTERED", {})
    inference.register_method("ghost", "no_such_package.ghost")
    with pytest.raises(ImportError, match="no_such_package.ghost"):
        inference.load_predictor(_workdir(tmp_path, "ghost"))


def test_jpose_train_finds_the_method_and_hands_it_the_command_line(capsys):
    """``jpose-train <method> ...`` runs the registered method's module as ``python -m`` would
    (its own flags and checks: an empty ``--workdir`` is the method's user error); a missing or
    unknown method is one message."""
    import subprocess
    import sys

    from jpose.training import cli

    assert cli.main([]) == 2 and "usage: jpose-train" in capsys.readouterr().err
    assert cli.main(["--help"]) == 0 and "camerapose" in capsys.readouterr().out
    assert cli.main(["nope", "--workdir=x"]) == 2
    assert "unknown method 'nope'" in capsys.readouterr().err
    out = subprocess.run(
        [sys.executable, "-m", "jpose.training.cli", "baseline", "--workdir=",
         "--config=experiments/configs/baseline.py:smoke"],
        capture_output=True, text=True, timeout=300, cwd=pathlib.Path(__file__).parents[1],
    )  # fmt: skip
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith("experiments.baseline: error: the work directory path is empty")
