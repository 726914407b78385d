"""WSP (Qiu et al., "Weakly-supervised pre-training for 3D human pose estimation via perspective
knowledge") on keypoints.

    python -m experiments.wsp --workdir=/tmp/wsp [--config=experiments/configs/wsp.py:<preset>]

Stage ``pretrain``: the pairwise model of :mod:`jpose.models.relative_depth` on the pairs of
``config.rd``, eq. 9 over eq. 6's N < J joints. Stages ``finetune_<pct>pct_<init>``
(:func:`finetune_stages`): a Martinez lifter on ``[x, y, confidence]`` with eq. 12's L1, from the
encoder trunk (``pretrained``) or ``random``. Evaluation: RD protocols 1 / 2 (Tables 2-3) beside
input-only baselines; MPJPE / P-MPJPE of every lifter. :func:`load_predictor` serves one lifter.
CameraPose's auxiliary loss on predicted depths (``loss.lambda_rd``) is
:func:`jpose.losses.wsp_relative_depth_aux_loss`.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Mapping
from typing import Any

import jax
import ml_collections
import numpy as np
import optax

from experiments import common
from jpose import evaluation as jeval
from jpose import inference, skeleton
from jpose.data import relative_depth as rdd
from jpose.inference import pipelines
from jpose.models import relative_depth as mrd
from jpose.training import Phase, PhaseContext, clipped, create_player, create_train_state
from jpose.training import stages as harness

__all__ = ["run", "finetune_stages", "default_variant", "load_predictor"]


def _finetune_loss(ctx: Any, batch: Any, *, dataset: str) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Eq. 12 of the lifter on the 2D-3D pairs of ``batch[dataset]``."""
    b = batch[dataset]
    pred = ctx.apply("lifter", mrd.person_input(b["pose2d_norm"], b["confidence"]))
    return mrd.coordinate_objective(pred, b["pose3d_cam"])


def _tag(frac: float) -> str:
    return f"{int(round(100 * frac)):03d}pct"


def _stage_name(frac: float, init: str) -> str:
    return f"finetune_{_tag(frac)}_{init}"


def finetune_stages(config: ml_collections.ConfigDict, num_train: int) -> dict[str, dict[str, Any]]:
    """``{finetune_<pct>pct_<init> (checkpoint directory): {"fraction", "init", "num_examples",
    "evaluation" (results.json key)}}`` of the stages ``run`` fine-tunes, in order; the subset of
    the ``num_train`` examples has all for a fraction >= 1, else at least one batch."""
    fc, out = config.stages.finetune, {}
    for frac in map(float, fc.fractions):
        n = min(num_train, max(int(fc.batch_size), int(round(frac * num_train))))
        for init in map(str, fc.inits):
            if init not in ("pretrained", "random"):
                raise ValueError(f"stages.finetune.inits: expected pretrained|random, got {init!r}")
            out[_stage_name(frac, init)] = {
                "fraction": frac, "init": init, "num_examples": n,
                "evaluation": f"{_tag(frac)} ({n} examples), {init}",
            }  # fmt: skip
    return out


def default_variant(config: ml_collections.ConfigDict) -> str:
    """The fine-tuning stage :func:`load_predictor` serves by default: the ``pretrained``
    initialisation (else the first of ``stages.finetune.inits``) at the largest label fraction."""
    fc = config.stages.finetune
    init = "pretrained" if "pretrained" in tuple(fc.inits) else str(fc.inits[0])
    return _stage_name(max(map(float, fc.fractions)), init)


def _lifter_spec(config: ml_collections.ConfigDict) -> dict[str, Any]:
    """The fine-tuned Martinez lifter (``[x, y, confidence]`` inputs) of ``config.model``."""
    trunk = common.fields(config, "model.width", "model.num_blocks", "model.dropout")
    return pipelines.network_spec("martinez_lifter", 17, in_channels=3, **trunk)


