"""Logs carry ids, never secrets or message content."""

from __future__ import annotations

import json
import logging
from typing import Any, cast

import pytest

from tests.support.fakes import RecordingPublisher, delivery_of, handler_for
from worker import create_session_manager
from worker.app.logs import JsonFormatter, redact
from worker.engine.tokens import CharRatioCounter

SECRET_TEXT = "the launch code is tangerine-4471"


def test_urls_lose_their_passwords() -> None:
    assert redact("connecting to amqp://guest:hunter2@rabbit:5672/ and mongodb://app:s3cr3t@db/x") == (
        "connecting to amqp://guest:***@rabbit:5672/ and mongodb://app:***@db/x"
    )
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "url %s", ("amqp://u:pw@h/",), None)
    record.event_id = "e1"
    doc = json.loads(JsonFormatter().format(record))
    assert doc["msg"] == "url amqp://u:***@h/" and doc["event_id"] == "e1"


async def test_a_full_event_path_never_logs_content(tmp_path: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    manager = create_session_manager(
        db_path=str(tmp_path / "l.db"),
        token_counter=CharRatioCounter(),
        encrypt_transcripts=True,
        encryption_key="a passphrase that is long enough",
    )
    await manager.open()
    publisher = RecordingPublisher(fail_next=1)
    handler = handler_for(manager, publisher, max_payload_bytes=300)
    good = {
        "type": "message.inbound",
        "eventId": "e-log",
        "source": {"channel": "telegram", "peerId": "1"},
        "text": SECRET_TEXT,
    }
    bad = {**good, "eventId": "e-bad", "extra": SECRET_TEXT}
    huge = {**good, "eventId": "e-huge", "text": SECRET_TEXT * 20}
    for event in (good, bad, huge):
        await handler.handle(cast(Any, delivery_of(event)))
    await manager.close()
    logged = "\n".join(JsonFormatter().format(record) for record in caplog.records)
    assert "e-bad" in logged or "dead-letter" in logged  # something was logged about the bad ones
    assert "tangerine" not in logged and "launch code" not in logged
    assert "long enough" not in logged
