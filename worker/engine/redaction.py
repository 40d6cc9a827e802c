"""Finding secrets in text and replacing each with `[redacted:<kind>]`. Pure: no I/O, no settings.

One registry of detectors, each a kind, a regex and an optional validator (Luhn for card numbers,
mod-97 for IBANs, a JSON header for JWTs, mixed characters for keys whose prefix alone could be
prose). Every detector also names a cheap trigger; the triggers are joined into one pre-filter, so
an ordinary message costs one failed regex search and only the detectors whose trigger fired run.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

MARKER = "[redacted:"
Validator = Callable[[str], bool]
Locator = Callable[[str], list[tuple[int, int]]]


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum of a digit string (card numbers carry one in their last digit)."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


_CARD_GROUPS = re.compile(r"[ -]")
# Issuer ranges start with 2 to 6 (Mastercard 2-series and 5, Amex 3, Visa 4, Discover 6).
_ISSUER_DIGITS = "23456"


def card_grouping(groups: list[int]) -> bool:
    """Cards are printed whole, in fours (the last group shorter), or 4-6-5 / 4-6-4 (Amex, Diners);
    order numbers, ISBNs and phone numbers are grouped otherwise."""
    if len(groups) == 1 or groups in ([4, 6, 5], [4, 6, 4]):
        return True
    return all(size == 4 for size in groups[:-1]) and 1 <= groups[-1] <= 4


def card_number(text: str) -> bool:
    groups = _CARD_GROUPS.split(text)
    digits = "".join(groups)
    return (
        14 <= len(digits) <= 19
        and digits[0] in _ISSUER_DIGITS
        and card_grouping([len(g) for g in groups])
        and luhn_valid(digits)
    )


_DIGIT_GROUP = re.compile(r"\d+")


def card_spans(run: str) -> list[tuple[int, int]]:
    """The card numbers in a run of digit groups: "EMP-123456 4111 1111 1111 1111 123" holds one.
    From each group on, the longest window of whole groups that is a card (at most 19 digits)."""
    groups = [group.span() for group in _DIGIT_GROUP.finditer(run)]
    found: list[tuple[int, int]] = []
    first = 0
    while first < len(groups):
        end = _card_window(run, groups, first) if run[groups[first][0]] in _ISSUER_DIGITS else None
        if end is None:
            first += 1
            continue
        found.append((groups[first][0], groups[end][1]))
        first = end + 1
    return found


def _card_window(run: str, groups: list[tuple[int, int]], first: int) -> int | None:
    sizes: list[int] = []
    best = None
    for last in range(first, len(groups)):
        sizes.append(groups[last][1] - groups[last][0])
        total = sum(sizes)
        if total > 19:
            break
        window = groups[first : last + 1]
        if total >= 14 and card_grouping(sizes) and luhn_valid("".join(run[start:end] for start, end in window)):
            best = last
    return best


def iban_valid(text: str) -> bool:
    """ISO 13616: move the first four characters to the end, letters to 10..35, mod 97 is 1."""
    compact = text.replace(" ", "")
    if _IBAN_LENGTHS.get(compact[:2]) != len(compact):
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def jwt_header(text: str) -> bool:
    """A JWT's first part decodes (base64url) to a JSON object naming its algorithm."""
    header = text.split(".", 1)[0]
    try:
        decoded = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except (binascii.Error, ValueError):
        return False
    return isinstance(decoded, dict) and "alg" in decoded


def mixed(text: str) -> bool:
    """Generated keys mix digits and letters; words joined by dashes ("sk-learn-estimators") do not."""
    return any(c.isdigit() for c in text) and any(c.isalpha() for c in text)


def mixed_case_and_digits(text: str) -> bool:
    return mixed(text) and any(c.isupper() for c in text) and any(c.islower() for c in text)


def token_like(text: str) -> bool:
    """Opaque tokens: mixed case with digits, hex, or at least a fifth digits; not a hyphenated phrase."""
    digits = sum(c.isdigit() for c in text)
    if digits < 2:
        return False
    return mixed_case_and_digits(text) or _HEX.fullmatch(text) is not None or digits * 5 >= len(text)


_HEX = re.compile(r"[0-9a-f._-]+")


