"""Flagger objects for ``deployment.rollout.engine: flagger``: a ``Canary`` on the serving Knative
Service and one ``MetricTemplate`` per check.

With Flagger's Knative provider the Canary targets the Knative Service itself; Flagger pins the
primary revision in an annotation and owns ``spec.traffic`` (the canary is the latest revision),
so the rendered Service carries no traffic block in this mode. Revision names stay pinned by
version (``<service>-v1-2-0``), which is how each MetricTemplate selects the canary: the Canary
passes the revision as a template variable.

The templates are the spec's own analysis queries (``rollout.analysis.queries``) with Flagger's
variables put in: ``$namespace`` → ``{{ namespace }}``, ``$revision`` →
``{{ variables.revision }}``, ``$window`` → ``{{ interval }}``; what the gitops engine reads is
what Flagger reads. Thresholds come from ``rollout.rollback`` (percentages, as Flagger's examples
use), the step weights from ``rollout.steps`` (Flagger promotes after the last step below 100).
"""

from __future__ import annotations

import copy
from pathlib import Path

from sre_llm.deploy import traffic as tr
from sre_llm.render import collector
from sre_llm.spec.load import LoadedSpec
from sre_llm.spec.model import ModelRelease

FLAGGER_API = "flagger.app/v1beta1"
ROLLOUT_SPEC_DIR = "/etc/sre-llm/rollout"  # the collector's copy of the spec its webhook gates judge by
ROLLOUT_SPEC_FILE = "spec.yaml"


def _flagger_vars(promql: str) -> str:
    return (promql.replace("$namespace", "{{ namespace }}").replace("$revision", "{{ variables.revision }}")
            .replace("$window", "{{ interval }}"))


def metric_queries(release: ModelRelease) -> dict[str, str]:
    """Check name → PromQL with Flagger's variables (one number per analysis run)."""
    q = release.spec.deployment.rollout.analysis.queries
    return {
        "error-rate": f"100 * ({_flagger_vars(q.errors)} or vector(0)) / ({_flagger_vars(q.requests)})",
        "latency-p95": _flagger_vars(q.p95_latency_ms),
        "remediation-success-rate": f"100 * ({_flagger_vars(q.remediation_successes)} or vector(0)) / "
                                    f"({_flagger_vars(q.remediations)})",
    }


def metric_templates(release: ModelRelease, service: str, labels: dict[str, str]) -> list[dict]:
    d = release.spec.deployment
    return [{
        "apiVersion": FLAGGER_API,
        "kind": "MetricTemplate",
        "metadata": {"name": f"{service}-{name}", "namespace": d.namespace, "labels": labels},
        "spec": {"provider": {"type": "prometheus", "address": d.rollout.analysis.prometheus_url}, "query": query},
    } for name, query in metric_queries(release).items()]


def registry_aliases(release: ModelRelease, root: str | Path = ".") -> dict[str, str]:
    """champion / challenger from the registry index (``<root>/registry/<name>.yaml``, as
    committed beside the spec); empty when the model was never registered."""
    if not (Path(root) / "registry" / f"{release.metadata.name}.yaml").exists():
        return {}  # never registered: and render need not import the registry (start-up)
    from sre_llm.registry import index as ix

    index = ix.load(root, release.metadata.name)
    return dict(index.aliases) if index is not None else {}


def champion(release: ModelRelease, aliases: dict[str, str]) -> str | None:
    """The version the Canary is compared with: the registry's champion, unless that is this one."""
    found = aliases.get("champion")
    return found if found and found != release.metadata.version else None


def shadowing(release: ModelRelease, aliases: dict[str, str]) -> bool:
    """Render ``<service>-shadow``: a shadow stage is configured, this version is the registry's
    challenger, and there is a champion to shadow."""
    return (release.spec.deployment.rollout.shadow is not None and aliases.get("challenger") == release.metadata.version
            and champion(release, aliases) is not None)


def webhooks(release: ModelRelease, aliases: dict[str, str]) -> list[dict]:
    """The collector's gates (:mod:`sre_llm.deploy.gates`); none without a collector."""
    if not collector.enabled(release):
        return []
    ro = release.spec.deployment.rollout
    base = collector.url(release)
    meta = {"model": release.metadata.name, "challenger": release.metadata.version}
    if champion(release, aliases):
        meta["champion"] = champion(release, aliases)  # type: ignore[assignment]
    hooks = []
    if ro.shadow is not None:
        hooks.append({"name": "shadow-gate", "type": "confirm-rollout", "url": base + "flagger/shadow"})
    hooks += [{"name": "statistical-check", "type": "rollout", "url": base + "flagger/check"},
              {"name": "sample-gate", "type": "confirm-traffic-increase", "url": base + "flagger/confirm"}]
    return [{**h, "timeout": ro.flagger.webhook_timeout, "metadata": dict(meta)} for h in hooks]


