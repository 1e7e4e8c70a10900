"""`cfbot`: run the bot (Socket Mode or HTTP), serve the sandbox cluster, or play the demo.

Start-up errors (bad config, missing tokens) print one line naming the problem and exit with status 2;
no traceback reaches the terminal.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
import sys
from collections.abc import Sequence

from bot.config import ConfigError, Secrets, Settings, load_settings

log = logging.getLogger("cfbot")


class StartupError(Exception):
    """A problem to report in one line before exiting."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ConfigError, StartupError) as exc:
        print(f"cfbot: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cfbot", description="cf: the Candlefish chat-ops bot")
    sub = parser.add_subparsers(dest="cmd", required=True)

    run = sub.add_parser("run", help="connect to Slack and serve /cf")
    run.add_argument("--mode", choices=["socket", "http"], default="socket")
    run.add_argument("--port", type=int, default=None, help="HTTP port (http mode: Slack events; both: health)")
    run.add_argument("--host", default="0.0.0.0")
    run.add_argument("--config", default=None, help="YAML config (default: $CF_CONFIG)")
    run.set_defaults(func=_cmd_run)

    sb = sub.add_parser("sandbox", help="serve a simulated Candlefish Kubernetes cluster over HTTP")
    sb.add_argument("--port", type=int, default=6443)
    sb.add_argument("--host", default="127.0.0.1")
    sb.add_argument("--kubeconfig", default="./var/sandbox.kubeconfig")
    sb.add_argument("--scenario", default=None, help="fault scenario for fire drills")
    sb.add_argument("--pods", type=int, default=0, help="extra pods to seed (scale tests)")
    sb.add_argument("--start-seconds", type=float, default=2.0,
                    help="seconds a new pod takes to run and be ready (default 2; 0: at once)")
    sb.add_argument("--hpa-sync-seconds", type=float, default=15.0,
                    help="HPA controller period: a deployment scaled outside its HPA's bounds goes back "
                         "(default 15; 0: HPAs never act)")
    sb.set_defaults(func=_cmd_sandbox)

    demo = sub.add_parser("demo", help="the bot in a terminal, against the sandbox: no Slack, no cluster")
    demo.add_argument("--scenario", default=None)
    demo.add_argument("--as", dest="user", default="olivia", help="who you are at the start (default olivia)")
    demo.set_defaults(func=_cmd_demo)

    check = sub.add_parser("check-config", help="validate a config file and exit")
    check.add_argument("path", nargs="?", default=None)
    check.set_defaults(func=_cmd_check)

    from app import audit_cli

    audit_cli.register(sub)  # `cfbot audit verify|export`
    return parser


def _cmd_check(args: argparse.Namespace) -> int:
    settings = load_settings(args.path)
    print(f"ok: namespace={settings.namespace} incident_channel={settings.incident_channel}")
    return 0


def _cmd_sandbox(args: argparse.Namespace) -> int:
    from sandbox import serve_forever

    try:
        serve_forever(args.port, args.kubeconfig, scenario=args.scenario, extra_pods=args.pods, host=args.host,
                      start_seconds=args.start_seconds, hpa_sync_seconds=args.hpa_sync_seconds or None)
    except ValueError as exc:
        raise StartupError(str(exc)) from None
    except OSError as exc:
        raise StartupError(f"cannot serve on {args.host}:{args.port}: {exc.strerror}") from None
    return 0


# --- run ----------------------------------------------------------------------------------------


def _cmd_run(args: argparse.Namespace) -> int:
    from bot import logs

    settings = load_settings(args.config)
    secrets = Secrets.from_env()
    if secrets.slack_bot_token is None:
        raise StartupError("SLACK_BOT_TOKEN is not set (the bot token, xoxb-...).")
    if args.mode == "http" and secrets.slack_signing_secret is None:
        raise StartupError("SLACK_SIGNING_SECRET is not set; HTTP mode cannot verify Slack's requests without it.")
    if args.mode == "socket" and secrets.slack_app_token is None:
        raise StartupError("SLACK_APP_TOKEN is not set (an app-level token, xapp-..., with connections:write).")
    if args.mode == "http" and args.port is None:
        args.port = 3000
    logs.setup(json_logs=True)
    logs.register_secrets(*logs.configured_secrets(settings, secrets))  # masked in every log line
    asyncio.run(_serve(settings, secrets, args))
    return 0


async def _serve(settings: Settings, secrets: Secrets, args: argparse.Namespace) -> None:
    from aiohttp import web

    from bot.messenger import SlackMessenger, web_client
    from bot.services import build_services
    from bot.slack_app import group_resolver
    from incidents.assemble import build_runtime, build_slack_app, build_web_application
    from integrations.errors import IntegrationError

    assert secrets.slack_bot_token is not None
    client = web_client(secrets.slack_bot_token.get_secret_value(), secrets.slack_api_url)
    try:
        services = build_services(settings)
    except IntegrationError as exc:
        raise StartupError(str(exc)) from None
    try:
        runtime = await build_runtime(
            settings, database_url=secrets.database_url, messenger=SlackMessenger(client),
            services=services, resolve_group=group_resolver(client),
        )
    except Exception as exc:
        raise StartupError(f"cannot open the store ({_safe_url(secrets.database_url)}): {exc}") from None
    signing = secrets.slack_signing_secret.get_secret_value() if secrets.slack_signing_secret else "socket-mode"
    bolt = build_slack_app(runtime, client, signing)
    web_app = build_web_application(runtime, client, signing, bolt)
    await runtime.start()
    _freeze_startup_heap()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    socket_handler = None
    try:
        if args.port is not None:
            await web.TCPSite(runner, args.host, args.port).start()
            log.info("listening", extra={"host": args.host, "port": args.port, "mode": args.mode})
        if args.mode == "socket":
            from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

            assert secrets.slack_app_token is not None
            socket_handler = AsyncSocketModeHandler(bolt, secrets.slack_app_token.get_secret_value())
            await socket_handler.connect_async()
            log.info("connected to Slack in Socket Mode")
        await stop.wait()
        log.info("stopping: waiting for in-flight requests")
        await runtime.drain(timeout=20)
    finally:
        if socket_handler is not None:
            await socket_handler.close_async()
        await runner.cleanup()
        await runtime.close()


def _freeze_startup_heap() -> None:
    """Move everything built at start-up (the Kubernetes client's thousands of model classes, boto3's
    service models) out of the garbage collector's sight. Without this, each full collection walks
    them all, and acks that land during one wait tens of milliseconds (seen as p99 spikes)."""
    gc.collect()
    gc.freeze()


def _safe_url(url: str) -> str:
    """The store URL without its password."""
    from urllib.parse import urlparse

    parsed = urlparse(url)
    if parsed.password:
        return url.replace(f":{parsed.password}@", ":***@")
    return url


# --- demo ---------------------------------------------------------------------------------------


def _cmd_demo(args: argparse.Namespace) -> int:
    from bot import logs
    from demo.app import DEMO_USERS, run_demo

    logs.setup(json_logs=False, level=logging.ERROR)
    if args.user not in DEMO_USERS and args.user not in DEMO_USERS.values():
        raise StartupError(f"unknown demo user {args.user!r}; choose one of {', '.join(DEMO_USERS)}")
    try:
        asyncio.run(run_demo(args.user, args.scenario))
    except ValueError as exc:  # e.g. an unknown scenario name
        raise StartupError(str(exc)) from None
    return 0
