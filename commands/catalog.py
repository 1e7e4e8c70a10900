"""Imports every command module once, so the registry is complete (and duplicates fail here).

Modules are discovered: any module in this package that is not a framework module is a command
module. Adding a runbook area is adding a file.
"""

from __future__ import annotations

import importlib
import pkgutil

import commands
from commands.base import REGISTRY
from commands.checks import STATUS_CHECKS

FRAMEWORK = {"base", "args", "reply", "checks", "catalog", "kubefmt", "parts"}

MODULES = tuple(
    importlib.import_module(f"commands.{info.name}")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name)
    if info.name not in FRAMEWORK and not info.name.startswith("_")
)

__all__ = ["MODULES", "REGISTRY", "STATUS_CHECKS"]
