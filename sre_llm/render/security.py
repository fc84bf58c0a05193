"""Least privilege in the cluster: service accounts, RBAC, NetworkPolicies, Pod Security
Admission labels and (with ``deployment.mesh: istio``) AuthorizationPolicies. Pure: objects in,
objects out; :func:`sre_llm.render.k8s.render_manifests` puts them in ``k8s/security.yaml``.

Each workload runs as its own ServiceAccount. Its rights against the Kubernetes API are exactly
:data:`API_RULES`, a table of what the code it runs calls; ``tests/test_render_security.py``
scans that code (kubectl invocations, API paths, the kubernetes client) and fails when the two
disagree either way. Today no workload calls the API (the gateway's kill switch is a mounted
ConfigMap the kubelet refreshes; the rollout writes git; training and the collector write files
and an OCI registry), so every ServiceAccount has ``automountServiceAccountToken: false`` and no
Role is rendered: a stolen pod gets no token at all. A rule added to the table renders a Role
limited to ``resourceNames`` and a RoleBinding, and turns the token back on for that workload.

Network: under Knative a request reaches the serving pod from the activator or the ingress,
never from the caller's namespace, so a NetworkPolicy cannot say "only the agent". The serving
Service is made cluster-local (nothing outside the cluster reaches it), its pods admit only
Knative's data-plane namespaces (and Prometheus on the metrics ports), and the collector admits
only Alertmanager's namespace, the serving pods (the gateway posts decisions) and Prometheus.
The agent's namespace is the team's: nothing here renders into it or labels it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sre_llm.spec.model import ModelRelease

#: Pod Security Admission level and the version of its rules the namespace is held to (pinned,
#: so a cluster upgrade cannot tighten or loosen it unnoticed).
PSA_LEVEL = "restricted"
PSA_VERSION = "v1.33"
VISIBILITY_LABEL = "networking.knative.dev/visibility"
KNATIVE_SERVICE_LABEL = "serving.knative.dev/service"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"  # set by the API server on every namespace
QUEUE_PROXY_METRICS_PORT = 9091  # Knative's queue-proxy: revision_app_request_* (the rollout reads them)
GATEWAY_TOKEN_ENV = "SRE_LLM_GATEWAY_TOKEN"  # noqa: S105 - the name of an environment variable, not a secret
COMPONENTS = ("serving", "collector", "rollout", "training")


@dataclass(frozen=True)
class Rule:
    """One RBAC rule; ``names`` are resourceNames with ``{name}`` standing for the release name."""

    api_group: str
    resource: str
    verbs: tuple[str, ...]
    names: tuple[str, ...] = ()


#: What each workload's code does against the Kubernetes API (see the module docstring).
API_RULES: dict[str, tuple[Rule, ...]] = {component: () for component in COMPONENTS}

#: The code each workload runs, scanned by the test that keeps :data:`API_RULES` honest. The
#: training pod runs the local trainer and the registry client; whatever submits the job from
#: outside (``train --cluster``) is not the pod and is not listed.
COMPONENT_CODE: dict[str, tuple[str, ...]] = {
    "serving": ("sre_llm/serve", "sre_llm/answer"),
    "collector": ("sre_llm/collect", "sre_llm/deploy/gates.py", "sre_llm/deploy/analysis.py",
                  "sre_llm/deploy/prometheus.py"),
    "rollout": ("sre_llm/deploy/rollout.py", "sre_llm/deploy/analysis.py", "sre_llm/deploy/prometheus.py",
                "sre_llm/deploy/traffic.py", "sre_llm/deploy/pinning.py", "sre_llm/render/rollout_job.py",
                "sre_llm/gitops.py"),
    "training": ("sre_llm/execute/train.py", "sre_llm/execute/process.py", "sre_llm/execute/config.py",
                 "sre_llm/execute/runs.py", "sre_llm/execute/data.py", "sre_llm/execute/export.py",
                 "sre_llm/registry"),
}


def _labels(release: ModelRelease, component: str) -> dict[str, str]:
    from sre_llm.render.k8s import _labels as labels

    return labels(release, component)


def service_account_name(release: ModelRelease, component: str) -> str:
    """``<name>-<component>``; training pods use ``training.cluster.service_account``."""
    cluster = release.spec.training.cluster
    if component == "training" and cluster is not None:
        return cluster.service_account
    return f"{release.metadata.name}-{component}"


def _namespace(release: ModelRelease, component: str) -> str:
    cluster = release.spec.training.cluster
    if component == "training" and cluster is not None:
        return cluster.namespace
    return release.spec.deployment.namespace


def components(release: ModelRelease) -> list[str]:
    """The workloads this release runs in the cluster: serving and the rollout always, the
    collector when there is one, the training pods when the spec trains on the cluster."""
    from sre_llm.render.collector import enabled

    out = ["serving", "rollout"]
    if enabled(release):
        out.insert(1, "collector")
    if release.spec.training.cluster is not None:
        out.append("training")
    return out


def service_account(release: ModelRelease, component: str, rules: tuple[Rule, ...] | None = None) -> dict:
    rules = API_RULES[component] if rules is None else rules
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": service_account_name(release, component), "namespace": _namespace(release, component),
                     "labels": _labels(release, component)},
        # No API use, no token: nothing for a compromised process to take.
        "automountServiceAccountToken": bool(rules),
    }


def rbac(release: ModelRelease, component: str, rules: tuple[Rule, ...] | None = None) -> list[dict]:
    """Role + RoleBinding for ``component``'s rules; nothing when it has none."""
    rules = API_RULES[component] if rules is None else rules
    if not rules:
        return []
    name, ns = service_account_name(release, component), _namespace(release, component)
    meta = {"name": name, "namespace": ns, "labels": _labels(release, component)}
    role_rules = []
    for r in rules:
        rule: dict[str, object] = {"apiGroups": [r.api_group], "resources": [r.resource], "verbs": list(r.verbs)}
        if r.names:
            rule["resourceNames"] = [n.format(name=release.metadata.name) for n in r.names]
        role_rules.append(rule)
    return [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta, "rules": role_rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": dict(meta),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
         "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}]},
    ]


