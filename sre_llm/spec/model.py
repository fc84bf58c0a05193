"""The ``model-release.yaml`` spec: pydantic models, strict and documented on the field.

Field descriptions feed ``--help``, the JSON Schema (``sre-llm schema``) and the README's spec
reference. Checks that span several fields live in :mod:`sre_llm.spec.rules`.
"""


from typing import Annotated, Literal, Optional, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from sre_llm.answer.references import ANSWER_FORMATS, DEFAULT_ANSWER_FORMAT
from sre_llm.spec.access import CollectorSpec, NetworkSpec, RetentionSpec, SecretKeySpec
from sre_llm.spec.cluster import ClusterSpec
from sre_llm.spec.deployment import ArtifactSpec, PodSpec
from sre_llm.spec.registry import FAMILIES, OPTIMIZERS, SCHEDULERS
from sre_llm.spec.retrain import RetrainSpec
from sre_llm.spec.safety import Engine, SafetySpec, ShadowSpec
from sre_llm.spec.types import AgeRecipient, DnsName, Duration, K8sLabels, Regex, SecretRef, SemVer

API_VERSION = "sre-llm/v1"
KIND = "ModelRelease"

Family = Literal[tuple(FAMILIES)]  # type: ignore[valid-type]
Optimizer = Literal[OPTIMIZERS]  # type: ignore[valid-type]
Scheduler = Literal[SCHEDULERS]  # type: ignore[valid-type]
Fraction = Annotated[float, Field(ge=0, le=1)]
AnswerFormat = Literal[ANSWER_FORMATS]  # type: ignore[valid-type]


