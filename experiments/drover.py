"""Drover et al. (ECCV-W 2018): 3D pose learned from 2D projections alone.

``python -m experiments.drover --workdir=DIR [--config=experiments/configs/drover.py:PRESET]``

Paper mapping (:mod:`jpose.models.drover`, ``jpose.losses.drover_*``): root-centred 2D scaled to
an average head-root distance ``1 / d`` (sec. 3.1); generator ``G`` -> depth offsets, depth
``max(0, d + o) + 1``, back projection (eq. 2), random projection (sec. 3); discriminator ``D``
on real 2D (drawn independently of ``G``'s inputs: training 2D, optionally 2D-only data and
virtual-camera views of the training 3D, sec. 4.1) vs the projections, GAN loss of eq. 4, one D
then one G update per iteration; ``ensemble_seeds`` average generators (sec. 4.3). No 3D label
reaches the generator's loss (:func:`training_arrays`). Evaluation: P-MPJPE (the paper's
metric), N-MPJPE, nominal-unit P1 (Human3.6M Protocol 1 = S11 ``test_s11``, Protocol 2 = S9 +
S11 ``test``), beside the trivial baseline (constant depth)."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from experiments import common
from jpose import inference, losses, models, skeleton
from jpose.data import PoseDataset
from jpose.evaluation import jit_predict
from jpose.inference import pipelines
from jpose.models import drover as gan
from jpose.models.drover import DroverJoints, head_root_distance, normalize_source
from jpose.training import Phase, PhaseContext, clipped, create_player, create_train_state
from jpose.training import stages as harness
from jpose.training.state import TrainState
from jpose.training.steps import alternating_gan_phases

__all__ = [
    "training_arrays",
    "make_models",
    "make_optimizers",
    "make_phases",
    "seed_stages",
    "evaluate",
    "load_predictor",
    "run",
]


def training_arrays(
    datasets: Mapping[str, PoseDataset], config: ml_collections.ConfigDict
) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, Any]]:
    """The training data, 2D only: ``({"inputs": {"x": [N, J, 2]}, "real": {"r": [M, J, 2]}},
    info)`` with ``info`` the inputs' ``head_root_distance``, the joints and the real pool's
    composition. No 3D array is in the data (3D only renders the virtual views, unpaired)."""
    spec = DroverJoints.of(int(config.method.num_joints))
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
    disc = models.drover_discriminator(width=int(mc.width), num_blocks=int(mc.discriminator_blocks))
    return {"gen": pipelines.build_network(generator_spec(config)), "disc": disc}


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
    """The ``model.json["pipeline"]`` entry (:mod:`jpose.inference.pipelines`): all generators."""
    stages, nj = seed_stages(config), int(config.method.num_joints)
    unit_m = float(config.eval.unit_m)
    description = (f"Drover et al. (ECCV-W 2018) generator, {nj} joints"
                   + (f", ensemble of {len(stages)} seeds" if len(stages) > 1 else "")
                   + f"; scale-free (nominal {unit_m} m per unit)")  # fmt: skip
    return pipelines.pipeline_spec(
        "drover", networks={"gen": generator_spec(config)}, stages=stages,
        options={"num_joints": nj, "distance": float(config.method.distance),
                 "head_root_distance": float(info["head_root_distance"]), "unit_m": unit_m},
        predictor={"experiment": "drover", "layout": skeleton.H36M17.name,
                   "normalization": str(info["normalization"]), "metric_scale": False,
                   "description": description},
    )  # fmt: skip


def make_optimizers(
    config: ml_collections.ConfigDict, *, num_steps: int
) -> dict[str, optax.GradientTransformation]:
    """Adam for ``gen`` and ``disc`` (paper: 2e-4 both; ``stages.gan.b1`` = beta1), learning rate
    ``stages.gan.lr_schedule``: ``constant`` (the paper) or ``linear`` (ours: decay to 0 over
    ``num_steps``, which damps the late G/D oscillation so the final checkpoint is stable)."""
    tc, gc = config.train, config.stages.gan
    schedule = str(gc.lr_schedule)
    if schedule not in ("constant", "linear"):
        raise ValueError(f"stages.gan.lr_schedule must be constant|linear, got {schedule!r}")

    def adam(lr: float) -> optax.GradientTransformation:
        rate = lr if schedule == "constant" else optax.linear_schedule(lr, 0.0, max(1, num_steps))
        return clipped(optax.adam(rate, b1=float(gc.b1)), tc.clip_norm)

    return {"gen": adam(float(gc.lr_generator)), "disc": adam(float(gc.lr_discriminator))}


def make_phases(config: ml_collections.ConfigDict) -> tuple[Phase, Phase]:
    """``(discriminator_phase, generator_phase)``: D first, then G against the updated D, on
    batches ``{"inputs": {"x": [B, J, 2]}, "real": {"r": [B, J, 2]}}``. D normalises one batch of
    ``[real; fake]`` (shared batch-norm statistics); G's phase evaluates D the same way without
    updating D's running averages."""
    m = config.method
    distance, gen_loss = float(m.distance), str(m.generator_loss)
    gan.generator_loss_fn(gen_loss)  # an unknown name fails here, not at the first step
    project = functools.partial(
        gan.random_projection, joints=DroverJoints.of(int(m.num_joints)), distance=distance,
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
    """Drover's evaluation of ``predict_3d`` ``(pose2d_norm [B, 17, 2], confidence) -> [B, 17, 3]``
    (e.g. a :func:`load_predictor` predictor's ``pose3d``) on one split, predictions kept: with
    14 joints on the generator's joints only, both poses centred on the hip midpoint."""
    spec = DroverJoints.of(int(config.method.num_joints))
    if spec.num_joints == 17:
        return common.evaluate(predict_3d, ds, config)
    return common.evaluate(predict_3d, ds, config, joints=spec.joints, centre=spec.layout_centre)


def seeds(config: Mapping[str, Any]) -> list[int]:
    """The seeds of the trained generators, in order: ``seed``, then ``ensemble_seeds``."""
    return [int(s) for s in (config["seed"], *config["ensemble_seeds"])]


def seed_stages(config: Mapping[str, Any]) -> list[str]:
    """Stage (checkpoint directory) names ``seed<s>`` of the trained generators, in order."""
    return [f"seed{s}" for s in seeds(config)]


def load_predictor(
    config: Mapping[str, Any], workdir: str | os.PathLike[str], *, step: int | None = None
) -> inference.Predictor:
    """The trained generator(s) of a Drover work directory (:func:`pipeline`):
    ``predict(pose2d_norm, confidence)["pose3d"]`` ``[B, 17, 3]`` is the 3D of the "learned" /
    "ensemble" (mean of the seeds' 3D) row (:func:`jpose.models.drover.drover_pose3d`, in the
    *nominal* ``eval.unit_m``). With 14 joints the 3 unseen joints are the generator's root
    point and :func:`evaluate` (not ``jeval.evaluate_3d``) reproduces ``results.json``."""
    info = dict(inference.read_model_info(workdir))
    if info.get("head_root_distance") is None:  # runs older than model.json: from the data
        cfg = ml_collections.ConfigDict(config)
        train = common.load_datasets(cfg.data)["train_3d"]
        spec = DroverJoints.of(int(cfg.method.num_joints))
        info["head_root_distance"] = head_root_distance(train.pose2d_norm, spec)
    return common.declared_predictor(pipeline, config, workdir, info=info, step=step)


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Train (or resume) Drover's generator/discriminator per seed (config:
    ``experiments/configs/drover.py``; checkpoints ``checkpoints/seed<s>``), evaluate, report;
    returns the results record plus ``real_pool``."""
    t_start, wd, datasets, _ = common.start(config, workdir, holdout=False)
    host_data, info = training_arrays(datasets, config)
    spec: DroverJoints = info["spec"]
    unit_m = float(config.eval.unit_m)
    model_info = {
        "layout": skeleton.H36M17.name, "normalization": datasets["train_3d"].normalization,
        "head_root_distance": info["head_root_distance"], "num_joints": spec.num_joints,
        "joints": spec.joints, "seeds": seed_stages(config), "unit_m": unit_m,
    }  # fmt: skip
    common.write_model_info(wd, experiment="drover", pipeline=pipeline(config, model_info),
                            **model_info)  # fmt: skip
    tc = config.train
    bs = int(tc.batch_size)
    n_inputs, n_real = len(host_data["inputs"]["x"]), len(host_data["real"]["r"])
    num_steps = common.stage_num_steps(config.stages.gan, steps_per_epoch=max(1, n_inputs // bs),
                                       steps_per_block=int(tc.steps_per_block))  # fmt: skip
    nets = make_models(config)
    txs = make_optimizers(config, num_steps=num_steps)
    example = jnp.zeros((2, spec.num_joints, 2))  # generator and discriminator inputs alike

    def init(seed: int) -> TrainState:  # every seed from scratch
        keys = jax.random.split(jax.random.key(seed), 2)
        players = {n: create_player(nets[n], txs[n], k, example) for n, k in zip(nets, keys)}
        return create_train_state(players)

    d_phase, g_phase = make_phases(config)
    phases = alternating_gan_phases(discriminator=d_phase, generator=g_phase)
    run_seeds = seeds(config)
    declared = [
        harness.Stage(
            f"seed{seed}", phases=phases, num_steps=num_steps, samples_per_step=bs,
            batch_sizes={"inputs": bs, "real": bs}, sampling=str(tc.sampling),
            init=lambda done, seed=seed: init(seed),
            key=jax.random.fold_in(jax.random.key(seed), 1),
        )
        for seed in run_seeds
    ]  # fmt: skip
    trained = harness.run_stages(declared, host_data, workdir=wd,
                                 options=common.train_options(tc))  # fmt: skip

    # ---- evaluation: the 3D ground truth is read from here on only -------------------------
    predictor = functools.partial(
        gan.drover_pose3d, joints=spec, distance=float(config.method.distance),
        head_root_distance=info["head_root_distance"], unit_m=unit_m,
    )  # fmt: skip
    per_seed = [jit_predict(s.state["gen"], predictor) for s in trained.stages.values()]
    # (summary row, evaluation name suffix, predictor) evaluated on every split
    rows = [("learned", "", per_seed[0])]
    if len(per_seed) > 1:
        rows = [("ensemble", "", lambda x, c: sum(p(x, c) for p in per_seed) / len(per_seed))]
        rows += [(f"seed {seed}", f" (seed {seed})", p) for seed, p in zip(run_seeds, per_seed)]
    if config.eval.trivial_baseline:
        trivial = jax.jit(lambda x, c: predictor(None, x, c))
        rows.append(("trivial baseline", " (trivial baseline)", trivial))
    splits = common.eval_datasets(datasets, config)
    test = datasets.get("test")  # Human3.6M test = S9 + S11; Protocol 1 = its S11 part (first)
    if test is not None and "subject" in test.labels and not config.eval.splits:
        s11 = np.asarray(test.labels["subject"]).astype(str) == "S11"
        if s11.any() and not s11.all():
            splits = {"test_s11": test.take(s11, name=f"{test.name}/S11"), **splits}
    evaluations, summary = {}, {}
    for split, ds in splits.items():
        summary[split] = {}
        for row, suffix, predict_3d in rows:
            ev = evaluations[split + suffix] = evaluate(predict_3d, ds, config=config)
            summary[split][row] = ev["metrics"]["p_mpjpe"]["action_wise"]
    header = dict(
        experiment="drover (Drover et al. ECCV-W 2018, 3D from 2D projections alone)",
        dataset=(f"{config.data.preset}: generator inputs {datasets['train_3d'].name} 2D "
                 f"({n_inputs}); real 2D pool {info['real_pool']} ({n_real}); no 3D labels"),
        protocol=("headline: P-MPJPE (MPJPE after scale + rigid alignment, the paper's metric), "
                  f"mm, {spec.num_joints} joints; Protocol 1 = S11 (test_s11), Protocol 2 = "
                  f"S9+S11 (test) on Human3.6M; P1 column uses a nominal {unit_m} m per "
                  "generator unit (scale-free method: not meaningful); trivial baseline = "
                  "constant depth through the same code"),
        options={
            # in the order of the results' options line
            **common.fields(config, "method.num_joints", "method.distance", "method.generator_loss",
                            "real2d.virtual_cameras", "model.width", "train.batch_size"),
            "steps_per_seed": num_steps,
            **common.fields(config, "stages.gan.lr_schedule", "train.sampling"),
            "seeds": run_seeds,
        },
        model_selection="final checkpoint of every seed (no model selection)",
    )  # fmt: skip
    record = common.finish(
        wd, config, trained, t_start, header=header, evaluations=evaluations,
        datasets=datasets | splits, title="drover",
        figure_evaluations={k: evaluations[k] for k in summary},  # learned / ensemble rows only
        extra_tables={"P-MPJPE (mm, action-wise): learned vs trivial baseline": summary},
        summary_p_mpjpe_mm=summary,
    )  # fmt: skip
    return {**record, "real_pool": info["real_pool"]}


if __name__ == "__main__":
    common.cli(run, default_config=common.config_path("drover"))
