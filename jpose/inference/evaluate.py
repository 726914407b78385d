"""Evaluate any trained jpose work directory on any supported 3D test set: the
``jpose-evaluate`` command (``python -m experiments.evaluate`` in a checkout).

Usage::

    jpose-evaluate --workdir=/tmp/cp_cmu                  # the run's own test set
    jpose-evaluate --pretrained=lifter_cmu --dataset=cmu  # a shipped bundle
    jpose-evaluate --workdir=/tmp/cp_cmu --dataset=cmu --flip --figures
    jpose-evaluate --workdir=/tmp/cp_h36m --dataset=h36m --h36m_dir=/data/h36m \\
        --h36m_source=cpn_ft_h36m_dbb --drop_s11_directions
    jpose-evaluate --workdir=/tmp/cp_h36m --dataset=mpi3dhp --mpi3dhp_root=/d/3dhp
    jpose-evaluate --workdir=/tmp/cp_h36m --dataset=3dpw --pw3d_path=/data/3dpw

The trained pipeline is restored with :func:`jpose.inference.load_predictor` (whichever
keypoint experiment produced the work directory: the checkpoint of its last trained stage, or
``--step``). Inputs are normalised the way the training inputs were (``Predictor.normalization``).

Datasets (``--dataset``) and what is reported (all errors in mm, root-relative at the pelvis,
camera frame):

- ``config``: the 3D evaluation splits the training run itself used (the numbers of the run's
  ``results.json`` are reproduced);
- ``cmu``: the CMU mocap test split through the run's virtual cameras;
- ``h36m``: Human3.6M S9 + S11 from VideoPose3D's files, protocol 1 (MPJPE), protocol 2
  (P-MPJPE) and N-MPJPE, per action with action-wise and frame-wise means, plus a per-subject
  table; ``--drop_s11_directions`` drops S11 "Directions" (VideoPose3D's convention);
- ``mpi3dhp``: the MPI-INF-3DHP test set (valid frames), 3DPCK@150 mm and AUC (0-150 mm, 31
  thresholds) over the 17 Human3.6M joints, by scene (GS / no GS / outdoor) and overall, plus the
  MPJPE table;
- ``mpi3dhp`` with ``--mpi3dhp_protocol=zhou`` (the default for Zhou et al. work directories):
  also the protocol of Zhou et al. ICCV 2017 Sec. 4.1 -- the predicted pelvis and hips moved
  towards the neck by 0.2, the prediction scaled to the subject's known size (limb lengths), root
  (pelvis) alignment, 3DPCK@150 mm / AUC over the 14 3DHP evaluation joints;
- ``3dpw``: the 3DPW test split (SMPL joints converted to Human3.6M-17), PA-MPJPE (= P-MPJPE)
  and MPJPE over the 17 joints and PA-MPJPE over the 14 joints both skeletons share
  (:data:`jpose.metrics.PW3D_COMMON14_JOINTS`, Procrustes on those 14). The 2D input is the
  ground truth by default (``--pw3d_2d=gt``: the 3D joints projected with the sequence's
  intrinsics, as CameraPose's Table 4); ``--pw3d_2d=openpose`` feeds the published detections
  (person-frames without a detection dropped).

Options: ``--flip`` (flip test-time augmentation: the prediction on the mirrored 2D input,
mirrored back, averaged with the plain prediction), ``--drop_s11_directions``, ``--step``; every
option is written into the header of the results. Output: ``<workdir>/eval/<tag>/results.json``
and ``results.md`` (``<tag>`` = dataset + options), and with ``--figures`` the figures in
``<workdir>/eval/<tag>/figures/``.

An unfinished training run (a stage killed or not yet run: ``<workdir>/status.json``) is refused
with a message naming the missing stage; ``--allow_unfinished`` evaluates its latest checkpoint
and says so in the results header. User errors exit with status 2 and one message.
"""

from __future__ import annotations

