r"""CameraPose (Yang et al., WACV 2023) end to end: train, evaluate, report.

    python -m experiments.camerapose --workdir=/tmp/cp \
        [--config=experiments/configs/camerapose.py:cmu] [--config.method.gan=False ...]

Stages (Sec. 4.3): ``refine`` (eq. 4), ``warmup`` (lifter, camera branch, PoseAug generator and
discriminators on 2D-3D data), ``end2end`` (per iteration: D eqs. 12-15, G, lifter eq. 16,
2D-only eq. 17). Library: ``jpose.{data,models,inference}.camerapose``,
:func:`jpose.augment.poseaug_augment`. Deviations from the paper: BUILD_NOTES.md.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import pathlib
import time
from collections.abc import Mapping
from typing import Any

import jax
import ml_collections
import numpy as np
import optax

from experiments import common
from jpose import augment, inference, skeleton
from jpose import models as M
from jpose import training as T
from jpose.data import PoseDataset
from jpose.data import camerapose as cpdata
from jpose.inference import camerapose as cpinf
from jpose.inference import pipelines
from jpose.models import camerapose as CP
from jpose.models.poseaug import poseaug_players
from jpose.training import stages as harness

__all__ = ["LAYOUT", "Setup", "prepare", "init_players", "stage_state", "make_phases",
           "make_predict", "run"]  # fmt: skip

LAYOUT = skeleton.H36M17
STAGES = ("refine", "warmup", "end2end")


@dataclasses.dataclass
class Setup:
    """What the phases and stages need besides a training state (``models``: static, created once
    so jit caches stay valid; ``priors``: camera priors and ``lifter_*_stats``)."""

    config: ml_collections.ConfigDict
    datasets: dict[str, PoseDataset]
    train_arrays: dict[str, dict[str, np.ndarray]]
    models: dict[str, M.Model]
    use_2d_only: bool
    priors: dict[str, Any]


def inference_networks(config: ml_collections.ConfigDict, priors: Mapping[str, Any]
                       ) -> dict[str, dict[str, Any]]:  # fmt: skip
    """:func:`jpose.inference.camerapose.network_specs` of the networks ``config.method`` names."""
    mc = config.model
    return cpinf.network_specs(
        LAYOUT.num_joints, lifter=mc.lifter.to_dict(), priors=priors,
        refine=mc.refine.to_dict() if config.method.refine else None,
        camera=mc.camera.to_dict() if config.method.camera else None,
    )  # fmt: skip


def build_models(config: ml_collections.ConfigDict, priors: Mapping[str, Any]
                 ) -> dict[str, M.Model]:  # fmt: skip
    """The players: :func:`inference_networks` and, with ``method.gan``, PoseAug's G and Ds."""
    mc = config.model
    models = {n: pipelines.build_network(s) for n, s in inference_networks(config, priors).items()}
    if config.method.gan:
        models |= poseaug_players(
            LAYOUT, noise_dim=mc.generator.noise_dim, generator_width=mc.generator.width,
            num_stages=mc.generator.num_stages, d2d_width=mc.d2d.width, d3d_width=mc.d3d.width,
            d3d_bottleneck=mc.d3d.bottleneck,
        )  # fmt: skip
    return models


def pipeline(config: ml_collections.ConfigDict, info: Mapping[str, Any]) -> dict[str, Any]:
    """The ``model.json["pipeline"]`` entry from its ``camera_priors`` and ``normalization``."""
    return cpinf.pipeline_spec(
        inference_networks(config, info["camera_priors"]), stages=STAGES, layout=LAYOUT.name,
        camera_inputs=config.model.camera.inputs, min_depth=config.loss.min_depth,
        normalization=str(info["normalization"]),
    )  # fmt: skip


def relative_depth_arrays(config: ml_collections.ConfigDict, normalization: str, *, use_2d: bool
                          ) -> dict[str, np.ndarray]:  # fmt: skip
    """:func:`jpose.data.camerapose.relative_depth_arrays` of ``config.rd`` (``loss.lambda_rd``);
    ValueError without the camera branch and 2D-only data (``use_2d``)."""
    if not (config.method.camera and use_2d):
        raise ValueError(
            "loss.lambda_rd > 0 needs the camera branch (method.camera) and 2D-only data: the "
            "relative-depth loss acts on absolute depths in stage 3's 2D-only phase"
        )
    return cpdata.relative_depth_arrays(normalization, seed=int(config.seed), **config.rd.to_dict())


