"""The soak's figures as Markdown: what was sent, what broke, how fast the acks were, and each invariant
with its count of violations. Written to its own section of bench/RESULTS.md (between markers, so the
other benchmarks' sections stay as they are)."""

from __future__ import annotations

import re
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench.soak_driver import Sent
from bench.soak_judge import Invariant

RESULTS = Path(__file__).with_name("RESULTS.md")
MARK_BEGIN, MARK_END = "<!-- soak:begin -->", "<!-- soak:end -->"


@dataclass
class Figures:
    title: str
    started: str
    wall_seconds: float
    load_seconds: float
    replicas: int
    sent: list[Sent]
    driver: Counter[str]
    faults: Counter[str]
    slack: Counter[str]
    k8s: dict[str, int]
    states: Counter[str]
    applied: Counter[str]
    verdicts: Counter[str]
    invariants: list[Invariant]
    events: list[tuple[float, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def violations(self) -> int:
        return sum(len(i.violations) for i in self.invariants)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def ack_rows(sent: list[Sent], replicas: int) -> list[str]:
    rows = ["| replica | acknowledged deliveries | p50 ack ms | p99 ack ms | max ms | "
            "not acknowledged (down, reset, > 3 s) |", "|---|---|---|---|---|---|"]
    for index in range(replicas):
        deliveries = [d for s in sent for d in s.deliveries if d.replica == index]
        acked = [d.elapsed * 1000 for d in deliveries if d.status == 200]
        rows.append(f"| {index} | {len(acked):,} | {pct(acked, 50):.1f} | {pct(acked, 99):.1f} | "
                    f"{max(acked, default=float('nan')):.0f} | {len(deliveries) - len(acked):,} |")
    return rows


def render(f: Figures) -> list[str]:
    d, s = f.driver, f.slack
    changes = [x for x in f.sent if x.kind == "change"]
    clicks = [x for x in f.sent if x.kind == "click"]
    reads = [x for x in f.sent if x.kind == "read"]
    approves = [c for c in clicks if c.text == "cf_approve"]
    retried = sum(1 for x in f.sent for dl in x.deliveries if dl.retry)
    done = f.states.get("done", 0)
    end_states = ", ".join(f"{k} {v:,}" for k, v in f.states.most_common())
    verdicts = ", ".join(f"{k} {v:,}" for k, v in f.verdicts.most_common()) or "none"
    k8s_windows = {k.split(": ", 1)[1]: v for k, v in f.faults.items() if k.startswith("Kubernetes API windows")}
    lines = [
        f"Run {f.started}: {f.load_seconds:.0f} s of load, {f.wall_seconds:.0f} s in all, {f.replicas} replicas "
        "on one PostgreSQL, one sandbox cluster, the Slack stand-in in the driver's process.",
        "",
        "| what | count |",
        "|---|---|",
        f"| change requests (`/cf restart soak-NN`) | {len(changes):,} ({d['busy target requests']:,} on purpose "
        "to a target with a request in flight) |",
        f"| request messages posted / actions in the store | {d['request messages']:,} / {sum(f.states.values()):,} |",
        f"| approvals: Approve clicks | {len(approves):,} ({d['double clicks']:,} double clicks, "
        f"{d['two approvers at once']:,} times two approvers at once on different replicas) |",
        f"| Deny clicks / requests left to expire | {d['deny clicks']:,} / {d['abandoned (left to expire)']:,} |",
        f"| reads (`pods`, `status`, `audit`) | {len(reads):,} |",
        f"| deliveries / Slack retries (`X-Slack-Retry-Num`, same body) | {d['deliveries']:,} / {retried:,} |",
        f"| actions by end state | {end_states} |",
        f"| restarts by end state, as the cluster shows them | "
        f"{', '.join(f'{k} {v:,}' for k, v in sorted(f.applied.items()))} |",
        f"| verdicts of done changes | {verdicts} (of {done:,} done) |",
        f"| replica kills (SIGKILL, back after 2-5 s) | {f.faults['replica kills (SIGKILL)']:,} |",
        f"| store restarts (`pg_ctl restart -m fast`) | {f.faults['store restarts (pg_ctl restart -m fast)']:,} |",
        f"| Slack chaos: 429 + Retry-After / 500·503 / held past the client's timeout | {s['429']:,} / {s['5xx']:,} / "
        f"{s['held']:,} ({f.faults['Slack chaos windows']:,} heavier windows) |",
        f"| Kubernetes API windows: {', '.join(f'{k} {v}' for k, v in k8s_windows.items()) or 'none'} | "
        f"{f.k8s.get('slowed', 0):,} requests slowed, {f.k8s.get('failed', 0):,} failed, "
        f"{f.k8s.get('held', 0):,} applied and answered late |",
        "",
        *ack_rows(f.sent, f.replicas),
        "",
        "| invariant (checked outside the bot) | checked | violations |",
        "|---|---|---|",
    ]
    for inv in f.invariants:
        lines.append(f"| {inv.name} | {inv.checked:,} | **{len(inv.violations)}** |")
    examples = [(inv.name, v) for inv in f.invariants for v in inv.violations[:5]]
    if examples:
        lines += ["", "Violations (first five of each):", ""]
        lines += [f"- {name.split(' (')[0]}: {v}" for name, v in examples]
    if f.events:
        timeline = "; ".join(f"{at:.0f} s {what}" for at, what in f.events)
        lines += ["", f"Faults, in seconds from the start of the load: {timeline}."]
    if f.notes:
        lines += ["", *[f"- {n}" for n in f.notes]]
    return lines


def write_section(body: list[str], intro: str) -> None:
    section = "\n".join([MARK_BEGIN, "## Chaos soak: exactly once, nothing lost", "", " ".join(intro.split()), "",
                         *body, MARK_END])
    old = RESULTS.read_text() if RESULTS.exists() else ""
    if MARK_BEGIN in old and MARK_END in old:
        text = re.sub(re.escape(MARK_BEGIN) + ".*?" + re.escape(MARK_END), lambda _m: section, old, flags=re.S)
    else:
        text = old.rstrip("\n") + "\n\n" + section + "\n"
    RESULTS.write_text(text)


def mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else float("nan")
