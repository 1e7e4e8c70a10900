"""The demo console: a typed button number clicks only the button it named when it was shown; `:emoji:`
is stripped only outside code; each `cfbot demo` run removes its temporary folder on the way out."""

from __future__ import annotations

import asyncio
import io
import os
import signal
from pathlib import Path
from typing import Any

from bot.messenger import Origin
from demo.console import ConsoleMessenger
from demo.session import ConsoleSession
from tests.platform.test_cli import CFBOT

USERS = {"olivia": "U0OPERATOR", "arjun": "U0APPROVER"}


def request(rid: str) -> list[dict[str, Any]]:
    """A change request's blocks as the approvals post them: a summary and Approve/Deny."""
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*Request {rid}*"}},
        {"type": "actions", "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": "Approve"}, "action_id": "cf_approve",
             "value": rid},
            {"type": "button", "text": {"type": "plain_text", "text": "Deny"}, "action_id": "cf_deny", "value": rid},
        ]},
    ]


class Console:
    """A messenger and a session whose clicks are recorded as (what, value) pairs."""

    def __init__(self) -> None:
        self.out = io.StringIO()
        self.clicks: list[tuple[str, str]] = []
        self.messenger = ConsoleMessenger(out=self.out)

        async def handle(origin: Origin, text: str) -> None:
            self.clicks.append(("run", text))

        async def approve(rid: str, origin: Origin) -> None:
            self.clicks.append(("approve", rid))

        async def deny(rid: str, origin: Origin) -> None:
            self.clicks.append(("deny", rid))

        self.session = ConsoleSession(messenger=self.messenger, handle=handle, approve=approve, deny=deny,
                                      users=USERS, user="U0APPROVER", out=self.out)

    async def post(self, rid: str) -> str:
        return await self.messenger.post("C0INCIDENT", f"request {rid}", request(rid))

    async def type(self, line: str) -> str:
        """The prompt appears (what is on screen is seen), then the line is typed; returns what it printed."""
        self.session.mark_seen()
        start = len(self.out.getvalue())
        await self.session.line(line)
        return self.out.getvalue()[start:]


async def test_a_bare_number_clicks_the_newest_messages_button_not_an_older_ones() -> None:
    console = Console()
    await console.post("older")
    await console.post("newer")
    assert "[1] Approve   [2] Deny   (message 2:" in console.out.getvalue()
    await console.type("1")
    assert console.clicks == [("approve", "newer")]


async def test_a_number_whose_message_was_updated_is_refused_and_clicks_nothing_else() -> None:
    console = Console()
    await console.post("older")
    ts = await console.post("newer")
    await console.type("2")  # deny the newer request
    await console.messenger.update("C0INCIDENT", ts, "denied", [
        {"type": "section", "text": {"type": "mrkdwn", "text": "Denied by @arjun"}}])
    for stale in ("1", "2.1", "2.2"):
        said = await console.type(stale)
        assert "Nothing clicked: message 2 has changed since" in said and "it shows no buttons now" in said
        assert "showing: 1.1 Approve, 1.2 Deny" in said
    assert console.clicks == [("deny", "newer")]
    await console.type("1.1")
    assert console.clicks == [("deny", "newer"), ("approve", "older")]


async def test_a_message_redrawn_with_new_buttons_gets_a_new_number() -> None:
    console = Console()
    ts = await console.post("r1")
    await console.messenger.update("C0INCIDENT", ts, "done", [
        {"type": "section", "text": {"type": "mrkdwn", "text": "Done"}},
        {"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Undo"},
                                          "action_id": "cf_run_undo", "value": "scale graphql-api 3"}]},
    ])
    said = await console.type("1.1")  # was Approve when it was drawn; now the same place is Undo
    assert "Nothing clicked: message 1 has changed since" in said and "as message 2" in said
    assert console.clicks == []
    await console.type("1")
    assert console.clicks == [("run", "scale graphql-api 3")]


