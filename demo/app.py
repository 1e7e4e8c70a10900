"""`cfbot demo`: the bot in a terminal, on a fresh machine, with no Slack and no cluster.

Each part of the world the demo simulates is one `DemoPart` setup: it starts what it needs (the
sandbox cluster in-process, a moto server, local stand-ins, Prometheus and Alertmanager when this
machine has them), registers its cleanup on the exit stack, and returns the services and config it
contributes. The console then plays Slack for one channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.change_buttons import ask_again
from bot.config import parse_settings
from bot.listening import guarded
from bot.messenger import Origin
from commands.base import Services
from demo.aws import aws_part
from demo.console import ConsoleButton, ConsoleMessenger
from demo.monitoring import monitoring_part
from demo.parts import DemoEnv, DemoPart, DemoSetup
from demo.session import ConsoleSession
from demo.targets import postgres_part, redis_part
from demo.vendors import vendors_part
from incidents.alert_views import ACK, SILENCE, UNSILENCE
from incidents.assemble import build_runtime
from incidents.wiring import operations

__all__ = ["DEMO_USERS", "SETUPS", "DemoEnv", "DemoPart", "run_demo"]

DEMO_USERS = {"olivia": "U0OPERATOR", "arjun": "U0APPROVER", "ada": "U0ADMIN", "victor": "U0VIEWER"}
DEMO_CONFIG: dict[str, Any] = {
    "namespace": "collaboration",
    "incident_channel": "C0INCIDENT",
    "rbac": {"viewer": ["*"], "operator": ["U0OPERATOR"], "approver": ["U0APPROVER"], "admin": ["U0ADMIN"]},
    "approvals": {"ttl_minutes": 15, "allow_self_approval": False, "exempt": []},
    "limits": {"max_replicas": 50},
}


async def kube_part(env: DemoEnv) -> DemoPart:
    """The sandbox cluster, served in-process on a free port, and a Kube client for it.

    Timed as `cfbot sandbox` is: new pods take 2 s to start, HPAs sync every 15 s.
    """
    from integrations.kube import Kube
    from sandbox import Sandbox
    from sandbox.sandbox import HPA_SYNC_SECONDS, START_SECONDS

    sandbox = Sandbox(scenario=env.scenario, start_seconds=START_SECONDS, hpa_sync_seconds=HPA_SYNC_SECONDS)
    await sandbox.start()
    env.stack.push_async_callback(sandbox.stop)
    kubeconfig = env.workdir / "kubeconfig"
    sandbox.write_kubeconfig(str(kubeconfig))
    kube = Kube.from_config(str(kubeconfig), timeout=10)
    env.stack.callback(kube.close)
    return DemoPart(services={"kube": kube}, note=f"Kubernetes: sandbox cluster (KUBECONFIG={kubeconfig})")


async def probes_part(env: DemoEnv) -> DemoPart:
    """Local stand-ins for the services' /health, /metrics and WebSocket endpoints, and the `probes:` config.

    Their metrics show the scenario where it has an effect on them (sandbox.scenarios.TRAFFIC); Prometheus
    scrapes them when the demo has one (demo.monitoring).
    """
    from sandbox.probe_targets import ProbeTargets
    from sandbox.scenarios import apply_traffic

    targets = ProbeTargets()
    apply_traffic(targets.knobs, env.scenario)
    url = await targets.start()
    env.stack.push_async_callback(targets.stop)
    env.scrape_configs.extend(targets.scrape_configs())
    return DemoPart(config={"probes": targets.probes_config()}, note=f"Probes: stand-in service endpoints at {url}")


# monitoring_part last: it scrapes what the others serve (DemoEnv.scrape_configs)
SETUPS: list[DemoSetup] = [kube_part, postgres_part, redis_part, aws_part, probes_part, vendors_part, monitoring_part]


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


async def run_demo(user: str, scenario: str | None = None, keep_files: bool = False) -> None:
    """Run the demo in a fresh temporary folder, removed on the way out (also on Ctrl-C or an error).

    The folder holds the store, the kubeconfig and the files the bot uploads; `keep_files` (or `/keep`
    typed in the console) keeps it, and its path is printed at the end.
    """
    workdir = Path(tempfile.mkdtemp(prefix="cf-demo-"))
    env: DemoEnv | None = None
    try:
        async with contextlib.AsyncExitStack() as stack:
            env = DemoEnv(workdir, stack, scenario, keep=keep_files)
            await _run(env, user)
    finally:
        _leave(workdir, keep_files if env is None else env.keep)


async def _run(env: DemoEnv, user: str) -> None:
    services = Services()
    config = dict(DEMO_CONFIG)
    parts = []
    for setup in SETUPS:
        part = await setup(env)
        parts.append(part)
        services.update(part.services)
        config = _merge(config, part.config)
    settings = parse_settings(config, "demo config")
    messenger = ConsoleMessenger(names={v: k for k, v in DEMO_USERS.items()}, files_dir=env.workdir / "files")
    runtime = await build_runtime(
        settings, database_url=f"sqlite:///{env.workdir / 'cf.db'}", messenger=messenger, services=services
    )
    env.stack.push_async_callback(runtime.close)
    await runtime.start()
    for part in parts:
        if part.attach is not None:
            part.attach(runtime)
    interactive = sys.stdin.isatty()
    if interactive:
        print(BANNER.format(names=", ".join(f"{n} ({u})" for n, u in DEMO_USERS.items()), workdir=env.workdir))
        for part in parts:
            if part.note:
                print(f"  {part.note}")
    for part in parts:  # said whatever the input: what is missing, and how to get it
        if part.hint:
            print(f"  {part.hint}" if interactive else part.hint)
    if interactive:
        print()
    ops = operations(runtime)
    session = DemoSession(
        messenger=messenger,
        handle=runtime.dispatcher.handle,
        approve=runtime.approvals.approve,
        deny=runtime.approvals.deny,
        users=DEMO_USERS,
        user=DEMO_USERS.get(user, user),
        keep=lambda: _keep(env),
        again=lambda action_id, origin: ask_again(runtime, action_id, origin),
        alert_click=None if ops is None else ops.controls.handle,
    )
    await session.run(sys.stdin, interactive)


AlertClick = Callable[[str, str, Origin], Awaitable[None]]
ALERT_ACTIONS = (ACK, f"{SILENCE}:", UNSILENCE)


@dataclass
class DemoSession(ConsoleSession):
    """The console session, and an alert message's own buttons (Ack, Silence, Unsilence) clicked as in Slack."""

    alert_click: AlertClick | None = None

    async def line(self, raw: str) -> bool:
        """One line, and then a Ctrl-C that arrived as its command finished is not lost.

        Python 3.11's `asyncio.wait_for` (the dispatcher's command timeout) returns the result and drops the
        cancellation when both come at once; the session would then wait for another line with the demo's
        processes running. The task still counts the cancel request, so it is raised here.
        """
        go_on = await super().line(raw)
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise asyncio.CancelledError
        return go_on

    async def _click(self, button: ConsoleButton, address: str) -> None:
        click = self.alert_click
        if click is None or not button.action_id.startswith(ALERT_ACTIONS):
            await super()._click(button, address)
            return
        origin = Origin(user=self.user, channel=button.channel, message_ts=button.message_ts)
        self.out.write(f"  ({self._name()} clicked {button.label} — {address})\n")
        await guarded(self.messenger, origin, lambda: click(button.action_id, button.value, origin))


