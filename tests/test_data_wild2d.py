"""In-the-wild 2D loaders: COCO JSON and MPII JSON fixtures, and the shared compact files."""

import json
import logging

import numpy as np
import pytest

from jpose import skeleton
from jpose.data import wild2d
from jpose.data.common import DataFormatError, denormalize_2d, normalize_2d

H = skeleton.H36M17.index


def _coco_json(path):
    rng = np.random.default_rng(0)

    def person(image_id, ann_id, vis):
        xy = rng.uniform(50, 600, (17, 2))
        xy[np.asarray(vis) == 0] = 0
        kp = np.concatenate([xy, np.asarray(vis)[:, None]], -1).reshape(-1)
        return {
            "id": ann_id,
            "image_id": image_id,
            "category_id": 1,
            "iscrowd": 0,
            "num_keypoints": int((np.asarray(vis) > 0).sum()),
            "keypoints": kp.tolist(),
            "bbox": [40.0, 30.0, 300.0, 500.0],
            "area": 1000.0,
        }

    full = [2] * 17
    occl = [2] * 15 + [1, 1]  # ankles occluded
    few = [2, 2, 2] + [0] * 14
    crowd = person(2, 13, full)
    crowd["iscrowd"] = 1
    data = {
        "images": [
            {"id": 1, "file_name": "000000000001.jpg", "width": 640, "height": 480},
            {"id": 2, "file_name": "000000000002.jpg", "width": 500, "height": 375},
        ],
        "annotations": [person(1, 10, full), person(1, 11, occl), person(2, 12, few), crowd],
        "categories": [{"id": 1, "name": "person"}],
    }
    path.write_text(json.dumps(data))
    return data


def test_coco_json(tmp_path, caplog):
    data = _coco_json(tmp_path / "person_keypoints_val.json")
    with caplog.at_level(logging.INFO, logger="jpose.data"):
        ds = wild2d.load_coco_keypoints_json(
            tmp_path / "person_keypoints_val.json", occluded_confidence=0.5
        )
    assert "1 crowd annotations removed" in caplog.text
    assert len(ds) == 3 and ds.pose3d_cam is None
    kp = np.asarray(data["annotations"][1]["keypoints"]).reshape(17, 3)
    # mmpose rule: Hip = mid-hips, Thorax = mid-shoulders, Head = mid-eyes, Neck/Nose = nose
    np.testing.assert_allclose(ds.pose2d_px[1, H("Hip")], kp[[11, 12], :2].mean(0), rtol=1e-6)
    np.testing.assert_allclose(ds.pose2d_px[1, H("Thorax")], kp[[5, 6], :2].mean(0), rtol=1e-6)
    np.testing.assert_allclose(ds.pose2d_px[1, H("Head")], kp[[1, 2], :2].mean(0), rtol=1e-6)
    np.testing.assert_allclose(ds.pose2d_px[1, H("LFoot")], kp[15, :2], rtol=1e-6)
    assert ds.confidence[1, H("LFoot")] == 0.5 and ds.confidence[1, H("LKnee")] == 1.0
    # CameraPose normalisation by image width and height
    np.testing.assert_allclose(ds.pose2d_norm[0], ds.pose2d_px[0] / [640, 480] * 2 - 1, atol=1e-6)
    # person 3 has only nose and eyes: Neck/Nose and Head present, everything else missing
    assert set(np.nonzero(ds.confidence[2])[0]) == {H("Neck/Nose"), H("Head")}
    assert np.all(ds.pose2d_norm[2][ds.confidence[2] == 0] == 0)
    assert list(ds.labels["person_index"]) == [0, 1, 0]
    # filtering by annotated-joint count is logged
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="jpose.data"):
        full = wild2d.load_coco_keypoints_json(
            tmp_path / "person_keypoints_val.json", min_joints=10, min_h36m_joints=17
        )
    assert len(full) == 2 and "fewer than 10 labelled coco joints: 1 removed" in caplog.text


def test_mpii_json(tmp_path):
    joints = np.arange(32, dtype=float).reshape(16, 2) * 10 + 101  # 1-based
    joints[9] = [-1, -1]  # head top missing
    ann = [
        {
            "image": "015601864.jpg",
            "joints": joints.tolist(),
            "joints_vis": [1] * 15 + [1],
            "center": [594, 257],
            "scale": 3.0,
        }
    ]
    (tmp_path / "mpii_val.json").write_text(json.dumps(ann))
    ds = wild2d.load_mpii_json(tmp_path / "mpii_val.json")
    # 0-based pixels; MPII pelvis -> Hip, thorax -> Thorax, head_top (missing) -> Head
    np.testing.assert_allclose(ds.pose2d_px[0, H("Hip")], joints[6] - 1)
    np.testing.assert_allclose(ds.pose2d_px[0, H("Spine")], (joints[6] + joints[7]) / 2 - 1)
    assert ds.confidence[0, H("Head")] == 0 and ds.confidence[0, H("Thorax")] == 1
    assert ds.normalization == "bbox" and np.abs(ds.pose2d_norm).max() <= 1.0 + 1e-6
    assert ds.labels["image_id"][0] == 15601864
    with pytest.raises(DataFormatError, match="image_size"):
        wild2d.load_mpii_json(tmp_path / "mpii_val.json", normalization="image")


