"""Invoice PDFs: one file per order, written atomically under INVOICE_DIR.

The document: the seller (SELLER_NAME, SELLER_ADDRESS, SELLER_VAT_ID), the
invoice number (INVOICE_PREFIX + the order's gapless number, issued by
shop/pipeline/invoice_numbers.py) and date, the order, bill-to and ship-to, the
lines, and net, tax and gross. Catalog prices include tax (what the card is
charged): the tax is the gross total's share at TAX_RATE_PERCENT, rounded half
up to the cent once per invoice, and net is the rest, so net + tax is exactly
what was charged.

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
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from fpdf import FPDF
from fpdf.fonts import CoreFont

from shop.countries import COUNTRIES
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


@dataclass(frozen=True)
class InvoiceSettings:
    """Who issues the invoice, at which tax rate, under which number prefix."""

    seller_name: str = "Example Shop Ltd"
    seller_address: tuple[str, ...] = ("1 Example Street", "London N1 9GU", "United Kingdom")
    seller_vat_id: str = ""
    tax_rate_percent: Decimal = Decimal(0)
    prefix: str = "INV-"

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> InvoiceSettings:
        """SELLER_NAME, SELLER_ADDRESS (lines split at a newline, a literal \\n or |),
        SELLER_VAT_ID, TAX_RATE_PERCENT, INVOICE_PREFIX; a bad rate stops the start."""
        default = cls()
        return cls(
            seller_name=config.get("SELLER_NAME", default.seller_name),
            seller_address=_address_lines(config.get("SELLER_ADDRESS", "|".join(default.seller_address))),
            seller_vat_id=config.get("SELLER_VAT_ID", ""),
            tax_rate_percent=tax_rate(str(config.get("TAX_RATE_PERCENT", "0"))),
            prefix=config.get("INVOICE_PREFIX", default.prefix),
        )

    def number(self, order: Order) -> str:
        return f"{self.prefix}{order.invoice_number:06d}" if order.invoice_number is not None else "(not issued)"


def _address_lines(text: str) -> tuple[str, ...]:
    return tuple(line.strip() for line in re.split(r"\r?\n|\\n|\|", text) if line.strip())


def tax_rate(text: str) -> Decimal:
    """TAX_RATE_PERCENT: 0 (no tax shown as due) up to, not including, 100."""
    try:
        rate = Decimal(text.strip() or "0")
    except InvalidOperation:
        rate = Decimal(-1)
    if not rate.is_finite() or not 0 <= rate < 100:
        raise ValueError(f"TAX_RATE_PERCENT={text!r}: want a number from 0 to below 100, e.g. 20 or 7.7")
    return rate


@dataclass(frozen=True)
class Totals:
    net_cents: int
    tax_cents: int
    gross_cents: int


def tax_included(gross_cents: int, rate_percent: Decimal) -> Totals:
    """Split a tax-inclusive total: tax = gross × rate / (100 + rate), half up to the cent."""
    tax = (Decimal(gross_cents) * rate_percent / (100 + rate_percent)).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return Totals(gross_cents - int(tax), int(tax), gross_cents)


def invoice_path(invoice_dir: str, order_id: str) -> Path:
    return Path(invoice_dir) / f"{order_id}.pdf"


def _money(cents: int, currency: str) -> str:
    units, rest = divmod(cents, 100)
    return f"{units:,}.{rest:02d} {currency}"


def _percent(rate: Decimal) -> str:
    return f"{rate.normalize():f} %"


def _fits_latin1(texts: Iterable[str]) -> bool:
    try:
        for text in texts:
            text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def _postal_lines(address: Mapping[str, Any]) -> list[str]:
    country = str(address.get("country", ""))
    lines = [
        address.get("line1", ""),
        address.get("line2", ""),
        f"{address.get('postal_code', '')} {address.get('city', '')}",
    ]
    return [str(line).strip() for line in [*lines, COUNTRIES.get(country, country)] if str(line).strip()]


@dataclass(frozen=True)
class _Blocks:
    """Every text the invoice prints besides numbers: what decides the fonts."""

    seller: list[str]
    bill_to: list[str]
    ship_to: list[str]

    @classmethod
    def of(cls, order: Order, settings: InvoiceSettings) -> _Blocks:
        vat = [f"VAT ID {settings.seller_vat_id}"] if settings.seller_vat_id else []
        postal = _postal_lines(order.shipping_address or {})
        return cls(
            [*settings.seller_address, *vat],
            [order.customer_name, order.customer_email, *postal],
            [order.customer_name, *postal],
        )

    def texts(self, order: Order, settings: InvoiceSettings) -> list[str]:
        return [
            settings.seller_name,
            settings.prefix,
            *self.seller,
            *self.bill_to,
            *(line.name for line in order.lines),
        ]


def _use_fonts(pdf: FPDF, texts: Iterable[str], fonts: InvoiceFonts) -> str:
    """The font family for this invoice: Helvetica, or the TrueType fonts when the text needs them."""
    if _fits_latin1(texts):
        return "Helvetica"
    fonts.check()  # fpdf2 would raise a bare FileNotFoundError: name the fix instead
    pdf.add_font("InvoiceSans", "", fonts.regular)
    pdf.add_font("InvoiceSans", "B", fonts.bold)
    pdf.add_font("InvoiceFallback", "", fonts.fallback)
    pdf.set_fallback_fonts(["InvoiceFallback"], exact_match=False)
    pdf.set_text_shaping(True)
    return "InvoiceSans"


def render_invoice(order: Order, fonts: InvoiceFonts | None = None, settings: InvoiceSettings | None = None) -> bytes:
    settings = settings or InvoiceSettings()
    blocks = _Blocks.of(order, settings)
    pdf = FPDF()
    family = _use_fonts(pdf, blocks.texts(order, settings), fonts or InvoiceFonts())
    pdf.add_page()
    _header(pdf, family, order, settings, blocks)
    _addresses(pdf, family, blocks)
    _lines(pdf, family, order)
    _totals(pdf, family, order, settings)
    return bytes(pdf.output())


# Where a cell leaves the cursor: to its right, below it, or at the left margin below it.
_NEXT = {"right": ("RIGHT", "TOP"), "below": ("LEFT", "NEXT"), "margin": ("LMARGIN", "NEXT")}


def _cell(
    pdf: FPDF,
    width: float,
    height: float,
    text: str,
    align: str = "L",
    border: str = "",
    then: str = "right",
    wrap: bool = False,
) -> None:
    """``FPDF.cell`` for one line, at a fraction of its cost with a core font.

    With Helvetica the text is placed where ``cell`` would place it (baseline at
    half the height plus 0.3 of the font size, ``c_margin`` from the edge it is
    aligned to) by ``FPDF.text``: ``cell`` went through fpdf2's styled-line
    machinery and took 1.0 of the 1.7 ms an invoice cost (cProfile, fpdf2 2.8);
    now an invoice takes 0.63 ms.
    With ``wrap``, a line too wide wraps with ``multi_cell`` (which cost half
    the rendering time when used for every line); embedded TrueType fonts
    keep ``cell``, which shapes.
    """
    font = pdf.current_font
    if isinstance(font, CoreFont):  # a table lookup; get_string_width took a third of the render
        text_width = font.get_text_width(text, pdf.font_size_pt, None)[1] / pdf.k
    else:
        text_width = pdf.get_string_width(text)
    if wrap and text_width > width - 2 * pdf.c_margin:
        pdf.multi_cell(width, height, text, border=border, align=align, new_x="LEFT", new_y="NEXT")
        if then == "margin":
            pdf.set_x(pdf.l_margin)
        return
    if not isinstance(font, CoreFont):  # TrueType: cell shapes the text
        new_x, new_y = _NEXT[then]
        pdf.cell(width, height, text, border=border, align=align, new_x=new_x, new_y=new_y)
        return
    x, y = pdf.get_x(), pdf.get_y()
    dx = width - pdf.c_margin - text_width if align == "R" else pdf.c_margin
    if text:
        pdf.text(x + dx, y + 0.5 * height + 0.3 * pdf.font_size, text)
    if "T" in border:
        pdf.line(x, y, x + width, y)
    if "B" in border:
        pdf.line(x, y + height, x + width, y + height)
    if then == "right":
        pdf.set_x(x + width)
    else:
        pdf.set_xy(pdf.l_margin if then == "margin" else x, y + height)


def _header(pdf: FPDF, family: str, order: Order, settings: InvoiceSettings, blocks: _Blocks) -> None:
    """The seller on the left; the invoice's number, date and order on the right."""
    top = pdf.get_y()
    pdf.set_font(family, "B", 12)
    _cell(pdf, 110, 6, settings.seller_name, then="below", wrap=True)
    pdf.set_font(family, size=9)
    for line in blocks.seller:
        _cell(pdf, 110, 5, line, then="below", wrap=True)
    seller_bottom = pdf.get_y()
    pdf.set_xy(130, top)
    pdf.set_font(family, "B", 18)
    _cell(pdf, 70, 10, "Invoice", align="R", then="below")
    pdf.set_font(family, size=9)
    issued = order.invoiced_at or order.created_at
    for label, value in (
        ("Invoice number", settings.number(order)),
        ("Invoice date", f"{issued:%Y-%m-%d}"),
        ("Order", order.id),
    ):
        _cell(pdf, 70, 5, f"{label}: {value}", align="R", then="below")
    pdf.set_xy(pdf.l_margin, max(seller_bottom, pdf.get_y()) + 8)


