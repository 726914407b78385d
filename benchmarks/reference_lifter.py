"""An independent plain JAX + Flax + optax Martinez lifter: the yardstick for jpose's baseline.

Written from the paper (Martinez et al., "A simple yet effective baseline for 3d human pose
estimation", ICCV 2017, Sec. 3 and Fig. 1) without any jpose code: inputs and targets z-scored per
coordinate with training-set statistics, Dense(width) + [BN, ReLU, dropout] + residual blocks,
Adam with global-norm clipping, MSE in normalised units. Metrics are numpy (MPJPE and P-MPJPE
after a similarity Procrustes fit with the reflection fix, as in VideoPose3D's ``p_mpjpe``).

Arrays: ``x [N, J, 2]`` 2D inputs, ``y [N, J, 3]`` root-relative 3D targets in metres.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax


class PlainLifter(nn.Module):
    width: int = 1024
    blocks: int = 2
    dropout: float = 0.5
    out_dim: int = 51

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        def unit(h: jax.Array) -> jax.Array:
            h = nn.Dense(self.width)(h)
            h = nn.BatchNorm(use_running_average=not train, momentum=0.9)(h)
            return nn.Dropout(self.dropout, deterministic=not train)(nn.relu(h))

        h = unit(x)
        for _ in range(self.blocks):
            h = h + unit(unit(h))
        return nn.Dense(self.out_dim)(h)


def mpjpe_mm(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-example mean joint distance in mm (both root-relative, metres)."""
    return 1000.0 * np.linalg.norm(pred - gt, axis=-1).mean(-1)


def p_mpjpe_mm(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-example MPJPE after the best similarity transform of ``pred`` onto ``gt`` (mm)."""
    p = pred.astype(np.float64) - pred.mean(1, keepdims=True)
    g = gt.astype(np.float64) - gt.mean(1, keepdims=True)
    p_norm = np.linalg.norm(p, axis=(1, 2), keepdims=True)
    g_norm = np.linalg.norm(g, axis=(1, 2), keepdims=True)
    p, g = p / p_norm, g / g_norm
    u, s, vt = np.linalg.svd(np.einsum("nji,njk->nik", g, p))
    sign = np.sign(np.linalg.det(np.einsum("nij,njk->nik", u, vt)))
    s[:, -1] *= sign
    vt[:, -1] *= sign[:, None]
    rot = np.einsum("nij,njk->nik", u, vt)  # maps p onto g: g ~ p @ rot.T
    scale = s.sum(-1)[:, None, None]
    aligned = scale * np.einsum("njk,nik->nji", p, rot) * g_norm
    return 1000.0 * np.linalg.norm(aligned - g * g_norm, axis=-1).mean(-1)


def train_reference(
    x: np.ndarray,
    y: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    *,
    checkpoints: Iterable[int],
    batch_size: int = 1024,
    width: int = 1024,
    blocks: int = 2,
    dropout: float = 0.5,
    lr: float = 1e-3,
    clip: float = 1.0,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Train and return ``[{"step", "p1_mm", "p2_mm"}]`` at each checkpoint step."""
    n, j = x.shape[:2]
    xf, yf = x.reshape(n, -1), y.reshape(n, -1)
    x_mu, x_sd = xf.mean(0), xf.std(0) + 1e-8
    y_mu, y_sd = yf.mean(0), yf.std(0)
    y_sd = np.where(y_sd > 1e-8, y_sd, 1.0)  # the root: identically zero
    xs = jnp.asarray((xf - x_mu) / x_sd, jnp.float32)
    ys = jnp.asarray((yf - y_mu) / y_sd, jnp.float32)
    net = PlainLifter(width=width, blocks=blocks, dropout=dropout, out_dim=yf.shape[1])
    key = jax.random.key(seed)
    variables = net.init(key, xs[:2], train=False)
    params, stats = variables["params"], variables["batch_stats"]
    tx = optax.chain(optax.clip_by_global_norm(clip), optax.adam(lr))
    opt = tx.init(params)

    @jax.jit
    def step(params, stats, opt, i):
        k = jax.random.fold_in(key, i)
        idx = jax.random.randint(jax.random.fold_in(k, 1), (batch_size,), 0, n)

        def loss(p):
            out, upd = net.apply({"params": p, "batch_stats": stats}, xs[idx], train=True,
                                 rngs={"dropout": k}, mutable=["batch_stats"])  # fmt: skip
            return jnp.mean(jnp.square(out - ys[idx])), upd["batch_stats"]

        (_, stats), g = jax.value_and_grad(loss, has_aux=True)(params)
        upd, opt = tx.update(g, opt, params)
        return optax.apply_updates(params, upd), stats, opt

    @jax.jit
    def predict(params, stats, xt):
        return net.apply({"params": params, "batch_stats": stats}, xt, train=False)

    xt = jnp.asarray((x_test.reshape(len(x_test), -1) - x_mu) / x_sd, jnp.float32)
    out, i = [], 0
    for stop in sorted(checkpoints):
        while i < stop:
            params, stats, opt = step(params, stats, opt, i)
            i += 1
        pred = np.asarray(predict(params, stats, xt)) * y_sd + y_mu
        pred = pred.reshape(len(x_test), j, 3)
        pred = pred - pred[:, :1]
        out.append({"step": stop, "p1_mm": float(mpjpe_mm(pred, y_test).mean()),
                    "p2_mm": float(p_mpjpe_mm(pred, y_test).mean())})  # fmt: skip
    return out
