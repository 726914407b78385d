"""Library code of the image networks: training targets (``jpose.data.image_targets``), their
losses (``jpose.image_losses``) and evaluation (``jpose.image_evaluation``), each checked
against a computation written out here."""

import itertools

import jax
import numpy as np
import pytest

from jpose import kinematics, losses, skeleton
from jpose.data import image_targets, images, render
from jpose.image_evaluation import (
    crop_keypoints_figure,
    relative_depth_by_scale_gap,
    wsp_3d_evaluation,
    wsp_voxels_to_camera,
    zhou_image_evaluation,
)
from jpose.image_losses import wsp_finetune_loss, wsp_pretrain_loss, zhou_image_loss
from jpose.models.resnet import heatmap_stride

J = skeleton.H36M17.num_joints


@pytest.fixture(scope="module")
def rendered():
    pool = images.pose_pool(split="train", mix={"standing": 1.0}, seed=0, poses="synthetic",
                            num_people_pool=4, cmu_subsample=1)  # fmt: skip
    crop = render.RenderConfig(image_size=32, framing="crop")
    scene = render.RenderConfig(image_size=32, framing="scene", people=(2, 3))
    crops = render.render_images(pool.poses, num_images=3, config=crop, seed=1)
    scenes = render.render_images(pool.poses, num_images=3, config=scene, seed=2)
    return crops, scenes


def test_heatmap_px_keeps_pixel_centres():
    # image pixels 0..3 of a stride-4 network cover heatmap pixel 0, whose centre is u = 1.5;
    # the image's edge -0.5 is the heatmap's edge
    np.testing.assert_allclose(image_targets.heatmap_px([1.5, 5.5, -0.5], 4), [0.0, 1.0, -0.5])


def test_heatmap_stride_of_the_resnet_networks():
    assert heatmap_stride(resnet_depth=50, stem="imagenet", deconv_layers=3) == 4  # 32 / 8
    assert heatmap_stride(resnet_depth=10, stem="small", deconv_layers=1) == 4  # 8 / 2
    with pytest.raises(ValueError, match="not divisible"):
        heatmap_stride(resnet_depth=10, stem="small", deconv_layers=4)


def test_zhou_targets_are_a_scaled_pose(rendered):
    r, _ = rendered
    t = image_targets.zhou_targets(r, heatmap_size=8)  # stride 4
    p = r.pose3d_cam[:, 0].astype(np.float64)
    f = r.camera.focal[:, 0].astype(np.float64)
    np.testing.assert_allclose(t["kp"], (r.keypoints_2d[:, 0] + 0.5) / 4 - 0.5, rtol=1e-6)
    for n in range(len(r)):
        z_root = p[n, 0, 2]
        want = f[n] * (p[n, :, 2] - z_root) / z_root / 4
        np.testing.assert_allclose(t["depth"][n], want, rtol=1e-5, atol=1e-5)
    assert t["depth"][:, 0].tolist() == [0, 0, 0] and t["vis"].dtype == np.float32


def test_wsp_pretrain_arrays_pairs_and_true_order(rendered):
    _, s = rendered
    arr = image_targets.wsp_pretrain_arrays(s, stride=2, rd_labels="depth")
    k = s.person_valid.shape[1]
    pairs = list(itertools.permutations(range(k), 2))
    assert arr["pairs"].shape == (3, len(pairs), 2)
    for n in range(3):
        for i, (a, b) in enumerate(pairs):
            assert arr["pair_valid"][n, i] == (s.person_valid[n, a] and s.person_valid[n, b])
            nearer = s.pose3d_cam[n, a, :, 2] <= s.pose3d_cam[n, b, :, 2]
            np.testing.assert_array_equal(arr["labels_depth"][n, i], nearer)
    np.testing.assert_array_equal(arr["labels"], arr["labels_depth"])
    np.testing.assert_array_equal(arr["label_valid"], arr["pair_valid"])
    np.testing.assert_allclose(arr["boxes"], (s.boxes + 0.5) / 2 - 0.5)
    ankle = image_targets.wsp_pretrain_arrays(s, stride=2, rd_labels="ankle")
    np.testing.assert_array_equal(ankle["labels"], ankle["labels_ankle"])
    with pytest.raises(ValueError, match="rd_labels"):
        image_targets.wsp_pretrain_arrays(s, stride=2, rd_labels="order")