def canary(release: ModelRelease, service: str, labels: dict[str, str], aliases: dict[str, str] | None = None) -> dict:
    d = release.spec.deployment
    ro, rb = d.rollout, d.rollout.rollback
    revision = tr.revision_name(service, release.metadata.version)
    thresholds = {"error-rate": {"max": round(rb.max_error_rate * 100, 6)},
                  "latency-p95": {"max": rb.max_p95_latency_ms},
                  "remediation-success-rate": {"min": round(rb.min_success_rate * 100, 6)}}
    steps = [s for s in ro.steps if s < 100] or [50]
    return {
        "apiVersion": FLAGGER_API,
        "kind": "Canary",
        "metadata": {"name": service, "namespace": d.namespace, "labels": labels},
        "spec": {
            "provider": "knative",
            "targetRef": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": service},
            "progressDeadlineSeconds": 900,  # a 7B model's cold start (pull, verify, load) is minutes
            "analysis": {
                "interval": ro.analysis_interval,
                "threshold": rb.failure_threshold,
                "stepWeights": steps,
                "metrics": [{"name": name, "templateRef": {"name": f"{service}-{name}", "namespace": d.namespace},
                             "thresholdRange": thresholds[name], "interval": ro.analysis.window,
                             "templateVariables": {"revision": revision}}
                            for name in metric_queries(release)],
                **({"webhooks": hooks} if (hooks := webhooks(release, aliases or {})) else {}),
            },
        },
    }


def shadow_service(release: ModelRelease, serving: dict) -> dict:
    """``<service>-shadow``: the serving Service's template under its own name and revision, the
    challenger that answers the champion's copies. It shadows nothing itself and reports no
    decisions (none of its answers is acted on); it gets no traffic block (Knative: 100 % latest)."""
    name = tr.shadow_service(serving["metadata"]["name"])
    doc = copy.deepcopy(serving)
    doc["metadata"]["name"] = name
    doc["metadata"]["labels"]["app.kubernetes.io/component"] = "shadow"
    template = doc["spec"]["template"]
    template["metadata"]["name"] = tr.revision_name(name, release.metadata.version)
    template["metadata"]["labels"]["app.kubernetes.io/component"] = "shadow"
    for c in template["spec"]["containers"]:
        if c["name"] == "gateway":
            c["args"] = _drop_options(c["args"], ("--shadow", "--collector"))
            c["env"] = [e for e in c.get("env", []) if e["name"] != "SRE_LLM_COLLECTOR_TOKEN"]
    doc["spec"].pop("traffic", None)
    return doc


def _drop_options(args: list[str], options: tuple[str, ...]) -> list[str]:
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a in options:
            skip = True
        else:
            out.append(a)
    return out


def shadow_network_policy(release: ModelRelease, serving_policy: dict) -> dict:
    """The serving pods' ingress rules for the shadow Service's pods (Knative labels them with
    their own Service's name, which the serving policy does not select)."""
    doc = copy.deepcopy(serving_policy)
    doc["metadata"]["name"] = tr.shadow_service(serving_policy["metadata"]["name"])
    doc["spec"]["podSelector"] = {"matchLabels": {"serving.knative.dev/service": tr.shadow_service(release.metadata.name)}}
    return doc


def collector_gates(spec: LoadedSpec, objects: list[dict]) -> list[dict]:
    """The collector with Flagger's webhook gates: a ConfigMap holding the spec (the kubelet
    refreshes the mounted file when a new version is rendered; the collector re-reads it), and
    ``--rollout-spec`` pointing at it. Unchanged in gitops mode (the CronJob reads git)."""
    release = spec.release
    if release.spec.deployment.rollout.engine != "flagger":
        return objects
    name = f"{collector.name(release)}-rollout"
    out = []
    for doc in objects:
        if doc["kind"] == "StatefulSet":
            doc = copy.deepcopy(doc)
            pod = doc["spec"]["template"]["spec"]
            pod["volumes"].append({"name": "rollout-spec", "configMap": {"name": name}})
            for c in pod["containers"]:
                c["args"] += ["--rollout-spec", f"{ROLLOUT_SPEC_DIR}/{ROLLOUT_SPEC_FILE}"]
                c["volumeMounts"].append({"name": "rollout-spec", "mountPath": ROLLOUT_SPEC_DIR, "readOnly": True})
        out.append(doc)
    configmap = {"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": name, "namespace": release.spec.deployment.namespace,
                              "labels": collector._labels(release)},
                 "data": {ROLLOUT_SPEC_FILE: spec.text}}
    return [configmap, *out]


def flagger_docs(release: ModelRelease, service: str, labels: dict[str, str],
                 docs: dict[str, dict | list] | None = None, root: str | Path = ".") -> dict[str, dict | list]:
    """File name → object(s) for the k8s tree. ``docs``: what is rendered so far (the serving
    Service and security objects the shadow Service is made from)."""
    aliases = registry_aliases(release, root)
    out: dict[str, dict | list] = {"canary.yaml": canary(release, service, labels, aliases),
                                   "metrictemplates.yaml": metric_templates(release, service, labels)}
    if docs and shadowing(release, aliases):
        policies = [d for d in docs.get("security.yaml", []) if isinstance(d, dict) and d.get("kind") == "NetworkPolicy"
                    and d["metadata"]["name"] == f"{release.metadata.name}-serving"]
        out["shadow.yaml"] = [shadow_service(release, docs["serving.yaml"]),  # type: ignore[arg-type]
                              *(shadow_network_policy(release, p) for p in policies)]
    return out
