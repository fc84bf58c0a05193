"""Spec section ``deployment``: the serving Service (gateway + vLLM), its scaling, the agent-sre
LambdaAgent that uses it, and where each of the other deployment sections hangs.
"""


from typing import Literal, Optional

from pydantic import Field

from sre_llm.spec.access import CollectorSpec, NetworkSpec, SecretKeySpec
from sre_llm.spec.deployment import ArtifactSpec, PodSpec
from sre_llm.spec.rollout import RolloutSpec
from sre_llm.spec.safety import SafetySpec
from sre_llm.spec.strict import Strict
from sre_llm.spec.types import DnsName, Duration, K8sLabels


class ScalingSpec(Strict):
    min_replicas: int = Field(1, ge=0, le=1000, description="Knative min-scale of the serving revision.")
    max_replicas: int = Field(5, ge=1, le=1000, description="Knative max-scale of the serving revision.")
    target_concurrency: int = Field(10, gt=0, description="Requests in flight per replica before scaling out.")


class AgentSpec(Strict):
    name: DnsName = Field("agent-sre", description="Name of the agent-sre LambdaAgent.")
    namespace: DnsName = Field("ai", description="Namespace of the agent-sre LambdaAgent (the team's).")
    manage: Literal["patch", "own"] = Field(
        "patch",
        description=(
            "patch: the team keeps its LambdaAgent; sre-llm renders a Kustomize component "
            "(rendered/<name>/agent-patch/) that points it at the gateway. own: sre-llm renders the whole LambdaAgent."
        ),
    )
    max_tokens: int = Field(512, gt=0, le=32768, description="maxTokens the agent asks for.")
    temperature: float = Field(0.0, ge=0, le=2, description="Sampling temperature (rendered as a string).")
    image_repository: str = Field("localhost:5001/agent-sre", description="agent-sre container image repository.")
    image_tag: str = Field("v0.5.15", description="agent-sre container image tag.")
    image_port: int = Field(8000, ge=1, le=65535, description="Port the agent-sre container listens on.")
    operation_mode: Literal["agentic", "supervised"] = Field(
        "agentic", description="agentic runs remediations itself; supervised waits for approval."
    )


class DeploymentSpec(Strict):
    namespace: DnsName = Field(
        "sre-llm", description="Namespace sre-llm owns: the serving Service (gateway + vLLM) and its alert rule."
    )
    create_namespace: bool = Field(
        False, description="Render the Namespace object too (one release per namespace may; others share it)."
    )
    engine: Literal["vllm"] = Field("vllm", description="Serving engine (OpenAI-compatible).")
    image: Optional[str] = Field(
        None, pattern=r"^\S+$",
        description="vLLM image, best pinned by digest (IMAGE:TAG@sha256:…; a render warning otherwise). Empty: "
        "vllm/vllm-openai:v0.32.0 with GPUs, vLLM's CPU image of the same release with gpus 0.",
    )
    gpus: int = Field(1, ge=0, le=16, description="GPUs per serving replica.")
    max_model_len: int = Field(4096, gt=0, description="vLLM --max-model-len.")
    serve_adapter: bool = Field(False, description="Serve base + LoRA adapter (--enable-lora) instead of merged weights.")
    port: int = Field(8000, ge=1, le=65535, description="Port of vLLM's OpenAI-compatible server, on the pod's localhost only.")
    gateway_image: str = Field(
        "ghcr.io/sre-llm/sre-llm:0.2.0", pattern=r"^\S+$",
        description="The sre-llm image (docker/sre-llm.Dockerfile): the gateway, the serving container agent-sre "
        "talks to, which also pulls and verifies the model. Best pinned by digest (a render warning otherwise).",
    )
    gateway_port: int = Field(8080, ge=1, le=65535, description="Port of the gateway, the serving port of the pod.")
    artifact: Optional[ArtifactSpec] = Field(
        None, description="Where the pod pulls the served version from (OCI, by digest) and verifies it before vLLM starts.")
    pod: PodSpec = Field(default_factory=PodSpec, description="Resources, placement, extra env and Knative feature flags.")
    model_mount_path: str = Field(
        "/models", pattern=r"^/\S*$",
        description="Where the pulled model lives in the pod (an emptyDir): <mount>/<name>/<version>/model.")
    flux_source: DnsName = Field("flux-system", description="Flux GitRepository (in flux-system) holding this repository.")
    flux_interval: Duration = Field("5m", description="How often Flux reconciles the rendered tree.")
    flux_depends_on: list[DnsName] = Field(
        default_factory=list, description="Flux Kustomizations (in flux-system) applied first: those installing Knative "
        "Serving and the Prometheus operator's CRDs.")
    rule_labels: K8sLabels = Field(
        default_factory=lambda: {"release": "kube-prometheus-stack"},
        description="Labels the PrometheusRule carries so Prometheus selects it (kube-prometheus-stack's "
        "ruleSelector matches release: <its Helm release name>).")
    scaling: ScalingSpec = Field(default_factory=ScalingSpec, description="Replica bounds.")
    rollout: RolloutSpec = Field(default_factory=RolloutSpec, description="A/B test and progressive rollout.")
    agent: AgentSpec = Field(default_factory=AgentSpec, description="The agent-sre LambdaAgent that uses the model.")
    safety: SafetySpec = Field(default_factory=SafetySpec, description="Policy, rate limits and kill switch the gateway enforces.")
    network: NetworkSpec = Field(default_factory=NetworkSpec, description="Who the rendered NetworkPolicies admit.")
    mesh: Optional[Literal["istio"]] = Field(None, description="Service mesh in the namespace: istio renders AuthorizationPolicies too.")
    gateway_token: Optional[SecretKeySpec] = Field(
        None, description="Secret with the bearer token OpenAI-style clients present to the gateway (env SRE_LLM_GATEWAY_TOKEN).")
    collector: Optional[CollectorSpec] = Field(
        None, description="Run `sre-llm collect serve` in the cluster (rendered too whenever a source is alertmanager).")