class Strict(BaseModel):
    """Unknown keys are errors; validated specs are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True)


# ── metadata ────────────────────────────────────────────────────────────────────────────────────


class Metadata(Strict):
    name: DnsName = Field(description="Release name (DNS-1123); names rendered/<name>/ and the registry entry.")
    version: SemVer = Field(description="Semantic version of the model this spec releases, e.g. 1.0.0.")
    description: str = Field("", description="Free text for people reading the registry.")
    owner: Optional[str] = Field(None, description="Team or person that owns the release.")
    labels: K8sLabels = Field(
        default_factory=dict, description="Labels copied onto rendered manifests (Kubernetes label keys and values)."
    )


# ── base model ──────────────────────────────────────────────────────────────────────────────────


class BaseModelSpec(Strict):
    name: Optional[str] = Field(
        None, description="Hugging Face hub id of the base model (e.g. Qwen/Qwen2-7B); exclusive with path."
    )
    path: Optional[str] = Field(None, description="Local directory holding the base model; exclusive with name.")
    revision: Optional[str] = Field(
        None, description="Pinned hub revision (commit hash or tag) for a hub model; branches are refused."
    )
    family: Family = Field(description="Architecture family; chooses LLaMA Factory's chat template.")
    template: Optional[str] = Field(
        None, description="LLaMA Factory template; derived from family, and must agree with it when given."
    )
    builtin: Optional[Literal["tiny"]] = Field(
        None, description="Build this base model at path with `sre-llm base-model tiny` when it is missing (CPU demo)."
    )
    trust_remote_code: bool = Field(False, description="Allow the model repo's own Python code to run (trust_remote_code).")


# ── dataset ─────────────────────────────────────────────────────────────────────────────────────


class PrometheusSource(Strict):
    type: Literal["prometheus"] = Field(description="Source kind.")
    url: str = Field(description="Prometheus base URL, e.g. http://prometheus.monitoring:9090.")
    query: str = Field('ALERTS{alertstate="firing"}', description="PromQL selector of firing alerts (query_range).")
    lookback: Duration = Field("30d", description="How far back to read alert history.")
    step: Duration = Field("1m", description="query_range resolution.")
    bearer_token: Optional[SecretRef] = Field(None, description="Bearer token reference (env:NAME or file:PATH).")


class AlertmanagerSource(Strict):
    type: Literal["alertmanager"] = Field(description="Source kind.")
    store: str = Field(description="Directory where `sre-llm collect serve` appends received webhook payloads.")
    listen: str = Field("127.0.0.1:9095", description="host:port the webhook receiver listens on.")
    bearer_token: Optional[SecretRef] = Field(None, description="Token Alertmanager must present (env:/file: reference).")
    tls_cert: Optional[str] = Field(None, description="TLS certificate file for the receiver.")
    tls_key: Optional[SecretRef] = Field(None, description="TLS private key reference (file:PATH).")


class RunbookSource(Strict):
    type: Literal["runbook"] = Field(description="Source kind.")
    path: str = Field(description="JSONL file or glob of agent-sre action logs.")


class LinearSource(Strict):
    type: Literal["linear"] = Field(description="Source kind.")
    url: str = Field("https://api.linear.app/graphql", description="Linear GraphQL endpoint.")
    token: SecretRef = Field(description="API key reference (env:NAME or file:PATH).")
    team: Optional[str] = Field(None, description="Team key to read issues from (all teams when empty).")
    lookback: Duration = Field("90d", description="Completed issues newer than this are read.")


class GitSource(Strict):
    type: Literal["git"] = Field(description="Source kind.")
    repo: str = Field(description="Path to a local clone of the infrastructure repository.")
    paths: list[str] = Field(default_factory=lambda: ["."], description="Paths whose merged changes count.")
    branch: str = Field("main", description="Branch to read merged commits from.")
    lookback: Duration = Field("90d", description="Commits newer than this are read.")


class LabelsSource(Strict):
    type: Literal["labels"] = Field(description="Source kind.")
    path: str = Field(
        description="CSV or JSONL file (or glob) of labels a person filled in, e.g. the output of "
        "`sre-llm dataset unlabelled`: per row `fingerprint` (with `startsAt` for one firing, without for "
        "every firing of that label set) or `alertname` + `namespace` + `startsAt`, then `lambda_function` "
        "(`none` = no action was needed) and `lambda_parameters` (a JSON object). Rows with an empty "
        "`lambda_function` are skipped. The strongest evidence: it wins over actions and annotations."
    )


class SyntheticSource(Strict):
    type: Literal["synthetic"] = Field(description="Source kind.")
    count: int = Field(2000, gt=0, le=1_000_000, description="Number of synthetic alerts to generate.")
    seed: int = Field(0, ge=0, description="Random seed; the same seed gives the same corpus.")


Source = Annotated[
    Union[PrometheusSource, AlertmanagerSource, RunbookSource, LinearSource, GitSource, LabelsSource, SyntheticSource],
    Field(discriminator="type"),
]


class SplitSpec(Strict):
    train: Fraction = Field(0.8, description="Fraction of incidents in the training split.")
    validation: Fraction = Field(0.1, description="Fraction of incidents in the validation split.")
    test: Fraction = Field(0.1, description="Fraction of incidents in the held-out test split.")


class RedactionSpec(Strict):
    secrets: bool = Field(True, description="Redact tokens, keys and passwords.")
    url_credentials: bool = Field(True, description="Redact user:password@ in URLs.")
    emails: bool = Field(True, description="Redact e-mail addresses.")
    ips: bool = Field(True, description="Redact IPv4/IPv6 addresses.")
    extra_patterns: list[Regex] = Field(default_factory=list, description="More regular expressions to redact.")


class EncryptionSpec(Strict):
    recipients: list[AgeRecipient] = Field(min_length=1, description="age recipients the dataset is encrypted to.")
    identity: SecretRef = Field(description="age identity used to decrypt for training (env:/file: reference).")


class AugmentationSpec(Strict):
    random_values: Fraction = Field(
        0.0,
        description="Fraction of training examples whose copied parameter values are swapped for random ones of the "
        "same shape (teaches copying over remembering names; validation/test untouched).",
    )
    seed: int = Field(0, ge=0, description="Seed for choosing and rewriting the augmented examples.")


class LabellingSpec(Strict):
    self_resolve_window: Optional[Duration] = Field(
        "15m",
        description="An alert that ended (a resolved notification or an `endsAt`) within this long of its "
        "`startsAt`, with no action recorded and no label or annotation, is a `none` example (it resolved "
        "on its own). Alerts with no evidence at all are unlabelled: never trained or evaluated on, counted "
        "on the card and listed by `sre-llm dataset unlabelled`. Empty: resolving is never evidence.",
    )


class DatasetSpec(Strict):
    name: DnsName = Field("sre-remediation", description="Dataset name; files go to datasets/<name>/<digest>/.")
    sources: list[Source] = Field(
        default_factory=lambda: [SyntheticSource(type="synthetic")], min_length=1, description="Where examples come from."
    )
    split: SplitSpec = Field(default_factory=SplitSpec, description="Split by incident; fractions sum to 1.")
    min_examples: int = Field(1000, gt=0, description="Refuse to train on fewer examples.")
    max_examples: int = Field(100_000, gt=0, description="Keep at most this many examples (newest first).")
    include_failed: bool = Field(False, description="Train on remediations that failed (marked) as well.")
    labelling: LabellingSpec = Field(
        default_factory=LabellingSpec, description="What counts as evidence of the right answer (see docs/dataset.md)."
    )
    redaction: RedactionSpec = Field(default_factory=RedactionSpec, description="What is redacted before writing.")
    encryption: Optional[EncryptionSpec] = Field(None, description="Encrypt dataset files at rest with age.")
    retention: RetentionSpec = Field(
        default_factory=RetentionSpec, description="How long raw payloads and built datasets are kept (`sre-llm dataset prune`)."
    )
    augmentation: AugmentationSpec = Field(
        default_factory=AugmentationSpec, description="Training-only augmentation (off by default)."
    )
    answer_format: AnswerFormat = Field(
        DEFAULT_ANSWER_FORMAT,
        description="How answers name parameter values. `labelref-v1`: each string value an alert label carries is "
        "written as agent-sre's template `{{ $labels.NAME }}` (measured: held-out parameter accuracy 0.84 after half "
        "an epoch, against 0.356 after five epochs on literal values); `literal-v1`: the values themselves. Recorded "
        "in run.json and the registry lineage; eval and the gateway expand references with the alert's labels.",
    )


# ── training ────────────────────────────────────────────────────────────────────────────────────


class LoraSpec(Strict):
    rank: int = Field(8, gt=0, le=1024, description="LoRA rank (lora_rank).")
    alpha: Optional[int] = Field(None, gt=0, description="LoRA alpha (lora_alpha); 2 × rank when empty.")
    dropout: float = Field(0.05, ge=0, lt=1, description="LoRA dropout (lora_dropout).")
    targets: list[str] = Field(
        default_factory=lambda: ["all"], min_length=1, description="Modules to adapt (lora_target); `all` = every linear."
    )


class QuantizationSpec(Strict):
    bits: int = Field(4, description="Weight quantization of the frozen base for QLoRA: 4 or 8 (quantization_bit).")
    type: Literal["nf4", "fp4"] = Field("nf4", description="4-bit data type (quantization_type).")
    double_quantization: bool = Field(True, description="Quantize the quantization constants (double_quantization).")


class BadamSpec(Strict):
    mode: Literal["layer", "ratio"] = Field("layer", description="Block-coordinate mode (badam_mode).")
    switch_mode: Literal["ascending", "descending", "random", "fixed"] = Field(
        "ascending", description="Order blocks are updated in (badam_switch_mode)."
    )
    switch_interval: int = Field(50, gt=0, description="Steps between block switches (badam_switch_interval).")
    update_ratio: float = Field(0.05, gt=0, le=1, description="Fraction updated in ratio mode (badam_update_ratio).")


class DistributedSpec(Strict):
    nodes: int = Field(1, ge=1, description="Number of machines (NNODES).")
    gpus_per_node: int = Field(1, ge=1, description="GPUs used on each machine (NPROC_PER_NODE).")
    deepspeed_stage: Literal[0, 2, 3] = Field(0, description="DeepSpeed ZeRO stage; 0 = no DeepSpeed.")
    offload: bool = Field(False, description="Offload optimizer state (and ZeRO-3 parameters) to CPU memory.")
    master_addr: str = Field("127.0.0.1", description="Address of node 0 (MASTER_ADDR).")
    master_port: int = Field(29500, ge=1024, le=65535, description="Rendezvous port (MASTER_PORT).")


class TrainingSpec(Strict):
    method: Literal["lora", "qlora", "full"] = Field("lora", description="lora, qlora (LoRA on a quantized base) or full.")
    lora: Optional[LoraSpec] = Field(None, description="LoRA settings (lora and qlora); defaults when empty.")
    quantization: Optional[QuantizationSpec] = Field(None, description="Base-model quantization; qlora only.")
    badam: Optional[BadamSpec] = Field(None, description="Use BAdam (block-coordinate Adam); method full only.")
    learning_rate: float = Field(2e-4, gt=0, le=1, description="Peak learning rate.")
    batch_size: int = Field(8, gt=0, description="Per-device train batch size.")
    gradient_accumulation: int = Field(4, gt=0, description="Gradient accumulation steps.")
    epochs: float = Field(3.0, gt=0, le=1000, description="Training epochs (num_train_epochs).")
    max_steps: Optional[int] = Field(None, gt=0, description="Stop after this many optimizer steps (overrides epochs).")
    warmup_steps: Optional[int] = Field(None, ge=0, description="Warm-up steps; exclusive with warmup_ratio.")
    warmup_ratio: Optional[float] = Field(None, ge=0, lt=1, description="Warm-up as a fraction of all steps.")
    scheduler: Scheduler = Field("cosine", description="Learning-rate schedule (lr_scheduler_type).")
    optimizer: Optimizer = Field("adamw_torch", description="Optimizer (optim), a transformers OptimizerNames value.")
    weight_decay: float = Field(0.0, ge=0, le=1, description="Weight decay.")
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient clipping norm.")
    seed: int = Field(42, ge=0, description="Random seed for data order and initialisation.")
    cutoff_len: int = Field(1024, gt=0, le=131072, description="Maximum tokens per example (cutoff_len).")
    precision: Literal["bf16", "fp16", "fp32"] = Field("bf16", description="Training precision.")
    device: Literal["cuda", "cpu"] = Field("cuda", description="Train on GPUs (cuda) or on the CPU (use_cpu).")
    gradient_checkpointing: bool = Field(True, description="Trade compute for memory.")
    flash_attn: Literal["auto", "disabled", "sdpa", "fa2"] = Field("auto", description="Attention kernel.")
    logging_steps: int = Field(10, gt=0, description="Log loss every N steps.")
    save_steps: int = Field(500, gt=0, description="Checkpoint every N steps.")
    eval_steps: int = Field(500, gt=0, description="Evaluate the validation split every N steps.")
    eval_batch_size: int = Field(8, gt=0, description="Per-device evaluation batch size.")
    preprocessing_workers: int = Field(1, gt=0, le=256, description="Processes used to tokenize the dataset.")
    distributed: DistributedSpec = Field(default_factory=DistributedSpec, description="Several GPUs or nodes.")
    cluster: Optional[ClusterSpec] = Field(
        None, description="Train on Kubernetes through Kubeflow (`sre-llm train --cluster`); see docs/cluster-training.md."
    )


# ── evaluation ──────────────────────────────────────────────────────────────────────────────────


class GatesSpec(Strict):
    remediation_accuracy: float = Field(0.90, gt=0, le=1, description="Minimum share of right LambdaFunction choices.")
    parameter_accuracy: float = Field(0.95, gt=0, le=1, description="Minimum share of right function + parameters.")
    false_positive_rate: float = Field(0.05, ge=0, lt=1, description="Maximum share of actions where none was right.")
    p95_latency_ms: float = Field(500, gt=0, le=600_000, description="Maximum P95 inference latency (milliseconds).")


class EvaluationSpec(Strict):
    gates: GatesSpec = Field(default_factory=GatesSpec, description="Promotion gates; all must pass.")
    min_test_examples: int = Field(100, gt=0, description="Refuse to score on a smaller test split.")
    batch_size: int = Field(16, gt=0, le=4096, description="Examples generated per batch.")
    max_new_tokens: int = Field(128, gt=0, le=8192, description="Generation budget per answer.")
    adversarial: bool = Field(True, description="Also run the adversarial (prompt-injection) suite.")
    baseline: Literal["base", "champion", "none"] = Field("base", description="What the report compares against.")
    grounding: bool = Field(
        True,
        description="Also decode grounded (only catalog functions, the alert's labels and numbers, the canonical "
        "form: what the gateway serves) and judge the gates on those answers; raw figures are reported beside them.",
    )


# ── deployment ──────────────────────────────────────────────────────────────────────────────────


class ScalingSpec(Strict):
    min_replicas: int = Field(1, ge=0, le=1000, description="Knative min-scale of the serving revision.")
    max_replicas: int = Field(5, ge=1, le=1000, description="Knative max-scale of the serving revision.")
    target_concurrency: int = Field(10, gt=0, description="Requests in flight per replica before scaling out.")


class AbTestSpec(Strict):
    percent: int = Field(50, gt=0, lt=100, description="Traffic share of the challenger during the A/B test.")
    duration: Duration = Field("1h", description="How long the A/B test runs before the rollout starts.")


class RollbackSpec(Strict):
    min_success_rate: float = Field(0.90, ge=0, le=1, description="Roll back below this remediation success rate.")
    max_error_rate: float = Field(0.05, ge=0, le=1, description="Roll back above this request error rate.")
    max_p95_latency_ms: float = Field(500, gt=0, description="Roll back above this P95 latency.")
    failure_threshold: int = Field(3, gt=0, description="Failed analyses before an automatic rollback.")
    min_samples: int = Field(100, gt=0, description="No decision before each arm has this many requests and remediations.")
    significance: float = Field(
        0.05, gt=0, lt=1,
        description="One-sided p-value below which the challenger counts as worse than the champion (two-proportion z-test).",
    )


def _promql(value: str) -> str:
    # Each query is run once per arm with $revision replaced; without it both arms read the same series.
    if "$revision" not in value:
        raise PydanticCustomError("promql", "must select by revision: write $revision where the revision name goes")
    return value


PromQL = Annotated[str, AfterValidator(_promql)]


class AnalysisQueriesSpec(Strict):
    """PromQL run per arm: ``$revision`` is the Knative revision, ``$namespace`` the namespace,
    ``$window`` the analysis window. Counts are totals over the window (the two-proportion test
    needs counts, not rates). The defaults read what this system emits: the gateway's metrics
    (labelled with its revision) and the collector's outcome counters (the gateway reports each
    decision's revision; Alertmanager's ``resolved`` notification closes it)."""

    requests: PromQL = Field(
        'sum(increase(sre_llm_gateway_requests_total{namespace="$namespace",revision="$revision",protocol!="ops"}[$window]))',
        description="Requests the revision's gateway answered in the window.",
    )
    errors: PromQL = Field(
        'sum(increase(sre_llm_gateway_requests_total{namespace="$namespace",revision="$revision",protocol!="ops",status=~"5.."}[$window]))',
        description="Requests that failed (5xx) in the window.",
    )
    p95_latency_ms: PromQL = Field(
        '1000 * histogram_quantile(0.95, sum by (le) (rate(sre_llm_gateway_request_duration_seconds_bucket{namespace="$namespace",revision="$revision",protocol!="ops"}[$window])))',
        description="P95 request latency in milliseconds.",
    )
    remediations: PromQL = Field(
        'sum(increase(sre_llm_remediation_outcomes_total{namespace="$namespace",revision="$revision",function!="none"}[$window]))',
        description="Remediations decided by this revision whose outcome the collector knows, in the window.",
    )
    remediation_successes: PromQL = Field(
        'sum(increase(sre_llm_remediation_outcomes_total{namespace="$namespace",revision="$revision",function!="none",outcome="resolved"}[$window]))',
        description="Of those, remediations after which the alert resolved within the outcome window.",
    )
    shadow_decisions: PromQL = Field(
        'sum(increase(sre_llm_shadow_decisions_total{namespace="$namespace",shadow_revision="$revision"}[$window]))',
        description="Shadow stage: live requests this revision answered in shadow (counted by the champion's gateway).",
    )
    shadow_agreements: PromQL = Field(
        'sum(increase(sre_llm_shadow_decisions_total{namespace="$namespace",shadow_revision="$revision",agree="true"}[$window]))',
        description="Shadow stage: of those, answers equal to the champion's (function and parameters).",
    )


class AnalysisSpec(Strict):
    window: Duration = Field("5m", description="Range the queries look back over ($window).")
    prometheus_url: str = Field(
        "http://prometheus-operated.monitoring:9090", pattern=r"^https?://\S+$",
        description="Prometheus the in-cluster analysis reads (Flagger's MetricTemplates, the gitops CronJob).",
    )
    queries: AnalysisQueriesSpec = Field(default_factory=AnalysisQueriesSpec, description="PromQL per metric, per arm.")


class RolloutSpec(Strict):
    engine: Engine = Field(
        "flagger", description="flagger: a Flagger Canary owns the traffic split (the Service carries no traffic); "
        "gitops: sre-llm's commit-per-stage engine, run by a rendered CronJob.")
    shadow: Optional[ShadowSpec] = Field(
        default_factory=ShadowSpec, description="First stage: the challenger answers copies of live requests, compared, never acted on.")
    ab_test: Optional[AbTestSpec] = Field(default_factory=AbTestSpec, description="A/B test before the rollout.")
    steps: list[Annotated[int, Field(gt=0, le=100)]] = Field(
        default_factory=lambda: [10, 50, 100], min_length=1, description="Challenger traffic per step, ending at 100."
    )
    step_duration: Duration = Field("30m", description="Time at each step before analysis.")
    analysis_interval: Duration = Field("5m", description="How often metrics are checked.")
    rollback: RollbackSpec = Field(default_factory=RollbackSpec, description="Automatic rollback thresholds.")
    analysis: AnalysisSpec = Field(default_factory=AnalysisSpec, description="Prometheus queries read per arm.")


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


# ── signing ─────────────────────────────────────────────────────────────────────────────────────

_FINGERPRINT_HEX = frozenset("0123456789abcdef")


def _fingerprint(value: str) -> str:
    algo, _, hexed = value.partition(":")
    if algo != "sha256" or len(hexed) != 64 or not set(hexed) <= _FINGERPRINT_HEX:
        raise PydanticCustomError(
            "fingerprint",
            "must be a public key fingerprint sha256:<64 lower-case hex digits>, as `sre-llm registry keygen` "
            "prints (got {got})",
            {"got": repr(value)},
        )
    return value


KeyFingerprint = Annotated[str, AfterValidator(_fingerprint)]


class SigningSpec(Strict):
    method: Literal["key", "certificate", "sigstore"] = Field("key", description="OpenSSF model-signing method.")
    private_key: Optional[SecretRef] = Field(None, description="Private key (PEM) reference for key / certificate.")
    public_key: Optional[str] = Field(None, description="Public key (PEM) path used by verify for the key method.")
    certificate_chain: list[str] = Field(default_factory=list, description="Certificate files, signing cert first.")
    identity: Optional[str] = Field(None, description="Expected signer identity (sigstore).")
    oidc_issuer: Optional[str] = Field(None, description="Expected OIDC issuer (sigstore).")
    trusted_keys: list[KeyFingerprint] = Field(
        default_factory=list,
        description="The signers this release trusts: fingerprints (sha256 of the public key PEM, "
        "`sha256:<hex>`) of the keys (key method) or signing certificates' keys (certificate method) "
        "whose signatures `registry verify`, `promote` and `pull --verify` accept; any other signer is "
        "refused, naming its fingerprint. Empty: the key method trusts only public_key's fingerprint; "
        "sigstore signers are pinned by identity + oidc_issuer.",
    )


# ── CI ──────────────────────────────────────────────────────────────────────────────────────────


class CISpec(Strict):
    """What the pull-request, release and retrain workflows need to know that the rest does not say
    (read by `sre-llm plan --json`, so a workflow never parses the spec itself)."""

    runner: list[str] = Field(
        default_factory=list,
        description="runs-on labels of the job that trains, evaluates and registers in CI. Empty: "
        "`ubuntu-24.04` (GitHub-hosted) for training.device cpu, `[self-hosted, linux, x64, gpu]` for cuda.",
    )
    gpu_hour_cost: Optional[float] = Field(
        None, ge=0, description="Price of one GPU-hour; `sre-llm plan` multiplies the GPU-hours of the runs on record by it."
    )
    currency: str = Field("USD", min_length=1, max_length=8, description="Currency of gpu_hour_cost, as shown in the plan.")
    review: bool = Field(
        False,
        description="Promotion needs a person: on merge the release workflow opens a promotion pull request instead "
        "of promoting the registered version itself.",
    )


# ── the release ─────────────────────────────────────────────────────────────────────────────────


class ReleaseSpec(Strict):
    base_model: BaseModelSpec = Field(description="The model to fine-tune.")
    dataset: DatasetSpec = Field(default_factory=DatasetSpec, description="Where training data comes from.")
    training: TrainingSpec = Field(default_factory=TrainingSpec, description="How to fine-tune.")
    evaluation: EvaluationSpec = Field(default_factory=EvaluationSpec, description="Gates a model must pass.")
    deployment: DeploymentSpec = Field(default_factory=DeploymentSpec, description="Serving and rollout.")
    signing: SigningSpec = Field(default_factory=SigningSpec, description="How artifacts are signed.")
    ci: CISpec = Field(default_factory=CISpec, description="How CI trains, prices and promotes this release.")
    retrain: Optional[RetrainSpec] = Field(
        None, description="Continuous learning (`sre-llm retrain`) and the loop's health dashboard and alerts; "
        "empty: retrain uses the defaults and no dashboard is rendered.",
    )


class ModelRelease(Strict):
    """A model release: everything needed to build, judge and ship one model version."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True, title="ModelRelease")

    api_version: Literal["sre-llm/v1"] = Field(alias="apiVersion", description="Always sre-llm/v1.")
    kind: Literal["ModelRelease"] = Field(description="Always ModelRelease.")
    metadata: Metadata = Field(description="Name and version of the release.")
    spec: ReleaseSpec = Field(description="What to train, on what, how to judge and ship it.")
