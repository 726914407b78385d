"""Joint layouts as data, and converters between them.

A :class:`Layout` is a name, the joint names, the parent of each joint (``-1`` for the root), the
left/right joint pairs and named bone sets. Everything else — the bone list, the incidence matrix
used by the kinematic chain space (KCS), the forward-kinematics matrix, the flip permutations, the
symmetric bone classes — is *derived* from those fields, never typed by hand.

Conventions (used by every module of jpose):

* A bone is identified by its child joint: bone ``k`` joins ``parents[c]`` to ``c`` and its vector
  is ``X[c] - X[parents[c]]``. Bones are ordered by child joint index (the root has no bone), so
  ``num_bones == num_joints - 1``.
* Bone sets (Zhou et al. ICCV 2017's four groups, PoseAug's five KCS parts) are tuples of child
  joint names stored on the layout; :meth:`Layout.bone_set` turns a set name into bone indices.
* Points are ``[..., J, D]`` arrays (any leading batch axes, ``D`` = 2 or 3); confidences
  ``[..., J]``. Units are whatever the caller uses (jpose uses metres for 3D, pixels or
  normalised image units for 2D); converters are linear and unit-agnostic.

Layout converters (:func:`convert_layout` and the named wrappers) express every target joint as a
weighted combination of source joints, written as name rules in ``_CONVERSION_RULES``. The
confidence of a target joint is the minimum of the confidences of the source joints it is made
from (a joint built from a missing joint is missing). Rules and their sources:

* COCO-17 → H36M-17 (rule of mmpose's ``convert_keypoint_definition``): Hip = mid-hips,
  Thorax = mid-shoulders, Spine = mid(Hip, Thorax), Neck/Nose = nose, Head = mid-eyes.
* MPII-16 → H36M-17: Hip = pelvis, Thorax = thorax, Spine = mid(pelvis, thorax),
  Neck/Nose = upper neck, Head = head top, limbs by name.
* H36M-17 → H36M-16 (PoseAug's 16 joints): Neck/Nose dropped. H36M-16 → H36M-17: Neck/Nose
  interpolated as mid(Thorax, Head) (not exact: 17→16→17 changes Neck/Nose; 16→17→16 is exact).
* H36M-32 → H36M-17: the 17 joints VideoPose3D keeps (selection by name).
* MPI-INF-3DHP-28 → 17 (selection of the published test-set joints) and 3DHP-17 → H36M-17:
  Hip = pelvis, Spine = spine, Thorax = neck, Neck/Nose = head, Head = head_top.
* SMPL-24 → H36M-17 (3DPW ``jointPositions``; approximate, the official evaluation regresses
  H36M joints from the mesh, which needs the SMPL model): Hip = pelvis, Spine = mid(pelvis, neck),
  Thorax = neck, Neck/Nose = head, Head = head + (head − neck) (extrapolated).
* OpenPose-18 → H36M-17 (3DPW ``poses2d``): as COCO, with Thorax = OpenPose neck.
* OpenPose BODY_25 → H36M-17 (order from the OpenPose output documentation,
  ``doc/02_output.md``, ``POSE_BODY_25_BODY_PARTS``): Hip = MidHip, Thorax = neck,
  Spine = mid(MidHip, neck), Neck/Nose = nose, Head = mid-eyes, limbs by name (the six foot
  points are not used).
* Halpe-26 → H36M-17 (AlphaPose's 26 body keypoints, order from the Halpe-FullBody README,
  github.com/Fang-Haoshu/Halpe-FullBody: COCO-17, then head, neck, hip, left/right big toe,
  left/right small toe, left/right heel): Hip = hip (the annotated pelvis), Thorax = neck,
  Spine = mid(hip, neck), Neck/Nose = nose, Head = head (Halpe's head point is the top of the
  head, as H36M's Head), limbs by name.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np

__all__ = [
    "Layout",
    "H36M17",
    "H36M16",
    "H36M32",
    "COCO17",
    "MPII16",
    "MPI3DHP17",
    "MPI3DHP28",
    "SMPL24",
    "OPENPOSE18",
    "BODY25",
    "HALPE26",
    "LAYOUTS",
    "ZHOU_GROUPS",
    "KCS_PARTS",
    "get_layout",
    "check_points",
    "convert_layout",
    "coco17_to_h36m17",
    "mpii16_to_h36m17",
    "h36m17_to_h36m16",
    "h36m16_to_h36m17",
    "h36m32_to_h36m17",
    "mpi3dhp28_to_h36m17",
    "mpi3dhp28_to_mpi3dhp17",
    "mpi3dhp17_to_h36m17",
    "smpl24_to_h36m17",
    "openpose18_to_h36m17",
    "body25_to_h36m17",
    "halpe26_to_h36m17",
    "flip_points",
]

ZHOU_GROUPS = ("zhou_arms", "zhou_legs", "zhou_shoulders", "zhou_hips")
"""Names of Zhou et al. (ICCV 2017, sec. 3.3) bone groups used by the bone-length-ratio loss."""

KCS_PARTS = ("kcs_torso", "kcs_left_arm", "kcs_right_arm", "kcs_left_leg", "kcs_right_leg")
"""Names of PoseAug's five part-aware KCS discriminator parts (Gong et al. CVPR 2021)."""


