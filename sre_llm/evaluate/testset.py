"""Where the evaluator's rows come from: the spec's test split, or any golden set.

Both are alpaca JSONL (``instruction`` / ``input`` / ``output``); a row whose expected answer does
not parse is bad input (exit 2) naming its file and line, not a score.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sre_llm.answer.format import INSTRUCTION, ParseError, parse_output
from sre_llm.errors import BadInput


def load_test_split(config: Mapping[str, Any], root: str | Path = ".", identity: str | None = None) -> tuple[Path, list[dict[str, str]], str]:
    """The test split's path, alpaca rows and plaintext sha256 (as in the dataset card), found
    through the dataset's ``dataset_info.json``.

    An encrypted split (``test.jsonl.age``) is decrypted in memory with ``identity`` (the spec's
    ``dataset.encryption.identity``); plaintext never touches the disk.
    """
    data = config["data"]
    folder = Path(root) / str(data["dataset_dir"])
    info_path = folder / "dataset_info.json"
    name = data["test_dataset"]
    file_name = "test.jsonl"
    if info_path.is_file():
        entry = json.loads(info_path.read_text()).get(name)
        if entry is None:
            raise BadInput(f"{info_path}: no dataset named {name!r} (the eval config's data.test_dataset)")
        file_name = entry["file_name"]
    path = folder / file_name
    if path.is_file():
        text = path.read_text()
    elif Path(f"{path}.age").is_file():
        if not identity:
            raise BadInput(f"{path}.age: the test split is encrypted; evaluate through the spec (it names the identity) or decrypt it first")
        from sre_llm.dataset.crypto import decrypt

        path = Path(f"{path}.age")
        text = decrypt(path.read_bytes(), identity, root, what=str(path)).decode()
    else:
        raise BadInput(f"{path}: test split not found; run `sre-llm dataset build SPEC` first")
    return path, _alpaca_rows(text, path), hashlib.sha256(text.encode()).hexdigest()


#: The splits of a dataset folder a golden set is read from, in this order.
GOLDEN_SPLITS = ("train", "validation", "test")


def load_golden(target: str | Path) -> tuple[Path, list[dict[str, str]], str]:
    """Every row of a golden set: an alpaca JSONL file, or a dataset folder (its ``train``,
    ``validation`` and ``test`` splits, in that order; quarantine and failed rows are not
    answers). Expected answers in such a set are usually literal values; the model's
    references are expanded before comparing, so either form scores the same."""
    path = Path(target)
    files = [path] if path.is_file() else [path / f"{s}.jsonl" for s in GOLDEN_SPLITS if (path / f"{s}.jsonl").is_file()]
    if not path.exists():
        raise BadInput(f"--test {path}: no such file or folder")
    if not files:
        encrypted = [s for s in GOLDEN_SPLITS if (path / f"{s}.jsonl.age").is_file()]
        hint = "; it is encrypted: decrypt it first" if encrypted else ""
        raise BadInput(f"--test {path}: no {', '.join(s + '.jsonl' for s in GOLDEN_SPLITS)} in this folder{hint}")
    rows: list[dict[str, str]] = []
    digest = hashlib.sha256()
    for f in files:
        try:
            text = f.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise BadInput(f"--test {f}: cannot read: {exc}") from None
        digest.update(text.encode())
        # A hand-written golden row may leave the instruction out: the model was trained with it.
        rows += [{"instruction": INSTRUCTION, **r} for r in _alpaca_rows(text, f)]
    if not rows:
        raise BadInput(f"--test {path}: no rows")
    return path, rows, digest.hexdigest()


def _alpaca_rows(text: str, path: Path) -> list[dict[str, str]]:
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BadInput(f"{path}:{n}: not JSON: {exc.msg}") from None
        if not isinstance(row, dict) or not isinstance(row.get("output"), str) or not isinstance(row.get("input"), str):
            raise BadInput(f"{path}:{n}: expected an alpaca record with string 'input' and 'output'")
        try:
            parse_output(row["output"])
        except ParseError as exc:
            raise BadInput(f"{path}:{n}: expected answer does not parse: {exc}") from None
        rows.append(row)
    return rows
