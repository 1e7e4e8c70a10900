"""`graph QUERY|ALIAS [--since 1h] [--step S]`: a PromQL range query drawn as a PNG in the thread.

The on-call's first question about an alert is "since when, and how bad": a picture answers it. The
query is Prometheus' `query_range` (`integrations.prometheus`) over the last `--since` (default 1h),
one point per `--step` (default: about 240 points). An alias names one of the runbook's series:

    error-rate      graphql-api's 5xx share             threshold 5 %    (alert GraphQLHighErrorRate)
    latency-p95     graphql-api's p95 request latency   threshold 2 s    (alert GraphQLHighLatency)
    db-connections  PostgreSQL connections              threshold 160    (alert DatabaseHighConnections)
    redis-memory    Redis used_memory / maxmemory       threshold 90 %   (alert RedisHighMemory)
    ws-connections  open WebSocket connections
    pod-memory      each pod's working set in the bot's namespace

Their expressions are those of deploy/prometheus/rules.yml (a test holds them equal), and the graph
draws the runbook threshold as a line. Config `prometheus.graphs` adds aliases, or redefines these for
other metric names (the runbook threshold stays); `$namespace` in an expression is the bot's namespace.

The PNG is drawn with matplotlib's Agg canvas, imported inside `render_png` (the idle bot never loads
it) and run in a worker thread of its own, one drawing at a time, so the event loop keeps
answering Slack. Bad input gets words, never an empty picture: Prometheus' own error for bad PromQL, a
coarser step (said) where the range would pass Prometheus' 11,000 points per series, a sentence when
there is no data. Prometheus down is the one-line `Unavailable` of the integration.
"""

from __future__ import annotations

import asyncio
import io
import math
import re
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from base.durations import duration_text
from base.text import clip, code, literal, plural
from commands.args import duration, opt, pos, text
from commands.base import Context, command
from commands.reply import Fields, File, Level, Note, Part, Reply, Table, Text
from integrations.prometheus import MAX_POINTS, QueryError, Series

AREA = "Logs & Metrics"
DEFAULT_SINCE = 3600
TARGET_POINTS = 240  # the default step draws about this many points: smooth, and cheap for Prometheus
MAX_SERIES = 12  # lines drawn; a legend with more is unreadable
NAMESPACE = "$namespace"


@dataclass(frozen=True)
class Alias:
    """A runbook series: its PromQL, what it is, its unit, and the runbook threshold where it has one."""

    expr: str
    title: str
    unit: str = ""  # "ratio" (drawn as %), "seconds", "bytes", or "" (a count)
    threshold: float | None = None
    alert: str = ""  # the rule of deploy/prometheus/rules.yml that fires above the threshold


ALIASES: dict[str, Alias] = {
    "error-rate": Alias(
        'sum by (job) (rate(http_requests_total{job="graphql-api", code=~"5.."}[5m])) '
        '/ sum by (job) (rate(http_requests_total{job="graphql-api"}[5m]))',
        "graphql-api error rate (share of requests answered 5xx)", "ratio", 0.05, "GraphQLHighErrorRate"),
    "latency-p95": Alias(
        "histogram_quantile(0.95, sum by (job, le) "
        '(rate(http_request_duration_seconds_bucket{job="graphql-api"}[5m])))',
        "graphql-api p95 request latency", "seconds", 2.0, "GraphQLHighLatency"),
    "db-connections": Alias("sum by (instance) (pg_stat_activity_count)", "PostgreSQL connections", "", 160.0,
                            "DatabaseHighConnections"),
    "redis-memory": Alias("redis_memory_used_bytes / (redis_memory_max_bytes > 0)", "Redis memory used of maxmemory",
                          "ratio", 0.9, "RedisHighMemory"),
    "ws-connections": Alias("sum(websocket_active_connections)", "Open WebSocket connections"),
    "pod-memory": Alias(f'sum by (pod) (container_memory_working_set_bytes{{namespace="{NAMESPACE}", container!=""}})',
                        "Memory of each pod (working set)", "bytes"),
}


@dataclass(frozen=True)
class Chart:
    """What `render_png` draws: no Slack, no Prometheus, only numbers and words."""

    title: str
    series: Sequence[tuple[str, Sequence[tuple[float, float]]]]  # (legend label, (epoch seconds, value))
    start: float
    end: float
    unit: str = ""
    threshold: float | None = None


def _aliases_help() -> str:
    return ", ".join(ALIASES)


