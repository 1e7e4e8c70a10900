"""Kubernetes through the official client, in threads of its own, every call within one deadline.

The client is blocking, so each call runs in one of this client's own worker threads
(`integrations.workers`), never in the event loop's default executor that the rest of the bot
shares: a hung API server can only exhaust these. A call's deadline (`timeout`, 10 s by default)
covers the wait for a thread and the request; the request's own socket timeout is the time left
when a thread picks it up, and urllib3 does not retry (its default would try four times, each with
the full timeout, long after the command had given up), so a thread is free again by the deadline.
Responses are read with `_preload_content=False` and decoded as plain JSON: the generated model
classes are slow to build for large lists (a status check over a thousand pods would spend most of
its time there), and the commands only need a few fields. Errors become `integrations.errors`
types with one-line messages.
"""

from __future__ import annotations

import functools
import json
import os
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast
from urllib.parse import quote

import pydantic
import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from base.vocabulary import CHANGE_CAUSE, RESTARTED_AT
from integrations import probes, telemetry
from integrations.errors import Conflict, Forbidden, IntegrationError, NotFound, Unavailable
from integrations.workers import NoWorker, Workers

SYSTEM = "Kubernetes"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
# Threads (and pooled connections) for API calls: four commands' work at a time, each asking a few
# things at once (`status` asks four, `logs` up to eight); more calls queue within their deadline.
WORKERS = 8
REDACTED = "<redacted>"  # not valid base64, so a restored backup cannot write it into a real Secret

Obj = dict[str, Any]

# kind -> (API attribute, namespaced list method): the kinds `list_objects` serves. Secrets are
# deliberately absent: they are only read through `list_secrets`, which redacts them.
_LISTS: dict[str, tuple[str, str]] = {
    "Deployment": ("apps", "list_namespaced_deployment"),
    "ReplicaSet": ("apps", "list_namespaced_replica_set"),
    "Service": ("core", "list_namespaced_service"),
    "ConfigMap": ("core", "list_namespaced_config_map"),
    "PersistentVolumeClaim": ("core", "list_namespaced_persistent_volume_claim"),
    "Ingress": ("networking", "list_namespaced_ingress"),
    "NetworkPolicy": ("networking", "list_namespaced_network_policy"),
    "HorizontalPodAutoscaler": ("autoscaling", "list_namespaced_horizontal_pod_autoscaler"),
    "PodDisruptionBudget": ("policy", "list_namespaced_pod_disruption_budget"),
    "StatefulSet": ("apps", "list_namespaced_stateful_set"),
    "DaemonSet": ("apps", "list_namespaced_daemon_set"),
    "Job": ("batch", "list_namespaced_job"),
    "CronJob": ("batch", "list_namespaced_cron_job"),
    "ServiceAccount": ("core", "list_namespaced_service_account"),
}

# kind -> (API attribute, namespaced read method): the kinds `get_object` serves (describe hpa|ingress).
_GETS: dict[str, tuple[str, str]] = {
    "HorizontalPodAutoscaler": ("autoscaling", "read_namespaced_horizontal_pod_autoscaler"),
    "Ingress": ("networking", "read_namespaced_ingress"),
}

