"""Named data presets for the experiments: ``synthetic``, ``cmu``, ``cmu+coco``.

* ``synthetic`` -- the in-process demonstration set (:mod:`jpose.data.synthetic`); the default on a
  fresh machine (no files, no licences).
* ``cmu`` -- real CMU mocap 3D (``cmu_mocap_h36m17.npz``) through virtual Human3.6M-like cameras;
  the release's train / test split. 2D-only split: none.
* ``cmu+coco`` -- ``cmu`` plus COCO train2017 2D keypoints (``wild2d_coco_train.npz``: pixels
  with image sizes, persons with all 17 H36M joints) as the 2D-only split, and COCO val2017
  (``wild2d_coco.npz``) as ``val_2d``. Normalisation is CameraPose's ``"image"`` (-1, 1) by
  image width and height for every split; ``image_size_px`` is kept, so the aspect ratio of
  every person is known (97 % of COCO images are not square; ``wild2d_coco_train_norm.npz``,
  without sizes, is the fallback when the pixel file is absent, with a warning).

The CMU and COCO files are developer / CI data (not part of the package): pass their folder as
``data_dir``, or set ``$JPOSE_SHARED_DATA`` (:func:`shared_data_dir`). The library does not guess
where a checkout sits on disk; ``experiments`` defaults the variable to the checkout's
``../shared/data``.

Every preset returns ``{split name: PoseDataset}`` with at least ``train_3d`` and ``test``;
``train_2d`` (2D only, ``pose3d_cam is None``) where the preset has one. 2D arrays are
``[N, 17, 2]`` (pixels and normalised), 3D ``[N, 17, 3]`` metres, camera frame.
"""

from __future__ import annotations

import functools
import os
import pathlib
from collections.abc import Sequence

from jpose.data import cmu, synthetic, wild2d
from jpose.data.common import LOGGER, PoseDataset

__all__ = ["PRESETS", "shared_data_dir", "load_preset"]

PRESETS = ("synthetic", "cmu", "cmu+coco")


def shared_data_dir() -> pathlib.Path | None:
    """The shared data folder, or ``None`` if absent.

    Returns:
      ``$JPOSE_SHARED_DATA`` when set (``experiments`` defaults it to the checkout's
      ``../shared/data`` when that exists), else ``None``.
    """
    env = os.environ.get("JPOSE_SHARED_DATA")
    return pathlib.Path(env) if env else None


def load_preset(
    name: str,
    *,
    seed: int = 0,
    data_dir: str | os.PathLike | None = None,
    cmu_subsample: int = 4,
    cmu_num_cameras: int = 4,
    synthetic_config: synthetic.SyntheticConfig | None = None,
    cmu_actions_3d: Sequence[str] = (),
    cmu_cameras_per: str = "frame",
) -> dict[str, PoseDataset]:
    """Load a named preset.

    Args:
      name: one of :data:`PRESETS`.
      seed: seed of the synthetic set / virtual cameras.
      data_dir: folder with the shared files (default :func:`shared_data_dir`).
      cmu_subsample: CMU frame subsampling (4: 120 -> 30 fps).
      cmu_num_cameras: virtual cameras per CMU frame.
      synthetic_config: sizes of the synthetic set.
      cmu_actions_3d: a cross-domain split (e.g. ``("basketball", "basketball_signal",
        "directing_traffic", "soccer")``): ``train_3d`` holds the release's training sequences
        of these actions only and ``test`` the test sequences of every other action; empty =
        the release's split.
      cmu_cameras_per: ``"frame"`` (new virtual cameras for every frame) or ``"sequence"``
        (one static rig per sequence, as multi-view methods need; :func:`cmu.cmu_pose_pairs`).

    Returns:
      ``{split: PoseDataset}``.

    Raises:
      ValueError: unknown preset. FileNotFoundError: shared files needed but absent.
    """
    if name not in PRESETS:
        raise ValueError(f"unknown data preset {name!r}; expected one of {PRESETS}")
    if name == "synthetic":
        return synthetic.make_synthetic(seed=seed, config=synthetic_config)
    folder = pathlib.Path(data_dir) if data_dir is not None else shared_data_dir()
    if folder is None:
        raise FileNotFoundError(
            f"data preset {name!r} needs the shared data folder (cmu_mocap_h36m17.npz, "
            "wild2d_*.npz): pass data_dir or set JPOSE_SHARED_DATA, or use the 'synthetic' preset"
        )
    norm = "image" if name == "cmu+coco" else "vp"
    mocap = cmu.load_cmu_mocap(folder / "cmu_mocap_h36m17.npz")
    pairs = functools.partial(
        cmu.cmu_pose_pairs,
        mocap,
        subsample=cmu_subsample,
        num_cameras=cmu_num_cameras,
        normalization=norm,
        cameras_per=cmu_cameras_per,
    )
    actions = tuple(cmu_actions_3d or ()) or None  # a cross-domain split: these actions train
    out = {
        "train_3d": pairs(split="train", seed=seed, actions=actions),
        "test": pairs(split="test", seed=seed + 1, exclude_actions=actions or ()),
    }
    if name == "cmu+coco":
        train_px = folder / "wild2d_coco_train.npz"
        if not train_px.is_file():
            LOGGER.warning(
                "%s absent: using wild2d_coco_train_norm.npz (x / width, y / height without "
                "image sizes: aspect ratios unknown)",
                train_px,
            )
            train_px = folder / "wild2d_coco_train_norm.npz"
        coco = functools.partial(wild2d.load_wild2d_npz, normalization="image", min_h36m_joints=17)
        out["train_2d"], out["val_2d"] = coco(train_px), coco(folder / "wild2d_coco.npz")
    LOGGER.info("preset %s: %s", name, {k: len(v) for k, v in out.items()})
    return out
