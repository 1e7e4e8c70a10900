"""Demo part: real Prometheus and Alertmanager, so that a fire drill ends in a real alert in the console.

When this machine has the binaries (`prometheus`, and `prometheus-alertmanager` or `alertmanager`: the
Debian packages, which scripts/services.sh installs), the part starts both as plain processes on free
loopback ports, with their config files, data and logs in the run's folder (`monitoring/`):

    Prometheus    scrapes what the other parts serve (`DemoEnv.scrape_configs`: the stand-ins' /metrics)
                  and evaluates deploy/prometheus/rules.yml with its expressions as shipped;
    Alertmanager  runs the shipped receiver (deploy/prometheus/alertmanager.yml) pointed at the bot's
                  `POST /alerts/alertmanager`, which the demo serves on loopback (`AlertInbox`) with a
                  bearer token made for this run (Alertmanager reads it from a file, as in production).

Only the timings are the demo's (`INTERVAL`, `HOLD`, `GROUP_WAIT`, `GROUP_INTERVAL`): scrape and evaluate
every 2 s, each rule's `for` cut to 5 s, a new group sent after 2 s. A scenario that crosses a runbook
threshold (`cfbot demo --scenario db-pool-exhausted`: sandbox.scenarios.TRAFFIC) so shows its alert in
the console within about half a minute, drawn like any bot message, with its buttons. The config gets
`prometheus.url` and `alertmanager.url`, so `/cf graph`, the alert's graph and Silence work as well.

Both processes are stopped when the demo ends (the run's exit stack: also on Ctrl-C or an error; where
`setpriv` is installed they also get SIGTERM if the demo is killed outright). Without the binaries the
part says in one line how to get them and contributes nothing else; binaries that are there but do not
start are said in one line too, and the demo goes on without them.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import signal
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import yaml
from aiohttp import web

from demo.parts import DemoEnv, DemoPart
from incidents.alerts import webhook_handler
from incidents.wiring import operations
from integrations.alertmanager import Alertmanager
from integrations.prometheus import Prometheus
from sandbox.scenarios import TRAFFIC

if TYPE_CHECKING:
    from bot.runtime import Runtime

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
RECEIVER = ROOT / "deploy" / "prometheus" / "alertmanager.yml"
WEBHOOK_PATH = "/alerts/alertmanager"
INTERVAL = "2s"  # scrape and rule evaluation
HOLD = "5s"  # every alert rule's `for` (shipped: 2 to 15 minutes)
GROUP_WAIT, GROUP_INTERVAL, REPEAT_INTERVAL = "2s", "10s", "4h"
READY_SECONDS = 30.0  # each process answers /-/ready within this, or the demo goes on without alerts
STOP_SECONDS = 5.0  # SIGTERM, then SIGKILL after this
HINT = ("Alerts: install Prometheus and Alertmanager (sudo apt-get install prometheus prometheus-alertmanager, "
        "or scripts/services.sh) to see real alerts in the demo")

Handler = Callable[[web.Request], Awaitable[web.Response]]


def binaries() -> tuple[str, str] | None:
    """(prometheus, alertmanager) as found on PATH, or None when either is missing."""
    prometheus = shutil.which("prometheus")
    alertmanager = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    return (prometheus, alertmanager) if prometheus and alertmanager else None


def demo_rules(source: Path = RULES, hold: str = HOLD) -> dict[str, Any]:
    """The shipped rule file with every alert's `for` set to `hold`; expressions, labels, annotations as shipped."""
    rules: dict[str, Any] = yaml.safe_load(source.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                rule["for"] = hold
    return rules


def demo_receiver(webhook_url: str, token_file: Path, source: Path = RECEIVER) -> dict[str, Any]:
    """The shipped receiver pointed at `webhook_url` with the token in `token_file`, and the demo's timings."""
    config: dict[str, Any] = yaml.safe_load(source.read_text())
    route = config["route"]
    route.update(group_wait=GROUP_WAIT, group_interval=GROUP_INTERVAL, repeat_interval=REPEAT_INTERVAL)
    [receiver] = [r for r in config["receivers"] if r["name"] == route["receiver"]]
    [hook] = receiver["webhook_configs"]
    hook["url"] = webhook_url
    hook["http_config"]["authorization"]["credentials_file"] = str(token_file)
    return config


class AlertInbox:
    """The bot's `POST /alerts/alertmanager` on a loopback port, with a token made for this run.

    It is listening before the runtime exists (Alertmanager is configured with its URL); until `attach`
    it answers 503, which Alertmanager retries, and from then on the bot's own webhook handler answers.
    """

    def __init__(self) -> None:
        self.token = secrets.token_urlsafe(32)
        self.url = ""
        self._handler: Handler | None = None
        self._runner: web.AppRunner | None = None

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post(WEBHOOK_PATH, self._receive)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}{WEBHOOK_PATH}"
        return self.url

    def attach(self, runtime: Runtime) -> None:
        ops = operations(runtime)
        if ops is None:
            return
        token_env = runtime.settings.alerts.token_env
        self._handler = webhook_handler(ops.alerts, runtime.track, token_env, env={token_env: self.token})

    async def _receive(self, request: web.Request) -> web.Response:
        if self._handler is None:
            return web.json_response({"ok": False, "error": "the bot is starting"}, status=503)
        return await self._handler(request)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


class StartFailed(Exception):
    """A process did not answer /-/ready; the message is one line."""


