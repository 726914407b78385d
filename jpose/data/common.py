"""Shared container, validation and 2D normalisation for the jpose data loaders.

Everything in :mod:`jpose.data` is host-side numpy: loaders read files, validate them, convert
joints to Human3.6M-17 (:data:`jpose.skeleton.H36M17`) and return a :class:`PoseDataset` of flat
per-example arrays. Training code turns the numeric fields into device arrays once
(:mod:`jpose.data.batching`).

Axes and units used throughout the data layer:

* ``N`` examples (one person in one frame seen by one camera), ``J = 17`` joints (H36M-17).
* 3D: metres, camera frame (OpenCV: x right, y down, z forward), ``pose3d_cam [N, J, 3]``.
* 2D: pixels ``pose2d_px [N, J, 2]`` (x right, y down, origin at the image's top-left corner) and
  normalised ``pose2d_norm [N, J, 2]`` (see :func:`normalize_2d` for the conventions).
* Per-joint confidence ``[N, J]`` in ``[0, 1]`` (0 = missing joint, coordinates meaningless).

Bad input raises :class:`DataFormatError` (a ``ValueError``) naming the file, the key and what was
expected; nothing is dropped silently -- every filter logs how many examples it removed through
the ``jpose.data`` logger.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from jpose import skeleton

if TYPE_CHECKING:
    from jpose.camera import Camera

__all__ = [
    "LOGGER",
    "DataFormatError",
    "PoseDataset",
    "camera_dataset",
    "NORMALIZATIONS",
    "normalize_2d",
    "denormalize_2d",
    "normalized_intrinsics",
    "check_array",
    "check_finite",
    "check_normalized",
    "check_pixels",
    "require_file",
    "load_npz",
    "view_groups",
    "subset",
    "holdout_split",
]

LOGGER = logging.getLogger("jpose.data")

NORMALIZATIONS = ("vp", "image", "bbox", "none")
"""2D normalisation conventions understood by :func:`normalize_2d`."""

# |normalised coordinates| stay within a few units; pixel coordinates of a whole body exceed this.
_NORMALISED_LIMIT = 4.0


class DataFormatError(ValueError):
    """A data file (or array) does not have the expected format.

    The message names the file, the key inside it and what was expected.
    """


def _where(source: str | os.PathLike | None, key: str | None) -> str:
    parts = []
    if source is not None:
        parts.append(f"{os.fspath(source)}")
    if key is not None:
        parts.append(f"key {key!r}")
    return ": ".join(parts) if parts else "<array>"


def require_file(path: str | os.PathLike, *, what: str, hint: str = "") -> str:
    """Return ``path`` as a string, or raise ``FileNotFoundError`` naming it and what it holds.

    Args:
      path: file expected to exist.
      what: description of the expected content (e.g. "VideoPose3D 3D poses data_3d_h36m.npz").
      hint: where to get the file (appended to the message).

    Returns:
      ``os.fspath(path)``.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        msg = f"{path}: file not found; expected {what}"
        if hint:
            msg += f". {hint}"
        raise FileNotFoundError(msg)
    return path


def load_npz(path: str | os.PathLike, *, what: str, allow_pickle: bool = False, hint: str = ""):
    """Open an ``.npz`` file after checking that it exists; errors name the file.

    Args:
      path: the ``.npz`` file.
      what: description of the expected content, used in error messages.
      allow_pickle: allow object arrays (VideoPose3D stores pickled dicts).
      hint: where to get the file.

    Returns:
      The ``np.lib.npyio.NpzFile`` (use as a context manager or read keys directly).
    """
    path = require_file(path, what=what, hint=hint)
    try:
        return np.load(path, allow_pickle=allow_pickle)
    except Exception as err:  # zip / pickle errors: re-raise with the file name
        raise DataFormatError(f"{path}: cannot read as .npz ({what}): {err}") from err


