"""Tests of the pretrained bundles: ``jpose.inference``, ``python -m experiments.export``
and the two bundles shipped in ``jpose/pretrained``.

Each shipped bundle is loaded, its sha256 checked, its model card's CMU test numbers reproduced
to 0.1 mm (skipped with a reason where ``../shared/data`` is absent) and a small COCO-results
fixture (written here: a standing pose projected into a 1000 x 1000 image) lifted through
``jpose.inference.load_pretrained`` and through the ``jpose`` command with ``--pretrained``.
The export itself is tested on the baseline's smoke run (seconds).
"""

import json
import shutil

import numpy as np
import pytest
from _helpers import STANDING_H36M17

from experiments import export
from jpose import inference, skeleton
from jpose.inference import cli as inference_cli
from jpose.inference import evaluate
from jpose.inference.export import export_bundle, model_card_markdown, root_translation_errors

SHIPPED = ("camerapose_cmu_coco", "lifter_cmu")
MAX_BUNDLE_BYTES = 10_000_000
TOLERANCE_MM = 0.1

pytestmark = pytest.mark.usefixtures("fast_compile")


def _card(name):
    return json.loads((inference.pretrained_path(name) / "card.json").read_text())


def _numbers(record):
    """``{split/metric/avg[/action]: mm}`` of ``{split: {"metrics": ...}}``."""
    out = {}
    for split, rec in record.items():
        for metric, values in rec["metrics"].items():
            for avg in ("action_wise", "frame_wise"):
                out[f"{split}/{metric}/{avg}"] = float(values[avg])
            for action, v in values.get("per_action", {}).items():
                out[f"{split}/{metric}/{action}"] = float(v)
    return out


# ------------------------------------------------------------------------------------------------
# Fixture detections
# ------------------------------------------------------------------------------------------------


