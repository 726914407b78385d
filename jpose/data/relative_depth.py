"""MCPC-style relative-depth pairs (Qiu et al., WSP, Sec. 3.1-3.2 and 4.2.1) from the 2D keypoint
annotations of photographs with several people.

Host-side numpy (labels through :func:`jpose.losses.wsp_relative_depth_labels`, evaluated once,
vectorised over all pairs). Logging goes to the ``jpose.data`` logger.

Axes and units:

* ``P`` persons (rows of a keypoint file), ``M`` pairs, ``J = 17`` joints (Human3.6M-17, the
  model input layout), ``K`` joints of the source layout (COCO-17, MPII-16 or H36M-17).
* Labels compare ankle heights in the **source coordinates** (pixels, or ``x / width, y /
  height`` for the normalised COCO train file: the order of y within one image is the same).
* Model inputs ``pose2d [P, J, 2]`` are normalised image coordinates in (-1, 1) (``"image"``
  convention of :func:`jpose.data.common.normalize_2d`, CameraPose's, as the ``cmu+coco`` preset),
  ``confidence [P, J]`` in [0, 1] (0 = joint not labelled; its coordinates are 0).

The builder (:func:`build_relative_depth_pairs`):

1. **Selection (the paper's two principles, Sec. 3.2).** A person is *eligible* when its ankles
   are annotated (``ankle_rule="both"``: both ankles labelled, the default, the shared README's
   count; ``"any"``: at least one; ``require_visible=True`` counts only visibility-2 ankles). An
   image is kept when it has at least two eligible persons; other persons of the image are
   ignored (they are never paired).
2. **Pairs.** Every unordered pair of eligible persons of a kept image, stored as (A, B) with A
   the earlier row (:meth:`RelativeDepthPairs.pair_arrays` can randomise the orientation).
3. **Labels** (eqs. 1-4, 7): ``label = 1`` when A's mean ankle image-y is >= B's (A nearer),
   applied to every joint (eq. 4). Ties (equal heights, or ``|y_A - y_B| <= min_ankle_gap`` in
   source units) are removed: eq. 7 gives label 1 to both orientations of a tie.
4. **Scale gap ratio** (eqs. 13-14): ``S = ||P_ht - P_hd||`` with, per source layout,
   MPII ``head_top`` / ``upper_neck`` and H36M-17 ``Head`` / ``Neck/Nose`` (the paper's joints);
   COCO has no head top or neck, so the nearest available segment is used: **nose to the
   midpoint of the shoulders** (H36M-17 ``Neck/Nose`` / ``Thorax`` after
   :func:`jpose.skeleton.coco17_to_h36m17`), a mostly vertical segment of the upper head-neck
   whose length changes little with the person's heading (eye or shoulder distances shrink when
   the person turns). ``ΔS = |S_A - S_B| / max(S_A, S_B)``; where either scale is undefined
   (joints not labelled) ``ΔS = 1`` (the pair then counts only in RD protocol 1's ``<= 1.0`` row,
   which is every pair) and ``scale_defined = False``.

RD protocol 1 = metrics on pairs with ``delta_s <= t`` for ``t`` in :data:`PROTOCOL1_THRESHOLDS`;
RD protocol 2 = the same with the ankles removed from the model input (:func:`remove_ankles`:
Human3.6M-17 ``RFoot`` / ``LFoot`` get confidence 0 and coordinates 0; the keypoint analogue of
the paper's "remove the ankle parts of the image"). Labels and evaluated joints are unchanged.

Train / test: :func:`split_by_image` splits a pair set by image id (disjoint images);
:func:`check_image_disjoint` asserts that two sets share no image (COCO train2017 vs val2017 are
disjoint by construction). :func:`load_pair_splits` gives both sets of one source (synthetic
scenes, or the shared COCO / MPII files) with the keyword options of a WSP ``rd`` config block.

Synthetic scenes (:func:`make_synthetic_scenes`): several people from
:func:`jpose.data.synthetic.generate_poses` on one floor, seen by one camera at standing height
looking roughly horizontally, so lower ankles in the image are nearer (the perspective rule holds
by construction, up to the eq. 4 simplification, which the returned true depths measure).
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from jpose import skeleton
from jpose.data.common import LOGGER, normalize_2d
from jpose.data.wild2d import read_compact_npz

__all__ = [
    "ANKLE_RULES",
    "PROTOCOL1_THRESHOLDS",
    "SCALE_JOINTS",
    "RelativeDepthPairs",
    "build_relative_depth_pairs",
    "load_relative_depth_pairs",
    "split_by_image",
    "check_image_disjoint",
    "load_pair_splits",
    "remove_ankles",
    "protocol_masks",
    "make_synthetic_scenes",
]

ANKLE_RULES = ("both", "any")
"""Eligibility rules: both ankles annotated, or at least one."""

PROTOCOL1_THRESHOLDS = (1.0, 0.5, 0.3, 0.1)
"""RD protocol 1 scale-gap thresholds (WSP Table 2): pairs with ``ΔS <= t``."""

_LAYOUTS = {"coco17": skeleton.COCO17, "mpii16": skeleton.MPII16, "h36m17": skeleton.H36M17}
_ANKLES = {
    "coco17": ("left_ankle", "right_ankle"),
    "mpii16": ("left_ankle", "right_ankle"),
    "h36m17": ("LFoot", "RFoot"),
}

SCALE_JOINTS: dict[str, tuple[str, str]] = {
    "coco17": ("Neck/Nose", "Thorax"),  # nose, mid-shoulders (no head top / neck in COCO)
    "mpii16": ("Head", "Neck/Nose"),  # head_top, upper_neck (the paper's eq. 13 joints)
    "h36m17": ("Head", "Neck/Nose"),  # head top, neck
}
"""Eq. 13 joints (head-top, head-down) as Human3.6M-17 names after conversion, per source layout."""

_H36M_ANKLES = skeleton.H36M17.indices(["RFoot", "LFoot"])


@dataclasses.dataclass(frozen=True, eq=False)
class RelativeDepthPairs:
    """Persons of the selected images and their labelled pairs.

    Attributes:
      name: source name (e.g. ``"coco/val2017"``).
      pose2d: ``[P, J, 2]`` H36M-17 model inputs, normalised image coordinates (-1, 1).
      confidence: ``[P, J]`` in [0, 1]; 0 = not labelled.
      image_id: ``[P]`` int64 image of each person.
      ankle_height: ``[P]`` mean image y of the eligible ankles (source units).
      person_scale: ``[P]`` eq. 13 scale (source units), NaN where undefined.
      pair_a, pair_b: ``[M]`` int32 row indices into the persons (A, B).
      label: ``[M]`` float32 eq. 7 label of every joint: 1 = A nearer than B.
      delta_s: ``[M]`` float32 eq. 14 scale gap ratio (1 where undefined).
      scale_defined: ``[M]`` bool, both scales defined.
      counts: ``{"images", "persons", "pairs", ...}`` of the builder (see
        :func:`build_relative_depth_pairs`).
      depth: optional ``[P, J]`` true camera depths (metres; synthetic scenes only).
    """

    name: str
    pose2d: np.ndarray
    confidence: np.ndarray
    image_id: np.ndarray
    ankle_height: np.ndarray
    person_scale: np.ndarray
    pair_a: np.ndarray
    pair_b: np.ndarray
    label: np.ndarray
    delta_s: np.ndarray
    scale_defined: np.ndarray
    counts: Mapping[str, int]
    depth: np.ndarray | None = None

    @property
    def num_pairs(self) -> int:
        """M."""
        return int(len(self.pair_a))

    @property
    def pair_image_id(self) -> np.ndarray:
        """``[M]`` image of each pair."""
        return self.image_id[self.pair_a]

    def select_pairs(self, mask: np.ndarray, *, name: str | None = None) -> RelativeDepthPairs:
        """The pairs where ``mask [M]`` is true (persons kept; counts recomputed)."""
        mask = np.asarray(mask, bool)
        a, b = self.pair_a[mask], self.pair_b[mask]
        imgs = np.unique(self.image_id[a])
        counts = {k: v for k, v in self.counts.items() if not k.endswith("before_ties")}
        counts.update(
            images=int(len(imgs)),
            persons=int(len(np.unique(np.concatenate([a, b])))),
            pairs=int(mask.sum()),
            pairs_scale_defined=int(self.scale_defined[mask].sum()),
            label_ones=int((self.label[mask] > 0.5).sum()),
        )
        return dataclasses.replace(
            self,
            name=name or self.name,
            pair_a=a,
            pair_b=b,
            counts=counts,
            **{f: getattr(self, f)[mask] for f in ("label", "delta_s", "scale_defined")},
        )

    def pair_arrays(
        self, *, protocol: int = 1, orientation_seed: int | None = None
    ) -> dict[str, np.ndarray]:
        """Flat per-pair arrays for a model or an evaluation.

        Args:
          protocol: 1 = full input; 2 = ankles removed from both inputs (:func:`remove_ankles`).
          orientation_seed: if given, swap A and B of a seeded random half of the pairs (label
            becomes ``1 - label``), so both classes are balanced; None keeps (A, B).

        Returns:
          ``{"pose_a", "pose_b" [M, J, 2], "conf_a", "conf_b" [M, J], "label" [M] float32,
          "joint_mask" [M, J] bool (joint labelled in both annotations, before protocol 2),
          "delta_s" [M], "image_id" [M]}``.
        """
        if protocol not in (1, 2):
            raise ValueError(f"protocol must be 1 or 2, got {protocol}")
        a, b, label = self.pair_a, self.pair_b, self.label.astype(np.float32)
        if orientation_seed is not None:
            swap = np.random.default_rng(orientation_seed).random(len(a)) < 0.5
            a, b = np.where(swap, b, a), np.where(swap, a, b)
            label = np.where(swap, 1.0 - label, label).astype(np.float32)
        pa, ca = self.pose2d[a], self.confidence[a]
        pb, cb = self.pose2d[b], self.confidence[b]
        mask = (ca > 0) & (cb > 0)
        if protocol == 2:
            pa, ca = remove_ankles(pa, ca)
            pb, cb = remove_ankles(pb, cb)
        return {
            "pose_a": pa.astype(np.float32),
            "conf_a": ca.astype(np.float32),
            "pose_b": pb.astype(np.float32),
            "conf_b": cb.astype(np.float32),
            "label": label,
            "joint_mask": mask,
            "delta_s": self.delta_s.astype(np.float32),
            "image_id": self.image_id[a],
        }


def remove_ankles(pose2d: np.ndarray, confidence: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """RD protocol 2 input: Human3.6M-17 ankles (``RFoot``, ``LFoot``) set to confidence 0 and
    coordinates 0.

    Args:
      pose2d: ``[..., 17, 2]`` normalised 2D.
      confidence: ``[..., 17]``.

    Returns:
      ``(pose2d, confidence)`` copies without ankle information.
    """
    pose2d, confidence = np.array(pose2d, copy=True), np.array(confidence, copy=True)
    if pose2d.shape[-2:] != (17, 2) or confidence.shape[-1] != 17:
        raise ValueError(
            f"expected H36M-17 pose [..., 17, 2] and confidence [..., 17], got {pose2d.shape}, "
            f"{confidence.shape}"
        )
    pose2d[..., _H36M_ANKLES, :] = 0.0
    confidence[..., _H36M_ANKLES] = 0.0
    return pose2d, confidence


def protocol_masks(
    delta_s: np.ndarray, *, thresholds: tuple[float, ...] = PROTOCOL1_THRESHOLDS
) -> dict[str, np.ndarray]:
    """RD protocol 1 pair subsets ``{"<=t": delta_s <= t}`` (``<= 1.0`` is every pair)."""
    d = np.asarray(delta_s)
    return {f"<={t:g}": d <= t + 1e-9 for t in thresholds}


def _image_frame(keypoints: np.ndarray, labelled: np.ndarray, image_id: np.ndarray) -> np.ndarray:
    """Approximate (width, height) per person when the file has no image size (MPII): the
    extent of all labelled joints of the image's persons from the origin, plus 5 %."""
    x = np.where(labelled, keypoints[..., 0], 0.0).max(-1)
    y = np.where(labelled, keypoints[..., 1], 0.0).max(-1)
    _, inv = np.unique(image_id, return_inverse=True)
    wx = np.zeros(inv.max() + 1)
    wy = np.zeros(inv.max() + 1)
    np.maximum.at(wx, inv, x)
    np.maximum.at(wy, inv, y)
    return np.stack([wx[inv], wy[inv]], -1) * 1.05 + 1.0


