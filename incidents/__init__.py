"""Incidents, alerts, paging and the status page, on top of the platform's seams (`bot`)."""
