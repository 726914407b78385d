"""Issue 17: the supervised lifter's recipe (Martinez et al. ICCV 2017 Sec. 3.2).

The cause of the under-fitting baseline: targets in metres, no standardisation and a He-initialised
output layer made the untrained lifter predict poses metres away from the data, and the loss on
``pred - pred[root]`` coupled every joint's error to the root output. These tests pin the fix:
standardised inputs / outputs, the start at the training mean pose, and a per-joint loss.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import baseline, common
from experiments.configs import baseline as baseline_config
from jpose import losses, models


def _poses(n=64, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.normal(0.0, 0.3, (n, 17, 3)).astype(np.float32)
    y -= y[:, :1]
    x = rng.normal(0.1, 0.2, (n, 17, 2)).astype(np.float32)
    return x, y


def test_coordinate_stats_against_numpy():
    x, y = _poses()
    mean, std = models.coordinate_stats(y)
    flat = y.reshape(len(y), -1).astype(np.float64)
    np.testing.assert_allclose(mean, flat.mean(0), atol=1e-7)
    want = flat.std(0)
    want[:3] = 1.0  # the root of root-relative targets never moves: std 1, not ~0
    np.testing.assert_allclose(std, want, rtol=1e-6)
    assert isinstance(mean, tuple) and len(mean) == 51 and hash(std)
    with pytest.raises(ValueError, match="NaN"):
        models.coordinate_stats(np.full((4, 17, 3), np.nan))
    with pytest.raises(ValueError, match="N > 0"):
        models.coordinate_stats(np.zeros((0, 17, 3)))


def test_standardized_lifter_starts_at_the_mean_pose_and_keeps_metres():
    x, y = _poses()
    in_stats, out_stats = models.coordinate_stats(x), models.coordinate_stats(y)
    net = models.martinez_lifter(17, width=32, num_blocks=1, zero_init_output=True,
                                 input_stats=in_stats, output_stats=out_stats)  # fmt: skip
    variables = net.init(jax.random.key(0), jnp.zeros((2, 17, 2)))
    out = net.apply(variables, jnp.asarray(x), train=False)[0]
    np.testing.assert_allclose(out, np.broadcast_to(y.mean(0), y.shape), atol=1e-6)
    # The interface stays in the caller's units: z-scoring is internal and exactly inverted.
    other = models.martinez_lifter(17, width=32, num_blocks=1, input_stats=in_stats,
                                   output_stats=out_stats)  # fmt: skip
    v = other.init(jax.random.key(1), jnp.zeros((2, 17, 2)))
    z = models.martinez_lifter(17, width=32, num_blocks=1).apply(
        v, (jnp.asarray(x) - jnp.asarray(in_stats[0]).reshape(17, 2))
        / jnp.asarray(in_stats[1]).reshape(17, 2), train=False)[0]  # fmt: skip
    got = other.apply(v, jnp.asarray(x), train=False)[0]
    want = z * jnp.asarray(out_stats[1]).reshape(17, 3) + jnp.asarray(out_stats[0]).reshape(17, 3)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="output_stats"):
        bad = models.martinez_lifter(17, width=8, num_blocks=1, output_stats=((0.0,), (1.0,)))
        bad.init(jax.random.key(0), jnp.zeros((2, 17, 2)))


def test_martinez_loss_reference_and_root_gradient():
    x, y = _poses(8)
    pred = y + np.random.default_rng(3).normal(0, 0.05, y.shape).astype(np.float32)
    std = np.asarray(models.coordinate_stats(y)[1]).reshape(17, 3)
    want = (((pred - y) / std) ** 2).mean(axis=(1, 2))
    np.testing.assert_allclose(losses.martinez_loss(pred, y, std=std.ravel()), want, rtol=1e-5)
    np.testing.assert_allclose(losses.martinez_loss(pred, y), ((pred - y) ** 2).mean((1, 2)),
                               rtol=1e-5)  # fmt: skip
    # The root output is trained on its own error only, not on the sum of every joint's error
    # (which is what a loss on pred - pred[root] sends into it).
    g = jax.grad(lambda p: losses.martinez_loss(p, y).sum())(jnp.asarray(pred))
    np.testing.assert_allclose(g[:, 0], 2.0 * (pred[:, 0] - y[:, 0]) / 51.0, rtol=1e-5)


def test_untrained_baseline_predicts_near_the_data():
    """On the code before issue 17 the untrained baseline predicted poses about a metre away from
    every target (He-initialised output in metres); the standardised, zero-initialised lifter
    starts at the training mean pose, a few centimetres per coordinate from the data."""
    config = baseline_config.get_config("smoke")
    datasets = common.load_datasets(config.data)
    train = datasets["train_3d"]
    stats = baseline.data_stats(train)
    model = baseline.build_model(config, num_joints=17, stats=stats)
    variables = model.init(jax.random.key(0), jnp.zeros((2, 17, 2)))
    pred = np.asarray(model.apply(variables, jnp.asarray(train.pose2d_norm), train=False)[0])
    target = train.pose3d_root_relative
    err_m = np.linalg.norm(pred - target, axis=-1).mean()
    spread_m = np.linalg.norm(target - target.mean(0), axis=-1).mean()
    assert err_m <= spread_m + 1e-4, (err_m, spread_m)
    assert err_m < 0.5
