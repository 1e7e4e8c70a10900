"""The bot's own messages (approval requests, help, refusals) as Block Kit."""

from __future__ import annotations

import json
from collections.abc import Sequence

from slack_sdk.models.blocks import Block

from base.durations import duration_text
from base.text import code, date, escape
from bot.render import Button, Rendered, actions, context, fields_block, header, section
from bot.store import (
    APPROVED,
    DENIED,
    DONE,
    EXPIRED,
    FAILED,
    INTERRUPTED,
    NOT_VERIFIED,
    PENDING,
    RUNNING,
    STALE,
    VERIFIED,
    VERIFYING,
    Action,
)
from commands.base import CommandSpec

APPROVE = "cf_approve"
DENY = "cf_deny"
UNDO = "cf_undo"  # value: the done request's id -> a new request `/cf undo ID`
AGAIN = "cf_again"  # value: a stale request's id -> the same command asked anew
# undo requests in these states hold the Undo button back (one is under way, or it already ran)
UNDO_UNDER_WAY = (PENDING, APPROVED, RUNNING, DONE)

_STATUS = {
    PENDING: ":hourglass_flowing_sand: Waiting for approval",
    APPROVED: ":white_check_mark: Approved",
    RUNNING: ":gear: Running",
    DONE: ":large_green_circle: Done",
    FAILED: ":x: Failed",
    DENIED: ":no_entry_sign: Denied",
    EXPIRED: ":hourglass: Expired — nothing was changed",
    INTERRUPTED: ":warning: Interrupted",
    STALE: ":arrows_counterclockwise: Stale — not run, nothing was changed",
}
_VERDICT = {
    VERIFYING: ":mag: Verifying…",
    VERIFIED: ":white_check_mark:",
    NOT_VERIFIED: ":warning:",
}


def request_link(action: Action) -> str:
    """` in <#C…>` for a request's channel (Slack renders the channel; the id is in the text)."""
    return f" in <#{action.channel}>" if action.channel else ""


def approval_message(
    action: Action, warnings: Sequence[str] = (), pending: bool = True, exempt: bool = False,
    undo_state: str | None = None,
) -> Rendered:
    """The request message: what, who asked, current -> desired, and (while pending) the buttons; once run,
    its verdict, and Undo (or why there is none); when stale, Request again. `undo_state` is the state of
    the undo request made for it, if any."""
    status = _STATUS.get(action.state, action.state)
    if action.approver and action.state in (APPROVED, RUNNING, DONE, FAILED, INTERRUPTED, STALE):
        status += f" — approved by <@{action.approver}>"
    elif action.approver and action.state == DENIED:
        status += f" by <@{action.approver}>"
    elif exempt or action.state in (APPROVED, RUNNING, DONE, FAILED, INTERRUPTED, STALE):
        status += " (exempt from approval)"
    if action.state == DONE and action.result:
        result = json.loads(action.result)
        status += f": {escape(str(result.get('before', '?')))} → {escape(str(result.get('after', '?')))}"
    if action.state in (FAILED, INTERRUPTED, STALE) and action.error:
        status += f": {escape(action.error)}"

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
    if action.undo_of:
        built.append(context(f":leftwards_arrow_with_hook: Reverts request `{action.undo_of}`."))
    for warning in warnings:
        built.append(context(f":warning: {escape(warning)}"))
    built.append(section(status))
    if action.state == DONE and action.verdict:
        # the note is mrkdwn the verdict wrote, its outside text escaped (bot.verdicts)
        line = _VERDICT.get(action.verdict, action.verdict)
        built.append(section(f"{line} {action.verify_note}" if action.verify_note else line))
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
        built.extend(_after_run(action, undo_state))
    text = f"Change request: {action.summary} — {_STATUS.get(action.state, action.state)}"
    if action.state == DONE and action.verdict in (VERIFIED, NOT_VERIFIED):
        text += " — " + ("verified" if action.verdict == VERIFIED else "not verified")
    return Rendered(text=text[:300], blocks=[b.to_dict() for b in built])


def _after_run(action: Action, undo_state: str | None) -> list[Block]:
    """The request's id, then Undo or why there is none, or Request again for a stale request."""
    notes = [f"Request `{action.id}`."]
    buttons: list[Button] = []
    if action.state == DONE and action.undo_spec:
        undo = json.loads(action.undo_spec)
        if action.undone_by and undo_state in UNDO_UNDER_WAY:
            notes.append(f"Undo: request `{action.undone_by}` ({undo_state}).")
        else:
            notes.append(f"Undo: {escape(str(undo.get('summary', '')))} (`/cf undo {action.id}`, approved like any "
                         "change).")
            buttons.append(Button("Undo", UNDO, action.id, confirm=f"Request: {undo.get('summary', 'undo')}?"))
    elif action.state == DONE and action.no_undo:
        notes.append(f"No undo: {escape(action.no_undo)}")
    if action.state == STALE:
        buttons.append(Button("Request again", AGAIN, action.id))
    built: list[Block] = [context(" ".join(notes))]
    if buttons:
        built.append(actions(buttons, block_id=f"after:{action.id}"))
    return built


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
