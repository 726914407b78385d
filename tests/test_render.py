"""Tests of jpose.data.render: rasterisation against hand-derived geometry, joints on the drawn
limbs, occlusion by depth order, determinism."""

import numpy as np
import pytest

from jpose import skeleton
from jpose.camera import Camera
from jpose.data import render, synthetic
from jpose.data.virtual_cameras import look_at_rotation

S = 64


def _rasterize_one(start, end, radius, *, z_bg=None):
    n = 1
    start = np.asarray(start, np.float32).reshape(1, -1, 3)
    end = np.asarray(end, np.float32).reshape(1, -1, 3)
    c = start.shape[1]
    return render.rasterize_capsules(
        start, end, np.full((1, c), radius, np.float32), np.ones((1, c, 3), np.float32),
        np.arange(c)[None], focal=np.full((n, 2), 100.0), center=np.full((n, 2), 32.0), size=S,
        background=np.zeros((1, S, S, 3), np.float32), light_dir=np.array([[0.0, 0.0, -1.0]]),
        ambient=np.array([0.0]), diffuse=np.array([1.0]),
    )  # fmt: skip


def test_capsule_coverage_and_depth_hand_derived():
    # Axis (-0.5, 0, 5) -> (0.5, 0, 5), f = 100, c = 32: projected from u = 22 to u = 42 at
    # v = 32; projected radius f R / z = 100 * 0.1 / 5 = 2 px.
    image, depth, owner = _rasterize_one([-0.5, 0, 5], [0.5, 0, 5], 0.1)
    assert owner[0, 32, 32] == 0 and owner[0, 32, 22] == 0 and owner[0, 32, 42] == 0
    assert owner[0, 33, 32] == 0 and owner[0, 31, 32] == 0  # 1 px from the axis
    assert owner[0, 35, 32] == -1 and owner[0, 29, 32] == -1  # 3 px from the axis
    assert owner[0, 32, 19] == -1 and owner[0, 32, 45] == -1  # 3 px beyond the ends
    # front surface on the axis: z - R = 4.9 m; lit head-on (normal = light): intensity 1
    np.testing.assert_allclose(depth[0, 32, 32], 4.9, atol=1e-5)
    np.testing.assert_allclose(image[0, 32, 32], 1.0, atol=1e-5)
    assert np.isinf(depth[0, 0, 0]) and np.all(image[0, 0, 0] == 0)
    # the cross-section is darker towards its silhouette (Lambert)
    assert image[0, 33, 32, 0] < image[0, 32, 32, 0]


def test_z_buffer_nearer_capsule_wins():
    # Two crossing capsules: a horizontal one at 4 m (capsule 0) and a vertical one at 6 m.
    _, depth, owner = _rasterize_one([[-0.4, 0, 4], [0, -0.6, 6]], [[0.4, 0, 4], [0, 0.6, 6]],
                                     0.1)  # fmt: skip
    assert owner[0, 32, 32] == 0  # the crossing: the nearer one
    assert owner[0, 22, 32] == 1  # above the crossing only the far one
    np.testing.assert_allclose(depth[0, 32, 32], 3.9, atol=1e-5)


@pytest.fixture(scope="module")
def pool():
    mix = {"standing": 1.0, "walking": 1.0, "arms_raised": 1.0}
    g = synthetic.generate_poses(
        np.random.default_rng(0), num_people=10, poses_per_person=5, mix=mix
    )
    return g["pose"]


