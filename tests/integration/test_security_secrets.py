"""Secrets (ASVS L2): start-up refuses a missing SECRET_KEY or a short ADMIN_TOKEN; ``make run``
keeps its secrets readable by their owner only and Flower's password off every command line."""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path

import pytest
import requests

from tests.support.processes import BIN, ROOT, child_env, free_port, wait_until
from tests.support.stack import Stack

RUN_SH = ROOT / "scripts" / "run.sh"
LOCAL_SECRETS = ROOT / "scripts" / "local-secrets.sh"


def start_gunicorn(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``gunicorn 'shop:create_app()'`` as production does, expecting it to refuse to start."""
    return subprocess.run(
        [str(BIN / "gunicorn"), "-w", "2", "-b", f"127.0.0.1:{free_port()}", "--preload", "shop:create_app()"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_start_up_fails_clearly_without_a_secret_key(db_stack: Stack) -> None:
    env = child_env(db_stack.env)
    del env["SECRET_KEY"]

    refused = start_gunicorn(env)

    assert refused.returncode != 0
    assert "SECRET_KEY is not set" in refused.stderr


@pytest.mark.parametrize("token", ["admin", "x" * 31])
def test_start_up_refuses_an_admin_token_shorter_than_32_characters(db_stack: Stack, token: str) -> None:
    refused = start_gunicorn(child_env({**db_stack.env, "ADMIN_TOKEN": token}))

    assert refused.returncode != 0
    assert f"ADMIN_TOKEN is {len(token)} characters long; it must have at least 32" in refused.stderr


def source_local_secrets(var_dir: Path) -> dict[str, str]:
    """Source scripts/local-secrets.sh as run.sh does, under a permissive umask; return what it exports."""
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "ADMIN_TOKEN", "FLOWER_BASIC_AUTH")}
    out = subprocess.run(
        ["bash", "-c", 'umask 022; . "$0" "$1"; env', str(LOCAL_SECRETS), str(var_dir)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_make_run_writes_its_secrets_readable_by_their_owner_only(tmp_path: Path) -> None:
    var = tmp_path / "var"
    exported = source_local_secrets(var)

    assert mode(var / "secret-key") == 0o600 and mode(var / "admin-token") == 0o600
    assert exported["SECRET_KEY"] == (var / "secret-key").read_text().strip()
    assert exported["ADMIN_TOKEN"] == (var / "admin-token").read_text().strip()
    assert len(exported["ADMIN_TOKEN"]) >= 32
    assert '. scripts/local-secrets.sh "$var"' in RUN_SH.read_text()  # what make run does, var = SHOP_VAR_DIR


def test_make_run_tightens_secret_files_an_older_version_left_world_readable(tmp_path: Path) -> None:
    var = tmp_path / "var"
    var.mkdir()
    for name, value in (("secret-key", "k" * 64), ("admin-token", "t" * 32)):
        (var / name).write_text(value + "\n")
        (var / name).chmod(0o644)

    exported = source_local_secrets(var)

    assert mode(var / "secret-key") == 0o600 and mode(var / "admin-token") == 0o600
    assert exported["ADMIN_TOKEN"] == "t" * 32  # kept, not regenerated


def flower_command_of_make_run() -> str:
    """The Flower line of the Procfile run.sh writes."""
    match = re.search(r"^flower: (.+)$", RUN_SH.read_text(), re.MULTILINE)
    assert match, "run.sh starts no Flower"
    return match.group(1)


def test_flowers_password_never_appears_on_a_command_line(db_stack: Stack, tmp_path: Path) -> None:
    password = "flower-password-0123456789abcdef"
    port = free_port()
    env = child_env({**db_stack.env, "FLOWER_PORT": str(port), "FLOWER_BASIC_AUTH": f"admin:{password}"})
    with open(tmp_path / "flower.log", "ab") as log:
        # As honcho runs a Procfile line: through a shell, variables expanded there.
        flower = subprocess.Popen(
            ["bash", "-c", f"exec {flower_command_of_make_run()}"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:

        def answers() -> bool:
            assert flower.poll() is None, f"Flower exited; see {tmp_path / 'flower.log'}"
            try:
                return requests.get(f"{base}/healthcheck", timeout=5).status_code == 200
            except requests.ConnectionError:
                return False

        wait_until(answers, 60, 0.3, "Flower to answer")
        command_line = Path(f"/proc/{flower.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        assert "flower" in command_line
        assert password not in command_line
        # ... and Flower still asks for it.
        assert requests.get(f"{base}/api/workers", timeout=5).status_code == 401
        assert requests.get(f"{base}/api/workers", auth=("admin", "wrong"), timeout=5).status_code == 401
        assert requests.get(f"{base}/api/workers", auth=("admin", password), timeout=10).status_code == 200
    finally:
        flower.terminate()
        flower.wait(10)
