"""Block Kit limits that Slack enforces on the server, so a bot that breaks them fails in tests.

Each check adds one entry in Slack's own style, ``"<what> [json-pointer:/blocks/3/text]"``; the
web API turns a non-empty list into ``invalid_blocks`` (messages) or ``invalid_arguments``
(views). Only limits Slack documents and enforces are checked: a sim stricter than Slack would
fail good bots, and one looser than Slack would pass bad ones.
"""

from __future__ import annotations

from typing import Any

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_TEXT = 40_000
BLOCK_TYPES = {
    "actions", "context", "context_actions", "divider", "file", "header", "image", "input",
    "markdown", "rich_text", "section", "table", "video",
}
TEXT_TYPES = {"plain_text", "mrkdwn"}


class _Checker:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def err(self, what: str, ptr: str) -> None:
        self.errors.append(f"{what} [json-pointer:{ptr}]")

    def max_len(self, value: Any, limit: int, ptr: str) -> None:
        if isinstance(value, str) and len(value) > limit:
            self.err(f"must be less than {limit + 1} characters", ptr)

    def text(self, obj: Any, ptr: str, limit: int, *, plain_only: bool = False,
             required: bool = True) -> None:
        if obj is None:
            if required:
                self.err("must provide an object", ptr)
            return
        if not isinstance(obj, dict):
            self.err("must provide an object", ptr)
            return
        kind = obj.get("type")
        allowed = {"plain_text"} if plain_only else TEXT_TYPES
        if kind not in allowed:
            self.err(f"must be one of: {', '.join(sorted(allowed))}", f"{ptr}/type")
        value = obj.get("text")
        if not isinstance(value, str):
            self.err("must provide a string", f"{ptr}/text")
        elif not value:
            self.err("must be more than 0 characters", f"{ptr}/text")
        else:
            self.max_len(value, limit, f"{ptr}/text")

    def items(self, seq: Any, ptr: str, *, lo: int, hi: int) -> list:
        if not isinstance(seq, list):
            self.err("must provide an array", ptr)
            return []
        if len(seq) > hi:
            self.err(f"no more than {hi} items allowed", ptr)
        if len(seq) < lo:
            self.err(f"must provide at least {lo} items", ptr)
        return seq

    # ---- elements -------------------------------------------------------------------------
    def element(self, el: Any, ptr: str) -> None:
        if not isinstance(el, dict):
            self.err("must provide an object", ptr)
            return
        self.max_len(el.get("action_id"), 255, f"{ptr}/action_id")
        kind = el.get("type")
        if kind == "button":
            self.button(el, ptr)
        elif kind in {"static_select", "multi_static_select", "radio_buttons", "checkboxes", "overflow"}:
            hi = {"overflow": 5, "radio_buttons": 10, "checkboxes": 10}.get(kind, 100)
            options = el.get("options")
            if options is not None or kind in {"overflow", "radio_buttons", "checkboxes"}:
                for i, opt in enumerate(self.items(options, f"{ptr}/options", lo=1, hi=hi)):
                    self.option(opt, f"{ptr}/options/{i}")
            if "placeholder" in el:
                self.text(el["placeholder"], f"{ptr}/placeholder", 150, plain_only=True)
        if isinstance(el.get("confirm"), dict):
            self.confirm(el["confirm"], f"{ptr}/confirm")

    def button(self, el: dict, ptr: str) -> None:
        self.text(el.get("text"), f"{ptr}/text", 75, plain_only=True)
        self.max_len(el.get("value"), 2000, f"{ptr}/value")
        self.max_len(el.get("url"), 3000, f"{ptr}/url")
        if "style" in el and el["style"] not in {"primary", "danger"}:
            self.err("must be one of: danger, primary", f"{ptr}/style")

    def option(self, opt: Any, ptr: str) -> None:
        if not isinstance(opt, dict):
            self.err("must provide an object", ptr)
            return
        self.text(opt.get("text"), f"{ptr}/text", 75)
        self.max_len(opt.get("value"), 150, f"{ptr}/value")

    def confirm(self, c: dict, ptr: str) -> None:
        self.text(c.get("title"), f"{ptr}/title", 100, plain_only=True)
        self.text(c.get("text"), f"{ptr}/text", 300)
        self.text(c.get("confirm"), f"{ptr}/confirm", 30, plain_only=True)
        self.text(c.get("deny"), f"{ptr}/deny", 30, plain_only=True)

    # ---- blocks ---------------------------------------------------------------------------
    def blocks(self, blocks: Any, ptr: str, limit: int) -> None:
        seen: set[str] = set()
        for i, block in enumerate(self.items(blocks, ptr, lo=0, hi=limit)):
            bptr = f"{ptr}/{i}"
            if not isinstance(block, dict):
                self.err("must provide an object", bptr)
                continue
            kind = block.get("type")
            if kind not in BLOCK_TYPES:
                self.err(f"unsupported type: {kind}", f"{bptr}/type")
                continue
            block_id = block.get("block_id")
            if block_id is not None:
                self.max_len(block_id, 255, f"{bptr}/block_id")
                if block_id in seen:
                    self.err(f"duplicate block_id: {block_id}", f"{bptr}/block_id")
                seen.add(block_id)
            getattr(self, f"block_{kind}", lambda b, p: None)(block, bptr)

    def block_section(self, b: dict, ptr: str) -> None:
        if b.get("text") is None and b.get("fields") is None:
            self.err("must provide either text or fields", ptr)
        if b.get("text") is not None:
            self.text(b["text"], f"{ptr}/text", 3000)
        if b.get("fields") is not None:
            for i, f in enumerate(self.items(b["fields"], f"{ptr}/fields", lo=1, hi=10)):
                self.text(f, f"{ptr}/fields/{i}", 2000)
        if b.get("accessory") is not None:
            self.element(b["accessory"], f"{ptr}/accessory")

    def block_header(self, b: dict, ptr: str) -> None:
        self.text(b.get("text"), f"{ptr}/text", 150, plain_only=True)

    def block_actions(self, b: dict, ptr: str) -> None:
        action_ids: set[str] = set()
        for i, el in enumerate(self.items(b.get("elements"), f"{ptr}/elements", lo=1, hi=25)):
            self.element(el, f"{ptr}/elements/{i}")
            aid = el.get("action_id") if isinstance(el, dict) else None
            if aid is not None:
                if aid in action_ids:
                    self.err(f"duplicate action_id: {aid}", f"{ptr}/elements/{i}/action_id")
                action_ids.add(aid)

    def block_context(self, b: dict, ptr: str) -> None:
        for i, el in enumerate(self.items(b.get("elements"), f"{ptr}/elements", lo=1, hi=10)):
            if isinstance(el, dict) and el.get("type") in TEXT_TYPES:
                self.text(el, f"{ptr}/elements/{i}", 3000)

    def block_image(self, b: dict, ptr: str) -> None:
        if not b.get("image_url") and not b.get("slack_file"):
            self.err("must provide image_url or slack_file", ptr)
        self.max_len(b.get("image_url"), 3000, f"{ptr}/image_url")
        if not isinstance(b.get("alt_text"), str) or not b["alt_text"]:
            self.err("must provide a string", f"{ptr}/alt_text")
        self.max_len(b.get("alt_text"), 2000, f"{ptr}/alt_text")

    def block_input(self, b: dict, ptr: str) -> None:
        self.text(b.get("label"), f"{ptr}/label", 2000, plain_only=True)
        if b.get("element") is None:
            self.err("must provide an object", f"{ptr}/element")
        else:
            self.element(b["element"], f"{ptr}/element")
        if b.get("hint") is not None:
            self.text(b["hint"], f"{ptr}/hint", 2000, plain_only=True)

    def block_markdown(self, b: dict, ptr: str) -> None:
        if not isinstance(b.get("text"), str) or not b["text"]:
            self.err("must provide a string", f"{ptr}/text")
        self.max_len(b.get("text"), 12_000, f"{ptr}/text")


