"""The floor: a bare slack-bolt AsyncApp that only acks `/cf`, served the same way as cf (aiohttp).

Run as `python -m bench.bare_app PORT SIGNING_SECRET SLACK_API_URL`.
"""

from __future__ import annotations

import sys

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient


def main() -> None:
    port, secret, api_url = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    app = AsyncApp(client=AsyncWebClient(token="xoxb-test", base_url=api_url), signing_secret=secret)

    @app.command("/cf")
    async def only_ack(ack: AsyncAck) -> None:
        await ack()

    async def events(request: web.Request) -> web.StreamResponse:
        return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    web_app = web.Application()
    web_app.router.add_post("/slack/events", events)
    web_app.router.add_get("/healthz", healthz)
    web.run_app(web_app, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    main()
