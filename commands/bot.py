"""The bot about itself: help, the audit trail, and undoing a change that ran.

`/cf audit` reads the trail back through the audit service (`bot.audit.AuditTrail.query`): the
filters run in SQL in the store, and people are shown by name (looked up in Slack, cached) while
the store and the export keep their raw ids.
"""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from base.durations import duration_text
from base.text import code, literal
from commands.args import duration, opt, pos, positive_int, switch
from commands.base import AREAS, REGISTRY, CommandError, CommandSpec, Context, Kind, Role, command
from commands.clients import AuditClient, AuditEntryView
from commands.reply import Change, File, Note, Part, Reply, Text

AREA = "Bot"

AREA_ORDER = list(AREAS)  # the order areas appear in `/cf help`: the runbook's order


def _line(spec: CommandSpec) -> str:
    change = " _(change, needs approval)_" if spec.kind is Kind.change else ""
    return f"`/cf {spec.usage}` — {spec.summary}{change}"


@command(
    "help",
    summary="List all commands, or show one command's usage and example.",
    area=AREA,
    args=[pos("COMMAND", str, "a command name, e.g. scale or 'db slow'", default=None, greedy=True)],
    example="/cf help scale",
    ephemeral=True,
)
async def help_(ctx: Context, command: str | None = None) -> Reply:
    if command:
        resolved = REGISTRY.resolve(command.split())
        if resolved is None:
            guess = REGISTRY.closest(command.split())
            hint = f" Did you mean `{guess}`?" if guess else ""
            raise CommandError(f"There is no command `{command[:40]}`.{hint} `/cf help` lists them all.")
        spec = resolved[0]
        args = "\n".join(f"• `{a.name}`{' / `' + a.short + '`' if a.short else ''} — {a.help}" for a in spec.args)
        aliases = ", ".join(f"`{' '.join(a)}`" for a in spec.aliases)
        parts: list[Part] = [Text(f"*Usage:* `/cf {spec.usage}`\n{spec.summary}")]
        if args:
            parts.append(Text(args))
        role = "operator (and approval)" if spec.kind is Kind.change else spec.role.value
        note = f"Example: `{spec.example}` · needs the {role} role"
        parts.append(Note(note + (f" · aliases: {aliases}" if aliases else "")))
        return Reply(title=f"/cf {spec.title}", parts=parts, ephemeral=True)
    areas = REGISTRY.by_area()
    ordered = sorted(areas, key=lambda a: (AREA_ORDER.index(a) if a in AREA_ORDER else len(AREA_ORDER), a))
    listing: list[Part] = []
    for area in ordered:
        lines = [_line(s) for s in sorted(areas[area], key=lambda s: s.title)]
        listing.append(Text(f"*{area}*\n" + "\n".join(lines)))
    listing.append(Note("`/cf help COMMAND` shows usage and an example. "
                        "Changes run only after a second person approves."))
    return Reply(title=f"cf — {len(REGISTRY)} commands", parts=listing, ephemeral=True)


SHOWN, SHOWN_MAX, EXPORT_MAX = 20, 200, 10_000
SECTION_BUDGET = 2900  # Slack's section text limit is 3,000 characters
_MENTION = re.compile(r"<@([UW][A-Z0-9]{2,30})(?:\|[^<>]*)?>")
_USER_ID = re.compile(r"[UW][A-Z0-9]{2,30}")


def target_word(raw: str) -> str:
    value = " ".join(raw.split())
    if not value or len(value) > 200:
        raise ValueError("must be a name of 1 to 200 characters, e.g. graphql-api or deployment/graphql-api.")
    return value


def person(raw: str) -> str:
    value = raw.strip()
    if not value.removeprefix("@") or len(value) > 120:
        raise ValueError("must be a mention (@name), a user id (U…) or a name.")
    return value


def request_id(raw: str) -> str:
    value = raw.strip().strip("`")
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", value):
        raise ValueError(f"{code(raw, 60)} is not a request id (letters and digits, e.g. 3f9a1c0b2d4e).")
    return value


