"""Integrations under issue 11: SMTP over verified TLS, the signed warehouse webhook,
and customers named in any alphabet, through real peers on loopback."""

from __future__ import annotations

import io
from collections.abc import Iterator
from email.header import decode_header, make_header
from email.mime.text import MIMEText
from pathlib import Path

import pytest
from pypdf import PdfReader

from shop import create_app
from shop.errors import PermanentError, TransientError
from shop.integrations.invoices import InvoiceFonts
from shop.integrations.mailer import SmtpMailer
from shop.integrations.warehouse import HttpWarehouse
from shop.pipeline.run import run_order
from tests.support.inline_worker import record_messages
from tests.support.processes import wait_until
from tests.support.receivers import WAREHOUSE_SECRET, SmtpSink, WarehouseReceiver
from tests.support.stack import Stack, order_payload
from tests.support.tls_certificates import ThrowawayCA

NAMES = {
    "polish": "Zażółć Gęślą-Jaźń",
    "chinese": "李小龍",
    "arabic": "محمد عبد الله",
}


# What start-up checks other than the one under test need.
SETTINGS = {"SECRET_KEY": "start-up-check-secret-key", "ADMIN_TOKEN": "a" * 40, "SMTP_URL": "", "WAREHOUSE_URL": ""}


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> ThrowawayCA:
    return ThrowawayCA(tmp_path_factory.mktemp("ca"))


def mail(to: str) -> MIMEText:
    message = MIMEText("hello", "plain", "utf-8")
    message["From"], message["To"], message["Subject"] = "shop@example.com", to, "TLS test"
    return message


@pytest.fixture
def tls_sink(ca: ThrowawayCA, request: pytest.FixtureRequest) -> Iterator[SmtpSink]:
    """An SMTP server on implicit TLS presenting the certificate named by the test's param."""
    with SmtpSink(tls=ca.server_context(getattr(request, "param", "localhost"))) as sink:
        yield sink


# --- SMTP: TLS verifies the certificate and the host name ---------------------


def test_smtps_delivers_to_a_server_the_ca_file_vouches_for(tls_sink: SmtpSink, ca: ThrowawayCA) -> None:
    SmtpMailer(tls_sink.url_for("localhost"), ca_file=ca.ca_file).send(mail("trusted@example.com"))
    assert len(tls_sink.to("trusted@example.com")) == 1


def test_smtps_refuses_a_certificate_the_system_trust_store_does_not_vouch_for(tls_sink: SmtpSink) -> None:
    with pytest.raises(TransientError, match="certificate refused"):
        SmtpMailer(tls_sink.url_for("localhost")).send(mail("untrusted@example.com"))
    assert tls_sink.messages == []


@pytest.mark.parametrize("tls_sink", ["stranger"], indirect=True)
def test_smtps_refuses_a_self_signed_certificate(tls_sink: SmtpSink, ca: ThrowawayCA) -> None:
    with pytest.raises(TransientError, match="certificate refused"):
        SmtpMailer(tls_sink.url_for("localhost"), ca_file=ca.ca_file).send(mail("stranger@example.com"))
    assert tls_sink.messages == []


@pytest.mark.parametrize("tls_sink", ["elsewhere"], indirect=True)
def test_smtps_refuses_a_certificate_issued_for_another_host_name(tls_sink: SmtpSink, ca: ThrowawayCA) -> None:
    with pytest.raises(TransientError, match="certificate refused"):
        SmtpMailer(tls_sink.url_for("localhost"), ca_file=ca.ca_file).send(mail("elsewhere@example.com"))
    assert tls_sink.messages == []


def test_starttls_verifies_the_certificate_before_logging_in(ca: ThrowawayCA) -> None:
    with SmtpSink(tls=ca.server_context("stranger"), starttls=True, credentials=("shop", "pw")) as sink:
        url = sink.url_for("localhost", user="shop", query="starttls=1")
        with pytest.raises(TransientError, match="certificate refused"):
            SmtpMailer(url, ca_file=ca.ca_file).send(mail("starttls@example.com"))
        assert sink.logins == [] and sink.messages == []


def test_starttls_logs_in_inside_tls_and_delivers(ca: ThrowawayCA) -> None:
    with SmtpSink(tls=ca.server_context("localhost"), starttls=True, credentials=("shop", "pw")) as sink:
        SmtpMailer(sink.url_for("localhost", user="shop", query="starttls=1"), ca_file=ca.ca_file).send(
            mail("starttls@example.com")
        )
        assert sink.logins == [{"ok": True, "tls": True}]
        assert len(sink.to("starttls@example.com")) == 1


def test_credentials_never_cross_in_clear_text_when_the_server_offers_no_starttls() -> None:
    # A server (or a man in the middle) that strips STARTTLS, and would take a login in clear text.
    with SmtpSink(credentials=("shop", "pw"), auth_require_tls=False) as sink:
        with pytest.raises(TransientError):
            SmtpMailer(sink.url_for("localhost", user="shop", query="starttls=1")).send(mail("plain@example.com"))
        assert sink.logins == [] and sink.messages == []


