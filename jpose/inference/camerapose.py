"""CameraPose (Yang et al., WACV 2023) as a trained pipeline: its declared networks and forward
pass (:mod:`jpose.inference.pipelines`, kind ``"camerapose"``: the refinement network of Sec.
3.1, the lifter and the camera branch of Sec. 3.2), the evaluation of a run and its figures.

Units: 2D in the dataset's normalised units, 3D in metres, errors in mm (2D: normalised units and
pixels).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np

from jpose import augment
from jpose import evaluation as jeval
from jpose.data import PoseDataset
from jpose.data.camerapose import frame_scale
from jpose.inference import pipelines
from jpose.training.reports import training_curves_figure

__all__ = ["network_specs", "description", "pipeline_spec", "evaluate", "figures"]

LOGGER = logging.getLogger("jpose.inference.camerapose")
REPROJECTION_TABLE = "2D re-projection error with the predicted camera (2D-only data)"


def network_specs(
    num_joints: int,
    *,
    lifter: Mapping[str, Any],
    refine: Mapping[str, Any] | None = None,
    camera: Mapping[str, Any] | None = None,
    priors: Mapping[str, Any] | None = None,
) -> dict[str, dict[str, Any]]:
    """``{player: jpose.inference.pipelines.network_spec}`` of CameraPose's test-time networks.

    Args:
      num_joints: joints of the layout.
      lifter: the Martinez lifter's ``width``, ``num_blocks``, ``dropout``, ``zero_init_output``
        and ``standardize`` (z-scored inputs and outputs with ``priors``' ``lifter_input_stats``
        and ``lifter_output_stats``; absent: False, as trained before the option existed);
        ``kind`` must be ``"martinez"`` when given.
      refine: the refinement network's ``width`` and ``num_blocks`` (None: no refinement).
      camera: the camera branch's ``width`` and ``num_blocks`` (None: no camera branch).
      priors: the camera branch's ``focal``, ``center`` and ``translation`` priors
        (:func:`jpose.data.camerapose.camera_priors`) and the lifter statistics.

    Raises:
      ValueError: another lifter kind, or a standardised lifter without statistics.
    """
    priors = priors or {}
    if lifter.get("kind", "martinez") != "martinez":
        raise ValueError(f"model.lifter.kind: only 'martinez' is built in, got {lifter['kind']!r}")
    stats: dict[str, Any] = {}
    if lifter.get("standardize", False):
        if "lifter_output_stats" not in priors:
            raise ValueError("model.lifter.standardize needs the training statistics (prepare)")
        stats = {k: priors[f"lifter_{k}"] for k in ("input_stats", "output_stats")}
    nets = {"lifter": pipelines.network_spec(
        "martinez_lifter", num_joints, width=int(lifter["width"]),
        num_blocks=int(lifter["num_blocks"]), dropout=float(lifter["dropout"]),
        zero_init_output=bool(lifter["zero_init_output"]), **stats,
    )}  # fmt: skip
    if refine is not None:
        nets["refine"] = pipelines.network_spec(
            "refine_net", width=int(refine["width"]), num_blocks=int(refine["num_blocks"])
        )
    if camera is not None:
        nets["camera"] = pipelines.network_spec(
            "camera_branch", width=int(camera["width"]), num_blocks=int(camera["num_blocks"]),
            focal_prior=list(priors["focal"]), center_prior=list(priors["center"]),
            translation_prior=list(priors["translation"]),
        )  # fmt: skip
    return nets


def description(networks: Mapping[str, Any]) -> str:
    """One line naming the pipeline's networks."""
    parts = (
        ["refinement"] * ("refine" in networks)
        + ["lifter"]
        + ["camera branch"] * ("camera" in networks)
    )
    return "CameraPose (Yang et al. WACV 2023): " + " + ".join(parts)


def pipeline_spec(
    networks: Mapping[str, Mapping[str, Any]],
    *,
    stages: Sequence[str],
    camera_inputs: str,
    min_depth: float,
    layout: str,
    normalization: str,
) -> dict[str, Any]:
    """The ``model.json["pipeline"]`` entry of :func:`network_specs` trained in ``stages``
    (``camera_inputs``, ``min_depth``: see :func:`jpose.models.camerapose_predict`)."""
    return pipelines.pipeline_spec(
        "camerapose",
        networks=networks,
        stages=stages,
        options={"camera_inputs": str(camera_inputs), "min_depth": float(min_depth)},
        predictor={"experiment": "camerapose", "description": description(networks),
                   "layout": layout, "normalization": normalization,
                   "has_camera": "camera" in networks, "takes_frame_scale": "camera" in networks},
    )  # fmt: skip


