"""Li et al. (AAAI 2020): self-supervised 2D-to-3D lifting from synchronised views.

    python -m experiments.li --workdir=/tmp/li [--config=experiments/configs/li.py:<preset>]

A training example is one instant seen by V synchronised views: per view the normalised 2D, its
confidences and the cameras (:data:`TRAIN_KEYS`), no 3D pose (the data's 3D only creates the
virtual cameras' 2D, :func:`jpose.data.multiview.build_multiview_set`, and is evaluated against).
Lifting and root branches give the global pose (:mod:`jpose.models.li`); stage ``pretrain``
minimises eq. 6, ``train`` eq. 7 (eqs. 2 + lambda 5), over all view pairs; the uncalibrated
variant estimates the real views' extrinsics from the 2D. Evaluation: the lifting branch alone,
single view. Losses are in the units of the normalised 2D (intrinsics converted to them), not
pixels^2. Deviations from the paper: BUILD_NOTES.md.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import optax

from experiments import common
from jpose import augment, inference, skeleton
from jpose import evaluation as jeval
from jpose import multiview as mv
from jpose import training as T
from jpose.data import multiview as mvdata
from jpose.data.virtual_cameras import VirtualCameraConfig
from jpose.inference import pipelines
from jpose.models import li as mli
from jpose.models.li import output_scale
from jpose.training import stages as harness

__all__ = ["TRAIN_KEYS", "STAGES", "view_options", "forward_global", "pretrain_loss_fn",
           "train_loss_fn", "noise_options", "build_state", "load_predictor", "run"]  # fmt: skip

TRAIN_KEYS = mvdata.VIEW_FIELDS
"""The only fields of a training batch (``[B, V, ...]``): 2D, confidences and cameras."""

ROOT = skeleton.H36M17.root
LOGGER = common.LOGGER
STAGES = ("pretrain", "train")
"""Training stages (``checkpoints/<stage>``), in order (``pretrain`` only when enabled)."""
DESCRIPTION = "Li et al. (AAAI 2020) lifting branch, self-supervised from multi-view 2D"


def view_options(mcfg: ml_collections.ConfigDict) -> dict[str, Any]:
    """``virtual_cameras`` and ``estimator`` of :func:`jpose.data.multiview.build_multiview_set`
    from the ``config.multiview`` block."""
    vc, u = mcfg.virtual_cameras, mcfg.uncalibrated
    return {
        "virtual_cameras": VirtualCameraConfig(**{k: tuple(vc[k]) for k in vc}),
        "estimator": mvdata.RigEstimator(
            num_hypotheses=int(u.num_hypotheses), threshold_px=float(u.threshold_px),
            max_correspondences=int(u.max_correspondences), chunk=int(u.chunk),
        ),
    }  # fmt: skip


def forward_global(ctx: Any, pose2d: jax.Array, *, root_depth_offset: float = 0.0) -> jax.Array:
    """Global 3D per view ``[B, V, J, 3]`` (:func:`jpose.models.li.global_pose`) of the players
    ``lifter`` and ``root`` on ``pose2d [B, V, J, 2]``."""
    rel, root = ctx.apply("lifter", pose2d), ctx.apply("root", pose2d)
    return mli.global_pose(rel, root, root_index=ROOT, root_depth_offset=root_depth_offset)


def pretrain_loss_fn(
    ctx: Any, batch: Mapping[str, Any], *, root_depth_offset: float = 0.0
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Eq. 6 over all view pairs (:func:`jpose.models.li.pretrain_objective`)."""
    b = batch["mv"]
    _check_batch(b)
    glob = forward_global(ctx, b["pose2d"], root_depth_offset=root_depth_offset)
    return mli.pretrain_objective(glob, rotation=b["rotation"], translation=b["translation"],
                                  root_index=ROOT)  # fmt: skip


