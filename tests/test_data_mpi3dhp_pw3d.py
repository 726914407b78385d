"""MPI-INF-3DHP test-set and 3DPW loaders on fixture files written in the published formats."""

import pickle

import numpy as np
import pytest

from jpose import skeleton
from jpose.data import mpi3dhp, pw3d
from jpose.data.common import DataFormatError

H = skeleton.H36M17.index
FOCAL, CENTER = np.array([1500.0, 1498.0]), np.array([1020.0, 1030.0])


def _3dhp_sequence(t, seed):
    """annot3 (T, 17, 3) mm in front of the camera and its pinhole projection annot2."""
    rng = np.random.default_rng(seed)
    annot3 = rng.uniform(-800, 800, (t, 17, 3)) + np.array([0, 0, 4000.0])
    annot2 = annot3[..., :2] / annot3[..., 2:] * FOCAL + CENTER
    univ = (annot3 - annot3[:, 14:15]) * 0.9 + annot3[:, 14:15]  # rescaled about the pelvis
    valid = np.ones(t)
    valid[::3] = 0
    return annot3, annot2, univ, valid


@pytest.fixture(scope="module")
def mpi_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("mpi_inf_3dhp_test_set")
    seqs = {}
    for k, seq in enumerate(("TS1", "TS5")):
        annot3, annot2, univ, valid = _3dhp_sequence(9, k)
        (root / seq).mkdir()
        if seq == "TS1":  # the h5py axis order (T, 1, 17, C)
            arrays = {
                "annot3": annot3[:, None],
                "annot2": annot2[:, None],
                "univ_annot3": univ[:, None],
                "valid_frame": valid[:, None],
                "activity_annotation": np.full((9, 1), 3.0),
            }
        else:  # MATLAB's (C, 17, 1, T)
            arrays = {
                "annot3": annot3.transpose(2, 1, 0)[:, :, None],
                "annot2": annot2.transpose(2, 1, 0)[:, :, None],
                "univ_annot3": univ.transpose(2, 1, 0)[:, :, None],
                "valid_frame": valid[None],
                "activity_annotation": np.ones((1, 9)),
            }
        np.savez(root / seq / "annot_data.npz", **arrays)
        seqs[seq] = (annot3, annot2, univ, valid)
    return root, seqs


def test_3dhp_loader(mpi_root):
    root, seqs = mpi_root
    ds = mpi3dhp.load_mpi3dhp_test(root, sequences=["TS1", "TS5"])
    assert len(ds) == 2 * 6  # valid frames only
    ts1 = ds.labels["sequence"] == "TS1"
    annot3, annot2, univ, valid = seqs["TS1"]
    v = valid.astype(bool)
    # 3DHP-17 -> H36M-17: Hip = pelvis (14), Thorax = neck (1), Head = head_top (0)
    np.testing.assert_allclose(ds.pose3d_cam[ts1, H("Hip")], univ[v, 14] / 1000, rtol=1e-5)
    np.testing.assert_allclose(ds.pose3d_cam[ts1, H("Thorax")], univ[v, 1] / 1000, rtol=1e-5)
    np.testing.assert_allclose(ds.pose2d_px[ts1, H("Head")], annot2[v, 0], rtol=1e-5)
    np.testing.assert_array_equal(ds.labels["frame"][ts1], np.nonzero(v)[0])
    assert set(ds.labels["scene"]) == {"gs", "outdoor"}
    np.testing.assert_array_equal(ds.image_size_px[~ts1], [[1920, 1080]] * 6)
    assert np.all(ds.labels["activity"][ts1] == 3)
    # intrinsics recovered from annot3 / annot2
    np.testing.assert_allclose(ds.focal_px[0], FOCAL, rtol=1e-4)
    np.testing.assert_allclose(ds.center_px[0], CENTER, atol=0.1)
    real = mpi3dhp.load_mpi3dhp_test(root, sequences=["TS1"], universal=False, only_valid=False)
    assert len(real) == 9 and not real.labels["valid"].all()
    np.testing.assert_allclose(real.pose3d_cam[:, H("LWrist")], annot3[:, 7] / 1000, rtol=1e-5)


