"""Export a finished training run as a pretrained bundle (``python -m experiments.export``)::

    python -m experiments.export --workdir=RUN --output=jpose/pretrained/lifter_cmu \\
        [--name=lifter_cmu] [--description="supervised lifter, CMU mocap"] \\
        [--dtype=auto|float16|float32] [--train_command="python -m ..."] [--commit=SHA]

The bundle, its float16 rule and the model card: :func:`jpose.inference.export.export_bundle`.
This command adds what the checkout knows: the training data and their licences (from the data
preset), the training command (``--train_command``, else reconstructed from ``config.json``: the
preset whose config differs least, plus ``--config.<field>=<value>`` overrides) and the commit
(``--commit``, else ``git rev-parse HEAD`` of this checkout, noting uncommitted changes).
Refused (exit status 2, one message): a work directory that is not a finished run, an output
that exists and is not an earlier bundle (``--overwrite`` replaces an earlier bundle).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import json
import logging
import pathlib
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from absl import flags

from jpose import cli_flags, inference
from jpose.inference import export
from jpose.training import rundir

__all__ = ["reconstruct_command", "data_provenance", "main"]

_CMU = {
    "name": "CMU Graphics Lab Motion Capture Database (mocap.cs.cmu.edu), the 8-action subset of "
    "Li et al. (CVPR 2018), train split; 3D joints (Human3.6M-17) seen by virtual Human3.6M-like "
    "cameras (../shared/data/cmu_mocap_h36m17.npz)",
    "licence": 'free to use and redistribute for research, with the acknowledgement: "The data '
    "used in this project was obtained from mocap.cs.cmu.edu. The database was created with "
    'funding from NSF EIA-0196217." Cite Li et al., "Convolutional Sequence to Sequence Model '
    'for Human Dynamics", CVPR 2018, for the 8-action subset.',
}
_COCO = {
    "name": "MS-COCO 2017 person keypoints, train2017 (2D only; annotations, no images; "
    "../shared/data/wild2d_coco_train.npz); val2017 (wild2d_coco.npz) for the 2D re-projection "
    "evaluation only",
    "licence": "COCO annotations (c) COCO Consortium, CC BY 4.0 "
    '(https://creativecommons.org/licenses/by/4.0/). Cite Lin et al., "Microsoft COCO: Common '
    'Objects in Context", ECCV 2014. The COCO images are not used and have their own licences.',
}
_H36M = {
    "name": "Human3.6M (S1, S5, S6, S7, S8)",
    "licence": "Human3.6M licence (academic use only, no redistribution of the data; check "
    "before sharing models trained on it)",
}
_SYNTHETIC = {
    "name": "jpose's embedded synthetic demonstration set (no files)",
    "licence": "generated in-process; no third-party data",
}


def data_provenance(config: Mapping[str, Any]) -> list[dict[str, str]]:
    """Training data of a run and their licences, from ``config.data.preset``."""
    data = config.get("data", {})
    preset = str(data.get("preset", ""))
    if preset == "h36m" and data.get("wild2d", {}).get("coco_train"):
        return [_H36M, _COCO]
    table = {"cmu": [_CMU], "cmu+coco": [_CMU, _COCO], "h36m": [_H36M], "synthetic": [_SYNTHETIC]}
    return table.get(preset, [{"name": f"data preset {preset!r}", "licence": "unknown"}])


def reconstruct_command(config: Mapping[str, Any], *, workdir: str) -> dict[str, Any]:
    """The training command that gives ``config``: the preset of
    ``experiments/configs/<experiment>.py`` whose config differs in the fewest fields, plus one
    ``--config.<field>=<value>`` per differing field.

    Returns:
      ``{"command": str, "preset": str, "overrides": [...], "exact": bool}`` (``exact`` False when
      a differing field cannot be written as a command-line override, e.g. a list).
    """
    experiment = str(config.get("experiment", ""))
    try:
        module = importlib.import_module(f"experiments.configs.{experiment}")
    except ImportError:
        return {"command": "", "preset": "", "overrides": [], "exact": False}
    best = None
    for preset in [None, *getattr(module, "PRESETS", ("smoke", "cmu", "h36m"))]:
        try:
            ref = module.get_config() if preset is None else module.get_config(preset)
        except (ValueError, KeyError, TypeError):
            continue
        ref = json.loads(ref.to_json_best_effort(sort_keys=True))
        diffs = rundir.config_differences(ref, dict(config))
        if best is None or len(diffs) < len(best[1]):
            best = (preset, diffs)
    if best is None:
        return {"command": "", "preset": "", "overrides": [], "exact": False}
    preset, diffs = best
    cmd = [f"python -m experiments.{experiment}"]
    if preset is not None:
        cmd.append(f"--config=experiments/configs/{experiment}.py:{preset}")
    cmd.append(f"--workdir={workdir}")
    overrides, exact, newer = [], True, []
    for field, old, new in diffs:
        if new == "<absent>":  # a field added to the config schema after the run
            newer.append(field)
        elif old == "<absent>" or not isinstance(new, int | float | str):  # removed, or a list
            exact = False
            overrides.append(f"{field}: {new!r} (not expressible as a flag)")
        else:
            overrides.append(f"--config.{field}={new}")
            cmd.append(f"--config.{field}={new}")
    return {"command": " ".join(cmd), "preset": preset or "", "overrides": overrides,
            "exact": exact, "fields_added_after_the_run": newer}  # fmt: skip


PROG = "python -m experiments.export"
DESCRIPTION = (
    "Export a finished jpose training run as a pretrained bundle (inference networks, config, "
    "model card, sha256)."
)


def _define(fv: flags.FlagValues) -> None:
    s = functools.partial(flags.DEFINE_string, flag_values=fv)
    s("workdir", None, "work directory of a finished training run")
    s("output", None, "bundle directory to write")
    flags.mark_flags_as_required(["workdir", "output"], flag_values=fv)
    s("name", "", "bundle name (default: the output's name)")
    s("description", "", "one line (default: the predictor's)")
    dtypes = ("auto", "float16", "float32")
    help_dtype = "weights dtype; auto = float16 when no test number moves by > --tolerance_mm"
    flags.DEFINE_enum("dtype", "auto", dtypes, help_dtype, flag_values=fv)
    flags.DEFINE_float("tolerance_mm", 0.1, "float16 rule tolerance (mm)", flag_values=fv)
    s("eval_dataset", "auto", "dataset of jpose-evaluate for the card's numbers (auto: cmu for "
      "CMU runs)")  # fmt: skip
    s("train_command", "", "exact training command (default: reconstructed)")
    s("commit", "", "training commit (default: git HEAD now)")
    flags.DEFINE_bool("overwrite", False, "replace an earlier bundle", flag_values=fv)
    flags.DEFINE_multi_string("note", [], "provenance note for the card (repeatable)",
                              flag_values=fv)  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m experiments.export``: 0 on success; user errors (unfinished run, existing
    output, ...) exit with status 2 and one message."""
    args = cli_flags.parse(PROG, _define, argv, description=DESCRIPTION)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")  # fmt: skip
    logging.getLogger("absl").setLevel(logging.WARNING)
    with rundir.exit_on_user_error(PROG):
        if not args.workdir.strip() or not args.output.strip():
            raise rundir.UserError("--workdir and --output must be non-empty")
        wd = pathlib.Path(args.workdir)
        try:  # export_bundle refuses an unreadable config.json; the provenance is then unused
            config = dict(inference.read_config(wd))
        except (OSError, ValueError, TypeError):
            config = {}
        card = export.export_bundle(
            wd,
            args.output,
            name=args.name,
            description=args.description,
            dtype=args.dtype,
            training_data=data_provenance(config),
            training_command=args.train_command,
            config_reconstruction=reconstruct_command(config, workdir=str(wd)),
            commit={"commit": args.commit, "source": "given at export (--commit)"}
            if args.commit
            else export.checkout_commit(pathlib.Path(__file__).resolve().parents[1]),
            eval_dataset=args.eval_dataset,
            tolerance_mm=args.tolerance_mm,
            overwrite=args.overwrite,
            notes=args.note,
        )
    w = card["weights"]
    print(f"experiments.export: wrote {args.output}: {w['dtype']} weights, "
          f"{w['bytes'] / 1e6:.2f} MB, sha256 {w['sha256'][:16]}...; {w['decision']}")  # fmt: skip
    return 0


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
