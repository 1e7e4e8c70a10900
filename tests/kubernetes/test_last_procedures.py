"""The runbook's last procedures through the Slack simulator, judged by kubectl, Google's protobuf runtime and boto3.

- `pprof`: the heap profile through the pods proxy; kubectl fetches the same bytes, protobuf's own parser
  (a profile.proto descriptor built here from the published field numbers) says what the top should be.
- `metrics --per-pod`, `ws probe --in-cluster`: each pod's own endpoints through the pods proxy.
- `describe hpa|ingress`, `rollout history` without a name: what kubectl reports about the same objects.
- `oncall`: the contacts from config (the runbook's defaults); `s3 check --write`: moto's bucket as the judge.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import re
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from prometheus_client.parser import text_string_to_metric_families

from bot.config import ConfigError, parse_settings
from sandbox.probe_targets import ProbeTargets
from tests import aws_support
from tests.aws_support import boto, writes_since
from tests.harness import BASE_CONFIG, OPERATOR, VIEWER, merge, start_bot
from tests.k8s_support import NS, assert_slack_accepted_everything, files_named, k8s_bot, last_reply

aws_sandbox, aws_client, aws_bot = aws_support.aws_sandbox, aws_support.aws_client, aws_support.aws_bot
BUCKET = "candlefish-collaboration-documents"
RUNBOOK_EMAILS = ("devops@candlefish.ai", "security@candlefish.ai", "database@candlefish.ai",
                  "frontend@candlefish.ai", "backend@candlefish.ai")


# --- judges ---------------------------------------------------------------------------------------


async def kubectl_raw(kubeconfig: str, path: str) -> tuple[int, bytes, str]:
    """`kubectl get --raw PATH` as bytes (a profile is binary), with its exit code and stderr."""
    home = Path(kubeconfig).parent / "kubectl-home"
    home.mkdir(exist_ok=True)
    proc = await asyncio.create_subprocess_exec(
        "/usr/bin/kubectl", "get", "--raw", path, env={**os.environ, "HOME": str(home), "KUBECONFIG": kubeconfig},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    return proc.returncode or 0, out, err.decode()


def _profile_class() -> Any:
    """perftools.profiles.Profile from a descriptor written out of github.com/google/pprof/proto/profile.proto."""
    t = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto(name="judge_profile.proto", package="perftools.profiles",
                                             syntax="proto3")
    pkg = ".perftools.profiles."

    def message(name: str, *fields: tuple[str, int, int, bool, str]) -> None:
        msg = fdp.message_type.add(name=name)
        for field_name, number, kind, repeated, type_name in fields:
            added = msg.field.add(name=field_name, number=number, type=kind,
                                  label=t.LABEL_REPEATED if repeated else t.LABEL_OPTIONAL)
            if type_name:
                added.type_name = pkg + type_name

    i64, u64, msg_, string, boolean = t.TYPE_INT64, t.TYPE_UINT64, t.TYPE_MESSAGE, t.TYPE_STRING, t.TYPE_BOOL
    message("ValueType", ("type", 1, i64, False, ""), ("unit", 2, i64, False, ""))
    message("Label", ("key", 1, i64, False, ""), ("str", 2, i64, False, ""), ("num", 3, i64, False, ""),
            ("num_unit", 4, i64, False, ""))
    message("Sample", ("location_id", 1, u64, True, ""), ("value", 2, i64, True, ""), ("label", 3, msg_, True, "Label"))
    message("Mapping", ("id", 1, u64, False, ""), ("memory_start", 2, u64, False, ""),
            ("memory_limit", 3, u64, False, ""), ("file_offset", 4, u64, False, ""), ("filename", 5, i64, False, ""),
            ("build_id", 6, i64, False, ""), ("has_functions", 7, boolean, False, ""),
            ("has_filenames", 8, boolean, False, ""), ("has_line_numbers", 9, boolean, False, ""),
            ("has_inline_frames", 10, boolean, False, ""))
    message("Line", ("function_id", 1, u64, False, ""), ("line", 2, i64, False, ""))
    message("Location", ("id", 1, u64, False, ""), ("mapping_id", 2, u64, False, ""), ("address", 3, u64, False, ""),
            ("line", 4, msg_, True, "Line"), ("is_folded", 5, boolean, False, ""))
    message("Function", ("id", 1, u64, False, ""), ("name", 2, i64, False, ""), ("system_name", 3, i64, False, ""),
            ("filename", 4, i64, False, ""), ("start_line", 5, i64, False, ""))
    message("Profile", ("sample_type", 1, msg_, True, "ValueType"), ("sample", 2, msg_, True, "Sample"),
            ("mapping", 3, msg_, True, "Mapping"), ("location", 4, msg_, True, "Location"),
            ("function", 5, msg_, True, "Function"), ("string_table", 6, string, True, ""),
            ("drop_frames", 7, i64, False, ""), ("keep_frames", 8, i64, False, ""), ("time_nanos", 9, i64, False, ""),
            ("duration_nanos", 10, i64, False, ""), ("period_type", 11, msg_, False, "ValueType"),
            ("period", 12, i64, False, ""), ("comment", 13, i64, True, ""), ("default_sample_type", 14, i64, False, ""))
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("perftools.profiles.Profile"))


PROFILE = _profile_class()


def judge_heap(data: bytes) -> tuple[list[tuple[str, int]], int, list[Any]]:
    """(functions by flat in-use bytes, largest first; the in-use total; the samples) as protobuf reads them."""
    profile = PROFILE.FromString(gzip.decompress(data))
    names = profile.string_table
    index = [names[st.type] for st in profile.sample_type].index("inuse_space")
    functions = {f.id: names[f.name] for f in profile.function}
    leaf = {loc.id: functions[loc.line[0].function_id] for loc in profile.location}
    flat: dict[str, int] = defaultdict(int)
    for sample in profile.sample:
        flat[leaf[sample.location_id[0]]] += sample.value[index]
    ranked = sorted(flat.items(), key=lambda item: (-item[1], item[0]))
    samples = [(list(s.location_id), list(s.value)) for s in profile.sample]
    return ranked, sum(v for _, v in ranked), samples


def table_rows(text: str, header: str) -> list[list[str]]:
    """The rows of the table whose header line starts with `header`, cells split as Table.as_text pads them."""
    for block in text.split("```")[1::2]:
        lines = [line for line in block.strip("\n").splitlines() if line.strip()]
        if lines and lines[0].startswith(header):
            return [re.split(r"\s{3,}", line.strip()) for line in lines[1:]]
    raise AssertionError(f"no table with header {header!r} in:\n{text}")


def prometheus(text: str) -> dict[str, float]:
    return {f"{s.name}{{{','.join(f'{k}={v!r}' for k, v in sorted(s.labels.items()))}}}": s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


# --- pprof ----------------------------------------------------------------------------------------


async def test_pprof_profiles_the_apps_heaviest_pod_and_shows_the_top_by_in_use_space(sim, tmp_path) -> None:
    async with k8s_bot(sim, tmp_path, scenario="memory-pressure") as env:
        top = (await env.kubectl("top", "pods", "-l", "app=graphql-api", "--no-headers")).splitlines()
        heaviest = max((line.split() for line in top), key=lambda cols: int(cols[2].removesuffix("Mi")))[0]
        await env.bot.slash("pprof graphql-api", user=VIEWER)
        text = last_reply(env.bot)
        assert f"Heap profile of {heaviest}:" in text and "the most memory of 3 running pods" in text
        (upload,) = files_named(sim, f"heap-{heaviest}")
        assert upload["filename"].endswith(".pb.gz") and upload["thread_ts"] == env.bot.messages()[-1]["ts"]

        code, fetched, err = await kubectl_raw(env.kubeconfig,
                                               f"/api/v1/namespaces/{NS}/pods/{heaviest}:4000/proxy/debug/pprof/heap")
        assert code == 0, err
        ranked, total, samples = judge_heap(fetched)
        assert judge_heap(upload["content"])[2] == samples, "the attached profile is the pod's, as kubectl fetches it"
        assert ranked[0][0].endswith("(*SnapshotCache).Put"), "under memory pressure one cache holds most of the heap"
        rows = [r for r in table_rows(text, "FLAT") if r[1] != "0.0%"]  # callers with no flat value come last
        assert [r[-1] for r in rows] == [name for name, _ in ranked[:len(rows)]] and len(rows) == len(ranked)
        assert rows[0][1] == f"{100 * ranked[0][1] / total:.1f}%"
        shown = f"{total / 2**30:.1f} GiB" if total >= 2**30 else f"{total / 2**20:.1f} MiB"
        assert f"Heap profile of {heaviest}: {shown} inuse space" in text
        assert_slack_accepted_everything(sim)


async def test_pprof_attaches_what_it_cannot_read_and_names_what_failed(bot, sim, sandbox, kube) -> None:
    editor = (await kube.list_pods(NS, "app=collaboration-editor"))[0]["metadata"]["name"]
    await bot.slash(f"pprof {editor} --port 80", user=VIEWER)
    text = last_reply(bot)
    assert "could not be read as a heap profile" in text and "text/html" in text
    (upload,) = files_named(sim, f"heap-{editor}")
    code, fetched, err = await kubectl_raw(sandbox.kubeconfig,
                                           f"/api/v1/namespaces/{NS}/pods/{editor}:80/proxy/debug/pprof/heap")
    assert code == 0, err
    assert upload["filename"].endswith(".bin") and upload["content"] == fetched

    await bot.slash("pprof document-service --port 3000", user=VIEWER)
    text = last_reply(bot)
    assert "answered HTTP 404 for /debug/pprof/heap on port 3000" in text and "Cannot GET /debug/pprof/heap" in text

    await bot.slash("pprof graphql-api --port 9999", user=VIEWER)
    text = last_reply(bot)
    pod = text.split("Could not fetch the heap profile of ")[1].split()[0]
    code, _, err = await kubectl_raw(sandbox.kubeconfig,
                                     f"/api/v1/namespaces/{NS}/pods/{pod}:9999/proxy/debug/pprof/heap")
    assert code != 0 and "connection refused" in err and "connection refused" in text
    assert len(files_named(sim, "heap-")) == 1, "nothing is attached when there was nothing to fetch"

    await bot.slash("pprof nosuchapp", user=VIEWER)
    await bot.slash("pprof graphql-api --port 70000", user=VIEWER)
    said = " ".join(bot.private_texts())
    assert "No app or pod called `nosuchapp`" in said and "`graphql-api`" in said
    assert "is not a port number" in said
    assert_slack_accepted_everything(sim)


# --- metrics --per-pod ----------------------------------------------------------------------------


async def test_metrics_per_pod_names_the_one_pod_with_an_exhausted_pool(sim, tmp_path) -> None:
    async with k8s_bot(sim, tmp_path, scenario="db-pool-exhausted") as env:
        names = (await env.kubectl("get", "pods", "-l", "app=graphql-api", "-o",
                                   "jsonpath={.items[*].metadata.name}")).split()
        scraped = {}
        for name in names:
            code, body, err = await kubectl_raw(env.kubeconfig,
                                                f"/api/v1/namespaces/{NS}/pods/{name}:4000/proxy/metrics")
            assert code == 0, err
            scraped[name] = prometheus(body.decode())
        active = "db_connections{pool='primary',state='active'}"
        exhausted = [n for n, m in scraped.items() if m[active] >= m["db_connections_max{pool='primary'}"]]
        assert len(exhausted) == 1 and len(names) == 3

        await env.bot.slash("metrics graphql-api db_connections --per-pod", user=VIEWER)
        text = last_reply(env.bot)
        assert "graphql-api metrics from 3 pods matching `db_connections`" in text
        pool_lines = text.split("*Database pool exhausted*")[1].split("```")[0]
        assert exhausted[0] in pool_lines and not any(n in pool_lines for n in names if n != exhausted[0])
        header = next(b for b in text.split("```")[1::2] if b.strip().startswith("SERIES")).strip().splitlines()[0]
        columns = re.split(r"\s{3,}", header.strip())[1:]
        rows = {r[0]: r[1:] for r in table_rows(text, "SERIES")}
        for column, value in zip(columns, rows['db_connections{pool="primary",state="active"}'], strict=True):
            pod = next(n for n in names if n.endswith("-" + column))
            assert float(value) == scraped[pod][active]
        assert all(s.startswith("db_connections") for s in rows)

        await env.bot.slash("metrics graphql-api --per-pod --port 9999", user=VIEWER)
        text = last_reply(env.bot)
        assert "metrics from 0 pods" in text and "Not scraped" in text and "connection refused" in text
        await env.bot.slash("metrics graphql-api --port 4000", user=VIEWER)
        assert "`--port` goes with `--per-pod`" in " ".join(env.bot.private_texts())
        assert_slack_accepted_everything(sim)


# --- ws probe --in-cluster ------------------------------------------------------------------------


@pytest.fixture
async def targets() -> AsyncIterator[ProbeTargets]:
    stand_ins = ProbeTargets()
    await stand_ins.start()
    yield stand_ins
    await stand_ins.stop()


async def handshake_through_api_server(url: str, pod: str) -> int:
    """The judge's own WebSocket upgrade through the sandbox API server's pods proxy: 101, or the refusal's status."""
    async with aiohttp.ClientSession() as http:
        try:
            async with http.ws_connect(f"{url}/api/v1/namespaces/{NS}/pods/{pod}:8080/proxy/graphql",
                                       protocols=("graphql-transport-ws",)) as ws:
                await ws.send_str('{"type":"connection_init"}')
                reply = await ws.receive_str(timeout=5)
                return 101 if "connection_ack" in reply else 0
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status


