"""Cache (the runbook's "Redis Alerts" and "Cache Optimization"): the monitored Redis, from Slack.

Reads are INFO and bounded SCAN walks (`integrations.redis`): never KEYS, never a command that
holds the server for long. The one change, `redis expire-scan`, is what the runbook's nonexistent
`FLUSHEXPIRED` means: a SCAN pass, during which Redis deletes every expired key it visits. The
memory threshold is `targets.redis.memory_threshold_percent` (runbook: 90%). The "Cache" line of
`/cf status` is registered here.
"""

from __future__ import annotations

from typing import Any

from base.durations import duration_text
from base.text import clip, plural
from commands.args import choice, opt, pos, positive_int, switch
from commands.base import CommandError, Context, Kind, Role, command
from commands.checks import Check, status_check
from commands.parts import Failed, degraded, failed_parts, optional
from commands.reply import Change, Code, Fields, Level, Note, Outcome, Part, Reply, Table
from commands.support.proxy import human_bytes
from integrations.redis import ScanResult

AREA = "Cache"
SECTIONS = ("memory", "stats", "clients", "keyspace")


def _usage(memory: dict[str, Any], threshold: float) -> tuple[str, Level]:
    """'used X of Y maxmemory (Z%, threshold T%)' and whether that is over the threshold."""
    used, limit = int(memory.get("used_memory", 0)), int(memory.get("maxmemory", 0))
    if not limit:
        return f"used {human_bytes(used)}; no maxmemory set, so the {threshold:g}% threshold does not apply", "ok"
    pct = 100 * used / limit
    level: Level = "warn" if pct > threshold else "ok"
    return f"used {human_bytes(used)} of {human_bytes(limit)} maxmemory ({pct:.1f}%, threshold {threshold:g}%)", level


def _memory_verdict(memory: dict[str, Any], threshold: float) -> str:
    """The title's judgement: used memory as a share of maxmemory against the threshold."""
    used, limit = int(memory.get("used_memory", 0)), int(memory.get("maxmemory", 0))
    if not limit:
        return f"{human_bytes(used)} used, no maxmemory set (the {threshold:g}% threshold cannot apply)"
    pct = 100 * used / limit
    side = "over" if pct > threshold else "at" if pct == threshold else "under"
    return f"memory at {pct:.1f}% of maxmemory, {side} the {threshold:g}% threshold"


@command(
    "redis info",
    summary="Redis judged: memory against maxmemory and the threshold, hit rate, keyspace, clients and "
            "evictions (the runbook's lines); `--all` adds every INFO field; SECTION shows one as redis-cli does.",
    area=AREA,
    args=[pos("SECTION", choice(*SECTIONS), "memory, stats, clients or keyspace (default: the runbook's lines)",
              default=None),
          switch("--all", "after the runbook's lines, every field of every INFO section (INFO all)")],
    example="/cf redis info --all",
    needs=["redis"],
)
async def redis_info(ctx: Context, section: str | None = None, all: bool = False) -> Reply:
    client = ctx.redis
    if section is not None:
        if all:
            raise CommandError(f"Give a SECTION or `--all`, not both: `/cf redis info {section}` shows that "
                               "section, `/cf redis info --all` every one.")
        info = await client.info(section)
        return Reply(title=f"Redis INFO {section} ({client.where})", parts=[Code(_lines(info))])
    info = await client.info("all" if all else None)
    threshold = ctx.settings.targets.redis.memory_threshold_percent
    usage, level = _usage(info, threshold)
    parts: list[Part] = [_runbook_lines(info, usage)]
    if level == "warn":
        parts.append(Note("Over the threshold: `/cf redis bigkeys` finds the largest keys; `/cf redis expire-scan` "
                          "reclaims expired ones" + (". With `noeviction`, writes fail once maxmemory is reached."
                                                     if info.get("maxmemory_policy") == "noeviction" else ".")))
    if all:
        parts += [Note("Every INFO field (INFO all):"), Code(_lines(info))]
    else:
        parts.append(Note("`/cf redis info --all` shows every INFO field; `/cf redis info SECTION` one section."))
    return Reply(title=f"Redis {client.where}: {_memory_verdict(info, threshold)}", parts=parts, level=level)


def _runbook_lines(info: dict[str, Any], usage: str) -> Fields:
    """What the runbook's Redis checks read: memory (info memory), hit rate and keyspace (info stats,
    keyspace), clients, evictions."""
    keyspace = ", ".join(f"{db}: {plural(int(v.get('keys', 0)), 'key')} ({v.get('expires', 0)} with a TTL)"
                         for db, v in info.items() if db.startswith("db") and isinstance(v, dict)) or "empty"
    return Fields([
        ("Memory", usage),
        ("Hit rate", _hit_rate(info)[0]),
        ("Keyspace", keyspace),
        ("Clients", f"{info.get('connected_clients', '?')} connected, {info.get('blocked_clients', 0)} blocked"),
        ("Evictions", f"{info.get('evicted_keys', 0)} evicted keys since the server started "
                      f"(Eviction policy {info.get('maxmemory_policy', '?')})"),
        ("Server", f"Redis {info.get('redis_version', '?')}, {info.get('role', '?')}, "
                   f"up {duration_text(int(info.get('uptime_in_seconds', 0)))}"),
    ])


