"""Evaluation-mode prediction functions of trained networks.

A trained network reaches evaluation as a pure function of its inputs (:func:`apply_fn`,
:func:`jit_predict`: inference mode, jitted, the variables passed as arguments), scored by
:func:`evaluate_3d` (protocols 1 / 2 and N-MPJPE).

Axes and units: ``pose2d [B, J, 2]`` normalised 2D keypoints (the units of the dataset's
``pose2d_norm``), ``confidence [B, J]`` in [0, 1]; the 3D a lifting ``fn`` returns is
``[B, J, 3]`` in metres, camera frame (what ``jpose.evaluation.evaluate_3d`` scores).
"""

from __future__ import annotations

import functools
import logging
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np

from jpose import metrics as jm
from jpose.data import PoseDataset
from jpose.models.core import Model
from jpose.training.stages import CompileNotice
from jpose.training.state import PlayerState, TrainState

__all__ = [
    "action_labels",
    "apply_fn",
    "batched_apply",
    "evaluate_3d",
    "evaluation_rows",
    "METRIC_NAMES",
    "jit_predict",
    "error_summary",
    "make_validator",
    "pose_errors",
    "reprojection_error_2d",
    "summarize_errors",
    "to_jsonable",
]

LOGGER = logging.getLogger("jpose.evaluation")


def apply_fn(
    model: Model, variables: Any, fn: Callable[[Any, jax.Array, jax.Array], Any]
) -> Callable[[jax.Array, jax.Array], Any]:
    """A jitted ``predict(pose2d, confidence) = fn(apply, pose2d, confidence)``.

    Args:
      model: the network (evaluation mode: running batch statistics, no dropout).
      variables: its ``{"params", "batch_stats"?}`` (a player's ``variables()`` or restored
        from a checkpoint).
      fn: ``fn(apply, pose2d, confidence) -> output`` (any pytree) where ``apply(x)`` runs the
        network.

    Returns:
      ``predict`` with the variables passed as arguments (not baked-in constants).
    """

    @jax.jit
    def run(variables: Any, x: jax.Array, c: jax.Array) -> Any:
        def apply(inp: jax.Array) -> jax.Array:
            return model.apply(variables, inp, train=False)[0]

        return fn(apply, x, c)

    return lambda x, c: run(variables, x, c)


def jit_predict(
    player: PlayerState, fn: Callable[[Any, jax.Array, jax.Array], jax.Array]
) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """:func:`apply_fn` of a trained player: a jitted ``predict_3d(pose2d, confidence) =
    fn(apply, pose2d, confidence)`` where ``apply(x)`` runs the player."""
    return apply_fn(player.model, player.variables(), fn)


def batched_apply(fn: Callable[..., Any], *arrays: np.ndarray, batch_size: int = 4096) -> Any:
    """Apply ``fn`` to fixed-size batches of ``arrays`` (last batch padded: one compilation).

    Returns:
      The concatenated host outputs (pytree of numpy arrays, leading axis N).
    """
    n = len(arrays[0])
    bs = max(1, min(batch_size, n))
    outs = []
    for start in range(0, n, bs):
        chunk = [np.asarray(a[start : start + bs]) for a in arrays]
        m = len(chunk[0])
        if m < bs:
            chunk = [np.concatenate([c, np.repeat(c[-1:], bs - m, 0)]) for c in chunk]
        out = jax.device_get(fn(*chunk))
        outs.append(jax.tree_util.tree_map(lambda x, m=m: np.asarray(x)[:m], out))
    return jax.tree_util.tree_map(lambda *xs: np.concatenate(xs), *outs)


def reprojection_error_2d(reprojected: np.ndarray, dataset: PoseDataset) -> dict[str, float]:
    """Mean 2D error of ``reprojected`` ``[N, J, 2]`` (units of ``dataset.pose2d_norm``; e.g. a
    camera branch's re-projection) over the dataset's present joints (confidence > 0).

    No paper equation: jpose's measure of CameraPose's camera branch (Yang et al. WACV 2023,
    eq. 7's projection) on 2D-only data, where no 3D error exists.

    Returns:
      ``{"num_examples", "mean_err_norm"}`` (normalised units) and, where every image size is
      known, ``"mean_err_px"`` (pixels: ``(w, h) / 2`` per unit of ``"image"`` normalisation,
      ``w / 2`` otherwise).
    """
    w = (dataset.confidence > 0).astype(np.float64)
    d = reprojected - dataset.pose2d_norm
    res = {
        "num_examples": float(len(dataset)),
        "mean_err_norm": float((np.linalg.norm(d, axis=-1) * w).sum() / w.sum()),
    }
    size = dataset.image_size_px
    if size is not None and np.all(size > 0):
        if dataset.normalization == "image":
            scale = size[:, None, :] / 2.0
        else:  # vp: both axes scaled by w / 2
            scale = np.repeat(size[:, None, :1], 2, -1) / 2.0
        res["mean_err_px"] = float((np.linalg.norm(d * scale, axis=-1) * w).sum() / w.sum())
    return res