import functools
import json
import logging
import pathlib
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from absl import flags

from jpose import cli_flags, inference, skeleton
from jpose import evaluation as jeval
from jpose import metrics as jm
from jpose.data import PoseDataset
from jpose.data.splits import eval_splits, load_splits
from jpose.training import reports, rundir

__all__ = [
    "DATASETS",
    "flip_augmented",
    "load_eval_datasets",
    "evaluate_predictor",
    "evaluate_workdir",
    "console_main",
    "main",
]

LOGGER = logging.getLogger("jpose.evaluate")
PROG = "jpose-evaluate"
DATASETS = ("config", "cmu", "h36m", "mpi3dhp", "3dpw")


# ------------------------------------------------------------------------------------------------
# Inputs
# ------------------------------------------------------------------------------------------------


@rundir.user_errors("loading the evaluation data")
def load_eval_datasets(
    dataset: str,
    predictor: inference.Predictor,
    *,
    h36m_dir: str = "",
    h36m_source: str = "gt",
    mpi3dhp_root: str = "",
    mpi3dhp_sequences: str = "",
    pw3d_path: str = "",
    pw3d_2d: str = "gt",
    subsample: int = 1,
    drop_s11_directions: bool = False,
) -> dict[str, PoseDataset]:
    """The 3D test set(s) ``dataset`` with 2D normalised like the predictor's training inputs.

    Args:
      dataset: one of :data:`DATASETS`.
      predictor: the trained pipeline (its config and normalisation).
      h36m_dir / h36m_source: Human3.6M folder (VideoPose3D files) and 2D source.
      mpi3dhp_root: MPI-INF-3DHP test-set folder (``TS1`` ... ``TS6``).
      mpi3dhp_sequences: comma-separated subset of the test sequences (default all six).
      pw3d_path: 3DPW ``sequenceFiles`` folder.
      pw3d_2d: 3DPW 2D input, ``"gt"`` (projected ground truth) or ``"openpose"``.
      subsample: keep every n-th frame (Human3.6M).
      drop_s11_directions: drop S11 "Directions" (Human3.6M only).

    Returns:
      ``{split name: PoseDataset}``.

    Raises:
      ValueError: unknown dataset, a needed path missing, or an option that does not apply.
    """
    from jpose import data as jdata

    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {DATASETS}")
    if drop_s11_directions and dataset != "h36m":
        raise ValueError("--drop_s11_directions applies to --dataset=h36m only")
    norm = predictor.normalization
    config = predictor.config  # config.json as a dict
    if dataset == "config":
        if "data" not in config:
            raise ValueError(f"{predictor.experiment}: the config has no data block")
        loaded = load_splits(config["data"])
        splits = eval_splits(loaded, config.get("eval", {}).get("splits", ""))
        return {s: loaded[s] for s in splits}
    path, needs = {
        "h36m": (h36m_dir, "--h36m_dir (folder with data_3d_h36m.npz)"),
        "mpi3dhp": (mpi3dhp_root, "--mpi3dhp_root (folder with TS1..TS6)"),
        "3dpw": (pw3d_path, "--pw3d_path (3DPW sequenceFiles folder)"),
    }.get(dataset, ("", ""))
    if needs and not path:
        raise ValueError(f"--dataset={dataset} needs {needs}")
    if dataset == "cmu":
        d = config.get("data", {})
        folder = d.get("data_dir") or jdata.shared_data_dir()
        if folder is None:
            raise FileNotFoundError(
                "--dataset=cmu needs ../shared/data/cmu_mocap_h36m17.npz (set JPOSE_SHARED_DATA)"
            )
        ds = jdata.cmu_pose_pairs(
            jdata.load_cmu_mocap(pathlib.Path(folder) / "cmu_mocap_h36m17.npz"),
            split="test",
            seed=int(d.get("seed", 0)) + 1,
            subsample=int(d.get("cmu_subsample", 4)),
            num_cameras=int(d.get("cmu_num_cameras", 4)),
            normalization=norm,
            exclude_actions=[
                a.strip() for a in str(d.get("cmu_actions_3d", "")).split(",") if a.strip()
            ],  # the cross-domain split's held-out actions
        )
    elif dataset == "h36m":
        ds = jdata.load_h36m(
            path,
            split="test",
            source=h36m_source,
            subsample=subsample,
            normalization=norm,
            drop_s11_directions=drop_s11_directions,
        )
    elif dataset == "mpi3dhp":
        seqs = [q.strip() for q in mpi3dhp_sequences.split(",") if q.strip()] or None
        ds = jdata.load_mpi3dhp_test(path, sequences=seqs, normalization=norm)
    else:
        ds = jdata.load_3dpw(path, split="test", source_2d=pw3d_2d, normalization=norm)
    return {f"{dataset}_test": ds}


