"""3DPW (von Marcard et al., ECCV 2018) sequence files, mapped to Human3.6M-17.

Files: ``sequenceFiles/{train,validation,test}/<sequence>.pkl`` from
https://virtualhumans.mpi-inf.mpg.de/3DPW/ (users download them). Each file is a Python-2 pickle
(read with ``encoding="latin1"``) of a dict with, for P people and T frames:

* ``poses2d``: list of P arrays ``(T, 3, 18)`` -- OpenPose-18 2D keypoints (x, y pixels,
  confidence), **detections**, all-zero where no detection was associated;
* ``jointPositions``: list of P arrays ``(T, 72)`` -- the 24 SMPL joints, world frame, metres;
* ``cam_intrinsics``: ``(3, 3)`` K (pixels); ``cam_poses``: ``(T, 4, 4)`` world -> camera;
* ``campose_valid``: list of P arrays ``(T,)`` -- 0 where the camera pose / person alignment is
  not valid (such frames are excluded from evaluation);
* ``img_frame_ids``: ``(T,)``, ``sequence``: name (other keys -- SMPL ``poses``, ``betas``,
  ``trans``, ``genders``, ... -- are not used here).

Conversion rules (:mod:`jpose.skeleton`): 3D ``smpl24_to_h36m17`` -- Hip = SMPL pelvis,
Spine = mid(pelvis, neck), Thorax = SMPL neck, Neck/Nose = SMPL head, Head = head + (head - neck)
(extrapolated top of head), limbs by name. This is an approximation: the official 3DPW
evaluation regresses Human3.6M joints from the SMPL mesh, which needs the SMPL model (not
shipped); results on these joints are labelled ``3dpw-smpl-joints``. 2D ``openpose18_to_h36m17``
-- as COCO with Thorax = OpenPose neck; derived joints take the minimum confidence of their
sources.

2D source (``source_2d``): ``"gt"`` (default, the evaluation protocol of CameraPose, Yang et
al. WACV 2023, Table 4: "using the 2D ground-truth keypoints as the input") projects the
converted camera-frame 3D joints with the sequence's intrinsics ``u = fx X / Z + cx``,
``v = fy Y / Z + cy`` (the SMPL joints, and the combinations of them that Spine / Head are, seen
through the 3DPW camera; confidence 1). ``"openpose"`` feeds the published detections; person-
frames with fewer than ``min_2d_joints`` detected joints (default 1: the detection is missing,
every joint at pixel 0 with confidence 0) are dropped.

Image size is not stored in the files; the videos are 1080 x 1920 (portrait) or 1920 x 1080
(landscape) and the principal point is near the image centre, so the loader picks the
orientation from ``cx`` (``cx < 750`` -> 1080 wide) unless ``image_size`` is given.
"""

from __future__ import annotations

import glob
import os
import pickle
from collections.abc import Sequence

import numpy as np

from jpose import skeleton
from jpose.data.common import (
    LOGGER,
    DataFormatError,
    PoseDataset,
    camera_dataset,
    check_array,
    check_finite,
    require_file,
)

__all__ = ["read_3dpw_sequence", "load_3dpw", "PW3D_SPLITS"]

PW3D_SPLITS = ("train", "validation", "test")
_HINT = "Download sequenceFiles.zip from virtualhumans.mpi-inf.mpg.de/3DPW"


