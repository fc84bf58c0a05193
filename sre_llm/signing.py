"""Signing and verifying model directories with OpenSSF model-signing (the one crypto module).

Three methods, as in the spec's ``signing.method``:

* ``key`` — an EC private key (P-256/P-384/P-521, PEM); verified with its public key. Offline.
* ``certificate`` — the key plus a signing certificate chaining to a CA you trust. Offline.
* ``sigstore`` — keyless: an OIDC identity (GitHub Actions' token in CI) gets a short-lived Fulcio
  certificate and the signature is logged in Rekor. Needs the network, signing and verifying.

The hashing configuration is explicit and recorded with the signature: model-signing hashes
fixed-size shards of every file in parallel, and its own guess of the configuration from a bundle
fails for sharded manifests (it reads ``shard_size`` back as a float). Nothing in a model
directory is skipped (``ignore_git_paths=False``): a file added later always fails verification.

``model_signing`` is imported inside the functions: it pulls sigstore, protobuf and OpenSSL.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sre_llm.errors import BadInput, CheckFailed
from sre_llm.fsutil import sha256_ref

Method = Literal["key", "certificate", "sigstore"]
METHODS: tuple[Method, ...] = ("key", "certificate", "sigstore")
DEFAULT_SHARD_SIZE = 1 << 26  # 64 MiB: enough shards to keep every core busy on one big file


class SignatureInvalid(CheckFailed):
    """Verification failed; the message is model-signing's reason."""

    code = "signature_invalid"


@dataclass(frozen=True)
class Hashing:
    """How a model is hashed into the signed manifest; signer and verifier must agree."""

    method: Literal["files", "shards"] = "shards"
    algorithm: Literal["sha256", "blake2", "blake3"] = "sha256"
    shard_size: int = DEFAULT_SHARD_SIZE
    max_workers: int | None = None

    def config(self):
        from model_signing import hashing

        cfg = hashing.Config().set_ignored_paths(paths=[], ignore_git_paths=False)
        if self.method == "files":
            return cfg.use_file_serialization(hashing_algorithm=self.algorithm, max_workers=self.max_workers)
        return cfg.use_shard_serialization(
            hashing_algorithm=self.algorithm, shard_size=int(self.shard_size), max_workers=self.max_workers
        )


@dataclass(frozen=True)
class Signed:
    """What :func:`sign` produced: the bundle's digest and the signer's key id."""

    bundle_sha256: str
    key_id: str | None


def public_key_id(public_pem: bytes) -> str:
    """sha256 of the SubjectPublicKeyInfo PEM — the key hint model-signing puts in key bundles."""
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_public_key(public_pem)
    pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(pem).hexdigest()


file_sha256 = sha256_ref  # ``sha256:<hex>`` of a file (the bundle)


def fingerprint(public_pem: bytes) -> str:
    """``sha256:<key id>``: how ``spec.signing.trusted_keys`` names a signer."""
    return "sha256:" + public_key_id(public_pem)


def signer_fingerprint(method: Method, bundle: str | Path, public_key: Path | None = None) -> str | None:
    """The fingerprint of whoever signed ``bundle``, for checking against the pinned signers.

    Key method: the public key that verified it (model-signing has checked that the bundle's key
    hint names it). Certificate method: the key of the signing certificate in the bundle (its chain
    was checked against the trusted CAs). Sigstore: None — its signer is pinned by identity + issuer.
    Call after :func:`verify` passed.
    """
    import base64
    import json

    if method == "key":
        return fingerprint(Path(public_key).read_bytes()) if public_key else None
    if method != "certificate":
        return None
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    material = json.loads(Path(bundle).read_text(encoding="utf-8")).get("verificationMaterial", {})
    certs = material.get("x509CertificateChain", {}).get("certificates") or [material.get("certificate") or {}]
    raw = certs[0].get("rawBytes")
    if not raw:
        raise SignatureInvalid(f"{bundle}: the bundle carries no signing certificate")
    cert = x509.load_der_x509_certificate(base64.b64decode(raw))
    pem = cert.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(pem).hexdigest()


def require_pinned(signer: str | None, pinned: Sequence[str], where: str) -> None:
    """Refuse (exit 1) a signer the spec does not pin, naming its fingerprint and the pinned ones."""
    if signer is None or not pinned or signer in pinned:
        return
    raise SignatureInvalid(f"signed by {signer}, which {where} does not pin (trusted: {', '.join(pinned)})")