# ------------------------------------------------------------------------------------------------
# Evaluation
# ------------------------------------------------------------------------------------------------


def flip_augmented(
    predict: Callable[[jax.Array, jax.Array], Mapping[str, jax.Array]],
    layout: str = "h36m17",
) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """Flip test-time augmentation of a lifter: mean of ``f(x)`` and ``flip(f(flip(x)))``.

    ``flip`` negates the horizontal coordinate and swaps left / right joints
    (:func:`jpose.skeleton.flip_points`); in normalised 2D (``vp`` / ``image`` / ``bbox``) the
    horizontal origin is the image (box) centre, so this is the mirror image of the input.

    Args:
      predict: ``predict(x, c) -> {"pose3d": ...}``.
      layout: joint layout.

    Returns:
      Jitted ``(x, c) -> pose3d`` (root-relative).
    """

    @jax.jit
    def run(x: jax.Array, c: jax.Array) -> jax.Array:
        perm = jnp.asarray(skeleton.get_layout(layout).flip_permutation)
        plain = predict(x, c)["pose3d"]
        flipped = predict(skeleton.flip_points(x, layout=layout), c[..., perm])["pose3d"]
        pose = 0.5 * (plain + skeleton.flip_points(flipped, layout=layout))
        return pose - pose[..., :1, :]

    return run


def _pck_tables(
    pred: np.ndarray, target: np.ndarray, groups: np.ndarray, *, protocol: str = "standard"
) -> dict[str, dict[str, float]]:
    """3DPCK@150 mm and AUC (%) per group and overall, root-relative.

    ``protocol="standard"``: all 17 joints as predicted. ``"zhou"`` (Zhou et al. ICCV 2017,
    Sec. 4.1): pelvis and hips of the prediction moved towards the neck by 0.2
    (:func:`jpose.metrics.move_hips_towards_neck`), the prediction scaled to the subject's known
    size (:func:`jpose.metrics.limb_length_scale`), then root alignment at the (moved) pelvis and
    the 14 evaluation joints (:data:`jpose.metrics.MPI3DHP_EVAL14_JOINTS`).
    """
    joints = None
    pred = np.asarray(pred, np.float32)
    if protocol == "zhou":
        pred = pred * np.asarray(jm.limb_length_scale(pred, target))[:, None, None]
        pred = np.asarray(jm.move_hips_towards_neck(pred, ratio=0.2))
        joints = jm.joint_indices(jm.MPI3DHP_EVAL14_JOINTS)
    pred_r = jnp.asarray(pred - pred[:, :1])
    tgt_r = jnp.asarray(target - target[:, :1])
    pck = np.asarray(jm.pck3d(pred_r, tgt_r, threshold=0.15, joints=joints), np.float64) * 100.0
    auc = np.asarray(jm.auc3d(pred_r, tgt_r, max_threshold=0.15, joints=joints), np.float64)
    sel = {str(g): groups == g for g in dict.fromkeys(groups.tolist())}
    sel["all"] = np.ones(len(groups), bool)
    return {
        title: {g: float(values[s].mean()) for g, s in sel.items()}
        for title, values in (("3DPCK@150mm (%)", pck), ("AUC (%)", auc * 100.0))
    }


