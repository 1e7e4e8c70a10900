"""Incidents, alerts, paging, the status page and the scheduled jobs."""