def pipeline(config: ml_collections.ConfigDict, info: Mapping[str, Any]) -> dict[str, Any]:
    """The ``model.json["pipeline"]`` entry (:mod:`jpose.inference.pipelines`): the served
    fine-tuned lifter (``info["default_variant"]``), as :func:`load_predictor` restores it."""
    variant = str(info["default_variant"])
    stage = info["finetune"][variant]
    description = (
        f"WSP (Qiu et al.) keypoint lifter fine-tuned on {100 * stage['fraction']:g}% of the 3D "
        f"labels from a {stage['init']} initialisation ({variant})"
    )
    return pipelines.pipeline_spec(
        "lifter",
        networks={"lifter": _lifter_spec(config)},
        stages=(["pretrain"] if stage["init"] == "pretrained" else []) + [variant],
        options={"input": "pose_confidence", "serve_stage": variant},
        predictor={"experiment": "wsp", "description": description,
                   "layout": skeleton.H36M17.name, "normalization": str(info["normalization"])},
    )  # fmt: skip


def load_predictor(
    config: Mapping[str, Any],
    workdir: str | os.PathLike[str],
    *,
    step: int | None = None,
    variant: str | None = None,
) -> inference.Predictor:
    """The fine-tuned lifter ``variant`` (a stage name such as ``finetune_100pct_random``; default
    ``model.json["default_variant"]``) of a WSP work directory: ``predict(pose2d_norm,
    confidence)["pose3d"]``, root-relative metres, is what ``run`` evaluates as
    ``model.json["finetune"][variant]["evaluation"]``. An unknown ``variant`` is a ValueError."""
    info = dict(inference.read_model_info(workdir))
    variant = variant or str(info["default_variant"])
    if variant not in info["finetune"]:
        raise ValueError(f"unknown WSP fine-tuning variant {variant!r}; expected one of "
                         f"{sorted(info['finetune'])}")  # fmt: skip
    info["default_variant"] = variant  # the served stage of pipeline()
    return common.declared_predictor(pipeline, config, workdir, info=info, step=step)


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Pre-train, evaluate relative depth, fine-tune and report; returns the results record
    (``python -m experiments.wsp`` with the ``image`` preset: ``common.cli`` runs ``wsp_image``)."""
    t_start, wd, datasets, _ = common.start(config, workdir, holdout=False)
    key = jax.random.key(int(config.seed))
    options = common.train_options(config.train)
    pc, fc, mc, ec = config.stages.pretrain, config.stages.finetune, config.model, config.eval

    # -- data -------------------------------------------------------------------------------------
    rd = rdd.load_pair_splits(seed=int(config.seed), **config.rd.to_dict())
    train_pairs, test_pairs = rd["train"], rd["test"]
    if train_pairs.num_pairs < pc.batch_size:
        raise ValueError(f"{train_pairs.num_pairs} training pairs < batch {pc.batch_size}")
    train_3d, test_3d = datasets["train_3d"], datasets["test"]
    for ds in (train_3d, test_3d):
        size = ds.image_size_px
        if ds.normalization == "vp" and (size is None or np.any(size[:, 0] != size[:, 1])):
            raise ValueError(f"{ds.name}: 'vp' 2D equals the encoder's 'image' 2D only for "
                             "square images; use normalization 'image'")  # fmt: skip
        if ds.normalization not in ("vp", "image"):
            raise ValueError(f"{ds.name}: normalization {ds.normalization!r} is not 'image'")
    finetune_info = finetune_stages(config, len(train_3d))
    info = {"layout": skeleton.H36M17.name, "normalization": train_3d.normalization,
            "finetune": finetune_info, "default_variant": default_variant(config)}  # fmt: skip
    common.write_model_info(wd, experiment="wsp", pipeline=pipeline(config, info), **info)

    # -- stage 1: relative-depth pre-training (eq. 9) ---------------------------------------------
    rd_model = mrd.pairwise_relative_depth(17, **common.fields(
        config, "model.feature_dim", "model.width", "model.num_blocks", "model.dropout",
        "model.head_width", "model.head_layers", "model.symmetric"))  # fmt: skip
    arrays = train_pairs.pair_arrays(protocol=1, orientation_seed=int(config.seed))
    data = {"rd": {k: v for k, v in arrays.items() if k not in ("delta_s", "image_id")}}
    ex, scale = {k: v[:2] for k, v in data["rd"].items()}, np.ones(2, np.float32)
    num_steps = functools.partial(harness.num_stage_steps, epochs=0.0, steps_per_epoch=1,
                                  steps_per_block=options.steps_per_block)  # fmt: skip
    pre_steps, ft_steps = num_steps(steps=int(pc.steps)), num_steps(steps=int(fc.steps))
    clip = float(config.train.clip_norm)  # Adam, cosine decay to 0 over each stage
    pre_tx = clipped(optax.adam(optax.cosine_decay_schedule(float(pc.lr), max(pre_steps, 1))), clip)
    ft_tx = clipped(optax.adam(optax.cosine_decay_schedule(float(fc.lr), max(ft_steps, 1))), clip)

    def rd_loss(ctx: PhaseContext, batch: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
        return mrd.pairwise_objective(  # eq. 9 on the batch's pairs
            functools.partial(ctx.apply, "rd"), batch["rd"], ctx.next_key(),
            num_selected=int(pc.num_selected), ankle_dropout=float(pc.ankle_dropout),
        )  # fmt: skip

    declared = [harness.Stage(
        "pretrain", phases=[Phase("rd", ("rd",), rd_loss)], num_steps=pre_steps,
        batch_sizes={"rd": int(pc.batch_size)}, key=jax.random.fold_in(key, 0),
        init=lambda done: create_train_state({"rd": create_player(
            rd_model, pre_tx, jax.random.fold_in(key, 1000), ex["pose_a"], ex["conf_a"], scale,
            ex["pose_b"], ex["conf_b"], scale)}),
    )]  # fmt: skip

    # -- stages 2..: fine-tuning, one per label fraction and initialisation -----------------------
    lifter = pipelines.build_network(_lifter_spec(config))
    for fi, frac in enumerate(map(float, fc.fractions)):
        n = finetune_info[_stage_name(frac, fc.inits[0])]["num_examples"]
        sub = common.subset(train_3d, n, seed=int(config.seed) + 7 + fi)
        data[f"ft{fi}"] = {k: getattr(sub, k) for k in ("pose2d_norm", "confidence", "pose3d_cam")}
        # shared by the inits: one compiled block per subset
        ft_loss = functools.partial(_finetune_loss, dataset=f"ft{fi}")
        ft_phases = [Phase("lifter", ("lifter",), ft_loss)]

        def init(done: Mapping[str, Any], *, fi: int = fi, how: str) -> Any:
            ft = data[f"ft{fi}"]
            example = mrd.person_input(ft["pose2d_norm"][:2], ft["confidence"][:2])
            player = create_player(lifter, ft_tx, jax.random.fold_in(key, 2000 + fi), example)
            if how == "pretrained":  # the encoder trunk
                rd_variables = done["pretrain"]["rd"].variables()
                v = mrd.init_lifter_from_encoder(player.variables(), rd_variables)
                player = player.with_variables(v["params"], v["batch_stats"])
            return create_train_state({"lifter": player})

        for how in map(str, fc.inits):
            declared.append(harness.Stage(
                _stage_name(frac, how), phases=ft_phases, num_steps=ft_steps,
                batch_sizes={f"ft{fi}": int(fc.batch_size)}, init=functools.partial(init, how=how),
                key=jax.random.fold_in(key, len(declared)),
            ))  # fmt: skip
    trained = harness.run_stages(declared, data, workdir=wd, options=options)

    # -- RD evaluation (protocols 1 and 2) and input-only baselines -------------------------------
    rd_variables = trained.stages["pretrain"].state["rd"].variables()
    predict_rd = mrd.pairwise_predictor(rd_model, rd_variables)
    rd_kw = {"thresholds": tuple(float(t) for t in ec.thresholds),
             "orientation_seed": int(ec.orientation_seed)}  # fmt: skip
    evaluate_rd = functools.partial(
        mrd.evaluate_relative_depth, predict_rd, test_pairs, batch_size=int(ec.batch_size), **rd_kw
    )
    rd_eval = {f"protocol {p}": evaluate_rd(protocol=p) for p in (1, 2)}
    baselines = mrd.input_rule_baselines(test_pairs, **rd_kw)

    # -- fine-tuned lifters on the test split -----------------------------------------------------
    # one compilation for every fine-tuned lifter (load_predictor: the same, root-relative)
    lifter_predict = jax.jit(
        lambda v, x, c: lifter.apply(v, mrd.person_input(x, c), train=False)[0]
    )
    evaluations, ft_rows = {}, {}
    for name, st in finetune_info.items():
        variables = trained.stages[name].state["lifter"].variables()
        evaluations[st["evaluation"]] = ev = jeval.evaluate_3d(
            functools.partial(lifter_predict, variables), test_3d, batch_size=int(ec.batch_size)
        )
        row = ft_rows.setdefault(f"{100 * st['fraction']:g}% 3D labels ({st['num_examples']})", {})
        for metric in ("mpjpe", "p_mpjpe"):
            row[f"{metric} {st['init']}"] = ev["metrics"][metric]["frame_wise"]

    # -- reports ----------------------------------------------------------------------------------
    header = common.ResultsHeader(
        experiment="WSP (Qiu et al.) on keypoints: experiments.wsp",
        dataset=f"RD pre-training: {train_pairs.name} ({train_pairs.num_pairs} pairs); RD test: "
        f"{test_pairs.name} ({test_pairs.num_pairs} pairs, disjoint images); 3D fine-tuning: "
        f"{train_3d.name} (fractions {tuple(fc.fractions)}), test {test_3d.name}",
        source_2d="ground-truth 2D annotations (keypoint inputs, no image pathway)",
        protocol="RD protocol 1 (ΔS <= t) and 2 (ankles removed from the input), per joint "
        "labelled in both persons, threshold 0.5, percent; 3D: MPJPE / P-MPJPE (mm) on "
        "root-relative poses",
        options={"pretrain_steps": pre_steps, "finetune_steps": ft_steps, "width": int(mc.width),
                 "num_selected": int(pc.num_selected), "ankle_dropout": float(pc.ankle_dropout),
                 "ankle_rule": config.rd.ankle_rule},
        checkpoint={n: r.num_steps for n, r in trained.stages.items()},
        model_selection="none: every stage evaluated at its final step (no validation split)",
        notes=[
            "Keypoint analogue of WSP: no image backbone / heatmaps; CPU-scaled schedules.",
            "Protocol 1 is nearly trivial on keypoints: the labels are a function of the input "
            "ankles (see the ankle-rule baseline).",
            "ΔS undefined (eq. 13 joints not labelled) counts as 1.0 (only in the <=1 rows).",
        ],
    )  # fmt: skip
    tables: dict[str, dict[str, dict[str, float]]] = {
        "Relative-depth builder counts": {
            n: {k: float(v) for k, v in c.items()} for n, c in rd["counts"].items()
        },
        **{f"RD {p}: {test_pairs.name} (%)": table for p, table in rd_eval.items()},
        **{f"RD input-only baseline, {n} (%)": table for n, table in baselines.items()},
        "Fine-tuning: frame-wise MPJPE / P-MPJPE (mm), pre-trained vs random init": ft_rows,
    }
    if rd["label_agreement"] is not None:
        tables["Synthetic scenes: eq. 4 labels vs true depth order"] = {
            "test-pair joints": {"agreement (%)": 100.0 * rd["label_agreement"]}
        }
    figures = {"training_curves": lambda: common.training_curves_figure(wd),
               "rd_by_delta_s": lambda: _rd_figure(rd_eval)}  # fmt: skip
    timings = trained.timings(t_start)
    extra = {"stages": trained.summary(), "timings": timings, "rd": rd_eval,
             "rd_baselines": baselines, "label_agreement_with_true_depth": rd["label_agreement"],
             "counts": rd["counts"], "finetune": ft_rows,
             "figures": common.write_figures(wd, figures) if ec.figures else []}  # fmt: skip
    common.write_results(wd, header=header, evaluations=evaluations, extra_tables=tables,
                         extra=extra)  # fmt: skip
    common.LOGGER.info(
        "wsp: done in %.1f s; results in %s", timings["total_wall_s"], wd / "results.md"
    )
    return {"header": dataclasses.asdict(header), "evaluations": evaluations, **extra}


def _rd_figure(rd_eval: Mapping[str, Mapping[str, Mapping[str, float]]]) -> Any:
    """RD AUC and accuracy by scale-gap threshold, one line per protocol."""
    from jpose import viz

    plt = viz.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for ax, metric in zip(axes, ("auc", "accuracy")):
        for proto, table in rd_eval.items():
            names = list(table)
            ax.plot(range(len(names)), [table[n][metric] for n in names], "o-", label=proto)
            ax.set_xticks(range(len(names)), names)
        ax.set_ylabel(f"{metric} (%)")
        ax.set_title(f"relative depth {metric} by scale gap")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return fig


if __name__ == "__main__":
    common.cli(run, default_config=common.config_path("wsp"))