def evaluate_predictor(
    predictor: inference.Predictor,
    datasets: Mapping[str, PoseDataset],
    *,
    flip: bool = False,
    batch_size: int = 4096,
    mpi3dhp_protocol: str = "standard",
) -> tuple[dict[str, Any], dict[str, dict[str, dict[str, float]]]]:
    """Protocol 1 / 2 / N-MPJPE of ``predictor`` on each dataset, plus dataset-specific tables.

    Args:
      predictor: the trained pipeline.
      datasets: ``{split: PoseDataset}`` with 3D.
      flip: flip test-time augmentation (:func:`flip_augmented`).
      batch_size: evaluation batch (one compilation per input shape).
      mpi3dhp_protocol: ``"standard"`` (17 joints) or ``"zhou"`` (also the table of Zhou et al.'s
        protocol, :func:`_pck_tables`) for datasets with a ``scene`` label (MPI-INF-3DHP).

    Returns:
      ``(evaluations, tables)``: ``{split: jeval.evaluate_3d(..., keep_predictions=True)}`` and
      extra tables ``{title: {row: {column: value}}}`` (per subject for Human3.6M, PCK / AUC by
      scene for MPI-INF-3DHP, PA-MPJPE for 3DPW).
    """
    if mpi3dhp_protocol not in ("standard", "zhou"):
        raise ValueError(
            f"unknown 3DHP protocol {mpi3dhp_protocol!r}; expected 'standard' or 'zhou'"
        )
    if flip:
        lift = flip_augmented(predictor.predict, predictor.layout)
    else:
        lift = jax.jit(lambda x, c: predictor.predict(x, c)["pose3d"])
    evaluations: dict[str, Any] = {}
    tables: dict[str, dict[str, dict[str, float]]] = {}
    for split, ds in datasets.items():
        t0 = time.perf_counter()
        ev = jeval.evaluate_3d(lift, ds, batch_size=batch_size, keep_predictions=True)
        ev["wall_s"] = round(time.perf_counter() - t0, 3)
        evaluations[split] = ev
        if "subject" in ds.labels:
            subjects = np.asarray(ds.labels["subject"])
            tables[f"{split}: per subject (mm)"] = {
                name: {str(k): float(v) for k, v in jm.per_subject(values, subjects).items()}
                | {"all (frame-wise)": float(np.mean(values))}
                for name, values in ev["errors_mm"].items()
            }
        if "scene" in ds.labels:  # the standard table, and Zhou et al.'s when asked
            for protocol in dict.fromkeys(("standard", mpi3dhp_protocol)):
                label = ", Zhou et al. protocol" if protocol == "zhou" else ""
                tables[f"{split}: 3DPCK / AUC by scene{label} (%)"] = _pck_tables(
                    ev["predictions"], ds.pose3d_root_relative, np.asarray(ds.labels["scene"]),
                    protocol=protocol,
                )  # fmt: skip
        if split.startswith("3dpw"):
            m = ev["metrics"]
            j14 = jm.joint_indices(jm.PW3D_COMMON14_JOINTS)
            pa14 = jm.p_mpjpe(
                jnp.asarray(ev["predictions"][:, j14]), jnp.asarray(ds.pose3d_root_relative[:, j14])
            )
            tables[f"{split}: PA-MPJPE (mm)"] = {
                "PA-MPJPE (17 joints)": {"frame-wise": m["p_mpjpe"]["frame_wise"]},
                "PA-MPJPE (14 common joints)": {"frame-wise": float(np.mean(jm.to_mm(pa14)))},
                "MPJPE (17 joints)": {"frame-wise": m["mpjpe"]["frame_wise"]},
            }
        LOGGER.info(
            "%s (%d examples): MPJPE %.1f mm, P-MPJPE %.1f mm (action-wise), %.1f s",
            split, len(ds), ev["metrics"]["mpjpe"]["action_wise"],
            ev["metrics"]["p_mpjpe"]["action_wise"], ev["wall_s"],
        )  # fmt: skip
    return evaluations, tables


