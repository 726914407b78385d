"""Li et al. (AAAI 2020): self-supervised 2D-to-3D lifting from synchronised views.

    python -m experiments.li --workdir=/tmp/li [--config=experiments/configs/li.py:<preset>]

No 3D pose reaches a training loss. A training example is one *instant* seen by V synchronised
views: per view the normalised 2D joints ``pose2d [V, J, 2]``, their confidences (1 where the
source has none), the intrinsics in the units of the 2D (``focal``, ``center``) and world ->
camera extrinsics (``rotation``, ``translation``) -- :data:`TRAIN_KEYS`, nothing else. The 3D
poses of the data set are used only to *create 2D inputs* of the extra virtual cameras (and to
evaluate).

Method:

* lifting branch (residual MLP, 4 blocks) -> root-relative 3D ``Y`` per view; root branch (same
  architecture, separate weights) -> root ``r``; global pose ``Y~ = Y + r`` (camera frame);
* stage ``pretrain``: eq. 6 (:func:`jpose.losses.li_pretrain_loss`) over all view pairs;
* stage ``train``: ``L_T = L_reproj + lambda L_t-reproj`` (eqs. 2, 5, 7) over all view pairs with
  the relative transforms of eq. 4 (:func:`jpose.multiview.pair_transforms`);
* virtual-camera augmentation: ``multiview.num_virtual_views`` cameras per instant sampled like
  a Human3.6M rig around the subject (:func:`jpose.data.virtual_cameras.sample_cameras`);
* uncalibrated variant: the extrinsics of the real views are replaced by relative poses w.r.t.
  view 0 estimated from the 2D joints (:func:`jpose.multiview.estimate_relative_pose`, pooled over
  all instants of a static rig), scaled by the given baseline. Virtual cameras are constructed
  relative to view 0 and keep their exact poses.
* evaluation: the lifting branch only, single view, P1 / P2 (+ N-MPJPE) per action
  (:func:`experiments.jeval.evaluate_3d`); :func:`load_predictor` (or
  ``jpose.inference.load_predictor(DIR)``) restores the same lifter (and the root branch).

Losses use normalised 2D (``data.normalization``, VideoPose3D by default) with the intrinsics
converted to the same units (:func:`experiments.common.normalized_intrinsics`), so eq. 2 / 5 are in
squared normalised units (1 unit = half the image width) instead of pixels^2.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from experiments import common
from jpose import augment, inference, skeleton
from jpose import evaluation as jeval
from jpose import losses as jl
from jpose import multiview as mv
from jpose.data import PoseDataset
from jpose.data.common import normalize_2d
from jpose.evaluation import apply_fn
from jpose.models import Model, li_lifter, li_root_branch
from jpose.training import Phase, clipped, create_player, create_train_state
from jpose.training import stages as harness
from jpose.training.schedules import schedule_from_config
from jpose.training.state import TrainState

__all__ = [
    "TRAIN_KEYS",
    "MultiViewSet",
    "load_li_datasets",
    "build_multiview_set",
    "estimate_rig_extrinsics",
    "estimator_report",
    "forward_global",
    "pretrain_loss_fn",
    "train_loss_fn",
    "build_state",
    "STAGES",
    "build_models",
    "load_predictor",
    "run",
]

TRAIN_KEYS = ("pose2d", "confidence", "focal", "center", "rotation", "translation")
"""The only fields of a training batch (``[B, V, ...]``): 2D, confidences and cameras."""

ROOT = skeleton.H36M17.root
LOGGER = common.LOGGER
STAGES = ("pretrain", "train")
"""Training stages (``checkpoints/<stage>``), in order (``pretrain`` only when enabled)."""


# ------------------------------------------------------------------------------------------------
# Data
# ------------------------------------------------------------------------------------------------


def load_li_datasets(cfg: ml_collections.ConfigDict) -> dict[str, PoseDataset]:
    """:func:`experiments.common.load_datasets`, except for CMU with one static virtual rig per
    sequence (``data.cmu_cameras_per = "sequence"``), which the shared loader does not expose."""
    if cfg.preset == "cmu" and cfg.cmu_cameras_per == "sequence":
        from jpose.data import cmu as jcmu
        from jpose.data.presets import shared_data_dir

        folder = cfg.data_dir or shared_data_dir()
        if folder is None:
            raise FileNotFoundError("the cmu preset needs ../shared/data (cmu_mocap_h36m17.npz)")
        mocap = jcmu.load_cmu_mocap(f"{folder}/cmu_mocap_h36m17.npz")
        kw = {
            "subsample": int(cfg.cmu_subsample),
            "num_cameras": int(cfg.cmu_num_cameras),
            "cameras_per": "sequence",
        }
        seed = int(cfg.seed)
        actions = [a.strip() for a in cfg.cmu_actions_3d.split(",") if a.strip()]
        out = {
            "train_3d": jcmu.cmu_pose_pairs(mocap, split="train", seed=seed,
                                            actions=actions or None, **kw),
            "test": jcmu.cmu_pose_pairs(mocap, split="test", seed=seed + 1,
                                        exclude_actions=actions, **kw),
        }  # fmt: skip
        limits = cfg.get("max_examples") or {}
        for i, (name, ds) in enumerate(sorted(out.items())):
            out[name] = common.subset(ds, int(limits.get(name, 0) or 0), seed=seed + 101 + i)
        return out
    return common.load_datasets(cfg)


@dataclasses.dataclass
class MultiViewSet:
    """Training groups of synchronised views.

    Attributes:
      arrays: ``{key: [M, V, ...]}`` float32 for the keys of :data:`TRAIN_KEYS` (no 3D).
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


