"""Tests for jpose.metrics against independent numpy references and hand-derived numbers."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from jpose import metrics, skeleton

J = 17


def _poses(seed, shape=(4,), num_joints=J, noise=0.05):
    """Random (pred, target) in metres: target ~ N(0, 0.3 m), pred = target + N(0, noise)."""
    rng = np.random.default_rng(seed)
    target = rng.normal(scale=0.3, size=(*shape, num_joints, 3))
    pred = target + rng.normal(scale=noise, size=target.shape)
    return pred, target


def _random_rotation(rng):
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


# --------------------------------------------------------------------------------------------
# numpy references
# --------------------------------------------------------------------------------------------


def np_mpjpe(pred, target):
    return np.mean(np.linalg.norm(pred - target, axis=-1), axis=-1)


def np_p_mpjpe_videopose3d(predicted, target):
    """VideoPose3D common/loss.py p_mpjpe, re-derived, per example ([N, J, 3] -> [N])."""
    mu_x = np.mean(target, axis=1, keepdims=True)
    mu_y = np.mean(predicted, axis=1, keepdims=True)
    x0 = target - mu_x
    y0 = predicted - mu_y
    norm_x = np.sqrt(np.sum(x0**2, axis=(1, 2), keepdims=True))
    norm_y = np.sqrt(np.sum(y0**2, axis=(1, 2), keepdims=True))
    x0 = x0 / norm_x
    y0 = y0 / norm_y
    h = np.matmul(x0.transpose(0, 2, 1), y0)
    u, s, vt = np.linalg.svd(h)
    v = vt.transpose(0, 2, 1)
    r = np.matmul(v, u.transpose(0, 2, 1))
    # Avoid improper rotations (reflections): flip the last singular vector and value.
    sign_det_r = np.sign(np.expand_dims(np.linalg.det(r), axis=1))
    v[:, :, -1] *= sign_det_r
    s[:, -1] *= sign_det_r.flatten()
    r = np.matmul(v, u.transpose(0, 2, 1))
    tr = np.expand_dims(np.sum(s, axis=1, keepdims=True), axis=2)
    a = tr * norm_x / norm_y  # scale
    t = mu_x - a * np.matmul(mu_y, r)
    aligned = a * np.matmul(predicted, r) + t
    return np.mean(np.linalg.norm(aligned - target, axis=-1), axis=-1)


def np_n_mpjpe(pred, target):
    """Closed-form least-squares scale s = <p, t> / <p, p> (Rhodin et al. 2018)."""
    s = np.sum(pred * target, axis=(-1, -2)) / np.sum(pred * pred, axis=(-1, -2))
    return np_mpjpe(s[..., None, None] * pred, target)


def np_pck_loop(pred, target, threshold, joints):
    correct, total = 0, 0
    for p, t in zip(pred, target):
        for j in joints:
            correct += np.linalg.norm(p[j] - t[j]) < threshold
            total += 1
    return correct / total


def np_roc_auc_pairwise(scores, labels):
    pos, neg = scores[labels == 1], scores[labels == 0]
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


# --------------------------------------------------------------------------------------------
# Position errors
# --------------------------------------------------------------------------------------------


def test_mpjpe_matches_numpy_and_mask():
    pred, target = _poses(0, shape=(2, 3))
    np.testing.assert_allclose(metrics.mpjpe(pred, target), np_mpjpe(pred, target), rtol=1e-5)
    mask = np.ones(J, bool)
    mask[[3, 6, 10]] = False
    got = metrics.mpjpe(pred, target, mask=mask)
    np.testing.assert_allclose(got, np_mpjpe(pred[..., mask, :], target[..., mask, :]), rtol=1e-5)
    # All-zero mask -> 0 (documented), not NaN.
    assert np.all(np.asarray(metrics.mpjpe(pred, target, mask=np.zeros(J))) == 0.0)


def test_p_mpjpe_matches_videopose3d_to_1e_4_mm():
    pred, target = _poses(1, shape=(6,), noise=0.08)
    # Two examples whose best orthogonal fit is a reflection: mirrored target plus noise.
    pred[:2] = target[:2] * np.array([-1.0, 1.0, 1.0]) + 0.01 * pred[:2]
    ref = np_p_mpjpe_videopose3d(pred.copy(), target.copy())
    with jax.enable_x64(True):
        got = np.asarray(metrics.p_mpjpe(jnp.asarray(pred), jnp.asarray(target)))
    np.testing.assert_allclose(got * metrics.M_TO_MM, ref * metrics.M_TO_MM, rtol=0, atol=1e-4)
    # float32 agrees to float32 accuracy.
    got32 = metrics.p_mpjpe(pred.astype(np.float32), target.astype(np.float32))
    np.testing.assert_allclose(metrics.to_mm(got32), metrics.to_mm(ref), atol=5e-3)
    # Reflected examples really are worse than a mirror fit would allow (fix is active).
    assert np.all(ref[:2] > 0.05)


def test_p_mpjpe_mask_equals_videopose3d_on_joint_subset():
    pred, target = _poses(2, shape=(3,))
    keep = np.array([0, 1, 2, 4, 5, 7, 8, 11, 12, 14, 15])
    mask = np.zeros(J)
    mask[keep] = 1.0
    ref = np_p_mpjpe_videopose3d(pred[:, keep].copy(), target[:, keep].copy())
    with jax.enable_x64(True):
        got = np.asarray(metrics.p_mpjpe(jnp.asarray(pred), jnp.asarray(target), mask=mask))
    np.testing.assert_allclose(got * metrics.M_TO_MM, ref * metrics.M_TO_MM, atol=1e-4)


def test_p_mpjpe_invariant_to_similarity_transform_of_prediction():
    rng = np.random.default_rng(3)
    pred, target = _poses(3, shape=(3,))
    rot = _random_rotation(rng)
    moved = 2.7 * pred @ rot.T + rng.normal(size=3)
    with jax.enable_x64(True):
        a = np.asarray(metrics.p_mpjpe(jnp.asarray(pred), jnp.asarray(target)))
        b = np.asarray(metrics.p_mpjpe(jnp.asarray(moved), jnp.asarray(target)))
    np.testing.assert_allclose(a * metrics.M_TO_MM, b * metrics.M_TO_MM, atol=1e-6)
    # P-MPJPE <= N-MPJPE-free baseline: alignment never increases the error.
    assert np.all(a <= np_mpjpe(pred, target) + 1e-12)


def test_n_mpjpe_matches_closed_form():
    pred, target = _poses(4, shape=(5,))
    pred = 1.3 * pred  # a scale error N-MPJPE should remove
    with jax.enable_x64(True):
        got = np.asarray(metrics.n_mpjpe(jnp.asarray(pred), jnp.asarray(target)))
        mask = np.ones(J)
        mask[[0, 9]] = 0.0
        got_masked = np.asarray(metrics.n_mpjpe(jnp.asarray(pred), jnp.asarray(target), mask=mask))
    np.testing.assert_allclose(got, np_n_mpjpe(pred, target), rtol=1e-10)
    keep = mask > 0
    np.testing.assert_allclose(got_masked, np_n_mpjpe(pred[:, keep], target[:, keep]), rtol=1e-10)
    assert np.all(got < np_mpjpe(pred, target))


def test_mpjve_matches_numpy_diff():
    pred, target = _poses(5, shape=(2, 6))  # [B, T, J, 3]
    ref = np.mean(np.linalg.norm(np.diff(pred, axis=1) - np.diff(target, axis=1), axis=-1), axis=-1)
    got = metrics.mpjve(pred, target)
    assert got.shape == (2, 5)
    np.testing.assert_allclose(got, ref, rtol=1e-5)
    # Time-major layout [T, B, J, 3] with axis=0 gives the transposed result.
    got_tm = metrics.mpjve(pred.swapaxes(0, 1), target.swapaxes(0, 1), axis=0)
    np.testing.assert_allclose(got_tm, ref.T, rtol=1e-5)
    # Time-varying joint mask: a velocity sample counts when both of its frames are valid.
    mask = np.random.default_rng(13).random(pred.shape[:-1]) < 0.7
    w = (mask[:, :-1] & mask[:, 1:]).astype(float)
    err = np.linalg.norm(np.diff(pred, axis=1) - np.diff(target, axis=1), axis=-1)
    ref_masked = np.sum(w * err, -1) / np.maximum(np.sum(w, -1), 1)
    np.testing.assert_allclose(metrics.mpjve(pred, target, mask=mask), ref_masked, rtol=1e-5)
    # A constant offset per frame sequence has zero velocity error.
    np.testing.assert_allclose(metrics.mpjve(target + 0.3, target), 0.0, atol=1e-6)


# --------------------------------------------------------------------------------------------
# PCK / AUC
# --------------------------------------------------------------------------------------------


def test_pck_and_auc_match_numpy_loop():
    pred, target = _poses(6, shape=(5,), noise=0.07)
    joints = [1, 2, 3, 4, 5, 6, 11, 12, 13, 14, 15, 16]
    got = metrics.pck3d(pred, target, joints=joints)
    ref = [np_pck_loop(pred[i : i + 1], target[i : i + 1], 0.15, joints) for i in range(5)]
    np.testing.assert_allclose(got, ref, rtol=1e-6)
    # Global PCK (equal joint counts per example) = mean of per-example PCK.
    np.testing.assert_allclose(np.mean(got), np_pck_loop(pred, target, 0.15, joints), rtol=1e-6)
    # A 0/1 joint mask selects the same joints as `joints=`.
    mask = np.zeros(J)
    mask[joints] = 1.0
    np.testing.assert_allclose(metrics.pck3d(pred, target, mask=mask), got, rtol=1e-6)
    thresholds = np.linspace(0.0, 0.15, 31)
    ref_auc = np.mean([np_pck_loop(pred, target, t, range(J)) for t in thresholds])
    np.testing.assert_allclose(np.mean(metrics.auc3d(pred, target)), ref_auc, rtol=1e-6)
    np.testing.assert_allclose(
        metrics.pck3d(pred, target, threshold=0.05),
        [np_pck_loop(pred[i : i + 1], target[i : i + 1], 0.05, range(J)) for i in range(5)],
        rtol=1e-6,
    )


def test_pck_hand_numbers():
    # Errors of 0, 0.1, 0.2 m on three joints: PCK@0.15 = 2/3; strict '<' so error 0 at t=0 fails.
    target = np.zeros((3, 3))
    pred = np.array([[0.0, 0.0, 0.0], [0.1, 0.0, 0.0], [0.0, 0.2, 0.0]])
    np.testing.assert_allclose(metrics.pck3d(pred, target), 2 / 3, rtol=1e-6)
    # AUC with thresholds {0, 0.1, 0.2}: PCK 0, 1/3 (0.1 < 0.1 is false), 2/3 -> mean 1/3.
    np.testing.assert_allclose(
        metrics.auc3d(pred, target, max_threshold=0.2, num_thresholds=3), 1 / 3, rtol=1e-6
    )


# --------------------------------------------------------------------------------------------
# Symmetric bone lengths (Zhou et al. 2017 Table 4)
# --------------------------------------------------------------------------------------------


def test_symmetric_bone_length_difference_h36m17():
    layout = skeleton.H36M17
    _, pose = _poses(7, shape=(2,))
    got = np.asarray(metrics.symmetric_bone_length_difference(pose, layout=layout))

    def length(p, a, b):
        return np.linalg.norm(p[..., layout.index(a), :] - p[..., layout.index(b), :], axis=-1)

    # Hand-listed H36M17 left/right bone pairs (VideoPose3D joint names/parents).
    pairs = [
        (("Hip", "LHip"), ("Hip", "RHip")),
        (("LHip", "LKnee"), ("RHip", "RKnee")),
        (("LKnee", "LFoot"), ("RKnee", "RFoot")),
        (("Thorax", "LShoulder"), ("Thorax", "RShoulder")),
        (("LShoulder", "LElbow"), ("RShoulder", "RElbow")),
        (("LElbow", "LWrist"), ("RElbow", "RWrist")),
    ]
    ref = np.stack([np.abs(length(pose, *l) - length(pose, *r)) for l, r in pairs], axis=-1)
    assert got.shape == (2, len(pairs))
    np.testing.assert_allclose(np.sort(got, axis=-1), np.sort(ref, axis=-1), rtol=1e-5)
    # A mirror-symmetric skeleton (x -> -x swaps left and right joints) has zero difference.
    sym = pose[0].copy()
    flipped = sym[layout.flip_permutation] * np.array([-1.0, 1.0, 1.0])
    symmetric = 0.5 * (sym + flipped)
    np.testing.assert_allclose(
        metrics.symmetric_bone_length_difference(symmetric, layout=layout), 0.0, atol=1e-6
    )
    with pytest.raises(ValueError, match="17"):
        metrics.symmetric_bone_length_difference(pose[..., :16, :], layout=layout)


# --------------------------------------------------------------------------------------------
# Relative-depth classification (WSP)
# --------------------------------------------------------------------------------------------


def test_classification_metrics_match_numpy():
    rng = np.random.default_rng(8)
    logits = np.round(rng.normal(size=(4, 25)), 1)  # rounding creates ties for the AUC
    labels = (rng.random((4, 25)) < 0.4).astype(np.int32)
    mask = rng.random((4, 25)) < 0.8
    probs = 1.0 / (1.0 + np.exp(-logits))

    s, y = probs[mask], labels[mask]
    pos = s > 0.5
    tp = np.sum(pos & (y == 1))
    fp = np.sum(pos & (y == 0))
    fn = np.sum(~pos & (y == 1))
    tn = np.sum(~pos & (y == 0))
    ref = {
        "accuracy": (tp + tn) / len(y),
        "precision": tp / (tp + fp),
        "recall": tp / (tp + fn),
        "f1": 2 * tp / (2 * tp + fp + fn),
        "auc": np_roc_auc_pairwise(logits[mask], y),
    }
    got = metrics.relative_depth_metrics(probs, labels, mask=mask)
    got_logits = jax.jit(functools.partial(metrics.relative_depth_metrics, from_logits=True))(
        logits, labels, mask=mask
    )
    for name, value in ref.items():
        np.testing.assert_allclose(got[name], value, rtol=1e-6, err_msg=name)
        np.testing.assert_allclose(got_logits[name], value, rtol=1e-6, err_msg=name)
        assert np.shape(got[name]) == ()
    np.testing.assert_allclose(metrics.binary_accuracy(probs, labels, mask=mask), ref["accuracy"])
    counts = metrics.binary_confusion_counts(logits, labels, mask=mask, from_logits=True)
    assert [int(counts[k]) for k in ("tp", "fp", "tn", "fn")] == [tp, fp, tn, fn]


def test_roc_auc_hand_numbers_and_edge_cases():
    # pos {0.9, 0.5}, neg {0.5, 0.1}: pairs (0.9>0.5, 0.9>0.1, 0.5=0.5 -> 1/2, 0.5>0.1) = 3.5 / 4.
    scores = np.array([0.9, 0.5, 0.5, 0.1])
    labels = np.array([1, 1, 0, 0])
    np.testing.assert_allclose(metrics.roc_auc(scores, labels), 0.875)
    # Infinite scores are ranked too (+inf positive beats every negative).
    np.testing.assert_allclose(metrics.roc_auc(np.array([np.inf, 0.0, np.inf]), [1, 0, 0]), 0.75)
    assert np.isnan(metrics.roc_auc(scores, np.ones(4)))
    # No predicted positives / no positives -> 0 (zero_division=0), not NaN.
    assert float(metrics.relative_depth_metrics(np.zeros(4), labels)["precision"]) == 0.0
    assert float(metrics.relative_depth_metrics(scores, np.zeros(4))["recall"]) == 0.0


# --------------------------------------------------------------------------------------------
# Aggregation
# --------------------------------------------------------------------------------------------


def test_aggregation_hand_numbers():
    values = np.array([10.0, 20.0, 30.0, 40.0, 100.0])
    actions = np.array(["Walk", "Walk", "Walk", "Sit", "Sit"])
    subjects = np.array(["S9", "S11", "S9", "S11", "S11"])
    # Walk: (10+20+30)/3 = 20; Sit: (40+100)/2 = 70; action-wise (20+70)/2 = 45; frame-wise 200/5.
    assert metrics.per_action(values, actions) == {"Walk": 20.0, "Sit": 70.0}
    assert list(metrics.per_action(values, actions)) == ["Walk", "Sit"]
    assert metrics.action_wise_mean(values, actions) == pytest.approx(45.0)
    assert metrics.frame_wise_mean(values) == pytest.approx(40.0)
    # S9: (10+30)/2 = 20; S11: (20+40+100)/3 = 160/3.
    per_subject = metrics.per_subject(values, subjects)
    assert per_subject == pytest.approx({"S9": 20.0, "S11": 160 / 3})
    # Integer groups: 1 -> (10+20)/2 = 15; 2 -> (30+40+100)/3 = 170/3.
    by_int = metrics.per_group(values, np.array([1, 1, 2, 2, 2]))
    assert by_int == pytest.approx({1: 15, 2: 170 / 3})
    with pytest.raises(ValueError, match="one group label per value"):
        metrics.action_wise_mean(values, actions[:4])
    assert metrics.to_mm({"a": 0.05}) == {"a": pytest.approx(50.0)}
    assert metrics.to_mm(0.0456) == pytest.approx(45.6)


def test_format_table():
    rows = {"ours": {"Walk": 45.25, "Sit": 60.0}, "baseline": {"Walk": 50.04}}
    table = metrics.format_table(rows, title="H36M P1 (mm)", row_header="method", digits=1)
    assert table == (
        "H36M P1 (mm)\n"
        "\n"
        "| method | Walk | Sit |\n"
        "|---|---:|---:|\n"
        "| ours | 45.2 | 60.0 |\n"
        "| baseline | 50.0 | - |\n"
    )
    table2 = metrics.format_table(rows, columns=["Sit"], digits=2)
    assert table2.splitlines()[-1] == "| baseline | - |"
    assert "60.00" in table2


# --------------------------------------------------------------------------------------------
# Gradients, jit, vmap, degenerate inputs, shapes
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fn", [metrics.mpjpe, metrics.p_mpjpe, metrics.n_mpjpe])
def test_check_grads(fn):
    pred, target = _poses(9, shape=(2,), num_joints=6)
    with jax.enable_x64(True):
        t = jnp.asarray(target)
        check_grads(
            lambda p: fn(p, t).sum(),
            (jnp.asarray(pred),),
            order=1,
            modes=("rev",),
            atol=1e-5,
            rtol=1e-5,
            eps=1e-6,
        )


def test_jit_equals_eager_and_vmap_equals_loop():
    pred, target = _poses(10, shape=(2, 4))
    pred, target = pred.astype(np.float32), target.astype(np.float32)
    fns = {
        "mpjpe": metrics.mpjpe,
        "p_mpjpe": metrics.p_mpjpe,
        "n_mpjpe": metrics.n_mpjpe,
        "pck3d": functools.partial(metrics.pck3d, joints=[0, 3, 5]),
        "auc3d": metrics.auc3d,
    }
    for name, fn in fns.items():
        eager = fn(pred, target)
        assert eager.shape == (2, 4), name
        np.testing.assert_allclose(jax.jit(fn)(pred, target), eager, atol=1e-6, err_msg=name)
        vmapped = jax.vmap(fn)(pred, target)
        looped = np.stack([fn(pred[i], target[i]) for i in range(2)])
        np.testing.assert_allclose(vmapped, looped, atol=1e-6, err_msg=name)
    np.testing.assert_allclose(
        jax.jit(metrics.mpjve)(pred, target), metrics.mpjve(pred, target), atol=1e-6
    )


@pytest.mark.parametrize("fn", [metrics.mpjpe, metrics.p_mpjpe, metrics.n_mpjpe, metrics.mpjve])
def test_degenerate_inputs_finite_values_and_gradients(fn):
    _, target = _poses(11, shape=(3,), num_joints=5)
    target = target.astype(np.float32)
    coincident = np.broadcast_to(target[:, :1], target.shape).copy()
    value_and_grad = jax.jit(jax.value_and_grad(lambda p, t: fn(p, t).sum()))  # one compile
    for pred, tgt in [(target, target), (coincident, target), (coincident, coincident)]:
        value, grad = value_and_grad(pred, tgt)
        assert np.isfinite(value), fn.__name__
        assert np.all(np.isfinite(grad)), fn.__name__
    if fn is not metrics.mpjve:
        np.testing.assert_allclose(fn(target, target), 0.0, atol=1e-5)


def test_wrong_shapes_raise():
    pred, target = _poses(12, shape=(2,))
    with pytest.raises(ValueError, match=r"\[\.\.\., J, 3\]"):
        metrics.mpjpe(pred[..., :2], target[..., :2])
    with pytest.raises(ValueError, match="same shape"):
        metrics.p_mpjpe(pred, target[:, :16])
    with pytest.raises(ValueError, match="mask"):
        metrics.n_mpjpe(pred, target, mask=np.ones(16))
    with pytest.raises(ValueError, match="time axis"):
        metrics.mpjve(pred, target, axis=-2)
    with pytest.raises(ValueError, match="joint indices"):
        metrics.pck3d(pred, target, joints=[0, 17])
    with pytest.raises(ValueError, match="same shape"):
        metrics.roc_auc(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="1-D"):
        metrics.per_action(np.zeros((2, 2)), np.zeros((2, 2)))


def test_pckh_scores_visible_joints_against_the_head_segment():
    lay = skeleton.H36M17
    rng = np.random.default_rng(0)
    target = rng.uniform(0, 100, (3, lay.num_joints, 2))
    head = np.linalg.norm(target[:, lay.index("Head")] - target[:, lay.index("Neck/Nose")], axis=-1)
    pred = target.copy()
    wrist = lay.index("RWrist")
    pred[:, wrist, 0] += np.array([0.4, 0.6, 0.6]) * head  # within 0.5 x head once, twice not
    vis = np.ones((3, lay.num_joints))
    vis[:, lay.index("LWrist")] = 0.0  # never visible: not scored, not reported
    out = metrics.pckh(pred, target, vis)
    assert out["RWrist"] == pytest.approx(1 / 3)
    assert "LWrist" not in out and out["Hip"] == 1.0
    assert out["pckh"] == pytest.approx(1 - 2 / (3 * (lay.num_joints - 1)))
    assert metrics.pckh(pred, target, vis, threshold=0.7)["RWrist"] == 1.0
    with pytest.raises(ValueError, match=r"\[N, 17, 2\]"):
        metrics.pckh(pred[:, :16], target[:, :16], vis[:, :16])
