"""Timing harness shared by the benchmarks.

Every benchmark warms up (the first call, compilation included, is timed and reported
separately as ``compile_s``), then times ``repeats`` repetitions and reports the median with
min / max. Each benchmark module has ``run(quick: bool) -> dict`` returning a section::

    {"title": str, "columns": [...], "rows": [{column: value}], "notes": [str],
     "targets": [{"name", "target", "value", "met"}], "load": (start, end)}

and a ``main()`` that prints the section as markdown or writes it as JSON (``--json PATH``), so
``python -m benchmarks.run`` can run each one in a fresh process.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

__all__ = [
    "Timing",
    "cpu_model",
    "load_average",
    "machine_info",
    "main_for",
    "section_markdown",
    "time_calls",
    "time_chain",
]


@dataclasses.dataclass
class Timing:
    """Seconds per call: first call (compile + run), then the repeats."""

    compile_s: float
    times: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def min(self) -> float:
        return min(self.times)

    @property
    def max(self) -> float:
        return max(self.times)

    def rate(self, per_call: float = 1.0) -> tuple[float, float, float]:
        """``(median, min, max)`` of ``per_call / time`` (e.g. samples per second)."""
        return per_call / self.median, per_call / self.max, per_call / self.min


def _block(x: Any) -> Any:
    import jax

    return jax.block_until_ready(x)


def time_calls(fn: Callable[[], Any], *, repeats: int, number: int = 1) -> Timing:
    """Time a stateless call: first call (compile), one warm call, then ``repeats`` x ``number``.

    Returns:
      :class:`Timing` with seconds per call.
    """
    t0 = time.perf_counter()
    _block(fn())
    compile_s = time.perf_counter() - t0
    _block(fn())
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = None
        for _ in range(number):
            out = fn()
        _block(out)
        times.append((time.perf_counter() - t0) / number)
    return Timing(compile_s, times)


def time_chain(
    step: Callable[[Any], Any], state: Any, *, repeats: int, number: int = 1
) -> tuple[Timing, Any]:
    """Time ``state = step(state)`` chains (donated states are never reused).

    ``step`` returns ``(state, aux)``. Returns the :class:`Timing` (seconds per call) and the
    final state.
    """
    t0 = time.perf_counter()
    state, aux = step(state)
    _block((state, aux))
    compile_s = time.perf_counter() - t0
    state, aux = step(state)
    _block((state, aux))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(number):
            state, aux = step(state)
        _block((state, aux))
        times.append((time.perf_counter() - t0) / number)
    return Timing(compile_s, times), state


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (falls back to ``platform.processor()``)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def load_average() -> tuple[float, float, float]:
    """``os.getloadavg()`` (1, 5, 15 minutes)."""
    return tuple(round(v, 2) for v in os.getloadavg())


def machine_info() -> dict[str, Any]:
    """CPU model, cores, SIMD, memory, library versions, XLA flags, load average, date."""
    import flax
    import jax
    import jaxlib
    import numpy as np
    import optax

    from jpose._git import head_state

    flags = _cpu_flags()
    try:
        mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        mem_gb = float("nan")
    commit = head_state(short=True)[0] or ""
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "avx512f": "avx512f" in flags,
        "avx2": "avx2" in flags,
        "memory_gb": round(mem_gb, 1),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "flax": flax.__version__,
        "optax": optax.__version__,
        "numpy": np.__version__,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "load_average": load_average(),
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "git_commit": commit,
    }


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if v != v:
            return "-"
        if abs(v) >= 100:
            return f"{v:,.0f}"
        if abs(v) >= 10:
            return f"{v:.1f}"
        if abs(v) >= 0.01:
            return f"{v:.2f}"
        return f"{v:.2e}"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if v is None:
        return "-"
    return str(v)


def section_markdown(section: dict[str, Any]) -> str:
    """A benchmark section as markdown (table, targets, notes)."""
    lines = [f"## {section['title']}", ""]
    load = section.get("load")
    if load:
        lines += [f"Load average (1 min) at start / end: {load[0][0]} / {load[1][0]}.", ""]
    cols = section["columns"]
    lines.append("| " + " | ".join(cols) + " |")
    lines.append("|" + "---|" * len(cols))
    for row in section["rows"]:
        lines.append("| " + " | ".join(_fmt(row.get(c)) for c in cols) + " |")
    lines.append("")
    if section.get("targets"):
        lines += ["| target | required | measured | met |", "|---|---|---|---|"]
        for t in section["targets"]:
            lines.append(
                f"| {t['name']} | {t['target']} | {_fmt(t['value'])} | "
                f"{'**yes**' if t['met'] else '**no**'} |"
            )
        lines.append("")
    for note in section.get("notes", []):
        lines.append(f"- {note}")
    if section.get("notes"):
        lines.append("")
    return "\n".join(lines)


def main_for(run: Callable[[bool], dict[str, Any]], doc: str | None) -> None:
    """Command line of a benchmark module: ``[--quick] [--json PATH]``."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0] if doc else None)
    parser.add_argument("--quick", action="store_true", help="tiny repeat counts (sanity check)")
    parser.add_argument("--json", default="", help="write the section as JSON here")
    args = parser.parse_args()
    start = load_average()
    section = run(args.quick)
    section["load"] = (start, load_average())
    if args.json:
        with open(args.json, "w") as f:
            json.dump(section, f, indent=1, default=float)
    print(section_markdown(section))
