"""Pairwise relative-depth model on keypoints (WSP, Qiu et al., Sec. 3.4.1, eq. 6).

Axes: ``B...`` arbitrary leading batch axes, ``J`` joints (Human3.6M-17), ``D`` per-joint feature
channels. Inputs per person: ``pose [..., J, 2]`` normalised image coordinates (the ``"image"``
convention, (-1, 1); *not* person-centred: the position in the image is the cue), ``confidence
[..., J]`` in [0, 1] (0 = missing joint) and ``scale [...]`` the person's box scale in the same
units (:func:`box_scale`: the larger side of the tight box of the labelled joints).

Architecture (the keypoint analogue of WSP Fig. 2, where an image backbone + heatmap pooling give
``F(P) [J, D]``)::

    person x = [pose * (conf > 0), conf]  [..., J, 3]
    F(P) = encoder(x) [..., J, D]          ResidualMLP(out_shape=(J, D)): the Martinez lifter's
                                           trunk (input layer + residual blocks) + a per-joint
                                           feature layer named "output"
    g_j(A, B) = f([F^j(A), F^j(B), log s_A, log s_B])      eq. 6 (f: FC network, 2D+2 -> 1)
    logit_j = g_j(A, B) - g_j(B, A)        (symmetric=True: swapping A and B flips the sign)

``sigmoid(logit_j)`` is the probability that A's joint j is nearer to the camera (eq. 7 label 1);
train with :func:`jpose.losses.wsp_relative_depth_loss` (eq. 9). The paper's random choice of
N < J joints per pair is a joint mask in the loss (all J logits are computed; the unselected ones
get no gradient). Encoder and the two persons share weights; the encoder runs once on the stacked
``[2, ...]`` persons so batch norm sees both.

Weight reuse: the encoder has exactly the parameter names and shapes of
``martinez_lifter(J, in_channels=3, width, num_blocks)`` except its ``output`` layer (``D``
channels instead of 3), so :func:`init_lifter_from_encoder` copies the trunk (and its batch-norm
statistics) into a lifter.

Training and evaluation (keypoint form of WSP Secs. 3.4-3.5 and 4.2): :func:`pairwise_objective`
(eq. 9 over eq. 6's N < J joints), :func:`coordinate_objective` (eq. 12 fine-tuning),
:func:`evaluate_relative_depth` (RD protocols 1 / 2, Tables 2-3) and the input-only baselines
:func:`input_rule_baselines`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jpose import losses, skeleton
from jpose import metrics as jm
from jpose.data import relative_depth as rdd
from jpose.evaluation import batched_apply
from jpose.models.core import Model, kaiming_normal
from jpose.models.lifter import ResidualMLP

__all__ = [
    "PairwiseRelativeDepth",
    "pairwise_relative_depth",
    "person_input",
    "box_scale",
    "encoder_variables",
    "init_lifter_from_encoder",
    "select_joints",
    "pairwise_objective",
    "coordinate_objective",
    "pairwise_predictor",
    "evaluate_relative_depth",
    "relative_depth_table",
    "rule_scores",
    "INPUT_RULES",
    "input_rule_baselines",
]


def person_input(pose: jax.Array, confidence: jax.Array) -> jax.Array:
    """Per-person encoder / lifter input ``[..., J, 3] = [pose * (conf > 0), conf]``.

    Args:
      pose: ``[..., J, 2]`` normalised image coordinates.
      confidence: ``[..., J]``.

    Returns:
      ``[..., J, 3]`` float32.
    """
    pose, confidence = jnp.asarray(pose, jnp.float32), jnp.asarray(confidence, jnp.float32)
    if pose.shape[-1] != 2 or pose.shape[:-1] != confidence.shape:
        raise ValueError(
            f"expected pose [..., J, 2] and confidence [..., J], got {pose.shape}, "
            f"{confidence.shape}"
        )
    pose = jnp.where(confidence[..., None] > 0, pose, 0.0)
    return jnp.concatenate([pose, confidence[..., None]], axis=-1)


def box_scale(pose: jax.Array, confidence: jax.Array, *, min_scale: float = 1e-3) -> jax.Array:
    """Person box scale: the larger side of the tight box of the joints with confidence > 0.

    Args:
      pose: ``[..., J, 2]`` (normalised image units).
      confidence: ``[..., J]``.
      min_scale: lower bound (fewer than two labelled joints give ``min_scale``).

    Returns:
      ``[...]`` scale, units of ``pose``.
    """
    pose, confidence = jnp.asarray(pose), jnp.asarray(confidence)
    ok = (confidence > 0)[..., None]
    hi = jnp.max(jnp.where(ok, pose, -jnp.inf), axis=-2)
    lo = jnp.min(jnp.where(ok, pose, jnp.inf), axis=-2)
    ext = jnp.where(jnp.isfinite(hi - lo), hi - lo, 0.0)
    return jnp.maximum(jnp.max(ext, axis=-1), min_scale)


class _PairHead(nn.Module):
    """Eq. 6's ``f``: per-joint FC network on ``[F^j(A), F^j(B), log s_A, log s_B]``."""

    width: int
    num_layers: int = 2

    @nn.compact
    def __call__(self, fa: jax.Array, fb: jax.Array, la: jax.Array, lb: jax.Array) -> jax.Array:
        scales = jnp.broadcast_to(jnp.stack([la, lb], -1)[..., None, :], fa.shape[:-1] + (2,))
        h = jnp.concatenate([fa, fb, scales], axis=-1)
        for i in range(self.num_layers):
            h = nn.relu(nn.Dense(self.width, kernel_init=kaiming_normal, name=f"dense{i}")(h))
        return nn.Dense(1, name="logit")(h)[..., 0]


