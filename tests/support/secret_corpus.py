"""A corpus for the redaction tests: secrets as people paste them (each with its kind), and
look-alikes that must be left alone. Keys are generated in each provider's alphabet and length from
a fixed seed (no real key is in this file); the documented test values (AWS's example key id,
jwt.io's token, the card networks' test numbers, the IBAN registry's examples) are used as they are."""

from __future__ import annotations

import base64
import json
import random
import string

_RANDOM = random.Random(31)
ALNUM = string.ascii_letters + string.digits
URLSAFE = ALNUM + "-_"


def _draw(alphabet: str, length: int) -> str:
    return "".join(_RANDOM.choice(alphabet) for _ in range(length))


def _b64url(value: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def _jwt(header: dict[str, object], claims: dict[str, object]) -> str:
    return f"{_b64url(header)}.{_b64url(claims)}.{_draw(URLSAFE, 43)}"


def _luhn_fail(prefix: str, length: int) -> str:
    """A number of `length` digits whose Luhn checksum is wrong."""
    from worker.engine.redaction import luhn_valid

    number = prefix + _draw(string.digits, length - len(prefix))
    while luhn_valid(number):
        number = number[:-1] + str((int(number[-1]) + 1) % 10)
    return " ".join(number[i : i + 4] for i in range(0, length, 4))


_PEM = "\n".join(
    ["-----BEGIN RSA PRIVATE KEY-----", *(_draw(ALNUM + "+/", 64) for _ in range(6)), "-----END RSA PRIVATE KEY-----"]
)
_PEM_PKCS8 = "\n".join(
    ["-----BEGIN PRIVATE KEY-----", *(_draw(ALNUM + "+/", 64) for _ in range(4)), "-----END PRIVATE KEY-----"]
)
_OPENSSH = "\n".join(
    [
        "-----BEGIN OPENSSH PRIVATE KEY-----",
        "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW",
        _draw(ALNUM + "+/", 70),
        "-----END OPENSSH PRIVATE KEY-----",
    ]
)
_JWT_IO = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)

# (kind, secret, the message it is pasted in: "{}" is where the secret goes)
SECRETS: tuple[tuple[str, str, str], ...] = (
    ("openai", "sk-proj-" + _draw(URLSAFE, 156), "here is my key {} can you check why it fails?"),
    ("openai", "sk-" + _draw(ALNUM, 20) + "T3BlbkFJ" + _draw(ALNUM, 20), "OPENAI_API_KEY={}"),
    ("openai", "sk-svcacct-" + _draw(URLSAFE, 74), "service account: {}"),
    ("anthropic", "sk-ant-api03-" + _draw(URLSAFE, 93) + "AA", 'client = Anthropic(api_key="{}")'),
    ("anthropic", "sk-ant-admin01-" + _draw(URLSAFE, 93) + "AA", "admin key {}."),
    ("github", "ghp_" + _draw(ALNUM, 36), "git clone https://{}@github.com/acme/app.git"),
    ("github", "gho_" + _draw(ALNUM, 36), "oauth token: {}"),
    ("github", "ghs_" + _draw(ALNUM, 36), "GITHUB_TOKEN={}"),
    ("github", "ghu_" + _draw(ALNUM, 36), "user-to-server {}"),
    ("github", "github_pat_11" + _draw(ALNUM, 20) + "_" + _draw(ALNUM, 59), "fine-grained: {}"),
    ("slack", "xoxb-" + _draw(string.digits, 12) + "-" + _draw(string.digits, 13) + "-" + _draw(ALNUM, 24), "{}"),
    ("slack", "xoxp-" + _draw(string.digits, 11) + "-" + _draw(string.digits, 12) + "-" + _draw(ALNUM, 32), "t={}"),
    ("stripe", "sk_live_" + _draw(ALNUM, 99), "stripe.api_key = '{}'"),
    ("stripe", "rk_live_" + _draw(ALNUM, 99), "restricted {}"),
    ("stripe", "sk_test_4eC39HqLyjWDarjtT1zdp7dc", "test mode key {}"),
    ("google", "AIza" + _draw(URLSAFE, 35), "maps key={}&libraries=places"),
    ("google", "AIzaSyD" + _draw(URLSAFE, 32), "firebase apiKey: '{}',"),
    ("aws-access-key", "AKIAIOSFODNN7EXAMPLE", "aws_access_key_id = {}"),
    ("aws-access-key", "ASIA" + _draw(string.ascii_uppercase + "234567", 16), "temporary creds {} expire soon"),
    ("aws-secret-key", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "aws_secret_access_key = {}"),
    ("aws-secret-key", _draw(ALNUM + "/+", 40), 'AWS_SECRET_ACCESS_KEY="{}"'),
    ("jwt", _JWT_IO, "the session cookie is {}"),
    ("jwt", _jwt({"alg": "RS256", "kid": "k1"}, {"sub": "u-42", "exp": 1893456000}), "id_token={}"),
    ("bearer", _draw(ALNUM, 40), "curl -H 'Authorization: Bearer {}' https://api.example.com"),
    ("bearer", "ya29.a0" + _draw(URLSAFE, 60), "use bearer {} for now"),
    ("bearer", _draw("0123456789abcdef", 32), "Authorization: Bearer {}"),
    ("private-key", _PEM, "my deploy key:\n{}\nthanks"),
    ("private-key", _PEM_PKCS8, "{}"),
    ("private-key", _OPENSSH, "~/.ssh/id_ed25519:\n{}"),
    ("card", "4111 1111 1111 1111", "my card is {} exp 12/29"),
    ("card", "5555-5555-5555-4444", "card: {}"),
    ("card", "378282246310005", "amex {} please"),
    ("card", "3782 822463 10005", "amex grouped {}"),
    ("card", "6011111111111117", "discover {}"),
    ("card", "2223003122003222", "mastercard 2-series {}"),
    ("card", "3530 1113 3330 0000", "jcb {}"),
    ("iban", "DE89 3704 0044 0532 0130 00", "pay to {} by Friday"),
    ("iban", "GB82 WEST 1234 5698 7654 32", "IBAN: {}"),
    ("iban", "FR1420041010050500013M02606", "virement sur {}"),
    ("iban", "NL91ABNA0417164300", "rekening {}"),
    ("iban", "CH9300762011623852957", "{}"),
    ("iban", "NO9386011117947", "konto {}"),
)

