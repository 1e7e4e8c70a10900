"""The sandbox's AWS endpoint: an aiohttp front that answers what moto lacks and forwards the rest.

Product code is pointed here by `AWS_ENDPOINT_URL`, exactly as it would be at a VPC endpoint or a
proxy; it has no idea moto exists. Tests can inject faults (`inject("rds", "AccessDenied", ...)`)
so a denied permission or a throttled call comes back as the real protocol's error. The front runs
on its own event loop in a daemon thread, so one sandbox serves tests on any loop (pytest-asyncio
gives each test its own) and the demo alike.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

from .extras import Extras
from .protocol import AwsRequest, error_response, read_request

log = logging.getLogger(__name__)

HOP_BY_HOP = {"connection", "content-length", "transfer-encoding", "content-encoding", "keep-alive", "server",
              "date"}


@dataclass
class Fault:
    service: str
    code: str
    message: str
    action: str = "*"
    status: int = 400
    remaining: int | None = None
    path: str = ""  # a regex over "METHOD /path": how REST services (EKS, S3) name one operation
    params: dict[str, str] = field(default_factory=dict)  # a subset of a query call's parameters

    def matches(self, req: AwsRequest, line: str) -> bool:
        return (self.service == req.service and self.action in ("*", req.action)
                and (not self.path or re.fullmatch(self.path, line) is not None)
                and all(req.params.get(k) == v for k, v in self.params.items()))


class Front:
    def __init__(self, moto_url: str, extras: Extras) -> None:
        self.moto_url = moto_url
        self.extras = extras
        self.url = ""
        self.requests: list[tuple[str, str]] = []  # (service, action or "METHOD /path") seen, for tests
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    # --- faults (called from any thread) ----------------------------------------------------

    def inject(self, service: str, code: str, message: str, action: str = "*", status: int = 400,
               times: int | None = None, path: str = "", params: dict[str, str] | None = None) -> None:
        """Answer matching calls with this AWS error (all of them, or the next `times`).

        Query and JSON services are matched by `action` (and `params`, a subset of the call's query
        parameters: `{"SourceType": "db-cluster"}`); REST ones (EKS, S3) by `path`, a regex over
        "METHOD /path" (`GET /clusters/[^/]+/node-groups`).
        """
        with self._lock:
            self._faults.append(Fault(service, code, message, action, status, times, path, dict(params or {})))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _fault_for(self, req: AwsRequest, line: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(req, line):
                    if fault.remaining is not None:
                        fault.remaining -= 1
                        if fault.remaining <= 0:
                            self._faults.remove(fault)
                    return fault
        return None

    # --- serving ----------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = dict(request.headers)
        req = read_request(headers, body)
        self.requests.append((req.service, req.action or f"{request.method} {request.path}"))
        fault = self._fault_for(req, f"{request.method} {request.path}")
        answer = (error_response(req.service, fault.code, fault.message, fault.status) if fault
                  else self.extras.handle(req))
        if answer is None:
            answer = await self._forward(request, headers, body)
        status, out_headers, payload = answer
        return web.Response(status=status, headers=out_headers, body=payload)

    async def _forward(self, request: web.Request, headers: dict[str, str], body: bytes) -> tuple[
            int, dict[str, str], bytes]:
        assert self._session is not None
        send = {k: v for k, v in headers.items() if k.lower() not in HOP_BY_HOP}
        async with self._session.request(request.method, self.moto_url + request.path_qs, headers=send,
                                         data=body, allow_redirects=False) as resp:
            payload = await resp.read()
            out = {k: v for k, v in resp.headers.items() if k.lower() not in HOP_BY_HOP}
            return resp.status, out, payload

    async def _serve(self, ready: threading.Event) -> None:
        self._session = aiohttp.ClientSession(auto_decompress=False, skip_auto_headers=("User-Agent",))
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        ready.set()

    def start(self) -> str:
        """Serve on a free port in a daemon thread; return the URL."""
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._loop.create_task(self._serve(ready))
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="aws-sandbox-front", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the AWS sandbox front did not start within 10 s")
        return self.url

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
        future.result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
        self._loop = None

    async def _shutdown(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()
