"""Training losses of the image networks, composed from the terms of :mod:`jpose.losses`.

* Zhou et al. (ICCV 2017), stacked hourglass + depth regression
  (:func:`jpose.models.hourglass.stacked_hourglass`): :func:`zhou_image_loss` (eq. 4 = eq. 1 +
  eq. 2, with eq. 3 inside eq. 2) on a batch that mixes 3D-labelled and 2D-only images, term
  weights per stage from :func:`zhou_image_loss_weights` (sec. 3.4 schedule, Table 2 ablations).
* WSP (Qiu et al.), ResNet network (:func:`jpose.models.resnet.wsp_net`):
  :func:`wsp_pretrain_loss` (eqs. 8-10) and :func:`wsp_finetune_loss` (eq. 12).

Units: 2D in heatmap pixels; Zhou's depths in heatmap pixels
(:func:`jpose.data.image_targets.zhou_targets`), WSP's voxel coordinates in heatmap pixels and
depth bins (:func:`jpose.data.image_targets.wsp_finetune_arrays`).
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jpose import losses, skeleton
from jpose.models.relative_depth import select_joints

__all__ = ["zhou_image_loss_weights", "zhou_image_loss", "wsp_pretrain_loss", "wsp_finetune_loss"]


def zhou_image_loss_weights(ablation: str, *, stage: int, lambda_reg: float, lambda_geo: float
                            ) -> dict[str, jax.Array]:  # fmt: skip
    """Term weights of :func:`zhou_image_loss` for a stage of Zhou et al.'s schedule (sec. 3.4).

    Stage 1 trains the 2D module on the 2D-only images: every depth weight and ``hm_3d`` (the 2D
    loss of the 3D-labelled images) are 0. Stages 2-3 take
    :func:`jpose.losses.zhou_loss_weights` of the ablation (Table 2) with ``hm_3d = 1``. Every
    stage returns the same keys as float32 arrays, so one compiled step serves them all.

    Args:
      ablation: one of :data:`jpose.losses.ZHOU_ABLATIONS`.
      stage: 1, 2 or 3.
      lambda_reg: eq. 2 weight of the depth regression.
      lambda_geo: eq. 2 weight of the geometric loss (eq. 3).

    Returns:
      ``{"reg", "geo_2d", "geo_3d", "hm_3d"}`` float32 scalars.
    """
    if stage == 1:
        w = {"reg": 0.0, "geo_2d": 0.0, "geo_3d": 0.0, "hm_3d": 0.0}
    else:
        w = losses.zhou_loss_weights(
            ablation, stage=stage, lambda_reg=lambda_reg, lambda_geo=lambda_geo
        )
        w["hm_3d"] = 1.0
    return {k: jnp.asarray(v, jnp.float32) for k, v in w.items()}


def zhou_image_loss(
    heatmaps: ArrayLike,
    depth: ArrayLike,
    keypoints_2d: ArrayLike,
    visibility: ArrayLike,
    target_depth: ArrayLike,
    has_depth: ArrayLike,
    weights: Mapping[str, ArrayLike],
    *,
    canonical_lengths: ArrayLike,
    sigma: float,
    layout: str | skeleton.Layout = skeleton.H36M17,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Zhou et al. eq. 4 on a mixed batch: ``mean(L_2D) + mean(L_dep)``.

    ``L_2D`` (eq. 1, :func:`jpose.losses.zhou_heatmap_loss`): Gaussian targets, summed over the
    pixels, averaged over the visible joints and summed over the stacks (intermediate
    supervision); weighted by ``hm_3d`` on the 3D-labelled images. ``L_dep`` (eq. 2,
    :func:`jpose.losses.zhou_depth_loss`) on the root-relative predicted depth: ``reg`` times the
    squared depth error on the 3D-labelled images, ``geo_2d`` times ``L_geo`` (eq. 3, from the
    ground-truth 2D and the predicted depth) on the 2D-only ones, plus ``geo_3d`` times ``L_geo``
    on the 3D-labelled images (the "3D/w geo" ablation).

    Args:
      heatmaps: ``[B, S, J, h, w]`` heatmaps of the S stacks.
      depth: ``[B, J]`` predicted depths (heatmap pixels; made root-relative here).
      keypoints_2d: ``[B, J, 2]`` ground-truth 2D joints, heatmap pixels.
      visibility: ``[B, J]`` float joint visibility.
      target_depth: ``[B, J]`` root-relative depth targets (ignored where not ``has_depth``).
      has_depth: ``[B]`` bool, the 3D-labelled images.
      weights: :func:`zhou_image_loss_weights`.
      canonical_lengths: ``[bones]`` canonical bone lengths of eq. 3.
      sigma: Gaussian standard deviation, heatmap pixels.
      layout: joint layout.

    Returns:
      ``(loss, metrics)``: metrics ``l2d``, ``reg``, ``geo_3d``, ``geo_2d`` (unweighted means
      over the 3D-labelled / 2D-only images) and ``depth_rmse`` (heatmap pixels).
    """
    lay = skeleton.get_layout(layout)
    root, w, vis, kp = lay.root, weights, visibility, keypoints_2d
    canon = jnp.asarray(canonical_lengths, jnp.float32)
    per_joint = losses.zhou_heatmap_loss(heatmaps, kp[:, None], sigma=sigma,
                                         visibility=vis[:, None])  # fmt: skip
    n_vis = jnp.maximum(jnp.sum(vis, -1), 1.0)
    l2d = jnp.sum(jnp.sum(per_joint, -1) / n_vis[:, None], -1)  # eq. 1, stacks summed
    depth = depth - depth[:, root : root + 1]
    pose = jnp.concatenate([kp, depth[..., None]], -1)
    geo = losses.zhou_geometric_loss(pose, canon, layout=lay, visibility=vis)
    reg = jnp.sum(jnp.square(depth - target_depth), -1)
    is3 = has_depth.astype(jnp.float32)
    n3f, n2f = jnp.maximum(jnp.sum(is3), 1.0), jnp.maximum(jnp.sum(1 - is3), 1.0)
    reg_m = jnp.sum(is3 * reg) / n3f
    geo3_m = jnp.sum(is3 * geo) / n3f
    geo2_m = jnp.sum((1 - is3) * geo) / n2f
    # eq. 2 via the library: per example lambda_reg * reg (3D) or lambda_geo * geo (2D)
    ldep = losses.zhou_depth_loss(
        depth, target_depth, kp, has_depth, canon, layout=lay, lambda_reg=1.0, lambda_geo=1.0,
        visibility=vis,
    )  # fmt: skip
    ldep = jnp.where(has_depth, w["reg"] * ldep, w["geo_2d"] * ldep) + w["geo_3d"] * is3 * geo
    l2d = jnp.where(has_depth, w["hm_3d"] * l2d, l2d)
    loss = jnp.mean(l2d) + jnp.mean(ldep)
    return loss, {"l2d": jnp.mean(l2d), "reg": reg_m, "geo_3d": geo3_m, "geo_2d": geo2_m,
                  "depth_rmse": jnp.sqrt(reg_m / lay.num_joints)}  # fmt: skip


