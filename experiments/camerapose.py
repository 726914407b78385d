r"""CameraPose (Yang et al., WACV 2023) end to end: train, evaluate, report.

    python -m experiments.camerapose --workdir=/tmp/cp_default            # synthetic demo
    python -m experiments.camerapose --config=experiments/configs/camerapose.py:cmu \
        --workdir=/tmp/cp_cmu [--config.method.gan=False ...]

Players (one params pytree + optax state each, ``jpose.training``): ``refine`` (refinement
network, Sec. 3.1), ``lifter`` (residual linear, camera-frame root-relative 3D in metres),
``camera`` (camera branch, Sec. 3.2: fx, fy, cx, cy in normalised image units and t3D in metres),
``generator`` (PoseAug bone angle / bone length / rotation-translation, Sec. 3.3), ``d2d`` and
``d3d`` (LS-GAN discriminators; ``d3d`` part-aware KCS).

Stages (the paper's Sec. 4.3; sizes in ``config.stages``):

1. ``refine``: the refinement network alone, eq. 4 (confidence-weighted, eq. 3 normalisation) on
   GT 2D corrupted by the detection-noise model (:func:`jpose.augment.detection_noise`).
2. ``warmup``: lifter + camera branch + generator + discriminators on 2D-3D data (eq. 16 without
   the 2D-only step).
3. ``end2end``: one iteration = D step, G step against the updated D, lifter step on real +
   augmented pairs (eq. 16), 2D-only step (eq. 17), in that order (``GAN_PHASE_ORDER``).

Phases (each a pure loss closure; ``jpose.training.make_train_step`` differentiates only the
players a phase names, all others enter through ``stop_gradient``):

* ``discriminator`` (players ``d2d``, ``d3d``): LS-GAN, eqs. 12-15 with the fake target 0
  (``jpose.adversarial``). Real 2D: the GT 2D of the 2D-3D batch and of the 2D-only batch; fake
  2D: the augmented x* and the re-projections of the 2D-only samples (eq. 13's
  ``{x*, x'_2D}``). Real 3D: X; fake 3D: X*. Invalid augmented samples are masked out.
* ``generator`` (``generator``): LS-GAN generator terms of both discriminators + PoseAug's range
  losses; emits (x*, X*, t*) for the lifter phase.
* ``lifter`` (``lifter``, ``camera``, and ``refine`` in stage 3): eq. 16 on real and augmented
  pairs: ``lambda_ref L_ref + lambda_cam L_cam + lambda_2D,phi L_2D + lambda_3D L_3D``.
* ``weak2d`` (``lifter``, ``camera``, ``refine``): eq. 17 on 2D-only samples:
  ``lambda_ref L_ref + lambda_2D,phi' L_2D,phi'`` (+ a small D_2D term on the re-projections,
  ``loss.lambda_adv_weak2d``: the discriminator "regulates the re-projected 2D poses").

Readings and deviations from the paper:

* Intrinsics are predicted and supervised in the normalised image units of the 2D inputs
  (``jpose.data.normalized_intrinsics``), so L_cam mixes normalised-unit and metre errors instead of
  pixels and metres; with pixels the focal term (~1e6 px^2) would swamp everything at
  lambda_cam = 0.01.
* 2D frames (issue 18): the refinement network and the lifter see the paper's normalisation
  (-1, 1) by image width and height; the camera branch, the re-projection loss (eq. 7) and D_2D
  work in the aspect-preserving frame ``pose2d_norm * [1, h / w]`` (:func:`frame_scale`; exactly
  VideoPose3D's normalisation), so square pixels have ``fx = fy`` whatever the image's shape and
  D_2D cannot separate real COCO 2D from CMU-camera augmentations by aspect ratio. Intrinsics
  predicted there are converted back to the input's units by :func:`make_predict`.
* Players a stage does not train (the refinement network in stages 2-3) run in inference mode
  and learning-rate schedules count iterations, not optimiser updates (rules of
  ``jpose.training.steps``): stage 3's lifter and camera branch, updated in the ``lifter`` and
  ``weak2d`` phases of one iteration, decay at epochs 30 and 60, not 15 and 30.
* The RT operation predicts a bounded offset from the original root (x, y: +-``translation_
  limit``; depth: x exp(+-``depth_log_limit``)) instead of PoseAug's free ``t`` with ``t_z^2``,
  so early generator outputs stay in front of the camera; the rotation limit is a config value
  (PoseAug: pi; CPU presets use 0.5 rad).
* PoseAug's feedback loss (generator rewarded for poses the lifter finds hard) and the fake
  history buffer are not used. PoseAug's generator weights (1 L_adv^2D + 6 L_adv^3D + 3 L_range)
  and D every second iteration are config fields (``gan.lambda_adv_2d`` / ``lambda_adv_3d`` /
  ``lambda_range`` / ``d_every``; on in ``h36m`` with its 256-wide D_3D).
* The refinement network is frozen after stage 1 by default (``method.finetune_refine``); with
  it on, stage 3 trains it with the lifter (eq. 1's ``min over theta_ref``, eqs. 16-17's
  ``lambda_ref L_ref``; lambda_ref is not reported, 0.1 here). L_ref (normalised units^2) is
  orders of magnitude below L_3D (m^2), so end-to-end training turns the "refined 2D" into an
  arbitrary feature (seen in the figures), hence the default.
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
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from experiments import common
from jpose import adversarial, augment, inference, kinematics, losses, skeleton
from jpose import evaluation as jeval
from jpose import models as M
from jpose import training as T
from jpose.data import PoseDataset
from jpose.data import relative_depth as rdd
from jpose.data.common import normalized_intrinsics
from jpose.inference import pipelines
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


# ------------------------------------------------------------------------------------------------
# Setup: data on device, models, states
# ------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Setup:
    """Everything the phases and stages need that is not a training state.

    Attributes:
      config: the run's config.
      datasets: host datasets by split.
      train_arrays: ``{"3d": {...}, "2d": {...}}`` host arrays of the training splits.
      models: ``{player: Model}`` (static; created once so jit caches stay valid).
      use_2d_only: whether a 2D-only split is used (``method.camera`` and present).
      priors: camera priors (focal, center, translation) from the 2D-3D training data, and the
        lifter's standardisation statistics (``lifter_input_stats``, ``lifter_output_stats``).
    """

    config: ml_collections.ConfigDict
    datasets: dict[str, PoseDataset]
    train_arrays: dict[str, dict[str, np.ndarray]]
    models: dict[str, M.Model]
    use_2d_only: bool
    priors: dict[str, Any]


def _kcs_parts_fn() -> Any:
    """D_3D input: PoseAug's part-aware KCS of unit bones ``[..., P, B, B]``."""
    return functools.partial(kinematics.part_kcs_matrices, layout=LAYOUT, unit_bones=True)


