"""`/cf graph` against a real Prometheus scraping the sandbox's stand-ins, through the Slack simulator.

A real query and every runbook alias give a PNG in the request's thread (checked as a PNG, decoded,
with the data line and the runbook threshold line in its pixels); the reply judges the series against
the threshold. Bad PromQL shows Prometheus' own words, escaped; a range past Prometheus' 11,000 points
gets a coarser step, said; no data is a sentence and no picture; Prometheus down or not configured is
one line. matplotlib is loaded only when a graph is drawn, never by the bot at rest.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
import yaml
from PIL import Image

from bot.config import parse_settings
from bot.services import build_services
from commands.logs.graph import ALIASES, NAMESPACE, plan_step
from sandbox.probe_targets import ProbeTargets
from tests import prometheus_support
from tests.harness import BASE_CONFIG, CHANNEL, VIEWER, BotHarness, merge, start_bot
from tests.k8s_support import assert_slack_accepted_everything, reply_text
from tests.processes import free_port
from tests.prometheus_support import SHIPPED_RULES, Monitoring, until

monitoring = prometheus_support.monitoring

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LINE_BLUE = (0x1F, 0x77, 0xB4)  # matplotlib's first line colour (C0)
THRESHOLD_RED = (0xD6, 0x27, 0x28)  # the runbook threshold line


@pytest.fixture
async def targets() -> AsyncIterator[ProbeTargets]:
    stand_ins = ProbeTargets()
    await stand_ins.start()
    yield stand_ins
    await stand_ins.stop()


async def graph_bot(sim, tmp_path, config: dict[str, Any]) -> BotHarness:
    """The bot with the clients `bot.services` builds from this config (the Prometheus client among them)."""
    settings = parse_settings(merge(BASE_CONFIG, config), "test config")
    return await start_bot(sim, database_url=f"sqlite:///{tmp_path / 'cf.db'}", config=config,
                           services=build_services(settings, only={"prometheus"}))


@pytest.fixture
async def scraped(sim, tmp_path, targets, monitoring: Monitoring) -> AsyncIterator[tuple[BotHarness, Monitoring]]:
    """A bot whose `prometheus.url` is a real Prometheus that has scraped the stand-ins a few times."""
    await monitoring.scrape(targets.scrape_configs())
    await until(lambda: _samples(monitoring, 4), "four scrapes of graphql-api", 20)
    bot = await graph_bot(sim, tmp_path, {"prometheus": {"url": monitoring.prometheus_url, "timeout_seconds": 5}})
    yield bot, monitoring
    await bot.close()


async def _samples(monitoring: Monitoring, n: int) -> bool | None:
    found = await monitoring.query(f'count_over_time(up{{job="graphql-api"}}[1m]) >= {n}')
    return True if found else None


def graphs(bot: BotHarness) -> list[dict[str, Any]]:
    return [f for f in bot.sim.files if f["filename"].startswith("graph-")]


def pixels(png: bytes) -> tuple[tuple[int, int], dict[tuple[int, int, int], int]]:
    """The image's size and how many pixels have each colour (after checking it is a whole PNG)."""
    assert png[:8] == PNG_SIGNATURE
    Image.open(io.BytesIO(png)).verify()  # a complete, well-formed PNG (checksums included)
    image = Image.open(io.BytesIO(png)).convert("RGB")
    found: list[tuple[int, Any]] = image.getcolors(maxcolors=image.size[0] * image.size[1]) or []
    return image.size, {(c[0], c[1], c[2]): n for n, c in found}


def near(colours: dict[tuple[int, int, int], int], wanted: tuple[int, int, int], slack: int = 40) -> int:
    """Pixels within `slack` of `wanted` in each channel (lines are anti-aliased, dashes blend at their ends)."""
    return sum(n for c, n in colours.items() if all(abs(a - b) <= slack for a, b in zip(c, wanted, strict=True)))


