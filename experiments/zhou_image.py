"""Zhou et al. (ICCV 2017), image form: stacked hourglass 2D module + depth-regression module,
trained end to end on mixed batches of 3D-labelled and 2D-only images.

``python -m experiments.zhou_image --workdir=DIR [--config=experiments/configs/zhou_image.py:P]``

Network: :func:`jpose.models.hourglass.stacked_hourglass` (2 stacks x 2 residual modules; depth
module on the summed heatmaps + intermediate features, 4 residual & pooling modules).

Units: 2D labels and predictions in heatmap pixels (stride ``S / h``; heatmap pixel ``i`` has
its centre at image pixel ``(i + 0.5) S / h - 0.5``); depth in the same unit:
``d_j = f (Z_j - Z_root) / Z_root / stride`` (weak-perspective depth, root-relative), so
``[u, v, d]`` is a scaled 3D pose, as Zhou et al.'s "depth normalised by the same scale".

Loss per image (eq. 4): ``L_2D`` (eq. 1, Gaussian targets, summed over pixels, averaged over
visible joints, summed over the stacks: intermediate supervision) ``+ L_dep`` (eq. 2:
``lambda_reg ||d^ - d||^2`` on 3D-labelled images, ``lambda_geo L_geo`` (eq. 3) on 2D-only
images from the ground-truth 2D and the predicted depth). The predicted depth is made
root-relative before the losses. Term weights per ablation and stage:
:func:`jpose.losses.zhou_loss_weights` (the keypoint experiment's switches); ``3d`` / ``3d+geo``
train stages 2-3 on 3D-labelled images only (the ``geo`` weight then acts on them: "3D/w geo").

Three-stage schedule (sec. 3.4): stage 1 = 2D module on 2D-labelled images (shared by the
ablations: the paper pre-trains the hourglass on MPII for every baseline), stage 2 = whole
network on mixed batches with ``lambda_geo = 0``, stage 3 = whole network with the geometric
loss. Loss weights live in ``state.extra`` (arrays), so one compiled step per batch composition
serves every stage and ablation.

Evaluation (as the keypoint experiment ``experiments.zhou``): 2D PCKh@0.5 of the 2D module
(arg-max of the last stack's heatmaps with Newell's quarter-pixel shift; head segment =
``Head - Neck/Nose``); 3D: the output ``[u, v, d]`` rescaled to the average sum of bone lengths of
the training skeletons (sec. 4.1.2, :func:`jpose.losses.zhou_skeleton_rescale`) -> MPJPE (P1),
P-MPJPE (P2) and N-MPJPE per pose class; left/right bone-length differences (Table 4) in mm on
the 3D test splits and in 256-pixel crop units on the 2D-only images.
"""

from __future__ import annotations

import functools
import pathlib
import re
import time
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from experiments import common
from experiments.configs.zhou_image import ABLATIONS
from jpose import evaluation as jeval
from jpose import kinematics, losses, skeleton
from jpose import metrics as jm
from jpose.data import images, render
from jpose.data.images import PosePool, normalize_images
from jpose.models import hourglass
from jpose.models.hourglass import stacked_hourglass
from jpose.training import (
    Phase,
    PhaseContext,
    clipped,
    create_player,
    create_train_state,
)
from jpose.training import stages as harness
from jpose.training.state import TrainState

__all__ = [
    "LAYOUT",
    "render_split",
    "image_labels",
    "make_phase",
    "stage_weights",
    "predict_fn",
    "evaluate_split",
    "run",
]

LAYOUT = skeleton.H36M17
_ROOT = LAYOUT.root


# ------------------------------------------------------------------------------------------------
# Data
# ------------------------------------------------------------------------------------------------


def render_split(pool: PosePool, *, num_images: int, image_size: int, style: str,
                 seed: int) -> tuple[render.RenderedImages, np.ndarray]:  # fmt: skip
    """Single-person crops (``framing="crop"``) of the pool; returns images and labels [N]."""
    cfg = render.RenderConfig(image_size=image_size, framing="crop", style=style)
    r = render.render_images(pool.poses, num_images=num_images, config=cfg, seed=seed)
    return r, pool.labels[r.pose_index[:, 0]]


