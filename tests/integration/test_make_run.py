"""`make run` as a newcomer uses it: one command, the URLs it prints, an order
placed and completed, a quiet log, and Ctrl-C that ends everything with status 0."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import requests

from tests.support.processes import ROOT, RedisServer, free_port, wait_until
from tests.support.stack import order_payload


def test_make_run_starts_the_shop_processes_an_order_and_stops_cleanly_on_ctrl_c(
    own_redis: RedisServer, tmp_path: Path
) -> None:
    shop_port, flower_port = free_port(), free_port()
    var = tmp_path / "var"
    env = {
        **os.environ,
        "SHOP_VAR_DIR": str(var),  # secrets, Procfile, SQLite, mail and invoices: not the repository's var/
        "REDIS_URL": own_redis.url,
        "SHOP_PORT": str(shop_port),
        "FLOWER_PORT": str(flower_port),
        "SIMULATED_LATENCY_SCALE": "0",
    }
    for inherited in ("DATABASE_URL", "SECRET_KEY", "ADMIN_TOKEN", "PUBLIC_BASE_URL", "FLOWER_BASIC_AUTH"):
        env.pop(inherited, None)
    output = tmp_path / "make-run.log"
    with open(output, "wb") as out:
        # Its own process group, like a terminal's foreground job: Ctrl-C goes to all of it.
        run = subprocess.Popen(
            [str(ROOT / "scripts" / "run.sh")],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{shop_port}"
    try:

        def shop_answers() -> bool:
            try:
                return requests.get(f"{base}/healthz", timeout=2).status_code == 200
            except requests.ConnectionError:
                return run.poll() is not None  # ended early: fail below with its output

        wait_until(shop_answers, 90, 0.5, "make run to serve the shop")
        assert run.poll() is None, output.read_text()
        printed = output.read_text()
        for url in (f"{base}/", f"{base}/admin", f"http://127.0.0.1:{flower_port}/"):
            assert url in printed
        sku = requests.get(f"{base}/products", timeout=5).json()[0]["sku"]  # the seeded catalog
        placed = requests.post(f"{base}/orders", json=order_payload((sku, 1)), timeout=10)
        assert placed.status_code == 201, placed.text
        status_url = base + placed.json()["status_url"]

        def completed() -> bool:
            return requests.get(status_url, timeout=5).json()["status"] == "completed"

        wait_until(completed, 60, 0.5, "the order to complete under make run")
        # Flower answers, and only with its password (generated under SHOP_VAR_DIR).
        flower = f"http://127.0.0.1:{flower_port}/api/workers"
        wait_until(lambda: _answers(flower), 30, 0.5, "Flower")
        assert requests.get(flower, timeout=5).status_code == 401
        time.sleep(12)  # more than one canary period: its lines must not show
    finally:
        os.killpg(run.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        status = run.wait(60)
    log = output.read_text()
    assert status == 0, log[-3000:]
    assert "Task maintenance.canary[" not in log  # the watchdog runs, silently
    assert not _processes_left(run.pid), "make run left processes behind"
    for secret in ("secret-key", "admin-token", "metrics-token"):  # generated under SHOP_VAR_DIR, owner only
        assert (var / secret).stat().st_mode & 0o077 == 0, secret


def _answers(url: str) -> bool:
    try:
        requests.get(url, timeout=2)
        return True
    except requests.ConnectionError:
        return False


def _processes_left(group: int) -> list[str]:
    found = subprocess.run(["pgrep", "-g", str(group)], capture_output=True, text=True)
    return found.stdout.split()
