"""Calibrated pinhole cameras: the :class:`Camera` pytree, transforms, projections, H36M data.

Conventions (shared by every function in this module):

* Camera frame is OpenCV's: x right, y down, z forward; a point is in front of the camera when
  ``z > 0``. 3D points are ``[..., J, 3]`` in metres; pixels are ``[..., J, 2]``.
* Extrinsics are world -> camera: ``X_cam = R @ X_world + t`` (``rotation`` R, ``translation`` t in
  metres). The camera centre in world coordinates is ``C = -R^T t`` (:attr:`Camera.centre`).
* Intrinsics are in pixels: focal ``(fx, fy)``, principal point ``(cx, cy)``, distortion radial
  ``(k1, k2, k3)`` and tangential ``(p1, p2)``, image size ``(width, height)``.
* A camera's fields share leading batch axes ``[...]`` (e.g. ``[V]`` for V views); they broadcast
  against the leading axes of the points, i.e. against ``points[..., 0, 0]``.
* Depth near or behind the camera plane: every perspective division uses
  ``max(z, min_depth)`` (``min_depth`` defaults to 1 mm), so points at ``z <= min_depth`` give
  finite (large) pixel values and finite gradients (zero with respect to their depth).
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jpose import _h36m_cameras
from jpose.geometry import _check_joints, _check_last, _check_matrix

__all__ = [
    "Camera",
    "world_to_camera",
    "camera_to_world",
    "transform_points",
    "invert_transform",
    "compose_transforms",
    "relative_transform",
    "intrinsics_matrix",
    "project",
    "project_pinhole",
    "project_weak_perspective",
    "project_unit_focal",
    "distort_opencv",
    "distort_h36m",
    "back_project",
    "normalize_screen",
    "image_coordinates",
    "H36M_CAMERAS",
    "H36M_SUBJECTS",
    "H36M_SUBJECTS_WITH_CAMERAS",
    "h36m_camera",
    "h36m_cameras",
    "h36m_intrinsics",
    "solve_root_translation",
]

DISTORTIONS = ("none", "opencv", "h36m")


def _screen_offset(uv, width, height, name: str) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Checked ``uv [..., 2]``, ``w [..., 1]`` and the offset ``[1, h / w]`` of the screen
    normalisation; concrete image sizes must be finite and positive (traced ones are not
    checked)."""
    for side, x in (("width", width), ("height", height)):
        arr = None if isinstance(x, jax.core.Tracer) else np.asarray(x, np.float64)
        if arr is not None and not np.all(np.isfinite(arr) & (arr > 0)):
            bad = arr[~(np.isfinite(arr) & (arr > 0))].reshape(-1)[0]
            raise ValueError(f"image {side} must be finite and positive pixels, got {bad}")
    uv = _check_last(uv, 2, name)
    # width and height broadcast against each other (e.g. [N, 1] widths with one height)
    w, h = jnp.broadcast_arrays(jnp.asarray(width, uv.dtype), jnp.asarray(height, uv.dtype))
    w, h = w[..., None], h[..., None]
    return uv, w, jnp.concatenate([jnp.ones_like(h), h / w], axis=-1)


def _per_point(x: jax.Array) -> jax.Array:
    """Insert the joint axis: ``[..., D] -> [..., 1, D]`` to broadcast against ``[..., J, D]``."""
    return x[..., None, :]


