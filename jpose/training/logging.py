"""Metrics logging: JSONL in the work directory, TensorBoard when importable, a progress line.

* ``<workdir>/metrics.jsonl``: one JSON object per :meth:`MetricsLogger.log` call with ``step``,
  ``split``, ``time`` (seconds since the logger started) and the scalar metrics, plus
  ``throughput/samples_per_s`` and ``throughput/steps_per_s`` when ``samples`` is given.
  :func:`trim_metrics` drops the records a resumed run logs again (those after the restored
  checkpoint), so every record appears once.
* TensorBoard event files under ``<workdir>/tensorboard`` through ``tensorboardX`` (the
  ``tensorboard`` extra, also in ``test``; no TensorFlow or torch needed), scalars tagged
  ``<split>/<metric>``; when it is missing one warning is logged and only the JSONL is written.
* On a TTY a single refreshed progress line with ETA; otherwise plain lines.

:func:`discriminator_accuracy` is a pure (jit-able) GAN-health helper for use inside loss
functions' metrics.
"""

from __future__ import annotations

import json
import logging
import math
import os
import pathlib
import sys
import time
from collections.abc import Mapping
from typing import IO, Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["MetricsLogger", "discriminator_accuracy", "format_duration", "trim_metrics"]


def discriminator_accuracy(
    real_out: jax.Array, fake_out: jax.Array, *, kind: str = "lsgan"
) -> dict[str, jax.Array]:
    """Fraction of real / fake samples the discriminator classifies correctly.

    A healthy GAN drifts towards 0.5; 1.0 means the discriminator wins, i.e. the generator gets no
    useful gradient.

    Args:
      real_out: discriminator outputs on real samples ``[..., P]`` (P part logits, e.g. KCS) or
        ``[..., 2]`` for ``kind="two_class"``.
      fake_out: outputs on generated samples, same trailing shape.
      kind: ``"lsgan"`` (targets 1 real / 0 fake: correct if ``> 0.5`` / ``< 0.5``),
        ``"logits"`` (sigmoid logits: threshold 0) or ``"two_class"`` (softmax logits with class
        index 1 = real, Drover et al.).

    Returns:
      ``{"acc_real", "acc_fake", "acc"}`` scalars (``acc`` is their mean), averaged over all
      samples and parts.
    """
    if kind == "lsgan":
        real_ok, fake_ok = real_out > 0.5, fake_out < 0.5
    elif kind == "logits":
        real_ok, fake_ok = real_out > 0, fake_out < 0
    elif kind == "two_class":
        real_ok = jnp.argmax(real_out, axis=-1) == 1
        fake_ok = jnp.argmax(fake_out, axis=-1) == 0
    else:
        raise ValueError(f"kind must be 'lsgan', 'logits' or 'two_class', got {kind!r}")
    acc_real = jnp.mean(real_ok.astype(jnp.float32))
    acc_fake = jnp.mean(fake_ok.astype(jnp.float32))
    return {"acc_real": acc_real, "acc_fake": acc_fake, "acc": 0.5 * (acc_real + acc_fake)}