@dataclasses.dataclass(frozen=True, eq=False)
class Layout:
    """A joint layout: names, parents, left/right pairs and named bone sets.

    Attributes:
      name: short identifier, e.g. ``"h36m17"``.
      joint_names: one name per joint, in array order.
      parents: parent joint index per joint; exactly one ``-1`` (the root). No ordering is
        assumed (3DHP's root is joint 4); the tree is validated instead.
      symmetric_pairs: ``(left_name, right_name)`` pairs (the person's own left and right).
      bone_sets: ``(set_name, child_joint_names)`` pairs; a bone is named by its child joint.
    """

    name: str
    joint_names: tuple[str, ...]
    parents: tuple[int, ...]
    symmetric_pairs: tuple[tuple[str, str], ...] = ()
    bone_sets: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def __post_init__(self) -> None:
        n = len(self.joint_names)
        if len(set(self.joint_names)) != n:
            raise ValueError(f"layout {self.name}: duplicate joint names")
        if len(self.parents) != n:
            raise ValueError(f"layout {self.name}: {len(self.parents)} parents for {n} joints")
        roots = [j for j, p in enumerate(self.parents) if p == -1]
        if len(roots) != 1:
            raise ValueError(f"layout {self.name}: expected exactly one root, got {roots}")
        for j in range(n):  # every chain must reach the root without a cycle
            seen, k = set(), j
            while k != -1:
                if k in seen or not -1 <= self.parents[k] < n:
                    raise ValueError(f"layout {self.name}: joint {j} does not reach the root")
                seen.add(k)
                k = self.parents[k]
        for left, right in self.symmetric_pairs:
            self.index(left), self.index(right)
        for set_name, children in self.bone_sets:
            for c in children:
                if self.index(c) == self.root:
                    raise ValueError(f"layout {self.name}: bone set {set_name} names the root")

    # Identity: two layouts are equal when their defining data is equal.
    def _key(self) -> tuple[Any, ...]:
        return (self.name, self.joint_names, self.parents, self.symmetric_pairs, self.bone_sets)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Layout) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"Layout({self.name!r}, {self.num_joints} joints)"

    # ----------------------------------------------------------------------------- joints
    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def num_bones(self) -> int:
        return self.num_joints - 1

    @property
    def root(self) -> int:
        return self.parents.index(-1)

    def index(self, name: str) -> int:
        """Index of joint ``name``; ``ValueError`` naming the layout when absent."""
        try:
            return self.joint_names.index(name)
        except ValueError:
            joints = ", ".join(self.joint_names)
            raise ValueError(
                f"joint {name!r} is not in layout {self.name} (joints: {joints})"
            ) from None

    def indices(self, names: Sequence[str]) -> np.ndarray:
        return np.array([self.index(n) for n in names], dtype=np.int32)

    @functools.cached_property
    def flip_permutation(self) -> np.ndarray:
        """``perm[j]`` = index of the mirror joint of ``j`` (itself for central joints)."""
        perm = np.arange(self.num_joints, dtype=np.int32)
        for left, right in self.symmetric_pairs:
            a, b = self.index(left), self.index(right)
            perm[a], perm[b] = b, a
        return perm

    @property
    def joints_left(self) -> np.ndarray:
        return self.indices([left for left, _ in self.symmetric_pairs])

    @property
    def joints_right(self) -> np.ndarray:
        return self.indices([right for _, right in self.symmetric_pairs])

    # ------------------------------------------------------------------------------ bones
    @functools.cached_property
    def bones(self) -> np.ndarray:
        """``(B, 2)`` int array of ``(parent, child)``, ordered by child joint index."""
        rows = [(p, c) for c, p in enumerate(self.parents) if p != -1]
        return np.array(rows, dtype=np.int32).reshape(-1, 2)

    @property
    def bone_names(self) -> tuple[str, ...]:
        """Each bone is named by its child joint."""
        return tuple(self.joint_names[c] for c in self.bones[:, 1])

    def bone_index(self, child_name: str) -> int:
        """Index of the bone whose child joint is ``child_name``."""
        c = self.index(child_name)
        hits = np.nonzero(self.bones[:, 1] == c)[0]
        if hits.size == 0:
            raise ValueError(f"joint {child_name!r} is the root of {self.name}; it has no bone")
        return int(hits[0])

    @functools.cached_property
    def incidence(self) -> np.ndarray:
        """``(B, J)`` matrix C with ``bones = C @ joints`` (child − parent)."""
        c = np.zeros((self.num_bones, self.num_joints), dtype=np.float32)
        rows = np.arange(self.num_bones)
        c[rows, self.bones[:, 1]] = 1.0
        c[rows, self.bones[:, 0]] = -1.0
        return c

    @functools.cached_property
    def fk_matrix(self) -> np.ndarray:
        """``(J, B)`` matrix F with root-relative ``joints = F @ bones``.

        ``F[j, k] = 1`` when bone ``k`` lies on the path from the root to joint ``j``; it is the
        left inverse of :attr:`incidence` on root-relative poses (``F @ C @ X = X - X[root]``).
        """
        f = np.zeros((self.num_joints, self.num_bones), dtype=np.float32)
        bone_of_child = {int(c): k for k, c in enumerate(self.bones[:, 1])}
        for j in range(self.num_joints):
            k = j
            while self.parents[k] != -1:
                f[j, bone_of_child[k]] = 1.0
                k = self.parents[k]
        return f

    @functools.cached_property
    def bone_flip_permutation(self) -> np.ndarray:
        """``perm[k]`` = index of the mirror bone of bone ``k``."""
        jf = self.flip_permutation
        child_to_bone = {int(c): k for k, c in enumerate(self.bones[:, 1])}
        return np.array([child_to_bone[int(jf[c])] for c in self.bones[:, 1]], dtype=np.int32)

    @functools.cached_property
    def symmetric_bone_pairs(self) -> np.ndarray:
        """``(P, 2)`` bone indices ``(left bone, right bone)`` derived from the joint pairs."""
        left = set(self.joints_left.tolist())
        perm = self.bone_flip_permutation
        pairs = [(k, int(perm[k])) for k, c in enumerate(self.bones[:, 1]) if int(c) in left]
        return np.array(pairs, dtype=np.int32).reshape(-1, 2)

    @functools.cached_property
    def bone_classes(self) -> np.ndarray:
        """``(B,)`` class id per bone; a bone and its mirror share a class (PoseAug's symmetric
        bone-length ratios are one value per class)."""
        perm = self.bone_flip_permutation
        classes = -np.ones(self.num_bones, dtype=np.int32)
        nxt = 0
        for k in range(self.num_bones):
            if classes[k] < 0:
                classes[k] = classes[perm[k]] = nxt
                nxt += 1
        return classes

    @property
    def num_bone_classes(self) -> int:
        return int(self.bone_classes.max()) + 1 if self.num_bones else 0

    @property
    def bone_set_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.bone_sets)

    def bone_set(self, name: str) -> np.ndarray:
        """Bone indices of the named set (e.g. ``"zhou_arms"``, ``"kcs_torso"``)."""
        for set_name, children in self.bone_sets:
            if set_name == name:
                return np.array([self.bone_index(c) for c in children], dtype=np.int32)
        raise ValueError(
            f"layout {self.name} has no bone set {name!r} (has: {', '.join(self.bone_set_names)})"
        )

    def bone_set_mask(self, name: str) -> np.ndarray:
        """``(B,)`` boolean mask of the named bone set."""
        mask = np.zeros(self.num_bones, dtype=bool)
        mask[self.bone_set(name)] = True
        return mask


