"""OpenPose BODY_25 and AlphaPose Halpe-26 inputs: the ``body25`` / ``halpe26`` layouts of
``jpose.skeleton`` and their readers in ``experiments.infer``.

References: joint orders from OpenPose's output documentation (BODY_25) and the Halpe-FullBody
README (Halpe-26), written out by hand below; conversions to H36M-17 checked against the rules
of ``jpose.skeleton`` worked out per joint. A stub predictor (no network) is enough here.
"""

import json

import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jpose import inference
from jpose import skeleton as sk

H36M = sk.H36M17
# OpenPose BODY_25 (doc/02_output.md) and Halpe-26 (Halpe-FullBody README), in their own words
BODY25_DOC = (
    "Nose Neck RShoulder RElbow RWrist LShoulder LElbow LWrist MidHip RHip RKnee RAnkle LHip "
    "LKnee LAnkle REye LEye REar LEar LBigToe LSmallToe LHeel RBigToe RSmallToe RHeel"
).split()
HALPE26_DOC = (
    "Nose LEye REye LEar REar LShoulder RShoulder LElbow RElbow LWrist RWrist LHip RHip LKnee "
    "RKnee LAnkle RAnkle Head Neck Hip LBigToe RBigToe LSmallToe RSmallToe LHeel RHeel"
).split()


def _doc_name(name):
    """jpose's snake_case joint name in the documents' spelling (left_big_toe -> LBigToe)."""
    side = {"left": "L", "right": "R", "mid": "Mid"}
    parts = name.split("_")
    head = side.get(parts[0], parts[0].capitalize())
    rest = parts[1:] if parts[0] in side else []
    return head + "".join(p.capitalize() for p in rest)


# ------------------------------------------------------------------------------------- layouts


@pytest.mark.parametrize(("layout", "doc"), [(sk.BODY25, BODY25_DOC), (sk.HALPE26, HALPE26_DOC)])
def test_joint_order_matches_the_documented_order(layout, doc):
    assert [_doc_name(n) for n in layout.joint_names] == doc
    assert sk.get_layout(layout.name) is layout
    assert inference.resolve_layout(layout.num_joints) == layout.name  # a unique joint count


@pytest.mark.parametrize("layout", [sk.BODY25, sk.HALPE26], ids=["body25", "halpe26"])
def test_flips_and_bones_are_derived_from_names(layout):
    # every left_* joint is paired with its right_* joint, nothing else
    lefts = [n for n in layout.joint_names if n.startswith("left_")]
    assert sorted(layout.symmetric_pairs) == sorted((n, "right_" + n[5:]) for n in lefts)
    perm = layout.flip_permutation
    for j, name in enumerate(layout.joint_names):
        mirror = name.replace("left_", "@").replace("right_", "left_").replace("@", "right_")
        assert layout.joint_names[perm[j]] == mirror
    # a bone and its mirror share a class; the central bones are their own mirror
    central = [c for c in layout.bones[:, 1] if perm[c] == c]
    assert layout.num_bone_classes == len(lefts) + len(central)
    # flipping commutes with the conversion to H36M-17 (the rules are left/right symmetric)
    x = np.random.default_rng(0).normal(size=(3, layout.num_joints, 3)).astype(np.float32)
    a = sk.flip_points(sk.convert_layout(x, source=layout, target=H36M)[0], layout=H36M)
    b = sk.convert_layout(sk.flip_points(x, layout=layout), source=layout, target=H36M)[0]
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_body25_to_h36m_rule_by_hand():
    b = sk.BODY25
    kp = np.zeros((25, 2), np.float32)
    kp[b.index("mid_hip")] = (1.0, 10.0)
    kp[b.index("neck")] = (1.0, 4.0)
    kp[b.index("nose")] = (1.5, 2.0)
    kp[b.index("left_eye")], kp[b.index("right_eye")] = (2.0, 1.0), (1.0, 1.0)
    kp[b.index("left_knee")] = (3.0, 14.0)
    conf = np.ones(25, np.float32)
    conf[b.index("left_heel")] = 0.0  # foot points are not used
    out, c = sk.body25_to_h36m17(kp, conf)
    np.testing.assert_allclose(out[H36M.index("Hip")], (1.0, 10.0))  # MidHip
    np.testing.assert_allclose(out[H36M.index("Thorax")], (1.0, 4.0))  # neck
    np.testing.assert_allclose(out[H36M.index("Spine")], (1.0, 7.0))  # mid(MidHip, neck)
    np.testing.assert_allclose(out[H36M.index("Neck/Nose")], (1.5, 2.0))
    np.testing.assert_allclose(out[H36M.index("Head")], (1.5, 1.0))  # mid-eyes
    np.testing.assert_allclose(out[H36M.index("LKnee")], (3.0, 14.0))
    np.testing.assert_allclose(c, 1.0)


