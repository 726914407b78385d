"""Li et al. (AAAI 2020) presets: ``--config=experiments/configs/li.py[:<preset>[,<variant>...]]``.

Runtimes: 2-core development CPU; seeds at equal budget: ``python -m experiments.reproduce``.

* default: the embedded synthetic demo (4 views + 8 virtual cameras); 10 minutes on a loaded
  machine. Expected: P1 104, P2 52 mm (synthetic test; one seed, no reference run)::

    python -m experiments.li --workdir=/tmp/li_demo

* ``smoke``: a handful of steps on a tiny synthetic set (the test suite); seconds.
* ``cmu``: CMU mocap, a static rig of 4 virtual cameras per sequence; 5.6 min. Expected (f94e43f,
  seed 0): P1 / P2 100.3 / 59.2 mm action-wise (103.9 / 64.5 frame-wise); 3 seeds, 4,000 steps, on
  the supervised reference's test set (frame-wise): P2 60.2 ± 0.7 vs its lifter's 40.9 ± 0.3 mm::

    python -m experiments.li --workdir=/tmp/li_cmu --config=experiments/configs/li.py:cmu

* ``h36m``: Human3.6M (VideoPose3D npz, ``--config.data.h36m.dir``), its 4 cameras + 8 virtual,
  the paper's sizes and schedule; GPU hours, not run here. Paper (CPN): P1 / P2 57.0 / 44.1 mm.

Variants: ``reproj`` (Table 1 "Reproj"), ``trans`` ("Trans_Reproj"), ``trans_da`` (default,
"+DA"), ``no_pretrain`` (no eq. 6), ``uncalibrated`` (rig estimated from 2D).
"""

from __future__ import annotations

import math

import ml_collections

from experiments.configs import data as shared

