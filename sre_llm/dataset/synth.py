"""A seeded synthetic corpus: realistic firing alerts for the seven LambdaFunctions and for none.

Records come out exactly as the collectors write them (``kind: alert`` with expanded
``lambda_function`` / ``lambda_parameters`` annotations, the agent-sre rule convention), so the
demo and the tests run the same pipeline as real data. Parameter values are copied from the
alert's labels, which is what the model has to learn to do.

The same ``(count, seed)`` always gives the same records, byte for byte.
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterator

from sre_llm.dataset.records import fingerprint

_APPS = (
    "web checkout payments cart frontend auth search catalog inventory orders notifications billing gateway "
    "worker scheduler ingest reports recommendations shipping pricing profile media thumbnailer mailer "
    "webhooks ledger fraud-detector session api graphql admin dashboard exporter sync importer indexer "
    "queue-consumer feature-flags geo chat bff storefront loyalty coupons tax audit identity"
).split()
_SUFFIXES = ("", "", "", "-api", "-worker", "-service", "-v2", "-backend", "-web", "-consumer")
_NAMESPACES = (
    "default production prod staging shop payments ai data ml platform monitoring observability "
    "ingress-nginx cert-manager backend frontend apps team-a team-b checkout search analytics media "
    "billing identity edge"
).split()
_STATEFUL = ("postgres", "redis", "kafka", "elasticsearch", "mongodb", "rabbitmq", "minio", "loki", "tempo", "etcd")
_FLUX_NAMES = (
    "apps infrastructure infra-controllers infra-configs cluster-config monitoring-stack podinfo flux-system "
    "ingress-nginx cert-manager kube-prometheus-stack external-dns sealed-secrets tenants platform"
).split()
_HASH = "bcdfghjklmnpqrstvwxz2456789"  # Kubernetes' safe alphabet for generated names
_CLUSTERS = ("prod-eu-1", "prod-us-1", "staging-eu-1", "homelab", "edge-1")
_TEAMS = ("sre", "platform", "payments", "search", "data")


def _h(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(_HASH) for _ in range(n))


class _Draw:
    """Names drawn for one alert."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.app = rng.choice(_APPS) + rng.choice(_SUFFIXES)
        self.ns = rng.choice(_NAMESPACES)
        self.deployment = self.app
        self.pod = f"{self.app}-{_h(rng, rng.choice((8, 9, 10)))}-{_h(rng, 5)}"
        self.container = rng.choice((self.app.split("-")[0], self.app, "app", "server", "main"))
        st = rng.choice(_STATEFUL)
        self.pvc = rng.choice((f"data-{st}-{rng.randint(0, 2)}", f"{self.app}-data", f"{self.app}-storage",
                               f"{st}-pvc", f"storage-{st}-{rng.randint(0, 2)}"))
        self.flux = rng.choice(_FLUX_NAMES + _APPS[:12])
        self.flux_ns = rng.choice(("flux-system", "flux-system", "flux-system", self.ns))
        self.ip = f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


Scenario = Callable[[_Draw], tuple[dict, dict, str, dict]]  # labels, annotations, function, params


def _ksm(d: _Draw) -> dict:
    return {"job": "kube-state-metrics", "instance": f"{d.ip}:8080", "cluster": d.rng.choice(_CLUSTERS)}


def _crashloop(d: _Draw):
    name = d.rng.choice(("KubePodCrashLooping", "TestPodCrashLoopBackOff", "PodCrashLoopBackOff"))
    restarts = d.rng.randint(3, 40)
    labels = {"alertname": name, "namespace": d.ns, "pod": d.pod, "container": d.container,
              "severity": d.rng.choice(("warning", "critical")), **_ksm(d)}
    ann = {"summary": f"Pod {d.pod} is in CrashLoopBackOff",
           "description": f"Pod {d.ns}/{d.pod} ({d.container}) is restarting {restarts} times / 10 minutes."}
    return labels, ann, "pod-restart", {"name": d.pod, "namespace": d.ns, "type": "pod"}


def _deploy_unhealthy(d: _Draw):
    name = d.rng.choice(("KubeDeploymentReplicasMismatch", "TestDeploymentUnhealthy", "DeploymentUnavailable"))
    n = d.rng.randint(1, 5)
    labels = {"alertname": name, "namespace": d.ns, "deployment": d.deployment, "severity": "warning", **_ksm(d)}
    ann = {"summary": f"Deployment {d.deployment} has unhealthy replicas",
           "description": f"Deployment {d.deployment} in namespace {d.ns} has {n} unavailable replicas"}
    return labels, ann, "pod-restart", {"name": d.deployment, "namespace": d.ns, "type": "deployment"}