# kind -> the (API, method) a restore reads, creates and server-side-applies it with. Secrets are
# absent (a backup holds only redacted values), and so are Jobs (creating a Job runs it again).
_RESTORE: dict[str, tuple[tuple[str, str], tuple[str, str], tuple[str, str]]] = {
    "ServiceAccount": (("core", "read_namespaced_service_account"), ("core", "create_namespaced_service_account"),
                       ("core", "patch_namespaced_service_account")),
    "ConfigMap": (("core", "read_namespaced_config_map"), ("core", "create_namespaced_config_map"),
                  ("core", "patch_namespaced_config_map")),
    "PersistentVolumeClaim": (("core", "read_namespaced_persistent_volume_claim"),
                              ("core", "create_namespaced_persistent_volume_claim"),
                              ("core", "patch_namespaced_persistent_volume_claim")),
    "Service": (("core", "read_namespaced_service"), ("core", "create_namespaced_service"),
                ("core", "patch_namespaced_service")),
    "Deployment": (("apps", "read_namespaced_deployment"), ("apps", "create_namespaced_deployment"),
                   ("apps", "patch_namespaced_deployment")),
    "StatefulSet": (("apps", "read_namespaced_stateful_set"), ("apps", "create_namespaced_stateful_set"),
                    ("apps", "patch_namespaced_stateful_set")),
    "DaemonSet": (("apps", "read_namespaced_daemon_set"), ("apps", "create_namespaced_daemon_set"),
                  ("apps", "patch_namespaced_daemon_set")),
    "CronJob": (("batch", "read_namespaced_cron_job"), ("batch", "create_namespaced_cron_job"),
                ("batch", "patch_namespaced_cron_job")),
    "HorizontalPodAutoscaler": (("autoscaling", "read_namespaced_horizontal_pod_autoscaler"),
                                ("autoscaling", "create_namespaced_horizontal_pod_autoscaler"),
                                ("autoscaling", "patch_namespaced_horizontal_pod_autoscaler")),
    "PodDisruptionBudget": (("policy", "read_namespaced_pod_disruption_budget"),
                            ("policy", "create_namespaced_pod_disruption_budget"),
                            ("policy", "patch_namespaced_pod_disruption_budget")),
    "NetworkPolicy": (("networking", "read_namespaced_network_policy"),
                      ("networking", "create_namespaced_network_policy"),
                      ("networking", "patch_namespaced_network_policy")),
    "Ingress": (("networking", "read_namespaced_ingress"), ("networking", "create_namespaced_ingress"),
                ("networking", "patch_namespaced_ingress")),
}
RESTORABLE = tuple(_RESTORE)  # in the order a restore applies them: what others refer to comes first
FIELD_MANAGER = "cf"  # the field manager of the bot's server-side applies
APPLY_PATCH = "application/apply-patch+yaml"


@dataclass(frozen=True)
class ProxyAnswer:
    """What a container answered through pods/proxy: its HTTP status, content type and body."""

    status: int
    content_type: str
    body: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class _Relayed:
    """A container's own error answer (the client raises it like an API error) as a response to read."""

    def __init__(self, exc: ApiException) -> None:
        self.status = exc.status
        self.headers = exc.headers or {}
        self.data = (exc.body or "").encode() if isinstance(exc.body, str | None) else bytes(exc.body)

    def release_conn(self) -> None:
        return None


def _from_api_server(exc: ApiException) -> bool:
    """An error the API server made (a Status object: no such pod, dial refused), not one the pod answered."""
    if not exc.status:
        return True
    try:
        body = json.loads(exc.body or "")
    except (ValueError, TypeError):
        return False
    return isinstance(body, dict) and body.get("kind") == "Status"


class TooManyRequests(Conflict):
    """HTTP 429: retry later. For an eviction it means a disruption budget forbids it for now."""


