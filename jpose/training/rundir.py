"""Work-directory safety: user errors, config validation, a run lock and a record of finished
stages (issue 22: no silent garbage).

What the harness (:mod:`experiments.common`) does with it:

* **User errors.** :class:`UserError` (a ``ValueError``) and :func:`user_errors` mark problems
  with the user's inputs (files, layouts, units, configs, work directories). The command lines
  print them as one line ``<prog>: error: <message>`` and exit with status 2, without a
  traceback (:func:`exit_on_user_error`); every other exception keeps its traceback. Set
  ``JPOSE_TRACEBACK=1`` to see the traceback of a user error too.
* **Config validation** (:func:`validate_config`, before any data is loaded; its rules go by
  field name) and a non-empty work directory path (:func:`check_workdir_path`).
* **Resume with another architecture** (:func:`check_resume_config`): when the work directory
  has checkpoints, a difference between its ``config.json`` and the new config in ``experiment``
  or a discrete (bool / int / str / list) field of ``model.*`` or ``method.*`` is refused, naming
  every such field with its old and new value.
* **Lock** (:class:`WorkdirLock`, ``<workdir>/run.lock``: process id, host, start time). A
  second run in the same work directory is refused while the first one lives; a lock left by a
  dead process on this host (``kill -9``) is taken over with a warning. The same process may
  take its own lock again (a resumed run in one Python process).
* **Finished stages** (``<workdir>/status.json``): :func:`start_run` (from ``setup_workdir``)
  marks the run unfinished, :func:`mark_stage` records each stage's start and end (from
  ``train_stage``), :func:`mark_run_finished` (from ``write_results`` on the work directory)
  marks the run finished. :func:`unfinished_reason` / :func:`require_finished` name the missing
  stage; ``evaluate`` and ``jpose`` refuse an unfinished run unless ``--allow_unfinished``.
  A work directory without ``status.json`` (older jpose) counts as finished when it has
  ``results.json``.

Files are written atomically (temporary file + ``os.replace``), by process 0 only.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import math
import os
import pathlib
import socket
import sys
import time
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

__all__ = [
    "STATUS_FILE",
    "LOCK_FILE",
    "UserError",
    "UnfinishedRunError",
    "user_errors",
    "mark_user_error",
    "is_user_error",
    "user_message",
    "exit_on_user_error",
    "check_workdir_path",
    "validate_config",
    "config_differences",
    "check_resume_config",
    "WorkdirLock",
    "acquire_lock",
    "release_lock",
    "MISSING_FILE_ERRORS",
    "read_status",
    "start_run",
    "mark_stage",
    "mark_run_finished",
    "unfinished_reason",
    "require_finished",
]

LOGGER = logging.getLogger("jpose.experiments")
STATUS_FILE = "status.json"
LOCK_FILE = "run.lock"


# ------------------------------------------------------------------------------------------------
# User errors
# ------------------------------------------------------------------------------------------------


class UserError(ValueError):
    """A problem with the user's inputs: reported as one message, exit status 2, no traceback."""


class UnfinishedRunError(UserError):
    """A work directory whose training did not finish was asked for a result."""


# what reading a user's file or config can raise when the file / value is wrong
_INPUT_ERRORS = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, UnicodeDecodeError)


def mark_user_error(err: BaseException, context: str = "") -> BaseException:
    """Mark ``err`` as a user error (kept as is: its type and message do not change)."""
    err._jpose_user_error = True  # type: ignore[attr-defined]
    if context and not hasattr(err, "_jpose_context"):
        err._jpose_context = context  # type: ignore[attr-defined]
    return err


def is_user_error(err: BaseException) -> bool:
    """Whether ``err`` is a :class:`UserError` or was raised inside :func:`user_errors`."""
    return isinstance(err, UserError) or bool(getattr(err, "_jpose_user_error", False))


def user_message(err: BaseException) -> str:
    """One message for ``err`` (a ``KeyError``'s text without the quotes; the context first)."""
    text = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
    if isinstance(err, zipfile.BadZipFile | EOFError) or not text:
        text = f"{type(err).__name__}: {text or 'unreadable file'} (a truncated or corrupt file?)"
    context = getattr(err, "_jpose_context", "")
    return f"{context}: {text}" if context else text


# a file the user named that is not there: a user error wherever it surfaces
MISSING_FILE_ERRORS = (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError)


@contextlib.contextmanager
def user_errors(
    context: str = "", *, types: tuple[type[BaseException], ...] = _INPUT_ERRORS
) -> Iterator[None]:
    """Treat errors reading the user's files / values inside the block as user errors.

    ``OSError``, ``ValueError``, ``KeyError``, ``EOFError``, ``zipfile.BadZipFile`` and
    ``UnicodeDecodeError`` (or ``types``) raised inside are marked (:func:`mark_user_error`)
    and re-raised unchanged. Usable as a decorator.

    Args:
      context: prefix of the message, e.g. ``"loading data"``.
      types: the exception types to mark.
    """
    try:
        yield
    except types as err:
        mark_user_error(err, context)
        raise


