"""Secret rotation (the runbook's "Change credentials"), done so that a half-finished rotation is
never a mystery.

Steps, in order: read the current version (to keep the secret's shape: a JSON object keeps its
keys, each string value made new); write a new random value as a new version, so Secrets Manager
moves AWSCURRENT to it and keeps the old one as AWSPREVIOUS; rollout-restart every deployment that
consumes the secret (`aws.secret_consumers`); wait until each has its new pods running. A consumer
at 0 replicas has no pods to roll: it is not restarted, and the reply says so. If a step fails, the
error names what has and has not happened and the exact commands to finish or roll back.

The value itself lives only in local variables of `apply`: replies, progress lines, errors, the audit
store and logs carry version ids and deployment names, never the value.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from datetime import UTC, datetime
from typing import Any

from base.vocabulary import RESTARTED_AT
from commands.args import pos
from commands.base import CommandError, Context, Kind, Role, command
from commands.parts import Failed, failures, optional
from commands.reply import Change, Outcome, Reply, Table
from commands.support.kube import pod_ready
from integrations.errors import IntegrationError, NotFound, Unavailable

POLL_SECONDS = 2.0


def secret_name(raw: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9/_+=.@:-]{1,2048}", raw):  # a name or an ARN
        raise ValueError(f"`{raw[:60]}` is not a Secrets Manager name (letters, digits and /_+=.@-).")
    return raw


def _stages(secret: dict[str, Any]) -> dict[str, str]:
    """Stage label -> version id (AWSCURRENT, AWSPREVIOUS, AWSPENDING)."""
    return {stage: vid for vid, stages in (secret.get("VersionIdsToStages") or {}).items() for stage in stages}


def _regenerate(value: str) -> str:
    """A new random value of the same shape: JSON object keys kept, each string value replaced."""
    try:
        data = json.loads(value)
    except ValueError:
        data = None
    if isinstance(data, dict):
        return json.dumps({k: secrets.token_urlsafe(36) if isinstance(v, str) else v for k, v in data.items()})
    return secrets.token_urlsafe(36)


def _rollback(secret_id: str, old: str, new: str, restarted: list[str]) -> str:
    redo = ", then " + ", ".join(f"`/cf restart {d}`" for d in restarted) if restarted else ""
    return (f"To roll back: `aws secretsmanager update-secret-version-stage --secret-id {secret_id} "
            f"--version-stage AWSCURRENT --move-to-version-id {old} --remove-from-version-id {new}`{redo}.")


@command(
    "secrets rotate",
    summary="Rotate a Secrets Manager secret and restart the deployments that use it, after approval.",
    area="Security", args=[pos("SECRET_ID", secret_name, "the secret (default: aws.secret_id)", default=None)],
    kind=Kind.change, role=Role.operator, example="/cf secrets rotate", needs=["aws", "kube"],
)
async def secrets_rotate(ctx: Context, secret_id: str | None = None) -> Change:
    name = secret_id or ctx.settings.aws.secret_id
    consumers = list(ctx.settings.aws.secret_consumers.get(name) or [])
    if not consumers:
        raise CommandError(f"No consumers are configured for `{name}` (aws.secret_consumers), so a rotation could "
                           "not restart anything to pick up the new value. Add them first. Nothing was changed.")
    secret = await ctx.aws.describe_secret(name)
    if secret.get("DeletedDate"):
        raise CommandError(f"`{name}` is scheduled for deletion; restore it before rotating.")
    # Each consumer check is an auxiliary part: one that is missing refuses the request, one that cannot
    # be checked becomes a warning on the prompt (its restart step reports and explains any failure).
    checks = await asyncio.gather(*(optional(f"Consumer `{dep}`", _consumer(ctx, name, dep), state="not verified")
                                    for dep in consumers))
    stages = _stages(secret)
    warnings = ["This secret also has automatic rotation; a manual rotation bypasses its Lambda."] if secret.get(
        "RotationEnabled") else []
    warnings += [f"{f.label}: {f.detail} — if it does not exist, its restart fails after the rotation."
                 for f in failures(*checks)]
    return Change(
        summary=f"Rotate secret {name}, then restart {', '.join(consumers)}",
        current=f"AWSCURRENT {stages.get('AWSCURRENT', '?')}, AWSPREVIOUS {stages.get('AWSPREVIOUS', 'none')}",
        desired=f"a new random version as AWSCURRENT (the current one kept as AWSPREVIOUS); rollout restart of "
                f"{', '.join(consumers)}; their new pods running",
        apply=lambda: _rotate(ctx, name, consumers), target=f"secret/{name}", warnings=warnings,
    )


async def _consumer(ctx: Context, name: str, dep: str) -> None:
    try:
        await ctx.kube.get_deployment(ctx.namespace, dep)
    except NotFound:
        raise CommandError(f"Consumer `{dep}` of `{name}` is not a deployment in `{ctx.namespace}`; fix "
                           "aws.secret_consumers. Nothing was changed.") from None


async def _rotate(ctx: Context, name: str, consumers: list[str]) -> Outcome:
    try:
        old, value = await ctx.aws.secret_string(name)
    except IntegrationError as exc:
        raise CommandError(f"{exc} Nothing was changed.") from None
    fresh = _regenerate(value)
    del value
    try:
        new = await ctx.aws.put_secret_string(name, fresh)
    except Unavailable as exc:
        raise CommandError(f"{exc} It is not known whether a new version was written: check "
                           f"`aws secretsmanager describe-secret --secret-id {name}` before trying again.") from None
    except IntegrationError as exc:
        raise CommandError(f"{exc} Nothing was changed: AWSCURRENT is still `{old}`.") from None
    finally:
        del fresh
    await ctx.progress(f":key: New version `{new}` of `{name}` is AWSCURRENT; `{old}` is AWSPREVIOUS.")
    stamp, restarted = await _restart_all(ctx, name, consumers, old, new)
    idle = [d for d in consumers if d not in restarted]
    running = await _wait_for_pods(ctx, name, restarted, stamp, old, new)
    rows = [[dep, f"{running[dep][0]}/{running[dep][1]}", stamp] if dep in running
            else [dep, "at 0 replicas: nothing to restart", "—"] for dep in consumers]
    detail = Reply(title=f"Rotated {name}", parts=[Table(["DEPLOYMENT", "NEW PODS RUNNING", "RESTARTED AT"], rows)],
                   level="ok")
    done = [f"{', '.join(restarted)} restarted, new pods running"] if restarted else []
    done += [f"{', '.join(idle)} at 0 replicas: nothing to restart"] if idle else []
    return Outcome(before=f"AWSCURRENT {old}", after=f"AWSCURRENT {new} (AWSPREVIOUS {old}); {'; '.join(done)}",
                   detail=detail)


async def _idle(ctx: Context, dep: str) -> bool:
    """True if the deployment is at 0 replicas; a deployment that cannot be read is tried (and reported) anyway."""
    try:
        obj = await ctx.kube.get_deployment(ctx.namespace, dep)
    except IntegrationError:
        return False
    return int(obj.get("spec", {}).get("replicas", 1)) == 0


async def _restart_all(ctx: Context, name: str, consumers: list[str], old: str, new: str
                       ) -> tuple[str, list[str]]:
    """Restart each consumer that has pods; returns the restart stamp and the deployments restarted."""
    at = datetime.now(UTC)
    done: list[str] = []
    stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    for dep in consumers:
        if await _idle(ctx, dep):
            await ctx.progress(f"`{dep}` is at 0 replicas: nothing to restart.")
            continue
        try:
            patched = await ctx.kube.restart_deployment(ctx.namespace, dep, at)
        except IntegrationError as exc:
            left = [d for d in consumers[consumers.index(dep):] if d not in done]
            raise CommandError(
                f"The secret was rotated (AWSCURRENT `{new}`, AWSPREVIOUS `{old}`), but restarting `{dep}` failed: "
                f"{exc} Restarted: {', '.join(done) or 'none'}. Not restarted (still using the old value): "
                f"{', '.join(left)}. To finish: " + ", ".join(f"`/cf restart {d}`" for d in left) + ". "
                + _rollback(name, old, new, done)) from None
        stamp = patched["spec"]["template"]["metadata"]["annotations"].get(RESTARTED_AT, stamp)
        done.append(dep)
    return stamp, done


async def _new_pods(ctx: Context, dep: str, stamp: str) -> tuple[int, int]:
    """(new pods running and ready, replicas wanted) for one deployment restarted at `stamp`."""
    obj = await ctx.kube.get_deployment(ctx.namespace, dep)
    labels = obj.get("spec", {}).get("selector", {}).get("matchLabels") or {}
    pods = await ctx.kube.list_pods(ctx.namespace, label_selector=",".join(f"{k}={v}" for k, v in labels.items()))
    fresh = [p for p in pods if (p["metadata"].get("annotations") or {}).get(RESTARTED_AT) == stamp
             and not p["metadata"].get("deletionTimestamp")]
    ok = sum(1 for p in fresh if p.get("status", {}).get("phase") == "Running"
             and pod_ready(p).split("/")[0] == pod_ready(p).split("/")[1])
    return ok, int(obj.get("spec", {}).get("replicas", 0))


async def _wait_for_pods(ctx: Context, name: str, consumers: list[str], stamp: str, old: str, new: str
                         ) -> dict[str, tuple[int, int]]:
    deadline = time.monotonic() + float(ctx.settings.aws.rollout_timeout_seconds)
    while True:  # a check that fails is not yet done: the next poll asks again; the deadline names it
        counts = {dep: await optional(f"`{dep}`", _new_pods(ctx, dep, stamp), state="not checked")
                  for dep in consumers}
        done = {d: c for d, c in counts.items() if not isinstance(c, Failed) and c[0] >= c[1]}
        if len(done) == len(consumers):
            return {d: c for d, c in done.items() if not isinstance(c, Failed)}
        if time.monotonic() >= deadline:
            shown = ", ".join(f"{c.label} {c.detail}" if isinstance(c, Failed) else f"`{d}` {c[0]}/{c[1]}"
                              for d, c in counts.items() if d not in done)
            raise CommandError(
                f"The secret was rotated (AWSCURRENT `{new}`, AWSPREVIOUS `{old}`) and {', '.join(consumers)} were "
                f"restarted, but after {ctx.settings.aws.rollout_timeout_seconds:g}s these have not got their new pods "
                f"running: {shown}. Their old pods keep the previous value until replaced; check "
                f"`/cf pods`. " + _rollback(name, old, new, consumers))
        await asyncio.sleep(POLL_SECONDS)
