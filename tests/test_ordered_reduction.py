"""Device-order reductions (issue 21): ``ordered_pmean`` is ``lax.pmean`` with a fixed order of
additions, and ``jpose.models.BatchNorm`` (used under data parallelism) computes what
``flax.linen.BatchNorm`` computes, with the same variables."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jpose.models import BatchNorm, ordered_pmean


def test_ordered_pmean_is_pmean():
    n = jax.local_device_count()
    x = jax.random.normal(jax.random.key(0), (n, 3, 5))
    got = jax.pmap(lambda v: ordered_pmean({"a": v}, "d"), axis_name="d")(x)["a"]
    want = jax.pmap(lambda v: jax.lax.pmean(v, "d"), axis_name="d")(x)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(got[0], got[-1])  # every device holds the same average


def test_batch_norm_matches_flax_under_pmap():
    n = jax.local_device_count()
    x = 3.0 + 2.0 * jax.random.normal(jax.random.key(1), (n, 8, 6))
    ours = BatchNorm(use_running_average=False, axis_name="d", momentum=0.9)
    ref = nn.BatchNorm(use_running_average=False, axis_name="d", momentum=0.9)
    variables = ref.init(jax.random.key(2), x[0])
    assert jax.tree.structure(ours.init(jax.random.key(2), x[0])) == jax.tree.structure(variables)

    def step(module):
        def f(v):
            return module.apply(variables, v, mutable=["batch_stats"])

        return jax.pmap(f, axis_name="d")(x)

    (y1, s1), (y2, s2) = step(ours), step(ref)
    np.testing.assert_allclose(y1, y2, atol=2e-5)
    for a, b in zip(jax.tree.leaves(s1), jax.tree.leaves(s2)):
        np.testing.assert_allclose(a, b, rtol=1e-5)
    flat = x.reshape(-1, 6)  # statistics of the global batch
    np.testing.assert_allclose(s1["batch_stats"]["mean"][0], 0.1 * flat.mean(0), rtol=1e-5)
    frozen = BatchNorm(use_running_average=True).apply(variables, x[0])
    np.testing.assert_allclose(frozen, x[0] / jnp.sqrt(1.0 + 1e-5), rtol=1e-6)
