"""CameraPose fidelity fixes of issue 18 (``experiments/camerapose.py``): stage-3 learning-rate
boundaries, the frozen refinement network in inference mode, aspect-ratio-consistent 2D for the
camera branch and the discriminators, MPII normalisation, PoseAug's generator objective.

Small: the ``:smoke`` networks, a fixed batch, no full run (the three-stage run is
``test_experiment_camerapose.py``).
"""

import dataclasses

import jax
import numpy as np
import optax
import pytest

from experiments import camerapose as cp
from experiments.configs import camerapose as cp_configs
from jpose import training as T
from jpose.data.camerapose import frame_scale
from jpose.data.common import normalized_intrinsics
from jpose.models.camerapose import d2d_input

pytestmark = pytest.mark.usefixtures("fast_compile")


@pytest.fixture(scope="module")
def smoke():
    cfg = cp_configs.get_config("smoke")
    setup = cp.prepare(cfg)
    variables = cp.init_players(setup, jax.random.key(0))
    batch = {name: {k: v[:16] for k, v in a.items()} for name, a in setup.train_arrays.items()}
    return cfg, setup, variables, batch


def _schedule_count(opt_state):
    counts = [
        int(s.count)
        for s in jax.tree_util.tree_leaves(
            opt_state, is_leaf=lambda s: isinstance(s, optax.ScaleByScheduleState)
        )
        if isinstance(s, optax.ScaleByScheduleState)
    ]
    assert len(counts) == 1, counts
    return counts[0]


def test_stage3_paper_schedule_decays_at_epochs_30_and_60(smoke):
    """Issue 18.1: with the paper's stage-3 schedule (5e-4, x0.1 at epochs 30 and 60) the
    lifter and camera branch, updated in two phases per iteration (``lifter``, ``weak2d``), use
    lr(epoch) in both phases: the decays land at epochs 30 and 60 (one iteration per epoch here),
    not at 15 and 30."""
    cfg, setup, variables, batch = smoke
    cfg = cfg.copy_and_resolve_references()
    cp_configs.paper_schedule(cfg)
    setup = dataclasses.replace(setup, config=cfg)
    sched = T.schedule_from_config(cfg.stages.stage3, steps_per_epoch=1)
    state = cp.stage_state(setup, "end2end", variables, steps_per_epoch=1)
    phases = cp.make_phases(setup, "end2end")
    assert [p.name for p in phases if "lifter" in p.players] == ["lifter", "weak2d"]
    step = jax.jit(T.make_train_step(phases))
    used = {}
    for _ in range(61):
        state, _ = step(state, batch, jax.random.key(1))
        for name in ("lifter", "camera"):
            # the schedule was read at (count after the iteration's updates) - 1
            count = _schedule_count(state.players[name].opt_state)
            used.setdefault(name, []).append(float(sched(count - 1)))
    for name, lrs in used.items():
        np.testing.assert_allclose(lrs[:30], 5e-4, rtol=1e-6, err_msg=name)
        np.testing.assert_allclose(lrs[30:60], 5e-5, rtol=1e-6, err_msg=name)
        np.testing.assert_allclose(lrs[60:], 5e-6, rtol=1e-6, err_msg=name)


@pytest.mark.parametrize("stage", ["warmup", "end2end"])
def test_frozen_refinement_is_the_same_function_in_training_and_evaluation(smoke, stage):
    """Issue 18.2: the refinement network, frozen after stage 1, refines the same 2D identically
    inside a stage-2/3 training step and at test time, and its running statistics stay put."""
    cfg, setup, variables, batch = smoke
    # a "trained" refinement network: the zero-initialised output layer would make it the
    # identity in either mode
    params, stats = variables["refine"]
    leaves, tree = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(jax.random.key(3), len(leaves))
    noisy = [p + 0.1 * jax.random.normal(k, p.shape) for p, k in zip(leaves, keys, strict=True)]
    variables = {**variables, "refine": (jax.tree_util.tree_unflatten(tree, noisy), stats)}
    state = cp.stage_state(setup, stage, variables, steps_per_epoch=1)
    x, c = batch["3d"]["pose2d_norm"], batch["3d"]["confidence"]

    def probe(ctx, b):
        refined = cp._net(setup, ctx.apply).refine(x, c)
        return jax.numpy.zeros(()), {"refined": refined}

    phases = (*cp.make_phases(setup, stage), T.Phase("probe", ("lifter",), probe))
    new, metrics = jax.jit(T.make_train_step(phases))(state, batch, jax.random.key(2))
    expected = cp.make_predict(setup, state)(x, c)["refined"]
    np.testing.assert_allclose(metrics["probe/refined"], expected, rtol=1e-5, atol=1e-6)
    for a, b in zip(
        jax.tree_util.tree_leaves(state.players["refine"].batch_stats),
        jax.tree_util.tree_leaves(new.players["refine"].batch_stats),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)


