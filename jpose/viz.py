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
    "figure_2d_on_image",
    "figure_poses_3d",
    "figure_sample_grid",
    "figure_reprojection",
    "read_metrics",
    "default_curve_groups",
    "figure_training_curves",
    "animate_sequence",
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


def _check_poses(
    poses: Any, dims: int, lay: skeleton.Layout, name: str, *, single_ok: bool = False
) -> np.ndarray:
    """``[N, J, dims]`` float array (``[J, dims]`` promoted to ``N = 1`` when ``single_ok``)."""
    arr = np.asarray(poses, dtype=np.float64)
    if single_ok and arr.shape == (lay.num_joints, dims):
        return arr[None]
    if arr.ndim != 3 or arr.shape[1:] != (lay.num_joints, dims) or arr.shape[0] < 1:
        want = f"(N, {lay.num_joints}, {dims})"
        if single_ok:
            want = f"({lay.num_joints}, {dims}) or {want}"
        raise ValueError(f"{name}: expected shape {want} with N >= 1, got {arr.shape}")
    return arr


def _plot_limbs(ax: Any, coords: Sequence[Any], lay: skeleton.Layout, drawn: Any, color: Any,
                label: Any, **style: Any) -> None:  # fmt: skip
    """A line per bone between two ``drawn`` joints through the ``[J]`` coordinate arrays, in
    side colours unless ``color``; ``label`` goes to the first bone's line."""
    for i, ((a, b), side) in enumerate(zip(lay.bones, bone_sides(lay))):
        if drawn[a] and drawn[b]:
            line_label = label if i == 0 else None
            ax.plot(*(c[[a, b]] for c in coords), color=color or SIDE_COLORS[side],
                    label=line_label, linewidth=2, **style)  # fmt: skip


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
    drawn = ~(conf <= min_confidence)  # a NaN confidence draws its limbs (NaN <= t is False)
    _plot_limbs(ax, (p[:, 0], p[:, 1]), lay, drawn, color, label, alpha=alpha, linestyle=linestyle)
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
    drawn = np.ones(lay.num_joints, bool)
    _plot_limbs(ax, (x, y, z), lay, drawn, color, label, alpha=alpha, linestyle=linestyle)
    if radius is not None:
        r = lay.root
        ax.set_xlim(x[r] - radius, x[r] + radius)
        ax.set_ylim(y[r] - radius, y[r] + radius)
        ax.set_zlim(z[r] - radius, z[r] + radius)
    ax.set_xlabel("x")
    ax.set_ylabel("z (depth)")
    ax.set_zlabel("-y (up)")


def _finish(fig: Any, title: str | None) -> Any:
    """``fig`` with its ``title`` (if any), tightly laid out."""
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


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
    return _finish(fig, title)


def _image_array(image: Any) -> np.ndarray:
    """``image`` as an array imshow draws faithfully: uint8 for integers, float in [0, 1]."""
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if not (img.ndim == 2 or (img.ndim == 3 and img.shape[-1] in (3, 4))):
        raise ValueError(f"image: expected shape (H, W) or (H, W, 3), got {img.shape}")
    if img.shape[0] < 1 or img.shape[1] < 1:
        raise ValueError(f"image: empty image of shape {img.shape}")
    if img.dtype == np.bool_:
        return img.astype(np.float64)
    if np.issubdtype(img.dtype, np.integer):
        return np.clip(img, 0, 255).astype(np.uint8)
    if not np.issubdtype(img.dtype, np.floating):
        raise ValueError(f"image: expected an integer or float array, got dtype {img.dtype}")
    img = img.astype(np.float64)
    finite = img[np.isfinite(img)]
    if finite.size and finite.max() > 1.0:  # a float image in [0, 255]
        img = img / 255.0
    return np.clip(np.nan_to_num(img, nan=0.0), 0.0, 1.0)