def check_points(
    points: Any, layout: Layout, *, dims: Sequence[int] = (3,), name: str = "points"
) -> None:
    """Raise ``ValueError`` unless ``points`` has shape ``[..., layout.num_joints, D]``, D in dims.

    Works on static shapes, so it is free under ``jit``.
    """
    shape = tuple(np.shape(points))
    expect = " or ".join(f"[..., {layout.num_joints}, {d}]" for d in dims)
    if len(shape) < 2 or shape[-2] != layout.num_joints or shape[-1] not in dims:
        raise ValueError(f"{name}: expected shape {expect} for layout {layout.name}, got {shape}")


# ------------------------------------------------------------------------------------ layouts

_H36M17_NAMES = (
    "Hip", "RHip", "RKnee", "RFoot", "LHip", "LKnee", "LFoot", "Spine", "Thorax", "Neck/Nose",
    "Head", "LShoulder", "LElbow", "LWrist", "RShoulder", "RElbow", "RWrist",
)  # fmt: skip


def _h36m_bone_sets(head_chain: tuple[str, ...]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    # Zhou et al. ICCV 2017 sec. 3.3 groups; PoseAug (Gong et al. CVPR 2021) KCS parts, named
    # anatomically (PoseAug's code swaps the leg names).
    return (
        ("zhou_arms", ("LElbow", "LWrist", "RElbow", "RWrist")),
        ("zhou_legs", ("RKnee", "RFoot", "LKnee", "LFoot")),
        ("zhou_shoulders", ("LShoulder", "RShoulder")),
        ("zhou_hips", ("RHip", "LHip")),
        ("kcs_torso", ("RHip", "LHip", "Spine", "Thorax", *head_chain, "LShoulder", "RShoulder")),
        ("kcs_left_arm", ("Thorax", "LShoulder", "LElbow", "LWrist")),
        ("kcs_right_arm", ("Thorax", "RShoulder", "RElbow", "RWrist")),
        ("kcs_left_leg", ("RHip", "LHip", "LKnee", "LFoot", "Spine")),
        ("kcs_right_leg", ("RHip", "LHip", "RKnee", "RFoot", "Spine")),
    )


def _parents_by_name(names: Sequence[str], parent_of: Mapping[str, str | None]) -> tuple[int, ...]:
    return tuple(-1 if parent_of[n] is None else list(names).index(parent_of[n]) for n in names)


def _limb_parents(side: str) -> dict[str, str]:
    """Arm and leg chains of one side (``"left"`` / ``"right"``), snake_case names."""
    return {
        f"{side}_elbow": f"{side}_shoulder",
        f"{side}_wrist": f"{side}_elbow",
        f"{side}_knee": f"{side}_hip",
        f"{side}_ankle": f"{side}_knee",
    }


def _lr_pairs(names: Sequence[str], left: str = "left_", right: str = "right_"):
    return tuple(
        (n, right + n[len(left) :])
        for n in names
        if n.startswith(left) and right + n[len(left) :] in names
    )


H36M17 = Layout(
    name="h36m17",
    joint_names=_H36M17_NAMES,
    # VideoPose3D's 17-joint skeleton (shoulders re-wired to the thorax).
    parents=(-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15),
    symmetric_pairs=_lr_pairs(_H36M17_NAMES, "L", "R"),
    bone_sets=_h36m_bone_sets(("Neck/Nose", "Head")),
)

_H36M16_NAMES = tuple(n for n in _H36M17_NAMES if n != "Neck/Nose")
H36M16 = Layout(
    name="h36m16",
    joint_names=_H36M16_NAMES,
    parents=_parents_by_name(
        _H36M16_NAMES,
        {
            **{
                n: H36M17.joint_names[p] if p >= 0 else None
                for n, p in zip(_H36M17_NAMES, H36M17.parents)
            },
            "Head": "Thorax",
        },
    ),
    symmetric_pairs=_lr_pairs(_H36M16_NAMES, "L", "R"),
    bone_sets=_h36m_bone_sets(("Head",)),
)

# Human3.6M's 32-joint skeleton as stored in VideoPose3D's data_3d_h36m.npz (parents from
# VideoPose3D common/h36m_dataset.py). Names of the 17 used joints follow Martinez et al.'s
# H36M_NAMES; the others (toes, end sites, clavicle anchors, hand points) are named here.
_H36M32_NAMES = (
    "Hip", "RHip", "RKnee", "RFoot", "RToe", "RToeSite", "LHip", "LKnee", "LFoot", "LToe",
    "LToeSite", "SpineLow", "Spine", "Thorax", "Neck/Nose", "Head", "LShoulderAnchor",
    "LShoulder", "LElbow", "LWrist", "LThumb", "LThumbSite", "LWristEnd", "LWristEndSite",
    "RShoulderAnchor", "RShoulder", "RElbow", "RWrist", "RThumb", "RThumbSite", "RWristEnd",
    "RWristEndSite",
)  # fmt: skip
_H36M32_PARENTS = (
    -1, 0, 1, 2, 3, 4, 0, 6, 7, 8, 9, 0, 11, 12, 13, 14, 12, 16, 17, 18, 19, 20, 19, 22, 12, 24,
    25, 26, 27, 28, 27, 30,
)  # fmt: skip
H36M32 = Layout(
    name="h36m32",
    joint_names=_H36M32_NAMES,
    parents=_H36M32_PARENTS,
    symmetric_pairs=_lr_pairs(_H36M32_NAMES, "L", "R"),
)

_COCO17_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
COCO17 = Layout(
    name="coco17",
    joint_names=_COCO17_NAMES,
    # COCO has no kinematic tree; this drawing tree hangs everything from the nose, with hips
    # under the shoulders (the torso sides).
    parents=_parents_by_name(
        _COCO17_NAMES,
        {
            "nose": None,
            "left_eye": "nose",
            "right_eye": "nose",
            "left_ear": "left_eye",
            "right_ear": "right_eye",
            "left_shoulder": "nose",
            "right_shoulder": "nose",
            **_limb_parents("left"),
            **_limb_parents("right"),
            "left_hip": "left_shoulder",
            "right_hip": "right_shoulder",
        },
    ),  # fmt: skip
    symmetric_pairs=_lr_pairs(_COCO17_NAMES),
    bone_sets=(
        ("zhou_arms", ("left_elbow", "left_wrist", "right_elbow", "right_wrist")),
        ("zhou_legs", ("left_knee", "left_ankle", "right_knee", "right_ankle")),
    ),
)

_MPII16_NAMES = (
    "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle", "pelvis",
    "thorax", "upper_neck", "head_top", "right_wrist", "right_elbow", "right_shoulder",
    "left_shoulder", "left_elbow", "left_wrist",
)  # fmt: skip
MPII16 = Layout(
    name="mpii16",
    joint_names=_MPII16_NAMES,
    parents=_parents_by_name(
        _MPII16_NAMES,
        {
            "pelvis": None,
            "right_hip": "pelvis",
            "left_hip": "pelvis",
            "thorax": "pelvis",
            "upper_neck": "thorax",
            "head_top": "upper_neck",
            "right_shoulder": "thorax",
            **_limb_parents("right"),
            "left_shoulder": "thorax",
            **_limb_parents("left"),
        },
    ),  # fmt: skip
    symmetric_pairs=_lr_pairs(_MPII16_NAMES),
    bone_sets=(
        ("zhou_arms", ("left_elbow", "left_wrist", "right_elbow", "right_wrist")),
        ("zhou_legs", ("right_knee", "right_ankle", "left_knee", "left_ankle")),
        ("zhou_shoulders", ("left_shoulder", "right_shoulder")),
        ("zhou_hips", ("right_hip", "left_hip")),
    ),
)

# MPI-INF-3DHP (Mehta et al. 3DV 2017): the 28 annotated joints of the training set and the 17
# joints of the published test set, names and parents from the dataset's mpii_get_joint_set.
_MPI3DHP28_NAMES = (
    "spine3", "spine4", "spine2", "spine", "pelvis", "neck", "head", "head_top",
    "left_clavicle", "left_shoulder", "left_elbow", "left_wrist", "left_hand", "right_clavicle",
    "right_shoulder", "right_elbow", "right_wrist", "right_hand", "left_hip", "left_knee",
    "left_ankle", "left_foot", "left_toe", "right_hip", "right_knee", "right_ankle", "right_foot",
    "right_toe",
)  # fmt: skip
_MPI3DHP28_PARENTS = (
    2, 0, 3, 4, -1, 1, 5, 6, 5, 8, 9, 10, 11, 5, 13, 14, 15, 16, 4, 18, 19, 20, 21, 4, 23, 24, 25,
    26,
)  # fmt: skip
MPI3DHP28 = Layout(
    name="mpi3dhp28",
    joint_names=_MPI3DHP28_NAMES,
    parents=_MPI3DHP28_PARENTS,
    symmetric_pairs=_lr_pairs(_MPI3DHP28_NAMES),
)
_MPI3DHP17_NAMES = (
    "head_top", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder",
    "left_elbow", "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee",
    "left_ankle", "pelvis", "spine", "head",
)  # fmt: skip
MPI3DHP17 = Layout(
    name="mpi3dhp17",
    joint_names=_MPI3DHP17_NAMES,
    parents=_parents_by_name(
        _MPI3DHP17_NAMES,
        {
            "pelvis": None,
            "spine": "pelvis",
            "neck": "spine",
            "head": "neck",
            "head_top": "head",
            "right_shoulder": "neck",
            **_limb_parents("right"),
            "left_shoulder": "neck",
            **_limb_parents("left"),
            "right_hip": "pelvis",
            "left_hip": "pelvis",
        },
    ),  # fmt: skip
    symmetric_pairs=_lr_pairs(_MPI3DHP17_NAMES),
)

_SMPL24_NAMES = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar",
    "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hand", "right_hand",
)  # fmt: skip
SMPL24 = Layout(
    name="smpl24",
    joint_names=_SMPL24_NAMES,
    parents=(-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21),
    symmetric_pairs=_lr_pairs(_SMPL24_NAMES),
)

