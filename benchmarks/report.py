"""Printing and saving benchmark results: a table, JSON, a Markdown report and PNG plots."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

TARGETS = {
    "throughput_ratio_vs_bare_loop": (">=", 0.7),
    "growth_ratio_transcript": (">=", 0.9),
    "growth_ratio_sessions": (">=", 0.9),
    "p99_ms": ("<=", 25.0),
    "rss_growth_after_warmup": ("<=", 1.10),
}
ROWS = (
    ("processes", "consumer processes per side"),
    ("bare_loop_msgs_per_s", "bare aio-pika loop (msgs/s)"),
    ("worker_msgs_per_s", "worker (msgs/s)"),
    ("throughput_ratio_vs_bare_loop", "worker / bare loop"),
    ("cpu_bound_ratio", "bare loop / worker CPU per message, all parties"),
    ("single_process_bare_msgs_per_s", "one process a side: bare loop (msgs/s)"),
    ("single_process_worker_msgs_per_s", "one process a side: worker (msgs/s)"),
    ("single_process_ratio", "one process a side: worker / bare loop"),
    ("p50_ms", "publish-to-reply p50 at half max rate (ms)"),
    ("p99_ms", "publish-to-reply p99 at half max rate (ms)"),
    ("sessions_100_msgs_per_s", "100 sessions stored (msgs/s)"),
    ("sessions_many_msgs_per_s", "100,000 sessions stored (msgs/s)"),
    ("growth_ratio_sessions", "growth ratio, sessions"),
    ("transcripts_empty_msgs_per_s", "empty transcripts (msgs/s)"),
    ("transcripts_long_msgs_per_s", "10,000-entry transcripts (msgs/s)"),
    ("growth_ratio_transcript", "growth ratio, transcript"),
    ("rss_mb", "worker RSS at the end (MB)"),
    ("rss_growth_after_warmup", "RSS last / RSS after warm-up"),
)


def verdict(key: str, value: float) -> str:
    if key not in TARGETS:
        return ""
    op, bound = TARGETS[key]
    ok = value >= bound if op == ">=" else value <= bound
    return f"{'ok' if ok else 'MISSED'} ({op} {bound})"


def rows(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(label, f"{results[key]:,.2f}", verdict(key, float(results[key]))) for key, label in ROWS if key in results]


def rounds_line(results: dict[str, Any]) -> str:
    """Each round's bare and worker rate and ratio: how far the medians in the table spread."""
    rounds = results.get("throughput_rounds", [])
    each = "; ".join(f"{r['bare']:,.0f} vs {r['worker']:,.0f} = {r['ratio']:.2f}" for r in rounds)
    what = "one round" if len(rounds) == 1 else f"medians of {len(rounds)} alternating rounds"
    return f"throughput, {what} (bare vs worker msgs/s = ratio): {each}"


CPU_PARTIES = (
    ("loop_thread_us", "consumer: event-loop thread"),
    ("other_threads_us", "consumer: other threads (SQLite)"),
    ("broker_us", "broker (RabbitMQ)"),
    ("bench_us", "benchmark process (reply tap)"),
    ("total_us", "all parties"),
)


CPU_COLUMNS = ("party", "bare loop, drain", "worker, drain", "worker, latency phase", "worker engine alone, no broker")
CPU_TITLE = "CPU per message (µs; drains: medians of rounds, from the first reply to the 95th percent)"


def cpu_rows(results: dict[str, Any]) -> list[tuple[str, ...]]:
    """Each party's CPU per message (µs) and the idle machine share: both sides' drains (medians of
    rounds), the worker's latency phase, where messages come one at a time, and the worker's
    engine alone (decode, apply, store, encode; no AMQP), which has no broker or tap to count."""
    use = results.get("cpu_us_per_msg")
    if not use:
        return []
    sides = [
        use["bare"],
        use["worker"],
        results.get("latency_cpu_us_per_msg", {}),
        results.get("engine_cpu_us_per_msg", {}),
    ]

    def cells(key: str, form: str) -> tuple[str, ...]:
        return tuple(format(side[key], form) if key in side else "" for side in sides)

    found = [(label, *cells(key, ",.0f")) for key, label in CPU_PARTIES if key in use["bare"]]
    return [*found, ("machine idle (%)", *cells("idle_pct", ".0f"))]


