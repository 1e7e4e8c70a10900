"""What commands return: transport-neutral answers that `bot.render` turns into Block Kit.

Commands describe *what* to show (a title, a table, some lines, files to attach); the bot decides
*how* (Block Kit limits, truncation, uploading the full text when it does not fit, the console).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

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
class Probe:
    """One look at the live system after a change: is it done, and what to say about it.

    `progress` is the one-line state of things while waiting (`7/10 ready · 3 Pending: 0/3 nodes are
    available: 3 Insufficient cpu`); `problem` what is still wrong when time runs out (from conditions
    and events; the progress line when empty).
    """

    done: bool
    progress: str
    problem: str = ""


@dataclass(frozen=True)
class Verification:
    """How to tell that an applied change worked, in a form the store keeps.

    `check` names a verifier registered with `commands.verify.verifier`; `params` are its JSON
    arguments. Being data, not a closure, it survives a restart: any replica resumes watching from the
    store. `timeout` overrides `approvals.verify_timeout_seconds`; `look_further` is the command that
    shows more when the verdict is *Not verified*.
    """

    check: str
    params: dict[str, Any]
    timeout: float | None = None
    look_further: str = ""


@dataclass(frozen=True)
class Undo:
    """The known inverse of an applied change: the command (and its arguments) that puts back what was.

    It is requested like any change (`/cf undo REQUEST_ID`, or the Undo button), so it goes through the
    same roles and approval, and is re-validated against the live state when it runs.
    """

    command: str
    args: dict[str, Any]
    summary: str  # what it does, e.g. "scale deployment/graphql-api back to 3 replicas"


@dataclass(frozen=True)
class Outcome:
    """The result of an applied change: the state before and after, how to verify it, how to undo it."""

    before: str
    after: str
    detail: Reply | None = None
    verify: Verification | None = None
    undo: Undo | None = None


@dataclass
class Change:
    """A validated change request. `apply` performs it; it must be safe to call exactly once."""

    summary: str
    current: str
    desired: str
    apply: Callable[[], Awaitable[Outcome]]
    target: str = ""
    warnings: list[str] = field(default_factory=list)
    # What the approval is bound to: the part of `current` that must be unchanged when the approved request
    # runs (default: `current` itself). Leave out what moves by itself (readiness, ages), keep what a person
    # would change (the replica count). When it differs at execution, the request goes stale and nothing runs.
    basis: str | None = None
    # For a change without a safe inverse: why (shown as "No undo: …" on the request message).
    no_undo: str = ""
    # The request this change reverts (set by `undo`): linked both ways in the store and the threads.
    reverts: str | None = None
    # arguments the command resolved when asked (e.g. "the latest backup" -> its name): stored with the
    # request, so the approval runs exactly what the approver saw, not what "latest" means by then
    pinned: dict[str, str] = field(default_factory=dict)
