"""Answers made of several calls degrade part by part: the rule, in one place (issue 11 §3).

A command that combines calls has a *primary* call, the thing asked (`db status`: the instance), and
*auxiliary* calls that add to it (its pending maintenance, its cluster). The primary is awaited
plainly: when it fails, the command fails with the usual one-line error. Each auxiliary call is
declared as such by wrapping it in `optional(label, call)`, which gives the call's value, or a
`Failed(label, reason)` when the system failed (an `IntegrationError`), did not answer in time, or
is not configured. The command shows everything it got and, for each failed part, one line:

    :warning: Pending maintenance: unavailable (AccessDenied)

The reason is the error's short code as the system said it (AccessDenied, Forbidden, 500, Timeout);
the whole message goes to the log under the part's label. A bug (any other exception) is not
caught here: it reaches the error handler like any other.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import TypeVar

from base.text import literal
from commands.base import NotConfigured
from commands.reply import Level, Text
from integrations.errors import IntegrationError

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Failed:
    """An auxiliary part that could not be had. `label` is the bot's words (mrkdwn); `reason` is escaped."""

    label: str
    reason: str
    state: str = "unavailable"
    error: BaseException | None = field(default=None, compare=False, repr=False)  # for a caller that must raise

    @property
    def detail(self) -> str:
        """`unavailable (AccessDenied)`: what a table cell or a status line says in its place."""
        return f"{self.state} ({literal(self.reason, 60, one_line=True)})"

    def line(self) -> str:
        return f":warning: {self.label}: {self.detail}"

    def part(self) -> Text:
        return Text(self.line())


def reason(exc: BaseException) -> str:
    """The failure in a word or a number: the system's own code, else the error's kind."""
    if isinstance(exc, IntegrationError) and exc.code:
        return exc.code
    if isinstance(exc, TimeoutError):
        return "Timeout"
    if isinstance(exc, NotConfigured):
        return "not configured"
    return type(exc).__name__


async def optional(label: str, call: Awaitable[T], *, timeout: float | None = None,
                   state: str = "unavailable") -> T | Failed:
    """An auxiliary call: its value, or `Failed` naming the part (the command goes on with the rest).

    `state` is what the line says of the part: `unavailable` for a read, `not verified` for a check.
    """
    try:
        if timeout is None:
            return await call
        return await asyncio.wait_for(call, timeout)
    except (IntegrationError, TimeoutError, NotConfigured) as exc:
        why = reason(exc)
        log.warning("part of an answer unavailable", extra={"part": label, "reason": why, "error": str(exc)})
        return Failed(label, why, state, exc)


def failures(*values: object) -> list[Failed]:
    return [v for v in values if isinstance(v, Failed)]


def failed_parts(*values: object) -> list[Text]:
    """One line for each value that is a `Failed`, in order."""
    return [f.part() for f in failures(*values)]


def degraded(level: Level, *values: object) -> Level:
    """An answer with a missing part is at least a warning: it is not the whole picture."""
    return "warn" if failures(*values) and level in ("ok", "info") else level


__all__ = ["Failed", "degraded", "failed_parts", "failures", "optional", "reason"]
