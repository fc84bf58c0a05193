"""The OCI artifact store against a real registry: Debian's ``docker-registry`` (the CNCF
distribution registry) on 127.0.0.1, started here. Push, pull by digest, verify against the signers
the spec pins; a blob changed in the registry's storage, a tampered, unsigned or foreign-signed
artifact is refused with exit 1 and nothing in ``--out``. TLS and token auth on a second instance."""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import json
import os
import re
import shutil
import warnings
from pathlib import Path

import httpx
import pytest
from oci_support import REGISTRY, Server, free_port
from registry_support import (
    flip_byte,
    git,
    make_key,
    make_model,
    make_repo,
    sre,
    write_metrics,
)

from sre_llm import signing
from sre_llm.registry import index as ix
from sre_llm.registry import oci

pytestmark = pytest.mark.skipif(REGISTRY is None, reason="docker-registry absent (apt-get install docker-registry)")
_free_port = free_port


@pytest.fixture(scope="session")
def registry(tmp_path_factory):
    server = Server(tmp_path_factory.mktemp("oci-registry"))
    yield server
    server.stop()


@pytest.fixture
def repo(tmp_path):
    """A GitOps repo whose spec pins its key; 1.0.0 registered and signed. Each test has its own
    model bytes and its own repository in the registry (blobs are shared across repositories)."""
    repo = make_repo(tmp_path)
    pub = (repo / "keys" / "signing.pub.pem").read_bytes()
    spec = repo / "specs" / "demo.yaml"
    spec.write_text(spec.read_text() + f"    trusted_keys:\n      - {signing.fingerprint(pub)}\n")
    git(repo, "commit", "-qam", "pin the signing key")
    _register(repo, tmp_path, "1.0.0")
    assert sre("registry", "sign", "1.0.0", cwd=repo).returncode == 0
    return repo


def _seed(repo: Path, version: str = "1.0.0") -> int:
    return int(hashlib.sha256(f"{repo}@{version}".encode()).hexdigest()[:8], 16)


def _register(repo: Path, tmp_path: Path, version: str) -> None:
    spec = repo / "specs" / "demo.yaml"
    spec.write_text(re.sub(r"(?m)^  version: .*$", f"  version: {version}", spec.read_text()))
    out = sre("registry", "register", "specs/demo.yaml", "--model",
              str(make_model(tmp_path / f"m-{version}", _seed(repo, version))),
              "--metrics", str(write_metrics(tmp_path / "eval.json")), cwd=repo)
    assert out.returncode == 0, out.stderr


def _where(registry: Server, repo: Path) -> str:
    return f"oci://{registry.host}/models/demo-{_seed(repo)}"


def _json(out) -> dict:
    data = json.loads(out.stdout)
    assert data["ok"] is (out.returncode == 0), (out.stdout, out.stderr)
    return data


def _nothing_in(out_dir: Path) -> None:
    assert not out_dir.exists() or list(out_dir.iterdir()) == []
    assert not [p for p in out_dir.parent.iterdir() if p.name.startswith(".pull-")], "staging left behind"


