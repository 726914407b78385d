"""``jpose.training.sweep``: statistics over seeds worked by hand, the three verdicts, a seed's
run reused when its recorded command matches (tiny ``python -c`` commands), failures recorded,
and the report's markdown and json."""

from __future__ import annotations

import json
import math
import sys

import pytest

from jpose.training import sweep


def test_mean_std_and_formatting():
    # [1, 2, 4]: mean 7/3; squared deviations 16/9 + 1/9 + 25/9 = 42/9, / (3 - 1) -> 7/3
    mean, std = sweep.mean_std([1.0, 2.0, 4.0])
    assert mean == pytest.approx(7 / 3) and std == pytest.approx(math.sqrt(7 / 3))
    assert sweep.format_mean_std([1.0, 2.0, 4.0]) == "2.3 ± 1.5"
    assert sweep.format_mean_std([1.0, 2.0, 4.0], digits=3) == "2.333 ± 1.528"
    assert sweep.mean_std([5.0]) == (5.0, 0.0) and sweep.format_mean_std([5.0]) == "5.0"
    assert all(math.isnan(x) for x in sweep.mean_std([])) and sweep.format_mean_std([]) == "n/a"


def test_lower_verdict():
    assert sweep.lower_verdict([1.0, 2.0, 3.0], [10.0, 11.0, 12.0]) == "reproduces"
    # means 2 and 3, spread max(1, 0.5) = 1: 2 is not below 3 - 1
    assert sweep.lower_verdict([1.0, 2.0, 3.0], [2.5, 3.0, 3.5]) == "direction only"
    assert sweep.lower_verdict([1.0], [10.0, 11.0]) == "direction only"  # one seed of a
    assert sweep.lower_verdict([5.0, 6.0, 7.0], [1.0, 2.0, 3.0]) == "does not reproduce"
    assert sweep.lower_verdict([2.0, 2.0], [2.0, 2.0]) == "does not reproduce"
    assert sweep.lower_verdict([], [1.0]) == "not measured"


def test_format_wall():
    ok = [{"wall_s": 60.0}, {"wall_s": 180.0}]
    assert sweep.format_wall(ok) == "2.0 min"
    assert sweep.format_wall([*ok, {"failed": "x", "wall_s": 0.0}]) == "2.0 min (1 failed)"
    assert sweep.format_wall([{"failed": "x", "wall_s": 0.0}] * 2) == "failed (2 of 2)"
    assert sweep.format_wall([]) == "n/a"  # no seeds run: nothing failed


# appends a line to <workdir>/count and writes <workdir>/score
_TRAIN = (
    "import pathlib, sys; d = pathlib.Path(sys.argv[1]); "
    "open(d / 'count', 'a').write('x'); (d / 'score').write_text(sys.argv[2]); print('trained')"
)


def _score(workdir):
    return {"x": float((workdir / "score").read_text())}


def test_run_seed_runs_then_reuses(tmp_path):
    wd = tmp_path / "run" / "seed0"
    lines = []
    cmd = [sys.executable, "-c", _TRAIN, str(wd), "3.5"]
    then = [[sys.executable, "-c", "print('evaluated')"]]
    kw = {"workdir": wd, "label": "run seed 0", "score": _score, "log": lines.append}
    rec = sweep.run_seed(cmd, then=then, **kw)
    assert rec["scores"] == {"x": 3.5} and rec["command"] == cmd[1:]
    assert rec["workdir"] == str(wd) and rec["wall_s"] > 0 and rec["code"]
    assert (tmp_path / "run" / "seed0.log").read_text() == "trained\nevaluated\n"
    assert json.loads((wd / sweep.RECORD).read_text())["command"] == cmd[1:]
    # the same command: reused, not run again (another interpreter path does not matter)
    again = sweep.run_seed(["python3", *cmd[1:]], then=then, **kw)
    assert (wd / "count").read_text() == "x" and again == rec
    assert lines[-1] == f"  run seed 0: reusing {wd}"
    # another command: run again
    other = sweep.run_seed([*cmd[:-1], "4.5"], then=then, **kw)
    assert (wd / "count").read_text() == "xx" and other["scores"] == {"x": 4.5}


