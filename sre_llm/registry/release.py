"""Signing, verification, promotion and rollback of registered versions.

Promotion and rollback move an alias in ``registry/<model>.yaml`` and commit that change (with
the signature bundle and the audit log) through :mod:`sre_llm.gitops`: what is deployed is what
git says, and a rollback is one more commit. Neither needs the network or a GPU for the key and
certificate methods.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sre_llm import audit, gitops, signing
from sre_llm.errors import BadInput, CheckFailed
from sre_llm.registry import index as ix
from sre_llm.registry import lineage, trust
from sre_llm.registry.service import Registry
from sre_llm.registry.store import FileEntry


def on_alias_change(reg: Registry, model: str, alias: str, previous: str | None, current: str) -> list[Path]:
    """Hook: re-render what depends on an alias (deployment manifests) after it moved.

    Called by :func:`promote` and :func:`rollback` after the index is written and before the
    commit; the paths it returns are committed together with the index. Nothing depends on aliases
    yet, so it changes nothing; the deployment stage will render its manifests here.
    """
    return []


def bundle_path(model: str, version: str) -> str:
    """Where a version's signature bundle is kept, relative to the repository root (committed)."""
    return f"{ix.REGISTRY_DIR}/{model}/{version}.sig"


def _spec_signing(reg: Registry, entry: ix.Version):
    from sre_llm.spec.load import load_spec

    path = reg.abs(entry.spec.path)
    if not path.is_file():
        return None
    return load_spec(path).release.spec.signing


def sign(
    reg: Registry,
    model: str,
    ref: str,
    *,
    method: str | None = None,
    private_key: str | None = None,
    certificate_chain: Sequence[str] = (),
    public_key: str | None = None,
    force: bool = False,
) -> ix.SignatureRef:
    """Sign the stored artifact of a version; the bundle goes to ``registry/<model>/<version>.sig``.

    Settings come from the spec the version was registered from (``spec.signing``); arguments
    override them. ``private_key`` is a path or a secret reference (``file:``/``env:``).
    """
    with reg.locked(model):
        index = reg.load(model)
        entry = reg.entry(index, ref)
        if entry.signature is not None and not force:
            raise BadInput(f"{model} {entry.version} is already signed ({entry.signature.bundle}); pass --force to re-sign")
        spec = _spec_signing(reg, entry)
        method = method or (spec.method if spec else "key")
        key_ref = private_key or (spec.private_key if spec else None)
        if key_ref and not key_ref.startswith(("file:", "env:")):
            key_ref = f"file:{key_ref}"  # a plain path given on the command line
        chain = list(certificate_chain) or (list(spec.certificate_chain) if spec else [])
        pub = public_key or (spec.public_key if spec else None)
        tree = reg.store.local_tree(entry.artifact.digest)
        _require_intact(reg, entry)
        hashing = signing.Hashing()
        target = reg.abs(bundle_path(model, entry.version))
        if method == "sigstore":
            signed = signing.sign(tree, target, "sigstore", hashing=hashing)
        elif not key_ref:
            raise BadInput(f"signing method {method} needs a private key: set spec.signing.private_key or pass --key")
        else:
            with signing.secret_file(key_ref, reg.root) as key_path:
                signed = signing.sign(
                    tree, target, method, private_key=key_path,  # type: ignore[arg-type]
                    certificate_chain=[reg.abs(c) for c in chain], hashing=hashing,
                )
        sig = ix.SignatureRef(
            bundle=bundle_path(model, entry.version),
            sha256=signed.bundle_sha256,
            method=method,  # type: ignore[arg-type]
            key_id=signed.key_id,
            public_key=pub if method == "key" else None,
            certificate_chain=chain[1:] if method == "certificate" else [],
            identity=spec.identity if spec and method == "sigstore" else None,
            oidc_issuer=spec.oidc_issuer if spec and method == "sigstore" else None,
            hashing=ix.HashingRef(method=hashing.method, algorithm=hashing.algorithm, shard_size=hashing.shard_size),
            signed=_now(),
            signer=gitops.actor(reg.root),
        )
        entry.signature = sig
        if entry.status == "registered":
            entry.status = "signed"
        ix.save(reg.root, index)
        reg.audit("sign", f"{model}@{entry.version}", {"artifact": entry.artifact.digest, "bundle": sig.sha256},
                  {"method": method, "key_id": sig.key_id, "resigned": force})
        if method != "sigstore" and key_ref:  # the key is at hand: anchor the audit chain (sre_llm.audit)
            with signing.secret_file(key_ref, reg.root) as key_path:
                audit.checkpoint(key_path, root=reg.root, path=reg.audit_log)
    return sig


def _now() -> str:
    from sre_llm.audit import now

    return now()


def _require_intact(reg: Registry, entry: ix.Version) -> None:
    """Sign only what was registered: the stored files must still match the index."""
    files = [FileEntry(f.path, f.sha256, f.size) for f in entry.artifact.files]
    problems = reg.store.check_tree(entry.artifact.digest, files)  # type: ignore[attr-defined]
    if problems:
        raise CheckFailed(f"stored artifact {entry.artifact.digest} no longer matches the index: {'; '.join(problems)}")


