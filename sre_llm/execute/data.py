"""The dataset a run trains on: checks before training, and the run's private dataset folder.

The dataset pipeline publishes ``datasets/<name>/current/`` (train/validation/test ``.jsonl``, or
``.jsonl.age`` when encrypted, plus ``dataset_info.json``). A run reads it through a folder of its
own: the rendered ``dataset_info.json`` (which names the splits train.yaml uses) beside links to
the published files — or, for an encrypted dataset, beside the plaintext decrypted into a private
temporary folder (mode 0700) that is removed when the run ends.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sre_llm.errors import BadInput
from sre_llm.execute.digest import file_digest
from sre_llm.preflight import Problem

AGE = ".age"


@dataclass
class Dataset:
    source: Path  # the published folder (``current`` resolved)
    files: dict[str, str]  # file name → the name LLaMA Factory reads, as listed in dataset_info.json
    encrypted: bool
    info: dict[str, Any] = field(default_factory=dict)


def splits_used(train_cfg: dict[str, Any], info: dict[str, Any]) -> dict[str, str]:
    """``{dataset name: file name}`` for every dataset the train config names."""
    names: list[str] = []
    for key in ("dataset", "eval_dataset"):
        value = train_cfg.get(key)
        if value:
            names += [n.strip() for n in str(value).split(",") if n.strip()]
    return {n: info[n]["file_name"] for n in names if n in info and "file_name" in info[n]}


def check(source: Path, shown: str, train_cfg: dict[str, Any], info: dict[str, Any], encrypted_ok: bool, hint: str) -> list[Problem]:
    """Does the dataset exist, and does each plain split parse as JSON lines? (Whether the rows
    are valid samples is LLaMA Factory's call, and its reason is shown when it refuses them.)"""
    if not source.is_dir():
        return [Problem("spec.dataset.name", f"{shown}: no dataset there; {hint}")]
    out = []
    for name, file_name in splits_used(train_cfg, info).items():
        plain, sealed = source / file_name, source / (file_name + AGE)
        if plain.is_file():
            out += _parse(plain, shown)
        elif sealed.is_file():
            if not encrypted_ok:
                out.append(Problem("spec.dataset.encryption", f"{shown}/{sealed.name} is encrypted but the spec names no "
                                   "dataset.encryption.identity to decrypt it with"))
        else:
            out.append(Problem("spec.dataset", f"{shown}/{file_name}: missing (split {name}); {hint}"))
    return out


def _parse(path: Path, shown: str) -> list[Problem]:
    with open(path, "rb") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                msg = getattr(exc, "msg", str(exc))
                return [Problem("spec.dataset", f"{shown}/{path.name}:{n}: not a JSON line ({msg})")]
    return []


def prepare(source: Path, dest: Path, info: dict[str, Any], used: dict[str, str], identity: str | None, base: Path) -> tuple[Path, Path | None]:
    """Make the run's dataset folder; return it and the private temp folder to remove later (or None)."""
    private = None
    if any(not (source / f).is_file() and (source / (f + AGE)).is_file() for f in used.values()):
        try:
            from sre_llm.dataset.crypto import decrypt_to
        except ImportError:
            raise BadInput("dataset is encrypted but sre_llm.dataset.crypto is not available: install sre-llm[dataset]") from None
        private = Path(tempfile.mkdtemp(prefix="sre-llm-data-"))  # mkdtemp: mode 0700, removed after the run
        for f in sorted(set(used.values())):
            if (source / f).is_file():
                shutil.copyfile(source / f, private / f)
            else:
                decrypt_to(source / (f + AGE), identity or "", private / f, root=base)
        folder = private
    else:
        dest.mkdir(parents=True, exist_ok=True)
        for f in sorted(set(used.values())):
            os.symlink((source / f).resolve(), dest / f)
        folder = dest
    (folder / "dataset_info.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    return folder, private


def digest(folder: Path, used: dict[str, str]) -> dict[str, str]:
    """Digest of each (plaintext) file the run reads."""
    return {f: file_digest(folder / f) for f in sorted(set(used.values()))}
