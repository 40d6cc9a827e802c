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

from benchmarks import backlogs
from benchmarks.latency import TARGET_P99_MS, relative_target, within_target
from benchmarks.stages import table as stage_table

STAGE_CAPTION = (
    "consume, lane, decode, lookup, resolve, commit, outcome and reply follow each other (their sum is"
    " about the total); confirm and ack run beside reply, off the reply's path (benchmarks/stages.py)"
)

TARGETS = {
    "throughput_ratio_vs_bare_loop": (">=", 0.8),
    "growth_ratio_transcript": (">=", 0.9),
    "growth_ratio_sessions": (">=", 0.9),
    "p99_ms": ("<=", TARGET_P99_MS),
    "live_half_p99_ms": ("<=", TARGET_P99_MS),
    "rss_growth_after_warmup": ("<=", 1.10),
    "lowest_throughput_ratio": (">=", 0.8),
    "rss_growth_past_cap": ("<=", 1.10),
    "redaction_throughput_on_off": (">=", 0.98),
    "redaction_share_of_worker_loop_pct": ("<=", 2.0),
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
    ("live_max_msgs_per_s", "live maximum, publisher running: worker (msgs/s)"),
    ("bare_loop_live_max_msgs_per_s", "live maximum, publisher running: bare loop (msgs/s)"),
    ("live_ratio_vs_bare_loop", "live maxima: worker / bare loop"),
    ("latency_rate_msgs_per_s", "latency phase: half the worker's max (drain) rate (msgs/s)"),
    ("p50_ms", "publish-to-reply p50 at half max rate (ms)"),
    ("p99_ms", "publish-to-reply p99 at half max rate (ms)"),
    ("bare_loop_p50_ms", "bare loop at the same rate: p50 (ms)"),
    ("bare_loop_p99_ms", "bare loop at the same rate: p99 (ms)"),
    ("live_half_rate_msgs_per_s", "half the worker's live maximum (msgs/s)"),
    ("live_half_p50_ms", "p50 at half the live maximum (ms)"),
    ("live_half_p99_ms", "p99 at half the live maximum (ms)"),
    ("bare_loop_live_half_p99_ms", "bare loop at that rate: p99 (ms)"),
    ("sessions_100_msgs_per_s", "100 sessions stored (msgs/s)"),
    ("sessions_many_msgs_per_s", "100,000 sessions stored (msgs/s)"),
    ("growth_ratio_sessions", "growth ratio, sessions"),
    ("transcripts_empty_msgs_per_s", "empty transcripts (msgs/s)"),
    ("transcripts_long_msgs_per_s", "10,000-entry transcripts (msgs/s)"),
    ("growth_ratio_transcript", "growth ratio, transcript"),
    ("rss_mb", "worker RSS at the end (MB)"),
    ("rss_growth_after_warmup", "RSS last / RSS after warm-up"),
    ("lowest_throughput_ratio", "worker / bare loop, lowest of every backlog depth and live"),
    ("chat_cache_size", "memory per chat: the worker's session cache (sessions, one process)"),
    ("rss_mb_per_10k_chats", "worker RSS per 10,000 new chats, up to the cache's size (MB)"),
    ("rss_mb_per_10k_chats_past_cap", "worker RSS per 10,000 new chats past it (MB)"),
    ("rss_growth_past_cap", "RSS at 3x the cache's size / RSS at its size"),
    ("redaction_throughput_on_off", "worker throughput, redaction on / off"),
    ("redaction_us_per_msg", "redaction of one bench message, alone (µs)"),
    ("redaction_share_of_worker_loop_pct", "redaction's share of the worker's event-loop CPU per message (%)"),
    ("redaction_worker_cpu_us_per_msg", "worker CPU per message, redaction on minus off (µs)"),
    ("server_requests_per_worker_msg", "MongoDB server requests per worker message (drains, server's count)"),
    ("append_round_trips_per_msg", "append path: round trips per message (entries insert + sessions update)"),
    ("store_round_trips_per_msg", "engine alone: store round trips per message, all commands"),
)


def verdict(key: str, value: float) -> str:
    if key not in TARGETS:
        return ""
    op, bound = TARGETS[key]
    ok = value >= bound if op == ">=" else value <= bound
    return f"{'ok' if ok else 'MISSED'} ({op} {bound})"


def rows(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(label, _number(results[key]), verdict(key, float(results[key]))) for key, label in ROWS if key in results]


def _number(value: float) -> str:
    if isinstance(value, int):
        return f"{value:,}"
    # Small figures (round trips per message of a batched path) keep three significant digits.
    return f"{value:,.2f}" if value == 0 or abs(value) >= 0.1 else f"{value:.3g}"


def rounds_line(results: dict[str, Any]) -> str:
    """Each round's bare and worker rate and ratio: how far the medians in the table spread."""
    rounds = results.get("throughput_rounds", [])
    each = "; ".join(f"{r['bare']:,.0f} vs {r['worker']:,.0f} = {r['ratio']:.2f}" for r in rounds)
    what = "one round" if len(rounds) == 1 else f"medians of {len(rounds)} alternating rounds"
    return f"throughput, {what} (bare vs worker msgs/s = ratio): {each}"


