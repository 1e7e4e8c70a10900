"""The deployment: manifests rendered by kustomize (kubectl's), checked against the official client's
schemas, RBAC equal to what the code calls, and the pod hardened as the issue asks."""

from __future__ import annotations

import ast
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from kubernetes import client as k8s

from bot.config import parse_settings
from bot.messenger import SlackMessenger, web_client

ROOT = Path(__file__).resolve().parents[2]
MODELS = {
    "Namespace": k8s.V1Namespace,
    "ServiceAccount": k8s.V1ServiceAccount,
    "ClusterRole": k8s.V1ClusterRole,
    "ClusterRoleBinding": k8s.V1ClusterRoleBinding,
    "Role": k8s.V1Role,
    "RoleBinding": k8s.V1RoleBinding,
    "ConfigMap": k8s.V1ConfigMap,
    "Service": k8s.V1Service,
    "Deployment": k8s.V1Deployment,
    "PodDisruptionBudget": k8s.V1PodDisruptionBudget,
}
API_GROUPS = {"core": "", "apps": "apps", "networking": "networking.k8s.io", "autoscaling": "autoscaling",
              "policy": "policy", "batch": "batch"}
VERBS = {"list": "list", "read": "get", "patch": "patch", "create": "create", "delete": "delete",
         "replace": "update", "get": "get"}
SUBRESOURCES = ("scale", "log", "eviction", "status", "proxy")


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    out = subprocess.run(["/usr/bin/kubectl", "kustomize", str(ROOT / "deploy" / "k8s")], capture_output=True,
                         text=True, timeout=60, check=True).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def one(docs: list[dict[str, Any]], kind: str, namespace: str | None = None) -> dict[str, Any]:
    found = [d for d in docs
             if d["kind"] == kind and (namespace is None or d["metadata"].get("namespace") == namespace)]
    assert len(found) == 1, (kind, namespace, len(found))
    return found[0]


def test_every_object_matches_the_kubernetes_schema(rendered: list[dict[str, Any]]) -> None:
    kinds = {d["kind"] for d in rendered}
    assert kinds == set(MODELS), kinds
    for doc in rendered:
        MODELS[doc["kind"]].model_validate(doc)  # unknown or mistyped fields raise


def _plural(snake: str) -> str:
    word = snake.replace("_", "")
    if word.endswith("policy"):
        return word[:-1] + "ies"
    if word.endswith("ss"):
        return word + "es"
    return word + "s"


def _rule_of(api: str, method: str) -> tuple[str, str, str]:
    """`patch_namespaced_deployment_scale` on the apps API -> ("apps", "deployments/scale", "patch");
    `connect_get_namespaced_pod_proxy_with_path` -> ("", "pods/proxy", "get") (a connect verb is its HTTP method)."""
    verb, _, rest = method.removeprefix("connect_").removesuffix("_with_path").partition("_")
    rest = rest.replace("namespaced_", "").replace("_for_all_namespaces", "")
    sub = next((s for s in SUBRESOURCES if rest.endswith("_" + s)), None)
    kind = rest[: -len(sub) - 1] if sub else rest
    resource = _plural(kind) + (f"/{sub}" if sub else "")
    return API_GROUPS[api], resource, VERBS[verb]


def code_rules() -> set[tuple[str, str, str]]:
    """Every (apiGroup, resource, verb) that integrations/kube.py can call, read from its source."""
    tree = ast.parse((ROOT / "integrations" / "kube.py").read_text())
    rules: set[tuple[str, str, str]] = set()
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)
                and isinstance(node.value.value, ast.Name) and node.value.value.id == "self"
                and node.value.attr in API_GROUPS):
            rules.add(_rule_of(node.value.attr, node.attr))
        if isinstance(node, ast.Tuple) and len(node.elts) == 2 and all(isinstance(e, ast.Constant) for e in node.elts):
            api, method = (e.value for e in node.elts)  # type: ignore[attr-defined]
            if api in API_GROUPS and isinstance(method, str) and "_" in method:
                rules.add(_rule_of(api, method))
        if (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Attribute)
                and isinstance(node.args[0].value, ast.Attribute) and node.args[0].value.attr == "custom"):
            group, _version, *rest = [a.value for a in node.args[1:] if isinstance(a, ast.Constant)]
            verb = node.args[0].attr.partition("_")[0]
            rules.add((str(group), str(rest[-1]), VERBS[verb]))
    return rules


