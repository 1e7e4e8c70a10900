"""What commands return: transport-neutral answers that `bot.render` turns into Block Kit.

Commands describe *what* to show (a title, a table, some lines, files to attach); the bot decides
*how* (Block Kit limits, truncation, uploading the full text when it does not fit, the console).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

Level = Literal["ok", "warn", "error", "info"]


@dataclass(frozen=True)
class Text:
    """Slack mrkdwn text."""

    text: str


@dataclass(frozen=True)
class Fields:
    """Short label/value pairs shown two per row."""

    pairs: Sequence[tuple[str, str]]


@dataclass(frozen=True)
class Table:
    """A fixed-width table (kubectl style). Long tables are truncated and attached whole."""

    columns: Sequence[str]
    rows: Sequence[Sequence[str]]
    empty: str = "No resources found."

    def as_text(self) -> str:
        if not self.rows:
            return self.empty
        cells = [list(self.columns), *[[str(c) for c in r] for r in self.rows]]
        widths = [max(len(row[i]) for row in cells) for i in range(len(self.columns))]
        lines = ["   ".join(c.ljust(widths[i]) for i, c in enumerate(row)).rstrip() for row in cells]
        return "\n".join(lines)


@dataclass(frozen=True)
class Code:
    """Preformatted text (logs, YAML)."""

    text: str
    empty: str = "(no output)"


@dataclass(frozen=True)
class Note:
    """A small grey context line."""

    text: str


Part = Text | Fields | Table | Code | Note


@dataclass(frozen=True)
class File:
    """A file to upload to the reply's thread."""

    filename: str
    content: bytes
    title: str = ""


@dataclass
class Reply:
    title: str
    parts: list[Part] = field(default_factory=list)
    files: list[File] = field(default_factory=list)
    level: Level = "info"
    ephemeral: bool = False

    def add(self, *parts: Part) -> Reply:
        self.parts.extend(parts)
        return self


@dataclass(frozen=True)
class Outcome:
    """The result of an applied change, with the state before and after."""

    before: str
    after: str
    detail: Reply | None = None


@dataclass
class Change:
    """A validated change request. `apply` performs it; it must be safe to call exactly once."""

    summary: str
    current: str
    desired: str
    apply: Callable[[], Awaitable[Outcome]]
    target: str = ""
    warnings: list[str] = field(default_factory=list)
    # arguments the command resolved when asked (e.g. "the latest backup" -> its name): stored with the
    # request, so the approval runs exactly what the approver saw, not what "latest" means by then
    pinned: dict[str, str] = field(default_factory=dict)
