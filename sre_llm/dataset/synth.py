"""A seeded synthetic corpus: realistic firing alerts for the seven LambdaFunctions and for none.

Records come out exactly as the collectors write them (``kind: alert`` with expanded
``lambda_function`` / ``lambda_parameters`` annotations, the agent-sre rule convention), so the
demo and the tests run the same pipeline as real data. Parameter values are copied from the
alert's labels, which is what the model has to learn to do.

Varied on purpose, so that a model learns to read the alert rather than the generator: names,
namespaces and nodes come from a *vocabulary*; label sets are the ones kube-prometheus-stack's
default rules and Flux (its Prometheus metrics and notification-controller's Alertmanager
provider) really emit, with their extra labels (``service``, ``endpoint``, ``prometheus``, the
kube-state-metrics ``pod`` on deployment alerts, …) present or missing; annotations are worded
several ways (some neutral, naming only the object), a summary only for 10 % of alerts, absent for 20 %.

Two vocabularies ship as package data in ``vocabularies/``: ``main`` (the demo's corpus) and
``alt``, frozen before the main corpus was tuned and sharing no name or wording with it: a corpus
drawn from ``alt`` is the out-of-distribution split (``sre-llm dataset synth --vocabulary alt``).

Every ``none`` alert carries evidence (a ``none`` without evidence would be unlabelled, see
:mod:`sre_llm.dataset.label`): rules that must never act (Watchdog, InfoInhibitor, certificates
cert-manager renews) carry ``lambda_function: none``; the others resolve on their own, 2–12
minutes after they start (``status: resolved``), well inside the default ``self_resolve_window``.

The same ``(count, seed, vocabulary)`` always gives the same records, byte for byte.
"""

from __future__ import annotations

import functools
import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from sre_llm.dataset.records import fingerprint
from sre_llm.errors import BadInput

VOCABULARY_DIR = Path(__file__).parent / "vocabularies"
#: Shipped vocabularies: ``main`` is the corpus's own, ``alt`` the frozen out-of-distribution one.
VOCABULARIES = ("main", "alt")

_HASH = "bcdfghjklmnpqrstvwxz2456789"  # Kubernetes' safe alphabet for generated names
_KPS = "kube-prometheus-stack"  # the Helm release name most clusters give it
_NO_ANNOTATIONS, _SUMMARY_ONLY = 0.2, 0.1


@dataclass(frozen=True)
class Vocabulary:
    """Names and wordings one corpus draws from (a JSON file in ``vocabularies/``)."""

    name: str
    apps: tuple[str, ...]
    suffixes: tuple[str, ...]
    namespaces: tuple[str, ...]
    stateful: tuple[str, ...]
    flux_names: tuple[str, ...]
    clusters: tuple[str, ...]
    teams: tuple[str, ...]
    nodes: tuple[str, ...]
    registry: str
    flux_messages: tuple[str, ...]
    wordings: dict[str, tuple[tuple[str, str], ...]]


@functools.lru_cache(maxsize=None)
def vocabulary(name: str = "main") -> Vocabulary:
    """A shipped vocabulary by name, or one from a JSON file of the same shape."""
    path = VOCABULARY_DIR / f"{name}.json" if name in VOCABULARIES else Path(name)
    if not path.is_file():
        raise BadInput(f"vocabulary {name!r}: not one of {', '.join(VOCABULARIES)} and no such file")
    data = json.loads(path.read_text(encoding="utf-8"))
    return Vocabulary(
        name=name, registry=data["registry"],
        wordings={k: tuple((s, d) for s, d in v) for k, v in data["wordings"].items()},
        **{k: tuple(data[k]) for k in ("apps", "suffixes", "namespaces", "stateful", "flux_names", "clusters",
                                       "teams", "nodes", "flux_messages")},
    )


def _h(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(_HASH) for _ in range(n))