# Lengths of the IBAN registry (SWIFT): the country code decides the length, checked exactly.
_IBAN_LENGTHS = {
    **dict.fromkeys(("NO",), 15),
    **dict.fromkeys(("BE",), 16),
    **dict.fromkeys(("DK", "FI", "FO", "GL", "NL"), 18),
    **dict.fromkeys(("MK", "SI"), 19),
    **dict.fromkeys(("AT", "BA", "EE", "KZ", "LT", "LU", "XK"), 20),
    **dict.fromkeys(("CH", "HR", "LI", "LV"), 21),
    **dict.fromkeys(("BG", "BH", "CR", "DE", "GB", "GE", "IE", "ME", "RS", "VA"), 22),
    **dict.fromkeys(("AE", "GI", "IL", "IQ", "TL"), 23),
    **dict.fromkeys(("AD", "CZ", "ES", "MD", "PK", "RO", "SA", "SE", "SK", "TN", "VG"), 24),
    **dict.fromkeys(("PT", "ST"), 25),
    **dict.fromkeys(("IS", "TR"), 26),
    **dict.fromkeys(("FR", "GR", "IT", "MC", "MR", "SM"), 27),
    **dict.fromkeys(("AL", "AZ", "BY", "CY", "DO", "GT", "HU", "LB", "PL", "SV"), 28),
    **dict.fromkeys(("BR", "EG", "PS", "QA", "UA"), 29),
    **dict.fromkeys(("JO", "KW", "MU"), 30),
    **dict.fromkeys(("MT", "SC"), 31),
    **dict.fromkeys(("LC",), 32),
}


def iban_spans(candidate: str) -> list[tuple[int, int]]:
    """The IBAN a candidate starts with: exactly its country's length of characters (spaces
    between groups aside), ending where the candidate does or at a space, with valid check digits."""
    length = _IBAN_LENGTHS.get(candidate[:2])
    if length is None:
        return []
    counted = end = 0
    while end < len(candidate) and counted < length:
        counted += candidate[end] != " "
        end += 1
    if counted < length or (end < len(candidate) and candidate[end] != " "):
        return []
    return [(0, end)] if iban_valid(candidate[:end]) else []


@dataclass(frozen=True, slots=True)
class Detector:
    """One kind of secret. It is looked for only in texts holding one of its `hints` (substrings
    every match contains) or at least `min_digits` digits; with neither, in every text. `group` is
    the part of a match that is checked and replaced (0: all of it); `locate`, when given, finds the
    secrets within that part instead (a run of digits may hold a card number among other numbers)."""

    kind: str
    pattern: re.Pattern[str]
    hints: tuple[str, ...] = ()
    min_digits: int = 0
    validator: Validator | None = None
    group: int = 0
    locate: Locator | None = None


def _detector(
    kind: str,
    pattern: str,
    hints: tuple[str, ...] = (),
    *,
    min_digits: int = 0,
    validator: Validator | None = None,
    group: int = 0,
    locate: Locator | None = None,
) -> Detector:
    return Detector(kind, re.compile(pattern), hints, min_digits, validator, group, locate)


