"""A minute of the chaos soak (bench/soak.py) in the suite: three `cfbot run` replicas on their own
PostgreSQL, change requests with double clicks, two approvers and Slack retries, reads in between, at least
one replica SIGKILLed, the store restarted, a Slack chaos window and Kubernetes API windows; then every
invariant, judged from the cluster, the store and Slack's records, must hold with no violation."""

from __future__ import annotations

import glob
import shutil

import pytest

from bench import soak, soak_report

pytestmark = [
    pytest.mark.timeout(420),
    pytest.mark.skipif(not glob.glob("/usr/lib/postgresql/*/bin/initdb") or not shutil.which("kubectl"),
                       reason="needs PostgreSQL's server binaries (initdb, pg_ctl) and kubectl"),
]


async def test_a_minute_of_chaos_breaks_no_invariant() -> None:
    figures = await soak.run(soak.short(), write=False)
    assert figures.faults["replica kills (SIGKILL)"] >= 1
    assert figures.faults["Slack chaos windows"] >= 1
    assert figures.faults["store restarts (pg_ctl restart -m fast)"] == 1
    assert sum(1 for s in figures.sent if s.kind == "change") >= 50
    broken = {inv.name: inv.violations[:5] for inv in figures.invariants if inv.violations}
    assert not broken, "\n".join(soak_report.render(figures))
