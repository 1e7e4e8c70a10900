"""Cache: the monitored Redis and ElastiCache.

Importing the package registers every command of the area (one module per part of it)."""

from commands.cache import elasticache, redis

AREA = "Cache"

__all__ = ["AREA", "elasticache", "redis"]
