"""Rotations, safe norms, root centring, scale normalisations and Procrustes alignment.

Conventions (shared by every function in this module):

* Poses are ``[..., J, 3]`` arrays in metres (J joints, any number of leading batch axes).
* Rotation matrices are ``[..., 3, 3]`` and act on column vectors; a pose is rotated with
  ``pose @ R.swapaxes(-1, -2)`` (see :func:`rotate_points`).
* Axis-angle vectors are ``[..., 3]`` (direction = axis, norm = angle in radians, right-hand rule).
* Quaternions are ``[..., 4]`` scalar-first ``(w, x, y, z)``, like VideoPose3D (scipy uses xyzw).
* Camera frame (OpenCV): x right, y down, z forward. The Human3.6M world frame is z-up.

Lie-group note (decision): the SO(3) exponential / logarithm and the quaternion <-> matrix maps use
``jaxlie`` (1.5.0). It accepts arbitrary leading batch axes, broadcasts, and its ``exp``/``log``
use Taylor branches with NaN-safe ``where`` shims, so values and gradients are finite at zero angle
(checked in ``tests/test_geometry.py``). Quaternion algebra that must broadcast between a
``[..., 4]`` quaternion and ``[..., 3]`` points (product, inverse of a non-unit quaternion,
rotation) is written out here in a few lines of ``jnp``.

Procrustes note: the rotation of the orthogonal Procrustes problem comes from a batched SVD of the
3x3 cross-covariance. Its derivative is given by a custom JVP (the derivative of the polar factor,
``dR = U Omega V'^T`` with ``Omega_ij = (X_ij - X_ji) / (s'_i + s'_j)``) whose denominators are
zeroed where they vanish (all joints coincident, rank-1 inputs, or the reflection fix with two equal
singular values), so values and gradients stay finite on degenerate inputs; there the rotation is
not unique and the gradient is the minimum-norm one that ignores the undetermined directions.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import jaxlie

__all__ = [
    "safe_norm",
    "safe_normalize",
    "root_centre",
    "rotate_points",
    "axis_angle_to_matrix",
    "matrix_to_axis_angle",
    "quaternion_to_matrix",
    "matrix_to_quaternion",
    "quaternion_multiply",
    "quaternion_inverse",
    "quaternion_rotate",
    "axis_angle_to_quaternion",
    "quaternion_to_axis_angle",
    "elementary_rotation",
    "random_rotation",
    "procrustes_transform",
    "procrustes_align",
    "horn_rotation",
    "procrustes_residuals",
    "optimal_scale",
    "normalize_head_root",
    "rescale_to_reference_length",
]

# Squared spread (m^2) below which a point set counts as all-coincident in Procrustes.
_PROCRUSTES_EPS = 1e-12
# Relative threshold on s'_i + s'_j below which the Procrustes rotation derivative is zeroed.
_PROCRUSTES_REL_TOL = 1e-6


def _check_last(x: jax.Array, size: int, name: str, *, min_ndim: int = 1) -> jax.Array:
    x = jnp.asarray(x)
    if x.ndim < min_ndim or x.shape[-1] != size:
        expected = "[..., " + ("J, " if min_ndim > 1 else "") + f"{size}]"
        raise ValueError(f"{name} must have shape {expected}, got {x.shape}")
    return x


def _check_joints(x: jax.Array, num_joints: int, name: str) -> jax.Array:
    x = jnp.asarray(x)
    if x.ndim < 1 or x.shape[-1] != num_joints:
        raise ValueError(f"{name} must have shape [..., J] with J={num_joints}, got {x.shape}")
    return x


def _check_matrix(m: jax.Array, name: str) -> jax.Array:
    m = jnp.asarray(m)
    if m.ndim < 2 or m.shape[-2:] != (3, 3):
        raise ValueError(f"{name} must have shape [..., 3, 3], got {m.shape}")
    return m


def _safe_div(num: jax.Array, den: jax.Array, *, eps: float, fill: float = 0.0) -> jax.Array:
    """num / den where |den| > eps, else ``fill``; double-where keeps the gradient finite."""
    ok = jnp.abs(den) > eps
    den_safe = jnp.where(ok, den, 1.0)
    return jnp.where(ok, num / den_safe, fill)


# ------------------------------------------------------------------------- Norms and centring


def safe_norm(
    x: jax.Array, *, axis: int = -1, keepdims: bool = False, eps: float = 1e-12
) -> jax.Array:
    """Euclidean norm whose gradient is finite (zero) at the zero vector.

    Uses the double-``where`` trick: where ``sum(x**2) <= eps`` the norm is computed from a
    placeholder of 1 and then replaced by 0, so no ``0/0`` enters the backward pass.

    Args:
      x: array ``[..., D, ...]``.
      axis: axis to reduce.
      keepdims: keep the reduced axis with size 1.
      eps: threshold on the squared norm (units of x squared) below which the norm is 0.

    Returns:
      Norm, shape of ``x`` without ``axis`` (or with size 1 if ``keepdims``), units of ``x``.
    """
    x = jnp.asarray(x)
    sq = jnp.sum(x * x, axis=axis, keepdims=keepdims)
    ok = sq > eps
    return jnp.where(ok, jnp.sqrt(jnp.where(ok, sq, 1.0)), 0.0)


def safe_normalize(x: jax.Array, *, axis: int = -1, eps: float = 1e-12) -> jax.Array:
    """Unit vector ``x / |x|``, returning zeros (and finite gradients) for the zero vector.

    Args:
      x: array ``[..., D]`` (or with ``D`` on ``axis``).
      axis: vector axis.
      eps: threshold on the squared norm below which the output is 0.

    Returns:
      Array of the shape of ``x``, unitless.
    """
    x = jnp.asarray(x)
    sq = jnp.sum(x * x, axis=axis, keepdims=True)
    ok = sq > eps
    inv = jnp.where(ok, jax.lax.rsqrt(jnp.where(ok, sq, 1.0)), 0.0)
    return x * inv


def root_centre(pose: jax.Array, *, root: int = 0) -> jax.Array:
    """Subtract the root joint from every joint.

    Args:
      pose: ``[..., J, D]`` joints (metres for 3D, any unit for 2D).
      root: index of the root joint.

    Returns:
      ``[..., J, D]`` root-relative joints (the root row is exactly zero).
    """
    pose = jnp.asarray(pose)
    if pose.ndim < 2:
        raise ValueError(f"pose must have shape [..., J, D], got {pose.shape}")
    if not -pose.shape[-2] <= root < pose.shape[-2]:
        raise ValueError(f"root={root} out of range for {pose.shape[-2]} joints")
    return pose - pose[..., root : root + 1, :]


def rotate_points(points: jax.Array, rotation: jax.Array) -> jax.Array:
    """Apply rotation matrices to row-vector points: ``points @ R^T``.

    Args:
      points: ``[..., J, 3]``.
      rotation: ``[..., 3, 3]`` (batch axes broadcast against ``points[..., 0, 0]``).

    Returns:
      ``[..., J, 3]`` rotated points, units of ``points``.
    """
    points = _check_last(points, 3, "points", min_ndim=2)
    rotation = _check_matrix(rotation, "rotation")
    return points @ jnp.swapaxes(rotation, -1, -2)


# ----------------------------------------- Rotations (jaxlie for exp/log/quaternion<->matrix)


def axis_angle_to_matrix(axis_angle: jax.Array) -> jax.Array:
    """Rodrigues' formula ``R = exp([w]_x)`` (jaxlie ``SO3.exp``; finite gradient at 0).

    Args:
      axis_angle: ``[..., 3]`` rotation vectors (radians).

    Returns:
      ``[..., 3, 3]`` rotation matrices.
    """
    axis_angle = _check_last(axis_angle, 3, "axis_angle")
    return jaxlie.SO3.exp(axis_angle).as_matrix()


def matrix_to_axis_angle(matrix: jax.Array) -> jax.Array:
    """Inverse of :func:`axis_angle_to_matrix` (jaxlie ``SO3.from_matrix(...).log()``).

    Args:
      matrix: ``[..., 3, 3]`` rotation matrices.

    Returns:
      ``[..., 3]`` rotation vectors with angle in ``[0, pi]`` (at exactly pi the sign of the axis
      is arbitrary, as both represent the same rotation).
    """
    matrix = _check_matrix(matrix, "matrix")
    return jaxlie.SO3.from_matrix(matrix).log()


def quaternion_to_matrix(quaternion: jax.Array) -> jax.Array:
    """Rotation matrix of a (w, x, y, z) quaternion; the quaternion is normalised first.

    Args:
      quaternion: ``[..., 4]`` scalar-first quaternions (any non-zero norm; zero -> identity).

    Returns:
      ``[..., 3, 3]`` rotation matrices.
    """
    quaternion = _check_last(quaternion, 4, "quaternion")
    q = safe_normalize(quaternion)
    # Zero quaternion -> (1, 0, 0, 0) so the result is the identity rather than zeros.
    q = q.at[..., 0].add(jnp.where(jnp.all(q == 0, axis=-1), 1.0, 0.0))
    return jaxlie.SO3(wxyz=q).as_matrix()


def matrix_to_quaternion(matrix: jax.Array) -> jax.Array:
    """Unit (w, x, y, z) quaternion of a rotation matrix, canonicalised to ``w >= 0``.

    Args:
      matrix: ``[..., 3, 3]`` rotation matrices.

    Returns:
      ``[..., 4]`` unit quaternions with non-negative scalar part.
    """
    matrix = _check_matrix(matrix, "matrix")
    q = jaxlie.SO3.from_matrix(matrix).wxyz
    return jnp.where(q[..., :1] < 0, -q, q)


def quaternion_multiply(q1: jax.Array, q2: jax.Array) -> jax.Array:
    """Hamilton product ``q1 * q2`` (rotation by q2 then q1); batch axes broadcast.

    Args:
      q1: ``[..., 4]`` (w, x, y, z).
      q2: ``[..., 4]`` (w, x, y, z).

    Returns:
      ``[..., 4]`` product (unit if both inputs are unit).
    """
    q1 = _check_last(q1, 4, "q1")
    q2 = _check_last(q2, 4, "q2")
    w1, x1, y1, z1 = jnp.moveaxis(q1, -1, 0)
    w2, x2, y2, z2 = jnp.moveaxis(q2, -1, 0)
    return jnp.stack(
        [
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        ],
        axis=-1,
    )


def quaternion_inverse(quaternion: jax.Array, *, eps: float = 1e-12) -> jax.Array:
    """Quaternion inverse ``conj(q) / |q|^2`` (the conjugate for unit quaternions).

    Args:
      quaternion: ``[..., 4]`` (w, x, y, z).
      eps: squared-norm threshold below which the result is 0 (finite gradient).

    Returns:
      ``[..., 4]`` inverse quaternions.
    """
    quaternion = _check_last(quaternion, 4, "quaternion")
    conj = quaternion * jnp.array([1.0, -1.0, -1.0, -1.0], dtype=quaternion.dtype)
    sq = jnp.sum(quaternion * quaternion, axis=-1, keepdims=True)
    return _safe_div(conj, sq, eps=eps)


def quaternion_rotate(quaternion: jax.Array, vectors: jax.Array) -> jax.Array:
    """Rotate 3-vectors by unit quaternions (VideoPose3D ``qrot``: v + 2 (w (u x v) + u x (u x v))).

    Args:
      quaternion: ``[..., 4]`` unit (w, x, y, z); batch axes broadcast against ``vectors[..., 0]``
        (for a pose ``[..., J, 3]`` pass ``quaternion[..., None, :]``).
      vectors: ``[..., 3]``.

    Returns:
      ``[..., 3]`` rotated vectors, units of ``vectors``.
    """
    quaternion = _check_last(quaternion, 4, "quaternion")
    vectors = _check_last(vectors, 3, "vectors")
    qvec = quaternion[..., 1:]
    uv = jnp.cross(jnp.broadcast_to(qvec, jnp.broadcast_shapes(qvec.shape, vectors.shape)), vectors)
    uuv = jnp.cross(jnp.broadcast_to(qvec, uv.shape), uv)
    return vectors + 2.0 * (quaternion[..., :1] * uv + uuv)


def axis_angle_to_quaternion(axis_angle: jax.Array) -> jax.Array:
    """Unit (w, x, y, z) quaternion of a rotation vector (jaxlie ``SO3.exp``).

    Args:
      axis_angle: ``[..., 3]`` rotation vectors (radians).

    Returns:
      ``[..., 4]`` unit quaternions.
    """
    axis_angle = _check_last(axis_angle, 3, "axis_angle")
    return jaxlie.SO3.exp(axis_angle).wxyz


def quaternion_to_axis_angle(quaternion: jax.Array) -> jax.Array:
    """Rotation vector of a unit (w, x, y, z) quaternion (jaxlie ``SO3.log``).

    Args:
      quaternion: ``[..., 4]`` (normalised first; zero -> zero vector).

    Returns:
      ``[..., 3]`` rotation vectors (radians, angle in ``[0, pi]``).
    """
    quaternion = _check_last(quaternion, 4, "quaternion")
    return jaxlie.SO3(wxyz=safe_normalize(quaternion)).log()


_AXES = {"x": 0, "y": 1, "z": 2}


def elementary_rotation(angle: jax.Array, *, axis: str) -> jax.Array:
    """Right-handed rotation by ``angle`` about a coordinate axis.

    Args:
      angle: ``[...]`` radians.
      axis: ``"x"``, ``"y"`` or ``"z"``.

    Returns:
      ``[..., 3, 3]`` rotation matrices.
    """
    if axis not in _AXES:
        raise ValueError(f"axis must be one of 'x', 'y', 'z', got {axis!r}")
    angle = jnp.asarray(angle)
    aa = jnp.zeros(angle.shape + (3,), dtype=jnp.result_type(angle, jnp.float32))
    aa = aa.at[..., _AXES[axis]].set(angle)
    return axis_angle_to_matrix(aa)


# (vertical axis, tilt axis, roll axis) for each up-axis convention.
_UP_AXES = {"y": ("y", "x", "z"), "z": ("z", "x", "y")}


def random_rotation(
    key: jax.Array,
    shape: Sequence[int] = (),
    *,
    azimuth_range: tuple[float, float] = (0.0, 2.0 * math.pi),
    elevation_range: tuple[float, float] = (0.0, 0.0),
    roll_range: tuple[float, float] = (0.0, 0.0),
    up_axis: str = "y",
) -> jax.Array:
    """Random rotations ``R = R_roll @ R_elevation @ R_azimuth`` with uniform angles.

    The azimuth is a rotation about the vertical axis, applied first; the elevation then tilts
    about the horizontal x axis; the roll finally rotates about the remaining (viewing) axis.
    ``up_axis="y"`` is the camera frame (x right, y down, z forward: azimuth about y, elevation
    about x, roll about z); ``up_axis="z"`` is a z-up world frame such as Human3.6M's (azimuth about
    z, elevation about x, roll about y). All rotations are right-handed. Drover et al. (ECCV-W
    2018, Sec. 3) sample azimuth in [0, 2 pi) and elevation in [0, pi / 9] (20 degrees).

    Args:
      key: PRNG key.
      shape: batch shape of the output.
      azimuth_range: ``(low, high)`` radians, uniform.
      elevation_range: ``(low, high)`` radians, uniform.
      roll_range: ``(low, high)`` radians, uniform.
      up_axis: ``"y"`` (camera frame) or ``"z"`` (z-up world).

    Returns:
      ``[*shape, 3, 3]`` rotation matrices.
    """
    if up_axis not in _UP_AXES:
        raise ValueError(f"up_axis must be 'y' or 'z', got {up_axis!r}")
    ranges = (azimuth_range, elevation_range, roll_range)
    r_az, r_el, r_ro = (
        elementary_rotation(jax.random.uniform(k, tuple(shape), minval=lo, maxval=hi), axis=axis)
        for k, (lo, hi), axis in zip(jax.random.split(key, 3), ranges, _UP_AXES[up_axis])
    )
    return r_ro @ r_el @ r_az


# --------------------------------------------------------------------------------- Procrustes


def _rotation_factors(m: jax.Array, reflection: bool):
    u, s, vt = jnp.linalg.svd(m)
    if reflection:
        sign = jnp.ones_like(s[..., 0])
    else:
        det = jnp.linalg.det(u @ vt)
        sign = jnp.where(det < 0, -1.0, 1.0).astype(s.dtype)
    d = jnp.stack([jnp.ones_like(sign), jnp.ones_like(sign), sign], axis=-1)
    vpt = d[..., :, None] * vt  # V'^T = D V^T
    return u, s * d, vpt


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def _procrustes_rotation(m: jax.Array, reflection: bool) -> jax.Array:
    """argmax_R tr(R^T m) over SO(3) (or O(3) if ``reflection``), m = [..., 3, 3].

    Without differentiation, float32 SO(3) fits use the closed-form Horn/QCP solver
    (:func:`horn_rotation`); the JVP rule (and so every gradient) uses the SVD.
    """
    if not reflection and _use_horn(m.dtype):
        flat = m.reshape(-1, 9)
        rot = _horn_rotation_lists([[flat[:, 3 * a + b] for b in range(3)] for a in range(3)])
        rot = jnp.stack([rot[a][b] for a in range(3) for b in range(3)], axis=-1)
        return rot.reshape(*m.shape[:-2], 3, 3)
    u, _, vpt = _rotation_factors(m, reflection)
    return u @ vpt


@_procrustes_rotation.defjvp
def _procrustes_rotation_jvp(reflection, primals, tangents):
    (m,) = primals
    (dm,) = tangents
    u, sp, vpt = _rotation_factors(m, reflection)
    r = u @ vpt
    # Polar-factor derivative: X = U^T dM V', Omega_ij = (X_ij - X_ji) / (s'_i + s'_j).
    x = jnp.swapaxes(u, -1, -2) @ dm @ jnp.swapaxes(vpt, -1, -2)
    den = sp[..., :, None] + sp[..., None, :]
    tol = _PROCRUSTES_REL_TOL * jnp.abs(sp[..., :1, None]) + 1e-30
    ok = jnp.abs(den) > tol
    inv = jnp.where(ok, 1.0 / jnp.where(ok, den, 1.0), 0.0)
    omega = (x - jnp.swapaxes(x, -1, -2)) * inv
    return r, u @ omega @ vpt


def _procrustes_inputs(pred, target, weights) -> tuple[jax.Array, jax.Array, jax.Array | None]:
    """Checked ``pred``, ``target`` ``[..., J, 3]`` and ``weights`` (``None`` or ``[..., J]``)
    in their common floating dtype."""
    pred = _check_last(pred, 3, "pred", min_ndim=2)
    target = _check_last(target, 3, "target", min_ndim=2)
    if pred.shape[-2] != target.shape[-2]:
        raise ValueError(
            f"pred and target must have the same number of joints J in [..., J, 3], got "
            f"{pred.shape} and {target.shape}"
        )
    dtype = jnp.result_type(pred, target, jnp.float32)
    if weights is not None:
        weights = _check_joints(jnp.asarray(weights, dtype), pred.shape[-2], "weights")
    return pred.astype(dtype), target.astype(dtype), weights


def procrustes_transform(
    pred: jax.Array,
    target: jax.Array,
    *,
    scale: bool = True,
    reflection: bool = False,
    weights: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Similarity (or rigid) transform that best maps ``pred`` onto ``target``.

    Solves ``min_{R, s, t} sum_j w_j |target_j - (s R pred_j + t)|^2`` (Umeyama 1991, eqs. 40-42;
    Kabsch/Horn for the rotation). ``R = U D V^T`` from the SVD ``U S V^T`` of the weighted
    cross-covariance ``sum_j w_j (y_j - mu_y)(x_j - mu_x)^T``; without ``reflection``,
    ``D = diag(1, 1, sign det(U V^T))`` (the reflection fix, as in VideoPose3D's P-MPJPE), so
    ``det R = +1``. ``s = tr(S D) / sum_j w_j |x_j - mu_x|^2`` and ``t = mu_y - s R mu_x``.

    Degenerate inputs give finite values and gradients: if ``pred`` is all-coincident (spread below
    1e-12 m^2) ``s = 1``; a rotation that is not unique (rank <= 1, all coincident) is whatever the
    SVD returns and its derivative ignores the undetermined directions (see the module note).

    Args:
      pred: ``[..., J, 3]`` points to align (metres).
      target: ``[..., J, 3]`` reference points (metres), batch axes broadcast with ``pred``.
      scale: estimate ``s``; if False, ``s = 1`` (rigid alignment).
      reflection: allow improper ``R`` (det -1).
      weights: optional ``[..., J]`` non-negative joint weights (broadcast with the batch axes).

    Returns:
      ``(R [..., 3, 3], s [...], t [..., 3])`` with ``aligned = s * pred @ R^T + t``.
    """
    pred, target, w = _procrustes_inputs(pred, target, weights)
    dtype = pred.dtype
    if w is None:
        w = jnp.ones(pred.shape[-2], dtype)
    wsum = jnp.sum(w, axis=-1)
    wn = _safe_div(w, wsum[..., None], eps=0.0)[..., None]  # [..., J, 1] normalised weights
    mu_x = jnp.sum(wn * pred, axis=-2)
    mu_y = jnp.sum(wn * target, axis=-2)
    x = pred - mu_x[..., None, :]
    y = target - mu_y[..., None, :]
    cov = jnp.swapaxes(wn * y, -1, -2) @ x  # [..., 3, 3] sum_j w_j y_j x_j^T
    var_x = jnp.sum(wn[..., 0] * jnp.sum(x * x, axis=-1), axis=-1)
    rot = _procrustes_rotation(cov, reflection)
    if scale:
        trace = jnp.sum(rot * cov, axis=(-2, -1))  # tr(R^T cov) = tr(S D)
        s = _safe_div(trace, var_x, eps=_PROCRUSTES_EPS, fill=1.0)
    else:
        s = jnp.ones(cov.shape[:-2], dtype)
    t = mu_y - s[..., None] * jnp.squeeze(rot @ mu_x[..., :, None], -1)
    return rot, s, t


