"""Zhou et al. (ICCV 2017), keypoint-lifting form: 2D / 3D supervision with the geometric loss.

``python -m experiments.zhou --workdir=DIR [--config=experiments/configs/zhou.py:PRESET]``

Paper mapping (:mod:`jpose.models.depth`, ``jpose.losses.zhou_*``): the depth module lifts the
given 2D (the paper's stage 1, the 2D heatmap network, does not exist in this form); stage 2
trains it by depth regression (eq. 2) on 2D-3D samples, stage 3 adds the bone-length-ratio loss
(eq. 3); ``method.ablation`` selects sec. 4.1.3's ablations (:func:`jpose.losses.
zhou_loss_weights`). Every ablation draws the same 2D-3D batches; the 2D-only half runs in its
own forward pass, so ``3d+2d`` equals ``3d`` and ``3d+2d+geo`` isolates the geometric loss.
Evaluation: MPJPE, P-MPJPE, N-MPJPE of the output rescaled to the training average sum of bone
lengths (sec. 4.1.2), P1 / P2 by back-projection with the ground-truth camera (``<split>
(perspective)``), Table 4's left/right bone-length symmetry."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from experiments import common
from experiments.configs.zhou import ABLATIONS
from jpose import evaluation as jeval
from jpose import inference, kinematics, losses, models, skeleton
from jpose import metrics as jm
from jpose.evaluation import jit_predict
from jpose.inference import pipelines
from jpose.models import depth as dm
from jpose.models.depth import predict_depth, rescaled_pose
from jpose.training import Phase, PhaseContext, clipped, create_player, create_train_state
from jpose.training import stages as harness
from jpose.training.state import TrainState

__all__ = ["ABLATIONS", "LAYOUT", "make_phase", "build_model", "load_predictor", "run"]

LAYOUT = skeleton.H36M17
STAGES = ("stage2", "stage3")


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
    """The ``model.json["pipeline"]`` entry (:mod:`jpose.inference.pipelines`)."""
    avg = float(info["avg_sum_length"])
    # the input scale's threshold the run trained with (runs before it was recorded: 0.5)
    threshold = float(info.get("visibility_threshold", 0.5))
    description = (
        f"Zhou et al. (ICCV 2017) depth network, ablation {config.method.ablation}; 3D rescaled "
        f"to the training average sum of bone lengths ({avg:.3f} m)"
    )
    return pipelines.pipeline_spec(
        "depth", networks={"depth": depth_spec(config)}, stages=STAGES,
        options={"avg_sum_length": avg, "visibility_threshold": threshold},
        predictor={"experiment": "zhou", "layout": LAYOUT.name, "description": description,
                   "normalization": str(info["normalization"])},
    )  # fmt: skip


def load_predictor(
    config: Mapping[str, Any], workdir: str | os.PathLike[str], *, step: int | None = None
) -> inference.Predictor:
    """The trained depth network (last trained stage) of a Zhou work directory (:func:`pipeline`):
    ``predict(pose2d_norm, confidence)["pose3d"]`` is the 3D of the ``<split>`` rows of
    ``results.json`` (:func:`jpose.models.depth.rescaled_pose`: metres, pelvis at the origin,
    scaled to the training average sum of bone lengths, a prior and not the person's size; the
    ``(perspective)`` rows need the ground-truth camera, which a predictor does not have)."""
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
    """The depth module's phase, ``loss = sum_k weights[k] * term_k`` (every term logged). The
    2D-3D samples (``batch["d3"]``) run first, in their own forward pass, so their prediction,
    dropout key and batch-norm running averages are those of the ``3d`` ablation; the 2D-only
    samples (``batch["w2d"]``, ``use_2d`` only) run in a second pass whose running-average update
    is discarded (sec. 4.1.3's ablations made comparable)."""
    canon = jnp.asarray(canonical_lengths, jnp.float32)

    def loss_fn(ctx: PhaseContext, batch: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
        b3 = batch["d3"]
        b2 = batch.get("w2d") if use_2d else None
        apply_3d = functools.partial(ctx.apply, "depth")
        depth_3d, _ = predict_depth(apply_3d, b3["x"], b3["c"], threshold=threshold)
        depth_2d = None
        if b2 is not None:
            apply_2d = functools.partial(ctx.apply, "depth", update_stats=False)
            depth_2d, _ = predict_depth(apply_2d, b2["x"], b2["c"], threshold=threshold)
        terms = dm.depth_loss_terms(
            depth_3d, b3, depth_2d, b2,
            canonical_lengths=canon, scale_px=scale_px, threshold=threshold, layout=LAYOUT,
        )  # fmt: skip
        loss = sum(weights[k] * terms[k] for k in ("reg", "geo_2d", "geo_3d"))
        return loss, terms

    return Phase("depth", ("depth",), loss_fn)


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Train (or resume) stages 2 and 3 of one ablation (config: ``experiments/configs/zhou.py``;
    checkpoints ``checkpoints/stage2|3``), evaluate, report; returns the results record."""
    m, tc = config.method, config.train
    lambdas = {"lambda_reg": float(m.lambda_reg), "lambda_geo": float(m.lambda_geo)}
    weights = {  # an unknown ablation fails here, before anything is written
        f"stage{s}": losses.zhou_loss_weights(str(m.ablation), stage=s, **lambdas) for s in (2, 3)
    }
    use_2d = "2d" in str(m.ablation)
    # one aspect-preserving 2D frame for every split (the bone-ratio loss needs undistorted limbs)
    t_start, wd, datasets, val = common.start(config, workdir, prepare=dm.aspect_preserving_2d)
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
            "avg_sum_length": avg_sum_length, "canonical_bone_lengths": canonical,
            "visibility_threshold": thr}  # fmt: skip
    common.write_model_info(wd, experiment="zhou", pipeline=pipeline(config, info), **info)
    heldout_2d = None
    if "train_2d" in datasets and "val_2d" not in datasets:  # symmetry needs unseen 2D people
        datasets["train_2d"], heldout_2d = common.holdout_split(
            datasets["train_2d"], float(config.eval.heldout_2d_fraction), seed=int(config.seed) + 11
        )
    host = {"d3": dm.depth_batch_arrays(train, with_depth=True, threshold=thr)}
    if use_2d:  # "w2d" sorts after "d3": the sampler's 3D stream is that of the 3d ablations
        host["w2d"] = dm.depth_batch_arrays(datasets["train_2d"], with_depth=False, threshold=thr)
    bs = int(tc.batch_size)
    # every ablation: the same bs // 2 2D-3D samples per step (+ the 2D-only half for 3d+2d*)
    batch_sizes = {"d3": bs // 2, "w2d": bs - bs // 2} if use_2d else {"d3": bs // 2}
    steps_per_epoch = max(1, len(host["d3"]["x"]) // batch_sizes["d3"])
    options = common.train_options(tc)
    model = build_model(config)
    k_init, k_train = jax.random.split(jax.random.key(int(config.seed)))
    example = jnp.zeros((2, LAYOUT.num_joints, 2), jnp.float32)
    rescaled = functools.partial(rescaled_pose, avg_sum_length=avg_sum_length, threshold=thr)
    validation, selection = common.validation(
        val, config, model, rescaled, player="depth", best="best validation MPJPE of each stage",
        final="final checkpoint of stage 3",
    )  # fmt: skip
    declared = []
    for stage_id in (2, 3):
        name, sc = f"stage{stage_id}", config.stages[f"stage{stage_id}"]
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
            checkpoint_every=int(sc.checkpoint_every) or None, **validation,
        ))  # fmt: skip
    trained = harness.run_stages(declared, host, workdir=wd, options=options)

    # ---- evaluation -----------------------------------------------------------------------
    player = trained.state["depth"]
    predict_rescaled = jit_predict(player, rescaled)
    predict_perspective = jit_predict(player, functools.partial(dm.perspective_pose, threshold=thr))
    evaluations, symmetry, bs_eval = {}, {}, int(config.eval.batch_size)
    for split, ds in common.eval_datasets(datasets, config).items():
        ev = evaluations[split] = common.evaluate(predict_rescaled, ds, config)
        if ds.focal_px is not None:
            evaluations[f"{split} (perspective)"] = common.evaluate(
                predict_perspective, ds, config, keep_predictions=False,
                pose2d_norm=dm.perspective_inputs(ds),
            )  # fmt: skip
        symmetry[f"{split}: prediction (mm)"] = jm.symmetry_table(ev["predictions"], scale=1000.0)
        symmetry[f"{split}: ground truth (mm)"] = jm.symmetry_table(
            ds.pose3d_root_relative, scale=1000.0
        )
    # unseen 2D-only people: the data's val_2d split, else the part held out of train_2d
    name_2d = "val_2d" if "val_2d" in datasets else "heldout_2d"
    held_2d, symmetry_2d = datasets.get("val_2d", heldout_2d), None
    if held_2d is not None:
        ds2 = common.subset(held_2d, int(config.eval.max_2d_examples), seed=1)
        predict_2d = jit_predict(player, functools.partial(dm.normalized_pose, threshold=thr))
        pred2 = jeval.batched_apply(predict_2d, ds2.pose2d_norm, ds2.confidence, batch_size=bs_eval)
        symmetry_2d = jm.symmetry_table(pred2)
        symmetry[f"{name_2d}: held-out 2D-only people, prediction (units of s)"] = symmetry_2d

    dataset = f"{config.data.preset}: {train.name} ({len(train)} 2D-3D)"
    if use_2d:
        dataset += f" + {datasets['train_2d'].name} ({len(host['w2d']['x'])} 2D-only)"
    header = dict(
        experiment=f"zhou (Zhou et al. ICCV 2017, keypoint form), ablation {m.ablation}",
        dataset=dataset,
        protocol=(
            "<split>: output rescaled to the training average sum of bone lengths "
            f"({avg_sum_length:.3f} m; Zhou sec. 4.1.2) -> MPJPE (Zhou's metric), P-MPJPE, "
            "N-MPJPE; <split> (perspective): back-projection with GT intrinsics and pelvis "
            "depth -> standard P1 / P2; root-relative, mm; Table 4 symmetry in mm (3D) and "
            "units of the 2D scale s (2D-only)"
        ),
        options={**common.fields(config, "method.ablation", "method.lambda_reg",
                                  "method.lambda_geo", "model.width", "train.batch_size"),
                 "stage_weights": {k: weights[k] for k in trained.stages}},
        model_selection=selection,
    )  # fmt: skip
    return common.finish(
        wd, config, trained, t_start, header=header, evaluations=evaluations, datasets=datasets,
        title=f"zhou {m.ablation}", stage_info={k: {"weights": w} for k, w in weights.items()},
        notes=(
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
        extra_tables={"Left/right bone-length difference (Zhou et al. Table 4)": symmetry},
        symmetry=symmetry, symmetry_heldout_2d=symmetry_2d,
    )  # fmt: skip


if __name__ == "__main__":
    common.cli(run, default_config=common.config_path("zhou"))
