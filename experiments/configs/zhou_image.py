r"""Zhou et al. (ICCV 2017), image form: stacked hourglass + depth regression, trained end to end.

Presets (``--config=experiments/configs/zhou_image.py:<preset>``); runtimes on the 2-core
development CPU. Each paper's comparison at equal budget over seeds:
``python -m experiments.reproduce`` (REPRODUCTION.md).

* default / ``rendered``: images rendered by :mod:`jpose.data.render` from synthetic poses
  (``data.poses="cmu"`` uses the CMU mocap file instead). The 3D-labelled set is a "studio"
  (grey room, fixed light; standing / walking poses: a Human3.6M stand-in); the 2D-only set is
  "in the wild" (random backgrounds, lighting, clothing; sitting / bending / arms raised: an MPII
  stand-in); the 3D test sets are ``test_wild`` (wild images, 2D-only pose mix: the
  MPI-INF-3DHP-like transfer question) and ``test_studio``. 64 x 64 images, 16 x 16 heatmaps,
  width 32, 300 / 300 / 150 steps. ``ablation="all"`` trains stage 1 once and then stages 2-3 of
  the four ablations::

    python -m experiments.zhou_image --workdir=/tmp/zhou_image --config.ablation=all

  Runtime: CPU minutes (not timed). Expected: a demonstration on rendered images, not the
  paper's numbers.

* ``smoke``: 32 x 32 images, width 8, 2 steps per stage (the test suite); under a minute::

    python -m experiments.zhou_image --workdir=/tmp/zhou_image_smoke \
        --config=experiments/configs/zhou_image.py:smoke

* ``h36m``: Human3.6M frames (3D) + MPII images (2D only), the paper's setting: 256 x 256 crops,
  64 x 64 heatmaps, 2 stacks x 2 modules, width 256, 240k / 200k / 40k iterations at batch 6
  (stage 1 / 2 / 3), lambda_reg 0.1, lambda_geo 0.01::

    python -m experiments.zhou_image --workdir=/tmp/zhou_image_h36m \
        --config=experiments/configs/zhou_image.py:h36m --config.data.image_root=/data/images

  Runtime: GPU days in the paper (not run here: no real image set on this machine). File layout
  (``data.image_root``; read by :mod:`jpose.data.images`, which checks every key and shape)::

    <root>/h36m_train.npz, h36m_test.npz   keys: image_path [N] str (relative to <root>),
        keypoints_2d [N, 17, 2] px in the frame (H36M-17 order), pose3d_cam [N, 17, 3] m
        (camera frame, absolute: root z > 0), focal [N, 2] px, center [N, 2] px (principal
        point), box_center [N, 2] px, box_scale [N] (person height / 200 px, the MPII
        convention), action [N] str
    <root>/mpii_train.npz, mpii_val.npz    keys: image_path [N] str, keypoints_2d [N, 16, 2] px
        (MPII order), visibility [N, 16] (> 0: labelled), box_center [N, 2] px, box_scale [N]
    <root>/images/...                      the frames / photographs (jpg / png)

  Crop convention: a square of side ``200 * box_scale * crop_padding`` px centred at
  ``box_center`` is resized to 256 x 256 (bilinear; outside the frame = black); 2D labels,
  principal point and focal length (times the scale) follow the same affine map
  (:func:`jpose.data.images.crop_affine`); heatmaps are 64 x 64 (stride 4). MPII joints become
  H36M-17 (:func:`jpose.skeleton.mpii16_to_h36m17`); a joint is visible when it is labelled and
  inside the crop. Splits: ``train_3d`` = h36m_train, ``train_2d`` = mpii_train,
  ``test_studio`` = h36m_test (MPJPE, PCKh), ``test_wild`` = mpii_val (PCKh only: MPII has no
  3D). ``data.num_train_3d`` / ``num_train_2d`` / ``num_test`` cap the rows read
  per file (evenly spaced; 0 = all): every crop is held in memory (192 KiB at 256 x 256).
"""

from __future__ import annotations

import ml_collections

from experiments.configs.data import train_config
from experiments.configs.zhou import ABLATIONS

__all__ = ["ABLATIONS", "get_config"]


def get_config(preset: str = "") -> ml_collections.ConfigDict:
    """The config; ``preset`` in ``"" | rendered | smoke | h36m``."""
    c = ml_collections.ConfigDict()
    c.experiment = "zhou_image"  # the method (experiments.zhou_image.run)
    c.seed = 0
    c.distributed = False  # multi-process pmap over jax.distributed (README "Multi-process")
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
        d.image_size = 32
        d.num_train_3d = d.num_train_2d = 16
        d.num_test = 8
        d.num_people_pool = 8
        m.features, m.depth, m.num_modules, m.num_reg_pools = 8, 1, 1, 3
        m.num_stacks = 1  # smoke only: fewer ops to compile
        t.batch_3d = t.batch_2d = 4
        t.steps_per_block = 2
        for st in c.stages.values():
            st.steps = 2
        t.log_every = 1
        e.batch_size = 8
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
