#!/usr/bin/env python3
"""Write ops/rabbitmq/definitions.json with real passwords, for a broker that is not a laptop.

The committed file holds the users, vhost permissions and topic permissions of every role, with
the *development* passwords docker compose uses ("dev-<role>"). For any other broker, give each
role its password in the environment and load the output instead:

    SESSIONS_BROKER_PASSWORD_ADMIN=... SESSIONS_BROKER_PASSWORD_WORKER=... (every role) \\
        python3 ops/scripts/broker-definitions.py > definitions.json

A role without a password is an error (nothing falls back to the development ones). Passwords
are stored as RabbitMQ's salted SHA-256 hashes (rabbit_password_hashing_sha256). Standard library
only, so it runs anywhere Python does.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import sys
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parents[1] / "rabbitmq" / "definitions.json"
PREFIX = "sessions-"  # the roles' user names: sessions-admin, sessions-worker, ...


def password_hash(password: str) -> str:
    """RabbitMQ's format: base64(salt + sha256(salt + password)), with a 4-byte random salt."""
    salt = secrets.token_bytes(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def render(template: dict[str, object], passwords: dict[str, str]) -> dict[str, object]:
    """The template with every user's password hash replaced by one of its role's password."""
    users = template["users"]
    assert isinstance(users, list)
    missing = [user["name"] for user in users if _role(user["name"]) not in passwords]
    if missing:
        variables = ", ".join(f"SESSIONS_BROKER_PASSWORD_{_role(name).upper()}" for name in missing)
        raise SystemExit(f"no password for {', '.join(missing)}: set {variables}")
    for user in users:
        user["password_hash"] = password_hash(passwords[_role(user["name"])])
        user["hashing_algorithm"] = "rabbit_password_hashing_sha256"
    return template


def _role(user: str) -> str:
    return user.removeprefix(PREFIX)


def main() -> None:
    template = json.loads(TEMPLATE.read_text())
    passwords = {
        name.removeprefix("SESSIONS_BROKER_PASSWORD_").lower(): value
        for name, value in os.environ.items()
        if name.startswith("SESSIONS_BROKER_PASSWORD_") and value
    }
    json.dump(render(template, passwords), sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
