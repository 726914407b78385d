"""Restoring trained pipelines: :class:`Predictor`, work directories and the method registry.

:func:`load_predictor` opens any jpose work directory or pretrained bundle
(:mod:`jpose.inference.bundles`); methods restore their networks with :func:`restore_variables`,
which reads checkpoints and bundles alike.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import json
import logging
import os
import pathlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import jax

from jpose.inference import bundles
from jpose.training import rundir
from jpose.training.checkpoint import Checkpointer

__all__ = [
    "BUILTIN_METHODS",
    "Predictor",
    "load_predictor",
    "load_pretrained",
    "method_target",
    "read_config",
    "read_model_info",
    "recording_restores",
    "register_method",
    "registered_methods",
    "restore_variables",
]

LOGGER = logging.getLogger("jpose.inference")

# Experiment name (``config.experiment``) -> module defining ``load_predictor(config, workdir,
# *, step)`` and its planned stages (``STAGES`` or ``seed_stages(config)``). The built-in
# methods live in the checkout's ``experiments`` package (imported on first use); the image
# methods have no keypoint predictor (load_predictor says so).
BUILTIN_METHODS: dict[str, str] = {
    name: f"experiments.{name}"
    for name in ("baseline", "camerapose", "drover", "li", "wsp", "zhou", "wsp_image", "zhou_image")
}
_REGISTERED: dict[str, Any] = {}


def register_method(name: str, method: Any) -> None:
    """Register (or replace) the method that restores work directories of experiment ``name``.

    Args:
      name: the ``experiment`` field its configs write.
      method: a module or object with ``load_predictor(config, workdir, *, step)`` and its
        planned stage names (``STAGES``, or ``seed_stages(config)``), or the import path of one.
    """
    _REGISTERED[name] = method


def registered_methods() -> list[str]:
    """Experiment names :func:`load_predictor` can restore (built-in and registered)."""
    return sorted({*BUILTIN_METHODS, *_REGISTERED})


def method_target(name: str) -> Any:
    """What experiment ``name`` is registered as: an import path (the built-in methods:
    ``experiments.<name>``) or an object; None when unknown."""
    return _REGISTERED.get(name, BUILTIN_METHODS.get(name))


def _method(name: str, workdir: Any) -> Any:
    target = method_target(name)
    if target is None:
        raise ValueError(
            f"unknown experiment {name!r} in {workdir}/config.json; known: {registered_methods()}"
        )
    if isinstance(target, str):
        try:
            target = importlib.import_module(target)
        except ImportError as err:
            raise ImportError(
                f"experiment {name!r} is defined in {target}, which is not importable: the "
                "built-in methods run from a jpose checkout (pip install -e <checkout>) "
                f"({err})"
            ) from err
    return target


@dataclasses.dataclass(frozen=True)
class Predictor:
    """A trained 2D-to-3D pipeline restored from a work directory.

    Attributes:
      experiment: the experiment that trained it (``config.experiment``).
      predict: jitted ``predict(pose2d_norm [B, J, 2], confidence [B, J]) -> dict`` with
        ``pose3d`` ``[B, J, 3]`` (camera frame, root-relative, metres; up to scale when
        ``metric_scale`` is False) and, where the method has them, ``refined`` ``[B, J, 2]``
        (refined 2D, input units), ``focal`` / ``center`` ``[B, 2]`` (intrinsics in input units)
        and ``translation`` ``[B, 3]`` (root position, metres; the camera branch).
      normalization: how the 2D inputs must be normalised (``PoseDataset.normalization``:
        ``vp`` / ``image`` / ``bbox`` ...).
      checkpoint: ``{stage: step}`` of the restored checkpoints.
      config: the training config (``config.json`` as a dict).
      layout: joint layout of inputs and outputs (a ``jpose.skeleton`` layout name).
      metric_scale: whether ``pose3d`` is in metres (False: scale-free, e.g. Drover et al.).
      has_camera: whether ``predict`` returns ``focal``, ``center`` and ``translation``.
      description: one line for reports.
      unfinished: why the run is unfinished when loaded with ``allow_unfinished`` (stated in
        results and outputs); ``""`` for a finished run.
      takes_frame_scale: ``predict`` accepts a third argument ``frame_scale [B, 2]`` (``[1, h /
        w]`` of each image for ``"image"``-normalised 2D; CameraPose's camera branch works in
        that aspect-preserving frame, see ``jpose.data.camerapose.frame_scale``).
      pipeline: the ``model.json["pipeline"]`` entry it was restored from
        (:mod:`jpose.inference.pipelines`; for an older run, the one its method declared), or
        None for a predictor built by method code alone.
    """

    experiment: str
    predict: Callable[[jax.Array, jax.Array], Mapping[str, jax.Array]]
    normalization: str
    checkpoint: Mapping[str, int]
    config: Any
    layout: str = "h36m17"
    metric_scale: bool = True
    has_camera: bool = False
    description: str = ""
    takes_frame_scale: bool = False
    unfinished: str = ""
    pipeline: Mapping[str, Any] | None = None


def read_config(workdir: str | os.PathLike[str]) -> dict[str, Any]:
    """The config a work directory (or bundle) was trained with: ``<workdir>/config.json``.

    Raises:
      FileNotFoundError: if ``workdir`` is not a jpose work directory.
      jpose.training.rundir.UserError: an unreadable config.
    """
    path = pathlib.Path(workdir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{workdir} is not a jpose work directory: no config.json (train with "
            "`python -m experiments.<method> --workdir=...` first)"
        )
    try:
        return json.loads(path.read_text())
    except ValueError as err:
        raise rundir.UserError(f"{path}: not a readable config ({err})") from None


def read_model_info(workdir: str | os.PathLike[str]) -> dict[str, Any]:
    """``<workdir>/model.json`` (``{}`` when absent)."""
    path = pathlib.Path(workdir) / "model.json"
    return json.loads(path.read_text()) if path.is_file() else {}


# open recorders of restore_variables calls (recording_restores; what the export stores)
_RESTORE_RECORDERS: list[list[dict[str, Any]]] = []


@contextlib.contextmanager
def recording_restores() -> Iterator[list[dict[str, Any]]]:
    """Record every :func:`restore_variables` call made inside the block.

    Yields:
      A list that receives ``{"stage", "players", "variables", "steps"}`` per call: the stage
      the variables came from, the players, ``{player: variables}`` and the returned
      ``{stage: step}``. ``experiments.export`` stores exactly these (the networks a method's
      ``load_predictor`` needs, whatever the method).
    """
    calls: list[dict[str, Any]] = []
    _RESTORE_RECORDERS.append(calls)
    try:
        yield calls
    finally:
        _RESTORE_RECORDERS.remove(calls)


def restore_variables(
    workdir: str | os.PathLike[str],
    stages: Sequence[str],
    players: Sequence[str],
    *,
    step: int | None = None,
) -> tuple[dict[str, dict[str, Any]], dict[str, int]]:
    """Variables of ``players`` from the last of ``stages`` that has a checkpoint.

    Args:
      workdir: work directory, or a pretrained bundle (:mod:`jpose.inference.bundles`: its
        weights, sha256 checked, with the checkpoint steps of the run it was exported from).
      stages: the experiment's stage names in training order.
      players: networks to restore.
      step: checkpoint step of the last trained stage (default its latest).

    Returns:
      ``({player: variables}, {stage: latest step of every stage with checkpoints})``.

    Raises:
      FileNotFoundError: no stage has a checkpoint (or ``step`` does not exist).
      jpose.inference.bundles.BundleError: a bundle whose weights fail their checksum or lack a
        player.
    """
    if bundles.is_bundle(workdir):
        return bundles.bundle_variables(workdir, stages, players, step=step)
    root = pathlib.Path(workdir) / "checkpoints"
    latest = {s: Checkpointer(root / s).latest_step() for s in stages if (root / s).is_dir()}
    steps = {s: n for s, n in latest.items() if n is not None}
    if not steps:
        raise FileNotFoundError(
            f"no checkpoint of stages {list(stages)} under {root} (training not started?)"
        )
    last = list(steps)[-1]
    with Checkpointer(root / last) as ckpt:
        variables, used = ckpt.restore_variables(step=step, players=players)
    steps[last] = used
    for calls in _RESTORE_RECORDERS:
        calls.append({"stage": last, "players": list(players), "variables": variables,
                      "steps": dict(steps)})  # fmt: skip
    return variables, steps


def load_predictor(
    workdir: str | os.PathLike[str], *, step: int | None = None, allow_unfinished: bool = False
) -> Predictor:
    """Restore the trained pipeline of any jpose work directory.

    A work directory whose ``model.json`` declares its pipeline
    (:mod:`jpose.inference.pipelines`) is restored by jpose alone; otherwise by the
    ``load_predictor(config, workdir, step=step)`` of the method of ``config.experiment`` in the
    registry (:func:`register_method`). An unfinished run is refused
    (``jpose.training.rundir.require_finished``: ``status.json`` names the missing stage).

    Args:
      workdir: work directory of a training run, or a pretrained bundle (``jpose.inference``;
        exported from a finished run, loaded the same way).
      step: checkpoint step of the last stage (default the latest).
      allow_unfinished: load an unfinished run anyway (``Predictor.unfinished`` says why it is
        unfinished; callers state it in their outputs).

    Returns:
      :class:`Predictor`.

    Raises:
      FileNotFoundError: not a work directory / no checkpoint.
      ValueError: the config names no experiment, an unknown one, or one without a keypoint
        predictor.
      ImportError: a built-in method outside a jpose checkout.
      rundir.UnfinishedRunError: the run did not finish (without ``allow_unfinished``).
    """
    config = read_config(workdir)
    spec = read_model_info(workdir).get("pipeline")
    if spec is not None:  # self-describing (jpose.inference.pipelines): no method code needed
        from jpose.inference import pipelines

        reason = rundir.require_finished(workdir, spec["stages"], allow_unfinished=allow_unfinished)
        predictor = pipelines.load_pipeline(workdir, spec, config=config, step=step)
        return _with_unfinished(predictor, reason, workdir)
    name = config.get("experiment")
    if not name:
        raise ValueError(
            f"{workdir}/config.json has no 'experiment' field; expected one of "
            f"{registered_methods()}"
        )
    module = _method(str(name), workdir)
    loader = getattr(module, "load_predictor", None)
    if loader is None:
        raise ValueError(
            f"experiment {name!r} has no keypoint predictor (image-based experiments are "
            "evaluated by their own run)"
        )
    planned = module.seed_stages(config) if hasattr(module, "seed_stages") else \
        getattr(module, "STAGES", ())  # fmt: skip
    reason = rundir.require_finished(workdir, planned, allow_unfinished=allow_unfinished)
    # every predictor carries config.json as a dict, whichever path restored it
    predictor = dataclasses.replace(loader(config, workdir, step=step), config=config)
    return _with_unfinished(predictor, reason, workdir)


def _with_unfinished(predictor: Predictor, reason: str, workdir: Any) -> Predictor:
    if reason:
        LOGGER.warning("%s: using an UNFINISHED run (--allow_unfinished): %s", workdir, reason)
        predictor = dataclasses.replace(predictor, unfinished=reason)
    return predictor


def load_pretrained(name_or_path: str | os.PathLike[str]) -> Predictor:
    """The trained pipeline of a shipped bundle (by name) or a bundle directory.

    Args:
      name_or_path: a name from :func:`jpose.inference.list_pretrained` or a bundle directory.

    Returns:
      :class:`Predictor` (``predict(pose2d_norm, confidence[, frame_scale])``).

    Raises:
      BundleError: unknown name (the shipped ones are listed), not a bundle, checksum mismatch.
      ImportError: the bundle's method is a built-in one and no jpose checkout is importable.
    """
    # the weights' sha256 is checked where they are read (bundles.bundle_variables)
    return load_predictor(bundles.resolve_bundle(name_or_path))
