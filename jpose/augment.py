"""PoseAug-style differentiable pose-generator operations and their range ("diff") losses.

The generator of PoseAug (Gong et al. CVPR 2021), reused by CameraPose (Yang et al. WACV 2023,
sec. 3.3), predicts three sets of parameters from a 3D pose; the pure functions here apply them:

1. :func:`bone_angle_change` (BA): per-bone direction offsets, renormalised, lengths kept; the
   pelvis->spine and spine->thorax bones are kept fixed.
2. :func:`bone_length_change` (BL): one length ratio per symmetric bone class, limited to +-20 %
   by ``0.2 * tanh``, applied with the bone directions kept.
3. :func:`rotate_translate` (RT): a rotation (axis-angle) about the root and a new root position
   with non-negative depth.
4. :func:`reproject`: the camera projection that turns the augmented 3D pose into its 2D input.

:func:`poseaug_augment` chains BA -> BL -> RT on a batch and projects the result with the
sample's own pinhole intrinsics (CameraPose's augmentation of its 2D-3D pairs, Sec. 3.3). The
range losses (:func:`bone_angle_range_loss`, :func:`bone_length_range_loss`) stop the generator
collapsing to the identity.

:func:`detection_noise` turns ground-truth 2D into simulated detections with per-joint
confidences (the 2D-input model shared by CameraPose's refinement network and Li et al.'s
confidence-weighted losses).

Conventions: poses are ``[..., J, 3]`` camera-frame joints in metres (any leading batch axes);
bones follow :mod:`jpose.skeleton` (vector child - parent, one per non-root joint, ordered by child
index) and every bone set is derived from the layout by joint name. PoseAug's code stores bones as
parent - child; the sign does not change any operation here (the offsets are learnt). Everything is
``jit``/``vmap``/``grad``-safe: zero-length bones and zero parameters give finite values and
gradients.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.typing import ArrayLike

from jpose import camera as _camera
from jpose import losses as _losses
from jpose.geometry import _check_last, axis_angle_to_matrix, rotate_points, safe_normalize
from jpose.kinematics import bone_directions, bone_lengths, pose_from_bones
from jpose.skeleton import Layout, check_points, get_layout

__all__ = [
    "BA_KEPT_BONES",
    "BL_FIXED_BONES",
    "bone_angle_change",
    "bone_length_change",
    "rotate_translate",
    "reproject",
    "poseaug_augment",
    "bone_angle_range_loss",
    "bone_length_range_loss",
    "DETECTION_NOISE_OPTIONS",
    "detection_noise",
]

DETECTION_NOISE_OPTIONS = (
    "conf_power",
    "conf_min",
    "sigma_min",
    "sigma_max",
    "outlier_prob",
    "outlier_sigma",
)
"""The keyword options of :func:`detection_noise` (an experiment passes
``{k: cfg[k] for k in DETECTION_NOISE_OPTIONS}`` from its config)."""

BA_KEPT_BONES = ("Spine", "Thorax")
"""Child joints of the bones whose direction BA keeps (pelvis->spine, spine->thorax; PoseAug bones
6 and 7, kept "to avoid pure rotation of the whole body")."""

BL_FIXED_BONES = ("Thorax",)
"""Child joints of the bones whose length BL keeps (spine->thorax; PoseAug masks this ratio because
a tall person far away and a short one nearby project alike)."""


def _bone_mask(lay: Layout, names: Sequence[str]) -> np.ndarray:
    mask = np.zeros(lay.num_bones, dtype=bool)
    for name in names:
        mask[lay.bone_index(name)] = True
    return mask


def bone_angle_change(
    pose: ArrayLike,
    offsets: ArrayLike,
    *,
    layout: str | Layout,
    kept_bones: Sequence[str] = BA_KEPT_BONES,
) -> tuple[Array, Array]:
    """PoseAug bone-angle (BA) operation: rotate bones, keep their lengths.

    ``u'_k = (u_k + Δ_k) / ||u_k + Δ_k||`` for every bone except the ``kept_bones`` (``u'_k =
    u_k``), ``b'_k = l_k u'_k`` and the pose is rebuilt by forward kinematics from the original
    root. Bone lengths are unchanged (exactly, up to rounding), so zero offsets return the input.

    Args:
      pose: ``[..., J, 3]`` joints (metres).
      offsets: ``[..., B, 3]`` direction offsets Δ (unitless, added to unit directions).
      layout: joint layout of ``pose``.
      kept_bones: child-joint names of the bones whose direction is kept (default pelvis->spine
        and spine->thorax, PoseAug).

    Returns:
      ``(pose_ba [..., J, 3], ba_diff [..., B])`` with ``ba_diff_k = 1 - <u'_k, u_k>`` (0 for
      kept bones and for zero-length bones, whose direction is undefined), used by
      :func:`bone_angle_range_loss`.
    """
    lay = get_layout(layout)
    check_points(pose, lay, name="pose")
    pose = jnp.asarray(pose)
    offsets = jnp.asarray(offsets, pose.dtype)
    if offsets.shape[-2:] != (lay.num_bones, 3):
        raise ValueError(
            f"offsets: expected shape [..., {lay.num_bones}, 3] for layout {lay.name}, "
            f"got {offsets.shape}"
        )
    u = bone_directions(pose, layout=lay)
    length = bone_lengths(pose, layout=lay)[..., None]
    keep = jnp.asarray(_bone_mask(lay, kept_bones))[:, None]
    u_new = jnp.where(keep, u, safe_normalize(u + offsets))
    # A zero-length bone has no direction to change: its difference is defined as 0.
    ba_diff = jnp.where(length[..., 0] > 0, 1.0 - jnp.sum(u_new * u, axis=-1), 0.0)
    root = pose[..., lay.root, :]
    return pose_from_bones(length * u_new, layout=lay, root=root), ba_diff


def bone_length_change(
    pose: ArrayLike,
    ratios: ArrayLike,
    *,
    layout: str | Layout,
    limit: float | None = 0.2,
    fixed_bones: Sequence[str] = BL_FIXED_BONES,
) -> tuple[Array, Array]:
    """PoseAug bone-length (BL) operation: scale bones by symmetric ratios, keep directions.

    One raw ratio per bone class (``layout.bone_classes``: a bone and its mirror share a class),
    ``ρ = limit * tanh(raw)`` (PoseAug ``blr_tanhlimit = 0.2``, i.e. +-20 %), ``ρ = 0`` for the
    classes of ``fixed_bones``; bone ``k`` gets length ``l_k (1 + ρ_class(k))`` along its current
    direction and the pose is rebuilt from the original root. Zero raw ratios return the input.

    Args:
      pose: ``[..., J, 3]`` joints (PoseAug applies BL to the BA output).
      ratios: ``[..., C]`` raw ratios, ``C = layout.num_bone_classes``.
      layout: joint layout of ``pose``.
      limit: bound of ``limit * tanh``; ``None`` uses ``ratios`` as the final ratios.
      fixed_bones: child-joint names of bones whose length is kept (default spine->thorax).

    Returns:
      ``(pose_bl [..., J, 3], rho [..., C])`` with ``rho`` the applied ratios (unitless), used by
      :func:`bone_length_range_loss`.
    """
    lay = get_layout(layout)
    check_points(pose, lay, name="pose")
    pose = jnp.asarray(pose)
    ratios = jnp.asarray(ratios, pose.dtype)
    if ratios.shape[-1:] != (lay.num_bone_classes,):
        raise ValueError(
            f"ratios: expected shape [..., {lay.num_bone_classes}] (bone classes of {lay.name}), "
            f"got {ratios.shape}"
        )
    rho = ratios if limit is None else limit * jnp.tanh(ratios)
    fixed_classes = np.zeros(lay.num_bone_classes, dtype=bool)
    fixed_classes[lay.bone_classes[_bone_mask(lay, fixed_bones)]] = True
    rho = jnp.where(jnp.asarray(fixed_classes), 0.0, rho)
    per_bone = rho[..., lay.bone_classes]
    u = bone_directions(pose, layout=lay)
    length = bone_lengths(pose, layout=lay) * (1.0 + per_bone)
    root = pose[..., lay.root, :]
    return pose_from_bones(length[..., None] * u, layout=lay, root=root), rho


def rotate_translate(
    pose: ArrayLike,
    axis_angle: ArrayLike,
    translation: ArrayLike,
    *,
    root: int = 0,
    max_angle: float | None = None,
    square_depth: bool = True,
) -> Array:
    """PoseAug rotation/translation (RT) operation: ``X_rt = R (X - X_root) + t``.

    ``R`` is the rotation of the axis-angle vector ω (optionally ``ω = max_angle * tanh(raw)``
    elementwise; PoseAug's generator uses ``max_angle = π``). The translation is the new absolute
    root position, the original root position is discarded (PoseAug); with ``square_depth`` its
    depth is ``t_z**2`` so the person stays in front of the camera (PoseAug's non-negative depth).
    Hence the identity is ``ω = 0`` and ``t = (X_root,x, X_root,y, sqrt(X_root,z))``, and bone
    lengths are always preserved.

    Args:
      pose: ``[..., J, 3]`` camera-frame joints (metres).
      axis_angle: ``[..., 3]`` rotation vector (radians) or raw values when ``max_angle`` is set.
      translation: ``[..., 3]`` new root position (metres; raw depth when ``square_depth``).
      root: index of the root joint.
      max_angle: if given, ``ω = max_angle * tanh(axis_angle)``.
      square_depth: replace ``t_z`` by ``t_z**2``.

    Returns:
      ``[..., J, 3]`` transformed pose.
    """
    pose = _check_last(pose, 3, "pose", min_ndim=2)
    axis_angle = jnp.asarray(axis_angle, pose.dtype)
    translation = jnp.asarray(translation, pose.dtype)
    if axis_angle.shape[-1:] != (3,) or translation.shape[-1:] != (3,):
        raise ValueError(
            f"axis_angle and translation must have shape [..., 3], got {axis_angle.shape} and "
            f"{translation.shape}"
        )
    if max_angle is not None:
        axis_angle = max_angle * jnp.tanh(axis_angle)
    if square_depth:
        translation = translation.at[..., 2].set(jnp.square(translation[..., 2]))
    rotation = axis_angle_to_matrix(axis_angle)
    centred = pose - pose[..., root : root + 1, :]
    return rotate_points(centred, rotation) + translation[..., None, :]


def reproject(
    pose: ArrayLike,
    camera: _camera.Camera,
    *,
    distortion: str = "none",
    normalize: bool = True,
    min_depth: float = 1e-3,
) -> tuple[Array, Array]:
    """Project an augmented camera-frame pose to 2D and flag projections inside the image.

    PoseAug projects the RT output with the sample's own Human3.6M intrinsics (VideoPose3D's
    ``project_to_2d``, radial and tangential distortion: ``distortion="h36m"``) and keeps only
    augmented samples that stay inside the image. CameraPose replaces the fixed intrinsics by
    predicted ones (see :func:`jpose.losses.camerapose_reprojection_loss`).

    Notes:
      PoseAug drops a sample when any normalised coordinate exceeds 1 (upper bound only, the
      lower bound -1 is not checked); here a sample is valid when every joint is in front of the
      camera (``z > min_depth``) and inside the image rectangle ``[0, w] x [0, h]`` in pixels.

    Args:
      pose: ``[..., J, 3]`` camera-frame joints (metres).
      camera: :class:`jpose.camera.Camera` (intrinsics used; the pose is already camera-frame).
      distortion: passed to :func:`jpose.camera.project`.
      normalize: return VideoPose3D screen coordinates ``uv / w * 2 - [1, h / w]`` instead of
        pixels.
      min_depth: depth clamp of the projection (metres).

    Returns:
      ``(uv [..., J, 2], valid [...])``: pixels (or normalised screen units) and a boolean mask.
    """
    pose = _check_last(pose, 3, "pose", min_ndim=2)
    uv = _camera.project(pose, camera, distortion=distortion, min_depth=min_depth)
    size = jnp.asarray(camera.image_size, uv.dtype)
    width, height = size[..., 0], size[..., 1]
    inside = (
        (uv[..., 0] >= 0)
        & (uv[..., 0] <= width[..., None])
        & (uv[..., 1] >= 0)
        & (uv[..., 1] <= height[..., None])
        & (pose[..., 2] > min_depth)
    )
    valid = jnp.all(inside, axis=-1)
    if normalize:
        uv = _camera.normalize_screen(uv, width=width[..., None], height=height[..., None])
    return uv, valid


def poseaug_augment(
    generator: Callable[[Array], Mapping[str, Array]],
    pose3d: ArrayLike,
    root: ArrayLike,
    *,
    focal: ArrayLike,
    center: ArrayLike,
    layout: str | Layout,
    bl_tanh_limit: float = 0.2,
    max_angle: float = float(np.pi),
    translation_limit: float = 0.3,
    depth_log_limit: float = 0.3,
    valid_bound: float = 1.5,
    min_depth: float = 0.1,
) -> dict[str, Array]:
    """PoseAug's BA -> BL -> RT augmentation of a batch, re-projected with its own intrinsics.

    Gong et al. (CVPR 2021) Sec. 3.2 as used by CameraPose (Yang et al. WACV 2023, Sec. 3.3):
    ``generator(pose3d + root)`` predicts the raw parameters (a
    :class:`jpose.models.PoseAugGenerator`); :func:`bone_angle_change` then
    :func:`bone_length_change` (``limit = bl_tanh_limit``) reshape the pose; the RT step rotates it
    about the root (``max_angle * tanh``) and moves the root by a bounded offset: ``x, y +
    translation_limit * tanh`` (metres) and depth ``* exp(depth_log_limit * tanh)``, instead of
    PoseAug's free ``t`` with ``t_z^2``, so that early generator outputs stay in front of the
    camera. The root-relative result is projected with ``focal`` / ``center``
    (:func:`jpose.losses.camerapose_project`, in the units of the 2D inputs).

    Args:
      generator: ``generator(pose_abs [B, J, 3]) -> {"bone_angle", "bone_length", "rotation",
        "translation"}`` raw (unbounded) parameters.
      pose3d: ``[B, J, 3]`` root-relative camera-frame poses (metres).
      root: ``[B, 3]`` camera-frame root positions (metres).
      focal, center: ``[B, 2]`` pinhole intrinsics of each sample (normalised 2D units).
      layout: joint layout of the poses.
      bl_tanh_limit: bone-length ratio limit of :func:`bone_length_change` (PoseAug: 0.2).
      max_angle: rotation limit (radians; PoseAug: pi).
      translation_limit: bound of the root's x, y offset (metres).
      depth_log_limit: bound of the root depth's log-ratio.
      valid_bound: a sample is valid when every projected coordinate is within ``+-valid_bound``
        and every joint deeper than ``min_depth``.
      min_depth: depth (metres) below which a joint makes the sample invalid.

    Returns:
      ``{"x" [B, J, 2] projected 2D, "pose3d" [B, J, 3] root-relative augmented 3D, "root" [B, 3],
      "valid" [B] bool, "ba_diff" [B, num_bones], "rho" [B, K] (for the range losses), "stats"}``
      with ``stats`` scalar monitoring values (valid fraction, bone-length ratios, bone-angle
      ``1 - cos``, rotation angle in degrees, mean root depth).
    """
    lay = get_layout(layout)
    pose3d, root = jnp.asarray(pose3d), jnp.asarray(root)
    pose_abs = pose3d + root[..., None, :]
    raw = generator(pose_abs)
    p_ba, ba_diff = bone_angle_change(pose_abs, raw["bone_angle"], layout=lay)
    p_bl, rho = bone_length_change(p_ba, raw["bone_length"], layout=lay, limit=bl_tanh_limit)
    tr = jnp.tanh(raw["translation"])
    new_root = jnp.concatenate(
        [root[..., :2] + translation_limit * tr[..., :2],
         root[..., 2:] * jnp.exp(depth_log_limit * tr[..., 2:])], -1,
    )  # fmt: skip
    p_rt = rotate_translate(p_bl, raw["rotation"], new_root, root=lay.root, max_angle=max_angle,
                            square_depth=False)  # fmt: skip
    aug_rel = p_rt - p_rt[..., lay.root : lay.root + 1, :]
    x_aug = _losses.camerapose_project(aug_rel, focal=focal, center=center, offset=new_root)
    valid = jnp.all(jnp.abs(x_aug) <= valid_bound, axis=(-2, -1)) & jnp.all(
        p_rt[..., 2] > min_depth, axis=-1
    )
    angle = max_angle * jnp.tanh(raw["rotation"])
    lengths_real = bone_lengths(pose3d, layout=lay)
    lengths_aug = bone_lengths(aug_rel, layout=lay)
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


def bone_angle_range_loss(
    ba_diff: ArrayLike, *, target: float = 0.205, width: float = 0.165
) -> Array:
    """PoseAug range loss on bone-angle changes, per example.

    ``a = mean_k ba_diff_k``; loss ``(a - m)^2 * 1[(a - m)^2 > w^2]`` (PoseAug
    ``diff_range_loss`` with ``ba_range_m = 0.205``, ``ba_range_w = 0.165``): zero while the mean
    ``1 - cos`` of the bone-angle changes stays within ``m +- w``, quadratic outside, so the
    generator neither collapses to the identity nor drifts arbitrarily far.

    Args:
      ba_diff: ``[..., B]`` ``1 - cos`` per bone, from :func:`bone_angle_change`.
      target: centre ``m`` of the allowed band.
      width: half-width ``w`` of the band.

    Returns:
      ``[...]`` per-example loss (unitless).
    """
    a = jnp.mean(jnp.asarray(ba_diff), axis=-1)
    d = jnp.square(a - target)
    return jnp.where(d > width**2, d, 0.0)


def bone_length_range_loss(ratios: ArrayLike, *, limit: float = 0.1) -> Array:
    """PoseAug rectified L2 loss on bone-length ratios, per example.

    ``mean_c ρ_c^2 * 1[ρ_c^2 > limit^2]`` (PoseAug ``rectifiedL2loss`` with ``blr_limit = 0.1``):
    free within +-``limit``, quadratic beyond.

    Args:
      ratios: ``[..., C]`` applied ratios ρ from :func:`bone_length_change`.
      limit: free band half-width.

    Returns:
      ``[...]`` per-example loss (unitless).
    """
    sq = jnp.square(jnp.asarray(ratios))
    return jnp.mean(jnp.where(sq > limit**2, sq, 0.0), axis=-1)


def detection_noise(
    key: Array,
    pose2d: ArrayLike,
    confidence: ArrayLike,
    *,
    conf_power: float = 3.0,
    conf_min: float = 0.05,
    sigma_min: float = 0.004,
    sigma_max: float = 0.04,
    outlier_prob: float = 0.2,
    outlier_sigma: float = 0.1,
) -> tuple[Array, Array]:
    """Simulated 2D detections with confidences from ground-truth 2D.

    Ground-truth 2D has no detector confidences (the heatmap maxima of CameraPose eq. 3, the
    weights ``w`` of Li et al. eqs. 2 and 5). Per joint: a confidence
    ``c = 1 - (1 - conf_min) u^conf_power`` with ``u ~ U(0, 1)`` (mean
    ``1 - (1 - conf_min) / (conf_power + 1)``), Gaussian noise of std
    ``sigma_min + (sigma_max - sigma_min) (1 - c)``, and with probability ``outlier_prob (1 - c)``
    an extra outlier offset of std ``outlier_sigma`` (a confused joint). Joints whose source
    confidence is 0 (missing) keep their coordinates and confidence 0. Low confidence therefore
    goes with large errors, as with real detectors.

    Args:
      key: PRNG key.
      pose2d: ``[..., J, 2]`` ground-truth 2D in normalised image units (0.01 = 5 px on a
        1000 px wide image).
      confidence: ``[..., J]`` source confidences (0 = missing joint).
      conf_power, conf_min: confidence distribution.
      sigma_min, sigma_max: noise std at confidence 1 and 0 (units of ``pose2d``).
      outlier_prob, outlier_sigma: outlier probability at confidence 0 and outlier std.

    Returns:
      ``(noisy [..., J, 2], synthetic confidence [..., J])``.
    """
    pose2d = jnp.asarray(pose2d)
    confidence = jnp.asarray(confidence)
    kc, kn, ko, kb = jax.random.split(key, 4)
    shape = confidence.shape
    u = jax.random.uniform(kc, shape)
    c = 1.0 - (1.0 - conf_min) * u**conf_power
    sigma = sigma_min + (sigma_max - sigma_min) * (1.0 - c)
    noise = sigma[..., None] * jax.random.normal(kn, (*shape, 2))
    outlier = jax.random.uniform(kb, shape) < outlier_prob * (1.0 - c)
    noise = noise + jnp.where(
        outlier[..., None], outlier_sigma * jax.random.normal(ko, (*shape, 2)), 0.0
    )
    present = confidence > 0
    return pose2d + jnp.where(present[..., None], noise, 0.0), jnp.where(present, c, 0.0)
