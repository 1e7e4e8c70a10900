"""Bugs the chaos soak (bench/soak.py) found, each reproduced here without the chaos."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest

import commands.scaling.scale as scale
from tests.harness import kubectl
from tests.k8s_support import NS, request_and_approve

FROZEN = datetime(2026, 12, 2, 11, 11, 12, 300_000, tzinfo=UTC)


class _FrozenClock(datetime):
    @classmethod
    def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
        return FROZEN


async def test_two_restarts_in_the_same_second_both_restart_the_pods(bot, sandbox, monkeypatch) -> None:
    """`restartedAt` has whole seconds (as kubectl writes it): a restart approved in the same second as the
    one before left the pod template as it was — no new ReplicaSet, no pod replaced — and still said
    `Done … rollout restart` and `Verified`. The soak saw it about once in 50 restarts of one deployment."""
    monkeypatch.setattr(scale, "datetime", _FrozenClock)  # both restarts stamp the same second
    ids = []
    for _ in range(2):
        request, thread = await request_and_approve(bot, "restart websocket-service")
        assert "Done:" in thread
        ids.append(re.search(r"Request `([0-9a-f]+)`", json.dumps(request["blocks"])).group(1))  # type: ignore[union-attr]
    sets = json.loads(await kubectl(sandbox.kubeconfig, "-n", NS, "get", "rs", "-l", "app=websocket-service",
                                    "-o", "json"))["items"]
    causes = [(s["metadata"].get("annotations") or {}).get("kubernetes.io/change-cause", "") for s in sets]
    for request_id in ids:
        assert sum(f"(request {request_id})" in c for c in causes) == 1, (ids, causes)


@pytest.mark.parametrize("last", ["never", "2026-12-02T11:11:11Z"])
def test_a_restart_stamps_the_current_second_when_it_differs_from_the_last(last: str) -> None:
    assert scale.restart_stamp(FROZEN, last) == FROZEN


def test_a_restart_in_the_second_of_the_last_one_stamps_the_next_second() -> None:
    assert scale.restart_stamp(FROZEN, "2026-12-02T11:11:12Z").strftime("%H:%M:%S") == "11:11:13"
