"""No gunicorn we start opens the per-user control socket (issue 11, deployment).

gunicorn >= 25.1 listens for ``gunicornc`` at $XDG_RUNTIME_DIR/gunicorn.ctl, else
~/.gunicorn/gunicorn.ctl: one path for every gunicorn of the user, so a second instance takes it over
from the first, and stopping either deletes it. Real gunicorn processes here, each with a HOME of the
test's own so that a developer's socket is never touched.
"""

from __future__ import annotations

import os
import subprocess
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.stack import gunicorn_command
from tests.support.processes import BIN, ROOT
from tests.support.waiting import free_port, wait_until

APP = "wsgiref.simple_server:demo_app"  # any WSGI app will do: the socket is the arbiter's


def answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@contextmanager
def gunicorn(command: list[str], port: int, cwd: Path, home: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_RUNTIME_DIR", "GUNICORN_CMD_ARGS")}
    # Debug logging (the last --log-level wins): the arbiter decides on its control socket after
    # spawning the workers, and logs either "Control socket disabled" or "Control socket listening".
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [*command, "--log-level", "debug"], cwd=cwd, env={**env, "HOME": str(home)}, stdout=out, stderr=out
        )
    try:
        wait_until(lambda: process.poll() is None and answers(port), 30, 0.1, f"gunicorn on {port} (see {log})")
        wait_until(
            lambda: b"Control socket" in log.read_bytes(), 30, 0.1, f"gunicorn's control socket decision ({log})"
        )
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


def control_sockets(home: Path) -> list[Path]:
    return sorted(home.rglob("*.ctl"))


def test_gunicorns_started_from_the_repository_share_no_control_socket(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    first_port, second_port = free_port(), free_port()
    command = [str(BIN / "gunicorn"), "-w", "1", APP]  # as the README says it, from the repository
    with gunicorn([*command, "-b", f"127.0.0.1:{first_port}"], first_port, ROOT, home, tmp_path / "first.log"):
        with gunicorn([*command, "-b", f"127.0.0.1:{second_port}"], second_port, ROOT, home, tmp_path / "second.log"):
            assert control_sockets(home) == []
        # The second one stopped: the first is untouched and still serves.
        assert answers(first_port)
    assert control_sockets(home) == []


def test_the_bench_gunicorn_opens_no_control_socket_wherever_it_starts(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    port = free_port()
    elsewhere = tmp_path / "cwd"  # no gunicorn.conf.py here: the flag alone must do it
    elsewhere.mkdir()
    with gunicorn(gunicorn_command(APP, port, 1, 1), port, elsewhere, home, tmp_path / "bench.log"):
        assert control_sockets(home) == []
