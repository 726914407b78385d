r"""WSP (Qiu et al.) image network presets (``--config=experiments/configs/wsp_image.py:<p>``).

Runtimes: 2-core development CPU; comparisons over seeds: ``python -m experiments.reproduce``.

* default / ``image`` / ``rendered``: images rendered by :mod:`jpose.data.render` (multi-person
  scenes for pre-training, single-person crops for fine-tuning), ResNet-10, 400 + 300 steps; CPU
  minutes. A demonstration, not the paper's numbers::

    python -m experiments.wsp_image --workdir=/tmp/wsp_image

* ``smoke``: 32 x 32 images, tiny widths, 2 steps (the test suite); under a minute.
* ``real``: the paper's setting (ResNet-50, 256 x 256 pair crops of COCO / MPII, Human3.6M
  fine-tuning; ``--config.data.image_root``: :mod:`jpose.data.images`' layout); GPU days, not
  run here. Paper (Table 4): MPJPE 54.3 mm pre-trained vs 67.5 mm without.
"""

from __future__ import annotations

import ml_collections

from experiments.configs.data import base_config, smoke, stage_config, train_config

__all__ = ["get_config"]


def get_config(preset: str = "") -> ml_collections.ConfigDict:
    """The config; ``preset`` in ``"" | image | rendered | smoke | real``."""
    c = base_config("wsp_image")

    d = c.data = ml_collections.ConfigDict()
    d.source = "rendered"  # rendered | real
    d.poses = "synthetic"  # synthetic | cmu (rendered pose pools)
    d.data_dir = ""  # shared data folder (cmu)
    d.cmu_subsample = 8
    d.num_people_pool = 400  # synthetic people per pose pool
    d.mix = {"standing": 0.3, "walking": 0.3, "sitting": 0.15, "bending": 0.1,
             "arms_raised": 0.15}  # fmt: skip
    d.image_size = 64
    d.num_pretrain = 3000  # multi-person images for pre-training (real: rows of pairs_train)
    d.num_rd_test = 500  # multi-person test images, relative depth (real: rows of pairs_val)
    d.people = (2, 3)  # persons per pre-training image
    d.distance_range = (3.0, 8.0)  # person depths, metres
    d.num_finetune = 400  # single-person 3D crops (small on purpose; real: rows of h36m_train)
    d.num_test = 400  # single-person test crops (real: rows of h36m_test)
    d.style = "wild"
    d.rd_labels = "ankle"  # ankle (WSP eqs. 1-4, 7 on the 2D joints) | depth (ground truth)
    d.image_root = ""  # real preset (see the module docstring)
    d.crop_padding = 1.0  # real preset: crop side factor (pairs: on the union of the two boxes)

    m = c.model = ml_collections.ConfigDict()
    m.resnet_depth = 10  # 50 for real images
    m.width = 16  # first-stage channels (64 in ResNet-50)
    m.stem = "imagenet"  # imagenet | small
    m.deconv_layers = 3  # WSP: 3 deconvolution layers
    m.deconv_features = 64  # 256 in WSP / Xiao et al.
    m.depth_bins = 16  # 3D heatmap depth resolution (64 in Sun et al.)
    m.depth_range_m = 2.0  # root-relative depth span covered by the bins, metres
    m.pool_normalize = "box"  # eq. 5 pooling: box | heatmap | none
    m.rd_hidden = (128,)  # hidden widths of f (eq. 6)
    m.sigma = 1.0  # Gaussian heatmap std, heatmap pixels
    # .npz of the ResNet backbone's variables, flax's flat form (jpose.models.resnet.
    # load_flat_weights), e.g. ImageNet weights (WSP); used by pre-training and the "scratch"
    # fine-tuning baseline; "" = random initialisation
    m.init_checkpoint = ""

    t = c.train = train_config(batch_size=32, steps_per_block=10, log_every=5, clip_norm=10.0)
    t.alpha = 50.0  # eq. 8
    t.num_selected = 8  # N < J keypoints per pair (sec. 3.4.1)
    t.heatmap_squared = False  # eq. 10 as printed (L2 norm); True = sum of squares
    c.stages = ml_collections.ConfigDict()  # epochs: passes over its examples; WSP: lr 1e-3 both
    c.stages.pretrain = stage_config(400)
    c.stages.finetune = stage_config(300)
    for stage in c.stages.values():
        stage.kind = "constant"  # learning-rate schedule: constant | step (x factor per boundary)
        stage.boundaries = ()  # epochs
        stage.factor = 0.1

    e = c.eval = ml_collections.ConfigDict()
    e.batch_size = 100
    e.delta_s = (1.0, 0.5, 0.3, 0.1)  # RD protocol 1 thresholds on the scale gap ratio

    if preset in ("", "image", "rendered"):
        pass
    elif preset == "smoke":
        smoke(c, steps=2, eval_batch=8, batch_size=4, log_every=1)
        d.image_size = 32
        d.num_pretrain, d.num_rd_test, d.num_finetune, d.num_test = 16, 8, 16, 8
        d.num_people_pool = 8
        m.width, m.deconv_features, m.depth_bins = 4, 8, 4
        m.rd_hidden = (8,)
    elif preset == "real":
        d.source = "real"
        d.image_size = 256
        # in-memory crops (192 KiB each): caps on the rows read per file (0 = all)
        d.num_pretrain, d.num_rd_test, d.num_finetune, d.num_test = 50_000, 0, 50_000, 0
        m.resnet_depth, m.width, m.deconv_features, m.depth_bins = 50, 64, 256, 64
        m.rd_hidden = (256,)
        t.batch_size = 64
        t.parallel = "auto"
        # WSP Sec. 4: 50 epochs, x0.1 at 30 and 40 (pre-training); 25, x0.1 at 17 and 21
        c.stages.pretrain.update(steps=0, epochs=50.0, kind="step", boundaries=(30, 40))
        c.stages.finetune.update(steps=0, epochs=25.0, kind="step", boundaries=(17, 21))
    else:
        raise ValueError(f"unknown preset {preset!r}; expected '', image, rendered, smoke or real")
    return c