def procrustes_align(
    pred: jax.Array,
    target: jax.Array,
    *,
    scale: bool = True,
    reflection: bool = False,
    weights: jax.Array | None = None,
) -> jax.Array:
    """``pred`` after the optimal similarity transform onto ``target`` (see
    :func:`procrustes_transform`); P-MPJPE is the MPJPE of this against ``target``.

    Args:
      pred: ``[..., J, 3]`` metres.
      target: ``[..., J, 3]`` metres.
      scale: similarity (True) or rigid (False) alignment.
      reflection: allow improper rotations.
      weights: optional ``[..., J]`` joint weights.

    Returns:
      ``[..., J, 3]`` aligned prediction (metres).
    """
    rot, s, t = procrustes_transform(
        pred, target, scale=scale, reflection=reflection, weights=weights
    )
    pred = jnp.asarray(pred, rot.dtype)
    return s[..., None, None] * (pred @ jnp.swapaxes(rot, -1, -2)) + t[..., None, :]


# ---------- Fast 3x3 rotation fit (Horn's quaternion method, QCP eigenvalue, Jacobi fallback)

# Newton iterations on the characteristic quartic (from an upper bound; monotone convergence).
_QCP_NEWTON_STEPS = 12
# Cyclic Jacobi sweeps of the 4x4 fallback (float32 accuracy after 4 sweeps).
_JACOBI_SWEEPS = 4
# Accept the QCP eigenvector only where the top eigenvalue is separated from the next one by at
# least ~5 % of its size (|p'(lambda)| >= 0.2 lambda^3) and Newton has converged.
_QCP_GAP = 0.2
_QCP_RESIDUAL = 1e-4
# Largest joint count for which the fused residual path unrolls the joint loop.
_FUSED_MAX_JOINTS = 64
_JACOBI_PAIRS = ((0, 1), (2, 3), (0, 2), (1, 3), (0, 3), (1, 2))
_SYM_KEYS = tuple((i, j) for i in range(4) for j in range(i, 4))


