r"""Zhou et al. (ICCV 2017) image network presets (``--config=experiments/configs/zhou_image.py``).

Runtimes: 2-core development CPU; comparisons over seeds: ``python -m experiments.reproduce``.

* default / ``rendered``: :mod:`jpose.data.render` images, a 3D-labelled "studio" set and a
  2D-only "wild" set (tests ``test_wild``, ``test_studio``); ``--config.ablation=all`` trains
  stage 1 once, then stages 2-3 of the four ablations; CPU minutes. Not the paper's numbers::

    python -m experiments.zhou_image --workdir=/tmp/zhou_image --config.ablation=all

* ``smoke``: 32 x 32 images, width 8, 2 steps per stage (the test suite); under a minute.
* ``h36m``: Human3.6M frames + MPII images (``--config.data.image_root``: the layout of
  :mod:`jpose.data.images`), the paper's sizes and iterations; GPU days, not run here.
"""

from __future__ import annotations

import ml_collections

from experiments.configs.data import base_config, smoke, train_config
from experiments.configs.zhou import ABLATIONS

__all__ = ["ABLATIONS", "get_config"]


def get_config(preset: str = "") -> ml_collections.ConfigDict:
    """The config; ``preset`` in ``"" | rendered | smoke | h36m``."""
    c = base_config("zhou_image")
    c.ablation = "3d+2d+geo"  # one of ABLATIONS, or "all" (stage 1 shared, 4 x stages 2-3)

    d = c.data = ml_collections.ConfigDict()
    d.source = "rendered"  # rendered | h36m
    d.poses = "synthetic"  # rendered from: synthetic | cmu
    d.data_dir = ""  # shared data folder (cmu); default jpose.data.shared_data_dir()
    d.cmu_subsample = 8  # keep every n-th CMU frame
    d.image_size = 64  # S, input pixels
    d.num_train_3d = 3000  # studio images with 3D labels (h36m: rows of h36m_train, 0 = all)
    d.num_train_2d = 3000  # wild images with 2D labels only (h36m: rows of mpii_train, 0 = all)
    d.num_test = 400  # per test split (h36m: rows of h36m_test / mpii_val, 0 = all)
    d.num_people_pool = 400  # synthetic people per pose pool
    d.mix_3d = {"standing": 0.45, "walking": 0.45, "sitting": 0.04, "bending": 0.03,
                "arms_raised": 0.03}  # fmt: skip
    d.mix_2d = {"standing": 0.1, "walking": 0.1, "sitting": 0.3, "bending": 0.25,
                "arms_raised": 0.25}  # fmt: skip
    d.style_3d = "studio"  # studio | wild
    d.style_2d = "wild"
    d.image_root = ""  # h36m preset: folder of the npz files and images (see module docstring)
    d.crop_padding = 1.0  # h36m preset: crop side factor on 200 * box_scale px

    m = c.model = ml_collections.ConfigDict()
    m.features = 32  # F (256 in the paper)
    m.num_stacks = 2  # paper: 2 (shallow variant)
    m.num_modules = 2  # paper: 2 residual modules per hourglass step
    m.depth = 2  # hourglass down-sampling steps (4 for 64 x 64 heatmaps)
    m.num_reg_modules = 1  # residual modules before each pooling of the depth module
    m.num_reg_pools = 4  # paper: 4 residual & pooling modules
    m.sigma = 1.0  # Gaussian heatmap std, heatmap pixels (Newell: 1 at 64 x 64)

    t = c.train = train_config(steps_per_block=10, log_every=5, clip_norm=10.0)
    del t["batch_size"]  # two halves per mixed batch:
    t.batch_3d = 16  # 2D-3D images per step (paper: batch 6, half-half)
    t.batch_2d = 16  # 2D-only images per step
    t.lambda_reg = 0.1  # eq. 2 (sec. 4.1.1)
    t.lambda_geo = 0.01  # eq. 2 (sec. 4.1.1)
    # one Adam for the whole run, its moments carried across stages (paper: RMSprop 2.5e-4 as
    # Newell et al.)
    t.lr = 1e-3
    c.stages = ml_collections.ConfigDict()  # steps per stage (paper in brackets)
    c.stages.stage1 = {"steps": 300}  # 2D module on 2D-labelled images (240k)
    c.stages.stage2 = {"steps": 300}  # + depth module, lambda_geo = 0 (200k)
    c.stages.stage3 = {"steps": 150}  # everything, geometric loss on (40k)

    e = c.eval = ml_collections.ConfigDict()
    e.batch_size = 100
    e.pckh_threshold = 0.5
    e.num_figure_images = 16

    if preset in ("", "rendered"):
        pass
    elif preset == "smoke":
        smoke(c, steps=2, eval_batch=8, batch_3d=4, batch_2d=4, log_every=1)
        d.image_size = 32
        d.num_train_3d = d.num_train_2d = 16
        d.num_test = 8
        d.num_people_pool = 8
        m.features, m.depth, m.num_modules, m.num_reg_pools = 8, 1, 1, 3
        m.num_stacks = 1  # smoke only: fewer ops to compile
        e.num_figure_images = 0
    elif preset == "h36m":
        d.source = "h36m"
        d.image_size = 256
        # in-memory crops (192 KiB each): subsample Human3.6M; all MPII persons and test rows
        d.num_train_3d, d.num_train_2d, d.num_test = 50_000, 0, 0
        m.features, m.depth = 256, 4
        t.batch_3d = t.batch_2d = 3
        t.lr = 2.5e-4
        for st, steps in zip(c.stages.values(), (240_000, 200_000, 40_000)):
            st.steps = steps
        t.steps_per_block = 100
        t.parallel = "auto"
        t.log_every = 10
    else:
        raise ValueError(f"unknown preset {preset!r}; expected '', rendered, smoke or h36m")
    return c
