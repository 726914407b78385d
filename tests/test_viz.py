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
