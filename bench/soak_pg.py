"""A PostgreSQL instance of the soak's own: initdb into a temporary directory, served on a free port.

The soak restarts its store mid-run (`pg_ctl restart -m fast`), so it must not use the machine's shared
PostgreSQL (other tests and workers are connected to it). The binaries are the installed server's
(`/usr/lib/postgresql/*/bin`). PostgreSQL refuses to run as root: as root, every step runs as the
`postgres` system user (`runuser`), and the directory is handed to it.
"""

from __future__ import annotations

import asyncio
import glob
import os
import pwd
import shutil
import tempfile
from pathlib import Path

from tests.processes import free_port


def pg_bin(name: str) -> str:
    """The newest installed server's `name` (initdb, pg_ctl, …)."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise RuntimeError(f"no PostgreSQL server installed (/usr/lib/postgresql/*/bin/{name} is missing)")
    return found[-1]


class Postgres:
    def __init__(self) -> None:
        # its own directory in the system's temporary space: one the `postgres` user can reach when we are root
        self.root = Path(tempfile.mkdtemp(prefix="cf-soak-pg-"))
        self.data = self.root / "pgdata"
        self.log = self.root / "postgres.log"
        self.port = free_port()
        self.restarts = 0
        self._as_postgres = os.geteuid() == 0

    @property
    def url(self) -> str:
        return f"postgresql://cf@127.0.0.1:{self.port}/cf"

    def _cmd(self, *args: str) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *args] if self._as_postgres else list(args)

    async def _run(self, *args: str) -> None:
        proc = await asyncio.create_subprocess_exec(*self._cmd(*args), stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.STDOUT)
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"{Path(args[0]).name} failed ({proc.returncode}): {out.decode()[-1500:]}")

    async def start(self) -> None:
        if self._as_postgres:
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
        await self._run(pg_bin("initdb"), "-D", str(self.data), "-U", "cf", "--auth=trust", "-E", "UTF8",
                        "--no-sync")
        await self._run(pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                        "-o", self._options(), "start")
        await self._run(pg_bin("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "cf", "cf")

    def _options(self) -> str:
        # a throwaway store: durability off (fsync), so the soak measures the bot, not this disk
        return (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off "
                "-c full_page_writes=off -c synchronous_commit=off -c max_connections=100")

    async def restart(self) -> None:
        """`pg_ctl restart -m fast`: every session is cut; the server is back when this returns."""
        await self._run(pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                        "-m", "fast", "-o", self._options(), "restart")
        self.restarts += 1

    async def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            try:
                await self._run(pg_bin("pg_ctl"), "-D", str(self.data), "-w", "-t", "30", "-m", "immediate", "stop")
            except RuntimeError:
                pass

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