class Kube:
    """A narrow async interface over the Kubernetes API (what the commands use, nothing more)."""

    def __init__(self, api_client: client.ApiClient, timeout: float = 10.0, workers: int = WORKERS) -> None:
        self.api_client = api_client
        self.timeout = timeout
        self.workers = Workers("kube", workers)
        self.core = client.CoreV1Api(api_client)
        self.apps = client.AppsV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)
        self.networking = client.NetworkingV1Api(api_client)
        self.autoscaling = client.AutoscalingV2Api(api_client)
        self.policy = client.PolicyV1Api(api_client)
        self.calls = 0

    @classmethod
    def from_config(cls, kubeconfig: str | None = None, context: str | None = None, timeout: float = 10.0,
                    workers: int = WORKERS) -> Kube:
        """KUBECONFIG (or the given file) when present, else the in-cluster service account."""
        path = kubeconfig or os.environ.get("KUBECONFIG")
        cfg = client.Configuration()
        try:
            if path:
                config.load_kube_config(config_file=path, context=context, client_configuration=cfg,
                                        persist_config=False)
            else:
                config.load_incluster_config(client_configuration=cfg)
        except (ConfigException, OSError) as exc:
            raise IntegrationError(SYSTEM, f"could not load the Kubernetes configuration: {exc}") from None
        cfg.retries = False  # one attempt per call, bounded by its deadline (see the module docstring)
        cfg.connection_pool_maxsize = workers  # one pooled connection per thread
        return cls(client.ApiClient(cfg), timeout, workers)

    def close(self) -> None:
        self.api_client.close()
        self.workers.close()

    # --- calls -----------------------------------------------------------------------------

    async def _call(self, fn: Callable[..., Any], *args: Any, what: str, text: bool = False, raw: bool = False,
                    **kwargs: Any) -> Any:
        """One API call in a worker thread within the deadline; decode JSON (or text: logs); errors in one line."""
        kwargs["_preload_content"] = False
        self.calls += 1

        def run(left: float) -> Any:
            resp = fn(*args, _request_timeout=left, **kwargs)  # connect and read within the time left
            try:
                data = resp.data
            finally:
                resp.release_conn()
            if raw:  # a pod's answer through pods/proxy: as the container sent it
                ctype = resp.headers.get("Content-Type", "") if resp.headers else ""
                return ProxyAnswer(int(getattr(resp, "status", 200) or 200), str(ctype), bytes(data))
            if text:
                return data.decode("utf-8", "replace")
            if not data:
                return {}
            ctype = resp.headers.get("Content-Type", "") if resp.headers else ""
            if "json" in ctype or data[:1] in (b"{", b"["):
                return json.loads(data)
            return data.decode("utf-8", "replace")

        started = time.perf_counter()
        operation = getattr(fn, "__name__", "call")
        try:
            result = await self.workers.run(run, self.timeout)
        except ApiException as exc:
            error = _api_error(exc, what)
            telemetry.record(SYSTEM, operation, time.perf_counter() - started, type(error).__name__)
            raise error from None
        except NoWorker:  # every thread was held by earlier calls (waiting on a hung API server, say)
            telemetry.record(SYSTEM, operation, time.perf_counter() - started, "NoWorker")
            raise Unavailable(SYSTEM, f"{what}: no answer within {self.timeout:g}s.", code="Timeout") from None
        except urllib3.exceptions.NewConnectionError as exc:  # a subclass of urllib3's TimeoutError
            telemetry.record(SYSTEM, operation, time.perf_counter() - started, "Unreachable")
            raise Unavailable(SYSTEM, f"{what}: the API server is unreachable ({_reason(exc)}).",
                              code="Unreachable") from None
        except (TimeoutError, urllib3.exceptions.TimeoutError):
            telemetry.record(SYSTEM, operation, time.perf_counter() - started, "Timeout")
            raise Unavailable(SYSTEM, f"{what}: no answer within {self.timeout:g}s.", code="Timeout") from None
        except urllib3.exceptions.HTTPError as exc:
            telemetry.record(SYSTEM, operation, time.perf_counter() - started, "Unreachable")
            raise Unavailable(SYSTEM, f"{what}: the API server is unreachable ({_reason(exc)}).",
                              code="Unreachable") from None
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

    async def restart_deployment(self, namespace: str, name: str, at: datetime | None = None,
                                 cause: str | None = None) -> Obj:
        """As `kubectl rollout restart`: stamp the pod template so the controller rolls every pod. `cause`, when
        given, is recorded as `kubernetes.io/change-cause` in the same patch (as `--record` did): the new
        ReplicaSet carries it, so `kubectl rollout history` names the cf request behind each revision."""
        stamp = (at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
        body: Obj = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}
        if cause:
            body["metadata"] = {"annotations": {CHANGE_CAUSE: cause}}
        return dict(
            await self._call(
                self.apps.patch_namespaced_deployment,
                name,
                namespace,
                body,
                what=f"restart deployment {namespace}/{name}",
            )
        )

    # --- triage reads (issue 3) ------------------------------------------------------------

    async def get_pod(self, namespace: str, name: str) -> Obj:
        return dict(await self._call(self.core.read_namespaced_pod, name, namespace, what=f"pod {namespace}/{name}"))

    async def list_events(self, namespace: str | None, field_selector: str = "") -> list[Obj]:
        """Events in one namespace (None: all), optionally narrowed to one object by a field selector."""
        if namespace is None:
            data = await self._call(self.core.list_event_for_all_namespaces, field_selector=field_selector,
                                    what="list events in all namespaces")
        else:
            data = await self._call(self.core.list_namespaced_event, namespace, field_selector=field_selector,
                                    what=f"list events in {namespace}")
        return list(data.get("items", []))

    async def pod_log(
        self, namespace: str, name: str, *, container: str | None = None, previous: bool = False,
        tail: int | None = None, since_seconds: int | None = None, timestamps: bool = False,
        limit_bytes: int | None = None,
    ) -> str:
        """`kubectl logs` for one container, as text (JSON log lines must not be decoded as JSON)."""
        which = "previous log" if previous else "log"
        return str(await self._call(
            self.core.read_namespaced_pod_log, name, namespace, container=container, previous=previous or None,
            tail_lines=tail, since_seconds=since_seconds, timestamps=timestamps or None, limit_bytes=limit_bytes,
            what=f"{which} of pod {namespace}/{name}" + (f" container {container}" if container else ""), text=True,
        ))

    async def pod_metrics(self, namespace: str | None) -> list[Obj]:
        """metrics.k8s.io PodMetrics (what `kubectl top pods` reads)."""
        if namespace is None:
            data = await self._call(self.custom.list_cluster_custom_object, "metrics.k8s.io", "v1beta1", "pods",
                                    what="pod metrics")
        else:
            data = await self._call(self.custom.list_namespaced_custom_object, "metrics.k8s.io", "v1beta1",
                                    namespace, "pods", what=f"pod metrics in {namespace}")
        return list(data.get("items", []))

    async def node_metrics(self) -> list[Obj]:
        data = await self._call(self.custom.list_cluster_custom_object, "metrics.k8s.io", "v1beta1", "nodes",
                                what="node metrics")
        return list(data.get("items", []))

    async def list_objects(self, kind: str, namespace: str, label_selector: str = "") -> list[Obj]:
        """One namespaced list of `kind` (see `_LISTS`); items carry apiVersion and kind, as in a backup."""
        api_name, method = _LISTS[kind]
        data = await self._call(getattr(getattr(self, api_name), method), namespace, label_selector=label_selector,
                                what=f"list {kind} objects in {namespace}")
        version = data.get("apiVersion", "v1")
        items = list(data.get("items", []))
        for item in items:
            item.setdefault("apiVersion", version)
            item.setdefault("kind", kind)
        return items

    async def get_object(self, kind: str, namespace: str, name: str) -> Obj:
        """One namespaced object of `kind` (see `_GETS`), as `kubectl get KIND NAME -o json` reads it."""
        api_name, method = _GETS[kind]
        return dict(await self._call(getattr(getattr(self, api_name), method), name, namespace,
                                     what=f"{kind} {namespace}/{name}"))

    async def pod_proxy_get(self, namespace: str, pod: str, port: int, path: str) -> ProxyAnswer:
        """GET PATH on the pod's PORT through the API server's pods proxy (no exec into the pod).

        Whatever the container answers, an error status included, is returned as it is; only the API
        server's own refusals (no such pod, the dial failed, not allowed) raise, as for any other call.
        """
        connect = self.core.connect_get_namespaced_pod_proxy_with_path

        def pod_proxy_get(*args: Any, **kwargs: Any) -> Any:
            try:
                return connect(*args, **kwargs)
            except ApiException as exc:
                if _from_api_server(exc):
                    raise
                return _Relayed(exc)

        return cast(ProxyAnswer, await self._call(
            pod_proxy_get, f"{pod}:{port}", namespace, path.lstrip("/"),
            what=f"GET {path} on pod {namespace}/{pod} port {port}", raw=True))

    async def pod_websocket_ms(self, namespace: str, pod: str, port: int, path: str, timeout: float,
                               subprotocols: list[str]) -> float:
        """Open a WebSocket to PATH on the pod's PORT through the pods proxy; the handshake's time in ms.

        The upgrade goes to the API server with the client's own credentials and CA (the proxy is
        upgrade-aware), so it reaches the pod without the load balancer or ingress in front of it. The
        token is read in a worker thread: for EKS it may run the kubeconfig's exec plugin.
        """
        cfg = self.api_client.configuration
        base = str(cfg.host).rstrip("/")
        scheme, _, rest = base.partition("://")
        target = f"{quote(pod)}:{port}"
        url = (f"{'wss' if scheme == 'https' else 'ws'}://{rest}/api/v1/namespaces/{quote(namespace)}/pods/"
               f"{target}/proxy/{path.lstrip('/')}")
        token = await self.workers.run(lambda _left: cfg.get_api_key_with_prefix("authorization"), self.timeout)
        headers = {"Authorization": token} if token else {}
        return await probes.websocket_connect_ms(
            url, timeout, label=f"pod {pod} port {port} {path} through the API server", headers=headers,
            ssl=_ssl_context(cfg) if scheme == "https" else None, subprotocols=subprotocols)

    async def list_secrets(self, namespace: str) -> list[Obj]:
        """Secrets with every value replaced by REDACTED, here, before any command can see them."""
        data = await self._call(self.core.list_namespaced_secret, namespace, what=f"list secrets in {namespace}")
        return [redact_secret(item) for item in data.get("items", [])]

    @functools.cached_property
    def batch(self) -> client.BatchV1Api:
        """Jobs and CronJobs (backups and restores), made on first use."""
        return client.BatchV1Api(self.api_client)

    # --- restore (issue 11): create or server-side apply, each optionally as a server-side dry run ---

    def _restore_method(self, kind: str, which: int) -> Callable[..., Any]:
        if kind not in _RESTORE:
            raise IntegrationError(SYSTEM, f"{kind} objects are not restored by the bot.")
        api_name, method = _RESTORE[kind][which]
        fn: Callable[..., Any] = getattr(getattr(self, api_name), method)
        return fn

    async def read_object(self, kind: str, namespace: str, name: str) -> Obj | None:
        """One object of a restorable kind (see `RESTORABLE`), or None when it does not exist."""
        try:
            obj = dict(await self._call(self._restore_method(kind, 0), name, namespace,
                                        what=f"{kind} {namespace}/{name}"))
        except NotFound:
            return None
        obj.setdefault("kind", kind)
        return obj

    async def create_object(self, namespace: str, body: Obj, *, dry_run: bool = False) -> Obj:
        """POST the object (with `dryRun=All`: validated and defaulted by the server, not stored).

        The generated client checks a create's body against its own models first (an apply's it does
        not): a field it does not know, or one it requires, is refused here as a Conflict naming it."""
        kind, name = body["kind"], body["metadata"]["name"]
        what = f"{'dry-run ' if dry_run else ''}create {kind} {namespace}/{name}"
        try:
            return dict(await self._call(self._restore_method(kind, 1), namespace, body,
                                         dry_run="All" if dry_run else None, field_manager=FIELD_MANAGER, what=what))
        except pydantic.ValidationError as exc:
            fields = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in exc.errors()[:3])
            raise Conflict(SYSTEM, f"{what}: the Kubernetes client refuses the object ({fields}).") from None

    async def apply_object(self, namespace: str, body: Obj, *, dry_run: bool = False) -> Obj:
        """`kubectl apply --server-side --force-conflicts` as field manager `cf`: the fields in `body` win,
        every other field of the live object is kept (with `dryRun=All`: the result, not stored)."""
        kind, name = body["kind"], body["metadata"]["name"]
        return dict(await self._call(
            self._restore_method(kind, 2), name, namespace, body, dry_run="All" if dry_run else None,
            field_manager=FIELD_MANAGER, force=True, _content_type=APPLY_PATCH,
            what=f"{'dry-run ' if dry_run else ''}apply {kind} {namespace}/{name}"))

    # --- changes (issue 3) ----------------------------------------------------------------

    async def set_unschedulable(self, name: str, unschedulable: bool) -> Obj:
        """`kubectl cordon` / `uncordon`: a patch of `spec.unschedulable`."""
        body = {"spec": {"unschedulable": True if unschedulable else None}}
        verb = "cordon" if unschedulable else "uncordon"
        return dict(await self._call(self.core.patch_node, name, body, what=f"{verb} node {name}"))

    async def evict_pod(self, namespace: str, name: str) -> None:
        """POST pods/NAME/eviction (policy/v1); raises TooManyRequests when a disruption budget says 429."""
        body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": namespace}}
        await self._call(self.core.create_namespaced_pod_eviction, name, namespace, body,
                         what=f"evict pod {namespace}/{name}")

    async def patch_deployment(self, namespace: str, name: str, body: Obj | list[Obj]) -> Obj:
        """A dict is a strategic merge patch, a list a JSON patch (the client picks the content type)."""
        return dict(await self._call(self.apps.patch_namespaced_deployment, name, namespace, body,
                                     what=f"patch deployment {namespace}/{name}"))

    async def get_network_policy(self, namespace: str, name: str) -> Obj:
        return dict(await self._call(self.networking.read_namespaced_network_policy, name, namespace,
                                     what=f"network policy {namespace}/{name}"))

    async def create_network_policy(self, namespace: str, body: Obj) -> Obj:
        return dict(await self._call(self.networking.create_namespaced_network_policy, namespace, body,
                                     what=f"create network policy in {namespace}"))

    async def patch_network_policy(self, namespace: str, name: str, operations: list[Obj]) -> Obj:
        """A JSON patch (the runbook's `kubectl patch --type=json`)."""
        return dict(await self._call(self.networking.patch_namespaced_network_policy, name, namespace, operations,
                                     what=f"patch network policy {namespace}/{name}"))


