"""Library pieces of Drover et al. (``jpose.models.drover``) and Zhou et al.
(``jpose.models.depth``) moved out of the method modules, and ``jpose.evaluation.
evaluate_3d``'s joint subset: each checked against an independent numpy computation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jpose import evaluation as jeval
from jpose import kinematics, skeleton
from jpose.data import SyntheticConfig, make_synthetic
from jpose.models import depth as dm
from jpose.models import drover as dr

LAY = skeleton.H36M17


@pytest.fixture(scope="module")
def data():
    sc = SyntheticConfig(
        num_people={"train_3d": 2, "train_2d": 1, "test": 2, "test_2d_mix": 1}, poses_per_person=3
    )
    return make_synthetic(seed=4, config=sc)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


# ------------------------------------------------------------------------------------------------
# Drover et al.
# ------------------------------------------------------------------------------------------------


def test_head_root_distance_and_real_pool_normalise_each_source(data):
    spec = dr.DroverJoints.of(14)
    pose2d = data["train_3d"].pose2d_norm
    want = np.mean(np.linalg.norm(pose2d[:, LAY.index("Head")] - pose2d[:, LAY.root], axis=-1))
    assert dr.head_root_distance(pose2d, spec) == pytest.approx(want, rel=1e-6)
    assert spec.layout_centre == tuple(LAY.indices(("RHip", "LHip")))
    # a second source in other units (x 3, shifted) normalises to the same poses
    pool = dr.real_pool([pose2d, 3.0 * pose2d + 1.0], joints=spec, distance=10.0)
    n = len(pose2d)
    assert pool.shape == (2 * n, 14, 2) and pool.dtype == np.float32
    np.testing.assert_allclose(pool[n:], pool[:n], atol=1e-5)
    head = spec.joints.index(LAY.index("Head"))
    # pelvis (dropped) at the origin: the head's distance to it is the head's norm
    root = pose2d[:, LAY.root]
    expect = (pose2d[:, list(spec.joints)] - root[:, None]) / want / 10.0
    np.testing.assert_allclose(pool[:n], expect, rtol=1e-4, atol=1e-6)
    assert np.mean(np.linalg.norm(pool[:n, head], axis=-1)) == pytest.approx(0.1, rel=1e-5)


def test_virtual_views_without_rotation_are_the_pinhole_projection(data):
    pose = data["train_3d"].pose3d_cam
    views = dr.virtual_views(
        pose, jax.random.key(0), num_views=2, azimuth_deg=(0, 0), elevation_deg=(0, 0)
    )
    want = pose[..., :2] / pose[..., 2:]
    assert views.shape == (2 * len(pose), 17, 2)
    np.testing.assert_allclose(views, np.concatenate([want, want]), rtol=1e-5, atol=1e-6)
    # a random rotation about the pelvis keeps the pelvis where it was and the bone lengths
    rotated = dr.virtual_views(pose, jax.random.key(1), num_views=3)
    for v in range(3):
        part = rotated[v * len(pose) : (v + 1) * len(pose)]
        np.testing.assert_allclose(part[:, LAY.root], want[:, LAY.root], rtol=1e-5, atol=1e-6)
    assert not np.allclose(rotated[: len(pose)], want, atol=1e-3)


def test_random_projection_without_rotation_and_recentring():
    spec = dr.DroverJoints.of(17)
    rng = np.random.default_rng(0)
    points = rng.normal(size=(3, 17, 3)).astype(np.float32) + np.array([0, 0, 10], np.float32)
    p = dr.random_projection(
        jnp.asarray(points), jax.random.key(0), joints=spec, distance=10.0,
        azimuth_deg=(0, 0), elevation_deg=(0, 0),
    )  # fmt: skip
    proj = points[..., :2] / np.maximum(points[..., 2:], 1.0)
    np.testing.assert_allclose(p, proj - proj[:, :1], rtol=1e-5, atol=1e-6)
    raw = dr.random_projection(
        jnp.asarray(points), jax.random.key(0), joints=spec, distance=10.0,
        azimuth_deg=(0, 0), elevation_deg=(0, 0), recentre=False,
    )  # fmt: skip
    np.testing.assert_allclose(raw, proj, rtol=1e-5, atol=1e-6)


def test_adversarial_objectives_match_eq_4():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(6, 2)).astype(np.float32)
    lr = np.asarray(dr.real_logit(jnp.asarray(logits)))
    np.testing.assert_allclose(lr, logits[:, 0] - logits[:, 1], rtol=1e-6)
    real, fake = lr[:3], lr[3:]
    loss, metrics = dr.discriminator_objective(jnp.asarray(real), jnp.asarray(fake))
    want = -np.mean(np.log(_sigmoid(real))) - np.mean(np.log(1.0 - _sigmoid(fake)))
    assert float(loss) == pytest.approx(want, rel=1e-5)
    assert float(metrics["accuracy"]) == pytest.approx(
        0.5 * (np.mean(real > 0) + np.mean(fake < 0))
    )
    offsets = jnp.asarray(rng.normal(size=(3, 17)).astype(np.float32) * 12.0)
    ns, m = dr.generator_objective(jnp.asarray(fake), offsets, distance=10.0)
    assert float(ns) == pytest.approx(-np.mean(np.log(_sigmoid(fake))), rel=1e-5)
    mm, _ = dr.generator_objective(jnp.asarray(fake), offsets, distance=10.0, loss="minimax")
    assert float(mm) == pytest.approx(np.mean(np.log(1.0 - _sigmoid(fake))), rel=1e-5)
    depth = np.maximum(0.0, 10.0 + np.asarray(offsets)) + 1.0
    assert float(m["depth_std"]) == pytest.approx(np.mean(np.std(depth, axis=-1)), rel=1e-5)
    assert float(m["depth_clamped"]) == pytest.approx(np.mean(10.0 + np.asarray(offsets) < 0))
    assert float(m["fooled"]) == pytest.approx(np.mean(fake > 0))
    with pytest.raises(ValueError, match="non_saturating"):
        dr.generator_loss_fn("wasserstein")


@pytest.mark.parametrize("num_joints", [17, 14])
def test_trivial_baseline_is_a_flat_skeleton(data, num_joints):
    spec = dr.DroverJoints.of(num_joints)
    x = data["test"].pose2d_norm
    hr = dr.head_root_distance(x, spec)
    pose = np.asarray(dr.drover_pose3d(None, jnp.asarray(x), None, joints=spec, distance=10.0,
                                        head_root_distance=hr, unit_m=0.5))  # fmt: skip
    assert pose.shape == (len(x), 17, 3)
    np.testing.assert_allclose(pose[..., 2], 0.0, atol=1e-5)  # constant depth, centred
    # x, y = (d + 1) * normalised 2D, centred on the root, times unit_m
    norm = (x - x[:, LAY.root : LAY.root + 1]) / hr / 10.0
    centre = list(spec.layout_centre)
    want = 11.0 * 0.5 * (norm - norm[:, centre].mean(1, keepdims=True))
    np.testing.assert_allclose(pose[:, list(spec.joints), :2], want[:, list(spec.joints)],
                               rtol=1e-4, atol=1e-5)  # fmt: skip
    for j in set(range(17)) - set(spec.joints):  # unseen joints: the root point (origin)
        np.testing.assert_allclose(pose[:, j], 0.0, atol=1e-5)


def test_evaluate_3d_on_a_joint_subset_scores_only_the_subset(data):
    ds = data["test"]
    joints = [j for j in range(17) if j not in (0, 7, 9)]
    centre = [1, 4]
    target = ds.pose3d_root_relative.astype(np.float64)
    target = target - target[:, centre].mean(1, keepdims=True)
    rng = np.random.default_rng(2)
    noisy = (target + rng.normal(scale=0.02, size=target.shape)).astype(np.float32)
    noisy[:, [0, 7, 9]] = 5.0  # joints outside the subset: ignored

    def predict(x, c):  # the row of the example in the batch, found by its 2D
        idx = np.argmin(np.abs(ds.pose2d_norm[None] - np.asarray(x)[:, None]).sum((2, 3)), 1)
        return jnp.asarray(noisy[idx])

    ev = jeval.evaluate_3d(predict, ds, joints=joints, centre=centre, batch_size=4,
                           keep_predictions=True)  # fmt: skip
    per_example = np.linalg.norm(noisy[:, joints] - target[:, joints], axis=-1).mean(1)
    np.testing.assert_allclose(ev["errors_mm"]["mpjpe"], per_example * 1000.0, rtol=1e-4)
    assert ev["metrics"]["mpjpe"]["frame_wise"] == pytest.approx(per_example.mean() * 1000, 1e-4)
    np.testing.assert_array_equal(ev["predictions"], noisy)
    assert ev["metrics"]["p_mpjpe"]["frame_wise"] <= ev["metrics"]["mpjpe"]["frame_wise"] + 1e-6


# ------------------------------------------------------------------------------------------------
# Zhou et al.
# ------------------------------------------------------------------------------------------------


def test_depth_targets_invert_through_the_perspective_pose(data):
    ds = data["test"]
    z = ds.pose3d_cam[..., 2]
    focal = 2.0 * ds.focal_px[:, :1] / ds.image_size_px[:, :1]  # "vp" normalisation
    want = focal * (z - z[:, :1]) / z[:, :1]
    targets = dm.depth_targets(ds)
    np.testing.assert_allclose(targets, want, rtol=1e-5, atol=1e-7)
    x, c = jnp.asarray(ds.pose2d_norm), jnp.asarray(ds.confidence)
    s = dm.pose_scale_2d(x, c)

    def exact(u):  # a "network" whose depth is the ground truth
        return jnp.asarray(targets)[..., None] / s[:, None, None]

    packed = dm.perspective_inputs(ds)
    assert packed.shape == (len(ds), 17, 7)
    pose = dm.perspective_pose(exact, jnp.asarray(packed), c)
    np.testing.assert_allclose(pose, ds.pose3d_cam, rtol=1e-4, atol=1e-5)
    norm = np.asarray(dm.normalized_pose(exact, x, c))
    want_n = np.concatenate([ds.pose2d_norm - ds.pose2d_norm[:, :1], targets[..., None]], -1)
    np.testing.assert_allclose(norm, want_n / np.asarray(s)[:, None, None], rtol=1e-4, atol=1e-6)


def test_average_sum_bone_length_and_batch_arrays(data):
    ds = data["train_3d"]
    bones = [(LAY.parents[j], j) for j in range(17) if LAY.parents[j] >= 0]
    sums = [sum(np.linalg.norm(p[j] - p[i]) for i, j in bones) for p in ds.pose3d_cam]
    assert dm.average_sum_bone_length(ds.pose3d_cam) == pytest.approx(np.mean(sums), rel=1e-5)
    arrays = dm.depth_batch_arrays(ds, with_depth=True)
    assert set(arrays) == {"x", "c", "s", "depth"}
    d = ds.pose2d_norm - ds.pose2d_norm[:, :1]
    np.testing.assert_allclose(arrays["s"], np.sqrt((d**2).sum(-1).mean(-1)), rtol=1e-4)
    assert "depth" not in dm.depth_batch_arrays(data["train_2d"], with_depth=False)


def test_depth_loss_terms(data):
    ds = data["train_3d"]
    b3 = {k: jnp.asarray(v) for k, v in dm.depth_batch_arrays(ds, with_depth=True).items()}
    depth = b3["depth"] + 0.01 * jnp.arange(17.0)
    # canonical lengths of the first example's [x, y, true depth]: its bone ratios are uniform
    pose0 = np.concatenate([ds.pose2d_norm[:1], np.asarray(b3["depth"])[:1, :, None]], -1)
    canon = jnp.asarray(np.asarray(kinematics.bone_lengths(pose0, layout=LAY))[0])
    terms = dm.depth_loss_terms(depth, b3, None, None, canonical_lengths=canon, scale_px=16.0)
    unit = 16.0 / np.asarray(b3["s"])[:, None]
    want = np.mean(np.sum(((np.asarray(depth) - np.asarray(b3["depth"])) * unit) ** 2, -1))
    assert float(terms["reg"]) == pytest.approx(want, rel=1e-5)
    assert float(terms["geo_2d"]) == 0.0 and float(terms["geo_3d"]) > 0
    exact = dm.depth_loss_terms(b3["depth"][:1], {k: v[:1] for k, v in b3.items()}, None, None,
                                canonical_lengths=canon, scale_px=16.0)  # fmt: skip
    assert float(exact["reg"]) == 0.0 and float(exact["geo_3d"]) == pytest.approx(0.0, abs=1e-8)
    # 2D-only samples: the same bone-ratio variance on their [x, y, predicted depth]
    b2 = {k: v[:1] for k, v in b3.items() if k != "depth"}
    both = dm.depth_loss_terms(depth, b3, b3["depth"][:1], b2, canonical_lengths=canon,
                               scale_px=16.0)  # fmt: skip
    assert float(both["geo_2d"]) == pytest.approx(0.0, abs=1e-8)
    skewed = dm.depth_loss_terms(depth, b3, 2.0 * b3["depth"][:1], b2, canonical_lengths=canon,
                                 scale_px=16.0)  # fmt: skip
    assert float(skewed["geo_2d"]) > 1e-4
