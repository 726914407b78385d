r"""CameraPose (Yang et al., WACV 2023): presets of ``experiments/configs/camerapose.py``.

Runtimes: 2-core CPU, compilation included; equal-budget seeds: ``python -m experiments.reproduce``.

* default: the embedded synthetic demo (no files); widths 128-512, 300 / 250 / 400 steps (the
  paper: 256-1024, 100 / 10 / 75 epochs); 604 s on a shared machine (75b2559). Expected:
  synthetic test MPJPE 100.4, P-MPJPE 61.6 mm action-wise (one seed, no reference run)::

    python -m experiments.camerapose --workdir=/tmp/cp_default

* ``smoke``: tiny networks, 2 steps per stage (the test suite); seconds.
* ``cmu``: CMU mocap 2D-3D (virtual cameras) + COCO train2017 2D-only; 156 s (eaf7070). Expected:
  CMU test MPJPE 95.8, P-MPJPE 77.3 mm action-wise (frame 106.2 / 83.0), COCO val re-projection
  11.1 px (one seed). Ablations: ``--config.method.refine=False``, ``camera=False``, ``gan=False``
  (all three: the Martinez baseline); at equal budget over 3 seeds (200 / 100 / 400 steps,
  held-out CMU actions) the full method is worse than all off: P2 92.4 ± 3.7 vs 71.3 ± 0.5 mm::

    python -m experiments.camerapose --config=experiments/configs/camerapose.py:cmu \
        --workdir=/tmp/cp_cmu

* ``h36m``: Human3.6M (VideoPose3D npz, ``--config.data.h36m.dir``) + COCO 2D-only, optional
  ``--config.data.cross.mpi3dhp_root`` / ``pw3d_path``; the paper's sizes and schedule; GPU
  hours, not run here. Paper (Table 4, GT 2D): H36M 38.9 mm, 3DHP 78.9, 3DPW PA 63.3.
"""

from __future__ import annotations

import ml_collections

from experiments.configs import data as shared
from experiments.configs import wsp as wsp_config

PRESETS = ("smoke", "cmu", "h36m")


def paper_schedule(config: ml_collections.ConfigDict) -> None:
    """The paper's Sec. 4.3 schedule: epochs and learning rates of the three stages."""
    s = config.stages
    s.stage1.update(epochs=100.0, steps=0, lr=1e-4, kind="step", boundaries=(30, 60, 90))
    s.stage2.update(epochs=10.0, steps=0, lr=1e-4, kind="constant", boundaries=())
    s.stage3.update(epochs=75.0, steps=0, lr=5e-4, kind="step", boundaries=(30, 60))


def poseaug_gan(config: ml_collections.ConfigDict) -> None:
    """PoseAug's generator objective and discriminator cadence (Gong et al. CVPR 2021, its code
    ``function_poseaug``): ``L_G = 1 L_adv^2D + 6 L_adv^3D + 3 L_diff``, D every 2nd step."""
    config.gan.update(lambda_adv_2d=1.0, lambda_adv_3d=6.0, lambda_range=3.0, d_every=2)