def _training_header(workdir: pathlib.Path) -> dict[str, Any]:
    path = workdir / "results.json"
    if path.is_file():
        return json.loads(path.read_text()).get("header", {})
    card = workdir / "card.json"  # a pretrained bundle: the training run's header is in its card
    if card.is_file():
        return json.loads(card.read_text()).get("training_results", {}).get("header", {})
    return {}


def _tag(dataset: str, *, flip: bool, drop_s11_directions: bool, step: int | None) -> str:
    parts = [dataset] + ["flip"] * flip + ["noS11Directions"] * drop_s11_directions
    return "-".join(parts + ([] if step is None else [f"step{step}"]))


_SOURCES = {
    "config": "the training run's own test splits (their 2D as in training)",
    "cmu": "projections of the CMU test poses through the run's virtual cameras (exact 2D)",
    "mpi3dhp": "MPI-INF-3DHP annotated 2D (annot2), valid frames",
    "3dpw-gt": "3DPW ground-truth 2D: the 3D joints projected with each sequence's intrinsics",
    "3dpw-openpose": "3DPW OpenPose detections from the sequence files (missing detections "
    "dropped)",
}


def evaluate_workdir(
    workdir: str | pathlib.Path,
    *,
    dataset: str = "config",
    flip: bool = False,
    drop_s11_directions: bool = False,
    step: int | None = None,
    figures: bool = False,
    output_dir: str | pathlib.Path | None = None,
    batch_size: int = 4096,
    allow_unfinished: bool = False,
    mpi3dhp_protocol: str = "auto",
    **paths: Any,
) -> dict[str, Any]:
    """Restore a work directory's pipeline, evaluate it and write results (and figures).

    Args:
      workdir: a training run's work directory.
      dataset, flip, drop_s11_directions, step, figures, batch_size: as the command's flags.
      output_dir: where to write (default ``<workdir>/eval/<tag>``).
      allow_unfinished: evaluate an unfinished run (``status.json``: a stage did not finish;
        the results header says so and why); refused otherwise.
      mpi3dhp_protocol: ``"standard"``, ``"zhou"`` (adds Zhou et al.'s protocol table) or
        ``"auto"`` (``"zhou"`` for Zhou et al. work directories, the paper that reports 3DHP
        numbers with it; ``"standard"`` otherwise).
      **paths: the other options of :func:`load_eval_datasets`.

    Returns:
      The written ``results.json`` record.
    """
    t0 = time.perf_counter()
    wd = pathlib.Path(workdir)
    if batch_size < 1:
        raise rundir.UserError(f"--batch_size must be >= 1, got {batch_size}")
    with rundir.user_errors():
        predictor = inference.load_predictor(wd, step=step, allow_unfinished=allow_unfinished)
    datasets = load_eval_datasets(
        dataset, predictor, drop_s11_directions=drop_s11_directions, **paths
    )
    if mpi3dhp_protocol == "auto":  # Zhou et al. report 3DHP numbers with their protocol
        mpi3dhp_protocol = "zhou" if predictor.experiment in ("zhou", "zhou_image") else "standard"
    if mpi3dhp_protocol not in ("standard", "zhou"):
        raise rundir.UserError(
            f"--mpi3dhp_protocol must be auto, standard or zhou, got {mpi3dhp_protocol!r}"
        )
    evaluations, tables = evaluate_predictor(
        predictor, datasets, flip=flip, batch_size=batch_size, mpi3dhp_protocol=mpi3dhp_protocol
    )
    tag = _tag(dataset, flip=flip, drop_s11_directions=drop_s11_directions, step=step)
    # a bundle (maybe a shipped one, inside the installed package) stays read-only
    default_out = pathlib.Path("jpose_eval") / wd.name / tag if inference.is_bundle(wd) \
        else wd / "eval" / tag  # fmt: skip
    out = pathlib.Path(output_dir) if output_dir else default_out
    out.mkdir(parents=True, exist_ok=True)
    train = _training_header(wd)
    pw3d_2d = paths.get("pw3d_2d", "gt")
    source = _SOURCES.get(f"3dpw-{pw3d_2d}" if dataset == "3dpw" else dataset, "")
    if dataset == "h36m":
        source = f"Human3.6M 2D source '{paths.get('h36m_source', 'gt')}'"
    notes = []
    if not predictor.metric_scale:
        notes.append(
            "the predictor's 3D is defined up to scale: only P-MPJPE (and N-MPJPE) are meaningful"
        )
    if dataset == "mpi3dhp":
        notes.append("3DPCK / AUC over the 17 Human3.6M joints after root (pelvis) alignment")
        if mpi3dhp_protocol == "zhou":
            notes.append(
                "Zhou et al. protocol table: predicted pelvis and hips moved towards the neck by "
                "0.2, prediction scaled to the subject's limb lengths (known global scale), "
                "3DPCK / AUC over the 14 3DHP evaluation joints (Zhou et al. ICCV 2017, Sec. 4.1)"
            )
    if dataset == "3dpw":
        notes.append(
            "PA-MPJPE over the 17 Human3.6M joints and over the 14 joints SMPL and Human3.6M "
            "share (limbs, neck, head; Procrustes on those 14)"
        )
    selection = train.get(
        "model_selection",
        "final checkpoint of the last stage (no validation split used for selection)",
    )
    if predictor.unfinished:
        selection = (
            f"UNFINISHED RUN (--allow_unfinished): {predictor.unfinished}; evaluated: the latest "
            "checkpoint of the last stage that has one, not a final model"
        )
        notes.insert(0, f"**Unfinished training run:** {predictor.unfinished}")
    trained_on = train.get("dataset", predictor.config.get("data", {}).get("preset"))
    evaluated_on = ", ".join(f"{s} ({d.name}, N={len(d)})" for s, d in datasets.items())
    header = reports.ResultsHeader(
        experiment=f"evaluate: {predictor.description or predictor.experiment}",
        dataset=f"trained on: {trained_on}; evaluated on: {evaluated_on}",
        source_2d=source,
        protocol=(
            "root-relative (pelvis) camera-frame 3D, mm; MPJPE = protocol 1, P-MPJPE = protocol 2 "
            "(similarity Procrustes), N-MPJPE (LS scale); per action, action-wise and frame-wise "
            f"means; inputs normalised '{predictor.normalization}' as in training"
        ),
        options={
            "dataset": dataset,
            "flip_tta": flip,
            "drop_s11_directions": drop_s11_directions,
            "step": "latest" if step is None else step,
            **({"mpi3dhp_protocol": mpi3dhp_protocol} if dataset == "mpi3dhp" else {}),
            **({"pw3d_2d": pw3d_2d} if dataset == "3dpw" else {}),
            "workdir": str(wd),
            **({"allow_unfinished": True} if predictor.unfinished else {}),
        },
        checkpoint=dict(predictor.checkpoint),
        model_selection=selection,
        notes=notes,
    )
    written = write_evaluation_figures(out, wd, predictor, datasets, evaluations) if figures else []
    reports.write_results(
        out,
        header=header,
        evaluations=evaluations,
        extra_tables=tables,
        finish_run=False,  # an evaluation never finishes a training run (even in its folder)
        extra={
            "figures": written,
            "wall_s": round(time.perf_counter() - t0, 2),
            "output_dir": str(out),
            "predictor": {
                k: getattr(predictor, k)
                for k in ("experiment", "normalization", "metric_scale", "has_camera")
            },
        },
    )
    LOGGER.info("wrote %s/results.json and results.md (%d figures)", out, len(written))
    return json.loads((out / "results.json").read_text())


