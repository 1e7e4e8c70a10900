"""`cfbot demo`: the bot in a terminal, on a fresh machine, with no Slack and no cluster.

Each part of the world the demo simulates is one `DemoPart` setup: it starts what it needs (the
sandbox cluster in-process, a moto server, local stand-ins), registers its cleanup on the exit stack,
and returns the services and config it contributes. The console then plays Slack for one channel.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.config import parse_settings

DEMO_USERS = {"olivia": "U0OPERATOR", "arjun": "U0APPROVER", "ada": "U0ADMIN", "victor": "U0VIEWER"}
DEMO_CONFIG: dict[str, Any] = {
    "namespace": "collaboration",
    "incident_channel": "C0INCIDENT",
    "rbac": {"viewer": ["*"], "operator": ["U0OPERATOR"], "approver": ["U0APPROVER"], "admin": ["U0ADMIN"]},
    "approvals": {"ttl_minutes": 15, "allow_self_approval": False, "exempt": []},
    "limits": {"max_replicas": 50},
}


@dataclass
class DemoEnv:
    workdir: Path
    stack: contextlib.AsyncExitStack
    scenario: str | None = None


@dataclass
class DemoPart:
    services: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    note: str = ""


DemoSetup = Callable[[DemoEnv], Awaitable[DemoPart]]


async def kube_part(env: DemoEnv) -> DemoPart:
    """The sandbox cluster, served in-process on a free port, and a Kube client for it."""
    from integrations.kube import Kube
    from sandbox import Sandbox

    sandbox = Sandbox(scenario=env.scenario)
    await sandbox.start()
    env.stack.push_async_callback(sandbox.stop)
    kubeconfig = env.workdir / "kubeconfig"
    sandbox.write_kubeconfig(str(kubeconfig))
    kube = Kube.from_config(str(kubeconfig), timeout=10)
    env.stack.callback(kube.close)
    return DemoPart(services={"kube": kube}, note=f"Kubernetes: sandbox cluster (KUBECONFIG={kubeconfig})")


async def postgres_part(env: DemoEnv) -> DemoPart:
    """The monitored database: $CF_TARGET_DATABASE_URL, else this machine's PostgreSQL if it answers."""
    from demo.targets import postgres_part as setup

    return await setup(env)


async def redis_part(env: DemoEnv) -> DemoPart:
    """The monitored cache: $CF_TARGET_REDIS_URL, else this machine's Redis if it answers."""
    from demo.targets import redis_part as setup

    return await setup(env)


async def aws_part(env: DemoEnv) -> DemoPart:
    """AWS: a moto server seeded with the runbook's resources, reached through AWS_ENDPOINT_URL."""
    from demo.aws import aws_part as setup

    return await setup(env)


async def probes_part(env: DemoEnv) -> DemoPart:
    """Local stand-ins for the services' /health, /metrics and WebSocket endpoints, and the `probes:` config."""
    from sandbox.probe_targets import ProbeTargets

    targets = ProbeTargets()
    url = await targets.start()
    env.stack.push_async_callback(targets.stop)
    return DemoPart(config={"probes": targets.probes_config()}, note=f"Probes: stand-in service endpoints at {url}")


async def vendors_part(env: DemoEnv) -> DemoPart:
    """Statuspage and PagerDuty stand-ins on a local port, and clients pointed at them."""
    from demo.vendors import vendors_part as setup

    return await setup(env)


SETUPS: list[DemoSetup] = [kube_part, postgres_part, redis_part, aws_part, probes_part, vendors_part]


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


async def run_demo(user: str, scenario: str | None = None) -> None:
    from demo.console import ConsoleMessenger, ConsoleSession
    from incidents.assemble import build_runtime

    workdir = Path(tempfile.mkdtemp(prefix="cf-demo-"))
    async with contextlib.AsyncExitStack() as stack:
        env = DemoEnv(workdir, stack, scenario)
        services: dict[str, Any] = {}
        config = dict(DEMO_CONFIG)
        notes = []
        for setup in SETUPS:
            part = await setup(env)
            services.update(part.services)
            config = _merge(config, part.config)
            if part.note:
                notes.append(part.note)
        settings = parse_settings(config, "demo config")
        messenger = ConsoleMessenger(names={v: k for k, v in DEMO_USERS.items()}, files_dir=workdir / "files")
        runtime = await build_runtime(
            settings, database_url=f"sqlite:///{workdir / 'cf.db'}", messenger=messenger, services=services
        )
        stack.push_async_callback(runtime.close)
        await runtime.start()
        interactive = sys.stdin.isatty()
        if interactive:
            print(BANNER.format(names=", ".join(f"{n} ({u})" for n, u in DEMO_USERS.items())))
            for note in notes:
                print(f"  {note}")
            print()
        session = ConsoleSession(
            messenger=messenger,
            handle=runtime.dispatcher.handle,
            approve=runtime.approvals.approve,
            deny=runtime.approvals.deny,
            users=DEMO_USERS,
            user=DEMO_USERS.get(user, user),
        )
        await session.run(sys.stdin, interactive)


BANNER = """\
cf demo — the bot in your terminal, against a simulated Candlefish platform (#incident-response).
  /cf help                 list commands          /cf pods      /cf scale graphql-api 10
  /as NAME                 act as someone else: {names}
  a number                 click that button      /quit         leave
  /cf incident declare sev1 Editor is down       then `/in editor` to type in its channel (`/in` to come back)
You start as olivia (operator). Ask for a change, then `/as arjun` and approve it."""
