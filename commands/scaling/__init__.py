"""Scaling: scale, restart, rollouts and autoscalers, node group scaling.

Importing the package registers every command of the area (one module per part of it)."""

from commands.scaling import rollouts, scale

AREA = "Scaling"

__all__ = ["AREA", "rollouts", "scale"]
