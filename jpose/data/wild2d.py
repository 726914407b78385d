"""In-the-wild 2D keypoints (COCO, MPII) converted to Human3.6M-17 with per-joint confidence.

Sources:

* COCO person keypoints, official JSON (``person_keypoints_{train,val}2017.json`` from
  https://cocodataset.org): :func:`load_coco_keypoints_json`.
* MPII Human Pose in the JSON form used by HRNet / mmpose (``mpii_{train,val}.json``: a list of
  ``{"image", "center", "scale", "joints" (16 x 2, MATLAB 1-based), "joints_vis" (16)}``):
  :func:`load_mpii_json`.
* The compact files of ``../shared/data`` (developer / CI data, not part of the package; see its
  README): ``wild2d_coco.npz`` (val2017, pixels), ``wild2d_coco_train.npz`` (train2017, pixels
  with image sizes; use it wherever 2D geometry matters), ``wild2d_coco_train_norm.npz`` (the
  same persons divided by image width / height, no sizes: aspect ratios lost) and
  ``wild2d_mpii.npz`` (MPII validation, pixels, no image sizes: ``image_sizes`` of
  :func:`load_wild2d_npz` supplies them): :func:`load_wild2d_npz`.

Confidence from visibility (COCO convention 0 = not labelled, 1 = labelled but occluded,
2 = visible): ``0 -> 0``, ``1 -> occluded_confidence`` (default 1.0: the position is annotated),
``2 -> 1``. Joints are converted with :func:`jpose.skeleton.coco17_to_h36m17` /
:func:`~jpose.skeleton.mpii16_to_h36m17`; a derived joint (e.g. Hip = mid-hips) gets the minimum
confidence of its sources, so it is missing when any source is missing. Normalised coordinates of
missing joints (confidence 0) are set to 0.

Normalisation (``pose2d_norm``, see :func:`jpose.data.common.normalize_2d`): ``"image"`` is
CameraPose's (-1, 1) by image width and height; ``"vp"`` VideoPose3D's (needs the aspect ratio);
``"bbox"`` person-centric, for MPII whose image sizes are not in the files.

Filtering (CameraPose keeps about 10k MPII people "by checking the joint annotations"):
``min_joints`` labelled source joints and ``min_h36m_joints`` H36M-17 joints with confidence > 0;
the numbers kept and removed are logged.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from jpose import skeleton
from jpose.data.common import (
    LOGGER,
    DataFormatError,
    PoseDataset,
    check_array,
    check_finite,
    check_normalized,
    check_pixels,
    load_npz,
    normalize_2d,
    require_file,
)

__all__ = [
    "visibility_to_confidence",
    "tight_boxes",
    "keypoints_to_h36m17",
    "load_coco_keypoints_json",
    "load_mpii_json",
    "load_wild2d_npz",
    "read_compact_npz",
]

_SOURCE_LAYOUTS = {"coco": skeleton.COCO17, "mpii": skeleton.MPII16}


def tight_boxes(points: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """``[N, 4]`` (x, y, w, h) boxes of the valid joints of ``points [N, J, 2]`` (the MPII
    convention for ``bbox`` normalisation); all-zero for a person without valid joints."""
    valid = np.asarray(valid, bool)
    lo = np.where(valid[..., None], points, np.inf).min(1)
    hi = np.where(valid[..., None], points, -np.inf).max(1)
    box = np.concatenate([lo, hi - lo], -1)
    return np.where(valid.any(-1)[:, None], box, 0.0).astype(np.float32)


def visibility_to_confidence(
    visibility: np.ndarray, *, occluded_confidence: float = 1.0
) -> np.ndarray:
    """Per-joint confidence ``[..., K]`` from COCO-convention visibility flags ``[..., K]``.

    Args:
      visibility: 0 not labelled, 1 labelled but occluded, 2 visible.
      occluded_confidence: confidence given to occluded (flag 1) joints.

    Returns:
      float32 confidence: 0, ``occluded_confidence`` or 1.
    """
    vis = np.asarray(visibility)
    return np.where(vis >= 2, 1.0, np.where(vis == 1, occluded_confidence, 0.0)).astype(np.float32)


def keypoints_to_h36m17(
    keypoints: np.ndarray,
    visibility: np.ndarray,
    *,
    layout: str,
    occluded_confidence: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """COCO-17 / MPII-16 keypoints and visibility to H36M-17 points and confidence.

    Args:
      keypoints: ``[..., K, 2]`` (pixels or normalised).
      visibility: ``[..., K]`` COCO-convention flags.
      layout: ``"coco"`` or ``"mpii"`` (or ``"coco17"`` / ``"mpii16"``).
      occluded_confidence: confidence of labelled-but-occluded joints.

    Returns:
      ``(points [..., 17, 2], confidence [..., 17])`` float32.
    """
    lay = _SOURCE_LAYOUTS.get(layout) or skeleton.get_layout(layout)
    conf = visibility_to_confidence(visibility, occluded_confidence=occluded_confidence)
    pts, conf = skeleton.convert_layout(
        np.asarray(keypoints, np.float32), conf, source=lay, target=skeleton.H36M17
    )
    return pts.astype(np.float32), conf.astype(np.float32)


def _build(
    *,
    name: str,
    source: str,
    layout: str,
    keypoints: np.ndarray | None,
    visibility: np.ndarray,
    image_size: np.ndarray,
    labels: dict[str, np.ndarray],
    normalization: str,
    min_joints: int,
    min_h36m_joints: int,
    occluded_confidence: float = 1.0,
    normalized: bool = False,
) -> PoseDataset:
    """Filter by joint counts, convert to H36M-17 and normalise (by ``labels["bbox"]`` for
    ``"bbox"``)."""
    n_all = len(visibility)
    labelled = (visibility > 0).sum(-1)
    keep = labelled >= min_joints
    pts, conf = keypoints_to_h36m17(
        keypoints, visibility, layout=layout, occluded_confidence=occluded_confidence
    )
    keep_h36m = (conf > 0).sum(-1) >= min_h36m_joints
    LOGGER.info(
        "%s: %d persons; fewer than %d labelled %s joints: %d removed; fewer than %d H36M-17 "
        "joints: %d more removed; %d kept",
        name,
        n_all,
        min_joints,
        layout,
        int((~keep).sum()),
        min_h36m_joints,
        int((keep & ~keep_h36m).sum()),
        int((keep & keep_h36m).sum()),
    )
    keep &= keep_h36m
    pts, conf = pts[keep], conf[keep]
    size = image_size[keep].astype(np.float32)
    box = labels["bbox"][keep] if "bbox" in labels else None
    if not normalized:
        px = pts
        if normalization in ("vp", "image") and np.any(size <= 0):
            raise DataFormatError(
                f"{source}: key 'image_size': normalization {normalization!r} needs image sizes, "
                f"but {int((size <= 0).any(-1).sum())} persons have unknown size (-1); use "
                "normalization='bbox' or give image sizes"
            )
        norm = normalize_2d(px, mode=normalization, image_size=size, bbox=box)
    else:  # coordinates are x / w, y / h in [0, 1]
        px = None
        if normalization == "image":
            norm = pts * 2.0 - 1.0
        elif normalization == "none":
            norm = pts.copy()
        else:
            raise DataFormatError(
                f"{source}: key 'keypoints_normalized': coordinates are x / width, y / height "
                f"with unknown image size; normalization {normalization!r} cannot be computed "
                "(use 'image' or 'none')"
            )
    norm = np.where(conf[..., None] > 0, norm, 0.0).astype(np.float32)
    return PoseDataset(
        name=name,
        confidence=conf,
        pose2d_px=px,
        pose2d_norm=norm,
        image_size_px=size,
        labels={k: np.asarray(v)[keep] for k, v in labels.items()},
        normalization=normalization,
    )


def load_wild2d_npz(
    path: str | os.PathLike,
    *,
    normalization: str | None = None,
    min_joints: int = 1,
    min_h36m_joints: int = 0,
    occluded_confidence: float = 1.0,
    image_sizes: Mapping[str, tuple[int, int]] | None = None,
) -> PoseDataset:
    """Load one of the compact shared files (``wild2d_coco.npz``, ``wild2d_coco_train_norm.npz``,
    ``wild2d_mpii.npz``) as H36M-17 2D.

    Args:
      path: the file.
      normalization: ``"image"`` (CameraPose), ``"vp"``, ``"bbox"`` or ``"none"``. Default:
        ``"image"`` when image sizes are known or the file is normalised, else ``"bbox"``.
      min_joints: keep persons with at least this many labelled source joints.
      min_h36m_joints: keep persons with at least this many H36M-17 joints of confidence > 0
        (17 = complete skeleton).
      occluded_confidence: confidence of labelled-but-occluded joints.
      image_sizes: ``{image name: (width, height)}`` for persons whose file stores no size
        (``wild2d_mpii.npz``): makes ``"image"`` / ``"vp"`` normalisation possible.

    Returns:
      2D-only :class:`PoseDataset` ``"<dataset>/<split>"``; ``pose2d_px`` is ``None`` for the
      normalised train file. Labels: ``image_id``, ``image_name``, ``person_index``,
      ``num_keypoints``, ``bbox`` (pixels, or normalised for the train file).
    """
    f = read_compact_npz(path, image_sizes=image_sizes)
    if normalization is None:
        normalization = "image" if (f["normalized"] or np.all(f["image_size"] > 0)) else "bbox"
    return _build(
        name=f["name"],
        source=f["path"],
        layout=f["layout"],
        keypoints=f["keypoints"],
        normalized=f["normalized"],
        visibility=f["visibility"],
        image_size=f["image_size"],
        labels=f["labels"],
        normalization=normalization,
        min_joints=min_joints,
        min_h36m_joints=min_h36m_joints,
        occluded_confidence=occluded_confidence,
    )


def read_compact_npz(
    path: str | os.PathLike, *, image_sizes: Mapping[str, tuple[int, int]] | None = None
) -> dict[str, Any]:
    """Read and check one compact shared file, in its source layout (see
    :func:`load_wild2d_npz`).

    Returns:
      ``{"path", "name": "<dataset>/<split>", "layout": "coco" | "mpii", "keypoints" [P, K, 2]
      (pixels, or x / width, y / height when "normalized"), "normalized", "visibility" [P, K],
      "image_size" [P, 2] (-1: unknown), "labels"}``.
    """
    path = os.fspath(path)
    with load_npz(path, what="compact wild 2D keypoints (see ../shared/data/README.md)") as npz:
        files = set(npz.files)
        for k in ("visibility", "image_id", "joint_names"):
            if k not in files:
                raise DataFormatError(f"{path}: missing key {k!r}; keys present: {sorted(files)}")
        names = [str(n) for n in npz["joint_names"]]
        layout = {17: "coco", 16: "mpii"}.get(len(names))
        if layout is None or list(_SOURCE_LAYOUTS[layout].joint_names) != names:
            raise DataFormatError(
                f"{path}: key 'joint_names': expected the COCO-17 or MPII-16 joint order, "
                f"got {len(names)} joints {names}"
            )
        k = len(names)
        vis = check_array(
            npz["visibility"], source=path, key="visibility", shape=(None, k), dtype=np.int32
        )
        n = len(vis)
        size = (
            check_array(
                npz["image_size"], source=path, key="image_size", shape=(n, 2), dtype=np.int32
            )
            if "image_size" in files
            else np.full((n, 2), -1)
        )
        key = next((c for c in ("keypoints", "keypoints_normalized") if c in files), None)
        if key is None:
            raise DataFormatError(
                f"{path}: expected key 'keypoints' (pixels) or 'keypoints_normalized'; "
                f"keys present: {sorted(files)}"
            )
        kp = check_array(npz[key], source=path, key=key, shape=(n, k, 2))
        check_finite(kp, source=path, key=key)
        normalized = key == "keypoints_normalized"
        if normalized:
            check_normalized(kp, source=path, key=key, mask=vis > 0, limit=2.0)
        else:
            check_pixels(kp, source=path, key=key, mask=vis > 0)
        box_key = "bbox_normalized" if normalized else "bbox"
        bbox = None
        if box_key in files:
            bbox = check_array(npz[box_key], source=path, key=box_key, shape=(n, 4))
        if image_sizes:
            if "image_name" not in files:
                raise DataFormatError(f"{path}: image_sizes given but the file has no image_name")
            names_img = [str(nm) for nm in npz["image_name"]]
            given = np.array([image_sizes.get(nm, (-1, -1)) for nm in names_img], np.int32)
            size = np.where((size > 0).all(-1, keepdims=True), size, given)
        labels = {"image_id": npz["image_id"].astype(np.int64)}
        for key in ("image_name", "person_index", "num_keypoints"):
            if key in files:
                labels[key] = npz[key]
        if bbox is not None:
            labels["bbox"] = bbox
        dataset = str(npz["dataset"]) if "dataset" in files else layout
        split = str(npz["split"]).split(" ")[0] if "split" in files else "unknown"
    return {
        "path": path,
        "name": f"{dataset}/{split}",
        "layout": layout,
        "keypoints": kp,
        "normalized": normalized,
        "visibility": vis,
        "image_size": size,
        "labels": labels,
    }


def _read_json(path: str | os.PathLike, *, what: str, hint: str = "") -> tuple[str, Any]:
    path = require_file(path, what=what, hint=hint)
    try:
        with open(path) as f:
            return path, json.load(f)
    except json.JSONDecodeError as err:
        raise DataFormatError(f"{path}: not valid JSON: {err}") from err


def _person_index(image: np.ndarray) -> np.ndarray:
    """Order of each row within its run of equal ``image`` values (rows grouped by image)."""
    out = np.zeros(len(image), np.int32)
    for i in range(1, len(image)):
        out[i] = out[i - 1] + 1 if image[i] == image[i - 1] else 0
    return out


def load_coco_keypoints_json(
    path: str | os.PathLike,
    *,
    normalization: str = "image",
    min_joints: int = 1,
    min_h36m_joints: int = 0,
    include_crowd: bool = False,
    occluded_confidence: float = 1.0,
) -> PoseDataset:
    """Load an official COCO person-keypoints JSON file as H36M-17 2D.

    Args:
      path: e.g. ``annotations/person_keypoints_val2017.json``.
      normalization: ``"image"`` (CameraPose), ``"vp"``, ``"bbox"`` or ``"none"``.
      min_joints: keep annotations with at least this many labelled keypoints (COCO
        ``num_keypoints``; 0 keeps annotations without keypoints).
      min_h36m_joints: keep persons with at least this many H36M-17 joints of confidence > 0.
      include_crowd: keep ``iscrowd == 1`` annotations (excluded by default, as usual).
      occluded_confidence: confidence of labelled-but-occluded joints.

    Returns:
      2D-only :class:`PoseDataset` ``"coco/<file stem>"`` with labels ``image_id``,
      ``image_name``, ``annotation_id``, ``person_index`` (order within the image),
      ``num_keypoints``, ``bbox`` (x, y, w, h pixels).
    """
    path, raw = _read_json(path, what="COCO person keypoints JSON", hint="see cocodataset.org")
    for key in ("images", "annotations"):
        if key not in raw:
            raise DataFormatError(f"{path}: missing key {key!r} (COCO format)")
    images = {int(im["id"]): im for im in raw["images"]}
    anns = [a for a in raw["annotations"] if "keypoints" in a]
    crowd = [a for a in anns if a.get("iscrowd", 0)]
    if not include_crowd and crowd:
        LOGGER.info("%s: %d crowd annotations removed (include_crowd=False)", path, len(crowd))
        anns = [a for a in anns if not a.get("iscrowd", 0)]
    anns.sort(key=lambda a: (int(a["image_id"]), int(a.get("id", 0))))
    n = len(anns)
    kp = np.zeros((n, 17, 3), np.float32)
    for i, a in enumerate(anns):
        v = np.asarray(a["keypoints"], np.float32)
        if v.shape != (51,):
            raise DataFormatError(
                f"{path}: key annotations[id={a.get('id')}]['keypoints']: expected 51 values "
                f"(17 x (x, y, v)), got {v.shape[0]}"
            )
        kp[i] = v.reshape(17, 3)
    check_finite(kp, source=path, key="annotations[*]['keypoints']")
    vis = kp[..., 2].astype(np.int32)
    missing = [int(a["image_id"]) for a in anns if int(a["image_id"]) not in images]
    if missing:
        raise DataFormatError(
            f"{path}: key 'images': {len(missing)} annotations refer to unknown image ids "
            f"(first {missing[0]})"
        )
    ims = [images[int(a["image_id"])] for a in anns]
    size = np.array([[im.get("width", -1), im.get("height", -1)] for im in ims], np.int32)
    image_id = np.array([int(a["image_id"]) for a in anns], np.int64)
    labels = {
        "image_id": image_id,
        "image_name": np.array([str(im.get("file_name", "")) for im in ims]),
        "annotation_id": np.array([int(a.get("id", -1)) for a in anns], np.int64),
        "person_index": _person_index(image_id),
        "num_keypoints": (vis > 0).sum(-1).astype(np.int32),
        "bbox": np.array([a.get("bbox", [0, 0, 0, 0]) for a in anns], np.float32).reshape(n, 4),
    }
    return _build(
        name=f"coco/{os.path.splitext(os.path.basename(path))[0]}",
        source=path,
        layout="coco",
        keypoints=kp[..., :2],
        visibility=vis,
        image_size=size,
        labels=labels,
        normalization=normalization,
        min_joints=min_joints,
        min_h36m_joints=min_h36m_joints,
        occluded_confidence=occluded_confidence,
    )


def load_mpii_json(
    path: str | os.PathLike,
    *,
    normalization: str = "bbox",
    image_sizes: Mapping[str, tuple[int, int]] | None = None,
    one_based: bool = True,
    min_joints: int = 1,
    min_h36m_joints: int = 0,
) -> PoseDataset:
    """Load MPII annotations in the HRNet / mmpose JSON form as H36M-17 2D.

    Args:
      path: e.g. ``mpii_train.json`` / ``mpii_val.json`` (list of dicts with ``image``,
        ``joints`` 16 x 2, ``joints_vis`` 16, ``center``, ``scale``).
      normalization: ``"bbox"`` (default; MPII image sizes are not in the file), or ``"image"`` /
        ``"vp"`` together with ``image_sizes``.
      image_sizes: ``{image name: (width, height)}``.
      one_based: coordinates are MATLAB 1-based (as in these files); 1 is subtracted.
      min_joints: keep persons with at least this many labelled joints.
      min_h36m_joints: keep persons with at least this many H36M-17 joints with confidence > 0.

    Returns:
      2D-only :class:`PoseDataset` ``"mpii/<file stem>"``. ``joints_vis`` > 0 gives confidence 1
      (these files do not distinguish occluded joints). Labels ``image_name``, ``image_id``
      (numeric part of the name), ``person_index``, ``bbox`` (tight box of the labelled joints),
      ``center``, ``scale``.
    """
    path, raw = _read_json(path, what="MPII annotations JSON (HRNet/mmpose format)")
    if not isinstance(raw, list):
        raise DataFormatError(f"{path}: expected a JSON list of person annotations")
    n = len(raw)
    kp = np.zeros((n, 16, 2), np.float32)
    vis = np.zeros((n, 16), np.int32)
    for i, a in enumerate(raw):
        j = np.asarray(a.get("joints"), np.float32)
        if j.shape != (16, 2):
            raise DataFormatError(
                f"{path}: key [{i}]['joints']: expected (16, 2) MPII joints, got {j.shape}"
            )
        kp[i] = j - (1.0 if one_based else 0.0)
        vis[i] = 2 * (np.asarray(a.get("joints_vis", np.ones(16)), np.float32) > 0)
    check_finite(kp, source=path, key="[*]['joints']")
    # MPII marks unlabelled joints with (-1, -1) 1-based -> visibility 0 regardless of joints_vis
    vis = np.where((kp < -1.5).all(-1), 0, vis)
    names = [str(a.get("image", "")) for a in raw]
    size = np.array([(image_sizes or {}).get(nm, (-1, -1)) for nm in names], np.int32)
    image_id = np.array([int("".join(c for c in nm if c.isdigit()) or -1) for nm in names])
    labels = {
        "image_name": np.array(names),
        "image_id": image_id.astype(np.int64),
        "person_index": _person_index(np.array(names)),
        "bbox": tight_boxes(kp, vis > 0),
        "center": np.array([a.get("center", (0, 0)) for a in raw], np.float32).reshape(n, 2),
        "scale": np.array([a.get("scale", 0) for a in raw], np.float32),
    }
    return _build(
        name=f"mpii/{os.path.splitext(os.path.basename(path))[0]}",
        source=path,
        layout="mpii",
        keypoints=kp,
        visibility=vis,
        image_size=size,
        labels=labels,
        normalization=normalization,
        min_joints=min_joints,
        min_h36m_joints=min_h36m_joints,
    )
