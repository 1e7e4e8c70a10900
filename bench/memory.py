"""Resident memory of the cf process: idle, and after 500 and 1,000 commands (no growth after warm-up)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from bench import load
from bench.procs import Proc, response_urls, sim_calls, start_cf, start_sandbox, start_sim

MIX = (("pods", "U0VIEWER"), ("help", "U0VIEWER"), ("audit 5", "U0VIEWER"), ("scale graphql-api 5", "U0OPERATOR"))


async def settle(sim: Proc) -> None:
    """Wait until cf has stopped posting (its work after the acks is done)."""
    last = -1
    while (now := await sim_calls(sim)) != last:
        last = now
        await asyncio.sleep(1.0)


async def measure(workdir: Path) -> dict[str, Any]:
    sim, api_url = await start_sim()
    sandbox, kubeconfig = await start_sandbox(workdir)
    cf = await start_cf(workdir, kubeconfig, api_url)
    try:
        await asyncio.sleep(2)
        result: dict[str, Any] = {"idle_mb": cf.rss_mb()}
        for done in (250, 500, 750, 1000):
            for text, user in MIX:
                urls = await response_urls(sim, 250 // len(MIX) + 1, user)
                await load.run(f"{cf.url}/slack/events", load.slash(text, user, urls), 10, len(urls))
            await settle(sim)
            result[f"after_{done}_mb"] = cf.rss_mb()
        result["commands"] = 1000
        return result
    finally:
        await cf.stop()
        await sandbox.stop()
        await sim.stop()


def report(r: dict[str, Any]) -> list[str]:
    growth = r["after_1000_mb"] - r["after_500_mb"]
    peak_ok = max(v for k, v in r.items() if k.endswith("_mb")) < 150
    return [
        "| idle | after 250 | after 500 | after 750 | after 1,000 commands | growth 500→1,000 | target |",
        "|---|---|---|---|---|---|---|",
        f"| {r['idle_mb']:.0f} MB | {r['after_250_mb']:.0f} MB | {r['after_500_mb']:.0f} MB | "
        f"{r['after_750_mb']:.0f} MB | {r['after_1000_mb']:.0f} MB | {growth:+.1f} MB | "
        f"{'met' if peak_ok and growth < 5 else 'MISSED'} (< 150 MB, no growth after warm-up) |",
    ]
