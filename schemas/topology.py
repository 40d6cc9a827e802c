"""Exchange, queue, routing-key and header names. Names only: declaring them is the worker's job.

Every name starts with a prefix ("sessions" by default) so several deployments, or test runs,
can share one broker without meeting.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_PREFIX = "sessions"
DEFAULT_SHARDS = 16
# The broker's own dead-lettering of a message delivered this often: a last resort far above the
# worker's poison detection (SESSIONS_POISON_ATTEMPTS), which counts crashes, not deliveries.
DEFAULT_DELIVERY_LIMIT = 1000

HEADER_DEAD_REASON = "x-sessions-dead-reason"
HEADER_DEAD_DETAIL = "x-sessions-dead-detail"
HEADER_FORWARDED = "x-sessions-forwarded"
HEADER_ORIGINAL_KEY = "x-sessions-original-key"
# On a dead letter whose body had secrets redacted: the kinds, comma-separated (never the values).
HEADER_REDACTED = "x-sessions-redacted"

# Why bad input was dead-lettered (HEADER_DEAD_REASON), each decided on the event's first delivery.
BAD_INPUT_REASONS: dict[str, str] = {
    "oversize": "the body is larger than SESSIONS_MAX_PAYLOAD_BYTES",
    "invalid-utf8": "the body is not UTF-8",
    "invalid-json": "the body is not JSON",
    "too-deep": "JSON nested deeper than the parser reads, or free-form values deeper than 32 levels",
    "unknown-type": "no or an unknown event type",
    "unsupported-version": "a contract version this worker does not read",
    "too-long": "a text over its limit",
    "out-of-range": "a number outside its bounds",
    "missing-id": "a required id absent or empty",
    "schema": "any other contract violation",
}


# AMQP carries a routing key of at most 255 bytes; a longer one cannot be published at all.
MAX_ROUTING_KEY_BYTES = 255


def routable(key: str) -> str:
    """An ordering key cut to what AMQP carries. Keys are ASCII once encoded, so characters are
    bytes; chats whose keys share their first 255 characters share a shard and a lane, each still in order."""
    return key[:MAX_ROUTING_KEY_BYTES]


def reply_routing_key(channel: str | None, kind: str) -> str:
    """Replies are routed "<channel>.<kind>": a Telegram dispatcher binds "telegram.#". A channel
    too long for that is cut to fit, at a character boundary (UTF-8)."""
    room = MAX_ROUTING_KEY_BYTES - len(kind) - 1
    name = (channel or "none").encode()[:room].decode(errors="ignore")
    return f"{name}.{kind}"


@dataclass(frozen=True, slots=True)
class Topology:
    prefix: str = DEFAULT_PREFIX
    shards: int = DEFAULT_SHARDS

    @property
    def inbound_exchange(self) -> str:
        """x-modulus-hash on the routing key, which is the event's ordering key."""
        return f"{self.prefix}.inbound"

    @property
    def dead_letter_exchange(self) -> str:
        return f"{self.prefix}.dlx"

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.prefix}.dead"

    @property
    def reply_exchange(self) -> str:
        """topic, "<channel>.<kind>"."""
        return f"{self.prefix}.replies"

    @property
    def reply_outbox_queue(self) -> str:
        """A bounded tap of every reply, for `sessions replies` and single-dispatcher setups."""
        return f"{self.prefix}.replies.outbox"

    @property
    def turn_exchange(self) -> str:
        """topic, "<agent_id>"."""
        return f"{self.prefix}.turns"

    @property
    def notice_exchange(self) -> str:
        """topic, "<kind>.<agent_id>"."""
        return f"{self.prefix}.notices"

    @property
    def summarize_exchange(self) -> str:
        """topic, "<agent_id>"."""
        return f"{self.prefix}.summarize"

    @property
    def query_queue(self) -> str:
        """request/reply with reply_to and correlation_id."""
        return f"{self.prefix}.queries"

    @property
    def workers_exchange(self) -> str:
        """fanout of worker heartbeats, for shard assignment."""
        return f"{self.prefix}.workers"

    def shard_queue(self, index: int) -> str:
        return f"{self.prefix}.shard.{index:03d}"

    def shard_queues(self) -> list[str]:
        return [self.shard_queue(index) for index in range(self.shards)]

    def exchanges(self) -> list[str]:
        return [
            self.inbound_exchange,
            self.dead_letter_exchange,
            self.reply_exchange,
            self.turn_exchange,
            self.notice_exchange,
            self.summarize_exchange,
            self.workers_exchange,
        ]

    def queues(self) -> list[str]:
        return [*self.shard_queues(), self.dead_letter_queue, self.reply_outbox_queue, self.query_queue]