def check_blocks(blocks: Any, *, limit: int = MAX_MESSAGE_BLOCKS, ptr: str = "/blocks") -> list[str]:
    """Errors for a message's (or a view's) ``blocks``; empty when Slack would accept them."""
    checker = _Checker()
    checker.blocks(blocks, ptr, limit)
    return checker.errors


def check_view(view: Any) -> list[str]:
    """Errors for a ``views.open/update/push/publish`` view, as Slack reports them."""
    checker = _Checker()
    if not isinstance(view, dict):
        checker.err("must provide an object", "/view")
        return checker.errors
    kind = view.get("type")
    if kind not in {"modal", "home"}:
        checker.err("must be one of: home, modal", "/view/type")
    if kind == "modal":
        checker.text(view.get("title"), "/view/title", 24, plain_only=True)
        checker.text(view.get("submit"), "/view/submit", 24, plain_only=True, required=False)
        checker.text(view.get("close"), "/view/close", 24, plain_only=True, required=False)
        has_input = any(isinstance(b, dict) and b.get("type") == "input" for b in view.get("blocks") or [])
        if has_input and view.get("submit") is None:
            checker.err("must provide submit when using input blocks", "/view/submit")
    checker.max_len(view.get("private_metadata"), 3000, "/view/private_metadata")
    checker.max_len(view.get("callback_id"), 255, "/view/callback_id")
    checker.max_len(view.get("external_id"), 255, "/view/external_id")
    checker.blocks(view.get("blocks"), "/view/blocks", MAX_VIEW_BLOCKS)
    return checker.errors


def problem_details(problems: list[str]) -> dict[str, Any]:
    """What Slack adds to a refusal's body: the problems, and one ``[ERROR]`` line for each."""
    return {
        "errors": problems,
        "response_metadata": {"messages": [f"[ERROR] {p}" for p in problems]},
    }