def trim_metrics(
    path: str | os.PathLike[str],
    *,
    after_step: int,
    until_step: int | None = None,
    stage: float | None = None,
) -> int:
    """Drop the records a resumed run will log again (issue 22: no duplicates after a resume).

    Removes from the JSONL file every record with ``after_step < step`` (and ``step <=
    until_step`` when given) and, with ``stage``, only records of that stage. Records that do
    not parse are kept. The file is rewritten atomically (temporary file + ``os.replace``).

    Args:
      path: ``metrics.jsonl``.
      after_step: the restored checkpoint's (global) step: records up to it stay.
      until_step: last (global) step of the resumed span (default: no upper bound).
      stage: the ``stage`` field of the records to consider (default all).

    Returns:
      The number of records removed.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        return 0
    kept, removed = [], 0
    for line in path.read_text().splitlines(keepends=True):
        try:
            rec = json.loads(line)
            step = int(rec["step"])
            drop = step > after_step and (until_step is None or step <= until_step)
            if stage is not None:
                drop = drop and float(rec.get("stage", -1)) == float(stage)
        except (ValueError, KeyError, TypeError):
            drop = False
        if drop:
            removed += 1
        else:
            kept.append(line if line.endswith("\n") else line + "\n")
    if removed:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text("".join(kept))
        os.replace(tmp, path)
    return removed


def format_duration(seconds: float) -> str:
    """``H:MM:SS`` (``--:--:--`` for unknown)."""
    if not math.isfinite(seconds) or seconds < 0:
        return "--:--:--"
    s = int(round(seconds))
    return f"{s // 3600:d}:{s % 3600 // 60:02d}:{s % 60:02d}"


_TB_WARNED = False


def _tensorboard_writer(logdir: pathlib.Path) -> Any | None:
    """A ``tensorboardX.SummaryWriter`` on ``logdir``, or None (with one warning per process)."""
    global _TB_WARNED
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        if not _TB_WARNED:
            _TB_WARNED = True
            logging.getLogger("jpose.training").warning(
                "TensorBoard curves need tensorboardX (pip install 'jpose[tensorboard]'); "
                "writing metrics.jsonl only"
            )
        return None
    # tensorboardX names a file by the second and the host: without a suffix, a second writer
    # opened in the same second (the next stage of a short run) overwrites the first one's file
    return SummaryWriter(str(logdir), flush_secs=30, filename_suffix=f".{time.time_ns()}")


def _to_float(v: Any) -> float | None:
    arr = np.asarray(jax.device_get(v))
    if arr.size != 1 or not np.issubdtype(arr.dtype, np.number):
        return None
    return float(arr.reshape(()))


class MetricsLogger:
    """Write metrics to JSONL (+ TensorBoard) and show progress.

    Args:
      workdir: output directory (created).
      total_steps: total iterations, for percentage and ETA (optional).
      filename: JSONL file name.
      tensorboard: try to write TensorBoard summaries.
      progress: show the progress display (default: when ``stream`` is a TTY a refreshed line,
        else one plain line per call); ``False`` disables it.
      stream: where progress goes (default ``sys.stderr``).
      enabled: False on non-main processes of a multi-host run (nothing is written).
    """

    def __init__(
        self,
        workdir: str | os.PathLike[str],
        *,
        total_steps: int | None = None,
        filename: str = "metrics.jsonl",
        tensorboard: bool = True,
        progress: bool | None = None,
        stream: IO[str] | None = None,
        enabled: bool = True,
    ) -> None:
        self.workdir = pathlib.Path(workdir)
        self.total_steps = total_steps
        self.enabled = enabled
        self.stream = sys.stderr if stream is None else stream
        self.is_tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.show_progress = progress is not False
        self._start = time.perf_counter()
        self._last_time: float | None = None
        self._last_step: int | None = None
        self._first_step: int | None = None
        self._file = None
        self._tb = None
        if enabled:
            self.workdir.mkdir(parents=True, exist_ok=True)
            self._file = open(self.workdir / filename, "a", buffering=1)  # noqa: SIM115
            if tensorboard:
                self._tb = _tensorboard_writer(self.workdir / "tensorboard")

    @property
    def has_tensorboard(self) -> bool:
        """Whether TensorBoard summaries are written."""
        return self._tb is not None

    def log(
        self,
        step: int,
        metrics: Mapping[str, Any],
        *,
        samples: int | None = None,
        split: str = "train",
    ) -> dict[str, float]:
        """Record scalar metrics for ``step``.

        Args:
          step: iteration number (after the update).
          metrics: name -> scalar (device or host); non-scalars are ignored.
          samples: number of training samples processed since the previous call (for throughput).
          split: ``"train"``, ``"val"``, ... (JSONL field and TensorBoard prefix).

        Returns:
          The host floats written (including throughput).
        """
        now = time.perf_counter()
        values = {k: f for k, v in metrics.items() if (f := _to_float(v)) is not None}
        if samples is not None and self._last_time is not None and now > self._last_time:
            dt = now - self._last_time
            values["throughput/samples_per_s"] = samples / dt
            if self._last_step is not None:
                values["throughput/steps_per_s"] = (step - self._last_step) / dt
        if split == "train":
            if self._first_step is None:
                self._first_step = step
            self._last_time, self._last_step = now, step
        if not self.enabled:
            return values
        record = {"step": int(step), "split": split, "time": round(now - self._start, 4)}
        record.update({k: (v if math.isfinite(v) else str(v)) for k, v in values.items()})
        assert self._file is not None
        self._file.write(json.dumps(record) + "\n")
        if self._tb is not None:
            for k, v in values.items():
                self._tb.add_scalar(f"{split}/{k}", v, int(step))
        if self.show_progress:
            self._progress(step, values, split)
        return values

    def _eta(self, step: int) -> float:
        if self.total_steps is None or self._first_step is None or self._last_step is None:
            return float("nan")
        done = step - self._first_step
        if done <= 0:
            return float("nan")
        rate = done / (time.perf_counter() - self._start)
        return (self.total_steps - step) / rate

    def _progress(self, step: int, values: Mapping[str, float], split: str) -> None:
        shown = [k for k in values if k.endswith("loss") and "grad_norm" not in k][:4]
        if split != "train":  # validation records have no losses: show their metrics
            shown = [k for k in values if k != "stage"][:4]
        parts = [f"{k}={values[k]:.4g}" for k in shown]
        if "throughput/samples_per_s" in values:
            parts.append(f"{values['throughput/samples_per_s']:.0f} samples/s")
        if self.total_steps:
            pct = 100.0 * step / self.total_steps
            head = f"[{split}] step {step}/{self.total_steps} ({pct:5.1f}%)"
            parts.append(f"ETA {format_duration(self._eta(step))}")
        else:
            head = f"[{split}] step {step}"
        line = head + " | " + " | ".join(parts)
        if self.is_tty:
            self.stream.write("\r\x1b[2K" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        """Flush and close the outputs."""
        if self.is_tty and self.show_progress and self.enabled:
            self.stream.write("\n")
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._tb is not None:
            self._tb.flush()
            self._tb.close()
            self._tb = None

    def __enter__(self) -> MetricsLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
