"""The soak's load: change requests and their approvals, the way a busy incident channel sends them.

Each change is a flow: an operator types `/cf restart soak-NN` (a target with nothing in flight, or now and
then one that has, which must be refused); the driver waits for the request message, then approvers
click on it — often the same approver twice (a double click), often two approvers at once on different
replicas, sometimes Deny, sometimes nobody (the request expires) — and waits until the request has ended
before the target is used again. Reads (`pods`, `status`, `audit`) are interleaved. Every request goes
to a replica chosen at random, signed as Slack signs; a request that gets no answer within Slack's 3 s
is sent again with `X-Slack-Retry-Num` (same body), and a share of answered ones is retried anyway, as
Slack does when an ack arrives late. Loops are bounded: a number of changes or a time, whichever first.

Every command comes from a channel of its own (`C0SK000123`), so the judge can tell which answer belongs
to which command from the Slack stand-in's records alone. The driver keeps what it sent (`Sent`, with
each delivery's replica, status and time); it reads the store only to pace itself (is this request over?).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import time
from collections import Counter
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import psycopg

from bench.soak_procs import SIGNING_SECRET
from tests.slacksim import SlackSim, block_actions_body, new_trigger_id, sign, slash_body
from tests.slacksim.payloads import find_button
from tests.slacksim.registry import public

OPERATORS = ["U0SOAKOPS1", "U0SOAKOPS2"]
APPROVERS = ["U0SOAKAPR1", "U0SOAKAPR2"]
VIEWER = "U0SOAKVIEW"
APPROVE, DENY = "cf_approve", "cf_deny"
FINAL = ("done", "failed", "denied", "expired", "interrupted", "stale")
USER_AGENT = "Slackbot 1.0 (+https://api.slack.com/robots)"


@dataclass
class Load:
    changes: int = 1000  # change requests to send (the loop also ends at `seconds`)
    seconds: float = 660.0
    rate: float = 1.75  # change requests started per second, at most (1,000 in about 9.5 minutes)
    targets: int = 40  # soak-00 .. soak-39
    reads_per_second: float = 0.6
    ack_timeout: float = 3.0  # Slack's
    request_wait: float = 45.0  # how long a flow waits for its request message
    p_slash_retry: float = 0.15  # an acknowledged slash command delivered again (X-Slack-Retry-Num: 1)
    p_click_retry: float = 0.15
    p_double_click: float = 0.3  # the approver clicks twice
    p_two_approvers: float = 0.3  # a second approver clicks at the same moment, on another replica
    p_deny: float = 0.04
    p_abandon: float = 0.02  # nobody clicks: the request expires
    p_busy: float = 0.05  # ask for a target that has a request in flight (one change at a time: refused)
    seed: int | None = None


@dataclass
class Delivery:
    replica: int
    retry: int
    status: int | None  # None: no HTTP answer (connection refused or reset, or past the ack timeout)
    elapsed: float
    at: float
    error: str = ""
    body: str = ""


@dataclass
class Sent:
    """One person's action — a slash command or a click — with every delivery of it (Slack's retries)."""

    kind: str  # change | read | click
    text: str  # the command text, or the button's action_id
    user: str
    channel: str
    trigger: str
    body: str
    at: float
    request_id: str | None = None  # a click: the request clicked
    response_url: str = ""
    deliveries: list[Delivery] = field(default_factory=list)

    @property
    def acked(self) -> bool:
        return any(d.status == 200 for d in self.deliveries)

    @property
    def ack_text(self) -> str:
        return next((d.body for d in self.deliveries if d.status == 200 and d.body.strip()), "")


class StatePoller:
    """The states of requests the driver waits on, read from the store in one query every half second."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.waiting: dict[str, asyncio.Future[str]] = {}
        self.failures = 0

    async def until_final(self, request_id: str, timeout: float) -> str:
        future = self.waiting.setdefault(request_id, asyncio.get_running_loop().create_future())
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            return "timeout"

    async def run(self) -> None:
        conn: psycopg.AsyncConnection[Any] | None = None
        try:
            while True:
                await asyncio.sleep(0.5)
                ids = [i for i, f in self.waiting.items() if not f.done()]
                if not ids:
                    continue
                try:
                    if conn is None or conn.closed:
                        conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True, connect_timeout=3)
                    cur = await conn.execute("SELECT id, state FROM cf_actions WHERE id = ANY(%s)", (ids,))
                    for request_id, state in await cur.fetchall():
                        if state in FINAL:
                            self.waiting.pop(request_id).set_result(state)
                except psycopg.Error:  # the store restarting: try again next time
                    self.failures += 1
                    if conn is not None:
                        await conn.close()
                    conn = None
        finally:
            if conn is not None:
                await conn.close()