def print_table(results: dict[str, Any]) -> None:
    table = Table(
        title=f"sessions bench ({results['messages_per_case']} messages per case)", caption=rounds_line(results)
    )
    for column in ("measure", "value", "target"):
        table.add_column(column)
    for row in rows(results):
        table.add_row(*row)
    Console().print(table)
    breakdown = cpu_rows(results)
    if breakdown:
        cpu_table = Table(title=CPU_TITLE)
        for column in CPU_COLUMNS:
            cpu_table.add_column(column)
        for cpu_row in breakdown:
            cpu_table.add_row(*cpu_row)
        Console().print(cpu_table)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        model = cpu
    broker = subprocess.run(["rabbitmqctl", "version"], capture_output=True, text=True, check=False).stdout.strip()
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}, RabbitMQ {broker or '?'}"


def write_report(results: dict[str, Any], out: Path, command: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    stamped = {
        **results,
        "machine": machine(),
        "command": command,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    (out / "results.json").write_text(json.dumps(stamped, indent=2) + "\n")
    lines = [
        "# Benchmark results",
        "",
        f"- command: `{command}`",
        f"- machine: {stamped['machine']}",
        f"- when: {stamped['when']}",
        f"- {rounds_line(results)}",
        "",
        "| measure | value | target |",
        "|---|---|---|",
        *(f"| {label} | {value} | {target} |" for label, value, target in rows(results)),
        "",
    ]
    breakdown = cpu_rows(results)
    if breakdown:
        lines += [
            f"{CPU_TITLE}:",
            "",
            f"| {' | '.join(CPU_COLUMNS)} |",
            f"|{'---|' * len(CPU_COLUMNS)}",
            *(f"| {' | '.join(row)} |" for row in breakdown),
            "",
        ]
    plots = _plots(results, out)
    lines += [f"![{name}]({name})" for name in plots]
    (out / "README.md").write_text("\n".join(lines) + "\n")


def _plots(results: dict[str, Any], out: Path) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    names = []
    figure, axis = plt.subplots(figsize=(7, 3.5))
    labels = ["bare loop", "worker", "100k sessions", "empty transcripts", "10k-entry transcripts"]
    keys = [
        "bare_loop_msgs_per_s",
        "worker_msgs_per_s",
        "sessions_many_msgs_per_s",
        "transcripts_empty_msgs_per_s",
        "transcripts_long_msgs_per_s",
    ]
    axis.bar(labels, [results.get(key, 0) for key in keys], color=["#888", "#2a7", "#2a7", "#27a", "#27a"])
    axis.set_ylabel("messages / s")
    rounds = len(results.get("throughput_rounds", [])) or 1
    axis.set_title(f"Throughput (bare loop, worker: medians of {rounds} rounds; others: one run)", fontsize=10)
    axis.tick_params(axis="x", labelsize=8)
    figure.tight_layout()
    figure.savefig(out / "throughput.png", dpi=110)
    names.append("throughput.png")
    if results.get("rss_samples"):
        figure, axis = plt.subplots(figsize=(7, 3.5))
        events, rss = zip(*results["rss_samples"], strict=True)
        axis.plot(events, rss, marker="o")
        axis.set_xlabel("events handled")
        axis.set_ylabel("worker RSS (MB)")
        axis.set_ylim(0, max(rss) * 1.2)
        axis.set_title("Worker memory")
        figure.tight_layout()
        figure.savefig(out / "memory.png", dpi=110)
        names.append("memory.png")
    plt.close("all")
    return names
