"""BVH (Biovision Hierarchy) export and import of 3D pose sequences.

Shapes and units: joint positions are ``[T, J, 3]`` arrays (T frames, J joints of a
:mod:`jpose.skeleton` layout) in **metres**. BVH files are written in **centimetres**
(``OFFSET`` and position channels; ``units_per_metre=100``) with angles in **degrees**. Pure
numpy; :func:`write_bvh` / :func:`read_bvh` are thin file wrappers around :func:`format_bvh` /
:func:`parse_bvh`. Format: the Biovision BVH description of Meredith & Maddock, "Motion Capture
File Formats Explained" (University of Sheffield, 2001), sec. 3; the file starts with
``HIERARCHY`` and carries no comments (several readers, Blender's and bvhio's among them,
accept nothing else).

Axes: the coordinates are written as given; BVH tools take y as up. :func:`from_camera_frame`
maps jpose camera-frame points (x right, y down, z forward) to the frame the ``jpose`` command
writes: x right, y up, z towards the camera (a 180 degree rotation about x, so a person facing
the camera faces +z, the usual BVH convention, and their left is +x).

Skeleton (derived from the layout's parents; nothing is typed per layout), built by
:func:`fit_bvh`:

* One BVH joint per layout joint, rooted at the layout's root (h36m17: the pelvis ``Hip``).
* **Rest pose**: a T-pose (:func:`rest_directions`): central bones up (+y), left/right bones
  sideways (left +x, right -x), legs down, toes forward; rest bone lengths are the **mean bone
  lengths of the sequence**.
* **A joint with one child** gets the minimal rotation (no twist about the bone, swing only;
  Rodrigues' formula) that takes the rest direction of its bone, in its parent's frame, to the
  observed direction.
* **A joint with several children** (h36m17: pelvis and thorax) gets the rotation between two
  frames built from two child directions, the central child's direction and the left-minus-right
  direction of a symmetric child pair (the TRIAD construction of H. D. Black, "A passive system
  for determining the attitude of a satellite", AIAA Journal 2(7), 1964), so its twist is
  determined. The central child hangs from it directly; every other child hangs from a link
  joint ``<parent>_<child>`` at the parent's position (zero ``OFFSET``) whose rotation orients
  that one bone, like the ``LHipJoint`` / ``LeftShoulder`` joints of the CMU mocap BVH
  conversions. Every joint position is therefore reproduced exactly when the bone lengths are
  constant.
* **Leaves** get zero rotations (their orientation is their parent's) and an ``End Site`` that
  continues the incoming bone by a quarter of its length (BVH needs a tip).
* **Root**: channels ``Xposition Yposition Zposition Zrotation Xrotation Yrotation``, the root's
  position (zero when the poses are root-relative: the root stays at the origin); other joints
  ``Zrotation Xrotation Yrotation``. A joint's local rotation is ``Rz(z) @ Rx(x) @ Ry(y)``
  (intrinsic, in the listed channel order: the usual BVH reading, Blender's and bvhio's).
  Angles are unwrapped along time (no 360 degree jumps).
* Forward kinematics (:func:`forward_kinematics`): a node's world transform is its parent's
  world transform, then a translation by ``OFFSET`` (plus its position channels, if any), then
  its rotation.

Limitation: BVH has one length per bone. Lifted poses do not keep bone lengths exactly constant
over a sequence (they vary by millimetres to centimetres); those variations are not
representable: :class:`BvhFit` reports the largest bone-length deviation from the mean and the
largest joint-position error of the BVH. Every frame needs a finite pose with no zero-length
bone (a ``ValueError`` names the frame and joint otherwise).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from jpose import skeleton

__all__ = [
    "ROTATION_ORDER",
    "Bvh",
    "BvhFit",
    "from_camera_frame",
    "rest_directions",
    "rotation_from_euler",
    "euler_from_rotation",
    "fit_bvh",
    "forward_kinematics",
    "joint_positions",
    "format_bvh",
    "parse_bvh",
    "write_bvh",
    "read_bvh",
]

ROTATION_ORDER = "ZXY"
"""Rotation channel order written by :func:`fit_bvh` (``Zrotation Xrotation Yrotation``)."""

_AXES = "XYZ"
_MIN_BONE_M = 1e-6  # a bone shorter than this has no direction
_MIN_SINE = 1e-6  # two child directions closer to parallel than this give no frame
_END_SITE_FRACTION = 0.25  # End Site offset = this fraction of the leaf's incoming bone
_CAMERA_TO_BVH = np.diag([1.0, -1.0, -1.0])  # 180 degrees about x: y down -> y up


@dataclasses.dataclass(frozen=True, eq=False)
class Bvh:
    """A parsed or fitted BVH file: hierarchy and motion.

    Attributes:
      names: node names in file order (depth first); an ``End Site`` is named
        ``<parent>_end``.
      parents: parent node index per node, ``-1`` for the root; parents precede children.
      offsets: ``[K, 3]`` ``OFFSET`` per node, file units.
      channels: channel names per node (``()`` for end sites), e.g. ``("Zrotation", ...)``.
      end_site: per node, whether it is an ``End Site``.
      motion: ``[T, C]`` channel values per frame (file units and degrees), ``C`` = the total
        number of channels, in node order.
      frame_time_s: seconds per frame.
    """

    names: tuple[str, ...]
    parents: tuple[int, ...]
    offsets: np.ndarray
    channels: tuple[tuple[str, ...], ...]
    end_site: tuple[bool, ...]
    motion: np.ndarray
    frame_time_s: float

    def __post_init__(self) -> None:
        k = len(self.names)
        if not (len(self.parents) == len(self.channels) == len(self.end_site) == k):
            raise ValueError("Bvh: names, parents, channels and end_site differ in length")
        if np.shape(self.offsets) != (k, 3):
            raise ValueError(f"Bvh: offsets must have shape ({k}, 3), got {np.shape(self.offsets)}")
        if k == 0 or self.parents[0] != -1 or any(p == -1 for p in self.parents[1:]):
            raise ValueError("Bvh: node 0 must be the only root")
        if any(not 0 <= p < i for i, p in enumerate(self.parents) if i):
            raise ValueError("Bvh: every parent must precede its children")
        num = sum(len(c) for c in self.channels)
        if np.ndim(self.motion) != 2 or np.shape(self.motion)[1] != num:
            raise ValueError(
                f"Bvh: motion must have shape [T, {num}] (one column per channel), got "
                f"{np.shape(self.motion)}"
            )

    @property
    def num_frames(self) -> int:
        return int(np.shape(self.motion)[0])

    def index(self, name: str) -> int:
        """Index of node ``name``; ``ValueError`` listing the nodes when absent."""
        try:
            return self.names.index(name)
        except ValueError:
            raise ValueError(f"no BVH node {name!r} (nodes: {', '.join(self.names)})") from None


@dataclasses.dataclass(frozen=True, eq=False)
class BvhFit:
    """Result of :func:`fit_bvh`.

    Attributes:
      bvh: the fitted :class:`Bvh` (centimetres unless ``units_per_metre`` says otherwise).
      rest_lengths_m: ``[J]`` rest length of the bone ending at each joint (metres; 0 for the
        root): the sequence mean.
      max_length_deviation_m: largest ``|bone length - rest length|`` over bones and frames.
      max_position_error_m: largest distance between a joint of the BVH (forward kinematics)
        and the input (metres); about ``max_length_deviation_m`` summed along a chain, 0 up to
        rounding for constant bone lengths.
    """

    bvh: Bvh
    rest_lengths_m: np.ndarray
    max_length_deviation_m: float
    max_position_error_m: float


# ------------------------------------------------------------------------------------ rotations


def _axis_rotation(axis: int, angle_rad: np.ndarray) -> np.ndarray:
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    r = np.zeros((*np.shape(angle_rad), 3, 3))
    i, j = (axis + 1) % 3, (axis + 2) % 3  # cyclic: right-handed for every axis
    r[..., axis, axis] = 1.0
    r[..., i, i], r[..., i, j], r[..., j, i], r[..., j, j] = c, -s, s, c
    return r


def _check_order(order: str) -> tuple[int, int, int]:
    idx = tuple(_AXES.find(a) for a in order.upper())
    if len(idx) != 3 or sorted(idx) != [0, 1, 2]:
        raise ValueError(f"rotation order must be a permutation of 'XYZ', got {order!r}")
    return idx  # type: ignore[return-value]


def rotation_from_euler(angles_deg: Any, *, order: str = ROTATION_ORDER) -> np.ndarray:
    """Rotation matrices of BVH Euler angles.

    ``R = R_a(angles[..., 0]) @ R_b(angles[..., 1]) @ R_c(angles[..., 2])`` for
    ``order = "abc"``: intrinsic rotations in the listed channel order (Meredith & Maddock 2001,
    sec. 3.2; with ``R_x`` the right-handed rotation about x).

    Args:
      angles_deg: ``[..., 3]`` angles in degrees, in ``order``.
      order: a permutation of ``"XYZ"``.

    Returns:
      ``[..., 3, 3]`` float64 rotation matrices.
    """
    idx = _check_order(order)
    a = np.radians(np.asarray(angles_deg, np.float64))
    if a.shape[-1:] != (3,):
        raise ValueError(f"angles_deg: expected shape [..., 3], got {a.shape}")
    r = _axis_rotation(idx[0], a[..., 0])
    r = r @ _axis_rotation(idx[1], a[..., 1])
    return r @ _axis_rotation(idx[2], a[..., 2])


def euler_from_rotation(rotation: Any, *, order: str = ROTATION_ORDER) -> np.ndarray:
    """Euler angles (degrees) with ``rotation_from_euler(angles, order=order) == rotation``.

    Tait-Bryan decomposition (K. Shoemake, "Euler angle conversion", Graphics Gems IV, 1994): the
    middle angle lies in ``[-90, 90]``; at gimbal lock (middle angle +-90) the last angle is 0.

    Args:
      rotation: ``[..., 3, 3]`` rotation matrices.
      order: a permutation of ``"XYZ"``.

    Returns:
      ``[..., 3]`` float64 angles in degrees, in ``order``.
    """
    i, j, k = _check_order(order)
    r = np.asarray(rotation, np.float64)
    if r.shape[-2:] != (3, 3):
        raise ValueError(f"rotation: expected shape [..., 3, 3], got {r.shape}")
    sign = 1.0 if (i, j, k) in ((0, 1, 2), (1, 2, 0), (2, 0, 1)) else -1.0
    middle = np.arctan2(sign * r[..., i, k], np.hypot(r[..., i, i], r[..., i, j]))
    first = np.arctan2(-sign * r[..., j, k], r[..., k, k])
    last = np.arctan2(-sign * r[..., i, j], r[..., i, i])
    lock = np.hypot(r[..., i, i], r[..., i, j]) < 1e-9
    first = np.where(lock, np.arctan2(sign * r[..., k, j], r[..., j, j]), first)
    last = np.where(lock, 0.0, last)
    return np.degrees(np.stack([first, middle, last], -1))


def _min_rotation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``[T, 3, 3]`` minimal rotations taking unit ``a [3]`` to unit ``b [T, 3]`` (Rodrigues)."""
    v = np.cross(a, b)
    c = b @ a
    vx = np.zeros((len(b), 3, 3))
    vx[:, 0, 1], vx[:, 0, 2], vx[:, 1, 2] = -v[:, 2], v[:, 1], -v[:, 0]
    vx = vx - np.swapaxes(vx, 1, 2)
    opposite = c < -1.0 + 1e-9
    scale = 1.0 / np.where(opposite, 1.0, 1.0 + c)
    r = np.eye(3) + vx + (vx @ vx) * scale[:, None, None]
    if opposite.any():  # half turn about an axis perpendicular to a
        e = np.eye(3)[np.argmin(np.abs(a))]
        u = np.cross(a, e)
        u /= np.linalg.norm(u)
        r[opposite] = 2.0 * np.outer(u, u) - np.eye(3)
    return r


