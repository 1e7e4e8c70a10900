"""JSON from a request body, bounded: a body that is not UTF-8 JSON, or nests deeper than any real
Slack or Alertmanager payload, is one `BodyError` with a short reason (answered 400), never a
`RecursionError` traceback. `json.loads` itself raises RecursionError at about 1,000 levels; the
depth limit keeps a merely absurd payload (900 levels) from reaching code that walks it recursively."""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 64  # Slack's deepest payloads (rich text in a view's state) stay well under 20


class BodyError(ValueError):
    """A request body we will not process; the message is one short line for the log and the answer."""


def loads(data: str | bytes, max_depth: int = MAX_DEPTH) -> Any:
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        value = json.loads(text)
    except RecursionError:
        raise BodyError("the JSON nests too deeply") from None
    except ValueError:  # JSONDecodeError and UnicodeDecodeError
        raise BodyError("the body is not JSON") from None
    if depth(value, max_depth) > max_depth:
        raise BodyError("the JSON nests too deeply")
    return value


def depth(value: Any, limit: int = MAX_DEPTH) -> int:
    """How deep containers nest (a scalar is 0, `[]` is 1); stops counting past `limit`."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        level += 1
        deepest = max(deepest, level)
        if deepest > limit:
            return deepest
        stack.extend((child, level) for child in children if isinstance(child, dict | list))
    return deepest
