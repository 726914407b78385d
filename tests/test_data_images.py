"""jpose.data.images: crop geometry, image files, the documented npz layouts on tiny fixture
folders (64 x 48 PNG / JPEG frames written here), and one smoke run of each image experiment on
such a folder."""

import json
import shutil

import numpy as np
import pytest
from _helpers import STANDING_H36M17
from PIL import Image

from jpose import skeleton
from jpose.data import DataFormatError
from jpose.data import images as im

W, H = 64, 48  # fixture frame size (width, height)
F, C = 60.0, (32.0, 24.0)  # fixture camera: focal, principal point (px)
H36M_ROWS = {"train": 8, "test": 4}
MPII_ROWS = {"train": 8, "val": 4}
PAIR_ROWS = {"train": 8, "val": 4}


# ------------------------------------------------------------------------------------------------
# Crop geometry
# ------------------------------------------------------------------------------------------------


def test_crop_affine_hand_derived():
    # side 200 * 0.5 = 100 px around (100, 50) -> 64 px: s = 0.64, t = 31.5 - 0.64 c
    a = im.crop_affine([100.0, 50.0], 0.5, out_size=64)
    np.testing.assert_allclose(a, [[0.64, 0.0, -32.5], [0.0, 0.64, -0.5]])
    corners = im.apply_affine(np.array([[50.0, 0.0], [150.0, 100.0], [100.0, 50.0]]), a)
    np.testing.assert_allclose(corners, [[-0.5, -0.5], [63.5, 63.5], [31.5, 31.5]])
    # padding enlarges the square: side 200 px -> s = 0.32
    a2 = im.crop_affine([100.0, 50.0], 0.5, out_size=64, padding=2.0)
    np.testing.assert_allclose(a2[0, 0], 0.32)
    np.testing.assert_allclose(im.apply_affine([100.0, 50.0], a2), [31.5, 31.5])


def test_crop_affine_batched_and_inverse():
    rng = np.random.default_rng(0)
    centers, scales = rng.uniform(0, 500, (3, 4, 2)), rng.uniform(0.2, 3.0, (3, 4))
    a = im.crop_affine(centers, scales, out_size=32, padding=1.3)
    assert a.shape == (3, 4, 2, 3)
    for idx in np.ndindex(3, 4):
        np.testing.assert_allclose(a[idx], im.crop_affine(centers[idx], scales[idx], out_size=32,
                                                          padding=1.3))  # fmt: skip
    pts = rng.uniform(-50, 600, (3, 4, 17, 2))
    back = im.apply_affine(im.apply_affine(pts, a), im.invert_affine(a))
    np.testing.assert_allclose(back, pts, atol=1e-9)
    # one matrix per image, shared by the K x J points of that image (left-aligned batch axes)
    per_image = a[:, 0]
    out = im.apply_affine(pts, per_image)
    np.testing.assert_allclose(
        out[1, 2, 5], per_image[1, :, :2] @ pts[1, 2, 5] + per_image[1, :, 2]
    )


@pytest.mark.parametrize(
    "call",
    [
        lambda: im.crop_affine([1.0, 2.0, 3.0], 1.0, out_size=8),
        lambda: im.crop_affine([[1.0, 2.0]], [1.0, 2.0], out_size=8),
        lambda: im.crop_affine([1.0, 2.0], 0.0, out_size=8),
        lambda: im.crop_affine([1.0, 2.0], 1.0, out_size=0),
        lambda: im.crop_affine([1.0, 2.0], 1.0, out_size=8, padding=-1.0),
        lambda: im.apply_affine(np.zeros((4, 3)), np.zeros((4, 2, 3))),
        lambda: im.apply_affine(np.zeros((4, 17, 2)), np.zeros((4, 3, 3))),
        lambda: im.apply_affine(np.zeros((4, 17, 2)), np.zeros((5, 2, 3))),
        lambda: im.invert_affine(np.zeros((2, 3))),
        lambda: im.crop_image(np.zeros((4, 4, 3, 1)), np.eye(2, 3), 4),
        lambda: im.crop_image(np.zeros((4, 4, 3)), np.zeros((2, 2, 3)), 4),
        lambda: im.crop_image(np.zeros((4, 4, 3)), np.eye(2, 3), 2.5),
    ],
)
def test_bad_shapes_raise(call):
    with pytest.raises(ValueError):
        call()


