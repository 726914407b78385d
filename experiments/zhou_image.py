"""Zhou et al. (ICCV 2017), image form: stacked hourglass 2D module + depth-regression module,
trained end to end on mixed batches of 3D-labelled and 2D-only images.

``python -m experiments.zhou_image --workdir=DIR [--config=experiments/configs/zhou_image.py:P]``

Paper mapping: network :func:`jpose.models.hourglass.stacked_hourglass` (sec. 3.3, 4.1.1);
targets :func:`jpose.data.image_targets.zhou_targets`; loss eq. 4 (eqs. 1-3)
:func:`jpose.image_losses.zhou_image_loss`, weights per ablation (Table 2) and stage
(:func:`jpose.image_losses.zhou_image_loss_weights`, in ``state.extra``: one compiled step serves
every stage and ablation). Stages (sec. 3.4): 1 = 2D module on the 2D-only images (shared by the
ablations, as the paper pre-trains on MPII), 2 = whole network with ``lambda_geo = 0``, 3 = with
the geometric loss. Evaluation :func:`jpose.image_evaluation.zhou_image_evaluation`: PCKh, MPJPE
/ P-MPJPE after the skeleton rescale (sec. 4.1.2), Table 4's left/right bone-length differences.
"""

from __future__ import annotations

import functools
import json
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
from jpose import kinematics, skeleton
from jpose import metrics as jm
from jpose.data import images, render
from jpose.data.image_targets import zhou_targets
from jpose.data.images import normalize_images
from jpose.image_evaluation import crop_keypoints_figure, zhou_image_evaluation, zhou_predictor
from jpose.image_losses import zhou_image_loss, zhou_image_loss_weights
from jpose.models.hourglass import stacked_hourglass
from jpose.training import Phase, PhaseContext, clipped, create_player, create_train_state, rundir
from jpose.training import stages as harness

__all__ = ["LAYOUT", "load_splits", "make_phase", "run"]

LAYOUT = skeleton.H36M17


def load_splits(config: ml_collections.ConfigDict, *, heatmap_size: int) -> dict[str, Any]:
    """The splits ``train_3d`` (3D-labelled), ``train_2d`` (2D only), ``test_wild`` and
    ``test_studio``, each ``{"arrays", "labels", "rendered", "render_s"}``: crops rendered from
    pose pools (studio style and pose mix for the 3D sets, wild for the others), or
    (``data.source = "h36m"``, layout in ``experiments/configs/zhou_image.py``) h36m_train,
    mpii_train (2D only, depth 0), mpii_val (2D only; the one split without 3D metrics) and
    h36m_test; ``data.num_*`` size the splits (real files: evenly spaced rows, 0 = all)."""
    d, seed, size = config.data, int(config.seed), int(config.data.image_size)
    specs = {  # name: (studio / 3D-labelled, pool split, size, seed offset)
        "train_3d": (True, "train", int(d.num_train_3d), 1),
        "train_2d": (False, "train", int(d.num_train_2d), 2),
        "test_wild": (False, "test", int(d.num_test), 3),
        "test_studio": (True, "test", int(d.num_test), 4),
    }
    out = {}
    for name, (studio, split, n, s) in specs.items():
        t0 = time.perf_counter()
        if d.source == "h36m":
            load = images.load_h36m_crops if studio else images.load_mpii_crops
            file_split = split if studio or split == "train" else "val"
            r, labels = load(d.image_root, file_split, max_examples=n, image_size=size,
                             padding=float(d.crop_padding))  # fmt: skip
        else:
            mix, style = (d.mix_3d, d.style_3d) if studio else (d.mix_2d, d.style_2d)
            pool = images.pose_pool(split=split, mix=mix, seed=seed * 1000 + s,
                                    **{k: d[k] for k in images.POSE_POOL_OPTIONS})  # fmt: skip
            cfg = render.RenderConfig(image_size=size, framing="crop", style=style)
            r = render.render_images(pool.poses, num_images=n, config=cfg,
                                     seed=seed * 1000 + 10 + s)  # fmt: skip
            labels = pool.labels[r.pose_index[:, 0]]
        arrays = zhou_targets(r, heatmap_size=heatmap_size)
        if d.source == "h36m" and not studio:
            arrays["depth"] = np.zeros_like(arrays["depth"])
        out[name] = {"arrays": arrays, "labels": labels, "rendered": r,
                     "render_s": time.perf_counter() - t0}  # fmt: skip
        common.LOGGER.info("%s %s: %d images %dx%d in %.1f s", d.source, name, len(r),
                           r.image.shape[1], r.image.shape[2], out[name]["render_s"])  # fmt: skip
    return out