@struct.dataclass
class Camera:
    """A calibrated camera (pytree; every field may carry the same leading batch axes ``[...]``).

    Attributes:
      rotation: ``[..., 3, 3]`` world -> camera rotation R (``X_cam = R X_world + t``).
      translation: ``[..., 3]`` world -> camera translation t, metres.
      focal: ``[..., 2]`` ``(fx, fy)`` pixels.
      center: ``[..., 2]`` principal point ``(cx, cy)`` pixels.
      radial: ``[..., 3]`` radial distortion ``(k1, k2, k3)``.
      tangential: ``[..., 2]`` tangential distortion ``(p1, p2)``.
      image_size: ``[..., 2]`` ``(width, height)`` pixels.
    """

    rotation: jax.Array
    translation: jax.Array
    focal: jax.Array
    center: jax.Array
    radial: jax.Array
    tangential: jax.Array
    image_size: jax.Array

    @classmethod
    def create(
        cls,
        *,
        focal: jax.Array,
        center: jax.Array,
        rotation: jax.Array | None = None,
        translation: jax.Array | None = None,
        radial: jax.Array | None = None,
        tangential: jax.Array | None = None,
        image_size: jax.Array | None = None,
        dtype: jax.typing.DTypeLike = jnp.float32,
    ) -> Camera:
        """Build a camera with validated shapes; missing fields get defaults.

        Args:
          focal: ``[..., 2]`` (fx, fy) pixels (a scalar means fx = fy).
          center: ``[..., 2]`` (cx, cy) pixels.
          rotation: ``[..., 3, 3]`` world -> camera; default identity.
          translation: ``[..., 3]`` metres; default zeros.
          radial: ``[..., 3]`` (k1, k2, k3); default zeros (no distortion).
          tangential: ``[..., 2]`` (p1, p2); default zeros.
          image_size: ``[..., 2]`` (width, height) pixels; default ``2 * center``.
          dtype: floating dtype of every field.

        Returns:
          A :class:`Camera` whose fields are broadcast to a common batch shape.
        """
        focal, center = jnp.asarray(focal, dtype), jnp.asarray(center, dtype)
        fields = {
            "focal": jnp.stack([focal, focal], axis=-1) if focal.ndim == 0 else focal,
            "center": center,
            "rotation": jnp.eye(3, dtype=dtype) if rotation is None else rotation,
            "translation": jnp.zeros(3, dtype) if translation is None else translation,
            "radial": jnp.zeros(3, dtype) if radial is None else radial,
            "tangential": jnp.zeros(2, dtype) if tangential is None else tangential,
            "image_size": 2.0 * center if image_size is None else image_size,
        }
        sizes = {"translation": 3, "radial": 3, "tangential": 2}  # the others: 2 (or 3 x 3)
        for k, v in fields.items():
            v = jnp.asarray(v, dtype)
            fields[k] = (
                _check_matrix(v, k) if k == "rotation" else _check_last(v, sizes.get(k, 2), k)
            )
        batch = jnp.broadcast_shapes(
            *(v.shape[:-2] if k == "rotation" else v.shape[:-1] for k, v in fields.items())
        )
        out = {
            k: jnp.broadcast_to(v, batch + v.shape[(-2 if k == "rotation" else -1) :])
            for k, v in fields.items()
        }
        return cls(**out)

    @classmethod
    def from_videopose3d(
        cls,
        intrinsic: Mapping,
        extrinsic: Mapping | None = None,
        *,
        dtype: jax.typing.DTypeLike = jnp.float32,
    ) -> Camera:
        """Camera from VideoPose3D-style parameter dicts (``common/h36m_dataset.py``).

        Args:
          intrinsic: dict with ``center``, ``focal_length`` (pixels), ``radial_distortion``
            (k1, k2, k3), ``tangential_distortion`` (p1, p2), ``res_w``, ``res_h``.
          extrinsic: optional dict with ``orientation`` (w, x, y, z) camera -> world quaternion and
            ``translation`` = camera centre in world **millimetres**; converted to world -> camera
            ``R = R(q)^T``, ``t = -R C`` in metres. ``None`` or ``{}``: identity extrinsics.
          dtype: floating dtype of the fields.

        Returns:
          A :class:`Camera` without batch axes.
        """
        rotation = translation = None
        if extrinsic:
            q = np.asarray(extrinsic["orientation"], np.float64)
            centre_m = np.asarray(extrinsic["translation"], np.float64) / 1000.0  # mm -> m
            r_cam_to_world = _np_quaternion_to_matrix(q)
            rotation = r_cam_to_world.T
            translation = -rotation @ centre_m
        return cls.create(
            focal=intrinsic["focal_length"],
            center=intrinsic["center"],
            rotation=rotation,
            translation=translation,
            radial=intrinsic["radial_distortion"],
            tangential=intrinsic["tangential_distortion"],
            image_size=(intrinsic["res_w"], intrinsic["res_h"]),
            dtype=dtype,
        )

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """Leading batch axes shared by the fields."""
        return tuple(self.translation.shape[:-1])

    @property
    def centre(self) -> jax.Array:
        """``[..., 3]`` camera centre in world coordinates, metres (``C = -R^T t``)."""
        return -jnp.einsum("...ji,...j->...i", self.rotation, self.translation)

    @property
    def intrinsics(self) -> jax.Array:
        """``[..., 3, 3]`` intrinsics matrix K (pixels)."""
        return intrinsics_matrix(self.focal, self.center)


