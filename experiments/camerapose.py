r"""CameraPose (Yang et al., WACV 2023) end to end: train, evaluate, report.

    python -m experiments.camerapose --workdir=/tmp/cp_default            # synthetic demo
    python -m experiments.camerapose --config=experiments/configs/camerapose.py:cmu \
        --workdir=/tmp/cp_cmu [--config.method.gan=False ...]

Stages (Sec. 4.3, ``config.stages``): ``refine`` (refinement network, eq. 4), ``warmup`` (lifter,
camera branch, PoseAug generator and discriminators on 2D-3D data), ``end2end`` (per iteration: D
step eqs. 12-15, G step, lifter step eq. 16 on real + augmented pairs, 2D-only step eq. 17). The
library: :mod:`jpose.data.camerapose`, :mod:`jpose.models.camerapose` (networks, objectives),
:func:`jpose.augment.poseaug_augment`, :mod:`jpose.inference.camerapose` (pipeline, evaluation).
Deviations: BUILD_NOTES.md ("Experiments: shared harness and deviations", "Fidelity fixes").
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import pathlib
import time
from collections.abc import Collection, Mapping
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
from jpose.training import discriminator_accuracy
from jpose.training import stages as harness

__all__ = [
    "LAYOUT",
    "Setup",
    "prepare",
    "init_players",
    "stage_state",
    "make_phases",
    "make_predict",
    "run",
]

LOGGER = logging.getLogger("jpose.experiments.camerapose")
LAYOUT = skeleton.H36M17
STAGES = ("refine", "warmup", "end2end")


@dataclasses.dataclass
class Setup:
    """What the phases and stages need besides a training state (``models`` are static, created
    once so jit caches stay valid; ``priors``: camera priors and ``lifter_*_stats``)."""

    config: ml_collections.ConfigDict
    datasets: dict[str, PoseDataset]
    train_arrays: dict[str, dict[str, np.ndarray]]
    models: dict[str, M.Model]
    use_2d_only: bool
    priors: dict[str, Any]


def inference_networks(config: ml_collections.ConfigDict, priors: Mapping[str, Any]
                       ) -> dict[str, dict[str, Any]]:  # fmt: skip
    """:func:`jpose.inference.camerapose.network_specs` of the networks ``config.method`` names;
    ``priors``: the camera priors and lifter statistics of :func:`prepare`."""
    mc, method = config.model, config.method
    return cpinf.network_specs(
        LAYOUT.num_joints, lifter=mc.lifter.to_dict(), priors=priors,
        refine=mc.refine.to_dict() if method.refine else None,
        camera=mc.camera.to_dict() if method.camera else None,
    )  # fmt: skip


def build_models(config: ml_collections.ConfigDict, priors: Mapping[str, Any]
                 ) -> dict[str, M.Model]:  # fmt: skip
    """The players named by ``config.method`` (static :class:`jpose.models.Model` objects): the
    :func:`inference_networks` and, with ``method.gan``, the generator and discriminators."""
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
    """The ``model.json["pipeline"]`` entry (what :func:`load_predictor` restores) from the other
    ``model.json`` fields (``camera_priors``, ``normalization``)."""
    return cpinf.pipeline_spec(
        inference_networks(config, info["camera_priors"]), stages=STAGES, layout=LAYOUT.name,
        camera_inputs=config.model.camera.inputs, min_depth=config.loss.min_depth,
        normalization=str(info["normalization"]),
    )  # fmt: skip


def relative_depth_arrays(config: ml_collections.ConfigDict, normalization: str, *, use_2d: bool
                          ) -> dict[str, np.ndarray]:  # fmt: skip
    """Relative-depth pairs of ``config.rd`` for the auxiliary WSP loss (``loss.lambda_rd > 0``,
    :func:`jpose.data.camerapose.relative_depth_arrays`); ValueError where it cannot be used."""
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
    use_2d = bool(config.method.camera) and "train_2d" in datasets
    arrays = cpdata.training_arrays(train3d, datasets["train_2d"] if use_2d else None,
                                    root=LAYOUT.root)  # fmt: skip
    if config.loss.lambda_rd > 0:
        arrays["rd"] = relative_depth_arrays(config, train3d.normalization, use_2d=use_2d)
    stats = M.lifter_stats(train3d.pose2d_norm, train3d.pose3d_root_relative)
    priors = {**cpdata.camera_priors(arrays["3d"]), **{f"lifter_{k}": v for k, v in stats.items()}}
    models = build_models(config, priors)
    return Setup(config=config, datasets=datasets, train_arrays=arrays, models=models,
                 use_2d_only=use_2d, priors=priors)  # fmt: skip


def init_players(setup: Setup, key: jax.Array, *, abstract: bool = False
                 ) -> dict[str, tuple[Any, Any]]:  # fmt: skip
    """Initial ``{player: (params, batch_stats)}`` (:func:`jpose.models.camerapose.init_players`;
    with ``abstract``, a zero template for restoring a checkpoint)."""
    mc = setup.config.model
    return CP.init_players(setup.models, key, abstract=abstract, layout=LAYOUT,
                           camera_inputs=mc.camera.inputs, d2d_kind=mc.d2d.input)  # fmt: skip


def stage_state(setup: Setup, stage: str, variables: Mapping[str, tuple[Any, Any]], *,
                steps_per_epoch: int, trainable: Collection[str] | None = None
                ) -> T.TrainState:  # fmt: skip
    """A fresh :class:`TrainState` for ``stage``: parameters from ``variables``; the players it
    trains (``trainable``, default :func:`make_phases`'s) get ``clip -> adam`` (the stage's
    schedule; G and D a constant ``gan.lr``), the others ``optax.set_to_zero()``."""
    config = setup.config
    scfg = config.stages[{"refine": "stage1", "warmup": "stage2", "end2end": "stage3"}[stage]]
    sched = T.schedule_from_config(scfg, steps_per_epoch=steps_per_epoch)
    if trainable is None:
        trainable = {n for p in make_phases(setup, stage) for n in p.players}
    players = {}
    for name, model in setup.models.items():
        params, stats = variables[name]
        if name in trainable:
            lr = config.gan.lr if name in ("generator", "d2d", "d3d") else sched
            tx = T.clipped(optax.adam(lr), config.train.clip_norm)
        else:
            tx = optax.set_to_zero()
        players[name] = T.PlayerState(
            params=params, batch_stats=stats, opt_state=tx.init(params), model=model, tx=tx
        )
    return T.create_train_state(players)


def _noise_options(config: ml_collections.ConfigDict) -> dict[str, float]:
    """Keyword options of :func:`jpose.augment.detection_noise` from ``config.noise``."""
    return {k: float(config.noise[k]) for k in augment.DETECTION_NOISE_OPTIONS}


def _inputs(config: ml_collections.ConfigDict, key: jax.Array, x: jax.Array, c: jax.Array
            ) -> tuple[jax.Array, jax.Array]:  # fmt: skip
    """Training inputs: GT 2D through the detection-noise model (if ``noise.enabled``)."""
    if config.noise.enabled:
        return augment.detection_noise(key, x, c, **_noise_options(config))
    return x, c


def _net(setup: Setup, apply: Any) -> M.CameraPoseForward:
    """The forward pass (:class:`jpose.models.CameraPoseForward`) on ``apply(player, *xs)``."""
    return M.CameraPoseForward(apply, has_refine="refine" in setup.models,
                               camera_inputs=setup.config.model.camera.inputs,
                               has_camera="camera" in setup.models)  # fmt: skip


def make_phases(setup: Setup, stage: str) -> tuple[T.Phase, ...]:
    """The ordered phases of one iteration of ``stage`` on batches ``{"3d", "2d", "rd"}`` (``"2d"``
    with 2D-only data, ``"rd"`` with ``loss.lambda_rd > 0``)."""
    config, lo, g = setup.config, setup.config.loss, setup.config.gan
    has = setup.models.keys()
    use_2d = setup.use_2d_only

    def net(ctx: T.PhaseContext, *, update_stats: bool | None = None) -> M.CameraPoseForward:
        return _net(setup, functools.partial(ctx.apply, update_stats=update_stats))

    def noisy(key_fn: Any) -> Any:  # the detection-noise model on GT 2D, key drawn when applied
        return lambda x, c: _inputs(config, key_fn(), x, c)

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
            n = _net(setup, lambda name, *xs: ctx.apply(name, *xs, train=False))
            x, c = _inputs(config, ctx.key_for("weak_inputs"), b2["pose2d_norm"], b2["confidence"])
            return n.reproject(x, c, b2["frame_scale"], min_depth=lo.min_depth)

        weak = batch["2d"] if use_2d and stage == "end2end" else None
        return CP.discriminator_objective(
            d2d(ctx), functools.partial(ctx.apply, "d3d"), batch["3d"],
            poseaug(ctx, batch["3d"], grad=False), weak_batch=weak, reproject=reproject,
            accuracy=discriminator_accuracy,
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
        # train.weak2d_bn_stats=False: 2D-only batches do not move the batch-norm running
        # statistics (the networks are evaluated with those of the 2D-3D batches)
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

    discriminator = generator = weak2d = None
    if "generator" in has:
        # PoseAug updates D_2D / D_3D every d_every-th iteration (its df = 2)
        discriminator = T.Phase("discriminator", ("d2d", "d3d"), discriminator_loss,
                                every=int(g.d_every))  # fmt: skip
        generator = T.Phase("generator", ("generator",), generator_loss)
    if stage == "end2end" and use_2d:
        weak2d = T.Phase("weak2d", lifter_players, weak2d_loss)
    lifter = T.Phase("lifter", lifter_players, lifter_loss)
    return T.alternating_gan_phases(discriminator=discriminator, generator=generator,
                                    lifter=lifter, weak2d=weak2d)  # fmt: skip


def make_predict(setup: Setup, state: T.TrainState | Mapping[str, Any]) -> Any:
    """:func:`jpose.models.camerapose_predict` (``predict(pose2d_norm, confidence[, frame_scale])``)
    of a training state or ``{player: variables}``."""
    if isinstance(state, T.TrainState):
        state = {n: p.variables() for n, p in state.players.items()}
    models = {n: setup.models[n] for n in ("refine", "lifter", "camera") if n in setup.models}
    return M.camerapose_predict(models, {n: state[n] for n in models},
                                camera_inputs=setup.config.model.camera.inputs,
                                min_depth=float(setup.config.loss.min_depth))  # fmt: skip


def load_predictor(config: Mapping[str, Any], workdir: str | pathlib.Path, *,
                   step: int | None = None) -> inference.Predictor:  # fmt: skip
    """The trained refine -> lift (-> camera) pipeline (:func:`pipeline`) of a work directory
    whose ``model.json`` has no pipeline entry; missing camera priors come from ``results.json``
    or, for runs older than ``model.json``, the training data."""
    config = ml_collections.ConfigDict(config)
    info = dict(inference.read_model_info(workdir))
    results = pathlib.Path(workdir) / "results.json"
    if info.get("camera_priors") is None and results.is_file():
        info["camera_priors"] = json.loads(results.read_text()).get("camera_priors")
    needed = config.method.camera or config.model.lifter.get("standardize")
    if info.get("camera_priors") is None and needed:
        info["camera_priors"] = prepare(config).priors
    info["camera_priors"] = info.get("camera_priors") or {}
    return common.declared_predictor(pipeline, config, workdir, info=info, step=step)


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Train the three stages (resuming where a previous run stopped), evaluate and report;
    returns the ``results.json`` record (its ``"stages"``: per-stage steps and resume info)."""
    t_start = time.perf_counter()
    wd = common.setup_workdir(workdir, config)
    setup = prepare(config)
    info = {"layout": LAYOUT.name, "normalization": setup.datasets["train_3d"].normalization,
            "camera_priors": setup.priors}  # fmt: skip
    common.write_model_info(wd, experiment="camerapose", pipeline=pipeline(config, info), **info)
    base_key = jax.random.key(config.seed)
    first_stage = "refine" if "refine" in setup.models else "warmup"
    resuming = any(p.name.isdigit() for p in (wd / "checkpoints" / first_stage).glob("*"))
    # a run whose first stage has a checkpoint restores everything: shape-only initialisation
    variables = init_players(setup, jax.random.fold_in(base_key, 10_000), abstract=resuming)
    tc = config.train
    options = common.train_options(tc)
    steps_per_epoch = max(1, len(setup.datasets["train_3d"]) // int(tc.batch_size))
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
            return stage_state(setup, stage, v, steps_per_epoch=steps_per_epoch,
                               trainable=declared.trainable)  # fmt: skip

        declared = harness.Stage(
            stage, phases=make_phases(setup, stage), num_steps=num_steps,
            batch_sizes={n: batch_sizes[n] for n in names}, init=init,
            key=jax.random.fold_in(base_key, index), samples_per_step=int(tc.batch_size),
        )  # fmt: skip
        return declared

    trained = harness.run_stages([declare(i, s) for i, s in enumerate(STAGES)],
                                 setup.train_arrays, workdir=wd, options=options)  # fmt: skip
    state, stage_info = trained.state, trained.summary()
    if state is None:
        state = stage_state(setup, "end2end", variables, steps_per_epoch=steps_per_epoch)
    t_train = time.perf_counter() - t_start
    results = evaluate_and_report(setup, state, wd, stage_info=stage_info)
    LOGGER.info("camerapose: total %.1f s (training incl. data %.1f s)",
                time.perf_counter() - t_start, t_train)  # fmt: skip
    return results


_DATASETS = {
    "synthetic": "synthetic demo (train_3d 2D-3D pairs + train_2d 2D-only, different pose mix)",
    "cmu": "CMU mocap train split through virtual cameras (2D-3D)",
    "cmu+coco": "CMU mocap train split (2D-3D, virtual cameras) + COCO train2017 (2D only)",
    "h36m": "Human3.6M S1,S5,S6,S7,S8 (2D-3D) + COCO/MPII (2D only)",
}


def evaluate_and_report(setup: Setup, state: T.TrainState, workdir: pathlib.Path, *,
                        stage_info: Mapping[str, Any]) -> dict[str, Any]:  # fmt: skip
    """Evaluate (:mod:`jpose.inference.camerapose`); write results.json / .md and the figures."""
    config, ec, m, n = setup.config, setup.config.eval, setup.config.method, setup.config.noise
    predict = make_predict(setup, state)
    evaluations, tables, noisy = cpinf.evaluate(
        predict, setup.datasets, common.eval_splits(setup.datasets, ec.splits),
        batch_size=ec.batch_size, action_key=ec.action_key, noise_seed=n.eval_seed,
        noise=_noise_options(config) if ec.noisy_input else None,
        has_camera="camera" in setup.models,
    )  # fmt: skip
    figures = {}
    if ec.figures:
        figures = cpinf.figures(predict, setup.datasets, evaluations, noisy, workdir=workdir,
                                samples=int(ec.figure_samples), has_refine="refine" in setup.models,
                                has_camera="camera" in setup.models)  # fmt: skip
    written = common.write_figures(workdir, figures)
    dataset = _DATASETS[config.data.preset] + ("" if setup.use_2d_only else
                                               "; 2D-only data not used")  # fmt: skip
    source = (
        "ground-truth 2D (projections of the 3D poses; COCO: human annotations) with confidence "
        "from the source; '+noise' rows: the same GT 2D through the detection-noise model "
        f"(conf = 1 - (1 - {n.conf_min}) u^{n.conf_power}, u ~ U(0, 1); sigma "
        f"{n.sigma_min}-{n.sigma_max} normalised units, outliers p={n.outlier_prob}*(1-c) "
        f"of sigma {n.outlier_sigma}), fixed seed"
    )
    if config.data.preset == "h36m":
        source = f"Human3.6M 2D source '{config.data.h36m.source}'; " + source
    steps = {s: i["steps"] for s, i in stage_info.items()}
    header = common.ResultsHeader(
        experiment="CameraPose (Yang et al. WACV 2023)", dataset=dataset, source_2d=source,
        protocol=(
            "root-relative (pelvis) camera-frame 3D, mm; MPJPE = protocol 1, P-MPJPE = protocol 2 "
            "(similarity Procrustes), N-MPJPE (LS scale); per action, action-wise and frame-wise "
            "means; 2D re-projection error on 2D-only data in normalised units / pixels"
        ),
        options={"refine": m.refine, "camera+2D-only": setup.use_2d_only, "gan": m.gan,
                 "lifter_width": config.model.lifter.width, "batch": config.train.batch_size,
                 "steps": steps, "noise": n.enabled, "seed": config.seed},
        checkpoint=steps,
        model_selection=(
            "none: the final checkpoint of the last stage is evaluated; no validation split is "
            "used and nothing is selected on the test split"
        ),
        notes=[
            "CPU-scaled schedule (steps per stage in the options), not the paper's 100/10/75 "
            "epochs" if any(config.stages[s].steps for s in config.stages) else
            "paper schedule (epochs)",
        ],
    )  # fmt: skip
    json_path, md_path = common.write_results(
        workdir, header=header, evaluations=evaluations, extra_tables=tables,
        extra={"stages": stage_info, "figures": written, "camera_priors": setup.priors},
    )  # fmt: skip
    LOGGER.info("wrote %s, %s and %d figures", json_path, md_path, len(written))
    return json.loads(json_path.read_text())


if __name__ == "__main__":
    common.cli(run, default_config=common.config_path("camerapose"))
