"""Issue 18.10: Li et al.'s confidence weighting (eqs. 2 and 5) fed by the detection-noise model
shared with CameraPose (``jpose.augment.detection_noise``), with the weighting ablation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import li
from experiments.configs import camerapose as cp_config
from experiments.configs import li as li_config
from jpose import augment
from jpose import losses as jl
from jpose import multiview as mv
from jpose.data import SyntheticConfig, make_synthetic
from jpose.data.common import view_groups
from jpose.data.multiview import build_multiview_set


def test_detection_noise_model():
    key = jax.random.key(0)
    x = jax.random.uniform(jax.random.key(1), (4000, 17, 2), minval=-0.5, maxval=0.5)
    c_src = jnp.ones((4000, 17)).at[:, 3].set(0.0)  # joint 3 missing
    noisy, c = augment.detection_noise(key, x, c_src, conf_min=0.05, conf_power=3.0)
    assert noisy.shape == x.shape and c.shape == c_src.shape
    np.testing.assert_array_equal(noisy[:, 3], x[:, 3])  # missing joints untouched, conf 0
    np.testing.assert_array_equal(c[:, 3], 0.0)
    present = np.asarray(c[:, [0, 1, 2, 4]])
    assert present.min() >= 0.05 and present.max() <= 1.0
    assert abs(present.mean() - (1 - 0.95 / 4)) < 0.01  # mean 1 - (1 - conf_min) / (power + 1)
    err = np.linalg.norm(np.asarray(noisy - x), axis=-1)
    lo, hi = np.asarray(c) < 0.5, np.asarray(c) > 0.95
    assert err[lo].mean() > 3 * err[hi].mean()  # low confidence, large error
    again, _ = augment.detection_noise(key, x, c_src, conf_min=0.05, conf_power=3.0)
    np.testing.assert_array_equal(again, noisy)
    # CameraPose calls the same implementation with its config's options: every option is a
    # field of its noise block
    cfg = cp_config.get_config().noise
    assert set(augment.DETECTION_NOISE_OPTIONS) <= set(cfg.keys())


class _Oracle:
    """Branches return the ground truth; keys by name like ``PhaseContext.key_for``."""

    def __init__(self, rel, root):
        self.out = {"lifter": rel, "root": root}

    def apply(self, name, *inputs, **kwargs):
        return self.out[name]

    def key_for(self, name):
        return jax.random.fold_in(jax.random.key(7), len(name))


@pytest.fixture(scope="module")
def mv_batch():
    ds = make_synthetic(seed=0, config=SyntheticConfig(
        num_people={"train_3d": 2, "train_2d": 1, "test": 1, "test_2d_mix": 1},
        poses_per_person=4, views_per_pose=3))["train_3d"]  # fmt: skip
    groups = view_groups(ds, views=[0, 1, 2], keys=("pose_index",))
    mvset = build_multiview_set(ds, group_keys=("pose_index",))
    batch = {"mv": {k: jnp.asarray(v) for k, v in mvset.arrays.items()}}
    gt = jnp.asarray(ds.pose3d_cam[groups])
    root = gt[..., li.ROOT, :]
    return batch, _Oracle(gt - root[..., None, :], root)


def test_li_losses_are_weighted_by_the_simulated_confidences(mv_batch):
    batch, ctx = mv_batch
    opts = li.noise_options(li_config.get_config())
    assert opts is None  # off by default: GT 2D
    cfg = li_config.get_config()
    cfg.noise.enabled = True
    opts = li.noise_options(cfg)
    assert set(opts) == set(augment.DETECTION_NOISE_OPTIONS)
    assert li_config.get_config().stages.train.confidence_weighting is True
    kw = dict(transform_weight=0.0, detection_noise=opts)
    total, m = li.train_loss_fn(ctx, batch, **kw)
    b = batch["mv"]
    noisy, conf = augment.detection_noise(ctx.key_for("detection_noise"), b["pose2d"],
                                          b["confidence"], **opts)  # fmt: skip
    assert 0.6 < float(m["mean_confidence"]) < 0.9  # the confidences are exercised
    glob = ctx.out["lifter"] + ctx.out["root"][..., None, :]

    def eq2(weights):
        per_view = jl.li_reprojection_loss(glob, noisy, weights, focal=b["focal"],
                                           center=b["center"])  # fmt: skip
        pairs = mv.view_pairs(b["pose2d"].shape[-3])
        return float(jnp.mean(per_view[:, pairs[:, 0]] + per_view[:, pairs[:, 1]]))

    np.testing.assert_allclose(float(m["reproj"]), eq2(conf), rtol=1e-5)
    # ablation: weighting off = every present joint weighted 1
    _, m_off = li.train_loss_fn(ctx, batch, confidence_weighting=False, **kw)
    np.testing.assert_allclose(float(m_off["reproj"]), eq2((conf > 0).astype(jnp.float32)),
                               rtol=1e-5)  # fmt: skip
    assert float(m_off["mean_confidence"]) == 1.0
    assert not np.isclose(float(m_off["reproj"]), float(m["reproj"]))
