r"""Zhou et al. (ICCV 2017) keypoint presets (``--config=experiments/configs/zhou.py:<preset>``).

Ablations (sec. 4.1.3, ``method.ablation``): ``3d``, ``3d+geo``, ``3d+2d``, ``3d+2d+geo`` (the
method). Runtimes on the 2-core development CPU; comparisons over seeds at equal budget:
``python -m experiments.reproduce`` (REPRODUCTION.md).

* default: the embedded synthetic demo, 1500 + 500 steps, width 512; a few minutes::

    python -m experiments.zhou --workdir=/tmp/zhou_demo

* ``smoke``: tiny network, a few steps per stage (the test suite); seconds.
* ``cmu``: CMU mocap 2D-3D + COCO train2017 2D-only, 1000 + 400 steps at batch 256, width 256;
  1-3 min per ablation. Expected (f94e43f, seed 0): action-wise MPJPE 75.3 mm and held-out
  COCO val symmetry 0.3271 with the geometric loss (``3d+2d+geo``) vs 75.3 mm and 0.3278
  without (``3d+2d``); over 3 seeds (REPRODUCTION.md) 0.3236 ± 0.0293 vs 0.3240 ± 0.0298: no
  measurable effect::

    python -m experiments.zhou --workdir=/tmp/zhou_cmu --config=experiments/configs/zhou.py:cmu \
        --config.method.ablation=3d+2d+geo

* ``h36m``: Human3.6M at 10 fps (``--config.data.h36m.dir``) + MPII / COCO 2D-only, the paper's
  200k + 40k iterations; GPU hours, not run here.
"""

from __future__ import annotations

import ml_collections

from experiments.configs.data import data_config, eval_config, smoke_data, train_config

ABLATIONS = ("3d", "3d+geo", "3d+2d", "3d+2d+geo")


def get_config(preset: str = "") -> ml_collections.ConfigDict:
    """The Zhou config; ``preset`` in ``"" | smoke | cmu | h36m``."""
    c = ml_collections.ConfigDict()
    c.experiment = "zhou"
    c.seed = 0
    c.distributed = False  # multi-process pmap over jax.distributed (README "Multi-process")
    c.data = data_config("synthetic")

    c.method = ml_collections.ConfigDict()
    c.method.ablation = "3d+2d+geo"  # 3d | 3d+geo | 3d+2d | 3d+2d+geo (sec. 4.1.3)
    c.method.lambda_reg = 0.1  # sec. 4.1.1
    c.method.lambda_geo = 0.01  # sec. 4.1.1 (0 in stage 2)
    # Regression unit: depth errors are measured in "heatmap pixels", taking the per-sample 2D
    # scale s (RMS joint-to-pelvis distance) as this many pixels (a person ~50 px tall in Zhou's
    # 64 x 64 heatmaps has s ~ 16 px), so lambda_reg / lambda_geo keep the paper's balance.
    c.method.scale_px = 16.0
    c.method.visibility_threshold = 0.5  # 2D joints with confidence above count as visible

    c.model = ml_collections.ConfigDict()
    c.model.width = 1024  # depth module: residual MLP (the paper: a half hourglass on images)
    c.model.num_blocks = 2
    c.model.dropout = 0.0
    c.model.dtype = "float32"  # compute: float32 | bfloat16 (params, Adam stay float32)

    # batch_size: global batch of the 3d+2d* ablations (half 2D-3D, half 2D-only); every
    # ablation draws the same batch_size // 2 2D-3D samples per step (3d / 3d+geo: no 2D half)
    c.train = train_config(batch_size=256, steps_per_block=100, clip_norm=0.0)
    c.train.val_fraction = 0.0  # share of train_3d held out as validation (0 = no validation)
    c.train.eval_every = 0  # steps between validations (multiple of K; 0 = end of each stage)
    c.train.select = "final"  # evaluated checkpoint: final | best (lowest validation MPJPE)
    c.train.adam_eps = 1e-8  # Adam epsilon (optax default; tests/test_distributed.py raises it)
    c.stages = ml_collections.ConfigDict()
    c.stages.stage2 = ml_collections.ConfigDict()
    c.stages.stage2.steps = 1500  # paper: 200k iterations
    c.stages.stage2.epochs = 0.0
    c.stages.stage2.lr = 1e-3  # Adam
    c.stages.stage2.checkpoint_every = 0  # overrides train.checkpoint_every when > 0
    c.stages.stage3 = ml_collections.ConfigDict()
    c.stages.stage3.steps = 500  # paper: 40k iterations
    c.stages.stage3.epochs = 0.0
    c.stages.stage3.lr = 2.5e-4  # lower rate for the fine-tuning stage
    c.stages.stage3.checkpoint_every = 0  # overrides train.checkpoint_every when > 0

    c.eval = eval_config()
    c.eval.max_2d_examples = 5000  # 2D-only examples for the Table-4 symmetry metric
    # without a val_2d split: share of train_2d held out (never trained on) for that metric
    c.eval.heldout_2d_fraction = 0.1

    if preset in ("", "default", "synthetic"):
        c.model.width = 512  # CPU-sized
    elif preset == "smoke":
        smoke_data(c.data)
        c.model.width = 32
        c.model.num_blocks = 1
        c.train.batch_size = 8
        c.train.steps_per_block = 2
        c.stages.stage2.steps = 2
        c.stages.stage3.steps = 2
        c.eval.batch_size = 16
        c.eval.figures = False
    elif preset == "cmu":
        c.data = data_config("cmu+coco")
        c.model.width = 256  # CPU-sized
        c.stages.stage2.steps = 1000
        c.stages.stage3.steps = 400
    elif preset == "h36m":
        c.data = data_config("h36m")
        c.data.h36m.subsample = 5  # 10 fps (sec. 4.1.2)
        c.data.h36m.test_subsample = 5
        c.train.batch_size = 256
        c.stages.stage2.steps = 200000
        c.stages.stage3.steps = 40000
        c.train.steps_per_block = 500
        c.stages.stage2.checkpoint_every = 20000
        c.stages.stage3.checkpoint_every = 10000
    else:
        raise ValueError(f"unknown zhou preset {preset!r}; expected '', smoke, cmu or h36m")
    return c
