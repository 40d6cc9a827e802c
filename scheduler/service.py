"""The scheduler process: APScheduler interval jobs running the sweeps, publishing to the broker."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from scheduler.sweeps import Emit, Sweeper, SweepReport
from worker.engine.clock import Clock
from worker.sessions.agents import AgentDirectory
from worker.stores.base import SweepStore

log = logging.getLogger(__name__)


class SchedulerService:
    def __init__(
        self,
        store: SweepStore,
        agents: AgentDirectory,
        clock: Clock,
        emit: Emit,
        *,
        reset_every_seconds: float,
        retention_every_seconds: float,
        keep_outcomes: timedelta = timedelta(hours=72),
    ) -> None:
        self.sweeper = Sweeper(store, agents, clock, emit)
        self._reset_every = reset_every_seconds
        self._retention_every = retention_every_seconds
        self._keep_outcomes = keep_outcomes
        self._scheduler: AsyncIOScheduler | None = None
        self.reports: list[SweepReport] = []

    async def _run(self, job: str) -> None:
        started = time.perf_counter()
        try:
            if job == "reset":
                report = await self.sweeper.reset_sweep()
            elif job == "retention":
                report = await self.sweeper.retention_sweep()
            else:
                report = await self.sweeper.prune_outcomes(self._keep_outcomes)
        except Exception:
            log.exception("%s sweep failed; the next run retries", job)
            return
        report.seconds = time.perf_counter() - started
        self.reports = [*self.reports[-99:], report]
        log.info(
            "%s sweep: examined %d sessions, emitted %d events in %.3fs",
            job,
            report.examined,
            report.emitted,
            report.seconds,
        )

    def start(self) -> None:
        scheduler = AsyncIOScheduler(timezone=UTC)
        now = datetime.now(UTC)
        jobs = (("reset", self._reset_every), ("retention", self._retention_every), ("outcomes", self._retention_every))
        for job, every in jobs:
            # One run at a time per job; a late run is coalesced rather than queued up.
            scheduler.add_job(
                self._run,
                "interval",
                seconds=every,
                args=[job],
                id=f"{job}-sweep",
                max_instances=1,
                coalesce=True,
                next_run_time=now,
                misfire_grace_time=max(int(every), 1),
            )
        scheduler.start()
        self._scheduler = scheduler

    async def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
        await asyncio.sleep(0)

    async def run_until(self, stop: asyncio.Event) -> None:
        self.start()
        await stop.wait()
        await self.stop()
