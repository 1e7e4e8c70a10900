"""Restore the namespace's configuration from a `backup config` (the runbook's "Restore configuration").

The runbook restores with `kubectl apply -f collaboration-backup-DATE.yaml`. `restore config` does
what that means, inside the approval flow:

1. Which backup: the one named (its file name, as uploaded to the thread of `/cf backup config`), or
   the latest the bot made for this namespace, read from the bot's store (bot/artefacts.py says why
   not from Slack). The name is pinned to the request, so the approval restores the backup the
   approver saw even if someone makes a newer one meanwhile (the runbook's recovery starts with one).
2. What would change is asked of the API server itself, as `kubectl diff --server-side` does: each
   object goes as a server-side dry run (`dryRun=All`) — a create when it is missing, else a
   server-side apply (field manager `cf`, conflicts forced) — and the answer is compared with the
   live object. So the diff is what the server would store: its defaults filled in, and the fields
   the backup does not set kept as they are.
3. Never restored, and listed as skipped: Secrets (a backup holds `<redacted>` for every value; a
   missing one is named, to be recreated from the secret store), Jobs (creating a Job runs it again),
   kinds the bot does not restore, objects of another namespace. Fields the cluster manages are left
   out of what is applied: `spec.replicas` of a workload an autoscaler scales, a Deployment's revision
   and last-applied annotations, and the `restartedAt` stamp (an old one would only restart pods).
4. After approval: the dry run again (the live state may have moved since), the writes in dependency
   order (`integrations.kube.RESTORABLE`: ServiceAccounts, ConfigMaps and claims before the workloads
   that use them). Nothing is deleted: objects made since the backup stay.
5. The verdict (verifier "restore-matches"): the objects written, read back through the same dry run,
   must have nothing left to change. It is the platform's watch, not a check inside `apply`, so there is
   one verdict (on the message, in the thread and the audit), it survives a restart, and it says what
   still differs. There is no Undo: the state before was not backed up by this request, and putting it
   back would be a restore of its own (from a `backup config` made first, as the runbook begins).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

import yaml

from base.text import BACKTICK_STANDIN, code, literal, plural
from base.vocabulary import RESTARTED_AT
from commands.args import pos
from commands.base import CommandError, Context, Kind, Role, command
from commands.reply import Change, Outcome, Probe, Reply, Table, Verification
from commands.support.backups import ARTEFACT
from commands.verify import verifier
from integrations.errors import IntegrationError
from integrations.kube import LAST_APPLIED, REDACTED, RESTORABLE

AREA = "Security"
SERVER_FIELDS = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink")
MANAGED_ANNOTATIONS = ("deployment.kubernetes.io/revision", LAST_APPLIED)
SCALED = ("Deployment", "StatefulSet")  # kinds an autoscaler may own `spec.replicas` of
CONCURRENCY = 4  # dry runs in flight at once: a restore must not crowd out the other commands' API calls
SHOWN = 8  # changed objects listed one by one in the approval request
Obj = dict[str, Any]
_MISSING: Any = object()
_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{0,250}$")


def backup_name(raw: str) -> str:
    """A backup's file name as uploaded (`collaboration-backup-20261202-101500.yaml`); `.yaml` optional."""
    name = raw.strip().lower()
    if not _NAME.fullmatch(name):
        raise ValueError("must be a backup's file name, e.g. `collaboration-backup-20261202-101500.yaml`.")
    return name if name.endswith(".yaml") else f"{name}.yaml"


@dataclass
class Plan:
    """One object of the backup: what restoring it would do."""

    kind: str
    name: str
    action: str  # create | change | same | skip | refused
    why: str = ""  # for skip and refused
    changes: list[tuple[str, Any, Any]] = field(default_factory=list)  # (path, live, restored)
    body: Obj | None = None

    @property
    def ref(self) -> str:
        return f"{self.kind.lower()}/{self.name}"

    @property
    def writes(self) -> bool:
        return self.action in ("create", "change")


