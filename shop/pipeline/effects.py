"""The five side effects of an order, each under a stable key.

``effect_key`` is the one place that names a key. Payment and warehouse pass
it to the partner, who dedupes on it; the invoice is one file under a fixed
name; the confirmation email carries a stable Message-ID (at least once:
receivers drop duplicates). Stock moves commit with the ledger, so they need
no key of their own. Network calls never run inside a database transaction.
"""

from __future__ import annotations

from typing import Any

from shop.database import Executor, insert_ignoring_duplicates
from shop.errors import PermanentError
from shop.extensions import ShopServices
from shop.integrations.invoices import write_invoice
from shop.models import Order, SideEffect
from shop.services.notifications import confirmation_email
from shop.services.stock import reserve_stock
from shop.states import Step

EffectRecord = dict[str, Any]


def effect_key(order_id: str, kind: Step | str) -> str:
    return f"order:{order_id}:{kind}"


def reserve_inventory(session: Executor, order: Order) -> None:
    """In the checkpoint's transaction: a crash before its commit undoes the reservation too."""
    reserve_stock(session, order.id, order.lines)


def charge_payment(svc: ShopServices, order: Order) -> EffectRecord | None:
    # Outside any transaction: the gateway is remote. Its idempotency key makes
    # a repeated attempt get the first charge back instead of a second one.
    svc.gateway.charge(
        idempotency_key=effect_key(order.id, Step.PAYMENT),
        order_id=order.id,
        amount_cents=order.total_cents,
        currency=order.currency,
        token=order.payment_token,
    )
    return None


def send_confirmation(svc: ShopServices, order: Order) -> EffectRecord:
    # At least once: recorded after the server accepted it, so a crash in
    # between sends it again, under the same Message-ID.
    message = confirmation_email(order, svc.mail_from, svc.public_base_url)
    svc.mailer.send(message)
    return {
        "key": effect_key(order.id, Step.EMAIL),
        "order_id": order.id,
        "kind": "email",
        "detail": message["Message-ID"],
    }


def create_invoice(svc: ShopServices, order: Order) -> EffectRecord:
    # One file per order under a fixed name: a rerun rewrites it, never adds one.
    # Its number was issued by the checkpoint that started this step, so a rerun
    # prints the same one; an invoice without it would be no invoice at all.
    if order.invoice_number is None:
        raise PermanentError(f"order {order.id} has no invoice number")
    path = write_invoice(svc.invoice_dir, order, svc.invoice_fonts, svc.invoice_settings)
    return {"key": effect_key(order.id, Step.INVOICE), "order_id": order.id, "kind": "invoice", "detail": str(path)}


def notify_warehouse(svc: ShopServices, order: Order) -> EffectRecord:
    key = effect_key(order.id, Step.WAREHOUSE)
    svc.warehouse.notify(idempotency_key=key, shipment=shipment_of(order))
    return {"key": key, "order_id": order.id, "kind": "warehouse", "detail": None}


def shipment_of(order: Order) -> dict[str, object]:
    return {
        "order_id": order.id,
        "priority": order.priority,
        "ship_to": {"name": order.customer_name, **order.shipping_address},
        "lines": [{"sku": line.sku, "quantity": line.quantity} for line in order.lines],
    }


# The effects that run outside the database (inventory runs inside the checkpoint).
REMOTE_EFFECTS = {
    Step.PAYMENT: charge_payment,
    Step.EMAIL: send_confirmation,
    Step.INVOICE: create_invoice,
    Step.WAREHOUSE: notify_warehouse,
}


def record_effects(session: Executor, records: list[EffectRecord]) -> None:
    """One INSERT for all of a checkpoint's records; a repeat of an earlier one is ignored."""
    if records:
        insert_ignoring_duplicates(session, SideEffect, records)