def _np_quaternion_to_matrix(q: np.ndarray) -> np.ndarray:
    """float64 numpy rotation matrix of a (w, x, y, z) quaternion (for the static H36M data)."""
    w, x, y, z = q / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


# --------------------------------------------------------------------------- Rigid transforms


def transform_points(points: jax.Array, rotation: jax.Array, translation: jax.Array) -> jax.Array:
    """Rigid transform of row-vector points: ``points @ R^T + t``.

    Args:
      points: ``[..., J, 3]`` metres.
      rotation: ``[..., 3, 3]`` (batch axes broadcast against ``points[..., 0, 0]``).
      translation: ``[..., 3]`` metres.

    Returns:
      ``[..., J, 3]`` transformed points, metres.
    """
    points = _check_last(points, 3, "points", min_ndim=2)
    rotation = _check_matrix(rotation, "rotation")
    translation = _check_last(translation, 3, "translation")
    return points @ jnp.swapaxes(rotation, -1, -2) + _per_point(translation)


def invert_transform(rotation: jax.Array, translation: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Inverse of ``X -> R X + t``: ``(R^T, -R^T t)``.

    Args:
      rotation: ``[..., 3, 3]``.
      translation: ``[..., 3]`` metres.

    Returns:
      ``(R_inv [..., 3, 3], t_inv [..., 3])``.
    """
    rotation = _check_matrix(rotation, "rotation")
    translation = _check_last(translation, 3, "translation")
    r_inv = jnp.swapaxes(rotation, -1, -2)
    return r_inv, -jnp.einsum("...ij,...j->...i", r_inv, translation)


def compose_transforms(
    rotation_2: jax.Array, translation_2: jax.Array, rotation_1: jax.Array, translation_1: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Composition ``X -> R2 (R1 X + t1) + t2`` = ``(R2 R1, R2 t1 + t2)`` (first 1, then 2).

    Args:
      rotation_2: ``[..., 3, 3]``.
      translation_2: ``[..., 3]`` metres.
      rotation_1: ``[..., 3, 3]``.
      translation_1: ``[..., 3]`` metres.

    Returns:
      ``(R [..., 3, 3], t [..., 3])``.
    """
    rotation_2 = _check_matrix(rotation_2, "rotation_2")
    rotation_1 = _check_matrix(rotation_1, "rotation_1")
    translation_2 = _check_last(translation_2, 3, "translation_2")
    translation_1 = _check_last(translation_1, 3, "translation_1")
    return (
        rotation_2 @ rotation_1,
        jnp.einsum("...ij,...j->...i", rotation_2, translation_1) + translation_2,
    )


def world_to_camera(points_world: jax.Array, camera: Camera) -> jax.Array:
    """World -> camera coordinates: ``X_cam = R X_world + t``.

    Args:
      points_world: ``[..., J, 3]`` metres.
      camera: :class:`Camera` with batch axes broadcasting against ``points_world[..., 0, 0]``.

    Returns:
      ``[..., J, 3]`` camera-frame points, metres.
    """
    return transform_points(points_world, camera.rotation, camera.translation)


def camera_to_world(points_cam: jax.Array, camera: Camera) -> jax.Array:
    """Camera -> world coordinates: ``X_world = R^T (X_cam - t)``.

    Args:
      points_cam: ``[..., J, 3]`` metres.
      camera: :class:`Camera` with batch axes broadcasting against ``points_cam[..., 0, 0]``.

    Returns:
      ``[..., J, 3]`` world-frame points, metres.
    """
    points_cam = _check_last(points_cam, 3, "points_cam", min_ndim=2)
    return (points_cam - _per_point(camera.translation)) @ camera.rotation


def relative_transform(cam_a: Camera, cam_b: Camera) -> tuple[jax.Array, jax.Array]:
    """Rigid transform from camera a's frame to camera b's frame.

    ``X_b = R_ab X_a + t_ab`` with ``R_ab = R_b R_a^T`` and ``t_ab = t_b - R_ab t_a``. This is Li et
    al. (AAAI 2020, "Geometry-driven self-supervised method for 3D human pose estimation") eq. (4),
    ``R_1to2 = R_2 R_1^T``, rewritten for world -> camera translations: Li et al. use camera
    centres ``t_i = C_i`` and ``tau(Y) = R_1to2 (Y - R_1 (C_2 - C_1))`` (eq. 3), which expands to
    the same transform since ``-R_b (C_b - C_a) = t_b - R_ab t_a``.

    Args:
      cam_a: source :class:`Camera` (batch axes broadcast with ``cam_b``).
      cam_b: target :class:`Camera`.

    Returns:
      ``(R_ab [..., 3, 3], t_ab [..., 3])``; apply with :func:`transform_points`.
    """
    r_ab = cam_b.rotation @ jnp.swapaxes(cam_a.rotation, -1, -2)
    t_ab = cam_b.translation - jnp.einsum("...ij,...j->...i", r_ab, cam_a.translation)
    return r_ab, t_ab


# --------------------------------------------------------------------------------- Projection


def intrinsics_matrix(focal: jax.Array, center: jax.Array) -> jax.Array:
    """Pinhole intrinsics ``K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]``.

    Args:
      focal: ``[..., 2]`` pixels.
      center: ``[..., 2]`` pixels.

    Returns:
      ``[..., 3, 3]`` K.
    """
    focal = _check_last(focal, 2, "focal")
    center = _check_last(center, 2, "center")
    focal, center = jnp.broadcast_arrays(focal, center)
    zero = jnp.zeros_like(focal[..., 0])
    one = jnp.ones_like(focal[..., 0])
    rows = [
        jnp.stack([focal[..., 0], zero, center[..., 0]], -1),
        jnp.stack([zero, focal[..., 1], center[..., 1]], -1),
        jnp.stack([zero, zero, one], -1),
    ]
    return jnp.stack(rows, axis=-2)


def project_unit_focal(points: jax.Array, *, min_depth: float = 1e-3) -> jax.Array:
    """Perspective projection with unit focal length and no offset: ``(x / z, y / z)``.

    The camera model of Drover et al. (ECCV-W 2018, Sec. 3): ``p = (X / Z, Y / Z)``; depth is
    clamped to ``max(z, min_depth)``.

    Args:
      points: ``[..., J, 3]`` camera-frame points, metres.
      min_depth: smallest depth used in the division, metres.

    Returns:
      ``[..., J, 2]`` normalised image coordinates (unitless).
    """
    points = _check_last(points, 3, "points", min_ndim=2)
    return points[..., :2] / jnp.maximum(points[..., 2:], min_depth)


def project_pinhole(
    points: jax.Array, *, focal: jax.Array, center: jax.Array, min_depth: float = 1e-3
) -> jax.Array:
    """Undistorted pinhole projection ``u = fx x / z + cx``, ``v = fy y / z + cy``.

    Li et al. (AAAI 2020) eq. (1). Depth is clamped to ``max(z, min_depth)``.

    Args:
      points: ``[..., J, 3]`` camera-frame points, metres.
      focal: ``[..., 2]`` pixels (batch axes broadcast against ``points[..., 0, 0]``).
      center: ``[..., 2]`` pixels.
      min_depth: smallest depth used in the division, metres.

    Returns:
      ``[..., J, 2]`` pixels.
    """
    focal = _check_last(focal, 2, "focal")
    center = _check_last(center, 2, "center")
    return _per_point(focal) * project_unit_focal(points, min_depth=min_depth) + _per_point(center)


def project_weak_perspective(
    points: jax.Array,
    *,
    focal: jax.Array,
    center: jax.Array,
    depth: jax.Array | None = None,
    min_depth: float = 1e-3,
) -> jax.Array:
    """Weak-perspective (scaled orthographic) projection ``u = f (x / z_ref) + c``.

    Every joint is divided by the same reference depth ``z_ref`` (default: the mean joint depth of
    each pose), i.e. the pose is flattened onto the plane ``z = z_ref`` before perspective.

    Args:
      points: ``[..., J, 3]`` camera-frame points, metres.
      focal: ``[..., 2]`` pixels (use ``(1, 1)`` for normalised coordinates).
      center: ``[..., 2]`` pixels.
      depth: optional ``[...]`` reference depth per pose, metres.
      min_depth: smallest reference depth, metres.

    Returns:
      ``[..., J, 2]`` pixels.
    """
    points = _check_last(points, 3, "points", min_ndim=2)
    focal = _check_last(focal, 2, "focal")
    center = _check_last(center, 2, "center")
    z_ref = jnp.mean(points[..., 2], axis=-1) if depth is None else jnp.asarray(depth)
    z_ref = jnp.maximum(z_ref, min_depth)[..., None, None]
    return _per_point(focal) * points[..., :2] / z_ref + _per_point(center)


def _distortion_inputs(xy, radial, tangential) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Checked ``xy [..., J, 2]`` and the coefficients ``[..., 1, 3]``, ``[..., 1, 2]``."""
    xy = _check_last(xy, 2, "xy", min_ndim=2)
    k = _per_point(_check_last(radial, 3, "radial"))
    return xy, k, _per_point(_check_last(tangential, 2, "tangential"))


def distort_opencv(xy: jax.Array, *, radial: jax.Array, tangential: jax.Array) -> jax.Array:
    """Brown-Conrady (OpenCV) distortion of normalised image coordinates.

    ``r2 = x^2 + y^2``, ``radial = 1 + k1 r2 + k2 r2^2 + k3 r2^3``,
    ``x' = x radial + 2 p1 x y + p2 (r2 + 2 x^2)``, ``y' = y radial + p1 (r2 + 2 y^2) + 2 p2 x y``.

    Args:
      xy: ``[..., J, 2]`` normalised coordinates ``(X / Z, Y / Z)``.
      radial: ``[..., 3]`` (k1, k2, k3).
      tangential: ``[..., 2]`` (p1, p2).

    Returns:
      ``[..., J, 2]`` distorted normalised coordinates.
    """
    xy, k, p = _distortion_inputs(xy, radial, tangential)
    x, y = xy[..., 0], xy[..., 1]
    r2 = x * x + y * y
    rad = 1.0 + k[..., 0] * r2 + k[..., 1] * r2**2 + k[..., 2] * r2**3
    p1, p2 = p[..., 0], p[..., 1]
    xd = x * rad + 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x)
    yd = y * rad + p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y
    return jnp.stack([xd, yd], axis=-1)


def distort_h36m(xy: jax.Array, *, radial: jax.Array, tangential: jax.Array) -> jax.Array:
    """Distortion as in VideoPose3D ``common/camera.py`` ``project_to_2d`` (Human3.6M model).

    ``XX = clip(xy, -1, 1)``, ``r2 = |XX|^2``, ``radial = 1 + k1 r2 + k2 r2^2 + k3 r2^3``,
    ``tan = p1 XX_x + p2 XX_y``, ``XXX = XX (radial + tan) + (p1, p2) r2``.

    Args:
      xy: ``[..., J, 2]`` normalised coordinates ``(X / Z, Y / Z)``.
      radial: ``[..., 3]`` (k1, k2, k3).
      tangential: ``[..., 2]`` (p1, p2).

    Returns:
      ``[..., J, 2]`` distorted normalised coordinates.
    """
    xy, k, p = _distortion_inputs(xy, radial, tangential)
    xx = jnp.clip(xy, -1.0, 1.0)
    r2 = jnp.sum(xx * xx, axis=-1, keepdims=True)
    rad = 1.0 + k[..., 0:1] * r2 + k[..., 1:2] * r2**2 + k[..., 2:3] * r2**3
    tan = jnp.sum(p * xx, axis=-1, keepdims=True)
    return xx * (rad + tan) + p * r2


def project(
    points_cam: jax.Array, camera: Camera, *, distortion: str = "none", min_depth: float = 1e-3
) -> jax.Array:
    """Project camera-frame points to pixels with the camera's intrinsics.

    ``uv = f * distort(X / Z, Y / Z) + c`` with depth clamped to ``max(Z, min_depth)``.

    Args:
      points_cam: ``[..., J, 3]`` camera-frame points, metres (use :func:`world_to_camera` first
        for world points).
      camera: :class:`Camera` with batch axes broadcasting against ``points_cam[..., 0, 0]``.
      distortion: ``"none"`` (pinhole), ``"opencv"`` (:func:`distort_opencv`) or ``"h36m"``
        (:func:`distort_h36m`, the VideoPose3D model with clipping to ``[-1, 1]``).
      min_depth: smallest depth used in the division, metres.

    Returns:
      ``[..., J, 2]`` pixels. Finite for every finite input; note that the ``"opencv"`` polynomial
      is unbounded, so points far outside the field of view (e.g. depth-clamped points behind the
      camera) map to very large pixel values; mask joints with ``z <= min_depth`` in losses.
    """
    if distortion not in DISTORTIONS:
        raise ValueError(f"distortion must be one of {DISTORTIONS}, got {distortion!r}")
    xy = project_unit_focal(points_cam, min_depth=min_depth)
    if distortion == "opencv":
        xy = distort_opencv(xy, radial=camera.radial, tangential=camera.tangential)
    elif distortion == "h36m":
        xy = distort_h36m(xy, radial=camera.radial, tangential=camera.tangential)
    return _per_point(camera.focal) * xy + _per_point(camera.center)


def back_project(
    uv: jax.Array, depth: jax.Array, *, focal: jax.Array, center: jax.Array
) -> jax.Array:
    """Inverse of the undistorted pinhole projection at known depth.

    ``X = (u - cx) / fx * z``, ``Y = (v - cy) / fy * z``, ``Z = z``.

    Args:
      uv: ``[..., J, 2]`` pixels.
      depth: ``[..., J]`` camera-frame depth z, metres.
      focal: ``[..., 2]`` pixels.
      center: ``[..., 2]`` pixels.

    Returns:
      ``[..., J, 3]`` camera-frame points, metres.
    """
    uv = _check_last(uv, 2, "uv", min_ndim=2)
    focal = _check_last(focal, 2, "focal")
    center = _check_last(center, 2, "center")
    depth = _check_joints(depth, uv.shape[-2], "depth")
    xy = (uv - _per_point(center)) / _per_point(focal) * depth[..., None]
    return jnp.concatenate([xy, jnp.broadcast_to(depth[..., None], xy.shape[:-1] + (1,))], -1)


def normalize_screen(
    uv_px: jax.Array, *, width: float | jax.Array, height: float | jax.Array
) -> jax.Array:
    """VideoPose3D ``normalize_screen_coordinates``: ``uv / w * 2 - [1, h / w]``.

    Maps x in ``[0, w]`` to ``[-1, 1]`` and y to ``[-h / w, h / w]``, keeping the aspect ratio.

    Args:
      uv_px: ``[..., 2]`` pixels.
      width: image width in pixels, scalar or array broadcasting against ``uv_px[..., 0]``.
      height: image height in pixels, like ``width``.

    Returns:
      ``[..., 2]`` normalised coordinates.

    Raises:
      ValueError: a (concrete) width or height that is not finite and positive; traced sizes
        are not checked (a zero there gives inf / NaN).
    """
    uv_px, w, offset = _screen_offset(uv_px, width, height, "uv_px")
    return uv_px / w * 2.0 - offset


def image_coordinates(
    uv_norm: jax.Array, *, width: float | jax.Array, height: float | jax.Array
) -> jax.Array:
    """Inverse of :func:`normalize_screen` (VideoPose3D ``image_coordinates``).

    Args:
      uv_norm: ``[..., 2]`` normalised coordinates.
      width: image width in pixels, scalar or array broadcasting against ``uv_norm[..., 0]``.
      height: image height in pixels, like ``width``.

    Returns:
      ``[..., 2]`` pixels: ``(uv_norm + [1, h / w]) * w / 2``.

    Raises:
      ValueError: a (concrete) width or height that is not finite and positive.
    """
    uv_norm, w, offset = _screen_offset(uv_norm, width, height, "uv_norm")
    return (uv_norm + offset) * w / 2.0


# ---- Human3.6M cameras (data in jpose/_h36m_cameras.py, from VideoPose3D common/h36m_dataset.py)

H36M_SUBJECTS: tuple[str, ...] = tuple(_h36m_cameras.H36M_EXTRINSICS)
H36M_SUBJECTS_WITH_CAMERAS: tuple[str, ...] = tuple(
    s for s, v in _h36m_cameras.H36M_EXTRINSICS.items() if v is not None
)

# subject -> 4 merged VideoPose3D dicts (intrinsic + extrinsic, raw units: pixels, millimetres,
# camera->world quaternion); None for subjects whose extrinsics are not published (S2-S4).
H36M_CAMERAS: dict[str, tuple[dict, ...] | None] = {
    subject: None
    if ext is None
    else tuple({**intr, **e} for intr, e in zip(_h36m_cameras.H36M_INTRINSICS, ext, strict=True))
    for subject, ext in _h36m_cameras.H36M_EXTRINSICS.items()
}


def h36m_intrinsics(index: int) -> Camera:
    """Human3.6M camera ``index`` (0-3) intrinsics with identity extrinsics (any subject).

    Args:
      index: camera index 0-3 (ids 54138969, 55011271, 58860488, 60457274).

    Returns:
      :class:`Camera` (no batch axes), rotation I, translation 0.
    """
    if not 0 <= index < len(_h36m_cameras.H36M_INTRINSICS):
        raise ValueError(f"Human3.6M camera index must be in 0..3, got {index}")
    return Camera.from_videopose3d(_h36m_cameras.H36M_INTRINSICS[index])


def h36m_camera(subject: str, index: int) -> Camera:
    """Calibrated Human3.6M camera of a subject (VideoPose3D's published parameters).

    Args:
      subject: one of :data:`H36M_SUBJECTS_WITH_CAMERAS` (S1, S5, S6, S7, S8, S9, S11).
      index: camera index 0-3.

    Returns:
      :class:`Camera` (no batch axes) with world -> camera extrinsics in metres.

    Raises:
      ValueError: unknown subject, subject without published extrinsics (S2-S4), bad index.
    """
    if subject not in H36M_CAMERAS:
        raise ValueError(f"unknown Human3.6M subject {subject!r}; expected one of {H36M_SUBJECTS}")
    if H36M_CAMERAS[subject] is None:
        raise ValueError(
            f"Human3.6M camera extrinsics for {subject} are not published with VideoPose3D "
            "(common/h36m_dataset.py); "
            f"available subjects: {H36M_SUBJECTS_WITH_CAMERAS} (use h36m_intrinsics(index) for "
            "intrinsics only)"
        )
    if not 0 <= index < 4:
        raise ValueError(f"Human3.6M camera index must be in 0..3, got {index}")
    return Camera.from_videopose3d(
        _h36m_cameras.H36M_INTRINSICS[index], _h36m_cameras.H36M_EXTRINSICS[subject][index]
    )


def h36m_cameras(subject: str) -> Camera:
    """All four cameras of a subject stacked on a leading axis.

    Args:
      subject: one of :data:`H36M_SUBJECTS_WITH_CAMERAS`.

    Returns:
      :class:`Camera` with batch shape ``(4,)``.
    """
    cams = [h36m_camera(subject, i) for i in range(4)]
    return jax.tree.map(lambda *xs: jnp.stack(xs), *cams)


# --------------- Root translation from a root-relative pose and its pixels (known intrinsics)


def solve_root_translation(
    points_rel: np.ndarray,
    uv_px: np.ndarray,
    confidence: np.ndarray | None = None,
    *,
    focal: np.ndarray,
    center: np.ndarray,
    refine_iterations: int = 2,
    min_depth: float = 1e-3,
) -> np.ndarray:
    """Camera-frame root position ``t`` that places a root-relative pose on its 2D keypoints.

    With the pinhole model ``u = fx (X + tx) / (Z + tz) + cx`` (same for ``v``), each joint gives
    two equations linear in ``t`` (``(X, Y, Z)`` = root-relative joint, ``(u, v)`` its pixels)::

        fx tx - (u - cx) tz = (u - cx) Z - fx X
        fy ty - (v - cy) tz = (v - cy) Z - fy Y

    solved by confidence-weighted linear least squares (each joint's rows weighted by its
    confidence). This first solve minimises an algebraic error (pixels x depth); it is followed by
    ``refine_iterations`` re-weighted solves dividing every joint's rows by its depth
    ``Z + tz`` of the previous estimate, whose residuals are then the re-projection errors in
    pixels (iteratively re-weighted least squares). Exact 2D and 3D give the exact ``t`` at every
    step. Host-side numpy in float64 (not jittable): pixel-sized coefficients need the precision.

    Args:
      points_rel: ``[..., J, 3]`` root-relative 3D pose, metres, camera frame (x right, y down,
        z forward; OpenCV).
      uv_px: ``[..., J, 2]`` pixels of the same joints.
      confidence: ``[..., J]`` non-negative joint weights (default ones); joints with 0 are
        ignored.
      focal: ``[..., 2]`` (fx, fy) pixels, broadcasting against the leading axes.
      center: ``[..., 2]`` (cx, cy) pixels, like ``focal``.
      refine_iterations: depth re-weighted passes after the algebraic solve (0 = algebraic only).
      min_depth: depth floor (metres) of the re-weighting (joints estimated behind the camera).

    Returns:
      ``[..., 3]`` float64 translation (metres); NaN where fewer than two joints have a positive
      weight or the system is singular.
    """
    x = np.asarray(points_rel, np.float64)
    uv = np.asarray(uv_px, np.float64)
    if x.ndim < 2 or x.shape[-1] != 3:
        raise ValueError(f"points_rel must have shape [..., J, 3], got {x.shape}")
    if uv.shape != x.shape[:-1] + (2,):
        raise ValueError(f"uv_px must have shape {x.shape[:-1] + (2,)}, got {uv.shape}")
    w = np.ones(x.shape[:-1]) if confidence is None else np.asarray(confidence, np.float64)
    if w.shape != x.shape[:-1]:
        raise ValueError(f"confidence must have shape {x.shape[:-1]}, got {w.shape}")
    w = np.clip(np.nan_to_num(w, nan=0.0), 0.0, None)
    f = np.broadcast_to(np.asarray(focal, np.float64)[..., None, :], uv.shape)
    c = np.broadcast_to(np.asarray(center, np.float64)[..., None, :], uv.shape)
    d = uv - c  # (u - cx, v - cy)
    # rows [..., J, 2 (x / y), 3] and right-hand sides [..., J, 2]
    a = np.zeros(x.shape[:-1] + (2, 3))
    a[..., 0, 0] = f[..., 0]
    a[..., 1, 1] = f[..., 1]
    a[..., :, 2] = -d
    b = d * x[..., 2:3] - f * x[..., :2]
    enough = (w > 0).sum(-1) >= 2
    row_w = w
    t = np.full(x.shape[:-2] + (3,), np.nan)
    for it in range(int(refine_iterations) + 1):
        if it > 0:
            depth = np.maximum(x[..., 2] + t[..., None, 2], min_depth)
            row_w = w / np.square(np.where(np.isfinite(depth), depth, 1.0))
        aw = a * row_w[..., None, None]
        m = np.einsum("...jri,...jrk->...ik", aw, a)
        r = np.einsum("...jri,...jr->...i", aw, b)
        with np.errstate(all="ignore"):
            ok = enough & np.isfinite(m).all((-2, -1)) & np.isfinite(r).all(-1)
            ok &= np.linalg.cond(np.where(ok[..., None, None], m, np.eye(3))) < 1e12
        eye = np.broadcast_to(np.eye(3), m.shape)
        sol = np.linalg.solve(np.where(ok[..., None, None], m, eye), r[..., None])[..., 0]
        t = np.where(ok[..., None], sol, np.nan)
    return t
