"""The stage loop every method runs.

A method declares its stages (:class:`Stage`: phases, steps, the datasets it samples, how its
state is built from the stages before it) and :func:`run_stages` runs them: data on device,
samplers, the compiled K-step blocks, :func:`train_stage` (checkpoints, resume, logging,
validation). The pieces (:func:`make_sampler`, :func:`make_block_runner`, :func:`train_stage`)
stay public for custom loops. Everything here takes keyword options; no config objects.

Work directory (with ``jpose.training.rundir`` and ``jpose.training.reports``)::

    config.json            the resolved config (a changed config on resume: config.<n>.json)
    metrics.jsonl          every logged scalar, with ``stage`` and a global step
    checkpoints/<stage>/   orbax checkpoints of each stage
    results.json|md        evaluation in mm (per action, action-wise and frame-wise means)
    figures/*.png          figures (``jpose[viz]``)
    status.json            finished stages; evaluation and inference refuse an unfinished run
    run.lock               process id + host of the run using the directory

Resume: stages run in order; a stage whose checkpoints hold its final step is restored and
skipped, one with an earlier checkpoint is restored and continued (the batch of step ``s`` is a
pure function of ``(key, s)``, so a resumed run replays an uninterrupted one's batches), one
without checkpoints starts from the previous stage's final state. Killed at any moment, a run
restarts from its last checkpoint when the same command is run again.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pathlib
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np

from jpose.data.batching import BatchSampler, device_put_dataset
from jpose.training import parallel, rundir
from jpose.training.checkpoint import Checkpointer, CheckpointMismatchError
from jpose.training.logging import MetricsLogger, trim_metrics
from jpose.training.loop import fit
from jpose.training.state import TrainState
from jpose.training.steps import jit_step, make_multi_step, make_train_step

__all__ = [
    "CompileNotice",
    "StageLogger",
    "Stage",
    "StageResult",
    "StagesResult",
    "TrainOptions",
    "compute_dtype",
    "device_arrays",
    "make_block_runner",
    "make_sampler",
    "num_parallel_devices",
    "num_stage_steps",
    "run_stages",
    "train_stage",
    "uses_pmap",
]

LOGGER = logging.getLogger("jpose.training")


def num_stage_steps(*, steps: int, epochs: float, steps_per_epoch: int,
                    steps_per_block: int) -> int:  # fmt: skip
    """Steps of a stage: ``steps`` if > 0 else ``round(epochs * steps_per_epoch)``, rounded up
    to a multiple of K = ``steps_per_block`` (0 stays 0)."""
    steps = int(steps or 0)
    if steps <= 0:
        steps = int(round(float(epochs) * steps_per_epoch))
    if steps <= 0:
        return 0
    return -(-steps // steps_per_block) * steps_per_block


def device_arrays(
    arrays: Mapping[str, np.ndarray], *, num_devices: int = 1
) -> dict[str, jax.Array]:
    """Put host arrays on device once (replicated with a leading device axis for ``pmap``)."""
    return device_put_dataset(arrays, replicate=uses_pmap(num_devices))


def compute_dtype(name: str | None) -> Any:
    """``config.model.dtype`` -> the ``dtype`` of a jpose model: ``None`` for ``"float32"`` /
    empty (full precision), ``jnp.bfloat16`` for ``"bfloat16"`` (mixed precision: bfloat16
    compute, float32 parameters and optimiser state)."""
    if name in (None, "", "float32"):
        return None
    if name == "bfloat16":
        return jax.numpy.bfloat16
    raise ValueError(f"model.dtype must be 'float32' or 'bfloat16', got {name!r}")


def uses_pmap(num_devices: int) -> bool:
    """Whether training maps over a device axis: more than one local device, or any
    multi-process run (then the axis spans the devices of all processes)."""
    return num_devices > 1 or jax.process_count() > 1


def num_parallel_devices(mode: str = "auto") -> int:
    """Local devices to ``pmap`` over: ``"auto"`` = all local devices, ``"none"`` = 1, or an
    integer. In a multi-process run (``config.distributed``) always all local devices: ``pmap``
    over a subset is not defined across processes."""
    if jax.process_count() > 1:
        if mode not in ("auto", str(jax.local_device_count())):
            LOGGER.info("multi-process run: parallel=%r replaced by all %d local devices",
                        mode, jax.local_device_count())  # fmt: skip
        return jax.local_device_count()
    if mode in ("none", "", None):
        return 1
    if mode == "auto":
        return jax.local_device_count()
    n = int(mode)
    if n > jax.local_device_count():
        raise ValueError(f"parallel={n} but only {jax.local_device_count()} local devices")
    return n


def make_sampler(
    sizes: Mapping[str, int],
    batch_sizes: Mapping[str, int],
    *,
    num_devices: int = 1,
    mode: str = "epoch",
) -> Callable[[Any, Any, jax.Array], dict[str, Any]]:
    """A ``sampler(data, step, key)`` for several device-resident datasets at once.

    ``data`` is ``{name: {field: [N_name, ...]}}``; each dataset ``name`` gets its own
    :class:`~jpose.data.batching.BatchSampler` (per-epoch permutations of its own length, keys
    decorrelated by ``fold_in(key, i)``). Under ``pmap`` every device takes its slice by its
    global device index, so in a multi-process run each process draws its own shard.

    Args:
      sizes: ``{name: N}``.
      batch_sizes: ``{name: global batch size}`` (all devices of all processes).
      num_devices: local devices of the ``pmap`` axis (1 in a single process: no axis).
      mode: ``"epoch"`` or ``"random"`` (a dataset smaller than its batch uses ``"random"``).

    Returns:
      The sampler.
    """
    axis = parallel.AXIS if uses_pmap(num_devices) else None
    samplers = {
        name: BatchSampler(
            int(sizes[name]),
            int(batch_sizes[name]),
            mode=mode if batch_sizes[name] <= sizes[name] else "random",
            axis_name=axis,
            num_shards=parallel.global_device_count(num_devices) if axis else None,
        )
        for name in sizes
    }
    order = sorted(samplers)

    def sample(data: Any, step: Any, key: jax.Array) -> dict[str, Any]:
        return {
            name: samplers[name](data[name], step, jax.random.fold_in(key, i))
            for i, name in enumerate(order)
        }

    return sample


def make_block_runner(
    build_step: Callable[[str | None], Callable[..., Any]],
    *,
    steps_per_block: int,
    sampler: Callable[[Any, Any, jax.Array], Any],
    data: Any,
    num_devices: int = 1,
) -> Callable[[TrainState, jax.Array], tuple[TrainState, dict[str, Any]]]:
    """Compile K fused training steps drawing their batches on device.

    Args:
      build_step: ``axis_name -> step`` (``jpose.training.make_train_step(phases,
        axis_name=...)``).
      steps_per_block: K.
      sampler: from :func:`make_sampler` (built with the same ``num_devices``).
      data: device-resident data (:func:`device_arrays`, replicated when ``num_devices > 1``).
      num_devices: 1 = ``jit``; more = ``pmap`` over that many local devices (always ``pmap``
        in a multi-process run, over the devices of all processes).

    Returns:
      ``run_block(state, key) -> (state, metrics)`` on un-replicated states, for
      ``jpose.training.fit``. Its first call logs a one-line "compiling ..." notice.
    """
    notice = CompileNotice(
        f"training block ({steps_per_block} steps, "
        + (f"pmap over {parallel.global_device_count(num_devices)} devices)"
           if uses_pmap(num_devices) else "1 device)")
    )  # fmt: skip
    if not uses_pmap(num_devices):
        multi = jit_step(make_multi_step(build_step(None), steps_per_block, sampler=sampler))
        device = jax.local_devices()[0]

        def run_single(state: TrainState, key: jax.Array) -> tuple[TrainState, dict[str, Any]]:
            notice()
            # Commit the state to the device: a freshly initialised (uncommitted) template and the
            # committed outputs of the first call would otherwise compile the block twice.
            return multi(jax.device_put(state, device), data, key)

        return run_single
    p_multi = parallel.pmap_step(
        make_multi_step(build_step(parallel.AXIS), steps_per_block, sampler=sampler)
    )
    devices = jax.local_devices()[:num_devices]

    def run_block(state: TrainState, key: jax.Array) -> tuple[TrainState, dict[str, Any]]:
        notice()
        state_r, m = p_multi(parallel.replicate(state, devices=devices), data, key)
        return parallel.unreplicate(state_r), parallel.unreplicate(m)

    return run_block


class CompileNotice:
    """Logs ``compiling <what> ...`` once, at the first call (before XLA compiles)."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.done = False

    def __call__(self) -> None:
        if not self.done:
            self.done = True
            LOGGER.info("compiling %s ...", self.what)


