"""The in-memory object store: objects, resource versions, an owner index and watch fan-out.

Objects are plain dicts keyed by (group, version, plural) -> namespace -> name. The store owns
the dicts it holds and never changes one in place: every write stores a new dict, so a dict
handed to a watcher or serialized later is a consistent snapshot. Callers follow the same
rule (`clone` before editing).

Every write gets the next global resourceVersion, is appended to a bounded history (watches
resume from it), offered to live watchers, queued in `dirty` for the controllers, which
the API layer runs after each request, and shown to `observers` (indexes that must be current
within a controller pass, such as the scheduler's per-node requests).
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from . import errors
from .resources import Registry, ResourceType
from .util import random_suffix, rfc3339

HISTORY = 50_000
Obj = dict[str, Any]
Objects = list[Obj]  # module-level aliases: inside Store, `list` names the method


def clone(obj: Any) -> Any:
    """A deep copy; JSON round-trip is faster than copy.deepcopy for these plain trees."""
    return json.loads(json.dumps(obj))


@dataclass
class Change:
    rv: int
    type: str  # ADDED | MODIFIED | DELETED
    rt: ResourceType
    obj: dict[str, Any]
    old: dict[str, Any] | None


Changes = list[Change]
Dependents = list[tuple[ResourceType, Obj]]
Backlog = list[tuple[str, Obj]]


@dataclass(eq=False)
class Watcher:
    """One watch stream's subscription; `queue` receives (type, object) or None at shutdown."""

    rt: ResourceType
    namespace: str | None
    predicate: Callable[[dict[str, Any]], bool]
    queue: asyncio.Queue[tuple[str, dict[str, Any]] | None] = field(default_factory=asyncio.Queue)

    def matches(self, obj: dict[str, Any] | None) -> bool:
        if obj is None:
            return False
        if self.namespace and obj["metadata"].get("namespace") != self.namespace:
            return False
        return self.predicate(obj)

    def translate(self, change: Change) -> tuple[str, dict[str, Any]] | None:
        """Map a store change to what this watcher sees: objects leaving the selection are DELETED."""
        now, before = self.matches(change.obj), self.matches(change.old)
        if change.type == "DELETED":
            return ("DELETED", change.obj) if before or now else None
        if now and before:
            return ("MODIFIED", change.obj)
        if now:
            return ("ADDED", change.obj)
        if before:
            return ("DELETED", change.obj)
        return None


