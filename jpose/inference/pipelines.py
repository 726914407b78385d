"""Self-describing inference pipelines: networks and forward pass declared in ``model.json``.

A method that writes a ``pipeline`` entry into its work directory's ``model.json`` (and so into
every bundle exported from it) is restored by jpose alone, without the checkout's
``experiments`` package: :func:`load_pipeline` builds the networks from their declared factories
and keyword options, restores their variables and wraps the declared forward pass. The same
:func:`network_spec` / :func:`build_network` pair builds the networks at training time, so what
is trained and what is restored cannot differ.

``model.json["pipeline"]``::

    kind        "lifter" (network "lifter": 2D -> root-relative 3D; with a "root" network also
                the root's camera-frame position "translation", Li et al.) or "camerapose"
                (refine -> lift -> camera, :func:`jpose.models.camerapose_predict`) or "depth"
                (network "depth": Zhou et al.'s per-joint depth, :mod:`jpose.models.depth`) or
                "drover" (network "gen", one seed per stage, their 3D averaged:
                :func:`jpose.models.drover.drover_pose`)
    networks    {player: {"factory": name in NETWORK_FACTORIES, "args": [...], "kwargs": {...}}}
    stages      the method's stage names in training order (checkpoint sub-directories)
    options     forward-pass options: "lifter": input ("pose", or "pose_confidence" =
                [x * (c > 0), c]), root_depth_offset_m (metres added to the root network's
                depth); "camerapose": camera_inputs, min_depth; "depth": avg_sum_length,
                visibility_threshold (of the 2D scale; default 0.5); "drover": num_joints,
                distance, head_root_distance, unit_m; any kind: serve_stage (a stage that must
                have a checkpoint: the one served)
    predictor   the :class:`~jpose.inference.Predictor` fields: experiment, description, layout,
                normalization, metric_scale, has_camera, takes_frame_scale
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from jpose import models, skeleton
from jpose.evaluation import apply_fn, to_jsonable
from jpose.inference.predictor import Predictor, restore_variables
from jpose.models.depth import rescaled_pose
from jpose.models.drover import DroverJoints, drover_pose
from jpose.models.relative_depth import person_input

__all__ = [
    "NETWORK_FACTORIES",
    "LIFTER_INPUTS",
    "PIPELINE_KINDS",
    "build_network",
    "load_pipeline",
    "network_spec",
    "pipeline_spec",
]

NETWORK_FACTORIES = {
    "martinez_lifter": models.martinez_lifter,
    "refine_net": models.refine_net,
    "camera_branch": models.camera_branch,
    "li_lifter": models.li_lifter,
    "li_root_branch": models.li_root_branch,
    "drover_generator": models.drover_generator,
}
PIPELINE_KINDS = ("lifter", "camerapose", "depth", "drover")
_MAIN_NETWORK = {"lifter": "lifter", "camerapose": "lifter", "depth": "depth", "drover": "gen"}
LIFTER_INPUTS = ("pose", "pose_confidence")
_PREDICTOR_FIELDS = ("experiment", "description", "layout", "normalization", "metric_scale",
                     "has_camera", "takes_frame_scale")  # fmt: skip


def _frozen(x: Any) -> Any:
    """JSON lists back to the tuples the (hashable) model definitions take."""
    if isinstance(x, list | tuple):
        return tuple(_frozen(v) for v in x)
    if isinstance(x, Mapping):
        return {k: _frozen(v) for k, v in x.items()}
    return x


def _factory(name: Any) -> Any:
    if name not in NETWORK_FACTORIES:
        raise ValueError(f"unknown network factory {name!r}; expected {sorted(NETWORK_FACTORIES)}")
    return NETWORK_FACTORIES[name]


def network_spec(factory: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """A JSON-serialisable network declaration: ``factory(*args, **kwargs)``.

    Raises:
      ValueError: ``factory`` is not in :data:`NETWORK_FACTORIES`.
    """
    _factory(factory)
    return {"factory": factory, "args": to_jsonable(list(args)), "kwargs": to_jsonable(kwargs)}


def build_network(spec: Mapping[str, Any]) -> models.Model:
    """The network a :func:`network_spec` declares (no parameters)."""
    factory = _factory(spec.get("factory"))
    args = _frozen(list(spec.get("args", ())))
    kwargs = _frozen(dict(spec.get("kwargs", {})))
    if isinstance(kwargs.get("dtype"), str):  # compute dtype by name; float32 = full precision
        kwargs["dtype"] = None if kwargs["dtype"] == "float32" else jnp.dtype(kwargs["dtype"])
    return factory(*args, **kwargs)


def pipeline_spec(
    kind: str,
    *,
    networks: Mapping[str, Mapping[str, Any]],
    stages: Sequence[str],
    predictor: Mapping[str, Any],
    options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``model.json["pipeline"]`` entry (fields in the module docstring; ``kind`` one of
    :data:`PIPELINE_KINDS`; ``predictor`` needs ``experiment``, ``layout``, ``normalization``).

    Raises:
      ValueError: unknown kind, missing networks or predictor fields.
    """
    if kind not in PIPELINE_KINDS:
        raise ValueError(f"unknown pipeline kind {kind!r}; expected one of {PIPELINE_KINDS}")
    if _MAIN_NETWORK[kind] not in networks:
        raise ValueError(f"a {kind!r} pipeline needs a {_MAIN_NETWORK[kind]!r} network, got "
                         f"{sorted(networks)}")  # fmt: skip
    unknown = set(predictor) - set(_PREDICTOR_FIELDS)
    missing = {"experiment", "layout", "normalization"} - set(predictor)
    if unknown or missing:
        raise ValueError(f"predictor fields: unknown {sorted(unknown)}, missing {sorted(missing)}")
    return {
        "kind": kind,
        "networks": {n: dict(s) for n, s in networks.items()},
        "stages": list(stages),
        "options": dict(options or {}),
        "predictor": dict(predictor),
    }