def prepare(config: ml_collections.ConfigDict) -> Setup:
    """Load the data, derive camera priors and build the models (no parameters yet)."""
    datasets = common.load_datasets(config.data)
    train3d = datasets["train_3d"]
    train2d = datasets.get("train_2d") if config.method.camera else None
    use_2d = train2d is not None
    arrays = cpdata.training_arrays(train3d, train2d, root=LAYOUT.root)
    if config.loss.lambda_rd > 0:
        arrays["rd"] = relative_depth_arrays(config, train3d.normalization, use_2d=use_2d)
    stats = M.lifter_stats(train3d.pose2d_norm, train3d.pose3d_root_relative)
    priors = {**cpdata.camera_priors(arrays["3d"]), **{f"lifter_{k}": v for k, v in stats.items()}}
    return Setup(config=config, datasets=datasets, train_arrays=arrays, priors=priors,
                 models=build_models(config, priors), use_2d_only=use_2d)  # fmt: skip


def init_players(setup: Setup, key: jax.Array, *, abstract: bool = False
                 ) -> dict[str, tuple[Any, Any]]:  # fmt: skip
    """:func:`jpose.models.camerapose.init_players`: ``{player: (params, batch_stats)}``; with
    ``abstract``, a zero template for restoring a checkpoint."""
    mc = setup.config.model
    return CP.init_players(setup.models, key, abstract=abstract, layout=LAYOUT,
                           camera_inputs=mc.camera.inputs, d2d_kind=mc.d2d.input)  # fmt: skip


def stage_state(
    setup: Setup, stage: str, variables: Mapping[str, tuple[Any, Any]], *, steps_per_epoch: int
) -> T.TrainState:
    """A fresh :class:`TrainState` for ``stage`` from ``variables``: the players its phases train
    get ``clip -> adam`` (the stage's schedule; G, D ``gan.lr``), the others ``set_to_zero``."""
    if stage not in STAGES:
        raise ValueError(f"unknown CameraPose stage {stage!r}; known: {STAGES}")
    scfg = setup.config.stages[f"stage{STAGES.index(stage) + 1}"]
    sched = T.schedule_from_config(scfg, steps_per_epoch=steps_per_epoch)
    trainable = {n for p in make_phases(setup, stage) for n in p.players}
    clip, players = setup.config.train.clip_norm, {}
    for name, model in setup.models.items():
        params, stats = variables[name]
        lr = setup.config.gan.lr if name in ("generator", "d2d", "d3d") else sched
        tx = T.clipped(optax.adam(lr), clip) if name in trainable else optax.set_to_zero()
        players[name] = T.PlayerState(
            params=params, batch_stats=stats, opt_state=tx.init(params), model=model, tx=tx
        )
    return T.create_train_state(players)


def _noise_options(config: ml_collections.ConfigDict) -> dict[str, float]:
    return {k: float(config.noise[k]) for k in augment.DETECTION_NOISE_OPTIONS}


def _net(setup: Setup, apply: Any) -> M.CameraPoseForward:
    """The forward pass (:class:`jpose.models.CameraPoseForward`) on ``apply(player, *xs)``."""
    return M.CameraPoseForward(apply, has_refine="refine" in setup.models,
                               camera_inputs=setup.config.model.camera.inputs,
                               has_camera="camera" in setup.models)  # fmt: skip


