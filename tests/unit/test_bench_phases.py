"""The benchmark's phases close every case they start exactly once, whichever step fails."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest

from benchmarks import broker
from benchmarks.cases import BenchConfig, Drain


class FakeCase:
    def __init__(self, name: str) -> None:
        self.name = name


class Phases:
    """Drains that start a named fake case (or fail, for the names in `failing`), and a record of closes."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, failing: set[str]) -> None:
        self.failing = failing
        self.closed: list[str] = []
        monkeypatch.setattr(broker, "_drain", self.drain)
        monkeypatch.setattr(broker, "_close", self.close)

    async def drain(self, connection: Any, config: BenchConfig, name: str, progress: Any, **_: Any) -> Any:
        if name in self.failing:
            raise RuntimeError(f"{name} failed")  # as the real one, which closes its own case first
        return FakeCase(name), Drain(100.0, None)

    async def close(self, connection: Any, case: FakeCase) -> None:
        self.closed.append(case.name)


def _config(tmp_path: Path) -> BenchConfig:
    return BenchConfig("amqp://unused", rounds=3, processes=1, workdir=tmp_path)


async def _throughput(config: BenchConfig) -> Any:
    return await broker._throughput(cast(Any, None), config, cast(Any, None), {}, lambda _: None)


async def test_the_rounds_keep_the_last_worker_case_and_close_the_others(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    phases = Phases(monkeypatch, failing=set())
    kept = await _throughput(_config(tmp_path))
    assert kept.name == "worker-3"
    assert phases.closed == ["bare-1", "bare-2", "worker-1", "bare-3", "worker-2"]


@pytest.mark.parametrize(
    ("failing", "closed"),
    [
        ("bare-2", ["bare-1", "worker-1"]),
        ("worker-2", ["bare-1", "bare-2", "worker-1"]),
        ("worker-1", ["bare-1"]),
    ],
)
async def test_a_failing_round_leaves_nothing_running(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, failing: str, closed: list[str]
) -> None:
    phases = Phases(monkeypatch, failing={failing})
    with pytest.raises(RuntimeError, match=failing):
        await _throughput(_config(tmp_path))
    assert phases.closed == closed


async def test_the_latency_phase_closes_its_bare_loop_case_when_a_measurement_fails(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    phases = Phases(monkeypatch, failing=set())

    async def curve(*_: Any) -> dict[str, Any]:
        raise RuntimeError("no reply")

    monkeypatch.setattr(broker, "curve", curve)
    with pytest.raises(RuntimeError, match="no reply"):
        await broker._latency(cast(Any, None), _config(tmp_path), cast(Any, FakeCase("worker-3")), 800.0, print)
    assert phases.closed == ["bare-latency"], "the worker case is the caller's to close"
