"""The demo transport: a terminal that plays Slack.

`/cf ...` lines go to the same dispatcher Slack uses, and the same Block Kit comes back; this module
only draws it as text (the typing side, `/as USER`, `/in CHANNEL` and clicks, is `demo.session`).
Files are saved under the demo's directory.

Buttons are numbered per message, and a number never reaches a button it did not name when it was
shown. Each drawing of a message's buttons (when it is posted, and again each time it is updated
with buttons) gets the next message number M, never reused; its buttons are M.1, M.2, … . A bare
`1`, `2`, … clicks a button of the latest drawing — the last button line on the screen — and is
refused if new buttons were drawn after the prompt appeared (then type M.B). A number whose message
was updated since (approved, denied, expired: its buttons gone or redrawn under a new number) is
refused with a line saying so; nothing else is clicked.
"""

from __future__ import annotations

import html
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from base.text import guard
from bot.messenger import Blocks, DeliveryError, Origin
from commands.reply import File

CHANNEL = "C0INCIDENT"


# `:name:` emoji, not inside a word (so `doc:snapshot:4` stays whole); code is never touched
EMOJI = re.compile(r"(?<!\w):[a-z][a-z0-9_+-]*:(?!\w) ?")
CODE = re.compile(r"(```.*?```|`[^`\n]+`)", re.S)


@dataclass(frozen=True)
class ConsoleButton:
    label: str
    action_id: str
    value: str
    message_ts: str
    channel: str = CHANNEL


@dataclass(frozen=True)
class ButtonRow:
    """One drawing of one message's buttons: `number` is the M of M.B, `message` which message it was."""

    number: int
    message: str
    buttons: tuple[ConsoleButton, ...]