class _Draw:
    """Names drawn for one alert."""

    def __init__(self, rng: random.Random, voc: Vocabulary):
        self.rng, self.voc = rng, voc
        self.app = rng.choice(voc.apps) + rng.choice(voc.suffixes)
        self.ns = rng.choice(voc.namespaces)
        self.deployment = self.app
        self.pod = f"{self.app}-{_h(rng, rng.choice((8, 9, 10)))}-{_h(rng, 5)}"
        self.container = rng.choice((self.app.split("-")[0], self.app, "app", "server", "main"))
        st = rng.choice(voc.stateful)
        self.pvc = rng.choice((f"data-{st}-{rng.randint(0, 2)}", f"{self.app}-data", f"{self.app}-storage",
                               f"{st}-pvc", f"storage-{st}-{rng.randint(0, 2)}"))
        self.flux = rng.choice(voc.flux_names + voc.apps[:12])
        self.flux_ns = rng.choice(("flux-system", "flux-system", "flux-system", self.ns))
        self.ip = f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        self.cluster = rng.choice(voc.clusters)
        self.node = rng.choice(voc.nodes).format(
            n=rng.randint(1, 9), a=rng.randint(0, 255), b=rng.randint(0, 255), d8=rng.randint(10**7, 10**8 - 1),
            h8=_h(rng, 8), h4=_h(rng, 4), h5=_h(rng, 5), cluster=self.cluster)

    def say(self, key: str, **fields: Any) -> dict:
        """Annotations in one of the vocabulary's wordings; sometimes a summary only, or none."""
        summary, description = self.rng.choice(self.voc.wordings[key])
        values = {"pod": self.pod, "ns": self.ns, "deployment": self.deployment, "container": self.container,
                  "pvc": self.pvc, "app": self.app, "node": self.node, **fields}
        roll = self.rng.random()
        if roll < _NO_ANNOTATIONS:
            return {}
        ann = {"summary": summary.format(**values)}
        if roll >= _NO_ANNOTATIONS + _SUMMARY_ONLY:
            ann["description"] = description.format(**values)
        return ann

    def maybe(self, p: float, labels: dict) -> dict:
        return labels if self.rng.random() < p else {}


Scenario = Callable[[_Draw], tuple[dict, dict, str, dict]]  # labels, annotations, function, params


def _target(d: _Draw, port: int, job: str, service: str) -> dict:
    """What kube-prometheus-stack's scrape adds: job and instance, often service/endpoint/prometheus,
    sometimes the cluster (external label) and a team label."""
    labels = {"job": job, **d.maybe(0.85, {"instance": f"{d.ip}:{port}"})}
    labels |= d.maybe(0.5, {"service": f"{_KPS}-{service}", "endpoint": "http" if port == 8080 else "https-metrics",
                            "prometheus": f"monitoring/{_KPS}-prometheus"})
    return labels | d.maybe(0.5, {"cluster": d.cluster}) | d.maybe(0.15, {"team": d.rng.choice(d.voc.teams)})


def _ksm(d: _Draw, workload_level: bool = False) -> dict:
    labels = _target(d, 8080, "kube-state-metrics", "kube-state-metrics")
    if workload_level and d.rng.random() < 0.25:
        # A metric without a pod label gets the scraped target's: kube-state-metrics' own pod.
        labels |= {"pod": f"{_KPS}-kube-state-metrics-{_h(d.rng, 9)}-{_h(d.rng, 5)}", "container": "kube-state-metrics"}
    return labels | d.maybe(0.2, {"uid": f"{_h(d.rng, 8)}-{_h(d.rng, 4)}-{_h(d.rng, 4)}-{_h(d.rng, 4)}-{_h(d.rng, 12)}"})


def _severity(d: _Draw, *choices: str) -> dict:
    return d.maybe(0.92, {"severity": d.rng.choice(choices)})


