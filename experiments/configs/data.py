"""The blocks every method's config shares: ``config.train``'s run options (read by
``experiments.common.train_options``), ``config.data`` (read by
``experiments.common.load_datasets``), ``config.noise``, and the smoke-test sizes."""

from __future__ import annotations

from collections.abc import Mapping

import ml_collections

__all__ = ["data_config", "noise_config", "smoke_data", "train_config"]

_SPLITS = ("train_3d", "train_2d", "test", "test_2d_mix", "val_2d")


def data_config(
    preset: str = "synthetic",
    *,
    num_people: Mapping[str, int] | None = None,
    poses_per_person: int = 50,
    views_per_pose: int = 1,
    normalization: str = "vp",
    h36m_source: str = "gt",
) -> ml_collections.ConfigDict:
    """The ``config.data`` block.

    Args:
      preset: ``synthetic | cmu | cmu+coco | h36m``.
      num_people: synthetic people per split (``train_3d``, ``train_2d``, ``test``,
        ``test_2d_mix``); default 200 / 200 / 40 / 40.
      poses_per_person: poses per synthetic person.
      views_per_pose: virtual cameras per synthetic pose.
      normalization: 2D normalisation of the Human3.6M preset (``vp`` or ``image``).
      h36m_source: Human3.6M 2D source.

    Returns:
      A config block; every field documented inline.
    """
    d = ml_collections.ConfigDict()
    d.preset = preset  # synthetic | cmu | cmu+coco | h36m
    d.seed = 0  # synthetic generator / virtual-camera / subset seed
    d.data_dir = ""  # shared data folder ("" = jpose.data.shared_data_dir())
    d.synthetic = ml_collections.ConfigDict()
    d.synthetic.num_people = dict(
        num_people or {"train_3d": 200, "train_2d": 200, "test": 40, "test_2d_mix": 40}
    )
    d.synthetic.poses_per_person = poses_per_person  # poses per synthetic person
    d.synthetic.views_per_pose = views_per_pose  # virtual cameras per synthetic pose
    d.cmu_subsample = 4  # CMU frame subsampling (120 -> 30 fps)
    d.cmu_num_cameras = 4  # virtual cameras per CMU frame
    # frame: new random cameras per frame | sequence: one static rig per sequence (Li et al.)
    d.cmu_cameras_per = "frame"
    # cross-domain split: comma-separated CMU actions whose training sequences give the 3D
    # supervision; the test split keeps the other actions ("" = the release's split)
    d.cmu_actions_3d = ""
    d.h36m = ml_collections.ConfigDict()
    d.h36m.dir = ""  # folder with data_3d_h36m.npz / data_2d_h36m_<source>.npz
    d.h36m.path_3d = ""  # explicit 3D file (overrides dir)
    d.h36m.path_2d = ""  # explicit 2D file (overrides dir/source)
    d.h36m.source = h36m_source  # 2D source: gt | cpn_ft_h36m_dbb | detectron_ft_h36m | ...
    d.h36m.subsample = 1  # training frames: every n-th (50 fps / n)
    d.h36m.test_subsample = 1  # test frames: every n-th (1 = the standard protocol)
    d.h36m.normalization = normalization  # 2D normalisation: vp (VideoPose3D) | image
    d.wild2d = ml_collections.ConfigDict()
    d.wild2d.coco_train = ""  # 2D-only COCO train file in pixels (h36m preset)
    d.wild2d.mpii = ""  # 2D-only MPII file (h36m preset; needs mpii_image_sizes)
    # JSON {image name: [width, height]} for the MPII file (it stores no image sizes): MPII is
    # then normalised like the Human3.6M inputs; without it MPII is refused (never mixed)
    d.wild2d.mpii_image_sizes = ""
    d.wild2d.coco_val = ""  # COCO val file (2D-only evaluation)
    d.wild2d.min_h36m_joints = 17  # keep persons with at least this many H36M joints
    d.cross = ml_collections.ConfigDict()
    d.cross.mpi3dhp_root = ""  # MPI-INF-3DHP test set folder (cross-dataset evaluation)
    d.cross.pw3d_path = ""  # 3DPW sequenceFiles folder (cross-dataset evaluation)
    d.max_examples = ml_collections.ConfigDict({s: 0 for s in _SPLITS})  # per split, 0 = all
    return d


def train_config(**values: object) -> ml_collections.ConfigDict:
    """The ``config.train`` block's run options, shared by every method (methods add their own
    fields, e.g. stage schedules); ``values`` override the defaults below."""
    t = ml_collections.ConfigDict()
    t.batch_size = 256  # global batch of the main training dataset (all devices, all processes)
    t.steps_per_block = 50  # K steps fused in one compiled lax.scan call (stages: multiples of K)
    t.parallel = "none"  # none | auto (pmap over all local devices) | <n> devices
    t.checkpoint_every = 0  # steps between checkpoints (0 = end of each stage only)
    t.keep_checkpoints = 2  # most recent checkpoints kept per stage
    t.log_every = 1  # blocks between metric records
    t.progress = True  # progress line (refreshed on a terminal; False = none)
    t.clip_norm = 1.0  # global gradient-norm clipping of every player (0 = off)
    for name, value in values.items():
        if name not in t:
            raise KeyError(f"train_config: no run option {name!r} (fields: {sorted(t)})")
        t[name] = value
    return t


def eval_config(**values: object) -> ml_collections.ConfigDict:
    """The ``config.eval`` block of the methods evaluated on 3D splits (methods add their own
    fields); ``values`` override the defaults below."""
    e = ml_collections.ConfigDict()
    e.batch_size = 4096  # evaluation batch (fixed: one compilation)
    e.splits = ""  # comma-separated 3D splits ("" = every 3D non-train split)
    e.action_key = ""  # label grouped as "action" ("" = action | pose_class | ...)
    e.figures = True  # write PNG figures (needs matplotlib)
    for name, value in values.items():
        if name not in e:
            raise KeyError(f"eval_config: no option {name!r} (fields: {sorted(e)})")
        e[name] = value
    return e


def noise_config(*, enabled: bool) -> ml_collections.ConfigDict:
    """The ``config.noise`` block: options of ``jpose.augment.detection_noise`` (simulated
    detections with confidences from GT 2D; CameraPose's model, also used by Li et al.)."""
    n = ml_collections.ConfigDict()
    n.enabled = enabled  # corrupt GT 2D and draw confidences (fresh every step)
    n.conf_power = 3.0  # c = 1 - (1 - conf_min) u^conf_power, u ~ U(0, 1)
    n.conf_min = 0.05  # lowest confidence
    n.sigma_min = 0.004  # noise std at c = 1 (normalised units)
    n.sigma_max = 0.04  # noise std at c = 0
    n.outlier_prob = 0.2  # outlier probability at c = 0 (scaled by 1 - c)
    n.outlier_sigma = 0.1  # outlier offset std (a confused joint)
    return n


def smoke_data(d: ml_collections.ConfigDict, *, poses_per_person: int = 8, with_2d: bool = True
               ) -> None:  # fmt: skip
    """Shrink a data block to the smoke-test sizes, in place (4 / 2 synthetic people for
    training / test, one 2D-only person when ``with_2d`` is False)."""
    n2d, nmix = (4, 2) if with_2d else (1, 1)
    d.synthetic.num_people = {"train_3d": 4, "train_2d": n2d, "test": 2, "test_2d_mix": nmix}
    d.synthetic.poses_per_person = poses_per_person