def _ssl_context(cfg: client.Configuration) -> ssl.SSLContext:
    """TLS as the client's own calls use it: the kubeconfig's CA, client certificate and verification."""
    context = ssl.create_default_context(cafile=cfg.ssl_ca_cert or None)
    if not cfg.verify_ssl:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif cfg.assert_hostname is False:
        context.check_hostname = False
    if cfg.cert_file:
        context.load_cert_chain(cfg.cert_file, cfg.key_file or None)
    return context


def redact_secret(secret: Obj) -> Obj:
    """A copy of a Secret with its values (data, stringData, last-applied annotation) replaced by REDACTED."""
    out = dict(secret)
    for key in ("data", "stringData"):
        if isinstance(out.get(key), dict):
            out[key] = {k: REDACTED for k in out[key]}
    meta = dict(out.get("metadata") or {})
    annotations = dict(meta.get("annotations") or {})
    if LAST_APPLIED in annotations:
        annotations[LAST_APPLIED] = REDACTED
        meta["annotations"] = annotations
    meta.pop("managedFields", None)
    out["metadata"] = meta
    out.setdefault("apiVersion", "v1")
    out.setdefault("kind", "Secret")
    return out


def _api_error(exc: ApiException, what: str) -> IntegrationError:
    error = _api_error_type(exc, what)
    status = exc.status or 0
    error.code = str(status) if status >= 500 else (_status_reason(exc) or str(status))  # Forbidden, 500
    return error


