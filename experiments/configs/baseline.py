r"""Supervised baseline: the Martinez et al. (ICCV 2017) residual lifter on 2D-3D pairs, the
reference of every weakly supervised method.

Runtimes: 2-core development CPU; seeds at equal budget: ``python -m experiments.reproduce``.

* default: the embedded synthetic demo (no files), 1500 steps, width 512; a few minutes::

    python -m experiments.baseline --workdir=/tmp/baseline_demo

* ``smoke``: tiny network, a few steps (the test suite); seconds.
* ``cmu``: CMU mocap through virtual cameras, 3,000 steps at batch 1024, width 1024; 359 s of
  training (idle machine, 2026-12-02). Expected: CMU test P1 49.6 / P2 39.0 mm frame-wise; an
  independent plain JAX lifter: 55.3 / 42.5 at the same budget (benchmarks/RESULTS.md)::

    python -m experiments.baseline --workdir=/tmp/baseline_cmu \
        --config=experiments/configs/baseline.py:cmu

* ``h36m``: Human3.6M (``--config.data.h36m.dir``, ``.source``), Martinez's schedule; GPU
  hours, not run here. Expected: P1 ~45 mm with GT 2D (paper: 45.5 mm). The accuracy
  benchmark's CPU budget: ``--config.train.batch_size=1024 --config.stages.lifter.steps=3000
  --config.train.steps_per_block=100 --config.stages.lifter.decay_epochs=0.25`` (a plain JAX
  lifter: P1 45.5 / P2 38.0 mm).
"""

from __future__ import annotations

import ml_collections

from experiments.configs import data as shared


def get_config(preset: str = "") -> ml_collections.ConfigDict:
    """The baseline config; ``preset`` in ``"" | smoke | cmu | h36m``."""
    c = shared.base_config("baseline", data=shared.data_config())

    c.model = ml_collections.ConfigDict()
    c.model.width = 1024  # Martinez et al.: 1024
    c.model.num_blocks = 2  # residual blocks (Martinez et al.: 2)
    c.model.dropout = 0.5  # Martinez et al.: 0.5
    c.model.max_norm = 0.0  # Martinez's max-norm constraint on kernels (0 = off)
    c.model.standardize = True  # z-score 2D inputs and 3D outputs with training stats (Martinez)
    c.model.zero_init_output = True  # output layer starts at 0 = the training mean pose (not in
    # Martinez; measured: P1 58 vs 69 mm after 500 steps on CMU, see BUILD_NOTES)

    c.train = shared.train_config(validation=True, steps_per_block=100)  # batch 256 (Martinez: 64)
    c.stages = ml_collections.ConfigDict()
    st = c.stages.lifter = shared.stage_config(0, 200.0)  # the single stage; Martinez: 200 epochs
    st.kind = "exponential"  # learning rate: Martinez's lr * 0.96 ** (step / 100k)
    st.decay_rate = 0.96
    st.decay_epochs = 1.0  # set per preset (in epochs of the training split)

    c.eval = shared.eval_config()

    if preset in ("", "default", "synthetic"):
        c.model.width = 512  # CPU-sized (Martinez et al.: 1024)
        st.steps = 1500
    elif preset == "smoke":
        shared.smoke(c, steps=4, eval_batch=16, batch_size=8)
        c.model.update(width=32, num_blocks=1)
    elif preset == "cmu":
        c.data = shared.data_config("cmu")
        c.train.batch_size = 1024  # the accuracy benchmark's budget (benchmarks/bench_accuracy)
        st.steps = 3000  # ~100 epochs of the 30,808 CMU training pairs
        st.decay_epochs = 10.0
    elif preset == "h36m":
        c.data = shared.data_config("h36m")
        c.train.update(batch_size=64, steps_per_block=500, checkpoint_every=50000)
        st.decay_epochs = 1e5 / (1559752 / 64)  # 100k steps at batch 64
        c.eval.batch_size = 8192
    else:
        raise ValueError(f"unknown baseline preset {preset!r}; expected '', smoke, cmu or h36m")
    return c
