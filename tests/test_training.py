"""Tests of the training engine (jpose.training) on CPU with 4 simulated devices (conftest.py).

Tiny networks (width 32, 5 joints); jitted functions are built once per module and shared.
"""

import io
import json
import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jpose import models as M
from jpose import training as T
from jpose.training import parallel

J = 5
KEY = jax.random.key(0)
TRACES = {"lifter": 0}


def _mse_loss(ctx, batch):
    TRACES["lifter"] += 1  # Python side effect: counts traces, not executions
    pred = ctx.apply("lifter", batch["x"])
    mse = jnp.mean((pred - batch["y"]) ** 2)
    return mse, {"mse": mse}


LIFTER_PHASES = (T.Phase("lifter", ("lifter",), _mse_loss),)


def _make_template(seed=0):
    model = M.martinez_lifter(J, width=32, num_blocks=1, dropout=0.0)
    player = T.create_player(model, optax.adam(1e-2), jax.random.key(seed), jnp.zeros((2, J, 2)))
    return T.create_train_state({"lifter": player})


def _data(n=64, seed=1):
    kx, kw = jax.random.split(jax.random.key(seed))
    x = jax.random.normal(kx, (n, J, 2))
    w = jax.random.normal(kw, (2 * J, 3 * J))
    y = jnp.tanh(x.reshape(n, -1) @ w).reshape(n, J, 3)
    return {"x": x, "y": y}


def _sampler(data, step, key, batch_size=16):
    """Iteration ``step``'s batch: a per-epoch permutation from fold_in(data key, epoch)."""
    n = data["x"].shape[0]
    per_epoch = n // batch_size
    epoch, i = step // per_epoch, step % per_epoch
    perm = jax.random.permutation(jax.random.fold_in(jax.random.fold_in(key, 77), epoch), n)
    idx = jax.lax.dynamic_slice(perm, (i * batch_size,), (batch_size,))
    return jax.tree_util.tree_map(lambda a: a[idx], data)


@pytest.fixture(scope="module")
def engine():
    template = _make_template()
    step = T.make_train_step(LIFTER_PHASES)
    return {
        "template": template,
        "data": _data(),
        "step": jax.jit(step),
        "multi": jax.jit(T.make_multi_step(step, 2, sampler=_sampler)),
    }


def _assert_trees_close(a, b, **tol):
    jax.tree_util.tree_map(lambda p, q: np.testing.assert_allclose(p, q, **tol), a, b)


# ---------------------------------------------------------------------------------------------
def test_pmap_step_equals_single_device_step(engine):
    assert jax.local_device_count() == 4
    data = jax.tree_util.tree_map(lambda a: a[:16], engine["data"])
    single = engine["template"]
    for _ in range(2):
        single, m_single = engine["step"](single, data, KEY)
    p_step = parallel.pmap_step(
        T.make_train_step(LIFTER_PHASES, axis_name=parallel.AXIS), donate_state=False
    )
    rep = parallel.replicate(engine["template"])
    shards = parallel.shard(data)
    assert shards["x"].shape == (4, 4, J, 2)
    for _ in range(2):
        rep, m_rep = p_step(rep, shards, KEY)
    multi = parallel.unreplicate(rep)
    # every replica holds the same state
    _assert_trees_close(jax.tree_util.tree_map(lambda a: a[3], rep), multi, rtol=0, atol=0)
    # batch norm used global-batch statistics (axis_name) and gradients were averaged
    _assert_trees_close(multi.players["lifter"].params, single.players["lifter"].params,
                        rtol=1e-4, atol=1e-5)  # fmt: skip
    _assert_trees_close(multi.players["lifter"].batch_stats,
                        single.players["lifter"].batch_stats, rtol=1e-4, atol=1e-5)  # fmt: skip
    np.testing.assert_allclose(parallel.unreplicate(m_rep)["lifter/loss"], m_single["lifter/loss"],
                               rtol=1e-5)  # fmt: skip
    assert int(multi.step) == 2