def test_halpe26_to_h36m_rule_by_hand():
    h = sk.HALPE26
    kp = np.arange(52, dtype=np.float32).reshape(26, 2)
    out, _ = sk.halpe26_to_h36m17(kp)
    np.testing.assert_allclose(out[H36M.index("Hip")], kp[h.index("hip")])
    np.testing.assert_allclose(out[H36M.index("Thorax")], kp[h.index("neck")])
    np.testing.assert_allclose(out[H36M.index("Head")], kp[h.index("head")])
    mid = (kp[h.index("hip")] + kp[h.index("neck")]) / 2
    np.testing.assert_allclose(out[H36M.index("Spine")], mid)
    # COCO's joints keep their COCO meaning
    np.testing.assert_allclose(out[H36M.index("RWrist")], kp[h.index("right_wrist")])
    assert h.joint_names[:17] == sk.COCO17.joint_names


# -------------------------------------------------------------------------------------- readers


def _body25(rng, shift=0.0):
    """One plausible BODY_25 person (pixels) with a few undetected joints (0, 0, 0)."""
    kp = np.zeros((25, 3))
    kp[:, 0] = rng.uniform(300, 700, 25) + shift
    kp[:, 1] = rng.uniform(100, 900, 25)
    kp[:, 2] = rng.uniform(0.3, 0.9, 25)
    kp[sk.BODY25.index("left_ear")] = 0.0
    return kp


def _write_frame(path, people):
    path.write_text(json.dumps({"version": 1.3, "people": [
        {"person_id": pid, "pose_keypoints_2d": kp.reshape(-1).tolist(),
         "face_keypoints_2d": [], "hand_left_keypoints_2d": []}
        for pid, kp in people
    ]}))  # fmt: skip


def _stub():
    table = jnp.asarray(np.random.default_rng(1).normal(0, 0.3, (17, 3)), jnp.float32)

    def predict(x, c):
        return {"pose3d": jnp.broadcast_to(table - table[:1], (x.shape[0], 17, 3))}

    return inference.Predictor(experiment="stub", predict=predict, normalization="vp",
                            checkpoint={}, config=ml_collections.ConfigDict())  # fmt: skip


def test_openpose_directory_two_frames_two_people(tmp_path):
    rng = np.random.default_rng(0)
    people = {(f, pid): _body25(rng, 50.0 * pid) for f in (9, 10) for pid in (3, 7)}
    people[10, 7][sk.BODY25.index("mid_hip")] = 0.0  # MidHip undetected in one person
    d = tmp_path / "openpose"
    d.mkdir()
    for f in (10, 9):  # unpadded names: "clip_10" sorts before "clip_9" as text
        # OpenPose >= 1.5 writes person_id as [id]; older versions as a number
        _write_frame(d / f"clip_{f}_keypoints.json",
                     [([3], people[f, 3]), (7, people[f, 7])])  # fmt: skip
    (d / "notes.txt").write_text("not a keypoint file")
    inp = inference.load_keypoints(d)
    assert inp.layout == "body25" and len(inp) == 4
    assert inp.image_id.tolist() == [9, 9, 10, 10]  # frame-number order
    assert inp.track_id.tolist() == [3, 7, 3, 7]
    assert inp.image_size_px is None  # OpenPose records no image size
    want = np.stack([people[9, 3], people[9, 7], people[10, 3], people[10, 7]])
    np.testing.assert_allclose(inp.keypoints_px, want[..., :2], rtol=1e-6)
    np.testing.assert_allclose(inp.scores, want[..., 2], rtol=1e-6)
    assert inp.scores[:, sk.BODY25.index("left_ear")].max() == 0.0  # 0, 0, 0 = missing

    # converted to H36M-17: Hip is the detected MidHip, Spine half way to the neck
    pts, conf = sk.convert_layout(inp.keypoints_px, inp.scores, source="body25", target=H36M)
    b = sk.BODY25
    np.testing.assert_allclose(pts[:, H36M.index("Hip")], inp.keypoints_px[:, b.index("mid_hip")])
    spine = (inp.keypoints_px[:, b.index("mid_hip")] + inp.keypoints_px[:, b.index("neck")]) / 2
    np.testing.assert_allclose(pts[:, H36M.index("Spine")], spine, rtol=1e-6)
    assert conf[3, H36M.index("Hip")] == 0 and conf[3, H36M.index("Spine")] == 0
    assert conf[2, H36M.index("Hip")] > 0

    # lifting: no image size is the usual clear error; with --image_size the tracks smooth
    with pytest.raises(ValueError, match="needs each image's size"):
        inference.lift(_stub(), inp)
    inp = inference.load_keypoints(d, image_size=(1000, 1000))
    res = inference.lift(_stub(), inp, smooth_sigma=1.0)
    assert res["input_layout"] == "body25" and res["track_id"].tolist() == [3, 7, 3, 7]
    assert np.isfinite(res["pose3d_root_relative"][res["valid"]]).all()

    # one file: its frame number is the image id
    one = inference.load_keypoints(d / "clip_10_keypoints.json")
    assert one.image_id.tolist() == [10, 10] and one.layout == "body25"