async def test_ws_probe_in_cluster_tells_a_load_balancer_fault_from_a_service_fault(sim, tmp_path, targets) -> None:
    async with k8s_bot(sim, tmp_path, config={"probes": targets.probes_config()}) as env:
        pods = (await env.kubectl("get", "pods", "-l", "app=websocket-service", "-o",
                                  "jsonpath={.items[*].metadata.name}")).split()
        await env.bot.slash("ws probe --in-cluster", user=VIEWER)
        text = last_reply(env.bot)
        assert "through the load balancer and on all 3 pods directly" in text
        assert all(p in text for p in pods) and "include the API server's hop" in text

        targets.broken["/graphql"] = 502  # the load balancer fails; the pods are fine
        assert await handshake_through_api_server(env.sandbox.url, pods[0]) == 101
        await env.bot.slash("ws probe --in-cluster", user=VIEWER)
        text = last_reply(env.bot)
        assert "Load-balancer fault" in text and "3 of 3 pods accept it directly" in text and "/cf lb" in text

        env.sandbox.cluster.pod_http.failing[("websocket-service", "/graphql")] = 503  # now the service fails too
        assert await handshake_through_api_server(env.sandbox.url, pods[0]) == 503
        await env.bot.slash("ws probe --in-cluster", user=VIEWER)
        text = last_reply(env.bot)
        assert "Service fault" in text and "0 of 3 pods accepted" in text and "HTTP 503" in text

        await env.kubectl("scale", "deployment", "websocket-service", "--replicas=0")
        await env.bot.slash("ws probe --in-cluster", user=VIEWER)
        assert "no websocket-service pod is running" in last_reply(env.bot)
        await env.bot.slash("ws probe", user=VIEWER)
        assert "WebSocket probe failed" in last_reply(env.bot)
        assert_slack_accepted_everything(sim)


