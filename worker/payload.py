"""Transcript payloads: the parts of an entry that may be sealed (content, tool, args, result).

The store keeps them as one opaque blob with the id of the key that sealed it, so encryption
wraps this layer without the stores knowing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

from worker.errors import EncryptionError


@dataclass(frozen=True, slots=True)
class Sealed:
    blob: bytes
    key_id: str | None


class PayloadCodec(Protocol):
    def seal(self, session_id: str, seq: int, plain: bytes) -> Sealed: ...

    def open(self, session_id: str, seq: int, sealed: Sealed) -> bytes: ...

    def seal_text(self, session_id: str, purpose: str, text: str) -> str: ...

    def open_text(self, session_id: str, purpose: str, text: str) -> str: ...


class PlainCodec:
    """No encryption: the blob is the JSON itself."""

    def seal(self, session_id: str, seq: int, plain: bytes) -> Sealed:
        return Sealed(plain, None)

    def open(self, session_id: str, seq: int, sealed: Sealed) -> bytes:
        if sealed.key_id is not None:
            raise EncryptionError(
                f"entry {session_id}#{seq} is encrypted (key {sealed.key_id}); configure the encryption keys to read it"
            )
        return sealed.blob

    def seal_text(self, session_id: str, purpose: str, text: str) -> str:
        return text

    def open_text(self, session_id: str, purpose: str, text: str) -> str:
        if text.startswith("enc1:"):
            raise EncryptionError(f"{purpose} of session {session_id} is encrypted; configure the encryption keys")
        return text


def pack_payload(content: str | None, tool: str | None, args: Any, result: Any) -> bytes:
    if tool is None and args is None and result is None and content is not None:
        # A chat message, the usual entry: the same JSON object, with json's own string encoder
        # (what dumps(..., ensure_ascii=False) uses), without building a dict for it.
        return b'{"c": ' + json.encoder.encode_basestring(content).encode() + b"}"
    body = {"c": content, "t": tool, "a": args, "r": result}
    return json.dumps({k: v for k, v in body.items() if v is not None}, ensure_ascii=False).encode()


def unpack_payload(plain: bytes) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(plain)
    return {"content": body.get("c"), "tool": body.get("t"), "args": body.get("a"), "result": body.get("r")}
