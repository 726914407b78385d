"""Shared test fixtures: a reference pose and a jitted gradient check."""

import jax
import jax.numpy as jnp
import numpy as np
from jax.test_util import check_grads

GRAD_TOLERANCES = dict(order=1, modes=("rev",), atol=1e-2, rtol=1e-2, eps=1e-3)

# A standing Human3.6M-17 pose, pelvis at the origin (metres; camera frame: x right, y down,
# z forward). Bone lengths are typical adult values (thigh 0.45 m, shin 0.43 m, ...).
STANDING_H36M17 = np.array(
    [
        [0.00, 0.00, 0.00], [-0.13, 0.00, 0.00], [-0.14, 0.45, 0.02], [-0.15, 0.88, 0.05],
        [0.13, 0.00, 0.00], [0.14, 0.45, -0.01], [0.15, 0.88, 0.04], [0.00, -0.23, 0.01],
        [0.00, -0.48, 0.02], [0.00, -0.58, -0.05], [0.00, -0.68, 0.00], [0.16, -0.45, 0.02],
        [0.20, -0.20, 0.05], [0.22, 0.03, 0.10], [-0.16, -0.45, 0.02], [-0.21, -0.20, 0.03],
        [-0.23, 0.02, -0.05],
    ],
    np.float32,
)  # fmt: skip


def procrustes_error_np(p, t):
    """Mean joint error of ``p [J, 3]`` after its similarity alignment to ``t`` (Umeyama with the
    reflection fix, numpy float64): an independent reference for P-MPJPE."""
    p0, t0 = p - p.mean(0), t - t.mean(0)
    u, s, vt = np.linalg.svd(p0.T @ t0)
    d = np.sign(np.linalg.det(u @ vt))
    s[-1] *= d
    u[:, -1] *= d
    scale = s.sum() / (p0**2).sum()
    return np.linalg.norm(scale * p0 @ (u @ vt) - t0, axis=-1).mean()


def check_grads_jit(fn, args, **kwargs):
    """jax.test_util.check_grads on the jitted function (one compilation instead of op-by-op)."""
    check_grads(jax.jit(fn), args, **kwargs)


def finite_value_and_grad(fn, *args):
    """Jitted value and gradients of ``sum(fn(*args))`` w.r.t. every argument, asserted finite."""
    vg = jax.value_and_grad(lambda *a: jnp.sum(fn(*a)), argnums=tuple(range(len(args))))
    v, g = jax.jit(vg)(*args)
    assert np.all(np.isfinite(v)), v
    for gi in g:
        assert np.all(np.isfinite(gi)), gi
    return v, g


def assert_restores_as_an_older_run(workdir, tmp_path, x, c, *, drop=("pipeline",), atol=1e-6):
    """A copy of ``workdir`` whose ``model.json`` lacks ``drop`` (as runs written before those
    fields existed) restores, through the method's own ``load_predictor`` (the registry), the
    same predictions as the work directory itself (its declared pipeline)."""
    import json
    import shutil

    from jpose import inference

    want = inference.load_predictor(workdir)
    old = tmp_path / "older_run"
    shutil.copytree(workdir, old)
    info = json.loads((old / "model.json").read_text())
    assert "pipeline" in info and all(k in info for k in drop)
    (old / "model.json").write_text(json.dumps({k: v for k, v in info.items() if k not in drop}))
    got = inference.load_predictor(old)
    assert got.experiment == want.experiment and got.description == want.description
    assert dict(got.checkpoint) == dict(want.checkpoint)
    a, b = want.predict(x, c), got.predict(x, c)
    assert set(a) == set(b)
    for k in a:
        np.testing.assert_allclose(np.asarray(b[k]), np.asarray(a[k]), atol=atol)


def assert_run_timings(results, stages):
    """Every method's ``results.json`` has the same layout of times: ``stages`` (per stage:
    steps and wall time) and ``timings`` (``train_wall_s`` <= ``total_wall_s``)."""
    assert list(results["stages"]) == list(stages)
    for info in results["stages"].values():
        assert info["steps"] >= 0 and 0 <= info["wall_s"] < 3600
    t = results["timings"]
    assert 0 <= t["train_wall_s"] <= t["total_wall_s"] < 3600
    rounded = sum(i["wall_s"] for i in results["stages"].values())  # each to 0.01 s
    assert t["train_wall_s"] >= rounded - 0.005 * len(results["stages"]) - 1e-9
