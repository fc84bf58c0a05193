"""The canonical example: alpaca ``instruction`` / ``input`` / ``output``.

Training renders answers with :func:`render_output`; evaluation and the output guard parse what
the model says with :func:`parse_output`. Both live here so the two can never drift apart.

Output, exactly::

    LambdaFunction: pod-restart
    Parameters: {"name": "web-7d4f9c6b8-x2x9q", "namespace": "shop", "type": "pod"}

Parameters are canonical JSON: keys sorted, ``", "`` and ``": "`` separators, non-ASCII kept.
The spaced separators are deliberate: they are how agent-sre's own ``lambda_parameters``
templates and most JSON a base model has read are written, so the answer costs the model no
unlearning. No action is ``LambdaFunction: none`` with ``Parameters: {}``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from sre_llm.catalog import FUNCTION_NAMES, NONE

INSTRUCTION = (
    "You are agent-sre's remediation planner. Read the firing Prometheus alert and choose one "
    "LambdaFunction to run (" + ", ".join(FUNCTION_NAMES) + "); choose none when no action is needed. "
    "Copy parameter values from the alert. Answer in exactly two lines:\n"
    "LambdaFunction: <name>\nParameters: <JSON object>"
)

#: Labels first, in this order; then any other label sorted by name; then the annotations below.
LABEL_ORDER: tuple[str, ...] = (
    "alertname",
    "namespace",
    # resource-ish labels: the values the model copies into parameters
    "pod",
    "deployment",
    "statefulset",
    "daemonset",
    "replicaset",
    "job_name",
    "container",
    "persistentvolumeclaim",
    "kind",
    "name",
    "exported_namespace",
    "node",
    "service",
    "job",
    "instance",
    "severity",
)
ANNOTATION_ORDER: tuple[str, ...] = ("summary", "description")

#: Never shown to the model: the answer itself, and series bookkeeping.
HIDDEN_LABELS = frozenset({"__name__", "alertstate"})
ANSWER_ANNOTATIONS = frozenset({"lambda_function", "lambda_parameters"})

_DECODER = json.JSONDecoder()
_enc = json.encoder.encode_basestring  # type: ignore[attr-defined]  # the escaper json.dumps uses (ensure_ascii=False)
_RANK = {name: i for i, name in enumerate(LABEL_ORDER)}
_WS = re.compile(r"\s+")
_ORDER_CACHE: dict[tuple[str, ...], list[str]] = {}  # label names (in record order) → display order


class ParseError(ValueError):
    """Text that is not ``LambdaFunction: <name>\\nParameters: <JSON object>``."""


def canonical_json(params: Mapping[str, Any]) -> str:
    """Sorted keys, spaced separators, UTF-8 kept (the one serialisation of parameters)."""
    # Parameters are almost always a flat object of strings and integers: assembled here from the
    # encoder's own string escaper, byte-identical to json.dumps (a test compares them) at a
    # fraction of its cost per call. Anything else goes to json.dumps.
    if type(params) is dict:
        parts = []
        for key, value in sorted(params.items()):
            if type(key) is not str:
                break
            t = type(value)
            if t is str:
                parts.append(f"{_enc(key)}: {_enc(value)}")
            elif t is int:
                parts.append(f"{_enc(key)}: {int.__repr__(value)}")
            else:
                break
        else:
            return "{" + ", ".join(parts) + "}"
    return json.dumps(params, sort_keys=True, ensure_ascii=False)


def render_output(function: str, params: Mapping[str, Any] | None) -> str:
    """The answer the model is trained to give."""
    if function == NONE:
        params = {}
    return f"LambdaFunction: {function}\nParameters: {canonical_json(params or {})}"


def _one_line(value: Any) -> str:
    return _WS.sub(" ", str(value)).strip()


def render_input(labels: Mapping[str, Any], annotations: Mapping[str, Any] | None = None) -> str:
    """The alert as the model sees it: ``key: value`` lines in a fixed order.

    Label order is :data:`LABEL_ORDER`, then the remaining labels alphabetically; then
    ``summary`` and ``description``. Values are folded onto one line. The answer annotations are
    never rendered.
    """
    head, tail = render_parts(labels, annotations)
    return f"{head}\n{tail}" if head and tail else head or tail


def render_parts(labels: Mapping[str, Any], annotations: Mapping[str, Any] | None = None) -> tuple[str, str]:
    """:func:`render_input` as (label lines, annotation lines)."""
    names = tuple(labels)
    keys = _ORDER_CACHE.get(names)
    if keys is None:  # alerts of one rule share their label names: order each set once
        keys = [k for k in LABEL_ORDER if k in labels]
        keys += sorted(k for k in labels if k not in _RANK and k not in HIDDEN_LABELS)
        if len(_ORDER_CACHE) >= 4096:
            _ORDER_CACHE.clear()
        _ORDER_CACHE[names] = keys
    annotations = annotations or {}
    akeys = [k for k in ANNOTATION_ORDER if annotations.get(k)]
    values = [str(labels[k]) for k in keys] + [str(annotations[k]) for k in akeys]
    joined = "\x00".join(values)
    # Most alerts need no folding: one scan of all values instead of a call per value.
    if "\n" in joined or "\r" in joined or "\t" in joined or "  " in joined or " \x00" in joined \
            or "\x00 " in joined or joined[:1] == " " or joined[-1:] == " ":
        values = [_one_line(v) for v in values]
    n = len(keys)
    head = "\n".join([f"{k}: {v}" for k, v in zip(keys, values[:n])])
    tail = "\n".join([f"{k}: {v}" for k, v in zip(akeys, values[n:])])
    return head, tail


def alert_from_input(text: str) -> tuple[dict[str, str], dict[str, str]]:
    """Labels and annotations back from the model's input (``key: value`` lines, see
    :func:`render_input`); lines of another shape are skipped."""
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(": ")
        if not sep or not key or " " in key:
            continue
        (annotations if key in ANNOTATION_ORDER else labels)[key] = value
    return labels, annotations


_OUTPUT = re.compile(r"\ALambdaFunction:[ \t]*(?P<fn>[^\s]*)[ \t]*\r?\nParameters:[ \t]*(?P<params>.*)\Z", re.DOTALL)


def parse_output(text: str, strict: bool = False) -> tuple[str, dict[str, Any]]:
    """``(function, params)`` from a model's answer, or raise :class:`ParseError`.

    Leading and trailing whitespace is ignored, and the JSON may be spaced any way. With
    ``strict`` the text must be byte-for-byte what :func:`render_output` writes. Whether the
    function exists and its parameters fit is the catalog's business
    (:func:`sre_llm.catalog.validate_parameters`), not the parser's.
    """
    if not isinstance(text, str):
        raise ParseError(f"answer must be text (got {type(text).__name__})")
    m = _OUTPUT.match(text.strip())
    if m is None:
        raise ParseError("expected two lines: 'LambdaFunction: <name>' and 'Parameters: <JSON object>'")
    fn, raw = m.group("fn"), m.group("params").strip()
    if not fn:
        raise ParseError("LambdaFunction is empty")
    try:
        params, end = _DECODER.raw_decode(raw)
    except json.JSONDecodeError as exc:
        raise ParseError(f"Parameters is not valid JSON: {exc.msg} at column {exc.colno}") from None
    if raw[end:].strip():
        raise ParseError(f"unexpected text after the Parameters JSON: {raw[end:].strip()[:40]!r}")
    if not isinstance(params, dict):
        raise ParseError(f"Parameters must be a JSON object (got {type(params).__name__})")
    if strict and text != render_output(fn, params):
        raise ParseError("not in canonical form (sorted keys, spaced separators, no extra whitespace)")
    return fn, params


def example(labels: Mapping[str, Any], annotations: Mapping[str, Any], function: str, params: Mapping[str, Any]) -> dict[str, str]:
    """One alpaca record."""
    return {"instruction": INSTRUCTION, "input": render_input(labels, annotations), "output": render_output(function, params)}