_INCIDENCE = np.asarray(LAYOUT.incidence, np.float32)  # [B, J]: bones = incidence @ joints


def _d2d_input(pose2d: jax.Array, *, kind: str) -> jax.Array:
    """D_2D input: the 2D KCS matrix ``[..., B, B]`` (eq. 12) or the root-centred pose."""
    if kind == "kcs":
        bones = jnp.einsum("bj,...jc->...bc", _INCIDENCE, pose2d)
        return bones @ jnp.swapaxes(bones, -1, -2)
    if kind == "pose":
        return pose2d - pose2d[..., LAYOUT.root : LAYOUT.root + 1, :]
    raise ValueError(f"model.d2d.input must be 'kcs' or 'pose', got {kind!r}")


def frame_scale(ds: PoseDataset) -> np.ndarray:
    """Per-example ``[N, 2]`` factors from the dataset's normalised 2D to an aspect-preserving
    frame: ``[1, h / w]`` for CameraPose's ``"image"`` normalisation, ones otherwise.

    CameraPose normalises 2D to (-1, 1) by image width *and* height (Sec. 3.1), which stretches
    the people of non-square images (97 % of COCO) differently from the 2D-3D data. Multiplying
    by ``[1, h / w]`` gives exactly VideoPose3D's ``uv / w * 2 - [1, h / w]`` (isotropic, the
    same for every image), where the camera branch, the re-projection loss (eq. 7) and D_2D work:
    a pinhole camera with square pixels has ``fx = fy`` there, and a discriminator cannot tell
    real from fake 2D by the images' aspect ratios. The lifter and the refinement network keep the
    paper's input normalisation.

    Raises:
      ValueError: ``"image"`` normalisation without image sizes.
    """
    n = len(ds)
    if ds.normalization != "image":
        return np.ones((n, 2), np.float32)
    size = ds.image_size_px
    if size is None or np.any(np.asarray(size) <= 0):
        raise ValueError(
            f"{ds.name}: image-normalised 2D without image sizes: the camera branch and D_2D "
            "need the aspect ratio (use the pixel files, e.g. wild2d_coco_train.npz)"
        )
    size = np.asarray(size, np.float64)
    return np.stack([np.ones(n), size[:, 1] / size[:, 0]], -1).astype(np.float32)