def test_3dhp_errors(mpi_root, tmp_path):
    with pytest.raises(FileNotFoundError, match="TS2"):
        mpi3dhp.load_mpi3dhp_test(mpi_root[0], sequences=["TS2"])
    np.savez(
        tmp_path / "bad.npz",
        annot2=np.zeros((4, 1, 16, 2)),
        univ_annot3=np.zeros((4, 1, 16, 3)),
        valid_frame=np.ones(4),
    )
    with pytest.raises(DataFormatError, match=r"bad.npz: key 'annot2': expected 17 joints"):
        mpi3dhp.read_3dhp_annotations(tmp_path / "bad.npz")
    np.savez(tmp_path / "nokey.npz", annot2=np.zeros((4, 1, 17, 2)))
    with pytest.raises(DataFormatError, match="univ_annot3"):
        mpi3dhp.read_3dhp_annotations(tmp_path / "nokey.npz")


def _3dpw_pickle(path, t=6, people=2, seed=0):
    rng = np.random.default_rng(seed)
    cam_poses = np.tile(np.eye(4), (t, 1, 1))
    cam_poses[:, :3, 3] = [0.1, -0.2, 4.0]
    angle = np.linspace(0, 0.3, t)
    cam_poses[:, 0, 0] = cam_poses[:, 2, 2] = np.cos(angle)
    cam_poses[:, 0, 2], cam_poses[:, 2, 0] = np.sin(angle), -np.sin(angle)
    joints = [rng.uniform(-0.8, 0.8, (t, 72)) for _ in range(people)]
    poses2d = [
        np.concatenate([rng.uniform(0, 1000, (t, 2, 18)), rng.uniform(0.2, 1, (t, 1, 18))], 1)
        for _ in range(people)
    ]
    poses2d[1][2] = 0.0  # no detection in frame 2 for person 1
    valid = [np.ones(t), np.ones(t)]
    valid[0][4] = 0
    seq = {
        "sequence": "courtyard_fixture_00",
        "genders": ["m", "f"],
        "betas": [np.zeros(10)] * 2,
        "poses2d": poses2d,
        "jointPositions": joints,
        "cam_intrinsics": np.array([[1961.0, 0, 540.0], [0, 1969.0, 960.0], [0, 0, 1]]),
        "cam_poses": cam_poses,
        "campose_valid": valid,
        "img_frame_ids": np.arange(t),
    }
    with open(path, "wb") as f:
        pickle.dump(seq, f, protocol=2)
    return seq


def test_3dpw_loader(tmp_path):
    (tmp_path / "test").mkdir()
    seq = _3dpw_pickle(tmp_path / "test" / "courtyard_fixture_00.pkl")
    ds = pw3d.load_3dpw(tmp_path, split="test", source_2d="openpose", min_2d_joints=0)
    assert len(ds) == 6 + 6 - 1  # person 0 frame 4 invalid
    p0 = ds.labels["person"] == 0
    j = seq["jointPositions"][0].reshape(6, 24, 3)
    cam = seq["cam_poses"]
    ref = np.einsum("tij,tkj->tki", cam[:, :3, :3], j) + cam[:, None, :3, 3]
    keep = np.array([0, 1, 2, 3, 5])
    # SMPL pelvis -> Hip, SMPL neck (12) -> Thorax, left knee (4) -> LKnee
    np.testing.assert_allclose(ds.pose3d_cam[p0, H("Hip")], ref[keep, 0], rtol=1e-5)
    np.testing.assert_allclose(ds.pose3d_cam[p0, H("Thorax")], ref[keep, 12], rtol=1e-5)
    np.testing.assert_allclose(ds.pose3d_cam[p0, H("LKnee")], ref[keep, 4], rtol=1e-5)
    # OpenPose-18 2D: neck (1) -> Thorax, with its confidence
    op = seq["poses2d"][0].transpose(0, 2, 1)
    np.testing.assert_allclose(ds.pose2d_px[p0, H("Thorax")], op[keep, 1, :2], rtol=1e-5)
    np.testing.assert_allclose(ds.confidence[p0, H("Thorax")], op[keep, 1, 2], rtol=1e-6)
    np.testing.assert_array_equal(ds.image_size_px[0], [1080, 1920])  # portrait from cx = 540
    p1 = ds.labels["person"] == 1
    assert np.all(ds.confidence[p1][2] == 0)  # the missing detection
    strict = pw3d.load_3dpw(
        tmp_path / "test" / "courtyard_fixture_00.pkl", source_2d="openpose", min_2d_joints=10
    )
    assert len(strict) == len(ds) - 1


