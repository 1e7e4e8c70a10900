"""Resident memory of a cf process with `/cf graph`: idle (matplotlib not loaded), then after 100 graphs of a
real Prometheus range query (issue 14: < 150 MB idle, < 220 MB after 100 graphs). Prometheus scrapes the
service stand-ins; each graph is rendered in the bot's process and uploaded to the Slack simulator."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from bench import load
from bench.memory import settle
from bench.procs import response_urls, sim_calls, start_cf, start_sandbox, start_sim
from sandbox.probe_targets import ProbeTargets
from tests.prometheus_support import alertmanager_binary, prometheus_binary, running_monitoring

GRAPHS = 100


def matplotlib_loaded(pid: int) -> bool:
    """Whether the process has mapped matplotlib's compiled modules (it imports them on the first graph)."""
    return "matplotlib" in Path(f"/proc/{pid}/maps").read_text()


async def measure(workdir: Path) -> dict[str, Any]:
    if not (prometheus_binary() and alertmanager_binary()):
        return {"skipped": "prometheus / prometheus-alertmanager not installed (scripts/services.sh installs them)"}
    targets = ProbeTargets()
    await targets.start()
    sim, api_url = await start_sim()
    sandbox, kubeconfig = await start_sandbox(workdir)
    try:
        async with running_monitoring(workdir / "monitoring") as monitoring:
            await monitoring.scrape(targets.scrape_configs())
            await asyncio.sleep(20)  # some points for the graphs
            cf = await start_cf(workdir, kubeconfig, api_url, f"prometheus: {{url: '{monitoring.prometheus_url}'}}\n")
            try:
                await asyncio.sleep(2)
                result: dict[str, Any] = {"idle_mb": cf.rss_mb(), "idle_matplotlib": matplotlib_loaded(cf.pid)}
                before = await sim_calls(sim)
                for done in (1, 50, GRAPHS):
                    count = done - result.get("graphs", 0)
                    urls = await response_urls(sim, count, "U0VIEWER")
                    await load.run(f"{cf.url}/slack/events", load.slash("graph error-rate --since 30m", "U0VIEWER",
                                                                        urls), 2, count)
                    await settle(sim)
                    result["graphs"] = done
                    result[f"after_{done}_mb"] = cf.rss_mb()
                result["calls"] = await sim_calls(sim) - before
                result["loaded_matplotlib"] = matplotlib_loaded(cf.pid)
                return result
            finally:
                await cf.stop()
    finally:
        await sandbox.stop()
        await sim.stop()
        await targets.stop()


def report(r: dict[str, Any]) -> list[str]:
    if "skipped" in r:
        return [f"Skipped: {r['skipped']}."]
    ok = r["idle_mb"] < 150 and r[f"after_{GRAPHS}_mb"] < 220 and not r["idle_matplotlib"]
    return [
        "| idle | matplotlib loaded when idle | after 1 graph | after 50 | after 100 graphs | target |",
        "|---|---|---|---|---|---|",
        f"| {r['idle_mb']:.0f} MB | {'yes' if r['idle_matplotlib'] else 'no'} | {r['after_1_mb']:.0f} MB | "
        f"{r['after_50_mb']:.0f} MB | {r[f'after_{GRAPHS}_mb']:.0f} MB | "
        f"{'met' if ok else 'MISSED'} (< 150 MB idle without matplotlib, < 220 MB after 100 graphs) |",
    ]


RESULTS = Path(__file__).with_name("RESULTS.md")
MARK_BEGIN, MARK_END = "<!-- graphs:begin -->", "<!-- graphs:end -->"


async def main() -> int:
    """`python -m bench graphs`: measure, print, and put the figures in their own marked section of RESULTS.md."""
    import tempfile
    import time

    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = report(await measure(Path(tempfile.mkdtemp(prefix="cf-bench-graphs-"))))
    block = "\n".join([MARK_BEGIN, "## Memory with `/cf graph`", "", " ".join((__doc__ or "").split()), "",
                       f"Run {started}.", "", *lines, MARK_END])
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    if MARK_BEGIN in text and MARK_END in text:
        before, rest = text.split(MARK_BEGIN, 1)
        text = before + block + rest.split(MARK_END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    RESULTS.write_text(text)
    print("\n".join(lines))
    return 0 if lines and "MISSED" not in lines[-1] else 1
