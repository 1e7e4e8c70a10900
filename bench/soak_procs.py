"""The soak's processes: the sandbox cluster (with its fault windows), the bot replicas, kubectl.

A replica keeps its port across restarts, so the driver's list of replica URLs never changes: a request
sent to a replica that is down fails to connect, as it would behind a load balancer that has not noticed
yet. `kill` is SIGKILL (no clean-up: in-flight work is lost mid-way, exactly what the soak is for);
`restart` starts the same command again with the same environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from tests.processes import free_port, stop, wait_http

CFBOT = str(Path(sys.executable).parent / "cfbot")
KUBECTL = "/usr/bin/kubectl"
SIGNING_SECRET = "soak-signing-secret"
BOT_TOKEN = "xoxb-test"


async def kubectl(kubeconfig: str, *args: str, stdin: bytes | None = None, timeout: float = 60) -> str:
    proc = await asyncio.create_subprocess_exec(
        KUBECTL, "--kubeconfig", kubeconfig, "--request-timeout=20s", *args,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {err.decode().strip()[-1000:]}")
    return out.decode()


class Sandbox:
    """`cfbot sandbox` as its own process; fault windows through its `/_sandbox/faults` resource."""

    def __init__(self, workdir: Path, start_seconds: float) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.kubeconfig = str(workdir / "sandbox.kubeconfig")
        self.log = workdir / "sandbox.log"
        self.start_seconds = start_seconds
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                CFBOT, "sandbox", "--port", str(self.port), "--kubeconfig", self.kubeconfig,
                "--start-seconds", str(self.start_seconds), "--hpa-sync-seconds", "0",
                stdout=log, stderr=log,
            )
        await wait_http(f"{self.url}/version", self.proc, timeout=60)

    async def fault(self, **spec: Any) -> None:
        async with aiohttp.ClientSession() as session, session.post(f"{self.url}/_sandbox/faults", json=spec) as resp:
            if resp.status != 201:
                raise RuntimeError(f"sandbox refused the fault window {spec}: {await resp.text()}")

    async def clear_faults(self) -> None:
        async with aiohttp.ClientSession() as session, session.delete(f"{self.url}/_sandbox/faults") as resp:
            await resp.read()

    async def fault_counts(self) -> dict[str, int]:
        async with aiohttp.ClientSession() as session, session.get(f"{self.url}/_sandbox/faults") as resp:
            windows = (await resp.json())["windows"]
        return {"windows": len(windows), "slowed": sum(w["slowed"] for w in windows),
                "failed": sum(w["failed"] for w in windows), "held": sum(w.get("held", 0) for w in windows)}

    async def stop(self) -> None:
        if self.proc is not None:
            await stop(self.proc, grace=5)


class Replica:
    """One `cfbot run --mode http` process; `index` names it in the report whatever its restarts."""

    def __init__(self, index: int, workdir: Path, env: dict[str, str]) -> None:
        self.index = index
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/slack/events"
        self.env = env
        self.log = workdir / f"replica-{index}.log"
        self.proc: asyncio.subprocess.Process | None = None
        self.kills = 0
        self.starts = 0

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def start(self, timeout: float = 90) -> None:
        with self.log.open("ab") as log:
            log.write(f"--- start {self.starts + 1} at {time.strftime('%H:%M:%S')} ---\n".encode())
            log.flush()
            self.proc = await asyncio.create_subprocess_exec(
                CFBOT, "run", "--mode", "http", "--host", "127.0.0.1", "--port", str(self.port),
                env={**os.environ, **self.env}, stdout=log, stderr=log,
            )
        self.starts += 1
        await wait_http(f"http://127.0.0.1:{self.port}/healthz", self.proc, timeout=timeout)

    async def kill(self) -> None:
        """SIGKILL: no drain, no clean-up."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
            await self.proc.wait()
            self.kills += 1

    async def stop(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                await stop(self.proc, grace=25)


def bot_config(*, ttl_minutes: float, heartbeat_seconds: float, sweep_seconds: float,
               verify_timeout_seconds: float, operators: list[str], approvers: list[str]) -> str:
    return f"""\
namespace: collaboration
incident_channel: C0SOAKINC
rbac:
  viewer: ["*"]
  operator: {operators}
  approver: {approvers}
approvals:
  ttl_minutes: {ttl_minutes}
  heartbeat_seconds: {heartbeat_seconds}
  sweep_seconds: {sweep_seconds}
  verify_timeout_seconds: {verify_timeout_seconds}
limits:
  commands_per_minute: 1000000  # the load comes from a few people: measure the work, not the rate limit
kubernetes:
  timeout_seconds: 10
"""
