"""Argument pieces the incident, paging and status-page commands share.

`trailing_options` exists because the runbook's own examples put options after free text
(`/cf page primary Editor is down --severity critical`), while the parser gives every word after a
greedy TEXT to the text. It peels known `--name value` pairs off the end of the text, converts them
with the same converters, and leaves anything else as text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from commands.args import Converter, UsageError

_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>|([UW][A-Z0-9]{2,})")
_TRAILING = re.compile(r"^(?P<text>.*?)\s+(?P<name>--[a-z-]+)(?:=|\s+)(?P<value>\S+)\s*$", re.S)


def slack_user(raw: str) -> str:
    """A user mention as Slack escapes it (`<@U123|name>`), or a bare user id."""
    match = _MENTION.fullmatch(raw.strip())
    if match is None:
        raise ValueError(f"`{raw[:40]}` is not a Slack user: mention them (@name) so Slack sends their id, "
                         "or give the id (U...).")
    return match.group(1) or match.group(2)


def trailing_options(text: str | None, options: Mapping[str, Converter], command: str) -> tuple[str | None,
                                                                                                 dict[str, Any]]:
    """Split `TEXT --a x --b y` into (TEXT, {a: x, b: y}) for the declared option names only."""
    found: dict[str, Any] = {}
    while text:
        match = _TRAILING.match(text)
        if match is None or match.group("name") not in options:
            break
        name = match.group("name")
        try:
            found[name.lstrip("-").replace("-", "_")] = options[name](match.group("value"))
        except ValueError as exc:
            raise UsageError(f"{name}: {exc}", command) from None
        text = match.group("text").strip()
    return text or None, found