def train_loss_fn(ctx: Any, batch: Mapping[str, Any], *, transform_weight: float,
                  confidence_view: str = "source", root_depth_offset: float = 0.0,
                  detection_noise: Mapping[str, float] | None = None,
                  confidence_weighting: bool = True
                  ) -> tuple[jax.Array, dict[str, jax.Array]]:  # fmt: skip
    """Eq. 7 over all view pairs (:func:`jpose.models.li.train_objective`) on
    ``batch = {"mv": {TRAIN_KEYS: [B, V, ...]}}``; ``transform_weight``: lambda of eq. 7.
    ``detection_noise``: options of :func:`jpose.augment.detection_noise` (None: GT 2D): every
    view's 2D becomes a fresh simulated detection, the lifter input, re-projection target and
    weights w of eqs. 2 and 5; ``confidence_weighting=False``: the ablation without w;
    ``confidence_view``: whose confidences weight eq. 5 (``jpose.losses.
    li_transform_reprojection_loss``); ``root_depth_offset``: metres added to the root branch's
    depth."""
    b = dict(batch["mv"])
    _check_batch(b)
    if detection_noise is not None:
        b["pose2d"], b["confidence"] = augment.detection_noise(
            ctx.key_for("detection_noise"), b["pose2d"], b["confidence"], **detection_noise
        )
    if not confidence_weighting:
        b["confidence"] = (b["confidence"] > 0).astype(b["pose2d"].dtype)
    glob = forward_global(ctx, b["pose2d"], root_depth_offset=root_depth_offset)
    return mli.train_objective(
        glob, b["pose2d"], b["confidence"], focal=b["focal"], center=b["center"],
        rotation=b["rotation"], translation=b["translation"], transform_weight=transform_weight,
        confidence_view=confidence_view, root_index=ROOT,
    )  # fmt: skip


def noise_options(config: ml_collections.ConfigDict) -> dict[str, float] | None:
    """Keyword options of :func:`jpose.augment.detection_noise` from ``config.noise`` (None when
    disabled: ground-truth 2D with its own confidences)."""
    n = config.noise
    return {k: float(n[k]) for k in augment.DETECTION_NOISE_OPTIONS} if n.enabled else None


def _check_batch(b: Mapping[str, Any]) -> None:
    extra = set(b) - set(TRAIN_KEYS)
    if extra:  # static (trace-time) guard: nothing but 2D and cameras reaches a loss
        raise ValueError(f"training batch has fields {sorted(extra)} beyond {TRAIN_KEYS}")


def _lift(apply: Any, pose2d: jax.Array, confidence: jax.Array) -> jax.Array:
    """The evaluated 3D: the lifting branch's output made root-relative (2D only: Li et al.)."""
    del confidence
    rel = apply(pose2d)
    return rel - rel[..., ROOT : ROOT + 1, :]


def load_predictor(config: Mapping[str, Any], workdir: str | os.PathLike[str], *,
                   step: int | None = None) -> inference.Predictor:  # fmt: skip
    """The trained branches of a Li et al. work directory (:func:`pipeline`):
    ``predict(pose2d_norm, confidence)`` returns ``pose3d``, the lifting branch's output made
    root-relative (exactly what ``run`` evaluates), and ``translation`` ``[B, 3]``, the root
    branch's root (metres, camera frame, ``model.root_depth_offset_m`` added to its depth), so
    that ``pose3d + translation[:, None]`` is the global pose of the training losses. The
    confidences are not used (the branches see 2D only). Restored from the last stage with
    checkpoints (``train``, else ``pretrain``)."""
    return common.declared_predictor(pipeline, config, workdir, step=step,
                                     info=inference.read_model_info(workdir))  # fmt: skip


def network_specs(mcfg: ml_collections.ConfigDict, num_joints: int) -> dict[str, Any]:
    """Lifting and root branches (Li et al.: residual MLP, 4 blocks, separate weights) as
    :func:`jpose.inference.pipelines.network_spec` declarations, with ``zero_init_output`` and
    the readout multiplier :func:`jpose.models.li.output_scale` (neither in the paper; work
    directories written before these fields existed used neither)."""
    width, dropout = int(mcfg.width), float(mcfg.dropout)
    zero = bool(mcfg.get("zero_init_output", False))
    scale = float(mcfg.get("output_scale", 0.0) or 0.0)
    kw = {"dropout": dropout, "zero_init_output": zero}
    return {
        "lifter": pipelines.network_spec("li_lifter", num_joints, width=width,
                                         output_scale=output_scale(width, scale=scale), **kw),
        "root": pipelines.network_spec("li_root_branch", width=int(mcfg.root_width),
                                       output_scale=output_scale(int(mcfg.root_width), scale=scale),
                                       **kw),
    }  # fmt: skip


