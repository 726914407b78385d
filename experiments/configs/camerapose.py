r"""CameraPose (Yang et al., WACV 2023): presets of ``experiments/configs/camerapose.py``.

Runtimes: wall time on the 2-core development CPU, compilation included. Comparisons over seeds
at equal budget: ``python -m experiments.reproduce`` (REPRODUCTION.md).

* default: the embedded synthetic demo (no files); widths 128-512, 300 / 250 / 400 steps (the
  paper: 256-1024, 100 / 10 / 75 epochs); 604 s on a shared machine (75b2559). Expected:
  synthetic test MPJPE 100.4, P-MPJPE 61.6 mm action-wise (one seed, no reference run)::

    python -m experiments.camerapose --workdir=/tmp/cp_default

* ``smoke``: tiny networks, 2 steps per stage (the test suite); seconds.
* ``cmu``: CMU mocap 2D-3D (virtual cameras) + COCO train2017 2D-only; 300 / 300 / 600 steps at
  batch 256; 156 s (eaf7070). Expected: CMU test MPJPE 95.8, P-MPJPE 77.3 mm action-wise (frame
  106.2 / 83.0), COCO val re-projection 11.1 px (one seed). Ablations:
  ``--config.method.refine=False``, ``camera=False``, ``gan=False`` (all three: the Martinez
  baseline). At equal budget over 3 seeds (REPRODUCTION.md; 200 / 100 / 400 steps, held-out
  CMU actions) the full method is worse than all switches off: P2 92.4 ± 3.7 vs 71.3 ± 0.5 mm::

    python -m experiments.camerapose --config=experiments/configs/camerapose.py:cmu \
        --workdir=/tmp/cp_cmu

* ``h36m``: Human3.6M (VideoPose3D npz, ``--config.data.h36m.dir``) + COCO 2D-only, optional
  ``--config.data.cross.mpi3dhp_root`` / ``pw3d_path``; the paper's sizes and schedule; GPU
  hours, not run here. Paper (Table 4, GT 2D): H36M 38.9 mm, 3DHP 78.9, 3DPW PA 63.3.
"""

from __future__ import annotations

import ml_collections