# ------------------------------------------------------------------------------------------------
# Figures
# ------------------------------------------------------------------------------------------------


def write_evaluation_figures(
    out: pathlib.Path,
    workdir: pathlib.Path,
    predictor: inference.Predictor,
    datasets: Mapping[str, PoseDataset],
    evaluations: Mapping[str, Any],
    *,
    num_samples: int = 12,
    animation_frames: int = 48,
) -> list[str]:
    """Write the evaluation figures into ``out/figures``; returns the paths (relative to ``out``).

    Per split: a grid of random test samples with their errors, predicted vs true 3D, the input
    2D on a canvas of the image size, the re-projection with the predicted camera (camera
    branch only) and a GIF of one sequence; plus the training curves of the work directory.
    """
    from jpose import viz

    figs: dict[str, Callable[[], Any]] = {}
    anims: list[tuple[str, np.ndarray, np.ndarray]] = []
    for split, ev in evaluations.items():
        ds = datasets[split]
        pred, err = ev["predictions"], ev["errors_mm"]["mpjpe"]
        figs[f"{split}_samples"] = functools.partial(
            viz.figure_sample_grid, pred, ds.pose3d_root_relative, err, num=num_samples,
            labels=jeval.action_labels(ds), title=f"{split}: random test samples (MPJPE, mm)",
        )  # fmt: skip
        idx = np.linspace(0, len(ds) - 1, 4).astype(int)
        figs[f"{split}_pred_vs_gt"] = functools.partial(
            viz.figure_poses_3d, pred[idx], ds.pose3d_root_relative[idx], errors_mm=err[idx],
            title=f"{split}: prediction (side colours) vs ground truth (grey)",
        )  # fmt: skip
        if ds.pose2d_px is not None and ds.image_size_px is not None:
            figs[f"{split}_input_2d"] = functools.partial(
                viz.figure_2d_on_image, ds.pose2d_px[idx[0]], image_size=ds.image_size_px[idx[0]],
                confidence=ds.confidence[idx[0]], title=f"{split}: input 2D (pixels)",
            )  # fmt: skip
        if predictor.has_camera:
            o = jax.device_get(predictor.predict(ds.pose2d_norm[idx], ds.confidence[idx]))
            if "reprojected" in o:
                figs[f"{split}_reprojection"] = functools.partial(
                    viz.figure_reprojection, ds.pose2d_norm[idx], o["pose3d"], o["reprojected"],
                    confidence=ds.confidence[idx],
                    title=f"{split}: input 2D, lifted 3D, re-projection with the predicted camera",
                )  # fmt: skip
        # the animation: consecutive examples of the first sequence seen by the first camera
        sequence, camera = (np.asarray(ds.labels.get(k, np.zeros(len(ds))))
                            for k in ("sequence", "camera"))  # fmt: skip
        first = (sequence == sequence[0]) & (camera == camera[0])
        frames = np.flatnonzero(first)[:animation_frames]
        if len(frames) > 1:
            anims.append((split, pred[frames], ds.pose2d_norm[frames]))
    if (workdir / "metrics.jsonl").is_file():
        figs["training_curves"] = functools.partial(
            reports.training_curves_figure, workdir, title=f"{predictor.experiment} training"
        )
    written = reports.write_figures(out, figs)
    for split, poses, pose2d in anims:
        path = out / "figures" / f"{split}_sequence.gif"
        try:
            viz.animate_sequence(poses, path, pose2d=pose2d, fps=10,
                                 title=f"{split}: predicted 3D of one sequence")  # fmt: skip
            written.append(str(path.relative_to(out)))
        except Exception as err:  # noqa: BLE001 - a figure must never fail an evaluation
            LOGGER.warning("animation %s failed: %s: %s", split, type(err).__name__, err)
    return written


