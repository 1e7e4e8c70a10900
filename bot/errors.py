"""One error handler: every exception a command raises becomes one readable line for the user.

Expected failures (bad input, refusals, an integration that is down) are shown as they are. Anything
else is a bug: the user gets a short apology with an error id, and the log gets the traceback under
the same id, so the two can be matched without showing a stack trace in Slack.
"""

from __future__ import annotations

import logging
import uuid

from bot.messenger import DeliveryError
from bot.store import StoreUnavailable
from commands.args import UsageError
from commands.base import CommandError
from integrations.errors import IntegrationError

log = logging.getLogger(__name__)


def new_error_id() -> str:
    return uuid.uuid4().hex[:8]


def user_message(exc: BaseException, request_id: str | None = None) -> str:
    """The line to show for `exc`. Logs unexpected errors with a traceback under an error id."""
    if isinstance(exc, CommandError | UsageError):
        return str(exc)
    if isinstance(exc, IntegrationError):
        return f":warning: {exc.system}: {exc.message}"
    if isinstance(exc, StoreUnavailable):
        return ":warning: The audit store is unavailable, so no change can be requested or run right now."
    if isinstance(exc, DeliveryError):
        log.error("slack refused an answer", extra={"method": exc.method, "error": exc.code})
        return f":warning: Slack did not accept the answer ({exc.method}: {exc.code}); it has been logged."
    if isinstance(exc, TimeoutError):
        return ":warning: The command timed out before it finished."
    error_id = request_id or new_error_id()
    log.exception("unexpected error", extra={"error_id": error_id}, exc_info=exc)
    return f":x: Something went wrong on our side (error id `{error_id}`); it has been logged."