from experiments.configs import wsp as wsp_config
from experiments.configs.data import (
    data_config,
    eval_config,
    noise_config,
    smoke_data,
    train_config,
)

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
    c = ml_collections.ConfigDict()
    c.experiment = "camerapose"
    c.seed = 0  # base PRNG key; stage i trains with fold_in(key, i); step key fold_in(., step)
    c.distributed = False  # multi-process pmap over jax.distributed (README "Multi-process")

    # ---------------------------------------------------------------- data
    d = c.data = data_config(
        num_people={"train_3d": 100, "train_2d": 100, "test": 40, "test_2d_mix": 40},
        normalization="image",  # CameraPose: (-1, 1) by image width and height
    )

    # ---------------------------------------------------------------- detection-noise model
    # GT-2D datasets have no detector output for the refinement network (Sec. 3.1). Each joint
    # gets a synthetic confidence c = 1 - (1 - conf_min) u^conf_power, u ~ U(0, 1) (mean 0.76
    # with the defaults), and the GT 2D is corrupted by Gaussian noise of std
    # sigma_min + (sigma_max - sigma_min) (1 - c)
    # (normalised image units: 0.01 = 5 px on a 1000 px wide image), plus, with probability
    # outlier_prob * (1 - c), an outlier offset of std outlier_sigma (a confused joint).
    # Joints the source marks missing (confidence 0) stay at confidence 0.
    n = c.noise = noise_config(enabled=True)  # refinement network and lifter inputs
    n.eval_seed = 1234  # fixed noise of the "+noise" evaluation inputs

    # ---------------------------------------------------------------- method switches
    m = c.method = ml_collections.ConfigDict()
    m.refine = True  # refinement network (stage 1 + input of the lifter); False = raw 2D
    m.camera = True  # camera branch + 2D-only data (eqs. 7, 8, 17); False = no camera, no 2D-only
    m.gan = True  # PoseAug generator + D_2D / D_3D; False = no augmentation
    # train the refinement network end to end in stage 3 (eq. 1, weighted by lambda_ref of eqs.
    # 16-17). Off by default: L_ref (normalised units^2, ~1e-5) is tiny next to L_3D (m^2), so
    # with the unreported lambda_ref the refined 2D drifts away from a 2D pose; the frozen
    # stage-1 network is the plug-in module of the paper's Table 5.
    m.finetune_refine = False

    # ---------------------------------------------------------------- models
    mo = c.model = ml_collections.ConfigDict()
    mo.lifter = ml_collections.ConfigDict(
        {"kind": "martinez", "width": 512, "num_blocks": 2, "dropout": 0.25}
    )
    # zero-initialised output layer: the untrained lifter predicts every joint at the root, so the
    # re-projection loss (eq. 7) starts finite and small (Martinez: Kaiming init, False)
    mo.lifter.zero_init_output = True
    # Martinez's standardisation: the lifter reads z-scored 2D and predicts z-scored 3D (training
    # statistics, stored in model.json); without it training starts metres off (issue 17)
    mo.lifter.standardize = True
    mo.refine = ml_collections.ConfigDict({"width": 256, "num_blocks": 2})  # paper: 512
    mo.camera = ml_collections.ConfigDict({"width": 256, "num_blocks": 2})  # paper: 512, 2
    mo.camera.inputs = "2d+3d"  # camera branch sees the refined 2D and the lifted 3D ("2d": 2D)
    mo.generator = ml_collections.ConfigDict({"width": 128, "num_stages": 2, "noise_dim": 48})
    mo.d2d = ml_collections.ConfigDict({"width": 100, "input": "kcs"})  # kcs (eq. 12) | pose
    mo.d3d = ml_collections.ConfigDict({"width": 128, "bottleneck": 100})  # PoseAug: 256 (h36m)

    # ---------------------------------------------------------------- losses (Sec. 4.3)
    lo = c.loss = ml_collections.ConfigDict()
    lo.lambda_cam = 0.01
    lo.lambda_2d_phi = 0.5  # lambda_2D,phi (2D-3D batches, eq. 16)
    lo.lambda_2d_phi_prime = 0.2  # lambda_2D,phi' (2D-only batches, eq. 17)
    lo.lambda_3d = 1.0
    lo.lambda_ref_phi = 0.1  # not reported in the paper
    lo.lambda_ref_phi_prime = 0.1  # not reported in the paper
    lo.lambda_adv_weak2d = 0.01  # D_2D on re-projections of 2D-only samples, lifter side
    lo.reproj_scale = 1.0  # L_2D computed on 2D in normalised units times this
    lo.min_depth = 0.3  # depth clamp (m) of the re-projection: bounds the loss of bad lifts
    # WSP (Qiu et al.) pairwise relative-depth loss (eq. 9) on the predicted absolute depths
    # (lifter + camera-branch translation) of two people of one image, in stage 3's 2D-only
    # phase; pairs from config.rd (jpose.data.relative_depth.load_pair_splits). 0 = off
    # (CameraPose as published).
    lo.lambda_rd = 0.0
    lo.rd_temperature = 0.1  # metres per logit unit
    lo.rd_root_only = True  # RD gradient through the root translation only (not the lifter's
    # per-joint depths): on the cmu preset the joint-level variant stretched the lifted poses

    c.rd = wsp_config.rd_config()  # relative-depth pairs (used when loss.lambda_rd > 0)

    # ---------------------------------------------------------------- GAN / augmentation
    g = c.gan = ml_collections.ConfigDict()
    g.lr = 1e-4  # G and D learning rate (PoseAug); constant
    g.max_angle = 0.5  # RT rotation limit (rad) of max_angle * tanh (PoseAug: pi)
    g.translation_limit = 0.3  # new root x, y = old + limit * tanh (metres)
    g.depth_log_limit = 0.3  # new root depth = old * exp(limit * tanh)
    g.bl_tanh_limit = 0.2  # bone-length ratio limit (PoseAug 0.2)
    g.ba_range_target = 0.205  # bone-angle range loss band (PoseAug)
    g.ba_range_width = 0.165
    g.bl_range_limit = 0.1  # bone-length rectified L2 band (PoseAug)
    # generator objective and D cadence: PoseAug's (Gong et al. CVPR 2021, its code; CameraPose:
    # "similar to PoseAug"): L_G = 1 L_adv^2D + 6 L_adv^3D + 3 L_range, D_2D / D_3D updated every
    # 2nd iteration (df = 2), in every preset (measured on the demo and cmu, BUILD_NOTES.md
    # issue 18.5: D_3D no longer at 0.95-1.0, errors no worse than the former 1 / 1 / 1, D every
    # iteration)
    g.lambda_adv_2d = 1.0  # generator: LS-GAN term of D_2D (PoseAug 1)
    g.lambda_adv_3d = 6.0  # generator: LS-GAN term of D_3D (PoseAug 6)
    g.lambda_range = 3.0  # generator: range losses (PoseAug 3)
    g.d_every = 2  # discriminators updated every n-th iteration (PoseAug 2)
    g.aug_weight = 1.0  # weight of augmented pairs in the lifter loss
    g.valid_bound = 1.5  # augmented 2D kept when every |coordinate| <= bound (normalised)

    # ---------------------------------------------------------------- training
    t = c.train = train_config(parallel="auto")  # batch_size: 2D-3D samples per step
    t.batch_size_2d = 256  # 2D-only samples per step (stage 3; stage 1 if refining)
    t.weak2d_bn_stats = True  # 2D-only batches update batch-norm running statistics (PyTorch)
    t.batch_size_rd = 64  # relative-depth pairs per step (stage 3, when loss.lambda_rd > 0)

    # ---------------------------------------------------------------- stages (CPU-scaled)
    # "steps" > 0 overrides "epochs" (epochs are passes over the 2D-3D training split);
    # learning-rate boundaries are in epochs (factor 0.1). paper_schedule() sets the paper's.
    s = c.stages = ml_collections.ConfigDict()
    s.stage1 = ml_collections.ConfigDict(
        {"epochs": 100.0, "steps": 300, "lr": 1e-3, "kind": "step", "boundaries": (15,),
         "factor": 0.1}
    )  # fmt: skip
    s.stage2 = ml_collections.ConfigDict(
        {"epochs": 10.0, "steps": 250, "lr": 1e-3, "kind": "constant", "boundaries": (),
         "factor": 0.1}
    )  # fmt: skip
    s.stage3 = ml_collections.ConfigDict(
        {"epochs": 75.0, "steps": 400, "lr": 1e-3, "kind": "step", "boundaries": (8,),
         "factor": 0.1}
    )  # fmt: skip

    # ---------------------------------------------------------------- evaluation
    e = c.eval = eval_config(batch_size=2048)
    e.noisy_input = True  # also evaluate on 2D with the detection-noise model ("+noise")
    e.figure_samples = 4  # examples per figure

    if preset is None:
        return c
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; expected one of {PRESETS}")
    if preset == "smoke":
        smoke_data(d, poses_per_person=16)
        mo.lifter.update(width=32, num_blocks=1)
        mo.refine.update(width=32, num_blocks=1)
        mo.camera.update(width=32, num_blocks=1)
        mo.generator.update(width=16, num_stages=1, noise_dim=4)
        mo.d2d.width = 16
        mo.d3d.update(width=16, bottleneck=8)
        t.batch_size = t.batch_size_2d = 16
        t.steps_per_block = 2
        t.progress = False
        for st in (s.stage1, s.stage2, s.stage3):
            st.steps = 2
        e.batch_size = 64
        e.figures = False
        t.parallel = "none"
        c.rd.synthetic.update(num_images=40, test_fraction=0.25)
        t.batch_size_rd = 8
    elif preset == "cmu":
        c.rd.source = "coco"
        d.preset = "cmu+coco"
        d.max_examples.val_2d = 0
        s.stage1.update(steps=300, boundaries=(2,))
        s.stage2.update(steps=300)
        s.stage3.update(steps=600, boundaries=(4,))
    elif preset == "h36m":
        c.rd.source = "coco"
        d.preset = "h36m"
        d.wild2d.coco_train = "../shared/data/wild2d_coco_train.npz"  # pixels + image sizes
        d.wild2d.coco_val = "../shared/data/wild2d_coco.npz"
        mo.lifter.update(width=1024, num_blocks=2, dropout=0.5)
        mo.refine.update(width=512, num_blocks=2)
        mo.camera.update(width=512, num_blocks=2)
        mo.generator.update(width=256, num_stages=2)
        mo.d3d.update(width=256, bottleneck=100)  # PoseAug's KCSpath: 256 wide, 100 bottleneck
        t.batch_size = t.batch_size_2d = 1024
        t.steps_per_block = 100
        t.checkpoint_every = 5000
        g.max_angle = 3.141592653589793
        paper_schedule(c)
    return c