def _virtual_camera_config(vc: ml_collections.ConfigDict) -> Any:
    from jpose.data.virtual_cameras import VirtualCameraConfig

    return VirtualCameraConfig(
        distance_range=tuple(vc.distance_range),
        height_range=tuple(vc.height_range),
        azimuth_range=tuple(vc.azimuth_range),
        elevation_range=tuple(vc.elevation_range),
        focal_range=tuple(vc.focal_range),
        image_size=tuple(int(s) for s in vc.image_size),
    )


def _virtual_views(
    ds: PoseDataset, first: np.ndarray, *, num: int, vc: ml_collections.ConfigDict, seed: int
) -> dict[str, np.ndarray]:
    """2D inputs (and cameras) of ``num`` virtual cameras per instant; the 3D is only projected."""
    from jpose.data.virtual_cameras import project_world, sample_cameras

    if ds.pose3d_cam is None or ds.rotation is None:
        raise ValueError(f"{ds.name}: virtual cameras need 3D poses and extrinsics to project")
    r0, t0 = ds.rotation[first].astype(np.float64), ds.translation[first].astype(np.float64)
    world = np.einsum("mji,mkj->mki", r0, ds.pose3d_cam[first] - t0[:, None])  # R^T (X - t)
    m = len(first)
    world_rep = np.repeat(world, num, axis=0)
    cams = sample_cameras(
        np.random.default_rng(seed), world_rep[:, ROOT], config=_virtual_camera_config(vc)
    )
    _, uv = project_world(world_rep, cams)
    size = np.asarray(cams.image_size, np.float32)
    virt = PoseDataset(
        name=f"{ds.name}/virtual",
        confidence=np.ones(uv.shape[:-1], np.float32),
        pose2d_px=uv,
        pose2d_norm=normalize_2d(uv, mode=ds.normalization, image_size=size),
        focal_px=np.asarray(cams.focal, np.float32),
        center_px=np.asarray(cams.center, np.float32),
        image_size_px=size,
        rotation=np.asarray(cams.rotation, np.float32),
        translation=np.asarray(cams.translation, np.float32),
        normalization=ds.normalization,
    )  # no pose3d_cam: the virtual views carry 2D only
    return _view_arrays(virt, np.arange(m * num).reshape(m, num))


