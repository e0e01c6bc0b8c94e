"""Settings read from the environment, with the embedded defaults of DESIGN.md."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# ASVS 2.1: a bearer token must be long enough that guessing it is hopeless,
# even before the per-client limit on failed attempts.
MIN_ADMIN_TOKEN_LENGTH = 32


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise RuntimeError(f"{name} must be a number, got {raw!r}") from exc


def _public_base_url() -> str:
    """Where shoppers reach the site: every link in an email starts with it."""
    url = os.environ.get("PUBLIC_BASE_URL") or "http://127.0.0.1:5000"
    if not url.lower().startswith(("http://", "https://")):
        raise RuntimeError(f"PUBLIC_BASE_URL must be an absolute http(s) URL, got {url!r}")
    return url.rstrip("/")


def from_environment() -> dict[str, Any]:
    """Build the Flask config mapping from environment variables."""
    var_dir = Path(os.environ.get("SHOP_VAR_DIR", PROJECT_ROOT / "var"))
    redis_url = os.environ.get("REDIS_URL", "redis://localhost:6379/0")
    return {
        # No random fallback: each gunicorn process would invent its own key, and
        # a session or CSRF token signed by one would fail in the others.
        "SECRET_KEY": os.environ.get("SECRET_KEY", ""),
        "DATABASE_URL": os.environ.get("DATABASE_URL", f"sqlite:///{var_dir / 'shop.db'}"),
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": os.environ.get("CELERY_BROKER_URL", redis_url),
        "CELERY_RESULT_BACKEND": os.environ.get("CELERY_RESULT_BACKEND", redis_url),
        "ADMIN_TOKEN": os.environ.get("ADMIN_TOKEN", ""),
        "ADMIN_SESSION_MAX_AGE_SECONDS": _float("ADMIN_SESSION_MAX_AGE_SECONDS", 8 * 3600.0),
        "ADMIN_SESSION_IDLE_SECONDS": _float("ADMIN_SESSION_IDLE_SECONDS", 30 * 60.0),
        "ADMIN_AUTH_FAILURES_PER_MINUTE": int(_float("ADMIN_AUTH_FAILURES_PER_MINUTE", 5)),
        # Bearer token for GET /metrics; unset: /metrics is closed (403), like the admin.
        "METRICS_TOKEN": os.environ.get("METRICS_TOKEN", ""),
        "METRICS_CACHE_SECONDS": _float("METRICS_CACHE_SECONDS", 5.0),
        "SIMULATED_LATENCY_SCALE": _float("SIMULATED_LATENCY_SCALE", 1.0),
        "FAULTS": os.environ.get("FAULTS", ""),
        "SMTP_URL": os.environ.get("SMTP_URL", ""),
        "SMTP_CA_FILE": os.environ.get("SMTP_CA_FILE", ""),  # empty: the system's trust store
        # TrueType fonts for invoices outside Latin-1; empty: Debian's (shop/integrations/invoices.py).
        "INVOICE_FONT": os.environ.get("INVOICE_FONT", ""),
        "INVOICE_BOLD_FONT": os.environ.get("INVOICE_BOLD_FONT", ""),
        "INVOICE_FALLBACK_FONT": os.environ.get("INVOICE_FALLBACK_FONT", ""),
        # The invoice's seller, tax and number (shop/integrations/invoices.py, README's table).
        "SELLER_NAME": os.environ.get("SELLER_NAME", "Example Shop Ltd"),
        "SELLER_ADDRESS": os.environ.get("SELLER_ADDRESS", "1 Example Street|London N1 9GU|United Kingdom"),
        "SELLER_VAT_ID": os.environ.get("SELLER_VAT_ID", ""),
        # 0 until the operator says otherwise: the shop cannot know its jurisdiction,
        # and a made-up rate would misstate the tax owed on a legal document.
        "TAX_RATE_PERCENT": os.environ.get("TAX_RATE_PERCENT", "0"),
        "INVOICE_PREFIX": os.environ.get("INVOICE_PREFIX", "INV-"),
        "WAREHOUSE_URL": os.environ.get("WAREHOUSE_URL", ""),
        "WAREHOUSE_SECRET": os.environ.get("WAREHOUSE_SECRET", ""),
        "MAIL_FROM": os.environ.get("MAIL_FROM", "shop@example.com"),
        "PUBLIC_BASE_URL": _public_base_url(),
        "VAR_DIR": str(var_dir),
        "INVOICE_DIR": os.environ.get("INVOICE_DIR", str(var_dir / "invoices")),
        "MAILDIR": os.environ.get("MAILDIR", str(var_dir / "mail")),
        "MAX_CONTENT_LENGTH": int(os.environ.get("MAX_BODY_BYTES", 64 * 1024)),
        "RATE_LIMIT_PER_MINUTE": int(os.environ.get("RATE_LIMIT_PER_MINUTE", 600)),
        # TLS in front: https turns on secure cookies and HSTS (shop/web/transport.py).
        "PREFERRED_URL_SCHEME": os.environ.get("PREFERRED_URL_SCHEME")
        or ("https" if os.environ.get("PUBLIC_BASE_URL", "").lower().startswith("https://") else "http"),
        "TRUSTED_PROXIES": int(os.environ.get("TRUSTED_PROXIES", 0)),
        "FLOWER_URL": os.environ.get("FLOWER_URL", "http://localhost:5555"),
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"),
        # Shared by all workers through Redis (shop.integrations.rate_limit / circuit_breaker).
        "WAREHOUSE_RATE_PER_SECOND": _float("WAREHOUSE_RATE_PER_SECOND", 50.0),
        "WAREHOUSE_RATE_BURST": _float("WAREHOUSE_RATE_BURST", 0.0),  # 0: one second's worth
        "WAREHOUSE_RATE_MAX_WAIT_SECONDS": _float("WAREHOUSE_RATE_MAX_WAIT_SECONDS", 1.0),
        "PAYMENT_BREAKER_THRESHOLD": int(_float("PAYMENT_BREAKER_THRESHOLD", 5)),
        "PAYMENT_BREAKER_RESET_SECONDS": _float("PAYMENT_BREAKER_RESET_SECONDS", 30.0),
        # Operator alerts (shop.services.alerts), checked by the workers' maintenance loop.
        "OPS_EMAIL": os.environ.get("OPS_EMAIL", ""),
        "OPS_WEBHOOK_URL": os.environ.get("OPS_WEBHOOK_URL", ""),
        "OPS_WEBHOOK_SECRET": os.environ.get("OPS_WEBHOOK_SECRET", ""),
        "OUTBOX_ALERT_THRESHOLD": int(_float("OUTBOX_ALERT_THRESHOLD", 100)),
        "QUEUE_ALERT_THRESHOLD": int(_float("QUEUE_ALERT_THRESHOLD", 1000)),
        "ALERT_RENOTIFY_SECONDS": int(_float("ALERT_RENOTIFY_SECONDS", 3600)),
    }


def check_secrets(config: Mapping[str, Any]) -> None:
    """Refuse to start without a shared SECRET_KEY or with an ADMIN_TOKEN short enough to guess."""
    if not config.get("SECRET_KEY"):
        raise RuntimeError(
            "SECRET_KEY is not set. Every web and worker process must share one key, or sessions and CSRF "
            "tokens fail at random: generate one with `python3 -c 'import secrets; print(secrets.token_hex(32))'` "
            "and export SECRET_KEY (`make run` keeps one in var/secret-key)."
        )
    token = config.get("ADMIN_TOKEN") or ""
    if token and len(token) < MIN_ADMIN_TOKEN_LENGTH:
        raise RuntimeError(
            f"ADMIN_TOKEN is {len(token)} characters long; it must have at least {MIN_ADMIN_TOKEN_LENGTH}. "
            "Generate one with `python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`, "
            "or unset ADMIN_TOKEN to keep the admin closed."
        )
