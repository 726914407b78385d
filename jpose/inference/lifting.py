"""Lifting detections with a :class:`~jpose.inference.Predictor`: normalisation, validity,
absolute 3D, temporal smoothing and output files (conventions in :mod:`jpose.inference`).
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import time
import warnings
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np

from jpose import bvh, skeleton
from jpose.camera import solve_root_translation
from jpose.data import denormalize_2d, normalize_2d
from jpose.data.wild2d import tight_boxes
from jpose.evaluation import batched_apply, to_jsonable
from jpose.inference.keypoints import KeypointInput
from jpose.inference.predictor import Predictor

__all__ = [
    "MAX_POSE_M",
    "MIN_JOINTS",
    "lift",
    "person_validity",
    "tracks_for_smoothing",
    "smooth_poses",
    "write_output",
    "write_bvh_files",
]


UNITS = "metres"
CAMERA_FRAME = "camera (x right, y down, z forward)"

# Plausibility bounds of one person's 2D (``person_validity``) and 3D (``lift``): outside them
# a person is flagged instead of lifted (issue 22: never a confident answer from garbage).
MIN_JOINTS = 8  # default --min_joints: joints (pipeline layout) with confidence > 0
MIN_IMAGE_SIDE_PX = 16.0  # an image side below this is not a camera image in pixels
MAX_IMAGE_SIDE_PX = 100_000.0
MAX_COORD_PX = 100_000.0  # |x|, |y| of a confident joint
MIN_EXTENT_PX = 2.0  # the confident joints span at least this many pixels on one axis
MAX_POSE_M = 10.0  # a lifted joint this far from the root is not a human pose
MAX_TRANSLATION_M = 10_000.0


# ------------------------------------------------------------------------------------------------
# Smoothing
# ------------------------------------------------------------------------------------------------


def _frame_numbers(image_id: np.ndarray) -> np.ndarray:
    if image_id.dtype.kind in "iuf":
        return image_id.astype(np.float64)
    _, rank = np.unique(image_id, return_inverse=True)  # string ids: their sorted order
    return rank.astype(np.float64)


def _crowded_frame(image_id: np.ndarray) -> tuple[Any, int] | None:
    """``(image_id, count)`` of the most crowded frame when a frame has several people."""
    ids, counts = np.unique(image_id, return_counts=True)
    if not np.any(counts > 1):
        return None
    k = int(np.argmax(counts))
    return ids[k], int(counts[k])


def tracks_for_smoothing(image_id: np.ndarray, track_id: np.ndarray | None) -> np.ndarray:
    """Track of each detection: ``track_id``, or one track when each frame has one person.

    Raises:
      ValueError: several people in a frame without ``track_id``, or a track with two detections
        in one frame.
    """
    if track_id is None:
        crowded = _crowded_frame(image_id)
        if crowded:
            raise ValueError(
                f"temporal smoothing needs a track_id per detection: image_id {crowded[0]} has "
                f"{crowded[1]} people (without track ids only one person per frame is allowed)"
            )
        return np.zeros(len(image_id), np.int64)
    tracks = np.unique(track_id, return_inverse=True)[1].astype(np.int64)
    pairs = np.stack([tracks, _frame_numbers(image_id)], -1)
    counts = np.unique(pairs, axis=0, return_counts=True)[1]
    if np.any(counts > 1):
        raise ValueError(
            f"temporal smoothing: a track has {counts.max()} detections in one frame (track and "
            "frame must identify one detection)"
        )
    return tracks


def smooth_poses(
    values: np.ndarray,
    image_id: np.ndarray,
    track_id: np.ndarray | None,
    *,
    sigma: float,
) -> np.ndarray:
    """Gaussian smoothing along frames, per track (NaN-aware, edge-normalised).

    Within a track, detections are sorted by frame number (``image_id``; string ids by their
    sorted order) and each value is replaced by the average of the track's values within
    ``4 sigma`` frames, weighted by ``exp(-(frame difference)^2 / (2 sigma^2))`` (gaps in the
    frame numbers count); weights are renormalised at the ends and around NaNs, so a constant
    sequence is unchanged.

    Args:
      values: ``[N, ...]`` per-detection values (e.g. ``[N, J, 3]`` poses).
      image_id: ``[N]`` frame numbers / ids.
      track_id: ``[N]`` track ids, or ``None`` (then every frame must hold one detection).
      sigma: standard deviation in frames; ``<= 0`` returns a copy.

    Returns:
      ``[N, ...]`` smoothed values in the input order.
    """
    values = np.asarray(values, np.float64)
    if sigma <= 0:
        return values.copy()
    tracks = tracks_for_smoothing(np.asarray(image_id), track_id)
    frames = _frame_numbers(np.asarray(image_id))
    out = np.empty_like(values)
    radius = int(np.ceil(4.0 * sigma))
    for t in np.unique(tracks):
        idx = np.nonzero(tracks == t)[0]
        idx = idx[np.argsort(frames[idx], kind="stable")]
        f, v = frames[idx], values[idx]
        finite = np.isfinite(v)
        v0 = np.where(finite, v, 0.0)
        acc, wsum = np.zeros_like(v0), np.zeros_like(v0)
        m = len(idx)
        for k in range(-min(radius, m - 1), min(radius, m - 1) + 1):
            lo, hi = max(0, -k), min(m, m - k)  # i in [lo, hi) has neighbour i + k
            w = np.exp(-np.square(f[lo + k : hi + k] - f[lo:hi]) / (2.0 * sigma**2))
            w = w.reshape((-1,) + (1,) * (v.ndim - 1)) * finite[lo + k : hi + k]
            acc[lo:hi] += w * v0[lo + k : hi + k]
            wsum[lo:hi] += w
        with np.errstate(invalid="ignore", divide="ignore"):
            out[idx] = np.where(wsum > 0, acc / wsum, np.nan)
    return out


# ------------------------------------------------------------------------------------------------
# Lifting
# ------------------------------------------------------------------------------------------------


def _intrinsics(
    intrinsics_px: Mapping[str, Any], n: int, size: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    if "focal" not in intrinsics_px or intrinsics_px["focal"] is None:
        raise ValueError("known intrinsics need 'focal' (fx, fy) pixels (--focal fx,fy)")
    focal = np.broadcast_to(np.asarray(intrinsics_px["focal"], np.float64), (n, 2))
    center = intrinsics_px.get("center")
    if center is None:
        if size is None or np.any(size <= 0):
            raise ValueError(
                "known intrinsics without a principal point (--center cx,cy) use the image "
                "centre, but image sizes are missing; pass --center or image sizes"
            )
        center = size.astype(np.float64) / 2.0
    center = np.broadcast_to(np.asarray(center, np.float64), (n, 2))
    if not (np.all(np.isfinite(focal)) and np.all(focal > 0) and np.all(np.isfinite(center))):
        raise ValueError("intrinsics must be finite with positive focal lengths (pixels)")
    return focal, center


def lift(
    predictor: Predictor,
    inp: KeypointInput,
    *,
    intrinsics_px: Mapping[str, Any] | None = None,
    smooth_sigma: float = 0.0,
    batch_size: int = 1024,
    min_score: float = 0.0,
    min_joints: int = MIN_JOINTS,
) -> dict[str, Any]:
    """Lift 2D detections to camera-frame 3D with a trained pipeline.

    People whose 2D fails :func:`person_validity` or whose lifted 3D is implausible (a joint
    more than ``MAX_POSE_M`` from the root, a root translation beyond ``MAX_TRANSLATION_M``,
    non-finite values) are never returned as a pose (Validity in :mod:`jpose.inference`).

    Args:
      predictor: :class:`~jpose.inference.Predictor` (:func:`~jpose.inference.load_predictor`).
      inp: :func:`load_keypoints` output.
      intrinsics_px: known intrinsics ``{"focal": (fx, fy), "center": (cx, cy)}`` in pixels
        (each ``[2]`` or ``[N, 2]``; ``center`` defaults to the image centre): enables
        ``pose3d_absolute`` by least squares (module docstring).
      smooth_sigma: Gaussian smoothing of the 3D outputs along frames (per track), in frames;
        0 = off.
      batch_size: fixed batch size of the network (the last batch is padded: one compilation).
      min_score: joints with a score below this get confidence 0 (missing).
      min_joints: fewest joints (pipeline layout) with confidence > 0 for a person to be lifted.

    Returns:
      The result dict written by :func:`write_output` (fields: "Output file" in
      :mod:`jpose.inference`).

    Raises:
      ValueError: empty input, missing image sizes for a ``vp`` / ``image`` pipeline, no
        converter from the input layout, bad intrinsics, smoothing without track ids, bad
        options, a single person that cannot be lifted or a batch without any.
    """
    n = len(inp)
    if n == 0:
        raise ValueError(f"{inp.source}: empty input: no detections")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not (np.isfinite(min_score) and np.isfinite(smooth_sigma) and smooth_sigma >= 0):
        raise ValueError(f"min_score and smooth_sigma must be finite, smooth_sigma >= 0; got "
                         f"{min_score}, {smooth_sigma}")  # fmt: skip
    if smooth_sigma > 0:  # fail before running the network
        tracks_for_smoothing(inp.image_id, inp.track_id)
    out_layout = skeleton.get_layout(predictor.layout)
    mode = predictor.normalization
    size = inp.image_size_px
    if mode in ("vp", "image"):  # normalised by the image size
        missing = np.ones(n, bool) if size is None else ~(size > 0).all(-1)
        if missing.any():
            ids = ", ".join(str(v) for v in np.unique(inp.image_id[missing])[:5])
            raise ValueError(
                f"{inp.source}: this pipeline ({predictor.experiment}) was trained on "
                f"{mode!r}-normalised 2D, which needs each image's size, but {int(missing.sum())} "
                f"of {n} detections have none (image ids {ids}...); pass --image_size W,H, "
                "--image_sizes '{image_id: [w, h]}' or --annotations COCO.json"
            )
    scores = np.clip(inp.scores.astype(np.float32), 0.0, 1.0)
    if min_score > 0:
        scores = np.where(scores >= min_score, scores, 0.0).astype(np.float32)
    kp = inp.keypoints_px.astype(np.float32)
    bad = ~np.isfinite(kp).all(-1) & (scores > 0)
    if bad.any():
        raise ValueError(
            f"{inp.source}: non-finite keypoints at {int(bad.sum())} joints with a "
            "positive score; mark missing joints with score 0"
        )
    kp = np.where(np.isfinite(kp), kp, 0.0)  # missing joints: a NaN would spread through sums
    src = skeleton.get_layout(inp.layout)
    pts, conf = skeleton.convert_layout(kp, scores, source=src, target=out_layout)
    pts, conf = pts.astype(np.float32), conf.astype(np.float32)
    if not 1 <= int(min_joints) <= out_layout.num_joints:
        raise ValueError(f"min_joints must be in 1..{out_layout.num_joints}, got {min_joints}")
    reasons = person_validity(kp, scores, conf, image_size_px=size, min_joints=int(min_joints))
    _refuse_if_none_valid(reasons, inp.source)
    bbox, box_note = None, ""
    if mode == "bbox":  # a missing or empty given box (max side <= 0): the joints' tight box
        bbox = tight_boxes(kp, scores > 0)
        if inp.bbox_px is not None:
            given = np.asarray(inp.bbox_px, np.float32)
            usable = np.isfinite(given).all(-1) & (given[:, 2:].max(-1) > 0)
            bbox = np.where(usable[:, None], given, bbox)
            replaced = int((~usable & (reasons == "")).sum())  # flagged people are not lifted
            if replaced:
                people = f"{replaced} detection" + ("s" if replaced > 1 else "")
                box_note = (f"{people} without a usable box (missing, empty or non-finite): "
                            "normalised by the tight box of the joints")  # fmt: skip
    with np.errstate(all="ignore"):  # flagged people may overflow; they are zeroed below
        norm = normalize_2d(pts, mode=mode, image_size=size, bbox=bbox)
    keep = (conf[..., None] > 0) & (reasons == "")[:, None, None] & np.isfinite(norm)
    norm = np.where(keep, norm, 0.0).astype(np.float32)  # as jpose.data.wild2d

    # warm-up (compiles one batch shape), then the timed pass over every batch
    bs = max(1, min(int(batch_size), n))
    arrays = [norm, conf]
    if predictor.takes_frame_scale:  # the camera branch's aspect-preserving frame
        scale = np.ones((n, 2), np.float32)
        if mode == "image":
            with np.errstate(all="ignore"):  # flagged people may have no usable size
                scale[:, 1] = np.where(reasons == "", size[:, 1] / size[:, 0], 1.0)
        arrays.append(scale)
    t0 = time.perf_counter()
    jax.block_until_ready(
        batched_apply(predictor.predict, *(a[:bs] for a in arrays), batch_size=bs)
    )
    warmup_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    pred = batched_apply(predictor.predict, *arrays, batch_size=bs)
    predict_s = time.perf_counter() - t0
    root = out_layout.root
    pose_rel = np.asarray(pred["pose3d"], np.float64)
    pose_rel = pose_rel - pose_rel[:, root : root + 1]
    with np.errstate(invalid="ignore"):
        reach = np.abs(pose_rel).max(axis=(1, 2))
    plausible = np.isfinite(pose_rel).all(axis=(1, 2)) & (reach <= MAX_POSE_M)
    implausible = (reasons == "") & ~plausible
    for i in np.nonzero(implausible)[0]:
        reasons[i] = f"implausible 3D output: a joint {reach[i]:.3g} m from the root"

    result: dict[str, Any] = {
        "joint_names": list(out_layout.joint_names),
        "layout": out_layout.name,
        "input_layout": src.name,
        "image_id": inp.image_id,
        "track_id": inp.track_id,
        "score": (inp.person_score if inp.person_score is not None else scores.mean(-1)),
        "joint_scores": conf,
        "keypoints_px": pts,
        "units": UNITS,
        "frame": CAMERA_FRAME,
        "normalization": mode,
        "metric_scale": bool(predictor.metric_scale),
        "experiment": predictor.experiment,
        "description": predictor.description,
        "checkpoint": dict(predictor.checkpoint),
        "input_file": inp.source,
        "absolute_source": None,
        "smooth_sigma": float(smooth_sigma),
        "warnings": [box_note] if box_note else [],
        "unfinished": predictor.unfinished,
    }
    if predictor.unfinished:
        result["warnings"].append(
            f"UNFINISHED training run (--allow_unfinished): {predictor.unfinished}"
        )
    translation = None
    if predictor.has_camera and "focal" in pred and "center" in pred:
        # u_norm = a u_px + b per axis: f_px = f_norm / a, c_px = denormalize(c_norm)
        kw = {"mode": mode, "image_size": size, "bbox": bbox}
        with np.errstate(all="ignore"):  # flagged people's sizes may overflow (blanked below)
            zero = denormalize_2d(np.zeros((n, 1, 2), np.float32), **kw)[:, 0]
            one = denormalize_2d(np.ones((n, 1, 2), np.float32), **kw)[:, 0]
            result["focal_px"] = np.asarray(pred["focal"], np.float64) * (one - zero)
            center_norm = np.asarray(pred["center"], np.float32)[:, None]
            result["center_px"] = denormalize_2d(center_norm, **kw)[:, 0]
    if intrinsics_px is not None:
        focal, center = _intrinsics(intrinsics_px, n, size)
        translation = solve_root_translation(pose_rel, pts, conf, focal=focal, center=center)
        result["absolute_source"] = "known_intrinsics"
        result["intrinsics_px"] = {"focal": focal, "center": center}
        if predictor.has_camera and "translation" in pred:  # kept for comparison
            result["translation_camera_branch"] = np.asarray(pred["translation"], np.float32)
        bad = int(((~np.isfinite(translation).all(-1)) & (reasons == "")).sum())
        if bad:
            result["warnings"].append(
                f"{bad} detections have fewer than 2 joints with confidence > 0: no translation "
                "(NaN)"
            )
    elif predictor.has_camera and "translation" in pred:
        translation = np.asarray(pred["translation"], np.float64)
        result["absolute_source"] = "camera_branch"
    if translation is not None:
        with np.errstate(invalid="ignore"):
            far = np.abs(translation).max(-1)
        far_away = (reasons == "") & np.isfinite(far) & (far > MAX_TRANSLATION_M)
        for i in np.nonzero(far_away)[0]:
            reasons[i] = f"implausible 3D output: root {far[i]:.3g} m from the camera"
        result["translation"] = translation
        result["pose3d_absolute"] = pose_rel + translation[:, None, :]
    result["pose3d_root_relative"] = pose_rel
    _refuse_if_none_valid(reasons, inp.source)
    _blank_invalid(result, reasons)
    if not predictor.metric_scale:
        result["warnings"].append(
            f"{predictor.experiment}: this pipeline predicts 3D only up to scale (metric_scale "
            "False); 'metres' are not metric"
        )
    if smooth_sigma > 0:
        for key in ("pose3d_root_relative", "pose3d_absolute", "translation"):
            if key in result:
                result[key] = smooth_poses(
                    result[key], inp.image_id, inp.track_id, sigma=smooth_sigma
                )
    _blank_invalid(result, reasons)  # smoothing fills gaps from neighbours: blank them again
    for key in ("pose3d_root_relative", "pose3d_absolute", "translation",
                "translation_camera_branch", "focal_px", "center_px"):  # fmt: skip
        if key in result:
            result[key] = np.asarray(result[key], np.float32)
    result["valid"] = reasons == ""
    result["invalid_reason"] = reasons.astype(str)
    if not result["valid"].all():
        result["warnings"].append(_invalid_summary(reasons))
    result["timing"] = {
        "num_people": n,
        "batch_size": bs,
        "num_batches": -(-n // bs),
        "warmup_s": warmup_s,
        "predict_s": predict_s,
        "seconds_per_person": predict_s / n,
        "device": str(jax.devices()[0].platform),
        "note": "network time after a warm-up call (compilation excluded)",
    }
    return result


def person_validity(
    keypoints_px: np.ndarray,
    scores: np.ndarray,
    confidence: np.ndarray,
    *,
    image_size_px: np.ndarray | None,
    min_joints: int = MIN_JOINTS,
) -> np.ndarray:
    """Why each person's 2D cannot be lifted (``""`` where it can).

    A person is invalid with fewer than ``min_joints`` joints of confidence > 0 in the
    pipeline's layout, an image side outside ``[MIN_IMAGE_SIDE_PX, MAX_IMAGE_SIDE_PX]``, a
    confident joint with ``|x|`` or ``|y|`` above ``MAX_COORD_PX`` or more than one image size
    outside the image, or confident joints spanning less than ``MIN_EXTENT_PX`` on both axes
    (every joint on one pixel). The first failing rule is reported.

    Args:
      keypoints_px: ``[N, J_in, 2]`` input pixels (finite).
      scores: ``[N, J_in]`` joint scores after ``min_score`` (0 = missing).
      confidence: ``[N, J]`` confidences in the pipeline's layout.
      image_size_px: ``[N, 2]`` (width, height), -1 where unknown; or ``None``.
      min_joints: fewest confident joints (pipeline layout).

    Returns:
      ``[N]`` object array of reasons.
    """
    n = len(keypoints_px)
    reasons = np.full(n, "", dtype=object)

    def flag(mask: np.ndarray, text: Any) -> None:
        for i in np.nonzero(mask & (reasons == ""))[0]:
            reasons[i] = text(i)

    count = (np.asarray(confidence) > 0).sum(-1)
    flag(count < min_joints,
         lambda i: f"{count[i]} joints with confidence > 0, fewer than {min_joints} "
                   "(--min_joints / --min_score)")  # fmt: skip
    kp = np.asarray(keypoints_px, np.float64)
    on = np.asarray(scores) > 0
    if image_size_px is not None:
        size = np.asarray(image_size_px, np.float64)
        known = (size > 0).all(-1)
        odd = known & ((size < MIN_IMAGE_SIDE_PX) | (size > MAX_IMAGE_SIDE_PX)).any(-1)
        flag(odd, lambda i: f"implausible image size {size[i, 0]:.4g} x {size[i, 1]:.4g} px "
                            f"(sides {MIN_IMAGE_SIDE_PX:g}..{MAX_IMAGE_SIDE_PX:g} px)")  # fmt: skip
    reach = np.where(on, np.abs(kp).max(-1), 0.0).max(-1)
    flag(reach > MAX_COORD_PX,
         lambda i: f"keypoint coordinates up to {reach[i]:.3g} px (beyond {MAX_COORD_PX:g} px: "
                   "not pixels?)")  # fmt: skip
    if image_size_px is not None:
        lo, hi = -size[:, None, :], 2.0 * size[:, None, :]
        outside = known & (on[..., None] & ((kp < lo) | (kp > hi))).any(axis=(1, 2))
        flag(outside, lambda i: f"keypoints far outside the {size[i, 0]:.4g} x {size[i, 1]:.4g} "
                                "px image (coordinates or image size in other units?)")  # fmt: skip
    with np.errstate(invalid="ignore"):
        extent = (np.where(on[..., None], kp, -np.inf).max(1)
                  - np.where(on[..., None], kp, np.inf).min(1)).max(-1)  # fmt: skip
    flag(extent < MIN_EXTENT_PX,
         lambda i: f"degenerate 2D: the confident joints span {max(extent[i], 0.0):.3g} px "
                   f"(< {MIN_EXTENT_PX:g} px)")  # fmt: skip
    return reasons


def _invalid_summary(reasons: np.ndarray) -> str:
    bad = np.nonzero(reasons != "")[0]
    first = ", ".join(str(i) for i in bad[:5]) + (", ..." if len(bad) > 5 else "")
    return (
        f"{len(bad)} of {len(reasons)} people cannot be lifted and are returned as NaN with "
        f"valid=False (indices {first}); first reason: {reasons[bad[0]]}"
    )


def _refuse_if_none_valid(reasons: np.ndarray, source: str) -> None:
    if (reasons == "").any():
        return
    if len(reasons) == 1:
        raise ValueError(f"{source}: the person cannot be lifted: {reasons[0]}")
    raise ValueError(
        f"{source}: none of the {len(reasons)} people can be lifted; person 0: {reasons[0]}"
    )


def _blank_invalid(result: dict[str, Any], reasons: np.ndarray) -> None:
    bad = reasons != ""
    if not bad.any():
        return
    for key in ("pose3d_root_relative", "pose3d_absolute", "translation",
                "translation_camera_branch", "focal_px", "center_px"):  # fmt: skip
        if result.get(key) is not None:
            value = np.array(result[key], np.float64)
            value[bad] = np.nan
            result[key] = value


# ------------------------------------------------------------------------------------------------
# Output
# ------------------------------------------------------------------------------------------------

_ARRAY_KEYS = (
    "pose3d_root_relative",
    "pose3d_absolute",
    "translation",
    "translation_camera_branch",
    "focal_px",
    "center_px",
    "keypoints_px",
    "joint_scores",
    "score",
    "image_id",
    "track_id",
    "valid",
    "invalid_reason",
)


def write_output(
    result: Mapping[str, Any],
    path: str | os.PathLike,
    *,
    fps: float = 30.0,
    messages: list[str] | None = None,
) -> pathlib.Path:
    """Write a :func:`lift` result as ``.npz`` (arrays + JSON string ``meta``), ``.json`` or
    ``.bvh`` (:func:`write_bvh_files`).

    Args:
      result: :func:`lift` output.
      path: output file; the suffix picks the format.
      fps: frames per second of a ``.bvh`` (its ``Frame Time`` is ``1 / fps``).
      messages: ``.bvh`` only: notes on the export (bone-length variation) are appended here;
        ``None``: they are issued with :func:`warnings.warn`.

    Returns:
      The path written; for a ``.bvh`` with several tracks, the pattern ``<stem>_track*.bvh`` of
      the files written.
    """
    path = pathlib.Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".npz", ".json", ".bvh"):
        raise ValueError(f"{path}: unsupported output format {suffix!r}; use .npz, .json or .bvh")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".bvh":
        files, notes = write_bvh_files(result, path, fps=fps)
        if messages is None:
            for note in notes:
                warnings.warn(note, stacklevel=2)
        else:
            messages.extend(notes)
        return files[0] if len(files) == 1 else path.with_name(f"{path.stem}_track*.bvh")
    if suffix == ".json":
        path.write_text(json.dumps(to_jsonable(dict(result), nonfinite="null"), indent=1) + "\n")
        return path
    arrays = {k: np.asarray(result[k]) for k in _ARRAY_KEYS if result.get(k) is not None}
    arrays["joint_names"] = np.asarray(result["joint_names"], str)
    meta = {k: v for k, v in result.items() if k not in _ARRAY_KEYS}
    meta["arrays"] = sorted(arrays)
    with open(path, "wb") as f:
        np.savez(f, meta=np.asarray(json.dumps(to_jsonable(meta, nonfinite="null"))), **arrays)
    return path


BVH_NOTE_M = 0.005  # write_bvh_files notes BVH joints farther than this from the lifted ones


def write_bvh_files(
    result: Mapping[str, Any], path: str | os.PathLike, *, fps: float = 30.0
) -> tuple[list[pathlib.Path], list[str]]:
    """Write a :func:`lift` result as BVH motion, one file per track (conventions: ``.bvh`` in
    :mod:`jpose.inference`): the poses turned to the BVH frame
    (:func:`jpose.bvh.from_camera_frame`) and fitted with :func:`jpose.bvh.fit_bvh`. Tracks:
    ``track_id``, or one track when every frame has one person; frames in frame-number order.

    Args:
      result: :func:`lift` output.
      path: the ``.bvh`` file; with several tracks ``<stem>_track<id>.bvh`` files instead.
      fps: frames per second (``Frame Time = 1 / fps``).

    Returns:
      ``(files written, notes)``; a note per track whose BVH joints lie more than
      ``BVH_NOTE_M`` from the lifted ones (BVH keeps one length per bone).

    Raises:
      ValueError: several people in a frame without ``track_id``; a track whose frame numbers
        are not evenly spaced or repeat; a frame without a valid finite pose; degenerate poses
        (zero-length bones).
    """
    path = pathlib.Path(path)
    layout = skeleton.get_layout(result["layout"])
    absolute = result.get("pose3d_absolute") is not None
    poses = np.asarray(result["pose3d_absolute" if absolute else "pose3d_root_relative"])
    image_id = np.asarray(result["image_id"])
    frames = _frame_numbers(image_id)
    tracks = result.get("track_id")
    if tracks is None:
        crowded = _crowded_frame(image_id)
        if crowded:
            raise ValueError(
                f"BVH output: image_id {crowded[0]} has {crowded[1]} people; a BVH file holds "
                "one person: give a track_id per detection (one file per track)"
            )
        groups: list[tuple[Any, np.ndarray]] = [(None, np.arange(len(image_id)))]
    else:
        tracks = np.asarray(tracks)
        groups = [(t, np.nonzero(tracks == t)[0]) for t in np.unique(tracks)]
    valid = np.asarray(result.get("valid", np.ones(len(poses), bool)), bool)
    reasons = result.get("invalid_reason")
    written, notes = [], []
    for track, rows in groups:
        rows = rows[np.argsort(frames[rows], kind="stable")]
        label = "BVH output" + ("" if track is None else f", track {track}")
        step = np.diff(frames[rows])
        if np.any(step == 0):
            k = rows[int(np.argmax(step == 0))]
            raise ValueError(f"{label}: two detections in frame {image_id[k]}")
        if step.size and not np.allclose(step, step[0]):
            k = int(np.argmax(~np.isclose(step, step[0])))
            raise ValueError(
                f"{label}: frames not evenly spaced (image_id {image_id[rows[k]]} -> "
                f"{image_id[rows[k + 1]]}, while the first step is {step[0]:g}); a BVH has one "
                "pose per frame at a fixed rate: fill the gap or split the track"
            )
        missing = ~valid[rows] | ~np.isfinite(poses[rows]).all(axis=(1, 2))
        if missing.any():
            k = rows[int(np.argmax(missing))]
            why = str(reasons[k]) if reasons is not None and str(reasons[k]) else "no 3D"
            raise ValueError(
                f"{label}: {int(missing.sum())} frames without a valid 3D pose, first image_id "
                f"{image_id[k]} ({why}); a BVH needs a pose in every frame"
            )
        if len(groups) == 1:
            target = path
        else:
            tag = re.sub(r"[^A-Za-z0-9_.-]", "_", str(track))
            target = path.with_name(f"{path.stem}_track{tag}{path.suffix}")
        try:
            fit = bvh.fit_bvh(bvh.from_camera_frame(poses[rows]), layout=layout, fps=fps)
        except ValueError as err:
            raise ValueError(f"{label}: {err}") from None
        bvh.write_bvh(target, fit.bvh)
        written.append(target)
        if fit.max_position_error_m > BVH_NOTE_M:
            notes.append(
                f"{target.name}: BVH keeps one length per bone (the mean over {len(rows)} "
                f"frames); the lifted bone lengths vary by up to "
                f"{fit.max_length_deviation_m * 100:.1f} cm, so BVH joints lie up to "
                f"{fit.max_position_error_m * 100:.1f} cm from the lifted ones"
            )
    return written, notes