def check_array(
    value: Any,
    *,
    source: str | os.PathLike | None,
    key: str,
    shape: Sequence[int | None],
    dtype: Any = np.float32,
) -> np.ndarray:
    """Convert to a numpy array and check its shape; ``None`` in ``shape`` matches any size.

    Args:
      value: array-like.
      source, key: file and key the value came from (for the error message).
      shape: expected shape, ``None`` for free axes.
      dtype: dtype to convert to (``None`` keeps the dtype).

    Returns:
      The array.

    Raises:
      DataFormatError: wrong number of axes or a fixed axis of the wrong size.
    """
    try:
        arr = np.asarray(value) if dtype is None else np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as err:
        raise DataFormatError(
            f"{_where(source, key)}: expected a numeric array of shape {_fmt(shape)}: {err}"
        ) from err
    ok = arr.ndim == len(shape) and all(e is None or e == s for e, s in zip(shape, arr.shape))
    if not ok:
        raise DataFormatError(
            f"{_where(source, key)}: expected shape {_fmt(shape)}, got {tuple(arr.shape)}"
        )
    return arr


def _fmt(shape: Sequence[int | None]) -> str:
    return "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"


def check_finite(arr: np.ndarray, *, source: str | os.PathLike | None, key: str) -> np.ndarray:
    """Raise :class:`DataFormatError` if ``arr`` holds NaN or infinite values (counted, located).

    Args:
      arr: numeric array.
      source, key: as :func:`check_array`.

    Returns:
      ``arr`` unchanged.
    """
    bad = ~np.isfinite(arr)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise DataFormatError(
            f"{_where(source, key)}: expected finite coordinates, found {int(bad.sum())} "
            f"NaN/inf values (first at index {first})"
        )
    return arr


def check_normalized(
    arr: np.ndarray,
    *,
    source: str | os.PathLike | None,
    key: str,
    mask: np.ndarray | None = None,
    limit: float = _NORMALISED_LIMIT,
) -> np.ndarray:
    """Raise if ``arr`` looks like pixel data where normalised coordinates are expected.

    Normalised image coordinates (any of :data:`NORMALIZATIONS` except ``"none"``) stay within a
    few units of zero; values with ``|v| > limit`` mean pixels were passed.

    Args:
      arr: ``[..., 2]`` coordinates.
      source, key: as :func:`check_array`.
      mask: optional boolean ``arr.shape[:-1]`` mask of entries to check (missing joints ignored).
      limit: largest absolute value accepted.

    Returns:
      ``arr`` unchanged.
    """
    vals = np.abs(arr if mask is None else arr[np.asarray(mask, bool)])
    if vals.size and float(vals.max()) > limit:
        raise DataFormatError(
            f"{_where(source, key)}: expected normalised coordinates (|v| <= {limit}), got max "
            f"|v| = {float(vals.max()):.1f}; these look like pixels -- pass pixel data to the "
            "pixel argument or normalise it first"
        )
    return arr