def growth_line(results: dict[str, Any]) -> str:
    """Each growth round's rates: 100 vs many sessions stored, empty vs long transcripts."""
    pairs = (("sessions_100", "sessions_many"), ("transcripts_empty", "transcripts_long"))
    each = "; ".join(
        ", ".join(f"{r[few]:,.0f} vs {r[many]:,.0f}" for few, many in pairs) for r in results.get("growth_rounds", [])
    )
    return f"growth, per round (msgs/s; 100 vs many sessions stored, empty vs long transcripts): {each}"


def server_line(results: dict[str, Any]) -> str:
    """Where the worker kept its sessions; a test server's figures are not MongoDB's."""
    if "mongodb_server" not in results:
        return "store: SQLite (embedded)"
    line = f"store: MongoDB store on {results['mongodb_server']}"
    if not results.get("mongodb_server_is_mongodb"):
        line += "; the figures are this test server's, NOT MongoDB's"
    return line


def captions(results: dict[str, Any]) -> list[str]:
    growth = [growth_line(results)] if results.get("growth_rounds") else []
    return [server_line(results), rounds_line(results), *growth]


CPU_PARTIES = (
    ("loop_thread_us", "consumer: event-loop thread"),
    ("other_threads_us", "consumer: other threads (SQLite)"),
    ("broker_us", "broker (RabbitMQ)"),
    ("bench_us", "benchmark process (reply tap)"),
    ("total_us", "all parties"),
)


CPU_COLUMNS = (
    "party",
    "bare loop, drain",
    "worker, drain",
    "bare loop, latency phase",
    "worker, latency phase",
    "worker engine alone, no broker",
)
CPU_TITLE = "CPU per message (µs; drains: medians of rounds, from the first reply to the 95th percent)"


def cpu_rows(results: dict[str, Any]) -> list[tuple[str, ...]]:
    """Each party's CPU per message (µs) and the idle machine share: both sides' drains (medians of
    rounds), both sides at half the worker's maximum rate, where messages come one at a time, and
    the worker's engine alone (decode, apply, store, encode; no AMQP), which has no broker or tap
    to count."""
    use = results.get("cpu_us_per_msg")
    if not use:
        return []
    sides = [
        use["bare"],
        use["worker"],
        results.get("bare_loop_latency_cpu_us_per_msg", {}),
        results.get("latency_cpu_us_per_msg", {}),
        results.get("engine_cpu_us_per_msg", {}),
    ]

    def cells(key: str, form: str) -> tuple[str, ...]:
        return tuple(format(side[key], form) if key in side else "" for side in sides)

    found = [(label, *cells(key, ",.0f")) for key, label in CPU_PARTIES if key in use["bare"]]
    shares = [("machine idle (%)", "idle_pct"), ("stolen by the hypervisor (%)", "steal_pct")]
    return [*found, *((label, *cells(key, ".0f")) for label, key in shares if key in use["bare"])]


LATENCY_COLUMNS = (
    "of max rate",
    "msgs/s",
    "worker p50",
    "worker p99",
    "bare loop p50",
    "bare loop p99",
    "steal % (worker / bare)",
    "issue 32 target",
)
LATENCY_TITLE = (
    "Publish-to-reply latency (ms) of both sides at fractions of the worker's maximum (drain) rate and of its"
    " live maximum (issue 32 target: worker p99 <= 2x the bare loop's, p50 <= 2x + 1 ms; <= 25 ms where the"
    " bare loop's p99 <= 10 ms)"
)


def latency_rows(results: dict[str, Any]) -> list[tuple[str, ...]]:
    """A row per rate; the last column is the share of the machine the hypervisor took meanwhile
    (on a shared virtual machine, the time in which nothing here ran: it shows in the tail)."""

    def steal(point: dict[str, Any]) -> str:
        shares = [point[side].get("cpu_us_per_msg", {}).get("steal_pct") for side in ("worker", "bare")]
        return " / ".join(f"{share:.0f}" for share in shares) if None not in shares else ""

    return [
        (
            f"{point['fraction']:g}" + (f" ({point['basis']})" if point.get("basis") else ""),
            f"{point['rate']:,.0f}",
            *(f"{point[side][key]:,.1f}" for side in ("worker", "bare") for key in ("p50_ms", "p99_ms")),
            steal(point),
            "ok" if relative_target(point) else "MISSED",
        )
        for point in results.get("latency_curve", [])
    ]


STAGE_COLUMNS = ("stage", "p50", "p99", "mean")


def stage_title(results: dict[str, Any]) -> str:
    """What the stage table shows: whose figures, at which rate, on which store."""
    found = results.get("latency_stages_ms", {})
    where = "SQLite" if found.get("store") != "mongodb" else "MongoDB"
    if found.get("store") == "mongodb" and not results.get("mongodb_server_is_mongodb"):
        where += " on the wire test server (wire-server figures, NOT MongoDB's)"
    rate = f"{found.get('rate_msgs_per_s', 0):,.0f} msgs/s ({found.get('basis', '')})"
    return f"Where the worker's publish-to-reply time goes (ms per message, stage log), at {rate}, store {where}"