@command(
    "restore config",
    summary="Restore the namespace's configuration from a `backup config` (Secrets never), after approval.",
    area=AREA,
    args=[pos("BACKUP", backup_name, "a backup's file name from the thread of `/cf backup config` "
              "(default: the latest the bot made)", default=None)],
    kind=Kind.change,
    role=Role.operator,
    example="/cf restore config",
    needs=["kube", "artefacts"],
)
async def restore_config(ctx: Context, backup: str | None = None) -> Change:
    kept = await _backup(ctx, backup)
    items = _items(kept)
    plans = await _plan(ctx, items)
    todo = [p for p in plans if p.writes]
    if not todo:
        raise CommandError(f"Nothing to restore: namespace `{ctx.namespace}` already matches {code(kept.name)}"
                           f"{_skipped_tail(plans)}. Nothing was changed.")
    made = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(kept.created_at))

    async def apply() -> Outcome:  # runs right after this function, on approval: `plans` is the state of now
        return await _restore(ctx, kept.name, items, plans)

    return Change(summary=f"Restore {plural(len(todo), 'object')} of namespace {ctx.namespace} from {kept.name}",
                  current=_counts(plans), desired=f"as in {kept.name} (made {made}, sha256 {kept.sha256[:12]}…)",
                  apply=apply, target=f"namespace/{ctx.namespace}", warnings=_warnings(plans),
                  pinned={"backup": kept.name},
                  no_undo="what the restore overwrote was not saved by it; make a `backup config` first to be "
                          "able to restore that")


async def _backup(ctx: Context, name: str | None) -> Any:
    store = ctx.artefacts
    kept = await (store.get(ARTEFACT, ctx.namespace, name) if name else store.latest(ARTEFACT, ctx.namespace))
    if kept is not None:
        return kept
    if name is None:
        raise CommandError(f"The bot has no backup of namespace `{ctx.namespace}` yet: make one with "
                           "`/cf backup config`. Nothing was changed.")
    recent = await store.recent(ARTEFACT, ctx.namespace)
    known = ", ".join(code(a.name) for a in recent) or "none"
    raise CommandError(f"There is no backup {code(name)} of namespace `{ctx.namespace}`. The latest: {known}. "
                       "Nothing was changed.")


def _items(kept: Any) -> list[Obj]:
    try:
        document = yaml.safe_load(kept.content)
    except yaml.YAMLError:
        document = None
    items = document.get("items") if isinstance(document, dict) else None
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise CommandError(f"{code(kept.name)} is not a `kind: List` of objects; it cannot be restored.")
    return items


# --- the plan: one server-side dry run per object ---------------------------------------------------


async def _plan(ctx: Context, items: list[Obj]) -> list[Plan]:
    """What restoring each object would do, asked of the API server (see the module docstring)."""
    secrets, hpas = await asyncio.gather(ctx.kube.list_secrets(ctx.namespace),
                                         ctx.kube.list_objects("HorizontalPodAutoscaler", ctx.namespace))
    live_secrets = {s["metadata"]["name"] for s in secrets}
    scaled = {(h.get("spec", {}).get("scaleTargetRef") or {}).get("name", "") for h in hpas}
    scaled |= {(i.get("spec", {}).get("scaleTargetRef") or {}).get("name", "") for i in items
               if i.get("kind") == "HorizontalPodAutoscaler"}
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(obj: Obj) -> Plan:
        async with gate:
            return await _plan_one(ctx, obj, live_secrets, scaled)

    plans = await asyncio.gather(*(one(obj) for obj in items))
    order = {kind: i for i, kind in enumerate(RESTORABLE)}
    return sorted(plans, key=lambda p: (order.get(p.kind, len(order)), p.name))


async def _plan_one(ctx: Context, obj: Obj, live_secrets: set[str], scaled: set[str]) -> Plan:
    kind, meta = str(obj.get("kind", "")), obj.get("metadata") or {}
    plan = Plan(kind, str(meta.get("name", "")), "skip")
    skipped = _never(kind, obj, ctx.namespace, live_secrets)
    if skipped:
        plan.why = skipped
        return plan
    plan.body = _body(obj, ctx.namespace, scaled)
    try:
        live = await ctx.kube.read_object(kind, ctx.namespace, plan.name)
        if live is None:
            await ctx.kube.create_object(ctx.namespace, plan.body, dry_run=True)
            plan.action = "create"
            return plan
        would = await ctx.kube.apply_object(ctx.namespace, plan.body, dry_run=True)
    except IntegrationError as exc:
        plan.action, plan.why = "refused", exc.message
        return plan
    plan.changes = _diff(_comparable(live), _comparable(would))
    plan.action = "change" if plan.changes else "same"
    return plan


