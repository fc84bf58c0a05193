"""The gateway's action-safety arguments, rendered from ``deployment.safety`` and the rollout.

- ``--allow NAMESPACE=FN,…`` and ``--rate-limit FN=MAX/PER`` from the policy;
- ``--kill-switch`` at :data:`KILL_SWITCH_DIR`, where the ConfigMap ``<service>-killswitch``
  (key ``enabled``) is mounted as an *optional* volume: no ConfigMap means off, and operators
  create or edit it with kubectl (Flux does not own it, so it is not reverted); the kubelet
  refreshes the mounted file, so the gateway needs no RBAC to watch it;
- ``--shadow`` (with a shadow stage): gitops, the challenger's Knative tag route; flagger, the
  ``<service>-shadow`` Service (rendered only while the registry has a challenger: until then the
  copies fail fast and are counted as dropped). Every version renders it, so the champion's
  revision (rendered earlier) already shadows when a challenger appears. A revision whose shadow
  URL routes back to itself compares nothing (the gateway skips it).
- ``--collector`` when ``deployment.collector`` is rendered (the in-cluster collector Service).
"""

from __future__ import annotations

from sre_llm.deploy import traffic as tr
from sre_llm.render import collector
from sre_llm.spec.model import ModelRelease

KILL_SWITCH_DIR = "/etc/sre-llm/killswitch"
COLLECTOR_TOKEN_ENV = "SRE_LLM_COLLECTOR_TOKEN"  # noqa: S105 - the name of an environment variable


def kill_switch_configmap(service: str, release: ModelRelease) -> str:
    return release.spec.deployment.safety.kill_switch.configmap or f"{service}-killswitch"


def gateway_args(release: ModelRelease, service: str) -> list[str]:
    d = release.spec.deployment
    safety = d.safety
    args: list[str] = []
    for namespace, functions in sorted(safety.policy.allowed_functions.items()):
        args += ["--allow", f"{namespace}={','.join(functions)}"]
    for limit in safety.policy.rate_limits:
        args += ["--rate-limit", f"{limit.function}={limit.max}/{limit.per}"]
    args += ["--kill-switch", KILL_SWITCH_DIR, "--kill-switch-poll", f"{safety.kill_switch.poll_seconds:g}"]
    if d.rollout.engine == "gitops" and d.rollout.shadow is not None:
        args += ["--shadow", f"http://{tr.CHALLENGER}-{service}.{d.namespace}.svc.cluster.local"]
    elif d.rollout.shadow is not None:  # flagger: its Knative router tags no canary route, so a Service of its own
        args += ["--shadow", f"http://{tr.shadow_service(service)}.{d.namespace}.svc.cluster.local"]
    if collector.enabled(release):  # each decision, for the outcome join (sre_llm.collect.outcomes)
        args += ["--collector", collector.url(release).rstrip("/")]
    return args


def gateway_env(release: ModelRelease) -> list[dict]:
    """The collector's bearer token for the gateway's decision reports (a ``secretKeyRef``)."""
    token = collector.settings(release).token if collector.enabled(release) else None
    if token is None:
        return []
    return [{"name": COLLECTOR_TOKEN_ENV, "valueFrom": {"secretKeyRef": {"name": token.secret, "key": token.key}}}]


def kill_switch_volume(release: ModelRelease, service: str) -> dict:
    """The pod volume (add to ``spec.template.spec.volumes``)."""
    return {"name": "killswitch", "configMap": {"name": kill_switch_configmap(service, release), "optional": True}}


def kill_switch_mount() -> dict:
    """The gateway container's mount of :func:`kill_switch_volume`."""
    return {"name": "killswitch", "mountPath": KILL_SWITCH_DIR, "readOnly": True}
