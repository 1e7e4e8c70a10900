"""Manifests of the Candlefish world: plain dicts, as an engineer would have applied them.

Kept apart from `world.py` (which decides *when* each is applied) so the shape of the
platform reads in one place: four collaboration services behind one ingress, their
configuration and secrets (referenced, never inlined), autoscalers, a disruption budget,
a network policy, and the EKS system add-ons.
"""

from __future__ import annotations

from typing import Any

PART_OF = "collaboration-platform"
REGISTRY = "ghcr.io/candlefish"
EKS_REGISTRY = "602401143452.dkr.ecr.us-east-1.amazonaws.com"

# name -> (replicas, port, first image tag, current tag, requests, limits, extra env)
SERVICES: dict[str, dict[str, Any]] = {
    "graphql-api": {
        "replicas": 3, "port": 4000, "tags": ("2.14.2", "2.14.3"), "tier": "backend",
        "requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"cpu": "1", "memory": "1Gi"},
        "secrets": [("DATABASE_URL", "app-secrets", "DATABASE_URL"), ("JWT_SECRET", "app-secrets", "JWT_SECRET"),
                    ("REDIS_PASSWORD", "redis-credentials", "password")],
        "env": {"NODE_ENV": "production", "PORT": "4000", "DB_POOL_MAX": "20"},
        "probe": ("/healthz", "/ready"),
    },
    "websocket-service": {
        "replicas": 3, "port": 8080, "tags": ("1.9.0", "1.9.1"), "tier": "realtime",
        "requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"},
        "secrets": [("JWT_SECRET", "app-secrets", "JWT_SECRET"), ("REDIS_PASSWORD", "redis-credentials", "password")],
        "env": {"WS_MAX_CONNECTIONS": "5000", "REDIS_HOST": "redis-master.collaboration.svc.cluster.local"},
        "probe": ("/healthz", "/healthz"),
    },
    "document-service": {
        "replicas": 2, "port": 3000, "tags": ("3.8.0", "3.8.1"), "tier": "backend",
        "requests": {"cpu": "250m", "memory": "768Mi"}, "limits": {"cpu": "1", "memory": "2Gi"},
        "secrets": [("DATABASE_URL", "app-secrets", "DATABASE_URL"),
                    ("S3_SECRET_ACCESS_KEY", "app-secrets", "S3_SECRET_ACCESS_KEY")],
        "env": {"NODE_OPTIONS": "--max-old-space-size=1536", "S3_BUCKET": "candlefish-documents-prod"},
        "probe": ("/health/live", "/health/ready"),
        "scratch": True,
    },
    "collaboration-editor": {
        "replicas": 2, "port": 80, "tags": ("5.2.0", "5.3.0"), "tier": "frontend",
        "requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "250m", "memory": "256Mi"},
        "secrets": [], "env": {"API_ORIGIN": "https://collab.candlefish.ai"},
        "probe": ("/", "/"),
    },
}


def _labels(name: str, tier: str) -> dict[str, str]:
    return {"app": name, "app.kubernetes.io/name": name, "app.kubernetes.io/part-of": PART_OF, "tier": tier}


def _probe(path: str, delay: int) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": "http"}, "initialDelaySeconds": delay, "periodSeconds": 10}


def app_deployment(name: str, tag: str, change_cause: str) -> dict[str, Any]:
    svc = SERVICES[name]
    env = [{"name": k, "value": v} for k, v in svc["env"].items()]
    env += [{"name": var, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
            for var, secret, key in svc["secrets"]]
    container: dict[str, Any] = {
        "name": name,
        "image": f"{REGISTRY}/{name}:{tag}",
        "ports": [{"name": "http", "containerPort": svc["port"], "protocol": "TCP"}],
        "env": env,
        "envFrom": [{"configMapRef": {"name": "collaboration-config"}}],
        "resources": {"requests": dict(svc["requests"]), "limits": dict(svc["limits"])},
        "livenessProbe": _probe(svc["probe"][0], 20),
        "readinessProbe": _probe(svc["probe"][1], 5),
    }
    pod_spec: dict[str, Any] = {"containers": [container], "serviceAccountName": "default",
                                "terminationGracePeriodSeconds": 30}
    if svc.get("scratch"):
        container["volumeMounts"] = [{"name": "scratch", "mountPath": "/tmp/render"}]
        pod_spec["volumes"] = [{"name": "scratch", "emptyDir": {"sizeLimit": "1Gi"}}]
    labels = _labels(name, svc["tier"])
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "collaboration", "labels": labels,
                     "annotations": {"kubernetes.io/change-cause": change_cause}},
        "spec": {
            "replicas": svc["replicas"],
            "selector": {"matchLabels": {"app": name}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }


def app_service(name: str) -> dict[str, Any]:
    svc = SERVICES[name]
    port = 8080 if name == "websocket-service" else 80
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "collaboration", "labels": _labels(name, svc["tier"])},
            "spec": {"selector": {"app": name},
                     "ports": [{"name": "http", "port": port, "targetPort": "http", "protocol": "TCP"}]}}


