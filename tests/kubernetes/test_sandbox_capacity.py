"""The sandbox makes time, capacity and autoscalers testable (issue 13 §5), judged by /usr/bin/kubectl.

Pods take `start_seconds` to start and `kubectl rollout status` waits for them; pods that fit no
node stay Pending with kube-scheduler's FailedScheduling message until room appears; an HPA puts a
deployment scaled outside its bounds back. Each test serves its own seeded Sandbox from a loop
thread (`Served`, as in test_sandbox.py) and reads the cluster the way an engineer would.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sandbox import Sandbox
from tests.kubernetes.test_sandbox import KUBECTL, NODE_C, Served, table

pytestmark = pytest.mark.skipif(not os.path.exists(KUBECTL), reason="kubectl is not installed")

NO_ROOM = ("0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: "
           "3 No preemption victims found for incoming pod.")
CORDONED = ("0/3 nodes are available: 1 node(s) were unschedulable, 2 Insufficient cpu. preemption: 0/3 nodes "
            "are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for "
            "incoming pod.")
CFBOT = shutil.which("cfbot", path=str(Path(sys.executable).parent)) or "cfbot"


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    served: list[Served] = []

    def make(**kwargs: Any) -> Served:
        cluster = Served(Sandbox(**kwargs), tmp_path / f"cluster{len(served)}")
        served.append(cluster)
        return cluster

    yield make
    for cluster in served:
        cluster.close()


def until(check: Callable[[], Any], what: str, seconds: float = 30) -> Any:
    """Poll `check` until it returns something truthy; fail naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"gave up after {seconds}s waiting for {what}")


def as_json(cluster: Served, *args: str) -> Any:
    return json.loads(cluster.out(*args, "-o", "json"))


def app_pods(cluster: Served, app: str) -> list[dict[str, str]]:
    return table(cluster.out("get", "pods", "-l", f"app={app}", "-o", "wide"))


def pending(cluster: Served, app: str = "graphql-api") -> list[str]:
    return [p["NAME"] for p in app_pods(cluster, app) if p["STATUS"] == "Pending"]


# --- pods take time to start --------------------------------------------------------------------


