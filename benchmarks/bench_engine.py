"""Engine throughput: Martinez lifter train step and a full PoseAug-style G/D/lifter iteration.

Run::

    python -m benchmarks.bench_engine            # markdown table on stdout
    python -m benchmarks.bench_engine --repeats 5 --steps 10 --batch 1024

Measures (batch 1024, 17 joints, float32, compile time reported separately, warm-up excluded,
median / min / max over repeats of ``--steps`` calls each):

* ``lifter``: Martinez lifter (width 1024, 2 blocks, dropout 0.5) forward + MSE backward + Adam,
  one jitted step per call (state donated);
* ``lifter (scan K)``: the same step fused K times in one ``lax.scan`` call;
* ``gan iteration``: one alternating iteration as in PoseAug / CameraPose stage 2: discriminators
  (PoseAug D_2D + part-aware KCS D_3D, LS-GAN) update, generator (BA/BL/RT MLPs applied with
  ``jpose.augment``; LS-GAN against the updated D + range losses) update, lifter update on the
  augmented pairs, then on the real pairs.

FLOPs of the lifter step: ~6 x parameters x batch (forward 2, backward 4 per multiply-add).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from jpose import models as M
from jpose import training as T

J = 17


def _time_calls(fn: Callable[[Any], Any], state: Any, *, steps: int, repeats: int) -> tuple:
    """Compile + warm up, then time ``repeats`` x ``steps`` chained calls.

    Returns:
      ``(compile_s, seconds per call for each repeat, final state)``.
    """
    t0 = time.perf_counter()
    state, m = fn(state)
    jax.block_until_ready((state, m))
    compile_s = time.perf_counter() - t0
    state, m = fn(state)  # one warm call
    jax.block_until_ready((state, m))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            state, m = fn(state)
        jax.block_until_ready((state, m))
        times.append((time.perf_counter() - t0) / steps)
    return compile_s, times, state


def _lifter_state(batch: int, key: jax.Array) -> T.TrainState:
    model = M.martinez_lifter(J, width=1024, num_blocks=2, dropout=0.5)
    player = T.create_player(model, optax.adam(1e-3), key, jnp.zeros((2, J, 2)))
    return T.create_train_state({"lifter": player})


def _mse(ctx: T.PhaseContext, batch: dict[str, jax.Array]) -> tuple[jax.Array, dict]:
    pred = ctx.apply("lifter", batch["x2d"])
    return jnp.mean((pred - batch["x3d"]) ** 2), {}


def bench_lifter(batch: int, steps: int, repeats: int, scan_k: int) -> list[dict[str, Any]]:
    """Lifter step, unfused and scan-fused."""
    key = jax.random.key(0)
    data = {
        "x2d": jax.random.normal(key, (batch, J, 2)),
        "x3d": jax.random.normal(jax.random.key(1), (batch, J, 3)),
    }
    step = T.make_train_step([T.Phase("lifter", ("lifter",), _mse)])
    jitted = T.jit_step(step)
    state = _lifter_state(batch, key)
    n_params = M.param_count(state["lifter"].params)
    flops = 6.0 * n_params * batch
    compile_s, times, _ = _time_calls(
        lambda s: jitted(s, data, key), state, steps=steps, repeats=repeats
    )
    rows = [_row("lifter step", batch, compile_s, times, flops=flops)]
    multi = T.jit_step(T.make_multi_step(step, scan_k, sampler=lambda d, i, k: d))
    state = _lifter_state(batch, key)
    compile_s, times, _ = _time_calls(
        lambda s: multi(s, data, key), state, steps=max(1, steps // scan_k), repeats=repeats
    )
    rows.append(
        _row(
            f"lifter step (scan K={scan_k})",
            batch,
            compile_s,
            [t / scan_k for t in times],
            flops=flops,
        )  # fmt: skip
    )
    return rows


def bench_gan(batch: int, steps: int, repeats: int) -> list[dict[str, Any]]:
    """One PoseAug-style D -> G -> lifter(fake) -> lifter(real) iteration."""
    from jpose import adversarial, augment, kinematics, skeleton

    layout = skeleton.H36M17

    def kcs(pose: jax.Array) -> jax.Array:
        return kinematics.part_kcs_matrices(pose, layout=layout)

    def project(pose: jax.Array) -> jax.Array:  # unit-focal pinhole, normalised units
        return pose[..., :2] / jnp.maximum(pose[..., 2:3], 0.1)

    key = jax.random.key(0)
    ks = jax.random.split(key, 4)
    adam = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-4))
    pose0 = jnp.zeros((2, J, 3)).at[..., 2].set(5.0)
    players = {
        "gen": T.create_player(M.poseaug_generator(layout), adam, ks[0], pose0),
        "d2d": T.create_player(M.poseaug_discriminator_2d(), adam, ks[1], jnp.zeros((2, J, 2))),
        "d3d": T.create_player(
            M.part_kcs_discriminator(num_parts=len(skeleton.KCS_PARTS), kcs_fn=kcs),
            adam,
            ks[2],
            pose0,
        ),  # fmt: skip
        "lifter": T.create_player(
            M.martinez_lifter(J, width=1024, num_blocks=2, dropout=0.5),
            optax.adam(1e-3),
            ks[3],
            jnp.zeros((2, J, 2)),
        ),  # fmt: skip
    }
    state = T.create_train_state(players)
    real3d = jax.random.normal(key, (batch, J, 3)) * 0.3 + jnp.array([0.0, 0.0, 5.0])
    data = {"x3d": real3d, "x2d": project(real3d)}

    def augment_pose(ctx: T.PhaseContext, pose: jax.Array) -> tuple[jax.Array, ...]:
        p = ctx.apply("gen", pose)
        ba, ba_diff = augment.bone_angle_change(pose, p["bone_angle"], layout=layout)
        bl, ratios = augment.bone_length_change(ba, p["bone_length"], layout=layout)
        rt = augment.rotate_translate(bl, p["rotation"], p["translation"], max_angle=jnp.pi)
        return ba, rt, ba_diff, ratios

    def d_loss(ctx: T.PhaseContext, b: dict) -> tuple[jax.Array, dict]:
        ba, rt, _, _ = jax.lax.stop_gradient(augment_pose(ctx, b["x3d"]))
        l3 = adversarial.lsgan_discriminator_loss(
            ctx.apply("d3d", b["x3d"]), ctx.apply("d3d", ba), part_axis=-1
        )
        l2 = adversarial.lsgan_discriminator_loss(
            ctx.apply("d2d", b["x2d"]), ctx.apply("d2d", project(rt)), part_axis=-1
        )
        return jnp.mean(l3) + jnp.mean(l2), {}

    def g_loss(ctx: T.PhaseContext, b: dict) -> tuple[jax.Array, dict]:
        ba, rt, ba_diff, ratios = augment_pose(ctx, b["x3d"])
        x2d = project(rt)
        adv = 6.0 * jnp.mean(
            adversarial.lsgan_generator_loss(ctx.apply("d3d", ba), part_axis=-1)
        ) + jnp.mean(adversarial.lsgan_generator_loss(ctx.apply("d2d", x2d), part_axis=-1))
        diff = jnp.mean(augment.bone_angle_range_loss(ba_diff)) + jnp.mean(
            augment.bone_length_range_loss(ratios)
        )
        ctx.emit("fake", {"x2d": x2d, "x3d": rt - rt[..., :1, :]})
        return adv + 3.0 * diff, {}

    def lifter_fake(ctx: T.PhaseContext, b: dict) -> tuple[jax.Array, dict]:
        return _mse(ctx, ctx.outputs["fake"])

    def lifter_real(ctx: T.PhaseContext, b: dict) -> tuple[jax.Array, dict]:
        return _mse(ctx, {"x2d": b["x2d"], "x3d": b["x3d"] - b["x3d"][..., :1, :]})

    phases = T.alternating_gan_phases(
        discriminator=T.Phase("disc", ("d2d", "d3d"), d_loss),
        generator=T.Phase("gen", ("gen",), g_loss),
    ) + (T.Phase("lifter_fake", ("lifter",), lifter_fake),
         T.Phase("lifter_real", ("lifter",), lifter_real))  # fmt: skip
    jitted = T.jit_step(T.make_train_step(phases))
    compile_s, times, _ = _time_calls(
        lambda s: jitted(s, data, key), state, steps=steps, repeats=repeats
    )
    return [_row("G/D/lifter iteration", batch, compile_s, times)]


def _row(name: str, batch: int, compile_s: float, times: list[float], *, flops: float = 0.0):
    med = statistics.median(times)
    return {
        "name": name,
        "batch": batch,
        "compile_s": compile_s,
        "steps_per_s": (1 / med, 1 / max(times), 1 / min(times)),
        "samples_per_s": batch / med,
        "gflops": flops / med / 1e9 if flops else None,
    }


def to_markdown(rows: list[dict[str, Any]]) -> str:
    """Format rows as a markdown table."""
    head = (
        "| benchmark | batch | steps/s median (min-max) | samples/s | GFLOP/s | compile s |\n"
        "|---|---|---|---|---|---|\n"
    )
    lines = []
    for r in rows:
        med, lo, hi = r["steps_per_s"]
        gf = f"{r['gflops']:.0f}" if r["gflops"] else "-"
        lines.append(
            f"| {r['name']} | {r['batch']} | {med:.2f} ({lo:.2f}-{hi:.2f}) | "
            f"{r['samples_per_s']:.0f} | {gf} | {r['compile_s']:.1f} |"
        )
    return head + "\n".join(lines)


def main() -> None:
    """Run the engine benchmarks and print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--scan-k", type=int, default=10)
    parser.add_argument("--skip-gan", action="store_true")
    args = parser.parse_args()
    rows = bench_lifter(args.batch, args.steps, args.repeats, args.scan_k)
    if not args.skip_gan:
        rows += bench_gan(args.batch, args.steps, args.repeats)
    print(
        f"jax {jax.__version__}, {jax.devices()[0].platform}, {os.cpu_count()} CPUs, "
        f"{platform.processor() or platform.machine()}, load average {os.getloadavg()[0]:.1f}\n"
    )
    print(to_markdown(rows))


if __name__ == "__main__":
    main()
