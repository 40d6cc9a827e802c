"""AckBatch: finished deliveries are acked together, never one that is still running."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, cast

from worker.amqp.acks import AckBatch


@dataclass(eq=False)
class RecordingChannel:
    """A channel that records the ack frames it is given, as the broker would receive them."""

    frames: list[tuple[int, bool]] = field(default_factory=list)
    is_closed: bool = False

    async def basic_ack(self, delivery_tag: int, multiple: bool = False, wait: bool = True) -> None:
        self.frames.append((delivery_tag, multiple))


@dataclass
class Message:
    channel: RecordingChannel
    delivery_tag: int
    message_id: str = "m"


def deliveries(channel: RecordingChannel, count: int) -> list[Any]:
    return [cast(Any, Message(channel, tag)) for tag in range(1, count + 1)]


def delivered(channel: RecordingChannel, count: int, *, delay: float, limit: int = 100) -> tuple[AckBatch, list[Any]]:
    """A batch and `count` deliveries on `channel`, all started (in tag order, as they arrive)."""
    batch = AckBatch(delay=delay, limit=limit)
    messages = deliveries(channel, count)
    for message in messages:
        batch.started(message)
    return batch, messages


def settled(frames: list[tuple[int, bool]], delivered: int) -> set[int]:
    """The tags the broker considers acked after these frames (a multiple ack settles every
    unsettled tag up to its own, which must itself be unsettled)."""
    done: set[int] = set()
    for tag, multiple in frames:
        assert tag not in done, f"tag {tag} acked twice: the broker closes the channel"
        done |= set(range(1, tag + 1)) if multiple else {tag}
    assert done <= set(range(1, delivered + 1))
    return done


async def test_in_order_deliveries_go_as_one_multiple_ack_after_the_delay() -> None:
    channel = RecordingChannel()
    batch, messages = delivered(channel, 5, delay=0.02)
    for message in messages:
        await batch.ack(message)
    assert channel.frames == []  # waiting for the delay
    await asyncio.sleep(0.1)
    assert channel.frames == [(5, True)]


async def test_a_running_delivery_is_never_covered_and_the_ones_after_it_go_singly() -> None:
    channel = RecordingChannel()
    batch, messages = delivered(channel, 6, delay=10)
    for tag in (1, 2, 4, 6):
        await batch.ack(messages[tag - 1])
    await batch.flush()
    assert channel.frames == [(2, True), (4, False), (6, False)]
    assert 3 not in settled(channel.frames, 6) and 5 not in settled(channel.frames, 6)
    for tag in (5, 3):
        await batch.ack(messages[tag - 1])
    await batch.flush()
    assert settled(channel.frames, 6) == {1, 2, 3, 4, 5, 6}


async def test_a_delivery_left_unacked_holds_back_the_multiple_ack_for_good() -> None:
    channel = RecordingChannel()
    batch, (_left_unacked, second, third) = delivered(channel, 3, delay=10)
    await batch.ack(second)
    await batch.flush()
    await batch.ack(third)
    await batch.flush()
    assert settled(channel.frames, 3) == {2, 3}  # the first stays for redelivery


async def test_the_limit_flushes_at_once() -> None:
    channel = RecordingChannel()
    batch, messages = delivered(channel, 4, delay=10, limit=4)
    for message in messages:
        await batch.ack(message)
    await asyncio.sleep(0)  # the flush task runs
    assert channel.frames == [(4, True)]


async def test_no_delay_acks_each_delivery_singly_as_it_finishes() -> None:
    channel = RecordingChannel()
    batch, messages = delivered(channel, 3, delay=0)
    await batch.ack(messages[1])
    assert channel.frames == [(2, False)]


async def test_a_reopened_channel_numbers_afresh_and_a_closed_one_is_dropped() -> None:
    old, new = RecordingChannel(), RecordingChannel()
    batch = AckBatch(delay=10, limit=100)
    stale = deliveries(old, 2)
    for message in stale:
        batch.started(message)
    await batch.ack(stale[1])
    old.is_closed = True  # the connection dropped: the broker requeued what was unacked
    fresh = deliveries(new, 2)
    for message in fresh:
        batch.started(message)
        await batch.ack(message)
    await batch.flush()
    assert old.frames == []
    assert new.frames == [(2, True)]


@dataclass(eq=False)
class SlowChannel(RecordingChannel):
    """Its first ack waits until released, as a full write buffer would keep it waiting."""

    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def basic_ack(self, delivery_tag: int, multiple: bool = False, wait: bool = True) -> None:
        if not self.frames:
            await self.release.wait()
        self.frames.append((delivery_tag, multiple))


async def test_a_flush_waits_for_the_one_before_and_works_out_its_frames_then() -> None:
    channel = SlowChannel()
    batch, messages = delivered(channel, 9, delay=10)
    for tag in (1, 2, 3, 7):  # 4, 5, 6 still running: multiple 3, single 7
        await batch.ack(messages[tag - 1])
    first = asyncio.ensure_future(batch.flush())
    await asyncio.sleep(0)  # the first flush is stuck on its first frame
    for tag in (4, 5, 6, 8, 9):
        await batch.ack(messages[tag - 1])
    second = asyncio.ensure_future(batch.flush())
    await asyncio.sleep(0)
    channel.release.set()
    await asyncio.gather(first, second)
    assert settled(channel.frames, 9) == set(range(1, 10))  # and no tag settled twice


@dataclass(eq=False)
class FailingOnceChannel(RecordingChannel):
    failed: bool = False

    async def basic_ack(self, delivery_tag: int, multiple: bool = False, wait: bool = True) -> None:
        if not self.failed:
            self.failed = True
            raise TimeoutError("write buffer full")
        self.frames.append((delivery_tag, multiple))


async def test_acks_that_fail_to_go_out_are_sent_with_the_next_flush() -> None:
    channel = FailingOnceChannel()
    batch, messages = delivered(channel, 4, delay=0.02)
    for message in messages[:3]:
        await batch.ack(message)
    await batch.flush()
    assert channel.frames == []
    await asyncio.sleep(0.1)  # the retry's delay: nothing else finishes meanwhile
    assert settled(channel.frames, 4) == {1, 2, 3}
