"""Scoring, in the spirit of BFCL's AST checker: parse the answer, compare the call, not the text.

Pure functions over strings and numbers; no model, no files. Definitions (also in the report):

- **remediation accuracy**: share of all examples whose predicted function equals the truth,
  ``none`` included. An unparseable answer is wrong.
- **parameter accuracy**: share of all examples whose function is right AND whose parameters
  equal the truth after normalization AND validate against the catalog's schema (required
  present, no unexpected keys, types and choices right). ``parameter_accuracy_on_actions`` is the
  same over the examples whose truth is an action (the harder figure, shown beside it).
- **normalization**: key order is irrelevant (dicts), and an optional parameter left out counts
  as its catalog default (``pod-restart`` without ``type`` is the handler's ``type: pod``), so
  only calls the handler would run differently compare unequal. Values are compared exactly: a
  homoglyph or stray space names a different object in Kubernetes.
- **false-positive rate**: over the examples whose truth is ``none`` (denominator
  ``none_examples``), the share where the model proposed an action, i.e. its answer parsed and
  named a function other than ``none`` (an unknown function counts: the model tried to act).
  ``None`` when the test set has no ``none`` example, so a gate cannot pass vacuously.
- **label references**: with the alert's labels at hand, references (``{{ $labels.pod }}``) in
  the expected answer, and in the model's when it answers in ``labelref-v1``, are expanded
  before comparing, so two references that name different labels with the same value are equal
  and a reference the alert lacks is a schema problem (what is scored is what would be served).
- **unparseable**: answers :func:`sre_llm.answer.format.parse_output` rejects; counted, shown,
  and wrong on every accuracy.
- **latency**: P50/P95 by linear interpolation between order statistics (numpy's default), max,
  mean, in milliseconds; **throughput**: examples per second of generation wall time.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sre_llm.answer.format import ParseError, parse_output
from sre_llm.answer.references import LABELREF, UnknownReference, expand_references
from sre_llm.catalog import ACTIONS, FUNCTION_NAMES, NONE, validate_parameters

UNPARSEABLE = "(unparseable)"
UNKNOWN = "(unknown)"
#: Rows and columns of the confusion matrix: the catalog, ``none``, then the two failure kinds.
CONFUSION_LABELS: tuple[str, ...] = (*FUNCTION_NAMES, UNKNOWN, UNPARSEABLE)


@dataclass(frozen=True)
class Judgement:
    """One example, judged: what was expected, what was said, and how it scores."""

    expected_function: str
    expected_parameters: dict[str, Any]
    predicted_function: str | None  # None when the answer did not parse
    predicted_parameters: dict[str, Any] | None
    parse_error: str | None
    schema_problems: tuple[str, ...] = ()
    function_ok: bool = False
    parameters_ok: bool = False
    false_positive: bool = False

    @property
    def predicted_label(self) -> str:
        """The confusion-matrix column: a catalog name, ``none``, unknown or unparseable."""
        if self.predicted_function is None:
            return UNPARSEABLE
        return self.predicted_function if self.predicted_function in FUNCTION_NAMES else UNKNOWN

    @property
    def severity(self) -> int:
        """How bad the mistake is (0 = right): acting when nothing was needed is the worst."""
        if self.parameters_ok:
            return 0
        if self.false_positive or self.predicted_label == UNKNOWN:
            return 4
        if not self.function_ok and self.predicted_function not in (None, NONE):
            return 3  # a different action than the right one
        if not self.function_ok:
            return 2  # missed an action, or said nothing usable
        return 1  # right function, wrong or invalid parameters

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["schema_problems"] = list(self.schema_problems)
        d["predicted_label"] = self.predicted_label
        d["severity"] = self.severity
        return d


def normalize(function: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Parameters as the handler would see them: catalog defaults filled in for absent ones."""
    if function == NONE:
        return dict(params or {})
    out = dict(params or {})
    action = ACTIONS.get(function)
    if action is not None:
        for key, spec in action.params.items():
            if key not in out and spec.default is not None:
                out[key] = spec.default
    return out


