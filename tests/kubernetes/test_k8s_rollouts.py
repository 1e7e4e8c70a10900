"""Rollouts and namespace-wide scaling through Slack, confirmed with kubectl: rollout history and
undo (the deployment goes back to the old template), restart all, scale all, hpa."""

from __future__ import annotations

import json

from tests.harness import OPERATOR, kubectl
from tests.k8s_support import NS, assert_slack_accepted_everything, last_reply, reply_text, request_and_approve


async def deployments(kubeconfig: str) -> list[dict]:
    return list(json.loads(await kubectl(kubeconfig, "-n", NS, "get", "deployments", "-o", "json"))["items"])


async def image(kubeconfig: str, name: str) -> str:
    return await kubectl(kubeconfig, "-n", NS, "get", "deployment", name,
                         "-o", "jsonpath={.spec.template.spec.containers[0].image}")


async def test_rollout_history_and_undo_goes_back(bot, sandbox, sim) -> None:
    await bot.slash("rollout history graphql-api")
    text = last_reply(bot)
    assert "2 revisions, current 2" in text
    assert "initial release 2.14.2" in text and "deploy graphql-api 2.14.3" in text and "2 (current)" in text

    assert (await image(sandbox.kubeconfig, "graphql-api")).endswith(":2.14.3")
    request, thread = await request_and_approve(bot, "rollout undo graphql-api")
    assert "from revision 2 to revision 1" in json.dumps(request["blocks"])
    assert (await image(sandbox.kubeconfig, "graphql-api")).endswith(":2.14.2")
    history = await kubectl(sandbox.kubeconfig, "-n", NS, "rollout", "history", "deployment/graphql-api")
    rows = [line.split(None, 1) for line in history.splitlines()[2:] if line.strip()]
    causes = {revision: cause for revision, cause in rows}  # REVISION -> CHANGE-CAUSE
    assert max(causes, key=int) == "3" and causes["3"] == "initial release 2.14.2", history  # a new revision
    assert "1" not in causes, history  # revision 1 became revision 3, as kubectl's undo does
    assert "Done: revision 2" in thread and "template of revision 1" in thread
    pods = await kubectl(sandbox.kubeconfig, "-n", NS, "get", "pods", "-l", "app=graphql-api", "-o",
                         "jsonpath={.items[*].spec.containers[0].image}")
    assert pods.split() and all(p.endswith(":2.14.2") for p in pods.split())

    _, thread = await request_and_approve(bot, "rollout undo graphql-api --to-revision 2")
    assert (await image(sandbox.kubeconfig, "graphql-api")).endswith(":2.14.3")
    assert_slack_accepted_everything(sim)


async def test_rollout_undo_refusals_change_nothing(bot, sandbox) -> None:
    await bot.slash("rollout undo graphql-api --to-revision 9", user=OPERATOR)
    await bot.slash("rollout undo graphql-api --to-revision 2", user=OPERATOR)
    await bot.slash("rollout undo nosuch", user=OPERATOR)
    await bot.slash("rollout undo graphql-api --to-revision two", user=OPERATOR)
    await bot.slash("rollout history Bad_Name")
    said = " ".join(bot.private_texts())
    assert "Revision 9 is not in the history (revisions: 1, 2)" in said
    assert "already runs the template of revision 2" in said
    assert "Deployment `nosuch` was not found" in said and "`graphql-api`" in said
    assert "`two` is not a whole number" in said and "is not a valid Kubernetes name" in said
    assert bot.requests() == []
    assert (await image(sandbox.kubeconfig, "graphql-api")).endswith(":2.14.3")


async def test_restart_all(bot, sandbox, sim) -> None:
    _, thread = await request_and_approve(bot, "restart all")
    stamped = [d["metadata"]["name"] for d in await deployments(sandbox.kubeconfig)
               if "kubectl.kubernetes.io/restartedAt" in (d["spec"]["template"]["metadata"].get("annotations") or {})]
    assert sorted(stamped) == ["collaboration-editor", "document-service", "graphql-api", "websocket-service"]
    assert "4 deployments restarting" in thread
    assert_slack_accepted_everything(sim)


async def test_scale_all_warns_about_autoscalers(bot, sandbox, sim) -> None:
    await bot.slash("scale all 5", user=OPERATOR)
    request = json.dumps(bot.last_request()["blocks"])
    assert "graphql-api is managed by HPA graphql-api" in request
    assert all(d["spec"]["replicas"] != 5 for d in await deployments(sandbox.kubeconfig))  # not before approval
    await bot.click(bot.last_request()["ts"], "cf_deny", OPERATOR)  # one change at a time per target
    _, thread = await request_and_approve(bot, "scale all 5")
    assert {d["spec"]["replicas"] for d in await deployments(sandbox.kubeconfig)} == {5}
    assert "4 deployments at 5 replicas" in thread
    await bot.slash("scale all 0", user=OPERATOR)
    await bot.slash("scale all 500", user=OPERATOR)
    said = " ".join(bot.private_texts())
    assert "must be at least 1" in said and "limits.max_replicas" in said
    assert_slack_accepted_everything(sim)


async def test_hpa(bot, sim) -> None:
    await bot.slash("hpa")
    text = last_reply(bot)
    assert "2 autoscalers" in text
    assert "Deployment/graphql-api" in text and "cpu:" in text and "/70%" in text
    await bot.slash("get hpa")
    assert "Deployment/websocket-service" in last_reply(bot)
    assert_slack_accepted_everything(sim)


async def test_scale_warns_when_an_autoscaler_manages_the_deployment(bot, sandbox, sim) -> None:
    # issue 13 §4: scaling an HPA-managed deployment said nothing; the HPA then moved it back
    await bot.slash("scale graphql-api 10", user=OPERATOR)
    request = reply_text(bot.last_request())
    assert "HPA graphql-api manages deployment/graphql-api (min 3, max 20)" in request
    assert "will override" in request
    await bot.slash("scale document-service 4", user=OPERATOR)
    assert "HPA" not in reply_text(bot.last_request())
    assert_slack_accepted_everything(sim)


async def test_scale_all_names_the_deployments_it_would_lower(bot, sandbox, sim) -> None:
    await bot.slash("scale all 2", user=OPERATOR)
    request = reply_text(bot.last_request())
    line = next(ln for ln in request.splitlines() if "Lowers 2 deployments" in ln)
    assert "graphql-api 3 → 2" in line and "websocket-service 3 → 2" in line
    assert "document-service" not in line and "collaboration-editor" not in line
    await bot.click(bot.last_request()["ts"], "cf_deny", OPERATOR)  # one change at a time per target
    await bot.slash("scale all 5", user=OPERATOR)
    assert "Lowers" not in reply_text(bot.last_request())
    assert_slack_accepted_everything(sim)
