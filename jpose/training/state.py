"""Training state: one :class:`PlayerState` per network, gathered in a :class:`TrainState`.

A *player* is one network with its own optimiser (lifter, generator, 2D/3D discriminators, camera
branch, refinement network, ...). Its state holds the trainable ``params``, the batch-norm running
averages ``batch_stats`` and the optax ``opt_state``; the model (pure ``init``/``apply``), the optax
transformation and an optional post-update projection are static (not pytree leaves), so jit caches
stay valid as long as the same objects are reused (restoring a checkpoint into a template keeps
them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax

from jpose.models.core import Model

__all__ = [
    "PlayerState",
    "clipped",
    "TrainState",
    "create_player",
    "create_train_state",
    "with_schedule_count",
]

PyTree = Any


@flax.struct.dataclass
class PlayerState:
    """One player's state.

    Attributes:
      params: trainable parameters.
      batch_stats: batch-norm running averages (``{}`` when the model has none).
      opt_state: optax state of ``tx``.
      model: the :class:`jpose.models.Model` (static).
      tx: the optax transformation (static).
      constraint: optional ``params -> params`` projection applied after every update (static),
        e.g. ``jpose.models.max_norm_constraint``.
    """

    params: PyTree
    batch_stats: PyTree
    opt_state: optax.OptState
    model: Model = flax.struct.field(pytree_node=False)
    tx: optax.GradientTransformation = flax.struct.field(pytree_node=False)
    constraint: Callable[[PyTree], PyTree] | None = flax.struct.field(
        pytree_node=False, default=None
    )

    def variables(self, params: PyTree | None = None) -> dict[str, PyTree]:
        """``{"params", "batch_stats"}`` for :meth:`Model.apply` (``params`` overrides)."""
        return {
            "params": self.params if params is None else params,
            "batch_stats": self.batch_stats,
        }

    def with_variables(self, params: PyTree, batch_stats: PyTree) -> PlayerState:
        """This player with other variables (e.g. a previous stage's, or transferred weights)
        and a fresh state of its optimiser: how a stage starts from earlier training."""
        return self.replace(params=params, batch_stats=batch_stats, opt_state=self.tx.init(params))

    def apply_gradients(
        self,
        grads: PyTree,
        *,
        batch_stats: PyTree | None = None,
        step: jax.Array | int | None = None,
    ) -> PlayerState:
        """One optimiser update (then the constraint); optionally replace the batch statistics.

        Args:
          grads: gradients with the structure of ``params``.
          batch_stats: new batch-norm running averages (None keeps the current ones).
          step: the iteration count of the stage. When given, the learning-rate schedules inside
            ``tx`` are evaluated at ``step`` instead of at the number of updates this optimiser
            has made (:func:`with_schedule_count`; Adam's bias correction keeps counting
            updates).
        """
        opt_state = self.opt_state if step is None else with_schedule_count(self.opt_state, step)
        updates, opt_state = self.tx.update(grads, opt_state, self.params)
        params = optax.apply_updates(self.params, updates)
        if self.constraint is not None:
            params = self.constraint(params)
        return self.replace(
            params=params,
            opt_state=opt_state,
            batch_stats=self.batch_stats if batch_stats is None else batch_stats,
        )


def clipped(tx: optax.GradientTransformation, clip_norm: float) -> optax.GradientTransformation:
    """``tx`` after global-norm gradient clipping at ``clip_norm`` (``<= 0``: ``tx`` itself)."""
    if float(clip_norm) <= 0:
        return tx
    return optax.chain(optax.clip_by_global_norm(float(clip_norm)), tx)


_SCHEDULE_STATES = (
    optax.ScaleByScheduleState,
    optax.InjectHyperparamsState,
    optax.InjectStatefulHyperparamsState,
)


def with_schedule_count(opt_state: optax.OptState, count: jax.Array | int) -> optax.OptState:
    """``opt_state`` with the count read by its learning-rate schedules set to ``count``.

    The harness's rule (``jpose.training.steps``): a schedule is a function of the stage's
    iteration count, never of how many times a player's optimiser was stepped. The counters of
    ``optax.scale_by_schedule`` (used by ``optax.adam(schedule)`` and friends) and of
    ``optax.inject_hyperparams`` are replaced; all other state (Adam's moments and its
    bias-correction count) is untouched.

    Args:
      opt_state: an optax state.
      count: int scalar (the iteration).

    Returns:
      The state with the schedule counters replaced (same tree structure and dtypes).
    """

    def fix(s: Any) -> Any:
        if isinstance(s, _SCHEDULE_STATES):
            return s._replace(count=jnp.asarray(count, s.count.dtype))
        return s

    return jax.tree_util.tree_map(fix, opt_state, is_leaf=lambda s: isinstance(s, _SCHEDULE_STATES))


def create_player(
    model: Model,
    tx: optax.GradientTransformation,
    key: jax.Array,
    *example_inputs: Any,
    constraint: Callable[[PyTree], PyTree] | None = None,
) -> PlayerState:
    """Initialise a player.

    Args:
      model: the network.
      tx: its optimiser (e.g. ``optax.chain(optax.clip_by_global_norm(1.0), optax.adam(sched))``).
      key: typed PRNG key for the initial parameters.
      *example_inputs: example model inputs (batch size >= 2 when the model has batch norm).
      constraint: optional post-update projection.

    Returns:
      A :class:`PlayerState`.
    """
    variables = model.init(key, *example_inputs)
    params = variables["params"]
    if constraint is not None:
        params = constraint(params)
    return PlayerState(
        params=params,
        batch_stats=variables.get("batch_stats", {}),
        opt_state=tx.init(params),
        model=model,
        tx=tx,
        constraint=constraint,
    )


@flax.struct.dataclass
class TrainState:
    """Everything that changes during training.

    Attributes:
      step: number of completed iterations (int32 scalar); the step key is
        ``fold_in(base_key, step)``.
      players: ``{name: PlayerState}``.
      extra: experiment-owned pytree of arrays (e.g. a fake-sample history buffer), updated by
        phases through ``PhaseContext.set_extra``; ``{}`` when unused.
    """

    step: jax.Array
    players: dict[str, PlayerState]
    extra: PyTree = flax.struct.field(default_factory=dict)

    def __getitem__(self, name: str) -> PlayerState:
        return self.players[name]


def create_train_state(players: Mapping[str, PlayerState], *, extra: PyTree = None) -> TrainState:
    """A :class:`TrainState` at step 0."""
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        players=dict(players),
        extra={} if extra is None else extra,
    )
