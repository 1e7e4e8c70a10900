"""Security containment (the runbook's "Suspected Breach"): `secrets`, `isolate`, `block-ip`.

Secret values never pass through here: the Kube client redacts every Secret it lists before
returning it, so these commands can only ever see names, types and key names.

`block-ip` adds a CIDR to the `except` list of the ingress ipBlock of NetworkPolicy
`collaboration-network-policy` (the runbook's JSON patch, plus a `test` of the resourceVersion so a
concurrent edit is not overwritten), creating the policy when it is missing. `unblock-ip` removes it
again the same way; each is the other's Undo, and each is verified by reading the policy back
(verifier "cidr-blocked").
"""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

from base.text import code, plural
from commands.args import ECHO, blockable_cidr, k8s_label, pos
from commands.base import CommandError, Context, Kind, Role, command
from commands.parts import Failed, degraded, failed_parts, optional
from commands.reply import Change, Note, Outcome, Part, Probe, Reply, Table, Text, Undo, Verification
from commands.support.kube import age, deployment_ready, find_deployment
from commands.support.kube_verify import replicas_verified
from commands.verify import verifier
from integrations.errors import NotFound

AREA = "Security"
POLICY = "collaboration-network-policy"
Obj = dict[str, Any]


@command(
    "secrets",
    summary="Secret names, types and key names (never a value), and references to missing ones.",
    area=AREA,
    aliases=["get secrets"],
    example="/cf secrets",
    needs=["kube"],
)
async def secrets(ctx: Context) -> Reply:
    """The secrets are the primary call; the deployments (USED BY, and references to missing ones) are auxiliary."""
    items, deps = await asyncio.gather(ctx.kube.list_secrets(ctx.namespace),
                                       optional("Deployments (USED BY)", ctx.kube.list_deployments(ctx.namespace)))
    keys = {s["metadata"]["name"]: sorted((s.get("data") or {}).keys()) for s in items}
    refs = {} if isinstance(deps, Failed) else _references(deps)
    unknown = "?" if isinstance(deps, Failed) else "-"
    rows = [[s["metadata"]["name"], str(s.get("type", "Opaque")), ", ".join(keys[s["metadata"]["name"]]) or "-",
             ", ".join(sorted({d for d, _ in refs.get(s["metadata"]["name"], [])})) or unknown,
             age(s["metadata"].get("creationTimestamp"))] for s in sorted(items, key=lambda s: s["metadata"]["name"])]
    missing = [f"`{dep}` needs {f'key `{key}` of ' if key else ''}secret `{name}`"
               for name, uses in sorted(refs.items()) for dep, key in uses
               if name not in keys or (key and key not in keys[name])]
    parts: list[Part] = [Table(["NAME", "TYPE", "KEYS", "USED BY", "AGE"], rows,
                               empty=f"No secrets in namespace `{ctx.namespace}`."), *failed_parts(deps)]
    if missing:
        parts.append(Text(":warning: Missing: " + "; ".join(sorted(set(missing))[:10]) +
                          ". Pods that need them cannot start (CreateContainerConfigError)."))
    parts.append(Note("Values are never shown, logged or uploaded."))
    return Reply(title=f"{plural(len(rows), 'secret')} in namespace `{ctx.namespace}`", parts=parts,
                 level=degraded("warn" if missing else "info", deps))


def _references(deps: list[Obj]) -> dict[str, list[tuple[str, str]]]:
    """secret name -> [(deployment, key or "")] from env, envFrom and volumes."""
    refs: dict[str, list[tuple[str, str]]] = {}
    for dep in deps:
        name = dep["metadata"]["name"]
        spec = dep.get("spec", {}).get("template", {}).get("spec", {})
        for c in spec.get("containers") or []:
            for env in c.get("env") or []:
                ref = (env.get("valueFrom") or {}).get("secretKeyRef")
                if ref and not ref.get("optional"):
                    refs.setdefault(ref["name"], []).append((name, ref.get("key", "")))
            for src in c.get("envFrom") or []:
                if src.get("secretRef") and not src["secretRef"].get("optional"):
                    refs.setdefault(src["secretRef"]["name"], []).append((name, ""))
        for vol in spec.get("volumes") or []:
            if vol.get("secret") and not vol["secret"].get("optional"):
                refs.setdefault(vol["secret"]["secretName"], []).append((name, ""))
    return refs


