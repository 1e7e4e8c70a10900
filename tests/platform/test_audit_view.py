"""`/cf audit` names what changed: target, command as typed, people by name, request id; its filters
and the JSON Lines export. Through the Slack simulator against the sandbox cluster (kubectl judges the
change); the store's filtered query against both engines; the name cache on its own clock."""

from __future__ import annotations

import json
import re
import time

from bot.audit import UserNames
from bot.store import Action, AuditQuery, Store
from tests.harness import ADMIN, APPROVER, APPROVER2, OPERATOR, VIEWER, kubectl
from tests.k8s_support import NS, assert_slack_accepted_everything, last_reply, request_and_approve

PEOPLE = {
    OPERATOR: {"name": "omar", "real_name": "Omar Operator", "display_name": "omar"},
    APPROVER: {"name": "priya", "real_name": "Priya Raman", "display_name": "priya"},
    APPROVER2: {"name": "sam", "real_name": "Sam Lee", "display_name": ""},  # no display name: the real name
    VIEWER: {"name": "vic", "real_name": "Vic Viewer", "display_name": "vic"},
}


def request_id(message: dict) -> str:
    return next(str(el["value"]) for b in message["blocks"] if b["type"] == "actions" for el in b["elements"])


async def replicas(kubeconfig: str, name: str) -> int:
    return int(await kubectl(kubeconfig, "-n", NS, "get", "deployment", name, "-o", "jsonpath={.spec.replicas}"))


async def audit(bot, text: str = "") -> str:
    """Asked by the admin: each `/cf audit` is itself audited, and the tests filter on the others."""
    await bot.slash(f"audit {text}".strip(), user=ADMIN)
    return last_reply(bot)


def entry_lines(reply: str) -> list[str]:
    """The entries of an audit reply: one line each, starting with the time."""
    return [line for line in reply.splitlines() if re.match(r"`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d`", line)]


async def test_audit_shows_target_command_line_names_and_request_id(bot, sandbox, sim) -> None:
    sim.users = dict(PEOPLE)
    request, thread = await request_and_approve(bot, "scale graphql-api 5")
    assert await replicas(sandbox.kubeconfig, "graphql-api") == 5 and "Done" in thread
    rid = request_id(request)

    reply = await audit(bot)
    lines = entry_lines(reply)
    events = [re.search(r"\*(\w+)\*", line).group(1) for line in lines]  # type: ignore[union-attr]
    assert events == ["verified", "done", "running", "approved", "requested"]  # newest first
    assert "*verified*" in lines[0] and "Verified after" in lines[0] and "graphql-api 5/5 ready" in lines[0]
    done = lines[1]
    assert "`deployment/graphql-api in collaboration`" in done
    assert "`scale graphql-api 5`" in done
    assert "3 replicas -> 5 replicas (approved by priya)" in done
    assert f"request `{rid}`" in done
    assert all(f"`{rid}`" in line and "deployment/graphql-api" in line for line in lines)
    assert "by omar" in lines[4] and "by priya" in lines[3] and "requested by omar" in lines[3]
    assert "U0APPROVER" not in reply and "U0OPERATOR" not in reply

    # The store keeps the raw ids; the names were looked up once and cached.
    stored = await bot.runtime.store.audit_for_action(rid)
    assert [e.actor for e in stored][:2] == [OPERATOR, APPROVER] and stored[-2].detail["approver"] == APPROVER
    await audit(bot)
    looked_up = [c.args.get("user") for c in sim.calls_to("users.info")]
    assert looked_up.count(APPROVER) == 1 and looked_up.count(OPERATOR) == 1
    assert_slack_accepted_everything(sim)


