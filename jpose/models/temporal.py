"""Temporal dilated-convolution lifter (Pavllo et al., "3D human pose estimation in video with
temporal convolutions and semi-supervised training", CVPR 2019 -- VideoPose3D ``TemporalModel``).

Axes: ``...`` leading batch axes, ``T`` frames, ``J`` joints, ``C`` channels. Input
``[..., T, J, C]`` 2D keypoints, output ``[..., T - R + 1, J_out, 3]`` where the receptive field
``R = prod(filter_widths)`` (e.g. ``(3, 3, 3, 3, 3)`` -> 243 frames). Non-causal, no padding: feed
``T = R`` frames to predict the centre frame.

Architecture: Conv1D(width fw[0], no bias) -> BN -> ReLU -> Dropout, then for ``i >= 1``
a residual block ``x = x[crop] + Drop(ReLU(BN(Conv1x1(Drop(ReLU(BN(DilatedConv_fw[i](x))))))))``
with dilation ``prod(fw[:i])``, then a 1x1 conv with bias to ``J_out * 3``.
Parameters (17 joints, 1024 channels, fw=(3,)*5): 16,952,371 (VideoPose3D reports 16.95M).
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax

from jpose.models.core import ByteDropout, Model, batch_norm

__all__ = ["TemporalConvLifter", "temporal_lifter"]


class TemporalConvLifter(nn.Module):
    """VideoPose3D-style temporal lifter; see the module docstring.

    Attributes:
      num_joints_out: output joints.
      filter_widths: kernel widths per level; receptive field ``prod(filter_widths)``.
      channels: hidden channels (1024).
      dropout: dropout rate (0.25 in VideoPose3D).
      out_channels: per-joint output channels (3).
      bn_momentum: running-average decay (0.9 = PyTorch momentum 0.1).
      axis_name: batch-norm axis name for data parallelism.
    """

    num_joints_out: int
    filter_widths: tuple[int, ...] = (3, 3, 3, 3, 3)
    channels: int = 1024
    dropout: float = 0.25
    out_channels: int = 3
    bn_momentum: float = 0.9
    axis_name: str | None = None

    @property
    def receptive_field(self) -> int:
        """Number of input frames needed per output frame."""
        return math.prod(self.filter_widths)

    def _bn_relu_drop(self, h: jax.Array, *, train: bool, name: str) -> jax.Array:
        h = batch_norm(
            use_running_average=not train,
            momentum=self.bn_momentum,
            axis_name=self.axis_name,
            name=name,
        )(h)
        h = nn.relu(h)
        if self.dropout > 0:
            h = ByteDropout(self.dropout, deterministic=not train)(h)
        return h

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        """Lift ``x [..., T, J, C]`` to ``[..., T - R + 1, J_out, out_channels]``."""
        if x.ndim < 3:
            raise ValueError(f"TemporalConvLifter expects [..., T, J, C], got shape {x.shape}")
        if any(fw % 2 != 1 for fw in self.filter_widths):
            raise ValueError(f"filter widths must be odd, got {self.filter_widths}")
        lead, t = x.shape[:-3], x.shape[-3]
        if t < self.receptive_field:
            raise ValueError(f"need at least {self.receptive_field} frames, got T={t}")
        h = x.reshape(-1, t, x.shape[-2] * x.shape[-1])
        h = nn.Conv(
            self.channels, (self.filter_widths[0],), padding="VALID", use_bias=False, name="expand"
        )(h)
        h = self._bn_relu_drop(h, train=train, name="expand_bn")
        dilation = self.filter_widths[0]
        for i, fw in enumerate(self.filter_widths[1:]):
            pad = (fw - 1) * dilation // 2
            res = h[:, pad : h.shape[1] - pad]
            h = nn.Conv(
                self.channels,
                (fw,),
                kernel_dilation=(dilation,),
                padding="VALID",
                use_bias=False,
                name=f"conv{i}",
            )(h)
            h = self._bn_relu_drop(h, train=train, name=f"conv{i}_bn")
            h = nn.Conv(self.channels, (1,), use_bias=False, name=f"conv{i}_1x1")(h)
            h = res + self._bn_relu_drop(h, train=train, name=f"conv{i}_1x1_bn")
            dilation *= fw
        out = nn.Conv(self.num_joints_out * self.out_channels, (1,), name="shrink")(h)
        return out.reshape(*lead, out.shape[1], self.num_joints_out, self.out_channels)


def temporal_lifter(
    num_joints_out: int,
    *,
    filter_widths: tuple[int, ...] = (3, 3, 3, 3, 3),
    channels: int = 1024,
    dropout: float = 0.25,
) -> Model:
    """VideoPose3D-style temporal lifter as a :class:`Model` (see :class:`TemporalConvLifter`)."""
    return Model(
        TemporalConvLifter(
            num_joints_out, filter_widths=tuple(filter_widths), channels=channels, dropout=dropout
        ),
        name="temporal_lifter",
    )
