"""``experiments.zhou``: smoke run of both stages + resume; the ablation switch only changes which
loss terms are active."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _helpers import assert_restores_as_an_older_run, assert_run_timings

from experiments import common, zhou
from experiments.configs import zhou as zhou_config
from jpose import evaluation as jeval
from jpose import inference, losses, models
from jpose.data import SyntheticConfig, make_synthetic
from jpose.models.depth import aspect_preserving_2d, depth_batch_arrays
from jpose.training import PhaseContext, create_player, create_train_state


def test_smoke_run_two_stages_writes_results_and_resumes(tmp_path):
    config = zhou_config.get_config("smoke")
    first = zhou.run(config, str(tmp_path))
    for stage in ("stage2", "stage3"):
        assert first["stages"][stage].trained_steps == 2
        assert (tmp_path / "checkpoints" / stage / "2").is_dir()
    results = json.loads((tmp_path / "results.json").read_text())
    assert_run_timings(results, ["stage2", "stage3"])
    assert {"test", "test (perspective)"} <= set(results["evaluations"])
    for ev in results["evaluations"].values():
        assert np.isfinite(ev["metrics"]["mpjpe"]["action_wise"])
    sym = results["symmetry"]
    assert "test: prediction (mm)" in sym
    assert "heldout_2d: held-out 2D-only people, prediction (units of s)" in sym
    assert all(np.isfinite(v) for row in sym.values() for v in row.values())
    weights = results["stages"]
    assert weights["stage2"]["weights"]["geo_2d"] == 0.0  # stage 2: no geometric loss
    assert weights["stage3"]["weights"]["geo_2d"] == config.method.lambda_geo
    second = zhou.run(config, str(tmp_path))
    assert all(second["stages"][s].resumed_from == 2 for s in ("stage2", "stage3"))
    assert all(second["stages"][s].trained_steps == 0 for s in ("stage2", "stage3"))

    # the restored predictor reproduces the rescaled evaluation ("test") of results.json
    predictor = inference.load_predictor(tmp_path)
    assert predictor.experiment == "zhou"
    assert dict(predictor.checkpoint) == {"stage2": 2, "stage3": 2}
    assert inference.read_model_info(tmp_path)["avg_sum_length"] > 0
    test = common.load_datasets(config.data)["test"]
    ev = jeval.evaluate_3d(lambda x, c: predictor.predict(x, c)["pose3d"], test)
    want = results["evaluations"]["test"]["metrics"]
    for metric in ("mpjpe", "p_mpjpe"):
        np.testing.assert_allclose(
            ev["metrics"][metric]["action_wise"], want[metric]["action_wise"], atol=1e-3
        )
    # the declared pipeline (jpose alone); a run without the entry nor avg_sum_length (then
    # recomputed from the training data) restores the same
    assert inference.read_model_info(tmp_path)["pipeline"]["kind"] == "depth"
    old = tmp_path.parent / f"{tmp_path.name}_old"
    assert_restores_as_an_older_run(tmp_path, old, test.pose2d_norm[:8], test.confidence[:8],
                                    drop=("pipeline", "avg_sum_length"), atol=1e-5)  # fmt: skip


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
            w = losses.zhou_loss_weights(ablation, stage=stage, lambda_reg=lr, lambda_geo=lg)
            assert (w["reg"], w["geo_2d"], w["geo_3d"]) == pytest.approx(want), (ablation, stage)
    with pytest.raises(ValueError):
        losses.zhou_loss_weights("2d", stage=3, lambda_reg=lr, lambda_geo=lg)
    assert losses.ZHOU_ABLATIONS == zhou.ABLATIONS  # the library's and the config's lists agree


def test_ablation_switch_changes_only_active_terms():
    sc = SyntheticConfig(
        num_people={"train_3d": 2, "train_2d": 2, "test": 1, "test_2d_mix": 1}, poses_per_person=4
    )
    data = make_synthetic(seed=5, config=sc)
    b3 = depth_batch_arrays(data["train_3d"], with_depth=True, threshold=0.5)
    b2 = depth_batch_arrays(data["train_2d"], with_depth=False, threshold=0.5)
    batch = {"d3": {k: jnp.asarray(v) for k, v in b3.items()},
             "w2d": {k: jnp.asarray(v) for k, v in b2.items()}}  # fmt: skip
    # No batch norm: the 3D half's prediction does not depend on the presence of the 2D half.
    model = models.martinez_lifter(17, out_channels=1, width=16, num_blocks=1, dropout=0.0,
                                   use_batch_norm=False)  # fmt: skip
    player = create_player(model, optax.adam(1e-3), jax.random.key(0), jnp.zeros((2, 17, 2)))
    state = create_train_state({"depth": player})
    canon = np.full(16, 0.3, np.float32)
    out = {}
    for ablation in zhou.ABLATIONS:
        for stage in (2, 3):
            w = losses.zhou_loss_weights(ablation, stage=stage, lambda_reg=0.1, lambda_geo=0.01)
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


def test_ablations_differ_only_by_the_2d_supervision(tmp_path):
    """Zhou sec. 4.1.3 in keypoint form: 2D-only samples without the geometric loss carry no
    supervision, so ``3d+2d`` must train exactly like ``3d`` (same 2D-3D batches, same
    inference batch statistics); only ``3d+2d+geo`` may differ, and the held-out 2D symmetry
    is reported for every ablation."""
    out = {}
    for ablation in ("3d", "3d+2d", "3d+2d+geo"):
        config = zhou_config.get_config("smoke")
        config.method.ablation = ablation
        config.method.lambda_geo = 1.0  # make the geometric loss's effect visible in 2 steps
        out[ablation] = zhou.run(config, str(tmp_path / ablation.replace("+", "_")))
    mpjpe = {a: r["evaluations"]["test"]["metrics"]["mpjpe"]["frame_wise"] for a, r in out.items()}
    assert mpjpe["3d+2d"] == pytest.approx(mpjpe["3d"], rel=1e-5, abs=1e-4)
    sym = {a: r["symmetry_heldout_2d"]["mean"] for a, r in out.items()}
    assert sym["3d+2d"] == pytest.approx(sym["3d"], rel=1e-5)
    assert sym["3d+2d+geo"] != pytest.approx(sym["3d+2d"], rel=1e-6)


def test_bone_ratio_loss_sees_undistorted_2d():
    """Zhou eq. 3 on 2D-only people: x / width, y / height ("image" normalisation of a
    non-square image) distorts limb-length ratios; ``aspect_preserving_2d`` restores them."""
    import dataclasses

    from jpose import kinematics
    from jpose.data.common import normalize_2d

    sc = SyntheticConfig(
        num_people={"train_3d": 1, "train_2d": 2, "test": 1, "test_2d_mix": 1}, poses_per_person=4
    )
    ds = make_synthetic(seed=2, config=sc)["train_2d"]
    sizes = np.tile(np.array([[1000.0, 600.0]], np.float32), (len(ds), 1))  # 5:3 landscape
    image = dataclasses.replace(
        ds, image_size_px=sizes, normalization="image",
        pose2d_norm=normalize_2d(ds.pose2d_px, mode="image", image_size=sizes),
    )  # fmt: skip

    def ratios(p):  # bone lengths relative to the first bone (unit-free)
        lengths = np.asarray(kinematics.bone_lengths(p, layout=zhou.LAYOUT))
        return lengths / lengths[:, :1]

    px = ratios(ds.pose2d_px)
    assert not np.allclose(ratios(image.pose2d_norm), px, rtol=1e-2)  # distorted
    fixed = aspect_preserving_2d({"train_2d": image})["train_2d"]
    assert fixed.normalization == "vp"
    np.testing.assert_allclose(ratios(fixed.pose2d_norm), px, rtol=1e-4)
    unknown = dataclasses.replace(image, image_size_px=-np.ones_like(sizes))
    with pytest.raises(ValueError, match="pixel file"):
        aspect_preserving_2d({"train_2d": unknown})