# ------------------------------------------------------------------------------------------------
# Staged training
# ------------------------------------------------------------------------------------------------


class StageLogger(MetricsLogger):
    """A :class:`MetricsLogger` for one stage of a multi-stage run: steps are offset so the
    stages form one curve, and every record carries ``stage`` (index) for the figures;
    ``last_samples_per_s`` is the throughput of the last record that measured it."""

    last_samples_per_s: float | None = None

    def __init__(self, workdir: str | os.PathLike[str], *, stage: int, step_offset: int,
                 **kwargs: Any) -> None:  # fmt: skip
        super().__init__(workdir, **kwargs)
        self.stage = stage
        self.step_offset = step_offset

    def log(self, step: int, metrics: Mapping[str, Any], **kwargs: Any) -> dict[str, float]:
        """Log with ``step + step_offset`` and ``stage`` added."""
        values = super().log(
            step + self.step_offset, {**metrics, "stage": float(self.stage)}, **kwargs
        )
        self.last_samples_per_s = values.get("throughput/samples_per_s", self.last_samples_per_s)
        return values


@dataclasses.dataclass
class StageResult:
    """Outcome of :func:`train_stage`.

    Attributes:
      state: the final state of the stage.
      key: the stage's base key.
      num_steps: the stage's total steps.
      resumed_from: checkpoint step restored at the start (None for a fresh stage).
      trained_steps: steps run by this invocation.
      wall_s: wall time of this invocation's training (compilation included).
      samples_per_s: training throughput of the last logged block (None if not measured).
      selected_step: the step whose state is returned: ``num_steps``, or the best validation
        checkpoint with ``select="best"``.
    """

    state: TrainState
    key: jax.Array
    num_steps: int
    resumed_from: int | None
    trained_steps: int
    wall_s: float
    samples_per_s: float | None = None
    selected_step: int | None = None