async def test_graph_uploads_a_png_of_a_real_query_with_the_runbook_threshold(scraped, targets) -> None:
    bot, prometheus = scraped
    await bot.slash("graph error-rate --since 30s", user=VIEWER)  # Prometheus has a few seconds of data
    reply = bot.messages()[-1]
    said = reply_text(reply)
    assert "Graph of `error-rate` over the last 30s" in said, said
    assert "Under the runbook threshold (5%) over the whole range." in said and "job=graphql-api" in said
    [upload] = graphs(bot)
    assert upload["thread_ts"] == reply["ts"] and upload["channel"] == CHANNEL  # in the request's thread
    size, colours = pixels(upload["content"])
    assert size == (1000, 420) and len(upload["content"]) > 10_000
    assert near(colours, LINE_BLUE) > 150 and near(colours, THRESHOLD_RED) > 500, "no data or no threshold line"
    assert len(colours) > 50  # text, axes, anti-aliased lines: not a blank image

    # The knob over the threshold: the next graph says so.
    targets.knobs.error_rate = 0.3
    await until(lambda: _over(prometheus), "the error rate over 5% in Prometheus", 20)
    await bot.slash("graph error-rate --since 5m", user=VIEWER)
    said = reply_text(bot.messages()[-1])
    assert ":warning: Over the runbook threshold (5%) now: `job=graphql-api`." in said, said

    # Raw PromQL with double quotes (in single quotes, as the usage says), and a step of its own.
    query = """'sum by (code) (rate(http_requests_total{job="graphql-api"}[1m]))'"""
    await bot.slash(f"graph {query} --since 30s --step 1s")
    said = reply_text(bot.messages()[-1])
    assert "one point every 1s" in said and "code=200" in said and "code=500" in said, said
    assert len(graphs(bot)) == 3
    _, colours = pixels(graphs(bot)[-1]["content"])
    assert near(colours, LINE_BLUE) > 150 and near(colours, THRESHOLD_RED) == 0  # no runbook threshold here
    assert_slack_accepted_everything(bot.sim)


async def _over(monitoring: Monitoring) -> bool | None:
    expr = f"({ALIASES['error-rate'].expr}) > 0.05"
    return True if await monitoring.query(expr) else None


async def test_every_runbook_alias_has_data_from_the_stand_ins_and_a_graph(scraped) -> None:
    bot, prometheus = scraped
    for name, alias in ALIASES.items():
        assert await prometheus.query(alias.expr.replace(NAMESPACE, "collaboration")), f"{name}: no data"
        await bot.slash(f"graph {name} --since 2m", user=VIEWER)
        assert graphs(bot)[-1]["filename"].startswith(f"graph-{name}-"), (name, bot.messages()[-1])
    assert len(graphs(bot)) == len(ALIASES)
    said = "\n".join(reply_text(m) for m in bot.messages())
    assert "Under the runbook threshold (160)" in said and "Under the runbook threshold (90%)" in said
    assert "Under the runbook threshold (2 s)" in said
    assert "pod=graphql-api-6c9f7d8b5-2xkqp" in said  # pod-memory: one line per pod of the namespace


def test_the_aliases_graph_the_shipped_rules_expressions_and_thresholds() -> None:
    """The threshold line on a graph is the line the alert fires at: alias expression > threshold is the rule."""
    rules = {r["alert"]: r for g in yaml.safe_load(SHIPPED_RULES.read_text())["groups"] for r in g["rules"]}
    checked = 0
    for name, alias in ALIASES.items():
        if alias.threshold is None:
            assert not alias.alert, name
            continue
        rule = rules[alias.alert]
        assert " ".join(rule["expr"].split()) == f"({alias.expr}) > {alias.threshold:g}", name
        checked += 1
    assert checked == 4