def check_pixels(
    arr: np.ndarray,
    *,
    source: str | os.PathLike | None,
    key: str,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """Raise if ``arr`` looks like normalised data where pixel coordinates are expected.

    Detectable case: more than 8 valid points that all lie within ``[-2, 2]`` -- a whole person
    spans far more than two pixels.

    Args:
      arr: ``[..., 2]`` coordinates.
      source, key: as :func:`check_array`.
      mask: optional boolean ``arr.shape[:-1]`` mask of entries to check.

    Returns:
      ``arr`` unchanged.
    """
    vals = arr if mask is None else arr[np.asarray(mask, bool)]
    vals = vals.reshape(-1, arr.shape[-1])
    if len(vals) > 8 and float(np.abs(vals).max()) <= 2.0:
        raise DataFormatError(
            f"{_where(source, key)}: expected pixel coordinates, but all {len(vals)} valid points "
            "lie within [-2, 2]; these look like normalised coordinates"
        )
    return arr


def normalize_2d(
    uv_px: np.ndarray,
    *,
    mode: str,
    image_size: np.ndarray | None = None,
    bbox: np.ndarray | None = None,
) -> np.ndarray:
    """Normalise pixel coordinates ``[..., J, 2]``.

    Modes:

    * ``"vp"`` (VideoPose3D ``normalize_screen_coordinates``, as :func:`jpose.camera.
      normalize_screen`): ``uv / w * 2 - [1, h / w]``; x in ``[-1, 1]``, aspect ratio kept.
    * ``"image"`` (CameraPose, Yang et al. WACV 2023: "normalised to (-1, 1) by the image width
      and height"): ``u / w * 2 - 1``, ``v / h * 2 - 1``.
    * ``"bbox"``: person-centric, ``(uv - box centre) / (max(box w, box h) / 2)``; for data whose
      image size is unknown (MPII). ``bbox`` is ``[..., 4]`` = (x, y, width, height) pixels.
    * ``"none"``: returns a float32 copy of the pixels.

    Args:
      uv_px: ``[..., J, 2]`` pixels.
      mode: one of :data:`NORMALIZATIONS`.
      image_size: ``[..., 2]`` (width, height) pixels, broadcastable to the leading axes;
        required by ``"vp"`` and ``"image"``.
      bbox: ``[..., 4]`` boxes, required by ``"bbox"``.

    Returns:
      ``[..., J, 2]`` float32 normalised coordinates.
    """
    uv = np.asarray(uv_px, dtype=np.float32)
    if mode == "none":
        return uv.copy()
    if mode in ("vp", "image"):
        if image_size is None:
            raise ValueError(f"normalize_2d(mode={mode!r}) needs image_size (width, height)")
        size = np.asarray(image_size, dtype=np.float32)[..., None, :]
        if np.any(size <= 0):
            raise ValueError(
                f"normalize_2d(mode={mode!r}): image sizes must be positive, got min "
                f"{float(size.min())} (unknown sizes are stored as -1; use mode='bbox')"
            )
        w, h = size[..., 0], size[..., 1]
        if mode == "vp":
            x = uv[..., 0] / w * 2.0 - 1.0
            y = uv[..., 1] / w * 2.0 - h / w
        else:
            x = uv[..., 0] / w * 2.0 - 1.0
            y = uv[..., 1] / h * 2.0 - 1.0
        return np.stack([x, y], axis=-1).astype(np.float32)
    if mode == "bbox":
        centre, half = _box_frame(bbox, "normalize_2d")
        return ((uv - centre) / half).astype(np.float32)
    raise ValueError(f"unknown 2D normalisation {mode!r}; expected one of {NORMALIZATIONS}")


def _box_frame(bbox: np.ndarray | None, caller: str) -> tuple[np.ndarray, np.ndarray]:
    """Centre and half of the longer side of ``[..., 4]`` (x, y, width, height) boxes."""
    if bbox is None:
        raise ValueError(f"{caller}(mode='bbox') needs bbox (x, y, width, height)")
    box = np.asarray(bbox, dtype=np.float32)[..., None, :]
    half = np.maximum(np.maximum(box[..., 2], box[..., 3]), 1e-6)[..., None] / 2.0
    return box[..., :2] + box[..., 2:] / 2.0, half


def denormalize_2d(
    uv_norm: np.ndarray,
    *,
    mode: str,
    image_size: np.ndarray | None = None,
    bbox: np.ndarray | None = None,
) -> np.ndarray:
    """Inverse of :func:`normalize_2d` (same arguments), returning pixels ``[..., J, 2]``."""
    uv = np.asarray(uv_norm, dtype=np.float32)
    if mode == "none":
        return uv.copy()
    if mode in ("vp", "image"):
        if image_size is None:
            raise ValueError(f"denormalize_2d(mode={mode!r}) needs image_size (width, height)")
        size = np.asarray(image_size, dtype=np.float32)[..., None, :]
        w, h = size[..., 0], size[..., 1]
        x = (uv[..., 0] + 1.0) * w / 2.0
        y = (uv[..., 1] + h / w) * w / 2.0 if mode == "vp" else (uv[..., 1] + 1.0) * h / 2.0
        return np.stack([x, y], axis=-1).astype(np.float32)
    if mode == "bbox":
        centre, half = _box_frame(bbox, "denormalize_2d")
        return (uv * half + centre).astype(np.float32)
    raise ValueError(f"unknown 2D normalisation {mode!r}; expected one of {NORMALIZATIONS}")


# array fields of PoseDataset and their shapes after the leading N ("J": joints of the layout)
_ARRAY_FIELDS = {
    "pose2d_px": ("J", 2),
    "pose2d_norm": ("J", 2),
    "confidence": ("J",),
    "pose3d_cam": ("J", 3),
    "focal_px": (2,),
    "center_px": (2,),
    "image_size_px": (2,),
    "rotation": (3, 3),
    "translation": (3,),
}


@dataclasses.dataclass(frozen=True, eq=False)
class PoseDataset:
    """Flat per-example arrays of one dataset split, joints in :attr:`layout` (H36M-17).

    One example is one person in one frame seen by one camera. Optional fields are ``None``
    where a dataset does not have them (2D-only data has no ``pose3d_cam``).

    Attributes:
      name: dataset / split name, e.g. ``"h36m/gt/train"``.
      confidence: ``[N, J]`` float32 in ``[0, 1]``; 0 marks a missing joint.
      pose2d_px: ``[N, J, 2]`` pixels, or ``None`` when only normalised values exist
        (COCO train2017 compact file).
      pose2d_norm: ``[N, J, 2]`` normalised 2D (convention in :attr:`normalization`), or ``None``.
      pose3d_cam: ``[N, J, 3]`` metres, camera frame, absolute (not root-relative), or ``None``.
      focal_px, center_px: ``[N, 2]`` intrinsics (fx, fy), (cx, cy) pixels, or ``None``.
      image_size_px: ``[N, 2]`` (width, height) pixels; -1 where unknown; or ``None``.
      rotation, translation: ``[N, 3, 3]``, ``[N, 3]`` world->camera extrinsics
        (``X_cam = R X_world + t``, metres), or ``None``.
      labels: per-example metadata, each ``[N]`` (subject, action, sequence, camera, frame, ...).
      normalization: convention of ``pose2d_norm`` (one of :data:`NORMALIZATIONS`).
      layout: joint layout name of all joint arrays.
    """

    name: str
    confidence: np.ndarray
    pose2d_px: np.ndarray | None = None
    pose2d_norm: np.ndarray | None = None
    pose3d_cam: np.ndarray | None = None
    focal_px: np.ndarray | None = None
    center_px: np.ndarray | None = None
    image_size_px: np.ndarray | None = None
    rotation: np.ndarray | None = None
    translation: np.ndarray | None = None
    labels: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict)
    normalization: str = "none"
    layout: str = "h36m17"

    def __post_init__(self):
        j = skeleton.get_layout(self.layout).num_joints
        n = int(np.shape(self.confidence)[0])
        for field, tail in _ARRAY_FIELDS.items():
            value = getattr(self, field)
            if value is None:
                continue
            shape = (n, *(j if d == "J" else d for d in tail))
            if tuple(np.shape(value)) != shape:
                raise DataFormatError(
                    f"{self.name}: field {field!r}: expected shape {shape}, "
                    f"got {tuple(np.shape(value))}"
                )
            if field != "image_size_px":
                check_finite(np.asarray(value), source=self.name, key=field)
        if self.normalization not in NORMALIZATIONS:
            raise DataFormatError(
                f"{self.name}: normalization {self.normalization!r} not in {NORMALIZATIONS}"
            )
        for key, value in self.labels.items():
            if np.shape(value)[:1] != (n,):
                raise DataFormatError(
                    f"{self.name}: label {key!r}: expected leading size {n}, "
                    f"got shape {np.shape(value)}"
                )

    # -- sizes ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(np.shape(self.confidence)[0])

    @property
    def num_examples(self) -> int:
        """Number of examples ``N``."""
        return len(self)

    @property
    def has_3d(self) -> bool:
        """Whether 3D camera-frame poses are present."""
        return self.pose3d_cam is not None

    @property
    def pose3d_root_relative(self) -> np.ndarray:
        """``[N, J, 3]`` metres, camera frame, root (pelvis) joint subtracted."""
        if self.pose3d_cam is None:
            raise ValueError(f"{self.name}: dataset has no 3D poses")
        root = skeleton.get_layout(self.layout).root
        return self.pose3d_cam - self.pose3d_cam[:, root : root + 1]

    # -- selection -----------------------------------------------------------------------------
    def take(self, indices: np.ndarray, *, name: str | None = None) -> PoseDataset:
        """Examples at ``indices`` (int array or boolean mask) as a new dataset."""
        idx = np.asarray(indices)
        changes: dict[str, Any] = {
            f: getattr(self, f)[idx] for f in _ARRAY_FIELDS if getattr(self, f) is not None
        }
        changes["labels"] = {k: np.asarray(v)[idx] for k, v in self.labels.items()}
        if name is not None:
            changes["name"] = name
        return dataclasses.replace(self, **changes)

    def filter(self, mask: np.ndarray, *, reason: str) -> PoseDataset:
        """Keep examples where ``mask`` is true; logs how many were removed and why."""
        mask = np.asarray(mask, dtype=bool)
        removed = int((~mask).sum())
        LOGGER.info(
            "%s: %s: kept %d of %d examples (removed %d)",
            self.name,
            reason,
            int(mask.sum()),
            len(self),
            removed,
        )
        return self.take(mask)

    def subsample(self, step: int) -> PoseDataset:
        """Every ``step``-th example (in storage order); logged."""
        if step < 1:
            raise ValueError(f"subsample step must be >= 1, got {step}")
        if step == 1:
            return self
        mask = np.zeros(len(self), dtype=bool)
        mask[::step] = True
        return self.filter(mask, reason=f"subsample every {step}th example")

    def without_3d(self, *, name: str | None = None) -> PoseDataset:
        """The same examples with ``pose3d_cam`` removed (a 2D-only split)."""
        return dataclasses.replace(self, pose3d_cam=None, name=name or self.name)

    # -- export --------------------------------------------------------------------------------
    def arrays(
        self, fields: Iterable[str] | None = None, *, root_relative: bool = True
    ) -> dict[str, np.ndarray]:
        """Numeric fields as a dict of float32 arrays for device placement / batching.

        Args:
          fields: names to export (default: every present array field). ``"pose3d"`` is an
            extra name for the root-relative 3D pose.
          root_relative: also export ``"pose3d"`` (root-relative) when 3D is present and
            ``fields`` is None.

        Returns:
          ``{name: array [N, ...]}``.
        """
        if fields is None:
            fields = [f for f in _ARRAY_FIELDS if getattr(self, f) is not None]
            if root_relative and self.has_3d:
                fields.append("pose3d")
        out = {}
        for f in fields:
            if f == "pose3d":
                out[f] = self.pose3d_root_relative.astype(np.float32)
            elif f in _ARRAY_FIELDS and getattr(self, f) is not None:
                out[f] = np.asarray(getattr(self, f), dtype=np.float32)
            elif f in self.labels and np.issubdtype(np.asarray(self.labels[f]).dtype, np.number):
                out[f] = np.asarray(self.labels[f])
            else:
                raise KeyError(f"{self.name}: no numeric field {f!r}")
        return out

    def summary(self) -> str:
        """One line: name, size and which fields are present."""
        present = [f for f in _ARRAY_FIELDS if getattr(self, f) is not None]
        return f"{self.name}: {len(self)} examples; fields {', '.join(present)}"

    @staticmethod
    def concatenate(datasets: Sequence[PoseDataset], *, name: str) -> PoseDataset:
        """Concatenate datasets with the same fields, labels, layout and normalisation."""
        if not datasets:
            raise ValueError("concatenate needs at least one dataset")
        first = datasets[0]
        for d in datasets[1:]:
            if d.layout != first.layout or d.normalization != first.normalization:
                raise ValueError(
                    f"cannot concatenate {d.name} ({d.layout}, {d.normalization}) with "
                    f"{first.name} ({first.layout}, {first.normalization})"
                )
        changes: dict[str, Any] = {}
        for f in _ARRAY_FIELDS:
            present = [getattr(d, f) is not None for d in datasets]
            if any(present) and not all(present):
                raise ValueError(f"cannot concatenate: field {f!r} missing in some datasets")
            changes[f] = np.concatenate([getattr(d, f) for d in datasets]) if all(present) else None
        keys = set(first.labels).intersection(*(d.labels for d in datasets[1:]))
        changes["labels"] = {k: np.concatenate([d.labels[k] for d in datasets]) for k in keys}
        return dataclasses.replace(first, name=name, **changes)


