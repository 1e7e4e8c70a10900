"""Typed errors every integration raises, so the bot can say which part failed in one line.

Messages are complete sentences safe to show to users: no stack traces, no secret values.
"""

from __future__ import annotations


class IntegrationError(Exception):
    """A call to an external system failed. `system` names it for the user ("Kubernetes")."""

    def __init__(self, system: str, message: str) -> None:
        super().__init__(message)
        self.system = system
        self.message = message

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
