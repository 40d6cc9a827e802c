"""The manager's options come from the service settings by name, not through a hand-kept map."""

from __future__ import annotations

from pydantic import SecretStr

from schemas import RetentionPolicy
from worker.config import Settings
from worker.sessions.options import ManagerOptions, options_from_settings

# Options only the library sets (its own shorthand, or a per-call choice the service makes otherwise).
LIBRARY_ONLY = {"daily_reset_hour", "idle_reset_minutes", "time_zone", "context", "encryption_key"}


def test_every_option_a_setting_names_is_taken_and_the_rest_are_library_only() -> None:
    options = options_from_settings(Settings())
    assert set(ManagerOptions.model_fields) - set(options) == LIBRARY_ONLY
    ManagerOptions(**options)  # and they validate


def test_the_settings_values_arrive_as_options() -> None:
    settings = Settings(
        storage="mongodb",
        mongodb_url=SecretStr("mongodb://db:27017"),
        mongodb_database="chats",
        db_path="/data/x.db",
        session_cache_size=2_000,
        encryption_keys=SecretStr("k1:" + "A" * 44),
        retention_max_age="10d",
        retention_keep_minimum=4,
        retention_mode="warn",
        admins="telegram:1, slack:U2",
        agent="support",
        redaction=False,
        reset_mode="idle",
        idle_minutes=15,
    )
    options = ManagerOptions(**options_from_settings(settings))
    assert (options.storage, options.mongodb_url, options.mongodb_database) == (
        "mongodb",
        "mongodb://db:27017",
        "chats",
    )
    assert (options.db_path, options.caches.sessions) == ("/data/x.db", 2_000)
    assert options.encryption_keys == "k1:" + "A" * 44  # secrets unwrapped
    assert options.retention == RetentionPolicy(max_age="10d", keep_minimum=4, mode="warn")
    assert options.admins == ("telegram:1", "slack:U2") and options.default_agent == "support"
    assert not options.redaction.enabled
    assert options.reset().mode == "idle" and options.reset().idle_minutes == 15