@command(
    "graph",
    summary="Graph a PromQL query or a runbook series over time (a PNG in the thread), with the runbook threshold "
            f"drawn: {_aliases_help()}.",
    area=AREA,
    args=[pos("QUERY", text, "PromQL (in single quotes if it has spaces or double quotes), or an alias: "
                             f"{_aliases_help()}, or one from config `prometheus.graphs`"),
          opt("--since", duration, "how far back (default 1h)", metavar="D"),
          opt("--step", duration, "one point every S (default: about 240 points)", metavar="S")],
    example="/cf graph error-rate --since 6h",
    needs=["prometheus"],
)
async def graph(ctx: Context, query: str, since: int | None = None, step: int | None = None) -> Reply:
    name, expr, alias = resolve(ctx, query)
    since = since or DEFAULT_SINCE
    every, coarser = plan_step(since, step)
    end = datetime.now(UTC)
    start = end - timedelta(seconds=since)
    shown = code(name) if alias or name != expr else code(expr, 120)
    try:
        answer = await ctx.prometheus.query_range(expr, start, end, every)
    except QueryError as exc:
        return _refused(expr, exc)
    notes: list[Part] = [Note(f"Prometheus warned: {literal(w, 300)}") for w in answer.warnings[:3]]
    if coarser:
        notes.insert(0, Note(coarser))
    drawn, left_out = _pick(answer.series)
    if not drawn:
        said = (f"answered {plural(len(answer.series), 'series', 'series')} for {code(expr, 300)}, but not one finite "
                "value (only NaN or ±Inf: a ratio of zeros, a quantile of an empty histogram)") if answer.series \
            else f"answered with no samples for {code(expr, 300)}"
        return Reply(title=f"No data for {shown} over the last {duration_text(since)}", level="warn", parts=[
            Text(f"Prometheus ({literal(ctx.prometheus.where)}) {said} from {_clock(start)} to {_clock(end)} UTC, "
                 "so there is nothing to draw."),
            Note("Is the metric scraped under that name? `up` lists Prometheus' targets; a rate needs two samples "
                 "inside its window."), *notes])
    unit, threshold = (alias.unit, alias.threshold) if alias else ("", None)
    title = f"{alias.title if alias else clip(expr, 100)} — last {duration_text(since)}"
    chart = Chart(title, [(_label(s), s.points) for s in drawn], start.timestamp(), end.timestamp(), unit, threshold)
    png = await asyncio.get_running_loop().run_in_executor(_drawing_thread(), render_png, chart)
    if left_out:
        notes.append(Note(f"Drawn: the {len(drawn)} of {len(answer.series)} series with the highest values; "
                          "aggregate (`sum by (...)`) to see fewer, wider lines."))
    level, verdict = _verdict(drawn, unit, threshold)
    stamp = end.strftime("%Y%m%d-%H%M%S")
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] if alias or name != expr else "query"
    fields = Fields([("Query", code(expr, 300)), ("Range", f"last {duration_text(since)}, one point every "
                                                           f"{duration_text(every)}"),
                     ("Series", plural(len(answer.series), "series", "series"))])
    parts: list[Part] = [fields, *([Text(verdict)] if verdict else []), _table(drawn, unit), *notes]
    return Reply(title=f"Graph of {shown} over the last {duration_text(since)}", level=level, parts=parts,
                 files=[File(f"graph-{slug}-{stamp}.png", png, title)])


def resolve(ctx: Context, query: str) -> tuple[str, str, Alias | None]:
    """(name shown, PromQL, the runbook alias or None): config aliases first, then the built-in ones."""
    key = query.strip().lower()
    configured = {k.lower(): v for k, v in ctx.settings.prometheus.graphs.items()}
    builtin = ALIASES.get(key)
    if key in configured:
        expr = configured[key]
        alias = Alias(expr, builtin.title, builtin.unit, builtin.threshold, builtin.alert) if builtin else \
            Alias(expr, key)
        return key, expr.replace(NAMESPACE, ctx.namespace), alias
    if builtin:
        return key, builtin.expr.replace(NAMESPACE, ctx.namespace), builtin
    return query.strip(), query.strip(), None


def plan_step(since: int, step: int | None) -> tuple[int, str]:
    """The step to ask for, and a note when the asked one would pass Prometheus' points-per-series limit."""
    if step is None:
        return max(1, math.ceil(since / TARGET_POINTS)), ""
    if since / step <= MAX_POINTS:
        return step, ""
    coarser = math.ceil(since / MAX_POINTS)
    return coarser, (f"`--step {duration_text(step)}` over {duration_text(since)} would be {since // step + 1:,} "
                     f"points per series, more than the {MAX_POINTS:,} Prometheus allows: drawn with one point "
                     f"every {duration_text(coarser)} instead.")


def _refused(expr: str, exc: QueryError) -> Reply:
    parts: list[Part] = [Text(f"{code(expr, 300)}\n>{literal(exc.message, 1500, one_line=True)}")]
    if re.search(r"[=~]\s*[^\s\"'`=~]", expr) and not re.search(r"[\"'`]", expr):
        parts.append(Note("Slack's line is split like a shell's, which drops double quotes: put the whole query in "
                          "single quotes, e.g. `/cf graph 'rate(http_requests_total{code=\"500\"}[5m])'`."))
    return Reply(title=f"Prometheus refused the query ({literal(exc.code or 'bad_data')})", level="error",
                 parts=parts)


def _finite(series: Series) -> list[float]:
    return [v for _, v in series.points if math.isfinite(v)]


