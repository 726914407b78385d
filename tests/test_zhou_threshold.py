"""Zhou et al.'s visibility threshold reaches every place the 2D scale ``s`` is computed: the
network's input normalisation (``jpose.models.depth.predict_depth`` and the 3D readouts), the
training targets' ``s`` (``depth_batch_arrays``) and the served pipeline."""

import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest

from experiments import zhou
from experiments.configs import zhou as zhou_config
from jpose import skeleton
from jpose.data import SyntheticConfig, make_synthetic
from jpose.models import depth as dm

LAY = skeleton.H36M17


@pytest.fixture(scope="module")
def partly_visible():
    sc = SyntheticConfig(
        num_people={"train_3d": 2, "train_2d": 1, "test": 1, "test_2d_mix": 1}, poses_per_person=3
    )
    ds = make_synthetic(seed=5, config=sc)["train_3d"]
    conf = np.random.default_rng(0).choice([0.3, 0.7, 1.0], size=ds.confidence.shape)
    conf[:, LAY.root] = 1.0
    return dataclasses.replace(ds, confidence=conf.astype(np.float32))


def _scale(x, c, threshold):  # numpy: RMS root distance of the joints with c > threshold
    d2 = ((x - x[:, LAY.root : LAY.root + 1]) ** 2).sum(-1)
    vis = c > threshold
    return np.sqrt((vis * d2).sum(-1) / np.maximum(vis.sum(-1), 1)) + 1e-6


def _square(u):  # a depth "network" whose output is not linear in its input's scale
    return u[..., :1] ** 2


@pytest.mark.parametrize("threshold", [0.5, 0.8])
def test_input_scale_and_target_scale_use_the_same_threshold(partly_visible, threshold):
    ds = partly_visible
    x, c = ds.pose2d_norm.astype(np.float32), ds.confidence
    want_s = _scale(x.astype(np.float64), c, threshold)
    arrays = dm.depth_batch_arrays(ds, with_depth=False, threshold=threshold)
    np.testing.assert_allclose(arrays["s"], want_s, rtol=1e-5)
    depth, s = dm.predict_depth(_square, jnp.asarray(x), jnp.asarray(c), threshold=threshold)
    np.testing.assert_allclose(s, arrays["s"], rtol=1e-6)
    # depth = (u_x^2 - u_x,root^2) * s with u = (x - x_root) / s: (x - x_root)_x^2 / s
    dx = x[..., 0] - x[:, LAY.root : LAY.root + 1, 0]
    np.testing.assert_allclose(depth, dx**2 / want_s[:, None], rtol=1e-4, atol=1e-7)


def test_readouts_take_the_threshold(partly_visible):
    ds = partly_visible
    x, c = jnp.asarray(ds.pose2d_norm), jnp.asarray(ds.confidence)
    for t in (0.5, 0.8):
        depth, s = (np.asarray(a) for a in dm.predict_depth(_square, x, c, threshold=t))
        # normalized_pose: root-relative [x, y, depth] in units of s
        want = np.concatenate([np.asarray(x - x[:, LAY.root : LAY.root + 1]), depth[..., None]], -1)
        got = dm.normalized_pose(_square, x, c, threshold=t)
        np.testing.assert_allclose(got, want / s[:, None, None], rtol=1e-5, atol=1e-6)
        # perspective_pose: Z = Z_r (1 + depth / f), [X, Y] = (x - c) / f * Z
        f, ctr, zr = np.float32(1.5), np.float32(0.1), np.float32(4.0)
        packed = jnp.concatenate(
            [x, jnp.full(x.shape[:-1] + (4,), 0.0), jnp.full(x.shape[:-1] + (1,), zr)], -1
        )
        packed = packed.at[..., 2:4].set(f).at[..., 4:6].set(ctr)
        z = zr * (1.0 + depth / f)
        want = np.concatenate([(np.asarray(x) - ctr) / f * z[..., None], z[..., None]], -1)
        got = dm.perspective_pose(_square, packed, c, threshold=t)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("recorded", [0.8, None])
def test_served_pipeline_uses_the_recorded_threshold(partly_visible, monkeypatch, recorded):
    import jax

    from jpose.inference import pipelines

    config = zhou_config.get_config("smoke")
    config.method.visibility_threshold = 0.8  # what the run says; the run's model.json decides
    info = {"avg_sum_length": 4.0, "normalization": "vp", "layout": LAY.name}
    if recorded is not None:  # runs before the threshold was recorded trained with 0.5
        info["visibility_threshold"] = recorded
    spec = zhou.pipeline(config, info)
    net = pipelines.build_network(spec["networks"]["depth"])
    x, c = jnp.asarray(partly_visible.pose2d_norm), jnp.asarray(partly_visible.confidence)
    variables = net.init(jax.random.key(0), x[:2])
    # biases and larger weights: an output that is not proportional to the input's scale
    params = jax.tree_util.tree_map(lambda a: 3.0 * a + 0.3, variables["params"])
    variables = {**variables, "params": params}
    monkeypatch.setattr(pipelines, "restore_variables",
                        lambda *a, **k: ({"depth": variables}, {"stage3": 1}))  # fmt: skip
    predictor = pipelines.load_pipeline("unused", spec, config={})
    threshold = 0.5 if recorded is None else recorded
    want = dm.rescaled_pose(lambda u: net.apply(variables, u, train=False)[0], x, c,
                            avg_sum_length=4.0, threshold=threshold)  # fmt: skip
    np.testing.assert_allclose(predictor.predict(x, c)["pose3d"], want, rtol=1e-5, atol=1e-6)
    other = dm.rescaled_pose(lambda u: net.apply(variables, u, train=False)[0], x, c,
                             avg_sum_length=4.0, threshold=1.3 - threshold)  # fmt: skip
    assert not np.allclose(want, other)  # the check above can tell the thresholds apart
