"""Scaling and restarts (the runbook's "Scaling Procedures"): changes, so they go through approval."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from base.text import plural
from base.vocabulary import RESTARTED_AT
from commands.args import k8s_label, pos, whole_number
from commands.base import CommandError, Context, Kind, Role, command
from commands.parts import Failed, optional
from commands.reply import Change, Outcome, Undo
from commands.support.kube import check_replicas, deployment_ready, hpa_for, hpa_replicas
from commands.support.kube_verify import REVISION, replicas_verified, rollout_verified
from integrations.errors import NotFound

AREA = "Scaling"


async def _deployment(ctx: Context, name: str) -> dict[str, Any]:
    try:
        return dict(await ctx.kube.get_deployment(ctx.namespace, name))
    except NotFound:
        names = sorted(d["metadata"]["name"] for d in await ctx.kube.list_deployments(ctx.namespace))
        known = ", ".join(f"`{n}`" for n in names) or "none"
        raise CommandError(
            f"Deployment `{name}` was not found in namespace `{ctx.namespace}`. Deployments there: {known}."
        ) from None


@command(
    "scale",
    summary="Set a deployment's replica count (kubectl scale), after approval.",
    area=AREA,
    args=[
        pos("DEPLOYMENT", k8s_label, "the deployment to scale"),
        pos("REPLICAS", whole_number, "the desired number of replicas"),
    ],
    kind=Kind.change,
    role=Role.operator,
    example="/cf scale graphql-api 10",
    needs=["kube"],
)
async def scale(ctx: Context, deployment: str, replicas: int) -> Change:
    check_replicas(ctx, replicas)
    if replicas == 0 and not ctx.has_role(Role.admin):
        raise CommandError("Scaling to 0 takes the service down; only an admin may request it (see `/cf isolate`).")
    dep = await _deployment(ctx, deployment)
    current = int(dep.get("spec", {}).get("replicas", 0))
    target = f"deployment/{deployment} in {ctx.namespace}"
    warnings = []
    if current == replicas:
        warnings.append(f"It already has {plural(current, 'replica')}; approving changes nothing.")
    warnings += await _autoscaler_warnings(ctx, deployment)

    async def apply() -> Outcome:
        before = int((await ctx.kube.get_deployment(ctx.namespace, deployment)).get("spec", {}).get("replicas", 0))
        scaled = await ctx.kube.scale_deployment(ctx.namespace, deployment, replicas)
        after = int(scaled.get("spec", {}).get("replicas", replicas))
        return Outcome(before=plural(before, "replica"), after=plural(after, "replica"),
                       verify=replicas_verified({deployment: replicas}, f"/cf describe deployment {deployment}"),
                       undo=Undo("scale", {"deployment": deployment, "replicas": before},
                                 f"scale deployment/{deployment} back to {plural(before, 'replica')}"))

    return Change(
        summary=f"Scale {target} from {current} to {replicas}",
        current=f"{plural(current, 'replica')} ({deployment_ready(dep)} ready)",
        basis=plural(current, "replica"),
        desired=plural(replicas, "replica"),
        apply=apply,
        target=target,
        warnings=warnings,
    )


async def _autoscaler_warnings(ctx: Context, deployment: str) -> list[str]:
    """An HPA that manages the deployment sets its replicas itself: a manual count does not stay."""
    hpas = await optional("Autoscalers", ctx.kube.list_objects("HorizontalPodAutoscaler", ctx.namespace))
    if isinstance(hpas, Failed):  # auxiliary: the request goes on, saying what it could not check
        return [f"{hpas.label}: {hpas.detail} — if an HPA manages this deployment, it will override this count."]
    hpa = hpa_for(hpas, deployment)
    if hpa is None:
        return []
    _, low, high = hpa_replicas(hpa)
    return [f"HPA {hpa['metadata']['name']} manages deployment/{deployment} (min {low}, max {high}): it will "
            f"override this count, setting it between {low} and {high} by its metrics. Change the HPA to keep it."]


def restart_stamp(now: datetime, last: str) -> datetime:
    """The `restartedAt` moment for a restart now. The stamp has whole seconds (as kubectl writes it), so a
    restart in the same second as the last one would leave the pod template unchanged: no new ReplicaSet,
    no pod replaced, yet reported done. Then it takes the next second (found by bench/soak.py)."""
    if now.strftime("%Y-%m-%dT%H:%M:%SZ") == last:
        return now + timedelta(seconds=1)
    return now


@command(
    "restart",
    summary="Rolling restart of a deployment (kubectl rollout restart), after approval.",
    area=AREA,
    args=[pos("DEPLOYMENT", k8s_label, "the deployment to restart")],
    kind=Kind.change,
    role=Role.operator,
    example="/cf restart websocket-service",
    needs=["kube"],
)
async def restart(ctx: Context, deployment: str) -> Change:
    dep = await _deployment(ctx, deployment)
    annotations = dep.get("spec", {}).get("template", {}).get("metadata", {}).get("annotations") or {}
    last = annotations.get(RESTARTED_AT, "never")

    revision = (dep.get("metadata", {}).get("annotations") or {}).get(REVISION)

    async def apply() -> Outcome:
        at = restart_stamp(datetime.now(UTC), last)
        cause = f"cf restart {deployment} (request {ctx.request_id})" if ctx.request_id else None
        patched = await ctx.kube.restart_deployment(ctx.namespace, deployment, at, cause=cause)
        stamp = patched["spec"]["template"]["metadata"]["annotations"][RESTARTED_AT]
        undo = (Undo("rollout undo", {"deployment": deployment, "to_revision": int(revision)},
                     f"roll deployment/{deployment} back to revision {revision} (its template before the restart)")
                if revision and revision.isdigit() else None)
        return Outcome(before=f"last restarted {last}", after=f"rollout restart at {stamp}",
                       verify=rollout_verified({deployment: patched}, f"/cf describe deployment {deployment}"),
                       undo=undo)

    return Change(
        summary=f"Rolling restart of deployment/{deployment} in {ctx.namespace}",
        current=f"{deployment_ready(dep)} ready, last restarted {last}",
        basis=f"revision {revision or '?'}, last restarted {last}",
        desired="every pod replaced, one batch at a time",
        apply=apply,
        target=f"deployment/{deployment} in {ctx.namespace}",
    )