def build_relative_depth_pairs(
    keypoints: np.ndarray,
    visibility: np.ndarray,
    image_id: np.ndarray,
    *,
    layout: str,
    image_size: np.ndarray | None = None,
    normalized: bool = False,
    ankle_rule: str = "both",
    require_visible: bool = False,
    min_ankle_gap: float = 0.0,
    occluded_confidence: float = 1.0,
    depth: np.ndarray | None = None,
    name: str = "pairs",
) -> RelativeDepthPairs:
    """Select images, form pairs and label them (WSP eqs. 1-4, 7, 13, 14; see module docstring).

    Args:
      keypoints: ``[P, K, 2]`` source keypoints: pixels, or ``x / width, y / height`` when
        ``normalized``.
      visibility: ``[P, K]`` COCO-convention flags (0 not labelled, 1 occluded, 2 visible).
      image_id: ``[P]`` image of each person (equal id = same photograph).
      layout: ``"coco17"``, ``"mpii16"`` or ``"h36m17"`` (source joint order).
      image_size: ``[P, 2]`` (width, height) pixels (-1 = unknown); unknown sizes are replaced
        by the extent of the image's labelled joints (an approximation, logged).
      normalized: keypoints are ``x / w, y / h`` (model inputs ``2 x - 1``).
      ankle_rule: ``"both"`` or ``"any"`` ankle annotated (:data:`ANKLE_RULES`).
      require_visible: count only visibility-2 ankles.
      min_ankle_gap: pairs with ``|y_A - y_B| <= min_ankle_gap`` (source units) are ties and
        removed (exact ties are always removed).
      occluded_confidence: model-input confidence of labelled-but-occluded joints.
      depth: optional ``[P, K]`` true camera depths (synthetic scenes), converted to H36M-17.
      name: name of the set.

    Returns:
      :class:`RelativeDepthPairs` with ``counts``: ``persons_total``, ``eligible_persons``
      (ankle rule), ``images`` (with >= 2 eligible persons), ``persons`` (eligible persons in
      those images), ``pairs`` (after tie removal), ``ties_removed``, ``pairs_scale_defined``,
      ``label_ones`` (pairs with label 1 in the stored orientation).
    """
    from jpose import losses  # jax-based label rule (eqs. 1-4, 7); imported here, used once

    if layout not in _LAYOUTS:
        raise ValueError(f"layout must be one of {sorted(_LAYOUTS)}, got {layout!r}")
    if ankle_rule not in ANKLE_RULES:
        raise ValueError(f"ankle_rule must be one of {ANKLE_RULES}, got {ankle_rule!r}")
    lay = _LAYOUTS[layout]
    kp = np.asarray(keypoints, np.float64)
    vis = np.asarray(visibility, np.int32)
    ids = np.asarray(image_id).astype(np.int64)
    p, k = vis.shape if vis.ndim == 2 else (None, None)
    if kp.shape != (p, lay.num_joints, 2) or vis.shape != (p, lay.num_joints) or ids.shape != (p,):
        raise ValueError(
            f"expected keypoints [P, {lay.num_joints}, 2], visibility [P, {lay.num_joints}] and "
            f"image_id [P] for layout {layout}, got {kp.shape}, {vis.shape}, {ids.shape}"
        )
    ankles = lay.indices(list(_ANKLES[layout]))
    ank_ok = (vis[:, ankles] >= 2) if require_visible else (vis[:, ankles] > 0)
    eligible = ank_ok.all(-1) if ankle_rule == "both" else ank_ok.any(-1)
    height = np.where(ank_ok, kp[:, ankles, 1], 0.0).sum(-1) / np.maximum(ank_ok.sum(-1), 1)

    # -- model inputs: H36M-17, normalised image coordinates -----------------------------------
    conf_src = np.where(vis >= 2, 1.0, np.where(vis == 1, occluded_confidence, 0.0))
    lab_src = (vis > 0).astype(np.float64)
    if layout == "h36m17":
        pts, conf, lab = kp, conf_src, lab_src
    else:
        pts, conf = skeleton.convert_layout(kp, conf_src, source=lay, target=skeleton.H36M17)
        _, lab = skeleton.convert_layout(kp, lab_src, source=lay, target=skeleton.H36M17)
    if normalized:
        pose2d = pts * 2.0 - 1.0
    else:
        size = None if image_size is None else np.asarray(image_size, np.float64)
        unknown = np.ones(p, bool) if size is None else np.any(size <= 0, -1)
        if unknown.any():
            approx = _image_frame(kp, vis > 0, ids)
            size = approx if size is None else np.where(unknown[:, None], approx, size)
            LOGGER.warning(
                "%s: %d persons without image size; using the extent of the image's labelled "
                "joints as the image frame (approximate model inputs)",
                name,
                int(unknown.sum()),
            )
        pose2d = normalize_2d(pts, mode="image", image_size=size)
    pose2d = np.where(conf[..., None] > 0, pose2d, 0.0).astype(np.float32)

    # -- eq. 13 person scale ----------------------------------------------------------------------
    top, down = skeleton.H36M17.indices(list(SCALE_JOINTS[layout]))
    scale_ok = (lab[:, top] > 0) & (lab[:, down] > 0)
    scale = np.asarray(
        losses.wsp_person_scale(pts.astype(np.float32), head_top=top, head_down=down), np.float64
    )
    scale = np.where(scale_ok & (scale > 0), scale, np.nan)

    # -- images with >= 2 eligible persons, all unordered pairs ---------------------------------
    rows = np.flatnonzero(eligible)
    uid, cnt = np.unique(ids[rows], return_counts=True)
    order = rows[np.argsort(ids[rows], kind="stable")]
    starts = np.concatenate([[0], np.cumsum(cnt)[:-1]])
    pairs = [order[s + np.stack(np.triu_indices(c, 1), -1)] for s, c in zip(starts, cnt) if c >= 2]
    pa, pb = np.concatenate([np.zeros((0, 2), np.int64), *pairs]).astype(np.int64).T

    # -- eq. 7 labels through the library rule (scene of two persons per pair) ------------------
    if len(pa):
        scene_kp = np.stack([kp[pa], kp[pb]], 1).astype(np.float32)  # [M, 2, K, 2]
        scene_vis = np.zeros((len(pa), 2, lay.num_joints), bool)
        scene_vis[:, 0, ankles] = ank_ok[pa]
        scene_vis[:, 1, ankles] = ank_ok[pb]
        labels, valid = losses.wsp_relative_depth_labels(
            scene_kp, scene_vis, ankles=ankles, reduce="mean"
        )
        labels, valid = np.asarray(labels), np.asarray(valid)
        r_ab, r_ba = labels[:, 0, 1, 0], labels[:, 1, 0, 0]
        if not valid[:, 0, 1].all():
            raise AssertionError("an eligible pair without valid ankles")
        tie = (r_ab == r_ba) | (np.abs(height[pa] - height[pb]) <= min_ankle_gap)
    else:
        r_ab = np.zeros(0, np.float32)
        tie = np.zeros(0, bool)
    keep = ~tie
    pa, pb, r_ab = pa[keep], pb[keep], r_ab[keep]
    sa, sb = scale[pa], scale[pb]
    defined = np.isfinite(sa) & np.isfinite(sb)
    ds = np.asarray(
        losses.wsp_scale_gap_ratio(
            np.nan_to_num(sa).astype(np.float32), np.nan_to_num(sb).astype(np.float32)
        )
    )
    ds = np.where(defined, ds, 1.0).astype(np.float32)

    multi = uid[cnt >= 2]
    in_multi = eligible & np.isin(ids, multi)
    used = np.unique(np.concatenate([pa, pb]))
    counts = {
        "persons_total": int(p),
        "eligible_persons": int(eligible.sum()),
        "images": int(len(np.unique(ids[used]))) if len(used) else 0,
        "images_before_ties": int(len(multi)),
        "persons": int(len(used)),
        "persons_before_ties": int(in_multi.sum()),
        "pairs": int(len(pa)),
        "ties_removed": int(tie.sum()),
        "pairs_scale_defined": int(defined.sum()),
        "label_ones": int((r_ab > 0.5).sum()),
    }
    LOGGER.info("%s: relative-depth pairs %s", name, counts)
    conv_depth = None
    if depth is not None:
        d = np.asarray(depth, np.float64)
        if layout != "h36m17":
            d = np.asarray(
                skeleton.convert_layout(d[..., None], source=lay, target=skeleton.H36M17)[0]
            )[..., 0]
        conv_depth = d.astype(np.float32)
    return RelativeDepthPairs(
        name=name,
        pose2d=pose2d,
        confidence=conf.astype(np.float32),
        image_id=ids,
        ankle_height=height.astype(np.float32),
        person_scale=scale.astype(np.float32),
        pair_a=pa.astype(np.int32),
        pair_b=pb.astype(np.int32),
        label=r_ab.astype(np.float32),
        delta_s=ds,
        scale_defined=defined,
        counts=counts,
        depth=conv_depth,
    )


