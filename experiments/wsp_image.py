"""WSP (Qiu et al.) image network: relative-depth pre-training on multi-person images, then 3D
fine-tuning (3D heatmap head + integral regression), compared with training from scratch.

``python -m experiments.wsp_image --workdir=DIR [--config=experiments/configs/wsp_image.py:P]``
(``experiments.wsp --config=experiments/configs/wsp.py:image`` runs it too).

Paper mapping: network :func:`jpose.models.resnet.wsp_net` (eqs. 5-6, 11-12). Stage ``pretrain``:
eqs. 8-10 (:func:`jpose.image_losses.wsp_pretrain_loss`; labels ``data.rd_labels``: ``"ankle"`` =
eqs. 1-4, 7 on the 2D joints, ``"depth"`` = the true order). Stages ``finetune_pretrained`` /
``finetune_scratch``: eq. 12 (:func:`jpose.image_losses.wsp_finetune_loss`), same data, steps and
seed (Table 4's question). Evaluation (:mod:`jpose.image_evaluation`): RD protocol 1 by ΔS
(eq. 14) against the true order and the ankle labels; 3D MPJPE / P-MPJPE / ``MPJPE_X/Y/Z``.
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
from jpose.data.images import normalize_images
from jpose.image_evaluation import relative_depth_by_scale_gap, wsp_3d_evaluation, wsp_predictor
from jpose.image_losses import wsp_finetune_loss, wsp_pretrain_loss
from jpose.models.resnet import heatmap_stride, load_flat_weights, transfer_params, wsp_net
from jpose.training import Phase, PhaseContext, clipped, create_player, create_train_state
from jpose.training import stages as harness
from jpose.training.schedules import schedule_from_config

__all__ = ["LAYOUT", "load_arrays", "stage_schedule", "load_init_checkpoint", "run"]

LAYOUT = skeleton.H36M17


def _pretrain_loss(ctx: PhaseContext, batch: Mapping[str, Any], **options: Any
                   ) -> tuple[jax.Array, dict]:  # fmt: skip
    """``L_hm + alpha L_rd`` (eqs. 8-10) of player ``net`` on ``batch["pre"]``."""
    b = batch["pre"]
    out = ctx.apply("net", normalize_images(b["image"]), b["boxes"], b["pairs"])
    return wsp_pretrain_loss(out["heatmaps"], out["logits"], b["kp"], b["vis"], b["labels"],
                             b["label_valid"], ctx.next_key(), **options)  # fmt: skip


def _finetune_loss(ctx: PhaseContext, batch: Mapping[str, Any]) -> tuple[jax.Array, dict]:
    """L1 on the integral-regression coordinates (eq. 12) of player ``net3d``."""
    out = ctx.apply("net3d", normalize_images(batch["ft"]["image"]))
    return wsp_finetune_loss(out["coords3d"], batch["ft"]["coords"])


def stage_schedule(
    stage: ml_collections.ConfigDict,
    *,
    num_examples: int,
    batch_size: int,
    steps_per_block: int = 1,
) -> tuple[int, optax.Schedule]:
    """Steps (rounded up to a multiple of ``steps_per_block``) and learning-rate schedule of a
    ``config.stages.<name>`` block: ``steps > 0`` sets the length, else ``epochs`` over its
    ``num_examples``; ``boundaries`` are epochs (x ``factor``). WSP Sec. 4: pre-training lr 1e-3,
    x0.1 at epochs 30 and 40 of 50; fine-tuning x0.1 at 17 and 21 of 25 (batch 64)."""
    spe = max(1, int(num_examples) // int(batch_size))
    steps = common.stage_num_steps(stage, steps_per_epoch=spe, steps_per_block=steps_per_block)
    return steps, schedule_from_config(stage, steps_per_epoch=spe)


def load_init_checkpoint(path: str, player: Any) -> Any:
    """``player`` with its ResNet backbone from ``path`` (``model.init_checkpoint``), a fresh
    optimiser state for it. The ``.npz`` holds the backbone's variables in flax's flat form
    (:func:`jpose.models.resnet.load_flat_weights`: ``"params/stem_conv/kernel"``, ...), e.g.
    ImageNet weights converted once by the user; ``resnet_depth`` / ``width`` / ``stem`` must
    match them."""
    with np.load(path) as npz:
        params, stats, report = load_flat_weights(dict(npz), player.params, player.batch_stats)
    common.LOGGER.info("init_checkpoint %s: %d backbone arrays loaded, %d entries ignored %s",
                       path, report["loaded"], len(report["ignored"]),
                       report["ignored"][:5])  # fmt: skip
    return player.with_variables(params, stats)


def load_arrays(config: ml_collections.ConfigDict, *, volume: Mapping[str, Any]
                ) -> dict[str, dict[str, np.ndarray]]:  # fmt: skip
    """The arrays of ``"pre"``, ``"rd_test"`` (multi-person, ``wsp_pretrain_arrays``), ``"ft"``
    and ``"test"`` (single-person crops, ``wsp_finetune_arrays`` of the 3D heatmap ``volume``:
    ``stride``, ``depth_bins``, ``depth_range_m``): rendered from fresh pose pools
    (train / test), or (``data.source = "real"``, layout in ``experiments/configs/wsp_image.py``)
    pairs_train / pairs_val, whose eq. 7 labels train and are the reference order (the ankle rule
    is recomputed on the 2D), and h36m_train / h36m_test."""
    d, stride, t0 = config.data, volume["stride"], time.perf_counter()
    base, size = 1000 * int(config.seed), int(d.image_size)  # base: of the rendering seeds
    if d.source == "real":
        if d.rd_labels != "ankle":
            raise ValueError(
                "data.source='real' trains on the pair file's labels; "
                f"data.rd_labels={d.rd_labels!r} needs depth (rendered only)"
            )
        kw = dict(image_size=size, padding=float(d.crop_padding))
        pairs = functools.partial(images.load_pair_crops, d.image_root, **kw)
        h36m = functools.partial(images.load_h36m_crops, d.image_root, **kw)
        r_pre, lab_pre = pairs("train", max_examples=int(d.num_pretrain))
        r_rd, lab_rd = pairs("val", max_examples=int(d.num_rd_test))
        r_ft = h36m("train", max_examples=int(d.num_finetune))[0]
        r_te = h36m("test", max_examples=int(d.num_test))[0]
        pre = wsp_pretrain_arrays(r_pre, stride=stride, rd_labels="ankle")
        rd_test = wsp_pretrain_arrays(r_rd, stride=stride, rd_labels="ankle")
        pre.update(images.pair_label_arrays(lab_pre, pre["pairs"]))
        rd_test.update(images.pair_label_arrays(lab_rd, rd_test["pairs"]))
    else:
        pool_kw = {k: d[k] for k in images.POSE_POOL_OPTIONS}
        train = images.pose_pool(split="train", mix=d.mix, seed=base + 1, **pool_kw).poses
        test = images.pose_pool(split="test", mix=d.mix, seed=base + 2, **pool_kw).poses
        scene = render.RenderConfig(image_size=size, framing="scene", people=tuple(d.people),
                                    distance_range=tuple(d.distance_range),
                                    style=d.style)  # fmt: skip
        crop = render.RenderConfig(image_size=size, framing="crop", style=d.style)
        sets = ((d.num_pretrain, scene, train, base + 11),  # (images, framing, poses, seed)
                (d.num_rd_test, scene, test, base + 12),
                (d.num_finetune, crop, train, base + 13),
                (d.num_test, crop, test, base + 14))  # fmt: skip
        r_pre, r_rd, r_ft, r_te = (
            render.render_images(poses, num_images=int(n), config=cfg, seed=seed)
            for n, cfg, poses, seed in sets
        )
        pre = wsp_pretrain_arrays(r_pre, stride=stride, rd_labels=str(d.rd_labels))
        rd_test = wsp_pretrain_arrays(r_rd, stride=stride, rd_labels=str(d.rd_labels))
    arrays = {"pre": pre, "rd_test": rd_test, "ft": wsp_finetune_arrays(r_ft, **volume),
              "test": wsp_finetune_arrays(r_te, **volume)}  # fmt: skip
    common.LOGGER.info("%s: pretrain %d, rd test %d, finetune %d, test %d (%.1f s)", d.source,
                       len(r_pre), len(r_rd), len(r_ft), len(r_te),
                       time.perf_counter() - t0)  # fmt: skip
    common.LOGGER.info(
        "ankle-rule labels agree with the true depth order on %.1f %% of the "
        "training pairs' joints",
        100 * float((pre["labels_ankle"] == pre["labels_depth"])[pre["ankle_valid"]].mean()),
    )
    return arrays


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Pre-train (or resume), fine-tune from the pre-trained weights and from scratch, evaluate,
    report; returns ``{"relative_depth": table, "finetune": {init: summary}, "stages": ...}``."""
    t_start = time.perf_counter()
    wd = common.setup_workdir(workdir, config)
    if config.data.source not in ("rendered", "real"):
        raise ValueError(f"data.source must be 'rendered' or 'real', got {config.data.source!r}")
    d, m, t, sc = config.data, config.model, config.train, config.stages
    stride = heatmap_stride(resnet_depth=int(m.resnet_depth), stem=str(m.stem),
                            deconv_layers=int(m.deconv_layers))  # fmt: skip
    volume = {"stride": stride, "depth_bins": int(m.depth_bins),  # the 3D heatmap volume
              "depth_range_m": float(m.depth_range_m)}  # fmt: skip
    arrays = load_arrays(config, volume=volume)
    pre, ft = arrays["pre"], arrays["ft"]

    net_kw = dict(num_joints=LAYOUT.num_joints, resnet_depth=int(m.resnet_depth),
                  width=int(m.width), stem=str(m.stem), deconv_layers=int(m.deconv_layers),
                  deconv_features=int(m.deconv_features))  # fmt: skip
    model_pre = wsp_net(heads=("heatmap", "relative_depth"), pool_normalize=str(m.pool_normalize),
                        rd_hidden=tuple(m.rd_hidden), **net_kw)  # fmt: skip
    model_3d = wsp_net(heads=("heatmap3d",), depth_bins=int(m.depth_bins), **net_kw)
    key = jax.random.key(int(config.seed))
    options = common.train_options(t)
    bs = int(t.batch_size)
    # the paper's epochs and decays where configured (real preset), else CPU steps at constant lr
    schedule = functools.partial(stage_schedule, batch_size=bs,
                                 steps_per_block=options.steps_per_block)  # fmt: skip
    pre_steps, pre_sched = schedule(sc.pretrain, num_examples=len(pre["image"]))
    ft_steps, ft_sched = schedule(sc.finetune, num_examples=len(ft["image"]))
    tx_pre = clipped(optax.adam(pre_sched), t.clip_norm)
    tx_ft = clipped(optax.adam(ft_sched), t.clip_norm)
    init_ckpt = str(m.init_checkpoint)

    def with_backbone(player: Any) -> Any:  # ImageNet (or any user) ResNet weights, if given
        return load_init_checkpoint(init_ckpt, player) if init_ckpt else player

    def init_pretrain(done: Mapping[str, Any]) -> Any:
        ex = [jnp.asarray(pre[f][:2]) for f in ("image", "boxes", "pairs")]
        player = create_player(model_pre, tx_pre, jax.random.fold_in(key, 1),
                               normalize_images(ex[0]), *ex[1:])  # fmt: skip
        return create_train_state({"net": with_backbone(player)})

    def init_finetune(done: Mapping[str, Any], *, how: str) -> Any:
        fresh = create_player(model_3d, tx_ft, jax.random.fold_in(key, 2),
                              normalize_images(jnp.asarray(ft["image"][:2])))  # fmt: skip
        if how == "scratch":  # the baseline starts from the same backbone weights as pretrain
            return create_train_state({"net3d": with_backbone(fresh)})
        # the pre-trained backbone and deconvolution head (copies: the steps donate the state)
        net = done["pretrain"].players["net"]
        params = jax.tree.map(jnp.copy, transfer_params(net.params, fresh.params))
        stats = jax.tree.map(jnp.copy, transfer_params(net.batch_stats, fresh.batch_stats))
        return create_train_state({"net3d": fresh.with_variables(params, stats)})

    pre_loss = functools.partial(_pretrain_loss, alpha=float(t.alpha),
                                 num_selected=int(t.num_selected), sigma=float(m.sigma),
                                 squared=bool(t.heatmap_squared))  # fmt: skip
    phase_ft = [Phase("finetune", ("net3d",), _finetune_loss)]  # one block for both inits
    declared = [harness.Stage(
        "pretrain", phases=[Phase("pretrain", ("net",), pre_loss)], num_steps=pre_steps,
        batch_sizes={"pre": bs}, init=init_pretrain, key=jax.random.fold_in(key, 100),
    )] + [harness.Stage(
        f"finetune_{how}", phases=phase_ft, num_steps=ft_steps,
        batch_sizes={"ft": min(bs, len(ft["image"]))},
        init=functools.partial(init_finetune, how=how), key=jax.random.fold_in(key, 200),
        samples_per_step=bs,
    ) for how in ("pretrained", "scratch")]  # fmt: skip
    pre_fields = ("image", "kp", "vis", "boxes", "pairs", "labels", "label_valid")
    data = {"pre": {f: pre[f] for f in pre_fields}, "ft": {f: ft[f] for f in ("image", "coords")}}
    trained = harness.run_stages(declared, data, workdir=wd, options=options)

    eval_bs, rd_test, te = int(config.eval.batch_size), arrays["rd_test"], arrays["test"]
    net = trained.stages["pretrain"].state.players["net"]
    inputs = [rd_test[f] for f in ("image", "boxes", "pairs")]
    logits = jeval.batched_apply(wsp_predictor(net.model, net.variables()), *inputs,
                                 batch_size=eval_bs)["logits"]  # fmt: skip
    rd_rows = relative_depth_by_scale_gap(logits, rd_test, thresholds=tuple(config.eval.delta_s))
    evals, summary = {}, {}
    rendered = config.data.source == "rendered"
    for how in ("pretrained", "scratch"):
        net = trained.stages[f"finetune_{how}"].state.players["net3d"]
        coords = jeval.batched_apply(wsp_predictor(net.model, net.variables()), te["image"],
                                     batch_size=eval_bs)["coords3d"]  # fmt: skip
        evals[f"test ({how})"], summary[how] = wsp_3d_evaluation(
            coords, te, name=f"{'rendered ' if rendered else ''}test crops ({how} init)", **volume
        )  # fmt: skip

    header = common.ResultsHeader(
        experiment="wsp_image (WSP, Qiu et al.): relative-depth pre-training + 3D fine-tuning",
        dataset=(f"rendered by jpose.data.render from {d.poses} poses: {d.num_pretrain} "
                 f"multi-person images ({d.people[0]}-{d.people[1]} people, {d.rd_labels} "
                 f"labels) for pre-training, {d.num_finetune} single-person crops with 3D labels "
                 "for fine-tuning" if rendered else
                 f"user images from {d.image_root}: relative-depth pair crops (COCO / MPII) "
                 "for pre-training, Human3.6M frames with 3D labels for fine-tuning"),
        source_2d="images (the network's own heatmaps)",
        protocol=("relative depth: RD protocol 1 by ΔS on multi-person test images; 3D: "
                  "integral regression back-projected with GT intrinsics and root depth, "
                  "root-relative MPJPE / P-MPJPE in mm on fresh people"),
        options={"resnet_depth": m.resnet_depth, "width": m.width, "image_size": d.image_size,
                 "heatmap_stride": stride, "alpha": t.alpha, "N": t.num_selected,
                 "pretrain_steps": pre_steps, "finetune_steps": ft_steps,
                 "lr": (sc.pretrain.lr, sc.finetune.lr),
                 "lr_boundaries_epochs": (tuple(sc.pretrain.boundaries),
                                          tuple(sc.finetune.boundaries)),
                 "init_checkpoint": init_ckpt or "none (random init)", "batch": bs},
        checkpoint={"pretrain": pre_steps, "finetune_pretrained": ft_steps,
                    "finetune_scratch": ft_steps},
        model_selection="final checkpoints (no selection on the test images)",
        notes=["CPU-scaled networks and schedules; rendered images, not MCPC / Human3.6M."
               if rendered else "user-provided images"],
    )  # fmt: skip
    tables = {
        "Relative depth on multi-person test images by ΔS (RD protocol 1)": rd_rows,
        "Fine-tuning: pre-trained vs scratch (mm, Table 4 question)": summary,
    }
    extra = {"stages": trained.summary(), "timings": trained.timings(t_start),
             "summary": {"relative_depth": rd_rows, "finetune": summary}}  # fmt: skip
    common.write_results(wd, header=header, evaluations=evals, extra_tables=tables, extra=extra)
    return {"relative_depth": rd_rows, "finetune": summary, "stages": extra["stages"]}


if __name__ == "__main__":
    common.cli(run, default_config=common.config_path("wsp_image"))
