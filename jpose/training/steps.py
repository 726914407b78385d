"""Step factories: pure ``(state, batch, key) -> (state, metrics)`` functions built from phases.

A training iteration is an ordered sequence of :class:`Phase` objects. Each phase names the
players it updates and a loss closure ``loss_fn(ctx, batch) -> (loss, metrics)``; inside it,
``ctx.apply(name, *inputs)`` runs any player -- differentiably for the phase's own players, with
``stop_gradient`` parameters for the others -- using the states *as updated by the earlier phases
of the same iteration*. So with the canonical order :data:`GAN_PHASE_ORDER`

1. ``discriminator``: D_2D / D_3D update on real vs generated samples,
2. ``generator``: G update against the **updated** discriminators (alternating, not simultaneous),
3. ``lifter``: lifter (+ camera branch) update on real + generated pairs,
4. ``weak2d``: the 2D-only step (e.g. CameraPose eq. 17),

every phase sees its predecessors' parameter updates (PoseAug / CameraPose iteration). Phases can
pass arrays to later phases with ``ctx.emit(name, value)`` / ``ctx.outputs[name]`` (values are
``stop_gradient``-ed), and update the experiment-owned ``state.extra`` (e.g. a fake-sample history
buffer) with ``ctx.set_extra``.

Keys: the step derives ``key_t = fold_in(key, state.step)`` from the *base* key it is given (the
same base key every call), then ``fold_in(key_t, phase_index)`` per phase and a fresh
``fold_in(., counter)`` per ``ctx.apply`` / ``ctx.next_key()``. Under ``pmap`` the device index is
folded in too (``per_device_keys``), so dropout masks and generator noise differ across devices.

Data parallelism: pass ``axis_name`` (see ``jpose.training.parallel``). Gradients, losses, metrics
and new batch statistics are ``pmean``-ed over that axis, and every ``ctx.apply`` gives batch norm
the axis name, so normalisation uses global-batch statistics. Losses must be means over the local
batch (equal local batch sizes) for the data-parallel step to equal the global-batch step.

Rules the step enforces for every method (one place, so no method can forget them):

* **Schedules count iterations.** A learning-rate schedule is a function of ``state.step`` (the
  stage's iteration count), never of how many times a player's optimiser was stepped
  (:func:`jpose.training.state.with_schedule_count`): a player updated in two phases of one
  iteration (CameraPose's ``lifter`` and ``weak2d``) gets the same rate in both, and a player
  updated every second iteration (``Phase.every``) sees epoch boundaries where they are.
* **Frozen players run in inference mode.** A player that no phase of the step updates (frozen
  for the stage, e.g. CameraPose's refinement network after stage 1) is applied with
  ``train=False`` by every ``ctx.apply`` (batch-norm running averages, no dropout), and its
  running statistics are never updated, so training and evaluation see the same function.

Non-finite guard: with ``skip_nonfinite=True`` a phase whose loss or gradients are not finite
leaves its players unchanged and reports ``<phase>/nonfinite = 1``; :func:`check_finite` raises a
:class:`NonFiniteError` naming step, phase, players and metric keys on the host.
"""

from __future__ import annotations

import dataclasses
import functools
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jpose.models.core import ordered_pmean
from jpose.training.state import PlayerState, TrainState

__all__ = [
    "GAN_PHASE_ORDER",
    "NonFiniteError",
    "Phase",
    "PhaseContext",
    "alternating_gan_phases",
    "check_finite",
    "jit_step",
    "make_multi_step",
    "make_train_step",
    "predict",
]

PyTree = Any
LossFn = Callable[["PhaseContext", Any], tuple[jax.Array, Mapping[str, jax.Array]]]

#: The documented order of one adversarial iteration (see module docstring).
GAN_PHASE_ORDER = ("discriminator", "generator", "lifter", "weak2d")


