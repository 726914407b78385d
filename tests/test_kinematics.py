"""Tests of jpose.kinematics against numpy loops, with gradients and degenerate inputs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from jpose import kinematics as kin
from jpose.skeleton import H36M16, H36M17, KCS_PARTS

RNG = np.random.default_rng(1)
LAY = H36M17


def _pose(*batch):
    return RNG.normal(scale=0.3, size=(*batch, 17, 3)).astype(np.float32)


def test_bones_lengths_directions_against_numpy():
    x = _pose(4)
    b = np.asarray(kin.bone_vectors(x, layout=LAY))
    ref = np.stack([x[:, c] - x[:, LAY.parents[c]] for c in range(1, 17)], axis=1)
    np.testing.assert_allclose(b, ref, atol=1e-6)
    np.testing.assert_allclose(
        kin.bone_lengths(x, layout="h36m17"), np.linalg.norm(ref, axis=-1), rtol=1e-5
    )
    d = np.asarray(kin.bone_directions(x, layout=LAY))
    np.testing.assert_allclose(d, ref / np.linalg.norm(ref, axis=-1, keepdims=True), atol=1e-5)
    np.testing.assert_allclose(
        kin.sum_bone_lengths(x, layout=LAY), np.linalg.norm(ref, axis=-1).sum(-1), rtol=1e-5
    )


def test_forward_kinematics_inverts_bones():
    x = _pose(2, 3)
    b = kin.bone_vectors(x, layout=LAY)
    np.testing.assert_allclose(kin.pose_from_bones(b, layout=LAY), x - x[..., :1, :], atol=1e-5)
    np.testing.assert_allclose(kin.pose_from_bones(b, layout=LAY, root=x[..., 0, :]), x, atol=1e-5)
    with pytest.raises(ValueError, match=r"\[\.\.\., 16, D\]"):
        kin.pose_from_bones(np.zeros((15, 3)), layout=LAY)


def test_kcs_against_numpy_and_translation_invariance():
    x = _pose(3)
    psi = np.asarray(kin.kcs_matrix(x, layout=LAY))
    bmat = np.stack([x[:, c] - x[:, LAY.parents[c]] for c in range(1, 17)], axis=-1)  # [N,3,B]
    np.testing.assert_allclose(psi, np.einsum("ndk,ndl->nkl", bmat, bmat), atol=1e-5)
    shifted = x + RNG.normal(size=(3, 1, 3)).astype(np.float32) * 5.0
    np.testing.assert_allclose(kin.kcs_matrix(shifted, layout=LAY), psi, atol=1e-4)
    # part-aware KCS: rows/columns of bones outside the part are zero, inside unchanged
    part = kin.kcs_matrix(x, layout=LAY, bone_set="kcs_left_arm")
    inside = LAY.bone_set_mask("kcs_left_arm")
    np.testing.assert_allclose(np.asarray(part)[:, ~inside], 0.0)
    np.testing.assert_allclose(
        np.asarray(part)[:, inside][:, :, inside], psi[:, inside][:, :, inside], atol=1e-6
    )
    # stacked part-aware KCS equals one kcs_matrix per part
    stacked = kin.part_kcs_matrices(x, layout=LAY)
    for i, name in enumerate(KCS_PARTS):
        ref = kin.kcs_matrix(x, layout=LAY, bone_set=name, unit_bones=True)
        np.testing.assert_allclose(stacked[:, i], ref, atol=1e-6)
    # unit bones: diagonal is one
    unit = kin.kcs_matrix(x, layout=LAY, unit_bones=True)
    np.testing.assert_allclose(np.diagonal(unit, axis1=-2, axis2=-1), 1.0, atol=1e-5)


def test_ratios_and_rescale():
    x = _pose(2)
    canon = np.asarray(kin.bone_lengths(x[0], layout=LAY))
    np.testing.assert_allclose(
        kin.bone_length_ratios(x[0] * 1.7, canon, layout=LAY), 1.7, rtol=1e-5
    )
    y = kin.rescale_to_sum_of_bone_lengths(x, 4.2, layout=LAY)
    np.testing.assert_allclose(kin.sum_bone_lengths(y, layout=LAY), 4.2, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(y)[:, 0], x[:, 0], atol=1e-6)  # root kept
    with pytest.raises(ValueError, match="canonical_lengths"):
        kin.bone_length_ratios(x, np.ones(15), layout=LAY)


def test_degenerate_poses_finite_values_and_grads():
    zero = jnp.zeros((17, 3))  # all joints coincident: every bone has zero length

    def loss(p):
        return (
            kin.bone_lengths(p, layout=LAY).sum()
            + kin.bone_directions(p, layout=LAY).sum()
            + kin.kcs_matrix(p, layout=LAY, unit_bones=True).sum()
            + kin.rescale_to_sum_of_bone_lengths(p, 2.0, layout=LAY).sum()
            + kin.bone_length_ratios(p, jnp.zeros(16), layout=LAY).sum()
        )

    val, grad = jax.value_and_grad(loss)(zero)
    assert np.isfinite(val) and np.all(np.isfinite(grad))


def test_gradients_jit_vmap():
    with jax.enable_x64(True):
        x = jnp.asarray(_pose(2).astype(np.float64))
        for fn in (
            lambda p: kin.bone_lengths(p, layout=LAY),
            lambda p: kin.bone_directions(p, layout=LAY),
            lambda p: kin.kcs_matrix(p, layout=LAY, bone_set="kcs_torso"),
            lambda p: kin.rescale_to_sum_of_bone_lengths(p, 3.0, layout=LAY),
        ):
            check_grads(fn, (x,), order=1, modes=("rev",), eps=1e-4, atol=1e-4, rtol=1e-4)
    x32 = _pose(3)
    f = jax.jit(lambda p: kin.kcs_matrix(p, layout=H36M16, unit_bones=True))
    y = _pose(3)[:, :16]
    np.testing.assert_allclose(f(y), kin.kcs_matrix(y, layout=H36M16, unit_bones=True), atol=1e-6)
    vm = jax.vmap(lambda p: kin.bone_lengths(p, layout=LAY))(x32)
    loop = np.stack([kin.bone_lengths(p, layout=LAY) for p in x32])
    np.testing.assert_allclose(vm, loop, atol=1e-6)
