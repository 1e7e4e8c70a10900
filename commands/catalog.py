"""Imports every command module once, so the registry is complete (and duplicates fail here)."""

from __future__ import annotations

from commands import diagnostics, meta, scaling
from commands.base import REGISTRY

MODULES = (meta, diagnostics, scaling)

__all__ = ["MODULES", "REGISTRY"]