def pipeline(config: ml_collections.ConfigDict, info: Mapping[str, Any]) -> dict[str, Any]:
    """The ``model.json["pipeline"]`` entry (:mod:`jpose.inference.pipelines`): both branches,
    restored by jpose alone exactly as :func:`load_predictor` restores them."""
    lay = skeleton.get_layout(str(info["layout"]))
    return pipelines.pipeline_spec(
        "lifter", networks=network_specs(config.model, lay.num_joints), stages=STAGES,
        options={"root_depth_offset_m": float(config.model.root_depth_offset_m)},
        predictor={"experiment": "li", "description": DESCRIPTION, "layout": lay.name,
                   "normalization": str(info["normalization"])},
    )  # fmt: skip


def build_state(config: ml_collections.ConfigDict, example: jax.Array, *, key: jax.Array,
                stage: ml_collections.ConfigDict, steps_per_epoch: int, num_steps: int,
                previous: T.TrainState | None = None) -> T.TrainState:  # fmt: skip
    """Players ``lifter`` and ``root`` (:func:`network_specs`) with a fresh Adam for ``stage``
    (parameters of the previous stage's state when given). With ``stage.steps > 0`` (CPU
    presets) the epoch-based learning-rate boundaries are rescaled to the step budget, so "x0.1
    at 1/3 and 2/3 of training" is kept."""
    sched_cfg = dict(stage)
    if int(stage.steps) > 0 and stage.boundaries:  # boundaries in steps: one step per "epoch"
        epochs = float(stage.epochs)
        sched_cfg["boundaries"] = tuple(float(b) / epochs * num_steps for b in stage.boundaries)
        sched = T.schedule_from_config(sched_cfg, steps_per_epoch=1)
    else:
        sched = T.schedule_from_config(sched_cfg, steps_per_epoch=steps_per_epoch)
    warmup = int(stage.warmup_steps)
    if warmup > 0:  # linear warm-up of each stage's fresh Adam (see the config's comment)
        base = sched
        sched = lambda step: base(step) * jnp.minimum(1.0, (step + 1.0) / warmup)  # noqa: E731
    tx = T.clipped(optax.adam(sched), config.train.clip_norm)
    specs = network_specs(config.model, example.shape[-2])
    players = {}
    for (name, spec), k in zip(specs.items(), jax.random.split(key)):  # lifter, root
        p = T.create_player(pipelines.build_network(spec), tx, k, example)
        if previous is not None:  # the previous stage's parameters, a fresh Adam
            p = p.with_variables(previous.players[name].params, previous.players[name].batch_stats)
        players[name] = p
    return T.create_train_state(players)


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Train (pre-train + train), evaluate and report; resumable. Returns the results record."""
    t_start = time.perf_counter()
    wd = common.setup_workdir(workdir, config)
    datasets = common.load_datasets(config.data)
    train_ds = datasets.pop("train_3d")  # only the multi-view set below reads the training 3D
    info = {"layout": train_ds.layout, "normalization": train_ds.normalization,
            "root_depth_offset_m": float(config.model.root_depth_offset_m)}  # fmt: skip
    common.write_model_info(wd, experiment="li", pipeline=pipeline(config, info), **info)
    mcfg, sc = config.multiview, config.stages
    t0 = time.perf_counter()
    mvset = mvdata.build_multiview_set(
        train_ds, views=tuple(config.data.views), group_keys=tuple(config.data.group_keys),
        rig_keys=tuple(config.data.rig_keys), num_virtual_views=int(mcfg.num_virtual_views),
        extrinsics=mcfg.extrinsics, seed=int(config.seed), **view_options(mcfg),
    )  # fmt: skip
    prep_s = time.perf_counter() - t0
    m, v = mvset.num_instants, mvset.num_views
    options = common.train_options(config.train)
    bs = min(int(config.train.batch_size), m)
    bs -= bs % options.num_devices
    steps_per_epoch = max(1, m // bs)
    example = jnp.asarray(mvset.arrays["pose2d"][:2])
    base_key = jax.random.key(int(config.seed))
    offset_m = float(config.model.root_depth_offset_m)
    losses_of = {
        "pretrain": functools.partial(pretrain_loss_fn, root_depth_offset=offset_m),
        "train": functools.partial(
            train_loss_fn, transform_weight=float(sc.train.transform_weight),
            confidence_view=str(sc.train.confidence_view), root_depth_offset=offset_m,
            detection_noise=noise_options(config),
            confidence_weighting=bool(sc.train.confidence_weighting),
        ),
    }  # fmt: skip

    def declare(index: int, name: str) -> harness.Stage:
        scfg, skey = sc[name], jax.random.fold_in(base_key, index)
        num_steps = common.stage_num_steps(scfg, steps_per_epoch=steps_per_epoch,
                                           steps_per_block=options.steps_per_block)  # fmt: skip
        init = lambda done: build_state(  # noqa: E731 - continues from the previous stage
            config, example, key=jax.random.fold_in(skey, 1), stage=scfg,
            steps_per_epoch=steps_per_epoch, num_steps=num_steps,
            previous=next(reversed(done.values()), None),
        )  # fmt: skip
        return harness.Stage(name, phases=[T.Phase(name, ("lifter", "root"), losses_of[name])],
                             num_steps=num_steps, batch_sizes={"mv": bs}, init=init,
                             key=skey)  # fmt: skip

    names = ["pretrain", "train"] if sc.pretrain.enabled else ["train"]
    trained = harness.run_stages([declare(i, n) for i, n in enumerate(names)],
                                 {"mv": mvset.arrays}, workdir=wd, options=options)  # fmt: skip
    lifter = trained.state.players["lifter"]
    predict_3d = jeval.apply_fn(lifter.model, lifter.variables(), _lift)  # load_predictor's pose3d
    evaluations, keep = {}, bool(config.eval.figures)
    for split, ds in common.eval_datasets(datasets, config).items():
        e = evaluations[split] = common.evaluate(predict_3d, ds, config, keep_predictions=keep)
        LOGGER.info("%s: MPJPE %.1f mm, P-MPJPE %.1f mm (action-wise)", split,
                    e["metrics"]["mpjpe"]["action_wise"],
                    e["metrics"]["p_mpjpe"]["action_wise"])  # fmt: skip
    title = "Uncalibrated extrinsics vs calibration (training rigs, degrees)"
    tables = {title: mvset.estimator_errors} if mvset.estimator_errors else {}
    if config.eval.estimator_report:
        u = mcfg.uncalibrated
        tables["Relative-pose estimator on synthetic rigs (degrees)"] = mvdata.estimator_report(
            noise_levels_px=tuple(u.noise_levels_px), outlier_fraction=float(u.outlier_fraction),
            trials=int(u.report_trials), num_hypotheses=int(u.num_hypotheses),
            threshold_px=float(u.threshold_px), seed=int(config.seed),
        )  # fmt: skip
    header = dict(
        experiment=f"Li et al. AAAI 2020 (experiments.li, preset {config.preset})",
        dataset=f"{train_ds.name}: 2D of synchronised views + cameras only (no 3D labels)",
        source_2d=f"{train_ds.name} 2D ({train_ds.normalization}); virtual views: projections",
        protocol="lifting branch only, single view; P1 MPJPE, P2 P-MPJPE (mm, root-relative)",
        options={"views": f"{mvset.num_real_views} real + {v - mvset.num_real_views} virtual",
                 "pairs": len(mv.view_pairs(v)), "instants": m, "extrinsics": mcfg.extrinsics,
                 "lambda": float(sc.train.transform_weight), "pretrain": bool(sc.pretrain.enabled),
                 "width": int(config.model.width), "batch_instants": bs,
                 "detection_noise": noise_options(config) or "off (GT 2D)",
                 "confidence_weighting": bool(sc.train.confidence_weighting)},
        model_selection="last checkpoint of each stage (no selection on the test split)",
    )  # fmt: skip
    return common.finish(wd, config, trained, t_start, header=header, evaluations=evaluations,
                         datasets=datasets, title="Li et al.", notes=tuple(config.notes),
                         extra_tables=tables,
                         timings=trained.timings(t_start, data_prep_s=prep_s))  # fmt: skip


if __name__ == "__main__":
    common.cli(run, default_config=common.config_path("li"))