def figure_2d_on_image(
    pose2d: Any,
    *,
    image: Any = None,
    image_size: tuple[float, float] | None = None,
    layout: str | skeleton.Layout = "h36m17",
    confidence: Any = None,
    title: str | None = None,
) -> Any:
    """2D skeleton(s) drawn over an image, or over a blank canvas of the image size.

    Coordinates are pixels with y down and pixel centres at integers (the image covers
    ``[-0.5, W - 0.5] x [-0.5, H - 0.5]``, as ``imshow`` draws it). The axis limits are the image
    (or canvas), so keypoints outside it are cut off. Every skeleton is drawn by side colours.

    Args:
      pose2d: ``[J, 2]`` keypoints of one person or ``[N, J, 2]`` of several (pixels).
      image: optional ``[H, W]`` (grey) or ``[H, W, 3]`` (RGB) array; integer images are read
        as 0-255, float images as 0-1 (or 0-255 when their maximum exceeds 1).
      image_size: ``(width, height)`` in pixels. Without ``image``: the blank canvas. With
        ``image``: the pixel size the keypoints refer to, when the image was resized (the image
        is stretched over it); default the image's own size.
      layout: joint layout.
      confidence: optional ``[J]`` (one pose) or ``[N, J]`` confidences (marker size; joints with
        confidence 0 and their limbs are hidden).
      title: axes title.

    Raises:
      ValueError: wrong shapes, a bad ``image_size``, or neither ``image`` nor ``image_size``
        given and the keypoints have no usable extent (no finite points, zero width or height)
        to make a canvas from.
    """
    lay = skeleton.get_layout(layout)
    poses = _check_poses(pose2d, 2, lay, "pose2d", single_ok=True)
    n = len(poses)
    conf = None
    if confidence is not None:
        conf = np.asarray(confidence, dtype=np.float64)
        if np.ndim(pose2d) == 2 and conf.shape == (lay.num_joints,):
            conf = conf[None]
        if conf.shape != (n, lay.num_joints):
            want = f"({lay.num_joints},)" if np.ndim(pose2d) == 2 else f"({n}, {lay.num_joints})"
            raise ValueError(f"confidence: expected shape {want} to match pose2d, got {conf.shape}")
    img = None if image is None else _image_array(image)
    if image_size is not None:
        size = np.asarray(image_size, dtype=np.float64)
        if size.shape != (2,) or not np.all(np.isfinite(size)) or np.any(size <= 0):
            raise ValueError(f"image_size: expected (width, height) > 0, got {image_size!r}")
        w, h = float(size[0]), float(size[1])
        x0, x1, y0, y1 = -0.5, w - 0.5, -0.5, h - 0.5
    elif img is not None:
        h, w = float(img.shape[0]), float(img.shape[1])
        x0, x1, y0, y1 = -0.5, w - 0.5, -0.5, h - 0.5
    else:
        vis = np.isfinite(poses).all(-1)
        if conf is not None:
            vis &= conf > 0
        pts = poses[vis]
        span = np.ptp(pts, axis=0) if len(pts) else np.zeros(2)
        if len(pts) == 0 or np.any(span <= 0):
            raise ValueError(
                "figure_2d_on_image: give image= or image_size=; the keypoints have no usable "
                f"extent to draw a canvas from (finite visible points: {len(pts)}, "
                f"extent: {span.tolist()})"
            )
        pad = 0.1 * float(span.max())
        (x0, y0), (x1, y1) = pts.min(0) - pad, pts.max(0) + pad
        w, h = x1 - x0, y1 - y0

    plt = pyplot()
    aspect = float(np.clip(h / w, 0.25, 4.0))
    width = 5.0 if aspect <= 1.0 else 5.0 / aspect
    fig, ax = plt.subplots(figsize=(width, width * aspect + (0.4 if title else 0.0)))
    if img is not None:
        kw: dict[str, Any] = {}
        if img.ndim == 2:  # grey: fixed range, not stretched to the image's min / max
            kw = {"cmap": "gray", "vmin": 0, "vmax": 255 if img.dtype == np.uint8 else 1.0}
        ax.imshow(img, extent=(x0, x1, y1, y0), interpolation="nearest", **kw)
    else:
        ax.set_facecolor("white")
    for i in range(n):
        plot_skeleton_2d(ax, poses[i], layout=lay, confidence=None if conf is None else conf[i])
    ax.set_xlim(x0, x1)
    ax.set_ylim(y1, y0)  # y down
    ax.set_aspect("equal", adjustable="box")
    ax.tick_params(labelsize=7)
    if title:
        ax.set_title(title, fontsize=10)
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
    return _finish(fig, title)


