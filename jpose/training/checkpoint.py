"""Checkpoints: one wrapper over orbax-checkpoint's ``CheckpointManager``.

A checkpoint holds every player's ``params``, ``batch_stats`` and ``opt_state``, the experiment's
``extra`` state, the step, the RNG base key (raw key data + implementation name) and the data
position (any JSON-serialisable value: epoch / index into the permutation / ...).

Retention: the last ``max_to_keep`` checkpoints plus the best one on a validation metric
(``best_metric`` + ``best_mode``; pass validation metrics -- never test metrics, unless the
experiment labels the selection as test-set selection -- to :meth:`Checkpointer.save`).

Atomicity: orbax writes each checkpoint into a temporary directory
(``<step>.orbax-checkpoint-tmp-*``) and renames it to ``<step>`` only once everything is on disk.
A process killed at any moment (``kill -9``) therefore leaves either the new complete checkpoint
or only an unfinished temporary directory, which is ignored (and removed) when the directory is
opened again; the previous checkpoint stays restorable. Only complete steps are listed.

Resume order (what :meth:`Checkpointer.restore_or_init` does): open the work directory, find the
latest complete step, restore the state into the freshly initialised template (static parts --
models, optimisers -- come from the template), restore the base key and the data position, and
continue at ``state.step``; with no checkpoint the template, key and initial data position are
returned unchanged.

States must be un-replicated (``parallel.unreplicate``) before saving; replicate after restoring.
Multi-process: every process calls ``save`` and ``restore`` (orbax synchronises them; the arrays,
identical on every process, are written as host arrays by process 0); the directory must be on a
file system all processes share.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from flax import serialization
from orbax.checkpoint import checkpoint_managers

from jpose.training.state import TrainState

__all__ = ["Checkpointer", "CheckpointMismatchError", "Restored"]


class CheckpointMismatchError(ValueError):
    """A checkpoint does not fit the template it is restored into (other networks: a changed
    architecture, player set or optimiser)."""


@dataclasses.dataclass(frozen=True)
class Restored:
    """Result of a restore.

    Attributes:
      state: the restored :class:`TrainState` (or the template when nothing was restored).
      key: the run's base key.
      data_position: the saved data position (JSON value).
      step: the restored checkpoint step, or None when nothing was restored.
    """

    state: TrainState
    key: jax.Array
    data_position: Any
    step: int | None


def _check_fits(expected: Any, restored: Any, *, where: str) -> None:
    """Raise :class:`CheckpointMismatchError` naming the arrays whose structure / shape differ."""
    exp = dict(jax.tree_util.tree_flatten_with_path(expected)[0])
    got = dict(jax.tree_util.tree_flatten_with_path(restored)[0])
    problems = [f"{jax.tree_util.keystr(k)} missing" for k in exp if k not in got]
    problems += [f"{jax.tree_util.keystr(k)} unexpected" for k in got if k not in exp]
    problems += [
        f"{jax.tree_util.keystr(k)} {tuple(np.shape(got[k]))} saved, {tuple(v.shape)} now"
        for k, v in exp.items()
        if k in got and tuple(np.shape(got[k])) != tuple(v.shape)
    ]
    if problems:
        shown = "; ".join(problems[:6]) + (f"; ... ({len(problems)} in all)" * (len(problems) > 6))
        raise CheckpointMismatchError(
            f"checkpoint {where} does not fit the networks built now (changed architecture, "
            "players or optimiser since it was saved?): " + shown + ". Resume with the config it "
            "was trained with, or use a new work directory"
        )


class Checkpointer:
    """Save / restore :class:`TrainState` checkpoints in ``directory``.

    Args:
      directory: checkpoint directory (created; e.g. ``<workdir>/checkpoints``).
      max_to_keep: number of most recent checkpoints kept.
      best_metric: name of a validation metric; the best checkpoint on it is kept in addition.
      best_mode: ``"min"`` or ``"max"``.
      async_save: write in a background thread (call :meth:`wait` / :meth:`close` before exit).
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        max_to_keep: int = 3,
        best_metric: str | None = None,
        best_mode: str = "min",
        async_save: bool = False,
    ) -> None:
        if best_mode not in ("min", "max"):
            raise ValueError(f"best_mode must be 'min' or 'max', got {best_mode!r}")
        if max_to_keep < 1:
            raise ValueError(f"max_to_keep must be >= 1, got {max_to_keep}")
        self.directory = pathlib.Path(directory).absolute()
        self.best_metric = best_metric
        policies: list[Any] = [checkpoint_managers.LatestN(n=max_to_keep)]
        best_fn = None
        if best_metric is not None:

            def best_fn(metrics: Mapping[str, Any]) -> float:
                return float(metrics[best_metric])

            policies.append(
                checkpoint_managers.BestN(
                    get_metric_fn=best_fn,
                    reverse=best_mode == "min",
                    n=1,
                    keep_checkpoints_without_metrics=False,
                )
            )
        options = ocp.CheckpointManagerOptions(
            best_fn=best_fn,
            best_mode=best_mode,
            preservation_policy=checkpoint_managers.AnyPreservationPolicy(policies),
            create=True,
            cleanup_tmp_directories=True,
            enable_async_checkpointing=async_save,
        )
        self._manager = ocp.CheckpointManager(
            self.directory, options=options, item_names=("state", "meta")
        )

    # -- queries ---------------------------------------------------------------------------------
    def latest_step(self) -> int | None:
        """Latest complete checkpoint step, or None."""
        return self._manager.latest_step()

    def best_step(self) -> int | None:
        """Step of the best checkpoint on ``best_metric`` (latest step without a best metric)."""
        return self._manager.best_step()

    def all_steps(self) -> list[int]:
        """All complete checkpoint steps, ascending."""
        return sorted(self._manager.all_steps())

    # -- save / restore --------------------------------------------------------------------------
    def save(
        self,
        state: TrainState,
        *,
        key: jax.Array,
        data_position: Any = None,
        metrics: Mapping[str, float] | None = None,
        step: int | None = None,
    ) -> bool:
        """Save a checkpoint.

        Args:
          state: un-replicated training state.
          key: the run's base key (typed).
          data_position: JSON-serialisable data-pipeline position.
          metrics: validation metrics (needed on the checkpoints competing for "best").
          step: checkpoint step (default ``int(state.step)``).

        Returns:
          True if a checkpoint was written.
        """
        step = int(jax.device_get(state.step)) if step is None else int(step)
        if self.best_metric is not None and metrics is not None and self.best_metric not in metrics:
            raise ValueError(
                f"metrics lack the best metric {self.best_metric!r}: {sorted(metrics)}"
            )
        tree = {
            "train_state": serialization.to_state_dict(state),
            "key_data": jax.random.key_data(key),
        }
        # Host arrays: a checkpoint records no device topology, so it restores on any machine
        # (a run on 4 devices evaluated on 1); in a multi-process run every process holds the
        # same replicated state and orbax writes host arrays once, from the primary process,
        # while all processes take part in the save.
        tree = jax.device_get(tree)
        meta = {
            "step": step,
            "key_impl": str(jax.random.key_impl(key)),
            "data_position": data_position,
        }
        return self._manager.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(tree), meta=ocp.args.JsonSave(meta)
            ),
            metrics=None if metrics is None else {k: float(v) for k, v in metrics.items()},
            force=True,
        )

    def restore(self, template: TrainState, *, step: int | None = None, key: jax.Array) -> Restored:
        """Restore ``step`` (default latest) into ``template``.

        Args:
          template: a freshly initialised state of the same structure (supplies static parts).
          step: which checkpoint; default the latest.
          key: a key of the run's key type (shape/impl template for the saved key).

        Returns:
          :class:`Restored`.

        Raises:
          FileNotFoundError: if there is no checkpoint.
        """
        step = self.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"no checkpoint in {self.directory}")
        target = {
            "train_state": serialization.to_state_dict(template),
            "key_data": jax.random.key_data(key),
        }
        abstract = jax.tree_util.tree_map(
            lambda x: (
                jax.ShapeDtypeStruct(np.shape(x), np.asarray(x).dtype)
                if not isinstance(x, jax.ShapeDtypeStruct)
                else x
            ),
            target,
        )
        try:
            out = self._manager.restore(
                step,
                args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()
                ),
            )
        except (ValueError, KeyError, TypeError) as err:
            detail = " ".join(str(err).split())
            raise CheckpointMismatchError(
                f"checkpoint {self.directory}/{step} does not fit the networks built now (changed "
                "architecture, players or optimiser since it was saved?); resume with the config "
                f"it was trained with or use a new work directory. orbax: {detail[:300]}"
            ) from err
        tree, meta = out["state"], out["meta"]
        _check_fits(abstract, tree, where=f"{self.directory}/{step}")
        state = serialization.from_state_dict(template, tree["train_state"])
        restored_key = jax.random.wrap_key_data(
            np.asarray(tree["key_data"]), impl=meta.get("key_impl") or None
        )
        return Restored(
            state=state, key=restored_key, data_position=meta.get("data_position"), step=step
        )

    def restore_variables(
        self, *, step: int | None = None, players: Any = None
    ) -> tuple[dict[str, dict[str, Any]], int]:
        """Restore only the networks' variables, without a template (for evaluation / inference).

        Args:
          step: which checkpoint; default the latest.
          players: names of the players to return (default all).

        Returns:
          ``({player: {"params": ..., "batch_stats": ...}}, step)`` as host arrays; ``batch_stats``
          is omitted for players without it. Optimiser states are not returned.

        Raises:
          FileNotFoundError: if there is no checkpoint (or not ``step``).
          KeyError: if a requested player is not in the checkpoint.
        """
        step = self.latest_step() if step is None else int(step)
        if step is None or step not in self.all_steps():
            raise FileNotFoundError(
                f"no checkpoint{'' if step is None else f' at step {step}'} in {self.directory} "
                f"(steps: {self.all_steps()})"
            )
        out = self._manager.restore(
            step,
            args=ocp.args.Composite(state=ocp.args.StandardRestore(), meta=ocp.args.JsonRestore()),
        )
        saved = out["state"]["train_state"]["players"]
        names = sorted(saved) if players is None else list(players)
        missing = [n for n in names if n not in saved]
        if missing:
            raise KeyError(
                f"players {missing} not in checkpoint {self.directory}/{step}: {sorted(saved)}"
            )
        result = {}
        for name in names:
            v = {"params": jax.device_get(saved[name]["params"])}
            stats = saved[name].get("batch_stats")
            if stats:
                v["batch_stats"] = jax.device_get(stats)
            result[name] = v
        return result, step

    def restore_or_init(
        self, template: TrainState, *, key: jax.Array, data_position: Any = None
    ) -> Restored:
        """Resume from the latest checkpoint if there is one, else return the inputs unchanged."""
        if self.latest_step() is None:
            return Restored(state=template, key=key, data_position=data_position, step=None)
        return self.restore(template, key=key)

    def wait(self) -> None:
        """Block until pending asynchronous saves are complete."""
        self._manager.wait_until_finished()

    def close(self) -> None:
        """Finish pending saves and release resources."""
        self._manager.wait_until_finished()
        self._manager.close()

    def __enter__(self) -> Checkpointer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
