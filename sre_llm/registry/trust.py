"""Which signers a release trusts (``spec.signing``), and checking a signed model against them.

One policy for ``registry verify``, ``promote``, ``rollback`` and ``pull --verify``:

* key method — the signature must verify with the public key *and* that key's fingerprint must be
  in ``signing.trusted_keys``; when that list is empty, the spec's own ``signing.public_key`` is
  the one key trusted;
* certificate method — the chain must lead to a trusted CA, and when ``trusted_keys`` is set the
  signing certificate's key must be in it;
* sigstore — the certificate must name ``signing.identity`` issued by ``signing.oidc_issuer``.

A signer the policy does not pin fails with exit 1, naming its fingerprint.
"""

from __future__ import annotations

from collections.abc import Sequence
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
) -> str | None:
    """Check the signature of ``model_dir`` and that its signer is pinned; the signer's fingerprint.

    Raises :class:`~sre_llm.signing.SignatureInvalid` (exit 1) for a bad or foreign signature and
    :class:`BadInput` (exit 2) when nothing to verify with was given.
    """
    identity = pins.identity or identity
    oidc_issuer = pins.oidc_issuer or oidc_issuer
    signing.verify(model_dir, bundle, method, public_key=public_key,  # type: ignore[arg-type]
                   certificate_chain=certificate_chain, identity=identity, oidc_issuer=oidc_issuer, hashing=hashing)
    signer = signing.signer_fingerprint(method, bundle, public_key)  # type: ignore[arg-type]
    trusted, where = pins.for_method(method)
    signing.require_pinned(signer, trusted, where)
    return signer
