"""Writing pretrained bundles (files: :mod:`jpose.inference.bundles`) from finished training runs.

:func:`export_bundle` stores the variables of the networks the run's predictor restores --
recorded while :func:`jpose.inference.load_predictor` runs
(:func:`jpose.inference.recording_restores`), so optimiser moments, discriminators and
generators are left out -- with the run's config, model info and a finished status.

Storage dtype (``dtype="auto"``): the bundle is evaluated with float32 and with float16 weights
on the run's 3D test split (``eval_dataset="auto"``: the CMU test split for runs trained on CMU,
else the config's own test splits); float16 is kept only when every MPJPE / P-MPJPE / N-MPJPE
number (per action, action-wise and frame-wise means; with a camera branch also the
root-translation error) moves by at most ``tolerance_mm``. Both sets of numbers and the decision
go into the card, next to the numbers of the run's own ``results.json``.

Provenance (training data and licences, training command, commit) is given by the caller;
``python -m experiments.export`` derives it from the checkout.
"""

from __future__ import annotations

import json
import logging
import os
import pathlib
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from jpose import evaluation as jeval
from jpose import inference, skeleton
from jpose._git import git_output, head_state
from jpose.data.camerapose import frame_scale
from jpose.inference import bundles
from jpose.training import rundir

__all__ = [
    "CARD_JSON",
    "CARD_MD",
    "export_bundle",
    "evaluate_bundle",
    "checkout_commit",
    "git_output",
    "max_difference_mm",
    "metric_numbers",
    "model_card_markdown",
    "root_translation_errors",
]

LOGGER = logging.getLogger("jpose.inference.export")
CARD_JSON = "card.json"
CARD_MD = "MODEL_CARD.md"
_CARD_FIELDS = ("layout", "normalization", "has_camera", "metric_scale")  # of the Predictor


