"""The sandbox against the real clients: /usr/bin/kubectl and the official kubernetes package.

Each test serves a fresh seeded Sandbox from a background thread with its own event loop (so
blocking kubectl subprocesses and the synchronous Python client can talk to it), writes a
kubeconfig under tmp_path, and checks what an engineer would see. kubectl's HOME and
discovery cache live in tmp_path too, so nothing leaks between tests or from the machine.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
import yaml
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes import watch as k8s_watch

from sandbox import Sandbox
from sandbox.patch import json_patch, strategic_merge_patch
from sandbox.selectors import label_selector_predicate

KUBECTL = "/usr/bin/kubectl"
NODE_A, NODE_B, NODE_C = (f"ip-10-0-{i}-1{i}.ec2.internal" for i in (1, 2, 3))
APPS = {"graphql-api": 3, "websocket-service": 3, "document-service": 2, "collaboration-editor": 2}

pytestmark = pytest.mark.skipif(not os.path.exists(KUBECTL), reason="kubectl is not installed")


class Served:
    """A Sandbox serving from its own loop thread, plus a kubectl wired to it."""

    def __init__(self, sandbox: Sandbox, home: Path):
        self.sandbox = sandbox
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="sandbox-loop", daemon=True)
        self.thread.start()
        self.url = self.run(sandbox.start())
        home.mkdir(parents=True, exist_ok=True)
        self.kubeconfig = sandbox.write_kubeconfig(home / "kubeconfig")
        self.env = {"HOME": str(home), "KUBECACHEDIR": str(home / "cache"), "PATH": os.environ.get("PATH", ""),
                    "KUBECONFIG": str(self.kubeconfig)}

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def kubectl(self, *args: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([KUBECTL, *args], capture_output=True, text=True, env=self.env, timeout=timeout,
                              check=False)
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({done.returncode}): {done.stderr}")
        return done

    def out(self, *args: str) -> str:
        return self.kubectl(*args).stdout

    def close(self) -> None:
        self.run(self.sandbox.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def table(text: str) -> list[dict[str, str]]:
    """kubectl's column output as dicts keyed by header (columns are 2+ spaces apart)."""
    lines = [line for line in text.splitlines() if line.strip()]
    header = re.split(r"\s{2,}", lines[0].strip())
    return [dict(zip(header, re.split(r"\s{2,}", line.strip()), strict=False)) for line in lines[1:]]