def figure_sample_grid(
    pred3d: Any,
    target3d: Any,
    errors_mm: Any,
    *,
    num: int = 12,
    seed: int = 0,
    layout: str | skeleton.Layout = "h36m17",
    cols: int = 4,
    labels: Sequence[str] | None = None,
    title: str | None = None,
) -> Any:
    """A grid of randomly chosen samples: prediction (side colours) over ground truth (grey).

    Unlike :func:`figure_poses_3d` (the first samples, one row), the samples are drawn without
    replacement with ``seed`` (shown in increasing index order), so a fixed seed gives the same
    panels for every checkpoint. Each panel title gives the sample index, its label and error.

    Args:
      pred3d: ``[N, J, 3]`` camera-frame root-relative predictions (metres).
      target3d: ``[N, J, 3]`` ground truth.
      errors_mm: ``[N]`` per-sample errors (e.g. MPJPE in mm).
      num: number of panels (at most ``N``).
      seed: seed of the sample choice.
      layout: joint layout.
      cols: panels per row.
      labels: optional ``N`` strings (e.g. the action) shown in the panel titles.
      title: figure title.

    Raises:
      ValueError: mismatched shapes or lengths, ``num < 1`` or ``cols < 1``.
    """
    lay = skeleton.get_layout(layout)
    pred = _check_poses(pred3d, 3, lay, "pred3d")
    target = _check_poses(target3d, 3, lay, "target3d")
    n = len(pred)
    if target.shape != pred.shape:
        raise ValueError(f"target3d: expected shape {pred.shape} like pred3d, got {target.shape}")
    errors = np.asarray(errors_mm, dtype=np.float64)
    if errors.shape != (n,):
        raise ValueError(f"errors_mm: expected shape ({n},) (one per sample), got {errors.shape}")
    if labels is not None and len(labels) != n:
        raise ValueError(f"labels: expected {n} entries (one per sample), got {len(labels)}")
    if num < 1 or cols < 1:
        raise ValueError(f"num and cols must be >= 1, got num={num}, cols={cols}")
    num = min(num, n)
    idx = np.sort(np.random.default_rng(seed).choice(n, size=num, replace=False))
    cols = min(cols, num)
    rows = math.ceil(num / cols)
    plt = pyplot()
    fig = plt.figure(figsize=(2.8 * cols, 3.0 * rows + (0.4 if title else 0.0)))
    for k, i in enumerate(idx):
        ax = fig.add_subplot(rows, cols, k + 1, projection="3d")
        plot_skeleton_3d(
            ax, target[i], layout=lay, color="tab:gray", linestyle="--", label="ground truth"
        )
        plot_skeleton_3d(ax, pred[i], layout=lay, label="prediction")
        t = f"#{int(i)}"
        if labels is not None:
            t += f" {labels[i]}"
        ax.set_title(f"{t}\n{errors[i]:.1f} mm", fontsize=8)
        ax.view_init(elev=15, azim=-75)
        ax.tick_params(labelsize=5)
        for setter in (ax.set_xlabel, ax.set_ylabel, ax.set_zlabel):
            setter("")
        if k == 0:
            ax.legend(fontsize=6, loc="upper left")
    return _finish(fig, title)


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
    return _finish(fig, title)


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
        skip = ("step", "split", "time", "stage")
        target.update(
            {k: None for k, v in r.items() if k not in skip and isinstance(v, int | float)}
        )
    aug = [k for k in keys if "/aug_" in k or k.startswith("aug/")]
    groups = {
        "losses": [k for k in keys if k.endswith("/loss")],
        "discriminator accuracy (GAN health, 0.5 = balanced)": [
            k for k in keys if "acc" in k.split("/")[-1]
        ],
        "augmented poses (ratios, 1 - cos, valid fraction)": [
            k for k in aug if not k.endswith(("_deg", "_depth"))
        ],
        "augmented poses: rotation (deg), root depth (m)": [
            k for k in aug if k.endswith(("_deg", "_depth"))
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
    return _finish(fig, title)


def _cube_limits(points: np.ndarray) -> tuple[np.ndarray, float]:
    """Centre ``[3]`` and half-size of one cube holding all finite ``points [..., 3]``."""
    pts = points.reshape(-1, 3)
    pts = pts[np.isfinite(pts).all(-1)]
    if not len(pts):
        return np.zeros(3), 1.0
    lo, hi = pts.min(0), pts.max(0)
    half = 0.55 * float((hi - lo).max())
    return (lo + hi) / 2, half if half > 0 else 1.0


def animate_sequence(
    poses3d: Any,
    path: str | os.PathLike[str],
    *,
    pose2d: Any = None,
    layout: str | skeleton.Layout = "h36m17",
    fps: float = 25,
    elev: float = 15,
    azim: float = -70,
    title: str | None = None,
    dpi: int = 80,
) -> pathlib.Path:
    """Write an animation of a 3D pose sequence, optionally beside its 2D input.

    The axis limits are fixed over the whole sequence (one cube around all 3D frames, one box
    around all 2D frames), so the view does not jitter; a global trajectory is kept. Each frame
    carries a ``frame t/T`` counter (which also keeps GIF writers from merging equal frames).

    Args:
      poses3d: ``[T, J, 3]`` camera-frame poses (metres), drawn as in :func:`plot_skeleton_3d`.
      path: output file, ``.gif`` (Pillow) or ``.mp4`` (needs ffmpeg); parent folders created.
      pose2d: optional ``[T, J, 2]`` 2D input (y down), drawn in a left panel.
      layout: joint layout.
      fps: frames per second.
      elev, azim: 3D view angles (degrees).
      title: figure title.
      dpi: resolution of the frames.

    Returns:
      The path written.

    Raises:
      ValueError: an unknown suffix, wrong shapes or ``fps <= 0``.
      RuntimeError: ``.mp4`` asked for but matplotlib finds no ffmpeg.
    """
    path = pathlib.Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".gif", ".mp4"):
        raise ValueError(f"path: unsupported animation format {path.suffix!r}; use .gif or .mp4")
    lay = skeleton.get_layout(layout)
    seq = _check_poses(poses3d, 3, lay, "poses3d")
    t_len = len(seq)
    seq2 = None
    if pose2d is not None:
        seq2 = _check_poses(pose2d, 2, lay, "pose2d")
        if len(seq2) != t_len:
            raise ValueError(f"pose2d: expected {t_len} frames like poses3d, got {len(seq2)}")
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    plt = pyplot()
    from matplotlib import animation

    if suffix == ".mp4":
        if not animation.writers.is_available("ffmpeg"):
            raise RuntimeError(
                f"cannot write {path}: matplotlib finds no ffmpeg for .mp4 (install ffmpeg or "
                "set rcParams['animation.ffmpeg_path']), or write a .gif instead"
            )
        writer = animation.FFMpegWriter(fps=fps)
    else:
        writer = animation.PillowWriter(fps=fps)

    bones = list(lay.bones)
    colors = [SIDE_COLORS[s] for s in bone_sides(lay)]
    plot3 = np.stack([seq[..., 0], seq[..., 2], -seq[..., 1]], axis=-1)  # (x, z, -y): up is up
    ncols = 1 if seq2 is None else 2
    fig = plt.figure(figsize=(3.2 * ncols, 3.4 + (0.3 if title else 0.0)))
    try:
        lines2: list[Any] = []
        if seq2 is not None:
            ax2 = fig.add_subplot(1, 2, 1)
            finite = seq2.reshape(-1, 2)[np.isfinite(seq2.reshape(-1, 2)).all(-1)]
            lo, hi = (finite.min(0), finite.max(0)) if len(finite) else (np.zeros(2), np.ones(2))
            pad = 0.1 * float((hi - lo).max()) or 1.0
            ax2.set_xlim(lo[0] - pad, hi[0] + pad)
            ax2.set_ylim(hi[1] + pad, lo[1] - pad)  # y down
            ax2.set_aspect("equal", adjustable="box")
            ax2.tick_params(labelsize=6)
            ax2.set_title("2D input", fontsize=9)
            lines2 = [ax2.plot([], [], color=c, linewidth=2)[0] for c in colors]
            lines2.append(ax2.plot([], [], "o", color="k", markersize=2)[0])
        ax3 = fig.add_subplot(1, ncols, ncols, projection="3d")
        centre, half = _cube_limits(plot3)
        ax3.set_xlim(centre[0] - half, centre[0] + half)
        ax3.set_ylim(centre[1] - half, centre[1] + half)
        ax3.set_zlim(centre[2] - half, centre[2] + half)
        ax3.set_box_aspect((1, 1, 1))
        ax3.view_init(elev=elev, azim=azim)
        ax3.tick_params(labelsize=6)
        ax3.set_xlabel("x", fontsize=7)
        ax3.set_ylabel("z (depth)", fontsize=7)
        ax3.set_zlabel("-y (up)", fontsize=7)
        if seq2 is not None:
            ax3.set_title("3D", fontsize=9)
        lines3 = [ax3.plot([], [], [], color=c, linewidth=2)[0] for c in colors]
        lines3.append(ax3.plot([], [], [], "o", color="k", markersize=2)[0])
        counter = fig.text(0.01, 0.01, "", fontsize=7)
        if title:
            fig.suptitle(title, fontsize=10)
        fig.tight_layout()

        def draw(t: int) -> list[Any]:
            p = plot3[t]
            for line, (a, b) in zip(lines3, bones):
                line.set_data_3d(p[[a, b], 0], p[[a, b], 1], p[[a, b], 2])
            lines3[-1].set_data_3d(p[:, 0], p[:, 1], p[:, 2])
            if seq2 is not None:
                q = seq2[t]
                for line, (a, b) in zip(lines2, bones):
                    line.set_data(q[[a, b], 0], q[[a, b], 1])
                lines2[-1].set_data(q[:, 0], q[:, 1])
            counter.set_text(f"frame {t + 1}/{t_len}")
            return [*lines3, *lines2, counter]

        anim = animation.FuncAnimation(
            fig, draw, frames=t_len, interval=1000.0 / fps, blit=False, cache_frame_data=False
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        anim.save(str(path), writer=writer, dpi=dpi)
    finally:
        plt.close(fig)
    return path


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
