"""absl flags for jpose's console commands (``jpose``, ``jpose-evaluate``), as training uses.

Each call of :func:`parse` defines the command's flags on a fresh ``absl.flags.FlagValues``, so a
command's ``main(argv)`` can be called again in one process (tests, notebooks) and never touches
the global ``absl.flags.FLAGS`` that ``python -m experiments.<method>`` parses. Flags are written
``--name=value`` or ``--name value``; booleans ``--name`` / ``--noname``. A bad command line
prints one ``<prog>: error: <message>`` line and exits with status 2, like every other user error
of jpose (``jpose.training.rundir``); ``--help`` prints the flags and exits with status 0.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from absl import flags

__all__ = ["define", "define_model_source", "parse", "usage_error", "pair"]

_HELP = ("-h", "--help", "-help", "--helpshort", "--helpfull")


def usage_error(prog: str, message: str) -> NoReturn:
    """Print ``<prog>: error: <message>`` to stderr and exit with status 2."""
    print(f"{prog}: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def define(fv: flags.FlagValues, table: Sequence[tuple[Any, ...]]) -> None:
    """Define the flags of ``table``'s rows ``(kind, name, default, help)`` on ``fv`` (``kind``:
    absl's ``DEFINE_<kind>``); an ``"enum"`` row ends with its values."""
    for kind, name, default, text, *values in table:
        getattr(flags, f"DEFINE_{kind}")(name, default, *values, text, flag_values=fv)


def define_model_source(fv: flags.FlagValues, pretrained_note: str = "") -> None:
    """``--workdir`` / ``--pretrained`` (exactly one), for ``jpose`` and ``jpose-evaluate``."""
    flags.DEFINE_string(
        "workdir", None, "work directory of a training run (or a bundle directory)", flag_values=fv
    )
    flags.DEFINE_string(
        "pretrained",
        None,
        "a shipped pretrained bundle (python -c 'import jpose.inference as i; "
        "print(i.pretrained_descriptions())') or a bundle directory" + pretrained_note,
        flag_values=fv,
    )
    flags.mark_flags_as_mutual_exclusive(["workdir", "pretrained"], required=True, flag_values=fv)


def parse(
    prog: str,
    define: Callable[[flags.FlagValues], None],
    argv: Sequence[str] | None = None,
    *,
    description: str,
) -> flags.FlagValues:
    """Define a command's flags on a fresh ``FlagValues`` and parse ``argv``.

    Args:
      prog: the command's name, for messages.
      define: adds the command's flags (``flags.DEFINE_*(..., flag_values=fv)``) and validators.
      argv: the arguments after the program name (default ``sys.argv[1:]``).
      description: one paragraph for ``--help``.

    Returns:
      The parsed flags (``fv.<name>`` is a flag's value).
    """
    fv = flags.FlagValues()
    define(fv)
    args = list(sys.argv[1:] if argv is None else argv)
    if any(a in _HELP for a in args):
        print(f"usage: {prog} [--flag=value ...]\n\n{description}\n")
        for name in sorted(fv):
            flag = fv[name]
            default = "" if flag.default is None else f" (default: {flag.default_as_str})"
            print(f"  --{name}: {flag.help}{default}")
        raise SystemExit(0)
    try:
        rest = fv([prog, *args])
    except flags.Error as err:
        usage_error(prog, "; ".join(str(err).splitlines()))
    if len(rest) > 1:
        usage_error(prog, f"unexpected arguments: {' '.join(rest[1:])}")
    return fv


def pair(prog: str, name: str, text: str | None) -> tuple[float, float] | None:
    """The value of a ``--name=a,b`` flag (``a,b`` or ``axb``) as two floats; ``None`` stays.

    A value that is not two numbers is a usage error naming the flag.
    """
    if text is None:
        return None
    parts = [p for p in text.replace("x", ",").split(",") if p.strip()]
    try:
        a, b = (float(p) for p in parts)
    except ValueError:
        usage_error(prog, f"--{name}: expected two numbers 'a,b', got {text!r}")
    return a, b