def manifest_rules(docs: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    granted = set()
    for doc in docs:
        if doc["kind"] in ("Role", "ClusterRole"):
            for rule in doc["rules"]:
                for group in rule["apiGroups"]:
                    for resource in rule["resources"]:
                        for verb in rule["verbs"]:
                            granted.add((group, resource, verb))
    return granted


def test_rbac_grants_exactly_what_the_code_calls(rendered: list[dict[str, Any]]) -> None:
    wanted = code_rules()
    granted = manifest_rules(rendered)
    assert ("apps", "deployments/scale", "patch") in wanted and ("", "pods/eviction", "create") in wanted
    assert granted - wanted == set(), f"granted but never called: {sorted(granted - wanted)}"
    assert wanted - granted == set(), f"called but not granted: {sorted(wanted - granted)}"
    for doc in rendered:
        if doc["kind"] in ("Role", "ClusterRole"):
            for rule in doc["rules"]:
                assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]


def test_role_bindings_point_at_the_bot_service_account(rendered: list[dict[str, Any]]) -> None:
    role = one(rendered, "Role")
    assert role["metadata"]["namespace"] == "collaboration"
    for kind in ("RoleBinding", "ClusterRoleBinding"):
        binding = one(rendered, kind)
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "cf-bot", "namespace": "cf-bot"}]
    sa = one(rendered, "ServiceAccount")
    assert "eks.amazonaws.com/role-arn" in sa["metadata"]["annotations"]  # IRSA for deploy/iam-policy.json


def test_deployment_is_hardened_and_wired(rendered: list[dict[str, Any]]) -> None:
    dep = one(rendered, "Deployment")
    spec = dep["spec"]
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert spec["replicas"] == 2
    assert pod["serviceAccountName"] == "cf-bot"
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert set(container["resources"]["requests"]) == {"cpu", "memory"}
    assert set(container["resources"]["limits"]) == {"cpu", "memory"}
    env = {e["name"]: e for e in container["env"]}
    for secret in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET", "DATABASE_URL"):
        assert env[secret]["valueFrom"]["secretKeyRef"]["name"] == "cf-bot-secrets"
        assert "value" not in env[secret]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[mounts["/etc/cf"]]["configMap"]["name"].startswith("cf-bot-config")
    assert "emptyDir" in volumes[mounts["/tmp"]]
    pdb = one(rendered, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"] == spec["selector"]["matchLabels"]
    assert pdb["spec"]["minAvailable"] == 1


def test_config_map_holds_a_valid_configuration(rendered: list[dict[str, Any]]) -> None:
    cm = one(rendered, "ConfigMap")
    settings = parse_settings(yaml.safe_load(cm["data"]["config.yaml"]), "configmap")
    assert settings.namespace == "collaboration"


def test_image_runs_as_non_root() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", dockerfile, flags=re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert "PYTHONDONTWRITEBYTECODE=1" in dockerfile  # nothing written next to the code (read-only root)


def test_image_copies_every_package_the_project_installs() -> None:
    """A package added to pyproject but not to the Dockerfile would import-fail only in the image."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    copied = set(re.findall(r"^COPY (\w+) \./\1$", dockerfile, flags=re.M))
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert packages and packages <= copied, sorted(packages - copied)


async def test_readyz_needs_the_store_and_slack_auth(bot, sim) -> None:
    base = bot.app_url.rsplit("/slack/events", 1)[0]
    async with aiohttp.ClientSession() as session, session.get(f"{base}/readyz") as resp:
        assert resp.status == 200, await resp.text()
    wrong = SlackMessenger(web_client("xoxb-wrong", sim.api_url))
    assert await wrong.auth_problem() == "invalid_auth"
    await wrong.close()
    await bot.runtime.store.close()  # the store is gone: not ready
    async with aiohttp.ClientSession() as session, session.get(f"{base}/readyz") as resp:
        body = await resp.json()
    assert resp.status == 503 and any(p.startswith("store") for p in body["problems"])