def _sum_list(values):
    out = values[0]
    for v in values[1:]:
        out = out + v
    return out


def _det3(a, b, c, d, e, f, g, h, i):
    return a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g)


def _horn_matrix(m):
    """Horn's symmetric 4x4 matrix (upper triangle) for ``m[a][b] = sum_j y_ja x_jb``."""
    # Horn (1987) writes S_ab = sum_j x_ja y_jb = m[b][a].
    sxx, sxy, sxz = m[0][0], m[1][0], m[2][0]
    syx, syy, syz = m[0][1], m[1][1], m[2][1]
    szx, szy, szz = m[0][2], m[1][2], m[2][2]
    return {
        (0, 0): sxx + syy + szz,
        (0, 1): syz - szy,
        (0, 2): szx - sxz,
        (0, 3): sxy - syx,
        (1, 1): sxx - syy - szz,
        (1, 2): sxy + syx,
        (1, 3): szx + sxz,
        (2, 2): -sxx + syy - szz,
        (2, 3): syz + szy,
        (3, 3): -sxx - syy + szz,
    }


def _quaternion_components_to_matrix(w, x, y, z):
    n = w * w + x * x + y * y + z * z
    inv = 1.0 / jnp.where(n > 0, n, 1.0)
    ww, xx, yy, zz = w * w, x * x, y * y, z * z
    one = jnp.where(n > 0, 0.0, 1.0)  # zero quaternion (not produced in practice) -> identity
    return [
        [(ww + xx - yy - zz) * inv + one, 2 * (x * y - w * z) * inv, 2 * (x * z + w * y) * inv],
        [2 * (x * y + w * z) * inv, (ww - xx + yy - zz) * inv + one, 2 * (y * z - w * x) * inv],
        [2 * (x * z - w * y) * inv, 2 * (y * z + w * x) * inv, (ww - xx - yy + zz) * inv + one],
    ]


