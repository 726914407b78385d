"""Tests of the image networks: hourglass shapes and parameter counts (hand formula), integral
regression of one-hot 3D heatmaps, heatmap-masked box pooling against a numpy loop, WSP heads.

Shapes and parameter counts use ``jax.eval_shape`` (no compilation)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jpose import losses
from jpose.models import param_count
from jpose.models.hourglass import Residual, StackedHourglass
from jpose.models.resnet import WSPNet, box_masks, heatmap_masked_pool, transfer_params


def _params(module, *inputs):
    shapes = jax.eval_shape(lambda: module.init(jax.random.key(0), *inputs, train=False))
    return shapes["params"]


# hand formula: conv k x k with bias = k^2 c_in c_out + c_out; batch norm = 2 c (scale, bias)
def _conv(k, cin, cout):
    return k * k * cin * cout + cout


def _res(cin, c):
    h = c // 2
    n = 2 * cin + _conv(1, cin, h) + 2 * h + _conv(3, h, h) + 2 * h + _conv(1, h, c)
    return n + (_conv(1, cin, c) if cin != c else 0)


def _hourglass_count(*, f, depth, n, stacks, joints, reg_modules, reg_pools, flat):
    stem = _conv(7, 3, f // 4) + 2 * (f // 4) + _res(f // 4, f // 2) + _res(f // 2, f // 2)
    stem += _res(f // 2, f)
    hg = (3 * depth + 1) * n * _res(f, f)  # up, low1, low3 per level + low2 at the bottom
    per_stack = hg + n * _res(f, f) + _conv(1, f, f) + 2 * f + _conv(1, f, joints)
    merge = _conv(1, f, f) + _conv(1, joints, f)  # ll_ and heatmaps back to F channels
    reg = reg_pools * reg_modules * _res(f, f) + flat * joints + joints
    return stem + stacks * (per_stack + merge) + reg


def test_residual_parameter_count():
    x = jnp.zeros((1, 8, 8, 6))
    assert param_count(_params(Residual(10), x)) == _res(6, 10)
    assert param_count(_params(Residual(6), x)) == _res(6, 6)


@pytest.mark.parametrize("f,depth,n,size", [(16, 2, 2, 64), (8, 4, 1, 64)])
def test_hourglass_shapes_and_parameter_count(f, depth, n, size):
    net = StackedHourglass(num_joints=17, num_stacks=2, num_modules=n, features=f, depth=depth)
    x = jnp.zeros((2, size, size, 3))
    params = _params(net, x)
    flat = (size // 4 // 2**4) ** 2 * f
    expected = _hourglass_count(f=f, depth=depth, n=n, stacks=2, joints=17, reg_modules=1,
                                reg_pools=4, flat=flat)  # fmt: skip
    assert param_count(params) == expected
    out = jax.eval_shape(lambda: net.apply(net.init(jax.random.key(0), x, train=False), x,
                                           train=False))  # fmt: skip
    assert out["heatmaps"].shape == (2, 2, 17, size // 4, size // 4)
    assert out["depth"].shape == (2, 17)


def test_hourglass_paper_configuration_and_errors():
    # Zhou et al.'s shallow variant at 256 x 256: 2 stacks, 2 modules, F = 256, depth 4.
    net = StackedHourglass(num_joints=16, features=256)
    x = jnp.zeros((1, 256, 256, 3))
    count = param_count(_params(net, x))
    assert count == _hourglass_count(f=256, depth=4, n=2, stacks=2, joints=16, reg_modules=1,
                                     reg_pools=4, flat=4 * 4 * 256)  # fmt: skip
    with pytest.raises(ValueError, match="multiples of"):
        _params(StackedHourglass(features=8, depth=2), jnp.zeros((1, 40, 40, 3)))
    with pytest.raises(ValueError, match=r"\[B, H, W, 3\]"):
        _params(StackedHourglass(features=8, depth=2), jnp.zeros((1, 64, 64)))


def test_integral_regression_of_one_hot_heatmap():
    d, h, w = 5, 6, 7
    hm = np.zeros((2, 3, d, h, w), np.float32)
    locs = np.array([[[1, 2, 3], [4, 5, 6], [0, 0, 0]], [[2, 3, 1], [3, 1, 4], [4, 5, 6]]])
    for b in range(2):
        for j in range(3):
            z, y, x = locs[b, j]
            hm[b, j, z, y, x] = 1e4  # softmax -> one-hot
    coords = losses.soft_argmax_3d(jnp.asarray(hm))
    np.testing.assert_allclose(coords, locs[..., ::-1].astype(np.float32), atol=1e-4)  # (x,y,z)
    # uniform heatmap -> the centre of the volume
    np.testing.assert_allclose(losses.soft_argmax_3d(jnp.zeros((1, d, h, w)))[0],
                               [(w - 1) / 2, (h - 1) / 2, (d - 1) / 2], atol=1e-5)  # fmt: skip


def _pool_reference(f, m, boxes, normalize):
    b, k = boxes.shape[:2]
    j = m.shape[1]
    h, w, dd = f.shape[1:]
    out = np.zeros((b, k, j, dd))
    for bi in range(b):
        for ki in range(k):
            u0, v0, u1, v1 = boxes[bi, ki]
            for ji in range(j):
                acc, cnt, msum = np.zeros(dd), 0, 0.0
                for y in range(h):
                    for x in range(w):
                        if u0 <= x <= u1 and v0 <= y <= v1:
                            acc += m[bi, ji, y, x] * f[bi, y, x]
                            cnt += 1
                            msum += m[bi, ji, y, x]
                z = {"box": cnt, "heatmap": msum, "none": 1.0}[normalize]
                out[bi, ki, ji] = acc / z if abs(z) > 1e-6 else 0.0
    return out


@pytest.mark.parametrize("normalize", ["box", "heatmap", "none"])
def test_heatmap_masked_pool_matches_numpy(normalize):
    rng = np.random.default_rng(0)
    f = rng.normal(size=(2, 5, 6, 3)).astype(np.float32)
    m = rng.uniform(size=(2, 4, 5, 6)).astype(np.float32)
    boxes = np.array([[[0, 0, 2.5, 3], [1.2, 0.5, 5, 4], [3, 3, 2, 2]],
                      [[0, 0, 5, 4], [4.5, 1, 5, 2.2], [0, 0, 0, 0]]], np.float32)  # fmt: skip
    got = heatmap_masked_pool(jnp.asarray(f), jnp.asarray(m), jnp.asarray(boxes),
                              normalize=normalize)  # fmt: skip
    np.testing.assert_allclose(got, _pool_reference(f, m, boxes, normalize), rtol=1e-5, atol=1e-5)
    jitted = jax.jit(lambda a, b, c: heatmap_masked_pool(a, b, c, normalize=normalize))
    np.testing.assert_allclose(jitted(f, m, boxes), got, rtol=1e-6, atol=1e-6)
    # the empty box (u0 > u1) pools to 0 with finite gradients
    assert np.all(np.asarray(got)[0, 2] == 0)
    g = jax.grad(lambda mm: jnp.sum(heatmap_masked_pool(f, mm, boxes, normalize=normalize)))(m)
    assert np.all(np.isfinite(g))


def test_box_masks_inclusive():
    mk = box_masks(jnp.array([[1.0, 0.0, 2.0, 1.0]]), height=3, width=4)
    np.testing.assert_array_equal(mk[0], [[0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]])


def test_wsp_net_heads_and_transfer():
    kw = dict(resnet_depth=10, width=4, deconv_features=8, depth_bins=4)
    pre = WSPNet(heads=("heatmap", "relative_depth"), rd_hidden=(8,), **kw)
    fine = WSPNet(heads=("heatmap3d",), **kw)
    x = jnp.zeros((2, 32, 32, 3))
    boxes = jnp.array([[[0, 0, 3, 3], [2, 2, 7, 7]]] * 2, jnp.float32)
    pairs = jnp.array([[[0, 1], [1, 0]]] * 2)
    v = pre.init(jax.random.key(0), x, boxes, pairs, train=False)
    out = pre.apply(v, x + 0.1, boxes, pairs, train=False)
    assert out["heatmaps"].shape == (2, 17, 8, 8) and out["features"].shape == (2, 8, 8, 8)
    assert out["pooled"].shape == (2, 2, 17, 8) and out["logits"].shape == (2, 2, 17)
    np.testing.assert_allclose(
        out["pooled"], heatmap_masked_pool(out["features"], out["heatmaps"], boxes), rtol=1e-5,
        atol=1e-6)  # fmt: skip
    v3 = jax.eval_shape(lambda: fine.init(jax.random.key(1), x, train=False))
    o3 = jax.eval_shape(lambda: fine.apply(fine.init(jax.random.key(1), x, train=False), x,
                                           train=False))  # fmt: skip
    assert o3["heatmaps3d"].shape == (2, 17, 4, 8, 8) and o3["coords3d"].shape == (2, 17, 3)
    moved = transfer_params(v["params"], v3["params"])
    assert moved["backbone"] is v["params"]["backbone"] and "heatmap3d" in moved
    with pytest.raises(ValueError, match="missing"):
        transfer_params(v["params"], v3["params"], modules=("relative_depth",))


def test_heatmap_argmax_shifts_a_quarter_pixel_towards_the_larger_neighbour():
    from jpose.models.hourglass import heatmap_argmax

    hm = np.zeros((2, 6, 5), np.float32)  # [J, h, w]
    hm[0, 2, 3], hm[0, 2, 4], hm[0, 3, 3] = 1.0, 0.5, 0.2  # right and lower neighbours larger
    hm[1, 4, 1], hm[1, 3, 1] = 1.0, 0.3  # upper neighbour larger, no horizontal difference
    np.testing.assert_allclose(heatmap_argmax(jnp.asarray(hm)), [[3.25, 2.25], [1.0, 3.75]])