def read_3dpw_sequence(path: str | os.PathLike) -> dict:
    """Read and validate one 3DPW sequence pickle.

    Args:
      path: ``<sequence>.pkl``.

    Returns:
      Dict with ``sequence`` (str), ``joints3d_world`` list of P ``float32 (T, 24, 3)`` m,
      ``poses2d`` list of P ``float32 (T, 18, 3)`` (x, y px, confidence), ``campose_valid`` list
      of P bool ``(T,)``, ``cam_intrinsics`` ``(3, 3)``, ``cam_poses`` ``(T, 4, 4)``,
      ``img_frame_ids`` ``(T,)``.

    Raises:
      FileNotFoundError, DataFormatError (missing key, wrong shape, NaN).
    """
    path = require_file(path, what="3DPW sequence pickle", hint=_HINT)
    try:
        with open(path, "rb") as f:
            raw = pickle.load(f, encoding="latin1")
    except Exception as err:
        raise DataFormatError(f"{path}: cannot unpickle 3DPW sequence: {err}") from err
    if not isinstance(raw, dict):
        raise DataFormatError(f"{path}: expected a pickled dict, got {type(raw).__name__}")
    for k in ("poses2d", "jointPositions", "cam_intrinsics", "cam_poses"):
        if k not in raw:
            raise DataFormatError(f"{path}: missing key {k!r}; keys present: {sorted(raw)}")
    poses = check_array(raw["cam_poses"], source=path, key="cam_poses", shape=(None, 4, 4))
    t = len(poses)
    k_mat = check_array(raw["cam_intrinsics"], source=path, key="cam_intrinsics", shape=(3, 3))
    check_finite(poses, source=path, key="cam_poses")
    people = len(raw["jointPositions"])
    if len(raw["poses2d"]) != people:
        raise DataFormatError(
            f"{path}: key 'poses2d': expected one entry per person ({people}), "
            f"got {len(raw['poses2d'])}"
        )
    valid_raw = raw.get("campose_valid", [np.ones(t)] * people)
    out = {"joints3d_world": [], "poses2d": [], "campose_valid": []}
    for p in range(people):
        key3 = f"jointPositions[{p}]"
        j3 = check_array(raw["jointPositions"][p], source=path, key=key3, shape=(t, None))
        if j3.shape[1] != 72:
            raise DataFormatError(
                f"{path}: key {key3}: expected (T, 72) = 24 SMPL joints x 3, got {j3.shape}"
            )
        out["joints3d_world"].append(check_finite(j3.reshape(t, 24, 3), source=path, key=key3))
        key2 = f"poses2d[{p}]"
        j2 = check_array(raw["poses2d"][p], source=path, key=key2, shape=(t, None, None))
        if j2.shape[1:] != (3, 18):
            raise DataFormatError(
                f"{path}: key {key2}: expected (T, 3, 18) = (x, y, confidence) x 18 OpenPose "
                f"joints, got {j2.shape}"
            )
        out["poses2d"].append(check_finite(j2.transpose(0, 2, 1).copy(), source=path, key=key2))
        v = np.asarray(valid_raw[p]).reshape(-1)
        if v.shape != (t,):
            raise DataFormatError(
                f"{path}: key campose_valid[{p}]: expected {t} values, got {np.shape(valid_raw[p])}"
            )
        out["campose_valid"].append(v.astype(bool))
    out["cam_intrinsics"] = k_mat
    out["cam_poses"] = poses
    out["img_frame_ids"] = np.asarray(raw.get("img_frame_ids", np.arange(t))).reshape(-1)
    seq = raw.get("sequence", os.path.splitext(os.path.basename(path))[0])
    out["sequence"] = seq.decode() if isinstance(seq, bytes) else str(seq)
    return out


