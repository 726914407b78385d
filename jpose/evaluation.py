"""Evaluation-mode prediction functions of trained networks.

A trained network reaches evaluation as a pure function of its inputs: :func:`apply_fn` wraps a
:class:`jpose.models.Model` and its variables, :func:`jit_predict` a trained
:class:`jpose.training.PlayerState`. Both run the network in inference mode (batch-norm running
statistics, no dropout) and jit the whole prediction, with the variables passed as arguments
rather than baked in as constants.

Axes and units: ``pose2d [B, J, 2]`` normalised 2D keypoints (the units of the dataset's
``pose2d_norm``), ``confidence [B, J]`` in [0, 1]; the 3D a lifting ``fn`` returns is
``[B, J, 3]`` in metres, camera frame (what ``experiments.common.evaluate_3d`` scores).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

from jpose.models.core import Model
from jpose.training.state import PlayerState

__all__ = ["apply_fn", "jit_predict"]


def apply_fn(
    model: Model, variables: Any, fn: Callable[[Any, jax.Array, jax.Array], Any]
) -> Callable[[jax.Array, jax.Array], Any]:
    """A jitted ``predict(pose2d, confidence) = fn(apply, pose2d, confidence)``.

    Args:
      model: the network (evaluation mode: running batch statistics, no dropout).
      variables: its ``{"params", "batch_stats"?}`` (a player's ``variables()`` or restored
        from a checkpoint).
      fn: ``fn(apply, pose2d, confidence) -> output`` (any pytree) where ``apply(x)`` runs the
        network.

    Returns:
      ``predict`` with the variables passed as arguments (not baked-in constants).
    """

    @jax.jit
    def run(variables: Any, x: jax.Array, c: jax.Array) -> Any:
        def apply(inp: jax.Array) -> jax.Array:
            return model.apply(variables, inp, train=False)[0]

        return fn(apply, x, c)

    return lambda x, c: run(variables, x, c)


def jit_predict(
    player: PlayerState, fn: Callable[[Any, jax.Array, jax.Array], jax.Array]
) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """A jitted ``predict_3d(pose2d, confidence)`` of a trained player.

    Args:
      player: the trained player (evaluation mode: running batch statistics, no dropout).
      fn: ``fn(apply, pose2d, confidence) -> pose3d`` where ``apply(x)`` runs the player.

    Returns:
      ``predict_3d`` with the parameters passed as arguments (not baked-in constants).
    """
    return apply_fn(player.model, player.variables(), fn)