async def test_graph_bad_input_gets_words_not_a_picture(scraped) -> None:
    bot, _ = scraped
    # Prometheus' own parse error, escaped (`&` is shown, not taken as markup).
    await bot.slash("graph 'sum(rate(http_requests_total[5m])) & 1'", user=VIEWER)
    raw = json.dumps(bot.messages()[-1]["blocks"])
    said = reply_text(bot.messages()[-1])
    assert "Prometheus refused the query (bad_data)" in said and "unexpected character" in said, said
    assert "&amp;" in raw and " & " not in raw.replace("&amp;", "")

    # Double quotes dropped by Slack's shell-like split: Prometheus' error, and how to quote.
    await bot.slash('graph up{job="graphql-api"}', user=VIEWER)
    said = reply_text(bot.messages()[-1])
    assert "Prometheus refused the query" in said and "put the whole query in single quotes" in said, said

    # A day at one point a second is 86,401 points: drawn coarser, and said.
    await bot.slash("graph up --since 1d --step 1s", user=VIEWER)
    said = reply_text(bot.messages()[-1])
    assert "`--step 1s` over 1d would be 86,401 points per series, more than the 11,000 Prometheus allows: " \
           "drawn with one point every 8s instead." in said, said
    assert len(graphs(bot)) == 1

    # No data: a sentence, no image.
    await bot.slash("graph no_such_metric_anywhere", user=VIEWER)
    said = reply_text(bot.messages()[-1])
    assert "No data for `no_such_metric_anywhere` over the last 1h" in said and "nothing to draw" in said, said
    await bot.slash("graph 0/0", user=VIEWER)  # NaN at every step: data, but nothing to draw
    said = reply_text(bot.messages()[-1])
    assert "No data for `0/0`" in said and "but not one finite value" in said, said
    await bot.slash("graph up --since 5x", user=VIEWER)
    assert "is not a duration" in " ".join(bot.private_texts())
    assert len(graphs(bot)) == 1
    assert "Traceback" not in json.dumps([c.args for c in bot.sim.calls], default=str)
    assert_slack_accepted_everything(bot.sim)


async def test_prometheus_down_or_not_configured_is_one_line(sim, tmp_path) -> None:
    port = free_port()  # nothing listens there
    bot = await graph_bot(sim, tmp_path, {"prometheus": {"url": f"http://127.0.0.1:{port}", "timeout_seconds": 2}})
    try:
        await bot.slash("graph error-rate", user=VIEWER)
        [line] = [t for t in bot.private_texts() + [reply_text(m) for m in bot.messages()] if "Prometheus" in t]
        assert f":warning: Prometheus: cannot reach 127.0.0.1:{port}" in line and "\n" not in line.strip(), line
        assert not graphs(bot)
    finally:
        await bot.close()
    unconfigured = await graph_bot(sim, tmp_path / "none", {})
    try:
        await unconfigured.slash("graph error-rate", user=VIEWER)
        said = " ".join(unconfigured.private_texts() + [reply_text(m) for m in unconfigured.messages()])
        assert "Prometheus is not configured: set `prometheus.url` in the config" in said, said
    finally:
        await unconfigured.close()


def test_the_step_stays_within_prometheus_points_limit() -> None:
    assert plan_step(3600, None) == (15, "")
    assert plan_step(300, None) == (2, "")
    assert plan_step(86400, 1)[0] == 8 and "86,401 points" in plan_step(86400, 1)[1]
    assert plan_step(11_000, 1) == (1, "")  # exactly the limit is allowed
    assert 90 * 86400 / plan_step(90 * 86400, 1)[0] <= 11_000


def test_the_bot_at_rest_does_not_load_matplotlib() -> None:
    """matplotlib (and numpy under it) load on the first graph, not with the bot: idle RSS does not pay for them."""
    probe = ("import sys, app.cli, bot.runtime, incidents.assemble, commands.catalog, commands.logs.graph; "
             "print(sorted(m for m in ('matplotlib', 'numpy', 'PIL') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
