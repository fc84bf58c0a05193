"""Pinned trust on every path: the key-swap attack (re-sign with another key, replace the
untracked public-key file, edit the bundle digest in the index, commit) is refused by
``registry verify``, ``promote`` and ``pull --verify``, each naming both key ids; and the in-pod
entry point :func:`sre_llm.registry.trust.verify_recorded` refuses it the same way."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from registry_support import git, make_key, make_model, make_repo, sre, write_metrics
from test_registry_oci import REGISTRY, _where
from test_registry_oci import registry as registry  # noqa: F401 - the OCI registry fixture, reused

from sre_llm import signing
from sre_llm.registry import index as ix
from sre_llm.registry import trust


def _signed_repo(tmp_path: Path, pin: bool = False) -> Path:
    """demo-model 1.0.0 registered and signed with key A (keys/signing.pem); optionally pinned."""
    repo = make_repo(tmp_path)
    if pin:
        spec = repo / "specs" / "demo.yaml"
        fp = signing.fingerprint((repo / "keys" / "signing.pub.pem").read_bytes())
        spec.write_text(spec.read_text() + f"    trusted_keys:\n      - {fp}\n")
        git(repo, "commit", "-qam", "pin the signing key")
    out = sre("registry", "register", "specs/demo.yaml", "--model", str(make_model(tmp_path / "m", seed=7)),
              "--metrics", str(write_metrics(tmp_path / "eval.json")), "--no-sbom", cwd=repo)
    assert out.returncode == 0, out.stderr
    assert sre("registry", "sign", "1.0.0", cwd=repo).returncode == 0
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "register and sign 1.0.0")
    return repo


def _swap_key(repo: Path, tmp_path: Path, edit_key_id: bool = False) -> tuple[str, str]:
    """The attack: re-sign the stored files with key B over the bundle, put B's public key where
    the spec's public_key points, write B's bundle digest (and optionally key id) into the index,
    commit. Returns (id of A, id of B)."""
    index_file = ix.index_path(repo, "demo-model")
    entry = ix.load(repo, "demo-model").get("1.0.0")
    a_id = entry.signature.key_id
    make_key(tmp_path / "b.pem", tmp_path / "b.pub.pem")
    tree = repo / ".cache" / "artifacts" / "sha256" / entry.artifact.digest[7:]
    signed = signing.sign(tree, repo / entry.signature.bundle, "key", private_key=tmp_path / "b.pem")
    shutil.copy(tmp_path / "b.pub.pem", repo / "keys" / "signing.pub.pem")
    text = index_file.read_text().replace(entry.signature.sha256, signed.bundle_sha256)
    if edit_key_id:
        text = text.replace(a_id, signed.key_id)
    index_file.write_text(text)
    git(repo, "commit", "-qam", "innocent-looking change")
    return a_id, signed.key_id


def _swap_message(a_id: str, b_id: str) -> str:
    return f"verified with key sha256:{b_id}, but the index records key sha256:{a_id} for this signature (re-signed with another key?)"


def test_key_swap_refused_by_verify_and_promote(tmp_path):
    repo = _signed_repo(tmp_path)
    assert sre("registry", "verify", "1.0.0", cwd=repo).returncode == 0
    a_id, b_id = _swap_key(repo, tmp_path)
    head = git(repo, "rev-parse", "HEAD")

    out = sre("registry", "verify", "1.0.0", "--json", cwd=repo)
    assert out.returncode == 1, out.stdout
    error = json.loads(out.stdout)["error"]
    assert error["code"] == "signature_invalid"
    assert error["message"] == _swap_message(a_id, b_id)

    out = sre("registry", "promote", "1.0.0", cwd=repo)
    assert out.returncode == 1
    assert out.stderr.strip() == f"refusing demo-model 1.0.0: signature: {_swap_message(a_id, b_id)}"
    assert ix.load(repo, "demo-model").aliases == {} and git(repo, "rev-parse", "HEAD") == head


def test_key_swap_with_edited_key_id_refused_by_the_pin(tmp_path):
    """When the attacker edits the recorded key id too, only a pin outside the swapped file
    holds: spec.signing.trusted_keys."""
    repo = _signed_repo(tmp_path, pin=True)
    a_id, b_id = _swap_key(repo, tmp_path, edit_key_id=True)
    out = sre("registry", "promote", "1.0.0", cwd=repo)
    assert out.returncode == 1
    assert out.stderr.strip() == (f"refusing demo-model 1.0.0: signature: signed by sha256:{b_id}, which specs/demo.yaml "
                                  f"signing.trusted_keys does not pin (trusted: sha256:{a_id})")


def test_recorded_key_id_cannot_be_deleted(tmp_path):
    repo = _signed_repo(tmp_path)
    index_file = ix.index_path(repo, "demo-model")
    index_file.write_text(re.sub(r"(?m)^ +key_id: .*\n", "", index_file.read_text()))
    out = sre("registry", "verify", "1.0.0", cwd=repo)
    assert out.returncode == 1
    assert out.stderr.strip().startswith("the index records no key id for this key signature; verified with sha256:")


def test_in_pod_entry_point_refuses_the_swap(tmp_path):
    """What a serving pod calls on pulled weights: model dir, bundle, the lineage's signature section."""
    repo = _signed_repo(tmp_path)
    entry = ix.load(repo, "demo-model").get("1.0.0")
    tree = repo / ".cache" / "artifacts" / "sha256" / entry.artifact.digest[7:]
    recorded = entry.signature.model_dump(mode="json")
    pins = trust.Pins(keys=(f"sha256:{entry.signature.key_id}",))
    pub = repo / "keys" / "signing.pub.pem"
    assert trust.verify_recorded(tree, repo / entry.signature.bundle, recorded, pins, public_key=pub) == \
        f"sha256:{entry.signature.key_id}"
    a_id, b_id = _swap_key(repo, tmp_path)
    recorded["sha256"] = signing.file_sha256(repo / entry.signature.bundle)
    with pytest.raises(signing.SignatureInvalid, match=f"signed by sha256:{b_id}, which"):
        trust.verify_recorded(tree, repo / entry.signature.bundle, recorded, pins, public_key=pub)
    with pytest.raises(signing.SignatureInvalid) as exc:  # B pinned too (a rotation): the recorded id still decides
        trust.verify_recorded(tree, repo / entry.signature.bundle, recorded, pins.plus([f"sha256:{b_id}"]), public_key=pub)
    assert str(exc.value) == _swap_message(a_id, b_id)