def load_generator(replicas: int) -> dict[str, Any]:
    labels = {"app": "load-generator", "app.kubernetes.io/part-of": PART_OF, "tier": "test"}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "load-generator", "namespace": "collaboration", "labels": labels},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "load-generator"}},
                 "template": {"metadata": {"labels": labels}, "spec": {"containers": [{
                     "name": "load-generator", "image": f"{REGISTRY}/load-generator:0.4.0",
                     "args": ["--target=http://graphql-api", "--rps=5"],
                     "resources": {"requests": {"cpu": "2m", "memory": "8Mi"},  # 1,500 fit beside the apps
                                   "limits": {"cpu": "50m", "memory": "64Mi"}}}]}}},
    }


def config_and_secrets(b64: Any) -> list[dict[str, Any]]:
    ns = {"namespace": "collaboration", "labels": {"app.kubernetes.io/part-of": PART_OF}}
    return [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "collaboration-config", **ns},
         "data": {"LOG_LEVEL": "info", "GRAPHQL_MAX_DEPTH": "12", "GRAPHQL_INTROSPECTION": "false",
                  "DOCUMENT_SNAPSHOT_INTERVAL": "500", "PRESENCE_TTL_SECONDS": "30",
                  "REDIS_HOST": "redis-master.collaboration.svc.cluster.local",
                  "OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel-collector.observability:4317"}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "app-secrets", **ns}, "type": "Opaque",
         "data": {k: b64(v) for k, v in {
             "DATABASE_URL": "postgresql://collab_app:Zx9-sandbox-not-a-real-password@candlefish-prod.cluster-"
                             "c9x2kq1m0abc.us-east-1.rds.amazonaws.com:5432/collaboration",
             "JWT_SECRET": "sandbox-jwt-4f1c9e2b7a6d8e0f3b5a1c7d9e2f4a6b",
             "SESSION_SECRET": "sandbox-session-8b2d4f6a1c3e5a7b9d0f2e4c6a8b1d3f",
             "S3_SECRET_ACCESS_KEY": "sandboxSECRETkeyNOTreal/0123456789abcdefABCD"}.items()}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "redis-credentials", **ns}, "type": "Opaque",
         "data": {"host": b64("redis-master.collaboration.svc.cluster.local"),
                  "password": b64("sandbox-redis-6c1e8a3f5b7d9e2c")}},
    ]


