"""Reads that judge (issue 13 §4): `redis info`, `db connections`, `db slow --by total` and `metrics` answer
with verdicts against the runbook's thresholds, not transcripts.

The judges are the real systems: a private redis-server and the machine's PostgreSQL (as in test_cache and
test_database, whose fixtures these are), and for `metrics` a real Prometheus scraping the same exposition
the bot scrapes, so `histogram_quantile` itself says what p50/p95/p99 are.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import psycopg
import pytest
import redis.asyncio as aioredis
from aiohttp import web

from sandbox.probe_targets import ProbeTargets
from tests import prometheus_support
from tests.conftest import PG_ADMIN_URL
from tests.data import test_cache, test_database
from tests.harness import VIEWER, BotHarness, start_bot
from tests.k8s_support import assert_slack_accepted_everything, k8s_bot, last_reply
from tests.prometheus_support import Monitoring, until

# the neighbouring suites' fixtures, by name, for pytest
private_redis, raw, cachebot = test_cache.private_redis, test_cache.raw, test_cache.cachebot
target_url, dbbot = test_database.target_url, test_database.dbbot
last_text = test_database.last_text
monitoring = prometheus_support.monitoring


# --- redis info -----------------------------------------------------------------------------------


async def test_redis_info_is_the_runbook_lines_with_a_verdict(cachebot: BotHarness, raw: aioredis.Redis) -> None:
    await raw.mset({"a": 1, "b": 2, "c": 3})
    await raw.expire("a", 600)
    used = int((await raw.info("memory"))["used_memory"])
    await raw.config_set("maxmemory", str(used * 10))
    await cachebot.slash("redis info")
    text = last_text(cachebot)
    title = cachebot.messages()[-1]["text"]
    assert re.search(r"memory at \d+\.\d% of maxmemory, under the 90% threshold", title), title
    assert ":large_green_circle:" in text
    for line in ("Memory", "Hit rate", "Keyspace", "Clients", "Evictions"):
        assert f"*{line}*" in text, line
    assert "db0: 3 keys (1 with a TTL)" in text and "blocked" in text and "0 evicted keys" in text
    assert "used_cpu_sys" not in text and "rdb_changes_since_last_save" not in text  # the rest is --all's

    await raw.config_set("maxmemory", str(int(used / 0.95)))
    await cachebot.slash("redis info")
    title = cachebot.messages()[-1]["text"]
    assert re.search(r"memory at \d+\.\d% of maxmemory, over the 90% threshold", title), title
    assert ":large_yellow_circle:" in last_text(cachebot) and "bigkeys" in last_text(cachebot)


async def test_redis_info_all_shows_every_section_and_a_section_still_works(cachebot: BotHarness,
                                                                              raw: aioredis.Redis) -> None:
    await raw.set("k", "v")
    await cachebot.slash("redis info --all")
    text = last_text(cachebot)
    assert "Hit rate" in text and "under the 90% threshold" not in text  # the verdict lines first (no maxmemory)
    attached = [f for f in cachebot.sim.files if f.get("thread_ts") == cachebot.messages()[-1]["ts"]]
    text += "".join(f["content"].decode() for f in attached)  # what does not fit in the message is attached whole
    for field in ("used_cpu_sys", "rdb_changes_since_last_save", "connected_slaves", "redis_version",
                  "db0:keys=1"):
        assert field in text, field
    await cachebot.slash("redis info keyspace")
    assert "db0:keys=1" in last_text(cachebot) and "used_cpu_sys" not in last_text(cachebot)
    await cachebot.slash("redis info memory --all")
    assert any("not both" in t for t in cachebot.private_texts())


# --- db connections -------------------------------------------------------------------------------


def _max_connections() -> int:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        row = conn.execute("SELECT current_setting('max_connections')::int").fetchone()
    assert row is not None
    return int(row[0])


async def test_db_connections_says_when_the_threshold_can_never_trip(sim, tmp_path, target_url: str) -> None:
    limit = _max_connections()
    blank = [await psycopg.AsyncConnection.connect(target_url, autocommit=True) for _ in range(2)]  # no app name
    try:
        for threshold, never in ((limit, True), (limit + 60, True), (limit - 1, False)):
            bot = await test_database._bot(sim, tmp_path, target_url, max_connections_threshold=threshold)
            try:
                await bot.slash("db connections")
                text = last_text(bot)
            finally:
                await bot.close()
            said = f"threshold {threshold} can never trip: the server refuses connections past max_connections {limit}"
            assert (said in text) is never, text
            if never:
                assert ":large_yellow_circle:" in text and "max_connections_threshold" in text
            found = re.search(r"\(no application name\)\s+(\d+)", text)
            assert found and int(found.group(1)) >= 2, text  # the group with no application_name, labelled
            assert "(none)" not in text and "None" not in text
    finally:
        for conn in blank:
            await conn.close()


# --- db slow --by total ---------------------------------------------------------------------------


@pytest.mark.needs_pg_stat_statements
async def test_db_slow_by_total_applies_no_mean_filter_unless_asked(dbbot: BotHarness, target_url: str) -> None:
    async with await test_database._session(target_url, "cf-test-total") as conn:
        await conn.execute("SELECT pg_stat_statements_reset()")
        for _ in range(3):
            await conn.execute("SELECT pg_sleep(0.12) /* cf-test-total */")  # 120 ms each: under the 1000 ms mean
    await dbbot.slash("db slow --by total")
    text = last_text(dbbot)
    assert "pg_sleep" in text and "by total time" in text and "mean ≥" not in dbbot.messages()[-1]["text"]
    assert "0 above the 1000 ms slow-query threshold" in text

    await dbbot.slash("db slow")  # by mean: the slow-query threshold is the floor
    assert "pg_sleep" not in last_text(dbbot) and "mean ≥ 1000 ms" in dbbot.messages()[-1]["text"]
    await dbbot.slash("db slow --by total --min-ms 1000")  # asked for: applied
    assert "pg_sleep" not in last_text(dbbot) and "mean ≥ 1000 ms" in dbbot.messages()[-1]["text"]
    await dbbot.slash("db slow --by total --min-ms 100")
    assert "pg_sleep" in last_text(dbbot)


# --- metrics --------------------------------------------------------------------------------------

# A service's /metrics as Prometheus' text format has it: two request-latency histograms (one within the SLA,
# one whose p95 lies beyond the largest finite bucket), a size histogram in bytes (not a latency: no SLA),
# an exhausted connection pool and a byte gauge.
EXPOSITION = """\
# HELP http_request_duration_seconds Request latency.
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.1",route="/graphql"} 51200
http_request_duration_seconds_bucket{le="0.5",route="/graphql"} 60950
http_request_duration_seconds_bucket{le="1",route="/graphql"} 62400
http_request_duration_seconds_bucket{le="2",route="/graphql"} 63010
http_request_duration_seconds_bucket{le="+Inf",route="/graphql"} 63120
http_request_duration_seconds_sum{route="/graphql"} 7890.4
http_request_duration_seconds_count{route="/graphql"} 63120
http_request_duration_seconds_bucket{le="0.1",route="/upload"} 10
http_request_duration_seconds_bucket{le="0.5",route="/upload"} 20
http_request_duration_seconds_bucket{le="1",route="/upload"} 30
http_request_duration_seconds_bucket{le="2",route="/upload"} 80
http_request_duration_seconds_bucket{le="+Inf",route="/upload"} 100
http_request_duration_seconds_sum{route="/upload"} 190.5
http_request_duration_seconds_count{route="/upload"} 100
# HELP http_response_size_bytes Response size.
# TYPE http_response_size_bytes histogram
http_response_size_bytes_bucket{le="1024"} 300
http_response_size_bytes_bucket{le="65536"} 900
http_response_size_bytes_bucket{le="1048576"} 1000
http_response_size_bytes_bucket{le="+Inf"} 1000
http_response_size_bytes_sum 3.1e+07
http_response_size_bytes_count 1000
# HELP db_connections Database pool connections by state.
# TYPE db_connections gauge
db_connections{pool="primary",state="active"} 20
db_connections{pool="primary",state="idle"} 0
db_connections{pool="primary",state="waiting"} 6
# HELP db_connections_max Configured pool size.
# TYPE db_connections_max gauge
db_connections_max{pool="primary"} 20
# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 6.81574400e+08
"""
SERIES = {"/graphql": 'http_request_duration_seconds{route="/graphql"}',
          "/upload": 'http_request_duration_seconds{route="/upload"}', "size": "http_response_size_bytes"}


@pytest.fixture
async def exposition() -> AsyncIterator[str]:
    """EXPOSITION served on a free port; its /metrics URL."""
    async def serve(request: web.Request) -> web.Response:
        return web.Response(body=EXPOSITION.encode(), headers={"Content-Type": "text/plain; version=0.0.4"})

    app = web.Application()
    app.router.add_get("/metrics", serve)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}/metrics"
    await runner.cleanup()


def seconds(shown: str) -> float:
    """`460 ms`, `1.15 s` as seconds."""
    number, unit = shown.split()
    return float(number) / (1000 if unit == "ms" else 1)


def quantile_rows(text: str) -> dict[str, list[str]]:
    """The quantile table of a `metrics` reply: series -> [count, p50, p95, p99] as shown."""
    block = next(b for b in text.split("```")[1::2] if b.strip().startswith("HISTOGRAM"))
    lines = block.strip().splitlines()[1:]
    return {cells[0]: cells[1:] for cells in (re.split(r"\s{3,}", line.strip()) for line in lines)}


def bullets(text: str, heading: str) -> list[str]:
    """The `• ...` lines under a bold heading of a reply."""
    after = text.split(heading, 1)[1].splitlines()[1:]
    found = []
    for line in after:
        if not line.startswith("• "):
            break
        found.append(line)
    return found


async def prometheus_quantiles(monitoring: Monitoring, q: float) -> dict[str, float]:
    """`histogram_quantile(q, ...)` by Prometheus itself, for each histogram of EXPOSITION."""
    async def ask(expr: str) -> list[dict] | None:
        return await monitoring.query(expr) or None

    latency = await until(lambda: ask(f"histogram_quantile({q}, http_request_duration_seconds_bucket)"),
                          "Prometheus has the latency histograms")
    size = await until(lambda: ask(f"histogram_quantile({q}, http_response_size_bytes_bucket)"), "and the sizes")
    found = {r["metric"]["route"]: float(r["value"][1]) for r in latency}
    found["size"] = float(size[0]["value"][1])
    return found


async def test_metrics_histograms_become_quantiles_judged_against_the_sla(sim, tmp_path, exposition: str,
                                                                          monitoring: Monitoring) -> None:
    await monitoring.scrape([{"job_name": "svc", "static_configs": [{"targets": [exposition.split("/")[2]]}]}])
    bot = await start_bot(sim, database_url=f"sqlite:///{tmp_path / 'cf.db'}",
                          config={"probes": {"metrics": {"svc": exposition}, "sla_seconds": 2}})
    try:
        await bot.slash("metrics svc", user=VIEWER)
        text = last_reply(bot)
        title = bot.messages()[-1]["text"]
    finally:
        await bot.close()
    rows = quantile_rows(text)
    judge = {q: await prometheus_quantiles(monitoring, q) for q in (0.5, 0.95, 0.99)}
    for column, q in ((1, 0.5), (2, 0.95), (3, 0.99)):
        shown = rows[SERIES["/graphql"]][column]
        assert abs(seconds(shown) - judge[q]["/graphql"]) < 0.006, (q, shown, judge[q])
    assert rows[SERIES["/graphql"]][0] == "63,120"
    # /upload: p50 interpolated in (1, 2]; p95 and p99 in the +Inf bucket, where Prometheus answers with the
    # largest finite bound (2): all that is known is "above 2 s"
    assert abs(seconds(rows[SERIES["/upload"]][1]) - judge[0.5]["/upload"]) < 0.006
    assert judge[0.95]["/upload"] == 2.0 and rows[SERIES["/upload"]][2:] == ["> 2.00 s", "> 2.00 s"]
    # sizes are bytes: humanised, and no latency SLA applies to them
    assert 1024 < judge[0.5]["size"] < 2**20 and rows[SERIES["size"]][1] == f"{judge[0.5]['size'] / 1024:.1f} KiB"

    assert "p95 over the 2 s SLA" in title and "pool `primary` exhausted: 20/20 active, 6 waiting" in title
    verdicts = bullets(text, "*Verdicts*")
    assert f"• `{SERIES['/graphql']}`: p95 {judge[0.95]['/graphql'] * 1000:.0f} ms, within the 2 s SLA" in verdicts
    assert f"• `{SERIES['/upload']}`: p95 over the 2 s SLA: more than 5% of requests took over 2.00 s" in verdicts
    assert "• pool `primary` exhausted: 20/20 active, 6 waiting" in verdicts
    assert len(verdicts) == 3  # the size histogram is not a latency: no SLA verdict
    assert ":red_circle:" in str(bot.messages()[-1]["blocks"])
    assert "650.0 MiB" in text  # process_resident_memory_bytes 681574400
    assert "_bucket" not in text  # the buckets became the quantiles
    assert_slack_accepted_everything(sim)


async def test_metrics_pattern_and_a_healthy_service(sim, tmp_path) -> None:
    targets = ProbeTargets()
    await targets.start()
    bot = await start_bot(sim, database_url=f"sqlite:///{tmp_path / 'cf.db'}",
                          config={"probes": targets.probes_config()})
    try:
        await bot.slash("metrics graphql-api http_request_duration", user=VIEWER)
        text, title = last_reply(bot), bot.messages()[-1]["text"]
        assert re.search(r"p95 \d+ ms, within the 2 s SLA", title), title  # the stand-in's p95 is 350 ms
        assert "db_connections" not in text and "process_resident" not in text  # the pattern still selects
        await bot.slash("metrics graphql-api process_resident_memory_bytes", user=VIEWER)
        assert re.search(r"process_resident_memory_bytes\s+\d+\.\d MiB", last_reply(bot))
        await bot.slash("metrics graphql-api db_connections", user=VIEWER)
        assert re.search(r"pool `primary`( exhausted)?: \d+/20 active, \d+ waiting", bot.messages()[-1]["text"])
    finally:
        await bot.close()
        await targets.stop()


async def test_metrics_per_pod_names_the_pod_over_the_sla(sim, tmp_path) -> None:
    async with k8s_bot(sim, tmp_path, scenario="db-pool-exhausted") as env:
        await env.bot.slash("metrics graphql-api --per-pod", user=VIEWER)
        text = last_reply(env.bot)
        names = (await env.kubectl("get", "pods", "-l", "app=graphql-api", "-o",
                                   "jsonpath={.items[*].metadata.name}")).split()
        exhausted = " ".join(bullets(text, "*Database pool exhausted*"))
        [stuck] = [n for n in names if n in exhausted]
        # the sandbox's stuck pod answers 14 % of its requests in over 2 s, the others 0.2 %
        over = " ".join(bullets(text, "*p95 over the 2 s SLA*"))
        assert stuck in over and not any(n in over for n in names if n != stuck), over
        assert 'http_request_duration_seconds{route="/graphql"} p95' in text and "_bucket" not in text
        assert re.search(r"process_resident_memory_bytes\s+\d+\.\d MiB", text)
        assert_slack_accepted_everything(sim)
