"""Soft limits retry cleanly; hard limits kill, count the attempt, and end in the
dead-letter list, never in a loop; a dead letter replays once the fault is gone."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

from tests.support.processes import BIN, ROOT, RedisServer, child_env
from tests.support.stack import Stack, order_payload

FAST_LIMITS = {"STEP_TIME_LIMIT_SCALE": "0.1", "SWEEP_INTERVAL": "1", "RETRY_BACKOFF_SCALE": "0.01"}


def test_hanging_step_is_killed_counted_dead_lettered_then_replayed_from_the_cli(
    make_stack: Any, own_redis: RedisServer
) -> None:
    stack: Stack = make_stack(own_redis.url, "postgresql", **FAST_LIMITS)
    hanging = stack.start_worker(env={"FAULTS": "invoice:hang=1"}, name="hanging")
    order_id = stack.place(order_payload((stack.add_product(), 1)))["order_id"]

    status = stack.wait_for(order_id, "needs_attention", timeout=90)
    invoice = status["steps"][3]
    assert invoice["status"] == "failed" and invoice["attempts"] == 5  # the policy's maximum, then stop
    raw = stack.scalar("SELECT last_error FROM step_runs WHERE order_id = :o AND step = 'invoice'", o=order_id)
    assert "lease expired" in raw or "attempts exhausted" in raw  # the operator's text; the public sees a code
    assert b"Hard time limit" in hanging.logfile.read_bytes()
    letters = stack.client.get("/admin/api/dead-letters", headers=stack.admin_headers()).get_json()
    assert [(d["order_id"], d["step"]) for d in letters] == [(order_id, "invoice")]

    hanging.stop()
    stack.start_worker(name="healthy")
    cli = subprocess.run(
        [str(BIN / "flask"), "--app", "shop", "dead-letters", "replay", str(letters[0]["id"])],
        cwd=ROOT,
        env=child_env(stack.env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 0, cli.stderr
    assert f"replayed invoice of order {order_id}" in cli.stdout

    status = stack.wait_for(order_id, "completed", timeout=60)
    assert status["steps"][3]["attempts"] == 1
    assert len(list(Path(stack.services.invoice_dir).glob(f"{order_id}*"))) == 1
    assert stack.client.get("/admin/api/dead-letters", headers=stack.admin_headers()).get_json() == []


def test_replaying_an_unknown_dead_letter_from_the_cli_fails_clearly(db_stack: Stack) -> None:
    cli = subprocess.run(
        [str(BIN / "flask"), "--app", "shop", "dead-letters", "replay", "999999"],
        cwd=ROOT,
        env=child_env(db_stack.env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode != 0 and "dead letter not found" in cli.stderr


def test_soft_time_limit_retries_with_backoff_until_the_budget_is_spent(
    make_stack: Any, own_redis: RedisServer
) -> None:
    # Every payment attempt outlives its soft limit (1 s) but not its hard one.
    stack: Stack = make_stack(own_redis.url, "postgresql", **FAST_LIMITS)
    worker = stack.start_worker(env={"FAULTS": "payment:slow=1"})
    pool_before = set(worker.child_pids())
    order_id = stack.place(order_payload((stack.add_product(), 1)))["order_id"]

    status = stack.wait_for(order_id, "needs_attention", timeout=60)
    payment = status["steps"][1]
    assert payment["status"] == "failed" and payment["attempts"] == 5
    raw = stack.scalar("SELECT last_error FROM step_runs WHERE order_id = :o AND step = 'payment'", o=order_id)
    assert "SoftTimeLimitExceeded" in raw  # the operator's text; the public status shows only a code
    assert set(worker.child_pids()) == pool_before  # clean retries: no process was killed
    assert stack.scalar("SELECT count(*) FROM payment_charges") == 0


def test_permanent_error_is_dead_lettered_at_once_and_replayed_through_the_admin_api(
    make_stack: Any, own_redis: RedisServer
) -> None:
    stack: Stack = make_stack(own_redis.url, "postgresql")
    broken = stack.start_worker(env={"FAULTS": "warehouse:permanent=1"}, name="broken")
    order_id = stack.place(order_payload((stack.add_product(), 1)))["order_id"]
    status = stack.wait_for(order_id, "needs_attention", timeout=60)
    assert status["steps"][4]["attempts"] == 1  # permanent: never retried
    broken.stop()
    stack.start_worker(name="fixed")
    letter = stack.client.get("/admin/api/dead-letters", headers=stack.admin_headers()).get_json()[0]

    replay = stack.client.post(f"/admin/api/dead-letters/{letter['id']}/replay", headers=stack.admin_headers())

    assert replay.status_code == 202
    stack.wait_for(order_id, "completed", timeout=60)
    again = stack.client.post(f"/admin/api/dead-letters/{letter['id']}/replay", headers=stack.admin_headers())
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "not_dead_lettered"
    assert os.environ.get("FAULTS", "") == ""
