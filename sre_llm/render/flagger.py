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

from sre_llm.deploy import traffic as tr
from sre_llm.spec.model import ModelRelease

FLAGGER_API = "flagger.app/v1beta1"


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


def canary(release: ModelRelease, service: str, labels: dict[str, str]) -> dict:
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
            },
        },
    }


def flagger_docs(release: ModelRelease, service: str, labels: dict[str, str]) -> dict[str, dict | list]:
    """File name → object(s) for the k8s tree."""
    return {"canary.yaml": canary(release, service, labels),
            "metrictemplates.yaml": metric_templates(release, service, labels)}