LOOK_ALIKES: tuple[str, ...] = (
    # order and reference numbers
    "Your order #112-4567890-1234567 has shipped.",
    "Amazon order 402-8812397-5531864 arrives Tuesday",
    "Invoice INV-2026-000481, PO 4500012345",
    "ticket JIRA-10423 and PR #4821",
    # UUIDs and hashes
    "request id 550e8400-e29b-41d4-a716-446655440000",
    "trace 123e4567-e89b-12d3-a456-426614174000 failed",
    "fixed in commit 9fceb02d0ae598e95dc970b74767f19372d61af8",
    "git show a94a8fe5ccb19ba61c4c0873d391e987982fbbd3 and e83c516",
    "sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    # timestamps and ids
    "deployed at 2026-03-03T10:00:00Z, rolled back 2026-03-03T10:04:59.123456+01:00",
    "epoch ms 1767225600000 and µs 1767225600000000",
    "discord user 175928847299117063, tweet 1460323737035677698",
    "telegram chat -1001234567890",
    "whatsapp 4915112345678@s.whatsapp.net, +4915112345678 and 4915112345678",
    # phone numbers
    "call me at +1 (415) 555-2671",
    "office +44 20 7946 0958, mobile +49 170 1234567",
    "+33 6 12 34 56 78 or 0049 30 123456789",
    "+86 138 0013 8000 / +61 2 9876 5432 / +91 98765 43210",
    # tracking numbers
    "UPS 1Z999AA10123456784",
    "USPS 9400 1000 0000 0000 0000 00",
    "USPS 92055000000000000000000",
    "FedEx 7489 2374 3983 and DHL JD014600006281230704",
    "Royal Mail AB123456789GB",
    # code without keys
    'api_key = os.environ["OPENAI_API_KEY"]',
    'headers = {"Authorization": f"Bearer {token}"}',
    "client = OpenAI(api_key='sk-...')  # put your key here",
    "Authorization: Bearer <token>",
    "export AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY}",
    "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----",
    "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----",
    "arn:aws:iam::123456789012:user/Bob",
    "for (let i = 0; i < 1000000000000; i++) { sum += i; }",
    "color: #1a2b3c; margin: 0 auto; z-index: 9999;",
    "SELECT * FROM orders WHERE id IN (4111, 1111, 1111, 1111);",
    # prose about keys and tokens
    "OpenAI keys start with sk- and Anthropic's with sk-ant-, keep them out of chats",
    "Bearer tokens go in the Authorization header; the bearer of this letter is a friend",
    "Bearer authentication is described in RFC 6750",
    "we use the sk-learn-compatible-estimator-interface here",
    "Slack bot tokens start with xoxb- and GitHub's with ghp_",
    'a JWT header starts with eyJ because it is base64 of {"',
    "AKIA is the prefix of long-term AWS keys, ASIA of temporary ones",
    "the Bearer token-based-authentication-2024-guide is good",
    "AIza keys are Google's",
    # numbers that are not cards or IBANs
    "ISBN 978-3-16-148410-0",
    "VIN 1HGCM82633A004352",
    "total $1,234,567.89 across 4111 accounts",
    "BIC DEUTDEFFXXX, sort code 20-00-00, account 55779911",
    "not an IBAN: DE00 3704 0044 0532 0130 00",
    "version v1.22.333 on 10.0.0.1, port 5672",
    "JWT-ish but no alg: eyJzdWIiOiIxMjM0NTY3ODkwIn0.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJl",
    *(f"reference {_luhn_fail(prefix, 16)}" for prefix in ("4", "5", "4", "5", "37", "6011", "4", "5", "2", "3")),
    *(f"account {_luhn_fail(prefix, 16).replace(' ', '')}" for prefix in ("4", "5", "6", "3", "2")),
)
