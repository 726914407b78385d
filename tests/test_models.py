"""Tests of jpose.models: parameter counts against hand formulas, shapes, modes, invariants.

Full-size parameter counts use ``jax.eval_shape`` (no allocation, no compilation); behaviour tests
use tiny widths.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jpose import models as M

KEY = jax.random.key(0)


def _count(model, *example):
    shapes = jax.eval_shape(model.init, KEY, *example)
    return M.param_count(shapes["params"]), M.param_count(shapes["batch_stats"])


def _jit_apply(model, *, train=False):
    """One compilation per model instead of op-by-op eager dispatch (test speed)."""
    return jax.jit(lambda v, *x, key=None: model.apply(v, *x, train=train, key=key))


def _x(*shape):
    return jax.ShapeDtypeStruct(shape, jnp.float32)


# ---------------------------------------------------------------------------------------------
# parameter counts (hand formulas; dense layers feeding batch norm carry no bias)
# ---------------------------------------------------------------------------------------------
def _residual_mlp_count(d_in, d_out, w, blocks, bn=True):
    # input dense (no bias with BN) + BN(scale, offset); per block 2 x (dense w*w + BN 2w);
    # output dense with bias.
    dense_bias = 0 if bn else w
    bn_p = 2 * w if bn else 0
    first = d_in * w + dense_bias + bn_p
    block = 2 * (w * w + dense_bias + bn_p)
    return first + blocks * block + (w + 1) * d_out


def test_martinez_count_matches_formula_and_paper():
    n, stats = _count(M.martinez_lifter(17), _x(2, 17, 2))
    # 34*1024 + 2*1024 + 2*2*(1024^2 + 2*1024) + 1025*51 = 4,291,635
    assert n == _residual_mlp_count(34, 51, 1024, 2) == 4_291_635
    assert stats == 5 * 2 * 1024  # mean + var of 5 BN layers
    # "4.29 M-parameter lifter" (issue 12); PyTorch keeps 5 redundant pre-BN biases (+5,120)
    assert round(n / 1e6, 2) == 4.29
    n16, _ = _count(M.martinez_lifter(16), _x(2, 16, 2))
    assert n16 == _residual_mlp_count(32, 48, 1024, 2)


def test_li_and_drover_counts():
    assert _count(M.li_lifter(17), _x(2, 17, 2))[0] == _residual_mlp_count(34, 51, 1024, 4)
    assert _count(M.li_root_branch(), _x(2, 17, 2))[0] == _residual_mlp_count(34, 3, 1024, 4)
    # Drover et al.: 14 joints (28 inputs), G 4 blocks -> 14 depth offsets, D 3 blocks -> 2 classes
    assert _count(M.drover_generator(14), _x(2, 14, 2))[0] == _residual_mlp_count(28, 14, 1024, 4)
    assert _count(M.drover_discriminator(), _x(2, 14, 2))[0] == _residual_mlp_count(28, 2, 1024, 3)


def test_camerapose_counts():
    # refinement: [J, 3] in, [J, 2] out, width 512, 2 blocks
    assert _count(M.refine_net(), _x(2, 17, 3))[0] == _residual_mlp_count(51, 34, 512, 2)
    # camera branch on 2D input: 7 outputs (fx, fy, cx, cy, t3D)
    assert _count(M.camera_branch(), _x(2, 17, 2))[0] == _residual_mlp_count(34, 7, 512, 2)


def test_temporal_count_matches_videopose3d():
    # expand conv 3*34*1024 (no bias) + BN; 4 x (3-tap conv + BN + 1x1 conv + BN); shrink with bias
    c, j = 1024, 17
    expected = 3 * 2 * j * c + 2 * c + 4 * (3 * c * c + 2 * c + c * c + 2 * c) + (c + 1) * 3 * j
    n, _ = _count(M.temporal_lifter(j), _x(1, 243, j, 2))
    assert n == expected == 16_952_371  # VideoPose3D README: 16.95M for 243 frames


def test_poseaug_counts():
    bones = tuple((0, i) for i in range(1, 16))  # 16 joints, 15 bones; topology irrelevant here
    w, z, J, B, K = 256, 48, 16, 15, 9

    def mlp(d_in, d_out):  # 5 x (dense no bias + BN) + output dense
        return d_in * w + 2 * w + 4 * (w * w + 2 * w) + (w + 1) * d_out

    expected = mlp(3 * J + z, 3 * B) + mlp(3 * J + B + z, K) + mlp(3 * J + z, 3) + mlp(3 * J + z, 3)
    gen = M.poseaug_generator(bones, num_bone_classes=K)
    assert _count(gen, _x(2, J, 3))[0] == expected
    # 2D discriminator: 32->100, 4 x 100->100, 100->1 (all with bias)
    assert _count(M.poseaug_discriminator_2d(), _x(2, 16, 2))[0] == 33 * 100 + 4 * 101 * 100 + 101
    # KCS path: 225->256, 256->256, 256->256, 256->100, 100->1; five parts
    path = 226 * 256 + 2 * 257 * 256 + 257 * 100 + 101
    assert _count(M.part_kcs_discriminator(), _x(2, 5, 15, 15))[0] == 5 * path


# ---------------------------------------------------------------------------------------------
# behaviour (tiny widths)
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_lifter():
    model = M.martinez_lifter(5, 4, width=16, num_blocks=1, dropout=0.5)
    variables = model.init(KEY, jnp.zeros((2, 5, 2)))
    return model, variables


def test_lifter_leading_axes_modes_and_jit(tiny_lifter):
    model, variables = tiny_lifter
    x = jax.random.normal(jax.random.key(1), (2, 3, 5, 2))
    out, stats = model.apply(variables, x, train=False)  # eager
    assert out.shape == (2, 3, 4, 3)
    assert stats is variables["batch_stats"]
    np.testing.assert_array_equal(model.bind_eval(variables)(x), out)  # the inference shortcut
    # leading axes are batch axes: eval mode equals the flat evaluation; jit equals eager
    flat, _ = _jit_apply(model)(variables, x.reshape(6, 5, 2))
    np.testing.assert_allclose(out.reshape(6, 4, 3), flat, rtol=1e-5, atol=1e-6)
    # training mode: dropout needs a key, changes with it, updates the running statistics
    train = _jit_apply(model, train=True)
    a, new_stats = train(variables, x, key=jax.random.key(2))
    b, _ = train(variables, x, key=jax.random.key(3))
    assert not np.allclose(a, b)
    changed = jax.tree_util.tree_map(
        lambda p, q: bool(np.any(p != q)), new_stats, variables["batch_stats"]
    )
    assert all(jax.tree_util.tree_leaves(changed))


def test_lifter_rejects_bad_input(tiny_lifter):
    model, variables = tiny_lifter
    with pytest.raises(ValueError):
        model.apply(variables, jnp.zeros((2, 5, 3)), train=False)  # wrong channel count
    with pytest.raises(ValueError, match="axis_name"):
        M.Model(object()).apply(variables, jnp.zeros((2, 5, 2)), train=False, axis_name="b")


def test_refine_net_identity_at_init_and_shape_check():
    model = M.refine_net(width=16, num_blocks=1)
    x = jax.random.normal(KEY, (4, 6, 3))
    variables = model.init(KEY, x)
    out, _ = _jit_apply(model)(variables, x)
    np.testing.assert_allclose(out, x[..., :2], atol=1e-6)
    with pytest.raises(ValueError, match=r"\[\.\.\., J, 3\]"):
        model.apply(variables, x[..., :2], train=False)


def test_camera_branch_prior_and_positive_focal():
    model = M.camera_branch(width=16, num_blocks=1, focal_prior=(2.0, 3.0))
    x2d = jax.random.normal(KEY, (4, 6, 2))
    pose = jax.random.normal(KEY, (4, 6, 3))
    variables = model.init(KEY, x2d, pose)
    apply = _jit_apply(model)
    out, _ = apply(variables, x2d, pose)
    np.testing.assert_allclose(out["focal"], np.tile([2.0, 3.0], (4, 1)), rtol=1e-6)
    np.testing.assert_allclose(out["translation"], np.tile([0.0, 0.0, 5.0], (4, 1)), rtol=1e-6)
    assert out["center"].shape == (4, 2)
    # huge random output weights: focal lengths and depth stay positive and finite
    params = jax.tree_util.tree_map(
        lambda p: 50.0 * jax.random.normal(jax.random.key(5), p.shape), variables["params"]
    )
    out, _ = apply({**variables, "params": params}, 100 * x2d, 100 * pose)
    assert np.all(np.asarray(out["focal"]) > 0) and np.all(np.isfinite(out["focal"]))
    assert np.all(np.asarray(out["translation"][..., 2]) >= 0)


def test_temporal_receptive_field_and_locality():
    model = M.temporal_lifter(4, filter_widths=(3, 3), channels=8, dropout=0.0)
    assert model.module.receptive_field == 9
    x = jax.random.normal(KEY, (2, 12, 4, 2))
    variables = model.init(KEY, x)
    apply = _jit_apply(model)
    out, _ = apply(variables, x)
    assert out.shape == (2, 12 - 9 + 1, 4, 3)
    # output frame t depends on input frames t .. t+8 only
    x2 = x.at[:, 11].add(10.0)
    out2, _ = apply(variables, x2)
    np.testing.assert_allclose(out2[:, :3], out[:, :3], atol=1e-5)
    assert not np.allclose(out2[:, 3], out[:, 3])
    with pytest.raises(ValueError, match="frames"):
        model.apply(variables, x[:, :5], train=False)


def test_poseaug_generator_from_layout():
    from jpose import skeleton

    layout = skeleton.H36M16
    gen = M.poseaug_generator(layout, width=16, num_stages=1)
    pose = jax.random.normal(KEY, (3, layout.num_joints, 3))
    variables = gen.init(KEY, pose)
    apply = _jit_apply(gen)
    a, _ = apply(variables, pose, key=jax.random.key(1))
    b, _ = apply(variables, pose, key=jax.random.key(2))
    assert a["bone_angle"].shape == (3, layout.num_bones, 3)
    assert a["bone_length"].shape == (3, layout.num_bone_classes)
    assert a["rotation"].shape == a["translation"].shape == (3, 3)
    assert not np.allclose(a["rotation"], b["rotation"])  # fresh noise per key
    # translation-invariant input (the generator root-centres the pose)
    c, _ = apply(variables, pose + 7.0, key=jax.random.key(1))
    np.testing.assert_allclose(c["bone_angle"], a["bone_angle"], rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="num_bone_classes"):
        M.poseaug_generator(((0, 1),))


def test_kcs_discriminator_on_part_kcs():
    from jpose.kinematics import part_kcs_matrices
    from jpose.skeleton import H36M17

    parts = ("kcs_torso", "kcs_left_arm")
    bones = jax.random.normal(KEY, (2, 17, 3))  # poses; the discriminator's kcs_fn maps them

    def kcs_fn(p):
        return part_kcs_matrices(p, layout=H36M17, parts=parts)

    disc = M.part_kcs_discriminator(num_parts=2, kcs_fn=kcs_fn, width=8, bottleneck=4)
    variables = disc.init(KEY, bones)
    apply = _jit_apply(disc, train=True)
    logits, _ = apply(variables, bones)
    assert logits.shape == (2, 2)
    # bone-length invariance (unit-normalised KCS)
    logits2, _ = apply(variables, bones * 3.0)
    np.testing.assert_allclose(logits2, logits, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="KCS"):
        M.part_kcs_discriminator(num_parts=3).init(KEY, jnp.zeros((2, 2, 4, 4)))


def test_max_norm_constraint():
    params = {"dense": {"kernel": jnp.array([[3.0, 0.1], [4.0, 0.0]]), "bias": jnp.array([9.0])}}
    out = M.max_norm_constraint(params, max_norm=1.0)
    np.testing.assert_allclose(out["dense"]["kernel"], [[0.6, 0.1], [0.8, 0.0]], rtol=1e-6)
    np.testing.assert_allclose(out["dense"]["bias"], [9.0])
    assert math.isclose(float(jnp.linalg.norm(out["dense"]["kernel"][:, 0])), 1.0, rel_tol=1e-6)


@pytest.mark.parametrize(
    ("rate", "bits", "keep"), [(0.5, 1, 0.5), (0.25, 2, 0.75), (0.1, 8, 230 / 256)]
)
def test_byte_dropout_keeps_the_quantised_fraction_unbiased(rate, bits, keep):
    from jpose.models.core import _dropout_bits

    assert _dropout_bits(1 - rate)[0] == bits
    layer = M.ByteDropout(rate)
    x = jnp.ones((64, 1000))
    y = layer.apply({}, x, deterministic=False, rngs={"dropout": jax.random.key(0)})
    kept = np.asarray(y != 0)
    assert abs(kept.mean() - keep) < 0.01  # 64k Bernoulli draws: std ~0.002
    np.testing.assert_allclose(np.asarray(y)[kept], 1 / keep, rtol=1e-6)  # inverted scaling
    assert abs(float(y.mean()) - 1.0) < 0.02  # unbiased
    assert abs(kept[:, :500].mean() - kept[:, 500:].mean()) < 0.02  # no positional pattern
    same = layer.apply({}, x, deterministic=False, rngs={"dropout": jax.random.key(0)})
    other = layer.apply({}, x, deterministic=False, rngs={"dropout": jax.random.key(1)})
    assert np.array_equal(y, same) and not np.array_equal(y, other)
    assert np.array_equal(layer.apply({}, x, deterministic=True), x)


def test_byte_dropout_edge_rates():
    x = jnp.arange(10.0)
    rngs = {"dropout": jax.random.key(0)}
    assert np.array_equal(M.ByteDropout(0.0).apply({}, x, deterministic=False, rngs=rngs), x)
    assert not np.any(M.ByteDropout(1.0).apply({}, x, deterministic=False, rngs=rngs))
    with pytest.raises(ValueError, match="dropout rate must be in"):
        M.ByteDropout(1.5).apply({}, x, deterministic=False, rngs=rngs)
