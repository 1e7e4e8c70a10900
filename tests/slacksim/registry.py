"""The method registry and the argument helpers every Web API handler shares.

A handler takes the workspace and the decoded arguments and returns Slack's success body, or
raises ``SlackError`` with Slack's error code. Authentication, failure injection and recording
happen before it, in ``server.py``; Block Kit limits live in ``blockkit.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import blockkit
from .workspace import SlackError

Handler = Callable[[Any, dict[str, Any]], dict[str, Any]]
METHODS: dict[str, Handler] = {}


def method(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        METHODS[name] = fn
        return fn

    return register


def flag(value: Any) -> bool:
    return value in (True, 1, "1", "true", "True")


def need(args: dict[str, Any], name: str) -> Any:
    if args.get(name) in (None, ""):
        raise SlackError("invalid_arguments", response_metadata={"messages": [
            f"[ERROR] missing required field: {name}"]})
    return args[name]


def public(msg: dict[str, Any]) -> dict[str, Any]:
    """A stored message as Slack returns it: no empty fields, no sim bookkeeping."""
    return {k: v for k, v in msg.items() if v is not None and v != []}


def check_content(args: dict[str, Any], *, require: bool = True) -> tuple[str, list | None, list | None]:
    text = args.get("text") or ""
    blocks, attachments = args.get("blocks"), args.get("attachments")
    if isinstance(blocks, str) or (blocks is not None and not isinstance(blocks, list)):
        raise SlackError("invalid_blocks_format")
    if isinstance(attachments, str) or (attachments is not None and not isinstance(attachments, list)):
        raise SlackError("invalid_attachments")
    if require and not text and not blocks and not attachments:
        raise SlackError("no_text")
    if len(text) > blockkit.MAX_TEXT:
        raise SlackError("msg_too_long")
    if blocks:
        problems = blockkit.check_blocks(blocks)
        if problems:
            raise SlackError("invalid_blocks", **blockkit.problem_details(problems))
    if attachments and len(attachments) > 100:
        raise SlackError("too_many_attachments")
    return text, blocks, attachments