def test_wsp_voxels_back_project_to_the_pose(rendered):
    r, _ = rendered
    ft = image_targets.wsp_finetune_arrays(r, stride=4, depth_bins=16, depth_range_m=2.0)
    gt = r.pose3d_cam[:, 0].astype(np.float64)
    back = wsp_voxels_to_camera(ft["coords"].astype(np.float64), root_depth=gt[:, :1, 2],
                                focal=ft["focal"], center=ft["center"], stride=4, depth_bins=16,
                                depth_range_m=2.0)  # fmt: skip
    np.testing.assert_allclose(back, gt, atol=1e-4)
    ev, summary = wsp_3d_evaluation(ft["coords"], ft, stride=4, depth_bins=16,
                                    depth_range_m=2.0, name="t")  # fmt: skip
    assert ev["num_examples"] == 3 and set(ev["metrics"]) == {"mpjpe", "p_mpjpe", "n_mpjpe"}
    assert max(summary.values()) < 0.1  # mm
    # one depth bin further away: z grows by 2 m / 15 for every joint, x and y with it
    far = wsp_voxels_to_camera(ft["coords"] + np.array([0.0, 0.0, 1.0]), root_depth=gt[:, :1, 2],
                               focal=ft["focal"], center=ft["center"], stride=4, depth_bins=16,
                               depth_range_m=2.0)  # fmt: skip
    np.testing.assert_allclose(far[..., 2] - back[..., 2], 2.0 / 15, atol=1e-6)
    np.testing.assert_allclose(far[..., :2] / far[..., 2:], back[..., :2] / back[..., 2:])


def _zhou_inputs(rng, b=4, s=2, h=6):
    kp = rng.uniform(0, h - 1, (b, J, 2)).astype(np.float32)
    vis = (rng.uniform(size=(b, J)) > 0.2).astype(np.float32)
    return {
        "heatmaps": rng.normal(size=(b, s, J, h, h)).astype(np.float32),
        "depth": rng.normal(size=(b, J)).astype(np.float32),
        "kp": kp,
        "vis": vis,
        "target": rng.normal(size=(b, J)).astype(np.float32),
        "has_depth": np.arange(b) < 2,
    }


def test_zhou_image_loss_heatmap_and_regression_terms():
    x = _zhou_inputs(np.random.default_rng(0))
    canon = np.ones(len(skeleton.H36M17.bones), np.float32)
    w = {"reg": 0.5, "geo_2d": 0.0, "geo_3d": 0.0, "hm_3d": 1.0}
    loss, m = zhou_image_loss(x["heatmaps"], x["depth"], x["kp"], x["vis"], x["target"],
                              x["has_depth"], w, canonical_lengths=canon, sigma=1.0)  # fmt: skip
    h = x["heatmaps"].shape[-1]
    yy, xx = np.mgrid[0:h, 0:h]
    g = np.exp(-((xx - x["kp"][..., 0, None, None]) ** 2 + (yy - x["kp"][..., 1, None, None]) ** 2)
               / 2.0)  # fmt: skip
    per_joint = ((x["heatmaps"] - g[:, None]) ** 2).sum((-1, -2)) * x["vis"][:, None]
    l2d = (per_joint.sum(-1) / np.maximum(x["vis"].sum(-1), 1)[:, None]).sum(-1)
    d = x["depth"] - x["depth"][:, :1]
    reg = ((d - x["target"]) ** 2).sum(-1)
    want = l2d.mean() + (0.5 * reg * x["has_depth"]).mean()
    np.testing.assert_allclose(float(loss), want, rtol=1e-5)
    np.testing.assert_allclose(float(m["reg"]), reg[:2].mean(), rtol=1e-5)
    np.testing.assert_allclose(float(m["depth_rmse"]), np.sqrt(reg[:2].mean() / J), rtol=1e-5)
    # stage 1: only the 2D-only images are supervised (3D images still count in the mean)
    w0 = {k: 0.0 for k in w}
    loss0, _ = zhou_image_loss(x["heatmaps"], x["depth"], x["kp"], x["vis"], x["target"],
                               x["has_depth"], w0, canonical_lengths=canon, sigma=1.0)  # fmt: skip
    np.testing.assert_allclose(float(loss0), l2d[2:].sum() / 4, rtol=1e-5)


