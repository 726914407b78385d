r"""WSP (Qiu et al.) keypoint presets (``--config=experiments/configs/wsp.py:<preset>``).

Runtimes: 2-core development CPU; seeds at equal budget: ``python -m experiments.reproduce``.

* default: the synthetic demo (multi-person scenes, ankle order = depth order); ~10 minutes::

    python -m experiments.wsp --workdir=/tmp/wsp_default

* ``image``: the image network (``experiments/configs/wsp_image.py``; ``image,smoke`` etc.).
* ``smoke``: tiny networks, a few steps per stage (the test suite); seconds.
* ``cmu``: pre-train on COCO train2017 pairs, RD protocols on COCO val2017 pairs, fine-tune on
  CMU mocap with 10 % / 100 % of the labels, pre-trained vs random init; 211 s. Expected
  (f94e43f, seed 0): RD protocol 1 / 2 AUC 99.4 / 96.4 %; CMU test MPJPE 139.8 mm pre-trained vs
  155.7 random init (100 % labels, action-wise; 3 seeds at 1 / 10 / 100 %: REPRODUCTION.md)::

    python -m experiments.wsp --config=experiments/configs/wsp.py:cmu --workdir=/tmp/wsp_cmu

* ``h36m``: Human3.6M fine-tuning (``--config.data.h36m.dir``); GPU hours, not run here. The
  paper's Table 4 (54.3 vs 67.5 mm) is for images, not a keypoint lifter.
"""

from __future__ import annotations

import ml_collections

from experiments.configs import data as shared

PRESETS = ("smoke", "cmu", "h36m", "image")


def rd_config() -> ml_collections.ConfigDict:
    """The relative-depth pair block (``config.rd``; also CameraPose's auxiliary RD loss)."""
    r = ml_collections.ConfigDict()
    r.source = "synthetic"  # synthetic | coco (train: coco_train, test: coco_val)
    r.data_dir = ""  # shared data folder ("" = jpose.data.shared_data_dir())
    r.coco_train = "wild2d_coco_train_norm.npz"  # pre-training pairs (normalised file)
    r.coco_val = "wild2d_coco.npz"  # RD evaluation pairs (pixels)
    r.mpii = "wild2d_mpii.npz"  # counted (and added to training if mpii_train)
    r.mpii_train = False  # add MPII validation pairs to pre-training (no image sizes: approx.)
    r.ankle_rule = "both"  # eligible person: both ankles annotated | any
    r.require_visible = False  # count only visibility-2 ankles
    r.min_ankle_gap = 0.0  # ties: |y_A - y_B| <= gap (file units) removed (exact ties always)
    r.occluded_confidence = 1.0  # input confidence of labelled-but-occluded joints
    r.max_train_pairs = 0  # random subset of training pairs (0 = all)
    r.synthetic = ml_collections.ConfigDict()  # synthetic scenes: images, test share, people
    r.synthetic.update(num_images=3000, test_fraction=0.2, people_min=2, people_max=4)
    return r


def get_config(preset: str | None = None) -> ml_collections.ConfigDict:
    """The WSP config; ``preset`` in :data:`PRESETS` or None (synthetic demo)."""
    c = shared.base_config("wsp")
    r = c.rd = rd_config()  # relative-depth pairs
    d = c.data = shared.data_config(  # 3D data (fine-tuning)
        num_people={"train_3d": 100, "train_2d": 1, "test": 40, "test_2d_mix": 1},
        normalization="image",  # the encoder's input convention
    )

    m = c.model = ml_collections.ConfigDict()
    m.width = 512  # encoder trunk = lifter trunk width
    m.num_blocks = 2
    m.dropout = 0.25
    m.feature_dim = 16  # D, per-joint features of the encoder
    m.head_width = 64
    m.head_layers = 2
    m.symmetric = True  # logit = g(A, B) - g(B, A)

    c.stages = ml_collections.ConfigDict()
    p = c.stages.pretrain = ml_collections.ConfigDict()  # pre-training (eq. 9)
    p.steps = 800
    p.batch_size = 256  # pairs per step
    p.lr = 1e-3  # cosine decay to 0 over the stage (paper: 1e-3, steps at epochs 30 / 40)
    p.num_selected = 8  # N < J joints drawn per pair (eq. 6); 0 = all labelled joints
    p.ankle_dropout = 0.2  # share of training pairs whose input drops both ankles (paper: 0)
    f = c.stages.finetune = ml_collections.ConfigDict()
    f.fractions = (0.1, 1.0)  # fractions of the 3D training labels (seeded random subsets)
    f.inits = ("pretrained", "random")  # encoder trunk vs random initialisation
    f.steps = 600  # same for every run
    f.batch_size = 256
    f.lr = 1e-3  # cosine decay

    t = c.train = shared.train_config()  # run options
    del t["batch_size"]  # each stage has its own (stages.*.batch_size)

    e = c.eval = ml_collections.ConfigDict()
    e.batch_size = 2048
    e.orientation_seed = 1234  # random A/B orientation of the test pairs (balanced classes)
    e.thresholds = (1.0, 0.5, 0.3, 0.1)  # RD protocol 1 ΔS thresholds
    e.figures = True

    if preset is None:
        return c
    if preset == "image" or (preset or "").startswith("image,"):
        # the image pathway (experiment "wsp_image": common.cli routes `python -m
        # experiments.wsp` to experiments.wsp_image.run); "image,<p>": its preset <p>
        from experiments.configs import wsp_image

        sub = preset.split(",", 1)[1] if "," in preset else "image"
        return wsp_image.get_config(sub)
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; expected one of {PRESETS}")
    if preset == "smoke":
        shared.smoke(c, steps=4, eval_batch=64, poses=16, progress=False)
        r.synthetic.update(num_images=60, test_fraction=0.3)
        m.update(width=32, num_blocks=1, feature_dim=4, head_width=8, head_layers=1)
        p.update(batch_size=16, num_selected=4)
        f.batch_size = 16
    elif preset == "cmu":
        r.source = "coco"
        d.preset = "cmu"  # CMU virtual cameras are 1000 x 1000: "vp" == "image" normalisation
        p.steps = 1000
        f.steps = 500
    elif preset == "h36m":
        r.source = "coco"
        r.mpii_train = True
        d.preset = "h36m"
        m.update(width=1024, dropout=0.5)
        p.update(steps=50000, batch_size=1024)
        f.update(steps=100000, batch_size=1024)
        t.update(steps_per_block=100, checkpoint_every=5000, parallel="auto")
    return c
