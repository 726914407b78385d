"""Supervised baseline: Martinez et al. (ICCV 2017) residual lifter trained on 2D-3D pairs.

``python -m experiments.baseline --workdir=DIR [--config=experiments/configs/baseline.py:PRESET]``

Normalised 2D ``[B, J, 2]`` -> root-relative camera-frame 3D ``[B, J, 3]`` in metres; loss:
(standardised) mean squared error (sec. 3). Evaluation: MPJPE (P1), P-MPJPE (P2), N-MPJPE, mm.
The same command again resumes; :func:`load_predictor` restores the trained lifter."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import optax

from experiments import common
from jpose import inference, losses, models, skeleton
from jpose.data import PoseDataset
from jpose.evaluation import jit_predict
from jpose.inference import pipelines
from jpose.training import Phase, PhaseContext, clipped, create_player, create_train_state
from jpose.training import stages as harness
from jpose.training.schedules import schedule_from_config

__all__ = ["STAGES", "run", "build_model", "load_predictor", "lifter_loss"]

#: The baseline's single training stage (``checkpoints/lifter``).
STAGES = ("lifter",)
DESCRIPTION = "baseline: Martinez et al. (ICCV 2017) residual lifter, supervised"


def lifter_loss(
    pred: jax.Array, target: jax.Array, *, std: Any = None
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Martinez et al. (ICCV 2017, Sec. 3.1-3.2) L2 loss (``losses.martinez_loss``) of the raw
    lifter output ``pred [B, J, 3]`` against root-relative ``target`` (metres), in units of
    ``std`` (``output_stats[1]``; None: m^2); returns ``(loss, {"loss_std_units" or "mse",
    "mpjpe_mm"})``, batch means (``mpjpe_mm`` of the root-relative prediction, monitoring)."""
    loss = jnp.mean(losses.martinez_loss(pred, target, std=std))
    mpjpe = jnp.mean(jnp.linalg.norm(_root_relative(pred) - target, axis=-1)) * 1000.0
    return loss, {"mse" if std is None else "loss_std_units": loss, "mpjpe_mm": mpjpe}


def _root_relative(pose: jax.Array) -> jax.Array:
    return pose - pose[..., :1, :]


def _lift(apply: Callable[[jax.Array], jax.Array], x: jax.Array, c: jax.Array) -> jax.Array:
    """The evaluated 3D: the lifter's output made root-relative (confidences unused)."""
    del c
    return _root_relative(apply(x))


def data_stats(train: PoseDataset) -> dict[str, Any]:
    """Martinez's standardisation statistics (``model.json`` fields ``input_stats``,
    ``output_stats``): per-coordinate ``(mean, std)`` of the training 2D and root-relative 3D."""
    return models.lifter_stats(train.pose2d_norm, train.pose3d_root_relative)


def build_model(
    config: ml_collections.ConfigDict, *, num_joints: int, stats: Mapping[str, Any] | None = None
) -> models.Model:
    """The lifter ``pose2d [B, J, 2] -> pose3d [B, J, 3]`` of ``config.model`` (no parameters);
    ``stats`` (:func:`data_stats`) are needed when ``model.standardize`` is on."""
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
    """The ``model.json["pipeline"]`` entry (:mod:`jpose.inference.pipelines`) of the other
    ``model.json`` fields (``layout``, ``normalization``, statistics)."""
    lay = skeleton.get_layout(str(info["layout"]))
    return pipelines.pipeline_spec(
        "lifter", networks={"lifter": lifter_spec(config, num_joints=lay.num_joints, stats=info)},
        stages=STAGES, predictor={"experiment": "baseline", "description": DESCRIPTION,
                                  "layout": lay.name, "normalization": str(info["normalization"])},
    )  # fmt: skip