async def test_filters_by_target_user_since_and_id(bot, sandbox, sim) -> None:
    sim.users = dict(PEOPLE)
    old = await bot.runtime.store.append_audit(at=time.time() - 7200, event="ran", actor=VIEWER, command="pods",
                                               detail={"text": "pods"}, request_id="0ld0ld00")
    scale, _ = await request_and_approve(bot, "scale graphql-api 4")
    restart, _ = await request_and_approve(bot, "restart websocket-service", approver=APPROVER2)
    await bot.slash("pods", user=VIEWER)
    assert await replicas(sandbox.kubeconfig, "graphql-api") == 4
    scale_id, restart_id = request_id(scale), request_id(restart)

    for target in ("graphql-api", "deployment/graphql-api", "GraphQL-API"):
        lines = entry_lines(await audit(bot, f"--target {target}"))
        assert len(lines) == 5 and all(f"`{scale_id}`" in line for line in lines), target
    assert entry_lines(await audit(bot, "--target graphql")) == []  # whole words only
    assert "No entries match these filters" in last_reply(bot)

    # by person: their own entries and every entry of the changes they requested or approved
    for who in (f"<@{APPROVER2}|sam>", f"<@{APPROVER2}>", APPROVER2, '"Sam Lee"'):
        lines = entry_lines(await audit(bot, f"--user {who}"))
        assert len(lines) == 5 and all(f"`{restart_id}`" in line for line in lines), who
        assert "Only user Sam Lee" in last_reply(bot)
    lines = entry_lines(await audit(bot, "--user @priya"))
    assert len(lines) == 5 and all(f"`{scale_id}`" in line for line in lines)
    assert len(entry_lines(await audit(bot, f"--user <@{OPERATOR}|omar>"))) == 10
    await audit(bot, "--user @nobody")
    assert any("No one shown as `@nobody`" in t for t in bot.private_texts())

    viewer = entry_lines(await audit(bot, f"--user {VIEWER}"))
    assert len(viewer) == 2 and "`pods`" in viewer[0] and "`0ld0ld00`" in viewer[1]
    recent = entry_lines(await audit(bot, f"--user {VIEWER} --since 1h"))
    assert len(recent) == 1 and "`0ld0ld00`" not in recent[0]
    assert "Only user vic, the last 1h." in last_reply(bot)

    only = entry_lines(await audit(bot, f"--id {restart_id}"))
    assert [re.search(r"\*(\w+)\*", line).group(1) for line in only] == [  # type: ignore[union-attr]
        "verified", "done", "running", "approved", "requested"]
    assert all("`restart websocket-service`" in line and "deployment/websocket-service" in line for line in only)
    assert len(entry_lines(await audit(bot, f"--id 0ld0ld00 --user {VIEWER}"))) == 1
    assert len(entry_lines(await audit(bot, f"--id {restart_id} --target graphql-api"))) == 0
    assert len(entry_lines(await audit(bot, "2"))) == 2
    assert "Older entries match too" in last_reply(bot)
    assert old > 0
    assert_slack_accepted_everything(sim)


async def test_export_uploads_the_selection_as_json_lines(bot, sandbox, sim) -> None:
    sim.users = dict(PEOPLE)
    scale, _ = await request_and_approve(bot, "scale graphql-api 6")
    await request_and_approve(bot, "restart websocket-service")
    assert await replicas(sandbox.kubeconfig, "graphql-api") == 6

    await bot.slash("audit --export --target graphql-api", user=ADMIN)
    assert "Audit trail: 5 entries exported" in last_reply(bot)
    files = [f for f in sim.files if f["filename"].endswith(".jsonl")]
    assert len(files) == 1 and re.fullmatch(r"audit-\d{8}-\d{4}\.jsonl", files[0]["filename"])
    rows = [json.loads(line) for line in files[0]["content"].decode().splitlines()]
    assert [r["event"] for r in rows] == ["requested", "approved", "running", "done", "verified"]  # oldest first
    assert {r["request_id"] for r in rows} == {request_id(scale)}
    assert {r["target"] for r in rows} == {"deployment/graphql-api in collaboration"}
    assert {r["command_line"] for r in rows} == {"scale graphql-api 6"}
    assert [r["user_id"] for r in rows] == [OPERATOR, APPROVER, "cf", "cf", "cf"]  # raw ids, not names
    assert rows[-2]["detail"]["approver"] == APPROVER and rows[-2]["approver_id"] == APPROVER
    assert rows[-1]["detail"]["verdict"] == "verified"
    assert rows[0]["time"].endswith("Z") and rows[0]["at"] <= rows[-1]["at"]
    assert "priya" not in files[0]["content"].decode()

    await bot.slash("audit --export --target nosuch", user=ADMIN)
    assert "nothing to export" in last_reply(bot)
    assert len([f for f in sim.files if f["filename"].endswith(".jsonl")]) == 1


async def test_names_fall_back_to_ids_and_are_shown_as_literal_text(bot, sandbox, sim) -> None:
    sim.users = {**PEOPLE, APPROVER: {"name": "x", "display_name": "<!channel> pri`ya"}}
    await request_and_approve(bot, "scale graphql-api 2")
    bot.runtime.audit.people.retry_after = 0  # a failed lookup is not kept: the next audit asks again
    sim.fail_next("users.info", error="internal_error", status=200, times=2)
    reply = await audit(bot)  # Slack cannot say who anyone is: the ids, and the command still answers
    assert "Audit trail: last 5 entries" in reply and "by U0OPERATOR" in reply and "approved by U0APPROVER" in reply

    posted = json.dumps((await _audit_message(bot))["blocks"], ensure_ascii=False)
    assert "&lt;!channel&gt; pri\u02cbya" in posted and "<!channel>" not in posted
    assert await replicas(sandbox.kubeconfig, "graphql-api") == 2


async def _audit_message(bot):
    await bot.slash("audit", user=ADMIN)
    return bot.messages()[-1]


# --- the store's query, on SQLite and PostgreSQL -------------------------------------------------


