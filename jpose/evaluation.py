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

from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np

from jpose.models.core import Model
from jpose.training.state import PlayerState

__all__ = ["apply_fn", "batched_apply", "jit_predict", "to_jsonable"]


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


def batched_apply(fn: Callable[..., Any], *arrays: np.ndarray, batch_size: int = 4096) -> Any:
    """Apply ``fn`` to fixed-size batches of ``arrays`` (last batch padded: one compilation).

    Returns:
      The concatenated host outputs (pytree of numpy arrays, leading axis N).
    """
    n = len(arrays[0])
    bs = max(1, min(batch_size, n))
    outs = []
    for start in range(0, n, bs):
        chunk = [np.asarray(a[start : start + bs]) for a in arrays]
        m = len(chunk[0])
        if m < bs:
            chunk = [np.concatenate([c, np.repeat(c[-1:], bs - m, 0)]) for c in chunk]
        out = jax.device_get(fn(*chunk))
        outs.append(jax.tree_util.tree_map(lambda x, m=m: np.asarray(x)[:m], out))
    return jax.tree_util.tree_map(lambda *xs: np.concatenate(xs), *outs)


def to_jsonable(x: Any, *, nonfinite: str = "string") -> Any:
    """``x`` with arrays / numpy scalars as lists / Python numbers, ready for ``json.dumps``.

    Args:
      x: nested mappings, sequences, arrays and scalars.
      nonfinite: how NaN / inf are written: ``"string"`` (``"nan"``) or ``"null"`` (``None``).
    """
    if isinstance(x, Mapping):
        return {str(k): to_jsonable(v, nonfinite=nonfinite) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [to_jsonable(v, nonfinite=nonfinite) for v in x]
    if isinstance(x, np.ndarray | jax.Array):
        return to_jsonable(np.asarray(x).tolist(), nonfinite=nonfinite)
    if isinstance(x, np.generic):
        return to_jsonable(x.item(), nonfinite=nonfinite)
    if isinstance(x, float) and not np.isfinite(x):
        return None if nonfinite == "null" else str(x)
    return x