# --- describe hpa | ingress -----------------------------------------------------------------------


async def test_describe_hpa_reports_what_kubectl_reads(bot, sim, sandbox) -> None:
    from tests.harness import kubectl

    hpa = json.loads(await kubectl(sandbox.kubeconfig, "get", "hpa", "graphql-api", "-o", "json"))
    await bot.slash("describe hpa graphql-api", user=VIEWER)
    text = last_reply(bot)
    spec, status = hpa["spec"], hpa["status"]
    assert (f"{status['currentReplicas']} of {spec['minReplicas']}..{spec['maxReplicas']} replicas" in text)
    (metric,) = table_rows(text, "METRIC")
    now = status["currentMetrics"][0]["resource"]["current"]
    assert metric == ["resource cpu on pods (as a percentage of request)",
                      f"{now['averageUtilization']}% ({now['averageValue']})",
                      f"{spec['metrics'][0]['resource']['target']['averageUtilization']}%"]
    conditions = {r[0]: r[2] for r in table_rows(text, "CONDITION")}
    assert conditions == {c["type"]: c["reason"] for c in status["conditions"]}
    await bot.slash("describe hpa nope", user=VIEWER)
    assert "Autoscaler `nope` was not found" in " ".join(bot.private_texts())
    assert_slack_accepted_everything(sim)


