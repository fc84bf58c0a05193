"""Render the Kubernetes tree of a release: pure, ``list[RenderedFile]`` under ``<root>/<name>/k8s/``.

The tree is a Kustomize base Flux applies:

- ``serving.yaml``   the vLLM Knative Service; its template is the spec's version (one revision per
  version, named from it) and ``spec.traffic`` the split between champion and challenger;
- ``agent.yaml``     the agent-sre LambdaAgent, ``spec.ai`` pointing at the serving Service;
- ``prometheusrule.yaml`` the alert that fires when a rollout is rolled back;
- ``kustomization.yaml`` the base; ``flux-kustomization.yaml`` the Flux object that applies it
  together with the rollout component ``rollouts/<name>/`` (``sre-llm rollout`` owns that one).
"""

from __future__ import annotations

import posixpath

from sre_llm.deploy import traffic as tr
from sre_llm.deploy.yamldoc import dump
from sre_llm.render.render import RenderedFile, spec_label
from sre_llm.spec.load import LoadedSpec
from sre_llm.spec.model import ModelRelease

ROLLOUTS_DIR = "rollouts"
ROLLBACK_METRIC = "sre_llm_rollout_rolled_back"
ROLLBACK_ALERT = "SreLlmRolloutRolledBack"
FLUX_NAMESPACE = "flux-system"


def service_name(release: ModelRelease) -> str:
    """The serving Knative Service is named after the release."""
    return release.metadata.name


def served_model_name(release: ModelRelease) -> str:
    """The name clients ask for; the same for every version, so a rollout changes no client."""
    return release.metadata.name


def model_dir(release: ModelRelease, version: str, mount: str | None = None) -> str:
    """Where a version's weights (merged) or adapter (LoRA) live on the model volume."""
    mount = mount or release.spec.deployment.model_mount_path
    sub = "adapter" if release.spec.deployment.serve_adapter else ""
    return posixpath.join(mount.rstrip("/") or "/", release.metadata.name, version, sub).rstrip("/")


def base_model_ref(release: ModelRelease, mount: str | None = None) -> str:
    """The base vLLM loads under a LoRA adapter: a hub id (pulled by vLLM), else ``<mount>/base``."""
    base = release.spec.base_model
    if base.name:
        return base.name
    return posixpath.join((mount or release.spec.deployment.model_mount_path).rstrip("/"), "base")


def server_args(release: ModelRelease, model: str, host: str, port: int, base: str | None = None) -> list[str]:
    """Arguments of ``python -m vllm.entrypoints.openai.api_server``; the Knative manifest and
    ``sre-llm serve`` share them. ``model`` is the merged directory, or the adapter when ``base``."""
    d = release.spec.deployment
    name = served_model_name(release)
    if base is None:
        args = ["--model", model, "--served-model-name", name]
    else:
        rank = release.spec.training.lora.rank if release.spec.training.lora else 8
        args = ["--model", base, "--served-model-name", f"{name}-base",
                "--enable-lora", "--lora-modules", f"{name}={model}", "--max-lora-rank", str(rank)]
        if release.spec.base_model.revision:
            args += ["--revision", release.spec.base_model.revision]
    args += ["--host", host, "--port", str(port), "--max-model-len", str(d.max_model_len)]
    if release.spec.base_model.trust_remote_code:
        args.append("--trust-remote-code")
    return args


def _labels(release: ModelRelease, component: str) -> dict[str, str]:
    labels = {
        "app.kubernetes.io/name": release.metadata.name,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "sre-llm",
        "app.kubernetes.io/managed-by": "sre-llm",
    }
    labels.update(sorted(release.metadata.labels.items()))
    return labels


def serving_service(release: ModelRelease, split: tr.Split) -> dict:
    """The vLLM Knative Service: template = the spec's version; traffic = ``split``."""
    d = release.spec.deployment
    name, version = service_name(release), release.metadata.version
    base = base_model_ref(release) if d.serve_adapter else None
    resources: dict[str, dict[str, str]] = {}
    if d.gpus:
        resources = {"limits": {"nvidia.com/gpu": str(d.gpus)}, "requests": {"nvidia.com/gpu": str(d.gpus)}}
    container: dict[str, object] = {
        "name": "vllm",
        "image": d.image,
        "command": ["python3", "-m", "vllm.entrypoints.openai.api_server"],
        "args": server_args(release, model_dir(release, version), "0.0.0.0", d.port, base),
        "ports": [{"name": "http1", "containerPort": d.port}],
        # vLLM answers /health once the weights are loaded; until then Knative routes nothing here.
        "readinessProbe": {"httpGet": {"path": "/health"}, "periodSeconds": 5, "failureThreshold": 120},
        "volumeMounts": [{"name": "models", "mountPath": d.model_mount_path, "readOnly": True}],
    }
    if resources:
        container["resources"] = resources
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": d.namespace, "labels": _labels(release, "serving")},
        "spec": {
            "template": {
                "metadata": {
                    "name": tr.revision_name(name, version),
                    "labels": {"sre-llm.io/model-version": version},
                    "annotations": {
                        "autoscaling.knative.dev/min-scale": str(d.scaling.min_replicas),
                        "autoscaling.knative.dev/max-scale": str(d.scaling.max_replicas),
                        "autoscaling.knative.dev/target": str(d.scaling.target_concurrency),
                    },
                },
                "spec": {
                    "timeoutSeconds": 300,
                    "containers": [container],
                    "volumes": [{"name": "models", "persistentVolumeClaim": {"claimName": d.model_pvc, "readOnly": True}}],
                },
            },
            "traffic": tr.traffic_block(name, split),
        },
    }


