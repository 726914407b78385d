"""Drover et al. (ECCV-W 2018): 3D pose learned from 2D projections alone.

``python -m experiments.drover --workdir=DIR [--config=experiments/configs/drover.py:PRESET]``

Method (paper sec. 3, implemented with ``jpose.losses.drover_*`` and ``jpose.adversarial``):

* inputs: the 2D pose root-centred (pelvis) and scaled so that the *average* head-root distance
  of the training 2D is ``1 / d`` (sec. 3.1; :func:`jpose.models.drover.normalize_source`);
* generator ``G`` (``jpose.models.drover_generator``): depth offsets ``o``; depth
  ``z = max(0, d + o) + 1`` (eq. 2); back projection ``X = [z x, z y, z]``;
* random projection: ``X`` rotated about ``[0, 0, d]`` by a random azimuth (0-360 deg) and
  elevation (0-20 deg), perspective projection, then re-centred on the root like the real 2D
  (``method.recentre_fake``; the paper does not say whether it re-centres);
* discriminator ``D`` (``jpose.models.drover_discriminator``, 2-class softmax): real 2D poses
  ``r`` drawn *independently* of the generator's inputs (no correspondence) against the random
  projections ``p``; standard GAN loss (eq. 4) from the softmax logit difference; the generator
  minimises ``-log D(p)`` (non-saturating, default) or the literal ``log(1 - D(p))``;
* one iteration = D update, then G against the updated D (``alternating_gan_phases``); Adam
  2e-4 for both; batch size from the config (paper: 32,768). ``stages.gan.lr_schedule="linear"``
  (ours, the ``cmu`` preset) decays both rates linearly to 0: with a constant rate the CPU-sized
  GAN oscillates (P-MPJPE of successive checkpoints 83-120 mm on CMU), so the final checkpoint
  is a lottery; ``train.sampling="random"`` draws i.i.d. batches (the ``epoch`` sampler permutes
  the whole real pool inside every step, ~15x slower on CPU).

Real 2D pool (the discriminator's "real" data): the training split's 2D, optionally a 2D-only
split, and optionally ``real2d.virtual_cameras`` projections of every training 3D skeleton
through virtual cameras (paper sec. 4.1: 8 cameras, azimuth 0-360, elevation 0-20 degrees).
Each source is normalised with its own average head-root distance.

No 3D label reaches the generator's loss: the device-resident training data holds only 2D
(``training_arrays``); 3D is read by the evaluator and, with virtual cameras, to render the real
2D pool (unpaired, like any other real 2D). ``tests/test_experiment_drover.py`` checks that the
generator objective has zero gradient with respect to the 3D ground truth.

Joints: ``method.num_joints = 17`` (H36M-17) or ``14`` (the paper: H36M-17 without pelvis, spine
and neck/nose; the pelvis is still used for centring, the hip midpoint re-centres fakes).

Evaluation: the paper's metric is MPJPE after scaling and rigid alignment = P-MPJPE (P2 column);
N-MPJPE (scale only) is also scale-free; the P1 column uses a nominal ``eval.unit_m`` metres per
generator unit and is not meaningful for this scale-free method. With 14 joints the metrics are
computed on those joints only (:func:`evaluate`). Human3.6M: Protocol 1 = S11
(``test_s11``), Protocol 2 = S9 + S11 (``test``). The *trivial baseline* (constant depth: a flat
skeleton ``X = (d + 1) [x, y, 1]``) goes through the same evaluation code. With
``ensemble_seeds`` several generators are trained and their 3D outputs averaged (sec. 4.3).

Inference: ``run`` writes ``<workdir>/model.json`` (the input normalisation constant
``head_root_distance`` of the training 2D, the seeds and joints); :func:`load_predictor` (or
``jpose.inference.load_predictor(DIR)``) restores the generator(s) and predicts what ``run``
evaluates.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from experiments import common
from experiments.lifting import eval_datasets, lifter_figures
from jpose import adversarial, inference, losses, models, skeleton
from jpose import evaluation as jeval
from jpose import metrics as jm
from jpose.data import PoseDataset
from jpose.evaluation import jit_predict
from jpose.inference import pipelines
from jpose.models.drover import DroverJoints, drover_pose, normalize_source
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
    "fake_projection",
    "make_predict_3d",
    "seed_stages",
    "evaluate",
    "load_predictor",
    "run",
]


def joint_spec(num_joints: int) -> DroverJoints:
    """The :class:`jpose.models.drover.DroverJoints` of the 14- or 17-joint variant."""
    return DroverJoints.of(num_joints)


def _head_root_distance(pose2d: np.ndarray, spec: DroverJoints) -> float:
    root = skeleton.H36M17.root
    return float(np.mean(np.linalg.norm(pose2d[:, spec.head] - pose2d[:, root], axis=-1)))


def _virtual_views(
    ds: PoseDataset, *, num_views: int, azimuth_deg: Sequence[float],
    elevation_deg: Sequence[float], seed: int,
) -> np.ndarray:  # fmt: skip
    """``[N * V, 17, 2]`` unit-focal projections of ``ds``'s 3D through ``V`` random cameras.

    Each camera-frame skeleton is rotated about its pelvis (azimuth about the camera's vertical
    axis, then elevation: ``losses.drover_random_rotation``), kept at its pelvis depth and
    projected (``x = X / Z``); paper sec. 4.1.
    """
    pose = jnp.asarray(ds.pose3d_cam, jnp.float32)
    root = pose[:, :1]
    key = jax.random.key(seed)
    rot = losses.drover_random_rotation(
        key,
        (num_views, len(ds)),
        azimuth_range=tuple(math.radians(a) for a in azimuth_deg),
        elevation_range=tuple(math.radians(e) for e in elevation_deg),
    )

    @jax.jit
    def views(rot: jax.Array) -> jax.Array:
        rotated = jnp.einsum("nij,nkj->nki", rot, pose - root) + root
        z = jnp.maximum(rotated[..., 2:], 0.1)  # clamp: poses are metres in front of the camera
        return rotated[..., :2] / z

    out = jnp.concatenate([views(rot[v]) for v in range(num_views)], axis=0)
    return np.asarray(out, np.float32)


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
      No 3D array is in the returned data.
    """
    m = config.method
    spec = joint_spec(int(m.num_joints))
    d = float(m.distance)
    train = datasets["train_3d"]
    hr_inputs = _head_root_distance(train.pose2d_norm, spec)
    x = normalize_source(train.pose2d_norm, joints=spec, distance=d, head_root_distance=hr_inputs)
    real, composition = [], {}
    rc = config.real2d
    sources = []
    if rc.use_train_2d:
        sources.append(("train_3d 2D", train.pose2d_norm))
    if rc.use_2d_only and "train_2d" in datasets:
        sources.append(("train_2d 2D", datasets["train_2d"].pose2d_norm))
    if int(rc.virtual_cameras) > 0:
        views = _virtual_views(
            train,
            num_views=int(rc.virtual_cameras),
            azimuth_deg=tuple(rc.azimuth_deg),
            elevation_deg=tuple(rc.elevation_deg),
            seed=int(config.seed) + 7919,
        )
        sources.append((f"{int(rc.virtual_cameras)} virtual views of train_3d 3D", views))
    if not sources:
        raise ValueError("Drover: the real 2D pool is empty (enable real2d.use_train_2d or ...)")
    for name, pose2d in sources:
        hr = _head_root_distance(pose2d, spec)
        real.append(np.asarray(normalize_source(pose2d, joints=spec, distance=d,
                                                head_root_distance=hr)))  # fmt: skip
        composition[name] = len(pose2d)
    data = {
        "inputs": {"x": np.asarray(x, np.float32)},
        "real": {"r": np.concatenate(real).astype(np.float32)},
    }
    info = {"head_root_distance": hr_inputs, "real_pool": composition, "spec": spec}
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