@command(
    "isolate",
    summary="Take a compromised deployment out of service by scaling it to 0 (admin approval).",
    area=AREA,
    args=[pos("DEPLOYMENT", k8s_label, "the affected deployment")],
    kind=Kind.change,
    role=Role.operator,
    approver_role=Role.admin,
    example="/cf isolate document-service",
    needs=["kube"],
)
async def isolate(ctx: Context, deployment: str) -> Change:
    dep = await find_deployment(ctx, deployment)
    current = int(dep.get("spec", {}).get("replicas") or 0)
    warnings = ["It already has 0 replicas; approving changes nothing."] if current == 0 else []
    warnings.append("Its service stops answering; an autoscaler does not act on a deployment at 0 replicas.")

    async def apply() -> Outcome:
        before = int((await ctx.kube.get_deployment(ctx.namespace, deployment)).get("spec", {}).get("replicas", 0))
        await ctx.kube.scale_deployment(ctx.namespace, deployment, 0)
        undo = (Undo("scale", {"deployment": deployment, "replicas": before},
                     f"scale deployment/{deployment} back to {plural(before, 'replica')}") if before else None)
        return Outcome(before=plural(before, "replica"), after="0 replicas (isolated)",
                       verify=replicas_verified({deployment: 0}, f"/cf pods {deployment}"), undo=undo)

    return Change(summary=f"Isolate deployment/{deployment} in {ctx.namespace}: scale to 0",
                  current=f"{plural(current, 'replica')} ({deployment_ready(dep)} ready)", desired="0 replicas",
                  basis=plural(current, "replica"),
                  apply=apply, target=f"deployment/{deployment} in {ctx.namespace}", warnings=warnings)


# --- block-ip --------------------------------------------------------------------------------------


def _covering_block(policy: Obj, cidr: str) -> tuple[int, int, Obj] | None:
    """(ingress rule index, peer index, ipBlock) of the first ipBlock whose cidr strictly contains `cidr`."""
    net = ipaddress.ip_network(cidr)
    for i, rule in enumerate(policy.get("spec", {}).get("ingress") or []):
        for j, peer in enumerate(rule.get("from") or []):
            block = peer.get("ipBlock")
            if not block:
                continue
            outer = ipaddress.ip_network(block["cidr"], strict=False)
            if outer.version == net.version and net.subnet_of(outer) and net != outer:  # type: ignore[arg-type]
                return i, j, block
    return None


def _new_policy(namespace: str, cidr: str) -> Obj:
    everyone = "0.0.0.0/0" if ipaddress.ip_network(cidr).version == 4 else "::/0"
    return {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": POLICY, "namespace": namespace, "labels": {"app.kubernetes.io/managed-by": "cf"}},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"],
                 "ingress": [{"from": [{"ipBlock": {"cidr": everyone, "except": [cidr]}},
                                       {"namespaceSelector": {}}]}]},
    }


async def _policy(ctx: Context) -> Obj | None:
    try:
        return dict(await ctx.kube.get_network_policy(ctx.namespace, POLICY))
    except NotFound:
        return None


def _check_not_cluster(cidr: str, nodes: list[Obj]) -> None:
    net = ipaddress.ip_network(cidr)
    inside = [a["address"] for n in nodes for a in n.get("status", {}).get("addresses") or []
              if a.get("type") == "InternalIP" and ipaddress.ip_address(a["address"]) in net]
    if inside:
        raise CommandError(f"`{cidr}` contains the cluster's own nodes ({', '.join(inside[:3])}); blocking it would "
                           "cut the cluster off from itself. Nothing was changed.")


