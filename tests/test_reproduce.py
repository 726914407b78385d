"""``experiments.reproduce``: the comparison logic on made-up per-seed numbers, the quick smoke
run end to end (real subprocess trainings, reuse on a second call), and the CMU cross-domain split
the CameraPose comparison trains on."""

from __future__ import annotations

import json

import numpy as np
import pytest

from experiments import reproduce as R
from jpose.data import cmu, presets


def _runs(values):
    runs = [{"wall_s": 60.0, "command": ["-m", "x"], "scores": dict(v)} for v in values]
    return {"experiment": "x", "runs": runs}


def _fake_results(*, drover_p2: float, geo_sym: float) -> dict:
    ref = [{"p1": 50.0 + d, "p2": 40.0 + d} for d in (0.0, 1.0, -1.0)]
    res = {f"{R.REFERENCE}/supervised": _runs(ref)}
    res["drover/learned"] = _runs(
        [{"p2": drover_p2 + d, "trivial_p2": 100.0 + d} for d in (0.0, 0.5, -0.5)]
    )
    for name, p2 in (
        ("reproj", 300.0),
        ("trans", 60.0),
        ("trans_da", 55.0),
        ("trans_uncalibrated", 62.0),
    ):
        res[f"li/{name}"] = _runs([{"ref_p1": p2 + 20 + d, "ref_p2": p2 + d} for d in (0, 1, 2)])
    res["zhou/with_geo"] = _runs(
        [{"symmetry_heldout": geo_sym + d, "p1": 70.0, "p2": 50.0} for d in (0.0, 0.01, 0.02)]
    )
    res["zhou/without_geo"] = _runs(
        [{"symmetry_heldout": 0.5 + d, "p1": 71.0, "p2": 51.0} for d in (0.0, 0.01, 0.02)]
    )
    wsp = {}
    for f, (pre, scr) in {
        "001pct": (90.0, 120.0),
        "010pct": (70.0, 71.0),
        "100pct": (60.0, 55.0),
    }.items():
        wsp.update(
            {
                f"{f}_pretrained_p1": pre,
                f"{f}_random_p1": scr,
                f"{f}_pretrained_p2": pre - 10,
                f"{f}_random_p2": scr - 10,
            }
        )
    res["wsp/pretrain_vs_scratch"] = _runs([wsp, wsp, wsp])
    for name, p2 in (
        ("full", 60.0),
        ("switches_off", 70.0),
        ("refine_only", 69.0),
        ("camera_only", 65.0),
        ("gan_only", 72.0),
    ):
        res[f"camerapose/{name}"] = _runs(
            [{"p1": p2 + 15, "p2": p2 + d, "noisy_p2": p2 + 5 + d} for d in (0.0, 1.0, 2.0)]
        )
    return res


def test_verdicts_follow_the_numbers(tmp_path):
    papers = [c.paper for c in R.COMPARISONS]
    good = {s["paper"]: s for s in R.summarize(_fake_results(drover_p2=45.0, geo_sym=0.2), papers)}
    assert good["camerapose"]["verdict"].count("reproduces") == 2
    assert "= 1.12" in good["drover"]["verdict"] and "met" in good["drover"]["verdict"]
    assert "not met" not in good["drover"]["verdict"]
    assert "ordering Reproj > Trans_Reproj > +DA: reproduces" in good["li"]["verdict"]
    assert good["zhou"]["verdict"].startswith(
        "geometric loss lowers held-out symmetry error: reproduces"
    )
    assert good["wsp"]["verdict"].endswith(
        "1 %: reproduces; 10 %: reproduces; 100 %: does not reproduce"
    )
    bad = {s["paper"]: s for s in R.summarize(_fake_results(drover_p2=60.0, geo_sym=0.9), papers)}
    assert "not met" in bad["drover"]["verdict"]  # 60 / 40 = 1.5 > 1.3
    assert "symmetry error: does not reproduce" in bad["zhou"]["verdict"]
    md, js = R.write_report(
        _fake_results(drover_p2=45.0, geo_sym=0.2),
        papers,
        budget="cpu",
        seeds=3,
        output=tmp_path / "REPRODUCTION.md",
        wall_s=600.0,
    )
    text = md.read_text()
    for c in R.COMPARISONS:
        assert c.title in text
    assert "45.0 ± 0.5" in text  # Drover's three seeds: mean ± sample std
    saved = json.loads(js.read_text())
    assert saved["runs"]["drover/learned"]["runs"][1]["scores"]["p2"] == 45.5


def test_a_failed_run_is_reported_not_fatal():
    res = _fake_results(drover_p2=45.0, geo_sym=0.2)
    res["drover/learned"]["runs"][2] = {
        "failed": "boom",
        "wall_s": 0.0,
        "scores": {},
        "command": [],
    }
    (s,) = R.summarize(res, ["drover"])
    assert "(1 failed)" in s["rows"][0][-1] and s["rows"][0][1] == "45.2 ± 0.4"


def test_wsp_table_survives_a_failed_seed_0():
    res = _fake_results(drover_p2=45.0, geo_sym=0.2)
    res["wsp/pretrain_vs_scratch"]["runs"][0] = {"failed": "boom", "wall_s": 0.0, "scores": {}}
    (s,) = R.summarize(res, ["wsp"])
    assert [row[:3] for row in s["rows"]] == [
        ("1 %", "90.0 ± 0.0", "120.0 ± 0.0"),
        ("10 %", "70.0 ± 0.0", "71.0 ± 0.0"),
        ("100 %", "60.0 ± 0.0", "55.0 ± 0.0"),
    ]
    assert s["verdict"].endswith("1 %: reproduces; 10 %: reproduces; 100 %: does not reproduce")


def test_quick_end_to_end_and_reuse(tmp_path):
    out = tmp_path / "R.md"
    args = ["--quick", "--papers=drover", f"--workdir={tmp_path / 'runs'}", f"--output={out}"]
    assert R.main(args) == 0
    first = json.loads((tmp_path / "r.json").read_text())
    assert set(first["runs"]) == {f"{R.REFERENCE}/supervised", "drover/learned"}
    for entry in first["runs"].values():
        (rec,) = entry["runs"]
        assert "failed" not in rec and np.isfinite(rec["scores"]["p2"])
        assert (tmp_path / "runs").as_posix() in rec["workdir"]
    assert "Drover et al." in out.read_text()
    assert R.main(args) == 0  # finished runs are reused, not retrained
    again = json.loads((tmp_path / "r.json").read_text())
    assert again["runs"] == first["runs"]


def test_cmu_cross_domain_split():
    folder = presets.shared_data_dir()
    if folder is None or not (folder / "cmu_mocap_h36m17.npz").is_file():
        pytest.skip("needs ../shared/data/cmu_mocap_h36m17.npz (set JPOSE_SHARED_DATA)")
    mocap = cmu.load_cmu_mocap(folder / "cmu_mocap_h36m17.npz")
    train_actions = R.CROSS_ACTIONS.split(",")
    train = mocap.names("train", actions=train_actions)
    test = mocap.names("test", exclude_actions=train_actions)
    assert train and test
    assert {mocap.action[n] for n in train} == set(train_actions)
    assert not {mocap.action[n] for n in test} & set(train_actions)
    with pytest.raises(ValueError, match="unknown CMU action 'bowling'"):
        mocap.names("train", actions=["bowling"])
    ds = cmu.cmu_pose_pairs(
        mocap, split="test", subsample=40, num_cameras=1, exclude_actions=train_actions
    )
    assert set(np.unique(ds.labels["action"])) == {mocap.action[n] for n in test}
