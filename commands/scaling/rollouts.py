"""Rollouts and namespace-wide scaling: `rollout history|undo`, `restart all`, `scale all`, `hpa`.

`rollout undo` is kubectl's: the target revision's ReplicaSet template (without its pod-template-hash
label) and its annotations are written back to the Deployment with one JSON patch, guarded by a
`test` of the resourceVersion read at approval time, so a deploy that lands in between is not
silently overwritten. The Deployment controller then rolls forward to that template as a new revision.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from base.text import literal, plural
from commands.args import k8s_label, opt, pos, positive_int, whole_number
from commands.base import CommandError, Context, Kind, Role, command
from commands.parts import Failed, optional
from commands.reply import Change, Note, Outcome, Reply, Table, Undo
from commands.support.kube import age, check_replicas, deployment_ready, find_deployment, hpa_at_max
from commands.support.kube_verify import replicas_verified, rollout_verified
from integrations.errors import IntegrationError

AREA = "Scaling"
REVISION = "deployment.kubernetes.io/revision"
CHANGE_CAUSE = "kubernetes.io/change-cause"
HASH_LABEL = "pod-template-hash"
# annotations kubectl keeps from the Deployment instead of copying them from the old ReplicaSet
SKIP_ANNOTATIONS = {"kubectl.kubernetes.io/last-applied-configuration", REVISION,
                    "deployment.kubernetes.io/revision-history", "deployment.kubernetes.io/desired-replicas",
                    "deployment.kubernetes.io/max-replicas", "deprecated.deployment.rollback.to"}
Obj = dict[str, Any]


def _revision(obj: Obj) -> int:
    try:
        return int((obj.get("metadata", {}).get("annotations") or {}).get(REVISION, 0))
    except ValueError:
        return 0


def _images(template: Obj) -> str:
    return ", ".join(str(c.get("image", "")) for c in template.get("spec", {}).get("containers") or [])


def _without_hash(template: Obj) -> Obj:
    out = {**template, "metadata": dict(template.get("metadata") or {})}
    labels = {k: v for k, v in (out["metadata"].get("labels") or {}).items() if k != HASH_LABEL}
    out["metadata"]["labels"] = labels
    return out


async def _history(ctx: Context, dep: Obj) -> list[Obj]:
    """The deployment's ReplicaSets (owned by its uid), oldest revision first."""
    selector = ",".join(f"{k}={v}" for k, v in (dep["spec"].get("selector", {}).get("matchLabels") or {}).items())
    uid = dep["metadata"].get("uid")
    items = await ctx.kube.list_objects("ReplicaSet", ctx.namespace, selector)
    owned = [rs for rs in items if any(o.get("uid") == uid for o in rs["metadata"].get("ownerReferences") or [])]
    return sorted(owned, key=_revision)


@command(
    "rollout history",
    summary="A deployment's revisions with change cause and image (kubectl rollout history); without a name, "
            "every deployment's.",
    area=AREA,
    args=[pos("DEPLOYMENT", k8s_label, "the deployment (default: every deployment in the namespace)", default=None)],
    example="/cf rollout history graphql-api",
    needs=["kube"],
)
async def rollout_history(ctx: Context, deployment: str | None = None) -> Reply:
    if deployment is None:
        return await _history_of_all(ctx)
    dep = await find_deployment(ctx, deployment)
    current = _revision(dep)
    rows = [[str(_revision(rs)) + (" (current)" if _revision(rs) == current else ""),
             str((rs["metadata"].get("annotations") or {}).get(CHANGE_CAUSE, "<none>")),
             _images(rs["spec"].get("template", {})), str(rs.get("spec", {}).get("replicas", 0)),
             age(rs["metadata"].get("creationTimestamp"))] for rs in await _history(ctx, dep)]
    table = Table(["REVISION", "CHANGE-CAUSE", "IMAGE", "REPLICAS", "AGE"], rows, empty="No revisions recorded.")
    return Reply(title=f"deployment/{deployment}: {plural(len(rows), 'revision')}, current {current}",
                 parts=[table, Note(f"`/cf rollout undo {deployment}` goes back one revision; "
                                    "`--to-revision N` to a given one.")])