def train_stage(
    name: str,
    template: TrainState,
    *,
    index: int,
    key: jax.Array,
    run_block: Callable[[TrainState, jax.Array], tuple[TrainState, Mapping[str, Any]]],
    num_steps: int,
    steps_per_block: int,
    workdir: str | os.PathLike[str],
    step_offset: int = 0,
    samples_per_step: int | None = None,
    phases: Sequence[Any] = (),
    checkpoint_every: int | None = None,
    log_every: int = 1,
    max_to_keep: int = 2,
    progress: bool | None = None,
    evaluate: Callable[[TrainState], Mapping[str, float]] | None = None,
    eval_every: int | None = None,
    best_metric: str | None = None,
    select: str = "final",
) -> StageResult:
    """Train (or resume, or skip when complete) one stage in ``<workdir>/checkpoints/<name>``.

    Args:
      name: stage name (checkpoint sub-directory).
      template: freshly built state of this stage (parameters from the previous stage).
      index: stage index (logged as ``stage``).
      key, run_block (from :func:`make_block_runner`), num_steps, steps_per_block,
        samples_per_step, phases, checkpoint_every, log_every, max_to_keep, progress,
        eval_every: as :func:`jpose.training.fit`, for this stage.
      workdir: work directory (``metrics.jsonl`` is shared by all stages).
      step_offset: global step of this stage's step 0 (sum of the earlier stages' steps).
      evaluate: ``state -> {metric: float}`` on a *validation* split held out from the training
        data (:func:`holdout_split`, never the test split); logged with ``split="val"``
        (``metrics.jsonl``, TensorBoard ``val/...``, the training-curve figure).
      best_metric: validation metric (lower is better) whose best checkpoint is kept.
      select: ``"final"`` (the last step) or ``"best"`` (the checkpoint with the lowest
        ``best_metric``) as the returned state; say which in the results header.

    Returns:
      :class:`StageResult`.
    """
    if select not in ("final", "best"):
        raise ValueError(f"select must be 'final' or 'best', got {select!r}")
    if select == "best" and (evaluate is None or best_metric is None):
        raise ValueError("select='best' needs evaluate and best_metric (a validation split)")
    wd = pathlib.Path(workdir)
    ckpt = Checkpointer(wd / "checkpoints" / name, max_to_keep=max_to_keep,
                        best_metric=best_metric if evaluate is not None else None)  # fmt: skip
    resumed = ckpt.latest_step()
    if parallel.is_main_process():
        # records logged after the checkpoint a resume restores are logged again: drop them
        # (before the logger opens the file); status.json records the stage as started
        trim_metrics(wd / "metrics.jsonl", after_step=step_offset + (resumed or 0),
                     until_step=step_offset + num_steps, stage=float(index))  # fmt: skip
        rundir.mark_stage(wd, name, index=index, num_steps=num_steps,
                          finished=resumed is not None and resumed >= num_steps)  # fmt: skip
    logger = StageLogger(
        wd,
        stage=index,
        step_offset=step_offset,
        total_steps=step_offset + num_steps,
        progress=progress,
        enabled=parallel.is_main_process(),  # multi-process: process 0 writes metrics
    )
    if resumed is not None:
        LOGGER.info("stage %s: resuming from checkpoint step %d of %d", name, resumed, num_steps)
    else:
        LOGGER.info("stage %s: %d steps", name, num_steps)
    t0 = time.perf_counter()
    try:
        state = fit(
            template,
            key=key,
            run_block=run_block,
            num_steps=num_steps,
            steps_per_block=steps_per_block,
            workdir=wd,
            samples_per_step=samples_per_step,
            phases=phases,
            checkpoint_every=checkpoint_every,
            log_every=log_every,
            checkpointer=ckpt,
            logger=logger,
            evaluate=evaluate,
            eval_every=eval_every,
        )
        selected = num_steps
        if select == "best":
            best = ckpt.best_step()
            if best is not None and best != num_steps:
                state = ckpt.restore(template, step=best, key=key).state
                selected = best
            LOGGER.info("stage %s: best validation %s at step %d of %d", name, best_metric,
                        selected, num_steps)  # fmt: skip
    except CheckpointMismatchError as err:  # a changed network restored: the user's config
        raise rundir.mark_user_error(err) from None
    finally:
        ckpt.close()
        logger.close()
    if parallel.is_main_process():
        rundir.mark_stage(wd, name, index=index, num_steps=num_steps, finished=True)
    wall = time.perf_counter() - t0
    trained = num_steps - (resumed or 0)
    LOGGER.info("stage %s: %d steps run in %.1f s", name, trained, wall)
    return StageResult(
        state=state,
        key=key,
        num_steps=num_steps,
        resumed_from=resumed,
        trained_steps=trained,
        wall_s=wall,
        samples_per_s=logger.last_samples_per_s,
        selected_step=selected,
    )


