"""The collector in the cluster: ``sre-llm collect serve`` as a StatefulSet of one with its store
on a PersistentVolumeClaim, a ClusterIP Service, and the Alertmanager receiver that points at it.

Why a StatefulSet and not a Knative Service: the store is a volume that must outlive the pod and
be written by one process at a time (the receiver appends and fsyncs before answering), and
Alertmanager must always find a receiver (scale-to-zero would make it wait and retry). One
replica, ``OrderedReady``: a new pod starts only after the old one is gone, so two receivers never
append to one store.

The Alertmanager side is a config snippet (``rendered/<name>/alertmanager/receiver.yaml``) a team
merges into its Alertmanager configuration; no AlertmanagerConfig is rendered (its CRD is the
operator's and the snippet works for any Alertmanager).
"""

from __future__ import annotations

from sre_llm.spec.access import CollectorSpec
from sre_llm.spec.model import ModelRelease

STORE_MOUNT = "/data"
STORE_DIR = f"{STORE_MOUNT}/alerts"
TOKEN_ENV = "SRE_LLM_COLLECT_TOKEN"  # noqa: S105 - the name of an environment variable, not a secret
RUN_AS = 65532  # the distroless "nonroot" uid/gid: any non-zero id the image does not need to know


def enabled(release: ModelRelease) -> bool:
    """A collector runs when the spec asks for one or reads an alertmanager store."""
    return release.spec.deployment.collector is not None or any(
        s.type == "alertmanager" for s in release.spec.dataset.sources)


def settings(release: ModelRelease) -> CollectorSpec:
    return release.spec.deployment.collector or CollectorSpec()


def name(release: ModelRelease) -> str:
    return f"{release.metadata.name}-collector"


def selector(release: ModelRelease) -> dict[str, str]:
    return {"app.kubernetes.io/name": release.metadata.name, "app.kubernetes.io/component": "collector"}


def url(release: ModelRelease) -> str:
    """Where Alertmanager posts webhooks and the gateway posts decisions, inside the cluster."""
    d = release.spec.deployment
    return f"http://{name(release)}.{d.namespace}.svc.cluster.local:{settings(release).port}/"


def _labels(release: ModelRelease, stable: bool = False) -> dict[str, str]:
    """The release's labels; ``stable`` leaves out the model version: a StatefulSet's
    volumeClaimTemplates cannot change, and a model release is no reason to restart the collector."""
    from sre_llm.render.k8s import _labels as labels

    out = labels(release, "collector")
    return {k: v for k, v in out.items() if k != "app.kubernetes.io/version"} if stable else out


def container(release: ModelRelease) -> dict:
    """The receiver: non-root, read-only root, no privilege, no capabilities; its only writable
    paths are the store and /tmp."""
    c = settings(release)
    args = ["--store", STORE_DIR, "--listen", f"0.0.0.0:{c.port}"]
    env = []
    if c.token is not None:
        args += ["--token", f"env:{TOKEN_ENV}"]
        env.append({"name": TOKEN_ENV, "valueFrom": {"secretKeyRef": {"name": c.token.secret, "key": c.token.key}}})

    def probe(failures: int) -> dict:
        return {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10, "timeoutSeconds": 2,
                "failureThreshold": failures}

    out: dict = {
        "name": "collector",
        "image": c.image or release.spec.deployment.gateway_image,
        "command": ["sre-llm", "collect", "serve"],
        "args": args,
        "ports": [{"name": "http", "containerPort": c.port, "protocol": "TCP"}],
        "readinessProbe": probe(3),
        "livenessProbe": probe(6),
        "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [{"name": "store", "mountPath": STORE_MOUNT}, {"name": "tmp", "mountPath": "/tmp"}],
    }
    if env:
        out["env"] = env
    return out


def stateful_set(release: ModelRelease) -> dict:
    from sre_llm.render.security import service_account_name

    c = settings(release)
    claim: dict = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": c.storage}}}
    if c.storage_class:
        claim["storageClassName"] = c.storage_class
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name(release), "namespace": release.spec.deployment.namespace, "labels": _labels(release)},
        "spec": {
            "replicas": 1,
            "serviceName": name(release),
            "podManagementPolicy": "OrderedReady",
            "selector": {"matchLabels": selector(release)},
            "template": {
                "metadata": {"labels": _labels(release, stable=True)},
                "spec": {
                    "serviceAccountName": service_account_name(release, "collector"),
                    "automountServiceAccountToken": False,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": RUN_AS, "runAsGroup": RUN_AS,
                                        "fsGroup": RUN_AS, "seccompProfile": {"type": "RuntimeDefault"}},
                    # Alertmanager retries what was not acknowledged; give in-flight appends time.
                    "terminationGracePeriodSeconds": 30,
                    "containers": [container(release)],
                    "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
                },
            },
            "volumeClaimTemplates": [{"metadata": {"name": "store", "labels": _labels(release, stable=True)},
                                      "spec": claim}],
        },
    }


def service(release: ModelRelease) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name(release), "namespace": release.spec.deployment.namespace, "labels": _labels(release)},
        "spec": {"type": "ClusterIP", "selector": selector(release),
                 "ports": [{"name": "http", "port": settings(release).port, "targetPort": "http", "protocol": "TCP"}]},
    }


def alertmanager_receiver(release: ModelRelease) -> dict:
    """The receiver to merge into Alertmanager's configuration (``receivers:`` and a route to it).
    ``send_resolved`` matters: resolved notifications are the evidence an alert ended."""
    c = settings(release)
    webhook: dict = {"url": url(release), "send_resolved": True, "max_alerts": 0}
    if c.token is not None:
        # Mount the same Secret into Alertmanager (alertmanager.spec.secrets with the operator:
        # /etc/alertmanager/secrets/<secret>/<key>).
        webhook["http_config"] = {"authorization": {
            "type": "Bearer", "credentials_file": f"/etc/alertmanager/secrets/{c.token.secret}/{c.token.key}"}}
    return {"receivers": [{"name": name(release), "webhook_configs": [webhook]}],
            "route": {"routes": [{"receiver": name(release), "continue": True, "matchers": []}]}}