def _scale(d: _Draw):
    target = d.rng.choice((2, 3, 3, 4, 5, 6, 8, 10))
    if d.rng.random() < 0.5:
        labels = {"alertname": d.rng.choice(("TestDeploymentNeedsScaling", "DeploymentUnderProvisioned")),
                  "namespace": d.ns, "deployment": d.deployment, "severity": "info"}
        ann = {"summary": f"Deployment {d.deployment} needs scaling",
               "description": f"Deployment {d.deployment} has only 1 replica, should scale to {target}"}
    else:
        cpu = d.rng.randint(81, 99)
        labels = {"alertname": d.rng.choice(("TestHighCPUUsage", "HighCPUUsage", "HighRequestRate")),
                  "namespace": d.ns, "deployment": d.deployment, "severity": "warning"}
        ann = {"summary": f"Deployment {d.deployment} has high CPU usage",
               "description": f"Deployment {d.deployment} CPU usage is {cpu}%, scale to {target} replicas"}
    return labels, ann, "scale-deployment", {"name": d.deployment, "namespace": d.ns, "replicas": target}


def _pod_check(d: _Draw):
    kind = d.rng.choice(("pending", "imagepull", "notready"))
    if kind == "pending":
        name, summary = d.rng.choice(("TestPodPending", "KubePodPending")), f"Pod {d.pod} is Pending"
        desc = f"Pod {d.pod} in namespace {d.ns} has been Pending for more than 2 minutes"
    elif kind == "imagepull":
        name, summary = d.rng.choice(("TestImagePullBackOff", "KubeContainerWaiting")), f"Pod {d.pod} has ImagePullBackOff"
        desc = f"Pod {d.pod} in namespace {d.ns} cannot pull image registry.example.internal/{d.app}:{d.rng.randint(1, 9)}.{d.rng.randint(0, 30)}.0"
    else:
        name, summary = "KubePodNotReady", f"Pod {d.pod} is not ready"
        desc = f"Pod {d.ns}/{d.pod} has been in a non-ready state for longer than 15 minutes."
    labels = {"alertname": name, "namespace": d.ns, "pod": d.pod, "severity": "warning", **_ksm(d)}
    return labels, {"summary": summary, "description": desc}, "pod-check-status", {"name": d.pod, "namespace": d.ns}


def _pvc(d: _Draw):
    free = d.rng.randint(1, 19)
    labels = {"alertname": d.rng.choice(("KubePersistentVolumeFillingUp", "TestPVCFillingUp", "PVCAlmostFull")),
              "namespace": d.ns, "persistentvolumeclaim": d.pvc, "severity": d.rng.choice(("warning", "critical")),
              "job": "kubelet", "cluster": d.rng.choice(_CLUSTERS)}
    ann = {"summary": f"PVC {d.pvc} is filling up",
           "description": f"PVC {d.pvc} in namespace {d.ns} has {free}% free space left"}
    return labels, ann, "check-pvc-status", {"name": d.pvc, "namespace": d.ns}


def _flux(kind: str, fn: str) -> Scenario:
    def scenario(d: _Draw):
        reason = d.rng.choice(("ReconciliationFailed", "ReconciliationFailed", "HealthCheckFailed", "ArtifactFailed"))
        labels = {"alertname": d.rng.choice((f"Flux{kind}{reason}", "FluxReconciliationFailure")),
                  "namespace": d.flux_ns, "kind": kind, "name": d.flux, "severity": "error",
                  "reportingController": d.rng.choice(("kustomize-controller", "helm-controller", "source-controller"))}
        msg = d.rng.choice(("context deadline exceeded", "dependency 'flux-system/infra' is not ready",
                            "failed to checkout and determine revision", "install retries exhausted",
                            "health check failed after 5m0s"))
        ann = {"summary": f"{kind} {d.flux_ns}/{d.flux} reconciliation failed",
               "description": f"{kind} {d.flux} in namespace {d.flux_ns}: {msg}"}
        return labels, ann, fn, {"name": d.flux, "namespace": d.flux_ns}

    return scenario


