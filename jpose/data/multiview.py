"""Training groups of synchronised views for multi-view self-supervision (Li et al., AAAI 2020):
a split grouped into instants seen by several cameras, extra virtual cameras that see only the
projected 2D, and extrinsics estimated from the 2D alone (the "uncalibrated" variant) with
:func:`jpose.multiview.estimate_relative_pose` per static rig.

Everything here is host-side numpy around jitted estimators; the arrays it returns carry 2D,
confidences and cameras only (:data:`VIEW_FIELDS`), never 3D.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np

from jpose import multiview as mv
from jpose import skeleton
from jpose.data.common import PoseDataset, camera_dataset, normalized_intrinsics, view_groups
from jpose.data.virtual_cameras import VirtualCameraConfig, project_world, sample_cameras

__all__ = [
    "VIEW_FIELDS",
    "MultiViewSet",
    "RigEstimator",
    "build_multiview_set",
    "estimate_rig_extrinsics",
    "estimator_report",
]

LOGGER = logging.getLogger("jpose.data")
_ROOT = skeleton.H36M17.root

VIEW_FIELDS = ("pose2d", "confidence", "focal", "center", "rotation", "translation")
"""The fields of a multi-view training group (``[M, V, ...]``): 2D, confidences and cameras."""


@dataclasses.dataclass(frozen=True)
class RigEstimator:
    """Options of the uncalibrated extrinsics estimate (:func:`estimate_rig_extrinsics`).

    Attributes:
      num_hypotheses: RANSAC minimal samples.
      threshold_px: Sampson-distance inlier threshold, pixels.
      max_correspondences: pooled joints per rig and view pair (a seeded random subset).
      chunk: rig problems per compiled call.
    """

    num_hypotheses: int = 256
    threshold_px: float = 3.0
    max_correspondences: int = 4096
    chunk: int = 64


@dataclasses.dataclass
class MultiViewSet:
    """Training groups of synchronised views.

    Attributes:
      arrays: ``{key: [M, V, ...]}`` float32 for the keys of :data:`VIEW_FIELDS` (no 3D).
      num_real_views: the first ``num_real_views`` views are the data set's cameras, the rest
        virtual.
      true_extrinsics: ``(rotation [M, V, 3, 3], translation [M, V, 3])`` of the calibration in
        the same reference frame as ``arrays`` (for the uncalibrated-estimate report; not used
        in training).
      estimator_errors: per-view rotation / translation-direction errors (degrees) of the
        uncalibrated estimate, or ``{}``.
    """

    arrays: dict[str, np.ndarray]
    num_real_views: int
    true_extrinsics: tuple[np.ndarray, np.ndarray]
    estimator_errors: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)

    @property
    def num_instants(self) -> int:
        """M."""
        return int(self.arrays["pose2d"].shape[0])

    @property
    def num_views(self) -> int:
        """V (real + virtual)."""
        return int(self.arrays["pose2d"].shape[1])


def _virtual_views(
    ds: PoseDataset, first: np.ndarray, *, num: int, cameras: VirtualCameraConfig, seed: int
) -> dict[str, np.ndarray]:
    """2D inputs (and cameras) of ``num`` virtual cameras per instant; the 3D is only projected."""
    if ds.pose3d_cam is None or ds.rotation is None:
        raise ValueError(f"{ds.name}: virtual cameras need 3D poses and extrinsics to project")
    r0, t0 = ds.rotation[first].astype(np.float64), ds.translation[first].astype(np.float64)
    world = np.einsum("mji,mkj->mki", r0, ds.pose3d_cam[first] - t0[:, None])  # R^T (X - t)
    m = len(first)
    world_rep = np.repeat(world, num, axis=0)
    cams = sample_cameras(np.random.default_rng(seed), world_rep[:, _ROOT], config=cameras)
    _, uv = project_world(world_rep, cams)
    # no pose3d_cam: the virtual views carry 2D only
    virt = camera_dataset(f"{ds.name}/virtual", uv, cams, normalization=ds.normalization)
    return _view_arrays(virt, np.arange(m * num).reshape(m, num))


def _view_arrays(ds: PoseDataset, groups: np.ndarray) -> dict[str, np.ndarray]:
    focal, center = normalized_intrinsics(ds)
    return {
        "pose2d": ds.pose2d_norm[groups],
        "confidence": ds.confidence[groups],
        "focal": focal[groups],
        "center": center[groups],
        "rotation": ds.rotation[groups],
        "translation": ds.translation[groups],
        "_pose2d_px": ds.pose2d_px[groups] if ds.pose2d_px is not None else None,
        "_focal_px": ds.focal_px[groups],
        "_center_px": ds.center_px[groups],
    }


def build_multiview_set(
    ds: PoseDataset,
    *,
    views: Sequence[Any] = (),
    group_keys: Sequence[str],
    rig_keys: Sequence[str] = (),
    num_virtual_views: int = 0,
    virtual_cameras: VirtualCameraConfig | None = None,
    extrinsics: str = "calibrated",
    estimator: RigEstimator | None = None,
    seed: int = 0,
) -> MultiViewSet:
    """Group a data set into synchronised views (+ virtual views, + estimated extrinsics).

    Args:
      ds: a split with 2D, confidences, intrinsics and extrinsics (3D only for virtual views).
      views: camera labels of the real views (default: all in the split, sorted).
      group_keys: labels identifying an instant (:func:`jpose.data.common.view_groups`).
      rig_keys: labels identifying a static rig (correspondences pooled by the estimator).
      num_virtual_views: extra virtual cameras per instant.
      virtual_cameras: their sampling ranges (default :class:`VirtualCameraConfig()`).
      extrinsics: ``"calibrated"`` or ``"uncalibrated"``.
      estimator: options of the uncalibrated estimate (default :class:`RigEstimator()`).
      seed: seed of the virtual cameras and of RANSAC.

    Returns:
      :class:`MultiViewSet`.
    """
    if extrinsics not in ("calibrated", "uncalibrated"):
        raise ValueError(f"extrinsics must be calibrated|uncalibrated, got {extrinsics!r}")
    if ds.rotation is None or ds.focal_px is None:
        raise ValueError(f"{ds.name}: multi-view training needs intrinsics and extrinsics")
    if not views:
        views = sorted(np.unique(ds.labels["camera"]).tolist())
    groups = view_groups(ds, views=list(views), keys=tuple(group_keys))
    if len(groups) == 0:
        raise ValueError(f"{ds.name}: no instant is seen by all views {list(views)}")
    LOGGER.info("%s: %d instants x %d views", ds.name, len(groups), len(views))
    parts = [_view_arrays(ds, groups)]
    if num_virtual_views > 0:
        cams = virtual_cameras or VirtualCameraConfig()
        parts.append(
            _virtual_views(ds, groups[:, 0], num=num_virtual_views, cameras=cams, seed=seed)
        )
    arrays = {
        k: None if any(p[k] is None for p in parts) else np.concatenate([p[k] for p in parts], 1)
        for k in parts[0]
    }
    # Li et al.: the first camera is the centre of the coordinate system (R_1 = I, t_1 = 0).
    r_ref, t_ref = mv.reference_frame_extrinsics(
        np.asarray(arrays["rotation"], np.float64),
        np.asarray(arrays["translation"], np.float64),
    )
    r_ref, t_ref = np.asarray(r_ref), np.asarray(t_ref)
    arrays["rotation"], arrays["translation"] = r_ref.astype(np.float32), t_ref.astype(np.float32)
    out = MultiViewSet(arrays={}, num_real_views=len(views), true_extrinsics=(r_ref, t_ref))
    if extrinsics == "uncalibrated":
        rig = np.zeros(len(groups), np.int64)
        if rig_keys:
            cols = [np.asarray(ds.labels[k]).astype(str)[groups[:, 0]] for k in rig_keys]
            _, rig = np.unique(np.array(["|".join(t) for t in zip(*cols)]), return_inverse=True)
        est_r, est_t, errors = estimate_rig_extrinsics(
            arrays,
            rig,
            num_real_views=len(views),
            estimator=estimator or RigEstimator(),
            seed=seed,
        )
        arrays["rotation"][:, 1 : len(views)] = est_r
        arrays["translation"][:, 1 : len(views)] = est_t
        out.estimator_errors = errors
    out.arrays = {k: np.asarray(arrays[k], np.float32) for k in VIEW_FIELDS}
    return out


@functools.lru_cache(maxsize=8)
def _jitted_estimator(num_hypotheses: int, threshold_px: float) -> Any:
    return jax.jit(
        functools.partial(
            mv.estimate_relative_pose, num_hypotheses=num_hypotheses, threshold_px=threshold_px
        )
    )


def _intrinsics(focal: np.ndarray, center: np.ndarray) -> np.ndarray:
    k = np.zeros(focal.shape[:-1] + (3, 3))
    k[..., 0, 0], k[..., 1, 1] = focal[..., 0], focal[..., 1]
    k[..., :2, 2], k[..., 2, 2] = center, 1.0
    return k


def estimate_rig_extrinsics(
    arrays: Mapping[str, np.ndarray],
    rig: np.ndarray,
    *,
    num_real_views: int,
    estimator: RigEstimator,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, dict[str, dict[str, float]]]:
    """Uncalibrated extrinsics of real views 1..V-1 w.r.t. view 0, per static rig.

    All joints (confidence > 0 in both views) of all instants of a rig are pooled (at most
    ``estimator.max_correspondences``, a seeded random subset) and passed to
    :func:`jpose.multiview.estimate_relative_pose` in fixed-size padded chunks (one
    compilation). The translation direction is scaled by the calibrated baseline (given scale).

    Args:
      arrays: the view arrays of :func:`build_multiview_set` (pixels in ``_pose2d_px``,
        intrinsics ``_focal_px`` / ``_center_px``; extrinsics relative to view 0).
      rig: ``[M]`` rig id of each instant.
      num_real_views: V_real.
      estimator: :class:`RigEstimator` options.
      seed: RANSAC / subset seed.

    Returns:
      ``(R [M, V_real - 1, 3, 3], t [M, V_real - 1, 3], errors)`` with ``errors[view] =
      {"rotation_deg", "direction_deg", "rigs", "correspondences"}`` (median errors over rigs
      against the calibration, the number of rigs, the median correspondences per rig).
    """
    if arrays.get("_pose2d_px") is None:
        raise ValueError("the uncalibrated variant needs pixel 2D (pose2d_px)")
    px, conf = arrays["_pose2d_px"].astype(np.float64), arrays["confidence"]
    k = _intrinsics(arrays["_focal_px"].astype(np.float64), arrays["_center_px"].astype(np.float64))
    r_true = np.asarray(arrays["rotation"], np.float64)
    t_true = np.asarray(arrays["translation"], np.float64)
    rigs = np.unique(rig)
    cap = int(estimator.max_correspondences)
    rng = np.random.default_rng(seed)
    jm = px.shape[2]
    sizes = [min(cap, int((rig == g).sum()) * jm) for g in rigs]
    n_max = max(max(sizes), 8)
    chunk = min(int(estimator.chunk), len(rigs))
    est_fn = _jitted_estimator(int(estimator.num_hypotheses), float(estimator.threshold_px))
    est_r = np.zeros((len(rig), num_real_views - 1, 3, 3), np.float32)
    est_t = np.zeros((len(rig), num_real_views - 1, 3), np.float32)
    errors: dict[str, dict[str, float]] = {}
    key = jax.random.key(seed)
    insts = [np.nonzero(rig == g)[0] for g in rigs]
    f = np.array([inst[0] for inst in insts])  # first instant of each rig
    for v in range(1, num_real_views):
        pa = np.zeros((len(rigs), n_max, 2))
        pb = np.zeros((len(rigs), n_max, 2))
        mask = np.zeros((len(rigs), n_max))
        ka, kb = k[f, 0], k[f, v]
        base = np.zeros(len(rigs))
        for i, inst in enumerate(insts):
            a, b = px[inst, 0].reshape(-1, 2), px[inst, v].reshape(-1, 2)
            ok = ((conf[inst, 0] > 0) & (conf[inst, v] > 0)).reshape(-1)
            idx = np.nonzero(ok)[0]
            if len(idx) > cap:
                idx = np.sort(rng.choice(idx, cap, replace=False))
            pa[i, : len(idx)], pb[i, : len(idx)], mask[i, : len(idx)] = a[idx], b[idx], 1.0
            base[i] = np.linalg.norm(t_true[inst[0], v])  # ||C_v - C_0|| (given scale)
        rots, trans = [], []
        with jax.enable_x64(True):
            for lo in range(0, len(rigs), chunk):
                sl = slice(lo, lo + chunk)
                pad = chunk - len(pa[sl])

                def cut(x, pad=pad, sl=sl):
                    x = x[sl]
                    return np.concatenate([x, np.repeat(x[-1:], pad, 0)]) if pad else x

                res = est_fn(
                    cut(pa), cut(pb), cut(mask), intrinsics_a=cut(ka), intrinsics_b=cut(kb),
                    key=jax.random.fold_in(jax.random.fold_in(key, v), lo), baseline=cut(base),
                )  # fmt: skip
                rots.append(np.asarray(res.rotation)[: chunk - pad])
                trans.append(np.asarray(res.translation)[: chunk - pad])
            rots, trans = np.concatenate(rots), np.concatenate(trans)
            r_err = np.degrees(np.asarray(mv.rotation_angle_error(rots, r_true[f, v])))
            d_err = np.degrees(np.asarray(mv.direction_angle_error(trans, t_true[f, v])))
        errors[f"view{v}"] = {
            "rotation_deg": float(np.median(r_err)),
            "direction_deg": float(np.median(d_err)),
            "rigs": float(len(rigs)),
            "correspondences": float(np.median(sizes)),
        }
        LOGGER.info(
            "uncalibrated view 0->%d: %d rigs, median rotation error %.3f deg, direction %.3f deg",
            v, len(rigs), errors[f"view{v}"]["rotation_deg"], errors[f"view{v}"]["direction_deg"],
        )  # fmt: skip
        lookup = {g: i for i, g in enumerate(rigs)}
        rows = np.array([lookup[g] for g in rig])
        est_r[:, v - 1], est_t[:, v - 1] = rots[rows], trans[rows]
    return est_r, est_t, errors


def estimator_report(
    *,
    noise_levels_px: Sequence[float],
    outlier_fraction: float,
    trials: int,
    num_frames: int = 20,
    num_hypotheses: int = 256,
    threshold_px: float = 3.0,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Accuracy of the uncalibrated estimator on synthetic rigs vs 2D noise and outliers.

    Each trial: a random person-sized point cloud of ``num_frames x 17`` joints (random body
    poses spread over a 2 m x 2 m floor area) seen by two Human3.6M-like cameras 4-6 m away at
    random azimuths; Gaussian pixel noise of std ``sigma`` on both views; with outliers a
    fraction of view b's points is replaced by uniform random pixels.

    Returns:
      ``{"sigma=<s>px[, outliers]": {"rotation_deg (median)", "direction_deg (median)",
      "rotation_deg (90%)", "direction_deg (90%)"}}``.
    """
    rng = np.random.default_rng(seed)
    est_fn = _jitted_estimator(int(num_hypotheses), float(threshold_px))
    table: dict[str, dict[str, float]] = {}
    j = 17
    # body-like clouds: joints within +-0.3 m horizontally, 0..1.8 m high, per-frame offsets
    clouds = rng.uniform([-0.3, -0.3, 0.0], [0.3, 0.3, 1.8], (trials, num_frames, j, 3))
    clouds += np.concatenate([rng.uniform(-1, 1, (trials, num_frames, 1, 2)),
                              np.zeros((trials, num_frames, 1, 1))], -1)  # fmt: skip
    pts = clouds.reshape(trials, -1, 3)
    cams = sample_cameras(
        rng, np.repeat(np.array([[0.0, 0.0, 1.0]]), 2 * trials, 0), config=VirtualCameraConfig()
    )
    r = np.asarray(cams.rotation, np.float64).reshape(trials, 2, 3, 3)
    t = np.asarray(cams.translation, np.float64).reshape(trials, 2, 3)
    f = np.asarray(cams.focal, np.float64).reshape(trials, 2, 2)
    c = np.asarray(cams.center, np.float64).reshape(trials, 2, 2)
    with jax.enable_x64(True):
        _, uv = mv.project_views(pts, rotation=r, translation=t, focal=f, center=c)
        uv = np.asarray(uv)
        r_ab, t_ab = mv.pair_transforms(r, t, pairs=np.array([[0, 1]]))
        r_ab, t_ab = np.asarray(r_ab)[:, 0], np.asarray(t_ab)[:, 0]
        k = _intrinsics(f, c)
        for outliers in (False, True):
            for sigma in noise_levels_px:
                noisy = uv + rng.normal(0.0, sigma, uv.shape) if sigma > 0 else uv.copy()
                if outliers:
                    n_out = int(round(outlier_fraction * noisy.shape[2]))
                    for i in range(trials):
                        sel = rng.choice(noisy.shape[2], n_out, replace=False)
                        noisy[i, 1, sel] = rng.uniform(0, 1000, (n_out, 2))
                res = est_fn(
                    noisy[:, 0], noisy[:, 1], intrinsics_a=k[:, 0], intrinsics_b=k[:, 1],
                    key=jax.random.key(seed), baseline=np.linalg.norm(t_ab, axis=-1),
                )  # fmt: skip
                re = np.degrees(np.asarray(mv.rotation_angle_error(res.rotation, r_ab)))
                de = np.degrees(np.asarray(mv.direction_angle_error(res.translation, t_ab)))
                name = f"sigma={sigma:g}px" + (f", {outlier_fraction:.0%} outliers" if outliers
                                               else "")  # fmt: skip
                table[name] = {
                    "rotation_deg (median)": float(np.median(re)),
                    "rotation_deg (90%)": float(np.percentile(re, 90)),
                    "direction_deg (median)": float(np.median(de)),
                    "direction_deg (90%)": float(np.percentile(de, 90)),
                }
    return table