@pytest.mark.skipif(REGISTRY is None, reason="docker-registry absent (apt-get install docker-registry)")
def test_key_swap_refused_by_pull_verify(registry, tmp_path):  # noqa: F811 - the fixture
    repo = _signed_repo(tmp_path)
    where = _where(registry, repo)
    assert sre("registry", "push", "1.0.0", "--to", where, cwd=repo).returncode == 0
    good = sre("registry", "pull", "1.0.0", "--out", str(tmp_path / "good"), "--verify", cwd=repo)
    assert good.returncode == 0, good.stderr
    a_id, b_id = _swap_key(repo, tmp_path)
    pushed = sre("registry", "push", "1.0.0", "--to", f"{where}:swapped", "--json", cwd=repo)
    assert pushed.returncode == 0, pushed.stderr
    reference = json.loads(pushed.stdout)["reference"]
    # From this repository (its index), and from elsewhere with only the pulled lineage.
    elsewhere = tmp_path / "pod"
    elsewhere.mkdir()
    for args, cwd in (([], repo), (["--spec", str(repo / "specs" / "demo.yaml"), "--public-key",
                                    str(repo / "keys" / "signing.pub.pem"), "--root", str(elsewhere)], None)):
        out_dir = tmp_path / f"out{len(args)}"
        out = sre("registry", "pull", reference, "--out", str(out_dir), "--verify", *args, cwd=cwd)
        assert out.returncode == 1, out.stdout
        assert out.stderr.strip() == _swap_message(a_id, b_id)
        assert not out_dir.exists()