def endpoint(release: ModelRelease) -> str:
    """The OpenAI base URL of the serving Service inside the cluster (the split route)."""
    d = release.spec.deployment
    return f"http://{service_name(release)}.{d.namespace}.svc.cluster.local/v1"


def lambda_agent(release: ModelRelease) -> dict:
    """The agent-sre LambdaAgent: ``spec.ai`` (no ``spec.llm`` in the CRD) with provider openai."""
    d = release.spec.deployment
    a = d.agent
    return {
        "apiVersion": "lambda.knative.io/v1alpha1",
        "kind": "LambdaAgent",
        "metadata": {"name": a.name, "namespace": d.namespace, "labels": _labels(release, "ai-agent")},
        "spec": {
            "image": {"repository": a.image_repository, "tag": a.image_tag, "port": a.image_port},
            "ai": {
                "provider": "openai",
                "endpoint": endpoint(release),
                "model": served_model_name(release),
                "maxTokens": a.max_tokens,
                "temperature": repr(float(a.temperature)),  # the CRD types it as a string
            },
            "operationMode": a.operation_mode,
            "env": [
                {"name": "MODEL_NAME", "value": served_model_name(release)},
                {"name": "MODEL_BACKEND", "value": "openai"},
            ],
            "scaling": {
                "minReplicas": d.scaling.min_replicas,
                "maxReplicas": d.scaling.max_replicas,
                "targetConcurrency": d.scaling.target_concurrency,
            },
        },
    }


def prometheus_rule(release: ModelRelease) -> dict:
    """The alert raised when ``sre-llm rollout`` rolls a challenger back (it sets the metric)."""
    name = release.metadata.name
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": f"{name}-rollout", "namespace": release.spec.deployment.namespace,
                     "labels": _labels(release, "alerting")},
        "spec": {
            "groups": [{
                "name": f"sre-llm-rollout-{name}",
                "interval": "30s",
                "rules": [{
                    "alert": ROLLBACK_ALERT,
                    "expr": f'max by (model, version) ({ROLLBACK_METRIC}{{model="{name}"}}) > 0',
                    "labels": {"severity": "warning", "model": name},
                    "annotations": {
                        "summary": f"{name}: challenger {{{{ $labels.version }}}} was rolled back",
                        "description": (
                            "sre-llm rollout analysis failed its checks too often; all traffic went back "
                            "to the champion. See the rollback commit and rollouts/" + name + "/analysis.json."
                        ),
                    },
                }],
            }],
        },
    }


def rollout_dir(release: ModelRelease) -> str:
    return f"{ROLLOUTS_DIR}/{release.metadata.name}"


def flux_kustomization(release: ModelRelease, root: str) -> dict:
    """Flux applies the base with the rollout component; a missing component (no rollout yet) is
    allowed, and then the base's own split (100 % to the spec's version) holds."""
    name = release.metadata.name
    path = f"{root.strip('/')}/{name}/k8s"
    component = posixpath.relpath(rollout_dir(release), path) if not root.startswith("/") else f"../../../{rollout_dir(release)}"
    d = release.spec.deployment
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": f"sre-llm-{name}", "namespace": FLUX_NAMESPACE, "labels": _labels(release, "delivery")},
        "spec": {
            "interval": d.flux_interval,
            "path": f"./{path}" if not root.startswith("/") else path,
            "prune": True,
            "sourceRef": {"kind": "GitRepository", "name": d.flux_source},
            "components": [component],
            "ignoreMissingComponents": True,
            "wait": True,
            "timeout": "10m",
        },
    }


def kustomization() -> dict:
    return {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["serving.yaml", "agent.yaml", "prometheusrule.yaml"],
    }


def render_manifests(
    spec: LoadedSpec,
    root: str = "rendered",
    champion: str | None = None,
    challenger: str | None = None,
    challenger_percent: int = 0,
) -> list[RenderedFile]:
    """The k8s tree of one release. Traffic comes in as plain values (pure); without a champion
    the spec's version takes 100 %. A split that does not sum to 100 raises BadInput (exit 2)."""
    release = spec.release
    header = f"# Generated by sre-llm from {spec_label(spec.path)} — do not edit.\n"
    split = tr.split(champion or release.metadata.version, challenger, challenger_percent)
    base = f"{root}/{release.metadata.name}/k8s"
    docs = {
        "serving.yaml": serving_service(release, split),
        "agent.yaml": lambda_agent(release),
        "prometheusrule.yaml": prometheus_rule(release),
        "kustomization.yaml": kustomization(),
        "flux-kustomization.yaml": flux_kustomization(release, root),
    }
    return [RenderedFile(f"{base}/{name}", dump(doc, header)) for name, doc in docs.items()]
