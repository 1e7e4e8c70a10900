"""Seed moto with the runbook's AWS resources, so every `cf` AWS command has something real to read.

Resources go in through the public API (boto3 against the moto server). A few facts the API cannot
express are set on moto's in-process models afterwards, each for a reason:
- the RDS instance was created months ago (so "15 minutes ago" lies in its restore window) and
  has a standby zone (so a forced failover visibly moves the primary);
- the EC2 instances carry the instance ids in the sandbox Kubernetes nodes' `spec.providerID`, so
  `node terminate NODE` finds the node's instance exactly as it would in EKS.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

from .extras import Extras, backend

REGION = "us-east-1"
ACCOUNT = "123456789012"
CLUSTER = "candlefish-collaboration"
NODEGROUP = "general"
DB = "candlefish-collaboration-db"
DB_CLUSTER = "candlefish-collaboration-cluster"
ALB = "candlefish-collaboration-alb"
TARGET_GROUP = "candlefish-websocket-tg"
REDIS = "candlefish-collaboration-redis"
SECRET = "candlefish/collaboration/app-secrets"
BUCKET = "candlefish-collaboration-documents"
WAF_GROUP = "candlefish-rate-limit"
WAF_RULE = "rate-limit-per-ip"
AMI = "ami-12c6146b"  # one of moto's built-in images
ROLE = f"arn:aws:iam::{ACCOUNT}:role/candlefish-eks"
DOCUMENTS = ["documents/2026/11/roadmap.md", "documents/2026/11/design-review.pdf", "uploads/avatar-4117.png",
             "exports/workspace-candlefish.zip"]


def clients(endpoint_url: str) -> dict[str, Any]:
    kw = {"endpoint_url": endpoint_url, "region_name": REGION, "aws_access_key_id": "sandbox",
          "aws_secret_access_key": "sandbox"}
    names = ("ec2", "eks", "rds", "elbv2", "elasticache", "secretsmanager", "s3", "wafv2")
    return {n: boto3.client(n, **kw) for n in names}


def seed(endpoint_url: str, extras: Extras, nodes: Iterable[dict[str, Any]] = ()) -> dict[str, str]:
    """Create everything; return the node name -> EC2 instance id map."""
    c = clients(endpoint_url)
    subnets = {s["AvailabilityZone"]: s["SubnetId"] for s in c["ec2"].describe_subnets()["Subnets"]}
    zones = ["us-east-1a", "us-east-1b", "us-east-1c"]
    _eks(c["eks"], [subnets[z] for z in zones])
    _rds(c["rds"], extras)
    _alb(c["elbv2"], c["ec2"], [subnets[z] for z in zones])
    _redis(c["elasticache"])
    _secret(c["secretsmanager"])
    _bucket(c["s3"])
    _waf(c["wafv2"])
    _health(extras)
    return attach_nodes(endpoint_url, nodes)


def _eks(eks: Any, subnets: list[str]) -> None:
    eks.create_cluster(name=CLUSTER, version="1.32", roleArn=ROLE, resourcesVpcConfig={"subnetIds": subnets})
    eks.create_nodegroup(clusterName=CLUSTER, nodegroupName=NODEGROUP, nodeRole=ROLE, subnets=subnets, version="1.32",
                         instanceTypes=["m5.xlarge"], scalingConfig={"minSize": 3, "maxSize": 20, "desiredSize": 3},
                         capacityType="ON_DEMAND", amiType="AL2023_x86_64_STANDARD")


def _rds(rds: Any, extras: Extras) -> None:
    rds.create_db_instance(
        DBInstanceIdentifier=DB, DBInstanceClass="db.r6g.xlarge", Engine="postgres", EngineVersion="15.8",
        MultiAZ=True, AllocatedStorage=500, MaxAllocatedStorage=1000, StorageType="gp3",
        MasterUsername="collaboration_user", MasterUserPassword=secrets.token_urlsafe(24),
        DBName="collaboration_db", BackupRetentionPeriod=7, AvailabilityZone="us-east-1a",
    )
    for n in (1, 2):
        rds.create_db_instance_read_replica(DBInstanceIdentifier=f"{DB}-replica-{n}", SourceDBInstanceIdentifier=DB)
    model = backend("rds", REGION)
    created = datetime.now(UTC) - timedelta(days=97)
    primary = model.databases[DB]
    primary.created = primary.instance_create_time = created
    primary.secondary_availability_zone = "us-east-1b"
    for n in (1, 2):
        replica = model.databases[f"{DB}-replica-{n}"]
        replica.multi_az, replica.secondary_availability_zone = False, None
        replica.availability_zone = "us-east-1c"
    rds.create_db_snapshot(DBInstanceIdentifier=DB, DBSnapshotIdentifier="manual-backup-20261120-030000")
    rds.create_db_cluster(DBClusterIdentifier=DB_CLUSTER, Engine="aurora-postgresql", EngineVersion="15.8",
                          MasterUsername="collaboration_user", MasterUserPassword=secrets.token_urlsafe(24),
                          BackupRetentionPeriod=7)
    for n, zone in ((1, "us-east-1a"), (2, "us-east-1b")):
        rds.create_db_instance(DBInstanceIdentifier=f"{DB_CLUSTER}-{n}", DBClusterIdentifier=DB_CLUSTER,
                               Engine="aurora-postgresql", DBInstanceClass="db.r6g.large", AvailabilityZone=zone)
    arn = rds.describe_db_instances(DBInstanceIdentifier=DB)["DBInstances"][0]["DBInstanceArn"]
    soon = (datetime.now(UTC) + timedelta(days=9)).strftime("%Y-%m-%dT%H:%M:%SZ")
    extras.pending_maintenance[arn] = [{"Action": "system-update", "AutoAppliedAfterDate": soon,
                                        "Description": "New Operating System update is available"}]


def _alb(elbv2: Any, ec2: Any, subnets: list[str]) -> None:
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    lb = elbv2.create_load_balancer(Name=ALB, Subnets=subnets, Scheme="internet-facing", Type="application")
    lb_arn = lb["LoadBalancers"][0]["LoadBalancerArn"]
    tg = elbv2.create_target_group(Name=TARGET_GROUP, Protocol="HTTP", Port=4001, VpcId=vpc, TargetType="instance",
                                   HealthCheckPath="/health", HealthCheckProtocol="HTTP")
    tg_arn = tg["TargetGroups"][0]["TargetGroupArn"]
    elbv2.create_listener(LoadBalancerArn=lb_arn, Protocol="HTTP", Port=80,
                          DefaultActions=[{"Type": "forward", "TargetGroupArn": tg_arn}])


def _redis(cache: Any) -> None:
    cache.create_replication_group(
        ReplicationGroupId=REDIS, ReplicationGroupDescription="Candlefish collaboration cache",
        ReplicasPerNodeGroup=2, CacheNodeType="cache.r6g.large", Engine="redis", EngineVersion="7.1",
        AutomaticFailoverEnabled=True, MultiAZEnabled=True,
    )


def _secret(sm: Any) -> None:
    def value() -> str:
        return json.dumps({"jwt_secret": secrets.token_urlsafe(32), "session_secret": secrets.token_urlsafe(32)})

    sm.create_secret(Name=SECRET, Description="Candlefish collaboration application secrets", SecretString=value())
    sm.put_secret_value(SecretId=SECRET, SecretString=value())  # so AWSPREVIOUS exists, as after a rotation


def _bucket(s3: Any) -> None:
    s3.create_bucket(Bucket=BUCKET)
    for key in DOCUMENTS:
        s3.put_object(Bucket=BUCKET, Key=key, Body=f"sandbox object {key}\n".encode() * 40)


def _waf(waf: Any) -> None:
    vis = {"SampledRequestsEnabled": True, "CloudWatchMetricsEnabled": True, "MetricName": "candlefishRateLimit"}
    rules = [{"Name": WAF_RULE, "Priority": 0, "Action": {"Block": {}}, "VisibilityConfig": vis,
              "Statement": {"RateBasedStatement": {"Limit": 2000, "AggregateKeyType": "IP"}}}]
    waf.create_rule_group(Name=WAF_GROUP, Scope="REGIONAL", Capacity=50, VisibilityConfig=vis, Rules=rules,
                          Description="Per-IP rate limiting for the collaboration ALB")


def _health(extras: Extras) -> None:
    now = datetime.now(UTC)
    extras.health_events[:] = [
        {"arn": f"arn:aws:health:{REGION}::event/EC2/AWS_EC2_OPERATIONAL_ISSUE/AWS_EC2_OPERATIONAL_ISSUE_A1B2C",
         "service": "EC2", "eventTypeCode": "AWS_EC2_OPERATIONAL_ISSUE", "eventTypeCategory": "issue",
         "region": REGION, "availabilityZone": "us-east-1c", "startTime": now - timedelta(hours=3),
         "endTime": now - timedelta(hours=1, minutes=20), "lastUpdatedTime": now - timedelta(hours=1, minutes=20),
         "statusCode": "closed", "eventScopeCode": "PUBLIC"},
        {"arn": f"arn:aws:health:{REGION}::event/RDS/AWS_RDS_MAINTENANCE_SCHEDULED/AWS_RDS_MAINT_9F8E7",
         "service": "RDS", "eventTypeCode": "AWS_RDS_MAINTENANCE_SCHEDULED", "eventTypeCategory": "scheduledChange",
         "region": REGION, "startTime": now + timedelta(days=9), "lastUpdatedTime": now - timedelta(days=2),
         "statusCode": "upcoming", "eventScopeCode": "ACCOUNT_SPECIFIC"},
    ]


def attach_nodes(endpoint_url: str, nodes: Iterable[dict[str, Any]]) -> dict[str, str]:
    """Give each Kubernetes node an EC2 instance whose id is the one in its providerID.

    Idempotent: a node whose instance already exists (and is not terminated) is left alone. New
    instances are tagged as EKS tags them and registered in the websocket target group.
    """
    c = clients(endpoint_url)
    model = backend("ec2", REGION)
    known = {i.id: i for r in model.reservations.values() for i in r.instances}
    made: dict[str, str] = {}
    for node in nodes:
        name = node["metadata"]["name"]
        provider = node.get("spec", {}).get("providerID", "")
        if not provider.startswith("aws:///"):
            continue
        zone, instance_id = provider.removeprefix("aws:///").split("/", 1)
        made[name] = instance_id
        existing = known.get(instance_id)
        if existing is not None and existing.state != "terminated":
            continue
        if existing is not None:  # a terminated twin from an earlier sandbox cluster: retire its id
            existing.id = f"{instance_id}-retired-{secrets.token_hex(3)}"
        _launch(c, model, name, zone, instance_id)
    return made


def _launch(c: dict[str, Any], model: Any, node: str, zone: str, instance_id: str) -> None:
    run = c["ec2"].run_instances(ImageId=AMI, MinCount=1, MaxCount=1, InstanceType="m5.xlarge",
                                 Placement={"AvailabilityZone": zone})
    model.get_instance(run["Instances"][0]["InstanceId"]).id = instance_id
    c["ec2"].create_tags(Resources=[instance_id], Tags=[
        {"Key": "Name", "Value": f"{CLUSTER}-{NODEGROUP}-node"}, {"Key": "eks:cluster-name", "Value": CLUSTER},
        {"Key": "eks:nodegroup-name", "Value": NODEGROUP},
        {"Key": f"kubernetes.io/cluster/{CLUSTER}", "Value": "owned"},
        {"Key": "cf-sandbox/node-name", "Value": node},
    ])
    tg = c["elbv2"].describe_target_groups(Names=[TARGET_GROUP])["TargetGroups"][0]["TargetGroupArn"]
    c["elbv2"].register_targets(TargetGroupArn=tg, Targets=[{"Id": instance_id, "Port": 4001}])
