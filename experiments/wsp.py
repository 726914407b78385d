"""WSP (Qiu et al., "Weakly-supervised pre-training for 3D human pose estimation via perspective
knowledge") on keypoints: relative-depth pre-training on pairs of people, RD protocols 1 / 2, and
3D fine-tuning from the pre-trained encoder.

    python -m experiments.wsp --workdir=/tmp/wsp [--config=experiments/configs/wsp.py:<preset>]

Stages: ``pretrain``, the pairwise model on the relative-depth pairs of ``config.rd``
(:func:`jpose.data.relative_depth.load_pair_splits`) with eq. 9 over eq. 6's N < J joints; then
``finetune_<pct>pct_<init>`` per fraction of the 3D labels and initialisation (``pretrained``: the
lifter trunk copied from the encoder; ``random``), a Martinez lifter on ``[x, y, confidence]``
with eq. 12's L1 loss. Evaluation: RD protocols 1 / 2 (Tables 2-3) beside input-only baselines,
MPJPE / P-MPJPE of every fine-tuned lifter; no model selection. Model, objectives and RD
evaluation: :mod:`jpose.models.relative_depth`. :func:`load_predictor` (or
``jpose.inference.load_predictor(DIR)``) serves one fine-tuned lifter. CameraPose's auxiliary
loss on predicted depths (``loss.lambda_rd``) is :func:`jpose.losses.wsp_relative_depth_aux_loss`.
"""

from __future__ import annotations

import dataclasses
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
from jpose import evaluation as jeval
from jpose import inference, skeleton
from jpose.data import relative_depth as rdd
from jpose.inference import pipelines
from jpose.models import relative_depth as mrd
from jpose.training import Phase, clipped, create_player, create_train_state
from jpose.training import stages as harness

LOGGER = common.LOGGER

__all__ = ["run", "build_lifter", "finetune_stages", "default_variant", "load_predictor"]