_OPENPOSE18_NAMES = (
    "nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow",
    "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
    "right_eye", "left_eye", "right_ear", "left_ear",
)  # fmt: skip
OPENPOSE18 = Layout(
    name="openpose18",
    joint_names=_OPENPOSE18_NAMES,
    parents=_parents_by_name(
        _OPENPOSE18_NAMES,
        {
            "neck": None,
            "nose": "neck",
            "right_shoulder": "neck",
            **_limb_parents("right"),
            "left_shoulder": "neck",
            **_limb_parents("left"),
            "right_hip": "neck",
            "left_hip": "neck",
            "right_eye": "nose",
            "left_eye": "nose",
            "right_ear": "right_eye",
            "left_ear": "left_eye",
        },
    ),  # fmt: skip
    symmetric_pairs=_lr_pairs(_OPENPOSE18_NAMES),
)

# OpenPose BODY_25 (the default OpenPose model): joint order of OpenPose's output documentation
# (doc/02_output.md, POSE_BODY_25_BODY_PARTS): 0 Nose, 1 Neck, 2-4 right arm, 5-7 left arm,
# 8 MidHip, 9-11 right leg, 12-14 left leg, 15-18 eyes and ears, 19-21 left foot (big toe, small
# toe, heel), 22-24 right foot. The tree follows OpenPose's drawing pairs
# (POSE_BODY_25_PAIRS_RENDER), rooted at MidHip: big toe and heel hang from the ankle, the small
# toe from the big toe.
_BODY25_NAMES = (
    "nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow",
    "left_wrist", "mid_hip", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee",
    "left_ankle", "right_eye", "left_eye", "right_ear", "left_ear", "left_big_toe",
    "left_small_toe", "left_heel", "right_big_toe", "right_small_toe", "right_heel",
)  # fmt: skip
BODY25 = Layout(
    name="body25",
    joint_names=_BODY25_NAMES,
    parents=_parents_by_name(
        _BODY25_NAMES,
        {
            "mid_hip": None,
            "neck": "mid_hip",
            "nose": "neck",
            "right_eye": "nose",
            "left_eye": "nose",
            "right_ear": "right_eye",
            "left_ear": "left_eye",
            "right_shoulder": "neck",
            "left_shoulder": "neck",
            "right_hip": "mid_hip",
            "left_hip": "mid_hip",
            **_limb_parents("left"),
            **_limb_parents("right"),
            "left_big_toe": "left_ankle",
            "left_small_toe": "left_big_toe",
            "left_heel": "left_ankle",
            "right_big_toe": "right_ankle",
            "right_small_toe": "right_big_toe",
            "right_heel": "right_ankle",
        },
    ),
    symmetric_pairs=_lr_pairs(_BODY25_NAMES),
    bone_sets=COCO17.bone_sets,
)

