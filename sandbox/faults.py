"""Fault windows over HTTP: make the API server slow or failing for a while, from another process.

`Sandbox.fail` injects errors from the process that holds the sandbox; a chaos soak runs the sandbox
as its own process (`cfbot sandbox`) and needs the same from outside, plus slowness. So every served
sandbox answers a small admin resource next to the API (nothing of Kubernetes lives under `/_sandbox/`):

    POST   /_sandbox/faults   {"path": REGEX, "method": "*", "seconds": 10, "delay": 2.5, "hold": 0,
                               "status": 503, "reason": "ServiceUnavailable", "share": 0.5}
    GET    /_sandbox/faults   the open windows and how many requests each has slowed and failed
    DELETE /_sandbox/faults   close every window

A window matches requests whose path fully matches `path` (default: everything) and whose method is
`method` (default `*`), until `seconds` have passed. A matching request first waits `delay` seconds
before it is handled (a client that gives up meanwhile leaves nothing done: the server drops a request
whose client has gone); then, when `status` is set, a share `share` of them (default all) gets that
`Status` error instead of an answer; otherwise it is handled and its answer held `hold` seconds (the
change is made; a client that gives up meanwhile never learns it — the ambiguous failure). Counters
stay after a window closes, for the report.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from . import errors

ADMIN_PATH = "/_sandbox/faults"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Window:
    path: re.Pattern[str]
    method: str
    until: float
    delay: float = 0.0
    hold: float = 0.0
    status: int | None = None
    reason: str = "InternalError"
    share: float = 1.0
    slowed: int = 0
    failed: int = 0
    held: int = 0

    def matches(self, request: web.Request, now: float) -> bool:
        return (now < self.until and self.method in ("*", request.method)
                and self.path.fullmatch(request.path.rstrip("/") or "/") is not None)

    def describe(self) -> dict[str, Any]:
        return {"path": self.path.pattern, "method": self.method, "open": time.time() < self.until,
                "delay": self.delay, "hold": self.hold, "status": self.status, "share": self.share,
                "slowed": self.slowed, "failed": self.failed, "held": self.held}


@dataclass
class FaultWindows:
    windows: list[Window] = field(default_factory=list)
    rng: random.Random = field(default_factory=random.Random)

    def add(self, spec: dict[str, Any]) -> Window:
        status = spec.get("status")
        window = Window(
            path=re.compile(str(spec.get("path") or ".*")),
            method=str(spec.get("method") or "*").upper(),
            until=time.time() + float(spec.get("seconds", 10)),
            delay=max(0.0, float(spec.get("delay", 0))),
            hold=max(0.0, float(spec.get("hold", 0))),
            status=int(status) if status is not None else None,
            reason=str(spec.get("reason") or "InternalError"),
            share=min(1.0, max(0.0, float(spec.get("share", 1.0)))),
        )
        self.windows.append(window)
        return window

    async def apply(self, request: web.Request) -> tuple[web.Response | None, float]:
        """Wait and/or fail as the open windows say: (an error to answer instead, or None to handle the
        request; how long to hold its answer after handling it)."""
        now, hold = time.time(), 0.0
        for window in [w for w in self.windows if w.matches(request, now)]:
            if window.delay:
                window.slowed += 1
                await asyncio.sleep(window.delay)
            if window.status is not None and self.rng.random() < window.share:
                window.failed += 1
                error = errors.ApiError(window.status, window.reason, "injected fault (sandbox fault window)")
                return web.json_response(error.status(), status=window.status), 0.0
            if window.hold:
                window.held += 1
                hold = max(hold, window.hold)
        return None, hold

    async def admin(self, request: web.Request) -> web.Response:
        if request.method == "POST":
            try:
                spec = json.loads(await request.text() or "{}")
                window = self.add(spec if isinstance(spec, dict) else {})
            except (ValueError, TypeError, re.error) as exc:
                return web.json_response({"error": f"bad fault window: {exc}"}, status=400)
            return web.json_response(window.describe(), status=201)
        if request.method == "DELETE":
            for window in self.windows:
                window.until = 0.0
            return web.json_response({"closed": len(self.windows)})
        return web.json_response({"windows": [w.describe() for w in self.windows]})


def attach(app: web.Application) -> FaultWindows:
    """Serve `/_sandbox/faults` on `app` and apply its windows to every other request."""
    faults = FaultWindows()

    @web.middleware
    async def fault_windows(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == ADMIN_PATH:
            return await faults.admin(request)
        if not faults.windows:
            return await handler(request)
        refused, hold = await faults.apply(request)
        if refused is not None:
            return refused
        response = await handler(request)
        if hold:
            await asyncio.sleep(hold)  # done, answered late
        return response

    app.middlewares.append(fault_windows)
    return faults
