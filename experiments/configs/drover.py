r"""Drover et al. (ECCV-W 2018) presets (``--config=experiments/configs/drover.py:<preset>``).

Runtimes: 2-core development CPU; seeds at equal budget: ``python -m experiments.reproduce``.

* default: the embedded synthetic demo; 1000 steps, batch 256, width 256; several minutes::

    python -m experiments.drover --workdir=/tmp/drover_demo

* ``smoke``: tiny networks, a few steps (the test suite); seconds.
* ``cmu``: CMU mocap 2D (+ 8 virtual views per training skeleton), lr decayed linearly; 4.1 min.
  Expected (f94e43f, seed 0): CMU test P-MPJPE 67.2 mm learned vs 92.5 trivial (action-wise;
  frame-wise 72.3 vs 95.5)::

    python -m experiments.drover --workdir=/tmp/drover_cmu \
        --config=experiments/configs/drover.py:cmu

* ``h36m``: Human3.6M 2D of S1/5/6/7/8 (``--config.data.h36m.dir``), Protocol 1 (S11) and 2
  (S9 + S11) P-MPJPE on 14 joints, batch 32768; GPU hours, not run here. Paper (GT 2D, P2):
  38.2 mm, ensemble of 11: 36.3, trivial 127.3.
"""

from __future__ import annotations

import ml_collections

from experiments.configs import data as shared


def get_config(preset: str = "") -> ml_collections.ConfigDict:
    """The Drover config; ``preset`` in ``"" | smoke | cmu | h36m``."""
    c = shared.base_config("drover", data=shared.data_config())
    c.ensemble_seeds = ()  # extra seeds trained like `seed`; 3D predictions averaged (paper: 11)

    c.method = ml_collections.ConfigDict()
    c.method.num_joints = 17  # 17 (H36M-17) or 14 (the paper: no pelvis, spine, neck/nose)
    c.method.distance = 10.0  # d of eq. 2 (the paper: 10 units)
    c.method.azimuth_deg = (0.0, 360.0)  # random projection azimuth range (sec. 3.1)
    c.method.elevation_deg = (0.0, 20.0)  # random projection elevation range (sec. 3.1)
    c.method.generator_loss = "non_saturating"  # non_saturating (-log D(p)) | minimax (eq. 4)
    c.method.recentre_fake = True  # root-centre the random projections like the real 2D

    c.real2d = ml_collections.ConfigDict()
    c.real2d.use_train_2d = True  # the training split's own 2D joins the real pool
    c.real2d.use_2d_only = False  # a 2D-only split (train_2d) joins the real pool when loaded
    c.real2d.virtual_cameras = 0  # extra virtual views per training 3D skeleton (paper: 8)
    c.real2d.azimuth_deg = (0.0, 360.0)  # virtual camera azimuth range (sec. 4.1)
    c.real2d.elevation_deg = (0.0, 20.0)  # virtual camera elevation range (sec. 4.1)

    c.model = ml_collections.ConfigDict()
    c.model.width = 1024  # generator and discriminator width (paper: 1024)
    c.model.generator_blocks = 4  # paper: 4 residual blocks
    c.model.discriminator_blocks = 3  # paper: 3 residual blocks
    c.model.generator_zero_init = True  # zero output layer: G starts at constant depth (ours)

    # batch_size: generator inputs and real 2D per step, each (paper: 32768); no clipping
    c.train = shared.train_config(batch_size=1024, clip_norm=0.0)
    # epoch (per-epoch permutations) | random (i.i.d. indices: no 277k-pose permutation per step)
    c.train.sampling = "epoch"
    c.stages = ml_collections.ConfigDict()
    g = c.stages.gan = ml_collections.ConfigDict()  # the recipe of every seed<s> stage
    g.steps = 20000  # total steps per seed (> 0 overrides epochs)
    g.epochs = 0.0
    g.lr_generator = 2e-4  # Adam, paper: 2e-4 for both
    g.lr_discriminator = 2e-4
    g.b1 = 0.5  # Adam beta1 (0.5, the DCGAN choice; the paper does not state it)
    g.lr_schedule = "constant"  # constant (the paper) | linear (decay to 0 over the run)

    c.eval = shared.eval_config()  # splits "": every 3D non-train split (+ test_s11 for h36m)
    c.eval.trivial_baseline = True  # also evaluate constant depth (flat skeleton)
    c.eval.unit_m = 0.55  # metres per generator unit (nominal head-root length), for P1 only

    if preset in ("", "default", "synthetic"):
        c.model.width = 256  # CPU-sized (paper: 1024)
        c.train.batch_size = 256
        g.steps = 1000
    elif preset == "smoke":
        shared.smoke(c, steps=4, eval_batch=16, batch_size=8)
        c.real2d.virtual_cameras = 2
        c.model.update(width=32, generator_blocks=1, discriminator_blocks=1)
    elif preset == "cmu":
        c.data = shared.data_config("cmu")
        c.real2d.virtual_cameras = 8
        c.model.width = 256  # CPU-sized (paper: 1024)
        c.train.batch_size = 256
        g.steps = 4000  # 600 steps (constant lr) left the generator worse than trivial
        g.lr_schedule = "linear"  # damps the G/D oscillation: stable final checkpoint
        c.train.sampling = "random"  # ~15x faster on CPU than per-step epoch permutations
    elif preset == "h36m":
        c.data = shared.data_config("h36m")
        c.method.num_joints = 14
        c.real2d.virtual_cameras = 8
        c.train.update(batch_size=32768, steps_per_block=100, checkpoint_every=2000)
        c.eval.batch_size = 16384
    else:
        raise ValueError(f"unknown drover preset {preset!r}; expected '', smoke, cmu or h36m")
    return c