def _crashloop(d: _Draw):
    name = d.rng.choice(("KubePodCrashLooping", "KubePodCrashLooping", "TestPodCrashLoopBackOff", "PodCrashLoopBackOff"))
    labels = {"alertname": name, "namespace": d.ns, "pod": d.pod, **d.maybe(0.85, {"container": d.container}),
              **d.maybe(0.4, {"reason": "CrashLoopBackOff"}), **d.maybe(0.25, {"node": d.node}),
              **_severity(d, "warning", "critical"), **_ksm(d)}
    ann = d.say("crashloop", restarts=d.rng.randint(3, 40))
    return labels, ann, "pod-restart", {"name": d.pod, "namespace": d.ns, "type": "pod"}


def _deploy_unhealthy(d: _Draw):
    name = d.rng.choice(("KubeDeploymentReplicasMismatch", "KubeDeploymentReplicasMismatch", "TestDeploymentUnhealthy",
                         "DeploymentUnavailable", "KubeDeploymentRolloutStuck"))
    labels = {"alertname": name, "namespace": d.ns, "deployment": d.deployment, **_severity(d, "warning"),
              **_ksm(d, workload_level=True)}
    ann = d.say("deploy_unhealthy", n=d.rng.randint(1, 5))
    return labels, ann, "pod-restart", {"name": d.deployment, "namespace": d.ns, "type": "deployment"}


def _scale(d: _Draw):
    target = d.rng.choice((2, 3, 3, 4, 5, 6, 8, 10, 12))
    if d.rng.random() < 0.8:
        # A rule that compares against a desired count carries it as a label (agent-sre's own
        # example names it ``expected``): the answer can refer to it instead of reading prose.
        labels = {"alertname": d.rng.choice(("TestDeploymentNeedsScaling", "DeploymentUnderProvisioned")),
                  "namespace": d.ns, "deployment": d.deployment,
                  d.rng.choice(("expected", "expected", "desired_replicas")): str(target),
                  **_severity(d, "info", "warning"), **d.maybe(0.3, _ksm(d))}
        ann = d.say("scale_label", target=target)
    else:
        labels = {"alertname": d.rng.choice(("TestHighCPUUsage", "HighCPUUsage", "HighRequestRate")),
                  "namespace": d.ns, "deployment": d.deployment, **_severity(d, "warning")}
        ann = d.say("scale_prose", target=target, cpu=d.rng.randint(81, 99))
        ann.setdefault("description", d.voc.wordings["scale_prose"][0][1].format(
            deployment=d.deployment, ns=d.ns, target=target, cpu=d.rng.randint(81, 99)))  # the only place it is said
    return labels, ann, "scale-deployment", {"name": d.deployment, "namespace": d.ns, "replicas": target}


def _pod_check(d: _Draw):
    kind = d.rng.choice(("pending", "imagepull", "notready"))
    extra: dict = {}
    if kind == "pending":
        name = d.rng.choice(("TestPodPending", "KubePodPending", "KubePodNotScheduled"))
    elif kind == "imagepull":
        name = d.rng.choice(("TestImagePullBackOff", "KubeContainerWaiting", "KubeContainerWaiting"))
        extra = {"container": d.container, **d.maybe(0.6, {"reason": d.rng.choice(("ImagePullBackOff", "ErrImagePull"))})}
    else:
        name = "KubePodNotReady"
    image = f"{d.voc.registry}/{d.app}:{d.rng.randint(1, 9)}.{d.rng.randint(0, 30)}.0"
    labels = {"alertname": name, "namespace": d.ns, "pod": d.pod, **extra, **d.maybe(0.2, {"node": d.node}),
              **_severity(d, "warning"), **_ksm(d)}
    return labels, d.say(kind, image=image), "pod-check-status", {"name": d.pod, "namespace": d.ns}


