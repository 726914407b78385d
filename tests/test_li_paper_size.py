"""Li et al. (AAAI 2020) at the paper's sizes (issue 18 item 11): the ``h36m`` preset's model
and optimiser settings (width 1024, dropout 0.5, lr 1e-3, clipping) must train stably from the
first step. Run on the smoke data (no Human3.6M here) with one step per logged block."""

import json

import numpy as np
import pytest

from experiments import li
from experiments.configs import li as li_config

pytestmark = pytest.mark.usefixtures("fast_compile")


def _paper_size_smoke():
    paper = li_config.get_config("h36m")
    c = li_config.get_config("smoke")
    c.model = paper.model  # width 1024, dropout 0.5, output scale, zero-initialised outputs
    c.train.clip_norm = paper.train.clip_norm
    for stage in ("pretrain", "train"):
        c.stages[stage].lr = paper.stages[stage].lr
        c.stages[stage].warmup_steps = min(int(paper.stages[stage].warmup_steps), 4)  # short run
    c.stages.pretrain.steps, c.stages.train.steps = 6, 8
    c.train.steps_per_block = 1  # log every step
    c.eval.estimator_report = False
    return c


def test_paper_size_trains_stably_from_the_first_step(tmp_path):
    config = _paper_size_smoke()
    assert config.model.width == 1024 and config.model.dropout == 0.5
    li.run(config, str(tmp_path))
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    pre = [r["pretrain/loss"] for r in rows if "pretrain/loss" in r]
    train = [r["train/loss"] for r in rows if "train/loss" in r]
    assert len(pre) == 6 and len(train) == 8
    assert np.all(np.isfinite(pre + train))
    # eq. 6 (m^2; step 1 = the collapsed initial pose): no step throws joints metres away ...
    assert max(pre) < 1.5 * pre[0] and pre[-1] < pre[0]
    # ... and eqs. 2 + 5 (normalised units^2) never explode at the depth clamp when the train
    # stage's fresh Adam starts
    assert max(train) < 3.0 * train[0] and train[-1] < train[0]
    depth = [r.get("train/root_depth", r.get("pretrain/root_depth")) for r in rows]
    assert all(3.0 < d < 7.0 for d in depth if d is not None)  # the root stays in front


def test_output_scale_rule():
    assert li.output_scale(128) == 1.0 and li.output_scale(32) == 1.0
    assert li.output_scale(1024) == pytest.approx(0.125)
    assert li.output_scale(1024, scale=0.5) == 0.5  # an explicit scale wins