def verify(
    reg: Registry, model: str, ref: str, *, public_key: str | None = None, certificate_chain: Sequence[str] = ()
) -> dict[str, Any]:
    """Re-hash the stored artifact and check it against the version's signature bundle.

    Raises :class:`~sre_llm.signing.SignatureInvalid` (exit 1) with model-signing's reason.
    """
    index = reg.load(model)
    entry = reg.entry(index, ref)
    sig = entry.signature
    if sig is None:
        raise signing.SignatureInvalid(f"unsigned: {model} {entry.version} has no signature (run `sre-llm registry sign {entry.version}`)")
    key = public_key or sig.public_key
    if sig.method == "key" and not key:
        raise BadInput("no public key recorded for this signature: pass --public-key")
    if key and not reg.abs(key).is_file():
        raise BadInput(f"{key}: public key not found")
    chain = [reg.abs(c) for c in (certificate_chain or sig.certificate_chain)]
    trust.verify_recorded(
        reg.store.local_tree(entry.artifact.digest), reg.abs(sig.bundle), sig.model_dump(mode="json"),
        spec_pins(reg, entry), public_key=reg.abs(key) if key else None, certificate_chain=chain,
        where=f"{model} {entry.version} in the index",
    )
    for ref in entry.sbom or []:  # lineage files kept beside the index: what the audit checkpoint signed
        path = reg.abs(ref.path)
        if not path.is_file() or signing.file_sha256(path) != ref.sha256:
            raise CheckFailed(f"SBOM {ref.path} is missing or not the one the index records ({ref.sha256})",
                              code="lineage_mismatch")
    return {"model": model, "version": entry.version, "verified": True, "method": sig.method, "key_id": sig.key_id,
            "artifact": entry.artifact.digest, "bundle": sig.bundle}


def spec_pins(reg: Registry, entry: ix.Version) -> trust.Pins:
    """The signers pinned by the spec the version was registered from (as it reads now)."""
    return trust.from_spec(_spec_signing(reg, entry), entry.spec.path, reg.root)


@dataclass
class AliasResult:
    model: str
    alias: str
    version: str
    previous: str | None
    changed: bool
    commit: str | None = None
    message: str = ""
    paths: list[str] = field(default_factory=list)


def _require_gates(model: str, entry: ix.Version) -> None:
    if not entry.gates:
        raise CheckFailed(f"refusing {model} {entry.version}: no gate figures stored (register it with --metrics eval.json)")
    failed = [lineage.gate_line(n, g) for n, g in entry.gates.items() if not g.passed]
    if failed:
        raise CheckFailed(f"refusing {model} {entry.version}: gates not passed: {'; '.join(failed)}")


def _require_signature(reg: Registry, model: str, entry: ix.Version, public_key, chain, offline: bool) -> str:
    """Verify; for rollback a sigstore signature cannot be checked offline, so the digests are."""
    if entry.signature is None:
        raise CheckFailed(f"refusing {model} {entry.version}: unsigned (run `sre-llm registry sign {entry.version}`)")
    if offline and entry.signature.method == "sigstore":
        _require_intact(reg, entry)
        return "artifact digests match the index (sigstore signature not re-checked offline)"
    try:
        verify(reg, model, entry.version, public_key=public_key, certificate_chain=chain)
    except signing.SignatureInvalid as exc:
        raise signing.SignatureInvalid(f"refusing {model} {entry.version}: signature: {exc}") from None
    return "signature verified"


def promote(
    reg: Registry, model: str, ref: str, *, alias: str = "champion", public_key: str | None = None,
    certificate_chain: Sequence[str] = (), commit: bool = True,
) -> AliasResult:
    """Point ``alias`` at a version whose gates passed and whose signature verifies; commit it."""
    if alias not in ix.ALIASES:
        raise BadInput(f"alias {alias!r}: choose one of {', '.join(ix.ALIASES)}")
    with reg.locked(model):
        index = reg.load(model)
        entry = reg.entry(index, ref)
        previous = index.aliases.get(alias)
        if previous == entry.version:
            return AliasResult(model, alias, entry.version, previous, changed=False)
        if alias == "challenger" and index.aliases.get("champion") == entry.version:
            raise BadInput(f"{model} {entry.version} is the champion; a challenger must be another version")
        _require_gates(model, entry)
        checked = _require_signature(reg, model, entry, public_key, certificate_chain, offline=False)
        if commit:
            gitops.require_identity(reg.root)
        index.aliases[alias] = entry.version
        if alias == "champion":
            if index.aliases.get("challenger") == entry.version:
                del index.aliases["challenger"]
            if previous and index.get(previous):
                index.get(previous).status = "retired"  # type: ignore[union-attr]
        elif previous and index.get(previous):
            index.get(previous).status = "signed"  # type: ignore[union-attr]  # a challenger replaced
        entry.status = alias  # type: ignore[assignment]
        return _move(reg, index, entry, "promote", alias, previous, checked, commit)