class Driver:
    def __init__(self, sim: SlackSim, replica_urls: list[str], store_url: str, load: Load,
                 hold_after_abandon: float) -> None:
        self.sim = sim
        self.urls = replica_urls
        self.load = load
        self.rng = random.Random(load.seed)
        self.poller = StatePoller(store_url)
        self.hold_after_abandon = hold_after_abandon  # an abandoned request holds its target until it expires
        self.sent: list[Sent] = []
        self.counts: Counter[str] = Counter()
        self._channels = itertools.count(1)
        self._inflight: Counter[str] = Counter()
        self._held_until: dict[str, float] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._session: aiohttp.ClientSession | None = None

    # --- the loops ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Send the load; return when every flow it started has ended (each is bounded)."""
        connector = aiohttp.TCPConnector(limit=0, force_close=True)
        async with aiohttp.ClientSession(connector=connector) as session:
            self._session = session
            poller = asyncio.create_task(self.poller.run())
            started = time.monotonic()
            deadline = started + self.load.seconds
            reads = asyncio.create_task(self._reads(deadline))
            try:
                for n in range(self.load.changes):
                    start_at = started + n / self.load.rate
                    await asyncio.sleep(max(0.0, start_at - time.monotonic()))
                    if time.monotonic() >= deadline:
                        break
                    target = await self._pick_target(deadline)
                    if target is None:
                        break
                    self._spawn(self._change(target))
                reads.cancel()  # the reads go on only as long as the changes
                while self._tasks:
                    await asyncio.gather(*list(self._tasks), return_exceptions=True)
            finally:
                poller.cancel()
                reads.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await poller
                with contextlib.suppress(asyncio.CancelledError):
                    await reads
        self.counts["seconds"] = round(time.monotonic() - started)

    def _spawn(self, work: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _pick_target(self, deadline: float) -> str | None:
        """A target with nothing in flight (or, now and then, one with something in flight, on purpose)."""
        names = [f"soak-{i:02d}" for i in range(self.load.targets)]
        while time.monotonic() < deadline:
            now = time.monotonic()
            free = [t for t in names if not self._inflight[t] and self._held_until.get(t, 0) <= now]
            busy = [t for t in names if self._inflight[t]]
            if busy and self.rng.random() < self.load.p_busy:
                self.counts["busy target requests"] += 1
                return self.rng.choice(busy)
            if free:
                return self.rng.choice(free)
            await asyncio.sleep(0.2)
        return None

    async def _reads(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            await asyncio.sleep(self.rng.expovariate(self.load.reads_per_second))
            target = f"soak-{self.rng.randrange(self.load.targets):02d}"
            text = self.rng.choices(
                ["pods", f"pods {target}", "status", "audit 15", f"audit 10 --target {target}"],
                weights=[3, 2, 2, 2, 2])[0]
            self.counts[f"read {text.split()[0]}"] += 1
            self._spawn(self._slash(text, VIEWER, "read"))

    # --- one change ----------------------------------------------------------------------------

    async def _change(self, target: str) -> None:
        self._inflight[target] += 1
        try:
            self.counts["change requests"] += 1
            cmd = await self._slash(f"restart {target}", self.rng.choice(OPERATORS), "change")
            found = await self._request_message(cmd)
            if found is None:
                self.counts["change requests without a request message"] += 1
                return
            ts, request_id = found
            self.counts["request messages"] += 1
            roll = self.rng.random()
            if roll < self.load.p_abandon:
                self.counts["abandoned (left to expire)"] += 1
                self._held_until[target] = time.monotonic() + self.hold_after_abandon
                return
            if roll < self.load.p_abandon + self.load.p_deny:
                who = self.rng.choice([*APPROVERS, cmd.user])
                await self._click(cmd.channel, ts, DENY, who, request_id)
                self.counts["deny clicks"] += 1
            else:
                await self._approve(cmd.channel, ts, request_id)
            state = await self.poller.until_final(request_id, timeout=self.hold_after_abandon + 60)
            self.counts[f"flow ended {state}"] += 1
        finally:
            self._inflight[target] -= 1

    async def _approve(self, channel: str, ts: str, request_id: str) -> None:
        first = self.rng.choice(APPROVERS)
        clicks = [self._click(channel, ts, APPROVE, first, request_id)]
        self.counts["approve clicks"] += 1
        if self.rng.random() < self.load.p_double_click:
            clicks.append(self._click(channel, ts, APPROVE, first, request_id, delay=self.rng.uniform(0, 0.3)))
            self.counts["double clicks"] += 1
        if self.rng.random() < self.load.p_two_approvers:
            other = next(a for a in APPROVERS if a != first)
            clicks.append(self._click(channel, ts, APPROVE, other, request_id, delay=self.rng.uniform(0, 0.05)))
            self.counts["two approvers at once"] += 1
        await asyncio.gather(*clicks)

    async def _request_message(self, cmd: Sent) -> tuple[str, str] | None:
        """(ts, request id) of the request message posted for `cmd`, or None when it was refused or lost."""
        deadline = time.monotonic() + self.load.request_wait
        answered_at: float | None = None
        while time.monotonic() < deadline:
            for msg in self.sim.history(cmd.channel):
                found = find_button(msg, APPROVE)
                if found is not None:
                    return str(msg["ts"]), str(found[1].get("value", ""))
            if answered_at is None and (self.sim.ephemerals(cmd.channel, cmd.user) or cmd.ack_text):
                answered_at = time.monotonic()
            if answered_at is not None and time.monotonic() - answered_at > 3:
                return None  # refused (one change at a time, the store down, …): said privately
            await asyncio.sleep(0.25)
        return None

    # --- sending --------------------------------------------------------------------------------

    async def _slash(self, text: str, user: str, kind: str) -> Sent:
        channel = f"C0SK{next(self._channels):06d}"
        self.sim.channel(channel)  # Slack knows it; the bot is a member, as in #incident-response
        trigger, hook = new_trigger_id(), self.sim.new_response_url(channel, user)
        body = slash_body(text, user, channel, response_url=hook, trigger_id=trigger, team_id=self.sim.team_id)
        sent = Sent(kind, text, user, channel, trigger, body, time.time(), response_url=hook)
        self.sent.append(sent)
        await self._send(sent)
        return sent

    async def _click(self, channel: str, ts: str, action_id: str, user: str, request_id: str,
                     delay: float = 0.0) -> None:
        if delay:
            await asyncio.sleep(delay)
        message = next((m for m in self.sim.history(channel) if m["ts"] == ts), None)
        if message is None or find_button(message, action_id) is None:
            self.counts["clicks on a message without the button any more"] += 1
            return  # Slack shows no button once the request left pending: nothing to click
        found = find_button(message, action_id)
        assert found is not None
        as_sent = {k: v for k, v in public(message).items() if k not in {"channel", "source"}}
        trigger, hook = new_trigger_id(), self.sim.new_response_url(channel, user, ts, False)
        body = block_actions_body(user, channel, as_sent, action_id, str(found[1].get("value", "")),
                                  response_url=hook, trigger_id=trigger, team_id=self.sim.team_id)
        sent = Sent("click", action_id, user, channel, trigger, body, time.time(), request_id=request_id,
                    response_url=hook)
        self.sent.append(sent)
        await self._send(sent)

    async def _send(self, sent: Sent) -> None:
        """Deliver once; until acknowledged, again with X-Slack-Retry-Num (up to 3 tries, as Slack); and a
        share of acknowledged ones once more, in the background (a retry racing the first delivery)."""
        for retry, pause in enumerate((0.0, 0.5, 2.0)):
            await asyncio.sleep(pause)
            delivery = await self._deliver(sent, retry)
            if delivery.status == 200:
                break
        p_again = self.load.p_click_retry if sent.kind == "click" else self.load.p_slash_retry
        if sent.acked and self.rng.random() < p_again:
            self.counts["slack retries of acknowledged requests"] += 1

            async def again() -> None:
                await asyncio.sleep(self.rng.uniform(0, 1.0))
                await self._deliver(sent, len(sent.deliveries))

            self._spawn(again())

    async def _deliver(self, sent: Sent, retry: int) -> Delivery:
        assert self._session is not None
        replica = self.rng.randrange(len(self.urls))
        headers = {**sign(sent.body, SIGNING_SECRET), "Content-Type": "application/x-www-form-urlencoded",
                   "User-Agent": USER_AGENT}
        if retry:
            headers |= {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
            self.counts["retried deliveries"] += 1
        started, at = time.perf_counter(), time.time()
        status, error, text = None, "", ""
        try:
            async with self._session.post(self.urls[replica], data=sent.body.encode(), headers=headers,
                                          timeout=aiohttp.ClientTimeout(total=self.load.ack_timeout)) as resp:
                text = await resp.text()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            error = type(exc).__name__
        delivery = Delivery(replica, retry, status, time.perf_counter() - started, at, error, text)
        sent.deliveries.append(delivery)
        self.counts["deliveries"] += 1
        self.counts[f"deliveries answered {status or error}"] += 1
        return delivery