@command(
    "audit",
    summary="The audit trail: who asked, who approved, what changed; filter it, or export it as JSON Lines.",
    area=AREA,
    args=[
        pos("N", positive_int, f"how many entries, newest first (default {SHOWN}, at most {SHOWN_MAX}; "
            f"with --export every match, up to {EXPORT_MAX:,})", default=None),
        opt("--target", target_word, "only changes to this target: a name (graphql-api) or kind/name "
            "(deployment/graphql-api)", metavar="NAME"),
        opt("--user", person, "only this person's entries and the changes they requested or approved: "
            "a mention (@name, picked from the list), a user id (U…), or a name shown in the audit trail",
            metavar="@NAME"),
        opt("--since", duration, "only entries from the last DURATION (e.g. 30m, 6h, 7d)", metavar="DURATION"),
        opt("--id", request_id, "only one request: the id on its request message (or an error's id)",
            metavar="REQUEST_ID"),
        switch("--export", "upload the selected entries as a JSON Lines file (raw ids, oldest first)"),
    ],
    example="/cf audit --target graphql-api --since 1d",
    needs=["audit"],
)
async def audit(
    ctx: Context,
    n: int | None = None,
    target: str | None = None,
    user: str | None = None,
    since: int | None = None,
    id: str | None = None,  # the option is --id
    export: bool = False,
) -> Reply:
    trail = ctx.audit
    users = await _people(trail, user) if user else []
    limit = min(n or EXPORT_MAX, EXPORT_MAX) if export else min(n or SHOWN, SHOWN_MAX)
    found = await trail.query(limit + 1, target=target, users=users, since_seconds=since, request_id=id)
    entries, more = found[:limit], len(found) > limit
    names = await trail.names([*_ids_in(entries), *users])
    about = _filters(target, user, users, names, since, id)
    if export:
        return _export(entries, more, about)
    parts: list[Part] = [Text(chunk) for chunk in _chunks([_entry_line(e, names) for e in entries])]
    if not entries:
        parts.append(Note("No entries match these filters." if about else "The audit trail is empty."))
    notes = [f"Only {about}." if about else "", "Times are UTC."]
    if more:
        notes.append(f"Older entries match too: ask for more with `/cf audit N` (up to {SHOWN_MAX}), or `--export`.")
    parts.append(Note(" ".join(x for x in notes if x)))
    return Reply(title=f"Audit trail: last {len(entries)} entries", parts=parts)


async def _people(trail: AuditClient, raw: str) -> list[str]:
    """`<@U123>` and `<@U123|name>` (a mention, as Slack sends it) or `U123`: that id; else a name."""
    mention = _MENTION.fullmatch(raw)
    if mention:
        return [mention.group(1)]
    if _USER_ID.fullmatch(raw):
        return [raw]
    found: list[str] = await trail.find_people(raw)
    if not found:
        raise CommandError(
            f"No one shown as {code(raw, 60)} appears in the recent audit trail. Mention the person "
            "(type @ and pick them from the list) or give their user id (U…)."
        )
    return found


def _ids_in(entries: Sequence[AuditEntryView]) -> list[str]:
    ids: list[object] = []
    for e in entries:
        ids += [e.actor, e.requester, e.approver, e.detail.get("approver"), e.detail.get("requester")]
    return [i for i in ids if isinstance(i, str) and i]


def _filters(target: str | None, raw_user: str | None, users: list[str], names: dict[str, str],
             since: int | None, rid: str | None) -> str:
    said = []
    if target:
        said.append(f"target {code(target, 80)}")
    if raw_user:
        said.append("user " + (", ".join(literal(names.get(u, u), 60) for u in users) or code(raw_user, 60)))
    if since:
        said.append(f"the last {duration_text(since)}")
    if rid:
        said.append(f"request {code(rid)}")
    return ", ".join(said)


def _entry_line(e: AuditEntryView, names: dict[str, str]) -> str:
    """One entry: time, event, target, the command as typed, who, what happened, the request id."""
    when = datetime.fromtimestamp(e.at, UTC).strftime("%Y-%m-%d %H:%M:%S")
    parts = [f"`{when}` *{literal(e.event, 40)}*"]
    if e.target:
        parts.append(code(e.target, 100))
    parts.append(code(html.unescape(e.command_line) if e.command_line else e.command, 160))
    parts.append(f"by {literal(names.get(e.actor, e.actor), 60)}")
    detail = _detail(e, names)
    if detail:
        parts.append(literal(detail, 240, one_line=True))
    rid = e.action_id or e.request_id
    if rid:
        parts.append(f"request {code(rid)}")
    return " · ".join(parts)


def _detail(e: AuditEntryView, names: dict[str, str]) -> str:
    detail: dict[str, Any] = e.detail
    if "before" in detail:
        text = f"{detail['before']} -> {detail['after']}"
        if detail.get("approver"):
            text += f" (approved by {names.get(detail['approver'], detail['approver'])})"
        return text
    if e.event in ("verified", "not_verified") and "verdict" in detail:
        took = float(detail.get("took_seconds") or 0)
        return f"{'Verified' if e.event == 'verified' else 'Not verified'} after {took:g}s: {detail.get('seen', '')}"
    if e.event == "stale" and "was" in detail:
        return f"not run: was {detail['was']} when requested, now {detail['now']}"
    if e.event == "approved" and detail.get("requester"):
        return f"requested by {names.get(detail['requester'], detail['requester'])}"
    if e.event == "requested" and "desired" in detail:
        return f"{detail.get('current') or '?'} -> {detail['desired']}"
    for key in ("error", "reason", "desired", "text"):
        if detail.get(key) and not (key == "text" and e.event in ("ran", "refused")):  # that text is the command
            return f"{key}: {str(detail[key])[:120]}"
    return ""


