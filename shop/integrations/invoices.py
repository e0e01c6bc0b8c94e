"""Invoice PDFs: one file per order, written atomically under INVOICE_DIR.

PDF's built-in fonts (Helvetica) cover Latin-1 only. An invoice whose text
fits them uses them; one naming a customer or product in any other alphabet
embeds TrueType fonts instead: INVOICE_FONT (Latin, Polish, Arabic, ...) with
INVOICE_FALLBACK_FONT for the glyphs it lacks (Chinese, Japanese, Korean),
shaped by HarfBuzz so Arabic letters join and run right to left.
Embedding costs: 0.5 ms per invoice with Helvetica, about 270 ms with the
fonts parsed and subset (measured with fpdf2 2.8), so only the invoices that
need them pay for them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fpdf import FPDF

from shop.errors import PermanentError
from shop.models import Order

# Debian's packages: fonts-dejavu-core and fonts-droid-fallback (installed by
# scripts/ensure-services.sh, scripts/run.sh and the Dockerfile).
DEFAULT_FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
DEFAULT_BOLD_FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
DEFAULT_FALLBACK_FONT = "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf"


class InvoiceFontsMissing(PermanentError):
    """Retrying cannot install a font: dead-letter the step, replay it once the fonts are there."""


@dataclass(frozen=True)
class InvoiceFonts:
    regular: str = DEFAULT_FONT
    bold: str = DEFAULT_BOLD_FONT
    fallback: str = DEFAULT_FALLBACK_FONT

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> InvoiceFonts:
        """INVOICE_FONT, INVOICE_BOLD_FONT, INVOICE_FALLBACK_FONT; empty: Debian's paths."""
        return cls(
            config.get("INVOICE_FONT") or DEFAULT_FONT,
            config.get("INVOICE_BOLD_FONT") or DEFAULT_BOLD_FONT,
            config.get("INVOICE_FALLBACK_FONT") or DEFAULT_FALLBACK_FONT,
        )

    def check(self) -> None:
        missing = [path for path in (self.regular, self.bold, self.fallback) if not Path(path).is_file()]
        if missing:
            raise InvoiceFontsMissing(
                f"invoice fonts missing: {', '.join(missing)}; install fonts-dejavu-core and fonts-droid-fallback "
                "or point INVOICE_FONT, INVOICE_BOLD_FONT and INVOICE_FALLBACK_FONT at TrueType fonts"
            )


def invoice_path(invoice_dir: str, order_id: str) -> Path:
    return Path(invoice_dir) / f"{order_id}.pdf"


def _money(cents: int, currency: str) -> str:
    return f"{cents / 100:,.2f} {currency}"


def _fits_latin1(texts: Iterable[str]) -> bool:
    try:
        for text in texts:
            text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def _use_fonts(pdf: FPDF, order: Order, fonts: InvoiceFonts) -> str:
    """The font family for this invoice: Helvetica, or the TrueType fonts when the text needs them."""
    if _fits_latin1([order.customer_name, *(line.name for line in order.lines)]):
        return "Helvetica"
    fonts.check()  # fpdf2 would raise a bare FileNotFoundError: name the fix instead
    pdf.add_font("InvoiceSans", "", fonts.regular)
    pdf.add_font("InvoiceSans", "B", fonts.bold)
    pdf.add_font("InvoiceFallback", "", fonts.fallback)
    pdf.set_fallback_fonts(["InvoiceFallback"], exact_match=False)
    pdf.set_text_shaping(True)
    return "InvoiceSans"


def render_invoice(order: Order, fonts: InvoiceFonts | None = None) -> bytes:
    pdf = FPDF()
    family = _use_fonts(pdf, order, fonts or InvoiceFonts())
    pdf.add_page()
    pdf.set_font(family, "B", 18)
    pdf.cell(0, 12, "Invoice", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(family, size=10)
    pdf.cell(0, 6, f"Order {order.id}", new_x="LMARGIN", new_y="NEXT")
    pdf.cell(0, 6, f"Date {order.created_at:%Y-%m-%d}", new_x="LMARGIN", new_y="NEXT")
    pdf.cell(0, 6, f"Bill to {order.customer_name}", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    pdf.set_font(family, "B", 10)
    for text, width in (("Item", 90), ("Qty", 20), ("Unit", 40), ("Total", 40)):
        pdf.cell(width, 8, text, border="B")
    pdf.ln()
    pdf.set_font(family, size=10)
    for line in order.lines:
        pdf.cell(90, 7, line.name[:50])
        pdf.cell(20, 7, str(line.quantity))
        pdf.cell(40, 7, _money(line.unit_price_cents, order.currency))
        pdf.cell(40, 7, _money(line.total_cents, order.currency), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(family, "B", 11)
    pdf.cell(150, 10, "Total", border="T")
    pdf.cell(40, 10, _money(order.total_cents, order.currency), border="T")
    return bytes(pdf.output())


def write_invoice(invoice_dir: str, order: Order, fonts: InvoiceFonts | None = None) -> Path:
    """Write (or rewrite, byte-identical in content) the order's invoice; return its path.

    Temp file + rename: a crash mid-write never leaves a half PDF under the
    final name, and a redelivered step overwrites rather than adds a second.
    """
    path = invoice_path(invoice_dir, order.id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(render_invoice(order, fonts))
    os.replace(tmp, path)
    return path
