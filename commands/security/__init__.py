"""Security: secrets, evidence, backups and restore, isolation, IP blocks, secret rotation, the WAF limit.

Importing the package registers every command of the area (one module per part of it)."""

from commands.security import forensics, recovery, secrets_rotation, security, waf

AREA = "Security"

__all__ = ["AREA", "forensics", "recovery", "secrets_rotation", "security", "waf"]