# Applied in this order: a whole PEM block first, then prefixed keys (Anthropic's before OpenAI's,
# which shares `sk-`), then JWTs before bearer tokens (a JWT is often one), then numbers.
BUILT_IN: tuple[Detector, ...] = (
    _detector(
        "private-key",
        r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY-----(?:[\s\S]*?-----END[A-Z0-9 ]*PRIVATE KEY-----|[A-Za-z0-9+/=\s:,-]*)",
        ("-----BEGIN",),
    ),
    _detector("anthropic", r"\bsk-ant-[A-Za-z0-9_-]{20,}", ("sk-ant-",), validator=mixed),
    _detector(
        "openai", r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}", ("sk-",), validator=mixed_case_and_digits
    ),
    _detector(
        "github",
        r"\b(?:gh[opsu]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})",
        ("ghp_", "gho_", "ghs_", "ghu_", "github_pat_"),
    ),
    _detector("slack", r"\bxox[abprs]-[A-Za-z0-9-]{10,}", ("xox",), validator=mixed),
    _detector("stripe", r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}", ("k_live_", "k_test_")),
    _detector("google", r"\bAIza[A-Za-z0-9_-]{35}", ("AIza",)),
    _detector("aws-access-key", r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b", ("AKIA", "ASIA")),
    _detector(
        "aws-secret-key",
        r"(?i:aws_?secret_?access_?key)[\"']?\s*[:=]\s*[\"']?([A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])",
        ("ecret", "ECRET"),
        group=1,
    ),
    _detector("jwt", r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*", ("eyJ",), validator=jwt_header),
    _detector(
        "bearer",
        r"(?i:\bbearer)\s+([A-Za-z0-9_.~+/-]{16,}=*)",
        ("earer", "EARER"),
        validator=token_like,
        group=1,
    ),
    _detector(
        "card",
        # A whole run of digit groups, 14 digits or more (13-digit Visa numbers are retired; a 13-digit
        # run is more often a phone number); not after "+" or before "@" (E.164 numbers, chat ids).
        r"(?<![A-Za-z0-9_+])\d(?:[ -]?\d){13,}+(?![A-Za-z_@])",
        min_digits=14,
        locate=card_spans,
    ),
    # Every registry IBAN holds at least ten digits (its check digits and a numeric bank account).
    _detector("iban", r"\b[A-Z]{2}\d\d(?: ?[A-Z0-9]){11,30}+", min_digits=10, locate=iban_spans),
)


def replacement(kind: str) -> str:
    return f"{MARKER}{kind}]"


@dataclass
class Findings:
    """The kinds replaced so far, one per replacement, in the order found (never the values)."""

    kinds: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.kinds)


class Redactor:
    """Replaces every detector's matches; built once per set of detectors and reused."""

    def __init__(self, detectors: Iterable[Detector] = BUILT_IN) -> None:
        self._detectors = tuple(detectors)
        # The pre-filter: every detector's hints in one tuple, and the fewest digits any needs.
        self._hints = tuple(hint for detector in self._detectors for hint in detector.hints)
        # "At least n digits" as one anchored pass in C (possessive: no backtracking).
        self._digit_gates = {d.min_digits: _digit_gate(d.min_digits) for d in self._detectors if d.min_digits}
        fewest = min(self._digit_gates, default=0)
        self._digit_gate = self._digit_gates.get(fewest)
        self._always = any(not (d.hints or d.min_digits) for d in self._detectors)

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(detector.kind for detector in self._detectors)

    def text(self, text: str, findings: Findings) -> str:
        """`text` with its secrets replaced, adding each replacement's kind to `findings`."""
        digits = self._digit_gate is not None and self._digit_gate.match(text) is not None
        if not (self._always or digits or any(map(text.__contains__, self._hints))):
            return text  # the usual case: substring tests and one pass over the digits, in C
        present = set(filter(text.__contains__, self._hints))
        enough = {count for count, gate in self._digit_gates.items() if digits and gate.match(text) is not None}
        for detector in self._detectors:
            if (
                (detector.min_digits in enough)
                or not present.isdisjoint(detector.hints)
                or not (detector.hints or detector.min_digits)
            ):
                text = self._apply(detector, text, findings)
        return text

    def value(self, value: Any, findings: Findings) -> Any:
        """A JSON value (tool args and results) with every string in it, keys too, redacted."""
        if isinstance(value, str):
            return self.text(value, findings)
        if isinstance(value, Mapping):
            return {self.text(str(key), findings): self.value(item, findings) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(item, findings) for item in value]
        return value

    @staticmethod
    def _apply(detector: Detector, text: str, findings: Findings) -> str:
        def replace(match: re.Match[str]) -> str:
            whole, secret = match.group(0), match.group(detector.group)
            if detector.locate is not None:
                spans = detector.locate(secret)
            elif secret and (detector.validator is None or detector.validator(secret)):
                spans = [(0, len(secret))]
            else:
                return whole
            offset = match.start(detector.group) - match.start()
            pieces, done = [], 0
            for start, end in spans:
                findings.kinds.append(detector.kind)
                pieces += [whole[done : offset + start], replacement(detector.kind)]
                done = offset + end
            return "".join(pieces) + whole[done:]

        return detector.pattern.sub(replace, text)


def _digit_gate(count: int) -> re.Pattern[str]:
    return re.compile(rf"(?:\D*+\d){{{count}}}")


def custom_detector(kind: str, pattern: str) -> Detector:
    """A configured pattern: no hints, so it runs on every text of its agent (after the built-ins)."""
    return Detector(kind, re.compile(pattern))
