"""Runbook procedures as commands. Importing `commands.catalog` registers every command module."""