def _jacobi_rotation_lists(m):
    """Top eigenvector of Horn's matrix by cyclic Jacobi (robust fallback); R as nested lists."""
    one, zero = jnp.ones_like(m[0][0]), jnp.zeros_like(m[0][0])
    v = [[one if i == j else zero for j in range(4)] for i in range(4)]

    def sweep(_, carry):
        values, v = carry
        a = dict(zip(_SYM_KEYS, values))
        v = [list(row) for row in v]

        def get(i, j):
            return a[(i, j) if i <= j else (j, i)]

        for p, q in _JACOBI_PAIRS:
            apq, app, aqq = get(p, q), get(p, p), get(q, q)
            d = aqq - app
            sign = jnp.where(d >= 0, 1.0, -1.0).astype(d.dtype)
            den = jnp.abs(d) + jnp.sqrt(d * d + 4.0 * apq * apq)
            ok = den > 0
            t = jnp.where(ok, 2.0 * apq * sign / jnp.where(ok, den, 1.0), 0.0)
            c = jax.lax.rsqrt(1.0 + t * t)
            s = t * c
            for r in range(4):
                if r in (p, q):
                    continue
                arp, arq = get(r, p), get(r, q)
                a[(r, p) if r < p else (p, r)] = c * arp - s * arq
                a[(r, q) if r < q else (q, r)] = s * arp + c * arq
            a[p, p] = app - t * apq
            a[q, q] = aqq + t * apq
            a[p, q] = jnp.zeros_like(apq)
            for r in range(4):
                vrp, vrq = v[r][p], v[r][q]
                v[r][p] = c * vrp - s * vrq
                v[r][q] = s * vrp + c * vrq
        return [a[k] for k in _SYM_KEYS], v

    a0 = _horn_matrix(m)
    values, v = jax.lax.fori_loop(0, _JACOBI_SWEEPS, sweep, ([a0[k] for k in _SYM_KEYS], v))
    a = dict(zip(_SYM_KEYS, values))
    best = a[0, 0]
    q = [v[r][0] for r in range(4)]
    for i in range(1, 4):
        take = a[i, i] > best
        best = jnp.where(take, a[i, i], best)
        q = [jnp.where(take, v[r][i], q[r]) for r in range(4)]
    return _quaternion_components_to_matrix(*q)


