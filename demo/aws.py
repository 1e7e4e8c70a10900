"""The demo's AWS: the sandbox's moto server behind its front, reached the way production reaches AWS.

The process gets `AWS_ENDPOINT_URL` and throwaway credentials, and the bot's ordinary AWS client
(built by `bot.services.aws`) does the rest, so the demo exercises exactly the product code. The
sandbox's EC2 instances take the ids in the sandbox cluster's node providerIDs, so `node terminate`
finds a node's instance as it would in EKS.
"""

from __future__ import annotations

import os
from typing import Any

from bot.config import parse_settings
from demo.parts import DemoEnv, DemoPart

DEMO_AWS_CONFIG: dict[str, Any] = {"aws": {"waf_rule_group": "candlefish-rate-limit"}}
CLEARED = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE")


async def aws_part(env: DemoEnv) -> DemoPart:
    try:
        from sandbox.aws import start_aws_sandbox
    except ImportError as exc:
        return DemoPart(note=f"AWS: not simulated ({exc.name} is not installed; `make demo` installs it)")
    nodes = await _sandbox_nodes(env)
    sandbox = await start_aws_sandbox(nodes)
    env.stack.callback(sandbox.stop)
    _point_process_at(sandbox.endpoint_url, env)
    from bot.services import aws as build_aws

    client = build_aws(parse_settings({"incident_channel": "C0DEMO", **DEMO_AWS_CONFIG}, "demo config"))
    return DemoPart(services={"aws": client} if client is not None else {}, config=DEMO_AWS_CONFIG,
                    note=f"AWS: moto sandbox with the runbook's resources (AWS_ENDPOINT_URL={sandbox.endpoint_url})")


async def _sandbox_nodes(env: DemoEnv) -> list[dict[str, Any]]:
    """The sandbox cluster's nodes (read through the API, as anyone would), if the cluster part ran."""
    kubeconfig = env.workdir / "kubeconfig"
    if not kubeconfig.exists():
        return []
    from integrations.kube import Kube

    kube = Kube.from_config(str(kubeconfig), timeout=10)
    try:
        return await kube.list_nodes()
    finally:
        kube.close()


def _point_process_at(endpoint_url: str, env: DemoEnv) -> None:
    """Set the endpoint and dummy credentials for this process; put the old values back on exit."""
    wanted = {"AWS_ENDPOINT_URL": endpoint_url, "AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo",
              "AWS_EC2_METADATA_DISABLED": "true"}
    saved = {k: os.environ.get(k) for k in (*wanted, *CLEARED)}

    def restore() -> None:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    env.stack.callback(restore)
    for key in CLEARED:
        os.environ.pop(key, None)
    os.environ.update(wanted)
