"""Logs & Metrics: logs across an app's pods, metrics scraping, the WebSocket probe, heap profiles, graphs.

Importing the package registers every command of the area (one module per part of it)."""

from commands.logs import graph, logs, metrics, profiling

AREA = "Logs & Metrics"

__all__ = ["AREA", "graph", "logs", "metrics", "profiling"]
