"""CameraPose's training data (Yang et al., "CameraPose: Weakly-Supervised Monocular 3D Human Pose
Estimation by Leveraging In-the-wild 2D Annotations", WACV 2023).

* :func:`frame_scale`: the aspect-preserving 2D frame in which the camera branch, the
  re-projection loss (eq. 7) and the 2D discriminator work.
* :func:`training_arrays`: the host arrays of the 2D-3D and 2D-only training batches that the
  objectives of :mod:`jpose.models.camerapose` read, and :func:`camera_priors` (the camera
  branch's priors from the 2D-3D data).
* :func:`relative_depth_arrays`: WSP relative-depth pairs (Qiu et al.) for CameraPose's optional
  relative-depth term.

Units: 2D in the dataset's normalised units (``pose2d_norm``), 3D and translations in metres
(camera frame), intrinsics in the units of the 2D.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from jpose.data import relative_depth as rdd
from jpose.data.common import PoseDataset, normalized_intrinsics

__all__ = ["frame_scale", "training_arrays", "camera_priors", "relative_depth_arrays"]

LOGGER = logging.getLogger("jpose.data.camerapose")


def frame_scale(ds: PoseDataset) -> np.ndarray:
    """Per-example ``[N, 2]`` factors from the dataset's normalised 2D to an aspect-preserving
    frame: ``[1, h / w]`` for CameraPose's ``"image"`` normalisation, ones otherwise.

    CameraPose normalises 2D to (-1, 1) by image width *and* height (Sec. 3.1), which stretches
    the people of non-square images differently from the 2D-3D data. Multiplying by ``[1, h / w]``
    gives exactly VideoPose3D's ``uv / w * 2 - [1, h / w]`` (isotropic, the same for every image),
    where the camera branch, the re-projection loss (eq. 7) and D_2D work: a pinhole camera with
    square pixels has ``fx = fy`` there, and a discriminator cannot tell real from fake 2D by the
    images' aspect ratios. The lifter and the refinement network keep the paper's normalisation.

    Raises:
      ValueError: ``"image"`` normalisation without image sizes.
    """
    n = len(ds)
    if ds.normalization != "image":
        return np.ones((n, 2), np.float32)
    size = ds.image_size_px
    if size is None or np.any(np.asarray(size) <= 0):
        raise ValueError(
            f"{ds.name}: image-normalised 2D without image sizes: the camera branch and D_2D "
            "need the aspect ratio (use the pixel files, e.g. wild2d_coco_train.npz)"
        )
    size = np.asarray(size, np.float64)
    return np.stack([np.ones(n), size[:, 1] / size[:, 0]], -1).astype(np.float32)


def training_arrays(
    train_3d: PoseDataset, train_2d: PoseDataset | None = None, *, root: int = 0
) -> dict[str, dict[str, np.ndarray]]:
    """Host arrays of CameraPose's training batches.

    Args:
      train_3d: the 2D-3D pairs (with camera intrinsics and image sizes).
      train_2d: optional 2D-only data.
      root: root joint index.

    Returns:
      ``{"3d": {pose2d_norm [N, J, 2], confidence [N, J], pose3d [N, J, 3] root-relative, root
      [N, 3] camera-frame root (metres), focal / center [N, 2] ground-truth intrinsics in the 2D's
      units (:func:`jpose.data.common.normalized_intrinsics`), frame_scale [N, 2]}, "2d":
      {pose2d_norm, confidence, frame_scale}}`` (``"2d"`` only with ``train_2d``).
    """
    focal, center = normalized_intrinsics(train_3d)
    a3d = train_3d.arrays(["pose2d_norm", "confidence", "pose3d"])
    a3d["root"] = train_3d.pose3d_cam[:, root].astype(np.float32)
    a3d["focal"], a3d["center"] = focal, center
    a3d["frame_scale"] = frame_scale(train_3d)
    arrays = {"3d": a3d}
    if train_2d is not None:
        arrays["2d"] = train_2d.arrays(["pose2d_norm", "confidence"])
        arrays["2d"]["frame_scale"] = frame_scale(train_2d)
    return arrays


def camera_priors(arrays_3d: dict[str, np.ndarray]) -> dict[str, tuple[float, ...]]:
    """The camera branch's priors: mean focal length and principal point in the aspect-preserving
    frame (:func:`frame_scale`) and mean root position (metres) of :func:`training_arrays`'s
    ``"3d"`` arrays."""
    scale = arrays_3d["frame_scale"]
    return {
        "focal": tuple(float(v) for v in (arrays_3d["focal"] * scale).mean(0)),
        "center": tuple(float(v) for v in (arrays_3d["center"] * scale).mean(0)),
        "translation": tuple(float(v) for v in arrays_3d["root"].mean(0)),
    }


def relative_depth_arrays(normalization: str, *, seed: int, **pair_options: Any
                          ) -> dict[str, np.ndarray]:  # fmt: skip
    """Training pairs of WSP's relative-depth loss (Qiu et al., eq. 9) for CameraPose's 2D-only
    phase: :func:`jpose.data.relative_depth.load_pair_splits` (``pair_options``: its keyword
    options, e.g. a WSP ``rd`` config block), a random half swapped (A <-> B) so both labels are
    balanced.

    Args:
      normalization: normalisation of the 2D-3D data. The pairs' 2D is ``"image"``-normalised, so
        it must be too (``"vp"`` with the square synthetic scenes, where both coincide).
      seed: seed of the pairs and of the swap.

    Returns:
      ``{pose_a, conf_a, pose_b, conf_b, label, joint_mask}`` host arrays.

    Raises:
      ValueError: the normalisations differ.
    """
    synthetic_vp = pair_options.get("source") == "synthetic" and normalization == "vp"
    if normalization != "image" and not synthetic_vp:
        raise ValueError(
            f"loss.lambda_rd > 0: relative-depth pairs are 'image'-normalised but the 2D-3D data "
            f"is {normalization!r}-normalised; use a data preset with image normalisation"
        )
    pairs = rdd.load_pair_splits(seed=seed, **pair_options)["train"]
    arrays = pairs.pair_arrays(orientation_seed=seed)
    LOGGER.info("relative-depth pairs for the auxiliary loss: %s", pairs.counts)
    keys = ("pose_a", "conf_a", "pose_b", "conf_b", "label", "joint_mask")
    return {k: np.asarray(arrays[k]) for k in keys}
