"""A small host-side training loop: resume, fused blocks of steps, guard, log, evaluate, save.

What an experiment does with the engine::

    players = {"lifter": create_player(model, tx, k1, x_example), ...}
    template = create_train_state(players)
    step = make_train_step(alternating_gan_phases(discriminator=..., generator=..., lifter=...))
    block = jit_step(make_multi_step(step, K, sampler=sampler))        # K steps per call
    state = fit(template, key=key, run_block=lambda s, k: block(s, data, k), num_steps=N,
                steps_per_block=K, samples_per_step=batch_size, workdir=workdir, phases=phases,
                evaluate=lambda s: {"mpjpe": ...}, eval_every=..., best_metric="mpjpe")

Resume order: open ``<workdir>/checkpoints``; if it has a checkpoint, restore state + base key +
data position into the template and continue from ``state.step`` (the step key is
``fold_in(base_key, step)`` and the sampler is a function of ``(data, step, key)``, so the resumed
run replays exactly the same batches and random numbers as an uninterrupted one).
A non-finite loss raises :class:`~jpose.training.steps.NonFiniteError` before anything is saved,
so the last checkpoint on disk is the last good one.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax

from jpose.training.checkpoint import Checkpointer
from jpose.training.logging import MetricsLogger
from jpose.training.state import TrainState
from jpose.training.steps import Phase, check_finite

__all__ = ["fit"]


def fit(
    template: TrainState,
    *,
    key: jax.Array,
    run_block: Callable[[TrainState, jax.Array], tuple[TrainState, Mapping[str, Any]]],
    num_steps: int,
    steps_per_block: int,
    workdir: str | os.PathLike[str],
    samples_per_step: int | None = None,
    phases: Sequence[Phase] = (),
    evaluate: Callable[[TrainState], Mapping[str, float]] | None = None,
    eval_every: int | None = None,
    checkpoint_every: int | None = None,
    max_to_keep: int = 3,
    best_metric: str | None = None,
    best_mode: str = "min",
    log_every: int = 1,
    progress: bool | None = None,
    checkpointer: Checkpointer | None = None,
    logger: MetricsLogger | None = None,
) -> TrainState:
    """Train until ``state.step == num_steps``, resuming from ``<workdir>/checkpoints``.

    Args:
      template: freshly initialised state (structure + static parts).
      key: the run's base key (replaced by the saved one on resume).
      run_block: ``(state, key) -> (state, metrics)`` advancing ``steps_per_block`` steps
        (e.g. a jitted ``make_multi_step`` closure over the device-resident data).
      num_steps: total iterations (a multiple of ``steps_per_block``).
      steps_per_block: K.
      workdir: output directory (checkpoints, metrics.jsonl).
      samples_per_step: global batch size (for throughput).
      phases: the step's phases (to name players in non-finite errors).
      evaluate: ``state -> {metric: float}`` on the *validation* split.
      eval_every / checkpoint_every: in steps (multiples of K; default: at the end only); a
        checkpoint is also saved at every evaluation (with its metrics, for ``best_metric``).
      max_to_keep, best_metric, best_mode: see :class:`Checkpointer`.
      log_every: log every this many blocks.
      progress: see :class:`MetricsLogger`.
      checkpointer / logger: supply your own (e.g. to share them); closed by the caller then.

    Returns:
      The final state (also saved).
    """
    if num_steps % steps_per_block:
        raise ValueError(f"num_steps={num_steps} is not a multiple of K={steps_per_block}")
    workdir = pathlib.Path(workdir)
    own_ckpt, own_log = checkpointer is None, logger is None
    ckpt = checkpointer or Checkpointer(
        workdir / "checkpoints", max_to_keep=max_to_keep, best_metric=best_metric,
        best_mode=best_mode,
    )  # fmt: skip
    log = logger or MetricsLogger(workdir, total_steps=num_steps, progress=progress)
    try:
        restored = ckpt.restore_or_init(template, key=key)
        state, key = restored.state, restored.key
        step = int(jax.device_get(state.step))
        blocks, pending = 0, 0
        while step < num_steps:
            state, metrics = run_block(state, key)
            metrics = jax.device_get(metrics)
            check_finite(metrics, step=step, phases=phases)
            step += steps_per_block
            blocks += 1
            pending += steps_per_block * (samples_per_step or 0)
            if blocks % log_every == 0 or step >= num_steps:
                scalars = {k: v for k, v in metrics.items() if k != "first_nonfinite"}
                log.log(step, scalars, samples=pending if samples_per_step else None)
                pending = 0
            val = None  # checkpoints saved without validation metrics only count as "latest"
            if evaluate is not None and (
                step >= num_steps or (eval_every and step % eval_every == 0)
            ):
                val = dict(evaluate(state))
                log.log(step, val, split="val")
            # every validated step is saved too, so "best on validation" has its candidates
            if (
                step >= num_steps
                or (checkpoint_every and step % checkpoint_every == 0)
                or val is not None
            ):
                ckpt.save(state, key=key, data_position={"step": step}, metrics=val)
        return state
    finally:
        if own_ckpt:
            ckpt.close()
        if own_log:
            log.close()
