"""Tests of jpose.skeleton: derived structures and layout converters."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jpose import skeleton as sk

RNG = np.random.default_rng(0)


@pytest.mark.parametrize("layout", list(sk.LAYOUTS.values()), ids=list(sk.LAYOUTS))
def test_derived_structures_are_consistent(layout):
    j, b = layout.num_joints, layout.num_bones
    assert layout.bones.shape == (b, 2)
    # one bone per non-root joint, named by its child, parent as in the layout
    assert sorted(layout.bones[:, 1].tolist()) == [i for i in range(j) if i != layout.root]
    for p, c in layout.bones:
        assert layout.parents[c] == p
    # incidence: bones = C @ X ; fk: F @ C @ X = X - X_root (independent numpy reference: loop)
    x = RNG.normal(size=(j, 3))
    bones_loop = np.stack([x[c] - x[layout.parents[c]] for c in layout.bones[:, 1]])
    np.testing.assert_allclose(layout.incidence @ x, bones_loop, atol=1e-6)
    np.testing.assert_allclose(layout.fk_matrix @ bones_loop, x - x[layout.root], atol=1e-6)
    # flip permutation is an involution and swaps each declared pair
    perm = layout.flip_permutation
    np.testing.assert_array_equal(perm[perm], np.arange(j))
    for left, right in layout.symmetric_pairs:
        assert perm[layout.index(left)] == layout.index(right)
    bperm = layout.bone_flip_permutation
    np.testing.assert_array_equal(bperm[bperm], np.arange(b))
    # a bone and its mirror share a class, and classes are contiguous ids
    cls = layout.bone_classes
    np.testing.assert_array_equal(cls, cls[bperm])
    assert set(cls.tolist()) == set(range(layout.num_bone_classes))


def test_h36m17_matches_videopose3d_order():
    names = (
        "Hip RHip RKnee RFoot LHip LKnee LFoot Spine Thorax Neck/Nose Head LShoulder LElbow "
        "LWrist RShoulder RElbow RWrist"
    ).split()
    assert list(sk.H36M17.joint_names) == names
    # VideoPose3D's 17-joint parents after remove_joints and the shoulder re-wiring
    assert sk.H36M17.parents == (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)
    # VideoPose3D's joints_left / joints_right for 17 joints
    assert sorted(sk.H36M17.joints_left.tolist()) == [4, 5, 6, 11, 12, 13]
    assert sorted(sk.H36M17.joints_right.tolist()) == [1, 2, 3, 14, 15, 16]
    # 10 symmetric bone classes: hip, thigh, shin, spine, thorax, neck, head, clavicle,
    # upper arm, forearm
    assert sk.H36M17.num_bone_classes == 10
    assert sk.H36M16.num_bone_classes == 9  # PoseAug's 9 bone-length ratios


def test_bone_sets_derived_from_names():
    lay = sk.H36M17
    arms = [lay.bone_names[k] for k in lay.bone_set("zhou_arms")]
    assert arms == ["LElbow", "LWrist", "RElbow", "RWrist"]
    for group in sk.ZHOU_GROUPS:
        assert lay.bone_set(group).size in (2, 4)
    for part in sk.KCS_PARTS:
        mask = lay.bone_set_mask(part)
        assert mask.dtype == bool and mask.sum() == lay.bone_set(part).size
    # PoseAug's torso part on 16 joints has 7 bones (hips, spine, thorax, head, shoulders)
    assert sk.H36M16.bone_set("kcs_torso").size == 7
    # the arm parts hold the spine->thorax bone plus the arm chain (PoseAug lh/rh)
    left_arm = [sk.H36M16.bone_names[k] for k in sk.H36M16.bone_set("kcs_left_arm")]
    assert left_arm == ["Thorax", "LShoulder", "LElbow", "LWrist"]
    with pytest.raises(ValueError, match="no bone set"):
        lay.bone_set("not_a_set")


def test_invalid_layouts_raise():
    with pytest.raises(ValueError, match="one root"):
        sk.Layout("bad", ("a", "b"), (-1, -1))
    with pytest.raises(ValueError, match="does not reach"):
        sk.Layout("cyc", ("a", "b", "c"), (-1, 2, 1))
    with pytest.raises(ValueError, match="not in layout"):
        sk.H36M17.index("Nose")
    with pytest.raises(ValueError, match="unknown joint layout"):
        sk.get_layout("h36m18")


def test_coco_to_h36m_rule_by_hand():
    # COCO joints at distinct, hand-chosen positions
    kp = np.zeros((17, 2), np.float32)
    coco = sk.COCO17
    kp[coco.index("left_hip")] = (2.0, 10.0)
    kp[coco.index("right_hip")] = (0.0, 10.0)
    kp[coco.index("left_shoulder")] = (3.0, 4.0)
    kp[coco.index("right_shoulder")] = (-1.0, 4.0)
    kp[coco.index("nose")] = (1.0, 2.0)
    kp[coco.index("left_eye")] = (1.5, 1.0)
    kp[coco.index("right_eye")] = (0.5, 1.0)
    conf = np.ones(17, np.float32)
    conf[coco.index("left_eye")] = 0.3
    out, c = sk.coco17_to_h36m17(kp, conf)
    h = sk.H36M17
    np.testing.assert_allclose(out[h.index("Hip")], (1.0, 10.0))  # mid-hips
    np.testing.assert_allclose(out[h.index("Thorax")], (1.0, 4.0))  # mid-shoulders
    np.testing.assert_allclose(out[h.index("Spine")], (1.0, 7.0))  # mid(pelvis, thorax)
    np.testing.assert_allclose(out[h.index("Neck/Nose")], (1.0, 2.0))
    np.testing.assert_allclose(out[h.index("Head")], (1.0, 1.0))  # mid-eyes
    np.testing.assert_allclose(out[h.index("LHip")], kp[coco.index("left_hip")])
    # derived joint confidence is the minimum of its sources
    assert c[h.index("Head")] == pytest.approx(0.3)
    assert c[h.index("Hip")] == pytest.approx(1.0)
    assert isinstance(out, np.ndarray)  # numpy in, numpy out


def test_converters_round_trip_and_jax():
    x16 = RNG.normal(size=(3, 16, 3)).astype(np.float32)
    x17, c17 = sk.h36m16_to_h36m17(x16)
    back, c16 = sk.h36m17_to_h36m16(x17, c17)
    np.testing.assert_allclose(back, x16, atol=1e-6)  # 16 -> 17 -> 16 exact
    np.testing.assert_allclose(c16, 1.0)
    # 17 -> 16 -> 17 keeps every joint except the interpolated Neck/Nose
    y17 = RNG.normal(size=(17, 3)).astype(np.float32)
    z17, _ = sk.h36m16_to_h36m17(*sk.h36m17_to_h36m16(y17))
    keep = [i for i in range(17) if i != sk.H36M17.index("Neck/Nose")]
    np.testing.assert_allclose(z17[keep], y17[keep], atol=1e-6)
    # 32 -> 17 selects VideoPose3D's kept joints
    x32 = RNG.normal(size=(32, 3)).astype(np.float32)
    kept = [0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27]
    np.testing.assert_allclose(sk.h36m32_to_h36m17(x32)[0], x32[kept])
    # 3DHP 28 -> 17 equals the published test-set joint subset (1-based indices)
    x28 = RNG.normal(size=(28, 3)).astype(np.float32)
    sel = np.array([8, 6, 15, 16, 17, 10, 11, 12, 24, 25, 26, 19, 20, 21, 5, 4, 7]) - 1
    np.testing.assert_allclose(sk.mpi3dhp28_to_mpi3dhp17(x28)[0], x28[sel])
    np.testing.assert_allclose(
        sk.mpi3dhp28_to_h36m17(x28)[0], sk.mpi3dhp17_to_h36m17(x28[sel])[0], atol=1e-6
    )
    # jax arrays go through jnp, under jit, with gradients
    f = jax.jit(lambda p: sk.convert_layout(p, source="mpii16", target="h36m17")[0].sum())
    g = jax.grad(f)(jnp.asarray(x16))
    assert np.all(np.isfinite(np.asarray(g)))


def test_converter_bad_input():
    with pytest.raises(ValueError, match=r"expected shape \[\.\.\., 17, D\] for layout coco17"):
        sk.coco17_to_h36m17(np.zeros((16, 2), np.float32))
    with pytest.raises(ValueError, match="confidence"):
        sk.coco17_to_h36m17(np.zeros((17, 2), np.float32), np.ones(16, np.float32))
    with pytest.raises(ValueError, match="no converter"):
        sk.convert_layout(np.zeros((17, 2), np.float32), source="h36m17", target="coco17")


def test_flip_points():
    x = RNG.normal(size=(2, 17, 3)).astype(np.float32)
    f = sk.flip_points(x, layout="h36m17")
    lh, rh = sk.H36M17.index("LHip"), sk.H36M17.index("RHip")
    np.testing.assert_allclose(f[:, lh], x[:, rh] * np.array([-1, 1, 1]))
    np.testing.assert_allclose(sk.flip_points(f, layout="h36m17"), x)


def test_shared_coco_and_mpii_conversion(shared_data):
    """Converted real annotations give anatomically ordered torsos (pelvis below thorax)."""
    for fname, layout, convert in (
        ("wild2d_coco.npz", sk.COCO17, sk.coco17_to_h36m17),
        ("wild2d_mpii.npz", sk.MPII16, sk.mpii16_to_h36m17),
    ):
        d = np.load(shared_data / fname)
        assert [str(n) for n in d["joint_names"]] == list(layout.joint_names)
        kp, valid = d["keypoints"].astype(np.float32), d["valid"].astype(np.float32)
        out, conf = convert(kp, valid)
        assert out.shape == (kp.shape[0], 17, 2)
        ok = conf[:, sk.H36M17.index("Hip")] * conf[:, sk.H36M17.index("Thorax")] > 0
        assert ok.sum() > 500
        hip_y = out[ok, sk.H36M17.index("Hip"), 1]
        thorax_y = out[ok, sk.H36M17.index("Thorax"), 1]
        # image y points down: in most photographs people are upright
        assert np.mean(hip_y > thorax_y) > 0.9
        # a joint made from an unlabelled joint is unlabelled
        miss = valid[:, layout.index("left_hip")] == 0
        assert np.all(conf[miss, sk.H36M17.index("Hip")] == 0)
