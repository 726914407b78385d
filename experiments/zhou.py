"""Zhou et al. (ICCV 2017): mixed 2D / 3D supervision with the geometric (bone-ratio) loss,
keypoint-lifting form.

``python -m experiments.zhou --workdir=DIR [--config=experiments/configs/zhou.py:PRESET]``

Paper mapping (:mod:`jpose.models.depth`, ``jpose.losses.zhou_*``): the depth module lifts the
given 2D (the paper's stage 1, the 2D heatmap network, does not exist in this form); stage 2
trains it by depth regression (eq. 2) on 2D-3D samples, stage 3 adds the bone-length-ratio loss
(eq. 3) on 2D-only samples; ``method.ablation`` selects sec. 4.1.3's ablations
(:func:`jpose.losses.zhou_loss_weights`, the loss terms :func:`jpose.models.depth.
depth_loss_terms`). Every ablation draws the same 2D-3D batches; the 2D-only half runs in its own
forward pass, so ``3d+2d`` equals ``3d`` and ``3d+2d+geo`` isolates the geometric loss.

Evaluation: MPJPE (Zhou's metric), P-MPJPE, N-MPJPE of the output rescaled to the training average
sum of bone lengths (sec. 4.1.2), standard P1 / P2 by perspective back-projection with the
ground-truth camera (``<split> (perspective)``), and Table 4's left/right bone-length symmetry on
the 3D splits and held-out 2D-only people. ``run`` writes ``model.json``; :func:`load_predictor`
restores the depth network.
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
from experiments.configs.zhou import ABLATIONS
from experiments.lifting import eval_datasets, lifter_figures
from jpose import evaluation as jeval
from jpose import inference, kinematics, losses, models, skeleton
from jpose import metrics as jm
from jpose.evaluation import jit_predict
from jpose.inference import pipelines
from jpose.models import depth as dm
from jpose.models.depth import predict_depth, rescaled_pose
from jpose.training import (
    Phase,
    PhaseContext,
    clipped,
    create_player,
    create_train_state,
)
from jpose.training import stages as harness
from jpose.training.state import TrainState

__all__ = [
    "ABLATIONS",
    "LAYOUT",
    "make_phase",
    "build_model",
    "load_predictor",
    "run",
]

LAYOUT = skeleton.H36M17
STAGES = ("stage2", "stage3")


def _ablation(ablation: str) -> tuple[bool, bool]:
    if ablation not in ABLATIONS:
        raise ValueError(f"unknown Zhou ablation {ablation!r}; expected one of {ABLATIONS}")
    return "2d" in ablation, "geo" in ablation


def build_model(config: ml_collections.ConfigDict) -> models.Model:
    """The depth module ``u [B, J, 2] -> [B, J, 1]`` of ``config.model`` (no parameters)."""
    return pipelines.build_network(depth_spec(config))


def depth_spec(config: ml_collections.ConfigDict) -> dict[str, Any]:
    """:func:`build_model`'s network as a :func:`jpose.inference.pipelines.network_spec` (work
    directories written before ``model.dtype`` existed computed in float32)."""
    mc = config.model
    return pipelines.network_spec(
        "martinez_lifter", LAYOUT.num_joints, out_channels=1, width=int(mc.width),
        num_blocks=int(mc.num_blocks), dropout=float(mc.dropout),
        dtype=str(mc.get("dtype") or "float32"),
    )  # fmt: skip


def pipeline(config: ml_collections.ConfigDict, info: Mapping[str, Any]) -> dict[str, Any]:
    """The ``model.json["pipeline"]`` entry (:mod:`jpose.inference.pipelines`): restored by jpose
    alone exactly as :func:`load_predictor` restores it."""
    return pipelines.pipeline_spec(
        "depth", networks={"depth": depth_spec(config)}, stages=STAGES,
        options={"avg_sum_length": float(info["avg_sum_length"])},
        predictor={"experiment": "zhou", "layout": LAYOUT.name,
                   "normalization": str(info["normalization"]),
                   "description": _description(config, float(info["avg_sum_length"]))},
    )  # fmt: skip


def _description(config: ml_collections.ConfigDict, avg: float) -> str:
    return (f"Zhou et al. (ICCV 2017) depth network, ablation {config.method.ablation}; 3D "
            f"rescaled to the training average sum of bone lengths ({avg:.3f} m)")  # fmt: skip


def load_predictor(
    config: Mapping[str, Any], workdir: str | os.PathLike[str], *, step: int | None = None
) -> inference.Predictor:
    """The trained depth network of a Zhou work directory (:func:`pipeline`), as ``run``
    evaluates it.

    ``predict(pose2d_norm, confidence)["pose3d"]`` is the 3D of the ``<split>`` rows of
    ``results.json`` (:func:`jpose.models.depth.rescaled_pose`): the input 2D with the predicted
    depth, rescaled so that its sum of bone lengths is the training skeletons' average
    (``model.json`` ``avg_sum_length``), pelvis at the origin, metres. The scale is that prior,
    not an estimate of the person's size. The ``<split> (perspective)`` rows back-project with
    the ground-truth intrinsics and pelvis depth, which a predictor does not have; they are not
    reproduced. The network is restored from the last trained stage (``stage3``, else
    ``stage2``).
    """
    info = dict(inference.read_model_info(workdir))
    if info.get("avg_sum_length") is None:  # runs older than model.json: from the training data
        data = ml_collections.ConfigDict(config).data
        train = common.load_datasets(data)["train_3d"]
        info["avg_sum_length"] = dm.average_sum_bone_length(train.pose3d_cam, layout=LAYOUT)
    return common.declared_predictor(pipeline, config, workdir, info=info, step=step)


def make_phase(
    weights: Mapping[str, float],
    *,
    use_2d: bool,
    canonical_lengths: np.ndarray,
    scale_px: float,
    threshold: float,
) -> Phase:
    """The depth module's phase, ``loss = sum_k weights[k] * term_k``; every term is logged.

    The 2D-3D samples (``batch["d3"]``) run first, in their own forward pass, so their
    prediction, dropout key and batch-norm running averages are those of the ``3d`` ablation;
    the 2D-only samples (``batch["w2d"]``, ``use_2d`` only) run in a second pass whose
    running-average update is discarded (Zhou et al. sec. 4.1.3 ablations made comparable: see
    the module docstring)."""
    canon = jnp.asarray(canonical_lengths, jnp.float32)

    def loss_fn(ctx: PhaseContext, batch: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
        b3 = batch["d3"]
        b2 = batch.get("w2d") if use_2d else None
        depth_3d, _ = predict_depth(lambda u: ctx.apply("depth", u), b3["x"], b3["c"])
        depth_2d = None
        if b2 is not None:
            depth_2d, _ = predict_depth(
                lambda u: ctx.apply("depth", u, update_stats=False), b2["x"], b2["c"]
            )
        terms = dm.depth_loss_terms(
            depth_3d, b3, depth_2d, b2,
            canonical_lengths=canon, scale_px=scale_px, threshold=threshold, layout=LAYOUT,
        )  # fmt: skip
        loss = sum(weights[k] * terms[k] for k in ("reg", "geo_2d", "geo_3d"))
        return loss, terms

    return Phase("depth", ("depth",), loss_fn)


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Train (or resume) stages 2 and 3 of one ablation, evaluate, report.

    Args:
      config: from ``experiments/configs/zhou.py``.
      workdir: output directory (checkpoints under ``checkpoints/stage2`` and ``stage3``).

    Returns:
      The results record (``evaluations`` without predictions, ``symmetry``, ``timings``).
    """
    t_start = time.perf_counter()
    wd = common.setup_workdir(workdir, config)
    m = config.method
    use_2d, _ = _ablation(str(m.ablation))
    # one aspect-preserving 2D frame for every split (the bone-ratio loss needs undistorted limbs)
    datasets = dm.aspect_preserving_2d(common.load_datasets(config.data))
    tc = config.train
    val_fraction = float(tc.val_fraction)
    if val_fraction > 0:  # held out of the training split; the test split is never used
        datasets["train_3d"], val = common.holdout_split(
            datasets["train_3d"], val_fraction, seed=int(config.seed) + 7
        )
    train = datasets["train_3d"]
    if use_2d and "train_2d" not in datasets:
        raise ValueError(
            f"ablation {m.ablation!r} needs a 2D-only split; data preset "
            f"{config.data.preset!r} has none (use synthetic or cmu+coco)"
        )
    thr = float(m.visibility_threshold)
    canonical = np.asarray(kinematics.bone_lengths(train.pose3d_cam, layout=LAYOUT)).mean(0)
    avg_sum_length = dm.average_sum_bone_length(train.pose3d_cam, layout=LAYOUT)
    info = {"layout": LAYOUT.name, "normalization": train.normalization,
            "avg_sum_length": avg_sum_length, "canonical_bone_lengths": canonical}  # fmt: skip
    common.write_model_info(wd, experiment="zhou", pipeline=pipeline(config, info), **info)
    heldout_2d = None
    if "train_2d" in datasets and "val_2d" not in datasets:  # symmetry needs unseen 2D people
        datasets["train_2d"], heldout_2d = common.holdout_split(
            datasets["train_2d"], float(config.eval.heldout_2d_fraction),
            seed=int(config.seed) + 11,
        )  # fmt: skip
    host = {"d3": dm.depth_batch_arrays(train, with_depth=True, threshold=thr)}
    if use_2d:  # "w2d" sorts after "d3": the sampler's 3D stream is that of the 3d ablations
        host["w2d"] = dm.depth_batch_arrays(datasets["train_2d"], with_depth=False, threshold=thr)
    bs = int(tc.batch_size)
    sizes = {k: len(v["x"]) for k, v in host.items()}
    # every ablation: the same bs // 2 2D-3D samples per step (+ the 2D-only half for 3d+2d*)
    batch_sizes = {"d3": bs // 2, "w2d": bs - bs // 2} if use_2d else {"d3": bs // 2}
    steps_per_epoch = max(1, sizes["d3"] // batch_sizes["d3"])
    options = common.train_options(tc)
    model = build_model(config)
    key = jax.random.key(int(config.seed))
    k_init, k_train = jax.random.split(key)
    example = jnp.zeros((2, LAYOUT.num_joints, 2), jnp.float32)
    validate, select = None, str(tc.select)
    if val_fraction > 0:
        validate = jeval.make_validator(
            lambda v, x, c: rescaled_pose(lambda u: model.apply(v, u, train=False)[0], x, c,
                                          avg_sum_length=avg_sum_length),
            val, variables=lambda s: s["depth"].variables(),
            batch_size=int(config.eval.batch_size),
        )  # fmt: skip
    weights, declared = {}, []
    for stage_id in (2, 3):
        name, sc = f"stage{stage_id}", config.stages[f"stage{stage_id}"]
        weights[name] = losses.zhou_loss_weights(str(m.ablation), stage=stage_id,
                                                 lambda_reg=float(m.lambda_reg),
                                                 lambda_geo=float(m.lambda_geo))  # fmt: skip
        phase = make_phase(weights[name], use_2d=use_2d, canonical_lengths=canonical,
                           scale_px=float(m.scale_px), threshold=thr)  # fmt: skip
        tx = clipped(optax.adam(float(sc.lr), eps=float(tc.adam_eps)), tc.clip_norm)

        def init(done: Mapping[str, TrainState], tx: Any = tx) -> TrainState:
            player = create_player(model, tx, k_init, example)
            if done:  # stage 3 starts from stage 2's network, fresh optimiser
                prev = done["stage2"]["depth"]
                player = player.with_variables(prev.params, prev.batch_stats)
            return create_train_state({"depth": player})

        declared.append(harness.Stage(
            name, phases=[phase], batch_sizes=batch_sizes, init=init,
            num_steps=common.stage_num_steps(sc, steps_per_epoch=steps_per_epoch,
                                             steps_per_block=options.steps_per_block),
            key=jax.random.fold_in(k_train, stage_id), samples_per_step=bs,
            checkpoint_every=int(sc.checkpoint_every) or None, evaluate=validate,
            eval_every=int(tc.eval_every) or None, best_metric="mpjpe_mm", select=select,
        ))  # fmt: skip
    trained = harness.run_stages(declared, host, workdir=wd, options=options)
    stages = {n: (r, weights[n]) for n, r in trained.stages.items()}
    state: TrainState = trained.state

    # ---- evaluation -----------------------------------------------------------------------
    player = state["depth"]

    rescaled = functools.partial(rescaled_pose, avg_sum_length=avg_sum_length)
    predict_rescaled = jit_predict(player, rescaled)
    predict_perspective = jit_predict(player, dm.perspective_pose)
    bs_eval, action_key = int(config.eval.batch_size), config.eval.action_key
    evaluations, symmetry = {}, {}
    for split, ds in eval_datasets(datasets, config).items():
        ev = jeval.evaluate_3d(predict_rescaled, ds, batch_size=bs_eval, action_key=action_key,
                                keep_predictions=True)  # fmt: skip
        evaluations[split] = ev
        if ds.focal_px is not None:
            evaluations[f"{split} (perspective)"] = jeval.evaluate_3d(
                predict_perspective, ds, batch_size=bs_eval, action_key=action_key,
                pose2d_norm=dm.perspective_inputs(ds),
            )  # fmt: skip
        symmetry[f"{split}: prediction (mm)"] = jm.symmetry_table(ev["predictions"], scale=1000.0)
        symmetry[f"{split}: ground truth (mm)"] = jm.symmetry_table(
            ds.pose3d_root_relative, scale=1000.0
        )
    held = {"val_2d": datasets.get("val_2d"), "heldout_2d": heldout_2d}
    name_2d = next((k for k, v in held.items() if v is not None), None)
    symmetry_2d = None
    if name_2d is not None:
        ds2 = common.subset(held[name_2d], int(config.eval.max_2d_examples), seed=1)
        pred2 = jeval.batched_apply(jit_predict(player, dm.normalized_pose), ds2.pose2d_norm,
                                     ds2.confidence, batch_size=bs_eval)  # fmt: skip
        symmetry_2d = jm.symmetry_table(pred2)
        symmetry[f"{name_2d}: held-out 2D-only people, prediction (units of s)"] = symmetry_2d

    stage_info = {
        k: {"num_steps": r.num_steps, "trained_steps": r.trained_steps, "wall_s": r.wall_s,
            "resumed_from": r.resumed_from, "samples_per_s": r.samples_per_s, "weights": w}
        for k, (r, w) in stages.items()
    }  # fmt: skip
    timings = {
        "train_wall_s": sum(r.wall_s for r, _ in stages.values()),
        "total_wall_s": time.perf_counter() - t_start,
        "stages": stage_info,
    }
    if select == "best":
        selection = (f"best validation MPJPE of each stage ({len(val)} examples held out of the "
                     "training split; the test split is never used for selection)")  # fmt: skip
    else:
        selection = "final checkpoint of stage 3 (no model selection)"
        if val_fraction > 0:
            selection += f"; validation curves on {len(val)} held-out training examples"
    header = common.ResultsHeader(
        experiment=f"zhou (Zhou et al. ICCV 2017, keypoint form), ablation {m.ablation}",
        dataset=(
            f"{config.data.preset}: {train.name} ({len(train)} 2D-3D)"
            + (f" + {datasets['train_2d'].name} ({sizes['w2d']} 2D-only)" if use_2d else "")
        ),
        source_2d=f"dataset 2D ({train.normalization} normalisation)",
        protocol=(
            "<split>: output rescaled to the training average sum of bone lengths "
            f"({avg_sum_length:.3f} m; Zhou sec. 4.1.2) -> MPJPE (Zhou's metric), P-MPJPE, "
            "N-MPJPE; <split> (perspective): back-projection with GT intrinsics and pelvis "
            "depth -> standard P1 / P2; root-relative, mm; Table 4 symmetry in mm (3D) and "
            "units of the 2D scale s (2D-only)"
        ),
        options={
            "ablation": m.ablation,
            "lambda_reg": float(m.lambda_reg),
            "lambda_geo": float(m.lambda_geo),
            "width": int(config.model.width),
            "batch_size": bs,
            "stage_weights": {k: w for k, (_, w) in stages.items()},
        },
        checkpoint={k: r.selected_step or r.num_steps for k, (r, _) in stages.items()},
        model_selection=selection,
        notes=(
            f"training wall time (this invocation) {timings['train_wall_s']:.1f} s",
            "stage 1 of the paper (2D heatmap network) does not exist in the keypoint form",
            "keypoint form: the 2D input is given, so 2D-only data can act only through the "
            "geometric loss; it cannot show the paper's 3D+2D/wo geo gain (2D data training the "
            "shared 2D network). All ablations draw the same 2D-3D batches (batch_size // 2 per "
            "step) and inference batch statistics; the 2D-only half runs in its own forward "
            "pass, so 3d+2d equals 3d (control) and 3d+2d+geo vs 3d+2d isolates the geometric "
            "loss, whose effect on 2D-only people is the held-out 2D symmetry row "
            "(left/right bone-length difference in units of the 2D scale s; lower = more "
            "symmetric)",
        ),
    )
    figures = []
    if config.eval.figures:
        figures = lifter_figures(wd, {k: v for k, v in evaluations.items() if "predictions" in v},
                                 datasets, title=f"zhou {m.ablation}")  # fmt: skip
    common.write_results(
        wd, header=header, evaluations=evaluations,
        extra_tables={"Left/right bone-length difference (Zhou et al. Table 4)": symmetry},
        extra={"timings": timings, "figures": figures, "symmetry": symmetry,
               "symmetry_heldout_2d": symmetry_2d},
    )  # fmt: skip
    return {
        "evaluations": common.evaluation_record(evaluations),
        "symmetry": symmetry,
        "symmetry_heldout_2d": symmetry_2d,
        "timings": timings,
        "figures": figures,
        "stages": {k: r for k, (r, _) in stages.items()},
    }


if __name__ == "__main__":
    common.cli(run, default_config=common.config_path("zhou"))