def test_step_compiles_once(engine):
    step = jax.jit(T.make_train_step(LIFTER_PHASES))
    before = TRACES["lifter"]
    state = engine["template"]
    for i in range(3):
        batch = jax.tree_util.tree_map(lambda a, i=i: a[16 * i : 16 * i + 16], engine["data"])
        state, metrics = step(state, batch, KEY)
    assert TRACES["lifter"] - before == 1
    assert step._cache_size() == 1
    assert int(state.step) == 3 and np.isfinite(metrics["lifter/loss"])


def test_scan_k_steps_equals_k_single_steps(engine):
    k = 3
    data = engine["data"]
    stacked = jax.tree_util.tree_map(lambda a: a[: 16 * k].reshape(k, 16, *a.shape[1:]), data)
    multi = jax.jit(T.make_multi_step(T.make_train_step(LIFTER_PHASES), k))
    fused, m_fused = multi(engine["template"], stacked, KEY)
    loop, losses = engine["template"], []
    for i in range(k):
        loop, m = engine["step"](loop, jax.tree_util.tree_map(lambda a, i=i: a[i], stacked), KEY)
        losses.append(float(m["lifter/loss"]))
    _assert_trees_close(fused.players, loop.players, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m_fused["lifter/loss"], np.mean(losses), rtol=1e-5)
    assert int(m_fused["first_nonfinite"]) == -1 and int(fused.step) == k
    # the device-resident sampler gives the same batches as sampling on the host
    s_fused, _ = engine["multi"](engine["template"], data, KEY)
    s_loop = engine["template"]
    for i in range(2):
        s_loop, _ = engine["step"](s_loop, _sampler(data, jnp.int32(i), KEY), KEY)
    _assert_trees_close(s_fused.players, s_loop.players, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="K=3"):
        multi(engine["template"], jax.tree_util.tree_map(lambda a: a[:2], stacked), KEY)


