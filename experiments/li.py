"""Li et al. (AAAI 2020): self-supervised 2D-to-3D lifting from synchronised views.

    python -m experiments.li --workdir=/tmp/li [--config=experiments/configs/li.py:<preset>]

No 3D pose reaches a training loss. A training example is one *instant* seen by V synchronised
views: per view the normalised 2D joints ``pose2d [V, J, 2]``, their confidences (1 where the
source has none), the intrinsics in the units of the 2D (``focal``, ``center``) and world ->
camera extrinsics (``rotation``, ``translation``) -- :data:`TRAIN_KEYS`, nothing else. The 3D
poses of the data set are used only to *create 2D inputs* of the extra virtual cameras (and to
evaluate).

Method:

* lifting branch (residual MLP, 4 blocks) -> root-relative 3D ``Y`` per view; root branch (same
  architecture, separate weights) -> root ``r``; global pose ``Y~ = Y + r`` (camera frame);
* stage ``pretrain``: eq. 6 (:func:`jpose.losses.li_pretrain_loss`) over all view pairs;
* stage ``train``: ``L_T = L_reproj + lambda L_t-reproj`` (eqs. 2, 5, 7) over all view pairs with
  the relative transforms of eq. 4 (:func:`jpose.multiview.pair_transforms`);
* virtual-camera augmentation: ``multiview.num_virtual_views`` cameras per instant sampled like
  a Human3.6M rig around the subject (:func:`jpose.data.virtual_cameras.sample_cameras`);
* uncalibrated variant: the extrinsics of the real views are replaced by relative poses w.r.t.
  view 0 estimated from the 2D joints (:func:`jpose.multiview.estimate_relative_pose`, pooled over
  all instants of a static rig), scaled by the given baseline. Virtual cameras are constructed
  relative to view 0 and keep their exact poses.
* evaluation: the lifting branch only, single view, P1 / P2 (+ N-MPJPE) per action
  (:func:`experiments.jeval.evaluate_3d`); :func:`load_predictor` (or
  ``jpose.inference.load_predictor(DIR)``) restores the same lifter (and the root branch).

Losses use normalised 2D (``data.normalization``, VideoPose3D by default) with the intrinsics
converted to the same units (:func:`jpose.data.common.normalized_intrinsics`), so eq. 2 / 5 are in
squared normalised units (1 unit = half the image width) instead of pixels^2.
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
import numpy as np
import optax

from experiments import common
from jpose import augment, inference, skeleton
from jpose import evaluation as jeval
from jpose import losses as jl
from jpose import multiview as mv
from jpose.data import PoseDataset
from jpose.data import multiview as mvdata
from jpose.data.virtual_cameras import VirtualCameraConfig
from jpose.evaluation import apply_fn
from jpose.inference import pipelines
from jpose.models import Model
from jpose.training import Phase, clipped, create_player, create_train_state
from jpose.training import stages as harness
from jpose.training.schedules import schedule_from_config
from jpose.training.state import TrainState

__all__ = [
    "TRAIN_KEYS",
    "load_li_datasets",
    "view_options",
    "forward_global",
    "pretrain_loss_fn",
    "train_loss_fn",
    "build_state",
    "STAGES",
    "build_models",
    "load_predictor",
    "run",
]

TRAIN_KEYS = mvdata.VIEW_FIELDS
"""The only fields of a training batch (``[B, V, ...]``): 2D, confidences and cameras."""

ROOT = skeleton.H36M17.root
LOGGER = common.LOGGER
STAGES = ("pretrain", "train")
DESCRIPTION = "Li et al. (AAAI 2020) lifting branch, self-supervised from multi-view 2D"
"""Training stages (``checkpoints/<stage>``), in order (``pretrain`` only when enabled)."""


# ------------------------------------------------------------------------------------------------
# Data
# ------------------------------------------------------------------------------------------------


def load_li_datasets(cfg: ml_collections.ConfigDict) -> dict[str, PoseDataset]:
    """:func:`experiments.common.load_datasets`, except for CMU with one static virtual rig per
    sequence (``data.cmu_cameras_per = "sequence"``), which the shared loader does not expose."""
    if cfg.preset == "cmu" and cfg.cmu_cameras_per == "sequence":
        from jpose.data import cmu as jcmu
        from jpose.data.presets import shared_data_dir

        folder = cfg.data_dir or shared_data_dir()
        if folder is None:
            raise FileNotFoundError("the cmu preset needs ../shared/data (cmu_mocap_h36m17.npz)")
        mocap = jcmu.load_cmu_mocap(f"{folder}/cmu_mocap_h36m17.npz")
        kw = {
            "subsample": int(cfg.cmu_subsample),
            "num_cameras": int(cfg.cmu_num_cameras),
            "cameras_per": "sequence",
        }
        seed = int(cfg.seed)
        actions = [a.strip() for a in cfg.cmu_actions_3d.split(",") if a.strip()]
        out = {
            "train_3d": jcmu.cmu_pose_pairs(mocap, split="train", seed=seed,
                                            actions=actions or None, **kw),
            "test": jcmu.cmu_pose_pairs(mocap, split="test", seed=seed + 1,
                                        exclude_actions=actions, **kw),
        }  # fmt: skip
        limits = cfg.max_examples
        for i, (name, ds) in enumerate(sorted(out.items())):
            out[name] = common.subset(ds, int(limits[name]), seed=seed + 101 + i)
        return out
    return common.load_datasets(cfg)


# ------------------------------------------------------------------------------------------------
# Model and losses
# ------------------------------------------------------------------------------------------------


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
    """Global 3D per view ``Y~ = Y + r`` (lifting branch made root-relative + root branch).

    Args:
      ctx: the phase context (players ``lifter`` and ``root``).
      pose2d: ``[B, V, J, 2]`` normalised 2D.
      root_depth_offset: metres added to the root branch's depth output (``r_z = out_z +
        offset``), so a freshly initialised root branch (outputs ~ 0) starts in front of the
        camera instead of at the depth clamp (an implementation choice, not in the paper).

    Returns:
      ``[B, V, J, 3]`` metres, each view's camera frame.
    """
    rel = ctx.apply("lifter", pose2d)
    rel = rel - rel[..., ROOT : ROOT + 1, :]
    root = ctx.apply("root", pose2d) + jnp.asarray([0.0, 0.0, root_depth_offset], pose2d.dtype)
    return rel + root[..., None, :]


def _pairs_of(batch: Mapping[str, jax.Array]) -> np.ndarray:
    return mv.view_pairs(batch["pose2d"].shape[-3])


def _stack_pairs(x: jax.Array, pairs: np.ndarray) -> jax.Array:
    """``[B, V, ...] -> [B, P, 2, ...]``."""
    return jnp.stack([x[:, pairs[:, 0]], x[:, pairs[:, 1]]], axis=2)


def pretrain_loss_fn(
    ctx: Any, batch: Mapping[str, Any], *, root_depth_offset: float = 0.0
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Eq. 6 averaged over the batch and all view pairs (metres^2 per pair)."""
    b = batch["mv"]
    _check_batch(b)
    glob = forward_global(ctx, b["pose2d"], root_depth_offset=root_depth_offset)
    pairs = _pairs_of(b)
    r_ab, t_ab = mv.pair_transforms(b["rotation"], b["translation"], pairs=pairs)
    loss = jnp.mean(jl.li_pretrain_loss(_stack_pairs(glob, pairs), rotation=r_ab, translation=t_ab))
    return loss, {"eq6": loss, "root_depth": jnp.mean(glob[..., ROOT, 2])}


