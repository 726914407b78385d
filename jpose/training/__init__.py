"""The training engine: per-player states, phase-based step factories, data parallelism,
scan-fused loops, schedules, checkpoints and logging.

An experiment assembles a run from:

* ``create_player(model, tx, key, *example_inputs)`` per network and ``create_train_state``;
* ``Phase(name, players, loss_fn)`` per update, ordered with ``alternating_gan_phases`` (D, then G
  against the updated D, then the lifter, then the 2D-only step);
* ``make_train_step(phases, axis_name=...)`` -> pure ``(state, batch, key) -> (state, metrics)``;
* ``make_multi_step(step, K, sampler=...)`` to fuse K steps into one compiled call, ``jit_step``
  or ``parallel.pmap_step`` to compile it;
* ``fit(...)`` (or an own loop with ``Checkpointer``, ``MetricsLogger`` and ``check_finite``);
* or, for a whole multi-stage run, ``stages.Stage`` declarations run by ``stages.run_stages``
  (devices, samplers, compiled blocks, checkpoints, resume, logging), then
  ``reports.write_results`` / ``write_figures`` (``results.{json,md}``, ``figures/``);
* ``sweep`` to compare configurations at equal budget over seeds (a training command per seed,
  reused when finished; mean ± std; the verdict against the seeds' spread; a markdown report).
"""

from jpose.training import parallel
from jpose.training.checkpoint import Checkpointer, Restored
from jpose.training.logging import MetricsLogger, discriminator_accuracy
from jpose.training.loop import fit
from jpose.training.schedules import make_schedule, schedule_from_config
from jpose.training.state import (
    PlayerState,
    TrainState,
    clipped,
    create_player,
    create_train_state,
)
from jpose.training.steps import (
    GAN_PHASE_ORDER,
    NonFiniteError,
    Phase,
    PhaseContext,
    alternating_gan_phases,
    check_finite,
    jit_step,
    make_multi_step,
    make_train_step,
    predict,
)

__all__ = [
    "GAN_PHASE_ORDER",
    "Checkpointer",
    "MetricsLogger",
    "NonFiniteError",
    "Phase",
    "PhaseContext",
    "PlayerState",
    "Restored",
    "TrainState",
    "alternating_gan_phases",
    "check_finite",
    "clipped",
    "create_player",
    "create_train_state",
    "discriminator_accuracy",
    "fit",
    "jit_step",
    "make_multi_step",
    "make_schedule",
    "make_train_step",
    "parallel",
    "predict",
    "schedule_from_config",
]