async def test_describe_ingress_lists_each_backends_ready_endpoints(bot, sim, sandbox) -> None:
    from tests.harness import kubectl

    ing = json.loads(await kubectl(sandbox.kubeconfig, "get", "ingress", "collaboration-ingress", "-o", "json"))
    endpoints = json.loads(await kubectl(sandbox.kubeconfig, "get", "endpoints", "graphql-api", "-o", "json"))
    subset = endpoints["subsets"][0]
    expected = sorted(f"{a['ip']}:{subset['ports'][0]['port']}" for a in subset["addresses"])
    await bot.slash("describe ingress collaboration-ingress", user=VIEWER)
    text = last_reply(bot)
    assert ing["status"]["loadBalancer"]["ingress"][0]["hostname"] in text
    rows = {r[1]: r for r in table_rows(text, "HOST")}
    assert set(rows) == {p["path"] for p in ing["spec"]["rules"][0]["http"]["paths"]}
    assert rows["/graphql"][2] == "graphql-api:80" and sorted(rows["/graphql"][3].split(", ")) == expected
    assert "4 with ready endpoints" in text and "No ready endpoints" not in text

    await kubectl(sandbox.kubeconfig, "scale", "deployment", "document-service", "--replicas=0")
    gone = json.loads(await kubectl(sandbox.kubeconfig, "get", "endpoints", "document-service", "-o", "json"))
    assert not any(s.get("addresses") for s in gone.get("subsets") or [])
    await bot.slash("describe ingress collaboration-ingress", user=VIEWER)
    text = last_reply(bot)
    assert "3 with ready endpoints" in text and "No ready endpoints" in text and "/api/documents" in text
    assert table_rows(text, "HOST") and "<none: no ready pod matches the service>" in text
    assert_slack_accepted_everything(sim)