def _horn_rotation_lists(m):
    """argmax_{R in SO(3)} tr(R^T M) for ``M = m`` given as a 3x3 nested list of ``[N]`` arrays.

    The quaternion of R is the eigenvector of the largest eigenvalue of Horn's 4x4 matrix. The
    eigenvalue comes from Newton's method on the characteristic quartic started at the upper bound
    ``sqrt(3) |M|_F`` (QCP, Theobald 2005), the eigenvector from the adjugate of ``K - lambda I``.
    Where the top eigenvalue is (nearly) degenerate -- the rotation is then ill-determined and
    the adjugate loses precision -- a cyclic Jacobi eigen-solver is used instead (it runs only
    when some element of the batch needs it).
    """
    f2 = _sum_list([m[a][b] * m[a][b] for a in range(3) for b in range(3)])
    fro = jnp.sqrt(f2)
    inv = 1.0 / jnp.where(fro > 0, fro, 1.0)
    m = [[m[a][b] * inv for b in range(3)] for a in range(3)]  # |M|_F = 1 (or M = 0)
    k = _horn_matrix(m)
    kk = [[k[(i, j) if i <= j else (j, i)] for j in range(4)] for i in range(4)]
    c2 = -2.0 * jnp.where(fro > 0, 1.0, 0.0).astype(fro.dtype)
    c1 = -8.0 * _det3(*(m[a][b] for a in range(3) for b in range(3)))

    def minor2(r0, r1, i, j):
        return kk[r0][i] * kk[r1][j] - kk[r0][j] * kk[r1][i]

    c0 = (  # det K by the Laplace expansion along rows (0, 1)
        minor2(0, 1, 0, 1) * minor2(2, 3, 2, 3)
        - minor2(0, 1, 0, 2) * minor2(2, 3, 1, 3)
        + minor2(0, 1, 0, 3) * minor2(2, 3, 1, 2)
        + minor2(0, 1, 1, 2) * minor2(2, 3, 0, 3)
        - minor2(0, 1, 1, 3) * minor2(2, 3, 0, 2)
        + minor2(0, 1, 2, 3) * minor2(2, 3, 0, 1)
    )
    lam = jnp.full_like(f2, math.sqrt(3.0))
    for _ in range(_QCP_NEWTON_STEPS):
        l2 = lam * lam
        p = (l2 + c2) * l2 + c1 * lam + c0
        dp = (4.0 * l2 + 2.0 * c2) * lam + c1
        lam = lam - p / jnp.where(dp != 0, dp, 1.0)
    l2 = lam * lam
    p = (l2 + c2) * l2 + c1 * lam + c0
    dp = (4.0 * l2 + 2.0 * c2) * lam + c1
    a = [[kk[i][j] - (lam if i == j else 0.0) for j in range(4)] for i in range(4)]

    def cofactor(i, j):
        rows = [r for r in range(4) if r != i]
        cols = [c for c in range(4) if c != j]
        sign = -1.0 if (i + j) % 2 else 1.0
        return sign * _det3(*(a[r][c] for r in rows for c in cols))

    adj = [[cofactor(i, j) for j in range(4)] for i in range(4)]  # symmetric
    best = jnp.abs(adj[0][0])
    q = list(adj[0])
    for i in range(1, 4):
        take = jnp.abs(adj[i][i]) > best
        best = jnp.where(take, jnp.abs(adj[i][i]), best)
        q = [jnp.where(take, adj[i][r], q[r]) for r in range(4)]
    norm2 = _sum_list([c * c for c in q])
    bad = (
        ~(jnp.abs(dp) >= _QCP_GAP * lam * l2)
        | ~(jnp.abs(p) <= _QCP_RESIDUAL * jnp.abs(dp) * lam)
        | ~(norm2 > 0)
    )
    rot = _quaternion_components_to_matrix(*q)

    def with_fallback():
        robust = _jacobi_rotation_lists(m)
        return [[jnp.where(bad, robust[i][j], rot[i][j]) for j in range(3)] for i in range(3)]

    return jax.lax.cond(jnp.any(bad), with_fallback, lambda: rot)


