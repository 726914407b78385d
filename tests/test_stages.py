"""The declared stage loop (``jpose.training.stages.run_stages``, issue 16): stages continue
from each other, resume, freeze what their phases do not train, and share compiled blocks."""

from __future__ import annotations

import json
import logging

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jpose import models as M
from jpose import training as T
from jpose.training import stages as harness

KEY = jax.random.key(0)
K = 2


class _Features(nn.Module):
    @nn.compact
    def __call__(self, x, *, train=False):
        x = nn.Dense(4)(x)
        return nn.BatchNorm(use_running_average=not train, momentum=0.5)(x)


class _Head(nn.Module):
    @nn.compact
    def __call__(self, x, *, train=False):
        return nn.Dense(1)(x)


def _loss(ctx, batch):
    b = batch["d"]
    pred = ctx.apply("head", ctx.apply("features", b["x"]))
    return jnp.mean((pred[:, 0] - b["y"]) ** 2), {}


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 3)).astype(np.float32) * 2.0 + 1.0
    return {"d": {"x": x, "y": x.sum(-1).astype(np.float32)}}


def _fresh(done):
    k1, k2 = jax.random.split(KEY)
    tx = optax.adam(1e-2)
    return T.create_train_state({
        "features": T.create_player(M.Model(_Features()), tx, k1, jnp.zeros((2, 3))),
        "head": T.create_player(M.Model(_Head()), tx, k2, jnp.zeros((2, 4))),
    })  # fmt: skip


def _continue(done):
    prev = done["both"]
    tx = optax.adam(1e-2)
    return T.create_train_state({
        n: p.replace(opt_state=tx.init(p.params), tx=tx) for n, p in prev.players.items()
    })  # fmt: skip


def _stages():
    return [
        harness.Stage("both", phases=[T.Phase("fit", ("features", "head"), _loss)],
                      num_steps=4, batch_sizes={"d": 8}, init=_fresh, key=KEY),
        harness.Stage("head_only", phases=[T.Phase("fit", ("head",), _loss)],
                      num_steps=2, batch_sizes={"d": 8}, init=_continue,
                      key=jax.random.fold_in(KEY, 1)),
    ]  # fmt: skip


def test_stages_continue_freeze_and_resume(tmp_path):
    options = harness.TrainOptions(steps_per_block=K, progress=False)
    stages = _stages()
    assert stages[1].trainable == {"head"}  # declared once, by the phases
    out = harness.run_stages(stages, _data(), workdir=tmp_path, options=options)
    first, second = out.stages["both"].state, out.state
    # the frozen player: no parameter update, running statistics untouched
    for field in ("params", "batch_stats"):
        a = jax.tree_util.tree_leaves(getattr(first.players["features"], field))
        b = jax.tree_util.tree_leaves(getattr(second.players["features"], field))
        assert all(np.array_equal(u, v) for u, v in zip(a, b))
    assert not np.array_equal(first.players["head"].params["Dense_0"]["kernel"],
                              second.players["head"].params["Dense_0"]["kernel"])  # fmt: skip
    # one curve: stage 1 logs after stage 0 (global steps), each record names its stage
    rows = [json.loads(r) for r in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    train = [(r["step"], r["stage"]) for r in rows if "fit/loss" in r]
    assert train == [(2, 0.0), (4, 0.0), (6, 1.0)]
    assert out.summary()["head_only"]["steps"] == 2
    # the same declaration again finds both stages complete
    again = harness.run_stages(_stages(), _data(), workdir=tmp_path, options=options)
    assert [r.trained_steps for r in again.stages.values()] == [0, 0]
    assert [r.resumed_from for r in again.stages.values()] == [4, 2]
    np.testing.assert_array_equal(again.state.players["head"].params["Dense_0"]["kernel"],
                                  second.players["head"].params["Dense_0"]["kernel"])  # fmt: skip


def test_stages_with_the_same_phases_share_one_compiled_block(tmp_path, caplog):
    phases = [T.Phase("fit", ("features", "head"), _loss)]
    stages = [harness.Stage(f"seed{i}", phases=phases, num_steps=K, batch_sizes={"d": 8},
                            init=_fresh, key=jax.random.key(i)) for i in range(2)]  # fmt: skip
    with caplog.at_level(logging.INFO, logger="jpose.training"):
        harness.run_stages(
            stages,
            _data(),
            workdir=tmp_path,
            options=harness.TrainOptions(steps_per_block=K, progress=False),
        )
    assert sum("compiling training block" in r.getMessage() for r in caplog.records) == 1


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda s: [s[0], s[0]], "unique"),
        (lambda s: [harness.Stage("x", phases=s[0].phases, num_steps=3, batch_sizes={"d": 8},
                                  init=_fresh, key=KEY)], "multiple of steps_per_block"),
        (lambda s: [harness.Stage("x", phases=s[0].phases, num_steps=2, batch_sizes={"e": 8},
                                  init=_fresh, key=KEY)], r"datasets \['e'\]"),
        (lambda s: [harness.Stage("x", phases=[T.Phase("p", ("camera",), _loss)], num_steps=2,
                                  batch_sizes={"d": 8}, init=_fresh, key=KEY)],
         r"trains players \['camera'\]"),
        (lambda s: [harness.Stage("x", phases=s[0].phases, num_steps=2, batch_sizes={"d": 8},
                                  init=lambda d: _fresh(d).replace(step=jnp.array(3, jnp.int32)),
                                  key=KEY)], "step 0"),
    ],
)  # fmt: skip
def test_bad_declarations_are_named(tmp_path, change, match):
    with pytest.raises(ValueError, match=match):
        harness.run_stages(
            change(_stages()),
            _data(),
            workdir=tmp_path,
            options=harness.TrainOptions(steps_per_block=K, progress=False),
        )