def inference_networks(
    config: ml_collections.ConfigDict, priors: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """``{player: jpose.inference.pipelines.network_spec}`` of the test-time networks named by
    ``config.method`` (``lifter``, and ``refine`` / ``camera`` when on).

    Args:
      config: the CameraPose config.
      priors: camera priors ``{"focal", "center", "translation"}`` (mean training intrinsics in
        input units and mean root position in metres) and the lifter's statistics (see
        :func:`prepare`).
    """
    mc = config.model
    lifter_cfg = mc.lifter
    if lifter_cfg.kind != "martinez":
        raise ValueError(f"model.lifter.kind: only 'martinez' is built in, got {lifter_cfg.kind!r}")
    stats: dict[str, Any] = {}
    # Work directories written before the field existed trained without standardisation.
    if lifter_cfg.get("standardize", False):  # Martinez's z-scored inputs and outputs
        if "lifter_output_stats" not in priors:
            raise ValueError("model.lifter.standardize needs the training statistics (prepare)")
        stats = {k: priors[f"lifter_{k}"] for k in ("input_stats", "output_stats")}
    nets = {
        "lifter": pipelines.network_spec(
            "martinez_lifter",
            LAYOUT.num_joints,
            width=int(lifter_cfg.width),
            num_blocks=int(lifter_cfg.num_blocks),
            dropout=float(lifter_cfg.dropout),
            zero_init_output=bool(lifter_cfg.zero_init_output),
            **stats,
        )  # fmt: skip
    }
    if config.method.refine:
        nets["refine"] = pipelines.network_spec(
            "refine_net", width=int(mc.refine.width), num_blocks=int(mc.refine.num_blocks)
        )
    if config.method.camera:
        nets["camera"] = pipelines.network_spec(
            "camera_branch",
            width=int(mc.camera.width),
            num_blocks=int(mc.camera.num_blocks),
            focal_prior=list(priors["focal"]),
            center_prior=list(priors["center"]),
            translation_prior=list(priors["translation"]),
        )
    return nets


def build_models(
    config: ml_collections.ConfigDict, priors: Mapping[str, Any]
) -> dict[str, M.Model]:
    """The players named by ``config.method`` (static :class:`jpose.models.Model` objects): the
    :func:`inference_networks` and, with ``method.gan``, the generator and discriminators."""
    mc = config.model
    models = {n: pipelines.build_network(s) for n, s in inference_networks(config, priors).items()}
    if config.method.gan:
        models["generator"] = M.poseaug_generator(
            LAYOUT, noise_dim=mc.generator.noise_dim, width=mc.generator.width,
            num_stages=mc.generator.num_stages,
        )  # fmt: skip
        models["d2d"] = M.poseaug_discriminator_2d(width=mc.d2d.width)
        models["d3d"] = M.part_kcs_discriminator(
            num_parts=len(skeleton.KCS_PARTS), kcs_fn=_kcs_parts_fn(), width=mc.d3d.width,
            bottleneck=mc.d3d.bottleneck,
        )  # fmt: skip
    return models


def pipeline(config: ml_collections.ConfigDict, info: Mapping[str, Any]) -> dict[str, Any]:
    """The ``model.json["pipeline"]`` entry (:mod:`jpose.inference.pipelines`) from the other
    ``model.json`` fields (``camera_priors``, ``normalization``): restored by jpose alone, the
    same networks and forward pass as :func:`load_predictor`."""
    nets = inference_networks(config, info["camera_priors"])
    normalization = str(info["normalization"])
    return pipelines.pipeline_spec(
        "camerapose",
        networks=nets,
        stages=STAGES,
        options={"camera_inputs": str(config.model.camera.inputs),
                 "min_depth": float(config.loss.min_depth)},
        predictor={"experiment": "camerapose", "description": _description(nets),
                   "layout": LAYOUT.name, "normalization": normalization,
                   "has_camera": "camera" in nets, "takes_frame_scale": "camera" in nets},
    )  # fmt: skip


def _description(models: Mapping[str, Any]) -> str:
    parts = (
        ["refinement"] * ("refine" in models)
        + ["lifter"]
        + ["camera branch"] * ("camera" in models)
    )
    return "CameraPose (Yang et al. WACV 2023): " + " + ".join(parts)


def relative_depth_arrays(
    config: ml_collections.ConfigDict, normalization: str, *, use_2d: bool
) -> dict[str, np.ndarray]:
    """Relative-depth pairs for the auxiliary WSP loss (``loss.lambda_rd > 0``).

    Pairs come from :func:`jpose.data.relative_depth.load_pair_splits` with the ``config.rd``
    fields (COCO images with several people, or synthetic scenes); their 2D is
    ``"image"``-normalised, so the 2D-3D data must be too (``"vp"`` is accepted for the square
    synthetic scenes, where both coincide). A random half of the pairs is swapped (A <-> B) so
    both labels are balanced.

    Raises:
      ValueError: the loss cannot be used (no camera branch / 2D-only phase, or normalisation).
    """
    if not (config.method.camera and use_2d):
        raise ValueError(
            "loss.lambda_rd > 0 needs the camera branch (method.camera) and 2D-only data: the "
            "relative-depth loss acts on absolute depths in stage 3's 2D-only phase"
        )
    if normalization != "image" and not (config.rd.source == "synthetic" and normalization == "vp"):
        raise ValueError(
            f"loss.lambda_rd > 0: relative-depth pairs are 'image'-normalised but the 2D-3D data "
            f"is {normalization!r}-normalised; use a data preset with image normalisation"
        )
    pairs = rdd.load_pair_splits(seed=int(config.seed), **config.rd.to_dict())["train"]
    arrays = pairs.pair_arrays(orientation_seed=int(config.seed))
    LOGGER.info("relative-depth pairs for the auxiliary loss: %s", pairs.counts)
    keys = ("pose_a", "conf_a", "pose_b", "conf_b", "label", "joint_mask")
    return {k: np.asarray(arrays[k]) for k in keys}


def prepare(config: ml_collections.ConfigDict) -> Setup:
    """Load the data, derive camera priors and build the models (no parameters yet).

    Args:
      config: the CameraPose config.

    Returns:
      :class:`Setup`.
    """
    datasets = common.load_datasets(config.data)
    train3d = datasets["train_3d"]
    focal, center = normalized_intrinsics(train3d)
    a3d = train3d.arrays(["pose2d_norm", "confidence", "pose3d"])
    a3d["root"] = train3d.pose3d_cam[:, LAYOUT.root].astype(np.float32)
    a3d["focal"], a3d["center"] = focal, center
    a3d["frame_scale"] = frame_scale(train3d)
    arrays = {"3d": a3d}
    use_2d = bool(config.method.camera) and "train_2d" in datasets
    if use_2d:
        arrays["2d"] = datasets["train_2d"].arrays(["pose2d_norm", "confidence"])
        arrays["2d"]["frame_scale"] = frame_scale(datasets["train_2d"])
    if config.loss.lambda_rd > 0:
        arrays["rd"] = relative_depth_arrays(config, train3d.normalization, use_2d=use_2d)
    priors = {
        # the camera branch works in the aspect-preserving frame (see frame_scale)
        "focal": tuple(float(v) for v in (focal * a3d["frame_scale"]).mean(0)),
        "center": tuple(float(v) for v in (center * a3d["frame_scale"]).mean(0)),
        "translation": tuple(float(v) for v in a3d["root"].mean(0)),
        **{f"lifter_{k}": v for k, v in
           M.lifter_stats(train3d.pose2d_norm, train3d.pose3d_root_relative).items()},
    }  # fmt: skip
    models = build_models(config, priors)
    return Setup(
        config=config,
        datasets=datasets,
        train_arrays=arrays,
        models=models,
        use_2d_only=use_2d,
        priors=priors,
    )


def _example_inputs(name: str, config: ml_collections.ConfigDict) -> tuple[jax.Array, ...]:
    j = LAYOUT.num_joints
    x2, x3 = jnp.zeros((2, j, 2)), jnp.zeros((2, j, 3))
    if name == "refine":
        return (x3,)
    if name == "lifter":
        return (x2,)
    if name == "camera":
        return (x2, x3) if config.model.camera.inputs == "2d+3d" else (x2,)
    if name == "generator":
        return (x3 + jnp.array([0.0, 0.0, 5.0]),)
    if name == "d2d":
        return (_d2d_input(x2, kind=config.model.d2d.input),)
    if name == "d3d":
        return (x3,)
    raise ValueError(name)


def init_players(
    setup: Setup, key: jax.Array, *, abstract: bool = False
) -> dict[str, tuple[Any, Any]]:
    """Initial ``{player: (params, batch_stats)}``.

    With ``abstract`` the values are zeros of the right shapes (no initialiser is compiled): a
    template for restoring a checkpoint.
    """
    out = {}
    for i, (name, model) in enumerate(sorted(setup.models.items())):
        args = (jax.random.fold_in(key, i), *_example_inputs(name, setup.config))
        if abstract:
            shapes = jax.eval_shape(model.init, *args)
            v = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
        else:
            v = model.init(*args)
        out[name] = (v["params"], v.get("batch_stats", {}))
    return out


def _stage_trainable(stage: str, config: ml_collections.ConfigDict, models: Mapping) -> set[str]:
    if stage == "refine":
        return {"refine"}
    names = {"lifter", "camera", "generator", "d2d", "d3d"}
    if stage == "end2end" and config.method.finetune_refine:
        names.add("refine")
    return names & set(models)


def stage_state(
    setup: Setup,
    stage: str,
    variables: Mapping[str, tuple[Any, Any]],
    *,
    steps_per_epoch: int,
    trainable: Collection[str] | None = None,
) -> T.TrainState:
    """A fresh :class:`TrainState` for ``stage`` (new optimisers, parameters from ``variables``).

    Players trained in the stage (``trainable``: the players of its phases, declared once by
    :func:`make_phases`, whose ``harness.Stage.trainable`` the run passes) get ``clip ->
    adam(schedule)`` (the stage's schedule; G and D a constant ``gan.lr``); the others get
    ``optax.set_to_zero()`` (no optimiser state).
    """
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


# ------------------------------------------------------------------------------------------------
# Phases
# ------------------------------------------------------------------------------------------------


def _masked_mean(x: jax.Array, mask: jax.Array | None) -> jax.Array:
    if mask is None:
        return jnp.mean(x)
    m = mask.astype(x.dtype)
    return jnp.sum(x * m) / jnp.maximum(jnp.sum(m), 1.0)


def _noise_options(config: ml_collections.ConfigDict) -> dict[str, float]:
    """Keyword options of :func:`jpose.augment.detection_noise` from ``config.noise`` (the
    detection-noise model is documented there)."""
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
                               camera_inputs=setup.config.model.camera.inputs)  # fmt: skip


