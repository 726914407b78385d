"""Tests of experiments.li: entry point smoke + resume, no 3D in training, consistent losses."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _helpers import assert_restores_as_an_older_run, assert_run_timings

from experiments import common, li
from experiments.configs import li as li_config
from jpose import evaluation as jeval
from jpose import inference
from jpose import multiview as mv
from jpose.data import SyntheticConfig, make_synthetic
from jpose.data.multiview import build_multiview_set


@pytest.fixture(scope="module")
def tiny():
    cfg = SyntheticConfig(
        num_people={"train_3d": 2, "train_2d": 1, "test": 1, "test_2d_mix": 1},
        poses_per_person=4,
        views_per_pose=3,
    )
    return make_synthetic(seed=0, config=cfg)["train_3d"]


class _OracleContext:
    """A phase context whose branches return the ground truth (a consistent prediction)."""

    def __init__(self, rel, root):
        self.out = {"lifter": rel, "root": root}

    def apply(self, name, *inputs, **kwargs):
        return self.out[name]


def _oracle(ds, groups, offset=0.0):
    gt = jnp.asarray(ds.pose3d_cam[groups])  # [M, V, J, 3]
    root = gt[..., li.ROOT, :]
    return _OracleContext(gt - root[..., None, :], root - jnp.array([0.0, 0.0, offset]))


def test_training_set_has_no_3d_and_needs_none(tiny):
    full = build_multiview_set(tiny, group_keys=("pose_index",))
    assert set(full.arrays) == set(li.TRAIN_KEYS)
    assert all("3d" not in k for k in full.arrays)
    # the same training set is built from a copy without any 3D pose
    blind = build_multiview_set(tiny.without_3d(), group_keys=("pose_index",))
    for k in li.TRAIN_KEYS:
        np.testing.assert_array_equal(full.arrays[k], blind.arrays[k])
    # virtual views: the 3D only creates 2D inputs and cameras, never a target
    opts = li.view_options(li_config.get_config().multiview)
    virt = build_multiview_set(tiny, group_keys=("pose_index",), num_virtual_views=2, **opts)
    assert virt.num_views == 5 and set(virt.arrays) == set(li.TRAIN_KEYS)
    # a batch carrying 3D is refused before any loss is computed
    batch = {"mv": {k: jnp.asarray(v) for k, v in full.arrays.items()}}
    batch["mv"]["pose3d"] = jnp.zeros(full.arrays["pose2d"].shape[:-1] + (3,))
    with pytest.raises(ValueError, match="beyond"):
        li.pretrain_loss_fn(_OracleContext(None, None), batch)


def test_losses_zero_for_consistent_views_and_gradient_free_of_3d(tiny):
    from jpose.data.common import view_groups

    groups = view_groups(tiny, views=[0, 1, 2], keys=("pose_index",))
    mvset = build_multiview_set(tiny, group_keys=("pose_index",))
    batch = {"mv": {k: jnp.asarray(v) for k, v in mvset.arrays.items()}}
    ctx = _oracle(tiny, groups, offset=5.0)
    pre, _ = li.pretrain_loss_fn(ctx, batch, root_depth_offset=5.0)
    assert float(pre) < 1e-8  # metres^2: eq. 6 vanishes for a consistent pair
    total, m = li.train_loss_fn(ctx, batch, transform_weight=1.0, root_depth_offset=5.0)
    assert float(m["reproj"]) < 1e-8 and float(m["t_reproj"]) < 1e-8 and float(total) < 1e-8
    # a wrong depth is penalised
    wrong = _OracleContext(ctx.out["lifter"], ctx.out["root"] * 1.1)
    assert float(li.pretrain_loss_fn(wrong, batch, root_depth_offset=5.0)[0]) > 1e-3
    # gradients reach the branches' outputs (what trains them) and are finite
    g = jax.grad(
        lambda rel: li.train_loss_fn(_OracleContext(rel, ctx.out["root"]), batch,
                                     transform_weight=1.0, root_depth_offset=5.0)[0]
    )(ctx.out["lifter"] + 0.01)  # fmt: skip
    assert np.isfinite(np.asarray(g)).all() and float(jnp.abs(g).max()) > 0


def test_uncalibrated_extrinsics_recover_synthetic_rig(tiny):
    opts = li.view_options(li_config.get_config("smoke").multiview)
    mvset = build_multiview_set(
        tiny, group_keys=("pose_index",), rig_keys=("pose_index",), extrinsics="uncalibrated",
        **opts,
    )  # fmt: skip
    r_true, t_true = mvset.true_extrinsics
    r_est = mvset.arrays["rotation"].astype(np.float64)
    t_est = mvset.arrays["translation"].astype(np.float64)
    # noise-free float32 2D: the estimate matches the calibration up to float32 rounding
    assert np.degrees(np.max(mv.rotation_angle_error(r_est, r_true))) < 0.05
    assert np.degrees(np.max(mv.direction_angle_error(t_est[:, 1:], t_true[:, 1:]))) < 0.2
    np.testing.assert_allclose(np.linalg.norm(t_est, axis=-1), np.linalg.norm(t_true, axis=-1),
                               rtol=1e-5)  # fmt: skip
    assert set(mvset.estimator_errors) == {"view1", "view2"}


def test_entry_point_smoke_and_resume(tmp_path):
    config = li_config.get_config("smoke")
    config.eval.estimator_report = False
    out = li.run(config, str(tmp_path))
    record = json.loads((tmp_path / "results.json").read_text())
    assert_run_timings(record, ["pretrain", "train"])
    assert (tmp_path / "results.md").exists() and (tmp_path / "config.json").exists()
    assert (tmp_path / "checkpoints" / "pretrain").is_dir()
    assert (tmp_path / "checkpoints" / "train").is_dir()
    for split in ("test",):
        m = record["evaluations"][split]["metrics"]
        assert np.isfinite(m["mpjpe"]["action_wise"]) and np.isfinite(m["p_mpjpe"]["frame_wise"])
        assert m["mpjpe"]["per_action"]
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert any("train/t_reproj" in ln for ln in lines)
    assert out["stages"]["train"].trained_steps == config.stages.train.steps
    # a second invocation finds both stages complete and only evaluates
    again = li.run(config, str(tmp_path))
    for stage in ("pretrain", "train"):
        assert again["stages"][stage].trained_steps == 0
        assert again["stages"][stage].resumed_from == again["stages"][stage].num_steps
    np.testing.assert_allclose(
        again["evaluations"]["test"]["metrics"]["mpjpe"]["frame_wise"],
        out["evaluations"]["test"]["metrics"]["mpjpe"]["frame_wise"],
        rtol=1e-5,
    )
    # the restored predictor (root-relative lifting branch) reproduces results.json
    predictor = inference.load_predictor(tmp_path)
    assert predictor.experiment == "li"
    assert dict(predictor.checkpoint) == {s: again["stages"][s].num_steps for s in li.STAGES}
    test = common.load_datasets(config.data)["test"]
    ev = jeval.evaluate_3d(lambda x, c: predictor.predict(x, c)["pose3d"], test)
    want = record["evaluations"]["test"]["metrics"]
    for metric in ("mpjpe", "p_mpjpe"):
        np.testing.assert_allclose(
            ev["metrics"][metric]["action_wise"], want[metric]["action_wise"], atol=1e-3
        )
    out3d = predictor.predict(test.pose2d_norm[:2], test.confidence[:2])
    assert out3d["translation"].shape == (2, 3)
    # the declared pipeline (jpose alone); a run without the entry restores the same
    assert inference.read_model_info(tmp_path)["pipeline"]["networks"].keys() == {"lifter", "root"}
    old = tmp_path.parent / f"{tmp_path.name}_old"
    assert_restores_as_an_older_run(tmp_path, old, test.pose2d_norm[:4], test.confidence[:4],
                                    drop=("pipeline", "layout"))  # fmt: skip


def test_config_variants():
    assert li_config.get_config("cmu,reproj").stages.train.transform_weight == 0.0
    assert li_config.get_config("cmu,trans").multiview.num_virtual_views == 0
    assert li_config.get_config("cmu").multiview.num_virtual_views == 8
    assert not li_config.get_config("cmu,no_pretrain").stages.pretrain.enabled
    assert li_config.get_config(",uncalibrated").multiview.extrinsics == "uncalibrated"
    h = li_config.get_config("h36m")
    assert h.model.width == 1024 and h.stages.train.boundaries == (100.0, 200.0)
    s = h.stages
    assert s.pretrain.epochs == 20 and s.train.epochs == 300 and s.train.factor == 0.1
    with pytest.raises(ValueError, match="variant"):
        li_config.get_config("cmu,bogus")
