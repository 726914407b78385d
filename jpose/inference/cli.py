"""The ``jpose`` command: lift a file of 2D detections with a trained pipeline (see
:mod:`jpose.inference` for formats and conventions).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence

import numpy as np
from absl import flags

from jpose import cli_flags, skeleton
from jpose.inference.bundles import resolve_bundle
from jpose.inference.keypoints import _read_json, load_keypoints
from jpose.inference.lifting import MIN_JOINTS, lift, write_output
from jpose.inference.predictor import load_predictor
from jpose.training import rundir

PROG = "jpose"

DESCRIPTION = (
    "Lift 2D keypoint detections to camera-frame 3D poses with a trained jpose pipeline (formats "
    "and conventions: python -c 'import jpose.inference as m; help(m)')."
)
_FLAGS = (  # (absl kind, name, default, help)
    ("string", "input", None, "detections: COCO results .json, or .npz/.json with keypoints "
     "[N, J, 2|3], or an OpenPose --write_json directory"),
    ("string", "output", None, "output file (.npz, .json, or .bvh: one per track)"),
    ("string", "layout", None, f"input joint layout ({', '.join(skeleton.LAYOUTS)})"),
    ("string", "image_size", None, "W,H: image width,height in pixels for every input"),
    ("string", "image_sizes", None, "JSON file (or inline JSON) {image_id: [w, h]}"),
    ("string", "annotations", None, "COCO annotation JSON whose 'images' give each image's size"),
    ("string", "focal", None, "FX,FY: known focal lengths in pixels (enables pose3d_absolute)"),
    ("string", "center", None, "CX,CY: known principal point in pixels (default: image centre)"),
    ("float", "smooth_sigma", 0.0, "Gaussian temporal smoothing of the 3D along frames, per "
     "track (frames; 0 = off)"),
    ("float", "fps", 30.0, "frames per second of a .bvh output"),
    ("float", "min_score", 0.0, "joints with a lower score are treated as missing"),
    ("integer", "step", None, "checkpoint step of the last stage (default: latest)"),
    ("integer", "batch_size", 1024, "network batch size"),
    ("integer", "min_joints", MIN_JOINTS, "fewest joints with confidence > 0 (pipeline layout) "
     "for a person to be lifted"),
    ("bool", "allow_unfinished", False, "use a run whose training did not finish (said in the "
     "output's warnings)"),
)  # fmt: skip


def _define(fv: flags.FlagValues) -> None:
    cli_flags.define_model_source(fv)
    cli_flags.define(fv, _FLAGS)
    flags.mark_flags_as_required(["input", "output"], flag_values=fv)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``jpose --workdir RUN --input IN --output OUT [options]`` (see ``--help``);
    returns 0 on success (user errors: :mod:`jpose.inference`)."""
    args = cli_flags.parse(PROG, _define, argv, description=DESCRIPTION)
    image_size = cli_flags.pair(PROG, "image_size", args.image_size)
    focal = cli_flags.pair(PROG, "focal", args.focal)
    center = cli_flags.pair(PROG, "center", args.center)
    if center is not None and focal is None:
        cli_flags.usage_error(PROG, "--center needs --focal (known intrinsics)")
    if not (np.isfinite(args.fps) and args.fps > 0):
        cli_flags.usage_error(PROG, f"--fps must be a positive number, got {args.fps}")
    if args.workdir is not None and not args.workdir.strip():
        cli_flags.usage_error(PROG, "--workdir is empty: give a training run's work directory")
    # any ValueError / FileNotFoundError is a user error: one message, exit status 2
    with rundir.exit_on_user_error(PROG), rundir.user_errors(types=(ValueError, FileNotFoundError)):
        image_sizes = None
        if args.image_sizes:
            text = args.image_sizes.strip()
            if text.startswith("{"):
                image_sizes = json.loads(text)
            elif os.path.isfile(text):
                image_sizes = _read_json(text, "image sizes {image_id: [w, h]}")
            else:
                raise FileNotFoundError(f"{text}: --image_sizes file not found")
            if not isinstance(image_sizes, Mapping):
                raise ValueError("--image_sizes must be a JSON object {image_id: [w, h]}")
        with rundir.user_errors():  # unreadable / truncated files, bad layouts, units
            inp = load_keypoints(
                args.input,
                layout=args.layout,
                image_size=image_size,
                image_sizes=image_sizes,
                annotations=args.annotations,
            )
            # unknown bundle names list the shipped ones
            source = args.workdir if args.pretrained is None else resolve_bundle(args.pretrained)
            predictor = load_predictor(
                source, step=args.step, allow_unfinished=args.allow_unfinished
            )
        intr = None if focal is None else {"focal": focal, "center": center}
        result = lift(
            predictor,
            inp,
            intrinsics_px=intr,
            smooth_sigma=args.smooth_sigma,
            batch_size=args.batch_size,
            min_score=args.min_score,
            min_joints=args.min_joints,
        )
        path = write_output(result, args.output, fps=args.fps, messages=result["warnings"])
    for w in result["warnings"]:
        print(f"jpose: warning: {w}", file=sys.stderr)
    t = result["timing"]
    print(
        f"jpose: {len(inp)} people ({inp.layout} -> {result['layout']}) lifted with "
        f"{predictor.experiment} {dict(predictor.checkpoint)}; absolute: "
        f"{result['absolute_source'] or 'no'}; {t['seconds_per_person'] * 1e6:.1f} us/person; "
        f"wrote {path}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
