"""MPI-INF-3DHP test set (Mehta et al., 3DV 2017), mapped to Human3.6M-17.

Files: the published test set ``mpi_inf_3dhp_test_set/TS<k>/annot_data.mat`` (k = 1..6), from
https://vcai.mpi-inf.mpg.de/3dhp-dataset/ (run the dataset's ``get_testset.sh``). Each file
holds, per frame of the sequence (MATLAB shapes as documented in the test set's README):

* ``univ_annot3``: 3 x 17 x 1 x T, camera-frame 3D in mm, rescaled to the "universal" skeleton
  height used by Human3.6M (the evaluation target);
* ``annot3``: the same without rescaling (the subject's real size; consistent with ``annot2``);
* ``annot2``: 2 x 17 x 1 x T, pixels;
* ``valid_frame``: 1 x T (frames with 0 are not evaluated);
* ``activity_annotation``: 1 x T, activity id 1..7 (Standing/Walking, Exercising, Sitting,
  Reaching/Crouching, On the floor, Sports, Miscellaneous).

The official files are MATLAB v7.3 (HDF5): reading them needs ``h5py`` (optional, not a jpose
dependency); h5py returns the axes reversed, ``(T, 1, 17, 3)``. Without h5py, export once with
MATLAB/Octave or another machine into ``annot_data.npz`` next to the ``.mat`` with the **same
keys** (either axis order is accepted: ``(T, 1, 17, C)``, ``(T, 17, C)`` or MATLAB's
``(C, 17, 1, T)``), e.g. in Python with h5py::

    with h5py.File("TS1/annot_data.mat") as f:
        np.savez("TS1/annot_data.npz", **{k: np.array(f[k]) for k in
                 ("univ_annot3", "annot3", "annot2", "valid_frame", "activity_annotation")})

Older MATLAB (< v7.3) files are read with ``scipy.io.loadmat`` when scipy is installed.

Sequences and image sizes (:data:`MPI3DHP_TEST_SEQUENCES`): TS1-TS4 studio, 2048 x 2048 pixels
(TS1, TS2 green screen = ``"gs"``; TS3, TS4 no green screen = ``"no_gs"``); TS5, TS6 outdoor,
1920 x 1080. PCK tables report these three scenes (:data:`MPI3DHP_SCENES`).

Joints: the 17 test-set joints (:data:`jpose.skeleton.MPI3DHP17`) converted by
:func:`jpose.skeleton.mpi3dhp17_to_h36m17` (Hip = pelvis, Spine = spine, Thorax = neck,
Neck/Nose = head, Head = head_top, limbs by name). Intrinsics are not in the files; the loader
estimates ``(fx, fy, cx, cy)`` per sequence by least squares from ``annot3`` and ``annot2``
(``u = fx X/Z + cx``), which reproduces the 2D annotations to sub-pixel accuracy on
distortion-free data.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np

from jpose import skeleton
from jpose.data.common import (
    LOGGER,
    DataFormatError,
    PoseDataset,
    camera_dataset,
    check_finite,
    require_file,
)

__all__ = [
    "MPI3DHP_TEST_SEQUENCES",
    "MPI3DHP_SCENES",
    "MPI3DHP_ACTIVITIES",
    "read_3dhp_annotations",
    "estimate_intrinsics",
    "load_mpi3dhp_test",
]

MPI3DHP_TEST_SEQUENCES: dict[str, dict] = {
    "TS1": {"image_size": (2048, 2048), "scene": "gs"},
    "TS2": {"image_size": (2048, 2048), "scene": "gs"},
    "TS3": {"image_size": (2048, 2048), "scene": "no_gs"},
    "TS4": {"image_size": (2048, 2048), "scene": "no_gs"},
    "TS5": {"image_size": (1920, 1080), "scene": "outdoor"},
    "TS6": {"image_size": (1920, 1080), "scene": "outdoor"},
}
"""Test sequences: image (width, height) in pixels and scene type."""

MPI3DHP_SCENES = {"gs": ("TS1", "TS2"), "no_gs": ("TS3", "TS4"), "outdoor": ("TS5", "TS6")}
"""Scene splits of the PCK tables (green screen, no green screen, outdoor)."""

MPI3DHP_ACTIVITIES = {
    1: "Standing/Walking", 2: "Exercising", 3: "Sitting", 4: "Reaching/Crouching",
    5: "On the floor", 6: "Sports", 7: "Miscellaneous",
}  # fmt: skip
"""``activity_annotation`` ids."""

_KEYS = ("univ_annot3", "annot3", "annot2", "valid_frame", "activity_annotation")
_HINT = "Download the MPI-INF-3DHP test set (get_testset.sh) from vcai.mpi-inf.mpg.de/3dhp-dataset"


def _read_mat(path: str) -> dict[str, np.ndarray]:
    try:
        import h5py  # optional

        with h5py.File(path, "r") as f:
            return {k: np.array(f[k]) for k in _KEYS if k in f}
    except (ImportError, OSError):  # no h5py, or not HDF5 (an older MATLAB file): try scipy
        pass
    try:
        import scipy.io

        mat = scipy.io.loadmat(path)
        return {k: np.asarray(mat[k]) for k in _KEYS if k in mat}
    except (ImportError, NotImplementedError):  # no scipy, or a v7.3 file without h5py
        pass
    except ValueError as err:
        raise DataFormatError(f"{path}: cannot read MATLAB file: {err}") from err
    raise DataFormatError(
        f"{path}: MATLAB v7.3 (HDF5) file needs h5py (pip install h5py), or export it to "
        "annot_data.npz with the same keys (see jpose.data.mpi3dhp docstring)"
    )


def read_3dhp_annotations(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read one test sequence's annotations (``annot_data.mat`` or an ``.npz`` export).

    Args:
      path: ``.../TS<k>/annot_data.mat`` or ``.npz`` with the same keys.

    Returns:
      Dict with ``univ_annot3`` (and ``annot3`` if present) ``float32 (T, 17, 3)`` mm,
      ``annot2`` ``(T, 17, 2)`` pixels, ``valid_frame`` bool ``(T,)`` and
      ``activity_annotation`` int ``(T,)`` (zeros if absent).

    Raises:
      FileNotFoundError, DataFormatError (missing key, wrong shape, NaN).
    """
    path = require_file(path, what="MPI-INF-3DHP test annotations (annot_data)", hint=_HINT)
    if path.endswith(".npz"):
        with np.load(path) as npz:
            raw = {k: np.asarray(npz[k]) for k in _KEYS if k in npz.files}
    else:
        raw = _read_mat(path)
    for k in ("univ_annot3", "annot2", "valid_frame"):
        if k not in raw:
            raise DataFormatError(f"{path}: missing key {k!r}; keys present: {sorted(raw)}")
    out = {"annot2": _joints(raw["annot2"], 2, path, "annot2")}
    t = len(out["annot2"])
    for k in ("univ_annot3", "annot3"):
        if k in raw:
            out[k] = _joints(raw[k], 3, path, k)
            if len(out[k]) != t:
                raise DataFormatError(f"{path}: key {k!r}: expected {t} frames, got {len(out[k])}")
    for k in ("valid_frame", "activity_annotation"):
        if k not in raw:
            out[k] = np.zeros(t, np.int32)
            continue
        v = np.asarray(raw[k]).reshape(-1)
        if v.shape != (t,):
            raise DataFormatError(
                f"{path}: key {k!r}: expected {t} values (one per frame), got {np.shape(raw[k])}"
            )
        out[k] = v.astype(np.int32)
    out["valid_frame"] = out["valid_frame"].astype(bool)
    return out


