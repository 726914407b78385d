"""Tests for the closed-form 3x3 rotation fit (jpose.geometry.horn_rotation) and the fused
Procrustes residuals (jpose.geometry.procrustes_residuals), against float64 numpy references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from jpose import geometry as g

J = 8  # joints in the residual tests (the fused path unrolls over J; any J <= 64 is the same code)
N = 8  # poses per test batch (one compilation of the fused path per variant)

HORN = jax.jit(g.horn_rotation)
RESID = jax.jit(g.procrustes_residuals, static_argnames=("scale",))


def _finite(tree):
    return all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(tree))


def np_kabsch(cov):
    """Independent reference: R = U diag(1, 1, det(U V^T)) V^T from a float64 SVD, batched."""
    u, _, vt = np.linalg.svd(np.asarray(cov, np.float64))
    d = np.sign(np.linalg.det(u @ vt))
    vt = vt.copy()
    vt[..., 2, :] *= d[..., None]
    return u @ vt


def np_p_mpjpe_joints(pred, target, weights=None, scale=True):
    """VideoPose3D-style Umeyama alignment in float64; per-joint distances [..., J]."""
    pred, target = np.asarray(pred, np.float64), np.asarray(target, np.float64)
    w = np.ones(pred.shape[:-1]) if weights is None else np.broadcast_to(weights, pred.shape[:-1])
    wn = w / w.sum(-1, keepdims=True)
    mx = np.einsum("...j,...jc->...c", wn, pred)
    my = np.einsum("...j,...jc->...c", wn, target)
    x, y = pred - mx[..., None, :], target - my[..., None, :]
    cov = np.einsum("...j,...ja,...jb->...ab", wn, y, x)
    r = np_kabsch(cov)
    if scale:
        s = np.sum(r * cov, axis=(-2, -1)) / np.einsum("...j,...jc->...", wn, x * x)
    else:
        s = np.ones(pred.shape[:-2])
    aligned = s[..., None, None] * np.einsum("...ab,...jb->...ja", r, x) + my[..., None, :]
    return np.linalg.norm(aligned - target, axis=-1)


def _well_conditioned_covs(rng, n):
    """Random U diag(s) V^T with s in [0.5, 2] (half of them with det < 0: reflection fix)."""
    u = np.linalg.qr(rng.normal(size=(n, 3, 3)))[0]
    v = np.linalg.qr(rng.normal(size=(n, 3, 3)))[0]
    s = np.sort(rng.uniform(0.5, 2.0, size=(n, 3)), axis=-1)[:, ::-1]
    return np.einsum("nab,nb,ncb->nac", u, s, v)


def _pose_pairs(seed, n=8):
    rng = np.random.default_rng(seed)
    target = rng.normal(scale=0.3, size=(n, J, 3))
    q = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    q *= np.sign(np.linalg.det(q))
    pred = 1.2 * target @ q.T + rng.normal(scale=0.05, size=target.shape) + [0.1, -0.2, 4.0]
    return pred.astype(np.float32), target.astype(np.float32)


def test_horn_rotation_matches_svd_reference():
    rng = np.random.default_rng(0)
    cov = _well_conditioned_covs(rng, 256)
    rot = np.asarray(HORN(jnp.asarray(cov, jnp.float32)))
    np.testing.assert_allclose(rot, np_kabsch(cov), atol=2e-5)
    np.testing.assert_allclose(np.linalg.det(rot), 1.0, atol=1e-5)
    np.testing.assert_allclose(
        rot @ np.swapaxes(rot, -1, -2), np.broadcast_to(np.eye(3), rot.shape), atol=1e-5
    )


def test_horn_rotation_arbitrary_matrices_are_optimal():
    # Random Gaussian matrices include nearly degenerate ones (fallback solver); the value
    # tr(R^T M) must reach the optimum sum(s) with the reflection fix.
    rng = np.random.default_rng(1)
    cov = rng.normal(size=(4096, 3, 3))
    rot = np.asarray(HORN(jnp.asarray(cov, jnp.float32)), np.float64)
    best = np.sum(np_kabsch(cov) * cov, axis=(-2, -1))
    np.testing.assert_allclose(np.sum(rot * cov, axis=(-2, -1)), best, atol=1e-4)
    np.testing.assert_allclose(np.linalg.det(rot), 1.0, atol=1e-4)


def test_horn_rotation_degenerate_inputs_finite():
    line = np.outer([1.0, 2.0, 3.0], [0.5, -1.0, 2.0])  # rank 1
    planar = np.diag([2.0, 1.0, 0.0])  # rank 2: unique rotation (identity)
    refl_tie = np.diag([2.0, 1.0, -1.0])  # reflection fix with s2 = |s3|: not unique
    cov = np.stack([np.zeros((3, 3)), line, planar, refl_tie, np.eye(3)])
    rot = np.asarray(HORN(jnp.asarray(cov, jnp.float32)))
    assert np.all(np.isfinite(rot))
    np.testing.assert_allclose(np.linalg.det(rot), 1.0, atol=1e-5)
    np.testing.assert_allclose(rot[0], np.eye(3), atol=1e-6)  # M = 0: identity
    np.testing.assert_allclose(rot[2], np.eye(3), atol=1e-5)
    np.testing.assert_allclose(rot[4], np.eye(3), atol=1e-6)
    best = np.sum(np_kabsch(cov) * cov, axis=(-2, -1))
    np.testing.assert_allclose(np.sum(rot * cov, axis=(-2, -1)), best, atol=1e-5)


def test_horn_rotation_grads_finite_and_match_svd_path():
    rng = np.random.default_rng(2)
    cov = jnp.asarray(_well_conditioned_covs(rng, 4), jnp.float32)
    check_grads(
        jax.jit(g.horn_rotation), (cov,), order=1, modes=("rev",), atol=1e-2, rtol=1e-2, eps=1e-3
    )
    degenerate = jnp.zeros((2, 3, 3)).at[1].set(jnp.outer(jnp.arange(3.0), jnp.ones(3)))
    grads = jax.grad(lambda m: jnp.sum(g.horn_rotation(m) * m))(degenerate)
    assert _finite(grads)


def test_horn_rotation_float64_and_shapes():
    rng = np.random.default_rng(3)
    cov = _well_conditioned_covs(rng, 6).reshape(2, 3, 3, 3)
    with jax.enable_x64(True):
        rot = g.horn_rotation(jnp.asarray(cov))
        assert rot.dtype == jnp.float64
        np.testing.assert_allclose(rot, np_kabsch(cov), atol=1e-10)
    assert HORN(jnp.asarray(cov, jnp.float32)).shape == (2, 3, 3, 3)
    with pytest.raises(ValueError):
        g.horn_rotation(jnp.zeros((4, 3, 2)))


def test_procrustes_residuals_matches_numpy_p_mpjpe():
    pred, target = _pose_pairs(4)
    got = np.asarray(RESID(pred, target))
    assert got.shape == (N, J)
    np.testing.assert_allclose(got, np_p_mpjpe_joints(pred, target), atol=2e-6)
    rigid = np.asarray(RESID(pred, target, scale=False))
    np.testing.assert_allclose(rigid, np_p_mpjpe_joints(pred, target, scale=False), atol=2e-6)


def test_procrustes_residuals_weights_and_broadcast():
    pred, target = _pose_pairs(5)
    w = np.random.default_rng(6).uniform(0.2, 1.0, size=(N, J)).astype(np.float32)
    got = np.asarray(RESID(pred, target, weights=w))
    np.testing.assert_allclose(got, np_p_mpjpe_joints(pred, target, weights=w), atol=2e-6)
    # batch axes broadcast (one target for all predictions) and keep their shape
    out = RESID(pred.reshape(2, N // 2, J, 3), target[0])
    assert out.shape == (2, N // 2, J)
    ref = np_p_mpjpe_joints(pred, np.broadcast_to(target[0], pred.shape))
    np.testing.assert_allclose(out.reshape(N, J), ref, atol=2e-6)


def test_procrustes_residuals_invariances():
    pred, target = _pose_pairs(7)
    q = np.linalg.qr(np.random.default_rng(8).normal(size=(3, 3)))[0]
    q *= np.sign(np.linalg.det(q))
    moved = (3.0 * pred @ q.T + [1.0, 2.0, 3.0]).astype(np.float32)
    np.testing.assert_allclose(RESID(moved, target), RESID(pred, target), atol=2e-6)
    np.testing.assert_allclose(RESID(target, target), 0.0, atol=1e-5)


# One compiled loss and one compiled value-and-gradient for all gradient tests.
LOSS = jax.jit(lambda p, t: jnp.sum(g.procrustes_residuals(p, t)))
LOSS_GRAD = jax.jit(jax.value_and_grad(lambda p, t: jnp.sum(g.procrustes_residuals(p, t)), (0, 1)))


def test_procrustes_residuals_gradient_matches_finite_differences():
    pred, target = _pose_pairs(10)
    value, (gp, gt) = LOSS_GRAD(pred, target)
    # the gradient path (SVD-based JVP) gives the same value as the fast primal
    np.testing.assert_allclose(float(value), float(LOSS(pred, target)), rtol=1e-5)
    rng = np.random.default_rng(12)
    eps = 1e-3
    for _ in range(2):
        dp = rng.normal(size=pred.shape).astype(np.float32)
        dt = rng.normal(size=target.shape).astype(np.float32)
        fd = LOSS(pred + eps * dp, target + eps * dt) - LOSS(pred - eps * dp, target - eps * dt)
        fd = float(fd) / (2 * eps)
        an = float(jnp.sum(gp * dp) + jnp.sum(gt * dt))
        np.testing.assert_allclose(an, fd, rtol=2e-2, atol=2e-2)


def test_procrustes_residuals_degenerate_finite_values_and_grads():
    rng = np.random.default_rng(9)
    target = rng.normal(scale=0.3, size=(J, 3)).astype(np.float32)
    line = (np.linspace(-1, 1, J)[:, None] * np.array([1.0, 2.0, 0.5])).astype(np.float32)
    cases = [
        (np.zeros((J, 3), np.float32), target),  # coincident prediction
        (target, np.zeros((J, 3), np.float32)),  # coincident target
        (line, target),  # rank 1
        (target * np.array([1, 1, -1], np.float32), target),  # reflected
    ] * (N // 4)
    pred = jnp.asarray(np.stack([c[0] for c in cases]))
    tgt = jnp.asarray(np.stack([c[1] for c in cases]))
    value, grads = LOSS_GRAD(pred, tgt)
    assert _finite(value) and _finite(grads)
    np.testing.assert_allclose(RESID(pred, tgt)[1], 0.0, atol=1e-6)


def test_procrustes_residuals_many_joints_and_bad_shapes():
    # more joints than the unrolled path handles: same numbers through procrustes_align
    rng = np.random.default_rng(11)
    big_t = rng.normal(size=(2, 70, 3)).astype(np.float32)
    big_p = big_t + rng.normal(scale=0.1, size=big_t.shape).astype(np.float32)
    np.testing.assert_allclose(RESID(big_p, big_t), np_p_mpjpe_joints(big_p, big_t), atol=2e-6)
    with pytest.raises(ValueError):
        g.procrustes_residuals(np.zeros((4, 3)), np.zeros((5, 3)))
    with pytest.raises(ValueError):
        g.procrustes_residuals(np.zeros((4, 3)), np.zeros((4, 3)), weights=np.ones(5))