def make_phases(setup: Setup, stage: str) -> tuple[T.Phase, ...]:
    """One iteration of ``stage``: ordered phases on batches ``3d``, ``2d`` (2D-only), ``rd``."""
    config, lo, g = setup.config, setup.config.loss, setup.config.gan
    has, use_2d = setup.models.keys(), setup.use_2d_only
    noise = _noise_options(config) if config.noise.enabled else None

    def net(ctx: T.PhaseContext, **apply_options: Any) -> M.CameraPoseForward:
        return _net(setup, functools.partial(ctx.apply, **apply_options))

    def noisy(key_fn: Any) -> Any:  # GT 2D through the detection-noise model (noise.enabled)
        def inputs(x: jax.Array, c: jax.Array) -> tuple[jax.Array, jax.Array]:
            key = key_fn()  # drawn when applied, with or without noise
            return augment.detection_noise(key, x, c, **noise) if noise is not None else (x, c)

        return inputs

    def d2d(ctx: T.PhaseContext) -> Any:  # D_2D scores [N, 1] of 2D in the camera branch's frame
        return lambda x: ctx.apply("d2d", CP.d2d_input(x, kind=config.model.d2d.input))

    def refine_loss(ctx, batch):  # stage 1, eq. 4
        parts = [batch["3d"]] + ([batch["2d"]] if use_2d else [])
        return CP.refinement_objective(net(ctx), parts, inputs=noisy(ctx.next_key))

    if stage == "refine":
        return (T.Phase("refine", ("refine",), refine_loss),)

    # the refinement network, frozen after stage 1, is trained again with method.finetune_refine
    refine = "refine" in has and stage == "end2end" and bool(config.method.finetune_refine)
    lifter_players = tuple(p for p in ("lifter", "camera") if p in has)
    lifter_players += ("refine",) if refine else ()
    options = {"train_refine": refine, "reproj_scale": lo.reproj_scale, "min_depth": lo.min_depth}
    aug_options = {k: g[k] for k in ("bl_tanh_limit", "max_angle", "translation_limit",
                                     "depth_log_limit", "valid_bound")}  # fmt: skip

    def poseaug(ctx, b3, *, grad):  # BA -> BL -> RT, projected with the sample's GT intrinsics
        generator = functools.partial(ctx.apply, "generator", update_stats=grad)
        return augment.poseaug_augment(generator, b3["pose3d"], b3["root"], focal=b3["focal"],
                                       center=b3["center"], layout=LAYOUT,
                                       **aug_options)  # fmt: skip

    def discriminator_loss(ctx, batch):  # eqs. 12-15
        def reproject(b2):  # the 2D-only samples' re-projections (fakes of eq. 13)
            n = net(ctx, train=False)
            x, c = noisy(lambda: ctx.key_for("weak_inputs"))(b2["pose2d_norm"], b2["confidence"])
            return n.reproject(x, c, b2["frame_scale"], min_depth=lo.min_depth)

        weak = batch["2d"] if use_2d and stage == "end2end" else None
        return CP.discriminator_objective(
            d2d(ctx), functools.partial(ctx.apply, "d3d"), batch["3d"],
            poseaug(ctx, batch["3d"], grad=False), weak_batch=weak, reproject=reproject,
            accuracy=T.discriminator_accuracy,
        )  # fmt: skip

    def generator_loss(ctx, batch):  # against the updated D; emits (x*, X*, t*) for the lifter
        aug = poseaug(ctx, batch["3d"], grad=True)
        ctx.emit("aug", {k: aug[k] for k in ("x", "pose3d", "root", "valid")})
        weights = ("lambda_adv_2d", "lambda_adv_3d", "lambda_range", "ba_range_target",
                   "ba_range_width", "bl_range_limit")  # fmt: skip
        return CP.generator_objective(d2d(ctx), functools.partial(ctx.apply, "d3d"), batch["3d"],
                                      aug, **{k: g[k] for k in weights})  # fmt: skip

    def lifter_loss(ctx, batch):  # eq. 16 on real + augmented pairs
        aug = ctx.outputs["aug"] if "generator" in has else None
        return CP.supervised_objective(
            net(ctx), batch["3d"], augmented=aug, inputs=noisy(lambda: ctx.key_for("inputs")),
            aug_weight=g.aug_weight, lambda_cam=lo.lambda_cam, lambda_2d_phi=lo.lambda_2d_phi,
            lambda_3d=lo.lambda_3d, lambda_ref_phi=lo.lambda_ref_phi, **options,
        )  # fmt: skip

    def weak2d_loss(ctx, batch):  # eq. 17 (+ D_2D on the re-projections, + WSP's eq. 9)
        # weak2d_bn_stats=False: the running statistics are those of the 2D-3D batches
        n = net(ctx, update_stats=None if config.train.weak2d_bn_stats else False)
        total, metrics = CP.weak_objective(
            n, batch["2d"], inputs=noisy(lambda: ctx.key_for("weak_inputs")),
            **{k: lo[k] for k in ("lambda_2d_phi_prime", "lambda_ref_phi_prime")},
            discriminator=d2d(ctx) if "d2d" in has else None, lambda_adv=lo.lambda_adv_weak2d,
            **options,
        )  # fmt: skip
        if "rd" in batch:
            # the pairs (small, off-centre people) must not move the batch-norm statistics
            rd_loss, rd_acc = CP.relative_depth_objective(
                net(ctx, update_stats=False), batch["rd"], temperature=lo.rd_temperature,
                root_only=lo.rd_root_only,
            )  # fmt: skip
            total = total + lo.lambda_rd * rd_loss
            metrics["rd_loss"], metrics["rd_acc"] = rd_loss, rd_acc
        return total, metrics

    phases = {"lifter": T.Phase("lifter", lifter_players, lifter_loss)}
    if "generator" in has:
        # PoseAug updates D_2D / D_3D every d_every-th iteration (its df = 2)
        phases["discriminator"] = T.Phase("discriminator", ("d2d", "d3d"), discriminator_loss,
                                          every=int(g.d_every))  # fmt: skip
        phases["generator"] = T.Phase("generator", ("generator",), generator_loss)
    if stage == "end2end" and use_2d:
        phases["weak2d"] = T.Phase("weak2d", lifter_players, weak2d_loss)
    return T.alternating_gan_phases(**phases)