def _use_horn(dtype) -> bool:
    # float64 callers (x64 tests, reference computations) keep the LAPACK SVD.
    return jnp.finfo(dtype).bits <= 32


def horn_rotation(cov: jax.Array) -> jax.Array:
    """Proper rotation maximising ``tr(R^T cov)`` (orthogonal Procrustes / Kabsch, no reflection).

    Closed form for 3x3 matrices: the quaternion of ``R`` is the eigenvector of the largest
    eigenvalue of Horn's symmetric 4x4 matrix built from ``cov`` (Horn, "Closed-form solution of
    absolute orientation using unit quaternions", JOSA A 1987, Sec. 4); the eigenvalue is found by
    Newton's method on its characteristic quartic (Theobald's QCP, Acta Cryst. A 2005) and the
    eigenvector from the adjugate of ``K - lambda I``. Near-degenerate inputs (rank <= 1, or two
    equal singular values with the reflection fix) fall back to a 4x4 Jacobi eigen-solver. The
    result equals ``U diag(1, 1, det(U V^T)) V^T`` from the SVD ``cov = U S V^T`` (the reflection
    fix of :func:`procrustes_transform`) up to float rounding wherever that is unique; it is
    several times faster than the batched SVD on CPU. float64 inputs use the SVD.

    Gradients: custom JVP (the polar-factor derivative of :func:`procrustes_transform`), finite
    on degenerate inputs.

    Args:
      cov: ``[..., 3, 3]`` cross-covariance ``sum_j w_j y_j x_j^T`` (any units).

    Returns:
      ``[..., 3, 3]`` rotation matrices (det +1) with ``y ~ R x``.
    """
    cov = _check_matrix(jnp.asarray(cov), "cov")
    cov = cov.astype(jnp.result_type(cov, jnp.float32))
    return _procrustes_rotation(cov, False)


