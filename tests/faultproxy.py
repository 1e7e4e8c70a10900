"""Fault-injecting TCP proxies: fail ONE call on the real PostgreSQL or Redis, and nothing else.

The bot talks to the proxy as if it were the server; the proxy reads the client's stream message by
message and, for a message that matches a fault, rewrites it so that the REAL server answers it with
an error. The server's answers are passed through untouched, so the client sees a true error reply,
in order, on a connection that stays in sync (pipelines included):

- PostgreSQL (`PgFaultProxy`): a Parse ('P', extended protocol, what psycopg 3 sends) or a simple
  Query ('Q') whose SQL contains a given substring gets its SQL replaced by `PG_FAILING_SQL`, which
  the server refuses with 42P01 (undefined_table), naming `cf_injected_failure`. The startup packet
  passes untouched; an SSLRequest or GSSENCRequest is answered 'N' by the proxy itself, so the client
  goes on in clear text whatever the server's TLS settings.
- Redis (`RedisFaultProxy`): a RESP command whose first words match (`INFO server`, `CONFIG GET
  maxmemory`) is replaced by an `EVAL` of `redis.error_reply(...)`, so the server answers exactly
  `-ERR injected failure` (or the error given) in that command's place.

A fault fires for every match, or for the next `times` matches; `hits` counts the rewrites so a test
can check that the fault it set was met.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from dataclasses import dataclass

from tests.tcpproxy import TcpProxy

PG_FAILING_SQL = "SELECT pg_catalog.pg_sleep(0) FROM cf_injected_failure_no_such_table"
SSL_REQUEST, GSSENC_REQUEST = 80877103, 80877104


@dataclass
class Fault:
    match: tuple[bytes, ...]
    replacement: bytes
    times: int | None = None
    hits: int = 0

    def take(self) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        self.hits += 1
        return True


class _FilteringProxy(TcpProxy):
    """A TcpProxy whose client-to-server direction goes through `_filter` (one instance per connection)."""

    def __init__(self, target_host: str, target_port: int) -> None:
        super().__init__(target_host, target_port)
        self.faults: list[Fault] = []

    @property
    def hits(self) -> int:
        return sum(f.hits for f in self.faults)

    def clear_faults(self) -> None:
        self.faults.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))
        for task in (asyncio.create_task(self._client_side(reader, up_writer, writer)),
                     asyncio.create_task(self._pipe(up_reader, writer))):
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    async def _client_side(self, src: asyncio.StreamReader, upstream: asyncio.StreamWriter,
                           client: asyncio.StreamWriter) -> None:
        buffer, state = bytearray(), dict[str, bool]()  # state: what `_filter` keeps for this connection
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while data := await src.read(65536):
                buffer += data
                out = self._filter(buffer, client, state)
                if out:
                    upstream.write(out)
                    await upstream.drain()
        with contextlib.suppress(OSError):
            upstream.close()

    def _filter(self, buffer: bytearray, client: asyncio.StreamWriter, state: dict[str, bool]) -> bytes:
        """Consume the complete messages at the start of `buffer`; return the bytes to forward."""
        raise NotImplementedError

    def _fault_for(self, text: bytes) -> Fault | None:
        low = text.lower()
        for fault in self.faults:
            if all(m in low for m in fault.match) and fault.take():
                return fault
        return None


class PgFaultProxy(_FilteringProxy):
    """PostgreSQL wire protocol v3, client side: see the module docstring."""

    def fail(self, substring: str, *, times: int | None = None, sql: str = PG_FAILING_SQL) -> Fault:
        """Make the server refuse every statement whose SQL contains `substring` (case-insensitive)."""
        fault = Fault((substring.lower().encode(),), sql.encode(), times)
        self.faults.append(fault)
        return fault

    def _filter(self, buffer: bytearray, client: asyncio.StreamWriter, state: dict[str, bool]) -> bytes:
        out = bytearray()
        while True:
            if not state.get("started"):  # startup phase: int32 length, int32 code, no type byte
                if len(buffer) < 8:
                    break
                length, code = struct.unpack("!ii", buffer[:8])
                if len(buffer) < length:
                    break
                message = bytes(buffer[:length])
                del buffer[:length]
                if code in (SSL_REQUEST, GSSENC_REQUEST):
                    client.write(b"N")  # no encryption: the client goes on in clear text
                    continue
                state["started"] = True
                out += message
                continue
            if len(buffer) < 5:
                break
            kind = bytes(buffer[:1])
            length = struct.unpack("!i", buffer[1:5])[0]
            if len(buffer) < 1 + length:
                break
            body = bytes(buffer[5:1 + length])
            del buffer[:1 + length]
            out += self._rewrite(kind, body)
        return bytes(out)

    def _rewrite(self, kind: bytes, body: bytes) -> bytes:
        if kind == b"P":  # name\0 query\0 int16 nparams, int32 types
            name, _, rest = body.partition(b"\0")
            query = rest[:rest.index(b"\0")]
            if fault := self._fault_for(query):
                # no parameter types: the server refuses the statement before it would look at a Bind
                return _message(b"P", name + b"\0" + fault.replacement + b"\0" + struct.pack("!h", 0))
        elif kind == b"Q":  # query\0
            if fault := self._fault_for(body.rstrip(b"\0")):
                return _message(b"Q", fault.replacement + b"\0")
        return _message(kind, body)


def _message(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!i", len(body) + 4) + body


class RedisFaultProxy(_FilteringProxy):
    """RESP from the client (arrays of bulk strings, as every client library sends): see the module docstring."""

    def fail(self, *words: str, error: str = "ERR injected failure", times: int | None = None) -> Fault:
        """Make the server answer `-{error}` to commands whose first arguments are `words` (case-insensitive)."""
        quoted = error.replace("\\", "\\\\").replace("'", "\\'")
        script = f"return redis.error_reply('{quoted}')".encode()
        fault = Fault(tuple(w.lower().encode() for w in words), _resp(b"EVAL", script, b"0"), times)
        self.faults.append(fault)
        return fault

    def _fault_for(self, text: bytes) -> Fault | None:  # here `text` is NUL-joined arguments
        args = [a.lower() for a in text.split(b"\0")]
        for fault in self.faults:
            if tuple(args[:len(fault.match)]) == fault.match and fault.take():
                return fault
        return None

    def _filter(self, buffer: bytearray, client: asyncio.StreamWriter, state: dict[str, bool]) -> bytes:
        out = bytearray()
        while (parsed := _command(buffer)) is not None:
            size, args = parsed
            raw = bytes(buffer[:size])
            del buffer[:size]
            fault = self._fault_for(b"\0".join(args)) if args else None
            out += fault.replacement if fault else raw
        return bytes(out)


def _resp(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


def _command(buffer: bytearray) -> tuple[int, list[bytes]] | None:
    """(bytes used, arguments) of the first complete command in `buffer`, else None (wait for more)."""
    end = buffer.find(b"\r\n")
    if end < 0:
        return None
    if buffer[:1] != b"*":  # an inline command: one line, words split by spaces
        return end + 2, bytes(buffer[:end]).split()
    count, pos, args = int(buffer[1:end]), end + 2, []
    for _ in range(count):
        end = buffer.find(b"\r\n", pos)
        if end < 0:
            return None
        size = int(buffer[pos + 1:end])
        start = end + 2
        if len(buffer) < start + size + 2:
            return None
        args.append(bytes(buffer[start:start + size]))
        pos = start + size + 2
    return pos, args


__all__ = ["PG_FAILING_SQL", "Fault", "PgFaultProxy", "RedisFaultProxy"]
