"""Virtual cameras sampled like a Human3.6M rig, and projection of world poses through them.

World frame: metres, **z up**, floor near ``z = 0`` (as Human3.6M's world frame and the shared CMU
file). A camera is placed at azimuth ``phi`` and horizontal distance ``d`` from a target point
(the subject's pelvis), at height ``h`` above the floor, and looks at the target; its optical axis
is then tilted down by an extra ``elevation`` angle (positive = further down) and rolled about
the optical axis. Intrinsics: ``fx`` in ``focal_range``, ``fy = fx * aspect``, principal point at
the image centre plus an offset. The point looked at is the target plus a random horizontal
offset (``look_at_offset_range``).

Default ranges follow the Human3.6M rig (VideoPose3D's published cameras): camera centres 4.1 to
5.5 m horizontally from the capture-volume centre at 1.46 to 1.63 m height, focal lengths 1144 to
1150 px, principal points within 15 px of the centre of 1000 x 1000 (1002) images, no roll.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import numpy as np
from numpy.typing import ArrayLike

from jpose import camera as jcam

__all__ = [
    "VirtualCameraConfig",
    "sample_cameras",
    "look_at_rotation",
    "pinhole_cameras",
    "project_world",
]


@dataclasses.dataclass(frozen=True)
class VirtualCameraConfig:
    """Ranges of the virtual camera sampler (uniform in each range).

    Attributes:
      distance_range: horizontal camera-target distance, metres.
      height_range: camera centre height above the floor (z = 0), metres.
      azimuth_range: camera azimuth around the target (about the world z axis), radians.
      elevation_range: extra downward tilt of the optical axis relative to looking at the
        target, radians (positive looks further down).
      roll_range: rotation about the optical axis, radians.
      focal_range: ``fx`` in pixels.
      aspect_range: ``fy / fx``.
      center_offset_range: principal-point offset from the image centre, pixels (each axis).
      image_size: (width, height) pixels.
      look_at_offset_range: horizontal offset (x and y, metres) of the point looked at from the
        target, so the subject is not always at the image centre (subjects move around in the
        Human3.6M capture volume).
    """

    distance_range: tuple[float, float] = (4.0, 6.0)
    height_range: tuple[float, float] = (1.4, 1.8)
    azimuth_range: tuple[float, float] = (0.0, 2.0 * math.pi)
    elevation_range: tuple[float, float] = (-0.05, 0.05)
    roll_range: tuple[float, float] = (0.0, 0.0)
    focal_range: tuple[float, float] = (1140.0, 1150.0)
    aspect_range: tuple[float, float] = (0.998, 1.0)
    center_offset_range: tuple[float, float] = (-15.0, 15.0)
    image_size: tuple[int, int] = (1000, 1000)
    look_at_offset_range: tuple[float, float] = (-0.5, 0.5)


def look_at_rotation(
    centre: np.ndarray, target: np.ndarray, *, elevation: np.ndarray = 0.0, roll=0.0
) -> np.ndarray:
    """World->camera rotations ``[..., 3, 3]`` of cameras at ``centre`` looking at ``target``.

    OpenCV camera axes: z = viewing direction, x = right (horizontal), y = down; world z is up.

    Args:
      centre: ``[..., 3]`` camera centres, metres.
      target: ``[..., 3]`` points looked at.
      elevation: ``[...]`` extra downward tilt, radians.
      roll: ``[...]`` rotation about the viewing direction, radians.

    Returns:
      ``[..., 3, 3]`` float64 rotations whose rows are the camera axes in world coordinates.
    """
    d = np.asarray(target, np.float64) - np.asarray(centre, np.float64)
    yaw = np.arctan2(d[..., 1], d[..., 0])
    pitch = np.arctan2(d[..., 2], np.hypot(d[..., 0], d[..., 1])) - np.asarray(elevation)
    fwd = np.stack(
        [np.cos(pitch) * np.cos(yaw), np.cos(pitch) * np.sin(yaw), np.sin(pitch)], axis=-1
    )
    right = np.stack([np.sin(yaw), -np.cos(yaw), np.zeros_like(yaw)], axis=-1)  # fwd x up
    down = np.cross(fwd, right)
    roll = np.asarray(roll, np.float64)[..., None]
    x = np.cos(roll) * right + np.sin(roll) * down
    y = -np.sin(roll) * right + np.cos(roll) * down
    return np.stack([x, y, fwd], axis=-2)


def sample_cameras(
    rng: np.random.Generator,
    targets: np.ndarray,
    *,
    config: VirtualCameraConfig | None = None,
) -> jcam.Camera:
    """Sample one camera per target point.

    Args:
      rng: numpy generator (host-side sampling; seed it for reproducibility).
      targets: ``[N, 3]`` world points (metres, z up) the cameras look at (pelvis positions).
      config: sampling ranges (default :class:`VirtualCameraConfig`).

    Returns:
      :class:`jpose.camera.Camera` with batch shape ``(N,)``, no distortion.
    """
    config = VirtualCameraConfig() if config is None else config
    targets = np.asarray(targets, np.float64).reshape(-1, 3)
    n = len(targets)

    def u(rng_range):
        lo, hi = rng_range
        return rng.uniform(lo, hi, size=n)

    dist, height, az = u(config.distance_range), u(config.height_range), u(config.azimuth_range)
    elev, roll = u(config.elevation_range), u(config.roll_range)
    fx, aspect = u(config.focal_range), u(config.aspect_range)
    off = rng.uniform(*config.center_offset_range, size=(n, 2))
    centre = np.stack(
        [targets[:, 0] + dist * np.cos(az), targets[:, 1] + dist * np.sin(az), height], axis=-1
    )
    look_at = targets + np.concatenate(
        [rng.uniform(*config.look_at_offset_range, size=(n, 2)), np.zeros((n, 1))], -1
    )
    rot = look_at_rotation(centre, look_at, elevation=elev, roll=roll)
    trans = -np.einsum("nij,nj->ni", rot, centre)
    size = np.broadcast_to(np.asarray(config.image_size, np.float32), (n, 2))
    return pinhole_cameras(rot, trans, np.stack([fx, fx * aspect], -1), size / 2.0 + off, size)


def pinhole_cameras(
    rotation: ArrayLike,
    translation: ArrayLike,
    focal: ArrayLike,
    center: ArrayLike,
    image_size: ArrayLike,
) -> jcam.Camera:
    """Undistorted cameras of batch ``(N,)`` with float32 numpy leaves (no jax dispatch on the
    host): ``rotation [N, 3, 3]`` world -> camera, ``translation [N, 3]`` metres, ``focal`` /
    ``center [N, 2]`` pixels, ``image_size`` (width, height) broadcast to ``[N, 2]``."""
    n, f32 = len(rotation), np.float32
    return jcam.Camera(
        rotation=np.array(rotation, f32),
        translation=np.array(translation, f32),
        focal=np.array(focal, f32),
        center=np.array(center, f32),
        radial=np.zeros((n, 3), f32),
        tangential=np.zeros((n, 2), f32),
        image_size=np.broadcast_to(np.asarray(image_size, f32), (n, 2)).copy(),
    )


@functools.partial(jax.jit, static_argnames=("distortion",))
def _world_to_pixels(points_world, camera, *, distortion):
    p = jcam.world_to_camera(points_world, camera)
    return p, jcam.project(p, camera, distortion=distortion)


def project_world(
    points_world: np.ndarray,
    camera: jcam.Camera,
    *,
    distortion: str = "none",
    chunk: int = 8192,
) -> tuple[np.ndarray, np.ndarray]:
    """Camera-frame 3D and pixels of world points, one camera per example.

    Runs :func:`jpose.camera.world_to_camera` and :func:`jpose.camera.project` jitted on
    fixed-size chunks (padded), so any number of examples compiles once per joint count.

    Args:
      points_world: ``[N, J, 3]`` metres.
      camera: :class:`jpose.camera.Camera` with batch shape ``(N,)`` (numpy or jax leaves).
      distortion: ``"none"``, ``"opencv"`` or ``"h36m"`` (see :func:`jpose.camera.project`).
      chunk: examples per jitted call.

    Returns:
      ``(points_cam [N, J, 3] metres, uv [N, J, 2] pixels)`` as float32 numpy arrays.
    """
    pts = np.asarray(points_world, np.float32)
    n = len(pts)
    leaves, treedef = jax.tree.flatten(camera)
    leaves = [np.asarray(x, np.float32) for x in leaves]
    for leaf in leaves:
        if leaf.shape[:1] != (n,):
            raise ValueError(
                f"project_world: camera fields need leading size {n}, got {leaf.shape}"
            )
    out3 = np.empty(pts.shape, np.float32)
    out2 = np.empty(pts.shape[:-1] + (2,), np.float32)
    for lo in range(0, n, chunk):
        hi = min(lo + chunk, n)
        size = min(chunk, max(64, 1 << (hi - lo - 1).bit_length()))  # compile per bucket only
        pad = size - (hi - lo)

        def cut(a, lo=lo, hi=hi, pad=pad):
            a = a[lo:hi]
            return np.concatenate([a, np.repeat(a[-1:], pad, 0)]) if pad else a

        cam = jax.tree.unflatten(treedef, [cut(x) for x in leaves])
        p3, uv = _world_to_pixels(cut(pts), cam, distortion=distortion)
        out3[lo:hi] = np.asarray(p3)[: hi - lo]
        out2[lo:hi] = np.asarray(uv)[: hi - lo]
    return out3, out2