def test_push_pull_verify_round_trip(registry, repo, tmp_path):
    pushed = _json(sre("registry", "push", "1.0.0", "--to", _where(registry, repo), "--json", cwd=repo))
    digest = pushed["digest"]
    assert pushed["reference"] == f"{_where(registry, repo)}@{digest}" and pushed["tag"] == "1.0.0"
    assert pushed["signed"] is True and pushed["blobs_sent"] == 7  # 5 files, the bundle, the lineage
    entry = ix.load(repo, "demo-model").get("1.0.0")
    assert [(p.repository, p.tag, p.digest, p.signed) for p in entry.oci] == [(_where(registry, repo), "1.0.0", digest, True)]
    record = json.loads((repo / "audit" / "audit.jsonl").read_text().splitlines()[-1])
    assert record["action"] == "push" and record["digests"]["manifest"] == digest
    assert record["digests"]["artifact"] == entry.artifact.digest

    again = _json(sre("registry", "push", "1.0.0", "--to", _where(registry, repo), "--json", cwd=repo))
    assert again["digest"] == digest and again["blobs_sent"] == 0  # same bytes, same manifest: nothing re-sent

    # The manifest as ORAS would write it: artifactType, empty config, one titled layer per file.
    raw = httpx.get(f"http://{registry.host}/v2/models/demo-{_seed(repo)}/manifests/{digest}",
                    headers={"Accept": oci.MANIFEST_TYPE}).content
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == digest
    manifest = json.loads(raw)
    assert manifest["artifactType"] == "application/vnd.sre-llm.model.v1"
    assert manifest["config"]["mediaType"] == "application/vnd.oci.empty.v1+json"
    assert {la["annotations"]["org.opencontainers.image.title"]: la["mediaType"] for la in manifest["layers"]} == {
        **{f"model/{f.path}": "application/vnd.sre-llm.model.file.v1" for f in entry.artifact.files},
        "signature.sigstore.json": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "lineage.json": "application/vnd.sre-llm.lineage.v1+json"}

    out_dir = tmp_path / "pulled"
    got = _json(sre("registry", "pull", "1.0.0", "--out", str(out_dir), "--verify", "--json", cwd=repo))
    assert got["digest"] == digest and got["verified"] is True and got["method"] == "key"
    assert got["signer"] == signing.fingerprint((repo / "keys" / "signing.pub.pem").read_bytes())
    stored = repo / ".cache" / "artifacts" / "sha256" / entry.artifact.digest[7:]
    for f in entry.artifact.files:
        assert (out_dir / "model" / f.path).read_bytes() == (stored / f.path).read_bytes()
    assert (out_dir / "signature.sigstore.json").read_bytes() == (repo / entry.signature.bundle).read_bytes()
    assert json.loads((out_dir / "lineage.json").read_text())["artifact"]["digest"] == entry.artifact.digest

    # By digest, from anywhere, pinned by the spec given: the pod's step.
    elsewhere = tmp_path / "pod"
    elsewhere.mkdir()
    got = _json(sre("registry", "pull", f"{_where(registry, repo)}@{digest}", "--out", str(elsewhere / "model"),
                    "--verify", "--spec", str(repo / "specs" / "demo.yaml"), "--public-key",
                    str(repo / "keys" / "signing.pub.pem"), "--root", str(elsewhere), "--json"))
    assert got["verified"] is True and sorted(p.name for p in (elsewhere / "model").iterdir()) == [
        "lineage.json", "model", "signature.sigstore.json"]
    # A tag is resolved to its digest once.
    got = _json(sre("registry", "pull", f"{_where(registry, repo)}:1.0.0", "--out", str(tmp_path / "by-tag"), "--json",
                    cwd=repo))
    assert got["digest"] == digest and got["verified"] is False


def test_blob_changed_in_registry_storage_is_refused(registry, repo, tmp_path):
    pushed = _json(sre("registry", "push", "1.0.0", "--to", _where(registry, repo), "--json", cwd=repo))
    weights = next(f for f in ix.load(repo, "demo-model").get("1.0.0").artifact.files if f.path.endswith(".safetensors"))
    flip_byte(registry.blob("sha256:" + weights.sha256), 4321)
    for extra in ([], ["--verify"]):
        out_dir = tmp_path / f"out{len(extra)}"
        out = sre("registry", "pull", pushed["reference"], "--out", str(out_dir), *extra, cwd=repo)
        assert out.returncode == 1
        assert out.stderr.startswith(f"adapter_model.safetensors: blob sha256:{weights.sha256} from the registry "
                                     "does not match its digest"), out.stderr
        _nothing_in(out_dir)
    (tmp_path / "empty").mkdir()
    assert sre("registry", "pull", pushed["reference"], "--out", str(tmp_path / "empty"), cwd=repo).returncode == 1
    _nothing_in(tmp_path / "empty")
    assert (tmp_path / "empty").is_dir()  # an empty folder given is left as it was


