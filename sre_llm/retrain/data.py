"""What is new since the champion's dataset, and the promise that old examples keep their split.

Pure apart from reading the published dataset folders (``datasets/<name>/<digest>/``). An
example is known by its model input (the rendered, redacted alert): the split is a hash of the
incident group, and one input always belongs to one group, so an input that was in the champion's
test split must be in the merged test split too. :func:`compare` checks it; a moved example is a
broken promise (the frozen test set would leak into training) and fails the retrain.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from sre_llm.answer.format import alert_from_input
from sre_llm.dataset.split import SPLITS
from sre_llm.errors import BadInput
from sre_llm.fsutil import sha256_ref


def read_rows(path: Path) -> list[dict[str, str]]:
    """The alpaca rows of one split file (plaintext)."""
    if not path.is_file():
        if Path(str(path) + ".age").is_file():
            raise BadInput(f"{path}.age: encrypted datasets are not compared by `retrain` yet; "
                           "build the dataset without dataset.encryption for the loop")
        raise BadInput(f"{path}: no such split file")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def splits_of(folder: Path) -> dict[str, list[dict[str, str]]]:
    return {s: read_rows(folder / f"{s}.jsonl") for s in SPLITS}


def _run_digest(folder: Path, names: tuple[str, ...]) -> str | None:
    # What `sre-llm train` records as dataset.digest: sha256 of the JSON map file → sha256 digest.
    if not all((folder / n).is_file() for n in names):
        return None
    files = {n: sha256_ref(folder / n) for n in sorted(names)}
    return "sha256:" + hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()


def find_dataset(root: Path, name: str, digest: str | None) -> Path:
    """The published dataset folder a registered version's lineage names.

    ``digest`` is the folder's own digest (16 hex) or the run record's ``dataset.digest`` (the
    digest of the files the run read: train, or train + validation)."""
    base = Path(root) / "datasets" / name
    if not digest:
        raise BadInput("the champion's lineage names no dataset digest: register it with --run run.json")
    bare = digest.removeprefix("sha256:")
    if (base / bare / "dataset_card.json").is_file():
        return base / bare
    for folder in sorted(p for p in base.iterdir() if p.is_dir() and not p.is_symlink()) if base.is_dir() else []:
        for names in (("train.jsonl", "validation.jsonl"), ("train.jsonl",)):
            if _run_digest(folder, names) == digest:
                return folder
    raise BadInput(f"{base}: no dataset folder matches the champion's dataset digest {digest} "
                   "(the loop needs the champion's data to know what is new)")


def _label_set(text: str) -> tuple[str, tuple[str, ...]]:
    labels, _ = alert_from_input(text)
    return labels.get("alertname", ""), tuple(sorted(labels))


@dataclass
class Delta:
    """The merged dataset against the champion's."""

    new: dict[str, list[dict[str, str]]]  # split → examples whose input the champion's data lacks
    kept: int  # old examples still there, each in its old split
    moved: list[tuple[str, str, str]] = field(default_factory=list)  # (input head, old split, new split)
    dropped: int = 0  # old examples no longer in the merged data (max_examples keeps the newest)
    new_alertnames: list[str] = field(default_factory=list)
    new_label_sets: list[list[str]] = field(default_factory=list)

    @property
    def new_count(self) -> int:
        return sum(len(v) for v in self.new.values())

    def summary(self) -> dict:
        return {"new": {s: len(v) for s, v in self.new.items()}, "new_total": self.new_count, "kept": self.kept,
                "moved": len(self.moved), "dropped": self.dropped,
                "drift": {"new_alertnames": self.new_alertnames, "new_label_sets": self.new_label_sets}}


def compare(old: dict[str, list[dict[str, str]]], merged: dict[str, list[dict[str, str]]]) -> Delta:
    """New examples per split, old ones that moved (must be none), and the data drift: alert
    names and label sets (the label names an alert carries) the champion never saw."""
    where = {row["input"]: s for s in SPLITS for row in old.get(s, [])}
    new: dict[str, list[dict[str, str]]] = {s: [] for s in SPLITS}
    moved: list[tuple[str, str, str]] = []
    kept = 0
    present: set[str] = set()
    for s in SPLITS:
        for row in merged.get(s, []):
            before = where.get(row["input"])
            present.add(row["input"])
            if before is None:
                new[s].append(row)
            elif before != s:
                moved.append((row["input"].splitlines()[0], before, s))
            else:
                kept += 1
    old_sets = {_label_set(t) for t in where}
    old_names = {n for n, _ in old_sets}
    fresh = {_label_set(r["input"]) for rows in new.values() for r in rows} - old_sets
    return Delta(new=new, kept=kept, moved=moved, dropped=len(set(where) - present),
                 new_alertnames=sorted({n for n, _ in fresh} - old_names),
                 new_label_sets=[list(ls) for ls in sorted({ls for _, ls in fresh} - {ls for _, ls in old_sets})])
