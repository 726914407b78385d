"""The data block of a run's config (``config.json["data"]``): the splits a run trains and is
evaluated on, loaded from a plain mapping (a ``dict`` read from ``config.json``, or the
experiments' ``ConfigDict``). Every field of the block is read here, so a run and a later
evaluation of it load the same data.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import pathlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from jpose.data.common import LOGGER, PoseDataset, subset

__all__ = ["data_normalization", "eval_splits", "load_splits"]


class _Block:
    """Attribute access to a (nested) mapping: ``block.h36m.dir`` for ``data["h36m"]["dir"]``."""

    def __init__(self, mapping: Mapping[str, Any]) -> None:
        self._m = mapping

    def _wrap(self, value: Any) -> Any:
        return _Block(value) if isinstance(value, Mapping) else value

    def __getattr__(self, name: str) -> Any:
        try:
            return self._wrap(self._m[name])
        except KeyError:
            raise AttributeError(f"the data block has no field {name!r}") from None

    def __getitem__(self, name: str) -> Any:
        return self.__getattr__(name)

    def __contains__(self, name: object) -> bool:
        return name in self._m

    def __iter__(self) -> Iterator[str]:
        return iter(self._m)

    def get(self, name: str, default: Any = None) -> Any:
        return self._wrap(self._m[name]) if name in self._m else default

    def items(self) -> Iterator[tuple[str, Any]]:
        return ((k, self._wrap(v)) for k, v in self._m.items())


def load_splits(data: Mapping[str, Any]) -> dict[str, PoseDataset]:
    """Load the splits a run's data block names (``config.json["data"]``, a mapping).

    Fields: ``preset`` (``synthetic | cmu | cmu+coco | h36m``), ``seed``, ``data_dir`` (shared
    data, default ``jpose.data.shared_data_dir()``), ``synthetic`` (sizes, see
    ``jpose.data.SyntheticConfig``), ``cmu_subsample``, ``cmu_num_cameras``, ``cmu_cameras_per``
    (``frame`` | ``sequence``), ``h36m`` (paths and
    options, see below), ``wild2d`` (2D-only files for ``h36m``), ``cross`` (``mpi3dhp_root``,
    ``pw3d_path``: cross-dataset test sets, loaded when given) and ``max_examples`` (per split,
    0 = all).

    ``h36m`` sub-fields: ``dir`` (with ``data_3d_h36m.npz`` / ``data_2d_h36m_<source>.npz``),
    ``path_3d``, ``path_2d``, ``source`` (2D source, ``gt`` / ``cpn_ft_h36m_dbb`` / ...),
    ``subsample``, ``test_subsample``, ``normalization``.

    Returns:
      ``{split: PoseDataset}`` with ``train_3d`` and ``test`` always, ``train_2d`` (2D only),
      ``val_2d`` (2D only, evaluation) and further 3D test sets where configured.
    """
    from jpose import data as jdata

    cfg = _Block(data)
    preset = cfg.preset
    seed = int(cfg.seed)
    if preset == "synthetic":
        s = cfg.synthetic
        sc = jdata.SyntheticConfig(
            num_people={k: int(v) for k, v in s.num_people.items()},
            poses_per_person=int(s.poses_per_person),
            views_per_pose=int(s.views_per_pose),
        )
        out = jdata.load_preset("synthetic", seed=seed, synthetic_config=sc)
    elif preset in ("cmu", "cmu+coco"):
        out = jdata.load_preset(
            preset,
            seed=seed,
            data_dir=cfg.get("data_dir") or None,
            cmu_subsample=int(cfg.cmu_subsample),
            cmu_num_cameras=int(cfg.cmu_num_cameras),
            cmu_cameras_per=str(cfg.get("cmu_cameras_per", "frame")),  # older config.json: frame
            # configs saved before the field existed have no cross-domain split
            cmu_actions_3d=[
                a.strip() for a in cfg.get("cmu_actions_3d", "").split(",") if a.strip()
            ],
        )
    elif preset == "h36m":
        h = cfg.h36m
        shared = {
            "source": h.source,
            "normalization": h.normalization,
            "path_3d": h.get("path_3d") or None,
            "path_2d": h.get("path_2d") or None,
        }
        out = {
            "train_3d": jdata.load_h36m(
                h.dir or None, split="train", subsample=int(h.subsample), **shared
            ),
            "test": jdata.load_h36m(
                h.dir or None, split="test", subsample=int(h.test_subsample), **shared
            ),
        }
        w = cfg.wild2d
        wild2d = functools.partial(
            jdata.load_wild2d_npz,
            normalization=h.normalization,
            min_h36m_joints=int(w.min_h36m_joints),
        )
        parts = [wild2d(w.coco_train)] if w.get("coco_train") else []
        if w.get("mpii"):
            # one normalisation for every split: the shared MPII file has no image sizes, so it
            # can be image/vp-normalised like the Human3.6M inputs only with the sizes given
            # (wild2d.mpii_image_sizes); a person-box normalised MPII mixed with image-normalised
            # Human3.6M is refused, never relabelled
            sizes = _image_sizes_json(w.get("mpii_image_sizes") or "")
            if not sizes:
                raise ValueError(
                    f"data.wild2d.mpii: {w.mpii} has no image sizes, so its 2D cannot be "
                    f"{h.normalization!r}-normalised like the Human3.6M inputs (person-box "
                    "normalised MPII would be a different coordinate frame); give "
                    "data.wild2d.mpii_image_sizes (JSON {image name: [width, height]}) or drop "
                    "data.wild2d.mpii"
                )
            parts.append(wild2d(w.mpii, image_sizes=sizes))
        if parts:
            parts = [dataclasses.replace(p, labels={}) for p in parts]
            out["train_2d"] = (
                parts[0] if len(parts) == 1 else PoseDataset.concatenate(parts, name="wild2d")
            )
        if w.get("coco_val"):
            out["val_2d"] = wild2d(w.coco_val)
    else:
        raise ValueError(f"unknown data preset {preset!r}; expected synthetic|cmu|cmu+coco|h36m")
    cross = cfg.get("cross")
    if cross is not None:
        if cross.get("mpi3dhp_root"):
            out["mpi3dhp"] = jdata.load_mpi3dhp_test(
                cross.mpi3dhp_root, normalization=out["train_3d"].normalization
            )
        if cross.get("pw3d_path"):
            out["3dpw"] = jdata.load_3dpw(
                cross.pw3d_path, split="test", normalization=out["train_3d"].normalization
            )
    limits = cfg.get("max_examples") or {}
    for i, (name, ds) in enumerate(sorted(out.items())):
        out[name] = subset(ds, int(limits.get(name, 0) or 0), seed=seed + 101 + i)
    for name, ds in out.items():
        LOGGER.info("split %s: %s", name, ds.summary())
    return out


def _image_sizes_json(path: str) -> dict[str, tuple[int, int]]:
    """``{image name: (width, height)}`` from a JSON file (``{}`` for an empty path)."""
    if not path:
        return {}
    raw = json.loads(pathlib.Path(path).read_text())
    return {str(k): (int(v[0]), int(v[1])) for k, v in raw.items()}


def eval_splits(datasets: Mapping[str, PoseDataset], names: str | Sequence[str] = "") -> list[str]:
    """3D evaluation splits: ``names`` (comma-separated or list); default: 3D non-train splits."""
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    if names:
        missing = [n for n in names if n not in datasets]
        if missing:
            raise ValueError(f"evaluation splits {missing} not loaded; have {sorted(datasets)}")
        return list(names)
    return [n for n, d in datasets.items() if d.has_3d and not n.startswith("train")]


def data_normalization(data: Mapping[str, Any]) -> str:
    """The 2D normalisation of the training inputs a data config produces (see
    :func:`load_splits`): ``cmu+coco`` -> ``image``, ``cmu`` / ``synthetic`` -> ``vp``,
    ``h36m`` -> ``data.h36m.normalization``."""
    data_cfg = _Block(data)
    preset = data_cfg.preset
    if preset == "h36m":
        return str(data_cfg.h36m.normalization)
    if preset == "cmu+coco":
        return "image"
    if preset in ("cmu", "synthetic"):
        return "vp"
    raise ValueError(f"unknown data preset {preset!r}")