class PairwiseRelativeDepth(nn.Module):
    """Per-person encoder (lifter trunk) + symmetric pairwise head (see module docstring).

    Attributes:
      num_joints: J.
      feature_dim: D, per-joint feature channels of the encoder output.
      width, num_blocks, dropout, use_batch_norm: encoder trunk (:class:`ResidualMLP`).
      head_width, head_layers: pairwise head.
      symmetric: ``logit = g(A, B) - g(B, A)`` (exact sign flip under swapping A and B);
        False uses ``g(A, B)`` only (then only the label flip can be learned).
      axis_name: mapped axis for batch norm.
    """

    num_joints: int = 17
    feature_dim: int = 16
    width: int = 512
    num_blocks: int = 2
    dropout: float = 0.25
    use_batch_norm: bool = True
    head_width: int = 64
    head_layers: int = 2
    symmetric: bool = True
    axis_name: str | None = None

    def setup(self) -> None:
        self.encoder = ResidualMLP(
            out_shape=(self.num_joints, self.feature_dim),
            in_shape=(self.num_joints, 3),
            width=self.width,
            num_blocks=self.num_blocks,
            dropout=self.dropout,
            use_batch_norm=self.use_batch_norm,
            axis_name=self.axis_name,
        )
        self.pair_head = _PairHead(width=self.head_width, num_layers=self.head_layers)

    def encode(self, pose: jax.Array, confidence: jax.Array, *, train: bool) -> jax.Array:
        """``F(P) [..., J, D]`` of persons ``pose [..., J, 2]``, ``confidence [..., J]``."""
        return self.encoder(person_input(pose, confidence), train=train)

    def __call__(
        self,
        pose_a: jax.Array,
        conf_a: jax.Array,
        scale_a: jax.Array,
        pose_b: jax.Array,
        conf_b: jax.Array,
        scale_b: jax.Array,
        *,
        train: bool,
    ) -> jax.Array:
        """Logits ``[..., J]`` of "A's joint j is nearer than B's" (eq. 7 label 1).

        Args:
          pose_a, pose_b: ``[..., J, 2]`` normalised image coordinates.
          conf_a, conf_b: ``[..., J]`` confidences.
          scale_a, scale_b: ``[...]`` box scales (:func:`box_scale`).
          train: batch statistics and dropout.
        """
        j = self.num_joints
        for name, x, shape in (("pose_a", pose_a, (j, 2)), ("pose_b", pose_b, (j, 2))):
            if tuple(x.shape[-2:]) != shape:
                raise ValueError(f"{name}: expected [..., {j}, 2], got {x.shape}")
        pose = jnp.stack([jnp.asarray(pose_a), jnp.asarray(pose_b)])
        conf = jnp.stack([jnp.asarray(conf_a), jnp.asarray(conf_b)])
        f = self.encode(pose, conf, train=train)  # [2, ..., J, D]
        ls = jnp.log(jnp.maximum(jnp.stack([jnp.asarray(scale_a), jnp.asarray(scale_b)]), 1e-3))
        g_ab = self.pair_head(f[0], f[1], ls[0], ls[1])
        if not self.symmetric:
            return g_ab
        return g_ab - self.pair_head(f[1], f[0], ls[1], ls[0])


