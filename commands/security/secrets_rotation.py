"""Secret rotation (the runbook's "Change credentials"), done so that a half-finished rotation is
never a mystery.

Steps, in order: read the current version (to keep the secret's shape: a JSON object keeps its
keys, each string value made new); write a new random value as a new version, so Secrets Manager
moves AWSCURRENT to it and keeps the old one as AWSPREVIOUS; rollout-restart every deployment that
consumes the secret (`aws.secret_consumers`). A consumer at 0 replicas has no pods to roll: it is not
restarted, and the reply says so. If a step fails, the error names what has and has not happened and
the exact commands to finish or roll back.

Then the verdict (verifier "secret-consumers-rolled-out", watched for `aws.rollout_timeout_seconds`):
every restarted consumer's rollout complete by `kubectl rollout status` rules (as "rollout-complete"),
a consumer at 0 replicas counting as rolled out, and no pod of the new template crash-looping or
restarting — the sign that the new value is wrong for it. There is no Undo: AWSPREVIOUS still holds
the old value, but putting it back is a second rotation, a decision of its own (the thread says how).

The value itself lives only in local variables of `_rotate`: replies, progress lines, errors, the audit
store and logs carry version ids and deployment names, never the value.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from datetime import UTC, datetime
from typing import Any

from base.text import plural
from base.vocabulary import RESTARTED_AT
from commands.args import pos
from commands.base import CommandError, Context, Kind, Role, command
from commands.parts import failures, optional
from commands.reply import Change, Note, Outcome, Probe, Reply, Table, Verification
from commands.support.kube_verify import rollout_state, why_waiting
from commands.verify import verifier
from integrations.errors import IntegrationError, NotFound, Unavailable

Obj = dict[str, Any]


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
        no_undo="the previous value is kept as AWSPREVIOUS, but rolling it back is a second rotation that needs "
                "its own decision",
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
    rows = [[dep, f"rollout restart at {stamp}"] if dep in restarted else [dep, "at 0 replicas: nothing to restart"]
            for dep in consumers]
    detail = Reply(title=f"Rotated {name}", parts=[
        Table(["DEPLOYMENT", "RESTART"], rows),
        Note(_rollback(name, old, new, list(restarted)))], level="ok")
    done = [f"{', '.join(restarted)} restarted"] if restarted else []
    done += [f"{', '.join(idle)} at 0 replicas: nothing to restart"] if idle else []
    verify = Verification("secret-consumers-rolled-out",
                          {"deployments": {d: restarted.get(d, 0) for d in consumers}, "stamp": stamp},
                          timeout=float(ctx.settings.aws.rollout_timeout_seconds), look_further="/cf pods")
    return Outcome(before=f"AWSCURRENT {old}", after=f"AWSCURRENT {new} (AWSPREVIOUS {old}); {'; '.join(done)}",
                   detail=detail, verify=verify)


async def _idle(ctx: Context, dep: str) -> bool:
    """True if the deployment is at 0 replicas; a deployment that cannot be read is tried (and reported) anyway."""
    try:
        obj = await ctx.kube.get_deployment(ctx.namespace, dep)
    except IntegrationError:
        return False
    return int(obj.get("spec", {}).get("replicas", 1)) == 0


async def _restart_all(ctx: Context, name: str, consumers: list[str], old: str, new: str
                       ) -> tuple[str, dict[str, int]]:
    """Restart each consumer that has pods; returns the restart stamp and the deployments restarted, each with
    the generation its restart made (what its rollout is judged from)."""
    at = datetime.now(UTC)
    done: dict[str, int] = {}
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
                + _rollback(name, old, new, list(done))) from None
        stamp = patched["spec"]["template"]["metadata"]["annotations"].get(RESTARTED_AT, stamp)
        done[dep] = int(patched.get("metadata", {}).get("generation") or 1)  # 0 would mean "not restarted"
    return stamp, done


# --- the verdict ---------------------------------------------------------------------------------------


def _crash_looping(pods: list[Obj], stamp: str) -> str:
    """The pods of the new template (restarted at `stamp`) that crash-loop or have restarted, as one line."""
    bad = []
    for pod in pods:
        meta = pod.get("metadata") or {}
        if (meta.get("annotations") or {}).get(RESTARTED_AT) != stamp or meta.get("deletionTimestamp"):
            continue
        statuses = (pod.get("status") or {}).get("containerStatuses") or []
        restarts = sum(int(c.get("restartCount") or 0) for c in statuses)
        looping = any(((c.get("state") or {}).get("waiting") or {}).get("reason") == "CrashLoopBackOff"
                      for c in statuses)
        if looping or restarts:
            bad.append(f"{meta.get('name')} ({'CrashLoopBackOff, ' if looping else ''}"
                       f"{plural(restarts, 'restart')})")
    return f"{plural(len(bad), 'new pod')} crash-looping: {', '.join(bad[:3])}" if bad else ""


def _selector(dep: Obj) -> str:
    labels = (dep.get("spec", {}).get("selector") or {}).get("matchLabels") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


@verifier("secret-consumers-rolled-out", needs=["kube"])
async def consumers_rolled_out(ctx: Context, deployments: dict[str, int], stamp: str) -> Probe:
    """Every consumer rolled out ("rollout-complete"'s rules; at 0 replicas there is nothing to roll) and no pod
    of the restart's template crash-looping. `deployments`: name -> the generation its restart made (0: idle)."""
    live = {d["metadata"]["name"]: d for d in await ctx.kube.list_deployments(ctx.namespace)}
    done_lines, wrong = [], []
    for name, generation in sorted(deployments.items()):
        dep = live.get(name)
        if dep is None:
            wrong.append(f"deployment/{name} no longer exists")
            continue
        if int((dep.get("spec") or {}).get("replicas") or 0) == 0:
            done_lines.append(f"{name} at 0 replicas: nothing to roll")
            continue
        rolled, line = rollout_state(dep, generation)
        pods = await ctx.kube.list_pods(ctx.namespace, _selector(dep))
        looping = _crash_looping(pods, stamp) if generation else ""
        if rolled and not looping:
            done_lines.append(line)
            continue
        parts = [] if rolled else [line]
        if looping:
            parts.append(f"{name}: {looping}")
        if not rolled and (why := why_waiting(pods)):
            parts.append(why)
        wrong.append("; ".join(parts))
    if not wrong:
        return Probe(done=True, progress="; ".join(done_lines) + "; no new pod crash-looping")
    text = " · ".join(wrong[:4]) + (f" · and {len(wrong) - 4} more" if len(wrong) > 4 else "")
    return Probe(done=False, progress=text, problem=text)