def require_recorded_key(signer: str | None, key_id: str | None, method: str) -> None:
    """Refuse (exit 1) a signature whose verifying key is not the key recorded when it was signed.

    ``signer`` is ``sha256:<id>`` of the key that verified; ``key_id`` the bare id the index
    recorded at ``registry sign``. A key or certificate signature with no recorded id is refused
    too: deleting the id must not switch the check off.
    """
    if method == "sigstore" or signer is None:
        return
    if not key_id:
        raise SignatureInvalid(f"the index records no key id for this {method} signature; verified with {signer}; "
                               "refusing (re-sign with `sre-llm registry sign --force`)")
    if signer != f"sha256:{key_id}":
        raise SignatureInvalid(f"verified with key sha256:{signer.removeprefix('sha256:')}, but the index records "
                               f"key sha256:{key_id} for this signature (re-signed with another key?)")


def _key_id_of_private(path: Path) -> str:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(path.read_bytes(), None)
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(pem).hexdigest()


def sign_blob(private_key: Path, data: bytes) -> tuple[str, str, str]:
    """ECDSA-SHA256 signature of ``data`` with the EC private key at ``private_key`` (PEM), for
    small records such as audit checkpoints; (base64 DER signature, key id, public key PEM)."""
    import base64

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        key = serialization.load_pem_private_key(Path(private_key).read_bytes(), None)
    except (ValueError, TypeError) as exc:
        raise BadInput(f"{private_key}: not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise BadInput(f"{private_key}: not an EC key (P-256/P-384/P-521)")
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    signature = key.sign(data, ec.ECDSA(hashes.SHA256()))
    return base64.b64encode(signature).decode(), hashlib.sha256(pem).hexdigest(), pem.decode()


def verify_blob(public_pem: str, data: bytes, signature_b64: str) -> bool:
    """Whether ``signature_b64`` (from :func:`sign_blob`) is a valid signature of ``data`` by ``public_pem``."""
    import base64
    import binascii

    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        key = serialization.load_pem_public_key(public_pem.encode())
        if not isinstance(key, ec.EllipticCurvePublicKey):
            return False
        key.verify(base64.b64decode(signature_b64, validate=True), data, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError, TypeError, binascii.Error):
        return False
    return True


def generate_key(private_path: str | Path, public_path: str | Path, curve: str = "P-256") -> str:
    """Write a new EC key pair (PKCS#8 PEM, private file mode 0600); return its key id."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from sre_llm.fsutil import write_atomic

    curves = {"P-256": ec.SECP256R1, "P-384": ec.SECP384R1, "P-521": ec.SECP521R1}
    if curve not in curves:
        raise BadInput(f"curve {curve!r}: choose one of {', '.join(curves)}")
    if Path(private_path).exists():
        raise BadInput(f"{private_path}: already exists; refusing to overwrite a private key")
    key = ec.generate_private_key(curves[curve]())
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    write_atomic(private_path, private, mode=0o600)
    write_atomic(public_path, public)
    return public_key_id(public)


@contextlib.contextmanager
def secret_file(ref: str, root: str | Path = ".") -> Iterator[Path]:
    """A path holding the secret ``ref`` names: ``file:PATH`` (relative to ``root``) or ``env:NAME``.

    An ``env:`` secret is written to a private temporary file (0600) that is removed afterwards,
    because the library reads keys from paths.
    """
    kind, _, value = ref.partition(":")
    if kind == "file":
        path = Path(value) if Path(value).is_absolute() else Path(root) / value
        if not path.is_file():
            raise BadInput(f"{ref}: no such file (relative paths are from {root})")
        yield path
    elif kind == "env":
        text = os.environ.get(value)
        if not text:
            raise BadInput(f"{ref}: environment variable {value} is not set")
        with tempfile.TemporaryDirectory(prefix="sre-llm-key-") as tmp:
            path = Path(tmp) / "key.pem"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
            yield path
    else:
        raise BadInput(f"{ref!r}: a secret reference is env:NAME or file:PATH")


def sign(
    model_dir: str | Path,
    bundle: str | Path,
    method: Method,
    *,
    private_key: Path | None = None,
    certificate_chain: Sequence[Path] = (),
    hashing: Hashing = Hashing(),
) -> Signed:
    """Hash ``model_dir`` and write a Sigstore bundle to ``bundle`` (atomically)."""
    from model_signing import signing

    cfg = signing.Config().set_hashing_config(hashing.config())
    key_id = None
    try:
        if method == "key":
            if private_key is None:
                raise BadInput("signing method key needs a private key (signing.private_key or --key)")
            cfg.use_elliptic_key_signer(private_key=private_key)
            key_id = _key_id_of_private(private_key)
        elif method == "certificate":
            if private_key is None or not certificate_chain:
                raise BadInput("signing method certificate needs a private key and a certificate chain (signing cert first)")
            cfg.use_certificate_signer(
                private_key=private_key, signing_certificate=certificate_chain[0], certificate_chain=certificate_chain[1:]
            )
            key_id = _key_id_of_private(private_key)
        elif method == "sigstore":
            cfg.use_sigstore_signer(use_ambient_credentials=True)
        else:
            raise BadInput(f"signing method {method!r}: choose one of {', '.join(METHODS)}")
    except ValueError as exc:  # unreadable/unsupported key, key and certificate do not match
        raise BadInput(f"cannot sign with {method}: {exc}") from None
    except Exception as exc:
        if method == "sigstore":
            raise BadInput(_sigstore_offline(exc)) from None
        raise
    bundle = Path(bundle)
    bundle.parent.mkdir(parents=True, exist_ok=True)
    tmp = bundle.with_name(f".{bundle.name}.{os.getpid()}.tmp")
    try:
        cfg.sign(Path(model_dir), tmp)
        os.replace(tmp, bundle)
    except Exception as exc:  # noqa: BLE001 - the crypto edge: name the library's reason
        if method == "sigstore":
            raise BadInput(_sigstore_offline(exc)) from None
        raise CheckFailed(f"signing failed: {_reason(exc)}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return Signed(file_sha256(bundle), key_id)


def verify(
    model_dir: str | Path,
    bundle: str | Path,
    method: Method,
    *,
    public_key: Path | None = None,
    certificate_chain: Sequence[Path] = (),
    identity: str | None = None,
    oidc_issuer: str | None = None,
    hashing: Hashing = Hashing(),
) -> None:
    """Re-hash ``model_dir`` and check it against ``bundle``; raise :class:`SignatureInvalid` if not."""
    from model_signing import verifying

    if not Path(bundle).is_file():
        raise SignatureInvalid(f"unsigned: no signature bundle at {bundle}")
    cfg = verifying.Config().set_hashing_config(hashing.config())
    try:
        if method == "key":
            if public_key is None:
                raise BadInput("verifying method key needs a public key (signing.public_key or --public-key)")
            cfg.use_elliptic_key_verifier(public_key=public_key)
        elif method == "certificate":
            cfg.use_certificate_verifier(certificate_chain=list(certificate_chain))
        elif method == "sigstore":
            if not identity or not oidc_issuer:
                raise BadInput("verifying a sigstore signature needs signing.identity and signing.oidc_issuer")
            cfg.use_sigstore_verifier(identity=identity, oidc_issuer=oidc_issuer)
        else:
            raise BadInput(f"signing method {method!r}: choose one of {', '.join(METHODS)}")
    except (ValueError, OSError) as exc:
        raise BadInput(f"cannot verify with {method}: {_reason(exc)}") from None
    try:
        cfg.verify(Path(model_dir), Path(bundle))
    except Exception as exc:  # noqa: BLE001 - any failure to verify is a failed verification
        if method == "sigstore" and type(exc).__name__ == "TUFError":
            raise BadInput(_sigstore_offline(exc)) from None
        raise SignatureInvalid(_reason(exc)) from None


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    if type(exc).__name__ == "InvalidSignature":
        return "invalid signature: the bundle was altered or made with another key"
    if text.startswith(_MISMATCH):
        return _readable_mismatch(text)
    if type(exc).__name__ == "X509StoreContextError":
        return f"signing certificate not trusted: {text}"
    return text if text else type(exc).__name__


_MISMATCH = "Signature mismatch: "
_DIGEST = re.compile(r"Digest\(algorithm='([^']+)', digest_value=(b'(?:[^'\\]|\\.)*'|b\"(?:[^\"\\]|\\.)*\")\)")


def _readable_mismatch(text: str) -> str:
    """model-signing reports ``Signature mismatch: [<python list repr>]`` with raw ``bytes`` digests;
    keep its words, one difference per ``;``, digests in hex."""
    try:
        items = ast.literal_eval(text[len(_MISMATCH):])
    except (ValueError, SyntaxError):
        return text
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        return text

    def hexed(m: re.Match) -> str:
        return f"{m[1]}:{ast.literal_eval(m[2]).hex()}"

    return _MISMATCH + "; ".join(_DIGEST.sub(hexed, i) for i in items)


def _sigstore_offline(exc: BaseException) -> str:
    return (
        f"sigstore keyless signing needs the network (TUF trust root, Fulcio, Rekor) and an OIDC identity: "
        f"{_reason(exc)}; offline, use signing.method key or certificate"
    )