# Halpe-26 (AlphaPose's 26 body keypoints, "halpe26" models): order of the Halpe-FullBody README
# (github.com/Fang-Haoshu/Halpe-FullBody, "26 body keypoints"): COCO-17, then 17 Head (top of
# the head), 18 Neck, 19 Hip (pelvis), 20/21 left/right big toe, 22/23 left/right small toe,
# 24/25 left/right heel. Tree after AlphaPose's halpe26 drawing pairs (alphapose/utils/vis.py),
# rooted at the pelvis: the heel hangs from the ankle, both toes from the heel; the nose (linked
# only to the eyes there) hangs from the neck.
_HALPE26_NAMES = (
    *_COCO17_NAMES, "head", "neck", "hip", "left_big_toe", "right_big_toe", "left_small_toe",
    "right_small_toe", "left_heel", "right_heel",
)  # fmt: skip
HALPE26 = Layout(
    name="halpe26",
    joint_names=_HALPE26_NAMES,
    parents=_parents_by_name(
        _HALPE26_NAMES,
        {
            "hip": None,
            "neck": "hip",
            "head": "neck",
            "nose": "neck",
            "left_eye": "nose",
            "right_eye": "nose",
            "left_ear": "left_eye",
            "right_ear": "right_eye",
            "left_shoulder": "neck",
            "right_shoulder": "neck",
            "left_hip": "hip",
            "right_hip": "hip",
            **_limb_parents("left"),
            **_limb_parents("right"),
            "left_heel": "left_ankle",
            "right_heel": "right_ankle",
            "left_big_toe": "left_heel",
            "right_big_toe": "right_heel",
            "left_small_toe": "left_heel",
            "right_small_toe": "right_heel",
        },
    ),
    symmetric_pairs=_lr_pairs(_HALPE26_NAMES),
    bone_sets=COCO17.bone_sets,
)