@dataclass
class ConsoleMessenger:
    """Prints messages; remembers every drawing of buttons and which one each message shows now.

    Messages to other channels than #incident-response (incident channels) are printed with the
    channel's name in front, and their buttons run in that channel when clicked.
    """

    out: TextIO = sys.stdout
    names: dict[str, str] = field(default_factory=dict)
    files_dir: Path | None = None
    rows: dict[int, ButtonRow] = field(default_factory=dict)  # every drawing, by message number
    live: dict[str, int] = field(default_factory=dict)  # message -> the number its buttons show now
    channels: dict[str, str] = field(default_factory=lambda: {CHANNEL: "incident-response"})
    home: dict[str, dict[str, Any]] = field(default_factory=dict)
    _ts: int = 0
    _replies: int = 0

    def _next_ts(self) -> str:
        self._ts += 1
        return f"1700000000.{self._ts:06d}"

    async def post(self, channel: str, text: str, blocks: Blocks | None = None, thread_ts: str | None = None) -> str:
        ts = self._next_ts()
        self._print(blocks, text, indent=self._where(channel) + ("    ↳ " if thread_ts else ""), ts=ts,
                    channel=channel)
        return ts

    async def update(self, channel: str, ts: str, text: str, blocks: Blocks | None = None) -> None:
        self.live.pop(_message(channel, ts), None)
        self._print(blocks, text, indent=self._where(channel) + "  ✎ ", ts=ts, compact=True, channel=channel)

    async def respond(self, origin: Origin, text: str, blocks: Blocks | None = None) -> None:
        self._print(blocks, text, indent="  (only you) ", channel=origin.channel or CHANNEL)

    async def upload(self, channel: str, thread_ts: str | None, file: File) -> None:
        lines = file.content.count(b"\n") + 1
        where = ""
        if self.files_dir is not None:
            self.files_dir.mkdir(parents=True, exist_ok=True)
            path = self.files_dir / Path(file.filename).name
            path.write_bytes(file.content)
            where = f" → saved to {path}"
        self.out.write(f"{self._where(channel)}    ↳ 📎 {file.filename} ({lines} lines, {len(file.content)} bytes)"
                       f"{where}\n")
        self.out.flush()

    # channels and views --------------------------------------------------------------------------

    def _where(self, channel: str) -> str:
        return "" if channel == CHANNEL else f"#{self.channels.get(channel, channel)} │ "

    def _say(self, line: str) -> None:
        self.out.write(f"  {line}\n")
        self.out.flush()

    async def create_channel(self, name: str, private: bool = False) -> str:
        if name in self.channels.values():
            raise DeliveryError("name_taken", "conversations.create")
        channel = f"C0INC{len(self.channels):04d}"
        self.channels[channel] = name
        self._say(f"+ channel #{name} created{' (private)' if private else ''}")
        return channel

    async def set_topic(self, channel: str, topic: str) -> None:
        self._say(f"#{self.channels.get(channel, channel)} topic: {self.mrkdwn(topic)}")

    async def set_purpose(self, channel: str, purpose: str) -> None:
        self._say(f"#{self.channels.get(channel, channel)} purpose: {self.mrkdwn(purpose)}")

    async def invite(self, channel: str, users: list[str]) -> None:
        who = ", ".join("@" + self.names.get(u, u) for u in users)
        self._say(f"#{self.channels.get(channel, channel)}: invited {who}")

    async def pin(self, channel: str, ts: str) -> None:
        self._say(f"📌 pinned in #{self.channels.get(channel, channel)}")

    async def open_view(self, trigger_id: str, view: dict[str, Any]) -> None:
        raise DeliveryError("not_supported_in_console", "views.open")

    async def publish_home(self, user: str, view: dict[str, Any]) -> None:
        self.home[user] = view

    async def group_members(self, group: str) -> list[str]:
        return []

    async def user_name(self, user_id: str) -> str:
        return self.names.get(user_id, user_id)

    # drawing -----------------------------------------------------------------------------------

    def _print(self, blocks: Blocks | None, text: str, indent: str = "", ts: str = "", compact: bool = False,
               channel: str = CHANNEL) -> None:
        lines = self.draw(blocks, text, ts, compact, channel)
        pad = " " * len(indent)
        for i, line in enumerate(lines):
            self.out.write(f"{indent if i == 0 else pad}{line}\n")
        self.out.flush()

    def draw(self, blocks: Blocks | None, text: str, ts: str = "", compact: bool = False,
             channel: str = CHANNEL) -> list[str]:
        if not blocks:
            return self.mrkdwn(text).splitlines() or [""]
        lines: list[str] = []
        buttons: list[ConsoleButton] = []
        last_row = -1
        for block in blocks:
            kind = block.get("type")
            if compact and kind not in ("header", "section", "actions"):
                continue
            if kind == "header":
                lines.append(f"== {block['text']['text']} ==")
            elif kind == "section":
                if compact and block.get("fields"):
                    continue
                if "text" in block:
                    lines.extend(self.mrkdwn(block["text"]["text"]).splitlines())
                for f in block.get("fields", []):
                    lines.append("  " + self.mrkdwn(f["text"]).replace("\n", ": ", 1))
            elif kind == "context":
                lines.extend("  · " + self.mrkdwn(e.get("text", "")) for e in block.get("elements", []))
            elif kind == "divider":
                lines.append("-" * 40)
            elif kind == "actions":
                lines.append(self._buttons(block, ts, channel, buttons))
                last_row = len(lines) - 1
        if buttons:
            number = self._remember(buttons, channel, ts)
            lines[last_row] += f"   (message {number}: type the number, or {number}.N once newer buttons show)"
        return lines

    def _buttons(self, block: dict[str, Any], ts: str, channel: str, buttons: list[ConsoleButton]) -> str:
        """One actions block as `[N] Label` choices; N counts on across the message's blocks."""
        shown = []
        for el in block.get("elements", []):
            if el.get("type") != "button":
                continue
            buttons.append(ConsoleButton(el["text"]["text"], el["action_id"], el.get("value", ""), ts, channel))
            shown.append(f"[{len(buttons)}] {el['text']['text']}")
        return "  " + "   ".join(shown)

    def _remember(self, buttons: list[ConsoleButton], channel: str, ts: str) -> int:
        """A new message number for this drawing; the message's earlier number (if any) is dead from now."""
        if ts:
            message = _message(channel, ts)
        else:  # an ephemeral reply: never updated, each one its own message
            self._replies += 1
            message = f"reply/{self._replies}"
        number = self.latest + 1
        self.rows[number] = ButtonRow(number, message, tuple(buttons))
        self.live[message] = number
        return number

    @property
    def latest(self) -> int:
        """The number of the last drawing of buttons (0: none yet) — what a bare `1`, `2`, … clicks."""
        return max(self.rows, default=0)

    def is_live(self, number: int) -> bool:
        row = self.rows.get(number)
        return row is not None and self.live.get(row.message) == number

    def showing(self, limit: int = 3) -> str:
        """The newest buttons still showing, as `M.B Label` choices, for a refusal's last words."""
        numbers = sorted((n for n in self.live.values()), reverse=True)[:limit]
        if not numbers:
            return "no buttons are showing"
        return "showing: " + "; ".join(
            ", ".join(f"{n}.{i} {b.label}" for i, b in enumerate(self.rows[n].buttons, start=1)) for n in numbers
        )

    def mrkdwn(self, text: str) -> str:
        text = guard(text)  # what Slack would receive: outside text's `<...>` is already harmless here
        text = "".join(part if i % 2 else EMOJI.sub("", part) for i, part in enumerate(CODE.split(text)))
        text = text.replace("```\n", "").replace("\n```", "").replace("```", "")
        text = re.sub(r"<@([UW][A-Z0-9]+)>", lambda m: "@" + self.names.get(m.group(1), m.group(1)), text)
        text = re.sub(r"<!date\^\d+\^[^|]*\|([^>]*)>", r"\1", text)
        text = re.sub(r"<(https?://[^|>]+)\|([^>]+)>", r"\2 (\1)", text)
        text = re.sub(r"<#([CG][A-Z0-9]+)\|([^>]*)>", lambda m: "#" + (m.group(2) or self.channels.get(m.group(1), "")),
                      text)
        text = re.sub(r"<#([CG][A-Z0-9]+)>", lambda m: "#" + self.channels.get(m.group(1), m.group(1)), text)
        return html.unescape(text)


def _message(channel: str, ts: str) -> str:
    return f"{channel}/{ts}"
