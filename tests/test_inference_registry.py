"""The method registry of ``jpose.inference.load_predictor`` (issue 16 item 4)."""

import json
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