def image_labels(r: render.RenderedImages, *, heatmap_size: int) -> dict[str, np.ndarray]:
    """Training arrays of single-person images: ``image`` uint8, ``kp`` [N, J, 2] and ``depth``
    [N, J] in heatmap pixels (see the module docstring), ``vis`` [N, J] float."""
    size = r.image.shape[1]
    stride = size / heatmap_size
    kp = (r.keypoints_2d[:, 0] + 0.5) / stride - 0.5
    z = r.pose3d_cam[:, 0, :, 2].astype(np.float64)
    zr = z[:, _ROOT : _ROOT + 1]
    f = np.asarray(r.camera.focal)[:, :1].astype(np.float64)
    depth = f * (z - zr) / zr / stride
    return {
        "image": r.image,
        "kp": kp.astype(np.float32),
        "depth": depth.astype(np.float32),
        "vis": r.visibility[:, 0].astype(np.float32),
    }


# ------------------------------------------------------------------------------------------------
# 2D read-out and PCKh
# ------------------------------------------------------------------------------------------------


# ------------------------------------------------------------------------------------------------
# Training
# ------------------------------------------------------------------------------------------------


def stage_weights(ablation: str, *, stage: int, lambda_reg: float, lambda_geo: float
                  ) -> dict[str, jax.Array]:  # fmt: skip
    """``state.extra`` of a stage: weights of ``reg``, ``geo_2d``, ``geo_3d`` and ``hm_3d`` (the
    2D loss of 3D-labelled images); stage 1 trains the 2D module on 2D-only images (all 0)."""
    if stage == 1:
        w = {"reg": 0.0, "geo_2d": 0.0, "geo_3d": 0.0, "hm_3d": 0.0}
    else:
        w = losses.zhou_loss_weights(
            ablation, stage=stage, lambda_reg=lambda_reg, lambda_geo=lambda_geo
        )
        w["hm_3d"] = 1.0
    return {k: jnp.asarray(v, jnp.float32) for k, v in w.items()}


def make_phase(*, parts: tuple[str, ...], canonical_lengths: np.ndarray, sigma: float) -> Phase:
    """The single training phase (player ``net``) for batches with the given ``parts``
    (``"3d"``: 3D-labelled images, ``"2d"``: 2D-only images), weights from ``state.extra``."""
    canon = jnp.asarray(canonical_lengths, jnp.float32)

    def loss_fn(ctx: PhaseContext, batch: Mapping[str, Any]) -> tuple[jax.Array, dict]:
        w = ctx.extra
        images = jnp.concatenate([batch[p]["image"] for p in parts])
        kp = jnp.concatenate([batch[p]["kp"] for p in parts])
        vis = jnp.concatenate([batch[p]["vis"] for p in parts])
        n3 = batch["3d"]["image"].shape[0] if "3d" in parts else 0
        has_depth = jnp.arange(images.shape[0]) < n3
        target = jnp.concatenate(
            [batch[p]["depth"] if p == "3d" else jnp.zeros_like(batch[p]["vis"]) for p in parts]
        )
        out = ctx.apply("net", normalize_images(images))
        hm = out["heatmaps"]  # [B, S, J, h, w]
        per_joint = losses.zhou_heatmap_loss(hm, kp[:, None], sigma=sigma, visibility=vis[:, None])
        n_vis = jnp.maximum(jnp.sum(vis, -1), 1.0)
        l2d = jnp.sum(jnp.sum(per_joint, -1) / n_vis[:, None], -1)  # eq. 1, stacks summed
        depth = out["depth"] - out["depth"][:, _ROOT : _ROOT + 1]
        pose = jnp.concatenate([kp, depth[..., None]], -1)
        geo = losses.zhou_geometric_loss(pose, canon, layout=LAYOUT, visibility=vis)
        reg = jnp.sum(jnp.square(depth - target), -1)
        is3 = has_depth.astype(jnp.float32)
        n3f, n2f = jnp.maximum(jnp.sum(is3), 1.0), jnp.maximum(jnp.sum(1 - is3), 1.0)
        reg_m = jnp.sum(is3 * reg) / n3f
        geo3_m = jnp.sum(is3 * geo) / n3f
        geo2_m = jnp.sum((1 - is3) * geo) / n2f
        # eq. 2 via the library: per example lambda_reg * reg (3D) or lambda_geo * geo (2D)
        ldep = losses.zhou_depth_loss(
            depth, target, kp, has_depth, canon, layout=LAYOUT, lambda_reg=1.0,
            lambda_geo=1.0, visibility=vis,
        )  # fmt: skip
        ldep = jnp.where(has_depth, w["reg"] * ldep, w["geo_2d"] * ldep) + w["geo_3d"] * is3 * geo
        l2d = jnp.where(has_depth, w["hm_3d"] * l2d, l2d)
        loss = jnp.mean(l2d) + jnp.mean(ldep)
        return loss, {"l2d": jnp.mean(l2d), "reg": reg_m, "geo_3d": geo3_m, "geo_2d": geo2_m,
                      "depth_rmse": jnp.sqrt(reg_m / LAYOUT.num_joints)}  # fmt: skip

    return Phase("zhou", ("net",), loss_fn)