def camera_dataset(
    name: str,
    pose2d_px: np.ndarray,
    camera: Camera | None = None,
    *,
    normalization: str,
    focal: ArrayLike | None = None,
    center: ArrayLike | None = None,
    image_size: ArrayLike | None = None,
    rotation: np.ndarray | None = None,
    translation: np.ndarray | None = None,
    confidence: np.ndarray | None = None,
    pose3d_cam: np.ndarray | None = None,
    labels: Mapping[str, np.ndarray] | None = None,
) -> PoseDataset:
    """A :class:`PoseDataset` of pixels ``pose2d_px [N, J, 2]``, normalised by ``normalization``.

    The camera is either ``camera`` (a :class:`jpose.camera.Camera` of batch ``(N,)``; its
    intrinsics, image size and extrinsics replace ``focal`` .. ``translation``) or ``focal``,
    ``center``, ``image_size`` (pixels, ``[N, 2]`` or a shared ``[2]``) with optional
    ``rotation [N, 3, 3]`` / ``translation [N, 3]`` (metres, world -> camera). ``confidence
    [N, J]`` defaults to ones; ``pose3d_cam [N, J, 3]`` (metres, camera frame) and ``labels``
    (per-example arrays) are stored as given."""
    if camera is not None:
        focal, center, image_size, rotation, translation = (
            np.asarray(getattr(camera, f), np.float32)
            for f in ("focal", "center", "image_size", "rotation", "translation")
        )
    n = len(pose2d_px)
    focal, center, size = (
        np.broadcast_to(np.asarray(x, np.float32), (n, 2)).copy()
        for x in (focal, center, image_size)
    )
    return PoseDataset(
        name=name,
        confidence=np.ones(pose2d_px.shape[:-1], np.float32) if confidence is None else confidence,
        pose2d_px=pose2d_px,
        pose2d_norm=normalize_2d(pose2d_px, mode=normalization, image_size=size),
        pose3d_cam=pose3d_cam,
        focal_px=focal,
        center_px=center,
        image_size_px=size,
        rotation=rotation,
        translation=translation,
        labels=labels or {},
        normalization=normalization,
    )