def test_zhou_image_loss_geometric_term_on_the_chosen_images():
    x = _zhou_inputs(np.random.default_rng(1))
    canon = np.linspace(0.5, 1.5, len(skeleton.H36M17.bones)).astype(np.float32)
    pose = np.concatenate([x["kp"], (x["depth"] - x["depth"][:, :1])[..., None]], -1)
    geo = np.asarray(losses.zhou_geometric_loss(pose, canon, layout="h36m17", visibility=x["vis"]))
    args = (x["heatmaps"], x["depth"], x["kp"], x["vis"], x["target"], x["has_depth"])
    base, _ = zhou_image_loss(*args, {"reg": 0.0, "geo_2d": 0.0, "geo_3d": 0.0, "hm_3d": 1.0},
                              canonical_lengths=canon, sigma=1.0)  # fmt: skip
    on2d, m = zhou_image_loss(*args, {"reg": 0.0, "geo_2d": 2.0, "geo_3d": 0.0, "hm_3d": 1.0},
                              canonical_lengths=canon, sigma=1.0)  # fmt: skip
    on3d, _ = zhou_image_loss(*args, {"reg": 0.0, "geo_2d": 0.0, "geo_3d": 3.0, "hm_3d": 1.0},
                              canonical_lengths=canon, sigma=1.0)  # fmt: skip
    np.testing.assert_allclose(float(on2d - base), 2.0 * geo[2:].sum() / 4, rtol=1e-4)
    np.testing.assert_allclose(float(on3d - base), 3.0 * geo[:2].sum() / 4, rtol=1e-4)
    np.testing.assert_allclose([float(m["geo_2d"]), float(m["geo_3d"])],
                               [geo[2:].mean(), geo[:2].mean()], rtol=1e-5)  # fmt: skip


def test_wsp_pretrain_loss_with_every_joint_selected():
    rng = np.random.default_rng(2)
    b, k, p, h = 2, 2, 2, 5
    heatmaps = rng.normal(size=(b, J, h, h)).astype(np.float32)
    kp = rng.uniform(0, h - 1, (b, k, J, 2)).astype(np.float32)
    vis = (rng.uniform(size=(b, k, J)) > 0.3).astype(np.float32)
    logits = rng.normal(size=(b, p, J)).astype(np.float32)
    labels = (rng.uniform(size=(b, p, J)) > 0.5).astype(np.float32)
    valid = np.array([[True, True], [True, False]])
    loss, m = wsp_pretrain_loss(heatmaps, logits, kp, vis, labels, valid, jax.random.key(0),
                                alpha=50.0, num_selected=J, sigma=1.0, squared=False)  # fmt: skip
    yy, xx = np.mgrid[0:h, 0:h]
    g = np.exp(-((xx - kp[..., 0, None, None]) ** 2 + (yy - kp[..., 1, None, None]) ** 2) / 2.0)
    target = (g * vis[..., None, None]).max(1)
    l_hm = np.sqrt(((heatmaps - target) ** 2).sum((-1, -2))).mean(-1)
    bce = np.logaddexp(0, -logits) * labels + np.logaddexp(0, logits) * (1 - labels)
    l_rd = bce.mean(-1)[valid].mean()
    np.testing.assert_allclose(float(loss), l_hm.mean() + 50.0 * l_rd, rtol=1e-5)
    acc = ((logits > 0) == (labels > 0.5))[valid].mean()
    np.testing.assert_allclose(float(m["rd_acc"]), acc, rtol=1e-6)


def test_wsp_finetune_loss_is_the_mean_l1():
    rng = np.random.default_rng(3)
    c, t = rng.normal(size=(2, 2, J, 3)).astype(np.float32)
    loss, m = wsp_finetune_loss(c, t)
    np.testing.assert_allclose(float(loss), np.abs(c - t).sum(-1).mean(), rtol=1e-6)
    np.testing.assert_allclose(float(m["err_z"]), np.abs(c - t)[..., 2].mean(), rtol=1e-6)


def test_relative_depth_by_scale_gap_counts_and_chance():
    labels = np.array([[[1.0] * J, [0.0] * J], [[1.0] * J, [0.0] * J]], np.float32)
    data = {
        "pair_valid": np.array([[True, True], [True, False]]),
        "delta_s": np.array([[0.2, 0.2], [0.8, 0.8]], np.float32),
        "labels_depth": labels,
        "labels_ankle": labels,
        "ankle_valid": np.array([[True, False], [True, True]]),
    }
    logits = np.where(labels > 0, 2.0, -2.0).astype(np.float32)
    logits[1, 0, :5] = -2.0  # 5 wrong joints in the pair with the large gap
    rows = relative_depth_by_scale_gap(logits, data, thresholds=(0.5, 1.0))
    assert rows["ΔS<=0.5"]["pairs"] == 2 and rows["ΔS<=1.0"]["pairs"] == 3
    assert rows["ΔS<=0.5"]["acc (true order)"] == 1.0
    assert rows["ΔS<=0.5"]["chance (true order)"] == 0.5  # one pair of each label
    np.testing.assert_allclose(rows["ΔS<=1.0"]["acc (true order)"], 1 - 5 / (3 * J))
    np.testing.assert_allclose(rows["ΔS<=1.0"]["chance (true order)"], 2 / 3)
    np.testing.assert_allclose(rows["ΔS<=1.0"]["acc (ankle labels)"], 1 - 5 / (2 * J))


