"""Every answer degrades per part (issue 11 §3).

For each command that combines calls, one auxiliary call is made to fail at the real server (the AWS
front answers one action with a 500 or an AccessDenied; the sandbox API server answers one path with
a `Status` error; the Slack simulator refuses one method), and the answer must still carry the other
parts and one line naming the failed part with a short reason. The primary call failing still gives
the usual one-line error.
"""

from __future__ import annotations

import re
from typing import Any

from tests import aws_support
from tests.aws_support import request_and_approve
from tests.harness import OPERATOR, VIEWER, BotHarness
from tests.incident_support import start
from tests.k8s_support import assert_slack_accepted_everything, files_named, k8s_bot, reply_text

aws_sandbox, aws_client, aws_bot = aws_support.aws_sandbox, aws_support.aws_client, aws_support.aws_bot

NS = "collaboration"
EVENTS = f"/api/v1/namespaces/{NS}/events"
POD_LIST = f"/api/v1/namespaces/{NS}/pods"


def said(bot: BotHarness) -> str:
    """The last message in the channel, as Slack shows it."""
    return reply_text(bot.messages()[-1])


def private(bot: BotHarness) -> str:
    return reply_text({"text": bot.private_texts()[-1]})


def line_of(text: str, start: str) -> str:
    found = [line for line in text.splitlines() if line.startswith(start)]
    assert len(found) == 1, f"no single line starting {start!r} in:\n{text}"
    return found[0]


async def pod_of(kube: Any, app: str) -> str:
    return str((await kube.list_pods(NS, f"app={app}"))[0]["metadata"]["name"])


# --- AWS ------------------------------------------------------------------------------------------


async def test_db_status_keeps_the_instance_when_pending_maintenance_fails(aws_bot, aws_sandbox) -> None:
    aws_sandbox.front.inject("rds", "InternalFailure", "boom", action="DescribePendingMaintenanceActions", status=500)
    await aws_bot.slash("db status", user=VIEWER)
    text = said(aws_bot)
    assert "RDS candlefish-collaboration-db: available" in text
    assert "db.r6g.xlarge" in text and "CLUSTER MEMBER" in text  # the instance and the cluster are there
    assert ":warning: Pending maintenance: unavailable (500)" in text
    assert "PENDING MAINTENANCE" not in text

    aws_sandbox.front.clear_faults()
    aws_sandbox.front.inject("rds", "AccessDenied", "not authorized", action="DescribePendingMaintenanceActions",
                             status=403)
    await aws_bot.slash("db status", user=VIEWER)
    assert ":warning: Pending maintenance: unavailable (AccessDenied)" in said(aws_bot)

    aws_sandbox.front.clear_faults()
    aws_sandbox.front.inject("rds", "AccessDenied", "not authorized", action="DescribeDBClusters", status=403)
    await aws_bot.slash("db status", user=VIEWER)
    text = said(aws_bot)
    assert "system-update" in text and ":warning: Cluster: unavailable (AccessDenied)" in text
    assert "CLUSTER MEMBER" not in text


async def test_db_status_without_the_instance_is_the_usual_error(aws_bot, aws_sandbox) -> None:
    aws_sandbox.front.inject("rds", "AccessDenied", "not authorized", action="DescribeDBInstances", status=403)
    await aws_bot.slash("db status", user=VIEWER)
    line = private(aws_bot)
    assert "AWS RDS: describe RDS instance candlefish-collaboration-db: access denied" in line
    assert "unavailable (" not in line


async def test_db_events_keeps_the_instance_events_when_the_cluster_events_fail(aws_bot, aws_sandbox) -> None:
    aws_sandbox.front.inject("rds", "AccessDenied", "no", action="DescribeEvents", status=403,
                             params={"SourceType": "db-cluster"})
    await aws_bot.slash("db events --since 2h", user=VIEWER)
    text = said(aws_bot)
    assert re.search(r"\d+ RDS events? in the last 2h", text)
    assert ":warning: Events of cluster `candlefish-collaboration-cluster`: unavailable (AccessDenied)" in text

    aws_sandbox.front.clear_faults()
    aws_sandbox.front.inject("rds", "AccessDenied", "no", action="DescribeEvents", status=403,
                             params={"SourceType": "db-instance"})
    await aws_bot.slash("db events", user=VIEWER)
    assert "AWS RDS: read RDS events of candlefish-collaboration-db: access denied" in private(aws_bot)


