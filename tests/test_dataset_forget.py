"""Retention and deletion on real stores: payloads posted to the real receiver (``make_server``)
on 127.0.0.1, datasets built by the real pipeline (one of them age-encrypted), a registry index
whose lineage digest is computed the way a training run computes it; then ``sre-llm dataset
forget`` and ``prune`` through the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from sre_llm.collect.alertmanager import STORE_FILE, make_server, read_store
from sre_llm.dataset.build import build
from sre_llm.dataset.crypto import decrypt_folder
from sre_llm.dataset.forget import lineage_digests
from sre_llm.dataset.retention import rewrite_locked
from sre_llm.execute import data as run_data
from sre_llm.registry import index as ix
from sre_llm.spec.load import load_spec

ROOT = Path(__file__).resolve().parent.parent
PAYLOADS = ROOT / "tests" / "fixtures" / "alertmanager" / "webhook-v4.jsonl"
INCIDENT = "3cf3877de38c3d6c"  # TestPodCrashLoopBackOff, pod web-7d4f9c6b8-x2x9q, in the fixture
POD = "web-7d4f9c6b8-x2x9q"

SPEC = """\
apiVersion: sre-llm/v1
kind: ModelRelease
metadata: {{name: forget-demo, version: 1.0.0}}
spec:
  base_model: {{path: .cache/models/tiny, family: qwen2}}
  dataset:
    name: {name}
    min_examples: 20
    sources:
      - {{type: synthetic, count: 150, seed: 3}}
      - {{type: alertmanager, store: store}}
{extra}
"""


def _post_fixture(store: Path) -> None:
    """Every real payload of the fixture, through the real receiver, into ``store``."""
    server = make_server(store, "127.0.0.1:0", token="t0k")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address
    try:
        for line in PAYLOADS.read_text().splitlines():
            req = urllib.request.Request(f"http://{host}:{port}/", data=line.encode(), method="POST",
                                         headers={"Authorization": "Bearer t0k", "Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=10) as resp:
                assert resp.status == 200
    finally:
        server.shutdown()
        server.server_close()


def _keys(tmp: Path) -> tuple[str, Path]:
    import pyrage

    ident = pyrage.x25519.Identity.generate()
    key = tmp / "age.key"
    key.write_text(str(ident) + "\n")
    return str(ident.to_public()), key


def _rows(folder: Path, identity: Path | None = None) -> list[dict]:
    if identity:
        out = folder.parent / ".plain"
        decrypt_folder(folder, f"file:{identity}", out)
        folder = out
    rows = []
    for split in ("train", "validation", "test"):
        rows += [json.loads(x) for x in (folder / f"{split}.jsonl").read_text().splitlines()]
    return rows


def _register(root: Path, name: str, version: str, dataset: str, digest: str) -> None:
    entry = ix.Version.model_validate({
        "version": version, "created": "2026-01-01T00:00:00Z", "created_by": "test",
        "spec": {"path": "specs/x.yaml", "sha256": "0" * 64, "version": version},
        "base_model": {"path": ".cache/models/tiny", "family": "qwen2"},
        "dataset": {"name": dataset, "digest": digest, "size": 1},
        "artifact": {"digest": "sha256:" + "1" * 64, "size": 0, "files": []},
    })
    existing = ix.load(root, name)
    index = existing or ix.RegistryIndex(model=name)
    index = index.model_copy(update={"versions": [*index.versions, entry], "aliases": {"champion": version}})
    ix.save(root, index)


def _sre(*args: str, cwd: Path) -> dict:
    proc = subprocess.run([sys.executable, "-m", "sre_llm", *args, "--json"], cwd=cwd, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return json.loads(proc.stdout)


@pytest.fixture
def project(tmp_path: Path) -> dict:
    recipient, key = _keys(tmp_path)
    _post_fixture(tmp_path / "store")
    plain_spec = tmp_path / "plain.yaml"
    plain_spec.write_text(SPEC.format(name="plain-data", extra=""))
    enc_spec = tmp_path / "enc.yaml"
    enc_spec.write_text(SPEC.format(name="secret-data", extra=(
        f"    encryption: {{recipients: [{recipient}], identity: 'file:{key}'}}")))
    plain = build(load_spec(plain_spec).release, root=tmp_path)
    enc = build(load_spec(enc_spec).release, root=tmp_path)
    # Lineage the way `sre-llm train` records it: the digest of the plaintext files it read.
    used = {"train": "train.jsonl", "validation": "validation.jsonl"}
    plain_digest = "sha256:" + __import__("hashlib").sha256(
        json.dumps(run_data.digest(plain.path, used), sort_keys=True).encode()).hexdigest()
    decrypt_folder(enc.path, f"file:{key}", tmp_path / "dec")
    enc_digest = "sha256:" + __import__("hashlib").sha256(
        json.dumps(run_data.digest(tmp_path / "dec", used), sort_keys=True).encode()).hexdigest()
    _register(tmp_path, "forget-demo", "1.0.0", "plain-data", plain_digest)
    _register(tmp_path, "forget-demo", "1.1.0", "secret-data", enc_digest)
    _register(tmp_path, "other-model", "2.0.0", "other-data", "sha256:" + "2" * 64)
    return {"root": tmp_path, "plain": plain, "enc": enc, "key": key, "plain_spec": plain_spec, "enc_spec": enc_spec}


def test_forget_incident_removes_it_everywhere_and_names_the_models(project: dict) -> None:
    root, plain, enc, key = project["root"], project["plain"], project["enc"], project["key"]
    assert any(POD in r["input"] for r in _rows(plain.path)), "the fixture's alert must be in the dataset first"
    assert any(POD in r["input"] for r in _rows(enc.path, key))
    before = sum(1 for r in read_store(root / "store") if isinstance(r, dict))

    out = _sre("dataset", "forget", str(project["enc_spec"]), "--incident", INCIDENT, "--root", str(root), cwd=root)

    # Raw store: the alert is gone, every other payload stays readable.
    alerts = [r for r in read_store(root / "store") if isinstance(r, dict)]
    assert all(a["fingerprint"] != INCIDENT for a in alerts)
    assert out["stores"][0]["alerts_removed"] == before - len(alerts) > 0
    assert POD not in (root / "store" / STORE_FILE).read_text()
    # Both datasets: a new digest folder without the rows, current moved, the old folder deleted.
    changed = {Path(d["dataset"]).parent.name: d for d in out["datasets"]}
    assert set(changed) == {"plain-data", "secret-data"}
    for name, folder, identity in (("plain-data", plain.path, None), ("secret-data", enc.path, key)):
        new = root / "datasets" / name / "current"
        assert os.readlink(new) == changed[name]["digest"] != folder.name
        assert not folder.exists()
        rows = _rows(new.resolve(), identity)
        assert rows and not any(POD in r["input"] for r in rows)
        card = json.loads((new / "dataset_card.json").read_text())
        assert card["digest"] == changed[name]["digest"] and card["forgotten"][0]["previous_digest"] == folder.name
        assert card["stats"]["examples"] == len(rows)
    assert not (root / "datasets" / "secret-data" / "current" / "train.jsonl").exists()  # still encrypted at rest
    # Lineage: both versions trained on a changed dataset are named; the other model is not.
    assert sorted((m["model"], m["version"], m["lineage"]) for m in out["models"]) == [
        ("forget-demo", "1.0.0", "trained on it"), ("forget-demo", "1.1.0", "trained on it")]
    assert out["models"][1]["aliases"] == ["champion"]

    # Forgetting again finds nothing and changes nothing.
    again = _sre("dataset", "forget", str(project["enc_spec"]), "--incident", INCIDENT, "--root", str(root), cwd=root)
    assert again["datasets"] == [] and again["stores"][0]["alerts_removed"] == 0 and again["models"] == []


def test_forget_by_label_value(project: dict) -> None:
    root = project["root"]
    out = _sre("dataset", "forget", str(project["plain_spec"]), "--label", f"pod={POD}", "--root", str(root), cwd=root)
    assert out["selector"] == {"label": f"pod={POD}"}
    assert POD not in (root / "store" / STORE_FILE).read_text()
    rows = _rows((root / "datasets" / "plain-data" / "current").resolve())
    assert not any(f"pod: {POD}" in r["input"] for r in rows)
    # The encrypted dataset is rewritten too: the identity is on its card.
    assert {Path(d["dataset"]).parent.name for d in out["datasets"]} == {"plain-data", "secret-data"}


def test_forget_needs_exactly_one_selector(project: dict) -> None:
    proc = subprocess.run([sys.executable, "-m", "sre_llm", "dataset", "forget", str(project["plain_spec"]), "--json"],
                          cwd=project["root"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "exactly one of --incident" in proc.stdout + proc.stderr


def test_prune_deletes_past_retention_but_never_current(project: dict) -> None:
    root = project["root"]
    spec = project["plain_spec"]
    spec.write_text(spec.read_text().replace("    min_examples: 20\n",
                                             "    min_examples: 20\n    retention: {raw: 1d, datasets: 30d}\n"))
    store = root / "store" / STORE_FILE
    lines = store.read_text().splitlines(keepends=True)
    entry = json.loads(lines[0])
    entry["received"] = "2020-01-01T00:00:00.000000Z"  # one payload received long ago
    store.write_text(json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n" + "".join(lines[1:]))
    old = root / "datasets" / "plain-data" / "0123456789abcdef"
    old.mkdir()
    (old / "dataset_card.json").write_text("{}")
    os.utime(old / "dataset_card.json", (time.time() - 40 * 86400,) * 2)
    current = project["plain"].path
    os.utime(current / "dataset_card.json", (time.time() - 40 * 86400,) * 2)

    out = _sre("dataset", "prune", str(spec), "--root", str(root), cwd=root)
    assert out["raw"] == [{"file": str(store), "payloads_removed": 1}]
    assert len(store.read_text().splitlines()) == len(lines) - 1
    assert out["datasets"] == [str(old)] and not old.exists() and current.is_dir()


def test_rewrite_keeps_lines_a_non_locking_writer_appends_meanwhile(tmp_path: Path) -> None:
    path = tmp_path / "w.jsonl"
    path.write_text("".join(json.dumps({"n": i}) + "\n" for i in range(1000)))
    stop = threading.Event()
    written: list[int] = []

    def writer() -> None:  # appends the way the receiver's journal does: open per write, O_APPEND
        i = 1000
        while not stop.is_set():
            fd = os.open(path, os.O_WRONLY | os.O_APPEND)
            os.write(fd, (json.dumps({"n": i}) + "\n").encode())
            os.close(fd)
            written.append(i)
            i += 1
            time.sleep(0.001)

    t = threading.Thread(target=writer)
    t.start()
    time.sleep(0.02)
    rewrite_locked(path, lambda line: None if json.loads(line)["n"] < 1000 and json.loads(line)["n"] % 2 else line)
    stop.set()
    t.join()
    got = [json.loads(x)["n"] for x in path.read_text().splitlines()]
    expected = [n for n in range(1000) if n % 2 == 0] + written
    assert sorted(got) == sorted(expected)


def test_lineage_digest_is_the_one_a_run_records(project: dict) -> None:
    card = json.loads((project["plain"].path / "dataset_card.json").read_text())
    index = ix.load(project["root"], "forget-demo")
    plain_sha = {n: e["sha256"] for n, e in card["files"].items()}
    assert index.get("1.0.0").dataset.digest in lineage_digests(plain_sha)
