"""Files the bot made and keeps for later commands: the configuration backups `/cf restore config` reads.

`/cf backup config` uploads its YAML to the thread *and* keeps the same bytes here, keyed by
(kind, namespace). `/cf restore config` reads them back from here, not from Slack, because:

- it works the same with a real workspace and with none: reading a file back from Slack would need
  the `files:read` scope and a download of `url_private` with the bot token, and a slash command
  carries no thread, so "the file in this thread" could not be found from the command anyway;
- a workspace's file retention (or someone deleting the message) cannot take a backup away in the
  middle of a recovery;
- the copy is the uploaded file byte for byte (its sha256 is in the upload's reply and the audit
  trail), so the thread still shows exactly which backup a restore used.

Backups hold no secret values (the Kube client redacts every Secret before a command sees it). Only
the newest `keep` per (kind, key) are kept. Store failures become `integrations.errors.Unavailable`
so commands, which never import the platform, can degrade on them in one line.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from bot.store import Row, Store, StoreUnavailable
from integrations.errors import Unavailable

SYSTEM = "The bot's store"
KEEP = 20  # per (kind, key): a few weeks of daily backups, a busy incident's worth of manual ones
# the table: migration `0004_artefacts` in bot/store.py
_COLUMNS = "id, kind, key, name, sha256, size, created_by, created_at"


@dataclass(frozen=True)
class Artefact:
    id: int
    kind: str
    key: str
    name: str
    sha256: str
    size: int
    created_by: str
    created_at: float
    content: str = ""  # empty in listings (`recent`), the whole text from `latest` and `get`

    @classmethod
    def from_row(cls, row: Row) -> Artefact:
        return cls(id=int(row["id"]), kind=str(row["kind"]), key=str(row["key"]), name=str(row["name"]),
                   sha256=str(row["sha256"]), size=int(row["size"]), created_by=str(row["created_by"]),
                   created_at=float(row["created_at"]), content=str(row.get("content") or ""))


class Artefacts:
    def __init__(self, store: Store, clock: Callable[[], float] = time.time, keep: int = KEEP) -> None:
        self.driver = store.driver
        self.clock = clock
        self.keep = keep

    async def save(self, kind: str, key: str, name: str, content: str, created_by: str) -> Artefact:
        """Keep `content` as the newest artefact of (kind, key); drop the ones beyond `keep`."""
        data = content.encode()
        now = self.clock()
        digest = hashlib.sha256(data).hexdigest()
        try:
            rows = await self.driver.fetch(
                "INSERT INTO cf_artefacts (kind, key, name, sha256, size, content, created_by, created_at) "
                f"VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING {_COLUMNS}",
                [kind, key, name, digest, len(data), content, created_by, now])
            await self.driver.execute(
                "DELETE FROM cf_artefacts WHERE kind = ? AND key = ? AND id NOT IN (SELECT id FROM cf_artefacts "
                "WHERE kind = ? AND key = ? ORDER BY created_at DESC, id DESC LIMIT ?)",
                [kind, key, kind, key, self.keep])
        except StoreUnavailable as exc:
            raise Unavailable(SYSTEM, f"could not keep {name}: {exc}") from None
        return Artefact.from_row(rows[0])

    async def latest(self, kind: str, key: str) -> Artefact | None:
        return await self._one("WHERE kind = ? AND key = ?", [kind, key])

    async def get(self, kind: str, key: str, name: str) -> Artefact | None:
        """The newest artefact of (kind, key) with this name."""
        return await self._one("WHERE kind = ? AND key = ? AND name = ?", [kind, key, name])

    async def recent(self, kind: str, key: str, limit: int = 5) -> list[Artefact]:
        """Newest first, without their content."""
        rows = await self._fetch(f"SELECT {_COLUMNS} FROM cf_artefacts WHERE kind = ? AND key = ? "
                                 "ORDER BY created_at DESC, id DESC LIMIT ?", [kind, key, limit])
        return [Artefact.from_row(r) for r in rows]

    async def _one(self, where: str, params: list[object]) -> Artefact | None:
        rows = await self._fetch(f"SELECT {_COLUMNS}, content FROM cf_artefacts {where} "
                                 "ORDER BY created_at DESC, id DESC LIMIT 1", params)
        return Artefact.from_row(rows[0]) if rows else None

    async def _fetch(self, sql: str, params: list[object]) -> list[Row]:
        try:
            return await self.driver.fetch(sql, params)
        except StoreUnavailable as exc:
            raise Unavailable(SYSTEM, f"could not read the kept backups: {exc}") from None