def _view_arrays(ds: PoseDataset, groups: np.ndarray) -> dict[str, np.ndarray]:
    focal, center = common.normalized_intrinsics(ds)
    out = {
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
    return out


def build_multiview_set(
    ds: PoseDataset,
    *,
    views: Sequence[Any] = (),
    group_keys: Sequence[str],
    rig_keys: Sequence[str] = (),
    num_virtual_views: int = 0,
    virtual_cameras: ml_collections.ConfigDict | None = None,
    extrinsics: str = "calibrated",
    uncalibrated: ml_collections.ConfigDict | None = None,
    seed: int = 0,
) -> MultiViewSet:
    """Group a data set into synchronised views (+ virtual views, + estimated extrinsics).

    Args:
      ds: a split with 2D, confidences, intrinsics and extrinsics (3D only for virtual views).
      views: camera labels of the real views (default: all in the split, sorted).
      group_keys: labels identifying an instant (:func:`jpose.data.common.view_groups`).
      rig_keys: labels identifying a static rig (correspondences pooled by the estimator).
      num_virtual_views: extra virtual cameras per instant.
      virtual_cameras: their sampling ranges (config ``multiview.virtual_cameras``).
      extrinsics: ``"calibrated"`` or ``"uncalibrated"``.
      uncalibrated: estimator options (config ``multiview.uncalibrated``).
      seed: seed of the virtual cameras and of RANSAC.

    Returns:
      :class:`MultiViewSet`.
    """
    from jpose.data.common import view_groups

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
        parts.append(
            _virtual_views(ds, groups[:, 0], num=num_virtual_views, vc=virtual_cameras, seed=seed)
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
            arrays, rig, num_real_views=len(views), options=uncalibrated, seed=seed
        )
        arrays["rotation"][:, 1 : len(views)] = est_r
        arrays["translation"][:, 1 : len(views)] = est_t
        out.estimator_errors = errors
    out.arrays = {k: np.asarray(arrays[k], np.float32) for k in TRAIN_KEYS}
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
    options: ml_collections.ConfigDict,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, dict[str, dict[str, float]]]:
    """Uncalibrated extrinsics of real views 1..V-1 w.r.t. view 0, per static rig.

    All joints (confidence > 0 in both views) of all instants of a rig are pooled (at most
    ``options.max_correspondences``, a seeded random subset) and passed to
    :func:`jpose.multiview.estimate_relative_pose` in fixed-size padded chunks (one
    compilation). The translation direction is scaled by the calibrated baseline (given scale).

    Args:
      arrays: the view arrays of :func:`build_multiview_set` (pixels in ``_pose2d_px``,
        intrinsics ``_focal_px`` / ``_center_px``; extrinsics relative to view 0).
      rig: ``[M]`` rig id of each instant.
      num_real_views: V_real.
      options: ``multiview.uncalibrated``.
      seed: RANSAC / subset seed.

    Returns:
      ``(R [M, V_real - 1, 3, 3], t [M, V_real - 1, 3], errors)`` with ``errors[view] =
      {"rotation_deg", "direction_deg"}`` (median over rigs, against the calibration).
    """
    if arrays.get("_pose2d_px") is None:
        raise ValueError("the uncalibrated variant needs pixel 2D (pose2d_px)")
    px, conf = arrays["_pose2d_px"].astype(np.float64), arrays["confidence"]
    k = _intrinsics(arrays["_focal_px"].astype(np.float64), arrays["_center_px"].astype(np.float64))
    r_true = np.asarray(arrays["rotation"], np.float64)
    t_true = np.asarray(arrays["translation"], np.float64)
    rigs = np.unique(rig)
    cap = int(options.max_correspondences)
    rng = np.random.default_rng(seed)
    jm = px.shape[2]
    sizes = [min(cap, int((rig == g).sum()) * jm) for g in rigs]
    n_max = max(max(sizes), 8)
    chunk = min(int(options.chunk), len(rigs))
    est_fn = _jitted_estimator(int(options.num_hypotheses), float(options.threshold_px))
    est_r = np.zeros((len(rig), num_real_views - 1, 3, 3), np.float32)
    est_t = np.zeros((len(rig), num_real_views - 1, 3), np.float32)
    errors: dict[str, dict[str, float]] = {}
    key = jax.random.key(seed)
    for v in range(1, num_real_views):
        pa = np.zeros((len(rigs), n_max, 2))
        pb = np.zeros((len(rigs), n_max, 2))
        mask = np.zeros((len(rigs), n_max))
        ka = np.zeros((len(rigs), 3, 3))
        kb = np.zeros((len(rigs), 3, 3))
        base = np.zeros(len(rigs))
        first = []
        for i, g in enumerate(rigs):
            inst = np.nonzero(rig == g)[0]
            first.append(inst[0])
            a, b = px[inst, 0].reshape(-1, 2), px[inst, v].reshape(-1, 2)
            ok = ((conf[inst, 0] > 0) & (conf[inst, v] > 0)).reshape(-1)
            idx = np.nonzero(ok)[0]
            if len(idx) > cap:
                idx = np.sort(rng.choice(idx, cap, replace=False))
            pa[i, : len(idx)], pb[i, : len(idx)], mask[i, : len(idx)] = a[idx], b[idx], 1.0
            ka[i], kb[i] = k[inst[0], 0], k[inst[0], v]
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
            f = np.asarray(first)
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
    from jpose.data.virtual_cameras import VirtualCameraConfig, sample_cameras

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


