"""Security: the WAF's rate-based rule (the runbook's "rate limiting" response to abuse), after approval.

The limit is changed with WAFv2's lock token, so a concurrent edit is not overwritten; the verdict reads
the rule back (verifier "waf-rate-limit"), and Undo sets the limit it had before.
"""

from __future__ import annotations

from typing import Any

from commands.args import pos, whole_number
from commands.base import CommandError, Context, Kind, Role, command
from commands.reply import Change, Outcome, Probe, Undo, Verification
from commands.verify import verifier

AREA = "Security"

# --- WAF ----------------------------------------------------------------------------------------

WAF_MIN, WAF_MAX = 10, 2_000_000_000  # what WAFv2 accepts for a rate-based rule's limit


def _rate_rule(group: dict[str, Any], wanted: str | None) -> dict[str, Any]:
    rules: list[dict[str, Any]] = [r for r in group.get("Rules", []) if "RateBasedStatement" in r.get("Statement", {})]
    names = ", ".join(f"`{r['Name']}`" for r in rules) or "none"
    if wanted:
        for rule in rules:
            if rule["Name"] == wanted:
                return rule
        raise CommandError(f"Rule group `{group['Name']}` has no rate-based rule `{wanted}` (aws.waf_rule); "
                           f"its rate-based rules: {names}.")
    if len(rules) != 1:
        raise CommandError(f"Rule group `{group['Name']}` has {len(rules)} rate-based rules ({names}); set "
                           "aws.waf_rule to the one `waf rate-limit` should change.")
    return rules[0]


@command(
    "waf rate-limit",
    summary="Set the WAF rate-based rule's limit (requests per 5 minutes per IP), after approval.",
    area=AREA, args=[pos("LIMIT", whole_number, f"requests per 5-minute window, {WAF_MIN} to {WAF_MAX:,}")],
    kind=Kind.change, role=Role.operator, example="/cf waf rate-limit 1000", needs=["aws"],
)
async def waf_rate_limit(ctx: Context, limit: int) -> Change:
    if not WAF_MIN <= limit <= WAF_MAX:
        raise CommandError(f"LIMIT must be between {WAF_MIN} and {WAF_MAX:,} (WAFv2's bounds); {limit} is not.")
    name, scope = ctx.settings.aws.waf_rule_group, ctx.settings.aws.waf_scope
    if not name:
        raise CommandError("No WAF rule group is configured: set aws.waf_rule_group to the group holding the "
                           "rate-based rule.")
    summary = await ctx.aws.find_rule_group(name, scope)
    if summary is None:
        raise CommandError(f"WAF rule group `{name}` ({scope}) was not found.")
    group, _ = await ctx.aws.rule_group(name, scope, summary["Id"])
    rule = _rate_rule(group, ctx.settings.aws.waf_rule)
    current = int(rule["Statement"]["RateBasedStatement"]["Limit"])
    warnings = [f"The limit is already {current:,}; approving changes nothing."] if current == limit else []

    async def apply() -> Outcome:
        fresh, token = await ctx.aws.rule_group(name, scope, summary["Id"])
        target = _rate_rule(fresh, ctx.settings.aws.waf_rule)
        before = int(target["Statement"]["RateBasedStatement"]["Limit"])
        target["Statement"]["RateBasedStatement"]["Limit"] = limit
        await ctx.aws.update_rule_group(fresh, scope, token)
        again, _ = await ctx.aws.rule_group(name, scope, summary["Id"])
        after = int(_rate_rule(again, ctx.settings.aws.waf_rule)["Statement"]["RateBasedStatement"]["Limit"])
        group_id = summary["Id"]
        verify = Verification("waf-rate-limit", {"group": name, "scope": scope, "group_id": group_id,
                                                 "rule": target["Name"], "limit": limit},
                              look_further=f"aws wafv2 get-rule-group --name {name} --scope {scope} --id {group_id}")
        undo = (Undo("waf rate-limit", {"limit": before},
                     f"set WAF rule {target['Name']} back to {before:,} requests / 5 min") if before != limit else None)
        return Outcome(before=f"{before:,} requests / 5 min per IP", after=f"{after:,} requests / 5 min per IP",
                       verify=verify, undo=undo)

    return Change(summary=f"Set WAF rule {rule['Name']} in {name} to {limit:,} requests / 5 min",
                  current=f"{current:,} requests / 5 min per IP ({rule['Name']})",
                  desired=f"{limit:,} requests / 5 min per IP", apply=apply, target=f"waf/{name}/{rule['Name']}",
                  warnings=warnings,
                  no_undo=f"nothing to undo: the limit was already {current:,}" if current == limit else "")


@verifier("waf-rate-limit", needs=["aws"])
async def waf_limit_reads_back(ctx: Context, group: str, scope: str, group_id: str, rule: str, limit: int) -> Probe:
    """The rate-based rule's limit, read back from WAFv2, is the one set."""
    found, _ = await ctx.aws.rule_group(group, scope, group_id)
    now = int(_rate_rule(found, rule)["Statement"]["RateBasedStatement"]["Limit"])
    said = f"WAF rule {rule} reads back {now:,} requests / 5 min per IP"
    if now == limit:
        return Probe(done=True, progress=said)
    return Probe(done=False, progress=said, problem=f"{said}, not {limit:,}: something changed it since")
