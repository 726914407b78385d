"""Tests for jpose.augment: PoseAug generator operations and range losses."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _helpers import STANDING_H36M17
from jax.test_util import check_grads
from scipy.spatial.transform import Rotation

from jpose import augment as aug
from jpose.camera import h36m_intrinsics, normalize_screen, project
from jpose.skeleton import H36M16, H36M17

RNG = np.random.default_rng(0)


def _check_grads(fn, args, **kwargs):
    """jax.test_util.check_grads on the jitted function (one compilation instead of op-by-op)."""
    check_grads(jax.jit(fn), args, **kwargs)


LAYOUT = H36M17

# A standing Human3.6M-17 pose in the camera frame (metres; x right, y down, z forward).
_POSE = STANDING_H36M17 + np.array([0.1, -0.1, 4.5], np.float32)
POSE = jnp.asarray(_POSE)


def _lengths(pose, layout=LAYOUT):
    p = np.asarray(pose, np.float64)
    return np.linalg.norm(p[..., layout.bones[:, 1], :] - p[..., layout.bones[:, 0], :], axis=-1)


def _dirs(pose, layout=LAYOUT):
    p = np.asarray(pose, np.float64)
    b = p[..., layout.bones[:, 1], :] - p[..., layout.bones[:, 0], :]
    return b / np.linalg.norm(b, axis=-1, keepdims=True)


# ------------------------------------------------------------------------------ bone angle


def test_bone_angle_zero_offsets_is_identity():
    out, diff = aug.bone_angle_change(POSE, jnp.zeros((16, 3)), layout=LAYOUT)
    np.testing.assert_allclose(out, POSE, atol=1e-5)
    np.testing.assert_allclose(diff, 0.0, atol=1e-6)


def test_bone_angle_keeps_lengths_root_and_torso_bones():
    offsets = jnp.asarray(RNG.normal(size=(16, 3)) * 0.5, jnp.float32)
    out, diff = aug.bone_angle_change(POSE, offsets, layout=LAYOUT)
    np.testing.assert_allclose(_lengths(out), _lengths(POSE), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out[0], POSE[0], atol=1e-6)
    kept = [LAYOUT.bone_index("Spine"), LAYOUT.bone_index("Thorax")]
    np.testing.assert_allclose(_dirs(out)[kept], _dirs(POSE)[kept], atol=1e-5)
    np.testing.assert_allclose(np.asarray(diff)[kept], 0.0, atol=1e-6)
    # numpy reference for every other bone: u' = (u + d) / |u + d|, diff = 1 - u'.u
    u = _dirs(POSE)
    u_new = (u + np.asarray(offsets)) / np.linalg.norm(u + np.asarray(offsets), axis=-1)[:, None]
    moved = [k for k in range(16) if k not in kept]
    np.testing.assert_allclose(_dirs(out)[moved], u_new[moved], atol=1e-5)
    np.testing.assert_allclose(np.asarray(diff)[moved], 1 - np.sum(u_new * u, -1)[moved], atol=1e-5)


def test_bone_angle_kept_bones_by_name_on_h36m16():
    pose16 = jnp.asarray(np.delete(_POSE, 9, axis=0))  # drop Neck/Nose
    offsets = jnp.ones((15, 3))
    out, diff = aug.bone_angle_change(pose16, offsets, layout=H36M16)
    kept = [H36M16.bone_index("Spine"), H36M16.bone_index("Thorax")]
    assert kept == [6, 7]  # PoseAug's bones 6 and 7
    np.testing.assert_allclose(_dirs(out, H36M16)[kept], _dirs(pose16, H36M16)[kept], atol=1e-5)


def test_bone_angle_degenerate_and_grads():
    coincident = POSE.at[13].set(POSE[12])  # zero-length left forearm
    offsets = jnp.asarray(RNG.normal(size=(16, 3)) * 0.3, jnp.float32)

    def f(p, o):
        out, diff = aug.bone_angle_change(p, o, layout=LAYOUT)
        return jnp.sum(out**2) + jnp.sum(diff)

    vg = jax.jit(jax.value_and_grad(f, argnums=(0, 1)))
    for p, o in ((coincident, offsets), (POSE, -jnp.asarray(_dirs(POSE), jnp.float32))):
        v, g = vg(p, o)
        assert np.isfinite(v) and all(np.all(np.isfinite(x)) for x in g)
    _check_grads(
        lambda o: aug.bone_angle_change(POSE, o, layout=LAYOUT)[0],
        (offsets,),
        order=1,
        modes=("rev",),
        atol=1e-2,
        rtol=1e-2,
        eps=1e-3,
    )


# ----------------------------------------------------------------------------- bone length


def test_bone_length_zero_ratios_is_identity():
    out, rho = aug.bone_length_change(POSE, jnp.zeros(LAYOUT.num_bone_classes), layout=LAYOUT)
    np.testing.assert_allclose(out, POSE, atol=1e-5)
    np.testing.assert_allclose(rho, 0.0)


def test_bone_length_symmetric_limited_ratios():
    raw = jnp.asarray(RNG.normal(size=LAYOUT.num_bone_classes) * 2, jnp.float32)
    out, rho = aug.bone_length_change(POSE, raw, layout=LAYOUT)
    expected = 0.2 * np.tanh(np.asarray(raw, np.float64))
    fixed_class = LAYOUT.bone_classes[LAYOUT.bone_index("Thorax")]
    expected[fixed_class] = 0.0
    np.testing.assert_allclose(rho, expected, atol=1e-6)
    ratio = _lengths(out) / _lengths(POSE)
    np.testing.assert_allclose(ratio, 1 + expected[LAYOUT.bone_classes], atol=1e-5)
    for left, right in LAYOUT.symmetric_bone_pairs:
        assert abs(ratio[left] - ratio[right]) < 1e-5
    np.testing.assert_allclose(_dirs(out), _dirs(POSE), atol=1e-5)
    np.testing.assert_allclose(out[0], POSE[0], atol=1e-6)
    # +-20 % even for huge raw values; finite gradients there
    out, rho = aug.bone_length_change(POSE, jnp.full(LAYOUT.num_bone_classes, 1e4), layout=LAYOUT)
    assert np.max(_lengths(out) / _lengths(POSE)) <= 1.2 + 1e-5
    g = jax.jit(jax.grad(lambda r: aug.bone_length_change(POSE, r, layout=LAYOUT)[0].sum()))(
        jnp.full(LAYOUT.num_bone_classes, 1e4)
    )
    assert np.all(np.isfinite(g))


def test_bone_length_grads_and_shape_error():
    raw = jnp.asarray(RNG.normal(size=LAYOUT.num_bone_classes), jnp.float32)
    _check_grads(
        lambda r: aug.bone_length_change(POSE, r, layout=LAYOUT)[0],
        (raw,),
        order=1,
        modes=("rev",),
        atol=1e-2,
        rtol=1e-2,
        eps=1e-3,
    )
    with pytest.raises(ValueError, match="bone classes"):
        aug.bone_length_change(POSE, jnp.zeros(16), layout=LAYOUT)


# ------------------------------------------------------------------- rotation/translation


def test_rotate_translate_identity_and_reference():
    root = _POSE[0]
    t_identity = jnp.asarray([root[0], root[1], np.sqrt(root[2])])
    out = aug.rotate_translate(POSE, jnp.zeros(3), t_identity)
    np.testing.assert_allclose(out, POSE, atol=1e-5)

    omega = np.array([0.3, -1.2, 0.5])
    t = np.array([0.2, -0.1, 2.0])
    out = aug.rotate_translate(POSE, jnp.asarray(omega), jnp.asarray(t))
    rot = Rotation.from_rotvec(omega).as_matrix()
    ref = (_POSE - _POSE[0]) @ rot.T + np.array([0.2, -0.1, 4.0])  # t_z -> t_z^2
    np.testing.assert_allclose(out, ref, atol=1e-5)
    np.testing.assert_allclose(_lengths(out), _lengths(POSE), atol=1e-5)
    # PoseAug parameterisation: omega = pi * tanh(raw)
    raw = np.array([0.1, 0.2, -0.3])
    out = aug.rotate_translate(POSE, jnp.asarray(raw), jnp.asarray(t), max_angle=np.pi)
    rot = Rotation.from_rotvec(np.pi * np.tanh(raw)).as_matrix()
    np.testing.assert_allclose(out, (_POSE - _POSE[0]) @ rot.T + [0.2, -0.1, 4.0], atol=1e-5)
    # non-negative depth even for a negative raw depth
    assert float(aug.rotate_translate(POSE, jnp.zeros(3), jnp.asarray([0, 0, -3.0]))[0, 2]) == 9.0


def test_rotate_translate_grads_at_zero_angle():
    t = jnp.asarray([0.1, 0.2, 2.0])
    g = jax.jit(jax.grad(lambda w: aug.rotate_translate(POSE, w, t).sum()))(jnp.zeros(3))
    assert np.all(np.isfinite(g))
    _check_grads(
        lambda w, tt: aug.rotate_translate(POSE, w, tt),
        (jnp.asarray([0.3, -0.2, 0.1]), t),
        order=1,
        modes=("rev",),
        atol=1e-2,
        rtol=1e-2,
        eps=1e-3,
    )


# ------------------------------------------------------------------------------ reproject


def test_reproject_matches_camera_and_validity():
    cam = h36m_intrinsics(0)
    uv_px, valid = aug.reproject(POSE, cam, distortion="h36m", normalize=False)
    np.testing.assert_allclose(uv_px, project(POSE, cam, distortion="h36m"), rtol=1e-6)
    assert bool(valid)
    uv, _ = aug.reproject(POSE, cam, distortion="h36m")
    w, h = np.asarray(cam.image_size)
    np.testing.assert_allclose(uv, normalize_screen(uv_px, width=w, height=h), rtol=1e-5)
    behind = POSE.at[:, 2].add(-4.6)  # every joint behind the camera (depth at the clamp)
    far_side = POSE.at[:, 0].add(10.0)  # outside the image
    batch = jnp.stack([POSE, behind, far_side])
    uv, valid = aug.reproject(batch, cam)
    np.testing.assert_array_equal(valid, [True, False, False])
    assert np.all(np.isfinite(uv))
    g = jax.jit(jax.grad(lambda p: aug.reproject(p, cam, distortion="h36m")[0].sum()))(behind)
    assert np.all(np.isfinite(g))


# --------------------------------------------------------------------------- range losses


def test_range_losses_hand_values():
    # mean diff 0.5 -> (0.5 - 0.205)^2 = 0.087025 > 0.165^2 = 0.027225 -> counted
    np.testing.assert_allclose(
        aug.bone_angle_range_loss(jnp.full((2, 16), 0.5)), [0.087025] * 2, rtol=1e-6
    )
    # mean diff 0.3 -> 0.009025 < 0.027225 -> free
    np.testing.assert_allclose(aug.bone_angle_range_loss(jnp.full(16, 0.3)), 0.0)
    # ratios [0.05, 0.2, -0.15, 0] with limit 0.1: mean(0, 0.04, 0.0225, 0) = 0.015625
    np.testing.assert_allclose(
        aug.bone_length_range_loss(jnp.array([0.05, 0.2, -0.15, 0.0])), 0.015625, rtol=1e-6
    )
    g = jax.grad(lambda r: aug.bone_length_range_loss(r))(jnp.array([0.05, 0.2, -0.15, 0.0]))
    np.testing.assert_allclose(g, [0.0, 0.1, -0.075, 0.0], rtol=1e-6)


# ------------------------------------------------------------------------------ jit / vmap


def test_generator_chain_jit_and_vmap():
    def chain(pose, offsets, raw, omega, t):
        p_ba, diff = aug.bone_angle_change(pose, offsets, layout=LAYOUT)
        p_bl, rho = aug.bone_length_change(p_ba, raw, layout=LAYOUT)
        p_rt = aug.rotate_translate(p_bl, omega, t, max_angle=np.pi)
        loss = aug.bone_angle_range_loss(diff) + aug.bone_length_range_loss(rho)
        return p_rt, loss

    n = 3
    args = (
        jnp.stack([POSE] * n) + jnp.asarray(RNG.normal(size=(n, 17, 3)) * 0.01, jnp.float32),
        jnp.asarray(RNG.normal(size=(n, 16, 3)) * 0.3, jnp.float32),
        jnp.asarray(RNG.normal(size=(n, LAYOUT.num_bone_classes)), jnp.float32),
        jnp.asarray(RNG.normal(size=(n, 3)), jnp.float32),
        jnp.asarray(RNG.normal(size=(n, 3)) + [0, 0, 2], jnp.float32),
    )
    batched = chain(*args)  # eager, leading batch axis
    jitted = jax.jit(chain)(*args)
    vmapped = jax.jit(jax.vmap(chain))(*args)
    single_fn = jax.jit(chain)
    for i in range(n):
        single = single_fn(*(a[i] for a in args))
        for b, s in zip(vmapped, single):
            np.testing.assert_allclose(b[i], s, rtol=1e-5, atol=1e-5)
    for a, b in zip(batched, jitted):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    assert batched[0].shape == (n, 17, 3) and batched[1].shape == (n,)
