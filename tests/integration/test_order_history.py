"""An order's history (failed attempts, dead letters, replays, cancels, refunds) and the
admin's Cancel and Refund, through HTTP: the admin pages with their CSRF forms and
``POST /admin/api/orders/<id>/refund``."""

from __future__ import annotations

import re
from datetime import datetime
from html.parser import HTMLParser
from typing import Any

from flask.testing import FlaskClient

from shop.integrations.faults import parse_faults
from shop.pipeline.run import run_order
from shop.services.cancellation import UNPAID_TIMEOUT_ACTOR, cancel_unpaid_order
from tests.support.inline_worker import drain, execute, record_messages
from tests.support.stack import ADMIN_TOKEN, Stack, order_payload

CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
ADMIN_SESSION_ACTOR = re.compile(r"admin \(session [0-9a-f]{8}\) from 127\.0\.0\.1")


class Timeline(HTMLParser):
    """The order page's History: one dict per entry (kind, step, texts, time), in page order."""

    def __init__(self) -> None:
        super().__init__()
        self.entries: list[dict[str, Any]] = []
        self.inside = False
        self.field: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "ol" and "data-history" in found:
            self.inside = True
        if not self.inside:
            return
        if tag == "li":
            self.entries.append({"kind": found["data-event"], "step": found.get("data-event-step"), "text": ""})
        elif tag == "time":
            self.entries[-1]["at"] = datetime.fromisoformat(str(found["datetime"]))
        elif "data-event-actor" in found:
            self.field = "actor"
        elif "data-event-detail" in found:
            self.field = "detail"

    def handle_endtag(self, tag: str) -> None:
        if tag == "ol":
            self.inside = False
        if tag in ("span", "p"):
            self.field = None

    def handle_data(self, data: str) -> None:
        if self.inside and self.entries:
            self.entries[-1]["text"] += data
            if self.field:
                self.entries[-1][self.field] = self.entries[-1].get(self.field, "") + data


def logged_in_admin(stack: Stack) -> FlaskClient:
    client = stack.client
    token = CSRF.search(client.get("/admin/login").get_data(as_text=True))
    assert token is not None
    assert client.post("/admin/login", data={"csrf_token": token.group(1), "token": ADMIN_TOKEN}).status_code == 303
    return client


def csrf_of(client: FlaskClient, path: str) -> str:
    found = CSRF.search(client.get(path).get_data(as_text=True))
    assert found is not None, path
    return found.group(1)


def timeline(client: FlaskClient, order_id: str) -> list[dict[str, Any]]:
    page = client.get(f"/admin/orders/{order_id}")
    assert page.status_code == 200
    parser = Timeline()
    parser.feed(page.get_data(as_text=True))
    return parser.entries


def events(stack: Stack, order_id: str) -> list[Any]:
    return stack.rows("SELECT kind, step, attempt, actor FROM order_events WHERE order_id = :o ORDER BY id", o=order_id)


def completed_order(stack: Stack) -> str:
    order_id = stack.place(order_payload((stack.add_product(stock=10, price_cents=2500), 2)))["order_id"]
    assert run_order(stack.services, order_id, "the-run") == "completed"
    return order_id


# --- history is kept ---------------------------------------------------------


def test_failed_attempts_the_dead_letter_and_the_replay_stay_in_the_order_timeline_in_order(db_stack: Stack) -> None:
    svc = db_stack.services
    order_id = db_stack.place(order_payload((db_stack.add_product(stock=10), 1)))["order_id"]
    recorder = record_messages(svc)
    svc.simulation.faults = parse_faults("payment:transient=1")
    run_order(svc, order_id, "the-run")  # attempt 1 fails: the slow path takes the payment
    [payment_task] = [m for m in recorder.take() if m.task_name == "steps.payment"]
    execute(svc, payment_task)  # attempt 2 fails: the task retries itself (same task id)
    svc.simulation.faults = parse_faults("payment:permanent=1")
    execute(svc, payment_task)  # attempt 3 fails for good: dead-lettered
    assert db_stack.status(order_id)["status"] == "needs_attention"
    svc.simulation.faults = {}

    admin = logged_in_admin(db_stack)
    step_run_id = db_stack.scalar("SELECT id FROM step_runs WHERE order_id = :o AND step = 'payment'", o=order_id)
    replay = admin.post(
        f"/admin/dead-letters/{step_run_id}/replay",
        data={"csrf_token": csrf_of(admin, f"/admin/orders/{order_id}")},
    )
    assert replay.status_code == 303
    drain(svc, recorder)
    assert db_stack.status(order_id)["status"] == "completed"

    entries = timeline(admin, order_id)
    assert [(e["kind"], e["step"]) for e in entries] == [
        ("placed", None),
        ("attempt_failed", "payment"),
        ("attempt_failed", "payment"),
        ("dead_lettered", "payment"),
        ("replayed", "payment"),
    ]
    placed, first, second, dead, replayed = entries
    assert "attempt 1" in first["text"] and first["detail"] == "TransientError: injected transient fault in payment"
    assert "attempt 2" in second["text"] and second["detail"] == "TransientError: injected transient fault in payment"
    assert "attempt 3" in dead["text"] and dead["detail"] == "permanent: injected permanent fault in payment"
    assert ADMIN_SESSION_ACTOR.fullmatch(replayed["actor"]), replayed["actor"]
    assert replayed["detail"] == "fresh retry budget after 3 attempts"
    times = [e["at"] for e in entries]
    assert times == sorted(times)  # oldest first, each with its time