# ------------------------------------------------------------------------------------------------
# Declared stages: what a method says, and the loop that runs them
# ------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TrainOptions:
    """The options every stage of a run shares (the ``train`` block of a config).

    Attributes:
      steps_per_block: K, steps fused in one compiled call (stage steps are multiples of K).
      num_devices: local devices of the data-parallel axis (:func:`num_parallel_devices`).
      checkpoint_every: steps between checkpoints (None: end of each stage only).
      log_every: blocks between log records.
      keep_checkpoints: checkpoints kept per stage.
      progress: progress line (None: when the output is a terminal).
    """

    steps_per_block: int
    num_devices: int = 1
    checkpoint_every: int | None = None
    log_every: int = 1
    keep_checkpoints: int = 2
    progress: bool | None = None


@dataclasses.dataclass(frozen=True, eq=False)
class Stage:
    """One training stage, declared by a method and run by :func:`run_stages`.

    The stage's trainable players are those its phases update (:attr:`trainable`), declared once
    here: every other player of the state is frozen for the whole stage, runs in inference mode
    and keeps its statistics (``make_train_step``'s rule).

    Attributes:
      name: checkpoint sub-directory (``checkpoints/<name>``) and label in results.
      phases: the ordered phases of one iteration.
      num_steps: total steps (a multiple of K; 0 skips the stage).
      batch_sizes: ``{dataset name: global batch size}``: the datasets of
        :func:`run_stages`'s ``data`` this stage samples.
      init: ``init(done) -> TrainState``, the stage's freshly built state; ``done`` maps the
        names of the stages already run to their final states, in order. A stage's state is
        donated to the compiled step of the stage that continues from it, so an ``init`` that
        shares arrays with a stage it does not directly follow must copy them.
      key: the stage's base key (batches and randomness are pure functions of key and step).
      sampling: ``"epoch"`` or ``"random"`` (:func:`make_sampler`).
      samples_per_step: batch size for the throughput metric (default: sum of ``batch_sizes``).
      checkpoint_every: overrides :attr:`TrainOptions.checkpoint_every` for this stage.
      evaluate, eval_every, best_metric, select: validation on held-out training data
        (:func:`train_stage`).
    """

    name: str
    phases: Sequence[Any]
    num_steps: int
    batch_sizes: Mapping[str, int]
    init: Callable[[Mapping[str, TrainState]], TrainState]
    key: jax.Array
    sampling: str = "epoch"
    samples_per_step: int | None = None
    checkpoint_every: int | None = None
    evaluate: Callable[[TrainState], Mapping[str, float]] | None = None
    eval_every: int | None = None
    best_metric: str | None = None
    select: str = "final"

    @property
    def trainable(self) -> frozenset[str]:
        """The players some phase of this stage updates (all others are frozen)."""
        return frozenset(n for p in self.phases for n in p.players)