def _chunks(lines: list[str]) -> list[str]:
    """Lines packed into section-sized texts (each line is far shorter than a section)."""
    chunks: list[str] = []
    current = ""
    for line in lines:
        if current and len(current) + 1 + len(line) > SECTION_BUDGET:
            chunks.append(current)
            current = ""
        current = f"{current}\n{line}" if current else line
    return [*chunks, current] if current else chunks


def _export(entries: Sequence[AuditEntryView], more: bool, about: str) -> Reply:
    """The selection as JSON Lines, oldest first, with the stored raw ids (no names)."""
    if not entries:
        return Reply(title="Audit trail: nothing to export",
                     parts=[Note("No entries match these filters." if about else "The audit trail is empty.")])
    encode = json.JSONEncoder(ensure_ascii=False, default=str, check_circular=False).encode
    lines = [encode(_raw(e)) for e in reversed(entries)]
    filename = f"audit-{datetime.now(UTC):%Y%m%d-%H%M}.jsonl"
    note = f"Only {about}. " if about else ""
    note += f"Attached as `{filename}`: one JSON object per line, oldest first, people as user ids."
    if more:
        note += f" Only the newest {len(entries):,} are in it; narrow the selection with --since or --target."
    return Reply(title=f"Audit trail: {len(entries)} entries exported", parts=[Note(note)],
                 files=[File(filename, ("\n".join(lines) + "\n").encode(), "Audit trail export")])


def _iso(at: float) -> str:
    """`2026-12-02T10:41:30.123456Z` (what datetime.isoformat gives, at a third of its cost: exports run to 10,000)."""
    whole = int(at)
    micro = round((at - whole) * 1_000_000)
    if micro >= 1_000_000:
        whole, micro = whole + 1, 0
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
    return f"{stamp}.{micro:06d}Z" if micro else f"{stamp}Z"


def _raw(e: AuditEntryView) -> dict[str, Any]:
    return {
        "time": _iso(e.at),
        "at": e.at,
        "event": e.event,
        "user_id": e.actor,
        "command": e.command,
        "command_line": e.command_line,
        "target": e.target,
        "request_id": e.action_id or e.request_id,
        "channel": e.channel,
        "incident_id": e.incident_id,
        "requester_id": e.requester,
        "approver_id": e.approver,
        "detail": e.detail,
        "entry_id": e.id,
    }


# --- undo ------------------------------------------------------------------------------------------


@command(
    "undo",
    summary="Request the inverse of a change that ran (back to the replica count, revision, limit… before); "
            "approved like any change.",
    area=AREA,
    args=[pos("REQUEST_ID", request_id, "the id on the change's request message")],
    kind=Kind.change,
    role=Role.operator,
    example="/cf undo 3f9a1c0b2d4e",
    needs=["audit"],
)
async def undo(ctx: Context, request_id: str) -> Change:
    """The inverse is the original command's own, with the arguments its `apply` recorded (`Outcome.undo`):
    it is validated like a fresh request (against the live state, with the requester's roles), so an undo
    that no longer makes sense is refused, and one whose state moves before approval goes stale."""
    original = await ctx.audit.change_request(request_id)
    if original is None:
        raise CommandError(f"There is no change request `{request_id}`. The id is on the request message "
                           "(and in `/cf audit`). Nothing was changed.")
    if original.state != "done":
        raise CommandError(f"Request `{request_id}` ({literal(original.summary)}) is {original.state}: only a change "
                           "that ran can be undone. Nothing was changed.")
    if not original.undo_spec:
        reason = original.no_undo or "this change has no known inverse"
        raise CommandError(f"Request `{request_id}` cannot be undone: {literal(reason)}. Nothing was changed.")
    if original.undone_by:
        previous = await ctx.audit.change_request(original.undone_by)
        if previous is not None and previous.state == "done":
            raise CommandError(f"Request `{request_id}` was already undone by request `{previous.id}`. "
                               "Nothing was changed.")
    inverse = json.loads(original.undo_spec)
    spec = REGISTRY.get(str(inverse["command"]))
    if spec is None or spec.kind is not Kind.change:
        raise CommandError(f"The inverse of request `{request_id}` (`{inverse['command']}`) is not a change this "
                           "bot knows any more. Nothing was changed.")
    if not ctx.has_role(spec.role):
        raise CommandError(f"Undoing request `{request_id}` runs `{spec.title}`, which needs the {spec.role} role. "
                           "Nothing was changed.")
    change = await spec.fn(ctx.narrowed(spec.needs), **dict(inverse.get("args") or {}))
    if not isinstance(change, Change):
        raise TypeError(f"{spec.title!r} returned {type(change).__name__}, not Change")
    change.summary = f"Undo request {request_id}: {change.summary}"
    change.reverts = request_id
    change.warnings.insert(0, f"Reverts request {request_id}: {original.summary}.")
    return change
