"""Integration clients, built once at start-up from the settings and injected into commands.

One function per integration. Each returns the client, or None when that integration is simply not
configured (its commands then answer "X is not configured"). An integration that *is* configured
but broken (an unreadable kubeconfig, say) raises `IntegrationError`, which stops start-up with a
one-line message: fail loudly at start-up, degrade one line at run time.
"""

from __future__ import annotations

import logging
import os

from bot.config import Settings
from commands.base import Services
from integrations.errors import IntegrationError
from integrations.protocols import (
    AlertmanagerClient,
    AwsClient,
    KubeClient,
    PagerDutyClient,
    PostgresClient,
    PrometheusClient,
    RedisClient,
    StatuspageClient,
)

log = logging.getLogger(__name__)

# Each builder returns its client as the Protocol commands see (integrations/protocols.py), so mypy
# checks here that the real class still satisfies it.


def kube(settings: Settings) -> KubeClient | None:
    from integrations.kube import Kube

    kcfg = settings.kubernetes
    explicit = kcfg.kubeconfig or os.environ.get("KUBECONFIG")
    if explicit:
        return Kube.from_config(kcfg.kubeconfig, kcfg.context, kcfg.timeout_seconds)
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        try:
            return Kube.from_config(None, kcfg.context, kcfg.timeout_seconds)
        except IntegrationError:
            log.warning("kubernetes not configured: in-cluster config failed")
            return None
    log.warning("kubernetes not configured: set KUBECONFIG or run in a cluster")
    return None


def postgres(settings: Settings) -> PostgresClient | None:
    """The monitored database (not the bot's store), when its DSN env var is set."""
    from integrations.postgres import Postgres

    target = settings.targets.postgres
    dsn = os.environ.get(target.dsn_env, "").strip()
    if not dsn:
        log.warning("postgres not configured: set %s", target.dsn_env)
        return None
    return Postgres(dsn, connect_timeout=target.connect_timeout_seconds,
                    statement_timeout_ms=target.statement_timeout_ms,
                    maintenance_timeout_s=target.maintenance_timeout_seconds)


def redis(settings: Settings) -> RedisClient | None:
    """The monitored cache, when its URL env var is set."""
    from integrations.redis import Redis

    target = settings.targets.redis
    url = os.environ.get(target.url_env, "").strip()
    if not url:
        log.warning("redis not configured: set %s", target.url_env)
        return None
    return Redis(url, timeout=target.timeout_seconds, scan_count=target.scan_count)


def aws(settings: Settings) -> AwsClient | None:
    """boto3's own credential chain and endpoint settings (IRSA, AWS_ENDPOINT_URL); None when disabled."""
    from integrations.aws import Aws

    if not settings.aws.enabled:
        log.info("aws not configured: aws.enabled is false")
        return None
    return Aws(settings.aws.region, settings.aws.timeout_seconds)


def statuspage(settings: Settings) -> StatuspageClient | None:
    """Atlassian Statuspage, when `statuspage.page_id` is set and STATUSPAGE_API_KEY is in the environment."""
    from integrations.statuspage import Statuspage

    cfg = settings.statuspage
    key = os.environ.get("STATUSPAGE_API_KEY", "").strip()
    if not cfg.page_id or not key:
        log.warning("statuspage not configured: set statuspage.page_id and STATUSPAGE_API_KEY")
        return None
    return Statuspage(cfg.api_url, cfg.page_id, key, cfg.timeout_seconds)


def pagerduty(settings: Settings) -> PagerDutyClient | None:
    """PagerDuty Events API v2, when PAGERDUTY_ROUTING_KEY is in the environment."""
    from integrations.pagerduty import PagerDuty

    key = os.environ.get("PAGERDUTY_ROUTING_KEY", "").strip()
    if not key:
        log.warning("pagerduty not configured: set PAGERDUTY_ROUTING_KEY")
        return None
    cfg = settings.pagerduty
    return PagerDuty(cfg.events_url, key, cfg.source, cfg.timeout_seconds)


def prometheus(settings: Settings) -> PrometheusClient | None:
    """Prometheus' HTTP API, when `prometheus.url` is set (`/cf graph`; an alert's context)."""
    from integrations.prometheus import Prometheus

    cfg = settings.prometheus
    if not cfg.url:
        log.info("prometheus not configured: set prometheus.url")
        return None
    return Prometheus(cfg.url, cfg.timeout_seconds)


def alertmanager(settings: Settings) -> AlertmanagerClient | None:
    """Alertmanager's v2 API, when `alertmanager.url` is set (the Silence buttons of an alert's message)."""
    from integrations.alertmanager import Alertmanager

    cfg = settings.alertmanager
    if not cfg.url:
        log.info("alertmanager not configured: set alertmanager.url")
        return None
    return Alertmanager(cfg.url, cfg.timeout_seconds)


# The names `build_services` builds; the platform adds "audit" and "artefacts", the incidents domain
# "incidents" (commands/clients.py `Services` lists them all). Commands name them in `needs=[...]`.
BUILT = ("kube", "postgres", "redis", "aws", "statuspage", "pagerduty", "prometheus", "alertmanager")


def build_services(settings: Settings, only: set[str] | None = None) -> Services:
    """Every configured integration's client (or those in `only`), typed by name."""
    services = Services()

    def wanted(name: str) -> bool:
        return only is None or name in only

    if wanted("kube") and (kube_client := kube(settings)) is not None:
        services["kube"] = kube_client
    if wanted("postgres") and (pg_client := postgres(settings)) is not None:
        services["postgres"] = pg_client
    if wanted("redis") and (redis_client := redis(settings)) is not None:
        services["redis"] = redis_client
    if wanted("aws") and (aws_client := aws(settings)) is not None:
        services["aws"] = aws_client
    if wanted("statuspage") and (sp_client := statuspage(settings)) is not None:
        services["statuspage"] = sp_client
    if wanted("pagerduty") and (pd_client := pagerduty(settings)) is not None:
        services["pagerduty"] = pd_client
    if wanted("prometheus") and (prom_client := prometheus(settings)) is not None:
        services["prometheus"] = prom_client
    if wanted("alertmanager") and (am_client := alertmanager(settings)) is not None:
        services["alertmanager"] = am_client
    return services
