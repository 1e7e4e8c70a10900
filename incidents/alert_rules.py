"""The runbook's "Alert Response" sections as rules: which alert, which procedure, which buttons.

A rule matches an Alertmanager `alertname` (compared without case or punctuation, so
`KubePodCrashLooping` and `kube_pod_crash_looping` are the same), or a name mapped to it in config
`alerts.aliases`. Each step is a `/cf` command line; `{pod}` and `{node}` are filled from the alert's
labels, and a step whose label is missing falls back to its label-free form or is shown as text
only. A step becomes a button only when its command exists in this bot, so a procedure still reads
whole while a command suite is being rolled out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    label: str  # the button's label
    command: str  # a /cf command line, may hold {pod} or {node}
    fallback: str | None = None  # used when a placeholder cannot be filled


@dataclass(frozen=True)
class AlertRule:
    key: str
    title: str
    section: str  # where it is in the runbook
    kind: str  # the incident type it declares when config asks for that
    names: tuple[str, ...]
    steps: tuple[Step, ...]


RULES: tuple[AlertRule, ...] = (
    AlertRule("graphql-high-error-rate", "GraphQL API: high error rate (>5%)",
              "Alert Response > GraphQL API Alerts > High Error Rate", "outage",
              ("GraphQLHighErrorRate", "GraphQLAPIHighErrorRate", "GraphqlErrorRateHigh", "HighErrorRate"),
              (Step("Logs with ERROR", "logs graphql-api --since 10m --grep ERROR"),
               Step("DB pool metrics", "metrics graphql-api db_connections"),
               Step("Scale graphql-api to 5", "scale graphql-api 5"))),
    AlertRule("graphql-high-latency", "GraphQL API: high latency (>2s p95)",
              "Alert Response > GraphQL API Alerts > High Latency", "outage",
              ("GraphQLHighLatency", "GraphQLAPIHighLatency", "HighLatency", "APIHighLatency"),
              (Step("Slow queries", "db slow"),
               Step("Cache hit rate", "redis hitrate"),
               Step("Triage", "status"))),
    AlertRule("db-high-connections", "Database: high connection count (>160)",
              "Alert Response > Database Alerts > High Connection Count", "database",
              ("DatabaseHighConnections", "PostgresHighConnections", "PostgresTooManyConnections",
               "DBHighConnectionCount", "HighConnectionCount", "PostgresqlTooManyConnections"),
              (Step("Connections", "db connections"),
               Step("Long-running queries", "db long-running"),
               Step("Kill long-running", "db kill-long"))),
    AlertRule("db-slow-queries", "Database: slow queries detected",
              "Alert Response > Database Alerts > Slow Queries Detected", "database",
              ("SlowQueriesDetected", "DatabaseSlowQueries", "PostgresSlowQueries", "SlowQueries"),
              (Step("Slow queries (>1s)", "db slow --min-ms 1000"),
               Step("Missing indexes", "db index-candidates"))),
    AlertRule("redis-high-memory", "Redis: high memory usage (>90%)",
              "Alert Response > Redis Alerts > High Memory Usage", "memory",
              ("RedisHighMemory", "RedisMemoryHigh", "RedisHighMemoryUsage", "RedisOutOfMemory"),
              (Step("Memory", "redis memory"),
               Step("Big keys", "redis bigkeys"),
               Step("Reclaim expired keys", "redis expire-scan"))),
    AlertRule("pod-crash-looping", "Kubernetes: pod crash looping",
              "Alert Response > Kubernetes Alerts > Pod Crash Looping", "outage",
              ("KubePodCrashLooping", "PodCrashLooping", "PodCrashLoopBackOff"),
              (Step("Crash loop report", "crashloop {pod}", fallback="crashloop"),
               Step("Previous logs", "logs {pod} --previous"),
               Step("Describe pod", "describe pod {pod}"))),
    AlertRule("node-high-usage", "Kubernetes: node high CPU/memory",
              "Alert Response > Kubernetes Alerts > Node High CPU/Memory", "memory",
              ("NodeHighCPU", "NodeHighMemory", "NodeHighCPUUsage", "NodeHighMemoryUsage", "NodeCPUHigh",
               "NodeMemoryHigh", "KubeNodeHighCPU", "KubeNodeHighMemory"),
              (Step("Describe node", "describe node {node}", fallback="nodes"),
               Step("Top pods", "top pods --sort cpu"),
               Step("Cordon node", "node cordon {node}"),
               Step("Drain node", "node drain {node}"))),
)

GENERIC = AlertRule("generic", "Alert", "Alert Response", "other", (),
                    (Step("Triage", "status"), Step("Pods", "pods"), Step("Warning events", "events --warnings")))

_LABEL_VALUE = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


_BY_NAME = {_norm(n): r for r in RULES for n in (r.key, *r.names)}
_BY_KEY = {r.key: r for r in RULES}


def rule_for(alertname: str, aliases: Mapping[str, str] | None = None) -> AlertRule:
    """The rule for an alert name; the generic triage rule when none matches."""
    target = (aliases or {}).get(alertname)
    if target is not None:
        return _BY_KEY.get(target) or _BY_NAME.get(_norm(target)) or GENERIC
    return _BY_NAME.get(_norm(alertname), GENERIC)


def label_values(labels: Mapping[str, str]) -> dict[str, str]:
    """Placeholder values taken from labels, kept only when they are plain Kubernetes names."""
    node = labels.get("node") or labels.get("kubernetes_node") or labels.get("instance", "").split(":")[0]
    candidates = {"pod": labels.get("pod", ""), "node": node}
    return {k: v for k, v in candidates.items() if v and len(v) <= 253 and _LABEL_VALUE.fullmatch(v)}


def command_line(step: Step, values: Mapping[str, str]) -> str | None:
    """The step's command with placeholders filled, its fallback, or None when neither works."""
    for template in (step.command, step.fallback):
        if template is None:
            continue
        names = _PLACEHOLDER.findall(template)
        if all(n in values for n in names):
            return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)
    return None
