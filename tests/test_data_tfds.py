"""Optional TFDS builders: run only where the ``tfds`` extra (tensorflow-datasets) is installed."""

import importlib

import numpy as np
import pytest


def write_vp_fixture(folder):
    """VideoPose3D-format 3D + gt 2D files for all seven subjects (3 frames each)."""
    rng = np.random.default_rng(0)
    world = rng.uniform(-0.5, 0.5, (3, 32, 3)).astype(np.float32) + np.float32([0, 0, 1])
    subjects = ("S1", "S5", "S6", "S7", "S8", "S9", "S11")
    pos3d = {s: {"Walking 1": world} for s in subjects}
    pos2d = {
        s: {"Walking 1": [rng.uniform(100, 900, (3, 17, 2)).astype(np.float32)] * 4}
        for s in subjects
    }
    np.savez(folder / "data_3d_h36m.npz", positions_3d=np.array(pos3d, dtype=object))
    np.savez(
        folder / "data_2d_h36m_gt.npz",
        positions_2d=np.array(pos2d, dtype=object),
        metadata=np.array({"num_joints": 17}, dtype=object),
    )
    return world


def test_core_data_does_not_import_tensorflow():
    import sys

    importlib.import_module("jpose.data")
    assert "tensorflow" not in sys.modules
    assert "jpose.data.tfds_builders" not in sys.modules


def test_builders_build_from_manual_files(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets", reason="optional 'tfds' extra not installed")
    from jpose.data import tfds_builders

    manual = tmp_path / "manual"
    manual.mkdir()
    world = write_vp_fixture(manual)
    builder = tfds_builders.H36mVideopose3d(config="gt", data_dir=str(tmp_path / "tfds"))
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual))
    )
    test = list(tfds.as_numpy(builder.as_dataset(split="test")))
    assert len(test) == 2 * 4 * len(world)  # S9, S11 x 4 cameras
    assert test[0]["pose3d"].shape == (17, 3) and np.all(np.isfinite(test[0]["pose2d_px"]))
