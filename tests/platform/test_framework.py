"""The command framework: argument parsing, the registry, config validation and rendering limits."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import ConfigError, Secrets, load_settings, parse_settings
from bot.render import MAX_BLOCKS, SECTION_CHARS, render_reply
from commands.args import UsageError, duration, k8s_label, opt, parse_tokens, pos, split_text, switch, whole_number
from commands.base import DuplicateCommand, Kind, Registry, command
from commands.catalog import REGISTRY
from commands.reply import Code, Reply, Table

ARGS = [
    pos("DEPLOYMENT", k8s_label, "the deployment"),
    pos("REPLICAS", whole_number, "how many"),
    opt("--since", duration, "how far back", default=600),
    switch("--all-namespaces", "everywhere", short="-A"),
]


def test_parse_positionals_options_and_switches() -> None:
    got = parse_tokens(ARGS, ["graphql-api", "10", "--since=1h", "-A"], "x")
    assert got == {"deployment": "graphql-api", "replicas": 10, "since": 3600, "all_namespaces": True}
    got = parse_tokens(ARGS, ["--since", "90s", "web", "3"], "x")
    assert got["since"] == 90 and got["all_namespaces"] is False


@pytest.mark.parametrize(
    ("tokens", "message"),
    [
        (["graphql-api"], "Missing REPLICAS"),
        (["graphql-api", "ten"], "is not a whole number"),
        (["Graphql_API", "3"], "is not a valid Kubernetes name"),
        (["graphql-api", "3", "extra"], "Unexpected argument `extra`"),
        (["graphql-api", "3", "--bogus"], "Unknown option `--bogus`"),
        (["graphql-api", "3", "--since"], "needs a value"),
        (["graphql-api", "3", "--since", "soon"], "is not a duration"),
        (["graphql-api", "3", "-A=yes"], "takes no value"),
    ],
)
def test_bad_input_is_a_usage_error(tokens: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_tokens(ARGS, tokens, "scale")


def test_negative_numbers_are_values_not_options() -> None:
    assert parse_tokens(ARGS, ["web", "-1"], "x")["replicas"] == -1


def test_split_text_handles_slack_quotes_and_reports_unbalanced_ones() -> None:
    assert split_text("incident update \u201cdb is back\u201d") == ["incident", "update", "db is back"]
    with pytest.raises(UsageError, match="quotes"):
        split_text('logs graphql-api --grep "ERROR')


def test_registry_refuses_duplicates_at_import() -> None:
    reg = Registry()

    @command("thing", summary="x", area="Bot", registry=reg, aliases=["t"])
    async def thing(ctx):
        return None

    with pytest.raises(DuplicateCommand, match="'t'"):

        @command("other", summary="y", area="Bot", registry=reg, aliases=["t"])
        async def other(ctx):
            return None

    assert len(reg) == 1 and reg.get("thing") is not None


def test_registry_resolves_longest_prefix_and_suggests() -> None:
    spec, rest = REGISTRY.resolve(["scale", "graphql-api", "10"]) or (None, [])
    assert spec is not None and spec.title == "scale" and rest == ["graphql-api", "10"]
    assert REGISTRY.closest(["scael"]) == "scale"
    assert REGISTRY.resolve(["nonsense"]) is None


def test_every_command_has_usage_example_and_role() -> None:
    for spec in REGISTRY:
        assert spec.summary and spec.example.startswith("/cf "), spec.title
        assert spec.area, spec.title
        if spec.kind is Kind.change:
            assert spec.title in ("scale", "restart") or spec.needs, spec.title


def test_config_example_parses_with_runbook_defaults(tmp_path: Path) -> None:
    path = tmp_path / "cf.yaml"
    path.write_text(Path("config.example.yaml").read_text())
    settings = load_settings(path)
    assert settings.namespace == "collaboration"
    assert settings.approvals.ttl_minutes == 15 and settings.limits.max_replicas == 50
    assert settings.targets.postgres.max_connections_threshold == 160
    assert settings.aws.eks_cluster == "candlefish-collaboration"


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"incident_channel": "C1", "approvals": {"ttl_minutes": 0}}, "approvals.ttl_minutes"),
        ({"incident_channel": "C1", "rbac": {"operater": ["U1"]}}, "rbac.operater: unknown key"),
        ({"incident_channel": "C1", "rbac": {"operator": ["bob"]}}, "rbac.operator"),
        ({}, "incident_channel: required key is missing"),
        ({"incident_channel": "C1", "limits": {"max_replicas": "lots"}}, "limits.max_replicas"),
    ],
)
def test_config_errors_name_the_key(data: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        parse_settings(data, "cf.yaml")


def test_cli_config_error_exits_2_without_traceback(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("incident_channel: C1\napprovals:\n  ttl_minutes: -5\n")
    proc = subprocess.run([sys.executable, "-m", "app", "check-config", str(path)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2
    assert "approvals.ttl_minutes" in proc.stderr and "Traceback" not in proc.stderr
    path.write_text("incident_channel: [unclosed\n")
    proc = subprocess.run([sys.executable, "-m", "app", "check-config", str(path)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and "not valid YAML" in proc.stderr and "Traceback" not in proc.stderr


def test_secrets_come_from_the_environment_and_are_masked() -> None:
    secrets = Secrets.from_env({"SLACK_BOT_TOKEN": "xoxb-123-secret", "SLACK_API_URL": "http://127.0.0.1:9/api"})
    assert "xoxb-123-secret" not in repr(secrets) and "xoxb-123-secret" not in str(secrets.model_dump())
    assert secrets.slack_api_url == "http://127.0.0.1:9/api/"
    assert secrets.database_url == "sqlite:///./var/cf.db"


def test_long_tables_are_truncated_within_slack_limits_and_attached_whole() -> None:
    rows = [[f"pod-{i:05d}", "1/1", "Running", "0", "5m"] for i in range(2000)]
    reply = Reply(title="2000 pods", parts=[Table(["NAME", "READY", "STATUS", "RESTARTS", "AGE"], rows)])
    out = render_reply(reply, "someone ran /cf pods")
    assert len(out.blocks) <= MAX_BLOCKS
    for block in out.blocks:
        if block["type"] == "section" and "text" in block:
            assert len(block["text"]["text"]) <= SECTION_CHARS
    assert any("Showing" in json.dumps(b) and "of 2,000 rows" in json.dumps(b) for b in out.blocks)
    assert len(out.files) == 1 and out.files[0].content.decode().count("\n") == 2000


def test_many_parts_stay_under_fifty_blocks() -> None:
    reply = Reply(title="lots", parts=[Code(f"line {i}") for i in range(120)])
    out = render_reply(reply)
    assert len(out.blocks) <= MAX_BLOCKS
    assert out.files and b"line 119" in out.files[-1].content


def test_outside_text_cannot_inject_mentions() -> None:
    out = render_reply(Reply(title="logs", parts=[Code("user <!channel> said <@U123>")]))
    text = json.dumps(out.blocks)
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text
