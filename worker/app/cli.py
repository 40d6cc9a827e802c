"""The `sessions` command: run the service, talk to it through the broker, inspect the store."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import Coroutine
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.markup import escape

from worker.app import cli_config, cli_sessions  # noqa: F401 - they register their commands on `app`
from worker.app.cli_support import app, console, errors, fail, load_settings, opened_manager
from worker.config import Settings
from worker.errors import StartupError

T = TypeVar("T")


async def _serve(settings: Settings, *, worker: bool, scheduler: bool) -> None:
    from prometheus_client import CollectorRegistry

    from worker.amqp.service import WorkerService
    from worker.app.gc_tuning import tune_collector
    from worker.app.ops_server import OpsServer, Readiness
    from worker.engine.clock import system_clock

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with opened_manager(settings) as manager:
        registries: list[CollectorRegistry] = []
        checks: list[Readiness] = []
        ops = OpsServer(registries, checks, settings.metrics_host, settings.metrics_port)
        await ops.start()  # first: a port that is taken stops the start before anything runs
        parts = []
        if worker:
            service = WorkerService(settings, manager, system_clock)
            registries.append(service.metrics.registry)
            checks.append(service.readiness)
            parts.append(service.run_until(stop))
            parts.append(_count_active_sessions(manager, service.metrics, stop))
        if scheduler:
            parts.append(_run_scheduler(settings, manager, stop, checks))
        tune_collector(settings.advanced.gc_young_threshold)  # after start-up: what it built is frozen
        try:
            results = await asyncio.gather(
                *(_stopping_all_on_failure(part, stop) for part in parts), return_exceptions=True
            )
        finally:
            await ops.stop()
        for result in results:
            if isinstance(result, BaseException):
                raise result


async def _stopping_all_on_failure(part: Coroutine[Any, Any, None], stop: asyncio.Event) -> None:
    """If one component fails, the others still stop gracefully (drain and ack) before we exit."""
    try:
        await part
    finally:
        stop.set()


async def _count_active_sessions(manager: Any, metrics: Any, stop: asyncio.Event) -> None:
    """Refresh the active-sessions gauge now and then: a count is cheap but not free."""
    while not stop.is_set():
        with contextlib.suppress(Exception):
            metrics.active_sessions.set(await manager.store.count_sessions(None, "active"))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(15):
                await stop.wait()


async def _run_scheduler(settings: Settings, manager: Any, stop: asyncio.Event, checks: list[Any]) -> None:
    from scheduler.service import SchedulerService
    from worker.amqp.connection import close_within
    from worker.amqp.gateway import GatewayClient
    from worker.amqp.service import CLOSE_SECONDS, connect
    from worker.amqp.topology import declare_topology_if_allowed
    from worker.engine.clock import system_clock

    connection = await connect(settings.amqp_url.get_secret_value())
    try:
        await declare_topology_if_allowed(connection, settings.topology(), delivery_limit=settings.delivery_limit)
        # Control events carry the scheduler's validated broker user: workers accept only those.
        gateway = await GatewayClient.open(connection, settings.topology(), user_id=settings.broker_user())
        service = SchedulerService(
            manager.store,
            manager.agents,
            system_clock,
            gateway.publish,
            reset_every_seconds=settings.reset_sweep_seconds,
            retention_every_seconds=settings.retention_sweep_seconds,
            keep_outcomes=timedelta(hours=settings.outcome_retention_hours),
        )

        async def scheduler_ready() -> tuple[bool, str]:
            return (not connection.is_closed, "scheduler not connected to RabbitMQ")

        checks.append(scheduler_ready)
        await service.run_until(stop)
    finally:
        await close_within(connection, CLOSE_SECONDS)  # a blocked or lost broker never answers a close


def _serving(*, worker: bool, scheduler: bool) -> None:
    """Serve; a broker set up in a way the settings cannot use is one line and exit status 2."""
    from worker.amqp.topology import MissingPlugin, TopologyMismatch

    try:
        asyncio.run(_serve(load_settings(json_logs=True), worker=worker, scheduler=scheduler))
    except (MissingPlugin, TopologyMismatch, StartupError) as exc:
        _unusable(exc)


def _unusable(exc: Exception) -> NoReturn:
    fail(escape(" ".join(str(exc).split())), code=2)


@app.command()
def worker() -> None:
    """Run a worker: consume inbound events, apply them, publish replies (SIGTERM stops it gracefully)."""
    _serving(worker=True, scheduler=False)


@app.command("scheduler")
def scheduler_command() -> None:
    """Run the scheduler: sweep for due resets and retention, publish their events (run one replica)."""
    _serving(worker=False, scheduler=True)


@app.command()
def run() -> None:
    """Run a worker and the scheduler in one process, for one machine (SQLite store by default)."""
    _serving(worker=True, scheduler=True)


@app.command()
def topology() -> None:
    """Declare the exchanges and queues (idempotent)."""
    from worker.amqp.connection import connect_once
    from worker.amqp.topology import declare_topology

    settings = load_settings()

    async def declare() -> None:
        connection = await connect_once(settings.amqp_url.get_secret_value())
        async with connection:
            await declare_topology(
                await connection.channel(), settings.topology(), delivery_limit=settings.delivery_limit
            )

    _broker(declare())
    names = settings.topology()
    console.print(
        f"declared {len(names.exchanges())} exchanges and {len(names.queues())} queues (prefix {names.prefix})"
    )


@app.command()
def send(
    text: Annotated[str, typer.Argument(help="message text; start with / for a chat command")],
    channel: Annotated[str, typer.Option(help="messaging channel, e.g. telegram")] = "cli",
    peer: Annotated[
        str, typer.Option(help="chat id as the platform sends it (DM peer or group; --peer=-100... works)")
    ] = "local",
    agent: Annotated[str, typer.Option(help="agent id")] = "main",
    user: Annotated[str | None, typer.Option(help="sender's user id (defaults to the peer)")] = None,
    account: Annotated[str | None, typer.Option(help="bot account id")] = None,
    thread: Annotated[str | None, typer.Option(help="thread id")] = None,
    group: Annotated[bool, typer.Option(help="the chat is a group")] = False,
    event_id: Annotated[str | None, typer.Option(help="the event's id (default: a new one)")] = None,
    message_id: Annotated[str | None, typer.Option(help="the platform's message id (default: a new one)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the published event as JSON")] = False,
) -> None:
    """Publish an inbound chat message, as a gateway would."""
    import uuid

    from pydantic import ValidationError

    from schemas.base import describe_errors
    from worker.amqp.gateway import connect_gateway

    settings = load_settings()

    async def publish() -> str:
        connection, gateway = await connect_gateway(settings.amqp_url.get_secret_value(), settings.topology())
        async with connection:
            event = await gateway.send_message(
                channel=channel,
                peer_id=peer,
                text=text,
                agent_id=agent,
                user_id=user,
                account_id=account,
                thread_id=thread,
                message_id=message_id or f"cli-{uuid.uuid4().hex[:8]}",
                chat_type="group" if group else "direct",
                event_id=event_id,
            )
            return event.model_dump_json(by_alias=True, exclude_none=True)

    try:
        published = _broker(publish())
    except ValidationError as exc:
        fail(f"not a valid event: {describe_errors(exc)}", code=2)
    if as_json:
        typer.echo(published)
    else:
        console.print(f"published event {json.loads(published)['eventId']}")


@app.command()
def replies(
    count: Annotated[int | None, typer.Option(help="stop after N replies")] = None,
    timeout: Annotated[float, typer.Option(help="stop after S seconds without a reply")] = 30.0,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON reply event per line")] = False,
    from_start: Annotated[
        bool, typer.Option("--from-start", help="first the backlog of the reply outbox (and take it off)")
    ] = False,
) -> None:
    """Print reply-routing events published from now on (with --from-start, the outbox's backlog first)."""
    from worker.amqp.connection import connect_once
    from worker.amqp.taps import bound_queue, messages

    settings = load_settings()

    async def tail() -> int:
        seen = 0
        connection = await connect_once(settings.amqp_url.get_secret_value())
        async with connection:
            channel = await connection.channel()
            names = settings.topology()
            if from_start:
                queue = await channel.get_queue(names.reply_outbox_queue, ensure=True)
            else:
                queue = await bound_queue(channel, names.reply_exchange)
            async for message in messages(queue, count=count, idle_seconds=timeout):
                seen += 1
                reply = json.loads(message.body)
                if as_json:
                    typer.echo(json.dumps(reply, ensure_ascii=False))
                else:
                    route = reply.get("delivery", {})
                    where = "/".join(str(route[k]) for k in ("channel", "to", "threadId") if route.get(k))
                    console.print(f"[bold]{reply.get('kind')}[/] → {escape(where)} (re {reply.get('inReplyTo')}):")
                    console.print(str(reply.get("text")), markup=False)
        return seen

    seen = _broker(tail())
    if count is not None and seen < count:
        fail(f"only {seen} of {count} replies arrived within {timeout:g}s of silence", code=3)


@app.command()
def schemas(
    out: Annotated[Path | None, typer.Option(help="write one .json file per contract into this folder")] = None,
    markdown: Annotated[bool, typer.Option("--markdown", help="print the contracts as a Markdown reference")] = False,
    settings_doc: Annotated[bool, typer.Option("--settings", help="print every setting as a Markdown table")] = False,
) -> None:
    """Export the event contracts as JSON Schema (or Markdown references of contracts and settings)."""
    from schemas.docgen import contracts_markdown, settings_markdown
    from schemas.jsonschema import event_schemas, render

    if markdown:
        typer.echo(contracts_markdown())
        return
    if settings_doc:
        typer.echo(settings_markdown(Settings, "SESSIONS_", {"amqp_url": "AMQP_URL", "mongodb_url": "MONGODB_URL"}))
        return
    docs = event_schemas()
    if out is None:
        typer.echo(json.dumps(docs, indent=2))
        return
    out.mkdir(parents=True, exist_ok=True)
    for name, doc in docs.items():
        (out / f"{name}.schema.json").write_text(render(doc))
    console.print(f"wrote {len(docs)} schemas to {out}")


@app.command("dead-letters")
def dead_letters(
    replay: Annotated[bool, typer.Option("--replay", help="re-publish them to the inbound exchange")] = False,
    count: Annotated[int, typer.Option(help="at most N messages")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per message")] = False,
) -> None:
    """Show the dead-letter queue with reasons, or replay it after a fix (taking the messages off it).
    A replay run moves each dead letter at most once, even one that is dead-lettered again at once."""
    from worker.amqp.dead_letters import drain_dead_letters

    settings = load_settings()
    report = _broker(
        drain_dead_letters(settings.amqp_url.get_secret_value(), settings.topology(), count=count, replay=replay)
    )
    for item in report.items:
        if as_json:
            typer.echo(json.dumps(item, ensure_ascii=False))
        else:
            console.print(f"{item['messageId']}  {item['reason']}: {item['detail']}", markup=False)
    if as_json:
        return
    if replay:
        console.print(
            f"{report.replayed} dead letters replayed, {report.skipped} skipped "
            "(dead-lettered again after this run replayed them; still on the queue)"
        )
    else:
        console.print(f"{len(report.items)} dead letters looked at (left on the queue)")


@app.command()
def bench(
    quick: Annotated[bool, typer.Option("--quick", help="small counts; finishes within about a minute")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object with every figure")] = False,
    out: Annotated[Path | None, typer.Option(help="also write results, a report and plots into this folder")] = None,
    messages: Annotated[int | None, typer.Option(help="messages per throughput case")] = None,
    rounds: Annotated[int | None, typer.Option(min=1, help="bare/worker rounds (3; --quick: 1)")] = None,
    processes: Annotated[
        int | None, typer.Option(min=1, help="consumer processes per side (default: one per core)")
    ] = None,
    store: Annotated[
        str, typer.Option(help="the worker's store: sqlite, or mongodb (then the throughput cases only)")
    ] = "sqlite",
    mongodb_url: Annotated[
        str | None, typer.Option(help="MongoDB server for --store mongodb (default: MONGODB_URL)")
    ] = None,
) -> None:
    """Benchmark the worker against a bare aio-pika loop on the real broker, side by side."""
    try:
        from benchmarks.broker import run as run_bench
        from benchmarks.cases import BenchConfig
        from benchmarks.report import print_table, write_report
    except ModuleNotFoundError as exc:
        if exc.name is None or not exc.name.startswith("benchmarks"):
            raise
        fail("`sessions bench` runs in a source checkout (benchmarks/ is not installed): `make bench` there", code=2)

    settings = load_settings()
    url = settings.amqp_url.get_secret_value()
    config = BenchConfig.quick(url) if quick else BenchConfig(url)
    if messages is not None:
        config.messages = messages
    if rounds is not None:
        config.rounds = rounds
    if processes is not None:
        config.processes = processes
    if store not in ("sqlite", "mongodb"):
        fail(f"--store is sqlite or mongodb, not {store!r}", code=2)
    if store == "mongodb":
        config.store = store
        from_settings = settings.mongodb_url.get_secret_value() if settings.mongodb_url is not None else None
        config.mongodb_url = mongodb_url or from_settings
        if not config.mongodb_url:
            fail("--store mongodb needs --mongodb-url or MONGODB_URL", code=2)
    results = _broker(run_bench(config, progress=lambda step: errors.print(f"[dim]… {step}[/]")))
    command = "sessions bench" + (" --quick" if quick else "") + (f" --messages {messages}" if messages else "")
    command += f" --rounds {rounds}" if rounds is not None else ""
    command += f" --processes {processes}" if processes is not None else ""
    command += " --store mongodb" if store == "mongodb" else ""
    command += f" --out {out}" if out is not None else ""
    if out is not None:
        write_report(results, out, command)
    if as_json:
        typer.echo(json.dumps(results))
    else:
        print_table(results)


def _broker(coro: Coroutine[Any, Any, T]) -> T:
    """Run a one-shot broker command; a broker it cannot reach or use is one line and exit status 2."""
    import logging

    from worker.amqp.failures import CLIENT_LOGGERS, NO_SUCH_ENTITY, UNREACHABLE
    from worker.amqp.topology import MissingPlugin, TopologyMismatch

    # The failure is reported below in one line; the client libraries' own error logs would repeat it.
    for name in (*CLIENT_LOGGERS, "asyncio"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        return asyncio.run(coro)
    except (MissingPlugin, TopologyMismatch) as exc:
        _unusable(exc)
    except UNREACHABLE as exc:
        fail(f"cannot reach RabbitMQ: {exc}. Is it running? (make broker, or set AMQP_URL)", code=2)
    except NO_SUCH_ENTITY as exc:
        fail(f"the broker has no such exchange or queue ({exc}): declare the topology with `sessions topology`", code=2)
