"""The AWS half of the sandbox: moto in server mode, seeded with the runbook's resources, behind a front.

    aws = await start_aws_sandbox(nodes)     # nodes: Kubernetes Node objects (their providerIDs)
    os.environ["AWS_ENDPOINT_URL"] = aws.endpoint_url
    ...
    aws.front.inject("rds", "AccessDenied", "...")   # tests: make a call fail as AWS would
    aws.stop()

Module map: protocol (reading requests, writing errors per wire protocol) -> extras (what moto
lacks: Health, pending maintenance, forced failover, replica counts) -> front (the aiohttp endpoint
that answers those and forwards the rest to moto) -> seed (the resources) -> here (wiring).

moto keeps its state in process-wide globals, so one AwsSandbox runs per process at a time; starting
one resets moto's state first.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from moto.server import ThreadedMotoServer

from .extras import Extras
from .front import Front
from .seed import attach_nodes, seed

_running = threading.Lock()


@dataclass
class AwsSandbox:
    endpoint_url: str
    front: Front
    extras: Extras
    moto: ThreadedMotoServer
    nodes: dict[str, str]  # Kubernetes node name -> EC2 instance id

    @classmethod
    def start(cls, nodes: Iterable[dict[str, Any]] = ()) -> AwsSandbox:
        """Start moto and the front on free ports and seed them (blocking; about two seconds)."""
        if not _running.acquire(blocking=False):
            raise RuntimeError("an AWS sandbox is already running in this process (moto's state is global)")
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request line
        try:
            moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
            moto.start()
            host, port = moto.get_host_and_port()
            moto_url = f"http://{host}:{port}"
            urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST"), timeout=10)
            extras = Extras()
            front = Front(moto_url, extras)
            url = front.start()
            made = seed(moto_url, extras, nodes)
        except BaseException:
            _running.release()
            raise
        return cls(url, front, extras, moto, made)

    def attach_nodes(self, nodes: Iterable[dict[str, Any]]) -> dict[str, str]:
        """Match EC2 instances to (another) sandbox cluster's nodes."""
        made = attach_nodes(self.endpoint_url, nodes)
        self.nodes.update(made)
        return made

    def stop(self) -> None:
        try:
            self.front.stop()
            self.moto.stop()
            server = getattr(self.moto, "_server", None)
            if server is not None:
                server.server_close()
        finally:
            if _running.locked():
                _running.release()


async def start_aws_sandbox(nodes: Iterable[dict[str, Any]] = ()) -> AwsSandbox:
    return await asyncio.to_thread(AwsSandbox.start, list(nodes))


__all__ = ["AwsSandbox", "Extras", "Front", "start_aws_sandbox"]
