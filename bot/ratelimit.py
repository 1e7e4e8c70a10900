"""Per-user rate limit on commands and clicks: a sliding minute, kept in this process.

`SlidingWindow.check(user, key)` says whether one more request from `user` fits: at most `limit`
accepted requests in any `window` seconds (60 for `limits.commands_per_minute`). A refused request is
not counted, so a person told to slow down can go on exactly when their oldest counted request leaves
the window, and the refusal names that moment. Other people have windows of their own and are never
slowed by someone else's burst.

What counts is decided by the Slack transport (`bot.slack_app`): every slash command and every button
click (`block_actions`); modal submissions, the Home tab and other events do not (a modal is opened by
a counted command, the Home tab by Slack). A Slack retry of the same delivery (same `key`) is not
counted twice and gets the same verdict as the first delivery.

The window lives in this process's memory: with several replicas behind one request URL each replica
keeps its own, so a person spread across N replicas may get up to N x `limit` through in a minute. That
is enough against a runaway script or a stuck key; a shared limit would need the store on the ack path.

Memory is bounded: a user's timestamps are at most `limit`, users idle for a window are dropped, and no
more than `max_users` users and `max_keys` delivery keys are kept (the oldest go first).
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: float = 0.0  # seconds until the user's next request fits (0 when allowed)
    go_on_at: float = 0.0  # the same moment on the limiter's clock (epoch seconds by default)
    first_refusal: bool = False  # the first refusal since the user's last accepted request


ALLOWED = Verdict(allowed=True)


class SlidingWindow:
    def __init__(self, limit: int, window: float = 60.0, *, clock: Callable[[], float] = time.time,
                 max_users: int = 100_000, max_keys: int = 100_000) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("a rate limit needs limit >= 1 and a positive window")
        self.limit = limit
        self.window = window
        self.clock = clock
        self.max_users = max_users
        self.max_keys = max_keys
        self._users: OrderedDict[str, deque[float]] = OrderedDict()  # least recently active first
        self._told: set[str] = set()  # users refused since their last accepted request
        self._keys: OrderedDict[str, tuple[float, Verdict]] = OrderedDict()  # delivery key -> first verdict

    def check(self, user: str, key: str | None = None) -> Verdict:
        """Count one request from `user` if it fits; a repeated `key` is answered as it was the first time."""
        now = self.clock()
        self._forget_idle(now)
        if key is not None and key in self._keys:
            verdict = self._keys[key][1]
            return verdict if verdict.allowed else Verdict(False, max(verdict.go_on_at - now, 0.0),
                                                           verdict.go_on_at, first_refusal=False)
        verdict = self._count(user, now)
        if key is not None:
            self._keys[key] = (now, verdict)
            while len(self._keys) > self.max_keys:
                self._keys.popitem(last=False)
        return verdict

    def _count(self, user: str, now: float) -> Verdict:
        stamps = self._users.pop(user, None)
        if stamps is None:
            stamps = deque(maxlen=self.limit)
        self._users[user] = stamps  # now the most recently active
        while len(self._users) > self.max_users:
            gone, _ = self._users.popitem(last=False)
            self._told.discard(gone)
        cutoff = now - self.window
        while stamps and stamps[0] <= cutoff:
            stamps.popleft()
        if len(stamps) < self.limit:
            stamps.append(now)
            self._told.discard(user)
            return ALLOWED
        go_on_at = stamps[0] + self.window
        first = user not in self._told
        self._told.add(user)
        return Verdict(False, go_on_at - now, go_on_at, first_refusal=first)

    def _forget_idle(self, now: float) -> None:
        """Drop users whose newest request has left the window, and delivery keys that old."""
        cutoff = now - self.window
        while self._users:
            user, stamps = next(iter(self._users.items()))
            if stamps and stamps[-1] > cutoff:
                break
            del self._users[user]
            self._told.discard(user)
        while self._keys and next(iter(self._keys.values()))[0] <= cutoff:
            self._keys.popitem(last=False)
