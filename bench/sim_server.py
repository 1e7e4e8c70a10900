"""The Slack simulator as its own process, so its work does not slow the load generator.

Run as `python -m bench.sim_server PORT`; serves until SIGTERM. `GET /healthz` answers when ready.
"""

from __future__ import annotations

import asyncio
import signal
import sys

from aiohttp import web

from tests.slack_sim import SlackSim


async def main(port: int) -> None:
    sim = SlackSim()
    await sim.start()

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "api_url": sim.api_url, "calls": len(sim.calls)})

    async def response_urls(request: web.Request) -> web.Response:
        n = min(int(request.query.get("n", "100")), 10_000)
        user = request.query.get("user") or None
        return web.json_response([sim.new_response_url("C0INCIDENT", user) for _ in range(n)])

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/response_urls", response_urls)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
    await sim.stop()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
