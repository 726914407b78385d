"""Drover et al. (ECCV-W 2018): 3D pose learned from 2D projections alone.

``python -m experiments.drover --workdir=DIR [--config=experiments/configs/drover.py:PRESET]``

Paper mapping (:mod:`jpose.models.drover`, ``jpose.losses.drover_*``): root-centred 2D scaled to
an average head-root distance ``1 / d`` (sec. 3.1); generator ``G`` -> depth offsets, depth
``max(0, d + o) + 1`` and back projection (eq. 2); random projection layer (sec. 3); 2-class
discriminator ``D`` on real 2D drawn independently of ``G``'s inputs vs the projections, GAN loss
of eq. 4, one D then one G update per iteration; real 2D pool = training 2D, optionally a 2D-only
split and virtual-camera views of the training 3D (sec. 4.1); ``ensemble_seeds`` average several
generators (sec. 4.3). No 3D label reaches the generator's loss (:func:`training_arrays`).

Evaluation: P-MPJPE (the paper's metric), N-MPJPE and a nominal-unit P1 per split (Human3.6M:
Protocol 1 = S11 ``test_s11``, Protocol 2 = S9 + S11 ``test``), beside the trivial baseline
(constant depth). ``run`` writes ``model.json``; :func:`load_predictor` restores the generator(s).
"""

from __future__ import annotations

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
from experiments.lifting import eval_datasets, lifter_figures
from jpose import evaluation as jeval
from jpose import inference, losses, models, skeleton
from jpose.data import PoseDataset
from jpose.evaluation import jit_predict
from jpose.inference import pipelines
from jpose.models import drover as gan
from jpose.models.drover import DroverJoints, head_root_distance, normalize_source
from jpose.training import (
    Phase,
    PhaseContext,
    alternating_gan_phases,
    clipped,
    create_player,
    create_train_state,
)
from jpose.training import stages as harness
from jpose.training.state import TrainState

__all__ = [
    "joint_spec",
    "training_arrays",
    "make_models",
    "make_optimizers",
    "make_phases",
    "seed_stages",
    "evaluate",
    "load_predictor",
    "run",
]


def joint_spec(num_joints: int) -> DroverJoints:
    """The :class:`jpose.models.drover.DroverJoints` of the 14- or 17-joint variant."""
    return DroverJoints.of(num_joints)


def training_arrays(
    datasets: Mapping[str, PoseDataset], config: ml_collections.ConfigDict
) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, Any]]:
    """The device-resident training data: generator inputs and the real 2D pool, 2D only.

    Args:
      datasets: from ``common.load_datasets``.
      config: the Drover config.

    Returns:
      ``({"inputs": {"x": [N, J, 2]}, "real": {"r": [M, J, 2]}}, info)``; ``info`` holds the
      normalisation constants (``head_root_distance`` of the inputs) and the pool composition.
      No 3D array is in the returned data (3D only renders the virtual views, unpaired).
    """
    spec = joint_spec(int(config.method.num_joints))
    d, rc = float(config.method.distance), config.real2d
    train = datasets["train_3d"]
    hr_inputs = head_root_distance(train.pose2d_norm, spec)
    x = normalize_source(train.pose2d_norm, joints=spec, distance=d, head_root_distance=hr_inputs)
    sources = {}
    if rc.use_train_2d:
        sources["train_3d 2D"] = train.pose2d_norm
    if rc.use_2d_only and "train_2d" in datasets:
        sources["train_2d 2D"] = datasets["train_2d"].pose2d_norm
    if int(rc.virtual_cameras) > 0:
        sources[f"{int(rc.virtual_cameras)} virtual views of train_3d 3D"] = gan.virtual_views(
            train.pose3d_cam, jax.random.key(int(config.seed) + 7919),
            num_views=int(rc.virtual_cameras), azimuth_deg=tuple(rc.azimuth_deg),
            elevation_deg=tuple(rc.elevation_deg),
        )  # fmt: skip
    if not sources:
        raise ValueError("Drover: the real 2D pool is empty (enable real2d.use_train_2d or ...)")
    data = {
        "inputs": {"x": np.asarray(x, np.float32)},
        "real": {"r": gan.real_pool(list(sources.values()), joints=spec, distance=d)},
    }
    info = {"head_root_distance": hr_inputs, "spec": spec,
            "real_pool": {name: len(pose2d) for name, pose2d in sources.items()}}  # fmt: skip
    return data, info


