"""Figures for the experiments: skeletons in 2D and 3D, re-projections, training curves.

Needs matplotlib (the optional ``viz`` extra: ``pip install jpose[viz]``); it is imported lazily
inside the functions, with the non-interactive ``Agg`` backend, so importing :mod:`jpose.viz` costs
nothing and works without matplotlib (a function then raises ``ImportError`` naming the extra).

Conventions: poses are numpy-convertible arrays in a :mod:`jpose.skeleton` layout (default
Human3.6M-17); 2D keypoints ``[J, 2]`` in image units with y pointing down (pixels or normalised
units), 3D poses ``[J, 3]`` in the camera frame (OpenCV: x right, y down, z forward, metres) and
drawn with the vertical axis up. Limbs are coloured by side: the person's **left** side red,
**right** side blue, centre line black (:data:`SIDE_COLORS`). Functions that draw several poses
take ``[N, J, ...]`` arrays and draw the first ``max_rows`` of them.

Functions return a ``matplotlib.figure.Figure``; :func:`save_figure` writes a PNG and closes it.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from jpose import skeleton

__all__ = [
    "SIDE_COLORS",
    "pyplot",
    "bone_sides",
    "plot_skeleton_2d",
    "plot_skeleton_3d",
    "figure_2d_comparison",
    "figure_poses_3d",
    "figure_reprojection",
    "read_metrics",
    "default_curve_groups",
    "figure_training_curves",
    "save_figure",
]

SIDE_COLORS = {"left": "tab:red", "right": "tab:blue", "centre": "black"}
"""Limb colours by side of the body (the person's own left / right)."""


def pyplot() -> Any:
    """``matplotlib.pyplot`` with the ``Agg`` backend (raises ImportError naming the extra)."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "jpose.viz needs matplotlib: pip install 'jpose[viz]' (or matplotlib>=3.8)"
        ) from err
    return plt


def bone_sides(layout: str | skeleton.Layout = "h36m17") -> list[str]:
    """Side of each bone (``"left"``, ``"right"`` or ``"centre"``), by its child joint.

    Args:
      layout: joint layout.

    Returns:
      One entry per bone of ``layout.bones``.
    """
    lay = skeleton.get_layout(layout)
    left, right = set(lay.joints_left.tolist()), set(lay.joints_right.tolist())
    out = []
    for _, child in lay.bones:
        out.append("left" if child in left else "right" if child in right else "centre")
    return out


def _check_pose(pose: Any, dims: int, lay: skeleton.Layout, name: str) -> np.ndarray:
    arr = np.asarray(pose, dtype=np.float64)
    if arr.shape != (lay.num_joints, dims):
        raise ValueError(f"{name}: expected shape ({lay.num_joints}, {dims}), got {arr.shape}")
    return arr


def plot_skeleton_2d(
    ax: Any,
    pose2d: Any,
    *,
    layout: str | skeleton.Layout = "h36m17",
    confidence: Any = None,
    color: str | None = None,
    alpha: float = 1.0,
    linestyle: str = "-",
    label: str | None = None,
    min_confidence: float = 0.0,
) -> None:
    """Draw one 2D skeleton on ``ax`` (image coordinates, y down: the axis is inverted once).

    Args:
      ax: a matplotlib axes.
      pose2d: ``[J, 2]`` keypoints.
      layout: joint layout.
      confidence: optional ``[J]``; limbs touching a joint with confidence ``<= min_confidence``
        are not drawn, joint markers are sized by confidence.
      color: one colour for the whole skeleton (default: by side, :data:`SIDE_COLORS`).
      alpha, linestyle: line style.
      label: legend label (attached to the first limb).
      min_confidence: see ``confidence``.
    """
    lay = skeleton.get_layout(layout)
    p = _check_pose(pose2d, 2, lay, "pose2d")
    conf = np.ones(lay.num_joints) if confidence is None else np.asarray(confidence, float)
    for i, ((a, b), side) in enumerate(zip(lay.bones, bone_sides(lay))):
        if conf[a] <= min_confidence or conf[b] <= min_confidence:
            continue
        ax.plot(
            p[[a, b], 0],
            p[[a, b], 1],
            color=color or SIDE_COLORS[side],
            alpha=alpha,
            linestyle=linestyle,
            linewidth=2,
            label=label if i == 0 else None,
        )
    ok = conf > min_confidence
    ax.scatter(p[ok, 0], p[ok, 1], s=6 + 14 * np.clip(conf[ok], 0, 1), c=color or "k", alpha=alpha)
    if not ax.yaxis_inverted():
        ax.invert_yaxis()
    ax.set_aspect("equal", adjustable="datalim")


def plot_skeleton_3d(
    ax: Any,
    pose3d: Any,
    *,
    layout: str | skeleton.Layout = "h36m17",
    color: str | None = None,
    alpha: float = 1.0,
    linestyle: str = "-",
    label: str | None = None,
    radius: float | None = 1.0,
) -> None:
    """Draw one 3D skeleton on a ``projection="3d"`` axes.

    The camera-frame pose (x right, y down, z forward) is drawn as (x, z, -y): image right to the
    right, depth into the plot, up upwards.

    Args:
      ax: 3D axes.
      pose3d: ``[J, 3]`` camera-frame joints (metres; root-relative or absolute).
      layout: joint layout.
      color: single colour (default: by side).
      alpha, linestyle, label: line style and legend label.
      radius: half-size of the cube shown around the root (metres); None leaves the limits.
    """
    lay = skeleton.get_layout(layout)
    p = _check_pose(pose3d, 3, lay, "pose3d")
    x, y, z = p[:, 0], p[:, 2], -p[:, 1]
    for i, ((a, b), side) in enumerate(zip(lay.bones, bone_sides(lay))):
        ax.plot(
            x[[a, b]],
            y[[a, b]],
            z[[a, b]],
            color=color or SIDE_COLORS[side],
            alpha=alpha,
            linestyle=linestyle,
            linewidth=2,
            label=label if i == 0 else None,
        )
    if radius is not None:
        r = lay.root
        ax.set_xlim(x[r] - radius, x[r] + radius)
        ax.set_ylim(y[r] - radius, y[r] + radius)
        ax.set_zlim(z[r] - radius, z[r] + radius)
    ax.set_xlabel("x")
    ax.set_ylabel("z (depth)")
    ax.set_zlabel("-y (up)")


def _rows(arrays: Sequence[Any], max_rows: int) -> int:
    n = min(len(np.asarray(a)) for a in arrays)
    return max(1, min(n, max_rows))


def figure_2d_comparison(
    poses: Mapping[str, Any],
    *,
    layout: str | skeleton.Layout = "h36m17",
    confidence: Any = None,
    max_rows: int = 4,
    title: str | None = None,
) -> Any:
    """Overlay several 2D versions of the same samples, one panel per sample.

    E.g. ``{"input": noisy, "refined": refined, "ground truth": gt}`` (CameraPose refinement
    network, Sec. 3.1). The first entry is drawn by side colours, the others in single colours.

    Args:
      poses: ``{name: [N, J, 2]}``.
      layout: joint layout.
      confidence: optional ``[N, J]`` confidences of the first entry (marker size).
      max_rows: number of samples (panels).
      title: figure title.

    Returns:
      The figure.
    """
    plt = pyplot()
    names = list(poses)
    n = _rows(list(poses.values()), max_rows)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.6), squeeze=False)
    colors = [None, "tab:green", "tab:gray", "tab:orange", "tab:purple"]
    styles = ["-", "--", ":", "-.", "-"]
    for i in range(n):
        ax = axes[0, i]
        for k, name in enumerate(names):
            conf = None if confidence is None or k else np.asarray(confidence)[i]
            plot_skeleton_2d(
                ax,
                np.asarray(poses[name])[i],
                layout=layout,
                confidence=conf,
                color=colors[k % len(colors)],
                linestyle=styles[k % len(styles)],
                alpha=1.0 if k == 0 else 0.8,
                label=name,
            )
        ax.set_title(f"sample {i}", fontsize=9)
        ax.tick_params(labelsize=7)
    axes[0, 0].legend(fontsize=7, loc="best")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def figure_poses_3d(
    pred: Any,
    target: Any = None,
    *,
    layout: str | skeleton.Layout = "h36m17",
    max_rows: int = 4,
    title: str | None = None,
    errors_mm: Any = None,
) -> Any:
    """Predicted 3D poses (side colours), optionally over the ground truth (grey, dashed).

    Args:
      pred: ``[N, J, 3]`` camera-frame root-relative predictions (metres).
      target: optional ``[N, J, 3]`` ground truth.
      layout: joint layout.
      max_rows: number of panels.
      title: figure title.
      errors_mm: optional ``[N]`` per-sample errors shown in the panel titles.

    Returns:
      The figure.
    """
    plt = pyplot()
    n = _rows([pred] if target is None else [pred, target], max_rows)
    fig = plt.figure(figsize=(3.4 * n, 3.6))
    for i in range(n):
        ax = fig.add_subplot(1, n, i + 1, projection="3d")
        if target is not None:
            plot_skeleton_3d(
                ax, np.asarray(target)[i], layout=layout, color="tab:gray", linestyle="--",
                label="ground truth",
            )  # fmt: skip
        plot_skeleton_3d(ax, np.asarray(pred)[i], layout=layout, label="prediction")
        t = f"sample {i}"
        if errors_mm is not None:
            t += f": {float(np.asarray(errors_mm)[i]):.0f} mm"
        ax.set_title(t, fontsize=9)
        ax.view_init(elev=15, azim=-75)
        ax.tick_params(labelsize=6)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def figure_reprojection(
    input2d: Any,
    pose3d: Any,
    reprojected2d: Any,
    *,
    layout: str | skeleton.Layout = "h36m17",
    confidence: Any = None,
    max_rows: int = 4,
    title: str | None = None,
) -> Any:
    """CameraPose Figure 8: input 2D, inferred 3D, 3D re-projected with the predicted camera.

    One row per sample: (1) the input 2D keypoints, (2) the lifted camera-frame 3D pose, (3) the
    re-projection ``pi(M^ (X^ + t^))`` (side colours) over the input (grey dashed).

    Args:
      input2d: ``[N, J, 2]`` input keypoints (normalised image units, y down).
      pose3d: ``[N, J, 3]`` lifted poses (metres).
      reprojected2d: ``[N, J, 2]`` re-projections, same units as ``input2d``.
      layout: joint layout.
      confidence: optional ``[N, J]`` (joints with confidence 0 hidden in the input panel).
      max_rows: number of samples.
      title: figure title.

    Returns:
      The figure.
    """
    plt = pyplot()
    n = _rows([input2d, pose3d, reprojected2d], max_rows)
    fig = plt.figure(figsize=(9.6, 3.0 * n))
    for i in range(n):
        conf = None if confidence is None else np.asarray(confidence)[i]
        ax = fig.add_subplot(n, 3, 3 * i + 1)
        plot_skeleton_2d(ax, np.asarray(input2d)[i], layout=layout, confidence=conf)
        ax.set_title("input 2D" if i == 0 else "", fontsize=9)
        ax3 = fig.add_subplot(n, 3, 3 * i + 2, projection="3d")
        root = skeleton.get_layout(layout).root
        p3 = np.asarray(pose3d)[i]
        plot_skeleton_3d(ax3, p3 - p3[root], layout=layout)
        ax3.view_init(elev=15, azim=-75)
        ax3.tick_params(labelsize=6)
        ax3.set_title("inferred 3D" if i == 0 else "", fontsize=9)
        ax = fig.add_subplot(n, 3, 3 * i + 3)
        plot_skeleton_2d(
            ax, np.asarray(input2d)[i], layout=layout, confidence=conf, color="tab:gray",
            linestyle="--", alpha=0.7, label="input",
        )  # fmt: skip
        plot_skeleton_2d(ax, np.asarray(reprojected2d)[i], layout=layout, label="re-projected")
        ax.set_title("re-projected (predicted camera)" if i == 0 else "", fontsize=9)
        if i == 0:
            ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def read_metrics(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Records of a ``metrics.jsonl`` file (``jpose.training.MetricsLogger``), in file order.

    Args:
      path: the JSONL file.

    Returns:
      One dict per line (``step``, ``split``, ``time`` and the metrics); unparsable lines skipped.
    """
    out = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out


def default_curve_groups(records: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Panels for :func:`figure_training_curves` from the metric names present.

    Groups: losses (``*/loss``), GAN health (discriminator accuracies ``*acc*``), augmentation
    statistics (``aug/*``: bone-length ratios, bone-angle changes, rotation angles, valid
    fraction), validation metrics (``split == "val"``), throughput.

    Args:
      records: metric records.

    Returns:
      ``{panel title: [metric keys]}`` (empty groups omitted).
    """
    keys: dict[str, None] = {}
    val_keys: dict[str, None] = {}
    for r in records:
        target = val_keys if r.get("split") == "val" else keys
        for k, v in r.items():
            if k in ("step", "split", "time") or not isinstance(v, int | float):
                continue
            target[k] = None
    groups = {
        "losses": [k for k in keys if k.endswith("/loss")],
        "discriminator accuracy (GAN health, 0.5 = balanced)": [
            k for k in keys if "acc" in k.split("/")[-1]
        ],
        "augmented poses (ratios, 1 - cos, valid fraction)": [
            k
            for k in keys
            if ("/aug_" in k or k.startswith("aug/")) and not k.endswith(("_deg", "_depth"))
        ],
        "augmented poses: rotation (deg), root depth (m)": [
            k
            for k in keys
            if ("/aug_" in k or k.startswith("aug/")) and k.endswith(("_deg", "_depth"))
        ],
        "validation": list(val_keys),
        "throughput (samples/s)": [k for k in keys if k == "throughput/samples_per_s"],
    }
    return {t: ks for t, ks in groups.items() if ks}


def figure_training_curves(
    records: Sequence[Mapping[str, Any]],
    *,
    groups: Mapping[str, Sequence[str]] | None = None,
    log_scale_losses: bool = True,
    title: str | None = None,
) -> Any:
    """Training curves from metric records, one panel per group (step on the x axis).

    Stage boundaries (records with a changing ``stage`` value) are marked with vertical lines.

    Args:
      records: from :func:`read_metrics`.
      groups: ``{panel title: [metric keys]}`` (default :func:`default_curve_groups`).
      log_scale_losses: log y axis on the ``losses`` panel (when all values are positive).
      title: figure title.

    Returns:
      The figure.
    """
    plt = pyplot()
    groups = dict(default_curve_groups(records) if groups is None else groups)
    if not groups:
        groups = {"(no metrics)": []}
    cols = min(2, len(groups))
    rows = math.ceil(len(groups) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.0 * cols, 3.4 * rows), squeeze=False)
    boundaries = []
    last_stage = None
    for r in records:
        s = r.get("stage")
        if s is not None and r.get("split") == "train":
            if last_stage is not None and s != last_stage:
                boundaries.append(r["step"])
            last_stage = s
    for ax, (name, keys) in zip(axes.ravel(), groups.items()):
        positive = True
        for k in keys:
            pts = [
                (r["step"], r[k])
                for r in records
                if isinstance(r.get(k), int | float) and math.isfinite(r[k])
            ]
            if not pts:
                continue
            xs, ys = zip(*pts)
            positive &= min(ys) > 0
            ax.plot(xs, ys, label=k, linewidth=1.2, marker="." if len(xs) < 30 else None)
        for b in boundaries:
            ax.axvline(b, color="k", alpha=0.25, linestyle=":")
        if name == "losses" and log_scale_losses and positive and keys:
            ax.set_yscale("log")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("step")
        if keys:
            ax.legend(fontsize=6, loc="best")
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(groups) :]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def save_figure(fig: Any, path: str | os.PathLike[str], *, dpi: int = 110) -> pathlib.Path:
    """Write ``fig`` as PNG (parent folders created) and close it.

    Args:
      fig: a matplotlib figure.
      path: output file.
      dpi: resolution.

    Returns:
      The path written.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)
    return path
