"""The demo console's input side: who is typing, in which channel, and which button a number clicks.

`ConsoleMessenger` (`demo.console`) draws messages and remembers each drawing of buttons under a
message number; this session reads lines and resolves `N` and `M.B` against that memory, refusing a
number that no longer names a button on screen (see `demo.console` for the numbering).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from bot.messenger import Origin
from demo.console import CHANNEL, ConsoleButton, ConsoleMessenger


@dataclass
class ConsoleSession:
    """Reads lines, plays the acting user, clicks numbered buttons.

    `seen` is the latest drawing of buttons when the prompt appeared (`mark_seen`): a bare number
    is refused once newer buttons have been drawn, since the person typing has not seen them.
    `keep`, when given, marks the run's folder to be kept at exit and returns its path (`/keep`).
    """

    messenger: ConsoleMessenger
    handle: Callable[[Origin, str], Any]
    approve: Callable[[str, Origin], Any]
    deny: Callable[[str, Origin], Any]
    users: dict[str, str]  # name -> user id
    user: str
    out: TextIO = sys.stdout
    channel: str = CHANNEL  # `/in NAME` moves the session into an incident channel
    keep: Callable[[], Path] | None = None
    seen: int = 0
    again: Callable[[str, Origin], Any] | None = None  # Request again on a stale request

    def mark_seen(self) -> None:
        """The prompt is shown now: a bare number names the buttons drawn up to here."""
        self.seen = self.messenger.latest

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
        if text == "/keep":
            self._keep()
            return True
        if re.fullmatch(r"\d+(\.\d+)?", text):
            await self._press(text)
            return True
        if text.startswith("/cf"):
            await self.handle(self.origin(), self._mentions(text[3:].strip()))
            return True
        self.out.write("  Type `/cf COMMAND` (try `/cf help`), `/as USER`, `/in CHANNEL`, a button number (1, or 4.1 "
                       "for message 4's first), /keep, or /quit.\n")
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

    def _keep(self) -> None:
        if self.keep is None:
            self.out.write("  This console has no folder to keep.\n")
            return
        self.out.write(f"  The demo's folder {self.keep()} will be kept when you leave.\n")

    async def _press(self, text: str) -> None:
        """`N`: button N of the latest drawing, if it is the one you saw; `M.B`: button B of message M."""
        first, _, second = text.partition(".")
        if second:
            number, index = int(first), int(second)
        else:
            number, index = self.messenger.latest, int(first)
            if number == 0:
                self._refuse("no buttons have been shown yet.")
                return
            if number != self.seen:
                self._refuse(f"new buttons (message {number}) appeared after your prompt; type {number}.{index} "
                             f"if you mean its [{index}], or MESSAGE.BUTTON for another message")
                return
        button = self._button(number, index)
        if button is not None:
            await self._click(button, f"{number}.{index}")

    def _button(self, number: int, index: int) -> ConsoleButton | None:
        """The button `number.index` names if its message still shows it; else None, said in one line."""
        messenger = self.messenger
        row = messenger.rows.get(number)
        if row is None:
            self._refuse(f"there is no message {number} with buttons")
        elif not messenger.is_live(number):
            now = messenger.live.get(row.message)
            self._refuse(f"message {number} has changed since (approved, denied, expired or done); "
                         + (f"it shows new buttons as message {now}" if now else "it shows no buttons now"))
        elif not 1 <= index <= len(row.buttons):
            self._refuse(f"message {number} has buttons {number}.1 to {number}.{len(row.buttons)}")
        else:
            return row.buttons[index - 1]
        return None

    def _refuse(self, why: str) -> None:
        self.out.write(f"  Nothing clicked: {why.rstrip('.')}. ({self.messenger.showing()})\n")

    async def _click(self, button: ConsoleButton, address: str) -> None:
        origin = Origin(user=self.user, channel=button.channel, message_ts=button.message_ts)
        self.out.write(f"  ({self._name()} clicked {button.label} — {address})\n")
        if button.action_id == "cf_approve":
            await self.approve(button.value, origin)
        elif button.action_id == "cf_deny":
            await self.deny(button.value, origin)
        elif button.action_id == "cf_undo":
            await self.handle(origin, f"undo {button.value}")
        elif button.action_id == "cf_again" and self.again is not None:
            await self.again(button.value, origin)
        elif button.action_id.startswith("cf_run"):
            await self.handle(origin, button.value)

    async def run(self, stream: TextIO, interactive: bool) -> None:
        while True:
            self.mark_seen()
            if interactive:
                self.out.write(self.prompt())
                self.out.flush()
            raw = await _readline(stream)
            if not raw:
                break
            if not interactive:
                self.out.write(f"{self.prompt()}{raw.rstrip()}\n")
            if not await self.line(raw):
                break


async def _readline(stream: TextIO) -> str:
    """`stream.readline()` in a daemon thread, so a Ctrl-C at the prompt ends the demo at once.

    (`asyncio.to_thread` would leave the read in the loop's executor, which `asyncio.run` waits for on
    the way out: the process would hang until another line came in.)
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[str] = loop.create_future()

    def settle(line: str | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(line or "")

    def read() -> None:
        try:
            line, error = stream.readline(), None
        except (OSError, ValueError) as exc:
            line, error = None, exc
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits for this line
            loop.call_soon_threadsafe(settle, line, error)

    threading.Thread(target=read, name="cf-demo-stdin", daemon=True).start()
    return await future