# --- rollout history without a name ---------------------------------------------------------------


def kubectl_history(out: str) -> set[tuple[str, str, str]]:
    """(deployment, revision, change cause) from `kubectl rollout history deployment`."""
    found, current = set(), ""
    for line in out.splitlines():
        if line.startswith("deployment.apps/"):
            current = line.split("/", 1)[1].strip()
        elif current and line[:1].isdigit():
            revision, _, cause = line.partition(" ")
            found.add((current, revision, cause.strip()))
    return found


async def test_rollout_history_of_every_deployment_matches_kubectl(bot, sim, sandbox) -> None:
    from tests.harness import kubectl

    judged = kubectl_history(await kubectl(sandbox.kubeconfig, "rollout", "history", "deployment"))
    assert len({d for d, _, _ in judged}) == 4
    await bot.slash("rollout history", user=VIEWER)
    text = last_reply(bot)
    rows = table_rows(text, "DEPLOYMENT")
    assert {(r[0], r[1].removesuffix(" (current)"), r[2]) for r in rows} == judged
    assert "Rollout history of 4 deployments" in text and rows[0][0] == "graphql-api"  # deployed last

    await kubectl(sandbox.kubeconfig, "set", "image", "deployment/collaboration-editor",
                  "collaboration-editor=ghcr.io/candlefish/collaboration-editor:5.3.1")
    judged = kubectl_history(await kubectl(sandbox.kubeconfig, "rollout", "history", "deployment"))
    await bot.slash("rollout history", user=VIEWER)
    rows = table_rows(last_reply(bot), "DEPLOYMENT")
    assert {(r[0], r[1].removesuffix(" (current)"), r[2]) for r in rows} == judged
    newest = max(int(rev) for d, rev, _ in judged if d == "collaboration-editor")
    editor = [r for r in rows if r[0] == "collaboration-editor"]
    assert rows[0][0] == "collaboration-editor", "the deployment rolled out last comes first"
    assert editor[-1][1] == f"{newest} (current)" and editor[-1][3].endswith(":5.3.1")
    assert_slack_accepted_everything(sim)


# --- oncall ---------------------------------------------------------------------------------------


async def test_oncall_shows_the_runbooks_contacts(bot, sim) -> None:
    await bot.slash("oncall", user=VIEWER)
    text = last_reply(bot)
    assert "+1-555-0001" in text and "+1-555-0004" in text
    assert all(f"<mailto:{email}|{email}>" in text for email in RUNBOOK_EMAILS)
    assert "<https://console.aws.amazon.com/support/home|AWS Support Center>" in text
    assert "<https://candlefish.pagerduty.com|candlefish.pagerduty.com>" in text and "<#C0INCIDENT>" in text
    assert_slack_accepted_everything(sim)


