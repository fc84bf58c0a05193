"""Labels a person fills in: the file ``sre-llm dataset unlabelled`` writes and the ``labels``
source reads back, CSV or JSON Lines, one row per alert firing.

Columns, in order (the first four name the alert, the next two are the answer, the rest are
there to read and are ignored when the file comes back)::

    fingerprint, alertname, namespace, startsAt, lambda_function, lambda_parameters, endsAt, source, alert

A row names its alert by ``fingerprint`` + ``startsAt`` (that firing), ``fingerprint`` alone
(every firing of that label set) or ``alertname`` + ``namespace`` + ``startsAt``.
``lambda_function`` is a catalog function or ``none`` (the alert needed no action);
``lambda_parameters`` a JSON object (a string in CSV; a string or an object in JSONL), empty for
``{}``. A row with an empty ``lambda_function`` has not been labelled yet and is skipped.

A file with mistakes is refused as a whole (exit 2), every problem on its own ``file:line`` line:
a person fixes labels, nothing is quarantined quietly.
"""

from __future__ import annotations

import csv
import difflib
import glob
import io
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from sre_llm.dataset.quality import problems
from sre_llm.dataset.records import utc
from sre_llm.errors import BadInput

KEYS = ("fingerprint", "alertname", "namespace", "startsAt")
ANSWER = ("lambda_function", "lambda_parameters")
CONTEXT = ("endsAt", "source", "alert")
COLUMNS = (*KEYS, *ANSWER, *CONTEXT)
FORMATS = ("csv", "jsonl")
SOURCE = "labels"

_FINGERPRINT = re.compile(r"^[0-9a-f]{16}$")


def file_format(path: str | Path) -> str | None:
    """``csv`` or ``jsonl`` from a file name, None when the suffix says neither."""
    suffix = Path(path).suffix.lower()
    return {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}.get(suffix)


def render(rows: Iterable[dict[str, Any]], fmt: str) -> str:
    """The file text of ``rows`` (missing columns empty), columns in :data:`COLUMNS` order."""
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        for r in rows:
            writer.writerow([_cell(r.get(c)) for c in COLUMNS])
        return out.getvalue()
    if fmt == "jsonl":
        return "".join(json.dumps({c: r.get(c, "") for c in COLUMNS}, ensure_ascii=False) + "\n" for r in rows)
    raise BadInput(f"format {fmt!r}: expected one of {', '.join(FORMATS)}")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    return str(value)


def read(pattern: str, root: str | Path = ".") -> Iterator[dict]:
    """``label`` records from every file matching ``pattern`` (relative to ``root``).

    Raises :class:`BadInput` listing every problem of every file before yielding anything.
    """
    base = Path(pattern) if Path(pattern).is_absolute() else Path(root) / pattern
    paths = sorted(glob.glob(str(base))) or ([str(base)] if base.is_file() else [])
    if not paths:
        raise BadInput(f"labels source {pattern}: no such file (relative paths are from {root})")
    records: list[dict] = []
    errors: list[str] = []
    for p in paths:
        fmt = file_format(p)
        if fmt is None:
            errors.append(f"{p}: a labels file must end in .csv or .jsonl")
            continue
        try:
            rows = list(_csv_rows(p) if fmt == "csv" else _jsonl_rows(p))
        except _FileProblem as exc:
            errors.append(str(exc))
            continue
        except (OSError, UnicodeDecodeError) as exc:
            errors.append(f"{p}: cannot read ({type(exc).__name__}: {exc})")
            continue
        for line, row in rows:
            rec, why = _record(row, f"{p}:{line}")
            errors.extend(why)
            if rec is not None:
                records.append(rec)
    if errors:
        raise BadInput("\n".join(errors), details={"problems": errors})
    yield from records


class _FileProblem(Exception):
    pass


def _check_columns(path: str, line: int, names: Iterable[str]) -> None:
    unknown = [n for n in names if n not in COLUMNS]
    if unknown:
        hints = []
        for n in unknown:
            close = difflib.get_close_matches(n, COLUMNS, n=1)
            hints.append(f"{n!r}" + (f" (did you mean {close[0]}?)" if close else ""))
        raise _FileProblem(f"{path}:{line}: unknown column {', '.join(hints)} (known: {', '.join(COLUMNS)})")


def _csv_rows(path: str) -> Iterator[tuple[int, dict]]:
    with open(path, encoding="utf-8-sig", newline="") as fh:  # -sig: spreadsheets save a BOM
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            return
        header = [h.strip() for h in header]
        _check_columns(path, 1, header)
        if "lambda_function" not in header:
            raise _FileProblem(f"{path}:1: no lambda_function column")
        while True:
            start = reader.line_num + 1  # a quoted cell may span lines: report where the row starts
            cells = next(reader, None)
            if cells is None:
                return
            if not any(c.strip() for c in cells):
                continue
            if len(cells) > len(header):
                raise _FileProblem(f"{path}:{start}: {len(cells)} cells, the header has {len(header)}")
            yield start, dict(zip(header, cells))


def _jsonl_rows(path: str) -> Iterator[tuple[int, dict]]:
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise _FileProblem(f"{path}:{n}: not JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise _FileProblem(f"{path}:{n}: a row must be a JSON object (got {type(row).__name__})")
            _check_columns(path, n, row)
            yield n, row


def _record(row: dict, where: str) -> tuple[dict | None, list[str]]:
    """The ``label`` record of one row (None when it is not filled in) and its problems."""
    fn = _text(row.get("lambda_function"))
    if row.get("lambda_function") not in (None, "") and not isinstance(row["lambda_function"], str):
        return None, [f"{where}: lambda_function: must be a string (got {type(row['lambda_function']).__name__})"]
    if not fn:
        return None, []
    errors: list[str] = []
    fp, name, ns = _text(row.get("fingerprint")).lower(), _text(row.get("alertname")), _text(row.get("namespace"))
    raw_start = _text(row.get("startsAt"))
    start = utc(raw_start)
    if raw_start and start is None:
        errors.append(f"{where}: startsAt: not an RFC 3339 time (got {raw_start!r})")
    if fp and not _FINGERPRINT.match(fp):
        errors.append(f"{where}: fingerprint: expected 16 hex digits, Alertmanager's (got {fp!r})")
    if not fp and not (name and raw_start):
        errors.append(f"{where}: names no alert: give fingerprint, or alertname and startsAt")
    raw = row.get("lambda_parameters")
    params: Any = {}
    if isinstance(raw, dict):
        params = raw
    elif _text(raw):
        try:
            params = json.loads(_text(raw))
        except json.JSONDecodeError as exc:
            errors.append(f"{where}: lambda_parameters: not JSON ({exc.msg})")
            params = None
        else:
            if not isinstance(params, dict):
                errors.append(f"{where}: lambda_parameters: must be a JSON object (got {type(params).__name__})")
                params = None
    elif raw not in (None, ""):
        errors.append(f"{where}: lambda_parameters: must be a JSON object (got {type(raw).__name__})")
        params = None
    if params is not None:
        errors.extend(f"{where}: {p}" for p in problems(fn, params))
    if errors:
        return None, errors
    return {"kind": "label", "source": SOURCE, "where": where, "fingerprint": fp, "alertname": name,
            "namespace": ns, "startsAt": start, "lambda_function": fn, "parameters": params}, []


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""