def _never(kind: str, obj: Obj, namespace: str, live_secrets: set[str]) -> str:
    """Why this object is never restored, or "" when it may be."""
    name = (obj.get("metadata") or {}).get("name")
    if not name:
        return "it has no name"
    if kind == "Secret":
        gone = "" if name in live_secrets else "; it is MISSING from the namespace: recreate it from the secret store"
        return f"its values are `{REDACTED}` in a backup{gone}"
    if kind == "Job":
        return "creating a Job runs it again; rerun it deliberately if it is needed"
    if kind not in RESTORABLE:
        return f"the bot does not restore {kind or 'untyped'} objects"
    other = (obj.get("metadata") or {}).get("namespace")
    if other and other != namespace:
        return f"it belongs to namespace {other}"
    return ""


def _body(obj: Obj, namespace: str, scaled: set[str]) -> Obj:
    """The backup's object as it is applied: no status, no server or cluster-managed fields, no nulls."""
    body: Obj = _no_nulls({k: v for k, v in obj.items() if k != "status"})
    meta = {k: v for k, v in (body.get("metadata") or {}).items() if k not in SERVER_FIELDS}
    meta["namespace"] = namespace
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in MANAGED_ANNOTATIONS}
    meta.pop("annotations", None)
    if annotations:
        meta["annotations"] = annotations
    body["metadata"] = meta
    spec = body.get("spec")
    if isinstance(spec, dict):
        if body.get("kind") in SCALED and meta.get("name") in scaled:
            spec.pop("replicas", None)  # the autoscaler's, not the backup's
        template_meta = (spec.get("template") or {}).get("metadata") or {}
        (template_meta.get("annotations") or {}).pop(RESTARTED_AT, None)
    return body


def _no_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _no_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_no_nulls(v) for v in value]
    return value


def _comparable(obj: Obj) -> Obj:
    out = {k: v for k, v in obj.items() if k != "status"}
    out["metadata"] = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in SERVER_FIELDS}
    return out


