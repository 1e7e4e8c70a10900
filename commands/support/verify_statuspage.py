"""Verifier for status page changes: the public incident, read back from Statuspage.

A change to the public page is verified when Statuspage answers with the status it was given and, for an
update, with the text among the incident's updates (the API lists them newest first in
`incident_updates`; an answer without that list is judged by the status alone). It only reads.
"""

from __future__ import annotations

from base.text import one_line
from commands.base import Context
from commands.reply import Probe, Verification
from commands.verify import verifier


def incident_state(incident_id: str, status: str, body: str | None = None) -> Verification:
    """Verified when incident `incident_id` reads back `status` (and, given `body`, has that update)."""
    params: dict[str, str] = {"incident_id": incident_id, "status": status}
    if body:
        params["body"] = body
    return Verification("statuspage-incident", params)


@verifier("statuspage-incident", needs=["statuspage"])
async def statuspage_incident(ctx: Context, incident_id: str, status: str, body: str | None = None) -> Probe:
    found = await ctx.statuspage.get_incident(incident_id)
    now = str(found.get("status") or "unknown")
    name = one_line(str(found.get("name") or incident_id), 80)
    line = f"public incident “{name}” is {now}"
    if now != status:
        return Probe(False, line, problem=f"{line}, not {status}")
    updates = found.get("incident_updates")
    if body and isinstance(updates, list) and not any(
            isinstance(u, dict) and (u.get("body") or "").strip() == body.strip() for u in updates):
        text = f"{line}, but the update “{one_line(body, 60)}” is not among its {len(updates)} updates"
        return Probe(False, text, problem=text)
    return Probe(True, line + (" with the update posted" if body and isinstance(updates, list) else ""))


__all__ = ["incident_state", "statuspage_incident"]
