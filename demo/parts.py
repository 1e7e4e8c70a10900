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
from typing import TYPE_CHECKING, Any

from commands.base import Services

if TYPE_CHECKING:
    from bot.runtime import Runtime


@dataclass
class DemoEnv:
    """What every part may use: the run's temporary folder, its exit stack, the sandbox scenario.

    `keep` says whether the folder outlives the run (`run_demo(keep_files=True)` or `/keep`).
    `scrape_configs` collects the Prometheus jobs of what the parts serve (`demo.monitoring` scrapes them).
    """

    workdir: Path
    stack: contextlib.AsyncExitStack
    scenario: str | None = None
    keep: bool = False
    scrape_configs: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class DemoPart:
    """What a part contributes: services for the runtime, config merged into the demo's, one line to show.

    `note` is shown in the interactive banner; `hint` is said at start even when the input is piped (what
    the part is missing and how to get it). `attach` is given the runtime once it runs (a part that serves
    one of the bot's endpoints hands requests to it from then on).
    """

    services: Services = field(default_factory=lambda: Services())
    config: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    hint: str = ""
    attach: Callable[[Runtime], None] | None = None


DemoSetup = Callable[[DemoEnv], Awaitable[DemoPart]]