LAYOUTS: dict[str, Layout] = {
    lay.name: lay
    for lay in (
        H36M17, H36M16, H36M32, COCO17, MPII16, MPI3DHP17, MPI3DHP28, SMPL24, OPENPOSE18, BODY25,
        HALPE26,
    )
}  # fmt: skip


def get_layout(layout: str | Layout) -> Layout:
    """Return a layout by name (``"h36m17"``, ``"coco17"``, ...) or pass a Layout through."""
    if isinstance(layout, Layout):
        return layout
    try:
        return LAYOUTS[layout]
    except KeyError:
        raise ValueError(f"unknown joint layout {layout!r}; known: {', '.join(LAYOUTS)}") from None


# --------------------------------------------------------------------------------- converters

Rule = Mapping[str, str | Mapping[str, float]]


def _mid(*names: str) -> dict[str, float]:
    return {n: 1.0 / len(names) for n in names}


_H36M_LIMBS_FROM_SNAKE = {
    "RHip": "right_hip", "RKnee": "right_knee", "RFoot": "right_ankle", "LHip": "left_hip",
    "LKnee": "left_knee", "LFoot": "left_ankle", "LShoulder": "left_shoulder",
    "LElbow": "left_elbow", "LWrist": "left_wrist", "RShoulder": "right_shoulder",
    "RElbow": "right_elbow", "RWrist": "right_wrist",
}  # fmt: skip

