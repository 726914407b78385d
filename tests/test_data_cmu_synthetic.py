"""CMU mocap through virtual cameras (shared file) and the synthetic demonstration set."""

import time

import numpy as np
import pytest

from jpose import kinematics, skeleton
from jpose.data import cmu, synthetic, virtual_cameras

H = skeleton.H36M17.index


@pytest.fixture(scope="session")
def cmu_mocap(shared_data):
    return cmu.load_cmu_mocap(shared_data / "cmu_mocap_h36m17.npz")


def test_cmu_sizes_and_split(cmu_mocap):
    # numbers from ../shared/data/README.md
    assert len(cmu_mocap.sequences) == 37
    assert cmu_mocap.num_frames() == 37302
    assert cmu_mocap.num_frames("test") == 577 + 2086 + 163 + 598 + 359 + 2754
    assert cmu_mocap.num_frames("train") == 37302 - cmu_mocap.num_frames("test")
    assert all(n.startswith(cmu_mocap.split[n] + "/") for n in cmu_mocap.sequences)
    assert cmu_mocap.fps == 120


def test_cmu_pairs(cmu_mocap):
    ds = cmu.cmu_pose_pairs(cmu_mocap, split="test", subsample=40, num_cameras=2, seed=3)
    n_frames = sum(len(range(0, len(cmu_mocap.sequences[s]), 40)) for s in cmu_mocap.names("test"))
    assert len(ds) == 2 * n_frames
    assert set(ds.labels["sequence"]) == set(cmu_mocap.names("test"))
    # pinhole projection of the camera-frame pose
    uv = ds.pose3d_cam[..., :2] / ds.pose3d_cam[..., 2:] * ds.focal_px[:, None]
    np.testing.assert_allclose(uv + ds.center_px[:, None], ds.pose2d_px, atol=1e-2)
    # rigid camera transform: bone lengths equal the world ones
    world, _ = cmu_mocap.frames("test", subsample=40)
    lw = np.asarray(kinematics.bone_lengths(world, layout=skeleton.H36M17))
    lc = np.asarray(kinematics.bone_lengths(ds.pose3d_cam[::2], layout=skeleton.H36M17))
    np.testing.assert_allclose(lc, lw, atol=1e-4)
    # cameras like the Human3.6M rig: 4-6 m away, mostly in the image, deterministic by seed
    assert 3.0 < ds.pose3d_cam[:, H("Hip"), 2].min() and ds.pose3d_cam[..., 2].max() < 8.0
    inside = (ds.pose2d_px >= 0).all(-1) & (ds.pose2d_px <= 1000).all(-1)
    assert inside.mean() > 0.99
    again = cmu.cmu_pose_pairs(cmu_mocap, split="test", subsample=40, num_cameras=2, seed=3)
    np.testing.assert_array_equal(again.pose2d_px, ds.pose2d_px)
    fixed = cmu.cmu_pose_pairs(
        cmu_mocap, split="test", subsample=40, num_cameras=2, cameras_per="sequence"
    )
    first = fixed.labels["sequence"] == fixed.labels["sequence"][0]
    assert len(np.unique(fixed.rotation[first & (fixed.labels["camera"] == 0)], axis=0)) == 1


def test_look_at_rotation_is_a_rotation_facing_the_target():
    rng = np.random.default_rng(0)
    centre = rng.uniform(-5, 5, (20, 3))
    target = rng.uniform(-1, 1, (20, 3))
    r = virtual_cameras.look_at_rotation(centre, target)
    np.testing.assert_allclose(r @ r.transpose(0, 2, 1), np.tile(np.eye(3), (20, 1, 1)), atol=1e-9)
    np.testing.assert_allclose(np.linalg.det(r), 1.0, atol=1e-9)
    cam = np.einsum("nij,nj->ni", r, target - centre)  # target on the optical axis, in front
    np.testing.assert_allclose(cam[:, :2], 0.0, atol=1e-9)
    assert np.all(cam[:, 2] > 0)
    assert np.all(r[:, 1, 2] <= 1e-12)  # image y (down) points down in the world (z up)


@pytest.fixture(scope="module")
def synth():
    t0 = time.perf_counter()
    out = synthetic.make_synthetic(seed=0)
    return out, time.perf_counter() - t0


def test_synthetic_sizes_speed_and_determinism(synth):
    out, seconds = synth
    assert seconds < 10.0  # ~0.5 s on one core after jax start-up; generous for shared CI
    assert {k: len(v) for k, v in out.items()} == {
        "train_3d": 10000,
        "train_2d": 10000,
        "test": 2000,
        "test_2d_mix": 2000,
    }
    assert out["train_2d"].pose3d_cam is None and out["test_2d_mix"].pose3d_cam is not None
    small = synthetic.SyntheticConfig(
        num_people={"train_3d": 3, "train_2d": 2, "test": 1, "test_2d_mix": 1}, poses_per_person=4
    )
    a = synthetic.make_synthetic(seed=5, config=small)
    b = synthetic.make_synthetic(seed=5, config=small)
    c = synthetic.make_synthetic(seed=6, config=small)
    np.testing.assert_array_equal(a["train_3d"].pose2d_px, b["train_3d"].pose2d_px)
    assert not np.allclose(a["train_3d"].pose2d_px, c["train_3d"].pose2d_px)
    people = [set(v.labels["person"]) for v in out.values()]
    assert sum(len(p) for p in people) == len(set().union(*people))  # no person in two splits


