"""``experiments.zhou``: smoke run of both stages + resume; the ablation switch only changes which
loss terms are active."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from experiments import common, zhou
from experiments.configs import zhou as zhou_config
from jpose import models
from jpose.data import SyntheticConfig, make_synthetic
from jpose.training import PhaseContext, create_player, create_train_state


def test_smoke_run_two_stages_writes_results_and_resumes(tmp_path):
    config = zhou_config.get_config("smoke")
    first = zhou.run(config, str(tmp_path))
    for stage in ("stage2", "stage3"):
        assert first["stages"][stage].trained_steps == 2
        assert (tmp_path / "checkpoints" / stage / "2").is_dir()
    results = json.loads((tmp_path / "results.json").read_text())
    assert {"test", "test (perspective)"} <= set(results["evaluations"])
    for ev in results["evaluations"].values():
        assert np.isfinite(ev["metrics"]["mpjpe"]["action_wise"])
    sym = results["symmetry"]
    assert "test: prediction (mm)" in sym and "train_2d: prediction (units of s)" in sym
    assert all(np.isfinite(v) for row in sym.values() for v in row.values())
    weights = results["timings"]["stages"]
    assert weights["stage2"]["weights"]["geo_2d"] == 0.0  # stage 2: no geometric loss
    assert weights["stage3"]["weights"]["geo_2d"] == config.method.lambda_geo
    second = zhou.run(config, str(tmp_path))
    assert all(second["stages"][s].resumed_from == 2 for s in ("stage2", "stage3"))
    assert all(second["stages"][s].trained_steps == 0 for s in ("stage2", "stage3"))

    # the restored predictor reproduces the rescaled evaluation ("test") of results.json
    predictor = common.load_predictor(tmp_path)
    assert predictor.experiment == "zhou"
    assert dict(predictor.checkpoint) == {"stage2": 2, "stage3": 2}
    assert common.read_model_info(tmp_path)["avg_sum_length"] > 0
    test = common.load_datasets(config.data)["test"]
    ev = common.evaluate_3d(lambda x, c: predictor.predict(x, c)["pose3d"], test)
    want = results["evaluations"]["test"]["metrics"]
    for metric in ("mpjpe", "p_mpjpe"):
        np.testing.assert_allclose(
            ev["metrics"][metric]["action_wise"], want[metric]["action_wise"], atol=1e-3
        )


def test_loss_weights_table():
    lr, lg = 0.1, 0.01
    expected = {  # (stage 2, stage 3) weights of (reg, geo_2d, geo_3d)
        "3d": ((lr, 0, 0), (lr, 0, 0)),
        "3d+geo": ((lr, 0, 0), (lr, 0, lg)),
        "3d+2d": ((lr, 0, 0), (lr, 0, 0)),
        "3d+2d+geo": ((lr, 0, 0), (lr, lg, 0)),
    }
    for ablation, per_stage in expected.items():
        for stage, want in zip((2, 3), per_stage):
            w = zhou.loss_weights(ablation, stage=stage, lambda_reg=lr, lambda_geo=lg)
            assert (w["reg"], w["geo_2d"], w["geo_3d"]) == pytest.approx(want), (ablation, stage)
    with pytest.raises(ValueError):
        zhou.loss_weights("2d", stage=3, lambda_reg=lr, lambda_geo=lg)


def test_ablation_switch_changes_only_active_terms():
    sc = SyntheticConfig(
        num_people={"train_3d": 2, "train_2d": 2, "test": 1, "test_2d_mix": 1}, poses_per_person=4
    )
    data = make_synthetic(seed=5, config=sc)
    b3 = zhou._host_batch_arrays(data["train_3d"], with_depth=True, threshold=0.5)
    b2 = zhou._host_batch_arrays(data["train_2d"], with_depth=False, threshold=0.5)
    batch = {"d3": {k: jnp.asarray(v) for k, v in b3.items()},
             "d2": {k: jnp.asarray(v) for k, v in b2.items()}}  # fmt: skip
    # No batch norm: the 3D half's prediction does not depend on the presence of the 2D half.
    model = models.martinez_lifter(17, out_channels=1, width=16, num_blocks=1, dropout=0.0,
                                   use_batch_norm=False)  # fmt: skip
    player = create_player(model, optax.adam(1e-3), jax.random.key(0), jnp.zeros((2, 17, 2)))
    state = create_train_state({"depth": player})
    canon = np.full(16, 0.3, np.float32)
    out = {}
    for ablation in zhou.ABLATIONS:
        for stage in (2, 3):
            w = zhou.loss_weights(ablation, stage=stage, lambda_reg=0.1, lambda_geo=0.01)
            phase = zhou.make_phase(w, use_2d="2d" in ablation, canonical_lengths=canon,
                                    scale_px=16.0, threshold=0.5)  # fmt: skip

            def loss(params, phase=phase):
                ctx = PhaseContext(state, {"depth": params}, key=jax.random.key(1),
                                   axis_name=None, outputs={})  # fmt: skip
                return phase.loss_fn(ctx, batch)

            (value, terms), grads = jax.value_and_grad(loss, has_aux=True)(player.params)
            out[ablation, stage] = (float(value), {k: float(v) for k, v in terms.items()},
                                    grads, w)  # fmt: skip
    ref_terms = out["3d+2d+geo", 3][1]
    assert ref_terms["geo_2d"] > 0 and ref_terms["geo_3d"] > 0 and ref_terms["reg"] > 0
    for (ablation, _stage), (value, terms, _, w) in out.items():
        # The regression and 3D-geometry terms are the same whatever the switch ...
        assert terms["reg"] == pytest.approx(ref_terms["reg"], rel=1e-5)
        assert terms["geo_3d"] == pytest.approx(ref_terms["geo_3d"], rel=1e-5)
        if "2d" in ablation:
            assert terms["geo_2d"] == pytest.approx(ref_terms["geo_2d"], rel=1e-5)
        else:
            assert terms["geo_2d"] == 0.0  # ... 3D-only ablations never read the 2D half
        # ... and the loss is the weighted sum of the active terms.
        assert value == pytest.approx(sum(w[k] * terms[k] for k in w), rel=1e-5)
    # Stage 2 (no geometry): all four ablations give the same loss and gradients.
    g0 = out["3d", 2][2]
    for ablation in zhou.ABLATIONS:
        assert out[ablation, 2][0] == pytest.approx(out["3d", 2][0], rel=1e-6)
        for a, b in zip(jax.tree.leaves(g0), jax.tree.leaves(out[ablation, 2][2])):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-8)
