"""A chaos soak: three `cfbot run --mode http` replicas on one PostgreSQL and one sandbox cluster, a driver
sending change requests, approvals and reads at random replicas while replicas are killed, the store is
restarted, and Slack and the Kubernetes API misbehave; then, after a quiet period, a judge checks that
every approved change was applied at most once (exactly once unless it ended failed or interrupted),
that nothing is left half-way, that every step was audited before its effect, and that every
acknowledged command and click was answered — against the cluster, the store and Slack's records.

    python -m bench soak            the full soak (about 10 minutes of load; `make soak`)
    python -m bench soak --short    a minute of it (tests/soak/test_soak_short.py runs this in `make test`)

Exit status 1 when any invariant has a violation. Parts: soak_pg (the store's own PostgreSQL), soak_procs
(sandbox, replicas, kubectl), soak_driver (the load), soak_faults (the chaos), soak_judge (the invariants),
soak_report (the table in bench/RESULTS.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import psycopg

from bench import soak_report
from bench.soak_driver import APPROVERS, OPERATORS, Driver, Load
from bench.soak_faults import FaultPlan, Faults
from bench.soak_judge import applied_by_state, dump_channels, gather_evidence, judge
from bench.soak_pg import Postgres
from bench.soak_procs import BOT_TOKEN, SIGNING_SECRET, Replica, Sandbox, bot_config, kubectl
from tests.slacksim import SlackSim

ROOT = Path(__file__).resolve().parent.parent
INTRO = """`make soak` (bench/soak.py): three `cfbot run --mode http` replicas on one PostgreSQL (the soak's own,
so it can be restarted) and one sandbox cluster; a driver sends signed requests, as Slack does, to replicas
chosen at random: change requests (`/cf restart soak-NN` on 40 one-pod deployments, so different targets run
in parallel) and their approvals — double clicks, two approvers at once on different replicas, Slack retries
of the same body — with reads in between, while replicas are SIGKILLed, the store restarts, and Slack and the
Kubernetes API fail for windows. After a quiet period longer than the stale-heartbeat window, the invariants
are checked against the cluster (`kubectl get rs`: each applied restart is a ReplicaSet whose change-cause
names its request; the soak's deployments keep every revision), the store read directly, and the Slack
stand-in's record of every call."""


@dataclass
class Soak:
    load: Load = field(default_factory=Load)
    plan: FaultPlan = field(default_factory=FaultPlan)
    replicas: int = 3
    pod_start_seconds: float = 0.5
    ttl_minutes: float = 1.0
    heartbeat_seconds: float = 2.0
    sweep_seconds: float = 3.0
    verify_timeout_seconds: float = 60.0
    title: str = "full"

    @property
    def stale_window(self) -> float:
        return self.heartbeat_seconds * 3 + self.sweep_seconds


def short() -> Soak:
    """About a minute of load: enough for a kill, a store restart, a Slack window and a Kubernetes window."""
    return Soak(
        load=Load(changes=90, seconds=50, rate=1.5, targets=20, reads_per_second=0.5),
        plan=FaultPlan(kill_every=18, pg_restart_at=0.55, slack_every=30, slack_window_seconds=10, k8s_every=15,
                       k8s_window_seconds=(4, 6), first_fault_after=6),
        ttl_minutes=0.5, verify_timeout_seconds=30, title="short",
    )


def deployments(n: int) -> str:
    docs = []
    for i in range(n):
        name = f"soak-{i:02d}"
        docs.append(f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: collaboration, labels: {{app: {name}, cf-soak: "true"}}}}
spec:
  replicas: 1
  revisionHistoryLimit: 1000  # every revision kept: the judge counts one ReplicaSet per applied restart
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}, cf-soak: "true"}}}}
    spec:
      containers:
      - name: app
        image: candlefish/soak:1
        resources: {{requests: {{cpu: 1m, memory: 8Mi}}}}