def _naive_crop(image, affine, size):
    """Per-pixel bilinear reference, zero outside the image."""
    inv = im.invert_affine(affine)
    h, w = image.shape[:2]
    out = np.zeros((size, size, image.shape[2]))

    def px(y, x):
        return image[y, x].astype(float) if 0 <= y < h and 0 <= x < w else 0.0

    for i in range(size):
        for j in range(size):
            u = inv[0, 0] * j + inv[0, 1] * i + inv[0, 2]
            v = inv[1, 0] * j + inv[1, 1] * i + inv[1, 2]
            x0, y0 = int(np.floor(u)), int(np.floor(v))
            fx, fy = u - x0, v - y0
            top = (1 - fx) * px(y0, x0) + fx * px(y0, x0 + 1)
            bottom = (1 - fx) * px(y0 + 1, x0) + fx * px(y0 + 1, x0 + 1)
            out[i, j] = (1 - fy) * top + fy * bottom
    return out


@pytest.mark.parametrize("center,scale,size", [((30.0, 20.0), 0.25, 24), ((5.0, 40.0), 0.3, 17),
                                               ((31.5, 23.5), 0.1, 40)])  # fmt: skip
def test_crop_image_matches_references(center, scale, size):
    rng = np.random.default_rng(1)
    image = rng.uniform(0, 255, (H, W, 3))
    a = im.crop_affine(center, scale, out_size=size)
    got = im.crop_image(image, a, size)
    assert got.dtype == np.float32 and got.shape == (size, size, 3)
    np.testing.assert_allclose(got, _naive_crop(image, a, size), rtol=1e-5, atol=1e-3)
    ndimage = pytest.importorskip("scipy.ndimage")
    inv = im.invert_affine(a)
    jj, ii = np.meshgrid(np.arange(size), np.arange(size))
    u = inv[0, 0] * jj + inv[0, 1] * ii + inv[0, 2]
    v = inv[1, 0] * jj + inv[1, 1] * ii + inv[1, 2]
    ref = np.stack([ndimage.map_coordinates(image[..., c], [v, u], order=1, mode="grid-constant",
                                            cval=0.0) for c in range(3)], -1)  # fmt: skip
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-3)
    # uint8 in -> rounded uint8 out; grey images keep their 2 axes
    u8 = image.astype(np.uint8)
    got8 = im.crop_image(u8, a, size)
    assert got8.dtype == np.uint8
    assert np.abs(got8.astype(float) - _naive_crop(u8, a, size)).max() <= 0.5 + 1e-6
    assert im.crop_image(u8[..., 0], a, size).shape == (size, size)


def test_bright_pixel_lands_at_transformed_location():
    image = np.zeros((H, W, 3), np.uint8)
    image[20, 30] = 255  # pixel (row 20, column 30): centre (u, v) = (30, 20)
    # 2x upscale placed so that (30, 20) maps to the integer crop pixel (20, 20)
    a = im.crop_affine([29.75, 19.75], 0.1, out_size=40)
    np.testing.assert_allclose(im.apply_affine([30.0, 20.0], a), [20.0, 20.0])
    crop = im.crop_image(image, a, 40)[..., 0]
    assert np.unravel_index(crop.argmax(), crop.shape) == (20, 20) and crop[20, 20] == 255
    np.testing.assert_array_equal(crop[19:22, 19:22], [[64, 128, 64], [128, 255, 128],
                                                       [64, 128, 64]])  # fmt: skip
    # random boxes at 1-3 crop px per frame px: the arg-max is the crop pixel nearest the mapped
    # point (bilinear weights fall off with the distance along each axis)
    rng = np.random.default_rng(2)
    for _ in range(20):
        centre = rng.uniform([26.0, 16.0], [34.0, 24.0])
        a = im.crop_affine(centre, rng.uniform(0.04, 0.12), out_size=24)
        crop = im.crop_image(image, a, 24)[..., 0]
        want = im.apply_affine([30.0, 20.0], a)
        got = np.unravel_index(crop.argmax(), crop.shape)[::-1]
        assert np.all(np.abs(np.asarray(got) - want) <= 0.5 + 1e-6)
    # outside the frame: zero
    far = im.crop_affine([500.0, 500.0], 0.1, out_size=8)
    assert not im.crop_image(np.full((H, W, 3), 200, np.uint8), far, 8).any()


# ------------------------------------------------------------------------------------------------
# Image files
# ------------------------------------------------------------------------------------------------