def pairwise_relative_depth(
    num_joints: int = 17,
    *,
    feature_dim: int = 16,
    width: int = 512,
    num_blocks: int = 2,
    dropout: float = 0.25,
    use_batch_norm: bool = True,
    head_width: int = 64,
    head_layers: int = 2,
    symmetric: bool = True,
) -> Model:
    """The pairwise relative-depth :class:`Model`; ``apply(v, pose_a, conf_a, scale_a, pose_b,
    conf_b, scale_b, train=...) -> logits [..., J]`` (see :class:`PairwiseRelativeDepth`)."""
    return Model(
        PairwiseRelativeDepth(
            num_joints=num_joints,
            feature_dim=feature_dim,
            width=width,
            num_blocks=num_blocks,
            dropout=dropout,
            use_batch_norm=use_batch_norm,
            head_width=head_width,
            head_layers=head_layers,
            symmetric=symmetric,
        ),
        name="wsp_pairwise_relative_depth",
    )


def encoder_variables(variables: dict[str, Any]) -> dict[str, Any]:
    """``{"params", "batch_stats"}`` of the encoder sub-network of a pairwise model."""
    return {
        "params": variables["params"]["encoder"],
        "batch_stats": dict(variables.get("batch_stats", {})).get("encoder", {}),
    }


def init_lifter_from_encoder(
    lifter_variables: dict[str, Any],
    rd_variables: dict[str, Any],
    *,
    skip: tuple[str, ...] = ("output",),
) -> dict[str, Any]:
    """Copy the pre-trained encoder trunk into lifter variables (WSP Sec. 3.5: fine-tuning).

    Every top-level parameter / batch-statistics collection of the lifter (a
    :class:`ResidualMLP`, e.g. ``martinez_lifter(J, in_channels=3)``) except ``skip`` is replaced
    by a copy of the encoder's entry of the same name (a training step may donate the lifter's
    arrays while the encoder lives on); shapes must match.

    Args:
      lifter_variables: ``{"params", "batch_stats"}`` of a freshly initialised lifter.
      rd_variables: variables of a :class:`PairwiseRelativeDepth` model.
      skip: top-level names kept from the lifter (its output layer).

    Returns:
      New lifter variables (``{"params", "batch_stats"}``).

    Raises:
      ValueError: a layer missing in the encoder or of a different shape.
    """
    enc = encoder_variables(rd_variables)
    out = {}
    for coll in ("params", "batch_stats"):
        src, dst = enc.get(coll, {}), dict(lifter_variables.get(coll, {}))
        for name in list(dst):
            if name in skip:
                continue
            if name not in src:
                raise ValueError(f"encoder has no {coll} {name!r}; has {sorted(src)}")
            a = jax.tree_util.tree_map(jnp.shape, dst[name])
            b = jax.tree_util.tree_map(jnp.shape, src[name])
            if a != b:
                raise ValueError(f"{coll} {name!r}: lifter shapes {a} != encoder shapes {b}")
            dst[name] = jax.tree_util.tree_map(jnp.copy, src[name])
        out[coll] = dst
    return out


# ------------------------------------------------------------------------------------------------
# Training objectives
# ------------------------------------------------------------------------------------------------

_H36M_ANKLES = tuple(skeleton.H36M17.indices(["RFoot", "LFoot"]))


def select_joints(key: jax.Array, mask: jax.Array, num: int) -> jax.Array:
    """WSP eq. 6's random choice of N < J joints: ``num`` of the true joints of each row of
    ``mask [..., J]``, uniformly at random (all of them when a row has fewer; ``num <= 0``
    returns ``mask``)."""
    if num <= 0:
        return mask
    u = jnp.where(mask, jax.random.uniform(key, mask.shape), 2.0)
    rank = jnp.argsort(jnp.argsort(u, axis=-1), axis=-1)
    return mask & (rank < num)


