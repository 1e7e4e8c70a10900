"""Prometheus metrics for `/metrics`: commands, acks, integrations, approvals, scheduled jobs.

Each Runtime owns a `Metrics` with its own CollectorRegistry, so several bots in one process (the
tests) never collide. Integrations report their call timings through `integrations.telemetry`.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from integrations import telemetry

ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 3.0)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.commands = Counter("cf_commands", "Commands handled, by command and outcome",
                                ["command", "outcome"], registry=self.registry)
        self.ack_seconds = Histogram("cf_ack_seconds", "Time from receiving a Slack request to acknowledging it",
                                     ["kind"], buckets=ACK_BUCKETS, registry=self.registry)
        self.integration_seconds = Histogram("cf_integration_call_seconds", "Integration call latency",
                                             ["system", "operation"], registry=self.registry)
        self.integration_errors = Counter("cf_integration_errors", "Integration call failures",
                                          ["system", "kind"], registry=self.registry)
        self.pending_approvals = Gauge("cf_pending_approvals", "Change requests waiting for approval",
                                       registry=self.registry)
        self.scheduler_runs = Counter("cf_scheduler_runs", "Scheduled job ticks, by job and outcome",
                                      ["job", "outcome"], registry=self.registry)
        self.slack_retries_skipped = Counter("cf_slack_duplicates", "Slack retries and replays not run twice",
                                             ["reason"], registry=self.registry)
        telemetry.add_observer(self.observe_integration)

    def observe_integration(self, system: str, operation: str, seconds: float, error: str | None) -> None:
        self.integration_seconds.labels(system, operation).observe(seconds)
        if error:
            self.integration_errors.labels(system, error).inc()

    def command(self, name: str, outcome: str) -> None:
        self.commands.labels(name, outcome).inc()

    def job(self, name: str, outcome: str) -> None:
        self.scheduler_runs.labels(name, outcome).inc()

    def render(self) -> bytes:
        return bytes(generate_latest(self.registry))

    def close(self) -> None:
        telemetry.remove_observer(self.observe_integration)