async def test_lb_keeps_the_load_balancer_when_target_health_fails(aws_bot, aws_sandbox) -> None:
    aws_sandbox.front.inject("elasticloadbalancing", "AccessDenied", "no", action="DescribeTargetHealth", status=403)
    await aws_bot.slash("lb", user=VIEWER)
    text = said(aws_bot)
    assert "ALB candlefish-collaboration-alb: active" in text and "(1 part unavailable)" in text
    assert "DNS name" in text and "internet-facing" in text
    assert ":warning: Targets of `candlefish-websocket-tg`: unavailable (AccessDenied)" in text

    aws_sandbox.front.clear_faults()
    aws_sandbox.front.inject("elasticloadbalancing", "InternalFailure", "boom", action="DescribeLoadBalancers",
                             status=500)
    await aws_bot.slash("lb", user=VIEWER)
    assert "AWS ELB: describe load balancer candlefish-collaboration-alb: AWS answered 500" in private(aws_bot)


async def test_cluster_keeps_the_cluster_when_a_node_group_fails(aws_bot, aws_sandbox) -> None:
    aws_sandbox.front.inject("eks", "AccessDeniedException", "no", status=403,
                             path=r"GET /clusters/[^/]+/node-groups/[^/]+")
    await aws_bot.slash("cluster", user=VIEWER)
    text = said(aws_bot)
    assert "EKS cluster candlefish-collaboration: ACTIVE, Kubernetes 1.32" in text and "Endpoint" in text
    assert ":warning: Node group `general`: unavailable (AccessDeniedException)" in text

    aws_sandbox.front.clear_faults()
    aws_sandbox.front.inject("eks", "AccessDeniedException", "no", status=403, path=r"GET /clusters/[^/]+/node-groups")
    await aws_bot.slash("cluster", user=VIEWER)
    assert ":warning: Node groups: unavailable (AccessDeniedException)" in said(aws_bot)

    aws_sandbox.front.clear_faults()
    aws_sandbox.front.inject("eks", "AccessDeniedException", "no", status=403, path=r"GET /clusters/[^/]+")
    await aws_bot.slash("cluster", user=VIEWER)
    assert "AWS EKS: describe EKS cluster candlefish-collaboration: access denied" in private(aws_bot)


async def test_status_lines_keep_their_primary_part(aws_bot, aws_sandbox) -> None:
    aws_sandbox.front.inject("eks", "AccessDeniedException", "no", status=403,
                             path=r"GET /clusters/[^/]+/node-groups/[^/]+")
    aws_sandbox.front.inject("elasticloadbalancing", "AccessDenied", "no", action="DescribeTargetHealth", status=403)
    await aws_bot.slash("status", user=VIEWER)
    text = said(aws_bot)
    eks = line_of(text, ":large_yellow_circle: *EKS*")
    assert "candlefish-collaboration ACTIVE (Kubernetes 1.32)" in eks
    assert "node group general: unavailable (AccessDeniedException)" in eks
    alb = line_of(text, ":large_yellow_circle: *ALB*")
    assert "candlefish-collaboration-alb active" in alb and "Targets of `candlefish-websocket-tg`: unavailable " \
           "(AccessDenied)" in alb
    assert line_of(text, ":large_green_circle: *RDS*")  # the other checks report as before
    assert line_of(text, ":large_green_circle: *Nodes*")


async def test_secrets_rotate_checks_degrade_to_warnings_and_the_wait_survives_a_failed_poll(
        aws_bot, aws_sandbox, sandbox) -> None:
    path = f"/apis/apps/v1/namespaces/{NS}/deployments/graphql-api"
    sandbox.sandbox.fail(path, 500, "InternalError", times=1)  # the request's check of one consumer
    mark = len(aws_bot.requests())
    await aws_bot.slash("secrets rotate")
    assert len(aws_bot.requests()) == mark + 1, aws_bot.private_texts()[-1:]
    prompt = reply_text(aws_bot.last_request())
    assert "Consumer `graphql-api`: not verified (500)" in prompt
    assert "Rotate secret candlefish/collaboration/app-secrets" in prompt
    await aws_bot.click(aws_bot.last_request()["ts"], "cf_deny", OPERATOR)  # one change at a time per target

    async def one_failed_poll() -> None:  # the first poll for new pods, after the restarts, fails once
        sandbox.sandbox.fail(POD_LIST, 500, "InternalError", times=1)

    thread = await request_and_approve(aws_bot, "secrets rotate", one_failed_poll)
    assert "new pods running" in thread and "AWSPREVIOUS" in thread
    assert not sandbox.sandbox.server.faults  # the injected failure was met

    sandbox.sandbox.fail(f"/apis/apps/v1/namespaces/{NS}/deployments/no-such-consumer", 404, "NotFound")
    aws_sandbox.front.inject("secretsmanager", "AccessDeniedException", "no", action="DescribeSecret")
    await aws_bot.slash("secrets rotate")
    assert "AWS Secrets Manager: describe secret candlefish/collaboration/app-secrets: access denied" \
        in private(aws_bot)


