"""Supervised baseline: Martinez et al. (ICCV 2017) residual lifter trained on 2D-3D pairs.

``python -m experiments.baseline --workdir=DIR [--config=experiments/configs/baseline.py:PRESET]``

The lifter maps the dataset's normalised 2D (``pose2d_norm [B, J, 2]``) to the root-relative
camera-frame 3D pose ``[B, J, 3]`` in metres; loss: mean squared error over joints and axes
(Martinez et al. sec. 3). Evaluation (``experiments.jeval.evaluate_3d``): Protocol 1 (MPJPE)
and Protocol 2 (P-MPJPE) per action, action-wise and frame-wise means, in mm.

Outputs in ``DIR`` (``experiments.common``): ``config.json``, ``model.json`` (layout and input
normalisation), ``metrics.jsonl``, ``checkpoints/lifter/``, ``results.json|md`` and
``figures/*.png``. Running the same command again resumes from the last checkpoint (or only
re-evaluates when training is complete). :func:`load_predictor` (or
``jpose.inference.load_predictor(DIR)``) restores the trained lifter for inference.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import optax

from experiments import common
from experiments.lifting import eval_datasets, lifter_figures
from jpose import evaluation as jeval
from jpose import inference, losses, models, skeleton
from jpose.data import PoseDataset
from jpose.evaluation import jit_predict
from jpose.inference import pipelines
from jpose.training import (
    Phase,
    PhaseContext,
    clipped,
    create_player,
    create_train_state,
    schedule_from_config,
)
from jpose.training import stages as harness

__all__ = [
    "STAGES",
    "run",
    "build_model",
    "load_predictor",
    "lifter_loss",
]


# ------------------------------------------------------------------------------------------------
# Loss
# ------------------------------------------------------------------------------------------------


def lifter_loss(
    pred: jax.Array, target: jax.Array, *, std: Any = None
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Martinez et al. (ICCV 2017, Sec. 3.1-3.2) L2 loss, batch mean (``losses.martinez_loss``).

    Args:
      pred: ``[B, J, 3]`` raw lifter output in metres (not made root-relative: see
        ``martinez_loss``).
      target: ``[B, J, 3]`` root-relative targets in metres.
      std: per-coordinate target spread (the lifter's ``output_stats[1]``); ``None`` = MSE in m^2.

    Returns:
      ``(loss, {"loss_std_units" or "mse", "mpjpe_mm"})`` (batch means; ``mpjpe_mm`` of the
      root-relative prediction, for monitoring only).
    """
    loss = jnp.mean(losses.martinez_loss(pred, target, std=std))
    rel = _root_relative(pred)
    mpjpe = jnp.mean(jnp.linalg.norm(rel - target, axis=-1)) * 1000.0
    return loss, {"mse" if std is None else "loss_std_units": loss, "mpjpe_mm": mpjpe}


# ------------------------------------------------------------------------------------------------
# The experiment
# ------------------------------------------------------------------------------------------------


#: The baseline's single training stage (``checkpoints/lifter``).
STAGES = ("lifter",)
DESCRIPTION = "baseline: Martinez et al. (ICCV 2017) residual lifter, supervised"


def _root_relative(pose: jax.Array) -> jax.Array:
    return pose - pose[..., :1, :]


def _lift(apply: Callable[[jax.Array], jax.Array], x: jax.Array, c: jax.Array) -> jax.Array:
    """The evaluated 3D: the lifter's output made root-relative (confidences unused)."""
    del c
    return _root_relative(apply(x))


def data_stats(train: PoseDataset) -> dict[str, Any]:
    """Martinez's standardisation statistics of a training split (``model.json`` fields).

    Returns:
      ``{"input_stats", "output_stats"}``: per-coordinate ``(mean, std)`` of the training 2D
      (``pose2d_norm``) and of the root-relative 3D targets (``pose3d``), as float tuples.
    """
    return models.lifter_stats(train.pose2d_norm, train.pose3d_root_relative)


