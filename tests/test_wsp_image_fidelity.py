"""WSP image preset (issue 18.12): the paper's learning-rate schedule and an ImageNet (user)
initialisation of the ResNet backbone (``experiments/wsp_image.py``)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import traverse_util

from experiments import wsp_image
from experiments.configs import wsp_image as wsp_image_config
from jpose.models.resnet import wsp_net
from jpose.training import create_player


def test_real_preset_follows_the_papers_schedule():
    """WSP Sec. 4: pre-training 50 epochs, lr 1e-3 x0.1 at epochs 30 and 40; fine-tuning 25
    epochs, x0.1 at 17 and 21 (640 examples at batch 64 = 10 iterations per epoch)."""
    c = wsp_image_config.get_config("real")
    bs = int(c.train.batch_size)
    steps, sched = wsp_image.stage_schedule(c.stages.pretrain, num_examples=640, batch_size=bs)
    assert steps == 500
    lrs = [float(sched(i)) for i in (0, 299, 300, 399, 400, 499)]
    np.testing.assert_allclose(lrs, [1e-3, 1e-3, 1e-4, 1e-4, 1e-5, 1e-5], rtol=1e-6)
    steps, sched = wsp_image.stage_schedule(c.stages.finetune, num_examples=640, batch_size=bs)
    assert steps == 250
    lrs = [float(sched(i)) for i in (169, 170, 209, 210)]
    np.testing.assert_allclose(lrs, [1e-3, 1e-4, 1e-4, 1e-5], rtol=1e-6)
    # CPU presets: step counts at constant rate, as their docstrings say
    c = wsp_image_config.get_config("")
    steps, sched = wsp_image.stage_schedule(
        c.stages.pretrain, num_examples=640, batch_size=int(c.train.batch_size), steps_per_block=10
    )
    assert steps == c.stages.pretrain.steps
    assert float(sched(10_000)) == pytest.approx(c.stages.pretrain.lr)


def _smoke_player(width):
    cfg = wsp_image_config.get_config("smoke")
    m = cfg.model
    model = wsp_net(num_joints=17, resnet_depth=int(m.resnet_depth), width=width, stem=m.stem,
                    deconv_layers=int(m.deconv_layers), deconv_features=int(m.deconv_features),
                    heads=("heatmap3d",), depth_bins=int(m.depth_bins))  # fmt: skip
    tx = optax.adam(1e-3)
    return create_player(model, tx, jax.random.key(0), jnp.zeros((2, 32, 32, 3)))


def test_init_checkpoint_loads_the_users_resnet_weights(tmp_path):
    player = _smoke_player(4)
    backbone = {"params": player.params["backbone"], "batch_stats": player.batch_stats["backbone"]}
    flat = traverse_util.flatten_dict(backbone, sep="/")
    rng = np.random.default_rng(0)
    weights = {k: rng.normal(size=np.shape(v)).astype(np.float32) for k, v in flat.items()}
    weights["params/fc/kernel"] = np.zeros((8, 1000), np.float32)  # a classifier: ignored
    path = tmp_path / "resnet_imagenet.npz"
    np.savez(path, **weights)
    loaded = wsp_image.load_init_checkpoint(str(path), player)
    got = traverse_util.flatten_dict(
        {"params": loaded.params["backbone"], "batch_stats": loaded.batch_stats["backbone"]},
        sep="/",
    )
    assert set(got) == set(flat)
    for k, v in got.items():
        np.testing.assert_array_equal(np.asarray(v), weights[k], err_msg=k)
    # the heads keep their initialisation; the optimiser state is fresh
    for name in set(player.params) - {"backbone"}:
        jax.tree_util.tree_map(np.testing.assert_array_equal, loaded.params[name],
                               player.params[name])  # fmt: skip
    # weights of another network are refused with the offending keys named
    wide = _smoke_player(8)
    shapes = r"conv0/kernel has shape \(3, 3, 4, 4\), the network \(3, 3, 8, 8\)"
    with pytest.raises(ValueError, match=shapes):
        wsp_image.load_init_checkpoint(str(path), wide)
    del weights["params/stem_conv/kernel"]
    np.savez(path, **weights)
    with pytest.raises(ValueError, match="params/stem_conv/kernel missing"):
        wsp_image.load_init_checkpoint(str(path), player)
