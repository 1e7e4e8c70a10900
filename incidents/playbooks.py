"""The runbook as data for incidents: each incident type's checklist (the words are `base.vocabulary`'s).

The checklists are the runbook's "Emergency Procedures", "Security Incident Response" and "Disaster
Recovery" sections, written as steps with the `/cf` command that performs each one where there is one
(Terraform and Helm run outside the bot). They are pinned in every new incident channel, so they are
kept short: what to do, in order.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass


@dataclass(frozen=True)
class Playbook:
    kind: str
    label: str
    section: str  # the runbook section it comes from
    steps: tuple[str, ...]


PLAYBOOKS: dict[str, Playbook] = {
    p.kind: p
    for p in (
        Playbook("outage", "Complete system outage", "Emergency Procedures > 1. Complete System Outage", (
            "Confirm the outage: pods, editor and API health — `/cf status`",
            "Check infrastructure: EKS, RDS, ALB — `/cf cluster`, `/cf db status`, `/cf lb`",
            "Update the status page — `/cf statuspage open`",
            "Page on-call — `/cf page primary`",
            "Investigate: nodes, system pods, recent rollouts, AWS health — `/cf nodes`, `/cf aws health`",
            "Recover: restart deployments or replace unhealthy nodes — `/cf restart all`, `/cf node drain NODE`",
        )),
        Playbook("database", "Database outage", "Emergency Procedures > 2. Database Outage", (
            "Check the database status — `/cf db status`",
            "Test connectivity — `/cf db check`",
            "Check for an automated failover — `/cf db events`",
            "If stuck, reboot — `/cf db reboot`; if Multi-AZ, fail over — `/cf db failover`",
            "If corrupted, restore to a point in time — `/cf db restore --to \"15 minutes ago\"`",
        )),
        Playbook("memory", "High memory / CPU", "Emergency Procedures > 3. High Memory/CPU Usage", (
            "Check resource use — `/cf top pods --sort memory`, `/cf top nodes`",
            "Look for leaks and OOM kills — `/cf describe pod POD`",
            "Check application metrics — `/cf metrics graphql-api memory`",
            "Scale up — `/cf scale DEPLOYMENT 10`",
            "If nodes are at capacity, scale the node group — `/cf nodegroup scale 5 20 10`",
        )),
        Playbook("websocket", "WebSocket connection issues", "Emergency Procedures > 4. WebSocket Connection Issues", (
            "Check the WebSocket service — `/cf pods websocket-service`, `/cf logs websocket-service`",
            "Check connection metrics — `/cf metrics websocket-service websocket_active_connections`",
            "Test connectivity — `/cf ws probe`",
            "Restart or scale it — `/cf restart websocket-service`, `/cf scale websocket-service 5`",
            "Check the load balancer — `/cf lb`",
        )),
        Playbook("security", "Suspected breach", "Security Incident Response > Suspected Breach", (
            "Isolate affected systems — `/cf isolate DEPLOYMENT`, `/cf block-ip CIDR`",
            "Preserve evidence — `/cf evidence POD`",
            "Rotate credentials and restart consumers — `/cf secrets rotate`",
            "Notify the security team — security@candlefish.ai",
        )),
        Playbook("ddos", "DDoS attack", "Security Incident Response > DDoS Attack", (
            "Enable WAF rate limiting — `/cf waf rate-limit 2000`",
            "Scale up for legitimate traffic — `/cf scale collaboration-editor 20`",
            "Block the worst sources — `/cf block-ip CIDR`",
            "Update the status page — `/cf statuspage open`",
        )),
        Playbook("data-breach", "Data breach", "Security Incident Response > Data Breach", (
            "Immediately isolate the database — `/cf isolate DEPLOYMENT`, `/cf block-ip CIDR`",
            "Review access logs — `/cf logs APP --since 1h`",
            "Notify the security team and stakeholders — security@candlefish.ai",
            "Begin forensic analysis — `/cf evidence POD`",
            "Prepare the incident report — `/cf incident timeline`",
        )),
        Playbook("disaster-recovery", "Disaster recovery", "Backup and Recovery > Disaster Recovery", (
            "Save the current state — `/cf backup config`, `/cf db snapshot`",
            "Check the recovery prerequisites — `/cf dr check`",
            "Restore the infrastructure with Terraform — `terraform apply -var-file=terraform.tfvars` "
            "in deployment/terraform/collaboration",
            "Restore the applications with Helm — `helm install collaboration "
            "deployment/helm/candlefish-collaboration --namespace collaboration --create-namespace "
            "--values values-production.yaml`; then the configuration — `/cf restore config`",
            "Restore the database if needed — `/cf db restore --to TIME` or `--snapshot ID`",
            "Verify — `/cf status`, `/cf nodes`, `/cf db status`, `/cf dr check`",
        )),
        Playbook("other", "Incident", "Emergency Procedures", (
            "Triage — `/cf status`",
            "Assign a commander — `/cf incident assign commander @someone`",
            "Post updates as you learn — `/cf incident update TEXT`",
            "Page on-call if needed — `/cf page primary`",
        )),
    )
}

# Whole words (regular expressions) that name one kind and nothing else. "leak" is not here: a memory
# leak and a data leak share it. The outage words are the weakest: any other kind's word wins over them.
_KIND_WORDS = (
    ("disaster-recovery", (r"disaster", r"cluster rebuild", r"rebuild the cluster", r"region (?:down|outage)")),
    ("data-breach", (r"breach\w*", r"exfiltrat\w*", r"data leak\w*", r"leaked data")),
    ("ddos", (r"d?dos", r"dos attack", r"flood\w*")),
    ("security", (r"security", r"intrusion", r"compromis\w*", r"malware", r"suspicious")),
    ("database", (r"database", r"postgres\w*", r"rds", r"db", r"sql")),
    ("websocket", (r"websockets?", r"sockets?", r"ws", r"real-?time")),
    ("memory", (r"memory", r"oom\w*", r"cpu", r"memory leak")),
)
_OUTAGE_WORDS = (r"down", r"outages?", r"5xx", r"unavailable", r"not loading", r"errors?")
_KIND_RES = tuple((kind, re.compile(r"\b(?:" + "|".join(words) + r")\b")) for kind, words in _KIND_WORDS)
_OUTAGE_RE = re.compile(r"\b(?:" + "|".join(_OUTAGE_WORDS) + r")\b")
GENERAL = "other"  # the general checklist, when the title names no kind unambiguously


def guess_kind(title: str) -> str:
    """A type from whole words in the title, only when they point one way.

    Exactly one specific kind named: that kind. None, but outage words ("down", "errors"): the outage
    checklist. Two specific kinds ("database memory"), or no telling word at all: the general checklist,
    rather than a confident wrong one (a memory leak is not a data breach). The declarer is told the type
    was guessed and how to choose it (`--type KIND`).
    """
    text = title.lower()
    kinds = [kind for kind, words in _KIND_RES if words.search(text)]
    if len(kinds) == 1:
        return kinds[0]
    if not kinds and _OUTAGE_RE.search(text):
        return "outage"
    return GENERAL


def slug(title: str, limit: int) -> str:
    """A Slack-channel-safe slug: ASCII-folded lowercase words joined by '-', at most `limit` chars."""
    folded = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    text = re.sub(r"[^a-z0-9]+", "-", folded.lower()).strip("-")
    text = text[:limit].rstrip("-")
    return text or "incident"


def plain_quotes(text: str) -> str:
    """Straight quotes for stored titles, so a title can be quoted back into a command line."""
    return text.replace("\u201c", '"').replace("\u201d", '"').replace("\u2018", "'").replace("\u2019", "'")
