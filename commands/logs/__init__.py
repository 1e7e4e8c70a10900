"""Logs & Metrics: logs across an app's pods, metrics scraping, the WebSocket probe, heap profiles.

Importing the package registers every command of the area (one module per part of it)."""

from commands.logs import logs, metrics, profiling

AREA = "Logs & Metrics"

__all__ = ["AREA", "logs", "metrics", "profiling"]