# ------------------------------------------------------------------------------------------------
# Evaluation
# ------------------------------------------------------------------------------------------------


def predict_fn(state: TrainState) -> Any:
    """Jitted ``images uint8 [B, S, S, 3] -> {"kp": [B, J, 2], "depth": [B, J]}`` (heatmap px)."""
    player = state.players["net"]
    variables = player.variables()

    @jax.jit
    def predict(images):
        out, _ = player.model.apply(variables, normalize_images(images), train=False)
        return {"kp": hourglass.heatmap_argmax(out["heatmaps"][:, -1]), "depth": out["depth"]}

    return predict


def evaluate_split(predict: Any, data: Mapping[str, np.ndarray], *, labels: np.ndarray,
                   name: str, pose3d: np.ndarray | None, avg_sum_length: float,
                   heatmap_size: int, batch_size: int, pckh_threshold: float = 0.5
                   ) -> dict[str, Any]:  # fmt: skip
    """2D PCKh, and (with ``pose3d``) Zhou's rescaled MPJPE / P-MPJPE / N-MPJPE per label and
    the symmetric bone-length differences of one split; ``predict`` from :func:`predict_fn`."""
    pred = jeval.batched_apply(predict, data["image"], batch_size=batch_size)
    out: dict[str, Any] = {"pckh": jm.pckh(pred["kp"], data["kp"], data["vis"],
                                        threshold=pckh_threshold)}  # fmt: skip
    depth = pred["depth"] - pred["depth"][:, _ROOT : _ROOT + 1]
    pose_hm = np.concatenate([pred["kp"], depth[..., None]], -1)
    crop_units = 256.0 / heatmap_size  # Table 4 on 2D-only data: 256 x 256 crop pixels
    out["symmetry_crop_px"] = jm.symmetry_table(pose_hm, scale=crop_units)
    if pose3d is not None:
        rescaled = np.asarray(losses.zhou_skeleton_rescale(
            jnp.asarray(pose_hm), layout=LAYOUT, avg_sum_length=avg_sum_length))  # fmt: skip
        target = pose3d - pose3d[:, _ROOT : _ROOT + 1]
        errs = {
            "mpjpe": jm.mpjpe(rescaled, target),
            "p_mpjpe": jm.p_mpjpe(rescaled, target),
            "n_mpjpe": jm.n_mpjpe(rescaled, target),
        }
        out["eval3d"] = {"dataset": name, "num_examples": len(pose3d), "metrics": {}}
        for k, v in errs.items():
            mm = np.asarray(jm.to_mm(v), np.float64)
            out["eval3d"]["metrics"][k] = {
                "per_action": {str(a): x for a, x in jm.per_action(mm, labels).items()},
                "action_wise": jm.action_wise_mean(mm, labels),
                "frame_wise": jm.frame_wise_mean(mm),
            }
        out["symmetry_mm"] = jm.symmetry_table(rescaled, scale=1000.0)
        out["symmetry_gt_mm"] = jm.symmetry_table(target, scale=1000.0)
    out["predictions_2d"] = pred["kp"]
    return out