def _joints(arr: np.ndarray, dims: int, path: str, key: str) -> np.ndarray:
    """Bring (T,1,17,C) / (T,17,C) / MATLAB (C,17,1,T) / (C,17,T) to float32 (T, 17, C)."""
    a = np.asarray(arr, dtype=np.float64)
    if a.ndim == 4 and a.shape[1:] == (1, 17, dims):
        a = a[:, 0]
    elif a.ndim == 4 and a.shape[:3] == (dims, 17, 1):
        a = a[:, :, 0, :].transpose(2, 1, 0)
    elif a.ndim == 3 and a.shape[1:] == (17, dims):
        pass
    elif a.ndim == 3 and a.shape[:2] == (dims, 17):
        a = a.transpose(2, 1, 0)
    else:
        raise DataFormatError(
            f"{path}: key {key!r}: expected 17 joints x {dims} coordinates per frame, shape "
            f"(T, 1, 17, {dims}), (T, 17, {dims}) or MATLAB ({dims}, 17, 1, T); got {a.shape}"
        )
    return check_finite(a.astype(np.float32), source=path, key=key)


def estimate_intrinsics(
    points_cam: np.ndarray, uv_px: np.ndarray, *, mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, float]:
    """Least-squares pinhole intrinsics from camera-frame 3D points and their pixels.

    Solves ``u = fx X / Z + cx`` and ``v = fy Y / Z + cy`` in the least-squares sense.

    Args:
      points_cam: ``[..., J, 3]`` camera-frame points (any unit, Z > 0).
      uv_px: ``[..., J, 2]`` pixels.
      mask: optional boolean ``[...]`` of frames to use.

    Returns:
      ``(focal [2], center [2], rms_px)``: pixels, and the RMS reprojection residual in pixels.
    """
    p = np.asarray(points_cam, np.float64)
    uv = np.asarray(uv_px, np.float64)
    if mask is not None:
        p, uv = p[np.asarray(mask, bool)], uv[np.asarray(mask, bool)]
    p, uv = p.reshape(-1, 3), uv.reshape(-1, 2)
    keep = p[:, 2] > 1e-6
    p, uv = p[keep], uv[keep]
    if len(p) < 2:
        raise ValueError("estimate_intrinsics: need at least 2 points in front of the camera")
    focal, center, res = np.zeros(2), np.zeros(2), []
    for a in range(2):
        x = p[:, a] / p[:, 2]
        design = np.stack([x, np.ones_like(x)], -1)
        sol, *_ = np.linalg.lstsq(design, uv[:, a], rcond=None)
        focal[a], center[a] = sol
        res.append(design @ sol - uv[:, a])
    rms = float(np.sqrt(np.mean(np.square(np.stack(res)))))
    return focal.astype(np.float32), center.astype(np.float32), rms