def view_groups(
    dataset: PoseDataset,
    *,
    views: Sequence[Any],
    keys: Sequence[str] = ("subject", "sequence", "frame"),
    view_key: str = "camera",
) -> np.ndarray:
    """Indices of the same instant seen by several cameras (multi-view training, Li et al.).

    Args:
      dataset: a dataset with the label columns ``keys`` and ``view_key``.
      views: the camera labels wanted, in output order.
      keys: label columns that identify one instant.
      view_key: label column of the camera.

    Returns:
      int64 ``[M, V]``: row m holds the example index of instant m in each view; instants missing
      in any view are left out (count logged).
    """
    cols = [np.asarray(dataset.labels[k]).astype(str) for k in keys]
    ident = np.array(["|".join(t) for t in zip(*cols)]) if cols else np.zeros(len(dataset), str)
    cams = np.asarray(dataset.labels[view_key])
    tables = [dict(zip(ident[cams == v], np.nonzero(cams == v)[0])) for v in views]
    common = set(tables[0]).intersection(*tables[1:])
    order = sorted(common, key=lambda s: tables[0][s])
    dropped = len(set().union(*tables)) - len(order)
    if dropped:
        LOGGER.info("%s: view_groups: %d instants not seen by all views", dataset.name, dropped)
    return np.array([[t[s] for t in tables] for s in order], dtype=np.int64).reshape(-1, len(views))