def _lines(info: dict[str, Any]) -> str:
    """INFO as redis-cli prints its fields: `name:value`, one per line."""
    return "\n".join(f"{k}:{_flat(v)}" for k, v in info.items())


def _flat(value: Any) -> str:
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items())
    return str(value)


@command(
    "redis memory",
    summary="Used memory against maxmemory and the threshold (runbook: High Memory Usage >90%).",
    area=AREA,
    example="/cf redis memory",
    needs=["redis"],
)
async def redis_memory(ctx: Context) -> Reply:
    client = ctx.redis
    memory = await client.info("memory")
    usage, level = _usage(memory, ctx.settings.targets.redis.memory_threshold_percent)
    fields = Fields([
        ("Used", human_bytes(int(memory.get("used_memory", 0)))),
        ("maxmemory", human_bytes(int(memory.get("maxmemory", 0))) if memory.get("maxmemory") else "not set"),
        ("Peak", human_bytes(int(memory.get("used_memory_peak", 0)))),
        ("RSS", human_bytes(int(memory.get("used_memory_rss", 0)))),
        ("Fragmentation ratio", str(memory.get("mem_fragmentation_ratio", "?"))),
        ("Eviction policy", str(memory.get("maxmemory_policy", "?"))),
    ])
    parts: list[Any] = [fields]
    if level == "warn":
        parts.append(Note("Over the threshold: `/cf redis bigkeys` finds the largest keys; "
                          "`/cf redis expire-scan` reclaims expired ones."))
    return Reply(title=f"Redis memory: {usage}", parts=parts, level=level)


def _hit_rate(stats: dict[str, Any]) -> tuple[str, int, int]:
    hits, misses = int(stats.get("keyspace_hits", 0)), int(stats.get("keyspace_misses", 0))
    if hits + misses == 0:
        return "no key lookups yet", hits, misses
    return f"{100 * hits / (hits + misses):.1f}% ({hits} hits, {misses} misses)", hits, misses


@command(
    "redis hitrate",
    summary="Cache hit rate from keyspace_hits and keyspace_misses (INFO stats).",
    area=AREA,
    example="/cf redis hitrate",
    needs=["redis"],
)
async def redis_hitrate(ctx: Context) -> Reply:
    """INFO stats is the answer; INFO server (the uptime the counts cover) is an auxiliary part of it."""
    client = ctx.redis
    stats = await client.info("stats")
    server = await optional("Uptime (INFO server)", client.info("server"))
    rate, hits, misses = _hit_rate(stats)
    fields = Fields([("Hits", str(hits)), ("Misses", str(misses)),
                     ("Evicted keys", str(stats.get("evicted_keys", 0))),
                     ("Expired keys", str(stats.get("expired_keys", 0)))])
    if isinstance(server, Failed):
        since = "since the server started"
    else:
        uptime = int(server.get("uptime_in_seconds", 0))
        since = f"since the server started ({duration_text(uptime)} ago)"
    note = Note(f"Counted {since} or the last CONFIG RESETSTAT. The bot's own reads are in the counts too: "
                "`/cf redis bigkeys` adds one hit per key it lists (its TYPE; MEMORY USAGE counts none), "
                "`/cf redis hotkeys` one per key it scans (OBJECT FREQ) and one per key it lists.")
    return Reply(title=f"Redis hit rate: {rate}", parts=[fields, note, *failed_parts(server)],
                 level=degraded("info", server))


def _walk_note(walk: ScanResult, budget: float) -> Note:
    if walk.complete:
        return Note(f"Scanned all {walk.scanned} keys in {walk.seconds:.1f} s with SCAN.")
    return Note(f"Partial: the walk stopped after its {budget:g} s budget, having scanned {walk.scanned} of "
                f"about {walk.dbsize} keys (targets.redis.scan_budget_seconds).")


@command(
    "redis bigkeys",
    summary="The largest keys by MEMORY USAGE, from a SCAN walk with a time budget (never KEYS).",
    area=AREA,
    args=[opt("--limit", positive_int, "how many keys (default 10, at most 50)", default=10, metavar="N")],
    example="/cf redis bigkeys --limit 20",
    needs=["redis"],
)
async def redis_bigkeys(ctx: Context, limit: int = 10) -> Reply:
    client = ctx.redis
    budget = ctx.settings.targets.redis.scan_budget_seconds
    walk = await client.bigkeys(min(limit, 50), budget)
    table = Table(["KEY", "TYPE", "MEMORY"], [[clip(k, 80), t, human_bytes(n)] for k, t, n in walk.top],
                  empty="The database has no keys.")
    gone = walk.typed - len(walk.top)
    touched = Note(f"Sized with MEMORY USAGE, which Redis does not count as a key lookup; asking the TYPE of the "
                   f"{len(walk.top)} keys listed added {len(walk.top)} keyspace hits to `/cf redis hitrate`"
                   + (f" (and {gone} misses: keys gone meanwhile)." if gone else "."))
    return Reply(title=f"Largest {len(walk.top)} keys in {client.where}",
                 parts=[table, _walk_note(walk, budget), touched])


