"""What every method module shares: the entry point, the work directory, reading configs
(``config.data`` -> splits, ``config.train`` -> :class:`jpose.training.stages.TrainOptions`,
stage blocks -> steps). Training is library code: a method declares its stages
(``jpose.training.stages.Stage``) and ``run_stages`` runs them (work directory layout and resume
order: :mod:`jpose.training.stages`); results and figures are ``jpose.training.reports``. The
keypoint-lifting methods also share held-out validation, evaluation with ``config.eval``'s
options and their results (:func:`finish`).

Entry point (flax ``examples/imagenet`` style)::

    # experiments/<method>.py
    def run(config, workdir): ...
    if __name__ == "__main__":
        common.cli(run, default_config=common.config_path("<method>"))

    python -m experiments.<method> --workdir=/tmp/x \
        [--config=experiments/configs/<method>.py:<preset>] [--config.train.batch_size=512 ...]
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import pathlib
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import ml_collections
import numpy as np

from jpose import evaluation as jeval
from jpose import inference, models, skeleton
from jpose.data import PoseDataset
from jpose.data.common import holdout_split
from jpose.data.common import subset as subset
from jpose.data.splits import data_normalization, eval_splits, load_splits
from jpose.inference import pipelines
from jpose.training import parallel, rundir
from jpose.training import stages as harness
from jpose.training.reports import (
    ResultsHeader,
    evaluation_record,
    training_curves_figure,
    write_figures,
    write_results,
)
from jpose.training.reports import write_model_info as write_model_info
from jpose.training.stages import StagesResult, num_stage_steps

LOGGER = logging.getLogger("jpose.experiments")
_CONFIG_DIR = pathlib.Path(__file__).resolve().parent / "configs"


# ------------------------------------------------------------------------------------------------
# Entry point and work directory
# ------------------------------------------------------------------------------------------------


def config_path(name: str) -> str:
    """Absolute path of ``experiments/configs/<name>.py`` (the default ``--config``)."""
    return str(_CONFIG_DIR / f"{name}.py")


def cli(run: Callable[[ml_collections.ConfigDict, str], Any], *, default_config: str) -> None:
    """Parse ``--config`` / ``--workdir`` (absl + ml_collections) and call ``run(config, workdir)``.

    Call only under ``if __name__ == "__main__"`` (it defines the absl flags). ``--config`` takes
    ``path[:preset]`` and accepts overrides such as ``--config.train.batch_size=512``; without it
    ``default_config`` (``get_config()`` with no preset) is used.

    Args:
      run: the experiment's ``run(config, workdir)``.
      default_config: config file used when ``--config`` is absent.
    """
    from absl import app, flags
    from ml_collections import config_flags

    flags.DEFINE_string("workdir", None, "Output directory (checkpoints, metrics, results).")
    config_flags.DEFINE_config_file(
        "config", default_config, "Config file[:preset]; fields overridable with --config.a.b=v."
    )
    flags.mark_flag_as_required("workdir")

    def main(argv: Sequence[str]) -> None:
        if len(argv) > 1:
            raise app.UsageError(f"unexpected arguments: {argv[1:]}")
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.WARNING)  # orbax / absl chatter
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s", "%H:%M:%S"))
        jpose_logger = logging.getLogger("jpose")
        jpose_logger.addHandler(handler)
        jpose_logger.setLevel(logging.INFO)
        jpose_logger.propagate = False
        prog = f"experiments.{pathlib.Path(sys.argv[0]).stem}"
        config = flags.FLAGS.config
        run_experiment(method_run(run, config), config, flags.FLAGS.workdir, prog=prog)

    app.run(main)


def method_run(
    run: Callable[[ml_collections.ConfigDict, str], Any], config: ml_collections.ConfigDict
) -> Callable[[ml_collections.ConfigDict, str], Any]:
    """The ``run`` of the method ``config.experiment`` names, when a method's config file made a
    config of another method (``wsp.py:image`` -> ``wsp_image``); else ``run`` itself."""
    name = config.get("experiment")
    if not name or run.__module__ == f"experiments.{name}":
        return run
    return importlib.import_module(f"experiments.{name}").run


def run_experiment(
    run: Callable[[ml_collections.ConfigDict, str], Any],
    config: ml_collections.ConfigDict,
    workdir: str,
    *,
    prog: str = "experiments",
) -> Any:
    """What :func:`cli` runs after parsing its flags (callable in-process, e.g. by tests).

    Checks the work directory path and the config (``jpose.training.rundir``) before anything else,
    initialises multi-process JAX when configured and calls ``run(config, workdir)``. User errors
    (files, layouts, units, configs, work directories; a missing file anywhere) print
    ``<prog>: error: <message>`` and exit with status 2, without a traceback; other exceptions
    keep their traceback.

    Returns:
      What ``run`` returns.
    """
    with rundir.exit_on_user_error(prog):
        rundir.check_workdir_path(workdir)
        rundir.validate_config(config)
        parallel.initialize_distributed(config)
        with rundir.user_errors(types=rundir.MISSING_FILE_ERRORS):
            return run(config, workdir)


def _field_paths(config: Any, prefix: str = "") -> set[str]:
    out = set()
    for key, value in config.items():
        path = f"{prefix}{key}"
        out.add(path)
        if isinstance(value, ml_collections.ConfigDict):
            out |= _field_paths(value, f"{path}.")
    return out


def check_known_fields(config: ml_collections.ConfigDict) -> None:
    """Refuse fields the method's config does not define (``experiments/configs/<experiment>``,
    any preset): a ``ConfigDict`` accepts new keys silently, so ``config.train.steps = 4000``
    on a method whose steps live in ``stages.<name>`` would otherwise train the default length.

    Raises:
      rundir.UserError: naming the unknown fields.
    """
    name = config.get("experiment")
    if not name:
        return
    reference = _field_paths(importlib.import_module(f"experiments.configs.{name}").get_config())
    unknown = sorted(_field_paths(config) - reference)
    if unknown:
        raise rundir.UserError(
            f"invalid config: unknown field(s) {', '.join(unknown)} for experiment {name!r} "
            f"(defined in {config_path(name)}; stage lengths and schedules are "
            "stages.<stage>.steps / epochs / lr, run options train.*)"
        )


def setup_workdir(
    workdir: str | os.PathLike[str], config: ml_collections.ConfigDict
) -> pathlib.Path:
    """Create ``workdir``, dump the config to ``config.json`` and return the path.

    Refused first (``rundir.UserError``): an empty path, an unknown or invalid field, a work
    directory in use by another run (``run.lock``) or whose checkpoints were built for other
    networks (``rundir.check_resume_config``). On resume with a different config the new one goes
    to ``config.<n>.json`` with a warning naming the changed fields (``config.json`` describes the
    checkpoints); ``status.json`` then marks the run unfinished.
    """
    wd = rundir.check_workdir_path(workdir)
    check_known_fields(config)
    rundir.validate_config(config)
    wd.mkdir(parents=True, exist_ok=True)
    if not parallel.is_main_process():  # multi-process: process 0 writes
        return wd
    rundir.acquire_lock(wd)
    diffs = rundir.check_resume_config(wd, config)
    text = config.to_json_best_effort(indent=2, sort_keys=True)
    path = wd / "config.json"
    if path.exists() and path.read_text() != text:
        n = 1
        while (wd / f"config.{n}.json").exists():
            n += 1
        path = wd / f"config.{n}.json"
        LOGGER.warning("config differs from %s/config.json (%s); saved as %s", wd,
                       "; ".join(diffs[:10]) or "formatting", path.name)  # fmt: skip
    path.write_text(text)
    rundir.start_run(wd)
    return wd


# ------------------------------------------------------------------------------------------------
# Data
# ------------------------------------------------------------------------------------------------


@rundir.user_errors("loading data")
def load_datasets(cfg: ml_collections.ConfigDict) -> dict[str, PoseDataset]:
    """:func:`jpose.data.splits.load_splits` of ``config.data``; errors reading the files
    (missing, truncated, wrong layout or units) are user errors (``rundir.user_errors``): the
    command lines report them without a traceback."""
    return load_splits(cfg)


def train_options(train: ml_collections.ConfigDict) -> harness.TrainOptions:
    """:class:`jpose.training.stages.TrainOptions` of a ``config.train`` block
    (``experiments.configs.data.train_config``'s fields)."""
    return harness.TrainOptions(
        steps_per_block=int(train.steps_per_block),
        num_devices=harness.num_parallel_devices(str(train.parallel)),
        checkpoint_every=int(train.checkpoint_every) or None,
        log_every=int(train.log_every),
        keep_checkpoints=int(train.keep_checkpoints),
        progress=bool(train.progress),
    )


def stage_num_steps(stage_cfg: ml_collections.ConfigDict, *, steps_per_epoch: int,
                    steps_per_block: int) -> int:  # fmt: skip
    """:func:`jpose.training.stages.num_stage_steps` of a stage config (``steps``, ``epochs``)."""
    steps = int(stage_cfg.steps)
    return num_stage_steps(steps=steps, epochs=0.0 if steps > 0 else float(stage_cfg.epochs),
                           steps_per_epoch=steps_per_epoch,
                           steps_per_block=steps_per_block)  # fmt: skip


# ------------------------------------------------------------------------------------------------
# Trained pipelines: what ``experiments.evaluate`` and ``experiments.infer`` run
# ------------------------------------------------------------------------------------------------


def declared_predictor(
    pipeline: Callable[[ml_collections.ConfigDict, Mapping[str, Any]], Mapping[str, Any]],
    config: Mapping[str, Any],
    workdir: str | os.PathLike[str],
    *,
    info: Mapping[str, Any],
    step: int | None = None,
) -> inference.Predictor:
    """A method's ``load_predictor``: the pipeline its ``pipeline(config, model_info)`` declares,
    restored by :func:`jpose.inference.pipelines.load_pipeline` (the same code that restores a
    work directory whose ``model.json`` carries the entry), for runs written before it did.

    Args:
      pipeline: the method's ``pipeline`` function.
      config: the run's ``config.json``.
      workdir: the work directory.
      info: its ``model.json`` fields, plus any the method recomputed for older runs; missing
        ``layout`` / ``normalization`` are Human3.6M-17 / the data config's.
      step: checkpoint step of the last trained stage (default its latest).
    """
    config = ml_collections.ConfigDict(config)
    info = {"layout": skeleton.H36M17.name, "normalization": data_normalization(config.data),
            **{k: v for k, v in info.items() if v is not None}}  # fmt: skip
    return pipelines.load_pipeline(workdir, pipeline(config, info), config=config.to_dict(),
                                   step=step)  # fmt: skip


# ------------------------------------------------------------------------------------------------
# Validation, evaluation and results of the keypoint-lifting methods (baseline, Zhou, Drover, Li)
# ------------------------------------------------------------------------------------------------


def eval_datasets(
    datasets: Mapping[str, PoseDataset], cfg: ml_collections.ConfigDict
) -> dict[str, PoseDataset]:
    """The 3D evaluation splits named by ``cfg.eval.splits`` (default: every 3D test split)."""
    return {n: datasets[n] for n in eval_splits(datasets, cfg.eval.splits)}


def evaluate(
    predict_3d: Callable[[jax.Array, jax.Array], jax.Array],
    ds: PoseDataset,
    config: ml_collections.ConfigDict,
    *,
    keep_predictions: bool = True,
    **kwargs: Any,
) -> dict[str, Any]:
    """:func:`jpose.evaluation.evaluate_3d` with ``config.eval``'s batch size and action key,
    predictions kept (``kwargs``: its other options)."""
    return jeval.evaluate_3d(predict_3d, ds, batch_size=int(config.eval.batch_size),
                             action_key=config.eval.action_key,
                             keep_predictions=keep_predictions, **kwargs)  # fmt: skip


def start(
    config: ml_collections.ConfigDict,
    workdir: str,
    *,
    prepare: Callable[[dict[str, PoseDataset]], dict[str, PoseDataset]] | None = None,
    holdout: bool = True,
) -> tuple[float, pathlib.Path, dict[str, PoseDataset], PoseDataset | None]:
    """A run's start: ``(start time, work directory, splits, validation split)``: the splits of
    ``config.data`` (through ``prepare``) and, with ``holdout``, ``train.val_fraction`` of
    ``train_3d`` held out as validation (None when 0; the test split is never used)."""
    t_start = time.perf_counter()
    wd = setup_workdir(workdir, config)
    datasets = load_datasets(config.data)
    datasets = prepare(datasets) if prepare else datasets
    fraction = float(config.train.val_fraction) if holdout else 0.0
    if fraction <= 0:
        return t_start, wd, datasets, None
    datasets["train_3d"], val = holdout_split(datasets["train_3d"], fraction,
                                              seed=int(config.seed) + 7)  # fmt: skip
    return t_start, wd, datasets, val


def validation(
    val: PoseDataset | None,
    config: ml_collections.ConfigDict,
    model: models.Model,
    lift: Callable[..., jax.Array],
    *,
    player: str,
    best: str = "best validation MPJPE",
    final: str = "final checkpoint",
) -> tuple[dict[str, Any], str]:
    """The validation fields of a :class:`jpose.training.stages.Stage` and the results header's
    model-selection sentence: ``lift(apply, pose2d_norm, confidence) -> pose3d`` of ``player``
    (network ``model``) on ``val`` (none when None) every ``train.eval_every`` steps;
    ``train.select`` picks by validation MPJPE."""
    tc, validate = config.train, None
    if val is not None:

        def predict(v: Any, x: jax.Array, c: jax.Array) -> jax.Array:
            return lift(lambda u: model.apply(v, u, train=False)[0], x, c)

        validate = jeval.make_validator(predict, val, variables=lambda s: s[player].variables(),
                                        batch_size=int(config.eval.batch_size))  # fmt: skip
    stage_kw = {"evaluate": validate, "eval_every": int(tc.eval_every) or None,
                "best_metric": "mpjpe_mm", "select": str(tc.select)}  # fmt: skip
    if tc.select == "best" and val is not None:  # else the harness refuses "best"
        return stage_kw, (f"{best} ({len(val)} examples held out of the training split; the test "
                          "split is never used for selection)")  # fmt: skip
    selection = f"{final} (no model selection)"
    if val is not None:
        selection += f"; validation curves on {len(val)} held-out training examples"
    return stage_kw, selection


def fields(config: ml_collections.ConfigDict, *paths: str) -> dict[str, Any]:
    """``{last name: value}`` of dotted config fields (``"model.width"`` -> ``width``)."""
    return {p.rsplit(".", 1)[-1]: functools.reduce(getattr, p.split("."), config) for p in paths}


def lifter_figures(
    workdir: str | pathlib.Path,
    evaluations: Mapping[str, Mapping[str, Any]],
    datasets: Mapping[str, PoseDataset],
    *,
    title: str,
) -> list[str]:
    """Training curves plus predicted-vs-true 3D poses (4 examples) of each evaluation with
    ``predictions`` (``evaluations[split]`` of ``datasets[split]``); returns the written paths
    (relative to ``workdir``; none when matplotlib is missing)."""
    from jpose import viz

    def poses(ev: Mapping[str, Any], ds: PoseDataset, split: str) -> Any:
        idx = np.linspace(0, len(ds) - 1, 4).astype(int)
        return viz.figure_poses_3d(ev["predictions"][idx], ds.pose3d_root_relative[idx],
                                   errors_mm=ev["errors_mm"]["p_mpjpe"][idx],
                                   title=f"{title}: {split} (P-MPJPE in titles)")  # fmt: skip

    figs = {"training_curves": lambda: training_curves_figure(workdir, title=title)}
    for split, ev in evaluations.items():
        if "predictions" in ev:
            figs[f"poses_3d_{split.replace('/', '_')}"] = functools.partial(
                poses, ev, datasets[split], split
            )
    return write_figures(workdir, figs)


def finish(
    workdir: pathlib.Path,
    config: ml_collections.ConfigDict,
    trained: StagesResult,
    t_start: float,
    *,
    header: Mapping[str, Any],
    evaluations: Mapping[str, Mapping[str, Any]],
    datasets: Mapping[str, PoseDataset],
    title: str,
    notes: tuple[str, ...] = (),
    figure_evaluations: Mapping[str, Mapping[str, Any]] | None = None,
    stage_info: Mapping[str, Mapping[str, Any]] | None = None,
    extra_tables: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Write ``results.json|md`` (with ``eval.figures``, :func:`lifter_figures` of
    ``figure_evaluations``, default ``evaluations``) and return the run's record.

    ``header`` holds the :class:`ResultsHeader` fields except the two that ``finish`` fills, the
    checkpoints and the notes (the training wall time, then ``notes``); the 2D source defaults to
    the training split's. ``results.json`` gets ``stages`` (``trained.summary()``, plus
    ``stage_info[stage]``'s fields), ``timings``, ``figures`` and ``extra``. The record returned is
    ``{"evaluations" (without predictions), "timings", "figures", **extra, "stages"}`` where
    ``stages`` holds the :class:`StageResult` objects.
    """
    stages = trained.summary()
    for name, more in (stage_info or {}).items():
        if name in stages:
            stages[name].update(more)
    if "source_2d" not in header:
        header = {**header, "source_2d": f"dataset 2D ({datasets['train_3d'].normalization} "
                                         "normalisation)"}  # fmt: skip
    header = ResultsHeader(
        **header,
        checkpoint={k: r.selected_step or r.num_steps for k, r in trained.stages.items()},
        notes=(f"training wall time (this invocation) {trained.wall_s:.1f} s", *notes),
    )
    figures = []
    if config.eval.figures:
        figures = lifter_figures(workdir, figure_evaluations or evaluations, datasets, title=title)
    extra = {"stages": stages, "timings": trained.timings(t_start), "figures": figures, **extra}
    write_results(workdir, header=header, evaluations=evaluations,
                  extra_tables=extra_tables, extra=extra)  # fmt: skip
    return {"evaluations": evaluation_record(evaluations), **extra, "stages": trained.stages}
