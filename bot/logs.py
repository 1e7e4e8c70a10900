"""Structured (JSON) logs with the request id, for `cfbot run`. Secrets never reach a log line.

Settings hold secrets as SecretStr, and on top of that one filter on the root handler masks every
record before any formatter sees it: anything shaped like a Slack token, and every configured
secret value (`register_secrets`: `cfbot run` registers them all at start-up, and the code that
reads a secret registers it too). The filter sits on the *handler*, so it covers every logger that
propagates to the root: ours, Bolt's, and aiohttp's access log and low-level server log — which
otherwise prints a rejected request's raw header line, bearer token included. A request the HTTP
parser refuses (the client's fault) is logged as one warning line without the traceback.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from aiohttp.http_exceptions import HttpProcessingError

if TYPE_CHECKING:
    from bot.config import Secrets, Settings

_TOKEN = re.compile(r"xox[abposer]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+")
_STD = set(vars(logging.LogRecord("x", 0, "x", 0, "x", None, None))) | {"message", "asctime", "taskName"}
MIN_SECRET_LENGTH = 4  # shorter values would mask ordinary words and protect nothing
REDACTED = "[redacted]"
# secrets read from the environment by name outside the settings (bot.services, boto3's chain)
SECRET_ENV = ("STATUSPAGE_API_KEY", "PAGERDUTY_ROUTING_KEY", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


class _Registry:
    """The secret values to mask, as one alternation, longest first."""

    def __init__(self) -> None:
        self.values: set[str] = set()
        self.pattern: re.Pattern[str] | None = None

    def add(self, values: Iterable[str | None]) -> None:
        new: set[str] = set()
        for value in values:
            if not value or len(value.strip()) < MIN_SECRET_LENGTH:
                continue
            # as written, URL-quoted (a query string) and JSON-escaped (a payload echoed in a line)
            new |= {value, value.strip(), urllib.parse.quote(value, safe=""), json.dumps(value)[1:-1]}
        if new <= self.values:
            return
        self.values |= new
        self.pattern = re.compile("|".join(re.escape(v) for v in sorted(self.values, key=len, reverse=True)))


_registry = _Registry()


def register_secrets(*values: str | None) -> None:
    """Mask these values in every log line from now on (empty and very short values are ignored)."""
    _registry.add(values)


def configured_secrets(settings: Settings, secrets: Secrets, env: Mapping[str, str] | None = None) -> list[str]:
    """Every secret value the configuration points at: the Slack tokens and signing secret, the store's
    password, the Alertmanager token, the monitored database's and cache's passwords, vendor keys."""
    e = os.environ if env is None else env
    found = [s.get_secret_value() for s in (secrets.slack_bot_token, secrets.slack_signing_secret,
                                              secrets.slack_app_token) if s is not None]
    found.append(e.get(settings.alerts.token_env, "").strip())
    found += [e.get(name, "").strip() for name in SECRET_ENV]
    for url in (secrets.database_url, e.get(settings.targets.postgres.dsn_env, ""),
                e.get(settings.targets.redis.url_env, "")):
        found.append(_password(url.strip()))
    return [value for value in found if value]


def _password(url: str) -> str:
    try:
        return urllib.parse.urlsplit(url).password or ""
    except ValueError:
        return ""


def mask(text: str) -> str:
    text = _TOKEN.sub("[redacted-token]", text)
    pattern = _registry.pattern
    return pattern.sub(REDACTED, text) if pattern is not None else text


def _mask_value(value: Any) -> Any:
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, Mapping):
        return {k: _mask_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask_value(v) for v in value]
    return value


_PLAIN = logging.Formatter()


class Redact(logging.Filter):
    """Masks a record in place (message, arguments, extras, traceback text) before it is formatted.
    A request the HTTP parser refused becomes one warning line: what was wrong, not the raw bytes."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = _message(record)
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError) and record.name.startswith("aiohttp."):  # the server's parser
            reason = (exc.message or type(exc).__name__).strip().splitlines()[0].rstrip(":")[:200]
            message = f"{message}: bad HTTP request ({exc.code}): {reason}"
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.WARNING, logging.getLevelName(logging.WARNING)
        record.msg, record.args = mask(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = _PLAIN.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask(record.exc_text)
        if record.stack_info:
            record.stack_info = mask(record.stack_info)
        for key, value in list(vars(record).items()):
            if key not in _STD and not key.startswith("_"):
                setattr(record, key, _mask_value(value))
        return True


def _message(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except Exception:  # a bad format string must not stop the line (nor raise at the call site)
        return f"{record.msg!s} {record.args!r}"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        from bot.dispatch import request_id_var

        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": mask(record.getMessage()),
            "request_id": request_id_var.get(),
        }
        for key, value in vars(record).items():
            if key not in _STD and not key.startswith("_"):
                entry[key] = _mask_value(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = mask(record.exc_text)
        return json.dumps(entry, default=str)


def setup_handler(handler: logging.Handler, json_logs: bool = True) -> logging.Handler:
    """The formatter and the masking filter `cfbot` puts on its one root handler."""
    handler.setFormatter(JsonFormatter() if json_logs else logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(Redact())
    return handler


def setup(json_logs: bool = True, level: int = logging.INFO) -> None:
    root = logging.getLogger()
    root.handlers[:] = [setup_handler(logging.StreamHandler(sys.stderr), json_logs)]
    root.setLevel(level)
    for noisy in ("apscheduler", "urllib3", "kubernetes", "aiohttp.access", "slack_bolt", "slack_sdk"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
