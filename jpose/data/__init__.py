"""Data layer: host-side numpy loaders returning :class:`PoseDataset`, and on-device batching.

Modules (all joints converted to Human3.6M-17, :data:`jpose.skeleton.H36M17`):

* :mod:`~jpose.data.common` -- :class:`PoseDataset`, validation, 2D normalisation;
* :mod:`~jpose.data.h36m` -- Human3.6M in the VideoPose3D ``.npz`` formats;
* :mod:`~jpose.data.mpi3dhp` -- MPI-INF-3DHP test set (``annot_data.mat`` / ``.npz``);
* :mod:`~jpose.data.pw3d` -- 3DPW sequence pickles;
* :mod:`~jpose.data.wild2d` -- COCO / MPII 2D keypoints (official JSON and compact ``.npz``);
* :mod:`~jpose.data.cmu` -- CMU mocap through virtual cameras (:mod:`~jpose.data.virtual_cameras`);
* :mod:`~jpose.data.synthetic` -- the in-process demonstration set;
* :mod:`~jpose.data.batching` -- device-resident sampling and a host iterator;
* :mod:`~jpose.data.presets` -- named presets ``synthetic``, ``cmu``, ``cmu+coco``.

Logging goes to the ``jpose.data`` logger (counts of everything read and filtered).
"""

from jpose.data.batching import BatchSampler, HostBatchIterator, device_put_dataset, gather
from jpose.data.cmu import CMUMocap, cmu_pose_pairs, load_cmu_mocap
from jpose.data.common import (
    DataFormatError,
    PoseDataset,
    denormalize_2d,
    normalize_2d,
    normalized_intrinsics,
    view_groups,
)
from jpose.data.h36m import (
    H36M_2D_SOURCES,
    H36M_ACTIONS,
    H36M_SPLITS,
    load_h36m,
    normalize_action_name,
    read_h36m_2d,
    read_h36m_3d,
)
from jpose.data.mpi3dhp import MPI3DHP_SCENES, load_mpi3dhp_test, read_3dhp_annotations
from jpose.data.presets import PRESETS, load_preset, shared_data_dir
from jpose.data.pw3d import load_3dpw, read_3dpw_sequence
from jpose.data.synthetic import SyntheticConfig, generate_poses, make_synthetic
from jpose.data.virtual_cameras import VirtualCameraConfig, project_world, sample_cameras
from jpose.data.wild2d import load_coco_keypoints_json, load_mpii_json, load_wild2d_npz

__all__ = [
    "BatchSampler",
    "CMUMocap",
    "DataFormatError",
    "H36M_2D_SOURCES",
    "H36M_ACTIONS",
    "H36M_SPLITS",
    "HostBatchIterator",
    "MPI3DHP_SCENES",
    "PRESETS",
    "PoseDataset",
    "SyntheticConfig",
    "VirtualCameraConfig",
    "cmu_pose_pairs",
    "denormalize_2d",
    "device_put_dataset",
    "gather",
    "generate_poses",
    "load_3dpw",
    "load_cmu_mocap",
    "load_coco_keypoints_json",
    "load_h36m",
    "load_mpi3dhp_test",
    "load_mpii_json",
    "load_preset",
    "load_wild2d_npz",
    "make_synthetic",
    "normalize_2d",
    "normalized_intrinsics",
    "normalize_action_name",
    "project_world",
    "read_3dpw_sequence",
    "read_3dhp_annotations",
    "read_h36m_2d",
    "read_h36m_3d",
    "sample_cameras",
    "shared_data_dir",
    "view_groups",
]
