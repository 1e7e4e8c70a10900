"""Timing of integration calls, reported to whoever listens (the bot's /metrics), without
integrations depending on the bot: observers are plain callables registered at start-up."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

Observer = Callable[[str, str, float, str | None], None]  # (system, operation, seconds, error kind or None)

_observers: list[Observer] = []


def add_observer(fn: Observer) -> None:
    _observers.append(fn)


def remove_observer(fn: Observer) -> None:
    if fn in _observers:
        _observers.remove(fn)


def record(system: str, operation: str, seconds: float, error: str | None = None) -> None:
    for fn in list(_observers):
        try:
            fn(system, operation, seconds, error)
        except Exception:  # an observer must never break the call it observes
            pass


@asynccontextmanager
async def timed(system: str, operation: str) -> AsyncIterator[None]:
    """Time the block and report it, with the exception's type name when it fails."""
    started = time.perf_counter()
    try:
        yield
    except BaseException as exc:
        record(system, operation, time.perf_counter() - started, type(exc).__name__)
        raise
    record(system, operation, time.perf_counter() - started)
