"""The demo transport: a terminal that plays Slack.

`/cf ...` lines go to the same dispatcher Slack uses, and the same Block Kit comes back; this module
only draws it as text. Buttons are numbered (type the number to click), `/as USER` switches who is
typing so a second person can approve, files are saved under the demo's directory. Input can be
piped: each line is handled completely (including an approved change) before the next is read.
"""

from __future__ import annotations

import asyncio
import html
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from base.text import guard
from bot.messenger import Blocks, DeliveryError, Origin
from commands.reply import File

CHANNEL = "C0INCIDENT"


@dataclass(frozen=True)
class ConsoleButton:
    label: str
    action_id: str
    value: str
    message_ts: str
    channel: str = CHANNEL


@dataclass
class ConsoleMessenger:
    """Prints messages; remembers the buttons of messages that still show them.

    Messages to other channels than #incident-response (incident channels) are printed with the
    channel's name in front, and their buttons run in that channel when clicked.
    """

    out: TextIO = sys.stdout
    names: dict[str, str] = field(default_factory=dict)
    files_dir: Path | None = None
    buttons: dict[str, list[ConsoleButton]] = field(default_factory=dict)
    channels: dict[str, str] = field(default_factory=lambda: {CHANNEL: "incident-response"})
    home: dict[str, dict[str, Any]] = field(default_factory=dict)
    _ts: int = 0

    def _next_ts(self) -> str:
        self._ts += 1
        return f"1700000000.{self._ts:06d}"

    async def post(self, channel: str, text: str, blocks: Blocks | None = None, thread_ts: str | None = None) -> str:
        ts = self._next_ts()
        self._print(blocks, text, indent=self._where(channel) + ("    ↳ " if thread_ts else ""), ts=ts,
                    channel=channel)
        return ts

    async def update(self, channel: str, ts: str, text: str, blocks: Blocks | None = None) -> None:
        self.buttons.pop(ts, None)
        self._print(blocks, text, indent=self._where(channel) + "  ✎ ", ts=ts, compact=True, channel=channel)

    async def respond(self, origin: Origin, text: str, blocks: Blocks | None = None) -> None:
        self._print(blocks, text, indent="  (only you) ")

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
                lines.append(self._buttons(block, ts, channel))
        return lines

    def _buttons(self, block: dict[str, Any], ts: str, channel: str = CHANNEL) -> str:
        shown = []
        for el in block.get("elements", []):
            if el.get("type") != "button":
                continue
            self.buttons.setdefault(ts, []).append(
                ConsoleButton(el["text"]["text"], el["action_id"], el.get("value", ""), ts, channel)
            )
            shown.append(f"[{self.number_of(ts, el['action_id'])}] {el['text']['text']}")
        return "  " + "   ".join(shown) + "   (type the number to click)"

    def visible_buttons(self) -> list[ConsoleButton]:
        return [b for bs in self.buttons.values() for b in bs]

    def number_of(self, ts: str, action_id: str) -> int:
        for i, b in enumerate(self.visible_buttons(), start=1):
            if b.message_ts == ts and b.action_id == action_id:
                return i
        return 0

    def mrkdwn(self, text: str) -> str:
        text = guard(text)  # what Slack would receive: outside text's `<...>` is already harmless here
        text = text.replace("```\n", "").replace("\n```", "").replace("```", "")
        text = re.sub(r"<@([UW][A-Z0-9]+)>", lambda m: "@" + self.names.get(m.group(1), m.group(1)), text)
        text = re.sub(r"<!date\^\d+\^[^|]*\|([^>]*)>", r"\1", text)
        text = re.sub(r"<(https?://[^|>]+)\|([^>]+)>", r"\2 (\1)", text)
        text = re.sub(r"<#([CG][A-Z0-9]+)\|([^>]*)>", lambda m: "#" + (m.group(2) or self.channels.get(m.group(1), "")),
                      text)
        text = re.sub(r"<#([CG][A-Z0-9]+)>", lambda m: "#" + self.channels.get(m.group(1), m.group(1)), text)
        text = re.sub(r":[a-z_]+: ?", "", text)
        return html.unescape(text)


