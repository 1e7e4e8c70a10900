"""The bot about itself: help and the audit trail."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from commands.args import pos, positive_int
from commands.base import REGISTRY, CommandError, CommandSpec, Context, Kind, command
from commands.reply import Note, Part, Reply, Table, Text

AREA = "Bot"

# The order areas appear in `/cf help`: the runbook's order.
AREA_ORDER = ["Triage", "Logs & Metrics", "Nodes", "Scaling", "Database", "Cache", "AWS", "Security",
              "Incidents", "Bot"]


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


@command(
    "audit",
    summary="The last N entries of the audit trail (who asked, who approved, what changed).",
    area=AREA,
    args=[pos("N", positive_int, "how many entries (default 20, at most 200)", default=20)],
    example="/cf audit 50",
    needs=["audit"],
)
async def audit(ctx: Context, n: int = 20) -> Reply:
    entries = await ctx.service("audit").tail(min(n, 200))
    rows = []
    for e in entries:
        when = datetime.fromtimestamp(e.at, UTC).strftime("%Y-%m-%d %H:%M:%S")
        rows.append([when, e.event, e.actor, e.command, _detail(e.detail)])
    table = Table(["TIME (UTC)", "EVENT", "WHO", "COMMAND", "DETAIL"], rows, empty="The audit trail is empty.")
    return Reply(title=f"Audit trail: last {len(entries)} entries", parts=[table])


def _detail(detail: dict[str, Any]) -> str:
    if "before" in detail:
        text = f"{detail['before']} -> {detail['after']}"
        if detail.get("approver"):
            text += f" (approved by {detail['approver']})"
        return text
    for key in ("error", "reason", "desired", "text"):
        if detail.get(key):
            return f"{key}: {str(detail[key])[:80]}"
    return ""