def train_loss_fn(
    ctx: Any,
    batch: Mapping[str, Any],
    *,
    transform_weight: float,
    confidence_view: str = "source",
    root_depth_offset: float = 0.0,
    detection_noise: Mapping[str, float] | None = None,
    confidence_weighting: bool = True,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Eq. 7 ``L_reproj + lambda L_t-reproj`` (eqs. 2, 5), averaged over batch and view pairs.

    Args:
      ctx: the phase context.
      batch: ``{"mv": {TRAIN_KEYS: [B, V, ...]}}``.
      transform_weight: lambda of eq. 7.
      confidence_view: eq. 5's weights (``jpose.losses.li_transform_reprojection_loss``).
      root_depth_offset: added to the root branch's depth (metres).
      detection_noise: options of :func:`jpose.augment.detection_noise` (None = GT 2D): every
        view's 2D becomes a simulated detection with confidences (fresh each step), used as the
        lifter input, the re-projection target and the weights w of eqs. 2 and 5.
      confidence_weighting: False = the ablation without the w of eqs. 2 and 5 (every present
        joint weighted 1).
    """
    b = dict(batch["mv"])
    _check_batch(b)
    if detection_noise is not None:
        b["pose2d"], b["confidence"] = augment.detection_noise(
            ctx.key_for("detection_noise"), b["pose2d"], b["confidence"], **detection_noise
        )
    if not confidence_weighting:
        b["confidence"] = (b["confidence"] > 0).astype(b["pose2d"].dtype)
    glob = forward_global(ctx, b["pose2d"], root_depth_offset=root_depth_offset)
    pairs = _pairs_of(b)
    per_view = jl.li_reprojection_loss(
        glob, b["pose2d"], b["confidence"], focal=b["focal"], center=b["center"]
    )  # [B, V]
    reproj = jnp.mean(per_view[:, pairs[:, 0]] + per_view[:, pairs[:, 1]])  # eq. 2 per pair
    r_ab, t_ab = mv.pair_transforms(b["rotation"], b["translation"], pairs=pairs)
    trans = jnp.mean(
        jl.li_transform_reprojection_loss(
            _stack_pairs(glob, pairs),
            _stack_pairs(b["pose2d"], pairs),
            _stack_pairs(b["confidence"], pairs),
            rotation=r_ab,
            translation=t_ab,
            focal=_stack_pairs(b["focal"], pairs),
            center=_stack_pairs(b["center"], pairs),
            confidence_view=confidence_view,
        )
    )
    loss = jl.li_total_loss(reproj, trans, weight=transform_weight)
    present = b["confidence"] > 0
    mean_conf = jnp.sum(jnp.where(present, b["confidence"], 0.0)) / jnp.maximum(jnp.sum(present), 1)
    return loss, {"reproj": reproj, "t_reproj": trans, "root_depth": jnp.mean(glob[..., ROOT, 2]),
                  "mean_confidence": mean_conf}  # fmt: skip


def noise_options(config: ml_collections.ConfigDict) -> dict[str, float] | None:
    """Keyword options of :func:`jpose.augment.detection_noise` from ``config.noise`` (None when
    disabled: ground-truth 2D with its own confidences)."""
    n = config.noise
    if not n.enabled:
        return None
    return {k: float(n[k]) for k in augment.DETECTION_NOISE_OPTIONS}


def _check_batch(b: Mapping[str, Any]) -> None:
    extra = set(b) - set(TRAIN_KEYS)
    if extra:  # static (trace-time) guard: nothing but 2D and cameras reaches a loss
        raise ValueError(f"training batch has fields {sorted(extra)} beyond {TRAIN_KEYS}")


def build_models(
    config: ml_collections.ConfigDict, *, num_joints: int = skeleton.H36M17.num_joints
) -> dict[str, Model]:
    """``{"lifter": lifting branch, "root": root branch}`` of ``config.model`` (no parameters,
    no data needed; see :func:`_branches`)."""
    return {n: pipelines.build_network(spec)
            for n, spec in network_specs(config.model, num_joints).items()}  # fmt: skip


def _lift(apply: Any, pose2d: jax.Array, confidence: jax.Array) -> jax.Array:
    """The evaluated 3D: the lifting branch's output made root-relative (2D only: Li et al.)."""
    del confidence
    rel = apply(pose2d)
    return rel - rel[..., ROOT : ROOT + 1, :]


def load_predictor(
    config: Mapping[str, Any], workdir: str | os.PathLike[str], *, step: int | None = None
) -> inference.Predictor:
    """The trained branches of a Li et al. work directory (:func:`pipeline`).

    ``predict(pose2d_norm, confidence)`` returns ``pose3d``: the lifting branch's output made
    root-relative (pelvis at the origin; metres, camera frame), exactly the single-view 3D that
    ``run`` evaluates; and ``translation`` ``[B, 3]``: the root branch's root position (metres,
    camera frame, ``model.root_depth_offset_m`` added to its depth as in training), so that
    ``pose3d + translation[:, None]`` is the global pose of the training losses. Confidences are
    not used (the branches see 2D only). Restored from the last stage with checkpoints
    (``train``, else ``pretrain``).
    """
    return common.declared_predictor(pipeline, config, workdir, step=step,
                                     info=inference.read_model_info(workdir))  # fmt: skip


def output_scale(width: int, scale: float = 0.0, *, reference_width: int = 128) -> float:
    """The metre-valued branches' output multiplier: ``scale``, or when 0 ``min(1,
    reference_width / width)``.

    Adam moves every output weight by about ``lr`` on its first steps whatever the gradient's
    size (global-norm clipping before Adam does not change that), so a zero-initialised output
    layer over ``width`` hidden units moves the metre-valued output by about
    ``lr * width * mean|h|``: ~0.1 m at width 128 but ~1 m at the paper's 1024 (doubled by
    dropout 0.5's rescaling), which throws joints behind the camera, where eqs. 2 / 5 explode at
    the depth clamp. Multiplying the output by ``reference_width / width`` (a readout multiplier,
    as in maximal-update parametrisations) keeps the per-step output change of the CPU-tested
    width at every width. Not in Li et al. (AAAI 2020), who do not state their output units.
    """
    return float(scale) if float(scale) > 0 else min(1.0, reference_width / max(int(width), 1))


def network_specs(mcfg: ml_collections.ConfigDict, num_joints: int) -> dict[str, Any]:
    """Lifting and root branches (Li et al.: residual MLP, 4 blocks, separate weights) as
    :func:`jpose.inference.pipelines.network_spec` declarations.

    ``zero_init_output`` (not in the paper) starts the lifter at the collapsed pose and the root
    at ``(0, 0, root_depth_offset_m)``: with the default initialisation the metre-valued outputs
    are several metres, joints land behind the camera and eqs. 2 / 5 explode at the depth clamp.
    ``output_scale`` (:func:`output_scale`; 1 at width 128) keeps Adam's first steps of the
    outputs width-independent. Work directories written before these fields existed used
    neither.
    """
    width, dropout = int(mcfg.width), float(mcfg.dropout)
    zero = bool(mcfg.get("zero_init_output", False))
    scale = float(mcfg.get("output_scale", 0.0) or 0.0)
    kw = {"dropout": dropout, "zero_init_output": zero}
    return {
        "lifter": pipelines.network_spec("li_lifter", num_joints, width=width,
                                         output_scale=output_scale(width, scale), **kw),
        "root": pipelines.network_spec("li_root_branch", width=int(mcfg.root_width),
                                       output_scale=output_scale(int(mcfg.root_width), scale),
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


def build_state(
    config: ml_collections.ConfigDict,
    example: jax.Array,
    *,
    key: jax.Array,
    stage: ml_collections.ConfigDict,
    steps_per_epoch: int,
    num_steps: int,
    previous: TrainState | None = None,
) -> TrainState:
    """Players ``lifter`` and ``root`` with a fresh Adam for ``stage`` (parameters of the
    previous stage's state when given).

    The stage's epoch-based learning-rate boundaries are rescaled to its step budget when
    ``stage.steps > 0`` (CPU presets), so "x0.1 at 1/3 and 2/3 of training" is kept.
    """
    sched_cfg = dict(stage)
    if int(stage.steps) > 0 and stage.boundaries:
        epochs = float(stage.epochs)
        sched_cfg["boundaries"] = tuple(float(b) / epochs * num_steps for b in stage.boundaries)
        spe = 1
    else:
        spe = steps_per_epoch
    sched = schedule_from_config(sched_cfg, steps_per_epoch=spe)
    warmup = int(stage.warmup_steps)
    if warmup > 0:  # linear warm-up of each stage's fresh Adam (see the config's comment)
        base = sched
        sched = lambda step: base(step) * jnp.minimum(1.0, (step + 1.0) / warmup)  # noqa: E731
    tx = clipped(optax.adam(sched), config.train.clip_norm)
    nets = build_models(config, num_joints=example.shape[-2])
    lifter, root = nets["lifter"], nets["root"]
    k1, k2 = jax.random.split(key)
    players = {"lifter": create_player(lifter, tx, k1, example),
               "root": create_player(root, tx, k2, example)}  # fmt: skip
    if previous is not None:
        for name, p in players.items():
            prev = previous.players[name]
            players[name] = p.replace(
                params=prev.params, batch_stats=prev.batch_stats, opt_state=tx.init(prev.params)
            )
    return create_train_state(players)


# ------------------------------------------------------------------------------------------------
# Entry point
# ------------------------------------------------------------------------------------------------


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Train (pre-train + train), evaluate and report; resumable. Returns the results record."""
    t_start = time.perf_counter()
    wd = common.setup_workdir(workdir, config)
    datasets = load_li_datasets(config.data)
    train_ds = datasets["train_3d"]
    info = {"layout": train_ds.layout, "normalization": train_ds.normalization,
            "root_depth_offset_m": float(config.model.root_depth_offset_m)}  # fmt: skip
    common.write_model_info(wd, experiment="li", pipeline=pipeline(config, info), **info)
    mcfg = config.multiview
    t0 = time.perf_counter()
    mvset = mvdata.build_multiview_set(
        train_ds,
        views=tuple(config.data.views),
        group_keys=tuple(config.data.group_keys),
        rig_keys=tuple(config.data.rig_keys),
        num_virtual_views=int(mcfg.num_virtual_views),
        extrinsics=mcfg.extrinsics,
        seed=int(config.seed),
        **view_options(mcfg),
    )
    prep_s = time.perf_counter() - t0
    del datasets["train_3d"]  # nothing below may touch the training 3D
    m, v = mvset.num_instants, mvset.num_views
    options = common.train_options(config.train)
    bs = min(int(config.train.batch_size), m)
    bs -= bs % options.num_devices
    steps_per_epoch = max(1, m // bs)
    example = jnp.asarray(mvset.arrays["pose2d"][:2])
    base_key = jax.random.key(int(config.seed))
    offset_m = float(config.model.root_depth_offset_m)
    sc = config.stages
    losses_of = {
        "pretrain": functools.partial(pretrain_loss_fn, root_depth_offset=offset_m),
        "train": functools.partial(
            train_loss_fn,
            transform_weight=float(sc.train.transform_weight),
            confidence_view=str(sc.train.confidence_view),
            root_depth_offset=offset_m,
            detection_noise=noise_options(config),
            confidence_weighting=bool(sc.train.confidence_weighting),
        ),
    }

    def declare(index: int, name: str) -> harness.Stage:
        scfg = sc[name]
        num_steps = common.stage_num_steps(scfg, steps_per_epoch=steps_per_epoch,
                                           steps_per_block=options.steps_per_block)  # fmt: skip
        skey = jax.random.fold_in(base_key, index)
        init = lambda done: build_state(  # noqa: E731 - continues from the previous stage
            config, example, key=jax.random.fold_in(skey, 1), stage=scfg,
            steps_per_epoch=steps_per_epoch, num_steps=num_steps,
            previous=next(reversed(done.values()), None),
        )  # fmt: skip
        return harness.Stage(name, phases=[Phase(name, ("lifter", "root"), losses_of[name])],
                             num_steps=num_steps, batch_sizes={"mv": bs}, init=init,
                             key=skey)  # fmt: skip

    names = ["pretrain", "train"] if sc.pretrain.enabled else ["train"]
    trained = harness.run_stages([declare(i, n) for i, n in enumerate(names)],
                                 {"mv": mvset.arrays}, workdir=wd, options=options)  # fmt: skip
    state, results_stages = trained.state, trained.summary()
    checkpoint = {n: r["steps"] for n, r in results_stages.items()}

    lifter = state.players["lifter"]
    predict_3d = apply_fn(lifter.model, lifter.variables(), _lift)  # = load_predictor's pose3d

    evaluations = {}
    for split in common.eval_splits(datasets, str(config.eval.splits)):
        evaluations[split] = jeval.evaluate_3d(
            predict_3d, datasets[split], batch_size=int(config.eval.batch_size),
            action_key=str(config.eval.action_key), keep_predictions=bool(config.eval.figures),
        )  # fmt: skip
    tables: dict[str, dict[str, dict[str, float]]] = {}
    if mvset.estimator_errors:
        tables["Uncalibrated extrinsics vs calibration (training rigs, degrees)"] = (
            mvset.estimator_errors
        )
    if config.eval.estimator_report:
        u = mcfg.uncalibrated
        tables["Relative-pose estimator on synthetic rigs (degrees)"] = mvdata.estimator_report(
            noise_levels_px=tuple(u.noise_levels_px), outlier_fraction=float(u.outlier_fraction),
            trials=int(u.report_trials), num_hypotheses=int(u.num_hypotheses),
            threshold_px=float(u.threshold_px), seed=int(config.seed),
        )  # fmt: skip
    opts = {
        "views": f"{mvset.num_real_views} real + {v - mvset.num_real_views} virtual",
        "pairs": len(mv.view_pairs(v)),
        "instants": m,
        "extrinsics": mcfg.extrinsics,
        "lambda": float(config.stages.train.transform_weight),
        "pretrain": bool(config.stages.pretrain.enabled),
        "width": int(config.model.width),
        "batch_instants": bs,
        "detection_noise": noise_options(config) or "off (GT 2D)",
        "confidence_weighting": bool(config.stages.train.confidence_weighting),
    }
    header = common.ResultsHeader(
        experiment=f"Li et al. AAAI 2020 (experiments.li, preset {config.preset})",
        dataset=f"{train_ds.name}: 2D of synchronised views + cameras only (no 3D labels)",
        source_2d=f"{train_ds.name} 2D ({train_ds.normalization}); virtual views: projections",
        protocol="lifting branch only, single view; P1 MPJPE, P2 P-MPJPE (mm, root-relative)",
        options=opts,
        checkpoint=checkpoint,
        model_selection="last checkpoint of each stage (no selection on the test split)",
        notes=list(config.notes),
    )
    figures: list[str] = []
    if config.eval.figures:
        from jpose import viz

        figs: dict[str, Any] = {"training_curves": lambda: common.training_curves_figure(wd)}
        for split, e in evaluations.items():
            figs[f"poses_3d_{split}"] = functools.partial(
                viz.figure_poses_3d, e["predictions"][:4],
                datasets[split].pose3d_root_relative[:4], errors_mm=e["errors_mm"]["mpjpe"][:4],
                title=f"{split}: lifting branch",
            )  # fmt: skip
        figures = common.write_figures(wd, figs)
    extra = {
        "stages": results_stages,
        "timings_s": {"data_prep": prep_s, "total": time.perf_counter() - t_start},
        "figures": figures,
    }
    common.write_results(wd, header=header, evaluations=evaluations, extra_tables=tables,
                         extra=extra)  # fmt: skip
    summary = {
        s: {mm: e["metrics"][mm]["action_wise"] for mm in ("mpjpe", "p_mpjpe")}
        for s, e in evaluations.items()
    }
    LOGGER.info("results: %s", summary)
    return {"evaluations": evaluations, "tables": tables, **extra}


if __name__ == "__main__":
    common.cli(run, default_config=common.config_path("li"))
