"""The HTTP face of the sandbox: routing, discovery, content negotiation and watch streams.

One catch-all aiohttp route parses Kubernetes paths (`/api/v1/namespaces/NS/pods/NAME/log`,
`/apis/apps/v1/deployments`, legacy `/watch/` prefixes) into a `ResourceRequest`, which
`Api`/`Subresources` answer. Errors become `Status` bodies. Discovery is the legacy form
(`/api`, `/apis`, `/api/v1`, `/apis/G/V`); kubectl asks for aggregated discovery first and
falls back when the answer is plain `application/json`. OpenAPI v3 is a stub index
(see `openapi.py`); `/openapi/v2` is absent and kubectl copes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from dataclasses import dataclass
from typing import Any

import yaml
from aiohttp import web

from . import conversions, errors, faults, openapi, printing, protobuf
from .api import Api, ResourceRequest
from .cluster import Cluster
from .logs import follow_text
from .proxy import PodProxy, is_pod_proxy
from .selectors import field_selector_predicate, label_selector_predicate
from .store import Watcher
from .subresources import Subresources

log = logging.getLogger("sandbox")

VERSION = {
    "major": "1", "minor": "32", "gitVersion": "v1.32.3-eks-4096722",
    "gitCommit": "4096722d6ba1d4a3c1a0e1f0c3d5b2a7e8f9c0d1", "gitTreeState": "clean",
    "buildDate": "2025-04-04T21:05:47Z", "goVersion": "go1.23.6", "compiler": "gc", "platform": "linux/amd64",
}
WATCH_TIMEOUT = 1800.0
VERB_BY_METHOD = {"GET": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete", "POST": "create"}


def _json(payload: Any, status: int = 200) -> web.Response:
    return web.Response(body=json.dumps(payload, separators=(",", ":")).encode(), status=status,
                        content_type="application/json")


@dataclass
class Fault:
    """Answer requests whose path matches `path` (a regex, whole path) with this error, for drills and tests.

    `query` must be a subset of the request's query (e.g. {"previous": "true"} for one kind of log);
    `times` limits it to the next N matching requests.
    """

    method: str
    path: re.Pattern[str]
    error: errors.ApiError
    query: dict[str, str]
    remaining: int | None = None

    def matches(self, request: web.Request) -> bool:
        return (self.method in ("*", request.method) and self.path.fullmatch(request.path.rstrip("/")) is not None
                and all(request.query.get(k) == v for k, v in self.query.items()))


class Server:
    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        self.registry = cluster.registry
        self.api = Api(cluster)
        self.subresources = Subresources(self.api)
        self.pod_proxy = PodProxy(cluster)
        self.api_calls = 0
        self.url = ""
        self.faults: list[Fault] = []
        self._closing = asyncio.Event()

    def fail(self, path: str, code: int = 500, reason: str = "InternalError", message: str = "injected fault",
             method: str = "GET", query: dict[str, str] | None = None, times: int | None = None) -> None:
        """Answer matching requests with a `Status` error (all of them, or the next `times`)."""
        self.faults.append(Fault(method, re.compile(path), errors.ApiError(code, reason, message), dict(query or {}),
                                 times))

    def _fault_for(self, request: web.Request) -> errors.ApiError | None:
        for fault in self.faults:
            if fault.matches(request):
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self.faults.remove(fault)
                return fault.error
        return None

    def reopen(self) -> None:
        """Ready for (re)serving: a fresh closing flag, bound to whichever loop serves next."""
        self._closing = asyncio.Event()

    def shutdown(self) -> None:
        """End every open watch and log follow, so the HTTP server can stop promptly."""
        self._closing.set()
        self.cluster.store.close_watches()

    def app(self) -> web.Application:
        app = web.Application(client_max_size=16 * 2**20)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.fault_windows = faults.attach(app)  # POST /_sandbox/faults: slow or failing windows (sandbox/faults.py)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.api_calls += 1
        fault = self._fault_for(request) if self.faults else None
        if fault is not None:
            return _json(fault.status(), fault.code)
        try:
            return await self._route(request)
        except errors.ApiError as err:
            return _json(err.status(), err.code)
        except Exception as exc:  # a sandbox bug: answer like the API server would, and log it
            log.exception("sandbox: %s %s failed", request.method, request.path_qs)
            status = errors.ApiError(500, "InternalError", f"Internal error occurred: {exc}").status()
            return _json(status, 500)

    async def _route(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        if path == "/version":
            return _json(VERSION)
        if path in ("/healthz", "/livez", "/readyz"):
            return web.Response(text="ok")
        if path == "/openapi/v3":
            return _json(openapi.index(self.registry))
        if path.startswith("/openapi/v3/"):
            doc = openapi.lookup(self.registry, path)
            return _json(doc) if doc is not None else web.Response(status=404, text="404 page not found\n")
        if path == "/api":
            return _json(self.registry.api_versions(request.host))
        if path == "/apis":
            return _json(self.registry.api_group_list())
        segments = [s for s in path.split("/") if s]
        if len(segments) == 2 and segments[0] == "apis" and segments[1] in self.registry.group_versions():
            return _json({"kind": "APIGroup", "apiVersion": "v1", **self.registry.api_group(segments[1])})
        if segments[:1] == ["api"] and len(segments) >= 2:
            group, version, rest = "", segments[1], segments[2:]
        elif segments[:1] == ["apis"] and len(segments) >= 3:
            group, version, rest = segments[1], segments[2], segments[3:]
        else:
            return web.Response(status=404, text="404 page not found\n")
        if not self.registry.serves(group, version):
            return web.Response(status=404, text="404 page not found\n")
        if not rest:
            return _json(self.registry.api_resource_list(group, version))
        if is_pod_proxy(group, version, rest):
            return await self.pod_proxy.handle(request, rest[1])
        req, watch = self._resource_request(request, group, version, rest)
        body = await self._body(request)
        req.body = body if request.method == "PATCH" else conversions.inbound(req.view, body)
        return await self._dispatch(request, req, watch)

    def _resource_request(self, request: web.Request, group: str, version: str,
                          rest: list[str]) -> tuple[ResourceRequest, bool]:
        watch = rest[0] == "watch"
        if watch:
            rest = rest[1:]
        namespace = ""
        if len(rest) >= 3 and rest[0] == "namespaces":
            inner = self.registry.find(group, version, rest[2])
            if inner is not None and inner.namespaced:
                namespace, rest = rest[1], rest[2:]
        served = self.registry.find(group, version, rest[0]) if rest else None
        if served is None or len(rest) > 3 or (namespace and not served.namespaced):
            raise errors.path_not_found()
        rt = self.registry.storage(served)
        query = dict(request.query)
        watch = watch or query.get("watch") in ("true", "1")
        req = ResourceRequest(request.method, rt, namespace, rest[1] if len(rest) > 1 else "",
                              rest[2] if len(rest) > 2 else "", query,
                              request.headers.get("Content-Type", "application/json"),
                              request.headers.get("Accept", "application/json"), view=served.key)
        if watch and req.name:  # legacy /watch/namespaces/NS/pods/NAME
            req.query["fieldSelector"] = f"metadata.name={req.name}"
            req.name = ""
        return req, watch

    async def _body(self, request: web.Request) -> Any:
        if not request.can_read_body:
            return None
        raw = await request.read()
        if not raw.strip():
            return None
        content_type = request.headers.get("Content-Type", "")
        if "protobuf" in content_type:
            return protobuf.decode(raw)  # kubectl's typed clients (`kubectl create ...`) send protobuf
        if "cbor" in content_type:
            raise errors.unsupported_media_type(content_type)
        try:
            if "yaml" in request.headers.get("Content-Type", ""):
                return yaml.safe_load(raw)
            return json.loads(raw)
        except (ValueError, yaml.YAMLError) as exc:
            raise errors.bad_request(f"error decoding request body: {exc}") from exc

    async def _dispatch(self, request: web.Request, req: ResourceRequest, watch: bool) -> web.StreamResponse:
        rt, method = req.rt, req.method
        if req.sub:
            sub = rt.subresource(req.sub)
            if sub is None:
                raise errors.path_not_found()
            if VERB_BY_METHOD.get(method) not in sub.verbs:
                raise errors.method_not_allowed()
            if req.sub == "log" and req.query.get("follow") in ("true", "1"):
                return await self._follow_log(request, req)
            status, payload = self._subresource(req)
        elif rt.group == "metrics.k8s.io":
            if method != "GET":
                raise errors.method_not_allowed()
            status, payload = self.subresources.metrics(req)
        elif watch:
            if "watch" not in rt.verbs:
                raise errors.method_not_allowed()
            return await self._watch(request, req)
        else:
            status, payload = self._plain(req)
        if isinstance(payload, str):
            return web.Response(text=payload, status=status, content_type="text/plain")
        return _json(conversions.outbound(req.view, payload), status)

    def _subresource(self, req: ResourceRequest) -> tuple[int, Any]:
        if req.sub == "status":
            handler = {"GET": self.api.get, "PUT": self.api.replace, "PATCH": self.api.patch}[req.method]
            return handler(req)
        if req.sub == "scale":
            return self.subresources.scale(req)
        if req.sub == "eviction":
            return self.subresources.evict(req)
        return self.subresources.log(req)

    def _plain(self, req: ResourceRequest) -> tuple[int, Any]:
        if req.name:
            handlers = {"GET": self.api.get, "PUT": self.api.replace, "PATCH": self.api.patch,
                        "DELETE": self.api.delete}
            verb = VERB_BY_METHOD.get(req.method, "")
        else:
            handlers = {"GET": self.api.list, "POST": self.api.create, "DELETE": self.api.delete_collection}
            verb = {"GET": "list", "POST": "create", "DELETE": "deletecollection"}.get(req.method, "")
        if req.method not in handlers or verb not in req.rt.verbs:
            raise errors.method_not_allowed()
        if req.rt.namespaced and not req.namespace and req.method != "GET":
            raise errors.path_not_found()
        return handlers[req.method](req)

    # --- streams -----------------------------------------------------------------------

    async def _follow_log(self, request: web.Request, req: ResourceRequest) -> web.StreamResponse:
        """`logs -f`: what is there now, then each second's new lines until the client or we go."""
        _, text = self.subresources.log(req)
        store = self.cluster.store
        last = store.now()
        response = web.StreamResponse(status=200, headers={"Content-Type": "text/plain"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            await response.write(text.encode())
            while not self._closing.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), 1.0)
                pod = store.get(req.rt, req.namespace, req.name)
                if pod is None or request.transport is None or request.transport.is_closing():
                    break
                now = store.now()
                chunk = follow_text(pod, req.query.get("container"), last, now, req.query, self.cluster.seed)
                last = now
                if chunk:
                    await response.write(chunk.encode())
        except ConnectionResetError:
            return response
        if request.transport is not None and not request.transport.is_closing():
            await response.write_eof()
        return response

    # --- watch ---------------------------------------------------------------------------

    async def _watch(self, request: web.Request, req: ResourceRequest) -> web.StreamResponse:
        store = self.cluster.store
        predicates = [p for p in (label_selector_predicate(req.query.get("labelSelector")),
                                  field_selector_predicate(req.query.get("fieldSelector"))) if p]
        watcher = Watcher(req.rt, req.namespace or None, lambda obj: all(p(obj) for p in predicates))
        since_text = req.query.get("resourceVersion", "")
        initial_events = req.query.get("sendInitialEvents") == "true"  # the WatchList protocol
        since = int(since_text) if since_text not in ("", "0") and not initial_events else None
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        table = printing.wants_table(req.accept)
        first = True

        async def send(kind: str, obj: dict[str, Any]) -> None:
            nonlocal first
            if kind not in ("ERROR", "BOOKMARK"):
                obj = conversions.outbound(req.view, obj)
            if table and kind not in ("ERROR", "BOOKMARK"):
                obj = printing.table(req.rt, [obj], store.now(), obj["metadata"].get("resourceVersion", ""),
                                     req.query.get("includeObject", "Metadata"), headers=first)
                first = False
            await response.write(json.dumps({"type": kind, "object": obj}, separators=(",", ":")).encode() + b"\n")

        try:
            backlog = store.watch(watcher, since)
            if initial_events:
                backlog.append(("BOOKMARK", {"kind": req.rt.kind, "apiVersion": req.rt.api_version, "metadata": {
                    "resourceVersion": store.resource_version,
                    "annotations": {"k8s.io/initial-events-end": "true"}}}))
        except errors.ApiError as err:
            await send("ERROR", err.status())
            await response.write_eof()
            return response
        try:
            await self._stream(request, watcher, backlog, send, float(req.query.get("timeoutSeconds") or 0))
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            store.unwatch(watcher)
        if request.transport is not None and not request.transport.is_closing():
            await response.write_eof()
        return response

    async def _stream(self, request: web.Request, watcher: Watcher, backlog: list[tuple[str, dict[str, Any]]],
                      send: Any, seconds: float) -> None:
        for kind, obj in backlog:
            await send(kind, obj)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (seconds if seconds > 0 else WATCH_TIMEOUT)
        while (remaining := deadline - loop.time()) > 0:
            try:
                item = await asyncio.wait_for(watcher.queue.get(), min(remaining, 1.0))
            except TimeoutError:
                if request.transport is None or request.transport.is_closing():
                    return
                continue
            if item is None:
                return
            await send(*item)