def make_models(config: ml_collections.ConfigDict) -> dict[str, models.Model]:
    """``{"gen": generator, "disc": discriminator}`` (paper sec. 3.1 architectures)."""
    mc = config.model
    return {
        "gen": pipelines.build_network(generator_spec(config)),
        "disc": models.drover_discriminator(
            width=int(mc.width), num_blocks=int(mc.discriminator_blocks)
        ),
    }


def generator_spec(config: ml_collections.ConfigDict) -> dict[str, Any]:
    """The generator as a :func:`jpose.inference.pipelines.network_spec`. ``generator_zero_init``
    (ours) zero-initialises its output layer: it starts as the trivial baseline (constant depth)
    instead of random depths (work directories written before the field existed did not)."""
    mc = config.model
    return pipelines.network_spec(
        "drover_generator", int(config.method.num_joints), width=int(mc.width),
        num_blocks=int(mc.generator_blocks),
        zero_init_output=bool(mc.get("generator_zero_init", False)),
    )  # fmt: skip


def pipeline(config: ml_collections.ConfigDict, info: Mapping[str, Any]) -> dict[str, Any]:
    """The ``model.json["pipeline"]`` entry (:mod:`jpose.inference.pipelines`, kind ``drover``):
    every seed's generator, restored by jpose alone exactly as :func:`load_predictor` restores
    them."""
    stages = seed_stages(config)
    return pipelines.pipeline_spec(
        "drover", networks={"gen": generator_spec(config)}, stages=stages,
        options={"num_joints": int(config.method.num_joints),
                 "distance": float(config.method.distance),
                 "head_root_distance": float(info["head_root_distance"]),
                 "unit_m": float(config.eval.unit_m)},
        predictor={"experiment": "drover", "layout": skeleton.H36M17.name,
                   "normalization": str(info["normalization"]), "metric_scale": False,
                   "description": _description(config, len(stages))},
    )  # fmt: skip


def _description(config: ml_collections.ConfigDict, num_seeds: int) -> str:
    return (f"Drover et al. (ECCV-W 2018) generator, {int(config.method.num_joints)} joints"
            + (f", ensemble of {num_seeds} seeds" if num_seeds > 1 else "")
            + f"; scale-free (nominal {float(config.eval.unit_m)} m per unit)")  # fmt: skip


def make_optimizers(
    config: ml_collections.ConfigDict, *, num_steps: int
) -> dict[str, optax.GradientTransformation]:
    """Adam for ``gen`` and ``disc`` (paper: 2e-4 both; ``stages.gan.b1`` = beta1).

    ``stages.gan.lr_schedule``: ``"constant"`` (the paper) or ``"linear"`` (ours: linear decay to 0
    over ``num_steps``, which damps the late G/D oscillation so the final checkpoint is stable).
    """
    tc, gc = config.train, config.stages.gan
    schedule = str(gc.lr_schedule)

    def lr(base: float) -> float | optax.Schedule:
        if schedule == "constant":
            return base
        if schedule == "linear":
            return optax.linear_schedule(base, 0.0, max(1, num_steps))
        raise ValueError(f"stages.gan.lr_schedule must be constant|linear, got {schedule!r}")

    return {
        "gen": clipped(optax.adam(lr(float(gc.lr_generator)), b1=float(gc.b1)), tc.clip_norm),
        "disc": clipped(optax.adam(lr(float(gc.lr_discriminator)), b1=float(gc.b1)), tc.clip_norm),
    }


