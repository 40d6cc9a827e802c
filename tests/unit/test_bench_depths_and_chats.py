"""The bench's figures around its drains: throughput at each backlog depth, memory per chat, and
redaction on against off (the drains themselves are faked here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from benchmarks import backlogs, chats, redaction_cost
from benchmarks.cases import BenchConfig, Drain


def _config(tmp_path: Path, **changes: Any) -> BenchConfig:
    return BenchConfig("amqp://unused", rounds=3, workdir=tmp_path, **changes)


async def test_each_depth_runs_its_own_rounds_and_the_main_one_is_not_run_twice(tmp_path: Path) -> None:
    ran: list[tuple[int, int, str]] = []

    async def pair(sized: BenchConfig, number: int, label: str) -> tuple[Drain, Drain]:
        ran.append((sized.messages, number, label))
        return Drain(1000.0, None), Drain(500.0 + sized.messages / 100 + number, None)

    main = [backlogs.one_round(Drain(1000.0, None), Drain(900.0, None))] * 3
    config = _config(tmp_path, messages=20_000, backlogs=(2_000, 8_000, 20_000))
    table = await backlogs.depths(config, pair, main)
    assert [messages for messages, _, _ in ran] == [2_000] * 3 + [8_000] * 3
    assert ran[0] == (2_000, 1, "2000-1")
    assert list(table) == ["2000", "8000", "20000"]
    assert table["2000"]["round_ratios"] == [0.521, 0.522, 0.523]
    assert table["2000"]["ratio"] == 0.522
    assert table["20000"]["ratio"] == 0.9
    both = backlogs.with_live(
        table,
        {"live_max_msgs_per_s": 700.0, "bare_loop_live_max_msgs_per_s": 1000.0, "live_ratio_vs_bare_loop": 0.7},
    )
    assert both["live"]["ratio"] == 0.7
    assert backlogs.lowest_ratio(both) == 0.522
    rows = backlogs.table_rows({"throughput": both})
    assert [row[0] for row in rows] == ["2,000", "8,000", "20,000", "live"]
    assert rows[0][3:] == ("0.522", "0.52 / 0.52 / 0.52")


def test_the_slope_is_mb_per_ten_thousand_chats() -> None:
    assert chats.slope([(0, 100.0), (5_000, 130.0), (10_000, 160.0)]) == pytest.approx(60.0)
    assert chats.slope([(10_000, 160.0)]) == 0.0


def test_memory_per_chat_is_split_at_the_cap() -> None:
    samples = [(0, 100.0), (1_000, 106.0), (2_000, 112.0), (3_000, 112.5), (4_000, 112.0), (6_000, 113.0)]
    found = chats.summary(samples, cap=2_000)
    assert found["rss_mb_per_10k_chats"] == pytest.approx(60.0)
    assert abs(found["rss_mb_per_10k_chats_past_cap"]) < 5.0
    assert found["rss_growth_past_cap"] == pytest.approx(113.0 / 112.0, abs=1e-3)
    assert found["chat_cache_size"] == 2_000


async def test_redaction_on_and_off_alternate_and_off_switches_it_off(tmp_path: Path) -> None:
    drained: list[tuple[str, str | None]] = []

    async def rate(sized: BenchConfig, name: str) -> Drain:
        drained.append((name, sized.worker_env.get("SESSIONS_REDACTION")))
        off = sized.worker_env.get("SESSIONS_REDACTION") == "false"
        return Drain(1000.0 if off else 990.0, {"loop_thread_us": 300.0 if off else 303.0})

    found = await redaction_cost.on_and_off(_config(tmp_path), rate)
    assert drained == [
        ("worker-redaction-on-1", None),
        ("worker-redaction-off-1", "false"),
        ("worker-redaction-off-2", "false"),
        ("worker-redaction-on-2", None),
        ("worker-redaction-on-3", None),
        ("worker-redaction-off-3", "false"),
    ]
    assert found["redaction_throughput_on_off"] == 0.99
    assert found["redaction_worker_cpu_us_per_msg"] == 3.0
    assert found["redaction_us_per_msg"] > 0
    share = found["redaction_us_per_msg"] / 303 * 100  # of the redacting drains' event-loop CPU
    assert found["redaction_share_of_worker_loop_pct"] == pytest.approx(share, abs=0.01)
