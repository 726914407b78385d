"""Two-view geometry for multi-view self-supervision (Li et al., AAAI 2020, Sec. "Loss Function").

Relative pose of two uncalibrated-extrinsics cameras from corresponding 2D joints, and helpers
that turn synchronised views into the training groups of Li et al.

Conventions (shared by every function in this module):

* ``N`` correspondences, ``V`` views, ``P`` view pairs, ``J`` joints; every function accepts
  arbitrary leading batch axes ``[...]``.
* Image points ``[..., N, 2]`` are **pixels** (x right, y down); intrinsics ``K [..., 3, 3]`` in
  pixels (``jpose.camera.intrinsics_matrix``); "normalised image coordinates" are ``K^-1 x``
  (unit focal length, no unit).
* 3D points are metres in OpenCV camera frames (x right, y down, z forward). A relative pose
  ``(R_ab, t_ab)`` maps view a's camera frame to view b's: ``X_b = R_ab X_a + t_ab`` (as
  ``jpose.camera.relative_transform``; Li et al. eq. 4). Extrinsics are world -> camera
  ``X_cam = R X_world + t``. Angles are radians.
* Epipolar constraint ``x_b^T F x_a = 0`` (homogeneous pixels), ``E = K_b^T F K_a``
  (Li et al.: ``E = P_v2^T F P_v1``; Hartley & Zisserman 2004, eq. 9.12).

Estimator (:func:`estimate_relative_pose`): the normalised eight-point algorithm (Hartley, "In
defense of the eight-point algorithm", PAMI 1997; Hartley & Zisserman, *Multiple View Geometry*,
2nd ed., Alg. 11.1) inside RANSAC (Fischler & Bolles 1981) with MSAC scoring of the Sampson
distance (H&Z eq. 11.9), a weighted eight-point refit on the inliers, the essential matrix from
the intrinsics, its four-solution decomposition (H&Z Result 9.19) and the cheirality check (the
solution that puts the most triangulated inliers in front of both cameras, H&Z Sec. 9.6.3). The
translation of an essential matrix is a direction only; the caller gives its length (the
baseline ``||C_b - C_a||``, as Li et al. multiply the unit vector by the distance between the
camera centres). RANSAC is deterministic given its ``key``.

Numerics: all functions are pure jax and follow the input dtype; the 1e-6 recovery accuracy on
noise-free data needs float64 (``with jax.enable_x64(True):`` and float64 inputs).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jpose.camera import intrinsics_matrix
from jpose.geometry import _check_matrix

__all__ = [
    "RelativePose",
    "hartley_normalization",
    "fundamental_eight_point",
    "sampson_distance",
    "ransac_fundamental",
    "essential_from_fundamental",
    "decompose_essential",
    "triangulate_linear",
    "select_by_cheirality",
    "estimate_relative_pose",
    "rotation_angle_error",
    "direction_angle_error",
    "view_pairs",
    "pair_transforms",
    "reference_frame_extrinsics",
    "project_views",
]

_W = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])


class RelativePose(NamedTuple):
    """Output of :func:`estimate_relative_pose` (leading batch axes ``[...]``).

    Attributes:
      rotation: ``[..., 3, 3]`` ``R_ab`` (view a -> view b).
      translation: ``[..., 3]`` ``t_ab`` in metres: unit direction times ``baseline``.
      fundamental: ``[..., 3, 3]`` ``F`` with ``x_b^T F x_a = 0`` (pixels, unit Frobenius norm).
      inliers: ``[..., N]`` bool, RANSAC inliers of the final ``F``.
      num_in_front: ``[...]`` inliers triangulated in front of both cameras by the chosen pose.
    """

    rotation: jax.Array
    translation: jax.Array
    fundamental: jax.Array
    inliers: jax.Array
    num_in_front: jax.Array


def _check_points(x: jax.Array, name: str) -> jax.Array:
    x = jnp.asarray(x)
    if x.ndim < 2 or x.shape[-1] != 2:
        raise ValueError(f"{name} must have shape [..., N, 2] (pixels), got {x.shape}")
    return x


def _check_pair(points_a: jax.Array, points_b: jax.Array) -> tuple[jax.Array, jax.Array]:
    pa, pb = _check_points(points_a, "points_a"), _check_points(points_b, "points_b")
    if pa.shape != pb.shape:
        raise ValueError(f"points_a {pa.shape} and points_b {pb.shape} must match")
    return pa, pb


def _weights(points: jax.Array, mask: jax.Array | None) -> jax.Array:
    if mask is None:
        return jnp.ones(points.shape[:-1], points.dtype)
    mask = jnp.asarray(mask)
    if mask.shape != points.shape[:-1]:
        raise ValueError(f"mask must have shape {points.shape[:-1]} ([..., N]), got {mask.shape}")
    return mask.astype(points.dtype)


def _homogeneous(x: jax.Array) -> jax.Array:
    return jnp.concatenate([x, jnp.ones_like(x[..., :1])], axis=-1)


def hartley_normalization(points: jax.Array, mask: jax.Array | None = None) -> jax.Array:
    """Similarity that moves the (masked) centroid to the origin and sets the mean distance to
    sqrt(2) (Hartley 1997, Sec. 5.2; H&Z Alg. 4.2).

    Args:
      points: ``[..., N, 2]`` pixels.
      mask: optional ``[..., N]`` weights (0 = ignore the point).

    Returns:
      ``T [..., 3, 3]`` acting on homogeneous pixels.
    """
    points = _check_points(points, "points")
    w = _weights(points, mask)
    wsum = jnp.maximum(jnp.sum(w, -1, keepdims=True), 1e-12)
    centroid = jnp.sum(w[..., None] * points, -2) / wsum
    d = jnp.sqrt(jnp.sum((points - centroid[..., None, :]) ** 2, -1) + 1e-30)
    mean_d = jnp.sum(w * d, -1) / wsum[..., 0]
    s = jnp.sqrt(2.0) / jnp.maximum(mean_d, 1e-12)
    # [[s, 0, -s cx], [0, s, -s cy], [0, 0, 1]]: an intrinsics matrix in form
    return intrinsics_matrix(jnp.stack([s, s], -1), -s[..., None] * centroid)


def _apply_h(t: jax.Array, points: jax.Array) -> jax.Array:
    """Homogeneous transform ``[..., 3, 3]`` of ``[..., N, 2]`` (affine T: last row 0 0 1)."""
    return points @ jnp.swapaxes(t[..., :2, :2], -1, -2) + t[..., None, :2, 2]


def _null_vector(a: jax.Array) -> jax.Array:
    """Right singular vector of the smallest singular value of ``a [..., R, 9]`` (R >= 1)."""
    r = a.shape[-2]
    if r < a.shape[-1]:  # pad with zero rows so full_matrices=False keeps the null space
        pad = [(0, 0)] * (a.ndim - 2) + [(0, a.shape[-1] - r), (0, 0)]
        a = jnp.pad(a, pad)
    _, _, vt = jnp.linalg.svd(a, full_matrices=False)
    return vt[..., -1, :]


def fundamental_eight_point(
    points_a: jax.Array, points_b: jax.Array, weights: jax.Array | None = None
) -> jax.Array:
    """Normalised eight-point fundamental matrix (Hartley 1997; H&Z Alg. 11.1), weighted.

    Each correspondence gives one row ``kron(x_b, x_a)`` of the linear system ``A f = 0`` in
    Hartley-normalised coordinates; ``f`` is the right singular vector of the smallest singular
    value of ``diag(w) A``; rank 2 is enforced by zeroing the smallest singular value of ``F``;
    ``F`` is denormalised ``T_b^T F T_a`` and scaled to unit Frobenius norm.

    Args:
      points_a: ``[..., N, 2]`` pixels in view a (N >= 8 with non-zero weight).
      points_b: ``[..., N, 2]`` corresponding pixels in view b.
      weights: optional ``[..., N]`` row weights (0/1 selects a subset, e.g. RANSAC inliers).

    Returns:
      ``F [..., 3, 3]`` with ``x_b^T F x_a = 0``.
    """
    pa, pb = _check_pair(points_a, points_b)
    w = _weights(pa, weights)
    ta, tb = hartley_normalization(pa, w), hartley_normalization(pb, w)
    xa, xb = _homogeneous(_apply_h(ta, pa)), _homogeneous(_apply_h(tb, pb))
    a = (xb[..., :, None] * xa[..., None, :]).reshape(*xa.shape[:-1], 9) * w[..., None]
    u, s, vt = jnp.linalg.svd(_null_vector(a).reshape(*a.shape[:-2], 3, 3))
    f = (u * s.at[..., 2].set(0.0)[..., None, :]) @ vt  # rank 2
    f = jnp.swapaxes(tb, -1, -2) @ f @ ta
    return f / jnp.linalg.norm(f, axis=(-2, -1), keepdims=True)


def sampson_distance(fundamental: jax.Array, points_a: jax.Array, points_b: jax.Array) -> jax.Array:
    """First-order geometric (Sampson) error of correspondences, H&Z eq. 11.9.

    ``(x_b^T F x_a)^2 / ((F x_a)_1^2 + (F x_a)_2^2 + (F^T x_b)_1^2 + (F^T x_b)_2^2)``.

    Args:
      fundamental: ``[..., 3, 3]`` ``F`` (pixels).
      points_a: ``[..., N, 2]`` pixels.
      points_b: ``[..., N, 2]`` pixels.

    Returns:
      ``[..., N]`` squared pixels.
    """
    f = _check_matrix(fundamental, "fundamental")
    xa = _homogeneous(_check_points(points_a, "points_a"))
    xb = _homogeneous(_check_points(points_b, "points_b"))
    fxa = xa @ jnp.swapaxes(f, -1, -2)  # rows: F x_a
    ftxb = xb @ f  # rows: F^T x_b
    num = jnp.sum(xb * fxa, -1) ** 2
    den = fxa[..., 0] ** 2 + fxa[..., 1] ** 2 + ftxb[..., 0] ** 2 + ftxb[..., 1] ** 2
    return num / jnp.maximum(den, jnp.finfo(den.dtype).tiny)


def _ransac_single(
    pa: jax.Array,
    pb: jax.Array,
    w: jax.Array,
    key: jax.Array,
    *,
    num_hypotheses: int,
    threshold_px: float,
    refine_steps: int,
) -> tuple[jax.Array, jax.Array]:
    n = pa.shape[-2]
    p = w / jnp.maximum(jnp.sum(w), 1e-12)
    keys = jax.random.split(key, num_hypotheses)
    idx = jax.vmap(lambda k: jax.random.choice(k, n, (8,), replace=False, p=p))(keys)
    hyp = fundamental_eight_point(pa[idx], pb[idx])  # [H, 3, 3]
    thr2 = threshold_px**2
    d = sampson_distance(hyp, pa[None], pb[None])  # [H, N]
    d = jnp.where(jnp.isfinite(d), d, jnp.inf)
    score = jnp.sum(w * jnp.minimum(d, thr2), -1)  # MSAC (Torr & Zisserman 2000)
    best = jnp.argmin(score)
    f = hyp[best]
    inl = (d[best] < thr2) & (w > 0)
    for _ in range(refine_steps):
        f_new = fundamental_eight_point(pa, pb, w * inl)
        f = jnp.where(jnp.sum(inl) >= 8, f_new, f)
        inl = (sampson_distance(f, pa, pb) < thr2) & (w > 0)
    return f, inl


def ransac_fundamental(
    points_a: jax.Array,
    points_b: jax.Array,
    mask: jax.Array | None = None,
    *,
    key: jax.Array,
    num_hypotheses: int = 256,
    threshold_px: float = 3.0,
    refine_steps: int = 2,
) -> tuple[jax.Array, jax.Array]:
    """Robust fundamental matrix: eight-point hypotheses in RANSAC, MSAC scoring, inlier refit.

    ``num_hypotheses`` minimal samples of 8 distinct correspondences (drawn among ``mask > 0``)
    each give a normalised eight-point ``F``; the one minimising the MSAC cost
    ``sum_i min(d_i, threshold^2)`` of the Sampson distances (H&Z eq. 11.9) wins, then
    ``refine_steps`` times ``F`` is refitted on its inliers (weighted eight-point) and the inliers
    are recomputed. Deterministic given ``key``.

    Args:
      points_a: ``[..., N, 2]`` pixels.
      points_b: ``[..., N, 2]`` pixels.
      mask: optional ``[..., N]`` (0 = unusable correspondence, e.g. a missing joint).
      key: typed PRNG key (split over the leading batch axes).
      num_hypotheses: RANSAC minimal samples.
      threshold_px: inlier threshold on the Sampson distance (pixels).
      refine_steps: inlier refits.

    Returns:
      ``(F [..., 3, 3], inliers [..., N] bool)``.
    """
    pa, pb = _check_pair(points_a, points_b)
    w = _weights(pa, mask)
    lead = pa.shape[:-2]
    n = pa.shape[-2]
    if n < 8:
        raise ValueError(f"the eight-point algorithm needs N >= 8 correspondences, got {n}")
    size = int(np.prod(lead)) if lead else 1
    keys = jax.random.split(key, size)
    one = functools.partial(
        _ransac_single,
        num_hypotheses=num_hypotheses,
        threshold_px=threshold_px,
        refine_steps=refine_steps,
    )
    f, inl = jax.vmap(one)(pa.reshape(size, n, 2), pb.reshape(size, n, 2), w.reshape(size, n), keys)
    return f.reshape(*lead, 3, 3), inl.reshape(*lead, n)


def essential_from_fundamental(
    fundamental: jax.Array, *, intrinsics_a: jax.Array, intrinsics_b: jax.Array
) -> jax.Array:
    """Essential matrix ``E = K_b^T F K_a`` (H&Z eq. 9.12; Li et al.'s ``E = P_v2^T F P_v1``).

    Args:
      fundamental: ``[..., 3, 3]`` ``F`` (pixels, ``x_b^T F x_a = 0``).
      intrinsics_a: ``[..., 3, 3]`` ``K_a`` (pixels).
      intrinsics_b: ``[..., 3, 3]`` ``K_b``.

    Returns:
      ``E [..., 3, 3]`` (unit Frobenius norm) with ``x̂_b^T E x̂_a = 0`` for normalised
      coordinates ``x̂ = K^-1 x``.
    """
    f = _check_matrix(fundamental, "fundamental")
    ka = _check_matrix(intrinsics_a, "intrinsics_a")
    kb = _check_matrix(intrinsics_b, "intrinsics_b")
    e = jnp.swapaxes(kb, -1, -2) @ f @ ka
    return e / jnp.linalg.norm(e, axis=(-2, -1), keepdims=True)


def decompose_essential(essential: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The four ``(R, t)`` of an essential matrix, H&Z Result 9.19.

    With ``E = U diag(1, 1, 0) V^T`` (``det U = det V = +1`` after sign fixes) and
    ``W = [[0, -1, 0], [1, 0, 0], [0, 0, 1]]``: ``R in {U W V^T, U W^T V^T}``, ``t = +-u_3``.

    Args:
      essential: ``[..., 3, 3]``.

    Returns:
      ``(rotations [..., 4, 3, 3], translations [..., 4, 3])`` (unit ``t``), ordered
      ``(R1, t), (R1, -t), (R2, t), (R2, -t)``.
    """
    e = _check_matrix(essential, "essential")
    u, _, vt = jnp.linalg.svd(e)
    u = u * jnp.sign(jnp.linalg.det(u))[..., None, None]
    vt = vt * jnp.sign(jnp.linalg.det(vt))[..., None, None]
    w = jnp.asarray(_W, e.dtype)
    r1 = u @ w @ vt
    r2 = u @ w.T @ vt
    t = u[..., :, 2]
    rot = jnp.stack([r1, r1, r2, r2], -3)
    trans = jnp.stack([t, -t, t, -t], -2)
    return rot, trans


def triangulate_linear(
    points_a: jax.Array, points_b: jax.Array, *, rotation: jax.Array, translation: jax.Array
) -> jax.Array:
    """Linear (DLT) triangulation with cameras ``[I | 0]`` and ``[R | t]``, H&Z Sec. 12.2.

    Args:
      points_a: ``[..., N, 2]`` normalised image coordinates ``K_a^-1 x_a`` (no unit).
      points_b: ``[..., N, 2]`` normalised image coordinates in view b.
      rotation: ``[..., 3, 3]`` ``R_ab``.
      translation: ``[..., 3]`` ``t_ab`` (its length sets the unit of the output).

    Returns:
      ``[..., N, 3]`` points in view a's camera frame (units of ``translation``).
    """
    pa = _check_points(points_a, "points_a")
    pb = _check_points(points_b, "points_b")
    r = _check_matrix(rotation, "rotation")
    t = jnp.asarray(translation)
    eye = jnp.broadcast_to(jnp.eye(3, 4, dtype=pa.dtype), r.shape[:-2] + (3, 4))
    p_b = jnp.concatenate([r, t[..., :, None]], -1)  # [..., 3, 4]
    eye, p_b = eye[..., None, :, :], p_b[..., None, :, :]  # broadcast over N

    def rows(p, x):
        return jnp.stack(
            [x[..., 0:1] * p[..., 2, :] - p[..., 0, :], x[..., 1:2] * p[..., 2, :] - p[..., 1, :]],
            -2,
        )

    a = jnp.concatenate([rows(eye, pa), rows(p_b, pb)], -2)  # [..., N, 4, 4]
    a = a / jnp.maximum(jnp.linalg.norm(a, axis=-1, keepdims=True), 1e-30)
    _, _, vt = jnp.linalg.svd(a)
    x = vt[..., -1, :]
    den = x[..., 3:4]
    den = jnp.where(jnp.abs(den) < 1e-30, 1e-30, den)
    return x[..., :3] / den


def select_by_cheirality(
    rotations: jax.Array,
    translations: jax.Array,
    points_a: jax.Array,
    points_b: jax.Array,
    mask: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Pick the ``(R, t)`` that puts most triangulated points in front of both cameras
    (cheirality, H&Z Sec. 9.6.3 and Result 9.19).

    Args:
      rotations: ``[..., K, 3, 3]`` candidate ``R_ab`` (e.g. the 4 of :func:`decompose_essential`).
      translations: ``[..., K, 3]`` candidate ``t_ab``.
      points_a: ``[..., N, 2]`` normalised image coordinates in view a.
      points_b: ``[..., N, 2]`` normalised image coordinates in view b.
      mask: optional ``[..., N]`` (points counted only where > 0).

    Returns:
      ``(R [..., 3, 3], t [..., 3], num_in_front [...])``.
    """
    pa = _check_points(points_a, "points_a")
    pb = _check_points(points_b, "points_b")
    w = _weights(pa, mask)
    x = triangulate_linear(
        pa[..., None, :, :], pb[..., None, :, :], rotation=rotations, translation=translations
    )  # [..., K, N, 3]
    xb = x @ jnp.swapaxes(rotations, -1, -2) + translations[..., None, :]
    front = (x[..., 2] > 0) & (xb[..., 2] > 0)
    count = jnp.sum(front * w[..., None, :], -1)  # [..., K]
    best = jnp.argmax(count, -1)
    r = jnp.take_along_axis(rotations, best[..., None, None, None], -3)[..., 0, :, :]
    t = jnp.take_along_axis(translations, best[..., None, None], -2)[..., 0, :]
    return r, t, jnp.take_along_axis(count, best[..., None], -1)[..., 0]


def estimate_relative_pose(
    points_a: jax.Array,
    points_b: jax.Array,
    mask: jax.Array | None = None,
    *,
    intrinsics_a: jax.Array,
    intrinsics_b: jax.Array,
    key: jax.Array,
    baseline: jax.Array | float = 1.0,
    num_hypotheses: int = 256,
    threshold_px: float = 3.0,
    refine_steps: int = 2,
) -> RelativePose:
    """Relative pose of view b w.r.t. view a from 2D correspondences (Li et al., uncalibrated).

    RANSAC fundamental matrix (:func:`ransac_fundamental`), ``E = K_b^T F K_a``, the four
    decompositions and the cheirality check on the inliers; ``t`` is the unit direction times
    ``baseline`` (the distance between the camera centres, given: two views determine the
    translation only up to scale). Both views should see the same instants (e.g. all joints of
    many synchronised frames of a static rig); at least 8 correspondences, not all on a plane or
    another critical surface.

    Args:
      points_a: ``[..., N, 2]`` pixels in view a.
      points_b: ``[..., N, 2]`` pixels in view b.
      mask: optional ``[..., N]`` usable correspondences (e.g. confidence > 0).
      intrinsics_a: ``[..., 3, 3]`` ``K_a`` pixels.
      intrinsics_b: ``[..., 3, 3]`` ``K_b`` pixels.
      key: typed PRNG key of RANSAC.
      baseline: ``[...]`` or scalar, metres.
      num_hypotheses, threshold_px, refine_steps: see :func:`ransac_fundamental`.

    Returns:
      :class:`RelativePose` (``X_b = R X_a + t``).
    """
    pa = _check_points(points_a, "points_a")
    pb = _check_points(points_b, "points_b")
    ka = _check_matrix(intrinsics_a, "intrinsics_a")
    kb = _check_matrix(intrinsics_b, "intrinsics_b")
    f, inl = ransac_fundamental(
        pa,
        pb,
        mask,
        key=key,
        num_hypotheses=num_hypotheses,
        threshold_px=threshold_px,
        refine_steps=refine_steps,
    )
    e = essential_from_fundamental(f, intrinsics_a=ka, intrinsics_b=kb)
    rots, trans = decompose_essential(e)
    na = _apply_h(jnp.linalg.inv(ka), pa)
    nb = _apply_h(jnp.linalg.inv(kb), pb)
    r, t, count = select_by_cheirality(rots, trans, na, nb, inl.astype(pa.dtype))
    t = t * jnp.asarray(baseline, pa.dtype)[..., None]
    return RelativePose(rotation=r, translation=t, fundamental=f, inliers=inl, num_in_front=count)


def rotation_angle_error(rotation: jax.Array, target: jax.Array) -> jax.Array:
    """Geodesic angle between rotations, ``arccos((tr(R^T R_target) - 1) / 2)``
    (H&Z / Hartley et al. IJCV 2013 "Rotation averaging" eq. 4).

    Args:
      rotation: ``[..., 3, 3]`` estimate.
      target: ``[..., 3, 3]`` reference.

    Returns:
      ``[...]`` radians in ``[0, pi]``.
    """
    r = _check_matrix(rotation, "rotation")
    g = _check_matrix(target, "target")
    m = jnp.swapaxes(r, -1, -2) @ g
    cos = (jnp.trace(m, axis1=-2, axis2=-1) - 1.0) / 2.0
    # atan2 form (sin from the skew part): accurate near 0, where arccos loses half the digits
    skew = jnp.stack(
        [m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]], -1
    )
    sin = jnp.linalg.norm(skew, axis=-1) / 2.0
    return jnp.arctan2(sin, cos)


def direction_angle_error(direction: jax.Array, target: jax.Array) -> jax.Array:
    """Angle between two translation directions (their lengths ignored; Li et al. scale ``t``
    by the baseline separately).

    Args:
      direction: ``[..., 3]`` estimate (any length > 0).
      target: ``[..., 3]`` reference.

    Returns:
      ``[...]`` radians in ``[0, pi]``.
    """
    a, b = jnp.asarray(direction), jnp.asarray(target)
    if a.shape[-1:] != (3,) or b.shape[-1:] != (3,):
        raise ValueError(f"direction and target must be [..., 3], got {a.shape}, {b.shape}")
    cross = jnp.linalg.norm(jnp.cross(a, b), axis=-1)
    return jnp.arctan2(cross, jnp.sum(a * b, -1))


# --------------------------------------------------------------------- Multi-view training groups


def view_pairs(num_views: int, *, ordered: bool = False) -> np.ndarray:
    """Index pairs of views: ``(a, b)`` with ``a < b`` (or every ``a != b`` when ``ordered``).

    Args:
      num_views: V >= 2.
      ordered: include both directions.

    Returns:
      int ``[P, 2]`` with ``P = V (V - 1) / 2`` (or ``V (V - 1)``).
    """
    if num_views < 2:
        raise ValueError(f"view pairs need num_views >= 2, got {num_views}")
    a, b = np.nonzero(~np.eye(num_views, dtype=bool) if ordered else np.triu(
        np.ones((num_views, num_views), bool), 1))  # fmt: skip
    return np.stack([a, b], -1).astype(np.int32)


def pair_transforms(
    rotation: jax.Array, translation: jax.Array, *, pairs: np.ndarray
) -> tuple[jax.Array, jax.Array]:
    """Relative transforms of view pairs from per-view extrinsics (Li et al. eq. 4).

    ``R_ab = R_b R_a^T``, ``t_ab = t_b - R_ab t_a`` (= ``jpose.camera.relative_transform``).

    Args:
      rotation: ``[..., V, 3, 3]`` world -> camera.
      translation: ``[..., V, 3]`` metres.
      pairs: int ``[P, 2]`` view indices ``(a, b)`` (:func:`view_pairs`).

    Returns:
      ``(R_ab [..., P, 3, 3], t_ab [..., P, 3])``.
    """
    r = _check_matrix(rotation, "rotation")
    t = jnp.asarray(translation)
    pairs = np.asarray(pairs)
    ra, rb = r[..., pairs[:, 0], :, :], r[..., pairs[:, 1], :, :]
    ta, tb = t[..., pairs[:, 0], :], t[..., pairs[:, 1], :]
    r_ab = rb @ jnp.swapaxes(ra, -1, -2)
    return r_ab, tb - jnp.einsum("...ij,...j->...i", r_ab, ta)


def reference_frame_extrinsics(
    rotation: jax.Array, translation: jax.Array, *, reference: int = 0
) -> tuple[jax.Array, jax.Array]:
    """Re-express per-view extrinsics with view ``reference``'s camera frame as the world.

    Li et al. (uncalibrated case) take the first camera as the origin: ``R_ref = I``,
    ``t_ref = 0``; view v gets ``(R_ref,v, t_ref,v)``. Relative transforms between any two views
    (:func:`pair_transforms`) are unchanged.

    Args:
      rotation: ``[..., V, 3, 3]`` world -> camera.
      translation: ``[..., V, 3]`` metres.
      reference: index of the reference view.

    Returns:
      ``(R [..., V, 3, 3], t [..., V, 3])`` reference-camera -> camera.
    """
    r = _check_matrix(rotation, "rotation")
    t = jnp.asarray(translation)
    r_ref, t_ref = r[..., reference : reference + 1, :, :], t[..., reference : reference + 1, :]
    r_new = r @ jnp.swapaxes(r_ref, -1, -2)
    return r_new, t - jnp.einsum("...ij,...j->...i", r_new, t_ref)


def project_views(
    points_world: jax.Array,
    *,
    rotation: jax.Array,
    translation: jax.Array,
    focal: jax.Array,
    center: jax.Array,
    min_depth: float = 1e-3,
) -> tuple[jax.Array, jax.Array]:
    """A world pose seen by V (e.g. virtual) cameras: camera-frame 3D and pinhole pixels.

    Used to *create 2D inputs* of extra views (Li et al.'s 8 virtual cameras); the 3D output is
    for checks only and never a training target.

    Args:
      points_world: ``[..., J, 3]`` metres.
      rotation: ``[..., V, 3, 3]`` world -> camera.
      translation: ``[..., V, 3]`` metres.
      focal: ``[..., V, 2]`` pixels.
      center: ``[..., V, 2]`` pixels.
      min_depth: depth clamp of the projection, metres.

    Returns:
      ``(points_cam [..., V, J, 3] metres, uv [..., V, J, 2] pixels)``.
    """
    x = jnp.asarray(points_world)
    if x.ndim < 2 or x.shape[-1] != 3:
        raise ValueError(f"points_world must have shape [..., J, 3], got {x.shape}")
    r = _check_matrix(rotation, "rotation")
    cam = x[..., None, :, :] @ jnp.swapaxes(r, -1, -2) + jnp.asarray(translation)[..., None, :]
    z = jnp.maximum(cam[..., 2:3], min_depth)
    uv = jnp.asarray(focal)[..., None, :] * cam[..., :2] / z + jnp.asarray(center)[..., None, :]
    return cam, uv
