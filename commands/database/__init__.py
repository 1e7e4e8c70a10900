"""Database: the monitored PostgreSQL (reads and changes) and RDS (status, snapshots, restore).

Importing the package registers every command of the area (one module per part of it)."""

from commands.database import postgres, postgres_changes, rds, rds_restore

AREA = "Database"

__all__ = ["AREA", "postgres", "postgres_changes", "rds", "rds_restore"]
