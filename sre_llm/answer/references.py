"""Label references: parameters that name the alert label they come from.

agent-sre's own rules write ``lambda_parameters`` as templates over the alert's labels
(``{"name": "{{ $labels.pod }}", "namespace": "{{ $labels.namespace }}"}``). A model trained to
answer the same way only has to pick *which* label, not copy a hash-suffixed pod name character by
character: measured on the demo corpus, held-out parameter accuracy rose from 0.356 (literal
values, five epochs) to 0.84 (references, half an epoch). Evaluation and the gateway expand the
references with the alert's own labels (:func:`expand_references`) before anything is scored or
acted on, so what is scored and served are real values.

Two answer formats, recorded in ``run.json`` and the registry lineage so that a champion trained
on literal values keeps being served right while a challenger answers with references:

- :data:`LITERAL` (``literal-v1``): parameters are the values themselves;
- :data:`LABELREF` (``labelref-v1``): each string parameter taken from a label is the reference
  ``{{ $labels.NAME }}``; catalog constants (``type: deployment``, Flux's default namespace) stay
  literal, and so do integers that no label carries (``replicas`` read from prose).

A reference to a label the alert lacks is an error (:class:`UnknownReference`), never a guess.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sre_llm.answer.format import (
    HIDDEN_LABELS,
    LABEL_ORDER,
    alert_from_input,
    parse_output,
    render_output,
)
from sre_llm.catalog import ACTIONS

LITERAL = "literal-v1"
LABELREF = "labelref-v1"
#: Every answer format, oldest first. Runs that do not record one were trained on :data:`LITERAL`.
ANSWER_FORMATS: tuple[str, ...] = (LITERAL, LABELREF)
DEFAULT_ANSWER_FORMAT = LABELREF

#: Prometheus label names (``[a-zA-Z_][a-zA-Z0-9_]*``), in agent-sre's template syntax, spaced
#: exactly as agent-sre writes it: the model learns one spelling.
LABEL_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_WHOLE = re.compile(r"\A\{\{ \$labels\.(" + LABEL_NAME + r") \}\}\Z")
_ANY = re.compile(r"\{\{ \$labels\.(" + LABEL_NAME + r") \}\}")
_RANK = {name: i for i, name in enumerate(LABEL_ORDER)}
#: Labels preferred for an integer parameter when several carry its value (agent-sre's example
#: rule names the scale target ``expected``).
_INTEGER_LABELS = ("expected", "replicas", "desired_replicas")


class UnknownReference(ValueError):
    """A parameter names a label the alert does not have (or one whose value does not fit)."""

    def __init__(self, message: str, parameter: str, label: str):
        super().__init__(message)
        self.parameter = parameter
        self.label = label


def reference(label: str) -> str:
    """The reference to ``label``: ``{{ $labels.NAME }}``."""
    return "{{ $labels." + label + " }}"


def referenced_label(value: Any) -> str | None:
    """The label a parameter value is a whole reference to, or None for any other value."""
    if type(value) is not str or not value.startswith("{{"):
        return None
    m = _WHOLE.match(value)
    return m.group(1) if m else None


def visible_labels(labels: Mapping[str, Any]) -> dict[str, str]:
    """The labels the model is shown (and so may refer to), as strings."""
    return {str(k): str(v) for k, v in labels.items() if k not in HIDDEN_LABELS}


def check_format(answer_format: str) -> str:
    """``answer_format`` itself, or ValueError naming the known formats."""
    if answer_format not in ANSWER_FORMATS:
        raise ValueError(f"unknown answer format {answer_format!r} (known: {', '.join(ANSWER_FORMATS)})")
    return answer_format


def _label_preference(param: str, names: list[str], integer: bool) -> str:
    """The canonical label among ``names`` (all carrying the same value): the one named like the
    parameter, then (integers) the usual scale-target labels, then :data:`LABEL_ORDER`, then by
    name. Any choice expands the same; one choice keeps the training data consistent."""
    def key(name: str) -> tuple[int, int, int, str]:
        preferred = _INTEGER_LABELS.index(name) if integer and name in _INTEGER_LABELS else len(_INTEGER_LABELS)
        return (0 if name == param else 1, preferred, _RANK.get(name, len(_RANK)), name)
    return min(names, key=key)


def to_references(function: str, params: Mapping[str, Any], labels: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with each value a label carries replaced by a reference to that label.

    Catalog choices (``type: pod``) and the default of an optional parameter (Flux's
    ``flux-system``) stay literal: they are the handler's constants, not the alert's. A value no
    visible label carries stays literal too (``replicas`` from the description, a composed
    selector); the guard's grounding check judges those.
    """
    action = ACTIONS.get(function)
    if action is None or not params:
        return dict(params or {})
    # The dataset builder calls this for every example it writes: the label index is built only
    # once a value needs it, and the preference order is consulted only when labels tie.
    by_value: dict[str, list[str]] | None = None
    out: dict[str, Any] = {}
    for key, value in params.items():
        integer = type(value) is int
        if integer or type(value) is str:
            spec = action.params.get(key)
            if spec is None or not (value in spec.choices or (not spec.required and value == spec.default)):
                if by_value is None:
                    by_value = {}
                    for name, shown in visible_labels(labels).items():
                        if name != "alertname":
                            by_value.setdefault(shown, []).append(name)
                names = by_value.get(str(value))
                if names:
                    out[key] = reference(names[0] if len(names) == 1 else _label_preference(key, names, integer))
                    continue
        out[key] = value
    return out