def test_an_order_that_goes_smoothly_writes_no_history(db_stack: Stack) -> None:
    order_id = completed_order(db_stack)

    assert events(db_stack, order_id) == []
    assert [e["kind"] for e in timeline(logged_in_admin(db_stack), order_id)] == ["placed"]


def test_a_declined_card_is_kept_with_its_error(db_stack: Stack) -> None:
    order_id = db_stack.place(order_payload((db_stack.add_product(), 1), token="tok_chargeDeclined"))["order_id"]
    assert run_order(db_stack.services, order_id, "the-run") == "failed: payment_declined"

    [declined] = [e for e in timeline(logged_in_admin(db_stack), order_id) if e["kind"] != "placed"]
    assert (declined["kind"], declined["step"], declined["detail"]) == (
        "step_failed",
        "payment",
        "card declined: card_declined",
    )


def test_a_cancel_through_the_public_api_records_the_customer_and_their_address(db_stack: Stack) -> None:
    order_id = db_stack.place(order_payload((db_stack.add_product(), 1)))["order_id"]

    assert db_stack.client.post(f"/orders/{order_id}/cancel").status_code == 200
    assert db_stack.client.post(f"/orders/{order_id}/cancel").status_code == 200  # idempotent: no second event

    assert events(db_stack, order_id) == [("cancelled", None, None, "customer via API (127.0.0.1)")]


def test_the_unpaid_timeout_records_the_shop_as_who_cancelled(db_stack: Stack) -> None:
    order_id = db_stack.place(order_payload((db_stack.add_product(), 1)))["order_id"]

    assert cancel_unpaid_order(db_stack.services, order_id) == "cancelled"

    assert events(db_stack, order_id) == [("cancelled", None, None, UNPAID_TIMEOUT_ACTOR)]


# --- the admin acts: cancel ----------------------------------------------------


def test_cancel_from_the_order_page_asks_first_then_cancels_and_records_who(db_stack: Stack) -> None:
    sku = db_stack.add_product(stock=10)
    order_id = db_stack.place(order_payload((sku, 3)))["order_id"]
    admin = logged_in_admin(db_stack)
    assert f'href="/admin/orders/{order_id}/cancel"' in admin.get(f"/admin/orders/{order_id}").get_data(as_text=True)

    confirm = admin.get(f"/admin/orders/{order_id}/cancel")

    assert confirm.status_code == 200 and "Cancel this order?" in confirm.get_data(as_text=True)
    assert db_stack.status(order_id)["status"] == "received"  # asking changes nothing
    token = CSRF.search(confirm.get_data(as_text=True))
    assert token is not None
    done = admin.post(f"/admin/orders/{order_id}/cancel", data={"csrf_token": token.group(1)})

    assert done.status_code == 303 and done.headers["Location"] == f"/admin/orders/{order_id}"
    assert db_stack.status(order_id)["status"] == "cancelled"
    [(kind, step, attempt, actor)] = events(db_stack, order_id)
    assert kind == "cancelled" and ADMIN_SESSION_ACTOR.fullmatch(actor), actor
    entry = timeline(admin, order_id)[-1]
    assert entry["kind"] == "cancelled" and entry["detail"] == "nothing was charged"


def test_an_admin_action_without_its_csrf_token_changes_nothing(db_stack: Stack) -> None:
    order_id = db_stack.place(order_payload((db_stack.add_product(), 1)))["order_id"]
    admin = logged_in_admin(db_stack)

    answer = admin.post(f"/admin/orders/{order_id}/cancel", data={})

    assert answer.status_code == 303
    assert db_stack.status(order_id)["status"] == "received"
    assert events(db_stack, order_id) == []


