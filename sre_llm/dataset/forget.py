"""Deletion: ``sre-llm dataset forget`` (retention, ``prune``, is :mod:`sre_llm.dataset.retention`).

``forget`` answers a deletion request: it removes every alert of an incident (its Alertmanager
fingerprint or ``incident`` id) or every alert carrying a label value from the raw alertmanager
stores and from every built dataset under ``datasets/`` (age-encrypted ones too, re-encrypted to
the recipients on their card), and lists the registered models whose lineage names a dataset it
changed: those were trained on the data and are the team's to retrain or withdraw.

A dataset folder is named by the digest of its splits, so a changed dataset is published as a
new folder (written under a temporary name, renamed into place), ``current`` is moved to it when
it pointed at the old one, and the old folder is deleted. Rows match when their input shows the
label value (``--label``), or shows the same alert as one removed from a store, or its labels
fingerprint to the incident (``--incident``). A value the redactor replaced is not in the dataset
to begin with.

Store files are rewritten by :func:`sre_llm.dataset.retention.rewrite_locked` (its docstring says
how that is safe next to a running receiver).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from sre_llm.errors import BadInput
from sre_llm.dataset.retention import rewrite_locked
from sre_llm.fsutil import _fsync_dir

SPLIT_FILES = ("train.jsonl", "validation.jsonl", "test.jsonl")
OTHER_FILES = ("quarantine.jsonl", "failed.jsonl")


@dataclass(frozen=True)
class Selector:
    """What to forget: an incident (fingerprint or ``incident`` id) or a label ``name=value``."""

    incident: str | None = None
    label: tuple[str, str] | None = None

    @classmethod
    def parse(cls, incident: str | None, label: str | None) -> "Selector":
        if bool(incident) == bool(label):
            raise BadInput("give exactly one of --incident ID or --label NAME=VALUE")
        if label:
            name, sep, value = label.partition("=")
            if not sep or not name or not value:
                raise BadInput(f"--label {label!r}: expected NAME=VALUE")
            return cls(label=(name, value))
        return cls(incident=incident)

    def alert(self, alert: Any) -> bool:
        """Whether a raw alert (webhook alert or raw record) is to be forgotten."""
        from sre_llm.dataset.records import fingerprint

        if not isinstance(alert, dict):
            return False
        labels = alert.get("labels") if isinstance(alert.get("labels"), dict) else {}
        if self.label:
            return labels.get(self.label[0]) == self.label[1]
        if self.incident in (alert.get("fingerprint"), alert.get("incident")):
            return True
        return bool(labels) and all(isinstance(v, str) for v in labels.values()) and fingerprint(labels) == self.incident

    def text(self, text: str) -> bool:
        """Whether an unparseable line mentions what is forgotten (then it goes too)."""
        needle = self.label[1] if self.label else self.incident
        return bool(needle) and needle in text


# ── raw stores ──────────────────────────────────────────────────────────────────────────────────


def _common(alerts: list[dict], key: str) -> dict:
    sets = [a.get(key) or {} for a in alerts]
    if not sets:
        return {}
    return {k: v for k, v in sets[0].items() if all(s.get(k) == v for s in sets[1:])}


def _webhook_line(selector: Selector, removed: list[dict]) -> Callable[[str], str | None]:
    def keep(line: str) -> str | None:
        try:
            entry = json.loads(line)
            payload = entry["payload"]
            alerts = payload["alerts"]
        except (ValueError, KeyError, TypeError):
            return None if selector.text(line) else line
        gone = [a for a in alerts if selector.alert(a)]
        if not gone:
            return line
        removed.extend(gone)
        left = [a for a in alerts if not selector.alert(a)]
        if not left:
            return None
        payload = {**payload, "alerts": left, "commonLabels": _common(left, "labels"),
                   "commonAnnotations": _common(left, "annotations")}
        return json.dumps({**entry, "payload": payload}, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n"

    return keep


def forget_store(directory: Path, selector: Selector) -> tuple[dict, list[dict]]:
    """Remove matching alerts from every ``*.jsonl`` of an alertmanager store; the report and
    the alerts removed."""
    removed: list[dict] = []
    files = {}
    for path in sorted(directory.glob("*.jsonl")):
        before = len(removed)
        _, changed = rewrite_locked(path, _webhook_line(selector, removed))
        if changed:
            files[str(path)] = len(removed) - before
    return {"store": str(directory), "alerts_removed": len(removed), "files": files}, removed


# ── datasets ────────────────────────────────────────────────────────────────────────────────────


def _row_matcher(selector: Selector, removed: list[dict], redactor: Any) -> Callable[[dict], bool]:
    from sre_llm.answer.format import alert_from_input, render_parts
    from sre_llm.dataset.quality import visible_labels
    from sre_llm.dataset.records import fingerprint

    heads = set()
    for a in removed:
        labels = a.get("labels") or {}
        if isinstance(labels, dict) and all(isinstance(v, str) for v in labels.values()):
            head = render_parts(visible_labels(labels))[0]
            heads.add(head)
            heads.add(redactor.text(head))

    def shows(text: str) -> bool:
        labels, _ = alert_from_input(text)
        head = "\n".join(line for line in text.splitlines()
                         if line.partition(": ")[0] not in ("summary", "description"))
        if head in heads:
            return True
        if selector.label:
            return labels.get(selector.label[0]) == selector.label[1]
        return fingerprint(labels) == selector.incident

    def match(row: Any) -> bool:
        if not isinstance(row, dict):
            return False
        if selector.alert(row):
            return True
        for key in ("input",):
            if isinstance(row.get(key), str) and shows(row[key]):
                return True
        return any(match(v) for v in row.values() if isinstance(v, dict))

    return match


def lineage_digests(plain_sha: dict[str, str]) -> set[str]:
    """The ``dataset.digest`` values a run that read these split files records (the run digests
    the files it used: train, or train and validation, or all three)."""
    out = set()
    for names in (("train.jsonl",), ("train.jsonl", "validation.jsonl"), SPLIT_FILES):
        if all(n in plain_sha for n in names):
            files = {n: "sha256:" + plain_sha[n] for n in names}
            out.add("sha256:" + hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest())
    return out


@dataclass
class _Folder:
    path: Path
    card: dict
    plain: dict[str, bytes] = field(default_factory=dict)  # logical name (no .age) → plaintext


def _read_folder(path: Path, identity: str | None, root: Path) -> _Folder:
    from sre_llm.dataset.crypto import SUFFIX, decrypt

    card = json.loads((path / "dataset_card.json").read_text())
    folder = _Folder(path, card)
    for name in (*SPLIT_FILES, *OTHER_FILES):
        if (path / name).is_file():
            folder.plain[name] = (path / name).read_bytes()
        elif (path / (name + SUFFIX)).is_file():
            enc = card.get("encryption") or {}
            ref = identity or enc.get("identity")
            if not ref:
                raise BadInput(f"{path}: encrypted and no identity to decrypt it (give the spec's dataset.encryption)")
            folder.plain[name] = decrypt((path / (name + SUFFIX)).read_bytes(), ref, root, what=str(path / (name + SUFFIX)))
    return folder


def _plain_sha(card: dict) -> dict[str, str]:
    out = {}
    for name, entry in (card.get("files") or {}).items():
        out[name.removesuffix(".age")] = entry.get("plaintext_sha256") or entry["sha256"]
    return out


def _filter_jsonl(data: bytes, match: Callable[[dict], bool], selector: Selector) -> tuple[bytes, int]:
    kept, dropped = [], 0
    for line in data.decode("utf-8").splitlines(keepends=True):
        try:
            row = json.loads(line)
        except ValueError:
            row = None
        if (row is not None and match(row)) or (row is None and selector.text(line)):
            dropped += 1
            continue
        kept.append(line)
    return "".join(kept).encode(), dropped


def _rewrite_folder(folder: _Folder, match: Callable[[dict], bool], selector: Selector) -> dict | None:
    """Publish the folder without the matching rows; None when nothing matched."""
    from sre_llm.dataset import card as card_mod
    from sre_llm.dataset.build import _point_current, _publish, _write
    from sre_llm.dataset.crypto import SUFFIX, encrypt
    from sre_llm.dataset.split import SPLITS

    removed: dict[str, int] = {}
    new_plain: dict[str, bytes] = {}
    for name, data in folder.plain.items():
        new_plain[name], n = _filter_jsonl(data, match, selector)
        if n:
            removed[name] = n
    if not removed:
        return None
    card = json.loads(json.dumps(folder.card))
    recipients = (card.get("encryption") or {}).get("recipients")
    base = folder.path.parent
    whole = hashlib.sha256()
    for split in SPLITS:
        whole.update(split.encode() + b"\0")
        whole.update(new_plain.get(f"{split}.jsonl", b""))
    digest = whole.hexdigest()[:16]
    tmp = Path(tempfile.mkdtemp(dir=base, prefix=".forget."))
    try:
        files = {}
        for name, data in new_plain.items():
            out_name, payload = (name + SUFFIX, encrypt(data, recipients)) if recipients else (name, data)
            _write(tmp / out_name, payload)
            entry = {"sha256": hashlib.sha256(payload).hexdigest(), "bytes": len(payload)}
            if recipients:
                entry["plaintext_sha256"] = hashlib.sha256(data).hexdigest()
            files[out_name] = entry
        if (folder.path / "dataset_info.json").is_file():
            info = (folder.path / "dataset_info.json").read_bytes()
            _write(tmp / "dataset_info.json", info)
            files["dataset_info.json"] = {"sha256": hashlib.sha256(info).hexdigest(), "bytes": len(info)}
        stats = card.setdefault("stats", {})
        splits = stats.setdefault("splits", {})
        for split in SPLITS:
            splits[split] = new_plain.get(f"{split}.jsonl", b"").count(b"\n")
        stats["examples"] = sum(splits.values())
        card["files"] = dict(sorted(files.items()))
        card["digest"] = digest
        card.setdefault("forgotten", []).append({"previous_digest": folder.card.get("digest"), "rows_removed": removed})
        _write(tmp / "README.md", card_mod.markdown(card).encode())
        _write(tmp / "dataset_card.json", (json.dumps(card, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode())
        _publish(tmp, base, digest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    current = base / "current"
    if current.is_symlink() and os.readlink(current) == folder.path.name:
        _point_current(base, digest)
    if folder.path.name != digest:
        _remove_folder(folder.path)
    return {"dataset": str(folder.path), "previous_digest": folder.card.get("digest"), "digest": digest,
            "path": str(base / digest), "rows_removed": removed,
            "lineage_digests": sorted(lineage_digests(_plain_sha(folder.card)))}


def _remove_folder(path: Path) -> None:
    """Rename out of sight first (readers never see half a folder), then delete."""
    trash = path.parent / f".deleted.{path.name}.{os.getpid()}"
    os.replace(path, trash)
    _fsync_dir(path.parent)
    shutil.rmtree(trash)


def dataset_folders(root: Path) -> Iterator[Path]:
    """Every built dataset folder under ``<root>/datasets/<name>/<digest>/``."""
    base = root / "datasets"
    if not base.is_dir():
        return
    for name in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for folder in sorted(name.iterdir()):
            if folder.is_dir() and not folder.is_symlink() and not folder.name.startswith(".") \
                    and (folder / "dataset_card.json").is_file():
                yield folder


def trained_on(root: Path, digests: set[str], names: set[str]) -> list[dict]:
    """Registered versions whose lineage names one of ``digests`` (and, with no digest recorded,
    those of a dataset named in ``names``: they may have been, and are listed as unknown)."""
    from sre_llm.registry import index as ix

    out = []
    for model in ix.models(root):
        reg = ix.load(root, model)
        for v in reg.versions if reg else ():
            ds = v.dataset
            if ds.digest in digests or (ds.digest is None and ds.name in names):
                out.append({"model": model, "version": v.version, "status": v.status,
                            "aliases": reg.aliases_of(v.version), "dataset_digest": ds.digest,
                            "lineage": "trained on it" if ds.digest in digests else "unknown (no dataset digest recorded)"})
    return out


def forget(release: Any, selector: Selector, root: str | Path = ".") -> dict:
    """Remove what ``selector`` names from the spec's alertmanager stores and every dataset under
    ``<root>/datasets/``; report what changed and which registered models trained on it."""
    from sre_llm.dataset.build import _under
    from sre_llm.dataset.redact import Redactor

    root = Path(root)
    ds = release.spec.dataset
    stores, removed, others = [], [], []
    for source in ds.sources:
        if source.type == "alertmanager":
            directory = _under(root, source.store)
            if directory.is_dir():
                report, gone = forget_store(directory, selector)
                stores.append(report)
                removed += gone
        elif source.type in ("runbook", "labels"):
            others.append({"type": source.type, "path": source.path,
                           "note": "read from files sre-llm does not write: remove the records there too"})
    match = _row_matcher(selector, removed, Redactor.from_spec(ds.redaction))
    identity = ds.encryption.identity if ds.encryption else None
    datasets, digests, names = [], set(), set()
    for path in dataset_folders(root):
        changed = _rewrite_folder(_read_folder(path, identity, root), match, selector)
        if changed:
            datasets.append(changed)
            digests.update(changed["lineage_digests"])
            names.add(path.parent.name)
    return {"selector": {"incident": selector.incident} if selector.incident else
            {"label": f"{selector.label[0]}={selector.label[1]}"},
            "stores": stores, "datasets": datasets, "models": trained_on(root, digests, names),
            "not_handled": others}