def watch_rollout(cluster: Served, deployment: str) -> subprocess.Popen[str]:
    """`kubectl rollout status` started now, in the background (it prints what it waits for)."""
    return subprocess.Popen([KUBECTL, "rollout", "status", f"deployment/{deployment}", "--timeout=90s"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cluster.env)


def finished(rollout: subprocess.Popen[str]) -> str:
    out, err = rollout.communicate(timeout=120)
    assert rollout.returncode == 0, err
    return out


def by_kind(items: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        found.setdefault(item["kind"], []).append(item)
    return found


def test_new_pods_are_container_creating_until_start_seconds_and_rollout_status_waits(
        serve: Callable[..., Served]) -> None:
    cluster = serve(start_seconds=5)  # time enough for the checks below to see the pods still starting
    cluster.out("scale", "deployment", "document-service", "--replicas=4")
    rollout = watch_rollout(cluster, "document-service")
    seen = by_kind(as_json(cluster, "get", "deployment,rs,pods", "-l", "app=document-service")["items"])
    [dep] = seen["Deployment"]
    assert dep["status"]["observedGeneration"] == dep["metadata"]["generation"]
    assert {k: dep["status"].get(k) for k in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas",
                                              "unavailableReplicas")} == {
        "replicas": 4, "updatedReplicas": 4, "readyReplicas": 2, "availableReplicas": 2, "unavailableReplicas": 2}
    [rs] = [r for r in seen["ReplicaSet"] if r["spec"]["replicas"]]
    assert (rs["status"]["replicas"], rs["status"]["readyReplicas"], rs["status"]["availableReplicas"]) == (4, 2, 2)
    new = [p for p in seen["Pod"] if p["status"]["phase"] == "Pending"]
    assert len(new) == 2 and len(seen["Pod"]) == 4
    for pod in new:
        [state] = pod["status"]["containerStatuses"]
        assert state["state"] == {"waiting": {"reason": "ContainerCreating"}} and state["ready"] is False
        assert pod["spec"]["nodeName"] and "podIP" not in pod["status"]
        conditions = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
        assert conditions == {"PodScheduled": "True", "Initialized": "True", "PodReadyToStartContainers": "False",
                              "ContainersReady": "False", "Ready": "False"}
    name = new[0]["metadata"]["name"]
    refused = cluster.kubectl("logs", name, check=False)
    assert refused.returncode == 1 and refused.stderr.strip() == (
        f'Error from server (BadRequest): container "document-service" in pod "{name}" is waiting to start: '
        "ContainerCreating")

    said = finished(rollout)
    assert 'Waiting for deployment "document-service" rollout to finish: 2 of 4 updated replicas are available...' \
        in said
    assert said.rstrip().endswith('deployment "document-service" successfully rolled out')
    rows = app_pods(cluster, "document-service")
    assert {r["STATUS"] for r in rows} == {"Running"} and {r["READY"] for r in rows} == {"1/1"}
    dep = as_json(cluster, "get", "deployment", "document-service")
    assert dep["status"]["readyReplicas"] == dep["status"]["availableReplicas"] == 4
    assert "unavailableReplicas" not in dep["status"]
    events = as_json(cluster, "get", "events")["items"]
    for pod in new:  # the kubelet says Started start_seconds after the scheduler's Scheduled
        name = pod["metadata"]["name"]
        when = {e["reason"]: datetime.fromisoformat(e["eventTime"]) for e in events
                if e["involvedObject"]["name"] == name}
        assert when["Started"] - when["Scheduled"] >= timedelta(seconds=4.5)


def test_a_rolling_restart_keeps_the_old_pods_until_new_ones_are_ready(serve: Callable[..., Served]) -> None:
    cluster = serve(start_seconds=2)
    old = {r["NAME"] for r in app_pods(cluster, "graphql-api")}
    cluster.out("rollout", "restart", "deployment/graphql-api")
    rollout = watch_rollout(cluster, "graphql-api")
    # 3 replicas, maxSurge 25% (1), maxUnavailable 25% (0): one new pod, the three old ones still serving
    rows = app_pods(cluster, "graphql-api")
    assert {r["NAME"] for r in rows if r["STATUS"] == "Running" and r["READY"] == "1/1"} == old
    assert [r["STATUS"] for r in rows if r["NAME"] not in old] == ["ContainerCreating"]

    said = finished(rollout)
    assert re.search(r'Waiting for deployment "graphql-api" rollout to finish: [12] out of 3 new replicas have '
                     r"been updated\.\.\.", said)
    assert "successfully rolled out" in said
    rows = app_pods(cluster, "graphql-api")
    assert len(rows) == 3 and not {r["NAME"] for r in rows} & old
    assert {r["STATUS"] for r in rows} == {"Running"}
    events = as_json(cluster, "get", "events", "--field-selector", "involvedObject.name=graphql-api")["items"]
    steps = [e["message"] for e in sorted(events, key=lambda e: e["eventTime"]) if e["reason"] == "ScalingReplicaSet"]
    moves = [re.sub(r"graphql-api-\w+ ", "", m) for m in steps[-6:]]
    assert moves == ["Scaled up replica set from 0 to 1", "Scaled down replica set from 3 to 2",
                     "Scaled up replica set from 1 to 2", "Scaled down replica set from 2 to 1",
                     "Scaled up replica set from 2 to 3", "Scaled down replica set from 1 to 0"]


def test_pods_start_at_once_by_default_in_python(serve: Callable[..., Served]) -> None:
    cluster = serve()
    cluster.out("scale", "deployment", "document-service", "--replicas=4")
    assert {r["STATUS"] for r in app_pods(cluster, "document-service")} == {"Running"}
    assert "successfully rolled out" in cluster.out("rollout", "status", "deployment/document-service",
                                                    "--timeout=5s")


# --- scheduling against node capacity -----------------------------------------------------------


def test_pods_that_fit_no_node_stay_pending_with_kube_schedulers_reason(serve: Callable[..., Served]) -> None:
    cluster = serve()
    nodes = as_json(cluster, "get", "nodes")["items"]
    assert {n["status"]["allocatable"]["cpu"] for n in nodes} == {"3920m"}
    cluster.out("scale", "deployment", "graphql-api", "--replicas=10")
    assert pending(cluster) == []  # 3 -> 10 fits

    cluster.out("scale", "deployment", "graphql-api", "--replicas=40")
    stuck = pending(cluster)
    assert len(stuck) == 22 and len(app_pods(cluster, "graphql-api")) == 40  # 18 fit, as sandbox/scheduling.py says
    pod = as_json(cluster, "get", "pod", stuck[0])
    assert "nodeName" not in pod["spec"] and pod["status"]["phase"] == "Pending"
    [cond] = pod["status"]["conditions"]
    assert (cond["type"], cond["status"], cond["reason"], cond["message"]) == (
        "PodScheduled", "False", "Unschedulable", NO_ROOM)

    described = cluster.out("describe", "pod", stuck[0])
    assert re.search(r"Status:\s+Pending", described) and re.search(r"Node:\s+<none>", described)
    assert re.search(r"PodScheduled\s+False", described)
    assert re.search(r"Warning\s+FailedScheduling\s+.*default-scheduler\s+" + re.escape(NO_ROOM), described)

    events = table(cluster.out("get", "events", "--field-selector", "reason=FailedScheduling"))
    assert {e["TYPE"] for e in events} == {"Warning"} and {e["MESSAGE"] for e in events} == {NO_ROOM}
    assert {e["OBJECT"] for e in events} == {f"pod/{name}" for name in stuck}
    dep = as_json(cluster, "get", "deployment", "graphql-api")
    assert dep["status"]["availableReplicas"] == 18 and dep["status"]["replicas"] == 40
    assert "18 of 40 updated replicas are available" in cluster.kubectl(
        "rollout", "status", "deployment/graphql-api", "--timeout=1s", check=False).stdout

    cluster.out("scale", "deployment", "graphql-api", "--replicas=10")  # the pending pods go first
    assert pending(cluster) == [] and len(app_pods(cluster, "graphql-api")) == 10


def test_a_cordoned_node_is_named_and_pending_pods_land_when_it_is_uncordoned(serve: Callable[..., Served]) -> None:
    cluster = serve()
    cluster.out("cordon", NODE_C)
    cluster.out("scale", "deployment", "graphql-api", "--replicas=20")
    stuck = pending(cluster)
    assert stuck
    messages = {e["MESSAGE"] for e in table(cluster.out("get", "events", "--field-selector",
                                                        "reason=FailedScheduling"))}
    assert messages == {CORDONED}
    before = sum(r["NODE"] == NODE_C for r in app_pods(cluster, "graphql-api"))

    cluster.out("uncordon", NODE_C)
    after = app_pods(cluster, "graphql-api")
    assert len(pending(cluster)) == 2  # at 20, 18 fit on three nodes
    assert sum(r["NODE"] == NODE_C for r in after) == before + len(stuck) - 2
    landed = as_json(cluster, "get", "pod", next(name for name in stuck if name not in pending(cluster)))
    assert landed["spec"]["nodeName"] == NODE_C and landed["status"]["phase"] == "Running"
    said = cluster.out("describe", "pod", landed["metadata"]["name"])
    assert "FailedScheduling" in said and f"Successfully assigned collaboration/{landed['metadata']['name']} to " \
        f"{NODE_C}" in said


def test_a_scale_down_elsewhere_frees_room_for_pending_pods(serve: Callable[..., Served]) -> None:
    cluster = serve()
    cluster.out("scale", "deployment", "graphql-api", "--replicas=40")
    stuck = pending(cluster)
    cluster.out("scale", "deployment", "websocket-service", "document-service", "--replicas=0")  # 1250m freed
    still = pending(cluster)
    assert len(still) < len(stuck) and set(still) < set(stuck)
    freed = as_json(cluster, "get", "pod", next(name for name in stuck if name not in still))
    assert freed["spec"]["nodeName"] and freed["status"]["phase"] == "Running"
    assert {c["type"]: c["status"] for c in freed["status"]["conditions"]}["PodScheduled"] == "True"


# --- the HPA acts on its bounds -----------------------------------------------------------------


def hpa_events(cluster: Served, name: str) -> list[str]:
    items = as_json(cluster, "get", "events", "--field-selector",
                    f"involvedObject.kind=HorizontalPodAutoscaler,involvedObject.name={name}")["items"]
    return [f"{e['reason']}: {e['message']}" for e in items]


def test_an_hpa_brings_a_deployment_scaled_past_its_bounds_back(serve: Callable[..., Served]) -> None:
    cluster = serve(hpa_sync_seconds=0.5)
    hpa = as_json(cluster, "get", "hpa", "graphql-api")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 20)
    assert "lastScaleTime" not in hpa["status"]

    cluster.out("scale", "deployment", "graphql-api", "--replicas=25")
    until(lambda: as_json(cluster, "get", "deployment", "graphql-api")["spec"]["replicas"] == 20,
          "the HPA to scale graphql-api back to its maximum")
    hpa = as_json(cluster, "get", "hpa", "graphql-api")
    assert (hpa["status"]["currentReplicas"], hpa["status"]["desiredReplicas"]) == (20, 20)
    assert hpa["status"]["lastScaleTime"]
    able = next(c for c in hpa["status"]["conditions"] if c["type"] == "AbleToScale")
    assert able["reason"] in ("SucceededRescale", "ReadyForNewScale")
    assert hpa_events(cluster, "graphql-api") == [
        "SuccessfulRescale: New size: 20; reason: Current number of replicas above Spec.MaxReplicas"]
    assert re.search(r"Normal\s+SuccessfulRescale\s+.*horizontal-pod-autoscaler\s+New size: 20; reason: "
                     r"Current number of replicas above Spec.MaxReplicas", cluster.out("describe", "hpa",
                                                                                       "graphql-api"))

    cluster.out("scale", "deployment", "websocket-service", "--replicas=1")
    until(lambda: as_json(cluster, "get", "deployment", "websocket-service")["spec"]["replicas"] == 3,
          "the HPA to scale websocket-service back to its minimum")
    assert hpa_events(cluster, "websocket-service") == [
        "SuccessfulRescale: New size: 3; reason: Current number of replicas below Spec.MinReplicas"]
    rows = table(cluster.out("get", "hpa"))
    assert {r["NAME"]: r["REPLICAS"] for r in rows} == {"graphql-api": "20", "websocket-service": "3"}