def build_model(
    config: ml_collections.ConfigDict, *, num_joints: int, stats: Mapping[str, Any] | None = None
) -> models.Model:
    """The Martinez lifter of ``config.model`` (no parameters; no data needed).

    Args:
      config: the baseline config.
      num_joints: joints of the layout (17 for ``h36m17``).
      stats: :func:`data_stats` of the training split (read back from ``model.json`` by the
        predictor); used when ``config.model.standardize`` is on.

    Returns:
      The lifter ``pose2d [B, J, 2] -> pose3d [B, J, 3]``.
    """
    return pipelines.build_network(lifter_spec(config, num_joints=num_joints, stats=stats))


def lifter_spec(
    config: ml_collections.ConfigDict, *, num_joints: int, stats: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """:func:`build_model`'s network as a :func:`jpose.inference.pipelines.network_spec`."""
    mc = config.model
    kw: dict[str, Any] = {}
    # Work directories written before the field existed trained without standardisation.
    if mc.get("standardize", False):
        if not stats:
            raise ValueError("model.standardize needs the training statistics (data_stats)")
        kw = {k: stats[k] for k in ("input_stats", "output_stats")}
    return pipelines.network_spec(
        "martinez_lifter", num_joints, width=int(mc.width), num_blocks=int(mc.num_blocks),
        dropout=float(mc.dropout), zero_init_output=bool(mc.get("zero_init_output", False)), **kw,
    )  # fmt: skip


def pipeline(config: ml_collections.ConfigDict, info: Mapping[str, Any]) -> dict[str, Any]:
    """The ``model.json["pipeline"]`` entry (:mod:`jpose.inference.pipelines`) from the other
    ``model.json`` fields (``layout``, ``normalization``, statistics): restored by jpose alone,
    the same network and 3D as :func:`load_predictor`."""
    lay = skeleton.get_layout(str(info["layout"]))
    return pipelines.pipeline_spec(
        "lifter",
        networks={"lifter": lifter_spec(config, num_joints=lay.num_joints, stats=info)},
        stages=STAGES,
        predictor={"experiment": "baseline", "description": DESCRIPTION, "layout": lay.name,
                   "normalization": str(info["normalization"])},
    )  # fmt: skip


def load_predictor(
    config: Mapping[str, Any], workdir: str | os.PathLike[str], *, step: int | None = None
) -> inference.Predictor:
    """The trained lifter of a baseline work directory (:func:`pipeline`).

    ``predict(pose2d_norm, confidence)["pose3d"]`` is exactly what :func:`run` evaluates: the
    lifter's output made root-relative (pelvis at the origin), metres, camera frame; the
    confidences are not used.
    """
    return common.declared_predictor(pipeline, config, workdir, step=step,
                                     info=inference.read_model_info(workdir))  # fmt: skip


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Train (or resume) and evaluate the supervised baseline.

    Args:
      config: from ``experiments/configs/baseline.py``.
      workdir: output directory.

    Returns:
      The ``results.json`` record plus ``"stage"`` (the :class:`harness.StageResult`).
    """
    t_start = time.perf_counter()
    wd = common.setup_workdir(workdir, config)
    datasets = common.load_datasets(config.data)
    tc = config.train
    if tc.val_fraction > 0:  # held out of the training split; the test split is never used
        datasets["train_3d"], val = common.holdout_split(
            datasets["train_3d"], float(tc.val_fraction), seed=int(config.seed) + 7
        )
    train = datasets["train_3d"]
    lay = skeleton.get_layout(train.layout)
    num_joints = lay.num_joints
    stats = data_stats(train)
    info = {"layout": lay.name, "normalization": train.normalization, **stats}
    common.write_model_info(wd, experiment="baseline", pipeline=pipeline(config, info), **info)
    bs = int(tc.batch_size)
    steps_per_epoch = max(1, len(train) // bs)
    sc = config.stages.lifter
    num_steps = common.stage_num_steps(sc, steps_per_epoch=steps_per_epoch,
                                       steps_per_block=int(tc.steps_per_block))  # fmt: skip
    key = jax.random.key(int(config.seed))
    k_init, k_train = jax.random.split(key)

    mc = config.model
    model = build_model(config, num_joints=num_joints, stats=stats)
    target_std = stats["output_stats"][1] if mc.standardize else None  # loss units
    constraint = None
    if float(mc.max_norm) > 0:
        max_norm = float(mc.max_norm)

        def constraint(p: Any) -> Any:
            return models.max_norm_constraint(p, max_norm=max_norm)

    tx = clipped(optax.adam(schedule_from_config(sc, steps_per_epoch=steps_per_epoch)),
                 tc.clip_norm)  # fmt: skip

    def loss_fn(ctx: PhaseContext, batch: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
        b = batch["train_3d"]
        return lifter_loss(ctx.apply("lifter", b["pose2d_norm"]), b["pose3d"], std=target_std)

    validate = None
    if tc.val_fraction > 0:
        validate = jeval.make_validator(
            lambda v, x, c: _lift(lambda u: model.apply(v, u, train=False)[0], x, c),
            val,
            variables=lambda s: s["lifter"].variables(),
            batch_size=int(config.eval.batch_size),
        )
    example = jnp.zeros((2, num_joints, 2), jnp.float32)
    stage_decl = harness.Stage(
        "lifter",
        phases=[Phase("lifter", ("lifter",), loss_fn)],
        num_steps=num_steps,
        batch_sizes={"train_3d": bs},
        init=lambda done: create_train_state(
            {"lifter": create_player(model, tx, k_init, example, constraint=constraint)}
        ),
        key=k_train,
        evaluate=validate,
        eval_every=int(tc.eval_every) or None,
        best_metric="mpjpe_mm",
        select=str(tc.select),
    )
    trained = harness.run_stages(
        [stage_decl], {"train_3d": train.arrays(["pose2d_norm", "pose3d"])}, workdir=wd,
        options=common.train_options(tc),
    )  # fmt: skip
    stage = trained.stages["lifter"]

    predict_3d = jit_predict(stage.state["lifter"], _lift)
    evaluations = {
        split: jeval.evaluate_3d(
            predict_3d,
            ds,
            batch_size=int(config.eval.batch_size),
            action_key=config.eval.action_key,
            keep_predictions=True,
        )
        for split, ds in eval_datasets(datasets, config).items()
    }
    header = common.ResultsHeader(
        experiment="baseline (Martinez et al. ICCV 2017 residual lifter, supervised)",
        dataset=f"{config.data.preset}: {train.name} ({len(train)} 2D-3D pairs)",
        source_2d=f"dataset 2D ({train.normalization} normalisation)",
        protocol=(
            "P1 = MPJPE, P2 = P-MPJPE (similarity Procrustes), N-MPJPE; root-relative (pelvis), "
            "mm; per action, action-wise and frame-wise means"
        ),
        options={
            "width": int(mc.width),
            "num_blocks": int(mc.num_blocks),
            "dropout": float(mc.dropout),
            "standardize": bool(mc.standardize),
            "clip_norm": float(tc.clip_norm),
            "batch_size": bs,
            "steps": num_steps,
            "lr": float(sc.lr),
        },
        checkpoint={"lifter": stage.selected_step or stage.num_steps},
        model_selection=(
            f"best validation MPJPE ({len(val)} examples held out of the training split; the "
            "test split is never used for selection)"
            if tc.select == "best"
            else "final checkpoint (no model selection)"
            + (f"; validation curves on {len(val)} held-out training examples" if validate else "")
        ),
        notes=(f"training wall time (this invocation) {stage.wall_s:.1f} s",),
    )
    timings = {
        "train_wall_s": stage.wall_s,
        "trained_steps": stage.trained_steps,
        "resumed_from": stage.resumed_from,
        "samples_per_s": stage.samples_per_s,
        "total_wall_s": time.perf_counter() - t_start,
    }
    figures = []
    if config.eval.figures:
        figures = lifter_figures(wd, evaluations, datasets, title="baseline")
    common.write_results(
        wd, header=header, evaluations=evaluations, extra={"timings": timings, "figures": figures}
    )
    record = {
        "evaluations": common.evaluation_record(evaluations),
        "timings": timings,
        "figures": figures,
        "stage": stage,
    }
    return record


if __name__ == "__main__":
    common.cli(run, default_config=common.config_path("baseline"))