def _diff(live: Any, would: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """(path, live value, restored value) for every leaf that differs; lists of named items by name."""
    if isinstance(live, dict) and isinstance(would, dict):
        keys = [*live, *(k for k in would if k not in live)]
        return [d for k in keys
                for d in _diff(live.get(k, _MISSING), would.get(k, _MISSING), f"{path}.{k}" if path else str(k))]
    if isinstance(live, list) and isinstance(would, list) and live != would:
        if _keyed(live) and _keyed(would):
            old, new = {i["name"]: i for i in live}, {i["name"]: i for i in would}
            names = [*old, *(n for n in new if n not in old)]
            return [d for n in names for d in _diff(old.get(n, _MISSING), new.get(n, _MISSING), f"{path}[{n}]")]
        if len(live) == len(would):
            return [d for i, (a, b) in enumerate(zip(live, would, strict=True)) for d in _diff(a, b, f"{path}[{i}]")]
    return [] if live == would else [(path, live, would)]


def _keyed(items: list[Any]) -> bool:
    """A list of objects with unique names (containers, env, volumes, ports...)."""
    names = [i.get("name") if isinstance(i, dict) else None for i in items]
    return all(isinstance(n, str) for n in names) and len(set(names)) == len(names)


# --- the restore, after approval --------------------------------------------------------------------


async def _restore(ctx: Context, name: str, items: list[Obj], before: list[Plan]) -> Outcome:
    """Write what the approval-time plan found; the verdict reads it back (verifier "restore-matches")."""
    todo = [p for p in before if p.writes]
    done: list[Plan] = []
    failed: list[tuple[Plan, str]] = []
    for plan in todo:
        assert plan.body is not None
        try:
            if plan.action == "create":
                await ctx.kube.create_object(ctx.namespace, plan.body)
            else:
                await ctx.kube.apply_object(ctx.namespace, plan.body)
        except IntegrationError as exc:
            failed.append((plan, exc.message))
        else:
            done.append(plan)
    if failed:
        for plan, why in failed:
            await ctx.progress(f":x: {code(plan.ref)}: {literal(why, 300, one_line=True)}")
        raise CommandError(f"Restored {len(done)} of {plural(len(todo), 'object')} from {code(name)}; "
                           f"{len(failed)} failed (listed above). Run `/cf restore config {name}` again to see "
                           "what still differs.")
    rows = [[p.ref, "created" if p.action == "create" else "changed"] for p in done]
    made = f"{sum(p.action == 'create' for p in done)} created, {sum(p.action == 'change' for p in done)} changed"
    detail = Reply(title=f"Restored from {code(name)}: {made}", level="ok", parts=[Table(["OBJECT", "RESULT"], rows)])
    verify = Verification("restore-matches", {"backup": name, "objects": [p.ref for p in done]},
                          look_further=f"/cf restore config {name}")
    return Outcome(before=_counts(before), after=made, detail=detail, verify=verify)


@verifier("restore-matches", needs=["kube", "artefacts"])
async def restore_matches(ctx: Context, backup: str, objects: list[str]) -> Probe:
    """The restored objects, read back through the same server-side dry run, have nothing left to change."""
    kept = await ctx.artefacts.get(ARTEFACT, ctx.namespace, backup)
    if kept is None:
        text = f"the backup {backup} is no longer kept, so nothing can be compared with it"
        return Probe(done=False, progress=text, problem=text)
    wanted = set(objects)
    plans = await _plan(ctx, [i for i in _items(kept) if _ref(i) in wanted])
    left = [p for p in plans if p.action != "same"]
    if not left and len(plans) == len(wanted):
        return Probe(done=True, progress=f"{plural(len(plans), 'object')} read back equal to {backup}")
    lines = [_left_line(p) for p in left[:3]] + (["and more"] if len(left) > 3 else [])
    text = "; ".join(lines) or f"{len(wanted) - len(plans)} restored objects are no longer in {backup}"
    return Probe(done=False, progress=text, problem=text)


def _ref(obj: Obj) -> str:
    return f"{str(obj.get('kind', '')).lower()}/{(obj.get('metadata') or {}).get('name', '')}"


def _left_line(plan: Plan) -> str:
    if plan.action == "create":
        return f"{plan.ref} is missing again"
    if plan.action == "change":
        return _change_line(plan)
    return _plain(f"{plan.ref} could not be compared ({plan.why})", 300)


# --- how a plan reads in the request (plain text: the approval message escapes it) ------------------


def _counts(plans: list[Plan]) -> str:
    n = {a: sum(p.action == a for p in plans) for a in ("create", "change", "same", "skip", "refused")}
    differ = n["create"] + n["change"]
    text = f"{plural(differ, 'object')} differ from the backup ({n['create']} missing, {n['change']} changed)"
    text += f"; {n['same']} as in the backup, {n['skip']} skipped"
    return text + (f", {n['refused']} refused by the dry run" if n["refused"] else "")


def _warnings(plans: list[Plan]) -> list[str]:
    lines: list[str] = []
    created = [p.ref for p in plans if p.action == "create"]
    if created:
        lines.append(_plain("Create (missing now): " + ", ".join(created), 1500))
    changed = [p for p in plans if p.action == "change"]
    lines += [_change_line(p) for p in changed[:SHOWN]]
    if len(changed) > SHOWN:
        lines.append(f"…and {plural(len(changed) - SHOWN, 'more object')} to change.")
    autoscaled = [p.ref for p in plans if p.writes and p.body is not None and p.kind in SCALED
                  and "replicas" not in (p.body.get("spec") or {})]
    if autoscaled:
        lines.append(_plain("Replicas left to their autoscalers: " + ", ".join(autoscaled), 600))
    skipped: dict[str, list[str]] = {}
    for p in plans:
        if p.action == "skip":
            skipped.setdefault(p.why, []).append(p.ref)
    lines += [_plain(f"Skipped, not restored: {', '.join(refs)} ({why})", 1000) for why, refs in skipped.items()]
    lines += [_plain(f"Refused by the API server's dry run, not restored: {p.ref} ({p.why})", 600)
              for p in plans if p.action == "refused"]
    lines.append("Nothing is deleted: objects made since the backup stay.")
    return lines


def _change_line(plan: Plan) -> str:
    shown = "; ".join(f"{path}: {_show(old)} → {_show(new)}" for path, old, new in plan.changes[:2])
    more = f"; and {plural(len(plan.changes) - 2, 'more field')}" if len(plan.changes) > 2 else ""
    return _plain(f"Change {plan.ref}: {shown}{more}", 1000)


def _skipped_tail(plans: list[Plan]) -> str:
    skipped = [p for p in plans if p.action == "skip"]
    missing = [code(p.name) for p in skipped if p.kind == "Secret" and "MISSING" in p.why]
    if not skipped:
        return ""
    text = f" ({plural(len(skipped), 'object')} skipped: Secrets and Jobs are never restored"
    return text + (f"; missing Secrets: {', '.join(missing)}, to recreate from the secret store)" if missing else ")")


def _show(value: Any) -> str:
    if value is _MISSING:
        return "(unset)"
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))


def _plain(text: str, limit: int) -> str:
    """Outside text for a field the renderer escapes: one line, clipped, no backtick to open a code span."""
    text = " ".join(text.split()).replace("`", BACKTICK_STANDIN)
    return text if len(text) <= limit else text[: limit - 1] + "…"
