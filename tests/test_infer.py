"""Tests of ``experiments.infer`` (lifting users' 2D detections) and
``jpose.camera.solve_root_translation``.

Predictors are built here from a tiny randomly initialised Martinez lifter (nothing is trained)
or from stubs returning known 3D; the CLI test runs the baseline's smoke config (a few seconds)
in a module fixture. XLA's optimisations are off for this module (compilation dominates).
"""

import json

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from _helpers import STANDING_H36M17

from jpose import camera, inference, models, skeleton
from jpose.data import normalize_2d
from jpose.inference import cli as inference_cli

FOCAL = np.array([1145.0, 1143.5])
CENTER = np.array([512.5, 515.0])
SIZE = np.array([1000.0, 1002.0])


pytestmark = pytest.mark.usefixtures("fast_compile")


def _rot_y(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _poses(n, seed=0):
    """``n`` camera-frame H36M-17 poses (metres): rotated, perturbed, 3.5-6 m away."""
    rng = np.random.default_rng(seed)
    rel = np.stack([STANDING_H36M17 @ _rot_y(a).T for a in rng.uniform(-np.pi, np.pi, n)])
    rel = rel + rng.normal(0, 0.02, rel.shape)
    rel -= rel[:, :1]
    root = np.stack([rng.uniform(-1, 1, n), rng.uniform(-0.5, 0.5, n), rng.uniform(3.5, 6, n)], -1)
    return rel, rel + root[:, None]


def _project(p):
    return p[..., :2] / p[..., 2:] * FOCAL + CENTER


def _predictor(normalization="vp", **kw):
    model = models.martinez_lifter(17, width=32, num_blocks=1)
    variables = model.init(jax.random.key(0), jnp.zeros((2, 17, 2)))

    @jax.jit
    def predict(x, c):
        y = model.apply(variables, x, train=False)[0]
        return {"pose3d": y - y[..., :1, :]}

    return inference.Predictor(
        experiment="test",
        predict=predict,
        normalization=normalization,
        checkpoint={"lifter": 0},
        config=ml_collections.ConfigDict(),
        description="tiny random lifter",
        **kw,
    )


def _stub(pose3d, normalization="vp", **kw):
    """A predictor returning ``pose3d`` (one batch: use batch_size >= len(pose3d))."""
    table = jnp.asarray(pose3d, jnp.float32)

    def predict(x, c):
        return {"pose3d": table[: x.shape[0]]}

    return inference.Predictor(
        experiment="stub",
        predict=predict,
        normalization=normalization,
        checkpoint={},
        config=ml_collections.ConfigDict(),
        **kw,
    )


@pytest.fixture(scope="module")
def lifter():
    return _predictor()


# ------------------------------------------------------------------------------------- round trip


def test_round_trip_npz_matches_predict(tmp_path, lifter):
    _, cam = _poses(37)
    px = _project(cam).astype(np.float32)
    f = tmp_path / "kp.npz"
    np.savez(f, keypoints=px, layout="h36m17", image_size=SIZE)
    inp = inference.load_keypoints(f)
    assert inp.layout == "h36m17" and inp.image_size_px.shape == (37, 2)
    res = inference.lift(lifter, inp, batch_size=16)  # 3 batches, the last one padded
    norm = normalize_2d(px, mode="vp", image_size=SIZE)
    want = np.asarray(lifter.predict(norm, np.ones((37, 17), np.float32))["pose3d"])
    np.testing.assert_allclose(res["pose3d_root_relative"], want, atol=1e-5)
    assert "pose3d_absolute" not in res and res["absolute_source"] is None
    assert res["joint_names"] == list(skeleton.H36M17.joint_names)
    assert res["units"] == "metres" and res["frame"].startswith("camera")
    t = res["timing"]
    assert t["num_batches"] == 3 and t["seconds_per_person"] > 0


def test_image_normalisation_and_json_arrays(tmp_path):
    pred = _predictor("image")
    _, cam = _poses(5)
    px = _project(cam).astype(np.float32)
    f = tmp_path / "kp.json"
    f.write_text(
        json.dumps({"keypoints": px.tolist(), "layout": "h36m17", "frame": [3, 4, 5, 6, 7]})
    )
    res = inference.lift(pred, inference.load_keypoints(f, image_size=SIZE))
    norm = normalize_2d(px, mode="image", image_size=SIZE)
    want = np.asarray(pred.predict(norm, np.ones((5, 17), np.float32))["pose3d"])
    np.testing.assert_allclose(res["pose3d_root_relative"], want, atol=1e-5)
    assert res["image_id"].tolist() == [3, 4, 5, 6, 7]


# --------------------------------------------------------------------- translation (intrinsics)


def test_solve_root_translation_exact_and_weighted():
    rel, cam = _poses(6, seed=1)
    uv = _project(cam)
    t = camera.solve_root_translation(rel, uv, focal=FOCAL, center=CENTER)
    np.testing.assert_allclose(t, cam[:, 0], atol=1e-6)
    # a corrupted joint with weight 0 is ignored
    uv_bad, w = uv.copy(), np.ones(uv.shape[:-1])
    uv_bad[:, 5] += 80.0
    w[:, 5] = 0.0
    t = camera.solve_root_translation(rel, uv_bad, w, focal=FOCAL, center=CENTER)
    np.testing.assert_allclose(t, cam[:, 0], atol=1e-6)
    # fewer than two usable joints: NaN
    w1 = np.zeros(uv.shape[:-1])
    w1[:, 3] = 1.0
    assert np.isnan(camera.solve_root_translation(rel, uv, w1, focal=FOCAL, center=CENTER)).all()
    # noisy pixels: the re-weighted solve stays close
    noisy = uv + np.random.default_rng(0).normal(0, 1.0, uv.shape)
    t = camera.solve_root_translation(rel, noisy, focal=FOCAL, center=CENTER)
    assert np.abs(t - cam[:, 0]).max() < 0.05


def test_known_intrinsics_give_absolute_pose(tmp_path):
    rel, cam = _poses(9, seed=2)
    px = _project(cam).astype(np.float32)
    scores = np.ones((9, 17), np.float32)
    scores[:, 12] = 0.0
    px[:, 12] = np.nan  # a missing joint may be NaN when its score is 0
    f = tmp_path / "kp.npz"
    np.savez(f, keypoints=px, scores=scores, layout="h36m17", image_size=SIZE)
    inp = inference.load_keypoints(f)
    res = inference.lift(_stub(rel), inp, intrinsics_px={"focal": FOCAL, "center": CENTER})
    assert res["absolute_source"] == "known_intrinsics"
    np.testing.assert_allclose(res["pose3d_absolute"], cam, atol=1e-4)
    np.testing.assert_allclose(res["translation"], cam[:, 0], atol=1e-4)
    assert res["joint_scores"][:, 12].max() == 0.0


def test_camera_branch_outputs_in_pixels():
    rel, cam = _poses(4, seed=3)
    px = _project(cam).astype(np.float32)
    f_n = 2.0 * FOCAL / SIZE[0]  # vp normalisation: f_n = 2 f / w, c_n = 2 c / w - (1, h / w)
    c_n = 2.0 * CENTER / SIZE[0] - np.array([1.0, SIZE[1] / SIZE[0]])
    table = jnp.asarray(rel, jnp.float32)

    def predict(x, c):
        b = x.shape[0]
        return {
            "pose3d": table[:b],
            "translation": jnp.asarray(cam[:, 0], jnp.float32)[:b],
            "focal": jnp.tile(jnp.asarray(f_n, jnp.float32), (b, 1)),
            "center": jnp.tile(jnp.asarray(c_n, jnp.float32), (b, 1)),
        }

    pred = inference.Predictor(
        experiment="cam",
        predict=predict,
        normalization="vp",
        checkpoint={},
        config=ml_collections.ConfigDict(),
        has_camera=True,
        metric_scale=False,
    )
    inp = inference.KeypointInput(
        px,
        np.ones((4, 17), np.float32),
        "h36m17",
        np.arange(4),
        None,
        np.tile(SIZE, (4, 1)).astype(np.float32),
        "mem",
    )
    res = inference.lift(pred, inp)
    assert res["absolute_source"] == "camera_branch"
    np.testing.assert_allclose(res["pose3d_absolute"], cam, atol=1e-4)
    np.testing.assert_allclose(res["focal_px"], np.tile(FOCAL, (4, 1)), rtol=1e-4)
    np.testing.assert_allclose(res["center_px"], np.tile(CENTER, (4, 1)), atol=1e-2)
    assert any("up to scale" in w for w in res["warnings"])


# ------------------------------------------------------------------------------------ COCO input


def _coco_results(n, seed=0):
    rng = np.random.default_rng(seed)
    kp = rng.uniform(100, 900, (n, 17, 2)).astype(np.float32)
    sc = rng.uniform(0.2, 1.0, (n, 17)).astype(np.float32)
    sc[0, 1] = 0.0  # left eye missing -> Head missing
    dets = [
        {
            "image_id": 10 + i,
            "category_id": 1,
            "score": 0.9,
            "keypoints": np.concatenate([kp[i], sc[i, :, None]], -1).reshape(-1).tolist(),
        }
        for i in range(n)
    ]
    return dets, kp, sc


def test_coco_results_go_through_the_converter(tmp_path, lifter):
    dets, kp, sc = _coco_results(6)
    f = tmp_path / "dets.json"
    f.write_text(json.dumps(dets))
    ann = tmp_path / "ann.json"
    ann.write_text(
        json.dumps({"images": [{"id": 10 + i, "width": 1000, "height": 800} for i in range(6)]})
    )
    inp = inference.load_keypoints(f, annotations=ann)
    assert inp.layout == "coco17"
    np.testing.assert_allclose(inp.image_size_px, np.tile([1000, 800], (6, 1)))
    res = inference.lift(lifter, inp)
    pts, conf = skeleton.coco17_to_h36m17(kp, sc)
    np.testing.assert_allclose(res["keypoints_px"], pts, atol=1e-4)
    np.testing.assert_allclose(res["joint_scores"], conf)
    assert conf[0, skeleton.H36M17.index("Head")] == 0.0
    norm = normalize_2d(pts, mode="vp", image_size=np.array([1000, 800]))
    norm = np.where(conf[..., None] > 0, norm, 0.0).astype(np.float32)
    want = np.asarray(lifter.predict(norm, conf)["pose3d"])
    np.testing.assert_allclose(res["pose3d_root_relative"], want, atol=1e-5)
    np.testing.assert_allclose(res["score"], 0.9)
    # image_sizes mapping (string keys) gives the same sizes; min_score drops joints
    inp2 = inference.load_keypoints(f, image_sizes={str(10 + i): [1000, 800] for i in range(6)})
    np.testing.assert_allclose(inp2.image_size_px, inp.image_size_px)
    res2 = inference.lift(lifter, inp2, min_score=0.5)
    assert np.all(res2["joint_scores"][conf < 0.5] == 0)


def test_coco_annotation_file_and_json_output(tmp_path, lifter):
    _, kp, _ = _coco_results(2)
    vis = np.full((2, 17), 2)
    vis[0, 0] = 0  # nose unlabelled -> Neck/Nose missing
    vis[1, 1:] = 0  # only the nose: one H36M joint, no translation
    anns = {
        "images": [{"id": 5, "width": 640, "height": 480}],
        "annotations": [
            {
                "id": i,
                "image_id": 5,
                "track_id": i,
                "iscrowd": 0,
                "bbox": [0, 0, 10, 10],
                "keypoints": np.concatenate([kp[i], vis[i, :, None]], -1).reshape(-1).tolist(),
            }
            for i in range(2)
        ],
    }
    f = tmp_path / "gt.json"
    f.write_text(json.dumps(anns))
    inp = inference.load_keypoints(f)
    assert inp.layout == "coco17" and inp.track_id.tolist() == [0, 1]
    np.testing.assert_allclose(inp.image_size_px, [[640, 480], [640, 480]])
    rel = _poses(2)[0]
    # by default a person with one joint is flagged (valid False, NaN), not lifted
    flagged = inference.lift(_stub(rel), inp, intrinsics_px={"focal": (500, 500)})
    assert flagged["valid"].tolist() == [True, False]
    assert np.isnan(flagged["pose3d_root_relative"][1]).all()
    assert "fewer than 8" in flagged["warnings"][-1]
    res = inference.lift(_stub(rel), inp, intrinsics_px={"focal": (500, 500)}, min_joints=1)
    assert res["joint_scores"][0, skeleton.H36M17.index("Neck/Nose")] == 0.0
    assert (res["joint_scores"][1] > 0).sum() == 1
    out = inference.write_output(res, tmp_path / "o.json")
    back = json.loads(out.read_text())
    assert back["track_id"] == [0, 1] and back["image_id"] == [5, 5]
    assert np.isfinite(np.asarray(back["pose3d_absolute"][0], float)).all()
    assert back["pose3d_absolute"][1][0][0] is None  # NaN (flagged person) written as null
    # one joint is also a degenerate 2D extent: flagged even with min_joints=1
    assert back["valid"] == [True, False] and "degenerate 2D" in back["warnings"][-1]


def test_bbox_normalisation_needs_no_image_size(tmp_path):
    pred = _predictor("bbox")
    dets, kp, sc = _coco_results(3)
    f = tmp_path / "dets.json"
    f.write_text(json.dumps(dets))
    res = inference.lift(pred, inference.load_keypoints(f))
    assert np.isfinite(res["pose3d_root_relative"]).all()


def _echo(normalization, *, has_camera=False):
    """A predictor whose ``pose3d`` is its normalised 2D input (z = 0), and with
    ``has_camera`` a camera branch (focal 1, centre 0, translation (0, 0, 5))."""

    def predict(x, c):
        out = {"pose3d": jnp.concatenate([x, jnp.zeros_like(x[..., :1])], -1)}
        if has_camera:
            n = x.shape[0]
            out.update(focal=jnp.ones((n, 2)), center=jnp.zeros((n, 2)),
                       translation=jnp.tile(jnp.asarray([0.0, 0.0, 5.0]), (n, 1)))  # fmt: skip
        return out

    return inference.Predictor(experiment="echo", predict=predict, normalization=normalization,
                               checkpoint={}, config=ml_collections.ConfigDict(),
                               has_camera=has_camera)  # fmt: skip


def test_missing_or_empty_boxes_fall_back_to_the_joints_tight_box(tmp_path):
    """A 'bbox'-normalised model never sees 2D divided by an empty box: a COCO annotation without
    'bbox' and a given box of size 0 are replaced by the tight box of the person's joints."""
    dets, kp, _ = _coco_results(2)
    sc = np.ones((2, 17), np.float32)
    tight = tmp_path / "tight.npz"
    np.savez(tight, keypoints=kp, scores=sc, layout="coco17")
    want = inference.lift(_echo("bbox"), inference.load_keypoints(tight))["pose3d_root_relative"]
    assert np.isfinite(want).all() and np.abs(want).max() < 3
    empty = tmp_path / "empty.npz"
    box = np.array([[kp[0, :, 0].min(), kp[0, :, 1].min(), 500.0, 700.0], [0, 0, 0, 0]])
    np.savez(empty, keypoints=kp, scores=sc, layout="coco17", bbox=box)
    res = inference.lift(_echo("bbox"), inference.load_keypoints(empty))
    np.testing.assert_allclose(res["pose3d_root_relative"][1], want[1], atol=1e-6)
    assert not np.allclose(res["pose3d_root_relative"][0], want[0])  # its own box is used
    assert "1 detection without a usable box (missing, empty" in res["warnings"][0]
    anns = {"images": [{"id": 1, "width": 1000, "height": 1000}], "annotations": [
        {"id": i, "image_id": 1, "iscrowd": 0,
         "keypoints": np.concatenate([kp[i], np.full((17, 1), 2.0)], -1).reshape(-1).tolist()}
        for i in range(2)]}  # fmt: skip
    (tmp_path / "gt.json").write_text(json.dumps(anns))
    inp = inference.load_keypoints(tmp_path / "gt.json")
    assert inp.bbox_px is None  # no boxes given: not boxes of size 0
    got = inference.lift(_echo("bbox"), inp)["pose3d_root_relative"]
    np.testing.assert_allclose(got, want, atol=1e-6)
    anns["annotations"][0]["bbox"] = box[0].tolist()  # one box given: kept for that person only
    (tmp_path / "gt.json").write_text(json.dumps(anns))
    inp = inference.load_keypoints(tmp_path / "gt.json")
    assert np.isnan(inp.bbox_px[1]).all() and np.isfinite(inp.bbox_px[0]).all()
    np.testing.assert_allclose(inference.lift(_echo("bbox"), inp)["pose3d_root_relative"],
                               res["pose3d_root_relative"], atol=1e-6)  # fmt: skip
    anns["annotations"][1]["bbox"] = 5
    (tmp_path / "gt.json").write_text(json.dumps(anns))
    with pytest.raises(ValueError, match=r"gt.json: entry \[1\] box must be \[x, y, w, h\]"):
        inference.load_keypoints(tmp_path / "gt.json")


def test_output_arrays_are_float32_with_flagged_people(tmp_path):
    rel, cam = _poses(3)
    px = _project(cam).astype(np.float32)
    px[2] = px[2, :1]  # one point: a degenerate 2D extent, flagged
    f = tmp_path / "kp.npz"
    np.savez(f, keypoints=px, layout="h36m17", image_size=SIZE)
    res = inference.lift(_echo("vp", has_camera=True), inference.load_keypoints(f),
                         intrinsics_px={"focal": FOCAL, "center": CENTER})  # fmt: skip
    assert res["valid"].tolist() == [True, True, False]
    for key in ("pose3d_root_relative", "pose3d_absolute", "translation",
                "translation_camera_branch", "focal_px", "center_px"):  # fmt: skip
        assert res[key].dtype == np.float32, key
        assert np.isnan(res[key][2]).all() and np.isfinite(res[key][:2]).all(), key


# -------------------------------------------------------------------------------------- bad input


def test_bad_inputs_raise_clear_errors(tmp_path, lifter):
    px = _project(_poses(3)[1]).astype(np.float32)

    def npz(name, **arrays):
        path = tmp_path / name
        np.savez(path, **arrays)
        return path

    with pytest.raises(FileNotFoundError, match="not found"):
        inference.load_keypoints(tmp_path / "nope.npz")
    with pytest.raises(ValueError, match=r"unknown joint layout 'foo'; known: h36m17"):
        inference.load_keypoints(npz("a.npz", keypoints=px), layout="foo")
    with pytest.raises(ValueError, match=r"15 joints, which matches no known layout .*17 \("):
        inference.load_keypoints(npz("b.npz", keypoints=px[:, :15]))
    with pytest.raises(ValueError, match=r"layout mpii16 has 16 joints but the keypoints have 17"):
        inference.load_keypoints(npz("c.npz", keypoints=px), layout="mpii16")
    with pytest.raises(ValueError, match=r"17 joints is ambiguous: .*coco17.*--layout"):
        inference.load_keypoints(npz("d.npz", keypoints=px))
    with pytest.raises(ValueError, match=r"16 joints is ambiguous: .*mpii16"):
        inference.load_keypoints(npz("e.npz", keypoints=px[:, :16]))
    bad = px.copy()
    bad[1, 4, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        inference.load_keypoints(npz("f.npz", keypoints=bad, layout="h36m17"))
    with pytest.raises(ValueError, match="empty input"):
        inference.load_keypoints(npz("g.npz", keypoints=np.zeros((0, 17, 2)), layout="h36m17"))
    empty = tmp_path / "h.json"
    empty.write_text("[]")
    with pytest.raises(ValueError, match="empty input"):
        inference.load_keypoints(empty)
    inp = inference.load_keypoints(npz("i.npz", keypoints=px, layout="h36m17"))
    with pytest.raises(ValueError, match=r"'vp'-normalised 2D, which needs each image's size"):
        inference.lift(lifter, inp)
    (tmp_path / "x.csv").write_text("1")
    with pytest.raises(ValueError, match="unsupported input format '.csv'"):
        inference.load_keypoints(tmp_path / "x.csv")
    no_size = inference.load_keypoints(npz("j.npz", keypoints=px, layout="h36m17"))
    with pytest.raises(ValueError, match="without a principal point"):
        inference.lift(
            _stub(np.zeros((3, 17, 3)), normalization="bbox"),
            no_size,
            intrinsics_px={"focal": FOCAL},
        )
    with pytest.raises(ValueError, match="image sizes must be positive"):
        inference.load_keypoints(npz("k.npz", keypoints=px, layout="h36m17"), image_size=(0, 10))


# -------------------------------------------------------------------------------------- smoothing


def _video(values, image_id, track_id=None):
    n = len(values)
    inp = inference.KeypointInput(
        keypoints_px=np.tile(_project(_poses(1)[1])[0], (n, 1, 1)).astype(np.float32),
        scores=np.ones((n, 17), np.float32),
        layout="h36m17",
        image_id=np.asarray(image_id),
        track_id=None if track_id is None else np.asarray(track_id),
        image_size_px=np.tile(SIZE, (n, 1)).astype(np.float32),
        source="video",
    )
    return inference.lift(_stub(values), inp, smooth_sigma=2.0, batch_size=n)


def test_smoothing_constant_noisy_and_tracks():
    rel = _poses(1)[0][0]
    n = 40
    frames = np.random.default_rng(0).permutation(n)  # unordered input: sorted per track
    const = np.tile(rel, (n, 1, 1))
    out = _video(const, frames)["pose3d_root_relative"]
    np.testing.assert_allclose(out, const, atol=1e-6)
    rng = np.random.default_rng(1)
    noisy = const + rng.normal(0, 0.05, const.shape)
    noisy -= noisy[:, :1]
    out = _video(noisy, frames)["pose3d_root_relative"]
    assert np.var(out - const) < 0.3 * np.var(noisy - const)
    # two people per frame: tracks needed; with them each track is smoothed on its own
    two = np.concatenate([const, const + np.array([0.0, 0.0, 0.1]) * (np.arange(17) > 0)[:, None]])
    ids = np.concatenate([frames, frames])
    with pytest.raises(ValueError, match="needs a track_id"):
        _video(two, ids)
    out = _video(two, ids, track_id=np.repeat([7, 8], n))["pose3d_root_relative"]
    np.testing.assert_allclose(out, two, atol=1e-6)
    # the helper itself: a single spike is spread by the Gaussian weights
    x = np.zeros((11, 1))
    x[5] = 1.0
    y = inference.smooth_poses(x, np.arange(11), None, sigma=1.0)
    np.testing.assert_allclose(y.sum(), 1.0, atol=0.02)
    assert y[5, 0] < 0.5 and y[4, 0] == pytest.approx(y[6, 0])


# -------------------------------------------------------------------------------- CLI + work dir


@pytest.fixture(scope="module")
def baseline_workdir(tmp_path_factory):
    from experiments import baseline
    from experiments.configs import baseline as baseline_config

    if not hasattr(baseline, "load_predictor"):
        pytest.skip(
            "experiments.baseline has no load_predictor yet (needed by inference.load_predictor)"
        )
    wd = tmp_path_factory.mktemp("baseline_wd")
    baseline.run(baseline_config.get_config("smoke"), str(wd))
    return wd


def test_cli_end_to_end(tmp_path, baseline_workdir, capsys):
    dets, _, _ = _coco_results(5)
    dets[0]["track_id"] = 1  # partial track ids are rejected...
    f = tmp_path / "dets.json"
    f.write_text(json.dumps(dets))
    out = tmp_path / "out" / "poses.json"
    argv = [
        "--workdir",
        str(baseline_workdir),
        "--input",
        str(f),
        "--output",
        str(out),
        "--image_size",
        "1000,1000",
    ]
    with pytest.raises(SystemExit) as exc:
        inference_cli.main(argv)
    assert exc.value.code == 2 and "track_id" in capsys.readouterr().err
    del dets[0]["track_id"]
    f.write_text(json.dumps(dets))
    assert inference_cli.main(argv) == 0
    res = json.loads(out.read_text())
    assert res["joint_names"] == list(skeleton.H36M17.joint_names)
    pose = np.asarray(res["pose3d_root_relative"], np.float64)
    assert pose.shape == (5, 17, 3) and np.isfinite(pose).all()
    assert res["experiment"] == "baseline" and res["checkpoint"]
    assert res["units"] == "metres" and res["timing"]["seconds_per_person"] > 0
    # .npz with known intrinsics: absolute poses and a JSON meta
    out_npz = tmp_path / "poses.npz"
    argv_npz = argv[:5] + [str(out_npz), "--image_size", "1000,1000", "--focal", "1000,1000"]
    assert inference_cli.main(argv_npz) == 0
    with np.load(out_npz) as z:
        meta = json.loads(str(z["meta"]))
        assert z["pose3d_absolute"].shape == (5, 17, 3)
        assert list(z["joint_names"]) == list(skeleton.H36M17.joint_names)
    assert meta["absolute_source"] == "known_intrinsics" and meta["layout"] == "h36m17"
    assert "experiment" in meta and "timing" in meta
    # a missing image size is reported by the CLI
    with pytest.raises(SystemExit):
        inference_cli.main(argv[:6])
    assert "needs each image's size" in capsys.readouterr().err
