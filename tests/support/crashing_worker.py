"""A worker process for crash tests: the real worker, whose token counter kills the process
(SIGKILL, as the OOM killer would) whenever it meets a message containing CRASH_MARKER, and once
for CRASH_ONCE_MARKER (the first time, while the file that CRASH_ONCE_FLAG names does not exist).
The count runs just before the entry is written: after the session was resolved (reset, created).

Test-only: the production worker has no such hook. Run as `python -m tests.support.crashing_worker`
with the usual SESSIONS_* environment.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

from worker import create_session_manager
from worker.amqp.service import WorkerService
from worker.app.cli_support import load_settings
from worker.app.ops_server import OpsServer
from worker.engine.clock import system_clock
from worker.engine.tokens import TiktokenCounter
from worker.sessions.options import options_from_settings

CRASH_MARKER = "kill-the-worker"
CRASH_ONCE_MARKER = "kill-the-worker-once"
CRASH_ONCE_FLAG = "CRASH_ONCE_FLAG"  # the environment variable naming the flag file


class CrashingCounter:
    def __init__(self, inner: TiktokenCounter) -> None:
        self._inner = inner

    def count(self, text: str) -> int:
        if CRASH_ONCE_MARKER in text:
            flag = Path(os.environ[CRASH_ONCE_FLAG])
            if not flag.exists():
                flag.touch()
                os.kill(os.getpid(), signal.SIGKILL)
        elif CRASH_MARKER in text:
            os.kill(os.getpid(), signal.SIGKILL)
        return self._inner.count(text)


async def main() -> None:
    settings = load_settings(json_logs=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    counter = CrashingCounter(TiktokenCounter.load(settings.token_encoding))
    async with create_session_manager(token_counter=counter, **options_from_settings(settings)) as manager:
        service = WorkerService(settings, manager, system_clock)
        ops = OpsServer([service.metrics.registry], [service.readiness], "127.0.0.1", settings.metrics_port)
        await ops.start()
        try:
            await service.run_until(stop)
        finally:
            await ops.stop()


if __name__ == "__main__":
    asyncio.run(main())
