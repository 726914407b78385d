"""On-device batch sampling: determinism, resume at a step, epochs, pmap sharding, host iterator."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jpose.data import batching
from jpose.data.common import PoseDataset

N, B = 103, 8


@pytest.fixture(scope="module")
def data():
    x = np.arange(N, dtype=np.float32)
    return {"x": np.stack([x, -x], -1), "idx": np.arange(N, dtype=np.int32)}


def test_deterministic_and_resumable(data):
    key = jax.random.key(0)
    for mode in ("random", "epoch"):
        sampler = batching.BatchSampler(num_examples=N, batch_size=B, mode=mode)
        run = [np.asarray(sampler.indices(key, s)) for s in range(30)]
        # resuming at step 17 (fresh sampler, only the step number) gives the same batches
        resumed = batching.BatchSampler(num_examples=N, batch_size=B, mode=mode)
        for s in range(17, 30):
            np.testing.assert_array_equal(np.asarray(resumed.indices(key, s)), run[s])
        assert not np.array_equal(run[0], run[1])
        other = np.asarray(sampler.indices(jax.random.key(1), 0))
        assert not np.array_equal(other, run[0])
        assert all(((r >= 0) & (r < N)).all() for r in run)


def test_epoch_mode_visits_each_example_once(data):
    sampler = batching.BatchSampler(num_examples=N, batch_size=B, mode="epoch")
    key = jax.random.key(3)
    spe = sampler.steps_per_epoch
    assert spe == N // B
    for epoch in range(2):
        seen = np.concatenate(
            [np.asarray(sampler.indices(key, epoch * spe + s)) for s in range(spe)]
        )
        assert len(np.unique(seen)) == spe * B  # no repeats within an epoch
    e0 = np.asarray(sampler.indices(key, 0))
    e1 = np.asarray(sampler.indices(key, spe))
    assert not np.array_equal(e0, e1)  # a new permutation each epoch


def test_jit_gather_inside_step(data):
    sampler = batching.BatchSampler(num_examples=N, batch_size=B)
    dev = batching.device_put_dataset(data)
    key = jax.random.key(0)

    @jax.jit
    def step(d, step):
        batch = sampler(d, step, key)  # make_multi_step's sampler(data, step, key)
        return batch["x"].sum(), batch["idx"]

    total, idx = step(dev, jnp.int32(5))
    np.testing.assert_array_equal(idx, sampler.indices(key, 5))
    np.testing.assert_allclose(total, data["x"][np.asarray(idx)].sum())


def test_pmap_sharded_batch_equals_single_device_batch(data):
    n_dev = jax.local_device_count()
    assert n_dev == 4  # tests/conftest.py simulates 4 CPU devices
    sampler = batching.BatchSampler(num_examples=N, batch_size=B, axis_name="batch")
    single = batching.BatchSampler(num_examples=N, batch_size=B)
    replicated = batching.device_put_dataset(data, replicate=True)
    assert replicated["x"].shape == (n_dev, N, 2)
    key = jax.random.key(7)

    per_device = jax.pmap(lambda d, s: sampler(d, s, key), axis_name="batch", in_axes=(0, None))(
        replicated, 11
    )
    assert per_device["x"].shape == (n_dev, B // n_dev, 2)
    full = single.batch(batching.device_put_dataset(data), key, 11)
    for k in data:
        np.testing.assert_array_equal(np.asarray(per_device[k]).reshape(full[k].shape), full[k])
        np.testing.assert_array_equal(
            single.sharded_batch(data, key, 11, num_shards=n_dev)[k], per_device[k]
        )


def test_host_iterator_resume_and_devices(data):
    it = batching.HostBatchIterator(data, batch_size=B, seed=4, num_steps=40)
    batches = list(it)
    assert len(batches) == 40
    resumed = batching.HostBatchIterator(data, batch_size=B, seed=4, start_step=25, num_steps=40)
    for b, ref in zip(resumed, batches[25:]):
        np.testing.assert_array_equal(b["x"], ref["x"])
    spe = it.steps_per_epoch
    first = np.concatenate([b["idx"] for b in batches[:spe]])
    assert len(np.unique(first)) == spe * B
    np.testing.assert_array_equal(batches[3]["x"], data["x"][batches[3]["idx"]])
    sharded = next(iter(batching.HostBatchIterator(data, batch_size=B, seed=4, num_devices=4)))
    np.testing.assert_array_equal(sharded["x"].reshape(B, 2), batches[0]["x"])
    rnd = batching.HostBatchIterator(data, batch_size=B, seed=4, mode="random", start_step=3)
    np.testing.assert_array_equal(
        next(rnd)["idx"],
        next(batching.HostBatchIterator(data, batch_size=B, seed=4, mode="random", start_step=3))[
            "idx"
        ],
    )


def test_dataset_arrays_feed_the_sampler():
    conf = np.ones((6, 17), np.float32)
    pose = np.random.default_rng(0).normal(size=(6, 17, 3)).astype(np.float32)
    pose[..., 2] += 5
    ds = PoseDataset(name="t", confidence=conf, pose3d_cam=pose, pose2d_norm=pose[..., :2])
    arrays = ds.arrays()
    assert set(arrays) == {"confidence", "pose3d_cam", "pose2d_norm", "pose3d"}
    np.testing.assert_allclose(arrays["pose3d"][:, 0], 0.0)
    with pytest.raises(ValueError, match="batch_size"):
        batching.BatchSampler(num_examples=4, batch_size=8, mode="epoch")
    with pytest.raises(ValueError, match="different lengths"):
        batching.device_put_dataset({"a": np.zeros(3), "b": np.zeros(4)})


def test_keyed_permutation_is_a_bijection_and_changes_with_the_key():
    from jpose.data.batching import keyed_permutation

    for n in (1, 2, 3, 17, 1000, 4099):  # odd sizes exercise cycle walking
        perm = np.asarray(keyed_permutation(jax.random.key(3), jnp.arange(n), num_items=n))
        np.testing.assert_array_equal(np.sort(perm), np.arange(n))
    a = np.asarray(keyed_permutation(jax.random.key(0), jnp.arange(1000), num_items=1000))
    b = np.asarray(keyed_permutation(jax.random.key(1), jnp.arange(1000), num_items=1000))
    assert np.mean(a == b) < 0.05  # different epochs/keys give different orders
    assert abs(np.corrcoef(np.arange(1000), a)[0, 1]) < 0.1  # no visible order left
    with pytest.raises(ValueError, match="num_items"):
        keyed_permutation(jax.random.key(0), jnp.arange(3), num_items=0)