def load_relative_depth_pairs(
    path: str | os.PathLike,
    *,
    ankle_rule: str = "both",
    require_visible: bool = False,
    min_ankle_gap: float = 0.0,
    occluded_confidence: float = 1.0,
) -> RelativeDepthPairs:
    """Build the pairs of one shared keypoint file (``wild2d_coco.npz``,
    ``wild2d_coco_train_norm.npz``, ``wild2d_mpii.npz``; see ``../shared/data/README.md``).

    Args:
      path: the ``.npz`` file.
      ankle_rule, require_visible, min_ankle_gap, occluded_confidence: see
        :func:`build_relative_depth_pairs` (``min_ankle_gap`` in the file's units: pixels, or
        fractions of the image height for the normalised train file).

    Returns:
      :class:`RelativeDepthPairs` named ``"<dataset>/<split>"``.
    """
    f = read_compact_npz(path)
    return build_relative_depth_pairs(
        f["keypoints"],
        f["visibility"],
        f["labels"]["image_id"],
        layout={"coco": "coco17", "mpii": "mpii16"}[f["layout"]],
        image_size=None if f["normalized"] else f["image_size"],
        normalized=f["normalized"],
        ankle_rule=ankle_rule,
        require_visible=require_visible,
        min_ankle_gap=min_ankle_gap,
        occluded_confidence=occluded_confidence,
        name=f["name"],
    )