# ------------------------------------------------------------------------------------------------
# Entry point
# ------------------------------------------------------------------------------------------------


def _slug(name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9]+", "_", name).strip("_")


def load_rendered(config: ml_collections.ConfigDict, *, heatmap_size: int) -> dict[str, Any]:
    """Render the splits: ``train_3d`` (studio, 3D), ``train_2d`` (wild, 2D only), ``test_wild``
    and ``test_studio`` (3D); each ``{"arrays", "labels", "rendered"}``."""
    d, seed = config.data, int(config.seed)
    size = int(d.image_size)
    specs = {
        "train_3d": ("train", d.mix_3d, d.style_3d, int(d.num_train_3d), 1),
        "train_2d": ("train", d.mix_2d, d.style_2d, int(d.num_train_2d), 2),
        "test_wild": ("test", d.mix_2d, d.style_2d, int(d.num_test), 3),
        "test_studio": ("test", d.mix_3d, d.style_3d, int(d.num_test), 4),
    }
    out = {}
    for name, (split, mix, style, n, s) in specs.items():
        t0 = time.perf_counter()
        pool = images.pose_pool(
            split=split,
            mix=mix,
            seed=seed * 1000 + s,
            **{k: d[k] for k in images.POSE_POOL_OPTIONS},
        )
        r, labels = render_split(pool, num_images=n, image_size=size, style=style,
                                 seed=seed * 1000 + 10 + s)  # fmt: skip
        out[name] = {"arrays": image_labels(r, heatmap_size=heatmap_size), "labels": labels,
                     "rendered": r, "render_s": time.perf_counter() - t0}  # fmt: skip
        common.LOGGER.info("rendered %s: %d images %dx%d (%s) in %.1f s", name, n, size, size,
                           style, out[name]["render_s"])  # fmt: skip
    return out