class Store:
    def __init__(self, registry: Registry, rng: random.Random):
        self.registry = registry
        self.rng = rng
        self._data: dict[tuple[str, str, str], dict[str, dict[str, dict[str, Any]]]] = {}
        self._owned: dict[str, set[tuple[tuple[str, str, str], str, str]]] = {}
        self._rv = 0
        self._frozen: datetime | None = None
        self._dropped_upto = 0
        self.history: deque[Change] = deque(maxlen=HISTORY)
        self.dirty: Changes = []
        self.observers: list[Callable[[Change], None]] = []  # told of every write at once (scheduler's usage)
        self._watchers: dict[tuple[str, str, str], set[Watcher]] = {}

    # --- time and ids --------------------------------------------------------------------

    def now(self) -> datetime:
        return self._frozen or datetime.now(UTC)

    def freeze_time(self, when: datetime | None) -> None:
        """Seeding builds history "in the past"; None returns to the wall clock."""
        self._frozen = when

    def new_uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    @property
    def resource_version(self) -> str:
        return str(self._rv)

    # --- reads ---------------------------------------------------------------------------

    def get(self, rt: ResourceType, namespace: str, name: str) -> dict[str, Any] | None:
        return self._data.get(rt.key, {}).get(namespace if rt.namespaced else "", {}).get(name)

    def require(self, rt: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        obj = self.get(rt, namespace, name)
        if obj is None:
            raise errors.not_found(rt.qualified, name)
        return obj

    def list(self, rt: ResourceType, namespace: str | None = None) -> Objects:
        spaces = self._data.get(rt.key, {})
        if namespace:
            return list(spaces.get(namespace, {}).values())
        return [obj for space in spaces.values() for obj in space.values()]

    def owned_by(self, uid: str, rt: ResourceType | None = None) -> Objects:
        found = []
        for key, namespace, name in sorted(self._owned.get(uid, ())):
            if rt is not None and key != rt.key:
                continue
            obj = self._data.get(key, {}).get(namespace, {}).get(name)
            if obj is not None:
                found.append(obj)
        return found

    def dependents(self, uid: str) -> Dependents:
        out = []
        for key, namespace, name in sorted(self._owned.get(uid, ())):
            obj = self._data.get(key, {}).get(namespace, {}).get(name)
            rt = self.registry.find(*key)
            if obj is not None and rt is not None:
                out.append((rt, obj))
        return out

    # --- writes --------------------------------------------------------------------------

    def create(self, rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        """Store a new object, filling the server-owned metadata. Takes ownership of `obj`."""
        md = obj.setdefault("metadata", {})
        namespace = md.get("namespace", "") if rt.namespaced else ""
        if not rt.namespaced:
            md.pop("namespace", None)
        if not md.get("name") and md.get("generateName"):
            md["name"] = md["generateName"] + random_suffix(self.rng)
        space = self._data.setdefault(rt.key, {}).setdefault(namespace, {})
        if md["name"] in space:
            raise errors.already_exists(rt.qualified, md["name"])
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        md["uid"] = self.new_uid()
        md["creationTimestamp"] = rfc3339(self.now())
        if "spec" in obj and rt.kind != "Pod":
            md["generation"] = 1
        space[md["name"]] = obj
        self._index_owners(rt, obj, None)
        self._emit("ADDED", rt, obj, None)
        return obj

    def update(self, rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        """Replace an object; a write that changes nothing is skipped (no new resourceVersion)."""
        md = obj["metadata"] = dict(obj["metadata"])  # callers may share the old metadata dict
        namespace = md.get("namespace", "") if rt.namespaced else ""
        old = self.require(rt, namespace, md["name"])
        old_md = old["metadata"]
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        for key in ("uid", "creationTimestamp", "resourceVersion", "generation"):
            if key in old_md:
                md[key] = old_md[key]
        if obj == old:
            return old
        if "generation" in old_md and obj.get("spec") != old.get("spec"):
            md["generation"] = old_md["generation"] + 1
        self._data[rt.key][namespace][md["name"]] = obj
        self._index_owners(rt, obj, old)
        self._emit("MODIFIED", rt, obj, old)
        return obj

    def delete(self, rt: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        namespace = namespace if rt.namespaced else ""
        old = self.require(rt, namespace, name)
        del self._data[rt.key][namespace][name]
        gone = dict(old, metadata=dict(old["metadata"]))
        self._index_owners(rt, None, old)
        self._emit("DELETED", rt, gone, old)
        return gone

    def _index_owners(self, rt: ResourceType, new: dict[str, Any] | None, old: dict[str, Any] | None) -> None:
        for obj, add in ((old, False), (new, True)):
            if obj is None:
                continue
            entry = (rt.key, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
            for ref in obj["metadata"].get("ownerReferences") or []:
                owned = self._owned.setdefault(ref["uid"], set())
                if add:
                    owned.add(entry)
                else:
                    owned.discard(entry)

    def _emit(self, kind: str, rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        change = Change(self._rv, kind, rt, obj, old)
        if len(self.history) == self.history.maxlen:
            self._dropped_upto = self.history[0].rv
        self.history.append(change)
        self.dirty.append(change)
        for observer in self.observers:
            observer(change)
        for watcher in self._watchers.get(rt.key, ()):
            event = watcher.translate(change)
            if event is not None:
                watcher.queue.put_nowait(event)

    # --- watches -------------------------------------------------------------------------

    def watch(self, watcher: Watcher, since: int | None) -> Backlog:
        """Register `watcher`; return the events it missed since `since` (None: current state)."""
        backlog: Backlog
        if since is None:
            backlog = [("ADDED", obj) for obj in self.list(watcher.rt, watcher.namespace)
                       if watcher.matches(obj)]
            backlog.sort(key=lambda e: int(e[1]["metadata"]["resourceVersion"]))
        else:
            if since < self._dropped_upto:
                raise errors.expired(f"too old resource version: {since} ({self._dropped_upto + 1})")
            backlog = []
            for change in self._changes_after(since):
                if change.rt.key == watcher.rt.key:
                    event = watcher.translate(change)
                    if event is not None:
                        backlog.append(event)
        self._watchers.setdefault(watcher.rt.key, set()).add(watcher)
        return backlog

    def _changes_after(self, since: int) -> Changes:
        if not self.history or since >= self.history[-1].rv:
            return []
        out = []
        for change in reversed(self.history):
            if change.rv <= since:
                break
            out.append(change)
        out.reverse()
        return out

    def unwatch(self, watcher: Watcher) -> None:
        self._watchers.get(watcher.rt.key, set()).discard(watcher)

    def close_watches(self) -> None:
        for watchers in self._watchers.values():
            for watcher in watchers:
                watcher.queue.put_nowait(None)
        self._watchers.clear()