def test_an_hpa_leaves_a_deployment_at_zero_and_one_within_bounds_alone(serve: Callable[..., Served]) -> None:
    cluster = serve()  # no HPA clock: each sync below is one call, on the sandbox's own loop

    async def sync() -> None:
        cluster.sandbox.cluster.sync_autoscalers()

    cluster.out("scale", "deployment", "graphql-api", "--replicas=0")
    cluster.out("scale", "deployment", "websocket-service", "--replicas=7")
    cluster.run(sync())
    assert as_json(cluster, "get", "deployment", "graphql-api")["spec"]["replicas"] == 0
    assert as_json(cluster, "get", "deployment", "websocket-service")["spec"]["replicas"] == 7
    hpa = as_json(cluster, "get", "hpa", "graphql-api")
    active = next(c for c in hpa["status"]["conditions"] if c["type"] == "ScalingActive")
    assert (active["status"], active["reason"]) == ("False", "ScalingDisabled")
    assert hpa["status"]["desiredReplicas"] == 0
    assert hpa_events(cluster, "graphql-api") == [] and hpa_events(cluster, "websocket-service") == []

    cluster.out("scale", "deployment", "websocket-service", "--replicas=30")
    cluster.run(sync())
    assert as_json(cluster, "get", "deployment", "websocket-service")["spec"]["replicas"] == 20