def _pvc(d: _Draw):
    labels = {"alertname": d.rng.choice(("KubePersistentVolumeFillingUp", "KubePersistentVolumeFillingUp",
                                         "TestPVCFillingUp", "PVCAlmostFull")),
              "namespace": d.ns, "persistentvolumeclaim": d.pvc, **_severity(d, "warning", "critical"),
              **_target(d, 10250, "kubelet", "kubelet"), **d.maybe(0.5, {"metrics_path": "/metrics", "node": d.node})}
    return labels, d.say("pvc", free=d.rng.randint(1, 19)), "check-pvc-status", {"name": d.pvc, "namespace": d.ns}


_FLUX_REASONS = {"Kustomization": ("ReconciliationFailed", "HealthCheckFailed", "BuildFailed"),
                 "HelmRelease": ("ReconciliationFailed", "InstallFailed", "UpgradeFailed"),
                 "GitRepository": ("ReconciliationFailed", "GitOperationFailed", "ArtifactFailed")}
_CONTROLLERS = {"Kustomization": "kustomize-controller", "HelmRelease": "helm-controller",
                "GitRepository": "source-controller"}


def _flux(kind: str, fn: str) -> Scenario:
    def scenario(d: _Draw):
        reason = d.rng.choice(_FLUX_REASONS[kind])
        msg = d.rng.choice(d.voc.flux_messages).format(ns=d.ns, app=d.app)
        ann = d.say("flux", kind=kind, name=d.flux, flux_ns=d.flux_ns, msg=msg)
        style = d.rng.random()
        if style < 0.4:  # a team's own PrometheusRule
            labels = {"alertname": d.rng.choice((f"Flux{kind}{reason}", "FluxReconciliationFailure")),
                      "namespace": d.flux_ns, "kind": kind, "name": d.flux, **_severity(d, "error", "critical"),
                      **d.maybe(0.6, {"reportingController": _CONTROLLERS[kind]})}
        elif style < 0.7:  # Flux's monitoring example over gotk_reconcile_condition
            labels = {"alertname": d.rng.choice(("ReconciliationFailure", "FluxReconciliationFailure")),
                      "namespace": "flux-system", "exported_namespace": d.flux_ns, "kind": kind, "name": d.flux,
                      "type": "Ready", "status": "False", **_severity(d, "warning", "critical"),
                      **_target(d, 8080, _CONTROLLERS[kind], _CONTROLLERS[kind])}
        else:  # notification-controller's Alertmanager provider: message annotation, summary only if set
            title = reason if d.rng.random() < 0.5 else reason[0] + reason[1:].lower()
            labels = {"alertname": f"Flux{kind}{title}", "severity": "error", "reason": reason, "kind": kind,
                      "name": d.flux, "namespace": d.flux_ns, "reportingcontroller": _CONTROLLERS[kind],
                      **d.maybe(0.5, {"revision": f"main@sha1:{''.join(d.rng.choice('0123456789abcdef') for _ in range(40))}"})}
            ann = {"message": msg, **({"summary": ann["summary"]} if "summary" in ann and d.rng.random() < 0.3 else {})}
        return labels, ann, fn, {"name": d.flux, "namespace": d.flux_ns}

    return scenario


