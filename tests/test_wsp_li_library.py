"""The library side of WSP and Li et al.: ``jpose.models.relative_depth``'s objectives and RD
evaluation, ``jpose.models.li``'s global pose and objectives, each against an independent numpy
computation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jpose import skeleton
from jpose.data import relative_depth as rdd
from jpose.models import li as mli
from jpose.models import relative_depth as mrd

ANKLES = skeleton.H36M17.indices(["RFoot", "LFoot"])


def _bce(logits, labels):
    return -(
        labels * np.log(1 / (1 + np.exp(-logits))) + (1 - labels) * np.log(1 / (1 + np.exp(logits)))
    )


@pytest.fixture(scope="module")
def pairs():
    syn = {"num_images": 40, "test_fraction": 0.5}
    return rdd.load_pair_splits(source="synthetic", seed=0, synthetic=syn)["test"]


def _batch(pairs, n=16):
    arr = pairs.pair_arrays(protocol=1, orientation_seed=3)
    return {k: jnp.asarray(v[:n]) for k, v in arr.items() if k not in ("delta_s", "image_id")}


def test_select_joints_draws_num_of_the_labelled_joints():
    mask = np.random.default_rng(0).random((50, 17)) < 0.6
    sel = np.asarray(mrd.select_joints(jax.random.key(1), jnp.asarray(mask), 4))
    assert not (sel & ~mask).any()  # only labelled joints
    np.testing.assert_array_equal(sel.sum(-1), np.minimum(mask.sum(-1), 4))
    again = np.asarray(mrd.select_joints(jax.random.key(2), jnp.asarray(mask), 4))
    assert (again != sel).any()  # random, not the first four
    np.testing.assert_array_equal(mrd.select_joints(jax.random.key(1), jnp.asarray(mask), 0), mask)


def _antisymmetric(pa, ca, sa, pb, cb, sb):
    """g(A, B) = -g(B, A): image-y difference plus the log box-scale ratio, per joint."""
    return 3.0 * (pa[..., 1] - pb[..., 1]) + jnp.log(sa / sb)[:, None]


def test_pairwise_objective_is_eq9_on_the_labelled_joints(pairs):
    b = _batch(pairs)
    loss, m = mrd.pairwise_objective(_antisymmetric, b, jax.random.key(0), num_selected=0)
    # the random A/B swap flips logits and labels together: BCE of the unswapped pairs
    sa = np.asarray(mrd.box_scale(b["pose_a"], b["conf_a"]))
    sb = np.asarray(mrd.box_scale(b["pose_b"], b["conf_b"]))
    logits = 3.0 * (np.asarray(b["pose_a"])[..., 1] - np.asarray(b["pose_b"])[..., 1])
    logits += np.log(sa / sb)[:, None]
    y = np.broadcast_to(np.asarray(b["label"])[:, None], logits.shape)
    mask = np.asarray(b["joint_mask"])
    want = np.mean((_bce(logits, y) * mask).sum(-1) / mask.sum(-1))
    np.testing.assert_allclose(float(loss), want, rtol=1e-5)
    acc = ((logits > 0) == (y > 0.5))[mask].mean()
    np.testing.assert_allclose(float(m["accuracy"]), acc, rtol=1e-6)
    assert float(m["bce"]) == float(loss)


def test_pairwise_objective_hides_the_ankles():
    n, j = 8, 17
    b = {"pose_a": jnp.zeros((n, j, 2)), "pose_b": jnp.ones((n, j, 2)),
         "conf_a": jnp.ones((n, j)), "conf_b": jnp.ones((n, j)),
         "label": jnp.full(n, 0.5), "joint_mask": jnp.ones((n, j), bool)}  # fmt: skip

    def ankle_conf(pa, ca, sa, pb, cb, sb):  # logits = the ankles' confidence left in the input
        return jnp.broadcast_to((ca[:, ANKLES].sum(-1) + cb[:, ANKLES].sum(-1))[:, None], ca.shape)

    # label 1/2 and logits symmetric in A and B: the random swaps change nothing
    kept, _ = mrd.pairwise_objective(ankle_conf, b, jax.random.key(0), num_selected=3)
    np.testing.assert_allclose(float(kept), _bce(4.0, 0.5), rtol=1e-5)  # 4 ankles seen
    hidden, _ = mrd.pairwise_objective(
        ankle_conf, b, jax.random.key(0), num_selected=3, ankle_dropout=1.0
    )
    np.testing.assert_allclose(float(hidden), np.log(2.0), rtol=1e-5)  # logit 0


def test_coordinate_objective_is_l1_on_root_relative_3d():
    rng = np.random.default_rng(0)
    pred, pose = rng.normal(size=(2, 5, 17, 3)).astype(np.float32)
    loss, m = mrd.coordinate_objective(jnp.asarray(pred), jnp.asarray(pose))
    target = pose - pose[:, :1]
    np.testing.assert_allclose(float(loss), np.abs(pred - target).sum(-1).mean(), rtol=1e-5)
    err = np.linalg.norm((pred - pred[:, :1]) - target, axis=-1).mean()
    np.testing.assert_allclose(float(m["mpjpe_mm"]), 1000 * err, rtol=1e-5)


def test_the_ankle_rule_is_the_label_rule_and_tables_count_pairs(pairs):
    thr = (1.0, 0.3)
    base = mrd.input_rule_baselines(pairs, thresholds=thr, orientation_seed=5)
    assert list(base) == [f"protocol {p}, {n}" for p, n, _ in mrd.INPUT_RULES]
    ankle = base["protocol 1, ankle rule (= label rule)"]
    arr = pairs.pair_arrays(protocol=1, orientation_seed=5)
    for t, row in zip(thr, ankle.values()):
        sel = arr["delta_s"] <= t + 1e-9
        assert (
            row["pairs"] == sel.sum() and row["joints"] == (arr["joint_mask"] & sel[:, None]).sum()
        )
        if sel.any():
            assert row["accuracy"] == 100.0 and row["auc"] == 100.0
    # protocol 2 removes the ankles: the ankle rule has nothing to read, the knee rule remains
    arr2 = pairs.pair_arrays(protocol=2, orientation_seed=5)
    assert not mrd.rule_scores(arr2, ["RFoot", "LFoot"]).any()
    assert base["protocol 2, knee rule"]["ΔS<=1"]["accuracy"] > 50.0


def test_evaluate_relative_depth_batches_a_predictor(pairs):
    def ankle_rule(pa, ca, pb, cb):  # the ankle rule written in jax: rule_scores' scores
        def height(p, c):
            ok = c[:, ANKLES] > 0
            return jnp.where(ok, p[:, ANKLES, 1], 0.0).sum(-1) / jnp.maximum(ok.sum(-1), 1)

        s = 100.0 * (height(pa, ca) - height(pb, cb))
        return jnp.broadcast_to(s[:, None], ca.shape)

    got = mrd.evaluate_relative_depth(
        jax.jit(ankle_rule), pairs, protocol=1, orientation_seed=5, batch_size=7
    )  # fmt: skip
    want = mrd.input_rule_baselines(pairs, orientation_seed=5)[
        "protocol 1, ankle rule (= label rule)"
    ]
    assert list(got) == ["ΔS<=1", "ΔS<=0.5", "ΔS<=0.3", "ΔS<=0.1"]
    for name in got:
        for k in ("accuracy", "auc", "pairs", "joints"):
            np.testing.assert_allclose(got[name][k], want[name][k], rtol=1e-5)


def test_pairwise_predictor_is_the_model_in_evaluation_mode(pairs):
    model = mrd.pairwise_relative_depth(17, width=16, num_blocks=1, feature_dim=4, head_width=8)
    b = _batch(pairs, 4)
    s = np.ones(2, np.float32)
    v = model.init(jax.random.key(0), b["pose_a"][:2], b["conf_a"][:2], s, b["pose_b"][:2],
                   b["conf_b"][:2], s)  # fmt: skip
    got = mrd.pairwise_predictor(model, v)(b["pose_a"], b["conf_a"], b["pose_b"], b["conf_b"])
    swapped = mrd.pairwise_predictor(model, v)(b["pose_b"], b["conf_b"], b["pose_a"], b["conf_a"])
    np.testing.assert_allclose(got, -swapped, atol=1e-5)  # symmetric head: the sign flips
    assert got.shape == (4, 17)


def test_init_lifter_from_encoder_copies_the_trunk(pairs):
    """A fine-tuning step donates the lifter's arrays; the encoder's must survive them."""
    from jpose.models import martinez_lifter

    model = mrd.pairwise_relative_depth(17, width=16, num_blocks=1, feature_dim=4, head_width=8)
    b, s = _batch(pairs, 2), np.ones(2, np.float32)
    v = model.init(jax.random.key(0), b["pose_a"], b["conf_a"], s, b["pose_b"], b["conf_b"], s)
    lifter = martinez_lifter(17, in_channels=3, width=16, num_blocks=1)
    new = mrd.init_lifter_from_encoder(
        lifter.init(jax.random.key(1), mrd.person_input(b["pose_a"], b["conf_a"])), v
    )
    enc = mrd.encoder_variables(v)["params"]
    for name in ("input_dense", "block0_a_dense"):  # the trunk's values
        np.testing.assert_array_equal(new["params"][name]["kernel"], enc[name]["kernel"])
    for leaf in jax.tree_util.tree_leaves(new):
        leaf.delete()  # what a donating step does
    assert not any(x.is_deleted() for x in jax.tree_util.tree_leaves(enc))


# ------------------------------------------------------------------------------------------------
# Li et al.
# ------------------------------------------------------------------------------------------------


def test_global_pose_and_output_scale():
    rng = np.random.default_rng(0)
    rel, root = rng.normal(size=(3, 17, 3)), rng.normal(size=(3, 3))
    got = mli.global_pose(jnp.asarray(rel), jnp.asarray(root), root_index=0, root_depth_offset=5.0)
    want = rel - rel[:, :1] + (root + [0.0, 0.0, 5.0])[:, None]
    np.testing.assert_allclose(got, want, atol=1e-6)  # float32
    assert mli.output_scale(128) == 1.0 and mli.output_scale(1024) == 0.125
    assert mli.output_scale(1024, scale=0.5) == 0.5


def _rotation(rng, angle=0.3):
    """Rodrigues: a rotation by ``angle`` about a random axis (small: views keep the pose in
    front of every camera, away from the projection's depth clamp)."""
    k = rng.normal(size=3)
    k /= np.linalg.norm(k)
    kx = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + np.sin(angle) * kx + (1 - np.cos(angle)) * kx @ kx


def _views(seed=0, b=2, v=3, j=5):
    rng = np.random.default_rng(seed)
    rot = np.array([[_rotation(rng) for _ in range(v)] for _ in range(b)])
    trans = rng.normal(size=(b, v, 3)) * 0.3
    pose3d = rng.normal(size=(b, v, j, 3)) * 0.3 + [0.0, 0.0, 5.0]  # each view's camera frame
    pose2d = rng.normal(size=(b, v, j, 2)) * 0.1
    conf = rng.uniform(0.2, 1.0, size=(b, v, j))
    focal = rng.uniform(1.5, 2.5, size=(b, v, 2))
    center = rng.normal(size=(b, v, 2)) * 0.05
    return rot, trans, pose3d, pose2d, conf, focal, center


def _project(x, f, c):
    return f * x[..., :2] / x[..., 2:] + c


def test_li_objectives_against_a_loop_over_view_pairs():
    rot, trans, y, x, w, f, c = _views()
    b, v = y.shape[:2]
    eq6, eq2, eq5 = [], [], []
    for i in range(b):
        for a in range(v):
            for bb in range(a + 1, v):
                r_ab = rot[i, bb] @ rot[i, a].T
                t_ab = trans[i, bb] - r_ab @ trans[i, a]
                ya_in_b = y[i, a] @ r_ab.T + t_ab
                yb_in_a = (y[i, bb] - t_ab) @ r_ab  # the inverse transform
                eq6.append(((ya_in_b - y[i, bb]) ** 2).sum() + ((yb_in_a - y[i, a]) ** 2).sum())
                eq2.append(sum((w[i, k] * ((x[i, k] - _project(y[i, k], f[i, k], c[i, k])) ** 2)
                                .sum(-1)).sum() for k in (a, bb)))  # fmt: skip
                e_ab = ((x[i, bb] - _project(ya_in_b, f[i, bb], c[i, bb])) ** 2).sum(-1)
                e_ba = ((x[i, a] - _project(yb_in_a, f[i, a], c[i, a])) ** 2).sum(-1)
                eq5.append((w[i, a] * e_ab).sum() + (w[i, bb] * e_ba).sum())  # source weights
    args = [jnp.asarray(a, jnp.float32) for a in (rot, trans, y, x, w, f, c)]
    rot, trans, y, x, w, f, c = args
    pre, m = mli.pretrain_objective(y, rotation=rot, translation=trans, root_index=2)
    np.testing.assert_allclose(float(pre), np.mean(eq6), rtol=1e-4)
    np.testing.assert_allclose(float(m["root_depth"]), float(jnp.mean(y[:, :, 2, 2])), rtol=1e-6)
    total, m = mli.train_objective(y, x, w, focal=f, center=c, rotation=rot, translation=trans,
                                   transform_weight=0.5)  # fmt: skip
    np.testing.assert_allclose(float(m["reproj"]), np.mean(eq2), rtol=1e-4)
    np.testing.assert_allclose(float(m["t_reproj"]), np.mean(eq5), rtol=1e-4)
    np.testing.assert_allclose(float(total), np.mean(eq2) + 0.5 * np.mean(eq5), rtol=1e-4)
    np.testing.assert_allclose(float(m["mean_confidence"]), float(jnp.mean(w)), rtol=1e-6)


def test_li_objectives_vanish_for_a_pose_consistent_across_views():
    rot, trans, _, _, _, f, c = _views(seed=1)
    world = np.random.default_rng(2).normal(size=(2, 5, 3)) * 0.3 + [0.0, 0.0, 5.0]
    y = np.einsum("bvij,bkj->bvki", rot, world) + trans[:, :, None]  # X_cam = R X + t
    x = _project(y, f[:, :, None], c[:, :, None])
    w = np.ones(y.shape[:-1])
    args = [jnp.asarray(a, jnp.float32) for a in (rot, trans, y, x, w, f, c)]
    rot, trans, y, x, w, f, c = args
    assert float(mli.pretrain_objective(y, rotation=rot, translation=trans)[0]) < 1e-8
    total, _ = mli.train_objective(y, x, w, focal=f, center=c, rotation=rot, translation=trans,
                                   transform_weight=1.0)  # fmt: skip
    assert float(total) < 1e-8