def _keep(env: DemoEnv) -> Path:
    env.keep = True
    return env.workdir


def _leave(workdir: Path, keep: bool) -> None:
    """Keep the run's folder and say where, or remove it; a folder that will not go is said in one line."""
    if keep:
        print(f"The demo's files are kept in {workdir}")
        return
    try:
        shutil.rmtree(workdir)
    except OSError as exc:
        print(f"Could not remove the demo's folder {workdir}: {exc}", file=sys.stderr)


BANNER = """\
cf demo — the bot in your terminal, against a simulated Candlefish platform (#incident-response).
  /cf help                 list commands          /cf pods      /cf scale graphql-api 10
  /as NAME                 act as someone else: {names}
  1, 2, …                  click a button of the last message drawn with buttons
  4.1                      click button 1 of message 4 (each button line says its message's number)
  /cf incident declare sev1 Editor is down       then `/in editor` to type in its channel (`/in` to come back)
  /keep                    keep this run's folder ({workdir}) when you leave; else it is removed
  /quit                    leave
A number that no longer names a showing button (the message was updated: approved, denied, expired)
is refused, never passed to another button. If new buttons appear while you type, a bare number is
refused too: type MESSAGE.BUTTON.
You start as olivia (operator). Ask for a change, then `/as arjun` and approve it."""