def restrict_namespace(doc: dict) -> dict:
    """The Namespace sre-llm owns, held to Pod Security ``restricted`` (enforced, audited and
    warned). Only ever applied to ``deployment.namespace``, never to the agent's."""
    labels = dict(doc["metadata"].get("labels") or {})
    for mode in ("enforce", "audit", "warn"):
        labels[f"pod-security.kubernetes.io/{mode}"] = PSA_LEVEL
        labels[f"pod-security.kubernetes.io/{mode}-version"] = PSA_VERSION
    return {**doc, "metadata": {**doc["metadata"], "labels": labels}}


def secure_serving(release: ModelRelease, service: dict) -> dict:
    """The serving Knative Service, cluster-local, running as its own ServiceAccount, with the
    gateway's bearer token (when the spec names a Secret) from a ``secretKeyRef``."""
    d = release.spec.deployment
    meta = dict(service["metadata"])
    meta["labels"] = {**meta.get("labels", {}), VISIBILITY_LABEL: "cluster-local"}
    template = service["spec"]["template"]
    pod = {**template["spec"], "serviceAccountName": service_account_name(release, "serving")}
    if d.gateway_token is not None:
        env = {"name": GATEWAY_TOKEN_ENV,
               "valueFrom": {"secretKeyRef": {"name": d.gateway_token.secret, "key": d.gateway_token.key}}}
        pod["containers"] = [
            {**c, "env": [*c.get("env", []), env]} if c.get("name") == "gateway" else c for c in pod["containers"]
        ]
    return {**service, "metadata": meta, "spec": {**service["spec"], "template": {**template, "spec": pod}}}


def _from_namespaces(names: list[str] | tuple[str, ...]) -> dict:
    return {"namespaceSelector": {"matchExpressions": [
        {"key": NAMESPACE_NAME_LABEL, "operator": "In", "values": sorted(set(names))}]}}


def _ports(*ports: int) -> list[dict]:
    return [{"protocol": "TCP", "port": p} for p in sorted(set(ports))]


def serving_selector(release: ModelRelease) -> dict[str, str]:
    """Knative puts this label on every pod of every revision of the Service."""
    return {KNATIVE_SERVICE_LABEL: release.metadata.name}


