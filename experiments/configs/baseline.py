r"""Supervised baseline: the Martinez et al. (ICCV 2017) residual lifter on 2D-3D pairs.

The reference every weakly supervised method is compared with (the CameraPose ablation
"without GAN augmentation" is the same network). Presets (``--config=<this file>:<preset>``);
runtimes on the 2-core development CPU. Each paper's comparison at equal budget over seeds:
``python -m experiments.reproduce`` (REPRODUCTION.md).

* default (no preset): the embedded synthetic demo, no files needed; 1500 steps, width 512::

    python -m experiments.baseline --workdir=/tmp/baseline_demo

  Runtime: a few minutes (estimated from the ``cmu`` run's 8 steps/s, not measured). Expected:
  the test MPJPE falls well below its initial value (a demonstration set: its numbers say
  nothing about real benchmarks).

* ``smoke``: a few steps of a tiny network on a tiny synthetic set (the test suite); seconds::

    python -m experiments.baseline --workdir=/tmp/baseline_smoke \
        --config=experiments/configs/baseline.py:smoke

* ``cmu``: CMU mocap through virtual Human3.6M-like cameras (``../shared/data``), evaluated on
  the CMU test split (per-sequence "actions"); 3,000 steps at batch 1024, width 1024 (Martinez's
  network; ~100 epochs of CMU)::

    python -m experiments.baseline --workdir=/tmp/baseline_cmu \
        --config=experiments/configs/baseline.py:cmu

  Runtime: 359 s of training on an idle machine (``python -m benchmarks.run --only accuracy``,
  2026-12-02); 526 s from start to results on the shared machine (commit eaf7070, the run of the
  ``lifter_cmu`` bundle in ``jpose/pretrained``). Expected: CMU test P1 49.6 / P2 39.0 mm
  (frame-wise means; action-wise 37.7 / 30.6 at eaf7070), where an independent plain JAX lifter
  reaches 55.3 / 42.5 mm at the same budget (benchmarks/RESULTS.md).

* ``h36m``: Human3.6M in VideoPose3D format, train S1/S5/S6/S7/S8, test S9 + S11, P1 / P2 per
  action (``--config.data.h36m.dir=/path/to/npz``; 2D source ``gt`` by default, e.g.
  ``--config.data.h36m.source=cpn_ft_h36m_dbb``); Martinez's schedule (batch 64, lr 1e-3 x 0.96
  every 100k steps, 200 epochs)::

    python -m experiments.baseline --workdir=/tmp/baseline_h36m \
        --config=experiments/configs/baseline.py:h36m --config.data.h36m.dir=/data/h36m

  Runtime: hours on a GPU, days on the CPU. Expected: P1 ~45 mm with GT 2D (Martinez et al.
  report 45.5 mm). The accuracy benchmark's CPU budget (not run here: no Human3.6M copy; about
  10 minutes of training on an idle machine, where a plain JAX lifter reached P1 45.5 / P2
  38.0 mm, issue 17)::

    python -m experiments.baseline --workdir=/tmp/baseline_h36m_cpu \
        --config=experiments/configs/baseline.py:h36m --config.data.h36m.dir=/data/h36m \
        --config.train.batch_size=1024 --config.stages.lifter.steps=3000 \
        --config.train.steps_per_block=100 --config.train.checkpoint_every=0 \
        --config.stages.lifter.decay_epochs=0.25

CLI overrides: ``--config.stages.lifter.steps=500 --config.model.width=256 ...``.
"""

from __future__ import annotations

import ml_collections

from experiments.configs.data import data_config, smoke_data, train_config


def get_config(preset: str = "") -> ml_collections.ConfigDict:
    """The baseline config; ``preset`` in ``"" | smoke | cmu | h36m``."""
    c = ml_collections.ConfigDict()
    c.experiment = "baseline"
    c.seed = 0  # base PRNG seed (parameters and batches)
    c.distributed = False  # multi-process pmap over jax.distributed (README "Multi-process")
    c.data = data_config("synthetic")

    c.model = ml_collections.ConfigDict()
    c.model.width = 1024  # Martinez et al.: 1024
    c.model.num_blocks = 2  # residual blocks (Martinez et al.: 2)
    c.model.dropout = 0.5  # Martinez et al.: 0.5
    c.model.max_norm = 0.0  # Martinez's max-norm constraint on kernels (0 = off)
    c.model.standardize = True  # z-score 2D inputs and 3D outputs with training stats (Martinez)
    c.model.zero_init_output = True  # output layer starts at 0 = the training mean pose (not in
    # Martinez; measured: P1 58 vs 69 mm after 500 steps on CMU, see BUILD_NOTES)

    c.train = train_config(steps_per_block=100)  # batch_size 256 (Martinez et al.: 64)
    c.train.val_fraction = 0.0  # share of train_3d held out as validation (0 = no validation)
    c.train.eval_every = 0  # steps between validations (multiple of K; 0 = end of training)
    c.train.select = "final"  # evaluated checkpoint: final | best (lowest validation MPJPE)
    c.stages = ml_collections.ConfigDict()
    st = c.stages.lifter = ml_collections.ConfigDict()  # the single stage (checkpoints/lifter)
    st.steps = 0  # total steps (> 0 overrides epochs)
    st.epochs = 200.0  # used when steps == 0 (Martinez et al.: 200)
    st.kind = "exponential"  # learning rate: Martinez's lr * 0.96 ** (step / 100k)
    st.lr = 1e-3
    st.decay_rate = 0.96
    st.decay_epochs = 1.0  # set per preset (in epochs of the training split)

    c.eval = ml_collections.ConfigDict()
    c.eval.batch_size = 4096  # evaluation batch (fixed: one compilation)
    c.eval.splits = ""  # comma-separated 3D splits ("" = every 3D non-train split)
    c.eval.action_key = ""  # label grouped as "action" ("" = action|pose_class|...)
    c.eval.figures = True  # write PNG figures (needs matplotlib)

    if preset in ("", "default", "synthetic"):
        c.model.width = 512  # CPU-sized (Martinez et al.: 1024)
        st.steps = 1500
    elif preset == "smoke":
        smoke_data(c.data)
        c.model.width = 32
        c.model.num_blocks = 1
        c.train.batch_size = 8
        st.steps = 4
        c.train.steps_per_block = 2
        c.eval.batch_size = 16
        c.eval.figures = False
    elif preset == "cmu":
        c.data = data_config("cmu")
        c.train.batch_size = 1024  # the accuracy benchmark's budget (benchmarks/bench_accuracy)
        st.steps = 3000  # ~100 epochs of the 30,808 CMU training pairs
        st.decay_epochs = 10.0
    elif preset == "h36m":
        c.data = data_config("h36m")
        c.train.batch_size = 64
        st.steps = 0
        st.epochs = 200.0
        c.train.steps_per_block = 500
        c.train.checkpoint_every = 50000
        st.decay_epochs = 1e5 / (1559752 / 64)  # 100k steps at batch 64
        c.eval.batch_size = 8192
    else:
        raise ValueError(f"unknown baseline preset {preset!r}; expected '', smoke, cmu or h36m")
    return c