def fake_projection(
    points_3d: jax.Array, key: jax.Array, *, config: ml_collections.ConfigDict
) -> jax.Array:
    """Random projection layer (paper sec. 3) of generated skeletons ``[B, J, 3] -> [B, J, 2]``."""
    m = config.method
    rot = losses.drover_random_rotation(
        key,
        points_3d.shape[:-2],
        azimuth_range=tuple(math.radians(a) for a in m.azimuth_deg),
        elevation_range=tuple(math.radians(e) for e in m.elevation_deg),
    )
    p = losses.drover_random_projection(points_3d, rot, distance=float(m.distance))
    if m.recentre_fake:
        p = p - joint_spec(int(m.num_joints)).root(p)
    return p


def _real_logit(logits: jax.Array) -> jax.Array:
    # 2-class softmax (class 0 = real): P(real) = sigmoid(l_real - l_fake).
    return logits[..., 0] - logits[..., 1]


def make_phases(config: ml_collections.ConfigDict) -> tuple[Phase, Phase]:
    """The discriminator and generator phases (run D first, then G against the updated D).

    Batches: ``{"inputs": {"x": [B, J, 2]}, "real": {"r": [B, J, 2]}}``. The discriminator
    normalises one batch of ``[real; fake]`` (shared batch-norm statistics); the generator phase
    evaluates D the same way without updating D's running averages.

    Returns:
      ``(discriminator_phase, generator_phase)``.
    """
    distance = float(config.method.distance)
    gen_loss_name = str(config.method.generator_loss)
    if gen_loss_name == "non_saturating":
        gen_loss = adversarial.gan_generator_loss_non_saturating
    elif gen_loss_name == "minimax":
        gen_loss = adversarial.gan_generator_loss
    else:
        raise ValueError(f"generator_loss must be non_saturating|minimax, got {gen_loss_name!r}")

    def fakes(ctx: PhaseContext, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        offsets = ctx.apply("gen", x)
        points = losses.drover_back_project(x, losses.drover_depth(offsets, distance=distance))
        return fake_projection(points, ctx.next_key(), config=config), offsets

    def d_loss(ctx: PhaseContext, batch: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
        real = batch["real"]["r"]
        fake, _ = fakes(ctx, batch["inputs"]["x"])
        logits = _real_logit(ctx.apply("disc", jnp.concatenate([real, fake])))
        lr, lf = logits[: len(real)], logits[len(real) :]
        loss = jnp.mean(adversarial.gan_real_loss(lr)) + jnp.mean(adversarial.gan_fake_loss(lf))
        acc = 0.5 * (jnp.mean(lr > 0) + jnp.mean(lf < 0))
        return loss, {"accuracy": acc, "p_real_on_fake": jnp.mean(jax.nn.sigmoid(lf))}

    def g_loss(ctx: PhaseContext, batch: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
        real = batch["real"]["r"]
        fake, offsets = fakes(ctx, batch["inputs"]["x"])
        logits = _real_logit(ctx.apply("disc", jnp.concatenate([real, fake]), update_stats=False))
        lf = logits[len(real) :]
        loss = jnp.mean(gen_loss(lf))
        depth = losses.drover_depth(offsets, distance=distance)
        return loss, {
            "fooled": jnp.mean(lf > 0),
            "depth_std": jnp.mean(jnp.std(depth, axis=-1)),
            "depth_clamped": jnp.mean(distance + offsets < 0),
        }

    return Phase("discriminator", ("disc",), d_loss), Phase("generator", ("gen",), g_loss)


@jax.jit
def _masked_errors(pred: jax.Array, target: jax.Array, mask: jax.Array) -> dict[str, jax.Array]:
    return {
        "mpjpe": jm.mpjpe(pred, target, mask=mask),
        "p_mpjpe": jm.p_mpjpe(pred, target, mask=mask),
        "n_mpjpe": jm.n_mpjpe(pred, target, mask=mask),
    }


def _evaluate(
    predict_3d: Callable[[jax.Array, jax.Array], jax.Array],
    ds: PoseDataset,
    *,
    spec: DroverJoints,
    config: ml_collections.ConfigDict,
) -> dict[str, Any]:
    """``jeval.evaluate_3d`` on the generator's joints.

    17 joints: ``jeval.evaluate_3d`` itself. 14 joints: the same output on the 14 joints only
    (masked metrics; both poses centred on the hip midpoint) -- an adapter until
    ``jeval.evaluate_3d`` takes a joint mask.
    """
    bs, key = int(config.eval.batch_size), config.eval.action_key
    if spec.num_joints == 17:
        return jeval.evaluate_3d(predict_3d, ds, batch_size=bs, action_key=key,
                                  keep_predictions=True)  # fmt: skip
    pred = jeval.batched_apply(predict_3d, ds.pose2d_norm, ds.confidence, batch_size=bs)
    target = ds.pose3d_root_relative.astype(np.float32)
    target = target - np.asarray(spec.root(target[:, np.asarray(spec.joints)]))
    mask = np.zeros((1, 17), np.float32)
    mask[0, np.asarray(spec.joints)] = 1.0
    errors = jeval.batched_apply(
        lambda p, t: _masked_errors(p, t, jnp.asarray(mask)), pred, target, batch_size=bs
    )
    out = jeval.summarize_errors(errors, ds, action_key=key)
    out["predictions"] = pred
    out["errors_mm"] = {k: np.asarray(jm.to_mm(v)) for k, v in errors.items()}
    return out


def evaluate(
    predict_3d: Callable[[jax.Array, jax.Array], jax.Array],
    ds: PoseDataset,
    *,
    config: ml_collections.ConfigDict,
) -> dict[str, Any]:
    """Drover's evaluation of a ``predict_3d`` (e.g. a :func:`load_predictor` predictor's
    ``pose3d``) on one split: :func:`experiments.jeval.evaluate_3d` with 17 joints, the masked
    metrics on the generator's 14 joints (both poses centred on the hip midpoint) with 14.

    Args:
      predict_3d: ``(pose2d_norm [B, 17, 2], confidence [B, 17]) -> [B, 17, 3]``.
      ds: a 3D split.
      config: the Drover config (``method.num_joints``, ``eval.batch_size`` / ``action_key``).

    Returns:
      The :func:`experiments.jeval.evaluate_3d` record (with predictions and errors).
    """
    return _evaluate(predict_3d, ds, spec=joint_spec(int(config.method.num_joints)), config=config)


def make_predict_3d(
    config: ml_collections.ConfigDict, *, head_root_distance: float
) -> Callable[[Callable[[jax.Array], jax.Array] | None, jax.Array, jax.Array], jax.Array]:
    """The evaluated 3D of one generator: ``fn(apply, pose2d_norm, confidence) -> [B, 17, 3]``.

    :func:`jpose.models.drover.drover_pose` (generator units, centred on the root) times the nominal
    ``eval.unit_m`` metres per unit, scattered into H36M-17 (joints the generator does not see =
    its root point); ``apply=None`` is the trivial baseline. Confidences are not used.

    Args:
      config: the Drover config.
      head_root_distance: the training inputs' average head-root distance (``model.json``).

    Returns:
      ``fn`` for :func:`jpose.evaluation.jit_predict`.
    """
    spec = joint_spec(int(config.method.num_joints))
    unit_m, distance = float(config.eval.unit_m), float(config.method.distance)

    def predictor(
        apply: Callable[[jax.Array], jax.Array] | None, x: jax.Array, c: jax.Array
    ) -> jax.Array:
        del c
        pose = drover_pose(apply, x, joints=spec, distance=distance,
                           head_root_distance=head_root_distance)  # fmt: skip
        return spec.to_layout(pose * unit_m)

    return predictor


def seed_stages(config: ml_collections.ConfigDict) -> list[str]:
    """Stage (checkpoint directory) names ``seed<s>`` of the trained generators, in order."""
    config = ml_collections.ConfigDict(config)
    seeds = [int(config.seed)] + [int(s) for s in config.ensemble_seeds]
    return [f"seed{s}" for s in seeds]


def _train_head_root_distance(config: ml_collections.ConfigDict) -> float:
    """``head_root_distance`` of the training inputs, recomputed from the data (work directories
    written before ``model.json``)."""
    train = common.load_datasets(config.data)["train_3d"]
    return _head_root_distance(train.pose2d_norm, joint_spec(int(config.method.num_joints)))


def load_predictor(
    config: Mapping[str, Any], workdir: str | os.PathLike[str], *, step: int | None = None
) -> inference.Predictor:
    """The trained generator(s) of a Drover work directory (:func:`pipeline`), as :func:`run`
    evaluates them.

    ``predict(pose2d_norm, confidence)["pose3d"]`` ``[B, 17, 3]`` is the 3D of ``run``'s
    "learned" (one seed) or "ensemble" (``ensemble_seeds``: the mean of every seed's 3D) row:
    the back-projected generator output centred on the root (the pelvis for 17 joints, the hip
    midpoint for 14), times the *nominal* ``eval.unit_m`` metres per generator unit. The method
    is scale-free (``metric_scale=False``): only scale-aligned errors (P-MPJPE, N-MPJPE) are
    meaningful, and the P1 column of ``results.json`` uses the same nominal unit.

    With ``method.num_joints = 14`` (the ``h36m`` preset) the generator does not predict the
    pelvis, spine and neck/nose: they are set to the root point (the origin), and ``run``
    evaluates on the 14 joints only (masked metrics, both poses centred on the hip midpoint).
    ``jeval.evaluate_3d`` of this ``pose3d`` then differs from ``results.json`` (it counts
    the 3 placeholder joints and centres the target on the pelvis); :func:`evaluate` reproduces
    it. With 17 joints ``jeval.evaluate_3d`` reproduces ``results.json`` exactly.
    """
    info = dict(inference.read_model_info(workdir))
    if info.get("head_root_distance") is None:  # runs older than model.json: from the data
        info["head_root_distance"] = _train_head_root_distance(ml_collections.ConfigDict(config))
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
    example = {"gen": jnp.zeros((2, num_joints, 2)), "disc": jnp.zeros((2, num_joints, 2))}

    def template(seed: int) -> TrainState:
        keys = jax.random.split(jax.random.key(seed), 2)
        players = {
            name: create_player(nets[name], txs[name], k, example[name])
            for name, k in zip(("gen", "disc"), keys)
        }
        return create_train_state(players)

    d_phase, g_phase = make_phases(config)
    phases = alternating_gan_phases(discriminator=d_phase, generator=g_phase)
    seeds = [int(config.seed)] + [int(s) for s in config.ensemble_seeds]
    declared = [
        harness.Stage(
            f"seed{seed}",
            phases=phases,
            num_steps=num_steps,
            batch_sizes={"inputs": bs, "real": bs},
            init=lambda done, seed=seed: template(seed),  # every seed from scratch
            key=jax.random.fold_in(jax.random.key(seed), 1),
            sampling=str(tc.sampling),
            samples_per_step=bs,
        )  # fmt: skip
        for seed in seeds
    ]
    trained = harness.run_stages(declared, host_data, workdir=wd,
                                 options=common.train_options(tc))  # fmt: skip
    stages = trained.stages

    # ---- evaluation: the 3D ground truth is read from here on only -------------------------
    unit_m = float(config.eval.unit_m)
    predictor = make_predict_3d(config, head_root_distance=info["head_root_distance"])

    per_seed = [jit_predict(s.state["gen"], predictor) for s in stages.values()]
    trivial = jax.jit(lambda x, c: predictor(None, x, c))

    def ensemble(x: jax.Array, c: jax.Array) -> jax.Array:
        return sum(p(x, c) for p in per_seed) / len(per_seed)

    evaluations: dict[str, Any] = {}
    summary: dict[str, dict[str, float]] = {}
    for split, ds in _protocol_splits(datasets, config).items():
        learned = _evaluate(ensemble if len(per_seed) > 1 else per_seed[0], ds, spec=spec,
                            config=config)  # fmt: skip
        name = "ensemble" if len(per_seed) > 1 else "learned"
        evaluations[split] = learned
        row = {name: learned["metrics"]["p_mpjpe"]["action_wise"]}
        if len(per_seed) > 1:
            for seed, p in zip(seeds, per_seed):
                ev = _evaluate(p, ds, spec=spec, config=config)
                evaluations[f"{split} (seed {seed})"] = ev
                row[f"seed {seed}"] = ev["metrics"]["p_mpjpe"]["action_wise"]
        if config.eval.trivial_baseline:
            ev = _evaluate(trivial, ds, spec=spec, config=config)
            evaluations[f"{split} (trivial baseline)"] = ev
            row["trivial baseline"] = ev["metrics"]["p_mpjpe"]["action_wise"]
        summary[split] = row
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
        figures = lifter_figures(wd, learned_only, datasets | _protocol_splits(datasets, config),
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
