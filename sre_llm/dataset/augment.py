"""Training-only augmentation: teach the model to copy parameter values, not to remember them.

A team's history names the same few services, namespaces and nodes again and again, so a model
can lower its loss by remembering ``checkout`` instead of reading it from the alert — and then
fails on the first new service. With ``dataset.augmentation.random_values: f``, a fraction ``f``
of the *training* examples that propose an action get every parameter value that appears among
the alert's labels replaced by a random value of the same shape (letters by letters, digits by
digits, separators kept), consistently in the alert and in the answer. The only way to get those
examples right is to copy. Validation and test splits are never touched, so the scores are
measured on the data as it was.

Deterministic: which examples are chosen and what they become depends only on the seed and each
example's digest, never on order or the machine.
"""

from __future__ import annotations

import hashlib
import random
import re
import string
from typing import Any, Iterable

from sre_llm.catalog import NONE
from sre_llm.answer.format import ParseError, parse_output, render_output

_LOWER, _UPPER, _DIGITS = string.ascii_lowercase, string.ascii_uppercase, string.digits
_ANNOTATIONS = ("summary: ", "description: ")  # input lines after the labels (format.ANNOTATION_ORDER)


def _chosen(digest: str, seed: int, fraction: float) -> random.Random | None:
    h = hashlib.sha256(f"{seed}\0{digest}".encode()).digest()
    if int.from_bytes(h[:8], "big") / 2**64 >= fraction:
        return None
    return random.Random(h[8:])  # noqa: S311 - seeded generator for reproducible data, never a secret


def reshape(value: str, rng: random.Random) -> str:
    """A random value with ``value``'s shape: ``web-7d4f9`` → ``qzm-2k8b1``."""
    out = []
    for ch in value:
        if ch in _LOWER:
            out.append(rng.choice(_LOWER))
        elif ch in _UPPER:
            out.append(rng.choice(_UPPER))
        elif ch in _DIGITS:
            out.append(rng.choice(_DIGITS))
        else:
            out.append(ch)
    return "".join(out)


def _label_values(text: str) -> set[str]:
    values = set()
    for line in text.split("\n"):
        if line.startswith(_ANNOTATIONS):
            continue
        _, sep, value = line.partition(": ")
        if sep:
            values.add(value)
    return values


def rewrite(text_in: str, text_out: str, rng: random.Random) -> tuple[str, str] | None:
    """``(input, output)`` with copied values replaced, or None when nothing in it is copied."""
    try:
        fn, params = parse_output(text_out)
    except ParseError:
        return None
    if fn == NONE:
        return None
    labels = _label_values(text_in)
    copied = sorted({v for v in params.values() if isinstance(v, str) and len(v) >= 2 and v in labels
                     and "<" not in v}, key=lambda v: (-len(v), v))  # redaction markers stay as they are
    if not copied:
        return None
    mapping: dict[str, str] = {}
    for v in copied:
        new = reshape(v, rng)
        while new == v or new in mapping.values():  # a value that maps to itself teaches nothing
            new = reshape(v, rng)
        mapping[v] = new
    pattern = re.compile("|".join(re.escape(v) for v in copied))  # longest first: whole values win

    def sub(s: str) -> str:
        return pattern.sub(lambda m: mapping[m.group(0)], s)

    lines = []
    for line in text_in.split("\n"):
        key, sep, value = line.partition(": ")
        lines.append(f"{key}{sep}{sub(value)}" if sep else line)
    new_params = {k: sub(v) if isinstance(v, str) else v for k, v in params.items()}
    return "\n".join(lines), render_output(fn, new_params)


def augment(examples: Iterable[tuple], fraction: float, seed: int = 0) -> tuple[list[tuple], int]:
    """Training examples (pipeline tuples) with a ``fraction`` of them rewritten; and how many were."""
    out: list[tuple] = []
    changed = 0
    for ex in examples:
        rng = _chosen(ex[1], seed, fraction) if fraction > 0 else None
        new = rewrite(ex[7], ex[8], rng) if rng is not None else None
        if new is None:
            out.append(ex)
            continue
        changed += 1
        out.append((*ex[:7], new[0], new[1], *ex[9:]))
    return out, changed


def settings(spec: Any) -> tuple[float, int]:
    """``(fraction, seed)`` from a spec's ``dataset.augmentation`` (absent → no augmentation)."""
    aug = getattr(spec, "augmentation", None)
    return (aug.random_values, aug.seed) if aug is not None else (0.0, 0)
