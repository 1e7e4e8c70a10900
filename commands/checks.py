"""Health checks that `/cf status` runs side by side (and the scheduled health check reuses).

Each area registers its own check with `@status_check`; a check returns one or more `Check` lines.
`run_checks` runs them all concurrently, each under its own timeout: a check that fails, hangs or
whose integration is not configured becomes one line saying so, and the others still report.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from commands.base import Context, NotConfigured
from commands.clients import SERVICE_NAMES
from integrations.errors import IntegrationError

Status = Literal["ok", "warn", "fail", "skip"]
ICON: dict[str, str] = {"ok": ":large_green_circle:", "warn": ":large_yellow_circle:", "fail": ":red_circle:",
                        "skip": ":white_circle:"}


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    latency_ms: float | None = None

    def line(self) -> str:
        took = f" ({self.latency_ms:.0f} ms)" if self.latency_ms is not None else ""
        return f"{ICON[self.status]} *{self.name}* — {self.detail}{took}"


CheckFn = Callable[[Context], Awaitable[list[Check]]]


@dataclass(frozen=True)
class CheckSpec:
    name: str
    fn: CheckFn
    order: int
    needs: tuple[str, ...]
    timeout: float


STATUS_CHECKS: list[CheckSpec] = []


def status_check(
    name: str, *, order: int = 100, needs: Iterable[str] = (), timeout: float = 5.0
) -> Callable[[CheckFn], CheckFn]:
    """Register a check for `/cf status`; the function is returned unchanged."""

    needs = tuple(needs)
    unknown = sorted(set(needs) - SERVICE_NAMES)
    if unknown:
        raise ValueError(f"status check {name!r} needs unknown clients {unknown} (known: {sorted(SERVICE_NAMES)})")

    def decorate(fn: CheckFn) -> CheckFn:
        if any(c.name == name for c in STATUS_CHECKS):
            raise ValueError(f"status check {name!r} is registered twice")
        STATUS_CHECKS.append(CheckSpec(name, fn, order, needs, timeout))
        STATUS_CHECKS.sort(key=lambda c: (c.order, c.name))
        return fn

    return decorate


async def _run_one(ctx: Context, spec: CheckSpec) -> list[Check]:
    missing = [n for n in spec.needs if not ctx.configured(n)]
    if missing:
        return [Check(spec.name, "skip", "not configured")]
    started = time.perf_counter()
    try:
        return await asyncio.wait_for(spec.fn(ctx.narrowed(spec.needs)), timeout=spec.timeout)
    except TimeoutError:
        return [Check(spec.name, "fail", f"no answer within {spec.timeout:g}s", (time.perf_counter() - started) * 1000)]
    except NotConfigured as exc:
        return [Check(spec.name, "skip", str(exc))]
    except IntegrationError as exc:
        return [Check(spec.name, "fail", exc.message, (time.perf_counter() - started) * 1000)]
    except Exception as exc:  # one broken check must not take the report down
        return [Check(spec.name, "fail", f"check failed: {type(exc).__name__}: {str(exc)[:150]}")]


async def run_checks(ctx: Context, specs: Iterable[CheckSpec] | None = None) -> list[Check]:
    chosen = list(STATUS_CHECKS if specs is None else specs)
    results = await asyncio.gather(*(_run_one(ctx, s) for s in chosen))
    return [check for group in results for check in group]
