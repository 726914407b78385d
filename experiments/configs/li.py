"""Li et al. (AAAI 2020) presets: ``--config=experiments/configs/li.py[:<preset>[,<variant>...]]``.

Runtimes on the 2-core development CPU; comparisons over seeds at equal budget:
``python -m experiments.reproduce`` (REPRODUCTION.md).

* default: the embedded synthetic demo (4 views + 8 virtual cameras), width 128, 300 + 1,500
  steps; 10 minutes on a loaded machine. Expected: P1 104, P2 52 mm (synthetic test; one seed,
  no reference run)::

    python -m experiments.li --workdir=/tmp/li_demo

* ``smoke``: a handful of steps on a tiny synthetic set (the test suite); seconds.
* ``cmu``: CMU mocap seen by a static rig of 4 virtual cameras per sequence, width 128, 300 +
  2,400 steps, batch 128 instants; 5.6 min. Expected (f94e43f, seed 0): P1 / P2 100.3 / 59.2 mm
  action-wise (103.9 / 64.5 frame-wise). Over 3 seeds on the supervised reference's test set
  (REPRODUCTION.md, frame-wise): P2 60.2 ± 0.7 vs the supervised lifter's 40.9 ± 0.3 mm
  (4,000 steps)::

    python -m experiments.li --workdir=/tmp/li_cmu --config=experiments/configs/li.py:cmu

* ``h36m``: Human3.6M (VideoPose3D npz, ``--config.data.h36m.dir``), its 4 cameras + 8 virtual,
  the paper's sizes and schedule; GPU hours, not run here. Paper (CPN): P1 / P2 57.0 / 44.1 mm.

Variants: ``reproj`` (Table 1 "Reproj"), ``trans`` ("Trans_Reproj"), ``trans_da`` (default,
"+DA"), ``no_pretrain`` (no eq. 6), ``uncalibrated`` (rig estimated from 2D).
"""

from __future__ import annotations

import math

import ml_collections

from experiments.configs.data import (
    data_config,
    eval_config,
    noise_config,
    smoke_data,
    train_config,
)

PRESETS = ("", "smoke", "cmu", "h36m")
VARIANTS = ("reproj", "trans", "trans_da", "no_pretrain", "uncalibrated")


