"""The codec decides from stored metadata, never from content: any checkpoint name, description or
summary is storable and readable with encryption on or off, ciphertext look-alikes included; and
records written before the metadata existed still open."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from schemas import Checkpoint, Summary
from tests.conftest import MakeManager
from worker import SessionManager
from worker.engine.crypto import EncryptingCodec, KeyRing
from worker.engine.payload import PlainCodec, looks_sealed
from worker.engine.sealing import open_checkpoint, open_summary, seal_summary
from worker.stores.base import SessionStore
from worker.stores.mongo import MongoStore
from worker.stores.mongo_docs import to_doc
from worker.stores.sqlite import SqliteStore
from worker.stores.sqlite_rows import to_ms

KEY = base64.b64encode(b"K" * 32).decode()


def _ciphertext_lookalikes() -> list[str]:
    """Texts a plaintext codec once took for ciphertext, and one that is real ciphertext."""
    real = EncryptingCodec(KeyRing.parse(f"other:{KEY}")).seal_text("elsewhere", "summary:x", "not for you")
    return ["enc1:", "enc1:hello", "enc1:k0123456789:AAAA", "enc1:primary:" + "A" * 40, real]


@pytest.mark.parametrize("encrypted", [False, True])
async def test_any_text_is_stored_and_read_back_as_given(make_manager: MakeManager, encrypted: bool) -> None:
    options = {"encrypt_transcripts": True, "encryption_key": KEY} if encrypted else {}
    manager = make_manager(**options)
    session = await manager.get_or_create_session(user_id="u", channel_id="telegram")
    texts = _ciphertext_lookalikes()
    for text in texts:
        await manager.save_checkpoint(session.id, text[:200], text)
    listed = await manager.list_checkpoints(session.id)
    assert sorted((c.name, c.description) for c in listed) == sorted((t[:200], t) for t in texts)
    for index, text in enumerate(texts):
        await _store_summary(manager, session.id, f"s{index}", text)
    stored = await manager.store.list_summaries(session.id)
    assert sorted(open_summary(manager.transcript.codec, s).content for s in stored) == sorted(texts)


async def _store_summary(manager: SessionManager, session_id: str, summary_id: str, content: str) -> None:
    summary = Summary(
        id=summary_id, session_id=session_id, from_seq=1, to_seq=1, content=content, created_at=datetime.now(UTC)
    )
    await manager.store.insert_summary(seal_summary(manager.transcript.codec, summary))


async def test_a_sealed_record_says_so_and_needs_its_key(make_manager: MakeManager) -> None:
    manager = make_manager(encrypt_transcripts=True, encryption_key=KEY)
    session = await manager.get_or_create_session(user_id="u", channel_id="telegram")
    saved = await manager.save_checkpoint(session.id, "plain words")
    stored = await manager.store.get_checkpoint(saved.id)
    assert stored is not None and stored.sealed_with is not None and stored.name != "plain words"
    with pytest.raises(Exception, match="encrypted"):
        open_checkpoint(PlainCodec(), stored)


async def test_records_written_before_the_metadata_still_open(store: SessionStore) -> None:
    """An old record has no `sealed_with`: its own form tells, strictly (a whole sealed text)."""
    codec = EncryptingCodec(KeyRing.parse(f"main:{KEY}"))
    at = datetime(2026, 1, 1, tzinfo=UTC)
    sealed_name = codec.seal_text("s1", "checkpoint:old1:name", "the old name")
    for checkpoint_id, name in (("old1", sealed_name), ("old2", "enc1:just a name")):
        await _insert_old_checkpoint(
            store, Checkpoint(id=checkpoint_id, session_id="s1", name=name, message_count=0, created_at=at)
        )
    loaded = {c.id: c for c in await store.list_checkpoints(["s1"])}
    assert "sealed_with" not in loaded["old1"].model_fields_set
    assert open_checkpoint(codec, loaded["old1"]).name == "the old name"
    assert open_checkpoint(PlainCodec(), loaded["old2"]).name == "enc1:just a name"
    assert open_checkpoint(codec, loaded["old2"]).name == "enc1:just a name"


async def _insert_old_checkpoint(store: SessionStore, checkpoint: Checkpoint) -> None:
    """Store a checkpoint as a version without `sealed_with` did: the document lacks the field."""
    if isinstance(store, SqliteStore):
        doc = checkpoint.model_dump_json(exclude={"sealed_with"})
        row = (checkpoint.id, checkpoint.session_id, doc, to_ms(checkpoint.created_at))
        await store._db.write(lambda conn: conn.execute("INSERT INTO checkpoints VALUES (?, ?, ?, ?)", row))
    else:
        assert isinstance(store, MongoStore)
        fields = to_doc(checkpoint)
        del fields["sealed_with"]
        await store._checkpoints.insert_one(fields)


def test_only_a_whole_sealed_text_looks_sealed() -> None:
    assert not any(looks_sealed(text) for text in _ciphertext_lookalikes()[:-1])
    assert looks_sealed(_ciphertext_lookalikes()[-1])