@command(
    "block-ip",
    summary="Block a CIDR at the namespace's ingress NetworkPolicy (its ipBlock `except` list).",
    area=AREA,
    args=[pos("CIDR", blockable_cidr, "the address or block to refuse, e.g. 203.0.113.7/32")],
    kind=Kind.change,
    role=Role.operator,
    example="/cf block-ip 203.0.113.7/32",
    needs=["kube"],
)
async def block_ip(ctx: Context, cidr: str) -> Change:
    policy, nodes = await asyncio.gather(_policy(ctx), ctx.kube.list_nodes())
    _check_not_cluster(cidr, nodes)
    warnings: list[str] = []
    no_undo = ""
    if policy is None:
        current = f"no NetworkPolicy `{POLICY}`"
        warnings.append(f"`{POLICY}` does not exist: it will be created, allowing all ingress except `{cidr}`.")
    else:
        found = _covering_block(policy, cidr)
        if found is None:
            raise CommandError(f"NetworkPolicy `{POLICY}` has no ingress ipBlock that contains `{cidr}`, so there "
                               "is no `except` list to add it to. Nothing was changed.")
        current = _excepts(found[2].get("except"))
        if _listed(policy, cidr):
            warnings.append(f"`{cidr}` is already blocked; approving changes nothing.")
            no_undo = f"nothing to undo: {cidr} was already blocked"

    async def apply() -> Outcome:
        return await _apply_block(ctx, cidr)

    return Change(summary=f"Block {cidr} at NetworkPolicy {POLICY} in {ctx.namespace}", current=current,
                  desired=f"ingress from `{cidr}` refused", apply=apply, target=f"networkpolicy/{POLICY}",
                  warnings=warnings, no_undo=no_undo)


async def _apply_block(ctx: Context, cidr: str) -> Outcome:
    verify = cidr_verified(ctx.namespace, cidr, blocked=True)
    undo = Undo("unblock-ip", {"cidr": cidr}, f"remove {cidr} from the except list of NetworkPolicy {POLICY}")
    policy = await _policy(ctx)
    if policy is None:
        await ctx.kube.create_network_policy(ctx.namespace, _new_policy(ctx.namespace, cidr))
        return Outcome(before=f"no NetworkPolicy {POLICY}", after=f"created, except [{cidr}]", verify=verify,
                       undo=Undo(undo.command, undo.args, undo.summary + " (the policy itself stays)"))
    found = _covering_block(policy, cidr)
    if found is None:
        raise CommandError(f"NetworkPolicy `{POLICY}` no longer has an ipBlock containing `{cidr}`.")
    i, j, block = found
    before = list(block.get("except") or [])
    if _listed(policy, cidr):
        return Outcome(before=_excepts(before), after="unchanged (already blocked)", verify=verify)
    path = f"/spec/ingress/{i}/from/{j}/ipBlock/except"
    ops = [_unchanged_since(policy),
           {"op": "add", "path": f"{path}/-", "value": cidr} if "except" in block
           else {"op": "add", "path": path, "value": [cidr]}]
    patched = await ctx.kube.patch_network_policy(ctx.namespace, POLICY, ops)
    after = patched["spec"]["ingress"][i]["from"][j]["ipBlock"].get("except")
    return Outcome(before=_excepts(before), after=_excepts(after), verify=verify, undo=undo)


def _excepts(blocks: list[str] | None) -> str:
    return f"except [{', '.join(blocks or [])}]"


def _unchanged_since(policy: Obj) -> Obj:
    """A JSON-patch `test` of the resourceVersion read: a concurrent edit makes the patch fail, not vanish."""
    return {"op": "test", "path": "/metadata/resourceVersion", "value": policy["metadata"]["resourceVersion"]}


def _listed(policy: Obj | None, cidr: str) -> list[tuple[int, int, int]]:
    """(ingress rule, peer, position) of every ipBlock `except` entry that is `cidr` (however it is written)."""
    net = ipaddress.ip_network(cidr, strict=False)
    found = []
    for i, rule in enumerate((policy or {}).get("spec", {}).get("ingress") or []):
        for j, peer in enumerate(rule.get("from") or []):
            for k, entry in enumerate((peer.get("ipBlock") or {}).get("except") or []):
                try:
                    same = ipaddress.ip_network(entry, strict=False) == net
                except ValueError:
                    same = False
                if same:
                    found.append((i, j, k))
    return found


def _all_excepts(policy: Obj) -> list[str]:
    return [entry for rule in policy.get("spec", {}).get("ingress") or [] for peer in rule.get("from") or []
            for entry in (peer.get("ipBlock") or {}).get("except") or []]


