"""Where a version came from and how good it is: gate figures, the run record, package versions.

Pure functions over dicts read from files, so the registry does not depend on how the trainer and
the evaluator lay out their records beyond the few keys named here (docs/registry.md lists them).
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Mapping
from typing import Any

from sre_llm.answer.references import recorded_format
from sre_llm.errors import BadInput
from sre_llm.evaluate.gates import gate_line as evaluator_gate_line
from sre_llm.registry.index import BaseModelRef, DatasetRef, Gate, RunRef

# Direction of each gate of ``spec.evaluation.gates`` (tests check this agrees with GatesSpec).
GATE_OPS: dict[str, str] = {
    "remediation_accuracy": ">=",
    "parameter_accuracy": ">=",
    "false_positive_rate": "<=",
    "p95_latency_ms": "<=",
}

# Other names an evaluator may use for a figure: (path in the metrics dict) → gate name.
_ALIASES: dict[tuple[str, ...], str] = {
    ("latency", "p95_ms"): "p95_latency_ms",
    ("latency_ms", "p95"): "p95_latency_ms",
    ("latency", "p95"): "p95_latency_ms",
}

TRACKED_PACKAGES = ("sre-llm", "llamafactory", "torch", "transformers", "peft", "trl", "datasets", "model-signing")


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, Mapping):
        for key in ("value", "actual", "figure", "measured"):
            if key in value:
                return _number(value[key])
    return None


def figures(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Gate figures found in an evaluation report.

    Looked for, first match wins: ``gates.<name>`` (a number, or ``{value|actual: n}``; a list of
    ``{name, value}`` works too), ``metrics.<name>``, ``summary.<name>``, ``<name>`` at the top, and
    ``latency.p95_ms`` for ``p95_latency_ms``.
    """
    found: dict[str, float] = {}
    gates = metrics.get("gates")
    if isinstance(gates, list):
        gates = {g.get("name"): g for g in gates if isinstance(g, Mapping)}
    sections = [gates, metrics.get("metrics"), metrics.get("summary"), metrics]
    for name in GATE_OPS:
        for section in sections:
            if isinstance(section, Mapping) and name in section and _number(section[name]) is not None:
                found[name] = _number(section[name])  # type: ignore[assignment]
                break
    for path, name in _ALIASES.items():
        if name in found:
            continue
        node: Any = metrics
        for key in path:
            node = node.get(key) if isinstance(node, Mapping) else None
        if _number(node) is not None:
            found[name] = _number(node)  # type: ignore[assignment]
    return found


def evaluate_gates(thresholds: Mapping[str, float], found: Mapping[str, float]) -> dict[str, Gate]:
    """One :class:`Gate` per threshold; a missing figure fails its gate."""
    gates: dict[str, Gate] = {}
    for name, threshold in thresholds.items():
        op = GATE_OPS.get(name)
        if op is None:
            raise BadInput(f"gate {name!r}: unknown direction (known: {', '.join(GATE_OPS)})")
        value = found.get(name)
        passed = value is not None and (value >= threshold if op == ">=" else value <= threshold)
        gates[name] = Gate(value=value, op=op, threshold=float(threshold), passed=passed)  # type: ignore[arg-type]
    return gates


def gate_line(name: str, gate: Gate) -> str:
    """``remediation_accuracy 0.950 >= 0.900 (min) pass`` — one gate, for messages and commit
    bodies, in the evaluator's words (:func:`sre_llm.evaluate.gates.gate_line`)."""
    return evaluator_gate_line(name, "min" if gate.op == ">=" else "max", gate.value, gate.threshold, gate.passed)


def _get(data: Mapping[str, Any], *paths: str) -> Any:
    for dotted in paths:
        node: Any = data
        for key in dotted.split("."):
            node = node.get(key) if isinstance(node, Mapping) else None
        if node is not None:
            return node
    return None


def run_ref(record: Mapping[str, Any] | None, record_sha256: str | None = None) -> RunRef:
    """The run's identity from ``run.json`` (``run_id``/``id``, ``git_commit``, ``start``/``end``)."""
    if not record:
        return RunRef()
    return RunRef(
        id=_str(_get(record, "run_id", "id", "run.id")),
        record_sha256=record_sha256,
        git_commit=_str(_get(record, "git_commit", "git.commit", "commit")),
        started=_str(_get(record, "started", "start", "started_at", "start_time")),
        finished=_str(_get(record, "finished", "end", "finished_at", "end_time")),
    )


def dataset_ref(name: str | None, record: Mapping[str, Any] | None) -> DatasetRef:
    """Dataset digest and size as the run recorded them (``dataset.digest``/``dataset_digest``…)."""
    record = record or {}
    size = _get(record, "dataset.size", "dataset_size", "dataset.examples", "dataset.train_examples")
    return DatasetRef(
        name=_str(_get(record, "dataset.name")) or name,
        digest=_str(_get(record, "dataset.digest", "dataset_digest", "dataset.sha256")),
        size=int(size) if isinstance(size, (int, float)) and not isinstance(size, bool) else None,
        answer_format=_answer_format(record),
    )


def _answer_format(record: Mapping[str, Any] | None) -> str | None:
    """The run's answer format (None without a run record: readers then assume literal-v1)."""
    if not record:
        return None
    try:
        return recorded_format(record)
    except ValueError as exc:
        raise BadInput(f"run record: {exc}") from None


def base_model_ref(spec_base: Any, record: Mapping[str, Any] | None) -> BaseModelRef:
    """The base model from the spec; the run's resolved revision wins when it recorded one."""
    revision = _str(_get(record or {}, "base_model.revision", "base_model_revision")) or spec_base.revision
    return BaseModelRef(name=spec_base.name, path=spec_base.path, revision=revision, family=spec_base.family)


def packages(record: Mapping[str, Any] | None) -> dict[str, str]:
    """Package versions the run recorded; else those installed here (the registering environment)."""
    recorded = _get(record or {}, "packages", "package_versions")
    if isinstance(recorded, Mapping) and recorded:
        return {str(k): str(v) for k, v in sorted(recorded.items())}
    found = {}
    for name in TRACKED_PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def _str(value: Any) -> str | None:
    return None if value is None else str(value)