def make_phases(config: ml_collections.ConfigDict) -> tuple[Phase, Phase]:
    """The discriminator and generator phases (run D first, then G against the updated D).

    Batches: ``{"inputs": {"x": [B, J, 2]}, "real": {"r": [B, J, 2]}}``. The discriminator
    normalises one batch of ``[real; fake]`` (shared batch-norm statistics); the generator phase
    evaluates D the same way without updating D's running averages.

    Returns:
      ``(discriminator_phase, generator_phase)``.
    """
    m = config.method
    distance, gen_loss = float(m.distance), str(m.generator_loss)
    gan.generator_loss_fn(gen_loss)  # an unknown name fails here, not at the first step
    project = functools.partial(
        gan.random_projection, joints=joint_spec(int(m.num_joints)), distance=distance,
        azimuth_deg=tuple(m.azimuth_deg), elevation_deg=tuple(m.elevation_deg),
        recentre=bool(m.recentre_fake),
    )  # fmt: skip

    def fakes(ctx: PhaseContext, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        offsets = ctx.apply("gen", x)
        points = losses.drover_back_project(x, losses.drover_depth(offsets, distance=distance))
        return project(points, ctx.next_key()), offsets

    def d_loss(ctx: PhaseContext, batch: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
        real = batch["real"]["r"]
        fake, _ = fakes(ctx, batch["inputs"]["x"])
        logits = gan.real_logit(ctx.apply("disc", jnp.concatenate([real, fake])))
        return gan.discriminator_objective(logits[: len(real)], logits[len(real) :])

    def g_loss(ctx: PhaseContext, batch: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
        real = batch["real"]["r"]
        fake, offsets = fakes(ctx, batch["inputs"]["x"])
        logits = ctx.apply("disc", jnp.concatenate([real, fake]), update_stats=False)
        lf = gan.real_logit(logits)[len(real) :]
        return gan.generator_objective(lf, offsets, distance=distance, loss=gen_loss)

    return Phase("discriminator", ("disc",), d_loss), Phase("generator", ("gen",), g_loss)


def evaluate(
    predict_3d: Callable[[jax.Array, jax.Array], jax.Array],
    ds: PoseDataset,
    *,
    config: ml_collections.ConfigDict,
) -> dict[str, Any]:
    """Drover's evaluation of a ``predict_3d`` (e.g. a :func:`load_predictor` predictor's
    ``pose3d``) on one split, with predictions and per-example errors: ``jeval.evaluate_3d``
    with 17 joints; with 14, ``jeval.evaluate_3d_joints`` on the generator's joints, both poses
    centred on the hip midpoint.

    Args:
      predict_3d: ``(pose2d_norm [B, 17, 2], confidence [B, 17]) -> [B, 17, 3]``.
      ds: a 3D split.
      config: the Drover config (``method.num_joints``, ``eval.batch_size`` / ``action_key``).
    """
    spec = joint_spec(int(config.method.num_joints))
    kw = {"batch_size": int(config.eval.batch_size), "action_key": config.eval.action_key,
          "keep_predictions": True}  # fmt: skip
    if spec.num_joints == 17:
        return jeval.evaluate_3d(predict_3d, ds, **kw)
    return jeval.evaluate_3d_joints(predict_3d, ds, joints=spec.joints,
                                    centre=spec.layout_centre, **kw)  # fmt: skip


def seed_stages(config: ml_collections.ConfigDict) -> list[str]:
    """Stage (checkpoint directory) names ``seed<s>`` of the trained generators, in order."""
    config = ml_collections.ConfigDict(config)
    seeds = [int(config.seed)] + [int(s) for s in config.ensemble_seeds]
    return [f"seed{s}" for s in seeds]


def load_predictor(
    config: Mapping[str, Any], workdir: str | os.PathLike[str], *, step: int | None = None
) -> inference.Predictor:
    """The trained generator(s) of a Drover work directory (:func:`pipeline`), as :func:`run`
    evaluates them.

    ``predict(pose2d_norm, confidence)["pose3d"]`` ``[B, 17, 3]`` is the 3D of the "learned" /
    "ensemble" (mean of every seed's 3D) row (:func:`jpose.models.drover.drover_pose3d`, in the
    *nominal* ``eval.unit_m``; ``metric_scale=False``). With 14 joints the 3 joints the generator
    does not see are its root point and :func:`evaluate` (not ``jeval.evaluate_3d``) reproduces
    ``results.json``.
    """
    info = dict(inference.read_model_info(workdir))
    if info.get("head_root_distance") is None:  # runs older than model.json: from the data
        cfg = ml_collections.ConfigDict(config)
        train = common.load_datasets(cfg.data)["train_3d"]
        spec = joint_spec(int(cfg.method.num_joints))
        info["head_root_distance"] = head_root_distance(train.pose2d_norm, spec)
    return common.declared_predictor(pipeline, config, workdir, info=info, step=step)


def _protocol_splits(
    datasets: Mapping[str, PoseDataset], config: ml_collections.ConfigDict
) -> dict[str, PoseDataset]:
    splits = eval_datasets(datasets, config)
    test = datasets.get("test")
    if test is not None and "subject" in test.labels and not config.eval.splits:
        s11 = np.asarray(test.labels["subject"]).astype(str) == "S11"
        if s11.any() and not s11.all():
            splits = {"test_s11": test.take(s11, name=f"{test.name}/S11"), **splits}
    return splits


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Train (or resume) Drover's generator/discriminator per seed, evaluate, report.

    Args:
      config: from ``experiments/configs/drover.py``.
      workdir: output directory (checkpoints per seed under ``checkpoints/seed<s>``).

    Returns:
      The results record (``evaluations`` without predictions, ``timings``, ``stages``).
    """
    t_start = time.perf_counter()
    wd = common.setup_workdir(workdir, config)
    datasets = common.load_datasets(config.data)
    host_data, info = training_arrays(datasets, config)
    spec: DroverJoints = info["spec"]
    num_joints = spec.num_joints
    model_info = {
        "layout": skeleton.H36M17.name, "normalization": datasets["train_3d"].normalization,
        "head_root_distance": info["head_root_distance"], "num_joints": num_joints,
        "joints": spec.joints, "seeds": seed_stages(config), "unit_m": float(config.eval.unit_m),
    }  # fmt: skip
    common.write_model_info(wd, experiment="drover", pipeline=pipeline(config, model_info),
                            **model_info)  # fmt: skip
    tc = config.train
    bs = int(tc.batch_size)
    k_steps = int(tc.steps_per_block)
    n_inputs, n_real = len(host_data["inputs"]["x"]), len(host_data["real"]["r"])
    steps_per_epoch = max(1, n_inputs // bs)
    num_steps = common.stage_num_steps(config.stages.gan, steps_per_epoch=steps_per_epoch,
                                       steps_per_block=k_steps)  # fmt: skip

    nets = make_models(config)
    txs = make_optimizers(config, num_steps=num_steps)
    example = jnp.zeros((2, num_joints, 2))  # generator and discriminator inputs alike

    def template(seed: int) -> TrainState:
        keys = jax.random.split(jax.random.key(seed), 2)
        names = ("gen", "disc")
        return create_train_state(
            {n: create_player(nets[n], txs[n], k, example) for n, k in zip(names, keys)}
        )

    d_phase, g_phase = make_phases(config)
    phases = alternating_gan_phases(discriminator=d_phase, generator=g_phase)
    seeds = [int(config.seed)] + [int(s) for s in config.ensemble_seeds]
    declared = [
        harness.Stage(
            f"seed{seed}", phases=phases, num_steps=num_steps, samples_per_step=bs,
            batch_sizes={"inputs": bs, "real": bs}, sampling=str(tc.sampling),
            init=lambda done, seed=seed: template(seed),  # every seed from scratch
            key=jax.random.fold_in(jax.random.key(seed), 1),
        )
        for seed in seeds
    ]  # fmt: skip
    trained = harness.run_stages(declared, host_data, workdir=wd,
                                 options=common.train_options(tc))  # fmt: skip
    stages = trained.stages

    # ---- evaluation: the 3D ground truth is read from here on only -------------------------
    unit_m = float(config.eval.unit_m)
    predictor = functools.partial(
        gan.drover_pose3d, joints=spec, distance=float(config.method.distance),
        head_root_distance=info["head_root_distance"], unit_m=unit_m,
    )  # fmt: skip
    per_seed = [jit_predict(s.state["gen"], predictor) for s in stages.values()]
    trivial = jax.jit(lambda x, c: predictor(None, x, c))

    def ensemble(x: jax.Array, c: jax.Array) -> jax.Array:
        return sum(p(x, c) for p in per_seed) / len(per_seed)

    # (summary row, evaluation name suffix, predictor) evaluated on every split
    rows = [("learned", "", per_seed[0])]
    if len(per_seed) > 1:
        rows = [("ensemble", "", ensemble)]
        rows += [(f"seed {seed}", f" (seed {seed})", p) for seed, p in zip(seeds, per_seed)]
    if config.eval.trivial_baseline:
        rows.append(("trivial baseline", " (trivial baseline)", trivial))
    evaluations: dict[str, Any] = {}
    summary: dict[str, dict[str, float]] = {}
    protocol_splits = _protocol_splits(datasets, config)
    for split, ds in protocol_splits.items():
        summary[split] = {}
        for row, suffix, predict_3d in rows:
            ev = evaluations[split + suffix] = evaluate(predict_3d, ds, config=config)
            summary[split][row] = ev["metrics"]["p_mpjpe"]["action_wise"]
    stage_info = trained.summary()
    timings = {
        "train_wall_s": trained.wall_s,
        "total_wall_s": time.perf_counter() - t_start,
        "stages": stage_info,
    }
    m = config.method
    header = common.ResultsHeader(
        experiment="drover (Drover et al. ECCV-W 2018, 3D from 2D projections alone)",
        dataset=(
            f"{config.data.preset}: generator inputs {datasets['train_3d'].name} 2D "
            f"({n_inputs}); real 2D pool {info['real_pool']} ({n_real}); no 3D labels"
        ),
        source_2d=f"dataset 2D ({datasets['train_3d'].normalization} normalisation)",
        protocol=(
            "headline: P-MPJPE (MPJPE after scale + rigid alignment, the paper's metric), mm, "
            f"{num_joints} joints; Protocol 1 = S11 (test_s11), Protocol 2 = S9+S11 (test) on "
            f"Human3.6M; P1 column uses a nominal {unit_m} m per generator unit (scale-free "
            "method: not meaningful); trivial baseline = constant depth through the same code"
        ),
        options={
            "num_joints": num_joints,
            "distance": float(m.distance),
            "generator_loss": m.generator_loss,
            "virtual_cameras": int(config.real2d.virtual_cameras),
            "width": int(config.model.width),
            "batch_size": bs,
            "steps_per_seed": num_steps,
            "lr_schedule": str(config.stages.gan.lr_schedule),
            "sampling": str(tc.sampling),
            "seeds": seeds,
        },
        checkpoint={k: s.num_steps for k, s in stages.items()},
        model_selection="final checkpoint of every seed (no model selection)",
        notes=(f"training wall time (this invocation) {timings['train_wall_s']:.1f} s",),
    )
    figures = []
    if config.eval.figures:
        learned_only = {k: v for k, v in evaluations.items() if k in summary}
        figures = lifter_figures(wd, learned_only, datasets | protocol_splits,
                                 title="drover")  # fmt: skip
    common.write_results(
        wd,
        header=header,
        evaluations=evaluations,
        extra_tables={"P-MPJPE (mm, action-wise): learned vs trivial baseline": summary},
        extra={"timings": timings, "figures": figures, "summary_p_mpjpe_mm": summary},
    )
    return {
        "evaluations": common.evaluation_record(evaluations),
        "summary_p_mpjpe_mm": summary,
        "timings": timings,
        "figures": figures,
        "stages": stages,
        "real_pool": info["real_pool"],
    }


if __name__ == "__main__":
    common.cli(run, default_config=common.config_path("drover"))