def procrustes_residuals(
    pred: jax.Array, target: jax.Array, *, scale: bool = True, weights: jax.Array | None = None
) -> jax.Array:
    """Per-joint distances ``|s R pred_j + t - target_j|`` after the optimal similarity fit.

    The same alignment as :func:`procrustes_align` with ``reflection=False`` (Umeyama 1991,
    eqs. 40-42, rotation by :func:`horn_rotation`), computed in one fused pass without forming
    the aligned pose: the weighted sums, cross-covariance and spread of root-relative
    coordinates give ``R``, ``s`` and ``t``, then every joint's distance is evaluated directly.
    ``mean(procrustes_residuals(pred, target), -1)`` is P-MPJPE (VideoPose3D ``p_mpjpe``).

    Args:
      pred: ``[..., J, 3]`` points to align (metres).
      target: ``[..., J, 3]`` reference points (metres); batch axes broadcast with ``pred``.
      scale: similarity (True) or rigid (False) alignment.
      weights: optional ``[..., J]`` non-negative joint weights used in the fit.

    Returns:
      ``[..., J]`` distances (metres); finite values and gradients on degenerate inputs.
    """
    pred, target, w = _procrustes_inputs(pred, target, weights)
    dtype, num_joints = pred.dtype, pred.shape[-2]
    batch = jnp.broadcast_shapes(pred.shape[:-2], target.shape[:-2])
    if w is not None:
        batch = jnp.broadcast_shapes(batch, w.shape[:-1])
    if num_joints > _FUSED_MAX_JOINTS or not _use_horn(dtype):
        aligned = procrustes_align(pred, target, scale=scale, weights=w)
        return safe_norm(aligned - target, axis=-1)
    shape = (*batch, num_joints, 3)
    x = jnp.broadcast_to(pred, shape).reshape(-1, num_joints, 3)
    y = jnp.broadcast_to(target, shape).reshape(-1, num_joints, 3)
    if w is None:
        wj = [None] * num_joints
    else:
        wb = jnp.broadcast_to(w, (*batch, num_joints)).reshape(-1, num_joints)
        wj = [wb[:, j] for j in range(num_joints)]

    def wsum(fn):
        terms = [fn(j) if wj[j] is None else wj[j] * fn(j) for j in range(num_joints)]
        return _sum_list(terms)

    total = jnp.full(x.shape[:1], float(num_joints), dtype) if w is None else _sum_list(wj)
    inv_total = _safe_div(jnp.ones_like(total), total, eps=0.0)

    def fit(rescale: bool, x: jax.Array, y: jax.Array) -> tuple[jax.Array, jax.Array]:
        # Coordinates relative to joint 0 (exact shift; keeps the sums well conditioned), formed
        # inside each branch so that they stay fused (never materialised).
        xs = [[x[:, j, c] - x[:, 0, c] for c in range(3)] for j in range(num_joints)]
        ys = [[y[:, j, c] - y[:, 0, c] for c in range(3)] for j in range(num_joints)]
        fy = jnp.ones_like(total)
        if rescale:
            # Divide by each pose's largest magnitude so that no square below overflows or
            # underflows (poses at 1e19 m or 1e-20 m); the distances are scaled back at the end.
            # A similarity fit is invariant to the scale of ``pred`` (its own factor); a rigid fit
            # needs one common factor. No gradient: the distances are homogeneous in them.
            fx = _max_scale([v for row in xs for v in row])
            fy = _max_scale([v for row in ys for v in row])
            if not scale:
                fx = fy = jnp.maximum(fx, fy)
            ix, iy = 1.0 / fx, 1.0 / fy
            xs = [[v * ix for v in row] for row in xs]
            ys = [[v * iy for v in row] for row in ys]
        mx = [wsum(lambda j, c=c: xs[j][c]) * inv_total for c in range(3)]
        my = [wsum(lambda j, c=c: ys[j][c]) * inv_total for c in range(3)]
        cov = [
            [
                wsum(lambda j, a=a, b=b: ys[j][a] * xs[j][b]) * inv_total - my[a] * mx[b]
                for b in range(3)
            ]
            for a in range(3)
        ]
        var_x = wsum(lambda j: _sum_list([xs[j][c] * xs[j][c] for c in range(3)])) * inv_total
        var_x = var_x - _sum_list([mx[c] * mx[c] for c in range(3)])
        cov_arr = jnp.stack([cov[a][b] for a in range(3) for b in range(3)], axis=-1)
        rot_arr = _procrustes_rotation(cov_arr.reshape(-1, 3, 3), False).reshape(-1, 9)
        rot = [[rot_arr[:, 3 * a + b] for b in range(3)] for a in range(3)]
        if scale:
            trace = _sum_list([rot[a][b] * cov[a][b] for a in range(3) for b in range(3)])
            s = _safe_div(trace, var_x, eps=_PROCRUSTES_EPS, fill=1.0)
        else:
            s = jnp.ones_like(var_x)
        sr = [[s * rot[a][b] for b in range(3)] for a in range(3)]
        off = [my[a] - _sum_list([sr[a][b] * mx[b] for b in range(3)]) for a in range(3)]
        dist = []
        for j in range(num_joints):
            err = [
                _sum_list([sr[a][b] * xs[j][b] for b in range(3)]) + off[a] - ys[j][a]
                for a in range(3)
            ]
            sq = _sum_list([e * e for e in err])
            ok = sq > 1e-12
            dist.append(jnp.where(ok, jnp.sqrt(jnp.where(ok, sq, 1.0)), 0.0))
        spread_y = wsum(lambda j: _sum_list([ys[j][c] * ys[j][c] for c in range(3)]))
        out = jnp.stack(dist, axis=-1) * fy[:, None]
        return out, jnp.minimum(var_x, spread_y * inv_total)

    # The plain fit, and the rescaled one only where a spread (m^2) is outside float32's
    # comfortable range or a distance is not finite: one fused pass for ordinary poses.
    out, spread = fit(False, x, y)
    need = jnp.any(~jnp.isfinite(out)) | jnp.any((spread < 1e-24) | (spread > 1e24))
    out = jax.lax.cond(need, lambda o, a, b: fit(True, a, b)[0], lambda o, a, b: o, out, x, y)
    return out.reshape(*batch, num_joints)


