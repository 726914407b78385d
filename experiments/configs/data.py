"""The config blocks every method shares: ``config.train``'s run options (read by
``experiments.common.train_options``), ``config.data`` (``experiments.common.load_datasets``),
``config.eval``, ``config.noise``, stages and the smoke-test settings."""

from __future__ import annotations

from collections.abc import Mapping

from ml_collections import ConfigDict

__all__ = [
    "base_config",
    "data_config",
    "eval_config",
    "noise_config",
    "smoke",
    "stage_config",
    "train_config",
]
_SPLITS = ("train_3d", "train_2d", "test", "test_2d_mix", "val_2d")


def data_config(
    preset: str = "synthetic",
    *,
    num_people: Mapping[str, int] | None = None,
    poses_per_person: int = 50,
    views_per_pose: int = 1,
    normalization: str = "vp",
    h36m_source: str = "gt",
) -> ConfigDict:
    """The ``config.data`` block.

    Args:
      preset: ``synthetic | cmu | cmu+coco | h36m``.
      num_people: synthetic people per split (``train_3d``, ``train_2d``, ``test``,
        ``test_2d_mix``); default 200 / 200 / 40 / 40.
      poses_per_person: poses per synthetic person.
      views_per_pose: virtual cameras per synthetic pose.
      normalization: 2D normalisation of the Human3.6M preset (``vp`` or ``image``).
      h36m_source: Human3.6M 2D source.
    """
    d = ConfigDict()
    d.preset = preset  # synthetic | cmu | cmu+coco | h36m
    d.seed = 0  # synthetic generator / virtual-camera / subset seed
    d.data_dir = ""  # shared data folder ("" = jpose.data.shared_data_dir())
    people = num_people or {"train_3d": 200, "train_2d": 200, "test": 40, "test_2d_mix": 40}
    d.synthetic = ConfigDict()
    d.synthetic.num_people = dict(people)  # synthetic people per split
    d.synthetic.poses_per_person = poses_per_person  # poses per synthetic person
    d.synthetic.views_per_pose = views_per_pose  # virtual cameras per synthetic pose
    d.cmu_subsample = 4  # CMU frame subsampling (120 -> 30 fps)
    d.cmu_num_cameras = 4  # virtual cameras per CMU frame
    d.cmu_cameras_per = "frame"  # frame (random cameras per frame) | sequence (a static rig, Li)
    d.cmu_actions_3d = ""  # cross-domain split: comma-separated CMU actions giving 3D supervision
    # (their training sequences); the test split keeps the others ("" = the release's split)
    d.h36m = ConfigDict()
    d.h36m.dir = ""  # folder with data_3d_h36m.npz / data_2d_h36m_<source>.npz
    d.h36m.path_3d = ""  # explicit 3D file (overrides dir)
    d.h36m.path_2d = ""  # explicit 2D file (overrides dir/source)
    d.h36m.source = h36m_source  # 2D source: gt | cpn_ft_h36m_dbb | detectron_ft_h36m | ...
    d.h36m.subsample = 1  # training frames: every n-th (50 fps / n)
    d.h36m.test_subsample = 1  # test frames: every n-th (1 = the standard protocol)
    d.h36m.normalization = normalization  # 2D normalisation: vp (VideoPose3D) | image
    d.wild2d = ConfigDict()
    d.wild2d.coco_train = ""  # 2D-only COCO train file in pixels (h36m preset)
    d.wild2d.mpii = ""  # 2D-only MPII file (h36m preset; needs mpii_image_sizes)
    d.wild2d.mpii_image_sizes = ""  # JSON {image name: [width, height]} for the MPII file (no
    # sizes stored): MPII is then normalised like Human3.6M; without it MPII is refused
    d.wild2d.coco_val = ""  # COCO val file (2D-only evaluation)
    d.wild2d.min_h36m_joints = 17  # keep persons with at least this many H36M joints
    d.cross = ConfigDict()
    d.cross.mpi3dhp_root = ""  # MPI-INF-3DHP test set folder (cross-dataset evaluation)
    d.cross.pw3d_path = ""  # 3DPW sequenceFiles folder (cross-dataset evaluation)
    d.max_examples = ConfigDict({s: 0 for s in _SPLITS})  # per split, 0 = all
    return d


def _override(block: ConfigDict, values: Mapping[str, object], what: str) -> ConfigDict:
    for name, value in values.items():
        if name not in block:
            raise KeyError(f"{what} {name!r} (fields: {sorted(block)})")
        block[name] = value
    return block