def test_pull_verify_refuses_tampered_unsigned_and_foreign(registry, repo, tmp_path):
    where = _where(registry, repo)
    good = _json(sre("registry", "push", "1.0.0", "--to", where, "--json", cwd=repo))

    # Tampered: a changed weight file with a lineage rewritten to match — every digest checks, the signature does not.
    folder = tmp_path / "tamper"
    with oci.Client(oci.Reference.parse(where)) as client:
        pulled = client.pull(good["digest"], folder)
        flip_byte(folder / "model" / "adapter_model.safetensors", 99)
        lineage = json.loads((folder / "lineage.json").read_text())
        files = {f["path"]: f for f in lineage["artifact"]["files"]}
        files["adapter_model.safetensors"]["sha256"] = signing.file_sha256(folder / "model" / "adapter_model.safetensors")[7:]
        from sre_llm.registry.store import FileEntry, tree_digest

        lineage["artifact"]["digest"] = tree_digest([FileEntry(f["path"], f["sha256"], f["size"]) for f in files.values()])
        (folder / "lineage.json").write_text(json.dumps(lineage))
        layers = []
        for la in pulled.manifest["layers"]:
            title = la["annotations"][oci.TITLE]
            path = folder / title
            layers.append(oci.Layer(path, title, la["mediaType"], signing.file_sha256(path), path.stat().st_size))
        tampered, _ = client.push(layers, pulled.manifest["annotations"], "tampered")

    # Unsigned: 1.0.1 pushed before signing.
    _register(repo, tmp_path, "1.0.1")
    unsigned = _json(sre("registry", "push", "1.0.1", "--to", where, "--json", cwd=repo))
    assert unsigned["signed"] is False

    # Foreign: 1.0.2 signed with a key the spec does not pin.
    make_key(repo / "keys" / "foreign.pem", repo / "keys" / "foreign.pub.pem")
    foreign_fp = signing.fingerprint((repo / "keys" / "foreign.pub.pem").read_bytes())
    pinned_fp = signing.fingerprint((repo / "keys" / "signing.pub.pem").read_bytes())
    _register(repo, tmp_path, "1.0.2")
    assert sre("registry", "sign", "1.0.2", "--key", "file:keys/foreign.pem", "--public-key", "keys/foreign.pub.pem",
               cwd=repo).returncode == 0
    foreign = _json(sre("registry", "push", "1.0.2", "--to", where, "--json", cwd=repo))

    cases = {
        "tampered": (f"{where}@{tampered}", [], "Signature mismatch: Hash mismatch for 'adapter_model.safetensors:0:"),
        "unsigned": (unsigned["reference"], [], "unsigned: the artifact of demo-model 1.0.1 carries no signature bundle"),
        "foreign": (foreign["reference"], ["--public-key", "keys/foreign.pub.pem"],
                    f"signed by {foreign_fp}, which specs/demo.yaml signing.trusted_keys does not pin (trusted: {pinned_fp})"),
    }
    for name, (ref, extra, reason) in cases.items():
        out_dir = tmp_path / f"out-{name}"
        out = sre("registry", "pull", ref, "--out", str(out_dir), "--verify", *extra, "--json", cwd=repo)
        assert out.returncode == 1, (name, out.stdout, out.stderr)
        assert _json(out)["error"]["message"].startswith(reason), (name, out.stdout)
        _nothing_in(out_dir)

    ok_dir = tmp_path / "out-good"
    out = sre("registry", "pull", good["reference"], "--out", str(ok_dir), "--verify", cwd=repo)
    assert out.returncode == 0, out.stderr
    assert (ok_dir / "model" / "adapter_model.safetensors").is_file()

    # verify and promote apply the same pins to the local store.
    out = sre("registry", "verify", "1.0.2", "--json", cwd=repo)
    assert out.returncode == 1 and _json(out)["error"]["message"] == (
        f"signed by {foreign_fp}, which specs/demo.yaml signing.trusted_keys does not pin (trusted: {pinned_fp})")
    out = sre("registry", "promote", "1.0.2", cwd=repo)
    assert out.returncode == 1 and out.stderr.startswith(f"refusing demo-model 1.0.2: signature: signed by {foreign_fp}")
    assert ix.load(repo, "demo-model").aliases == {}
    # Pinning it too (with --trusted-key on pull) lets it through.
    out = sre("registry", "pull", foreign["reference"], "--out", str(tmp_path / "out-trusted"), "--verify",
              "--public-key", "keys/foreign.pub.pem", "--trusted-key", foreign_fp, cwd=repo)
    assert out.returncode == 0, out.stderr


