"""A synthetic demonstration data set, generated in-process (no files, no licences).

**This is a demonstration set**, for running the experiments on a fresh machine: the poses are
drawn from a hand-written kinematic model, not recorded from people. Numbers obtained on it say
nothing about real benchmarks.

Model (all host-side numpy, deterministic given the seed, about 0.1 s for 20k poses):

* **Bodies.** Height ``H ~ N(1.70, 0.09)`` m clipped to [1.50, 1.95]. Segment lengths are
  fractions of H from Winter (2009, *Biomechanics and Motor Control of Human Movement*, 4th ed.,
  Fig. 4.1): thigh 0.245 H, shank 0.246 H, upper arm 0.186 H, forearm 0.146 H, ankle height
  0.039 H, hip (greater trochanter) height 0.530 H, shoulder height 0.818 H, top of head 1.0 H.
  Joint-centre separations are taken as 80 % of Winter's hip (0.191 H) and shoulder (0.259 H)
  breadths; the trunk (0.288 H, hip to shoulder height) is split 0.140 / 0.148 H at the Spine
  joint; Thorax-Neck/Nose 0.070 H, Neck/Nose-Head 0.112 H (so the head top is at 1.0 H).
  Every segment gets a per-person factor ``exp(N(0, 0.04))`` clipped to +-10 %, shared by left
  and right. Bone lengths are therefore constant within a person and left/right symmetric.
* **Joint angles** within normal ranges of motion (American Academy of Orthopaedic Surgeons
  values, Greene & Heckman 1994, rounded): hip flexion -30..125 deg, hip abduction -20..45,
  knee flexion 0..140, shoulder flexion -60..180, shoulder abduction 0..180, elbow flexion 0..145,
  trunk flexion -15..45 per spine segment, lateral bend and twist +-30 / +-40 in total, neck
  flexion -45..50, pelvis forward tilt -10..70 (hip flexion relative to the pelvis is limited as
  above).
* **Pose classes** (:data:`POSE_CLASSES`): ``standing``, ``walking`` (gait-cycle phase drives
  opposite hip / shoulder swing and knee flexion), ``sitting`` (thighs forward, knees bent),
  ``bending`` (pelvis and trunk tilted forward, arms hanging), ``arms_raised``.
* **Scene.** The body stands on the floor (z = 0, z up) at a random place and heading and is seen
  by virtual cameras sampled like a Human3.6M rig (:mod:`jpose.data.virtual_cameras`).

:func:`make_synthetic` returns four splits: ``train_3d`` (2D-3D pairs, pose mix
``mix_3d``: mostly standing / walking), ``train_2d`` (2D only, drawn from the *different* mix
``mix_2d``: mostly sitting / bending / arms raised -- the CameraPose setting, where 2D-only data
extends what the 3D data covers), and the evaluation splits ``test`` (mix_3d) and ``test_2d_mix``
(mix_2d, with 3D, to measure what the 2D-only data brought). People never repeat across splits.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

from jpose import skeleton
from jpose.data.common import LOGGER, PoseDataset, camera_dataset
from jpose.data.virtual_cameras import VirtualCameraConfig, project_world, sample_cameras

__all__ = [
    "POSE_CLASSES",
    "SEGMENT_FRACTIONS",
    "JOINT_LIMITS_DEG",
    "SyntheticConfig",
    "sample_bodies",
    "generate_poses",
    "make_synthetic",
]

POSE_CLASSES = ("standing", "walking", "sitting", "bending", "arms_raised")

SEGMENT_FRACTIONS: dict[str, float] = {
    "hip_half_width": 0.8 * 0.191 / 2.0,
    "thigh": 0.245,
    "shank": 0.246,
    "pelvis_spine": 0.140,
    "spine_thorax": 0.148,
    "thorax_neck": 0.070,
    "neck_head": 0.112,
    "shoulder_half_width": 0.8 * 0.259 / 2.0,
    "upper_arm": 0.186,
    "forearm": 0.146,
}
"""Segment lengths as fractions of body height (sources in the module docstring)."""

_ANKLE_HEIGHT = 0.039

JOINT_LIMITS_DEG: dict[str, tuple[float, float]] = {
    "hip_flex": (-30.0, 125.0),
    "hip_abd": (-20.0, 45.0),
    "knee": (0.0, 140.0),
    "shoulder_flex": (-60.0, 180.0),
    "shoulder_abd": (0.0, 180.0),
    "elbow": (0.0, 145.0),
    "humeral_rot": (-60.0, 60.0),
    "trunk_flex": (-15.0, 45.0),
    "trunk_lateral": (-15.0, 15.0),
    "trunk_twist": (-20.0, 20.0),
    "neck_flex": (-45.0, 50.0),
    "pelvis_tilt": (-10.0, 70.0),
}
"""Joint-angle limits in degrees (per spine segment for the trunk angles)."""

# pose-class weights, in POSE_CLASSES order
_DEFAULT_MIX_3D = dict(zip(POSE_CLASSES, (0.3, 0.45, 0.05, 0.05, 0.15), strict=True))
_DEFAULT_MIX_2D = dict(zip(POSE_CLASSES, (0.1, 0.1, 0.3, 0.3, 0.2), strict=True))


@dataclasses.dataclass(frozen=True)
class SyntheticConfig:
    """Sizes and distributions of the synthetic splits.

    Attributes:
      num_people: people per split (``train_3d``, ``train_2d``, ``test``, ``test_2d_mix``).
      poses_per_person: poses per person.
      views_per_pose: virtual cameras per pose.
      mix_3d: pose-class probabilities of ``train_3d`` and ``test``.
      mix_2d: pose-class probabilities of ``train_2d`` and ``test_2d_mix``.
      cameras: virtual camera ranges.
      normalization: convention of ``pose2d_norm``.
    """

    num_people: Mapping[str, int] = dataclasses.field(
        default_factory=lambda: {"train_3d": 200, "train_2d": 200, "test": 40, "test_2d_mix": 40}
    )
    poses_per_person: int = 50
    views_per_pose: int = 1
    mix_3d: Mapping[str, float] = dataclasses.field(default_factory=lambda: dict(_DEFAULT_MIX_3D))
    mix_2d: Mapping[str, float] = dataclasses.field(default_factory=lambda: dict(_DEFAULT_MIX_2D))
    cameras: VirtualCameraConfig = dataclasses.field(default_factory=VirtualCameraConfig)
    normalization: str = "vp"


def _rot(axis: int, angle: np.ndarray) -> np.ndarray:
    """``[..., 3, 3]`` right-handed rotations about a coordinate axis by ``angle`` radians."""
    c, s = np.cos(angle), np.sin(angle)
    o, z = np.ones_like(angle), np.zeros_like(angle)
    if axis == 0:
        m = [[o, z, z], [z, c, -s], [z, s, c]]
    elif axis == 1:
        m = [[c, z, s], [z, o, z], [-s, z, c]]
    else:
        m = [[c, -s, z], [s, c, z], [z, z, o]]
    return np.moveaxis(np.array(m), (0, 1), (-2, -1))


def _mm(*ms: np.ndarray) -> np.ndarray:
    out = ms[0]
    for m in ms[1:]:
        out = np.einsum("...ij,...jk->...ik", out, m)
    return out


def _apply(r: np.ndarray, v) -> np.ndarray:
    return np.einsum(
        "...ij,...j->...i", r, np.broadcast_to(np.asarray(v, np.float64), r.shape[:-1])
    )


def sample_bodies(rng: np.random.Generator, num_people: int) -> dict[str, np.ndarray]:
    """Per-person segment lengths in metres.

    Args:
      rng: numpy generator.
      num_people: P.

    Returns:
      ``{segment: [P]}`` for every key of :data:`SEGMENT_FRACTIONS`, plus ``height`` and
      ``ankle_height``.
    """
    height = np.clip(rng.normal(1.70, 0.09, num_people), 1.50, 1.95)
    out = {"height": height, "ankle_height": _ANKLE_HEIGHT * height}
    for seg, frac in SEGMENT_FRACTIONS.items():
        factor = np.clip(np.exp(rng.normal(0.0, 0.04, num_people)), 0.9, 1.1)
        out[seg] = frac * height * factor
    return out


def _u(rng, n, lo, hi):
    return rng.uniform(np.radians(lo), np.radians(hi), n)


def _sample_angles(rng: np.random.Generator, cls: np.ndarray) -> dict[str, np.ndarray]:
    """Joint angles (radians) per pose, by class; see the module docstring."""
    n = len(cls)
    a: dict[str, np.ndarray] = {}
    # defaults: relaxed standing
    a["pelvis_tilt"] = _u(rng, n, -5, 10)
    for side in "lr":
        a[f"leg_flex_{side}"] = np.radians(rng.normal(0, 5, n))  # thigh angle in the world
        a[f"hip_abd_{side}"] = _u(rng, n, 0, 10)
        a[f"knee_{side}"] = _u(rng, n, 0, 10)
        a[f"shoulder_flex_{side}"] = _u(rng, n, -10, 20)
        a[f"shoulder_abd_{side}"] = _u(rng, n, 0, 20)
        a[f"elbow_{side}"] = _u(rng, n, 0, 40)
        a[f"humeral_rot_{side}"] = _u(rng, n, -30, 30)
    a["trunk_flex_low"] = np.radians(rng.normal(0, 4, n))
    a["trunk_flex_up"] = np.radians(rng.normal(0, 4, n))
    a["trunk_lateral"] = np.radians(rng.normal(0, 3, n))
    a["trunk_twist"] = np.radians(rng.normal(0, 5, n))
    a["neck_flex"] = _u(rng, n, -10, 20)

    def put(mask, name, values):
        a[name] = np.where(mask, values, a[name])

    walk = cls == "walking"
    phase = rng.uniform(0, 2 * np.pi, n)
    amp = _u(rng, n, 15, 30)
    for side, sign in (("r", 1.0), ("l", -1.0)):
        s = np.sin(phase) * sign
        put(walk, f"leg_flex_{side}", amp * s)
        swing = np.maximum(0.0, np.cos(phase + (0.0 if sign > 0 else np.pi)))
        put(walk, f"knee_{side}", np.radians(5) + swing * _u(rng, n, 30, 60))
        put(walk, f"shoulder_flex_{side}", -0.8 * amp * s)
        put(walk, f"elbow_{side}", _u(rng, n, 10, 45))
    put(walk, "trunk_twist", np.radians(8) * np.sin(phase))
    put(walk, "trunk_flex_low", _u(rng, n, 0, 8))

    sit = cls == "sitting"
    put(sit, "pelvis_tilt", _u(rng, n, -10, 15))
    for side in "lr":
        put(sit, f"leg_flex_{side}", _u(rng, n, 70, 100))
        put(sit, f"hip_abd_{side}", _u(rng, n, 0, 20))
        put(sit, f"knee_{side}", _u(rng, n, 70, 110))
        put(sit, f"shoulder_flex_{side}", _u(rng, n, 0, 50))
        put(sit, f"elbow_{side}", _u(rng, n, 30, 100))
    put(sit, "trunk_flex_low", _u(rng, n, 0, 15))
    put(sit, "trunk_flex_up", _u(rng, n, 0, 15))

    bend = cls == "bending"
    put(bend, "pelvis_tilt", _u(rng, n, 30, 70))
    put(bend, "trunk_flex_low", _u(rng, n, 0, 20))
    put(bend, "trunk_flex_up", _u(rng, n, 0, 20))
    put(bend, "neck_flex", _u(rng, n, -40, 0))
    total_bend = a["pelvis_tilt"] + a["trunk_flex_low"] + a["trunk_flex_up"]
    for side in "lr":
        put(bend, f"leg_flex_{side}", _u(rng, n, -5, 15))
        put(bend, f"knee_{side}", _u(rng, n, 0, 40))
        # arms hang towards the floor: shoulder flexion ~ trunk inclination
        put(bend, f"shoulder_flex_{side}", total_bend + np.radians(rng.normal(0, 15, n)))
        put(bend, f"elbow_{side}", _u(rng, n, 0, 40))

    up = cls == "arms_raised"
    sideways = rng.uniform(size=n) < 0.5
    for side in "lr":
        one_arm = rng.uniform(size=n) < 0.2  # sometimes only one arm up
        flex = np.where(sideways, _u(rng, n, 0, 30), _u(rng, n, 100, 175))
        abd = np.where(sideways, _u(rng, n, 80, 170), _u(rng, n, 0, 30))
        put(up & ~(one_arm & (side == "l")), f"shoulder_flex_{side}", flex)
        put(up & ~(one_arm & (side == "l")), f"shoulder_abd_{side}", abd)
        put(up, f"elbow_{side}", _u(rng, n, 0, 40))
    put(up, "trunk_flex_up", _u(rng, n, -10, 5))
    return a


def _clip(x: np.ndarray, limit: str) -> np.ndarray:
    lo, hi = JOINT_LIMITS_DEG[limit]
    return np.clip(x, np.radians(lo), np.radians(hi))


def generate_poses(
    rng: np.random.Generator,
    *,
    num_people: int,
    poses_per_person: int,
    mix: Mapping[str, float],
) -> dict[str, np.ndarray]:
    """Body-frame poses of several people (host-side numpy).

    Body frame: pelvis at the origin, x = the person's right, y = forward, z = up (metres).

    Args:
      rng: numpy generator.
      num_people: P.
      poses_per_person: K.
      mix: pose-class probabilities (keys in :data:`POSE_CLASSES`, normalised to sum 1).

    Returns:
      ``{"pose": [P*K, 17, 3] float32 (H36M-17), "person": [P*K] int32, "pose_class": [P*K]
      str, "ankle_height": [P*K]}`` (person-major order).
    """
    names = [k for k in POSE_CLASSES if mix.get(k, 0.0) > 0]
    unknown = set(mix) - set(POSE_CLASSES)
    if unknown or not names:
        raise ValueError(f"mix keys must be in {POSE_CLASSES} with positive weights, got {mix}")
    p = np.array([mix[k] for k in names], np.float64)
    n = num_people * poses_per_person
    body = sample_bodies(rng, num_people)
    person = np.repeat(np.arange(num_people, dtype=np.int32), poses_per_person)
    seg = {k: v[person] for k, v in body.items()}
    cls = np.asarray(names)[rng.choice(len(names), size=n, p=p / p.sum())]
    a = _sample_angles(rng, cls)

    joints = np.zeros((n, 17, 3))
    idx = skeleton.H36M17.index
    tilt = _clip(a["pelvis_tilt"], "pelvis_tilt")
    r_pel = _rot(0, -tilt)
    # legs: hip flexion relative to the pelvis = pelvis tilt + thigh angle in the world
    for side, hip, knee, foot, sgn in (
        ("r", "RHip", "RKnee", "RFoot", 1.0),
        ("l", "LHip", "LKnee", "LFoot", -1.0),
    ):
        hip_pos = _apply(r_pel, np.stack([sgn * seg["hip_half_width"], 0 * tilt, 0 * tilt], -1))
        flex = _clip(tilt + a[f"leg_flex_{side}"], "hip_flex")
        abd = _clip(a[f"hip_abd_{side}"], "hip_abd")
        r_thigh = _mm(r_pel, _rot(0, flex), _rot(1, -sgn * abd))
        knee_pos = hip_pos + _apply(r_thigh, [0, 0, -1]) * seg["thigh"][:, None]
        r_shank = _mm(r_thigh, _rot(0, -_clip(a[f"knee_{side}"], "knee")))
        joints[:, idx(hip)] = hip_pos
        joints[:, idx(knee)] = knee_pos
        joints[:, idx(foot)] = knee_pos + _apply(r_shank, [0, 0, -1]) * seg["shank"][:, None]
    # trunk: two segments, each takes half of the lateral bend and twist
    lat = _clip(a["trunk_lateral"], "trunk_lateral")
    tw = _clip(a["trunk_twist"], "trunk_twist")
    r_low = _mm(
        r_pel, _rot(0, -_clip(a["trunk_flex_low"], "trunk_flex")), _rot(1, lat), _rot(2, tw)
    )
    spine = _apply(r_low, [0, 0, 1]) * seg["pelvis_spine"][:, None]
    r_up = _mm(r_low, _rot(0, -_clip(a["trunk_flex_up"], "trunk_flex")), _rot(1, lat), _rot(2, tw))
    thorax = spine + _apply(r_up, [0, 0, 1]) * seg["spine_thorax"][:, None]
    r_neck = _mm(r_up, _rot(0, -_clip(a["neck_flex"], "neck_flex")))
    nose_dir = np.array([0.0, 0.3, 1.0]) / np.linalg.norm([0.0, 0.3, 1.0])
    head_dir = np.array([0.0, -0.1, 1.0]) / np.linalg.norm([0.0, -0.1, 1.0])
    neck = thorax + _apply(r_up, nose_dir) * seg["thorax_neck"][:, None]
    joints[:, idx("Spine")] = spine
    joints[:, idx("Thorax")] = thorax
    joints[:, idx("Neck/Nose")] = neck
    joints[:, idx("Head")] = neck + _apply(r_neck, head_dir) * seg["neck_head"][:, None]
    for side, sh, el, wr, sgn in (
        ("r", "RShoulder", "RElbow", "RWrist", 1.0),
        ("l", "LShoulder", "LElbow", "LWrist", -1.0),
    ):
        zeros = np.zeros(n)
        sh_pos = thorax + _apply(
            r_up, np.stack([sgn * seg["shoulder_half_width"], zeros, zeros], -1)
        )
        r_ua = _mm(
            r_up,
            _rot(0, _clip(a[f"shoulder_flex_{side}"], "shoulder_flex")),
            _rot(1, -sgn * _clip(a[f"shoulder_abd_{side}"], "shoulder_abd")),
            _rot(2, sgn * _clip(a[f"humeral_rot_{side}"], "humeral_rot")),
        )
        el_pos = sh_pos + _apply(r_ua, [0, 0, -1]) * seg["upper_arm"][:, None]
        r_fa = _mm(r_ua, _rot(0, _clip(a[f"elbow_{side}"], "elbow")))
        joints[:, idx(sh)] = sh_pos
        joints[:, idx(el)] = el_pos
        joints[:, idx(wr)] = el_pos + _apply(r_fa, [0, 0, -1]) * seg["forearm"][:, None]
    return {
        "pose": joints.astype(np.float32),
        "person": person,
        "pose_class": cls,
        "ankle_height": seg["ankle_height"],
    }


def stand_on_floor(rng: np.random.Generator, gen: Mapping[str, np.ndarray]) -> np.ndarray:
    """``[N, 17, 3]`` float64 world poses (z up) of :func:`generate_poses`' people: turned by a
    random heading about z, ankles at each person's ankle height above the floor ``z = 0``."""
    pose = gen["pose"].astype(np.float64)
    world = np.einsum("nij,nkj->nki", _rot(2, rng.uniform(0, 2 * np.pi, len(pose))), pose)
    feet = world[:, skeleton.H36M17.indices(["RFoot", "LFoot"]), 2].min(-1)
    world[..., 2] += (gen["ankle_height"] - feet)[:, None]
    return world