def _addresses(pdf: FPDF, family: str, blocks: _Blocks) -> None:
    top, bottom = pdf.get_y(), pdf.get_y()
    for x, title, lines in ((pdf.l_margin, "Bill to", blocks.bill_to), (110.0, "Ship to", blocks.ship_to)):
        pdf.set_xy(x, top)
        pdf.set_font(family, "B", 10)
        _cell(pdf, 85, 6, title, then="below")
        pdf.set_font(family, size=10)
        for line in lines:
            _cell(pdf, 85, 5, line, then="below", wrap=True)
        bottom = max(bottom, pdf.get_y())
    pdf.set_xy(pdf.l_margin, bottom + 8)


_COLUMNS = (("Description", 90, "L"), ("Qty", 20, "R"), ("Unit price", 40, "R"), ("Total", 40, "R"))


def _lines(pdf: FPDF, family: str, order: Order) -> None:
    pdf.set_font(family, "B", 10)
    for title, width, align in _COLUMNS:
        _cell(pdf, width, 8, title, align=align, border="B")
    pdf.ln(8)
    pdf.set_font(family, size=10)
    for line in order.lines:
        cells = (line.name[:50], str(line.quantity), _money(line.unit_price_cents, order.currency))
        for (_, width, align), text in zip(_COLUMNS, cells, strict=False):
            _cell(pdf, width, 7, text, align=align)
        _cell(pdf, 40, 7, _money(line.total_cents, order.currency), align="R", then="margin")


