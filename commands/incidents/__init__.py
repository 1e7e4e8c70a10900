"""Incidents: incidents, the status page and paging (the work is the incidents service's).

Importing the package registers every command of the area (one module per part of it)."""

from commands.incidents import incidents, paging

AREA = "Incidents"

__all__ = ["AREA", "incidents", "paging"]