def _status_reason(exc: ApiException) -> str:
    """The Status object's `reason` (Forbidden, NotFound, Conflict, TooManyRequests), or ""."""
    try:
        body = json.loads(exc.body or "{}")
    except (ValueError, TypeError):
        return ""
    return str(body.get("reason") or "") if isinstance(body, dict) else ""


def _api_error_type(exc: ApiException, what: str) -> IntegrationError:
    message = _status_message(exc) or (exc.reason or "error")
    status = exc.status or 0
    if status == 404:
        return NotFound(SYSTEM, f"{what}: not found.")
    if status in (401, 403):
        return Forbidden(SYSTEM, f"{what}: the bot is not allowed to do this ({message}).")
    if status == 429:
        return TooManyRequests(SYSTEM, f"{what}: {_cause(exc) or message}")
    if status in (409, 422):
        return Conflict(SYSTEM, f"{what}: {message}")
    if status >= 500 or status == 0:
        return Unavailable(SYSTEM, f"{what}: the API server answered {status} ({message}).")
    return IntegrationError(SYSTEM, f"{what}: {message}")


def _cause(exc: ApiException) -> str:
    """The first `details.causes[].message` (a disruption budget names itself there)."""
    try:
        causes = json.loads(exc.body or "{}").get("details", {}).get("causes") or []
    except (ValueError, TypeError, AttributeError):
        return ""
    return str(causes[0].get("message", "")) if causes and isinstance(causes[0], dict) else ""


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