_project = M.CameraPoseForward.project


def _reprojection(pose_rel, x_gt, cam, weights, lo):
    """L_2D (eq. 7) per example, on 2D scaled by ``loss.reproj_scale``, depth clamped at
    ``loss.min_depth`` (an untrained lifter puts joints behind the camera)."""
    scale = lo.reproj_scale
    return losses.camerapose_reprojection_loss(
        pose_rel,
        x_gt * scale,
        focal=cam["focal"] * scale,
        center=cam["center"] * scale,
        offset=cam["translation"],
        weights=weights,
        min_depth=lo.min_depth,
    )


def _augment(setup: Setup, ctx: T.PhaseContext, batch3d: Mapping[str, jax.Array], *,
             grad: bool) -> dict[str, jax.Array]:  # fmt: skip
    """PoseAug BA -> BL -> RT on the real 3D, re-projected with the sample's GT intrinsics."""
    g = setup.config.gan
    pose_rel, root = batch3d["pose3d"], batch3d["root"]
    pose_abs = pose_rel + root[..., None, :]
    raw = ctx.apply("generator", pose_abs, update_stats=grad)
    p_ba, ba_diff = augment.bone_angle_change(pose_abs, raw["bone_angle"], layout=LAYOUT)
    p_bl, rho = augment.bone_length_change(p_ba, raw["bone_length"], layout=LAYOUT,
                                           limit=g.bl_tanh_limit)  # fmt: skip
    tr = jnp.tanh(raw["translation"])
    new_root = jnp.concatenate(
        [root[..., :2] + g.translation_limit * tr[..., :2],
         root[..., 2:] * jnp.exp(g.depth_log_limit * tr[..., 2:])], -1,
    )  # fmt: skip
    p_rt = augment.rotate_translate(p_bl, raw["rotation"], new_root, root=LAYOUT.root,
                                    max_angle=g.max_angle, square_depth=False)  # fmt: skip
    aug_rel = p_rt - p_rt[..., LAYOUT.root : LAYOUT.root + 1, :]
    x_aug = losses.camerapose_project(
        aug_rel, focal=batch3d["focal"], center=batch3d["center"], offset=new_root
    )
    valid = jnp.all(jnp.abs(x_aug) <= g.valid_bound, axis=(-2, -1)) & jnp.all(
        p_rt[..., 2] > 0.1, axis=-1
    )
    angle = g.max_angle * jnp.tanh(raw["rotation"])
    lengths_real = kinematics.bone_lengths(pose_rel, layout=LAYOUT)
    lengths_aug = kinematics.bone_lengths(aug_rel, layout=LAYOUT)
    stats = {
        "aug_valid_frac": jnp.mean(valid.astype(jnp.float32)),
        "aug_bone_len_ratio_abs": jnp.mean(jnp.abs(rho)),
        "aug_bone_len_ratio_max": jnp.max(jnp.abs(rho)),
        "aug_bone_len_sum_ratio": jnp.mean(
            jnp.sum(lengths_aug, -1) / jnp.maximum(jnp.sum(lengths_real, -1), 1e-6)
        ),
        "aug_bone_angle_1mcos": jnp.mean(ba_diff),
        "aug_rot_angle_deg": jnp.degrees(jnp.mean(jnp.linalg.norm(angle, axis=-1))),
        "aug_root_depth": jnp.mean(new_root[..., 2]),
    }
    return {
        "x": x_aug, "pose3d": aug_rel, "root": new_root, "valid": valid, "ba_diff": ba_diff,
        "rho": rho, "stats": stats,
    }  # fmt: skip


