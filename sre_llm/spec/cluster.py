"""``training.cluster``: train on a Kubernetes cluster through Kubeflow instead of on this machine.

The engine is the Kubeflow Training Operator v1's ``PyTorchJob`` (``kubeflow.org/v1``), not the
Trainer v2 ``TrainJob``: a PyTorchJob is one self-contained object (Master ×1, Worker ×(nodes-1))
that a Flux-managed cluster applies as it is, whereas a TrainJob needs a ClusterTrainingRuntime
installed and kept in step beside it; and the v1 operator is what clusters run today (the v2
Trainer's TrainJob API is still ``trainer.kubeflow.org/v1alpha1``). The operator gives each pod the rendezvous of the job's own headless
service (MASTER_ADDR = ``<job>-master-0``, MASTER_PORT, PET_NNODES, PET_NODE_RANK,
PET_NPROC_PER_NODE), which is why nothing here names an address.

Everything the pod needs from outside is pinned: the image by digest (a tag is refused unless
pinned with ``@sha256:``), the dataset and base model by OCI digest (pulled and verified with
``sre-llm registry pull --verify``), and the trained output goes to a repository by push.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Optional

from pydantic import BeforeValidator, Field
from pydantic_core import PydanticCustomError

from sre_llm.spec.strict import Strict
from sre_llm.spec.types import DnsName, K8sLabels
from sre_llm.spec.types import _str as _text  # one "must be a string" message (booleans shown as YAML writes them)

_HOST = r"(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?"
_REPO = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}"
_DIGEST = r"sha256:[0-9a-f]{64}"
_OCI_PINNED = re.compile(rf"^oci://{_HOST}/{_REPO}(:{_TAG})?@{_DIGEST}$")
_OCI_REPO = re.compile(rf"^oci://{_HOST}/{_REPO}(:{_TAG})?$")
# A container image: [registry/]repository[:tag]@sha256:digest (the tag, if any, is only a label).
_IMAGE = re.compile(rf"^({_HOST}/)?{_REPO}(:{_TAG})?@{_DIGEST}$")
_QUANTITY = re.compile(r"^([0-9]+(\.[0-9]+)?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_RESOURCE = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$")


def _pinned(value: Any) -> str:
    value = _text(value, "an OCI reference oci://HOST/REPOSITORY@sha256:DIGEST")
    if not _OCI_PINNED.match(value):
        raise PydanticCustomError(
            "oci_pinned",
            "must be pinned by digest: oci://HOST[:PORT]/REPOSITORY[:TAG]@sha256:<64 hex digits> "
            "(`sre-llm registry show` lists a version's pushed digest) (got {got})", {"got": repr(value)})
    return value


def _repository(value: Any) -> str:
    value = _text(value, "an OCI repository oci://HOST/REPOSITORY[:TAG]")
    if not _OCI_REPO.match(value):
        raise PydanticCustomError(
            "oci_repository", "must be oci://HOST[:PORT]/REPOSITORY[:TAG] (no digest: the push makes one) (got {got})",
            {"got": repr(value)})
    return value


def _image(value: Any) -> str:
    value = _text(value, "a container image pinned by digest")
    if not _IMAGE.match(value):
        raise PydanticCustomError(
            "image_digest",
            "must be a container image pinned by digest, REGISTRY/REPOSITORY[:TAG]@sha256:<64 hex digits>: a tag "
            "can move between the render and the run (got {got})", {"got": repr(value)})
    return value


def _quantity(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    value = _text(value, "a Kubernetes quantity such as 8, 500m or 64Gi")
    if not _QUANTITY.match(value):
        raise PydanticCustomError("quantity", "must be a Kubernetes quantity such as 8, 500m or 64Gi (got {got})",
                                  {"got": repr(value)})
    return value


_SCALE = {"m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
          **{s: 1024.0 ** (i + 1) for i, s in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"))}}


def quantity_value(quantity: str) -> float:
    """A validated :data:`Quantity` as a number, read with the same grammar: ``2`` -> 2.0,
    ``1500m`` -> 1.5 (cores), ``1Gi`` -> 1073741824.0."""
    match = _QUANTITY.match(quantity)
    if match is None:
        raise ValueError(f"not a Kubernetes quantity: {quantity!r}")
    return float(match.group(1)) * _SCALE.get(match.group(3) or "", 1.0)


def _resource_name(value: Any) -> str:
    value = _text(value, "an extended resource name such as nvidia.com/gpu")
    if not _RESOURCE.match(value):
        raise PydanticCustomError("resource", "must be a resource name such as nvidia.com/gpu (got {got})",
                                  {"got": repr(value)})
    return value


OciPinned = Annotated[str, BeforeValidator(_pinned), Field(json_schema_extra={"pattern": _OCI_PINNED.pattern})]
OciRepository = Annotated[str, BeforeValidator(_repository), Field(json_schema_extra={"pattern": _OCI_REPO.pattern})]
ImageDigest = Annotated[str, BeforeValidator(_image), Field(json_schema_extra={"pattern": _IMAGE.pattern})]
Quantity = Annotated[str, BeforeValidator(_quantity), Field(json_schema_extra={"pattern": _QUANTITY.pattern})]
ResourceName = Annotated[str, BeforeValidator(_resource_name)]


class Toleration(Strict):
    key: Optional[str] = Field(None, description="Taint key the toleration matches (empty with Exists: every taint).")
    operator: Literal["Exists", "Equal"] = Field("Equal", description="Exists or Equal.")
    value: Optional[str] = Field(None, description="Taint value (operator Equal).")
    effect: Optional[Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]] = Field(
        None, description="Taint effect matched; empty: every effect.")


class WorkerResources(Strict):
    cpu: Quantity = Field("8", description="CPU requested and limited per node's pod (requests = limits: Guaranteed QoS).")
    memory: Quantity = Field("64Gi", description="Memory requested and limited per node's pod.")
    gpu_resource: ResourceName = Field(
        "nvidia.com/gpu", description="Extended resource that counts GPUs; each pod asks for distributed.gpus_per_node."
    )


class ClusterSpec(Strict):
    engine: Literal["kubeflow"] = Field(
        "kubeflow",
        description="kubeflow: a Training Operator v1 PyTorchJob (kubeflow.org/v1), Master ×1 + Worker ×(nodes-1).",
    )
    namespace: DnsName = Field("sre-llm", description="Namespace the PyTorchJob and its ConfigMap are created in.")
    image: ImageDigest = Field(
        description="Training image with sre-llm[train] and LLaMA Factory (the sre-llm that rendered the job), "
        "pinned by digest: REGISTRY/REPOSITORY[:TAG]@sha256:DIGEST.",
    )
    service_account: DnsName = Field("sre-llm-trainer", description="ServiceAccount the training pods run as.")
    node_selector: K8sLabels = Field(default_factory=dict, description="Node labels the training pods must land on.")
    tolerations: list[Toleration] = Field(default_factory=list, description="Taints the training pods tolerate (GPU nodes).")
    resources: WorkerResources = Field(default_factory=WorkerResources, description="What each node's pod asks for.")
    dataset: OciPinned = Field(
        description="The dataset build as an artifact of the sre-llm registry, by digest; pulled with "
        "`sre-llm registry pull --verify` into datasets/<dataset.name>/current before training."
    )
    base_model: Optional[OciPinned] = Field(
        None,
        description="The base model as a registry artifact, by digest; pulled and verified into the base model's "
        "path (or its hub id as a folder: the pod trains offline). Empty: only for builtin models training builds.",
    )
    output: OciRepository = Field(
        description="Where the Master pushes the trained output (registered as the spec's version, unevaluated) "
        "with `sre-llm registry push`; the tag defaults to <version>-trained.",
    )
    workspace_pvc: Optional[DnsName] = Field(
        None, description="PersistentVolumeClaim for the Master's workspace (output, run.json, checkpoints); "
        "empty: an emptyDir of workspace_size (gone with the pod, after the push)."
    )
    workspace_size: Quantity = Field("200Gi", description="Size limit of the emptyDir workspace.")
    registry_secret: Optional[DnsName] = Field(
        None, description="Secret whose key `token` is the OCI registry credential (given to pull and push as env:OCI_TOKEN)."
    )
    signing_secret: Optional[DnsName] = Field(
        None, description="Secret holding the files spec.signing names (public_key, certificate_chain) by their "
        "base names; mounted at those paths so `registry pull --verify --spec` finds its signers."
    )
    plain_http: bool = Field(False, description="Reach the OCI registry over plain HTTP (an in-cluster registry).")
    backoff_limit: int = Field(0, ge=0, le=10, description="Pod restarts before the job fails (runPolicy.backoffLimit).")
    ttl_seconds_after_finished: int = Field(
        86400, ge=0, description="Seconds a finished job (and its pods' logs) is kept before the operator deletes it."
    )
