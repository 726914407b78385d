"""Tests for jpose.losses: CameraPose, Zhou et al., Drover et al. (Li et al. and WSP are in
test_losses_li_wsp.py)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _helpers import GRAD_TOLERANCES, STANDING_H36M17
from _helpers import check_grads_jit as _check_grads
from _helpers import finite_value_and_grad as _finite_value_and_grad

from jpose import losses as L
from jpose.camera import project_unit_focal
from jpose.skeleton import H36M17

RNG = np.random.default_rng(0)


LAYOUT = H36M17
GRAD = GRAD_TOLERANCES

# A standing Human3.6M-17 pose in the camera frame (metres; x right, y down, z forward).
_POSE = STANDING_H36M17
POSE = jnp.asarray(_POSE)


def _bone_lengths(pose):
    p = np.asarray(pose, np.float64)
    return np.linalg.norm(p[..., LAYOUT.bones[:, 1], :] - p[..., LAYOUT.bones[:, 0], :], axis=-1)


# ------------------------------------------------------------------------------ CameraPose


def test_confidence_normalisation():
    np.testing.assert_allclose(
        L.camerapose_normalize_confidence(jnp.array([1.0, 2.0, 1.0])), [0.25, 0.5, 0.25]
    )
    c = jnp.asarray(RNG.uniform(size=(2, 17)), jnp.float32)
    np.testing.assert_allclose(
        L.camerapose_normalize_confidence(c), L.camerapose_normalize_confidence(c * 37.0), rtol=1e-5
    )
    v, (g,) = _finite_value_and_grad(L.camerapose_normalize_confidence, jnp.zeros(17))
    assert float(v) == 0.0


def test_refinement_loss_hand_value_and_scale_invariance():
    refined = jnp.array([[0.0, 0.0], [1.0, 1.0]])
    target = jnp.zeros((2, 2))
    # c' = [0.25, 0.75]; squared distances [0, 2]; 1/J * (0.75 * 2) = 0.75
    np.testing.assert_allclose(
        L.camerapose_refinement_loss(refined, target, jnp.array([1.0, 3.0])), 0.75
    )
    x = jnp.asarray(RNG.normal(size=(3, 17, 2)), jnp.float32)
    y = jnp.asarray(RNG.normal(size=(3, 17, 2)), jnp.float32)
    c = jnp.asarray(RNG.uniform(size=(3, 17)), jnp.float32)
    a = L.camerapose_refinement_loss(x, y, c)
    np.testing.assert_allclose(a, L.camerapose_refinement_loss(x, y, c * 255.0), rtol=1e-5)
    ref = np.mean(
        np.asarray(c)
        / np.asarray(c).sum(-1, keepdims=True)
        * np.sum((np.asarray(x) - np.asarray(y)) ** 2, -1),
        -1,
    )
    np.testing.assert_allclose(a, ref, rtol=1e-5)
    np.testing.assert_allclose(L.camerapose_refinement_loss(y, y, c), 0.0)
    _check_grads(lambda u, w: L.camerapose_refinement_loss(u, y, w), (x, c), **GRAD)
    _finite_value_and_grad(
        lambda u, w: L.camerapose_refinement_loss(u, y, w), x, jnp.zeros((3, 17))
    )


def test_intrinsics_and_camera_loss():
    m = L.camerapose_intrinsics(jnp.array([1000.0, 990.0, 500.0, 480.0]))
    np.testing.assert_allclose(m, [[1000, 0, 500], [0, 990, 480], [0, 0, 1]])
    m2 = L.camerapose_intrinsics(jnp.array([1001.0, 992.0, 497.0, 480.0]))
    # (1 + 4 + 9) + |(1, 2, 2)|^2 = 14 + 9
    got = L.camerapose_camera_loss(m2, m, jnp.array([1.0, 2.0, 7.0]), jnp.array([0.0, 0.0, 5.0]))
    np.testing.assert_allclose(got, 23.0)


def _project_np(points, focal, center, offset):
    p = np.asarray(points, np.float64) + np.asarray(offset)[..., None, :]
    return (
        np.asarray(focal)[..., None, :] * p[..., :2] / p[..., 2:] + np.asarray(center)[..., None, :]
    )


def test_camerapose_reprojection_reference_and_zero():
    focal = jnp.array([1100.0, 1090.0])
    center = jnp.array([510.0, 500.0])
    offset = jnp.array([0.1, -0.2, 5.0])
    kp = jnp.asarray(_project_np(POSE, focal, center, offset), jnp.float32)
    np.testing.assert_allclose(
        L.camerapose_project(POSE, focal=focal, center=center, offset=offset), kp, rtol=1e-5
    )
    loss = L.camerapose_reprojection_loss(POSE, kp, focal=focal, center=center, offset=offset)
    assert abs(float(loss)) < 1e-5
    noisy = kp + jnp.asarray(RNG.normal(size=(17, 2)), jnp.float32)
    loss = L.camerapose_reprojection_loss(POSE, noisy, focal=focal, center=center, offset=offset)
    np.testing.assert_allclose(loss, np.sum((np.asarray(noisy) - np.asarray(kp)) ** 2), rtol=1e-4)
    w = jnp.zeros(17).at[3].set(1.0)
    loss = L.camerapose_reprojection_loss(
        POSE, noisy, focal=focal, center=center, offset=offset, weights=w
    )
    np.testing.assert_allclose(
        loss, np.sum((np.asarray(noisy) - np.asarray(kp))[3] ** 2), rtol=1e-4
    )
    # paper-unit focal (normalised coordinates) for a well-scaled gradient check
    _check_grads(
        lambda p, f, t: L.camerapose_reprojection_loss(
            p, noisy / 1000.0, focal=f, center=center / 1000.0, offset=t
        ),
        (POSE, focal / 1000.0, offset),
        **GRAD,
    )
    # depth at the clamp: offset puts the root on the camera plane
    _finite_value_and_grad(
        lambda p, t: L.camerapose_reprojection_loss(p, kp, focal=focal, center=center, offset=t),
        POSE,
        jnp.array([0.0, 0.0, 0.0]),
    )


def test_pose_loss_and_totals():
    a = jnp.asarray(RNG.normal(size=(2, 17, 3)), jnp.float32)
    b = jnp.asarray(RNG.normal(size=(2, 17, 3)), jnp.float32)
    ref = np.mean(np.sum((np.asarray(a) - np.asarray(b)) ** 2, -1), -1)
    np.testing.assert_allclose(L.camerapose_pose_loss(a, b), ref, rtol=1e-5)
    _check_grads(lambda x: L.camerapose_pose_loss(x, b), (a,), **GRAD)
    # eq. 10 with the paper's weights: 0.01 * 2 + 0.5 * 3 + 1.0 * 4
    np.testing.assert_allclose(L.camerapose_loss_3d(2.0, 3.0, 4.0), 5.52, rtol=1e-6)
    np.testing.assert_allclose(L.camerapose_loss_3d(2.0, 3.0, 4.0, 10.0, lambda_ref=0.1), 6.52)
    np.testing.assert_allclose(L.camerapose_loss_2d(3.0), 0.6, rtol=1e-6)
    np.testing.assert_allclose(L.camerapose_loss_2d(3.0, 1.0, lambda_ref=0.5), 1.1, rtol=1e-6)


# -------------------------------------------------------------------------------- Zhou


def test_gaussian_heatmaps_reference():
    kp = jnp.array([[3.0, 2.0], [1.5, 4.25]])
    hm = L.render_gaussian_heatmaps(kp, height=6, width=5, sigma=1.5)
    assert hm.shape == (2, 6, 5)
    yy, xx = np.mgrid[0:6, 0:5]
    ref = np.exp(-((xx - 1.5) ** 2 + (yy - 4.25) ** 2) / (2 * 1.5**2))
    np.testing.assert_allclose(hm[1], ref, rtol=1e-6)
    assert float(hm[0, 2, 3]) == 1.0 and np.argmax(hm[0]) == 2 * 5 + 3


def test_zhou_heatmap_loss():
    kp = jnp.array([[3.0, 2.0], [1.5, 4.25]])
    target = L.render_gaussian_heatmaps(kp, height=6, width=5)
    np.testing.assert_allclose(L.zhou_heatmap_loss(target, kp), [0.0, 0.0], atol=1e-7)
    pred = jnp.asarray(RNG.uniform(size=(2, 6, 5)), jnp.float32)
    ref = np.sum((np.asarray(pred) - np.asarray(target)) ** 2, axis=(-2, -1))
    np.testing.assert_allclose(L.zhou_heatmap_loss(pred, kp), ref, rtol=1e-5)
    np.testing.assert_allclose(
        L.zhou_heatmap_loss(pred, kp, visibility=jnp.array([True, False])), [ref[0], 0.0], rtol=1e-5
    )
    _check_grads(lambda p, k: L.zhou_heatmap_loss(p, k), (pred, kp), **GRAD)


def test_zhou_geometric_loss_properties():
    canonical = jnp.asarray(_bone_lengths(_POSE), jnp.float32)
    scaled = POSE * 1.7 + jnp.array([0.3, -0.2, 4.0])
    np.testing.assert_allclose(
        L.zhou_geometric_loss(scaled, canonical, layout=LAYOUT), 0.0, atol=1e-10
    )
    # Stretch the left forearm to twice its length: arm ratios (s=1) [1, 2, 1, 1] ->
    # mean 1.25, variance (3 * 0.0625 + 0.5625) / 4 = 0.1875; other groups 0.
    lw = _POSE[12] + 2.0 * (_POSE[13] - _POSE[12])
    stretched = POSE.at[13].set(lw)
    got = L.zhou_geometric_loss(stretched, canonical, layout=LAYOUT)
    np.testing.assert_allclose(got, 0.1875, rtol=1e-5)
    # The stretched bone invisible (its wrist): the group has 3 equal ratios -> 0.
    vis = jnp.ones(17).at[13].set(0.0)
    np.testing.assert_allclose(
        L.zhou_geometric_loss(stretched, canonical, layout=LAYOUT, visibility=vis), 0.0, atol=1e-10
    )
    # numpy reference on a random pose with random visibility
    pose = POSE + jnp.asarray(RNG.normal(size=(17, 3)) * 0.05, jnp.float32)
    vis = jnp.asarray(RNG.uniform(size=17) > 0.2)
    r = _bone_lengths(pose) / _bone_lengths(_POSE)
    bvis = np.asarray(vis)[LAYOUT.bones[:, 0]] & np.asarray(vis)[LAYOUT.bones[:, 1]]
    ref = 0.0
    for g in ("zhou_arms", "zhou_legs", "zhou_shoulders", "zhou_hips"):
        idx = [k for k in LAYOUT.bone_set(g) if bvis[k]]
        if idx:
            ref += np.var(r[idx])
    got = L.zhou_geometric_loss(pose, canonical, layout=LAYOUT, visibility=vis)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-8)
    _check_grads(lambda p: L.zhou_geometric_loss(p, canonical, layout=LAYOUT), (pose,), **GRAD)
    # Degenerate: all joints coincident, all joints invisible.
    _finite_value_and_grad(
        lambda p: L.zhou_geometric_loss(p, canonical, layout=LAYOUT), jnp.zeros((17, 3))
    )
    _finite_value_and_grad(
        lambda p: L.zhou_geometric_loss(p, canonical, layout=LAYOUT, visibility=jnp.zeros(17)), pose
    )


def test_zhou_depth_loss_switch():
    canonical = jnp.asarray(_bone_lengths(_POSE), jnp.float32)
    kp = jnp.stack([POSE[:, :2], POSE[:, :2]])
    pred = jnp.stack([POSE[:, 2] + 0.1, POSE[:, 2].at[13].add(0.3)])
    target = jnp.stack([POSE[:, 2], jnp.full(17, jnp.nan)])  # 2D-only sample: no depth label
    has = jnp.array([True, False])
    got = L.zhou_depth_loss(pred, target, kp, has, canonical, layout=LAYOUT)
    np.testing.assert_allclose(got[0], 0.1 * 17 * 0.01, rtol=1e-4)
    pose2 = jnp.concatenate([kp[1], pred[1][:, None]], -1)
    geo = L.zhou_geometric_loss(pose2, canonical, layout=LAYOUT)
    assert float(geo) > 0
    np.testing.assert_allclose(got[1], 0.01 * geo, rtol=1e-5)
    _finite_value_and_grad(
        lambda p: L.zhou_depth_loss(p, target, kp, has, canonical, layout=LAYOUT), pred
    )


def test_zhou_depth_loss_passes_its_visibility_threshold_to_the_geometric_term():
    # A 2D-only sample whose perturbed joint (13) has confidence 0.3: visible at threshold 0.2,
    # invisible at the default 0.5. The threshold must reach eq. 3 (it used to stop at 0.5).
    canonical = jnp.asarray(_bone_lengths(_POSE), jnp.float32)
    kp, pred = POSE[None, :, :2], POSE[None, :, 2].at[0, 13].add(0.3)
    vis = jnp.ones((1, 17)).at[0, 13].set(0.3)
    has = jnp.array([False])
    for thr in (0.2, 0.5):
        got = L.zhou_depth_loss(pred, pred, kp, has, canonical, layout=LAYOUT, visibility=vis,
                                threshold=thr, lambda_geo=1.0)  # fmt: skip
        pose = jnp.concatenate([kp[0], pred[0][:, None]], -1)
        want = L.zhou_geometric_loss(pose, canonical, layout=LAYOUT, visibility=vis[0],
                                     threshold=thr)  # fmt: skip
        np.testing.assert_allclose(got[0], want, rtol=1e-6)
    low = L.zhou_depth_loss(pred, pred, kp, has, canonical, layout=LAYOUT, visibility=vis,
                            threshold=0.2)  # fmt: skip
    high = L.zhou_depth_loss(pred, pred, kp, has, canonical, layout=LAYOUT, visibility=vis)
    assert float(low[0]) != float(high[0])


def test_zhou_skeleton_rescale():
    canonical_sum = float(_bone_lengths(_POSE).sum())
    out = L.zhou_skeleton_rescale(
        POSE * 3.0 + 1.0,
        layout=LAYOUT,
        avg_sum_length=canonical_sum,
        root_position=jnp.array([0.0, 0.0, 5.0]),
    )
    np.testing.assert_allclose(out, POSE + jnp.array([0.0, 0.0, 5.0]), atol=1e-5)
    np.testing.assert_allclose(_bone_lengths(out).sum(), canonical_sum, rtol=1e-5)
    _finite_value_and_grad(
        lambda p: L.zhou_skeleton_rescale(p, layout=LAYOUT, avg_sum_length=4.0), jnp.ones((17, 3))
    )


# ------------------------------------------------------------------------------ Drover


def test_drover_depth_and_back_projection():
    o = jnp.array([-20.0, -10.0, 0.0, 2.5])
    np.testing.assert_allclose(L.drover_depth(o), [1.0, 1.0, 11.0, 13.5])
    g = jax.grad(lambda x: L.drover_depth(x).sum())(o)
    np.testing.assert_allclose(g, [0.0, 0.5, 1.0, 1.0])  # finite at the kink (o = -d)
    kp = jnp.asarray(RNG.normal(size=(17, 2)) * 0.05, jnp.float32)
    x3 = L.drover_back_project(kp, L.drover_depth(jnp.zeros(17) + 0.3))
    np.testing.assert_allclose(x3[:, 2], 11.3, rtol=1e-6)
    np.testing.assert_allclose(project_unit_focal(x3), kp, rtol=1e-5, atol=1e-7)


def test_drover_random_projection():
    kp = L.drover_normalize_2d(POSE[:, :2] * 500.0, root=0, head=10)
    depth = L.drover_depth(jnp.asarray(RNG.normal(size=17) * 0.1, jnp.float32))
    x3 = L.drover_back_project(kp, depth)
    # identity rotation reproduces the input
    np.testing.assert_allclose(L.drover_random_projection(x3, jnp.eye(3)), kp, atol=1e-6)
    # numpy reference: P = R (X - T) + T, p = P_xy / P_z
    rot = L.drover_random_rotation(jax.random.key(0))
    p = L.drover_random_projection(x3, rot)
    big_p = (np.asarray(x3) - [0, 0, 10]) @ np.asarray(rot).T + [0, 0, 10]
    np.testing.assert_allclose(p, big_p[:, :2] / big_p[:, 2:], rtol=1e-5, atol=1e-6)
    # the rotation centre T = [0, 0, d] is fixed
    np.testing.assert_allclose(
        L.drover_rotate(jnp.array([[0.0, 0.0, 10.0]]), rot), [[0, 0, 10]], atol=1e-5
    )
    # P_z >= 1: a point rotated to depth <= 1 is divided by 1, finite gradients
    near = jnp.array([[0.0, 0.5, 0.2]])
    np.testing.assert_allclose(L.drover_random_projection(near, jnp.eye(3)), [[0.0, 0.5]])
    _finite_value_and_grad(lambda x, r: L.drover_random_projection(x, r), near, jnp.eye(3))
    _check_grads(lambda x: L.drover_random_projection(x, rot), (x3,), **GRAD)


def test_drover_random_rotation_ranges():
    rots = np.asarray(L.drover_random_rotation(jax.random.key(1), (256,)))
    eye = np.broadcast_to(np.eye(3), rots.shape)
    np.testing.assert_allclose(rots @ np.swapaxes(rots, -1, -2), eye, atol=1e-5)
    np.testing.assert_allclose(np.linalg.det(rots), 1.0, atol=1e-5)
    # R = R_el(x) R_az(y): the camera's vertical axis tilts by the elevation only,
    # R[1, 1] = cos(elevation) in [cos 20 deg, 1].
    el = np.arccos(np.clip(rots[:, 1, 1], -1, 1))
    assert el.max() <= math.radians(20) + 1e-4 and el.max() > math.radians(15)
    flat = np.asarray(L.drover_random_rotation(jax.random.key(2), (8,), elevation_range=(0, 0)))
    np.testing.assert_allclose(flat[:, 1], np.broadcast_to([0, 1, 0], (8, 3)), atol=1e-6)


def test_drover_normalize_2d():
    kp = POSE[:, :2] * 700.0 + 300.0
    out = L.drover_normalize_2d(kp, root=0, head=10)
    np.testing.assert_allclose(out[0], [0, 0], atol=1e-7)
    np.testing.assert_allclose(np.linalg.norm(out[10]), 0.1, rtol=1e-5)
    out = L.drover_normalize_2d(kp, root=0, head=10, head_root_distance=100.0)
    np.testing.assert_allclose(out, (kp - kp[0]) / 1000.0, rtol=1e-5, atol=1e-7)
    _finite_value_and_grad(lambda k: L.drover_normalize_2d(k, root=0, head=10), jnp.ones((17, 2)))


# ------------------------------------------------------------------------------ jit / vmap


def test_jit_and_vmap_match_eager():
    canonical = jnp.asarray(_bone_lengths(_POSE), jnp.float32)
    n = 3

    def combined(pose, kp, conf, raw, rot):
        focal, center, offset = raw[:2] * 0 + 1000.0, raw[2:4] * 0 + 500.0, raw[4:] + 5.0
        return jnp.stack(
            [
                L.camerapose_refinement_loss(kp, kp * 1.1, conf),
                L.camerapose_reprojection_loss(pose, kp, focal=focal, center=center, offset=offset),
                L.camerapose_pose_loss(pose, pose * 0.9),
                L.zhou_geometric_loss(pose, canonical, layout=LAYOUT, visibility=conf > 0.3),
                L.zhou_heatmap_loss(
                    L.render_gaussian_heatmaps(kp[:2] / 100.0, height=8, width=8), kp[:2] / 90.0
                ).sum(),
                L.drover_random_projection(pose, rot).sum(),
                L.drover_normalize_2d(kp, root=0, head=10).sum(),
            ]
        )

    args = (
        POSE + jnp.asarray(RNG.normal(size=(n, 17, 3)) * 0.05, jnp.float32),
        jnp.asarray(RNG.uniform(size=(n, 17, 2)) * 800, jnp.float32),
        jnp.asarray(RNG.uniform(size=(n, 17)), jnp.float32),
        jnp.asarray(RNG.normal(size=(n, 7)) * 0.1, jnp.float32),
        L.drover_random_rotation(jax.random.key(3), (n,)),
    )
    single = jax.jit(combined)
    looped = np.stack([single(*(a[i] for a in args)) for i in range(n)])
    np.testing.assert_allclose(jax.jit(jax.vmap(combined))(*args), looped, rtol=2e-5, atol=1e-5)
    eager = combined(*(a[0] for a in args))
    np.testing.assert_allclose(eager, looped[0], rtol=2e-5, atol=1e-5)  # jit == eager
    # leading batch axes directly (the functions broadcast without vmap)
    batched = jnp.stack(
        [
            L.camerapose_pose_loss(args[0], args[0] * 0.9),
            L.zhou_geometric_loss(args[0], canonical, layout=LAYOUT, visibility=args[2] > 0.3),
        ],
        -1,
    )
    np.testing.assert_allclose(batched, looped[:, [2, 3]], rtol=2e-5)


def test_shape_errors():
    with pytest.raises(ValueError, match="J"):
        L.camerapose_refinement_loss(jnp.zeros((17, 2)), jnp.zeros((17, 2)), jnp.zeros(16))
    with pytest.raises(ValueError, match="canonical_lengths"):
        L.zhou_geometric_loss(POSE, jnp.ones(15), layout=LAYOUT)
    with pytest.raises(ValueError, match="pose"):
        L.zhou_geometric_loss(jnp.zeros((16, 3)), jnp.ones(16), layout=LAYOUT)
    with pytest.raises(ValueError, match="4"):
        L.camerapose_intrinsics(jnp.zeros(3))
