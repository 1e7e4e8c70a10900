"""The words every layer shares: incident severities, kinds, roles and statuses, and a Kubernetes key.

One copy, at the bottom of the house, so that a command's argument choices, the incident service's
checks, the declare modal and the paging commands cannot drift apart. Each name is what is stored and
what people type; labels and mappings that go with them sit beside them.
"""

from __future__ import annotations

SEVERITIES = ("sev1", "sev2", "sev3", "sev4")  # sev1 is the worst
SEVERITY_LABEL = {
    "sev1": "SEV1 — complete outage or data loss",
    "sev2": "SEV2 — major feature down",
    "sev3": "SEV3 — degraded, workaround exists",
    "sev4": "SEV4 — minor",
}
# PagerDuty's event severities, and the one that fits each incident severity.
PAGERDUTY_SEVERITIES = ("critical", "error", "warning", "info")
PAGERDUTY_SEVERITY = dict(zip(SEVERITIES, PAGERDUTY_SEVERITIES, strict=True))
# Statuspage's impacts, and the one that fits each incident severity.
STATUSPAGE_IMPACTS = ("none", "minor", "major", "critical")
STATUSPAGE_IMPACT = {"sev1": "critical", "sev2": "major", "sev3": "minor", "sev4": "none"}

# Incident kinds: each has a runbook checklist (incidents.playbooks); "other" is the general one.
KINDS = ("outage", "database", "memory", "websocket", "security", "ddos", "data-breach", "disaster-recovery",
         "other")
ROLES = ("commander", "comms", "scribe")

# An incident's statuses, in order; they are Statuspage's too, so one word means one thing on both.
RESOLVED = "resolved"
INCIDENT_STATUSES = ("investigating", "identified", "monitoring", RESOLVED)
OPEN_STATUSES = INCIDENT_STATUSES[:-1]  # what `incident update --status` may set; resolving is its own command

# The pod-template annotation `kubectl rollout restart` stamps (a new value rolls every pod).
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
# The Deployment annotation `kubectl rollout history` shows per revision (the ReplicaSet copies it).
CHANGE_CAUSE = "kubernetes.io/change-cause"