def network_policies(release: ModelRelease, own_namespace: bool) -> list[dict]:
    """Ingress policies in the namespace sre-llm owns. A pod selected by a policy admits only
    what some policy selecting it allows, so each workload's policy is its own default deny; the
    namespace-wide deny comes with the Namespace (``own_namespace``: the release that owns it)."""
    from sre_llm.render import collector

    d, n = release.spec.deployment, release.spec.deployment.network
    ns, name = d.namespace, release.metadata.name
    out = []
    if own_namespace:
        out.append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                    "metadata": {"name": "default-deny-ingress", "namespace": ns, "labels": _labels(release, "network")},
                    "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}})
    out.append({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": f"{name}-serving", "namespace": ns, "labels": _labels(release, "network")},
        "spec": {
            "podSelector": {"matchLabels": serving_selector(release)},
            "policyTypes": ["Ingress"],
            "ingress": [
                # The activator and the ingress reach the queue-proxy; the autoscaler scrapes it.
                {"from": [_from_namespaces(n.knative_namespaces)]},
                {"from": [_from_namespaces([n.prometheus_namespace])],
                 "ports": _ports(d.gateway_port, QUEUE_PROXY_METRICS_PORT)},
            ],
        },
    })
    if collector.enabled(release):
        port = collector.settings(release).port
        out.append({
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": f"{name}-collector", "namespace": ns, "labels": _labels(release, "network")},
            "spec": {
                "podSelector": {"matchLabels": collector.selector(release)},
                "policyTypes": ["Ingress"],
                "ingress": [
                    # Flagger calls the webhook gates (engine flagger: sre_llm.deploy.gates)
                    {"from": [_from_namespaces(sorted({n.alertmanager_namespace, n.prometheus_namespace}
                                                      | _flagger_namespaces(release)))],
                     "ports": _ports(port)},
                    {"from": [{"podSelector": {"matchLabels": serving_selector(release)}}], "ports": _ports(port)},
                ],
            },
        })
    return out


def _flagger_namespaces(release: ModelRelease) -> set[str]:
    ro = release.spec.deployment.rollout
    return {ro.flagger.namespace} if ro.engine == "flagger" else set()


def authorization_policies(release: ModelRelease) -> list[dict]:
    """Istio's L7 twin of the NetworkPolicies (``deployment.mesh: istio``): with mTLS the
    gateway's posts to the collector are admitted by its ServiceAccount's identity, not by IP."""
    from sre_llm.render import collector

    d, n = release.spec.deployment, release.spec.deployment.network
    if d.mesh != "istio":
        return []
    ns, name = d.namespace, release.metadata.name
    out = [{
        "apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
        "metadata": {"name": f"{name}-serving", "namespace": ns, "labels": _labels(release, "network")},
        "spec": {
            "selector": {"matchLabels": serving_selector(release)},
            "action": "ALLOW",
            "rules": [
                {"from": [{"source": {"namespaces": sorted(set(n.knative_namespaces))}}]},
                {"from": [{"source": {"namespaces": [n.prometheus_namespace]}}],
                 "to": [{"operation": {"ports": [str(d.gateway_port), str(QUEUE_PROXY_METRICS_PORT)],
                                       "methods": ["GET"]}}]},
            ],
        },
    }]
    if collector.enabled(release):
        port = str(collector.settings(release).port)
        gateway = f"cluster.local/ns/{ns}/sa/{service_account_name(release, 'serving')}"
        out.append({
            "apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
            "metadata": {"name": f"{name}-collector", "namespace": ns, "labels": _labels(release, "network")},
            "spec": {
                "selector": {"matchLabels": collector.selector(release)},
                "action": "ALLOW",
                "rules": [
                    {"from": [{"source": {"namespaces": sorted({n.alertmanager_namespace} | _flagger_namespaces(release))}}],
                     "to": [{"operation": {"ports": [port], "methods": ["POST"]}}]},
                    {"from": [{"source": {"principals": [gateway]}}],
                     "to": [{"operation": {"ports": [port], "methods": ["POST"]}}]},
                    {"from": [{"source": {"namespaces": [n.prometheus_namespace]}}],
                     "to": [{"operation": {"ports": [port], "methods": ["GET"]}}]},
                ],
            },
        })
    return out


def security_objects(release: ModelRelease) -> list[dict]:
    """Everything of this module for one release, in apply order."""
    d = release.spec.deployment
    out: list[dict] = []
    for component in components(release):
        out.append(service_account(release, component))
        out += rbac(release, component)
    out += network_policies(release, own_namespace=d.create_namespace)
    out += authorization_policies(release)
    return out
