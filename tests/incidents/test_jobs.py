"""Scheduled jobs with a controllable clock: incident reminders by severity, the health SLA check
over the registered status checks (breach and recovery said once each), the RPO check through the
"aws" service, approval expiry updating its message; one run per tick across two schedulers on one
PostgreSQL database; the App Home tab."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.scheduler import Scheduler
from bot.store import Action, Store
from commands import checks
from commands.checks import Check, CheckSpec
from integrations.errors import Unavailable
from integrations.statuspage import Statuspage
from tests.harness import APPROVER, CHANNEL, OPERATOR
from tests.incident_support import FakeClock, StatuspageStandIn, buttons, start
from tests.slack_sim import sign


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def bot(sim, tmp_path, clock):
    harness = await start(sim, f"sqlite:///{tmp_path / 'cf.db'}", clock=clock,
                          config={"alerts": {"health_samples": 3}})
    yield harness
    await harness.close()


def posts(bot, channel: str = CHANNEL) -> list[str]:
    return [m["text"] for m in bot.messages(channel)]


async def tick(bot, name: str) -> bool:
    ran = await bot.runtime.scheduler.tick(name)
    await bot.settle()
    return bool(ran)


async def test_reminders_follow_severity_and_stop_on_resolve(bot, sim, clock) -> None:
    await bot.slash("incident declare sev1 Editor is down", user=OPERATOR)
    cid = next(c["id"] for c in sim.channels.values() if c["name"].startswith("inc-"))

    def reminders() -> int:
        return sum("No update on INC-1" in t for t in posts(bot, cid))

    clock.advance(14 * 60)
    await tick(bot, "incidents.reminders")
    assert reminders() == 0
    clock.advance(2 * 60)  # 16 min without an update: sev1 reminds every 15
    await tick(bot, "incidents.reminders")
    assert reminders() == 1 and f"<@{OPERATOR}>" in posts(bot, cid)[-1]
    clock.advance(60)
    await tick(bot, "incidents.reminders")
    assert reminders() == 1  # not again within the interval
    await bot.slash("incident update Scaling graphql-api", user=OPERATOR, channel=cid)
    clock.advance(14 * 60)
    await tick(bot, "incidents.reminders")
    assert reminders() == 1  # the update reset the clock
    clock.advance(2 * 60)
    await tick(bot, "incidents.reminders")
    assert reminders() == 2
    await bot.slash("incident resolve", user=OPERATOR, channel=cid)
    clock.advance(3600)
    await tick(bot, "incidents.reminders")
    assert reminders() == 2


async def test_health_check_says_breach_and_recovery_once(bot, clock, monkeypatch) -> None:
    state: dict[str, Any] = {"status": "ok", "ms": 120.0}

    async def api(ctx: Any) -> list[Check]:
        return [Check("API", state["status"], "HTTP 200" if state["status"] == "ok" else "HTTP 503", state["ms"])]

    async def cache(ctx: Any) -> list[Check]:
        return [Check("Cache", "ok", "ok", 3.0)]

    monkeypatch.setattr(checks, "STATUS_CHECKS", [CheckSpec("API", api, 1, (), 5.0),
                                                   CheckSpec("Cache", cache, 2, (), 5.0)])

    async def run(minutes: float = 1) -> list[str]:
        clock.advance(minutes * 60)
        before = len(posts(bot))
        assert await tick(bot, "health.check")
        return posts(bot)[before:]

    assert await run() == []
    state["status"] = "fail"
    [breach] = await run()
    assert "SLA breached" in breach
    assert await run() == []  # still failing: nothing new to say
    state.update(status="ok", ms=2600.0)
    assert await run() == []  # answers again, but p95 over 2 s: still breached, still quiet
    state["ms"] = 150.0
    assert await run() == [] and await run() == []  # the slow sample is still in the last 3
    [recovered] = await run()
    assert "SLA recovered" in recovered
    last = await bot.runtime.ops.incidents.records.get_state("health")
    assert last["breached"] is False and {c["name"] for c in last["checks"]} == {"API", "Cache"}


class FakeAws:
    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.restorable_age = timedelta(minutes=3)
        self.snapshot_age = timedelta(hours=20)
        self.down = False

    def _at(self, age: timedelta) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC) - age

    async def db_instance(self, name: str) -> dict[str, Any]:
        if self.down:
            raise Unavailable("AWS", "describe RDS instance: no answer within 15s.")
        return {"DBInstanceIdentifier": name, "LatestRestorableTime": self._at(self.restorable_age)}

    async def db_snapshots(self, instance: str | None = None, snapshot: str | None = None) -> list[dict[str, Any]]:
        return [{"DBSnapshotIdentifier": "rds:nightly", "SnapshotCreateTime": self._at(self.snapshot_age)}]


async def test_rpo_check_warns_once_and_recovers(sim, tmp_path, clock) -> None:
    aws = FakeAws(clock)
    # a stand-in with the two methods the RPO job calls, not the whole AwsClient
    bot = await start(sim, f"sqlite:///{tmp_path / 'cf.db'}", clock=clock, services={"aws": aws})  # type: ignore[arg-type]
    try:
        async def run() -> list[str]:
            clock.advance(300)
            before = len(posts(bot))
            await tick(bot, "rpo.check")
            return posts(bot)[before:]

        assert await run() == []
        aws.restorable_age = timedelta(minutes=40)
        [warning] = await run()
        assert "RPO at risk" in warning and "40 min old" in warning and "candlefish-collaboration-db" in warning
        assert await run() == []
        aws.down = True
        [failed] = await run()
        assert "RPO check failed" in failed
        aws.down = False
        aws.restorable_age = timedelta(minutes=2)
        [back] = await run()
        assert "RPO back within 15 min" in back
    finally:
        await bot.close()


async def test_rpo_check_without_aws_is_skipped_with_a_log_line(bot, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="incidents.jobs"):
        assert await tick(bot, "rpo.check")
    assert any("RPO check skipped" in r.message for r in caplog.records)
    assert posts(bot) == []


async def test_expired_approval_loses_its_buttons(sim, tmp_path, clock) -> None:
    site = await StatuspageStandIn().start()
    bot = await start(sim, f"sqlite:///{tmp_path / 'cf.db'}", clock=clock,
                      services={"statuspage": Statuspage(site.url, "page1", "k", timeout=5)},
                      config={"statuspage": {"page_id": "page1"}})
    try:
        await bot.slash("statuspage open Editor slow", user=OPERATOR)
        request = bot.last_request()
        assert buttons(request)
        clock.advance(16 * 60)
        await tick(bot, "approvals.expire")
        final = next(m for m in bot.messages() if m["ts"] == request["ts"])
        assert not buttons(final) and "Expired" in json.dumps(final["blocks"])
        await bot.stale_click(request, "cf_approve", APPROVER)  # from a screen that still shows the buttons
        assert any("expired" in t for t in bot.private_texts()) and site.requests == []
    finally:
        await bot.close()
        await site.stop()


async def test_two_schedulers_on_one_postgres_run_a_job_once(sim, pg_url, clock) -> None:
    stores = [await Store.open(pg_url), await Store.open(pg_url)]
    runs: list[str] = []
    schedulers = [Scheduler(s, f"replica-{i}", clock) for i, s in enumerate(stores)]
    for sched in schedulers:
        async def job(name: str = sched.instance_id) -> None:
            runs.append(name)
        sched.every("demo.job", 60, job)
    try:
        for _ in range(3):
            results = await asyncio.gather(*(s.tick("demo.job") for s in schedulers for _ in range(2)))
            assert sum(results) == 1
            clock.advance(60)
        assert len(runs) == 3
    finally:
        for s in stores:
            await s.close()

    one = await start(sim, pg_url, clock=clock)
    two = await start(sim, pg_url, clock=clock)
    try:
        await one.slash("incident declare sev1 Both replicas see this", user=OPERATOR)
        clock.advance(20 * 60)
        ran = await asyncio.gather(one.runtime.scheduler.tick("incidents.reminders"),
                                   two.runtime.scheduler.tick("incidents.reminders"))
        await one.settle()
        assert sorted(ran) == [False, True]
        cid = next(c["id"] for c in sim.channels.values() if c["name"].startswith("inc-"))
        assert sum("No update on INC-1" in t for t in posts(one, cid)) == 1
        declared = await asyncio.gather(*(h.runtime.ops.incidents.declare(title=f"Race {i}", severity="sev3",
                                                                          kind=None, user=OPERATOR)
                                          for i, h in enumerate((one, two, one, two))))
        assert sorted(i.number for i in declared) == [2, 3, 4, 5]
    finally:
        await one.close()
        await two.close()


async def test_home_tab_shows_incidents_approvals_and_health(bot, sim, clock, monkeypatch) -> None:
    async def api(ctx: Any) -> list[Check]:
        return [Check("API", "fail", "HTTP 503", 80.0)]

    monkeypatch.setattr(checks, "STATUS_CHECKS", [CheckSpec("API", api, 1, (), 5.0)])
    await bot.slash("incident declare sev2 Checkout broken", user=OPERATOR)
    await tick(bot, "health.check")
    now = clock()
    await bot.runtime.store.create_action(Action(
        id="home0001", command="scale", args={"deployment": "graphql-api", "replicas": 10}, requester=OPERATOR,
        channel=CHANNEL, state="pending", summary="Scale graphql-api to 10", approver_role="approver",
        created_at=now, expires_at=now + 900, updated_at=now))
    body = json.dumps({"token": "x", "team_id": "T0CANDLE", "api_app_id": "A0CFBOT", "type": "event_callback",
                       "event_id": "Ev0HOME1", "event_time": int(clock()),
                       "event": {"type": "app_home_opened", "user": OPERATOR, "channel": "D0OPERATOR", "tab": "home"}})
    headers = {**sign(body, "test-signing-secret"), "Content-Type": "application/json"}
    delivery = await bot.driver.post_raw(body, headers)
    await bot.settle()
    assert delivery.status == 200
    view = sim.home_view(OPERATOR)
    assert view is not None
    text = json.dumps(view["blocks"])
    assert "Open incidents (1)" in text and "INC-1" in text and "Checkout broken" in text
    assert "Waiting for approval (1)" in text and "Scale graphql-api to 10" in text
    assert "SLA breached" in text and "HTTP 503" in text