def _none(d: _Draw):
    choice = d.rng.randrange(7)
    if choice == 0:
        return {"alertname": "Watchdog", "severity": "none"}, {
            "summary": "An alert that should always be firing to certify that Alertmanager is working properly.",
            "description": "This is an alert meant to ensure that the entire alerting pipeline is functional."}, "none", {}
    if choice == 1:
        return {"alertname": "InfoInhibitor", "namespace": d.ns, "severity": "none"}, {
            "summary": "Info-level alert inhibition.", "description": "This is an alert used to inhibit info alerts."}, "none", {}
    if choice == 2:
        return {"alertname": "KubeCPUOvercommit", "severity": "warning", "cluster": d.rng.choice(_CLUSTERS)}, {
            "summary": "Cluster has overcommitted CPU resource requests.",
            "description": f"Cluster has overcommitted CPU resource requests for Pods by {d.rng.randint(1, 9)}.{d.rng.randint(0, 99)} CPU shares."}, "none", {}
    if choice == 3:
        return {"alertname": "TargetDown", "namespace": d.ns, "job": d.app, "service": d.app, "severity": "warning"}, {
            "summary": "Some targets were not reachable from the monitoring server.",
            "description": f"{d.rng.randint(10, 100)}% of the {d.app}/{d.app} targets in {d.ns} namespace are down."}, "none", {}
    if choice == 4:
        return {"alertname": "NodeClockNotSynchronising", "instance": f"{d.ip}:9100", "job": "node-exporter", "severity": "warning"}, {
            "summary": "Clock not synchronising.",
            "description": f"Clock at {d.ip}:9100 is not synchronising. Ensure NTP is configured on this host."}, "none", {}
    if choice == 5:
        return {"alertname": "KubeJobFailed", "namespace": d.ns, "job_name": f"{d.app}-backup-{d.rng.randint(28000000, 29999999)}", "severity": "warning"}, {
            "summary": "Job failed to complete.",
            "description": f"Job {d.ns}/{d.app}-backup failed to complete. Removing failed job after investigation should clear this alert."}, "none", {}
    owner = f"{d.rng.choice(_TEAMS)}-oncall@example.com"
    return {"alertname": "CertificateExpiringSoon", "namespace": d.ns, "name": f"{d.app}-tls", "severity": "info"}, {
        "summary": f"Certificate {d.app}-tls expires in {d.rng.randint(10, 29)} days",
        "description": f"cert-manager will renew it automatically; owner {owner}."}, "none", {}


#: (weight, scenario): about 12% of alerts need no action.
SCENARIOS: tuple[tuple[int, Scenario], ...] = (
    (16, _crashloop),
    (9, _deploy_unhealthy),
    (13, _scale),
    (14, _pod_check),
    (11, _pvc),
    (9, _flux("Kustomization", "flux-reconcile-kustomization")),
    (8, _flux("HelmRelease", "flux-reconcile-helmrelease")),
    (7, _flux("GitRepository", "flux-reconcile-gitrepository")),
    (15, _none),
)

_EPOCH = datetime(2025, 1, 1, tzinfo=timezone.utc)


def _template_order(params: dict) -> str:
    # Written as agent-sre's rules write it (template order, not sorted): the pipeline, not the
    # source, makes the answer canonical.
    return json.dumps(params)


def _new_pod(rng: random.Random, labels: dict, ann: dict) -> tuple[dict, dict]:
    old = labels["pod"]
    new = old[: old.rindex("-") + 1] + _h(rng, 5)
    return ({k: v.replace(old, new) for k, v in labels.items()}, {k: v.replace(old, new) for k, v in ann.items()})


def generate(count: int, seed: int = 0, refire: float = 0.04) -> Iterator[dict]:
    """``count`` alert records. A share ``refire`` repeat an earlier alert later (as real alerts
    do), which the pipeline's deduplication removes."""
    rng = random.Random(seed)
    weights = [w for w, _ in SCENARIOS]
    funcs = [s for _, s in SCENARIOS]
    recent: list[tuple[dict, dict]] = []
    for i in range(count):
        start = _EPOCH + timedelta(seconds=int(90 * 86400 * i / max(count, 1)) + rng.randint(0, 600))
        if recent and rng.random() < refire:
            labels, ann = rng.choice(recent)
            if "pod" in labels and rng.random() < 0.5:
                labels, ann = _new_pod(rng, labels, ann)  # the replacement pod crashes too
        else:
            labels, ann, fn, params = rng.choices(funcs, weights)[0](_Draw(rng))
            if fn != "none":
                ann = {**ann, "lambda_function": fn, "lambda_parameters": _template_order(params)}
            recent = (recent + [(labels, ann)])[-50:]
        end = start + timedelta(minutes=rng.randint(2, 90))
        yield {
            "kind": "alert",
            "source": "synthetic",
            "fingerprint": fingerprint(labels),
            "status": "firing",
            "labels": labels,
            "annotations": ann,
            "startsAt": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "endsAt": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "generatorURL": f"http://prometheus.monitoring:9090/graph?g0.expr=ALERTS%7Balertname%3D%22{labels['alertname']}%22%7D",
        }
