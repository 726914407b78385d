"""Tests for jpose.adversarial: LS-GAN and standard GAN losses, fake-sample history buffer."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from jpose import adversarial as adv

RNG = np.random.default_rng(0)


def _check_grads(fn, args, **kwargs):
    """jax.test_util.check_grads on the jitted function (one compilation instead of op-by-op)."""
    check_grads(jax.jit(fn), args, **kwargs)


# ------------------------------------------------------------------------------------ LS-GAN


def test_lsgan_hand_values():
    # real outputs [1, 3] (2 parts), fake [0, 2]:
    # D: 0.5 * mean((0, 2)^2) + 0.5 * mean((0, 2)^2) = 0.5 * 2 + 0.5 * 2 = 2
    real = jnp.array([[1.0, 3.0]])
    fake = jnp.array([[0.0, 2.0]])
    np.testing.assert_allclose(adv.lsgan_discriminator_loss(real, fake, part_axis=-1), [2.0])
    # G: 0.5 * mean((-1)^2, 1^2) = 0.5
    np.testing.assert_allclose(adv.lsgan_generator_loss(fake, part_axis=-1), [0.5])
    # targets as arguments: real target 0.5, fake target -1:
    # 0.5 * mean(0.25, 6.25) + 0.5 * mean(1, 9) = 1.625 + 2.5
    got = adv.lsgan_discriminator_loss(real, fake, real_target=0.5, fake_target=-1.0, part_axis=-1)
    np.testing.assert_allclose(got, [4.125])
    # single-output discriminator
    np.testing.assert_allclose(adv.lsgan_loss(jnp.array([3.0]), target=1.0), [2.0])


def test_lsgan_discriminator_minimal_at_targets():
    def loss(r, f):
        return adv.lsgan_discriminator_loss(r, f).sum()

    ones, zeros = jnp.ones((4, 5)), jnp.zeros((4, 5))
    assert float(loss(ones, zeros)) == 0.0
    gr, gf = jax.grad(loss, argnums=(0, 1))(ones, zeros)
    assert np.all(gr == 0) and np.all(gf == 0)
    for _ in range(5):
        dr, df = RNG.normal(size=(2, 4, 5)) * 0.1
        assert float(loss(ones + dr, zeros + df)) > 0.0


def test_lsgan_per_example_shape_and_grads():
    r = jnp.asarray(RNG.normal(size=(3, 5)), jnp.float32)
    f = jnp.asarray(RNG.normal(size=(3, 5)), jnp.float32)
    assert adv.lsgan_discriminator_loss(r, f, part_axis=-1).shape == (3,)
    assert adv.lsgan_discriminator_loss(r, f).shape == (3, 5)  # elementwise by default
    _check_grads(lambda a, b: adv.lsgan_discriminator_loss(a, b), (r, f), order=2, modes=("rev",))
    _check_grads(lambda a: adv.lsgan_generator_loss(a), (f,), order=1, modes=("rev",))
    big = jnp.array([[1e4, -1e4]])
    v, g = jax.value_and_grad(lambda a: adv.lsgan_discriminator_loss(a, a).sum())(big)
    assert np.isfinite(v) and np.all(np.isfinite(g))


# ------------------------------------------------------------------------------ standard GAN


def _np_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def test_gan_losses_match_numpy_definition():
    r = RNG.normal(size=7).astype(np.float32) * 3
    f = RNG.normal(size=7).astype(np.float32) * 3
    # Drover eq. 4: D maximises log D(r) + log(1 - D(p)).
    ref_d = -(np.log(_np_sigmoid(r)) + np.log(1 - _np_sigmoid(f)))
    np.testing.assert_allclose(adv.gan_discriminator_loss(r, f), ref_d, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        adv.gan_generator_loss(f), np.log(1 - _np_sigmoid(f)), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        adv.gan_generator_loss_non_saturating(f), -np.log(_np_sigmoid(f)), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(adv.gan_real_loss(0.0), np.log(2.0), rtol=1e-6)


def test_gan_losses_extreme_logits_finite():
    x = jnp.array([1e4, -1e4, 0.0])
    for fn in (
        adv.gan_real_loss,
        adv.gan_fake_loss,
        adv.gan_generator_loss,
        adv.gan_generator_loss_non_saturating,
    ):
        v, g = jax.value_and_grad(lambda a, fn=fn: fn(a).sum())(x)
        assert np.isfinite(v) and np.all(np.isfinite(g)), fn.__name__
    # -log sigmoid(1e4) = 0, -log sigmoid(-1e4) = 1e4
    np.testing.assert_allclose(adv.gan_real_loss(x), [0.0, 1e4, np.log(2)], rtol=1e-6)
    v, g = jax.value_and_grad(lambda a, b: adv.gan_discriminator_loss(a, b).sum(), (0, 1))(x, x)
    assert np.isfinite(v) and all(np.all(np.isfinite(gi)) for gi in g)


def test_gan_grads_and_generator_direction():
    r = jnp.asarray(RNG.normal(size=4), jnp.float32)
    f = jnp.asarray(RNG.normal(size=4), jnp.float32)
    _check_grads(lambda a, b: adv.gan_discriminator_loss(a, b), (r, f), order=2, modes=("rev",))
    # Both generator losses push the fake logit up (negative gradient).
    g_sat = jax.grad(lambda a: adv.gan_generator_loss(a).sum())(f)
    g_ns = jax.grad(lambda a: adv.gan_generator_loss_non_saturating(a).sum())(f)
    assert np.all(np.asarray(g_sat) < 0) and np.all(np.asarray(g_ns) < 0)
    # Saturation: at a confidently rejected fake the minimax gradient vanishes, not the other.
    assert abs(float(jax.grad(lambda a: adv.gan_generator_loss(a))(-30.0))) < 1e-10
    assert abs(float(jax.grad(lambda a: adv.gan_generator_loss_non_saturating(a))(-30.0))) > 0.99


def test_losses_jit_and_vmap():
    r = jnp.asarray(RNG.normal(size=(3, 5)), jnp.float32)
    f = jnp.asarray(RNG.normal(size=(3, 5)), jnp.float32)

    def both(a, b):
        lsgan = adv.lsgan_discriminator_loss(a, b, part_axis=-1)
        return lsgan + adv.gan_discriminator_loss(a, b).sum(-1)

    fn = jax.jit(both)
    eager = both(r, f)
    np.testing.assert_allclose(fn(r, f), eager, rtol=1e-6)
    looped = np.stack([fn(r[i], f[i]) for i in range(3)])
    np.testing.assert_allclose(jax.vmap(fn)(r, f), looped, rtol=1e-6)


# ------------------------------------------------------------------------------- history


def _items(start, n):
    vals = jnp.arange(start, start + n, dtype=jnp.float32)
    return {"pose": vals[:, None, None] * jnp.ones((n, 2, 3)), "id": vals.astype(jnp.int32)}


def test_history_push_fills_in_order_then_replaces():
    h = adv.history_init({"pose": jnp.zeros((2, 3)), "id": jnp.zeros((), jnp.int32)}, capacity=4)
    assert h.capacity == 4 and int(h.size) == 0
    h = adv.history_push(h, _items(1, 3), jax.random.key(0))
    assert int(h.size) == 3
    np.testing.assert_array_equal(h.items["id"], [1, 2, 3, 0])
    h = adv.history_push(h, _items(10, 3), jax.random.key(1))
    assert int(h.size) == 4
    ids = np.asarray(h.items["id"])
    assert ids[3] == 10  # the first overflow sample fills the last empty slot
    assert set(ids.tolist()) <= {1, 2, 3, 10, 11, 12} and 12 in ids  # last push always stored
    np.testing.assert_array_equal(h.items["pose"][:, 0, 0], ids.astype(np.float32))


def test_history_sample_draws_only_filled_slots():
    h = adv.history_init({"pose": jnp.zeros((2, 3)), "id": jnp.zeros((), jnp.int32)}, capacity=8)
    h = adv.history_push(h, _items(1, 3), jax.random.key(0))
    s = adv.history_sample(h, jax.random.key(2), num=64)
    assert s["pose"].shape == (64, 2, 3)
    assert set(np.asarray(s["id"]).tolist()) == {1, 2, 3}


def test_history_query_semantics():
    h = adv.history_init({"pose": jnp.zeros((2, 3)), "id": jnp.zeros((), jnp.int32)}, capacity=3)
    # Not full: everything is stored and returned unchanged.
    h, out = adv.history_query(h, _items(1, 3), jax.random.key(0))
    np.testing.assert_array_equal(out["id"], [1, 2, 3])
    # Full, never swap: returns the inputs, pool unchanged.
    h0, out = adv.history_query(h, _items(10, 2), jax.random.key(1), swap_probability=0.0)
    np.testing.assert_array_equal(out["id"], [10, 11])
    np.testing.assert_array_equal(h0.items["id"], [1, 2, 3])
    # Full, always swap: returns pooled samples, the new ones take their slots.
    h1, out = adv.history_query(h, _items(10, 2), jax.random.key(1), swap_probability=1.0)
    returned = np.asarray(out["id"]).tolist()
    pool = np.asarray(h1.items["id"]).tolist()
    assert 11 in pool  # the last input always takes a slot
    assert sorted(pool + returned) == [1, 2, 3, 10, 11]  # nothing lost or duplicated
    np.testing.assert_array_equal(np.asarray(h1.items["pose"])[:, 0, 0], pool)


def test_history_query_jit_matches_eager():
    h = adv.history_init({"pose": jnp.zeros((2, 3)), "id": jnp.zeros((), jnp.int32)}, capacity=4)
    h, _ = adv.history_query(h, _items(1, 4), jax.random.key(0))
    q = jax.jit(adv.history_query)
    h_j, out_j = q(h, _items(20, 5), jax.random.key(3))
    h_e, out_e = adv.history_query(h, _items(20, 5), jax.random.key(3))
    np.testing.assert_array_equal(out_j["id"], out_e["id"])
    np.testing.assert_array_equal(h_j.items["id"], h_e.items["id"])
    # Conservation: the multiset of pool + returned equals old pool + inputs.
    before = sorted([1, 2, 3, 4] + list(range(20, 25)))
    after = sorted(np.asarray(h_j.items["id"]).tolist() + np.asarray(out_j["id"]).tolist())
    assert before == after


def test_history_shape_errors():
    h = adv.history_init(jnp.zeros((2, 3)), capacity=4)
    with pytest.raises(ValueError, match="item shape"):
        adv.history_push(h, jnp.zeros((5, 2, 2)), jax.random.key(0))
    with pytest.raises(ValueError, match="capacity"):
        adv.history_init(jnp.zeros(3), capacity=0)