def make_phases(setup: Setup, stage: str) -> tuple[T.Phase, ...]:
    """The ordered phases of one iteration of ``stage`` (``refine``, ``warmup``, ``end2end``).

    Batches are ``{"3d": {pose2d_norm, confidence, pose3d, root, focal, center}, "2d":
    {pose2d_norm, confidence}, "rd": {pose_a, conf_a, pose_b, conf_b, label, joint_mask}}``
    (``"2d"`` only when 2D-only data is used, ``"rd"`` relative-depth pairs only with
    ``loss.lambda_rd > 0``).
    """
    config, lo, g = setup.config, setup.config.loss, setup.config.gan
    d2d_kind = config.model.d2d.input
    has = setup.models.keys()
    use_2d = setup.use_2d_only
    use_rd = use_2d and "rd" in setup.train_arrays

    def net(ctx: T.PhaseContext, *, update_stats: bool | None = None) -> M.CameraPoseForward:
        """The forward pass; ``update_stats=False`` keeps the batch-norm running statistics."""
        return _net(setup, functools.partial(ctx.apply, update_stats=update_stats))

    # -- stage 1: refinement network, eq. 4 ------------------------------------------------------
    def refine_loss(ctx, batch):
        parts = [batch["3d"]] + ([batch["2d"]] if use_2d else [])
        x = jnp.concatenate([p["pose2d_norm"] for p in parts])
        c_src = jnp.concatenate([p["confidence"] for p in parts])
        n = net(ctx)
        noisy, c = _inputs(config, ctx.next_key(), x, c_src)
        refined = n.refine(noisy, c)
        loss = jnp.mean(losses.camerapose_refinement_loss(refined, x, c))
        present = (c_src > 0).astype(jnp.float32)
        err_in = jnp.sum(jnp.linalg.norm(noisy - x, axis=-1) * present) / jnp.sum(present)
        err_out = jnp.sum(jnp.linalg.norm(refined - x, axis=-1) * present) / jnp.sum(present)
        return loss, {"input_err_2d": err_in, "refined_err_2d": err_out}

    if stage == "refine":
        return (T.Phase("refine", ("refine",), refine_loss),)

    trainable = _stage_trainable(stage, config, setup.models)
    lifter_players = tuple(p for p in ("lifter", "camera", "refine") if p in trainable)

    # -- D step (eqs. 12-15) ----------------------------------------------------------------------
    def weak_reprojection(ctx, batch2d):
        n = _net(setup, lambda name, *xs: ctx.apply(name, *xs, train=False))
        x_in, c = _inputs(config, ctx.key_for("weak_inputs"), batch2d["pose2d_norm"],
                           batch2d["confidence"])  # fmt: skip
        refined = n.refine(x_in, c)
        pose = n.lift(refined)
        cam = n.camera(refined, pose, batch2d["frame_scale"])
        return refined, pose, cam, _project(pose, cam, min_depth=lo.min_depth)

    def discriminator_loss(ctx, batch):
        b3 = batch["3d"]
        aug = _augment(setup, ctx, b3, grad=False)
        valid = aug["valid"]
        # every 2D that D_2D sees is in the aspect-preserving frame (frame_scale)
        s3 = b3["frame_scale"][..., None, :]
        real2d = [b3["pose2d_norm"] * s3]
        fake2d = [aug["x"] * s3]
        fake_mask = [valid]
        if use_2d and stage == "end2end":
            real2d.append(batch["2d"]["pose2d_norm"] * batch["2d"]["frame_scale"][..., None, :])
            *_, reproj = weak_reprojection(ctx, batch["2d"])
            fake2d.append(jax.lax.stop_gradient(reproj))
            fake_mask.append(jnp.ones(reproj.shape[0], bool))
        real2d, fake2d = jnp.concatenate(real2d), jnp.concatenate(fake2d)
        fake_mask = jnp.concatenate(fake_mask)
        nr, nb = real2d.shape[0], b3["pose3d"].shape[0]
        d2 = ctx.apply("d2d", _d2d_input(jnp.concatenate([real2d, fake2d]), kind=d2d_kind))
        d2_real, d2_fake = d2[:nr, 0], d2[nr:, 0]
        d3 = ctx.apply("d3d", jnp.concatenate([b3["pose3d"], aug["pose3d"]]))
        d3_real, d3_fake = d3[:nb], d3[nb:]
        l2 = jnp.mean(adversarial.lsgan_loss(d2_real, target=1.0)) + _masked_mean(
            adversarial.lsgan_loss(d2_fake, target=0.0), fake_mask
        )
        l3 = jnp.mean(adversarial.lsgan_loss(d3_real, target=1.0, part_axis=-1)) + _masked_mean(
            adversarial.lsgan_loss(d3_fake, target=0.0, part_axis=-1), valid
        )
        a2 = discriminator_accuracy(d2_real, d2_fake)
        a3 = discriminator_accuracy(d3_real, d3_fake)
        m = {"d2d_loss": l2, "d3d_loss": l3, "d2d_acc": a2["acc"], "d3d_acc": a3["acc"],
             "d2d_acc_real": a2["acc_real"], "d2d_acc_fake": a2["acc_fake"],
             "d3d_acc_real": a3["acc_real"], "d3d_acc_fake": a3["acc_fake"]}  # fmt: skip
        return l2 + l3, m

    # -- G step (against the updated D) ----------------------------------------------------------
    def generator_loss(ctx, batch):
        aug = _augment(setup, ctx, batch["3d"], grad=True)
        valid = aug["valid"]
        x_frame = aug["x"] * batch["3d"]["frame_scale"][..., None, :]
        d2 = ctx.apply("d2d", _d2d_input(x_frame, kind=d2d_kind))[..., 0]
        d3 = ctx.apply("d3d", aug["pose3d"])
        adv2 = _masked_mean(adversarial.lsgan_generator_loss(d2), valid)
        adv3 = _masked_mean(adversarial.lsgan_generator_loss(d3, part_axis=-1), valid)
        rng = jnp.mean(
            augment.bone_angle_range_loss(aug["ba_diff"], target=g.ba_range_target,
                                          width=g.ba_range_width)
            + augment.bone_length_range_loss(aug["rho"], limit=g.bl_range_limit)
        )  # fmt: skip
        for k in ("x", "pose3d", "root", "valid"):
            ctx.emit(f"aug_{k}", aug[k])
        # PoseAug's generator objective (Gong et al. 2021, code: 1 L_adv^2D + 6 L_adv^3D +
        # 3 L_diff); CameraPose: "similar to PoseAug"
        loss = g.lambda_adv_2d * adv2 + g.lambda_adv_3d * adv3 + g.lambda_range * rng
        return loss, {"adv_2d": adv2, "adv_3d": adv3, "range": rng, **aug["stats"]}

    # -- lifter step, eq. 16 on real + augmented pairs ------------------------------------------
    def eq16(ctx, n, key, x_gt, c_src, pose_gt, root_gt, focal, center, scale):
        x_in, c = _inputs(config, key, x_gt, c_src)
        refined = n.refine(x_in, c)
        pose = n.lift(refined)
        l3d = losses.camerapose_pose_loss(pose, pose_gt)
        lref = (
            losses.camerapose_refinement_loss(refined, x_gt, c)
            if "refine" in trainable else jnp.zeros_like(l3d)
        )  # fmt: skip
        if "camera" in has:
            # intrinsics and re-projection in the aspect-preserving frame (frame_scale)
            cam = n.camera(refined, pose, scale)
            lcam = losses.camerapose_camera_loss(
                losses.camerapose_intrinsics(jnp.concatenate([cam["focal"], cam["center"]], -1)),
                losses.camerapose_intrinsics(jnp.concatenate([focal * scale, center * scale], -1)),
                cam["translation"],
                root_gt,
            )
            x_frame = x_gt * scale[..., None, :]
            l2d = _reprojection(pose, x_frame, cam, (c_src > 0).astype(x_gt.dtype), lo)
        else:
            lcam = l2d = jnp.zeros_like(l3d)
        total = losses.camerapose_loss_3d(
            lcam, l2d, l3d, lref, lambda_cam=lo.lambda_cam, lambda_2d=lo.lambda_2d_phi,
            lambda_3d=lo.lambda_3d, lambda_ref=lo.lambda_ref_phi,
        )  # fmt: skip
        return total, pose, {"l3d": l3d, "lcam": lcam, "l2d": l2d, "lref": lref}

    def lifter_loss(ctx, batch):
        b3 = batch["3d"]
        n = net(ctx)
        x, c, pose_gt, root = b3["pose2d_norm"], b3["confidence"], b3["pose3d"], b3["root"]
        focal, center, scale = b3["focal"], b3["center"], b3["frame_scale"]
        nb = x.shape[0]
        if "generator" in has:  # real and augmented pairs in one forward pass
            o = ctx.outputs
            x = jnp.concatenate([x, o["aug_x"]])
            c = jnp.concatenate([c, jnp.ones_like(c)])
            pose_gt = jnp.concatenate([pose_gt, o["aug_pose3d"]])
            root = jnp.concatenate([root, o["aug_root"]])
            focal, center = jnp.concatenate([focal, focal]), jnp.concatenate([center, center])
            scale = jnp.concatenate([scale, scale])
        total, pose, parts = eq16(ctx, n, ctx.key_for("inputs"), x, c, pose_gt, root, focal,
                                  center, scale)  # fmt: skip
        loss = jnp.mean(total[:nb])
        metrics = {f"{k}_real": jnp.mean(v[:nb]) for k, v in parts.items()}
        err = jnp.linalg.norm(pose - pose_gt, axis=-1).mean(-1)
        metrics["mpjpe_real_mm"] = 1000.0 * jnp.mean(err[:nb])
        if "generator" in has:
            valid = ctx.outputs["aug_valid"]
            loss = loss + g.aug_weight * _masked_mean(total[nb:], valid)
            metrics.update({f"{k}_aug": _masked_mean(v[nb:], valid) for k, v in parts.items()})
            metrics["mpjpe_aug_mm"] = 1000.0 * _masked_mean(err[nb:], valid)
        return loss, metrics

    # -- 2D-only step, eq. 17 ---------------------------------------------------------------------
    def weak2d_loss(ctx, batch):
        b2 = batch["2d"]
        x_gt, c_src = b2["pose2d_norm"], b2["confidence"]
        # train.weak2d_bn_stats=False: 2D-only batches do not move the batch-norm running
        # statistics (the networks are evaluated with those of the 2D-3D batches)
        n = net(ctx, update_stats=None if config.train.weak2d_bn_stats else False)
        x_in, c = _inputs(config, ctx.key_for("weak_inputs"), x_gt, c_src)
        refined = n.refine(x_in, c)
        pose = n.lift(refined)
        cam = n.camera(refined, pose, b2["frame_scale"])
        # L_2D, D_2D and the metrics in the aspect-preserving frame (frame_scale)
        x_frame = x_gt * b2["frame_scale"][..., None, :]
        l2d = _reprojection(pose, x_frame, cam, (c_src > 0).astype(x_gt.dtype), lo)
        lref = (
            losses.camerapose_refinement_loss(refined, x_gt, c)
            if "refine" in trainable else jnp.zeros_like(l2d)
        )  # fmt: skip
        total = jnp.mean(
            losses.camerapose_loss_2d(
                l2d, lref, lambda_2d=lo.lambda_2d_phi_prime, lambda_ref=lo.lambda_ref_phi_prime
            )
        )
        metrics = {"l2d": jnp.mean(l2d), "lref": jnp.mean(lref)}
        proj = _project(pose, cam, min_depth=lo.min_depth)
        if "d2d" in has and lo.lambda_adv_weak2d > 0:
            d2 = ctx.apply("d2d", _d2d_input(proj, kind=d2d_kind))[..., 0]
            adv = jnp.mean(adversarial.lsgan_generator_loss(d2))
            total = total + lo.lambda_adv_weak2d * adv
            metrics["adv_2d"] = adv
        w = (c_src > 0).astype(x_gt.dtype)
        err = jnp.linalg.norm(proj - x_frame, axis=-1)
        metrics["reproj_err_norm"] = jnp.sum(err * w) / jnp.sum(w)
        metrics["focal_mean"] = jnp.mean(cam["focal"])
        metrics["depth_mean"] = jnp.mean(cam["translation"][..., 2])
        if use_rd:
            # the pairs (small, off-centre people of multi-person images) must not move the
            # batch-norm running statistics the lifter is evaluated with
            rd_loss, rd_acc = relative_depth_term(net(ctx, update_stats=False), batch["rd"])
            total = total + lo.lambda_rd * rd_loss
            metrics["rd_loss"], metrics["rd_acc"] = rd_loss, rd_acc
        return total, metrics

    def relative_depth_term(
        n: M.CameraPoseForward, rd: Mapping[str, jax.Array]
    ) -> tuple[jax.Array, jax.Array]:
        """WSP eq. 9 on the predicted absolute depths of both people of each pair (no noise
        model: the pairs' 2D are human annotations). With ``loss.rd_root_only`` the gradient
        reaches only the camera branch's root translation, not the lifter (the per-joint labels
        of a pair all say the same thing: which person is nearer)."""
        b = rd["pose_a"].shape[0]
        x = jnp.concatenate([rd["pose_a"], rd["pose_b"]])
        c = jnp.concatenate([rd["conf_a"], rd["conf_b"]])
        refined = n.refine(x, c)
        pose = n.lift(refined)
        if lo.rd_root_only:  # the lifter gets no RD gradient (neither directly nor via the camera)
            pose = jax.lax.stop_gradient(pose)
        # the pairs come from the normalised COCO file (no image sizes): frame scale 1
        cam = n.camera(refined, pose, jnp.ones((2 * b, 2), refined.dtype))
        depth = pose[..., 2] + cam["translation"][..., None, 2]  # [2B, J] camera-frame Z
        labels = jnp.broadcast_to(rd["label"][:, None], depth[:b].shape)
        mask = rd["joint_mask"].astype(depth.dtype)
        loss = jnp.mean(
            losses.wsp_relative_depth_aux_loss(
                depth[:b], depth[b:], labels, mask=mask, temperature=lo.rd_temperature
            )
        )
        correct = ((depth[:b] <= depth[b:]) == (labels > 0.5)).astype(depth.dtype)
        return loss, jnp.sum(correct * mask) / jnp.maximum(jnp.sum(mask), 1.0)

    phases: dict[str, T.Phase | None] = {"discriminator": None, "generator": None, "weak2d": None}
    if "generator" in has:
        # PoseAug updates D_2D / D_3D every d_every-th iteration (its df = 2)
        phases["discriminator"] = T.Phase("discriminator", ("d2d", "d3d"), discriminator_loss,
                                          every=int(g.d_every))  # fmt: skip
        phases["generator"] = T.Phase("generator", ("generator",), generator_loss)
    lifter = T.Phase("lifter", lifter_players, lifter_loss)
    if stage == "end2end" and use_2d:
        phases["weak2d"] = T.Phase("weak2d", lifter_players, weak2d_loss)
    return T.alternating_gan_phases(
        discriminator=phases["discriminator"], generator=phases["generator"], lifter=lifter,
        weak2d=phases["weak2d"],
    )  # fmt: skip


