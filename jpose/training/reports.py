"""What a training run writes besides checkpoints and metrics: ``model.json`` (what inference
needs), ``results.{json,md}`` (the evaluation with a header saying how its numbers were
obtained) and ``figures/*.png``. Multi-process runs: process 0 writes, the others wait for it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import pathlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from jpose import metrics as jm
from jpose.evaluation import METRIC_NAMES, evaluation_rows, to_jsonable
from jpose.training import parallel, rundir

__all__ = [
    "ResultsHeader",
    "evaluation_record",
    "training_curves_figure",
    "write_figures",
    "write_model_info",
    "write_results",
]

LOGGER = logging.getLogger("jpose.training")


def write_model_info(workdir: str | os.PathLike[str], **info: Any) -> pathlib.Path:
    """Write ``<workdir>/model.json``: what inference needs beyond config and checkpoints
    (e.g. camera priors derived from the training data)."""
    path = pathlib.Path(workdir) / "model.json"
    if parallel.is_main_process():  # multi-process: process 0 writes, the others wait for it
        path.write_text(json.dumps(to_jsonable(info), indent=2, sort_keys=True) + "\n")
    parallel.barrier("jpose.write_model_info")
    return path


@dataclasses.dataclass
class ResultsHeader:
    """What a results file must say about how its numbers were obtained.

    Attributes:
      experiment: method / entry point.
      dataset: training data (3D and 2D-only).
      source_2d: where the 2D inputs come from (ground truth, detector, synthetic noise, ...).
      protocol: evaluation protocol (splits, alignment, units).
      options: method switches and sizes worth reading next to the numbers.
      checkpoint: ``{stage: step}`` of the evaluated checkpoints.
      model_selection: how the evaluated checkpoint was chosen; must say whether a validation
        split (and which) or the test split was used.
      notes: free text (e.g. "CPU-scaled schedule, not the paper's").
    """

    experiment: str
    dataset: str
    source_2d: str
    protocol: str
    options: Mapping[str, Any]
    checkpoint: Mapping[str, int]
    model_selection: str
    notes: Sequence[str] = ()


def evaluation_record(evaluations: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """``{split: evaluation}`` without the per-example ``predictions`` / ``errors_mm`` (what
    ``results.json`` and the experiments' return values hold)."""
    return {
        k: {kk: vv for kk, vv in v.items() if kk not in ("predictions", "errors_mm")}
        for k, v in evaluations.items()
    }


def write_results(
    workdir: str | os.PathLike[str],
    *,
    header: ResultsHeader,
    evaluations: Mapping[str, Mapping[str, Any]],
    extra_tables: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None,
    extra: Mapping[str, Any] | None = None,
    finish_run: bool = True,
) -> tuple[pathlib.Path, pathlib.Path]:
    """Write ``results.json`` and ``results.md``.

    A training run's results are the last thing it writes: in a work directory with
    ``status.json`` they mark the run finished (``jpose.training.rundir.mark_run_finished``) unless
    ``finish_run`` is False (evaluations of other runs).

    Args:
      workdir: output directory.
      header: :class:`ResultsHeader`.
      evaluations: ``{split: evaluate_3d(...) output}`` (predictions are not written).
      extra_tables: more markdown tables ``{title: {row: {column: value}}}`` (e.g. the 2D
        re-projection error on 2D-only data).
      extra: more JSON fields (timings, figure list, ...).
      finish_run: mark a training run in ``workdir`` finished.

    Returns:
      The two paths (written by process 0 only in a multi-process run; every process returns
      once they are written).
    """
    wd = pathlib.Path(workdir)
    if not parallel.is_main_process():
        parallel.barrier("jpose.write_results")
        return wd / "results.json", wd / "results.md"
    try:
        evals = evaluation_record(evaluations)
        record = {
            "header": dataclasses.asdict(header),
            "evaluations": evals,
            "tables": dict(extra_tables or {}),
            **dict(extra or {}),
        }
        json_path = wd / "results.json"
        json_path.write_text(json.dumps(to_jsonable(record), indent=2) + "\n")
        lines = [
            f"# {header.experiment}: results",
            "",
            f"- **Training data:** {header.dataset}",
            f"- **2D input source:** {header.source_2d}",
            f"- **Protocol:** {header.protocol}",
            "- **Checkpoint (step per stage):** "
            + ", ".join(f"{k}: {v}" for k, v in header.checkpoint.items()),
            f"- **Model selection:** {header.model_selection}",
            "- **Options:** " + ", ".join(f"`{k}={v}`" for k, v in header.options.items()),
        ]
        lines += [f"- {n}" for n in header.notes]
        lines.append("")
        if evals:
            summary = {
                split: {
                    "N": float(e["num_examples"]),
                    **{
                        f"{METRIC_NAMES.get(m, m)} {avg}": e["metrics"][m][key]
                        for m in e["metrics"]
                        for avg, key in (("act.", "action_wise"), ("fr.", "frame_wise"))
                    },
                }
                for split, e in evals.items()
            }
            lines.append(
                jm.format_table(
                    summary,
                    title="## Summary (mm; act. = action-wise, fr. = frame-wise)",
                    row_header="split",
                )  # fmt: skip
            )
        for split, e in evals.items():
            lines.append(
                jm.format_table(
                    evaluation_rows(e),
                    title=f"## {split}: {e['dataset']} ({e['num_examples']} examples), mm",
                    row_header="metric",
                )
            )
        for title, rows in (extra_tables or {}).items():
            lines.append(jm.format_table(rows, title=f"## {title}", digits=3))
        md_path = wd / "results.md"
        md_path.write_text("\n".join(lines))
        if finish_run and (wd / rundir.STATUS_FILE).is_file():  # a run's own results: written last
            rundir.mark_run_finished(wd)
        return json_path, md_path
    finally:
        parallel.barrier("jpose.write_results")


def training_curves_figure(workdir: str | os.PathLike[str], **kwargs: Any) -> Any:
    """Training curves (losses, GAN health, augmentation statistics, validation) from
    ``<workdir>/metrics.jsonl`` (:func:`jpose.viz.figure_training_curves`)."""
    from jpose import viz

    return viz.figure_training_curves(viz.read_metrics(pathlib.Path(workdir) / "metrics.jsonl"),
                                      **kwargs)  # fmt: skip


def write_figures(
    workdir: str | os.PathLike[str], figures: Mapping[str, Callable[[], Any]]
) -> list[str]:
    """Render and save figures as ``<workdir>/figures/<name>.png``; the curves/figures hook.

    Each entry is a zero-argument callable returning a matplotlib figure, so nothing is computed
    when matplotlib is missing (then a warning is logged and nothing is written). A figure that
    fails is logged and skipped; figures never fail a run.

    Args:
      workdir: output directory.
      figures: ``{name: make_figure}``.

    Returns:
      Paths written (relative to ``workdir``; nothing on processes other than 0).
    """
    if not parallel.is_main_process():
        return []
    try:
        from jpose import viz

        viz.pyplot()
    except ImportError as err:
        LOGGER.warning("no figures: %s", err)
        return []
    wd = pathlib.Path(workdir)
    written = []
    for name, make in figures.items():
        try:
            path = viz.save_figure(make(), wd / "figures" / f"{name}.png")
            written.append(str(path.relative_to(wd)))
        except Exception as err:  # noqa: BLE001 - a figure must never fail a training run
            LOGGER.warning("figure %s failed: %s: %s", name, type(err).__name__, err)
    return written
