"""The redaction engine: every secret of the corpus is replaced by its kind, no look-alike is touched."""

from __future__ import annotations

import pytest

from tests.support.secret_corpus import LOOK_ALIKES, SECRETS
from worker.engine.redaction import BUILT_IN, Findings, Redactor, custom_detector, iban_valid, jwt_header, luhn_valid

REDACTOR = Redactor()


def test_every_secret_of_the_corpus_is_redacted_by_its_kind() -> None:
    detected, missed = [], []
    for kind, secret, template in SECRETS:
        findings = Findings()
        redacted = REDACTOR.text(template.format(secret), findings)
        if secret not in redacted and f"[redacted:{kind}]" in redacted and findings.kinds == [kind]:
            detected.append(kind)
        else:
            missed.append((kind, redacted))
    kinds = {kind for kind, _, _ in SECRETS}
    summary = f"{len(detected)} of {len(SECRETS)} secrets detected ({len(kinds)} kinds), {len(missed)} missed"
    print(f"\nredaction corpus: {summary}")
    assert not missed
    assert kinds == {detector.kind for detector in BUILT_IN}  # every built-in detector is exercised


def test_no_look_alike_is_touched() -> None:
    touched = [(text, REDACTOR.text(text, Findings())) for text in LOOK_ALIKES]
    false_positives = [(text, after) for text, after in touched if after != text]
    rate = len(false_positives) / len(LOOK_ALIKES)
    summary = f"{len(false_positives)} of {len(LOOK_ALIKES)} changed (false-positive rate {rate:.1%})"
    print(f"\nredaction look-alikes: {summary}")
    assert false_positives == []


def test_a_private_key_block_goes_whole_even_without_its_end_line() -> None:
    _, block, _ = next(entry for entry in SECRETS if entry[0] == "private-key")
    truncated = "\n".join(block.splitlines()[:4])
    redacted = REDACTOR.text(f"key:\n{truncated}", Findings())
    assert redacted == "key:\n[redacted:private-key]"
    assert not any(line in redacted for line in block.splitlines()[1:4])


def test_only_the_token_of_a_bearer_header_is_replaced() -> None:
    text = "Authorization: Bearer 8f14e45fceea167a5a36dedd4bea2543"
    assert REDACTOR.text(text, Findings()) == "Authorization: Bearer [redacted:bearer]"


def test_several_secrets_in_one_text_are_each_counted() -> None:
    findings = Findings()
    text = "card 4111111111111111, again 4111 1111 1111 1111, key AKIAIOSFODNN7EXAMPLE"
    assert REDACTOR.text(text, findings) == "card [redacted:card], again [redacted:card], key [redacted:aws-access-key]"
    assert sorted(findings.kinds) == ["aws-access-key", "card", "card"]


def test_an_ordinary_text_is_returned_as_it_is() -> None:
    text = "Could you check how my portfolio did this week and whether the rebalancing went through?"
    findings = Findings()
    assert REDACTOR.text(text, findings) is text and not findings


def test_tool_arguments_and_results_are_redacted_throughout() -> None:
    findings = Findings()
    args = {"headers": {"Authorization": "Bearer ghp_" + "a1B2" * 9}, "cards": ["4111111111111111", 7], "n": None}
    assert REDACTOR.value(args, findings) == {
        "headers": {"Authorization": "Bearer [redacted:github]"},
        "cards": ["[redacted:card]", 7],
        "n": None,
    }
    assert sorted(findings.kinds) == ["card", "github"]


def test_a_configured_pattern_runs_after_the_built_ins() -> None:
    redactor = Redactor((*BUILT_IN, custom_detector("employee-id", r"\bEMP-\d{6}\b")))
    findings = Findings()
    assert redactor.text("EMP-123456 paid with 4111111111111111", findings) == (
        "[redacted:employee-id] paid with [redacted:card]"
    )
    assert findings.kinds == ["card", "employee-id"]


@pytest.mark.parametrize(
    ("number", "valid"),
    [("4111111111111111", True), ("4111111111111112", False), ("79927398713", True), ("0", True)],
)
def test_luhn(number: str, valid: bool) -> None:
    assert luhn_valid(number) is valid


def test_iban_check_digits_and_lengths() -> None:
    assert iban_valid("DE89 3704 0044 0532 0130 00")
    assert not iban_valid("DE88 3704 0044 0532 0130 00")  # check digits
    assert not iban_valid("DE89 3704 0044 0532 0130 0")  # Germany's length is 22
    assert not iban_valid("ZZ89 3704 0044 0532 0130 00")  # no such country


def test_a_jwt_needs_a_json_header_with_its_algorithm() -> None:
    assert jwt_header("eyJhbGciOiJub25lIn0.e30.")
    assert not jwt_header("eyJzdWIiOiIxIn0.e30.")  # {"sub": "1"}: no alg
    assert not jwt_header("eyJ!!!.e30.")