# ------------------------------------------------------------------------------------------------
# Inference
# ------------------------------------------------------------------------------------------------


def make_predict(setup: Setup, state: T.TrainState | Mapping[str, Any]) -> Any:
    """:func:`jpose.models.camerapose_predict` of a training state or ``{player: variables}``
    (:func:`jpose.inference.restore_variables`): ``predict(pose2d_norm, confidence[,
    frame_scale])`` with ``refined``, ``pose3d`` and, with a camera branch, ``focal``,
    ``center``, ``translation`` and ``reprojected`` (``frame_scale``: :func:`frame_scale`)."""
    if isinstance(state, T.TrainState):
        variables = {n: p.variables() for n, p in state.players.items()}
    else:
        variables = dict(state)
    models = {n: setup.models[n] for n in ("refine", "lifter", "camera") if n in setup.models}
    return M.camerapose_predict(models, {n: variables[n] for n in models},
                                camera_inputs=setup.config.model.camera.inputs,
                                min_depth=float(setup.config.loss.min_depth))  # fmt: skip


def load_predictor(
    config: Mapping[str, Any], workdir: str | pathlib.Path, *, step: int | None = None
) -> inference.Predictor:
    """The trained refine -> lift (-> camera) pipeline of a CameraPose work directory.

    Args:
      config: the run's config (``common.read_config``).
      workdir: the work directory.
      step: checkpoint step of the last trained stage (default latest).

    Returns:
      :class:`jpose.inference.Predictor`.
    """
    config = ml_collections.ConfigDict(config)  # config.json as read by jpose.inference
    info = inference.read_model_info(workdir)
    priors = info.get("camera_priors")
    if priors is None and (config.method.camera or config.model.lifter.get("standardize")):
        results = pathlib.Path(workdir) / "results.json"
        if results.is_file():
            priors = json.loads(results.read_text()).get("camera_priors")
        if priors is None:  # runs older than model.json: recompute from the training data
            priors = prepare(config).priors
    models = build_models(config, priors or {})
    players = [n for n in ("refine", "lifter", "camera") if n in models]
    variables, steps = inference.restore_variables(workdir, STAGES, players, step=step)
    setup = Setup(
        config=config,
        datasets={},
        train_arrays={},
        models={n: models[n] for n in players},
        use_2d_only=False,
        priors=priors or {},
    )
    return inference.Predictor(
        experiment="camerapose",
        predict=make_predict(setup, variables),
        normalization=info.get("normalization") or common.data_normalization(config.data),
        checkpoint=steps,
        config=config,
        layout=LAYOUT.name,
        has_camera="camera" in models,
        takes_frame_scale="camera" in models,
        description=_description(models),
    )