# ------------------------------------------------------------------------------------------------
# Model and losses
# ------------------------------------------------------------------------------------------------


def forward_global(ctx: Any, pose2d: jax.Array, *, root_depth_offset: float = 0.0) -> jax.Array:
    """Global 3D per view ``Y~ = Y + r`` (lifting branch made root-relative + root branch).

    Args:
      ctx: the phase context (players ``lifter`` and ``root``).
      pose2d: ``[B, V, J, 2]`` normalised 2D.
      root_depth_offset: metres added to the root branch's depth output (``r_z = out_z +
        offset``), so a freshly initialised root branch (outputs ~ 0) starts in front of the
        camera instead of at the depth clamp (an implementation choice, not in the paper).

    Returns:
      ``[B, V, J, 3]`` metres, each view's camera frame.
    """
    rel = ctx.apply("lifter", pose2d)
    rel = rel - rel[..., ROOT : ROOT + 1, :]
    root = ctx.apply("root", pose2d) + jnp.asarray([0.0, 0.0, root_depth_offset], pose2d.dtype)
    return rel + root[..., None, :]


def _pairs_of(batch: Mapping[str, jax.Array]) -> np.ndarray:
    return mv.view_pairs(batch["pose2d"].shape[-3])


def _stack_pairs(x: jax.Array, pairs: np.ndarray) -> jax.Array:
    """``[B, V, ...] -> [B, P, 2, ...]``."""
    return jnp.stack([x[:, pairs[:, 0]], x[:, pairs[:, 1]]], axis=2)