def previous_champion(index: ix.RegistryIndex) -> str | None:
    """The last champion before the current one that was not itself rolled back."""
    current = index.aliases.get("champion")
    for move in reversed(index.history):
        if move.alias != "champion" or move.version == current:
            continue
        found = index.get(move.version)
        if found is not None and found.status != "rolled-back":
            return move.version
    return None


def rollback(
    reg: Registry, model: str, to: str | None = None, *, public_key: str | None = None,
    certificate_chain: Sequence[str] = (), check_signature: bool = True, commit: bool = True,
) -> AliasResult:
    """Move ``champion`` back (to ``to``, else the previous champion) and commit. Offline."""
    with reg.locked(model):
        index = reg.load(model)
        current = index.aliases.get("champion")
        if current is None:
            raise BadInput(f"{model} has no champion to roll back from")
        target_ref = to or previous_champion(index)
        if target_ref is None:
            raise BadInput(f"{model}: no earlier champion to roll back to; name one with --to VERSION")
        entry = reg.entry(index, target_ref)
        if entry.version == current:
            raise BadInput(f"{model} {current} is already the champion")
        _require_gates(model, entry)
        checked = "signature not checked (--no-verify)"
        if check_signature:
            checked = _require_signature(reg, model, entry, public_key, certificate_chain, offline=True)
        if commit:
            gitops.require_identity(reg.root)
        index.aliases["champion"] = entry.version
        if index.aliases.get("challenger") == entry.version:
            del index.aliases["challenger"]
        index.get(current).status = "rolled-back"  # type: ignore[union-attr]
        entry.status = "champion"
        return _move(reg, index, entry, "rollback", "champion", current, checked, commit)


def _move(reg, index, entry, action, alias, previous, checked, commit) -> AliasResult:
    """Write the index, run the hook, audit, commit; put the index back if the commit fails."""
    model = index.model
    path = ix.index_path(reg.root, model)
    before = path.read_text(encoding="utf-8")
    actor = gitops.actor(reg.root)
    index.history.append(ix.AliasMove(action=action, alias=alias, version=entry.version, previous=previous,
                                      time=_now(), actor=actor))
    ix.save(reg.root, index)
    extra = on_alias_change(reg, model, alias, previous, entry.version)
    sig = entry.signature
    record = reg.audit(
        action, f"{model}@{entry.version}",
        {"artifact": entry.artifact.digest, "bundle": sig.sha256 if sig else "", "spec": entry.spec.sha256,
         "dataset": entry.dataset.digest or "", "metrics": entry.metrics.digest if entry.metrics else ""},
        {"alias": alias, "previous": previous, "check": checked,
         "gates": {n: g.value for n, g in entry.gates.items()}},
    )
    message = commit_message(index, entry, action, alias, previous, checked, record, actor)
    result = AliasResult(model, alias, entry.version, previous, changed=True, message=message)
    paths = [path, *(reg.abs(sig.bundle) for sig in [sig] if sig), *(reg.abs(s.path) for s in entry.sbom or []), *extra]
    if reg.inside(reg.audit_log) and not gitops.is_ignored(reg.root, reg.rel(reg.audit_log)):
        paths.append(reg.audit_log)
    result.paths = [reg.rel(p) for p in paths]
    if commit:
        try:
            result.commit = gitops.commit_paths(reg.root, result.paths, message)
        except BadInput as exc:
            from sre_llm.fsutil import write_atomic

            write_atomic(path, before)
            reg.audit(f"{action}-aborted", f"{model}@{entry.version}", {}, {"reason": str(exc)})
            raise
    return result


def commit_message(index, entry, action, alias, previous, checked, record, actor) -> str:
    """Subject line plus trailers carrying version, digests and gate figures."""
    model = index.model
    if action == "promote":
        subject = f"registry: promote {model} {entry.version} to {alias}"
    else:
        subject = f"registry: roll back {model} {alias} from {previous} to {entry.version}"
    sig = entry.signature
    lines = [subject, "", f"Model: {model}", f"Version: {entry.version}", f"Alias: {alias}",
             f"Previous: {previous or 'none'}", f"Artifact: {entry.artifact.digest}",
             f"Spec: {entry.spec.path} {entry.spec.sha256}"]
    if entry.dataset.digest:
        lines.append(f"Dataset: {entry.dataset.digest}" + (f" ({entry.dataset.size} examples)" if entry.dataset.size else ""))
    if sig:
        lines.append(f"Signature: {sig.bundle} {sig.sha256} ({sig.method}" + (f", key {sig.key_id})" if sig.key_id else ")"))
    lines.append(f"Check: {checked}")
    lines.append("Gates:")
    lines += [f"  {lineage.gate_line(n, g)}" for n, g in entry.gates.items()]
    lines += [f"Audit: seq {record['seq']} {record['hash']}", f"Actor: {actor}"]
    return "\n".join(lines) + "\n"
