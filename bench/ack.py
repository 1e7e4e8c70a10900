"""Acknowledgement latency of signed `/cf pods` and `/cf scale` against a bare Bolt app that only acks.

Both servers run as their own processes (cf with its store, the sandbox cluster and the work it does
after each ack; the bare app with nothing), driven from this process at 1, 20 and 100 requests in
flight. The ratio of p99s is the figure: what cf's platform adds on top of Slack's own framework.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import load
from bench.memory import settle
from bench.procs import response_urls, start_bare, start_cf, start_sandbox, start_sim

LEVELS = ((1, 200), (20, 1000), (100, 2000))
COMMANDS = {"/cf pods": ("pods", "U0VIEWER"), "/cf scale": ("scale graphql-api 5", "U0OPERATOR")}


async def measure(workdir: Path) -> list[dict[str, Any]]:
    sim, api_url = await start_sim()
    sandbox, kubeconfig = await start_sandbox(workdir)
    cf = await start_cf(workdir, kubeconfig, api_url)
    bare = await start_bare(api_url)
    rows = []
    try:
        for name, (text, user) in COMMANDS.items():
            body = load.slash(text, user, await response_urls(sim, max(t for _, t in LEVELS), user))
            for target in (cf, bare):  # warm-up: connections, imports, first auth.test
                await load.run(f"{target.url}/slack/events", body, 5, 30)
            for concurrency, total in LEVELS:
                cf_lat = await load.run(f"{cf.url}/slack/events", body, concurrency, total)
                await settle(sim)  # let cf finish the work it does after its acks
                bare_lat = await load.run(f"{bare.url}/slack/events", body, concurrency, total)
                rows.append({"command": name, "concurrency": concurrency, "cf": load.summary(cf_lat),
                             "bare": load.summary(bare_lat)})
    finally:
        await cf.stop()
        await bare.stop()
        await sandbox.stop()
        await sim.stop()
    return rows


def report(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| command | in flight | cf p50 ms | cf p99 ms | bare Bolt p50 ms | bare Bolt p99 ms | p99 ratio | "
             "target (p99 ≤ 1.5x bare; < 100 ms at 20) |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        cf, bare = r["cf"], r["bare"]
        ratio = cf["p99_ms"] / bare["p99_ms"] if bare["p99_ms"] else float("nan")
        ok = ratio <= 1.5 and (r["concurrency"] != 20 or cf["p99_ms"] < 100)
        lines.append(f"| `{r['command']}` | {r['concurrency']} | {cf['p50_ms']:.1f} | {cf['p99_ms']:.1f} | "
                     f"{bare['p50_ms']:.1f} | {bare['p99_ms']:.1f} | {ratio:.2f}x | {'met' if ok else 'MISSED'} |")
    return lines