def wsp_pretrain_loss(
    heatmaps: ArrayLike,
    logits: ArrayLike,
    keypoints_2d: ArrayLike,
    visibility: ArrayLike,
    labels: ArrayLike,
    label_valid: ArrayLike,
    key: jax.Array,
    *,
    alpha: float,
    num_selected: int,
    sigma: float,
    squared: bool,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """WSP pre-training loss, eq. 8: ``L = mean(L_hm) + alpha L_rd``.

    ``L_hm`` (eq. 10, :func:`jpose.losses.wsp_heatmap_loss`) per image on the J heatmaps whose
    target is the per-pixel maximum of every visible person's Gaussian (one map per joint for all
    the people, as the network predicts it). ``L_rd`` (eq. 9,
    :func:`jpose.losses.wsp_relative_depth_loss`) over the valid ordered pairs, each averaged
    over ``num_selected`` of the J joints drawn at random per pair (sec. 3.4.1: N < J).

    Args:
      heatmaps: ``[B, J, h, w]`` predicted heatmaps.
      logits: ``[B, P, J]`` relative-depth logits of the pairs (eq. 6).
      keypoints_2d: ``[B, K, J, 2]`` joints of the K people, heatmap pixels.
      visibility: ``[B, K, J]`` float joint visibility.
      labels: ``[B, P, J]`` eq. 7 labels (1 = A nearer).
      label_valid: ``[B, P]`` pairs that enter ``L_rd``.
      key: PRNG key of the joint draw.
      alpha: eq. 8 weight of ``L_rd`` (50 in the paper).
      num_selected: N, joints per pair (<= 0: all J; :func:`~jpose.models.relative_depth.
        select_joints`).
      sigma: Gaussian standard deviation, heatmap pixels.
      squared: squared L2 in eq. 10 (the paper: plain L2).

    Returns:
      ``(loss, {"l_hm", "l_rd", "rd_acc"})``; ``rd_acc`` on the selected joints.
    """
    h, w = heatmaps.shape[-2:]
    g = losses.render_gaussian_heatmaps(keypoints_2d, height=h, width=w, sigma=sigma)  # [B,K,J,h,w]
    target = jnp.max(g * visibility[..., None, None], axis=1)
    l_hm = losses.wsp_heatmap_loss(heatmaps, target, squared=squared)  # eq. 10, [B]
    selected = select_joints(key, jnp.ones(labels.shape, bool), num_selected)  # N of J
    valid = label_valid.astype(jnp.float32)
    rd = losses.wsp_relative_depth_loss(logits, labels, mask=selected)
    l_rd = jnp.sum(rd * valid) / jnp.maximum(jnp.sum(valid), 1.0)  # eq. 9
    pred = (logits > 0).astype(jnp.float32)
    m = valid[..., None] * selected
    acc = jnp.sum((pred == labels) * m) / jnp.maximum(jnp.sum(m), 1.0)
    loss = jnp.mean(l_hm) + alpha * l_rd  # eq. 8
    return loss, {"l_hm": jnp.mean(l_hm), "l_rd": l_rd, "rd_acc": acc}


def wsp_finetune_loss(
    coords: ArrayLike, target: ArrayLike
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """WSP fine-tuning loss, eq. 12 (:func:`jpose.losses.wsp_coordinate_loss`): the mean L1 error
    of the integral-regression coordinates (eq. 11).

    Args:
      coords: ``[B, J, 3]`` predicted voxel coordinates ``(u, v, z)``.
      target: ``[B, J, 3]`` targets (:func:`jpose.data.image_targets.wsp_finetune_arrays`).

    Returns:
      ``(loss, {"l3d", "err_uv", "err_z"})``: mean absolute errors in heatmap pixels / bins.
    """
    l3d = losses.wsp_coordinate_loss(coords, target)
    err = jnp.abs(coords - target).mean((0, 1))
    return jnp.mean(l3d), {"l3d": jnp.mean(l3d), "err_uv": err[:2].mean(), "err_z": err[2]}
