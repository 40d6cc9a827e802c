"""Encryption at rest on every store: no plaintext stored, tamper and move detection, key rotation."""

from __future__ import annotations

import base64
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import MakeManager
from worker import SessionManager
from worker.errors import EncryptionError
from worker.sessions.rotation import rotate
from worker.stores.base import SessionStore, SessionUpdate
from worker.stores.mongo import MongoStore
from worker.stores.sqlite import SqliteStore

KEY_A = base64.b64encode(b"A" * 32).decode()
KEY_B = base64.b64encode(b"B" * 32).decode()
SECRET = "my bank PIN is 4921 and the vault code is azure-kestrel"


async def _raw_bytes(store: SessionStore) -> bytes:
    """Everything the backend holds, as bytes: the database files, or every MongoDB document."""
    store = getattr(store, "inner", store)  # under the manager's session cache
    if isinstance(store, SqliteStore):
        path = Path(store._db.path)
        return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    assert isinstance(store, MongoStore)
    chunks = []
    for collection in (store._sessions, store._entries, store._checkpoints, store._summaries):
        async for doc in collection.find({}):
            chunks.append(repr(doc).encode())
    return b"".join(chunks)


async def _encrypted_conversation(manager: SessionManager) -> str:
    session = await manager.get_or_create_session(user_id="u1", channel_id="telegram")
    await manager.add_message(session.id, "user", SECRET)
    await manager.add_message(session.id, "tool", tool="vault", args={"code": "azure-kestrel"})
    await manager.save_checkpoint(session.id, "azure-kestrel checkpoint", "PIN 4921 saved")
    return session.id


async def test_no_plaintext_at_rest_and_the_api_decrypts(make_manager: MakeManager) -> None:
    manager = make_manager(encrypt_transcripts=True, encryption_key=KEY_A)
    sid = await _encrypted_conversation(manager)
    raw = await _raw_bytes(manager.store)
    for needle in (b"4921", b"azure-kestrel", b"bank PIN"):
        assert needle not in raw
    history = await manager.get_history(sid)
    assert history[0].content == SECRET and history[1].args == {"code": "azure-kestrel"}
    [checkpoint] = await manager.list_checkpoints(sid)
    assert (checkpoint.name, checkpoint.description) == ("azure-kestrel checkpoint", "PIN 4921 saved")
    assert history[0].token_count > 0 and history[0].role == "user"  # metadata stays clear


async def test_tampering_or_moving_a_record_fails_loudly(make_manager: MakeManager) -> None:
    manager = make_manager(encrypt_transcripts=True, encryption_key=KEY_A)
    sid = await _encrypted_conversation(manager)
    other = (await manager.get_or_create_session(user_id="u2", channel_id="telegram")).id
    [stored] = await manager.store.read_entries(sid, 1, 1, 1)
    moved = dataclasses.replace(stored, session_id=other, seq=1, event_id="moved")
    await manager.store.append_entry(moved, SessionUpdate(seq=1, at=stored.timestamp))
    with pytest.raises(EncryptionError, match="moved from another session"):
        await manager.get_history(other)
    flipped = bytearray(stored.payload)
    flipped[-1] ^= 0x01
    assert await manager.store.reseal_entry(stored, bytes(flipped), stored.key_id or "")
    with pytest.raises(EncryptionError, match="tampered"):
        await manager.get_history(sid)


async def test_wrong_or_missing_key_is_an_error_never_an_empty_history(make_manager: MakeManager) -> None:
    sid = await _encrypted_conversation(make_manager(encrypt_transcripts=True, encryption_key=KEY_A))
    with pytest.raises(EncryptionError, match="not configured"):
        await make_manager(encrypt_transcripts=True, encryption_key=KEY_B).get_history(sid)
    with pytest.raises(EncryptionError, match="configure the encryption keys"):
        await make_manager().get_history(sid)
    with pytest.raises(EncryptionError, match="configure the encryption keys"):
        await make_manager().list_checkpoints(sid)


async def test_rotation_from_a_to_b_survives_interruption(make_manager: MakeManager) -> None:
    plain = make_manager()
    legacy = await plain.get_or_create_session(user_id="legacy", channel_id="slack")
    await plain.add_message(legacy.id, "user", "written before encryption was on")
    under_a = make_manager(encrypt_transcripts=True, encryption_keys=f"a:{KEY_A}")
    sid = await _encrypted_conversation(under_a)
    for n in range(30):
        await under_a.add_message(sid, "assistant", f"reply {n}")
    both = make_manager(encrypt_transcripts=True, encryption_keys=f"b:{KEY_B},a:{KEY_A}")
    await both.add_message(sid, "user", "sealed with b already")
    codec: Any = both.transcript.codec

    seen = 0

    def crash_midway(_: int) -> None:
        nonlocal seen
        seen += 1
        if seen == 10:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        await rotate(both.store, codec, batch=4, progress=crash_midway)
    report = await rotate(both.store, codec, batch=4)
    assert report.entries == 33 - 10 and report.checkpoints == 1  # ten were re-sealed before the crash
    assert await both.store.count_unsealed("b") == 0

    only_b = make_manager(encrypt_transcripts=True, encryption_keys=f"b:{KEY_B}")
    history = await only_b.get_history(sid, limit=100)
    assert history[0].content == SECRET and history[-1].content == "sealed with b already"
    assert [e.content for e in await only_b.get_history(legacy.id)] == ["written before encryption was on"]
    assert (await only_b.list_checkpoints(sid))[0].name == "azure-kestrel checkpoint"
    raw = await _raw_bytes(only_b.store)
    assert b"written before encryption" not in raw