@pytest.fixture
def make_cluster(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    served: list[Served] = []

    def make(**kwargs: Any) -> Served:
        cluster = Served(Sandbox(**kwargs), tmp_path / f"cluster{len(served)}")
        served.append(cluster)
        return cluster

    yield make
    for cluster in served:
        cluster.close()


@pytest.fixture
def cluster(make_cluster: Callable[..., Served]) -> Served:
    return make_cluster()


@pytest.fixture
def k8s(cluster: Served) -> Iterator[SimpleNamespace]:
    api = k8s_config.new_client_from_config(config_file=str(cluster.kubeconfig))
    yield SimpleNamespace(core=k8s_client.CoreV1Api(api), apps=k8s_client.AppsV1Api(api), api=api)
    api.close()


def pods_of(cluster: Served, app: str, namespace: str = "collaboration") -> list[dict[str, str]]:
    return table(cluster.out("get", "pods", "-n", namespace, "-l", f"app={app}", "-o", "wide"))


# --- kubectl get: server-side tables ------------------------------------------------------------


def test_get_pods_deployments_and_nodes_print_kubectls_columns(cluster: Served) -> None:
    pods = cluster.out("get", "pods")
    assert pods.splitlines()[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    rows = table(pods)
    assert len(rows) == sum(APPS.values())
    assert {r["STATUS"] for r in rows} == {"Running"} and {r["READY"] for r in rows} == {"1/1"}
    for app, replicas in APPS.items():
        assert sum(r["NAME"].startswith(app + "-") for r in rows) == replicas

    deployments = table(cluster.out("get", "deployments"))
    assert list(deployments[0]) == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert {d["NAME"]: d["READY"] for d in deployments} == {a: f"{n}/{n}" for a, n in APPS.items()}

    nodes = table(cluster.out("get", "nodes"))
    assert [n["NAME"] for n in nodes] == [NODE_A, NODE_B, NODE_C]
    assert {n["STATUS"] for n in nodes} == {"Ready"}
    assert all(n["VERSION"].startswith("v1.32.") for n in nodes)


def test_get_pods_all_namespaces_and_wide(cluster: Served) -> None:
    rows = table(cluster.out("get", "pods", "-A", "-o", "wide"))
    assert list(rows[0])[:2] == ["NAMESPACE", "NAME"] and "NODE" in rows[0] and "IP" in rows[0]
    system = [r["NAME"] for r in rows if r["NAMESPACE"] == "kube-system"]
    assert sum(name.startswith("aws-node-") for name in system) == 3
    assert sum(name.startswith("kube-proxy-") for name in system) == 3
    assert sum(name.startswith("coredns-") for name in system) == 2
    assert {r["NODE"] for r in rows} == {NODE_A, NODE_B, NODE_C}


def test_not_found_is_worded_like_the_api_server(cluster: Served) -> None:
    done = cluster.kubectl("get", "deployment", "nope", check=False)
    assert done.returncode == 1
    assert done.stderr.strip() == 'Error from server (NotFound): deployments.apps "nope" not found'
    done = cluster.kubectl("get", "pod", "nope", "-n", "kube-system", check=False)
    assert done.stderr.strip() == 'Error from server (NotFound): pods "nope" not found'


def test_networkpolicy_yaml_and_hpa_table(cluster: Served) -> None:
    doc = yaml.safe_load(cluster.out("get", "networkpolicy", "-o", "yaml"))
    policy = next(i for i in doc["items"] if i["metadata"]["name"] == "collaboration-network-policy")
    assert policy["kind"] == "NetworkPolicy"
    assert policy["spec"]["ingress"][0]["from"][0]["ipBlock"] == {"cidr": "0.0.0.0/0", "except": ["10.0.99.0/24"]}

    hpas = {h["NAME"]: h for h in table(cluster.out("get", "hpa"))}
    assert set(hpas) == {"graphql-api", "websocket-service"}
    graphql = hpas["graphql-api"]
    assert graphql["REFERENCE"] == "Deployment/graphql-api"
    assert re.fullmatch(r"cpu: \d+%/70%", graphql["TARGETS"])
    assert (graphql["MINPODS"], graphql["MAXPODS"], graphql["REPLICAS"]) == ("3", "20", "3")


def test_seeded_objects_are_plausible(cluster: Served) -> None:
    nodes = json.loads(cluster.out("get", "nodes", "-o", "json"))["items"]
    ids = {n["spec"]["providerID"] for n in nodes}
    assert len(ids) == 3 and all(re.fullmatch(r"aws:///us-east-1[abc]/i-0abc[0-9a-f]+", i) for i in ids)
    assert {n["metadata"]["labels"]["topology.kubernetes.io/zone"] for n in nodes} == {
        "us-east-1a", "us-east-1b", "us-east-1c"}
    secret = json.loads(cluster.out("get", "secret", "app-secrets", "-o", "json"))
    assert {"DATABASE_URL", "JWT_SECRET"} <= set(secret["data"])
    deployment = json.loads(cluster.out("get", "deployment", "graphql-api", "-o", "json"))
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    assert all("value" not in e for e in env if "SECRET" in e["name"] or "URL" in e["name"])
    history = cluster.out("rollout", "history", "deployment/document-service")
    assert re.search(r"^1\s", history, re.M) and re.search(r"^2\s", history, re.M)


# --- kubectl changes ------------------------------------------------------------------------------


def test_scale_deployment(cluster: Served) -> None:
    assert cluster.out("scale", "deployment", "graphql-api", "--replicas=10").strip() == \
        "deployment.apps/graphql-api scaled"
    pods = pods_of(cluster, "graphql-api")
    assert len(pods) == 10 and {p["STATUS"] for p in pods} == {"Running"}
    row = table(cluster.out("get", "deployment", "graphql-api"))[0]
    assert (row["READY"], row["UP-TO-DATE"], row["AVAILABLE"]) == ("10/10", "10", "10")
    cluster.out("scale", "deployment", "graphql-api", "--replicas=2")
    assert len(pods_of(cluster, "graphql-api")) == 2


def test_rollout_restart_status_history_and_undo(cluster: Served) -> None:
    before = {rs["NAME"] for rs in table(cluster.out("get", "rs", "-l", "app=graphql-api"))}
    assert len(before) == 2
    assert "restarted" in cluster.out("rollout", "restart", "deployment", "graphql-api")
    annotations = json.loads(cluster.out("get", "deployment", "graphql-api", "-o",
                                         "jsonpath={.spec.template.metadata.annotations}"))
    assert "kubectl.kubernetes.io/restartedAt" in annotations
    after = table(cluster.out("get", "rs", "-l", "app=graphql-api"))
    new = [rs for rs in after if rs["NAME"] not in before]
    assert len(new) == 1 and new[0]["DESIRED"] == new[0]["READY"] == "3"
    assert all(rs["DESIRED"] == "0" for rs in after if rs["NAME"] in before)

    started = time.monotonic()
    status = cluster.out("rollout", "status", "deployment/graphql-api", "--timeout=10s")
    assert 'deployment "graphql-api" successfully rolled out' in status
    assert time.monotonic() - started < 5
    history = cluster.out("rollout", "history", "deployment/graphql-api")
    assert re.search(r"^3\s", history, re.M)

    assert "rolled back" in cluster.out("rollout", "undo", "deployment", "graphql-api")
    current = {rs["NAME"] for rs in table(cluster.out("get", "rs", "-l", "app=graphql-api"))
               if rs["DESIRED"] == "3"}
    assert len(current) == 1 and current <= before  # the previous ReplicaSet came back
    revisions = re.findall(r"^(\d+)\s", cluster.out("rollout", "history", "deployment/graphql-api"), re.M)
    assert revisions == ["1", "3", "4"]  # revision 2 became revision 4
    for pod in pods_of(cluster, "graphql-api"):
        assert pod["NAME"].startswith(next(iter(current)))


def test_cordon_and_uncordon(cluster: Served) -> None:
    assert "cordoned" in cluster.out("cordon", NODE_A)
    status = {n["NAME"]: n["STATUS"] for n in table(cluster.out("get", "nodes"))}
    assert status[NODE_A] == "Ready,SchedulingDisabled" and status[NODE_B] == "Ready"
    cluster.out("scale", "deployment", "collaboration-editor", "--replicas=6")
    new_nodes = {p["NODE"] for p in pods_of(cluster, "collaboration-editor") if p["AGE"].endswith("s")}
    assert NODE_A not in new_nodes
    assert "uncordoned" in cluster.out("uncordon", NODE_A)
    assert {n["STATUS"] for n in table(cluster.out("get", "nodes"))} == {"Ready"}


def test_drain_evicts_everything_but_daemonsets(cluster: Served) -> None:
    done = cluster.kubectl("drain", NODE_A, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=20s")
    assert f"node/{NODE_A} drained" in done.stdout
    assert "evicting pod" in done.stdout + done.stderr
    left = table(cluster.out("get", "pods", "-A", "-o", "wide", "--field-selector", f"spec.nodeName={NODE_A}"))
    assert {p["NAME"].rsplit("-", 1)[0] for p in left} == {"aws-node", "kube-proxy"}
    for app, replicas in APPS.items():
        pods = pods_of(cluster, app)
        assert len(pods) == replicas and NODE_A not in {p["NODE"] for p in pods}
        assert {p["STATUS"] for p in pods} == {"Running"}
    pdb = table(cluster.out("get", "pdb", "websocket-service-pdb"))[0]
    assert pdb["ALLOWED DISRUPTIONS"] == "1"
    assert table(cluster.out("get", "node", NODE_A))[0]["STATUS"] == "Ready,SchedulingDisabled"


def test_drain_respects_the_disruption_budget(cluster: Served) -> None:
    cluster.out("scale", "deployment", "websocket-service", "--replicas=2")
    node = pods_of(cluster, "websocket-service")[0]["NODE"]
    done = cluster.kubectl("drain", node, "--ignore-daemonsets", "--delete-emptydir-data",
                           "--pod-selector=app=websocket-service", "--timeout=1s", check=False)
    assert done.returncode != 0
    assert "Cannot evict pod as it would violate the pod's disruption budget." in done.stderr
    assert len(pods_of(cluster, "websocket-service")) == 2
    assert node in {p["NODE"] for p in pods_of(cluster, "websocket-service")}


def test_kubectl_create_family_over_protobuf(cluster: Served) -> None:
    assert cluster.out("create", "secret", "generic", "x", "--from-literal=a=b").strip() == "secret/x created"
    data = json.loads(cluster.out("get", "secret", "x", "-o", "jsonpath={.data}"))
    assert base64.b64decode(data["a"]) == b"b"
    cluster.out("create", "deployment", "web", "--image=nginx:1.27", "--replicas=2", "--port=80")
    assert table(cluster.out("get", "deployment", "web"))[0]["READY"] == "2/2"
    cluster.out("create", "pdb", "web", "--selector=app=web", "--min-available=1")
    assert table(cluster.out("get", "pdb", "web"))[0]["ALLOWED DISRUPTIONS"] == "1"
    # autoscale posts an autoscaling/v1 HPA; it is stored as v2 and readable in both versions
    cluster.out("autoscale", "deployment", "web", "--min=2", "--max=5", "--cpu-percent=60")
    assert re.fullmatch(r"cpu: \d+%/60%", table(cluster.out("get", "hpa", "web"))[0]["TARGETS"])
    v1 = json.loads(cluster.out("get", "horizontalpodautoscalers.v1.autoscaling", "web", "-o", "json"))
    assert (v1["apiVersion"], v1["spec"]["targetCPUUtilizationPercentage"]) == ("autoscaling/v1", 60)


def test_apply_twice_then_delete(cluster: Served, tmp_path: Path) -> None:
    manifest = tmp_path / "flags.yaml"
    doc = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "feature-flags"},
           "data": {"presence": "on"}}
    manifest.write_text(yaml.safe_dump(doc))
    assert cluster.out("apply", "-f", str(manifest)).strip() == "configmap/feature-flags created"
    doc["data"] = {"presence": "off", "cursors": "on"}
    manifest.write_text(yaml.safe_dump(doc))
    assert cluster.out("apply", "-f", str(manifest)).strip() == "configmap/feature-flags configured"
    assert json.loads(cluster.out("get", "cm", "feature-flags", "-o", "jsonpath={.data}")) == doc["data"]
    assert cluster.out("apply", "-f", str(manifest)).strip() == "configmap/feature-flags unchanged"
    assert 'configmap "feature-flags" deleted' in cluster.out("delete", "-f", str(manifest))
    gone = cluster.kubectl("get", "cm", "feature-flags", check=False)
    assert gone.stderr.strip() == 'Error from server (NotFound): configmaps "feature-flags" not found'


def test_daemonset_rollout_and_service_endpoints(cluster: Served) -> None:
    before = {p["NAME"] for p in table(cluster.out("get", "pods", "-n", "kube-system", "-l", "k8s-app=kube-proxy"))}
    cluster.out("rollout", "restart", "daemonset/kube-proxy", "-n", "kube-system")
    assert "successfully rolled out" in cluster.out("rollout", "status", "ds/kube-proxy", "-n", "kube-system")
    after = table(cluster.out("get", "pods", "-n", "kube-system", "-l", "k8s-app=kube-proxy", "-o", "wide"))
    assert len(after) == 3 and not before & {p["NAME"] for p in after}
    assert {p["NODE"] for p in after} == {NODE_A, NODE_B, NODE_C}

    pod_ips = {p["IP"] for p in pods_of(cluster, "graphql-api")}
    endpoints = json.loads(cluster.out("get", "endpoints", "graphql-api", "-o", "json"))["subsets"][0]
    assert {a["ip"] for a in endpoints["addresses"]} == pod_ips and endpoints["ports"][0]["port"] == 4000
    described = cluster.out("describe", "service", "graphql-api")
    assert re.search(r"Endpoints:\s+(\S+:4000,?){3}", described)


def test_relabelled_pod_is_released_and_replaced(cluster: Served) -> None:
    victim = pods_of(cluster, "graphql-api")[0]
    cluster.out("label", "pod", victim["NAME"], "app=quarantined", "--overwrite")
    pods = pods_of(cluster, "graphql-api")
    assert len(pods) == 3 and victim["NAME"] not in {p["NAME"] for p in pods}
    kept = json.loads(cluster.out("get", "pod", victim["NAME"], "-o", "json"))
    assert "ownerReferences" not in kept["metadata"] and kept["status"]["phase"] == "Running"
    endpoints = json.loads(cluster.out("get", "endpoints", "graphql-api", "-o", "json"))["subsets"][0]
    assert victim["IP"] not in {a["ip"] for a in endpoints["addresses"]}


def test_delete_deployment_cascades(cluster: Served) -> None:
    cluster.out("delete", "deployment", "collaboration-editor")
    assert cluster.out("get", "rs", "-l", "app=collaboration-editor", "-o", "name") == ""
    assert cluster.out("get", "pods", "-l", "app=collaboration-editor", "-o", "name") == ""


# --- logs, events, metrics ------------------------------------------------------------------------


def test_logs(cluster: Served) -> None:
    done = cluster.kubectl("logs", "deploy/graphql-api")
    assert "Found 3 pods, using pod/graphql-api-" in done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) > 100 and any("ERROR" in line and "pool" in line for line in lines)
    tail = cluster.out("logs", "-l", "app=graphql-api", "--tail=5").splitlines()
    assert len(tail) == 15
    stamped = cluster.out("logs", "deploy/websocket-service", "--tail=3", "--timestamps").splitlines()
    assert len(stamped) == 3 and all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z ", s) for s in stamped)
    pod = pods_of(cluster, "graphql-api")[0]["NAME"]
    previous = cluster.kubectl("logs", pod, "--previous", check=False)
    assert previous.stderr.strip() == (f'Error from server (BadRequest): previous terminated container '
                                       f'"graphql-api" in pod "{pod}" not found')