# --- unblock-ip (block-ip's inverse) ------------------------------------------------------------------


def listed_cidr(raw: str) -> str:
    """Any IP or CIDR, as it would be listed (`203.0.113.7` is `203.0.113.7/32`): a block of any width that
    is there may be taken out, even one `block-ip` would not have added."""
    try:
        return str(ipaddress.ip_network(raw.strip(), strict=False))
    except ValueError:
        raise ValueError(f"{code(raw, ECHO)} is not an IP address or CIDR block (example: 203.0.113.7/32).") from None


@command(
    "unblock-ip",
    summary="Take a CIDR out of the ingress NetworkPolicy's `except` list again (the inverse of block-ip).",
    area=AREA,
    args=[pos("CIDR", listed_cidr, "the address or block to allow again, e.g. 203.0.113.7/32")],
    kind=Kind.change,
    role=Role.operator,
    example="/cf unblock-ip 203.0.113.7/32",
    needs=["kube"],
)
async def unblock_ip(ctx: Context, cidr: str) -> Change:
    policy = await _policy(ctx)
    if policy is None:
        raise CommandError(f"NetworkPolicy `{POLICY}` does not exist in `{ctx.namespace}`, so it blocks nothing. "
                           "Nothing was changed.")
    if not _listed(policy, cidr):
        raise CommandError(f"`{cidr}` is not in the `except` list of NetworkPolicy `{POLICY}` (blocked now: "
                           f"{', '.join(f'`{c}`' for c in _all_excepts(policy)) or 'nothing'}). Nothing was changed.")

    async def apply() -> Outcome:
        return await _apply_unblock(ctx, cidr)

    return Change(summary=f"Unblock {cidr} at NetworkPolicy {POLICY} in {ctx.namespace}",
                  current=_excepts(_all_excepts(policy)), desired=f"ingress from `{cidr}` allowed again",
                  apply=apply, target=f"networkpolicy/{POLICY}")


async def _apply_unblock(ctx: Context, cidr: str) -> Outcome:
    policy = await _policy(ctx)
    where = _listed(policy, cidr)
    if policy is None or not where:
        raise CommandError(f"`{cidr}` is no longer in NetworkPolicy `{POLICY}`; nothing to remove.")
    before = _all_excepts(policy)
    # removals from the end first, so each index still points at its entry
    ops = [_unchanged_since(policy), *({"op": "remove", "path": f"/spec/ingress/{i}/from/{j}/ipBlock/except/{k}"}
                                       for i, j, k in sorted(where, reverse=True))]
    patched = await ctx.kube.patch_network_policy(ctx.namespace, POLICY, ops)
    return Outcome(before=_excepts(before), after=_excepts(_all_excepts(dict(patched))),
                   verify=cidr_verified(ctx.namespace, cidr, blocked=False),
                   undo=Undo("block-ip", {"cidr": cidr}, f"block {cidr} again at NetworkPolicy {POLICY}"))


# --- the verdict: the policy read back ----------------------------------------------------------------


def cidr_verified(namespace: str, cidr: str, blocked: bool) -> Verification:
    # no command of the bot shows a NetworkPolicy; kubectl does
    return Verification("cidr-blocked", {"cidr": cidr, "blocked": blocked},
                        look_further=f"kubectl -n {namespace} get networkpolicy {POLICY} -o yaml")


@verifier("cidr-blocked", needs=["kube"])
async def cidr_blocked(ctx: Context, cidr: str, blocked: bool) -> Probe:
    """`cidr` reads back in (or, after unblock-ip, nowhere in) the policy's ipBlock `except` lists."""
    policy = await _policy(ctx)
    listed = bool(_listed(policy, cidr))
    if policy is None:
        said = f"NetworkPolicy {POLICY} does not exist (any more)"
    else:
        said = f"{cidr} reads back {'in the' if listed else 'in no'} except list of NetworkPolicy {POLICY}"
    if listed == blocked:
        return Probe(done=True, progress=said)
    return Probe(done=False, progress=said, problem=f"{said}: something changed the policy since")