async def _history_of_all(ctx: Context) -> Reply:
    """`kubectl rollout history deployment -n NS`: every deployment's revisions, newest deploy first.

    Two list calls (deployments, replica sets) whatever the number of deployments; a ReplicaSet belongs
    to the deployment whose uid it names as owner, as kubectl matches them.
    """
    deps, sets = await asyncio.gather(ctx.kube.list_deployments(ctx.namespace),
                                      ctx.kube.list_objects("ReplicaSet", ctx.namespace))
    owned: dict[str, list[Obj]] = {}
    for rs in sets:
        for ref in rs["metadata"].get("ownerReferences") or []:
            if ref.get("kind") == "Deployment" and ref.get("controller"):
                owned.setdefault(str(ref.get("uid")), []).append(rs)

    def latest(dep: Obj) -> str:
        revisions = owned.get(str(dep["metadata"].get("uid")), [])
        return max((str(rs["metadata"].get("creationTimestamp", "")) for rs in revisions), default="")

    rows, recent = [], []
    for dep in sorted(deps, key=latest, reverse=True):
        name, current = dep["metadata"]["name"], _revision(dep)
        history = sorted(owned.get(str(dep["metadata"].get("uid")), []), key=_revision)
        for rs in history:
            rows.append([name, str(_revision(rs)) + (" (current)" if _revision(rs) == current else ""),
                         str((rs["metadata"].get("annotations") or {}).get(CHANGE_CAUSE, "<none>")),
                         _images(rs["spec"].get("template", {})), age(rs["metadata"].get("creationTimestamp"))])
        if history:
            recent.append(f"{literal(name)} {age(history[-1]['metadata'].get('creationTimestamp'))} ago")
    table = Table(["DEPLOYMENT", "REVISION", "CHANGE-CAUSE", "IMAGE", "AGE"], rows,
                  empty=f"No deployments in namespace `{ctx.namespace}`.")
    parts: list[Any] = [table]
    if recent:
        parts.append(Note("Latest revision of each, newest first: " + ", ".join(recent[:8])
                          + (" …" if len(recent) > 8 else "") + ". `/cf rollout undo DEPLOYMENT` goes back one."))
    return Reply(title=f"Rollout history of {plural(len(deps), 'deployment')} in namespace `{ctx.namespace}`: "
                       f"{plural(len(rows), 'revision')}", parts=parts)


def _undo_target(history: list[Obj], current: int, to_revision: int | None) -> Obj:
    if to_revision:
        found = next((rs for rs in history if _revision(rs) == to_revision), None)
        if found is None:
            known = ", ".join(str(_revision(rs)) for rs in history) or "none"
            raise CommandError(f"Revision {to_revision} is not in the history (revisions: {known}). "
                               "Nothing was changed.")
        return found
    older = [rs for rs in history if _revision(rs) < current]
    if not older:
        raise CommandError("There is no earlier revision to roll back to. Nothing was changed.")
    return older[-1]


def _undo_patch(dep: Obj, rs: Obj) -> list[Obj]:
    kept = {k: v for k, v in (dep["metadata"].get("annotations") or {}).items() if k in SKIP_ANNOTATIONS}
    copied = {k: v for k, v in (rs["metadata"].get("annotations") or {}).items() if k not in SKIP_ANNOTATIONS}
    return [
        {"op": "test", "path": "/metadata/resourceVersion", "value": dep["metadata"]["resourceVersion"]},
        {"op": "replace", "path": "/spec/template", "value": _without_hash(rs["spec"]["template"])},
        {"op": "replace", "path": "/metadata/annotations", "value": {**kept, **copied}},
    ]


def _to_revision(raw: str) -> int:
    value = whole_number(raw)
    if value < 0:
        raise ValueError("must be 0 (the previous revision) or a revision number.")
    return value