def _totals(pdf: FPDF, family: str, order: Order, settings: InvoiceSettings) -> None:
    totals = tax_included(order.total_cents, settings.tax_rate_percent)
    rows = (
        ("Net", totals.net_cents, ""),
        (f"Tax {_percent(settings.tax_rate_percent)}", totals.tax_cents, ""),
        ("Total (tax included)", totals.gross_cents, "B"),
    )
    pdf.ln(2)
    for label, cents, style in rows:
        pdf.set_font(family, style, 10)
        _cell(pdf, 150, 7, label, align="R", border="T" if style else "")
        _cell(pdf, 40, 7, _money(cents, order.currency), align="R", border="T" if style else "", then="margin")
    pdf.set_font(family, size=8)
    pdf.ln(4)
    _cell(pdf, pdf.epw, 5, "Prices include tax.", then="margin")


def write_invoice(
    invoice_dir: str, order: Order, fonts: InvoiceFonts | None = None, settings: InvoiceSettings | None = None
) -> Path:
    """Write (or rewrite, byte-identical in content) the order's invoice; return its path.

    Temp file + rename: a crash mid-write never leaves a half PDF under the
    final name, and a redelivered step overwrites rather than adds a second.
    """
    path = invoice_path(invoice_dir, order.id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(render_invoice(order, fonts, settings))
    os.replace(tmp, path)
    return path