def normalized_intrinsics(ds: PoseDataset) -> tuple[np.ndarray, np.ndarray]:
    """Ground-truth intrinsics in the units of ``ds.pose2d_norm`` (pinhole, no distortion).

    With ``u_norm = f_n X / Z + c_n``: VideoPose3D (``"vp"``) normalisation ``uv / w * 2 - [1,
    h / w]`` gives ``f_n = 2 f / w`` and ``c_n = (2 c_x / w - 1, 2 c_y / w - h / w)``; image
    normalisation (``"image"``) gives ``f_n = (2 f_x / w, 2 f_y / h)``, ``c_n = 2 c / (w, h) - 1``.

    Args:
      ds: a dataset with ``focal_px``, ``center_px`` and ``image_size_px``.

    Returns:
      ``(focal [N, 2], center [N, 2])`` float32.
    """
    if ds.focal_px is None or ds.center_px is None or ds.image_size_px is None:
        raise ValueError(f"{ds.name}: needs focal_px, center_px and image_size_px")
    f, c = ds.focal_px.astype(np.float64), ds.center_px.astype(np.float64)
    w, h = ds.image_size_px[:, 0:1].astype(np.float64), ds.image_size_px[:, 1:2].astype(np.float64)
    if ds.normalization == "vp":
        focal = 2.0 * f / w
        center = np.concatenate([2.0 * c[:, :1] / w - 1.0, 2.0 * c[:, 1:] / w - h / w], -1)
    elif ds.normalization == "image":
        size = np.concatenate([w, h], -1)
        focal, center = 2.0 * f / size, 2.0 * c / size - 1.0
    else:
        raise ValueError(f"{ds.name}: normalisation {ds.normalization!r} has no pinhole form")
    return focal.astype(np.float32), center.astype(np.float32)


