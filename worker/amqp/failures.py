"""The broker failures a one-shot command reports in one line instead of a traceback."""

from __future__ import annotations

from aio_pika.exceptions import AMQPConnectionError, ChannelNotFoundEntity

UNREACHABLE: tuple[type[Exception], ...] = (OSError, AMQPConnectionError)
NO_SUCH_ENTITY = ChannelNotFoundEntity  # the exchange or queue is not declared
CLIENT_LOGGERS = ("aiormq", "aio_pika")