def _noisy_inputs(setup: Setup, ds: PoseDataset) -> tuple[np.ndarray, np.ndarray]:
    key = jax.random.key(setup.config.noise.eval_seed)
    options = _noise_options(setup.config)
    x, c = jax.jit(lambda k, x, c: augment.detection_noise(k, x, c, **options))(
        key, ds.pose2d_norm, ds.confidence
    )
    return np.asarray(x), np.asarray(c)


def _reprojection_error(setup, predict, ds: PoseDataset, batch_size: int) -> dict[str, float]:
    """2D re-projection error on 2D-only data (normalised units and pixels where sizes known)."""
    out = jeval.batched_apply(lambda x, c, s: predict(x, c, s)["reprojected"], ds.pose2d_norm,
                               ds.confidence, frame_scale(ds), batch_size=batch_size)  # fmt: skip
    w = (ds.confidence > 0).astype(np.float64)
    d = out - ds.pose2d_norm
    res = {
        "num_examples": float(len(ds)),
        "mean_err_norm": float((np.linalg.norm(d, axis=-1) * w).sum() / w.sum()),
    }
    size = ds.image_size_px
    if size is not None and np.all(size > 0):
        if ds.normalization == "image":
            scale = size[:, None, :] / 2.0
        else:  # vp: both axes scaled by w / 2
            scale = np.repeat(size[:, None, :1], 2, -1) / 2.0
        res["mean_err_px"] = float((np.linalg.norm(d * scale, axis=-1) * w).sum() / w.sum())
    return res