def test_projected_joints_land_on_drawn_limbs(pool):
    cfg = render.RenderConfig(image_size=S, framing="scene", people=(1, 3), noise_std=0.0)
    r = render.render_images(pool, num_images=24, config=cfg, seed=3)
    n, k, j = r.visibility.shape
    assert r.image.shape == (n, S, S, 3) and r.image.dtype == np.uint8
    assert r.keypoints_2d.shape == (n, k, j, 2) and r.pose3d_cam.shape == (n, k, j, 3)
    # projection: keypoints = pinhole projection of the camera-frame joints
    f, c = np.asarray(r.camera.focal), np.asarray(r.camera.center)
    z = np.where(r.person_valid[..., None, None], r.pose3d_cam[..., 2:], 1.0)
    uv = r.pose3d_cam[..., :2] / z * f[:, None, None] + c[:, None, None]
    np.testing.assert_allclose(r.keypoints_2d[r.person_valid], uv[r.person_valid], atol=1e-3)
    # every visible joint's pixel is drawn by its own person, and differs from an image
    # rendered with the same background but nobody in it
    pix = np.round(r.keypoints_2d).astype(int)
    nn, kk, jj = np.nonzero(r.visibility)
    assert len(nn) > 100
    seg = r.segmentation[nn, pix[nn, kk, jj, 1], pix[nn, kk, jj, 0]]
    np.testing.assert_array_equal(seg, kk)
    empty = render.render_people(r.pose3d_world, r.camera, np.zeros_like(r.person_valid),
                                 config=cfg, rng=np.random.default_rng(0))  # fmt: skip
    assert np.all(empty.segmentation == -1)
    # boxes contain their person's in-image joints
    inside = r.visibility[..., None]
    lo, hi = r.boxes[..., None, :2], r.boxes[..., None, 2:]
    assert np.all(~inside | ((r.keypoints_2d >= lo - 0.5) & (r.keypoints_2d <= hi + 0.5)))


def _two_people(pool, *, depths, lateral=(0.0, 0.0)):
    """Two upright people in front of a camera at 1.2 m height looking along +y."""
    world = np.stack([
        render.place_on_floor(pool[0], position=np.array([lateral[0], depths[0]]), heading=0.0),
        render.place_on_floor(pool[1], position=np.array([lateral[1], depths[1]]), heading=0.0),
    ])[None]  # fmt: skip
    centre = np.array([[0.0, 0.0, 1.2]])
    rot = look_at_rotation(centre, np.array([[0.0, 10.0, 1.0]]))
    cam = Camera(rotation=rot.astype(np.float32),
                 translation=(-np.einsum("nij,nj->ni", rot, centre)).astype(np.float32),
                 focal=np.full((1, 2), 60.0, np.float32), center=np.full((1, 2), 32.0, np.float32),
                 radial=np.zeros((1, 3), np.float32), tangential=np.zeros((1, 2), np.float32),
                 image_size=np.full((1, 2), 64.0, np.float32))  # fmt: skip
    return world, cam


def test_depth_order_matches_occlusion(pool):
    # Person 1 stands 3 m behind person 0, on the same line of sight: its torso is hidden.
    world, cam = _two_people(pool, depths=(3.0, 6.0))
    cfg = render.RenderConfig(image_size=S, framing="scene", noise_std=0.0)
    r = render.render_people(world, cam, config=cfg, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(r.depth_order[0], [0, 1])
    assert r.visibility[0, 0].all()  # the near person is fully visible
    lay = skeleton.H36M17
    torso = lay.indices(["Hip", "Spine", "Thorax"])
    assert not r.visibility[0, 1, torso].any()  # hidden behind the near person
    assert (r.segmentation[0] == 1).any()  # but the far person is drawn where uncovered
    # swapping the depths swaps the order and the occlusion
    world, cam = _two_people(pool, depths=(6.0, 3.0))
    r2 = render.render_people(world, cam, config=cfg, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(r2.depth_order[0], [1, 0])
    assert r2.visibility[0, 1].all() and not r2.visibility[0, 0, torso].any()
    # side by side nobody is occluded
    world, cam = _two_people(pool, depths=(4.0, 4.0), lateral=(-1.0, 1.0))
    r3 = render.render_people(world, cam, config=cfg, rng=np.random.default_rng(0))
    assert r3.visibility.all()


def test_crop_framing_and_determinism(pool):
    cfg = render.RenderConfig(image_size=48, framing="crop", crop_shift=0.0, crop_fill_jitter=0.0)
    a = render.render_images(pool, num_images=6, config=cfg, seed=5)
    b = render.render_images(pool, num_images=6, config=cfg, seed=5)
    np.testing.assert_array_equal(a.image, b.image)
    assert a.person_valid.shape == (6, 1) and a.depth_order.tolist() == [[0]] * 6
    # the person box (joints + margin) fills crop_fill of the image, centred
    side = np.max(a.boxes[:, 0, 2:] - a.boxes[:, 0, :2], axis=-1)
    np.testing.assert_allclose(side, cfg.crop_fill * 48, rtol=0.05)
    with pytest.raises(ValueError, match="17, 3"):
        render.render_images(pool[:, :16], num_images=1)