# ------------------------------------------------------------------------------------------------
# Command line
# ------------------------------------------------------------------------------------------------


DESCRIPTION = "Evaluate a trained jpose work directory or bundle on a 3D test set."
_FLAGS = (  # cli_flags.define rows: (absl kind, name, default, help[, enum values])
    ("bool", "flip", False, "flip test-time augmentation"),
    ("bool", "drop_s11_directions", False, "drop S11 'Directions' (Human3.6M, VideoPose3D's "
     "convention)"),
    ("integer", "step", None, "checkpoint step of the last stage"),
    ("bool", "figures", False, "write figures (needs matplotlib)"),
    ("string", "output_dir", "", "default <workdir>/eval/<dataset+options>"),
    ("integer", "batch_size", 4096, "network batch size"),
    ("string", "h36m_dir", "", "Human3.6M in VideoPose3D's npz format"),
    ("string", "h36m_source", "gt", "Human3.6M 2D source (gt or a VideoPose3D detection name)"),
    ("integer", "subsample", 1, "Human3.6M frame subsampling"),
    ("string", "mpi3dhp_root", "", "MPI-INF-3DHP test set folder"),
    ("string", "mpi3dhp_sequences", "", "e.g. TS1,TS5 (default all)"),
    ("string", "pw3d_path", "", "3DPW sequenceFiles folder"),
    ("bool", "allow_unfinished", False, "evaluate a run whose training did not finish (said in "
     "the results)"),
    ("enum", "dataset", "config", "test set (config: the run's own test splits)", DATASETS),
    ("enum", "pw3d_2d", "gt", "3DPW 2D: projected ground truth (CameraPose T.4) or OpenPose",
     ("gt", "openpose")),
    ("enum", "mpi3dhp_protocol", "auto", "auto: Zhou et al.'s protocol for Zhou work "
     "directories", ("auto", "standard", "zhou")),
)  # fmt: skip