def split_by_image(
    pairs: RelativeDepthPairs, *, test_fraction: float, seed: int
) -> tuple[RelativeDepthPairs, RelativeDepthPairs]:
    """Image-disjoint train / test split of a pair set.

    Args:
      pairs: the pair set.
      test_fraction: fraction of the images (with pairs) put in the test set.
      seed: seed of the image permutation.

    Returns:
      ``(train, test)``; no image has pairs in both.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    img = pairs.pair_image_id
    uniq = np.unique(img)
    rng = np.random.default_rng(seed)
    n_test = max(1, int(round(test_fraction * len(uniq))))
    test_ids = rng.choice(uniq, n_test, replace=False)
    is_test = np.isin(img, test_ids)
    train = pairs.select_pairs(~is_test, name=f"{pairs.name}/train")
    test = pairs.select_pairs(is_test, name=f"{pairs.name}/test")
    check_image_disjoint(train, test)
    return train, test


def check_image_disjoint(a: RelativeDepthPairs, b: RelativeDepthPairs) -> None:
    """Raise ``ValueError`` when two pair sets share an image (by image id).

    Only meaningful for sets from the same image collection (COCO train2017 and val2017 ids
    never coincide).
    """
    common = np.intersect1d(np.unique(a.pair_image_id), np.unique(b.pair_image_id))
    if len(common):
        raise ValueError(f"{a.name} and {b.name} share {len(common)} images, e.g. {common[:5]}")


def make_synthetic_scenes(
    *,
    seed: int,
    num_images: int,
    people_range: tuple[int, int] = (2, 4),
    depth_range: tuple[float, float] = (3.0, 12.0),
    camera_height_range: tuple[float, float] = (1.2, 1.9),
    tilt_range: tuple[float, float] = (-0.05, 0.15),
    focal: float = 1145.0,
    image_size: tuple[int, int] = (1000, 1000),
) -> dict[str, np.ndarray]:
    """Multi-person scenes: people of :func:`jpose.data.synthetic.generate_poses` on one floor
    seen by one camera per image (the default WSP demo; see the module docstring).

    World frame: metres, z up, floor z = 0 (ankles at about 4 % of body height). The camera
    stands at the origin at ``camera_height_range``, looks along +y, tilted down by
    ``tilt_range`` radians, no roll; people stand at distance ``depth_range`` within 80 % of the
    horizontal field of view, random heading. Joints outside the image get visibility 0.

    Args:
      seed: numpy seed.
      num_images: number of images.
      people_range: people per image (inclusive).
      depth_range, camera_height_range, tilt_range: scene ranges (metres, radians).
      focal: focal length, pixels.
      image_size: (width, height) pixels.

    Returns:
      ``{"keypoints" [P, 17, 2] px, "visibility" [P, 17] (2 or 0), "image_id" [P],
      "image_size" [P, 2], "depth" [P, 17] camera z, metres, "pose3d_cam" [P, 17, 3]}``
      (H36M-17 layout).
    """
    from jpose.data import synthetic, virtual_cameras

    rng = np.random.default_rng(seed)
    counts = rng.integers(people_range[0], people_range[1] + 1, num_images)
    n = int(counts.sum())
    gen = synthetic.generate_poses(
        rng,
        num_people=n,
        poses_per_person=1,
        mix={"standing": 0.4, "walking": 0.4, "arms_raised": 0.1, "bending": 0.1},
    )
    image = np.repeat(np.arange(num_images), counts)
    world = synthetic.stand_on_floor(rng, gen)
    dist = rng.uniform(*depth_range, n)
    half_fov = np.arctan(image_size[0] / 2.0 / focal) * 0.8
    lateral = dist * np.tan(rng.uniform(-half_fov, half_fov, n))
    world[..., 0] += lateral[:, None]
    world[..., 1] += dist[:, None]
    height = rng.uniform(*camera_height_range, num_images)[image]
    tilt = rng.uniform(*tilt_range, num_images)[image]
    centre = np.stack([np.zeros(n), np.zeros(n), height], -1)
    target = centre + np.array([0.0, 10.0, 0.0])
    r_cam = virtual_cameras.look_at_rotation(centre, target, elevation=tilt)
    size = np.broadcast_to(np.asarray(image_size, np.float32), (n, 2))
    translation = -np.einsum("nij,nj->ni", r_cam, centre)
    cams = virtual_cameras.pinhole_cameras(
        r_cam, translation, np.full((n, 2), focal), size / 2, size
    )
    p3, uv = virtual_cameras.project_world(world, cams)
    inside = (
        (uv[..., 0] >= 0)
        & (uv[..., 0] < image_size[0])
        & (uv[..., 1] >= 0)
        & (uv[..., 1] < image_size[1])
        & (p3[..., 2] > 0.1)
    )
    return {
        "keypoints": np.where(inside[..., None], uv, 0.0).astype(np.float32),
        "visibility": np.where(inside, 2, 0).astype(np.int32),
        "image_id": image.astype(np.int64),
        "image_size": np.asarray(size, np.int32),
        "depth": p3[..., 2].astype(np.float32),
        "pose3d_cam": p3.astype(np.float32),
    }


def _concat_pairs(sets: list[RelativeDepthPairs], *, name: str) -> RelativeDepthPairs:
    """Concatenate pair sets (image ids offset so they stay distinct)."""
    off = np.cumsum([0] + [len(s.pose2d) for s in sets])
    id_off = np.cumsum([0] + [int(s.image_id.max()) + 1 if len(s.image_id) else 0 for s in sets])
    cat = ("pose2d", "confidence", "ankle_height", "person_scale", "label", "delta_s")
    return RelativeDepthPairs(
        name=name,
        image_id=np.concatenate([s.image_id + i for s, i in zip(sets, id_off)]),
        pair_a=np.concatenate([s.pair_a + o for s, o in zip(sets, off)]).astype(np.int32),
        pair_b=np.concatenate([s.pair_b + o for s, o in zip(sets, off)]).astype(np.int32),
        scale_defined=np.concatenate([s.scale_defined for s in sets]),
        counts={k: sum(int(s.counts.get(k, 0)) for s in sets) for k in sets[0].counts},
        **{f: np.concatenate([getattr(s, f) for s in sets]) for f in cat},
    )


_SYNTHETIC_DEFAULTS = {"num_images": 3000, "test_fraction": 0.2, "people_min": 2, "people_max": 4}


def load_pair_splits(
    *,
    source: str,
    seed: int,
    data_dir: str | os.PathLike | None = None,
    coco_train: str = "wild2d_coco_train_norm.npz",
    coco_val: str = "wild2d_coco.npz",
    mpii: str = "wild2d_mpii.npz",
    mpii_train: bool = False,
    ankle_rule: str = "both",
    require_visible: bool = False,
    min_ankle_gap: float = 0.0,
    occluded_confidence: float = 1.0,
    max_train_pairs: int = 0,
    synthetic: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Training / test relative-depth pairs (image-disjoint) of one source, and the counts.

    The options are the fields of a WSP ``rd`` config block (an experiment passes
    ``**config.rd.to_dict()``).

    Args:
      source: ``"synthetic"`` (:func:`make_synthetic_scenes`, split by :func:`split_by_image`)
        or ``"coco"`` (train ``coco_train``, test ``coco_val``, both in ``data_dir``).
      seed: seed of the synthetic scenes, of their split and of the training subset.
      data_dir: folder of the keypoint files (empty or None: :func:`jpose.data.shared_data_dir`).
      coco_train, coco_val: file names of the COCO training and test keypoints.
      mpii: file name of the MPII keypoints, counted (empty: none).
      mpii_train: also train on the MPII pairs (appended to the COCO training pairs).
      ankle_rule, require_visible, min_ankle_gap, occluded_confidence: the pair builder's options
        (:func:`build_relative_depth_pairs`).
      max_train_pairs: keep a seeded random subset of this many training pairs (0 = all).
      synthetic: ``{"num_images", "test_fraction", "people_min", "people_max"}`` of the synthetic
        scenes (missing keys: 3000 images, test fraction 0.2, 2-4 people).

    Returns:
      ``{"train": RelativeDepthPairs, "test": RelativeDepthPairs, "counts": {file: counts},
      "label_agreement": float | None}`` (synthetic: fraction of test-pair joints whose eq. 4
      label agrees with the true depth order).
    """
    opts = dict(
        ankle_rule=ankle_rule,
        require_visible=bool(require_visible),
        min_ankle_gap=float(min_ankle_gap),
        occluded_confidence=float(occluded_confidence),
    )
    agreement = None
    if source == "synthetic":
        syn = {**_SYNTHETIC_DEFAULTS, **(synthetic or {})}
        scenes = make_synthetic_scenes(
            seed=seed,
            num_images=int(syn["num_images"]),
            people_range=(int(syn["people_min"]), int(syn["people_max"])),
        )
        pairs = build_relative_depth_pairs(
            scenes["keypoints"],
            scenes["visibility"],
            scenes["image_id"],
            layout="h36m17",
            image_size=scenes["image_size"],
            depth=scenes["depth"],
            name="synthetic_scenes",
            **opts,
        )
        train, test = split_by_image(pairs, test_fraction=float(syn["test_fraction"]), seed=seed)
        d = test.depth
        true = d[test.pair_a] <= d[test.pair_b]
        agreement = float(np.mean(true == (test.label[:, None] > 0.5)))
        counts = {
            "synthetic scenes (all)": pairs.counts,
            "train split": train.counts,
            "test split": test.counts,
        }
    elif source == "coco":
        from jpose.data.presets import shared_data_dir

        folder = pathlib.Path(data_dir) if data_dir else shared_data_dir()
        if folder is None:
            raise FileNotFoundError("rd.source='coco' needs ../shared/data (or rd.data_dir)")
        train = load_relative_depth_pairs(folder / coco_train, **opts)
        test = load_relative_depth_pairs(folder / coco_val, **opts)
        check_image_disjoint(train, test)
        counts = {train.name: train.counts, test.name: test.counts}
        if mpii:
            extra = load_relative_depth_pairs(folder / mpii, **opts)
            counts[extra.name] = extra.counts
            if mpii_train:
                train = _concat_pairs([train, extra], name=f"{train.name}+{extra.name}")
    else:
        raise ValueError(f"rd.source must be synthetic or coco, got {source!r}")
    if max_train_pairs and train.num_pairs > max_train_pairs:
        keep = np.zeros(train.num_pairs, bool)
        keep[np.random.default_rng(seed).choice(train.num_pairs, max_train_pairs, False)] = True
        train = train.select_pairs(keep)
    return {"train": train, "test": test, "counts": counts, "label_agreement": agreement}