def make_predict(setup: Setup, state: T.TrainState | Mapping[str, Any]) -> Any:
    """:func:`jpose.models.camerapose_predict` of a training state or ``{player: variables}``:
    ``predict(pose2d_norm, confidence[, frame_scale])`` -> ``{"pose3d", "refined", ...}``."""
    if isinstance(state, T.TrainState):
        state = {n: p.variables() for n, p in state.players.items()}
    models = {n: setup.models[n] for n in ("refine", "lifter", "camera") if n in setup.models}
    return M.camerapose_predict(models, {n: state[n] for n in models},
                                camera_inputs=setup.config.model.camera.inputs,
                                min_depth=float(setup.config.loss.min_depth))  # fmt: skip


def load_predictor(config: Mapping[str, Any], workdir: str | pathlib.Path, *,
                   step: int | None = None) -> inference.Predictor:  # fmt: skip
    """The :func:`pipeline` of a run whose ``model.json`` lacks it; missing camera priors come from
    ``results.json`` or, for runs older than ``model.json``, the training data."""
    config = ml_collections.ConfigDict(config)
    info = dict(inference.read_model_info(workdir))
    results = pathlib.Path(workdir) / "results.json"
    if info.get("camera_priors") is None and results.is_file():
        info["camera_priors"] = json.loads(results.read_text()).get("camera_priors")
    if info.get("camera_priors") is None:
        needed = config.method.camera or config.model.lifter.get("standardize")
        info["camera_priors"] = prepare(config).priors if needed else {}
    return common.declared_predictor(pipeline, config, workdir, info=info, step=step)


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Train the three stages (resuming a previous run), evaluate, write results.json / .md and
    the figures; returns the ``results.json`` record (``"stages"``: steps and resume info)."""
    t_start = time.perf_counter()
    wd = common.setup_workdir(workdir, config)
    setup = prepare(config)
    data, tc, ec = setup.datasets, config.train, config.eval
    info = {"layout": LAYOUT.name, "normalization": data["train_3d"].normalization,
            "camera_priors": setup.priors}  # fmt: skip
    common.write_model_info(wd, experiment="camerapose", pipeline=pipeline(config, info), **info)
    base_key = jax.random.key(config.seed)
    first_stage = "refine" if "refine" in setup.models else "warmup"
    resuming = any(p.name.isdigit() for p in (wd / "checkpoints" / first_stage).glob("*"))
    # a run whose first stage has a checkpoint restores everything: shape-only initialisation
    variables = init_players(setup, jax.random.fold_in(base_key, 10_000), abstract=resuming)
    options = common.train_options(tc)
    steps_per_epoch = max(1, len(data["train_3d"]) // int(tc.batch_size))
    batch_sizes = {"3d": int(tc.batch_size), "2d": int(tc.batch_size_2d),
                   "rd": int(tc.batch_size_rd)}  # fmt: skip

    def declare(index: int, stage: str) -> harness.Stage:
        with_2d = setup.use_2d_only and stage in ("refine", "end2end")
        names = ["3d"] + [n for n in ("2d", "rd") if with_2d and n in setup.train_arrays]
        skip = stage == "refine" and "refine" not in setup.models
        num_steps = 0 if skip else common.stage_num_steps(
            config.stages[f"stage{index + 1}"], steps_per_epoch=steps_per_epoch,
            steps_per_block=options.steps_per_block)  # fmt: skip

        def init(done: Mapping[str, T.TrainState]) -> T.TrainState:
            last = next(reversed(done.values()), None)
            v = variables if last is None else {
                n: (p.params, p.batch_stats) for n, p in last.players.items()}  # fmt: skip
            return stage_state(setup, stage, v, steps_per_epoch=steps_per_epoch)

        return harness.Stage(
            stage, phases=make_phases(setup, stage), num_steps=num_steps,
            batch_sizes={n: batch_sizes[n] for n in names}, init=init,
            key=jax.random.fold_in(base_key, index), samples_per_step=int(tc.batch_size),
        )  # fmt: skip

    trained = harness.run_stages([declare(i, s) for i, s in enumerate(STAGES)],
                                setup.train_arrays, workdir=wd, options=options)  # fmt: skip
    state = trained.state
    if state is None:  # every stage had 0 steps
        state = stage_state(setup, "end2end", variables, steps_per_epoch=steps_per_epoch)

    has_refine, has_camera = "refine" in setup.models, "camera" in setup.models
    predict = make_predict(setup, state)
    evaluations, tables, noisy = cpinf.evaluate(
        predict, data, common.eval_splits(data, ec.splits), batch_size=ec.batch_size,
        action_key=ec.action_key, noise_seed=config.noise.eval_seed,
        noise=_noise_options(config) if ec.noisy_input else None, has_camera=has_camera,
    )  # fmt: skip
    figures = cpinf.figures(
        predict, data, evaluations, noisy, workdir=wd, samples=int(ec.figure_samples),
        has_refine=has_refine, has_camera=has_camera) if ec.figures else {}  # fmt: skip
    written = common.write_figures(wd, figures)
    weak = f"{data['train_2d'].name} (2D only)" if setup.use_2d_only else "2D-only data not used"
    source = "ground-truth 2D"
    if config.data.preset == "h36m":
        source = f"Human3.6M 2D source '{config.data.h36m.source}'; " + source
    steps = {k: r.num_steps for k, r in trained.stages.items()}
    header = common.ResultsHeader(
        experiment="CameraPose (Yang et al. WACV 2023)",
        dataset=f"{config.data.preset}: {data['train_3d'].name} (2D-3D); {weak}",
        source_2d=f"{source}; '+noise' rows: the same through the detection-noise model "
        f"(jpose.augment.detection_noise, {_noise_options(config)}, seed {config.noise.eval_seed})",
        protocol="P1 MPJPE, P2 P-MPJPE, N-MPJPE (mm, root-relative); 2D re-projection on 2D-only "
        "data (normalised units / pixels)",
        options={**config.method.to_dict(), "camera+2D-only": setup.use_2d_only,
                 "lifter_width": config.model.lifter.width, "batch": tc.batch_size,
                 "steps": steps, "noise": config.noise.enabled, "seed": config.seed},
        checkpoint=steps, model_selection="the last stage's final checkpoint (no selection)",
        notes=["CPU-scaled schedule (steps per stage), not the paper's 100/10/75 epochs"
               if any(config.stages[s].steps for s in config.stages) else "paper schedule"],
    )  # fmt: skip
    json_path, _ = common.write_results(
        wd, header=header, evaluations=evaluations, extra_tables=tables,
        extra={"stages": trained.summary(), "timings": trained.timings(t_start),
               "figures": written, "camera_priors": setup.priors},
    )  # fmt: skip
    return json.loads(json_path.read_text())


if __name__ == "__main__":
    common.cli(run, default_config=common.config_path("camerapose"))
