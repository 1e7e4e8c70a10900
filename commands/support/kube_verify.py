"""Verifiers for Kubernetes changes: replicas ready, and rollouts complete by `kubectl rollout status` rules.

Both read the namespace's deployments in one call and, only while something is not there yet, the pods
of the deployments still waiting, to say *why* in kube-scheduler's and the kubelet's own words
(`3 Pending: 0/3 nodes are available: 3 Insufficient cpu.`, `1 CrashLoopBackOff`).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from base.text import plural
from commands.base import Context
from commands.reply import Probe, Verification
from commands.verify import verifier

Obj = dict[str, Any]
REVISION = "deployment.kubernetes.io/revision"


def replicas_verified(deployments: dict[str, int], look_further: str) -> Verification:
    """Verified when each deployment has exactly its wanted number of ready replicas."""
    return Verification("deployments-ready", {"deployments": deployments}, look_further=look_further)


def rollout_verified(deployments: dict[str, Obj] | dict[str, int], look_further: str) -> Verification:
    """Verified when each deployment's rollout is complete; values: the patched object (its generation) or 0."""
    generations = {name: (_int(v.get("metadata", {}).get("generation")) if isinstance(v, dict) else _int(v))
                   for name, v in deployments.items()}
    return Verification("rollout-complete", {"deployments": generations}, look_further=look_further)


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _selector(dep: Obj) -> str:
    labels = (dep.get("spec", {}).get("selector") or {}).get("matchLabels") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def why_waiting(pods: list[Obj]) -> str:
    """What keeps pods from being ready, grouped: `3 Pending: 0/3 nodes are available: 3 Insufficient cpu.`"""
    reasons: Counter[str] = Counter()
    for pod in pods:
        if pod.get("metadata", {}).get("deletionTimestamp"):
            continue
        status = pod.get("status") or {}
        conditions = {c.get("type"): c for c in status.get("conditions") or []}
        scheduled = conditions.get("PodScheduled") or {}
        if status.get("phase") == "Pending" and scheduled.get("status") == "False":
            reasons[f"Pending: {scheduled.get('message') or scheduled.get('reason') or 'not scheduled'}"] += 1
            continue
        if (conditions.get("Ready") or {}).get("status") == "True":
            continue
        waiting = [str((c.get("state") or {}).get("waiting", {}).get("reason") or "")
                   for c in status.get("containerStatuses") or []]
        reason = next((w for w in waiting if w), "") or str(status.get("phase") or "not ready")
        reasons[reason if status.get("phase") != "Pending" or reason == "Pending" else f"Pending ({reason})"] += 1
    return " · ".join(f"{n} {reason}" for reason, n in reasons.most_common(3))


async def _explain(ctx: Context, deps: list[Obj]) -> str:
    """Why the waiting deployments' pods are not ready (one pod list per waiting deployment, at most 3)."""
    found = []
    for dep in deps[:3]:
        pods = await ctx.kube.list_pods(ctx.namespace, _selector(dep))
        text = why_waiting(pods)
        if text:
            found.append(text if len(deps) == 1 else f"{dep['metadata']['name']}: {text}")
    return " · ".join(found)


@verifier("deployments-ready", needs=["kube"])
async def deployments_ready(ctx: Context, deployments: dict[str, int]) -> Probe:
    """Ready replicas equal the wanted count for each deployment (and nothing else changed the count)."""
    live = {d["metadata"]["name"]: d for d in await ctx.kube.list_deployments(ctx.namespace)}
    lines, problems, waiting = [], [], []
    for name, want in sorted(deployments.items()):
        dep = live.get(name)
        if dep is None:
            problems.append(f"deployment/{name} no longer exists")
            continue
        spec, status = dep.get("spec") or {}, dep.get("status") or {}
        wanted_now = _int(spec.get("replicas"))
        ready, total = _int(status.get("readyReplicas")), _int(status.get("replicas"))
        updated, available = _int(status.get("updatedReplicas")), _int(status.get("availableReplicas"))
        if wanted_now != want:
            problems.append(f"deployment/{name} now wants {wanted_now}, not {want}: something changed it since "
                            "(an autoscaler or another client)")
        fresh = _int(status.get("observedGeneration")) >= _int(dep.get("metadata", {}).get("generation"))
        if not (fresh and ready == want and available == want and total == want and updated == want):
            waiting.append(dep)
            extra = f", {total - want} old terminating" if total > want else ""
            lines.append(f"{name} {ready}/{want} ready{extra}")
        elif len(deployments) == 1:
            lines.append(f"{name} {ready}/{want} ready")
    if not waiting and not problems:
        summary = lines[0] if lines else f"{plural(len(deployments), 'deployment')} at their wanted count, all ready"
        return Probe(done=True, progress=summary)
    why = await _explain(ctx, waiting) if waiting else ""
    shown = lines[:6] + ([f"and {len(lines) - 6} more"] if len(lines) > 6 else [])
    progress = " · ".join(x for x in [", ".join(shown), why] if x)
    return Probe(done=False, progress=progress, problem="; ".join([*problems, progress] if progress else problems))


def rollout_state(dep: Obj, generation: int) -> tuple[bool, str]:
    """(done, message) for one deployment, by `kubectl rollout status`'s rules (DeploymentStatusViewer)."""
    name = dep["metadata"]["name"]
    spec, status = dep.get("spec") or {}, dep.get("status") or {}
    observed = _int(status.get("observedGeneration"))
    if observed < max(_int(dep["metadata"].get("generation")), generation):
        return False, f"{name}: waiting for the deployment spec update to be observed"
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            return False, f"{name}: exceeded its progress deadline"
    want, updated = _int(spec.get("replicas")), _int(status.get("updatedReplicas"))
    total, available = _int(status.get("replicas")), _int(status.get("availableReplicas"))
    if updated < want:
        return False, f"{name}: {updated} of {want} new replicas updated"
    if total > updated:
        return False, f"{name}: {total - updated} old {'replica' if total - updated == 1 else 'replicas'} " \
                      "pending termination"
    if available < updated:
        return False, f"{name}: {available} of {updated} updated replicas available"
    return True, f"{name} successfully rolled out ({available}/{want} available)"


@verifier("rollout-complete", needs=["kube"])
async def rollout_complete(ctx: Context, deployments: dict[str, int]) -> Probe:
    """Each deployment's rollout (from the generation the change produced) is complete."""
    live = {d["metadata"]["name"]: d for d in await ctx.kube.list_deployments(ctx.namespace)}
    done_lines, waiting_lines, waiting = [], [], []
    for name, generation in sorted(deployments.items()):
        dep = live.get(name)
        if dep is None:
            waiting_lines.append(f"deployment/{name} no longer exists")
            continue
        done, line = rollout_state(dep, _int(generation))
        if done:
            done_lines.append(line)
        else:
            waiting_lines.append(line)
            waiting.append(dep)
    if not waiting_lines:
        text = done_lines[0] if len(done_lines) == 1 else f"{plural(len(done_lines), 'deployment')} rolled out"
        return Probe(done=True, progress=text)
    why = await _explain(ctx, waiting) if waiting else ""
    shown = waiting_lines[:4] + ([f"and {len(waiting_lines) - 4} more"] if len(waiting_lines) > 4 else [])
    progress = " · ".join(x for x in ["; ".join(shown), why] if x)
    return Probe(done=False, progress=progress, problem=progress)


__all__ = ["REVISION", "deployments_ready", "replicas_verified", "rollout_complete", "rollout_state",
           "rollout_verified", "why_waiting"]
