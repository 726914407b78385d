"""Tests of jpose.viz (matplotlib figures; skipped without matplotlib)."""

import json

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from jpose import skeleton, viz  # noqa: E402


def _poses(n=3, seed=0):
    rng = np.random.default_rng(seed)
    p3 = rng.normal(0, 0.3, (n, 17, 3)) + np.array([0.0, 0.0, 5.0])
    p2 = p3[..., :2] / p3[..., 2:] * 2.3
    return p2, p3


def test_bone_sides_follow_the_layout():
    sides = viz.bone_sides("h36m17")
    names = skeleton.H36M17.bone_names
    assert len(sides) == skeleton.H36M17.num_bones
    assert sides[names.index("LElbow")] == "left"
    assert sides[names.index("RKnee")] == "right"
    assert sides[names.index("Spine")] == "centre"


def test_figures_render_and_save(tmp_path):
    p2, p3 = _poses()
    conf = np.ones((3, 17))
    conf[0, 5] = 0.0  # a missing joint is not drawn
    figs = {
        "cmp": viz.figure_2d_comparison({"input": p2, "refined": p2 + 0.01}, confidence=conf),
        "p3d": viz.figure_poses_3d(p3 - p3[:, :1], p3 - p3[:, :1], errors_mm=[1.0, 2.0, 3.0]),
        "reproj": viz.figure_reprojection(p2, p3, p2 + 0.02, confidence=conf, max_rows=2),
    }
    for name, fig in figs.items():
        path = viz.save_figure(fig, tmp_path / f"{name}.png")
        assert path.stat().st_size > 1000


def test_training_curves_from_jsonl(tmp_path):
    path = tmp_path / "metrics.jsonl"
    rows = []
    for step in range(1, 7):
        stage = 0 if step < 4 else 1
        rows.append({"step": step, "split": "train", "time": step, "stage": stage,
                     "lifter/loss": 1.0 / step, "discriminator/d2d_acc": 0.6,
                     "generator/aug_bone_len_ratio_abs": 0.05, "bad": "nan"})  # fmt: skip
    rows.append({"step": 6, "split": "val", "time": 7, "mpjpe": 80.0})
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\nnot json\n")
    records = viz.read_metrics(path)
    assert len(records) == len(rows)
    groups = viz.default_curve_groups(records)
    assert groups["losses"] == ["lifter/loss"]
    assert "discriminator/d2d_acc" in next(v for k, v in groups.items() if "accuracy" in k)
    aug = next(v for k, v in groups.items() if k.startswith("augmented poses (ratios"))
    assert aug == ["generator/aug_bone_len_ratio_abs"]
    assert groups["validation"] == ["mpjpe"]
    fig = viz.figure_training_curves(records)
    assert viz.save_figure(fig, tmp_path / "curves.png").stat().st_size > 1000


def test_bad_shapes_raise():
    plt = viz.pyplot()
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match="17, 2"):
        viz.plot_skeleton_2d(ax, np.zeros((16, 2)))
    plt.close(fig)


def _check_png(path):
    """A non-empty PNG that decodes to an RGBA image with more than one colour."""
    import matplotlib.image as mpimg

    assert path.stat().st_size > 1000
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[-1] == 4
    assert len(np.unique(img.reshape(-1, 4), axis=0)) > 1
    return img


def _pixel_poses(n=2, seed=0, w=64, h=48):
    rng = np.random.default_rng(seed)
    return rng.uniform([8, 6], [w - 8, h - 6], (n, 17, 2))


def test_2d_on_image_rgb_grey_and_canvas(tmp_path):
    p2 = _pixel_poses()
    rgb = (np.random.default_rng(1).uniform(0, 255, (48, 64, 3))).astype(np.uint8)
    grey = np.linspace(0.0, 1.0, 48 * 64).reshape(48, 64)
    conf = np.ones((2, 17))
    conf[1, 3] = 0.0
    figs = {
        "rgb": viz.figure_2d_on_image(p2[0], image=rgb, title="one pose"),
        "grey": viz.figure_2d_on_image(p2, image=grey, confidence=conf),
        "canvas": viz.figure_2d_on_image(p2, image_size=(64, 48)),
        "extent": viz.figure_2d_on_image(p2[0]),  # canvas from the keypoints' extent
    }
    ax = figs["canvas"].axes[0]
    assert ax.get_xlim() == (-0.5, 63.5)
    assert ax.get_ylim() == (47.5, -0.5)  # y down
    assert figs["rgb"].axes[0].get_ylim() == (47.5, -0.5)
    for name, fig in figs.items():
        _check_png(viz.save_figure(fig, tmp_path / f"{name}.png", dpi=40))


