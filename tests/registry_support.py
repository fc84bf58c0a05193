"""Shared helpers for the registry, signing and audit tests: a real git repo holding a spec, real
model-like directories, real EC keys and a real CA built with ``cryptography``."""

from __future__ import annotations

import contextlib
import datetime
import io
import json
import os
import subprocess
import sys
from pathlib import Path

SRE = [sys.executable, "-m", "sre_llm"]

SPEC = """\
apiVersion: sre-llm/v1
kind: ModelRelease
metadata:
  name: demo-model
  version: {version}
spec:
  base_model:
    path: {base}
    family: qwen2
  dataset:
    name: demo-data
  training:
    method: lora
    device: cpu
    precision: fp32
  evaluation:
    gates:
      remediation_accuracy: 0.90
      parameter_accuracy: 0.95
      false_positive_rate: 0.05
      p95_latency_ms: 500
  signing:
    method: key
    private_key: file:keys/signing.pem
    public_key: keys/signing.pub.pem
"""

GOOD_METRICS = {
    "gates": {
        "remediation_accuracy": {"value": 0.96, "threshold": 0.9, "passed": True},
        "parameter_accuracy": {"value": 0.97, "threshold": 0.95, "passed": True},
    },
    "metrics": {"false_positive_rate": 0.02},
    "latency": {"p50_ms": 80.0, "p95_ms": 210.5},
}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def make_repo(tmp_path: Path, version: str = "1.0.0", base: str = ".cache/models/tiny") -> Path:
    """A GitOps repo with one spec, a signing key pair and a first commit."""
    repo = tmp_path / "gitops"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "Release Bot")
    git(repo, "config", "user.email", "bot@example.org")
    (repo / "specs").mkdir()
    write_spec(repo, version, base)
    (repo / ".gitignore").write_text(".cache/\nkeys/*.pem\n!keys/*.pub.pem\n")
    make_key(repo / "keys" / "signing.pem", repo / "keys" / "signing.pub.pem")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "init")
    return repo


def write_spec(repo: Path, version: str, base: str = ".cache/models/tiny") -> Path:
    path = repo / "specs" / "demo.yaml"
    path.write_text(SPEC.format(version=version, base=base))
    return path


def make_model(path: Path, seed: int = 1, size: int = 300_000) -> Path:
    """A LoRA-adapter-like directory: random weights, configs and tokenizer files."""
    import random

    rng = random.Random(seed)
    path.mkdir(parents=True, exist_ok=True)
    (path / "adapter_model.safetensors").write_bytes(rng.randbytes(size))
    (path / "adapter_config.json").write_text(json.dumps({"r": 8, "lora_alpha": 16, "peft_type": "LORA", "seed": seed}))
    (path / "tokenizer.json").write_text(json.dumps({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}}}))
    (path / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 1024}))
    (path / "special_tokens_map.json").write_text(json.dumps({"eos_token": "<|im_end|>"}))
    return path


def write_metrics(path: Path, metrics: dict | None = None) -> Path:
    path.write_text(json.dumps(metrics if metrics is not None else GOOD_METRICS))
    return path


def make_key(private: Path, public: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    private.parent.mkdir(parents=True, exist_ok=True)
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))


def make_ca(folder: Path, name: str = "Test CA") -> dict[str, Path]:
    """A root CA and a leaf code-signing certificate with its EC key, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "release-signer")]))
        .issuer_name(ca_name).public_key(leaf_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = {"ca": folder / "ca.pem", "leaf": folder / "leaf.pem", "key": folder / "leaf-key.pem"}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["leaf"].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))
    return paths


def sre(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``sre-llm ARGS`` through its real entry point (``main``: exit codes, error lines).

    In this process by default, which saves a Python start-up per call (the CI budget is tight);
    in a subprocess when ``env`` is given, since the environment must then differ.
    """
    if env is not None:
        return subprocess.run([*SRE, *args], capture_output=True, text=True, cwd=cwd, env={**os.environ, **env}, check=False)
    from sre_llm.cli import main

    out, err, before = io.StringIO(), io.StringIO(), os.getcwd()
    code = 0
    try:
        os.chdir(cwd or before)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main(list(args))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        os.chdir(before)
    return subprocess.CompletedProcess([*SRE, *args], code, out.getvalue(), err.getvalue())


def flip_byte(path: Path, offset: int = 1000) -> None:
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))
