"""`sessions bench` end to end on the real broker, at tiny counts: every phase runs, every key is there."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from pymongo import MongoClient

from benchmarks.broker import run
from benchmarks.cases import BenchConfig
from benchmarks.latency import within_target
from benchmarks.report import growth_line, rounds_line, write_report

pytestmark = pytest.mark.slow

KEYS = (
    "throughput_ratio_vs_bare_loop",
    "worker_msgs_per_s",
    "bare_loop_msgs_per_s",
    "p50_ms",
    "p99_ms",
    "growth_ratio_transcript",
    "growth_ratio_sessions",
    "rss_mb",
)


async def test_bench_runs_every_phase_and_reports_medians_of_rounds(
    amqp_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the run's scratch directory goes
    config = BenchConfig(
        amqp_url,
        messages=300,
        slots=50,
        shards=4,
        stored_sessions=2_000,
        long_slots=5,
        transcript_entries=200,
        latency_seconds=1.0,
        latency_fractions=(0.5, 0.25),
        live_seconds=1.0,
        memory_events=500,
        rounds=2,
        processes=2,
        backlogs=(150, 300),
        chat_cache_size=100,
    )
    results = await run(config, progress=lambda _: None)
    # (tiktoken may leave its own cache there: the engine phase counts tokens in this process)
    left = [name for name in os.listdir(tmp_path) if name.startswith("sessions-bench-")]
    assert left == [], "the cases' stores are removed with the run's scratch directory"

    assert all(results[key] > 0 for key in KEYS), {key: results.get(key) for key in KEYS}
    rounds = results["throughput_rounds"]
    assert len(rounds) == 2
    for each in rounds:
        assert each["ratio"] == pytest.approx(each["worker"] / each["bare"], abs=1e-3)
    assert results["throughput_ratio_vs_bare_loop"] == pytest.approx((rounds[0]["ratio"] + rounds[1]["ratio"]) / 2)
    assert results["latency_samples"] > 0
    # Both sides at each rate, lowest first; the figures at half are also the top-level keys.
    curve = results["latency_curve"]
    assert [point["rate"] for point in curve] == sorted(point["rate"] for point in curve)
    of_drain = [point for point in curve if not point["basis"]]
    assert [point["fraction"] for point in of_drain] == [0.25, 0.5]
    assert of_drain[1]["rate"] == pytest.approx(results["worker_msgs_per_s"] / 2, abs=0.1)
    assert of_drain[1]["worker"]["p99_ms"] == pytest.approx(results["p99_ms"], abs=0.01)
    assert of_drain[1]["bare"]["p99_ms"] == pytest.approx(results["bare_loop_p99_ms"], abs=0.01)
    # And at an eighth, a quarter and a half of the live maximum (publisher running), which each side has, measured.
    assert results["live_max_msgs_per_s"] > 0 and results["bare_loop_live_max_msgs_per_s"] > 0
    lives = [point for point in curve if point["basis"]]
    assert [point["basis"] for point in lives] == [
        f"{n} the live max" for n in ("an eighth of", "a quarter of", "half")
    ]
    live = lives[-1]
    assert live["rate"] == pytest.approx(results["live_max_msgs_per_s"] / 2, abs=0.1)
    assert live["worker"]["p99_ms"] == pytest.approx(results["live_half_p99_ms"], abs=0.01)
    assert live["bare"]["p99_ms"] == pytest.approx(results["bare_loop_live_half_p99_ms"], abs=0.01)
    for point in curve:
        for side in ("worker", "bare"):
            assert 0 < point[side]["p50_ms"] <= point[side]["p99_ms"]
            assert abs(point[side]["samples"] - point["rate"] * 1.0) <= 1, "every message published was answered"
    assert results["processes"] == 2
    assert results["single_process_ratio"] == pytest.approx(
        results["single_process_worker_msgs_per_s"] / results["single_process_bare_msgs_per_s"], abs=1e-3
    )
    # CPU per message of every party (the broker too: it runs on this machine), for both sides.
    use = results["cpu_us_per_msg"]
    for side in ("bare", "worker"):
        assert use[side]["loop_thread_us"] > 0 and use[side]["broker_us"] > 0 and use[side]["bench_us"] > 0
        assert use[side]["total_us"] >= use[side]["loop_thread_us"] + use[side]["broker_us"]
    # Other threads (SQLite's, when another process holds the writers' lock) are counted apart.
    assert results["latency_cpu_us_per_msg"]["other_threads_us"] >= 0
    assert results["cpu_bound_ratio"] > 0
    assert results["latency_cpu_us_per_msg"]["loop_thread_us"] > 0
    assert results["bare_loop_latency_cpu_us_per_msg"]["loop_thread_us"] > 0
    assert all(each["bare_cpu"] and each["worker_cpu"] for each in rounds)
    assert len(results["rss_samples"]) == 10
    growth = results["growth_rounds"]
    assert len(growth) == 2 and all(all(rate > 0 for rate in each.values()) for each in growth)
    ratios = sorted(each["sessions_many"] / each["sessions_100"] for each in growth)
    assert results["growth_ratio_sessions"] == pytest.approx(sum(ratios) / 2)
    # The engine alone: its own threads only (the loop, which commits while the locks are free, and SQLite's).
    engine = results["engine_cpu_us_per_msg"]
    assert engine["loop_thread_us"] > 0 and engine["other_threads_us"] >= 0
    assert engine["total_us"] == pytest.approx(engine["loop_thread_us"] + engine["other_threads_us"], abs=0.2)

    # Every backlog depth (the main rounds' among them) and the live maxima, side by side.
    table = results["throughput"]
    assert list(table) == ["150", "300", "live"]
    assert table["300"]["round_ratios"] == [each["ratio"] for each in rounds]
    assert len(table["150"]["round_ratios"]) == 2 and table["live"]["ratio"] == results["live_ratio_vs_bare_loop"]
    assert results["lowest_throughput_ratio"] == min(row["ratio"] for row in table.values())
    # Memory per chat: one worker, its session cache of 100; RSS read before and at each step.
    assert [chats for chats, _ in results["chat_rss_samples"]] == [0, 25, 50, 100, 150, 200, 300]
    assert all(rss > 0 for _, rss in results["chat_rss_samples"]) and results["rss_growth_past_cap"] > 0
    # Redaction on and off, a round each way.
    assert len(results["redaction_rounds"]) == 2 and results["redaction_throughput_on_off"] > 0
    assert results["redaction_us_per_msg"] > 0

    write_report(results, tmp_path / "report", "sessions bench (test)")
    report = (tmp_path / "report" / "README.md").read_text()
    assert rounds_line(results) in report and growth_line(results) in report
    assert "worker / bare loop" in report
    assert "one process a side: worker / bare loop" in report
    assert "| all parties |" in report
    assert "worker engine alone, no broker" in report
    assert "bare loop at the same rate: p99 (ms)" in report
    assert "| 0.25 |" in report and within_target(results) in report
    assert "Throughput at each backlog depth" in report and "| live |" in report
    assert "worker RSS per 10,000 new chats" in report and "redaction on / off" in report
    assert (tmp_path / "report" / "latency.png").stat().st_size > 0
    # The worker's stage breakdown at half its live maximum, from its stage log: every message answered, logged.
    stages = results["latency_stages_ms"]
    assert stages["store"] == "sqlite" and stages["basis"] == "half the live max"
    assert stages["stages"]["total"]["samples"] == live["worker"]["samples"]
    assert all(stages["stages"][name]["p50"] >= 0 for name in ("consume", "lookup", "commit", "reply", "ack"))
    assert "Where the worker's publish-to-reply time goes" in report and "| commit |" in report


@pytest.mark.realmongo
async def test_bench_runs_the_worker_case_on_mongodb_and_names_the_server(
    amqp_url: str, mongodb_url: str, tmp_path: Path
) -> None:
    config = BenchConfig(
        amqp_url,
        messages=300,
        slots=50,
        shards=4,
        rounds=1,
        processes=2,
        workdir=tmp_path,
        store="mongodb",
        latency_seconds=1.0,
        latency_warm_up=300,
        latency_fractions=(0.5,),
        live_seconds=1.0,
    )
    config.mongodb_url = mongodb_url
    results = await run(config, progress=lambda _: None)
    assert results["worker_msgs_per_s"] > 0 and results["bare_loop_msgs_per_s"] > 0
    assert results["server_requests_per_worker_msg"] > 0
    # Batched: a batch of appends is one entries insert and one sessions update, so well under the
    # two round trips a message that unbatched appends would take.
    assert 0 < results["append_round_trips_per_msg"] < 1, results["append_round_trips"]
    assert results["store_round_trips_per_msg"] >= results["append_round_trips_per_msg"]
    assert "growth_rounds" not in results and "rss_samples" not in results  # SQLite-only phases
    assert results["latency_stages_ms"]["store"] == "mongodb" and results["latency_stages_ms"]["stages"]["commit"]
    client: MongoClient[dict[str, object]]
    with MongoClient(mongodb_url) as client:
        assert not [name for name in client.list_database_names() if name.startswith("bench_")]
    server = results["mongodb_server"]
    write_report(results, tmp_path / "report", "sessions bench --store mongodb (test)")
    report = (tmp_path / "report" / "README.md").read_text()
    assert server in report and "append path: round trips per message" in report
    if not results["mongodb_server_is_mongodb"]:
        assert "SecantusDB" in server and "NOT MongoDB's" in report
        assert "wire-server figures" in report