@dataclass
class MonitoringProcesses:
    """Prometheus and Alertmanager as child processes; files under `folder`; `stop` ends both."""

    folder: Path
    prometheus: str
    alertmanager: str
    prometheus_url: str = ""
    alertmanager_url: str = ""
    _procs: list[asyncio.subprocess.Process] = field(default_factory=list)

    async def start(self, scrape_configs: list[dict[str, Any]], webhook_url: str, token: str) -> None:
        """Alertmanager, then Prometheus (which sends to it); StartFailed if one does not answer /-/ready."""
        (self.folder / "alertmanager-data").mkdir(parents=True, exist_ok=True)
        (self.folder / "prometheus-data").mkdir(exist_ok=True)
        token_file = self.folder / "cf-alerts-token"
        token_file.write_text(token + "\n")
        token_file.chmod(0o600)
        receiver = self._write("alertmanager.yml", demo_receiver(webhook_url, token_file))
        self.alertmanager_url = await self._spawn("alertmanager", [
            self.alertmanager, f"--config.file={receiver}", f"--storage.path={self.folder / 'alertmanager-data'}",
            "--web.listen-address=127.0.0.1:{port}", "--web.external-url=http://127.0.0.1:{port}",
            "--cluster.listen-address=",
        ])
        config = self._write("prometheus.yml", self._prometheus_config(scrape_configs))
        self.prometheus_url = await self._spawn("prometheus", [
            self.prometheus, f"--config.file={config}", f"--storage.tsdb.path={self.folder / 'prometheus-data'}",
            "--web.listen-address=127.0.0.1:{port}", "--web.external-url=http://127.0.0.1:{port}",
        ])

    def _prometheus_config(self, scrape_configs: list[dict[str, Any]]) -> dict[str, Any]:
        rules = self._write("rules.yml", demo_rules())
        return {
            "global": {"scrape_interval": INTERVAL, "scrape_timeout": INTERVAL, "evaluation_interval": INTERVAL},
            "rule_files": [str(rules)],
            "alerting": {"alertmanagers": [{"static_configs": [
                {"targets": [self.alertmanager_url.removeprefix("http://")]}]}]},
            "scrape_configs": scrape_configs,
        }

    def _write(self, name: str, content: dict[str, Any]) -> Path:
        path = self.folder / name
        path.write_text(yaml.safe_dump(content, sort_keys=False))
        return path

    async def _spawn(self, name: str, args: list[str]) -> str:
        """Start on a free port (three tries: another process may take the port first); its base URL."""
        log_path = self.folder / f"{name}.log"
        for _ in range(3):
            port = _free_port()
            with log_path.open("ab") as log:
                proc = await asyncio.create_subprocess_exec(
                    *_orphan_guard(), *(a.replace("{port}", str(port)) for a in args),
                    stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log)
            self._procs.append(proc)
            url = f"http://127.0.0.1:{port}"
            if await wait_ready(proc, f"{url}/-/ready"):
                return url
            await _stop(proc)
            self._procs.remove(proc)
            if "address already in use" not in _tail(log_path, 5):
                break
        raise StartFailed(f"{name} did not start: {_tail(log_path, 1) or 'no output'}")

    async def stop(self) -> None:
        """Both processes ended (SIGTERM, SIGKILL after STOP_SECONDS), newest first."""
        while self._procs:
            await _stop(self._procs.pop())


def _orphan_guard() -> list[str]:
    """`setpriv --pdeathsig TERM --` where util-linux has it: the process gets SIGTERM if the demo dies
    without its exit stack running (SIGKILL), instead of living on; setpriv execs it, so the pid is its own."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--"] if setpriv else []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_ready(proc: asyncio.subprocess.Process, url: str, timeout: float = READY_SECONDS) -> bool:
    """Whether `proc` answers 200 at `url` within `timeout` (False at once if it exits); the tests use it too."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as session:
        while time.monotonic() < deadline and proc.returncode is None:
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with session.get(url) as resp:
                    if resp.status == 200:
                        return True
            await asyncio.sleep(0.1)
    return False


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), STOP_SECONDS)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


def _tail(path: Path, lines: int) -> str:
    """The last lines of a process's log, on one line."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text.splitlines()[-lines:] if line.strip())[-300:]


async def monitoring_part(env: DemoEnv) -> DemoPart:
    """Prometheus and Alertmanager for the demo, or one line saying how to get them (see the module's doc)."""
    found = binaries()
    if found is None:
        return DemoPart(hint=HINT)
    if not (RULES.exists() and RECEIVER.exists()):
        return DemoPart(hint=f"Alerts: {RULES.parent} is not here (run the demo from a checkout) so there are "
                             "no real alerts in the demo")
    inbox = AlertInbox()
    webhook_url = await inbox.start()
    env.stack.push_async_callback(inbox.stop)
    processes = MonitoringProcesses(env.workdir / "monitoring", *found)
    env.stack.push_async_callback(processes.stop)  # before they start: a Ctrl-C meanwhile stops them too
    try:
        await processes.start(env.scrape_configs, webhook_url, inbox.token)
    except (StartFailed, OSError) as exc:
        await processes.stop()
        return DemoPart(hint=f"Alerts: {str(exc) or type(exc).__name__}; the demo runs without real alerts")
    drill = "" if env.scenario in TRAFFIC else \
        f"; `.venv/bin/cfbot demo --scenario {' or '.join(sorted(TRAFFIC))}` makes one fire"
    return DemoPart(
        services={"prometheus": Prometheus(processes.prometheus_url, timeout=10),
                  "alertmanager": Alertmanager(processes.alertmanager_url, timeout=10)},
        config={"prometheus": {"url": processes.prometheus_url}, "alertmanager": {"url": processes.alertmanager_url}},
        note=(f"Alerts: Prometheus {processes.prometheus_url} and Alertmanager {processes.alertmanager_url} run "
              f"deploy/prometheus/'s rules (for: {HOLD}) and receiver -> {webhook_url}{drill}"),
        attach=inbox.attach,
    )
