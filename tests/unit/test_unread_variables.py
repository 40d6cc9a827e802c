"""A SESSIONS_* variable no setting reads is named at start-up: a typo, a renamed or a removed setting."""

from __future__ import annotations

from worker.config import unread_variables


def test_every_setting_and_alias_is_read() -> None:
    environ = {
        "SESSIONS_STORAGE": "sqlite",
        "sessions_db_path": "x.db",  # settings are read case-insensitively
        "AMQP_URL": "amqp://x",
        "MONGODB_URL": "mongodb://x",
        "SESSIONS_ADVANCED__ACK_DELAY_MS": "10",
        "SESSIONS_SESSION_CACHE_SIZE": "100",
        "PATH": "/bin",
    }
    assert unread_variables(environ) == []


def test_renamed_removed_and_mistyped_settings_are_named() -> None:
    environ = {"SESSIONS_ACK_DELAY_MS": "10", "SESSIONS_COMMIT_WINDOW_MS": "2", "SESSIONS_DB_PTAH": "x.db"}
    assert unread_variables(environ) == [
        "SESSIONS_ACK_DELAY_MS is now SESSIONS_ADVANCED__ACK_DELAY_MS",
        "SESSIONS_COMMIT_WINDOW_MS is no longer a setting",
        "SESSIONS_DB_PTAH is not a setting (see docs/reference/settings.md)",
    ]
