"""Mixed precision (issue 21): ``model.dtype = "bfloat16"`` computes the lifter's hidden layers in
bfloat16 while parameters and the optimiser state stay float32; a short CPU run gives finite
losses and a P1 within a few mm of the float32 run."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from experiments import zhou
from experiments.configs import zhou as zhou_config
from jpose import metrics, models
from jpose.data import SyntheticConfig, make_synthetic
from jpose.data.batching import BatchSampler
from jpose.training import (
    Phase,
    create_player,
    create_train_state,
    jit_step,
    make_multi_step,
    make_train_step,
)
from jpose.training import stages as harness


def _train_and_score(dtype) -> tuple[float, float, object]:
    sizes = {"train_3d": 20, "train_2d": 1, "test": 5, "test_2d_mix": 1}
    ds = make_synthetic(seed=0, config=SyntheticConfig(num_people=sizes, poses_per_person=40))

    def arrays(d):
        return {"x": jnp.asarray(d.pose2d_norm, jnp.float32),
                "y": jnp.asarray(d.pose3d_root_relative, jnp.float32)}  # fmt: skip

    train, test = arrays(ds["train_3d"]), arrays(ds["test"])
    model = models.martinez_lifter(17, width=128, num_blocks=1, dropout=0.0,
                                   zero_init_output=True, dtype=dtype)  # fmt: skip

    def loss(ctx, batch):
        pred = ctx.apply("lifter", batch["x"])
        return jnp.mean(jnp.sum((pred - batch["y"]) ** 2, -1)), {}

    player = create_player(model, optax.adam(1e-3), jax.random.key(0), train["x"][:2])
    state = create_train_state({"lifter": player})
    step = make_train_step([Phase("lifter", ("lifter",), loss)])
    block = jit_step(make_multi_step(step, 100, sampler=BatchSampler(len(train["x"]), 64)))
    for _ in range(3):
        state, m = block(state, train, jax.random.key(1))
    p = state["lifter"]
    pred, _ = p.model.apply({"params": p.params, "batch_stats": p.batch_stats}, test["x"],
                            train=False)  # fmt: skip
    p1 = metrics.to_mm(metrics.mpjpe(pred - pred[:, :1], test["y"] - test["y"][:, :1])).mean()
    return float(m["lifter/loss"]), float(p1), state


def test_bfloat16_lifter_close_to_float32():
    loss32, p1_32, _ = _train_and_score(None)
    loss16, p1_16, state = _train_and_score(jnp.bfloat16)
    assert np.isfinite(loss16) and np.isfinite(p1_16)
    assert abs(p1_16 - p1_32) < 3.0, (p1_16, p1_32)  # mm, after 300 steps
    for leaf in jax.tree_util.tree_leaves((state["lifter"].params, state["lifter"].opt_state)):
        if jnp.issubdtype(leaf.dtype, jnp.floating):
            assert leaf.dtype == jnp.float32


def test_bfloat16_computes_hidden_layers_in_bfloat16():
    model = models.martinez_lifter(17, width=32, num_blocks=1, dropout=0.0, dtype=jnp.bfloat16)
    x = jnp.zeros((4, 17, 2))
    variables = model.init(jax.random.key(0), x)
    jaxpr = str(jax.make_jaxpr(lambda v: model.apply(v, x, train=True))(variables))
    assert "bf16" in jaxpr
    out, _ = model.apply(variables, x, train=False)
    assert out.dtype == jnp.float32  # the output layer runs in float32


def test_config_dtype_reaches_the_model():
    config = zhou_config.get_config("smoke")
    assert zhou.build_model(config).module.dtype is None
    config.model.dtype = "bfloat16"
    assert zhou.build_model(config).module.dtype == jnp.bfloat16
    with pytest.raises(ValueError, match="model.dtype"):
        harness.compute_dtype("float16")
