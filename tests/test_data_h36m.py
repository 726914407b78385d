"""Human3.6M VideoPose3D-format loader on fixture files written in the real formats."""

import logging

import numpy as np
import pytest

from jpose import skeleton
from jpose.data import h36m
from jpose.data.common import DataFormatError

# VideoPose3D common/h36m_dataset.py, subject S9, camera 0 (54138969) -- typed in independently
# of jpose.camera so that the round trip below checks jpose's conversion of these conventions.
S9_CAM0 = {
    "orientation": [
        0.15540587902069092,
        -0.15548215806484222,
        -0.7532095313072205,
        0.6199594736099243,
    ],
    "translation_mm": [2044.45849609375, 4935.1171875, 1481.2275390625],
    "center": [512.54150390625, 515.4514770507812],
    "focal_length": [1145.0494384765625, 1143.7811279296875],
    "radial_distortion": [-0.20709891617298126, 0.24777518212795258, -0.0030751503072679043],
    "tangential_distortion": [-0.0009756988729350269, -0.00142447161488235],
}
KEPT_32 = [0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27]  # VP remove_joints


def _qrot(q, v):
    """VideoPose3D common/quaternion.py qrot (w, x, y, z), numpy."""
    qvec = np.broadcast_to(q[1:], v.shape)
    uv = np.cross(qvec, v)
    uuv = np.cross(qvec, uv)
    return v + 2 * (q[0] * uv + uuv)


def _vp_project(world):
    """VideoPose3D world_to_camera + project_to_2d (+ image_coordinates), numpy reference."""
    q = np.asarray(S9_CAM0["orientation"], np.float64)
    qinv = q * np.array([1, -1, -1, -1])
    t = np.asarray(S9_CAM0["translation_mm"]) / 1000.0
    cam = _qrot(qinv, world - t)
    xx = np.clip(cam[..., :2] / cam[..., 2:], -1, 1)
    r2 = np.sum(xx**2, axis=-1, keepdims=True)
    k = np.asarray(S9_CAM0["radial_distortion"])
    p = np.asarray(S9_CAM0["tangential_distortion"])
    radial = 1 + k[0] * r2 + k[1] * r2**2 + k[2] * r2**3
    tan = np.sum(p * xx, axis=-1, keepdims=True)
    xxx = xx * (radial + tan) + p * r2
    return cam, np.asarray(S9_CAM0["focal_length"]) * xxx + np.asarray(S9_CAM0["center"])


def _world_sequence(t, seed):
    """(T, 32, 3) metres: a standing person near the capture-volume centre, z up."""
    rng = np.random.default_rng(seed)
    base = np.zeros((32, 3))
    base[:, 2] = np.linspace(0.1, 1.7, 32)
    base[:, 0] = rng.uniform(-0.3, 0.3, 32)
    base[:, 1] = rng.uniform(-0.2, 0.2, 32)
    drift = np.linspace(0, 0.5, t)[:, None, None] * np.array([1.0, 0.5, 0.0])
    return (base[None] + drift + rng.normal(0, 0.01, (t, 32, 3))).astype(np.float32)


def _save_vp(path, key, data, metadata=None):
    arrays = {key: np.array(data, dtype=object)}
    if metadata is not None:
        arrays["metadata"] = np.array(metadata, dtype=object)
    np.savez_compressed(path, **arrays)


@pytest.fixture(scope="module")
def vp_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("h36m")
    pos3d = {
        "S1": {"Walking 1": _world_sequence(20, 1), "TakingPhoto": _world_sequence(12, 2)},
        "S9": {"Walking": _world_sequence(10, 3), "WalkDog 1": _world_sequence(8, 4)},
        "S11": {"Directions": _world_sequence(6, 5), "Eating": _world_sequence(7, 6)},
    }
    _save_vp(d / "data_3d_h36m.npz", "positions_3d", pos3d)
    # gt 2D written with the independent VP reference projection (metadata without layout_name,
    # like VP's gt file); S9 Walking camera 0 gets 2 extra frames (trimmed as VP does).
    pos2d = {}
    for s, seqs in pos3d.items():
        pos2d[s] = {}
        for a, w in seqs.items():
            w17 = w[:, KEPT_32]
            _, uv = _vp_project(w17)
            per_cam = [uv.astype(np.float32) for _ in range(4)]
            if (s, a) == ("S9", "Walking"):
                per_cam[0] = np.concatenate([per_cam[0], per_cam[0][-2:]])
            pos2d[s][a] = per_cam
    meta = {"num_joints": 17, "keypoints_symmetry": [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]]}
    _save_vp(d / "data_2d_h36m_gt.npz", "positions_2d", pos2d, meta)
    # a COCO-layout detection file with confidences and S11 Directions camera 0 missing
    rng = np.random.default_rng(0)
    coco2d = {
        s: {
            a: [
                np.concatenate(
                    [rng.uniform(100, 900, (len(w), 17, 2)), rng.uniform(0, 1, (len(w), 17, 1))], -1
                ).astype(np.float32)
                for _ in range(4)
            ]
            for a, w in seqs.items()
        }
        for s, seqs in pos3d.items()
    }
    coco2d["S11"]["Directions"][0] = np.zeros((0, 17, 3), np.float32)
    _save_vp(
        d / "data_2d_h36m_detectron_pt_coco.npz",
        "positions_2d",
        coco2d,
        {"layout_name": "coco", "num_joints": 17},
    )
    return d, pos3d, pos2d, coco2d


