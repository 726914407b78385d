"""``jpose-evaluate`` (:mod:`jpose.inference.evaluate`) on an untrained CameraPose work directory
(no training: a checkpoint of freshly initialised players) and on test files written in the
published formats (Human3.6M VideoPose3D files, MPI-INF-3DHP test set, 3DPW)."""

import json

import jax
import numpy as np
import pytest
from _helpers import procrustes_error_np
from test_data_h36m import vp_files  # noqa: F401 - fixture: Human3.6M files in VP's format
from test_data_mpi3dhp_pw3d import _3dpw_pickle, mpi_root  # noqa: F401 - fixture / writer

from experiments import camerapose as cp
from experiments import common
from experiments.configs import camerapose as cp_configs
from jpose import inference, skeleton
from jpose import metrics as jm
from jpose.inference import evaluate
from jpose.training import Checkpointer, rundir

pytestmark = pytest.mark.usefixtures("fast_compile")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A CameraPose (smoke-size, camera branch + refinement) work directory, step 7, untrained."""
    wd = tmp_path_factory.mktemp("eval_wd")
    cfg = cp_configs.get_config("smoke")
    cfg.method.gan = False
    setup = cp.prepare(cfg)
    variables = cp.init_players(setup, jax.random.key(3))
    state = cp.stage_state(setup, "end2end", variables, steps_per_epoch=1)
    state = state.replace(step=state.step + 7)
    common.setup_workdir(wd, cfg)
    common.write_model_info(wd, normalization=setup.datasets["train_3d"].normalization,
                            camera_priors=setup.priors)  # fmt: skip
    with Checkpointer(wd / "checkpoints" / "end2end") as ckpt:
        ckpt.save(state, key=jax.random.key(0))
    rundir.mark_stage(wd, "end2end", index=2, num_steps=7, finished=True)
    rundir.mark_run_finished(wd)  # a finished run as far as status.json goes
    return wd


@pytest.fixture(scope="module")
def predictor(workdir):
    return inference.load_predictor(workdir)


def _reference_errors(predictor, ds):
    pred = np.asarray(predictor.predict(ds.pose2d_norm, ds.confidence)["pose3d"])
    target = ds.pose3d_root_relative
    return {
        "mpjpe": np.asarray(jm.mpjpe(pred - pred[:, :1], target)) * 1000,
        "p_mpjpe": np.asarray(jm.p_mpjpe(pred, target)) * 1000,
    }


def test_predictor_restores_the_checkpoint(predictor):
    assert predictor.experiment == "camerapose" and predictor.has_camera
    assert predictor.checkpoint == {"end2end": 7}
    out = predictor.predict(np.zeros((3, 17, 2), np.float32), np.ones((3, 17), np.float32))
    assert out["pose3d"].shape == (3, 17, 3) and out["translation"].shape == (3, 3)
    np.testing.assert_allclose(out["pose3d"][:, 0], 0.0, atol=1e-6)


def test_h36m_protocols_subjects_and_s11_directions(workdir, predictor, vp_files):  # noqa: F811
    d = vp_files[0]
    kw = {"h36m_dir": str(d), "h36m_source": "gt"}
    full = evaluate.load_eval_datasets("h36m", predictor, **kw)["h36m_test"]
    dropped = evaluate.load_eval_datasets("h36m", predictor, drop_s11_directions=True, **kw)
    dropped = dropped["h36m_test"]
    s11_dir = (full.labels["subject"] == "S11") & (full.labels["action"] == "Directions")
    assert s11_dir.sum() == 6 * 4 and len(dropped) == len(full) - 24
    assert full.normalization == predictor.normalization
    record = evaluate.evaluate_workdir(workdir, dataset="h36m", drop_s11_directions=True, **kw)
    assert record["header"]["options"]["drop_s11_directions"] is True
    assert record["header"]["checkpoint"] == {"end2end": 7}
    ev = record["evaluations"]["h36m_test"]
    ref = _reference_errors(predictor, dropped)
    for name in ("mpjpe", "p_mpjpe"):
        np.testing.assert_allclose(ev["metrics"][name]["frame_wise"], ref[name].mean(), rtol=1e-4)
    table = record["tables"]["h36m_test: per subject (mm)"]["mpjpe"]
    for s in ("S9", "S11"):
        sel = dropped.labels["subject"] == s
        np.testing.assert_allclose(table[s], ref["mpjpe"][sel].mean(), rtol=1e-4)
    md = (workdir / "eval" / "h36m-noS11Directions" / "results.md").read_text()
    assert "drop_s11_directions=True" in md and "end2end: 7" in md and "per subject" in md


def test_mpi3dhp_pck_auc_by_scene(workdir, predictor, mpi_root):  # noqa: F811
    kw = {"mpi3dhp_root": str(mpi_root[0]), "mpi3dhp_sequences": "TS1,TS5"}
    record = evaluate.evaluate_workdir(workdir, dataset="mpi3dhp", **kw)
    rows = record["tables"]["mpi3dhp_test: 3DPCK / AUC by scene (%)"]
    assert set(rows["3DPCK@150mm (%)"]) == {"gs", "outdoor", "all"}
    ds = evaluate.load_eval_datasets("mpi3dhp", predictor, **kw)["mpi3dhp_test"]
    pred = np.asarray(predictor.predict(ds.pose2d_norm, ds.confidence)["pose3d"])
    err = np.linalg.norm(pred - ds.pose3d_root_relative, axis=-1)  # [N, J], numpy reference
    gs = ds.labels["scene"] == "gs"
    np.testing.assert_allclose(rows["3DPCK@150mm (%)"]["gs"], 100 * (err[gs] < 0.15).mean(),
                               rtol=1e-5)  # fmt: skip
    auc = np.mean([(err < t).mean() for t in np.linspace(0, 0.15, 31)]) * 100
    np.testing.assert_allclose(rows["AUC (%)"]["all"], auc, rtol=1e-4)


def test_3dpw_pa_mpjpe(workdir, predictor, tmp_path):
    (tmp_path / "test").mkdir()
    _3dpw_pickle(tmp_path / "test" / "courtyard_fixture_00.pkl")
    record = evaluate.evaluate_workdir(workdir, dataset="3dpw", pw3d_path=str(tmp_path),
                                       output_dir=tmp_path / "out")  # fmt: skip
    table = record["tables"]["3dpw_test: PA-MPJPE (mm)"]
    ds = evaluate.load_eval_datasets("3dpw", predictor, pw3d_path=str(tmp_path))["3dpw_test"]
    ref = _reference_errors(predictor, ds)["p_mpjpe"].mean()
    np.testing.assert_allclose(table["PA-MPJPE (17 joints)"]["frame-wise"], ref, rtol=1e-4)
    assert (tmp_path / "out" / "results.md").is_file()
    # ground-truth 2D by default (CameraPose Table 4), said in the header
    assert np.all(ds.confidence == 1) and record["header"]["options"]["pw3d_2d"] == "gt"
    assert "ground-truth 2D" in record["header"]["source_2d"]
    # PA-MPJPE over the 14 joints SMPL and Human3.6M share: Procrustes on those 14 (numpy)
    names = ["Thorax", "Neck/Nose", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow",
             "LWrist", "RHip", "RKnee", "RFoot", "LHip", "LKnee", "LFoot"]  # fmt: skip
    j14 = [skeleton.H36M17.index(n) for n in names]
    pred = np.asarray(predictor.predict(ds.pose2d_norm, ds.confidence)["pose3d"], np.float64)
    errs = [procrustes_error_np(p[j14], t[j14]) for p, t in zip(pred, ds.pose3d_root_relative)]
    np.testing.assert_allclose(
        table["PA-MPJPE (14 common joints)"]["frame-wise"], 1000 * np.mean(errs), rtol=1e-3
    )
    det = evaluate.load_eval_datasets("3dpw", predictor, pw3d_path=str(tmp_path),
                                      pw3d_2d="openpose")["3dpw_test"]  # fmt: skip
    assert len(det) == len(ds) - 1  # the person-frame without a detection is not evaluated


def test_mpi3dhp_zhou_protocol(workdir, predictor, mpi_root):  # noqa: F811
    """Zhou et al. ICCV 2017 Sec. 4.1: pelvis and hips moved 0.2 towards the neck, known global
    scale, 14 joints (a numpy reference of each step)."""
    kw = {"mpi3dhp_root": str(mpi_root[0]), "mpi3dhp_sequences": "TS1,TS5"}
    record = evaluate.evaluate_workdir(workdir, dataset="mpi3dhp", mpi3dhp_protocol="zhou",
                                       output_dir=workdir / "eval" / "zhou3dhp", **kw)  # fmt: skip
    rows = record["tables"]["mpi3dhp_test: 3DPCK / AUC by scene, Zhou et al. protocol (%)"]
    assert record["header"]["options"]["mpi3dhp_protocol"] == "zhou"
    ds = evaluate.load_eval_datasets("mpi3dhp", predictor, **kw)["mpi3dhp_test"]
    with pytest.raises(ValueError, match="unknown 3DHP protocol 'auto'"):
        evaluate.evaluate_predictor(predictor, {"mpi3dhp_test": ds}, mpi3dhp_protocol="auto")
    pred = np.asarray(predictor.predict(ds.pose2d_norm, ds.confidence)["pose3d"], np.float64)
    tgt = ds.pose3d_root_relative.astype(np.float64)
    ix = skeleton.H36M17.index
    limbs = [("LShoulder", "LElbow"), ("LElbow", "LWrist"), ("RShoulder", "RElbow"),
             ("RElbow", "RWrist"), ("LHip", "LKnee"), ("LKnee", "LFoot"), ("RHip", "RKnee"),
             ("RKnee", "RFoot")]  # fmt: skip

    def size(x):
        return sum(np.linalg.norm(x[:, ix(a)] - x[:, ix(b)], axis=-1) for a, b in limbs)

    pred = pred * (size(tgt) / size(pred))[:, None, None]
    for j in ("Hip", "LHip", "RHip"):
        pred[:, ix(j)] += 0.2 * (pred[:, ix("Thorax")] - pred[:, ix(j)])
    pred -= pred[:, :1]
    names = ["Head", "Thorax", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist",
             "RHip", "RKnee", "RFoot", "LHip", "LKnee", "LFoot"]  # fmt: skip
    j14 = [ix(n) for n in names]
    err = np.linalg.norm(pred[:, j14] - tgt[:, j14], axis=-1)
    np.testing.assert_allclose(rows["3DPCK@150mm (%)"]["all"], 100 * (err < 0.15).mean(),
                               rtol=1e-4)  # fmt: skip
    auc = np.mean([(err < t).mean() for t in np.linspace(0, 0.15, 31)]) * 100
    np.testing.assert_allclose(rows["AUC (%)"]["all"], auc, rtol=1e-4)
    # a CameraPose work directory gets the standard table only unless asked
    plain = evaluate.evaluate_workdir(workdir, dataset="mpi3dhp", **kw)
    assert not any("Zhou" in t for t in plain["tables"])


def test_flip_tta_matches_a_numpy_reference():
    lay = skeleton.H36M17
    rng = np.random.default_rng(0)

    def predict(x, c):  # a lifter that is not mirror-equivariant
        z = jax.numpy.tanh(x[..., :1] * 0.3 + 0.1 * c[..., None])
        return {"pose3d": jax.numpy.concatenate([x + 0.05, z], -1)}

    x = rng.normal(size=(5, 17, 2)).astype(np.float32)
    c = rng.uniform(size=(5, 17)).astype(np.float32)
    perm = np.arange(17)
    for a, b in lay.symmetric_pairs:
        perm[lay.index(a)], perm[lay.index(b)] = lay.index(b), lay.index(a)

    def mirror(p):
        p = p[:, perm].copy()
        p[..., 0] *= -1
        return p

    plain = np.asarray(predict(x, c)["pose3d"])
    flipped = mirror(np.asarray(predict(mirror(x), c[:, perm])["pose3d"]))
    ref = 0.5 * (plain + flipped)
    ref -= ref[:, :1]
    np.testing.assert_allclose(evaluate.flip_augmented(predict)(x, c), ref, atol=1e-6)


def test_bad_requests(workdir, predictor, tmp_path):
    with pytest.raises(ValueError, match="unknown dataset"):
        evaluate.load_eval_datasets("kitti", predictor)
    with pytest.raises(ValueError, match="needs --h36m_dir"):
        evaluate.load_eval_datasets("h36m", predictor)
    with pytest.raises(ValueError, match="needs --mpi3dhp_root"):
        evaluate.load_eval_datasets("mpi3dhp", predictor)
    with pytest.raises(ValueError, match="applies to --dataset=h36m only"):
        evaluate.load_eval_datasets("cmu", predictor, drop_s11_directions=True)
    with pytest.raises(FileNotFoundError, match="not a jpose work directory"):
        inference.load_predictor(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"seed": 0}))
    with pytest.raises(ValueError, match="no 'experiment' field"):
        inference.load_predictor(tmp_path)
    with pytest.raises(FileNotFoundError, match="step 99"):
        inference.load_predictor(workdir, step=99)