def _pick(series: Sequence[Series]) -> tuple[list[Series], bool]:
    """The series with something to draw, highest first, at most MAX_SERIES; whether some were left out."""
    drawable = [s for s in series if _finite(s)]
    drawable.sort(key=lambda s: max(_finite(s)), reverse=True)
    return drawable[:MAX_SERIES], len(drawable) > MAX_SERIES


def _label(series: Series) -> str:
    labels = {k: v for k, v in series.labels.items() if k != "__name__"}
    if not labels:
        return series.labels.get("__name__", "value")
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))[:80]


def _verdict(drawn: Sequence[Series], unit: str, threshold: float | None) -> tuple[Level, str]:
    """The runbook's judgement: over the threshold now, earlier in the range, or not at all."""
    if threshold is None:
        return "info", ""
    limit = value_text(threshold, unit)
    now_over = [s for s in drawn if _finite(s) and _finite(s)[-1] > threshold]
    if now_over:
        names = ", ".join(code(_label(s), 60) for s in now_over[:5])
        return "warn", f":warning: Over the runbook threshold ({limit}) now: {names}."
    peak = max(max(_finite(s)) for s in drawn)
    if peak > threshold:
        return "info", (f"Under the runbook threshold ({limit}) now; it was over earlier "
                        f"(peak {value_text(peak, unit)}).")
    return "ok", f"Under the runbook threshold ({limit}) over the whole range."


def _table(drawn: Sequence[Series], unit: str) -> Table:
    rows = []
    for s in drawn:
        values = _finite(s)
        rows.append([_label(s), value_text(values[-1], unit), value_text(min(values), unit),
                     value_text(max(values), unit)])
    return Table(["SERIES", "LAST", "MIN", "MAX"], rows)


def _clock(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M")


def value_text(value: float, unit: str) -> str:
    """A value as the axis and the table show it, in the series' unit."""
    if not math.isfinite(value):
        return str(value)
    if unit == "ratio":
        return f"{value * 100:.3g}%"
    if unit == "seconds":
        return f"{value * 1000:.0f} ms" if abs(value) < 1 else f"{value:.3g} s"
    if unit == "bytes":
        for size, suffix in ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
            if abs(value) >= size:
                return f"{value / size:.1f} {suffix}"
        return f"{value:.0f} B"
    for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.1f}{prefix}"
    return f"{value:.0f}" if value == int(value) else f"{value:.3g}"


_TICKS = (10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800)


def _time_axis(span: float) -> tuple[int, str]:
    """Seconds between time ticks (about six across `span`, on whole minutes, hours or days) and their format."""
    spacing = next((t for t in _TICKS if span / t <= 8), _TICKS[-1])
    return spacing, "%H:%M:%S" if spacing < 60 else "%H:%M" if span <= 86400 else "%m-%d %H:%M"


_DRAWING = threading.Lock()  # matplotlib's state (font cache, text layout) is not meant for two threads at once
_DRAWER: list[ThreadPoolExecutor] = []


def _drawing_thread() -> ThreadPoolExecutor:
    """One thread of its own draws every graph: matplotlib's buffers then live in one malloc arena, not one per
    default-executor thread (measured, bench/graphs.py: 221 MB after 100 graphs across threads)."""
    if not _DRAWER:
        _DRAWER.append(ThreadPoolExecutor(1, thread_name_prefix="cf-graph"))
    return _DRAWER[0]


def render_png(chart: Chart) -> bytes:
    """The chart as PNG bytes. Runs in a worker thread; imports matplotlib on first use (Agg, no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, MultipleLocator

    with _DRAWING:
        figure = Figure(figsize=(10, 4.2), dpi=100, layout="tight")
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        for label, points in chart.series:
            xs = [t for t, _ in points]  # epoch seconds: ticks at whole UTC minutes and hours (`_time_axis`)
            ys = [v if math.isfinite(v) else math.nan for _, v in points]  # infinities are gaps, not the scale
            axes.plot(xs, ys, linewidth=1.4, label=label, marker="." if len(points) < 3 else None)
        if chart.threshold is not None:
            axes.axhline(chart.threshold, color="#d62728", linestyle="--", linewidth=1.6,
                         label=f"runbook threshold ({value_text(chart.threshold, chart.unit)})")
        values = [v for _, points in chart.series for _, v in points if math.isfinite(v)]
        if values and min(values) >= 0:  # from zero, with room above the data and the threshold line
            top = max(*values, chart.threshold or 0.0)
            axes.set_ylim(0, top * 1.15 if top > 0 else 1)
        axes.set_title(chart.title, loc="left", fontsize=11)
        axes.set_xlim(chart.start, chart.end)
        spacing, clock = _time_axis(chart.end - chart.start)
        axes.xaxis.set_major_locator(MultipleLocator(spacing))
        axes.xaxis.set_major_formatter(FuncFormatter(lambda t, _pos: datetime.fromtimestamp(t, UTC).strftime(clock)))
        axes.set_xlabel("UTC", fontsize=8)
        axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _pos: value_text(value, chart.unit)))
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8, loc="upper left")
        out = io.BytesIO()
        figure.savefig(out, format="png")
        figure.clear()
    return out.getvalue()