@dataclass
class ConsoleSession:
    """Reads lines, plays the acting user, clicks numbered buttons."""

    messenger: ConsoleMessenger
    handle: Callable[[Origin, str], Any]
    approve: Callable[[str, Origin], Any]
    deny: Callable[[str, Origin], Any]
    users: dict[str, str]  # name -> user id
    user: str
    out: TextIO = sys.stdout
    channel: str = CHANNEL  # `/in NAME` moves the session into an incident channel

    def origin(self) -> Origin:
        return Origin(user=self.user, channel=self.channel)

    def _name(self) -> str:
        return next((n for n, uid in self.users.items() if uid == self.user), self.user)

    def prompt(self) -> str:
        where = "" if self.channel == CHANNEL else f" #{self.messenger.channels.get(self.channel, self.channel)}"
        return f"{self._name()}{where}> "

    async def line(self, raw: str) -> bool:
        """Handle one input line; False means quit."""
        text = raw.strip()
        if not text or text.startswith("#"):
            return True
        if text in ("/quit", "/exit", "exit", "quit"):
            return False
        if text.startswith("/as"):
            self._switch(text[3:].strip())
            return True
        if text == "/in" or text.startswith("/in "):
            self._enter(text[3:].strip().lstrip("#"))
            return True
        if text.isdigit():
            await self._click(int(text))
            return True
        if text.startswith("/cf"):
            await self.handle(self.origin(), self._mentions(text[3:].strip()))
            return True
        self.out.write("  Type `/cf COMMAND` (try `/cf help`), `/as USER`, `/in CHANNEL`, a button number, or /quit.\n")
        return True

    def _switch(self, who: str) -> None:
        uid = self.users.get(who.lstrip("@").lower()) or (who if who in self.users.values() else None)
        if uid is None:
            known = ", ".join(f"{n} ({u})" for n, u in self.users.items())
            self.out.write(f"  Unknown user `{who}`. Demo users: {known}\n")
            return
        self.user = uid
        self.out.write(f"  You are now {self._name()} ({uid}).\n")

    def _enter(self, name: str) -> None:
        """`/in` alone: back to #incident-response; else the newest channel whose name contains NAME."""
        if not name:
            self.channel = CHANNEL
        else:
            found = [cid for cid, n in self.messenger.channels.items() if name in n]
            if not found:
                self.out.write(f"  No channel matches `{name}`. Channels: "
                               f"{', '.join('#' + n for n in self.messenger.channels.values())}\n")
                return
            self.channel = found[-1]
        self.out.write(f"  You are in #{self.messenger.channels.get(self.channel, self.channel)}.\n")

    def _mentions(self, text: str) -> str:
        """`@arjun` -> `<@U0APPROVER|arjun>`, as Slack escapes a mention in a slash command."""
        return re.sub(r"(?<![<\w])@([a-z][\w.-]*)",
                      lambda m: f"<@{self.users[m.group(1).lower()]}|{m.group(1)}>"
                      if m.group(1).lower() in self.users else m.group(0), text)

    async def _click(self, number: int) -> None:
        buttons = self.messenger.visible_buttons()
        if not 1 <= number <= len(buttons):
            self.out.write("  No button with that number is showing.\n")
            return
        button = buttons[number - 1]
        origin = Origin(user=self.user, channel=button.channel, message_ts=button.message_ts)
        self.out.write(f"  ({self._name()} clicked {button.label})\n")
        if button.action_id == "cf_approve":
            await self.approve(button.value, origin)
        elif button.action_id == "cf_deny":
            await self.deny(button.value, origin)
        elif button.action_id.startswith("cf_run"):
            await self.handle(origin, button.value)

    async def run(self, stream: TextIO, interactive: bool) -> None:
        while True:
            if interactive:
                self.out.write(self.prompt())
                self.out.flush()
            raw = await asyncio.to_thread(stream.readline)
            if not raw:
                break
            if not interactive:
                self.out.write(f"{self.prompt()}{raw.rstrip()}\n")
            if not await self.line(raw):
                break
