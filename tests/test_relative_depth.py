"""Tests of the WSP relative-depth pair builder and the pairwise model (hand-built scenes)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jpose import skeleton
from jpose.data import relative_depth as rdd
from jpose.models import martinez_lifter
from jpose.models import relative_depth as mrd

COCO = skeleton.COCO17
MPII = skeleton.MPII16
LA, RA = COCO.index("left_ankle"), COCO.index("right_ankle")


def _coco_person(ankle_y, *, ankles=(True, True), nose=(50.0, 100.0), shoulder_y=150.0, x=0.0):
    """A COCO-17 person: every joint labelled (visible) at distinct places; ankles at
    ``ankle_y`` (or unlabelled); nose-to-mid-shoulder distance = shoulder_y - nose_y."""
    kp = np.stack([np.linspace(10, 90, 17) + x, np.linspace(100, 400, 17)], -1)
    kp[COCO.index("nose")] = (nose[0] + x, nose[1])
    kp[COCO.index("left_shoulder")] = (nose[0] + x - 20.0, shoulder_y)
    kp[COCO.index("right_shoulder")] = (nose[0] + x + 20.0, shoulder_y)
    vis = np.full(17, 2)
    for idx, y, on in ((LA, ankle_y, ankles[0]), (RA, ankle_y, ankles[1])):
        kp[idx, 1] = y
        vis[idx] = 2 if on else 0
    return kp, vis


def _scene(people, image_ids):
    kp = np.stack([p[0] for p in people]).astype(np.float32)
    vis = np.stack([p[1] for p in people]).astype(np.int32)
    return kp, vis, np.asarray(image_ids)


def _build(people, ids, **kw):
    kp, vis, ids = _scene(people, ids)
    size = np.full((len(ids), 2), 1000)
    return rdd.build_relative_depth_pairs(kp, vis, ids, layout="coco17", image_size=size, **kw)


def test_labels_ties_missing_ankles_one_person():
    # image 1: A (ankles at y=500, nearer), B (y=300), C (one ankle only, y=450);
    # image 2: a single person; image 3: two persons with equal ankle heights (a tie).
    people = [
        _coco_person(500.0),
        _coco_person(300.0),
        _coco_person(450.0, ankles=(True, False)),
        _coco_person(600.0),
        _coco_person(400.0),
        _coco_person(400.0),
    ]
    ids = [1, 1, 1, 2, 3, 3]
    p = _build(people, ids)
    # "both" rule: C not eligible; image 2 has one person; image 3's only pair is a tie.
    assert p.counts["eligible_persons"] == 5
    assert p.counts["images_before_ties"] == 2 and p.counts["images"] == 1
    assert p.counts["pairs"] == 1 and p.counts["ties_removed"] == 1
    assert p.counts["persons"] == 2
    assert (p.pair_a[0], p.pair_b[0]) == (0, 1)
    assert p.label[0] == 1.0  # A's ankles lower in the image (y 500 > 300): A nearer (eq. 7)

    # "any" rule: C joins image 1 -> pairs (A, B), (A, C), (B, C)
    q = _build(people, ids, ankle_rule="any")
    got = {(int(a), int(b)): float(lab) for a, b, lab in zip(q.pair_a, q.pair_b, q.label)}
    assert got == {(0, 1): 1.0, (0, 2): 1.0, (1, 2): 0.0}

    # visibility 1 (occluded) counts as annotated unless require_visible
    people[1][1][LA] = 1
    assert _build(people, ids).counts["pairs"] == 1
    assert _build(people, ids, require_visible=True).counts["pairs"] == 0


def test_min_ankle_gap_removes_near_ties():
    people = [_coco_person(400.0), _coco_person(403.0), _coco_person(300.0)]
    p = _build(people, [7, 7, 7], min_ankle_gap=5.0)
    assert p.counts["pairs"] == 2 and p.counts["ties_removed"] == 1


def test_delta_s_coco_and_mpii():
    # COCO: S = |nose - mid-shoulder| = 50 px and 100 px -> dS = |50 - 100| / 100 = 0.5 (eq. 14)
    a = _coco_person(500.0, nose=(50.0, 100.0), shoulder_y=150.0)
    b = _coco_person(300.0, nose=(50.0, 100.0), shoulder_y=200.0, x=300.0)
    c = _coco_person(200.0, x=600.0)
    c[1][COCO.index("nose")] = 0  # scale undefined -> dS = 1, scale_defined False
    p = _build([a, b, c], [1, 1, 1])
    ds = {(int(i), int(j)): (float(d), bool(ok)) for i, j, d, ok in
          zip(p.pair_a, p.pair_b, p.delta_s, p.scale_defined)}  # fmt: skip
    assert ds[(0, 1)][0] == pytest.approx(0.5, abs=1e-6) and ds[(0, 1)][1]
    assert ds[(0, 2)] == (1.0, False) and ds[(1, 2)] == (1.0, False)
    np.testing.assert_allclose(p.person_scale[:2], [50.0, 100.0], rtol=1e-6)

    # MPII: head_top - upper_neck = 40 px and 30 px -> dS = 10 / 40 = 0.25
    kp = np.zeros((2, 16, 2), np.float32)
    kp[:, :, 0] = np.arange(16) * 5.0
    kp[:, :, 1] = 100.0 + np.arange(16) * 3.0
    ht, un = MPII.index("head_top"), MPII.index("upper_neck")
    kp[0, un], kp[0, ht] = (10.0, 100.0), (10.0, 60.0)
    kp[1, un], kp[1, ht] = (200.0, 100.0), (200.0, 70.0)
    kp[0, [MPII.index("left_ankle"), MPII.index("right_ankle")], 1] = 400.0
    kp[1, [MPII.index("left_ankle"), MPII.index("right_ankle")], 1] = 350.0
    q = rdd.build_relative_depth_pairs(kp, np.full((2, 16), 2), np.array([5, 5]), layout="mpii16",
                                       image_size=np.full((2, 2), 500))  # fmt: skip
    assert q.counts["pairs"] == 1 and q.label[0] == 1.0
    assert q.delta_s[0] == pytest.approx(0.25, abs=1e-6)
    masks = rdd.protocol_masks(np.array([0.05, 0.25, 0.4, 1.0]))
    assert [int(m.sum()) for m in masks.values()] == [4, 3, 2, 1]


def test_pair_arrays_protocol2_orientation_and_split():
    people = [_coco_person(100.0 + 50 * i, x=40.0 * i) for i in range(4)]
    p = _build(people * 3, [1] * 4 + [2] * 4 + [3] * 4)
    assert p.counts["pairs"] == 18
    a1 = p.pair_arrays(protocol=1)
    a2 = p.pair_arrays(protocol=2)
    ank = skeleton.H36M17.indices(["RFoot", "LFoot"])
    assert np.all(a2["conf_a"][:, ank] == 0) and np.all(a2["pose_b"][:, ank] == 0)
    other = np.setdiff1d(np.arange(17), ank)
    np.testing.assert_array_equal(a1["pose_a"][:, other], a2["pose_a"][:, other])
    np.testing.assert_array_equal(a1["joint_mask"], a2["joint_mask"])  # labels / joints kept
    s = p.pair_arrays(orientation_seed=0)
    swapped = ~np.all(s["pose_a"] == a1["pose_a"], axis=(1, 2))
    assert 0 < swapped.sum() < len(swapped)
    np.testing.assert_array_equal(s["label"][swapped], 1.0 - a1["label"][swapped])
    np.testing.assert_array_equal(s["pose_a"][swapped], a1["pose_b"][swapped])

    train, test = rdd.split_by_image(p, test_fraction=0.34, seed=0)
    assert train.num_pairs + test.num_pairs == 18
    assert not set(train.pair_image_id) & set(test.pair_image_id)
    with pytest.raises(ValueError, match="share"):
        rdd.check_image_disjoint(p, test)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="layout"):
        rdd.build_relative_depth_pairs(np.zeros((2, 17, 2)), np.zeros((2, 17)), np.zeros(2),
                                       layout="smpl24")  # fmt: skip
    with pytest.raises(ValueError, match=r"keypoints \[P, 16, 2\]"):
        rdd.build_relative_depth_pairs(np.zeros((2, 17, 2)), np.zeros((2, 17)), np.zeros(2),
                                       layout="mpii16")  # fmt: skip


def test_synthetic_scenes_labels_follow_true_depth():
    s = rdd.make_synthetic_scenes(seed=3, num_images=60)
    p = rdd.build_relative_depth_pairs(s["keypoints"], s["visibility"], s["image_id"],
                                       layout="h36m17", image_size=s["image_size"],
                                       depth=s["depth"])  # fmt: skip
    assert p.counts["pairs"] > 60
    # ankle order = depth order for the ankles themselves (ground points, eqs. 1-2) ...
    ank = skeleton.H36M17.indices(["RFoot", "LFoot"])
    za, zb = p.depth[p.pair_a][:, ank].mean(-1), p.depth[p.pair_b][:, ank].mean(-1)
    assert np.mean((za <= zb) == (p.label > 0.5)) > 0.97
    # ... and for most other joints (eq. 4 is a simplification)
    agree = (p.depth[p.pair_a] <= p.depth[p.pair_b]) == (p.label[:, None] > 0.5)
    assert agree.mean() > 0.9


def _model_inputs(n=5, seed=0):
    r = np.random.default_rng(seed)
    pa, pb = r.uniform(-1, 1, (2, n, 17, 2)).astype(np.float32)
    ca = (r.random((n, 17)) > 0.2).astype(np.float32)
    cb = (r.random((n, 17)) > 0.2).astype(np.float32)
    return pa, ca, pb, cb


def test_pairwise_model_symmetry_jit_and_shapes():
    model = mrd.pairwise_relative_depth(width=32, num_blocks=1, feature_dim=4, head_width=8)
    pa, ca, pb, cb = _model_inputs()
    sa, sb = mrd.box_scale(pa, ca), mrd.box_scale(pb, cb)
    v = model.init(jax.random.key(0), pa, ca, sa, pb, cb, sb)
    ab = model.apply(v, pa, ca, sa, pb, cb, sb, train=False)[0]
    ba = model.apply(v, pb, cb, sb, pa, ca, sa, train=False)[0]
    assert ab.shape == (5, 17)
    np.testing.assert_allclose(np.asarray(ab), -np.asarray(ba), atol=1e-5)  # swap flips sign
    assert np.abs(np.asarray(ab)).max() > 0
    jitted = jax.jit(lambda *x: model.apply(v, *x, train=False)[0])(pa, ca, sa, pb, cb, sb)
    np.testing.assert_allclose(np.asarray(jitted), np.asarray(ab), rtol=1e-5, atol=1e-5)
    # missing joints: coordinates are ignored (zeroed) where confidence is 0
    pa2 = np.where(ca[..., None] > 0, pa, 123.0)
    same = model.apply(v, pa2, ca, sa, pb, cb, sb, train=False)[0]
    np.testing.assert_allclose(np.asarray(same), np.asarray(ab), atol=1e-5)
    with pytest.raises(ValueError, match=r"\[\.\.\., 17, 2\]"):
        model.apply(v, pa[:, :16], ca[:, :16], sa, pb, cb, sb, train=False)


def test_box_scale_and_finite_gradients():
    pose = np.array([[[0.0, 0.0], [0.2, -0.5], [9.0, 9.0]]], np.float32)
    conf = np.array([[1.0, 1.0, 0.0]], np.float32)
    # labelled joints span 0.2 (x) and 0.5 (y): the larger side is 0.5; the third is ignored
    assert float(mrd.box_scale(pose, conf)[0]) == pytest.approx(0.5)
    assert float(mrd.box_scale(pose, np.zeros_like(conf))[0]) == pytest.approx(1e-3)
    g = jax.grad(lambda p: mrd.box_scale(p, np.zeros_like(conf)).sum())(jnp.asarray(pose))
    assert np.all(np.isfinite(np.asarray(g)))


def test_encoder_weights_transfer_to_lifter():
    model = mrd.pairwise_relative_depth(width=32, num_blocks=1, feature_dim=4, head_width=8)
    pa, ca, pb, cb = _model_inputs(n=2)
    v = model.init(jax.random.key(0), pa, ca, mrd.box_scale(pa, ca), pb, cb, mrd.box_scale(pb, cb))
    lifter = martinez_lifter(17, in_channels=3, width=32, num_blocks=1)
    lv = lifter.init(jax.random.key(1), mrd.person_input(pa, ca))
    new = mrd.init_lifter_from_encoder(lv, v)
    enc = mrd.encoder_variables(v)
    for name in new["params"]:
        src = lv if name == "output" else enc
        for x, y in zip(jax.tree_util.tree_leaves(new["params"][name]),
                        jax.tree_util.tree_leaves(src["params"][name])):  # fmt: skip
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    # the lifter's hidden features equal the encoder's trunk: same output after copying "output"
    lifter_out = lifter.apply(new, mrd.person_input(pa, ca), train=False)[0]
    assert lifter_out.shape == (2, 17, 3)
    wide = martinez_lifter(17, in_channels=3, width=64, num_blocks=1)
    with pytest.raises(ValueError, match="shapes"):
        mrd.init_lifter_from_encoder(wide.init(jax.random.key(2), mrd.person_input(pa, ca)), v)


def test_aux_loss_matches_numpy():
    from jpose.losses import wsp_relative_depth_aux_loss as relative_depth_aux_loss

    za = np.array([[2.0, 3.0]], np.float32)
    zb = np.array([[3.0, 2.0]], np.float32)
    labels = np.array([[1.0, 1.0]], np.float32)
    # logits (zb - za) / 0.5 = (2, -2); BCE = (log(1 + e^-2) + log(1 + e^2)) / 2
    ref = (np.log1p(np.exp(-2.0)) + np.log1p(np.exp(2.0))) / 2
    got = relative_depth_aux_loss(za, zb, labels, temperature=0.5)
    np.testing.assert_allclose(np.asarray(got), [ref], rtol=1e-5)
    g = jax.grad(lambda a: relative_depth_aux_loss(a, zb, labels).sum())(jnp.asarray(za))
    assert np.asarray(g)[0, 0] > 0  # A nearer is the label: increasing Z_A increases the loss


def test_shared_file_counts(shared_data):
    coco = rdd.load_relative_depth_pairs(shared_data / "wild2d_coco.npz")
    # ../shared/data/README.md: 2668 persons with both ankles, 573 images with >= 2 of them
    assert coco.counts["eligible_persons"] == 2668
    assert coco.counts["images_before_ties"] == 573
    assert coco.counts["pairs"] > 2000
    mpii = rdd.load_relative_depth_pairs(shared_data / "wild2d_mpii.npz")
    assert mpii.counts["eligible_persons"] == 2064 and mpii.counts["images_before_ties"] == 140
