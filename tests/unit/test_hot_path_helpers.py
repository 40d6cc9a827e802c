"""Hot-path helpers keep their contracts: derived ids are uuid5, keyed locks exclude, GC tuning applies."""

from __future__ import annotations

import asyncio
import gc
import json
import uuid
from urllib.parse import quote

import tiktoken
from hypothesis import given, settings
from hypothesis import strategies as st

from worker.app.gc_tuning import tune_collector
from worker.engine.keyed_lock import KeyedLock
from worker.engine.outcome import derived_id
from worker.engine.payload import pack_payload, unpack_payload
from worker.engine.scope import key_part
from worker.engine.tokens import DEFAULT_ENCODING, TiktokenCounter

NAMESPACE = uuid.UUID("5b1f8a3e-9c52-4a57-8d8e-2f0c9e7d4a11")


@given(st.text(max_size=200), st.sampled_from(["turn", "reply", "reply:notice", "notice:session-reset"]))
def test_derived_ids_are_the_uuid5_of_event_and_purpose(event_id: str, purpose: str) -> None:
    assert derived_id(event_id, purpose) == uuid.uuid5(NAMESPACE, f"{event_id}/{purpose}").hex


async def test_keyed_lock_runs_one_holder_per_key_and_forgets_idle_keys() -> None:
    locks = KeyedLock()
    inside: dict[str, int] = {"a": 0, "b": 0}
    most: dict[str, int] = {"a": 0, "b": 0}

    async def hold(key: str) -> None:
        async with locks.hold(key):
            inside[key] += 1
            most[key] = max(most[key], inside[key])
            await asyncio.sleep(0.001)
            inside[key] -= 1

    await asyncio.gather(*(hold(key) for key in "abababab"))
    assert most == {"a": 1, "b": 1} and len(locks) == 0


async def test_a_cancelled_waiter_leaves_no_lock_behind() -> None:
    locks = KeyedLock()
    release = asyncio.Event()

    async def holder() -> None:
        async with locks.hold("k"):
            await release.wait()

    first = asyncio.create_task(holder())
    await asyncio.sleep(0)
    waiter = asyncio.create_task(holder())
    await asyncio.sleep(0)
    waiter.cancel()
    release.set()
    await asyncio.gather(first, waiter, return_exceptions=True)
    assert len(locks) == 0


def test_collector_tuning_sets_the_young_threshold_and_zero_leaves_defaults() -> None:
    before = gc.get_threshold()
    try:
        tune_collector(0)
        assert gc.get_threshold() == before
        tune_collector(12_345)
        assert gc.get_threshold() == (12_345, before[1], before[2]) and gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


_COUNTER = TiktokenCounter.load()


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300) | st.sampled_from(["<|endoftext|>", "a <|fim_prefix|> b", "<|endofprompt|>!"]))
def test_token_counts_treat_special_token_text_as_plain_text(text: str) -> None:
    # The counter uses encode_ordinary; it must count exactly what encode() counts when no text
    # is taken for a special token, and must never raise on special-token text in a message.
    encoding = tiktoken.get_encoding(DEFAULT_ENCODING)
    assert _COUNTER.count(text) == len(encoding.encode(text, disallowed_special=()))


def test_token_counts_come_from_the_offline_encoding() -> None:
    assert _COUNTER.name == DEFAULT_ENCODING
    assert _COUNTER.count("") == 0
    assert _COUNTER.count("hello world") == 2


@given(st.text(max_size=300))
def test_a_chat_message_payload_is_the_json_it_always_was(content: str) -> None:
    packed = pack_payload(content, None, None, None)
    assert packed == json.dumps({"c": content}, ensure_ascii=False).encode()
    assert unpack_payload(packed)["content"] == content


@given(st.text(max_size=40) | st.from_regex(r"[A-Za-z0-9_.~@+=:/ -]{0,30}", fullmatch=True))
def test_key_parts_escape_exactly_as_quote_does(value: str) -> None:
    assert key_part(value) == quote(value.strip(), safe="@.+-_=")