def test_bad_input_is_exit_2_with_the_reason(registry, repo, tmp_path):
    cases = [
        (["push", "1.0.0", "--to", "https://example.org/x"],
         "'https://example.org/x': an OCI reference is oci://HOST[:PORT]/REPOSITORY[:TAG|@sha256:DIGEST]"),
        (["push", "1.0.0", "--to", f"oci://{registry.host}/Models"],
         f"'oci://{registry.host}/Models': repository 'Models' must be lower-case path components ([a-z0-9] with . _ -)"),
        (["push", "1.0.0", "--to", f"oci://{registry.host}/m@sha256:{'0' * 64}"],
         f"--to oci://{registry.host}/m@sha256:{'0' * 64}: push to a repository or a tag, not a digest"),
        (["pull", "1.0.0", "--out", str(tmp_path / "x")],
         "demo-model 1.0.0 was never pushed: run `sre-llm registry push 1.0.0 --to oci://HOST/REPO`"),
        (["pull", f"oci://{registry.host}/models/none@sha256:{'0' * 64}", "--out", str(tmp_path / "x")],
         f"oci://{registry.host}/models/none@sha256:{'0' * 64}: no such artifact in the registry"),
        (["pull", f"oci://127.0.0.1:{_free_port()}/models/x:1.0.0", "--out", str(tmp_path / "x")],
         "cannot connect to the registry"),
        (["push", "1.0.0", "--to", f"oci://{registry.host}/models/x", "--token", "env:SRE_LLM_TEST_UNSET"],
         "env:SRE_LLM_TEST_UNSET: environment variable SRE_LLM_TEST_UNSET is not set"),
        (["push", "1.0.0", "--to", f"oci://{registry.host}/models/x", "--token", "ghp_s3cr3tvalue"],
         "--token: give a reference, env:NAME or file:PATH, not the token itself"),
    ]
    for args, message in cases:
        out = sre("registry", *args, "--json", cwd=repo)
        assert out.returncode == 2, (args, out.stdout)
        assert message in _json(out)["error"]["message"], (args, out.stdout)
        assert "s3cr3t" not in out.stdout + out.stderr
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    pushed = _json(sre("registry", "push", "1.0.0", "--to", _where(registry, repo), "--json", cwd=repo))
    out = sre("registry", "pull", pushed["reference"], "--out", str(tmp_path / "full"), cwd=repo)
    assert out.returncode == 2 and out.stderr.strip() == f"--out {tmp_path / 'full'}: exists and is not an empty directory"
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["keep.txt"]


def test_trusted_keys_must_be_fingerprints(tmp_path):
    repo = make_repo(tmp_path)
    spec = repo / "specs" / "demo.yaml"
    spec.write_text(spec.read_text() + "    trusted_keys: [abc]\n")
    out = sre("validate", str(spec))
    assert out.returncode == 2
    assert out.stderr.strip() == (f"{spec}:26:20: spec.signing.trusted_keys[0]: must be a public key fingerprint "
                                  "sha256:<64 lower-case hex digits>, as `sre-llm registry keygen` prints (got 'abc')")


# ── TLS and a token, on a second registry ─────────────────────────────────────────────────────