def pretrain_loss_fn(
    ctx: Any, batch: Mapping[str, Any], *, root_depth_offset: float = 0.0
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Eq. 6 averaged over the batch and all view pairs (metres^2 per pair)."""
    b = batch["mv"]
    _check_batch(b)
    glob = forward_global(ctx, b["pose2d"], root_depth_offset=root_depth_offset)
    pairs = _pairs_of(b)
    r_ab, t_ab = mv.pair_transforms(b["rotation"], b["translation"], pairs=pairs)
    loss = jnp.mean(jl.li_pretrain_loss(_stack_pairs(glob, pairs), rotation=r_ab, translation=t_ab))
    return loss, {"eq6": loss, "root_depth": jnp.mean(glob[..., ROOT, 2])}


def train_loss_fn(
    ctx: Any,
    batch: Mapping[str, Any],
    *,
    transform_weight: float,
    confidence_view: str = "source",
    root_depth_offset: float = 0.0,
    detection_noise: Mapping[str, float] | None = None,
    confidence_weighting: bool = True,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Eq. 7 ``L_reproj + lambda L_t-reproj`` (eqs. 2, 5), averaged over batch and view pairs.

    Args:
      ctx: the phase context.
      batch: ``{"mv": {TRAIN_KEYS: [B, V, ...]}}``.
      transform_weight: lambda of eq. 7.
      confidence_view: eq. 5's weights (``jpose.losses.li_transform_reprojection_loss``).
      root_depth_offset: added to the root branch's depth (metres).
      detection_noise: options of :func:`jpose.augment.detection_noise` (None = GT 2D): every
        view's 2D becomes a simulated detection with confidences (fresh each step), used as the
        lifter input, the re-projection target and the weights w of eqs. 2 and 5.
      confidence_weighting: False = the ablation without the w of eqs. 2 and 5 (every present
        joint weighted 1).
    """
    b = dict(batch["mv"])
    _check_batch(b)
    if detection_noise is not None:
        b["pose2d"], b["confidence"] = augment.detection_noise(
            ctx.key_for("detection_noise"), b["pose2d"], b["confidence"], **detection_noise
        )
    if not confidence_weighting:
        b["confidence"] = (b["confidence"] > 0).astype(b["pose2d"].dtype)
    glob = forward_global(ctx, b["pose2d"], root_depth_offset=root_depth_offset)
    pairs = _pairs_of(b)
    per_view = jl.li_reprojection_loss(
        glob, b["pose2d"], b["confidence"], focal=b["focal"], center=b["center"]
    )  # [B, V]
    reproj = jnp.mean(per_view[:, pairs[:, 0]] + per_view[:, pairs[:, 1]])  # eq. 2 per pair
    r_ab, t_ab = mv.pair_transforms(b["rotation"], b["translation"], pairs=pairs)
    trans = jnp.mean(
        jl.li_transform_reprojection_loss(
            _stack_pairs(glob, pairs),
            _stack_pairs(b["pose2d"], pairs),
            _stack_pairs(b["confidence"], pairs),
            rotation=r_ab,
            translation=t_ab,
            focal=_stack_pairs(b["focal"], pairs),
            center=_stack_pairs(b["center"], pairs),
            confidence_view=confidence_view,
        )
    )
    loss = jl.li_total_loss(reproj, trans, weight=transform_weight)
    present = b["confidence"] > 0
    mean_conf = jnp.sum(jnp.where(present, b["confidence"], 0.0)) / jnp.maximum(jnp.sum(present), 1)
    return loss, {"reproj": reproj, "t_reproj": trans, "root_depth": jnp.mean(glob[..., ROOT, 2]),
                  "mean_confidence": mean_conf}  # fmt: skip


def noise_options(config: ml_collections.ConfigDict) -> dict[str, float] | None:
    """Keyword options of :func:`jpose.augment.detection_noise` from ``config.noise`` (None when
    disabled: ground-truth 2D with its own confidences)."""
    n = config.noise
    if not n.enabled:
        return None
    return {k: float(n[k]) for k in augment.DETECTION_NOISE_OPTIONS}


def _check_batch(b: Mapping[str, Any]) -> None:
    extra = set(b) - set(TRAIN_KEYS)
    if extra:  # static (trace-time) guard: nothing but 2D and cameras reaches a loss
        raise ValueError(f"training batch has fields {sorted(extra)} beyond {TRAIN_KEYS}")


def build_models(
    config: ml_collections.ConfigDict, *, num_joints: int = skeleton.H36M17.num_joints
) -> dict[str, Model]:
    """``{"lifter": lifting branch, "root": root branch}`` of ``config.model`` (no parameters,
    no data needed; see :func:`_branches`)."""
    lifter, root = _branches(config.model, num_joints)
    return {"lifter": lifter, "root": root}


def _lift(apply: Any, pose2d: jax.Array, confidence: jax.Array) -> jax.Array:
    """The evaluated 3D: the lifting branch's output made root-relative (2D only: Li et al.)."""
    del confidence
    rel = apply(pose2d)
    return rel - rel[..., ROOT : ROOT + 1, :]


def load_predictor(
    config: Mapping[str, Any], workdir: str | os.PathLike[str], *, step: int | None = None
) -> inference.Predictor:
    """The trained branches of a Li et al. work directory.

    ``predict(pose2d_norm, confidence)`` returns ``pose3d``: the lifting branch's output made
    root-relative (pelvis at the origin; metres, camera frame), exactly the single-view 3D that
    ``run`` evaluates; and ``translation`` ``[B, 3]``: the root branch's root position (metres,
    camera frame, ``model.root_depth_offset_m`` added to its depth as in training), so that
    ``pose3d + translation[:, None]`` is the global pose of the training losses. Confidences are
    not used (the branches see 2D only). Restored from the last stage with checkpoints
    (``train``, else ``pretrain``).

    Args:
      config: the run's config (``common.read_config``).
      workdir: the work directory.
      step: checkpoint step of the last trained stage (default its latest).

    Returns:
      :class:`jpose.inference.Predictor` (``has_camera=False``: no intrinsics).
    """
    config = ml_collections.ConfigDict(config)  # config.json as read by jpose.inference
    info = inference.read_model_info(workdir)
    layout = skeleton.get_layout(str(info.get("layout") or skeleton.H36M17.name))
    models = build_models(config, num_joints=layout.num_joints)
    variables, steps = inference.restore_variables(workdir, STAGES, ["lifter", "root"], step=step)
    offset = jnp.asarray([0.0, 0.0, float(config.model.root_depth_offset_m)], jnp.float32)

    @jax.jit
    def branches(variables: Mapping[str, Any], x: jax.Array, c: jax.Array) -> dict[str, jax.Array]:
        def apply(name: str) -> Any:
            return lambda inp: models[name].apply(variables[name], inp, train=False)[0]

        return {"pose3d": _lift(apply("lifter"), x, c), "translation": apply("root")(x) + offset}

    return inference.Predictor(
        experiment="li",
        predict=lambda x, c: branches(variables, x, c),
        normalization=info.get("normalization") or common.data_normalization(config.data),
        checkpoint=steps,
        config=config,
        layout=layout.name,
        description="Li et al. (AAAI 2020) lifting branch, self-supervised from multi-view 2D",
    )


@dataclasses.dataclass(frozen=True, eq=False)
class _ScaledOutput(Model):
    """A model whose output is multiplied by ``output_scale`` (same parameters as ``module``)."""

    output_scale: float = 1.0

    def apply(
        self,
        variables: dict[str, Any],
        *inputs: Any,
        train: bool,
        key: jax.Array | None = None,
        axis_name: str | None = None,
    ) -> tuple[Any, Any]:
        """:meth:`Model.apply`, output times ``output_scale``."""
        out, stats = super().apply(variables, *inputs, train=train, key=key, axis_name=axis_name)
        return out * self.output_scale, stats


def output_scale(width: int, scale: float = 0.0, *, reference_width: int = 128) -> float:
    """The metre-valued branches' output multiplier: ``scale``, or when 0 ``min(1,
    reference_width / width)``.

    Adam moves every output weight by about ``lr`` on its first steps whatever the gradient's
    size (global-norm clipping before Adam does not change that), so a zero-initialised output
    layer over ``width`` hidden units moves the metre-valued output by about
    ``lr * width * mean|h|``: ~0.1 m at width 128 but ~1 m at the paper's 1024 (doubled by
    dropout 0.5's rescaling), which throws joints behind the camera, where eqs. 2 / 5 explode at
    the depth clamp. Multiplying the output by ``reference_width / width`` (a readout multiplier,
    as in maximal-update parametrisations) keeps the per-step output change of the CPU-tested
    width at every width. Not in Li et al. (AAAI 2020), who do not state their output units.
    """
    return float(scale) if float(scale) > 0 else min(1.0, reference_width / max(int(width), 1))


def _branches(mcfg: ml_collections.ConfigDict, num_joints: int) -> tuple[Model, Model]:
    """Lifting and root branches (Li et al.: residual MLP, 4 blocks, separate weights).

    ``zero_init_output`` (not in the paper) starts the lifter at the collapsed pose and the root
    at ``(0, 0, root_depth_offset_m)``: with the default initialisation the metre-valued outputs
    are several metres, joints land behind the camera and eqs. 2 / 5 explode at the depth clamp.
    ``output_scale`` (:func:`output_scale`; 1 at width 128) keeps Adam's first steps of the
    outputs width-independent.
    """
    width, dropout = int(mcfg.width), float(mcfg.dropout)
    zero = bool(mcfg.get("zero_init_output", False))
    lifter = li_lifter(num_joints, width=width, dropout=dropout, zero_init_output=zero)
    root = li_root_branch(width=int(mcfg.root_width), dropout=dropout, zero_init_output=zero)
    scales = [output_scale(w, float(mcfg.get("output_scale", 0.0) or 0.0))
              for w in (width, int(mcfg.root_width))]  # fmt: skip
    lifter, root = (
        m if s == 1.0 else _ScaledOutput(m.module, m.name, output_scale=s)
        for m, s in zip((lifter, root), scales)
    )
    return lifter, root


def build_state(
    config: ml_collections.ConfigDict,
    example: jax.Array,
    *,
    key: jax.Array,
    stage: ml_collections.ConfigDict,
    steps_per_epoch: int,
    num_steps: int,
    previous: TrainState | None = None,
) -> TrainState:
    """Players ``lifter`` and ``root`` with a fresh Adam for ``stage`` (parameters of the
    previous stage's state when given).

    The stage's epoch-based learning-rate boundaries are rescaled to its step budget when
    ``stage.steps > 0`` (CPU presets), so "x0.1 at 1/3 and 2/3 of training" is kept.
    """
    sched_cfg = dict(stage)
    if int(stage.steps) > 0 and stage.boundaries:
        epochs = float(stage.epochs)
        sched_cfg["boundaries"] = tuple(float(b) / epochs * num_steps for b in stage.boundaries)
        spe = 1
    else:
        spe = steps_per_epoch
    sched = schedule_from_config(sched_cfg, steps_per_epoch=spe)
    warmup = int(stage.warmup_steps)
    if warmup > 0:  # linear warm-up of each stage's fresh Adam (see the config's comment)
        base = sched
        sched = lambda step: base(step) * jnp.minimum(1.0, (step + 1.0) / warmup)  # noqa: E731
    tx = clipped(optax.adam(sched), config.train.clip_norm)
    lifter, root = _branches(config.model, example.shape[-2])
    k1, k2 = jax.random.split(key)
    players = {"lifter": create_player(lifter, tx, k1, example),
               "root": create_player(root, tx, k2, example)}  # fmt: skip
    if previous is not None:
        for name, p in players.items():
            prev = previous.players[name]
            players[name] = p.replace(
                params=prev.params, batch_stats=prev.batch_stats, opt_state=tx.init(prev.params)
            )
    return create_train_state(players)


# ------------------------------------------------------------------------------------------------
# Entry point
# ------------------------------------------------------------------------------------------------


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Train (pre-train + train), evaluate and report; resumable. Returns the results record."""
    t_start = time.perf_counter()
    wd = common.setup_workdir(workdir, config)
    datasets = load_li_datasets(config.data)
    train_ds = datasets["train_3d"]
    common.write_model_info(
        wd, experiment="li", layout=train_ds.layout, normalization=train_ds.normalization,
        root_depth_offset_m=float(config.model.root_depth_offset_m),
    )  # fmt: skip
    mcfg = config.multiview
    t0 = time.perf_counter()
    mvset = build_multiview_set(
        train_ds,
        views=tuple(config.data.views),
        group_keys=tuple(config.data.group_keys),
        rig_keys=tuple(config.data.rig_keys),
        num_virtual_views=int(mcfg.num_virtual_views),
        virtual_cameras=mcfg.virtual_cameras,
        extrinsics=mcfg.extrinsics,
        uncalibrated=mcfg.uncalibrated,
        seed=int(config.seed),
    )
    prep_s = time.perf_counter() - t0
    del datasets["train_3d"]  # nothing below may touch the training 3D
    m, v = mvset.num_instants, mvset.num_views
    options = common.train_options(config.train)
    bs = min(int(config.train.batch_size), m)
    bs -= bs % options.num_devices
    steps_per_epoch = max(1, m // bs)
    example = jnp.asarray(mvset.arrays["pose2d"][:2])
    base_key = jax.random.key(int(config.seed))
    offset_m = float(config.model.root_depth_offset_m)
    sc = config.stages
    losses_of = {
        "pretrain": functools.partial(pretrain_loss_fn, root_depth_offset=offset_m),
        "train": functools.partial(
            train_loss_fn,
            transform_weight=float(sc.train.transform_weight),
            confidence_view=str(sc.train.confidence_view),
            root_depth_offset=offset_m,
            detection_noise=noise_options(config),
            confidence_weighting=bool(sc.train.confidence_weighting),
        ),
    }

    def declare(index: int, name: str) -> harness.Stage:
        scfg = sc[name]
        num_steps = common.stage_num_steps(scfg, steps_per_epoch=steps_per_epoch,
                                           steps_per_block=options.steps_per_block)  # fmt: skip
        skey = jax.random.fold_in(base_key, index)
        init = lambda done: build_state(  # noqa: E731 - continues from the previous stage
            config, example, key=jax.random.fold_in(skey, 1), stage=scfg,
            steps_per_epoch=steps_per_epoch, num_steps=num_steps,
            previous=next(reversed(done.values()), None),
        )  # fmt: skip
        return harness.Stage(name, phases=[Phase(name, ("lifter", "root"), losses_of[name])],
                             num_steps=num_steps, batch_sizes={"mv": bs}, init=init,
                             key=skey)  # fmt: skip

    names = ["pretrain", "train"] if sc.pretrain.enabled else ["train"]
    trained = harness.run_stages([declare(i, n) for i, n in enumerate(names)],
                                 {"mv": mvset.arrays}, workdir=wd, options=options)  # fmt: skip
    state, results_stages = trained.state, trained.summary()
    checkpoint = {n: r["steps"] for n, r in results_stages.items()}

    lifter = state.players["lifter"]
    predict_3d = apply_fn(lifter.model, lifter.variables(), _lift)  # = load_predictor's pose3d

    evaluations = {}
    for split in common.eval_splits(datasets, str(config.eval.splits)):
        evaluations[split] = jeval.evaluate_3d(
            predict_3d, datasets[split], batch_size=int(config.eval.batch_size),
            action_key=str(config.eval.action_key), keep_predictions=bool(config.figures),
        )  # fmt: skip
    tables: dict[str, dict[str, dict[str, float]]] = {}
    if mvset.estimator_errors:
        tables["Uncalibrated extrinsics vs calibration (training rigs, degrees)"] = (
            mvset.estimator_errors
        )
    if config.eval.estimator_report:
        u = mcfg.uncalibrated
        tables["Relative-pose estimator on synthetic rigs (degrees)"] = estimator_report(
            noise_levels_px=tuple(u.noise_levels_px), outlier_fraction=float(u.outlier_fraction),
            trials=int(u.report_trials), num_hypotheses=int(u.num_hypotheses),
            threshold_px=float(u.threshold_px), seed=int(config.seed),
        )  # fmt: skip
    opts = {
        "views": f"{mvset.num_real_views} real + {v - mvset.num_real_views} virtual",
        "pairs": len(mv.view_pairs(v)),
        "instants": m,
        "extrinsics": mcfg.extrinsics,
        "lambda": float(config.stages.train.transform_weight),
        "pretrain": bool(config.stages.pretrain.enabled),
        "width": int(config.model.width),
        "batch_instants": bs,
        "detection_noise": noise_options(config) or "off (GT 2D)",
        "confidence_weighting": bool(config.stages.train.confidence_weighting),
    }
    header = common.ResultsHeader(
        experiment=f"Li et al. AAAI 2020 (experiments.li, preset {config.preset})",
        dataset=f"{train_ds.name}: 2D of synchronised views + cameras only (no 3D labels)",
        source_2d=f"{train_ds.name} 2D ({train_ds.normalization}); virtual views: projections",
        protocol="lifting branch only, single view; P1 MPJPE, P2 P-MPJPE (mm, root-relative)",
        options=opts,
        checkpoint=checkpoint,
        model_selection="last checkpoint of each stage (no selection on the test split)",
        notes=list(config.notes),
    )
    figures: list[str] = []
    if config.figures:
        from jpose import viz

        figs: dict[str, Any] = {"training_curves": lambda: common.training_curves_figure(wd)}
        for split, e in evaluations.items():
            figs[f"poses_3d_{split}"] = functools.partial(
                viz.figure_poses_3d, e["predictions"][:4],
                datasets[split].pose3d_root_relative[:4], errors_mm=e["errors_mm"]["mpjpe"][:4],
                title=f"{split}: lifting branch",
            )  # fmt: skip
        figures = common.write_figures(wd, figs)
    extra = {
        "stages": results_stages,
        "timings_s": {"data_prep": prep_s, "total": time.perf_counter() - t_start},
        "figures": figures,
    }
    common.write_results(wd, header=header, evaluations=evaluations, extra_tables=tables,
                         extra=extra)  # fmt: skip
    summary = {
        s: {mm: e["metrics"][mm]["action_wise"] for mm in ("mpjpe", "p_mpjpe")}
        for s, e in evaluations.items()
    }
    LOGGER.info("results: %s", summary)
    return {"evaluations": evaluations, "tables": tables, **extra}


if __name__ == "__main__":
    common.cli(run, default_config=common.config_path("li"))
