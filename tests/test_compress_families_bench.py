"""The PBKD families benchmark's summary and tables (benchmarks/compress_families.py), on fake run results."""

from __future__ import annotations

import json

import pytest
from helpers import benchmark_module


@pytest.fixture(scope="module")
def bench():
    with benchmark_module("compress_families") as module:
        yield module


def fake_report(seed: int, pbkd: float, baselines: dict[str, float]) -> dict:
    return {
        "seed": seed,
        "student_ratio": 0.5,
        "teacher": {"accuracy": 91.0, "macs": 30e6},
        "student": {"accuracy": pbkd, "macs": 10e6},
        "speedup": {"macs": 3.0},
        "baselines": {m: {"accuracy": a, "seconds": 10.0} for m, a in baselines.items()},
        "training": {"pbkd_seconds": 5.0, "pbkd_steps": 100},
    }


def test_summary_shape_and_paired_interval_by_hand(bench, tmp_path, monkeypatch) -> None:
    fam = bench.Family("toy", "toy net", "configs/x.yaml", [], 2.5, 1.5)
    monkeypatch.setattr(bench, "FAMILIES", {"toy": fam})
    out = tmp_path / "runs"
    # KD has the highest mean (89.0) although scratch wins seed 2: the best baseline is chosen by its mean
    runs = {
        0: (90.0, {"scratch": 88.0, "kd": 89.0, "fitnets": 88.5, "at": 80.0}),
        1: (90.5, {"scratch": 88.0, "kd": 88.5, "fitnets": 88.5, "at": 80.0}),
        2: (89.0, {"scratch": 89.5, "kd": 89.5, "fitnets": 88.0, "at": 79.0}),
    }
    for seed, (pbkd, base) in runs.items():
        folder = out / "toy" / f"seed{seed}"
        folder.mkdir(parents=True)
        (folder / "report.json").write_text(json.dumps(fake_report(seed, pbkd, base)))
    (out / "toy" / "teacher").mkdir()
    (out / "toy" / "teacher" / "report.json").write_text(
        json.dumps({"accuracy": 91.0, "train_seconds": 60.0})
    )
    latency = {"teacher": {"1": 4.0, "64": 120.0}, "student": {"1": 2.0, "64": 50.0}}
    (out / "toy" / "latency.json").write_text(json.dumps(latency))  # cached: nothing is measured

    entries = bench.collect(out, ["toy"], [0, 1, 2], remeasure=False, latency=True)
    text = bench.write_results(entries, tmp_path / "results")
    summary = json.loads((tmp_path / "results" / "compress_summary.json").read_text())
    assert summary == json.loads(json.dumps(entries))
    (e,) = summary
    assert {
        "family",
        "seeds",
        "teacher_accuracy",
        "macs_ratio",
        "drop",
        "methods",
        "vs_best_baseline",
    } <= set(e)
    assert e["family"] == "toy" and e["seeds"] == [0, 1, 2] and e["teacher_accuracy"] == 91.0
    assert set(e["methods"]) == {"pbkd", "scratch", "kd", "fitnets", "at"}
    assert e["methods"]["pbkd"]["mean"] == pytest.approx(89.8333333)
    assert e["methods"]["kd"] == {"mean": pytest.approx(89.0), "std": pytest.approx(0.5)}
    assert e["drop"] == pytest.approx(91.0 - 89.8333333)
    # paired by seed against KD: 1.0, 2.0, -0.5 → mean 5/6, std sqrt(19/12), t(0.975, 2) = 4.303
    vs = e["vs_best_baseline"]
    assert vs["baseline"] == "kd" and vs["per_seed"] == pytest.approx([1.0, 2.0, -0.5])
    half = 4.303 * (19 / 12) ** 0.5 / 3**0.5
    assert vs["mean"] == pytest.approx(5 / 6)
    assert vs["ci95"] == pytest.approx([5 / 6 - half, 5 / 6 + half])
    assert e["macs_ratio"] == 3.0 and e["speedup"] == {"1": 2.0, "64": 2.4}
    assert e["speedup64_over_macs"] == pytest.approx(0.8)
    assert e["targets"] == {"macs": True, "drop": True, "vs_best_baseline": True, "latency": True}
    assert e["steps"] == 100 and e["teacher_seconds"] == 60.0
    assert "| toy net | 3 | 91.00 | 89.83 ± 0.76 |" in text
    assert (tmp_path / "results" / "compress_families.md").read_text() == text


def test_targets_missed(bench) -> None:
    base = {"scratch": 90.0}
    reports = [fake_report(s, 88.0 + 0.1 * s, base) for s in range(3)]
    e = bench.family_summary("toy", reports, 91.0, None, 3.5, 1.0)
    assert e["vs_best_baseline"]["ci95"][1] < 0
    assert e["targets"] == {"macs": False, "drop": False, "vs_best_baseline": False, "latency": None}
    one = bench.family_summary("toy", reports[:1], 91.0, None, 2.5, 1.0)
    assert one["vs_best_baseline"]["ci95"] is None and one["methods"]["pbkd"]["std"] == 0.0


