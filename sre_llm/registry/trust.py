"""Which signers a release trusts (``spec.signing``), and checking a signed model against them.

One policy for ``registry verify``, ``promote``, ``rollback`` and ``pull --verify``:

* key method — the signature must verify with the public key *and* that key's fingerprint must be
  in ``signing.trusted_keys``; when that list is empty, the spec's own ``signing.public_key`` is
  the one key trusted;
* certificate method — the chain must lead to a trusted CA, and when ``trusted_keys`` is set the
  signing certificate's key must be in it;
* sigstore — the certificate must name ``signing.identity`` issued by ``signing.oidc_issuer``.

A signer the policy does not pin fails with exit 1, naming its fingerprint. So does a signer
other than the one the index recorded at signing time (``signature.key_id``): a version re-signed
with another key, whose public-key file was swapped and whose bundle digest was edited in the
index, is refused even where the pin is read from that same swapped file.

:func:`verify_recorded` is the one entry point for a model plus its recorded signature section
(the index entry or a pulled ``lineage.json``): ``registry verify``, ``promote``, ``pull --verify``
and the in-pod check all call it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sre_llm import signing
from sre_llm.errors import BadInput


@dataclass(frozen=True)
class Pins:
    """The trusted signers and where they were read from (for messages)."""

    keys: tuple[str, ...] = ()  # signing.trusted_keys (sha256:<hex>)
    public_key_pin: str | None = None  # fingerprint of signing.public_key (key method when keys is empty)
    identity: str | None = None
    oidc_issuer: str | None = None
    where: str = "the spec"

    def for_method(self, method: str) -> tuple[tuple[str, ...], str]:
        """The fingerprints a signer of ``method`` must be among (empty: no key pin) and their source."""
        if self.keys:
            return self.keys, f"{self.where} signing.trusted_keys"
        if method == "key" and self.public_key_pin:
            return (self.public_key_pin,), f"{self.where} signing.public_key"
        return (), ""

    def plus(self, keys: Sequence[str]) -> Pins:
        """These pins with more trusted keys (``--trusted-key``)."""
        if not keys:
            return self
        for k in keys:
            _check_fingerprint(k)
        where = self.where if self.keys else "--trusted-key"
        return Pins(tuple(dict.fromkeys([*self.keys, *keys])), self.public_key_pin, self.identity, self.oidc_issuer, where)


def from_spec(spec_signing: Any, shown: str, root: str | Path) -> Pins:
    """Pins from a spec's ``signing`` section; paths are relative to ``root``."""
    if spec_signing is None:
        return Pins()
    pin = None
    if spec_signing.public_key:
        path = Path(spec_signing.public_key)
        path = path if path.is_absolute() else Path(root) / path
        if path.is_file():
            pin = signing.fingerprint(path.read_bytes())
    return Pins(tuple(spec_signing.trusted_keys), pin, spec_signing.identity, spec_signing.oidc_issuer, shown)


def load_spec_signing(path: str | Path):
    """``spec.signing`` of the spec file at ``path`` (validated like every spec)."""
    from sre_llm.spec.load import load_spec

    return load_spec(path).release.spec.signing


def _check_fingerprint(value: str) -> None:
    algo, _, hexed = value.partition(":")
    if algo != "sha256" or len(hexed) != 64 or any(c not in "0123456789abcdef" for c in hexed):
        raise BadInput(f"--trusted-key {value!r}: a fingerprint is sha256:<64 lower-case hex digits>")


def verify_model(
    model_dir: Path, bundle: Path, method: str, pins: Pins, *, public_key: Path | None,
    certificate_chain: Sequence[Path], identity: str | None, oidc_issuer: str | None, hashing: signing.Hashing,
    key_id: str | None,
) -> str | None:
    """Check the signature of ``model_dir``, that its signer is pinned and that it is the signer
    recorded at signing time (``key_id``, the index's ``signature.key_id``); the signer's fingerprint.

    ``key_id`` is required (keyword, no default) so that no caller can forget the comparison; it
    may be None only for sigstore, whose signer is pinned by identity. Raises
    :class:`~sre_llm.signing.SignatureInvalid` (exit 1) for a bad, foreign or swapped signature
    and :class:`BadInput` (exit 2) when nothing to verify with was given.
    """
    identity = pins.identity or identity
    oidc_issuer = pins.oidc_issuer or oidc_issuer
    signing.verify(model_dir, bundle, method, public_key=public_key,  # type: ignore[arg-type]
                   certificate_chain=certificate_chain, identity=identity, oidc_issuer=oidc_issuer, hashing=hashing)
    signer = signing.signer_fingerprint(method, bundle, public_key)  # type: ignore[arg-type]
    trusted, where = pins.for_method(method)
    signing.require_pinned(signer, trusted, where)
    signing.require_recorded_key(signer, key_id, method)
    return signer