def _label_value(name: str, key: str, shown: Mapping[str, str]) -> str:
    if name not in shown:
        raise UnknownReference(f"parameter {key!r} refers to label {name!r}, which the alert does not have", key, name)
    return shown[name]


def expand_references(params: Mapping[str, Any], labels: Mapping[str, Any], function: str | None = None) -> dict[str, Any]:
    """``params`` with every ``{{ $labels.NAME }}`` replaced by that label's value.

    A reference to a label the alert lacks (or to a hidden one) raises :class:`UnknownReference`.
    With ``function``, a whole reference in an integer parameter becomes an integer, and a label
    value that is not one raises too. Values without references come back unchanged, so
    expanding a literal answer is a no-op.
    """
    shown: dict[str, str] | None = None
    out: dict[str, Any] = {}
    spec_of = ACTIONS[function].params if function in ACTIONS else {}
    for key, value in params.items():
        if type(value) is not str or "{{" not in value:
            out[key] = value
            continue
        if shown is None:
            shown = visible_labels(labels)
        expanded = _ANY.sub(lambda m, key=key, shown=shown: _label_value(m.group(1), key, shown), value)
        spec = spec_of.get(key)
        if spec is not None and spec.type == "integer":
            name = referenced_label(value)
            if name is not None:
                if not re.fullmatch(r"[0-9]{1,9}", expanded):
                    raise UnknownReference(f"parameter {key!r} refers to label {name!r}, whose value {expanded!r} is not an integer", key, name)
                expanded = int(expanded)  # type: ignore[assignment]
        out[key] = expanded
    return out


def answer_in_format(input_text: str, output_text: str, answer_format: str) -> str:
    """A canonical literal answer rewritten in ``answer_format`` for the alert ``input_text``
    (as :func:`~sre_llm.answer.format.render_input` wrote it): how the dataset builder writes
    training, validation and test rows. Raises :class:`~sre_llm.answer.format.ParseError` for
    an answer that does not parse."""
    if check_format(answer_format) == LITERAL:
        return output_text
    function, params = parse_output(output_text)
    if not params:
        return output_text
    labels, _ = alert_from_input(input_text)
    return render_output(function, to_references(function, params, labels))


def recorded_format(record: Mapping[str, Any] | None) -> str:
    """The answer format a run record (``run.json``) or registry lineage entry records:
    ``answer_format`` at the top or under ``dataset``. Runs from before answer formats existed
    record none and were trained on literal values, so that is the default; a format this
    version does not know is a ValueError (it would be expanded wrong)."""
    record = record or {}
    found = record.get("answer_format")
    if found is None and isinstance(record.get("dataset"), Mapping):
        found = record["dataset"].get("answer_format")
    return check_format(str(found)) if found is not None else LITERAL