def _tls_pair(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "tls.crt", folder / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_tls_and_token_reference(repo, tmp_path_factory, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # bcrypt for htpasswd; Python 3.11 (the venv's) still has it

    folder = tmp_path_factory.mktemp("oci-tls")
    cert, key = _tls_pair(folder)
    secret = "tok-" + os.urandom(8).hex()
    (folder / "htpasswd").write_text(f"ci:{crypt.crypt(secret, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))}\n")
    server = Server(folder, scheme="https", ca=cert, extra=(
        f"  tls:\n    certificate: {cert}\n    key: {key}\n"
        f"auth:\n  htpasswd:\n    realm: sre-llm-test\n    path: {folder / 'htpasswd'}\n"))
    try:
        where = f"oci://{server.host}/models/tls"
        env = {"REG_TOKEN": secret}
        out = sre("registry", "push", "1.0.0", "--to", where, "--ca-cert", str(cert), "--json", cwd=repo)
        assert out.returncode == 2 and "the registry asks for credentials (401): pass --token" in out.stdout
        out = sre("registry", "push", "1.0.0", "--to", where, "--json", "--token", "env:REG_TOKEN", "--username", "ci",
                  cwd=repo, env=env)
        assert out.returncode == 2 and "refused plain HTTP (it speaks HTTPS?): pass --ca-cert" in out.stdout
        out = sre("registry", "push", "1.0.0", "--to", where, "--ca-cert", str(cert), "--token", "env:REG_TOKEN",
                  "--username", "ci", "--json", cwd=repo, env=env)
        assert out.returncode == 0, out.stdout + out.stderr
        out_dir = tmp_path / "tls-out"
        pulled = sre("registry", "pull", "1.0.0", "--out", str(out_dir), "--verify", "--ca-cert", str(cert),
                     "--token", "env:REG_TOKEN", "--username", "ci", "--json", cwd=repo, env=env)
        assert pulled.returncode == 0, pulled.stdout + pulled.stderr
        assert (out_dir / "model" / "adapter_model.safetensors").is_file()
        for text in (out.stdout, out.stderr, pulled.stdout, pulled.stderr,
                     (repo / "audit" / "audit.jsonl").read_text(), (repo / "registry" / "demo-model.yaml").read_text()):
            assert secret not in text
    finally:
        server.stop()


def test_oci_repository_as_the_artifact_store(registry, tmp_path):
    """--store oci://…: register pushes the tree, a fresh clone's verify pulls it back (checked)."""
    repo = make_repo(tmp_path)
    store = f"oci://{registry.host}/store/{_seed(repo)}"
    model = make_model(tmp_path / "m", _seed(repo, "store"))
    out = sre("registry", "register", "specs/demo.yaml", "--model", str(model), "--store", store,
              "--metrics", str(write_metrics(tmp_path / "eval.json")), "--json", cwd=repo)
    assert out.returncode == 0, out.stdout
    assert sre("registry", "sign", "1.0.0", "--store", store, cwd=repo).returncode == 0
    entry = ix.load(repo, "demo-model").get("1.0.0")
    tag = "sha256-" + entry.artifact.digest[7:]
    assert httpx.head(f"http://{registry.host}/v2/store/{_seed(repo)}/manifests/{tag}",
                      headers={"Accept": oci.MANIFEST_TYPE}).status_code == 200

    shutil.rmtree(repo / ".cache" / "artifacts")  # a fresh checkout: only the index and the OCI store
    out = sre("registry", "verify", "1.0.0", "--store", store, "--json", cwd=repo)
    assert out.returncode == 0, out.stdout
    assert (repo / ".cache" / "artifacts" / "sha256" / entry.artifact.digest[7:] / "adapter_model.safetensors").is_file()

    shutil.rmtree(repo / ".cache" / "artifacts")
    weights = next(f for f in entry.artifact.files if f.path.endswith(".safetensors"))
    flip_byte(registry.blob("sha256:" + weights.sha256), 77)
    out = sre("registry", "verify", "1.0.0", "--store", store, "--json", cwd=repo)
    assert out.returncode == 1 and "does not match its digest" in _json(out)["error"]["message"]
    assert not (repo / ".cache" / "artifacts" / "sha256").exists() or \
        list((repo / ".cache" / "artifacts" / "sha256").iterdir()) == []
