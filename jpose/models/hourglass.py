"""Stacked hourglass 2D module with Zhou et al.'s depth-regression module (ICCV 2017, Fig. 2).

Axes and units: images ``[B, H, W, 3]`` float (normalised intensities, NHWC as Flax convs),
heatmaps ``[B, J, H/4, W/4]`` (one map per joint, heatmap pixels), depths ``[B, J]`` (the unit
of the depth targets; Zhou et al. use the 2D heatmap unit, see
:func:`jpose.data.image_targets.zhou_targets`).

Architecture (Newell et al., "Stacked hourglass networks for human pose estimation", ECCV 2016,
and their public Torch code ``hg.lua``; Zhou et al. sec. 4.1.1 use the shallow variant:
``num_stacks = 2`` stacks with ``num_modules = 2`` residual modules at every step)::

    stem:   conv7x7/2 (F/4) -> BN -> ReLU -> Res(F/2) -> maxpool/2 -> Res(F/2) -> Res(F)
    stack s: hg = Hourglass(depth)(x); ll = num_modules x Res(F)(hg); ll = ReLU(BN(conv1x1(ll)))
             heatmaps_s = conv1x1_J(ll)
             x = x + conv1x1_F(ll) + conv1x1_F(heatmaps_s)          (after every stack)
    depth:  4 x (num_reg_modules x Res(F) -> maxpool/2) -> flatten -> Dense(J)

``Res(C)`` is the pre-activation bottleneck residual module (BN-ReLU-conv1x1(C/2)-BN-ReLU-
conv3x3(C/2)-BN-ReLU-conv1x1(C), skip conv1x1 when the channel count changes). An hourglass of
depth ``n`` is ``up = Res*(x); low = Res*(maxpool(x)); low = Hourglass(n-1)(low) or Res*(low);
low = Res*(low); out = up + upsample2(low)`` (``Res*`` = ``num_modules`` residual modules).

Depth-regression module: Zhou et al. feed "the 2D heat-maps and lower-layer image features,
summed" into "4 sequential residual & pooling modules" (sec. 3.3, 4.1.1); as in their public code
the input is the post-stack sum ``x + ll_ + heatmaps_`` of the last stack (intermediate features
plus the heatmaps mapped back to F channels). The flattened map is ``(H/64) x (W/64) x F``
(``4 x 4 x F`` for 256 x 256 inputs) and a dense layer regresses one depth per joint.

Parameter count (all convs with bias, BN with scale and bias): see
``tests/test_image_models.py`` for the hand formula.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jpose.models.core import Model
from jpose.models.resnet import _bn

__all__ = ["Residual", "Hourglass", "StackedHourglass", "heatmap_argmax", "stacked_hourglass"]


class Residual(nn.Module):
    """Pre-activation bottleneck residual module of Newell et al. (``Residual.lua``).

    Attributes:
      features: output channels C (the bottleneck has C/2).
      bn_momentum: running-average decay.
      axis_name: mapped axis for batch-norm statistics.
    """

    features: int
    bn_momentum: float = 0.9
    axis_name: str | None = None

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        """``[B, H, W, C_in] -> [B, H, W, C]``."""
        half = max(1, self.features // 2)
        h = x
        for i, (k, c) in enumerate(((1, half), (3, half), (1, self.features))):
            h = _bn(train, self.axis_name, self.bn_momentum, f"bn{i}")(h)
            h = nn.relu(h)
            h = nn.Conv(c, (k, k), padding="SAME", name=f"conv{i}")(h)
        skip = x
        if x.shape[-1] != self.features:
            skip = nn.Conv(self.features, (1, 1), name="skip")(x)
        return skip + h


class _ResStack(nn.Module):
    features: int
    num_modules: int
    bn_momentum: float = 0.9
    axis_name: str | None = None

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        for i in range(self.num_modules):
            x = Residual(self.features, self.bn_momentum, self.axis_name, name=f"res{i}")(
                x, train=train
            )
        return x


def _maxpool(x: jax.Array) -> jax.Array:
    return nn.max_pool(x, (2, 2), strides=(2, 2))


class Hourglass(nn.Module):
    """One hourglass of ``depth`` down/up-sampling steps (``hg.lua``'s ``hourglass``).

    Attributes:
      depth: number of resolution halvings (4 in Newell et al.: 64 -> 4).
      features: channels F.
      num_modules: residual modules per step.
    """

    depth: int
    features: int
    num_modules: int = 1
    bn_momentum: float = 0.9
    axis_name: str | None = None

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        """``[B, H, W, F] -> [B, H, W, F]`` (H, W divisible by ``2**depth``)."""
        kw = dict(bn_momentum=self.bn_momentum, axis_name=self.axis_name)
        up = _ResStack(self.features, self.num_modules, **kw, name="up")(x, train=train)
        low = _ResStack(self.features, self.num_modules, **kw, name="low1")(
            _maxpool(x), train=train
        )
        if self.depth > 1:
            low = Hourglass(self.depth - 1, self.features, self.num_modules, **kw, name="inner")(
                low, train=train
            )
        else:
            low = _ResStack(self.features, self.num_modules, **kw, name="low2")(low, train=train)
        low = _ResStack(self.features, self.num_modules, **kw, name="low3")(low, train=train)
        return up + jnp.repeat(jnp.repeat(low, 2, axis=1), 2, axis=2)  # nearest neighbour


class StackedHourglass(nn.Module):
    """Stacked hourglass + depth-regression module (Zhou et al. ICCV 2017, sec. 3.2-3.3).

    Attributes:
      num_joints: J.
      num_stacks: hourglass stacks (2 in Zhou et al.'s shallow variant; 8 in Newell et al.).
      num_modules: residual modules per hourglass step (2 in Zhou et al.).
      features: channels F (256 in Newell et al.).
      depth: down-sampling steps per hourglass (4 for 64 x 64 heatmaps).
      with_depth: add the depth-regression module.
      num_reg_modules: residual modules before each of the 4 poolings of the depth module.
      num_reg_pools: poolings of the depth module (4 in Zhou et al.).
      bn_momentum: running-average decay.
      axis_name: mapped axis for batch-norm statistics.
    """

    num_joints: int = 17
    num_stacks: int = 2
    num_modules: int = 2
    features: int = 256
    depth: int = 4
    with_depth: bool = True
    num_reg_modules: int = 1
    num_reg_pools: int = 4
    bn_momentum: float = 0.9
    axis_name: str | None = None

    @nn.compact
    def __call__(self, images: jax.Array, *, train: bool) -> dict[str, jax.Array]:
        """Heatmaps of every stack and the regressed depths.

        Args:
          images: ``[B, H, W, 3]`` normalised images (H, W divisible by ``4 * 2**depth`` and by
            ``4 * 2**num_reg_pools``).
          train: batch-norm mode.

        Returns:
          ``{"heatmaps": [B, num_stacks, J, H/4, W/4], "depth": [B, J]}`` (no ``depth`` without
          the depth module).
        """
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"images must be [B, H, W, 3], got {images.shape}")
        size = 4 * 2 ** max(self.depth, self.num_reg_pools if self.with_depth else 0)
        if images.shape[1] % size or images.shape[2] % size:
            raise ValueError(
                f"image height and width must be multiples of {size} for depth={self.depth}, "
                f"num_reg_pools={self.num_reg_pools}; got {images.shape[1:3]}"
            )
        f = self.features
        kw = dict(bn_momentum=self.bn_momentum, axis_name=self.axis_name)
        x = nn.Conv(max(1, f // 4), (7, 7), strides=(2, 2), padding="SAME", name="stem_conv")(
            images
        )
        x = nn.relu(_bn(train, self.axis_name, self.bn_momentum, "stem_bn")(x))
        x = Residual(max(1, f // 2), **kw, name="stem_res0")(x, train=train)
        x = _maxpool(x)
        x = Residual(max(1, f // 2), **kw, name="stem_res1")(x, train=train)
        x = Residual(f, **kw, name="stem_res2")(x, train=train)
        heatmaps = []
        for s in range(self.num_stacks):
            hg = Hourglass(self.depth, f, self.num_modules, **kw, name=f"hg{s}")(x, train=train)
            ll = _ResStack(f, self.num_modules, **kw, name=f"post{s}")(hg, train=train)
            ll = nn.Conv(f, (1, 1), name=f"lin{s}_conv")(ll)
            ll = nn.relu(_bn(train, self.axis_name, self.bn_momentum, f"lin{s}_bn")(ll))
            hm = nn.Conv(self.num_joints, (1, 1), name=f"heatmap{s}")(ll)
            heatmaps.append(hm)
            if s < self.num_stacks - 1 or self.with_depth:
                x = (
                    x
                    + nn.Conv(f, (1, 1), name=f"ll{s}")(ll)
                    + nn.Conv(f, (1, 1), name=f"hm_back{s}")(hm)
                )
        out = {"heatmaps": jnp.stack(heatmaps, 1).transpose(0, 1, 4, 2, 3)}
        if self.with_depth:
            r = x
            for i in range(self.num_reg_pools):
                r = _ResStack(f, self.num_reg_modules, **kw, name=f"reg{i}")(r, train=train)
                r = _maxpool(r)
            r = r.reshape(r.shape[0], -1)
            out["depth"] = nn.Dense(self.num_joints, name="reg_out")(r)
        return out


def stacked_hourglass(
    *,
    num_joints: int = 17,
    num_stacks: int = 2,
    num_modules: int = 2,
    features: int = 256,
    depth: int = 4,
    with_depth: bool = True,
    num_reg_modules: int = 1,
    num_reg_pools: int = 4,
    **kwargs: Any,
) -> Model:
    """Zhou et al.'s network (shallow stacked hourglass + depth regression) as a :class:`Model`.

    Defaults are the paper's (256 x 256 input, 64 x 64 heatmaps); for rendered 64 x 64 images
    use e.g. ``features=64, depth=2, num_reg_pools=4`` (16 x 16 heatmaps).

    Returns:
      ``Model`` whose ``apply(variables, images, train=...)`` returns
      ``{"heatmaps": [B, S, J, h, w], "depth": [B, J]}``.
    """
    module = StackedHourglass(
        num_joints=num_joints,
        num_stacks=num_stacks,
        num_modules=num_modules,
        features=features,
        depth=depth,
        with_depth=with_depth,
        num_reg_modules=num_reg_modules,
        num_reg_pools=num_reg_pools,
        **kwargs,
    )
    return Model(module, name="zhou_hourglass")


def heatmap_argmax(heatmaps: jax.Array) -> jax.Array:
    """Joint locations of heatmaps: the arg-max plus the quarter-pixel shift towards the larger
    neighbour of Newell et al. (ECCV 2016, Sec. 5 / their evaluation code).

    Args:
      heatmaps: ``[..., J, h, w]``.

    Returns:
      ``[..., J, 2]`` float32 ``(u, v)`` in heatmap pixels (x right, y down).
    """
    h, w = heatmaps.shape[-2:]
    flat = heatmaps.reshape(*heatmaps.shape[:-2], h * w)
    idx = jnp.argmax(flat, axis=-1)
    y, x = idx // w, idx % w

    def at(yy, xx):
        yy, xx = jnp.clip(yy, 0, h - 1), jnp.clip(xx, 0, w - 1)
        return jnp.take_along_axis(flat, (yy * w + xx)[..., None], axis=-1)[..., 0]

    dx = jnp.sign(at(y, x + 1) - at(y, x - 1)) * 0.25
    dy = jnp.sign(at(y + 1, x) - at(y - 1, x)) * 0.25
    return jnp.stack([x + dx, y + dy], axis=-1).astype(jnp.float32)