# --- Kubernetes -----------------------------------------------------------------------------------


async def test_status_shows_three_kubernetes_lines_when_events_fail(bot, sandbox, sim) -> None:
    sandbox.sandbox.fail(EVENTS, 403, "Forbidden", 'events is forbidden: User "cf" cannot list resource "events"')
    await bot.slash("status", user=VIEWER)
    text = said(bot)
    assert line_of(text, ":red_circle: *Events*").endswith("unavailable (Forbidden)")
    for name in ("Deployments", "Pods", "Nodes"):
        assert f"*{name}* — " in text and f"*{name}* — unavailable" not in text
    assert ":red_circle: *Kubernetes*" not in text
    assert_slack_accepted_everything(sim)


async def test_describe_keeps_the_object_when_its_events_or_pods_fail(bot, sandbox, kube) -> None:
    pod = await pod_of(kube, "graphql-api")
    node = (await kube.list_nodes())[0]["metadata"]["name"]
    sandbox.sandbox.fail(EVENTS, 500)
    await bot.slash(f"describe pod {pod}", user=VIEWER)
    text = said(bot)
    assert f"Pod {pod}" in text and "*Containers*" in text and "requests/limits" in text
    assert ":warning: Events: unavailable (500)" in text and "*Events*" not in text
    await bot.slash("describe deployment graphql-api", user=VIEWER)
    text = said(bot)
    assert "Deployment graphql-api" in text and "Strategy" in text and ":warning: Events: unavailable (500)" in text

    sandbox.sandbox.clear_faults()
    sandbox.sandbox.fail("/api/v1/pods", 403, "Forbidden")
    await bot.slash(f"describe node {node}", user=VIEWER)
    text = said(bot)
    assert f"Node {node}" in text and "Taints" in text and "*Events*" in text
    assert ":warning: Pods on the node: unavailable (Forbidden)" in text and "CPU requests" not in text

    sandbox.sandbox.clear_faults()
    sandbox.sandbox.fail(f"{POD_LIST}/{pod}", 500)
    await bot.slash(f"describe pod {pod}", user=VIEWER)
    assert f":warning: Kubernetes: pod {NS}/{pod}: the API server answered 500" in private(bot)


async def test_a_miss_is_still_a_miss_when_the_list_of_names_fails(bot, sandbox) -> None:
    sandbox.sandbox.fail("/api/v1/nodes", 500)
    await bot.slash("describe node no-such-node", user=VIEWER)
    assert "Node `no-such-node` was not found. Nodes: (the list is unavailable (500))." in private(bot)


async def test_nodes_keeps_the_nodes_when_the_pods_fail(bot, sandbox, sim) -> None:
    sandbox.sandbox.fail("/api/v1/pods", 403, "Forbidden")
    await bot.slash("nodes", user=VIEWER)
    text = said(bot)
    assert re.search(r"\d+ nodes, all Ready", text) and "ip-10-0-" in text and "VERSION" in text
    assert ":warning: Pods and requests: unavailable (Forbidden)" in text and "CPU REQUESTS" not in text

    sandbox.sandbox.clear_faults()
    sandbox.sandbox.fail("/api/v1/nodes", 500)
    await bot.slash("nodes", user=VIEWER)
    assert "Kubernetes: list nodes: the API server answered 500" in private(bot)
    assert_slack_accepted_everything(sim)


async def test_pods_and_top_keep_the_primary_list(bot, sandbox) -> None:
    sandbox.sandbox.fail(f"/apis/metrics.k8s.io/v1beta1/namespaces/{NS}/pods", 503, "ServiceUnavailable")
    await bot.slash("pods --sort memory", user=VIEWER)
    text = said(bot)
    assert re.search(r"\d+ pods in namespace `collaboration`", text) and "graphql-api-" in text
    assert ":warning: Metrics: unavailable (503)" in text and "Sorted by memory" not in text

    sandbox.sandbox.clear_faults()
    sandbox.sandbox.fail(POD_LIST, 403, "Forbidden")
    await bot.slash("top pods", user=VIEWER)
    text = said(bot)
    assert "Pod usage in namespace" in text and "graphql-api-" in text
    assert ":warning: Memory limits: unavailable (Forbidden)" in text

    sandbox.sandbox.clear_faults()
    sandbox.sandbox.fail("/api/v1/nodes", 403, "Forbidden")
    await bot.slash("top nodes", user=VIEWER)
    text = said(bot)
    assert "Node usage" in text and "ip-10-0-" in text
    assert ":warning: Allocatable and status: unavailable (Forbidden)" in text