# --- the CLI's defaults ---------------------------------------------------------------------------


def test_cfbot_sandbox_starts_pods_in_two_seconds_by_default(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kc"
    server = subprocess.Popen([CFBOT, "sandbox", "--port", "0", "--kubeconfig", str(kubeconfig)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    env = {"HOME": str(tmp_path), "KUBECACHEDIR": str(tmp_path / "cache"), "PATH": os.environ.get("PATH", ""),
           "KUBECONFIG": str(kubeconfig)}

    def kubectl(*args: str) -> str:
        return subprocess.run([KUBECTL, "-n", "collaboration", *args], capture_output=True, text=True, env=env,
                              timeout=60, check=True).stdout

    try:
        assert server.stdout is not None
        assert server.stdout.readline().startswith("Candlefish sandbox API server at http://127.0.0.1:")
        server.stdout.readline()
        kubectl("scale", "deployment", "collaboration-editor", "--replicas=3")
        done = kubectl("rollout", "status", "deployment/collaboration-editor", "--timeout=60s")
        assert "2 of 3 updated replicas are available" in done and "successfully rolled out" in done
    finally:
        server.terminate()
        server.communicate(timeout=15)
    help_text = subprocess.run([CFBOT, "sandbox", "--help"], capture_output=True, text=True, check=True).stdout
    assert "--start-seconds" in help_text and "--hpa-sync-seconds" in help_text