def test_3dpw_ground_truth_2d_is_the_default(tmp_path):
    """CameraPose Table 4 protocol: GT 2D = the 3D joints through the sequence's intrinsics."""
    seq = _3dpw_pickle(tmp_path / "s.pkl")
    ds = pw3d.load_3dpw(tmp_path / "s.pkl")
    assert len(ds) == 11  # only campose_valid filters: a missing detection does not matter
    k = seq["cam_intrinsics"]
    p3 = ds.pose3d_cam.astype(np.float64)
    u = k[0, 0] * p3[..., 0] / p3[..., 2] + k[0, 2]  # numpy pinhole reference
    v = k[1, 1] * p3[..., 1] / p3[..., 2] + k[1, 2]
    np.testing.assert_allclose(ds.pose2d_px, np.stack([u, v], -1), rtol=1e-5, atol=1e-3)
    np.testing.assert_array_equal(ds.confidence, 1.0)
    # detections: the person-frame without any detection (person 1, frame 2) is dropped
    det = pw3d.load_3dpw(tmp_path / "s.pkl", source_2d="openpose")
    assert len(det) == 10 and (det.confidence.max(-1) > 0).all()
    assert 2 not in det.labels["frame"][det.labels["person"] == 1]
    with pytest.raises(ValueError, match="unknown 3DPW 2D source"):
        pw3d.load_3dpw(tmp_path / "s.pkl", source_2d="hrnet")


def test_3dpw_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.pkl"):
        pw3d.load_3dpw(tmp_path / "nothing.pkl")
    seq = _3dpw_pickle(tmp_path / "a.pkl")
    seq["jointPositions"][0] = seq["jointPositions"][0][:, :69]
    with open(tmp_path / "b.pkl", "wb") as f:
        pickle.dump(seq, f)
    with pytest.raises(
        DataFormatError, match=r"b.pkl: key jointPositions\[0\]: expected \(T, 72\)"
    ):
        pw3d.read_3dpw_sequence(tmp_path / "b.pkl")
    seq = _3dpw_pickle(tmp_path / "c.pkl")
    seq["poses2d"][1][0, 0, 0] = np.nan
    with open(tmp_path / "c.pkl", "wb") as f:
        pickle.dump(seq, f)
    with pytest.raises(DataFormatError, match=r"c.pkl: key 'poses2d\[1\]'.*NaN"):
        pw3d.read_3dpw_sequence(tmp_path / "c.pkl")


def test_3dhp_mat_v73_via_h5py(tmp_path):
    h5py = pytest.importorskip("h5py", reason="h5py (optional) not installed")
    annot3, annot2, univ, valid = _3dhp_sequence(5, 7)
    (tmp_path / "TS3").mkdir()
    # MATLAB v7.3 files are HDF5; h5py reads MATLAB's (C, 17, 1, T) as (T, 1, 17, C)
    with h5py.File(tmp_path / "TS3" / "annot_data.mat", "w") as f:
        f["annot2"] = annot2[:, None]
        f["annot3"] = annot3[:, None]
        f["univ_annot3"] = univ[:, None]
        f["valid_frame"] = valid[:, None]
    ds = mpi3dhp.load_mpi3dhp_test(tmp_path, sequences=["TS3"], only_valid=False)
    np.testing.assert_allclose(ds.pose3d_cam[:, H("Hip")], univ[:, 14] / 1000, rtol=1e-5)
    assert set(ds.labels["scene"]) == {"no_gs"}
