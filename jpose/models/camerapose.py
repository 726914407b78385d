"""CameraPose networks, forward pass and training objectives (Yang et al., "CameraPose:
Weakly-Supervised Monocular 3D Human Pose Estimation by Leveraging In-the-wild 2D Annotations",
WACV 2023).

Axes: ``...`` leading batch axes, ``J`` joints. Units: 2D keypoints in *normalised image units*
(VideoPose3D convention ``uv / w * 2 - [1, h / w]``, see ``jpose.camera.normalize_screen``); the
camera branch's focal lengths and principal point are in the same normalised units (a focal length
of ``f_px`` pixels on an image ``w`` pixels wide is ``2 f_px / w``; H36M: about 2.3), its
translation ``t3D`` in metres (camera frame).

* :class:`RefineNet` (Sec. 3.1): residual fully connected network, hidden 512, input normalised 2D
  and normalised confidence ``[..., J, 3]``, output refined 2D ``[..., J, 2]`` predicted as a
  residual on the input 2D. The paper says "a standard residual block consisting of fully
  connected layers with a hidden dimension of 512"; the number of blocks (default 2) is a guess and
  a field.
* :class:`CameraBranch` (Sec. 3.2): 2 residual blocks, hidden 512, predicting ``fx, fy, cx, cy``
  (eq. 5) and ``t3D`` (eq. 6) per instance.
* :class:`CameraPoseForward` and :func:`camerapose_predict`: the pipeline of Fig. 2, refine ->
  lift -> camera -> re-projection, shared by training phases and inference.
* The training objectives on that forward pass (Sec. 3-4): :func:`refinement_objective` (eq. 4),
  :func:`supervised_objective` (eq. 16 on real and PoseAug-augmented pairs),
  :func:`weak_objective` (eq. 17), :func:`discriminator_objective` (eqs. 12-15),
  :func:`generator_objective` (PoseAug's generator loss) and :func:`relative_depth_objective`
  (WSP's eq. 9 as an optional extra term), on the batches of
  :func:`jpose.data.camerapose.training_arrays`; :func:`d2d_input` is D_2D's input and
  :func:`init_players` initialises every player from :func:`example_inputs`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jpose import adversarial, augment, losses, skeleton
from jpose.models.core import Model
from jpose.models.lifter import ResidualMLP

__all__ = [
    "RefineNet",
    "CameraBranch",
    "CameraPoseForward",
    "refine_net",
    "camera_branch",
    "camerapose_predict",
    "refine_input",
    "example_inputs",
    "init_players",
    "d2d_input",
    "reprojection_loss",
    "refinement_objective",
    "supervised_objective",
    "weak_objective",
    "discriminator_objective",
    "generator_objective",
    "relative_depth_objective",
]


def _positive_ratio(raw: jax.Array, min_ratio: float) -> jax.Array:
    """``min_ratio + softplus(raw + c)`` with ``c`` chosen so that a zero raw output gives 1.

    Strictly positive (at least ``min_ratio``, also where softplus underflows to 0).
    """
    c = math.log(math.expm1(1.0 - min_ratio))  # softplus(c) = 1 - min_ratio
    return min_ratio + jax.nn.softplus(raw + c)


def _zero_init_mlp(net: nn.Module, out_shape: tuple[int, ...], **kwargs: Any) -> ResidualMLP:
    """The zero-initialised :class:`ResidualMLP` ``mlp`` with ``net``'s width, blocks, dropout,
    batch norm and axis name (an untrained network predicts its prior)."""
    return ResidualMLP(
        out_shape=out_shape,
        width=net.width,
        num_blocks=net.num_blocks,
        dropout=net.dropout,
        use_batch_norm=net.use_batch_norm,
        zero_init_output=True,
        axis_name=net.axis_name,
        name="mlp",
        **kwargs,
    )


class RefineNet(nn.Module):
    """Confidence-aware 2D refinement: ``[..., J, 3] (u, v, c') -> [..., J, 2]``.

    Output = input 2D + residual; the residual's output layer is zero-initialised so an untrained
    network is the identity.

    Attributes:
      width: hidden width (512, paper).
      num_blocks: residual blocks (guess: 2).
      dropout: dropout rate.
      use_batch_norm: batch norm after hidden dense layers.
      axis_name: batch-norm axis name for data parallelism.
    """

    width: int = 512
    num_blocks: int = 2
    dropout: float = 0.0
    use_batch_norm: bool = True
    axis_name: str | None = None

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        """Refine ``x [..., J, 3]`` (normalised 2D + normalised confidence) to ``[..., J, 2]``."""
        if x.ndim < 2 or x.shape[-1] != 3:
            raise ValueError(f"RefineNet expects [..., J, 3] (u, v, confidence), got {x.shape}")
        return x[..., :2] + _zero_init_mlp(self, (x.shape[-2], 2))(x, train=train)


class CameraBranch(nn.Module):
    """Per-instance camera: inputs ``[..., J, C]`` -> ``{"focal", "center", "translation"}``.

    Outputs (leading axes ``...``):

    * ``focal [..., 2]`` = ``focal_prior * (min_ratio + softplus(raw + c))`` with ``c`` such that a
      zero raw output gives exactly the prior: positive by construction (at least
      ``min_ratio * prior``), normalised image units.
    * ``center [..., 2]`` = ``center_prior + raw`` (normalised image units).
    * ``translation [..., 3]``: ``t_x, t_y = prior + raw`` and ``t_z = prior_z * (min_ratio +
      softplus(raw + c))`` (positive depth of the root), metres.

    The output layer is zero-initialised, so an untrained branch predicts the priors.

    Attributes:
      width: hidden width (512, paper).
      num_blocks: residual blocks (2, paper).
      focal_prior: (fx, fy) around which the focal lengths are predicted (H36M ~ 2.29 normalised).
      center_prior: (cx, cy) prior.
      translation_prior: (tx, ty, tz) prior in metres (tz > 0).
      min_ratio: lower bound of focal / prior and t_z / prior_z.
      dropout, use_batch_norm, axis_name: see :class:`jpose.models.lifter.ResidualMLP`.
    """

    width: int = 512
    num_blocks: int = 2
    focal_prior: tuple[float, float] = (2.29, 2.29)
    center_prior: tuple[float, float] = (0.0, 0.0)
    translation_prior: tuple[float, float, float] = (0.0, 0.0, 5.0)
    min_ratio: float = 0.01
    dropout: float = 0.0
    use_batch_norm: bool = True
    axis_name: str | None = None

    @nn.compact
    def __call__(self, *inputs: jax.Array, train: bool) -> dict[str, jax.Array]:
        """Predict camera parameters from one or more ``[..., J, C]`` inputs (concatenated).

        Args:
          *inputs: e.g. refined 2D ``[..., J, 2]`` and/or the lifted root-relative 3D
            ``[..., J, 3]``.
          train: training mode.

        Returns:
          dict with ``focal [..., 2]``, ``center [..., 2]``, ``translation [..., 3]``.
        """
        if not inputs:
            raise ValueError("CameraBranch needs at least one input [..., J, C]")
        flat = [x.reshape(*x.shape[:-2], -1) for x in inputs]
        if len({f.shape[:-1] for f in flat}) > 1:
            raise ValueError(f"inputs must share leading axes, got {[x.shape for x in inputs]}")
        h = jnp.concatenate(flat, axis=-1)
        raw = _zero_init_mlp(self, (7,), num_input_axes=1)(h, train=train)
        focal = jnp.asarray(self.focal_prior) * _positive_ratio(raw[..., 0:2], self.min_ratio)
        center = jnp.asarray(self.center_prior) + raw[..., 2:4]
        t_prior = jnp.asarray(self.translation_prior)
        txy = t_prior[:2] + raw[..., 4:6]
        tz = t_prior[2] * _positive_ratio(raw[..., 6:7], self.min_ratio)
        return {"focal": focal, "center": center, "translation": jnp.concatenate([txy, tz], -1)}


def refine_net(*, width: int = 512, num_blocks: int = 2, dropout: float = 0.0) -> Model:
    """CameraPose refinement network as a :class:`Model` (``[..., J, 3] -> [..., J, 2]``)."""
    return Model(RefineNet(width=width, num_blocks=num_blocks, dropout=dropout), name="refine")


def camera_branch(
    *,
    width: int = 512,
    num_blocks: int = 2,
    focal_prior: tuple[float, float] = (2.29, 2.29),
    center_prior: tuple[float, float] = (0.0, 0.0),
    translation_prior: tuple[float, float, float] = (0.0, 0.0, 5.0),
    dropout: float = 0.0,
) -> Model:
    """CameraPose camera branch as a :class:`Model` (see :class:`CameraBranch`)."""
    return Model(
        CameraBranch(
            width=width,
            num_blocks=num_blocks,
            focal_prior=tuple(focal_prior),
            center_prior=tuple(center_prior),
            translation_prior=tuple(translation_prior),
            dropout=dropout,
        ),
        name="camera_branch",
    )


# ------------------------------------------------------------------------------------------------
# The forward pass (Fig. 2)
# ------------------------------------------------------------------------------------------------


def refine_input(x: jax.Array, c: jax.Array) -> jax.Array:
    """Refinement-network input ``[..., J, 3]``: normalised 2D and the eq.-3 normalised
    confidence (:func:`jpose.losses.camerapose_normalize_confidence`)."""
    return jnp.concatenate([x, losses.camerapose_normalize_confidence(c)[..., None]], -1)


@dataclasses.dataclass(frozen=True)
class CameraPoseForward:
    """CameraPose's forward pass (Sec. 3, Fig. 2) on any ``apply(player, *inputs) -> output``.

    The same object serves the training phases (``apply`` = a phase context's, which trains or
    freezes each player) and inference (``apply`` = evaluation-mode networks).

    Attributes:
      apply: ``(player, *inputs) -> output`` for the players ``refine``, ``lifter``, ``camera``.
      has_refine: whether the pipeline has a refinement network (else 2D passes through).
      camera_inputs: ``"2d"`` (the paper: refined 2D) or ``"2d+3d"`` (2D and the lifted 3D).
      has_camera: whether the pipeline has a camera branch (the objectives' camera terms).
    """

    apply: Callable[..., Any]
    has_refine: bool = True
    camera_inputs: str = "2d"
    has_camera: bool = True

    def refine(self, x: jax.Array, c: jax.Array) -> jax.Array:
        """Refined 2D ``[..., J, 2]`` from 2D ``x`` and confidences ``c`` ``[..., J]``."""
        return self.apply("refine", refine_input(x, c)) if self.has_refine else x

    def lift(self, x2d: jax.Array) -> jax.Array:
        """Root-relative camera-frame 3D ``[..., J, 3]`` (metres)."""
        return self.apply("lifter", x2d)

    def camera(self, x2d: jax.Array, pose3d: jax.Array, scale: jax.Array) -> dict[str, jax.Array]:
        """Camera branch on the refined 2D in the aspect-preserving frame ``x2d * scale``
        (``scale`` ``[..., 2]``: ``[1, h / w]`` of image-normalised 2D); its intrinsics are in
        that frame too."""
        x2d = x2d * scale[..., None, :]
        if self.camera_inputs == "2d+3d":
            return self.apply("camera", x2d, pose3d)
        if self.camera_inputs != "2d":
            raise ValueError(f"camera_inputs must be '2d' or '2d+3d', got {self.camera_inputs!r}")
        return self.apply("camera", x2d)

    @staticmethod
    def project(pose3d: jax.Array, cam: Mapping[str, jax.Array], *, min_depth: float) -> jax.Array:
        """Re-projection of ``pose3d + t3D`` with the predicted intrinsics (eq. 7's projection,
        :func:`jpose.losses.camerapose_project`), in the camera branch's frame."""
        return losses.camerapose_project(
            pose3d, focal=cam["focal"], center=cam["center"], offset=cam["translation"],
            min_depth=min_depth,
        )  # fmt: skip

    def reproject(self, x: jax.Array, c: jax.Array, scale: jax.Array, *, min_depth: float
                  ) -> jax.Array:  # fmt: skip
        """Refine, lift, predict the camera and re-project: the 2D ``[..., J, 2]`` of the whole
        pipeline in the camera branch's frame (``x * scale``)."""
        refined = self.refine(x, c)
        pose = self.lift(refined)
        return self.project(pose, self.camera(refined, pose, scale), min_depth=min_depth)


def camerapose_predict(
    models: Mapping[str, Model],
    variables: Mapping[str, Any],
    *,
    camera_inputs: str = "2d",
    min_depth: float = 0.1,
) -> Callable[..., dict[str, jax.Array]]:
    """Jitted evaluation-mode ``predict(pose2d_norm, confidence[, frame_scale]) -> dict``.

    Args:
      models: ``lifter`` and optionally ``refine`` and ``camera``.
      variables: ``{player: variables}`` of those players.
      camera_inputs: see :class:`CameraPoseForward`.
      min_depth: depth clamp of the re-projection (metres).

    Returns:
      ``predict`` returning ``refined`` ``[B, J, 2]``, ``pose3d`` ``[B, J, 3]`` (root-relative,
      metres) and, with a camera branch, ``focal`` / ``center`` ``[B, 2]`` and ``reprojected``
      ``[B, J, 2]`` in the units of ``pose2d_norm`` and ``translation`` ``[B, 3]`` (metres).
      ``frame_scale`` ``[B, 2]`` (default ones, exact for square images and ``"vp"`` 2D) lets
      the camera branch see the 2D in its aspect-preserving frame.
    """
    variables = dict(variables)

    def apply(name: str, *inputs: jax.Array) -> Any:
        return models[name].apply(variables[name], *inputs, train=False)[0]

    net = CameraPoseForward(apply, has_refine="refine" in models, camera_inputs=camera_inputs,
                            has_camera="camera" in models)  # fmt: skip

    @jax.jit
    def predict(x: jax.Array, c: jax.Array, scale: jax.Array | None = None) -> dict[str, jax.Array]:
        refined = net.refine(x, c)
        pose = net.lift(refined)
        out = {"refined": refined, "pose3d": pose}
        if net.has_camera:
            scale = jnp.ones((*x.shape[:-2], 2), x.dtype) if scale is None else scale
            cam = net.camera(refined, pose, scale)
            proj = net.project(pose, cam, min_depth=min_depth)
            out.update(cam)  # back from the aspect-preserving frame to the input's units
            out["focal"], out["center"] = cam["focal"] / scale, cam["center"] / scale
            out["reprojected"] = proj / scale[..., None, :]
        return out

    return predict


# ------------------------------------------------------------------------------------------------
# Initialisation and D_2D's input
# ------------------------------------------------------------------------------------------------


def d2d_input(
    pose2d: jax.Array, *, kind: str = "kcs", layout: str | skeleton.Layout = skeleton.H36M17
) -> jax.Array:
    """D_2D's input: the 2D KCS matrix ``[..., B, B]`` of CameraPose eq. 12 (``kind="kcs"``) or the
    root-centred pose ``[..., J, 2]`` (``"pose"``)."""
    lay = skeleton.get_layout(layout)
    if kind == "kcs":
        bones = jnp.einsum("bj,...jc->...bc", np.asarray(lay.incidence, np.float32), pose2d)
        return bones @ jnp.swapaxes(bones, -1, -2)
    if kind == "pose":
        return pose2d - pose2d[..., lay.root : lay.root + 1, :]
    raise ValueError(f"D_2D input must be 'kcs' or 'pose', got {kind!r}")


def example_inputs(
    player: str,
    *,
    layout: str | skeleton.Layout = skeleton.H36M17,
    camera_inputs: str = "2d",
    d2d_kind: str = "kcs",
) -> tuple[jax.Array, ...]:
    """Zero inputs (batch 2) of one CameraPose player, for its initialisation: ``refine``,
    ``lifter``, ``camera`` (see :class:`CameraPoseForward`), ``generator`` (a pose 5 m in front of
    the camera), ``d2d`` (:func:`d2d_input` of ``d2d_kind``) or ``d3d`` (a 3D pose)."""
    lay = skeleton.get_layout(layout)
    x2, x3 = jnp.zeros((2, lay.num_joints, 2)), jnp.zeros((2, lay.num_joints, 3))
    if player in ("refine", "d3d"):  # refine: 2D + confidence
        return (x3,)
    if player == "lifter":
        return (x2,)
    if player == "camera":
        return (x2, x3) if camera_inputs == "2d+3d" else (x2,)
    if player == "generator":
        return (x3 + jnp.array([0.0, 0.0, 5.0]),)
    if player == "d2d":
        return (d2d_input(x2, kind=d2d_kind, layout=lay),)
    raise ValueError(f"unknown CameraPose player {player!r}")


def init_players(
    models: Mapping[str, Model], key: jax.Array, *, abstract: bool = False, **example_options: Any
) -> dict[str, tuple[Any, Any]]:
    """Initial ``{player: (params, batch_stats)}`` of ``models`` (player ``i`` in name order with
    ``fold_in(key, i)``, inputs :func:`example_inputs` with ``example_options``).

    With ``abstract`` the values are zeros of the right shapes (no initialiser is compiled): a
    template for restoring a checkpoint.
    """
    out = {}
    for i, (name, model) in enumerate(sorted(models.items())):
        args = (jax.random.fold_in(key, i), *example_inputs(name, **example_options))
        if abstract:
            shapes = jax.eval_shape(model.init, *args)
            v = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
        else:
            v = model.init(*args)
        out[name] = (v["params"], v.get("batch_stats", {}))
    return out


# ------------------------------------------------------------------------------------------------
# Training objectives (Sec. 3-4): batch means and metrics of each phase
# ------------------------------------------------------------------------------------------------

Batch = Mapping[str, jax.Array]
Inputs = Callable[[jax.Array, jax.Array], tuple[jax.Array, jax.Array]]


def _ground_truth_inputs(x: jax.Array, c: jax.Array) -> tuple[jax.Array, jax.Array]:
    return x, c


def _masked_mean(x: jax.Array, mask: jax.Array | None) -> jax.Array:
    if mask is None:
        return jnp.mean(x)
    m = mask.astype(x.dtype)
    return jnp.sum(x * m) / jnp.maximum(jnp.sum(m), 1.0)


def reprojection_loss(
    pose3d: jax.Array,
    keypoints_2d: jax.Array,
    cam: Mapping[str, jax.Array],
    weights: jax.Array,
    *,
    scale: float = 1.0,
    min_depth: float = 0.1,
) -> jax.Array:
    """L_2D of CameraPose eq. 7 per example (:func:`jpose.losses.camerapose_reprojection_loss`)
    with the camera branch's outputs ``cam``, on 2D (and intrinsics) multiplied by ``scale``."""
    return losses.camerapose_reprojection_loss(
        pose3d,
        keypoints_2d * scale,
        focal=cam["focal"] * scale,
        center=cam["center"] * scale,
        offset=cam["translation"],
        weights=weights,
        min_depth=min_depth,
    )


def refinement_objective(
    net: CameraPoseForward, batches: Sequence[Batch], *, inputs: Inputs = _ground_truth_inputs
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Stage 1 (Sec. 3.1): the batch mean of L_ref, CameraPose eq. 4
    (:func:`jpose.losses.camerapose_refinement_loss`), on the concatenated ``batches``.

    Args:
      net: the forward pass.
      batches: batches with ``pose2d_norm`` (the ground truth) and ``confidence``.
      inputs: ``inputs(x, c) -> (x_in, c_in)``: the refinement network's input from the ground
        truth (e.g. :func:`jpose.augment.detection_noise`).

    Returns:
      ``(loss, {"input_err_2d", "refined_err_2d"})``: mean 2D errors of the input and the refined
      2D over the present joints (source confidence > 0), normalised units.
    """
    x = jnp.concatenate([b["pose2d_norm"] for b in batches])
    c_src = jnp.concatenate([b["confidence"] for b in batches])
    noisy, c = inputs(x, c_src)
    refined = net.refine(noisy, c)
    loss = jnp.mean(losses.camerapose_refinement_loss(refined, x, c))
    present = (c_src > 0).astype(jnp.float32)
    err_in = jnp.sum(jnp.linalg.norm(noisy - x, axis=-1) * present) / jnp.sum(present)
    err_out = jnp.sum(jnp.linalg.norm(refined - x, axis=-1) * present) / jnp.sum(present)
    return loss, {"input_err_2d": err_in, "refined_err_2d": err_out}


def supervised_objective(
    net: CameraPoseForward,
    batch: Batch,
    *,
    augmented: Batch | None = None,
    inputs: Inputs = _ground_truth_inputs,
    aug_weight: float = 1.0,
    train_refine: bool = False,
    lambda_cam: float = 0.01,
    lambda_2d_phi: float = 0.5,
    lambda_3d: float = 1.0,
    lambda_ref_phi: float = 0.0,
    reproj_scale: float = 1.0,
    min_depth: float = 0.1,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """CameraPose eq. 16 on 2D-3D pairs: ``lambda_ref L_ref + lambda_cam L_cam + lambda_2D,phi L_2D
    + lambda_3D L_3D`` (eqs. 4, 8, 7, 9; :func:`jpose.losses.camerapose_loss_3d`).

    Real pairs count as a batch mean; ``augmented`` pairs (PoseAug, :func:`jpose.augment.
    poseaug_augment`'s ``x``, ``pose3d``, ``root``, ``valid``; confidence 1, the real pairs'
    intrinsics) are added with weight ``aug_weight`` as a mean over the valid ones. The camera
    terms (in the aspect-preserving frame, :func:`jpose.data.camerapose.frame_scale`) need
    ``net.has_camera``; L_ref counts with ``train_refine`` (else 0).

    Args:
      net: the forward pass.
      batch: ``pose2d_norm``, ``confidence``, ``pose3d`` (root-relative target), ``root`` (L_cam's
        ``t_3D``), ``focal``, ``center`` (ground-truth intrinsics), ``frame_scale``.
      augmented: optional augmented pairs.
      inputs: the networks' input 2D and confidences from the ground truth (see
        :func:`refinement_objective`).
      aug_weight: weight of the augmented pairs.
      train_refine: whether L_ref is part of the loss.
      lambda_cam, lambda_2d_phi, lambda_3d, lambda_ref_phi: eq. 16's weights (paper: 0.01, 0.5,
        1; lambda_ref,phi is not reported).
      reproj_scale, min_depth: see :func:`reprojection_loss`.

    Returns:
      ``(loss, metrics)``: each term's mean over the real (``*_real``) and valid augmented
      (``*_aug``) pairs and their MPJPE in mm.
    """
    x, c, pose_gt, root = batch["pose2d_norm"], batch["confidence"], batch["pose3d"], batch["root"]
    focal, center, scale = batch["focal"], batch["center"], batch["frame_scale"]
    nb, valid = x.shape[0], None
    if augmented is not None:  # real and augmented pairs in one forward pass
        x = jnp.concatenate([x, augmented["x"]])
        c = jnp.concatenate([c, jnp.ones_like(c)])
        pose_gt = jnp.concatenate([pose_gt, augmented["pose3d"]])
        root = jnp.concatenate([root, augmented["root"]])
        focal, center = jnp.concatenate([focal, focal]), jnp.concatenate([center, center])
        scale = jnp.concatenate([scale, scale])
        valid = augmented["valid"]
    x_in, c_in = inputs(x, c)
    refined = net.refine(x_in, c_in)
    pose = net.lift(refined)
    l3d = losses.camerapose_pose_loss(pose, pose_gt)
    lref = (
        losses.camerapose_refinement_loss(refined, x, c_in) if train_refine else jnp.zeros_like(l3d)
    )
    if net.has_camera:
        # intrinsics and re-projection in the aspect-preserving frame (frame_scale)
        cam = net.camera(refined, pose, scale)
        lcam = losses.camerapose_camera_loss(
            losses.camerapose_intrinsics(jnp.concatenate([cam["focal"], cam["center"]], -1)),
            losses.camerapose_intrinsics(jnp.concatenate([focal * scale, center * scale], -1)),
            cam["translation"],
            root,
        )
        x_frame = x * scale[..., None, :]
        l2d = reprojection_loss(pose, x_frame, cam, (c > 0).astype(x.dtype),
                                scale=reproj_scale, min_depth=min_depth)  # fmt: skip
    else:
        lcam = l2d = jnp.zeros_like(l3d)
    total = losses.camerapose_loss_3d(
        lcam, l2d, l3d, lref, lambda_cam=lambda_cam, lambda_2d=lambda_2d_phi, lambda_3d=lambda_3d,
        lambda_ref=lambda_ref_phi,
    )  # fmt: skip
    parts = {"l3d": l3d, "lcam": lcam, "l2d": l2d, "lref": lref}
    loss = jnp.mean(total[:nb])
    metrics = {f"{k}_real": jnp.mean(v[:nb]) for k, v in parts.items()}
    err = jnp.linalg.norm(pose - pose_gt, axis=-1).mean(-1)
    metrics["mpjpe_real_mm"] = 1000.0 * jnp.mean(err[:nb])
    if valid is not None:
        loss = loss + aug_weight * _masked_mean(total[nb:], valid)
        metrics.update({f"{k}_aug": _masked_mean(v[nb:], valid) for k, v in parts.items()})
        metrics["mpjpe_aug_mm"] = 1000.0 * _masked_mean(err[nb:], valid)
    return loss, metrics


def weak_objective(
    net: CameraPoseForward,
    batch: Batch,
    *,
    inputs: Inputs = _ground_truth_inputs,
    train_refine: bool = False,
    lambda_2d_phi_prime: float = 0.2,
    lambda_ref_phi_prime: float = 0.0,
    reproj_scale: float = 1.0,
    min_depth: float = 0.1,
    discriminator: Callable[[jax.Array], jax.Array] | None = None,
    lambda_adv: float = 0.0,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """CameraPose eq. 17 on 2D-only samples: the batch mean of ``lambda_ref L_ref + lambda_2D,phi'
    L_2D,phi'`` (:func:`jpose.losses.camerapose_loss_2d`), the re-projection in the
    aspect-preserving frame (``pose2d_norm * frame_scale``).

    With a ``discriminator`` (D_2D scores ``[B, 1]`` of 2D in that frame) and ``lambda_adv > 0``,
    ``lambda_adv`` times the LS-GAN generator loss of the re-projections is added (D_2D
    "regulates the re-projected 2D poses", Sec. 3.3).

    Args:
      net: the forward pass (with a camera branch).
      batch: ``pose2d_norm``, ``confidence``, ``frame_scale``.
      inputs, train_refine, reproj_scale, min_depth: see :func:`supervised_objective`.
      lambda_2d_phi_prime, lambda_ref_phi_prime: eq. 17's weights (paper: 0.2; the second is
        not reported).
      discriminator, lambda_adv: the optional D_2D term.

    Returns:
      ``(loss, metrics)``: the terms, the mean re-projection error (normalised units), the mean
      focal length and root depth.
    """
    x_gt, c_src, scale = batch["pose2d_norm"], batch["confidence"], batch["frame_scale"]
    x_in, c = inputs(x_gt, c_src)
    refined = net.refine(x_in, c)
    pose = net.lift(refined)
    cam = net.camera(refined, pose, scale)
    # L_2D, D_2D and the metrics in the aspect-preserving frame (frame_scale)
    x_frame = x_gt * scale[..., None, :]
    l2d = reprojection_loss(pose, x_frame, cam, (c_src > 0).astype(x_gt.dtype),
                            scale=reproj_scale, min_depth=min_depth)  # fmt: skip
    lref = (
        losses.camerapose_refinement_loss(refined, x_gt, c) if train_refine else jnp.zeros_like(l2d)
    )
    total = jnp.mean(losses.camerapose_loss_2d(l2d, lref, lambda_2d=lambda_2d_phi_prime,
                                               lambda_ref=lambda_ref_phi_prime))  # fmt: skip
    metrics = {"l2d": jnp.mean(l2d), "lref": jnp.mean(lref)}
    proj = net.project(pose, cam, min_depth=min_depth)
    if discriminator is not None and lambda_adv > 0:
        adv = jnp.mean(adversarial.lsgan_generator_loss(discriminator(proj)[..., 0]))
        total = total + lambda_adv * adv
        metrics["adv_2d"] = adv
    w = (c_src > 0).astype(x_gt.dtype)
    err = jnp.linalg.norm(proj - x_frame, axis=-1)
    metrics["reproj_err_norm"] = jnp.sum(err * w) / jnp.sum(w)
    metrics["focal_mean"] = jnp.mean(cam["focal"])
    metrics["depth_mean"] = jnp.mean(cam["translation"][..., 2])
    return total, metrics


def discriminator_objective(
    d2d: Callable[[jax.Array], jax.Array],
    d3d: Callable[[jax.Array], jax.Array],
    batch: Batch,
    aug: Mapping[str, Any],
    *,
    weak_batch: Batch | None = None,
    reproject: Callable[[Batch], jax.Array] | None = None,
    accuracy: Callable[[jax.Array, jax.Array], Mapping[str, jax.Array]] | None = None,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """LS-GAN discriminator losses of CameraPose eqs. 12-15 (fake target 0, see
    :func:`jpose.adversarial.lsgan_discriminator_loss`), the real and fake halves averaged
    separately, invalid augmentations left out.

    Eq. 13: D_2D's real samples are the GT 2D of ``batch`` (and of ``weak_batch``), its fakes the
    augmented ``x*`` (and ``reproject(weak_batch)``, the 2D-only samples' re-projections, without
    gradient); all in the aspect-preserving frame (``* frame_scale``). D_3D: real ``X``, fake
    ``X*``.

    Args:
      d2d: D_2D scores ``[N, 1]`` of 2D poses (its input transform included, e.g.
        :func:`d2d_input`).
      d3d: D_3D part scores ``[N, P]`` of 3D poses.
      batch: the 2D-3D batch (``pose2d_norm``, ``pose3d``, ``frame_scale``).
      aug: :func:`jpose.augment.poseaug_augment` of ``batch``.
      weak_batch, reproject: optional 2D-only batch and its re-projection (camera branch frame).
      accuracy: optional ``accuracy(real_scores, fake_scores) -> {name: value}`` of a
        discriminator (e.g. :func:`jpose.training.discriminator_accuracy`), reported as
        ``d2d_<name>`` and ``d3d_<name>``.

    Returns:
      ``(loss_2d + loss_3d, {"d2d_loss", "d3d_loss", ...})``.
    """
    s3 = batch["frame_scale"][..., None, :]
    real2d, fake2d, fake_mask = [batch["pose2d_norm"] * s3], [aug["x"] * s3], [aug["valid"]]
    if weak_batch is not None and reproject is not None:
        real2d.append(weak_batch["pose2d_norm"] * weak_batch["frame_scale"][..., None, :])
        reproj = reproject(weak_batch)
        fake2d.append(jax.lax.stop_gradient(reproj))
        fake_mask.append(jnp.ones(reproj.shape[0], bool))
    real2d, fake2d = jnp.concatenate(real2d), jnp.concatenate(fake2d)
    fake_mask = jnp.concatenate(fake_mask)
    nr, nb = real2d.shape[0], batch["pose3d"].shape[0]
    d2 = d2d(jnp.concatenate([real2d, fake2d]))
    d2_real, d2_fake = d2[:nr, 0], d2[nr:, 0]
    d3 = d3d(jnp.concatenate([batch["pose3d"], aug["pose3d"]]))
    d3_real, d3_fake = d3[:nb], d3[nb:]
    l2 = jnp.mean(adversarial.lsgan_loss(d2_real, target=1.0)) + _masked_mean(
        adversarial.lsgan_loss(d2_fake, target=0.0), fake_mask
    )
    l3 = jnp.mean(adversarial.lsgan_loss(d3_real, target=1.0, part_axis=-1)) + _masked_mean(
        adversarial.lsgan_loss(d3_fake, target=0.0, part_axis=-1), aug["valid"]
    )
    metrics = {"d2d_loss": l2, "d3d_loss": l3}
    if accuracy is not None:
        for name, (real, fake) in (("d2d", (d2_real, d2_fake)), ("d3d", (d3_real, d3_fake))):
            metrics.update({f"{name}_{k}": v for k, v in accuracy(real, fake).items()})
    return l2 + l3, metrics


def generator_objective(
    d2d: Callable[[jax.Array], jax.Array],
    d3d: Callable[[jax.Array], jax.Array],
    batch: Batch,
    aug: Mapping[str, Any],
    *,
    lambda_adv_2d: float = 1.0,
    lambda_adv_3d: float = 6.0,
    lambda_range: float = 3.0,
    ba_range_target: float = 0.205,
    ba_range_width: float = 0.165,
    bl_range_limit: float = 0.1,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """PoseAug's generator objective (Gong et al. CVPR 2021, code: ``1 L_adv^2D + 6 L_adv^3D + 3
    L_diff``; CameraPose Sec. 3.3 trains its generator "similar to PoseAug").

    Args:
      d2d, d3d: the discriminators (see :func:`discriminator_objective`).
      batch: the 2D-3D batch (its ``frame_scale``).
      aug: :func:`jpose.augment.poseaug_augment` of ``batch``.
      lambda_adv_2d, lambda_adv_3d, lambda_range: the weights.
      ba_range_target, ba_range_width, bl_range_limit: the bands of the range losses
        (:func:`jpose.augment.bone_angle_range_loss`, :func:`jpose.augment.bone_length_range_loss`).

    Returns:
      ``(loss, {"adv_2d", "adv_3d", "range", **aug["stats"]})``; the LS-GAN terms are means over
      the valid augmentations.
    """
    valid = aug["valid"]
    d2 = d2d(aug["x"] * batch["frame_scale"][..., None, :])[..., 0]
    d3 = d3d(aug["pose3d"])
    adv2 = _masked_mean(adversarial.lsgan_generator_loss(d2), valid)
    adv3 = _masked_mean(adversarial.lsgan_generator_loss(d3, part_axis=-1), valid)
    rng = jnp.mean(
        augment.bone_angle_range_loss(aug["ba_diff"], target=ba_range_target, width=ba_range_width)
        + augment.bone_length_range_loss(aug["rho"], limit=bl_range_limit)
    )
    loss = lambda_adv_2d * adv2 + lambda_adv_3d * adv3 + lambda_range * rng
    return loss, {"adv_2d": adv2, "adv_3d": adv3, "range": rng, **aug["stats"]}


def relative_depth_objective(
    net: CameraPoseForward,
    pairs: Mapping[str, jax.Array],
    *,
    temperature: float = 0.1,
    root_only: bool = True,
) -> tuple[jax.Array, jax.Array]:
    """WSP's relative-depth loss (Qiu et al., eq. 9,
    :func:`jpose.losses.wsp_relative_depth_aux_loss`) on the predicted absolute depths (lifter
    depth + camera-branch ``t_z``) of both people of each pair: an optional extra term of
    CameraPose's 2D-only phase.

    Args:
      net: the forward pass (with a camera branch); no detection noise: the pairs' 2D are
        annotations, in a frame of scale 1.
      pairs: ``pose_a`` / ``pose_b`` ``[B, J, 2]``, ``conf_a`` / ``conf_b`` ``[B, J]``, ``label``
        ``[B]`` (1: A nearer) and ``joint_mask`` ``[B, J]``.
      temperature: metres per logit unit.
      root_only: the gradient reaches only the camera branch's root translation, not the lifter
        (every joint label of a pair says the same thing: which person is nearer).

    Returns:
      ``(loss, accuracy)``: the batch mean and the fraction of masked joints ordered correctly.
    """
    b = pairs["pose_a"].shape[0]
    x = jnp.concatenate([pairs["pose_a"], pairs["pose_b"]])
    c = jnp.concatenate([pairs["conf_a"], pairs["conf_b"]])
    refined = net.refine(x, c)
    pose = net.lift(refined)
    if root_only:  # the lifter gets no RD gradient (neither directly nor via the camera)
        pose = jax.lax.stop_gradient(pose)
    cam = net.camera(refined, pose, jnp.ones((2 * b, 2), refined.dtype))
    depth = pose[..., 2] + cam["translation"][..., None, 2]  # [2B, J] camera-frame Z
    labels = jnp.broadcast_to(pairs["label"][:, None], depth[:b].shape)
    mask = pairs["joint_mask"].astype(depth.dtype)
    loss = jnp.mean(
        losses.wsp_relative_depth_aux_loss(
            depth[:b], depth[b:], labels, mask=mask, temperature=temperature
        )
    )
    correct = ((depth[:b] <= depth[b:]) == (labels > 0.5)).astype(depth.dtype)
    return loss, jnp.sum(correct * mask) / jnp.maximum(jnp.sum(mask), 1.0)