# ------------------------------------------------------------------------------------------------
# run
# ------------------------------------------------------------------------------------------------


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Train the three stages (resuming where a previous run stopped), evaluate and report.

    Args:
      config: ``experiments/configs/camerapose.py`` config.
      workdir: output directory.

    Returns:
      The ``results.json`` record (plus ``"stages"`` with per-stage wall times / resume info).
    """
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

    trained = harness.run_stages(
        [declare(i, s) for i, s in enumerate(STAGES)], setup.train_arrays, workdir=wd,
        options=options,
    )  # fmt: skip
    state, stage_info = trained.state, trained.summary()
    if state is None:
        state = stage_state(setup, "end2end", variables, steps_per_epoch=steps_per_epoch)
    t_train = time.perf_counter() - t_start
    results = evaluate_and_report(setup, state, wd, stage_info=stage_info)
    LOGGER.info("camerapose: total %.1f s (training incl. data %.1f s)",
                time.perf_counter() - t_start, t_train)  # fmt: skip
    return results


def evaluate_and_report(
    setup: Setup, state: T.TrainState, workdir: pathlib.Path, *, stage_info: Mapping[str, Any]
) -> dict[str, Any]:
    """Evaluate on every 3D evaluation split (+ noisy inputs) and the 2D-only validation split;
    write results.json / results.md and the figures."""
    config = setup.config
    ec = config.eval
    predict = make_predict(setup, state)
    lift = jax.jit(lambda x, c: predict(x, c)["pose3d"])
    evaluations: dict[str, Any] = {}
    noisy_cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for split in common.eval_splits(setup.datasets, ec.splits):
        ds = setup.datasets[split]
        evaluations[split] = jeval.evaluate_3d(
            lift, ds, batch_size=ec.batch_size, action_key=ec.action_key, keep_predictions=True
        )
        if ec.noisy_input:
            noisy_cache[split] = _noisy_inputs(setup, ds)
            x, c = noisy_cache[split]
            evaluations[f"{split}+noise"] = jeval.evaluate_3d(
                lift, ds, batch_size=ec.batch_size, action_key=ec.action_key, pose2d_norm=x,
                confidence=c,
            )  # fmt: skip
    tables = {}
    if "camera" in setup.models:
        rows = {}
        for split in ("val_2d", "train_2d"):
            if split in setup.datasets:
                rows[split] = _reprojection_error(setup, predict, setup.datasets[split],
                                                  ec.batch_size)  # fmt: skip
                break
        if rows:
            tables["2D re-projection error with the predicted camera (2D-only data)"] = rows
    for split, e in evaluations.items():
        m = e["metrics"]
        LOGGER.info(
            "%s: MPJPE %.1f mm, P-MPJPE %.1f mm (action-wise)",
            split,
            m["mpjpe"]["action_wise"],
            m["p_mpjpe"]["action_wise"],
        )
    figures = _figures(setup, predict, evaluations, noisy_cache, workdir) if ec.figures else {}
    written = common.write_figures(workdir, figures)
    m = config.method
    dataset = {
        "synthetic": "synthetic demo (train_3d 2D-3D pairs + train_2d 2D-only, different pose mix)",
        "cmu": "CMU mocap train split through virtual cameras (2D-3D)",
        "cmu+coco": "CMU mocap train split (2D-3D, virtual cameras) + COCO train2017 (2D only)",
        "h36m": "Human3.6M S1,S5,S6,S7,S8 (2D-3D) + COCO/MPII (2D only)",
    }[config.data.preset]
    if not setup.use_2d_only:
        dataset += "; 2D-only data not used"
    n = config.noise
    source = (
        "ground-truth 2D (projections of the 3D poses; COCO: human annotations) with confidence "
        "from the source; '+noise' rows: the same GT 2D through the detection-noise model "
        f"(conf = 1 - (1 - {n.conf_min}) u^{n.conf_power}, u ~ U(0, 1); sigma "
        f"{n.sigma_min}-{n.sigma_max} normalised units, outliers p={n.outlier_prob}*(1-c) "
        f"of sigma {n.outlier_sigma}), fixed seed"
    )
    if config.data.preset == "h36m":
        source = f"Human3.6M 2D source '{config.data.h36m.source}'; " + source
    header = common.ResultsHeader(
        experiment="CameraPose (Yang et al. WACV 2023)",
        dataset=dataset,
        source_2d=source,
        protocol=(
            "root-relative (pelvis) camera-frame 3D, mm; MPJPE = protocol 1, P-MPJPE = protocol 2 "
            "(similarity Procrustes), N-MPJPE (LS scale); per action, action-wise and frame-wise "
            "means; 2D re-projection error on 2D-only data in normalised units / pixels"
        ),
        options={
            "refine": m.refine, "camera+2D-only": setup.use_2d_only, "gan": m.gan,
            "lifter_width": config.model.lifter.width, "batch": config.train.batch_size,
            "steps": {s: i["steps"] for s, i in stage_info.items()},
            "noise": config.noise.enabled, "seed": config.seed,
        },  # fmt: skip
        checkpoint={s: i["steps"] for s, i in stage_info.items()},
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


def _figures(setup, predict, evaluations, noisy_cache, workdir) -> dict[str, Any]:
    """Figure factories (called only when matplotlib is available)."""
    from jpose import viz

    k = int(setup.config.eval.figure_samples)
    figs: dict[str, Any] = {}
    test = next(iter(s for s in evaluations if not s.endswith("+noise")), None)
    if test is not None:
        ds = setup.datasets[test]
        idx = np.linspace(0, len(ds) - 1, k).astype(int)
        figs["pose3d_test"] = functools.partial(
            viz.figure_poses_3d,
            evaluations[test]["predictions"][idx],
            ds.pose3d_root_relative[idx],
            errors_mm=evaluations[test]["errors_mm"]["mpjpe"][idx],
            title=f"{test}: predicted 3D (side colours) vs ground truth (grey)",
        )
        if "refine" in setup.models and test in noisy_cache:
            x, c = noisy_cache[test]
            refined = np.asarray(predict(x[idx], c[idx])["refined"])
            figs["refinement_test"] = functools.partial(
                viz.figure_2d_comparison,
                {"input (noisy)": x[idx], "refined": refined, "ground truth": ds.pose2d_norm[idx]},
                confidence=c[idx],
                title=f"{test}: refinement network input vs output (Sec. 3.1)",
            )
    if "camera" in setup.models:
        split = next(
            (s for s in ("val_2d", "test_2d_mix", "train_2d") if s in setup.datasets), None
        )
        if split is not None:
            ds2 = setup.datasets[split]
            idx2 = np.linspace(0, len(ds2) - 1, k).astype(int)
            out = jax.device_get(
                predict(ds2.pose2d_norm[idx2], ds2.confidence[idx2], frame_scale(ds2)[idx2])
            )
            figs["reprojection_2d_only"] = functools.partial(
                viz.figure_reprojection,
                ds2.pose2d_norm[idx2],
                out["pose3d"],
                out["reprojected"],
                confidence=ds2.confidence[idx2],
                title=f"{split}: input 2D, lifted 3D, re-projection with the predicted camera "
                "(Fig. 8)",
            )
    figs["training_curves"] = functools.partial(
        common.training_curves_figure,
        workdir,
        title="CameraPose training (dotted lines: stage boundaries)",
    )
    return figs


if __name__ == "__main__":
    common.cli(run, default_config=common.config_path("camerapose"))
