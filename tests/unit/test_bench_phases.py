"""The benchmark's phases: which cases they start, in which order, and that each is closed once,
whichever step fails."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, cast

import pytest

from benchmarks import broker
from benchmarks.cases import BenchConfig, Drain


class FakeCase:
    def __init__(self, name: str) -> None:
        self.name = name


class Phases:
    """Drains that start a named fake case (or fail, for the names in `failing`), and a record of
    every drain started and every case closed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, failing: set[str]) -> None:
        self.failing = failing
        self.drained: list[str] = []
        self.closed: list[str] = []
        monkeypatch.setattr(broker, "_drain", self.drain)
        monkeypatch.setattr(broker, "_close", self.close)

    async def drain(self, connection: Any, config: BenchConfig, name: str, progress: Any, **_: Any) -> Any:
        self.drained.append(name)
        if name in self.failing:
            raise RuntimeError(f"{name} failed")  # as the real one, which closes its own case first
        return FakeCase(name), Drain(100.0 if name.startswith("bare") else 80.0, None)

    async def close(self, connection: Any, case: FakeCase) -> None:
        self.closed.append(case.name)


def _config(tmp_path: Path, processes: int = 1) -> BenchConfig:
    return BenchConfig("amqp://unused", rounds=3, processes=processes, workdir=tmp_path)


async def test_rounds_alternate_which_side_goes_first_and_close_every_case(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    phases = Phases(monkeypatch, failing=set())
    results: dict[str, Any] = {}
    await broker._throughput(cast(Any, None), _config(tmp_path, processes=2), cast(Any, None), results, print)
    order = ["bare-single", "worker-single", "bare-1", "worker-1", "worker-2", "bare-2", "bare-3", "worker-3"]
    assert phases.drained == order
    assert phases.closed == order
    assert [r["ratio"] for r in results["throughput_rounds"]] == [0.8, 0.8, 0.8]
    assert results["single_process_ratio"] == 0.8


async def test_the_quick_run_has_no_single_process_pair(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    phases = Phases(monkeypatch, failing=set())
    config = dataclasses.replace(BenchConfig.quick("amqp://unused"), processes=2, workdir=tmp_path)
    results: dict[str, Any] = {}
    await broker._throughput(cast(Any, None), config, cast(Any, None), results, print)
    assert phases.drained == ["bare-1", "worker-1"]
    assert "single_process_ratio" not in results


async def test_a_failing_drain_leaves_nothing_running(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    phases = Phases(monkeypatch, failing={"bare-2"})
    with pytest.raises(RuntimeError, match="bare-2"):
        await broker._throughput(cast(Any, None), _config(tmp_path), cast(Any, None), {}, print)
    assert phases.drained == ["bare-1", "worker-1", "worker-2", "bare-2"]
    assert phases.closed == ["bare-1", "worker-1", "worker-2"]


async def test_growth_pairs_alternate_too(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    phases = Phases(monkeypatch, failing=set())
    results = await broker._growth(cast(Any, None), _config(tmp_path), cast(Any, None), print)
    assert phases.drained[:8] == [
        "sessions-100-1",
        "sessions-many-1",
        "transcripts-empty-1",
        "transcripts-long-1",
        "sessions-many-2",
        "sessions-100-2",
        "transcripts-long-2",
        "transcripts-empty-2",
    ]
    assert sorted(phases.closed) == sorted(phases.drained)
    assert len(results["growth_rounds"]) == 3


@pytest.mark.parametrize("failing", ["live_maximum", "curve", "memory"])
async def test_the_latency_and_memory_cases_are_closed_whichever_step_fails(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, failing: str
) -> None:
    phases = Phases(monkeypatch, failing=set())

    async def fails(*_: Any) -> dict[str, Any]:
        raise RuntimeError(f"{failing} failed")

    async def passes(*_: Any) -> dict[str, Any]:
        return {}

    async def rate(*_: Any) -> float:
        return 700.0

    monkeypatch.setattr(broker, "live_maximum", fails if failing == "live_maximum" else rate)
    monkeypatch.setattr(broker, "curve", fails if failing == "curve" else passes)
    monkeypatch.setattr(broker, "memory", fails if failing == "memory" else passes)
    with pytest.raises(RuntimeError, match=failing):
        await broker._latency_and_memory(cast(Any, None), _config(tmp_path), cast(Any, None), (800.0, 1000.0), print)
    assert phases.drained == ["worker-latency", "bare-latency"]
    assert sorted(phases.closed) == ["bare-latency", "worker-latency"]