def _none(d: _Draw):
    """(labels, annotations, "none", {}, explicit): explicit rules carry ``lambda_function: none``;
    the rest resolve on their own."""
    choice = d.rng.randrange(7)
    r = d.rng
    if choice == 0:
        return {"alertname": "Watchdog", "severity": "none", **d.maybe(0.5, {"prometheus": f"monitoring/{_KPS}-prometheus"})}, d.say("watchdog"), True
    if choice == 1:
        return {"alertname": "InfoInhibitor", "namespace": d.ns, "severity": "none"}, d.say("info_inhibitor"), True
    if choice == 2:
        return ({"alertname": "KubeCPUOvercommit", "severity": "warning", **d.maybe(0.6, {"cluster": d.cluster})},
                d.say("cpu_overcommit", cpu=f"{r.randint(1, 9)}.{r.randint(0, 99)}"), False)
    if choice == 3:
        return ({"alertname": "TargetDown", "namespace": d.ns, "job": d.app, "service": d.app, "severity": "warning"},
                d.say("target_down", pct=r.randint(10, 100)), False)
    if choice == 4:
        return ({"alertname": "NodeClockNotSynchronising", "instance": f"{d.ip}:9100", "job": "node-exporter",
                 **d.maybe(0.5, {"node": d.node}), "severity": "warning"}, d.say("clock"), False)
    if choice == 5:
        job = f"{d.app}-backup-{r.randint(28000000, 29999999)}"
        return ({"alertname": "KubeJobFailed", "namespace": d.ns, "job_name": job, "severity": "warning",
                 **d.maybe(0.3, _ksm(d))},
                d.say("job_failed", job=job), False)
    owner = f"{r.choice(d.voc.teams)}-oncall@example.com"
    return ({"alertname": "CertificateExpiringSoon", "namespace": d.ns, "name": f"{d.app}-tls", "severity": "info"},
            d.say("cert", cert=f"{d.app}-tls", days=r.randint(10, 29), owner=owner), True)


#: (weight, scenario): about 13% of alerts need no action.
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


def generate(count: int, seed: int = 0, refire: float = 0.04, vocabulary_name: str = "main") -> Iterator[dict]:
    """``count`` alert records drawn from a vocabulary. A share ``refire`` repeat an earlier alert
    later (as real alerts do), which the pipeline's deduplication removes."""
    voc = vocabulary(vocabulary_name)
    rng = random.Random(seed)  # noqa: S311 - seeded generator for reproducible data, never a secret
    weights = [w for w, _ in SCENARIOS]
    funcs = [s for _, s in SCENARIOS]
    recent: list[tuple[dict, dict, bool]] = []
    for i in range(count):
        start = _EPOCH + timedelta(seconds=int(90 * 86400 * i / max(count, 1)) + rng.randint(0, 600))
        if recent and rng.random() < refire:
            labels, ann, resolves = rng.choice(recent)
            if "pod" in labels and rng.random() < 0.5:
                labels, ann = _new_pod(rng, labels, ann)  # the replacement pod crashes too
        else:
            scenario = rng.choices(funcs, weights)[0]
            if scenario is _none:
                labels, ann, explicit = _none(_Draw(rng, voc))
                resolves = not explicit
                if explicit:
                    ann = {**ann, "lambda_function": "none"}
            else:
                labels, ann, fn, params = scenario(_Draw(rng, voc))
                ann, resolves = {**ann, "lambda_function": fn, "lambda_parameters": _template_order(params)}, False
            recent = (recent + [(labels, ann, resolves)])[-50:]
        end = start + timedelta(minutes=rng.randint(2, 12) if resolves else rng.randint(2, 90))
        yield {
            "kind": "alert",
            "source": "synthetic",
            "fingerprint": fingerprint(labels),
            "status": "resolved" if resolves else "firing",
            "labels": labels,
            "annotations": ann,
            "startsAt": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "endsAt": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "generatorURL": f"http://prometheus.monitoring:9090/graph?g0.expr=ALERTS%7Balertname%3D%22{labels['alertname']}%22%7D",
        }


def golden(count: int, seed: int = 0, vocabulary_name: str = "main") -> Iterator[dict[str, str]]:
    """A golden set: the corpus through the dataset pipeline (labelling, redaction, dedupe) with
    the default settings, every example of every split, answers as literal values (what a person
    writes in a golden set; ``sre-llm eval --test`` expands a model's references before comparing)."""
    from sre_llm.dataset.pipeline import Settings, run
    from sre_llm.dataset.redact import Redactor

    result = run(generate(count, seed, vocabulary_name=vocabulary_name), Settings(min_examples=0),
                 Redactor(True, True, True, True, []))
    for split in ("train", "validation", "test"):
        yield from result.rows(split)
