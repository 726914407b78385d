"""The git state of a checkout, for the records that say which code produced a result (export
cards, seed sweeps, benchmarks)."""

from __future__ import annotations

import os
import subprocess

__all__ = ["git_output", "head_state"]


def git_output(directory: str | os.PathLike[str], *args: str, strip: bool = True) -> str | None:
    """``git -C directory *args``'s standard output (stripped when ``strip``); ``None`` when git
    is missing, fails (e.g. ``directory`` is not in a checkout) or takes over 30 s."""
    try:
        out = subprocess.run(["git", "-C", os.fspath(directory), *args], capture_output=True,
                             text=True, timeout=30, check=True)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if strip else out.stdout


def head_state(
    directory: str | os.PathLike[str] = ".", *, short: bool = False
) -> tuple[str | None, list[str]]:
    """The HEAD commit of the checkout holding ``directory`` (abbreviated when ``short``;
    ``None`` outside a checkout) and the ``git status --porcelain`` lines of its tracked files
    with uncommitted changes (untracked files do not count)."""
    head = git_output(directory, "rev-parse", *(["--short"] if short else []), "HEAD")
    if head is None:
        return None, []
    # not stripped: each line is "XY path", and a leading space is its X (unchanged in the index)
    dirty = git_output(directory, "status", "--porcelain", "--untracked-files=no", strip=False)
    return head, (dirty or "").splitlines()