def test_action_names():
    assert h36m.normalize_action_name("Walking 1") == "Walking"
    assert h36m.normalize_action_name("TakingPhoto") == "Photo"
    assert h36m.normalize_action_name("Photo 1") == "Photo"
    assert h36m.normalize_action_name("WalkDog 1") == "WalkDog"
    assert h36m.normalize_action_name("WalkingDog") == "WalkDog"
    assert h36m.normalize_action_name("WalkTogether") == "WalkTogether"
    assert len(h36m.H36M_ACTIONS) == 15
    assert h36m.split_subjects("drover_p1") == ("S11",)


def test_read_3d_selects_vp_joints(vp_files):
    d, pos3d, _, _ = vp_files
    data = h36m.read_h36m_3d(d / "data_3d_h36m.npz")
    np.testing.assert_array_equal(data["S1"]["Walking 1"], pos3d["S1"]["Walking 1"][:, KEPT_32])


def test_round_trip_world_camera_pixels(vp_files):
    d, pos3d, pos2d, _ = vp_files
    ds = h36m.load_h36m(d, source=None, subjects=["S9"], cameras=[0])
    sel = ds.labels["sequence"] == "Walking"
    cam_ref, uv_ref = _vp_project(pos3d["S9"]["Walking"][:, KEPT_32].astype(np.float64))
    np.testing.assert_allclose(ds.pose3d_cam[sel], cam_ref, atol=1e-4)  # metres
    np.testing.assert_allclose(ds.pose2d_px[sel], uv_ref, atol=0.05)  # pixels (float32)
    np.testing.assert_allclose(ds.pose2d_px[sel], pos2d["S9"]["Walking"][0][:10], atol=0.05)
    # normalised with VP's convention (w = 1000, h = 1002 for camera 0)
    np.testing.assert_allclose(ds.pose2d_norm[sel], uv_ref / 1000 * 2 - [1, 1002 / 1000], atol=1e-4)
    root = ds.pose3d_root_relative
    np.testing.assert_allclose(root[:, 0], 0.0, atol=1e-7)


def test_load_gt_file_labels_and_splits(vp_files, caplog):
    d, pos3d, pos2d, _ = vp_files
    with caplog.at_level(logging.INFO, logger="jpose.data"):
        ds = h36m.load_h36m(d, source="gt", split="test")
    assert "trimmed 2 extra 2D frames" in caplog.text
    # 4 cameras x (10 + 8 + 6 + 7) frames
    assert len(ds) == 4 * (10 + 8 + 6 + 7)
    assert set(ds.labels["subject"]) == {"S9", "S11"}
    assert set(ds.labels["action"]) == {"Walking", "WalkDog", "Directions", "Eating"}
    assert set(ds.labels["camera_id"]) == set(h36m.H36M_CAMERA_IDS)
    sel = (ds.labels["subject"] == "S9") & (ds.labels["sequence"] == "Walking")
    sel &= ds.labels["camera"] == 0
    np.testing.assert_array_equal(ds.pose2d_px[sel], pos2d["S9"]["Walking"][0][:10])
    np.testing.assert_array_equal(ds.labels["frame"][sel], np.arange(10))
    assert ds.pose3d_cam.shape == (len(ds), 17, 3) and np.all(ds.pose3d_cam[..., 2] > 1.0)
    np.testing.assert_allclose(ds.confidence, 1.0)
    train = h36m.load_h36m(d, source="gt", subjects=["S1"], subsample=5, actions=["Photo"])
    assert set(train.labels["action"]) == {"Photo"} and len(train) == 4 * 3  # frames 0, 5, 10


