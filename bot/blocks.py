"""The bot's own messages (approval requests, help, refusals) as Block Kit."""

from __future__ import annotations

import json
from collections.abc import Sequence

from slack_sdk.models.blocks import Block

from base.durations import duration_text
from base.text import code, date, escape
from bot.render import Button, Rendered, actions, context, fields_block, header, section
from bot.store import APPROVED, DENIED, DONE, EXPIRED, FAILED, INTERRUPTED, PENDING, RUNNING, Action
from commands.base import CommandSpec

APPROVE = "cf_approve"
DENY = "cf_deny"

_STATUS = {
    PENDING: ":hourglass_flowing_sand: Waiting for approval",
    APPROVED: ":white_check_mark: Approved",
    RUNNING: ":gear: Running",
    DONE: ":large_green_circle: Done",
    FAILED: ":x: Failed",
    DENIED: ":no_entry_sign: Denied",
    EXPIRED: ":hourglass: Expired — nothing was changed",
    INTERRUPTED: ":warning: Interrupted",
}


def approval_message(
    action: Action, warnings: Sequence[str] = (), pending: bool = True, exempt: bool = False
) -> Rendered:
    """The request message: what, who asked, current -> desired, and (while pending) the buttons."""
    status = _STATUS.get(action.state, action.state)
    if action.approver and action.state in (APPROVED, RUNNING, DONE, FAILED, INTERRUPTED):
        status += f" — approved by <@{action.approver}>"
    elif action.approver and action.state == DENIED:
        status += f" by <@{action.approver}>"
    elif exempt or action.state in (APPROVED, RUNNING, DONE, FAILED, INTERRUPTED):
        status += " (exempt from approval)"
    if action.state == DONE and action.result:
        result = json.loads(action.result)
        status += f": {result.get('before', '?')} → {result.get('after', '?')}"
    if action.state in (FAILED, INTERRUPTED) and action.error:
        status += f": {action.error}"

    built = [
        header(f"Change request: {action.command}"),
        section(f"*{escape(action.summary)}*"),
        *fields_block(
            [
                ("Requested by", f"<@{action.requester}>"),
                ("Command", code(f"/cf {action.request_text or action.command}")),
                ("Current", escape(action.current_state or "—")),
                ("Desired", escape(action.desired_state or "—")),
            ]
        ),
    ]
    for warning in warnings:
        built.append(context(f":warning: {escape(warning)}"))
    built.append(section(status))
    if pending and action.state == PENDING:
        who = "an admin" if action.approver_role == "admin" else "someone with the approver role"
        ttl = duration_text(action.expires_at - action.created_at)
        built.append(
            context(
                f"Needs approval by {who} other than the requester. "
                f"Expires {date(action.expires_at, '{time}', f'in {ttl}')}. "
                f"Request `{action.id}`."
            )
        )
        built.append(
            actions(
                [
                    Button("Approve", APPROVE, action.id, style="primary",
                           confirm=f"Run `{action.command}` now: {action.summary}?"),
                    Button("Deny", DENY, action.id, style="danger"),
                ],
                block_id=f"approval:{action.id}",
            )
        )
    else:
        built.append(context(f"Request `{action.id}`."))
    text = f"Change request: {action.summary} — {_STATUS.get(action.state, action.state)}"
    return Rendered(text=text[:300], blocks=[b.to_dict() for b in built])


def requested_line(action: Action, exempt: bool) -> str:
    base = f":memo: Requested by <@{action.requester}>: {code(f'/cf {action.request_text or action.command}')}"
    base += f" ({escape(action.current_state)} → {escape(action.desired_state)})"
    return base + (" — exempt from approval, running now." if exempt else ".")



def usage_blocks(spec: CommandSpec, message: str | None = None) -> Rendered:
    lines = []
    if message:
        lines.append(f":warning: {escape(message)}")
    lines.append(f"*Usage:* `/cf {spec.usage}`")
    lines.append(f"{escape(spec.summary)}")
    built: list[Block] = [section("\n".join(lines))]
    arg_lines = [f"• `{a.name}`{' / `' + a.short + '`' if a.short else ''} — {escape(a.help)}" for a in spec.args]
    if arg_lines:
        built.append(section("\n".join(arg_lines)))
    built.append(context(f"Example: `{spec.example}`"))
    text = message or f"Usage: /cf {spec.usage}"
    return Rendered(text=text[:300], blocks=[b.to_dict() for b in built])