# -- issue 18.4: MPII 2D-only data and the Human3.6M normalisation --------------------------------


@pytest.fixture(scope="module")
def h36m_with_mpii(tmp_path_factory):
    """Tiny VideoPose3D-format Human3.6M files and an MPII file in the shared layout (no image
    sizes), as a ``config.data`` block of the ``h36m`` preset."""
    from test_data_h36m import KEPT_32, _save_vp, _vp_project, _world_sequence

    from experiments.configs.data import data_config
    from jpose import skeleton

    d = tmp_path_factory.mktemp("h36m_mpii")
    pos3d = {
        s: {"Walking": _world_sequence(8, i)}
        for i, s in enumerate(("S1", "S5", "S6", "S7", "S8", "S9", "S11"))
    }
    _save_vp(d / "data_3d_h36m.npz", "positions_3d", pos3d)
    pos2d = {
        s: {a: [_vp_project(w[:, KEPT_32])[1].astype(np.float32)] * 4 for a, w in seqs.items()}
        for s, seqs in pos3d.items()
    }
    meta = {"num_joints": 17, "keypoints_symmetry": [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]]}
    _save_vp(d / "data_2d_h36m_gt.npz", "positions_2d", pos2d, meta)
    rng = np.random.default_rng(0)
    n = 3
    np.savez(
        d / "mpii.npz",
        keypoints=rng.uniform(50, 600, (n, 16, 2)).astype(np.float32),
        visibility=np.full((n, 16), 2, np.int32),
        image_id=np.arange(n, dtype=np.int32),
        image_name=np.array([f"{i:09d}.jpg" for i in range(n)]),
        image_size=np.full((n, 2), -1, np.int32),
        joint_names=np.array(skeleton.MPII16.joint_names),
    )
    cfg = data_config("h36m", normalization="image")
    cfg.h36m.dir = str(d)
    cfg.wild2d.mpii = str(d / "mpii.npz")
    cfg.wild2d.min_h36m_joints = 0
    return cfg, d


def test_mpii_without_image_sizes_is_refused_not_relabelled(h36m_with_mpii):
    """Issue 18.4: person-box normalised MPII must not be mixed with image-normalised Human3.6M
    under an "image" label."""
    from experiments import common

    cfg, _ = h36m_with_mpii
    with pytest.raises(ValueError, match="has no image sizes"):
        common.load_datasets(cfg)


def test_mpii_with_image_sizes_is_normalised_like_human36m(h36m_with_mpii):
    import json

    from experiments import common

    cfg, d = h36m_with_mpii
    cfg = cfg.copy_and_resolve_references()
    sizes = {f"{i:09d}.jpg": [1280, 720] for i in range(3)}
    (d / "sizes.json").write_text(json.dumps(sizes))
    cfg.wild2d.mpii_image_sizes = str(d / "sizes.json")
    out = common.load_datasets(cfg)
    ds = out["train_2d"]
    assert ds.normalization == out["train_3d"].normalization == "image"
    np.testing.assert_allclose(ds.image_size_px, [[1280, 720]] * 3)
    present = ds.confidence > 0
    expected = ds.pose2d_px / np.array([1280.0, 720.0]) * 2 - 1
    np.testing.assert_allclose(ds.pose2d_norm[present], expected[present], rtol=1e-5)


# -- issue 18.5: PoseAug's generator objective ----------------------------------------------------


def test_poseaug_generator_objective_and_discriminator_cadence(smoke):
    """PoseAug: L_G = 1 L_adv^2D + 6 L_adv^3D + 3 L_range and D updated every second iteration;
    the paper-size preset uses it with PoseAug's 256-wide D_3D."""
    h36m = cp_configs.get_config("h36m")
    g = h36m.gan
    assert (g.lambda_adv_2d, g.lambda_adv_3d, g.lambda_range, g.d_every) == (1.0, 6.0, 3.0, 2)
    assert h36m.model.d3d.width == 256
    cfg, setup, variables, batch = smoke
    cfg = cfg.copy_and_resolve_references()
    cp_configs.poseaug_gan(cfg)
    setup = dataclasses.replace(setup, config=cfg)
    state = cp.stage_state(setup, "warmup", variables, steps_per_epoch=1)
    step = jax.jit(T.make_train_step(cp.make_phases(setup, "warmup")))
    d_changed = []
    for _ in range(3):
        new, m = step(state, batch, jax.random.key(4))
        d_changed.append(
            not np.array_equal(
                jax.tree_util.tree_leaves(state.players["d3d"].params)[0],
                jax.tree_util.tree_leaves(new.players["d3d"].params)[0],
            )
        )
        state = new
    assert d_changed == [True, False, True]
    expected = m["generator/adv_2d"] + 6.0 * m["generator/adv_3d"] + 3.0 * m["generator/range"]
    np.testing.assert_allclose(m["generator/loss"], expected, rtol=1e-5)


