"""Transcript payloads: the parts of an entry that may be sealed (content, tool, args, result).

The store keeps them as one opaque blob with the id of the key that sealed it, so encryption
wraps this layer without the stores knowing.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any, Protocol

from worker.errors import EncryptionError


@dataclass(frozen=True, slots=True)
class Sealed:
    blob: bytes
    key_id: str | None


@dataclass(frozen=True, slots=True)
class SealedText:
    """A text field as stored, with the id of the key that sealed it (None: plaintext)."""

    text: str
    key_id: str | None


class PayloadCodec(Protocol):
    def seal(self, session_id: str, seq: int, plain: bytes) -> Sealed: ...

    def open(self, session_id: str, seq: int, sealed: Sealed) -> bytes: ...

    def seal_text(self, session_id: str, purpose: str, text: str) -> str: ...

    def open_text(self, session_id: str, purpose: str, text: str) -> str:
        """A text whose format says whether it is sealed (JSON records, records written before
        their key id was stored)."""
        ...

    def seal_field(self, session_id: str, purpose: str, text: str) -> SealedText: ...

    def open_field(self, session_id: str, purpose: str, sealed: SealedText) -> str:
        """Decided by the stored key id alone: any text opens as itself when it is None."""
        ...


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
        if looks_sealed(text):
            raise EncryptionError(f"{purpose} of session {session_id} is encrypted; configure the encryption keys")
        return text

    def seal_field(self, session_id: str, purpose: str, text: str) -> SealedText:
        return SealedText(text, None)

    def open_field(self, session_id: str, purpose: str, sealed: SealedText) -> str:
        if sealed.key_id is not None:
            raise EncryptionError(
                f"{purpose} of session {session_id} is encrypted (key {sealed.key_id}); configure the encryption keys"
            )
        return sealed.text


TEXT_PREFIX = "enc1:"
_SEALED_TEXT = re.compile(r"enc1:([^:\s]+):([A-Za-z0-9+/]+={0,2})")
_SHORTEST_SEAL = 1 + 12 + 16  # version byte, nonce, tag


def looks_sealed(text: str) -> bool:
    """Whether a text in the old, untagged form is a sealed one: the whole text must parse as
    `enc1:<key id>:<base64 of a version-1 blob>`, so that a plaintext that merely starts with
    "enc1:" (a checkpoint named so) is read as the plaintext it is."""
    return sealed_text_parts(text) is not None


def sealed_text_parts(text: str) -> tuple[str, bytes] | None:
    """(key id, blob) of a sealed text, None for anything else."""
    match = _SEALED_TEXT.fullmatch(text)
    if match is None:
        return None
    try:
        blob = base64.b64decode(match.group(2), validate=True)
    except binascii.Error:
        return None
    if len(blob) < _SHORTEST_SEAL or blob[:1] != b"\x01":
        return None
    return match.group(1), blob


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
