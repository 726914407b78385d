"""WSP (Qiu et al.) image network: relative-depth pre-training on multi-person images, then 3D
fine-tuning (3D heatmap head + integral regression), compared with training from scratch.

``python -m experiments.wsp_image --workdir=DIR [--config=experiments/configs/wsp_image.py:P]``
(``experiments.wsp --config=experiments/configs/wsp.py:image`` runs it too).

Paper mapping: network :func:`jpose.models.resnet.wsp_net` (ResNet, 3 deconvolutions, heatmap
head; eq. 5 pooling, eq. 6 relative-depth head; 3D heatmap head of eqs. 11-12). Stage
``pretrain``: eqs. 8-10, :func:`jpose.image_losses.wsp_pretrain_loss` on
:func:`jpose.data.image_targets.wsp_pretrain_arrays` (labels ``data.rd_labels``: ``"ankle"`` =
eqs. 1-4, 7 on the 2D joints, ``"depth"`` = the true depth order). Stages
``finetune_pretrained`` / ``finetune_scratch``: eq. 12, :func:`jpose.image_losses.wsp_finetune_loss`
from the pre-trained backbone and deconvolution head or from scratch, same data, steps and seed
(the paper's Table 4 question). Evaluation (:mod:`jpose.image_evaluation`): relative depth by
ΔS (RD protocol 1, eq. 14) against the true order and the ankle labels, with the chance level;
3D MPJPE / P-MPJPE / ``MPJPE_X/Y/Z`` on single-person test crops.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from experiments import common
from jpose import evaluation as jeval
from jpose import skeleton
from jpose.data import images, render
from jpose.data.image_targets import wsp_finetune_arrays, wsp_pretrain_arrays
from jpose.data.images import PosePool, normalize_images
from jpose.image_evaluation import relative_depth_by_scale_gap, wsp_3d_evaluation, wsp_predictor
from jpose.image_losses import wsp_finetune_loss, wsp_pretrain_loss
from jpose.models.resnet import heatmap_stride, load_flat_weights, transfer_params, wsp_net
from jpose.training import (
    Phase,
    PhaseContext,
    clipped,
    create_player,
    create_train_state,
    schedule_from_config,
)
from jpose.training import stages as harness

__all__ = [
    "LAYOUT",
    "load_arrays",
    "make_pretrain_phase",
    "make_finetune_phase",
    "stage_schedule",
    "load_init_checkpoint",
    "run",
]

LAYOUT = skeleton.H36M17


def make_pretrain_phase(*, alpha: float, num_selected: int, sigma: float, squared: bool
                        ) -> Phase:  # fmt: skip
    """Pre-training phase (player ``net``, batch ``{"pre": arrays}``): ``L_hm + alpha L_rd``
    (WSP eqs. 8-10)."""

    def loss_fn(ctx: PhaseContext, batch: Mapping[str, Any]) -> tuple[jax.Array, dict]:
        batch = batch["pre"]
        out = ctx.apply("net", normalize_images(batch["image"]), batch["boxes"], batch["pairs"])
        return wsp_pretrain_loss(
            out["heatmaps"], out["logits"], batch["kp"], batch["vis"], batch["labels"],
            batch["label_valid"], ctx.next_key(), alpha=alpha, num_selected=num_selected,
            sigma=sigma, squared=squared,
        )  # fmt: skip

    return Phase("pretrain", ("net",), loss_fn)


def make_finetune_phase() -> Phase:
    """Fine-tuning phase (player ``net3d``, batch ``{"ft": arrays}``): L1 on the
    integral-regression coordinates (eq. 12)."""

    def loss_fn(ctx: PhaseContext, batch: Mapping[str, Any]) -> tuple[jax.Array, dict]:
        out = ctx.apply("net3d", normalize_images(batch["ft"]["image"]))
        return wsp_finetune_loss(out["coords3d"], batch["ft"]["coords"])

    return Phase("finetune", ("net3d",), loss_fn)


def stage_schedule(
    stage: ml_collections.ConfigDict,
    *,
    num_examples: int,
    batch_size: int,
    steps_per_block: int = 1,
) -> tuple[int, optax.Schedule]:
    """Steps and learning-rate schedule of a ``config.stages.<name>`` block.

    WSP (Qiu et al. Sec. 4): pre-training lr 1e-3, x0.1 at epochs 30 and 40 of 50; fine-tuning
    lr 1e-3, x0.1 at epochs 17 and 21 of 25 (batch 64). ``steps > 0`` sets the stage length in
    steps, else ``epochs`` over its ``num_examples``; ``boundaries`` are epochs (x ``factor``).

    Returns:
      ``(num_steps rounded up to a multiple of steps_per_block, schedule of the iteration)``.
    """
    spe = max(1, int(num_examples) // int(batch_size))
    steps = common.stage_num_steps(stage, steps_per_epoch=spe, steps_per_block=steps_per_block)
    return steps, schedule_from_config(stage, steps_per_epoch=spe)


def load_init_checkpoint(path: str, player: Any) -> Any:
    """``player`` with its ResNet backbone loaded from ``path`` (``model.init_checkpoint``).

    The file is an ``.npz`` of the backbone's variables in flax's flat form
    (:func:`jpose.models.resnet.load_flat_weights`: ``"params/stem_conv/kernel"``,
    ``"batch_stats/stem_bn/mean"``, ...), e.g. ImageNet weights converted once by the user; the
    network's ``resnet_depth`` / ``width`` / ``stem`` must match them. The optimiser state is
    re-initialised for the new parameters.
    """
    with np.load(path) as npz:
        flat = {k: npz[k] for k in npz.files}
    params, stats, report = load_flat_weights(flat, player.params, player.batch_stats)
    ignored = report["ignored"]
    common.LOGGER.info(
        "init_checkpoint %s: %d backbone arrays loaded, %d entries ignored %s",
        path, report["loaded"], len(ignored), ignored[:5],
    )  # fmt: skip
    return player.with_variables(params, stats)


def _render(pool: PosePool, *, n: int, cfg: render.RenderConfig, seed: int):
    t0 = time.perf_counter()
    r = render.render_images(pool.poses, num_images=n, config=cfg, seed=seed)
    return r, time.perf_counter() - t0


def load_arrays(config: ml_collections.ConfigDict, *, stride: int
                ) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, float]]:  # fmt: skip
    """The arrays of the four sets, ``{"pre", "rd_test"}`` (multi-person,
    :func:`jpose.data.image_targets.wsp_pretrain_arrays`) and ``{"ft", "test"}`` (single-person
    crops, :func:`jpose.data.image_targets.wsp_finetune_arrays`), and the timings.

    ``data.source = "rendered"``: scenes and crops rendered from fresh pose pools (train / test).
    ``"real"`` (layout in ``experiments/configs/wsp_image.py``, loaders in
    :mod:`jpose.data.images`): pairs_train / pairs_val, whose eq. 7 labels train and are the
    reference order (the ankle rule is recomputed on the 2D), and h36m_train / h36m_test.
    """
    d, m = config.data, config.model
    seed, size = int(config.seed), int(d.image_size)
    timings: dict[str, float] = {}
    ft_kw = dict(stride=stride, depth_bins=int(m.depth_bins), depth_range_m=float(m.depth_range_m))
    if d.source == "real":
        if d.rd_labels != "ankle":
            raise ValueError(
                "data.source='real' trains on the pair file's labels; "
                f"data.rd_labels={d.rd_labels!r} needs depth (rendered only)"
            )
        t0 = time.perf_counter()
        kw = dict(image_size=size, padding=float(d.crop_padding))
        r_pre, lab_pre = images.load_pair_crops(d.image_root, "train",
                                                max_examples=int(d.num_pretrain), **kw)  # fmt: skip
        r_rd, lab_rd = images.load_pair_crops(d.image_root, "val",
                                              max_examples=int(d.num_rd_test), **kw)  # fmt: skip
        r_ft, _ = images.load_h36m_crops(d.image_root, "train",
                                         max_examples=int(d.num_finetune), **kw)  # fmt: skip
        r_te, _ = images.load_h36m_crops(d.image_root, "test", max_examples=int(d.num_test), **kw)
        pre = wsp_pretrain_arrays(r_pre, stride=stride, rd_labels="ankle")
        pre.update(images.pair_label_arrays(lab_pre, pre["pairs"]))
        rd_test = wsp_pretrain_arrays(r_rd, stride=stride, rd_labels="ankle")
        rd_test.update(images.pair_label_arrays(lab_rd, rd_test["pairs"]))
        timings["load_images_s"] = time.perf_counter() - t0
    else:
        pool_options = {k: d[k] for k in images.POSE_POOL_OPTIONS}
        pool_train = images.pose_pool(
            split="train", mix=d.mix, seed=seed * 1000 + 1, **pool_options
        )
        pool_test = images.pose_pool(split="test", mix=d.mix, seed=seed * 1000 + 2, **pool_options)
        scene = render.RenderConfig(image_size=size, framing="scene", people=tuple(d.people),
                                    distance_range=tuple(d.distance_range),
                                    style=d.style)  # fmt: skip
        crop = render.RenderConfig(image_size=size, framing="crop", style=d.style)
        r_pre, timings["render_pretrain_s"] = _render(pool_train, n=int(d.num_pretrain),
                                                      cfg=scene, seed=seed * 1000 + 11)  # fmt: skip
        r_rd, _ = _render(pool_test, n=int(d.num_rd_test), cfg=scene, seed=seed * 1000 + 12)
        r_ft, timings["render_finetune_s"] = _render(pool_train, n=int(d.num_finetune), cfg=crop,
                                                     seed=seed * 1000 + 13)  # fmt: skip
        r_te, _ = _render(pool_test, n=int(d.num_test), cfg=crop, seed=seed * 1000 + 14)
        pre = wsp_pretrain_arrays(r_pre, stride=stride, rd_labels=str(d.rd_labels))
        rd_test = wsp_pretrain_arrays(r_rd, stride=stride, rd_labels=str(d.rd_labels))
    arrays = {"pre": pre, "rd_test": rd_test, "ft": wsp_finetune_arrays(r_ft, **ft_kw),
              "test": wsp_finetune_arrays(r_te, **ft_kw)}  # fmt: skip
    common.LOGGER.info("%s: pretrain %d, rd test %d, finetune %d, test %d (%.1f s)", d.source,
                       len(r_pre), len(r_rd), len(r_ft), len(r_te),
                       sum(timings.values()))  # fmt: skip
    common.LOGGER.info(
        "ankle-rule labels agree with the true depth order on %.1f %% of the "
        "training pairs' joints",
        100 * float((pre["labels_ankle"] == pre["labels_depth"])[pre["ankle_valid"]].mean()),
    )
    return arrays, timings


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Pre-train (or resume), fine-tune from the pre-trained weights and from scratch, evaluate,
    report.

    Returns:
      ``{"relative_depth": table, "finetune": {init: summary}, "timings_s": ...}``.
    """
    wd = common.setup_workdir(workdir, config)
    if config.data.source not in ("rendered", "real"):
        raise ValueError(f"data.source must be 'rendered' or 'real', got {config.data.source!r}")
    d, m, t = config.data, config.model, config.train
    seed, size = int(config.seed), int(d.image_size)
    stride = heatmap_stride(resnet_depth=int(m.resnet_depth), stem=str(m.stem),
                            deconv_layers=int(m.deconv_layers))  # fmt: skip
    ft_kw = dict(stride=stride, depth_bins=int(m.depth_bins), depth_range_m=float(m.depth_range_m))
    arrays, timings = load_arrays(config, stride=stride)
    pre, ft = arrays["pre"], arrays["ft"]

    net_kw = dict(num_joints=LAYOUT.num_joints, resnet_depth=int(m.resnet_depth),
                  width=int(m.width), stem=str(m.stem), deconv_layers=int(m.deconv_layers),
                  deconv_features=int(m.deconv_features))  # fmt: skip
    model_pre = wsp_net(heads=("heatmap", "relative_depth"), pool_normalize=str(m.pool_normalize),
                        rd_hidden=tuple(m.rd_hidden), **net_kw)  # fmt: skip
    model_3d = wsp_net(heads=("heatmap3d",), depth_bins=int(m.depth_bins), **net_kw)
    key = jax.random.key(seed)
    options = common.train_options(t)
    bs = int(t.batch_size)
    # the paper's epochs and decays where configured (real preset), else CPU steps at constant lr
    pre_steps, pre_sched = stage_schedule(
        config.stages.pretrain,
        num_examples=len(pre["image"]),
        batch_size=bs,
        steps_per_block=options.steps_per_block,
    )
    ft_steps, ft_sched = stage_schedule(
        config.stages.finetune,
        num_examples=len(ft["image"]),
        batch_size=bs,
        steps_per_block=options.steps_per_block,
    )
    tx_pre, tx_ft = (clipped(optax.adam(sched), t.clip_norm) for sched in (pre_sched, ft_sched))
    init_ckpt = str(m.init_checkpoint)
    copy = lambda tree: jax.tree_util.tree_map(jnp.copy, tree)  # noqa: E731 - steps donate

    def init_pretrain(done: Mapping[str, Any]) -> Any:
        ex = [jnp.asarray(pre[f][:2]) for f in ("image", "boxes", "pairs")]
        player = create_player(model_pre, tx_pre, jax.random.fold_in(key, 1),
                               normalize_images(ex[0]), *ex[1:])  # fmt: skip
        if init_ckpt:  # ImageNet (or any user) ResNet weights for the backbone
            player = load_init_checkpoint(init_ckpt, player)
        return create_train_state({"net": player})

    def init_finetune(done: Mapping[str, Any], *, how: str) -> Any:
        fresh = create_player(model_3d, tx_ft, jax.random.fold_in(key, 2),
                              normalize_images(jnp.asarray(ft["image"][:2])))  # fmt: skip
        if init_ckpt:  # the "scratch" baseline starts from the same ImageNet backbone
            fresh = load_init_checkpoint(init_ckpt, fresh)
        if how == "pretrained":
            pre_player = done["pretrain"].players["net"]
            params = copy(transfer_params(pre_player.params, fresh.params))
            stats = copy(transfer_params(pre_player.batch_stats, fresh.batch_stats))
            fresh = fresh.with_variables(params, stats)
        return create_train_state({"net3d": fresh})

    phase_ft = [make_finetune_phase()]  # one compiled block for both initialisations
    declared = [harness.Stage(
        "pretrain", phases=[make_pretrain_phase(alpha=float(t.alpha),
                                                num_selected=int(t.num_selected),
                                                sigma=float(m.sigma),
                                                squared=bool(t.heatmap_squared))],
        num_steps=pre_steps, batch_sizes={"pre": bs}, init=init_pretrain,
        key=jax.random.fold_in(key, 100),
    )] + [harness.Stage(
        f"finetune_{how}", phases=phase_ft, num_steps=ft_steps,
        batch_sizes={"ft": min(bs, len(ft["image"]))},
        init=functools.partial(init_finetune, how=how), key=jax.random.fold_in(key, 200),
        samples_per_step=bs,
    ) for how in ("pretrained", "scratch")]  # fmt: skip
    pre_fields = ("image", "kp", "vis", "boxes", "pairs", "labels", "label_valid")
    data = {"pre": {f: pre[f] for f in pre_fields}, "ft": {f: ft[f] for f in ("image", "coords")}}
    trained = harness.run_stages(declared, data, workdir=wd, options=options)
    timings.update({f"{n}_s": r.wall_s for n, r in trained.stages.items()})

    t0 = time.perf_counter()
    eval_bs, rd_test, te = int(config.eval.batch_size), arrays["rd_test"], arrays["test"]
    net = trained.stages["pretrain"].state.players["net"]
    inputs = [rd_test[f] for f in ("image", "boxes", "pairs")]
    logits = jeval.batched_apply(wsp_predictor(net.model, net.variables()), *inputs,
                                 batch_size=eval_bs)["logits"]  # fmt: skip
    rd_rows = relative_depth_by_scale_gap(logits, rd_test, thresholds=tuple(config.eval.delta_s))
    timings["eval_rd_s"] = time.perf_counter() - t0
    evals, summary = {}, {}
    for how in ("pretrained", "scratch"):
        net = trained.stages[f"finetune_{how}"].state.players["net3d"]
        coords = jeval.batched_apply(wsp_predictor(net.model, net.variables()), te["image"],
                                     batch_size=eval_bs)["coords3d"]  # fmt: skip
        prefix = "rendered " if config.data.source == "rendered" else ""
        evals[f"test ({how})"], summary[how] = wsp_3d_evaluation(
            coords, te, name=f"{prefix}test crops ({how} init)", **ft_kw
        )

    header = common.ResultsHeader(
        experiment="wsp_image (WSP, Qiu et al.): relative-depth pre-training + 3D fine-tuning",
        dataset=(f"rendered by jpose.data.render from {d.poses} poses: {d.num_pretrain} "
                 f"multi-person images ({d.people[0]}-{d.people[1]} people, {d.rd_labels} "
                 f"labels) for pre-training, {d.num_finetune} single-person crops with 3D labels "
                 "for fine-tuning" if config.data.source == "rendered" else
                 f"user images from {d.image_root}: relative-depth pair crops (COCO / MPII) "
                 "for pre-training, Human3.6M frames with 3D labels for fine-tuning"),
        source_2d="images (the network's own heatmaps)",
        protocol=("relative depth: RD protocol 1 by ΔS on multi-person test images; 3D: "
                  "integral regression back-projected with GT intrinsics and root depth, "
                  "root-relative MPJPE / P-MPJPE in mm on fresh people"),
        options={"resnet_depth": m.resnet_depth, "width": m.width, "image_size": size,
                 "heatmap_stride": stride, "alpha": t.alpha, "N": t.num_selected,
                 "pretrain_steps": pre_steps, "finetune_steps": ft_steps,
                 "lr": (config.stages.pretrain.lr, config.stages.finetune.lr),
                 "lr_boundaries_epochs": (tuple(config.stages.pretrain.boundaries),
                                          tuple(config.stages.finetune.boundaries)),
                 "init_checkpoint": init_ckpt or "none (random init)", "batch": bs},
        checkpoint={"pretrain": pre_steps,
                    "finetune_pretrained": ft_steps,
                    "finetune_scratch": ft_steps},
        model_selection="final checkpoints (no selection on the test images)",
        notes=["CPU-scaled networks and schedules; rendered images, not MCPC / Human3.6M."
               if config.data.source == "rendered" else "user-provided images"],
    )  # fmt: skip
    tables = {
        "Relative depth on multi-person test images by ΔS (RD protocol 1)": rd_rows,
        "Fine-tuning: pre-trained vs scratch (mm, Table 4 question)": summary,
    }
    extra = {"timings_s": timings, "summary": {"relative_depth": rd_rows, "finetune": summary}}
    common.write_results(wd, header=header, evaluations=evals, extra_tables=tables, extra=extra)
    return {"relative_depth": rd_rows, "finetune": summary, "timings_s": timings}


if __name__ == "__main__":
    common.cli(run, default_config=common.config_path("wsp_image"))