def make_phase(*, parts: tuple[str, ...], canonical_lengths: np.ndarray, sigma: float) -> Phase:
    """The single training phase (player ``net``) for batches with the given ``parts``
    (``"3d"``: 3D-labelled images, ``"2d"``: 2D-only images), weights from ``state.extra``."""
    canon = jnp.asarray(canonical_lengths, jnp.float32)

    def loss_fn(ctx: PhaseContext, batch: Mapping[str, Any]) -> tuple[jax.Array, dict]:
        images = jnp.concatenate([batch[p]["image"] for p in parts])
        kp = jnp.concatenate([batch[p]["kp"] for p in parts])
        vis = jnp.concatenate([batch[p]["vis"] for p in parts])
        n3 = batch["3d"]["image"].shape[0] if "3d" in parts else 0
        has_depth = jnp.arange(images.shape[0]) < n3
        target = jnp.concatenate(
            [batch[p]["depth"] if p == "3d" else jnp.zeros_like(batch[p]["vis"]) for p in parts]
        )
        out = ctx.apply("net", normalize_images(images))
        return zhou_image_loss(out["heatmaps"], out["depth"], kp, vis, target, has_depth,
                               ctx.extra, canonical_lengths=canon, sigma=sigma)  # fmt: skip

    return Phase("zhou", ("net",), loss_fn)


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Train (or resume) stage 1 and stages 2-3 of one ablation (or ``"all"``: each in its own
    sub-directory, with ``ablations.{md,json}``), evaluate, report; returns
    ``{"results": {ablation: {split: metrics}}, "timings_s": {...}}``."""
    t_start = time.perf_counter()
    wd = common.setup_workdir(workdir, config)
    if config.data.source not in ("rendered", "h36m"):
        raise ValueError(f"data.source must be 'rendered' or 'h36m', got {config.data.source!r}")
    ablations = list(ABLATIONS) if config.ablation == "all" else [str(config.ablation)]
    for a in ablations:
        if a not in ABLATIONS:
            raise ValueError(f"unknown ablation {a!r}; expected one of {ABLATIONS} or 'all'")
    d, m, t, ec = config.data, config.model, config.train, config.eval
    heatmap_size = int(d.image_size) // 4
    splits = load_splits(config, heatmap_size=heatmap_size)
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
    weights0 = zhou_image_loss_weights(ablations[0], stage=1, lambda_reg=0.0, lambda_geo=0.0)
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

    # stage 1 draws the mixed batch of the 3d+2d ablations (one compiled step for both) but
    # only the 2D-only images are supervised (hm_3d = 0): the paper's MPII pre-training
    compiled: dict[str, Any] = {}  # stage 1's block serves the 3d+2d ablations' stages 2-3
    stage1 = harness.run_stages([declare(1, ("3d", "2d"), weights0, init_stage1)], data,
                                workdir=wd, options=options, start_index=1,
                                compiled=compiled)  # fmt: skip
    s1 = stage1.stages["stage1"]
    timings = {"stage1_s": s1.wall_s}
    results: dict[str, Any] = {}
    lr, lg = float(t.lambda_reg), float(t.lambda_geo)
    rendered = d.source == "rendered"
    prefix = "rendered " if rendered else ""
    for a in ablations:
        a_wd = wd if len(ablations) == 1 else wd / re.sub(r"[^a-zA-Z0-9]+", "_", a).strip("_")
        a_wd.mkdir(parents=True, exist_ok=True)
        parts = ("3d", "2d") if "2d" in a else ("3d",)
        w2, w3 = (zhou_image_loss_weights(a, stage=s, lambda_reg=lr, lambda_geo=lg) for s in (2, 3))
        # the compiled steps donate their input state: every ablation starts from a copy
        declared = [
            declare(2, parts, w2, lambda done: jax.tree_util.tree_map(jnp.copy, s1.state)),
            declare(3, parts, w3, lambda done: done["stage2"]),
        ]
        trained = harness.run_stages(declared, data, workdir=a_wd, options=options, start_index=2,
                                     step_offset=s1.num_steps, compiled=compiled)  # fmt: skip
        timings.update({f"{a}/{n}_s": r.wall_s for n, r in trained.stages.items()})
        evals, tables, res = {}, {}, results.setdefault(a, {})
        player = trained.state.players["net"]
        predict = zhou_predictor(player.model, player.variables())
        for split in ("test_wild", "test_studio", "train_2d"):
            sp = splits[split]
            # h36m source: test_wild = MPII val has no 3D (NaN), so only its 2D is evaluated
            has3 = split.startswith("test") and bool(np.isfinite(sp["rendered"].pose3d_cam).all())
            pred = jeval.batched_apply(predict, sp["arrays"]["image"],
                                       batch_size=int(ec.batch_size))  # fmt: skip
            ev = zhou_image_evaluation(
                pred, sp["arrays"], labels=sp["labels"], name=f"{prefix}{split}",
                pose3d=sp["rendered"].pose3d_cam[:, 0] if has3 else None,
                avg_sum_length=avg_sum_length, heatmap_size=heatmap_size,
                pckh_threshold=float(ec.pckh_threshold),
            )  # fmt: skip
            res[split] = {"pckh": ev["pckh"]["pckh"]}
            if "eval3d" in ev:
                evals[split], metrics = ev["eval3d"], ev["eval3d"]["metrics"]
                tables[f"{split}: left/right bone-length difference (mm, Table 4)"] = {
                    "prediction": ev["symmetry_mm"], "ground truth": ev["symmetry_gt_mm"],
                }  # fmt: skip
                res[split].update(mpjpe_mm=metrics["mpjpe"]["frame_wise"],
                                  p_mpjpe_mm=metrics["p_mpjpe"]["frame_wise"],
                                  sym_mm=ev["symmetry_mm"]["mean"])  # fmt: skip
            else:
                res[split]["sym_crop_px"] = ev["symmetry_crop_px"]["mean"]
            tables[f"{split}: left/right bone-length difference (256-px crop units)"] = {
                "prediction": ev["symmetry_crop_px"]
            }
            tables[f"{split}: 2D PCKh@{ec.pckh_threshold} (2D module)"] = {
                "PCKh": {"all": ev["pckh"]["pckh"]}
            }
        header = common.ResultsHeader(
            experiment=f"zhou_image (Zhou et al. ICCV 2017, image form), ablation {a}",
            dataset=(f"rendered by jpose.data.render from {d.poses} poses: train_3d "
                     f"{d.num_train_3d} {d.style_3d} images (3D), train_2d "
                     f"{d.num_train_2d} {d.style_2d} images (2D only)" if rendered else
                     f"Human3.6M frames (3D) + MPII images (2D only) from {d.image_root}"
                     f" ({len(train3)} 3D crops)"),
            source_2d="the network's own 2D module (heatmap arg-max)",
            protocol=("MPJPE after Zhou's skeleton rescale (sec. 4.1.2, avg. training sum of "
                      "bone lengths), root-relative; P-MPJPE similarity-aligned; mm; rendered "
                      "test splits with fresh people and cameras"),
            options={"ablation": a, "image_size": d.image_size, "heatmap": heatmap_size,
                     "features": m.features, "stacks": m.num_stacks, "modules": m.num_modules,
                     "steps": "/".join(str(st.steps) for st in config.stages.values()),
                     "batch": f"{t.batch_3d}+{t.batch_2d}"},
            checkpoint={"stage1": s1.num_steps,
                        **{n: r.num_steps for n, r in trained.stages.items()}},
            model_selection="final checkpoint of each stage (no selection on the test splits)",
            notes=["CPU-scaled schedule and network; rendered images, not the paper's data."
                   if rendered else "user-provided images"],
        )  # fmt: skip
        n_fig = int(ec.num_figure_images)
        wild = functools.partial(_prediction_figure, splits["test_wild"]["arrays"], predict=predict,
                                 n=n_fig, heatmap_size=heatmap_size)  # fmt: skip
        figs = {
            "test_wild_predictions": wild,
            "training_curves": functools.partial(common.training_curves_figure, a_wd),
        }
        common.write_results(a_wd, header=header, evaluations=evals, extra_tables=tables, extra={
            "stages": {**stage1.summary(), **trained.summary()},
            "timings": {"train_wall_s": s1.wall_s + trained.wall_s,
                        "total_wall_s": time.perf_counter() - t_start},
            "summary": res,
            "figures": common.write_figures(a_wd, figs) if n_fig > 0 else [],
        })  # fmt: skip
    if len(ablations) > 1:  # the ablation table
        nan, rows = float("nan"), {}  # nan: the wild 3D columns without 3D (MPII val, h36m source)
        for a, r in results.items():
            rows[a] = {
                "wild MPJPE": r["test_wild"].get("mpjpe_mm", nan),
                "wild P-MPJPE": r["test_wild"].get("p_mpjpe_mm", nan),
                "studio MPJPE": r["test_studio"]["mpjpe_mm"],
                "studio P-MPJPE": r["test_studio"]["p_mpjpe_mm"],
                "wild PCKh %": 100 * r["test_wild"]["pckh"],
                "studio PCKh %": 100 * r["test_studio"]["pckh"],
                "wild sym (mm)": r["test_wild"].get("sym_mm", nan),
                "2D-only sym (crop px)": r["train_2d"]["sym_crop_px"],
            }
        table = jm.format_table(rows, title="## Zhou image ablations (rendered data; mm, PCKh@0.5)",
                                row_header="ablation")  # fmt: skip
        (wd / "ablations.md").write_text(table + "\n\nTimings (s): " + json.dumps(
            {k: round(v, 1) for k, v in timings.items()}) + "\n")  # fmt: skip
        (wd / "ablations.json").write_text(json.dumps({"results": results, "timings_s": timings},
                                                      indent=2, default=float))  # fmt: skip
        # the run is the top level; the ablations' folders hold results, not runs
        rundir.mark_run_finished(wd)
    return {"results": results, "timings_s": timings}


def _prediction_figure(arrays: Mapping[str, np.ndarray], *, predict: Any, n: int,
                       heatmap_size: int) -> Any:  # fmt: skip
    pred = jeval.batched_apply(predict, arrays["image"][:n], batch_size=n)["kp"]
    return crop_keypoints_figure(
        arrays["image"][:n], pred, arrays["kp"][:n], stride=arrays["image"].shape[1] / heatmap_size,
        layout=LAYOUT, title="test_wild: predicted 2D (white) vs ground truth (black dots)",
    )  # fmt: skip


if __name__ == "__main__":
    common.cli(run, default_config=common.config_path("zhou_image"))
