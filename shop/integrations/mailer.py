"""Outgoing mail: a local maildir by default, SMTP when SMTP_URL is set.

SMTP over TLS verifies the server's certificate and host name against the
system's trust store (or SMTP_CA_FILE), and credentials only ever travel
inside TLS: a URL that would send them in clear text is refused at start-up.
"""

from __future__ import annotations

import mailbox
import smtplib
import ssl
from email.message import Message
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from shop.errors import PermanentError, TransientError
from shop.pipeline import budget


class Mailer(Protocol):
    def send(self, message: Message) -> None: ...


class MaildirMailer:
    """Writes each message into a maildir (readable with mutt, or any mail client)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._maildir: mailbox.Maildir | None = None

    def send(self, message: Message) -> None:
        if self._maildir is None:  # made once per process
            # Its folders made race-free: mailbox's own create fails with
            # FileExistsError when two processes or threads make them at once.
            for folder in ("tmp", "new", "cur"):
                Path(self.path, folder).mkdir(parents=True, exist_ok=True)
            self._maildir = mailbox.Maildir(self.path, create=False)
        self._maildir.add(message)


def tls_context(ca_file: str = "") -> ssl.SSLContext:
    """Certificate and host name verified; ``ca_file`` replaces the system's trust store."""
    return ssl.create_default_context(cafile=ca_file or None)


class SmtpMailer:
    """``smtp://user:pass@host:port`` (STARTTLS with ``?starttls=1``) or ``smtps://``."""

    def __init__(self, url: str, ca_file: str = "", timeout: float = 10.0) -> None:
        self.parts = urlsplit(url)
        if self.parts.scheme not in ("smtp", "smtps"):
            raise RuntimeError(f"SMTP_URL must start with smtp:// or smtps://, got {self.parts.scheme or url!r}")
        self.implicit_tls = self.parts.scheme == "smtps"
        self.starttls = parse_qs(self.parts.query).get("starttls", ["0"])[-1].lower() in ("1", "true", "yes")
        if self.parts.username and not (self.implicit_tls or self.starttls):
            raise RuntimeError(
                "SMTP_URL has credentials but no TLS: they would cross the network in clear text. "
                "Use smtps:// or add ?starttls=1"
            )
        # Made once: loading the trust store costs milliseconds, and a missing
        # SMTP_CA_FILE is then a start-up error instead of a failing step.
        self.context = tls_context(ca_file) if self.implicit_tls or self.starttls else None
        self.timeout = timeout

    def send(self, message: Message) -> None:
        p = self.parts
        try:
            with self._connect() as smtp:
                if self.starttls:
                    # Fails (SMTPNotSupportedError) when the server does not offer it:
                    # never fall back to clear text.
                    smtp.starttls(context=self.context)
                if p.username:
                    if not isinstance(smtp.sock, ssl.SSLSocket):  # the constructor's rule, kept where it matters
                        raise PermanentError("refusing to send SMTP credentials without TLS")
                    smtp.login(unquote(p.username), unquote(p.password or ""))
                smtp.send_message(message)
        except smtplib.SMTPResponseException as exc:
            # 4xx: try again later; 5xx: the server refuses this message for good.
            if 400 <= exc.smtp_code < 500:
                raise TransientError(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}") from exc
            raise PermanentError(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}") from exc
        except ssl.SSLCertVerificationError as exc:
            # Retried like any outage (the certificate may be being renewed), and
            # named plainly in the step's error for whoever reads the dead letter.
            raise TransientError(f"SMTP server certificate refused: {exc.verify_message}") from exc
        except (TimeoutError, smtplib.SMTPException, OSError) as exc:
            raise TransientError(f"SMTP unavailable: {exc}") from exc

    def _connect(self) -> smtplib.SMTP:
        host, port, timeout = self.parts.hostname or "localhost", self.parts.port, budget.timeout(self.timeout)
        if self.implicit_tls:
            return smtplib.SMTP_SSL(host, port or 465, timeout=timeout, context=self.context)
        return smtplib.SMTP(host, port or 25, timeout=timeout)


def make_mailer(smtp_url: str, maildir: str, ca_file: str = "") -> Mailer:
    return SmtpMailer(smtp_url, ca_file) if smtp_url else MaildirMailer(maildir)
