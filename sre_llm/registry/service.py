"""Registering versions and reading the registry: ``register``, ``list``, ``show``, ``diff``.

A registration stores the model directory in the artifact store first (content-addressed, so a
retry or a concurrent identical registration is harmless), then writes the index in one atomic
replace, then appends the audit record. A process killed before the index write leaves the index
exactly as it was; what it had stored is an unreferenced tree that the next registration reuses.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sre_llm import audit
from sre_llm.errors import BadInput, CheckFailed
from sre_llm.registry import index as ix
from sre_llm.registry import lineage
from sre_llm.registry.store import ArtifactStore, LocalStore
from sre_llm.registry.versioning import (
    BUMPS,
    Bump,
    SemVer,
    next_version,
    sort_versions,
    suggest_bump,
)

DEFAULT_STORE = ".cache/artifacts"
CHECKPOINT_DIRS = ("checkpoint-*",)  # left out when registering a LLaMA Factory output folder


@dataclass
class Registry:
    """Where the index, the artifacts and the audit log of one GitOps repository live."""

    root: Path
    store: ArtifactStore
    audit_log: Path

    def rel(self, path: str | Path) -> str:
        """``path`` relative to the repository root when inside it (what the index records)."""
        path = Path(path)
        try:
            return path.resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return str(path)

    def inside(self, path: str | Path) -> bool:
        return Path(path).resolve().is_relative_to(self.root.resolve())

    def abs(self, recorded: str) -> Path:
        path = Path(recorded)
        return path if path.is_absolute() else self.root / path

    def load(self, model: str) -> ix.RegistryIndex:
        found = ix.load(self.root, model)
        if found is None:
            known = ix.models(self.root)
            raise BadInput(f"model {model!r} is not registered (registered: {', '.join(known) or 'none'})")
        return found

    def resolve_model(self, model: str | None) -> str:
        """``model``, or the only model in the registry when none is named."""
        if model:
            return model
        known = ix.models(self.root)
        if len(known) == 1:
            return known[0]
        if not known:
            raise BadInput(f"{self.root / ix.REGISTRY_DIR}: no model registered yet")
        raise BadInput(f"several models are registered ({', '.join(known)}): name one with --model")

    def entry(self, index: ix.RegistryIndex, ref: str) -> ix.Version:
        found = index.get(ref)
        if found is None:
            versions = ", ".join(v.version for v in index.versions) or "none"
            raise BadInput(f"{index.model}: no version or alias {ref!r} (versions: {versions})")
        return found

    @contextlib.contextmanager
    def locked(self, model: str) -> Iterator[None]:
        """One writer per model index at a time (read-modify-write must not lose an update)."""
        folder = self.root / ".cache" / "locks"
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / f"registry-{model}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def audit(self, action: str, subject: str, digests: dict[str, str], details: dict[str, Any]) -> dict[str, Any]:
        return audit.append(action, subject, {k: v for k, v in digests.items() if v}, details,
                            root=self.root, path=self.audit_log)


def open_registry(root: str | Path = ".", store: str | Path | None = None, audit_log: str | Path | None = None) -> Registry:
    """The registry of the repository at ``root``; the store defaults to ``<root>/.cache/artifacts``.

    ``oci://HOST/REPO`` keeps the artifacts in an OCI repository (:mod:`sre_llm.registry.oci_store`),
    cached in the default local store."""
    root = Path(root)
    if not root.is_dir():
        raise BadInput(f"{root}: no such directory")
    where = str(store) if store else os.environ.get("SRE_LLM_ARTIFACT_STORE") or str(root / DEFAULT_STORE)
    if where.startswith("oci://"):  # an OCI repository, cached in the default local store
        from sre_llm.registry.oci_store import OciStore

        return Registry(root, OciStore(where, LocalStore(root / DEFAULT_STORE), root), audit.log_path(root, audit_log))
    return Registry(root, LocalStore(Path(where)), audit.log_path(root, audit_log))


def _read_json(path: str | Path | None, what: str) -> tuple[dict[str, Any] | None, bytes | None]:
    if path is None:
        return None, None
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise BadInput(f"{path}: no such {what} file") from None
    except IsADirectoryError:
        raise BadInput(f"{path}: is a directory, not a {what} file") from None
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise BadInput(f"{path}: {what} file is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise BadInput(f"{path}: {what} file must hold a JSON object")
    return data, raw


@dataclass
class RegisterResult:
    model: str
    version: str
    created: bool  # False: this exact version was already registered (nothing changed)
    entry: ix.Version
    index_path: Path


def register(
    reg: Registry,
    spec_path: str | Path,
    model_dir: str | Path,
    metrics_path: str | Path | None = None,
    run_path: str | Path | None = None,
    bump: Bump | None = None,
    sboms: Sequence[tuple[str, str]] | None = None,
) -> RegisterResult:
    """Register the model directory as the spec's version (or the next ``bump`` version).

    ``sboms`` are (role, python) pairs whose environments' CycloneDX SBOMs are attached
    (:mod:`sre_llm.registry.sbom`); None: the running Python as ``train``; empty: none.
    """
    from sre_llm.registry import sbom as sbom_mod
    from sre_llm.spec.load import load_spec

    if bump is not None and bump not in BUMPS:
        raise BadInput(f"--bump {bump!r}: choose one of {', '.join(BUMPS)}")
    loaded = load_spec(spec_path)
    release = loaded.release
    model = release.metadata.name
    if not Path(model_dir).is_dir():
        raise BadInput(f"{model_dir}: model directory not found")
    metrics, _ = _read_json(metrics_path, "metrics")
    run, run_raw = _read_json(run_path, "run record")
    base = lineage.base_model_ref(release.spec.base_model, run)
    dataset = lineage.dataset_ref(release.spec.dataset.name, run)
    pairs = [(sbom_mod.DEFAULT_ROLE, sys.executable)] if sboms is None else list(sboms)
    documents = [(role, sbom_mod.generate(python, role)) for role, python in pairs]  # before the lock: ~1 s uncached

    with reg.locked(model):
        index = ix.load(reg.root, model) or ix.RegistryIndex(model=model)
        # A LLaMA Factory output folder: the model is at the top; checkpoint-N/ folders are training
        # state for --resume (optimizer, RNG), not the model, and would triple what is stored.
        lf_output = (Path(model_dir) / "trainer_state.json").is_file()
        tree = reg.store.put_tree(Path(model_dir), skip_top=CHECKPOINT_DIRS if lf_output else ())
        metrics_digest = reg.store.put_blob(Path(metrics_path)) if metrics_path else None
        existing = [v.version for v in index.versions]
        version = next_version(existing, release.metadata.version, bump) if bump else release.metadata.version
        same = index.get(version) if version in existing else None
        if same is not None:
            return _same_version(reg, index, same, tree.digest, loaded.digest, base, dataset)
        sbom_refs = _write_sboms(reg, model, version, documents)
        figures = lineage.figures(metrics) if metrics is not None else {}
        gates = lineage.evaluate_gates(release.spec.evaluation.gates.model_dump(), figures) if metrics is not None else {}
        entry = ix.Version(
            version=version,
            created=audit.now(),
            created_by=_actor(reg),
            spec=ix.SpecRef(path=reg.rel(spec_path), sha256=loaded.digest, version=release.metadata.version),
            base_model=base,
            dataset=dataset,
            run=lineage.run_ref(run, "sha256:" + hashlib.sha256(run_raw).hexdigest() if run_raw else None),
            packages=lineage.packages(run),
            sbom=sbom_refs or None,
            metrics=ix.Metrics(digest=metrics_digest, figures=figures) if metrics_digest else None,
            gates=gates,
            gates_passed=bool(gates) and all(g.passed for g in gates.values()),
            artifact=ix.Artifact(
                digest=tree.digest,
                size=tree.size,
                files=[ix.FileDigest(path=f.path, sha256=f.sha256, size=f.size) for f in tree.files],
            ),
        )
        index.versions.append(entry)
        path = ix.save(reg.root, index)
        reg.audit(
            "register",
            f"{model}@{version}",
            {"artifact": tree.digest, "spec": loaded.digest, "dataset": dataset.digest or "", "metrics": metrics_digest or "",
             **{f"sbom.{r.environment}": r.sha256 for r in sbom_refs}},
            {"bump": bump, "gates_passed": entry.gates_passed, "files": len(tree.files), "bytes": tree.size},
        )
    return RegisterResult(model, version, True, entry, path)


def _write_sboms(reg: Registry, model: str, version: str, documents: list[tuple[str, bytes]]) -> list[ix.SbomRef]:
    """Write each SBOM next to the index (atomically) and return what the lineage records."""
    from sre_llm.fsutil import write_atomic
    from sre_llm.registry import sbom as sbom_mod

    refs = []
    for role, data in documents:
        rel = sbom_mod.path_for(model, version, role)
        write_atomic(reg.abs(rel), data)
        refs.append(ix.SbomRef(environment=role, path=rel, sha256="sha256:" + hashlib.sha256(data).hexdigest(),
                               components=len(sbom_mod.components(data, role)), generator=sbom_mod.GENERATOR))
    return refs


def _actor(reg: Registry) -> str:
    from sre_llm.gitops import actor

    return actor(reg.root)


def _same_version(reg, index, same, artifact_digest, spec_digest, base, dataset) -> RegisterResult:
    """A version that exists: fine when it is the same thing, refused (exit 1) when it is not."""
    differs = []
    if same.artifact.digest != artifact_digest:
        differs.append(f"artifact {same.artifact.digest} ≠ {artifact_digest}")
    if same.spec.sha256 != spec_digest:
        differs.append(f"spec {same.spec.sha256} ≠ {spec_digest}")
    if not differs:
        return RegisterResult(index.model, same.version, False, same, ix.index_path(reg.root, index.model))
    latest = index.get(sort_versions(v.version for v in index.versions)[-1])
    kind = suggest_bump(latest.model_dump(), {"base_model": base.model_dump(), "dataset": dataset.model_dump()})
    offers = ", ".join(f"{k} {next_version([v.version for v in index.versions], same.version, k)}" for k in BUMPS)
    raise CheckFailed(
        f"{index.model} {same.version} is already registered with different digests ({'; '.join(differs)}): "
        f"versions are immutable. Set metadata.version in the spec to a new version or pass --bump "
        f"({offers}; this change calls for {kind})"
    )


def list_versions(reg: Registry, model: str) -> list[dict[str, Any]]:
    """One row per version, newest first."""
    index = reg.load(model)
    rows = []
    for v in sorted(index.versions, key=lambda v: SemVer(v.version), reverse=True):
        rows.append({
            "version": v.version,
            "status": v.status,
            "aliases": index.aliases_of(v.version),
            "created": v.created,
            "gates_passed": v.gates_passed,
            "signed": v.signature is not None,
            "artifact": v.artifact.digest,
            "size": v.artifact.size,
        })
    return rows


def show(reg: Registry, model: str, ref: str) -> dict[str, Any]:
    """Everything the index holds on one version, with its aliases."""
    index = reg.load(model)
    entry = reg.entry(index, ref)
    data = entry.model_dump(mode="json", exclude_none=True)
    data["model"] = model
    data["aliases"] = index.aliases_of(entry.version)
    return data


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for k, v in data.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: data}


def diff(reg: Registry, model: str, a: str, b: str) -> list[dict[str, Any]]:
    """Fields that differ between two versions (files compared by path), as ``{field, a, b}``."""
    index = reg.load(model)
    left, right = reg.entry(index, a), reg.entry(index, b)
    skip = {"version", "created", "created_by", "status"}

    def flat(v: ix.Version) -> dict[str, Any]:
        data = v.model_dump(mode="json", exclude=skip)
        files = {f["path"]: f["sha256"] for f in data["artifact"].pop("files")}
        data["artifact"]["files"] = files
        return _flatten(data)

    fa, fb = flat(left), flat(right)
    return [{"field": k, "a": fa.get(k), "b": fb.get(k)} for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)]
