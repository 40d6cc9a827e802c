"""The acks of one shard consumer, sent together: one Basic.Ack for many deliveries.

An ack has no answer and only lets the broker drop its copy, so it can wait a little
(SESSIONS_ADVANCED__ACK_DELAY_MS): one frame then settles every delivery finished meanwhile,
instead of a socket write and a quorum-queue log entry each. Nothing waits for it: the reply went
out (confirmed) before the ack was due, and an ack lost with its connection only means a
redelivery, which replays idempotently.

Deliveries on a channel are numbered 1, 2, 3...; a multiple ack settles every unsettled one up to
its tag. So the finished deliveries below the lowest unfinished one go as one multiple ack, and
those above it (a lane still busy, or retrying, below them) as single acks in the same flush:
a stuck delivery never holds the others' acks back past one delay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Protocol

from aio_pika.abc import AbstractIncomingMessage
from aio_pika.exceptions import ChannelInvalidStateError

from worker.engine import stages

log = logging.getLogger(__name__)
ACK_TIMEOUT = 10.0


class AckChannel(Protocol):
    """What an ack needs of the channel a delivery came on (aiormq's Channel)."""

    @property
    def is_closed(self) -> bool: ...

    def basic_ack(self, delivery_tag: int, multiple: bool = False, wait: bool = True) -> Awaitable[None]: ...


def _tag(message: AbstractIncomingMessage) -> int:
    if message.delivery_tag is None:
        raise RuntimeError(f"delivery {message.message_id} has no delivery tag to acknowledge")
    return message.delivery_tag


async def ack_now(message: AbstractIncomingMessage) -> None:
    """Queue one delivery's ack frame without awaiting its socket write (an ack has no answer to
    wait for). Queueing can still block behind a dead connection's full write buffer: bounded,
    a timeout is a transient failure (and the delivery is redelivered)."""
    async with asyncio.timeout(ACK_TIMEOUT):
        await message.channel.basic_ack(_tag(message), wait=False)


@dataclass
class _Pending:
    """One channel's deliveries: started and not finished, and finished and not yet acked."""

    unfinished: set[int] = field(default_factory=set)
    finished: list[int] = field(default_factory=list)

    def frames(self) -> list[tuple[int, bool]]:
        """(tag, multiple) of each ack that settles every finished delivery, the fewest frames first."""
        low = min(self.unfinished, default=None)
        below = [tag for tag in self.finished if low is None or tag < low]
        above = [(tag, False) for tag in self.finished if low is not None and tag > low]
        return ([(max(below), True)] if below else []) + above


class AckBatch:
    """Acks of one consumer's deliveries, flushed `delay` seconds after the first one waits, or at
    once when `limit` wait. A delay of 0 acks each delivery as it finishes."""

    def __init__(self, delay: float, limit: int) -> None:
        self._delay = delay
        self._limit = max(limit, 1)
        # Keyed by the delivery's channel: a reopened channel numbers its deliveries from 1 again.
        self._channels: dict[AckChannel, _Pending] = {}
        self._waiting = 0
        self._timer: asyncio.TimerHandle | None = None
        self._flushes: set[asyncio.Task[None]] = set()
        self._sending = asyncio.Lock()
        self._traces: list[stages.Trace] = []  # the waiting acks' deliveries, while stages are traced

    def started(self, message: AbstractIncomingMessage) -> None:
        """A delivery arrived: until it is acked, no multiple ack may reach its tag (one left
        unacked for redelivery stays unfinished until its channel closes)."""
        if self._delay > 0:
            # One on a channel closed meanwhile is requeued by the broker: nothing to track.
            with contextlib.suppress(ChannelInvalidStateError):
                self._pending(message.channel).unfinished.add(_tag(message))

    async def ack(self, message: AbstractIncomingMessage) -> None:
        """The delivery is done with: its ack goes out with the next flush."""
        trace = stages.current()
        if self._delay <= 0:
            await ack_now(message)
            if trace is not None:
                trace.mark(stages.ACKED)
            return
        if trace is not None:
            self._traces.append(trace)
        pending, tag = self._pending(message.channel), _tag(message)
        pending.unfinished.discard(tag)
        pending.finished.append(tag)
        self._waiting += 1
        if self._waiting >= self._limit:
            self._start_flush()
        else:
            self._arm()

    def _arm(self) -> None:
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._delay, self._start_flush)

    async def flush(self) -> None:
        """Send every waiting ack now (before the channel is released) and wait for running flushes."""
        self._start_flush()
        await asyncio.gather(*self._flushes)

    def _pending(self, channel: AckChannel) -> _Pending:
        pending = self._channels.get(channel)
        if pending is None:
            pending = self._channels[channel] = _Pending()
        return pending

    def _start_flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._waiting:
            return
        self._waiting = 0
        traces, self._traces = self._traces, []
        task = asyncio.get_running_loop().create_task(self._send(traces))
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def _send(self, traces: list[stages.Trace]) -> None:
        # One flush at a time, its frames worked out only when its turn comes: a later flush's
        # multiple ack sent before an earlier one's frames would settle their tags, which the
        # broker then rejects as unknown (closing the channel). The lock queues flushes in order.
        async with self._sending:
            for channel, frames in self._take():
                sent = 0
                try:
                    async with asyncio.timeout(ACK_TIMEOUT):
                        for tag, multiple in frames:
                            await channel.basic_ack(tag, multiple=multiple, wait=False)
                            sent += 1
                except Exception as exc:  # a channel closing meanwhile, or a write buffer stuck
                    self._retry(channel, frames[sent:], exc)
        for trace in traces:
            trace.mark(stages.ACKED)

    def _take(self) -> list[tuple[AckChannel, list[tuple[int, bool]]]]:
        """Every open channel's ack frames for what finished so far; closed channels are dropped
        (the broker requeued their unacked deliveries, which are redelivered)."""
        batches = []
        for channel, pending in list(self._channels.items()):
            if channel.is_closed:
                del self._channels[channel]
            elif pending.finished:
                batches.append((channel, pending.frames()))
                pending.finished = []
        return batches

    def _retry(self, channel: AckChannel, unsent: list[tuple[int, bool]], exc: Exception) -> None:
        """Acks that did not go out wait for the next flush while their channel stays open (a
        multiple ack's own tag stands for the rest: nothing below it was settled meanwhile)."""
        if channel.is_closed:
            return  # the broker redelivers its unacked deliveries
        log.warning("%d ack frames not sent, retrying with the next flush: %r", len(unsent), exc)
        self._pending(channel).finished.extend(tag for tag, _ in unsent)
        self._waiting += len(unsent)
        self._arm()