@contextlib.contextmanager
def exit_on_user_error(prog: str) -> Iterator[None]:
    """Inside a command line: a user error prints ``<prog>: error: <message>`` and exits 2.

    Other exceptions propagate with their traceback. ``JPOSE_TRACEBACK=1`` re-raises user
    errors too.
    """
    try:
        yield
    except Exception as err:
        if not is_user_error(err) or os.environ.get("JPOSE_TRACEBACK"):
            raise
        sys.stderr.write(f"{prog}: error: {user_message(err)}\n")
        sys.stderr.flush()
        raise SystemExit(2) from None


# ------------------------------------------------------------------------------------------------
# Configs
# ------------------------------------------------------------------------------------------------


def check_workdir_path(workdir: str | os.PathLike[str] | None) -> pathlib.Path:
    """The work directory as a path; a :class:`UserError` for an empty path or an existing file."""
    text = "" if workdir is None else os.fspath(workdir)
    if not text.strip():
        raise UserError(
            "the work directory path is empty (--workdir=): give the directory for checkpoints, "
            "config and results, e.g. --workdir=runs/my_run"
        )
    path = pathlib.Path(text)
    if path.exists() and not path.is_dir():
        raise UserError(f"--workdir={text} is a file, not a directory")
    return path


def _leaves(tree: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in tree.items():
        if isinstance(value, Mapping):
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _rule(path: str) -> tuple[str, float, bool] | None:
    """``(what, bound, strict)``: the value must be ``> bound`` (strict) or ``>= bound``."""
    leaf = path.rsplit(".", 1)[-1]
    if "batch" in leaf:
        return "a batch size", 0, True
    if path.startswith("model.") and (leaf == "width" or leaf.endswith("_width")):
        return "a network width", 0, True
    if leaf in ("lr", "learning_rate") or leaf.startswith("lr_") or leaf.endswith("_lr"):
        return "a learning rate", 0, True
    if leaf == "steps_per_block":
        return "steps per compiled block", 1, False
    if leaf == "steps" or leaf.endswith("_steps"):
        return "a number of steps", 0, False
    if leaf == "epochs":
        return "a number of epochs", 0, False
    if leaf == "log_every":
        return "blocks between log records", 1, False
    if leaf == "checkpoint_every":
        return "steps between checkpoints", 0, False
    return None


def validate_config(config: Any) -> None:
    """Check a run's config before anything is loaded or trained.

    Rules by field name (anywhere in the tree): ``*batch*`` > 0, ``model.*width`` > 0, ``lr``,
    ``lr_*``, ``*_lr``, ``learning_rate`` > 0, ``steps`` / ``*_steps`` >= 0, ``epochs`` >= 0,
    ``steps_per_block`` >= 1, ``log_every`` >= 1, ``checkpoint_every`` >= 0; every such value
    finite. Non-numeric fields are not checked.

    Raises:
      UserError: naming every offending field, its value and the rule.
    """
    problems = []
    for path, value in _leaves(config.to_dict() if hasattr(config, "to_dict") else dict(config)):
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        rule = _rule(path)
        if rule is None:
            continue
        what, bound, strict = rule
        ok = math.isfinite(value) and (value > bound if strict else value >= bound)
        if not ok:
            need = f"> {bound}" if strict else f">= {bound}"
            problems.append(f"{path}={value!r}: {what} must be finite and {need}")
    if problems:
        raise UserError("invalid config: " + "; ".join(problems))


def config_differences(
    old: Mapping[str, Any], new: Mapping[str, Any]
) -> list[tuple[str, Any, Any]]:
    """``[(field, old value, new value)]`` of two (nested) configs; ``"<absent>"`` if missing."""
    a, b = dict(_leaves(old)), dict(_leaves(new))
    values = ((k, a.get(k, "<absent>"), b.get(k, "<absent>")) for k in sorted(set(a) | set(b)))
    return [(k, va, vb) for k, va, vb in values if va != vb]


def _is_architecture(path: str, old: Any, new: Any) -> bool:
    """Fields that decide which networks (and shapes) exist: ``experiment`` and the discrete
    (bool / int / str / list) fields of ``model.*`` and ``method.*``; floats such as dropout
    rates or loss weights may change on resume."""
    if path == "experiment":
        return True
    if path.startswith(("model.", "method.")):
        values = [v for v in (old, new) if v != "<absent>"]
        return all(isinstance(v, bool | int | str | list) for v in values)
    return False


def check_resume_config(workdir: str | os.PathLike[str], config: Any) -> list[str]:
    """Compare ``<workdir>/config.json`` with the new config before a (resumed) run.

    Returns:
      The differing fields as ``"field: old -> new"`` (empty for a fresh work directory).

    Raises:
      UserError: the work directory has checkpoints and the networks differ (``experiment``,
        bool / int / str / list fields of ``model.*`` and ``method.*``): the checkpoints cannot
        be restored into the new networks.
    """
    path = pathlib.Path(workdir) / "config.json"
    if not path.is_file():
        return []
    try:
        old = json.loads(path.read_text())
    except json.JSONDecodeError:
        return ["config.json: unreadable"]
    new = json.loads(config.to_json_best_effort()) if hasattr(config, "to_json_best_effort") \
        else dict(config)  # fmt: skip
    diffs = config_differences(old, new)
    arch = [d for d in diffs if _is_architecture(*d)]
    if arch and any(p.name.isdigit() for p in (path.parent / "checkpoints").glob("*/*")):
        fields = "; ".join(f"{k}: {a!r} (config.json) -> {b!r} (new)" for k, a, b in arch)
        raise UserError(
            f"{workdir} holds checkpoints of other networks than the new config builds, so they "
            f"cannot be resumed: {fields}. Use a new --workdir, or the config of {path}"
        )
    return [f"{k}: {a!r} -> {b!r}" for k, a, b in diffs]


# ------------------------------------------------------------------------------------------------
# Lock
# ------------------------------------------------------------------------------------------------


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except PermissionError:  # alive, another user's
        return True
    except OSError:  # ProcessLookupError: no such process
        return False
    return True


class WorkdirLock:
    """``<workdir>/run.lock``: one training run per work directory.

    Args:
      workdir: the work directory (must exist).
    """

    def __init__(self, workdir: str | os.PathLike[str]) -> None:
        self.path = pathlib.Path(workdir).absolute() / LOCK_FILE
        self.info = {"pid": os.getpid(), "host": socket.gethostname()}
        self.held = False

    def _read(self) -> dict[str, Any] | None:
        try:
            info = json.loads(self.path.read_text())
            return info if isinstance(info, dict) and "pid" in info else None
        except (OSError, ValueError):
            return None

    def _write_new(self) -> bool:
        record = json.dumps({**self.info, "started": time.strftime("%Y-%m-%dT%H:%M:%S")})
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            f.write(record + "\n")
        return True

    def acquire(self) -> None:
        """Take the lock (see the module docstring).

        Raises:
          UserError: another live process (or a process on another host) holds it.
        """
        if self.held:
            return
        for _ in range(3):
            if self._write_new():
                self.held = True
                return
            other = self._read()
            if other is None:
                LOGGER.warning("%s: unreadable lock file (a run killed while starting?); "
                               "taking it over", self.path)  # fmt: skip
            elif other.get("host") == self.info["host"] and int(other["pid"]) == self.info["pid"]:
                self.held = True  # this process already runs here (a resume in one process)
                return
            elif other.get("host") == self.info["host"] and not _pid_alive(int(other["pid"])):
                LOGGER.warning(
                    "%s: stale lock of process %s (no longer running, killed?) taken over",
                    self.path, other["pid"],
                )  # fmt: skip
            else:
                raise UserError(
                    f"{self.path.parent} is in use by another run (process {other['pid']} on "
                    f"host {other.get('host')}, started {other.get('started', '?')}): two runs "
                    "in one work directory would overwrite each other's checkpoints and metrics. "
                    f"Wait for it to finish or use another --workdir; if no such run exists, "
                    f"delete {self.path}"
                )
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        raise UserError(f"{self.path}: could not take the work directory lock (a race?)")

    def release(self) -> None:
        """Remove the lock file if this process holds it."""
        if not self.held:
            return
        self.held = False
        other = self._read()
        if other is not None and other.get("host") == self.info["host"] \
                and int(other["pid"]) == self.info["pid"]:  # fmt: skip
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()


_HELD: dict[pathlib.Path, WorkdirLock] = {}


def _release_all() -> None:
    for lock in list(_HELD.values()):
        lock.release()
    _HELD.clear()


atexit.register(_release_all)


def acquire_lock(workdir: str | os.PathLike[str]) -> WorkdirLock:
    """Take (or keep) this process's lock on ``workdir``; released at exit."""
    key = pathlib.Path(workdir).absolute()
    lock = _HELD.get(key)
    if lock is None or not lock.path.is_file():
        lock = WorkdirLock(key)
        lock.acquire()
        _HELD[key] = lock
    return lock


def release_lock(workdir: str | os.PathLike[str]) -> None:
    """Release this process's lock on ``workdir`` (no-op when it holds none)."""
    lock = _HELD.pop(pathlib.Path(workdir).absolute(), None)
    if lock is not None:
        lock.release()


# ------------------------------------------------------------------------------------------------
# Finished stages
# ------------------------------------------------------------------------------------------------


def read_status(workdir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """``<workdir>/status.json`` (``None`` when absent or unreadable)."""
    path = pathlib.Path(workdir) / STATUS_FILE
    try:
        status = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return status if isinstance(status, dict) else None


def _write_status(workdir: pathlib.Path, status: Mapping[str, Any]) -> None:
    from jpose.training import parallel

    if not parallel.is_main_process():
        return
    path = workdir / STATUS_FILE
    tmp = path.with_name(f".{STATUS_FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(status, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def start_run(workdir: str | os.PathLike[str]) -> None:
    """Mark the run in ``workdir`` as started and not finished (stage records are kept)."""
    wd = pathlib.Path(workdir)
    status = read_status(wd) or {}
    status.setdefault("stages", {})
    status["finished"] = False
    status["started"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    _write_status(wd, status)


def mark_stage(
    workdir: str | os.PathLike[str], name: str, *, index: int, num_steps: int, finished: bool
) -> None:
    """Record stage ``name`` (index, total steps) as started (``finished=False``) or finished."""
    wd = pathlib.Path(workdir)
    status = read_status(wd) or {"finished": False}
    stages = status.setdefault("stages", {})
    stages[name] = {"index": int(index), "num_steps": int(num_steps), "finished": bool(finished)}
    if not finished:
        status["finished"] = False
    _write_status(wd, status)


def mark_run_finished(workdir: str | os.PathLike[str]) -> None:
    """Mark the run finished (every stage trained and the results written) and release this
    process's lock on it."""
    wd = pathlib.Path(workdir)
    status = read_status(wd)
    if status is not None:
        status["finished"] = True
        status["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        _write_status(wd, status)
    release_lock(wd)


def _latest_checkpoint(workdir: pathlib.Path, stage: str) -> int | None:
    steps = [int(p.name) for p in (workdir / "checkpoints" / stage).glob("*") if p.name.isdigit()]
    return max(steps) if steps else None


def unfinished_reason(
    workdir: str | os.PathLike[str], planned_stages: Sequence[str] = ()
) -> str | None:
    """Why ``workdir`` holds an unfinished run (naming the missing stage), or ``None``.

    Args:
      workdir: a training run's work directory.
      planned_stages: the experiment's stage names in training order (for a run that stopped
        between two stages; optional stages absent from the record are not reported unless
        they come after the last recorded one).
    """
    wd = pathlib.Path(workdir)
    status = read_status(wd)
    if status is None:
        if (wd / "results.json").is_file():
            return None  # written by an older jpose: results are written last
        return (
            f"no {STATUS_FILE} and no results.json: its training did not finish (or was run by "
            "an older jpose)"
        )
    if status.get("finished"):
        return None
    stages = status.get("stages", {})
    for name, rec in sorted(stages.items(), key=lambda kv: kv[1].get("index", 0)):
        if not rec.get("finished"):
            step = _latest_checkpoint(wd, name)
            at = "before its first checkpoint" if step is None else f"at checkpoint step {step}"
            return f"stage '{name}' did not finish (stopped {at} of {rec.get('num_steps')} steps)"
    planned = list(planned_stages)
    done = [n for n in planned if n in stages]
    if done:
        later = planned[planned.index(done[-1]) + 1 :]
    else:  # no planned stage recorded: all remain unless the record holds other stages
        later = [] if stages else planned
    missing = [n for n in later if n not in stages]
    if missing:
        return f"stage '{missing[0]}' never started (finished: {', '.join(stages) or 'none'})"
    return (
        f"its stages finished ({', '.join(stages) or 'none'}) but the run stopped before writing "
        "its results"
    )


def require_finished(
    workdir: str | os.PathLike[str],
    planned_stages: Sequence[str] = (),
    *,
    allow_unfinished: bool = False,
) -> str:
    """Refuse an unfinished run.

    Returns:
      ``""`` for a finished run; the reason when ``allow_unfinished`` lets an unfinished one
      through (to be stated in the results).

    Raises:
      UnfinishedRunError: the run is unfinished and ``allow_unfinished`` is False.
    """
    reason = unfinished_reason(workdir, planned_stages)
    if reason is None:
        return ""
    if not allow_unfinished:
        raise UnfinishedRunError(
            f"{workdir} holds an unfinished training run: {reason}. Run the training command "
            "again to finish it (it resumes), or pass --allow_unfinished to use it as it is"
        )
    return reason
