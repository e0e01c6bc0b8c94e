"""Unit tests see the production defaults, whatever a stack elsewhere in the session set."""

from __future__ import annotations

import pytest

SCALES = ("RETRY_BACKOFF_SCALE", "STEP_TIME_LIMIT_SCALE")


@pytest.fixture(autouse=True)
def production_scales(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SCALES:
        monkeypatch.delenv(name, raising=False)