def test_load_image_formats_and_errors(tmp_path, monkeypatch):
    yy, xx = np.mgrid[0:H, 0:W]
    rgb = np.stack([xx * 4, yy * 5, (xx + yy) * 2], -1).astype(np.uint8)  # smooth: JPEG-friendly
    Image.fromarray(rgb).save(tmp_path / "a.png")
    Image.fromarray(rgb[..., 0]).save(tmp_path / "grey.png")
    Image.fromarray(rgb).save(tmp_path / "a.jpg", quality=95)
    np.testing.assert_array_equal(im.load_image(tmp_path / "a.png"), rgb)
    grey = im.load_image(tmp_path / "grey.png")
    assert grey.shape == (H, W, 3) and grey.dtype == np.uint8
    np.testing.assert_array_equal(grey[..., 2], rgb[..., 0])
    jpg = im.load_image(tmp_path / "a.jpg")
    assert jpg.shape == (H, W, 3) and np.abs(jpg.astype(int) - rgb).mean() < 3
    with pytest.raises(FileNotFoundError, match=r"nope\.jpg.*the layout hint"):
        im.load_image(tmp_path / "nope.jpg", hint="the layout hint")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(DataFormatError, match=r"bad\.png"):
        im.load_image(tmp_path / "bad.png")
    monkeypatch.setitem(__import__("sys").modules, "PIL", None)
    with pytest.raises(ImportError, match="pip install pillow"):
        im.load_image(tmp_path / "a.png")


# ------------------------------------------------------------------------------------------------
# Fixture folders in the documented layout
# ------------------------------------------------------------------------------------------------


def _project(pose3d):
    return pose3d[..., :2] / pose3d[..., 2:] * F + np.asarray(C)


def _save(root, rel, image):
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if rel.endswith(".jpg"):
        Image.fromarray(image).save(path, quality=95)
    else:
        Image.fromarray(image).save(path)


def _box(kp):
    lo, hi = kp.min(-2), kp.max(-2)
    return (lo + hi) / 2, 1.25 * (hi - lo).max(-1) / 200.0


def _colour(i):
    return np.array([40 + 20 * i % 120, 90 - 7 * i % 60, 30 + 11 * i % 70], np.uint8)


def _coco_from_h36m(pose3d):
    j = skeleton.H36M17.index
    head = pose3d[..., j("Head"), :]
    off = {"left_eye": (0.03, 0.05), "right_eye": (-0.03, 0.05), "left_ear": (0.07, 0.08),
           "right_ear": (-0.07, 0.08)}  # fmt: skip
    snake = {v: k for k, v in skeleton._H36M_LIMBS_FROM_SNAKE.items()}
    out = []
    for name in skeleton.COCO17.joint_names:
        if name == "nose":
            out.append(pose3d[..., j("Neck/Nose"), :])
        elif name in off:
            out.append(head + np.array([off[name][0], off[name][1], 0.0]))
        else:
            out.append(pose3d[..., j(snake[name]), :])
    return np.stack(out, -2)