@dataclasses.dataclass
class StagesResult:
    """Outcome of :func:`run_stages`: every stage run (skipped stages excluded), in order."""

    stages: dict[str, StageResult]

    @property
    def state(self) -> TrainState | None:
        """The final state of the last stage run (None when every stage had 0 steps)."""
        return next(reversed(self.stages.values())).state if self.stages else None

    @property
    def wall_s(self) -> float:
        """Training wall time of this invocation, all stages."""
        return sum(r.wall_s for r in self.stages.values())

    def summary(self) -> dict[str, dict[str, Any]]:
        """``{stage: {steps, trained_steps, resumed_from, wall_s, samples_per_s}}`` for
        ``results.json``."""
        return {
            name: {"steps": r.num_steps, "trained_steps": r.trained_steps,
                   "resumed_from": r.resumed_from, "wall_s": round(r.wall_s, 2),
                   "samples_per_s": r.samples_per_s}
            for name, r in self.stages.items()
        }  # fmt: skip

    def timings(self, t_start: float, **more: float) -> dict[str, float]:
        """``results.json``'s ``timings``: ``train_wall_s`` (:attr:`wall_s`), ``total_wall_s``
        (since ``t_start``, a ``time.perf_counter()`` value) and ``more``."""
        return {"train_wall_s": self.wall_s, "total_wall_s": time.perf_counter() - t_start, **more}


