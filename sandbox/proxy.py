"""`/api/v1/namespaces/NS/pods/NAME[:PORT]/proxy[/PATH]`: the API server's proxy to a pod, as kubectl sees it.

The pod is named as the API server accepts it (`name`, `name:port` or `scheme:name:port`; without a
port, the first declared container port). A pod without an IP is "address not allowed" (400); a dial
the pod refuses is 503 ServiceUnavailable with the dial error; otherwise the container's answer is
relayed as it is: its status, content type and body, not a Status object. A WebSocket upgrade is
relayed too (the real proxy is upgrade-aware), which is what lets a probe reach a pod's WebSocket
without the load balancer in front of it.

The path after `proxy` is taken from the raw request path and unescaped once, as Go's URL.Path would
be: the Python client escapes the `/` in it (`debug%2Fpprof%2Fheap`), kubectl does not.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from aiohttp import WSMsgType, web

from . import errors
from .cluster import Cluster
from .util import dig


def is_pod_proxy(group: str, version: str, rest: list[str]) -> bool:
    """`rest` is the path after /api/v1: namespaces, NS, pods, NAME, proxy, ..."""
    return (group == "" and version == "v1" and len(rest) >= 5 and rest[0] == "namespaces" and rest[2] == "pods"
            and rest[4] == "proxy")


def split_scheme_name_port(id_: str) -> tuple[str, str, str] | None:
    """apimachinery's SplitSchemeNamePort: (scheme, name, port) or None when it is not valid."""
    parts = id_.split(":")
    if len(parts) == 1:
        scheme, name, port = "", parts[0], ""
    elif len(parts) == 2:
        scheme, (name, port) = "", parts
    elif len(parts) == 3:
        scheme, name, port = parts
        if scheme not in ("http", "https"):
            return None
    else:
        return None
    return (scheme, name, port) if name else None


def _tail(request: web.Request) -> tuple[str, str]:
    """(name[:port] as sent, the path after `proxy`), both unescaped once."""
    raw = request.raw_path.split("?", 1)[0]
    segments = raw.split("/")  # "", api, v1, namespaces, NS, pods, NAME, proxy, ...
    name = unquote(segments[6])
    path = "/" + "/".join(segments[8:]) if len(segments) > 8 else "/"
    return name, unquote(path)


class PodProxy:
    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        self.store = cluster.store

    def _target(self, namespace: str, id_: str) -> tuple[dict[str, Any], str]:
        split = split_scheme_name_port(id_)
        if split is None:
            raise errors.bad_request(f'invalid pod request "{id_}"')
        _, name, port = split
        pod = self.store.get(self.cluster.rt("Pod"), namespace, name)
        if pod is None:
            raise errors.not_found("pods", name)
        if not port:
            declared = [p["containerPort"] for c in dig(pod, "spec", "containers", default=[])
                        for p in c.get("ports") or []]
            port = str(declared[0]) if declared else "80"
        if not dig(pod, "status", "podIP"):
            raise errors.bad_request("address not allowed")
        return pod, port

    async def handle(self, request: web.Request, namespace: str) -> web.StreamResponse:
        id_, path = _tail(request)
        pod, port = self._target(namespace, id_)
        endpoints = self.cluster.pod_http
        if request.headers.get("Upgrade", "").lower() == "websocket":
            status = endpoints.websocket(pod, port, path)
            if status == 0:
                return await self._websocket(request)
        answer = endpoints.answer(pod, port, request.method, path)
        return web.Response(body=answer.body, status=answer.status, headers={
            "Content-Type": answer.content_type, **answer.headers})

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        """The pod's graphql-transport-ws endpoint, far enough for a probe: init -> ack, ping -> pong."""
        ws = web.WebSocketResponse(protocols=("graphql-transport-ws", "graphql-ws"), heartbeat=None)
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == WSMsgType.TEXT and '"connection_init"' in msg.data:
                await ws.send_str('{"type":"connection_ack"}')
            elif msg.type == WSMsgType.TEXT and '"ping"' in msg.data:
                await ws.send_str('{"type":"pong"}')
        return ws