def test_resume_gives_identical_parameters(engine, tmp_path):
    n, k = 4, 2

    def run_block(state, key):
        return engine["multi"](state, engine["data"], key)

    common = dict(run_block=run_block, steps_per_block=k, samples_per_step=16,
                  phases=LIFTER_PHASES, progress=False)  # fmt: skip
    straight = T.fit(engine["template"], key=KEY, num_steps=2 * n, workdir=tmp_path / "a",
                     **common)  # fmt: skip
    first = T.fit(engine["template"], key=KEY, num_steps=n, workdir=tmp_path / "b", **common)
    assert int(first.step) == n
    # a fresh process would rebuild the template from scratch (different init seed here, to
    # show that the restored values, not the template's, are used)
    resumed = T.fit(_make_template(seed=5), key=jax.random.key(99), num_steps=2 * n,
                    workdir=tmp_path / "b", **common)  # fmt: skip
    assert int(resumed.step) == 2 * n
    _assert_trees_close(resumed.players["lifter"].params, straight.players["lifter"].params,
                        rtol=0, atol=0)  # fmt: skip
    _assert_trees_close(resumed.players["lifter"].opt_state,
                        straight.players["lifter"].opt_state, rtol=0, atol=0)  # fmt: skip
    lines = (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
    steps = [json.loads(line)["step"] for line in lines]
    assert steps == [2, 4, 6, 8]  # the resumed run continued at step 4


# ---------------------------------------------------------------------------------------------
class Scalar(nn.Module):
    """A single scalar parameter, returned as is (init 0)."""

    axis_name: str | None = None

    @nn.compact
    def __call__(self, x, *, train):
        del train
        return self.param("w", nn.initializers.zeros, ()) + 0.0 * jnp.sum(x)


def _scalar_state():
    sgd = optax.sgd(0.5)
    players = {n: T.create_player(M.Model(Scalar()), sgd, KEY, jnp.zeros(())) for n in "dg"}
    return T.create_train_state(players)


def _d_loss(ctx, batch):
    d = ctx.apply("d", batch)
    return (d - 1.0) ** 2, {}  # d: 0 -> 1 with sgd(0.5)


def _g_loss(ctx, batch):
    return ctx.apply("d", batch) * ctx.apply("g", batch), {}  # dL/dg = d


def test_alternating_order_generator_sees_updated_discriminator():
    d_phase = T.Phase("discriminator", ("d",), _d_loss)
    g_phase = T.Phase("generator", ("g",), _g_loss)
    phases = T.alternating_gan_phases(generator=g_phase, discriminator=d_phase)
    assert [p.name for p in phases] == ["discriminator", "generator"]
    assert T.GAN_PHASE_ORDER[:2] == ("discriminator", "generator")
    state = _scalar_state()
    x = jnp.zeros(())
    alt, _ = T.make_train_step(phases)(state, x, KEY)
    # D first: d = 0 - 0.5 * 2 (0 - 1) = 1, then g = 0 - 0.5 * d_updated = -0.5
    assert float(alt["d"].params["w"]) == 1.0
    assert float(alt["g"].params["w"]) == -0.5
    # swapped order: G sees the old d = 0 and does not move
    swapped, _ = T.make_train_step((g_phase, d_phase))(state, x, KEY)
    assert float(swapped["g"].params["w"]) == 0.0 and float(swapped["d"].params["w"]) == 1.0
    # a joint phase differentiates both players from one loss (simultaneous update)
    joint, _ = T.make_train_step([T.Phase("both", ("d", "g"), _g_loss)])(state, x, KEY)
    assert float(joint["g"].params["w"]) == 0.0 and float(joint["d"].params["w"]) == 0.0


def test_emit_extra_and_conditional_phases():
    def first(ctx, batch):
        d = ctx.apply("d", batch)
        ctx.emit("d_out", d + 10.0)
        ctx.set_extra({"count": ctx.extra["count"] + 1})
        return (d - 1.0) ** 2, {"seen": d}

    def second(ctx, batch):
        return ctx.apply("g", batch) * ctx.outputs["d_out"], {"from_first": ctx.outputs["d_out"]}

    state = _scalar_state().replace(extra={"count": jnp.zeros((), jnp.int32)})
    phases = (
        T.Phase("first", ("d",), first),
        T.Phase("second", ("g",), second, every=2),
        T.Phase("third", ("g",), _g_loss, when=lambda s, b: s.step >= 1),
    )
    step = jax.jit(T.make_train_step(phases))
    s1, m1 = step(state, jnp.zeros(()), KEY)
    # emitted inside "first" from d before its update (d = 0)
    assert float(m1["second/from_first"]) == 10.0
    assert float(m1["second/active"]) == 1.0 and float(m1["third/active"]) == 0.0
    assert int(s1.extra["count"]) == 1
    s2, m2 = step(s1, jnp.zeros(()), KEY)
    assert float(m2["second/active"]) == 0.0 and float(m2["second/loss"]) == 0.0
    assert float(m2["third/active"]) == 1.0 and int(s2.extra["count"]) == 2


def test_nonfinite_guard_names_step_and_player_and_keeps_last_checkpoint(engine, tmp_path):
    def bad_sampler(data, step, key):
        batch = _sampler(data, step, key)
        poison = jnp.where(step >= 3, jnp.nan, 0.0)
        return {**batch, "y": batch["y"] + poison}

    multi = jax.jit(T.make_multi_step(T.make_train_step(LIFTER_PHASES), 1, sampler=bad_sampler))
    with pytest.raises(T.NonFiniteError, match=r"step 3.*'lifter'.*\['lifter'\].*loss"):
        T.fit(engine["template"], key=KEY, run_block=lambda s, k: multi(s, engine["data"], k),
              num_steps=8, steps_per_block=1, workdir=tmp_path, phases=LIFTER_PHASES,
              checkpoint_every=1, progress=False)  # fmt: skip
    ckpt = T.Checkpointer(tmp_path / "checkpoints")
    assert ckpt.latest_step() == 3  # steps 0..2 completed and saved; step 3 was poisoned
    restored = ckpt.restore(engine["template"], key=KEY)
    leaves = jax.tree_util.tree_leaves(restored.state.players["lifter"].params)
    assert all(np.all(np.isfinite(x)) for x in leaves)
    ckpt.close()
    # skip_nonfinite: the poisoned update is not applied
    state = engine["template"].replace(step=jnp.int32(3))
    after, m = engine["step"](state, bad_sampler(engine["data"], jnp.int32(3), KEY), KEY)
    assert float(m["lifter/nonfinite"]) == 1.0
    _assert_trees_close(after.players["lifter"].params, state.players["lifter"].params, atol=0)


# ---------------------------------------------------------------------------------------------
def test_checkpoint_keeps_last_n_and_best(engine, tmp_path):
    ckpt = T.Checkpointer(tmp_path, max_to_keep=2, best_metric="val_mpjpe", best_mode="min")
    state = engine["template"]
    for s, v in [(1, 5.0), (2, 3.0), (3, 4.0), (4, 6.0), (5, 7.0)]:
        ckpt.save(state.replace(step=jnp.int32(s)), key=jax.random.key(s),
                  data_position={"epoch": s}, metrics={"val_mpjpe": v})  # fmt: skip
    assert ckpt.all_steps() == [2, 4, 5] and ckpt.best_step() == 2
    r = ckpt.restore(state, key=KEY)
    assert r.step == 5 and r.data_position == {"epoch": 5}
    np.testing.assert_array_equal(
        jax.random.key_data(r.key), jax.random.key_data(jax.random.key(5))
    )
    best = ckpt.restore(state, key=KEY, step=ckpt.best_step())
    assert int(best.state.step) == 2
    with pytest.raises(ValueError, match="val_mpjpe"):
        ckpt.save(state, key=KEY, metrics={"other": 1.0})
    ckpt.close()


def test_interrupted_save_leaves_previous_checkpoint_restorable(engine, tmp_path):
    state = engine["template"]
    with T.Checkpointer(tmp_path) as ckpt:
        ckpt.save(state.replace(step=jnp.int32(1)), key=KEY, data_position=1)
    # what a kill -9 in the middle of writing step 2 leaves behind: orbax's temporary directory
    partial = tmp_path / "2.orbax-checkpoint-tmp-1712345678"
    (partial / "state").mkdir(parents=True)
    (partial / "state" / "garbage").write_bytes(b"\x00" * 100)
    with T.Checkpointer(tmp_path) as ckpt:
        assert ckpt.latest_step() == 1
        r = ckpt.restore_or_init(state, key=KEY)
        assert r.step == 1 and r.data_position == 1
        ckpt.save(r.state.replace(step=jnp.int32(2)), key=KEY, data_position=2)
        assert ckpt.all_steps() == [1, 2]
    assert not partial.exists()  # cleaned up on open


_KILL_SCRIPT = textwrap.dedent(
    """
    import sys, jax, jax.numpy as jnp
    from jpose import training as T
    from jpose.training.state import TrainState
    ckpt = T.Checkpointer(sys.argv[1], max_to_keep=2)
    big = {"w": jnp.ones((2_000_000,))}
    state = TrainState(step=jnp.int32(1), players={}, extra=big)
    ckpt.save(state, key=jax.random.key(0))
    print("saved", flush=True)
    for s in range(2, 10_000):
        new = state.replace(step=jnp.int32(s), extra={"w": big["w"] * s})
        ckpt.save(new, key=jax.random.key(s))
    """
)


def test_kill9_during_saves_leaves_a_restorable_checkpoint(tmp_path):
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": ""}
    root = pathlib.Path(__file__).resolve().parents[1]
    proc = subprocess.Popen([sys.executable, "-c", _KILL_SCRIPT, str(tmp_path)], cwd=root,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        assert proc.stdout.readline().strip() == b"saved"
        time.sleep(0.7)  # somewhere inside a later save
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    template = T.TrainState(step=jnp.int32(0), players={}, extra={"w": jnp.zeros((2_000_000,))})
    with T.Checkpointer(tmp_path) as ckpt:
        step = ckpt.latest_step()
        assert step is not None and step >= 1
        r = ckpt.restore(template, key=KEY)
        np.testing.assert_array_equal(r.state.extra["w"][:3], np.full(3, float(step)))


# ---------------------------------------------------------------------------------------------
class Affine1D(nn.Module):
    axis_name: str | None = None

    @nn.compact
    def __call__(self, z, *, train):
        del train
        return nn.Dense(1)(z)


class Critic1D(nn.Module):
    axis_name: str | None = None

    @nn.compact
    def __call__(self, x, *, train):
        del train
        return nn.Dense(1)(nn.tanh(nn.Dense(16)(x)))


def test_gan_toy_discriminator_accuracy_moves_towards_half():
    """1D Gaussian GAN (real N(4, 0.5^2)); non-saturating loss; D then G each iteration."""
    batch = 256
    players = {
        "g": T.create_player(M.Model(Affine1D()), optax.adam(0.05), KEY, jnp.zeros((2, 1))),
        "d": T.create_player(M.Model(Critic1D()), optax.adam(0.05), KEY, jnp.zeros((2, 1))),
    }
    state = T.create_train_state(players)

    def fake(ctx):
        z = jax.random.normal(ctx.key_for("z"), (batch, 1))
        return ctx.apply("g", z)

    def d_loss(ctx, real):
        real_logit, fake_logit = ctx.apply("d", real), ctx.apply("d", fake(ctx))
        loss = jnp.mean(optax.sigmoid_binary_cross_entropy(real_logit, 1.0)) + jnp.mean(
            optax.sigmoid_binary_cross_entropy(fake_logit, 0.0)
        )
        return loss, T.discriminator_accuracy(real_logit, fake_logit, kind="logits")

    def g_loss(ctx, real):
        f = fake(ctx)
        loss = jnp.mean(optax.sigmoid_binary_cross_entropy(ctx.apply("d", f), 1.0))
        return loss, {"fake_mean": jnp.mean(f)}

    def sampler(data, step, key):
        return 4.0 + 0.5 * jax.random.normal(jax.random.fold_in(data, step), (batch, 1))

    def accuracy(state):
        real = sampler(jax.random.key(11), 0, None)
        z = jax.random.normal(jax.random.key(12), (batch, 1))
        fake_x = T.predict(state["g"], z)
        return float(
            T.discriminator_accuracy(
                T.predict(state["d"], real), T.predict(state["d"], fake_x), kind="logits"
            )["acc"]
        )

    head_start = 20  # D-only iterations first (G's phase is gated off), then alternating D, G
    phases = T.alternating_gan_phases(
        discriminator=T.Phase("discriminator", ("d",), d_loss),
        generator=T.Phase("generator", ("g",), g_loss, when=lambda s, b: s.step >= head_start),
    )
    block = jax.jit(T.make_multi_step(T.make_train_step(phases), head_start, sampler=sampler))
    data_key = jax.random.key(3)
    state, m0 = block(state, data_key, KEY)  # D separates N(4, .25) from G(z) ~ 0
    assert float(m0["generator/active"]) == 0.0
    assert accuracy(state) > 0.9
    for _ in range(20):
        state, m = block(state, data_key, KEY)
    assert abs(float(m["generator/fake_mean"]) - 4.0) < 0.5
    assert accuracy(state) < 0.7 and float(m["discriminator/acc"]) < 0.7


# ---------------------------------------------------------------------------------------------
def test_schedules():
    step = T.make_schedule(kind="step", lr=1e-3, steps_per_epoch=10, boundaries=(30, 60))
    assert np.isclose(step(299), 1e-3) and np.isclose(step(300), 1e-4)
    assert np.isclose(step(600), 1e-5)
    lin = T.make_schedule(kind="linear", lr=1e-4, steps_per_epoch=10, epochs=50)
    assert np.isclose(lin(9), 1e-4) and np.isclose(lin(10), 1e-4 * (1 - 1 / 51))  # PoseAug
    ex = T.schedule_from_config(
        {"kind": "exponential", "lr": 1.0, "decay_rate": 0.5, "decay_epochs": 2}, steps_per_epoch=5
    )
    assert np.isclose(ex(10), 0.5) and np.isclose(ex(20), 0.25)
    assert np.isclose(T.schedule_from_config({"lr": 0.1}, steps_per_epoch=1)(99), 0.1)
    with pytest.raises(ValueError, match="unknown schedule"):
        T.make_schedule(kind="cosine", lr=1.0, steps_per_epoch=1)


def test_logger_jsonl_progress_and_accuracy(tmp_path):
    stream = io.StringIO()
    with T.MetricsLogger(tmp_path, total_steps=10, stream=stream) as log:
        log.log(5, {"lifter/loss": jnp.float32(0.5), "vector": jnp.zeros(3)}, samples=80)
        time.sleep(0.01)
        out = log.log(10, {"lifter/loss": 0.25}, samples=80)
        log.log(10, {"mpjpe": 50.0}, split="val")
    assert out["throughput/samples_per_s"] > 0 and out["throughput/steps_per_s"] > 0
    records = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["split"] for r in records] == ["train", "train", "val"]
    assert records[0]["lifter/loss"] == 0.5 and "vector" not in records[0]
    lines = stream.getvalue().splitlines()  # not a TTY: plain lines
    assert len(lines) == 3 and "step 10/10" in lines[1] and "ETA" in lines[1]
    acc = T.discriminator_accuracy(jnp.array([[0.9], [0.2]]), jnp.array([[0.1], [0.3]]))
    assert float(acc["acc_real"]) == 0.5 and float(acc["acc_fake"]) == 1.0
    acc2 = T.discriminator_accuracy(jnp.array([[0.0, 1.0]]), jnp.array([[0.0, 1.0]]),
                                    kind="two_class")  # fmt: skip
    assert float(acc2["acc"]) == 0.5


def test_shard_and_distributed_helpers():
    x = jnp.arange(8 * 3).reshape(8, 3)
    s = parallel.shard({"x": x})
    np.testing.assert_array_equal(s["x"].reshape(8, 3), x)
    stacked = parallel.shard(jnp.zeros((2, 8, 3)), axis=1)
    assert stacked.shape == (4, 2, 2, 3)
    with pytest.raises(ValueError, match="divisible"):
        parallel.shard(jnp.zeros((6, 3)))
    assert parallel.initialize_distributed({"distributed": False}) is False


# -- harness rules (issue 18): schedules count iterations; frozen players in inference mode ------


class _Linear(nn.Module):
    @nn.compact
    def __call__(self, x, *, train=False):
        return nn.Dense(1, use_bias=False, kernel_init=nn.initializers.zeros)(x)


class _BatchNormNet(nn.Module):
    @nn.compact
    def __call__(self, x, *, train=False):
        return nn.BatchNorm(use_running_average=not train, momentum=0.5)(x)


def test_schedule_is_a_function_of_the_iteration_not_of_the_update_count():
    """A player stepped in two phases per iteration gets lr(iteration) in both (plain SGD on
    loss = sum(w) moves w by exactly -lr per update)."""
    sched = optax.piecewise_constant_schedule(1.0, {3: 0.1, 6: 0.1})  # iterations 3 and 6
    player = T.create_player(M.Model(_Linear()), optax.sgd(sched), KEY, jnp.zeros((2, 1)))
    state = T.create_train_state({"w": player})

    def loss(ctx, batch):
        return jnp.sum(ctx.params("w")["Dense_0"]["kernel"]), {}

    step = jax.jit(T.make_train_step([T.Phase("a", ("w",), loss), T.Phase("b", ("w",), loss)]))
    moves = []
    for _ in range(8):
        before = float(state.players["w"].params["Dense_0"]["kernel"].sum())
        state, _ = step(state, {}, KEY)
        moves.append(before - float(state.players["w"].params["Dense_0"]["kernel"].sum()))
    # two updates per iteration at lr(iteration); the update count would decay at iteration 2
    np.testing.assert_allclose(moves, [2.0] * 3 + [0.2] * 3 + [0.02] * 2, atol=1e-5)


def test_frozen_player_runs_in_inference_mode_and_keeps_its_statistics():
    """A player no phase updates uses its running batch-norm statistics inside the step (equal
    to the evaluation-mode forward pass) and its statistics are not updated."""
    frozen = T.create_player(M.Model(_BatchNormNet()), optax.set_to_zero(), KEY, jnp.zeros((2, 3)))
    frozen = frozen.replace(
        batch_stats={"BatchNorm_0": {"mean": jnp.full(3, 0.5), "var": jnp.full(3, 4.0)}}
    )
    lin = T.create_player(M.Model(_Linear()), optax.sgd(0.1), KEY, jnp.zeros((2, 3)))
    state = T.create_train_state({"frozen": frozen, "lin": lin})
    x = jax.random.normal(KEY, (8, 3)) * 3.0 + 1.0

    def loss(ctx, batch):
        y = ctx.apply("frozen", batch["x"])  # train=True by default
        ctx.emit("y", y)
        return jnp.sum(ctx.apply("lin", y)), {}

    seen = {}

    def probe(ctx, batch):
        seen["y"] = ctx.outputs["y"]
        return jnp.sum(ctx.apply("lin", batch["x"])), {}

    step = T.make_train_step([T.Phase("lin", ("lin",), loss), T.Phase("p", ("lin",), probe)])
    new, _ = step(state, {"x": x}, KEY)
    np.testing.assert_allclose(seen["y"], T.predict(frozen, x), rtol=1e-6)
    _assert_trees_close(new.players["frozen"].batch_stats, frozen.batch_stats, rtol=0)


def test_block_metrics_of_a_phase_run_every_second_step_average_over_its_steps():
    """A discriminator updated every second step reports its accuracy over the steps it ran,
    not diluted by the skipped steps' zeros."""
    player = T.create_player(M.Model(_Linear()), optax.sgd(0.0), KEY, jnp.zeros((2, 1)))
    state = T.create_train_state({"w": player})

    def loss(ctx, batch):
        return jnp.sum(ctx.params("w")["Dense_0"]["kernel"]), {"acc": jnp.asarray(0.9)}

    phases = [T.Phase("g", ("w",), loss), T.Phase("d", ("w",), loss, every=2)]
    multi = jax.jit(T.make_multi_step(T.make_train_step(phases), 4))
    _, m = multi(state, {"x": jnp.zeros((4, 1))}, KEY)
    assert float(m["d/active"]) == pytest.approx(0.5)
    assert float(m["d/acc"]) == pytest.approx(0.9) and float(m["g/acc"]) == pytest.approx(0.9)


def test_with_variables_takes_other_weights_and_restarts_the_optimiser():
    trained = _make_template(seed=0)["lifter"]
    grads = jax.tree_util.tree_map(jnp.ones_like, trained.params)
    trained = trained.apply_gradients(grads)  # Adam moments and count are no longer initial
    other = _make_template(seed=1)["lifter"]
    moved = trained.with_variables(other.params, other.batch_stats)
    for a, b in zip(
        jax.tree_util.tree_leaves(moved.params), jax.tree_util.tree_leaves(other.params)
    ):
        np.testing.assert_array_equal(a, b)
    fresh = trained.tx.init(other.params)
    for a, b in zip(jax.tree_util.tree_leaves(moved.opt_state), jax.tree_util.tree_leaves(fresh)):
        np.testing.assert_array_equal(a, b)
    assert moved.tx is trained.tx and moved.model is trained.model
