"""The worker's memory: its RSS over many events of the bench's slots, and per chat: its RSS after
N distinct chats have written, at a few N.

What grows with the number of chats a worker has seen is its per-chat caches, the session cache
above all (`SESSIONS_SESSION_CACHE_SIZE` entries at most). The case runs one worker process (the
caps are per process) with the session cache's cap given, warmed over the bench's slots; then
chats it has never seen write one message each, and the worker's RSS is read once every message
of a step has been answered. The slope up to the cap is what a chat costs; past it, RSS stays flat.
"""

from __future__ import annotations

from typing import Any

import aio_pika

from benchmarks.cases import Case, publish_many

FIRST_CHAT = 1_000_000  # past every slot the other cases use: each message is a chat of its own
DISTINCT = 10**9  # as many slots as that: no chat writes twice
STEPS = (0.25, 0.5, 1.0, 1.5, 2.0, 3.0)  # where RSS is read, in multiples of the cap
PER_10K = 10_000


def slope(points: list[tuple[int, float]]) -> float:
    """Least-squares MB per 10,000 chats through (chats, RSS MB) points."""
    if len(points) < 2:
        return 0.0
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    if spread == 0:
        return 0.0
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread * PER_10K


def summary(samples: list[tuple[int, float]], cap: int) -> dict[str, Any]:
    """The slopes below and past the cap, and how much RSS grew from the cap to the last sample."""
    below = [point for point in samples if point[0] <= cap]
    past = [point for point in samples if point[0] >= cap]
    at_cap = past[0][1] if past else samples[-1][1]
    return {
        "chat_cache_size": cap,
        "chat_rss_samples": samples,
        "rss_mb_per_10k_chats": round(slope(below), 2),
        "rss_mb_per_10k_chats_past_cap": round(slope(past), 2),
        "rss_growth_past_cap": round(samples[-1][1] / at_cap, 3),
    }


async def memory(connection: aio_pika.abc.AbstractConnection, case: Case, events: int) -> dict[str, Any]:
    """RSS of the largest worker process while they handle `events` more events, sampled every tenth."""
    channel = await connection.channel(publisher_confirms=True)
    samples: list[tuple[int, float]] = []
    step = max(events // 10, 1)
    already = case.arrivals.count
    for start in range(0, events, step):
        await publish_many(channel, case.names, start, step, case.config.slots, "mem")
        await case.arrivals.wait_for(already + start + step, within=600)
        samples.append((start + step, round(case.rss_mb(), 1)))
    await channel.close()
    settled = [rss for _, rss in samples[len(samples) // 3 :]]
    return {"rss_samples": samples, "rss_mb": samples[-1][1], "rss_growth_after_warmup": settled[-1] / settled[0]}


async def rss_per_chat(connection: aio_pika.abc.AbstractConnection, case: Case, cap: int) -> dict[str, Any]:
    """On a running, warm case of one worker process whose session cache holds `cap` sessions:
    RSS before any new chat, then after each step of STEPS."""
    channel = await connection.channel(publisher_confirms=True)
    samples: list[tuple[int, float]] = [(0, round(case.rss_mb(), 1))]
    already, written = case.arrivals.count, 0
    try:
        for step in STEPS:
            target = int(step * cap)
            count = target - written
            await publish_many(channel, case.names, FIRST_CHAT + written, count, DISTINCT, "chat")
            written = target
            await case.arrivals.wait_for(already + written, within=600)
            samples.append((written, round(case.rss_mb(), 1)))
    finally:
        await channel.close()
    return summary(samples, cap)
