"""Reading 2D keypoint files: COCO results / annotations, arrays, OpenPose folders.

Formats, layouts and scores are described in :mod:`jpose.inference` (the ``jpose`` command).
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import re
import zipfile
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from jpose import skeleton
from jpose.data.wild2d import visibility_to_confidence

__all__ = ["KeypointInput", "load_keypoints", "resolve_layout"]


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
    by_count: dict[int, list[str]] = {}
    for lay in sorted(skeleton.LAYOUTS.values(), key=lambda lay: lay.num_joints):
        by_count.setdefault(lay.num_joints, []).append(lay.name)
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
    return {
        str(im["id"]): (im["width"], im["height"])
        for im in raw["images"]
        if "id" in im and "width" in im and "height" in im
    }


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


def _boxes(boxes: list, path: str) -> np.ndarray | None:
    """``[N, 4]`` (x, y, w, h) pixels of per-person entries, NaN where one has none (lifting then
    uses that person's tight box); None when no entry has a box."""
    if all(b is None for b in boxes):
        return None
    out = np.full((len(boxes), 4), np.nan)
    for i, b in enumerate(boxes):
        try:
            out[i] = np.nan if b is None else np.asarray(b, np.float64).reshape(4)
        except (TypeError, ValueError):
            raise ValueError(f"{path}: entry [{i}] box must be [x, y, w, h], got {b!r}") from None
    return out


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
    return {
        "keypoints": kp[..., :2],
        "scores": kp[..., 2],
        "image_id": image_id,
        "track_id": track_id if all(has_track) else None,
        "score": np.asarray(score, np.float64),
        "bbox": _boxes(bbox, path),
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
    # in frame-number (or name) order
    for (file, raw), frame in sorted(zip(frames, ids, strict=True), key=lambda f: f[1]):
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
    return _from_openpose([(f, _read_json(f, "OpenPose keypoints")) for f in files], path)


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
        "bbox": _boxes([a.get("bbox") for a in anns], path),
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
    if arrays.get("scores") is not None:
        scores = np.asarray(arrays["scores"], np.float64)
        if scores.shape != (n, j):
            raise ValueError(f"{path}: 'scores' must have shape {(n, j)}, got {scores.shape}")
    elif kp.shape[-1] == 3:
        scores = kp[..., 2]
    else:
        scores = np.ones((n, j))
    out: dict[str, Any] = {"keypoints": kp[..., :2], "scores": scores}
    for key in ("image_id", "frame", "track_id", "score", "bbox"):
        if arrays.get(key) is not None:
            v = np.asarray(arrays[key], np.float64 if key == "bbox" else None)
            shape = (n, 4) if key == "bbox" else (n,)
            if v.shape != shape:
                raise ValueError(f"{path}: '{key}' must have shape {shape}, got {v.shape}")
            out[key] = v
    out["image_id"] = out.pop("image_id", out.pop("frame", None))
    if arrays.get("image_size") is not None:
        size = np.asarray(arrays["image_size"], np.float64)
        if size.shape == (2,):
            size = np.broadcast_to(size, (n, 2))
        if size.shape != (n, 2):
            raise ValueError(
                f"{path}: 'image_size' must have shape (2,) or ({n}, 2) (width, height), got "
                f"{size.shape}"
            )
        out["image_size"] = size
    if arrays.get("layout") is not None:
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
    lookups = [
        {str(k): v for k, v in (image_sizes or {}).items()},
        {} if annotations is None else _image_sizes_from_annotations(annotations),
        parsed.get("sizes", {}),
    ]
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
    person = parsed.get("score")  # a parser stores None when the file has no person scores
    person = np.full(n, np.nan) if person is None else np.asarray(person, np.float64)
    person = np.where(np.isfinite(person), person, scores.mean(-1))  # default: the joints' mean
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