""")
    return "---\n".join(docs)


async def run(soak: Soak, write: bool = True) -> soak_report.Figures:
    started_wall, started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="cf-soak-"))
    pg, sim = Postgres(), SlackSim(bot_token=BOT_TOKEN, team_id="T0CANDLE", bot_user_id="U0CFBOT")
    sandbox = Sandbox(workdir, soak.pod_start_seconds)
    replicas: list[Replica] = []
    ok = False
    try:
        await pg.start()
        await sandbox.start()
        await kubectl(sandbox.kubeconfig, "apply", "-f", "-", stdin=deployments(soak.load.targets).encode())
        await sim.start()
        config = workdir / "cf.yaml"
        config.write_text(bot_config(ttl_minutes=soak.ttl_minutes, heartbeat_seconds=soak.heartbeat_seconds,
                                     sweep_seconds=soak.sweep_seconds,
                                     verify_timeout_seconds=soak.verify_timeout_seconds,
                                     operators=OPERATORS, approvers=APPROVERS))
        env = {"CF_CONFIG": str(config), "KUBECONFIG": sandbox.kubeconfig, "SLACK_BOT_TOKEN": BOT_TOKEN,
               "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": sim.api_url, "DATABASE_URL": pg.url}
        replicas = [Replica(i, workdir, env) for i in range(soak.replicas)]
        await asyncio.gather(*(r.start() for r in replicas))
        print(f"soak ({soak.title}): {soak.replicas} replicas up in {time.monotonic() - started:.0f} s; "
              f"logs in {workdir}", flush=True)

        hold = soak.ttl_minutes * 60 + 2 * soak.sweep_seconds + 5
        driver = Driver(sim, [r.url for r in replicas], pg.url, soak.load, hold_after_abandon=hold)
        faults = Faults(soak.plan, replicas, pg, sandbox, sim)
        load_started = time.monotonic()
        chaos = asyncio.create_task(faults.run(soak.load.seconds))
        await driver.run()
        load_seconds = time.monotonic() - load_started
        if not chaos.done():
            chaos.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await chaos
        print(f"soak: load over after {load_seconds:.0f} s; quiet period…", flush=True)
        await quiet(soak, pg.url, hold_seconds=max(c.hold_seconds for c in faults.chaos) if faults.chaos else 0)

        evidence = await gather_evidence(pg.url, sandbox.kubeconfig)
        invariants = judge(evidence, sim, driver.sent)
        figures = soak_report.Figures(
            title=soak.title, started=started_wall, wall_seconds=time.monotonic() - started,
            load_seconds=load_seconds, replicas=soak.replicas, sent=driver.sent, driver=driver.counts,
            faults=faults.counts, slack=faults.slack_counts(), k8s=await sandbox.fault_counts(),
            states=Counter(a["state"] for a in evidence.actions), applied=applied_by_state(evidence),
            verdicts=Counter(a["verdict"] for a in evidence.actions if a.get("verdict")),
            invariants=invariants, events=faults.events,
        )
        figures.notes.append(f"Code soaked: {await _revision()}.")
        body = soak_report.render(figures)
        print("\n".join(body), flush=True)
        if write:
            soak_report.write_section(body, INTRO)
        ok = figures.violations == 0
        if not ok:
            (workdir / "violations.txt").write_text(dump_channels(sim, driver.sent, evidence, invariants))
        return figures
    finally:
        await asyncio.gather(*(r.stop() for r in replicas), return_exceptions=True)
        await sandbox.stop()
        await sim.stop()
        await pg.stop()
        pg.remove()
        if ok:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"soak: logs kept in {workdir}", flush=True)


async def _revision() -> str:
    """The commit the soaked code is (and whether the working tree differs from it)."""
    proc = await asyncio.create_subprocess_exec("git", "-C", str(ROOT), "describe", "--always", "--dirty",
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    out, _ = await proc.communicate()
    return out.decode().strip() or "unknown (not a git checkout)"


async def quiet(soak: Soak, store_url: str, hold_seconds: float) -> None:
    """Wait past the stale-heartbeat window (interrupted work is swept) and the longest held Slack answer,
    then until nothing is pending, running or being verified — at most the approval TTL plus the
    verification timeout, whatever the bot does."""
    floor = max(soak.stale_window + soak.sweep_seconds + 2, hold_seconds + 2)
    await asyncio.sleep(floor)
    deadline = time.monotonic() + soak.ttl_minutes * 60 + soak.verify_timeout_seconds + soak.stale_window
    while time.monotonic() < deadline:
        async with await psycopg.AsyncConnection.connect(store_url) as conn:
            cur = await conn.execute("SELECT count(*) FROM cf_actions WHERE state IN ('pending', 'approved', "
                                     "'running') OR verdict = 'verifying'")
            row = await cur.fetchone()
        if row is not None and row[0] == 0:
            await asyncio.sleep(2)  # the last thread posts after the last transition
            return
        await asyncio.sleep(1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", action="store_true", help="about a minute of load (the test's version)")
    parser.add_argument("--seconds", type=float, default=None, help="load phase length")
    parser.add_argument("--changes", type=int, default=None, help="change requests to send")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--no-write", action="store_true", help="print the table; leave bench/RESULTS.md alone")
    args = parser.parse_args(argv)
    soak = short() if args.short else Soak()
    if args.seconds is not None or args.changes is not None or args.seed is not None:
        soak.load = replace(soak.load, seconds=args.seconds or soak.load.seconds,
                            changes=args.changes or soak.load.changes, seed=args.seed)
        soak.plan = replace(soak.plan, seed=args.seed)
    figures = asyncio.run(run(soak, write=not args.no_write and not args.short))
    print(f"soak: {figures.violations} violation(s)", flush=True)
    return 1 if figures.violations else 0


if __name__ == "__main__":
    sys.exit(main())
