"""Verifiers for node changes: the cordon flag read back, a drained node, a terminated instance.

`node cordon|uncordon` is verified by reading `spec.unschedulable` back (not by trusting the PATCH's
answer); `node drain` by the pods still on the node, counted as `kubectl drain` counts them (DaemonSet
and mirror pods stay, finished pods hold nothing) and the node still cordoned; `node terminate` by the
EC2 instance's state. `evictable` is the one definition of "a pod a drain must move", so a drain that
is *Verified* is exactly a node `node terminate` accepts.
"""

from __future__ import annotations

from typing import Any

from base.text import plural
from commands.base import Context
from commands.reply import Probe, Verification
from commands.support.kube import is_daemonset_pod, is_mirror_pod
from commands.verify import verifier
from integrations.errors import NotFound

Obj = dict[str, Any]
GONE_STATES = ("shutting-down", "terminated")


def evictable(pods: list[Obj]) -> list[Obj]:
    """What `kubectl drain` must move off a node: not DaemonSet-owned, not a mirror pod, not finished."""
    return [p for p in pods if not (is_mirror_pod(p) or is_daemonset_pod(p)
                                    or (p.get("status") or {}).get("phase") in ("Succeeded", "Failed"))]


def cordon_verified(node: str, unschedulable: bool) -> Verification:
    return Verification("node-unschedulable", {"node": node, "unschedulable": unschedulable},
                        look_further=f"/cf describe node {node}")


def drain_verified(node: str) -> Verification:
    return Verification("node-drained", {"node": node}, look_further=f"/cf describe node {node}")


def terminate_verified(instance_id: str) -> Verification:
    return Verification("instance-terminated", {"instance_id": instance_id}, look_further="/cf nodes")


def _ref(pod: Obj) -> str:
    return f"{pod['metadata'].get('namespace', '')}/{pod['metadata']['name']}"


@verifier("node-unschedulable", needs=["kube"])
async def node_unschedulable(ctx: Context, node: str, unschedulable: bool) -> Probe:
    """`spec.unschedulable` of the node, read back, is what the change set."""
    try:
        obj = await ctx.kube.get_node(node)
    except NotFound:
        return Probe(done=False, progress=f"node {node} no longer exists")
    flag = bool((obj.get("spec") or {}).get("unschedulable"))
    said = "cordoned (spec.unschedulable: true)" if flag else "schedulable (spec.unschedulable unset)"
    if flag == unschedulable:
        return Probe(done=True, progress=f"{node} reads back {said}")
    return Probe(done=False, progress=f"{node} reads back {said}",
                 problem=f"{node} reads back {said}: something set it back since (another client, or the node "
                         "re-registering)")


@verifier("node-drained", needs=["kube"])
async def node_drained(ctx: Context, node: str) -> Probe:
    """The node is still cordoned and no pod a drain must move is on it (terminating ones still count)."""
    try:
        obj = await ctx.kube.get_node(node)
    except NotFound:
        return Probe(done=True, progress=f"node {node} is gone, and its pods with it")
    left = evictable(await ctx.kube.pods_on_node(node))
    problems = [] if (obj.get("spec") or {}).get("unschedulable") else [
        f"{node} is schedulable again (something uncordoned it), so new pods can land on it"]
    if left:
        going = sum(1 for p in left if p["metadata"].get("deletionTimestamp"))
        shown = ", ".join(_ref(p) for p in left[:5]) + (f" and {len(left) - 5} more" if len(left) > 5 else "")
        problems.append(f"{plural(len(left), 'evictable pod')} still on {node}"
                        + (f" ({going} terminating)" if going else "") + f": {shown}")
    if problems:
        text = "; ".join(problems)
        return Probe(done=False, progress=text, problem=text)
    return Probe(done=True, progress=f"{node} cordoned, no evictable pod left on it (DaemonSet pods stay)")


@verifier("instance-terminated", needs=["aws"])
async def instance_terminated(ctx: Context, instance_id: str) -> Probe:
    """The EC2 instance reads back shutting-down or terminated."""
    try:
        found = await ctx.aws.instance(instance_id)
    except NotFound:
        found = {}
    if not found:  # EC2 stops listing a terminated instance after about an hour
        return Probe(done=True, progress=f"{instance_id} is no longer listed by EC2 (terminated)")
    state = str((found.get("State") or {}).get("Name", "unknown"))
    if state in GONE_STATES:
        return Probe(done=True, progress=f"{instance_id} is {state}")
    return Probe(done=False, progress=f"{instance_id} is {state}",
                 problem=f"{instance_id} is still {state}: EC2 has not begun to terminate it")


__all__ = ["cordon_verified", "drain_verified", "evictable", "instance_terminated", "node_drained",
           "node_unschedulable", "terminate_verified"]
