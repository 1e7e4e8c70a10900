"""Typed errors every integration raises, so the bot can say which part failed in one line.

Messages are complete sentences safe to show to users: no stack traces, no secret values.
"""

from __future__ import annotations


class IntegrationError(Exception):
    """A call to an external system failed. `system` names it for the user ("Kubernetes").

    `code` is the failure in a word or a number, as the system said it (`AccessDenied`, `Forbidden`,
    `500`, `Timeout`), for the one-line mark of a part that could not be read (`commands.parts`).
    """

    def __init__(self, system: str, message: str, *, code: str = "") -> None:
        super().__init__(message)
        self.system = system
        self.message = message
        self.code = code

    def __str__(self) -> str:
        return f"{self.system}: {self.message}"


class NotFound(IntegrationError):
    """The named object does not exist."""


class Conflict(IntegrationError):
    """The system refused because of its current state (e.g. a disruption budget)."""


class Forbidden(IntegrationError):
    """The bot's credentials may not do this."""


class Unavailable(IntegrationError):
    """The system could not be reached, or did not answer within the timeout."""
