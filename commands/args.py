"""Typed command arguments, parsed once by the dispatcher (never by hand inside a command).

An `Arg` is positional (`DEPLOYMENT`), an option with a value (`--since 10m`, `--since=10m`) or a
boolean switch (`--all-namespaces`, `-A`). Its `type` is a converter that raises `ValueError` with a
sentence for the user; the parser turns that into a `UsageError` naming the argument.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from base.durations import UNIT_SECONDS
from base.patterns import PatternError, UserPattern
from base.text import code

_REQUIRED: Any = object()
ECHO = 60  # characters of what someone typed that a refusal repeats (escaped, in a code span)

Converter = Callable[[str], Any]


class UsageError(Exception):
    """Bad input: shown to the user with the command's usage line and example."""

    def __init__(self, message: str, command: str | None = None) -> None:
        super().__init__(message)
        self.command = command


@dataclass(frozen=True)
class Arg:
    """One declared argument. Use `pos()`, `opt()` or `switch()` to build it."""

    name: str
    type: Converter
    help: str
    default: Any = _REQUIRED
    metavar: str = ""
    short: str = ""
    boolean: bool = False
    greedy: bool = False

    @property
    def is_option(self) -> bool:
        return self.name.startswith("--")

    @property
    def required(self) -> bool:
        return self.default is _REQUIRED

    @property
    def param(self) -> str:
        return self.name.lstrip("-").replace("-", "_").lower()

    @property
    def usage(self) -> str:
        if self.boolean:
            return f"[{self.name}]"
        if self.is_option:
            return f"[{self.name} {self.metavar or self.param.upper()}]"
        shown = f"{self.name}..." if self.greedy else self.name
        return shown if self.required else f"[{shown}]"


def pos(name: str, type: Converter, help: str, default: Any = _REQUIRED, greedy: bool = False) -> Arg:
    return Arg(name=name, type=type, help=help, default=default, greedy=greedy)


def opt(name: str, type: Converter, help: str, default: Any = None, metavar: str = "", short: str = "") -> Arg:
    return Arg(name=name, type=type, help=help, default=default, metavar=metavar, short=short)


def switch(name: str, help: str, short: str = "") -> Arg:
    return Arg(name=name, type=bool, help=help, default=False, boolean=True, short=short)


def split_text(text: str) -> list[str]:
    """Shell-like split; Slack's smart quotes count as quotes; unbalanced quotes are a usage error."""
    text = text.replace("\u201c", '"').replace("\u201d", '"').replace("\u2018", "'").replace("\u2019", "'")
    try:
        return shlex.split(text)
    except ValueError as exc:
        raise UsageError(f"Could not read the arguments: {exc} (check your quotes).") from None


def parse_tokens(args: Iterable[Arg], tokens: list[str], command: str) -> dict[str, Any]:
    """Match tokens to declared args; convert each; fill defaults; refuse anything unexpected."""
    declared = list(args)
    options = {a.name: a for a in declared if a.is_option}
    options.update({a.short: a for a in declared if a.short})
    positionals = [a for a in declared if not a.is_option]
    values: dict[str, Any] = {}
    loose: list[str] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.startswith("-") and len(tok) > 1 and not _is_number(tok) and not _greedy_started(positionals, loose):
            name, eq, inline = tok.partition("=")
            arg = options.get(name)
            if arg is None:
                known = ", ".join(sorted(a.name for a in declared if a.is_option)) or "none"
                raise UsageError(f"Unknown option `{name}` (options: {known}).", command)
            if arg.boolean:
                if eq:
                    raise UsageError(f"`{arg.name}` takes no value.", command)
                values[arg.param] = True
            else:
                if not eq:
                    i += 1
                    if i >= len(tokens):
                        raise UsageError(f"`{arg.name}` needs a value ({arg.help}).", command)
                    inline = tokens[i]
                values[arg.param] = _convert(arg, inline, command)
            i += 1
            continue
        loose.append(tok)
        i += 1
    _bind_positionals(positionals, loose, values, command)
    for arg in declared:
        if arg.param not in values:
            if arg.required:
                raise UsageError(f"Missing {arg.name} ({arg.help}).", command)
            values[arg.param] = arg.default
    return values


def _greedy_started(positionals: list[Arg], loose: list[str]) -> bool:
    """Once a greedy TEXT argument has begun, dashes belong to the text."""
    fixed = [a for a in positionals if not a.greedy]
    return any(a.greedy for a in positionals) and len(loose) > len(fixed)


def _bind_positionals(positionals: list[Arg], loose: list[str], values: dict[str, Any], command: str) -> None:
    for idx, arg in enumerate(positionals):
        if arg.greedy:
            rest = loose[idx:]
            if rest:
                values[arg.param] = _convert(arg, " ".join(rest), command)
            return
        if idx < len(loose):
            values[arg.param] = _convert(arg, loose[idx], command)
    extra = loose[len(positionals):]
    if extra:
        raise UsageError(f"Unexpected argument `{extra[0]}`.", command)


def _convert(arg: Arg, raw: str, command: str) -> Any:
    try:
        return arg.type(raw)
    except ValueError as exc:
        raise UsageError(f"{arg.name}: {exc}", command) from None


def _is_number(tok: str) -> bool:
    return bool(re.fullmatch(r"-\d+", tok))


# --- converters -------------------------------------------------------------------------------

_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def k8s_name(raw: str) -> str:
    """A Kubernetes object name (DNS-1123 subdomain), as the API server validates it."""
    if len(raw) > 253 or not _DNS1123_SUBDOMAIN.fullmatch(raw):
        raise ValueError(
            f"{code(raw, ECHO)} is not a valid Kubernetes name (lowercase letters, digits, '-' and '.', "
            "starting and ending with a letter or digit, at most 253 characters)."
        )
    return raw


