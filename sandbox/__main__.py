"""`python -m sandbox --port P --kubeconfig PATH [--scenario NAME] [--pods N] [--start-seconds S]
[--hpa-sync-seconds S]`."""

from __future__ import annotations

import argparse

from .sandbox import HPA_SYNC_SECONDS, START_SECONDS, serve_forever
from .scenarios import SCENARIOS


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox",
                                     description="Serve a simulated Candlefish Kubernetes cluster.")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0 picks a free one)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--kubeconfig", required=True, help="where to write the kubeconfig")
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default=None, help="fault scenario to inject")
    parser.add_argument("--pods", type=int, default=0, help="extra load-generator pods for scale tests")
    parser.add_argument("--start-seconds", type=float, default=START_SECONDS,
                        help=f"seconds a new pod takes to run and be ready (default {START_SECONDS:g}; 0: at once)")
    parser.add_argument("--hpa-sync-seconds", type=float, default=HPA_SYNC_SECONDS,
                        help=f"HPA controller period: targets scaled outside their HPA's bounds go back "
                             f"(default {HPA_SYNC_SECONDS:g}; 0: HPAs never act)")
    args = parser.parse_args(argv)
    serve_forever(args.port, args.kubeconfig, scenario=args.scenario, extra_pods=args.pods, host=args.host,
                  start_seconds=args.start_seconds, hpa_sync_seconds=args.hpa_sync_seconds or None)


if __name__ == "__main__":
    main()
