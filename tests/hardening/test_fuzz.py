"""Fuzz every payload shape the bot accepts (issue 15 §4), through the real web app, signed as Slack (or with
the webhook's token) sends them: slash commands, block_actions, view_submission, app_home_opened and the
Alertmanager webhook. Each input must get no 5xx, leave no traceback in the logs and no live `<!channel>`-style
mention or disguised link in anything sent to Slack, and the bot must still answer `/healthz` (after each input)
and a normal `/cf help` (after each shape). The strategies and the round live in `tests.hardening.fuzzing`;
`python -m bench fuzz` runs the same with many more inputs and records the counts in bench/RESULTS.md.

These tests are synchronous on purpose: hypothesis drives each example through the bot's own event loop."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.hardening.fuzzing import SHAPES, fuzz

EXAMPLES = int(os.environ.get("CF_FUZZ_EXAMPLES", "50"))  # per shape, in the suite


@pytest.mark.parametrize("shape", list(SHAPES))
def test_fuzz(shape: str, tmp_path: Path) -> None:
    fuzzer = fuzz([shape], EXAMPLES, tmp_path)
    assert fuzzer.tried[shape] >= EXAMPLES // 2, fuzzer.tried  # it really sent them (hypothesis may stop early)
