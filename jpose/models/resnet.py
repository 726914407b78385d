"""ResNet backbone, deconvolution heatmap head and WSP's relative-depth and 3D heads.

Axes and units: images ``[B, H, W, 3]`` (NHWC, normalised intensities); backbone output stride
32 (``stem="imagenet"``) or ``2**(num_stages)`` (``stem="small"``); the deconvolution head
upsamples by ``2**num_deconv``; heatmaps ``[B, J, h, w]`` and features ``[B, h, w, D]`` share the
heatmap grid. Person boxes ``[B, K, 4]`` are ``(u0, v0, u1, v1)`` in heatmap pixels (pixel
``(y, x)`` has its centre at ``(u, v) = (x, y)``).

Networks (WSP, Qiu et al., sec. 3.4-3.5, following Xiao et al.'s "Simple baselines" and Sun et
al.'s integral regression / Moon et al.'s PoseNet):

* :class:`ResNet` -- He et al. 2016: basic blocks (ResNet-18/34) or bottlenecks (ResNet-50/101);
  depth and widths configurable (:data:`RESNET_STAGES`; ``"small"`` stem for rendered 64 px
  images).
* :class:`DeconvHead` -- 3 x (deconv 4x4 stride 2 -> BN -> ReLU) (WSP: "the 2D keypoints
  heatmap head predict the keypoints heatmap by 3 deconvolution layers"), then a 1x1 conv to J
  heatmaps; the last deconvolution features are ``F_d`` of eq. 5.
* :func:`heatmap_masked_pool` -- eq. 5 ``F^j = F_d (x) repeat(M^j, D)`` pooled inside each
  person's box -> ``[B, K, J, D]``.
* :class:`RelativeDepthHead` -- eq. 6 ``R^j_AB = f(F_s(P_A^j) (+) F_s(P_B^j))``, a fully
  connected network from ``2 D`` to one logit per joint.
* :class:`WSPNet` -- backbone + deconvolution head with the 2D heatmap head and the
  relative-depth head (pre-training, eq. 8-10) and/or the 3D heatmap head (fine-tuning, eqs.
  11-12, integral regression by :func:`jpose.losses.soft_argmax_3d`). Parameter names
  ``backbone`` / ``deconv`` are shared by both heads, so pre-trained weights transfer
  (:func:`transfer_params`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jpose.losses import soft_argmax_3d
from jpose.models.core import Model

__all__ = [
    "RESNET_STAGES",
    "ResNet",
    "DeconvHead",
    "RelativeDepthHead",
    "WSPNet",
    "heatmap_masked_pool",
    "box_masks",
    "wsp_net",
    "heatmap_stride",
    "transfer_params",
    "load_flat_weights",
]

#: ``depth -> (stage sizes, bottleneck)`` of He et al. 2016, Table 1 (10 is a small variant).
RESNET_STAGES: dict[int, tuple[tuple[int, ...], bool]] = {
    10: ((1, 1, 1, 1), False),
    18: ((2, 2, 2, 2), False),
    34: ((3, 4, 6, 3), False),
    50: ((3, 4, 6, 3), True),
    101: ((3, 4, 23, 3), True),
    152: ((3, 8, 36, 3), True),
}


def _bn(train: bool, axis_name: str | None, momentum: float, name: str | None = None, **kw):
    return nn.BatchNorm(
        use_running_average=not train, momentum=momentum, axis_name=axis_name, name=name, **kw
    )


class _Block(nn.Module):
    features: int
    strides: int
    bottleneck: bool
    bn_momentum: float = 0.9
    axis_name: str | None = None

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        bn = lambda name, **kw: _bn(train, self.axis_name, self.bn_momentum, name, **kw)  # noqa: E731
        s = (self.strides, self.strides)
        out_ch = self.features * (4 if self.bottleneck else 1)
        if self.bottleneck:
            h = nn.relu(bn("bn0")(nn.Conv(self.features, (1, 1), use_bias=False, name="conv0")(x)))
            h = nn.Conv(self.features, (3, 3), s, padding="SAME", use_bias=False, name="conv1")(h)
            h = nn.relu(bn("bn1")(h))
            h = nn.Conv(out_ch, (1, 1), use_bias=False, name="conv2")(h)
            h = bn("bn2", scale_init=nn.initializers.zeros)(h)
        else:
            h = nn.Conv(self.features, (3, 3), s, padding="SAME", use_bias=False, name="conv0")(x)
            h = nn.relu(bn("bn0")(h))
            h = nn.Conv(self.features, (3, 3), padding="SAME", use_bias=False, name="conv1")(h)
            h = bn("bn1", scale_init=nn.initializers.zeros)(h)
        if x.shape[-1] != out_ch or self.strides != 1:
            x = nn.Conv(out_ch, (1, 1), s, use_bias=False, name="proj")(x)
            x = bn("proj_bn")(x)
        return nn.relu(x + h)


class ResNet(nn.Module):
    """ResNet feature extractor (no classifier).

    Attributes:
      stage_sizes: blocks per stage (e.g. ``(3, 4, 6, 3)``).
      bottleneck: bottleneck blocks (ResNet-50 and deeper) or basic blocks.
      width: channels of the first stage (64 in He et al.); doubles every stage.
      stem: ``"imagenet"`` (conv7x7/2 + maxpool/2: stride 32 with 4 stages) or ``"small"``
        (conv3x3/1: stride ``2**(len(stage_sizes) - 1)``; for tiny rendered images).
      bn_momentum, axis_name: batch norm.
    """

    stage_sizes: tuple[int, ...] = (3, 4, 6, 3)
    bottleneck: bool = True
    width: int = 64
    stem: str = "imagenet"
    bn_momentum: float = 0.9
    axis_name: str | None = None

    @nn.compact
    def __call__(self, images: jax.Array, *, train: bool) -> jax.Array:
        """``[B, H, W, 3] -> [B, H/stride, W/stride, C]``."""
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"images must be [B, H, W, 3], got {images.shape}")
        if self.stem not in ("imagenet", "small"):
            raise ValueError(f"stem must be 'imagenet' or 'small', got {self.stem!r}")
        big = self.stem == "imagenet"  # conv7x7/2 + maxpool/2, or conv3x3/1
        x = nn.Conv(self.width, (7, 7) if big else (3, 3), (2, 2) if big else (1, 1),
                    padding="SAME", use_bias=False, name="stem_conv")(images)  # fmt: skip
        x = nn.relu(_bn(train, self.axis_name, self.bn_momentum, "stem_bn")(x))
        if big:
            x = nn.max_pool(x, (3, 3), strides=(2, 2), padding="SAME")
        for i, n in enumerate(self.stage_sizes):
            for j in range(n):
                x = _Block(
                    self.width * 2**i,
                    strides=2 if (i > 0 and j == 0) else 1,
                    bottleneck=self.bottleneck,
                    bn_momentum=self.bn_momentum,
                    axis_name=self.axis_name,
                    name=f"stage{i}_block{j}",
                )(x, train=train)
        return x


class DeconvHead(nn.Module):
    """``num_layers`` x (ConvTranspose 4x4 stride 2 -> BN -> ReLU) (Xiao et al. 2018; WSP).

    Attributes:
      num_layers: deconvolution layers (3 in WSP).
      features: channels D of every layer (256 in Xiao et al.).
    """

    num_layers: int = 3
    features: int = 256
    bn_momentum: float = 0.9
    axis_name: str | None = None

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        """``[B, h, w, C] -> [B, h * 2**L, w * 2**L, D]`` (the features ``F_d`` of eq. 5)."""
        for i in range(self.num_layers):
            x = nn.ConvTranspose(self.features, (4, 4), strides=(2, 2), padding="SAME",
                                 use_bias=False, name=f"deconv{i}")(x)  # fmt: skip
            x = nn.relu(_bn(train, self.axis_name, self.bn_momentum, f"bn{i}")(x))
        return x


def box_masks(boxes: jax.Array, *, height: int, width: int) -> jax.Array:
    """Binary masks of pixels whose centres lie in the boxes (inclusive bounds).

    Args:
      boxes: ``[..., K, 4]`` ``(u0, v0, u1, v1)`` in heatmap pixels.
      height: h.
      width: w.

    Returns:
      ``[..., K, h, w]`` float {0, 1}.
    """
    boxes = jnp.asarray(boxes)
    if boxes.shape[-1] != 4:
        raise ValueError(f"boxes must be [..., K, 4] (u0, v0, u1, v1), got {boxes.shape}")
    xs = jnp.arange(width, dtype=boxes.dtype)
    ys = jnp.arange(height, dtype=boxes.dtype)
    in_x = (xs >= boxes[..., 0:1]) & (xs <= boxes[..., 2:3])  # [..., K, w]
    in_y = (ys >= boxes[..., 1:2]) & (ys <= boxes[..., 3:4])  # [..., K, h]
    return (in_y[..., :, None] & in_x[..., None, :]).astype(boxes.dtype)


def heatmap_masked_pool(
    features: jax.Array, heatmaps: jax.Array, boxes: jax.Array, *, normalize: str = "box"
) -> jax.Array:
    """Heatmap-masked features pooled inside each person's box, WSP eq. 5.

    ``F^j = F_d (x) repeat(M^j, D)``, then average pooling of ``F^j`` over the pixels of person
    k's box: ``out[k, j, :] = sum_{p in box_k} M^j(p) F_d(p) / Z``.

    Notes:
      The paper says "extracted into a vector of size D by the pooling layer within the bounding
      box"; ``normalize="box"`` reads it as average pooling (``Z`` = number of pixels in the
      box), ``"heatmap"`` divides by ``sum_{p in box} M^j(p)`` instead (a heatmap-weighted mean,
      invariant to the heatmap's scale), ``"none"`` sums. Empty boxes give zeros.

    Args:
      features: ``[..., h, w, D]`` deep features ``F_d``.
      heatmaps: ``[..., J, h, w]`` predicted heatmaps ``M``.
      boxes: ``[..., K, 4]`` person boxes in heatmap pixels.
      normalize: ``"box"``, ``"heatmap"`` or ``"none"``.

    Returns:
      ``[..., K, J, D]`` pooled keypoint features.
    """
    f, m = jnp.asarray(features), jnp.asarray(heatmaps)
    if f.ndim < 3 or m.ndim < 3 or f.shape[-3:-1] != m.shape[-2:]:
        raise ValueError(
            f"features [..., h, w, D] and heatmaps [..., J, h, w] must share (h, w); got "
            f"{f.shape} and {m.shape}"
        )
    h, w = m.shape[-2:]
    masks = box_masks(jnp.asarray(boxes, f.dtype), height=h, width=w)  # [..., K, h, w]
    pooled = jnp.einsum("...khw,...jhw,...hwd->...kjd", masks, m, f)
    if normalize == "box":
        z = jnp.sum(masks, axis=(-2, -1))[..., :, None, None]
    elif normalize == "heatmap":
        z = jnp.einsum("...khw,...jhw->...kj", masks, m)[..., None]
    elif normalize == "none":
        return pooled
    else:
        raise ValueError(f"normalize must be 'box', 'heatmap' or 'none', got {normalize!r}")
    safe = jnp.where(jnp.abs(z) > 1e-6, z, 1.0)
    return jnp.where(jnp.abs(z) > 1e-6, pooled / safe, 0.0)


class RelativeDepthHead(nn.Module):
    """Pairwise relative-depth classifier ``f`` of WSP eq. 6 (input ``2 D``, output 1 per joint).

    Attributes:
      hidden: widths of the hidden dense layers (ReLU).
    """

    hidden: Sequence[int] = (256,)

    @nn.compact
    def __call__(self, feat_a: jax.Array, feat_b: jax.Array) -> jax.Array:
        """``[..., J, D], [..., J, D] -> [..., J]`` logits that A's joint is nearer."""
        x = jnp.concatenate([feat_a, feat_b], axis=-1)
        for i, n in enumerate(self.hidden):
            x = nn.relu(nn.Dense(n, name=f"dense{i}")(x))
        return nn.Dense(1, name="out")(x)[..., 0]


class WSPNet(nn.Module):
    """WSP's image network (Qiu et al., Fig. 2): ResNet + deconvolution head + task heads.

    Attributes:
      num_joints: J.
      resnet_depth: key of :data:`RESNET_STAGES` (50 for real images, 10 / 18 for rendered).
      width: first-stage channels of the ResNet.
      stem: ResNet stem (``"imagenet"`` or ``"small"``).
      deconv_layers, deconv_features: the deconvolution head (3 x 256 in WSP).
      heads: any of ``"heatmap"`` (2D, eq. 10), ``"relative_depth"`` (eqs. 5-6, needs boxes and
        pairs), ``"heatmap3d"`` (eq. 11).
      depth_bins: depth resolution of the 3D heatmaps (64 in Sun et al.).
      pool_normalize: see :func:`heatmap_masked_pool`.
      rd_hidden: hidden widths of the relative-depth head.
      bn_momentum, axis_name: batch norm.
    """

    num_joints: int = 17
    resnet_depth: int = 50
    width: int = 64
    stem: str = "imagenet"
    deconv_layers: int = 3
    deconv_features: int = 256
    heads: tuple[str, ...] = ("heatmap", "relative_depth")
    depth_bins: int = 64
    pool_normalize: str = "box"
    rd_hidden: tuple[int, ...] = (256,)
    bn_momentum: float = 0.9
    axis_name: str | None = None

    @nn.compact
    def __call__(
        self,
        images: jax.Array,
        boxes: jax.Array | None = None,
        pairs: jax.Array | None = None,
        *,
        train: bool,
    ) -> dict[str, jax.Array]:
        """Run the requested heads.

        Args:
          images: ``[B, H, W, 3]``.
          boxes: ``[B, K, 4]`` person boxes in heatmap pixels (``relative_depth``).
          pairs: ``[B, P, 2]`` int person indices (A, B) into the K boxes (``relative_depth``).
          train: batch-norm mode.

        Returns:
          dict with ``heatmaps [B, J, h, w]``, ``features [B, h, w, D]``; ``pooled [B, K, J, D]``
          and ``logits [B, P, J]`` (relative depth); ``heatmaps3d [B, J, depth_bins, h, w]`` and
          ``coords3d [B, J, 3]`` (voxel ``(x, y, z)``, eq. 11).
        """
        unknown = set(self.heads) - {"heatmap", "relative_depth", "heatmap3d"}
        if unknown:
            raise ValueError(f"unknown heads {sorted(unknown)}")
        if self.resnet_depth not in RESNET_STAGES:
            raise ValueError(f"resnet_depth must be one of {sorted(RESNET_STAGES)}")
        stages, bottleneck = RESNET_STAGES[self.resnet_depth]
        kw = dict(bn_momentum=self.bn_momentum, axis_name=self.axis_name)
        x = ResNet(stages, bottleneck, self.width, self.stem, **kw, name="backbone")(
            images, train=train
        )
        feats = DeconvHead(self.deconv_layers, self.deconv_features, **kw, name="deconv")(
            x, train=train
        )
        out: dict[str, jax.Array] = {"features": feats}
        if "heatmap" in self.heads or "relative_depth" in self.heads:
            hm = nn.Conv(self.num_joints, (1, 1), name="heatmap")(feats)
            out["heatmaps"] = hm.transpose(0, 3, 1, 2)
        if "relative_depth" in self.heads:
            if boxes is None or pairs is None:
                raise ValueError(
                    "the relative_depth head needs boxes [B, K, 4] and pairs [B, P, 2]"
                )
            pooled = heatmap_masked_pool(feats, out["heatmaps"], boxes,
                                         normalize=self.pool_normalize)  # fmt: skip
            out["pooled"] = pooled
            pairs = jnp.asarray(pairs, jnp.int32)
            take = jax.vmap(lambda p, i: p[i])  # [K, J, D], [P] -> [P, J, D]
            fa, fb = take(pooled, pairs[..., 0]), take(pooled, pairs[..., 1])
            out["logits"] = RelativeDepthHead(self.rd_hidden, name="relative_depth")(fa, fb)
        if "heatmap3d" in self.heads:
            b, h, w, _ = feats.shape
            hm3 = nn.Conv(self.num_joints * self.depth_bins, (1, 1), name="heatmap3d")(feats)
            hm3 = hm3.reshape(b, h, w, self.num_joints, self.depth_bins).transpose(0, 3, 4, 1, 2)
            out["heatmaps3d"] = hm3
            out["coords3d"] = soft_argmax_3d(hm3)
        return out


def wsp_net(
    *,
    num_joints: int = 17,
    resnet_depth: int = 50,
    heads: Sequence[str] = ("heatmap", "relative_depth"),
    **kwargs: Any,
) -> Model:
    """:class:`WSPNet` as a :class:`Model`; ``apply(variables, images, boxes, pairs, train=...)``.

    Returns:
      The model.
    """
    module = WSPNet(num_joints=num_joints, resnet_depth=resnet_depth, heads=tuple(heads), **kwargs)
    return Model(module, name=f"wsp_resnet{resnet_depth}")


def heatmap_stride(*, resnet_depth: int, stem: str, deconv_layers: int) -> int:
    """Input pixels per heatmap pixel of :class:`WSPNet`: the backbone's stride (:class:`ResNet`)
    divided by the deconvolution head's upsampling ``2**deconv_layers``.

    Raises:
      ValueError: the backbone stride is not a multiple of the upsampling.
    """
    stages = len(RESNET_STAGES[int(resnet_depth)][0])
    down = (4 if stem == "imagenet" else 1) * 2 ** (stages - 1)
    up = 2 ** int(deconv_layers)
    if down % up:
        raise ValueError(f"backbone stride {down} not divisible by deconvolution factor {up}")
    return down // up


def transfer_params(
    source: Mapping[str, Any],
    target: Mapping[str, Any],
    *,
    modules: Sequence[str] = ("backbone", "deconv"),
) -> dict[str, Any]:
    """Copy the named sub-trees (pre-trained backbone and deconvolution head) into ``target``.

    Works for ``params`` and ``batch_stats`` trees alike; shapes must match.

    Args:
      source: pre-trained variables sub-tree (e.g. ``variables["params"]``).
      target: freshly initialised tree of the fine-tuning network.
      modules: top-level names to copy.

    Returns:
      A new tree: ``target`` with ``modules`` replaced by ``source``'s.
    """
    out = dict(target)
    for name in modules:
        if name not in source or name not in target:
            raise ValueError(
                f"module {name!r} missing: source {list(source)}, target {list(target)}"
            )
        s_shapes = jax.tree_util.tree_map(jnp.shape, source[name])
        t_shapes = jax.tree_util.tree_map(jnp.shape, target[name])
        if s_shapes != t_shapes:
            raise ValueError(f"module {name!r}: parameter shapes differ between source and target")
        out[name] = source[name]
    return out


def load_flat_weights(
    flat: Mapping[str, Any],
    params: Mapping[str, Any],
    batch_stats: Mapping[str, Any],
    *,
    module: str = "backbone",
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Replace sub-tree ``module`` of ``params`` / ``batch_stats`` by weights given flat.

    The flat form is ``flax.traverse_util.flatten_dict({"params": ..., "batch_stats": ...},
    sep="/")`` of a :class:`ResNet` (e.g. ``"params/stem_conv/kernel"``,
    ``"batch_stats/stem_bn/mean"``): a user's ImageNet weights converted once to this layout
    (WSP, Qiu et al. Sec. 4: "ResNet pre-trained on ImageNet as the backbone"). Every variable of
    ``module`` must be present with its shape; extra entries (a classifier) are ignored and
    reported.

    Args:
      flat: ``{"params/<path>" | "batch_stats/<path>": array}``.
      params: the network's parameters (``module`` at the top level).
      batch_stats: its batch-norm statistics.
      module: the top-level sub-tree the weights are for.

    Returns:
      ``(params, batch_stats, report)``; ``report`` has ``loaded`` (number of arrays) and
      ``ignored`` (sorted keys not used).

    Raises:
      ValueError: a variable missing from ``flat`` or with another shape (all are named).
    """
    import numpy as np
    from flax import traverse_util

    out, used, problems = {}, set(), []
    for collection, tree in (("params", params), ("batch_stats", batch_stats)):
        if module not in tree:
            out[collection] = dict(tree)
            continue
        target = traverse_util.flatten_dict(dict(tree[module]), sep="/")
        new = {}
        for path, value in target.items():
            key = f"{collection}/{path}"
            if key not in flat:
                problems.append(f"{key} missing")
                continue
            w = np.asarray(flat[key])
            if w.shape != tuple(value.shape):
                problems.append(f"{key} has shape {w.shape}, the network {tuple(value.shape)}")
                continue
            new[path] = jnp.asarray(w, value.dtype)
            used.add(key)
        out[collection] = {**tree, module: traverse_util.unflatten_dict(new, sep="/")}
    if problems:
        raise ValueError(
            f"weights for {module!r} do not match the network ({len(problems)} problems): "
            + "; ".join(problems[:10])
            + (" ..." if len(problems) > 10 else "")
        )
    report = {"loaded": len(used), "ignored": sorted(set(flat) - used)}
    return out["params"], out["batch_stats"], report