def _load_h36m_images(config: ml_collections.ConfigDict, *, heatmap_size: int) -> dict[str, Any]:
    """Real images (``data.source = "h36m"``; layout in ``experiments/configs/zhou_image.py``,
    loaders in :mod:`jpose.data.images`), in :func:`load_rendered`'s format: ``train_3d`` =
    ``h36m_train``, ``train_2d`` = ``mpii_train``, ``test_studio`` = ``h36m_test``, ``test_wild``
    = ``mpii_val`` (2D only: evaluated by PCKh; no 3D metrics). ``data.num_train_3d`` /
    ``num_train_2d`` / ``num_test`` cap the rows read (evenly spaced; 0 = all). The depth of the
    2D-only images is set to 0 (never used as a target)."""
    d = config.data
    kw = dict(image_size=int(d.image_size), padding=float(d.crop_padding))
    specs = {
        "train_3d": (images.load_h36m_crops, "train", int(d.num_train_3d)),
        "train_2d": (images.load_mpii_crops, "train", int(d.num_train_2d)),
        "test_wild": (images.load_mpii_crops, "val", int(d.num_test)),
        "test_studio": (images.load_h36m_crops, "test", int(d.num_test)),
    }
    out = {}
    for name, (load, split, cap) in specs.items():
        t0 = time.perf_counter()
        r, labels = load(d.image_root, split, max_examples=cap, **kw)
        arrays = image_labels(r, heatmap_size=heatmap_size)
        if load is images.load_mpii_crops:
            arrays["depth"] = np.zeros_like(arrays["depth"])
        out[name] = {"arrays": arrays, "labels": labels, "rendered": r,
                     "render_s": time.perf_counter() - t0}  # fmt: skip
        common.LOGGER.info("loaded %s: %d crops %dx%d in %.1f s", name, len(r), r.image.shape[1],
                           r.image.shape[2], out[name]["render_s"])  # fmt: skip
    return out


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Train (or resume) stage 1 and stages 2-3 of one ablation (or ``"all"``), evaluate, report.

    Returns:
      ``{ablation: {split: metrics}}`` plus timings.
    """
    wd = common.setup_workdir(workdir, config)
    if config.data.source not in ("rendered", "h36m"):
        raise ValueError(f"data.source must be 'rendered' or 'h36m', got {config.data.source!r}")
    ablations = list(ABLATIONS) if config.ablation == "all" else [str(config.ablation)]
    for a in ablations:
        if a not in ABLATIONS:
            raise ValueError(f"unknown ablation {a!r}; expected one of {ABLATIONS} or 'all'")
    m, t = config.model, config.train
    size = int(config.data.image_size)
    heatmap_size = size // 4
    t_data = time.perf_counter()
    if config.data.source == "h36m":
        splits = _load_h36m_images(config, heatmap_size=heatmap_size)
    else:
        splits = load_rendered(config, heatmap_size=heatmap_size)
    data_s = time.perf_counter() - t_data
    train3 = splits["train_3d"]["rendered"]
    canonical = np.asarray(kinematics.bone_lengths(train3.pose3d_cam[:, 0], layout=LAYOUT)).mean(0)
    avg_sum_length = float(np.asarray(
        kinematics.sum_bone_lengths(train3.pose3d_cam[:, 0], layout=LAYOUT)).mean())  # fmt: skip

    model = stacked_hourglass(
        num_joints=LAYOUT.num_joints, num_stacks=int(m.num_stacks), num_modules=int(m.num_modules),
        features=int(m.features), depth=int(m.depth), num_reg_modules=int(m.num_reg_modules),
        num_reg_pools=int(m.num_reg_pools),
    )  # fmt: skip
    tx = clipped(optax.adam(float(t.lr)), t.clip_norm)  # one optimiser for the whole run
    key = jax.random.key(int(config.seed))
    weights0 = stage_weights(ablations[0], stage=1, lambda_reg=0.0, lambda_geo=0.0)
    options = common.train_options(t)
    train_fields = ("image", "kp", "depth", "vis")
    data = {p: {f: splits[f"train_{p}"]["arrays"][f] for f in train_fields} for p in ("3d", "2d")}
    total_batch = int(t.batch_3d) + int(t.batch_2d)
    phases: dict[tuple[str, ...], list[Phase]] = {}  # one compiled block per batch composition

    def declare(index: int, parts: tuple[str, ...], weights: Any, init: Any) -> harness.Stage:
        if parts not in phases:
            phases[parts] = [make_phase(parts=parts, canonical_lengths=canonical,
                                        sigma=float(m.sigma))]  # fmt: skip
        return harness.Stage(
            f"stage{index}", phases=phases[parts],
            num_steps=harness.num_stage_steps(steps=int(config.stages[f"stage{index}"].steps),
                                              epochs=0.0, steps_per_epoch=1,
                                              steps_per_block=options.steps_per_block),
            batch_sizes={"3d": int(t.batch_3d), "2d": int(t.batch_2d)} if len(parts) == 2
            else {parts[0]: total_batch},
            # a stage continues the previous one's network and optimiser with its own weights
            init=lambda done: init(done).replace(step=jnp.zeros((), jnp.int32), extra=weights),
            key=jax.random.fold_in(key, 100 + index), samples_per_step=total_batch,
        )  # fmt: skip

    def init_stage1(done: Mapping[str, Any]) -> Any:
        example = normalize_images(jnp.asarray(splits["train_3d"]["arrays"]["image"][:2]))
        player = create_player(model, tx, jax.random.fold_in(key, 1), example)
        return create_train_state({"net": player}).replace(extra=weights0)

    timings: dict[str, float] = {"render_s": data_s}
    # stage 1 draws the mixed batch of the 3d+2d ablations (one compiled step for both) but
    # only the 2D-only images are supervised (hm_3d = 0): the paper's MPII pre-training
    compiled: dict[str, Any] = {}  # stage 1's block serves the 3d+2d ablations' stages 2-3
    s1 = harness.run_stages([declare(1, ("3d", "2d"), weights0, init_stage1)], data, workdir=wd,
                            options=options, start_index=1,
                            compiled=compiled).stages["stage1"]  # fmt: skip
    timings["stage1_s"] = s1.wall_s
    results: dict[str, Any] = {}
    lr, lg = float(t.lambda_reg), float(t.lambda_geo)
    test_splits = {"test_wild": "test_wild", "test_studio": "test_studio", "train_2d": "train_2d"}
    for a in ablations:
        a_wd = wd if len(ablations) == 1 else wd / _slug(a)
        a_wd.mkdir(parents=True, exist_ok=True)
        parts = ("3d", "2d") if "2d" in a else ("3d",)
        # the compiled steps donate their input state: every ablation starts from a copy
        declared = [
            declare(2, parts, stage_weights(a, stage=2, lambda_reg=lr, lambda_geo=lg),
                    lambda done: jax.tree_util.tree_map(jnp.copy, s1.state)),
            declare(3, parts, stage_weights(a, stage=3, lambda_reg=lr, lambda_geo=lg),
                    lambda done: done["stage2"]),
        ]  # fmt: skip
        trained = harness.run_stages(declared, data, workdir=a_wd, options=options, start_index=2,
                                     step_offset=s1.num_steps, compiled=compiled)  # fmt: skip
        state = trained.state
        walls = {f"{n}_s": r.wall_s for n, r in trained.stages.items()}
        t_eval = time.perf_counter()
        evals, tables = {}, {}
        predict = predict_fn(state)
        for split, key_name in test_splits.items():
            sp = splits[key_name]
            # h36m source: test_wild = MPII val has no 3D (NaN), so only its 2D is evaluated
            prefix = "rendered " if config.data.source == "rendered" else ""
            has3 = split.startswith("test") and bool(np.isfinite(sp["rendered"].pose3d_cam).all())
            ev = evaluate_split(
                predict, sp["arrays"], labels=sp["labels"], name=f"{prefix}{split}",
                pose3d=sp["rendered"].pose3d_cam[:, 0] if has3 else None,
                avg_sum_length=avg_sum_length, heatmap_size=heatmap_size,
                batch_size=int(config.eval.batch_size),
                pckh_threshold=float(config.eval.pckh_threshold),
            )  # fmt: skip
            if "eval3d" in ev:
                evals[split] = ev["eval3d"]
                tables[f"{split}: left/right bone-length difference (mm, Table 4)"] = {
                    "prediction": ev["symmetry_mm"],
                    "ground truth": ev["symmetry_gt_mm"],
                }
            tables[f"{split}: left/right bone-length difference (256-px crop units)"] = {
                "prediction": ev["symmetry_crop_px"]
            }
            tables[f"{split}: 2D PCKh@{config.eval.pckh_threshold} (2D module)"] = {
                "PCKh": {"all": ev["pckh"]["pckh"]}
            }
            results.setdefault(a, {})[split] = {
                "pckh": ev["pckh"]["pckh"],
                **({"mpjpe_mm": ev["eval3d"]["metrics"]["mpjpe"]["frame_wise"],
                    "p_mpjpe_mm": ev["eval3d"]["metrics"]["p_mpjpe"]["frame_wise"],
                    "sym_mm": ev["symmetry_mm"]["mean"]} if "eval3d" in ev else
                   {"sym_crop_px": ev["symmetry_crop_px"]["mean"]}),
            }  # fmt: skip
        walls["eval_s"] = time.perf_counter() - t_eval
        header = common.ResultsHeader(
            experiment=f"zhou_image (Zhou et al. ICCV 2017, image form), ablation {a}",
            dataset=(f"rendered by jpose.data.render from {config.data.poses} poses: train_3d "
                     f"{config.data.num_train_3d} {config.data.style_3d} images (3D), train_2d "
                     f"{config.data.num_train_2d} {config.data.style_2d} images (2D only)"
                     if config.data.source == "rendered" else
                     f"Human3.6M frames (3D) + MPII images (2D only) from {config.data.image_root}"
                     f" ({len(train3)} 3D crops)"),
            source_2d="the network's own 2D module (heatmap arg-max)",
            protocol=("MPJPE after Zhou's skeleton rescale (sec. 4.1.2, avg. training sum of "
                      "bone lengths), root-relative; P-MPJPE similarity-aligned; mm; rendered "
                      "test splits with fresh people and cameras"),
            options={"ablation": a, "image_size": size, "heatmap": heatmap_size,
                     "features": m.features, "stacks": m.num_stacks, "modules": m.num_modules,
                     "steps": "/".join(str(st.steps) for st in config.stages.values()),
                     "batch": f"{t.batch_3d}+{t.batch_2d}"},
            checkpoint={"stage1": s1.num_steps,
                        **{n: r.num_steps for n, r in trained.stages.items()}},
            model_selection="final checkpoint of each stage (no selection on the test splits)",
            notes=["CPU-scaled schedule and network; rendered images, not the paper's data."
                   if config.data.source == "rendered" else "user-provided images"],
        )  # fmt: skip
        figs = {}
        if int(config.eval.num_figure_images) > 0:
            figs["test_wild_predictions"] = functools.partial(
                _prediction_figure,
                splits["test_wild"],
                predict=predict,
                n=int(config.eval.num_figure_images),
                heatmap_size=heatmap_size,
            )
            figs["training_curves"] = lambda a_wd=a_wd: common.training_curves_figure(a_wd)
        written = common.write_figures(a_wd, figs) if figs else []
        common.write_results(a_wd, header=header, evaluations=evals, extra_tables=tables,
                             extra={"timings_s": {**timings, **walls}, "figures": written,
                                    "summary": results[a]})  # fmt: skip
        timings.update({f"{a}/{k}": v for k, v in walls.items()})
    if len(ablations) > 1:
        _write_ablation_table(wd, results, timings)
    return {"results": results, "timings_s": timings}


def _prediction_figure(split: Mapping[str, Any], *, predict: Any, n: int, heatmap_size: int) -> Any:
    from jpose import viz

    plt = viz.pyplot()
    arrays = split["arrays"]
    pred = jeval.batched_apply(predict, arrays["image"][:n], batch_size=n)["kp"]
    size = arrays["image"].shape[1]
    stride = size / heatmap_size
    fig, axes = plt.subplots(2, max(1, n // 2), figsize=(2 * max(1, n // 2), 4.2))
    for i, ax in enumerate(np.ravel(axes)[:n]):
        ax.imshow(arrays["image"][i])
        px = (pred[i] + 0.5) * stride - 0.5
        gt = (arrays["kp"][i] + 0.5) * stride - 0.5
        for a_, b_ in LAYOUT.bones:
            ax.plot(px[[a_, b_], 0], px[[a_, b_], 1], "w-", lw=1)
        ax.plot(gt[:, 0], gt[:, 1], "k.", ms=2)
        ax.set_axis_off()
    fig.suptitle("test_wild: predicted 2D (white) vs ground truth (black dots)")
    return fig


def _write_ablation_table(wd: pathlib.Path, results: Mapping[str, Any],
                          timings: Mapping[str, float]) -> None:  # fmt: skip
    import json

    rows = {}
    for a, r in results.items():
        rows[a] = {
            "wild MPJPE": r["test_wild"].get("mpjpe_mm", float("nan")),  # nan: no 3D (MPII)
            "wild P-MPJPE": r["test_wild"].get("p_mpjpe_mm", float("nan")),
            "studio MPJPE": r["test_studio"]["mpjpe_mm"],
            "studio P-MPJPE": r["test_studio"]["p_mpjpe_mm"],
            "wild PCKh %": 100 * r["test_wild"]["pckh"],
            "studio PCKh %": 100 * r["test_studio"]["pckh"],
            "wild sym (mm)": r["test_wild"].get("sym_mm", float("nan")),
            "2D-only sym (crop px)": r["train_2d"]["sym_crop_px"],
        }  # fmt: skip
    table = jm.format_table(rows, title="## Zhou image ablations (rendered data; mm, PCKh@0.5)",
                            row_header="ablation")  # fmt: skip
    (wd / "ablations.md").write_text(table + "\n\nTimings (s): " + json.dumps(
        {k: round(v, 1) for k, v in timings.items()}) + "\n")  # fmt: skip
    (wd / "ablations.json").write_text(json.dumps({"results": results, "timings_s": timings},
                                                  indent=2, default=float))  # fmt: skip


if __name__ == "__main__":
    common.cli(run, default_config=common.config_path("zhou_image"))
