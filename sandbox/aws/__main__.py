"""`python -m sandbox.aws [--kubeconfig FILE]`: serve the AWS sandbox until Ctrl-C, for the aws CLI or a bot.

With a kubeconfig for the sandbox cluster, the EC2 instances take its nodes' instance ids.
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
from typing import Any, cast

from urllib3 import BaseHTTPResponse

from . import AwsSandbox


def _nodes(kubeconfig: str | None) -> list[dict[str, Any]]:
    """The cluster's Node objects as JSON, through the Kubernetes SDK (the sandbox imports nothing of the bot)."""
    if not kubeconfig:
        return []
    from kubernetes import client, config

    with config.new_client_from_config(config_file=kubeconfig, persist_config=False) as api:
        # Unpreloaded, the SDK returns urllib3's raw response, not the V1NodeList its annotation says.
        resp = cast(BaseHTTPResponse, client.CoreV1Api(api).list_node(_preload_content=False, _request_timeout=10))
        items: list[dict[str, Any]] = json.loads(resp.data).get("items", [])
        return items


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox.aws", description=__doc__)
    parser.add_argument("--kubeconfig", help="the sandbox cluster's kubeconfig, to match EC2 instances to its nodes")
    args = parser.parse_args()
    sandbox = AwsSandbox.start(_nodes(args.kubeconfig))
    print(f"export AWS_ENDPOINT_URL={sandbox.endpoint_url} AWS_ACCESS_KEY_ID=sandbox AWS_SECRET_ACCESS_KEY=sandbox "
          "AWS_DEFAULT_REGION=us-east-1", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: done.set())
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    done.wait()
    sandbox.stop()


if __name__ == "__main__":
    main()