def load_predictor(
    config: Mapping[str, Any], workdir: str | os.PathLike[str], *, step: int | None = None
) -> inference.Predictor:
    """The trained lifter of a baseline work directory (:func:`pipeline`):
    ``predict(pose2d_norm, confidence)["pose3d"]`` is what :func:`run` evaluates (root-relative,
    metres, camera frame; confidences unused)."""
    return common.declared_predictor(pipeline, config, workdir, step=step,
                                     info=inference.read_model_info(workdir))  # fmt: skip


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Train (or resume) and evaluate the supervised baseline (config:
    ``experiments/configs/baseline.py``); returns the results record (:func:`common.finish`)."""
    t_start, wd, datasets, val = common.start(config, workdir)
    train = datasets["train_3d"]
    lay = skeleton.get_layout(train.layout)
    stats = data_stats(train)
    info = {"layout": lay.name, "normalization": train.normalization, **stats}
    common.write_model_info(wd, experiment="baseline", pipeline=pipeline(config, info), **info)
    tc, sc, mc = config.train, config.stages.lifter, config.model
    bs = int(tc.batch_size)
    steps_per_epoch = max(1, len(train) // bs)
    num_steps = common.stage_num_steps(sc, steps_per_epoch=steps_per_epoch,
                                       steps_per_block=int(tc.steps_per_block))  # fmt: skip
    k_init, k_train = jax.random.split(jax.random.key(int(config.seed)))
    model = build_model(config, num_joints=lay.num_joints, stats=stats)
    target_std = stats["output_stats"][1] if mc.standardize else None  # loss units
    constraint = None
    if float(mc.max_norm) > 0:
        constraint = functools.partial(models.max_norm_constraint, max_norm=float(mc.max_norm))
    tx = clipped(optax.adam(schedule_from_config(sc, steps_per_epoch=steps_per_epoch)),
                 tc.clip_norm)  # fmt: skip

    def loss_fn(ctx: PhaseContext, batch: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
        b = batch["train_3d"]
        return lifter_loss(ctx.apply("lifter", b["pose2d_norm"]), b["pose3d"], std=target_std)

    example = jnp.zeros((2, lay.num_joints, 2), jnp.float32)
    validation, selection = common.validation(val, config, model, _lift, player="lifter")
    stage_decl = harness.Stage(
        "lifter", phases=[Phase("lifter", ("lifter",), loss_fn)], num_steps=num_steps,
        batch_sizes={"train_3d": bs}, key=k_train,
        init=lambda done: create_train_state(
            {"lifter": create_player(model, tx, k_init, example, constraint=constraint)}
        ),
        **validation,
    )  # fmt: skip
    trained = harness.run_stages(
        [stage_decl], {"train_3d": train.arrays(["pose2d_norm", "pose3d"])}, workdir=wd,
        options=common.train_options(tc),
    )  # fmt: skip

    predict_3d = jit_predict(trained.state["lifter"], _lift)
    evaluations = {
        split: common.evaluate(predict_3d, ds, config)
        for split, ds in common.eval_datasets(datasets, config).items()
    }
    header = dict(
        experiment="baseline (Martinez et al. ICCV 2017 residual lifter, supervised)",
        dataset=f"{config.data.preset}: {train.name} ({len(train)} 2D-3D pairs)",
        protocol=(
            "P1 = MPJPE, P2 = P-MPJPE (similarity Procrustes), N-MPJPE; root-relative (pelvis), "
            "mm; per action, action-wise and frame-wise means"
        ),
        options={
            **common.fields(config, "model.width", "model.num_blocks", "model.dropout",
                             "model.standardize", "train.clip_norm", "train.batch_size"),
            "steps": num_steps, "lr": float(sc.lr),
        },
        model_selection=selection,
    )  # fmt: skip
    return common.finish(wd, config, trained, t_start, header=header, evaluations=evaluations,
                         datasets=datasets, title="baseline")  # fmt: skip


if __name__ == "__main__":
    common.cli(run, default_config=common.config_path("baseline"))
