"""Real servers for tests: a private redis-server, Celery workers, a web server."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis
import requests
from werkzeug.serving import make_server

from tests.support.waiting import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


class RedisServer:
    """A redis-server of the test's own, on a free loopback port: safe to kill."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        exe = shutil.which("redis-server")
        assert exe, "redis-server is not installed (apt-get install redis-server)"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                exe,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
                "--logfile",
                str(self.workdir / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self.ping, 10, what="redis-server to answer")
        return self

    def ping(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=0.2).ping())
        except redis.RedisError:
            return False

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


def child_env(env: dict[str, str]) -> dict[str, str]:
    merged = {**os.environ, **env}
    merged["PATH"] = f"{BIN}:{merged.get('PATH', '')}"
    merged["PYTHONPATH"] = str(ROOT)
    return merged


class CeleryWorker:
    """``celery -A tasks worker`` as a child process with its own environment."""

    def __init__(
        self,
        env: dict[str, str],
        logfile: Path,
        queues: str | None = None,
        concurrency: int = 2,
        pool: str = "prefork",
        name: str = "w1",
        extra: list[str] | None = None,
    ) -> None:
        from shop.step_policy import QUEUES

        self.env = env
        self.logfile = logfile
        self.queues = queues or ",".join(QUEUES)
        self.concurrency = concurrency
        self.pool = pool
        self.name = f"{name}-{os.getpid()}-{free_port()}@localhost"
        self.extra = extra or []
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, wait: bool = True) -> CeleryWorker:
        self.logfile.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.logfile, "ab")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(
            [
                str(BIN / "celery"),
                "-A",
                "tasks",
                "worker",
                "-n",
                self.name,
                "-Q",
                self.queues,
                "-c",
                str(self.concurrency),
                "-P",
                self.pool,
                "-l",
                "INFO",
                "--without-mingle",
                "--without-gossip",
                *self.extra,
            ],
            cwd=ROOT,
            env=child_env(self.env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 60) -> None:
        def ready() -> bool:
            assert self.process and self.process.poll() is None, f"worker died; see {self.logfile}"
            return b" ready." in self.logfile.read_bytes()

        wait_until(ready, timeout, 0.1, "the worker to be ready")

    def signal(self, sig: int) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)

    def kill_group(self) -> None:
        """SIGKILL the worker and its pool processes at once."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self, timeout: float = 30) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill_group()

    def child_pids(self) -> list[int]:
        if not self.process:
            return []
        out = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True)
        return [int(p) for p in out.stdout.split()]


@contextmanager
def served(argv: list[str], env: dict[str, str], logfile: Path, ready_path: str, **headers: str) -> Iterator[str]:
    """A server started from the repository (``gunicorn …``, ``celery -A tasks flower …``) on
    ``{port}`` in ``argv``; yields its base URL once ``ready_path`` answers, stops it after."""
    port = free_port()
    with open(logfile, "ab") as log:
        process = subprocess.Popen(
            [arg.format(port=port) for arg in argv],
            cwd=ROOT,
            env=child_env(env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        assert process.poll() is None, f"{argv[0]} exited; see {logfile}"
        try:
            requests.get(url + ready_path, timeout=60, headers=headers)
            return True
        except requests.ConnectionError:
            return False

    try:
        wait_until(answers, 60, 0.2, f"{Path(argv[0]).name} to answer (see {logfile})")
        yield url
    finally:
        process.terminate()
        process.wait(10)


def gunicorn(env: dict[str, str], logfile: Path, workers: int = 1) -> Any:
    """``gunicorn 'shop:create_app()'`` with ``workers`` processes; a context manager yielding its URL."""
    argv = [str(BIN / "gunicorn"), "-w", str(workers), "--graceful-timeout", "2", "-b", "127.0.0.1:{port}"]
    return served([*argv, "shop:create_app()"], env, logfile, "/healthz")


def flower(env: dict[str, str], logfile: Path) -> Any:
    """``celery -A tasks flower``, its password from FLOWER_BASIC_AUTH in ``env`` as make run does."""
    argv = [str(BIN / "celery"), "-A", "tasks", "flower", "--address=127.0.0.1", "--port={port}", "--max-tasks=1000"]
    return served(argv, env, logfile, "/healthcheck")


class ServerThread:
    """A real HTTP server for a WSGI app, on a free loopback port, in a thread."""

    def __init__(self, app: Any) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