def _find_file(root: str, seq: str) -> str:
    for name in (f"{seq}/annot_data.mat", f"{seq}/annot_data.npz", f"{seq}.npz"):
        path = os.path.join(root, name)
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(
        f"{os.path.join(root, seq, 'annot_data.mat')}: file not found (also tried annot_data.npz "
        f"and {seq}.npz); expected the MPI-INF-3DHP test annotations of {seq}. {_HINT}"
    )


def load_mpi3dhp_test(
    root: str | os.PathLike,
    *,
    sequences: Sequence[str] | None = None,
    scenes: Sequence[str] | None = None,
    only_valid: bool = True,
    universal: bool = True,
    normalization: str = "vp",
    image_sizes: Mapping[str, tuple[int, int]] | None = None,
) -> PoseDataset:
    """Load the MPI-INF-3DHP test set as H36M-17 camera-frame 2D-3D pairs.

    Args:
      root: the ``mpi_inf_3dhp_test_set`` folder (``TS<k>/annot_data.mat`` or ``.npz``).
      sequences: subset of ``TS1``..``TS6`` (default all, or those of ``scenes``).
      scenes: subset of ``"gs"``, ``"no_gs"``, ``"outdoor"`` (:data:`MPI3DHP_SCENES`).
      only_valid: keep only frames with ``valid_frame == 1`` (the evaluated frames; the number
        removed is logged). ``False`` keeps all and stores the flag in label ``valid``.
      universal: 3D from ``univ_annot3`` (the standard evaluation target); ``False`` uses
        ``annot3`` (real body size, consistent with the 2D).
      normalization: convention of ``pose2d_norm`` (``"vp"`` or ``"image"``).
      image_sizes: override (width, height) per sequence.

    Returns:
      :class:`PoseDataset` ``"mpi3dhp/test"``: ``pose3d_cam`` metres, ``pose2d_px`` /
      ``pose2d_norm`` / ``confidence`` (ones), estimated intrinsics, labels ``sequence``,
      ``scene``, ``frame``, ``activity``, ``valid``.
    """
    root = os.fspath(root)
    if scenes is not None:
        for sc in scenes:
            if sc not in MPI3DHP_SCENES:
                raise ValueError(f"unknown 3DHP scene {sc!r}; expected {list(MPI3DHP_SCENES)}")
        sequences = [s for sc in scenes for s in MPI3DHP_SCENES[sc]]
    sequences = tuple(sequences) if sequences is not None else tuple(MPI3DHP_TEST_SEQUENCES)
    parts = []
    for seq in sequences:
        if seq not in MPI3DHP_TEST_SEQUENCES:
            raise ValueError(f"unknown 3DHP test sequence {seq!r}; expected TS1..TS6")
        path = _find_file(root, seq)
        ann = read_3dhp_annotations(path)
        key3 = "univ_annot3" if universal else "annot3"
        if key3 not in ann:
            raise DataFormatError(f"{path}: missing key {key3!r}")
        p3 = ann[key3] / 1000.0  # mm -> m
        uv = ann["annot2"]
        valid = ann["valid_frame"]
        size = (image_sizes or {}).get(seq, MPI3DHP_TEST_SEQUENCES[seq]["image_size"])
        fit3 = ann.get("annot3", ann["univ_annot3"])
        focal, center, rms = estimate_intrinsics(fit3, uv, mask=valid if valid.any() else None)
        LOGGER.info(
            "mpi3dhp: %s: %d frames, %d valid; intrinsics f=%s c=%s (fit rms %.2f px%s)",
            seq,
            len(uv),
            int(valid.sum()),
            np.round(focal, 1),
            np.round(center, 1),
            rms,
            "" if "annot3" in ann else ", from univ_annot3",
        )
        frames = np.arange(len(uv))
        if only_valid:
            frames = frames[valid]
        p3h = skeleton.mpi3dhp17_to_h36m17(p3[frames].astype(np.float32))[0]
        p2h = skeleton.mpi3dhp17_to_h36m17(uv[frames])[0]
        n = len(frames)
        parts.append(
            camera_dataset(
                f"mpi3dhp/test/{seq}",
                p2h,
                focal=focal,
                center=center,
                image_size=size,
                pose3d_cam=p3h,
                labels={
                    "sequence": np.full(n, seq),
                    "scene": np.full(n, MPI3DHP_TEST_SEQUENCES[seq]["scene"]),
                    "frame": frames.astype(np.int32),
                    "activity": ann["activity_annotation"][frames],
                    "valid": valid[frames],
                },
                normalization=normalization,
            )
        )
    ds = PoseDataset.concatenate(parts, name="mpi3dhp/test")
    if only_valid:
        LOGGER.info("mpi3dhp: kept %d valid frames (valid_frame == 1) of %s", len(ds), sequences)
    return ds