@command(
    "rollout undo",
    summary="Roll a deployment back to the previous (or a given) revision (kubectl rollout undo).",
    area=AREA,
    args=[pos("DEPLOYMENT", k8s_label, "the deployment"),
          opt("--to-revision", _to_revision, "the revision to go back to (default: the previous one)", metavar="N")],
    kind=Kind.change,
    role=Role.operator,
    example="/cf rollout undo graphql-api",
    needs=["kube"],
)
async def rollout_undo(ctx: Context, deployment: str, to_revision: int | None = None) -> Change:
    dep = await find_deployment(ctx, deployment)
    current = _revision(dep)
    target = _undo_target(await _history(ctx, dep), current, to_revision)
    if _without_hash(target["spec"]["template"]) == _without_hash(dep["spec"]["template"]):
        raise CommandError(f"deployment/{deployment} already runs the template of revision {_revision(target)}; "
                           "nothing to roll back. Nothing was changed.")
    rev = _revision(target)

    async def apply() -> Outcome:
        fresh = await find_deployment(ctx, deployment)
        chosen = _undo_target(await _history(ctx, fresh), _revision(fresh), rev)
        before = f"revision {_revision(fresh)} ({_images(fresh['spec']['template'])})"
        patched = await ctx.kube.patch_deployment(ctx.namespace, deployment, _undo_patch(fresh, chosen))
        after = f"template of revision {rev} ({_images(patched['spec']['template'])}), rolling out"
        back = _revision(fresh)
        return Outcome(before=before, after=after,
                       verify=rollout_verified({deployment: patched}, f"/cf describe deployment {deployment}"),
                       undo=Undo("rollout undo", {"deployment": deployment, "to_revision": back},
                                 f"roll deployment/{deployment} forward again to revision {back}"))

    cause = (target["metadata"].get("annotations") or {}).get(CHANGE_CAUSE, "no change cause")
    return Change(summary=f"Roll back deployment/{deployment} from revision {current} to revision {rev}",
                  current=f"revision {current}: {_images(dep['spec']['template'])}",
                  desired=f"revision {rev}: {_images(target['spec']['template'])} ({cause})",
                  apply=apply, target=f"deployment/{deployment} in {ctx.namespace}")


# --- the whole namespace -------------------------------------------------------------------------


async def _all_deployments(ctx: Context) -> list[Obj]:
    deps = sorted(await ctx.kube.list_deployments(ctx.namespace), key=lambda d: d["metadata"]["name"])
    if not deps:
        raise CommandError(f"There are no deployments in namespace `{ctx.namespace}`. Nothing was changed.")
    return deps


async def _each(names: list[str], action: Any) -> tuple[list[str], list[str]]:
    """Run `action(name)` for every deployment at once: (done, failed with reasons)."""
    results = await asyncio.gather(*(action(n) for n in names), return_exceptions=True)
    done = [n for n, r in zip(names, results, strict=True) if not isinstance(r, BaseException)]
    failed = [f"{n} ({r.message if isinstance(r, IntegrationError) else type(r).__name__})"
              for n, r in zip(names, results, strict=True) if isinstance(r, BaseException)]
    return done, failed


def _finish(verb: str, done: list[str], failed: list[str], before: str, after: str) -> Outcome:
    if failed:
        raise CommandError(f"{verb} failed for {plural(len(failed), 'deployment')}: {'; '.join(failed)}. "
                           f"Done for {', '.join(done) or 'none'}.")
    return Outcome(before=before, after=after)


@command(
    "restart all",
    summary="Rolling restart of every deployment in the namespace (kubectl rollout restart deployment).",
    area=AREA,
    kind=Kind.change,
    role=Role.operator,
    example="/cf restart all",
    needs=["kube"],
)
async def restart_all(ctx: Context) -> Change:
    deps = await _all_deployments(ctx)
    names = [d["metadata"]["name"] for d in deps]

    async def apply() -> Outcome:
        at = datetime.now(UTC)
        current = [d["metadata"]["name"] for d in await _all_deployments(ctx)]
        done, failed = await _each(current, lambda n: ctx.kube.restart_deployment(ctx.namespace, n, at))
        stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
        outcome = _finish("Restart", done, failed, f"{plural(len(current), 'deployment')} running",
                          f"{plural(len(done), 'deployment')} restarting (restartedAt {stamp})")
        return replace(outcome, verify=rollout_verified(dict.fromkeys(done, 0), "/cf pods"))

    ready = ", ".join(f"{d['metadata']['name']} {deployment_ready(d)}" for d in deps)
    return Change(summary=f"Rolling restart of all {len(names)} deployments in {ctx.namespace}",
                  current=ready, desired="every pod of every deployment replaced, one batch at a time",
                  apply=apply, target=f"deployments in {ctx.namespace}", basis=", ".join(sorted(names)),
                  no_undo="a restart replaces pods, there is nothing to put back; roll one deployment back with "
                          "`/cf rollout undo DEPLOYMENT` if its new pods misbehave.")


