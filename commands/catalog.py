"""Imports every command module once, so the registry is complete (and duplicates fail here).

The area modules are named by `commands.base.AREAS` (one module or package per `/cf help` area, in
help order); importing one registers its commands. Helpers live in `commands.support`, the framework
beside this file; neither is imported here, and no list of exclusions is kept.
"""

from __future__ import annotations

import importlib

from commands.base import AREAS, REGISTRY
from commands.checks import STATUS_CHECKS

MODULES = tuple(importlib.import_module(f"commands.{module}") for module in AREAS.values())

__all__ = ["MODULES", "REGISTRY", "STATUS_CHECKS"]
