"""Block Kit rendering with `slack_sdk.models`, inside Slack's limits.

Slack refuses a message with more than 50 blocks, a section text over 3,000 characters, a header
over 150 or a button label over 75. Rather than fail, we truncate: a table or log keeps as many
lines as fit, a note says how many are shown, and the whole text is attached as a file in the
thread. `slack_sdk`'s model classes check the limits again when they serialise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)
from slack_sdk.models.blocks.basic_components import ConfirmObject

from base.text import clip, escape
from commands.reply import Fields, File, Note, Part, Reply, Table, Text

MAX_BLOCKS = 50
SECTION_CHARS = 3000
HEADER_CHARS = 150
FIELD_CHARS = 2000
BUTTON_CHARS = 75
FENCE = "```"
_LEVEL_ICON = {"ok": ":large_green_circle:", "warn": ":large_yellow_circle:", "error": ":red_circle:", "info": ""}


@dataclass
class Rendered:
    text: str
    blocks: list[dict[str, Any]]
    files: list[File] = field(default_factory=list)


@dataclass(frozen=True)
class Button:
    label: str
    action_id: str
    value: str
    style: str | None = None
    confirm: str | None = None


def header(text: str) -> HeaderBlock:
    return HeaderBlock(text=clip(text, HEADER_CHARS))


def section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=clip(text, SECTION_CHARS)))


def context(text: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=clip(text, SECTION_CHARS))])


def fields_block(pairs: list[tuple[str, str]]) -> list[SectionBlock]:
    blocks = []
    for i in range(0, len(pairs), 10):
        chunk = pairs[i : i + 10]
        blocks.append(
            SectionBlock(fields=[MarkdownTextObject(text=clip(f"*{k}*\n{v}", FIELD_CHARS)) for k, v in chunk])
        )
    return blocks


def actions(buttons: list[Button], block_id: str | None = None) -> ActionsBlock:
    elements = []
    for b in buttons[:25]:
        confirm = (
            ConfirmObject(title="Are you sure?", text=clip(b.confirm, 300), confirm="Yes", deny="Cancel")
            if b.confirm
            else None
        )
        elements.append(
            ButtonElement(
                text=clip(b.label, BUTTON_CHARS), action_id=b.action_id, value=b.value, style=b.style, confirm=confirm
            )
        )
    return ActionsBlock(elements=elements, block_id=block_id)


def preformatted(body: str, budget: int = SECTION_CHARS) -> tuple[str, int, int]:
    """Fit `body` into a code block of at most `budget` chars: (mrkdwn, lines shown, total lines)."""
    lines = body.splitlines() or [""]
    room = budget - 2 * len(FENCE) - 2
    shown: list[str] = []
    used = 0
    for line in lines:
        line = escape(line)
        cost = len(line) + 1
        if used + cost > room:
            if not shown:  # a single enormous line: cut it
                shown.append(clip(line, room))
            break
        shown.append(line)
        used += cost
    return f"{FENCE}\n" + "\n".join(shown) + f"\n{FENCE}", len(shown), len(lines)


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:40] or "output"


def render_reply(reply: Reply, preface: str | None = None) -> Rendered:
    """A Reply -> text fallback + blocks + files (the originals plus any truncated parts, whole)."""
    icon = _LEVEL_ICON.get(reply.level, "")
    blocks: list[Block] = []
    files = list(reply.files)
    title = f"{icon} {reply.title}".strip()
    blocks.append(section(f"*{title}*"))
    if preface:
        blocks.append(context(preface))
    for part in reply.parts:
        room = MAX_BLOCKS - len(blocks) - 2  # keep room for a truncation note and a footer
        if room <= 0:
            files.append(File(f"{_slug(reply.title)}-rest.txt", _remaining_text(reply, part), "The rest of the output"))
            blocks.append(context("Output truncated to fit one Slack message; the rest is attached in the thread."))
            break
        blocks.extend(_part_blocks(part, reply, files)[:room])
    return Rendered(text=clip(reply.title, 300), blocks=[b.to_dict() for b in blocks], files=files)


def _part_blocks(part: Part, reply: Reply, files: list[File]) -> list[Block]:
    if isinstance(part, Text):
        return [section(part.text)]
    if isinstance(part, Note):
        return [context(part.text)]
    if isinstance(part, Fields):
        return list(fields_block(list(part.pairs)))
    body, empty = (part.as_text(), part.empty) if isinstance(part, Table) else (part.text, part.empty)
    if not body.strip():
        return [context(empty)]
    mrkdwn, shown, total = preformatted(body)
    out: list[Block] = [section(mrkdwn)]
    if shown < total:
        name = f"{_slug(reply.title)}.txt"
        files.append(File(name, body.encode(), reply.title))
        unit = "rows" if isinstance(part, Table) else "lines"
        count = (shown - 1, total - 1) if isinstance(part, Table) else (shown, total)
        out.append(context(f"Showing {count[0]:,} of {count[1]:,} {unit}; the full output is attached as `{name}`."))
    return out


def _remaining_text(reply: Reply, start: Part) -> bytes:
    idx = reply.parts.index(start)
    chunks = []
    for part in reply.parts[idx:]:
        if isinstance(part, Table):
            chunks.append(part.as_text())
        elif isinstance(part, Fields):
            chunks.append("\n".join(f"{k}: {v}" for k, v in part.pairs))
        else:
            chunks.append(part.text)
    return "\n\n".join(chunks).encode()


def divider() -> DividerBlock:
    return DividerBlock()


def to_dicts(blocks: list[Block]) -> list[dict[str, Any]]:
    return [b.to_dict() for b in blocks]