def _action(action_id: str, args: dict, requester: str, approver: str | None, text: str) -> Action:
    return Action(id=action_id, command="scale", args=args, requester=requester, channel="C0INCIDENT", state="done",
                  summary="Scale", approver_role="approver", created_at=1000.0, expires_at=2000.0, updated_at=1000.0,
                  request_text=text, approver=approver)


async def test_store_filters_in_sql_on_both_engines(store_url: str) -> None:
    store = await Store.open(store_url)
    try:
        for aid, dep, requester, approver, at in (("a1", "graphql-api", "U1", "U2", 1000.0),
                                                  ("a2", "graphql-api-canary", "U3", "U4", 2000.0)):
            await store.create_action(_action(aid, {"deployment": dep}, requester, approver, f"scale {dep} 5"))
            await store.append_audit(at=at, event="requested", actor=requester, command="scale", action_id=aid,
                                     detail={"target": f"deployment/{dep} in ns", "desired": "5 replicas"})
            await store.append_audit(at=at + 1, event="approved", actor=approver, command="scale", action_id=aid,
                                     detail={"requester": requester})
            await store.append_audit(at=at + 2, event="done", actor="cf", command="scale", action_id=aid,
                                     detail={"before": "3", "after": "5", "approver": approver})
        await store.append_audit(at=3000.0, event="ran", actor="U5", command="pods", detail={"text": "pods -A"},
                                 request_id="r5")
        await store.append_audit(at=3001.0, event="ran", actor="U6", command="logs",
                                 detail={"text": "logs 100%_x"}, request_id="r6")

        async def ids(**kw) -> list[tuple[str | None, str]]:
            return [(e.action_id or e.request_id, e.event) for e in await store.audit_query(AuditQuery(100, **kw))]

        everything = await store.audit_query(AuditQuery(100))
        assert [e.id for e in everything] == sorted((e.id for e in everything), reverse=True)
        first = next(e for e in everything if e.action_id == "a1" and e.event == "done")
        assert (first.target, first.command_line, first.requester, first.approver) == (
            "deployment/graphql-api in ns", "scale graphql-api 5", "U1", "U2")
        assert next(e for e in everything if e.request_id == "r5").command_line == "pods -A"
        assert {a for a, _ in await ids(target="graphql-api")} == {"a1"}
        assert {a for a, _ in await ids(target="Deployment/GraphQL-API-canary")} == {"a2"}
        assert await ids(target="graphql") == [] and await ids(target="100%_x") == []
        assert len(await ids(target="ns")) == 6
        assert {a for a, _ in await ids(users=("U2",))} == {"a1"}  # the approver: all of a1's entries
        assert len(await ids(users=("U3",))) == 3 and await ids(users=("U5",)) == [("r5", "ran")]
        assert await ids(request_id="a2", users=("U1",)) == []
        assert await ids(request_id="r6") == [("r6", "ran")]
        assert [e for _, e in await ids(request_id="a2")] == ["done", "approved", "requested"]
        assert await ids(since=3000.5) == [("r6", "ran")]
        assert len(await ids(since=2000.0, target="graphql-api-canary")) == 3
        assert len(await store.audit_query(AuditQuery(2))) == 2
        assert set(await store.audit_people()) == {"U1", "U2", "U3", "U4", "U5", "U6", "cf"}
    finally:
        await store.close()


# --- the name cache -----------------------------------------------------------------------------


async def test_user_names_are_cached_bounded_and_retried_after_a_failure() -> None:
    now = [0.0]
    asked: list[str] = []
    down = {"U0DOWN"}

    async def lookup(user_id: str) -> str:
        asked.append(user_id)
        if user_id in down:
            raise ConnectionError("slack is down")
        return f"name-of-{user_id}"

    names = UserNames(lookup, ttl=100, size=2, retry_after=10, clock=lambda: now[0])
    assert await names.names(["U0A", "U0A", "cf", "U0DOWN"]) == {"U0A": "name-of-U0A", "cf": "cf", "U0DOWN": "U0DOWN"}
    assert asked == ["U0A", "U0DOWN"]  # each id once; `cf` is not an id
    await names.names(["U0A", "U0DOWN"])
    assert asked == ["U0A", "U0DOWN"]  # both cached (the failure for retry_after)
    now[0] = 11
    down.clear()
    assert await names.name("U0DOWN") == "name-of-U0DOWN" and asked[-1] == "U0DOWN"
    now[0] = 50
    await names.names(["U0B"])  # a third name: the least recently used (U0A) is dropped
    await names.names(["U0A"])
    assert asked == ["U0A", "U0DOWN", "U0DOWN", "U0B", "U0A"]
    now[0] = 200  # past the TTL: asked again
    await names.name("U0A")
    assert asked[-1] == "U0A" and len(asked) == 6
