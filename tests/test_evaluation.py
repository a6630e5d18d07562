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
    from ami_robot.report import save_figure, success_chart

    records = [{"task": "Reach", "method": m, "seed": s, "success": m == "expert", "final_distance": 0.0}
               for m in ("expert", "random") for s in range(50)]
    save_figure(success_chart(summarize(records)), tmp_path / "bench.png")  # 50/50 and 0/50: error bars
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


def _log_lines(path) -> list:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_log_keeps_a_complete_last_record_that_lost_its_newline(tmp_path) -> None:
    # Killed between a record and its newline: the record is complete and must be kept, and the
    # next record must not be glued onto it (that lost both and then refused to resume).
    path = tmp_path / "episodes.jsonl"
    log = EpisodeLog(path, {"task": "Reach"})
    log.open()
    log.append({"task": "Reach", "seed": 10_000, "success": True})
    with open(path, "a") as f:
        f.write(json.dumps({"task": "Reach", "seed": 10_001, "success": False}))  # no newline
    again = EpisodeLog(path, {"task": "Reach"})
    assert [r["seed"] for r in again.open()] == [10_000, 10_001]
    again.append({"task": "Reach", "seed": 10_002, "success": True})
    assert [r.get("seed") for r in _log_lines(path)] == [None, 10_000, 10_001, 10_002]
    assert [r["seed"] for r in EpisodeLog(path, {"task": "Reach"}).open()] == [10_000, 10_001, 10_002]


def test_log_cuts_only_the_torn_record(tmp_path) -> None:
    path = tmp_path / "episodes.jsonl"
    log = EpisodeLog(path, {"task": "Reach"})
    log.open()
    for seed in range(10_000, 10_004):
        log.append({"task": "Reach", "seed": seed, "success": True})
    complete = path.read_bytes()
    with open(path, "ab") as f:
        f.write(b'{"task": "Reach", "seed": 10004, "succ')
    assert [r["seed"] for r in EpisodeLog(path, {"task": "Reach"}).open()] == list(range(10_000, 10_004))
    assert path.read_bytes() == complete  # every complete byte kept, the torn tail gone


def test_log_drops_a_garbage_last_line_but_refuses_one_in_the_middle(tmp_path) -> None:
    path = tmp_path / "episodes.jsonl"
    log = EpisodeLog(path, {"task": "Reach"})
    log.open()
    log.append({"task": "Reach", "seed": 10_000, "success": True})
    with open(path, "ab") as f:
        f.write(b"\0\0\0\0\n")  # the new length reached the disk, the bytes did not
    assert [r["seed"] for r in EpisodeLog(path, {"task": "Reach"}).open()] == [10_000]
    with open(path, "ab") as f:
        f.write(b"not json\n" + json.dumps({"task": "Reach", "seed": 10_001}).encode() + b"\n")
    with pytest.raises(ValueError, match=r"episodes.jsonl:3 is not a JSON record"):
        EpisodeLog(path, {"task": "Reach"}).open()


def test_log_with_only_a_torn_header_starts_again(tmp_path) -> None:
    path = tmp_path / "episodes.jsonl"
    path.write_text('{"header": true, "finger')
    assert EpisodeLog(path, {"task": "Reach"}).open() == []
    assert _log_lines(path)[0]["header"] is True


HOLDER = """
import sys, time
from ami_robot.evaluation import EpisodeLog
EpisodeLog(sys.argv[1], {"task": "Reach"}).open()
print("holding", flush=True)
time.sleep(600)
"""


def test_a_second_writer_is_refused_and_a_killed_ones_lock_taken_over(tmp_path, capfd) -> None:
    import signal
    import socket
    import subprocess
    import sys

    from ami_robot.runlock import RunLockedError

    path = tmp_path / "episodes.jsonl"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(RunLockedError) as err:
            EpisodeLog(path, {"task": "Reach"}).open()
        message = str(err.value)
        assert f"pid {holder.pid}" in message and socket.gethostname() in message, message
        assert str(tmp_path) in message and "hydra.run.dir" in message
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    capfd.readouterr()
    log = EpisodeLog(path, {"task": "Reach"})
    assert log.open() == []  # the killed holder's lock is stale: taken over
    assert f"stale lock of pid {holder.pid}" in capfd.readouterr().err
    log.append({"task": "Reach", "seed": 10_000, "success": True})
    assert [r["seed"] for r in EpisodeLog(path, {"task": "Reach"}).open()] == [10_000]  # same process: fine
    log.close()
    assert json.loads((tmp_path / "episodes.jsonl.lock").read_text() or "{}") == {}  # released: empty


def test_a_clean_exit_leaves_no_stale_holder(tmp_path) -> None:
    import subprocess
    import sys

    path = tmp_path / "episodes.jsonl"
    code = "import sys; from ami_robot.evaluation import EpisodeLog; EpisodeLog(sys.argv[1], {}).open()"
    subprocess.run([sys.executable, "-c", code, str(path)], check=True)
    assert (tmp_path / "episodes.jsonl.lock").read_text() == ""
