"""Tests of jpose.multiview: eight-point / RANSAC relative pose, decomposition, pair transforms.

References are independent: ground-truth rigs built with scipy rotations, the fundamental matrix
``F = K_b^-T [t]_x R K_a^-1`` (Hartley & Zisserman eq. 9.2 / Result 9.9), numpy re-implementations
of the normalisation, and jpose.camera for the Human3.6M cameras.
"""

import functools
import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from jpose import camera as jcam
from jpose import multiview as mv

K_A = np.array([[1145.0, 0.0, 512.0], [0.0, 1144.0, 515.0], [0.0, 0.0, 1.0]])
K_B = np.array([[1149.0, 0.0, 508.0], [0.0, 1147.0, 501.0], [0.0, 0.0, 1.0]])


def _look_at(centre, target):
    """World->camera rotation of an OpenCV camera at ``centre`` looking at ``target`` (z up)."""
    fwd = (target - centre) / np.linalg.norm(target - centre)
    right = np.cross(fwd, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(fwd, right)
    return np.stack([right, down, fwd])


def _rig(seed=0, n=120):
    """Two cameras 4-6 m from a person-sized cloud; returns (pa, pb, R_ab, t_ab)."""
    rng = np.random.default_rng(seed)
    pts = rng.uniform([-0.8, -0.8, 0.0], [0.8, 0.8, 1.8], (n, 3))
    cams = []
    for az in rng.uniform(0, 2 * np.pi, 2):
        d = rng.uniform(4.0, 6.0)
        centre = np.array([d * np.cos(az), d * np.sin(az), rng.uniform(1.2, 2.0)])
        r = _look_at(centre, np.array([0.0, 0.0, 0.9]))
        cams.append((r, -r @ centre))
    (ra, ta), (rb, tb) = cams

    def proj(r, t, k):
        c = pts @ r.T + t
        assert (c[:, 2] > 0).all()
        return c[:, :2] / c[:, 2:] * k[[0, 1], [0, 1]] + k[:2, 2]

    r_ab = rb @ ra.T
    return proj(ra, ta, K_A), proj(rb, tb, K_B), r_ab, tb - r_ab @ ta


N = 120  # correspondences of every estimator call: one shape, one compilation
RIGS = 3


@functools.cache
def _estimator():
    return jax.jit(functools.partial(mv.estimate_relative_pose, num_hypotheses=64))


def _batch(seed0):
    rigs = [_rig(seed0 + i, n=N) for i in range(RIGS)]
    return tuple(np.stack([r[k] for r in rigs]) for k in range(4))


def _estimate(pa, pb, mask=None, *, seed=0, baseline=None):
    ka, kb = np.broadcast_to(K_A, (RIGS, 3, 3)), np.broadcast_to(K_B, (RIGS, 3, 3))
    mask = np.ones(pa.shape[:2]) if mask is None else mask
    base = np.ones(RIGS) if baseline is None else baseline
    return _estimator()(pa, pb, mask, intrinsics_a=ka, intrinsics_b=kb,
                        key=jax.random.key(seed), baseline=base)  # fmt: skip


def _skew(t):
    return np.array([[0, -t[2], t[1]], [t[2], 0, -t[0]], [-t[1], t[0], 0]])


def test_noise_free_recovery_float64():
    with jax.enable_x64(True):
        pa, pb, r_ab, t_ab = _batch(0)
        est = _estimate(pa, pb, baseline=np.linalg.norm(t_ab, axis=-1))
        assert est.rotation.dtype == jnp.float64
        np.testing.assert_allclose(est.rotation, r_ab, atol=1e-6)
        np.testing.assert_allclose(est.translation, t_ab, atol=1e-6)
        assert np.asarray(est.inliers).all()
        assert float(jnp.max(mv.rotation_angle_error(est.rotation, r_ab))) < 1e-6
        assert float(jnp.max(mv.direction_angle_error(est.translation, t_ab))) < 1e-6


def test_eight_point_matches_true_fundamental():
    with jax.enable_x64(True):
        pa, pb, r_ab, t_ab = _rig(1, n=30)
        f = np.array(jax.jit(mv.fundamental_eight_point)(pa, pb))
        f_true = np.linalg.inv(K_B).T @ _skew(t_ab) @ r_ab @ np.linalg.inv(K_A)
        f_true /= np.linalg.norm(f_true)
        f *= np.sign(np.sum(f * f_true))
        np.testing.assert_allclose(f, f_true, atol=1e-9)
        assert np.linalg.matrix_rank(f, tol=1e-9) == 2
        np.testing.assert_allclose(mv.sampson_distance(f, pa, pb), 0.0, atol=1e-12)


def test_hartley_normalization_numpy_reference():
    pts = np.random.default_rng(0).uniform(0, 1000, (50, 2))
    t = np.asarray(mv.hartley_normalization(jnp.asarray(pts, jnp.float32)))
    q = np.c_[pts, np.ones(50)] @ t.T
    np.testing.assert_allclose(q[:, :2].mean(0), 0.0, atol=1e-3)
    np.testing.assert_allclose(np.linalg.norm(q[:, :2], axis=1).mean(), np.sqrt(2), rtol=1e-5)


def test_decomposition_contains_truth_and_cheirality_picks_it():
    with jax.enable_x64(True):
        pa, pb, r_ab, t_ab = _rig(2, n=40)
        e = _skew(t_ab) @ r_ab  # E = [t]_x R (H&Z eq. 9.8)
        rots, trans = jax.jit(mv.decompose_essential)(e)
        np.testing.assert_allclose(np.linalg.det(np.asarray(rots)), 1.0, atol=1e-12)
        unit = t_ab / np.linalg.norm(t_ab)
        hits = [
            np.allclose(rots[i], r_ab, atol=1e-9) and np.allclose(trans[i], unit, atol=1e-9)
            for i in range(4)
        ]
        assert sum(hits) == 1
        na = (pa - K_A[:2, 2]) / K_A[[0, 1], [0, 1]]
        nb = (pb - K_B[:2, 2]) / K_B[[0, 1], [0, 1]]
        r, t, count = jax.jit(mv.select_by_cheirality)(rots, trans, na, nb)
        np.testing.assert_allclose(r, r_ab, atol=1e-9)
        np.testing.assert_allclose(t, unit, atol=1e-9)
        assert int(count) == len(pa)


def test_ransac_outliers_deterministic_and_padding_ignored():
    with jax.enable_x64(True):
        pa, pb, r_ab, t_ab = _batch(3)
        rng = np.random.default_rng(0)
        pb = pb.copy()
        expected = np.ones((RIGS, N), bool)
        for i in range(RIGS):  # 25 % outliers in view b
            out = rng.choice(N, N // 4, replace=False)
            pb[i, out] = rng.uniform(0, 1000, (len(out), 2))
            expected[i, out] = False
        est = _estimate(pa, pb, seed=7)
        inl = np.asarray(est.inliers)
        assert (inl >= expected).all()  # every true correspondence kept
        # a random outlier may fall within 3 px of its epipolar line by chance and then slightly
        # bias the refit; the pose is exact wherever the inlier set is exactly the true one
        exact = (inl == expected).all(1)
        assert exact.sum() >= 2
        r_err = np.asarray(mv.rotation_angle_error(est.rotation, r_ab))
        d_err = np.asarray(mv.direction_angle_error(est.translation, t_ab))
        assert (r_err[exact] < 1e-6).all() and (d_err[exact] < 1e-6).all()
        assert (r_err < 1e-2).all() and (d_err < 2e-2).all()
        again = _estimate(pa, pb, seed=7)
        np.testing.assert_array_equal(est.rotation, again.rotation)
        # padded (masked-out) correspondences change nothing
        mask = np.ones((RIGS, N))
        mask[:, -20:] = 0.0
        pa_pad, pb_pad = pa.copy(), pb.copy()
        pa_pad[:, -20:], pb_pad[:, -20:] = 0.0, 0.0
        padded = _estimate(pa_pad, pb_pad, mask, seed=7)
        assert (np.asarray(mv.rotation_angle_error(padded.rotation, r_ab)) < 1e-2).all()
        assert not np.asarray(padded.inliers)[:, -20:].any()


def test_accuracy_degrades_gracefully_with_noise_and_outliers():
    """Synthetic rigs: median errors small at 1 px, growing with the noise level."""
    with jax.enable_x64(True):
        pa, pb, r_true, t_true = _batch(10)
        rng = np.random.default_rng(0)
        med = {}
        for sigma in (1.0, 4.0):
            na = pa + rng.normal(0, sigma, pa.shape)
            nb = pb + rng.normal(0, sigma, pb.shape)
            nb[:, :12] = rng.uniform(0, 1000, (RIGS, 12, 2))  # 10 % outliers
            est = _estimate(na, nb)
            re = np.degrees(np.asarray(mv.rotation_angle_error(est.rotation, r_true)))
            de = np.degrees(np.asarray(mv.direction_angle_error(est.translation, t_true)))
            med[sigma] = (np.median(re), np.median(de))
        assert med[1.0][0] < 1.0 and med[1.0][1] < 3.0, med
        assert med[4.0][0] < 5.0 and med[4.0][1] < 15.0, med
        assert med[4.0][0] > med[1.0][0]


def test_h36m_transform_composed_with_inverse_is_identity():
    pairs = mv.view_pairs(4, ordered=True)
    pts = np.random.default_rng(0).normal(size=(17, 3)) + [0.0, 0.0, 5.0]
    for subject in jcam.H36M_SUBJECTS_WITH_CAMERAS:
        cams = jcam.h36m_cameras(subject)
        r, t = mv.pair_transforms(cams.rotation, cams.translation, pairs=pairs)
        for p, (a, b) in enumerate(pairs):
            r_ref, t_ref = jcam.relative_transform(
                jax.tree.map(lambda x, a=a: x[a], cams), jax.tree.map(lambda x, b=b: x[b], cams)
            )
            np.testing.assert_allclose(r[p], r_ref, atol=1e-6)
            np.testing.assert_allclose(t[p], t_ref, atol=1e-5)
            back = pairs.tolist().index([b, a])
            np.testing.assert_allclose(r[back] @ r[p], np.eye(3), atol=1e-5)
            x = jcam.transform_points(jcam.transform_points(pts, r[p], t[p]), r[back], t[back])
            np.testing.assert_allclose(x, pts, atol=1e-5)
        # re-expressing the rig in camera 0's frame keeps every relative transform
        r0, t0 = mv.reference_frame_extrinsics(cams.rotation, cams.translation)
        np.testing.assert_allclose(r0[0], np.eye(3), atol=1e-6)
        np.testing.assert_allclose(t0[0], 0.0, atol=1e-5)
        r2, t2 = mv.pair_transforms(r0, t0, pairs=pairs)
        np.testing.assert_allclose(r2, r, atol=1e-5)
        np.testing.assert_allclose(t2, t, atol=1e-4)


def test_project_views_matches_camera_module_and_pairs():
    rng = np.random.default_rng(0)
    world = rng.normal(size=(5, 17, 3)).astype(np.float32) * 0.3
    rot = Rotation.random(5 * 3, random_state=1).as_matrix().reshape(5, 3, 3, 3).astype(np.float32)
    trans = np.tile([0.0, 0.0, 6.0], (5, 3, 1)).astype(np.float32)
    f = np.full((5, 3, 2), 1000.0, np.float32)
    c = np.full((5, 3, 2), 500.0, np.float32)
    cam, uv = mv.project_views(world, rotation=rot, translation=trans, focal=f, center=c)
    assert cam.shape == (5, 3, 17, 3) and uv.shape == (5, 3, 17, 2)
    ref = jcam.project_pinhole(jcam.transform_points(world[:, None], rot, trans), focal=f, center=c)
    np.testing.assert_allclose(uv, ref, rtol=1e-5)
    assert mv.view_pairs(12).shape == (66, 2) and mv.view_pairs(4, ordered=True).shape == (12, 2)
    with pytest.raises(ValueError, match="num_views"):
        mv.view_pairs(1)
    with pytest.raises(ValueError, match=r"\[\.\.\., N, 2\]"):
        mv.fundamental_eight_point(np.zeros((10, 3)), np.zeros((10, 3)))


def test_module_follows_api_conventions():
    problems = []
    for name in mv.__all__:
        fn = getattr(mv, name)
        if not inspect.isfunction(fn):
            continue
        assert inspect.getdoc(fn), name
        sig = inspect.signature(fn)
        if sig.return_annotation is inspect.Signature.empty:
            problems.append(f"{name}: return")
        for p in sig.parameters.values():
            if p.annotation is inspect.Parameter.empty:
                problems.append(f"{name}.{p.name}: hint")
            positional = p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
            if positional and p.default is not p.empty and p.name not in ("mask", "weights"):
                problems.append(f"{name}.{p.name}: should be keyword-only")
    assert not problems, problems
    doc = mv.__doc__.lower()
    assert "[..." in doc and "pixel" in doc and "metre" in doc


def test_vmap_equals_loop_and_jit_equals_eager():
    with jax.enable_x64(True):
        rigs = [_rig(20 + i, n=30) for i in range(2)]
        pa = np.stack([r[0] for r in rigs])
        pb = np.stack([r[1] for r in rigs])
        batched = jax.jit(mv.fundamental_eight_point)(pa, pb)  # leading batch axis
        single = jax.jit(mv.fundamental_eight_point)
        for i in range(2):
            f = np.asarray(single(pa[i], pb[i]))
            np.testing.assert_allclose(batched[i] * np.sign(np.sum(batched[i] * f)), f, atol=1e-10)
        d_eager = mv.sampson_distance(batched, pa, pb)
        d_jit = jax.jit(mv.sampson_distance)(batched, pa, pb)
        np.testing.assert_allclose(d_eager, d_jit, atol=1e-12)
        r, t = mv.pair_transforms(
            np.stack([r[2] for r in rigs])[:, None].repeat(3, 1),
            np.stack([r[3] for r in rigs])[:, None].repeat(3, 1),
            pairs=mv.view_pairs(3),
        )
        assert r.shape == (2, 3, 3, 3) and t.shape == (2, 3, 3)
