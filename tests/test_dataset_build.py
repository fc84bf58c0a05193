"""`sre-llm dataset build/show/synth`: files, card, current symlink, exit codes, encryption."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from sre_llm.cli import main
from sre_llm.dataset.build import _split_lines
from sre_llm.dataset.crypto import decrypt_to
from sre_llm.answer.format import INSTRUCTION, parse_output
from sre_llm.dataset.pipeline import Result
from sre_llm.errors import BadInput, CheckFailed


def cli(*args: str) -> int:
    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def write_spec(tmp: Path, **dataset) -> Path:
    doc = {
        "apiVersion": "sre-llm/v1", "kind": "ModelRelease",
        "metadata": {"name": "demo", "version": "0.1.0"},
        "spec": {"base_model": {"path": "models/x", "family": "qwen2"},
                 "dataset": {"name": "demo-data", "sources": [{"type": "synthetic", "count": 400, "seed": 5}],
                             "min_examples": 100, **dataset}},
    }
    path = tmp / "spec.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_build_publishes_files_card_and_current(tmp_path, capsys):
    spec = write_spec(tmp_path)
    assert cli("dataset", "build", str(spec), "--root", str(tmp_path), "--json") == 0
    out = json.loads(capsys.readouterr().out)
    folder = Path(out["path"])
    card = out["card"]
    assert folder.parent.name == "demo-data" and folder.name == card["digest"] and len(card["digest"]) == 16
    current = tmp_path / "datasets" / "demo-data" / "current"
    assert current.is_symlink() and os.readlink(current) == card["digest"]
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["README.md", "dataset_card.json", "dataset_info.json", "failed.jsonl", "quarantine.jsonl",
                     "test.jsonl", "train.jsonl", "validation.jsonl"]
    for name, meta in card["files"].items():
        data = (folder / name).read_bytes()
        assert meta == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    # dataset_info.json: exactly what the renderer writes for this release
    from sre_llm.render.llamafactory import dataset_info
    from sre_llm.spec.load import load_spec

    assert json.loads((folder / "dataset_info.json").read_text()) == dataset_info(load_spec(spec).release)
    rows = [json.loads(l) for l in (folder / "train.jsonl").read_text().splitlines()]
    assert len(rows) == card["stats"]["splits"]["train"]
    assert all(set(r) == {"instruction", "input", "output"} and r["instruction"] == INSTRUCTION for r in rows)
    assert all(parse_output(r["output"], strict=True) for r in rows)
    total = sum(card["stats"]["splits"].values())
    assert total == card["stats"]["examples"] and sum(card["stats"]["functions"]["train"].values()) == len(rows)
    md = (folder / "README.md").read_text()
    assert md.startswith(f"# Dataset demo-data ({card['digest']})\n")
    assert "| pod-restart |" in md and card["files"]["train.jsonl"]["sha256"] in md

    # same data again: same folder, nothing rewritten
    before = (folder / "dataset_card.json").stat().st_mtime_ns
    assert cli("dataset", "build", str(spec), "--root", str(tmp_path)) == 0
    assert capsys.readouterr().out.startswith(f"unchanged  {folder}")
    assert (folder / "dataset_card.json").stat().st_mtime_ns == before

    # show, by spec / name / folder
    assert cli("dataset", "show", str(spec), "--root", str(tmp_path), "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["digest"] == card["digest"] and shown["resolved"] == str(folder.resolve())
    assert cli("dataset", "show", "demo-data", "--root", str(tmp_path)) == 0
    assert "## Splits and class balance" in capsys.readouterr().out


def test_new_data_moves_current_and_keeps_old_examples_in_place(tmp_path, capsys):
    spec = write_spec(tmp_path)
    cli("dataset", "build", str(spec), "--root", str(tmp_path), "--json")
    first = json.loads(capsys.readouterr().out)
    extra = tmp_path / "more.jsonl"
    assert cli("dataset", "synth", "--count", "300", "--seed", "77", "--out", str(extra)) == 0
    capsys.readouterr()
    cli("dataset", "build", str(spec), "--root", str(tmp_path), "--input", str(extra), "--json")
    second = json.loads(capsys.readouterr().out)
    assert second["card"]["digest"] != first["card"]["digest"]
    assert os.readlink(tmp_path / "datasets/demo-data/current") == second["card"]["digest"]
    assert second["card"]["stats"]["sources"]["synthetic"]["alerts_read"] == 700  # records keep their own source
    old, new = Path(first["path"]), Path(second["path"])
    for split in ("train", "validation", "test"):
        others = {o for o in ("train", "validation", "test") if o != split}
        new_elsewhere = {l for o in others for l in (new / f"{o}.jsonl").read_text().splitlines()}
        for line in (old / f"{split}.jsonl").read_text().splitlines():
            assert line not in new_elsewhere


def test_too_few_examples_exit_2_and_nothing_written(tmp_path, capsys):
    spec = write_spec(tmp_path, min_examples=5000)
    assert cli("dataset", "build", str(spec), "--root", str(tmp_path)) == 2
    err = capsys.readouterr().err
    assert "dataset demo-data: " in err and "fewer than min_examples 5000 (400 alerts read" in err
    assert not (tmp_path / "datasets").exists() or not any((tmp_path / "datasets").rglob("*.jsonl"))


def test_bad_inputs_exit_2(tmp_path, capsys):
    spec = write_spec(tmp_path)
    assert cli("dataset", "build", str(spec), "--root", str(tmp_path), "--input", str(tmp_path / "nope.jsonl")) == 2
    assert capsys.readouterr().err.strip() == f"{tmp_path / 'nope.jsonl'}: no such file"
    assert cli("dataset", "show", "missing", "--root", str(tmp_path)) == 2
    assert "missing: no built dataset found" in capsys.readouterr().err


def test_synth_cli_is_deterministic(tmp_path, capsys):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert cli("dataset", "synth", "--count", "50", "--seed", "9", "--out", str(a)) == 0
    assert cli("dataset", "synth", "--count", "50", "--seed", "9", "--out", str(b)) == 0
    assert a.read_bytes() == b.read_bytes() and len(a.read_text().splitlines()) == 50
    rec = json.loads(a.read_text().splitlines()[0])
    assert rec["kind"] == "alert" and rec["source"] == "synthetic" and len(rec["fingerprint"]) == 16


def test_fast_row_encoding_matches_json_dumps():
    ex = ("t", b"", "s", "f", "o", "l", b"", 'a: "quoted" \\ é\u2028', 'LambdaFunction: none\nParameters: {}')
    result = Result({"train": [ex], "validation": [], "test": []}, [], [])
    expected = json.dumps({"instruction": INSTRUCTION, "input": ex[7], "output": ex[8]}, ensure_ascii=False, sort_keys=True)
    assert list(_split_lines(result, "train")) == [expected + "\n"]


# ── encryption ────────────────────────────────────────────────────────────────────────────────


@pytest.fixture
def age_key(tmp_path):
    import pyrage

    ident = pyrage.x25519.Identity.generate()
    key = tmp_path / "keys" / "dataset.key"
    key.parent.mkdir()
    key.write_text(f"# created: test\n# public key: {ident.to_public()}\n{ident}\n")
    return str(ident.to_public()), key


def test_encrypted_build_round_trip_and_tamper(tmp_path, capsys, age_key, monkeypatch):
    recipient, key = age_key
    spec = write_spec(tmp_path, encryption={"recipients": [recipient], "identity": "file:keys/dataset.key"})
    assert cli("dataset", "build", str(spec), "--root", str(tmp_path), "--json") == 0
    out = json.loads(capsys.readouterr().out)
    folder, card = Path(out["path"]), out["card"]
    assert sorted(p.name for p in folder.glob("*.jsonl*")) == [
        "failed.jsonl.age", "quarantine.jsonl.age", "test.jsonl.age", "train.jsonl.age", "validation.jsonl.age"]
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    assert card["encryption"] == {"tool": "age", "recipients": [recipient], "identity": "file:keys/dataset.key"}
    enc = (folder / "train.jsonl.age").read_bytes()
    assert enc.startswith(b"age-encryption.org/v1\n") and b"LambdaFunction" not in enc

    dest = tmp_path / "plain" / "train.jsonl"
    decrypt_to(folder / "train.jsonl.age", "file:keys/dataset.key", dest, root=tmp_path)
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == card["files"]["train.jsonl.age"]["plaintext_sha256"]
    assert oct(dest.stat().st_mode & 0o777) == "0o600"
    # env: reference works too, and the identity never shows up in errors
    monkeypatch.setenv("DATASET_AGE_KEY", key.read_text())
    decrypt_to(folder / "test.jsonl.age", "env:DATASET_AGE_KEY", tmp_path / "plain" / "test.jsonl")

    # tampered ciphertext: error, and no plaintext (not even partial) at the destination
    bad = tmp_path / "tampered.age"
    data = bytearray(enc)
    data[len(data) // 2] ^= 0x01
    bad.write_bytes(bytes(data))
    target = tmp_path / "out" / "train.jsonl"
    with pytest.raises(CheckFailed, match="cannot decrypt with file:keys/dataset.key"):
        decrypt_to(bad, "file:keys/dataset.key", target, root=tmp_path)
    assert not target.exists() and not (tmp_path / "out").exists()
    target.parent.mkdir()
    truncated = tmp_path / "truncated.age"
    truncated.write_bytes(enc[: len(enc) - 100])
    with pytest.raises(CheckFailed):
        decrypt_to(truncated, "file:keys/dataset.key", target, root=tmp_path)
    assert not any((tmp_path / "out").iterdir())

    # the folder decrypts as a whole into something LLaMA Factory reads
    assert cli("dataset", "decrypt", str(folder), "--identity", f"file:{key}", "--out", str(tmp_path / "dec")) == 0
    assert (tmp_path / "dec" / "dataset_info.json").is_file()
    assert (tmp_path / "dec" / "validation.jsonl").read_text().count("\n") == card["stats"]["splits"]["validation"]


def test_wrong_identity_and_missing_secret(tmp_path, age_key, monkeypatch):
    import pyrage

    from sre_llm.dataset.crypto import encrypt

    recipient, _ = age_key
    enc = tmp_path / "x.age"
    enc.write_bytes(encrypt(b"secret rows\n", [recipient]))
    other = tmp_path / "other.key"
    other.write_text(str(pyrage.x25519.Identity.generate()) + "\n")
    with pytest.raises(CheckFailed, match="wrong key, or the file was altered"):
        decrypt_to(enc, f"file:{other}", tmp_path / "o.txt")
    monkeypatch.delenv("NOPE_KEY", raising=False)
    with pytest.raises(BadInput, match="^env:NOPE_KEY: environment variable NOPE_KEY is not set$"):
        decrypt_to(enc, "env:NOPE_KEY", tmp_path / "o.txt")
    garbage = tmp_path / "garbage.key"
    garbage.write_text("AGE-SECRET-KEY-NOTAKEY\n")
    with pytest.raises(BadInput) as exc:
        decrypt_to(enc, f"file:{garbage}", tmp_path / "o.txt")
    assert "NOTAKEY" not in str(exc.value)
    assert not (tmp_path / "o.txt").exists()


@pytest.mark.skipif(shutil.which("age") is None, reason="the age CLI is not installed (apt-get install age)")
def test_interoperates_with_age_cli(tmp_path, age_key):
    from sre_llm.dataset.crypto import encrypt

    recipient, key = age_key
    enc = tmp_path / "rows.age"
    enc.write_bytes(encrypt(b'{"input": "x"}\n', [recipient]))
    out = subprocess.run(["age", "--decrypt", "-i", str(key), str(enc)], capture_output=True, check=True)
    assert out.stdout == b'{"input": "x"}\n'
    # and the other way: the CLI encrypts, decrypt_to reads
    plain = tmp_path / "p.txt"
    plain.write_text("from the age CLI\n")
    subprocess.run(["age", "-r", recipient, "-o", str(tmp_path / "cli.age"), str(plain)], check=True)
    decrypt_to(tmp_path / "cli.age", f"file:{key}", tmp_path / "back.txt")
    assert (tmp_path / "back.txt").read_text() == "from the age CLI\n"
