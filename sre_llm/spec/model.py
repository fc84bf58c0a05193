"""The ``model-release.yaml`` spec: pydantic models, strict and documented on the field.

Field descriptions feed ``--help``, the JSON Schema (``sre-llm schema``) and the README's spec
reference. Checks that span several fields live in :mod:`sre_llm.spec.rules`.

This module is the top of the spec (metadata, base model, the release); each stage's section lives
in its own module (``sources``, ``dataset``, ``training``, ``evaluation``, ``serving``, ``rollout``,
``signing``, ``cluster``, ``deployment``, ``safety``, ``access``, ``retrain``) and is re-exported
here by name, so ``from sre_llm.spec.model import X`` works for every section.
"""


from typing import Literal, Optional

from pydantic import ConfigDict, Field

from sre_llm.spec.access import CollectorSpec, NetworkSpec, RetentionSpec, SecretKeySpec
from sre_llm.spec.cluster import ClusterSpec
from sre_llm.spec.dataset import (
    AnswerFormat,
    AugmentationSpec,
    DatasetSpec,
    EncryptionSpec,
    LabellingSpec,
    RedactionSpec,
    SplitSpec,
)
from sre_llm.spec.deployment import ArtifactSpec, PodSpec
from sre_llm.spec.evaluation import EvaluationSpec, GatesSpec
from sre_llm.spec.registry import FAMILIES
from sre_llm.spec.retrain import RetrainSpec
from sre_llm.spec.rollout import (
    AbTestSpec,
    AnalysisQueriesSpec,
    AnalysisSpec,
    PromQL,
    RollbackSpec,
    RolloutSpec,
)
from sre_llm.spec.safety import Engine, SafetySpec, ShadowSpec
from sre_llm.spec.serving import AgentSpec, DeploymentSpec, ScalingSpec
from sre_llm.spec.signing import CISpec, KeyFingerprint, SigningSpec
from sre_llm.spec.sources import (
    AlertmanagerSource,
    GitSource,
    LabelsSource,
    LinearSource,
    PrometheusSource,
    RunbookSource,
    Source,
    SyntheticSource,
)
from sre_llm.spec.strict import Fraction, Strict
from sre_llm.spec.training import (
    BadamSpec,
    DistributedSpec,
    LoraSpec,
    Optimizer,
    QuantizationSpec,
    Scheduler,
    TrainingSpec,
)
from sre_llm.spec.types import DnsName, K8sLabels, SemVer

__all__ = [
    "API_VERSION",
    "KIND",
    "AbTestSpec",
    "AgentSpec",
    "AlertmanagerSource",
    "AnalysisQueriesSpec",
    "AnalysisSpec",
    "AnswerFormat",
    "ArtifactSpec",
    "AugmentationSpec",
    "BadamSpec",
    "BaseModelSpec",
    "CISpec",
    "ClusterSpec",
    "CollectorSpec",
    "DatasetSpec",
    "DeploymentSpec",
    "DistributedSpec",
    "EncryptionSpec",
    "Engine",
    "EvaluationSpec",
    "Family",
    "Fraction",
    "GatesSpec",
    "GitSource",
    "KeyFingerprint",
    "LabellingSpec",
    "LabelsSource",
    "LinearSource",
    "LoraSpec",
    "Metadata",
    "ModelRelease",
    "NetworkSpec",
    "Optimizer",
    "PodSpec",
    "PromQL",
    "PrometheusSource",
    "QuantizationSpec",
    "RedactionSpec",
    "ReleaseSpec",
    "RetentionSpec",
    "RetrainSpec",
    "RollbackSpec",
    "RolloutSpec",
    "RunbookSource",
    "SafetySpec",
    "ScalingSpec",
    "Scheduler",
    "SecretKeySpec",
    "ShadowSpec",
    "SigningSpec",
    "Source",
    "SplitSpec",
    "Strict",
    "SyntheticSource",
    "TrainingSpec",
]

API_VERSION = "sre-llm/v1"
KIND = "ModelRelease"

Family = Literal[tuple(FAMILIES)]  # type: ignore[valid-type]


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
