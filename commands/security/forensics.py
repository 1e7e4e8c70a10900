"""Evidence and backups (the runbook's "Preserve evidence" and "Application Configuration Backup").

`evidence POD` captures what the runbook captures with `kubectl logs` and `kubectl get pod -o yaml`,
uploads it to the thread, and writes each file's sha256 to the audit store *before* the upload, so
the record exists even if Slack loses the file, and a file can later be shown to be the one taken.

`backup config` writes the namespace's configuration as one `kind: List` YAML that `kubectl apply -f`
can restore. Secrets are included as objects, but the Kube client has already replaced each value
with `<redacted>` — which is not valid base64, so applying the backup refuses the Secrets instead of
overwriting real credentials with a placeholder. It covers every kind a namespace's configuration
lives in (`BACKUP_KINDS`); objects made by an owner (a CronJob's Jobs, say) are left out, as are
ReplicaSets and Pods, because their owners make them again. The same bytes are kept in the bot's
store (bot/artefacts.py), where `/cf restore config` reads them, and their sha256 goes to the audit trail.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime
from typing import Any

import yaml

from base.text import code, plural
from commands.args import k8s_name, pos
from commands.base import Context, command
from commands.parts import Failed, degraded, failed_parts, failures, optional
from commands.reply import File, Note, Reply, Table
from commands.support.backups import ARTEFACT, JOB_GENERATED_LABELS
from commands.support.kube import find_pod
from integrations.errors import IntegrationError
from integrations.kube import REDACTED, redact_secret

AREA = "Security"
LOG_BYTES = 20 * 2**20  # per container and log: enough for forensics, bounded for Slack
BACKUP_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Service", "ConfigMap", "ServiceAccount",
                "PersistentVolumeClaim", "Ingress", "HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy")
SERVER_FIELDS = ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields", "selfLink",
                 "deletionTimestamp", "deletionGracePeriodSeconds")
Obj = dict[str, Any]


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S")


def _digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def _yaml(obj: Any) -> bytes:
    return yaml.safe_dump(obj, sort_keys=False, default_flow_style=False, allow_unicode=True).encode()


@command(
    "evidence",
    summary="Capture a pod's logs (current and previous) and spec as files; their sha256 go to the audit trail.",
    area=AREA,
    args=[pos("POD", k8s_name, "the affected pod")],
    example="/cf evidence graphql-api-5d9c855b84-abcde",
    needs=["kube", "audit"],
)
async def evidence(ctx: Context, pod: str) -> Reply:
    """The pod (its spec) and the audit record are primary; each log is an auxiliary part."""
    found = await find_pod(ctx, pod)
    prefix = f"incident-{pod}-{_stamp()}"
    spec = dict(found)
    spec["metadata"] = {k: v for k, v in found["metadata"].items() if k != "managedFields"}
    files = [File(f"{prefix}-pod.yaml", _yaml(spec), f"Spec of pod {pod}")]
    logs, missing = await _logs(ctx, found, prefix)
    files += logs
    rows = [[f.filename, f"{len(f.content):,}", _digest(f.content)] for f in files]
    entry = await ctx.audit.record(
        "evidence", ctx.user, "evidence", channel=ctx.channel, incident_id=ctx.incident_id,
        detail={"namespace": ctx.namespace, "pod": pod, "uid": found["metadata"].get("uid"),
                "files": [{"name": f.filename, "bytes": len(f.content), "sha256": _digest(f.content)} for f in files]})
    parts: list[Any] = [Table(["FILE", "BYTES", "SHA256"], rows), *failed_parts(*missing)]
    parts.append(Note(f"sha256 of each file recorded in the audit trail (entry {entry}) before upload."))
    return Reply(title=f"Evidence from pod {pod}: {plural(len(files), 'file')}", parts=parts, files=files,
                 level=degraded("info", *missing))


async def _logs(ctx: Context, pod: Obj, prefix: str) -> tuple[list[File], list[Failed]]:
    """Current and previous logs of every container, with timestamps, as kubectl would print them."""
    jobs: list[tuple[str, str, bool]] = []
    statuses = {s["name"]: s for s in pod.get("status", {}).get("containerStatuses") or []}
    for c in pod.get("spec", {}).get("containers") or []:
        jobs.append((c["name"], f"{prefix}-{c['name']}.log", False))
        if ((statuses.get(c["name"]) or {}).get("lastState") or {}).get("terminated"):
            jobs.append((c["name"], f"{prefix}-{c['name']}-previous.log", True))
    name = pod["metadata"]["name"]

    async def read(container: str, previous: bool) -> str | Failed:
        label = f"{'Previous log' if previous else 'Log'} of {code(container)}"
        return await optional(label, ctx.kube.pod_log(ctx.namespace, name, container=container, previous=previous,
                                                      timestamps=True, limit_bytes=LOG_BYTES))

    texts = await asyncio.gather(*(read(c, prev) for c, _, prev in jobs))
    files: list[File] = []
    missing: list[Failed] = []
    for (container, filename, previous), text in zip(jobs, texts, strict=True):
        if isinstance(text, Failed):
            missing.append(text)
        else:
            which = "previous container's log" if previous else "log"
            files.append(File(filename, text.encode(), f"{which} of {name}/{container}"))
    return files, missing


@command(
    "backup config",
    summary="The namespace's configuration as one YAML file (Secret values redacted) uploaded to the thread.",
    area=AREA,
    example="/cf backup config",
    needs=["kube", "audit", "artefacts"],
)
async def backup_config(ctx: Context) -> Reply:
    """The Deployments are the primary call; every other kind is an auxiliary part: a kind that cannot be
    listed is named in the table and the title, and the rest is still backed up."""
    primary, *others = BACKUP_KINDS
    lists = await asyncio.gather(ctx.kube.list_objects(primary, ctx.namespace),
                                 *(optional(kind, ctx.kube.list_objects(kind, ctx.namespace)) for kind in others),
                                 optional("Secret", ctx.kube.list_secrets(ctx.namespace)))
    kinds = (*BACKUP_KINDS, "Secret")
    got = {kind: items for kind, items in zip(kinds, lists, strict=True) if not isinstance(items, Failed)}
    missing = failures(*lists)
    owned = [obj for group in got.values() for obj in group if _owned(obj)]
    items = [_clean(obj) for group in got.values() for obj in group if not _owned(obj)]
    document = {"apiVersion": "v1", "kind": "List", "metadata": {"namespace": ctx.namespace}, "items": items}
    name = f"{ctx.namespace}-backup-{_stamp()}.yaml"
    content = _yaml(document)
    table = Table(["KIND", "OBJECTS"], [[k, str(len(got[k])) if k in got else _unread(lists, k)] for k in kinds])
    notes = [Note(f"Secret values are replaced by `{REDACTED}`: `/cf restore config` (or `kubectl apply -f {name}`) "
                  "restores everything else and leaves the Secrets alone rather than overwrite them."),
             Note("Not in a backup: ReplicaSets and Pods" + (f", and {plural(len(owned), 'object')} made by an owner"
                                                            if owned else "") + ": their owners make them again."),
             await _keep(ctx, name, content, len(items))]
    partial = f" (partial: {', '.join(f.label for f in missing)} not included)" if missing else ""
    return Reply(title=f"Backup of namespace `{ctx.namespace}`: {plural(len(items), 'object')}{partial}",
                 parts=[table, *failed_parts(*missing), *notes], level=degraded("info", *missing),
                 files=[File(name, content, f"Configuration of {ctx.namespace}")])


def _unread(lists: list[Any], kind: str) -> str:
    return next(f.detail for f in failures(*lists) if f.label == kind)


async def _keep(ctx: Context, name: str, content: bytes, objects: int) -> Note:
    """Keep the file for `/cf restore config` and its sha256 in the audit trail; without the store, say so."""
    digest = _digest(content)
    try:
        await ctx.artefacts.save(ARTEFACT, ctx.namespace, name, content.decode(), ctx.user)
    except IntegrationError as exc:
        return Note(f":warning: sha256 {digest}. Not kept for `/cf restore config` ({exc.message}): "
                    "this file is the only copy.")
    await ctx.audit.record(
        "backup", ctx.user, "backup config", channel=ctx.channel, incident_id=ctx.incident_id,
        detail={"namespace": ctx.namespace, "file": name, "objects": objects, "bytes": len(content), "sha256": digest})
    return Note(f"sha256 {digest}, recorded in the audit trail; kept for `/cf restore config`.")


def _owned(obj: Obj) -> bool:
    return any(ref.get("controller") for ref in (obj.get("metadata") or {}).get("ownerReferences") or [])


def _clean(obj: Obj) -> Obj:
    """What `kubectl apply` needs back: no status, no server-set metadata, Secrets redacted (again)."""
    if obj.get("kind") == "Secret":
        obj = redact_secret(obj)
    out = {k: v for k, v in obj.items() if k != "status"}
    out["metadata"] = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in SERVER_FIELDS}
    spec = out.get("spec")
    if obj.get("kind") == "Service" and isinstance(spec, dict) and spec.get("clusterIP") not in (None, "None"):
        out["spec"] = {k: v for k, v in spec.items() if k not in ("clusterIP", "clusterIPs")}
    if obj.get("kind") == "Job" and isinstance(spec, dict) and not spec.get("manualSelector"):
        out["spec"] = _without_generated_selector(spec)
    return out


def _without_generated_selector(spec: Obj) -> Obj:
    """A Job's generated selector and labels go: the API server refuses a new Job that carries them."""
    template = dict(spec.get("template") or {})
    meta = dict(template.get("metadata") or {})
    if isinstance(meta.get("labels"), dict):
        meta["labels"] = {k: v for k, v in meta["labels"].items() if k not in JOB_GENERATED_LABELS}
    template["metadata"] = meta
    return {**{k: v for k, v in spec.items() if k != "selector"}, "template": template}
