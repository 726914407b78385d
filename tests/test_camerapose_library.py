"""CameraPose's library code (issue 16): training batches and priors (``jpose.data.camerapose``),
PoseAug's augmentation (``jpose.augment.poseaug_augment``), the phases' objectives and player
initialisation (``jpose.models.camerapose``), PoseAug's players (``jpose.models.poseaug``), the
declared pipeline and the evaluation (``jpose.inference.camerapose``) and the 2D re-projection
error (``jpose.evaluation``). Small arrays, fake networks; each result is checked against a
computation written out here."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _helpers import STANDING_H36M17

from jpose import augment, kinematics, losses, skeleton
from jpose.data import PoseDataset
from jpose.data import camerapose as cpdata
from jpose.data.common import normalize_2d
from jpose.evaluation import reprojection_error_2d
from jpose.inference import camerapose as cpinf
from jpose.models import camerapose as CP
from jpose.models.poseaug import poseaug_players

LAY = skeleton.H36M17
F_PX = 500.0


def _dataset(sizes=((640.0, 480.0), (480.0, 640.0)), normalization="image"):
    """The standing pose 4 m (and 5 m) in front of square-pixel cameras (focal 500 px)."""
    sizes = np.asarray(sizes, np.float64)
    n = len(sizes)
    pose = np.stack([STANDING_H36M17 + np.array([0.1 * i, 0.0, 4.0 + i]) for i in range(n)])
    px = np.stack([F_PX * p[:, :2] / p[:, 2:] + s / 2 for p, s in zip(pose, sizes, strict=True)])
    return PoseDataset(
        name="two",
        confidence=np.ones((n, 17), np.float32),
        pose2d_px=px.astype(np.float32),
        pose2d_norm=normalize_2d(px.astype(np.float32), mode=normalization, image_size=sizes),
        pose3d_cam=pose.astype(np.float32),
        focal_px=np.full((n, 2), F_PX, np.float32),
        center_px=(sizes / 2).astype(np.float32),
        image_size_px=sizes.astype(np.float32),
        labels={"action": np.array(["a", "b"][:n])},
        normalization=normalization,
    )


# -- data ----------------------------------------------------------------------------------------


def test_training_arrays_and_camera_priors():
    ds = _dataset()
    arrays = cpdata.training_arrays(ds, ds, root=LAY.root)
    a3 = arrays["3d"]
    np.testing.assert_allclose(a3["root"], ds.pose3d_cam[:, 0])
    np.testing.assert_allclose(a3["pose3d"], ds.pose3d_root_relative, atol=1e-6)
    # image normalisation: f_n = 2 f / (w, h), c_n = 0 at the image centre
    np.testing.assert_allclose(a3["focal"], 2 * F_PX / ds.image_size_px, rtol=1e-6)
    np.testing.assert_allclose(a3["center"], 0.0, atol=1e-6)
    np.testing.assert_allclose(a3["frame_scale"], [[1.0, 0.75], [1.0, 4 / 3]], rtol=1e-6)
    assert set(arrays["2d"]) == {"pose2d_norm", "confidence", "frame_scale"}
    priors = cpdata.camera_priors(a3)
    # in the aspect-preserving frame a square-pixel focal length is 2 f / w on both axes
    want = np.mean(2 * F_PX / ds.image_size_px[:, 0])
    np.testing.assert_allclose(priors["focal"], [want, want], rtol=1e-6)
    np.testing.assert_allclose(priors["translation"], ds.pose3d_cam[:, 0].mean(0), rtol=1e-6)
    assert "2d" not in cpdata.training_arrays(ds, root=LAY.root)


def test_frame_scale_needs_image_sizes_and_is_one_for_vp():
    np.testing.assert_array_equal(cpdata.frame_scale(_dataset(normalization="vp")), 1.0)
    ds = _dataset()
    ds.image_size_px[0] = -1
    with pytest.raises(ValueError, match="without image sizes"):
        cpdata.frame_scale(ds)


def test_relative_depth_arrays_refuse_other_normalisations():
    with pytest.raises(ValueError, match="'image'-normalised"):
        cpdata.relative_depth_arrays("vp", seed=0, source="coco")


def test_reprojection_error_2d_in_normalised_units_and_pixels():
    ds = _dataset()
    ds.confidence[0, 3] = 0.0  # a missing joint does not count
    shifted = ds.pose2d_norm + np.array([0.01, 0.0], np.float32)
    shifted[0, 3] += 5.0
    err = reprojection_error_2d(shifted, ds)
    assert err["num_examples"] == 2.0
    np.testing.assert_allclose(err["mean_err_norm"], 0.01, rtol=1e-4)
    # "image" normalisation: one unit is w / 2 pixels along x
    n0, n1 = 16, 17
    want_px = (n0 * 0.01 * 320 + n1 * 0.01 * 240) / (n0 + n1)
    np.testing.assert_allclose(err["mean_err_px"], want_px, rtol=1e-4)


# -- PoseAug -------------------------------------------------------------------------------------


def _raw(b, *, rotation=0.0, translation=0.0):
    return {
        "bone_angle": jnp.zeros((b, LAY.num_bones, 3)),
        "bone_length": jnp.zeros((b, LAY.num_bone_classes)),
        "rotation": jnp.full((b, 3), rotation),
        "translation": jnp.full((b, 3), translation),
    }


def test_poseaug_augment_with_zero_parameters_is_the_identity_and_its_projection():
    pose = jnp.asarray(STANDING_H36M17)[None].repeat(2, 0)
    root = jnp.array([[0.0, 0.0, 4.0], [0.3, -0.1, 6.0]])
    focal, center = jnp.array([[2.0, 2.0], [1.5, 1.5]]), jnp.array([[0.0, 0.1], [0.0, 0.0]])
    seen = []

    def generator(pose_abs):
        seen.append(pose_abs)
        return _raw(2)

    out = augment.poseaug_augment(generator, pose, root, focal=focal, center=center, layout=LAY)
    np.testing.assert_allclose(seen[0], pose + root[:, None], atol=1e-6)
    np.testing.assert_allclose(out["pose3d"], pose, atol=1e-5)
    np.testing.assert_allclose(out["root"], root, atol=1e-6)
    p = np.asarray(pose + root[:, None])
    want = np.asarray(focal)[:, None] * p[..., :2] / p[..., 2:] + np.asarray(center)[:, None]
    np.testing.assert_allclose(out["x"], want, rtol=1e-5, atol=1e-6)
    assert out["valid"].tolist() == [True, True]
    np.testing.assert_allclose(out["stats"]["aug_bone_len_sum_ratio"], 1.0, rtol=1e-5)
    np.testing.assert_allclose(out["stats"]["aug_rot_angle_deg"], 0.0, atol=1e-6)


def test_poseaug_augment_bounds_rotation_translation_and_validity():
    pose = jnp.asarray(STANDING_H36M17)[None]
    root = jnp.array([[0.0, 0.0, 4.0]])
    kw = {"focal": jnp.array([[2.0, 2.0]]), "center": jnp.zeros((1, 2)), "layout": LAY}
    big = 50.0  # tanh saturates: every bound is reached
    out = augment.poseaug_augment(lambda p: _raw(1, rotation=big, translation=big), pose, root,
                                  max_angle=0.5, translation_limit=0.3, depth_log_limit=0.2,
                                  **kw)  # fmt: skip
    np.testing.assert_allclose(out["root"], [[0.3, 0.3, 4.0 * np.exp(0.2)]], rtol=1e-5)
    np.testing.assert_allclose(out["stats"]["aug_rot_angle_deg"], np.degrees(0.5 * 3**0.5),
                               rtol=1e-4)  # fmt: skip
    # rotation and translation keep every bone length
    np.testing.assert_allclose(kinematics.bone_lengths(out["pose3d"], layout=LAY),
                               kinematics.bone_lengths(pose, layout=LAY), rtol=1e-5)  # fmt: skip
    tight = augment.poseaug_augment(lambda p: _raw(1), pose, root, valid_bound=0.05, **kw)
    assert tight["valid"].tolist() == [False]


def test_poseaug_players_shapes():
    players = poseaug_players(LAY, noise_dim=4, generator_width=8, num_stages=1, d2d_width=8,
                              d3d_width=8, d3d_bottleneck=4)  # fmt: skip
    assert set(players) == {"generator", "d2d", "d3d"}
    pose = jnp.asarray(STANDING_H36M17)[None].repeat(2, 0) + jnp.array([0.0, 0.0, 4.0])
    variables = players["d3d"].init(jax.random.key(0), pose)
    out, _ = players["d3d"].apply(variables, pose, train=False)
    assert out.shape == (2, len(skeleton.KCS_PARTS))


# -- forward pass helpers and player initialisation -------------------------------------------


def test_d2d_input_kcs_and_root_centred_pose():
    x = jnp.asarray(np.random.default_rng(0).normal(size=(3, 17, 2)), jnp.float32)
    bones = np.stack([np.asarray(x)[:, c] - np.asarray(x)[:, p] for p, c in LAY.bones], 1)
    np.testing.assert_allclose(CP.d2d_input(x, kind="kcs"), bones @ bones.transpose(0, 2, 1),
                               rtol=1e-5, atol=1e-5)  # fmt: skip
    np.testing.assert_allclose(CP.d2d_input(x, kind="pose"), x - x[:, :1], atol=1e-7)
    with pytest.raises(ValueError, match="'kcs' or 'pose'"):
        CP.d2d_input(x, kind="image")


def test_init_players_abstract_is_a_zero_template_of_the_same_shapes():
    models = {"refine": CP.refine_net(width=8, num_blocks=1),
              "camera": CP.camera_branch(width=8, num_blocks=1)}  # fmt: skip
    real = CP.init_players(models, jax.random.key(0), camera_inputs="2d+3d")
    template = CP.init_players(models, jax.random.key(0), abstract=True, camera_inputs="2d+3d")
    for name in models:
        a, b = jax.tree_util.tree_leaves(real[name]), jax.tree_util.tree_leaves(template[name])
        assert [x.shape for x in a] == [x.shape for x in b]
        assert all(not np.any(np.asarray(x)) for x in b)
    assert CP.example_inputs("camera", camera_inputs="2d")[0].shape == (2, 17, 2)
    with pytest.raises(ValueError, match="unknown CameraPose player"):
        CP.example_inputs("critic")


# -- objectives with fake networks -------------------------------------------------------------


def _fake_net(pose3d, cam, *, refine_offset=0.0):
    """A forward pass whose lifter returns ``pose3d`` and camera branch ``cam`` (in the frame)."""

    def apply(name, *xs):
        if name == "refine":
            return xs[0][..., :2] + refine_offset
        if name == "lifter":
            return pose3d
        return cam

    return CP.CameraPoseForward(apply, camera_inputs="2d")


def _batch3d(b=2):
    pose = jnp.asarray(STANDING_H36M17)[None].repeat(b, 0)
    root = jnp.array([[0.0, 0.0, 4.0]] * b)
    focal, center = jnp.full((b, 2), 2.0), jnp.zeros((b, 2))
    x = losses.camerapose_project(pose, focal=focal, center=center, offset=root)
    return {"pose2d_norm": x, "confidence": jnp.ones((b, 17)), "pose3d": pose, "root": root,
            "focal": focal, "center": center, "frame_scale": jnp.ones((b, 2))}  # fmt: skip


def test_refinement_objective_errors():
    b3 = _batch3d()
    net = _fake_net(None, None, refine_offset=0.03)
    loss, m = CP.refinement_objective(net, [b3, b3])
    np.testing.assert_allclose(m["input_err_2d"], 0.0, atol=1e-7)
    np.testing.assert_allclose(m["refined_err_2d"], 0.03 * 2**0.5, rtol=1e-5)
    # eq. 4 with confidences 1 (eq. 3: c' = 1/J): 1/J sum_j c' |d|^2 = 2 * 0.03^2 / J
    np.testing.assert_allclose(loss, 2 * 0.03**2 / 17, rtol=1e-4)


def test_supervised_objective_real_and_augmented_pairs():
    b3 = _batch3d()
    cam = {"focal": b3["focal"], "center": b3["center"], "translation": b3["root"]}
    offset = jnp.array([0.0, 0.0, 0.1])  # every joint 10 cm too deep in the root-relative pose
    aug = {"x": b3["pose2d_norm"], "pose3d": b3["pose3d"], "root": b3["root"],
           "valid": jnp.array([True, False])}  # fmt: skip
    both = {k: jnp.concatenate([v, v]) for k, v in cam.items()}
    net = _fake_net(jnp.concatenate([b3["pose3d"]] * 2) + offset, both)
    loss, m = CP.supervised_objective(net, b3, augmented=aug, aug_weight=0.5, lambda_cam=0.0,
                                      lambda_2d_phi=0.0, lambda_3d=1.0)  # fmt: skip
    # L_3D = mean over joints of |0.1 m|^2; real mean + 0.5 * mean over the valid augmented pair
    np.testing.assert_allclose(loss, 0.01 + 0.5 * 0.01, rtol=1e-4)
    np.testing.assert_allclose(m["mpjpe_real_mm"], 100.0, rtol=1e-4)
    np.testing.assert_allclose(m["lcam_real"], 0.0, atol=1e-8)
    assert "l3d_aug" in m and float(m["lref_real"]) == 0.0
    # an exact pose and camera: the re-projection (eq. 7) and camera (eq. 8) terms vanish
    exact = _fake_net(b3["pose3d"], cam)
    _, m0 = CP.supervised_objective(exact, b3)
    for k in ("l2d_real", "lcam_real", "l3d_real"):
        np.testing.assert_allclose(m0[k], 0.0, atol=1e-6)


def test_weak_objective_with_the_discriminator_term():
    b3 = _batch3d()
    cam = {"focal": b3["focal"], "center": b3["center"], "translation": b3["root"]}
    batch = {k: b3[k] for k in ("pose2d_norm", "confidence", "frame_scale")}
    net = _fake_net(b3["pose3d"], cam)
    total, m = CP.weak_objective(net, batch, lambda_2d_phi_prime=0.2, lambda_adv=0.1,
                                 discriminator=lambda x: jnp.zeros((x.shape[0], 1)))  # fmt: skip
    # exact re-projection; LS-GAN generator loss of D = 0 is 1/2 (0 - 1)^2
    np.testing.assert_allclose(m["reproj_err_norm"], 0.0, atol=1e-6)
    np.testing.assert_allclose(m["adv_2d"], 0.5, rtol=1e-6)
    np.testing.assert_allclose(total, 0.1 * 0.5, rtol=1e-5)
    np.testing.assert_allclose(m["depth_mean"], 4.0, rtol=1e-6)
    _, m_no = CP.weak_objective(net, batch, discriminator=None, lambda_adv=0.1)
    assert "adv_2d" not in m_no


def test_discriminator_and_generator_objectives():
    b3 = _batch3d()
    aug = {"x": b3["pose2d_norm"], "pose3d": b3["pose3d"], "valid": jnp.array([True, False]),
           "ba_diff": jnp.zeros((2, LAY.num_bones)), "rho": jnp.zeros((2, LAY.num_bone_classes)),
           "stats": {"aug_valid_frac": jnp.asarray(0.5)}}  # fmt: skip

    def d2d(x):  # 1 for the first half (real), 0.25 for the fakes
        n = x.shape[0] // 2
        return jnp.concatenate([jnp.ones((n, 1)), jnp.full((x.shape[0] - n, 1), 0.25)])

    def d3d(x):
        return jnp.full((x.shape[0], 5), 0.5)

    seen = []

    def accuracy(real, fake):
        seen.append((real.shape, fake.shape))
        return {"acc": 1.0}

    loss, m = CP.discriminator_objective(d2d, d3d, b3, aug, accuracy=accuracy)
    np.testing.assert_allclose(m["d2d_loss"], 0.0 + 0.5 * 0.25**2, rtol=1e-6)
    np.testing.assert_allclose(m["d3d_loss"], 0.5 * 0.5**2 + 0.5 * 0.5**2, rtol=1e-6)
    np.testing.assert_allclose(loss, m["d2d_loss"] + m["d3d_loss"], rtol=1e-6)
    assert seen == [((2,), (2,)), ((2, 5), (2, 5))] and m["d3d_acc"] == 1.0
    # the 2D-only re-projections join the fakes, the 2D-only GT the reals
    weak = {k: b3[k] for k in ("pose2d_norm", "frame_scale")}
    _, m2 = CP.discriminator_objective(d2d, d3d, b3, aug, weak_batch=weak,
                                       reproject=lambda b: b["pose2d_norm"])  # fmt: skip
    np.testing.assert_allclose(m2["d2d_loss"], 0.5 * 0.25**2, rtol=1e-6)
    # generator: D fooled (score 1) -> no adversarial loss; zero bone-angle changes are outside
    # PoseAug's band (0.205 +- 0.165), zero length ratios inside theirs
    g_loss, gm = CP.generator_objective(lambda x: jnp.ones((x.shape[0], 1)), d3d, b3, aug,
                                        lambda_range=3.0)  # fmt: skip
    np.testing.assert_allclose(gm["adv_2d"], 0.0, atol=1e-8)
    np.testing.assert_allclose(gm["adv_3d"], 0.5 * 0.5**2, rtol=1e-6)
    np.testing.assert_allclose(gm["range"], 0.205**2, rtol=1e-5)
    np.testing.assert_allclose(g_loss, 6.0 * 0.125 + 3.0 * 0.205**2, rtol=1e-5)
    assert gm["aug_valid_frac"] == 0.5


def test_relative_depth_objective_orders_the_nearer_person():
    pose = jnp.zeros((4, 17, 3))
    depth = jnp.array([3.0, 5.0, 6.0, 4.0])  # pairs (A, B): (3, 6) and (5, 4)
    cam = {"focal": jnp.ones((4, 2)), "center": jnp.zeros((4, 2)),
           "translation": jnp.stack([jnp.zeros(4), jnp.zeros(4), depth], -1)}  # fmt: skip
    x = jnp.zeros((2, 17, 2))
    pairs = {"pose_a": x, "pose_b": x, "conf_a": jnp.ones((2, 17)), "conf_b": jnp.ones((2, 17)),
             "label": jnp.array([1.0, 1.0]), "joint_mask": jnp.ones((2, 17))}  # fmt: skip
    loss, acc = CP.relative_depth_objective(_fake_net(pose, cam), pairs, temperature=1.0)
    np.testing.assert_allclose(acc, 0.5)  # pair 1 right (A nearer), pair 2 wrong
    # BCE on the logit (Z_B - Z_A) / T with label 1: softplus(-3) and softplus(1)
    want = np.mean([np.log1p(np.exp(-3.0)), np.log1p(np.exp(1.0))])
    np.testing.assert_allclose(loss, want, rtol=1e-4)


def test_reproject_is_refine_lift_camera_project():
    b3 = _batch3d()
    cam = {"focal": b3["focal"], "center": b3["center"], "translation": b3["root"]}
    net = _fake_net(b3["pose3d"], cam)
    out = net.reproject(b3["pose2d_norm"], b3["confidence"], b3["frame_scale"], min_depth=0.1)
    np.testing.assert_allclose(out, b3["pose2d_norm"], rtol=1e-5, atol=1e-6)


# -- declared pipeline and evaluation -----------------------------------------------------------


LIFTER = {"width": 8, "num_blocks": 1, "dropout": 0.0, "zero_init_output": True}
PRIORS = {"focal": (2.0, 2.0), "center": (0.0, 0.0), "translation": (0.0, 0.0, 4.0)}


def test_network_specs_and_pipeline_spec():
    specs = cpinf.network_specs(17, lifter=LIFTER, refine={"width": 8, "num_blocks": 1},
                                camera={"width": 8, "num_blocks": 1}, priors=PRIORS)  # fmt: skip
    assert [s["factory"] for s in specs.values()] == ["martinez_lifter", "refine_net",
                                                      "camera_branch"]  # fmt: skip
    assert specs["camera"]["kwargs"]["translation_prior"] == [0.0, 0.0, 4.0]
    spec = cpinf.pipeline_spec(specs, stages=("a", "b"), camera_inputs="2d", min_depth=0.3,
                               layout="h36m17", normalization="image")  # fmt: skip
    assert spec["kind"] == "camerapose" and spec["predictor"]["has_camera"]
    assert spec["predictor"]["description"].endswith("refinement + lifter + camera branch")
    assert cpinf.description({"lifter": {}}).endswith(": lifter")
    with pytest.raises(ValueError, match="needs the training statistics"):
        cpinf.network_specs(17, lifter={**LIFTER, "standardize": True}, priors=PRIORS)
    with pytest.raises(ValueError, match="only 'martinez'"):
        cpinf.network_specs(17, lifter={**LIFTER, "kind": "temporal"})


def test_evaluate_with_noise_rows_reprojection_table_and_figures(tmp_path):
    ds = _dataset()
    target = ds.pose3d_root_relative

    def predict(x, c, scale=None):  # the true 3D and the dataset's own 2D
        del c, scale
        return {"pose3d": jnp.asarray(target[: x.shape[0]]), "reprojected": x,
                "refined": x}  # fmt: skip

    noise = {"sigma_min": 0.0, "sigma_max": 0.0, "outlier_prob": 0.0}
    datasets = {"test": ds, "val_2d": ds}
    evaluations, tables, noisy = cpinf.evaluate(predict, datasets, ["test"], batch_size=8,
                                                noise=noise)  # fmt: skip
    assert set(evaluations) == {"test", "test+noise"}
    np.testing.assert_allclose(evaluations["test"]["metrics"]["mpjpe"]["frame_wise"], 0.0,
                               atol=1e-3)  # fmt: skip
    np.testing.assert_allclose(noisy["test"][0], ds.pose2d_norm, atol=1e-6)  # zero noise
    assert tables[cpinf.REPROJECTION_TABLE]["val_2d"]["mean_err_norm"] == 0.0
    _, no_camera, _ = cpinf.evaluate(predict, datasets, ["test"], batch_size=8, has_camera=False)
    assert no_camera == {}
    figs = cpinf.figures(predict, datasets, evaluations, noisy, workdir=tmp_path, samples=2)
    assert set(figs) == {"pose3d_test", "refinement_test", "reprojection_2d_only",
                         "training_curves"}  # fmt: skip
    assert set(cpinf.figures(predict, datasets, evaluations, {}, workdir=tmp_path,
                             has_camera=False)) == {"pose3d_test", "training_curves"}  # fmt: skip