@dataclasses.dataclass(frozen=True, eq=False)
class Phase:
    """One update within an iteration.

    Attributes:
      name: metric prefix and identifier (unique within a step).
      players: names of the players whose parameters this phase differentiates and updates (one
        joint loss; each player steps its own optimiser).
      loss_fn: ``loss_fn(ctx, batch) -> (scalar loss, {metric_name: scalar})``.
      every: run only on steps with ``step % every == 0`` (e.g. PoseAug's D every 2 G-steps).
      when: optional ``when(state, batch) -> bool scalar``; the phase runs only where it is true
        (e.g. Drover/KG's accuracy-gated updates). Must agree across devices under ``pmap``.
    """

    name: str
    players: tuple[str, ...]
    loss_fn: LossFn
    every: int = 1
    when: Callable[[TrainState, Any], jax.Array] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.players, str):
            object.__setattr__(self, "players", (self.players,))
        if not self.players:
            raise ValueError(f"phase {self.name!r} updates no players")
        if self.every < 1:
            raise ValueError(f"phase {self.name!r}: every must be >= 1, got {self.every}")


class PhaseContext:
    """What a phase's loss function sees; created fresh for every (traced) loss evaluation.

    Attributes:
      state: the :class:`TrainState` at the start of this phase (earlier phases applied).
      step: ``state.step`` (int32 scalar, the iteration index).
      outputs: arrays emitted by earlier phases of this iteration.
      axis_name: the data-parallel axis name or None.
      stage_players: the players some phase of the step updates (None: all players); the
        others are frozen and always run in inference mode.
    """

    def __init__(
        self,
        state: TrainState,
        trainable: Mapping[str, PyTree],
        *,
        key: jax.Array,
        axis_name: str | None,
        outputs: Mapping[str, Any],
        stage_players: frozenset[str] | None = None,
    ) -> None:
        self.state = state
        self.step = state.step
        self.outputs = dict(outputs)
        self.axis_name = axis_name
        self._trainable = trainable
        self._stage_players = stage_players
        self._key = key
        self._counter = 0
        self.new_batch_stats: dict[str, PyTree] = {}
        self.emitted: dict[str, Any] = {}
        self.extra_update: PyTree | None = None

    @property
    def extra(self) -> PyTree:
        """The experiment-owned ``state.extra`` (latest value set in this phase, if any)."""
        return self.state.extra if self.extra_update is None else self.extra_update

    def params(self, name: str) -> PyTree:
        """Parameters of ``name``: differentiable if this phase trains it, else stop-gradient."""
        if name in self._trainable:
            return self._trainable[name]
        return jax.lax.stop_gradient(self.state.players[name].params)

    def next_key(self) -> jax.Array:
        """A fresh key (deterministic sequence within the phase)."""
        k = jax.random.fold_in(self._key, self._counter)
        self._counter += 1
        return k

    def key_for(self, name: str) -> jax.Array:
        """A key derived from a name (independent of the call order)."""
        return jax.random.fold_in(self._key, zlib.crc32(name.encode()) & 0x7FFFFFFF)

    def frozen(self, name: str) -> bool:
        """Whether no phase of the step updates ``name`` (it then runs in inference mode)."""
        return self._stage_players is not None and name not in self._stage_players

    def apply(
        self,
        name: str,
        *inputs: Any,
        train: bool = True,
        key: jax.Array | None = None,
        update_stats: bool | None = None,
    ) -> Any:
        """Run player ``name`` on ``inputs``.

        Args:
          name: player name.
          *inputs: model inputs.
          train: training mode (batch statistics, dropout, running-average update). Ignored
            for a frozen player (:meth:`frozen`): it always runs in inference mode.
          key: RNG key (default: ``next_key()``).
          update_stats: keep the new batch-norm running averages (default: ``train`` and the player
            is trained by this phase). Repeated calls chain the running averages. Never for a
            frozen player.

        Returns:
          The model output.
        """
        if self.frozen(name):  # the harness's rule: frozen players are in inference mode
            train, update_stats = False, False
        player = self.state.players[name]
        batch_stats = self.new_batch_stats.get(name, player.batch_stats)
        out, new_stats = player.model.apply(
            {"params": self.params(name), "batch_stats": batch_stats},
            *inputs,
            train=train,
            key=self.next_key() if key is None else key,
            axis_name=self.axis_name if train else None,
        )
        if update_stats is None:
            update_stats = train and name in self._trainable
        if update_stats and new_stats:
            self.new_batch_stats[name] = jax.lax.stop_gradient(new_stats)
        return out

    def emit(self, name: str, value: Any) -> None:
        """Make ``value`` (stop-gradient) available to later phases as ``ctx.outputs[name]``."""
        self.emitted[name] = jax.lax.stop_gradient(value)

    def set_extra(self, value: PyTree) -> None:
        """Replace ``state.extra`` after this phase (same tree structure, shapes and dtypes)."""
        self.extra_update = jax.lax.stop_gradient(value)