def checkout_commit(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """The card's commit record of the git checkout holding ``directory``: ``{"commit": HEAD,
    "source", "uncommitted_changes": [git status lines of tracked files] (when any)}``, or
    ``{"commit": "unknown", ...}`` outside a checkout."""
    head, dirty = head_state(directory)
    if head is None:
        return {"commit": "unknown", "source": "no git checkout at export"}
    rec = {"commit": head, "source": "git rev-parse HEAD of the checkout at export time"}
    return {**rec, "uncommitted_changes": dirty} if dirty else rec


def _wall_time(workdir: pathlib.Path, results: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    status = rundir.read_status(workdir) or {}
    if status.get("started") and status.get("finished_at"):
        fmt = "%Y-%m-%dT%H:%M:%S"
        t0 = time.mktime(time.strptime(status["started"], fmt))
        t1 = time.mktime(time.strptime(status["finished_at"], fmt))
        out.update(started=status["started"], finished=status["finished_at"],
                   wall_s=round(t1 - t0, 1))  # fmt: skip
    stages = results.get("stages")
    if isinstance(stages, Mapping):
        walls = {k: v.get("wall_s") for k, v in stages.items() if isinstance(v, Mapping)}
        if walls and all(isinstance(w, int | float) for w in walls.values()):
            out["stage_training_wall_s"] = walls
    timings = results.get("timings")
    if isinstance(timings, Mapping):
        for key in ("train_wall_s", "total_wall_s"):
            if isinstance(timings.get(key), int | float):
                out[key] = round(float(timings[key]), 1)
    return out


# ------------------------------------------------------------------------------------------------
# Numbers
# ------------------------------------------------------------------------------------------------


def metric_numbers(evaluation: Mapping[str, Any]) -> dict[str, Any]:
    """``{metric: {per_action, action_wise, frame_wise}}`` (mm) of one split's evaluation
    (:func:`jpose.evaluation.evaluate_3d`), plus ``num_examples`` and ``dataset``."""
    return {
        "dataset": evaluation.get("dataset"),
        "num_examples": int(evaluation["num_examples"]),
        "metrics": jeval.to_jsonable(evaluation["metrics"]),
    }


def _leaves(tree: Any, prefix: str = "") -> dict[str, float]:
    if isinstance(tree, Mapping):
        out = {}
        for k, v in tree.items():
            out.update(_leaves(v, f"{prefix}{k}/"))
        return out
    return {prefix.rstrip("/"): float(tree)} if isinstance(tree, int | float) else {}


def max_difference_mm(a: Mapping[str, Any], b: Mapping[str, Any]) -> float:
    """Largest absolute difference (mm) between two ``{split: metric_numbers}`` records, over
    every metric value (per action and means; with ``absolute``, the root-translation error);
    ``inf`` when a number is missing from one of them."""
    la = _leaves({s: {**v["metrics"], **v.get("absolute", {})} for s, v in a.items()})
    lb = _leaves({s: {**v["metrics"], **v.get("absolute", {})} for s, v in b.items()})
    if set(la) != set(lb) or not la:
        return float("inf")
    return max(abs(la[k] - lb[k]) for k in la)


def root_translation_errors(predictor: inference.Predictor, ds: Any) -> dict[str, Any] | None:
    """Absolute 3D of a camera-branch pipeline: the distance (mm) between the predicted root
    translation and the true camera-frame root, per action and action- / frame-wise means
    (``None`` without a camera branch or absolute 3D ground truth).

    Args:
      predictor: the trained pipeline.
      ds: a ``jpose.data.PoseDataset`` with ``pose3d_cam`` ``[N, J, 3]`` (metres).
    """
    if not predictor.has_camera or ds.pose3d_cam is None:
        return None
    arrays = [ds.pose2d_norm, ds.confidence]
    if predictor.takes_frame_scale:  # as jpose.inference.lift: [1, h / w] for "image" 2D
        arrays.append(frame_scale(ds))
    t = jeval.batched_apply(lambda *a: predictor.predict(*a)["translation"], *arrays)
    root = skeleton.get_layout(predictor.layout).root
    err_m = np.linalg.norm(np.asarray(t, np.float64) - ds.pose3d_cam[:, root], axis=-1)
    return jeval.summarize_errors({"root_translation_error": err_m}, ds)["metrics"]


def evaluate_bundle(path: str | os.PathLike[str], dataset: str) -> dict[str, Any]:
    """``{split: metric_numbers}`` of a bundle (or work directory) on an evaluation dataset of
    :func:`jpose.inference.evaluate.load_eval_datasets` (``"cmu"``, ``"config"``, ...), with
    ``absolute`` (:func:`root_translation_errors`) for camera-branch pipelines."""
    from jpose.inference import evaluate

    predictor = inference.load_predictor(path)
    datasets = evaluate.load_eval_datasets(dataset, predictor)
    evaluations, _ = evaluate.evaluate_predictor(predictor, datasets)
    out = {split: metric_numbers(ev) for split, ev in evaluations.items()}
    for split, rec in out.items():
        absolute = root_translation_errors(predictor, datasets[split])
        if absolute is not None:
            rec["absolute"] = jeval.to_jsonable(absolute)
    return out


def _eval_dataset(config: Mapping[str, Any], requested: str) -> str:
    if requested != "auto":
        return requested
    preset = str(config.get("data", {}).get("preset", ""))
    return "cmu" if preset in ("cmu", "cmu+coco") else "config"


# ------------------------------------------------------------------------------------------------
# Export
# ------------------------------------------------------------------------------------------------


def _parameter_counts(flat: Mapping[str, np.ndarray]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for key, arr in flat.items():
        stage, player = key.split("/")[:2]
        counts[f"{stage}/{player}"] = counts.get(f"{stage}/{player}", 0) + int(arr.size)
    return counts


def _prepare_output(output: pathlib.Path, overwrite: bool) -> None:
    if output.exists():
        if not output.is_dir():
            raise rundir.UserError(f"--output={output} is a file")
        if any(output.iterdir()) and not (overwrite and (output / bundles.BUNDLE_FILE).is_file()):
            raise rundir.UserError(
                f"--output={output} exists and is not empty"
                + (" (and is not a bundle: not replaced)" if overwrite else
                   "; pass --overwrite to replace an earlier bundle")
            )  # fmt: skip


def _restored_networks(
    calls: Sequence[Mapping[str, Any]],
) -> tuple[dict[str, np.ndarray], dict[str, int], dict[str, list[str]]]:
    """Flattened variables, ``{stage: step}`` and ``{stage: [players]}`` of recorded restores."""
    flat: dict[str, np.ndarray] = {}
    checkpoint: dict[str, int] = {}
    holds: dict[str, list[str]] = {}
    for call in calls:
        stage = call["stage"]
        for player, variables in call["variables"].items():
            flat.update(bundles.flatten_variables(variables, f"{stage}/{player}/"))
            holds.setdefault(stage, [])
            if player not in holds[stage]:
                holds[stage].append(player)
        checkpoint.update({str(k): int(v) for k, v in call["steps"].items()})
    return flat, checkpoint, holds


def _measure(
    tmp: pathlib.Path, write: Callable[[str], str], dataset: str
) -> tuple[dict[str, Any], str]:
    """The bundle's numbers with float32 and float16 weights, or the reason they are missing."""
    numbers: dict[str, Any] = {}
    for stored in ("float32", "float16"):
        write(stored)
        try:
            with rundir.user_errors():
                numbers[stored] = evaluate_bundle(tmp, dataset)
        except Exception as err:  # noqa: BLE001 - no data here: stated in the card
            if not rundir.is_user_error(err) and not isinstance(err, FileNotFoundError):
                raise
            message = rundir.user_message(err)
            LOGGER.warning("export: no evaluation (%s); float16 not measured", message)
            return numbers, message
    return numbers, ""


def _dtype_decision(
    dtype: str, diff: float | None, tolerance_mm: float, measure_error: str
) -> tuple[str, str]:
    """The stored dtype and the card's sentence on why."""
    if dtype == "auto":
        chosen = "float16" if diff is not None and diff <= tolerance_mm else "float32"
    else:
        chosen = dtype
    if diff is None:
        reason = f"float16 not measured ({measure_error}); float32 kept" if dtype == "auto" \
            else f"{dtype} requested; float16 not measured ({measure_error})"  # fmt: skip
    else:
        verdict = "<=" if diff <= tolerance_mm else ">"
        reason = (
            f"float16 weights move the largest MPJPE / P-MPJPE / N-MPJPE number (per action "
            f"and means; camera branch: also the root-translation error) by {diff:.4f} mm "
            f"{verdict} {tolerance_mm} mm: "
            + (f"{chosen} stored" if dtype == "auto" else f"{dtype} stored as requested")
        )
    return chosen, reason


def export_bundle(
    workdir: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    name: str = "",
    description: str = "",
    dtype: str = "auto",
    training_data: Sequence[Mapping[str, str]] = (),
    training_command: str = "",
    config_reconstruction: Mapping[str, Any] | None = None,
    commit: Mapping[str, Any] | None = None,
    eval_dataset: str = "auto",
    tolerance_mm: float = 0.1,
    overwrite: bool = False,
    notes: Sequence[str] = (),
) -> dict[str, Any]:
    """Write the bundle of a finished training run (see the module docstring).

    Args:
      workdir: the training run's work directory.
      output: the bundle directory to write (created; refused if it exists and is not empty,
        unless ``overwrite`` and it is an earlier bundle).
      name: the bundle's name (default the output directory's name).
      description: one line (default the predictor's description).
      dtype: ``"auto"`` (module docstring), ``"float16"`` or ``"float32"`` (both measured too).
      training_data: ``[{"name", "licence"}]`` of the training data, for the card.
      training_command: the command that trained the run (default
        ``config_reconstruction["command"]``).
      config_reconstruction: a command reconstructed from ``config.json``, ``{"command", ...}``
        (stored in the card as given).
      commit: ``{"commit", "source"[, "uncommitted_changes": [...]]}`` of the training code.
      eval_dataset: ``"auto"``, or a dataset of
        :func:`jpose.inference.evaluate.load_eval_datasets` (``cmu``, ``config``).
      tolerance_mm: the float16 rule's tolerance.
      overwrite: replace an earlier bundle at ``output``.
      notes: free-text provenance notes for the card (e.g. the state of the working tree).

    A run whose ``model.json`` declares no pipeline (trained before runs wrote one) gets the one
    its method declared while :func:`jpose.inference.load_predictor` restored it
    (``Predictor.pipeline``), so the bundle loads without method code.

    Returns:
      The card (``card.json``'s content).

    Raises:
      rundir.UserError: not a finished run, an existing output, an unknown dtype.
    """
    t0 = time.perf_counter()
    wd = pathlib.Path(workdir)
    out = pathlib.Path(output)
    if dtype not in ("auto", "float16", "float32"):
        raise rundir.UserError(f"--dtype must be auto, float16 or float32, got {dtype!r}")
    if inference.is_bundle(wd):
        raise rundir.UserError(f"{wd} is already a bundle (export takes a training work directory)")
    if not (wd / "checkpoints").is_dir():
        raise rundir.UserError(f"{wd} is not a training work directory (no checkpoints/)")
    _prepare_output(out, overwrite)
    with inference.recording_restores() as calls, rundir.user_errors():
        predictor = inference.load_predictor(wd)  # refuses an unfinished run
    if not calls:
        raise rundir.UserError(f"{wd}: the {predictor.experiment} predictor restored no networks")
    flat, checkpoint, holds = _restored_networks(calls)
    results_path = wd / "results.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    model_info = inference.read_model_info(wd)
    if not model_info:
        raise rundir.UserError(f"{wd} has no model.json (trained by an older jpose): retrain")

    name = name or out.name
    tmp = out.parent / f".{out.name}.export-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        shutil.copyfile(wd / "config.json", tmp / "config.json")
        if "pipeline" not in model_info and predictor.pipeline is not None:
            # an older run: the pipeline its method declared while restoring it (missing
            # fields recomputed there), so the bundle restores with jpose alone
            model_info = {**model_info, "pipeline": dict(predictor.pipeline)}
        (tmp / "model.json").write_text(json.dumps(model_info, indent=2, sort_keys=True) + "\n")
        run_status = rundir.read_status(wd) or {}
        status = {
            "finished": True,
            "stages": run_status.get("stages", {}),
            "started": run_status.get("started"),
            "finished_at": run_status.get("finished_at"),
            "exported": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        (tmp / rundir.STATUS_FILE).write_text(json.dumps(status, indent=2, sort_keys=True) + "\n")
        fields = {k: getattr(predictor, k) for k in _CARD_FIELDS}
        info = {
            "name": name,
            "description": description or predictor.description,
            "experiment": predictor.experiment,
            **fields,
            "checkpoint": checkpoint,
            "holds": holds,
            "restore_dtype": "float32",
        }

        def write(stored: str) -> str:
            return bundles.write_bundle_weights(tmp, flat, info, dtype=stored)

        dataset = _eval_dataset(predictor.config, eval_dataset)
        numbers, measure_error = _measure(tmp, write, dataset)
        diff = max_difference_mm(numbers["float32"], numbers["float16"]) \
            if len(numbers) == 2 else None  # fmt: skip
        chosen, reason = _dtype_decision(dtype, diff, tolerance_mm, measure_error)
        digest = write(chosen)
        size = (tmp / bundles.WEIGHTS_FILE).stat().st_size
        run_numbers = {
            s: metric_numbers(e) for s, e in results.get("evaluations", {}).items()
            if isinstance(e, Mapping) and "metrics" in e
        }  # fmt: skip
        test_split = next(iter(numbers.get(chosen, {})), None)
        run_split = "test" if "test" in run_numbers else next(iter(run_numbers), None)
        reproduces = None
        if test_split and run_split and dataset in ("cmu", "config"):
            ours = {k: v for k, v in numbers["float32"][test_split].items() if k != "absolute"}
            reproduces = max_difference_mm({"s": ours}, {"s": run_numbers[run_split]})
        reconstructed = config_reconstruction or {}
        card = {
            "name": name,
            "description": info["description"],
            "experiment": predictor.experiment,
            "predictor": predictor.description,
            **fields,
            "training_data": [dict(d) for d in training_data],
            "training_command": training_command or reconstructed.get("command", ""),
            "training_command_source": "given at export"
            if training_command
            else "reconstructed from config.json (preset + overrides)"
            if config_reconstruction is not None
            else "not given",
            "config_reconstruction": config_reconstruction,
            "commit": dict(commit or {"commit": "unknown", "source": "not given"}),
            "notes": list(notes),
            "wall_time": _wall_time(wd, results),
            "checkpoint": checkpoint,
            "networks": holds,
            "parameters": _parameter_counts(flat),
            "weights": {
                "file": bundles.WEIGHTS_FILE,
                "dtype": chosen,
                "bytes": size,
                "sha256": digest,
                "decision": reason,
                "tolerance_mm": tolerance_mm,
                "max_abs_difference_float16_mm": diff,
            },
            "evaluation": {
                "dataset": dataset,
                "protocol": "root-relative (pelvis) camera-frame 3D, mm; GT 2D inputs; MPJPE = "
                "P1, P-MPJPE = P2 (similarity Procrustes), N-MPJPE; per action, action-wise and "
                "frame-wise means",
                "float32": numbers.get("float32"),
                "float16": numbers.get("float16"),
                "stored": numbers.get(chosen),
                "not_measured": measure_error,
            },
            "training_results": {
                "file": "results.json of the training run",
                "header": results.get("header", {}),
                "splits": run_numbers,
                "max_abs_difference_bundle_float32_mm": reproduces,
                "compared_split": [test_split, run_split] if reproduces is not None else None,
                "extra_tables": results.get("tables", {}),
            },
        }
        card = jeval.to_jsonable(card, nonfinite="null")
        (tmp / CARD_JSON).write_text(json.dumps(card, indent=2) + "\n")
        (tmp / CARD_MD).write_text(model_card_markdown(card))
        if out.exists():
            shutil.rmtree(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    LOGGER.info("exported %s -> %s (%s, %.2f MB, %.1f s)", wd, out, chosen, size / 1e6,
                time.perf_counter() - t0)  # fmt: skip
    return card


# ------------------------------------------------------------------------------------------------
# Model card
# ------------------------------------------------------------------------------------------------


def _table(numbers: Mapping[str, Any] | None, label: str) -> list[str]:
    if not numbers:
        return []
    rows = []
    for split, rec in numbers.items():
        m = rec["metrics"]
        root = rec.get("absolute", {}).get("root_translation_error")
        rows.append(
            f"| {label} | {split} (N={rec['num_examples']}) | "
            f"{m['mpjpe']['action_wise']:.2f} / {m['mpjpe']['frame_wise']:.2f} | "
            f"{m['p_mpjpe']['action_wise']:.2f} / {m['p_mpjpe']['frame_wise']:.2f} | "
            + (f"{root['action_wise']:.1f} / {root['frame_wise']:.1f} |" if root else "- |")
        )
    return rows


def model_card_markdown(card: Mapping[str, Any]) -> str:
    """``MODEL_CARD.md`` from the card record (:func:`export_bundle`)."""
    w, ev, tr = card["weights"], card["evaluation"], card["training_results"]
    commit, wall, name, camera = card["commit"], card["wall_time"], card["name"], card["has_camera"]
    coco = ", and COCO annotations" if camera else ""
    output = (
        "; the camera branch also predicts the root translation (absolute 3D) and the intrinsics."
        if camera
        else "; absolute 3D only with known intrinsics (`--focal`)."
    )
    licences = "".join(
        f"- **{d['name']}**\n  - Licence / attribution: {d['licence']}\n"
        for d in card["training_data"]
    )
    changes = "; ".join(commit.get("uncommitted_changes") or [])
    changes = f"; uncommitted changes in the checkout: {changes}" if changes else ""
    notes = "".join(f"- Note: {n}\n" for n in card.get("notes", []))
    timing = "".join(
        f"; training{label} {wall[key]} s"
        for key, label in (("stage_training_wall_s", " per stage"), ("train_wall_s", ""))
        if wall.get(key)
    )
    rows = "".join(
        f"{row}\n"
        for numbers, label in ((ev.get("float32"), "bundle, float32"),
                               (ev.get("float16"), "bundle, float16"),
                               (tr.get("splits"), "training run results.json"))
        for row in _table(numbers, label)
    )  # fmt: skip
    after = ""
    if camera:
        after = (
            "Root translation error: distance between the camera branch's root translation "
            "(absolute 3D) and the true camera-frame pelvis position, mm (not in the run's "
            "results.json).\n\n"
        )
    if ev.get("not_measured"):
        after += f"Not measured here: {ev['not_measured']}\n\n"
    if tr.get("max_abs_difference_bundle_float32_mm") is not None:
        after += (
            f"The float32 bundle reproduces the run's `results.json` ({tr['compared_split'][1]}) "
            f"to {tr['max_abs_difference_bundle_float32_mm']:.4f} mm (largest difference over "
            "all numbers).\n\n"
        )
    for title, table in (tr.get("extra_tables") or {}).items():
        after += f"- {title} (training run): {json.dumps(table)}\n"
    # the Python block as ruff formats Python blocks in Markdown (checked in CI)
    return f"""# {name}: model card

{card["description"]}

## Use

```
jpose --pretrained={name} --input=detections.json --output=poses.json --image_size=W,H
```

```python
from jpose.inference import load_pretrained

predictor = load_pretrained("{name}")
```

- Input: 2D keypoints, layout `{card["layout"]}` (the `jpose` command converts COCO-17 and the \
other layouts), normalised `{card["normalization"]}` from pixels and the image size.
- Output: camera-frame 3D in metres (x right, y down, z forward), root-relative at the \
pelvis{output}
- Trained on ground-truth 2D (projections of mocap 3D{coco}); \
detector outputs are noisier than its training inputs, expect larger errors.

## Training data and licences

{licences}
## Training

- Command ({card["training_command_source"]}; the full resolved config is `config.json`):

  ```
  {card["training_command"]}
  ```

- Commit: `{commit["commit"]}` (source: {commit["source"]}){changes}
{notes}- Checkpoint (step per stage): {card["checkpoint"]}
- Wall time: {wall.get("wall_s", "?")} s from start to results ({wall.get("started")} to \
{wall.get("finished")}, status.json){timing}
- Full config: `config.json`; normalisation statistics and priors: `model.json`.

## Evaluation (mm; action-wise / frame-wise means)

Dataset: `{ev["dataset"]}`. {ev["protocol"]}.

| weights | split | MPJPE (P1) | P-MPJPE (P2) | root translation error |
| --- | --- | --- | --- | --- |
{rows}
{after}
Per-action numbers: `card.json` (`evaluation`, `training_results`).

## Weights

- `{w["file"]}`: {w["dtype"]}, {w["bytes"] / 1e6:.2f} MB, sha256 `{w["sha256"]}` (also in \
`weights.sha256`; checked on every load)
- Storage decision: {w["decision"]}
- Networks (stage: players): {card["networks"]}; parameters: {card["parameters"]}
- Optimiser states, discriminators and generators are not included.
"""
