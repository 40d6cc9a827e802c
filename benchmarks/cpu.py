"""CPU time per message of every party to a drain, read from Linux's /proc.

On a small machine the consumer under test shares the cores with the broker and with this
benchmarking process (which reads the replies off a tap queue), so a rate alone does not say
where the time went. Sampled at the first reply and again near the last, these figures give each
party's CPU per message: the consumer's event-loop thread and its other threads (summed over the
consumer's processes when it runs several), the broker (when it runs on this machine) and the
benchmark itself, and how idle the machine was meanwhile.

Their sum is what one message costs the machine. Bare loop's sum / worker's sum is the ratio the
two would reach if each kept the machine equally busy: the bound the cores set on the
throughput ratio, whatever the number of processes. Outside Linux, or for a remote broker, the
parts that cannot be read are left out.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

PROC = Path("/proc")
_TICKS_PER_S = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_LOCAL_HOSTS = ("localhost", "::1", "")
Use = dict[str, float]  # each party's CPU per message (µs), their total and the idle share (%)


def cpu_seconds(stat: str) -> float:
    """utime + stime of one /proc/<pid>[/task/<tid>]/stat line, in seconds. The command name (in
    parentheses) may hold spaces, so fields are counted after its closing parenthesis."""
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_S


def idle_and_total(proc_stat: str) -> tuple[int, int]:
    """Idle (idle + iowait) and total ticks of all cores, from /proc/stat's first line."""
    ticks = [int(value) for value in proc_stat.splitlines()[0].split()[1:]]
    return ticks[3] + ticks[4], sum(ticks)


def steal_ticks(proc_stat: str) -> int:
    """Ticks the hypervisor gave this machine's virtual cores to others (steal), from /proc/stat's
    first line: on a shared virtual machine, time in which nothing here could run."""
    ticks = proc_stat.splitlines()[0].split()[1:]
    return int(ticks[7]) if len(ticks) > 7 else 0


def is_local(url: str) -> bool:
    host = urlparse(url).hostname or ""
    return host in _LOCAL_HOSTS or host.startswith("127.")


def broker_pid(url: str) -> int | None:
    """The local RabbitMQ's Erlang VM, when the URL names this machine and /proc shows it."""
    if not is_local(url) or not PROC.is_dir():
        return None
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "beam.smp":
                    return int(entry.name)
            except OSError:
                continue  # gone meanwhile, or not ours to read
    return None


@dataclass(frozen=True, slots=True)
class CpuSample:
    """Cumulative CPU seconds of each party, and the machine's idle and total ticks, at one moment."""

    loop_thread: float
    other_threads: float
    broker: float | None
    bench: float
    idle_ticks: int
    total_ticks: int
    steal_ticks: int = 0


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def sample(consumers: Sequence[int], broker: int | None) -> CpuSample | None:
    """Every party's CPU so far, the consumer processes' summed; None where /proc cannot be read
    (not Linux, or a consumer exited)."""
    machine = _read(PROC / "stat")
    if machine is None:
        return None
    loop_thread = other_threads = 0.0
    for consumer in consumers:
        threads = _threads(consumer)
        if threads is None:
            return None
        loop_thread += threads[0]
        other_threads += threads[1]
    broker_stat = _read(PROC / str(broker) / "stat") if broker is not None else None
    idle, total = idle_and_total(machine)
    return CpuSample(
        loop_thread=loop_thread,
        other_threads=other_threads,
        broker=cpu_seconds(broker_stat) if broker_stat is not None else None,
        bench=time.process_time(),
        idle_ticks=idle,
        total_ticks=total,
        steal_ticks=steal_ticks(machine),
    )


def _threads(consumer: int) -> tuple[float, float] | None:
    """One process's main (event-loop) thread CPU and its other threads' CPU, in seconds."""
    tasks = PROC / str(consumer) / "task"
    if not tasks.is_dir():
        return None
    loop_thread = other_threads = 0.0
    for task in tasks.iterdir():
        stat = _read(task / "stat")
        if stat is None:
            continue  # a thread that ended meanwhile
        if task.name == str(consumer):  # the main thread's id is the process id
            loop_thread = cpu_seconds(stat)
        else:
            other_threads += cpu_seconds(stat)
    return loop_thread, other_threads


def per_message(first: CpuSample, last: CpuSample, messages: int) -> Use:
    """Each party's CPU per message (µs) between two samples, their sum, and the machine's idle and
    stolen shares (%)."""
    if messages <= 0:
        raise ValueError("per_message needs at least one message between the samples")

    def micros(before: float, after: float) -> float:
        return round((after - before) / messages * 1e6, 1)

    use = {
        "loop_thread_us": micros(first.loop_thread, last.loop_thread),
        "other_threads_us": micros(first.other_threads, last.other_threads),
        "bench_us": micros(first.bench, last.bench),
    }
    if first.broker is not None and last.broker is not None:
        use["broker_us"] = micros(first.broker, last.broker)
    use["total_us"] = round(sum(use.values()), 1)
    ticks = last.total_ticks - first.total_ticks
    use["idle_pct"] = round(100 * (last.idle_ticks - first.idle_ticks) / ticks, 1) if ticks > 0 else 0.0
    use["steal_pct"] = round(100 * (last.steal_ticks - first.steal_ticks) / ticks, 1) if ticks > 0 else 0.0
    return use


def summary(rounds: list[tuple[Use | None, Use | None]]) -> dict[str, object]:
    """The medians over rounds of each party's CPU per message for both sides, and the median of
    each round's bare total / worker total (the CPU-bound ratio); empty where nothing was read."""
    pairs = [(bare, worker) for bare, worker in rounds if bare is not None and worker is not None]
    if not pairs:
        return {}
    return {
        "cpu_us_per_msg": {"bare": _medians([b for b, _ in pairs]), "worker": _medians([w for _, w in pairs])},
        "cpu_bound_ratio": round(statistics.median(b["total_us"] / w["total_us"] for b, w in pairs), 3),
    }


def _medians(uses: list[Use]) -> Use:
    keys = [key for key in uses[0] if all(key in use for use in uses)]
    return {key: round(statistics.median(use[key] for use in uses), 1) for key in keys}