def k8s_label(raw: str) -> str:
    """A DNS-1123 label: deployment and namespace names."""
    if len(raw) > 63 or not _DNS1123_LABEL.fullmatch(raw):
        raise ValueError(
            f"{code(raw, ECHO)} is not a valid Kubernetes name (lowercase letters, digits and '-', "
            "starting and ending with a letter or digit, at most 63 characters)."
        )
    return raw


def whole_number(raw: str) -> int:
    if not re.fullmatch(r"[+-]?\d{1,9}", raw.strip()):
        raise ValueError(f"{code(raw, ECHO)} is not a whole number.")
    return int(raw)


def positive_int(raw: str) -> int:
    value = whole_number(raw)
    if value < 1:
        raise ValueError(f"must be at least 1, not {value}.")
    return value


_DURATION = re.compile(r"(\d+)(s|m|h|d)")


def duration(raw: str) -> int:
    """`90s`, `10m`, `1h30m`, `2d` -> seconds (kubectl's --since style)."""
    text = raw.strip().lower()
    if not text or not re.fullmatch(r"(\d+(s|m|h|d))+", text):
        raise ValueError(f"{code(raw, ECHO)} is not a duration (examples: 30s, 10m, 1h, 2d).")
    seconds = sum(int(n) * UNIT_SECONDS[u] for n, u in _DURATION.findall(text))
    if seconds <= 0 or seconds > 90 * 86400:
        raise ValueError("must be between 1s and 90d.")
    return seconds


def text(raw: str) -> str:
    value = raw.strip()
    if not value:
        raise ValueError("must not be empty.")
    if len(value) > 3000:
        raise ValueError("is longer than 3,000 characters.")
    return value


def cidr(raw: str) -> str:
    try:
        net = ipaddress.ip_network(raw.strip(), strict=False)
    except ValueError:
        raise ValueError(f"{code(raw, ECHO)} is not an IP address or CIDR block (example: 203.0.113.7/32).") from None
    return str(net)


def choice(*options: str) -> Converter:
    def convert(raw: str) -> str:
        value = raw.lower()
        if value not in options:
            raise ValueError(f"{code(raw, ECHO)} is not one of: {', '.join(options)}.")
        return value

    convert.__name__ = f"choice({'|'.join(options)})"
    return convert


_AGO = re.compile(r"(\d+)\s*(s|sec|secs|seconds?|m|min|mins|minutes?|h|hr|hrs|hours?|d|days?)\s+ago")


def point_in_time(raw: str) -> str:
    """`15 minutes ago`, `2h ago`, `1h30m ago` or an ISO-8601 time -> `YYYY-MM-DDTHH:MM:SSZ` (UTC).

    Relative times are fixed when the command is parsed, so a change approved later still acts on
    the moment the requester meant. A time without a zone is read as UTC.
    """
    text = raw.strip().lower()
    now = datetime.now(UTC)
    match = _AGO.fullmatch(text)
    if match:
        moment = now - timedelta(seconds=int(match.group(1)) * UNIT_SECONDS[match.group(2)[0]])
    elif text.endswith(" ago") and re.fullmatch(r"(\d+(s|m|h|d))+", text[:-4].strip()):
        moment = now - timedelta(seconds=duration(text[:-4].strip()))
    else:
        try:
            moment = datetime.fromisoformat(raw.strip().replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise ValueError(f"{code(raw, ECHO)} is not a time (examples: \"15 minutes ago\", 2h ago, "
                             "2026-01-31T14:05:00Z).") from None
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    if moment > now + timedelta(seconds=5):
        raise ValueError(f"{moment:%Y-%m-%d %H:%M:%S} UTC is in the future.")
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


_RDS_ID = re.compile(r"[a-z](?!.*--)[a-z0-9-]{0,62}(?<!-)")


def rds_identifier(raw: str) -> str:
    """An RDS instance, cluster or snapshot identifier, as RDS validates it (stored lowercase)."""
    value = raw.strip().lower()
    if not _RDS_ID.fullmatch(value):
        raise ValueError(f"{code(raw, ECHO)} is not a valid RDS identifier (1-63 letters, digits and hyphens, "
                         "starting with a letter, no two hyphens in a row, not ending with a hyphen).")
    return value


def regex(raw: str) -> UserPattern:
    """A pattern people type (grep-style search): RE2 syntax, linear time; a typo is a usage error."""
    try:
        return UserPattern.compile(raw)
    except PatternError as exc:
        raise ValueError(f"{code(raw, ECHO)} {exc}" if raw.strip() else str(exc)) from None


_NARROWEST_BROAD = {4: 8, 6: 32}  # prefixes shorter than these cover a continent, not an attacker


def blockable_cidr(raw: str) -> str:
    """An IP or CIDR precise enough to block: host bits unset, and no 0.0.0.0/0-like ranges."""
    text = raw.strip()
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ValueError(f"{code(raw, ECHO)} is not an IP address or CIDR block (example: 203.0.113.7/32).") from None
    narrowest = _NARROWEST_BROAD[net.version]
    if net.prefixlen < narrowest:
        raise ValueError(
            f"`{net}` covers {net.num_addresses:,} addresses; blocks wider than /{narrowest} are refused "
            "(they would cut off legitimate traffic, or everyone)."
        )
    try:
        ipaddress.ip_network(text, strict=True)
    except ValueError:
        host = text.split("/", 1)[0]
        raise ValueError(f"{code(raw, ECHO)} has host bits set; did you mean `{net}` (the whole block) "
                         f"or `{host}` (one address)?") from None
    return str(net)