def test_drop_s11_directions_is_explicit(vp_files, caplog):
    d = vp_files[0]
    with caplog.at_level(logging.INFO, logger="jpose.data"):
        kept = h36m.load_h36m(d, split="drover_p1")
        dropped = h36m.load_h36m(d, split="drover_p1", drop_s11_directions=True)
    assert "keeping S11 'Directions'" in caplog.text and "dropping S11 'Directions'" in caplog.text
    assert set(kept.labels["action"]) == {"Directions", "Eating"}
    assert set(dropped.labels["action"]) == {"Eating"}


def test_coco_layout_file_with_confidence_and_missing_camera(vp_files, caplog):
    d, _, _, coco2d = vp_files
    with caplog.at_level(logging.WARNING, logger="jpose.data"):
        ds = h36m.load_h36m(d, source="detectron_pt_coco", subjects=["S11"])
    assert "missing" in caplog.text and "54138969" in caplog.text
    assert len(ds) == 3 * 6 + 4 * 7  # camera 0 of Directions missing
    sel = (ds.labels["sequence"] == "Eating") & (ds.labels["camera"] == 2)
    ref_pts, ref_conf = skeleton.coco17_to_h36m17(
        coco2d["S11"]["Eating"][2][..., :2], coco2d["S11"]["Eating"][2][..., 2]
    )
    np.testing.assert_allclose(ds.pose2d_px[sel], ref_pts, rtol=1e-6)
    np.testing.assert_allclose(ds.confidence[sel], ref_conf)


def test_two_d_only(vp_files):
    ds = h36m.load_h36m(vp_files[0], source="gt", with_3d=False, subjects=["S1"])
    assert ds.pose3d_cam is None and len(ds) == 4 * (20 + 12)


def test_bad_inputs(vp_files, tmp_path):
    d = vp_files[0]
    with pytest.raises(FileNotFoundError, match="data_3d_h36m.npz"):
        h36m.load_h36m(tmp_path, source="gt")
    with pytest.raises(ValueError, match="unknown Human3.6M 2D source 'cpn'"):
        h36m.load_h36m(d, source="cpn")
    with pytest.raises(DataFormatError, match=r"positions_3d\['S5'\].*absent"):
        h36m.load_h36m(d, source="gt", subjects=["S5"])
    with pytest.raises(ValueError, match="camera index"):
        h36m.load_h36m(d, cameras=[4])
    # wrong joint count
    _save_vp(tmp_path / "bad3d.npz", "positions_3d", {"S1": {"Walking": np.zeros((3, 16, 3))}})
    with pytest.raises(DataFormatError, match=r"bad3d.npz.*'Walking'.*32 \(VP\) or 17 joints"):
        h36m.read_h36m_3d(tmp_path / "bad3d.npz")
    # NaN coordinates
    nan = _world_sequence(3, 0)
    nan[1, 4, 2] = np.nan
    _save_vp(tmp_path / "nan3d.npz", "positions_3d", {"S1": {"Walking": nan}})
    with pytest.raises(DataFormatError, match=r"nan3d.npz.*NaN"):
        h36m.read_h36m_3d(tmp_path / "nan3d.npz")
    # millimetres instead of metres
    _save_vp(tmp_path / "mm.npz", "positions_3d", {"S1": {"Walking": _world_sequence(3, 0) * 1e3}})
    with pytest.raises(DataFormatError, match="millimetres"):
        h36m.read_h36m_3d(tmp_path / "mm.npz")
    # normalised 2D where pixels are expected
    norm = {"S1": {"Walking": [np.random.default_rng(0).uniform(-1, 1, (5, 17, 2))] * 4}}
    _save_vp(tmp_path / "norm2d.npz", "positions_2d", norm, {"layout_name": "h36m"})
    with pytest.raises(DataFormatError, match=r"norm2d.npz.*expected pixel coordinates"):
        h36m.read_h36m_2d(tmp_path / "norm2d.npz")
    # 2D joint count disagrees with the layout
    _save_vp(
        tmp_path / "j16.npz",
        "positions_2d",
        {"S1": {"W": [np.ones((2, 16, 2)) * 100] * 4}},
        {"layout_name": "h36m", "num_joints": 17},
    )
    with pytest.raises(DataFormatError, match=r"j16.npz.*\(T, 17, 2 or 3\)"):
        h36m.read_h36m_2d(tmp_path / "j16.npz")
    # not the pickled-dict format
    np.savez(tmp_path / "plain.npz", positions_3d=np.zeros((2, 32, 3)))
    with pytest.raises(DataFormatError, match="pickled dict"):
        h36m.read_h36m_3d(tmp_path / "plain.npz")
