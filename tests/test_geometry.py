"""Tests for jpose.geometry against scipy / numpy references and hand-derived numbers."""

import math
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
from jax.test_util import check_grads
from scipy.spatial.transform import Rotation

from jpose import geometry as g

J = 17

# Jitted handles shared by the tests: one compilation per shape instead of op-by-op eager
# compilation (the jit == eager tests below still call the plain functions).
P_TRANSFORM = jax.jit(g.procrustes_transform, static_argnames=("scale", "reflection"))
P_ALIGN = jax.jit(g.procrustes_align, static_argnames=("scale", "reflection"))
JAC_LOG = jax.jit(jax.jacrev(g.matrix_to_axis_angle))
JAC_EXP = jax.jit(jax.jacrev(g.axis_angle_to_matrix))


def _rng(seed):
    return np.random.default_rng(seed)


def _finite(tree):
    return all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(tree))


def _wxyz(q_xyzw):
    return np.concatenate([q_xyzw[..., 3:], q_xyzw[..., :3]], axis=-1)


def _xyzw(q_wxyz):
    return np.concatenate([q_wxyz[..., 1:], q_wxyz[..., :1]], axis=-1)


# --------------------------------------------------------------------------------------------
# norms, centring
# --------------------------------------------------------------------------------------------


def test_safe_norm_and_normalize_match_numpy():
    x = _rng(0).normal(size=(2, 5, 3))
    np.testing.assert_allclose(g.safe_norm(x), np.linalg.norm(x, axis=-1), rtol=1e-6)
    np.testing.assert_allclose(
        g.safe_norm(x, axis=-2, keepdims=True),
        np.linalg.norm(x, axis=-2, keepdims=True),
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        g.safe_normalize(x), x / np.linalg.norm(x, axis=-1, keepdims=True), rtol=1e-5
    )
    # Hand-derived: |(3, 4, 0)| = 5.
    assert float(g.safe_norm(jnp.array([3.0, 4.0, 0.0]))) == pytest.approx(5.0)


def test_safe_norm_zero_vector_value_and_gradient():
    zero = jnp.zeros(3)
    assert float(g.safe_norm(zero)) == 0.0
    np.testing.assert_array_equal(g.safe_normalize(zero), np.zeros(3))
    np.testing.assert_array_equal(jax.grad(g.safe_norm)(zero), np.zeros(3))
    jac = jax.jacrev(g.safe_normalize)(zero)
    assert _finite(jac)
    # Plain jnp.linalg.norm would give NaN here; the double-where keeps it finite.
    assert not _finite(jax.grad(jnp.linalg.norm)(zero))


def test_safe_norm_grads():
    x = jnp.asarray(_rng(1).normal(size=(2, 3)))
    with jax.enable_x64(True):
        x64 = jnp.asarray(np.asarray(x), jnp.float64)
        check_grads(g.safe_norm, (x64,), order=2, modes=("rev",))
        check_grads(g.safe_normalize, (x64,), order=1, modes=("rev",))


def test_root_centre():
    pose = _rng(2).normal(size=(2, 4, 3))
    np.testing.assert_allclose(g.root_centre(pose, root=1), pose - pose[:, 1:2], rtol=1e-6)
    with pytest.raises(ValueError, match=r"\[\.\.\., J, D\]"):
        g.root_centre(np.zeros(3))
    with pytest.raises(ValueError, match="root"):
        g.root_centre(pose, root=7)


# --------------------------------------------------------------------------------------------
# rotations
# --------------------------------------------------------------------------------------------