def test_events(cluster: Served) -> None:
    events = table(cluster.out("get", "events"))
    assert list(events[0])[:5] == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    reasons = {e["REASON"] for e in events}
    assert {"ScalingReplicaSet", "SuccessfulCreate", "Scheduled", "Started", "Killing"} <= reasons
    cluster.out("scale", "deployment", "document-service", "--replicas=3")
    messages = [e["MESSAGE"] for e in table(cluster.out("get", "events"))]
    assert any(re.fullmatch(r"Scaled up replica set document-service-\w+ from 2 to 3", m) for m in messages)


def test_top_pods_and_nodes(cluster: Served) -> None:
    pods = table(cluster.out("top", "pods", "-n", "collaboration"))
    assert len(pods) == sum(APPS.values())
    assert all(re.fullmatch(r"\d+m", p["CPU(cores)"]) and re.fullmatch(r"\d+Mi", p["MEMORY(bytes)"]) for p in pods)
    nodes = table(cluster.out("top", "nodes"))
    assert [n["NAME"] for n in nodes] == [NODE_A, NODE_B, NODE_C]
    assert all(re.fullmatch(r"\d+%", n["CPU(%)"]) for n in nodes)


def test_get_watch_sees_new_pods(cluster: Served) -> None:
    watcher = subprocess.Popen([KUBECTL, "get", "pods", "-l", "app=document-service", "-w"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cluster.env)
    try:
        assert watcher.stdout is not None
        assert watcher.stdout.readline().split()[:2] == ["NAME", "READY"]
        for _ in range(2):
            assert watcher.stdout.readline().startswith("document-service-")
        cluster.out("scale", "deployment", "document-service", "--replicas=3")
        line = watcher.stdout.readline()
        assert line.startswith("document-service-") and "Running" in line
    finally:
        watcher.terminate()
        watcher.communicate(timeout=10)


# --- the Python client ----------------------------------------------------------------------------


def test_python_client_reads_scales_and_patches(k8s: SimpleNamespace) -> None:
    pods = k8s.core.list_namespaced_pod("collaboration", label_selector="app=graphql-api").items
    assert len(pods) == 3 and all(p.status.phase == "Running" and p.spec.node_name for p in pods)
    none = k8s.core.list_namespaced_pod("collaboration", label_selector="app in (nope),tier!=backend").items
    assert none == []

    scale = k8s.apps.read_namespaced_deployment_scale("graphql-api", "collaboration")
    assert (scale.spec.replicas, scale.status.selector) == (3, "app=graphql-api")
    scale = k8s.apps.patch_namespaced_deployment_scale("graphql-api", "collaboration", {"spec": {"replicas": 5}})
    assert scale.spec.replicas == 5
    assert len(k8s.core.list_namespaced_pod("collaboration", label_selector="app=graphql-api").items) == 5

    before = k8s.apps.read_namespaced_deployment("graphql-api", "collaboration")
    patch = {"spec": {"template": {"spec": {"containers": [
        {"name": "graphql-api", "env": [{"name": "LOG_LEVEL", "value": "debug"}]}]}}}}
    after = k8s.apps.patch_namespaced_deployment("graphql-api", "collaboration", patch)
    assert after.metadata.generation == before.metadata.generation + 1
    env = {e.name: e for e in after.spec.template.spec.containers[0].env}
    assert env["LOG_LEVEL"].value == "debug" and env["DATABASE_URL"].value_from.secret_key_ref.name == "app-secrets"
    status = k8s.apps.read_namespaced_deployment("graphql-api", "collaboration").status
    assert (status.updated_replicas, status.ready_replicas, status.observed_generation) == \
        (5, 5, after.metadata.generation)


def test_python_client_eviction_and_budget(k8s: SimpleNamespace) -> None:
    body = k8s_client.V1Eviction(metadata=k8s_client.V1ObjectMeta(namespace="collaboration"))
    victim = k8s.core.list_namespaced_pod("collaboration", label_selector="app=websocket-service").items[0]
    body.metadata.name = victim.metadata.name
    k8s.core.create_namespaced_pod_eviction(victim.metadata.name, "collaboration", body)
    pods = k8s.core.list_namespaced_pod("collaboration", label_selector="app=websocket-service").items
    assert len(pods) == 3 and victim.metadata.name not in {p.metadata.name for p in pods}

    k8s.apps.patch_namespaced_deployment_scale("websocket-service", "collaboration", {"spec": {"replicas": 2}})
    pod = k8s.core.list_namespaced_pod("collaboration", label_selector="app=websocket-service").items[0]
    body.metadata.name = pod.metadata.name
    with pytest.raises(k8s_client.ApiException) as refused:
        k8s.core.create_namespaced_pod_eviction(pod.metadata.name, "collaboration", body)
    assert refused.value.status == 429
    status = json.loads(refused.value.body)
    assert status["reason"] == "TooManyRequests"
    assert status["message"] == "Cannot evict pod as it would violate the pod's disruption budget."
    assert "websocket-service-pdb needs 2 healthy pods and has 2 currently" in status["details"]["causes"][0]["message"]


def test_python_client_logs_and_watch(k8s: SimpleNamespace) -> None:
    pod = k8s.core.list_namespaced_pod("collaboration", label_selector="app=graphql-api").items[0]
    log = k8s.core.read_namespaced_pod_log(pod.metadata.name, "collaboration", tail_lines=4)
    assert len(log.splitlines()) == 4 and all(line.startswith("{") for line in log.splitlines())
    recent = k8s.core.read_namespaced_pod_log(pod.metadata.name, "collaboration", since_seconds=60)
    assert len(recent.splitlines()) < len(k8s.core.read_namespaced_pod_log(pod.metadata.name,
                                                                            "collaboration").splitlines())
    with pytest.raises(k8s_client.ApiException) as missing:
        k8s.core.read_namespaced_pod("nope", "collaboration")
    assert missing.value.status == 404

    events = [(e["type"], e["object"].metadata.name) for e in k8s_watch.Watch().stream(
        k8s.apps.list_namespaced_deployment, "collaboration", timeout_seconds=1)]
    assert sorted(events) == sorted(("ADDED", name) for name in APPS)


# --- raw HTTP, on the test's own loop ---------------------------------------------------------------


async def test_discovery_tables_and_watch_over_http() -> None:
    sandbox = Sandbox()
    url = await sandbox.start()
    try:
        async with aiohttp.ClientSession(url) as http:
            async with http.get("/version") as resp:
                assert (await resp.json())["minor"] == "32"
            async with http.get("/apis", headers={"Accept": "application/json;g=apidiscovery.k8s.io;v=v2;"
                                                            "as=APIGroupDiscoveryList,application/json"}) as resp:
                assert resp.content_type == "application/json"
                groups = {g["name"] for g in (await resp.json())["groups"]}
            assert {"apps", "policy", "autoscaling", "networking.k8s.io", "metrics.k8s.io"} <= groups
            async with http.get("/api/v1") as resp:
                resources = {r["name"]: r for r in (await resp.json())["resources"]}
            assert resources["pods/eviction"]["group"] == "policy" and resources["pods/log"]["kind"] == "Pod"
            async with http.get("/apis/apps/v1") as resp:
                resources = {r["name"]: r for r in (await resp.json())["resources"]}
            assert resources["deployments"]["shortNames"] == ["deploy"]
            assert resources["deployments/scale"]["kind"] == "Scale"
            accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
            async with http.get("/api/v1/nodes", headers={"Accept": accept}) as resp:
                tbl = await resp.json()
            assert tbl["kind"] == "Table" and tbl["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
            async with http.get("/apis/apps/v1/namespaces/collaboration/deployments/nope") as resp:
                assert resp.status == 404
                assert (await resp.json())["details"] == {"name": "nope", "group": "apps", "kind": "deployments"}
            calls = sandbox.api_calls
            params = {"watch": "true", "timeoutSeconds": "1", "labelSelector": "app=graphql-api"}
            async with http.get("/api/v1/namespaces/collaboration/pods", params=params) as resp:
                events = [json.loads(line) for line in (await resp.text()).splitlines()]
            assert [e["type"] for e in events] == ["ADDED"] * 3
            assert sandbox.api_calls == calls + 1

            async with http.get("/api/v1/namespaces/collaboration/pods") as resp:
                listed = await resp.json()
            scale = "/apis/apps/v1/namespaces/collaboration/deployments/graphql-api/scale"
            async with http.patch(scale, data=json.dumps({"spec": {"replicas": 2}}),
                                  headers={"Content-Type": "application/merge-patch+json"}) as resp:
                assert (await resp.json())["spec"]["replicas"] == 2
            params["resourceVersion"] = listed["metadata"]["resourceVersion"]
            async with http.get("/api/v1/namespaces/collaboration/pods", params=params) as resp:
                events = [json.loads(line) for line in (await resp.text()).splitlines()]
            assert [e["type"] for e in events] == ["DELETED"]  # only what happened since the list
    finally:
        await sandbox.stop()


async def test_log_follow_streams_new_lines_until_stop() -> None:
    sandbox = Sandbox()
    url = await sandbox.start()
    pods = sandbox.cluster.store.list(sandbox.cluster.rt("Pod"), "collaboration")
    pod = next(p["metadata"]["name"] for p in pods if p["metadata"]["labels"]["app"] == "collaboration-editor")
    http = aiohttp.ClientSession(url)
    try:
        path = f"/api/v1/namespaces/collaboration/pods/{pod}/log"
        async with http.get(path, params={"follow": "true", "tailLines": "1"}) as resp:
            first = await resp.content.readline()
            assert b'"GET ' in first
            fresh = await asyncio.wait_for(resp.content.readline(), 10)  # the editor logs every ~4s
            assert b'"GET ' in fresh and fresh != first
            started = time.monotonic()
            await sandbox.stop()
            assert await asyncio.wait_for(resp.content.read(), 5) is not None
            assert time.monotonic() - started < 3
    finally:
        await http.close()
        await sandbox.stop()


# --- scenarios ------------------------------------------------------------------------------------


def test_crashloop_scenario(make_cluster: Callable[..., Served]) -> None:
    cluster = make_cluster(scenario="crashloop")
    pods = pods_of(cluster, "document-service")
    crashing = [p for p in pods if p["STATUS"] == "CrashLoopBackOff"]
    assert len(crashing) == 1 and crashing[0]["READY"] == "0/1"
    assert re.fullmatch(r"7 \(\S+ ago\)", crashing[0]["RESTARTS"])
    previous = cluster.out("logs", crashing[0]["NAME"], "--previous").splitlines()
    assert previous[-1] == "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory"
    state = json.loads(cluster.out("get", "pod", crashing[0]["NAME"], "-o",
                                   "jsonpath={.status.containerStatuses[0].lastState.terminated}"))
    assert (state["reason"], state["exitCode"]) == ("OOMKilled", 137)
    warnings = table(cluster.out("get", "events", "--field-selector", "type=Warning"))
    assert any(w["REASON"] == "BackOff" and crashing[0]["NAME"] in w["OBJECT"] for w in warnings)
    assert table(cluster.out("get", "deployment", "document-service"))[0]["READY"] == "1/2"


def test_memory_pressure_scenario(make_cluster: Callable[..., Served]) -> None:
    cluster = make_cluster(scenario="memory-pressure")
    usage = table(cluster.out("top", "pods", "-l", "app=graphql-api"))
    assert len(usage) == 3 and all(900 <= int(p["MEMORY(bytes)"].rstrip("Mi")) < 1024 for p in usage)
    warnings = table(cluster.out("get", "events", "--field-selector", "type=Warning"))
    assert any(w["REASON"] == "Unhealthy" and "graphql-api" in w["OBJECT"] for w in warnings)


def test_node_not_ready_scenario(make_cluster: Callable[..., Served]) -> None:
    cluster = make_cluster(scenario="node-not-ready")
    status = {n["NAME"]: n["STATUS"] for n in table(cluster.out("get", "nodes"))}
    assert status == {NODE_A: "Ready", NODE_B: "Ready", NODE_C: "NotReady"}
    node = json.loads(cluster.out("get", "node", NODE_C, "-o", "json"))
    assert {t["key"] for t in node["spec"]["taints"]} == {"node.kubernetes.io/unreachable"}
    ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] in ("False", "Unknown")
    on_node = table(cluster.out("get", "pods", "-A", "--field-selector", f"spec.nodeName={NODE_C}"))
    assert on_node and {p["READY"] for p in on_node} == {"0/1"}
    endpoints = json.loads(cluster.out("get", "endpoints", "graphql-api", "-o", "json"))["subsets"][0]
    assert [a["nodeName"] for a in endpoints["notReadyAddresses"]] == [NODE_C]
    assert len(endpoints["addresses"]) == 2
    cluster.out("scale", "deployment", "collaboration-editor", "--replicas=5")
    assert NODE_C not in {p["NODE"] for p in pods_of(cluster, "collaboration-editor") if p["AGE"].endswith("s")}


def test_scenario_names_and_determinism() -> None:
    with pytest.raises(ValueError, match="crashloop, db-pool-exhausted, memory-pressure, node-not-ready, none"):
        Sandbox(scenario="meteor-strike")
    Sandbox(scenario="none")

    def fingerprint(sb: Sandbox) -> list[tuple[str, str]]:
        pods = sb.cluster.store.list(sb.cluster.rt("Pod"))
        return sorted((p["metadata"]["name"], p["metadata"]["uid"]) for p in pods)

    assert fingerprint(Sandbox(seed=7)) == fingerprint(Sandbox(seed=7))
    assert fingerprint(Sandbox(seed=7)) != fingerprint(Sandbox(seed=8))


def test_extra_pods_are_seeded_and_listed(make_cluster: Callable[..., Served]) -> None:
    # how fast they list is bench's to say (`python -m bench`: `/cf status` at 1,000 extra pods), not a test's
    cluster = make_cluster(extra_pods=1500)
    calls = cluster.sandbox.api_calls
    rows = cluster.out("get", "pods", "-A", "--no-headers").splitlines()
    assert len(rows) == 1500 + sum(APPS.values()) + 9
    assert cluster.sandbox.api_calls > calls


def test_cli_serves_until_sigterm(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kc"
    server = subprocess.Popen([sys.executable, "-m", "sandbox", "--port", "0", "--kubeconfig", str(kubeconfig)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parents[2])
    try:
        assert server.stdout is not None
        assert server.stdout.readline().startswith("Candlefish sandbox API server at http://127.0.0.1:")
        assert server.stdout.readline().strip() == f"export KUBECONFIG={kubeconfig.resolve()}"
        env = {"HOME": str(tmp_path), "KUBECACHEDIR": str(tmp_path / "cache"), "PATH": os.environ.get("PATH", "")}
        nodes = subprocess.run([KUBECTL, "--kubeconfig", str(kubeconfig), "get", "nodes", "-o", "name"],
                               capture_output=True, text=True, env=env, timeout=30, check=True)
        assert len(nodes.stdout.splitlines()) == 3
    finally:
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=15)
    assert server.returncode == 0, err


# --- patch and selector semantics -----------------------------------------------------------------


def test_strategic_merge_patch_directives() -> None:
    original = {"spec": {"containers": [{"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}]},
                                        {"name": "b", "image": "b:1"}],
                         "tolerations": [{"key": "t1"}], "finalizers": ["x"]}}
    patch = {"spec": {"$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
                      "containers": [{"name": "a", "env": [{"name": "Y", "value": "2"}]},
                                     {"name": "b", "$patch": "delete"}],
                      "tolerations": [{"key": "t2"}], "finalizers": ["y"],
                      "$deleteFromPrimitiveList/finalizers": ["x"]}}
    result = strategic_merge_patch(original, patch)
    assert result["spec"]["containers"] == [{"name": "a", "image": "a:1", "env": [
        {"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]}]
    assert result["spec"]["tolerations"] == [{"key": "t2"}]
    assert result["spec"]["finalizers"] == ["y"]
    replaced = strategic_merge_patch(original, {"spec": {"$patch": "replace", "containers": []}})
    assert replaced == {"spec": {"containers": []}}
    assert json_patch({"a": [1, 2]}, [{"op": "add", "path": "/a/-", "value": 3},
                                      {"op": "replace", "path": "/a/0", "value": 0}]) == {"a": [0, 2, 3]}


def test_label_selector_syntax() -> None:
    match = label_selector_predicate("app in (a,b),tier!=db,!legacy,env")
    assert match is not None

    def obj(**labels: str) -> dict[str, Any]:
        return {"metadata": {"labels": labels}}

    assert match(obj(app="a", tier="web", env="prod"))
    assert not match(obj(app="c", env="prod"))
    assert not match(obj(app="a", tier="db", env="prod"))
    assert not match(obj(app="a", env="prod", legacy="1"))
    assert not match(obj(app="a"))
