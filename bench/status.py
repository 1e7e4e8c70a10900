"""`/cf status` end to end on the sandbox with 50 and with 1,000 extra pods: time to the final
message and the number of Kubernetes API calls it made (which must not grow with the pod count)."""

from __future__ import annotations

import io
import statistics
import time
from pathlib import Path
from typing import Any

from bench.procs import start_sandbox
from bot.config import parse_settings
from bot.messenger import Origin
from commands.catalog import REGISTRY
from demo.console import ConsoleMessenger
from incidents.assemble import build_runtime
from integrations.kube import Kube

SIZES = (50, 1000)
RUNS = 5


async def measure(workdir: Path) -> list[dict[str, Any]]:
    if REGISTRY.get("status") is None:
        return [{"pods": n, "missing": True} for n in SIZES]
    rows = []
    for extra in SIZES:
        sandbox, kubeconfig = await start_sandbox(workdir, extra)
        kube = Kube.from_config(kubeconfig, timeout=10)
        out = io.StringIO()
        settings = parse_settings({"incident_channel": "C0INCIDENT"}, "bench")
        runtime = await build_runtime(settings, database_url=f"sqlite:///{workdir / f'status-{extra}.db'}",
                                      messenger=ConsoleMessenger(out=out), services={"kube": kube})
        try:
            origin = Origin(user="U0VIEWER", channel="C0INCIDENT")
            await runtime.dispatcher.handle(origin, "status")  # warm-up
            times, calls = [], []
            for _ in range(RUNS):
                before = kube.calls
                started = time.perf_counter()
                await runtime.dispatcher.handle(origin, "status")
                times.append(time.perf_counter() - started)
                calls.append(kube.calls - before)
            rows.append({"pods": extra, "median_s": statistics.median(times), "max_s": max(times),
                         "api_calls": sorted(set(calls)), "answered": "Traceback" not in out.getvalue()})
        finally:
            await runtime.close()
            kube.close()
            await sandbox.stop()
    return rows


def report(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| extra pods | median time to final message | slowest | Kubernetes API calls | target (< 2 s at 1,000) |",
             "|---|---|---|---|---|"]
    for r in rows:
        if r.get("missing"):
            lines.append(f"| {r['pods']} | — | — | — | MISSED: no `status` command yet |")
            continue
        ok = r["pods"] < 1000 or r["median_s"] < 2.0
        lines.append(f"| {r['pods']} | {r['median_s'] * 1000:.0f} ms | {r['max_s'] * 1000:.0f} ms | "
                     f"{', '.join(map(str, r['api_calls']))} | {'met' if ok else 'MISSED'} |")
    calls = {tuple(r.get("api_calls", [])) for r in rows if not r.get("missing")}
    if len(calls) > 1:
        lines.append("")
        lines.append("MISSED: the number of API calls differs between pod counts.")
    return lines
