"""`cfbot demo` with real Prometheus and Alertmanager (demo.monitoring): a fire-drill scenario's alert reaches
the console within a minute of the demo's start, drawn with its buttons, and Ack and Silence work on it; both
processes end with the demo, also on Ctrl-C. Without the binaries the demo says in one line how to get them
and otherwise runs as before."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from pathlib import Path

import pytest
import yaml

from demo.monitoring import HINT, HOLD, RECEIVER, RULES, binaries, demo_receiver, demo_rules
from tests.demo.test_demo_console import leftovers
from tests.platform.test_cli import CFBOT

BUDGET = 60.0  # seconds from starting `cfbot demo` to the alert on screen (issue 14 §1)
ALERT = "*FIRING* `GraphQLHighErrorRate` — GraphQL API: high error rate (>5%)"
LATENCY = "*FIRING* `GraphQLHighLatency`"


class Demo:
    """`cfbot demo` as a process whose input stays open; `until` reads its output as it comes."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.text = ""

    async def until(self, pattern: str, deadline: float) -> re.Match[str]:
        """The first match of `pattern` in everything printed so far, waiting until the monotonic `deadline`."""
        assert self.proc.stdout is not None
        while (found := re.search(pattern, self.text, re.S)) is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{pattern!r} not printed in time; the console showed:\n{self.text[-4000:]}")
            try:
                chunk = await asyncio.wait_for(self.proc.stdout.read(65536), left)
            except TimeoutError:
                continue
            assert chunk, f"the demo ended before printing {pattern!r}:\n{self.text[-4000:]}"
            self.text += chunk.decode()
        return found

    async def type(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{line}\n".encode())
        await self.proc.stdin.drain()


def processes_under(folder: Path) -> list[str]:
    """The command lines of running processes that name a path under `folder` (the demo's Prometheus, ...)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if any(str(folder).encode() in arg for arg in args):
            found.append(" ".join(a.decode(errors="replace") for a in args))
    return found


def buttons_of(text: str, headline: str) -> str:
    """The message number of the message that starts with `headline` (its button line's `(message N:`)."""
    start = text.index(headline)
    found = re.search(r"\(message (\d+):", text[start:])
    assert found, text[start:]
    return found.group(1)


@pytest.mark.timeout(180)  # the demo's start, up to a minute for the alert, the clicks, and the way out
async def test_a_fire_drill_shows_a_real_alert_in_the_console_within_a_minute(tmp_path: Path) -> None:
    if binaries() is None:
        pytest.skip("prometheus or prometheus-alertmanager not installed (scripts/services.sh installs the Debian "
                    "packages prometheus and prometheus-alertmanager)")
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        CFBOT, "demo", "--scenario", "db-pool-exhausted", stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={**os.environ, "TMPDIR": str(tmp_path)})
    demo = Demo(proc)
    try:
        await demo.until(re.escape(ALERT) + r".*?\(message \d+:", started + BUDGET)
        took = time.monotonic() - started
        assert HINT not in demo.text
        shown = demo.text[demo.text.index(ALERT):]
        assert "graphql-api answers 11% of requests with 5xx (runbook: above 5%)" in shown
        assert "*deployment*: `graphql-api`" in shown and "*Runbook procedure*" in shown
        assert "[1] Logs with ERROR" in shown and "[4] Ack   [5] Silence 1h   [6] Silence 4h" in shown
        running = processes_under(tmp_path)
        assert any("prometheus.yml" in p for p in running) and any("alertmanager.yml" in p for p in running), running

        # the message's own buttons work as in Slack: olivia (operator) acknowledges it and silences the other
        number = buttons_of(demo.text, ALERT)
        await demo.type(f"{number}.4")
        await demo.until(rf"\(olivia clicked Ack — {number}\.4\).*Acknowledged by @olivia\..*"
                         r"✎ \*FIRING\* `GraphQLHighErrorRate`.*?\[4\] Silence 1h   \[5\] Silence 4h",
                         time.monotonic() + 30)
        await demo.until(re.escape(LATENCY) + r".*?\(message \d+:", time.monotonic() + 30)
        other = buttons_of(demo.text, LATENCY)
        await demo.type(f"{other}.5")
        await demo.until(rf"\(olivia clicked Silence 1h — {other}\.5\).*Silenced for 1h by @olivia until .*"
                         r"\(Alertmanager silence `[0-9a-f-]{36}`; matchers .*`alertname=GraphQLHighLatency`.*"
                         r"✎ \*FIRING\* `GraphQLHighLatency`.*?\[\d\] Unsilence", time.monotonic() + 30)

        proc.send_signal(signal.SIGINT)  # Ctrl-C: the demo ends, and so do Prometheus and Alertmanager
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:  # the test failed: still let the demo stop its Prometheus and Alertmanager
            proc.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except TimeoutError:
                proc.kill()
                await proc.wait()
    assert "Traceback" not in demo.text + err.decode(), err.decode()
    assert processes_under(tmp_path) == []
    assert leftovers(tmp_path) == []
    print(f"alert on screen {took:.1f}s after the demo started")


def without_monitoring() -> str:
    """PATH without the directories that hold prometheus or Alertmanager."""
    return os.pathsep.join(d for d in os.environ.get("PATH", "").split(os.pathsep)
                           if d and not any((Path(d) / name).exists() for name in
                                            ("prometheus", "prometheus-alertmanager", "alertmanager")))


async def piped_demo(tmp_path: Path, path: str) -> str:
    """`cfbot demo --scenario db-pool-exhausted` with a few lines piped in and PATH `path`; what it printed."""
    proc = await asyncio.create_subprocess_exec(
        CFBOT, "demo", "--scenario", "db-pool-exhausted", stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "TMPDIR": str(tmp_path), "PATH": path})
    out, err = await asyncio.wait_for(proc.communicate(b"/cf pods graphql-api\n/cf graph error-rate\n"), 50)
    assert proc.returncode == 0, err.decode()
    assert "Traceback" not in out.decode() + err.decode()
    return out.decode()


