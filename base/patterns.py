"""Patterns that people type (`logs --grep`, `metrics PATTERN`), run in linear time, off the loop.

Python's `re` backtracks: `^(.+)+Q` against an ordinary log line never finishes, and synchronous code
on the event loop cannot be interrupted, so one viewer's pattern would freeze every command. User
patterns are therefore compiled with RE2 (the `google-re2` binding), whose matching time is linear in
the input and which refuses what it cannot run that way (backreferences, lookaround). On top of that:
the pattern is at most 200 characters and RE2's memory for it is bounded; each subject is cut to
`SUBJECT_CHARS`; and filtering runs in a worker thread under a time budget, so even a huge input keeps
the loop free and ends with "stopped after N of M lines" rather than a stall.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import re2

MAX_PATTERN_CHARS = 200
SUBJECT_CHARS = 4096  # a log line or series name longer than this is matched on its first 4 KiB
PROGRAM_MEMORY = 4 << 20  # RE2's budget for one compiled pattern
FILTER_SECONDS = 2.0
_CHECK_EVERY = 512

T = TypeVar("T")


class PatternError(ValueError):
    """A pattern that cannot be used; the message says why in one sentence."""


def _options() -> re2.Options:
    options = re2.Options()
    options.max_mem = PROGRAM_MEMORY
    options.log_errors = False  # RE2 would otherwise write each refusal to stderr
    return options


@dataclass(frozen=True)
class UserPattern:
    """A compiled user pattern. `str()` is the pattern as typed (outside text: escape it to show it)."""

    source: str
    _compiled: object = field(repr=False, compare=False)

    @classmethod
    def compile(cls, raw: str) -> UserPattern:
        source = raw.strip()
        if not source or len(source) > MAX_PATTERN_CHARS:
            raise PatternError(f"must be a pattern of 1 to {MAX_PATTERN_CHARS} characters.")
        try:
            compiled = re2.compile(source, _options())
        except re2.error as exc:
            reason = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
            raise PatternError(
                f"is not a valid regular expression ({reason}). Patterns use RE2 syntax, which matches in "
                "linear time: no backreferences or lookaround."
            ) from None
        return cls(source, compiled)

    def __str__(self) -> str:
        return self.source

    def search(self, text: str) -> bool:
        return self._compiled.search(text[:SUBJECT_CHARS]) is not None  # type: ignore[attr-defined]

    async def filter(self, items: Sequence[T], key: Callable[[T], str],
                     budget: float = FILTER_SECONDS) -> Filtered[T]:
        """The items whose key matches, computed in a worker thread within `budget` seconds."""

        def run() -> Filtered[T]:
            deadline = time.monotonic() + budget
            kept: list[T] = []
            for i, item in enumerate(items):
                if i % _CHECK_EVERY == 0 and i and time.monotonic() > deadline:
                    return Filtered(kept, examined=i, total=len(items))
                if self.search(key(item)):
                    kept.append(item)
            return Filtered(kept, examined=len(items), total=len(items))

        return await asyncio.to_thread(run)


@dataclass(frozen=True)
class Filtered(Generic[T]):
    items: list[T]
    examined: int
    total: int

    @property
    def complete(self) -> bool:
        return self.examined >= self.total
