"""CameraPose networks (Yang et al., "CameraPose: Weakly-Supervised Monocular 3D Human Pose
Estimation by Leveraging In-the-wild 2D Annotations", WACV 2023).

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
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jpose import losses
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
]


def _positive_ratio(raw: jax.Array, min_ratio: float) -> jax.Array:
    """``min_ratio + softplus(raw + c)`` with ``c`` chosen so that a zero raw output gives 1.

    Strictly positive (at least ``min_ratio``, also where softplus underflows to 0).
    """
    c = math.log(math.expm1(1.0 - min_ratio))  # softplus(c) = 1 - min_ratio
    return min_ratio + jax.nn.softplus(raw + c)


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
        j = x.shape[-2]
        residual = ResidualMLP(
            out_shape=(j, 2),
            width=self.width,
            num_blocks=self.num_blocks,
            dropout=self.dropout,
            use_batch_norm=self.use_batch_norm,
            zero_init_output=True,
            axis_name=self.axis_name,
            name="mlp",
        )(x, train=train)
        return x[..., :2] + residual


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
        lead = flat[0].shape[:-1]
        for f in flat:
            if f.shape[:-1] != lead:
                raise ValueError(f"inputs must share leading axes, got {[x.shape for x in inputs]}")
        h = jnp.concatenate(flat, axis=-1)
        raw = ResidualMLP(
            out_shape=(7,),
            width=self.width,
            num_blocks=self.num_blocks,
            dropout=self.dropout,
            use_batch_norm=self.use_batch_norm,
            num_input_axes=1,
            zero_init_output=True,
            axis_name=self.axis_name,
            name="mlp",
        )(h, train=train)
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
    """

    apply: Callable[..., Any]
    has_refine: bool = True
    camera_inputs: str = "2d"

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

    net = CameraPoseForward(apply, has_refine="refine" in models, camera_inputs=camera_inputs)

    @jax.jit
    def predict(x: jax.Array, c: jax.Array, scale: jax.Array | None = None) -> dict[str, jax.Array]:
        refined = net.refine(x, c)
        pose = net.lift(refined)
        out = {"refined": refined, "pose3d": pose}
        if "camera" in models:
            scale = jnp.ones((*x.shape[:-2], 2), x.dtype) if scale is None else scale
            cam = net.camera(refined, pose, scale)
            proj = net.project(pose, cam, min_depth=min_depth)
            out.update(cam)  # back from the aspect-preserving frame to the input's units
            out["focal"], out["center"] = cam["focal"] / scale, cam["center"] / scale
            out["reprojected"] = proj / scale[..., None, :]
        return out

    return predict
