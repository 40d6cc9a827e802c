"""Prometheus metrics of one worker. Each service owns its registry: no process-global state."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
OUTCOMES = ("applied", "replayed", "forwarded", "dead_lettered")


@dataclass(frozen=True)
class HandlerStats:
    applied: int
    replayed: int
    forwarded: int
    dead_lettered: int
    redelivered: int


class WorkerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.events = Counter("sessions_events", "Events handled, by type and outcome", ["type", "outcome"], registry=r)
        self.apply_seconds = Histogram(
            "sessions_apply_seconds",
            "Time to apply one event and publish its outcome",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.end_to_end_seconds = Histogram(
            "sessions_end_to_end_seconds",
            "From the event's occurred_at to its outcome being published",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.redeliveries = Counter("sessions_redeliveries", "Deliveries flagged as redelivered", registry=r)
        self.dead_letters = Counter("sessions_dead_letters", "Events dead-lettered, by reason", ["reason"], registry=r)
        self.redactions = Counter(
            "sessions_redactions", "Secrets replaced before storage, by kind (never the value)", ["kind"], registry=r
        )
        self.owned_shards = Gauge("sessions_owned_shards", "Shard queues this worker consumes", registry=r)
        self.active_sessions = Gauge("sessions_active_sessions", "Active sessions in the store", registry=r)
        self.inflight = Gauge("sessions_inflight_events", "Events received and not yet finished", registry=r)
        # Counted in a plain int by the event loop (twice per event) and read at scrape time.
        self.inflight_events = 0
        self.inflight.set_function(lambda: self.inflight_events)
        self.store_available = Gauge(
            "sessions_store_available", "1 while the store takes writes, 0 while it is unwell (events held)", registry=r
        )
        self.intake_open = Gauge(
            "sessions_intake_open", "1 while the worker takes new deliveries, 0 while it holds back", registry=r
        )
        self._event_counters: dict[tuple[str, str], Counter] = {}

    def event(self, event_type: str, outcome: str) -> None:
        counter = self._event_counters.get((event_type, outcome))
        if counter is None:  # labels() takes a lock and builds a key: once per pair, not per event
            counter = self._event_counters[(event_type, outcome)] = self.events.labels(event_type, outcome)
        counter.inc()

    def redacted(self, kind: str) -> None:
        self.redactions.labels(kind).inc()

    def count(self, outcome: str) -> int:
        total = 0.0
        for metric in self.events.collect():
            for sample in metric.samples:
                if sample.name.endswith("_total") and sample.labels.get("outcome") == outcome:
                    total += sample.value
        return int(total)

    def snapshot(self) -> HandlerStats:
        redelivered = self.registry.get_sample_value("sessions_redeliveries_total") or 0
        applied, replayed, forwarded, dead_lettered = (self.count(outcome) for outcome in OUTCOMES)
        return HandlerStats(applied, replayed, forwarded, dead_lettered, int(redelivered))
