"""Real OpenSSF model-signing signatures: key and certificate methods, every tamper case named by
the library's reason, and keyless sigstore failing fast and clearly without the network."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time

import pytest
from registry_support import (
    flip_byte,
    make_ca,
    make_key,
    make_model,
    make_repo,
    sre,
    write_metrics,
)

from sre_llm import signing
from sre_llm.errors import BadInput
from sre_llm.registry import index as ix


@pytest.fixture
def signed(tmp_path):
    """A repo with 1.0.0 registered and signed with the spec's key; returns (repo, stored tree)."""
    repo = make_repo(tmp_path)
    out = sre("registry", "register", "specs/demo.yaml", "--model", str(make_model(tmp_path / "m")),
              "--metrics", str(write_metrics(tmp_path / "eval.json")), cwd=repo)
    assert out.returncode == 0, out.stderr
    out = sre("registry", "sign", "1.0.0", cwd=repo)
    assert out.returncode == 0, out.stderr
    digest = ix.load(repo, "demo-model").get("1.0.0").artifact.digest
    return repo, repo / ".cache" / "artifacts" / "sha256" / digest.split(":")[1]


def _files(repo):
    return [f.model_dump() for f in ix.load(repo, "demo-model").get("1.0.0").artifact.files]


def _verify(repo, *extra):
    return sre("registry", "verify", "1.0.0", *extra, cwd=repo)


