"""``experiments.drover``: smoke run + resume, and no 3D label reaches the generator's loss."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _helpers import assert_restores_as_an_older_run, assert_run_timings

from experiments import drover
from experiments.configs import drover as drover_config
from jpose import evaluation as jeval
from jpose import inference
from jpose.data import SyntheticConfig, make_synthetic
from jpose.models.drover import DroverJoints, normalize_source
from jpose.training import PhaseContext, create_player, create_train_state


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("drover")
    config = drover_config.get_config("smoke")
    first = drover.run(config, str(workdir))
    second = drover.run(config, str(workdir))
    return workdir, config, first, second


def test_smoke_run_writes_results_and_resumes(runs):
    workdir, config, first, second = runs
    stage = first["stages"]["seed0"]
    assert stage.trained_steps == config.stages.gan.steps and stage.resumed_from is None
    assert (workdir / "checkpoints" / "seed0" / str(config.stages.gan.steps)).is_dir()
    results = json.loads((workdir / "results.json").read_text())
    assert_run_timings(results, ["seed0"])
    # The learned model and the trivial baseline go through the same evaluation.
    assert {"test", "test (trivial baseline)"} <= set(results["evaluations"])
    for ev in results["evaluations"].values():
        assert np.isfinite(ev["metrics"]["p_mpjpe"]["action_wise"])
    assert "trivial baseline" in (workdir / "results.md").read_text()
    # Real pool: training 2D + 2 virtual views of each training skeleton.
    n = first["real_pool"]["train_3d 2D"]
    assert first["real_pool"]["2 virtual views of train_3d 3D"] == 2 * n
    assert second["stages"]["seed0"].resumed_from == config.stages.gan.steps
    assert second["stages"]["seed0"].trained_steps == 0


def test_load_predictor_reproduces_results(runs, tmp_path):
    from experiments import common

    workdir, config, _, _ = runs
    predictor = inference.load_predictor(workdir)
    assert predictor.experiment == "drover" and not predictor.metric_scale
    assert dict(predictor.checkpoint) == {"seed0": config.stages.gan.steps}
    info = inference.read_model_info(workdir)
    assert info["num_joints"] == 17 and info["head_root_distance"] > 0
    test = common.load_datasets(config.data)["test"]
    predict_3d = lambda x, c: predictor.predict(x, c)["pose3d"]  # noqa: E731
    ev = jeval.evaluate_3d(predict_3d, test)
    want = json.loads((workdir / "results.json").read_text())["evaluations"]["test"]["metrics"]
    for metric in ("mpjpe", "p_mpjpe"):
        np.testing.assert_allclose(
            ev["metrics"][metric]["action_wise"], want[metric]["action_wise"], atol=1e-3
        )
    pose = np.asarray(predict_3d(test.pose2d_norm[:4], test.confidence[:4]))
    np.testing.assert_allclose(pose[:, 0], 0.0, atol=1e-6)  # root-relative
    # the declared pipeline (jpose alone); a run without the entry nor head_root_distance (then
    # recomputed from the training data) restores the same
    assert info["pipeline"]["kind"] == "drover" and info["pipeline"]["stages"] == ["seed0"]
    assert_restores_as_an_older_run(workdir, tmp_path, test.pose2d_norm[:4], test.confidence[:4],
                                    drop=("pipeline", "head_root_distance"),
                                    atol=1e-5)  # fmt: skip


@pytest.fixture(scope="module")
def small_data():
    sc = SyntheticConfig(
        num_people={"train_3d": 3, "train_2d": 1, "test": 1, "test_2d_mix": 1},
        poses_per_person=4,
    )
    return make_synthetic(seed=3, config=sc)


def test_training_data_is_2d_only_and_independent_of_3d(small_data):
    config = drover_config.get_config("smoke")
    config.real2d.virtual_cameras = 0
    data, _ = drover.training_arrays(small_data, config)
    for group in data.values():
        for name, arr in group.items():
            assert "3d" not in name and arr.shape[-1] == 2, name
    # Replacing the 3D ground truth changes nothing the training sees.
    train = small_data["train_3d"]
    scrambled = dict(small_data)
    scrambled["train_3d"] = dataclasses.replace(
        train, pose3d_cam=train.pose3d_cam[::-1] + np.float32(3.0)
    )
    data2, _ = drover.training_arrays(scrambled, config)
    for g in data:
        for k in data[g]:
            np.testing.assert_array_equal(data[g][k], data2[g][k])


@pytest.mark.parametrize("num_joints", [17, 14])
def test_generator_objective_has_zero_gradient_wrt_3d_ground_truth(small_data, num_joints):
    config = drover_config.get_config("smoke")
    config.method.num_joints = num_joints
    spec = DroverJoints.of(num_joints)
    nets = drover.make_models(config)
    keys = jax.random.split(jax.random.key(0), 2)
    example = jnp.zeros((2, num_joints, 2))
    state = create_train_state(
        {n: create_player(nets[n], optax.adam(1e-3), k, example) for n, k in zip(nets, keys)}
    )
    _, g_phase = drover.make_phases(config)
    fields = {k: jnp.asarray(v) for k, v in small_data["train_3d"].arrays().items()}
    assert {"pose3d", "pose3d_cam"} <= set(fields)

    def objective(fields):
        # The whole path from a dataset's arrays (3D included) to the generator's loss.
        x = normalize_source(
            fields["pose2d_norm"], joints=spec, distance=10.0, head_root_distance=0.1
        )
        batch = {"inputs": {"x": x}, "real": {"r": x[::-1]}}
        ctx = PhaseContext(
            state, {"gen": state["gen"].params}, key=jax.random.key(1), axis_name=None, outputs={}
        )
        loss, _ = g_phase.loss_fn(ctx, batch)
        return loss

    grads = jax.grad(objective)(fields)
    for name in ("pose3d", "pose3d_cam"):
        assert np.all(np.asarray(grads[name]) == 0.0), name
    assert np.any(np.asarray(grads["pose2d_norm"]) != 0.0)  # the 2D path is live


def test_optimizers_linear_schedule_decays_to_zero():
    config = drover_config.get_config("smoke")
    params = {"w": jnp.ones(3)}
    grads = {"w": jnp.ones(3)}
    config.stages.gan.lr_schedule = "linear"
    tx = drover.make_optimizers(config, num_steps=4)["gen"]
    opt_state = tx.init(params)
    sizes = []
    for _ in range(5):
        updates, opt_state = tx.update(grads, opt_state, params)
        sizes.append(float(jnp.abs(updates["w"][0])))
    # Adam's first step has |update| = lr; the rate decays linearly 2e-4 -> 0 over 4 steps.
    np.testing.assert_allclose(sizes[0], config.stages.gan.lr_generator, rtol=1e-3)
    assert sizes[1] < sizes[0] and sizes[4] == 0.0
    config.stages.gan.lr_schedule = "cosine?"
    with pytest.raises(ValueError, match="lr_schedule"):
        drover.make_optimizers(config, num_steps=4)


def test_drover_joint_subsets_are_derived_from_the_layout():
    from jpose import skeleton
    from jpose.models.drover import DROVER14_DROPPED, DroverJoints

    lay = skeleton.H36M17
    j14 = DroverJoints.of(14)
    assert j14.num_joints == 14 and not set(lay.indices(DROVER14_DROPPED)) & set(j14.joints)
    assert [lay.joint_names[j14.joints[i]] for i in j14.centre] == ["RHip", "LHip"]
    pose = jnp.asarray(np.random.default_rng(0).normal(size=(2, 14, 3)))
    full = np.asarray(j14.to_layout(pose))
    np.testing.assert_allclose(full[:, list(j14.joints)], pose)
    for name in DROVER14_DROPPED:  # joints the generator does not see: its root point
        np.testing.assert_allclose(full[:, lay.index(name)], np.asarray(j14.root(pose))[:, 0])
    assert DroverJoints.of(17).joints == tuple(range(17))
    with pytest.raises(ValueError, match="14 or 17"):
        DroverJoints.of(15)