def _run_phase(
    phase: Phase,
    state: TrainState,
    batch: Any,
    key: jax.Array,
    outputs: Mapping[str, Any],
    *,
    axis_name: str | None,
    skip_nonfinite: bool,
    stage_players: frozenset[str] | None = None,
) -> tuple[TrainState, dict[str, jax.Array], dict[str, Any]]:
    for n in phase.players:
        if n not in state.players:
            raise ValueError(
                f"phase {phase.name!r} trains unknown player {n!r}; "
                f"players: {sorted(state.players)}"
            )
    params = {n: state.players[n].params for n in phase.players}

    def loss_wrapper(p: PyTree) -> tuple[jax.Array, tuple[Any, ...]]:
        ctx = PhaseContext(
            state, p, key=key, axis_name=axis_name, outputs=outputs, stage_players=stage_players
        )
        loss, metrics = phase.loss_fn(ctx, batch)
        loss = jnp.asarray(loss)
        if loss.shape != ():
            raise ValueError(
                f"phase {phase.name!r}: loss_fn must return a scalar loss, got shape {loss.shape}"
            )
        return loss, (dict(metrics), ctx.new_batch_stats, ctx.emitted, ctx.extra_update)

    (loss, aux), grads = jax.value_and_grad(loss_wrapper, has_aux=True)(params)
    metrics, new_stats, emitted, extra_update = aux
    if axis_name is not None:
        # in device order: the same sums on any topology (one or several processes)
        grads, loss, metrics, new_stats = ordered_pmean(
            (grads, loss, metrics, new_stats), axis_name
        )
    out_metrics = {f"{phase.name}/loss": loss}
    out_metrics.update({f"{phase.name}/{k}": jnp.asarray(v) for k, v in metrics.items()})
    finite = jnp.isfinite(loss)
    players = dict(state.players)
    for n in phase.players:
        gnorm = optax.global_norm(grads[n])
        out_metrics[f"{phase.name}/grad_norm/{n}"] = gnorm
        finite = finite & jnp.isfinite(gnorm)
        # schedules see the iteration (state.step), not this optimiser's update count
        players[n] = players[n].apply_gradients(
            grads[n], batch_stats=new_stats.get(n), step=state.step
        )
    for n, stats in new_stats.items():
        if n not in phase.players:
            players[n] = players[n].replace(batch_stats=stats)
    new_state = state.replace(players=players)
    if extra_update is not None:
        new_state = new_state.replace(extra=extra_update)
    if skip_nonfinite:
        new_state = jax.tree_util.tree_map(lambda a, b: jnp.where(finite, a, b), new_state, state)
    out_metrics[f"{phase.name}/nonfinite"] = 1.0 - finite.astype(jnp.float32)
    return new_state, out_metrics, emitted