_CONVERSION_RULES: dict[tuple[str, str], Rule] = {
    ("coco17", "h36m17"): {
        **_H36M_LIMBS_FROM_SNAKE,
        "Hip": _mid("left_hip", "right_hip"),
        "Thorax": _mid("left_shoulder", "right_shoulder"),
        "Spine": _mid("left_hip", "right_hip", "left_shoulder", "right_shoulder"),
        "Neck/Nose": "nose",
        "Head": _mid("left_eye", "right_eye"),
    },
    ("mpii16", "h36m17"): {
        **_H36M_LIMBS_FROM_SNAKE,
        "Hip": "pelvis",
        "Spine": _mid("pelvis", "thorax"),
        "Thorax": "thorax",
        "Neck/Nose": "upper_neck",
        "Head": "head_top",
    },
    ("h36m17", "h36m16"): {n: n for n in _H36M16_NAMES},
    ("h36m16", "h36m17"): {**{n: n for n in _H36M16_NAMES}, "Neck/Nose": _mid("Thorax", "Head")},
    ("h36m32", "h36m17"): {n: n for n in _H36M17_NAMES},
    ("mpi3dhp28", "mpi3dhp17"): {n: n for n in _MPI3DHP17_NAMES},
    ("mpi3dhp17", "h36m17"): {
        **_H36M_LIMBS_FROM_SNAKE,
        "Hip": "pelvis",
        "Spine": "spine",
        "Thorax": "neck",
        "Neck/Nose": "head",
        "Head": "head_top",
    },
    ("smpl24", "h36m17"): {
        **_H36M_LIMBS_FROM_SNAKE,
        "Hip": "pelvis",
        "Spine": _mid("pelvis", "neck"),
        "Thorax": "neck",
        "Neck/Nose": "head",
        "Head": {"head": 2.0, "neck": -1.0},
    },
    ("openpose18", "h36m17"): {
        **_H36M_LIMBS_FROM_SNAKE,
        "Hip": _mid("left_hip", "right_hip"),
        "Thorax": "neck",
        "Spine": {"left_hip": 0.25, "right_hip": 0.25, "neck": 0.5},
        "Neck/Nose": "nose",
        "Head": _mid("left_eye", "right_eye"),
    },
    ("body25", "h36m17"): {
        **_H36M_LIMBS_FROM_SNAKE,
        "Hip": "mid_hip",
        "Thorax": "neck",
        "Spine": _mid("mid_hip", "neck"),
        "Neck/Nose": "nose",
        "Head": _mid("left_eye", "right_eye"),
    },
    ("halpe26", "h36m17"): {
        **_H36M_LIMBS_FROM_SNAKE,
        "Hip": "hip",
        "Thorax": "neck",
        "Spine": _mid("hip", "neck"),
        "Neck/Nose": "nose",
        "Head": "head",
    },
}