def test_a_finished_run_is_reused_only_with_the_config_it_would_run_now(bench, tmp_path) -> None:
    from distillkit.config import dump_config

    family, teacher = bench.FAMILIES["vgg16"], tmp_path / "teacher" / "model.pt"
    want = bench.family_config(family, 0, teacher)
    assert want.student.plain == "internal" and want.pbkd.optim.lr == 0.01  # the family's settings
    folder = tmp_path / "seed0"
    assert not bench.finished(folder, want)  # nothing there: run it
    folder.mkdir()
    (folder / "report.json").write_text(json.dumps({"config": dump_config(want)}))
    assert bench.finished(folder, want)
    # a probe variant's overrides come before the seed and teacher: the 1×1-restore run is another config
    restore = bench.family_config(family, 0, teacher, ["student.plain=restore"])
    assert restore.student.plain == "restore" and restore.seed == 0
    with pytest.raises(SystemExit, match=r"seed0 finished with another config .* \(differs at: student\)"):
        bench.finished(folder, restore)


def test_merge_takes_each_family_from_the_last_folder_that_holds_it(bench, tmp_path, monkeypatch) -> None:
    toy = bench.Family("toy", "toy net", "configs/x.yaml", [], 2.5, 1.5)
    other = bench.Family("other", "other net", "configs/y.yaml", [], 2.5, 1.5)
    monkeypatch.setattr(bench, "FAMILIES", {"toy": toy, "other": other})  # the table's order
    base = {"scratch": 88.0, "kd": 88.5}
    reports = [fake_report(s, 89.0 + s, base) for s in range(3)]
    older, newer = tmp_path / "older", tmp_path / "newer"
    for folder, families, pbkd in ((older, ["toy", "other"], 0.0), (newer, ["toy"], 1.0)):
        folder.mkdir()
        entries = [bench.family_summary(f, [{**r, "student": {"accuracy": r["student"]["accuracy"] + pbkd,
                                                              "macs": 10e6}} for r in reports], 91.0, None, 2.5,
                                        1.5) for f in families]  # fmt: skip
        (folder / "compress_summary.json").write_text(json.dumps(entries))
    dest = tmp_path / "results"
    text = bench.merge_results([older, newer], dest)
    summary = json.loads((dest / "compress_summary.json").read_text())
    assert [(e["family"], e["results_from"]) for e in summary] == [
        ("toy", newer.as_posix()),
        ("other", older.as_posix()),
    ]
    assert summary[0]["methods"]["pbkd"]["mean"] == pytest.approx(91.0)  # the newer folder's, 1 point up
    assert summary[1]["methods"]["pbkd"]["mean"] == pytest.approx(90.0)
    assert "| toy net | 3 | 91.00 | 91.00 ± 1.00 |" in text and "(newer/compress_families.md)" in text
    assert (dest / "compress_families.md").read_text() == text
    with pytest.raises(SystemExit, match="no such file"):
        bench.merge_results([tmp_path / "missing"], dest)
    with pytest.raises(SystemExit, match="where the merged table goes"):
        bench.merge_results([older, dest], dest)


def test_compare_pairs_two_variants_by_seed_on_the_same_teacher(bench, tmp_path, monkeypatch) -> None:
    """`--compare A B`: each method's A − B seed by seed, with the t-interval by hand; only seeds finished in both
    count; runs from different teachers are refused."""
    fam = bench.Family("toy", "toy net", "configs/x.yaml", [], 2.5, 1.5)
    monkeypatch.setattr(bench, "FAMILIES", {"toy": fam})
    a, b = tmp_path / "a", tmp_path / "b"
    runs = {a: {0: (90.0, 88.0), 1: (91.0, 88.5), 2: (89.0, 87.0)}, b: {0: (89.0, 88.5), 1: (89.5, None)}}
    for out, seeds in runs.items():
        (out / "toy" / "teacher").mkdir(parents=True)
        (out / "toy" / "teacher" / "report.json").write_text(json.dumps({"accuracy": 91.0}))
        for seed, (pbkd, kd) in seeds.items():
            (out / "toy" / f"seed{seed}").mkdir()
            report = fake_report(seed, pbkd, {} if kd is None else {"kd": kd})  # None: KD did not run
            (out / "toy" / f"seed{seed}" / "report.json").write_text(json.dumps(report))
    rows = bench.paired_runs(a, b, ["toy"], [0, 1, 2])
    assert [(r["method"], r["seeds"], r["per_seed"]) for r in rows] == [
        ("pbkd", [0, 1], [1.0, 1.5]),
        ("kd", [0], [-0.5]),  # only the seeds where both ran it
    ]
    pbkd = rows[0]
    half = 12.706 * (0.5**0.5 / 2**0.5) * 0.5  # t(0.975, 1) · std / √n, std of (1.0, 1.5) = 0.5 / √2
    assert pbkd["mean"] == 1.25 and pbkd["ci95"] == pytest.approx([1.25 - half, 1.25 + half])
    assert pbkd["a"] == {"mean": 90.5, "std": pytest.approx(0.5**0.5)}
    text = bench.compare_markdown(rows, a, b)
    assert "| toy net | PBKD | 90.50 ± 0.71 | 89.25 ± 0.35 | +1.00 / +1.50 | +1.25 |" in text
    assert "| toy net | KD | 88.00 ± 0.00 | 88.50 ± 0.00 | -0.50 | -0.50 | n/a | not separated |" in text
    assert text.count("not separated") == 2
    assert bench.verdict([0.1, 1.0]) == "better" and bench.verdict([-1.0, -0.1]) == "worse"
    (b / "toy" / "teacher" / "report.json").write_text(json.dumps({"accuracy": 90.0}))
    with pytest.raises(SystemExit, match="teachers in .* differ"):
        bench.paired_runs(a, b, ["toy"], [0, 1, 2])
