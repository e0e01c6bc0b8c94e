"""Kombu's Redis transport, with one redis-py client per channel instead of one per command.

kombu (5.7) builds a new ``redis.Redis`` for every synchronous command on a
channel: ``Channel.conn_or_acquire`` calls ``_create_client`` each time (see
redis-py issue #3624). That cost 0.2 ms of the 2.4 ms of CPU a checkout takes
(cProfile, 400 × ``POST /orders``), and as much again for every task event a
worker publishes. A redis-py client is a thin, thread-safe handle on the
channel's connection pool, so one per channel serves every command on it.
The pool is still the channel's: when kombu drops it (after a fork, on close)
the client goes with it.

It is installed under kombu's own names for ``redis://`` and ``rediss://``
(``kombu.transport.TRANSPORT_ALIASES``) rather than by Celery's
``broker_transport``: with the latter the connection's URI starts with the
class path, and Flower, which picks its broker client by the URI's scheme,
shows no queues ("'redis' broker is not supported").
"""

from __future__ import annotations

from typing import Any

from kombu.transport import TRANSPORT_ALIASES
from kombu.transport import redis as kombu_redis

TRANSPORT = f"{__name__}:Transport"


class Channel(kombu_redis.Channel):  # type: ignore[misc]
    _sync_client: Any = None

    def _create_client(self, asynchronous: bool = False) -> Any:
        if asynchronous:
            return super()._create_client(asynchronous=True)
        if self._sync_client is None:
            self._sync_client = super()._create_client()
        return self._sync_client

    def _disconnect_pools(self) -> None:
        self._sync_client = None
        super()._disconnect_pools()


class Transport(kombu_redis.Transport):  # type: ignore[misc]
    Channel = Channel


def install() -> None:
    """Make ``redis://`` and ``rediss://`` connections in this process use this transport."""
    for scheme in ("redis", "rediss"):
        TRANSPORT_ALIASES[scheme] = TRANSPORT
