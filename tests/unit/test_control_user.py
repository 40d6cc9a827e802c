"""Which broker user a process is, and whose control events its workers accept."""

from __future__ import annotations

import pytest

from worker.config import Settings


@pytest.mark.parametrize(
    ("url", "user"),
    [
        ("amqp://sessions-worker:pw@rabbitmq:5672/", "sessions-worker"),
        ("amqp://w%40corp:pw@node1/,amqp://w%40corp:pw@node2/", "w@corp"),  # the first of a cluster's URLs
        ("amqp://rabbitmq:5672/", "guest"),  # aio-pika's default without a user
    ],
)
def test_the_broker_user_is_the_one_of_the_url(url: str, user: str) -> None:
    settings = Settings(AMQP_URL=url)
    assert settings.broker_user() == user
    assert settings.control_user() == user  # one machine: `sessions run` is its own scheduler


def test_the_scheduler_user_setting_wins() -> None:
    settings = Settings(AMQP_URL="amqp://sessions-worker:pw@rabbitmq/", scheduler_user="sessions-scheduler")
    assert (settings.broker_user(), settings.control_user()) == ("sessions-worker", "sessions-scheduler")