def test_sign_records_bundle_and_verify_passes(signed):
    repo, _ = signed
    entry = ix.load(repo, "demo-model").get("1.0.0")
    sig = entry.signature
    assert entry.status == "signed"
    assert sig.bundle == "registry/demo-model/1.0.0.sig" and sig.method == "key"
    assert sig.public_key == "keys/signing.pub.pem"
    assert sig.key_id == signing.public_key_id((repo / "keys" / "signing.pub.pem").read_bytes())
    assert sig.hashing.model_dump() == {"method": "shards", "algorithm": "sha256", "shard_size": 1 << 26}
    bundle = json.loads((repo / sig.bundle).read_text())
    assert bundle["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert bundle["verificationMaterial"]["publicKey"]["hint"] == sig.key_id
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    assert statement["predicateType"].startswith("https://model_signing/signature/")
    out = _verify(repo, "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"ok": True, "model": "demo-model", "version": "1.0.0", "verified": True,
                                      "method": "key", "key_id": sig.key_id, "artifact": entry.artifact.digest,
                                      "bundle": "registry/demo-model/1.0.0.sig"}
    again = sre("registry", "sign", "1.0.0", cwd=repo)
    assert again.returncode == 2 and "already signed" in again.stderr


def test_flipped_byte_fails_with_library_reason(signed):
    repo, tree = signed
    flip_byte(tree / "adapter_model.safetensors")
    out = _verify(repo)
    assert out.returncode == 1
    expected = {f["path"]: f["sha256"] for f in _files(repo)}["adapter_model.safetensors"]
    actual = hashlib.sha256((tree / "adapter_model.safetensors").read_bytes()).hexdigest()
    # One shard covers the whole (small) file, so the shard digests are the file digests, in hex.
    assert out.stderr.strip() == (
        "Signature mismatch: Hash mismatch for 'adapter_model.safetensors:0:300000': "
        f"Expected 'sha256-sharded-67108864:{expected}', Actual 'sha256-sharded-67108864:{actual}'")


def test_added_file_fails(signed):
    repo, tree = signed
    (tree / "extra.txt").write_text("x")
    out = _verify(repo)
    assert out.returncode == 1
    assert out.stderr.strip() == f"Signature mismatch: Extra files found in model '{tree.name}': extra.txt:0:1"


def test_deleted_file_fails(signed):
    repo, tree = signed
    size = (tree / "tokenizer.json").stat().st_size
    (tree / "tokenizer.json").unlink()
    out = _verify(repo)
    assert out.returncode == 1
    assert out.stderr.strip() == f"Signature mismatch: Missing files in model '{tree.name}': tokenizer.json:0:{size}"


def test_wrong_public_key_fails(signed, tmp_path):
    repo, _ = signed
    make_key(tmp_path / "other.pem", tmp_path / "other.pub.pem")
    out = _verify(repo, "--public-key", str(tmp_path / "other.pub.pem"), "--json")
    assert out.returncode == 1
    assert json.loads(out.stdout)["error"]["message"] == (
        "Key mismatch: The public key hash in the signature's verification material does not match the provided public key.")


def test_altered_bundle_fails(signed):
    repo, _ = signed
    path = repo / "registry" / "demo-model" / "1.0.0.sig"
    bundle = json.loads(path.read_text())
    sig = bytearray(base64.b64decode(bundle["dsseEnvelope"]["signatures"][0]["sig"]))
    sig[-1] ^= 1
    bundle["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    path.write_text(json.dumps(bundle))
    out = _verify(repo)
    assert out.returncode == 1
    assert out.stderr.strip() == "invalid signature: the bundle was altered or made with another key"


def test_unsigned_version_fails(tmp_path):
    repo = make_repo(tmp_path)
    assert sre("registry", "register", "specs/demo.yaml", "--model", str(make_model(tmp_path / "m")), cwd=repo).returncode == 0
    out = _verify(repo)
    assert out.returncode == 1
    assert out.stderr.strip() == "unsigned: demo-model 1.0.0 has no signature (run `sre-llm registry sign 1.0.0`)"


def test_signing_refuses_a_tampered_store(tmp_path):
    repo = make_repo(tmp_path)
    assert sre("registry", "register", "specs/demo.yaml", "--model", str(make_model(tmp_path / "m")), cwd=repo).returncode == 0
    digest = ix.load(repo, "demo-model").get("1.0.0").artifact.digest
    flip_byte(repo / ".cache" / "artifacts" / "sha256" / digest.split(":")[1] / "adapter_model.safetensors")
    out = sre("registry", "sign", "1.0.0", cwd=repo)
    assert out.returncode == 1
    assert out.stderr.strip() == (f"stored artifact {digest} no longer matches the index: "
                                  "content of adapter_model.safetensors changed")


def test_certificate_method(tmp_path):
    repo = make_repo(tmp_path)
    pki = make_ca(repo / "pki")
    other = make_ca(tmp_path / "other-pki", name="Other CA")
    assert sre("registry", "register", "specs/demo.yaml", "--model", str(make_model(tmp_path / "m")), cwd=repo).returncode == 0
    out = sre("registry", "sign", "1.0.0", "--method", "certificate", "--key", "pki/leaf-key.pem",
              "--certificate-chain", "pki/leaf.pem", "--certificate-chain", "pki/ca.pem", cwd=repo)
    assert out.returncode == 0, out.stderr
    sig = ix.load(repo, "demo-model").get("1.0.0").signature
    assert sig.method == "certificate" and sig.certificate_chain == ["pki/ca.pem"] and sig.public_key is None
    ok = _verify(repo)
    assert ok.returncode == 0, ok.stderr
    wrong_ca = _verify(repo, "--certificate-chain", str(other["ca"]))
    assert wrong_ca.returncode == 1 and wrong_ca.stderr.strip() == (
        "signing certificate not trusted: self-signed certificate in certificate chain")
    digest = ix.load(repo, "demo-model").get("1.0.0").artifact.digest
    flip_byte(repo / ".cache" / "artifacts" / "sha256" / digest.split(":")[1] / "adapter_model.safetensors", 7)
    tampered = _verify(repo)
    assert tampered.returncode == 1 and tampered.stderr.startswith("Signature mismatch: Hash mismatch for 'adapter_model")
    assert pki["key"].is_file()


def test_sigstore_keyless_fails_fast_offline(tmp_path):
    repo = make_repo(tmp_path)
    assert sre("registry", "register", "specs/demo.yaml", "--model", str(make_model(tmp_path / "m")), cwd=repo).returncode == 0
    start = time.monotonic()
    out = sre("registry", "sign", "1.0.0", "--method", "sigstore", cwd=repo)
    assert time.monotonic() - start < 30
    assert out.returncode == 2
    assert out.stderr.startswith("sigstore keyless signing needs the network (TUF trust root, Fulcio, Rekor)")
    assert out.stderr.strip().endswith("offline, use signing.method key or certificate")
    assert ix.load(repo, "demo-model").get("1.0.0").signature is None
    assert not (repo / "registry" / "demo-model" / "1.0.0.sig").exists()


def test_key_from_environment_and_api(tmp_path, monkeypatch):
    model = make_model(tmp_path / "m")
    key_id = signing.generate_key(tmp_path / "k.pem", tmp_path / "k.pub.pem")
    assert oct((tmp_path / "k.pem").stat().st_mode & 0o777) == "0o600"
    with pytest.raises(BadInput, match="refusing to overwrite"):
        signing.generate_key(tmp_path / "k.pem", tmp_path / "x.pub.pem")
    monkeypatch.setenv("SIGNING_KEY", (tmp_path / "k.pem").read_text())
    with signing.secret_file("env:SIGNING_KEY") as path:
        assert oct(path.stat().st_mode & 0o777) == "0o600"
        signed = signing.sign(model, tmp_path / "m.sig", "key", private_key=path)
    assert not path.exists()
    assert signed.key_id == key_id
    signing.verify(model, tmp_path / "m.sig", "key", public_key=tmp_path / "k.pub.pem")
    # A file-level manifest is the other explicit configuration; verifying with a different one fails.
    files = signing.Hashing(method="files")
    signing.sign(model, tmp_path / "f.sig", "key", private_key=tmp_path / "k.pem", hashing=files)
    signing.verify(model, tmp_path / "f.sig", "key", public_key=tmp_path / "k.pub.pem", hashing=files)
    with pytest.raises(signing.SignatureInvalid, match="Signature mismatch"):
        signing.verify(model, tmp_path / "f.sig", "key", public_key=tmp_path / "k.pub.pem")
    with pytest.raises(BadInput, match="env:NOPE: environment variable NOPE is not set"), signing.secret_file("env:NOPE"):
        pass
    os.chmod(tmp_path / "k.pem", 0o600)
