"""``deployment.artifact`` and ``deployment.pod``: where the serving pod gets its model, and what
the pod asks of the cluster.

The pod pulls the served version from an OCI repository by digest and verifies its signature
against the signers the spec pins before vLLM starts (``sre-llm registry pull --verify``): nothing
is mounted from a volume someone else fills. ``pod`` holds what a real cluster needs from the pod
spec (requests and limits, placement, extra env) and the Knative feature flags the cluster has
switched on, which decide how the pull step runs (an init container needs
``kubernetes.podspec-init-containers``; without it the gateway container pulls first).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field
from pydantic_core import PydanticCustomError

from sre_llm.spec.cluster import Quantity, Toleration
from sre_llm.spec.strict import Strict
from sre_llm.spec.types import DnsName, K8sLabels

_HOST = r"(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?"
_REPO = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
_OCI_REPO = re.compile(rf"^oci://{_HOST}/{_REPO}$")
_OCI_REF = re.compile(rf"^oci://{_HOST}/{_REPO}(:[A-Za-z0-9_][A-Za-z0-9._-]{{0,127}})?(@sha256:[0-9a-f]{{64}})?$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")

#: Knative feature flags (config-features) that gate pod-spec fields this project may render.
KNATIVE_FEATURES = (
    "kubernetes.podspec-init-containers",
    "kubernetes.podspec-volumes-emptydir",
    "kubernetes.podspec-nodeselector",
    "kubernetes.podspec-tolerations",
    "kubernetes.podspec-securitycontext",
)
KnativeFeature = Literal[KNATIVE_FEATURES]  # type: ignore[valid-type]


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise PydanticCustomError("type", "must be {what} (got {got})", {"what": what, "got": repr(value)})
    return value


def _repository(value: Any) -> str:
    value = _str(value, "an OCI repository oci://HOST/REPOSITORY")
    if not _OCI_REPO.match(value):
        raise PydanticCustomError(
            "oci_repository", "must be oci://HOST[:PORT]/REPOSITORY, no tag or digest: the registry index "
            "records each pushed version's digest (got {got})", {"got": repr(value)})
    return value


def _reference(value: Any) -> str:
    value = _str(value, "an OCI reference oci://HOST/REPOSITORY@sha256:DIGEST")
    if not _OCI_REF.match(value) or ("@" not in value and ":" not in value.split("/", 3)[-1]):
        raise PydanticCustomError(
            "oci_reference", "must be oci://HOST[:PORT]/REPOSITORY@sha256:<64 hex digits> (or :TAG, resolved "
            "when the pod starts) (got {got})", {"got": repr(value)})
    return value


def _env_name(value: Any) -> str:
    value = _str(value, "an environment variable name")
    if not _ENV_NAME.match(value):
        raise PydanticCustomError("env_name", "must be an environment variable name (got {got})", {"got": repr(value)})
    return value


OciRepo = Annotated[str, BeforeValidator(_repository), Field(json_schema_extra={"pattern": _OCI_REPO.pattern})]
OciRef = Annotated[str, BeforeValidator(_reference), Field(json_schema_extra={"pattern": _OCI_REF.pattern})]
EnvName = Annotated[str, BeforeValidator(_env_name)]


class ArtifactSpec(Strict):
    repository: OciRepo = Field(
        description="OCI repository the versions are pushed to (`sre-llm registry push VERSION --to` it). The pod "
        "pulls the served version by the digest the registry index records for it; a version not pushed yet "
        "is rendered by tag, with a render warning.",
    )
    base: OciRef | None = Field(
        None, description="LoRA base (serve_adapter) as a signed artifact of the sre-llm registry, pulled and verified "
        "like the adapter: oci://HOST/REPOSITORY@sha256:DIGEST. Empty with serve_adapter: a render warning (the pod is "
        "offline: no hub).",
    )
    registry_secret: DnsName | None = Field(
        None, description="Secret whose key `token` is the registry credential (given to the pull as env:OCI_TOKEN).")
    username: str | None = Field(None, description="User name for registries that take user + token.")
    plain_http: bool = Field(False, description="Reach the registry over plain HTTP (an in-cluster registry without TLS).")
    signers_configmap: DnsName | None = Field(
        None, description="ConfigMap with what verifies the signature: `signing-key.pub.pem` (key method) or `ca.pem` "
        "(certificate method). Which signer is trusted stays pinned by signing.trusted_keys in the manifest. "
        "Empty: <metadata.name>-signers.",
    )
    signers_path: str = Field(
        "/etc/sre-llm/signers", pattern=r"^/\S*$", description="Where the signers ConfigMap is mounted (absolute).")


class EnvVar(Strict):
    name: EnvName = Field(description="Variable name.")
    value: str = Field(description="Value (plain text: put secrets in a Kustomize patch with secretKeyRef).")


class PodResources(Strict):
    """Requests = limits (Guaranteed QoS: the serving pod is the last the kubelet evicts)."""

    cpu: Quantity | None = Field(None, description="vLLM container CPU. Empty: 8 with GPUs, 2 on the CPU.")
    memory: Quantity | None = Field(None, description="vLLM container memory. Empty: 32Gi with GPUs, 8Gi on the CPU.")
    shm: Quantity | None = Field(
        None, description="Size of /dev/shm (memory-backed emptyDir; counts against memory). Empty: 8Gi with GPUs, 1Gi.")
    models: Quantity = Field("64Gi", description="Size limit of the emptyDir the model is pulled into.")
    gateway_cpu: Quantity = Field("1", description="Gateway container CPU (it hashes the model when it pulls).")
    gateway_memory: Quantity = Field("1Gi", description="Gateway container memory.")


class PodSpec(Strict):
    resources: PodResources = Field(default_factory=PodResources, description="Requests and limits per container.")
    node_selector: K8sLabels = Field(
        default_factory=dict, description="Node labels the serving pod must land on (needs kubernetes.podspec-nodeselector).")
    tolerations: list[Toleration] = Field(
        default_factory=list, description="Taints the serving pod tolerates (needs kubernetes.podspec-tolerations).")
    env: list[EnvVar] = Field(default_factory=list, description="Extra environment of the vLLM container.")
    knative_features: list[KnativeFeature] = Field(
        default_factory=list,
        description="Knative feature flags the cluster enables beyond the defaults (config-features). With "
        "kubernetes.podspec-init-containers the pull runs in an init container; otherwise the gateway pulls first.",
    )
