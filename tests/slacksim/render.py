"""One-line renderings of messages and views for transcripts and assertion messages."""

from __future__ import annotations

from typing import Any


def _text_of(obj: Any) -> str:
    if isinstance(obj, dict):
        return str(obj.get("text", ""))
    return "" if obj is None else str(obj)


def block_summary(block: Any) -> str:
    if not isinstance(block, dict):
        return "?"
    kind = block.get("type")
    if kind in {"section", "header", "markdown"}:
        parts = [_text_of(block.get("text"))] + [_text_of(f) for f in block.get("fields") or []]
        acc = block.get("accessory")
        if isinstance(acc, dict) and acc.get("type") == "button":
            parts.append(f"[{_text_of(acc.get('text'))} -> {acc.get('action_id')}]")
        return " | ".join(p for p in parts if p)
    if kind == "actions":
        return " ".join(
            f"[{_text_of(e.get('text')) or e.get('type')} -> {e.get('action_id')}]"
            for e in block.get("elements") or [] if isinstance(e, dict)
        )
    if kind == "context":
        return " ".join(_text_of(e) for e in block.get("elements") or [] if isinstance(e, dict))
    if kind == "divider":
        return "---"
    return f"<{kind}>"


def render(text: str | None, blocks: list | None = None, width: int = 400) -> str:
    """The message as a reader would skim it: its text, else its blocks, on one line."""
    body = " / ".join(s for s in (block_summary(b) for b in blocks or []) if s) if blocks else ""
    out = text or ""
    if body and body not in out:
        out = f"{out} {{{body}}}" if out else body
    out = out.replace("\n", " \u23ce ")
    return out if len(out) <= width else out[: width - 1] + "\u2026"
