"""Kubernetes through the official client, off the event loop, every call with a timeout.

The client is blocking, so each call runs in a worker thread (`asyncio.to_thread`) and is bounded
twice: by urllib3's `_request_timeout` and by `asyncio.wait_for`. Responses are read with
`_preload_content=False` and decoded as plain JSON: the generated model classes are slow to build
for large lists (a status check over a thousand pods would spend most of its time there), and the
commands only need a few fields. Errors become `integrations.errors` types with one-line messages.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from integrations import telemetry
from integrations.errors import Conflict, Forbidden, IntegrationError, NotFound, Unavailable

SYSTEM = "Kubernetes"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"

Obj = dict[str, Any]


class Kube:
    """A narrow async interface over the Kubernetes API (what the commands use, nothing more)."""

    def __init__(self, api_client: client.ApiClient, timeout: float = 10.0) -> None:
        self.api_client = api_client
        self.timeout = timeout
        self.core = client.CoreV1Api(api_client)
        self.apps = client.AppsV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)
        self.calls = 0

    @classmethod
    def from_config(cls, kubeconfig: str | None = None, context: str | None = None, timeout: float = 10.0) -> Kube:
        """KUBECONFIG (or the given file) when present, else the in-cluster service account."""
        path = kubeconfig or os.environ.get("KUBECONFIG")
        try:
            if path:
                api = config.new_client_from_config(config_file=path, context=context, persist_config=False)
            else:
                cfg = client.Configuration()
                config.load_incluster_config(client_configuration=cfg)
                api = client.ApiClient(cfg)
        except (ConfigException, OSError) as exc:
            raise IntegrationError(SYSTEM, f"could not load the Kubernetes configuration: {exc}") from None
        return cls(api, timeout)

    def close(self) -> None:
        self.api_client.close()

    # --- calls -----------------------------------------------------------------------------

    async def _call(self, fn: Callable[..., Any], *args: Any, what: str, **kwargs: Any) -> Any:
        """Run one API call in a thread with a timeout; decode JSON; map errors to one line."""
        kwargs.setdefault("_request_timeout", (min(3.0, self.timeout), self.timeout))
        kwargs["_preload_content"] = False
        self.calls += 1

        def run() -> Any:
            resp = fn(*args, **kwargs)
            try:
                data = resp.data
            finally:
                resp.release_conn()
            if not data:
                return {}
            ctype = resp.headers.get("Content-Type", "") if resp.headers else ""
            if "json" in ctype or data[:1] in (b"{", b"["):
                return json.loads(data)
            return data.decode("utf-8", "replace")

        started = time.perf_counter()
        operation = getattr(fn, "__name__", "call")
        try:
            result = await asyncio.wait_for(asyncio.to_thread(run), timeout=self.timeout + 1)
        except ApiException as exc:
            error = _api_error(exc, what)
            telemetry.record(SYSTEM, operation, time.perf_counter() - started, type(error).__name__)
            raise error from None
        except (TimeoutError, urllib3.exceptions.TimeoutError):
            telemetry.record(SYSTEM, operation, time.perf_counter() - started, "Timeout")
            raise Unavailable(SYSTEM, f"{what}: no answer within {self.timeout:g}s.") from None
        except urllib3.exceptions.HTTPError as exc:
            telemetry.record(SYSTEM, operation, time.perf_counter() - started, "Unreachable")
            raise Unavailable(SYSTEM, f"{what}: the API server is unreachable ({_reason(exc)}).") from None
        telemetry.record(SYSTEM, operation, time.perf_counter() - started)
        return result

    async def list_pods(self, namespace: str | None, label_selector: str = "", field_selector: str = "") -> list[Obj]:
        if namespace is None:
            data = await self._call(
                self.core.list_pod_for_all_namespaces,
                label_selector=label_selector,
                field_selector=field_selector,
                what="list pods in all namespaces",
            )
        else:
            data = await self._call(
                self.core.list_namespaced_pod,
                namespace,
                label_selector=label_selector,
                field_selector=field_selector,
                what=f"list pods in namespace {namespace}",
            )
        return list(data.get("items", []))

    async def list_nodes(self) -> list[Obj]:
        data = await self._call(self.core.list_node, what="list nodes")
        return list(data.get("items", []))

    async def get_node(self, name: str) -> Obj:
        return dict(await self._call(self.core.read_node, name, what=f"node {name}"))

    async def pods_on_node(self, name: str) -> list[Obj]:
        """Every pod bound to the node, in all namespaces (as kubectl drain lists them)."""
        return await self.list_pods(None, field_selector=f"spec.nodeName={name}")

    async def list_deployments(self, namespace: str) -> list[Obj]:
        data = await self._call(
            self.apps.list_namespaced_deployment, namespace, what=f"list deployments in {namespace}"
        )
        return list(data.get("items", []))

    async def get_deployment(self, namespace: str, name: str) -> Obj:
        return dict(
            await self._call(
                self.apps.read_namespaced_deployment, name, namespace, what=f"deployment {namespace}/{name}"
            )
        )

    async def scale_deployment(self, namespace: str, name: str, replicas: int) -> Obj:
        """As `kubectl scale`: a merge patch of the deployment's `scale` subresource."""
        return dict(
            await self._call(
                self.apps.patch_namespaced_deployment_scale,
                name,
                namespace,
                {"spec": {"replicas": replicas}},
                what=f"scale deployment {namespace}/{name}",
            )
        )

    async def restart_deployment(self, namespace: str, name: str, at: datetime | None = None) -> Obj:
        """As `kubectl rollout restart`: stamp the pod template so the controller rolls every pod."""
        stamp = (at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}
        return dict(
            await self._call(
                self.apps.patch_namespaced_deployment,
                name,
                namespace,
                body,
                what=f"restart deployment {namespace}/{name}",
            )
        )


def _api_error(exc: ApiException, what: str) -> IntegrationError:
    message = _status_message(exc) or (exc.reason or "error")
    status = exc.status or 0
    if status == 404:
        return NotFound(SYSTEM, f"{what}: not found.")
    if status in (401, 403):
        return Forbidden(SYSTEM, f"{what}: the bot is not allowed to do this ({message}).")
    if status in (409, 422, 429):
        return Conflict(SYSTEM, f"{what}: {message}")
    if status >= 500 or status == 0:
        return Unavailable(SYSTEM, f"{what}: the API server answered {status} ({message}).")
    return IntegrationError(SYSTEM, f"{what}: {message}")


def _status_message(exc: ApiException) -> str:
    try:
        body = json.loads(exc.body or "{}")
    except (ValueError, TypeError):
        return ""
    return str(body.get("message", "")) if isinstance(body, dict) else ""


def _reason(exc: Exception) -> str:
    reason = getattr(exc, "reason", None) or exc
    text = str(reason)
    return text.split(": ", 1)[-1][:160]