def test_zhou_image_evaluation_of_a_scaled_true_pose():
    rng = np.random.default_rng(4)
    pose3d = rng.normal(scale=0.3, size=(2, J, 3)) + np.array([0.0, 0.0, 4.0])
    pose3d[1] = pose3d[0] + np.array([0.5, 0.0, 1.0])  # same skeleton, moved
    avg = float(np.asarray(kinematics.sum_bone_lengths(pose3d, layout="h36m17")).mean())
    pred = {"kp": (pose3d[..., :2] * 20).astype(np.float32),
            "depth": (pose3d[..., 2] * 20 + 3).astype(np.float32)}  # fmt: skip
    data = {"kp": pred["kp"], "vis": np.ones((2, J), np.float32)}
    out = zhou_image_evaluation(pred, data, labels=np.array(["a", "b"]), name="t", pose3d=pose3d,
                                avg_sum_length=avg, heatmap_size=64)  # fmt: skip
    assert out["pckh"]["pckh"] == 1.0
    m = out["eval3d"]["metrics"]
    assert set(m["mpjpe"]["per_action"]) == {"a", "b"}
    assert m["mpjpe"]["frame_wise"] < 1e-3 and m["p_mpjpe"]["frame_wise"] < 1e-3  # mm
    np.testing.assert_allclose(out["symmetry_mm"]["mean"], out["symmetry_gt_mm"]["mean"],
                               rtol=1e-4)  # fmt: skip
    # crop units: 256 / heatmap_size times the heatmap-pixel differences
    want = 4 * 20 * out["symmetry_gt_mm"]["mean"] / 1000
    np.testing.assert_allclose(out["symmetry_crop_px"]["mean"], want, rtol=1e-4)
    two_d = zhou_image_evaluation(pred, data, labels=np.array(["a", "b"]), name="t", pose3d=None,
                                  avg_sum_length=avg, heatmap_size=64)  # fmt: skip
    assert set(two_d) == {"pckh", "symmetry_crop_px"}


def test_crop_keypoints_figure_draws_every_crop():
    pytest.importorskip("matplotlib")
    rng = np.random.default_rng(5)
    imgs = rng.integers(0, 255, (4, 16, 16, 3), dtype=np.uint8)
    kp = rng.uniform(0, 3, (4, J, 2))
    fig = crop_keypoints_figure(imgs, kp, kp, stride=4, title="t")
    try:
        drawn = [ax for ax in fig.axes if ax.images]
        assert len(drawn) == 4
        assert len(drawn[0].lines) == len(skeleton.H36M17.bones) + 1
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)  # other tests check that no figure is left open


def test_zhou_predictors_of_one_model_share_a_compilation():
    from jpose.image_evaluation import _zhou_forward, zhou_predictor
    from jpose.models.hourglass import heatmap_argmax, stacked_hourglass

    model = stacked_hourglass(num_stacks=1, num_modules=1, features=8, depth=1, num_reg_pools=1)
    imgs = np.random.default_rng(0).integers(0, 255, (2, 16, 16, 3), dtype=np.uint8)
    v1, v2 = (model.init(jax.random.key(k), images.normalize_images(imgs)) for k in (0, 1))
    before = _zhou_forward._cache_size()
    p1, p2 = zhou_predictor(model, v1)(imgs), zhou_predictor(model, v2)(imgs)
    assert _zhou_forward._cache_size() == before + 1  # the weights are arguments, not constants
    for v, p in ((v1, p1), (v2, p2)):  # each predictor runs its own weights
        out, _ = model.apply(v, images.normalize_images(imgs), train=False)
        np.testing.assert_allclose(p["depth"], out["depth"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(p["kp"], heatmap_argmax(out["heatmaps"][:, -1]), atol=1e-5)
    assert not np.allclose(p1["depth"], p2["depth"])
