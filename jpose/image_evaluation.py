"""Evaluation of the image networks: prediction functions, metrics and a figure.

Zhou et al. (ICCV 2017, :func:`jpose.models.hourglass.stacked_hourglass`): 2D PCKh, 3D errors
after the skeleton rescale of sec. 4.1.2 and Table 4's bone-length differences. WSP (Qiu et
al., :func:`jpose.models.resnet.wsp_net`): relative depth by the scale gap ratio ΔS (eq. 14, RD
protocol 1) and 3D from the integral-regression voxels (eqs. 11-12).

Units: 2D in heatmap pixels (:func:`jpose.data.image_targets.heatmap_px`), 3D in metres,
errors in mm.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jpose import losses, skeleton
from jpose import metrics as jm
from jpose.data.images import normalize_images
from jpose.evaluation import error_summary, pose_errors
from jpose.models.core import Model
from jpose.models.hourglass import heatmap_argmax

__all__ = [
    "zhou_predictor",
    "zhou_image_evaluation",
    "wsp_predictor",
    "relative_depth_by_scale_gap",
    "wsp_voxels_to_camera",
    "wsp_3d_evaluation",
    "crop_keypoints_figure",
]

_H36M17 = skeleton.H36M17


def zhou_predictor(model: Model, variables: Any) -> Callable[[Any], dict[str, jax.Array]]:
    """Jitted ``images uint8 [B, S, S, 3] -> {"kp": [B, J, 2], "depth": [B, J]}`` (heatmap px)
    of Zhou's network: the last stack's heatmap arg-max with Newell's quarter-pixel shift
    (:func:`jpose.models.hourglass.heatmap_argmax`) and the regressed depth (not root-relative).
    The variables are arguments of the compiled function, not baked-in constants, so every
    predictor of one ``model`` shares one compilation per input shape.
    """
    return functools.partial(_zhou_forward, model, variables)


@functools.partial(jax.jit, static_argnums=0)
def _zhou_forward(model: Model, variables: Any, images: jax.Array) -> dict[str, jax.Array]:
    out, _ = model.apply(variables, normalize_images(images), train=False)
    return {"kp": heatmap_argmax(out["heatmaps"][:, -1]), "depth": out["depth"]}


def zhou_image_evaluation(
    pred: Mapping[str, np.ndarray],
    data: Mapping[str, np.ndarray],
    *,
    labels: np.ndarray,
    name: str,
    pose3d: np.ndarray | None,
    avg_sum_length: float,
    heatmap_size: int,
    pckh_threshold: float = 0.5,
    layout: str | skeleton.Layout = _H36M17,
) -> dict[str, Any]:
    """Zhou et al.'s evaluation of one split.

    2D: PCKh (:func:`jpose.metrics.pckh`, head segment ``Head - Neck/Nose``). 3D (with
    ``pose3d``): the output ``[u, v, d]`` (root-relative) rescaled to the average sum of bone
    lengths of the training skeletons (sec. 4.1.2, :func:`jpose.losses.zhou_skeleton_rescale`)
    -> MPJPE, P-MPJPE and N-MPJPE per label. Table 4: left/right bone-length differences in mm
    (3D splits; also of the ground truth) and, on every split, in the units of a 256 x 256 crop.

    Args:
      pred: :func:`zhou_predictor` outputs ``{"kp", "depth"}`` of the split.
      data: ``{"kp": [N, J, 2], "vis": [N, J]}`` ground truth, heatmap pixels.
      labels: ``[N]`` pose class / action per example.
      name: dataset name of the 3D evaluation.
      pose3d: ``[N, J, 3]`` ground-truth 3D (metres), or None (2D-only split).
      avg_sum_length: average sum of bone lengths of the training skeletons (metres).
      heatmap_size: heatmap side (crop units = 256 / heatmap_size).
      pckh_threshold: PCKh threshold (fraction of the head segment).
      layout: joint layout.

    Returns:
      ``{"pckh": jpose.metrics.pckh(...), "symmetry_crop_px": row}`` and with ``pose3d``
      ``"eval3d"`` (:func:`jpose.evaluation.evaluate_3d`'s format), ``"symmetry_mm"``,
      ``"symmetry_gt_mm"``.
    """
    lay = skeleton.get_layout(layout)
    root = lay.root
    out: dict[str, Any] = {"pckh": jm.pckh(pred["kp"], data["kp"], data["vis"],
                                        threshold=pckh_threshold, layout=lay)}  # fmt: skip
    depth = pred["depth"] - pred["depth"][:, root : root + 1]
    pose_hm = np.concatenate([pred["kp"], depth[..., None]], -1)
    crop_units = 256.0 / heatmap_size  # Table 4 on 2D-only data: 256 x 256 crop pixels
    out["symmetry_crop_px"] = jm.symmetry_table(pose_hm, layout=lay, scale=crop_units)
    if pose3d is None:
        return out
    rescaled = np.asarray(losses.zhou_skeleton_rescale(
        jnp.asarray(pose_hm), layout=lay, avg_sum_length=avg_sum_length))  # fmt: skip
    target = pose3d - pose3d[:, root : root + 1]
    out["eval3d"] = error_summary(pose_errors(rescaled, target), labels, name=name)
    out["symmetry_mm"] = jm.symmetry_table(rescaled, layout=lay, scale=1000.0)
    out["symmetry_gt_mm"] = jm.symmetry_table(target, layout=lay, scale=1000.0)
    return out


def wsp_predictor(model: Model, variables: Any) -> Callable[..., dict[str, jax.Array]]:
    """Jitted ``(images uint8, *inputs) -> {"logits"?, "coords3d"?}`` of WSP's network in
    evaluation mode: ``(images, boxes, pairs)`` for the relative-depth head, ``(images,)`` for
    the 3D head. The variables are arguments of the compiled function, not baked-in constants
    (one compilation per ``model`` and input shapes)."""
    return functools.partial(_wsp_forward, model, variables)


@functools.partial(jax.jit, static_argnums=0)
def _wsp_forward(model: Model, variables: Any, *inputs: jax.Array) -> dict[str, jax.Array]:
    out, _ = model.apply(variables, normalize_images(inputs[0]), *inputs[1:], train=False)
    return {k: v for k, v in out.items() if k in ("logits", "coords3d")}


def relative_depth_by_scale_gap(
    logits: np.ndarray, data: Mapping[str, np.ndarray], *, thresholds: Sequence[float]
) -> dict[str, dict[str, float]]:
    """Relative-depth metrics of pairs with a scale gap ratio ``ΔS <= t`` (WSP eq. 14, RD
    protocol 1), against the true per-joint depth order and against the ankle-rule labels, with
    the chance level (majority class) of each.

    Args:
      logits: ``[N, P, J]`` relative-depth logits (1 = A nearer).
      data: :func:`jpose.data.image_targets.wsp_pretrain_arrays` of the test images
        (``pair_valid``, ``delta_s``, ``labels_depth``, ``labels_ankle``, ``ankle_valid``).
      thresholds: the ``t`` values.

    Returns:
      ``{"ΔS<=t": {"pairs", "acc (true order)", "auc (true order)", "f1 (true order)",
      "chance (true order)", and the same for "ankle labels"}}`` (a label set without pairs
      is left out).
    """
    rows = {}
    for t in thresholds:
        sel = data["pair_valid"] & (data["delta_s"] <= t)
        row = {"pairs": float(sel.sum())}
        for name, lab, valid in (("true order", data["labels_depth"], sel),
                                 ("ankle labels", data["labels_ankle"],
                                  sel & data["ankle_valid"])):  # fmt: skip
            mask = np.broadcast_to(valid[..., None], lab.shape)
            if mask.sum() == 0:
                continue
            m = jm.relative_depth_metrics(jnp.asarray(logits), jnp.asarray(lab),
                                          mask=jnp.asarray(mask), from_logits=True)  # fmt: skip
            p = float(lab[mask].mean())
            for key, metric in (("acc", "accuracy"), ("auc", "auc"), ("f1", "f1")):
                row[f"{key} ({name})"] = float(m[metric])
            row[f"chance ({name})"] = max(p, 1.0 - p)
        rows[f"ΔS<={t}"] = row
    return rows


def wsp_voxels_to_camera(
    coords: np.ndarray,
    *,
    root_depth: np.ndarray,
    focal: np.ndarray,
    center: np.ndarray,
    stride: float,
    depth_bins: int,
    depth_range_m: float,
) -> np.ndarray:
    """Integral-regression voxels (WSP eqs. 11-12) back to the camera frame: the inverse of
    :func:`jpose.data.image_targets.wsp_finetune_arrays` with the given root depth.

    Args:
      coords: ``[N, J, 3]`` ``(u, v)`` heatmap pixels and ``z`` depth bins.
      root_depth: ``[N, 1]`` root depth ``Z_root`` (m; the evaluation uses the ground truth).
      focal: ``[N, 2]`` px. center: ``[N, 2]`` px (principal point).
      stride: input pixels per heatmap pixel.
      depth_bins: depth bins of the 3D heatmaps.
      depth_range_m: metres spanned by the bins, centred on the root.

    Returns:
      ``[N, J, 3]`` metres, camera frame (pinhole back-projection).
    """
    c = coords
    z = root_depth + (c[..., 2] / (depth_bins - 1) - 0.5) * depth_range_m
    u = (c[..., 0] + 0.5) * stride - 0.5
    v = (c[..., 1] + 0.5) * stride - 0.5
    x = (u - center[:, None, 0]) * z / focal[:, None, 0]
    y = (v - center[:, None, 1]) * z / focal[:, None, 1]
    return np.stack([x, y, z], -1)


def wsp_3d_evaluation(
    coords: np.ndarray,
    data: Mapping[str, np.ndarray],
    *,
    stride: float,
    depth_bins: int,
    depth_range_m: float,
    name: str,
    layout: str | skeleton.Layout = _H36M17,
) -> tuple[dict[str, Any], dict[str, float]]:
    """WSP's 3D evaluation on single-person crops: the voxels back-projected with the
    ground-truth intrinsics and root depth (:func:`wsp_voxels_to_camera`), root-relative MPJPE /
    P-MPJPE / N-MPJPE and the per-axis errors ``MPJPE_X/Y/Z`` of the paper's Table 4 discussion.

    Args:
      coords: ``[N, J, 3]`` predicted voxel coordinates.
      data: :func:`jpose.data.image_targets.wsp_finetune_arrays` (``pose3d``, ``focal``,
        ``center``).
      stride, depth_bins, depth_range_m: as :func:`wsp_voxels_to_camera`.
      name: dataset name.
      layout: joint layout.

    Returns:
      ``(evaluation, summary)``: :func:`jpose.evaluation.evaluate_3d`'s format with one group
      ``"all"``, and ``{"MPJPE", "P-MPJPE", "MPJPE_X", "MPJPE_Y", "MPJPE_Z"}`` in mm.
    """
    root = skeleton.get_layout(layout).root
    gt = data["pose3d"].astype(np.float64)
    pred = wsp_voxels_to_camera(
        coords, root_depth=gt[:, root : root + 1, 2], focal=data["focal"],
        center=data["center"], stride=stride, depth_bins=depth_bins, depth_range_m=depth_range_m,
    )  # fmt: skip
    pred = pred - pred[:, root : root + 1]
    target = gt - gt[:, root : root + 1]
    ev: dict[str, Any] = {"dataset": name, "num_examples": len(gt), "metrics": {}}
    for k, val in pose_errors(pred, target).items():
        mm = float(np.mean(np.asarray(jm.to_mm(val))))
        ev["metrics"][k] = {"per_action": {"all": mm}, "action_wise": mm, "frame_wise": mm}
    axis = np.abs(pred - target).mean((0, 1)) * 1000.0
    summary = {
        "MPJPE": ev["metrics"]["mpjpe"]["frame_wise"],
        "P-MPJPE": ev["metrics"]["p_mpjpe"]["frame_wise"],
    }
    return ev, summary | {f"MPJPE_{a}": float(v) for a, v in zip("XYZ", axis, strict=True)}


def crop_keypoints_figure(
    images: np.ndarray,
    pred_kp: np.ndarray,
    true_kp: np.ndarray,
    *,
    stride: float,
    layout: str | skeleton.Layout = _H36M17,
    title: str = "",
) -> Any:
    """Crops in a 2-row grid with the predicted skeleton (white) and the true joints (black
    dots); keypoints in heatmap pixels of output stride ``stride``."""
    from jpose import viz

    lay = skeleton.get_layout(layout)
    plt = viz.pyplot()
    n = len(images)
    fig, axes = plt.subplots(2, max(1, n // 2), figsize=(2 * max(1, n // 2), 4.2))
    for i, ax in enumerate(np.ravel(axes)[:n]):
        ax.imshow(images[i])
        px = (pred_kp[i] + 0.5) * stride - 0.5
        gt = (true_kp[i] + 0.5) * stride - 0.5
        for a, b in lay.bones:
            ax.plot(px[[a, b], 0], px[[a, b], 1], "w-", lw=1)
        ax.plot(gt[:, 0], gt[:, 1], "k.", ms=2)
        ax.set_axis_off()
    fig.suptitle(title)
    return fig