def base_config(experiment: str, **blocks: ConfigDict) -> ConfigDict:
    """A config with the top-level fields every method shares, then ``blocks`` (``data=...``)."""
    c = ConfigDict()
    c.experiment = experiment  # the method (experiments.<experiment>; inference registry)
    c.seed = 0  # base PRNG seed
    c.distributed = False  # multi-process pmap over jax.distributed (README "Multi-process")
    c.update(blocks)
    return c


def train_config(*, validation: bool = False, **values: object) -> ConfigDict:
    """The ``config.train`` block's run options, shared by every method (methods add their own
    fields), with the validation options when ``validation``; ``values`` override defaults."""
    t = ConfigDict()
    t.batch_size = 256  # global batch of the main training dataset (all devices, all processes)
    t.steps_per_block = 50  # K steps fused in one compiled lax.scan call (stages: multiples of K)
    t.parallel = "none"  # none | auto (pmap over all local devices) | <n> devices
    t.checkpoint_every = 0  # steps between checkpoints (0 = end of each stage only)
    t.keep_checkpoints = 2  # most recent checkpoints kept per stage
    t.log_every = 1  # blocks between metric records
    t.progress = True  # progress line (refreshed on a terminal; False = none)
    t.clip_norm = 1.0  # global gradient-norm clipping of every player (0 = off)
    if validation:
        t.val_fraction = 0.0  # share of train_3d held out as validation (0 = no validation)
        t.eval_every = 0  # steps between validations (multiple of K; 0 = end of each stage)
        t.select = "final"  # evaluated checkpoint: final | best (lowest validation MPJPE)
    return _override(t, values, "train_config: no run option")


def eval_config(**values: object) -> ConfigDict:
    """The ``config.eval`` block of the methods evaluated on 3D splits; ``values`` override."""
    e = ConfigDict()
    e.batch_size = 4096  # evaluation batch (fixed: one compilation)
    e.splits = ""  # comma-separated 3D splits ("" = every 3D non-train split)
    e.action_key = ""  # label grouped as "action" ("" = action | pose_class | ...)
    e.figures = True  # write PNG figures (needs matplotlib)
    return _override(e, values, "eval_config: no option")


def stage_config(steps: int, epochs: float = 0.0, lr: float = 1e-3) -> ConfigDict:
    """A ``config.stages.<name>`` block's common fields; the method sets its schedule's
    (``jpose.training.schedules``) and its own on the returned block."""
    s = ConfigDict()
    s.steps = steps  # total steps (> 0 overrides epochs)
    s.epochs = epochs  # passes over the stage's training split (used when steps == 0)
    s.lr = lr  # learning rate (Adam)
    return s


def noise_config(*, enabled: bool) -> ConfigDict:
    """The ``config.noise`` block: the options of ``jpose.augment.detection_noise`` (simulated
    detections with confidences from GT 2D; CameraPose's model, also used by Li et al.)."""
    n = ConfigDict()
    n.enabled = enabled  # corrupt GT 2D and draw confidences (fresh every step)
    n.conf_power = 3.0  # c = 1 - (1 - conf_min) u^conf_power, u ~ U(0, 1) (mean 0.76)
    n.conf_min = 0.05  # lowest confidence
    n.sigma_min = 0.004  # noise std at c = 1 (normalised units: 0.01 = 5 px of 1000)
    n.sigma_max = 0.04  # noise std at c = 0
    n.outlier_prob = 0.2  # outlier probability at c = 0 (scaled by 1 - c)
    n.outlier_sigma = 0.1  # outlier offset std (a confused joint)
    return n


def smoke(c: ConfigDict, *, steps: int, eval_batch: int, poses: int = 8, **train: object) -> None:
    """The smoke-test settings every method shares, in place; call it first in a smoke branch: it
    overwrites ``data.synthetic`` (at most 4 / 2 people per training / test split, ``poses`` each;
    the image methods' data blocks have none), every stage's ``steps``, ``train.steps_per_block``
    (2) and the ``train`` options given, ``eval.batch_size`` and ``eval.figures`` (False)."""
    if "synthetic" in c.data:
        s = c.data.synthetic
        s.num_people = {
            k: min(n, 4 if k.startswith("train") else 2) for k, n in s.num_people.items()
        }
        s.poses_per_person = poses
    for stage in c.stages.values():
        stage.steps = steps
    _override(c.train, {"steps_per_block": 2, **train}, "smoke: no run option")
    c.eval.batch_size = eval_batch
    if "figures" in c.eval:
        c.eval.figures = False