def _max_scale(columns: list[jax.Array]) -> jax.Array:
    """``max |column|`` per example (1 where that is 0 or not finite), no gradient."""
    m = jax.lax.stop_gradient(functools.reduce(jnp.maximum, [jnp.abs(v) for v in columns]))
    return jnp.where(jnp.isfinite(m) & (m > 0), m, jnp.ones_like(m))


def fused_procrustes_supported(num_joints: int, dtype: Any) -> bool:
    """Whether :func:`procrustes_residuals` takes its fused path (overflow-safe at any scale)
    for ``num_joints`` joints of ``dtype`` on the default backend."""
    return num_joints <= _FUSED_MAX_JOINTS and _use_horn(jnp.result_type(dtype, jnp.float32))


# ----------------------------------------------------------------------- Scale normalisations


def optimal_scale(pred: jax.Array, target: jax.Array, *, eps: float = 1e-12) -> jax.Array:
    """Least-squares scale ``s = <pred, target> / <pred, pred>`` minimising ``|s pred - target|``.

    This is the scale of N-MPJPE (Rhodin et al., CVPR 2018, Sec. 4; VideoPose3D ``n_mpjpe``); the
    inputs are used as given (root-centre them first for the usual protocol).

    Args:
      pred: ``[..., J, 3]`` metres.
      target: ``[..., J, 3]`` metres.
      eps: threshold on ``<pred, pred>`` (m^2) below which the scale is 1.

    Returns:
      ``[...]`` unitless scales.
    """
    pred = _check_last(pred, 3, "pred", min_ndim=2)
    target = _check_last(target, 3, "target", min_ndim=2)
    num = jnp.sum(pred * target, axis=(-2, -1))
    den = jnp.sum(pred * pred, axis=(-2, -1))
    return _safe_div(num, den, eps=eps, fill=1.0)


def normalize_head_root(
    pose: jax.Array, *, head: int, root: int = 0, target: float = 1.0, eps: float = 1e-12
) -> jax.Array:
    """Root-centre and scale a pose so the head-root distance equals ``target``.

    Drover et al. (ECCV-W 2018, Sec. 3.1) normalise every 2D/3D pose so that the mean distance
    from the head joint to the root joint is ``1 / c`` (``c = 10``: pass ``target=0.1``). Works for
    2D (``D = 2``) and 3D poses. A zero head-root distance leaves the centred pose unscaled.

    Args:
      pose: ``[..., J, D]`` joints.
      head: head joint index.
      root: root joint index.
      target: desired head-root distance (units of the output).
      eps: squared-distance threshold for the degenerate case.

    Returns:
      ``[..., J, D]`` root-centred pose with ``|pose[head] - pose[root]| = target``.
    """
    centred = root_centre(pose, root=root)
    if not -centred.shape[-2] <= head < centred.shape[-2]:
        raise ValueError(f"head={head} out of range for {centred.shape[-2]} joints")
    dist = safe_norm(centred[..., head, :], eps=eps)
    factor = _safe_div(jnp.asarray(target, centred.dtype), dist, eps=0.0, fill=1.0)
    return centred * factor[..., None, None]


def rescale_to_reference_length(
    pose: jax.Array,
    length: jax.Array,
    reference_length: jax.Array,
    *,
    root: int | None = 0,
    eps: float = 1e-12,
) -> jax.Array:
    """Scale a pose about its root so a measured length becomes ``reference_length``.

    Used for Zhou et al. (ICCV 2017)-style rescaling to a canonical sum of bone lengths: compute
    ``length`` with ``jpose.kinematics.sum_bone_lengths`` and pass the canonical sum here.

    Args:
      pose: ``[..., J, D]`` joints.
      length: ``[...]`` current length of each pose (e.g. sum of bone lengths), units of ``pose``.
      reference_length: ``[...]`` or scalar desired length.
      root: joint kept fixed (the pose is scaled about it); ``None`` scales about the origin.
      eps: ``length`` below which the pose is returned unscaled.

    Returns:
      ``[..., J, D]`` rescaled pose.
    """
    pose = jnp.asarray(pose)
    if pose.ndim < 2:
        raise ValueError(f"pose must have shape [..., J, D], got {pose.shape}")
    factor = _safe_div(
        jnp.asarray(reference_length, pose.dtype),
        jnp.asarray(length, pose.dtype),
        eps=eps,
        fill=1.0,
    )
    if root is None:
        return pose * factor[..., None, None]
    origin = pose[..., root : root + 1, :]
    return origin + (pose - origin) * factor[..., None, None]
