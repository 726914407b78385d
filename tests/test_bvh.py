"""Tests of ``jpose.bvh`` (BVH export / import) and the ``.bvh`` output of ``experiments.infer``.

References: Euler angles against scipy's ``Rotation`` (uppercase orders = intrinsic, as BVH);
joint positions against the input poses (a BVH of constant-length bones reproduces them); an
independent reader (bvhio) when it is importable. The CLI case uses a stub predictor (no
training), so the module runs in a few seconds.
"""

import json

import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from _helpers import STANDING_H36M17

from jpose import bvh, inference, skeleton
from jpose.data import synthetic
from jpose.inference import cli as inference_cli

H36M = skeleton.H36M17
# body frame of jpose.data.synthetic (x = the person's right, y forward, z up) -> BVH frame
# (x = the person's left, y up, z forward); a proper rotation (det +1)
BODY_TO_BVH = np.array([[-1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
MM = 1e-3


def _synthetic_sequence(n=40, seed=0):
    """``n`` poses of one synthetic person (constant bone lengths), BVH frame, moving root."""
    rng = np.random.default_rng(seed)
    mix = dict.fromkeys(synthetic.POSE_CLASSES, 1.0)
    poses = synthetic.generate_poses(rng, num_people=1, poses_per_person=n, mix=mix)["pose"]
    root = np.cumsum(rng.normal(0.0, 0.05, (n, 1, 3)), axis=0) + np.array([0.3, 0.9, -4.0])
    return poses.astype(np.float64) @ BODY_TO_BVH.T + root


def _random_constant_length(layout, n, rng):
    """Random bone directions with one length per bone (any layout), root at the origin."""
    d = rng.normal(size=(n, layout.num_joints, 3))
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    bones = (d * rng.uniform(0.05, 0.5, layout.num_joints)[:, None])[:, layout.bones[:, 1]]
    return np.einsum("jb,tbd->tjd", layout.fk_matrix, bones)


# ---------------------------------------------------------------------------------------- euler


@pytest.mark.parametrize("order", ["ZXY", "XYZ", "ZYX", "YXZ", "XZY", "YZX"])
def test_euler_matches_scipy_and_round_trips(order):
    rotation = pytest.importorskip("scipy.spatial.transform").Rotation
    r = rotation.random(200, random_state=1).as_matrix()
    angles = bvh.euler_from_rotation(r, order=order)
    np.testing.assert_allclose(bvh.rotation_from_euler(angles, order=order), r, atol=1e-12)
    ref = rotation.from_euler(order, angles, degrees=True).as_matrix()
    np.testing.assert_allclose(ref, r, atol=1e-12)  # intrinsic, listed order
    assert np.all(np.abs(angles[:, 1]) <= 90.0 + 1e-9)
    # gimbal lock (middle angle +-90): the last angle is 0 and the matrix is reproduced
    locked = bvh.rotation_from_euler(np.array([[30.0, 90.0, 20.0], [-50.0, -90.0, 0.0]]),
                                     order=order)  # fmt: skip
    back = bvh.euler_from_rotation(locked, order=order)
    np.testing.assert_allclose(bvh.rotation_from_euler(back, order=order), locked, atol=1e-9)
    np.testing.assert_allclose(back[:, 2], 0.0, atol=1e-9)


def test_rotation_conventions_by_hand():
    # Zrotation 90 takes x to y (right-handed); R = Rz Rx Ry applies Ry first
    r = bvh.rotation_from_euler([90.0, 0.0, 0.0])
    np.testing.assert_allclose(r @ [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], atol=1e-12)
    r = bvh.rotation_from_euler([90.0, 0.0, 90.0])  # Ry(90): z -> x, then Rz(90): x -> y
    np.testing.assert_allclose(r @ [0.0, 0.0, 1.0], [0.0, 1.0, 0.0], atol=1e-12)
    with pytest.raises(ValueError, match="permutation"):
        bvh.rotation_from_euler([0.0, 0.0, 0.0], order="XXY")


def test_camera_frame_is_a_proper_rotation():
    # a person facing the camera (camera frame: y down): their left is on the image right (+x)
    cam = STANDING_H36M17.astype(np.float64)
    out = bvh.from_camera_frame(cam)
    np.testing.assert_allclose(bvh.from_camera_frame(out), cam)  # its own inverse
    head, foot = H36M.index("Head"), H36M.index("LFoot")
    assert out[head, 1] > out[foot, 1]  # y up
    assert out[H36M.index("LHip"), 0] > 0 > out[H36M.index("RHip"), 0]  # left at +x
    assert np.linalg.det(bvh.from_camera_frame(np.eye(3))) == pytest.approx(1.0)
    np.testing.assert_allclose(np.linalg.norm(out, axis=-1), np.linalg.norm(cam, axis=-1))


# ------------------------------------------------------------------------------------ round trip


def test_round_trip_exact_for_constant_bone_lengths(tmp_path):
    pos = _synthetic_sequence()
    fit = bvh.fit_bvh(pos, layout="h36m17", fps=25.0)
    assert fit.max_length_deviation_m < 1e-6  # synthetic bodies: one length per bone
    assert fit.max_position_error_m < 1e-6
    path = tmp_path / "seq.bvh"
    bvh.write_bvh(path, fit.bvh)
    text = path.read_text()
    assert text.startswith("HIERARCHY\nROOT Hip\n")  # no comment before HIERARCHY
    assert "CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation" in text
    assert f"Frames: {len(pos)}\nFrame Time: 0.04000000\n" in text
    back = bvh.read_bvh(path)
    assert back.names == fit.bvh.names and back.parents == fit.bvh.parents
    got = bvh.joint_positions(back, H36M.joint_names)  # centimetres -> metres
    assert np.abs(got - pos).max() < 0.01 * MM
    # hierarchy derived from the layout: link joints at the branching pelvis / thorax
    for link in ("Hip_RHip", "Hip_LHip", "Thorax_LShoulder", "Thorax_RShoulder"):
        n = back.index(link)
        np.testing.assert_allclose(back.offsets[n], 0.0)
    assert back.parents[back.index("Spine")] == back.index("Hip")  # central child: direct
    assert sum(back.end_site) == 5  # feet, wrists, head
    # T-pose rest in centimetres: left hip at +x, knee below the hip, spine up
    rest = fit.rest_lengths_m
    np.testing.assert_allclose(back.offsets[back.index("LHip")], [rest[4] * 100, 0, 0], atol=1e-5)
    assert back.offsets[back.index("LKnee")][1] < -30.0
    assert back.offsets[back.index("Spine")][1] > 10.0


def test_round_trip_cmu_mocap(shared_data):
    path = shared_data / "cmu_mocap_h36m17.npz"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    with np.load(path) as z:
        assert list(z["joint_names"]) == list(H36M.joint_names)
        zup = z["test/walking_1"][:120].astype(np.float64)  # metres, z up
    raw = zup @ np.array([[1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]]).T  # y up
    # Hip is the mid-hip point, not CMU's root: Hip->Spine varies by a few mm, which the fit
    # reports; with every bone scaled to its mean length the BVH is exact
    bones = H36M.incidence @ raw
    lengths = np.linalg.norm(bones, axis=-1, keepdims=True)
    spread = np.ptp(lengths, axis=0).max()
    assert 1 * MM < spread < 10 * MM
    loose = bvh.fit_bvh(raw, layout="h36m17")
    assert loose.max_length_deviation_m == pytest.approx(
        np.abs(lengths - lengths.mean(0)).max(), rel=1e-9
    )
    assert loose.max_position_error_m < 2 * spread
    pos = raw[:, :1] + H36M.fk_matrix @ (bones / lengths * lengths.mean(0))
    fit = bvh.fit_bvh(pos, layout="h36m17", fps=120.0)
    assert fit.max_length_deviation_m < 1e-9
    back = bvh.parse_bvh(bvh.format_bvh(fit.bvh))
    got = bvh.joint_positions(back, H36M.joint_names)
    assert np.abs(got - pos).max() < MM
    # a walk: the root travels, and the unwrapped angles have no 360 degree jumps
    assert np.ptp(back.motion[:, 0:3], axis=0).max() > 50.0  # centimetres
    assert np.abs(np.diff(back.motion[:, 3:], axis=0)).max() < 90.0


def test_bvhio_reads_the_same_positions(tmp_path):
    bvhio = pytest.importorskip("bvhio")
    pos = _synthetic_sequence(n=6, seed=3)
    path = tmp_path / "seq.bvh"
    bvh.write_bvh(path, bvh.fit_bvh(pos).bvh)
    root = bvhio.readAsHierarchy(str(path))
    joints = {j.Name: j for j, _, _ in root.layout()}
    for t in range(len(pos)):
        root.loadPose(t, recursive=True)
        got = np.array([list(joints[n].PositionWorld) for n in H36M.joint_names]) / 100.0
        assert np.abs(got - pos[t]).max() < MM


@pytest.mark.parametrize("layout", list(skeleton.LAYOUTS.values()), ids=list(skeleton.LAYOUTS))
def test_every_layout_is_exported_exactly(layout):
    pos = _random_constant_length(layout, 8, np.random.default_rng(2))
    fit = bvh.fit_bvh(pos, layout=layout)
    assert fit.max_position_error_m < 1e-6
    assert [n for n in layout.joint_names if n not in fit.bvh.names] == []


def test_varying_bone_lengths_are_reported():
    pos = _synthetic_sequence(n=20, seed=4)
    rel = pos - pos[:, :1]
    scale = 1.0 + 0.03 * np.sin(np.arange(20))[:, None, None]  # the whole body +-3 %
    fit = bvh.fit_bvh(rel * scale, layout="h36m17")
    bones = np.linalg.norm(H36M.incidence @ (rel * scale), axis=-1)
    np.testing.assert_allclose(fit.max_length_deviation_m,
                               np.abs(bones - bones.mean(0)).max(), rtol=1e-9)  # fmt: skip
    # the BVH keeps the directions: each joint is off by its scaled root distance
    want = (np.abs(scale[:, 0, 0] - scale.mean()) * np.linalg.norm(rel, axis=-1).T).max()
    assert fit.max_position_error_m == pytest.approx(want, rel=0.05)
    assert fit.max_position_error_m > 0.01
    # root-relative input keeps the root at the origin
    np.testing.assert_allclose(fit.bvh.motion[:, :3], 0.0, atol=1e-9)


# ------------------------------------------------------------------------------------ bad input


def test_degenerate_inputs_raise_clear_errors():
    pos = _synthetic_sequence(n=5, seed=5)
    bad = pos.copy()
    bad[3, H36M.index("LElbow"), 1] = np.nan
    with pytest.raises(ValueError, match=r"non-finite .* frame 3 joint LElbow"):
        bvh.fit_bvh(bad)
    bad = pos.copy()
    bad[2, H36M.index("RKnee")] = bad[2, H36M.index("RHip")]
    with pytest.raises(ValueError, match=r"bone RHip->RKnee has length 0 m in frame 2"):
        bvh.fit_bvh(bad)
    bad = pos.copy()  # the left hip on the spine's line: the pelvis twist is undefined
    spine = bad[1, H36M.index("Spine")] - bad[1, 0]
    bad[1, H36M.index("LHip")] = bad[1, 0] + 0.5 * spine
    bad[1, H36M.index("RHip")] = bad[1, 0] - 0.5 * spine
    with pytest.raises(ValueError, match=r"joint Hip: .*parallel in frame 1"):
        bvh.fit_bvh(bad)
    with pytest.raises(ValueError, match=r"expected shape \[T, 17, 3\]"):
        bvh.fit_bvh(pos[:, :16])
    with pytest.raises(ValueError, match="fps"):
        bvh.fit_bvh(pos, fps=0.0)
    text = bvh.format_bvh(bvh.fit_bvh(pos).bvh)
    with pytest.raises(ValueError, match="MOTION has"):
        bvh.parse_bvh(text.rsplit("\n", 2)[0])  # last frame cut
    with pytest.raises(ValueError, match="expected 'HIERARCHY'"):
        bvh.parse_bvh("# comment\n" + text)
    with pytest.raises(ValueError, match="unknown channel"):
        bvh.parse_bvh(text.replace("Zrotation", "Wrotation", 1))


# ------------------------------------------------------------------------------ infer .bvh output


def _result(poses_cam, image_id, track_id=None, absolute=True):
    """A minimal ``inference.lift`` result (camera frame, metres)."""
    poses_cam = np.array(poses_cam, np.float64)  # a copy: tests blank frames in place
    n = len(poses_cam)
    res = {
        "layout": "h36m17",
        "joint_names": list(H36M.joint_names),
        "pose3d_root_relative": poses_cam - poses_cam[:, :1],
        "image_id": np.asarray(image_id),
        "track_id": None if track_id is None else np.asarray(track_id),
        "valid": np.ones(n, bool),
        "invalid_reason": np.full(n, "", dtype=object),
        "warnings": [],
    }
    if absolute:
        res["pose3d_absolute"] = poses_cam
    return res


def test_write_bvh_files_per_track(tmp_path):
    seq = bvh.from_camera_frame(_synthetic_sequence(n=10, seed=6))  # camera frame
    two = np.concatenate([seq, seq + np.array([1.0, 0.0, 0.5])])
    backwards = np.arange(9, -1, -1)  # unordered input: track a's frames 9, 8, ..., 0
    frames = np.concatenate([backwards, np.arange(10)])
    res = _result(two[np.r_[backwards, 10:20]], frames, track_id=np.repeat(["a", "b"], 10))
    out = inference.write_output(res, tmp_path / "poses.bvh", fps=50.0)
    assert out == tmp_path / "poses_track*.bvh"
    for tag, offset in (("a", 0.0), ("b", 1.0)):
        b = bvh.read_bvh(tmp_path / f"poses_track{tag}.bvh")
        assert b.frame_time_s == pytest.approx(0.02)
        got = bvh.from_camera_frame(bvh.joint_positions(b, H36M.joint_names))
        want = seq + np.array([offset, 0.0, 0.5 * offset])
        assert np.abs(got - want).max() < MM  # frame order restored, absolute root kept
    # root-relative results: one track, one file, the root at the origin
    one = _result(seq, np.arange(10), absolute=False)
    messages = []
    path = inference.write_output(one, tmp_path / "rel.bvh", messages=messages)
    assert path == tmp_path / "rel.bvh" and messages == []
    np.testing.assert_allclose(bvh.read_bvh(path).motion[:, :3], 0.0, atol=1e-6)


def test_write_bvh_files_refuses_what_bvh_cannot_hold(tmp_path):
    seq = bvh.from_camera_frame(_synthetic_sequence(n=6, seed=7))
    out = tmp_path / "p.bvh"
    with pytest.raises(ValueError, match=r"image_id 0 has 2 people.*track_id"):
        inference.write_bvh_files(_result(np.concatenate([seq, seq]), np.r_[0:6, 0:6]), out)
    with pytest.raises(ValueError, match=r"not evenly spaced \(image_id 2 -> 5"):
        inference.write_bvh_files(_result(seq, [0, 1, 2, 5, 6, 7]), out)
    res = _result(seq, np.arange(6))
    res["valid"][3] = False
    res["invalid_reason"][3] = "4 joints with confidence > 0"
    res["pose3d_absolute"][3] = np.nan
    with pytest.raises(ValueError, match=r"1 frames without a valid 3D pose, first image_id 3 "
                                         r"\(4 joints"):  # fmt: skip
        inference.write_bvh_files(res, out)
    with pytest.raises(ValueError, match="unsupported output format '.bvhx'"):
        inference.write_output(_result(seq, np.arange(6)), tmp_path / "p.bvhx")
    # varying bone lengths: written, with a note (or a Python warning without `messages`)
    grow = seq * (1.0 + 0.05 * np.arange(6))[:, None, None]
    res = _result(grow - grow[:, :1], np.arange(6), absolute=False)
    files, notes = inference.write_bvh_files(res, out)
    assert files == [out] and len(notes) == 1 and "one length per bone" in notes[0]
    with pytest.warns(UserWarning, match="one length per bone"):
        inference.write_output(res, out)


def test_cli_writes_bvh(tmp_path, monkeypatch, capsys):
    """``jpose ... --output=x.bvh --fps=25`` with a stub pipeline (no training)."""
    table = jnp.asarray(STANDING_H36M17 - STANDING_H36M17[:1], jnp.float32)

    def predict(x, c):
        return {"pose3d": jnp.broadcast_to(table, (x.shape[0], 17, 3))}

    stub = inference.Predictor(experiment="stub", predict=predict, normalization="vp",
                            checkpoint={}, config=ml_collections.ConfigDict())  # fmt: skip
    monkeypatch.setattr(inference_cli, "load_predictor", lambda *a, **k: stub)
    focal, center = np.array([1000.0, 1000.0]), np.array([500.0, 500.0])
    cam = STANDING_H36M17 - STANDING_H36M17[:1] + np.array([0.1, 0.0, 4.0])
    px = cam[:, :2] / cam[:, 2:] * focal + center
    f = tmp_path / "kp.json"
    f.write_text(json.dumps({"keypoints": [px.tolist()] * 4, "layout": "h36m17"}))
    out = tmp_path / "poses.bvh"
    argv = ["--workdir", str(tmp_path), "--input", str(f), "--output", str(out),
            "--image_size", "1000,1000", "--focal", "1000,1000", "--fps", "25"]  # fmt: skip
    assert inference_cli.main(argv) == 0
    assert "wrote" in capsys.readouterr().out
    b = bvh.read_bvh(out)
    assert b.num_frames == 4 and b.frame_time_s == pytest.approx(0.04)
    got = bvh.from_camera_frame(bvh.joint_positions(b, H36M.joint_names))
    assert np.abs(got - cam).max() < MM  # root translation solved from the pixels
    with pytest.raises(SystemExit) as exc:
        inference_cli.main([*argv[:-1], "0"])
    assert exc.value.code == 2 and "--fps must be a positive number" in capsys.readouterr().err
