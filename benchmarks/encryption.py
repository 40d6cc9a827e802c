"""add_message throughput with and without encryption, side by side in one run (SQLite).

python -m benchmarks.encryption [--json]
"""

from __future__ import annotations

import asyncio
import base64
import time
from pathlib import Path

from benchmarks.timing import command_line
from worker import create_session_manager
from worker.sessions.manager import SessionManager

KEY = base64.b64encode(b"k" * 32).decode()
ROUNDS, PER_ROUND, SESSIONS = 6, 400, 50


async def _round(manager: SessionManager, sessions: list[str]) -> float:
    started = time.perf_counter()
    await asyncio.gather(
        *(
            manager.add_message(sessions[n % len(sessions)], "user", f"message {n} " + "x" * 180)
            for n in range(PER_ROUND)
        )
    )
    return PER_ROUND / (time.perf_counter() - started)


async def run(tmp: Path) -> dict[str, float]:
    plain = create_session_manager(db_path=str(tmp / "plain.db"))
    sealed = create_session_manager(db_path=str(tmp / "sealed.db"), encrypt_transcripts=True, encryption_key=KEY)
    rates: dict[str, list[float]] = {"plain": [], "encrypted": []}
    async with plain, sealed:
        ids = {
            name: [(await m.get_or_create_session(user_id=f"u{n}", channel_id="bench")).id for n in range(SESSIONS)]
            for name, m in (("plain", plain), ("encrypted", sealed))
        }
        for _ in range(ROUNDS):  # alternate, so machine noise hits both alike
            rates["plain"].append(await _round(plain, ids["plain"]))
            rates["encrypted"].append(await _round(sealed, ids["encrypted"]))
    best = {name: sorted(values)[len(values) // 2] for name, values in rates.items()}
    return {
        "add_message_per_s_plain": best["plain"],
        "add_message_per_s_encrypted": best["encrypted"],
        "encrypted_over_plain": best["encrypted"] / best["plain"],
    }


def main() -> None:
    command_line(__doc__, lambda tmp, _: run(tmp))


if __name__ == "__main__":
    main()