async def test_oncall_contacts_come_from_config_and_are_validated(sim, tmp_path) -> None:
    contacts = {"teams": {"Platform": "platform@example.org"}, "pagerduty": "https://example.pagerduty.com"}
    harness = await start_bot(sim, database_url=f"sqlite:///{tmp_path / 'cf.db'}", services={},
                              config={"incidents": {"contacts": contacts}})
    try:
        await harness.slash("oncall", user=VIEWER)
        text = last_reply(harness)
    finally:
        await harness.close()
    assert "platform@example.org" in text and "example.pagerduty.com" in text
    assert "devops@candlefish.ai" not in text and "candlefish.pagerduty.com" not in text
    for bad, key in (({"teams": {"DevOps": "devops at candlefish"}}, "incidents.contacts.teams"),
                     ({"pagerduty": "http://candlefish.pagerduty.com"}, "incidents.contacts.pagerduty")):
        with pytest.raises(ConfigError, match=re.escape(key)):
            parse_settings(merge(BASE_CONFIG, {"incidents": {"contacts": bad}}), "test config")


# --- s3 check --write -----------------------------------------------------------------------------


def probe_objects(sandbox: Any) -> list[str]:
    listed = boto(sandbox, "s3").list_objects_v2(Bucket=BUCKET, Prefix="cf-probe/")
    return [o["Key"] for o in listed.get("Contents", [])]


async def test_s3_check_write_puts_and_deletes_a_unique_probe_object(aws_bot, aws_sandbox) -> None:
    keys = []
    for _ in range(2):
        mark = len(aws_sandbox.front.requests)
        await aws_bot.slash("s3 check --write", user=OPERATOR)
        text = last_reply(aws_bot)
        assert "is readable and writable: the probe object was put and deleted" in text
        writes = writes_since(mark)
        assert [(service, line.split()[0]) for service, line in writes] == [("s3", "PUT"), ("s3", "DELETE")]
        put_path, delete_path = (line.split()[1] for _, line in writes)
        assert put_path == delete_path and put_path.startswith(f"/{BUCKET}/cf-probe/")
        keys.append(put_path.split(f"/{BUCKET}/", 1)[1])
        assert keys[-1] in text and "gone" in text
        assert probe_objects(aws_sandbox) == [], "the probe object must not stay in the bucket"
    assert keys[0] != keys[1], "each run writes its own key"
    listed = boto(aws_sandbox, "s3").list_objects_v2(Bucket=BUCKET)
    assert "documents/2026/11/roadmap.md" in [o["Key"] for o in listed["Contents"]]


async def test_s3_check_write_needs_the_operator_and_reports_the_step_that_failed(aws_bot, aws_sandbox) -> None:
    mark = len(aws_sandbox.front.requests)
    await aws_bot.slash("s3 check --write", user=VIEWER)
    assert "needs the operator role" in " ".join(aws_bot.private_texts()) and writes_since(mark) == []

    aws_sandbox.front.inject("s3", "AccessDenied", "Access Denied", status=403, path=rf"PUT /{BUCKET}/cf-probe/.*")
    await aws_bot.slash("s3 check --write", user=OPERATOR)
    text = last_reply(aws_bot)
    assert "readable but the bot could not write to it" in text and "s3:PutObject" in text
    assert "nothing was left" in text and probe_objects(aws_sandbox) == []

    aws_sandbox.front.clear_faults()
    aws_sandbox.front.inject("s3", "AccessDenied", "Access Denied", status=403, path=rf"DELETE /{BUCKET}/cf-probe/.*")
    await aws_bot.slash("s3 check --write", user=OPERATOR)
    aws_sandbox.front.clear_faults()
    text = last_reply(aws_bot)
    left = probe_objects(aws_sandbox)
    try:
        assert "written but could not be deleted" in text and len(left) == 1 and left[0] in text
        assert f"aws s3 rm s3://{BUCKET}/{left[0]}" in text
    finally:
        for key in left:
            boto(aws_sandbox, "s3").delete_object(Bucket=BUCKET, Key=key)
