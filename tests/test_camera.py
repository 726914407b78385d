"""Tests for jpose.camera against numpy re-implementations, scipy and hand-derived numbers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from scipy.spatial.transform import Rotation

from jpose import camera as cam
from jpose import geometry

J = 5


def _rng(seed):
    return np.random.default_rng(seed)


def _finite(tree):
    return all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(tree))


def _random_camera(seed, batch=(), dtype=jnp.float32):
    rng = _rng(seed)
    rot = Rotation.random(int(np.prod(batch)) or 1, random_state=rng).as_matrix()
    return cam.Camera.create(
        rotation=rot.reshape(*batch, 3, 3),
        translation=rng.normal(size=(*batch, 3)) + np.array([0.0, 0.0, 5.0]),
        focal=rng.uniform(900, 1200, size=(*batch, 2)),
        center=rng.uniform(480, 520, size=(*batch, 2)),
        radial=rng.normal(scale=0.1, size=(*batch, 3)),
        tangential=rng.normal(scale=0.002, size=(*batch, 2)),
        image_size=np.broadcast_to([1000.0, 1000.0], (*batch, 2)),
        dtype=dtype,
    )


def _points_cam(seed, shape=(J,)):
    """Camera-frame points in front of the camera (z in [3, 6] m), within ~+-30 deg."""
    rng = _rng(seed)
    z = rng.uniform(3.0, 6.0, size=shape)
    xy = rng.uniform(-0.5, 0.5, size=(*shape, 2)) * z[..., None]
    return np.concatenate([xy, z[..., None]], axis=-1)


# --------------------------------------------------------------------------------------------
# numpy references
# --------------------------------------------------------------------------------------------


def np_opencv(points, f, c, k, p):
    """OpenCV projectPoints model (Brown-Conrady), written out in numpy."""
    x = points[..., 0] / points[..., 2]
    y = points[..., 1] / points[..., 2]
    r2 = x**2 + y**2
    radial = 1 + k[0] * r2 + k[1] * r2**2 + k[2] * r2**3
    xd = x * radial + 2 * p[0] * x * y + p[1] * (r2 + 2 * x**2)
    yd = y * radial + p[0] * (r2 + 2 * y**2) + 2 * p[1] * x * y
    return np.stack([f[0] * xd + c[0], f[1] * yd + c[1]], -1)


def np_h36m(points, f, c, k, p):
    """VideoPose3D common/camera.py project_to_2d, in numpy."""
    xx = np.clip(points[..., :2] / points[..., 2:], -1, 1)
    r2 = np.sum(xx**2, axis=-1, keepdims=True)
    radial = 1 + k[0] * r2 + k[1] * r2**2 + k[2] * r2**3
    tan = np.sum(p * xx, axis=-1, keepdims=True)
    xxx = xx * (radial + tan) + p * r2
    return f * xxx + c


# --------------------------------------------------------------------------------------------
# Camera pytree
# --------------------------------------------------------------------------------------------


def test_camera_create_defaults_and_validation():
    c = cam.Camera.create(focal=1000.0, center=(500.0, 400.0))
    np.testing.assert_array_equal(c.focal, [1000.0, 1000.0])
    np.testing.assert_array_equal(c.rotation, np.eye(3))
    np.testing.assert_array_equal(c.translation, np.zeros(3))
    np.testing.assert_array_equal(c.radial, np.zeros(3))
    np.testing.assert_array_equal(c.tangential, np.zeros(2))
    np.testing.assert_array_equal(c.image_size, [1000.0, 800.0])
    assert c.batch_shape == ()
    # Batched fields broadcast to a common batch shape; the camera is a pytree.
    cb = cam.Camera.create(focal=np.full((4, 2), 1000.0), center=(500.0, 500.0))
    assert cb.batch_shape == (4,) and cb.rotation.shape == (4, 3, 3)
    assert len(jax.tree.leaves(cb)) == 7
    np.testing.assert_allclose(cb.intrinsics[0], [[1000, 0, 500], [0, 1000, 500], [0, 0, 1]])
    with pytest.raises(ValueError, match=r"\[\.\.\., 3, 3\]"):
        cam.Camera.create(focal=1.0, center=(0.0, 0.0), rotation=np.eye(4))
    with pytest.raises(ValueError, match=r"translation must have shape \[\.\.\., 3\]"):
        cam.Camera.create(focal=1.0, center=(0.0, 0.0), translation=np.zeros(2))
    with pytest.raises(ValueError, match=r"center must have shape \[\.\.\., 2\]"):
        cam.Camera.create(focal=1.0, center=(0.0, 0.0, 0.0))


def test_world_camera_transforms_match_numpy():
    c = _random_camera(0)
    x = _rng(1).normal(size=(2, J, 3))
    r, t = np.asarray(c.rotation), np.asarray(c.translation)
    xc = np.asarray(cam.world_to_camera(x, c))
    np.testing.assert_allclose(xc, np.einsum("ij,bkj->bki", r, x) + t, atol=1e-5)
    np.testing.assert_allclose(cam.camera_to_world(xc, c), x, atol=1e-5)
    np.testing.assert_allclose(cam.transform_points(x, r, t), xc, atol=1e-5)
    # Camera centre C = -R^T t maps to the camera-frame origin.
    np.testing.assert_allclose(cam.world_to_camera(c.centre[None], c), np.zeros((1, 3)), atol=1e-5)
    # invert / compose.
    r_inv, t_inv = cam.invert_transform(r, t)
    r_id, t_id = cam.compose_transforms(r_inv, t_inv, r, t)
    np.testing.assert_allclose(r_id, np.eye(3), atol=1e-6)
    np.testing.assert_allclose(t_id, np.zeros(3), atol=1e-5)
    with pytest.raises(ValueError, match=r"\[\.\.\., J, 3\]"):
        cam.world_to_camera(np.zeros((J, 2)), c)


def test_relative_transform_li_eq4():
    ca, cb = _random_camera(2), _random_camera(3)
    xw = _rng(4).normal(size=(J, 3))
    r_ab, t_ab = cam.relative_transform(ca, cb)
    xa = cam.world_to_camera(xw, ca)
    # Transforming camera-a points to camera b equals world -> camera b of the same world points.
    np.testing.assert_allclose(
        cam.transform_points(xa, r_ab, t_ab), cam.world_to_camera(xw, cb), atol=1e-5
    )
    # Li et al. AAAI 2020 eqs. (3)-(4) with their centre-based extrinsics (t_i = C_i):
    # tau(Y) = R_1to2 (Y - t_1to2), R_1to2 = R_2 R_1^T, t_1to2 = R_1 (C_2 - C_1).
    r1, r2 = np.asarray(ca.rotation, np.float64), np.asarray(cb.rotation, np.float64)
    c1, c2 = np.asarray(ca.centre, np.float64), np.asarray(cb.centre, np.float64)
    r_li, t_li = r2 @ r1.T, r1 @ (c2 - c1)
    tau = (np.asarray(xa) - t_li) @ r_li.T
    np.testing.assert_allclose(cam.transform_points(xa, r_ab, t_ab), tau, atol=1e-4)
    # Composed with its inverse (b -> a) it is the identity.
    r_ba, t_ba = cam.relative_transform(cb, ca)
    r_id, t_id = cam.compose_transforms(r_ba, t_ba, r_ab, t_ab)
    np.testing.assert_allclose(r_id, np.eye(3), atol=1e-5)
    np.testing.assert_allclose(t_id, np.zeros(3), atol=1e-5)
    r_inv, t_inv = cam.invert_transform(r_ab, t_ab)
    np.testing.assert_allclose(r_inv, r_ba, atol=1e-5)
    np.testing.assert_allclose(t_inv, t_ba, atol=1e-5)


# --------------------------------------------------------------------------------------------
# projection
# --------------------------------------------------------------------------------------------


def test_project_pinhole_matches_intrinsics_matrix():
    c = _random_camera(5)
    x = _points_cam(6)
    k = np.asarray(cam.intrinsics_matrix(c.focal, c.center))
    hom = x @ k.T
    ref = hom[:, :2] / hom[:, 2:]
    np.testing.assert_allclose(cam.project(x, c), ref, rtol=1e-5)
    np.testing.assert_allclose(
        cam.project_pinhole(x, focal=c.focal, center=c.center), ref, rtol=1e-5
    )
    np.testing.assert_allclose(cam.project_unit_focal(x), x[:, :2] / x[:, 2:], rtol=1e-6)
    # Hand-derived: (0.1, 0.2, 2) with f = 1000, c = (500, 400) -> (550, 500).
    uv = cam.project_pinhole(
        jnp.array([[0.1, 0.2, 2.0]]),
        focal=jnp.array([1000.0, 1000.0]),
        center=jnp.array([500.0, 400.0]),
    )
    np.testing.assert_allclose(uv, [[550.0, 500.0]], rtol=1e-6)


def test_project_distortion_matches_numpy():
    c = _random_camera(7)
    x = _points_cam(8, shape=(3, J))
    args = [np.asarray(a, np.float64) for a in (c.focal, c.center, c.radial, c.tangential)]
    np.testing.assert_allclose(
        cam.project(x, c, distortion="opencv"), np_opencv(x, *args), rtol=1e-5
    )
    np.testing.assert_allclose(cam.project(x, c, distortion="h36m"), np_h36m(x, *args), rtol=1e-5)
    # Outside the [-1, 1] clip the H36M model differs from OpenCV's.
    far = np.array([[3.0, 0.5, 1.0]])
    np.testing.assert_allclose(
        cam.project(far, c, distortion="h36m"), np_h36m(far, *args), rtol=1e-5
    )
    # Hand-derived: (0.1, 0.2, 1), f = 1000, c = 500, k1 = 0.1: r2 = 0.05, radial = 1.005,
    # u = 1000 * 0.1 * 1.005 + 500 = 600.5, v = 1000 * 0.2 * 1.005 + 500 = 701.
    simple = cam.Camera.create(focal=1000.0, center=(500.0, 500.0), radial=(0.1, 0.0, 0.0))
    pt = jnp.array([[0.1, 0.2, 1.0]])
    for model in ("opencv", "h36m"):
        np.testing.assert_allclose(cam.project(pt, simple, distortion=model), [[600.5, 701.0]])
    # Tangential only, p1 = 0.01: x' = 0.1 + 2 * 0.01 * 0.02 = 0.1004 (OpenCV),
    # y' = 0.2 + 0.01 * (0.05 + 0.08) = 0.2013 -> (600.4, 701.3).
    tang = cam.Camera.create(focal=1000.0, center=(500.0, 500.0), tangential=(0.01, 0.0))
    np.testing.assert_allclose(cam.project(pt, tang, distortion="opencv"), [[600.4, 701.3]])
    with pytest.raises(ValueError, match="distortion"):
        cam.project(pt, simple, distortion="fisheye")


def test_weak_perspective_and_back_projection():
    c = _random_camera(9)
    x = _points_cam(10, shape=(2, J))
    # Equal depths: weak perspective == perspective.
    flat = x.copy()
    flat[..., 2] = 4.0
    np.testing.assert_allclose(
        cam.project_weak_perspective(flat, focal=c.focal, center=c.center),
        cam.project_pinhole(flat, focal=c.focal, center=c.center),
        rtol=1e-6,
    )
    # Reference: f * xy / mean(z) + c.
    ref = np.asarray(c.focal) * x[..., :2] / x[..., 2].mean(-1)[:, None, None] + np.asarray(
        c.center
    )
    np.testing.assert_allclose(
        cam.project_weak_perspective(x, focal=c.focal, center=c.center), ref, rtol=1e-5
    )
    depth = np.array([2.0, 3.0])
    ref_d = np.asarray(c.focal) * x[..., :2] / depth[:, None, None] + np.asarray(c.center)
    np.testing.assert_allclose(
        cam.project_weak_perspective(x, focal=c.focal, center=c.center, depth=depth),
        ref_d,
        rtol=1e-5,
    )
    uv = cam.project_pinhole(x, focal=c.focal, center=c.center)
    np.testing.assert_allclose(
        cam.back_project(uv, x[..., 2], focal=c.focal, center=c.center), x, rtol=1e-5, atol=1e-5
    )
    with pytest.raises(ValueError, match=r"\[\.\.\., J\]"):
        cam.back_project(uv, x[..., :2, 2], focal=c.focal, center=c.center)


def test_normalize_screen_and_image_coordinates():
    # Hand-derived (w = 1000, h = 1002): centre (500, 501) -> (0, 0); (0, 0) -> (-1, -1.002);
    # (1000, 1002) -> (1, 1.002).
    uv = jnp.array([[500.0, 501.0], [0.0, 0.0], [1000.0, 1002.0]])
    out = cam.normalize_screen(uv, width=1000, height=1002)
    np.testing.assert_allclose(out, [[0, 0], [-1, -1.002], [1, 1.002]], atol=1e-6)
    np.testing.assert_allclose(cam.image_coordinates(out, width=1000, height=1002), uv, atol=1e-4)
    # Batched image sizes broadcast against uv[..., 0].
    uvb = _rng(11).uniform(0, 1000, size=(2, J, 2))
    w = np.array([1000.0, 640.0])[:, None]
    h = np.array([1002.0, 480.0])[:, None]
    ref = uvb / w[..., None] * 2 - np.stack([np.ones_like(h), h / w], -1)
    np.testing.assert_allclose(
        cam.normalize_screen(uvb, width=w, height=h), ref, rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        cam.image_coordinates(ref, width=w, height=h), uvb, rtol=1e-5, atol=1e-4
    )
    # per-image widths with one shared height ("like width": each broadcasts on its own)
    shared = np.stack([np.ones_like(w), 1002.0 / w], -1)
    ref = uvb / w[..., None] * 2 - shared
    np.testing.assert_allclose(cam.normalize_screen(uvb, width=w, height=1002.0), ref, atol=1e-6)
    np.testing.assert_allclose(cam.image_coordinates(ref, width=w, height=1002.0), uvb, atol=1e-4)


def test_projection_rotation_invariance():
    """Projecting a rotated pose == projecting the pose with the camera rotated accordingly."""
    c = _random_camera(12)
    xw = _rng(13).normal(scale=0.3, size=(J, 3))
    g_rot = np.asarray(geometry.random_rotation(jax.random.key(1), elevation_range=(0.0, 0.3)))
    rotated = xw @ g_rot.T
    c_rot = c.replace(rotation=c.rotation @ g_rot)  # R' = R G: R' X + t = R (G X) + t
    for model in cam.DISTORTIONS:
        np.testing.assert_allclose(
            cam.project(cam.world_to_camera(rotated, c), c, distortion=model),
            cam.project(cam.world_to_camera(xw, c_rot), c_rot, distortion=model),
            rtol=1e-5,
        )


@pytest.mark.parametrize("model", ["none", "opencv", "h36m"])
def test_points_at_and_behind_camera_plane_are_finite(model):
    c = _random_camera(14)
    pts = jnp.array([[0.1, 0.2, 0.0], [0.0, 0.0, 0.0], [0.3, -0.1, -1.0], [0.1, 0.1, 1e-4]])

    def loss(p):
        # Linear in the pixels: the OpenCV polynomial at x / min_depth is huge (but finite), so a
        # squared loss could overflow float32 for it (see the `project` docstring).
        return jnp.sum(cam.project(p, c, distortion=model))

    assert _finite(cam.project(pts, c, distortion=model))
    grad = jax.grad(loss)(pts)
    assert _finite(grad)
    # Depth is clamped at min_depth (1 mm): no gradient flows into z below it.
    np.testing.assert_array_equal(grad[:, 2], 0.0)
    if model != "opencv":
        squared = jax.grad(lambda p: jnp.sum(cam.project(p, c, distortion=model) ** 2))(pts)
        assert _finite(squared)
    fns = {
        "unit_focal": lambda p: cam.project_unit_focal(p),
        "pinhole": lambda p: cam.project_pinhole(p, focal=c.focal, center=c.center),
        "weak": lambda p: cam.project_weak_perspective(p, focal=c.focal, center=c.center),
    }
    for fn in fns.values():
        assert _finite(fn(pts))
        assert _finite(jax.grad(lambda p, fn=fn: jnp.sum(fn(p) ** 2))(pts))


@jax.jit  # every differentiable camera function in one compiled gradient check
def _all_camera_functions(p, camera, other):
    f, c = camera.focal, camera.center
    return (
        *(cam.project(p, camera, distortion=m) for m in cam.DISTORTIONS),
        cam.world_to_camera(p, camera),
        cam.camera_to_world(p, camera),
        cam.transform_points(p, camera.rotation, camera.translation),
        cam.invert_transform(camera.rotation, camera.translation),
        cam.compose_transforms(other.rotation, other.translation, camera.rotation, p[0]),
        cam.relative_transform(camera, other),
        cam.intrinsics_matrix(f, c),
        cam.project_unit_focal(p),
        cam.project_pinhole(p, focal=f, center=c),
        cam.project_weak_perspective(p, focal=f, center=c),
        cam.back_project(p[:, :2], p[:, 2], focal=f, center=c),
        cam.normalize_screen(p[:, :2], width=camera.image_size[0], height=camera.image_size[1]),
        cam.image_coordinates(p[:, :2], width=camera.image_size[0], height=camera.image_size[1]),
        camera.centre,
    )


def test_camera_grads():
    with jax.enable_x64(True):
        c = _random_camera(15, dtype=jnp.float64)
        cb = _random_camera(17, dtype=jnp.float64)
        x = jnp.asarray(_points_cam(16))
        # Gradients w.r.t. the points and every camera field (both cameras).
        check_grads(_all_camera_functions, (x, c, cb), order=1, modes=("rev",))
        check_grads(
            jax.jit(lambda p, r, t: cam.world_to_camera(p, c.replace(rotation=r, translation=t))),
            (x, c.rotation, c.translation),
            order=2,
            modes=("rev",),
        )


def test_jit_and_vmap_over_cameras():
    cams = cam.h36m_cameras("S9")
    xw = jnp.asarray(_rng(18).normal(scale=0.3, size=(J, 3)), jnp.float32)

    def world_to_pixels(points, camera):
        return cam.project(cam.world_to_camera(points, camera), camera, distortion="h36m")

    batched = world_to_pixels(jnp.broadcast_to(xw, (4, J, 3)), cams)  # camera batch axis [4]
    np.testing.assert_allclose(jax.jit(world_to_pixels)(xw[None], cams), batched, rtol=1e-5)
    vm = jax.vmap(world_to_pixels, in_axes=(None, 0))(xw, cams)
    loop = np.stack([world_to_pixels(xw, cam.h36m_camera("S9", i)) for i in range(4)])
    np.testing.assert_allclose(vm, loop, rtol=1e-5)
    np.testing.assert_allclose(batched, loop, rtol=1e-5)


# --------------------------------------------------------------------------------------------
# Human3.6M cameras
# --------------------------------------------------------------------------------------------


def test_h36m_cameras_geometry():
    assert cam.H36M_SUBJECTS_WITH_CAMERAS == ("S1", "S5", "S6", "S7", "S8", "S9", "S11")
    assert len(cam.H36M_CAMERAS) == 11  # S1-S11; S2, S3, S4, S10 without extrinsics
    origin = jnp.zeros((1, 3))
    for subject in cam.H36M_SUBJECTS_WITH_CAMERAS:
        cams = cam.h36m_cameras(subject)
        assert cams.batch_shape == (4,)
        r = np.asarray(cams.rotation, np.float64)
        np.testing.assert_allclose(
            r @ np.swapaxes(r, -1, -2), np.broadcast_to(np.eye(3), r.shape), atol=1e-5
        )
        np.testing.assert_allclose(np.linalg.det(r), 1.0, atol=1e-5)
        centre = np.asarray(cams.centre)
        dist = np.linalg.norm(centre, axis=-1)
        assert np.all((dist > 4.0) & (dist < 6.0)), (subject, dist)  # ~5 m from the origin
        assert np.all((centre[:, 2] > 1.4) & (centre[:, 2] < 1.7)), subject  # ~1.5 m high (z-up)
        # World origin (on the floor, in the middle) projects inside the image, in front of it.
        xc = cam.world_to_camera(jnp.broadcast_to(origin, (4, 1, 3)), cams)
        assert np.all(np.asarray(xc)[..., 2] > 3.0)
        for model in cam.DISTORTIONS:
            uv = np.asarray(cam.project(xc, cams, distortion=model))
            assert np.all((uv > 0) & (uv < 1000)), (subject, model, uv)
        # Round trip world -> camera -> world.
        xw = _rng(19).normal(size=(4, J, 3))
        np.testing.assert_allclose(
            cam.camera_to_world(cam.world_to_camera(xw, cams), cams), xw, atol=1e-5
        )


def test_h36m_conversion_matches_videopose3d_convention():
    # VideoPose3D: X_cam = qrot(qinverse(q), X_world - t), q (w, x, y, z) camera->world, t in mm.
    raw = cam.H36M_CAMERAS["S11"][2]
    q = np.asarray(raw["orientation"])
    centre_m = np.asarray(raw["translation"]) / 1000.0
    rot = Rotation.from_quat(np.concatenate([q[1:], q[:1]]))  # scipy is xyzw
    xw = _rng(20).normal(size=(J, 3))
    ref = rot.inv().apply(xw - centre_m)
    c = cam.h36m_camera("S11", 2)
    np.testing.assert_allclose(cam.world_to_camera(xw, c), ref, atol=1e-5)
    # Intrinsics copied verbatim (camera 54138969 is index 0, 1000 x 1002 pixels).
    c0 = cam.h36m_camera("S1", 0)
    np.testing.assert_allclose(c0.focal, [1145.0494384765625, 1143.7811279296875])
    np.testing.assert_allclose(c0.center, [512.54150390625, 515.4514770507812])
    np.testing.assert_allclose(c0.image_size, [1000, 1002])
    np.testing.assert_allclose(c0.radial[0], -0.20709891617298126)
    np.testing.assert_allclose(c0.tangential[1], -0.00142447161488235)
    # Published quaternions are unit norm.
    for subject in cam.H36M_SUBJECTS_WITH_CAMERAS:
        for d in cam.H36M_CAMERAS[subject]:
            assert np.linalg.norm(d["orientation"]) == pytest.approx(1.0, abs=1e-5)
    intr = cam.h36m_intrinsics(1)
    np.testing.assert_array_equal(intr.rotation, np.eye(3))
    np.testing.assert_allclose(intr.focal, [1149.6756591796875, 1147.5916748046875])


def test_h36m_unavailable_subjects_raise():
    for subject in ("S2", "S3", "S4", "S10"):
        assert cam.H36M_CAMERAS[subject] is None
        with pytest.raises(ValueError, match="not published"):
            cam.h36m_camera(subject, 0)
    with pytest.raises(ValueError, match="unknown Human3.6M subject"):
        cam.h36m_cameras("S12")
    with pytest.raises(ValueError, match="index"):
        cam.h36m_camera("S1", 4)
    with pytest.raises(ValueError, match="index"):
        cam.h36m_intrinsics(-1)