@command(
    "redis hotkeys",
    summary="The most frequently used keys (OBJECT FREQ); needs an LFU eviction policy.",
    area=AREA,
    args=[opt("--limit", positive_int, "how many keys (default 10, at most 50)", default=10, metavar="N")],
    example="/cf redis hotkeys",
    needs=["redis"],
)
async def redis_hotkeys(ctx: Context, limit: int = 10) -> Reply:
    client = ctx.redis
    policy = str((await client.info("memory")).get("maxmemory_policy", "?"))
    if "lfu" not in policy:
        return Reply(title=f"Hot keys need an LFU eviction policy; {client.where} uses `{policy}`", level="warn",
                     parts=[Note("Redis counts key accesses only under `allkeys-lfu` or `volatile-lfu`. Switch with "
                                 "`CONFIG SET maxmemory-policy allkeys-lfu` (ElastiCache: `maxmemory-policy` in the "
                                 "parameter group), let traffic run a while, then ask again.")])
    budget = ctx.settings.targets.redis.scan_budget_seconds
    walk = await client.hotkeys(min(limit, 50), budget)
    table = Table(["KEY", "TYPE", "FREQ"], [[clip(k, 80), t, str(n)] for k, t, n in walk.top],
                  empty="The database has no keys.")
    note = Note("FREQ is Redis's logarithmic access counter (0-255), decayed over time.")
    return Reply(title=f"Hottest {len(walk.top)} keys in {client.where} ({policy})",
                 parts=[table, note, _walk_note(walk, budget)])


@command(
    "redis expire-scan",
    summary="Reclaim expired keys with one SCAN pass (what the runbook's FLUSHEXPIRED means), after approval.",
    area=AREA,
    kind=Kind.change,
    role=Role.operator,
    example="/cf redis expire-scan",
    needs=["redis"],
)
async def redis_expire_scan(ctx: Context) -> Change:
    client = ctx.redis
    info = await client.info()
    if info.get("role") != "master":
        raise CommandError(f"{client.where} is a replica; expired keys are deleted on the primary. "
                           "Point the bot at the primary to reclaim them.")
    db = info.get(f"db{client.db}", {})
    used = human_bytes(int(info.get("used_memory", 0)))
    budget = ctx.settings.targets.redis.expire_scan_budget_seconds

    async def apply() -> Outcome:
        walk, before, after = await client.expire_scan(budget)
        reclaimed = after["expired_keys"] - before["expired_keys"]
        done = "" if walk.complete else f" (partial: stopped after {budget:g} s)"
        return Outcome(
            before=f"{before['keys']} keys, {human_bytes(before['used_memory'])} used",
            after=f"{after['keys']} keys, {human_bytes(after['used_memory'])} used; {reclaimed} expired keys "
                  f"reclaimed, {walk.scanned} scanned in {walk.seconds:.1f} s{done}",
        )

    return Change(
        summary=f"SCAN every key of {client.where} so Redis reclaims the expired ones",
        current=f"{db.get('keys', 0)} keys, {db.get('expires', 0)} with a TTL; {used} used",
        desired="expired keys deleted; live keys untouched",
        apply=apply,
        target=f"redis {client.where}",
        warnings=[f"The pass uses SCAN COUNT {client.scan_count} and stops after {budget:g} s; the server keeps "
                  "serving meanwhile."],
        # keys, TTLs and memory move by themselves (expiry is the point); what the approval stands on is that
        # this is still the primary (a replica cannot delete them)
        basis=f"{client.where} is the primary",
        no_undo="the keys it deletes had already expired: no command could read them, and none brings them back",
    )


@status_check("Cache", order=51, needs=["redis"], timeout=15.0)
async def cache_status(ctx: Context) -> list[Check]:
    """PING latency and memory against the threshold: what the runbook's Redis alert watches.

    PING is the line's primary call; INFO memory is an auxiliary part of it."""
    client = ctx.redis
    latency = await client.ping()
    memory = await optional("memory", client.info("memory"))
    if isinstance(memory, Failed):
        return [Check("Cache", "warn", f"Redis answers; {memory.label}: {memory.detail}", latency)]
    usage, level = _usage(memory, ctx.settings.targets.redis.memory_threshold_percent)
    return [Check("Cache", "warn" if level == "warn" else "ok", f"Redis answers; {usage}", latency)]
