"""deploy/iam-policy.json grants exactly what integrations/aws.py calls: no more, no less."""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path

from integrations.awserrors import iam_action

ROOT = Path(__file__).resolve().parents[2]
POLICY = json.loads((ROOT / "deploy" / "iam-policy.json").read_text())
READ_ONLY = re.compile(r"^[a-z0-9-]+:(Describe|List|Get)")


def _called() -> set[str]:
    """Every `self._call("service", "operation", ...)` in the integration, as IAM actions."""
    source = (ROOT / "integrations" / "aws.py").read_text()
    calls = re.findall(r'_call\(\s*"(\w+)",\s*"(\w+)"', source)
    assert len(calls) >= 25, "the integration's calls were not found; did _call's shape change?"
    return {iam_action(service, op) for service, op in calls}


def _statements() -> list[dict]:
    assert POLICY["Version"] == "2012-10-17"
    return [s for s in POLICY["Statement"] if s["Effect"] == "Allow"]


def _listed(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def test_every_call_the_code_makes_is_allowed() -> None:
    granted = [a for s in _statements() for a in _listed(s["Action"])]
    missing = sorted(a for a in _called() if not any(fnmatch.fnmatchcase(a, g) for g in granted))
    assert not missing, f"deploy/iam-policy.json does not allow: {missing}"


def test_the_policy_grants_nothing_the_code_does_not_call() -> None:
    called = _called()
    granted = {a for s in _statements() for a in _listed(s["Action"])}
    assert all("*" not in a for a in granted), "no wildcard actions: list each one"
    assert granted == called, f"granted but never called: {sorted(granted - called)}"


def test_only_read_actions_are_granted_on_every_resource() -> None:
    for statement in _statements():
        if "*" in _listed(statement["Resource"]):
            writes = [a for a in _listed(statement["Action"]) if not READ_ONLY.match(a)]
            assert not writes, f"{statement['Sid']}: changes need resources scoped to the runbook's names: {writes}"


def test_changes_are_scoped_to_the_runbook_resources() -> None:
    names = ("candlefish-collaboration", "candlefish/collaboration/app-secrets", "candlefish-rate-limit")
    for statement in _statements():
        for action in _listed(statement["Action"]):
            if READ_ONLY.match(action):
                continue
            resources = " ".join(_listed(statement["Resource"])) + json.dumps(statement.get("Condition", {}))
            assert any(n in resources for n in names), f"{action} is not scoped to a runbook resource"