def test_start_up_refuses_smtp_credentials_without_tls(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="clear text"):
        create_app(
            {**SETTINGS, "SMTP_URL": "smtp://shop:pw@127.0.0.1:2525", "DATABASE_URL": f"sqlite:///{tmp_path}/x.db"}
        )


# --- The warehouse webhook: signed over timestamp, key and body ---------------


@pytest.fixture
def own_warehouse() -> Iterator[WarehouseReceiver]:
    """A receiver of this test's own: the session's one only sees whole orders' shipments."""
    with WarehouseReceiver() as receiver:
        yield receiver


def test_the_receiver_accepts_a_shipment_signed_as_the_readme_says(own_warehouse: WarehouseReceiver) -> None:
    HttpWarehouse(own_warehouse.url, WAREHOUSE_SECRET).notify(idempotency_key="order:a:warehouse", shipment={"a": 1})

    [request] = own_warehouse.requests
    assert request["json"] == {"a": 1} and request["headers"]["Idempotency-Key"] == "order:a:warehouse"
    assert request["headers"]["X-Shop-Timestamp"].isdigit()
    assert request["headers"]["X-Shop-Signature"].startswith("sha256=")


def test_a_shipment_signed_with_another_secret_is_refused_for_good(own_warehouse: WarehouseReceiver) -> None:
    with pytest.raises(PermanentError, match="401"):
        HttpWarehouse(own_warehouse.url, "not-the-secret").notify(idempotency_key="order:b:warehouse", shipment={})

    assert own_warehouse.requests == []
    assert [r["headers"]["Idempotency-Key"] for r in own_warehouse.rejected] == ["order:b:warehouse"]


def test_start_up_refuses_a_warehouse_url_without_a_secret(tmp_path: Path, warehouse: WarehouseReceiver) -> None:
    with pytest.raises(RuntimeError, match="WAREHOUSE_SECRET"):
        create_app(
            {
                **SETTINGS,
                "WAREHOUSE_URL": warehouse.url,
                "WAREHOUSE_SECRET": "",
                "DATABASE_URL": f"sqlite:///{tmp_path}/x.db",
            }
        )


# --- Names in every alphabet, end to end ----------------------------------------


def named_payload(sku: str, name: str, email: str) -> dict[str, object]:
    payload = order_payload((sku, 1), email=email)
    payload["customer"] = {"email": email, "name": name}
    return payload


@pytest.mark.parametrize("script", NAMES)
def test_a_customer_named_in_any_alphabet_gets_a_completed_order(
    stack: Stack, smtp: SmtpSink, warehouse: WarehouseReceiver, script: str
) -> None:
    name, email = NAMES[script], f"{script}-{stack.backend}@example.com"  # type: ignore[attr-defined]
    order_id = stack.place(named_payload(stack.add_product(), name, email))["order_id"]

    status = stack.wait_for(order_id, "completed", "needs_attention")
    assert {s["name"]: s["status"] for s in status["steps"]} == dict.fromkeys(
        ("inventory", "payment", "email", "invoice", "warehouse"), "succeeded"
    )

    [message] = wait_until(lambda: smtp.to(email), 10, what="the confirmation email")
    assert message["To"].isascii() and "=?utf-8?" in message["To"]  # an RFC 2047 encoded-word
    assert str(make_header(decode_header(message["To"]))) == f"{name} <{email}>"
    assert f"Hello {name}," in message.get_payload(decode=True).decode("utf-8")

    invoice = stack.client.get(f"/orders/{order_id}/invoice.pdf")
    assert invoice.status_code == 200
    assert name in PdfReader(io.BytesIO(invoice.data)).pages[0].extract_text()

    [shipment] = [r["json"] for r in warehouse.requests if r["json"]["order_id"] == order_id]
    assert shipment["ship_to"]["name"] == name


def test_missing_invoice_fonts_dead_letter_the_invoice_step_with_a_clear_error(db_stack: Stack) -> None:
    db_stack.services.invoice_fonts = InvoiceFonts(fallback="/nowhere/DroidSansFallbackFull.ttf")
    sku = db_stack.add_product()
    order_id = db_stack.place(named_payload(sku, NAMES["chinese"], "no-fonts@example.com"))["order_id"]

    record_messages(db_stack.services)  # this process is the worker
    run_order(db_stack.services, order_id, "the-run")

    [(status, error)] = db_stack.rows(
        "SELECT status, last_error FROM step_runs WHERE order_id = :o AND step = 'invoice'", o=order_id
    )
    assert status == "failed"
    assert "invoice fonts missing: /nowhere/DroidSansFallbackFull.ttf" in error and "fonts-droid-fallback" in error
    assert db_stack.scalar("SELECT status FROM orders WHERE id = :o", o=order_id) == "needs_attention"
    assert not (Path(db_stack.services.invoice_dir) / f"{order_id}.pdf").exists()
