"""The countries an order can ship to: ISO 3166-1 alpha-2 codes with the names shoppers know.

From pycountry, which follows the ISO 3166 maintenance agency's changes (new
codes, renamed countries), so the checkout list and the API's validation
never drift from the standard and nobody keeps 249 names by hand. The short
``common_name`` ("Bolivia", "Iran") is used where ISO's name is a formal one.
"""

from __future__ import annotations

import unicodedata

import pycountry


def _sort_key(name: str) -> str:
    # "Åland Islands" sorts with the A's, not after "Zimbabwe".
    return unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().casefold()


def _countries() -> dict[str, str]:
    names = {c.alpha_2: getattr(c, "common_name", None) or c.name for c in pycountry.countries}
    return dict(sorted(names.items(), key=lambda item: _sort_key(item[1])))


# Code -> name, in alphabetical order of the names (the order of the checkout's list).
COUNTRIES: dict[str, str] = _countries()
COUNTRY_CODES = frozenset(COUNTRIES)


def known_country(code: str) -> str:
    """``code`` if it is an assigned ISO 3166-1 alpha-2 code (a pydantic validator)."""
    if code not in COUNTRY_CODES:
        raise ValueError("not an ISO 3166-1 alpha-2 country code")
    return code
