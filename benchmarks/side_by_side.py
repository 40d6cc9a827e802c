"""Two checkouts' workers and the bare loop, side by side at the same rates, in one run.

    python -m benchmarks.side_by_side --baseline ../other-checkout [--rounds 2] [--seconds 5] [--json]

Every change to the hot path is measured this way: this checkout's worker ("new") against another
checkout's ("old", run by that checkout's own .venv/bin/python; `make setup` there first), and
the bare loop, each on a case of its own, all three running throughout. The rates are fractions
(1/8, 1/4, 1/2) of the new worker's live maximum; at each rate the three sides take turns, the
order rotating from round to round, so a noisy stretch of this shared machine hits all alike.
Both workers keep a stage log, so each point carries its stage breakdown (benchmarks/stages.py).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import statistics
from pathlib import Path
from typing import Any

import aio_pika

from benchmarks.broker import _close, _drain, _stored
from benchmarks.cases import KEY, BenchConfig, Case
from benchmarks.latency import Point, live_maximum, measure
from benchmarks.stages import STAGES
from worker.engine.crypto import EncryptingCodec, KeyRing

FRACTIONS = (0.125, 0.25, 0.5)
SIDES = ("bare", "old", "new")


async def run(
    config: BenchConfig,
    baseline: Path,
    rounds: int,
    seconds: float,
    envs: dict[str, dict[str, str]],
    basis: float | None = None,
) -> dict[str, Any]:
    """Every side's latency at FRACTIONS of `basis` msgs/s (None: of the new worker's live maximum)."""
    codec = EncryptingCodec(KeyRing.parse(f"bench:{KEY}"))
    connection = await aio_pika.connect_robust(config.url)
    cases: dict[str, Case] = {}
    try:
        for side in SIDES:
            checkout = baseline if side == "old" else None
            side_config = dataclasses.replace(config, worker_checkout=checkout, worker_env=envs.get(side, {}))
            case, _ = await _drain(
                connection,
                side_config,
                f"{side}-sbs",
                print,
                prepare=None if side == "bare" else _stored(codec),
                bare=side == "bare",
                traced=side != "bare",
            )
            cases[side] = case
        live = {side: await live_maximum(cases[side], 2000.0, config.live_seconds, f"live{side}") for side in SIDES}
        basis = basis or live["new"]
        points: dict[str, dict[str, list[Point]]] = {f"{f:g}": {side: [] for side in SIDES} for f in FRACTIONS}
        for number in range(rounds):
            for fraction in FRACTIONS:
                order = SIDES[number % 3 :] + SIDES[: number % 3]
                for side in order:
                    tag = f"r{number}f{int(fraction * 1000)}{side}"
                    point = await measure(cases[side], basis * fraction, seconds, tag)
                    points[f"{fraction:g}"][side].append(point)
                    print(f"{tag}: {point.rate:.0f}/s p50 {point.p50_ms:.2f} p99 {point.p99_ms:.2f}")
    finally:
        for case in cases.values():
            await _close(connection, case)
        await connection.close()
    summaries = {fraction: _summary(sides) for fraction, sides in points.items()}
    return {"live_max_msgs_per_s": live, "basis_msgs_per_s": basis, "points": summaries}


def _summary(sides: dict[str, list[Point]]) -> dict[str, Any]:
    """Per side: the median over rounds of p50 and p99, and of each stage's p50 / p99."""
    found: dict[str, Any] = {}
    for side, measured in sides.items():
        found[side] = {
            "rate": round(measured[0].rate, 1),
            "p50_ms": round(statistics.median(p.p50_ms for p in measured), 2),
            "p99_ms": round(statistics.median(p.p99_ms for p in measured), 2),
            "rounds_p99_ms": [round(p.p99_ms, 2) for p in measured],
        }
        used = [p.cpu for p in measured if p.cpu]
        if used:
            found[side]["cpu_us_per_msg"] = {
                key: round(statistics.median(u[key] for u in used), 1) for key in ("loop_thread_us", "total_us")
            }
        with_stages = [p.stages for p in measured if p.stages]
        if with_stages:
            found[side]["stages_ms"] = {
                stage: {
                    key: round(statistics.median(s[stage][key] for s in with_stages if stage in s), 3)
                    for key in ("p50", "p99", "mean")
                }
                for stage in STAGES
                if any(stage in s for s in with_stages)
            }
    return found


def print_tables(results: dict[str, Any]) -> None:
    print("live maxima (msgs/s):", {k: round(v) for k, v in results["live_max_msgs_per_s"].items()})
    print(f"rates: fractions of {results['basis_msgs_per_s']:,.0f} msgs/s")
    print("| of new live max | msgs/s | new p50 | new p99 | old p50 | old p99 | bare p50 | bare p99 |")
    print("|---|---|---|---|---|---|---|---|")
    for fraction, sides in results["points"].items():
        cells = [f"{sides[s][k]:.2f}" for s in ("new", "old", "bare") for k in ("p50_ms", "p99_ms")]
        print(f"| {fraction} | {sides['new']['rate']:,.0f} | {' | '.join(cells)} |")
    for fraction, sides in results["points"].items():
        use = {side: sides[side].get("cpu_us_per_msg", {}) for side in SIDES}
        print(f"CPU µs a message at {fraction} (consumer loop thread / all parties):", use)
    for fraction, sides in results["points"].items():
        print(f"\nstages at {fraction} (ms, p50 / p99): | stage | new | old |")
        for stage in STAGES:
            new, old = sides["new"].get("stages_ms", {}).get(stage), sides["old"].get("stages_ms", {}).get(stage)
            if new or old:
                cell = [f"{x['p50']:.2f} / {x['p99']:.2f}" if x else "" for x in (new, old)]
                print(f"| {stage} | {cell[0]} | {cell[1]} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, required=True, help="the other checkout (its .venv set up)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=5.0, help="each measurement's length")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/side-by-side"), help="stores and stage logs")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--url", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--basis", type=float, help="msgs/s the fractions are of (default: new's live maximum)")
    for side in ("old", "new"):
        parser.add_argument(f"--{side}-env", action="append", default=[], help=f"KEY=VALUE for the {side} workers")
    args = parser.parse_args()
    envs = {side: dict(item.split("=", 1) for item in getattr(args, f"{side}_env")) for side in ("old", "new")}
    args.workdir.mkdir(parents=True, exist_ok=True)
    config = BenchConfig(args.url, messages=2_000, workdir=args.workdir, live_seconds=3.0, stored_sessions=100)
    results = asyncio.run(run(config, args.baseline.resolve(), args.rounds, args.seconds, envs, args.basis))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    print_tables(results)


if __name__ == "__main__":
    main()