def subset(ds: PoseDataset, max_examples: int, *, seed: int) -> PoseDataset:
    """A seeded random subset of at most ``max_examples`` examples (order kept); 0 keeps all."""
    if not max_examples or len(ds) <= max_examples:
        return ds
    idx = np.sort(np.random.default_rng(seed).choice(len(ds), max_examples, replace=False))
    LOGGER.info("%s: using a random subset of %d of %d examples", ds.name, max_examples, len(ds))
    return ds.take(idx)


def holdout_split(
    ds: PoseDataset,
    fraction: float,
    *,
    seed: int,
    group_keys: Sequence[str] = ("sequence", "person"),
) -> tuple[PoseDataset, PoseDataset]:
    """Hold a validation split out of a *training* split (model selection never sees the test
    split).

    Whole groups (the first of ``group_keys`` in ``ds.labels``: CMU sequences, synthetic
    people) go to validation, in random order, until it has ``fraction`` of the examples (groups
    that would overshoot by half are skipped), so neighbouring frames or other camera views of
    one sequence are not on both sides; without such a label, a random ``fraction`` of examples.

    Args:
      ds: the training split.
      fraction: share of examples held out, in (0, 1).
      seed: selection seed.
      group_keys: label names tried as groups.

    Returns:
      ``(train, validation)``.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation fraction must be in (0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    n = len(ds)
    key = next((k for k in group_keys if k in ds.labels), None)
    held = np.zeros(n, bool)
    if key is not None and len(np.unique(np.asarray(ds.labels[key]).astype(str))) > 1:
        groups = np.asarray(ds.labels[key]).astype(str)
        names, counts = np.unique(groups, return_counts=True)
        target, total = fraction * n, 0
        for i in rng.permutation(len(names)):
            if total >= target:
                break
            if total and total + counts[i] > 1.5 * target:  # a large group would overshoot
                continue
            held |= groups == names[i]
            total += counts[i]
    else:
        held[rng.choice(n, max(1, int(round(fraction * n))), replace=False)] = True
    if held.all():
        raise ValueError(f"{ds.name}: holding out {fraction} leaves no training examples")
    train = dataclasses.replace(ds.take(np.flatnonzero(~held)), name=ds.name)
    val = dataclasses.replace(ds.take(np.flatnonzero(held)), name=f"{ds.name} (validation)")
    LOGGER.info("validation split: %d of %d examples of %s held out (%s)", len(val), n, ds.name,
                f"whole {key}s" if key else "random examples")  # fmt: skip
    return train, val
