"""schemathesis hooks for the fuzz run (loaded through SCHEMATHESIS_HOOKS by tests/integration/test_openapi_fuzz.py).

A generated SKU is almost never in the catalog, nor a generated two-letter code
a country, and either is refused (422) before the other fields matter: a NUL in
the name, or a name nobody can see, would never reach the code that must refuse
it. So a SKU or a country that fits the schema becomes one the shop knows; one
that does not fit stays, as schemathesis's negative data.
"""

from __future__ import annotations

import re
from typing import Any

import schemathesis

from shop.services.catalog import DEMO_CATALOG

CATALOG = list(DEMO_CATALOG)
SKU = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
COUNTRY = re.compile(r"[A-Z]{2}")


def _fits(value: Any, pattern: re.Pattern[str]) -> bool:
    return isinstance(value, str) and pattern.fullmatch(value) is not None


@schemathesis.hook
def before_call(ctx: Any, case: Any, **kwargs: Any) -> None:
    if case.operation.path != "/orders" or not isinstance(case.body, dict):
        return
    items = case.body.get("items")
    for index, item in enumerate(items if isinstance(items, list) else []):
        if isinstance(item, dict) and _fits(item.get("sku"), SKU):
            item["sku"] = CATALOG[index % len(CATALOG)]
    address = case.body.get("shipping_address")
    if isinstance(address, dict) and _fits(address.get("country"), COUNTRY):
        address["country"] = "GB"
