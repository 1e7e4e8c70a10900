"""Starting the processes a benchmark measures: the sandbox, the cf bot, the bare Bolt app."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from tests.processes import free_port, stop, wait_http

CFBOT = str(Path(sys.executable).parent / "cfbot")
SECRET = "bench-signing-secret"
CONFIG = """\
namespace: collaboration
incident_channel: C0INCIDENT
rbac: {viewer: ["*"], operator: [U0OPERATOR], approver: [U0APPROVER], admin: [U0ADMIN]}
approvals: {ttl_minutes: 15}
limits: {commands_per_minute: 1000000}  # the load comes from one user: measure the work, not the rate limit
"""


@dataclass
class Proc:
    proc: asyncio.subprocess.Process
    url: str

    @property
    def pid(self) -> int:
        return int(self.proc.pid)

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    async def stop(self) -> None:
        await stop(self.proc)


async def start(args: list[str], health: str, env: dict[str, str] | None = None) -> Proc:
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"cf-bench-{Path(args[0]).name}-{free_port()}.log"
    with log.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            *args, env={**os.environ, **(env or {})}, stdout=asyncio.subprocess.DEVNULL, stderr=err,
        )
    try:
        await wait_http(health, proc, timeout=60)
    except RuntimeError as exc:
        raise RuntimeError(f"{exc}; its stderr: {log.read_text()[-1500:]}") from None
    return Proc(proc, health.rsplit("/", 1)[0])


async def start_sandbox(workdir: Path, pods: int = 0) -> tuple[Proc, str]:
    port = free_port()
    kubeconfig = str(workdir / f"sandbox-{port}.kubeconfig")
    sb = await start([CFBOT, "sandbox", "--port", str(port), "--kubeconfig", kubeconfig, "--pods", str(pods)],
                     f"http://127.0.0.1:{port}/version")
    return sb, kubeconfig


async def start_cf(workdir: Path, kubeconfig: str, slack_api_url: str, extra_config: str = "") -> Proc:
    port = free_port()
    config = workdir / "cf.yaml"
    config.write_text(CONFIG + extra_config)
    env = {"CF_CONFIG": str(config), "KUBECONFIG": kubeconfig, "SLACK_BOT_TOKEN": "xoxb-test",
           "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": slack_api_url,
           "DATABASE_URL": f"sqlite:///{workdir / f'cf-{port}.db'}"}
    return await start([CFBOT, "run", "--mode", "http", "--host", "127.0.0.1", "--port", str(port)],
                       f"http://127.0.0.1:{port}/healthz", env)


async def start_bare(slack_api_url: str) -> Proc:
    port = free_port()
    return await start([sys.executable, "-m", "bench.bare_app", str(port), SECRET, slack_api_url],
                       f"http://127.0.0.1:{port}/healthz")


async def start_sim() -> tuple[Proc, str]:
    """The Slack simulator in its own process: (process, Web API base URL)."""
    port = free_port()
    proc = await start([sys.executable, "-m", "bench.sim_server", str(port)], f"http://127.0.0.1:{port}/healthz")
    async with aiohttp.ClientSession() as session, session.get(f"{proc.url}/healthz") as resp:
        info = await resp.json()
    return proc, str(info["api_url"])


async def sim_calls(sim: Proc) -> int:
    async with aiohttp.ClientSession() as session, session.get(f"{sim.url}/healthz") as resp:
        return int((await resp.json())["calls"])


async def response_urls(sim: Proc, n: int, user: str) -> list[str]:
    """Fresh response_urls from the simulator (each takes Slack's five posts)."""
    async with aiohttp.ClientSession() as session, session.get(
        f"{sim.url}/response_urls", params={"n": str(n), "user": user}
    ) as resp:
        return list(await resp.json())