def make_train_step(
    phases: Sequence[Phase],
    *,
    axis_name: str | None = None,
    skip_nonfinite: bool = True,
    per_device_keys: bool = True,
) -> Callable[[TrainState, Any, jax.Array], tuple[TrainState, dict[str, jax.Array]]]:
    """Build one training iteration from ordered phases.

    Alternating updates, frozen players and schedules as in the module docstring; for the
    adversarial methods :func:`alternating_gan_phases` gives the order :data:`GAN_PHASE_ORDER`.

    Args:
      phases: the ordered phases (unique names).
      axis_name: data-parallel axis name (the step must then run under ``pmap`` with that name).
      skip_nonfinite: leave a phase's players unchanged when its loss or gradients are not finite.
      per_device_keys: under ``axis_name``, fold the device index into the phase keys.

    Returns:
      ``step(state, batch, key) -> (state, metrics)``, pure: ``key`` is the run's base key (pass
      the same one every call); ``metrics`` maps ``"<phase>/<name>"`` to scalars, including
      ``<phase>/loss``, ``<phase>/grad_norm/<player>`` and ``<phase>/nonfinite``, plus
      ``<phase>/active`` for conditional phases.
    """
    phases = tuple(phases)
    names = [p.name for p in phases]
    if len(set(names)) != len(names):
        raise ValueError(f"phase names must be unique, got {names}")
    if not phases:
        raise ValueError("a train step needs at least one phase")
    run_phase = functools.partial(
        _run_phase,
        axis_name=axis_name,
        skip_nonfinite=skip_nonfinite,
        stage_players=frozenset(n for p in phases for n in p.players),
    )

    def step(state: TrainState, batch: Any, key: jax.Array) -> tuple[TrainState, dict[str, Any]]:
        step_key = jax.random.fold_in(key, state.step)
        if axis_name is not None and per_device_keys:
            step_key = jax.random.fold_in(step_key, jax.lax.axis_index(axis_name))
        outputs: dict[str, Any] = {}
        metrics: dict[str, jax.Array] = {}
        for i, phase in enumerate(phases):
            pkey = jax.random.fold_in(step_key, i)

            def run(state: TrainState, outputs: dict[str, Any], phase=phase, pkey=pkey):
                return run_phase(phase, state, batch, pkey, outputs)

            if phase.every == 1 and phase.when is None:
                state, m, emitted = run(state, outputs)
            else:
                active = jnp.asarray(True)
                if phase.every > 1:
                    active = active & (state.step % phase.every == 0)
                if phase.when is not None:
                    active = active & jnp.asarray(phase.when(state, batch), bool)
                shapes = jax.eval_shape(run, state, outputs)

                def skip(state: TrainState, outputs: dict[str, Any], shapes=shapes):
                    zeros = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
                    return state, zeros[1], zeros[2]

                state, m, emitted = jax.lax.cond(active, run, skip, state, outputs)
                m[f"{phase.name}/active"] = active.astype(jnp.float32)
            metrics.update(m)
            outputs.update(emitted)
        return state.replace(step=state.step + 1), metrics

    return step


def alternating_gan_phases(
    *,
    discriminator: Phase | None = None,
    generator: Phase | None = None,
    lifter: Phase | None = None,
    weak2d: Phase | None = None,
) -> tuple[Phase, ...]:
    """The phases of one adversarial iteration in the documented order.

    D first, then G against the *updated* D, then the lifter on real + generated data, then the
    2D-only step (:data:`GAN_PHASE_ORDER`). Absent phases are skipped.

    Returns:
      The phases in order, for :func:`make_train_step`.
    """
    ordered = (discriminator, generator, lifter, weak2d)
    return tuple(p for p in ordered if p is not None)