def verify_recorded(
    model_dir: str | Path, bundle: str | Path, recorded: Mapping[str, Any], pins: Pins, *,
    public_key: Path | None = None, certificate_chain: Sequence[Path] = (), where: str = "the model",
) -> str | None:
    """Verify ``model_dir`` against ``bundle`` as its recorded signature section says; the signer.

    ``recorded`` is the ``signature`` mapping of an index entry or of a pulled ``lineage.json``
    (``sha256``, ``method``, ``key_id``, ``hashing``). The bundle must be the recorded one
    (digest), the signature must verify, its signer must be pinned and must be the recorded
    ``key_id``. This is the function an in-pod check calls before serving pulled weights.
    """
    bundle = Path(bundle)
    if not bundle.is_file():
        raise signing.SignatureInvalid(f"unsigned: {where} has no signature bundle at {bundle}")
    method = recorded.get("method")
    if method not in signing.METHODS:
        raise signing.SignatureInvalid(f"{where}: unknown signing method {method!r} recorded")
    actual = signing.file_sha256(bundle)
    hashing = signing.Hashing(**{k: v for k, v in (recorded.get("hashing") or {}).items()
                                 if k in ("method", "algorithm", "shard_size")})
    signer = verify_model(Path(model_dir), bundle, method, pins, public_key=public_key,
                          certificate_chain=certificate_chain, identity=recorded.get("identity"),
                          oidc_issuer=recorded.get("oidc_issuer"), hashing=hashing, key_id=recorded.get("key_id"))
    if actual != recorded.get("sha256"):
        raise signing.SignatureInvalid(
            f"bundle {bundle.name} verifies but is not the one recorded for {where} ({actual} ≠ {recorded.get('sha256')})")
    return signer


def audit_pins(root: str | Path, specs: Sequence[str | Path] = (), extra: Sequence[str] = ()) -> tuple[str, ...]:
    """The keys whose audit checkpoints are trusted: ``specs`` given, else every spec a registry
    index under ``root`` registered a version from (its ``trusted_keys``, else its ``public_key``'s
    fingerprint), plus ``extra`` (``--trusted-key``)."""
    from sre_llm.registry import index as ix

    root = Path(root)
    paths = [Path(s) for s in specs]
    if not paths:
        seen = {v.spec.path for m in ix.models(root) for v in (ix.load(root, m).versions)}  # type: ignore[union-attr]
        paths = [p if p.is_absolute() else root / p for p in map(Path, sorted(seen))]
    found: list[str] = []
    for path in paths:
        if not path.is_file():
            continue
        pins = from_spec(load_spec_signing(path), str(path), root)
        found += pins.keys or ([pins.public_key_pin] if pins.public_key_pin else [])
    for k in extra:
        _check_fingerprint(k)
    return tuple(dict.fromkeys([*found, *extra]))


def audit_checkpoint(root: str | Path = ".", log: str | Path | None = None, key: str | None = None,
                     spec: str | Path | None = None) -> dict[str, Any]:
    """Append a signed checkpoint to the audit log of ``root`` with ``key`` (a PEM path, ``file:``
    or ``env:`` reference), else the ``signing.private_key`` of ``spec``."""
    from sre_llm import audit

    if key is None:
        if spec is None:
            raise BadInput("audit checkpoint needs a signing key: pass --key (PEM path, file:PATH or env:NAME) or --spec")
        key = load_spec_signing(spec).private_key if Path(spec).is_file() else None
        if key is None:
            raise BadInput(f"{spec}: no such spec, or it sets no signing.private_key: pass --key")
    if not key.startswith(("file:", "env:")):
        key = f"file:{key}"
    with signing.secret_file(key, root) as key_path:
        return audit.checkpoint(key_path, root=root, path=audit.log_path(root, log))