def edge_and_policy() -> list[dict[str, Any]]:
    ns = "collaboration"
    backend = [("/graphql", "graphql-api", 80), ("/ws", "websocket-service", 8080),
               ("/api/documents", "document-service", 80), ("/", "collaboration-editor", 80)]
    hpa = [{"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                     "minReplicas": 3, "maxReplicas": 20,
                     "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                         "type": "Utilization", "averageUtilization": 70}}}]}}
           for name in ("graphql-api", "websocket-service")]
    return [
        {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
         "metadata": {"name": "collaboration-ingress", "namespace": ns, "annotations": {
             "alb.ingress.kubernetes.io/scheme": "internet-facing",
             "alb.ingress.kubernetes.io/target-type": "ip",
             "alb.ingress.kubernetes.io/certificate-arn":
                 "arn:aws:acm:us-east-1:123456789012:certificate/5d1f0e9a-0b7c-4c0e-9f39-3f6f2b8c1a77"}},
         "spec": {"ingressClassName": "alb",
                  "tls": [{"hosts": ["collab.candlefish.ai"]}],
                  "rules": [{"host": "collab.candlefish.ai", "http": {"paths": [
                      {"path": path, "pathType": "Prefix",
                       "backend": {"service": {"name": svc, "port": {"number": port}}}}
                      for path, svc, port in backend]}}]},
         "status": {"loadBalancer": {"ingress": [{"hostname":
             "k8s-collabor-collabor-3f9a1b2c4d-1234567890.us-east-1.elb.amazonaws.com"}]}}},
        *hpa,
        {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
         "metadata": {"name": "websocket-service-pdb", "namespace": ns, "labels": {"app": "websocket-service"}},
         "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "websocket-service"}}}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
         "metadata": {"name": "collaboration-network-policy", "namespace": ns},
         "spec": {"podSelector": {"matchLabels": {"app.kubernetes.io/part-of": PART_OF}},
                  "policyTypes": ["Ingress"],
                  "ingress": [{"from": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.99.0/24"]}},
                                        {"namespaceSelector": {"matchLabels": {
                                            "kubernetes.io/metadata.name": "ingress-nginx"}}}],
                               "ports": [{"protocol": "TCP", "port": p} for p in (80, 3000, 4000, 8080)]}]}},
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
         "metadata": {"name": "document-exports", "namespace": ns, "labels": {"app": "document-service"},
                      "annotations": {"pv.kubernetes.io/bind-completed": "yes",
                                      "volume.kubernetes.io/storage-provisioner": "ebs.csi.aws.com"}},
         "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "gp3", "volumeMode": "Filesystem",
                  "resources": {"requests": {"storage": "50Gi"}},
                  "volumeName": "pvc-7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f"},
         "status": {"phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "50Gi"}}},
    ]


def system_workloads() -> list[dict[str, Any]]:
    ns = "kube-system"
    tolerate_all = [{"operator": "Exists"}]

    def daemon_set(name: str, image: str, cpu: str) -> dict[str, Any]:
        labels = {"k8s-app": name}
        return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name, "namespace": ns,
                                                                           "labels": labels},
                "spec": {"selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}, "spec": {
                    "priorityClassName": "system-node-critical", "hostNetwork": True,
                    "tolerations": tolerate_all,
                    "containers": [{"name": name, "image": image,
                                    "resources": {"requests": {"cpu": cpu}}}]}}}}

    def deployment(name: str, app: str, replicas: int, image: str, port: int) -> dict[str, Any]:
        labels = {"k8s-app": app}
        return {"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": name, "namespace": ns, "labels": {**labels, "eks.amazonaws.com/component": name}},
                "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                         "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%",
                                                                                 "maxUnavailable": 1}},
                         "template": {"metadata": {"labels": labels}, "spec": {
                             "priorityClassName": "system-cluster-critical",
                             "containers": [{"name": name, "image": image,
                                             "ports": [{"name": "metrics" if port != 53 else "dns",
                                                        "containerPort": port,
                                                        "protocol": "UDP" if port == 53 else "TCP"}],
                                             "resources": {"requests": {"cpu": "100m", "memory": "70Mi"},
                                                           "limits": {"memory": "170Mi"}}}]}}}}

    return [
        daemon_set("aws-node", f"{EKS_REGISTRY}/amazon-k8s-cni:v1.19.2-eksbuild.1", "25m"),
        daemon_set("kube-proxy", f"{EKS_REGISTRY}/eks/kube-proxy:v1.32.0-minimal-eksbuild.2", "100m"),
        deployment("coredns", "kube-dns", 2, f"{EKS_REGISTRY}/eks/coredns:v1.11.4-eksbuild.2", 53),
        deployment("metrics-server", "metrics-server", 1, "registry.k8s.io/metrics-server/metrics-server:v0.7.2",
                   10250),
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "kube-dns", "namespace": ns, "labels": {"k8s-app": "kube-dns"}},
         "spec": {"clusterIP": "172.20.0.10", "selector": {"k8s-app": "kube-dns"},
                  "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                            {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53}]}},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "metrics-server", "namespace": ns, "labels": {"k8s-app": "metrics-server"}},
         "spec": {"selector": {"k8s-app": "metrics-server"},
                  "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 10250}]}},
        {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
         "metadata": {"name": "coredns", "namespace": ns, "labels": {"k8s-app": "kube-dns"}},
         "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"k8s-app": "kube-dns"}}}},
    ]