async def test_without_the_binaries_the_demo_says_how_to_get_them_in_one_line(tmp_path: Path) -> None:
    text = await piped_demo(tmp_path, without_monitoring())
    assert text.splitlines()[0] == HINT and text.count(HINT) == 1
    assert "Prometheus is not configured" in text  # `/cf graph` as before: the demo has no prometheus.url
    assert "graphql-api-" in text and "Running" in text
    assert leftovers(tmp_path) == []


async def test_binaries_that_do_not_start_are_one_line_and_the_demo_goes_on(tmp_path: Path) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    for name in ("prometheus", "prometheus-alertmanager"):
        (fake / name).write_text("#!/bin/sh\necho 'level=error msg=\"broken install\"' >&2\nexit 1\n")
        (fake / name).chmod(0o755)
    text = await piped_demo(tmp_path, os.pathsep.join((str(fake), without_monitoring())))
    [said] = [line for line in text.splitlines() if line.startswith("Alerts:")]
    assert said == ('Alerts: alertmanager did not start: level=error msg="broken install"; '
                    "the demo runs without real alerts")
    assert "graphql-api-" in text and "Prometheus is not configured" in text
    assert leftovers(tmp_path) == []


def test_the_demo_runs_the_shipped_rules_and_receiver_with_only_its_timings_changed(tmp_path: Path) -> None:
    shipped = yaml.safe_load(RULES.read_text())
    demo = demo_rules()
    for ours, theirs in zip(demo["groups"], shipped["groups"], strict=True):
        for rule, original in zip(ours["rules"], theirs["rules"], strict=True):
            assert {k: v for k, v in rule.items() if k != "for"} == {k: v for k, v in original.items() if k != "for"}
            assert rule["for"] == HOLD
    receiver = demo_receiver("http://127.0.0.1:1234/alerts/alertmanager", tmp_path / "token")
    original = yaml.safe_load(RECEIVER.read_text())
    [hook] = receiver["receivers"][0]["webhook_configs"]
    [shipped_hook] = original["receivers"][0]["webhook_configs"]
    assert hook["url"] == "http://127.0.0.1:1234/alerts/alertmanager"
    assert hook["http_config"]["authorization"] == {"type": "Bearer", "credentials_file": str(tmp_path / "token")}
    assert {k: hook[k] for k in ("send_resolved", "max_alerts")} == {k: shipped_hook[k] for k in
                                                                     ("send_resolved", "max_alerts")}
    assert receiver["route"]["group_by"] == original["route"]["group_by"]
    assert receiver["route"]["group_wait"] == "2s"
