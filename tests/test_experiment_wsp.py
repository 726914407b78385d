"""Smoke test of ``experiments.wsp``: a few steps per stage, resume, results written."""

import json

import numpy as np
from _helpers import assert_restores_as_an_older_run, assert_run_timings

from experiments import common, wsp
from experiments.configs import wsp as wsp_config
from jpose import evaluation as jeval
from jpose import inference


def _config():
    c = wsp_config.get_config("smoke")
    c.stages.finetune.fractions = (0.5,)  # one fine-tuning data size, both initialisations
    return c


def test_smoke_run_resume_and_results(tmp_path):
    config = _config()
    out = wsp.run(config, str(tmp_path))
    stages = out["stages"]
    assert set(stages) == {"pretrain", "finetune_050pct_pretrained", "finetune_050pct_random"}
    assert all(s["resumed_from"] is None and s["trained_steps"] == 4 for s in stages.values())
    for name in stages:
        assert any((tmp_path / "checkpoints" / name).iterdir()), name
    for proto in ("protocol 1", "protocol 2"):
        table = out["rd"][proto]
        assert list(table) == ["ΔS<=1", "ΔS<=0.5", "ΔS<=0.3", "ΔS<=0.1"]
        assert np.isfinite(table["ΔS<=1"]["auc"]) and table["ΔS<=1"]["joints"] > 0
    rows = out["finetune"]
    (row,) = rows.values()
    assert all(np.isfinite(v) for v in row.values()) and len(row) == 4
    rec = json.loads((tmp_path / "results.json").read_text())
    assert_run_timings(rec, ["pretrain", "finetune_050pct_pretrained", "finetune_050pct_random"])
    assert rec["header"]["model_selection"].startswith("none")
    md = (tmp_path / "results.md").read_text()
    assert "RD protocol 2" in md and "Relative-depth builder counts" in md
    n_lines = len((tmp_path / "metrics.jsonl").read_text().splitlines())

    # second invocation: every stage restored from its final checkpoint, nothing retrained
    again = wsp.run(config, str(tmp_path))
    assert all(s["resumed_from"] == 4 and s["trained_steps"] == 0 for s in again["stages"].values())
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == n_lines
    np.testing.assert_allclose(
        again["rd"]["protocol 1"]["ΔS<=1"]["auc"], out["rd"]["protocol 1"]["ΔS<=1"]["auc"]
    )

    # the default predictor: the pre-trained lifter at the largest fraction, as evaluated
    predictor = inference.load_predictor(tmp_path)  # the declared pipeline (jpose alone)
    assert predictor.experiment == "wsp"
    x = np.random.default_rng(0).normal(0, 0.3, (5, 17, 2)).astype(np.float32)
    c = np.random.default_rng(1).uniform(0, 1, (5, 17)).astype(np.float32) * (x[..., 0] > -0.3)
    # a run without the pipeline entry restores the same lifter (the method's loader)
    assert_restores_as_an_older_run(tmp_path, tmp_path.parent / f"{tmp_path.name}_old", x, c)
    assert dict(predictor.checkpoint) == {"pretrain": 4, "finetune_050pct_pretrained": 4}
    info = inference.read_model_info(tmp_path)
    assert info["default_variant"] == "finetune_050pct_pretrained"
    test = common.load_datasets(config.data)["test"]
    for variant, stage in info["finetune"].items():
        p = predictor if variant == info["default_variant"] else wsp.load_predictor(
            config, tmp_path, variant=variant
        )  # fmt: skip
        ev = jeval.evaluate_3d(lambda x, c, p=p: p.predict(x, c)["pose3d"], test)
        want = rec["evaluations"][stage["evaluation"]]["metrics"]
        for metric in ("mpjpe", "p_mpjpe"):
            np.testing.assert_allclose(
                ev["metrics"][metric]["action_wise"], want[metric]["action_wise"], atol=1e-3
            )