def load_pipeline(
    workdir: str | os.PathLike[str],
    spec: Mapping[str, Any],
    *,
    config: Mapping[str, Any],
    step: int | None = None,
) -> Predictor:
    """Restore the pipeline ``spec`` (``model.json["pipeline"]``) of a work directory or bundle.

    Args:
      workdir: work directory or bundle directory.
      spec: the pipeline entry.
      config: its ``config.json`` (:func:`jpose.inference.read_config`), kept on the predictor.
      step: checkpoint step of the last trained stage (default its latest).

    Returns:
      :class:`~jpose.inference.Predictor`, computing what the method's own evaluation computes.
    """
    kind = spec["kind"]
    if kind not in PIPELINE_KINDS:
        raise ValueError(f"{workdir}/model.json: unknown pipeline kind {kind!r}")
    nets = {n: build_network(s) for n, s in spec["networks"].items()}
    fields = dict(spec["predictor"])
    options = spec.get("options", {})
    if kind == "drover":  # every stage is one seed's generator: their 3D is averaged; the
        # predictor is complete here (no ``variables``), the branches below are the other kinds
        predict, steps = _drover_predict(workdir, spec["stages"], nets["gen"], options, step)
    else:
        variables, steps = restore_variables(workdir, spec["stages"], list(nets), step=step)
    serve = options.get("serve_stage")
    if serve is not None and serve not in steps:
        raise FileNotFoundError(f"no checkpoint of stage {serve} in {workdir}")
    if kind == "lifter":
        root = skeleton.get_layout(str(fields["layout"])).root
        lifter_input = options.get("input", "pose")
        if lifter_input not in LIFTER_INPUTS:
            raise ValueError(f"{workdir}/model.json: lifter input must be one of {LIFTER_INPUTS}")

        offset = (0.0, 0.0, float(options.get("root_depth_offset_m", 0.0)))

        @jax.jit
        def branches(variables: Any, x: jax.Array, c: jax.Array) -> dict[str, jax.Array]:
            # "pose": 2D only; "pose_confidence": [x * (c > 0), c] (WSP's lifter)
            inp = x if lifter_input == "pose" else person_input(x, c)
            pose = nets["lifter"].apply(variables["lifter"], inp, train=False)[0]
            out = {"pose3d": pose - pose[..., root : root + 1, :]}
            if "root" in nets:  # Li et al.'s root branch: the root's camera-frame position
                trans = nets["root"].apply(variables["root"], inp, train=False)[0]
                out["translation"] = trans + jax.numpy.asarray(offset, trans.dtype)
            return out

        predict = functools.partial(branches, variables)
    elif kind == "depth":
        fields_layout, avg = str(fields["layout"]), float(options["avg_sum_length"])
        threshold = float(options.get("visibility_threshold", 0.5))  # older runs: 0.5

        def depth_pose(apply: Any, x: jax.Array, c: jax.Array) -> dict[str, jax.Array]:
            pose = rescaled_pose(apply, x, c, avg_sum_length=avg, threshold=threshold,
                                 layout=fields_layout)  # fmt: skip
            return {"pose3d": pose}

        predict = apply_fn(nets["depth"], variables["depth"], depth_pose)
    elif kind == "camerapose":
        predict = models.camerapose_predict(
            nets, variables, camera_inputs=str(options.get("camera_inputs", "2d")),
            min_depth=float(options["min_depth"]),
        )  # fmt: skip
    return Predictor(predict=predict, checkpoint=steps, config=dict(config), pipeline=spec,
                     **fields)  # fmt: skip


def _drover_predict(
    workdir: str | os.PathLike[str],
    stages: Sequence[str],
    gen: models.Model,
    options: Mapping[str, Any],
    step: int | None,
) -> tuple[Any, dict[str, int]]:
    joints = DroverJoints.of(int(options["num_joints"]))
    distance, unit_m = float(options["distance"]), float(options["unit_m"])
    hr = float(options["head_root_distance"])
    variables, steps = [], {}
    for stage in stages:
        v, st = restore_variables(workdir, [stage], ["gen"], step=step)
        variables.append(v["gen"])
        steps.update(st)

    @jax.jit
    def run_all(variables: Sequence[Any], x: jax.Array) -> dict[str, jax.Array]:
        poses = [
            drover_pose(
                lambda u, v=v: gen.apply(v, u, train=False)[0],
                x,
                joints=joints,
                distance=distance,
                head_root_distance=hr,
            )  # fmt: skip
            for v in variables
        ]
        return {"pose3d": joints.to_layout(sum(poses) / len(poses) * unit_m)}

    def predict(x: Any, c: Any) -> dict[str, jax.Array]:
        del c  # the generator sees 2D only
        return run_all(variables, x)

    return predict, steps