async def test_buttons_drawn_after_the_prompt_make_a_bare_number_ask_for_message_dot_button() -> None:
    console = Console()
    await console.post("seen")
    console.session.mark_seen()  # the prompt appears with request `seen` as the last buttons
    await console.post("unseen")  # e.g. an alert posted while the person types
    await console.session.line("1")
    assert console.clicks == []
    assert "Nothing clicked: new buttons (message 2) appeared after your prompt; type 2.1" in console.out.getvalue()
    await console.type("1.1")
    assert console.clicks == [("approve", "seen")]


async def test_out_of_range_and_unknown_numbers_are_refused() -> None:
    console = Console()
    said = await console.type("1")
    assert "Nothing clicked: no buttons have been shown yet" in said
    await console.post("r1")
    assert "message 1 has buttons 1.1 to 1.2" in await console.type("3")
    assert "there is no message 7 with buttons" in await console.type("7.1")
    assert console.clicks == []


def test_emoji_are_stripped_outside_code_only() -> None:
    messenger = ConsoleMessenger()
    text = (":warning: key `doc:snapshot:4` is big :memory:\n```\nGET doc:x:1 :sunny:\n```\n"
            "prose key doc:snapshot:4 and 10:30:00 stay")
    assert messenger.mrkdwn(text).splitlines() == [
        "key `doc:snapshot:4` is big ",
        "GET doc:x:1 :sunny:",
        "prose key doc:snapshot:4 and 10:30:00 stay",
    ]


# --- the run's temporary folder -------------------------------------------------------------------------


def leftovers(tmp: Path) -> list[str]:
    return sorted(p.name for p in tmp.glob("cf-demo-*"))


async def demo(tmp: Path, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        CFBOT, "demo", *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env={**os.environ, "TMPDIR": str(tmp)},
    )


async def test_ctrl_c_at_the_prompt_ends_the_demo_and_removes_its_folder(tmp_path: Path) -> None:
    proc = await demo(tmp_path)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(b"/cf pods\n")  # the pipe stays open: the console waits for the next line
        await proc.stdin.drain()
        seen = b""
        while b"graphql-api-" not in seen:
            chunk = await asyncio.wait_for(proc.stdout.read(4096), 45)
            assert chunk, "the demo ended before answering"
            seen += chunk
        assert len(leftovers(tmp_path)) == 1
        proc.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(proc.communicate(), 10)  # not waiting for another line
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode != 0
    assert leftovers(tmp_path) == [], err.decode()


async def test_a_failed_start_removes_the_folder_and_keep_keeps_it(tmp_path: Path) -> None:
    failed = await demo(tmp_path, "--scenario", "no-such-scenario")
    _, err = await asyncio.wait_for(failed.communicate(b""), 45)
    assert failed.returncode == 2 and "unknown scenario" in err.decode()
    assert leftovers(tmp_path) == []
    kept = await demo(tmp_path)
    out, err = await asyncio.wait_for(kept.communicate(b"/keep\n"), 45)
    assert kept.returncode == 0, err.decode()
    [name] = leftovers(tmp_path)
    assert f"kept in {tmp_path / name}" in out.decode()
    assert (tmp_path / name / "cf.db").exists()


# --- the package's own imports -------------------------------------------------------------------------


def test_demo_modules_import_each_other_without_a_cycle() -> None:
    """app -> the part modules -> parts: none imports `demo.app` back, even inside a function."""
    import ast
    import graphlib

    root = Path(__file__).resolve().parents[2] / "demo"
    graph: dict[str, set[str]] = {}
    for path in root.glob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
        graph[f"demo.{path.stem}"] = {name for name in names if name.startswith("demo.")}
    assert tuple(graphlib.TopologicalSorter(graph).static_order())  # raises CycleError on a cycle
    assert {"demo.aws", "demo.targets", "demo.vendors", "demo.console", "demo.session"} <= graph["demo.app"]
    assert all("demo.app" not in graph[name] for name in graph if name != "demo.app")