def _pretrain_loss(
    ctx: Any, batch: Any, *, num_selected: int, ankle_dropout: float
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Eq. 9 of the pairwise model (player ``rd``) on the ``rd`` pairs of the batch."""
    return mrd.pairwise_objective(
        functools.partial(ctx.apply, "rd"), batch["rd"], ctx.next_key(),
        num_selected=num_selected, ankle_dropout=ankle_dropout,
    )  # fmt: skip


def _finetune_loss(ctx: Any, batch: Any, *, dataset: str) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Eq. 12 of the lifter on the 2D-3D pairs of ``batch[dataset]``."""
    b = batch[dataset]
    pred = ctx.apply("lifter", mrd.person_input(b["pose2d_norm"], b["confidence"]))
    return mrd.coordinate_objective(pred, b["pose3d_cam"])


def _tx(lr: float, steps: int, clip: float) -> optax.GradientTransformation:
    sched = optax.cosine_decay_schedule(lr, max(steps, 1))
    return clipped(optax.adam(sched), clip)


def _fraction_tag(frac: float) -> str:
    return f"{int(round(100 * frac)):03d}pct"


def _stage_name(frac: float, init: str) -> str:
    return f"finetune_{_fraction_tag(float(frac))}_{init}"


def _subset_size(frac: float, n_train: int, batch_size: int) -> int:
    """Examples of the fine-tuning subset of ``frac``: all for ``frac >= 1``, else at least one
    batch (the seeded ``common.subset`` ``run`` draws)."""
    if float(frac) >= 1.0:
        return n_train
    return min(n_train, max(int(batch_size), int(round(float(frac) * n_train))))


def _evaluation_label(frac: float, num_examples: int, init: str) -> str:
    return f"{_fraction_tag(float(frac))} ({num_examples} examples), {init}"


def finetune_stages(config: ml_collections.ConfigDict) -> dict[str, dict[str, Any]]:
    """The fine-tuning stages ``run`` trains, in order.

    Args:
      config: the WSP config.

    Returns:
      ``{stage name: {"fraction": float, "init": "pretrained" | "random"}}``; the stage name
      ``finetune_<pct>pct_<init>`` is also the checkpoint directory.
    """
    fc = config.stages.finetune
    for how in fc.inits:
        if how not in ("pretrained", "random"):
            raise ValueError(f"stages.finetune.inits: expected pretrained|random, got {how!r}")
    return {
        _stage_name(frac, init): {"fraction": float(frac), "init": str(init)}
        for frac in fc.fractions
        for init in fc.inits
    }


def default_variant(config: ml_collections.ConfigDict) -> str:
    """The fine-tuning stage :func:`load_predictor` serves by default: the ``pretrained``
    initialisation (the method; else the first of ``stages.finetune.inits``) at the largest label
    fraction (``1.0`` = all 3D labels in the default config)."""
    fc = config.stages.finetune
    init = "pretrained" if "pretrained" in tuple(fc.inits) else str(fc.inits[0])
    return _stage_name(max(float(f) for f in fc.fractions), init)


def build_lifter(config: ml_collections.ConfigDict) -> Any:
    """The fine-tuned Martinez lifter (``[x, y, confidence]`` inputs) of ``config.model``."""
    return pipelines.build_network(_lifter_spec(config))


def _lifter_spec(config: ml_collections.ConfigDict) -> dict[str, Any]:
    mc = config.model
    return pipelines.network_spec(
        "martinez_lifter", 17, in_channels=3, width=int(mc.width), num_blocks=int(mc.num_blocks),
        dropout=float(mc.dropout),
    )  # fmt: skip


def _description(stage: Mapping[str, Any], variant: str) -> str:
    return (
        f"WSP (Qiu et al.) keypoint lifter fine-tuned on {100 * stage['fraction']:g}% of the 3D "
        f"labels from a {stage['init']} initialisation ({variant})"
    )


def pipeline(config: ml_collections.ConfigDict, info: Mapping[str, Any]) -> dict[str, Any]:
    """The ``model.json["pipeline"]`` entry (:mod:`jpose.inference.pipelines`): the served
    fine-tuned lifter (``info["default_variant"]``), restored by jpose alone exactly as
    :func:`load_predictor` restores it."""
    stages, variant = info["finetune"], str(info["default_variant"])
    chain = (["pretrain"] if stages[variant]["init"] == "pretrained" else []) + [variant]
    return pipelines.pipeline_spec(
        "lifter",
        networks={"lifter": _lifter_spec(config)},
        stages=chain,
        options={"input": "pose_confidence", "serve_stage": variant},
        predictor={"experiment": "wsp", "description": _description(stages[variant], variant),
                   "layout": skeleton.H36M17.name, "normalization": str(info["normalization"])},
    )  # fmt: skip


def _lift(lifter: Any, variables: Any, x: jax.Array, c: jax.Array) -> jax.Array:
    """The lifter's 3D as ``run`` evaluates it (``jeval.evaluate_3d`` makes it root-relative)."""
    return lifter.apply(variables, mrd.person_input(x, c), train=False)[0]


def load_predictor(
    config: Mapping[str, Any],
    workdir: str | os.PathLike[str],
    *,
    step: int | None = None,
    variant: str | None = None,
) -> inference.Predictor:
    """One fine-tuned lifter of a WSP work directory (:func:`pipeline`).

    ``run`` fine-tunes a lifter per label fraction and initialisation (:func:`finetune_stages`);
    the served one is ``variant`` (a stage name such as ``finetune_100pct_random``), else
    :func:`default_variant` (``model.json["default_variant"]``): the pre-trained initialisation
    at the largest fraction (the method's main run; ``finetune_100pct_pretrained`` with the
    default fractions).

    ``predict(pose2d_norm, confidence)["pose3d"]`` is the lifter's output on
    ``[x * (c > 0), y * (c > 0), c]`` made root-relative (pelvis at the origin; metres, camera
    frame): what ``run`` evaluates for that stage (its ``results.json`` entry is
    ``model.json["finetune"][variant]["evaluation"]``).

    Raises:
      ValueError: an unknown ``variant``.
    """
    info = dict(inference.read_model_info(workdir))
    variant = variant or str(info["default_variant"])
    if variant not in info["finetune"]:
        raise ValueError(f"unknown WSP fine-tuning variant {variant!r}; expected one of "
                         f"{sorted(info['finetune'])}")  # fmt: skip
    info["default_variant"] = variant  # the served stage of pipeline()
    return common.declared_predictor(pipeline, config, workdir, info=info, step=step)


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Pre-train, evaluate relative depth, fine-tune and report (see module docstring).

    The ``image`` preset's config names experiment ``wsp_image``: ``python -m experiments.wsp``
    runs :func:`experiments.wsp_image.run` for it (:func:`experiments.common.cli`).

    Args:
      config: ``experiments/configs/wsp.py`` config.
      workdir: output directory (config, metrics.jsonl, checkpoints, results, figures).

    Returns:
      The ``results.json`` record.
    """
    t_start = time.perf_counter()
    wd = common.setup_workdir(workdir, config)
    key = jax.random.key(int(config.seed))
    options = common.train_options(config.train)
    k_steps = options.steps_per_block
    pc, fc, mc, ec = config.stages.pretrain, config.stages.finetune, config.model, config.eval
    timings: dict[str, float] = {}

    # -- data -------------------------------------------------------------------------------------
    t0 = time.perf_counter()
    rd = rdd.load_pair_splits(seed=int(config.seed), **config.rd.to_dict())
    train_pairs, test_pairs = rd["train"], rd["test"]
    if train_pairs.num_pairs < pc.batch_size:
        raise ValueError(f"{train_pairs.num_pairs} training pairs < batch {pc.batch_size}")
    datasets = common.load_datasets(config.data)
    train_3d, test_3d = datasets["train_3d"], datasets["test"]
    for ds in (train_3d, test_3d):
        size = ds.image_size_px
        if ds.normalization == "vp" and (size is None or np.any(size[:, 0] != size[:, 1])):
            raise ValueError(f"{ds.name}: 'vp' 2D equals the encoder's 'image' 2D only for "
                             "square images; use normalization 'image'")  # fmt: skip
        if ds.normalization not in ("vp", "image"):
            raise ValueError(f"{ds.name}: normalization {ds.normalization!r} is not 'image'")
    timings["data_s"] = time.perf_counter() - t0
    finetune_info = {}
    for name, st in finetune_stages(config).items():
        n = _subset_size(st["fraction"], len(train_3d), int(fc.batch_size))
        label = _evaluation_label(st["fraction"], n, st["init"])
        finetune_info[name] = {**st, "num_examples": n, "evaluation": label}
    info = {"layout": skeleton.H36M17.name, "normalization": train_3d.normalization,
            "finetune": finetune_info, "default_variant": default_variant(config)}  # fmt: skip
    common.write_model_info(wd, experiment="wsp", pipeline=pipeline(config, info), **info)

    # -- stage 1: relative-depth pre-training (eq. 9) ---------------------------------------------
    rd_model = mrd.pairwise_relative_depth(
        17, feature_dim=int(mc.feature_dim), width=int(mc.width), num_blocks=int(mc.num_blocks),
        dropout=float(mc.dropout), head_width=int(mc.head_width),
        head_layers=int(mc.head_layers), symmetric=bool(mc.symmetric),
    )  # fmt: skip
    arrays = train_pairs.pair_arrays(protocol=1, orientation_seed=int(config.seed))
    data = {"rd": {k: v for k, v in arrays.items() if k not in ("delta_s", "image_id")}}
    ex = {k: v[:2] for k, v in data["rd"].items()}
    scale = np.ones(2, np.float32)
    pre_steps = harness.num_stage_steps(steps=int(pc.steps), epochs=0.0, steps_per_epoch=1,
                                        steps_per_block=k_steps)  # fmt: skip
    pre_tx = _tx(float(pc.lr), pre_steps, float(config.train.clip_norm))
    rd_loss = functools.partial(_pretrain_loss, num_selected=int(pc.num_selected),
                                ankle_dropout=float(pc.ankle_dropout))  # fmt: skip
    declared = [harness.Stage(
        "pretrain", phases=[Phase("rd", ("rd",), rd_loss)], num_steps=pre_steps,
        batch_sizes={"rd": int(pc.batch_size)}, key=jax.random.fold_in(key, 0),
        init=lambda done: create_train_state({"rd": create_player(
            rd_model, pre_tx, jax.random.fold_in(key, 1000), ex["pose_a"], ex["conf_a"], scale,
            ex["pose_b"], ex["conf_b"], scale)}),
    )]  # fmt: skip

    # -- stages 2..: fine-tuning, one per label fraction and initialisation -----------------------
    ft_steps = harness.num_stage_steps(steps=int(fc.steps), epochs=0.0, steps_per_epoch=1,
                                       steps_per_block=k_steps)  # fmt: skip
    lifter = build_lifter(config)
    for fi, frac in enumerate(fc.fractions):
        n_sub = _subset_size(frac, len(train_3d), int(fc.batch_size))
        sub = common.subset(train_3d, n_sub, seed=int(config.seed) + 7 + fi)
        ft = data[f"ft{fi}"] = {"pose2d_norm": sub.pose2d_norm, "confidence": sub.confidence,
                                "pose3d_cam": sub.pose3d_cam}  # fmt: skip
        # shared by the inits: one compiled block per subset
        tx = _tx(float(fc.lr), ft_steps, float(config.train.clip_norm))
        ft_loss = functools.partial(_finetune_loss, dataset=f"ft{fi}")
        ft_phases = [Phase("lifter", ("lifter",), ft_loss)]

        def init(done: Mapping[str, Any], *, fi: int = fi, ft: Any = ft, tx: Any = tx, how: str):
            example = mrd.person_input(ft["pose2d_norm"][:2], ft["confidence"][:2])
            player = create_player(lifter, tx, jax.random.fold_in(key, 2000 + fi), example)
            if how == "pretrained":
                # copies: the fine-tuning step donates its state, the encoder must survive it
                v = mrd.init_lifter_from_encoder(
                    player.variables(), done["pretrain"]["rd"].variables()
                )
                v = jax.tree_util.tree_map(jnp.copy, v)
                player = player.with_variables(v["params"], v["batch_stats"])
            return create_train_state({"lifter": player})

        for how in fc.inits:
            declared.append(harness.Stage(
                _stage_name(float(frac), how), phases=ft_phases, num_steps=ft_steps,
                batch_sizes={f"ft{fi}": int(fc.batch_size)},
                init=functools.partial(init, how=how),
                key=jax.random.fold_in(key, len(declared)),
            ))  # fmt: skip
    trained = harness.run_stages(declared, data, workdir=wd, options=options)
    stages = {n: {"resumed_from": r.resumed_from, "trained_steps": r.trained_steps}
              for n, r in trained.stages.items()}  # fmt: skip
    timings.update({f"{n}_s": r.wall_s for n, r in trained.stages.items()})

    # -- RD evaluation (protocols 1 and 2) and input-only baselines -------------------------------
    t0 = time.perf_counter()
    predict_rd = mrd.pairwise_predictor(
        rd_model, trained.stages["pretrain"].state["rd"].variables()
    )
    rd_kw = {"thresholds": tuple(float(t) for t in ec.thresholds),
             "orientation_seed": int(ec.orientation_seed)}  # fmt: skip
    rd_eval = {
        f"protocol {p}": mrd.evaluate_relative_depth(
            predict_rd, test_pairs, protocol=p, batch_size=int(ec.batch_size), **rd_kw
        )
        for p in (1, 2)
    }
    baselines = mrd.input_rule_baselines(test_pairs, **rd_kw)
    timings["rd_eval_s"] = time.perf_counter() - t0

    # -- fine-tuned lifters on the test split -----------------------------------------------------
    # one compilation for every fine-tuned lifter (load_predictor: the same, root-relative)
    lifter_predict = jax.jit(functools.partial(_lift, lifter))
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
    timings["total_s"] = time.perf_counter() - t_start
    header = common.ResultsHeader(
        experiment="WSP (Qiu et al.) on keypoints: experiments.wsp",
        dataset=f"RD pre-training: {train_pairs.name} ({train_pairs.num_pairs} pairs); RD test: "
        f"{test_pairs.name} ({test_pairs.num_pairs} pairs, disjoint images); 3D fine-tuning: "
        f"{train_3d.name} (fractions {tuple(fc.fractions)}), test {test_3d.name}",
        source_2d="ground-truth 2D annotations (keypoint inputs, no image pathway)",
        protocol="RD protocol 1 (ΔS <= t) and 2 (ankles removed from the input), per joint "
        "labelled in both persons, threshold 0.5, percent; 3D: MPJPE / P-MPJPE (mm) on "
        "root-relative poses",
        options={
            "pretrain_steps": pre_steps,
            "finetune_steps": ft_steps,
            "width": int(mc.width),
            "num_selected": int(pc.num_selected),
            "ankle_dropout": float(pc.ankle_dropout),
            "ankle_rule": config.rd.ankle_rule,
        },
        checkpoint={n: r.num_steps for n, r in trained.stages.items()},
        model_selection="none: every stage evaluated at its final step (no validation split)",
        notes=[
            "Keypoint analogue of WSP: no image backbone / heatmaps; CPU-scaled schedules.",
            "Protocol 1 is nearly trivial on keypoints: the labels are a function of the input "
            "ankles (see the ankle-rule baseline).",
            "ΔS undefined (eq. 13 joints not labelled) counts as 1.0 (only in the <=1 rows).",
        ],
    )
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
    extra = {"stages": stages, "timings_s": timings, "rd": rd_eval, "rd_baselines": baselines,
             "label_agreement_with_true_depth": rd["label_agreement"], "counts": rd["counts"],
             "finetune": ft_rows}  # fmt: skip
    extra["figures"] = []
    if ec.figures:
        extra["figures"] = common.write_figures(wd, {
            "training_curves": lambda: common.training_curves_figure(wd),
            "rd_by_delta_s": lambda: _rd_figure(rd_eval),
        })  # fmt: skip
    common.write_results(wd, header=header, evaluations=evaluations, extra_tables=tables,
                         extra=extra)  # fmt: skip
    LOGGER.info("wsp: done in %.1f s; results in %s", timings["total_s"], wd / "results.md")
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
