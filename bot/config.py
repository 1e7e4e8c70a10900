"""One validated settings object: a YAML file (named by CF_CONFIG) plus secrets from the environment.

Unknown keys are errors (a typo in an RBAC list must not silently grant or deny anything), and an
error names the key path. Secrets never come from the file: only from the environment, held as
`SecretStr` so they cannot end up in a log line or a message by accident.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

# The models live in base.settings (commands type `Context.settings` with them and may not import bot);
# re-exported here so `from bot.config import Settings` keeps working.
from base.settings import (
    ALERT_RULES,
    AWS,
    RBAC,
    Alerts,
    Approvals,
    Contacts,
    HealthProbe,
    Incidents,
    Kubernetes,
    Limits,
    OncallEntry,
    PagerDuty,
    PostgresTarget,
    Probes,
    RedisTarget,
    Settings,
    Statuspage,
    Targets,
)

__all__ = [
    "ALERT_RULES",
    "AWS",
    "RBAC",
    "Alerts",
    "Approvals",
    "ConfigError",
    "Contacts",
    "HealthProbe",
    "Incidents",
    "Kubernetes",
    "Limits",
    "OncallEntry",
    "PagerDuty",
    "PostgresTarget",
    "Probes",
    "RedisTarget",
    "Secrets",
    "Settings",
    "Statuspage",
    "Targets",
    "load_settings",
    "parse_settings",
]


class ConfigError(Exception):
    """The configuration is invalid; the message names the file and the key."""


class Secrets(BaseModel):
    """From the environment only. Missing tokens are checked by the mode that needs them."""

    model_config = ConfigDict(frozen=True)

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    database_url: str = "sqlite:///./var/cf.db"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Secrets:
        e = os.environ if env is None else env

        def secret(name: str) -> SecretStr | None:
            value = e.get(name, "").strip()
            return SecretStr(value) if value else None

        api_url = e.get("SLACK_API_URL", "").strip() or "https://slack.com/api/"
        if not api_url.endswith("/"):
            api_url += "/"
        return cls(
            slack_bot_token=secret("SLACK_BOT_TOKEN"),
            slack_signing_secret=secret("SLACK_SIGNING_SECRET"),
            slack_app_token=secret("SLACK_APP_TOKEN"),
            slack_api_url=api_url,
            database_url=e.get("DATABASE_URL", "").strip() or "sqlite:///./var/cf.db",
        )


def parse_settings(data: Any, source: str = "config") -> Settings:
    """Validate a mapping; raise ConfigError naming the first bad key (and the others)."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of keys, not {type(data).__name__}.")
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "(top level)"
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = "unknown key (check the spelling)"
            elif err["type"] == "missing":
                msg = "required key is missing"
            problems.append(f"{key}: {msg}")
        raise ConfigError(f"{source}: invalid configuration: " + "; ".join(problems)) from None


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Read the YAML named by `path` or $CF_CONFIG. Errors are ConfigError with a readable message."""
    name = str(path) if path else os.environ.get("CF_CONFIG", "")
    if not name:
        raise ConfigError("no configuration file: set CF_CONFIG to the path of a YAML file (see README).")
    file = Path(name)
    try:
        raw = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read the configuration file ({exc.strerror}).") from None
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{name}: not valid YAML{where}.") from None
    return parse_settings(data, name)
