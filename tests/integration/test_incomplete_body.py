"""A body that ends before its Content-Length (or before its last chunk) writes nothing, under gunicorn.

gunicorn hands the application whatever arrived when the client gives up, and
werkzeug trusts a server that terminates its own input: a whole JSON document
sent with a Content-Length a few bytes too large made an order once the client
stopped waiting. The client had seen a timeout, so its retry made a second one.
"""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
import requests

from tests.support.processes import BIN, ROOT, RedisServer, child_env
from tests.support.stack import Stack, order_payload
from tests.support.waiting import free_port, wait_until

if TYPE_CHECKING:
    from tests.conftest import Databases

SKU = "MUG-001"
BODY = json.dumps(order_payload((SKU, 1))).encode()


class Gunicorn:
    """``gunicorn 'shop:create_app()'`` with one sync worker: it serves one connection at a time,
    so an answered request means every earlier one is finished."""

    def __init__(self, stack: Stack) -> None:
        self.port = free_port()
        self.log = open(stack.workdir / "gunicorn.log", "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [str(BIN / "gunicorn"), "-w", "1", "-b", f"127.0.0.1:{self.port}", "shop:create_app()"],
            cwd=ROOT,
            env=child_env(stack.env),
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_until(self.answers, 60, 0.2, "gunicorn to answer")

    def answers(self) -> bool:
        assert self.process.poll() is None, "gunicorn exited; see gunicorn.log"
        try:
            return requests.get(f"http://127.0.0.1:{self.port}/healthz", timeout=30).status_code == 200
        except requests.ConnectionError:
            return False

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=30)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        self.log.close()


@pytest.fixture(scope="module")
def shop(databases: Databases, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with Stack(databases.new("postgresql"), redis_server.url, tmp_path_factory.mktemp("incomplete-body")) as stack:
        stack.add_product(sku=SKU)
        yield stack


@pytest.fixture(scope="module")
def server(shop: Stack) -> Iterator[Gunicorn]:
    gunicorn = Gunicorn(shop)
    yield gunicorn
    gunicorn.stop()


def _head(content_length: int | None) -> bytes:
    framing = "Transfer-Encoding: chunked" if content_length is None else f"Content-Length: {content_length}"
    return f"POST /orders HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{framing}\r\n\r\n".encode()


def _answer(sock: socket.socket) -> tuple[int, dict[str, Any]]:
    """Status and JSON body of the answer; the server closes the connection after it."""
    raw = b""
    while chunk := sock.recv(65536):
        raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def _orders(shop: Stack) -> int:
    return int(shop.scalar("SELECT count(*) FROM orders"))


def test_a_body_short_of_its_content_length_is_refused_and_writes_nothing(shop: Stack, server: Gunicorn) -> None:
    before = _orders(shop)
    with server.connect() as sock:
        sock.sendall(_head(len(BODY) + 10) + BODY)  # a whole JSON document, 10 bytes short of its length
        sock.shutdown(socket.SHUT_WR)  # the client is done sending, and still listening
        status, answer = _answer(sock)
    assert (status, answer["error"]["code"]) == (400, "incomplete_body")
    assert _orders(shop) == before


def test_a_client_that_gives_up_waiting_leaves_no_order_behind(shop: Stack, server: Gunicorn) -> None:
    before = _orders(shop)
    with server.connect() as sock:
        sock.sendall(_head(len(BODY) + 10) + BODY)
        sock.settimeout(1)
        with pytest.raises(TimeoutError):  # the server waits for the last 10 bytes: no answer yet
            sock.recv(1)
    # Closed: the client saw a timeout. One sync worker, so this answer comes after that request ended.
    assert server.answers()
    assert _orders(shop) == before


def test_a_chunked_body_cut_before_its_last_chunk_is_refused_and_writes_nothing(shop: Stack, server: Gunicorn) -> None:
    before = _orders(shop)
    with server.connect() as sock:
        sock.sendall(_head(None) + f"{len(BODY):x}\r\n".encode() + BODY + b"\r\n")  # no "0\r\n\r\n"
        sock.shutdown(socket.SHUT_WR)
        status, answer = _answer(sock)
    assert (status, answer["error"]["code"]) == (400, "incomplete_body")
    assert _orders(shop) == before


def test_the_same_request_with_its_true_length_places_the_order(shop: Stack, server: Gunicorn) -> None:
    before = _orders(shop)
    with server.connect() as sock:
        sock.sendall(_head(len(BODY)) + BODY)
        status, answer = _answer(sock)
    assert status == 201 and answer["order_id"]
    assert _orders(shop) == before + 1