@functools.cache
def _conversion(source: Layout, target: Layout) -> tuple[np.ndarray, np.ndarray]:
    if source == target:
        eye = np.eye(source.num_joints, dtype=np.float32)
        return eye, eye.astype(bool)
    key = (source.name, target.name)
    if key == ("mpi3dhp28", "h36m17"):  # composed through the published 17-joint test set
        w1, _ = _conversion(source, MPI3DHP17)
        w2, _ = _conversion(MPI3DHP17, target)
        w = w2 @ w1
        return w, w != 0
    if key not in _CONVERSION_RULES:
        known = ", ".join(f"{a}->{b}" for a, b in _CONVERSION_RULES)
        raise ValueError(f"no converter from layout {source.name} to {target.name}; known: {known}")
    rules = _CONVERSION_RULES[key]
    w = np.zeros((target.num_joints, source.num_joints), dtype=np.float32)
    for t_name in target.joint_names:
        rule = rules[t_name]
        terms = {rule: 1.0} if isinstance(rule, str) else dict(rule)
        for s_name, weight in terms.items():
            w[target.index(t_name), source.index(s_name)] = weight
    return w, w != 0


def convert_layout(
    points: Any, confidence: Any | None = None, *, source: str | Layout, target: str | Layout
) -> tuple[Any, Any]:
    """Convert ``[..., Js, D]`` points (and ``[..., Js]`` confidences) to another layout.

    Each target joint is a fixed weighted sum of source joints (rules in the module docstring);
    its confidence is the minimum over the source joints it uses. Numpy inputs give numpy
    outputs (host-side data code), anything else goes through ``jax.numpy``.

    Args:
      points: ``[..., Js, D]`` coordinates in any unit.
      confidence: ``[..., Js]`` per-joint confidence / visibility, or ``None`` (treated as ones).
      source: layout (or name) of ``points``.
      target: layout (or name) to convert to.

    Returns:
      ``(points [..., Jt, D], confidence [..., Jt])``.
    """
    src, dst = get_layout(source), get_layout(target)
    shape = tuple(np.shape(points))
    if len(shape) < 2 or shape[-2] != src.num_joints:
        raise ValueError(
            f"points: expected shape [..., {src.num_joints}, D] for layout {src.name}, got {shape}"
        )
    xp = np if isinstance(points, np.ndarray) else jnp
    if confidence is None:
        confidence = xp.ones(shape[:-1], dtype=points.dtype)
    elif tuple(np.shape(confidence)) != shape[:-1]:
        raise ValueError(
            f"confidence: expected shape {shape[:-1]} to match points {shape}, "
            f"got {tuple(np.shape(confidence))}"
        )
    w, used = _conversion(src, dst)
    out = xp.einsum("ts,...sd->...td", w.astype(points.dtype), points)
    big = xp.asarray(np.inf, dtype=confidence.dtype)
    conf = xp.min(xp.where(used, confidence[..., None, :], big), axis=-1)
    return out, conf


def _named_converter(source: Layout, target: Layout):
    def convert(points: Any, confidence: Any | None = None) -> tuple[Any, Any]:
        return convert_layout(points, confidence, source=source, target=target)

    convert.__name__ = f"{source.name}_to_{target.name}"
    convert.__qualname__ = convert.__name__
    convert.__doc__ = (
        f"Convert ``[..., {source.num_joints}, D]`` {source.name} points (and confidences) to "
        f"{target.name}; see the module docstring for the rule. Returns (points, confidence)."
    )
    return convert


coco17_to_h36m17 = _named_converter(COCO17, H36M17)
mpii16_to_h36m17 = _named_converter(MPII16, H36M17)
h36m17_to_h36m16 = _named_converter(H36M17, H36M16)
h36m16_to_h36m17 = _named_converter(H36M16, H36M17)
h36m32_to_h36m17 = _named_converter(H36M32, H36M17)
mpi3dhp28_to_mpi3dhp17 = _named_converter(MPI3DHP28, MPI3DHP17)
mpi3dhp28_to_h36m17 = _named_converter(MPI3DHP28, H36M17)
mpi3dhp17_to_h36m17 = _named_converter(MPI3DHP17, H36M17)
smpl24_to_h36m17 = _named_converter(SMPL24, H36M17)
openpose18_to_h36m17 = _named_converter(OPENPOSE18, H36M17)
body25_to_h36m17 = _named_converter(BODY25, H36M17)
halpe26_to_h36m17 = _named_converter(HALPE26, H36M17)


def flip_points(points: Any, *, layout: str | Layout, axis: int = 0) -> Any:
    """Mirror ``[..., J, D]`` points: negate coordinate ``axis`` and swap left/right joints.

    Used for flip test-time augmentation (negate x of root-relative or normalised coordinates).
    """
    lay = get_layout(layout)
    check_points(points, lay, dims=(2, 3), name="points")
    xp = np if isinstance(points, np.ndarray) else jnp
    sign = np.ones(np.shape(points)[-1], dtype=np.float32)
    sign[axis] = -1.0
    return xp.take(points, lay.flip_permutation, axis=-2) * sign.astype(points.dtype)
