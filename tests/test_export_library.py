"""Tests of ``jpose.inference.export`` (writing bundles and model cards) that need no trained run:
the numbers comparison, the bundle files, the git provenance and the card's markdown. The export
of a trained run is tested in ``tests/test_pretrained.py``."""

import json
import shutil
import subprocess

import numpy as np
import pytest

from jpose.inference import bundles
from jpose.inference import export as ex


def _record(mpjpe_walk=50.0, p_mpjpe=40.0, absolute=None):
    metrics = {
        "mpjpe": {"per_action": {"walk": mpjpe_walk, "run": 60.0}, "action_wise": 55.0,
                  "frame_wise": 54.0},
        "p_mpjpe": {"per_action": {"walk": p_mpjpe}, "action_wise": 41.0, "frame_wise": 42.0},
    }  # fmt: skip
    rec = {"dataset": "d", "num_examples": 7, "metrics": metrics}
    if absolute is not None:
        rec["absolute"] = {"root_translation_error": {"action_wise": absolute, "frame_wise": 9.0}}
    return rec


def test_max_difference_over_every_number():
    a = {"test": _record()}
    assert ex.max_difference_mm(a, {"test": _record()}) == 0.0
    assert ex.max_difference_mm(a, {"test": _record(mpjpe_walk=50.25)}) == pytest.approx(0.25)
    assert ex.max_difference_mm(a, {"test": _record(p_mpjpe=39.0)}) == pytest.approx(1.0)
    # the root-translation error counts; a number missing from one side gives inf
    with_abs = {"test": _record(absolute=10.0)}
    assert ex.max_difference_mm(with_abs, {"test": _record(absolute=12.5)}) == pytest.approx(2.5)
    assert ex.max_difference_mm(a, with_abs) == float("inf")
    assert ex.max_difference_mm(a, {"val": _record()}) == float("inf")
    assert ex.max_difference_mm({}, {}) == float("inf")


def test_metric_numbers_keeps_counts_and_metrics():
    ev = {"dataset": "cmu test", "num_examples": np.int64(12), "predictions": np.zeros((12, 17, 3)),
          "metrics": {"mpjpe": {"action_wise": np.float32(3.5), "frame_wise": 4.0}}}  # fmt: skip
    got = ex.metric_numbers(ev)
    assert got == {"dataset": "cmu test", "num_examples": 12,
                   "metrics": {"mpjpe": {"action_wise": 3.5, "frame_wise": 4.0}}}  # fmt: skip
    assert type(got["num_examples"]) is int
    json.dumps(got)  # JSON-ready


def test_write_bundle_weights_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    flat = {
        "lifter/lifter/params/Dense_0/kernel": rng.normal(size=(3, 4)).astype(np.float32),
        "lifter/lifter/batch_stats/bn/count": np.arange(3, dtype=np.int32),
        "lifter/disc/params/Dense_0/bias": np.ones(2, np.float32),
    }
    info = {"name": "t", "checkpoint": {"pre": 5, "lifter": 20}, "restore_dtype": "float32"}
    digest = bundles.write_bundle_weights(tmp_path, flat, info, dtype="float16")
    assert (tmp_path / "weights.sha256").read_text() == f"{digest}  weights.npz\n"
    written = json.loads((tmp_path / "bundle.json").read_text())
    assert list(written) == ["format", "version", "name", "checkpoint", "restore_dtype", "dtype"]
    assert written["dtype"] == "float16" and written["format"] == bundles.FORMAT
    assert bundles.verify_bundle(tmp_path) == digest
    variables, steps = bundles.bundle_variables(tmp_path, ["pre", "lifter"], ["lifter"])
    assert steps == {"pre": 5, "lifter": 20}
    kernel = variables["lifter"]["params"]["Dense_0"]["kernel"]
    assert kernel.dtype == np.float32
    np.testing.assert_array_equal(
        kernel, flat["lifter/lifter/params/Dense_0/kernel"].astype(np.float16).astype(np.float32)
    )
    count = variables["lifter"]["batch_stats"]["bn"]["count"]
    assert count.dtype == np.int32 and count.tolist() == [0, 1, 2]  # integers stored unchanged
    with pytest.raises(bundles.BundleError, match="step"):
        bundles.bundle_variables(tmp_path, ["lifter"], ["lifter"], step=3)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_provenance(tmp_path):
    assert ex.git_output(tmp_path, "rev-parse", "HEAD") is None  # not a checkout
    assert ex.checkout_commit(tmp_path)["commit"] == "unknown"

    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "a.txt").write_text("a\n")
    git("add", "a.txt")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "first")
    rec = ex.checkout_commit(tmp_path)
    assert len(rec["commit"]) == 40 and int(rec["commit"], 16) >= 0
    assert "uncommitted_changes" not in rec
    (tmp_path / "untracked.txt").write_text("x\n")  # untracked files do not count
    assert "uncommitted_changes" not in ex.checkout_commit(tmp_path)
    (tmp_path / "a.txt").write_text("b\n")
    rec = ex.checkout_commit(tmp_path / ".")
    assert [line.split()[-1] for line in rec["uncommitted_changes"]] == ["a.txt"]


def _card(has_camera):
    split = _record(absolute=123.456 if has_camera else None)
    return {
        "name": "tiny", "description": "one line", "layout": "h36m17", "normalization": "vp",
        "has_camera": has_camera, "training_data": [{"name": "D", "licence": "L"}],
        "training_command": "train it", "training_command_source": "given at export",
        "commit": {"commit": "abc", "source": "s", "uncommitted_changes": ["M x.py"]},
        "notes": ["n1"], "wall_time": {"wall_s": 3.0, "started": "t0", "finished": "t1"},
        "checkpoint": {"lifter": 20}, "networks": {"lifter": ["lifter"]},
        "parameters": {"lifter/lifter": 12},
        "weights": {"file": "weights.npz", "dtype": "float16", "bytes": 2_500_000,
                    "sha256": "f" * 64, "decision": "why"},
        "evaluation": {"dataset": "cmu", "protocol": "P", "float32": {"test": split},
                       "float16": None, "not_measured": ""},
        "training_results": {"splits": {"test": _record()},
                             "max_abs_difference_bundle_float32_mm": 0.00012,
                             "compared_split": ["test", "test"], "extra_tables": {"T": {"r": 1}}},
    }  # fmt: skip


@pytest.mark.parametrize("has_camera", [False, True])
def test_model_card_markdown(has_camera):
    text = ex.model_card_markdown(_card(has_camera))
    lines = text.splitlines()
    assert lines[0] == "# tiny: model card"
    root = "123.5 / 9.0 |" if has_camera else "- |"
    assert f"| bundle, float32 | test (N=7) | 55.00 / 54.00 | 41.00 / 42.00 | {root}" in lines
    assert "| training run results.json | test (N=7) | 55.00 / 54.00 | 41.00 / 42.00 | - |" in lines
    assert not any(line.startswith("| bundle, float16") for line in lines)
    assert "- Commit: `abc` (source: s); uncommitted changes in the checkout: M x.py" in lines
    assert "- **D**" in lines and "  - Licence / attribution: L" in lines
    assert "- Note: n1" in lines
    assert ("Root translation error: distance" in text) == has_camera
    assert "reproduces the run's `results.json` (test) to 0.0001 mm" in text
    assert '- T (training run): {"r": 1}' in lines
    assert f"- `weights.npz`: float16, 2.50 MB, sha256 `{'f' * 64}` " in text
    assert 'predictor = load_pretrained("tiny")' in text
