"""The demo catalog loaded by ``flask --app shop seed``."""

from __future__ import annotations

from typing import Any

DEMO_CATALOG: dict[str, dict[str, Any]] = {
    "MUG-001": {"name": "Enamel mug", "price_cents": 1200, "stock": 100},
    "MUG-002": {"name": "Stoneware mug", "price_cents": 1600, "stock": 60},
    "TEE-001": {"name": "Organic cotton T-shirt", "price_cents": 2500, "stock": 80},
    "TEE-002": {"name": "Long-sleeve T-shirt", "price_cents": 3200, "stock": 40},
    "CAP-001": {"name": "Canvas cap", "price_cents": 1900, "stock": 50},
    "BAG-001": {"name": "Tote bag", "price_cents": 1500, "stock": 120},
    "NB-001": {"name": "Dot-grid notebook", "price_cents": 900, "stock": 200},
    "PEN-001": {"name": "Brass pen", "price_cents": 4500, "stock": 30},
    "STK-001": {"name": "Sticker pack", "price_cents": 500, "stock": 500},
    "PST-001": {"name": "Risograph poster", "price_cents": 2800, "stock": 25},
    "SOC-001": {"name": "Merino socks", "price_cents": 1400, "stock": 90},
    "LMP-001": {"name": "Desk lamp", "price_cents": 7900, "stock": 5},
}
