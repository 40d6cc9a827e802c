from __future__ import annotations

import pytest

from tests.support.broker import BrokerHarness

pytestmark = pytest.mark.broker


async def test_message_gets_a_turn_and_the_answer_is_routed_back(harness: BrokerHarness) -> None:
    await harness.start_worker()
    assert harness.gateway is not None
    sent = await harness.gateway.send_message(
        channel="telegram", peer_id="42", user_id="42", text="hello", thread_id="t-1", message_id="m-1"
    )
    [turn] = await harness.turns.wait_for(sent.event_id)
    assert turn["text"] == "hello" and turn["delivery"]["threadId"] == "t-1"