def test_normalisations_round_trip():
    rng = np.random.default_rng(0)
    uv = rng.uniform(0, 1000, (5, 17, 2)).astype(np.float32)
    size = np.array([[1000, 1002]] * 5)
    box = np.array([[100, 200, 300, 600]] * 5, np.float32)
    for mode in ("vp", "image", "bbox", "none"):
        n = normalize_2d(uv, mode=mode, image_size=size, bbox=box)
        np.testing.assert_allclose(
            denormalize_2d(n, mode=mode, image_size=size, bbox=box), uv, rtol=1e-5, atol=1e-3
        )
    # hand-derived: the image centre maps to 0 (image), and to (0, 0) with VP for a square image
    np.testing.assert_allclose(
        normalize_2d(np.array([[[500.0, 501.0]]]), mode="image", image_size=[[1000, 1002]]), 0
    )
    np.testing.assert_allclose(
        normalize_2d(np.array([[[500.0, 500.0]]]), mode="vp", image_size=[[1000, 1000]]), 0
    )


# ------------------------------------------------------------------- shared compact files


@pytest.fixture(scope="module")
def coco_val(shared_data):
    return wild2d.load_wild2d_npz(shared_data / "wild2d_coco.npz")


def test_shared_coco_val(shared_data, coco_val):
    raw = np.load(shared_data / "wild2d_coco.npz")
    assert len(coco_val) == 6352 and len(np.unique(coco_val.labels["image_id"])) == 2346
    kp, vis = raw["keypoints"], raw["visibility"]
    both_hips = (vis[:, 11] > 0) & (vis[:, 12] > 0)
    # converter: Hip = mid-hips where both are labelled, missing otherwise
    np.testing.assert_allclose(
        coco_val.pose2d_px[both_hips, H("Hip")], kp[both_hips][:, [11, 12]].mean(1), rtol=1e-6
    )
    np.testing.assert_array_equal(coco_val.confidence[:, H("Hip")] > 0, both_hips)
    np.testing.assert_array_equal(coco_val.confidence[:, H("RFoot")] > 0, vis[:, 16] > 0)
    # CameraPose normalisation keeps labelled joints of in-image people within [-1, 1]-ish
    ok = coco_val.confidence > 0
    assert np.abs(coco_val.pose2d_norm[ok]).max() < 1.5
    complete = (coco_val.confidence > 0).all(-1).sum()
    assert 0 < complete < len(coco_val)


def test_shared_coco_train_normalised(shared_data):
    ds = wild2d.load_wild2d_npz(shared_data / "wild2d_coco_train_norm.npz", min_h36m_joints=17)
    raw = np.load(shared_data / "wild2d_coco_train_norm.npz")
    assert ds.pose2d_px is None and ds.normalization == "image"
    assert 0 < len(ds) < 149813
    i = np.nonzero((raw["visibility"] > 0).all(-1))[0][0]
    row = np.nonzero(ds.labels["image_id"] == raw["image_id"][i])[0]
    j = row[ds.labels["person_index"][row] == raw["person_index"][i]][0]
    np.testing.assert_allclose(
        ds.pose2d_norm[j, H("LWrist")], raw["keypoints_normalized"][i, 9] * 2 - 1, atol=1e-6
    )
    with pytest.raises(DataFormatError, match="keypoints_normalized"):
        wild2d.load_wild2d_npz(shared_data / "wild2d_coco_train_norm.npz", normalization="vp")


def test_shared_mpii(shared_data):
    ds = wild2d.load_wild2d_npz(shared_data / "wild2d_mpii.npz")
    raw = np.load(shared_data / "wild2d_mpii.npz")
    assert len(ds) == 2958 and ds.normalization == "bbox"
    vis = raw["visibility"]
    sel = (vis[:, 6] > 0) & (vis[:, 7] > 0)
    np.testing.assert_allclose(
        ds.pose2d_px[sel, H("Spine")], raw["keypoints"][sel][:, [6, 7]].mean(1), rtol=1e-6
    )
    np.testing.assert_allclose(ds.pose2d_px[:, H("RFoot")], raw["keypoints"][:, 0])
    complete = wild2d.load_wild2d_npz(shared_data / "wild2d_mpii.npz", min_joints=16)
    assert len(complete) == int((vis > 0).all(-1).sum())
    with pytest.raises(DataFormatError, match="image_size"):
        wild2d.load_wild2d_npz(shared_data / "wild2d_mpii.npz", normalization="image")


def test_bad_compact_file(tmp_path):
    np.savez(
        tmp_path / "w.npz",
        visibility=np.ones((2, 15), np.int32),
        image_id=np.zeros(2),
        joint_names=np.array([f"j{i}" for i in range(15)]),
    )
    with pytest.raises(DataFormatError, match=r"w.npz: key 'joint_names'"):
        wild2d.load_wild2d_npz(tmp_path / "w.npz")
    names = np.array(skeleton.COCO17.joint_names)
    np.savez(
        tmp_path / "px.npz",
        visibility=np.full((2, 17), 2),
        image_id=np.zeros(2),
        joint_names=names,
        keypoints_normalized=np.full((2, 17, 2), 300.0),
    )
    with pytest.raises(DataFormatError, match="expected normalised coordinates"):
        wild2d.load_wild2d_npz(tmp_path / "px.npz")
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        wild2d.load_wild2d_npz(tmp_path / "missing.npz")
