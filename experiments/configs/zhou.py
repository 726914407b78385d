r"""Zhou et al. (ICCV 2017) keypoint presets (``--config=experiments/configs/zhou.py:<preset>``).

Ablations (sec. 4.1.3, ``method.ablation``): ``3d``, ``3d+geo``, ``3d+2d``, ``3d+2d+geo``
(the method). Runtimes: 2-core dev. CPU; seeds at equal budget: ``python -m experiments.reproduce``.

* default: the embedded synthetic demo, 1500 + 500 steps, width 512; a few minutes::

    python -m experiments.zhou --workdir=/tmp/zhou_demo

* ``smoke``: tiny network, a few steps per stage (the test suite); seconds.
* ``cmu``: CMU mocap 2D-3D + COCO train2017 2D-only; 1-3 min per ablation. Expected (f94e43f,
  seed 0): action-wise MPJPE 75.3 mm and held-out COCO val symmetry 0.3271 with the geometric
  loss (``3d+2d+geo``) vs 75.3 mm and 0.3278 without (``3d+2d``); over 3 seeds 0.3236 ± 0.0293
  vs 0.3240 ± 0.0298: no measurable effect::

    python -m experiments.zhou --workdir=/tmp/zhou_cmu --config=experiments/configs/zhou.py:cmu \
        --config.method.ablation=3d+2d+geo

* ``h36m``: Human3.6M at 10 fps (``--config.data.h36m.dir``) + MPII / COCO 2D-only, the paper's
  200k + 40k iterations; GPU hours, not run here.
"""

from __future__ import annotations

import ml_collections

from experiments.configs import data as shared

ABLATIONS = ("3d", "3d+geo", "3d+2d", "3d+2d+geo")


def get_config(preset: str = "") -> ml_collections.ConfigDict:
    """The Zhou config; ``preset`` in ``"" | smoke | cmu | h36m``."""
    c = shared.base_config("zhou", data=shared.data_config())

    c.method = ml_collections.ConfigDict()
    c.method.ablation = "3d+2d+geo"  # 3d | 3d+geo | 3d+2d | 3d+2d+geo (sec. 4.1.3)
    c.method.lambda_reg = 0.1  # sec. 4.1.1
    c.method.lambda_geo = 0.01  # sec. 4.1.1 (0 in stage 2)
    # depth unit, "heatmap pixels": the 2D scale s (RMS joint-to-pelvis distance) as this many
    # px (s ~ 16 px in Zhou's 64 x 64 heatmaps): lambda_reg / lambda_geo keep the paper's balance
    c.method.scale_px = 16.0
    c.method.visibility_threshold = 0.5  # 2D joints with confidence above count as visible

    c.model = ml_collections.ConfigDict()
    c.model.width = 1024  # depth module: residual MLP (the paper: a half hourglass on images)
    c.model.num_blocks = 2
    c.model.dropout = 0.0
    c.model.dtype = "float32"  # compute: float32 | bfloat16 (params, Adam stay float32)

    # batch_size: global batch of the 3d+2d* ablations (half 2D-3D, half 2D-only); every
    # ablation draws the same batch_size // 2 2D-3D samples per step (3d / 3d+geo: no 2D half)
    c.train = shared.train_config(validation=True, steps_per_block=100, clip_norm=0.0)
    c.train.adam_eps = 1e-8  # Adam epsilon (optax default; tests/test_distributed.py raises it)
    c.stages = ml_collections.ConfigDict()
    c.stages.stage2 = shared.stage_config(1500)  # paper: 200k iterations
    c.stages.stage3 = shared.stage_config(500, lr=2.5e-4)  # paper: 40k, lower fine-tuning rate
    for stage in c.stages.values():
        stage.checkpoint_every = 0  # overrides train.checkpoint_every when > 0

    c.eval = shared.eval_config()
    c.eval.max_2d_examples = 5000  # 2D-only examples for the Table-4 symmetry metric
    # without a val_2d split: share of train_2d held out (never trained on) for that metric
    c.eval.heldout_2d_fraction = 0.1

    if preset in ("", "default", "synthetic"):
        c.model.width = 512  # CPU-sized
    elif preset == "smoke":
        shared.smoke(c, steps=2, eval_batch=16, batch_size=8)
        c.model.update(width=32, num_blocks=1)
    elif preset == "cmu":
        c.data = shared.data_config("cmu+coco")
        c.model.width = 256  # CPU-sized
        c.stages.stage2.steps = 1000
        c.stages.stage3.steps = 400
    elif preset == "h36m":
        c.data = shared.data_config("h36m")
        c.data.h36m.subsample = 5  # 10 fps (sec. 4.1.2)
        c.data.h36m.test_subsample = 5
        c.train.update(batch_size=256, steps_per_block=500)
        c.stages.stage2.update(steps=200000, checkpoint_every=20000)
        c.stages.stage3.update(steps=40000, checkpoint_every=10000)
    else:
        raise ValueError(f"unknown zhou preset {preset!r}; expected '', smoke, cmu or h36m")
    return c
