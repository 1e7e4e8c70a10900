"""What a demo part is: the shared types of `cfbot demo`'s setups, apart from the module that runs them.

`demo.app` runs the parts in order; the parts that live in their own modules (`demo.aws`,
`demo.targets`, `demo.vendors`) import these types from here, never `demo.app`, so the imports point
one way: app -> parts modules -> parts.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from commands.base import Services


@dataclass
class DemoEnv:
    """What every part may use: the run's temporary folder, its exit stack, the sandbox scenario.

    `keep` says whether the folder outlives the run (`run_demo(keep_files=True)` or `/keep`).
    """

    workdir: Path
    stack: contextlib.AsyncExitStack
    scenario: str | None = None
    keep: bool = False


@dataclass
class DemoPart:
    """What a part contributes: services for the runtime, config merged into the demo's, one line to show."""

    services: Services = field(default_factory=lambda: Services())
    config: dict[str, Any] = field(default_factory=dict)
    note: str = ""


DemoSetup = Callable[[DemoEnv], Awaitable[DemoPart]]