def _reduce_metrics(stacked: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
    """Mean over the K steps of a block; a conditional phase's metrics (``<phase>/active``)
    average over the steps where it ran (a skipped step reports zeros, which would halve e.g.
    the accuracy of a discriminator updated every second step)."""
    out = {}
    for k, v in stacked.items():
        v = v.astype(jnp.float32)
        active = stacked.get(f"{k.partition('/')[0]}/active")
        if active is None or k.endswith("/active"):
            out[k] = jnp.mean(v, axis=0)
        else:
            w = active.astype(jnp.float32).reshape((-1,) + (1,) * (v.ndim - 1))
            out[k] = jnp.sum(v * w, axis=0) / jnp.maximum(jnp.sum(w, axis=0), 1.0)
    if stacked:
        bad = jnp.zeros(next(iter(stacked.values())).shape[0], bool)
        for k, v in stacked.items():
            v = v.astype(jnp.float32)
            bad = bad | ~jnp.isfinite(v.reshape(v.shape[0], -1)).all(axis=1)
            if k.endswith("/nonfinite"):
                bad = bad | (v > 0)
        out["first_nonfinite"] = jnp.where(bad.any(), jnp.argmax(bad), -1).astype(jnp.int32)
    return out


def make_multi_step(
    step: Callable[[TrainState, Any, jax.Array], tuple[TrainState, dict[str, jax.Array]]],
    num_steps: int,
    *,
    sampler: Callable[[Any, jax.Array, jax.Array], Any] | None = None,
) -> Callable[[TrainState, Any, jax.Array], tuple[TrainState, dict[str, jax.Array]]]:
    """Fuse ``num_steps`` iterations into one ``lax.scan`` (one compiled call, no Python dispatch).

    Args:
      step: a step from :func:`make_train_step`.
      num_steps: K, iterations per call.
      sampler: optional ``sampler(data, step, key) -> batch`` drawing iteration ``step``'s batch
        from a device-resident dataset ``data`` (derive its randomness from ``key`` and ``step``
        only, e.g. a per-epoch permutation from ``fold_in(key, epoch)``, so resuming reproduces
        the batches). Without a sampler ``data`` is a pytree of K stacked batches ``[K, ...]``.

    Returns:
      ``multi(state, data, key) -> (state, metrics)`` with metrics averaged over the K steps and
      ``first_nonfinite``: index within the block of the first step with a non-finite metric or a
      skipped update (-1 if none).
    """
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")

    def multi(state: TrainState, data: Any, key: jax.Array) -> tuple[TrainState, dict]:
        if sampler is None:
            lengths = {np.shape(x)[0] for x in jax.tree_util.tree_leaves(data)}
            if lengths != {num_steps}:
                raise ValueError(
                    f"stacked batches must have leading axis K={num_steps}, got lengths {lengths}"
                )

        def body(state: TrainState, xs: Any) -> tuple[TrainState, dict]:
            batch = sampler(data, state.step, key) if sampler is not None else xs
            return step(state, batch, key)

        state, stacked = jax.lax.scan(
            body, state, None if sampler is not None else data, length=num_steps
        )
        return state, _reduce_metrics(stacked)

    return multi


def jit_step(fn: Callable[..., Any], *, donate_state: bool | None = None) -> Callable[..., Any]:
    """``jax.jit`` a ``(state, batch, key)`` step, donating the state's buffers on accelerators.

    With donation the input state must not be used after the call (XLA reuses its memory).
    ``donate_state=None`` (default) donates on GPU/TPU, where it halves the state's memory, and
    not on CPU, where XLA's in-place update of donated buffers made the Martinez lifter step
    ~8 % (batch 1024) to ~70 % (batch 64) slower (``benchmarks/RESULTS.md``).
    """
    if donate_state is None:
        donate_state = jax.default_backend() != "cpu"
    return jax.jit(fn, donate_argnums=(0,) if donate_state else ())


class NonFiniteError(FloatingPointError):
    """A loss, metric or gradient became NaN/inf; the message names step, phase, players, keys."""


def check_finite(metrics: Mapping[str, Any], *, step: int, phases: Sequence[Phase] = ()) -> None:
    """Raise :class:`NonFiniteError` if any metric is non-finite or a phase skipped its update.

    Args:
      metrics: host or device metrics of one step or one fused block (``first_nonfinite`` gives
        the offset of the first bad step in the block).
      step: the (first) step the metrics belong to.
      phases: the step's phases, to name the players of the offending phase.
    """
    players = {p.name: p.players for p in phases}
    bad: dict[str, list[str]] = {}
    for k, v in metrics.items():
        if k == "first_nonfinite":
            continue
        arr = np.asarray(v)
        phase, _, rest = k.partition("/")
        if not np.all(np.isfinite(arr)) or (k.endswith("/nonfinite") and np.any(arr > 0)):
            bad.setdefault(phase, []).append(rest or k)
    if not bad:
        return
    offset = int(np.asarray(metrics.get("first_nonfinite", 0)))
    at = step + max(offset, 0)
    parts = [
        f"phase {ph!r} (players {list(players.get(ph, ('?',)))}): keys {sorted(keys)}"
        for ph, keys in bad.items()
    ]
    raise NonFiniteError(f"non-finite loss/gradient at step {at}: " + "; ".join(parts))


def predict(player: PlayerState, *inputs: Any, key: jax.Array | None = None) -> Any:
    """Evaluation-mode forward pass of a player (running batch statistics, no dropout)."""
    return player.model.apply(player.variables(), *inputs, train=False, key=key)[0]