def write_fixture(root):
    """The documented layout with tiny frames; returns the ground truth written."""
    rng = np.random.default_rng(0)
    truth = {}
    j = skeleton.H36M17.index
    mpii_from_h36m = [j(n) for n in ("RFoot", "RKnee", "RHip", "LHip", "LKnee", "LFoot", "Hip",
                                     "Thorax", "Neck/Nose", "Head", "RWrist", "RElbow",
                                     "RShoulder", "LShoulder", "LElbow", "LWrist")]  # fmt: skip
    count = 0
    for split, n in H36M_ROWS.items():
        z = rng.uniform(3.0, 3.4, n)
        offset = rng.integers(-2, 3, (n, 2))  # root projects to an integer pixel
        root3d = np.concatenate([offset * z[:, None] / F, z[:, None]], -1)
        pose3d = STANDING_H36M17[None].astype(np.float64) + root3d[:, None]
        kp = _project(pose3d)
        center, scale = _box(kp)
        paths = []
        for i in range(n):
            frame = np.broadcast_to(_colour(count), (H, W, 3)).copy()
            u, v = np.rint(kp[i, 0]).astype(int)
            frame[v, u] = 255  # the root joint
            rel = f"images/h36m/{split}_{i:03d}." + ("png" if i % 2 == 0 else "jpg")
            _save(root, rel, frame)
            paths.append(rel)
            count += 1
        data = {"image_path": np.asarray(paths), "keypoints_2d": kp, "pose3d_cam": pose3d,
                "focal": np.full((n, 2), F), "center": np.broadcast_to(C, (n, 2)),
                "box_center": center, "box_scale": scale,
                "action": np.asarray(["Walking 1", "Directions"] * (n // 2))}  # fmt: skip
        np.savez(root / f"h36m_{split}.npz", **data)
        truth[f"h36m_{split}"] = data
    for split, n in MPII_ROWS.items():
        pose3d = STANDING_H36M17[None] + np.stack([rng.uniform(-0.4, 0.4, n), np.zeros(n),
                                                   rng.uniform(3, 4, n)], -1)[:, None]  # fmt: skip
        kp = _project(pose3d)[:, mpii_from_h36m]
        vis = np.ones((n, 16))
        vis[0, 5] = 0  # left ankle of row 0 not labelled
        kp[0, 5] = -1.0  # (MPII writes -1 for missing joints)
        vis[1, 9] = 0  # head top of row 1
        center, scale = _box(np.where(vis[..., None] > 0, kp, kp[:, 6:7]))
        paths = [f"images/mpii/{split}_{i % 3}.jpg" for i in range(n)]  # several people per image
        for i in range(3):
            _save(root, paths[i], np.broadcast_to(_colour(50 + i), (H, W, 3)).copy())
        data = {"image_path": np.asarray(paths), "keypoints_2d": kp, "visibility": vis,
                "box_center": center, "box_scale": scale}  # fmt: skip
        np.savez(root / f"mpii_{split}.npz", **data)
        truth[f"mpii_{split}"] = data
    for split, n in PAIR_ROWS.items():
        z = np.stack([np.full(n, 3.0), np.full(n, 4.5)], -1)
        swap = rng.random(n) < 0.5  # which slot holds the nearer person
        z = np.where(swap[:, None], z[:, ::-1], z)
        x = np.where(swap[:, None], [[0.5, -0.6]], [[-0.5, 0.6]])
        pose3d = (
            STANDING_H36M17[None, None] + np.stack([x, np.full((n, 2), 0.1), z], -1)[:, :, None]
        )
        coco = split == "train"  # COCO-17 keypoints (layout key) in one file, H36M-17 in the other
        pts3d = _coco_from_h36m(pose3d) if coco else pose3d
        kp = _project(pts3d)
        vis = np.ones(kp.shape[:-1])
        vis[0, 0, 3] = 0
        lo, hi = kp.min(-2) - 2, kp.max(-2) + 2
        boxes = np.concatenate([lo, hi], -1)
        near_a = (z[:, 0] < z[:, 1]).astype(float)
        labels = np.zeros((n, 2, 2, 17))
        labels[:, 0, 1], labels[:, 1, 0] = near_a[:, None], 1 - near_a[:, None]
        delta_s = np.abs(1 / z[:, 0] - 1 / z[:, 1]) / np.max(1 / z, -1)
        paths = [f"images/pairs/{split}_{i % 4}.png" for i in range(n)]
        for i in range(4):
            _save(root, paths[i], np.broadcast_to(_colour(80 + i), (H, W, 3)).copy())
        data = {"image_path": np.asarray(paths), "boxes": boxes, "keypoints_2d": kp,
                "visibility": vis, "labels": labels, "delta_s": delta_s}  # fmt: skip
        if coco:
            data["layout"] = np.asarray("coco17")
        np.savez(root / f"pairs_{split}.npz", **data)
        truth[f"pairs_{split}"] = data
    return truth


@pytest.fixture(scope="module")
def fixture_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("image_root")
    return root, write_fixture(root)


def _variant(tmp_path, base, name, **changes):
    """A copy of the fixture root whose ``name``.npz has keys replaced (None: removed)."""
    root = tmp_path / "variant"
    root.mkdir()
    for f in base.glob("*.npz"):
        shutil.copy(f, root / f.name)
    (root / "images").symlink_to(base / "images", target_is_directory=True)
    with np.load(root / f"{name}.npz") as z:
        data = dict(z)
    for k, v in changes.items():
        if v is None:
            data.pop(k)
        else:
            data[k] = v
    np.savez(root / f"{name}.npz", **data)
    return root


def test_load_h36m_crops(fixture_root):
    root, truth = fixture_root
    t = truth["h36m_train"]
    r, actions = im.load_h36m_crops(root, "train", image_size=32)
    n = H36M_ROWS["train"]
    assert r.image.shape == (n, 32, 32, 3) and r.image.dtype == np.uint8
    assert r.keypoints_2d.shape == (n, 1, 17, 2) and r.visibility.shape == (n, 1, 17)
    assert r.pose3d_cam.shape == (n, 1, 17, 3) and np.asarray(r.camera.focal).shape == (n, 2)
    assert list(actions[:2]) == ["Walking", "Directions"]  # normalised action names
    a = im.crop_affine(t["box_center"], t["box_scale"], out_size=32)
    np.testing.assert_allclose(r.keypoints_2d[:, 0], im.apply_affine(t["keypoints_2d"], a),
                               atol=1e-4)  # fmt: skip
    np.testing.assert_allclose(r.pose3d_cam[:, 0], t["pose3d_cam"], atol=1e-6)
    np.testing.assert_array_equal(r.pose_index[:, 0], np.arange(n))
    assert r.visibility.all()  # the 1.25 x padded box holds every joint
    # the crop camera reprojects the 3D onto the crop's 2D labels
    f, c = np.asarray(r.camera.focal), np.asarray(r.camera.center)
    proj = r.pose3d_cam[:, 0, :, :2] / r.pose3d_cam[:, 0, :, 2:] * f[:, None] + c[:, None]
    np.testing.assert_allclose(proj, r.keypoints_2d[:, 0], atol=1e-3)
    # image content: the root joint's white pixel (PNG rows) and the background colour per row
    for i in range(n):
        bg = _colour(i).astype(int)
        assert np.abs(r.image[i, 2, 2].astype(int) - bg).max() <= (0 if i % 2 == 0 else 8)
        if i % 2 == 0:
            lum = r.image[i].astype(int).sum(-1)
            got = np.unravel_index(lum.argmax(), lum.shape)[::-1]
            assert np.all(np.abs(np.asarray(got) - r.keypoints_2d[i, 0, 0]) <= 0.5 + 1e-4)
    # caps: evenly spaced rows
    r4, _ = im.load_h36m_crops(root, "train", image_size=16, max_examples=3, num_workers=0)
    np.testing.assert_array_equal(r4.pose_index[:, 0], [0, 2, 5])
    assert r4.image.shape == (3, 16, 16, 3)


def test_load_mpii_crops(fixture_root):
    root, truth = fixture_root
    t = truth["mpii_val"]
    r, labels = im.load_mpii_crops(root, "val", image_size=32, padding=1.2)
    n = MPII_ROWS["val"]
    assert r.image.shape == (n, 32, 32, 3) and list(labels) == ["mpii"] * n
    kp17, vis17 = skeleton.mpii16_to_h36m17(t["keypoints_2d"], t["visibility"])
    a = im.crop_affine(t["box_center"], t["box_scale"], out_size=32, padding=1.2)
    lab = vis17 > 0
    np.testing.assert_allclose(r.keypoints_2d[:, 0][lab], im.apply_affine(kp17, a)[lab], atol=1e-4)
    j = skeleton.H36M17.index
    assert not r.visibility[0, 0, j("LFoot")] and not r.visibility[1, 0, j("Head")]
    assert r.visibility[0, 0, j("RFoot")] and r.visibility.sum() == n * 17 - 2
    assert np.isnan(r.pose3d_cam).all() and np.isnan(np.asarray(r.camera.focal)).all()
    for i in range(n):  # rows share images: each crop shows its own image's colour
        assert np.abs(r.image[i, 2, 2].astype(int) - _colour(50 + i % 3)).max() <= 8


def test_load_pair_crops_and_label_arrays(fixture_root):
    root, truth = fixture_root
    for split, coco in (("train", True), ("val", False)):
        t = truth[f"pairs_{split}"]
        r, pl = im.load_pair_crops(root, split, image_size=32)
        n = PAIR_ROWS[split]
        assert r.image.shape == (n, 32, 32, 3) and r.keypoints_2d.shape == (n, 2, 17, 2)
        layout = skeleton.COCO17 if coco else skeleton.H36M17
        kp17, vis17 = skeleton.convert_layout(t["keypoints_2d"], t["visibility"], source=layout,
                                              target=skeleton.H36M17)  # fmt: skip
        lo, hi = t["boxes"][..., :2].min(1), t["boxes"][..., 2:].max(1)
        a = im.crop_affine((lo + hi) / 2, (hi - lo).max(-1) / 200, out_size=32)
        lab = vis17 > 0
        np.testing.assert_allclose(r.keypoints_2d[lab], im.apply_affine(kp17, a)[lab], atol=1e-4)
        assert (r.visibility == lab).all()  # the union square holds both people
        # the union square spans the crop: its longer side maps to [-0.5, 31.5]
        ub = np.concatenate([im.apply_affine(lo, a), im.apply_affine(hi, a)], -1)
        np.testing.assert_allclose(np.max(ub[:, 2:] - ub[:, :2], -1), 32.0, atol=1e-4)
        near_a = t["labels"][:, 0, 1, 0] > 0
        np.testing.assert_array_equal(r.depth_order[:, 0], np.where(near_a, 0, 1))
        np.testing.assert_allclose(pl.labels, t["labels"])
        np.testing.assert_allclose(pl.delta_s, t["delta_s"], rtol=1e-6)
        arr = im.pair_label_arrays(pl, [[0, 1], [1, 0]])
        assert arr["labels"].shape == (n, 2, 17) and arr["delta_s"].shape == (n, 2)
        np.testing.assert_array_equal(arr["labels"][:, 0, 0], near_a)
        np.testing.assert_array_equal(arr["labels"][:, 1, 0], ~near_a)
        assert arr["label_valid"].all() and arr["pair_valid"].all()
    with pytest.raises(ValueError, match="pairs"):
        im.pair_label_arrays(pl, [[0, 0]])


def test_experiment_arrays_from_real_crops(fixture_root):
    """The experiments' array builders accept the crops; WSP's integral-regression targets
    back-project (crop intrinsics) onto the 3D, and pair labels follow the file."""
    from jpose.data import image_targets

    root, truth = fixture_root
    r, _ = im.load_h36m_crops(root, "test", image_size=32)
    z = image_targets.zhou_targets(r, heatmap_size=8)
    assert z["kp"].shape == (4, 17, 2) and np.isfinite(z["depth"]).all()
    ft = image_targets.wsp_finetune_arrays(r, stride=4, depth_bins=16, depth_range_m=2.0)
    c, gt = ft["coords"].astype(np.float64), ft["pose3d"].astype(np.float64)
    zz = gt[:, :1, 2] + (c[..., 2] / 15 - 0.5) * 2.0
    u, v = (c[..., 0] + 0.5) * 4 - 0.5, (c[..., 1] + 0.5) * 4 - 0.5
    x = (u - ft["center"][:, None, 0]) * zz / ft["focal"][:, None, 0]
    y = (v - ft["center"][:, None, 1]) * zz / ft["focal"][:, None, 1]
    np.testing.assert_allclose(np.stack([x, y, zz], -1), gt, atol=1e-4)
    rp, pl = im.load_pair_crops(root, "val", image_size=32)
    pre = image_targets.wsp_pretrain_arrays(rp, stride=4, rd_labels="ankle")
    pre.update(im.pair_label_arrays(pl, pre["pairs"]))
    # the fixture's people stand on one floor: the ankle rule agrees with the file's labels
    np.testing.assert_array_equal(pre["labels_ankle"], pre["labels"])
    assert pre["boxes"].shape == (4, 2, 4) and pre["delta_s"].shape == (4, 2)


# --- errors ---------------------------------------------------------------------------------


def _load(kind, root, split):
    fn = {"h36m": im.load_h36m_crops, "mpii": im.load_mpii_crops, "pairs": im.load_pair_crops}
    return fn[kind](root, split, image_size=16)


_SPLIT = {"h36m": "train", "mpii": "train", "pairs": "val"}
_KEYS = {"h36m": im.H36M_KEYS, "mpii": im.MPII_KEYS, "pairs": im.PAIR_KEYS}
_CASES = [(kind, key) for kind, keys in _KEYS.items() for key in keys]


@pytest.mark.parametrize("kind,key", _CASES)
def test_missing_key_raises(fixture_root, tmp_path, kind, key):
    base, _ = fixture_root
    name = f"{kind}_{_SPLIT[kind]}"
    root = _variant(tmp_path, base, name, **{key: None})
    with pytest.raises(DataFormatError, match=rf"{name}\.npz: missing key '{key}'"):
        _load(kind, root, _SPLIT[kind])


@pytest.mark.parametrize("kind,key", _CASES)
def test_bad_shape_raises(fixture_root, tmp_path, kind, key):
    base, truth = fixture_root
    name = f"{kind}_{_SPLIT[kind]}"
    good = np.asarray(truth[name][key])
    bad = good[:-1] if key != "image_path" else good[:, None]  # one row short / an extra axis
    if key == "image_path":
        pattern = r"expected shape \(N\)"
    else:
        pattern = r"expected shape \(" + ", ".join(str(s) for s in good.shape) + r"\)"
    root = _variant(tmp_path, base, name, **{key: bad})
    with pytest.raises(DataFormatError, match=rf"{name}\.npz.*'{key}'.*{pattern}"):
        _load(kind, root, _SPLIT[kind])


@pytest.mark.parametrize(
    "kind,changes,pattern",
    [
        ("h36m", {"pose3d_cam": STANDING_H36M17[None].repeat(8, 0)}, "root depth z > 0"),
        (
            "h36m",
            {"pose3d_cam": (STANDING_H36M17 + [0, 0, 3.0])[None].repeat(8, 0) * 1000},
            "look like mm",
        ),  # fmt: skip
        ("h36m", {"box_scale": np.zeros(8)}, "'box_scale'.*positive"),
        ("h36m", {"focal": np.full((8, 2), np.nan)}, "'focal'.*NaN"),
        ("h36m", {"image_path": np.array([1, 2, 3, 4, 5, 6, 7, 8])}, "string array"),
        ("h36m", {"image_path": np.array(["a.png"] * 8, dtype=object)}, "image_path"),
        ("mpii", {"keypoints_2d": np.full((8, 16, 2), np.nan)}, "labelled joints"),
        ("pairs", {"labels": np.full((4, 2, 2, 17), 2.0)}, "'labels'.*0, 1"),
        ("pairs", {"delta_s": np.full(4, 1.5)}, "'delta_s'"),
        ("pairs", {"boxes": np.zeros((4, 2, 4))}, "'boxes'"),
        ("pairs", {"layout": np.asarray("openpose18")}, "'layout'"),
        ("pairs", {"layout": np.asarray("mpii16")}, r"'visibility'.*\(4, 2, 16\)"),
    ],
)
def test_bad_values_raise(fixture_root, tmp_path, kind, changes, pattern):
    base, _ = fixture_root
    name = f"{kind}_{_SPLIT[kind]}"
    root = _variant(tmp_path, base, name, **changes)
    with pytest.raises(DataFormatError, match=pattern):
        _load(kind, root, _SPLIT[kind])


def test_missing_files_raise(fixture_root, tmp_path):
    base, _ = fixture_root
    root = tmp_path / "r"
    shutil.copytree(base, root)
    (root / "images" / "h36m" / "train_003.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"train_003\.jpg: image not found.*h36m_train"):
        im.load_h36m_crops(root, "train", image_size=16)
    (root / "mpii_val.npz").unlink()
    with pytest.raises(FileNotFoundError, match=r"mpii_val\.npz.*mpii_\{train,val\}\.npz"):
        im.load_mpii_crops(root, "val", image_size=16)
    with pytest.raises(ValueError, match="image_root"):
        im.load_h36m_crops("", "train", image_size=16)
    with pytest.raises(ValueError, match="split"):
        im.load_h36m_crops(root, "val", image_size=16)


# ------------------------------------------------------------------------------------------------
# The experiments on the fixture folder: the data branch of each ``run`` (up to the model, both
# sources, same arrays), and one Zhou smoke run (~35 s here). A WSP smoke run takes ~47 s on the
# shared 2-core machine, above the ~40 s budget, so WSP is tested up to the arrays its training
# steps consume (the arrays builders are the same functions for both sources).
# ------------------------------------------------------------------------------------------------


class _Stop(Exception):
    pass


def _data_of_run(monkeypatch, module, run_cfg, workdir, *, record, model_fn):
    """Run ``module.run`` until it builds its model; returns the recorded data-builder outputs."""
    calls: dict[str, list] = {name: [] for name in record}

    def recording(name, orig):
        def wrapper(*args, **kwargs):
            out = orig(*args, **kwargs)
            calls[name].append(out)
            return out

        return wrapper

    for name in record:
        monkeypatch.setattr(module, name, recording(name, getattr(module, name)))

    def stop(*args, **kwargs):
        raise _Stop

    monkeypatch.setattr(module, model_fn, stop)
    with pytest.raises(_Stop):
        module.run(run_cfg, str(workdir))
    monkeypatch.undo()
    return calls


def _same_structure(real, rendered, *, free_axes=(0,)):
    """Same keys and dtypes; same shapes except along ``free_axes`` (N, people, pairs)."""
    assert set(real) == set(rendered)
    for k in real:
        a, b = np.asarray(real[k]), np.asarray(rendered[k])
        assert a.dtype == b.dtype and a.ndim == b.ndim, k
        fixed = [i for i in range(a.ndim) if i not in free_axes]
        assert [a.shape[i] for i in fixed] == [b.shape[i] for i in fixed], k


def test_zhou_image_data_branch_matches_rendered(fixture_root, tmp_path, monkeypatch):
    from experiments import zhou_image
    from experiments.configs import zhou_image as zhou_image_config

    root, truth = fixture_root
    out = {}
    for source in ("rendered", "h36m"):
        cfg = zhou_image_config.get_config("smoke")
        cfg.data.source, cfg.data.image_root = source, str(root)
        calls = _data_of_run(monkeypatch, zhou_image, cfg, tmp_path / source,
                             record=("zhou_targets",), model_fn="stacked_hourglass")  # fmt: skip
        out[source] = calls["zhou_targets"]
    assert (
        len(out["h36m"]) == len(out["rendered"]) == 4
    )  # train_3d, train_2d, test_wild, test_studio
    for real, rendered in zip(out["h36m"], out["rendered"]):
        _same_structure(real, rendered)
    sizes = [len(a["image"]) for a in out["h36m"]]
    assert sizes == [H36M_ROWS["train"], MPII_ROWS["train"], MPII_ROWS["val"], H36M_ROWS["test"]]
    assert not out["h36m"][1]["depth"].any()  # 2D-only images: no depth target
    with pytest.raises(ValueError, match="data.source"):
        cfg.data.source = "coco"
        zhou_image.run(cfg, str(tmp_path / "bad"))


def test_wsp_image_data_branch_matches_rendered(fixture_root, tmp_path, monkeypatch):
    from experiments import wsp_image
    from experiments.configs import wsp_image as wsp_image_config

    root, truth = fixture_root
    out = {}
    for source in ("rendered", "real"):
        cfg = wsp_image_config.get_config("smoke")
        cfg.data.source, cfg.data.image_root = source, str(root)
        calls = _data_of_run(monkeypatch, wsp_image, cfg, tmp_path / source,
                             record=("wsp_pretrain_arrays", "wsp_finetune_arrays"),
                             model_fn="wsp_net")  # fmt: skip
        out[source] = {k.removeprefix("wsp_"): v for k, v in calls.items()}
    real, rendered = out["real"], out["rendered"]
    assert len(real["pretrain_arrays"]) == len(real["finetune_arrays"]) == 2  # train, test
    for a, b in zip(real["pretrain_arrays"], rendered["pretrain_arrays"]):
        _same_structure(a, b, free_axes=(0, 1))  # K people / P pairs differ
    for a, b in zip(real["finetune_arrays"], rendered["finetune_arrays"]):
        _same_structure(a, b)
    pre, rd_test = real["pretrain_arrays"]
    assert len(pre["image"]) == PAIR_ROWS["train"] and len(rd_test["image"]) == PAIR_ROWS["val"]
    labels = truth["pairs_train"]["labels"]
    np.testing.assert_array_equal(pre["labels"][:, 0], labels[:, 0, 1])  # the file's eq. 7 labels
    np.testing.assert_array_equal(pre["labels"][:, 1], labels[:, 1, 0])
    np.testing.assert_allclose(pre["delta_s"][:, 0], truth["pairs_train"]["delta_s"], rtol=1e-6)
    assert pre["label_valid"].all()
    ft, te = real["finetune_arrays"]
    assert len(ft["image"]) == H36M_ROWS["train"] and len(te["image"]) == H36M_ROWS["test"]
    assert all(np.isfinite(ft[k]).all() for k in ("coords", "pose3d", "focal", "center"))
    cfg = wsp_image_config.get_config("smoke")
    cfg.data.source, cfg.data.image_root, cfg.data.rd_labels = "real", str(root), "depth"
    with pytest.raises(ValueError, match="rd_labels"):
        wsp_image.run(cfg, str(tmp_path / "depth"))


def test_zhou_image_smoke_on_real_layout(fixture_root, tmp_path):
    from experiments import zhou_image
    from experiments.configs import zhou_image as zhou_image_config

    root, _ = fixture_root
    cfg = zhou_image_config.get_config("smoke")
    cfg.data.source, cfg.data.image_root, cfg.data.crop_padding = "h36m", str(root), 1.1
    out = zhou_image.run(cfg, str(tmp_path))
    res = out["results"]["3d+2d+geo"]
    assert set(res) == {"test_wild", "test_studio", "train_2d"}
    assert all(np.isfinite(v) for v in res["test_studio"].values())  # H36M test: 3D + PCKh
    # MPII val (test_wild) has no 3D: PCKh and crop-unit symmetry only, no 3D evaluation
    assert set(res["test_wild"]) == {"pckh", "sym_crop_px"}
    assert np.isfinite(res["test_wild"]["pckh"])
    record = json.loads((tmp_path / "results.json").read_text())
    assert set(record["evaluations"]) == {"test_studio"}