def test_synthetic_bone_lengths_constant_within_person(synth):
    ds = synth[0]["train_3d"]
    lengths = np.asarray(kinematics.bone_lengths(ds.pose3d_cam, layout=skeleton.H36M17))
    person = ds.labels["person"]
    spread = [np.ptp(lengths[person == p], axis=0).max() for p in np.unique(person)[:50]]
    assert max(spread) < 1e-4  # metres (float32 camera transform)
    means = np.stack([lengths[person == p].mean(0) for p in np.unique(person)])
    assert np.std(means[:, skeleton.H36M17.bone_index("RKnee")]) > 0.01  # varies across people
    # symmetric: left and right thigh equal; thigh ~ 0.245 x height (Winter)
    r, l = skeleton.H36M17.bone_index("RKnee"), skeleton.H36M17.bone_index("LKnee")
    np.testing.assert_allclose(means[:, r], means[:, l], rtol=1e-5)
    assert 0.33 < means[:, r].mean() < 0.50


def _angle(a, b):
    cos = np.sum(a * b, -1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


def test_synthetic_angles_plausible(synth):
    for split in ("train_3d", "test_2d_mix"):
        ds = synth[0][split]
        p = ds.pose3d_cam
        for hip, knee, foot in (("RHip", "RKnee", "RFoot"), ("LHip", "LKnee", "LFoot")):
            knee_flex = _angle(p[:, H(knee)] - p[:, H(hip)], p[:, H(foot)] - p[:, H(knee)])
            assert knee_flex.max() <= 140.5
        for sh, el, wr in (("RShoulder", "RElbow", "RWrist"), ("LShoulder", "LElbow", "LWrist")):
            elbow_flex = _angle(p[:, H(el)] - p[:, H(sh)], p[:, H(wr)] - p[:, H(el)])
            assert elbow_flex.max() <= 145.5
        # world up (z) in camera coordinates is R e_z = column 2 of the world->camera R
        up = ds.rotation[:, :, 2]
        height = np.einsum("nj,nkj->nk", up, p)
        feet = height[:, [H("RFoot"), H("LFoot")]].min(-1)
        assert np.all(height[:, H("Hip")] > feet + 0.25)
        classes = ds.labels["pose_class"]
        upright = np.isin(classes, ["standing", "walking", "arms_raised"])
        assert np.all(height[upright, H("Head")] > height[upright, H("Thorax")])
        raised = classes == "arms_raised"
        assert np.mean(height[raised, H("RWrist")] > height[raised, H("RShoulder")]) > 0.8
        # handedness: with the subject's right shoulder on the right, forward = up x right
        # (x right, y forward, z up), and the nose (Neck/Nose) is in front of the thorax
        side = p[:, H("RShoulder")] - p[:, H("LShoulder")]
        fwd = np.cross(p[:, H("Thorax")] - p[:, H("Spine")], side)
        nose = np.einsum("nj,nj->n", p[:, H("Neck/Nose")] - p[:, H("Thorax")], fwd)
        assert np.all(nose > 0)


def test_synthetic_two_d_split_has_a_different_pose_mix(synth):
    out = synth[0]
    frac = {
        k: {c: np.mean(out[k].labels["pose_class"] == c) for c in synthetic.POSE_CLASSES}
        for k in ("train_3d", "train_2d")
    }
    assert frac["train_3d"]["walking"] > 0.3 and frac["train_2d"]["walking"] < 0.2
    assert frac["train_2d"]["sitting"] + frac["train_2d"]["bending"] > 0.5
    assert frac["train_3d"]["sitting"] + frac["train_3d"]["bending"] < 0.2


def test_presets(shared_data):
    from jpose.data import presets

    with pytest.raises(ValueError, match="unknown data preset"):
        presets.load_preset("h36m")
    out = presets.load_preset("cmu", data_dir=shared_data, cmu_subsample=60, cmu_num_cameras=1)
    assert set(out) == {"train_3d", "test"} and out["train_3d"].normalization == "vp"
    assert set(out["test"].labels["action"]) >= {"washwindow", "jumping"}
    small = synthetic.SyntheticConfig(
        num_people={"train_3d": 2, "train_2d": 2, "test": 1, "test_2d_mix": 1}, poses_per_person=3
    )
    demo = presets.load_preset("synthetic", synthetic_config=small)
    assert demo["train_2d"].pose3d_cam is None and len(demo["train_3d"]) == 6