def _triad(v1: np.ndarray, v2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Frames ``[..., 3, 3]`` (columns e1, e2, e3) from two directions, and their sine."""
    e1 = v1 / np.linalg.norm(v1, axis=-1, keepdims=True)
    w = v2 - np.sum(v2 * e1, -1, keepdims=True) * e1
    sine = np.linalg.norm(w, axis=-1) / np.linalg.norm(v2, axis=-1)
    e2 = w / np.maximum(np.linalg.norm(w, axis=-1, keepdims=True), 1e-300)
    return np.stack([e1, e2, np.cross(e1, e2)], -1), sine


# ------------------------------------------------------------------------------------- skeleton


def from_camera_frame(points: Any) -> np.ndarray:
    """Map ``[..., 3]`` camera-frame points (x right, y down, z forward) to the BVH frame.

    The BVH frame is x right, y up, z towards the camera: a 180 degree rotation about x (a proper
    rotation, units unchanged). It is its own inverse.

    Returns:
      ``[..., 3]`` float64 points.
    """
    return np.asarray(points, np.float64) @ _CAMERA_TO_BVH.T


_DOWN_WORDS = ("knee", "ankle", "foot")


def rest_directions(layout: str | skeleton.Layout) -> np.ndarray:
    """``[J, 3]`` unit T-pose direction of the bone ending at each joint (BVH frame, y up).

    Derived from the layout's data: a joint in a left/right pair is on the person's left (+x) or
    right (-x); the rule by joint name (case-insensitive) is: ``toe`` forward (+z, the small toe
    also outward), ``thumb`` forward and outward, ``heel`` down and back, ``eye`` / ``ear`` up
    and outward, ``knee`` / ``ankle`` / ``foot`` down (-y), a ``hip`` below a sided joint
    (COCO's drawing tree) down, other paired joints outward (hips and arms of a T-pose), all
    other joints up (+y). The root's entry is unused (zero).

    Args:
      layout: a layout or its name.

    Returns:
      ``[J, 3]`` float64 directions.
    """
    lay = skeleton.get_layout(layout)
    side = np.zeros(lay.num_joints)
    side[lay.joints_left] = 1.0
    side[lay.joints_right] = -1.0
    out = np.zeros((lay.num_joints, 3))
    for j, name in enumerate(lay.joint_names):
        p = lay.parents[j]
        if p == -1:
            continue
        n, s = name.lower(), side[j]
        if "toe" in n:
            d = (0.5 * s if "small" in n else 0.0, 0.0, 1.0)
        elif "thumb" in n:
            d = (s, 0.0, 1.0)
        elif "heel" in n:
            d = (0.0, -1.0, -1.0)
        elif s and ("eye" in n or "ear" in n):
            d = (s, 1.0, 0.0)
        elif any(w in n for w in _DOWN_WORDS) or ("hip" in n and side[p] != 0):
            d = (0.0, -1.0, 0.0)
        elif s:
            d = (s, 0.0, 0.0)
        else:
            d = (0.0, 1.0, 0.0)
        out[j] = np.asarray(d) / np.linalg.norm(d)
    return out


@dataclasses.dataclass(frozen=True)
class _Node:
    name: str
    parent: int  # node index, -1 for the root
    joint: int  # layout joint, -1 for link nodes and end sites
    kind: str  # "joint", "link" or "end"
    child: int = -1  # link: the layout joint whose bone it orients; end: the leaf joint


def _branch_plan(lay: skeleton.Layout, rest: np.ndarray) -> dict[int, tuple[int, Any]]:
    """For each joint with several children: (primary child, secondary spec).

    The primary child's direction is the frame's first axis; the secondary spec is
    ``("pair", left, right)`` (left-minus-right direction) or ``("child", c)``, the first
    candidate not parallel to the primary in the rest pose.
    """
    children = {j: [c for c in range(lay.num_joints) if lay.parents[c] == j]
                for j in range(lay.num_joints)}  # fmt: skip
    flip = lay.flip_permutation
    left = set(lay.joints_left.tolist())
    plan = {}
    for j, kids in children.items():
        if len(kids) < 2:
            continue
        central = [c for c in kids if flip[c] == c]
        primary = central[0] if central else kids[0]
        candidates: list[tuple[Any, ...]] = [
            ("pair", c, int(flip[c])) for c in kids if c in left and int(flip[c]) in kids
        ]
        candidates += [("child", c) for c in kids if c != primary]
        for spec in candidates:
            if _triad(rest[primary], _second(rest, spec))[1] > 1e-3:
                plan[j] = (primary, spec)
                break
        else:
            raise ValueError(
                f"layout {lay.name}: the rest directions of the children of "
                f"{lay.joint_names[j]} are parallel; pass rest= directions"
            )
    return plan


def _build_nodes(lay: skeleton.Layout, plan: dict[int, tuple[int, Any]]) -> list[_Node]:
    nodes: list[_Node] = []
    names = set(lay.joint_names)

    def add(j: int, parent: int) -> None:
        me = len(nodes)
        nodes.append(_Node(lay.joint_names[j], parent, j, "joint"))
        kids = [c for c in range(lay.num_joints) if lay.parents[c] == j]
        if not kids:
            nodes.append(_Node(f"{lay.joint_names[j]}_end", me, -1, "end", j))
        for c in kids:
            if j in plan and c != plan[j][0]:
                link = f"{lay.joint_names[j]}_{lay.joint_names[c]}"
                if link in names:
                    raise ValueError(f"layout {lay.name}: link joint name {link!r} is taken")
                nodes.append(_Node(link, me, -1, "link", c))
                add(c, len(nodes) - 1)
            else:
                add(c, me)

    add(lay.root, -1)
    return nodes


# ------------------------------------------------------------------------------------------ fit


def fit_bvh(
    positions_m: Any,
    *,
    layout: str | skeleton.Layout = "h36m17",
    fps: float = 30.0,
    units_per_metre: float = 100.0,
    rest: Any | None = None,
) -> BvhFit:
    """Fit BVH joint rotations to a pose sequence (method in the module docstring).

    Args:
      positions_m: ``[T, J, 3]`` joint positions in metres, BVH frame (y up; see
        :func:`from_camera_frame`); the root's position becomes the root translation channels
        (give root-relative poses to keep the root at the origin).
      layout: the joints' layout (or its name); the hierarchy is derived from its parents.
      fps: frames per second (``Frame Time = 1 / fps``).
      units_per_metre: file units (100: centimetres).
      rest: ``[J, 3]`` rest (T-pose) bone directions; default :func:`rest_directions`.

    Returns:
      :class:`BvhFit` with the :class:`Bvh` and the bone-length statistics.

    Raises:
      ValueError: bad shapes, non-finite positions, a zero-length bone, or a joint whose two
        frame directions are parallel (twist undefined) in some frame.
    """
    lay = skeleton.get_layout(layout)
    p = np.asarray(positions_m, np.float64)
    if p.ndim != 3 or p.shape[1:] != (lay.num_joints, 3) or p.shape[0] == 0:
        raise ValueError(
            f"positions_m: expected shape [T, {lay.num_joints}, 3] (T >= 1) for layout "
            f"{lay.name}, got {p.shape}"
        )
    bad = ~np.isfinite(p).all(-1)
    if bad.any():
        t, j = (int(v[0]) for v in np.nonzero(bad))
        raise ValueError(
            f"positions_m: non-finite values (NaN/inf) in {int(bad.any(-1).sum())} frames, first "
            f"frame {t} joint {lay.joint_names[j]}; BVH needs a finite pose in every frame"
        )
    if not (np.isfinite(fps) and fps > 0) or not (
        np.isfinite(units_per_metre) and units_per_metre > 0
    ):
        raise ValueError(f"fps and units_per_metre must be positive, got {fps}, {units_per_metre}")
    rest_dir = rest_directions(lay) if rest is None else np.asarray(rest, np.float64)
    if rest_dir.shape != (lay.num_joints, 3):
        raise ValueError(f"rest: expected shape ({lay.num_joints}, 3), got {rest_dir.shape}")
    nonroot = [c for c in range(lay.num_joints) if c != lay.root]
    norms = np.linalg.norm(rest_dir[nonroot], axis=-1)
    if np.any(~np.isfinite(norms) | (norms < 1e-9)):
        raise ValueError("rest: every non-root joint needs a non-zero finite direction")
    rest_dir = rest_dir / np.maximum(np.linalg.norm(rest_dir, axis=-1, keepdims=True), 1e-300)

    # observed bones: unit directions and lengths
    t = p.shape[0]
    direction = np.zeros_like(p)
    length = np.zeros((t, lay.num_joints))
    for c in nonroot:
        v = p[:, c] - p[:, lay.parents[c]]
        length[:, c] = np.linalg.norm(v, axis=-1)
        if length[:, c].min() < _MIN_BONE_M:
            f = int(np.argmin(length[:, c]))
            raise ValueError(
                f"bone {lay.joint_names[lay.parents[c]]}->{lay.joint_names[c]} has length "
                f"{length[f, c]:.3g} m in frame {f} (coincident joints): its rotation is "
                "undefined"
            )
        direction[:, c] = v / length[:, c, None]
    rest_len = length.mean(0)
    deviation = float(np.abs(length - rest_len)[:, nonroot].max()) if nonroot else 0.0

    plan = _branch_plan(lay, rest_dir)
    nodes = _build_nodes(lay, plan)
    world: list[np.ndarray] = []  # [T, 3, 3] world rotation per node
    local: list[np.ndarray] = []
    eye = np.broadcast_to(np.eye(3), (t, 3, 3))
    for node in nodes:
        parent_world = eye if node.parent < 0 else world[node.parent]
        if node.kind == "end":
            rot = eye
        elif node.kind == "link":  # orient its one bone
            b = np.einsum("tji,tj->ti", parent_world, direction[:, node.child])
            rot = _min_rotation(rest_dir[node.child], b)
        else:
            j = node.joint
            kids = [c for c in range(lay.num_joints) if lay.parents[c] == j]
            if not kids:  # a leaf
                rot = eye
            elif len(kids) == 1:  # orient its one bone
                b = np.einsum("tji,tj->ti", parent_world, direction[:, kids[0]])
                rot = _min_rotation(rest_dir[kids[0]], b)
            else:
                primary, spec = plan[j]
                f_rest, _ = _triad(rest_dir[primary], _second(rest_dir, spec))
                f_obs, sine = _triad(direction[:, primary], _second(direction, spec))
                if sine.min() < _MIN_SINE:
                    f, names = int(np.argmin(sine)), lay.joint_names
                    second = f"child {names[spec[1]]}"
                    if spec[0] == "pair":
                        second = f"{names[spec[1]]} - {names[spec[2]]}"
                    raise ValueError(
                        f"joint {names[j]}: its frame directions (child {names[primary]} and "
                        f"{second}) are parallel in frame {f}: its twist is undefined"
                    )
                rot = np.swapaxes(parent_world, 1, 2) @ (f_obs @ f_rest.T)
        local.append(np.asarray(rot))
        world.append(np.asarray(parent_world @ rot))

    offsets = np.zeros((len(nodes), 3))
    channels: list[tuple[str, ...]] = []
    columns: list[np.ndarray] = []
    rot_channels = tuple(f"{a}rotation" for a in ROTATION_ORDER)
    for n, node in enumerate(nodes):
        if node.kind == "joint" and node.joint != lay.root:
            offsets[n] = rest_len[node.joint] * rest_dir[node.joint] * units_per_metre
        elif node.kind == "end":
            leaf = node.child
            offsets[n] = _END_SITE_FRACTION * rest_len[leaf] * rest_dir[leaf] * units_per_metre
            channels.append(())
            continue
        if node.parent < 0:
            channels.append(("Xposition", "Yposition", "Zposition", *rot_channels))
            columns.append(p[:, lay.root] * units_per_metre)
        else:
            channels.append(rot_channels)
        angles = euler_from_rotation(local[n], order=ROTATION_ORDER)
        columns.append(np.degrees(np.unwrap(np.radians(angles), axis=0)))
    bvh = Bvh(
        names=tuple(node.name for node in nodes),
        parents=tuple(node.parent for node in nodes),
        offsets=offsets,
        channels=tuple(channels),
        end_site=tuple(node.kind == "end" for node in nodes),
        motion=np.concatenate(columns, axis=1),
        frame_time_s=1.0 / float(fps),
    )
    back = joint_positions(bvh, lay.joint_names, metres_per_unit=1.0 / units_per_metre)
    return BvhFit(
        bvh=bvh,
        rest_lengths_m=rest_len * (np.arange(lay.num_joints) != lay.root),
        max_length_deviation_m=deviation,
        max_position_error_m=float(np.linalg.norm(back - p, axis=-1).max()),
    )


def _second(d: np.ndarray, spec: tuple[Any, ...]) -> np.ndarray:
    """The frame's second direction from ``[..., J, 3]`` bone directions."""
    if spec[0] == "pair":
        return d[..., spec[1], :] - d[..., spec[2], :]
    return d[..., spec[1], :]


# ------------------------------------------------------------------------- forward kinematics


def forward_kinematics(bvh: Bvh) -> np.ndarray:
    """World positions of every node (joints, link joints, end sites) in every frame.

    A node's world transform is its parent's, then a translation by its ``OFFSET`` plus its
    position channels (the two conventions in use, added to or replacing the offset, agree for a
    zero offset, which :func:`fit_bvh` writes for the root), then its rotation channels in the
    listed order (:func:`rotation_from_euler`).

    Args:
      bvh: a :class:`Bvh`.

    Returns:
      ``[T, K, 3]`` float64 positions in file units.
    """
    t = bvh.num_frames
    k = len(bvh.names)
    pos = np.zeros((t, k, 3))
    world = np.zeros((t, k, 3, 3))
    col = 0
    for n in range(k):
        trans = np.broadcast_to(np.asarray(bvh.offsets[n], np.float64), (t, 3)).copy()
        rot = np.broadcast_to(np.eye(3), (t, 3, 3))
        for name in bvh.channels[n]:
            value = np.asarray(bvh.motion[:, col], np.float64)
            axis = _AXES.index(name[0].upper())
            if name[1:].lower() == "position":
                trans[:, axis] += value
            else:
                rot = rot @ _axis_rotation(axis, np.radians(value))
            col += 1
        p = bvh.parents[n]
        if p < 0:
            pos[:, n], world[:, n] = trans, rot
        else:
            pos[:, n] = pos[:, p] + np.einsum("tij,tj->ti", world[:, p], trans)
            world[:, n] = world[:, p] @ rot
    return pos


def joint_positions(bvh: Bvh, names: Sequence[str], *, metres_per_unit: float = 0.01) -> np.ndarray:
    """``[T, len(names), 3]`` world positions (metres) of the named nodes (forward kinematics).

    Args:
      bvh: a :class:`Bvh`.
      names: node names, e.g. a layout's ``joint_names``.
      metres_per_unit: file unit in metres (0.01: centimetres, as :func:`fit_bvh` writes).

    Returns:
      ``[T, len(names), 3]`` float64 positions in metres.
    """
    idx = [bvh.index(n) for n in names]
    return forward_kinematics(bvh)[:, idx] * metres_per_unit


# ---------------------------------------------------------------------------------- text format


def _num(x: float) -> str:
    s = f"{x:.6f}"
    return "0.000000" if s == "-0.000000" else s


def format_bvh(bvh: Bvh) -> str:
    """BVH text of ``bvh`` (``HIERARCHY`` then ``MOTION``; tabs; 6 decimals).

    Args:
      bvh: a :class:`Bvh` (e.g. ``fit_bvh(...).bvh``).

    Returns:
      The file content.
    """
    kids: dict[int, list[int]] = {n: [] for n in range(len(bvh.names))}
    for n, p in enumerate(bvh.parents):
        if p >= 0:
            kids[p].append(n)
    lines = ["HIERARCHY"]

    def emit(n: int, depth: int) -> None:
        pad = "\t" * depth
        if bvh.end_site[n]:
            lines.append(f"{pad}End Site")
        else:
            lines.append(f"{pad}{'ROOT' if n == 0 else 'JOINT'} {bvh.names[n]}")
        lines.append(pad + "{")
        lines.append(f"{pad}\tOFFSET " + " ".join(_num(v) for v in bvh.offsets[n]))
        if not bvh.end_site[n]:
            ch = bvh.channels[n]
            lines.append(f"{pad}\tCHANNELS {len(ch)} " + " ".join(ch))
        for c in kids[n]:
            emit(c, depth + 1)
        lines.append(pad + "}")

    emit(0, 0)
    lines += ["MOTION", f"Frames: {bvh.num_frames}", f"Frame Time: {bvh.frame_time_s:.8f}"]
    lines += [" ".join(_num(v) for v in row) for row in np.asarray(bvh.motion, np.float64)]
    return "\n".join(lines) + "\n"


class _Tokens:
    def __init__(self, text: str) -> None:
        self.items = text.split()
        self.pos = 0

    def next(self, what: str) -> str:
        if self.pos >= len(self.items):
            raise ValueError(f"BVH: unexpected end of file, expected {what}")
        self.pos += 1
        return self.items[self.pos - 1]

    def expect(self, word: str) -> None:
        got = self.next(repr(word))
        if got != word:
            raise ValueError(f"BVH: expected {word!r} at token {self.pos}, got {got!r}")

    def number(self, what: str) -> float:
        got = self.next(what)
        try:
            return float(got)
        except ValueError:
            raise ValueError(
                f"BVH: expected a number ({what}) at token {self.pos}, got {got!r}"
            ) from None


def parse_bvh(text: str) -> Bvh:
    """Parse BVH text (one ``ROOT``; any channel order; position channels on any joint).

    Args:
      text: the file content.

    Returns:
      :class:`Bvh`; end sites are named ``<parent>_end``.

    Raises:
      ValueError: malformed text (the message names the token).
    """
    tok = _Tokens(text)
    tok.expect("HIERARCHY")
    names: list[str] = []
    parents: list[int] = []
    offsets: list[list[float]] = []
    channels: list[tuple[str, ...]] = []
    end: list[bool] = []

    def node(parent: int, is_end: bool, name: str) -> None:
        me = len(names)
        names.append(name)
        parents.append(parent)
        end.append(is_end)
        tok.expect("{")
        tok.expect("OFFSET")
        offsets.append([tok.number("OFFSET") for _ in range(3)])
        if is_end:
            channels.append(())
            tok.expect("}")
            return
        tok.expect("CHANNELS")
        count = tok.number("channel count")
        if count != int(count) or count < 0:
            raise ValueError(f"BVH: bad channel count {count} for joint {name}")
        chans = tuple(tok.next("channel name") for _ in range(int(count)))
        for ch in chans:
            if (
                len(ch) != 9
                or ch[0].upper() not in _AXES
                or ch[1:].lower() not in ("position", "rotation")
            ):
                raise ValueError(f"BVH: unknown channel {ch!r} of joint {name}")
        channels.append(chans)
        while True:
            word = tok.next("JOINT, End Site or '}'")
            if word == "}":
                return
            if word == "JOINT":
                node(me, False, _name(tok))
            elif word == "End":
                tok.expect("Site")
                node(me, True, f"{name}_end")
            else:
                raise ValueError(
                    f"BVH: expected JOINT, End Site or '}}' in joint {name}, got {word!r}"
                )

    tok.expect("ROOT")
    node(-1, False, _name(tok))
    tok.expect("MOTION")
    tok.expect("Frames:")
    frames = tok.number("frame count")
    tok.expect("Frame")
    tok.expect("Time:")
    frame_time = tok.number("frame time")
    num = sum(len(c) for c in channels)
    values = tok.items[tok.pos :]
    if frames != int(frames) or frames < 0 or len(values) != int(frames) * num:
        raise ValueError(
            f"BVH: MOTION has {len(values)} values; expected Frames ({frames:g}) x channels ({num})"
        )
    try:
        motion = np.asarray(values, np.float64).reshape(int(frames), num)
    except ValueError as err:
        raise ValueError(f"BVH: non-numeric MOTION values: {err}") from None
    return Bvh(
        names=tuple(names),
        parents=tuple(parents),
        offsets=np.asarray(offsets, np.float64).reshape(-1, 3),
        channels=tuple(channels),
        end_site=tuple(end),
        motion=motion,
        frame_time_s=float(frame_time),
    )


def _name(tok: _Tokens) -> str:
    parts = []
    while True:
        word = tok.next("joint name")
        if word == "{":
            tok.pos -= 1
            break
        parts.append(word)
    if not parts:
        raise ValueError(f"BVH: a joint without a name at token {tok.pos}")
    return " ".join(parts)


def write_bvh(path: str | os.PathLike[str], bvh: Bvh) -> None:
    """Write ``bvh`` to ``path`` (text, :func:`format_bvh`)."""
    with open(path, "w") as f:
        f.write(format_bvh(bvh))


def read_bvh(path: str | os.PathLike[str]) -> Bvh:
    """Read a BVH file (:func:`parse_bvh`)."""
    with open(path) as f:
        return parse_bvh(f.read())
