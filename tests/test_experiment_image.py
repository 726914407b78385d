"""Smoke tests of the image experiments: a few steps per stage in a temporary work directory,
results written, and a second run resumes from the checkpoints (no step is trained again)."""

import json
import logging

import numpy as np
import pytest
from _helpers import assert_run_timings

from experiments import wsp_image, zhou_image
from experiments.configs import wsp_image as wsp_image_config
from experiments.configs import zhou_image as zhou_image_config


def _stage_records(path, stage):
    return [r for r in map(json.loads, path.read_text().splitlines()) if r.get("stage") == stage]


def test_zhou_image_smoke_and_resume(tmp_path, caplog):
    cfg = zhou_image_config.get_config("smoke")
    with caplog.at_level(logging.INFO, logger="jpose.training"):
        out = zhou_image.run(cfg, str(tmp_path))
    # stage 1 and the 3d+2d ablation's stages 2-3 draw the same batches: one compiled block
    assert sum("compiling training block" in r.getMessage() for r in caplog.records) == 1
    res = out["results"]["3d+2d+geo"]
    assert set(res) == {"test_wild", "test_studio", "train_2d"}
    assert all(np.isfinite(v) for split in res.values() for v in split.values())
    for name in ("results.json", "results.md", "metrics.jsonl", "config.json"):
        assert (tmp_path / name).exists()
    record = json.loads((tmp_path / "results.json").read_text())
    assert set(record["evaluations"]) == {"test_wild", "test_studio"}
    assert_run_timings(record, ["stage1", "stage2", "stage3"])
    for stage in ("stage1", "stage2", "stage3"):
        assert (tmp_path / "checkpoints" / stage).is_dir()
    n_records = len((tmp_path / "metrics.jsonl").read_text().splitlines())
    again = zhou_image.run(cfg, str(tmp_path))  # resume: every stage complete, nothing trained
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == n_records
    np.testing.assert_allclose(again["results"]["3d+2d+geo"]["test_wild"]["mpjpe_mm"],
                               res["test_wild"]["mpjpe_mm"], rtol=1e-5)  # fmt: skip


def test_zhou_image_stage_weights_switch_only_losses():
    from jpose.image_losses import zhou_image_loss_weights as stage_weights

    w1 = stage_weights("3d+2d+geo", stage=1, lambda_reg=0.1, lambda_geo=0.01)
    w2 = stage_weights("3d+2d+geo", stage=2, lambda_reg=0.1, lambda_geo=0.01)
    w3 = stage_weights("3d+2d+geo", stage=3, lambda_reg=0.1, lambda_geo=0.01)
    w3b = stage_weights("3d+geo", stage=3, lambda_reg=0.1, lambda_geo=0.01)
    assert float(w1["hm_3d"]) == 0 and float(w1["reg"]) == 0  # stage 1: 2D module, 2D images
    assert float(w2["geo_2d"]) == 0 and float(w2["reg"]) == pytest.approx(0.1)
    assert float(w3["geo_2d"]) == pytest.approx(0.01) and float(w3["geo_3d"]) == 0
    assert float(w3b["geo_3d"]) == pytest.approx(0.01) and float(w3b["geo_2d"]) == 0
    assert set(w1) == set(w2) == set(w3) == set(w3b)  # one state.extra structure: no recompile


def test_wsp_image_smoke_and_resume(tmp_path):
    cfg = wsp_image_config.get_config("smoke")
    out = wsp_image.run(cfg, str(tmp_path))
    assert set(out["finetune"]) == {"pretrained", "scratch"}
    for row in out["finetune"].values():
        assert all(np.isfinite(v) for v in row.values())
    assert set(out["relative_depth"]) == {f"ΔS<={t}" for t in cfg.eval.delta_s}
    record = json.loads((tmp_path / "results.json").read_text())
    assert_run_timings(record, ["pretrain", "finetune_pretrained", "finetune_scratch"])
    for stage in ("pretrain", "finetune_pretrained", "finetune_scratch"):
        assert (tmp_path / "checkpoints" / stage).is_dir()
    n_records = len((tmp_path / "metrics.jsonl").read_text().splitlines())
    again = wsp_image.run(cfg, str(tmp_path))
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == n_records
    np.testing.assert_allclose(again["finetune"]["pretrained"]["MPJPE"],
                               out["finetune"]["pretrained"]["MPJPE"], rtol=1e-5)  # fmt: skip
