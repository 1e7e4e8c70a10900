"""Triage: the runbook's "Complete System Outage" and "Common Issues": status, pods, top, describe, events, crashloop.

Importing the package registers every command of the area (one module per part of it)."""

from commands.triage import describe, describe_hpa_ingress, diagnostics, status

AREA = "Triage"

__all__ = ["AREA", "describe", "describe_hpa_ingress", "diagnostics", "status"]
