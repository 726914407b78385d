"""Lift your own 2D detections to 3D with a trained jpose pipeline (the ``jpose`` command).

Usage::

    jpose --pretrained=camerapose_cmu_coco --input=detections.json --output=poses.json \
        --image_size=1920,1080                   # a shipped bundle (jpose.inference), no training
    jpose --workdir=RUN --input=detections.json --output=poses3d.npz --image_size=1920,1080
    python -m experiments.infer --workdir=RUN --input=kp.npz --output=out.json \
        --focal=1145,1144 --center=960,540 --smooth_sigma=2

``RUN`` is the work directory of a training run (``python -m experiments.<method>
--workdir=RUN``); its pipeline is restored with :func:`experiments.common.load_predictor`.
Python API: :func:`load_keypoints` -> :class:`KeypointInput`, :func:`lift` -> result dict,
:func:`write_output`.

Input formats (``--input``)
---------------------------

a) **COCO keypoint results** (``.json``, what COCO-style detectors such as mmpose, Detectron2 or
   HRNet write): a list of ``{"image_id", "category_id", "keypoints": [x, y, s] * 17, "score",
   optional "track_id", optional "bbox" [x, y, w, h]}``. ``x, y`` are pixels, ``s`` the joint's
   score. Layout ``coco17`` (``--layout`` may name another layout with as many joints); 26
   joints per entry are AlphaPose's Halpe-26 (``halpe26``; AlphaPose's ``"box"`` is read as
   ``"bbox"``).
b) **COCO ground-truth annotations** (``.json`` dict with ``"images"`` and ``"annotations"``):
   ``keypoints`` with COCO visibility flags (0 unlabelled, 1 occluded, 2 visible), converted to
   confidences 0 / 1 / 1 as in :mod:`jpose.data.wild2d`; image sizes from ``"images"``.
c) **Arrays** (``.npz``, or ``.json`` dict of lists): ``keypoints`` ``[N, J, 2]`` pixels or
   ``[N, J, 3]`` (third column = scores); optional ``scores`` ``[N, J]`` (wins over a third
   column), ``layout`` (a layout name), ``image_size`` ``[2]`` or ``[N, 2]`` (width, height),
   ``image_id`` or ``frame`` ``[N]`` (ints or strings; default ``0..N-1``), ``track_id``
   ``[N]``, ``score`` ``[N]`` (person score; default the mean joint score) and ``bbox``
   ``[N, 4]`` (x, y, w, h pixels, used by the ``"bbox"`` normalisation only).
d) **OpenPose** (``--write_json`` output): a directory of per-frame ``*_keypoints.json`` files
   (``{"people": [{"pose_keypoints_2d": [x, y, c] * J, "person_id": ...}]}``), or one such file.
   Files named ``<video>_<frame number>_keypoints.json`` (one video) are frames in frame-number
   order and the frame number is the ``image_id``; other names give the file name (without
   ``_keypoints.json``) as ``image_id``, in name order. ``person_id`` other than -1 is the
   ``track_id``. Layout ``body25`` (BODY_25, the default model) for 25 joints, ``openpose18``
   (OpenPose's COCO model) for 18; other counts are resolved as for arrays. Joints with
   confidence 0 (written as 0, 0, 0) are missing. OpenPose records no image size: give
   ``--image_size`` (or ``--image_sizes``) for pipelines that need one.

Joint order: the source layout (``N`` people x ``J`` joints in that layout's order, see
``jpose.skeleton``: ``coco17``, ``mpii16``, ``h36m17``, ``h36m16``, ``h36m32``, ``mpi3dhp17``,
``mpi3dhp28``, ``smpl24``, ``openpose18``, ``body25``, ``halpe26``). The layout is
``--layout``, else the file's ``layout``, else the only layout with that many joints; 16 joints
(``mpii16`` / ``h36m16``) and 17 joints (``coco17`` / ``h36m17`` / ``mpi3dhp17``) are
ambiguous and need ``--layout``. Inputs are converted to the pipeline's layout (``h36m17``:
Hip, RHip, RKnee, RFoot, LHip, LKnee, LFoot, Spine, Thorax, Neck/Nose, Head, LShoulder, LElbow,
LWrist, RShoulder, RElbow, RWrist) with :func:`jpose.skeleton.convert_layout`: a derived joint
(e.g. COCO's Hip = mid-hips) gets the minimum score of its sources. All outputs are in the
pipeline's layout (``joint_names``); "left" is the person's own left.

Scores: joint scores are clipped to ``[0, 1]`` and used as confidences; joints below
``--min_score`` get confidence 0 (missing). Missing joints may have NaN coordinates; any other
non-finite coordinate is an error. As in training (:mod:`jpose.data.wild2d`), normalised
coordinates of missing joints are set to 0.

Validity (no pose from garbage): a person is lifted only with at least ``--min_joints`` (8)
joints of confidence > 0 in the pipeline's layout, confident joints spanning at least 2 px,
coordinates within 100000 px and one image size of the image, and image sides within 16 ..
100000 px (:func:`person_validity`); and only when the lifted 3D is plausible (every joint
within 10 m of the root, a root translation within 10 km). Otherwise a single person is an
error (exit status 2) and, in a batch, the person comes back with ``valid`` False, its reason
in ``invalid_reason`` and NaN poses, with one warning line; a batch without a valid person is an
error. A work directory whose training did not finish is refused unless ``--allow_unfinished``
(then a warning and ``unfinished`` in the output say so). User errors exit with status 2 and
one ``jpose: error: ...`` line, without a traceback.

Normalisation: the 2D keypoints are normalised exactly as the pipeline's training inputs were
(``Predictor.normalization``, :func:`jpose.data.normalize_2d`): ``"vp"`` (VideoPose3D
``uv / w * 2 - [1, h / w]``) and ``"image"`` (``uv / (w, h) * 2 - 1``) need each image's size
(``--image_size W,H`` for every input, ``--image_sizes`` ``{image_id: [w, h]}`` JSON,
``--annotations`` COCO annotation JSON with ``images: [{id, width, height}]``, or the file's
``image_size``; in that order of precedence); ``"bbox"`` uses the person box (``bbox`` of the
input, else the tight box of the joints with confidence > 0) and needs no image size.

Outputs: camera space, not world
--------------------------------

3D poses are in the **camera frame** of the image they were detected in (OpenCV: x right, y
down, z forward, metres; the pipeline never sees a world frame, so there is no ground plane or
world orientation). ``pose3d_root_relative`` ``[N, J, 3]`` has the pelvis (joint 0) at the
origin. ``pose3d_absolute`` ``[N, J, 3]`` (root-relative + root translation) is written when

* the intrinsics are known (``--focal fx,fy`` [``--center cx,cy``, default the image centre],
  pixels): the root translation ``t`` is solved by confidence-weighted linear least squares from
  the pixel keypoints and the predicted root-relative pose, ``(u - cx)(Z + tz) = fx (X + tx)``,
  ``(v - cy)(Z + tz) = fy (Y + ty)`` per joint, followed by two depth re-weighted passes that
  make the residuals re-projection errors in pixels
  (:func:`jpose.camera.solve_root_translation`; joints weighted by their confidences, joints
  with confidence 0 ignored; derived joints such as COCO's mid-hip Hip use the mean of the
  pixels, a sub-pixel approximation of the projection); ``absolute_source =
  "known_intrinsics"``; known intrinsics take precedence over a camera branch, whose
  translation is then kept as ``translation_camera_branch``;
* otherwise, when the pipeline has a camera branch (CameraPose), from its predicted translation;
  ``absolute_source = "camera_branch"``; its predicted intrinsics are also written, converted
  back to pixels (``focal_px``, ``center_px``).

Pipelines trained without metric 3D (``Predictor.metric_scale`` False, e.g. Drover et al.)
predict 3D up to scale: the output then carries a warning and its "metres" are not metres.

Video
-----

Give one detection per person per frame with ``image_id`` (or ``frame``) the frame number. With
one person per frame no ``track_id`` is needed; with several people per frame give a
``track_id`` per detection (a tracker's identities). ``--smooth_sigma S`` (frames) applies a
Gaussian filter along the frames of each track (sorted by frame number; a gap in the frame
numbers is a gap in time; edges use the available neighbours) to the 3D outputs; 0 = off.

Output file (``--output``)
--------------------------

``.npz``: arrays ``pose3d_root_relative``, ``pose3d_absolute`` / ``translation`` (root
position, metres; when any),
``focal_px`` / ``center_px`` (camera branch), ``keypoints_px`` (input 2D in the output layout),
``joint_scores``, ``score``, ``image_id``, ``track_id`` (when given), ``valid`` and
``invalid_reason`` (per person, see Validity), ``joint_names``, plus a
JSON string ``meta`` with everything else: ``layout``, ``input_layout``, ``units`` (metres),
``frame`` (camera, x right, y down, z forward), ``absolute_source``, ``normalization``,
``metric_scale``, ``warnings``, the pipeline's ``experiment`` / ``description`` /
``checkpoint``, ``input_file`` and ``timing`` (seconds per person of the lifting network,
excluding compilation: measured after a warm-up call). ``.json``: one object with the same
fields (arrays as nested lists, NaN as null).

``.bvh`` (:mod:`jpose.bvh`, :func:`write_bvh_files`): a motion file per person for animation
tools, in centimetres in the camera frame turned 180 degrees about x (x right, y up, z towards
the camera), the root at ``pose3d_absolute``'s root when there is one, else at the origin;
``Frame Time`` = 1 / ``--fps`` (default 30); joint rotations (``Zrotation Xrotation
Yrotation``) against a T-pose with the sequence's mean bone lengths. One track: the file named;
several tracks (``track_id``): one ``<stem>_track<id>.bvh`` per track. Each track needs evenly
spaced frame numbers and a valid pose in every frame. BVH has one length per bone: when the
lifted bone lengths vary along a track, a warning gives the resulting joint-position error.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import re
import sys
import time
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np

from experiments import common, rundir
from jpose import bvh, skeleton
from jpose.camera import solve_root_translation
from jpose.data import denormalize_2d, normalize_2d
from jpose.data.wild2d import tight_boxes, visibility_to_confidence

__all__ = [
    "KeypointInput",
    "load_keypoints",
    "resolve_layout",
    "lift",
    "person_validity",
    "tracks_for_smoothing",
    "smooth_poses",
    "write_output",
    "write_bvh_files",
    "main",
]

UNITS = "metres"
CAMERA_FRAME = "camera (x right, y down, z forward)"
_NEEDS_IMAGE_SIZE = ("vp", "image")

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
# Input
# ------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class KeypointInput:
    """2D detections of ``N`` people in one source layout.

    Attributes:
      keypoints_px: ``[N, J, 2]`` float32 pixels (non-finite only where the score is 0;
        :func:`load_keypoints` sets those to 0).
      scores: ``[N, J]`` float32 joint scores.
      layout: source layout name (``jpose.skeleton``).
      image_id: ``[N]`` image / frame id (int64 or str).
      track_id: ``[N]`` track identities, or ``None``.
      image_size_px: ``[N, 2]`` (width, height) pixels, -1 where unknown; or ``None``.
      source: the file it was read from.
      person_score: ``[N]`` detection score (default the mean joint score).
      bbox_px: ``[N, 4]`` (x, y, w, h) person boxes, or ``None``.
    """

    keypoints_px: np.ndarray
    scores: np.ndarray
    layout: str
    image_id: np.ndarray
    track_id: np.ndarray | None
    image_size_px: np.ndarray | None
    source: str
    person_score: np.ndarray | None = None
    bbox_px: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.keypoints_px)


def _layouts_by_count() -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for name, lay in skeleton.LAYOUTS.items():
        out.setdefault(lay.num_joints, []).append(name)
    return dict(sorted(out.items()))


def resolve_layout(num_joints: int, *, layout: str | None = None, source: str = "input") -> str:
    """The source layout of keypoints with ``num_joints`` joints.

    Args:
      num_joints: joints per person in the file.
      layout: an explicit layout name (``--layout`` or the file's ``layout``), or ``None``.
      source: the file (for messages).

    Returns:
      The layout name.

    Raises:
      ValueError: unknown layout name, a count that does not match it, a count matching no
        layout, or an ambiguous count (16 / 17 joints) without a layout.
    """
    by_count = _layouts_by_count()
    counts = ", ".join(f"{k} ({'/'.join(v)})" for k, v in by_count.items())
    if layout:
        lay = skeleton.get_layout(str(layout))  # ValueError listing the known layouts
        if lay.num_joints != num_joints:
            raise ValueError(
                f"{source}: layout {lay.name} has {lay.num_joints} joints but the keypoints have "
                f"{num_joints}; pass the right --layout (known joint counts: {counts})"
            )
        return lay.name
    candidates = by_count.get(num_joints)
    if not candidates:
        raise ValueError(
            f"{source}: keypoints have {num_joints} joints, which matches no known layout "
            f"(known joint counts: {counts})"
        )
    if len(candidates) > 1:
        raise ValueError(
            f"{source}: {num_joints} joints is ambiguous: could be {', '.join(candidates)}; "
            "pass --layout (or store 'layout' in the file)"
        )
    return candidates[0]


def _read_json(path: str, what: str) -> Any:
    try:
        with open(path) as f:
            return json.load(f)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({what}): {err}") from err


def _ids(values: Any) -> np.ndarray:
    """Image / frame / track ids as int64 when all are integral, else str."""
    arr = np.asarray(values)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64)
    if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
        return arr.astype(np.int64)
    if arr.dtype.kind in "OUS":
        try:
            return np.array([int(v) for v in arr.tolist()], np.int64)
        except (TypeError, ValueError):
            pass
    return arr.astype(str)


def _image_sizes_from_annotations(annotations: str | os.PathLike | Mapping) -> dict[str, Any]:
    if isinstance(annotations, Mapping):
        raw, where = annotations, "annotations"
    else:
        where = os.fspath(annotations)
        if not os.path.isfile(where):
            raise FileNotFoundError(f"{where}: annotation file not found (COCO JSON with 'images')")
        raw = _read_json(where, "COCO annotations")
    if not isinstance(raw, Mapping) or "images" not in raw:
        raise ValueError(
            f"{where}: expected a COCO annotation JSON with 'images': [{{id, width, height}}, ...]"
        )
    out = {}
    for im in raw["images"]:
        if "id" in im and "width" in im and "height" in im:
            out[str(im["id"])] = (im["width"], im["height"])
    return out


def _keypoint_row(values: Any, where: str, rows: Sequence[np.ndarray], *, hint: str) -> np.ndarray:
    """One person's flat ``[x, y, score] * K`` keypoints, checked: a non-empty multiple of 3 and
    as many joints as the first person read (``rows[0]``)."""
    kp = np.asarray(values, np.float64).reshape(-1)
    if kp.size == 0 or kp.size % 3:
        raise ValueError(f"{where} has {kp.size} values, not a non-empty multiple of 3 ({hint})")
    if rows and kp.size != rows[0].size:
        raise ValueError(
            f"{where} has {kp.size // 3} keypoints, the first person {rows[0].size // 3}"
        )
    return kp


def _from_coco_results(raw: list, path: str) -> dict[str, Any]:
    if not raw:
        raise ValueError(f"{path}: empty input: the COCO results list has no detections")
    rows, image_id, track_id, score, bbox = [], [], [], [], []
    for i, det in enumerate(raw):
        if not isinstance(det, Mapping) or "keypoints" not in det:
            raise ValueError(
                f"{path}: entry [{i}] has no 'keypoints' (COCO results format: a list of "
                '{"image_id", "keypoints": [x, y, s] * K, "score"})'
            )
        rows.append(
            _keypoint_row(det["keypoints"], f"{path}: entry [{i}] 'keypoints'", rows,
                          hint="x, y, score per joint")
        )  # fmt: skip
        image_id.append(det.get("image_id", i))
        track_id.append(det.get("track_id"))
        score.append(det.get("score", np.nan))
        bbox.append(det.get("bbox", det.get("box")))  # AlphaPose writes "box" (x, y, w, h)
    kp = np.stack(rows).reshape(len(rows), -1, 3)
    has_track = [t is not None for t in track_id]
    if any(has_track) and not all(has_track):
        raise ValueError(f"{path}: 'track_id' is given for some detections but not all")
    has_box = all(b is not None and len(b) == 4 for b in bbox)
    return {
        "keypoints": kp[..., :2],
        "scores": kp[..., 2],
        "image_id": image_id,
        "track_id": track_id if all(has_track) else None,
        "score": np.asarray(score, np.float64),
        "bbox": np.asarray(bbox, np.float64) if has_box else None,
        "default_layout": "coco17" if kp.shape[1] == 17 else None,
    }


# OpenPose --write_json names: "<video>_<12-digit frame number>_keypoints.json"
_OPENPOSE_NAME = re.compile(r"^(?P<prefix>.*?)(?P<frame>\d+)_keypoints\.json$")
_OPENPOSE_LAYOUTS = {25: "body25", 18: "openpose18"}  # BODY_25 and COCO models


def _openpose_person_id(value: Any) -> int | None:
    """OpenPose's ``person_id`` (``[-1]`` in OpenPose >= 1.5, a number before): None for -1."""
    if isinstance(value, list | tuple):
        value = value[0] if value else -1
    if value is None or int(value) == -1:
        return None
    return int(value)


def _from_openpose(frames: Sequence[tuple[str, Any]], where: str) -> dict[str, Any]:
    """Detections of OpenPose ``*_keypoints.json`` frames ``[(file, loaded JSON), ...]``."""
    names = [os.path.basename(f) for f, _ in frames]
    parts = [_OPENPOSE_NAME.match(n) for n in names]
    prefixes = {m["prefix"].rstrip("_") for m in parts if m}
    if all(parts) and len(prefixes) == 1:
        ids: list[Any] = [int(m["frame"]) for m in parts]
        if len(set(ids)) != len(ids):
            raise ValueError(f"{where}: two OpenPose files have the same frame number")
    elif all(parts) and len(frames) > 1:
        raise ValueError(
            f"{where}: OpenPose files of {len(prefixes)} videos "
            f"({', '.join(sorted(prefixes)[:3])}, ...); give one video's files"
        )
    else:  # images: the file name is the image id
        ids = [n[: -len("_keypoints.json")] if n.endswith("_keypoints.json") else n for n in names]
    rows, image_id, track_id = [], [], []
    for (file, raw), frame in zip(frames, ids, strict=True):
        if not isinstance(raw, Mapping) or not isinstance(raw.get("people"), list):
            raise ValueError(f"{file}: not an OpenPose keypoint file (no 'people' list)")
        for k, person in enumerate(raw["people"]):
            if not isinstance(person, Mapping):
                raise ValueError(f"{file}: people[{k}] is not an object with 'pose_keypoints_2d'")
            rows.append(
                _keypoint_row(person.get("pose_keypoints_2d") or [],
                              f"{file}: people[{k}] 'pose_keypoints_2d'", rows,
                              hint="x, y, confidence per joint; was OpenPose run with the body "
                              "model?")
            )  # fmt: skip
            image_id.append(frame)
            track_id.append(_openpose_person_id(person.get("person_id", -1)))
    if not rows:
        raise ValueError(f"{where}: empty input: no people in {len(frames)} OpenPose file(s)")
    tracked = [t is not None for t in track_id]
    if any(tracked) and not all(tracked):
        raise ValueError(f"{where}: 'person_id' is set (not -1) for some people but not all")
    kp = np.stack(rows).reshape(len(rows), -1, 3)
    return {
        "keypoints": kp[..., :2],
        "scores": kp[..., 2],
        "image_id": image_id,
        "track_id": track_id if all(tracked) else None,
        "default_layout": _OPENPOSE_LAYOUTS.get(kp.shape[1]),
    }


def _from_openpose_dir(path: str) -> dict[str, Any]:
    files = sorted(os.path.join(path, n) for n in os.listdir(path) if n.endswith("_keypoints.json"))
    if not files:
        raise ValueError(
            f"{path}: a directory, but it has no OpenPose *_keypoints.json files (OpenPose "
            "--write_json output expected)"
        )
    parsed = _from_openpose([(f, _read_json(f, "OpenPose keypoints")) for f in files], path)
    order = np.argsort(np.asarray(parsed["image_id"]), kind="stable")  # frame-number order
    for key in ("keypoints", "scores"):
        parsed[key] = parsed[key][order]
    for key in ("image_id", "track_id"):
        if parsed[key] is not None:
            parsed[key] = [parsed[key][i] for i in order]
    return parsed


def _from_coco_annotations(raw: Mapping, path: str) -> dict[str, Any]:
    anns = [a for a in raw["annotations"] if "keypoints" in a and not a.get("iscrowd", 0)]
    if not anns:
        raise ValueError(f"{path}: empty input: no (non-crowd) annotations with keypoints")
    kp = np.stack([np.asarray(a["keypoints"], np.float64).reshape(-1, 3) for a in anns])
    return {
        "keypoints": kp[..., :2],
        "scores": visibility_to_confidence(kp[..., 2].astype(np.int32)),
        "image_id": [a["image_id"] for a in anns],
        "track_id": [a["track_id"] for a in anns] if all("track_id" in a for a in anns) else None,
        "score": np.asarray([a.get("score", np.nan) for a in anns], np.float64),
        "bbox": np.asarray([a.get("bbox", [0, 0, 0, 0]) for a in anns], np.float64),
        "default_layout": "coco17" if kp.shape[1] == 17 else None,
        "sizes": _image_sizes_from_annotations(raw),
    }


def _from_arrays(arrays: Mapping[str, Any], path: str) -> dict[str, Any]:
    if "keypoints" not in arrays:
        raise ValueError(
            f"{path}: no 'keypoints' array (expected keypoints [N, J, 2|3]); keys present: "
            f"{sorted(arrays)}"
        )
    try:
        kp = np.asarray(arrays["keypoints"], np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: 'keypoints' is not a numeric [N, J, 2|3] array: {err}") from err
    if kp.size == 0:
        raise ValueError(f"{path}: empty input: 'keypoints' has shape {kp.shape}")
    if kp.ndim != 3 or kp.shape[-1] not in (2, 3):
        raise ValueError(
            f"{path}: 'keypoints' must have shape [N, J, 2] or [N, J, 3], got {kp.shape}"
        )
    n, j = kp.shape[:2]
    if "scores" in arrays and arrays["scores"] is not None:
        scores = np.asarray(arrays["scores"], np.float64)
        if scores.shape != (n, j):
            raise ValueError(f"{path}: 'scores' must have shape {(n, j)}, got {scores.shape}")
    elif kp.shape[-1] == 3:
        scores = kp[..., 2]
    else:
        scores = np.ones((n, j))
    out: dict[str, Any] = {"keypoints": kp[..., :2], "scores": scores}
    for key in ("image_id", "frame", "track_id", "score"):
        if key in arrays and arrays[key] is not None:
            v = np.asarray(arrays[key])
            if v.shape != (n,):
                raise ValueError(f"{path}: '{key}' must have shape ({n},), got {v.shape}")
            out[key] = v
    out["image_id"] = out.pop("image_id", out.pop("frame", None))
    out.pop("frame", None)
    if "image_size" in arrays and arrays["image_size"] is not None:
        size = np.asarray(arrays["image_size"], np.float64)
        if size.shape == (2,):
            size = np.broadcast_to(size, (n, 2))
        if size.shape != (n, 2):
            raise ValueError(
                f"{path}: 'image_size' must have shape (2,) or ({n}, 2) (width, height), got "
                f"{size.shape}"
            )
        out["image_size"] = size
    if "bbox" in arrays and arrays["bbox"] is not None:
        box = np.asarray(arrays["bbox"], np.float64)
        if box.shape != (n, 4):
            raise ValueError(f"{path}: 'bbox' must have shape ({n}, 4), got {box.shape}")
        out["bbox"] = box
    if "layout" in arrays and arrays["layout"] is not None:
        out["file_layout"] = str(np.asarray(arrays["layout"]).reshape(-1)[0])
    return out


def load_keypoints(
    path: str | os.PathLike,
    *,
    layout: str | None = None,
    image_size: Sequence[float] | None = None,
    image_sizes: Mapping[Any, Sequence[float]] | None = None,
    annotations: str | os.PathLike | Mapping | None = None,
) -> KeypointInput:
    """Read 2D detections (formats in the module docstring).

    Args:
      path: ``.json`` (COCO results, COCO annotations, a dict of arrays or one OpenPose
        frame), ``.npz``, or a directory of OpenPose ``*_keypoints.json`` files.
      layout: source layout name (overrides the file's; needed for ambiguous joint counts).
      image_size: ``(width, height)`` pixels of every image.
      image_sizes: ``{image_id: (width, height)}`` (keys compared as strings).
      annotations: COCO annotation JSON (path or loaded dict) whose ``images`` give sizes.

    Returns:
      :class:`KeypointInput` (image sizes -1 where unknown; ``None`` when none is known).

    Raises:
      FileNotFoundError: missing file.
      ValueError: unsupported format, empty input, bad shapes, unknown / mismatching layout,
        non-finite keypoints (with a positive score) or scores, non-positive image sizes.
    """
    path = os.fspath(path)
    if not os.path.isfile(path) and not os.path.isdir(path):
        raise FileNotFoundError(
            f"{path}: input file not found (expected detections .json/.npz, or a directory of "
            "OpenPose *_keypoints.json files)"
        )
    suffix = pathlib.Path(path).suffix.lower()
    if os.path.isdir(path):  # OpenPose --write_json: one *_keypoints.json file per frame
        parsed = _from_openpose_dir(path)
    elif suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except (OSError, EOFError, ValueError, zipfile.BadZipFile) as err:
            raise ValueError(
                f"{path}: not a readable .npz archive ({type(err).__name__}: {err}); an empty, "
                "truncated or corrupt file? (object arrays / pickles are not read)"
            ) from None
        parsed = _from_arrays(arrays, path)
    elif suffix == ".json":
        raw = _read_json(path, "detections")
        if isinstance(raw, list):
            parsed = _from_coco_results(raw, path)
        elif isinstance(raw, Mapping) and "annotations" in raw and "images" in raw:
            parsed = _from_coco_annotations(raw, path)
        elif isinstance(raw, Mapping) and "people" in raw:  # one OpenPose frame
            parsed = _from_openpose([(path, raw)], path)
        elif isinstance(raw, Mapping):
            parsed = _from_arrays(raw, path)
        else:
            raise ValueError(
                f"{path}: expected a JSON list (COCO results) or object, got {type(raw).__name__}"
            )
    else:
        raise ValueError(f"{path}: unsupported input format {suffix!r}; expected .json or .npz")

    kp = np.asarray(parsed["keypoints"], np.float64)
    scores = np.asarray(parsed["scores"], np.float64)
    n, j = kp.shape[:2]
    if n == 0:
        raise ValueError(f"{path}: empty input: no detections")
    name = resolve_layout(
        j, layout=layout or parsed.get("file_layout") or parsed.get("default_layout"), source=path
    )
    if not np.all(np.isfinite(scores)):
        bad = np.nonzero(~np.isfinite(scores).all(-1))[0]
        raise ValueError(
            f"{path}: joint scores contain non-finite values ({len(bad)} people, "
            f"first index {bad[0]})"
        )
    bad_kp = ~np.isfinite(kp).all(-1) & (scores > 0)
    if bad_kp.any():
        people = np.nonzero(bad_kp.any(-1))[0]
        raise ValueError(
            f"{path}: keypoints contain non-finite values (NaN/inf) at {int(bad_kp.sum())} joints "
            f"with a positive score ({len(people)} people, first index {people[0]}); mark missing "
            "joints with score 0"
        )
    kp = np.where(np.isfinite(kp), kp, 0.0)
    ids = parsed.get("image_id")
    image_id = np.arange(n, dtype=np.int64) if ids is None else _ids(ids)
    track = parsed.get("track_id")
    track_id = None if track is None else _ids(track)

    # image sizes: image_size > image_sizes > annotations > the file's own
    size = np.full((n, 2), -1.0)
    known = np.zeros(n, bool)
    if image_size is not None:
        s = np.asarray(image_size, np.float64).reshape(-1)
        if s.shape != (2,):
            raise ValueError(f"image_size must be (width, height), got {image_size!r}")
        size[:], known[:] = s, True
    lookups = []
    if image_sizes is not None:
        lookups.append({str(k): v for k, v in image_sizes.items()})
    if annotations is not None:
        lookups.append(_image_sizes_from_annotations(annotations))
    if "sizes" in parsed:
        lookups.append(parsed["sizes"])
    for table in lookups:
        for i in np.nonzero(~known)[0]:
            v = table.get(str(image_id[i]))
            if v is not None:
                size[i], known[i] = np.asarray(v, np.float64).reshape(2), True
    if "image_size" in parsed:
        size[~known] = parsed["image_size"][~known]
        known[:] = True
    if np.any(known & ~(np.isfinite(size) & (size > 0)).all(-1)):
        raise ValueError(
            f"{path}: image sizes must be positive (width, height) pixels, got "
            f"{size[known & ~(size > 0).all(-1)][0].tolist()}"
        )
    person = parsed.get("score")
    person = np.asarray(person, np.float64) if person is not None else np.full(n, np.nan)
    person = np.where(np.isfinite(person), person, scores.mean(-1))
    return KeypointInput(
        keypoints_px=kp.astype(np.float32),
        scores=scores.astype(np.float32),
        layout=name,
        image_id=image_id,
        track_id=track_id,
        image_size_px=size.astype(np.float32) if known.any() else None,
        source=path,
        person_score=person.astype(np.float32),
        bbox_px=None if parsed.get("bbox") is None else parsed["bbox"].astype(np.float32),
    )


# ------------------------------------------------------------------------------------------------
# Smoothing
# ------------------------------------------------------------------------------------------------


def _frame_numbers(image_id: np.ndarray) -> np.ndarray:
    if image_id.dtype.kind in "iuf":
        return image_id.astype(np.float64)
    _, rank = np.unique(image_id, return_inverse=True)  # string ids: their sorted order
    return rank.astype(np.float64)


def tracks_for_smoothing(image_id: np.ndarray, track_id: np.ndarray | None) -> np.ndarray:
    """Track of each detection: ``track_id``, or one track when each frame has one person.

    Raises:
      ValueError: several people in a frame without ``track_id``, or a track with two detections
        in one frame.
    """
    n = len(image_id)
    if track_id is None:
        ids, counts = np.unique(image_id, return_counts=True)
        if np.any(counts > 1):
            k = int(np.argmax(counts))
            raise ValueError(
                f"temporal smoothing needs a track_id per detection: image_id {ids[k]} has "
                f"{counts[k]} people (without track ids only one person per frame is allowed)"
            )
        return np.zeros(n, np.int64)
    pairs = np.stack([np.unique(track_id, return_inverse=True)[1], _frame_numbers(image_id)], -1)
    uniq, counts = np.unique(pairs, axis=0, return_counts=True)
    if np.any(counts > 1):
        raise ValueError(
            f"temporal smoothing: a track has {counts.max()} detections in one frame (track and "
            "frame must identify one detection)"
        )
    return np.unique(track_id, return_inverse=True)[1].astype(np.int64)


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
    predictor: common.Predictor,
    inp: KeypointInput,
    *,
    intrinsics_px: Mapping[str, Any] | None = None,
    smooth_sigma: float = 0.0,
    batch_size: int = 1024,
    min_score: float = 0.0,
    min_joints: int = MIN_JOINTS,
) -> dict[str, Any]:
    """Lift 2D detections to camera-frame 3D with a trained pipeline.

    People whose 2D cannot give a pose (:func:`person_validity`: too few confident joints, a
    degenerate 2D extent, coordinates or image sizes outside plausible bounds) or whose lifted
    3D is implausible (a joint more than ``MAX_POSE_M`` from the root, a root translation
    beyond ``MAX_TRANSLATION_M``, non-finite values) are never returned as a pose: a single
    person is an error; in a batch they are flagged (``valid`` False, ``invalid_reason``) with
    NaN outputs and one warning line; a batch with no valid person is an error.

    Args:
      predictor: :class:`experiments.common.Predictor` (``common.load_predictor(workdir)``).
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
      The result dict written by :func:`write_output` (arrays ``pose3d_root_relative`` and,
      where available, ``pose3d_absolute``, ``translation``, ``focal_px``, ``center_px``; plus
      ``joint_names``, ``layout``, ``image_id``, ``track_id``, ``score``, ``joint_scores``,
      ``keypoints_px``, ``units``, ``frame``, ``absolute_source``, ``warnings``, ``timing``,
      ``valid`` / ``invalid_reason`` per person, ``unfinished`` and the pipeline's
      ``experiment`` / ``description`` / ``checkpoint``).

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
    if mode in _NEEDS_IMAGE_SIZE:
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
    bbox = None
    if mode == "bbox":
        bbox = inp.bbox_px if inp.bbox_px is not None else tight_boxes(kp, scores > 0)
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
        common.batched_apply(predictor.predict, *(a[:bs] for a in arrays), batch_size=bs)
    )
    warmup_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    pred = common.batched_apply(predictor.predict, *arrays, batch_size=bs)
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
        "warnings": [],
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
    for key in ("pose3d_root_relative", "pose3d_absolute", "translation", "focal_px", "center_px"):
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
        path.write_text(
            json.dumps(common.to_jsonable(dict(result), nonfinite="null"), indent=1) + "\n"
        )
        return path
    arrays = {k: np.asarray(result[k]) for k in _ARRAY_KEYS if result.get(k) is not None}
    arrays["joint_names"] = np.asarray(result["joint_names"], str)
    meta = {k: v for k, v in result.items() if k not in _ARRAY_KEYS}
    meta["arrays"] = sorted(arrays)
    with open(path, "wb") as f:
        np.savez(
            f, meta=np.asarray(json.dumps(common.to_jsonable(meta, nonfinite="null"))), **arrays
        )
    return path


BVH_NOTE_M = 0.005  # write_bvh_files notes BVH joints farther than this from the lifted ones


def write_bvh_files(
    result: Mapping[str, Any], path: str | os.PathLike, *, fps: float = 30.0
) -> tuple[list[pathlib.Path], list[str]]:
    """Write a :func:`lift` result as BVH motion, one file per person (:mod:`jpose.bvh`).

    The poses (``pose3d_absolute`` when present, else ``pose3d_root_relative`` with the root at
    the origin) are turned from the camera frame to the BVH frame (x right, y up, z towards the
    camera: :func:`jpose.bvh.from_camera_frame`) and fitted with :func:`jpose.bvh.fit_bvh`
    (centimetres, T-pose rest with the track's mean bone lengths, ``Zrotation Xrotation
    Yrotation`` channels). Tracks: ``track_id``, or one track when every frame has one person.
    Frames are sorted by frame number (:func:`tracks_for_smoothing`'s order).

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
        ids, counts = np.unique(image_id, return_counts=True)
        if np.any(counts > 1):
            k = int(np.argmax(counts))
            raise ValueError(
                f"BVH output: image_id {ids[k]} has {counts[k]} people; a BVH file holds one "
                "person: give a track_id per detection (one file per track)"
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


# ------------------------------------------------------------------------------------------------
# CLI
# ------------------------------------------------------------------------------------------------


def _pair(text: str) -> tuple[float, float]:
    parts = [p for p in text.replace("x", ",").split(",") if p.strip()]
    try:
        a, b = (float(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected two numbers 'a,b', got {text!r}") from None
    return a, b


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="jpose",
        description="Lift 2D keypoint detections to camera-frame 3D poses with a trained jpose "
        "pipeline (formats and conventions: python -c 'import experiments.infer as m; "
        "help(m)').",
    )
    common.add_model_source(p)
    p.add_argument(
        "--input",
        required=True,
        help="detections: COCO results .json, or .npz/.json with keypoints [N, J, 2|3], or an "
        "OpenPose --write_json directory",
    )
    p.add_argument(
        "--output", required=True, help="output file (.npz, .json, or .bvh: one per track)"
    )
    p.add_argument(
        "--layout", default=None, help=f"input joint layout ({', '.join(skeleton.LAYOUTS)})"
    )
    p.add_argument(
        "--image_size",
        type=_pair,
        default=None,
        metavar="W,H",
        help="image width,height in pixels for every input",
    )
    p.add_argument(
        "--image_sizes",
        default=None,
        metavar="JSON",
        help="JSON file (or inline JSON) {image_id: [w, h]}",
    )
    p.add_argument(
        "--annotations",
        default=None,
        metavar="COCO_JSON",
        help="COCO annotation JSON whose 'images' give width/height per image id",
    )
    p.add_argument(
        "--focal",
        type=_pair,
        default=None,
        metavar="FX,FY",
        help="known focal lengths in pixels (enables pose3d_absolute)",
    )
    p.add_argument(
        "--center",
        type=_pair,
        default=None,
        metavar="CX,CY",
        help="known principal point in pixels (default: image centre)",
    )
    p.add_argument(
        "--smooth_sigma",
        type=float,
        default=0.0,
        help="Gaussian temporal smoothing of the 3D along frames, per track (frames; 0 = off)",
    )
    p.add_argument(
        "--fps", type=float, default=30.0, help="frames per second of a .bvh output (default 30)"
    )
    p.add_argument(
        "--min_score",
        type=float,
        default=0.0,
        help="joints with a lower score are treated as missing",
    )
    p.add_argument(
        "--step", type=int, default=None, help="checkpoint step of the last stage (default: latest)"
    )
    p.add_argument("--batch_size", type=int, default=1024, help="network batch size")
    p.add_argument(
        "--min_joints",
        type=int,
        default=MIN_JOINTS,
        help="fewest joints with confidence > 0 (pipeline layout) for a person to be lifted",
    )
    p.add_argument(
        "--allow_unfinished",
        action="store_true",
        help="use a run whose training did not finish (said in the output's warnings)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``jpose --workdir RUN --input IN --output OUT [options]`` (see ``--help``).

    Returns:
      0 on success (input errors exit with status 2 and a message naming the problem, without
      a traceback; people that cannot be lifted are flagged with one warning line).
    """
    parser = _parser()
    args = parser.parse_args(argv)
    if args.center is not None and args.focal is None:
        parser.error("--center needs --focal (known intrinsics)")
    if not (np.isfinite(args.fps) and args.fps > 0):
        parser.error(f"--fps must be a positive number, got {args.fps}")
    if args.workdir is not None and not args.workdir.strip():
        parser.error("--workdir is empty: give a training run's work directory")
    try:
        image_sizes = None
        if args.image_sizes:
            text = args.image_sizes.strip()
            if text.startswith("{"):
                image_sizes = json.loads(text)
            elif os.path.isfile(text):
                image_sizes = _read_json(text, "image sizes {image_id: [w, h]}")
            else:
                raise FileNotFoundError(f"{text}: --image_sizes file not found")
            if not isinstance(image_sizes, Mapping):
                raise ValueError("--image_sizes must be a JSON object {image_id: [w, h]}")
        with rundir.user_errors():  # unreadable / truncated files, bad layouts, units
            inp = load_keypoints(
                args.input,
                layout=args.layout,
                image_size=args.image_size,
                image_sizes=image_sizes,
                annotations=args.annotations,
            )
            from jpose.inference import resolve_bundle  # unknown names list the shipped ones

            source = args.workdir if args.pretrained is None else resolve_bundle(args.pretrained)
            predictor = common.load_predictor(
                source, step=args.step, allow_unfinished=args.allow_unfinished
            )
        intr = None
        if args.focal is not None:
            intr = {"focal": args.focal, "center": args.center}
        result = lift(
            predictor,
            inp,
            intrinsics_px=intr,
            smooth_sigma=args.smooth_sigma,
            batch_size=args.batch_size,
            min_score=args.min_score,
            min_joints=args.min_joints,
        )
        path = write_output(result, args.output, fps=args.fps, messages=result["warnings"])
    except Exception as err:
        if not (rundir.is_user_error(err) or isinstance(err, ValueError | FileNotFoundError)):
            raise
        if os.environ.get("JPOSE_TRACEBACK"):
            raise
        parser.exit(2, f"jpose: error: {rundir.user_message(err)}\n")
    for w in result["warnings"]:
        print(f"jpose: warning: {w}", file=sys.stderr)
    t = result["timing"]
    print(
        f"jpose: {len(inp)} people ({inp.layout} -> {result['layout']}) lifted with "
        f"{predictor.experiment} {dict(predictor.checkpoint)}; absolute: "
        f"{result['absolute_source'] or 'no'}; {t['seconds_per_person'] * 1e6:.1f} us/person; "
        f"wrote {path}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
