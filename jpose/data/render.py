"""A small numpy renderer of people: 3D poses through a perspective camera into RGB images.

The image experiments (``experiments/zhou_image.py``, ``experiments/wsp_image.py``) run on these
images where no real ones (:mod:`jpose.data.images`) are given. Every rendered image comes with the
fields of the real datasets: 2D joints, per-joint visibility, 3D joints (camera and world frame),
the camera, person boxes and, for images with several people, the per-person depth order.

Conventions:

* Poses: Human3.6M-17 joints (:data:`jpose.skeleton.H36M17`), metres. Input poses are in a body
  frame with **z up** (the synthetic generator's body frame, or CMU world frames); the renderer
  moves each pose so that its pelvis is above the placement point and its lowest joint is
  ``foot_clearance`` above the floor ``z = 0``, then turns it by a random heading about z.
* Cameras: :class:`jpose.camera.Camera` (world -> camera, OpenCV axes: x right, y down,
  z forward), no distortion, square images of ``S x S`` pixels.
* Pixels: pixel ``(h, w)`` has its centre at ``(u, v) = (w, h)`` (as
  :func:`jpose.losses.render_gaussian_heatmaps`), so a joint at ``(u, v)`` lies in pixel
  ``(round(v), round(u))``.
* Images: ``uint8 [N, S, S, 3]`` RGB.

Model (vectorised over images, capsules and pixels; no Python loop per pixel or per person):

* **Bodies** are 15 capsules per person (pelvis, two trunk segments, shoulder girdle, neck, head,
  upper / lower arms and legs) with radii in metres scaled by the person's height. Each part has
  its own colour: a fixed part palette (left limbs warm, right limbs cool, so left and right can
  be told apart) mixed with per-person clothing and skin colours.
* **Rasterisation**: a capsule's axis is projected to the image; for every pixel the closest
  point on the projected axis (parameter ``t``) gives the 2D distance ``d`` and the projected
  radius ``r(t) = f R / z(t)``; the pixel is covered when ``d < r(t)``. Its depth is
  ``z(t) - R sqrt(1 - (d / r)^2)`` (the cylinder's front surface), the **z-buffer** keeps the
  nearest capsule per pixel, so people occlude each other by depth order.
* **Shading**: Lambertian with ambient term; the surface normal of the cross-section is
  ``(s e_perp, -sqrt(1 - s^2))`` with ``s = d / r`` and ``e_perp`` the image direction away from
  the axis. Light direction, ambient and diffuse intensities are random per image.
* **Backgrounds**: a wall (vertical colour gradient + low-frequency noise) and a floor (the
  pixels whose viewing ray hits ``z = 0``) with a perspective checkerboard, random colours per
  image (``style="wild"``), or a plain grey studio (``style="studio"``: a lab setting like
  Human3.6M). Gaussian pixel noise on top.
* **Visibility**: a joint is visible when it projects inside the image and the nearest surface at
  its pixel is not another person's (occlusion by other people; self-occlusion is not marked,
  as in the COCO / MPII annotations, which label joints hidden by the person's own body).

Framing (``RenderConfig.framing``):

* ``"crop"``: one person centred, the box of its projected joints (plus a margin) scaled so its
  longer side is ``crop_fill * S`` -- the convention of Human3.6M / MPII crops (a square crop
  around the person resized to 256 x 256, heatmaps at 64 x 64).
* ``"scene"``: ``people`` persons standing on the floor at different depths and image positions,
  seen by a camera at a random height pitched down by a random angle (multi-person images for
  WSP's relative-depth pre-training).

Speed (64 x 64 images, chunks of images, numpy on one core): 1000 single-person crops in
3-15 s, 1000 scenes with 2-3 people in 4-30 s (the lower figures on an idle core, the higher on
the shared 2-core development machine under load).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from jpose import skeleton
from jpose.camera import Camera
from jpose.data.virtual_cameras import look_at_rotation, pinhole_cameras

__all__ = [
    "RenderConfig",
    "RenderedImages",
    "CAPSULES",
    "PART_NAMES",
    "PART_PALETTE",
    "body_capsules",
    "rasterize_capsules",
    "draw_background",
    "place_on_floor",
    "render_images",
    "render_people",
]

_J = skeleton.H36M17.index

PART_NAMES = (
    "head", "neck", "torso", "pelvis",
    "l_upper_arm", "l_forearm", "r_upper_arm", "r_forearm",
    "l_thigh", "l_shank", "r_thigh", "r_shank",
)  # fmt: skip
"""Body parts; each has its own colour."""

# (joint a, joint b, radius in metres for a 1.7 m person, part, fraction of the a->b segment)
CAPSULES: tuple[tuple[str, str, float, str, float], ...] = (
    ("LHip", "RHip", 0.085, "pelvis", 1.0),
    ("Hip", "Spine", 0.105, "torso", 1.0),
    ("Spine", "Thorax", 0.115, "torso", 1.0),
    ("LShoulder", "RShoulder", 0.06, "torso", 1.0),
    ("Thorax", "Neck/Nose", 0.045, "neck", 1.0),
    ("Neck/Nose", "Head", 0.08, "head", 1.0),
    ("LShoulder", "LElbow", 0.045, "l_upper_arm", 1.0),
    ("LElbow", "LWrist", 0.037, "l_forearm", 1.0),
    ("RShoulder", "RElbow", 0.045, "r_upper_arm", 1.0),
    ("RElbow", "RWrist", 0.037, "r_forearm", 1.0),
    ("LHip", "LKnee", 0.07, "l_thigh", 1.0),
    ("LKnee", "LFoot", 0.05, "l_shank", 1.0),
    ("RHip", "RKnee", 0.07, "r_thigh", 1.0),
    ("RKnee", "RFoot", 0.05, "r_shank", 1.0),
)
"""Capsules of one body (H36M-17 joint names, radius for a 1.7 m person, part, fraction of the
a -> b segment covered). Every joint lies on a capsule axis, so with ``min_radius_px`` >= 0.71 the
pixel containing a projected joint is always drawn (the head capsule runs to the head top)."""

#: RGB in [0, 1] per part: left limbs warm (red / orange), right limbs cool (blue / teal).
PART_PALETTE = np.array(
    [
        [0.85, 0.70, 0.55],  # head
        [0.80, 0.62, 0.50],  # neck
        [0.35, 0.60, 0.35],  # torso
        [0.30, 0.30, 0.45],  # pelvis
        [0.90, 0.25, 0.20],  # l_upper_arm
        [0.95, 0.60, 0.15],  # l_forearm
        [0.20, 0.35, 0.90],  # r_upper_arm
        [0.15, 0.75, 0.80],  # r_forearm
        [0.75, 0.15, 0.45],  # l_thigh
        [0.95, 0.85, 0.20],  # l_shank
        [0.30, 0.20, 0.75],  # r_thigh
        [0.25, 0.85, 0.45],  # r_shank
    ],
    np.float32,
)

_CAPS = list(CAPSULES)
_CAP_A = np.array([_J(c[0]) for c in _CAPS])
_CAP_B = np.array([_J(c[1]) for c in _CAPS])
_CAP_R = np.array([c[2] for c in _CAPS], np.float32)
_CAP_PART = np.array([PART_NAMES.index(c[3]) for c in _CAPS])
_CAP_FRAC = np.array([c[4] for c in _CAPS], np.float32)
NUM_CAPSULES = len(_CAPS)
_SKIN_PARTS = np.array([PART_NAMES.index(p) for p in ("head", "neck")])
_TROUSER_PARTS = np.array(
    [PART_NAMES.index(p) for p in ("pelvis", "l_thigh", "l_shank", "r_thigh", "r_shank")]
)


@dataclasses.dataclass(frozen=True)
class RenderConfig:
    """Options of :func:`render_images` (ranges are sampled uniformly per image / person).

    Attributes:
      image_size: S, square image side in pixels (64-128 here; 256 for real crops).
      framing: ``"crop"`` (one centred person) or ``"scene"`` (several people on a floor).
      people: ``(min, max)`` persons per image (``"scene"``; ``"crop"`` always draws one).
      crop_fill: longer side of the person box as a fraction of S (``"crop"``).
      crop_fill_jitter: +- relative jitter of ``crop_fill``.
      crop_shift: +- shift of the box centre, fraction of S (``"crop"``).
      distance_range: camera-person distance (``"crop"``) or person depth along the viewing
        direction (``"scene"``), metres.
      camera_height_range: camera height above the floor, metres.
      pitch_range_deg: downward pitch of the camera (``"scene"``), degrees.
      focal_range: focal length as a multiple of S (``"scene"``; ``"crop"`` derives it).
      min_separation: minimum horizontal distance between two people, metres (``"scene"``).
      lateral_fill: people stand within this fraction of the horizontal field of view.
      style: ``"wild"`` (random backgrounds, lighting, clothing) or ``"studio"`` (grey room,
        fixed lighting; a lab setting).
      noise_std: std of the Gaussian pixel noise (intensities in [0, 1]).
      foot_clearance: height of the lowest joint above the floor, metres.
      box_margin: person boxes extend the joints' box by this many metres (projected).
      chunk_pixels: images x capsules x pixels per vectorised chunk (memory / speed trade-off).
    """

    image_size: int = 64
    framing: str = "crop"
    people: tuple[int, int] = (1, 1)
    crop_fill: float = 0.8
    crop_fill_jitter: float = 0.08
    crop_shift: float = 0.04
    distance_range: tuple[float, float] = (3.5, 6.0)
    camera_height_range: tuple[float, float] = (0.9, 2.0)
    pitch_range_deg: tuple[float, float] = (5.0, 18.0)
    focal_range: tuple[float, float] = (1.1, 1.5)
    min_separation: float = 0.7
    lateral_fill: float = 0.8
    style: str = "wild"
    noise_std: float = 0.02
    foot_clearance: float = 0.07
    box_margin: float = 0.12
    chunk_pixels: int = 6_000_000


@dataclasses.dataclass(frozen=True)
class RenderedImages:
    """Rendered images and their labels (``N`` images, up to ``K`` people each, ``J = 17``).

    Attributes:
      image: ``uint8 [N, S, S, 3]`` RGB.
      keypoints_2d: ``float32 [N, K, J, 2]`` projected joints ``(u, v)``, pixels.
      visibility: ``bool [N, K, J]`` inside the image and not hidden by another person.
      pose3d_cam: ``float32 [N, K, J, 3]`` camera frame, metres.
      pose3d_world: ``float32 [N, K, J, 3]`` world frame (z up, floor z = 0), metres.
      camera: :class:`jpose.camera.Camera` with batch shape ``(N,)`` (numpy leaves).
      person_valid: ``bool [N, K]`` which of the K slots hold a person.
      depth_order: ``int32 [N, K]`` rank of each person by pelvis depth (0 = nearest; -1 for
        empty slots).
      boxes: ``float32 [N, K, 4]`` person boxes ``(u0, v0, u1, v1)`` pixels, clipped to the image.
      segmentation: ``int8 [N, S, S]`` index of the person drawn at each pixel (-1: background).
      pose_index: ``int32 [N, K]`` index of each person's pose in the input pool (-1: empty).
    """

    image: np.ndarray
    keypoints_2d: np.ndarray
    visibility: np.ndarray
    pose3d_cam: np.ndarray
    pose3d_world: np.ndarray
    camera: Camera
    person_valid: np.ndarray
    depth_order: np.ndarray
    boxes: np.ndarray
    segmentation: np.ndarray
    pose_index: np.ndarray

    def __len__(self) -> int:
        return int(self.image.shape[0])

    def take(self, index: np.ndarray) -> RenderedImages:
        """A subset of images (numpy fancy index on the first axis)."""
        fields = {
            f.name: getattr(self, f.name)[index]
            for f in dataclasses.fields(self)
            if f.name != "camera"
        }
        cam = Camera(**{f.name: getattr(self.camera, f.name)[index]
                        for f in dataclasses.fields(Camera)})  # fmt: skip
        return RenderedImages(camera=cam, **fields)


# ------------------------------------------------------------------------------------------------
# Geometry of the bodies
# ------------------------------------------------------------------------------------------------


def body_capsules(pose: np.ndarray, *, height: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    """Capsules of H36M-17 bodies.

    Args:
      pose: ``[..., 17, 3]`` joints, metres (any frame).
      height: ``[...]`` body heights in metres for the radii (default: the leg, trunk, neck
        and head bone lengths / 0.96, Winter's proportions; independent of the posture).

    Returns:
      ``(start [..., C, 3], end [..., C, 3], radius [..., C] metres, part [C] int)`` with
      ``C = NUM_CAPSULES``.
    """
    pose = np.asarray(pose, np.float32)
    if pose.shape[-2:] != (17, 3):
        raise ValueError(f"pose must be [..., 17, 3] (H36M-17), got {pose.shape}")
    if height is None:  # leg + trunk + neck + head chain = 0.96 H in Winter's proportions
        chain = [("RHip", "RKnee"), ("RKnee", "RFoot"), ("Hip", "Spine"), ("Spine", "Thorax"),
                 ("Thorax", "Neck/Nose"), ("Neck/Nose", "Head")]  # fmt: skip
        height = sum(np.linalg.norm(pose[..., _J(a), :] - pose[..., _J(b), :], axis=-1)
                     for a, b in chain) / 0.96  # fmt: skip
    a = pose[..., _CAP_A, :]
    b = pose[..., _CAP_B, :]
    b = a + (b - a) * _CAP_FRAC[:, None]
    radius = _CAP_R * (np.asarray(height, np.float32)[..., None] / 1.7)
    return a, b, radius, _CAP_PART


def _pixel_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    v, u = np.meshgrid(np.arange(size, dtype=np.float32), np.arange(size, dtype=np.float32),
                       indexing="ij")  # fmt: skip
    return u, v


def rasterize_capsules(
    start: np.ndarray,
    end: np.ndarray,
    radius: np.ndarray,
    albedo: np.ndarray,
    owner: np.ndarray,
    *,
    focal: np.ndarray,
    center: np.ndarray,
    size: int,
    background: np.ndarray,
    light_dir: np.ndarray,
    ambient: np.ndarray,
    diffuse: np.ndarray,
    chunk_pixels: int = 6_000_000,
    min_radius_px: float = 0.75,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Z-buffered, shaded rasterisation of capsules (see the module docstring for the model).

    Args:
      start: ``[N, C, 3]`` capsule axis start points, camera frame, metres (z > 0).
      end: ``[N, C, 3]`` axis end points.
      radius: ``[N, C]`` radii, metres (0 disables a capsule).
      albedo: ``[N, C, 3]`` RGB in [0, 1].
      owner: ``[N, C]`` int person index of each capsule.
      focal: ``[N, 2]`` pixels.
      center: ``[N, 2]`` principal points, pixels.
      size: S, image side in pixels.
      background: ``[N, S, S, 3]`` float in [0, 1].
      light_dir: ``[N, 3]`` unit vectors from the surface towards the light (camera frame).
      ambient: ``[N]`` ambient intensity.
      diffuse: ``[N]`` diffuse intensity.
      chunk_pixels: images x capsules x pixels processed at once.
      min_radius_px: smallest projected radius (pixels; > 0.71 guarantees that the pixel
        containing any point of the axis is covered).

    Returns:
      ``(image [N, S, S, 3] float32, depth [N, S, S] metres (inf: background),
      owner_map [N, S, S] int (-1: background))``.
    """
    start = np.asarray(start, np.float32)
    n, c = start.shape[:2]
    if start.shape != (n, c, 3) or np.shape(end) != (n, c, 3) or np.shape(radius) != (n, c):
        raise ValueError(
            f"expected start/end [N, C, 3] and radius [N, C], got {start.shape}, "
            f"{np.shape(end)}, {np.shape(radius)}"
        )
    if np.shape(background) != (n, size, size, 3):
        raise ValueError(f"background must be [N, S, S, 3] = {(n, size, size, 3)}")
    u, v = _pixel_grid(size)
    image = np.empty((n, size, size, 3), np.float32)
    depth = np.empty((n, size, size), np.float32)
    owner_map = np.empty((n, size, size), np.int32)
    step = max(1, int(chunk_pixels // max(1, c * size * size)))
    for lo in range(0, n, step):
        sl = slice(lo, min(n, lo + step))
        a, b = start[sl], np.asarray(end, np.float32)[sl]
        rad = np.asarray(radius, np.float32)[sl]
        f, cc = np.asarray(focal, np.float32)[sl], np.asarray(center, np.float32)[sl]
        za, zb = np.maximum(a[..., 2], 1e-3), np.maximum(b[..., 2], 1e-3)  # [B, C]
        pa = f[:, None] * a[..., :2] / za[..., None] + cc[:, None]  # [B, C, 2]
        pb = f[:, None] * b[..., :2] / zb[..., None] + cc[:, None]
        fm = f.mean(-1)[:, None]
        # projected radii [B, C], at least min_radius_px so that thin far limbs still cover
        # the pixels their axis passes through (every joint's rounded pixel is drawn)
        ra = np.maximum(fm * rad / za, min_radius_px)
        rb = np.maximum(fm * rad / zb, min_radius_px)
        ab = pb - pa
        len2 = np.sum(ab * ab, -1) + 1e-9
        ex = lambda x: x[..., None, None]  # noqa: E731 - [B, C] -> [B, C, 1, 1]
        du = u - ex(pa[..., 0])  # [B, C, S, S]
        dv = v - ex(pa[..., 1])
        t = np.clip((du * ex(ab[..., 0]) + dv * ex(ab[..., 1])) / ex(len2), 0.0, 1.0)
        px = du - t * ex(ab[..., 0])  # pixel - closest point on the axis
        py = dv - t * ex(ab[..., 1])
        d = np.sqrt(px * px + py * py)
        r = ex(ra) + t * ex(rb - ra)
        s = d / np.maximum(r, 1e-6)
        inside = (s < 1.0) & ex(rad > 0)
        bulge = np.sqrt(np.clip(1.0 - s * s, 0.0, 1.0))
        z = ex(za) + t * ex(zb - za) - ex(rad) * bulge
        z = np.where(inside, z, np.inf)
        idx = np.argmin(z, axis=1)  # [B, S, S]
        take = lambda x, idx=idx: np.take_along_axis(x, idx[:, None], axis=1)[:, 0]  # noqa: E731
        zmin = take(z)
        hit = np.isfinite(zmin)
        s_w, d_w = take(s), np.maximum(take(d), 1e-6)
        ex_w, ey_w = take(px) / d_w, take(py) / d_w
        nz = -np.sqrt(np.clip(1.0 - s_w * s_w, 0.0, 1.0))
        ld = np.asarray(light_dir, np.float32)[sl][:, None, None, :]
        lam = np.clip(s_w * ex_w * ld[..., 0] + s_w * ey_w * ld[..., 1] + nz * ld[..., 2], 0, 1)
        shade = (
            np.asarray(ambient, np.float32)[sl][:, None, None]
            + np.asarray(diffuse, np.float32)[sl][:, None, None] * lam
        )
        alb = np.take_along_axis(np.asarray(albedo, np.float32)[sl], idx.reshape(len(idx), -1, 1),
                                 axis=1).reshape(*idx.shape, 3)  # fmt: skip
        own = np.take_along_axis(np.asarray(owner)[sl], idx.reshape(len(idx), -1), axis=1)
        own = own.reshape(idx.shape)
        image[sl] = np.where(hit[..., None], alb * shade[..., None], background[sl])
        depth[sl] = zmin
        owner_map[sl] = np.where(hit, own, -1)
    return image, depth, owner_map


# ------------------------------------------------------------------------------------------------
# Backgrounds, placement, cameras
# ------------------------------------------------------------------------------------------------


def _upsample_noise(rng: np.random.Generator, n: int, size: int, cells: int) -> np.ndarray:
    grid = rng.normal(size=(n, cells + 1, cells + 1)).astype(np.float32)
    x = np.linspace(0, cells, size, dtype=np.float32)
    i0 = np.minimum(x.astype(int), cells - 1)
    w = x - i0
    rows = grid[:, i0] * (1 - w)[None, :, None] + grid[:, i0 + 1] * w[None, :, None]
    return rows[:, :, i0] * (1 - w) + rows[:, :, i0 + 1] * w


def draw_background(
    rng: np.random.Generator, camera: Camera, *, size: int, style: str = "wild"
) -> np.ndarray:
    """Wall + floor backgrounds seen by ``camera`` (floor = where a pixel's ray hits ``z = 0``).

    Args:
      rng: numpy generator.
      camera: batch ``(N,)`` cameras (world z up).
      size: S.
      style: ``"wild"`` (random colours, gradient, noise, checkerboard floor) or ``"studio"``.

    Returns:
      ``[N, S, S, 3]`` float32 in [0, 1].
    """
    if style not in ("wild", "studio"):
        raise ValueError(f"style must be 'wild' or 'studio', got {style!r}")
    rot = np.asarray(camera.rotation, np.float32)
    n = rot.shape[0]
    f, c = np.asarray(camera.focal, np.float32), np.asarray(camera.center, np.float32)
    centre = -np.einsum("nji,nj->ni", rot, np.asarray(camera.translation, np.float32))
    u, v = _pixel_grid(size)
    ray_cam = np.stack(
        [(u - c[:, 0, None, None]) / f[:, 0, None, None],
         (v - c[:, 1, None, None]) / f[:, 1, None, None],
         np.ones((n, size, size), np.float32)], -1,
    )  # fmt: skip
    ray = np.einsum("nji,nhwj->nhwi", rot, ray_cam)  # R^T d
    down = ray[..., 2] < -1e-6
    s = np.where(down, -centre[:, 2, None, None] / np.where(down, ray[..., 2], -1.0), 0.0)
    fx = centre[:, 0, None, None] + s * ray[..., 0]
    fy = centre[:, 1, None, None] + s * ray[..., 1]
    yy = (v / max(size - 1, 1))[None, ..., None]
    if style == "studio":
        wall = np.full((n, size, size, 3), 0.58, np.float32) - 0.08 * yy
        floor = np.full((n, size, size, 3), 0.42, np.float32)
        return np.where(down[..., None], floor, wall).astype(np.float32)
    top, bottom = rng.uniform(0.1, 0.9, (2, n, 1, 1, 3)).astype(np.float32)
    wall = top * (1 - yy) + bottom * yy
    wall = wall + 0.12 * _upsample_noise(rng, n, size, 4)[..., None] * rng.uniform(
        0.5, 1.5, (n, 1, 1, 3)
    )
    wall = wall + 0.05 * _upsample_noise(rng, n, size, 12)[..., None]
    tile = rng.uniform(0.4, 1.5, (n, 1, 1)).astype(np.float32)
    checker = (np.floor(fx / tile) + np.floor(fy / tile)) % 2
    c1, c2 = rng.uniform(0.1, 0.9, (2, n, 1, 1, 3)).astype(np.float32)
    contrast = rng.uniform(0.0, 1.0, (n, 1, 1, 1)).astype(np.float32)
    floor = c1 + contrast * (c2 - c1) * checker[..., None]
    # fade the floor texture with distance (avoids aliasing near the horizon)
    fade = np.exp(-s / 25.0)[..., None]
    floor = floor * fade + c1 * (1 - fade)
    return np.clip(np.where(down[..., None], floor, wall), 0.0, 1.0).astype(np.float32)


def place_on_floor(
    pose: np.ndarray, *, position: np.ndarray, heading: np.ndarray, foot_clearance: float = 0.07
) -> np.ndarray:
    """Stand z-up poses on the floor: pelvis above ``position``, lowest joint at ``foot_clearance``.

    Args:
      pose: ``[..., 17, 3]`` metres, z up (any horizontal origin).
      position: ``[..., 2]`` floor position of the pelvis (x, y), metres.
      heading: ``[...]`` rotation about the vertical axis, radians.
      foot_clearance: metres.

    Returns:
      ``[..., 17, 3]`` world-frame poses.
    """
    pose = np.asarray(pose, np.float32)
    p = pose - pose[..., :1, :] * np.array([1, 1, 0], np.float32)
    p = p - np.array([0, 0, 1], np.float32) * (p[..., 2].min(-1)[..., None, None] - foot_clearance)
    ch, sh = np.cos(heading)[..., None], np.sin(heading)[..., None]
    x = ch * p[..., 0] - sh * p[..., 1]
    y = sh * p[..., 0] + ch * p[..., 1]
    pos = np.asarray(position, np.float32)
    return np.stack([x + pos[..., None, 0], y + pos[..., None, 1], p[..., 2]], -1)


def _camera(rot, centre, focal, center, size) -> Camera:
    return pinhole_cameras(rot, -np.einsum("nij,nj->ni", rot, centre), focal, center, size)


def _to_cam(points: np.ndarray, camera: Camera) -> np.ndarray:
    rot = np.asarray(camera.rotation)
    t = np.asarray(camera.translation)
    extra = points.ndim - 2
    r = rot.reshape(rot.shape[:1] + (1,) * (extra - 1) + (3, 3))
    return np.einsum("...ij,...kj->...ki", r, points) + t.reshape(
        t.shape[:1] + (1,) * (extra - 1) + (1, 3)
    )


def _project(points_cam: np.ndarray, camera: Camera) -> np.ndarray:
    f = np.asarray(camera.focal)
    c = np.asarray(camera.center)
    extra = points_cam.ndim - 2
    shape = f.shape[:1] + (1,) * (extra - 1) + (1, 2)
    z = np.maximum(points_cam[..., 2:], 1e-3)
    return points_cam[..., :2] / z * f.reshape(shape) + c.reshape(shape)


def _crop_scene(rng, poses, idx, cfg: RenderConfig):
    n, size = len(idx), cfg.image_size
    world = place_on_floor(poses[idx], position=np.zeros((n, 2)),
                           heading=rng.uniform(0, 2 * np.pi, n),
                           foot_clearance=cfg.foot_clearance)  # fmt: skip
    dist = rng.uniform(*cfg.distance_range, n)
    az = rng.uniform(0, 2 * np.pi, n)
    height = rng.uniform(*cfg.camera_height_range, n)
    pelvis = world[:, 0]
    centre = np.stack([pelvis[:, 0] + dist * np.cos(az), pelvis[:, 1] + dist * np.sin(az),
                       height], -1)  # fmt: skip
    rot = look_at_rotation(centre, pelvis)
    unit = _camera(rot, centre, np.ones((n, 2)), np.zeros((n, 2)), size)
    cam_pts = _to_cam(world[:, None], unit)[:, 0]
    uv = _project(cam_pts[:, None], unit)[:, 0]
    margin = cfg.box_margin / np.maximum(cam_pts[..., 2], 1e-3)
    lo = (uv - margin[..., None]).min(1)
    hi = (uv + margin[..., None]).max(1)
    fill = cfg.crop_fill * (1 + rng.uniform(-1, 1, n) * cfg.crop_fill_jitter)
    focal = fill * size / np.max(hi - lo, axis=-1)
    shift = rng.uniform(-1, 1, (n, 2)) * cfg.crop_shift * size
    center = size / 2.0 - focal[:, None] * (lo + hi) / 2.0 + shift
    cam = _camera(rot, centre, np.stack([focal, focal], -1), center, size)
    return world[:, None], cam


def _floor_scene(rng, poses, idx, cfg: RenderConfig, k_max: int, counts: np.ndarray):
    n, size = len(idx), cfg.image_size
    fscale = rng.uniform(*cfg.focal_range, n)
    half = cfg.lateral_fill * (size / 2.0) / (fscale * size)  # tan of the usable half-FOV
    depth = np.zeros((n, k_max))
    lateral = np.zeros((n, k_max))
    for i in range(n):  # rejection sampling of non-overlapping floor positions (K <= ~4)
        placed: list[tuple[float, float]] = []
        for _ in range(counts[i]):
            for _try in range(50):
                y = rng.uniform(*cfg.distance_range)
                x = rng.uniform(-1, 1) * half[i] * y
                if all(math.hypot(x - px, y - py) >= cfg.min_separation for px, py in placed):
                    break
            placed.append((x, y))
        for k, (x, y) in enumerate(placed):
            lateral[i, k], depth[i, k] = x, y
    world = place_on_floor(
        poses[idx],
        position=np.stack([lateral, depth], -1),
        heading=rng.uniform(0, 2 * np.pi, (n, k_max)),
        foot_clearance=cfg.foot_clearance,
    )
    height = rng.uniform(*cfg.camera_height_range, n)
    pitch = np.radians(rng.uniform(*cfg.pitch_range_deg, n))
    centre = np.stack([np.zeros(n), np.zeros(n), height], -1)
    target = centre + np.stack([np.zeros(n), np.ones(n), -np.tan(pitch)], -1)
    rot = look_at_rotation(centre, target)
    focal = np.repeat((fscale * size)[:, None], 2, -1)
    cam = _camera(rot, centre, focal, np.full((n, 2), size / 2.0), size)
    return world, cam


# ------------------------------------------------------------------------------------------------
# The renderer
# ------------------------------------------------------------------------------------------------


def render_images(
    poses: np.ndarray,
    *,
    num_images: int,
    config: RenderConfig | None = None,
    seed: int = 0,
    heights: np.ndarray | None = None,
) -> RenderedImages:
    """Render ``num_images`` images of people drawn from a pool of 3D poses.

    Args:
      poses: ``[M, 17, 3]`` pool of H36M-17 poses, metres, z up (synthetic body frame or CMU
        world frame); each person of each image takes a random pose of the pool.
      num_images: N.
      config: :class:`RenderConfig`.
      seed: seed of the numpy generator (everything is deterministic given it).
      heights: optional ``[M]`` body heights (metres) for the capsule radii.

    Returns:
      :class:`RenderedImages` with ``K = config.people[1]`` slots (``1`` for ``"crop"``).
    """
    cfg = RenderConfig() if config is None else config
    poses = np.asarray(poses, np.float32)
    if poses.ndim != 3 or poses.shape[1:] != (17, 3):
        raise ValueError(f"poses must be [M, 17, 3] (H36M-17, z up), got {poses.shape}")
    if cfg.framing not in ("crop", "scene"):
        raise ValueError(f"framing must be 'crop' or 'scene', got {cfg.framing!r}")
    rng = np.random.default_rng(seed)
    n = int(num_images)
    if cfg.framing == "crop":
        k_max = 1
        counts = np.ones(n, int)
    else:
        lo, hi = cfg.people
        if not 1 <= lo <= hi:
            raise ValueError(f"people must be (min, max) with 1 <= min <= max, got {cfg.people}")
        k_max = hi
        counts = rng.integers(lo, hi + 1, n)
    valid = np.arange(k_max)[None] < counts[:, None]
    idx = rng.integers(0, len(poses), (n, k_max))
    if cfg.framing == "crop":
        world, cam = _crop_scene(rng, poses, idx[:, 0], cfg)
    else:
        world, cam = _floor_scene(rng, poses, idx, cfg, k_max, counts)
    h = None if heights is None else np.asarray(heights, np.float32)[idx]
    out = render_people(world, cam, valid, config=cfg, rng=rng, heights=h)
    return dataclasses.replace(out, pose_index=np.where(valid, idx, -1).astype(np.int32))


def render_people(
    pose_world: np.ndarray,
    camera: Camera,
    valid: np.ndarray | None = None,
    *,
    config: RenderConfig | None = None,
    rng: np.random.Generator | None = None,
    heights: np.ndarray | None = None,
) -> RenderedImages:
    """Render given world-frame people through given cameras (the core of :func:`render_images`).

    Args:
      pose_world: ``[N, K, 17, 3]`` world poses (metres, z up, floor z = 0).
      camera: batch ``(N,)`` cameras (numpy leaves), image size ``config.image_size``.
      valid: ``[N, K]`` bool, which slots hold a person (default all).
      config: style, noise, chunking and box margin (:class:`RenderConfig`).
      rng: numpy generator for colours, lighting, background and noise.
      heights: ``[N, K]`` body heights for the capsule radii (default from the poses).

    Returns:
      :class:`RenderedImages` (``pose_index`` = -1).
    """
    cfg = RenderConfig() if config is None else config
    rng = np.random.default_rng(0) if rng is None else rng
    world = np.asarray(pose_world, np.float32)
    if world.ndim != 4 or world.shape[2:] != (17, 3):
        raise ValueError(f"pose_world must be [N, K, 17, 3], got {world.shape}")
    n, k_max = world.shape[:2]
    size = int(cfg.image_size)
    valid = np.ones((n, k_max), bool) if valid is None else np.asarray(valid, bool)
    pose_cam = _to_cam(world, camera).astype(np.float32)  # [N, K, J, 3]
    kp = _project(pose_cam, camera).astype(np.float32)

    # capsules of every person (radii from the body height: z extent of the world pose, z up);
    # empty slots get zero radius
    a, b, rad, part = body_capsules(pose_cam, height=heights)  # [N, K, C, 3], [N, K, C]
    rad = np.where(valid[..., None], rad, 0.0)
    if cfg.style == "studio":
        person_col = np.full((n, k_max, 3, 3), 0.5, np.float32)
        mix = 0.15
    else:
        person_col = rng.uniform(0.05, 0.95, (n, k_max, 3, 3)).astype(np.float32)
        mix = rng.uniform(0.2, 0.45, (n, k_max, 1, 1)).astype(np.float32)
    skin = rng.uniform(0.45, 1.0, (n, k_max, 1, 1)) * np.array([0.95, 0.75, 0.6], np.float32)
    # clothing colour per capsule: 0 skin, 1 shirt, 2 trousers
    group = np.where(np.isin(part, _SKIN_PARTS), 0, np.where(np.isin(part, _TROUSER_PARTS), 2, 1))
    albedo = (1 - mix) * PART_PALETTE[part] + mix * np.take(person_col, group, axis=2)
    albedo = np.where(np.isin(part, _SKIN_PARTS)[:, None], 0.6 * PART_PALETTE[part] + 0.4 * skin,
                      albedo)  # fmt: skip
    albedo = np.clip(albedo * rng.uniform(0.85, 1.1, (n, k_max, 1, 1)), 0, 1)
    owner = np.broadcast_to(np.arange(k_max)[None, :, None], rad.shape)
    flat = lambda x: x.reshape(n, k_max * NUM_CAPSULES, *x.shape[3:])  # noqa: E731

    background = draw_background(rng, camera, size=size, style=cfg.style)
    if cfg.style == "studio":
        light = np.tile(np.array([0.3, -0.5, -0.8], np.float32), (n, 1))
        ambient, diffuse = np.full(n, 0.45, np.float32), np.full(n, 0.6, np.float32)
    else:
        light = np.stack([rng.uniform(-0.8, 0.8, n), rng.uniform(-0.9, 0.3, n),
                          -rng.uniform(0.3, 1.0, n)], -1).astype(np.float32)  # fmt: skip
        ambient = rng.uniform(0.25, 0.6, n).astype(np.float32)
        diffuse = rng.uniform(0.4, 0.9, n).astype(np.float32)
    light /= np.linalg.norm(light, axis=-1, keepdims=True)
    image, _, owner_map = rasterize_capsules(
        flat(a), flat(b), flat(rad), flat(albedo), flat(owner),
        focal=np.asarray(camera.focal), center=np.asarray(camera.center), size=size,
        background=background, light_dir=light, ambient=ambient, diffuse=diffuse,
        chunk_pixels=cfg.chunk_pixels,
    )  # fmt: skip
    if cfg.style == "wild":
        gain = rng.uniform(0.75, 1.2, (n, 1, 1, 1)).astype(np.float32)
        image = image * gain
    image = image + rng.normal(0, cfg.noise_std, image.shape).astype(np.float32)
    image_u8 = np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8)

    # visibility: inside the image and the pixel's nearest surface is not another person's
    pix = np.round(kp).astype(np.int64)
    inside = np.all((pix >= 0) & (pix < size), -1)
    pc = np.clip(pix, 0, size - 1)
    nn_idx = np.arange(n)[:, None, None]
    drawn = owner_map[nn_idx, pc[..., 1], pc[..., 0]]  # [N, K, J]
    kk = np.arange(k_max)[None, :, None]
    visibility = inside & ((drawn == kk) | (drawn == -1)) & valid[..., None]

    root_z = np.where(valid, pose_cam[..., 0, 2], np.inf)
    order = np.argsort(np.argsort(root_z, axis=1), axis=1).astype(np.int32)
    order = np.where(valid, order, -1)
    margin = cfg.box_margin * camera.focal[:, None, None, 0] / np.maximum(pose_cam[..., 2], 1e-3)
    boxes = np.concatenate([(kp - margin[..., None]).min(2), (kp + margin[..., None]).max(2)], -1)
    boxes = np.clip(boxes, 0, size - 1).astype(np.float32)
    boxes = np.where(valid[..., None], boxes, 0.0)
    return RenderedImages(
        image=image_u8,
        keypoints_2d=np.where(valid[..., None, None], kp, 0.0).astype(np.float32),
        visibility=visibility,
        pose3d_cam=np.where(valid[..., None, None], pose_cam, 0.0).astype(np.float32),
        pose3d_world=np.where(valid[..., None, None], world, 0.0).astype(np.float32),
        camera=camera,
        person_valid=valid,
        depth_order=order,
        boxes=boxes,
        segmentation=owner_map.astype(np.int8),
        pose_index=np.full((n, k_max), -1, np.int32),
    )
