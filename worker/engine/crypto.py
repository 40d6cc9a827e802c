"""Transcripts at rest: AES-256-GCM with per-session keys derived from a master key (HKDF-SHA256).

Each ciphertext's associated data names its session and position (entry sequence number, or the
field of a checkpoint or summary), so a record copied elsewhere fails to open. Every record
carries the id of the master key that sealed it, so several keys can be configured at once: the
primary seals, the others only open, and `sessions rotate-key` moves records to the primary.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections import OrderedDict

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from worker.engine.payload import TEXT_PREFIX, Sealed, SealedText, sealed_text_parts
from worker.errors import EncryptionError

_VERSION = b"\x01"
_NONCE = 12
_HKDF_SALT = b"chat-sessions/session-key/v1"
_PASSPHRASE_SALT = b"chat-sessions/master-key/v1"


def _decode_key(text: str) -> bytes:
    """32 raw bytes from base64 or hex; any other string is a passphrase stretched with scrypt."""
    text = text.strip()
    for decode in (base64.b64decode, bytes.fromhex, base64.urlsafe_b64decode):
        try:
            raw = decode(text)
        except (binascii.Error, ValueError):
            continue
        if len(raw) == 32:
            return raw
    if len(text) < 12:
        raise EncryptionError("an encryption key must be 32 bytes (base64 or hex) or a passphrase of 12+ characters")
    return Scrypt(salt=_PASSPHRASE_SALT, length=32, n=2**15, r=8, p=1).derive(text.encode())


def key_fingerprint(key: bytes) -> str:
    return "k" + hashlib.sha256(b"key-id|" + key).hexdigest()[:10]


class KeyRing:
    """Master keys by id; the first one given is the primary (the one that seals)."""

    def __init__(self, keys: dict[str, bytes], primary: str) -> None:
        if primary not in keys:
            raise EncryptionError("the primary key must be one of the configured keys")
        self._keys = dict(keys)
        self.primary = primary

    def __repr__(self) -> str:  # never show key material
        return f"KeyRing(primary={self.primary!r}, ids={sorted(self._keys)!r})"

    @property
    def ids(self) -> list[str]:
        return sorted(self._keys)

    @classmethod
    def parse(cls, spec: str) -> KeyRing:
        """'id:key,id:key' (first is primary), or one bare key whose id is its fingerprint."""
        keys: dict[str, bytes] = {}
        order: list[str] = []
        for item in (part.strip() for part in spec.replace("\n", ",").split(",")):
            if not item or item.startswith("#"):
                continue
            key_id, sep, material = item.partition(":")
            if not sep or not key_id.isidentifier():
                raw = _decode_key(item)
                key_id = key_fingerprint(raw)
            else:
                raw = _decode_key(material)
            if key_id in keys:
                raise EncryptionError(f"encryption key id {key_id!r} is configured twice")
            keys[key_id] = raw
            order.append(key_id)
        if not order:
            raise EncryptionError("no encryption key configured")
        return cls(keys, order[0])

    def key(self, key_id: str) -> bytes:
        try:
            return self._keys[key_id]
        except KeyError:
            raise EncryptionError(
                f"record sealed with key {key_id}, which is not configured (known: {', '.join(self.ids)})"
            ) from None


class EncryptingCodec:
    """A PayloadCodec that seals with the primary key and opens with any configured key."""

    def __init__(
        self, ring: KeyRing, *, seal_new: bool = True, allow_plaintext: bool = True, cache: int = 4096
    ) -> None:
        self.ring = ring
        self.seal_new = seal_new
        self._allow_plaintext = allow_plaintext
        self._cache: OrderedDict[tuple[str, str], AESGCM] = OrderedDict()
        self._cache_size = cache

    def _cipher(self, key_id: str, session_id: str) -> AESGCM:
        slot = (key_id, session_id)
        cipher = self._cache.get(slot)
        if cipher is None:
            session_key = HKDF(
                algorithm=hashes.SHA256(), length=32, salt=_HKDF_SALT, info=f"session:{session_id}".encode()
            ).derive(self.ring.key(key_id))
            cipher = self._cache[slot] = AESGCM(session_key)
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(slot)
        return cipher

    def _seal(self, session_id: str, aad: bytes, plain: bytes, key_id: str) -> bytes:
        nonce = os.urandom(_NONCE)
        return _VERSION + nonce + self._cipher(key_id, session_id).encrypt(nonce, plain, aad)

    def _open(self, session_id: str, aad: bytes, blob: bytes, key_id: str, where: str) -> bytes:
        if blob[:1] != _VERSION or len(blob) < 1 + _NONCE + 16:
            raise EncryptionError(f"cannot decrypt {where}: not a sealed record (corrupted)")
        try:
            return self._cipher(key_id, session_id).decrypt(blob[1 : 1 + _NONCE], blob[1 + _NONCE :], aad)
        except InvalidTag:
            raise EncryptionError(
                f"cannot decrypt {where}: wrong key, or the record was tampered with or moved from another "
                "session or position"
            ) from None

    # PayloadCodec ------------------------------------------------------------------------------
    def seal(self, session_id: str, seq: int, plain: bytes) -> Sealed:
        if not self.seal_new:
            return Sealed(plain, None)
        key_id = self.ring.primary
        return Sealed(self._seal(session_id, _entry_aad(session_id, seq), plain, key_id), key_id)

    def open(self, session_id: str, seq: int, sealed: Sealed) -> bytes:
        if sealed.key_id is None:
            if not self._allow_plaintext:
                raise EncryptionError(f"entry {session_id}#{seq} is stored in plaintext and plaintext is refused")
            return sealed.blob
        return self._open(
            session_id, _entry_aad(session_id, seq), sealed.blob, sealed.key_id, f"entry {session_id}#{seq}"
        )

    # Text fields (checkpoint names and descriptions, summaries) ---------------------------------
    def seal_text(self, session_id: str, purpose: str, text: str) -> str:
        if not self.seal_new:
            return text
        key_id = self.ring.primary
        blob = self._seal(session_id, _text_aad(session_id, purpose), text.encode(), key_id)
        return f"{TEXT_PREFIX}{key_id}:{base64.b64encode(blob).decode()}"

    def open_text(self, session_id: str, purpose: str, text: str) -> str:
        parts = sealed_text_parts(text)
        if parts is None:
            if not self._allow_plaintext:
                raise EncryptionError(f"{purpose} of session {session_id} is plaintext and plaintext is refused")
            return text
        key_id, blob = parts
        return self._open(
            session_id, _text_aad(session_id, purpose), blob, key_id, f"{purpose} of session {session_id}"
        ).decode()

    def seal_field(self, session_id: str, purpose: str, text: str) -> SealedText:
        if not self.seal_new:
            return SealedText(text, None)
        return SealedText(self.seal_text(session_id, purpose, text), self.ring.primary)

    def open_field(self, session_id: str, purpose: str, sealed: SealedText) -> str:
        where = f"{purpose} of session {session_id}"
        if sealed.key_id is None:
            if not self._allow_plaintext:
                raise EncryptionError(f"{where} is plaintext and plaintext is refused")
            return sealed.text
        parts = sealed_text_parts(sealed.text)
        if parts is None or parts[0] != sealed.key_id:
            raise EncryptionError(f"cannot decrypt {where}: not a sealed record (corrupted)")
        return self._open(session_id, _text_aad(session_id, purpose), parts[1], sealed.key_id, where).decode()


def sealed_text_key(text: str) -> str | None:
    """The key id of a sealed text in the untagged form, or None for plaintext."""
    parts = sealed_text_parts(text)
    return None if parts is None else parts[0]


def _entry_aad(session_id: str, seq: int) -> bytes:
    return f"entry|{session_id}|{seq}".encode()


def _text_aad(session_id: str, purpose: str) -> bytes:
    return f"text|{session_id}|{purpose}".encode()
