"""The platform end to end, in-process: signed Slack requests -> Bolt -> dispatcher -> approvals
-> the sandbox cluster, with the Slack simulator recording every call and kubectl as the judge."""

from __future__ import annotations

import asyncio
import json
import time

from bot.store import Action, Store
from tests.harness import ADMIN, APPROVER, APPROVER2, CHANNEL, OPERATOR, VIEWER, kubectl, start_bot


async def replicas(sandbox, name: str = "graphql-api") -> int:
    out = await kubectl(sandbox.kubeconfig, "-n", "collaboration", "get", "deployment", name,
                        "-o", "jsonpath={.spec.replicas}")
    return int(out)


async def audit_events(bot, action_id: str) -> list[str]:
    return [e.event for e in await bot.runtime.store.audit_for_action(action_id)]


def request_id(message: dict) -> str:
    for block in message["blocks"]:
        if block["type"] == "actions":
            return str(block["elements"][0]["value"])
    raise AssertionError("no buttons on the request message")


def has_buttons(message: dict) -> bool:
    """The approval buttons (a request that ran shows Undo instead: `buttons_of`)."""
    return bool({"cf_approve", "cf_deny"} & set(buttons_of(message)))


def buttons_of(message: dict) -> list[str]:
    return [e["action_id"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]


async def test_ack_is_immediate_and_pods_answer_in_channel(bot) -> None:
    delivery = await bot.slash("pods", user=VIEWER)
    assert delivery.status == 200 and delivery.elapsed < 1.0
    posted = bot.messages()[-1]
    text = json.dumps(posted["blocks"])
    assert "graphql-api-" in text and "READY" in text and "RESTARTS" in text
    assert "10 pods in namespace `collaboration`" in posted["text"]


async def test_pods_all_namespaces_adds_namespace_column(bot) -> None:
    await bot.slash("pods -A", user=VIEWER)
    text = json.dumps(bot.messages()[-1]["blocks"])
    assert "NAMESPACE" in text and "kube-system" in text and "coredns" in text


async def test_viewer_cannot_request_a_change(bot, sandbox) -> None:
    await bot.slash("scale graphql-api 10", user=VIEWER)
    assert any("operator* role" in t for t in bot.private_texts())
    assert bot.requests() == []
    assert await replicas(sandbox) == 3


async def test_scale_flow_request_approve_run_audit(bot, sandbox) -> None:
    await bot.slash("scale graphql-api 10", user=OPERATOR)
    request = bot.last_request()
    body = json.dumps(request["blocks"])
    assert "<@U0OPERATOR>" in body and "3 replicas" in body and "10 replicas" in body
    assert has_buttons(request)
    assert await replicas(sandbox) == 3  # nothing changes before approval

    await bot.click(request["ts"], "cf_approve", APPROVER)
    assert await replicas(sandbox) == 10
    pods = await kubectl(sandbox.kubeconfig, "-n", "collaboration", "get", "pods", "-l", "app=graphql-api",
                         "--no-headers")
    assert len(pods.strip().splitlines()) == 10

    thread = " | ".join(bot.thread_texts(request["ts"]))
    assert "Requested by <@U0OPERATOR>" in thread
    assert "Approved by <@U0APPROVER>" in thread
    assert "Running" in thread
    assert "Done: 3 replicas → 10 replicas" in thread
    final = next(m for m in bot.messages() if m["ts"] == request["ts"])
    assert not has_buttons(final) and "approved by <@U0APPROVER>" in json.dumps(final["blocks"])
    assert buttons_of(final) == ["cf_undo"] and "scale deployment/graphql-api back to 3 replicas" in json.dumps(final)
    assert "Verified in" in json.dumps(final["blocks"]) and "Verified in" in thread + " ".join(
        bot.thread_texts(request["ts"]))
    events = await audit_events(bot, request_id(request))
    assert events == ["requested", "approved", "running", "done", "verified"]


async def test_self_approval_is_refused(bot, sandbox) -> None:
    await bot.slash("scale graphql-api 5", user=ADMIN)  # an admin is also an approver, but not of their own
    request = bot.last_request()
    await bot.click(request["ts"], "cf_approve", ADMIN)
    assert any("cannot approve your own request" in t for t in bot.private_texts())
    assert await replicas(sandbox) == 3
    assert has_buttons(next(m for m in bot.messages() if m["ts"] == request["ts"]))
    events = await audit_events(bot, request_id(request))
    assert events == ["requested", "approval_refused"]


async def test_operator_without_approver_role_cannot_approve(bot, sandbox, sim) -> None:
    await bot.slash("scale graphql-api 4", user=ADMIN)
    request = bot.last_request()
    await bot.click(request["ts"], "cf_approve", OPERATOR)
    assert any("needs the approver role" in t for t in bot.private_texts())
    assert await replicas(sandbox) == 3


async def test_repeated_and_simultaneous_clicks_run_once(bot, sandbox) -> None:
    await bot.slash("scale graphql-api 7", user=OPERATOR)
    request = bot.last_request()
    clicks = [bot.driver.click(CHANNEL, request["ts"], "cf_approve", who)
              for who in (APPROVER, APPROVER2, APPROVER, APPROVER2)]
    results = await asyncio.gather(*clicks)
    assert all(r.status == 200 for r in results)
    await bot.settle()
    await bot.stale_click(request, "cf_approve", APPROVER)  # and once more, from a screen not yet updated
    assert await replicas(sandbox) == 7
    events = await audit_events(bot, request_id(request))
    assert events.count("approved") == 1 and events.count("running") == 1 and events.count("done") == 1
    assert any("already done" in t for t in bot.private_texts())


async def test_deny_ends_the_request(bot, sandbox) -> None:
    await bot.slash("scale graphql-api 9", user=OPERATOR)
    request = bot.last_request()
    await bot.click(request["ts"], "cf_deny", APPROVER)
    final = next(m for m in bot.messages() if m["ts"] == request["ts"])
    assert not has_buttons(final) and "Denied" in json.dumps(final["blocks"])
    assert any("Nothing was changed" in t for t in bot.thread_texts(request["ts"]))
    assert await replicas(sandbox) == 3
    assert await audit_events(bot, request_id(request)) == ["requested", "denied"]


async def test_pending_request_expires(sim, kube, sandbox, tmp_path) -> None:
    harness = await start_bot(
        sim, database_url=f"sqlite:///{tmp_path / 'cf.db'}", services={"kube": kube},
        config={"approvals": {"ttl_minutes": 0.01, "sweep_seconds": 0.2}},
    )
    try:
        await harness.slash("scale graphql-api 6", user=OPERATOR)
        request = harness.last_request()
        await sim.wait_for(
            lambda s: "Expired" in json.dumps(next(m for m in s.messages(CHANNEL) if m["ts"] == request["ts"])),
            timeout=10,
        )
        final = next(m for m in harness.messages() if m["ts"] == request["ts"])
        assert not has_buttons(final)
        assert any("Expired after" in t for t in harness.thread_texts(request["ts"]))
        assert await replicas(sandbox) == 3
    finally:
        await harness.close()


async def test_click_after_expiry_changes_nothing(sim, kube, sandbox, tmp_path) -> None:
    harness = await start_bot(
        sim, database_url=f"sqlite:///{tmp_path / 'cf.db'}", services={"kube": kube},
        config={"approvals": {"ttl_minutes": 0.005, "sweep_seconds": 3600}},  # the sweep never runs here
    )
    try:
        await harness.slash("scale graphql-api 6", user=OPERATOR)
        request = harness.last_request()
        await asyncio.sleep(0.5)
        await harness.click(request["ts"], "cf_approve", APPROVER)
        assert any("expired" in t for t in harness.private_texts())
        assert await replicas(sandbox) == 3
    finally:
        await harness.close()


async def test_bad_requests_get_clear_answers_and_no_prompt(bot, sandbox) -> None:
    cases = {
        "scale graphql-api 51": "between 0 and 50",
        "scale graphql-api ten": "is not a whole number",
        "scale graphql-api 0": "only an admin",
        "scale no-such-thing 3": "was not found in namespace `collaboration`",
        "scale GraphQL_API 3": "not a valid Kubernetes name",
        "scale graphql-api": "Missing REPLICAS",
        "scale graphql-api 3 --force": "Unknown option `--force`",
    }
    for text, expected in cases.items():
        await bot.slash(text, user=OPERATOR)
        assert any(expected in t for t in bot.private_texts()), (text, bot.private_texts()[-1])
    assert bot.requests() == []
    assert await replicas(sandbox) == 3
    joined = " ".join(bot.private_texts())
    assert "Traceback" not in joined and "Exception" not in joined


async def test_unknown_command_suggests_the_closest(bot) -> None:
    await bot.slash("scael graphql-api 3", user=OPERATOR)
    assert any("Did you mean `/cf scale`" in t for t in bot.private_texts())


async def test_help_lists_commands_by_area_and_shows_usage(bot) -> None:
    await bot.slash("help", user=VIEWER)
    listing = bot.private_texts()[-1]
    for expected in ("Triage", "Scaling", "/cf scale DEPLOYMENT REPLICAS", "/cf pods", "/cf audit"):
        assert expected in listing
    await bot.slash("help scale", user=VIEWER)
    one = bot.private_texts()[-1]
    assert "Usage:" in one and "/cf scale graphql-api 10" in one


async def test_restart_is_a_rollout_restart_as_kubectl_does_it(bot, sandbox) -> None:
    before = await kubectl(sandbox.kubeconfig, "-n", "collaboration", "rollout", "history",
                           "deployment/websocket-service")
    await bot.slash("restart websocket-service", user=OPERATOR)
    await bot.click(bot.last_request()["ts"], "cf_approve", APPROVER)
    stamp = await kubectl(sandbox.kubeconfig, "-n", "collaboration", "get", "deployment", "websocket-service",
                          "-o", r"jsonpath={.spec.template.metadata.annotations.kubectl\.kubernetes\.io/restartedAt}")
    assert stamp.endswith("Z") and stamp.startswith("20")
    after = await kubectl(sandbox.kubeconfig, "-n", "collaboration", "rollout", "history",
                          "deployment/websocket-service")
    assert len(after.strip().splitlines()) == len(before.strip().splitlines()) + 1


async def test_user_group_membership_grants_a_role(sim, kube, sandbox, tmp_path) -> None:
    sim.usergroups = {"S0ONCALL": ["U0GROUPIE"]}
    harness = await start_bot(sim, database_url=f"sqlite:///{tmp_path / 'cf.db'}", services={"kube": kube},
                              config={"rbac": {"approver": ["S0ONCALL"]}})
    try:
        await harness.slash("scale graphql-api 4", user=OPERATOR)
        await harness.click(harness.last_request()["ts"], "cf_approve", "U0GROUPIE")
        assert await replicas(sandbox) == 4
    finally:
        await harness.close()


async def test_exempt_change_runs_without_approval_but_is_audited(sim, kube, sandbox, tmp_path) -> None:
    harness = await start_bot(sim, database_url=f"sqlite:///{tmp_path / 'cf.db'}", services={"kube": kube},
                              config={"approvals": {"exempt": ["scale"]}})
    try:
        await harness.slash("scale document-service 4", user=OPERATOR)
        request = harness.last_request()
        assert not has_buttons(next(m for m in harness.messages() if m["ts"] == request["ts"]))
        assert await replicas(sandbox, "document-service") == 4
        events = [e.event for e in await harness.runtime.store.audit_for_action(request_id_from_store(harness))]
        assert events == ["requested", "running", "done", "verified"]
    finally:
        await harness.close()


def request_id_from_store(harness) -> str:
    text = json.dumps(harness.last_request()["blocks"])
    return text.split("Request `")[1].split("`")[0]


async def test_forged_or_stale_signatures_get_401(bot) -> None:
    from tests.slack_sim import sign, slash_body

    body = slash_body("scale graphql-api 10", OPERATOR, CHANNEL)
    forged = sign(body, "not-the-secret")
    assert (await bot.driver.post_raw(body, forged)).status == 401
    stale = sign(body, "test-signing-secret", timestamp=int(time.time()) - 600)
    assert (await bot.driver.post_raw(body, stale)).status == 401
    assert (await bot.driver.post_raw(body, {})).status == 401
    await bot.settle()
    assert bot.requests() == []


async def test_audit_survives_a_restart(sim, kube, sandbox, tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'cf.db'}"
    first = await start_bot(sim, database_url=url, services={"kube": kube})
    await first.slash("scale graphql-api 8", user=OPERATOR)
    await first.click(first.last_request()["ts"], "cf_approve", APPROVER)
    await first.close()
    second = await start_bot(sim, database_url=url, services={"kube": kube})
    try:
        await second.slash("audit 10", user=VIEWER)
        text = json.dumps(second.messages()[-1]["blocks"])
        assert "scale graphql-api 8" in text and "3 replicas -&gt; 8 replicas (approved by u0approver)" in text
    finally:
        await second.close()


async def test_action_left_running_is_reported_interrupted_at_start(sim, kube, tmp_path) -> None:
    """A process that died mid-action leaves a `running` row with an old heartbeat."""
    url = f"sqlite:///{tmp_path / 'cf.db'}"
    store = await Store.open(url)
    ts = sim.add_message(CHANNEL, "Change request: scale", user="U0CFBOT")["ts"]
    now = time.time()
    await store.create_action(Action(
        id="deadbeef0001", command="scale", args={"deployment": "graphql-api", "replicas": 10},
        requester=OPERATOR, channel=CHANNEL, state="running", summary="Scale graphql-api", approver_role="approver",
        created_at=now - 120, expires_at=now + 600, updated_at=now - 100, heartbeat_at=now - 100,
        message_ts=ts, approver=APPROVER,
    ))
    await store.close()
    harness = await start_bot(sim, database_url=url, services={"kube": kube})
    try:
        assert any("Interrupted" in t for t in harness.thread_texts(ts))
        reopened = await harness.runtime.store.get_action("deadbeef0001")
        assert reopened is not None and reopened.state == "interrupted"
    finally:
        await harness.close()


async def test_two_replicas_on_one_postgres_run_an_approval_once(sim, kube, sandbox, pg_url) -> None:
    one = await start_bot(sim, database_url=pg_url, services={"kube": kube})
    two = await start_bot(sim, database_url=pg_url, services={"kube": kube})
    try:
        await one.slash("scale graphql-api 12", user=OPERATOR)
        request = one.last_request()
        clicks = [h.driver.click(CHANNEL, request["ts"], "cf_approve", who)
                  for h, who in ((one, APPROVER), (two, APPROVER2), (two, APPROVER), (one, APPROVER2))]
        await asyncio.gather(*clicks)
        await one.settle()
        await two.settle()
        assert await replicas(sandbox) == 12
        events = [e.event for e in await one.runtime.store.audit_for_action(request_id(request))]
        assert events.count("approved") == 1 and events.count("done") == 1
    finally:
        await one.close()
        await two.close()
