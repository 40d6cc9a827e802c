"""The benchmark's CPU accounting: /proc parsing, per-message arithmetic and the round summary."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import cpu

TICKS = os.sysconf("SC_CLK_TCK")
linux_only = pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads Linux's /proc")


def test_cpu_seconds_counts_fields_after_a_command_name_with_spaces_and_parentheses() -> None:
    # pid (comm) state ppid ... utime is field 14 and stime field 15 (1-based, man proc).
    rest = ["S", *["0"] * 10, str(3 * TICKS), str(TICKS), "7", "7"]
    stat = "4242 (a (weird) name) " + " ".join(rest)
    assert cpu.cpu_seconds(stat) == pytest.approx(4.0)


def test_idle_is_idle_plus_iowait_out_of_every_tick() -> None:
    proc_stat = "cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 50 0 25 400 25 0 0 0 0 0\n"
    assert cpu.idle_and_total(proc_stat) == (850, 1000)


def test_steal_is_the_eighth_field_and_zero_where_the_kernel_has_none() -> None:
    assert cpu.steal_ticks("cpu  100 0 50 700 50 0 0 100 0 0\n") == 100
    assert cpu.steal_ticks("cpu  100 0 50 800 50 0 0\n") == 0


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("amqp://guest:guest@127.0.0.1:5672/", True),
        ("amqp://localhost/", True),
        ("amqp://u:p@[::1]:5672/", True),
        ("amqp://u:p@rabbit.internal:5672/", False),
    ],
)
def test_only_a_local_broker_is_looked_for(url: str, local: bool) -> None:
    assert cpu.is_local(url) is local
    if not local:
        assert cpu.broker_pid(url) is None


def _sample(
    loop: float, other: float, broker: float | None, bench: float, idle: int, total: int, steal: int = 0
) -> cpu.CpuSample:
    return cpu.CpuSample(loop, other, broker, bench, idle, total, steal)


def test_per_message_divides_each_party_by_the_messages_between_samples() -> None:
    first = _sample(1.0, 0.5, 10.0, 2.0, 100, 1000, 7)
    last = _sample(1.4, 0.6, 10.3, 2.1, 150, 1200, 27)
    use = cpu.per_message(first, last, 1000)
    assert use == {
        "loop_thread_us": 400.0,
        "other_threads_us": 100.0,
        "bench_us": 100.0,
        "broker_us": 300.0,
        "total_us": 900.0,
        "idle_pct": 25.0,
        "steal_pct": 10.0,
    }
    without_broker = cpu.per_message(_sample(1.0, 0.5, None, 2.0, 0, 0), _sample(1.4, 0.6, None, 2.1, 0, 0), 1000)
    assert "broker_us" not in without_broker
    assert without_broker["total_us"] == 600.0
    with pytest.raises(ValueError, match="at least one message"):
        cpu.per_message(first, last, 0)


def test_summary_takes_medians_per_party_and_the_median_of_round_ratios() -> None:
    def use(total: float, loop: float) -> cpu.Use:
        return {"loop_thread_us": loop, "total_us": total, "idle_pct": 10.0}

    rounds: list[tuple[cpu.Use | None, cpu.Use | None]] = [
        (use(900, 400), use(1800, 900)),  # 0.5
        (use(1000, 420), use(1250, 700)),  # 0.8
        (use(800, 380), use(1400, 800)),  # 0.571
        (None, use(1000, 500)),  # unreadable round: left out
    ]
    summary = cpu.summary(rounds)
    assert summary["cpu_bound_ratio"] == pytest.approx(0.571, abs=1e-3)
    assert summary["cpu_us_per_msg"] == {
        "bare": {"loop_thread_us": 400.0, "total_us": 900.0, "idle_pct": 10.0},
        "worker": {"loop_thread_us": 800.0, "total_us": 1400.0, "idle_pct": 10.0},
    }
    assert cpu.summary([(None, None)]) == {}


SPINNER = """
import threading, time
def spin(seconds):
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass
spun, hold = threading.Event(), threading.Event()
def side():
    spin(0.3)
    spun.set()
    hold.wait()  # stays alive: an ended thread leaves /proc/<pid>/task with its time
input()
threading.Thread(target=side, daemon=True).start()
spun.wait()
print("side", flush=True)
input()
spin(0.2)
print("main", flush=True)
input()
"""


@linux_only
def test_a_live_sample_splits_the_main_threads_cpu_from_the_others() -> None:
    child = subprocess.Popen([sys.executable, "-c", SPINNER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdin is not None and child.stdout is not None

    def step(expected: str) -> cpu.CpuSample:
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write("go\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == expected
        sampled = cpu.sample([child.pid], None)
        assert sampled is not None
        return sampled

    try:
        first = cpu.sample([child.pid], None)
        assert first is not None
        side, main = step("side"), step("main")
        assert side.other_threads - first.other_threads >= 0.25
        assert side.loop_thread - first.loop_thread < 0.15
        assert main.loop_thread - side.loop_thread >= 0.15
        assert main.other_threads - side.other_threads < 0.05
        assert main.total_ticks > first.total_ticks
        # Several consumer processes: their threads are summed (here the same, idle one twice).
        twice = cpu.sample([child.pid, child.pid], None)
        assert twice is not None
        assert twice.loop_thread == pytest.approx(2 * main.loop_thread, abs=0.02)
        assert twice.other_threads == pytest.approx(2 * main.other_threads, abs=0.02)
    finally:
        child.kill()
        child.wait()
    assert cpu.sample([child.pid], None) is None  # gone: nothing to read
