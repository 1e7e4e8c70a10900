"""Text that the bot did not write, made safe for Slack's mrkdwn — in two layers.

1. Where a command or view puts outside text (a user's pattern, a pod's image, an alert's summary, an
   incident title) into a message, it goes through `literal()` (or `code()` for an inline code span):
   `&`, `<` and `>` are escaped, so it shows as typed, and a backtick becomes U+02CB (a look-alike), so it cannot close
   the code span it sits in and turn what follows into live mrkdwn.
2. Every call the bot makes to Slack passes through `guard_payload()` at the one boundary (the
   messenger): in every text field of the payload — fallback `text`, every text object of the blocks,
   topics, purposes, titles — any `<...>` that is not one of the bot's own control sequences is
   escaped. The bot's own are made only by `link()` and `date()` here (marked with two private-use
   characters that the guard removes) plus user and channel references (`<@U…>`, `<#C…>`). So even text
   that reached a message without step 1 cannot become `<!channel>`, `<!here>`, `<!everyone>` or a
   disguised `<https://…|label>` link.
"""

from __future__ import annotations

import re
from typing import Any

_OPEN, _CLOSE = "\ue000", "\ue001"  # private-use marks around the bot's own control sequences
BACKTICK_STANDIN = "\u02cb"  # modifier letter grave accent: looks like a backtick, closes no span


def escape(text: str) -> str:
    """Slack's three control characters as entities: the text shows as written."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def literal(value: object, limit: int | None = None, *, one_line: bool = False) -> str:
    """Outside text for a message: escaped, no backtick, at most `limit` characters."""
    text = str(value)
    if one_line:
        text = " ".join(text.split())
    if limit is not None and len(text) > limit:
        text = text[: max(limit - 1, 0)] + "…"
    return escape(text.replace("`", BACKTICK_STANDIN))


def code(value: object, limit: int | None = None) -> str:
    """Outside text as an inline code span (one line) that it cannot break out of."""
    return f"`{literal(value, limit, one_line=True) or ' '}`"


def link(url: str, label: str) -> str:
    """A link the bot itself makes (the label is outside text and is escaped)."""
    safe_url = url.replace("&", "&amp;").replace("<", "%3C").replace(">", "%3E").replace("|", "%7C")
    return f"{_OPEN}<{safe_url}|{literal(label) or safe_url}>{_CLOSE}"


def date(epoch: float, fmt: str, fallback: str) -> str:
    """Slack's date formatting: shown in each reader's time zone, `fallback` where it is not supported."""
    return f"{_OPEN}<!date^{int(epoch)}^{fmt}|{literal(fallback)}>{_CLOSE}"


# A person as Slack writes one in message text (`<@U123>`, `<@U123|name>`); group 1 is the user id.
USER_MENTION = re.compile(r"<@([UW][A-Z0-9]{2,30})(?:\|[^<>]*)?>")

_MARKED = re.compile(f"{_OPEN}([^{_OPEN}{_CLOSE}]*){_CLOSE}")
_REFERENCE = re.compile(r"<(?:@[UW][A-Z0-9]{2,30}|#C[A-Z0-9]{2,30})(?:\|[^<>|]{0,80})?>")


def guard(text: str) -> str:
    """Escape every `<` and `>` that is not part of the bot's own control sequences."""
    if "<" not in text and ">" not in text and _OPEN not in text:
        return text
    out: list[str] = []
    pos = 0
    for match in _MARKED.finditer(text):
        out.append(_guard_unmarked(text[pos : match.start()]))
        out.append(match.group(1))
        pos = match.end()
    out.append(_guard_unmarked(text[pos:]))
    return "".join(out)


def _guard_unmarked(text: str) -> str:
    text = text.replace(_OPEN, "").replace(_CLOSE, "")
    out: list[str] = []
    pos = 0
    for match in _REFERENCE.finditer(text):
        out.append(text[pos : match.start()].replace("<", "&lt;").replace(">", "&gt;"))
        out.append(match.group(0))
        pos = match.end()
    out.append(text[pos:].replace("<", "&lt;").replace(">", "&gt;"))
    return "".join(out)


# Keys of a Slack Web API payload whose string values are shown to people as text.
_TEXT_KEYS = frozenset({"text", "topic", "purpose", "title", "initial_comment", "alt_text", "fallback", "pretext"})


def guard_payload(value: Any) -> Any:
    """A copy of a Web API payload with `guard()` applied to every displayed text, however deep."""
    if isinstance(value, dict):
        return {k: (guard(v) if k in _TEXT_KEYS and isinstance(v, str) else guard_payload(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [guard_payload(v) for v in value]
    return value


# --- plain text: the small shapes every layer prints (no escaping: callers escape outside text) ---


def clip(text: str, limit: int, marker: str = "…") -> str:
    """`text` cut to at most `limit` characters, the cut marked."""
    return text if len(text) <= limit else text[: max(limit - len(marker), 0)] + marker


def one_line(text: str | None, limit: int = 200) -> str:
    """`text` with every run of white space (newlines too) as one space, clipped to `limit`."""
    return clip(" ".join((text or "").split()), limit)


def first_line(exc: BaseException, limit: int = 200) -> str:
    """An error's message for a one-line report: its first line, or its type's name when it has none."""
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:limit]


def plural(n: int, word: str, many: str | None = None) -> str:
    """`1 pod`, `3 pods`, `1,204 series`: the count and the word in the number it needs."""
    return f"{n:,} {word if n == 1 else (many or word + 's')}"