def evaluate(
    predict: Callable[..., Mapping[str, Any]],
    datasets: Mapping[str, PoseDataset],
    splits: Sequence[str],
    *,
    batch_size: int = 4096,
    action_key: str = "",
    noise: Mapping[str, float] | None = None,
    noise_seed: int = 0,
    has_camera: bool = True,
    reprojection_splits: Sequence[str] = ("val_2d", "train_2d"),
) -> tuple[dict[str, Any], dict[str, Any], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Evaluate a CameraPose ``predict`` (:func:`jpose.models.camerapose_predict`).

    Args:
      predict: ``predict(pose2d_norm, confidence[, frame_scale])``.
      datasets: the loaded splits.
      splits: the 3D splits to evaluate (:func:`jpose.evaluation.evaluate_3d`, predictions kept).
      batch_size, action_key: see :func:`jpose.evaluation.evaluate_3d`.
      noise: options of :func:`jpose.augment.detection_noise`: also evaluate each split on its
        ground-truth 2D through the model (``"<split>+noise"``, key ``noise_seed``).
      noise_seed: seed of the noisy inputs.
      has_camera: whether ``predict`` has a camera branch; then the first of the 2D-only
        ``reprojection_splits`` present gets the 2D re-projection error
        (:func:`jpose.evaluation.reprojection_error_2d`).
      reprojection_splits: see ``has_camera``.

    Returns:
      ``(evaluations, tables, noisy_inputs)``: ``{split: evaluate_3d(...)}``, the re-projection
      table ``{title: {split: errors}}`` (empty without a camera branch or 2D-only data) and the
      noisy ``(pose2d, confidence)`` of each split.
    """
    lift = jax.jit(lambda x, c: predict(x, c)["pose3d"])
    noisy = jax.jit(lambda k, x, c: augment.detection_noise(k, x, c, **dict(noise or {})))
    evaluations: dict[str, Any] = {}
    noisy_inputs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    kw = {"batch_size": batch_size, "action_key": action_key}
    for split in splits:
        ds = datasets[split]
        evaluations[split] = jeval.evaluate_3d(lift, ds, keep_predictions=True, **kw)
        if noise is not None:
            x, c = noisy(jax.random.key(noise_seed), ds.pose2d_norm, ds.confidence)
            x, c = np.asarray(x), np.asarray(c)
            noisy_inputs[split] = (x, c)
            evaluations[f"{split}+noise"] = jeval.evaluate_3d(lift, ds, pose2d_norm=x,
                                                              confidence=c, **kw)  # fmt: skip
    tables = {}
    split_2d = next((s for s in reprojection_splits if s in datasets), None)
    if has_camera and split_2d is not None:
        ds = datasets[split_2d]
        out = jeval.batched_apply(
            lambda x, c, s: predict(x, c, s)["reprojected"], ds.pose2d_norm, ds.confidence,
            frame_scale(ds), batch_size=batch_size,
        )  # fmt: skip
        tables[REPROJECTION_TABLE] = {split_2d: jeval.reprojection_error_2d(out, ds)}
    for split, e in evaluations.items():
        m = e["metrics"]
        LOGGER.info("%s: MPJPE %.1f mm, P-MPJPE %.1f mm (action-wise)", split,
                    m["mpjpe"]["action_wise"], m["p_mpjpe"]["action_wise"])  # fmt: skip
    return evaluations, tables, noisy_inputs


def figures(
    predict: Callable[..., Mapping[str, Any]],
    datasets: Mapping[str, PoseDataset],
    evaluations: Mapping[str, Mapping[str, Any]],
    noisy_inputs: Mapping[str, tuple[np.ndarray, np.ndarray]],
    *,
    workdir: Any,
    samples: int = 4,
    has_refine: bool = True,
    has_camera: bool = True,
) -> dict[str, Callable[[], Any]]:
    """Figure factories of :func:`evaluate`'s results (for ``jpose.training.reports.write_figures``;
    nothing is computed when matplotlib is missing): ``pose3d_test`` (the first evaluated split),
    ``refinement_test`` (its noisy input vs refined 2D), ``reprojection_2d_only`` (input 2D,
    lifted 3D and re-projection on a 2D-only split, the paper's Fig. 8) and ``training_curves``
    (``<workdir>/metrics.jsonl``); ``samples`` examples each."""
    from jpose import viz

    figs: dict[str, Any] = {}
    test = next(iter(s for s in evaluations if not s.endswith("+noise")), None)
    if test is not None:
        ds = datasets[test]
        idx = np.linspace(0, len(ds) - 1, samples).astype(int)
        figs["pose3d_test"] = functools.partial(
            viz.figure_poses_3d, evaluations[test]["predictions"][idx],
            ds.pose3d_root_relative[idx], errors_mm=evaluations[test]["errors_mm"]["mpjpe"][idx],
            title=f"{test}: predicted 3D (side colours) vs ground truth (grey)",
        )  # fmt: skip
        if has_refine and test in noisy_inputs:
            x, c = noisy_inputs[test]
            refined = np.asarray(predict(x[idx], c[idx])["refined"])
            figs["refinement_test"] = functools.partial(
                viz.figure_2d_comparison,
                {"input (noisy)": x[idx], "refined": refined, "ground truth": ds.pose2d_norm[idx]},
                confidence=c[idx], title=f"{test}: refinement network input vs output (Sec. 3.1)",
            )  # fmt: skip
    split = next((s for s in ("val_2d", "test_2d_mix", "train_2d") if s in datasets), None)
    if has_camera and split is not None:
        ds2 = datasets[split]
        idx2 = np.linspace(0, len(ds2) - 1, samples).astype(int)
        scale = frame_scale(ds2)[idx2]
        out = jax.device_get(predict(ds2.pose2d_norm[idx2], ds2.confidence[idx2], scale))
        figs["reprojection_2d_only"] = functools.partial(
            viz.figure_reprojection, ds2.pose2d_norm[idx2], out["pose3d"], out["reprojected"],
            confidence=ds2.confidence[idx2],
            title=f"{split}: input 2D, lifted 3D, re-projection with the predicted camera (Fig. 8)",
        )  # fmt: skip
    title = "CameraPose training (dotted lines: stage boundaries)"
    figs["training_curves"] = functools.partial(training_curves_figure, workdir, title=title)
    return figs