def run_stages(
    stages: Sequence[Stage],
    data: Mapping[str, Mapping[str, np.ndarray]],
    *,
    workdir: str | os.PathLike[str],
    options: TrainOptions,
    start_index: int = 0,
    step_offset: int = 0,
    compiled: dict[Any, Any] | None = None,
) -> StagesResult:
    """Train (resume, or skip when complete) declared stages in order.

    Each dataset is put on device once; each stage gets its sampler over the datasets it names,
    its K-step block runner and :func:`train_stage`. Stage ``i`` of the list logs as stage ``i``
    whether or not earlier ones were skipped, so a work directory's curves keep their meaning
    when a stage is switched off.

    Args:
      stages: the declared stages.
      data: ``{dataset name: {field: host array [N, ...]}}`` (all fields of a dataset share N).
      workdir: the work directory.
      options: :class:`TrainOptions`.
      start_index: stage index of ``stages[0]`` (continuing a run declared in parts, e.g. one
        shared first stage, then each ablation's stages in its own work directory).
      step_offset: global step of ``stages[0]``'s step 0.
      compiled: a dict that keeps the compiled blocks (and device data) across calls, for a run
        declared in parts whose parts repeat a stage's phases (Zhou-image's stage 1 and each
        ablation's stages 2-3 share one block); a block is reused only for the same phases
        object, batch sizes and host arrays.

    Returns:
      :class:`StagesResult`.
    """
    names = [s.name for s in stages]
    if len(set(names)) != len(names):
        raise ValueError(f"stage names must be unique, got {names}")
    k = int(options.steps_per_block)
    cache = {} if compiled is None else compiled
    on_device: dict[Any, Any] = cache.setdefault("data", {})
    runners: dict[Any, Any] = cache.setdefault("blocks", {})
    done: dict[str, TrainState] = {}
    results: dict[str, StageResult] = {}
    offset = step_offset
    for index, stage in enumerate(stages, start=start_index):
        if stage.num_steps <= 0:
            continue
        if stage.num_steps % k:
            raise ValueError(f"stage {stage.name!r}: {stage.num_steps} steps is not a multiple "
                             f"of steps_per_block={k}")  # fmt: skip
        missing = sorted(set(stage.batch_sizes) - set(data))
        if missing:
            raise ValueError(f"stage {stage.name!r} samples datasets {missing}; "
                             f"data has {sorted(data)}")  # fmt: skip
        template = stage.init(dict(done))
        if int(template.step) != 0:
            raise ValueError(f"stage {stage.name!r}: init returned a state at step "
                             f"{int(template.step)}; a stage starts at step 0 (state.replace("
                             "step=0) keeps the players and restarts the schedules)")  # fmt: skip
        unknown = sorted(stage.trainable - set(template.players))
        if unknown:
            raise ValueError(f"stage {stage.name!r} trains players {unknown} its state lacks "
                             f"(players: {sorted(template.players)})")  # fmt: skip
        for n in stage.batch_sizes:
            if (n, id(data[n])) not in on_device:  # keyed by the host arrays, kept alive with
                # their device copy so that their id cannot be reused by other arrays
                on_device[n, id(data[n])] = (data[n], device_arrays(
                    data[n], num_devices=options.num_devices))  # fmt: skip
        # stages with the same phases, datasets and batch sizes share one compiled block
        # (Drover's seeds, WSP's initialisations): jit caches key on the function object. The
        # key holds the Phase objects themselves (hashed by identity), so the entry keeps them
        # alive and no other phases can take their place
        runner_key = (
            tuple(stage.phases),
            tuple(sorted(stage.batch_sizes.items())),
            stage.sampling,
            tuple(id(data[n]) for n in sorted(stage.batch_sizes)),
        )
        if runner_key not in runners:
            sizes = {n: len(next(iter(data[n].values()))) for n in stage.batch_sizes}
            sampler = make_sampler(sizes, stage.batch_sizes, num_devices=options.num_devices,
                                   mode=stage.sampling)  # fmt: skip
            runners[runner_key] = make_block_runner(
                lambda axis, phases=tuple(stage.phases): make_train_step(phases, axis_name=axis),
                steps_per_block=k, sampler=sampler, num_devices=options.num_devices,
                data={n: on_device[n, id(data[n])][1] for n in stage.batch_sizes},
            )  # fmt: skip
        every = stage.checkpoint_every if stage.checkpoint_every is not None else (
            options.checkpoint_every)  # fmt: skip
        result = train_stage(
            stage.name, template, index=index, key=stage.key, run_block=runners[runner_key],
            num_steps=stage.num_steps, steps_per_block=k, workdir=workdir, step_offset=offset,
            samples_per_step=stage.samples_per_step or sum(stage.batch_sizes.values()),
            phases=tuple(stage.phases), checkpoint_every=every or None,
            log_every=options.log_every, max_to_keep=options.keep_checkpoints,
            progress=options.progress, evaluate=stage.evaluate, eval_every=stage.eval_every,
            best_metric=stage.best_metric, select=stage.select,
        )  # fmt: skip
        done[stage.name] = result.state
        results[stage.name] = result
        offset += stage.num_steps
    return StagesResult(results)
