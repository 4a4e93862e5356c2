"""Credential redaction: ``user:password@`` in URLs and the passwords a process knows never reach
a log line, the `failures` table or the terminal.

`redact_credentials` masks URL userinfo in any text; `redact` (a `Redactor`) also masks the known
passwords; `install_log_redaction` hooks every log record of the process once.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Protocol
from urllib.parse import urlsplit
from urllib.request import getproxies

# The user:password@ of a URL (an authenticated source): never shown, logged or stored.
CREDENTIALS_RE = re.compile(r"(?<=://)[^/?#\s@]+@")


class SettingsLookup(Protocol):
    """What `known_secrets` needs of Scrapy's settings (config/ does not import Scrapy)."""

    def get(self, name: str, default: Any = None) -> Any: ...


def redact_credentials(text: str) -> str:
    """`text` with the ``user:password@`` of every URL in it replaced by ``***@``."""
    return CREDENTIALS_RE.sub("***@", text)


class Redactor:
    """Masks credentials in text: ``user:password@`` in URLs, and each known password anywhere."""

    def __init__(self) -> None:
        self.secrets: set[str] = set()
        self.installed = False

    def __call__(self, text: str) -> str:
        text = redact_credentials(text)
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def clean(self, record: logging.LogRecord) -> None:
        if not _would_be_emitted(record):
            return  # formatting it would cost more than the rest of the crawl's logging (items' reprs)
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: logging reports it when the record is emitted
            return
        if (clean := self(message)) != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:  # formatters reuse exc_text as it is
            record.exc_text = self(logging.Formatter().formatException(record.exc_info))


redact = Redactor()


def _would_be_emitted(record: logging.LogRecord) -> bool:
    """Whether a handler will take this record (as `Logger.callHandlers` decides): Scrapy logs
    every scraped item at DEBUG, which a crawl at INFO drops unformatted."""
    logger: logging.Logger | None = logging.getLogger(record.name)
    found = False
    while logger is not None:
        for handler in logger.handlers:
            found = True
            if record.levelno >= handler.level:
                return True
        logger = logger.parent if logger.propagate else None
    return not found and logging.lastResort is not None and record.levelno >= logging.lastResort.level


def known_secrets(settings: SettingsLookup) -> set[str]:
    """Passwords this crawl process holds: Scrapy's HTTP auth setting and the proxies' passwords."""
    secrets = {settings.get("HTTPAUTH_PASS") or ""}
    for url in getproxies().values():
        try:
            secrets.add(urlsplit(url if "://" in url else f"http://{url}").password or "")
        except ValueError:
            continue
    return {s for s in secrets if len(s) >= 4}  # masking "ab" everywhere would mangle every line


def install_log_redaction(secrets: set[str]) -> None:
    """Every log record of this process is made before any handler sees it, so mask it there:
    one hook covers Scrapy's "Overridden settings" line, request URLs and tracebacks alike."""
    redact.secrets |= secrets
    if redact.installed:
        return
    make_record = logging.getLogRecordFactory()

    def redacting_record_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        redact.clean(record)
        return record

    logging.setLogRecordFactory(redacting_record_factory)
    redact.installed = True
