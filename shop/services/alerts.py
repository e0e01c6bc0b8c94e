"""Alerts to the operators: which incidents are open, and telling OPS_EMAIL / OPS_WEBHOOK_URL once per incident.

An incident is a condition, not an event: "orders need attention" (a step was
dead-lettered, or an order waits for a person), "the outbox backs up", "a
queue backs up". The workers' maintenance loop looks every ALERT_INTERVAL
seconds (``check_alerts``); a notice goes out when an incident opens, again
every ALERT_RENOTIFY_SECONDS while it stays open, and never per order: fifty
dead letters in one minute are one notice.

De-duplication lives in Redis, per incident kind and channel, as a key taken
with ``SET NX EX``: whoever takes it sends, a failed send gives it back so the
next look tries again. When an incident clears its keys are deleted, so the
next time it opens is a new incident with a notice of its own. Two leaders at
once (after a network split) still send one notice: only one takes the key.

``team_told`` is what lets a page say "our team has been told": only while a
notice about the open "orders need attention" incident has been delivered.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from email.mime.text import MIMEText
from email.utils import make_msgid
from typing import Any

import redis
from sqlalchemy import func, select

from shop.extensions import ShopServices
from shop.integrations import broker
from shop.integrations.warehouse import sign
from shop.models import Order, utcnow
from shop.services.admin import dead_letter_count
from shop.services.outbox import outbox_backlog
from shop.states import OrderStatus

log = logging.getLogger(__name__)

ATTENTION = "attention"
OUTBOX_BACKLOG = "outbox_backlog"
QUEUE_BACKLOG = "queue_backlog"
KINDS = (ATTENTION, OUTBOX_BACKLOG, QUEUE_BACKLOG)
KEY_PREFIX = "shop:alerts"
# Order ids quoted in a notice: enough to start with, the admin list has the rest.
QUOTED_ORDERS = 10
WEBHOOK_TIMEOUT = 5.0


@dataclass(frozen=True)
class AlertSettings:
    email: str
    webhook_url: str
    webhook_secret: str
    outbox_threshold: int
    queue_threshold: int
    renotify_seconds: int

    @classmethod
    def from_config(cls, config: Any) -> AlertSettings:
        return cls(
            email=config["OPS_EMAIL"],
            webhook_url=config["OPS_WEBHOOK_URL"],
            webhook_secret=config["OPS_WEBHOOK_SECRET"],
            outbox_threshold=config["OUTBOX_ALERT_THRESHOLD"],
            queue_threshold=config["QUEUE_ALERT_THRESHOLD"],
            renotify_seconds=max(1, int(config["ALERT_RENOTIFY_SECONDS"])),
        )

    @property
    def channels(self) -> list[str]:
        return [name for name, target in (("email", self.email), ("webhook", self.webhook_url)) if target]


@dataclass(frozen=True)
class Incident:
    kind: str
    summary: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Observation:
    """The incidents open now, and the kinds that could be judged (the broker may not answer)."""

    incidents: list[Incident]
    judged: set[str]


def observe(svc: ShopServices, broker_url: str, settings: AlertSettings) -> Observation:
    """Count what the incidents are made of: one short read transaction, then the broker."""
    with svc.db.begin() as session:
        dead = dead_letter_count(session)
        stuck = session.scalar(select(func.count()).where(Order.status == OrderStatus.NEEDS_ATTENTION)) or 0
        stuck_ids = list(
            session.scalars(
                select(Order.id)
                .where(Order.status == OrderStatus.NEEDS_ATTENTION)
                .order_by(Order.updated_at)
                .limit(QUOTED_ORDERS)
            )
        )
        backlog, oldest = outbox_backlog(session)
    incidents = []
    if dead or stuck:
        summary = f"{stuck} order(s) need attention, {dead} dead-lettered step(s)"
        incidents.append(Incident(ATTENTION, summary, {"orders": stuck, "dead_letters": dead, "order_ids": stuck_ids}))
    if backlog > settings.outbox_threshold:
        age = (utcnow() - oldest).total_seconds() if oldest else 0.0
        summary = f"the outbox holds {backlog} unpublished message(s), the oldest {age:.0f} s old"
        incidents.append(Incident(OUTBOX_BACKLOG, summary, {"unpublished": backlog, "oldest_seconds": round(age)}))
    judged = {ATTENTION, OUTBOX_BACKLOG}
    try:
        depths = broker.queue_depths(broker_url)
        depths.pop("in_flight", None)
        judged.add(QUEUE_BACKLOG)
    except redis.RedisError as exc:  # unknown is not "cleared": leave that incident as it is
        log.warning("alerts: queue depths unknown: %s", exc)
        depths = {}
    backed_up = {queue: waiting for queue, waiting in depths.items() if waiting > settings.queue_threshold}
    if backed_up:
        summary = "queue(s) backed up: " + ", ".join(f"{q} {n} waiting" for q, n in sorted(backed_up.items()))
        incidents.append(Incident(QUEUE_BACKLOG, summary, {"waiting": backed_up}))
    return Observation(incidents, judged)


def check_alerts(svc: ShopServices, broker_url: str, settings: AlertSettings) -> list[Incident]:
    """Tell the operators about incidents that opened (or are due a reminder); forget cleared ones.

    Returns the incidents told now. No network I/O happens inside the read transaction."""
    seen = observe(svc, broker_url, settings)
    _forget_cleared(svc.redis, seen.judged - {i.kind for i in seen.incidents})
    for incident in seen.incidents:
        if svc.redis.set(_key("open", incident.kind), utcnow().isoformat(), nx=True):
            log.warning("incident opened: %s", incident.summary, extra={"incident": incident.kind})
    if seen.incidents and not settings.channels:
        log.warning("alerts: no OPS_EMAIL or OPS_WEBHOOK_URL, nobody is told of %d incident(s)", len(seen.incidents))
    told: dict[str, Incident] = {}
    for channel in settings.channels:
        due = [i for i in seen.incidents if _claim(svc.redis, channel, i.kind, settings.renotify_seconds)]
        if due and _deliver(svc, settings, channel, due):
            told.update({i.kind: i for i in due})
        elif due:
            svc.redis.delete(*[_key("notice", i.kind, channel) for i in due])  # the next look tries again
    now = time.time()
    for kind in told:
        svc.redis.set(_key("told", kind), now)
    return list(told.values())


def team_told(client: redis.Redis) -> bool:
    """True while the open "orders need attention" incident has had a notice delivered.

    The incident covers every order stuck while it stays open, also those stuck
    after its notice: the notice sends the operators to the list that holds them."""
    try:
        return bool(client.exists(_key("told", ATTENTION)))
    except redis.RedisError:
        return False  # unknown: do not claim it


def _key(*parts: str) -> str:
    return ":".join((KEY_PREFIX, *parts))


def _claim(client: redis.Redis, channel: str, kind: str, renotify_seconds: int) -> bool:
    return bool(client.set(_key("notice", kind, channel), utcnow().isoformat(), nx=True, ex=renotify_seconds))


def _forget_cleared(client: redis.Redis, kinds: Iterable[str]) -> None:
    for kind in kinds:
        keys = [_key("open", kind), _key("told", kind), _key("notice", kind, "email"), _key("notice", kind, "webhook")]
        if client.delete(*keys):
            log.info("incident cleared: %s", kind, extra={"incident": kind})


def _deliver(svc: ShopServices, settings: AlertSettings, channel: str, incidents: list[Incident]) -> bool:
    try:
        if channel == "email":
            svc.mailer.send(_email(settings.email, svc.mail_from, incidents))
        else:
            _post(settings.webhook_url, settings.webhook_secret, _webhook_body(incidents))
    except Exception as exc:  # any failure: the claim is given back and the next look retries
        log.warning("alerts: %s notice not delivered: %s", channel, exc)
        return False
    log.info("alerts: %s notice sent about %s", channel, ", ".join(i.kind for i in incidents))
    return True


def _email(to: str, sender: str, incidents: list[Incident]) -> MIMEText:
    lines = [f"- {i.summary}" for i in incidents]
    quoted = [oid for i in incidents for oid in i.details.get("order_ids", [])]
    if quoted:
        lines += ["", "Orders waiting (oldest first):", *[f"  /admin/orders/{oid}" for oid in quoted]]
    lines += ["", "Dead letters: /admin/dead-letters · Queues: /admin/queues", ""]
    lines.append("You get one notice per incident, and a reminder while it stays open.")
    message = MIMEText("\n".join(lines), "plain", "utf-8")
    message["From"] = sender
    message["To"] = to
    message["Subject"] = "[shop] " + "; ".join(i.summary for i in incidents)
    message["Message-ID"] = make_msgid(domain="shop")
    return message


def _webhook_body(incidents: list[Incident]) -> bytes:
    payload = {"event": "shop.alert", "sent_at": utcnow().isoformat(), "incidents": [asdict(i) for i in incidents]}
    return json.dumps(payload, sort_keys=True).encode()


def _post(url: str, secret: str, body: bytes) -> None:
    # Signed like the warehouse calls (one ``sign``), so a receiver checks both with
    # one function and refuses a replayed old notice.
    timestamp, key = str(int(time.time())), f"alert-{uuid.uuid4()}"
    headers = {
        "Content-Type": "application/json",
        "Idempotency-Key": key,
        "X-Shop-Timestamp": timestamp,
        "X-Shop-Signature": sign(secret, timestamp, key, body),
    }
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT) as response:  # raises on 4xx/5xx
        response.read()