def test_admin_order_actions_need_a_login(db_stack: Stack) -> None:
    order_id = db_stack.place(order_payload((db_stack.add_product(), 1)))["order_id"]

    answer = db_stack.client.post(f"/admin/orders/{order_id}/cancel", data={})

    assert answer.status_code == 303 and "/admin/login" in answer.headers["Location"]
    assert db_stack.status(order_id)["status"] == "received"


# --- the admin acts: refund ----------------------------------------------------


def test_refund_of_a_completed_order_gives_the_money_back_and_keeps_it_shipped(db_stack: Stack) -> None:
    order_id = completed_order(db_stack)
    recorder = record_messages(db_stack.services)

    answer = db_stack.client.post(f"/admin/api/orders/{order_id}/refund", headers=db_stack.admin_headers())

    assert answer.status_code == 200
    assert answer.get_json() == {
        "order_id": order_id,
        "status": "completed",
        "refund": {"amount_cents": 5000, "currency": "EUR"},
        "already_refunded": False,
    }
    assert drain(db_stack.services, recorder) == ["refunded"]  # the gateway, after the commit
    assert db_stack.rows(
        "SELECT status, refunded_at IS NOT NULL FROM payment_charges WHERE order_id = :o", o=order_id
    ) == [("succeeded", True)]
    status = db_stack.status(order_id)
    steps = {s["name"]: s["status"] for s in status["steps"]}
    assert status["status"] == "completed"
    assert steps["payment"] == "compensated" and steps["warehouse"] == "succeeded"
    assert events(db_stack, order_id) == [("refunded", "payment", None, "admin-api (127.0.0.1)")]


def test_refunding_twice_refunds_once(db_stack: Stack) -> None:
    order_id = completed_order(db_stack)
    recorder = record_messages(db_stack.services)
    first = db_stack.client.post(f"/admin/api/orders/{order_id}/refund", headers=db_stack.admin_headers())

    second = db_stack.client.post(f"/admin/api/orders/{order_id}/refund", headers=db_stack.admin_headers())

    assert first.status_code == second.status_code == 200
    assert second.get_json()["already_refunded"] is True
    assert len(recorder.take()) == 1
    assert [kind for kind, *_ in events(db_stack, order_id)] == ["refunded"]


def test_refund_is_refused_before_the_order_is_completed_and_writes_nothing(db_stack: Stack) -> None:
    order_id = db_stack.place(order_payload((db_stack.add_product(), 1)))["order_id"]
    outbox_before = db_stack.scalar("SELECT count(*) FROM outbox_messages")

    answer = db_stack.client.post(f"/admin/api/orders/{order_id}/refund", headers=db_stack.admin_headers())

    assert answer.status_code == 409
    error = answer.get_json()["error"]
    assert error["code"] == "not_refundable" and "cancel it instead" in error["message"]
    assert events(db_stack, order_id) == []
    assert db_stack.scalar("SELECT count(*) FROM outbox_messages") == outbox_before
    assert {s["status"] for s in db_stack.status(order_id)["steps"]} == {"pending"}


def test_refund_of_an_unknown_order_is_404_and_needs_the_admin_token(db_stack: Stack) -> None:
    unknown = db_stack.client.post("/admin/api/orders/nope/refund", headers=db_stack.admin_headers())
    anonymous = db_stack.client.post(f"/admin/api/orders/{completed_order(db_stack)}/refund")

    assert unknown.status_code == 404 and unknown.get_json()["error"]["code"] == "not_found"
    assert anonymous.status_code == 401 and anonymous.get_json()["error"]["code"] == "unauthorized"
    assert db_stack.scalar("SELECT count(*) FROM order_events") == 0


def test_refund_from_the_order_page_asks_first_and_records_the_admin_session(db_stack: Stack) -> None:
    order_id = completed_order(db_stack)
    recorder = record_messages(db_stack.services)
    admin = logged_in_admin(db_stack)
    assert f'href="/admin/orders/{order_id}/refund"' in admin.get(f"/admin/orders/{order_id}").get_data(as_text=True)

    token = csrf_of(admin, f"/admin/orders/{order_id}/refund")
    assert recorder.messages == []  # the confirmation page refunds nothing
    done = admin.post(f"/admin/orders/{order_id}/refund", data={"csrf_token": token})

    assert done.status_code == 303
    assert drain(db_stack.services, recorder) == ["refunded"]
    page = admin.get(f"/admin/orders/{order_id}").get_data(as_text=True)
    assert 'data-order-action="refund"' not in page  # refunded: no second button
    entry = timeline(admin, order_id)[-1]
    assert entry["kind"] == "refunded" and ADMIN_SESSION_ACTOR.fullmatch(entry["actor"]), entry