def test_axis_angle_matrix_match_scipy():
    aa = _rng(3).normal(size=(2, 3, 3))
    ref = Rotation.from_rotvec(aa.reshape(-1, 3)).as_matrix().reshape(2, 3, 3, 3)
    mat = g.axis_angle_to_matrix(aa)
    assert mat.shape == (2, 3, 3, 3)
    np.testing.assert_allclose(mat, ref, atol=1e-5)
    back = g.matrix_to_axis_angle(ref)
    ref_aa = Rotation.from_matrix(ref.reshape(-1, 3, 3)).as_rotvec().reshape(2, 3, 3)
    np.testing.assert_allclose(back, ref_aa, atol=1e-4)
    # Hand-derived: 90 deg about z maps x -> y: R = [[0, -1, 0], [1, 0, 0], [0, 0, 1]].
    rz = g.axis_angle_to_matrix(jnp.array([0.0, 0.0, math.pi / 2]))
    np.testing.assert_allclose(rz, [[0, -1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-6)


def test_rotation_zero_and_pi_angles():
    # Zero angle: identity, and dR/dw_k = [e_k]_x (the so(3) generators), finite.
    zero = jnp.zeros(3)
    np.testing.assert_allclose(g.axis_angle_to_matrix(zero), np.eye(3), atol=1e-7)
    jac = JAC_EXP(zero)  # [3, 3, 3(k)]
    gen = np.array([np.cross(np.eye(3)[k], np.eye(3)).T for k in range(3)])  # [e_k]_x
    np.testing.assert_allclose(np.moveaxis(np.asarray(jac), -1, 0), gen, atol=1e-6)
    assert _finite(JAC_LOG(jnp.eye(3)))
    np.testing.assert_allclose(g.matrix_to_axis_angle(jnp.eye(3)), np.zeros(3), atol=1e-7)
    # Angle pi: the axis is recovered up to sign, the angle is pi, gradients finite.
    for axis in (np.array([1.0, 0, 0]), np.array([1.0, 2.0, -2.0]) / 3.0):
        mat = jnp.asarray(Rotation.from_rotvec(math.pi * axis).as_matrix(), jnp.float32)
        aa = np.asarray(g.matrix_to_axis_angle(mat))
        assert np.linalg.norm(aa) == pytest.approx(math.pi, abs=1e-3)
        assert abs(abs(aa @ axis) - math.pi) < 1e-3
        assert _finite(JAC_LOG(mat))
        assert _finite(JAC_EXP(jnp.asarray(math.pi * axis)))


def test_quaternions_match_scipy():
    names = [n for n in g.__all__ if "quaternion" in n]
    jg = types.SimpleNamespace(**{n: jax.jit(getattr(g, n)) for n in names})  # compile once each
    rng = _rng(4)
    r1 = Rotation.random(6, random_state=rng)
    r2 = Rotation.random(6, random_state=rng)
    q1, q2 = _wxyz(r1.as_quat()), _wxyz(r2.as_quat())
    np.testing.assert_allclose(jg.quaternion_to_matrix(q1), r1.as_matrix(), atol=1e-5)
    # Non-unit quaternions are normalised first.
    np.testing.assert_allclose(jg.quaternion_to_matrix(3.0 * q1), r1.as_matrix(), atol=1e-5)
    q_back = np.asarray(jg.matrix_to_quaternion(r1.as_matrix()))
    q_ref = q1 * np.sign(q1[:, :1])
    np.testing.assert_allclose(q_back, q_ref, atol=1e-5)
    assert np.all(q_back[:, 0] >= 0)
    # Hamilton product == scipy composition r1 * r2 (quaternions equal up to overall sign).
    prod = np.asarray(jg.quaternion_multiply(q1, q2))
    ref = _wxyz((r1 * r2).as_quat())
    np.testing.assert_allclose(
        prod * np.sign(np.sum(prod * ref, -1, keepdims=True)), ref, atol=1e-5
    )
    inv = np.asarray(jg.quaternion_inverse(2.0 * q1))  # conj(q) / |q|^2 for |q| = 2
    np.testing.assert_allclose(inv, q1 * np.array([1, -1, -1, -1]) / 2.0, atol=1e-6)
    np.testing.assert_allclose(
        jg.quaternion_to_matrix(jg.quaternion_inverse(q1)), r1.inv().as_matrix(), atol=1e-5
    )
    v = rng.normal(size=(6, 3))
    np.testing.assert_allclose(jg.quaternion_rotate(q1, v), r1.apply(v), atol=1e-5)
    # Broadcasting: one quaternion per pose, several joints.
    pose = rng.normal(size=(6, 4, 3))
    ref = np.stack([r1[i].apply(pose[i]) for i in range(6)])
    np.testing.assert_allclose(jg.quaternion_rotate(q1[:, None, :], pose), ref, atol=1e-5)
    aa = r1.as_rotvec()
    qa = np.asarray(jg.axis_angle_to_quaternion(aa))
    np.testing.assert_allclose(qa * np.sign(np.sum(qa * q1, -1, keepdims=True)), q1, atol=1e-5)
    np.testing.assert_allclose(jg.quaternion_to_axis_angle(q1), aa, atol=1e-4)
    # Hand-derived: q = (cos 45, 0, 0, sin 45) is 90 deg about z; q * q^-1 = identity.
    qz = jnp.array([math.cos(math.pi / 4), 0.0, 0.0, math.sin(math.pi / 4)])
    np.testing.assert_allclose(
        jg.quaternion_rotate(qz, jnp.array([1.0, 0, 0])), [0, 1, 0], atol=1e-6
    )
    np.testing.assert_allclose(
        jg.quaternion_multiply(qz, jg.quaternion_inverse(qz)), [1, 0, 0, 0], atol=1e-6
    )
    # Degenerate: zero quaternion -> identity matrix, zero inverse, finite gradients.
    np.testing.assert_allclose(jg.quaternion_to_matrix(jnp.zeros(4)), np.eye(3), atol=1e-7)
    np.testing.assert_array_equal(jg.quaternion_inverse(jnp.zeros(4)), np.zeros(4))
    assert _finite(jax.jacrev(jg.quaternion_to_matrix)(jnp.zeros(4)))
    assert _finite(jax.jacrev(jg.quaternion_inverse)(jnp.zeros(4)))


def test_rotation_grads():
    rng = _rng(5)
    with jax.enable_x64(True):
        aa_np = rng.normal(size=(2, 3))
        aa = jnp.asarray(aa_np)
        q = jnp.asarray(_wxyz(Rotation.random(2, random_state=rng).as_quat()))
        mats = jnp.asarray(Rotation.from_rotvec(aa_np).as_matrix())
        v = jnp.asarray(rng.normal(size=(2, 3)))

        @jax.jit  # every rotation function in one compiled check
        def all_rotations(aa, mats, q, v):
            return (
                g.axis_angle_to_matrix(aa),
                g.matrix_to_axis_angle(mats),
                g.quaternion_to_matrix(q),
                g.matrix_to_quaternion(mats),
                g.quaternion_multiply(q, q[::-1]),
                g.quaternion_inverse(q),
                g.quaternion_rotate(q, v),
                g.axis_angle_to_quaternion(aa),
                g.quaternion_to_axis_angle(q),
                g.rotate_points(v[None], mats[0]),
            )

        check_grads(all_rotations, (aa, mats, q, v), order=1, modes=("rev",))


def test_rotation_jit_and_vmap():
    aa = jnp.asarray(_rng(6).normal(scale=0.5, size=(3, 3)), jnp.float32)  # angles < pi
    f = lambda a: g.matrix_to_axis_angle(g.axis_angle_to_matrix(a))  # noqa: E731
    eager = f(aa)
    np.testing.assert_allclose(jax.jit(f)(aa), eager, atol=1e-6)
    np.testing.assert_allclose(jax.vmap(f)(aa), np.stack([f(a) for a in aa]), atol=1e-6)
    np.testing.assert_allclose(eager, aa, atol=1e-4)  # round trip (angles < pi here)


def test_random_rotation_ranges_and_axes():
    key = jax.random.key(0)
    el_max = math.radians(20.0)
    rot = np.asarray(g.random_rotation(key, (64,), elevation_range=(0.0, el_max)))
    assert rot.shape == (64, 3, 3)
    np.testing.assert_allclose(
        rot @ np.swapaxes(rot, -1, -2), np.broadcast_to(np.eye(3), rot.shape), atol=1e-5
    )
    np.testing.assert_allclose(np.linalg.det(rot), 1.0, atol=1e-5)
    # R = R_x(el) R_y(az): the vertical axis y goes to R_x(el) e_y, at angle el from e_y.
    el = np.arccos(np.clip(rot[:, 1, 1], -1, 1))
    assert np.all(el <= el_max + 1e-5)
    assert el.max() > el_max / 2  # the range is actually used
    # scipy extrinsic Euler "yxz" (first about y, then x, then z) = R_z R_x R_y: roll ~ 0,
    # elevation in [0, 20 deg].
    az, el2, roll = Rotation.from_matrix(rot).as_euler("yxz").T
    np.testing.assert_allclose(roll, 0.0, atol=1e-4)
    np.testing.assert_allclose(el2, el, atol=1e-3)
    ref = Rotation.from_euler("yx", np.stack([az, el2], -1)).as_matrix()
    np.testing.assert_allclose(rot, ref, atol=1e-5)
    # Azimuth only (default): rotations about the vertical y axis keep y fixed, angles in [0, 2pi).
    rot_az = np.asarray(g.random_rotation(key, (2, 3)))
    assert rot_az.shape == (2, 3, 3, 3)
    np.testing.assert_allclose(rot_az[..., :, 1], np.broadcast_to([0, 1, 0], (2, 3, 3)), atol=1e-6)
    # z-up world: azimuth about z keeps z fixed.
    rot_z = np.asarray(g.random_rotation(key, (8,), up_axis="z"))
    np.testing.assert_allclose(rot_z[..., :, 2], np.broadcast_to([0, 0, 1], (8, 3)), atol=1e-6)
    # Roll only about the viewing axis z (camera frame).
    rot_r = np.asarray(
        g.random_rotation(key, (4,), azimuth_range=(0.0, 0.0), roll_range=(-0.5, 0.5))
    )
    np.testing.assert_allclose(rot_r[..., :, 2], np.broadcast_to([0, 0, 1], (4, 3)), atol=1e-6)
    with pytest.raises(ValueError, match="up_axis"):
        g.random_rotation(key, up_axis="w")
    # Same key, same draw.
    np.testing.assert_array_equal(g.random_rotation(key, (64,), elevation_range=(0.0, el_max)), rot)


def test_elementary_rotation_hand_derived():
    # R_x(90 deg) maps y to z; R_y(90 deg) maps z to x.
    np.testing.assert_allclose(
        g.elementary_rotation(math.pi / 2, axis="x") @ jnp.array([0.0, 1.0, 0.0]),
        [0, 0, 1],
        atol=1e-6,
    )
    np.testing.assert_allclose(
        g.elementary_rotation(math.pi / 2, axis="y") @ jnp.array([0.0, 0.0, 1.0]),
        [1, 0, 0],
        atol=1e-6,
    )
    with pytest.raises(ValueError, match="axis"):
        g.elementary_rotation(0.0, axis="q")


# --------------------------------------------------------------------------------------------
# Procrustes
# --------------------------------------------------------------------------------------------


def np_procrustes(pred, target, weights=None, scale=True, reflection=False):
    """Independent numpy Umeyama re-derivation (VideoPose3D p_mpjpe style), one example."""
    w = np.ones(len(pred)) if weights is None else np.asarray(weights, float)
    w = w / w.sum()
    mu_x, mu_y = w @ pred, w @ target
    x, y = pred - mu_x, target - mu_y
    h = (x * w[:, None]).T @ y  # VideoPose3D: H = X0^T Y0
    u, s, vt = np.linalg.svd(h)
    v = vt.T
    r = v @ u.T  # maps x to y as column vectors
    if not reflection and np.linalg.det(r) < 0:
        v[:, -1] *= -1
        s[-1] *= -1
        r = v @ u.T
    sc = s.sum() / np.sum(w * np.sum(x * x, axis=1)) if scale else 1.0
    t = mu_y - sc * r @ mu_x
    return r, sc, t


def _pose_pair(seed, shape=(3,)):
    rng = _rng(seed)
    target = rng.normal(scale=0.3, size=(*shape, J, 3))
    pred = target + rng.normal(scale=0.05, size=target.shape)
    return pred, target


@pytest.mark.parametrize("scale,reflection", [(True, False), (False, False), (True, True)])
def test_procrustes_matches_numpy(scale, reflection):
    pred, target = _pose_pair(7)
    pred[0] = pred[0] * np.array([-1.0, 1.0, 1.0])  # a reflected example
    rot, s, t = P_TRANSFORM(pred, target, scale=scale, reflection=reflection)
    aligned = P_ALIGN(pred, target, scale=scale, reflection=reflection)
    for i in range(len(pred)):
        r_ref, s_ref, t_ref = np_procrustes(pred[i], target[i], scale=scale, reflection=reflection)
        np.testing.assert_allclose(rot[i], r_ref, atol=1e-4)
        np.testing.assert_allclose(s[i], s_ref, rtol=1e-4)
        np.testing.assert_allclose(t[i], t_ref, atol=1e-4)
        np.testing.assert_allclose(aligned[i], s_ref * pred[i] @ r_ref.T + t_ref, atol=1e-4)
    if not reflection:
        np.testing.assert_allclose(np.linalg.det(np.asarray(rot)), 1.0, atol=1e-5)


def test_procrustes_rotation_matches_scipy_orthogonal_procrustes():
    pred, target = _pose_pair(8, shape=())
    x = pred - pred.mean(0)
    y = target - target.mean(0)
    r_scipy, _ = scipy.linalg.orthogonal_procrustes(x, y)  # argmin |x R - y|, R orthogonal
    rot, _, _ = P_TRANSFORM(pred, target, scale=False, reflection=True)
    np.testing.assert_allclose(rot, r_scipy.T, atol=1e-4)


def test_procrustes_recovers_similarity_and_invariance():
    rng = _rng(9)
    target = rng.normal(scale=0.3, size=(J, 3))
    r_true = Rotation.random(random_state=rng).as_matrix()
    s_true, t_true = 1.7, np.array([0.3, -1.0, 4.0])
    pred = (target - t_true) @ r_true / s_true  # so that s R pred + t = target
    rot, s, t = P_TRANSFORM(pred, target)
    np.testing.assert_allclose(rot, r_true, atol=1e-4)
    assert float(s) == pytest.approx(s_true, rel=1e-4)
    np.testing.assert_allclose(t, t_true, atol=1e-4)
    # Invariance: aligning a similarity-transformed noisy prediction gives the same result.
    pred, target = _pose_pair(10, shape=())
    r2 = Rotation.random(random_state=rng).as_matrix()
    moved = 0.6 * pred @ r2.T + np.array([1.0, 2.0, -3.0])
    np.testing.assert_allclose(P_ALIGN(moved, target), P_ALIGN(pred, target), atol=1e-5)


def test_procrustes_weights():
    pred, target = _pose_pair(11, shape=())
    w = _rng(11).uniform(0.2, 2.0, size=J)
    w[3] = 0.0
    rot, s, t = P_TRANSFORM(pred, target, weights=w)
    r_ref, s_ref, t_ref = np_procrustes(pred, target, weights=w)
    np.testing.assert_allclose(rot, r_ref, atol=1e-4)
    np.testing.assert_allclose(s, s_ref, rtol=1e-4)
    np.testing.assert_allclose(t, t_ref, atol=1e-4)
    # A zero-weight joint is the same as dropping it.
    keep = np.arange(J) != 3
    rot2, s2, t2 = P_TRANSFORM(pred[keep], target[keep], weights=w[keep])
    np.testing.assert_allclose(rot, rot2, atol=1e-5)
    np.testing.assert_allclose(s, s2, rtol=1e-5)
    with pytest.raises(ValueError, match=r"\[\.\.\., J\]"):
        P_TRANSFORM(pred, target, weights=np.ones(J + 1))


def _degenerate_inputs():
    rng = _rng(12)
    target = rng.normal(scale=0.3, size=(J, 3))
    coplanar = np.concatenate([rng.normal(size=(J, 2)), np.zeros((J, 1))], -1) * 0.3
    line = np.outer(rng.normal(size=J), [0.2, -0.1, 0.3])
    return {
        "coincident_pred": (np.full((J, 3), 0.5), target),
        "coincident_target": (target, np.full((J, 3), -0.2)),
        "both_coincident": (np.zeros((J, 3)), np.zeros((J, 3))),
        "rank2_pred": (coplanar, target),
        "rank2_both": (coplanar, coplanar @ Rotation.random(random_state=rng).as_matrix().T),
        "rank1_pred": (line, target),
        "rank1_both": (line, 2.0 * line + 1.0),
        "reflected": (target * np.array([1.0, 1.0, -1.0]), target),
    }


@jax.jit
def _align_loss_and_grads(p, q):
    return jax.value_and_grad(lambda a, b: jnp.sum((g.procrustes_align(a, b) - b) ** 2), (0, 1))(
        p, q
    )


@pytest.mark.parametrize("name", list(_degenerate_inputs()))
def test_procrustes_degenerate_finite_values_and_grads(name):
    pred, target = (jnp.asarray(a, jnp.float32) for a in _degenerate_inputs()[name])
    value, grads = _align_loss_and_grads(pred, target)
    assert _finite(value) and _finite(grads), name
    rot, s, t = P_TRANSFORM(pred, target)
    assert _finite((rot, s, t))
    np.testing.assert_allclose(np.linalg.det(np.asarray(rot)), 1.0, atol=1e-5)
    if name == "rank2_both":  # planar poses: the rotation is still unique and exact
        np.testing.assert_allclose(P_ALIGN(pred, target), target, atol=1e-5)
    if name == "coincident_target":  # optimal: everything collapses onto the target point
        np.testing.assert_allclose(P_ALIGN(pred, target), target, atol=1e-6)
    if name == "reflected":  # reflection=True aligns exactly; the fix keeps det = +1 otherwise
        exact = P_ALIGN(pred, target, reflection=True)
        np.testing.assert_allclose(exact, target, atol=1e-5)
        assert float(value) > 1e-3


def test_procrustes_grads_jit_vmap():
    pred, target = _pose_pair(13, shape=(2,))
    with jax.enable_x64(True):
        p64, t64 = jnp.asarray(pred), jnp.asarray(target)
        w64 = jnp.asarray(_rng(13).uniform(0.5, 1.5, size=J))

        @jax.jit  # one compilation instead of many eager primitives
        def transforms(p, q):
            return (
                g.procrustes_transform(p, q, weights=w64),
                g.procrustes_align(p, q),
                g.procrustes_align(p, q, scale=False),
            )

        check_grads(transforms, (p64, t64), order=1, modes=("rev",), eps=1e-5)
    p32, t32 = jnp.asarray(pred, jnp.float32), jnp.asarray(target, jnp.float32)
    eager = g.procrustes_align(p32, t32)
    np.testing.assert_allclose(P_ALIGN(p32, t32), eager, atol=1e-5)
    loop = np.stack([P_ALIGN(a, b) for a, b in zip(p32, t32)])
    np.testing.assert_allclose(jax.jit(jax.vmap(g.procrustes_align))(p32, t32), loop, atol=1e-5)
    # Broadcasting: one target for several predictions.
    np.testing.assert_allclose(
        P_ALIGN(p32, t32[0]),
        np.stack([P_ALIGN(a, t32[0]) for a in p32]),
        atol=1e-5,
    )


def test_procrustes_bad_shapes():
    with pytest.raises(ValueError, match=r"\[\.\.\., J, 3\]"):
        g.procrustes_align(np.zeros((4, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="same number of joints"):
        g.procrustes_transform(np.zeros((4, 3)), np.zeros((5, 3)))


# --------------------------------------------------------------------------------------------
# scale normalisations
# --------------------------------------------------------------------------------------------


def test_optimal_scale_matches_lstsq():
    pred, target = _pose_pair(14, shape=(3,))
    pred = pred * 0.5
    s = np.asarray(g.optimal_scale(pred, target))
    for i in range(3):
        ref = np.linalg.lstsq(pred[i].reshape(-1, 1), target[i].reshape(-1), rcond=None)[0][0]
        assert s[i] == pytest.approx(ref, rel=1e-5)
    # Hand-derived: target = 3 * pred -> s = 3; zero pred -> s = 1 with finite gradients.
    assert float(g.optimal_scale(pred[0], 3 * pred[0])) == pytest.approx(3.0, rel=1e-6)
    zero = jnp.zeros((J, 3))
    assert float(g.optimal_scale(zero, target[0])) == 1.0
    assert _finite(jax.grad(lambda p: g.optimal_scale(p, jnp.asarray(target[0])))(zero))
    with jax.enable_x64(True):
        check_grads(
            g.optimal_scale, (jnp.asarray(pred), jnp.asarray(target)), order=1, modes=("rev",)
        )


def test_normalize_head_root():
    pose = _rng(15).normal(size=(2, 5, 3))
    out = np.asarray(g.normalize_head_root(pose, head=4, root=0, target=0.1))
    np.testing.assert_allclose(out[:, 0], 0.0, atol=1e-7)
    np.testing.assert_allclose(np.linalg.norm(out[:, 4], axis=-1), 0.1, rtol=1e-5)
    centred = pose - pose[:, :1]
    ref = centred * (0.1 / np.linalg.norm(centred[:, 4], axis=-1))[:, None, None]
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-7)
    # Hand-derived 2D: root (1, 1), head (1, 3) -> distance 2 -> scaled by 1/2.
    pose2d = jnp.array([[1.0, 1.0], [3.0, 1.0], [1.0, 3.0]])
    np.testing.assert_allclose(
        g.normalize_head_root(pose2d, head=2), [[0, 0], [1, 0], [0, 1]], atol=1e-6
    )
    # Degenerate: head on root -> centred, unscaled, finite gradients.
    same = jnp.zeros((3, 3))
    assert _finite(jax.grad(lambda p: jnp.sum(g.normalize_head_root(p, head=2)))(same))
    with jax.enable_x64(True):
        check_grads(
            lambda p: g.normalize_head_root(p, head=4),
            (jnp.asarray(pose),),
            order=1,
            modes=("rev",),
        )
    with pytest.raises(ValueError, match="head"):
        g.normalize_head_root(pose, head=9)


def test_rescale_to_reference_length():
    pose = jnp.array([[1.0, 0.0, 0.0], [2.0, 0.0, 0.0], [1.0, 3.0, 0.0]])
    # Scale by 2 about the root (1, 0, 0): (2,0,0) -> (3,0,0), (1,3,0) -> (1,6,0).
    out = g.rescale_to_reference_length(pose, 4.0, 8.0)
    np.testing.assert_allclose(out, [[1, 0, 0], [3, 0, 0], [1, 6, 0]], atol=1e-6)
    np.testing.assert_allclose(g.rescale_to_reference_length(pose, 4.0, 8.0, root=None), 2 * pose)
    # Zero length -> unchanged, finite gradient.
    np.testing.assert_allclose(g.rescale_to_reference_length(pose, 0.0, 8.0), pose)
    gl = jax.grad(lambda n: jnp.sum(g.rescale_to_reference_length(pose, n, 8.0)))(0.0)
    assert _finite(gl)
    with jax.enable_x64(True):
        check_grads(
            lambda p, n: g.rescale_to_reference_length(p, n, 2.0),
            (jnp.asarray(np.asarray(pose), jnp.float64), jnp.asarray(3.0, jnp.float64)),
            order=1,
            modes=("rev",),
        )


def test_bad_trailing_dims_name_expected_shape():
    with pytest.raises(ValueError, match=r"\[\.\.\., 3\]"):
        g.axis_angle_to_matrix(np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"\[\.\.\., 3, 3\]"):
        g.matrix_to_axis_angle(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"\[\.\.\., 4\]"):
        g.quaternion_to_matrix(np.zeros(3))
    with pytest.raises(ValueError, match=r"\[\.\.\., J, 3\]"):
        g.optimal_scale(np.zeros((4, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"\[\.\.\., J, 3\]"):
        g.rotate_points(np.zeros((4, 2)), np.eye(3))
