"""Comparing training runs at equal budget over seeds.

:func:`run_seed` runs one seed's training command into its work directory (or reuses a finished
run of the same command) and scores it; the records of a configuration's seeds, a list, give
its mean ± sample standard deviation (:func:`mean_std`, :func:`format_mean_std`) and wall time
(:func:`format_wall`); :func:`lower_verdict` says whether one configuration's metric is lower
than another's beyond the seeds' spread; :func:`write_report` writes the comparisons as markdown
with a json of every number beside it. Commands are lists given by the caller; nothing here
knows a repository's layout.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from jpose._git import head_state

__all__ = [
    "RECORD",
    "RUN_ERRORS",
    "checkout_label",
    "format_mean_std",
    "format_wall",
    "lower_verdict",
    "mean_std",
    "run_seed",
    "write_report",
]

RECORD = "reproduce.json"  # the record of a finished run, in its work directory
# what a failed run raises: its command's exit status, a missing file, a missing score, a
# corrupt record (json.JSONDecodeError)
RUN_ERRORS = (RuntimeError, OSError, KeyError, ValueError, subprocess.CalledProcessError)


def checkout_label(directory: str | os.PathLike[str] = ".") -> str:
    """The short commit of the git checkout holding ``directory``, with ``-dirty`` when tracked
    files have uncommitted changes (``unknown`` outside a checkout)."""
    commit, dirty = head_state(directory, short=True)
    return (commit or "unknown") + ("-dirty" if dirty else "")


def run_seed(
    command: Sequence[str],
    *,
    workdir: str | os.PathLike[str],
    label: str,
    score: Callable[[pathlib.Path], dict[str, float]],
    then: Sequence[Sequence[str]] = (),
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run one seed's ``command`` (which writes into ``workdir``), or reuse its earlier run, and
    score it.

    ``<workdir>/reproduce.json`` records a finished run; it is reused when it holds the same
    ``command`` and ``then`` (a record without ``then``, written before it was recorded, is
    taken to hold it: the caller then derived ``then`` from the same run declaration). The
    record leaves out each command's program (``command[0]``, e.g.
    ``sys.executable``), so a run stays reused under another interpreter path. The commands'
    output goes to ``<workdir>.log``.

    Args:
      command: the command line, run in the current directory.
      workdir: the run's work directory (created).
      label: names the run in ``log`` lines and errors.
      score: reads a finished run's numbers from its work directory.
      then: commands run after ``command`` succeeds (e.g. an evaluation), counted in the wall
        time.
      log: progress lines.

    Returns:
      The record ``{"command": command[1:], "then", "workdir", "wall_s", "code", "scores"}``
      (``then``: each command without its program; ``code``:
      :func:`checkout_label` of the current directory); when the command exits with a non-zero
      status or the run cannot be scored (:data:`RUN_ERRORS`), ``{"failed": message, "wall_s":
      0.0, "scores": {}, "command"}``.
    """
    wd = pathlib.Path(workdir)
    path, log_file, recorded = wd / RECORD, wd.with_name(wd.name + ".log"), list(command[1:])
    recorded_then = [list(cmd[1:]) for cmd in then]
    try:
        rec = json.loads(path.read_text()) if path.is_file() else {}
        if rec.get("command") == recorded and rec.get("then", recorded_then) == recorded_then:
            log(f"  {label}: reusing {wd}")
        else:
            wd.mkdir(parents=True, exist_ok=True)
            log(f"  {label}: {' '.join(recorded)}")
            t0 = time.perf_counter()
            with open(log_file, "w") as out:
                proc = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False)
                if proc.returncode != 0:
                    raise RuntimeError(f"{label} failed (exit {proc.returncode}); see {log_file}")
                for cmd in then:
                    subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=True)
            wall = time.perf_counter() - t0
            rec = dict(command=recorded, then=recorded_then, workdir=str(wd), wall_s=wall)
            rec["code"] = checkout_label()
            path.write_text(json.dumps(rec, indent=2) + "\n")
            log(f"    done in {wall:.0f} s")
        rec["scores"] = score(wd)
    except RUN_ERRORS as err:
        log(f"    FAILED: {err}")
        return {"failed": str(err), "wall_s": 0.0, "scores": {}, "command": recorded}
    return rec


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (``n - 1``; 0 for one value; NaN for none)."""
    if not values:
        return math.nan, math.nan
    mean = sum(values) / len(values)
    if len(values) == 1:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def format_mean_std(values: Sequence[float], *, digits: int = 1) -> str:
    """``"m ± s"`` (:func:`mean_std`), ``"m"`` for one value, ``"n/a"`` for none."""
    if not values:
        return "n/a"
    mean, std = mean_std(values)
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if len(values) > 1 else f"{mean:.{digits}f}"


def lower_verdict(a: Sequence[float], b: Sequence[float], *, min_spread: float = 1e-9) -> str:
    """Whether ``a`` (one metric over seeds) is lower than ``b``.

    Returns:
      ``"reproduces"`` when a's mean is below b's by more than the larger of their standard
      deviations (and ``min_spread``; a needs two seeds or more), ``"direction only"`` when it
      is below within that spread, ``"does not reproduce"`` otherwise, ``"not measured"``
      without values.
    """
    if not a or not b:
        return "not measured"
    (m1, s1), (m2, s2) = mean_std(a), mean_std(b)
    if m1 < m2 - max(s1, s2, min_spread) and len(a) > 1:
        return "reproduces"
    return "direction only" if m1 < m2 else "does not reproduce"


def format_wall(records: Sequence[Mapping[str, Any]]) -> str:
    """Mean wall time per seed of the records that did not fail (``"12.3 min"``), with the
    number of failed ones (``"12.3 min (1 failed)"``, ``"failed (3 of 3)"``; ``"n/a"`` for
    none)."""
    if not records:
        return "n/a"
    walls = [r["wall_s"] for r in records if "failed" not in r]
    failed = len(records) - len(walls)
    if not walls:
        return f"failed ({failed} of {failed})"
    text = f"{sum(walls) / len(walls) / 60:.1f} min"
    return f"{text} ({failed} failed)" if failed else text


def write_report(
    output: str | os.PathLike[str],
    *,
    title: str,
    paragraphs: Sequence[str],
    sections: Sequence[Mapping[str, Any]],
    data: Mapping[str, Any],
    claim_label: str = "Claim",
    commands_label: str = "Commands",
    json_path: str | os.PathLike[str] | None = None,
) -> tuple[pathlib.Path, pathlib.Path]:
    """Write the markdown report ``output`` and ``data`` as json to ``json_path`` (default:
    ``<output stem, lower-cased>.json`` beside ``output``).

    Args:
      output: the markdown file.
      title: its ``#`` heading, followed by ``paragraphs``.
      sections: one per comparison, ``{"title", "claim", "header", "rows", "verdict",
        "commands"}`` (other keys are ignored): a ``##`` heading, the claim, the table (a header
        and rows of cells), the verdict, and the commands (indented).
      data: the json's content.
      claim_label, commands_label: the words before the claim and the commands.
      json_path: where the json goes.

    Returns:
      ``(markdown path, json path)``.
    """
    md = pathlib.Path(output)
    lines = [f"# {title}", ""]
    for p in paragraphs:
        lines += [p, ""]
    for s in sections:
        lines += [f"## {s['title']}", "", f"**{claim_label}.** {s['claim']}", ""]
        lines += ["| " + " | ".join(s["header"]) + " |", "|" + "---|" * len(s["header"])]
        lines += ["| " + " | ".join(row) + " |" for row in s["rows"]]
        lines += ["", f"**Verdict.** {s['verdict']}", "", f"{commands_label}:", ""]
        lines += [*(f"    {c}" for c in s["commands"]), ""]
    md.write_text("\n".join(lines))
    js = pathlib.Path(json_path) if json_path else md.with_name(md.stem.lower() + ".json")
    js.write_text(json.dumps(data, indent=1) + "\n")
    return md, js