def test_openpose_other_models_and_bad_files(tmp_path):
    rng = np.random.default_rng(1)
    f = tmp_path / "img_keypoints.json"
    _write_frame(f, [([-1], _body25(rng)[:18])])  # OpenPose's COCO model: 18 joints
    inp = inference.load_keypoints(f)
    assert inp.layout == "openpose18" and inp.track_id is None
    assert inp.image_id.tolist() == ["img"]  # no frame number in the name
    _write_frame(f, [([-1], _body25(rng)[:15])])  # the MPI model
    with pytest.raises(ValueError, match="15 joints, which matches no known layout"):
        inference.load_keypoints(f)
    _write_frame(f, [([-1], _body25(rng)), ([4], _body25(rng))])
    with pytest.raises(ValueError, match="'person_id' is set .* for some people but not all"):
        inference.load_keypoints(f)
    _write_frame(f, [])
    with pytest.raises(ValueError, match="empty input: no people"):
        inference.load_keypoints(f)
    f.write_text(json.dumps({"people": [{"person_id": [-1], "pose_keypoints_2d": []}]}))
    with pytest.raises(ValueError, match="has 0 values.*body model"):
        inference.load_keypoints(f)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match=r"no OpenPose \*_keypoints.json files"):
        inference.load_keypoints(empty)
    two = tmp_path / "two"
    two.mkdir()
    _write_frame(two / "a_000000000000_keypoints.json", [([-1], _body25(rng))])
    _write_frame(two / "b_000000000000_keypoints.json", [([-1], _body25(rng))])
    with pytest.raises(ValueError, match="OpenPose files of 2 videos"):
        inference.load_keypoints(two)


def test_halpe26_coco_results_resolved_by_count(tmp_path):
    rng = np.random.default_rng(2)
    kp = np.concatenate([rng.uniform(100, 900, (2, 26, 2)), rng.uniform(0.2, 1, (2, 26, 1))], -1)
    # AlphaPose's results: COCO results with 26 keypoints, image file names, "box" = x, y, w, h
    dets = [{"image_id": f"{i}.jpg", "category_id": 1, "score": 2.5, "idx": [0.0],
             "keypoints": kp[i].reshape(-1).tolist(), "box": [10.0, 20.0, 300.0, 400.0]}
            for i in range(2)]  # fmt: skip
    f = tmp_path / "alphapose-results.json"
    f.write_text(json.dumps(dets))
    inp = inference.load_keypoints(f, image_size=(1000, 1000))
    assert inp.layout == "halpe26" and inp.image_id.tolist() == ["0.jpg", "1.jpg"]
    np.testing.assert_allclose(inp.bbox_px, [[10, 20, 300, 400]] * 2)
    assert inp.track_id is None  # AlphaPose's "idx" is not a track id without --pose_track
    res = inference.lift(_stub(), inp)
    pts, conf = sk.halpe26_to_h36m17(kp[..., :2].astype(np.float32), kp[..., 2].astype(np.float32))
    np.testing.assert_allclose(res["keypoints_px"], pts, rtol=1e-5)
    np.testing.assert_allclose(res["joint_scores"], conf, rtol=1e-6)
    with pytest.raises(ValueError, match="layout coco17 has 17 joints but the keypoints have 26"):
        inference.load_keypoints(f, layout="coco17")