def _rot_y(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _coco_fixture(n=3):
    """COCO keypoint results for ``n`` people (one per image, 1000 x 1000 px, f = 1000 px):
    the standing pose turned and placed 4-6 m in front of the camera, its face points (nose,
    eyes, ears) placed around the Neck/Nose and Head joints."""
    h = skeleton.H36M17
    dets = []
    for i in range(n):
        pose = STANDING_H36M17 @ _rot_y(0.4 * i - 0.4).T
        pose = pose + np.array([0.3 * i - 0.3, 0.0, 4.0 + i])
        head, neck = pose[h.index("Head")], pose[h.index("Neck/Nose")]
        side = pose[h.index("LShoulder")] - pose[h.index("RShoulder")]
        side = side / np.linalg.norm(side)
        face = {
            "nose": neck + np.array([0.0, -0.02, -0.08]),
            "left_eye": head + 0.03 * side, "right_eye": head - 0.03 * side,
            "left_ear": head + 0.07 * side, "right_ear": head - 0.07 * side,
        }  # fmt: skip
        body = {
            "shoulder": ("LShoulder", "RShoulder"), "elbow": ("LElbow", "RElbow"),
            "wrist": ("LWrist", "RWrist"), "hip": ("LHip", "RHip"), "knee": ("LKnee", "RKnee"),
            "ankle": ("LFoot", "RFoot"),
        }  # fmt: skip
        for part, (left, right) in body.items():
            face[f"left_{part}"] = pose[h.index(left)]
            face[f"right_{part}"] = pose[h.index(right)]
        pts = np.stack([face[j] for j in skeleton.COCO17.joint_names])
        uv = pts[:, :2] / pts[:, 2:] * 1000.0 + 500.0
        kp = np.concatenate([uv, np.full((17, 1), 0.9)], -1)
        dets.append({"image_id": i, "category_id": 1, "keypoints": kp.ravel().tolist(),
                     "score": 0.95})  # fmt: skip
    return dets


@pytest.fixture()
def detections(tmp_path):
    path = tmp_path / "dets.json"
    path.write_text(json.dumps(_coco_fixture()))
    return path


# ------------------------------------------------------------------------------------------------
# Shipped bundles
# ------------------------------------------------------------------------------------------------


def test_shipped_bundles_are_listed_and_small():
    assert set(SHIPPED) <= set(inference.list_pretrained())
    desc = inference.pretrained_descriptions()
    for name in SHIPPED:
        assert desc[name].strip() and "\n" not in desc[name]
        path = inference.pretrained_path(name)
        size = sum(f.stat().st_size for f in path.iterdir() if f.is_file())
        assert size <= MAX_BUNDLE_BYTES, f"{name}: {size} bytes"
        for f in ("bundle.json", "weights.npz", "weights.sha256", "config.json", "model.json",
                  "status.json", "card.json", "MODEL_CARD.md"):  # fmt: skip
            assert (path / f).is_file(), f"{name}: {f} missing"


@pytest.mark.parametrize("name", SHIPPED)
def test_bundle_checksum_card_and_inference_networks_only(name):
    path = inference.pretrained_path(name)
    card = _card(name)
    assert inference.verify_bundle(path) == card["weights"]["sha256"]
    assert inference.sha256_file(path / "weights.npz") == card["weights"]["sha256"]
    info = inference.read_bundle_info(path)
    assert info["dtype"] == card["weights"]["dtype"]
    with np.load(path / "weights.npz") as z:
        keys = list(z.files)
        dtypes = {z[k].dtype for k in keys if np.issubdtype(z[k].dtype, np.floating)}
    assert dtypes == {np.dtype(info["dtype"])}
    players = {k.split("/")[1] for k in keys}
    collections = {k.split("/")[2] for k in keys}
    assert collections <= {"params", "batch_stats"}  # no optimiser moments
    want = {"refine", "lifter", "camera"} if name.startswith("camerapose") else {"lifter"}
    assert players == want  # no discriminators, no generator
    # float16 is stored only when the card's measurement allowed it
    w = card["weights"]
    if w["dtype"] == "float16":
        assert w["max_abs_difference_float16_mm"] <= TOLERANCE_MM
    # the card's training-data section names the licences
    text = (path / "MODEL_CARD.md").read_text()
    assert text == model_card_markdown(card)  # the shipped text is the card's, as exported now
    assert "mocap.cs.cmu.edu" in text and "NSF EIA-0196217" in text
    assert ("CC BY 4.0" in text) == name.startswith("camerapose")
    assert card["training_command"].startswith("python -m experiments.")
    assert len(card["commit"]["commit"]) == 40


def test_unknown_name_lists_the_shipped_bundles():
    with pytest.raises(inference.BundleError, match="lifter_cmu") as exc:
        inference.load_pretrained("no_such_model")
    assert "camerapose_cmu_coco" in str(exc.value)


def test_corrupt_weights_are_refused(tmp_path):
    copy = tmp_path / "lifter"
    shutil.copytree(inference.pretrained_path("lifter_cmu"), copy)
    data = bytearray((copy / "weights.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / "weights.npz").write_bytes(bytes(data))
    with pytest.raises(inference.BundleError, match="does not match"):
        inference.load_pretrained(copy)
    with pytest.raises(inference.BundleError, match="does not match"):
        inference.load_predictor(copy)


@pytest.mark.parametrize("name", SHIPPED)
def test_bundle_reproduces_the_card_numbers(name, shared_data, tmp_path):
    """``python -m experiments.evaluate --pretrained=NAME`` on the card's dataset (the CMU test
    split) gives the card's numbers for the stored weights within 0.1 mm."""
    card = _card(name)
    dataset = card["evaluation"]["dataset"]
    record = evaluate.main(
        ["--pretrained", name, "--dataset", dataset, "--output_dir", str(tmp_path / "ev")]
    )
    got = _numbers(record["evaluations"])
    want = _numbers(card["evaluation"]["stored"])
    assert set(got) == set(want)
    worst = max(abs(got[k] - want[k]) for k in want)
    assert worst <= TOLERANCE_MM, worst
    # and the float32 weights reproduce the training run's own results.json
    assert card["training_results"]["max_abs_difference_bundle_float32_mm"] <= TOLERANCE_MM
    if card["has_camera"]:  # absolute 3D: the root-translation error of the card
        predictor = inference.load_pretrained(name)
        datasets = evaluate.load_eval_datasets(dataset, predictor)
        for split, ds in datasets.items():
            got = root_translation_errors(predictor, ds)["root_translation_error"]
            want = card["evaluation"]["stored"][split]["absolute"]["root_translation_error"]
            for avg in ("action_wise", "frame_wise"):
                assert abs(got[avg] - want[avg]) <= TOLERANCE_MM, (avg, got[avg], want[avg])
            assert want["frame_wise"] < 1000.0  # metres-scale depth is right to ~10 % at 5 m


@pytest.mark.parametrize("name", SHIPPED)
def test_lift_fixture_through_python_and_cli(name, detections, tmp_path):
    predictor = inference.load_pretrained(name)
    assert predictor.layout == "h36m17"
    inp = inference.load_keypoints(detections, image_size=(1000, 1000))
    res = inference.lift(predictor, inp)
    pose = res["pose3d_root_relative"]
    assert pose.shape == (3, 17, 3) and np.isfinite(pose).all()
    np.testing.assert_allclose(pose[:, 0], 0.0, atol=1e-6)  # root-relative
    spread = np.linalg.norm(pose - pose[:, :1], axis=-1).max(-1)
    assert np.all((spread > 0.3) & (spread < 2.0)), spread  # a person-sized pose, metres
    camera = name.startswith("camerapose")
    assert predictor.has_camera == camera
    if camera:
        assert res["absolute_source"] == "camera_branch"
        t, absolute = res["translation"], res["pose3d_absolute"]
        assert t.shape == (3, 3) and absolute.shape == (3, 17, 3)
        assert np.isfinite(absolute).all() and np.all((t[:, 2] > 1.0) & (t[:, 2] < 30.0)), t
        np.testing.assert_allclose(absolute - t[:, None], pose, atol=1e-5)
        assert res["focal_px"].shape == (3, 2) and np.all(res["focal_px"] > 0)
    else:
        assert "pose3d_absolute" not in res
    # the jpose command with --pretrained writes the same camera-frame (and absolute) 3D
    out = tmp_path / "poses.json"
    argv = ["--pretrained", name, "--input", str(detections), "--output", str(out),
            "--image_size", "1000,1000"]  # fmt: skip
    assert inference_cli.main(argv) == 0
    written = json.loads(out.read_text())
    np.testing.assert_allclose(np.asarray(written["pose3d_root_relative"]), pose, atol=1e-5)
    assert ("pose3d_absolute" in written) == camera
    if camera:
        np.testing.assert_allclose(np.asarray(written["pose3d_absolute"]),
                                   res["pose3d_absolute"], atol=1e-5)  # fmt: skip


def test_cli_pretrained_errors(detections, tmp_path, capsys):
    out = str(tmp_path / "p.json")
    base = ["--input", str(detections), "--output", out, "--image_size", "1000,1000"]
    with pytest.raises(SystemExit) as exc:  # mutually exclusive with --workdir
        inference_cli.main(["--pretrained", "lifter_cmu", "--workdir", str(tmp_path), *base])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:  # unknown name: one message listing the shipped ones
        inference_cli.main(["--pretrained", "nope", *base])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "lifter_cmu" in err and "Traceback" not in err
    with pytest.raises(SystemExit) as exc:
        evaluate.main(["--pretrained", "nope"])
    assert exc.value.code == 2 and "camerapose_cmu_coco" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------
# Export
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    from experiments import baseline
    from experiments.configs import baseline as baseline_config

    wd = tmp_path_factory.mktemp("baseline_smoke")
    baseline.run(baseline_config.get_config("smoke"), str(wd))
    return wd


def test_export_round_trip(smoke_run, tmp_path, capsys):
    out = tmp_path / "bundle"
    assert export.main(["--workdir", str(smoke_run), "--output", str(out), "--name", "tiny",
                        "--commit", "0" * 40]) == 0  # fmt: skip
    card = json.loads((out / "card.json").read_text())
    assert card["name"] == "tiny" and card["evaluation"]["dataset"] == "config"
    assert card["weights"]["dtype"] in ("float16", "float32")
    d16 = card["weights"]["max_abs_difference_float16_mm"]
    assert (card["weights"]["dtype"] == "float16") == (d16 <= TOLERANCE_MM)
    assert card["training_command"] == (
        f"python -m experiments.baseline --config=experiments/configs/baseline.py:smoke "
        f"--workdir={smoke_run}"
    )
    assert card["training_results"]["max_abs_difference_bundle_float32_mm"] < 1e-3
    # the bundle predicts what the work directory predicts (float16: to rounding)
    ref, got = inference.load_predictor(smoke_run), inference.load_predictor(out)
    assert got.checkpoint == ref.checkpoint and got.normalization == ref.normalization
    x = np.random.default_rng(0).normal(0, 0.3, (5, 17, 2)).astype(np.float32)
    c = np.ones((5, 17), np.float32)
    atol = 1e-6 if card["weights"]["dtype"] == "float32" else 2e-3
    np.testing.assert_allclose(got.predict(x, c)["pose3d"], ref.predict(x, c)["pose3d"],
                               atol=atol)  # fmt: skip
    with np.load(out / "weights.npz") as z:
        assert all(k.startswith("lifter/lifter/") for k in z.files)
    # re-export: same weights give the same bytes; an existing output needs --overwrite
    digest = card["weights"]["sha256"]
    with pytest.raises(SystemExit) as exc:
        export.main(["--workdir", str(smoke_run), "--output", str(out)])
    assert exc.value.code == 2 and "--overwrite" in capsys.readouterr().err
    export.main(["--workdir", str(smoke_run), "--output", str(out), "--overwrite",
                 "--dtype", card["weights"]["dtype"]])  # fmt: skip
    assert inference.verify_bundle(out) == digest
    # a bundle is not a work directory to export from; a step it does not hold is refused
    with pytest.raises(SystemExit):
        export.main(["--workdir", str(out), "--output", str(tmp_path / "again")])
    with pytest.raises(inference.BundleError, match="step"):
        inference.load_predictor(out, step=123456)


def test_export_bundle_without_the_checkout(smoke_run, tmp_path):
    """``jpose.inference.export.export_bundle`` alone: provenance not given is stated as such;
    a run whose model.json declares no pipeline (nor the layout, recomputed by the method's
    loader) gets the one its method declares, and the bundle restores the same predictions."""
    wd = tmp_path / "wd"
    shutil.copytree(smoke_run, wd)
    info = json.loads((wd / "model.json").read_text())
    spec = info.pop("pipeline")
    del info["layout"]  # an older run: the method's loader fills the default
    (wd / "model.json").write_text(json.dumps(info))
    card = export_bundle(wd, tmp_path / "b", dtype="float32")
    assert json.loads((tmp_path / "b" / "model.json").read_text())["pipeline"] == spec
    assert card["training_command"] == "" and card["training_command_source"] == "not given"
    assert card["commit"]["commit"] == "unknown" and card["training_data"] == []
    assert card["config_reconstruction"] is None and card["weights"]["dtype"] == "float32"
    # the card carries the run's times per stage, as for every method (results.json's stages)
    assert list(card["wall_time"]["stage_training_wall_s"]) == ["lifter"]
    assert card["wall_time"]["train_wall_s"] <= card["wall_time"]["total_wall_s"]
    x = np.random.default_rng(2).normal(0, 0.3, (4, 17, 2)).astype(np.float32)
    c = np.ones((4, 17), np.float32)
    np.testing.assert_allclose(inference.load_predictor(tmp_path / "b").predict(x, c)["pose3d"],
                               inference.load_predictor(smoke_run).predict(x, c)["pose3d"],
                               atol=1e-6)  # fmt: skip


def test_export_refuses_an_unfinished_run(smoke_run, tmp_path, capsys):
    wd = tmp_path / "wd"
    shutil.copytree(smoke_run, wd)
    status = json.loads((wd / "status.json").read_text())
    status["finished"] = False
    next(iter(status["stages"].values()))["finished"] = False
    (wd / "status.json").write_text(json.dumps(status))
    with pytest.raises(SystemExit) as exc:
        export.main(["--workdir", str(wd), "--output", str(tmp_path / "b")])
    assert exc.value.code == 2 and "unfinished" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_flatten_round_trip_and_deterministic_weights(tmp_path):
    tree = {"params": {"Dense_0": {"kernel": np.arange(6.0).reshape(2, 3), "bias": np.ones(3)}},
            "batch_stats": {"bn": {"mean": np.zeros(2, np.float32)}}}  # fmt: skip
    flat = inference.flatten_variables(tree)
    assert sorted(flat) == ["batch_stats/bn/mean", "params/Dense_0/bias", "params/Dense_0/kernel"]
    back = inference.unflatten_variables(flat)
    np.testing.assert_array_equal(back["params"]["Dense_0"]["kernel"], tree["params"]["Dense_0"]
                                  ["kernel"])  # fmt: skip
    a = inference.write_weights(tmp_path / "a.npz", flat, dtype="float16")
    b = inference.write_weights(tmp_path / "b.npz", dict(reversed(list(flat.items()))),
                                dtype="float16")  # fmt: skip
    assert a == b
    read = inference.read_weights(tmp_path / "a.npz")
    assert read["params/Dense_0/kernel"].dtype == np.float32
    with pytest.raises(ValueError, match="cannot be flattened"):
        inference.flatten_variables({"a/b": np.zeros(1)})


# ------------------------------------------------------------------------------------------------
# Self-describing pipelines (jpose.inference.pipelines): no experiments package needed
# ------------------------------------------------------------------------------------------------

_WITHOUT_EXPERIMENTS = r"""
import json, sys
import numpy as np
sys.modules["experiments"] = None  # importing it (or anything under it) now fails
import jpose.inference as inference
x = np.random.default_rng(0).normal(0, 0.3, (4, 17, 2)).astype(np.float32)
c = np.full((4, 17), 0.9, np.float32)
out = {}
for name in sys.argv[1:]:
    p = inference.load_pretrained(name)
    out[name] = {k: np.asarray(v).tolist() for k, v in p.predict(x, c).items()}
assert not any(m == "experiments" or m.startswith("experiments.") for m in sys.modules
               if sys.modules[m] is not None)
print(json.dumps(out))
"""


def test_shipped_bundles_load_without_the_experiments_package(tmp_path):
    """The installed package alone restores the bundles (their model.json declares the
    pipeline), with the same outputs as the methods' own loaders in the checkout."""
    import subprocess
    import sys

    from experiments import baseline, camerapose

    r = subprocess.run([sys.executable, "-c", _WITHOUT_EXPERIMENTS, *SHIPPED], cwd=tmp_path,
                       capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    x = np.random.default_rng(0).normal(0, 0.3, (4, 17, 2)).astype(np.float32)
    c = np.full((4, 17), 0.9, np.float32)
    for name, method in zip(SHIPPED, (camerapose, baseline), strict=True):
        path = inference.pretrained_path(name)
        own = method.load_predictor(inference.read_config(path), path).predict(x, c)
        assert set(own) == set(got[name])
        for k, v in own.items():
            np.testing.assert_allclose(np.asarray(got[name][k]), np.asarray(v), atol=1e-6)


def test_a_trained_run_declares_its_pipeline(smoke_run):
    """Training writes model.json["pipeline"]; restoring it equals the method's own loader."""
    from experiments import baseline

    info = inference.read_model_info(smoke_run)
    assert info["pipeline"]["kind"] == "lifter" and info["pipeline"]["stages"] == ["lifter"]
    via_spec = inference.load_predictor(smoke_run)
    own = baseline.load_predictor(inference.read_config(smoke_run), smoke_run)
    for f in ("experiment", "normalization", "layout", "checkpoint", "description",
              "metric_scale", "has_camera"):  # fmt: skip
        assert getattr(via_spec, f) == getattr(own, f), f
    x = np.random.default_rng(1).normal(0, 0.3, (6, 17, 2)).astype(np.float32)
    c = np.ones((6, 17), np.float32)
    np.testing.assert_array_equal(via_spec.predict(x, c)["pose3d"], own.predict(x, c)["pose3d"])
    with pytest.raises(ValueError, match="unknown network factory"):
        inference.pipelines.build_network({"factory": "nope"})