def test_run_seed_reuses_only_with_the_same_follow_up_commands(tmp_path):
    wd = tmp_path / "seed0"
    cmd = [sys.executable, "-c", _TRAIN, str(wd), "1.0"]
    kw = {"workdir": wd, "label": "x", "score": _score, "log": lambda line: None}
    evaluate = [sys.executable, "-c", "print('evaluated')"]
    rec = sweep.run_seed(cmd, then=[evaluate], **kw)
    assert rec["then"] == [evaluate[1:]] and (wd / "count").read_text() == "x"
    sweep.run_seed(cmd, then=[["python3", *evaluate[1:]]], **kw)  # the same: reused
    assert (wd / "count").read_text() == "x"
    sweep.run_seed(cmd, **kw)  # without the evaluation: not the same run
    assert (wd / "count").read_text() == "xx"
    sweep.run_seed(cmd, then=[[*evaluate[:-1], "print('other')"]], **kw)
    assert (wd / "count").read_text() == "xxx"
    # a record written before follow-ups were recorded holds whatever the caller declares now
    record = wd / sweep.RECORD
    old = json.loads(record.read_text())
    del old["then"]
    record.write_text(json.dumps(old))
    sweep.run_seed(cmd, then=[evaluate], **kw)
    assert (wd / "count").read_text() == "xxx"


def test_a_corrupt_record_fails_the_seed_not_the_sweep(tmp_path):
    wd = tmp_path / "seed0"
    wd.mkdir()
    (wd / sweep.RECORD).write_text('{"command": [')  # e.g. a write cut short
    cmd = [sys.executable, "-c", _TRAIN, str(wd), "1.0"]
    rec = sweep.run_seed(cmd, workdir=wd, label="x", score=_score, log=lambda line: None)
    assert rec["scores"] == {} and "Expecting" in rec["failed"]
    assert not (wd / "count").exists()


def test_run_seed_records_failures(tmp_path):
    lines = []
    wd = tmp_path / "seed0"
    fail = [sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"]
    rec = sweep.run_seed(fail, workdir=wd, label="bad", score=_score, log=lines.append)
    assert rec == {"failed": rec["failed"], "wall_s": 0.0, "scores": {}, "command": fail[1:]}
    assert "bad failed (exit 3)" in rec["failed"] and lines[-1].startswith("    FAILED: bad")
    assert (tmp_path / "seed0.log").read_text() == "boom\n" and not (wd / sweep.RECORD).exists()
    # a failing follow-up command, a run that cannot be scored
    ok = [sys.executable, "-c", _TRAIN, str(wd), "1.0"]
    bad_then = [[sys.executable, "-c", "raise SystemExit(1)"]]
    rec = sweep.run_seed(ok, workdir=wd, label="x", score=_score, then=bad_then, log=lines.append)
    assert "returned non-zero exit status 1" in rec["failed"]
    rec = sweep.run_seed(ok, workdir=wd, label="x", score=lambda w: {}["p1"], log=lines.append)
    assert rec["failed"] == "'p1'" and rec["scores"] == {}


def test_write_report(tmp_path):
    section = {
        "title": "A vs B",
        "claim": "A is lower.",
        "header": ("run", "P1"),
        "rows": [("a", "1.0 ± 0.1"), ("b", "2.0")],
        "verdict": "reproduces",
        "commands": ["python -m a", "python -m b"],
        "other": "ignored",
    }
    md, js = sweep.write_report(
        tmp_path / "Report.md",
        title="T",
        paragraphs=["Intro."],
        sections=[section],
        data={"n": 1},
        claim_label="Paper's claim",
    )
    assert js == tmp_path / "report.json" and json.loads(js.read_text()) == {"n": 1}
    assert md.read_text() == (
        "# T\n\nIntro.\n\n## A vs B\n\n**Paper's claim.** A is lower.\n\n| run | P1 |\n|---|---|\n"
        "| a | 1.0 ± 0.1 |\n| b | 2.0 |\n\n**Verdict.** reproduces\n\nCommands:\n\n"
        "    python -m a\n    python -m b\n"
    )
    kw = {"title": "T", "paragraphs": [], "sections": [], "data": {"n": 2}}
    _, js = sweep.write_report(tmp_path / "Other.md", json_path=tmp_path / "numbers.json", **kw)
    assert js == tmp_path / "numbers.json" and json.loads(js.read_text()) == {"n": 2}


def test_checkout_label_outside_a_checkout(tmp_path):
    assert sweep.checkout_label(tmp_path) == "unknown"


def test_head_state_lists_every_changed_file_in_porcelain_form(tmp_path):
    """Each uncommitted change is one ``XY path`` line; the first keeps its leading space."""
    import shutil
    import subprocess

    from jpose._git import head_state

    if shutil.which("git") is None:
        pytest.skip("git is not installed")

    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    for name in ("a.py", "b.py"):
        (tmp_path / name).write_text("x = 1\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "c")
    for name in ("a.py", "b.py"):
        (tmp_path / name).write_text("x = 2\n")
    head, dirty = head_state(tmp_path, short=True)
    assert head and dirty == [" M a.py", " M b.py"]
