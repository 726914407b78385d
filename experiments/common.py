"""What every method module shares: the entry point, the work directory, reading configs
(``config.data`` -> splits, ``config.train`` -> :class:`jpose.training.stages.TrainOptions`,
stage blocks -> steps). Training is library code: a method declares its stages
(``jpose.training.stages.Stage``) and ``run_stages`` runs them (work directory layout and resume
order: :mod:`jpose.training.stages`); results and figures are ``jpose.training.reports``.

Entry point (flax ``examples/imagenet`` style)::

    # experiments/<method>.py
    def run(config, workdir): ...
    if __name__ == "__main__":
        common.cli(run, default_config=common.config_path("<method>"))

    python -m experiments.<method> --workdir=/tmp/x \
        [--config=experiments/configs/<method>.py:<preset>] [--config.train.batch_size=512 ...]
"""

from __future__ import annotations

import importlib
import logging
import os
import pathlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import ml_collections

from jpose import inference, skeleton
from jpose.data import PoseDataset
from jpose.data.common import holdout_split, subset
from jpose.data.splits import data_normalization, eval_splits, load_splits
from jpose.inference import pipelines
from jpose.training import (
    parallel,
    rundir,
)
from jpose.training import stages as harness
from jpose.training.reports import (
    ResultsHeader,
    evaluation_record,
    training_curves_figure,
    write_figures,
    write_model_info,
    write_results,
)
from jpose.training.stages import num_stage_steps

__all__ = [
    "LOGGER",
    "config_path",
    "cli",
    "method_run",
    "run_experiment",
    "setup_workdir",
    "check_known_fields",
    "load_datasets",
    "eval_splits",
    "subset",
    "holdout_split",
    "stage_num_steps",
    "train_options",
    "ResultsHeader",
    "write_results",
    "write_figures",
    "training_curves_figure",
    "read_config",
    "declared_predictor",
    "data_normalization",
    "write_model_info",
    "evaluation_record",
]

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
    """Create ``workdir`` and dump the config to ``config.json``.

    On resume with a different config the new one is written to ``config.<n>.json`` and a
    warning naming the changed fields is logged (the first ``config.json`` stays, it describes the
    checkpoints). Before anything is written (``jpose.training.rundir``): the path must be
    non-empty, the config valid (``rundir.validate_config``), the work directory not in use by
    another run (``run.lock``) and, when it has checkpoints, built for the same networks
    (``rundir.check_resume_config``); ``status.json`` then marks the run unfinished.

    Args:
      workdir: output directory.
      config: the resolved config.

    Returns:
      The work directory as a path.

    Raises:
      rundir.UserError: empty path, invalid config, work directory in use, changed networks.
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


def read_config(workdir: str | os.PathLike[str]) -> ml_collections.ConfigDict:
    """:func:`jpose.inference.read_config` as a ``ConfigDict`` (the methods' config type)."""
    return ml_collections.ConfigDict(inference.read_config(workdir))