def get_config(preset: str | None = None) -> ml_collections.ConfigDict:
    """The CameraPose config; ``preset`` in :data:`PRESETS` or None (synthetic demo)."""
    if preset not in (None, *PRESETS):
        raise ValueError(f"unknown preset {preset!r}; expected one of {PRESETS}")
    c = shared.base_config("camerapose")
    d = c.data = shared.data_config(
        num_people={"train_3d": 100, "train_2d": 100, "test": 40, "test_2d_mix": 40},
        normalization="image",  # CameraPose: (-1, 1) by image width and height
    )
    c.noise = shared.noise_config(enabled=True)  # simulated detections (GT 2D has none, Sec. 3.1)
    c.noise.eval_seed = 1234  # fixed noise of the "+noise" evaluation inputs

    m = c.method = ml_collections.ConfigDict()
    m.refine = True  # refinement network (stage 1 + input of the lifter); False = raw 2D
    m.camera = True  # camera branch + 2D-only data (eqs. 7, 8, 17); False = no camera, no 2D-only
    m.gan = True  # PoseAug generator + D_2D / D_3D; False = no augmentation
    # refinement network trained end to end in stage 3 (eq. 1, lambda_ref). Off: L_ref (~1e-5)
    # is tiny next to L_3D (m^2), the refined 2D drifts; frozen: Table 5's plug-in module
    m.finetune_refine = False

    mo = c.model = ml_collections.ConfigDict()
    mo.lifter = ml_collections.ConfigDict({"kind": "martinez", "width": 512, "num_blocks": 2})
    mo.lifter.dropout = 0.25  # Martinez: 0.5 (h36m preset)
    mo.lifter.zero_init_output = True  # every joint at the root at first: eq. 7 starts small
    mo.lifter.standardize = True  # Martinez's z-scored 2D in / 3D out (else starts metres off)
    mo.refine = ml_collections.ConfigDict({"width": 256, "num_blocks": 2})  # paper: 512
    mo.camera = ml_collections.ConfigDict({"width": 256, "num_blocks": 2})  # paper: 512, 2
    mo.camera.inputs = "2d+3d"  # camera branch sees the refined 2D and the lifted 3D ("2d": 2D)
    mo.generator = ml_collections.ConfigDict({"width": 128, "num_stages": 2, "noise_dim": 48})
    mo.d2d = ml_collections.ConfigDict({"width": 100, "input": "kcs"})  # kcs (eq. 12) | pose
    mo.d3d = ml_collections.ConfigDict({"width": 128, "bottleneck": 100})  # PoseAug: 256 (h36m)

    lo = c.loss = ml_collections.ConfigDict()  # Sec. 4.3
    lo.lambda_cam = 0.01
    lo.lambda_2d_phi = 0.5  # lambda_2D,phi (2D-3D batches, eq. 16)
    lo.lambda_2d_phi_prime = 0.2  # lambda_2D,phi' (2D-only batches, eq. 17)
    lo.lambda_3d = 1.0
    lo.lambda_ref_phi = 0.1  # not reported in the paper
    lo.lambda_ref_phi_prime = 0.1  # not reported in the paper
    lo.lambda_adv_weak2d = 0.01  # D_2D on re-projections of 2D-only samples, lifter side
    lo.reproj_scale = 1.0  # L_2D computed on 2D in normalised units times this
    lo.min_depth = 0.3  # depth clamp (m) of the re-projection: bounds the loss of bad lifts
    lo.lambda_rd = 0.0  # WSP eq. 9 on two people's absolute depths (stage 3, 2D-only); 0 = off
    lo.rd_temperature = 0.1  # metres per logit unit
    lo.rd_root_only = True  # RD via the root translation (per-joint depths stretched cmu poses)

    c.rd = wsp_config.rd_config()  # relative-depth pairs (used when loss.lambda_rd > 0)

    g = c.gan = ml_collections.ConfigDict()
    g.lr = 1e-4  # G and D learning rate (PoseAug); constant
    g.max_angle = 0.5  # RT rotation limit (rad) of max_angle * tanh (PoseAug: pi)
    g.translation_limit = 0.3  # new root x, y = old + limit * tanh (metres)
    g.depth_log_limit = 0.3  # new root depth = old * exp(limit * tanh)
    g.bl_tanh_limit = 0.2  # bone-length ratio limit (PoseAug 0.2)
    g.ba_range_target = 0.205  # bone-angle range loss band (PoseAug)
    g.ba_range_width = 0.165
    g.bl_range_limit = 0.1  # bone-length rectified L2 band (PoseAug)
    # generator objective, D cadence: PoseAug's (poseaug_gan) in every preset (BUILD_NOTES 18.5)
    g.lambda_adv_2d = 1.0  # generator: LS-GAN term of D_2D (PoseAug 1)
    g.lambda_adv_3d = 6.0  # generator: LS-GAN term of D_3D (PoseAug 6)
    g.lambda_range = 3.0  # generator: range losses (PoseAug 3)
    g.d_every = 2  # discriminators updated every n-th iteration (PoseAug 2)
    g.aug_weight = 1.0  # weight of augmented pairs in the lifter loss
    g.valid_bound = 1.5  # augmented 2D kept when every |coordinate| <= bound (normalised)

    t = c.train = shared.train_config(parallel="auto")  # batch_size: 2D-3D samples per step
    t.batch_size_2d = 256  # 2D-only samples per step (stage 3; stage 1 if refining)
    t.weak2d_bn_stats = True  # 2D-only batches update batch-norm running statistics (PyTorch)
    t.batch_size_rd = 64  # relative-depth pairs per step (stage 3, when loss.lambda_rd > 0)

    s = c.stages = ml_collections.ConfigDict()  # CPU-scaled (the paper's: paper_schedule)
    s.stage1 = shared.stage_config(300, 100.0)
    s.stage2 = shared.stage_config(250, 10.0)
    s.stage3 = shared.stage_config(400, 75.0)
    for stage, boundaries in zip(s.values(), ((15,), (), (8,))):
        stage.kind = "step" if boundaries else "constant"  # lr x factor at each boundary
        stage.boundaries = boundaries  # epochs
        stage.factor = 0.1

    e = c.eval = shared.eval_config(batch_size=2048)
    e.noisy_input = True  # also evaluate on 2D with the detection-noise model ("+noise")
    e.figure_samples = 4  # examples per figure

    if preset == "smoke":
        shared.smoke(c, steps=2, eval_batch=64, poses=16, batch_size=16, progress=False)
        for net in (mo.lifter, mo.refine, mo.camera):
            net.update(width=32, num_blocks=1)
        mo.generator.update(width=16, num_stages=1, noise_dim=4)
        mo.d2d.width = 16
        mo.d3d.update(width=16, bottleneck=8)
        t.update(batch_size_2d=16, batch_size_rd=8, parallel="none")
        c.rd.synthetic.update(num_images=40, test_fraction=0.25)
    elif preset == "cmu":
        c.rd.source = "coco"
        d.preset = "cmu+coco"
        s.stage1.update(steps=300, boundaries=(2,))
        s.stage2.update(steps=300)
        s.stage3.update(steps=600, boundaries=(4,))
    elif preset == "h36m":
        c.rd.source = "coco"
        d.preset = "h36m"
        d.wild2d.coco_train = "../shared/data/wild2d_coco_train.npz"  # pixels + image sizes
        d.wild2d.coco_val = "../shared/data/wild2d_coco.npz"
        mo.lifter.update(width=1024, num_blocks=2, dropout=0.5)
        mo.refine.width = mo.camera.width = 512
        mo.generator.width = mo.d3d.width = 256  # D_3D: PoseAug's KCSpath (100 bottleneck)
        t.update(batch_size=1024, batch_size_2d=1024, steps_per_block=100, checkpoint_every=5000)
        g.max_angle = 3.141592653589793
        paper_schedule(c)
    return c