def to_jsonable(x: Any, *, nonfinite: str = "string") -> Any:
    """``x`` with arrays / numpy scalars as lists / Python numbers, ready for ``json.dumps``.

    Args:
      x: nested mappings, sequences, arrays and scalars.
      nonfinite: how NaN / inf are written: ``"string"`` (``"nan"``) or ``"null"`` (``None``).
    """
    if isinstance(x, Mapping):
        return {str(k): to_jsonable(v, nonfinite=nonfinite) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [to_jsonable(v, nonfinite=nonfinite) for v in x]
    if isinstance(x, np.ndarray | jax.Array):
        return to_jsonable(np.asarray(x).tolist(), nonfinite=nonfinite)
    if isinstance(x, np.generic):
        return to_jsonable(x.item(), nonfinite=nonfinite)
    if isinstance(x, float) and not np.isfinite(x):
        return None if nonfinite == "null" else str(x)
    return x


# ------------------------------------------------------------------------------------------------
# Protocols 1 / 2 on a 3D dataset
# ------------------------------------------------------------------------------------------------


def action_labels(ds: PoseDataset, key: str = "") -> np.ndarray:
    """Per-example action labels: ``labels[key]`` or the first of ``action``, ``pose_class``,
    ``activity``, ``sequence``; ``"all"`` when there is none."""
    for k in ([key] if key else []) + ["action", "pose_class", "activity", "sequence"]:
        if k in ds.labels:
            return np.asarray(ds.labels[k]).astype(str)
    return np.full(len(ds), "all")


METRIC_NAMES = {"mpjpe": "MPJPE (P1)", "p_mpjpe": "P-MPJPE (P2)", "n_mpjpe": "N-MPJPE"}


def pose_errors(pred: Any, target: Any, *, mask: Any = None) -> dict[str, jax.Array]:
    """``{"mpjpe", "p_mpjpe", "n_mpjpe"}``: ``[N]`` per-example errors (metres) of ``pred``
    against ``target`` ``[N, J, 3]`` as given (no re-centring; ``mask``: see
    :func:`jpose.metrics.mpjpe`)."""
    return {name: getattr(jm, name)(pred, target, mask=mask) for name in METRIC_NAMES}


@jax.jit
def _pose_errors(pred: jax.Array, target: jax.Array) -> dict[str, jax.Array]:
    return pose_errors(pred - pred[..., :1, :], target - target[..., :1, :])


_masked_pose_errors = jax.jit(pose_errors)


def error_summary(errors: Mapping[str, Any], actions: np.ndarray, *, name: str) -> dict[str, Any]:
    """Per-action, action-wise and frame-wise means (mm) of per-example errors in metres.

    Args:
      errors: ``{metric name: [N] per-example error in metres}``.
      actions: ``[N]`` action label of each example.
      name: the evaluated dataset's name.

    Returns:
      ``{"dataset", "num_examples", "metrics": {name: {per_action, action_wise, frame_wise}}}``.
    """
    out: dict[str, Any] = {"dataset": name, "num_examples": len(actions), "metrics": {}}
    for metric, values in errors.items():
        mm = np.asarray(jm.to_mm(values), np.float64)
        out["metrics"][metric] = {
            "per_action": {str(k): v for k, v in jm.per_action(mm, actions).items()},
            "action_wise": jm.action_wise_mean(mm, actions),
            "frame_wise": jm.frame_wise_mean(mm),
        }
    return out


def summarize_errors(
    errors: Mapping[str, Any], dataset: PoseDataset, *, action_key: str = ""
) -> dict[str, Any]:
    """:func:`error_summary` of ``dataset``'s examples, grouped by :func:`action_labels`
    (``action_key``)."""
    return error_summary(errors, action_labels(dataset, action_key), name=dataset.name)


def make_validator(
    predict: Callable[[Any, jax.Array, jax.Array], jax.Array],
    dataset: PoseDataset,
    *,
    variables: Callable[[TrainState], Any],
    batch_size: int = 4096,
) -> Callable[[TrainState], dict[str, float]]:
    """A ``state -> {"mpjpe_mm", "p_mpjpe_mm"}`` validation function for
    :func:`jpose.training.stages.train_stage`.

    Args:
      predict: ``predict(variables, pose2d_norm, confidence) -> pose3d [B, J, 3]`` (metres,
        evaluation mode); compiled once, the variables are arguments.
      dataset: the validation split (``experiments.common.holdout_split``; never the test split).
      variables: ``state -> variables`` passed to ``predict`` (e.g. a player's ``variables()``).
      batch_size: evaluation batch size.

    Returns:
      The validation function: frame-wise mean MPJPE and P-MPJPE (root-relative, mm).
    """
    jitted = jax.jit(predict)
    notice = CompileNotice(f"validation ({dataset.name}, {len(dataset)} examples)")
    x, c = dataset.pose2d_norm, dataset.confidence
    target = dataset.pose3d_root_relative.astype(np.float32)

    def evaluate(state: TrainState) -> dict[str, float]:
        notice()
        v = variables(state)
        pred = batched_apply(lambda a, b: jitted(v, a, b), x, c, batch_size=batch_size)
        errors = batched_apply(_pose_errors, pred, target, batch_size=batch_size)
        return {f"{k}_mm": float(np.mean(jm.to_mm(errors[k]))) for k in ("mpjpe", "p_mpjpe")}

    return evaluate


_EVALUATED: weakref.WeakSet[Any] = weakref.WeakSet()


def _notice_evaluation(fn: Any, name: str) -> None:
    """Log ``compiling evaluation ...`` the first time ``fn`` evaluates (its compilation)."""
    try:
        if fn in _EVALUATED:
            return
        _EVALUATED.add(fn)
    except TypeError:  # not weak-referenceable: always say it
        pass
    LOGGER.info("compiling evaluation (%s) ...", name)


def evaluate_3d(
    predict_3d: Callable[[jax.Array, jax.Array], jax.Array],
    dataset: PoseDataset,
    *,
    batch_size: int = 4096,
    action_key: str = "",
    pose2d_norm: np.ndarray | None = None,
    confidence: np.ndarray | None = None,
    keep_predictions: bool = False,
    joints: Sequence[int] | None = None,
    centre: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Protocols 1 / 2 (+ N-MPJPE) of a lifting function on a 3D dataset, in mm.

    Args:
      predict_3d: ``(pose2d_norm [B, J, 2], confidence [B, J]) -> pose3d [B, J, 3]`` metres
        (camera frame; root-relative or not: both sides are root-centred unless ``joints`` is
        given), ideally jitted.
      dataset: split with ``pose3d_cam``.
      batch_size: evaluation batch size.
      action_key: label to group by (default :func:`action_labels`).
      pose2d_norm / confidence: alternative inputs (e.g. detections with synthetic noise);
        default the dataset's own.
      keep_predictions: also return ``"predictions"`` ``[N, J, 3]`` and per-example errors.
      joints: score only these layout indices (e.g. Drover et al.'s 14 joints: the ``mask`` of
        :func:`jpose.metrics.mpjpe`, ``p_mpjpe``, ``n_mpjpe``); default every joint. The
        prediction is then scored as ``predict_3d`` returns it (not re-centred): it must be
        centred on the target's origin.
      centre: with ``joints``, the layout indices whose mean is the target's origin (default the
        root).

    Returns:
      ``{"num_examples", "dataset", "metrics": {metric: {"per_action": {action: mm},
      "action_wise": mm, "frame_wise": mm}}}`` for ``mpjpe``, ``p_mpjpe``, ``n_mpjpe``.
    """
    if not dataset.has_3d:
        raise ValueError(f"{dataset.name}: evaluate_3d needs 3D poses")
    if centre is not None and joints is None:
        raise ValueError("evaluate_3d: centre is the origin of a joint subset; pass joints too")
    x = dataset.pose2d_norm if pose2d_norm is None else pose2d_norm
    c = dataset.confidence if confidence is None else confidence
    _notice_evaluation(predict_3d, dataset.name)
    pred = batched_apply(predict_3d, x, c, batch_size=batch_size)
    target = dataset.pose3d_root_relative.astype(np.float32)
    errors_fn = _pose_errors
    if joints is not None:
        if centre is not None:
            origin = jax.numpy.mean(target[:, np.asarray(centre)], axis=-2, keepdims=True)
            target = target - np.asarray(origin)
        mask = np.zeros((1, target.shape[1]), np.float32)
        mask[0, np.asarray(joints)] = 1.0
        errors_fn = functools.partial(_masked_pose_errors, mask=jax.numpy.asarray(mask))
    errors = batched_apply(errors_fn, pred, target, batch_size=batch_size)
    out = summarize_errors(errors, dataset, action_key=action_key)
    if keep_predictions:
        out["predictions"] = pred
        out["errors_mm"] = {k: np.asarray(jm.to_mm(v)) for k, v in errors.items()}
    return out


def evaluation_rows(evaluation: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """``{metric row: {action: mm, "Avg (action-wise)": mm, "Avg (frame-wise)": mm}}`` for
    ``jpose.metrics.format_table``."""
    rows = {}
    for name, m in evaluation["metrics"].items():
        row = dict(m["per_action"])
        row["Avg (action-wise)"] = m["action_wise"]
        row["Avg (frame-wise)"] = m["frame_wise"]
        rows[METRIC_NAMES.get(name, name)] = row
    return rows
