"""The ``jpose`` command: lift a file of 2D detections with a trained pipeline (see
:mod:`jpose.inference` for formats and conventions).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence

import numpy as np

from jpose import skeleton
from jpose.inference.bundles import resolve_bundle
from jpose.inference.keypoints import _read_json, load_keypoints
from jpose.inference.lifting import MIN_JOINTS, lift, write_output
from jpose.inference.predictor import load_predictor
from jpose.training import rundir

# ------------------------------------------------------------------------------------------------
# CLI
# ------------------------------------------------------------------------------------------------


def add_model_source(parser: argparse.ArgumentParser, pretrained_note: str = "") -> None:
    """The ``--workdir`` / ``--pretrained`` pair (exactly one) of ``jpose`` and ``evaluate``."""
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--workdir", help="work directory of a training run (or a bundle directory)")
    src.add_argument(
        "--pretrained",
        metavar="NAME",
        help="a shipped pretrained bundle (python -c 'import jpose.inference as i; "
        "print(i.pretrained_descriptions())') or a bundle directory" + pretrained_note,
    )


def _pair(text: str) -> tuple[float, float]:
    parts = [p for p in text.replace("x", ",").split(",") if p.strip()]
    try:
        a, b = (float(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected two numbers 'a,b', got {text!r}") from None
    return a, b


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="jpose",
        description="Lift 2D keypoint detections to camera-frame 3D poses with a trained jpose "
        "pipeline (formats and conventions: python -c 'import jpose.inference as m; "
        "help(m)').",
    )
    add_model_source(p)
    p.add_argument(
        "--input",
        required=True,
        help="detections: COCO results .json, or .npz/.json with keypoints [N, J, 2|3], or an "
        "OpenPose --write_json directory",
    )
    p.add_argument(
        "--output", required=True, help="output file (.npz, .json, or .bvh: one per track)"
    )
    p.add_argument(
        "--layout", default=None, help=f"input joint layout ({', '.join(skeleton.LAYOUTS)})"
    )
    p.add_argument(
        "--image_size",
        type=_pair,
        default=None,
        metavar="W,H",
        help="image width,height in pixels for every input",
    )
    p.add_argument(
        "--image_sizes",
        default=None,
        metavar="JSON",
        help="JSON file (or inline JSON) {image_id: [w, h]}",
    )
    p.add_argument(
        "--annotations",
        default=None,
        metavar="COCO_JSON",
        help="COCO annotation JSON whose 'images' give width/height per image id",
    )
    p.add_argument(
        "--focal",
        type=_pair,
        default=None,
        metavar="FX,FY",
        help="known focal lengths in pixels (enables pose3d_absolute)",
    )
    p.add_argument(
        "--center",
        type=_pair,
        default=None,
        metavar="CX,CY",
        help="known principal point in pixels (default: image centre)",
    )
    p.add_argument(
        "--smooth_sigma",
        type=float,
        default=0.0,
        help="Gaussian temporal smoothing of the 3D along frames, per track (frames; 0 = off)",
    )
    p.add_argument(
        "--fps", type=float, default=30.0, help="frames per second of a .bvh output (default 30)"
    )
    p.add_argument(
        "--min_score",
        type=float,
        default=0.0,
        help="joints with a lower score are treated as missing",
    )
    p.add_argument(
        "--step", type=int, default=None, help="checkpoint step of the last stage (default: latest)"
    )
    p.add_argument("--batch_size", type=int, default=1024, help="network batch size")
    p.add_argument(
        "--min_joints",
        type=int,
        default=MIN_JOINTS,
        help="fewest joints with confidence > 0 (pipeline layout) for a person to be lifted",
    )
    p.add_argument(
        "--allow_unfinished",
        action="store_true",
        help="use a run whose training did not finish (said in the output's warnings)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``jpose --workdir RUN --input IN --output OUT [options]`` (see ``--help``).

    Returns:
      0 on success (input errors exit with status 2 and a message naming the problem, without
      a traceback; people that cannot be lifted are flagged with one warning line).
    """
    parser = _parser()
    args = parser.parse_args(argv)
    if args.center is not None and args.focal is None:
        parser.error("--center needs --focal (known intrinsics)")
    if not (np.isfinite(args.fps) and args.fps > 0):
        parser.error(f"--fps must be a positive number, got {args.fps}")
    if args.workdir is not None and not args.workdir.strip():
        parser.error("--workdir is empty: give a training run's work directory")
    try:
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
                image_size=args.image_size,
                image_sizes=image_sizes,
                annotations=args.annotations,
            )
            # unknown bundle names list the shipped ones
            source = args.workdir if args.pretrained is None else resolve_bundle(args.pretrained)
            predictor = load_predictor(
                source, step=args.step, allow_unfinished=args.allow_unfinished
            )
        intr = None
        if args.focal is not None:
            intr = {"focal": args.focal, "center": args.center}
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
    except Exception as err:
        if not (rundir.is_user_error(err) or isinstance(err, ValueError | FileNotFoundError)):
            raise
        if os.environ.get("JPOSE_TRACEBACK"):
            raise
        parser.exit(2, f"jpose: error: {rundir.user_message(err)}\n")
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
