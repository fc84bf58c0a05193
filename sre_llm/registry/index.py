"""The registry index ``registry/<model>.yaml``: every version of one model, its aliases and history.

It is committed in the GitOps repository, so what is released is what git says and a rollback is a
commit. It is written only by sre-llm (one atomic write per change) and read strictly: unknown keys
are errors, like in specs.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from sre_llm.errors import BadInput
from sre_llm.fsutil import write_atomic
from sre_llm.registry.versioning import SemVer

REGISTRY_DIR = "registry"
HEADER = "# Model registry index, written by sre-llm (register, sign, promote, rollback) — do not edit by hand.\n"

Status = Literal["registered", "signed", "champion", "challenger", "retired", "rolled-back"]
ALIASES = ("champion", "challenger")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class FileDigest(Strict):
    path: str = Field(description="Path inside the model directory (POSIX).")
    sha256: str = Field(description="sha256 of the file (hex).")
    size: int = Field(ge=0, description="Bytes.")


class Artifact(Strict):
    digest: str = Field(description="sha256 of the sha256sum-style manifest of the files; names the stored tree.")
    size: int = Field(ge=0, description="Total bytes.")
    files: list[FileDigest] = Field(description="Every file with its digest.")


class SpecRef(Strict):
    path: str = Field(description="Spec file, relative to the repository root.")
    sha256: str = Field(description="Digest of the spec text.")
    version: str = Field(description="metadata.version in the spec (differs from the version when --bump was used).")


class BaseModelRef(Strict):
    name: str | None = None
    path: str | None = None
    revision: str | None = None
    family: str | None = None


class DatasetRef(Strict):
    name: str | None = None
    digest: str | None = Field(None, description="Digest of the dataset the run trained on.")
    size: int | None = Field(None, description="Number of examples.")
    answer_format: str | None = Field(
        None, description="How the model trained on it answers (literal-v1 or labelref-v1); absent: literal-v1."
    )


class RunRef(Strict):
    id: str | None = None
    record_sha256: str | None = Field(None, description="Digest of the run record (run.json) registered with it.")
    git_commit: str | None = None
    started: str | None = None
    finished: str | None = None


class Gate(Strict):
    value: float | None = Field(description="The measured figure (null when the metrics lack it).")
    op: Literal[">=", "<="]
    threshold: float
    passed: bool


class Metrics(Strict):
    digest: str = Field(description="Digest of the metrics file, kept in the artifact store.")
    figures: dict[str, float] = Field(default_factory=dict, description="Gate figures read from it.")


class HashingRef(Strict):
    method: Literal["files", "shards"] = "shards"
    algorithm: Literal["sha256", "blake2", "blake3"] = "sha256"
    shard_size: int = 1 << 26


class SignatureRef(Strict):
    bundle: str = Field(description="Sigstore bundle, relative to the repository root (committed with the index).")
    sha256: str = Field(description="Digest of the bundle file.")
    method: Literal["key", "certificate", "sigstore"]
    key_id: str | None = Field(None, description="sha256 of the signer's public key PEM (the bundle's key hint).")
    public_key: str | None = Field(None, description="Public key used to verify (key method).")
    certificate_chain: list[str] = Field(default_factory=list, description="Trust anchors used to verify (certificate).")
    identity: str | None = None
    oidc_issuer: str | None = None
    hashing: HashingRef = Field(default_factory=HashingRef)
    signed: str
    signer: str


class OciPush(Strict):
    repository: str = Field(description="Where it was pushed: oci://HOST/REPOSITORY.")
    tag: str = Field(description="The tag it was pushed under (the version; '+' becomes '_').")
    digest: str = Field(description="Manifest digest of the OCI artifact: what `registry pull` fetches.")
    signed: bool = Field(description="Whether the signature bundle was pushed with it.")
    pushed: str = Field(description="When (UTC).")

    @property
    def reference(self) -> str:
        return f"{self.repository}@{self.digest}"


class SbomRef(Strict):
    environment: str = Field(description="Role of the environment: train (the registering Python), serve, …")
    path: str = Field(description="CycloneDX JSON file, relative to the repository root (committed with the index).")
    sha256: str = Field(description="Digest of the SBOM file (sha256:<hex>).")
    components: int = Field(ge=0, description="Number of components it lists.")
    generator: str = Field(description="What wrote it.")


class Version(Strict):
    version: str
    status: Status = "registered"
    created: str
    created_by: str
    spec: SpecRef
    base_model: BaseModelRef
    dataset: DatasetRef = Field(default_factory=DatasetRef)
    run: RunRef = Field(default_factory=RunRef)
    packages: dict[str, str] = Field(default_factory=dict)
    sbom: list[SbomRef] | None = Field(None, description="SBOMs of the environments it was built with, by digest.")
    metrics: Metrics | None = None
    gates: dict[str, Gate] = Field(default_factory=dict)
    gates_passed: bool = False
    artifact: Artifact
    signature: SignatureRef | None = None
    oci: list[OciPush] | None = Field(None, description="OCI artifacts this version was pushed as, by digest.")


class AliasMove(Strict):
    action: Literal["promote", "rollback"]
    alias: str
    version: str
    previous: str | None = None
    time: str
    actor: str


class RegistryIndex(Strict):
    api_version: Literal["sre-llm/v1"] = Field("sre-llm/v1", alias="apiVersion")
    kind: Literal["ModelRegistry"] = "ModelRegistry"
    model: str
    aliases: dict[str, str] = Field(default_factory=dict)
    versions: list[Version] = Field(default_factory=list)
    history: list[AliasMove] = Field(default_factory=list)

    def get(self, ref: str) -> Version | None:
        """A version by number or by alias (``champion``)."""
        ref = self.aliases.get(ref, ref)
        return next((v for v in self.versions if v.version == ref), None)

    def aliases_of(self, version: str) -> list[str]:
        return sorted(a for a, v in self.aliases.items() if v == version)


def index_path(root: str | Path, model: str) -> Path:
    return Path(root) / REGISTRY_DIR / f"{model}.yaml"


def yaml_io() -> YAML:
    """The YAML reader/writer of the index: safe, schema field order kept, no line wrapping."""
    y = YAML(typ="safe", pure=True)
    y.default_flow_style = False
    y.sort_base_mapping_type_on_output = False  # field order is the schema's order: stable and readable
    y.width = 4096
    y.indent(mapping=2, sequence=4, offset=2)
    return y


def dump(index: RegistryIndex) -> str:
    """The index as YAML text (byte-stable for the same content)."""
    ordered = sorted(index.versions, key=lambda v: SemVer(v.version))
    data = index.model_copy(update={"versions": ordered}).model_dump(mode="json", by_alias=True, exclude_none=True)
    buf = io.StringIO()
    yaml_io().dump(data, buf)
    return HEADER + buf.getvalue()


def load(root: str | Path, model: str) -> RegistryIndex | None:
    """The index of ``model``, or None when the model has never been registered."""
    path = index_path(root, model)
    if not path.exists():
        return None
    return parse(path.read_text(encoding="utf-8"), str(path))


def parse(text: str, shown: str) -> RegistryIndex:
    try:
        data = yaml_io().load(text)
    except YAMLError as exc:
        raise BadInput(f"{shown}: not valid YAML: {exc}") from None
    try:
        return RegistryIndex.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise BadInput(f"{shown}: {where}: {first['msg']} ({exc.error_count()} problem(s))") from None


def save(root: str | Path, index: RegistryIndex) -> Path:
    """Write the index atomically: readers see the old file or the new one, never a mix."""
    path = index_path(root, index.model)
    write_atomic(path, dump(index))
    return path


def models(root: str | Path) -> list[str]:
    """Every model that has an index under ``<root>/registry/``."""
    folder = Path(root) / REGISTRY_DIR
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []
