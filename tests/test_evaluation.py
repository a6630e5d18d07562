import json

import pytest

from ami_robot.evaluation import (
    EpisodeLog,
    ResumeMismatchError,
    markdown_table,
    summarize,
    wilson_interval,
)


def test_wilson_known_values() -> None:
    # Reference values of the Wilson score interval (z = 1.96).
    lo, hi = wilson_interval(5, 10)
    assert lo == pytest.approx(0.2366, abs=1e-4) and hi == pytest.approx(0.7634, abs=1e-4)
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = wilson_interval(50, 50)
    assert hi == pytest.approx(1.0) and lo == pytest.approx(0.9287, abs=1e-4)
    with pytest.raises(ValueError):
        wilson_interval(11, 10)


@pytest.mark.parametrize("n", [1, 7, 8, 50, 100, 1000])
def test_wilson_contains_the_rate(n) -> None:
    for k in range(n + 1):
        lo, hi = wilson_interval(k, n)
        assert 0.0 <= lo <= k / n <= hi <= 1.0
    assert wilson_interval(n, n)[1] == 1.0 and wilson_interval(0, n)[0] == 0.0  # 50/50 gave 1 - 1e-16


def test_bench_chart_with_certain_rows(tmp_path) -> None:
    from ami_robot.apps.evaluate import _bar_chart

    records = [{"task": "Reach", "method": m, "seed": s, "success": m == "expert", "final_distance": 0.0}
               for m in ("expert", "random") for s in range(50)]
    _bar_chart(summarize(records), tmp_path / "bench.png")  # 50/50 and 0/50 both have error bars
    assert (tmp_path / "bench.png").stat().st_size > 0


def test_log_resumes_and_drops_a_cut_line(tmp_path) -> None:
    path = tmp_path / "episodes.jsonl"
    log = EpisodeLog(path, {"task": "Reach", "episodes": 3})
    assert log.open() == []
    log.append({"task": "Reach", "seed": 10_000, "success": True})
    with open(path, "a") as f:
        f.write('{"task": "Reach", "seed": 10')  # killed mid-write
    again = EpisodeLog(path, {"task": "Reach", "episodes": 3})
    records = again.open()
    assert [r["seed"] for r in records] == [10_000]
    again.append({"task": "Reach", "seed": 10_001, "success": False})
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r.get("seed") for r in lines] == [None, 10_000, 10_001]


def test_log_refuses_other_config(tmp_path) -> None:
    path = tmp_path / "episodes.jsonl"
    EpisodeLog(path, {"task": "Reach", "planner": "cem"}).open()
    with pytest.raises(ResumeMismatchError, match="planner"):
        EpisodeLog(path, {"task": "Reach", "planner": "mppi"}).open()


def test_summary_and_table() -> None:
    records = [
        {"task": "Reach", "method": "cem", "success": s, "plan_seconds": [0.5, 1.0], "final_distance": d}
        for s, d in [(True, 0.01), (True, 0.02), (False, 0.2)]
    ]
    summary = summarize(records)
    row = summary["Reach/cem"]
    assert row["episodes"] == 3 and row["successes"] == 2
    assert row["plan_seconds_median"] == pytest.approx(0.75)
    assert row["final_distance_median"] == pytest.approx(0.02)
    table = markdown_table(summary)
    assert "| Reach | cem | 3 | 2/3 (67%)" in table
