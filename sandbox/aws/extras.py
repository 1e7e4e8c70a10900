"""What moto does not answer, answered by the sandbox itself over the same wire protocols.

- AWS Health `DescribeEvents` (moto has no Health backend), from a list the sandbox keeps; with
  `subscription=False` it answers `SubscriptionRequiredException` as AWS does for accounts without a
  Business or Enterprise support plan.
- RDS `DescribePendingMaintenanceActions` (not in moto), from a map of resource ARN -> actions.
- RDS `RebootDBInstance --force-failover` on a Multi-AZ instance: moto reboots but does not move the
  primary, so the primary and standby zones are swapped before moto answers.
- ElastiCache `IncreaseReplicaCount` / `DecreaseReplicaCount` (not in moto): the replica members of
  moto's replication group are added or removed, so `DescribeReplicationGroups` tells the truth.

Handlers return a response triple, or None to let the request through to moto unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape

from moto.backends import get_backend
from moto.core.models import DEFAULT_ACCOUNT_ID

from .protocol import AwsRequest, error_response, json_response, query_response

Response = tuple[int, dict[str, str], bytes]
RDS_NS = "http://rds.amazonaws.com/doc/2014-10-31/"
CACHE_NS = "http://elasticache.amazonaws.com/doc/2015-02-02/"
MAX_REPLICAS = 5


def backend(service: str, region: str) -> Any:
    """moto's in-process state for one service and region (the server runs in this process)."""
    return get_backend(service)[DEFAULT_ACCOUNT_ID][region]  # type: ignore[call-overload]


@dataclass
class Extras:
    health_events: list[dict[str, Any]] = field(default_factory=list)
    health_subscription: bool = True
    pending_maintenance: dict[str, list[dict[str, str]]] = field(default_factory=dict)

    def handle(self, req: AwsRequest) -> Response | None:
        key = (req.service, req.action)
        if key == ("health", "DescribeEvents"):
            return self.describe_health_events(req)
        if key == ("rds", "DescribePendingMaintenanceActions"):
            return self.describe_pending_maintenance(req)
        if key == ("rds", "RebootDBInstance") and req.params.get("ForceFailover") == "true":
            return force_failover(req)
        if req.service == "elasticache" and req.action in ("IncreaseReplicaCount", "DecreaseReplicaCount"):
            return change_replica_count(req)
        return None

    # --- Health -----------------------------------------------------------------------------

    def describe_health_events(self, req: AwsRequest) -> Response:
        if not self.health_subscription:
            return error_response("health", "SubscriptionRequiredException",
                                  "The AWS Health API requires a Business or Enterprise support plan.", 400)
        wanted = req.json_body.get("filter") or {}
        services = set(wanted.get("services") or []) if isinstance(wanted, dict) else set()
        statuses = set(wanted.get("eventStatusCodes") or []) if isinstance(wanted, dict) else set()
        events = [e for e in self.health_events
                  if (not services or e["service"] in services) and (not statuses or e["statusCode"] in statuses)]
        return json_response({"events": [_epoch_times(e) for e in events]})

    # --- RDS --------------------------------------------------------------------------------

    def describe_pending_maintenance(self, req: AwsRequest) -> Response:
        wanted = req.params.get("ResourceIdentifier")
        items = []
        for arn, actions in self.pending_maintenance.items():
            if wanted and wanted != arn:
                continue
            details = "".join(
                "<PendingMaintenanceAction>" + "".join(f"<{k}>{escape(v)}</{k}>" for k, v in a.items())
                + "</PendingMaintenanceAction>" for a in actions
            )
            items.append(f"<ResourcePendingMaintenanceActions><ResourceIdentifier>{escape(arn)}</ResourceIdentifier>"
                         f"<PendingMaintenanceActionDetails>{details}</PendingMaintenanceActionDetails>"
                         "</ResourcePendingMaintenanceActions>")
        return query_response("DescribePendingMaintenanceActions", RDS_NS,
                              f"<PendingMaintenanceActions>{''.join(items)}</PendingMaintenanceActions>")


def force_failover(req: AwsRequest) -> Response | None:
    """Swap primary and standby zones, then let moto answer (its reply then shows the new primary)."""
    db = backend("rds", req.region).databases.get(req.params.get("DBInstanceIdentifier", ""))
    if db is None:
        return None
    if not db.multi_az:
        return error_response("rds", "InvalidParameterCombination",
                              "Reboot with failover is only supported for Multi-AZ instances.", 400)
    standby = getattr(db, "secondary_availability_zone", None)
    if standby:
        db.secondary_availability_zone, db.availability_zone = db.availability_zone, standby
    return None


def change_replica_count(req: AwsRequest) -> Response:
    group_id = req.params.get("ReplicationGroupId", "")
    group = backend("elasticache", req.region).replication_groups.get(group_id)
    if group is None:
        return error_response("elasticache", "ReplicationGroupNotFoundFault",
                              f"Replication group {group_id} not found.", 404)
    members = group.node_groups[0]["node_group_members"]
    current = len(members) - 1
    try:
        wanted = int(req.params.get("NewReplicaCount", ""))
    except ValueError:
        return error_response("elasticache", "InvalidParameterValue", "NewReplicaCount is required.", 400)
    problem = _replica_problem(req.action, current, wanted, group.automatic_failover == "enabled")
    if problem:
        return error_response("elasticache", "InvalidParameterValue", problem, 400)
    while len(members) - 1 < wanted:
        members.append(_replica_like(members[-1], f"{group_id}-{len(members) + 1:0>3}"))
    del members[wanted + 1:]
    group.member_clusters[:] = [m["cache_cluster_id"] for m in members]
    ids = "".join(f"<ClusterId>{escape(m)}</ClusterId>" for m in group.member_clusters)
    result = (f"<ReplicationGroup><ReplicationGroupId>{escape(group_id)}</ReplicationGroupId>"
              f"<Status>modifying</Status><MemberClusters>{ids}</MemberClusters></ReplicationGroup>")
    return query_response(req.action, CACHE_NS, result)


def _replica_problem(action: str, current: int, wanted: int, auto_failover: bool) -> str:
    if action == "IncreaseReplicaCount" and wanted <= current:
        return f"NewReplicaCount ({wanted}) must be greater than the current replica count ({current})."
    if action == "DecreaseReplicaCount" and wanted >= current:
        return f"NewReplicaCount ({wanted}) must be less than the current replica count ({current})."
    if wanted > MAX_REPLICAS:
        return f"A replication group can have at most {MAX_REPLICAS} replicas."
    if wanted < (1 if auto_failover else 0):
        return "Automatic failover requires at least one replica."
    return ""


def _replica_like(template: dict[str, Any], cluster_id: str) -> dict[str, Any]:
    domain = template["read_endpoint"]["address"].split(".", 1)[1]
    return {**template, "cache_cluster_id": cluster_id, "current_role": "replica",
            "read_endpoint": {"address": f"{cluster_id}.{domain}", "port": template["read_endpoint"]["port"]}}


def _epoch_times(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v.timestamp() if isinstance(v, datetime) else v for k, v in event.items()}
