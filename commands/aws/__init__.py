"""AWS: EKS, the load balancer, S3, AWS Health, node terminate, disaster-recovery checks.

Importing the package registers every command of the area (one module per part of it)."""

from commands.aws import dr, infra

AREA = "AWS"

__all__ = ["AREA", "dr", "infra"]
