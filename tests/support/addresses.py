from __future__ import annotations

from typing import TypedDict


class Addr(TypedDict, total=False):
    user_id: str
    channel_id: str
    peer_id: str


ADDR: Addr = {"user_id": "user-123", "channel_id": "telegram", "peer_id": "peer-789"}
