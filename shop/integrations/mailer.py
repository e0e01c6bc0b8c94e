"""Outgoing mail: a local maildir by default, SMTP when SMTP_URL is set."""

from __future__ import annotations

import mailbox
import smtplib
from email.message import Message
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

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


class SmtpMailer:
    """``smtp://user:pass@host:port`` (STARTTLS with ``?starttls=1``) or ``smtps://``."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.parts = urlsplit(url)
        self.timeout = timeout

    def send(self, message: Message) -> None:
        p = self.parts
        client_class = smtplib.SMTP_SSL if p.scheme == "smtps" else smtplib.SMTP
        try:
            with client_class(p.hostname or "localhost", p.port or 25, timeout=budget.timeout(self.timeout)) as smtp:
                if "starttls=1" in (p.query or ""):
                    smtp.starttls()
                if p.username:
                    smtp.login(unquote(p.username), unquote(p.password or ""))
                smtp.send_message(message)
        except smtplib.SMTPResponseException as exc:
            # 4xx: try again later; 5xx: the server refuses this message for good.
            if 400 <= exc.smtp_code < 500:
                raise TransientError(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}") from exc
            raise PermanentError(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}") from exc
        except (TimeoutError, smtplib.SMTPException, OSError) as exc:
            raise TransientError(f"SMTP unavailable: {exc}") from exc


def make_mailer(smtp_url: str, maildir: str) -> Mailer:
    return SmtpMailer(smtp_url) if smtp_url else MaildirMailer(maildir)