def _virtual_cameras() -> ml_collections.ConfigDict:
    """Ranges of the virtual cameras (``jpose.data.VirtualCameraConfig``; Human3.6M-like rig)."""
    v = ml_collections.ConfigDict()
    v.distance_range = (4.0, 6.0)  # horizontal distance to the subject, metres
    v.height_range = (1.0, 2.2)  # camera height, metres (wider than the real rig's 1.5-1.6 m)
    v.azimuth_range = (0.0, 2.0 * math.pi)  # all around the subject
    v.elevation_range = (-0.05, 0.15)  # extra downward tilt, radians
    v.focal_range = (1140.0, 1150.0)  # pixels
    v.image_size = (1000, 1000)  # pixels
    return v


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """The config of ``experiments.li`` for ``arg = "<preset>[,<variant>...]"`` (see module doc)."""
    parts = [p.strip() for p in (arg or "").split(",")]
    preset, variants = parts[0], [p for p in parts[1:] if p]
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; expected one of {PRESETS[1:]} or none")
    for v in variants:
        if v not in VARIANTS:
            raise ValueError(f"unknown variant {v!r}; expected some of {VARIANTS}")

    c = ml_collections.ConfigDict()
    c.experiment = "li"  # the method (jpose.inference.load_predictor registry)
    c.preset = arg or "default"
    c.seed = 0  # base PRNG seed (parameters, dropout, batches, RANSAC)
    c.distributed = False  # multi-process pmap over jax.distributed (README "Multi-process")
    c.notes = ["CPU-scaled demo schedule and network width (paper: width 1024, 20 + 300 epochs)"]

    # ---- data ------------------------------------------------------------------------------
    c.data = d = data_config(
        num_people={"train_3d": 80, "train_2d": 1, "test": 20, "test_2d_mix": 1},
        poses_per_person=25,
        views_per_pose=4,  # synchronised real views per instant
        h36m_source="cpn_ft_h36m_dbb",  # the paper's CPN detections
    )
    d.cmu_cameras_per = "sequence"  # one static rig per sequence (RANSAC pools its frames)
    d.views = ()  # camera labels forming an instant's views (() = all cameras in the split)
    d.group_keys = ("pose_index",)  # labels identifying one instant (synthetic)
    d.rig_keys = ("pose_index",)  # labels identifying one static camera rig (uncalibrated pooling)

    # ---- multi-view training groups ------------------------------------------------------------
    c.multiview = m = ml_collections.ConfigDict()
    m.num_virtual_views = 8  # extra virtual cameras per instant (paper: 8, 12 views in all)
    m.virtual_cameras = _virtual_cameras()
    m.extrinsics = "calibrated"  # calibrated | uncalibrated (jpose.multiview estimates)
    m.uncalibrated = u = ml_collections.ConfigDict()
    u.num_hypotheses = 256  # RANSAC minimal samples
    u.threshold_px = 3.0  # Sampson-distance inlier threshold, pixels
    u.max_correspondences = 4096  # pooled joints per rig and view pair (random subset)
    u.chunk = 64  # rig problems per compiled call
    u.noise_levels_px = (0.0, 1.0, 2.0, 5.0, 10.0)  # estimator report: 2D noise std, pixels
    u.outlier_fraction = 0.1  # estimator report: fraction of correspondences replaced
    u.report_trials = 20  # estimator report: synthetic rigs per noise level

    # ---- model ---------------------------------------------------------------------------------
    c.model = ml_collections.ConfigDict()
    c.model.width = 128  # paper: 1024 (both branches)
    c.model.root_width = 128  # root-position branch width (paper: same as the lifter)
    c.model.dropout = 0.0  # paper: Martinez-style dropout (0.5); 0 converges better at CPU sizes
    c.model.root_depth_offset_m = 5.0  # added to the root branch's depth (not in the paper)
    c.model.zero_init_output = True  # zero-initialised output layers (not in the paper)
    # multiplier of both branches' metre-valued outputs (not in the paper); 0 = auto,
    # min(1, 128 / width): Adam moves a zero-initialised output by ~lr * width per step, so at
    # width 1024 the first steps throw joints behind the camera (experiments.li.output_scale)
    c.model.output_scale = 0.0

    # ---- stages --------------------------------------------------------------------------------
    # run options; batch_size = instants per step (each with all its views and view pairs);
    # clip_norm is not in the paper: joints that cross the depth clamp give loss spikes that
    # otherwise derail Adam (CMU runs: P1 679 -> 94 mm)
    c.train = train_config(batch_size=128)
    c.stages = ml_collections.ConfigDict()
    c.stages.pretrain = p = ml_collections.ConfigDict()
    p.enabled = True  # eq. 6 pre-training (Fig. 6 ablation: False)
    p.epochs = 20.0  # paper: 20 (used when steps == 0)
    p.steps = 300  # > 0 overrides epochs (CPU scale)
    p.lr = 1e-3
    p.kind = "constant"
    p.boundaries = ()  # epochs of x0.1 decays (none: constant)
    p.warmup_steps = 0  # linear lr warm-up of the stage's fresh Adam (not in the paper)
    c.stages.train = t = ml_collections.ConfigDict()
    t.epochs = 300.0  # paper: 300
    t.steps = 1500  # > 0 overrides epochs (CPU scale)
    t.lr = 1e-3
    t.kind = "step"  # x factor at each boundary (paper: x0.1 every 100 epochs)
    t.boundaries = (100.0, 200.0)  # epochs (rescaled to the stage length when steps > 0)
    t.factor = 0.1
    t.warmup_steps = 0  # linear lr warm-up (not in the paper; h36m preset: 100)
    t.transform_weight = 1.0  # lambda of eq. 7 (0 = re-projection only, Table 1 "Reproj")
    t.confidence_view = "source"  # eq. 5 weights (jpose.losses.li_transform_reprojection_loss)
    # the w of eqs. 2 and 5 (confidence weighting); False = ablation: every present joint 1
    t.confidence_weighting = True

    # ---- simulated detections (jpose.augment.detection_noise, CameraPose's model) ---------------
    # GT 2D has no detector confidences, so eqs. 2 / 5's weights would all be 1. When enabled,
    # each view's GT 2D is replaced by a detection with per-joint confidence
    # c = 1 - (1 - conf_min) u^conf_power and noise falling with c (std sigma_min..sigma_max in
    # normalised units, outliers with probability outlier_prob (1 - c)), fresh every step; the
    # noisy 2D is the lifter input and the re-projection target, c the weight (paper: heatmap
    # maxima of the 2D detector). Off by default (the published numbers use GT 2D).
    c.noise = noise_config(enabled=False)

    # ---- evaluation ----------------------------------------------------------------------------
    c.eval = eval_config(batch_size=2048)
    c.eval.estimator_report = True  # RANSAC relative-pose accuracy table on synthetic rigs

    if preset == "smoke":
        smoke_data(d, with_2d=False)
        d.synthetic.views_per_pose = 3
        m.num_virtual_views = 2
        u.num_hypotheses = 16
        u.chunk = 16
        u.noise_levels_px = (0.0, 2.0)
        u.report_trials = 2
        c.model.width = c.model.root_width = 32
        c.train.batch_size = 8
        p.steps, t.steps = 4, 4
        c.train.steps_per_block = 2
        c.eval.batch_size = 64
        c.eval.figures = False
        c.notes = ["smoke test: a few steps, numbers meaningless"]
    elif preset == "cmu":
        d.preset = "cmu"
        d.group_keys = ("sequence", "frame")
        d.rig_keys = ("sequence",)
        p.steps, t.steps = 300, 2400
        c.notes = [
            "CPU budget (shared 2-core machine): width 128, no dropout, pre-train 300 steps + "
            "train 2400 steps at batch 128 instants, lr x0.1 at 1/3 and 2/3 of training "
            "(paper: width 1024, 20 + 300 epochs); gradient clipping 1.0 (not in the paper)"
        ]
    elif preset == "h36m":
        d.preset = "h36m"
        d.group_keys = ("subject", "sequence", "frame")
        d.rig_keys = ("subject",)
        d.views = (0, 1, 2, 3)
        c.model.width = c.model.root_width = 1024
        c.model.dropout = 0.5
        # stable from the first step at paper size (issue 18 item 11): output scale auto
        # (128 / 1024) and a 100-step warm-up of each stage's fresh Adam (dropout 0.5 noise
        # plus Adam's full-size first steps otherwise put joints behind the camera)
        p.warmup_steps = t.warmup_steps = 100
        c.train.batch_size = 256
        p.steps, t.steps = 0, 0  # use the paper's epochs
        c.train.update(steps_per_block=100, checkpoint_every=5000, parallel="auto")
        c.notes = [
            "paper sizes and schedule; lambda of eq. 7 not reported (1.0 here); not in the "
            "paper: outputs x 128 / width, 100-step lr warm-up per stage, clipping 1.0"
        ]

    for v in variants:
        if v == "reproj":
            t.transform_weight = 0.0
            m.num_virtual_views = 0
        elif v == "trans":
            m.num_virtual_views = 0
        elif v == "trans_da":
            pass
        elif v == "no_pretrain":
            p.enabled = False
        elif v == "uncalibrated":
            m.extrinsics = "uncalibrated"
    return c
