"""Invoice PDFs: one file per order, written atomically under INVOICE_DIR."""

from __future__ import annotations

import os
from pathlib import Path

from fpdf import FPDF

from shop.models import Order


def invoice_path(invoice_dir: str, order_id: str) -> Path:
    return Path(invoice_dir) / f"{order_id}.pdf"


def _money(cents: int, currency: str) -> str:
    return f"{cents / 100:,.2f} {currency}"


def render_invoice(order: Order) -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 18)
    pdf.cell(0, 12, "Invoice", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=10)
    pdf.cell(0, 6, f"Order {order.id}", new_x="LMARGIN", new_y="NEXT")
    pdf.cell(0, 6, f"Date {order.created_at:%Y-%m-%d}", new_x="LMARGIN", new_y="NEXT")
    pdf.cell(0, 6, f"Bill to {order.customer_name}", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    pdf.set_font("Helvetica", "B", 10)
    for text, width in (("Item", 90), ("Qty", 20), ("Unit", 40), ("Total", 40)):
        pdf.cell(width, 8, text, border="B")
    pdf.ln()
    pdf.set_font("Helvetica", size=10)
    for line in order.lines:
        pdf.cell(90, 7, line.name[:50])
        pdf.cell(20, 7, str(line.quantity))
        pdf.cell(40, 7, _money(line.unit_price_cents, order.currency))
        pdf.cell(40, 7, _money(line.total_cents, order.currency), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "B", 11)
    pdf.cell(150, 10, "Total", border="T")
    pdf.cell(40, 10, _money(order.total_cents, order.currency), border="T")
    return bytes(pdf.output())


def write_invoice(invoice_dir: str, order: Order) -> Path:
    """Write (or rewrite, byte-identical in content) the order's invoice; return its path.

    Temp file + rename: a crash mid-write never leaves a half PDF under the
    final name, and a redelivered step overwrites rather than adds a second.
    """
    path = invoice_path(invoice_dir, order.id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(render_invoice(order))
    os.replace(tmp, path)
    return path
