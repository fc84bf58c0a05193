"""``sre-llm dataset build``: read the spec's sources, run the pipeline, publish the files.

Layout, under ``<root>/datasets/<name>/``::

    <digest>/train.jsonl validation.jsonl test.jsonl   alpaca records (``.age`` when encrypted)
    <digest>/quarantine.jsonl failed.jsonl             set aside, with reasons / marked failed
    <digest>/dataset_info.json                          the same entries the renderer writes
    <digest>/dataset_card.json README.md                the card (counts, redactions, sha256s)
    current -> <digest>                                 symlink, replaced atomically

``<digest>`` is the sha256 (16 hex) of the plaintext splits, so the same data always lands in
the same folder and a rebuild with nothing new changes nothing. The folder is written under a
temporary name and renamed into place: readers never see half a dataset.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from sre_llm.dataset import card as card_mod
from sre_llm.dataset import records as rec
from sre_llm.dataset.crypto import SUFFIX, encrypt
from sre_llm.answer.format import INSTRUCTION
from sre_llm.answer.references import LITERAL, answer_in_format
from sre_llm.dataset.pipeline import Progress, Result, Settings, run
from sre_llm.dataset.redact import Redactor
from sre_llm.dataset.augment import augment
from sre_llm.dataset.augment import settings as augment_settings
from sre_llm.dataset.split import SPLITS
from sre_llm.errors import BadInput
from sre_llm.fsutil import _fsync_dir

FORMAT_VERSION = "sre-llm/dataset/v1"


@dataclass(frozen=True)
class Built:
    name: str
    digest: str
    path: Path
    card: dict
    reused: bool  # the folder existed already (same data): nothing was rewritten


def source_records(source: Any, root: Path) -> Iterator[Any]:
    """Raw records from one spec source (collectors are imported only when used)."""
    kind = source.type
    if kind == "synthetic":
        from sre_llm.dataset.synth import generate

        yield from generate(source.count, source.seed)
    elif kind == "runbook":
        from sre_llm.collect.runbook import read_logs

        yield from read_logs(source.path, root)
    elif kind == "alertmanager":
        from sre_llm.collect.alertmanager import read_store

        yield from read_store(_under(root, source.store))
    elif kind == "prometheus":
        from sre_llm.collect.prometheus import collect

        yield from collect(source, root)
    elif kind == "linear":
        from sre_llm.collect.linear import collect

        yield from collect(source, root)
    elif kind == "git":
        from sre_llm.collect.git import collect

        yield from collect(source, root)
    elif kind == "labels":
        from sre_llm.dataset.labelfile import read

        yield from read(source.path, root)
    else:  # pragma: no cover - the spec's Literal forbids it
        raise BadInput(f"unknown source type {kind!r}")


def file_records(paths: Sequence[str | Path]) -> Iterator[Any]:
    """Raw records from JSONL files (``dataset synth`` output, collector snapshots)."""
    for pattern in paths:
        matches = sorted(glob.glob(str(pattern))) or [str(pattern)]
        for p in matches:
            if not Path(p).is_file():
                raise BadInput(f"{p}: no such file")
            yield from rec.read_jsonl(p, source=Path(p).stem)


def unlabelled(
    release: Any, root: str | Path = ".", inputs: Sequence[str | Path] = (), read_sources: bool = True,
) -> Result:
    """The pipeline's result for the spec's sources with no ``min_examples`` floor and nothing
    written: ``.unlabelled`` lists the alerts no evidence labels, ``.stats`` counts the rest."""
    from dataclasses import replace

    root = Path(root)
    ds = release.spec.dataset

    def records() -> Iterator[Any]:
        for source in ds.sources if read_sources else ():
            yield from source_records(source, root)
        yield from file_records(inputs)

    return run(records(), replace(Settings.from_spec(ds), min_examples=0), Redactor.from_spec(ds.redaction))


def _under(root: Path, path: str) -> Path:
    p = Path(path)
    return p if p.is_absolute() else root / p


def _failed_rows(result: Result) -> Iterator[dict]:
    for ex in result.failed:
        yield {"instruction": INSTRUCTION, "input": ex[7], "output": ex[8], "outcome": "failure", "source": ex[2], "startsAt": ex[0]}


def build(
    release: Any,
    root: str | Path = ".",
    inputs: Sequence[str | Path] = (),
    progress: Progress | None = None,
    spec_path: str = "",
    read_sources: bool = True,
) -> Built:
    """Build the dataset a :class:`~sre_llm.spec.model.ModelRelease` describes and publish it.

    ``inputs`` are extra JSONL files of raw records; ``read_sources=False`` reads only those.
    """
    from sre_llm.render.llamafactory import dataset_info

    root = Path(root)
    ds = release.spec.dataset
    settings = Settings.from_spec(ds)
    redactor = Redactor.from_spec(ds.redaction)

    def records() -> Iterator[Any]:
        for source in ds.sources if read_sources else ():
            yield from source_records(source, root)
        yield from file_records(inputs)

    result = run(records(), settings, redactor, progress or (lambda s, n: None))
    fraction, seed = augment_settings(ds)
    if fraction > 0:  # training split only: validation and test are scored as they are
        result.splits["train"], result.stats["augmented"] = augment(result.splits["train"], fraction, seed)

    # Plaintext files are streamed a chunk at a time and an encrypted one is held once (age
    # needs the whole payload): the 100k benchmark's peak RSS. The folder name is the digest of
    # the plaintext, known only once every split has been written.
    base = root / "datasets" / ds.name
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=base, prefix=".build."))
    try:
        recipients = list(ds.encryption.recipients) if ds.encryption else None
        whole = hashlib.sha256()
        listing: dict[str, tuple[str, int]] = {}  # file → (sha256 on disk, bytes)
        plain_sha: dict[str, str] = {}
        for name, rows in [*((f"{s}.jsonl", _split_lines(result, s, ds.answer_format)) for s in SPLITS),
                           ("quarantine.jsonl", (_line(r) for r in result.quarantined)),
                           ("failed.jsonl", (_line(r) for r in _failed_rows(result)))]:
            split = name[:-6] if name[:-6] in SPLITS else None
            if split:
                whole.update(split.encode() + b"\0")
            if recipients:
                payload = "".join(rows).encode()
                if split:
                    whole.update(payload)
                plain_sha[name] = hashlib.sha256(payload).hexdigest()
                payload, name = encrypt(payload, recipients), name + SUFFIX
                _write(tmp / name, payload)
                listing[name] = (hashlib.sha256(payload).hexdigest(), len(payload))
                del payload
            else:
                sha, size = _write_stream(tmp / name, rows, whole if split else None)
                plain_sha[name] = sha
                listing[name] = (sha, size)
        digest = whole.hexdigest()[:16]
        final = base / digest
        if (final / "dataset_card.json").is_file():
            shutil.rmtree(tmp, ignore_errors=True)
            _point_current(base, digest)
            return Built(ds.name, digest, final, json.loads((final / "dataset_card.json").read_text()), reused=True)
        info = (json.dumps(dataset_info(release), indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()
        _write(tmp / "dataset_info.json", info)
        listing["dataset_info.json"] = (hashlib.sha256(info).hexdigest(), len(info))
        card = card_mod.make_card(
            name=ds.name, digest=digest, stats=result.stats, files=listing,
            plaintext_sha256=plain_sha if recipients else {},
            encryption=recipients, identity_ref=ds.encryption.identity if ds.encryption else None,
            release=f"{release.metadata.name} {release.metadata.version}", spec_path=spec_path,
            redaction=ds.redaction.model_dump(), sources=[s.type for s in ds.sources], format_version=FORMAT_VERSION,
            answer_format=ds.answer_format,
        )
        _write(tmp / "README.md", card_mod.markdown(card).encode())
        _write(tmp / "dataset_card.json", (json.dumps(card, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode())
        _publish(tmp, base, digest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _point_current(base, digest)
    return Built(ds.name, digest, final, card, reused=False)


def _write(path: Path, payload: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(payload)
        fh.flush()
        os.fsync(fh.fileno())


def _write_stream(path: Path, rows: Iterable[str], also: Any = None, chunk: int = 2048) -> tuple[str, int]:
    """Write ``rows`` a chunk at a time (a split is never held twice, as text and as bytes);
    returns (sha256, bytes) and feeds the bytes to ``also`` (a hash) as well."""
    sha = hashlib.sha256()
    size = 0
    batch: list[str] = []
    with open(path, "wb") as fh:
        for row in rows:
            batch.append(row)
            if len(batch) >= chunk:
                data = "".join(batch).encode()
                batch.clear()
                sha.update(data)
                if also is not None:
                    also.update(data)
                fh.write(data)
                size += len(data)
        data = "".join(batch).encode()
        sha.update(data)
        if also is not None:
            also.update(data)
        fh.write(data)
        size += len(data)
        fh.flush()
        os.fsync(fh.fileno())
    return sha.hexdigest(), size


_INSTRUCTION_JSON = json.dumps(INSTRUCTION, ensure_ascii=False)
_dumps_str = json.encoder.encode_basestring  # type: ignore[attr-defined]


def _split_lines(result: Result, split: str, answer_format: str = LITERAL) -> Iterator[str]:
    # Hand-assembled ``json.dumps(row, sort_keys=True, ensure_ascii=False)``: the instruction is
    # the same in every row, so it is encoded once (a test checks the bytes are identical).
    # The pipeline labels, redacts and dedupes literal answers; the answer format is applied
    # last, against the redacted labels the model will see, so references expand to exactly the
    # (redacted) values the literal answer had.
    for ex in result.splits[split]:
        out = ex[8] if answer_format == LITERAL else answer_in_format(ex[7], ex[8], answer_format)
        yield f'{{"input": {_dumps_str(ex[7])}, "instruction": {_INSTRUCTION_JSON}, "output": {_dumps_str(out)}}}\n'


def _line(row: dict) -> str:
    return json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n"


def _publish(tmp: Path, base: Path, digest: str) -> None:
    """Rename the finished temporary folder to ``<digest>`` (atomic; readers never see half)."""
    os.chmod(tmp, 0o700 if any(p.suffix == SUFFIX for p in tmp.iterdir()) else 0o755)
    _fsync_dir(tmp)
    try:
        os.replace(tmp, base / digest)
    except OSError:
        if (base / digest / "dataset_card.json").is_file():
            shutil.rmtree(tmp, ignore_errors=True)
            return  # a concurrent build published the same data first
        raise
    _fsync_dir(base)


def _point_current(base: Path, digest: str) -> None:
    """``current -> <digest>``, replaced atomically (a symlink renamed over the old one)."""
    link = base / "current"
    tmp = base / f".current.{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    os.symlink(digest, tmp)
    os.replace(tmp, link)
    _fsync_dir(base)


def resolve_dataset(target: str, root: str | Path = ".") -> Path:
    """A dataset folder from a spec path, a folder, or a dataset name (its ``current``)."""
    root = Path(root)
    p = Path(target)
    if p.is_file() and p.suffix in (".yaml", ".yml"):
        from sre_llm.spec.load import load_spec

        p = root / "datasets" / load_spec(p).release.spec.dataset.name / "current"
    elif not p.is_dir():
        p = root / "datasets" / target / "current"
    if p.is_dir() and not (p / "dataset_card.json").is_file() and (p / "current").is_dir():
        p = p / "current"
    if not (p / "dataset_card.json").is_file():
        raise BadInput(f"{target}: no built dataset found (looked for {p}/dataset_card.json); run `sre-llm dataset build SPEC`")
    return p


def show(target: str, root: str | Path = ".") -> dict:
    """The card of a built dataset, with where it is."""
    p = resolve_dataset(target, root)
    card = json.loads((p / "dataset_card.json").read_text())
    card["path"] = str(p)
    card["resolved"] = str(p.resolve())
    return card
