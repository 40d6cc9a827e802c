"""What an event means, as a digest: the same meaning gives the same fingerprint, and an event that
held a secret is stored with a blurred one (16 bits), which still tells other events apart."""

from __future__ import annotations

from schemas.events import InboundMessage
from worker.engine.idempotency import blurred, fingerprint, same_meaning


def _message(text: str, **source: str) -> InboundMessage:
    body = {"type": "message.inbound", "eventId": "e-1", "source": {"channel": "telegram", "peerId": "1", **source}}
    return InboundMessage.model_validate({**body, "text": text})


def test_the_meaning_not_the_form_makes_the_fingerprint() -> None:
    assert fingerprint(_message("hi")) == fingerprint(_message("hi", peerId=" 1 "))
    assert fingerprint(_message("hi")) != fingerprint(_message("hi!"))
    assert fingerprint(_message("hi")) != fingerprint(_message("hi", threadId="7"))


def test_a_blurred_fingerprint_keeps_16_bits_and_still_tells_events_apart() -> None:
    whole, other = "0123456789abcdef0123456789abcdef", "f123456789abcdef0123456789abcdef"
    assert blurred(whole) == "b:0123" == blurred(blurred(whole))
    assert same_meaning(blurred(whole), whole) and same_meaning(whole, blurred(whole))
    assert not same_meaning(blurred(whole), other) and not same_meaning(whole, other)
    assert same_meaning(None, whole) and same_meaning(whole, "")  # records older than fingerprints