async def test_secrets_keeps_the_secrets_when_the_deployments_fail(bot, sandbox) -> None:
    sandbox.sandbox.fail(f"/apis/apps/v1/namespaces/{NS}/deployments", 403, "Forbidden")
    await bot.slash("secrets", user=VIEWER)
    text = said(bot)
    assert "redis-credentials" in text and "Values are never shown" in text
    assert ":warning: Deployments (USED BY): unavailable (Forbidden)" in text


async def test_backup_config_backs_up_what_it_can_read(bot, sandbox, sim) -> None:
    sandbox.sandbox.fail(f"/apis/networking.k8s.io/v1/namespaces/{NS}/ingresses", 403, "Forbidden")
    await bot.slash("backup config")
    text = said(bot)
    assert "Backup of namespace `collaboration`" in text and "(partial: Ingress not included)" in text
    assert ":warning: Ingress: unavailable (Forbidden)" in text
    content = files_named(sim, "collaboration-backup-")[-1]["content"]
    assert b"kind: Deployment" in content and b"kind: Secret" in content and b"kind: Ingress" not in content

    sandbox.sandbox.clear_faults()
    sandbox.sandbox.fail(f"/apis/apps/v1/namespaces/{NS}/deployments", 500)
    before = len(files_named(sim, "collaboration-backup-"))
    await bot.slash("backup config")
    assert f":warning: Kubernetes: list Deployment objects in {NS}: the API server answered 500" in private(bot)
    assert len(files_named(sim, "collaboration-backup-")) == before  # no partial file without the primary part


async def test_crashloop_and_evidence_keep_the_pod_when_a_previous_log_fails(sim, tmp_path) -> None:
    async with k8s_bot(sim, tmp_path, scenario="crashloop") as env:
        pod = await pod_of(env.kube, "document-service")
        env.sandbox.fail(rf"{POD_LIST}/[^/]+/log", 500, query={"previous": "true"})
        await env.bot.slash(f"crashloop {pod}", user=VIEWER)
        text = said(env.bot)
        assert f"Pod {pod}: CrashLoopBackOff" in text and "Last termination" in text and "OOMKilled" in text
        assert f":warning: Previous log of `{pod}` / `document-service`: unavailable (500)" in text

        await env.bot.slash(f"evidence {pod}")
        text = said(env.bot)
        assert f"Evidence from pod {pod}: 2 files" in text
        assert ":warning: Previous log of `document-service`: unavailable (500)" in text
        names = sorted(f["filename"] for f in files_named(sim, f"incident-{pod}"))
        assert any(n.endswith("-pod.yaml") for n in names) and any(n.endswith("-document-service.log") for n in names)
        assert not any(n.endswith("-previous.log") for n in names)
        assert_slack_accepted_everything(sim)


# --- Slack steps of `incident declare` --------------------------------------------------------------


async def test_incident_declare_names_each_slack_step_that_failed(sim, tmp_path) -> None:
    bot = await start(sim, f"sqlite:///{tmp_path / 'cf.db'}")
    try:
        sim.fail_next("conversations.setTopic", error="not_in_channel", status=200)
        sim.fail_next("pins.add", error="not_pinnable", status=200)
        await bot.slash("incident declare sev2 Editor is slow", user=OPERATOR)
        text = private(bot)
        assert "declared" in text and "*SEV2* Editor is slow" in text
        assert ":warning: Topic: failed (not_in_channel)" in text
        assert ":warning: Pinning the summary: failed (not_pinnable)" in text
        assert "Responders are invited" not in text
        channel = next(c for c in sim.channels.values() if c["name"].endswith("-editor-is-slow"))
        posted = " ".join(m.get("text", "") for m in sim.messages(channel["id"]))
        assert "Topic: failed (not_in_channel); Pinning the summary: failed (not_pinnable)." in posted
        assert [c.error for c in sim.calls_to("conversations.setPurpose")] == [None]  # the steps after went on
        assert [c.error for c in sim.calls_to("conversations.invite")] == [None]

        sim.fail_next("conversations.create", error="restricted_action", status=200)
        await bot.slash("incident declare sev3 Search is slow", user=OPERATOR)
        assert "could not be created (Slack said `restricted_action`)" in private(bot)
    finally:
        await bot.close()
