"""What `backup config` (commands/security/forensics.py) and `restore config` (commands/security/recovery.py) share.

A private module (the leading underscore keeps `commands.catalog` from treating it as a command
module), so the two command modules agree on where a backup is kept without importing each other.
"""

from __future__ import annotations

ARTEFACT = "config-backup"  # the artefact kind of a backup's YAML, kept per namespace (bot/artefacts.py)
# labels and fields the API server generates for a Job: a Job created with them is refused
JOB_GENERATED_LABELS = ("controller-uid", "batch.kubernetes.io/controller-uid", "job-name",
                        "batch.kubernetes.io/job-name")
