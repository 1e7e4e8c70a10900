"""Real Prometheus and Alertmanager for the tests: started on free loopback ports with their own data dirs.

The `monitoring` fixture gives a running pair (skipped, with the reason, when the binaries are missing:
scripts/services.sh installs the Debian packages `prometheus` and `prometheus-alertmanager`). Bind it in a
test module (`monitoring = prometheus_support.monitoring`); `running_monitoring(workdir)` is the same as an
async context manager, for a test that wants more than one pair or its own timing.

    await monitoring.scrape(targets.scrape_configs())        # what Prometheus scrapes (sandbox stand-ins)
    await monitoring.send_to(alerts_url(bot), ALERT_TOKEN)   # Alertmanager's receiver: the bot's webhook
    await monitoring.use_rules(rules)                        # another rule file (default: the shipped one)
    await monitoring.wait_alert("GraphQLHighErrorRate")      # Prometheus fires it
    monitoring.prometheus_url, monitoring.alertmanager_url   # for the bot's config or direct API calls

Everything is short so a test finishes in seconds: scrape and evaluation every 1 s, Alertmanager's
`group_wait` and `group_interval` 1 s. The rule file is deploy/prometheus/rules.yml with every `for` set
to 0s (`rules_for_tests`): the expressions are evaluated exactly as shipped, only the hold is skipped. The
receiver is deploy/prometheus/alertmanager.yml with its URL, token file and timings replaced
(`receiver_config`), so the shipped example is the one that runs.

The rules' windows are production ones (`rate(...[5m])`, `max_over_time(...[5m])`). Alerts on gauges
(database connections, Redis memory, node memory) follow their knob at the next evaluation, both ways;
alerts over a window (error rate, latency, slow queries, node CPU, crash looping) fire within seconds of
their knob crossing (they are ratios, so a fresh Prometheus reads them right) but keep firing for minutes
after it is turned back, since the window still holds the bad samples — even with the target down. A test
that must see one of those resolve quickly evaluates its own copy (`use_rules`) with a shorter window.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import os
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
import yaml

from demo.monitoring import demo_rules, wait_ready
from tests.processes import free_port, stop

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
SHIPPED_RECEIVER = ROOT / "deploy" / "prometheus" / "alertmanager.yml"
INTERVAL = "1s"
T = TypeVar("T")


def prometheus_binary() -> str | None:
    return shutil.which("prometheus")


def alertmanager_binary() -> str | None:
    return shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


def binaries_missing() -> str | None:
    """Why the real components cannot run here, or None."""
    missing = [name for name, path in (("prometheus", prometheus_binary()),
                                       ("prometheus-alertmanager", alertmanager_binary())) if path is None]
    if missing:
        return (f"{' and '.join(missing)} not installed (scripts/services.sh installs the Debian packages "
                "prometheus and prometheus-alertmanager with apt-get)")
    return None


def rules_for_tests(source: Path = SHIPPED_RULES, hold: str = "0s") -> dict[str, Any]:
    """The rule file with every alert's `for` set to `hold` (expressions, labels, annotations unchanged): the
    demo's rewrite, with the tests' hold."""
    return demo_rules(source, hold)


def receiver_config(webhook_url: str | None, token_file: Path | None, *, group_wait: str = INTERVAL,
                    group_interval: str = INTERVAL, repeat_interval: str = "1h",
                    group_by: list[str] | None = None) -> dict[str, Any]:
    """The shipped deploy/prometheus/alertmanager.yml, pointed at `webhook_url` (None: a receiver that drops)."""
    config: dict[str, Any] = yaml.safe_load(SHIPPED_RECEIVER.read_text())
    route = config["route"]
    route.update(group_wait=group_wait, group_interval=group_interval, repeat_interval=repeat_interval)
    if group_by is not None:
        route["group_by"] = group_by
    [receiver] = [r for r in config["receivers"] if r["name"] == route["receiver"]]
    if webhook_url is None:
        receiver.pop("webhook_configs", None)
        return config
    [hook] = receiver["webhook_configs"]
    hook["url"] = webhook_url
    hook["http_config"]["authorization"]["credentials_file"] = str(token_file)
    return config


async def until(check: Callable[[], Awaitable[T | None]], what: str, timeout: float = 30,
                state: Callable[[], Awaitable[str]] | None = None) -> T:
    """Poll `check` every 0.2 s until it returns something not None; fail naming `what` (and `state`)."""
    deadline = time.monotonic() + timeout
    while True:
        found = await check()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            seen = await state() if state else ""
            raise AssertionError(f"{what}: not within {timeout:g}s. {seen}")
        await asyncio.sleep(0.2)


@dataclass
class Monitoring:
    """A running Prometheus and Alertmanager; every method talks to them over HTTP."""

    workdir: Path
    prometheus_url: str = ""
    alertmanager_url: str = ""
    scrape_configs: list[dict[str, Any]] = field(default_factory=list)
    rules: dict[str, Any] = field(default_factory=rules_for_tests)
    receiver: dict[str, Any] = field(default_factory=lambda: receiver_config(None, None))
    _procs: list[asyncio.subprocess.Process] = field(default_factory=list)

    # --- configuration -----------------------------------------------------------------------

    @property
    def token_file(self) -> Path:
        return self.workdir / "cf-alerts-token"

    def _write_prometheus(self) -> Path:
        rules_file = self.workdir / "rules.yml"
        rules_file.write_text(yaml.safe_dump(self.rules, sort_keys=False))
        config = {
            "global": {"scrape_interval": INTERVAL, "scrape_timeout": INTERVAL, "evaluation_interval": INTERVAL},
            "rule_files": [str(rules_file)],
            "alerting": {"alertmanagers": [{"static_configs": [
                {"targets": [self.alertmanager_url.removeprefix("http://")]}]}]},
            "scrape_configs": self.scrape_configs,
        }
        path = self.workdir / "prometheus.yml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    def _write_alertmanager(self) -> Path:
        path = self.workdir / "alertmanager.yml"
        path.write_text(yaml.safe_dump(self.receiver, sort_keys=False))
        return path

    async def scrape(self, scrape_configs: list[dict[str, Any]], *, wait: bool = True) -> None:
        """Scrape these jobs (replacing the previous ones); with `wait`, until every target is up."""
        self.scrape_configs = copy.deepcopy(scrape_configs)
        self._write_prometheus()
        await self._reload(self.prometheus_url)
        if wait:
            await self.wait_targets_up()

    async def use_rules(self, rules: dict[str, Any]) -> None:
        """Evaluate these rule groups instead (`rules_for_tests(...)` or any dict of the rule-file format)."""
        self.rules = copy.deepcopy(rules)
        self._write_prometheus()
        await self._reload(self.prometheus_url)

    async def send_to(self, webhook_url: str, token: str, **timings: Any) -> None:
        """Alertmanager's receiver: the shipped example posting to `webhook_url` with `token` (from a file)."""
        self.token_file.write_text(token + "\n")
        self.receiver = receiver_config(webhook_url, self.token_file, **timings)
        self._write_alertmanager()
        await self._reload(self.alertmanager_url)

    async def _reload(self, base: str) -> None:
        async with aiohttp.ClientSession() as session, session.post(f"{base}/-/reload") as resp:
            text = await resp.text()
        assert resp.status == 200, f"{base}/-/reload answered {resp.status}: {text}"

    # --- reading -----------------------------------------------------------------------------

    async def _get(self, url: str, params: dict[str, str] | None = None) -> Any:
        async with aiohttp.ClientSession() as session, session.get(url, params=params) as resp:
            body = await resp.json()
        assert resp.status == 200, f"{url}: HTTP {resp.status}: {body}"
        return body

    async def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's result (Prometheus HTTP API `/api/v1/query`)."""
        body = await self._get(f"{self.prometheus_url}/api/v1/query", {"query": expr})
        return list(body["data"]["result"])

    async def targets(self) -> list[dict[str, Any]]:
        return list((await self._get(f"{self.prometheus_url}/api/v1/targets"))["data"]["activeTargets"])

    async def rule_states(self) -> list[dict[str, Any]]:
        """Every rule with its health, last error and evaluation time (`/api/v1/rules`)."""
        groups = (await self._get(f"{self.prometheus_url}/api/v1/rules"))["data"]["groups"]
        return [rule for group in groups for rule in group["rules"]]

    async def prometheus_alerts(self) -> list[dict[str, Any]]:
        """Alerts Prometheus holds, pending or firing (`/api/v1/alerts`)."""
        return list((await self._get(f"{self.prometheus_url}/api/v1/alerts"))["data"]["alerts"])

    async def alertmanager_alerts(self) -> list[dict[str, Any]]:
        """Alerts Alertmanager holds (`/api/v2/alerts`)."""
        return list(await self._get(f"{self.alertmanager_url}/api/v2/alerts"))

    async def wait_targets_up(self, timeout: float = 15) -> list[dict[str, Any]]:
        async def all_up() -> list[dict[str, Any]] | None:
            targets = await self.targets()
            jobs = {j["job_name"] for j in self.scrape_configs}
            seen = {t["labels"]["job"] for t in targets}
            return targets if seen >= jobs and all(t["health"] == "up" for t in targets) else None

        async def state() -> str:
            return str([(t["labels"].get("job"), t["health"], t.get("lastError")) for t in await self.targets()])

        return await until(all_up, "every scrape target up", timeout, state)

    async def wait_alert(self, name: str, state: str = "firing", timeout: float = 30) -> list[dict[str, Any]]:
        """Prometheus' alerts called `name` once one is in `state`."""
        async def found() -> list[dict[str, Any]] | None:
            alerts = [a for a in await self.prometheus_alerts() if a["labels"]["alertname"] == name]
            return alerts if any(a["state"] == state for a in alerts) else None

        async def now() -> str:
            held = [(a["labels"]["alertname"], a["state"]) for a in await self.prometheus_alerts()]
            return f"Prometheus holds: {held}"

        return await until(found, f"Prometheus alert {name} {state}", timeout, now)

    def log_tail(self, name: str, lines: int = 20) -> str:
        path = self.workdir / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    # --- processes ---------------------------------------------------------------------------

    async def _spawn(self, name: str, args: list[str], ready: str) -> None:
        """Start a process on a free port (a few tries: another process may take the port first)."""
        for attempt in range(3):
            port = free_port()
            log = os.open(self.workdir / f"{name}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                proc = await asyncio.create_subprocess_exec(
                    *[a.replace("{port}", str(port)) for a in args], stdin=asyncio.subprocess.DEVNULL,
                    stdout=log, stderr=log)
            finally:
                os.close(log)  # the process has its own copy
            url = f"http://127.0.0.1:{port}"
            if await self._ready(proc, f"{url}{ready}"):
                self._procs.append(proc)
                setattr(self, f"{name}_url", url)
                return
            await stop(proc, grace=2)
            if attempt == 2 or "address already in use" not in self.log_tail(name):
                raise RuntimeError(f"{name} did not start:\n{self.log_tail(name)}")

    async def _ready(self, proc: asyncio.subprocess.Process, url: str, timeout: float = 20) -> bool:
        return await wait_ready(proc, url, timeout)

    async def start(self) -> None:
        (self.workdir / "alertmanager-data").mkdir(parents=True, exist_ok=True)
        (self.workdir / "prometheus-data").mkdir(exist_ok=True)
        am = self._write_alertmanager()
        await self._spawn("alertmanager", [
            str(alertmanager_binary()), f"--config.file={am}", f"--storage.path={self.workdir / 'alertmanager-data'}",
            "--web.listen-address=127.0.0.1:{port}", "--web.external-url=http://127.0.0.1:{port}",
            "--cluster.listen-address=", "--log.level=info",
        ], "/-/ready")
        config = self._write_prometheus()
        await self._spawn("prometheus", [
            str(prometheus_binary()), f"--config.file={config}",
            f"--storage.tsdb.path={self.workdir / 'prometheus-data'}", "--web.listen-address=127.0.0.1:{port}",
            "--web.external-url=http://127.0.0.1:{port}", "--web.enable-lifecycle", "--log.level=info",
        ], "/-/ready")

    async def close(self) -> None:
        for proc in reversed(self._procs):
            await stop(proc, grace=10)
        self._procs.clear()


@contextlib.asynccontextmanager
async def running_monitoring(workdir: Path) -> AsyncIterator[Monitoring]:
    """Prometheus (nothing scraped yet, the shipped rules with `for: 0s`) and Alertmanager (a receiver that
    drops everything until `send_to`), stopped on the way out."""
    stack = Monitoring(workdir)
    try:
        await stack.start()
        yield stack
    finally:
        await stack.close()


@pytest.fixture
async def monitoring(tmp_path: Path) -> AsyncIterator[Monitoring]:
    if why := binaries_missing():
        pytest.skip(why)
    async with running_monitoring(tmp_path / "monitoring") as stack:
        yield stack
