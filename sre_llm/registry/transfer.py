"""``registry push`` and ``registry pull``: a version to and from an OCI registry, by digest.

Push sends the stored model files, the signature bundle and the lineage (the version's index
entry) as one OCI artifact (:mod:`sre_llm.registry.oci`), then records the manifest digest in the
index and appends a ``push`` audit record. Nothing is tagged until every blob is in, so a push that
fails half-way leaves only unreferenced blobs.

Pull fetches by digest into a staging folder beside ``--out``, checks every blob against its
digest, the files against the lineage's tree digest and (``--verify``) the signature against the
pinned signers (:mod:`sre_llm.registry.trust`), and only then renames the folder into place:
a refused artifact leaves nothing in ``--out``.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sre_llm import secrets, signing
from sre_llm.errors import BadInput, CheckFailed
from sre_llm.registry import index as ix
from sre_llm.registry import oci, trust
from sre_llm.registry.service import Registry
from sre_llm.registry.store import FileEntry, _remove, tree_digest

MODEL_ANNOTATION = "vnd.sre-llm.model"
VERSION_ANNOTATION = "org.opencontainers.image.version"
TREE_ANNOTATION = "vnd.sre-llm.artifact.digest"


def _client(reg: Registry, ref: oci.Reference, token: str | None, username: str | None,
            ca_cert: str | None, plain_http: bool) -> oci.Client:
    if token and not token.startswith(("env:", "file:")):  # never echo what may be the token itself
        raise BadInput("--token: give a reference, env:NAME or file:PATH, not the token itself")
    secret = secrets.resolve(token, reg.root) if token else None
    return oci.Client(ref, token=secret, username=username, ca_cert=reg.abs(ca_cert) if ca_cert else None,
                      plain_http=plain_http)


def lineage_bytes(model: str, entry: ix.Version) -> bytes:
    """The lineage layer: the index entry less what changes after release (status, pushes).
    Canonical JSON, so pushing the same version twice gives the same manifest digest."""
    data = entry.model_dump(mode="json", exclude_none=True, exclude={"status", "oci"})
    return json.dumps({"model": model, **data}, sort_keys=True, separators=(",", ":")).encode() + b"\n"


def push(
    reg: Registry, model: str, ref: str, to: str, *, token: str | None = None, username: str | None = None,
    ca_cert: str | None = None, plain_http: bool = False,
) -> dict[str, Any]:
    """Push version ``ref`` of ``model`` to ``to`` (``oci://HOST/REPO[:TAG]``); record it by digest."""
    dest = oci.Reference.parse(to)
    if dest.digest:
        raise BadInput(f"--to {to}: push to a repository or a tag, not a digest")
    index = reg.load(model)
    entry = reg.entry(index, ref)
    tag = dest.tag or oci.tag_for(entry.version)
    tree = reg.store.local_tree(entry.artifact.digest)
    layers = [oci.Layer(tree / f.path, f"{oci.MODEL_DIR}/{f.path}", oci.FILE_TYPE, "sha256:" + f.sha256, f.size)
              for f in entry.artifact.files]
    sig = entry.signature
    if sig is not None:
        bundle = reg.abs(sig.bundle)
        if not bundle.is_file() or signing.file_sha256(bundle) != sig.sha256:
            raise CheckFailed(f"signature bundle {sig.bundle} is missing or not the one recorded in the index")
        layers.append(oci.Layer(bundle, oci.BUNDLE_NAME, oci.BUNDLE_TYPE, sig.sha256, bundle.stat().st_size))
    staging = _staging_dir(reg.root / ".cache" / "oci", ".push")
    try:
        lineage = staging / oci.LINEAGE_NAME
        data = lineage_bytes(model, entry)
        lineage.write_bytes(data)
        layers.append(oci.Layer(lineage, oci.LINEAGE_NAME, oci.LINEAGE_TYPE, signing.file_sha256(lineage), len(data)))
        annotations = {oci.TITLE: model, VERSION_ANNOTATION: entry.version, MODEL_ANNOTATION: model,
                       TREE_ANNOTATION: entry.artifact.digest}
        with _client(reg, dest, token, username, ca_cert, plain_http) as client:
            try:
                digest, sent = client.push(layers, annotations, tag)
            except CheckFailed as exc:
                if "DIGEST_INVALID" in str(exc):
                    raise CheckFailed(f"stored artifact {entry.artifact.digest} no longer matches the index "
                                      f"(the registry refused a file's digest): {exc}") from None
                raise
    finally:
        _remove(staging)
    record = ix.OciPush(repository=dest.repo_url, tag=tag, digest=digest, signed=sig is not None, pushed=_now())
    with reg.locked(model):
        index = reg.load(model)
        entry = reg.entry(index, entry.version)
        entry.oci = [p for p in entry.oci or [] if p.repository != record.repository] + [record]
        ix.save(reg.root, index)
        reg.audit("push", f"{model}@{entry.version}",
                  {"artifact": entry.artifact.digest, "manifest": digest, "bundle": sig.sha256 if sig else ""},
                  {"to": f"{dest.repo_url}:{tag}", "signed": sig is not None, "blobs_sent": sent,
                   "bytes": entry.artifact.size})
    return {"model": model, "version": entry.version, "reference": record.reference, "tag": tag, "digest": digest,
            "artifact": entry.artifact.digest, "signed": sig is not None, "blobs_sent": sent,
            "bytes": entry.artifact.size}


def _now() -> str:
    from sre_llm.audit import now

    return now()


def _staging_dir(parent: Path, prefix: str = ".pull") -> Path:
    """A new private folder in ``parent``; ours left by processes that died (SIGKILL) are removed."""
    parent.mkdir(parents=True, exist_ok=True)
    for old in parent.glob(f"{prefix}-*-*"):
        try:
            os.kill(int(old.name.split("-")[1]), 0)
        except ProcessLookupError:
            _remove(old)
        except (ValueError, PermissionError):
            continue
    path = parent / f"{prefix}-{os.getpid()}-{uuid.uuid4().hex[:12]}"
    path.mkdir(mode=0o700)
    return path


def resolve_ref(reg: Registry, ref: str, model: str | None) -> tuple[oci.Reference, str | None]:
    """An ``oci://`` reference as given, or a version/alias of the index → its recorded push by digest."""
    if ref.startswith("oci://"):
        return oci.Reference.parse(ref), model
    name = reg.resolve_model(model)
    entry = reg.entry(reg.load(name), ref)
    if not entry.oci:
        raise BadInput(f"{name} {entry.version} was never pushed: run `sre-llm registry push {entry.version} --to oci://HOST/REPO`")
    return oci.Reference.parse(entry.oci[-1].reference), name


def pull(
    reg: Registry, ref: str, out: str | Path, *, verify: bool = False, model: str | None = None,
    public_key: str | None = None, certificate_chain: Sequence[str] = (), trusted_keys: Sequence[str] = (),
    spec: str | None = None, token: str | None = None, username: str | None = None, ca_cert: str | None = None,
    plain_http: bool = False,
) -> dict[str, Any]:
    """Fetch ``ref`` by digest into ``out`` (model/, signature.sigstore.json, lineage.json).

    Every blob is checked against its digest and the files against the lineage's tree digest;
    with ``verify`` the signature must check against a signer the spec pins. On any failure
    nothing is left in ``out``.
    """
    source, name = resolve_ref(reg, ref, model)
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BadInput(f"--out {out}: exists and is not an empty directory")
    if spec is not None and not Path(spec).is_file():
        raise BadInput(f"--spec {spec}: no such file")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = _staging_dir(out.parent)
    try:
        with _client(reg, source, token, username, ca_cert, plain_http) as client:
            digest = client.resolve()
            pulled = client.pull(digest, staging)
        lineage = _lineage(pulled, source)
        files = [FileEntry(t[len(oci.MODEL_DIR) + 1:], h, n) for t, (h, n) in pulled.files.items()
                 if t.startswith(oci.MODEL_DIR + "/")]
        if not files:
            raise CheckFailed(f"{source.repo_url}@{digest}: the artifact holds no model files")
        actual = tree_digest(files)
        if actual != lineage["artifact"]["digest"]:
            raise CheckFailed(f"{source.repo_url}@{digest}: the model files (tree {actual}) are not the ones its "
                              f"lineage records ({lineage['artifact']['digest']})")
        name = name or lineage.get("model")
        result: dict[str, Any] = {"reference": f"{source.repo_url}@{digest}", "digest": digest,
                                  "model": name, "version": lineage.get("version"), "artifact": actual,
                                  "files": len(files), "bytes": sum(f.size for f in files), "verified": False}
        if verify:
            result.update(_verify_pulled(reg, staging, lineage, name, public_key, certificate_chain,
                                         trusted_keys, spec))
        _install(staging, out)
        result["out"] = str(out)
        return result
    finally:
        if staging.exists():
            _remove(staging)


def _install(staging: Path, out: Path) -> None:
    """Rename the checked folder to ``out`` (absent, or the empty folder the user gave)."""
    try:
        if out.exists():
            os.rmdir(out)  # empty: checked before the download; fails if something appeared since
        os.chmod(staging, 0o755)  # noqa: S103 - a published model folder is meant to be world-readable (its files are read-only)
        os.rename(staging, out)
    except OSError as exc:
        raise BadInput(f"--out {out}: {exc.strerror} (something else wrote there during the pull)") from None
    from sre_llm.fsutil import _fsync_dir

    _fsync_dir(out.parent)


def _lineage(pulled: oci.Pulled, source: oci.Reference) -> dict[str, Any]:
    where = f"{source.repo_url}@{pulled.digest}"
    path = pulled.folder / oci.LINEAGE_NAME
    if not path.is_file():
        raise CheckFailed(f"{where}: the artifact has no {oci.LINEAGE_NAME}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        data["artifact"]["digest"]
    except (ValueError, KeyError, TypeError):
        raise CheckFailed(f"{where}: {oci.LINEAGE_NAME} is not an sre-llm lineage record") from None
    return data


def _verify_pulled(reg: Registry, staging: Path, lineage: dict[str, Any], model: str | None,
                   public_key: str | None, chain: Sequence[str], trusted_keys: Sequence[str],
                   spec: str | None) -> dict[str, Any]:
    where = f"{model} {lineage.get('version')}"
    sig = lineage.get("signature")
    bundle = staging / oci.BUNDLE_NAME
    if not sig or not bundle.is_file():
        raise signing.SignatureInvalid(f"unsigned: the artifact of {where} carries no signature bundle")
    if signing.file_sha256(bundle) != sig.get("sha256"):
        raise signing.SignatureInvalid(f"the signature bundle of {where} is not the one its lineage records")
    pins, spec_signing = _pull_pins(reg, lineage, model, spec)
    pins = pins.plus(trusted_keys)
    method = sig.get("method")
    if method not in signing.METHODS:
        raise signing.SignatureInvalid(f"{where}: unknown signing method {method!r} in the lineage")
    recorded = _recorded_key(reg, lineage, model, sig)  # sigstore identity: from the pins only, never the lineage
    key = public_key or (spec_signing.public_key if spec_signing else None)
    if method == "key" and not key:
        raise BadInput(f"{where} is signed with a key: pass --public-key PEM (or --spec with signing.public_key)")
    if method == "key" and not pins.for_method("key")[0] and not public_key:
        raise BadInput(f"{where}: no signer is pinned: pass --spec SPEC, --trusted-key sha256:… or --public-key")
    key_path = reg.abs(key) if key else None
    if key_path is not None and not key_path.is_file():
        raise BadInput(f"{key}: public key not found")
    anchors = list(chain) or (list(spec_signing.certificate_chain[1:]) if spec_signing else [])
    if method == "certificate" and not anchors:
        raise BadInput(f"{where} is signed with a certificate: pass --certificate-chain CA.pem (or --spec)")
    expected = {**sig, "key_id": recorded, "identity": None, "oidc_issuer": None}
    signer = trust.verify_recorded(staging / oci.MODEL_DIR, bundle, expected, pins, public_key=key_path,
                                   certificate_chain=[reg.abs(c) for c in anchors], where=f"the artifact of {where}")
    return {"verified": True, "method": method, "signer": signer}


def _recorded_key(reg: Registry, lineage: dict[str, Any], model: str | None, sig: dict[str, Any]) -> str | None:
    """The key id to expect: this repository's index when it has the version (the artifact's own
    lineage is written by whoever pushed it), else the lineage's; the two must agree."""
    found = ix.load(reg.root, model) if model else None
    entry = found.get(str(lineage.get("version"))) if found else None
    local = entry.signature.key_id if entry is not None and entry.signature is not None else None
    pulled = sig.get("key_id")
    if local and pulled and local != pulled:
        raise signing.SignatureInvalid(f"the artifact's lineage records key sha256:{pulled}, but this repository's "
                                       f"index records key sha256:{local} for {model} {lineage.get('version')}")
    return local or pulled


def _pull_pins(reg: Registry, lineage: dict[str, Any], model: str | None, spec: str | None):
    """Pins from ``--spec``, else from the spec this repository registered the version from."""
    if spec is not None:
        signing_spec = trust.load_spec_signing(spec)
        return trust.from_spec(signing_spec, spec, reg.root), signing_spec
    found = ix.load(reg.root, model) if model else None
    entry = found.get(str(lineage.get("version"))) if found else None
    path = reg.abs(entry.spec.path) if entry else None
    if path is None or not path.is_file():
        return trust.Pins(), None
    signing_spec = trust.load_spec_signing(path)
    return trust.from_spec(signing_spec, entry.spec.path, reg.root), signing_spec  # type: ignore[union-attr]