PRESETS = ("", "smoke", "cmu", "h36m")
VARIANTS = ("reproj", "trans", "trans_da", "no_pretrain", "uncalibrated")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """The config of ``experiments.li`` for ``arg = "<preset>[,<variant>...]"`` (see module doc)."""
    preset, *variants = [p.strip() for p in (arg or "").split(",")]
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; expected one of {PRESETS[1:]} or none")
    if unknown := [v for v in variants if v and v not in VARIANTS]:
        raise ValueError(f"unknown variant {unknown[0]!r}; expected some of {VARIANTS}")

    c = shared.base_config("li")
    c.preset = arg or "default"
    c.notes = ["CPU-scaled demo schedule and network width (paper: width 1024, 20 + 300 epochs)"]
    c.data = d = shared.data_config(
        num_people={"train_3d": 80, "train_2d": 1, "test": 20, "test_2d_mix": 1},
        poses_per_person=25,
        views_per_pose=4,  # synchronised real views per instant
        h36m_source="cpn_ft_h36m_dbb",  # the paper's CPN detections
    )
    d.cmu_cameras_per = "sequence"  # one static rig per sequence (RANSAC pools its frames)
    d.views = ()  # camera labels forming an instant's views (() = all cameras in the split)
    d.group_keys = ("pose_index",)  # labels identifying one instant (synthetic)
    d.rig_keys = ("pose_index",)  # labels identifying one static camera rig (uncalibrated pooling)

    c.multiview = m = ml_collections.ConfigDict()  # multi-view training groups
    m.num_virtual_views = 8  # extra virtual cameras per instant (paper: 8, 12 views in all)
    v = m.virtual_cameras = ml_collections.ConfigDict()  # jpose.data.VirtualCameraConfig ranges
    v.distance_range = (4.0, 6.0)  # horizontal distance to the subject, metres
    v.height_range = (1.0, 2.2)  # camera height, metres (wider than the real rig's 1.5-1.6 m)
    v.azimuth_range = (0.0, 2.0 * math.pi)  # all around the subject
    v.elevation_range = (-0.05, 0.15)  # extra downward tilt, radians
    v.focal_range = (1140.0, 1150.0)  # pixels
    v.image_size = (1000, 1000)  # pixels
    m.extrinsics = "calibrated"  # calibrated | uncalibrated (jpose.multiview estimates)
    m.uncalibrated = u = ml_collections.ConfigDict()
    u.num_hypotheses = 256  # RANSAC minimal samples
    u.threshold_px = 3.0  # Sampson-distance inlier threshold, pixels
    u.max_correspondences = 4096  # pooled joints per rig and view pair (random subset)
    u.chunk = 64  # rig problems per compiled call
    u.noise_levels_px = (0.0, 1.0, 2.0, 5.0, 10.0)  # estimator report: 2D noise std, pixels
    u.outlier_fraction = 0.1  # estimator report: fraction of correspondences replaced
    u.report_trials = 20  # estimator report: synthetic rigs per noise level

    c.model = ml_collections.ConfigDict()
    c.model.width = 128  # paper: 1024 (both branches)
    c.model.root_width = 128  # root-position branch width (paper: same as the lifter)
    c.model.dropout = 0.0  # paper: Martinez-style dropout (0.5); 0 converges better at CPU sizes
    c.model.root_depth_offset_m = 5.0  # added to the root branch's depth (not in the paper)
    c.model.zero_init_output = True  # zero-initialised output layers (not in the paper)
    c.model.output_scale = 0.0  # multiplier of both branches' metre outputs (not in the paper);
    # 0 = auto, min(1, 128 / width): at width 1024 Adam's first steps throw joints behind the camera

    # batch_size = instants per step (each with all its views and view pairs); clip_norm is not
    # in the paper: loss spikes at the depth clamp otherwise derail Adam (CMU: P1 679 -> 94 mm)
    c.train = shared.train_config(batch_size=128)
    c.stages = ml_collections.ConfigDict()
    p = c.stages.pretrain = shared.stage_config(300, 20.0)  # paper: 20 epochs (CPU: 300 steps)
    p.enabled = True  # eq. 6 pre-training (Fig. 6 ablation: False)
    p.kind = "constant"  # learning-rate schedule (jpose.training.schedules)
    p.boundaries = ()  # epochs of x0.1 decays (none: constant)
    p.warmup_steps = 0  # linear lr warm-up of the stage's fresh Adam (not in the paper)
    t = c.stages.train = shared.stage_config(1500, 300.0)  # paper: 300 epochs (CPU: 1500 steps)
    t.kind = "step"  # x factor at each boundary (paper: x0.1 every 100 epochs)
    t.boundaries = (100.0, 200.0)  # epochs (rescaled to the stage length when steps > 0)
    t.factor = 0.1
    t.warmup_steps = 0  # linear lr warm-up (not in the paper; h36m preset: 100)
    t.transform_weight = 1.0  # lambda of eq. 7 (0 = re-projection only, Table 1 "Reproj")
    t.confidence_view = "source"  # eq. 5 weights (jpose.losses.li_transform_reprojection_loss)
    t.confidence_weighting = True  # the w of eqs. 2 and 5; False = ablation: every joint 1

    # simulated detections: the noisy 2D is the lifter input and re-projection target, its
    # confidence eqs. 2 / 5's weight (paper: heatmap maxima); off: published numbers use GT 2D
    c.noise = shared.noise_config(enabled=False)

    c.eval = shared.eval_config(batch_size=2048)
    c.eval.estimator_report = True  # RANSAC relative-pose accuracy table on synthetic rigs

    if preset == "smoke":
        shared.smoke(c, steps=4, eval_batch=64, batch_size=8)
        d.synthetic.views_per_pose = 3
        m.num_virtual_views = 2
        u.update(num_hypotheses=16, chunk=16, noise_levels_px=(0.0, 2.0), report_trials=2)
        c.model.width = c.model.root_width = 32
        c.notes = ["smoke test: a few steps, numbers meaningless"]
    elif preset == "cmu":
        d.update(preset="cmu", group_keys=("sequence", "frame"), rig_keys=("sequence",))
        p.steps, t.steps = 300, 2400
        c.notes = [
            "CPU budget (shared 2-core machine): width 128, no dropout, pre-train 300 steps + "
            "train 2400 steps at batch 128 instants, lr x0.1 at 1/3 and 2/3 of training "
            "(paper: width 1024, 20 + 300 epochs); gradient clipping 1.0 (not in the paper)"
        ]
    elif preset == "h36m":
        d.update(preset="h36m", group_keys=("subject", "sequence", "frame"), rig_keys=("subject",))
        d.views = (0, 1, 2, 3)
        c.model.update(width=1024, root_width=1024, dropout=0.5)
        # stable from the first step at paper size (issue 18 item 11): auto output scale, warm-up
        p.warmup_steps = t.warmup_steps = 100
        p.steps, t.steps = 0, 0  # use the paper's epochs
        c.train.update(batch_size=256, steps_per_block=100, checkpoint_every=5000, parallel="auto")
        c.notes = [
            "paper sizes and schedule; lambda of eq. 7 not reported (1.0 here); not in the "
            "paper: outputs x 128 / width, 100-step lr warm-up per stage, clipping 1.0"
        ]

    if "reproj" in variants or "trans" in variants:  # no virtual cameras (no "+DA")
        m.num_virtual_views = 0
    if "reproj" in variants:
        t.transform_weight = 0.0
    if "no_pretrain" in variants:
        p.enabled = False
    if "uncalibrated" in variants:
        m.extrinsics = "uncalibrated"
    return c