# -- issue 18.3: COCO in pixels, aspect-ratio-consistent camera branch and D_2D -------------------


def _person_in_two_images():
    """One 3D pose seen by square-pixel cameras in a 640 x 480 and a 480 x 640 image."""
    from _helpers import STANDING_H36M17

    from jpose.data import PoseDataset
    from jpose.data.common import normalize_2d

    pose = np.asarray(STANDING_H36M17, np.float64) + np.array([0.1, 0.0, 4.0])
    sizes = np.array([[640.0, 480.0], [480.0, 640.0]])
    f = 500.0
    px = np.stack([f * pose[:, :2] / pose[:, 2:] + s / 2 for s in sizes]).astype(np.float32)
    ds = PoseDataset(
        name="two",
        confidence=np.ones((2, 17), np.float32),
        pose2d_px=px,
        pose2d_norm=normalize_2d(px, mode="image", image_size=sizes),
        focal_px=np.full((2, 2), f, np.float32),
        center_px=(sizes / 2).astype(np.float32),
        image_size_px=sizes.astype(np.float32),
        normalization="image",
    )
    return ds


def test_discriminator_and_camera_frame_hides_the_aspect_ratio():
    """The same person in a landscape and a portrait image: the paper's image normalisation
    stretches them differently, the frame D_2D and the camera branch work in does not (D_2D's
    KCS input has the same shape; sizes are in units of the image width), and square pixels
    have fx == fy there."""

    ds = _person_in_two_images()
    scale = frame_scale(ds)
    np.testing.assert_allclose(scale, [[1.0, 0.75], [1.0, 4.0 / 3.0]], rtol=1e-6)

    def shape(kcs):  # the 2D KCS up to the person's size in the image (its trace)
        kcs = np.asarray(kcs, np.float64)
        return kcs / np.trace(kcs, axis1=-2, axis2=-1)[..., None, None]

    kcs_image = shape(d2d_input(ds.pose2d_norm, kind="kcs"))
    assert not np.allclose(kcs_image[0], kcs_image[1], rtol=1e-2, atol=1e-3)  # aspect visible
    frame = ds.pose2d_norm * scale[:, None, :]
    kcs_frame = shape(d2d_input(frame, kind="kcs"))
    np.testing.assert_allclose(kcs_frame[0], kcs_frame[1], rtol=1e-4, atol=1e-6)
    focal, center = normalized_intrinsics(ds)
    np.testing.assert_allclose((focal * scale)[:, 0], (focal * scale)[:, 1], rtol=1e-6)
    # the frame is VideoPose3D's normalisation, exactly
    from jpose.data.common import normalize_2d

    vp = normalize_2d(ds.pose2d_px, mode="vp", image_size=ds.image_size_px)
    np.testing.assert_allclose(frame, vp, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(center * scale, 0.0, atol=1e-6)


def test_predict_returns_the_camera_in_the_input_units(smoke):
    """``make_predict``'s camera outputs and re-projection come back in image-normalised units
    when the frame scale is given (what ``_reprojection_error`` and ``experiments.infer`` read)."""
    cfg, setup, variables, batch = smoke
    predict = cp.make_predict(setup, {n: {"params": p, "batch_stats": s}
                                      for n, (p, s) in variables.items()})  # fmt: skip
    x, c = batch["2d"]["pose2d_norm"][:2], batch["2d"]["confidence"][:2]
    scale = np.array([[1.0, 0.75], [1.0, 1.5]], np.float32)
    out = predict(x, c, scale)
    square = predict(x, c)
    ratio = np.asarray(out["focal"])[:, 1] / np.asarray(out["focal"])[:, 0]
    base = np.asarray(square["focal"])[:, 1] / np.asarray(square["focal"])[:, 0]
    assert out["reprojected"].shape == x.shape
    assert np.all(np.isfinite(ratio)) and not np.allclose(ratio, base)


def test_cmu_coco_preset_reads_coco_train_in_pixels(shared_data):
    """Issue 18.3: the 2D-only COCO split of ``cmu+coco`` comes from the pixel file, with every
    person's image size (the aspect ratio the camera branch and D_2D need)."""
    from jpose.data import wild2d

    ds = wild2d.load_wild2d_npz(shared_data / "wild2d_coco_train.npz", normalization="image",
                                min_h36m_joints=17)  # fmt: skip
    from jpose.data import presets

    out = presets.load_preset("cmu+coco", data_dir=shared_data)
    train2d = out["train_2d"]
    assert train2d.pose2d_px is not None and np.all(train2d.image_size_px > 0)
    assert len(train2d) == len(ds)
    scale = frame_scale(train2d)
    assert np.mean(np.abs(scale[:, 1] - 1.0) > 0.01) > 0.9  # most COCO images are not square