def _scene(
    rng: np.random.Generator,
    gen: dict[str, np.ndarray],
    *,
    config: SyntheticConfig,
    name: str,
    person_offset: int,
) -> PoseDataset:
    """Place body-frame poses on the floor and view them with virtual cameras."""
    world = stand_on_floor(rng, gen)
    n = len(world)
    world[..., :2] += rng.uniform(-1.0, 1.0, (n, 1, 2))
    v = config.views_per_pose
    world = np.repeat(world, v, axis=0)
    cams = sample_cameras(rng, world[:, 0], config=config.cameras)
    p3, uv = project_world(world, cams)
    return camera_dataset(
        name,
        uv,
        cams,
        pose3d_cam=p3,
        labels={
            "person": np.repeat(gen["person"] + person_offset, v),
            "pose_class": np.repeat(gen["pose_class"], v),
            "pose_index": np.repeat(np.arange(n, dtype=np.int32), v),
            "camera": np.tile(np.arange(v, dtype=np.int32), n),
        },
        normalization=config.normalization,
    )


def make_synthetic(
    *, seed: int = 0, config: SyntheticConfig | None = None
) -> dict[str, PoseDataset]:
    """Generate the synthetic demonstration splits (deterministic given ``seed``).

    Args:
      seed: random seed; each split uses its own stream, so changing one split's size leaves the
        others unchanged.
      config: sizes and distributions (default :class:`SyntheticConfig`).

    Returns:
      ``{"train_3d", "train_2d", "test", "test_2d_mix"}`` -> :class:`PoseDataset`;
      ``train_2d`` has no 3D (``pose3d_cam is None``). Labels ``person`` (unique across splits),
      ``pose_class``, ``pose_index``, ``camera``.
    """
    config = SyntheticConfig() if config is None else config
    splits = ("train_3d", "train_2d", "test", "test_2d_mix")
    streams = np.random.SeedSequence(seed).spawn(len(splits))
    out = {}
    offset = 0
    for split, stream in zip(splits, streams):
        rng = np.random.default_rng(stream)
        people = int(config.num_people[split])
        gen = generate_poses(
            rng,
            num_people=people,
            poses_per_person=config.poses_per_person,
            mix=config.mix_2d if "2d" in split else config.mix_3d,
        )
        ds = _scene(rng, gen, config=config, name=f"synthetic/{split}", person_offset=offset)
        offset += people
        if split == "train_2d":
            ds = ds.without_3d()
        classes, counts = np.unique(ds.labels["pose_class"], return_counts=True)
        LOGGER.info(
            "%s: %d examples (%s)",
            ds.name,
            len(ds),
            ", ".join(f"{c} {k}" for c, k in zip(classes, counts)),
        )
        out[split] = ds
    return out
