"""Helpers shared by the command modules (formatting, argument types, Kubernetes and AWS views).

No command is declared here: `commands.catalog` imports the area modules only."""