def test_2d_on_image_bad_inputs():
    p2 = _pixel_poses()
    with pytest.raises(ValueError, match="pose2d.*17, 2"):
        viz.figure_2d_on_image(np.zeros((16, 2)), image_size=(64, 48))
    with pytest.raises(ValueError, match="image:"):
        viz.figure_2d_on_image(p2, image=np.zeros((4, 4, 2)))
    with pytest.raises(ValueError, match="image_size"):
        viz.figure_2d_on_image(p2, image_size=(64, 0))
    with pytest.raises(ValueError, match="confidence.*2, 17"):
        viz.figure_2d_on_image(p2, image_size=(64, 48), confidence=np.ones(17))
    with pytest.raises(ValueError, match="image= or image_size="):
        viz.figure_2d_on_image(np.zeros((17, 2)))  # all points equal: no extent
    with pytest.raises(ValueError, match="image= or image_size="):
        viz.figure_2d_on_image(np.full((17, 2), np.nan))


def test_sample_grid_renders_seeded_panels(tmp_path):
    _, p3 = _poses(n=5)
    pred = p3 - p3[:, :1]
    target = pred + 0.02
    errors = np.arange(5) * 10.0
    labels = ["Walk", "Eat", "Sit", "Pose", "Greet"]
    fig = viz.figure_sample_grid(pred, target, errors, num=3, cols=2, labels=labels, title="t")
    titles = [ax.get_title() for ax in fig.axes]
    assert len(titles) == 3
    again = viz.figure_sample_grid(pred, target, errors, num=3, cols=2, labels=labels)
    assert [ax.get_title() for ax in again.axes] == titles  # same seed, same samples
    viz.pyplot().close(again)
    for t in titles:
        i = int(t.split()[0].lstrip("#"))
        assert t == f"#{i} {labels[i]}\n{errors[i]:.1f} mm"
    _check_png(viz.save_figure(fig, tmp_path / "grid.png", dpi=40))
    whole = viz.figure_sample_grid(pred, target, errors, num=12)  # num capped at N
    assert len(whole.axes) == 5
    viz.pyplot().close(whole)


def test_sample_grid_bad_inputs():
    _, p3 = _poses(n=4)
    with pytest.raises(ValueError, match="pred3d.*17, 3"):
        viz.figure_sample_grid(p3[:, :16], p3[:, :16], np.zeros(4))
    with pytest.raises(ValueError, match="target3d"):
        viz.figure_sample_grid(p3, p3[:3], np.zeros(4))
    with pytest.raises(ValueError, match=r"errors_mm.*\(4,\)"):
        viz.figure_sample_grid(p3, p3, np.zeros(3))
    with pytest.raises(ValueError, match="labels"):
        viz.figure_sample_grid(p3, p3, np.zeros(4), labels=["a"])
    with pytest.raises(ValueError, match="num"):
        viz.figure_sample_grid(p3, p3, np.zeros(4), num=0)


def _sequence(t=4):
    steps = np.arange(t, dtype=float)[:, None, None]
    _, p3 = _poses(n=1)
    seq3 = p3 + steps * np.array([0.05, 0.0, 0.1])  # walks right and away
    seq2 = seq3[..., :2] / seq3[..., 2:] * 2.3
    return seq3, seq2


def test_animate_sequence_gif_frames(tmp_path):
    from PIL import Image

    seq3, seq2 = _sequence(4)
    out = viz.animate_sequence(seq3, tmp_path / "a" / "seq.gif", fps=5, dpi=30, title="walk")
    assert out == tmp_path / "a" / "seq.gif" and out.stat().st_size > 1000
    with Image.open(out) as im:
        assert im.n_frames == 4
    side = viz.animate_sequence(seq3[:3], tmp_path / "side.gif", pose2d=seq2[:3], dpi=30)
    with Image.open(side) as im:
        assert im.n_frames == 3
        assert im.size[0] > im.size[1]  # 2D and 3D side by side
    assert not viz.pyplot().get_fignums()  # figures closed


def test_animate_sequence_bad_inputs(tmp_path, monkeypatch):
    from matplotlib import animation

    seq3, seq2 = _sequence(3)
    with pytest.raises(ValueError, match="avi"):
        viz.animate_sequence(seq3, tmp_path / "seq.avi")
    with pytest.raises(ValueError, match="poses3d.*17, 3"):
        viz.animate_sequence(seq3[:, :16], tmp_path / "seq.gif")
    with pytest.raises(ValueError, match="pose2d.*3 frames"):
        viz.animate_sequence(seq3, tmp_path / "seq.gif", pose2d=seq2[:2])
    monkeypatch.setattr(animation.writers, "is_available", lambda name: False)
    with pytest.raises(RuntimeError, match=r"ffmpeg.*\.gif"):
        viz.animate_sequence(seq3, tmp_path / "seq.mp4")
    assert not (tmp_path / "seq.mp4").exists()
