"""The ``jpose-train`` command: ``jpose-train <method> --workdir=DIR [--config=FILE[:PRESET]]
[--config.<field>=<value> ...]``.

A method is a registered experiment (:func:`jpose.inference.registered_methods`; the built-in
ones are the checkout's ``experiments.<name>`` modules, so they train from a checkout). The
command finds the method and runs its module as ``python -m`` would, with the rest of the
command line: the method parses its own config (an ``ml_collections`` file; ``jpose`` reads no
config objects), so ``jpose-train camerapose --workdir=W`` is ``python -m experiments.camerapose
--workdir=W``. A method registered as an object instead of a module path needs a
``main(argv)``.
"""

from __future__ import annotations

import importlib.util
import pathlib
import runpy
import sys
from collections.abc import Sequence

from jpose.inference import predictor

__all__ = ["main"]

_USAGE = "usage: jpose-train <method> --workdir=DIR [--config=FILE[:PRESET]] [--config.a.b=v]"


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``<method>``'s training command with the remaining arguments.

    Returns:
      0 after ``--help`` or a run; 2 (with one message on stderr) for a missing or unknown
      method. The method's own command exits the process itself (absl: status 0 or 2).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    methods = predictor.registered_methods()
    if not args or args[0] in ("-h", "--help"):
        print(f"{_USAGE}\nmethods: {', '.join(methods)}", file=sys.stdout if args else sys.stderr)
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in methods:
        print(f"jpose-train: error: unknown method {name!r}; known: {', '.join(methods)}",
              file=sys.stderr)  # fmt: skip
        return 2
    target = predictor.method_target(name)
    if not isinstance(target, str):
        target.main(rest)
        return 0
    package = target.split(".")[0]
    if importlib.util.find_spec(package) is None and (pathlib.Path.cwd() / package).is_dir():
        sys.path.insert(0, str(pathlib.Path.cwd()))  # run in a checkout: its methods
    if importlib.util.find_spec(package) is None:
        print(f"jpose-train: error: method {name!r} is defined in {target}, which is not "
              "importable here: the built-in methods train from a jpose checkout (run the "
              "command in the checkout's root folder)", file=sys.stderr)  # fmt: skip
        return 2
    sys.argv = [name, *rest]
    runpy.run_module(target, run_name="__main__", alter_sys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
