"""AWS through boto3, off the event loop: the narrow set of calls the runbook's procedures need.

boto3 is blocking, so every call runs in one of this client's own worker threads
(`integrations.workers`), never in the event loop's default executor, and has one deadline
(`timeout`, 15 s by default) that covers the wait for a thread, every attempt and the backoff between
them: botocore's standard retry mode (throttling-aware) makes at most two attempts, and its connect
and read timeouts are cut so that two attempts and the first backoff (at most 1 s) fit in the
deadline. A thread is therefore free again by the deadline, and a hung endpoint costs a command
`timeout` seconds, not several times that.

Credentials and endpoints come from boto3's own chain: IRSA in the cluster, `AWS_ENDPOINT_URL`
(or `AWS_ENDPOINT_URL_<SERVICE>`) when set, exactly as boto3 honours them. Every call names its
service and operation literally (`self._call("rds", "reboot_db_instance", ...)`): the IAM policy
test in tests/ reads them from this file, so deploy/iam-policy.json cannot drift from the code.
Failures become `integrations.errors` types with one line (see awserrors).

botocore's DEBUG logs carry request and response bodies, which would include secret values during a
rotation; those loggers are held at INFO here so that no log configuration can turn them on.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import Any

import boto3
from botocore.config import Config

from integrations import telemetry
from integrations.awserrors import ApiUnavailable, translate
from integrations.workers import Workers

Obj = dict[str, Any]

for _name in ("botocore.endpoint", "botocore.parsers", "botocore.hooks", "botocore.auth", "botocore.retryhandler",
              "botocore.httpsession", "urllib3.connectionpool"):
    logging.getLogger(_name).setLevel(logging.INFO)

HEALTH_REGION = "us-east-1"  # the AWS Health API is served from us-east-1 for the whole account
WORKERS = 4  # AWS calls are one at a time per command; four commands' worth, plus the scheduled jobs queue
FIRST_BACKOFF = 1.0  # botocore's standard mode waits at most base * 2**0 = 1 s before its first retry


def budget(deadline: float) -> tuple[int, float, float]:
    """(attempts, connect timeout, read timeout) such that every attempt and the backoff fit in `deadline`."""
    attempts = 2 if deadline >= 4 * FIRST_BACKOFF else 1
    per_attempt = (deadline - FIRST_BACKOFF * (attempts - 1)) / attempts
    connect = min(3.0, per_attempt / 3)
    return attempts, connect, per_attempt - connect


class Aws:
    """One boto3 session; one client per service, made on first use and shared (clients are thread-safe)."""

    def __init__(self, region: str, timeout: float = 15.0, session: boto3.session.Session | None = None,
                 workers: int = WORKERS) -> None:
        self.region = region
        self.timeout = timeout
        self._session = session or boto3.session.Session()
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.workers = Workers("aws", workers)
        attempts, connect, read = budget(timeout)
        self._config = Config(
            region_name=region,
            connect_timeout=connect,
            read_timeout=read,
            retries={"total_max_attempts": attempts, "mode": "standard"},
            max_pool_connections=workers,
            user_agent_extra="cf-bot",
        )

    def close(self) -> None:
        self.workers.close()

    def _client(self, service: str) -> Any:
        with self._lock:
            client = self._clients.get(service)
            if client is None:
                region = HEALTH_REGION if service == "health" else self.region
                client = self._session.client(service, region_name=region, config=self._config)
                self._clients[service] = client
            return client

    async def _call(self, service: str, operation: str, what: str, **params: Any) -> Obj:
        def run(_left: float) -> Obj:  # botocore bounds itself: see `budget`
            client = self._client(service)
            try:
                return dict(getattr(client, operation)(**params))
            except Exception as exc:
                raise translate(exc, service, operation, what, client.meta.endpoint_url, self.timeout) from None

        async with telemetry.timed("AWS", f"{service}.{operation}"):
            try:
                return await self.workers.run(run, self.timeout)
            except TimeoutError as exc:
                raise translate(exc, service, operation, what, "", self.timeout) from None

    # --- EKS --------------------------------------------------------------------------------

    async def eks_cluster(self, name: str) -> Obj:
        return dict((await self._call("eks", "describe_cluster", f"describe EKS cluster {name}", name=name))["cluster"])

    async def nodegroups(self, cluster: str) -> list[str]:
        data = await self._call("eks", "list_nodegroups", f"list node groups of {cluster}", clusterName=cluster)
        return list(data.get("nodegroups", []))

    async def nodegroup(self, cluster: str, name: str) -> Obj:
        data = await self._call("eks", "describe_nodegroup", f"describe node group {name}", clusterName=cluster,
                                nodegroupName=name)
        return dict(data["nodegroup"])

    async def scale_nodegroup(self, cluster: str, name: str, minimum: int, maximum: int, desired: int) -> Obj:
        config = {"minSize": minimum, "maxSize": maximum, "desiredSize": desired}
        data = await self._call("eks", "update_nodegroup_config", f"update node group {name}", clusterName=cluster,
                                nodegroupName=name, scalingConfig=config)
        return dict(data["update"])

    # --- RDS --------------------------------------------------------------------------------

    async def db_instance(self, name: str) -> Obj:
        data = await self._call("rds", "describe_db_instances", f"describe RDS instance {name}",
                                DBInstanceIdentifier=name)
        return dict(data["DBInstances"][0])

    async def db_cluster(self, name: str) -> Obj:
        data = await self._call("rds", "describe_db_clusters", f"describe RDS cluster {name}",
                                DBClusterIdentifier=name)
        return dict(data["DBClusters"][0])

    async def pending_maintenance(self, arn: str) -> list[Obj]:
        data = await self._call("rds", "describe_pending_maintenance_actions", "read pending maintenance",
                                ResourceIdentifier=arn)
        return [d for r in data.get("PendingMaintenanceActions", []) for d in r["PendingMaintenanceActionDetails"]]

    async def db_events(self, source: str, source_type: str, minutes: int) -> list[Obj]:
        data = await self._call("rds", "describe_events", f"read RDS events of {source}", SourceIdentifier=source,
                                SourceType=source_type, Duration=minutes, MaxRecords=100)
        return list(data.get("Events", []))

    async def db_snapshots(self, instance: str | None = None, snapshot: str | None = None) -> list[Obj]:
        params = {"DBInstanceIdentifier": instance} if instance else {"DBSnapshotIdentifier": snapshot}
        data = await self._call("rds", "describe_db_snapshots", f"list snapshots of {instance or snapshot}", **params)
        return list(data.get("DBSnapshots", []))

    async def reboot_db(self, name: str, force_failover: bool = False) -> Obj:
        verb = "fail over" if force_failover else "reboot"
        data = await self._call("rds", "reboot_db_instance", f"{verb} RDS instance {name}", DBInstanceIdentifier=name,
                                ForceFailover=force_failover)
        return dict(data["DBInstance"])

    async def failover_db_cluster(self, name: str) -> Obj:
        data = await self._call("rds", "failover_db_cluster", f"fail over RDS cluster {name}",
                                DBClusterIdentifier=name)
        return dict(data["DBCluster"])

    async def create_db_snapshot(self, instance: str, snapshot: str) -> Obj:
        data = await self._call("rds", "create_db_snapshot", f"snapshot RDS instance {instance}",
                                DBInstanceIdentifier=instance, DBSnapshotIdentifier=snapshot)
        return dict(data["DBSnapshot"])

    async def restore_db_to_time(self, source: str, target: str, when: datetime) -> Obj:
        data = await self._call("rds", "restore_db_instance_to_point_in_time", f"restore {source} as {target}",
                                SourceDBInstanceIdentifier=source, TargetDBInstanceIdentifier=target,
                                RestoreTime=when)
        return dict(data["DBInstance"])

    async def restore_db_from_snapshot(self, snapshot: str, target: str) -> Obj:
        data = await self._call("rds", "restore_db_instance_from_db_snapshot", f"restore {snapshot} as {target}",
                                DBSnapshotIdentifier=snapshot, DBInstanceIdentifier=target)
        return dict(data["DBInstance"])

    async def create_read_replica(self, source: str, name: str) -> Obj:
        data = await self._call("rds", "create_db_instance_read_replica", f"create read replica {name}",
                                DBInstanceIdentifier=name, SourceDBInstanceIdentifier=source)
        return dict(data["DBInstance"])

    # --- ELB, S3, Health, EC2 ---------------------------------------------------------------

    async def load_balancer(self, name: str) -> Obj:
        data = await self._call("elbv2", "describe_load_balancers", f"describe load balancer {name}", Names=[name])
        return dict(data["LoadBalancers"][0])

    async def target_groups(self, lb_arn: str | None = None, names: list[str] | None = None) -> list[Obj]:
        params: Obj = {"LoadBalancerArn": lb_arn} if lb_arn else {"Names": names}
        data = await self._call("elbv2", "describe_target_groups", "describe target groups", **params)
        return list(data.get("TargetGroups", []))

    async def target_health(self, tg_arn: str, name: str) -> list[Obj]:
        data = await self._call("elbv2", "describe_target_health", f"read target health of {name}",
                                TargetGroupArn=tg_arn)
        return list(data.get("TargetHealthDescriptions", []))

    async def list_objects(self, bucket: str, limit: int = 10, prefix: str = "") -> Obj:
        return await self._call("s3", "list_objects_v2", f"list bucket {bucket}", Bucket=bucket, MaxKeys=limit,
                                Prefix=prefix)

    async def put_object(self, bucket: str, key: str, body: bytes) -> Obj:
        """`s3 check --write`'s probe object (the IAM policy allows it only under the probe prefix)."""
        return await self._call("s3", "put_object", f"write s3://{bucket}/{key}", Bucket=bucket, Key=key, Body=body,
                                ContentType="text/plain; charset=utf-8")

    async def delete_object(self, bucket: str, key: str) -> Obj:
        return await self._call("s3", "delete_object", f"delete s3://{bucket}/{key}", Bucket=bucket, Key=key)

    async def health_events(self, services: list[str], region: str) -> list[Obj]:
        data = await self._call("health", "describe_events", "read AWS Health events",
                                filter={"services": services, "regions": [region]}, maxResults=50)
        return list(data.get("events", []))

    async def instance(self, instance_id: str) -> Obj:
        data = await self._call("ec2", "describe_instances", f"describe EC2 instance {instance_id}",
                                InstanceIds=[instance_id])
        found = [i for r in data.get("Reservations", []) for i in r.get("Instances", [])]
        return dict(found[0]) if found else {}

    async def terminate_instance(self, instance_id: str) -> Obj:
        data = await self._call("ec2", "terminate_instances", f"terminate EC2 instance {instance_id}",
                                InstanceIds=[instance_id])
        return dict(data["TerminatingInstances"][0])

    # --- ElastiCache ------------------------------------------------------------------------

    async def replication_group(self, name: str) -> Obj:
        data = await self._call("elasticache", "describe_replication_groups", f"describe replication group {name}",
                                ReplicationGroupId=name)
        return dict(data["ReplicationGroups"][0])

    async def set_replica_count(self, name: str, current: int, wanted: int) -> Obj:
        """ElastiCache changes replicas with increase/decrease-replica-count (not modify-replication-group)."""
        what = f"change the replica count of {name}"
        if wanted > current:
            data = await self._call("elasticache", "increase_replica_count", what, ReplicationGroupId=name,
                                    NewReplicaCount=wanted, ApplyImmediately=True)
        else:
            data = await self._call("elasticache", "decrease_replica_count", what, ReplicationGroupId=name,
                                    NewReplicaCount=wanted, ApplyImmediately=True)
        return dict(data["ReplicationGroup"])

    # --- Secrets Manager --------------------------------------------------------------------

    async def describe_secret(self, secret_id: str) -> Obj:
        return await self._call("secretsmanager", "describe_secret", f"describe secret {secret_id}", SecretId=secret_id)

    async def secret_string(self, secret_id: str) -> tuple[str, str]:
        """(AWSCURRENT version id, value). Callers keep the value out of replies, logs and the audit store."""
        data = await self._call("secretsmanager", "get_secret_value", f"read secret {secret_id}", SecretId=secret_id)
        return str(data["VersionId"]), str(data.get("SecretString") or "")

    async def put_secret_string(self, secret_id: str, value: str) -> str:
        """Write a new version; Secrets Manager moves AWSCURRENT to it and AWSPREVIOUS to the old one."""
        data = await self._call("secretsmanager", "put_secret_value", f"write a new version of {secret_id}",
                                SecretId=secret_id, SecretString=value)
        return str(data["VersionId"])

    # --- WAFv2 ------------------------------------------------------------------------------

    async def find_rule_group(self, name: str, scope: str) -> Obj | None:
        params: Obj = {"Scope": scope, "Limit": 100}
        while True:
            data = await self._call("wafv2", "list_rule_groups", "list WAF rule groups", **params)
            for group in data.get("RuleGroups", []):
                if group["Name"] == name:
                    return dict(group)
            if not data.get("NextMarker"):
                return None
            params["NextMarker"] = data["NextMarker"]

    async def rule_group(self, name: str, scope: str, group_id: str) -> tuple[Obj, str]:
        data = await self._call("wafv2", "get_rule_group", f"read WAF rule group {name}", Name=name, Scope=scope,
                                Id=group_id)
        return dict(data["RuleGroup"]), str(data["LockToken"])

    async def update_rule_group(self, group: Obj, scope: str, lock_token: str) -> str:
        """Replace the group's rules, guarded by its lock token (a concurrent edit makes this fail)."""
        params = {k: group[k] for k in ("Description", "CustomResponseBodies") if group.get(k)}
        data = await self._call("wafv2", "update_rule_group", f"update WAF rule group {group['Name']}",
                                Name=group["Name"], Scope=scope, Id=group["Id"], Rules=group["Rules"],
                                VisibilityConfig=group["VisibilityConfig"], LockToken=lock_token, **params)
        return str(data.get("NextLockToken", ""))


__all__ = ["ApiUnavailable", "Aws"]
