"""Opt-in chaos for the simulator: a share of calls answered 429, 5xx, or held past the client's timeout.

``SlackSim.chaos`` is None by default, and then nothing here runs. A soak sets it (and may swap it or
set it back to None for windows); each Web API call (and, with ``hooks``, each response_url post) then
draws one fate, independently:

- ``rate_429``: ``429 ratelimited`` with ``Retry-After: retry_after`` (what slack_sdk's rate-limit
  handler waits for before trying again); nothing happens.
- ``rate_5xx``: one of ``statuses_5xx`` with ``internal_error``; nothing happens (slack_sdk retries 500
  and 503, not 502 or 504).
- ``rate_hold``: the call is applied as usual, but its answer is held for ``hold_seconds`` (longer than
  the client waits: 15 s for slack_sdk's Web API client as cf builds it, 10 s for its response_url
  posts), so the client sees a timeout for a call that did take effect — Slack's most ambiguous failure.

``exempt`` methods never fail (``auth.test`` by default: Bolt checks the token once per process with it).
``counts`` says what was injected, by fate.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

HOLD, RATE_LIMITED, SERVER_ERROR = "held", "429", "5xx"


@dataclass
class Fate:
    kind: str  # HOLD, RATE_LIMITED or SERVER_ERROR
    status: int = 200
    error: str = ""
    retry_after: int = 0
    hold_seconds: float = 0.0


@dataclass
class Chaos:
    rate_429: float = 0.0
    rate_5xx: float = 0.0
    rate_hold: float = 0.0
    retry_after: int = 1
    hold_seconds: float = 16.0
    hook_hold_seconds: float = 11.0
    statuses_5xx: tuple[int, ...] = (500, 503)
    hooks: bool = True  # response_url posts too
    exempt: frozenset[str] = frozenset({"auth.test"})
    seed: int | None = None
    counts: Counter[str] = field(default_factory=Counter)
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def draw(self, method: str) -> Fate | None:
        """The fate of one call of ``method`` ("response_url" for a hook post), or None: served as usual."""
        if method in self.exempt or (method == "response_url" and not self.hooks):
            return None
        roll = self._rng.random()
        fate: Fate | None = None
        if roll < self.rate_429:
            fate = Fate(RATE_LIMITED, 429, "ratelimited", retry_after=self.retry_after)
        elif roll < self.rate_429 + self.rate_5xx:
            fate = Fate(SERVER_ERROR, self._rng.choice(self.statuses_5xx), "internal_error")
        elif roll < self.rate_429 + self.rate_5xx + self.rate_hold:
            hold = self.hook_hold_seconds if method == "response_url" else self.hold_seconds
            fate = Fate(HOLD, hold_seconds=hold)
        if fate is not None:
            self.counts[fate.kind] += 1
            self.counts[f"{fate.kind} {method}"] += 1
        return fate
