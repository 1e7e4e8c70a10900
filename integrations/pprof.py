"""Read a pprof profile (profile.proto, usually gzipped) far enough to say where the memory is.

The format is github.com/google/pprof/proto/profile.proto. This reads only what a "top" needs:
`sample_type`, `sample` (location ids, leaf first, and values), `location` (its `line`s, the last of
which is the caller the others were inlined into), `function` (a name index) and `string_table`; every
other field is skipped by its wire type, so newer writers' additions do not break it. `top()` then does
what `go tool pprof -top -sample_index=inuse_space` does: flat (the sample's leaf function) and cum
(every function on the stack, once per sample).

Nothing here trusts the input: the decompressed size is bounded, every index is checked, and any
malformation is one `ProfileError` sentence, so the caller can attach the file as fetched and say it
could not be read. Profile symbols are outside text: whoever shows them escapes them.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

MAX_PROFILE_BYTES = 64 * 2**20  # decompressed; a heap profile of a large service is a few MiB
GZIP_MAGIC = b"\x1f\x8b"


class ProfileError(ValueError):
    """The bytes are not a profile this reader understands; the message says why in one phrase."""


@dataclass(frozen=True)
class Entry:
    function: str
    flat: int
    cum: int


@dataclass
class Profile:
    sample_types: list[tuple[str, str]]  # (type, unit), e.g. ("inuse_space", "bytes")
    samples: list[tuple[list[int], list[int]]]  # (location ids leaf first, values)
    locations: dict[int, list[int]]  # location id -> function ids, innermost (inlined) first
    functions: dict[int, str]  # function id -> name
    time_nanos: int = 0
    default_type: str = ""
    strings: list[str] = field(default_factory=list)

    @property
    def taken_at(self) -> datetime | None:
        return datetime.fromtimestamp(self.time_nanos / 1e9, UTC) if self.time_nanos > 0 else None

    def index_of(self, sample_type: str) -> int:
        names = [t for t, _ in self.sample_types]
        if sample_type not in names:
            raise ProfileError(f"it has no {sample_type} values (it has {', '.join(names) or 'none'})")
        return names.index(sample_type)

    def total(self, sample_type: str) -> int:
        i = self.index_of(sample_type)
        return sum(values[i] for _, values in self.samples)

    def top(self, sample_type: str, limit: int = 10) -> list[Entry]:
        """Functions by flat value of `sample_type` (ties by cum), as `pprof -top` lists them."""
        i = self.index_of(sample_type)
        flat: dict[str, int] = defaultdict(int)
        cum: dict[str, int] = defaultdict(int)
        for location_ids, values in self.samples:
            value = values[i]
            if not value:
                continue
            names = [self.functions.get(f, "?") for loc in location_ids for f in self.locations.get(loc, [])]
            if not names:
                continue
            flat[names[0]] += value
            for name in set(names):
                cum[name] += value
        ranked = sorted(cum, key=lambda n: (-flat.get(n, 0), -cum[n], n))
        return [Entry(n, flat.get(n, 0), cum[n]) for n in ranked[:limit]]


def parse(data: bytes) -> Profile:
    """A profile from its bytes (gzipped or not), or ProfileError."""
    raw = _gunzip(data) if data[:2] == GZIP_MAGIC else data
    if not raw:
        raise ProfileError("it is empty")
    try:
        return _profile(raw)
    except (IndexError, KeyError, UnicodeDecodeError) as exc:
        raise ProfileError(f"it is not a valid profile.proto message ({type(exc).__name__})") from None


def _gunzip(data: bytes) -> bytes:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, MAX_PROFILE_BYTES + 1)
    except zlib.error as exc:
        raise ProfileError(f"it is not valid gzip ({exc})") from None
    if len(out) > MAX_PROFILE_BYTES:
        raise ProfileError(f"it is larger than {MAX_PROFILE_BYTES // 2**20} MiB uncompressed")
    return out


# --- protobuf wire format ---------------------------------------------------------------------


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ProfileError("it ends inside a number" if pos >= len(data) else "it has an overlong varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(data: bytes) -> list[tuple[int, int, int | bytes]]:
    """(field number, wire type, value): ints for varints, bytes for length-delimited; fixed widths skipped."""
    out: list[tuple[int, int, int | bytes]] = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ProfileError("it has a field numbered 0")
        if wire == 0:
            value, pos = _varint(data, pos)
            out.append((number, wire, value))
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise ProfileError("a field runs past the end of the data")
            out.append((number, wire, data[pos:pos + length]))
            pos += length
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
            if pos > len(data):
                raise ProfileError("a field runs past the end of the data")
        else:
            raise ProfileError(f"it uses protobuf wire type {wire}, which profiles do not")
    return out


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _ints(fields: list[tuple[int, int, int | bytes]], number: int) -> list[int]:
    """A repeated integer field, packed (proto3's default) or not."""
    out: list[int] = []
    for n, wire, value in fields:
        if n != number:
            continue
        if wire == 0 and isinstance(value, int):
            out.append(_signed(value))
        elif isinstance(value, bytes):
            pos = 0
            while pos < len(value):
                item, pos = _varint(value, pos)
                out.append(_signed(item))
    return out


def _int(fields: list[tuple[int, int, int | bytes]], number: int) -> int:
    found = [v for n, w, v in fields if n == number and w == 0 and isinstance(v, int)]
    return _signed(found[-1]) if found else 0


def _messages(fields: list[tuple[int, int, int | bytes]], number: int) -> list[list[tuple[int, int, int | bytes]]]:
    return [_fields(v) for n, w, v in fields if n == number and w == 2 and isinstance(v, bytes)]


def _profile(raw: bytes) -> Profile:
    top = _fields(raw)
    strings = [v.decode("utf-8") for n, w, v in top if n == 6 and w == 2 and isinstance(v, bytes)]
    if not strings or strings[0] != "":
        raise ProfileError("its string table does not start with the empty string")

    def s(index: int) -> str:
        if not 0 <= index < len(strings):
            raise ProfileError(f"it refers to string {index} of {len(strings)}")
        return strings[index]

    sample_types = [(s(_int(m, 1)), s(_int(m, 2))) for m in _messages(top, 1)]
    if not sample_types:
        raise ProfileError("it has no sample types")
    functions = {_int(m, 1): s(_int(m, 2)) for m in _messages(top, 5)}
    locations = {_int(m, 1): [_int(line, 1) for line in _messages(m, 4)] for m in _messages(top, 4)}
    samples = []
    for m in _messages(top, 2):
        ids, values = _ints(m, 1), _ints(m, 2)
        if len(values) != len(sample_types):
            raise ProfileError(f"a sample has {len(values)} values for {len(sample_types)} sample types")
        if any(i not in locations for i in ids):
            raise ProfileError("a sample refers to a location that is not in the profile")
        samples.append((ids, values))
    default = _int(top, 14)
    return Profile(sample_types, samples, locations, functions, time_nanos=_int(top, 9),
                   default_type=s(default) if default else "", strings=strings)
