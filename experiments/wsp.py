"""WSP (Qiu et al., "Weakly-supervised pre-training for 3D human pose estimation via perspective
knowledge") on keypoints: relative-depth labels from multi-person photos, pairwise relative-depth
pre-training, RD protocols 1 / 2, and 3D fine-tuning from the pre-trained encoder.

    python -m experiments.wsp --workdir=/tmp/wsp [--config=experiments/configs/wsp.py:<preset>]

Stages (``experiments.harness.train_stage``; each with its own checkpoints, resumable):

1. ``pretrain``: the pairwise model (:mod:`jpose.models.relative_depth`) on the training pairs
   (:mod:`jpose.data.relative_depth`), BCE on logits (eq. 9) over N < J randomly chosen joints per
   pair (eq. 6), random A/B orientation per step.
2. ``finetune_<pct>pct_<init>`` for every fraction of the 3D labels and ``init`` in
   ``pretrained`` (lifter trunk copied from the encoder, :func:`init_lifter_from_encoder`) /
   ``random``: a Martinez lifter on ``[x, y, confidence]`` inputs with WSP's L1 coordinate loss
   (eq. 12) on root-relative 3D; the same initial output layer, steps and learning rate for both.

Evaluation: RD protocol 1 (metrics on test-pair joints with ``ΔS <= 1.0 / 0.5 / 0.3 / 0.1``) and
protocol 2 (ankles removed from the input), per joint labelled in both persons, with
``jpose.metrics.relative_depth_metrics``; two input-only baselines for scale (ankle rule = the
label rule itself, knee rule for protocol 2); MPJPE / P-MPJPE of every fine-tuned lifter on the
3D test split (``experiments.jeval.evaluate_3d``). No model selection: every stage is evaluated
at its last step.

Inference: ``run`` writes ``<workdir>/model.json`` (input normalisation and the fine-tuning
stages); :func:`load_predictor` (or ``jpose.inference.load_predictor(DIR)``) restores one
fine-tuned lifter (default: the pre-trained initialisation at the largest label fraction).

Pairs: :func:`jpose.data.relative_depth.load_pair_splits` with the ``config.rd`` fields. The
auxiliary loss on predicted absolute depths that other experiments use (CameraPose's
``loss.lambda_rd > 0``) is :func:`jpose.losses.wsp_relative_depth_aux_loss`.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from experiments import common
from jpose import evaluation as jeval
from jpose import inference, losses, skeleton
from jpose import metrics as jm
from jpose.data import relative_depth as rdd
from jpose.inference import pipelines
from jpose.models import relative_depth as mrd
from jpose.training import Phase, clipped, create_player, create_train_state
from jpose.training import stages as harness

LOGGER = common.LOGGER

__all__ = [
    "run",
    "build_lifter",
    "finetune_stages",
    "default_variant",
    "load_predictor",
    "pairwise_loss_fn",
    "evaluate_relative_depth",
]


# ------------------------------------------------------------------------------------------------
# Losses
# ------------------------------------------------------------------------------------------------


def _select_joints(key: jax.Array, mask: jax.Array, num: int) -> jax.Array:
    """Random ``num`` of the true joints of each row of ``mask [..., J]`` (all if fewer)."""
    if num <= 0:
        return mask
    u = jnp.where(mask, jax.random.uniform(key, mask.shape), 2.0)
    rank = jnp.argsort(jnp.argsort(u, axis=-1), axis=-1)
    return mask & (rank < num)


_ANKLES = np.asarray(skeleton.H36M17.indices(["RFoot", "LFoot"]))


def pairwise_loss_fn(
    player: str, *, num_selected: int, ankle_dropout: float = 0.0, data_key: str = "rd"
) -> Callable[[Any, Any], tuple[jax.Array, dict[str, jax.Array]]]:
    """Phase loss: eq. 9 BCE of the pairwise model on a batch of pairs.

    Per step: each pair's orientation is swapped with probability 1/2 (label ``1 - label``),
    with probability ``ankle_dropout`` both persons' ankles are removed from the input (RD
    protocol 2 style), box scales are computed from the remaining joints, and ``num_selected``
    joints labelled in both persons are drawn (eq. 6's N < J).

    Args:
      player: name of the pairwise-model player.
      num_selected: N (0 = all labelled joints).
      ankle_dropout: probability of hiding the ankles of a pair.
      data_key: batch entry holding :meth:`RelativeDepthPairs.pair_arrays` fields.

    Returns:
      ``loss_fn(ctx, batch) -> (loss, {"bce", "accuracy"})``.
    """

    def loss_fn(ctx: Any, batch: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
        b = batch[data_key]
        k_swap, k_drop, k_sel = jax.random.split(ctx.next_key(), 3)
        swap = jax.random.bernoulli(k_swap, 0.5, b["label"].shape)
        pa = jnp.where(swap[:, None, None], b["pose_b"], b["pose_a"])
        pb = jnp.where(swap[:, None, None], b["pose_a"], b["pose_b"])
        ca = jnp.where(swap[:, None], b["conf_b"], b["conf_a"])
        cb = jnp.where(swap[:, None], b["conf_a"], b["conf_b"])
        label = jnp.where(swap, 1.0 - b["label"], b["label"])
        if ankle_dropout > 0:
            drop = jax.random.bernoulli(k_drop, ankle_dropout, label.shape)
            keep = jnp.ones(ca.shape[-1], bool).at[_ANKLES].set(False)
            keep = keep | ~drop[:, None]
            ca, cb = ca * keep, cb * keep
        sel = _select_joints(k_sel, b["joint_mask"], num_selected)
        logits = ctx.apply(player, pa, ca, mrd.box_scale(pa, ca), pb, cb, mrd.box_scale(pb, cb))
        labels = jnp.broadcast_to(label[:, None], logits.shape)
        bce = losses.wsp_relative_depth_loss(logits, labels, mask=sel)  # eq. 9, per pair
        loss = jnp.mean(bce)
        acc = jm.binary_accuracy(logits, labels, mask=sel, from_logits=True)
        return loss, {"bce": loss, "accuracy": acc}

    return loss_fn


def _lifter_loss_fn(
    ctx: Any, batch: Any, *, dataset: str
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """WSP eq. 12 on the 2D-3D pairs of ``batch[dataset]``."""
    b = batch[dataset]
    pred = ctx.apply("lifter", mrd.person_input(b["pose2d_norm"], b["confidence"]))
    target = b["pose3d_cam"] - b["pose3d_cam"][:, :1]
    loss = jnp.mean(losses.wsp_coordinate_loss(pred, target))  # eq. 12 (L1, metres)
    mpjpe = jnp.mean(jm.mpjpe(pred - pred[:, :1], target))
    return loss, {"l1": loss, "mpjpe_mm": jm.to_mm(mpjpe)}


# ------------------------------------------------------------------------------------------------
# Evaluation
# ------------------------------------------------------------------------------------------------


def evaluate_relative_depth(
    predict: Callable[..., jax.Array],
    pairs: rdd.RelativeDepthPairs,
    *,
    protocol: int,
    thresholds: tuple[float, ...] = rdd.PROTOCOL1_THRESHOLDS,
    orientation_seed: int = 1234,
    batch_size: int = 2048,
) -> dict[str, dict[str, float]]:
    """RD protocol 1 / 2 metrics of a pairwise model on a pair set (WSP Tables 2-3).

    Args:
      predict: ``(pose_a, conf_a, pose_b, conf_b) -> logits [B, J]`` (jitted).
      pairs: evaluation pairs.
      protocol: 1 (full input) or 2 (ankles removed).
      thresholds: ΔS thresholds.
      orientation_seed: seeded random A/B orientation (balanced classes).
      batch_size: evaluation batch.

    Returns:
      ``{"ΔS<=t": {"auc", "accuracy", "precision", "recall", "f1" (percent), "pairs",
      "joints"}}`` over the joints labelled in both persons.
    """
    arr = pairs.pair_arrays(protocol=protocol, orientation_seed=orientation_seed)
    logits = jeval.batched_apply(
        predict,
        arr["pose_a"],
        arr["conf_a"],
        arr["pose_b"],
        arr["conf_b"],
        batch_size=batch_size,
    )
    return _rd_table(logits, arr, thresholds)


def _rd_table(
    scores: np.ndarray, arr: Mapping[str, np.ndarray], thresholds: tuple[float, ...]
) -> dict[str, dict[str, float]]:
    labels = np.broadcast_to(arr["label"][:, None], arr["joint_mask"].shape)
    out = {}
    for name, sel in rdd.protocol_masks(arr["delta_s"], thresholds=tuple(thresholds)).items():
        mask = arr["joint_mask"] & sel[:, None]
        m = jm.relative_depth_metrics(
            jnp.asarray(scores), jnp.asarray(labels), mask=jnp.asarray(mask), from_logits=True
        )
        row = {k: 100.0 * float(v) for k, v in m.items()}
        row["pairs"] = float(sel.sum())
        row["joints"] = float(mask.sum())
        out[f"ΔS{name}"] = row
    return out


def _rule_scores(arr: Mapping[str, np.ndarray], joints: list[str]) -> np.ndarray:
    """Input-only baseline: mean image y of ``joints`` of A minus B's (lower = nearer)."""
    idx = skeleton.H36M17.indices(joints)

    def height(pose: np.ndarray, conf: np.ndarray) -> np.ndarray:
        ok = conf[:, idx] > 0
        return np.where(ok, pose[:, idx, 1], 0.0).sum(-1) / np.maximum(ok.sum(-1), 1)

    ha, hb = height(arr["pose_a"], arr["conf_a"]), height(arr["pose_b"], arr["conf_b"])
    ok = (arr["conf_a"][:, idx] > 0).any(-1) & (arr["conf_b"][:, idx] > 0).any(-1)
    s = np.where(ok, ha - hb, 0.0)
    return np.broadcast_to(s[:, None], arr["joint_mask"].shape).astype(np.float32) * 100.0


# ------------------------------------------------------------------------------------------------
# Entry point
# ------------------------------------------------------------------------------------------------


def _tx(lr: float, steps: int, clip: float) -> optax.GradientTransformation:
    sched = optax.cosine_decay_schedule(lr, max(steps, 1))
    return clipped(optax.adam(sched), clip)


def _fraction_tag(frac: float) -> str:
    return f"{int(round(100 * frac)):03d}pct"


def _stage_name(frac: float, init: str) -> str:
    return f"finetune_{_fraction_tag(float(frac))}_{init}"


def _subset_size(frac: float, n_train: int, batch_size: int) -> int:
    """Examples of the fine-tuning subset of ``frac`` (as ``run`` draws it with common.subset)."""
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
    pc, fc = config.stages.pretrain, config.stages.finetune
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
            raise ValueError(
                f"{ds.name}: 'vp' 2D equals the encoder's 'image' 2D only for "
                "square images; use normalization 'image'"
            )
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
    mc = config.model
    rd_model = mrd.pairwise_relative_depth(
        17, feature_dim=int(mc.feature_dim), width=int(mc.width), num_blocks=int(mc.num_blocks),
        dropout=float(mc.dropout), head_width=int(mc.head_width),
        head_layers=int(mc.head_layers), symmetric=bool(mc.symmetric),
    )  # fmt: skip
    arrays = train_pairs.pair_arrays(protocol=1, orientation_seed=int(config.seed))
    data = {"rd": {k: v for k, v in arrays.items() if k not in ("delta_s", "image_id")}}
    ex = {k: v[:2] for k, v in data["rd"].items()}
    scale = np.ones(2, np.float32)
    pre_steps = -(-int(pc.steps) // k_steps) * k_steps
    pre_tx = _tx(float(pc.lr), pre_steps, float(config.train.clip_norm))
    rd_loss = pairwise_loss_fn("rd", num_selected=int(pc.num_selected),
                               ankle_dropout=float(pc.ankle_dropout))  # fmt: skip
    declared = [harness.Stage(
        "pretrain", phases=[Phase("rd", ("rd",), rd_loss)], num_steps=pre_steps,
        batch_sizes={"rd": int(pc.batch_size)}, key=jax.random.fold_in(key, 0),
        init=lambda done: create_train_state({"rd": create_player(
            rd_model, pre_tx, jax.random.fold_in(key, 1000), ex["pose_a"], ex["conf_a"], scale,
            ex["pose_b"], ex["conf_b"], scale)}),
    )]  # fmt: skip

    # -- stages 2..: fine-tuning, one per label fraction and initialisation -----------------------
    ft_steps = -(-int(fc.steps) // k_steps) * k_steps
    lifter = build_lifter(config)
    subsets = {}
    for fi, frac in enumerate(fc.fractions):
        n_sub = max(int(fc.batch_size), int(round(float(frac) * len(train_3d))))
        sub = subsets[fi] = common.subset(
            train_3d, n_sub if float(frac) < 1.0 else 0, seed=int(config.seed) + 7 + fi
        )
        data[f"ft{fi}"] = {"pose2d_norm": sub.pose2d_norm, "confidence": sub.confidence,
                           "pose3d_cam": sub.pose3d_cam}  # fmt: skip
        # shared by the inits: one compiled block per subset
        tx = _tx(float(fc.lr), ft_steps, float(config.train.clip_norm))
        ft_phases = [
            Phase("lifter", ("lifter",), functools.partial(_lifter_loss_fn, dataset=f"ft{fi}"))
        ]

        def init(done: Mapping[str, Any], *, fi: int = fi, tx: Any = tx, how: str) -> Any:
            sub = subsets[fi]
            player = create_player(
                lifter,
                tx,
                jax.random.fold_in(key, 2000 + fi),
                mrd.person_input(sub.pose2d_norm[:2], sub.confidence[:2]),
            )
            if how == "pretrained":
                # copies: the fine-tuning step donates its state, the encoder must survive it
                v = jax.tree_util.tree_map(
                    jnp.copy,
                    mrd.init_lifter_from_encoder(
                        player.variables(), done["pretrain"]["rd"].variables()
                    ),
                )
                player = player.replace(
                    params=v["params"], batch_stats=v["batch_stats"], opt_state=tx.init(v["params"])
                )
            return create_train_state({"lifter": player})  # fmt: skip

        for how in fc.inits:
            if how not in ("pretrained", "random"):
                raise ValueError(f"stages.finetune.inits: expected pretrained|random, got {how!r}")
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
    stage_ckpt = {n: r.num_steps for n, r in trained.stages.items()}
    timings["pretrain_s"] = trained.stages["pretrain"].wall_s

    # -- RD evaluation (protocols 1 and 2) --------------------------------------------------------
    t0 = time.perf_counter()
    rd_vars = trained.stages["pretrain"].state["rd"].variables()

    @jax.jit
    def predict_rd(pa, ca, pb, cb):
        return rd_model.apply(
            rd_vars, pa, ca, mrd.box_scale(pa, ca), pb, cb, mrd.box_scale(pb, cb), train=False
        )[0]

    ec = config.eval
    thr = tuple(float(t) for t in ec.thresholds)
    rd_eval = {
        f"protocol {p}": evaluate_relative_depth(
            predict_rd,
            test_pairs,
            protocol=p,
            thresholds=thr,
            orientation_seed=int(ec.orientation_seed),
            batch_size=int(ec.batch_size),
        )  # fmt: skip
        for p in (1, 2)
    }
    baselines = {}
    for p, rule, joints in (
        (1, "ankle rule (= label rule)", ["RFoot", "LFoot"]),
        (2, "knee rule", ["RKnee", "LKnee"]),
        (2, "hip rule", ["RHip", "LHip"]),
    ):
        arr = test_pairs.pair_arrays(protocol=p, orientation_seed=int(ec.orientation_seed))
        baselines[f"protocol {p}, {rule}"] = _rd_table(_rule_scores(arr, joints), arr, thr)
    timings["rd_eval_s"] = time.perf_counter() - t0

    # -- fine-tuned lifters on the test split -----------------------------------------------------
    # one compilation for every fine-tuned lifter (load_predictor: the same, root-relative)
    lifter_predict = jax.jit(functools.partial(_lift, lifter))
    evaluations, ft_rows = {}, {}
    for name, st in finetune_info.items():
        predict_3d = functools.partial(
            lifter_predict, trained.stages[name].state["lifter"].variables()
        )
        evaluations[st["evaluation"]] = ev = jeval.evaluate_3d(
            predict_3d, test_3d, batch_size=int(ec.batch_size)
        )
        row = ft_rows.setdefault(f"{100 * st['fraction']:g}% 3D labels ({st['num_examples']})", {})
        for metric in ("mpjpe", "p_mpjpe"):
            row[f"{metric} {st['init']}"] = ev["metrics"][metric]["frame_wise"]  # fmt: skip

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
        checkpoint=stage_ckpt,
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
    }
    for p, table in rd_eval.items():
        tables[f"RD {p}: {test_pairs.name} (%)"] = table
    for name, table in baselines.items():
        tables[f"RD input-only baseline, {name} (%)"] = table
    tables["Fine-tuning: frame-wise MPJPE / P-MPJPE (mm), pre-trained vs random init"] = ft_rows
    extra = {
        "stages": stages,
        "timings_s": timings,
        "rd": rd_eval,
        "rd_baselines": baselines,
        "label_agreement_with_true_depth": rd["label_agreement"],
        "counts": rd["counts"],
        "finetune": ft_rows,
    }
    if rd["label_agreement"] is not None:
        tables["Synthetic scenes: eq. 4 labels vs true depth order"] = {
            "test-pair joints": {"agreement (%)": 100.0 * rd["label_agreement"]}
        }
    figures = []
    if ec.figures:
        figures = common.write_figures(
            wd,
            {
                "training_curves": lambda: common.training_curves_figure(wd),
                "rd_by_delta_s": lambda: _rd_figure(rd_eval),
            },
        )
    extra["figures"] = figures
    common.write_results(
        wd, header=header, evaluations=evaluations, extra_tables=tables, extra=extra
    )
    LOGGER.info("wsp: done in %.1f s; results in %s", timings["total_s"], wd / "results.md")
    return {"header": dataclasses.asdict(header), "evaluations": evaluations, **extra}


def _rd_figure(rd_eval: Mapping[str, Mapping[str, Mapping[str, float]]]) -> Any:
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
