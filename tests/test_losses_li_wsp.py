"""Tests for jpose.losses: Li et al. AAAI 2020 multi-view losses and WSP (Qiu et al.)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _helpers import GRAD_TOLERANCES, STANDING_H36M17
from _helpers import check_grads_jit as _check_grads
from _helpers import finite_value_and_grad as _finite_value_and_grad

from jpose import losses as L
from jpose.camera import h36m_camera, project, relative_transform, world_to_camera
from jpose.skeleton import COCO17, MPII16

RNG = np.random.default_rng(1)


GRAD = GRAD_TOLERANCES

# A standing 17-joint pose in the Human3.6M world frame (metres, z up), near the capture centre.
_LOCAL = STANDING_H36M17
WORLD = jnp.asarray(np.stack([_LOCAL[:, 0], _LOCAL[:, 2], 0.9 - _LOCAL[:, 1]], -1) + [0.2, 0.1, 0])


@pytest.fixture(scope="module")
def two_views():
    """A pose seen by Human3.6M S1 cameras 0 and 1, with exact (undistorted) detections."""
    cams = [h36m_camera("S1", 0), h36m_camera("S1", 1)]
    pts = jnp.stack([world_to_camera(WORLD, c) for c in cams])  # [2, J, 3]
    kp = jnp.stack([project(p, c) for p, c in zip(pts, cams)])  # [2, J, 2]
    rot, trans = relative_transform(cams[0], cams[1])
    focal = jnp.stack([c.focal for c in cams])
    center = jnp.stack([c.center for c in cams])
    return dict(pts=pts, kp=kp, rot=rot, trans=trans, focal=focal, center=center)


# ------------------------------------------------------------------------------- Li et al.


def test_li_reprojection_zero_reference_and_confidence_units(two_views):
    v = two_views
    assert np.all(np.asarray(v["pts"])[..., 2] > 1.0)  # in front of both cameras
    conf = jnp.asarray(RNG.uniform(size=(2, 17)), jnp.float32)
    loss = L.li_reprojection_loss(v["pts"], v["kp"], conf, focal=v["focal"], center=v["center"])
    assert loss.shape == (2,) and float(jnp.max(jnp.abs(loss))) < 1e-3
    noisy = v["kp"] + jnp.asarray(RNG.normal(size=(2, 17, 2)) * 3, jnp.float32)
    loss = L.li_reprojection_loss(v["pts"], noisy, conf, focal=v["focal"], center=v["center"])
    ref = np.sum(np.asarray(conf) * np.sum((np.asarray(noisy) - np.asarray(v["kp"])) ** 2, -1), -1)
    np.testing.assert_allclose(loss, ref, rtol=1e-3)
    # eq. 2 = sum over the two views; with eq.-3-normalised confidences the loss does not
    # depend on the units of the confidence scores.
    norm = L.camerapose_normalize_confidence
    a = L.li_reprojection_loss(v["pts"], noisy, norm(conf), focal=v["focal"], center=v["center"])
    b = L.li_reprojection_loss(
        v["pts"], noisy, norm(conf * 100.0), focal=v["focal"], center=v["center"]
    )
    np.testing.assert_allclose(a, b, rtol=1e-5)
    _check_grads(
        lambda p: L.li_reprojection_loss(
            p, noisy / 1000, conf, focal=v["focal"] / 1000, center=v["center"] / 1000
        ),
        (v["pts"],),
        **GRAD,
    )
    # all-zero confidences and depth at the clamp
    _finite_value_and_grad(
        lambda p, w: L.li_reprojection_loss(p, noisy, w, focal=v["focal"], center=v["center"]),
        v["pts"].at[..., 2].set(0.0),
        jnp.zeros((2, 17)),
    )


def test_li_transform_reprojection_zero_for_consistent_views(two_views):
    v = two_views
    conf = jnp.asarray(RNG.uniform(0.2, 1.0, size=(2, 17)), jnp.float32)
    kw = dict(rotation=v["rot"], translation=v["trans"], focal=v["focal"], center=v["center"])
    loss = L.li_transform_reprojection_loss(v["pts"], v["kp"], conf, **kw)
    assert float(loss) < 1e-3  # pixels^2
    np.testing.assert_allclose(
        L.li_pretrain_loss(v["pts"], rotation=v["rot"], translation=v["trans"]), 0.0, atol=1e-8
    )
    # Shifting view 1's estimate breaks consistency in both losses.
    moved = v["pts"].at[0].add(jnp.array([0.05, 0.0, 0.0]))
    assert float(L.li_transform_reprojection_loss(moved, v["kp"], conf, **kw)) > 1.0
    pre = L.li_pretrain_loss(moved, rotation=v["rot"], translation=v["trans"])
    np.testing.assert_allclose(pre, 2 * 17 * 0.05**2, rtol=1e-3)  # rigid: |R d|^2 = |d|^2


def test_li_transform_reprojection_reference(two_views):
    v = two_views
    pts = v["pts"] + jnp.asarray(RNG.normal(size=(2, 17, 3)) * 0.03, jnp.float32)
    conf = jnp.asarray(RNG.uniform(size=(2, 17)), jnp.float32)
    kw = dict(rotation=v["rot"], translation=v["trans"], focal=v["focal"], center=v["center"])
    r, t = np.asarray(v["rot"], np.float64), np.asarray(v["trans"], np.float64)
    p = np.asarray(pts, np.float64)
    y12 = p[0] @ r.T + t  # eq. 3 written as R Y + t
    y21 = (p[1] - t) @ r  # inverse transform
    f, c = np.asarray(v["focal"], np.float64), np.asarray(v["center"], np.float64)
    rho2 = f[1] * y12[:, :2] / y12[:, 2:] + c[1]
    rho1 = f[0] * y21[:, :2] / y21[:, 2:] + c[0]
    kp, w = np.asarray(v["kp"], np.float64), np.asarray(conf, np.float64)
    e12 = np.sum((kp[1] - rho2) ** 2, -1)
    e21 = np.sum((kp[0] - rho1) ** 2, -1)
    ref_source = np.sum(w[0] * e12) + np.sum(w[1] * e21)
    ref_target = np.sum(w[1] * e12) + np.sum(w[0] * e21)
    np.testing.assert_allclose(
        L.li_transform_reprojection_loss(pts, v["kp"], conf, **kw), ref_source, rtol=1e-3
    )
    np.testing.assert_allclose(
        L.li_transform_reprojection_loss(pts, v["kp"], conf, confidence_view="target", **kw),
        ref_target,
        rtol=1e-3,
    )
    ref_pre = np.sum((y12 - p[1]) ** 2) + np.sum((y21 - p[0]) ** 2)
    np.testing.assert_allclose(
        L.li_pretrain_loss(pts, rotation=v["rot"], translation=v["trans"]), ref_pre, rtol=1e-3
    )
    np.testing.assert_allclose(L.li_total_loss(2.0, 3.0, weight=0.5), 3.5)
    _check_grads(
        lambda q: L.li_pretrain_loss(q, rotation=v["rot"], translation=v["trans"]), (pts,), **GRAD
    )


def test_li_jit_vmap_and_errors(two_views):
    v = two_views
    conf = jnp.asarray(RNG.uniform(size=(2, 17)), jnp.float32)

    def fn(pts, kp, w):
        kw = dict(rotation=v["rot"], translation=v["trans"], focal=v["focal"], center=v["center"])
        return L.li_total_loss(
            L.li_reprojection_loss(pts, kp, w, focal=v["focal"], center=v["center"]).sum(),
            L.li_transform_reprojection_loss(pts, kp, w, **kw),
            weight=0.1,
        )

    n = 3
    pts = v["pts"] + jnp.asarray(RNG.normal(size=(n, 2, 17, 3)) * 0.02, jnp.float32)
    kp = jnp.broadcast_to(v["kp"], (n, 2, 17, 2))
    w = jnp.broadcast_to(conf, (n, 2, 17))
    single = jax.jit(fn)
    looped = np.stack([single(pts[i], kp[i], w[i]) for i in range(n)])
    np.testing.assert_allclose(jax.jit(jax.vmap(fn))(pts, kp, w), looped, rtol=1e-4)
    np.testing.assert_allclose(fn(pts[0], kp[0], w[0]), looped[0], rtol=1e-5)  # jit == eager
    with pytest.raises(ValueError, match="two views"):
        L.li_transform_reprojection_loss(
            v["pts"][:1], v["kp"][:1], conf[:1], rotation=v["rot"], translation=v["trans"],
            focal=v["focal"], center=v["center"],
        )  # fmt: skip


# ------------------------------------------------------------------------------------ WSP


def _person(ankle_y, scale=1.0, x0=0.0):
    """A COCO-17 person whose ankles are at image height ``ankle_y`` (pixels, y down)."""
    kp = np.zeros((17, 2), np.float32)
    kp[:, 0] = x0 + np.linspace(-20, 20, 17) * scale
    kp[:, 1] = ankle_y - np.linspace(170, 0, 17) * scale
    kp[COCO17.indices(["left_ankle", "right_ankle"]), 1] = ankle_y
    return kp


def test_wsp_labels_two_people():
    ankles = COCO17.indices(["left_ankle", "right_ankle"])
    # Person 0 stands lower in the image (ankles at y = 400) than person 1 (y = 300): nearer.
    kp = jnp.asarray(np.stack([_person(400.0), _person(300.0, 0.6, 200)]))
    labels, valid = L.wsp_relative_depth_labels(kp, ankles=ankles)
    assert labels.shape == (2, 2, 17) and valid.shape == (2, 2)
    np.testing.assert_array_equal(valid, [[False, True], [True, False]])
    np.testing.assert_array_equal(labels[0, 1], np.ones(17))  # Z(A) <= Z(B) -> 1 (eq. 7)
    np.testing.assert_array_equal(labels[1, 0], np.zeros(17))
    np.testing.assert_array_equal(labels[0, 0], np.zeros(17))  # invalid pair
    # One ankle of person 1 hidden, the other at y = 450: person 1 becomes the nearer one.
    kp2 = kp.at[1, ankles[0], 1].set(450.0)
    vis = jnp.ones((2, 17)).at[1, ankles[1]].set(0.0)
    labels, valid = L.wsp_relative_depth_labels(kp2, vis, ankles=ankles)
    np.testing.assert_array_equal(labels[1, 0], np.ones(17))
    np.testing.assert_array_equal(labels[0, 1], np.zeros(17))
    # "max" vs "mean": person 1 with ankles at 380 and 420 (mean 400) against person 0 at 405.
    kp3 = kp.at[0, ankles, 1].set(405.0).at[1, ankles, 1].set(jnp.array([380.0, 420.0]))
    assert float(L.wsp_relative_depth_labels(kp3, ankles=ankles)[0][0, 1, 0]) == 1.0
    assert float(L.wsp_relative_depth_labels(kp3, ankles=ankles, reduce="max")[0][0, 1, 0]) == 0.0
    # No visible ankle: the pair is invalid.
    vis = jnp.ones((2, 17)).at[1, ankles].set(0.0)
    _, valid = L.wsp_relative_depth_labels(kp, vis, ankles=ankles)
    assert not bool(valid.any())


def test_wsp_labels_jit_batch_and_three_people():
    ankles = COCO17.indices(["left_ankle", "right_ankle"])
    kp = jnp.asarray(np.stack([_person(300.0), _person(500.0), _person(400.0)]))
    labels, valid = jax.jit(lambda k: L.wsp_relative_depth_labels(k, ankles=ankles))(kp)
    # nearer-than matrix from ankle heights (300, 500, 400): person 1 nearest, then 2, then 0.
    np.testing.assert_array_equal(labels[..., 0], [[0, 0, 0], [1, 0, 1], [1, 0, 0]])
    batched, _ = L.wsp_relative_depth_labels(jnp.stack([kp, kp[::-1]]), ankles=ankles)
    np.testing.assert_array_equal(batched[0], labels)
    # reversed order, heights (400, 500, 300)
    np.testing.assert_array_equal(batched[1, ..., 0], [[0, 0, 1], [1, 0, 1], [0, 0, 0]])


def test_wsp_scale_gap_ratio():
    head_top, head_down = MPII16.index("head_top"), MPII16.index("upper_neck")
    kp = jnp.zeros((2, 16, 2)).at[0, head_top].set(jnp.array([3.0, 4.0]))
    kp = kp.at[1, head_top].set(jnp.array([0.0, 2.5]))
    s = L.wsp_person_scale(kp, head_top=head_top, head_down=head_down)
    np.testing.assert_allclose(s, [5.0, 2.5])
    np.testing.assert_allclose(L.wsp_scale_gap_ratio(s[0], s[1]), 0.5)
    np.testing.assert_allclose(L.wsp_scale_gap_ratio(s[1], s[0]), 0.5)
    _finite_value_and_grad(L.wsp_scale_gap_ratio, 0.0, 0.0)
    _finite_value_and_grad(
        lambda k: L.wsp_person_scale(k, head_top=head_top, head_down=head_down), jnp.zeros((16, 2))
    )


def test_wsp_relative_depth_loss():
    logits = jnp.asarray(RNG.normal(size=(3, 17)) * 3, jnp.float32)
    labels = jnp.asarray(RNG.uniform(size=(3, 17)) > 0.5, jnp.float32)
    p = 1 / (1 + np.exp(-np.asarray(logits, np.float64)))
    y = np.asarray(labels)
    ref = np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p)), -1)
    np.testing.assert_allclose(L.wsp_relative_depth_loss(logits, labels), ref, rtol=1e-5)
    mask = jnp.zeros((3, 17)).at[:, :4].set(1.0)
    np.testing.assert_allclose(
        L.wsp_relative_depth_loss(logits, labels, mask=mask),
        np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p))[:, :4], -1),
        rtol=1e-5,
    )
    extreme = jnp.array([1e4, -1e4, 1e4, -1e4])
    v, _ = _finite_value_and_grad(
        lambda l: L.wsp_relative_depth_loss(l, jnp.array([1.0, 0.0, 0.0, 1.0])), extreme
    )
    np.testing.assert_allclose(v, 5e3, rtol=1e-6)  # (0 + 0 + 1e4 + 1e4) / 4
    _finite_value_and_grad(
        lambda l: L.wsp_relative_depth_loss(l, labels, mask=jnp.zeros(17)), logits
    )
    _check_grads(lambda l: L.wsp_relative_depth_loss(l, labels), (logits,), **GRAD)


def test_wsp_heatmap_loss():
    a = jnp.asarray(RNG.uniform(size=(2, 3, 4, 5)), jnp.float32)
    b = jnp.asarray(RNG.uniform(size=(2, 3, 4, 5)), jnp.float32)
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    np.testing.assert_allclose(
        L.wsp_heatmap_loss(a, b), np.mean(np.sqrt(np.sum(d**2, axis=(-2, -1))), -1), rtol=1e-5
    )
    np.testing.assert_allclose(
        L.wsp_heatmap_loss(a, b, squared=True), np.mean(np.sum(d**2, axis=(-2, -1)), -1), rtol=1e-5
    )
    v, _ = _finite_value_and_grad(lambda x: L.wsp_heatmap_loss(x, a), a)  # exact match
    assert float(v) == 0.0
    _check_grads(lambda x: L.wsp_heatmap_loss(x, b), (a,), **GRAD)


def test_soft_argmax_3d_and_coordinate_loss():
    d, h, w = 4, 5, 6
    hm = jnp.full((2, d, h, w), -1e4).at[0, 1, 2, 3].set(1e4).at[1, 3, 4, 0].set(1e4)
    np.testing.assert_allclose(L.soft_argmax_3d(hm), [[3, 2, 1], [0, 4, 3]], atol=1e-5)
    v, _ = _finite_value_and_grad(L.soft_argmax_3d, hm)
    np.testing.assert_allclose(
        L.soft_argmax_3d(jnp.zeros((1, d, h, w))),
        [[(w - 1) / 2, (h - 1) / 2, (d - 1) / 2]],
        rtol=1e-6,
    )
    logits = RNG.normal(size=(3, 2, d, h, w)).astype(np.float32)
    prob = np.exp(logits - logits.max(axis=(-3, -2, -1), keepdims=True))
    prob /= prob.sum(axis=(-3, -2, -1), keepdims=True)
    zz, yy, xx = np.meshgrid(np.arange(d), np.arange(h), np.arange(w), indexing="ij")
    ref = np.stack([(prob * c).sum(axis=(-3, -2, -1)) for c in (xx, yy, zz)], -1)
    coords = L.soft_argmax_3d(jnp.asarray(logits))
    np.testing.assert_allclose(coords, ref, rtol=1e-5)
    target = jnp.asarray(RNG.uniform(size=(3, 2, 3)) * 4, jnp.float32)
    np.testing.assert_allclose(
        L.wsp_coordinate_loss(coords, target),
        np.mean(np.sum(np.abs(ref - np.asarray(target)), -1), -1),
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        L.wsp_coordinate_loss(coords, target, mask=jnp.array([1.0, 0.0])),
        np.sum(np.abs(ref - np.asarray(target))[:, 0], -1),
        rtol=1e-5,
    )
    _check_grads(
        lambda x: L.wsp_coordinate_loss(L.soft_argmax_3d(x), target[0, :1]),
        (jnp.asarray(logits[0, :1, :2, :2, :3]),),
        **GRAD,
    )
    single = jax.jit(L.soft_argmax_3d)
    looped = np.stack([single(logits[i]) for i in range(3)])
    np.testing.assert_allclose(jax.jit(jax.vmap(L.soft_argmax_3d))(logits), looped, rtol=1e-5)
    np.testing.assert_allclose(single(logits), coords, rtol=1e-5)  # jit == eager