def stage_rows(results: dict[str, Any]) -> list[tuple[str, ...]]:
    return list(stage_table(results.get("latency_stages_ms", {}).get("stages", {})))


Extra = tuple[str, tuple[str, ...], list[tuple[str, ...]], str]


def extra_tables(results: dict[str, Any]) -> list[Extra]:
    """The tables after the main one, where the results hold their figures: title, columns, rows, caption."""
    found = [
        (backlogs.TITLE, backlogs.COLUMNS, backlogs.table_rows(results), ""),
        (CPU_TITLE, CPU_COLUMNS, cpu_rows(results), ""),
        (LATENCY_TITLE, LATENCY_COLUMNS, latency_rows(results), within_target(results)),
        (stage_title(results), STAGE_COLUMNS, stage_rows(results), STAGE_CAPTION),
    ]
    return [table for table in found if table[2]]


def print_table(results: dict[str, Any]) -> None:
    title = f"sessions bench ({results['messages_per_case']} messages per case)"
    main: Extra = (title, ("measure", "value", "target"), list(rows(results)), "\n".join(captions(results)))
    for title, columns, found, caption in [main, *extra_tables(results)]:
        table = Table(title=title, caption=caption or None)
        for column in columns:
            table.add_column(column)
        for row in found:
            table.add_row(*row)
        Console().print(table)


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
        *(f"- {line}" for line in captions(results)),
        "",
        "| measure | value | target |",
        "|---|---|---|",
        *(f"| {label} | {value} | {target} |" for label, value, target in rows(results)),
        "",
    ]
    for title, columns, found, caption in extra_tables(results):
        lines += [
            f"{title}:",
            "",
            f"| {' | '.join(columns)} |",
            f"|{'---|' * len(columns)}",
            *(f"| {' | '.join(row)} |" for row in found),
            "",
            *([caption, ""] if caption else []),
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
    for plot, name, wanted in (
        (_throughput_plot, "throughput.png", True),
        (_memory_plot, "memory.png", bool(results.get("rss_samples"))),
        (_chats_plot, "memory-per-chat.png", bool(results.get("chat_rss_samples"))),
        (_latency_plot, "latency.png", bool(results.get("latency_curve"))),
    ):
        if wanted:
            figure, axis = plt.subplots(figsize=(7, 3.5))
            plot(axis, results)
            figure.tight_layout()
            figure.savefig(out / name, dpi=110)
            names.append(name)
    plt.close("all")
    return names


def _throughput_plot(axis: Any, results: dict[str, Any]) -> None:
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
    axis.set_title(f"Throughput (medians of {rounds} rounds)", fontsize=10)
    axis.tick_params(axis="x", labelsize=8)


def _memory_plot(axis: Any, results: dict[str, Any]) -> None:
    events, rss = zip(*results["rss_samples"], strict=True)
    axis.plot(events, rss, marker="o")
    axis.set_xlabel("events handled")
    axis.set_ylabel("worker RSS (MB)")
    axis.set_ylim(0, max(rss) * 1.2)
    axis.set_title("Worker memory")


def _chats_plot(axis: Any, results: dict[str, Any]) -> None:
    chats, rss = zip(*results["chat_rss_samples"], strict=True)
    axis.plot(chats, rss, marker="o")
    axis.axvline(results["chat_cache_size"], color="#c33", lw=1, label="the session cache's size")
    axis.set_xlabel("new chats written (one worker process)")
    axis.set_ylabel("worker RSS (MB)")
    axis.set_ylim(0, max(rss) * 1.2)
    axis.set_title("Worker memory per chat", fontsize=10)
    axis.legend(fontsize=7)


def _latency_plot(axis: Any, results: dict[str, Any]) -> None:
    from matplotlib.ticker import ScalarFormatter

    points = results["latency_curve"]
    rates = [point["rate"] for point in points]
    for side, label, color in (("worker", "worker", "#2a7"), ("bare", "bare loop", "#888")):
        axis.plot(rates, [p[side]["p99_ms"] for p in points], marker="o", color=color, label=f"{label} p99")
        axis.plot(rates, [p[side]["p50_ms"] for p in points], marker=".", ls="--", color=color, label=f"{label} p50")
    axis.axhline(TARGET_P99_MS, color="#c33", lw=1, label=f"p99 target ({TARGET_P99_MS:.0f} ms)")
    axis.set_yscale("log")
    axis.yaxis.set_major_formatter(ScalarFormatter())
    axis.set_xlabel("messages / s published (fractions of the worker's maximum rate)")
    axis.set_ylabel("publish-to-reply (ms)")
    axis.set_title("Latency, both sides at the same rates", fontsize=10)
    axis.legend(fontsize=7)
