"""TensorBoard through the one declared dependency, tensorboardX (issue 21): ``MetricsLogger``
writes an event file whose scalars read back, and warns once when tensorboardX is missing."""

from __future__ import annotations

import logging
import pathlib
import struct
import sys

import pytest

from jpose.training import logging as jlog
from jpose.training.logging import MetricsLogger


def read_scalars(logdir: pathlib.Path) -> dict[str, list[tuple[int, float]]]:
    """``{tag: [(step, value), ...]}`` of every event file under ``logdir`` (TFRecord framing:
    length u64, its CRC u32, the ``Event`` proto, its CRC u32)."""
    from tensorboardX.proto import event_pb2

    out: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(logdir.rglob("events.out.tfevents.*")):
        data = path.read_bytes()
        pos = 0
        while pos + 12 <= len(data):
            (length,) = struct.unpack("<Q", data[pos : pos + 8])
            event = event_pb2.Event.FromString(data[pos + 12 : pos + 12 + length])
            pos += 12 + length + 4
            for v in event.summary.value:
                out.setdefault(v.tag, []).append((int(event.step), float(v.simple_value)))
    return out


def test_metrics_logger_writes_tensorboard_events(tmp_path):
    pytest.importorskip("tensorboardX")
    with MetricsLogger(tmp_path, progress=False) as log:
        assert log.has_tensorboard
        log.log(10, {"lifter/loss": 0.5})
        log.log(20, {"lifter/loss": 0.25})
        log.log(20, {"mpjpe_mm": 80.0}, split="val")
    scalars = read_scalars(tmp_path / "tensorboard")
    assert scalars["train/lifter/loss"] == [(10, 0.5), (20, 0.25)]
    assert scalars["val/mpjpe_mm"] == [(20, 80.0)]


def test_writers_opened_in_the_same_second_keep_their_own_files(tmp_path):
    """Each stage of a run opens its own logger on the run's directory; two opened within one
    second (short stages) must not overwrite each other's event file."""
    pytest.importorskip("tensorboardX")
    for stage in ("stage2", "stage3"):
        with MetricsLogger(tmp_path, progress=False) as log:
            log.log(1, {f"{stage}/loss": 1.0})
    scalars = read_scalars(tmp_path / "tensorboard")
    assert scalars == {"train/stage2/loss": [(1, 1.0)], "train/stage3/loss": [(1, 1.0)]}


def test_missing_tensorboardx_warns_once(tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # import fails
    monkeypatch.setattr(jlog, "_TB_WARNED", False)
    with caplog.at_level(logging.WARNING, logger="jpose.training"):
        for i in range(2):
            with MetricsLogger(tmp_path / str(i), progress=False) as log:
                assert not log.has_tensorboard
                log.log(1, {"loss": 1.0})
            assert (tmp_path / str(i) / "metrics.jsonl").is_file()
    warnings = [r for r in caplog.records if "tensorboardX" in r.getMessage()]
    assert len(warnings) == 1 and "jpose[tensorboard]" in warnings[0].getMessage()