def pairwise_objective(
    logits_fn: Callable[..., jax.Array],
    pairs: Mapping[str, jax.Array],
    key: jax.Array,
    *,
    num_selected: int,
    ankle_dropout: float = 0.0,
    ankles: Sequence[int] = _H36M_ANKLES,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Relative-depth pre-training loss: WSP eq. 9 (:func:`jpose.losses.wsp_relative_depth_loss`)
    of the pairwise model on a batch of pairs, averaged over the pairs.

    Each pair's orientation is swapped with probability 1/2 (label ``1 - label``); with
    probability ``ankle_dropout`` both persons' ankles are hidden from the input (confidence 0,
    the RD protocol 2 input; not in the paper, 0 = paper); box scales (:func:`box_scale`) are
    computed from the remaining joints and ``num_selected`` joints labelled in both persons are
    drawn (:func:`select_joints`, eq. 6's N < J).

    Args:
      logits_fn: ``(pose_a, conf_a, scale_a, pose_b, conf_b, scale_b) -> logits [B, J]`` (the
        model in training mode, e.g. a :class:`PairwiseRelativeDepth` apply).
      pairs: ``{"pose_a", "pose_b" [B, J, 2], "conf_a", "conf_b" [B, J], "label" [B],
        "joint_mask" [B, J]}`` (:meth:`jpose.data.relative_depth.RelativeDepthPairs.pair_arrays`).
      key: randomness of the swaps, the ankle dropout and the joint choice.
      num_selected: N (0 = every labelled joint).
      ankle_dropout: probability of hiding the ankles of a pair.
      ankles: the ankle joints of the layout (Human3.6M-17 ``RFoot``, ``LFoot``).

    Returns:
      ``(loss, {"bce": loss, "accuracy": accuracy of the selected joints})``.
    """
    b = pairs
    k_swap, k_drop, k_sel = jax.random.split(key, 3)
    swap = jax.random.bernoulli(k_swap, 0.5, b["label"].shape)
    pa = jnp.where(swap[:, None, None], b["pose_b"], b["pose_a"])
    pb = jnp.where(swap[:, None, None], b["pose_a"], b["pose_b"])
    ca = jnp.where(swap[:, None], b["conf_b"], b["conf_a"])
    cb = jnp.where(swap[:, None], b["conf_a"], b["conf_b"])
    label = jnp.where(swap, 1.0 - b["label"], b["label"])
    if ankle_dropout > 0:
        drop = jax.random.bernoulli(k_drop, ankle_dropout, label.shape)
        keep = jnp.ones(ca.shape[-1], bool).at[np.asarray(ankles)].set(False)
        keep = keep | ~drop[:, None]
        ca, cb = ca * keep, cb * keep
    sel = select_joints(k_sel, b["joint_mask"], num_selected)
    logits = logits_fn(pa, ca, box_scale(pa, ca), pb, cb, box_scale(pb, cb))
    labels = jnp.broadcast_to(label[:, None], logits.shape)
    loss = jnp.mean(losses.wsp_relative_depth_loss(logits, labels, mask=sel))  # eq. 9
    acc = jm.binary_accuracy(logits, labels, mask=sel, from_logits=True)
    return loss, {"bce": loss, "accuracy": acc}


def coordinate_objective(
    pred: jax.Array, pose3d: jax.Array, *, root: int = 0
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Fine-tuning loss: WSP eq. 12 (:func:`jpose.losses.wsp_coordinate_loss`, L1) between a
    lifter's output and the root-relative ground truth, averaged over the batch.

    Args:
      pred: ``[B, J, 3]`` the lifter's 3D (metres; compared as is, the lifter learns the
        root-relative pose).
      pose3d: ``[B, J, 3]`` ground truth in the camera frame (metres).
      root: root joint.

    Returns:
      ``(loss, {"l1": loss, "mpjpe_mm": MPJPE of the root-relative prediction in mm})``.
    """
    target = pose3d - pose3d[:, root : root + 1]
    loss = jnp.mean(losses.wsp_coordinate_loss(pred, target))  # eq. 12 (L1, metres)
    mpjpe = jnp.mean(jm.mpjpe(pred - pred[:, root : root + 1], target))
    return loss, {"l1": loss, "mpjpe_mm": jm.to_mm(mpjpe)}


# ------------------------------------------------------------------------------------------------
# Evaluation: RD protocols 1 / 2 (WSP Sec. 4.2, Tables 2-3)
# ------------------------------------------------------------------------------------------------


def pairwise_predictor(model: Model, variables: Any) -> Callable[..., jax.Array]:
    """The jitted ``(pose_a, conf_a, pose_b, conf_b) -> logits [B, J]`` of a trained pairwise
    model in evaluation mode (box scales from the inputs, :func:`box_scale`)."""

    @jax.jit
    def predict(pa: jax.Array, ca: jax.Array, pb: jax.Array, cb: jax.Array) -> jax.Array:
        return model.apply(
            variables, pa, ca, box_scale(pa, ca), pb, cb, box_scale(pb, cb), train=False
        )[0]

    return predict


def evaluate_relative_depth(
    predict: Callable[..., jax.Array],
    pairs: rdd.RelativeDepthPairs,
    *,
    protocol: int,
    thresholds: tuple[float, ...] = rdd.PROTOCOL1_THRESHOLDS,
    orientation_seed: int = 1234,
    batch_size: int = 2048,
) -> dict[str, dict[str, float]]:
    """RD protocol 1 / 2 metrics of a pairwise model on a pair set (WSP Tables 2-3).

    Args:
      predict: ``(pose_a, conf_a, pose_b, conf_b) -> logits [B, J]`` (:func:`pairwise_predictor`).
      pairs: evaluation pairs.
      protocol: 1 (full input) or 2 (ankles removed).
      thresholds: ΔS thresholds.
      orientation_seed: seeded random A/B orientation (balanced classes).
      batch_size: evaluation batch.

    Returns:
      :func:`relative_depth_table` of the logits.
    """
    arr = pairs.pair_arrays(protocol=protocol, orientation_seed=orientation_seed)
    logits = batched_apply(
        predict, arr["pose_a"], arr["conf_a"], arr["pose_b"], arr["conf_b"], batch_size=batch_size
    )
    return relative_depth_table(logits, arr, thresholds)


def relative_depth_table(
    scores: np.ndarray, arrays: Mapping[str, np.ndarray], thresholds: Sequence[float]
) -> dict[str, dict[str, float]]:
    """Relative-depth metrics (:func:`jpose.metrics.relative_depth_metrics`, scores as logits) per
    RD protocol 1 pair subset ``ΔS <= t`` (WSP eq. 14), over the joints labelled in both persons.

    Args:
      scores: ``[M, J]`` logits of "A's joint j is nearer".
      arrays: :meth:`~jpose.data.relative_depth.RelativeDepthPairs.pair_arrays` of the pairs.
      thresholds: ΔS thresholds.

    Returns:
      ``{"ΔS<=t": {"auc", "accuracy", "precision", "recall", "f1" (percent), "pairs",
      "joints"}}``.
    """
    labels = np.broadcast_to(arrays["label"][:, None], arrays["joint_mask"].shape)
    out = {}
    for name, sel in rdd.protocol_masks(arrays["delta_s"], thresholds=tuple(thresholds)).items():
        mask = arrays["joint_mask"] & sel[:, None]
        m = jm.relative_depth_metrics(
            jnp.asarray(scores), jnp.asarray(labels), mask=jnp.asarray(mask), from_logits=True
        )
        row = {k: 100.0 * float(v) for k, v in m.items()}
        row["pairs"] = float(sel.sum())
        row["joints"] = float(mask.sum())
        out[f"ΔS{name}"] = row
    return out


def rule_scores(arrays: Mapping[str, np.ndarray], joints: Sequence[str]) -> np.ndarray:
    """Input-only baseline scores ``[M, J]``: 100 x (mean image y of A's ``joints`` minus B's),
    the same for every joint (lower in the image = nearer, the label rule of WSP eqs. 1-4 when
    ``joints`` are the ankles); 0 when either person has none of ``joints`` labelled.

    Args:
      arrays: :meth:`~jpose.data.relative_depth.RelativeDepthPairs.pair_arrays` (H36M-17).
      joints: Human3.6M-17 joint names.
    """
    idx = skeleton.H36M17.indices(list(joints))

    def height(pose: np.ndarray, conf: np.ndarray) -> np.ndarray:
        ok = conf[:, idx] > 0
        return np.where(ok, pose[:, idx, 1], 0.0).sum(-1) / np.maximum(ok.sum(-1), 1)

    ha, hb = height(arrays["pose_a"], arrays["conf_a"]), height(arrays["pose_b"], arrays["conf_b"])
    ok = (arrays["conf_a"][:, idx] > 0).any(-1) & (arrays["conf_b"][:, idx] > 0).any(-1)
    s = np.where(ok, ha - hb, 0.0)
    return np.broadcast_to(s[:, None], arrays["joint_mask"].shape).astype(np.float32) * 100.0


INPUT_RULES: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (1, "ankle rule (= label rule)", ("RFoot", "LFoot")),
    (2, "knee rule", ("RKnee", "LKnee")),
    (2, "hip rule", ("RHip", "LHip")),
)
"""``(protocol, name, joints)`` of the input-only baselines (:func:`rule_scores`)."""


def input_rule_baselines(
    pairs: rdd.RelativeDepthPairs,
    *,
    thresholds: Sequence[float] = rdd.PROTOCOL1_THRESHOLDS,
    orientation_seed: int = 1234,
    rules: Sequence[tuple[int, str, Sequence[str]]] = INPUT_RULES,
) -> dict[str, dict[str, dict[str, float]]]:
    """:func:`relative_depth_table` of each input-only rule (:data:`INPUT_RULES`) on a pair set,
    the scale against which a pairwise model's RD protocol 1 / 2 numbers are read.

    Returns:
      ``{"protocol <p>, <name>": table}``.
    """
    out = {}
    for p, rule, joints in rules:
        arr = pairs.pair_arrays(protocol=p, orientation_seed=orientation_seed)
        out[f"protocol {p}, {rule}"] = relative_depth_table(
            rule_scores(arr, joints), arr, thresholds
        )
    return out
