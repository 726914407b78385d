"""Evaluation helpers shared by the keypoint-lifting experiments (baseline, Drover, Zhou).

Not a method: a helper module of the harness, like :mod:`experiments.common`. These two read the
run's config and write into its work directory, so they stay on the experiments side; the
network-to-function wrappers they pair with (``apply_fn``, ``jit_predict``) are library code in
:mod:`jpose.evaluation`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import ml_collections
import numpy as np

from experiments import common
from jpose.data import PoseDataset

__all__ = ["eval_datasets", "lifter_figures"]


def eval_datasets(
    datasets: Mapping[str, PoseDataset], cfg: ml_collections.ConfigDict
) -> dict[str, PoseDataset]:
    """The 3D evaluation splits named by ``cfg.eval.splits`` (default: every 3D test split)."""
    return {n: datasets[n] for n in common.eval_splits(datasets, cfg.eval.splits)}


def lifter_figures(
    workdir: Any,
    evaluations: Mapping[str, Mapping[str, Any]],
    datasets: Mapping[str, PoseDataset],
    *,
    title: str,
    extra: Mapping[str, Callable[[], Any]] | None = None,
) -> list[str]:
    """Training curves plus predicted-vs-true 3D poses of each evaluated split.

    Args:
      workdir: output directory.
      evaluations: ``{split: evaluate_3d(..., keep_predictions=True)}``.
      datasets: the loaded splits.
      title: figure title prefix.
      extra: more ``{name: make_figure}``.

    Returns:
      Written figure paths (relative to ``workdir``); none when matplotlib is missing.
    """
    from jpose import viz

    figs: dict[str, Callable[[], Any]] = {
        "training_curves": lambda: common.training_curves_figure(workdir, title=title)
    }
    for split, ev in evaluations.items():
        if "predictions" not in ev:
            continue
        ds = datasets[split]

        def poses(ev=ev, ds=ds, split=split) -> Any:
            idx = np.linspace(0, len(ds) - 1, 4).astype(int)
            return viz.figure_poses_3d(
                ev["predictions"][idx],
                ds.pose3d_root_relative[idx],
                errors_mm=ev["errors_mm"]["p_mpjpe"][idx],
                title=f"{title}: {split} (P-MPJPE in titles)",
            )

        figs[f"poses_3d_{split.replace('/', '_')}"] = poses
    figs.update(extra or {})
    return common.write_figures(workdir, figs)