@command(
    "scale all",
    summary="Set every deployment in the namespace to N replicas (the runbook's scale-all loop).",
    area=AREA,
    args=[pos("REPLICAS", positive_int, "the replica count for every deployment")],
    kind=Kind.change,
    role=Role.operator,
    example="/cf scale all 5",
    needs=["kube"],
)
async def scale_all(ctx: Context, replicas: int) -> Change:
    check_replicas(ctx, replicas, lowest=1)
    deps = await _all_deployments(ctx)
    hpas = await optional("Autoscalers", ctx.kube.list_objects("HorizontalPodAutoscaler", ctx.namespace))
    managed = {} if isinstance(hpas, Failed) else {
        h["spec"]["scaleTargetRef"]["name"]: h for h in hpas if h["spec"]["scaleTargetRef"].get("kind") == "Deployment"}
    warnings = [f"{name} is managed by HPA {h['metadata']['name']} (min {h['spec'].get('minReplicas', 1)}, "
                f"max {h['spec']['maxReplicas']}); it will move it back within its range."
                for name, h in sorted(managed.items())]
    if isinstance(hpas, Failed):  # the HPA list is auxiliary: the request goes on, saying what it could not check
        warnings.append(f"{hpas.label}: {hpas.detail} — a deployment an HPA manages would be moved back "
                        "within its range.")
    lowered = [f"{d['metadata']['name']} {d['spec'].get('replicas', 0)} → {replicas}" for d in deps
               if int(d["spec"].get("replicas") or 0) > replicas]
    if lowered:
        warnings.insert(0, f"Lowers {plural(len(lowered), 'deployment')}: {', '.join(lowered)}.")
    current = ", ".join(f"{d['metadata']['name']} {d['spec'].get('replicas', 0)}" for d in deps)

    async def apply() -> Outcome:
        names = [d["metadata"]["name"] for d in await _all_deployments(ctx)]
        done, failed = await _each(names, lambda n: ctx.kube.scale_deployment(ctx.namespace, n, replicas))
        outcome = _finish("Scaling", done, failed, current, f"{plural(len(done), 'deployment')} at "
                          f"{plural(replicas, 'replica')}")
        return replace(outcome, verify=replicas_verified(dict.fromkeys(done, replicas), "/cf pods"))

    return Change(summary=f"Scale all {len(deps)} deployments in {ctx.namespace} to {replicas}",
                  current=current, desired=f"every deployment at {plural(replicas, 'replica')}", apply=apply,
                  target=f"deployments in {ctx.namespace}", warnings=warnings,
                  no_undo=f"it set each deployment differently; the counts before were {current} — put one back "
                          "with `/cf scale DEPLOYMENT N`.")


@command(
    "hpa",
    summary="Horizontal pod autoscalers: targets, current use, min/max and replicas (kubectl get hpa).",
    area=AREA,
    aliases=["get hpa"],
    example="/cf hpa",
    needs=["kube"],
)
async def hpa(ctx: Context) -> Reply:
    items = sorted(await ctx.kube.list_objects("HorizontalPodAutoscaler", ctx.namespace),
                   key=lambda h: h["metadata"]["name"])
    rows, notes = [], []
    for h in items:
        spec, status = h.get("spec", {}), h.get("status", {})
        ref = spec.get("scaleTargetRef", {})
        current, cap = int(status.get("currentReplicas") or 0), int(spec.get("maxReplicas") or 0)
        rows.append([h["metadata"]["name"], f"{ref.get('kind', '')}/{ref.get('name', '')}", _targets(h),
                     str(spec.get("minReplicas", 1)), str(cap), str(current),
                     age(h["metadata"].get("creationTimestamp"))])
        if hpa_at_max(h):
            notes.append(f"{h['metadata']['name']} is at its maximum ({cap}); raise maxReplicas or scale the nodes.")
    table = Table(["NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE"], rows,
                  empty=f"No autoscalers in namespace `{ctx.namespace}`.")
    parts: list[Any] = [table, *(Note(n) for n in notes)]
    return Reply(title=f"{plural(len(rows), 'autoscaler')} in namespace `{ctx.namespace}`", parts=parts,
                 level="warn" if notes else "info")


def _targets(h: Obj) -> str:
    """`cpu: 45%/70%`, as kubectl prints a Resource/Utilization metric."""
    current = {m.get("resource", {}).get("name"): m.get("resource", {}).get("current", {})
               for m in h.get("status", {}).get("currentMetrics") or [] if m.get("type") == "Resource"}
    out = []
    for m in h.get("spec", {}).get("metrics") or []:
        if m.get("type") != "Resource":
            out.append(f"{m.get('type', '?').lower()}: -")
            continue
        name, target = m["resource"]["name"], m["resource"].get("target", {})
        now = current.get(name, {}).get("averageUtilization")
        want = target.get("averageUtilization")
        out.append(f"{name}: {f'{now}%' if now is not None else '<unknown>'}/{f'{want}%' if want is not None else '?'}")
    return ", ".join(out) or "<none>"
