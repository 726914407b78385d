"""Human3.6M in the VideoPose3D (VP) ``.npz`` formats.

Files (users bring their own licensed copies; jpose cannot redistribute them):

* ``data_3d_h36m.npz`` -- key ``positions_3d``: a pickled dict
  ``positions_3d[subject][sequence] = float32 (T, 32, 3)`` world coordinates in **metres**
  (z up), 50 fps, made by VP's ``data/prepare_data_h36m.py`` from the official Human3.6M files.
  VP's converter already leaves out S11 ``Directions`` (corrupted video).
* ``data_2d_h36m_<source>.npz`` -- key ``positions_2d``: ``positions_2d[subject][sequence]`` =
  list of one array per camera (in :data:`H36M_CAMERA_IDS` order), ``(T, K, 2)`` pixels (or
  ``(T, K, 3)`` with a confidence channel); key ``metadata``: dict with ``layout_name``
  (``"h36m"``, ``"coco"`` or ``"mpii"``; absent in the ``gt`` file, meaning ``"h36m"``),
  ``num_joints`` and ``keypoints_symmetry``. Known sources: :data:`H36M_2D_SOURCES`.

Camera parameters are VP's published ones (:func:`jpose.camera.h36m_camera`). The loader returns
camera-frame 3D poses (H36M-17, metres, absolute; root-relative via
:attr:`PoseDataset.pose3d_root_relative`), 2D in pixels and normalised, per subject / action /
sequence / camera / frame, in a :class:`~jpose.data.common.PoseDataset`.

Splits (:data:`H36M_SPLITS`): ``train`` = S1, S5, S6, S7, S8; ``test`` = S9, S11;
``drover_p1`` = S11 only (Drover et al. ECCV-W 2018, protocol 1); ``all``.

Action names are normalised (:func:`normalize_action_name`): the take number is dropped
(``"Walking 1"`` -> ``"Walking"``) and subject-specific spellings are unified
(``"TakingPhoto"`` -> ``"Photo"``, ``"WalkingDog"`` -> ``"WalkDog"``,
``"WalkingTogether"`` -> ``"WalkTogether"``). ``WalkDog`` and ``WalkTogether`` are actions of their
own, not ``Walking``. The original key is kept in the ``sequence`` label.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from jpose import camera as jcam
from jpose import skeleton
from jpose.data.common import (
    LOGGER,
    DataFormatError,
    PoseDataset,
    camera_dataset,
    check_array,
    check_finite,
    check_pixels,
    load_npz,
)
from jpose.data.virtual_cameras import project_world

__all__ = [
    "H36M_CAMERA_IDS",
    "H36M_SPLITS",
    "H36M_ACTIONS",
    "H36M_ACTION_ALIASES",
    "H36M_2D_SOURCES",
    "normalize_action_name",
    "split_subjects",
    "read_h36m_3d",
    "read_h36m_2d",
    "load_h36m",
]

H36M_CAMERA_IDS = ("54138969", "55011271", "58860488", "60457274")
"""Camera ids in VP's (and :func:`jpose.camera.h36m_camera`'s) index order 0-3."""

H36M_SPLITS: dict[str, tuple[str, ...]] = {
    "train": ("S1", "S5", "S6", "S7", "S8"),
    "test": ("S9", "S11"),
    "drover_p1": ("S11",),
    "all": ("S1", "S5", "S6", "S7", "S8", "S9", "S11"),
}
"""Standard subject splits (``drover_p1``: Drover et al.'s protocol 1 evaluates on S11 only)."""

H36M_ACTIONS = (
    "Directions", "Discussion", "Eating", "Greeting", "Phoning", "Photo", "Posing", "Purchases",
    "Sitting", "SittingDown", "Smoking", "Waiting", "WalkDog", "Walking", "WalkTogether",
)  # fmt: skip
"""The 15 canonical action names after :func:`normalize_action_name`."""

H36M_ACTION_ALIASES = {
    "TakingPhoto": "Photo",
    "WalkingDog": "WalkDog",
    "WalkingTogether": "WalkTogether",
}
"""Spellings used by some subjects / tools, mapped to the canonical name."""

H36M_2D_SOURCES: dict[str, str] = {
    "gt": "ground truth projected by VP with the distortion model (h36m layout)",
    "cpn_ft_h36m_dbb": "CPN fine-tuned on Human3.6M, detected boxes (h36m layout)",
    "detectron_ft_h36m": "Mask R-CNN fine-tuned on Human3.6M (h36m layout)",
    "detectron_pt_coco": "Mask R-CNN pretrained on COCO (coco layout)",
    "sh_ft_h36m": "Stacked Hourglass fine-tuned on Human3.6M (h36m layout)",
    "sh_pt_mpii": "Stacked Hourglass pretrained on MPII (mpii layout, 16 joints)",
}
"""VP's published 2D sources (file ``data_2d_h36m_<source>.npz``)."""

_VP_LAYOUTS = {"h36m": skeleton.H36M17, "coco": skeleton.COCO17, "mpii": skeleton.MPII16}

_HINT = (
    "Create it with VideoPose3D's data/prepare_data_h36m.py from your licensed Human3.6M copy "
    "(see jpose README, 'Data')"
)


def normalize_action_name(name: str) -> str:
    """Canonical action of a Human3.6M sequence key.

    Args:
      name: sequence key, e.g. ``"Walking 1"``, ``"TakingPhoto"``, ``"WalkDog 1"``.

    Returns:
      The action, e.g. ``"Walking"``, ``"Photo"``, ``"WalkDog"`` (take number dropped, aliases in
      :data:`H36M_ACTION_ALIASES` applied). Unknown names pass through (first word).
    """
    base = str(name).strip().split(" ")[0]
    return H36M_ACTION_ALIASES.get(base, base)


def split_subjects(split: str) -> tuple[str, ...]:
    """Subjects of a named split (:data:`H36M_SPLITS`); raises ``ValueError`` if unknown."""
    if split not in H36M_SPLITS:
        raise ValueError(f"unknown Human3.6M split {split!r}; expected one of {list(H36M_SPLITS)}")
    return H36M_SPLITS[split]


def _pickled_dict(npz, path: str, key: str) -> dict:
    if key not in npz.files:
        raise DataFormatError(f"{path}: missing key {key!r}; keys present: {npz.files}")
    value = npz[key]
    if value.dtype != object or value.shape != ():
        raise DataFormatError(
            f"{path}: key {key!r}: expected a pickled dict (0-d object array, VideoPose3D "
            f"format), got dtype {value.dtype} shape {value.shape}"
        )
    out = value.item()
    if not isinstance(out, dict):
        raise DataFormatError(f"{path}: key {key!r}: expected a dict, got {type(out).__name__}")
    return out


def read_h36m_3d(path: str | os.PathLike) -> dict[str, dict[str, np.ndarray]]:
    """Read and validate VP's ``data_3d_h36m.npz``.

    Returns:
      ``{subject: {sequence: float32 (T, 17, 3)}}`` world coordinates in metres, converted from
      VP's 32 joints to H36M-17 (:func:`jpose.skeleton.h36m32_to_h36m17`); files that already
      hold 17 joints are accepted as is.

    Raises:
      FileNotFoundError: missing file. DataFormatError: wrong keys, joint counts, NaN values,
      or values that look like millimetres (|x| > 20 m).
    """
    path = os.fspath(path)
    with load_npz(
        path, what="VideoPose3D 3D poses (positions_3d)", allow_pickle=True, hint=_HINT
    ) as npz:
        data = _pickled_dict(npz, path, "positions_3d")
    out: dict[str, dict[str, np.ndarray]] = {}
    for subject, seqs in data.items():
        out[subject] = {}
        for seq, arr in seqs.items():
            key = f"positions_3d[{subject!r}][{seq!r}]"
            a = check_array(arr, source=path, key=key, shape=(None, None, 3))
            if a.shape[1] == 32:
                a = skeleton.h36m32_to_h36m17(a)[0]
            elif a.shape[1] != 17:
                raise DataFormatError(
                    f"{path}: key {key}: expected 32 (VP) or 17 joints, got {a.shape[1]}"
                )
            check_finite(a, source=path, key=key)
            if a.size and float(np.abs(a).max()) > 20.0:
                raise DataFormatError(
                    f"{path}: key {key}: expected metres (|x| < 20), got max "
                    f"{float(np.abs(a).max()):.0f}; millimetres? divide by 1000"
                )
            out[subject][seq] = a.astype(np.float32)
    return out


def read_h36m_2d(
    path: str | os.PathLike,
) -> tuple[dict[str, dict[str, list[np.ndarray | None]]], dict[str, Any]]:
    """Read and validate a VP ``data_2d_h36m_<source>.npz`` file.

    Returns:
      ``(positions_2d, metadata)``: ``positions_2d[subject][sequence]`` = list of 4 entries, each
      ``float32 (T, 17, 3)`` = H36M-17 pixels plus confidence (ones where the file has none), or
      ``None`` for a camera missing in the file; ``metadata`` with ``layout_name`` (of the file,
      before conversion) and ``num_joints``.

    Raises:
      FileNotFoundError, DataFormatError (unknown layout, wrong joint count, NaN, normalised data).
    """
    path = os.fspath(path)
    with load_npz(
        path,
        what="VideoPose3D 2D keypoints (positions_2d, metadata)",
        allow_pickle=True,
        hint=_HINT,
    ) as npz:
        data = _pickled_dict(npz, path, "positions_2d")
        metadata = _pickled_dict(npz, path, "metadata") if "metadata" in npz.files else {}
    layout_name = metadata.get("layout_name", "h36m")
    if layout_name not in _VP_LAYOUTS:
        raise DataFormatError(
            f"{path}: key 'metadata'['layout_name']: expected one of {list(_VP_LAYOUTS)}, "
            f"got {layout_name!r}"
        )
    layout = _VP_LAYOUTS[layout_name]
    num_joints = int(metadata.get("num_joints", layout.num_joints))
    if num_joints != layout.num_joints:
        raise DataFormatError(
            f"{path}: key 'metadata'['num_joints']: expected {layout.num_joints} for layout "
            f"{layout_name!r}, got {num_joints}"
        )
    out: dict[str, dict[str, list[np.ndarray | None]]] = {}
    for subject, seqs in data.items():
        out[subject] = {}
        for seq, per_cam in seqs.items():
            cams: list[np.ndarray | None] = []
            per_cam = list(per_cam) if per_cam is not None else []
            for ci in range(len(H36M_CAMERA_IDS)):
                arr = per_cam[ci] if ci < len(per_cam) else None
                key = f"positions_2d[{subject!r}][{seq!r}][{ci}]"
                if arr is None or np.size(arr) == 0:
                    cams.append(None)
                    continue
                a = check_array(arr, source=path, key=key, shape=(None, None, None))
                if a.shape[1] != layout.num_joints or a.shape[2] not in (2, 3):
                    raise DataFormatError(
                        f"{path}: key {key}: expected shape (T, {layout.num_joints}, 2 or 3) for "
                        f"layout {layout_name!r}, got {a.shape}"
                    )
                check_finite(a, source=path, key=key)
                check_pixels(a[..., :2], source=path, key=key)
                conf = np.clip(a[..., 2], 0.0, 1.0) if a.shape[2] == 3 else None
                pts, conf = skeleton.convert_layout(
                    a[..., :2], conf, source=layout, target=skeleton.H36M17
                )
                cams.append(np.concatenate([pts, conf[..., None]], -1).astype(np.float32))
            out[subject][seq] = cams
    return out, {"layout_name": layout_name, "num_joints": num_joints}


def load_h36m(
    data_dir: str | os.PathLike | None = None,
    *,
    source: str | None = "gt",
    split: str = "train",
    subjects: Sequence[str] | None = None,
    actions: Sequence[str] | None = None,
    cameras: Sequence[int] = (0, 1, 2, 3),
    subsample: int = 1,
    drop_s11_directions: bool = False,
    normalization: str = "vp",
    with_3d: bool = True,
    path_3d: str | os.PathLike | None = None,
    path_2d: str | os.PathLike | None = None,
) -> PoseDataset:
    """Load Human3.6M (VP format) as camera-frame 2D-3D pairs.

    Args:
      data_dir: folder with ``data_3d_h36m.npz`` and ``data_2d_h36m_<source>.npz``.
      source: 2D source (:data:`H36M_2D_SOURCES`); ``None`` projects the 3D poses with the
        cameras (VP's distortion model) instead of reading a 2D file. Unknown names raise unless
        ``path_2d`` is given explicitly.
      split: ``"train"``, ``"test"``, ``"drover_p1"`` or ``"all"`` (ignored if ``subjects``).
      subjects: explicit subject list; each must be in the file(s).
      actions: keep only these canonical actions (:data:`H36M_ACTIONS`); ``None`` keeps all.
      cameras: camera indices 0-3 to include.
      subsample: keep every ``subsample``-th frame of each sequence (50 fps / subsample).
      drop_s11_directions: drop S11's ``Directions`` sequence as VP does (logged either way).
      normalization: convention of ``pose2d_norm`` (``"vp"`` or ``"image"``).
      with_3d: read the 3D file (``False``: 2D-only dataset, no 3D file needed).
      path_3d: explicit 3D file (overrides ``data_dir``).
      path_2d: explicit 2D file (overrides ``data_dir`` / ``source``).

    Returns:
      :class:`PoseDataset` ``"h36m/<source>/<split>"`` with ``pose3d_cam [N, 17, 3]`` metres,
      ``pose2d_px``, ``pose2d_norm``, ``confidence``, intrinsics, extrinsics and labels
      ``subject``, ``action``, ``sequence``, ``camera`` (index), ``camera_id``, ``frame``.

    Raises:
      FileNotFoundError: a file is missing. ValueError: unknown source / split / camera.
      DataFormatError: subject absent, wrong joint count, NaN, length mismatch.
    """
    if source is not None and path_2d is None and source not in H36M_2D_SOURCES:
        raise ValueError(
            f"unknown Human3.6M 2D source {source!r}; expected one of {list(H36M_2D_SOURCES)} "
            "(or pass path_2d= for another file, or source=None to project the 3D poses)"
        )
    for c in cameras:
        if not 0 <= int(c) < 4:
            raise ValueError(f"Human3.6M camera index must be in 0..3, got {c}")
    if subsample < 1:
        raise ValueError(f"subsample must be >= 1, got {subsample}")
    if normalization not in ("vp", "image", "none"):
        raise ValueError(f"normalization must be 'vp', 'image' or 'none', got {normalization!r}")
    subjects = tuple(subjects) if subjects is not None else split_subjects(split)
    if data_dir is not None:
        if path_3d is None:
            path_3d = os.path.join(data_dir, "data_3d_h36m.npz")
        if path_2d is None and source is not None:
            path_2d = os.path.join(data_dir, f"data_2d_h36m_{source}.npz")
    if with_3d and path_3d is None:
        raise ValueError("load_h36m: give data_dir or path_3d (or with_3d=False)")
    if source is not None and path_2d is None:
        raise ValueError("load_h36m: give data_dir or path_2d for a 2D source")
    if not with_3d and source is None:
        raise ValueError("load_h36m: with_3d=False needs a 2D source")

    pos3d = read_h36m_3d(path_3d) if with_3d else None
    pos2d = read_h36m_2d(path_2d)[0] if source is not None else None
    ref = pos3d if pos3d is not None else pos2d
    for s in subjects:
        for name, d, p in (("positions_3d", pos3d, path_3d), ("positions_2d", pos2d, path_2d)):
            if d is not None and s not in d:
                raise DataFormatError(
                    f"{os.fspath(p)}: key {name}[{s!r}]: subject {s} absent; subjects in file: "
                    f"{sorted(d)}"
                )

    chunks = []  # (subject, action, sequence, camera index, frames, 3D, 2D) per sequence x camera
    cams_used: dict[tuple[str, int], jcam.Camera] = {}
    counts = {
        "sequences": 0,
        "missing_camera": 0,
        "trimmed_frames": 0,
        "dropped_s11_dir": 0,
        "skipped_action": 0,
        "missing_2d_sequence": 0,
    }
    for s in subjects:
        seq_names = sorted(ref[s])
        if pos2d is not None and pos3d is not None:
            extra = sorted(set(pos2d[s]) - set(pos3d[s]))
            if extra:
                LOGGER.info("h36m: %s: 2D sequences without 3D (not used): %s", s, extra)
        for seq in seq_names:
            action = normalize_action_name(seq)
            if s == "S11" and seq == "Directions":
                if drop_s11_directions:
                    counts["dropped_s11_dir"] += 1
                    LOGGER.info("h36m: dropping S11 'Directions' (drop_s11_directions=True)")
                    continue
                LOGGER.info("h36m: keeping S11 'Directions' (drop_s11_directions=False)")
            if actions is not None and action not in actions:
                counts["skipped_action"] += 1
                continue
            if action not in H36M_ACTIONS:
                LOGGER.warning("h36m: %s %r: non-standard action name %r", s, seq, action)
            world = pos3d[s][seq] if pos3d is not None else None
            if pos2d is not None and seq not in pos2d[s]:
                counts["missing_2d_sequence"] += 1
                LOGGER.warning(
                    "h36m: %s: %s[%r][%r] absent; sequence skipped", path_2d, "positions_2d", s, seq
                )
                continue
            counts["sequences"] += 1
            for ci in cameras:
                ci = int(ci)
                cams_used.setdefault((s, ci), jcam.h36m_camera(s, ci))
                kp = None
                if pos2d is not None:
                    kp = pos2d[s][seq][ci]
                    if kp is None:
                        counts["missing_camera"] += 1
                        LOGGER.warning(
                            "h36m: %s: positions_2d[%r][%r][%d] (camera %s) missing; skipped",
                            path_2d,
                            s,
                            seq,
                            ci,
                            H36M_CAMERA_IDS[ci],
                        )
                        continue
                if world is not None:
                    t = len(world)
                    if kp is not None:
                        if len(kp) < t:
                            raise DataFormatError(
                                f"{os.fspath(path_2d)}: key positions_2d[{s!r}][{seq!r}][{ci}]: "
                                f"expected at least {t} frames (3D length), got {len(kp)}"
                            )
                        if len(kp) > t:  # some videos have extra frames (VP trims them too)
                            counts["trimmed_frames"] += len(kp) - t
                            kp = kp[:t]
                else:
                    t = len(kp)
                frames = np.arange(0, t, subsample)
                w3 = world[frames] if world is not None else None
                k2 = kp[frames] if kp is not None else None
                chunks.append((s, action, seq, ci, frames, w3, k2))
    if counts["trimmed_frames"]:
        LOGGER.info(
            "h36m: trimmed %d extra 2D frames beyond the 3D length (as VP does)",
            counts["trimmed_frames"],
        )
    if not chunks:
        raise DataFormatError(f"h36m: no sequences selected for subjects {subjects} ({counts})")
    subj, action, seq, chunk_cam, frames, p3, kp = zip(*chunks)
    lens = [len(f) for f in frames]
    # each chunk's (subject, camera) position in cams_used, repeated over its frames
    which = np.repeat([list(cams_used).index(k) for k in zip(subj, chunk_cam)], lens)
    cam_i = np.repeat(chunk_cam, lens).astype(np.int32)
    cams = jax.tree.map(lambda *f: np.stack(f).astype(np.float32)[which], *cams_used.values())
    pose3d = conf = None
    if pos3d is not None:
        pose3d, p2 = project_world(np.concatenate(p3), cams, distortion="h36m")
    if pos2d is not None:
        kp_all = np.concatenate(kp)
        p2, conf = kp_all[..., :2].copy(), kp_all[..., 2].copy()
    name = (
        f"h36m/{source or 'projected'}/{split if subjects == split_subjects(split) else 'custom'}"
    )
    ds = camera_dataset(
        name,
        p2,
        cams,
        normalization=normalization,
        confidence=conf,
        pose3d_cam=pose3d,
        labels={
            "subject": np.repeat(subj, lens),
            "action": np.repeat(action, lens),
            "sequence": np.repeat(seq, lens),
            "camera": cam_i,
            "camera_id": np.asarray(H36M_CAMERA_IDS)[cam_i],
            "frame": np.concatenate(frames).astype(np.int32),
        },
    )
    LOGGER.info(
        "%s: %d examples from %d sequences x cameras %s (subsample %d); %s",
        name,
        len(ds),
        counts["sequences"],
        tuple(cameras),
        subsample,
        counts,
    )
    return ds
