"""CMU motion capture (8-action subset) in H36M-17 order, seen through virtual cameras.

File: ``cmu_mocap_h36m17.npz`` in ``../shared/data`` (developer / CI data; its README gives the
provenance, joint mapping and licence). Keys: one ``float32 (T, 17, 3)`` array per sequence named
``<split>/<action>_<n>`` (world metres, **z up**, floor near z = 0, 120 fps), and per-sequence
``sequence_names``, ``split`` (``train`` / ``test``, the release's split, kept here), ``action``,
``n_frames``; skeleton and metadata keys.

:func:`load_cmu_mocap` reads and validates the file; :func:`cmu_pose_pairs` turns a split into
2D-3D pairs by projecting every kept frame through ``num_cameras`` virtual cameras sampled like a
Human3.6M rig (:mod:`jpose.data.virtual_cameras`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import jax
import numpy as np

from jpose import skeleton
from jpose.data.common import (
    LOGGER,
    DataFormatError,
    PoseDataset,
    camera_dataset,
    check_array,
    check_finite,
    load_npz,
)
from jpose.data.virtual_cameras import VirtualCameraConfig, project_world, sample_cameras

__all__ = ["CMUMocap", "load_cmu_mocap", "cmu_pose_pairs", "CMU_SPLITS"]

CMU_SPLITS = ("train", "test")


@dataclasses.dataclass(frozen=True, eq=False)
class CMUMocap:
    """World-frame CMU sequences.

    Attributes:
      sequences: ``{name: float32 (T, 17, 3)}`` metres, z up, H36M-17 joints.
      split: ``{name: "train" | "test"}``.
      action: ``{name: action}``.
      fps: frames per second of the stored sequences (120).
      path: file read.
    """

    sequences: dict[str, np.ndarray]
    split: dict[str, str]
    action: dict[str, str]
    fps: float
    path: str

    def names(
        self,
        split: str | None = None,
        *,
        actions: Sequence[str] | None = None,
        exclude_actions: Sequence[str] = (),
    ) -> list[str]:
        """Sequence names (file order), optionally of one split and of some actions only.

        Raises:
          ValueError: unknown split, or an action name the file does not have.
        """
        if split is not None and split not in CMU_SPLITS:
            raise ValueError(f"unknown CMU split {split!r}; expected one of {CMU_SPLITS}")
        known = set(self.action.values())
        for a in [*(actions or ()), *exclude_actions]:
            if a not in known:
                raise ValueError(f"{self.path}: unknown CMU action {a!r}; known: {sorted(known)}")
        return [
            n for n in self.sequences
            if (split is None or self.split[n] == split)
            and (actions is None or self.action[n] in actions)
            and self.action[n] not in exclude_actions
        ]  # fmt: skip

    def num_frames(self, split: str | None = None) -> int:
        """Total frames (at the stored frame rate) of a split."""
        return int(sum(len(self.sequences[n]) for n in self.names(split)))

    def frames(
        self,
        split: str | None = None,
        *,
        subsample: int = 1,
        actions: Sequence[str] | None = None,
        exclude_actions: Sequence[str] = (),
    ):
        """All frames of a split (optionally of some actions, see :meth:`names`):
        ``(poses [N, 17, 3], labels)``; labels ``sequence``, ``action``, ``frame`` (index at the
        stored frame rate)."""
        if subsample < 1:
            raise ValueError(f"subsample must be >= 1, got {subsample}")
        names = self.names(split, actions=actions, exclude_actions=exclude_actions)
        if not names:
            raise ValueError(
                f"{self.path}: no sequences in split {split!r} (actions {actions}, "
                f"excluding {list(exclude_actions)})"
            )
        idx = [np.arange(0, len(self.sequences[n]), subsample) for n in names]
        lens = [len(i) for i in idx]
        labels = {
            "sequence": np.repeat(names, lens),
            "action": np.repeat([self.action[n] for n in names], lens),
            "frame": np.concatenate(idx).astype(np.int32),
        }
        return np.concatenate([self.sequences[n][i] for n, i in zip(names, idx)]), labels


def load_cmu_mocap(path: str | os.PathLike) -> CMUMocap:
    """Read and validate ``cmu_mocap_h36m17.npz``.

    Returns:
      :class:`CMUMocap`; sizes are logged.

    Raises:
      FileNotFoundError, DataFormatError (missing sequence, joint order, shape, NaN).
    """
    path = os.fspath(path)
    with load_npz(path, what="CMU mocap in H36M-17 order (cmu_mocap_h36m17.npz)") as npz:
        for k in ("sequence_names", "split", "action", "joint_names"):
            if k not in npz.files:
                raise DataFormatError(f"{path}: missing key {k!r}; keys present: {npz.files}")
        names = [str(n) for n in npz["joint_names"]]
        if names != list(skeleton.H36M17.joint_names):
            raise DataFormatError(
                f"{path}: key 'joint_names': expected H36M-17 order "
                f"{list(skeleton.H36M17.joint_names)}, got {names}"
            )
        seq_names = [str(s) for s in npz["sequence_names"]]
        splits = [str(s) for s in npz["split"]]
        actions = [str(s) for s in npz["action"]]
        sequences = {}
        for n in seq_names:
            if n not in npz.files:
                raise DataFormatError(f"{path}: key {n!r} listed in sequence_names but absent")
            a = check_array(npz[n], source=path, key=n, shape=(None, 17, 3))
            sequences[n] = check_finite(a, source=path, key=n)
        fps = float(npz["fps"]) if "fps" in npz.files else 120.0
    for s in splits:
        if s not in CMU_SPLITS:
            raise DataFormatError(f"{path}: key 'split': expected train/test, got {s!r}")
    mocap = CMUMocap(
        sequences=sequences,
        split=dict(zip(seq_names, splits)),
        action=dict(zip(seq_names, actions)),
        fps=fps,
        path=path,
    )
    LOGGER.info(
        "cmu: %s: %d sequences; train %d frames (%d sequences), test %d frames (%d sequences)",
        path,
        len(seq_names),
        mocap.num_frames("train"),
        len(mocap.names("train")),
        mocap.num_frames("test"),
        len(mocap.names("test")),
    )
    return mocap


def cmu_pose_pairs(
    mocap: CMUMocap,
    *,
    split: str = "train",
    subsample: int = 4,
    num_cameras: int = 4,
    camera_config: VirtualCameraConfig | None = None,
    cameras_per: str = "frame",
    seed: int = 0,
    normalization: str = "vp",
    actions: Sequence[str] | None = None,
    exclude_actions: Sequence[str] = (),
) -> PoseDataset:
    """2D-3D pairs from CMU poses seen by virtual cameras.

    Args:
      mocap: from :func:`load_cmu_mocap`.
      split: ``"train"`` or ``"test"`` (the release's split).
      subsample: keep every ``subsample``-th frame (4: 120 -> 30 fps).
      num_cameras: views per kept frame.
      camera_config: camera sampling ranges (default :class:`VirtualCameraConfig`).
      cameras_per: ``"frame"`` (fresh cameras for every frame, aimed at its pelvis) or
        ``"sequence"`` (fixed cameras per sequence, aimed at the mean pelvis, like a static rig).
      seed: seed of the camera sampler (same seed -> same cameras).
      normalization: convention of ``pose2d_norm`` (``"vp"`` or ``"image"``).
      actions: keep only these actions (default all); ``exclude_actions``: drop these (a
        cross-domain split trains on some actions and tests on the others).

    Returns:
      :class:`PoseDataset` ``"cmu/<split>"`` of ``N = frames x num_cameras`` examples
      (frame-major, views adjacent), labels ``sequence``, ``action``, ``frame``, ``camera``
      (view index 0..num_cameras-1).
    """
    if cameras_per not in ("frame", "sequence"):
        raise ValueError(f"cameras_per must be 'frame' or 'sequence', got {cameras_per!r}")
    camera_config = VirtualCameraConfig() if camera_config is None else camera_config
    world, labels = mocap.frames(split, subsample=subsample, actions=actions,
                                 exclude_actions=exclude_actions)  # fmt: skip
    rng = np.random.default_rng(seed)
    n = len(world)
    root = skeleton.H36M17.root
    if cameras_per == "frame":
        targets = np.repeat(world[:, root], num_cameras, axis=0)
        cams = sample_cameras(rng, targets, config=camera_config)
    else:  # one rig per sequence, aimed at its mean root; example (frame i, view v) uses view v
        seqs, inv = np.unique(labels["sequence"], return_inverse=True)
        aims = [
            np.repeat(world[inv == i, root].mean(0)[None], num_cameras, 0) for i in range(len(seqs))
        ]
        rigs = [sample_cameras(rng, t, config=camera_config) for t in aims]
        rows = np.repeat(inv * num_cameras, num_cameras) + np.tile(np.arange(num_cameras), n)
        cams = jax.tree.map(lambda *x: np.concatenate(x).astype(np.float32)[rows], *rigs)
    world_rep = np.repeat(world, num_cameras, axis=0)
    p3, uv = project_world(world_rep, cams)
    if np.any(p3[..., 2] <= 0.1):
        raise DataFormatError(f"cmu/{split}: virtual cameras closer than 0.1 m to a joint")
    size = np.asarray(cams.image_size)
    outside = (uv < 0).any(-1) | (uv[..., 0] > size[:, None, 0]) | (uv[..., 1] > size[:, None, 1])
    LOGGER.info(
        "cmu/%s: %d frames x %d cameras = %d examples; %d joints (%.2f%%) project outside "
        "the image (kept)",
        split,
        n,
        num_cameras,
        n * num_cameras,
        int(outside.sum()),
        100.0 * outside.mean(),
    )
    return camera_dataset(
        f"cmu/{split}"
        + (f"[{','.join(actions)}]" if actions is not None else "")
        + (f"[without {','.join(exclude_actions)}]" if exclude_actions else ""),
        uv,
        cams,
        pose3d_cam=p3,
        labels={
            **{k: np.repeat(v, num_cameras, axis=0) for k, v in labels.items()},
            "camera": np.tile(np.arange(num_cameras, dtype=np.int32), n),
        },
        normalization=normalization,
    )