def load_3dpw(
    path: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    split: str | None = None,
    only_valid: bool = True,
    source_2d: str = "gt",
    min_2d_joints: int = 1,
    normalization: str = "vp",
    image_size: tuple[int, int] | None = None,
) -> PoseDataset:
    """Load 3DPW sequences as H36M-17 camera-frame 3D with ground-truth or detected 2D.

    Args:
      path: a ``.pkl`` file, a list of them, or a folder (``sequenceFiles`` or one split folder;
        all ``*.pkl`` found, sorted).
      split: with a ``sequenceFiles`` folder: ``"train"``, ``"validation"`` or ``"test"``.
      only_valid: drop frames with ``campose_valid == 0`` (count logged).
      source_2d: ``"gt"`` (3D joints projected with the sequence's intrinsics, confidence 1; the
        protocol of CameraPose Table 4) or ``"openpose"`` (the published detections).
      min_2d_joints: ``"openpose"`` only: drop frames whose 2D detection has fewer OpenPose
        joints with confidence > 0 (default 1 drops missing detections; 0 keeps all, missing
        detections then have confidence 0 at pixel 0); count logged.
      normalization: convention of ``pose2d_norm`` (``"vp"`` or ``"image"``).
      image_size: (width, height) pixels; default inferred from the principal point.

    Returns:
      :class:`PoseDataset` ``"3dpw/<split>"`` with ``pose3d_cam`` metres, ``pose2d_px``,
      ``pose2d_norm``, ``confidence``, intrinsics, extrinsics and labels ``sequence``,
      ``person``, ``frame``, ``img_frame_id``.
    """
    if source_2d not in ("gt", "openpose"):
        raise ValueError(f"unknown 3DPW 2D source {source_2d!r}; expected 'gt' or 'openpose'")
    if source_2d == "gt":
        min_2d_joints = 0
    files = _list_files(path, split)
    parts = []
    dropped_valid = dropped_2d = total = 0
    for f in files:
        seq = read_3dpw_sequence(f)
        k_mat = seq["cam_intrinsics"]
        focal = np.array([k_mat[0, 0], k_mat[1, 1]], np.float32)
        center = np.array([k_mat[0, 2], k_mat[1, 2]], np.float32)
        size = image_size or ((1080, 1920) if center[0] < 750 else (1920, 1080))
        rot, trans = seq["cam_poses"][:, :3, :3], seq["cam_poses"][:, :3, 3]
        for p, (j3w, j2, valid) in enumerate(
            zip(seq["joints3d_world"], seq["poses2d"], seq["campose_valid"])
        ):
            t = len(j3w)
            total += t
            keep = np.ones(t, bool)
            if only_valid:
                dropped_valid += int((keep & ~valid).sum())
                keep &= valid
            if min_2d_joints > 0:
                enough = (j2[..., 2] > 0).sum(-1) >= min_2d_joints
                dropped_2d += int((keep & ~enough).sum())
                keep &= enough
            frames = np.nonzero(keep)[0]
            n = len(frames)
            if n == 0:
                continue
            j3c = np.einsum("tij,tkj->tki", rot[frames], j3w[frames]) + trans[frames, None, :]
            p3, _ = skeleton.smpl24_to_h36m17(j3c.astype(np.float32))
            if source_2d == "gt":
                depth = np.maximum(p3[..., 2:], 1e-6)  # people are metres in front of the camera
                p2 = (p3[..., :2] / depth * focal + center).astype(np.float32)
                conf = np.ones(p2.shape[:-1], np.float32)
            else:
                p2, conf = skeleton.openpose18_to_h36m17(
                    j2[frames, :, :2].astype(np.float32),
                    np.clip(j2[frames, :, 2], 0, 1).astype(np.float32),
                )
            parts.append(
                camera_dataset(
                    f"3dpw/{seq['sequence']}/{p}",
                    p2,
                    focal=focal,
                    center=center,
                    image_size=size,
                    confidence=conf,
                    pose3d_cam=p3,
                    rotation=rot[frames].astype(np.float32),
                    translation=trans[frames].astype(np.float32),
                    labels={
                        "sequence": np.full(n, seq["sequence"]),
                        "person": np.full(n, p, np.int32),
                        "frame": frames.astype(np.int32),
                        "img_frame_id": seq["img_frame_ids"][frames].astype(np.int64),
                    },
                    normalization=normalization,
                )
            )
    if not parts:
        raise DataFormatError(f"3dpw: no frames left in {files} after filtering")
    ds = PoseDataset.concatenate(parts, name=f"3dpw/{split or 'files'}")
    LOGGER.info(
        "3dpw: %d sequences, %d person-frames read, %d kept, 2D %s (campose_valid == 0: %d "
        "dropped; fewer than %d 2D joints: %d dropped)",
        len(files),
        total,
        len(ds),
        source_2d,
        dropped_valid,
        min_2d_joints,
        dropped_2d,
    )
    return ds


def _list_files(path, split: str | None) -> list[str]:
    if isinstance(path, list | tuple):
        return [require_file(p, what="3DPW sequence pickle", hint=_HINT) for p in path]
    path = os.fspath(path)
    if os.path.isfile(path):
        return [path]
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{path}: not found; expected a 3DPW .pkl or folder. {_HINT}")
    if split is not None:
        if split not in PW3D_SPLITS:
            raise ValueError(f"unknown 3DPW split {split!r}; expected {PW3D_SPLITS}")
        path = os.path.join(path, split)
    files = sorted(glob.glob(os.path.join(path, "*.pkl")))
    if not files:
        raise FileNotFoundError(f"{path}: no .pkl files; expected 3DPW sequence files. {_HINT}")
    return files
