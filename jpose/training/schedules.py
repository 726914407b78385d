"""Learning-rate schedules of the papers, as optax schedules of the *optimiser step* count.

Epoch-based definitions are converted with ``steps_per_epoch`` (the schedule changes at epoch
boundaries, like PyTorch's per-epoch ``LambdaLR`` / ``MultiStepLR``):

* ``"constant"``: ``lr``.
* ``"step"``: piecewise constant, multiplied by ``factor`` at each epoch in ``boundaries``
  (CameraPose: stage 1 decays at 30/60/90, stage 3 at 30/60; Li et al.: x0.1 every 100 epochs).
* ``"linear"``: PoseAug's ``LambdaLR`` factor ``1 - epoch / (epochs + 1)`` (per epoch).
* ``"exponential"``: ``lr * decay_rate ** (epoch / decay_epochs)`` (``staircase`` for integer
  powers; Martinez et al.: 0.96 every 100k steps -> ``decay_epochs = 1e5 / steps_per_epoch``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax.numpy as jnp
import optax

__all__ = ["make_schedule", "schedule_from_config"]


def make_schedule(
    *,
    kind: str,
    lr: float,
    steps_per_epoch: int,
    epochs: int | None = None,
    boundaries: Sequence[float] = (),
    factor: float = 0.1,
    decay_rate: float = 0.96,
    decay_epochs: float = 1.0,
    staircase: bool = False,
) -> optax.Schedule:
    """Build a schedule ``count -> lr``.

    Args:
      kind: ``"constant" | "step" | "linear" | "exponential"``.
      lr: base learning rate.
      steps_per_epoch: optimiser steps per epoch (> 0).
      epochs: total epochs (``"linear"`` only).
      boundaries: epochs at which ``"step"`` multiplies by ``factor``.
      factor: multiplicative decay of ``"step"``.
      decay_rate, decay_epochs, staircase: ``"exponential"`` parameters.

    Returns:
      An optax schedule (jit-compatible function of the int step count).
    """
    if steps_per_epoch <= 0:
        raise ValueError(f"steps_per_epoch must be positive, got {steps_per_epoch}")
    if kind == "constant":
        return optax.constant_schedule(lr)
    if kind == "step":
        bounds = {int(round(b * steps_per_epoch)): factor for b in boundaries}
        return optax.piecewise_constant_schedule(lr, bounds)
    if kind == "linear":
        if epochs is None:
            raise ValueError("the 'linear' schedule needs epochs")

        def linear(count: Any) -> Any:
            epoch = jnp.floor_divide(count, steps_per_epoch)
            return lr * (1.0 - epoch / (epochs + 1.0))

        return linear
    if kind == "exponential":
        return optax.exponential_decay(
            lr,
            transition_steps=max(1, int(round(decay_epochs * steps_per_epoch))),
            decay_rate=decay_rate,
            staircase=staircase,
        )
    raise ValueError(f"unknown schedule kind {kind!r}; expected constant|step|linear|exponential")


def schedule_from_config(config: Mapping[str, Any], *, steps_per_epoch: int) -> optax.Schedule:
    """Build a schedule from a config mapping (e.g. ``ml_collections.ConfigDict``).

    Recognised fields: ``kind`` (default ``"constant"``), ``lr``, ``epochs``, ``boundaries``,
    ``factor``, ``decay_rate``, ``decay_epochs``, ``staircase``; others are ignored.
    """
    keys = ("epochs", "boundaries", "factor", "decay_rate", "decay_epochs", "staircase")
    kwargs = {k: config[k] for k in keys if k in config and config[k] is not None}
    if "boundaries" in kwargs:
        kwargs["boundaries"] = tuple(kwargs["boundaries"])
    return make_schedule(
        kind=config.get("kind", "constant"),
        lr=float(config["lr"]),
        steps_per_epoch=steps_per_epoch,
        **kwargs,
    )