def judge(expected: str, output: str, labels: Mapping[str, Any] | None = None, answer_format: str = LABELREF) -> Judgement:
    """Judge one model ``output`` against the ``expected`` answer (both in the canonical format).

    With the alert's ``labels``, references are expanded first: always in the expected answer
    (a dataset written in ``labelref-v1``), in the output when the model answers in
    ``answer_format`` ``labelref-v1``. The expected answer must parse and expand: it comes from
    the dataset, and a broken test set is a bug to surface, not a score.
    """
    exp_fn, exp_params = parse_output(expected)
    if labels is not None:
        exp_params = expand_references(exp_params, labels, exp_fn)
    try:
        fn, params = parse_output(output)
    except ParseError as exc:
        return Judgement(exp_fn, exp_params, None, None, str(exc))
    if labels is not None and answer_format == LABELREF:
        try:
            params = expand_references(params, labels, fn)
        except UnknownReference as exc:
            return Judgement(exp_fn, exp_params, fn, params, None, (f"{fn}: {exc}",), fn == exp_fn, False,
                             false_positive=exp_fn == NONE and fn != NONE)
    problems = tuple(validate_parameters(fn, params))
    function_ok = fn == exp_fn
    parameters_ok = function_ok and not problems and normalize(fn, params) == normalize(exp_fn, exp_params)
    return Judgement(
        exp_fn, exp_params, fn, params, None, problems, function_ok, parameters_ok,
        false_positive=exp_fn == NONE and fn != NONE,
    )


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-quantile (0..1) by linear interpolation; ``nan`` for no values."""
    if not values:
        return math.nan
    xs = sorted(values)
    pos = (len(xs) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def latency_summary(latencies_ms: Sequence[float]) -> dict[str, float | int | None]:
    """P50, P95, max and mean in milliseconds, and how many samples they rest on."""
    if not latencies_ms:
        return {"samples": 0, "p50_ms": None, "p95_ms": None, "max_ms": None, "mean_ms": None}
    return {
        "samples": len(latencies_ms),
        "p50_ms": percentile(latencies_ms, 0.50),
        "p95_ms": percentile(latencies_ms, 0.95),
        "max_ms": max(latencies_ms),
        "mean_ms": sum(latencies_ms) / len(latencies_ms),
    }


def _share(k: int, n: int) -> float | None:
    return k / n if n else None


@dataclass
class Scores:
    """The figures the gates and the report read (``to_dict`` is what ``eval.json`` holds)."""

    examples: int
    remediation_accuracy: float | None
    parameter_accuracy: float | None
    parameter_accuracy_on_actions: float | None
    false_positive_rate: float | None
    false_positives: int
    none_examples: int
    action_examples: int
    missed_actions: int
    unparseable: int
    unknown_function: int
    schema_invalid: int
    latency: dict[str, Any] = field(default_factory=dict)
    throughput_per_s: float | None = None
    wall_seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(
    judgements: Sequence[Judgement],
    latencies_ms: Sequence[float] = (),
    wall_seconds: float | None = None,
) -> Scores:
    """Aggregate judgements (see the module docstring for every definition)."""
    n = len(judgements)
    none_rows = [j for j in judgements if j.expected_function == NONE]
    action_rows = [j for j in judgements if j.expected_function != NONE]
    fp = sum(j.false_positive for j in none_rows)
    return Scores(
        examples=n,
        remediation_accuracy=_share(sum(j.function_ok for j in judgements), n),
        parameter_accuracy=_share(sum(j.parameters_ok for j in judgements), n),
        parameter_accuracy_on_actions=_share(sum(j.parameters_ok for j in action_rows), len(action_rows)),
        false_positive_rate=_share(fp, len(none_rows)),
        false_positives=fp,
        none_examples=len(none_rows),
        action_examples=len(action_rows),
        missed_actions=sum(j.predicted_function == NONE for j in action_rows),
        unparseable=sum(j.predicted_function is None for j in judgements),
        unknown_function=sum(j.predicted_label == UNKNOWN for j in judgements),
        schema_invalid=sum(bool(j.schema_problems) and j.predicted_label != UNKNOWN for j in judgements),
        latency=latency_summary(latencies_ms),
        throughput_per_s=(n / wall_seconds) if wall_seconds else None,
        wall_seconds=wall_seconds,
    )


def confusion(judgements: Iterable[Judgement]) -> dict[str, dict[str, int]]:
    """``matrix[truth][predicted]`` counts over :data:`CONFUSION_LABELS` (all cells present)."""
    matrix = {t: {p: 0 for p in CONFUSION_LABELS} for t in FUNCTION_NAMES}
    for j in judgements:
        matrix.setdefault(j.expected_function, {p: 0 for p in CONFUSION_LABELS})[j.predicted_label] += 1
    return matrix


def per_function(judgements: Iterable[Judgement]) -> dict[str, dict[str, Any]]:
    """Per true function: examples, function right, parameters right (for the report's table)."""
    out: dict[str, dict[str, Any]] = {}
    for j in judgements:
        row = out.setdefault(j.expected_function, {"examples": 0, "function_ok": 0, "parameters_ok": 0})
        row["examples"] += 1
        row["function_ok"] += j.function_ok
        row["parameters_ok"] += j.parameters_ok
    return dict(sorted(out.items()))


def worst(judgements: Sequence[Judgement], limit: int = 10) -> list[tuple[int, Judgement]]:
    """The ``limit`` worst mistakes as ``(index, judgement)``: by severity, then test-set order."""
    wrong = [(i, j) for i, j in enumerate(judgements) if j.severity]
    wrong.sort(key=lambda ij: (-ij[1].severity, ij[0]))
    return wrong[:limit]
