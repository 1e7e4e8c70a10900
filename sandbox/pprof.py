"""Go heap profiles (`/debug/pprof/heap`) for the sandbox's pods: gzipped profile.proto, as net/http/pprof serves.

A profile is the message of github.com/google/pprof/proto/profile.proto: four sample types
(alloc_objects/count, alloc_space/bytes, inuse_objects/count, inuse_space/bytes, in Go's order), one
sample per allocation stack (leaf first) with a `bytes` label, one location per frame (one of them
with an inlined frame, so readers must handle `line` lists), the functions, and the string table with
"" first. The writer below is the few protobuf wire rules this needs (varints, length-delimited fields,
packed repeated integers); `sandbox/protobuf.py` is the reader for kubectl's request bodies.

What the profile says follows the pod: its in-use heap is a share of the memory metrics.k8s.io reports
for the container, and a pod near its memory limit (the memory-pressure scenario) shows one cache
holding most of it, which is what an engineer profiling a high-memory pod hopes to find.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass

from .util import fnv32a

HEAP_SHARE = 0.72  # in-use heap as a share of the container's resident memory (the rest: stacks, runtime, text)
PRESSURE = 0.85  # above this share of its memory limit, the leaking cache dominates the profile
SAMPLE_RATE = 512 * 1024  # runtime.MemProfileRate: the profile's period
MAIN = "/app/server"

# function -> (source file, start line)
FUNCTIONS: dict[str, tuple[str, int]] = {
    "net/http.(*conn).serve": ("net/http/server.go", 1995),
    "runtime.goexit": ("runtime/asm_amd64.s", 1700),
    "runtime.malg": ("runtime/proc.go", 4759),
    "runtime.newproc1": ("runtime/proc.go", 4921),
    "runtime.systemstack": ("runtime/asm_amd64.s", 509),
    "bufio.NewReaderSize": ("bufio/bufio.go", 57),
    "bufio.NewWriterSize": ("bufio/bufio.go", 599),
    "net/http.newBufioReader": ("net/http/server.go", 828),
    "encoding/json.(*decodeState).literalStore": ("encoding/json/decode.go", 857),
    "encoding/json.(*decodeState).object": ("encoding/json/decode.go", 590),
    "encoding/json.Unmarshal": ("encoding/json/decode.go", 96),
    "compress/flate.NewWriter": ("compress/flate/deflate.go", 666),
    "compress/gzip.(*Writer).Write": ("compress/gzip/gzip.go", 139),
    "github.com/99designs/gqlgen/graphql/executor.(*Executor).DispatchOperation": (
        "github.com/99designs/gqlgen@v0.17.55/graphql/executor/executor.go", 82),
    "github.com/jackc/pgx/v5/pgconn.(*PgConn).ReceiveMessage": (
        "github.com/jackc/pgx/v5@v5.7.1/pgconn/pgconn.go", 487),
    "github.com/jackc/pgx/v5.(*Conn).Query": ("github.com/jackc/pgx/v5@v5.7.1/conn.go", 711),
    "github.com/redis/go-redis/v9/internal/pool.NewConn": (
        "github.com/redis/go-redis/v9@v9.7.0/internal/pool/conn.go", 27),
    "github.com/redis/go-redis/v9/internal/pool.(*ConnPool).dialConn": (
        "github.com/redis/go-redis/v9@v9.7.0/internal/pool/pool.go", 212),
    "github.com/gorilla/websocket.newConn": ("github.com/gorilla/websocket@v1.5.3/conn.go", 275),
    "github.com/gorilla/websocket.(*Upgrader).Upgrade": ("github.com/gorilla/websocket@v1.5.3/server.go", 125),
    "github.com/candlefish/graphql-api/internal/documents.(*Loader).Load": ("internal/documents/loader.go", 64),
    "github.com/candlefish/graphql-api/internal/documents.(*Loader).fetch": ("internal/documents/loader.go", 118),
    "github.com/candlefish/graphql-api/internal/documents.(*SnapshotCache).Put": ("internal/documents/cache.go", 41),
    "github.com/candlefish/graphql-api/internal/store.(*Store).Documents": ("internal/store/documents.go", 33),
    "github.com/candlefish/graphql-api/internal/middleware.Gzip.func1": ("internal/middleware/gzip.go", 22),
    "github.com/candlefish/websocket-service/internal/hub.(*Room).Broadcast": ("internal/hub/room.go", 88),
    "github.com/candlefish/websocket-service/internal/hub.(*Hub).Join": ("internal/hub/hub.go", 51),
    "github.com/candlefish/websocket-service/internal/presence.(*Tracker).Touch": ("internal/presence/tracker.go", 30),
}

_SERVE = ["net/http.(*conn).serve", "runtime.goexit"]
_GQL = ["github.com/99designs/gqlgen/graphql/executor.(*Executor).DispatchOperation", *_SERVE]
_LOAD = ["github.com/candlefish/graphql-api/internal/documents.(*Loader).fetch",
         "github.com/candlefish/graphql-api/internal/documents.(*Loader).Load", *_GQL]
_JOIN = ["github.com/candlefish/websocket-service/internal/hub.(*Hub).Join", *_SERVE]
# the leaf frame and the one it is inlined into share a location: (leaf, caller) pairs
INLINED = {("encoding/json.(*decodeState).literalStore", "encoding/json.(*decodeState).object")}


@dataclass(frozen=True)
class Stack:
    frames: tuple[str, ...]  # leaf first
    share: float  # of the in-use heap, in the normal state
    object_bytes: int  # the size of one allocation
    churn: float  # allocated over the process's life, as a multiple of what is in use


def _stack(frames: list[str], share: float, object_bytes: int, churn: float) -> Stack:
    return Stack(tuple(frames), share, object_bytes, churn)


LEAK = "github.com/candlefish/graphql-api/internal/documents.(*SnapshotCache).Put"
STACKS: dict[str, list[Stack]] = {
    "graphql-api": [
        _stack([LEAK, *_LOAD], 0.14, 16384, 1.3),
        _stack(["encoding/json.(*decodeState).literalStore", "encoding/json.(*decodeState).object",
                "encoding/json.Unmarshal", *_LOAD], 0.21, 2048, 38.0),
        _stack(["github.com/jackc/pgx/v5/pgconn.(*PgConn).ReceiveMessage", "github.com/jackc/pgx/v5.(*Conn).Query",
                "github.com/candlefish/graphql-api/internal/store.(*Store).Documents", *_LOAD], 0.17, 8192, 21.0),
        _stack(["bufio.NewReaderSize", "net/http.newBufioReader", *_SERVE], 0.12, 4096, 9.0),
        _stack(["compress/flate.NewWriter", "compress/gzip.(*Writer).Write",
                "github.com/candlefish/graphql-api/internal/middleware.Gzip.func1", *_SERVE], 0.16, 655360, 4.0),
        _stack(["github.com/redis/go-redis/v9/internal/pool.NewConn",
                "github.com/redis/go-redis/v9/internal/pool.(*ConnPool).dialConn", *_GQL], 0.08, 4096, 1.1),
        _stack(["runtime.malg", "runtime.newproc1", "runtime.systemstack"], 0.12, 8192, 2.5),
    ],
    "websocket-service": [
        _stack(["github.com/gorilla/websocket.newConn", "github.com/gorilla/websocket.(*Upgrader).Upgrade",
                *_JOIN], 0.34, 8192, 3.0),
        _stack(["bufio.NewWriterSize", "github.com/gorilla/websocket.newConn",
                "github.com/gorilla/websocket.(*Upgrader).Upgrade", *_JOIN], 0.22, 4096, 3.0),
        _stack(["github.com/candlefish/websocket-service/internal/presence.(*Tracker).Touch",
                "github.com/candlefish/websocket-service/internal/hub.(*Room).Broadcast", *_JOIN], 0.18, 512, 60.0),
        _stack(["encoding/json.Unmarshal", "github.com/candlefish/websocket-service/internal/hub.(*Room).Broadcast",
                *_JOIN], 0.11, 1024, 90.0),
        _stack(["runtime.malg", "runtime.newproc1", "runtime.systemstack"], 0.15, 8192, 2.0),
    ],
}


def serves_heap(app: str) -> bool:
    return app in STACKS


def heap_profile(app: str, pod: str, resident_bytes: float, limit_bytes: float, now_nanos: int) -> bytes:
    """The gzipped heap profile of one pod of `app` using `resident_bytes` of memory (limit: `limit_bytes`)."""
    stacks = STACKS[app]
    pressured = bool(limit_bytes) and resident_bytes >= PRESSURE * limit_bytes
    shares = [s.share for s in stacks]
    if pressured and stacks[0].frames[0] == LEAK:
        rest = sum(shares[1:])
        shares = [0.74] + [0.26 * s / rest for s in shares[1:]]
    heap = resident_bytes * HEAP_SHARE
    jitter = 0.97 + (fnv32a(pod.encode()) % 600) / 10_000  # pods of one app differ a little
    writer = _ProfileWriter()
    values = []
    for stack, share in zip(stacks, shares, strict=True):
        inuse_bytes = int(heap * share * jitter) // stack.object_bytes * stack.object_bytes
        inuse_objects = inuse_bytes // stack.object_bytes
        alloc_objects = int(inuse_objects * stack.churn) + inuse_objects
        values.append((stack, [alloc_objects, alloc_objects * stack.object_bytes, inuse_objects, inuse_bytes]))
    return gzip.compress(writer.profile(values, now_nanos), mtime=0)


# --- the protobuf writer ----------------------------------------------------------------------


def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64  # int64 negatives are ten-byte varints
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _int(number: int, value: int) -> bytes:
    """A varint field; zero is omitted, as proto3 writers do."""
    return _varint(number << 3) + _varint(value) if value else b""


def _bytes(number: int, value: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def _packed(number: int, values: list[int]) -> bytes:
    return _bytes(number, b"".join(_varint(v) for v in values)) if values else b""


class _ProfileWriter:
    def __init__(self) -> None:
        self.strings: dict[str, int] = {"": 0}
        self.functions: dict[str, int] = {}
        self.locations: dict[tuple[str, ...], int] = {}

    def s(self, text: str) -> int:
        return self.strings.setdefault(text, len(self.strings))

    def function(self, name: str) -> int:
        return self.functions.setdefault(name, len(self.functions) + 1)

    def location(self, frames: tuple[str, ...]) -> int:
        """One location per frame, or per (inlined frame, its caller) pair."""
        return self.locations.setdefault(frames, len(self.locations) + 1)

    def _frames(self, stack: tuple[str, ...]) -> list[tuple[str, ...]]:
        out: list[tuple[str, ...]] = []
        i = 0
        while i < len(stack):
            pair = stack[i:i + 2]
            if len(pair) == 2 and pair in INLINED:
                out.append(pair)
                i += 2
            else:
                out.append((stack[i],))
                i += 1
        return out

    def profile(self, samples: list[tuple[Stack, list[int]]], now_nanos: int) -> bytes:
        body = bytearray()
        for kind, unit in (("alloc_objects", "count"), ("alloc_space", "bytes"), ("inuse_objects", "count"),
                           ("inuse_space", "bytes")):
            body += _bytes(1, _int(1, self.s(kind)) + _int(2, self.s(unit)))
        bytes_key = self.s("bytes")
        for stack, values in samples:
            ids = [self.location(frames) for frames in self._frames(stack.frames)]
            label = _int(1, bytes_key) + _int(3, stack.object_bytes)
            body += _bytes(2, _packed(1, ids) + _packed(2, values) + _bytes(3, label))
        body += _bytes(3, _int(1, 1) + _int(2, 0x400000) + _int(3, 0x1E00000) + _int(5, self.s(MAIN))
                       + _int(7, 1) + _int(8, 1) + _int(9, 1) + _int(10, 1))
        for frames, loc_id in self.locations.items():
            address = 0x400000 + 0x40 * loc_id + fnv32a(frames[0].encode()) % 0x30000 * 0x10
            lines = b"".join(_bytes(4, _int(1, self.function(name)) + _int(2, FUNCTIONS[name][1] + 7))
                             for name in frames)
            body += _bytes(4, _int(1, loc_id) + _int(2, 1) + _int(3, address) + lines)
        for name, fn_id in self.functions.items():
            file, line = FUNCTIONS[name]
            body += _bytes(5, _int(1, fn_id) + _int(2, self.s(name)) + _int(3, self.s(name))
                           + _int(4, self.s(file)) + _int(5, line))
        period_type = _int(1, self.s("space")) + _int(2, self.s("bytes"))
        default = self.s("inuse_space")
        tail = _int(9, now_nanos) + _bytes(11, period_type) + _int(12, SAMPLE_RATE) + _int(14, default)
        return bytes(body) + b"".join(_bytes(6, s.encode()) for s in self.strings) + tail