def _define(fv: flags.FlagValues) -> None:
    cli_flags.define_model_source(fv, "; results go to ./jpose_eval/<name>/ unless --output_dir")
    cli_flags.define(fv, _FLAGS)


def main(argv: Sequence[str] | None = None, *, prog: str = PROG) -> dict[str, Any]:
    """Command-line entry point (see the module docstring); user errors name ``prog``."""
    args = cli_flags.parse(prog, _define, argv, description=DESCRIPTION)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")  # fmt: skip
    logging.getLogger("absl").setLevel(logging.WARNING)
    with rundir.exit_on_user_error(prog):
        if args.pretrained is not None:
            with rundir.user_errors():  # an unknown name lists the shipped bundles
                workdir = inference.resolve_bundle(args.pretrained)
        elif not str(args.workdir).strip():
            raise rundir.UserError("--workdir is empty: give a training run's work directory")
        else:
            workdir = args.workdir
        if args.subsample < 1:
            raise rundir.UserError(f"--subsample must be >= 1, got {args.subsample}")
        # every other flag is an evaluate_workdir keyword of the same name
        options = {name: args[name].value for name in args if name not in ("workdir", "pretrained")}
        record = evaluate_workdir(workdir, **options)
    for split, ev in record["evaluations"].items():
        m = ev["metrics"]
        print(
            f"{split}: N={ev['num_examples']} MPJPE {m['mpjpe']['action_wise']:.1f} / "
            f"{m['mpjpe']['frame_wise']:.1f} mm, P-MPJPE {m['p_mpjpe']['action_wise']:.1f} / "
            f"{m['p_mpjpe']['frame_wise']:.1f} mm (action-wise / frame-wise)"
        )
    print(f"results: {record['output_dir']}")
    return record


def console_main() -> int:
    """The ``jpose-evaluate`` console script: :func:`main` on ``sys.argv``, exit status 0."""
    main()
    return 0


if __name__ == "__main__":
    main()
