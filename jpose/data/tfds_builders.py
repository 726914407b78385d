"""Optional TensorFlow Datasets builders (``pip install jpose[tfds]``; not needed by jpose).

jpose itself never needs TensorFlow: the loaders in :mod:`jpose.data` read the files directly and
:mod:`jpose.data.batching` samples on device. These builders exist for pipelines built on TFDS
(``tfds.load``, caching as TFRecords, ``tf.data`` input pipelines). Both are manual-download
builders: jpose cannot download licensed data.

* :class:`H36mVideopose3d` (``h36m_videopose3d``): place ``data_3d_h36m.npz`` and
  ``data_2d_h36m_<source>.npz`` (VideoPose3D format, see :mod:`jpose.data.h36m`) in the manual
  directory; one builder config per 2D source (``gt``, ``cpn_ft_h36m_dbb``, ...); splits
  ``train`` (S1, S5, S6, S7, S8) and ``test`` (S9, S11); one example per frame and camera
  (H36M-17 joints, camera-frame 3D in metres, 2D in pixels and VideoPose3D-normalised).
* :class:`CmuMocapH36m17` (``cmu_mocap_h36m17``): place ``cmu_mocap_h36m17.npz`` in the manual
  directory; splits ``train`` / ``test`` of the release; one example per frame (world 3D, metres,
  z up; project with :mod:`jpose.data.virtual_cameras` at training time).

Build::

    tfds build jpose/data/tfds_builders.py --manual_dir=/path/to/files  # or, in Python:
    builder = H36mVideopose3d(config="cpn_ft_h36m_dbb", data_dir=...)
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=...))
    ds = builder.as_dataset(split="train")

Shapes and units of the features: ``pose3d [17, 3]`` metres, ``pose2d_px [17, 2]`` pixels,
``pose2d_norm [17, 2]``, ``confidence [17]``.
"""

from __future__ import annotations

import os

try:
    import tensorflow_datasets as tfds
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "jpose.data.tfds_builders needs the optional 'tfds' extra: "
        "pip install 'jpose[tfds]' (tensorflow-datasets and tensorflow-cpu). The rest of "
        "jpose.data works without it."
    ) from err

import numpy as np

from jpose.data import cmu, h36m

__all__ = ["H36mVideopose3d", "CmuMocapH36m17"]

_J = 17


class H36mVideopose3d(tfds.core.GeneratorBasedBuilder):
    """Human3.6M in the VideoPose3D format (manual download)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First version (jpose)."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Create data_3d_h36m.npz and data_2d_h36m_<source>.npz with VideoPose3D's "
        "data/prepare_data_h36m.py from your licensed Human3.6M copy (or download VideoPose3D's "
        "published 2D detections) and put them in the manual directory."
    )
    BUILDER_CONFIGS = [
        tfds.core.BuilderConfig(name=source, description=desc)
        for source, desc in h36m.H36M_2D_SOURCES.items()
    ]

    def _info(self) -> tfds.core.DatasetInfo:
        f32 = np.float32
        return self.dataset_info_from_configs(
            description=__doc__,
            features=tfds.features.FeaturesDict(
                {
                    "pose3d": tfds.features.Tensor(shape=(_J, 3), dtype=f32),
                    "pose2d_px": tfds.features.Tensor(shape=(_J, 2), dtype=f32),
                    "pose2d_norm": tfds.features.Tensor(shape=(_J, 2), dtype=f32),
                    "confidence": tfds.features.Tensor(shape=(_J,), dtype=f32),
                    "focal_px": tfds.features.Tensor(shape=(2,), dtype=f32),
                    "center_px": tfds.features.Tensor(shape=(2,), dtype=f32),
                    "image_size_px": tfds.features.Tensor(shape=(2,), dtype=f32),
                    "subject": tfds.features.Text(),
                    "action": tfds.features.Text(),
                    "sequence": tfds.features.Text(),
                    "camera": np.int32,
                    "frame": np.int32,
                }
            ),
            homepage="http://vision.imar.ro/human3.6m/",
        )

    def _split_generators(self, dl_manager):
        manual = os.fspath(dl_manager.manual_dir)
        return {split: self._generate_examples(manual, split=split) for split in ("train", "test")}

    def _generate_examples(self, manual_dir, *, split):
        ds = h36m.load_h36m(manual_dir, source=self.builder_config.name, split=split)
        for i in range(len(ds)):
            key = (
                f"{ds.labels['subject'][i]}/{ds.labels['sequence'][i]}/"
                f"{ds.labels['camera'][i]}/{ds.labels['frame'][i]}"
            )
            yield (
                key,
                {
                    "pose3d": ds.pose3d_cam[i],
                    "pose2d_px": ds.pose2d_px[i],
                    "pose2d_norm": ds.pose2d_norm[i],
                    "confidence": ds.confidence[i],
                    "focal_px": ds.focal_px[i],
                    "center_px": ds.center_px[i],
                    "image_size_px": ds.image_size_px[i],
                    "subject": str(ds.labels["subject"][i]),
                    "action": str(ds.labels["action"][i]),
                    "sequence": str(ds.labels["sequence"][i]),
                    "camera": int(ds.labels["camera"][i]),
                    "frame": int(ds.labels["frame"][i]),
                },
            )


class CmuMocapH36m17(tfds.core.GeneratorBasedBuilder):
    """CMU motion capture, 8-action subset in H36M-17 order (manual download)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First version (jpose)."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Put cmu_mocap_h36m17.npz (see jpose's data README) in the manual directory."
    )

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            description=__doc__,
            features=tfds.features.FeaturesDict(
                {
                    "pose3d_world": tfds.features.Tensor(shape=(_J, 3), dtype=np.float32),
                    "sequence": tfds.features.Text(),
                    "action": tfds.features.Text(),
                    "frame": np.int32,
                }
            ),
            homepage="http://mocap.cs.cmu.edu/",
        )

    def _split_generators(self, dl_manager):
        path = os.path.join(os.fspath(dl_manager.manual_dir), "cmu_mocap_h36m17.npz")
        mocap = cmu.load_cmu_mocap(path)
        return {split: self._generate_examples(mocap, split=split) for split in cmu.CMU_SPLITS}

    def _generate_examples(self, mocap, *, split):
        poses, labels = mocap.frames(split)
        for i in range(len(poses)):
            yield (
                f"{labels['sequence'][i]}/{labels['frame'][i]}",
                {
                    "pose3d_world": poses[i],
                    "sequence": str(labels["sequence"][i]),
                    "action": str(labels["action"][i]),
                    "frame": int(labels["frame"][i]),
                },
            )
